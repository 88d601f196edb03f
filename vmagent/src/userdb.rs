//! Read-only view of the account database below a root: `<root>/etc/passwd` and
//! `<root>/etc/group`. Changes go through the real tools (useradd, usermod, groupadd) on the
//! [`crate::host::Host`]; this is how vmagent sees what is there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct UserDbError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

#[derive(Debug, Clone, Default)]
pub struct UserDb {
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
}

impl UserDb {
    /// Load `<root>/etc/passwd` and `<root>/etc/group`; a missing file reads as empty.
    pub fn load(root: &Path) -> Result<UserDb, UserDbError> {
        let read = |name: &str| {
            let path = root.join("etc").join(name);
            match std::fs::read_to_string(&path) {
                Ok(t) => Ok(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(source) => Err(UserDbError { path, source }),
            }
        };
        Ok(UserDb::parse(&read("passwd")?, &read("group")?))
    }

    /// Parse passwd and group text; malformed lines are skipped.
    pub fn parse(passwd: &str, group: &str) -> UserDb {
        let mut db = UserDb::default();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                continue;
            }
            let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) else {
                continue;
            };
            db.users.insert(
                f[0].to_string(),
                User {
                    name: f[0].to_string(),
                    uid,
                    gid,
                    home: f[5].to_string(),
                    shell: f[6].to_string(),
                },
            );
        }
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                continue;
            }
            let Ok(gid) = f[2].parse() else { continue };
            db.groups.insert(
                f[0].to_string(),
                Group {
                    name: f[0].to_string(),
                    gid,
                    members: f[3]
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect(),
                },
            );
        }
        db
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn uid(&self, name: &str) -> Option<u32> {
        self.user(name).map(|u| u.uid)
    }

    pub fn gid(&self, name: &str) -> Option<u32> {
        self.group(name).map(|g| g.gid)
    }

    /// The groups that list `user` as a member (its supplementary groups).
    pub fn supplementary_groups(&self, user: &str) -> BTreeSet<String> {
        self.groups
            .values()
            .filter(|g| g.members.iter().any(|m| m == user))
            .map(|g| g.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        kubelet:x:1000:1000::/home/kubelet:/usr/sbin/nologin\n\
        broken line\n";
    const GROUP: &str = "root:x:0:\npodplane:x:999:kubelet,zot\ncontainerd:x:998:kubelet\nkubelet:x:1000:\nbad:x:zz:\n";

    #[test]
    fn parses_users_groups_and_memberships() {
        let db = UserDb::parse(PASSWD, GROUP);
        assert_eq!(db.uid("kubelet"), Some(1000));
        assert_eq!(db.user("kubelet").unwrap().shell, "/usr/sbin/nologin");
        assert_eq!(db.gid("podplane"), Some(999));
        assert_eq!(db.gid("bad"), None);
        assert_eq!(
            db.supplementary_groups("kubelet")
                .into_iter()
                .collect::<Vec<_>>(),
            ["containerd", "podplane"]
        );
        assert!(db.supplementary_groups("zot").contains("podplane"));
        assert!(db.user("broken line").is_none());
    }

    #[test]
    fn missing_files_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let db = UserDb::load(dir.path()).unwrap();
        assert!(db.user("root").is_none());
    }
}
