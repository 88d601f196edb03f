//! Shared by the install tests: a cached Debian trixie root (debootstrapped once by
//! tests/roots/trixie-minbase), overlay copies of it, node artifacts, and a snapshot of what an
//! install leaves.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podplane_testkit::node::{self, NodeOptions};
use vmagent::userdb::UserDb;

pub fn is_root() -> bool {
    unsafe { libc::getuid() == 0 }
}

/// The cached base root and its debs directory, built on first use.
pub fn base() -> Option<(PathBuf, PathBuf)> {
    if !is_root() {
        eprintln!("SKIP: the real-root install tests need root");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/roots/trixie-minbase");
    let out = Command::new(&script)
        .output()
        .expect("run tests/roots/trixie-minbase");
    assert!(
        out.status.success(),
        "building the test root failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let debs = root.parent().unwrap().join("debs");
    Some((root, debs))
}

/// An overlay copy of the base root, unmounted when dropped.
pub struct Overlay {
    pub dir: tempfile::TempDir,
}

impl Overlay {
    pub fn new(base: &Path) -> Overlay {
        let dir = tempfile::tempdir().unwrap();
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(dir.path().join("merged"))
            .status()
            .unwrap();
        assert!(st.success(), "mount overlay");
        Overlay { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("merged")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root().join(p.trim_start_matches('/'))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.root()).status();
    }
}

/// Artifacts built once per test into a directory, to copy into roots.
pub fn artifacts(debs: &Path, cni_padding: usize) -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let m = node::build(
        &dir.path().join("a"),
        &NodeOptions {
            kind: "knc",
            real_debs: Some(debs.to_path_buf()),
            cni_padding,
            kube2iam: true,
        },
    )
    .unwrap();
    (dir, m)
}

/// Lay out what fetch and first boot leave before install: manifest, artifacts, user-data.env.
pub fn prepare(o: &Overlay, art: &Path, manifest: &serde_json::Value) {
    let dest = o.path("/opt/podplane/artifacts");
    std::fs::create_dir_all(&dest).unwrap();
    for e in std::fs::read_dir(art.join("a")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dest.join(e.file_name())).unwrap();
    }
    std::fs::create_dir_all(o.path("/opt/podplane/share")).unwrap();
    std::fs::write(
        o.path("/opt/podplane/share/vmconfig-manifest.json"),
        serde_json::to_vec_pretty(manifest).unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(o.path("/opt/podplane/etc")).unwrap();
    std::fs::write(
        o.path("/opt/podplane/etc/user-data.env"),
        "INSTANCE_ID='i-test'\nPROVIDER_KIND='aws'\nIMMUTABLE_SSH_AUTHORIZED_KEYS='ssh-ed25519 AAAAC3Nza test@podplane'\n",
    )
    .unwrap();
}

pub fn vmagent(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmagent"));
    c.env_remove("JOURNAL_STREAM").arg("--root").arg(root);
    c
}

pub fn install(root: &Path) -> (i32, String) {
    let out = vmagent(root).arg("install").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn chroot(root: &Path, args: &[&str]) -> String {
    let out = Command::new("chroot")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the install is judged by: files below the managed trees (type, mode, owner by name,
/// content hash), the accounts, and the state of the debs.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let db = UserDb::load(root).unwrap();
    let name_of_uid = |uid: u32| {
        std::fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .lines()
            .find(|l| l.split(':').nth(2) == Some(&uid.to_string()))
            .map(|l| l.split(':').next().unwrap().to_string())
            .unwrap_or(uid.to_string())
    };
    let name_of_gid = |gid: u32| {
        std::fs::read_to_string(root.join("etc/group"))
            .unwrap()
            .lines()
            .find(|l| l.split(':').nth(2) == Some(&gid.to_string()))
            .map(|l| l.split(':').next().unwrap().to_string())
            .unwrap_or(gid.to_string())
    };
    let mut snap = BTreeMap::new();
    let mut stack: Vec<PathBuf> = [
        "opt",
        "usr/local/bin",
        "usr/local/sbin",
        "etc/sudoers.d",
        "var/lib/kubelet",
        "var/log/pods",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    for f in [
        "kubelet",
        "zot",
        "kube-apiserver",
        "kubectl",
        "getsubids",
        "newuidmap",
    ] {
        stack.push(root.join("usr/bin").join(f));
    }
    stack.push(root.join("usr/sbin/policy-rc.d"));
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let kind = if md.is_dir() {
            let mut kids: Vec<_> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            kids.sort();
            stack.extend(kids);
            "dir".to_string()
        } else if md.file_type().is_symlink() {
            format!("link->{}", std::fs::read_link(&p).unwrap().display())
        } else {
            podplane_testkit::sha256_hex(&std::fs::read(&p).unwrap())[..16].to_string()
        };
        snap.insert(
            rel,
            format!(
                "{kind} {:04o} {}:{}",
                md.mode() & 0o7777,
                name_of_uid(md.uid()),
                name_of_gid(md.gid())
            ),
        );
    }
    for u in [
        "podplane",
        "nstance-agent",
        "fluent-bit",
        "kube2iam",
        "containerd",
        "kubelet",
        "zot",
        "netsy",
        "kube-apiserver",
        "kube-scheduler",
        "kube-controller-manager",
        "admin",
    ] {
        let user = db.user(u);
        snap.insert(
            format!("user {u}"),
            match user {
                Some(x) => format!(
                    "{} {} groups={:?}",
                    x.shell,
                    x.home,
                    db.supplementary_groups(u)
                ),
                None => "missing".into(),
            },
        );
    }
    snap.insert(
        "debs".into(),
        chroot(
            root,
            &[
                "dpkg-query",
                "-W",
                "-f",
                "${Package} ${Version} ${Status}\n",
                "fluent-bit",
                "libpq5",
                "uidmap",
                "libsubid5",
            ],
        ),
    );
    snap
}

pub fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Run install in its own process group and SIGKILL the group once `ready` holds.
pub fn kill_install_when(root: &Path, ready: impl Fn() -> bool) {
    let mut child = vmagent(root)
        .arg("install")
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("install ended ({st}) before the kill point");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "kill point not reached"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child's process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    // Let the killed group's processes disappear before the overlay is touched again.
    std::thread::sleep(Duration::from_millis(200));
}

/// The package built by packaging/build-deb (tests/run-all builds it first).
pub fn built_deb() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debian");
    let found = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmagent_"))
                && p.extension().is_some_and(|e| e == "deb")
        });
    if found.is_none() {
        eprintln!("SKIP: no target/debian/vmagent_*.deb (run packaging/build-deb)");
    }
    found
}

/// Stand-ins for Debian packages an older cached test root lacks (vmagent's package depends on
/// them; tests/roots/trixie-minbase installs the real ones on its next run): empty packages of
/// those names, built with dpkg-deb and installed into `root`, so that dpkg's dependency check
/// passes as on a real node. A package the root has is left as it is.
pub fn stand_in_debs(root: &Path, names: &[&str]) {
    for name in names {
        let status = chroot(root, &["dpkg-query", "-W", "-f", "${Status}", name]);
        if status == "install ok installed" {
            continue; // the real package (the root has it)
        }
        let dir = root.join(format!("tmp/stand-in-{name}"));
        std::fs::create_dir_all(dir.join("DEBIAN")).unwrap();
        std::fs::write(
            dir.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: 99.0-stand-in\nArchitecture: all\n\
                 Maintainer: Podplane tests <tests@podplane.invalid>\n\
                 Description: stand-in for the test root\n"
            ),
        )
        .unwrap();
        let src = format!("/tmp/stand-in-{name}");
        let deb = format!("{src}.deb");
        for args in [
            ["dpkg-deb", "--build", "--root-owner-group", &src, &deb].as_slice(),
            ["dpkg", "-i", &deb].as_slice(),
        ] {
            let out = Command::new("chroot")
                .arg(root)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
