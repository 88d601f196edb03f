//! Golden renders: the full desired state of knd and knc nodes on aws and local, committed under
//! `vmagent/tests/golden/` and compared byte for byte. A change to any rendered file shows up in
//! review as a change to these fixtures. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p vmagent --lib render::golden`.

use std::fmt::Write;
use std::path::Path;

use super::testutil::*;
use super::*;

fn show(d: &Desired) -> String {
    let mut out = String::new();
    for (path, f) in &d.files {
        writeln!(
            out,
            "== {path} {:04o} {}:{}{}",
            f.mode,
            f.user,
            f.group,
            if f.secret { " (secret)" } else { "" }
        )
        .unwrap();
        out.push_str(&String::from_utf8_lossy(&f.content));
        if !f.content.ends_with(b"\n") {
            out.push_str("\n(no newline at end)\n");
        }
    }
    for (path, (mode, user, group)) in &d.dirs {
        writeln!(out, "-- dir {path} {mode:04o} {user}:{group}").unwrap();
    }
    for path in &d.absent {
        writeln!(out, "-- absent {path}").unwrap();
    }
    for s in d.services.values() {
        let inputs: Vec<&str> = s.inputs.iter().map(String::as_str).collect();
        writeln!(
            out,
            "-- service {} {} inputs: {}",
            s.unit,
            if s.enabled { "enabled" } else { "disabled" },
            inputs.join(" ")
        )
        .unwrap();
    }
    for n in &d.notes {
        writeln!(out, "-- note {n}").unwrap();
    }
    out
}

fn check(kind: Kind, provider: &str) {
    let m = manifest();
    let s = settings(kind, provider);
    let d = render(&Inputs {
        kind,
        settings: crate::settings::NodeSettings::parse(&s).unwrap(),
        manifest: &m,
        etc_hosts: ETC_HOSTS,
        subuid: SUBUID,
        subgid: SUBUID,
        api_lb_addrs: vec!["10.0.9.9".parse().unwrap()],

        oom_adjust: true,
    })
    .unwrap();
    let name = format!(
        "{}-{provider}.txt",
        if kind == Kind::Knc { "knc" } else { "knd" }
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(&name);
    let got = show(&d);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if got != want {
        let diff = crate::diff::line_diff(&want, &got);
        panic!(
            "{name} differs from the render (- golden, + now):\n{diff}\nIf intended: UPDATE_GOLDEN=1 cargo test -p vmagent --lib render::golden"
        );
    }
}

#[test]
fn knd_aws() {
    check(Kind::Knd, "aws");
}

#[test]
fn knd_local() {
    check(Kind::Knd, "local");
}

#[test]
fn knc_aws() {
    check(Kind::Knc, "aws");
}

#[test]
fn knc_local() {
    check(Kind::Knc, "local");
}
