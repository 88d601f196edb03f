use std::os::unix::fs::MetadataExt;

use super::member::clean;
use super::*;
use crate::host::RecordingHost;
use crate::install::rules::TarRule;
use crate::safefs::{Root, SafeFsError};
use std::path::{Path, PathBuf};

use podplane_testkit::tarball::{M, targz};

const ALL: TarRule = TarRule {
    members: None,
    dir: "/opt/cni/bin",
};

struct T {
    dir: tempfile::TempDir,
    fs: Root,
}

impl T {
    fn new() -> T {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/opt/cni/bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let fs = Root::open(&dir.path().join("root")).unwrap();
        T { dir, fs }
    }

    fn archive(&self, members: &[M<'_>]) -> PathBuf {
        let p = self.dir.path().join("a.tar.gz");
        std::fs::write(&p, targz(members)).unwrap();
        p
    }

    fn check(&self, members: &[M<'_>]) -> Result<Checked, ArchiveError> {
        check(&self.archive(members), "cni-plugins", &ALL, &self.fs)
    }

    fn install(&self, members: &[M<'_>]) -> Result<Vec<String>, ArchiveError> {
        let c = self.check(members)?;
        stage(&c, &self.fs, &RecordingHost::new())?.commit()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join("root").join(p.trim_start_matches('/'))
    }

    fn outside_is_empty(&self) -> bool {
        std::fs::read_dir(self.dir.path().join("outside"))
            .unwrap()
            .next()
            .is_none()
    }
}

fn refused(r: Result<impl std::fmt::Debug, ArchiveError>, needle: &str) {
    match r {
        Err(e @ ArchiveError::Unsafe { .. }) => {
            assert!(e.to_string().contains(needle), "{e}")
        }
        other => panic!("expected a refusal ({needle}), got {other:?}"),
    }
}

#[test]
fn member_paths_are_cleaned_or_refused() {
    assert_eq!(
        clean(Path::new("./bin/ctr")).unwrap(),
        PathBuf::from("bin/ctr")
    );
    assert!(clean(Path::new("/etc/passwd")).is_err());
    assert!(clean(Path::new("a/../../x")).is_err());
}

#[test]
fn single_links_must_stay_inside() {
    let t = T::new();
    refused(
        t.check(&[M::Link("b", "../c")]),
        "pointing outside the destination",
    );
    refused(
        t.check(&[M::Link("b", "/usr/bin/x")]),
        "pointing outside the destination",
    );
    refused(
        t.check(&[M::Dir("a/"), M::Link("a/b", "../../c")]),
        "pointing outside",
    );
    t.check(&[M::Dir("a/"), M::Link("a/b", "../c")]).unwrap();
}

#[test]
fn chains_of_member_links_are_resolved_whole() {
    let t = T::new();
    // Each link alone stays inside; l1 -> sub/l2/.. with sub/l2 -> .. is the parent of the
    // destination. In either order.
    refused(
        t.check(&[
            M::Dir("sub/"),
            M::Link("sub/l2", ".."),
            M::Link("l1", "sub/l2/.."),
        ]),
        "pointing outside",
    );
    refused(
        t.check(&[
            M::Link("l1", "sub/l2/.."),
            M::Dir("sub/"),
            M::Link("sub/l2", ".."),
        ]),
        "pointing outside",
    );
    // A link to a link that escapes.
    refused(
        t.check(&[M::Dir("d/"), M::Link("d/up", "../.."), M::Link("x", "d/up")]),
        "pointing outside",
    );
    // Loops are refused, not followed forever.
    refused(
        t.check(&[M::Link("a", "b"), M::Link("b", "a")]),
        "more than 40 links",
    );
    // A chain that stays inside is fine, and works once extracted.
    let done = t
        .install(&[
            M::Dir("sub/"),
            M::File("sub/x", 0o755, b"x!"),
            M::Link("sub/up", ".."),
            M::Link("m", "sub/up/sub/x"),
        ])
        .unwrap();
    assert_eq!(done.len(), 3, "{done:?}");
    assert_eq!(std::fs::read(t.path("/opt/cni/bin/m")).unwrap(), b"x!");
}

#[test]
fn members_through_a_link_are_refused() {
    let t = T::new();
    refused(
        t.check(&[
            M::Link("a", "sub"),
            M::Dir("sub/"),
            M::File("a/f", 0o644, b""),
        ]),
        "goes through the symlink member \"a\"",
    );
    refused(
        t.check(&[M::File("f", 0o644, b""), M::File("f/g", 0o644, b"")]),
        "is a file in the archive",
    );
    refused(
        t.check(&[M::File("f", 0o644, b"1"), M::File("f", 0o644, b"2")]),
        "appears twice",
    );
}

#[test]
fn links_on_disk_are_never_written_through() {
    let t = T::new();
    let outside = t.dir.path().join("outside");
    std::os::unix::fs::symlink(&outside, t.path("/opt/cni/bin/evil")).unwrap();
    refused(
        t.check(&[M::File("evil/x", 0o755, b"pwn")]),
        "goes through the symlink",
    );
    refused(
        t.check(&[M::Dir("evil/"), M::File("evil/x", 0o755, b"pwn")]),
        "is a symlink, not a directory",
    );
    // A member link whose target goes through the link on disk.
    refused(t.check(&[M::Link("l", "evil/x")]), "pointing outside");
    std::os::unix::fs::symlink("../..", t.path("/opt/cni/bin/up")).unwrap();
    refused(t.check(&[M::Link("l", "up/etc")]), "pointing outside");
    // A member may replace a link on disk (rename replaces the link itself).
    t.install(&[M::File("up", 0o755, b"now a file")]).unwrap();
    assert!(t.path("/opt/cni/bin/up").is_file());
    assert!(t.outside_is_empty());

    // The destination directory itself a link: refused before anything is read into it.
    let t = T::new();
    std::fs::remove_dir(t.path("/opt/cni/bin")).unwrap();
    std::os::unix::fs::symlink(&outside, t.path("/opt/cni/bin")).unwrap();
    let e = t.check(&[M::File("x", 0o755, b"pwn")]).unwrap_err();
    assert!(
        matches!(e, ArchiveError::Fs(SafeFsError::Link { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("/opt/cni/bin"), "{e}");
    assert!(t.outside_is_empty());
}

#[test]
fn a_link_planted_after_the_check_is_refused_at_staging() {
    let t = T::new();
    let c = t
        .check(&[M::Dir("sub/"), M::File("sub/x", 0o755, b"pwn")])
        .unwrap();
    std::os::unix::fs::symlink(t.dir.path().join("outside"), t.path("/opt/cni/bin/sub")).unwrap();
    let e = stage(&c, &t.fs, &RecordingHost::new()).unwrap_err();
    assert!(
        matches!(e, ArchiveError::Fs(SafeFsError::Link { .. })),
        "{e}"
    );
    assert!(t.outside_is_empty());
}

#[test]
fn modes_lose_set_id_sticky_and_group_other_write() {
    let t = T::new();
    t.install(&[
        M::File("suid", 0o6777, b"x"),
        M::File("sticky", 0o1777, b"x"),
        M::File("plain", 0o644, b"x"),
        M::File("private", 0o700, b"x"),
    ])
    .unwrap();
    let mode = |n: &str| {
        std::fs::symlink_metadata(t.path(&format!("/opt/cni/bin/{n}")))
            .unwrap()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("suid"), 0o755);
    assert_eq!(mode("sticky"), 0o755);
    assert_eq!(mode("plain"), 0o644);
    assert_eq!(mode("private"), 0o700);
}

#[test]
fn corrupt_and_changed_archives_are_refused() {
    let t = T::new();
    // Truncated: the compressed stream ends early.
    let p = t.archive(&[M::File("x", 0o755, &[7u8; 4096])]);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 12]).unwrap();
    let e = check(&p, "cni-plugins", &ALL, &t.fs).unwrap_err();
    assert!(matches!(e, ArchiveError::Read { .. }), "{e}");
    // A bad checksum in the gzip trailer.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 8] ^= 0xff;
    std::fs::write(&p, &bad).unwrap();
    let e = check(&p, "cni-plugins", &ALL, &t.fs).unwrap_err();
    assert!(matches!(e, ArchiveError::Read { .. }), "{e}");

    // Swapped between check and staging.
    let p = t.archive(&[M::File("x", 0o755, b"good")]);
    let c = check(&p, "cni-plugins", &ALL, &t.fs).unwrap();
    std::fs::write(&p, targz(&[M::File("x", 0o755, b"evil")])).unwrap();
    // Same name, kind, mode and size: the content is not compared here (the artifact's
    // digest was checked before), but a different member list is refused.
    std::fs::write(&p, targz(&[M::Link("x", "y")])).unwrap();
    let e = stage(&c, &t.fs, &RecordingHost::new()).unwrap_err();
    assert!(matches!(e, ArchiveError::Changed { .. }), "{e}");
    assert!(!t.path("/opt/cni/bin/x").exists());
    let left: Vec<_> = std::fs::read_dir(t.path("/opt/cni/bin")).unwrap().collect();
    assert!(left.is_empty(), "no temp files left: {left:?}");
}

#[test]
fn selected_members_need_regular_files_and_reachable_destinations() {
    let t = T::new();
    const RULE: TarRule = TarRule {
        members: Some(&[("nstance-agent", "/opt/nstance-agent/bin/nstance-agent")]),
        dir: "/opt/nstance-agent/bin",
    };
    let p = t.archive(&[M::Link("nstance-agent", "x")]);
    refused(
        check(&p, "nstance-agent", &RULE, &t.fs),
        "needs a regular file",
    );
    let p = t.archive(&[M::File("README", 0o644, b"")]);
    let e = check(&p, "nstance-agent", &RULE, &t.fs).unwrap_err();
    assert!(matches!(e, ArchiveError::Missing { .. }), "{e}");

    // The service account owns /opt/nstance-agent and plants bin -> elsewhere.
    std::fs::create_dir_all(t.path("/opt/nstance-agent")).unwrap();
    std::os::unix::fs::symlink(
        t.dir.path().join("outside"),
        t.path("/opt/nstance-agent/bin"),
    )
    .unwrap();
    let p = t.archive(&[M::File("nstance-agent", 0o755, b"x")]);
    let e = check(&p, "nstance-agent", &RULE, &t.fs).unwrap_err();
    assert!(
        e.to_string().contains("/opt/nstance-agent/bin") && e.to_string().contains("link"),
        "{e}"
    );
    // And if it plants it between check and staging, staging refuses it too.
    std::fs::remove_file(t.path("/opt/nstance-agent/bin")).unwrap();
    let c = check(&p, "nstance-agent", &RULE, &t.fs).unwrap();
    std::os::unix::fs::symlink(
        t.dir.path().join("outside"),
        t.path("/opt/nstance-agent/bin"),
    )
    .unwrap();
    let e = stage(&c, &t.fs, &RecordingHost::new()).unwrap_err();
    assert!(
        matches!(e, ArchiveError::Fs(SafeFsError::Link { .. })),
        "{e}"
    );
    assert!(t.outside_is_empty());

    // A directory where the file goes.
    std::fs::remove_file(t.path("/opt/nstance-agent/bin")).unwrap();
    std::fs::create_dir_all(t.path("/opt/nstance-agent/bin/nstance-agent")).unwrap();
    let e = check(&p, "nstance-agent", &RULE, &t.fs).unwrap_err();
    assert!(matches!(e, ArchiveError::InTheWay { .. }), "{e}");
}
