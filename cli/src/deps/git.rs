//! The components source: a bare mirror of the Git repository the components manifest names,
//! at `<deps>/git/<host>/<path>`, fetched whole and then checked to hold the pinned ref (a
//! branch, a tag, a commit, or for an exact semver the tag `X` or `vX`; a semver range cannot be
//! checked offline and is not).
//!
//! Run with the `git` program: every machine that builds clusters has it, and it speaks every
//! transport and credential helper a user's Git host needs; a Git library would add a large
//! dependency for one clone. The manifest is not trusted: only https, http, ssh and file URLs
//! are accepted (no `ext::` or other helpers, also enforced with `GIT_ALLOW_PROTOCOL`), refs are
//! checked (nothing that git could read as an option), each path component of the mirror is a
//! checked name, the clone goes to a temp directory renamed into place, and every git run has a
//! time limit and never prompts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::catalog::{GitRef, Source};

/// Longest a clone or fetch may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("components source ref must set exactly one of branch, tag, semver, or commit")]
    Ref,
    #[error("components source: {what} {value:?} {why}; fix the components manifest")]
    Bad {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("cannot run git ({0}); install git, or pass --skip-components-git")]
    Spawn(std::io::Error),
    #[error("git {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("git {args} took longer than {}s", GIT_TIMEOUT.as_secs())]
    Timeout { args: String },
    #[error(
        "the components source {url} has no {kind} {name:?}; the manifest pins a ref the repository does not hold"
    )]
    Missing {
        url: String,
        kind: &'static str,
        name: String,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The one ref a source pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    Branch(String),
    Tag(String),
    Semver(String),
    Commit(String),
}

impl Pin {
    pub fn from(r: &GitRef) -> Result<Pin, GitError> {
        let set: Vec<Pin> = [
            r.branch.clone().map(Pin::Branch),
            r.tag.clone().map(Pin::Tag),
            r.semver.clone().map(Pin::Semver),
            r.commit.clone().map(Pin::Commit),
        ]
        .into_iter()
        .flatten()
        .collect();
        let [pin] = &set[..] else {
            return Err(GitError::Ref);
        };
        let bad = |what, value: &str, why| GitError::Bad {
            what,
            value: value.into(),
            why,
        };
        match pin {
            Pin::Branch(n) | Pin::Tag(n) if !valid_ref_name(n) => {
                Err(bad("ref", n, "is not a plain ref name"))
            }
            Pin::Commit(c)
                if !(7..=64).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Err(bad("commit", c, "is not 7-64 hex digits"))
            }
            Pin::Semver(s) if s.is_empty() || s.len() > 100 || s.starts_with('-') => {
                Err(bad("semver", s, "is not a version or range"))
            }
            p => Ok(p.clone()),
        }
    }
}

/// A ref name git cannot mistake for an option or a path trick: `[A-Za-z0-9._/-]`, not starting
/// with `-` or `/`, no `..`, no `//`, no component starting with `.`, not ending with `.lock`.
fn valid_ref_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 200
        && !n.starts_with('-')
        && !n.starts_with('/')
        && !n.ends_with('/')
        && !n.ends_with(".lock")
        && !n.contains("..")
        && !n.contains("//")
        && !n.split('/').any(|c| c.starts_with('.'))
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
}

/// Where the mirror of `url` lives below `<deps>/git`: `https://host/path` → `host/path`,
/// `git@host:path` → `host/path`, `file:///path` → `file/path`; every component checked.
pub fn mirror_path(git_dir: &Path, url: &str) -> Result<PathBuf, GitError> {
    let bad = |why| GitError::Bad {
        what: "url",
        value: url.into(),
        why,
    };
    let rel: String = if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("ssh://"))
    {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        rest.to_string()
    } else if let Some(rest) = url.strip_prefix("file://") {
        format!("file/{}", rest.trim_start_matches('/'))
    } else if let Some((user_host, path)) = url.split_once(':')
        && !user_host.contains('/')
        && user_host.contains('@')
    {
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        format!("{host}/{}", path.trim_start_matches('/'))
    } else {
        return Err(bad("is not an https, http, ssh or file URL"));
    };
    let rel = rel.trim_end_matches('/');
    let mut path = git_dir.to_path_buf();
    for c in rel.split('/') {
        // A host's port stays in its component (`host:8443`), as in the image mirror names.
        if !plain_component(c) {
            return Err(bad("has a path component that is not a plain name"));
        }
        path.push(c);
    }
    if path == git_dir {
        return Err(bad("names no repository"));
    }
    Ok(path)
}

/// A path component that stays one: not empty, `.` or `..`, no separator, control character or
/// whitespace, not an option (`-…`), at most 255 bytes.
fn plain_component(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 255
        && c != "."
        && c != ".."
        && !c.starts_with('-')
        && !c
            .chars()
            .any(|ch| matches!(ch, '/' | '\\' | '%') || ch.is_whitespace() || ch.is_control())
}

async fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, GitError> {
    let mut cmd = tokio::process::Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    cmd.args([
        "-c",
        "protocol.ext.allow=never",
        "-c",
        "core.hooksPath=/dev/null",
    ])
    .args(args)
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:file")
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let shown = args.join(" ");
    let out = match tokio::time::timeout(GIT_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(GitError::Timeout { args: shown }),
        Ok(r) => r.map_err(GitError::Spawn)?,
    };
    if !out.status.success() {
        return Err(GitError::Failed {
            args: shown,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `name` resolves in the bare repository.
async fn has(dir: &Path, name: &str) -> bool {
    git(
        Some(dir),
        &["rev-parse", "--verify", "--quiet", "--end-of-options", name],
    )
    .await
    .is_ok()
}

/// An exact semver (`1.2`, `v1.2.3`, `1.2.3-rc.1`), not a range.
fn exact_semver(s: &str) -> Option<&str> {
    let v = s.strip_prefix('v').unwrap_or(s);
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let ok = (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
    ok.then_some(v)
}

/// The pinned ref is in the mirror.
pub async fn check_pin(dir: &Path, url: &str, pin: &Pin) -> Result<(), GitError> {
    let missing = |kind, name: &str| GitError::Missing {
        url: url.into(),
        kind,
        name: name.into(),
    };
    match pin {
        Pin::Branch(b) => {
            if !has(dir, &format!("refs/heads/{b}")).await {
                return Err(missing("branch", b));
            }
        }
        Pin::Tag(t) => {
            if !has(dir, &format!("refs/tags/{t}")).await {
                return Err(missing("tag", t));
            }
        }
        Pin::Commit(c) => {
            if !has(dir, &format!("{c}^{{commit}}")).await {
                return Err(missing("commit", c));
            }
        }
        Pin::Semver(s) => {
            if let Some(v) = exact_semver(s)
                && !has(dir, &format!("refs/tags/{v}")).await
                && !has(dir, &format!("refs/tags/v{v}")).await
            {
                return Err(missing("tag for version", s));
            }
        }
    }
    Ok(())
}

/// Mirror the components source into `<git_dir>/<host>/<path>` and check its pin. Returns the
/// mirror's path.
pub async fn mirror(git_dir: &Path, source: &Source) -> Result<PathBuf, GitError> {
    let pin = Pin::from(&source.reference)?;
    let dest = mirror_path(git_dir, &source.url)?;
    if dest.join("HEAD").is_file() {
        git(
            Some(&dest),
            &[
                "fetch",
                "--quiet",
                "--force",
                "--tags",
                "--prune",
                "--end-of-options",
                &source.url,
                "+refs/*:refs/*",
            ],
        )
        .await?;
    } else {
        let parent = dest.parent().unwrap_or(git_dir);
        std::fs::create_dir_all(parent).map_err(|source| GitError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
        // Cloned beside its final path and renamed: never a half clone at the final path.
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            dest.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        let tmp_s = tmp.to_string_lossy().into_owned();
        let r = git(
            None,
            &["clone", "--quiet", "--mirror", "--", &source.url, &tmp_s],
        )
        .await;
        if let Err(e) = r {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&tmp, &dest).map_err(|source| GitError::Write {
            path: dest.clone(),
            source,
        })?;
    }
    check_pin(&dest, &source.url, &pin).await?;
    Ok(dest)
}

/// `verify`: the mirror is there, whole (`git fsck`), and holds its pin.
pub async fn verify(git_dir: &Path, source: &Source) -> Result<(), GitError> {
    let pin = Pin::from(&source.reference)?;
    let dest = mirror_path(git_dir, &source.url)?;
    git(Some(&dest), &["fsck", "--no-progress", "--no-dangling"]).await?;
    check_pin(&dest, &source.url, &pin).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_paths() {
        let g = Path::new("/d/git");
        assert_eq!(
            mirror_path(g, "https://github.com/podplane/components.git").unwrap(),
            g.join("github.com/podplane/components.git")
        );
        assert_eq!(
            mirror_path(g, "git@github.com:podplane/components.git").unwrap(),
            g.join("github.com/podplane/components.git")
        );
        assert_eq!(
            mirror_path(g, "file:///srv/c.git").unwrap(),
            g.join("file/srv/c.git")
        );
        for bad in [
            "ext::sh -c touch% /tmp/x",
            "https://h/../../etc",
            "https://h/a/./b",
            "https://",
            "fd::3",
            "/local/path",
            "https://h/-u",
        ] {
            assert!(mirror_path(g, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pins() {
        let r = |b: Option<&str>, t: Option<&str>, c: Option<&str>| GitRef {
            branch: b.map(Into::into),
            tag: t.map(Into::into),
            semver: None,
            commit: c.map(Into::into),
        };
        assert_eq!(
            Pin::from(&r(Some("main"), None, None)).unwrap(),
            Pin::Branch("main".into())
        );
        assert!(matches!(
            Pin::from(&r(Some("a"), Some("b"), None)),
            Err(GitError::Ref)
        ));
        assert!(matches!(
            Pin::from(&r(None, None, None)),
            Err(GitError::Ref)
        ));
        for bad in ["--upload-pack=x", "a..b", "/a", "a/.b", "a b", "x.lock"] {
            assert!(Pin::from(&r(Some(bad), None, None)).is_err(), "{bad}");
        }
        assert!(Pin::from(&r(None, None, Some("xyz1234"))).is_err());
        assert_eq!(exact_semver("v1.2.3"), Some("1.2.3"));
        assert_eq!(exact_semver(">=1.2"), None);
        for range in ["1.x", "~1.2", "^1", "1.2 - 1.4", "*", ">=1.0 <2"] {
            assert_eq!(exact_semver(range), None, "{range}");
        }
        assert_eq!(exact_semver("1.2.3-rc.1"), Some("1.2.3-rc.1"));
    }
}
