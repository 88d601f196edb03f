//! The docker credential helper (`podplane hooks docker-credentials`, also run as
//! `docker-credential-podplane`): `get` answers for a logged-in cluster's registry with the
//! current ID token; `store` and `erase` succeed without storing; `list` prints `{}`.

use std::io::{Read, Write};
use std::path::Path;

use super::{Env, LoginError};

/// Adds `credHelpers["<host>"] = "podplane"` to `~/.docker/config.json` unless the file has
/// an entry for that host already; `true` when added.
pub fn add_cred_helper(home: &Path, host: &str) -> Result<bool, LoginError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = home.join(".docker");
    let path = dir.join("config.json");
    let io = |e: std::io::Error| LoginError::Other(format!("{}: {e}", path.display()));
    let mut v: serde_json::Value = match std::fs::read(&path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => serde_json::json!({}),
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            LoginError::Other(format!(
                "{}: not valid JSON ({e}); fix it, then log in again",
                path.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(io(e)),
    };
    let Some(obj) = v.as_object_mut() else {
        return Err(LoginError::Other(format!(
            "{}: not a JSON object",
            path.display()
        )));
    };
    let helpers = obj
        .entry("credHelpers")
        .or_insert_with(|| serde_json::json!({}));
    let Some(helpers) = helpers.as_object_mut() else {
        return Err(LoginError::Other(format!(
            "{}: credHelpers is not an object",
            path.display()
        )));
    };
    if helpers.contains_key(host) {
        return Ok(false);
    }
    helpers.insert(host.into(), "podplane".into());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io)?;
    let mut text =
        serde_json::to_string_pretty(&v).map_err(|e| LoginError::Other(e.to_string()))?;
    text.push('\n');
    vmagent::fsutil::write_atomic(&path, text.as_bytes(), Some(0o600)).map_err(io)?;
    Ok(true)
}

/// The registry hostname of a `get` request: a server URL without scheme or trailing `/`.
pub fn host_of(server_url: &str) -> &str {
    let s = server_url.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.trim_end_matches('/')
}

/// Runs one helper action with its stdin and stdout.
pub fn run(
    env: &Env,
    action: &str,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), LoginError> {
    let mut input = String::new();
    stdin
        .read_to_string(&mut input)
        .map_err(|e| LoginError::Other(format!("read stdin: {e}")))?;
    match action {
        "store" | "erase" => Ok(()),
        "list" => writeln!(out, "{{}}").map_err(|e| LoginError::Other(e.to_string())),
        "get" => {
            // Docker sends the bare URL; a JSON string is accepted too.
            let raw = serde_json::from_str::<String>(input.trim()).unwrap_or(input);
            let host = host_of(&raw).to_string();
            let login = super::meta::all(&env.config_dir)?
                .into_values()
                .find(|r| r.registry_host == host)
                .ok_or_else(|| {
                    LoginError::Other(format!("no Podplane registry credentials found for {host}"))
                })?;
            let (token, _) = super::current_token(env, &login.cluster_id, &login.sub, err)?;
            let v = serde_json::json!({
                "ServerURL": host,
                "Username": "<token>",
                "Secret": token,
            });
            writeln!(out, "{v}").map_err(|e| LoginError::Other(e.to_string()))
        }
        other => Err(LoginError::Other(format!(
            "unsupported docker credential helper action {other:?}; use get, store, erase or list"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cred_helper_entry_is_added_once_and_keeps_the_rest() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join(".docker")).unwrap();
        let path = t.path().join(".docker/config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"x.io":{}},"credHelpers":{"mine.io":"other"}}"#,
        )
        .unwrap();
        assert!(add_cred_helper(t.path(), "reg.example").unwrap());
        assert!(!add_cred_helper(t.path(), "reg.example").unwrap());
        assert!(!add_cred_helper(t.path(), "mine.io").unwrap());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["credHelpers"]["reg.example"], "podplane");
        assert_eq!(v["credHelpers"]["mine.io"], "other");
        assert!(v["auths"]["x.io"].is_object());
    }

    #[test]
    fn host_of_server_urls() {
        assert_eq!(host_of("https://reg.example/"), "reg.example");
        assert_eq!(host_of("reg.example:5000"), "reg.example:5000");
        assert_eq!(host_of("http://r/\n"), "r");
    }
}
