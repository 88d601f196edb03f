//! Node-level pieces every kind runs: nstance-agent, kube2iam (enabled on AWS), the Nstance
//! delivery path unit, the periodic reconcile timer (upstream's hosts refresh), and
//! `/etc/subuid` / `/etc/subgid` for kubelet (other users' lines kept).

use super::unit::{Sandbox, Unit};
use super::{Desired, Features, Inputs, RenderError, env_file, kubeconfig};
use crate::contract::Kind;
use crate::contract::UserDataKey;
use crate::settings::NodeSettings;

const NSTANCE_ENV: &str = "/opt/env/nstance-agent.env";
const NSTANCE_RUN: &str = "/opt/nstance-agent/bin/run-nstance-agent.sh";
const KUBE2IAM_ENV: &str = "/opt/env/kube2iam.env";
const KUBE2IAM_RUN: &str = "/opt/kube2iam/bin/run-kube2iam.sh";
const KUBE2IAM_KUBECONFIG: &str = "/opt/kube2iam/etc/kubeconfig";
pub const SUBID_LINE: &str = "kubelet:65536:7208960";

pub fn render(inp: &Inputs, f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    nstance_agent(inp, d)?;
    identity_and_ssh(inp, d)?;
    kube2iam(inp, f, d)?;
    delivery_and_reconcile_units(d);
    for path in ["/etc/subuid", "/etc/subgid"] {
        let current = if path == "/etc/subuid" {
            inp.subuid
        } else {
            inp.subgid
        };
        d.file(path, 0o644, "root:root", merge_subid(current));
    }
    Ok(())
}

/// `current` with kubelet's range set, every other line kept.
pub fn merge_subid(current: &str) -> String {
    let mut out = String::new();
    let mut placed = false;
    for line in current.lines() {
        if line.starts_with("kubelet:") {
            if !placed {
                out.push_str(SUBID_LINE);
                out.push('\n');
                placed = true;
            }
        } else if !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !placed {
        out.push_str(SUBID_LINE);
        out.push('\n');
    }
    out
}

fn nstance_agent(inp: &Inputs, d: &mut Desired) -> Result<(), RenderError> {
    let s = &inp.settings;
    let why = "it comes from user-data.env (the Nstance server's addresses)";
    let reg = NodeSettings::required(
        s.nstance_registration_addr.as_deref(),
        UserDataKey::NstanceServerRegistrationAddr,
        why,
    )?;
    let agent = NodeSettings::required(
        s.nstance_agent_addr.as_deref(),
        UserDataKey::NstanceServerAgentAddr,
        why,
    )?;
    let (ipv4, ipv6) = (s.ipv4_text(), s.ipv6_text());
    let kind = inp.kind.name();
    let pairs = [
        ("NSTANCE_SERVER_REGISTRATION_ADDR", reg),
        ("NSTANCE_SERVER_AGENT_ADDR", agent),
        ("NSTANCE_IDENTITY_DIR", "/opt/nstance-agent/identity"),
        ("NSTANCE_KEYS_DIR", "/opt/nstance-agent/keys"),
        ("NSTANCE_RECV_DIR", "/opt/nstance-agent/recv"),
        ("NSTANCE_IDENTITY_MODE", "0600"),
        ("NSTANCE_KEYS_MODE", "0640"),
        ("NSTANCE_RECV_MODE", "0600"),
        ("NSTANCE_INSTANCE_KIND", kind),
        ("NSTANCE_INSTANCE_ID", s.instance_id_text()),
        ("NSTANCE_INSTANCE_HOSTNAME", &s.hostname),
        ("NSTANCE_INSTANCE_FQDN", &s.fqdn),
        ("NSTANCE_INSTANCE_IPV4", &ipv4),
        ("NSTANCE_INSTANCE_IPV6", &ipv6),
        ("NSTANCE_METRICS_INTERVAL", "60s"),
        // Newer agents read this name; older ones the one above. Both are set.
        ("NSTANCE_REPORT_INTERVAL", "60s"),
        ("NSTANCE_SPOT_POLL_INTERVAL", "2s"),
    ];
    d.file(NSTANCE_ENV, 0o640, "root:nstance-agent", env_file(&pairs));
    let exports: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    d.file(
        NSTANCE_RUN,
        0o755,
        "root:root",
        wrapper(
            "nstance-agent",
            NSTANCE_ENV,
            &exports,
            "exec /opt/nstance-agent/bin/nstance-agent",
        ),
    );
    d.file(
        "/etc/systemd/system/nstance-agent.service",
        0o644,
        "root:root",
        Unit::new("Nstance agent: registration, keys and deliveries")
            .set("Wants", "network-online.target")
            .set("After", "network-online.target")
            .set("StartLimitIntervalSec", "0")
            .section("Service")
            .set("Type", "exec")
            .set("User", "nstance-agent")
            .set("ExecStart", NSTANCE_RUN)
            .set("SyslogIdentifier", "nstance-agent")
            .set("Restart", "always")
            .set("RestartSec", "5")
            // Writes only its identity, its keys and the deliveries it receives (vmagent recv
            // moves them into place as root). Netlink: its health reports read the node's
            // network interfaces.
            .sandbox(&Sandbox {
                read_write_paths: &[
                    "/opt/nstance-agent/identity",
                    "/opt/nstance-agent/keys",
                    "/opt/nstance-agent/recv",
                ],
                netlink: true,
                memory_deny_write_execute: true,
                ..Sandbox::default()
            })
            .wanted_by("multi-user.target"),
    );
    d.service("nstance-agent.service", true, &[NSTANCE_ENV, NSTANCE_RUN]);
    Ok(())
}

fn kube2iam(inp: &Inputs, f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    let s = &inp.settings;
    d.file(
        KUBE2IAM_ENV,
        0o640,
        "root:kube2iam",
        env_file(&[
            ("AWS_REGION", &s.region),
            ("INSTANCE_IPV4", &s.ipv4_text()),
            ("INSTANCE_ID", s.instance_id_text()),
        ]),
    );
    d.file(
        KUBE2IAM_RUN,
        0o755,
        "root:root",
        wrapper(
            "kube2iam",
            KUBE2IAM_ENV,
            &["AWS_REGION"],
            "exec /opt/kube2iam/bin/kube2iam --app-port=8181 --auto-discover-base-arn=true \\\n  --host-interface=lxc+ --host-ip=\"${INSTANCE_IPV4}\" --iptables=true --log-level=info \\\n  --metrics-port=8182 --namespace-restrictions=true --node=\"${INSTANCE_ID}\" \\\n  --use-regional-sts-endpoint=true --kubeconfig=/opt/kube2iam/etc/kubeconfig",
        ),
    );
    // The internal API name works on knd too (upstream pointed at localhost, which has no API
    // server on a worker).
    d.file(
        KUBE2IAM_KUBECONFIG,
        0o640,
        "root:kube2iam",
        kubeconfig(
            "kube2iam",
            &super::api_server_url(s),
            "/opt/crt/kube2iam.client.crt",
            "/opt/key/kube2iam/kube2iam.client.key",
        ),
    );
    let certs = [
        "/opt/crt/ca.crt",
        "/opt/crt/kube2iam.client.crt",
        "/opt/key/kube2iam/kube2iam.client.key",
    ];
    // Only a control-plane node runs an API server to wait for; a worker reaches it through
    // the load balancer.
    let mut unit = Unit::new("kube2iam: IAM roles for pods");
    if inp.kind == Kind::Knc {
        unit = unit
            .set("Wants", "kube-apiserver.service")
            .set("After", "kube-apiserver.service");
    }
    d.file(
        "/etc/systemd/system/kube2iam.service",
        0o644,
        "root:root",
        unit.set("StartLimitIntervalSec", "0")
            .condition_paths(&certs)
            .section("Service")
            .set("Type", "exec")
            .set("User", "kube2iam")
            .set("ExecStart", KUBE2IAM_RUN)
            .set("SyslogIdentifier", "kube2iam")
            .set("Restart", "always")
            .set("RestartSec", "10")
            // It rewrites the node's iptables rules (metadata traffic from pods to itself):
            // CAP_NET_ADMIN and netlink stay, and the xtables lock (when present) stays
            // writable; everything else is sandboxed like the other daemons.
            .sandbox(&Sandbox {
                read_write_paths: &["-/run/xtables.lock"],
                capabilities: &["CAP_NET_ADMIN"],
                netlink: true,
                memory_deny_write_execute: true,
            })
            .wanted_by("multi-user.target"),
    );
    let mut inputs = vec![KUBE2IAM_ENV, KUBE2IAM_RUN, KUBE2IAM_KUBECONFIG];
    inputs.extend(certs);
    d.service("kube2iam.service", f.kube2iam, &inputs);
    Ok(())
}

/// vmagent's own units run vmagent as root without a sandbox: it installs packages, creates
/// users, writes anywhere under /etc and /opt, and starts and stops services. Being oneshots,
/// each has a start timeout so that a hung run cannot hold the unit (and the timer) forever.
fn delivery_and_reconcile_units(d: &mut Desired) {
    let path_unit = "/etc/systemd/system/nstance-recv-watch.path";
    let svc_unit = "/etc/systemd/system/nstance-recv-watch.service";
    d.file(
        path_unit,
        0o644,
        "root:root",
        Unit::new("Apply Nstance deliveries when write-files.last appears")
            .section("Path")
            .set("PathExists", "/opt/nstance-agent/recv/write-files.last")
            .set("Unit", "nstance-recv-watch.service")
            .wanted_by("paths.target"),
    );
    d.file(
        svc_unit,
        0o644,
        "root:root",
        Unit::new("Apply Nstance deliveries (certificates, mutable.env)")
            .set("After", "network.target")
            .section("Service")
            .set("Type", "oneshot")
            .set("ExecStart", "/usr/bin/vmagent recv")
            .set("SyslogIdentifier", "vmagent")
            .set("StandardOutput", "journal")
            .set("StandardError", "journal")
            .set("TimeoutStartSec", "5min")
            .build(),
    );
    d.service("nstance-recv-watch.path", true, &[svc_unit]);

    let timer = "/etc/systemd/system/hosts-refresh.timer";
    let svc = "/etc/systemd/system/hosts-refresh.service";
    d.file(
        svc,
        0o644,
        "root:root",
        Unit::new("Re-resolve the API server name and reconcile the node")
            .condition_paths(&[
                "/opt/podplane/etc/user-data.env",
                "/opt/podplane/etc/detected.env",
                "/opt/podplane/etc/mutable.env",
            ])
            .set("Wants", "network-online.target")
            .set("After", "network-online.target")
            .section("Service")
            .set("Type", "oneshot")
            .set("ExecStart", "/usr/bin/vmagent apply")
            .set("SyslogIdentifier", "vmagent")
            .set("TimeoutStartSec", "15min")
            .build(),
    );
    d.file(
        timer,
        0o644,
        "root:root",
        Unit::new("Periodic reconcile (API server addresses in /etc/hosts)")
            .section("Timer")
            .set("OnBootSec", "1min")
            .set("OnUnitActiveSec", "5min")
            .set("RandomizedDelaySec", "30s")
            .wanted_by("timers.target"),
    );
    d.service("hosts-refresh.timer", true, &[svc]);

    // Upstream had no per-boot hook: nothing re-ran after a reboot.
    d.file(
        "/etc/systemd/system/vmagent-reconcile.service",
        0o644,
        "root:root",
        Unit::new("Reconcile the node at boot: pending Nstance deliveries, then configuration")
            .condition_paths(&["/opt/podplane/share/vmconfig-installed.json"])
            .set("Wants", "network-online.target")
            .set("After", "network-online.target")
            .section("Service")
            .set("Type", "oneshot")
            .set("ExecStart", "/usr/bin/vmagent reconcile")
            .set("SyslogIdentifier", "vmagent")
            .set("RemainAfterExit", "yes")
            .set("TimeoutStartSec", "15min")
            .wanted_by("multi-user.target"),
    );
    d.enable_only("vmagent-reconcile.service");
}

/// The Nstance CA as PEM (user-data carries it base64-encoded), and admin's authorized_keys:
/// the immutable keys of user-data.env, then those of mutable.env, blank lines and duplicates
/// dropped; no keys, no file.
fn identity_and_ssh(inp: &Inputs, d: &mut Desired) -> Result<(), RenderError> {
    let s = &inp.settings;
    if let Some(pem) = &s.nstance_ca_cert {
        d.file(
            "/opt/nstance-agent/identity/ca.crt",
            0o600,
            "nstance-agent:nstance-agent",
            pem.clone(),
        );
    }
    let mut keys: Vec<&str> = Vec::new();
    for k in [&s.immutable_ssh_authorized_keys, &s.ssh_authorized_keys] {
        for line in k.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !keys.contains(&line) {
                keys.push(line);
            }
        }
    }
    const KEYS: &str = "/home/admin/.ssh/authorized_keys";
    if keys.is_empty() {
        d.absent.insert(KEYS.into());
    } else {
        d.dirs.insert(
            "/home/admin/.ssh".into(),
            (0o700, "admin".into(), "admin".into()),
        );
        let mut text = keys.join("\n");
        text.push('\n');
        d.file(KEYS, 0o600, "admin:admin", text);
    }
    Ok(())
}

/// A run wrapper: source the env file, export `exports`, log, then `exec_line`.
pub fn wrapper(name: &str, env: &str, exports: &[&str], exec_line: &str) -> String {
    let mut s = format!(
        "#!/bin/bash\n# Rendered by vmagent; changes are overwritten.\nset -euo pipefail\nsource {env}\n"
    );
    if !exports.is_empty() {
        s.push_str(&format!("export {}\n", exports.join(" ")));
    }
    s.push_str(&format!(
        "echo \"[run-{name}] starting ts=${{EPOCHREALTIME}}\" >&2\n{exec_line}\n"
    ));
    s
}
