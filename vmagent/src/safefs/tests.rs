use super::*;
use std::os::unix::fs::{PermissionsExt, symlink};

fn root() -> (tempfile::TempDir, Root) {
    let t = tempfile::tempdir().unwrap();
    let r = Root::open(t.path()).unwrap();
    (t, r)
}

#[test]
fn writes_below_the_root_with_mode_set_before_content() {
    let (t, r) = root();
    let host = crate::host::RecordingHost::new();
    let perm = Perm {
        mode: 0o640,
        owner: None,
    };
    r.write_file(&host, "/opt/a/b/secret", b"s3cret", perm)
        .unwrap()
        .sync()
        .unwrap();
    let p = t.path().join("opt/a/b/secret");
    assert_eq!(std::fs::read(&p).unwrap(), b"s3cret");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    // No temp file is left beside it.
    let names: Vec<_> = std::fs::read_dir(t.path().join("opt/a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"]);
}

#[test]
fn a_link_anywhere_on_the_way_is_refused_and_nothing_is_written_through_it() {
    let (t, r) = root();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("opt/svc")).unwrap();
    // The service "owns" /opt/svc and points bin at a directory outside the contract.
    symlink(outside.path(), t.path().join("opt/svc/bin")).unwrap();
    let host = crate::host::RecordingHost::new();
    let perm = Perm {
        mode: 0o755,
        owner: None,
    };
    let err = r
        .write_file(&host, "/opt/svc/bin/run.sh", b"#!/bin/sh\n", perm)
        .unwrap_err();
    assert!(matches!(err, SafeFsError::Link { .. }), "{err}");
    assert!(err.to_string().contains("/opt/svc/bin"), "{err}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

    // A link as the last component: reads and node opens refuse it too.
    std::fs::write(outside.path().join("shadow"), b"root:x").unwrap();
    std::fs::create_dir_all(t.path().join("etc")).unwrap();
    symlink(outside.path().join("shadow"), t.path().join("etc/shadow")).unwrap();
    assert!(r.read("/etc/shadow", 1024).is_err());
    assert!(r.open_node("/etc/shadow").is_err());
    assert!(
        !r.set_perm(&host, "/etc/missing", None, Some(0o600))
            .unwrap()
    );
    // An absolute link that would leave the root.
    symlink("/", t.path().join("up")).unwrap();
    assert!(matches!(
        r.open_dir("/up/etc").unwrap_err(),
        SafeFsError::Link { .. }
    ));
    assert!(matches!(
        r.open_dir("/../etc").unwrap_err(),
        SafeFsError::BadPath { .. }
    ));
}

#[test]
fn reads_are_capped_and_refuse_fifos() {
    let (t, r) = root();
    std::fs::write(t.path().join("big"), vec![b'x'; 2048]).unwrap();
    assert!(matches!(
        r.read("/big", 1024).unwrap_err(),
        SafeFsError::TooLarge { max: 1024, .. }
    ));
    assert_eq!(r.read("/big", 4096).unwrap().unwrap().len(), 2048);
    assert_eq!(r.read("/missing", 10).unwrap(), None);
    rustix::fs::mkfifoat(&r.fd, "fifo", Mode::from_raw_mode(0o600)).unwrap();
    assert!(matches!(
        r.read("/fifo", 10).unwrap_err(),
        SafeFsError::NotRegular { .. }
    ));
}

#[test]
fn sweep_removes_planted_links_without_following_them() {
    let (t, r) = root();
    let target = t.path().join("precious");
    std::fs::write(&target, b"keep").unwrap();
    symlink(&target, t.path().join(".x.vmagent-0123456789abcdef.part")).unwrap();
    std::fs::write(t.path().join(".y.vmagent-1.part"), b"").unwrap();
    std::fs::create_dir(t.path().join(".z.vmagent-2.part")).unwrap();
    let d = r.open_dir("/").unwrap().unwrap();
    assert_eq!(d.sweep_temps().unwrap(), 2);
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    assert!(t.path().join(".z.vmagent-2.part").is_dir());
}

#[test]
fn temp_names_are_fresh_and_creation_is_exclusive() {
    let (t, r) = root();
    let d = r.open_dir("/").unwrap().unwrap();
    let a = d.create_temp(OsStr::new("f")).unwrap();
    let b = d.create_temp(OsStr::new("f")).unwrap();
    assert_ne!(a.path(), b.path());
    let shown = a.path().to_path_buf();
    let real = t.path().join(shown.file_name().unwrap());
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(shown.starts_with("/"), "{}", shown.display());
    assert!(t.path().join(shown.file_name().unwrap()).exists());
    drop(a);
    assert!(!t.path().join(shown.file_name().unwrap()).exists());
}
