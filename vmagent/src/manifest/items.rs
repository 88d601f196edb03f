//! What a VM downloads and installs: the [`InstallItem`]s of a manifest for a provider, each
//! with its local file name and download URL, the mirror URL layout ([`mirror_url`],
//! [`url_basename`]) and the provider filter ([`provider_matches`]).

use super::digest::Digest;
use super::document::{DepType, Manifest};

/// One thing to download and install on a VM, derived from a dependency entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallItem {
    pub key: String,
    pub version: String,
    pub kind: DepType,
    /// The upstream URL from the manifest.
    pub url: String,
    pub digest: Digest,
    /// Expected size in bytes (never 0 in a validated manifest).
    pub size: u64,
}

impl InstallItem {
    /// The file name under the artifacts directory: `<key><ext>`, whatever the URL ends in
    /// (`cni-plugins.tar.gz` for a `.tgz` URL).
    pub fn local_name(&self) -> String {
        format!("{}{}", self.key, self.kind.extension())
    }

    /// Where to download from: the mirror form when a mirror base is given, else the manifest URL.
    pub fn source_url(&self, mirror: Option<&str>) -> String {
        match mirror {
            Some(base) => mirror_url(base, &self.key, &self.version, &self.url),
            None => self.url.clone(),
        }
    }
}

/// `<base>/vmconfig/artifacts/<key>/<version>/<basename(url)>`.
pub fn mirror_url(base: &str, key: &str, version: &str, upstream_url: &str) -> String {
    format!(
        "{}/vmconfig/artifacts/{}/{}/{}",
        base.trim_end_matches('/'),
        key,
        version,
        url_basename(upstream_url)
    )
}

/// The last path segment of a URL, without query or fragment, as written. Not through
/// `url::Url`: it percent-encodes and resolves `.` segments, while the mirror layout (and the
/// userdata template's regex `([^/?#]*)(?:[?#].*)?$`, which must agree byte for byte) uses the
/// segment exactly as the manifest spells it.
pub fn url_basename(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let path = &url[..end];
    path.rsplit('/').next().unwrap_or(path)
}

/// Does a dependency's provider list include `provider`? Empty list (or `all`) means every
/// provider; comparison is trimmed and case-insensitive, and comma-separated values are split.
pub fn provider_matches(providers: &[String], provider: &str) -> bool {
    let wanted = provider.trim();
    if providers.iter().all(|p| p.trim().is_empty()) {
        return true;
    }
    providers
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .any(|p| p.eq_ignore_ascii_case(wanted) || p.eq_ignore_ascii_case("all"))
}

impl Manifest {
    /// The items a VM of `provider` downloads and installs, sorted by key (byte order). `None`
    /// applies no provider filter.
    pub fn install_items(&self, provider: Option<&str>) -> Vec<InstallItem> {
        self.vmconfig
            .dependencies
            .iter()
            .filter(|(key, dep)| dep.kind != DepType::Qcow2 && !dep.is_unreleased_stub(key))
            .filter(|(_, dep)| provider.is_none_or(|p| provider_matches(&dep.providers, p)))
            .filter_map(|(key, dep)| {
                // validate() has checked every digest; an unvalidated manifest with a bad digest
                // simply yields no item for that key rather than a panic.
                let digest = Digest::parse(&dep.digest).ok()?;
                Some(InstallItem {
                    key: key.clone(),
                    version: dep.version.clone(),
                    kind: dep.kind,
                    url: dep.url.clone(),
                    digest,
                    size: dep.size,
                })
            })
            .collect()
    }
}
