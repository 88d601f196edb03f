use super::*;

const EXISTING: &str = r#"apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: Zm9v
    tls-server-name: prod.internal
- name: podplane-c1
  cluster:
    server: https://someone-else.example
users:
- name: alice
  user:
    token: abc
    exec: null
contexts:
- name: prod
  context:
    cluster: prod
    user: alice
    namespace: web
current-context: prod
extensions:
- name: x
  extension: {a: 1}
"#;

fn access(id: &str, sub: &str) -> Access {
    Access {
        cluster_id: id.into(),
        sub: sub.into(),
        server: format!("https://{id}.example:6443"),
        ca_pem: Some(b"PEM".to_vec()),
        command: "/usr/bin/podplane".into(),
    }
}

fn yaml(s: &str) -> Value {
    serde_norway::from_str(s).unwrap()
}

#[test]
fn add_then_remove_keeps_every_other_entry_in_meaning() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("config");
    std::fs::write(&path, EXISTING).unwrap();
    let mut k = load(&path).unwrap();
    let skipped = k.add_access(&access("c1", "a.b@x"));
    // The foreign `podplane-c1` cluster is left alone, with a message naming it.
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0].contains("cluster \"podplane-c1\""),
        "{skipped:?}"
    );
    k.add_access(&access("c1-b", "u"));
    save(&path, &k).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    let k = load(&path).unwrap();
    let user = k
        .users
        .iter()
        .find(|u| u.name == "podplane-c1-a.b@x")
        .unwrap();
    assert_eq!(
        user.body["user"]["exec"]["args"],
        yaml("[hooks, kubectl-auth, --cluster, c1, --user, a.b@x]")
    );
    assert_eq!(
        user.body["user"]["exec"]["command"],
        yaml("/usr/bin/podplane")
    );
    assert_eq!(k.context_cluster("c1").as_deref(), Some("podplane-c1"));
    assert!(k.clusters.iter().any(|c| c.name == "podplane-c1-b"));

    // Logout of c1 removes its user and context (the cluster entry was never ours), not c1-b's.
    let mut k = k;
    assert_eq!(k.remove_access("c1"), 2);
    assert_eq!(k.remove_access("c1"), 0);
    assert!(k.users.iter().any(|u| u.name == "podplane-c1-b-u"));
    k.remove_access("c1-b");
    save(&path, &k).unwrap();
    // What is left means exactly what the file meant before.
    let before: Value = yaml(EXISTING);
    let after: Value = yaml(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(after, before);
}

#[test]
fn a_second_login_replaces_podplanes_own_entries() {
    let mut k = load(Path::new("/nonexistent/kubeconfig")).unwrap();
    assert!(k.add_access(&access("c1", "u")).is_empty());
    let mut again = access("c1", "u");
    again.server = "https://moved.example:443".into();
    assert!(k.add_access(&again).is_empty());
    assert_eq!(k.clusters.len(), 1);
    assert_eq!(
        k.clusters[0].body["cluster"]["server"],
        yaml("https://moved.example:443")
    );
}

#[test]
fn unparsable_kubeconfig_names_the_file() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("config");
    std::fs::write(&path, "clusters: {not: a list}\n").unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert!(
        e.contains(&path.display().to_string()) && e.contains("not a kubeconfig"),
        "{e}"
    );
}

#[test]
fn kubeconfig_path_from_env() {
    let home = Path::new("/h");
    assert_eq!(default_path(None, home), PathBuf::from("/h/.kube/config"));
    assert_eq!(default_path(Some(":/a:/b"), home), PathBuf::from("/a"));
    assert_eq!(
        default_path(Some(""), home),
        PathBuf::from("/h/.kube/config")
    );
}
