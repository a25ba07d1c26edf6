//! `mirror inspect`: what an image is made of (platforms, digests, sizes, created time, layers),
//! read from a registry, an OCI layout directory or an image archive.
//!
//! Where the image lives is one [`Location`]; for registries, layouts and bundles everything
//! after "find the root digest" reads through the [`Source`] trait. A bundle (`oci-archive:`,
//! the spelling `apply --json` and the cache's roots use for bundle targets) is imported into
//! the cache as `[[bundles]]` imports it, every blob verified, and then read as a layout. The root manifest is kept as the exact
//! bytes read, so `--raw` prints what the registry stores (the same bytes `skopeo inspect --raw`
//! prints). An archive has no root, only images: see [`super::inspect_archive`].

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::endpoint::bundle;
use crate::endpoint::layout::{LayoutError, LayoutSource};
use crate::endpoint::registry::RegistryEndpoint;
use crate::endpoint::{EndpointError, Source};
use crate::environment::Environment;
use crate::model::RegistrySettings;
use crate::oci::{
    Descriptor, Digest, ManifestView, Platform, RawManifest, Reference, MAX_CONFIG_BYTES,
};
use crate::registry::{Client, CredentialStore, RegistryError};
use crate::store::Store;

/// Where the image to inspect lives, as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A registry reference (`docker.io/rancher/pause:3.1`, `host:5000/a/b@sha256:…`).
    Registry(Reference),
    /// `oci:DIR` or `oci:DIR:NAME` (NAME: the `org.opencontainers.image.ref.name` of an entry).
    OciDir { dir: PathBuf, name: Option<String> },
    /// `archive:PATH` or `archive:PATH:NAME`, a docker-save / podman / OCI archive (NAME: one
    /// of the image names it holds).
    Archive { path: PathBuf, name: Option<String> },
    /// `oci-archive:FILE` or `oci-archive:FILE:NAME`: a bundle or other OCI-layout tar, read as
    /// the layout it holds (NAME: an entry's `org.opencontainers.image.ref.name`, as for `oci:`).
    OciArchive { path: PathBuf, name: Option<String> },
}

impl FromStr for Location {
    type Err = InspectError;

    fn from_str(text: &str) -> Result<Location, InspectError> {
        if let Some(rest) = text.strip_prefix("archive:") {
            let (path, name) = file_and_name(rest);
            return Ok(Location::Archive { path, name });
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, name) = file_and_name(rest);
            return Ok(Location::OciArchive { path, name });
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            // A directory holding a layout first (`oci:my:out:NAME` with an unrelated `my/`
            // beside `my:out/`), then any directory.
            let is_layout = |p: &std::path::Path| p.join("index.json").is_file();
            let (dir, name) = match split_after_existing(rest, is_layout) {
                (dir, name) if is_layout(&dir) => (dir, name),
                _ => split_after_existing(rest, std::path::Path::is_dir),
            };
            return Ok(Location::OciDir { dir, name });
        }
        // skopeo's transport prefix, as skopeo users type it out of habit.
        let text = text.strip_prefix("docker://").unwrap_or(text);
        text.parse::<Reference>()
            .map(Location::Registry)
            .map_err(|e| InspectError::BadReference {
                input: text.to_string(),
                detail: e.to_string(),
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("`{input}` is not an image reference: {detail}")]
    BadReference { input: String, detail: String },
    #[error("cannot set up a client for registry {host}: {source}")]
    Client { host: String, source: RegistryError },
    #[error("{what}: {source}")]
    Read { what: String, source: EndpointError },
    /// Reading a layout directory or bundle file: its errors name it already.
    #[error(transparent)]
    Local(EndpointError),
    #[error("{what} is an index where an image manifest was expected")]
    NotAnImage { what: String },
    #[error("archive {archive}: {detail}")]
    Archive { archive: String, detail: String },
}

/// `PATH` or `PATH:NAME` of a file: the name starts after the first colon whose left side is a
/// file (names have colons too: `a.tar:rancher/pause:3.6`), as skopeo splits `oci-archive:`.
fn file_and_name(rest: &str) -> (PathBuf, Option<String>) {
    split_after_existing(rest, std::path::Path::is_file)
}

/// Splits `PATH[:NAME]` where NAME may hold colons itself (`out:lab/busybox:1.35`, as mirror
/// names layout entries): the whole text when it `exists`, else at the first colon whose left
/// side `exists`, else at the first colon (so an error names the missing PATH, not a mangled
/// one).
fn split_after_existing(
    rest: &str,
    exists: fn(&std::path::Path) -> bool,
) -> (PathBuf, Option<String>) {
    if exists(std::path::Path::new(rest)) {
        return (rest.into(), None);
    }
    let mut first = None;
    for (i, _) in rest.match_indices(':') {
        let (path, name) = (&rest[..i], &rest[i + 1..]);
        if path.is_empty() || name.is_empty() {
            continue;
        }
        if exists(std::path::Path::new(path)) {
            return (path.into(), Some(name.to_string()));
        }
        first.get_or_insert((path, name));
    }
    match first {
        Some((path, name)) => (path.into(), Some(name.to_string())),
        None => (rest.into(), None),
    }
}

/// What `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// What was asked for, as given.
    pub name: String,
    pub digest: String,
    pub media_type: String,
    /// Size of the root manifest or index, in bytes.
    pub size: u64,
    /// One entry per image manifest (one for a single-platform image).
    pub images: Vec<ImageInfo>,
    /// The root manifest's exact bytes (for `--raw`).
    #[serde(skip)]
    pub raw: Option<RawManifest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// `os/arch[/variant]`, from the index entry or else the config; `unknown/unknown` for
    /// attestations.
    pub platform: String,
    pub digest: String,
    pub media_type: String,
    /// Config plus layers, in bytes (what a pull of this platform downloads, compressed).
    pub size: u64,
    /// The config's `created`, as written there.
    pub created: Option<String>,
    pub config: Layer,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

impl From<&Descriptor> for Layer {
    fn from(d: &Descriptor) -> Layer {
        Layer {
            digest: d.digest.to_string(),
            size: d.size,
            media_type: d.media_type.to_string(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ConfigJson {
    #[serde(default)]
    pub(super) created: Option<String>,
    #[serde(flatten)]
    platform: Platform,
}

/// A client for `host` with `settings` (from the Mirrorfile when there is one).
pub async fn registry_client(
    host: &str,
    settings: &RegistrySettings,
    env: &Environment,
) -> Result<Client, InspectError> {
    let credentials = CredentialStore::new(env.clone());
    let (creds, source) = credentials.lookup(host, settings).await;
    Client::with_source(host, settings, creds, source).map_err(|source| InspectError::Client {
        host: host.to_string(),
        source,
    })
}

/// Opens the location: the source to read from, the repository inside it, and the root digest.
/// A bundle is imported into the cache at `cache` (only then is the cache opened).
pub async fn open(
    location: &Location,
    settings: impl Fn(&str) -> RegistrySettings,
    env: &Environment,
    cache: &Path,
) -> Result<(Arc<dyn Source>, String, Digest), InspectError> {
    let read = |what: String| move |source| InspectError::Read { what, source };
    let local = |e: LayoutError| InspectError::Local(e.into());
    match location {
        Location::Registry(reference) => {
            let host = reference.registry();
            let client = registry_client(host, &settings(host), env).await?;
            let source: Arc<dyn Source> = Arc::new(RegistryEndpoint::new(client));
            let digest = source
                .resolve(reference)
                .await
                .map_err(read(reference.to_string()))?;
            Ok((source, reference.repository().to_string(), digest))
        }
        Location::OciDir { dir, name } => {
            let layout = LayoutSource::open_dir(dir).map_err(local)?;
            let digest = layout.find(name.as_deref()).map_err(local)?.digest;
            Ok((Arc::new(layout), String::new(), digest))
        }
        Location::OciArchive { path, name } => {
            let store = Store::open(cache).map_err(|e| InspectError::Local(e.into()))?;
            let file = path.clone();
            let imported = tokio::task::spawn_blocking(move || bundle::import(&file, &store))
                .await
                .map_err(|e| {
                    local(LayoutError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })
                })?;
            let (layout, _) = imported.map_err(local)?;
            let digest = layout.find(name.as_deref()).map_err(local)?.digest;
            Ok((Arc::new(layout), String::new(), digest))
        }
        Location::Archive { path, .. } => Err(InspectError::Archive {
            archive: path.display().to_string(),
            detail: "an archive holds images, not one root; read it with `inspect_archive`".into(),
        }),
    }
}

/// Reads the root manifest only (`--raw`).
pub async fn raw(
    source: &dyn Source,
    repository: &str,
    digest: &Digest,
    name: &str,
) -> Result<RawManifest, InspectError> {
    source
        .manifest(repository, digest)
        .await
        .map_err(|source| InspectError::Read {
            what: format!("manifest {digest} of {name}"),
            source,
        })
}

/// Reads the root, every image manifest below it and their configs.
pub async fn inspect(
    source: &dyn Source,
    repository: &str,
    digest: &Digest,
    name: &str,
) -> Result<Inspection, InspectError> {
    let root = raw(source, repository, digest, name).await?;
    let bad = |source| InspectError::Read {
        what: format!("manifest {digest} of {name}"),
        source: EndpointError::Manifest(source),
    };
    let mut images = Vec::new();
    match root.view().map_err(bad)? {
        ManifestView::Image(_) => {
            images.push(image_info(source, repository, &root, None, name).await?);
        }
        ManifestView::Index(index) => {
            for entry in &index.manifests {
                let child = raw(source, repository, &entry.digest, name).await?;
                if child.is_index() {
                    continue; // nested indexes: shown by inspecting that digest
                }
                images.push(
                    image_info(source, repository, &child, entry.platform.as_ref(), name).await?,
                );
            }
        }
    }
    Ok(Inspection {
        name: name.to_string(),
        digest: root.digest().to_string(),
        media_type: root.media_type().to_string(),
        size: root.size(),
        images,
        raw: Some(root),
    })
}

async fn image_info(
    source: &dyn Source,
    repository: &str,
    manifest: &RawManifest,
    listed: Option<&Platform>,
    name: &str,
) -> Result<ImageInfo, InspectError> {
    let what = format!("manifest {} of {name}", manifest.digest());
    let view = match manifest.view() {
        Ok(ManifestView::Image(view)) => view,
        Ok(ManifestView::Index(_)) => {
            return Err(InspectError::NotAnImage { what });
        }
        Err(e) => {
            return Err(InspectError::Read {
                what,
                source: EndpointError::Manifest(e),
            })
        }
    };
    let config_bytes = source
        .small_blob(repository, &view.config, MAX_CONFIG_BYTES)
        .await
        .map_err(|source| InspectError::Read {
            what: format!("config {} of {name}", view.config.digest),
            source,
        })?;
    // Attestation manifests have configs that are not image configs: no created or platform
    // there, which is not an error.
    let config: Option<ConfigJson> = serde_json::from_slice(&config_bytes).ok();
    let platform = match (listed, &config) {
        (Some(p), _) => p.to_string(),
        (None, Some(c)) if !c.platform.os.is_empty() => c.platform.to_string(),
        _ => "unknown/unknown".to_string(),
    };
    Ok(ImageInfo {
        platform,
        digest: manifest.digest().to_string(),
        media_type: manifest.media_type().to_string(),
        size: view.config.size + view.layers.iter().map(|l| l.size).sum::<u64>(),
        created: config.and_then(|c| c.created),
        config: Layer::from(&view.config),
        layers: view.layers.iter().map(Layer::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let plain = "host:5000/a/b:1".parse::<Location>().ok();
        assert!(matches!(plain, Some(Location::Registry(_))));
        assert_eq!("docker://host:5000/a/b:1".parse::<Location>().ok(), plain);
        assert_eq!(
            "archive:/no/such/a.tar".parse::<Location>().ok(),
            Some(Location::Archive {
                path: "/no/such/a.tar".into(),
                name: None
            })
        );
        let dir = std::env::temp_dir().join(format!("mirror-loc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("a.tar");
        std::fs::write(&file, b"").expect("temp file");
        assert_eq!(
            format!("archive:{}:rancher/pause:3.6", file.display())
                .parse::<Location>()
                .ok(),
            Some(Location::Archive {
                path: file.clone(),
                name: Some("rancher/pause:3.6".into())
            })
        );
        // Layout names as mirror writes them hold a colon too: split after the directory.
        assert_eq!(
            format!("oci:{}:lab/busybox:1.35", dir.display())
                .parse::<Location>()
                .ok(),
            Some(Location::OciDir {
                dir: dir.clone(),
                name: Some("lab/busybox:1.35".into())
            })
        );
        // `oci:DIR:NAME` where DIR itself has a colon and a directory named like its first part
        // exists too: the one holding a layout wins.
        let plain = dir.join("my");
        let layout = dir.join("my:out");
        std::fs::create_dir_all(&plain).expect("plain dir");
        std::fs::create_dir_all(&layout).expect("layout dir");
        std::fs::write(layout.join("index.json"), b"{}").expect("index.json");
        assert_eq!(
            format!("oci:{}:lab/tiny:1.0", layout.display())
                .parse::<Location>()
                .ok(),
            Some(Location::OciDir {
                dir: layout.clone(),
                name: Some("lab/tiny:1.0".into())
            })
        );
        // A bundle name as `apply --json` prints it: the name keeps its own colons.
        assert_eq!(
            format!("oci-archive:{}:lab/busybox:1.35", file.display())
                .parse::<Location>()
                .ok(),
            Some(Location::OciArchive {
                path: file.clone(),
                name: Some("lab/busybox:1.35".into())
            })
        );
        assert_eq!(
            format!("oci-archive:{}", file.display())
                .parse::<Location>()
                .ok(),
            Some(Location::OciArchive {
                path: file.clone(),
                name: None
            })
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            "oci-archive:/no/such/b.tar:x:1".parse::<Location>().ok(),
            Some(Location::OciArchive {
                path: "/no/such/b.tar".into(),
                name: Some("x:1".into())
            })
        );
        assert_eq!(
            "oci:/no/such/dir:v1".parse::<Location>().ok(),
            Some(Location::OciDir {
                dir: "/no/such/dir".into(),
                name: Some("v1".into())
            })
        );
        assert_eq!(
            "oci:/no/such/dir".parse::<Location>().ok(),
            Some(Location::OciDir {
                dir: "/no/such/dir".into(),
                name: None
            })
        );
        let reg = "rancher/pause:3.1".parse::<Location>().ok();
        assert!(
            matches!(reg, Some(Location::Registry(r)) if r.to_string() == "docker.io/rancher/pause:3.1")
        );
        assert!(matches!(
            "UPPER/case".parse::<Location>(),
            Err(InspectError::BadReference { .. })
        ));
    }
}
