//! What the user asked for, validated and free of I/O.
//!
//! [`crate::mirrorfile`] lowers the TOML into these types: defaults applied, references and
//! platforms parsed, target names computed. Everything after parsing works from a `Model` and never
//! looks at TOML again. Each source keeps an [`Origin`] so later errors can still say "declared at
//! mirrorfile.toml:12".

pub mod filter;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::oci::{Platform, Reference};

pub use filter::TagFilter;

/// A whole Mirrorfile, lowered.
#[derive(Debug, Clone)]
pub struct Model {
    /// The Mirrorfile this came from (absolute or as given on the command line).
    pub path: PathBuf,
    pub target: Target,
    /// Per-registry settings keyed by registry host as written (`docker.io`, `127.0.0.1:5000`),
    /// Docker Hub's aliases (`index.docker.io`, `registry-1.docker.io`) normalised to `docker.io`.
    pub registries: BTreeMap<String, RegistrySettings>,
    /// Every image to mirror, in Mirrorfile order (list files expanded in place).
    pub images: Vec<ImageSource>,
    /// `[[bundles]]`: bundle files or OCI layout directories whose every image is mirrored.
    /// Their images are only known once the bundle is opened (see `ops`).
    pub bundles: Vec<BundleSource>,
    /// `[[archives]]` entries, in Mirrorfile order.
    pub archives: Vec<ArchiveSource>,
    /// Whole repositories (`repository = …` with a tag filter), expanded into images when the
    /// tags are known (from the lock, or from the registry's tag list).
    pub repositories: Vec<RepositorySource>,
    /// `[cache] dir`, resolved relative to the Mirrorfile; `None` means the user's cache dir.
    pub cache_dir: Option<PathBuf>,
    /// `--timeout`: how long any request may wait for its next byte, for every host (not a
    /// Mirrorfile key); `None` means the client's default.
    pub idle_timeout: Option<std::time::Duration>,
    /// Things in the Mirrorfile that are allowed but probably a mistake (a `[registry."HOST"]`
    /// table nothing uses), each naming its line; the CLI logs them as warnings.
    pub warnings: Vec<String>,
}

/// Where images go. Every kind takes an optional path prefix put in front of every repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A registry.
    Registry {
        host: String,
        prefix: Option<String>,
    },
    /// An OCI image layout directory; images are named `repository:tag` in its `index.json`.
    Layout {
        path: PathBuf,
        prefix: Option<String>,
    },
    /// One bundle file: a tar (`.tar.zst`: zstd-compressed) of an OCI layout holding exactly
    /// the mirrored content, plus the Mirrorfile and its lock.
    Bundle {
        path: PathBuf,
        prefix: Option<String>,
    },
}

impl Target {
    pub fn prefix(&self) -> Option<&str> {
        match self {
            Target::Registry { prefix, .. }
            | Target::Layout { prefix, .. }
            | Target::Bundle { prefix, .. } => prefix.as_deref(),
        }
    }
}

/// A `[[bundles]]` entry: a bundle file or an OCI layout directory to mirror every image of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSource {
    /// Resolved against the Mirrorfile's directory.
    pub path: PathBuf,
    /// As written in the Mirrorfile, for messages.
    pub written: String,
    pub platforms: PlatformSelection,
    pub index_mode: IndexMode,
    /// Where images named by a bare tag in the layout go (`repository = …`).
    pub repository: Option<String>,
    pub origin: Origin,
}

/// How to talk to one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    pub tls: TlsMode,
    /// A PEM file of extra CA certificates to trust for this host.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM files) for mutual TLS.
    pub client_cert: Option<ClientCert>,
    /// Environment variables holding a username and password for this host.
    pub env_credentials: Option<EnvCredentials>,
    /// Where to look for credentials, in order; `None` means [`CredentialKind::DEFAULT_ORDER`].
    pub credential_order: Option<Vec<CredentialKind>>,
    /// Requests in flight to this host at most; `None` means no limit beyond `--jobs`.
    pub max_concurrency: Option<usize>,
    /// How long a request may wait for its next byte (`--timeout`, not a Mirrorfile key);
    /// `None` means the client's default.
    pub idle_timeout: Option<std::time::Duration>,
}

impl RegistrySettings {
    /// The credential places to try, in order.
    pub fn credential_order(&self) -> &[CredentialKind] {
        self.credential_order
            .as_deref()
            .unwrap_or(&CredentialKind::DEFAULT_ORDER)
    }
}

/// `cert` and `key` of a `[registry."host"]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `username_env` and `password_env`: the *names* of variables, never their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvCredentials {
    pub username_var: String,
    pub password_var: String,
}

/// A place credentials are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Docker's `config.json` (`auths`, `credHelpers`, `credsStore`).
    DockerConfig,
    /// containers' `auth.json` (podman, skopeo, buildah).
    ContainersAuth,
    /// The variables named by `username_env` / `password_env`.
    Env,
}

impl CredentialKind {
    pub const DEFAULT_ORDER: [CredentialKind; 3] = [
        CredentialKind::DockerConfig,
        CredentialKind::ContainersAuth,
        CredentialKind::Env,
    ];
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// HTTPS with certificate verification (the default).
    #[default]
    Verify,
    /// HTTPS without certificate verification.
    SkipVerify,
    /// Plain HTTP.
    Http,
}

/// Which platforms of a multi-platform image to copy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PlatformSelection {
    /// Everything: the index is copied byte-identical.
    #[default]
    All,
    /// Only these (selectors, matched as containerd does).
    Only(Vec<Platform>),
}

/// What to do with an index when only some platforms are selected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IndexMode {
    /// Write a new index listing only the selected platforms (the default).
    #[default]
    Rewrite,
    /// Push the original index bytes unchanged, with only the selected children present.
    Sparse,
}

/// Where an image's bytes are read from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SourceLocation {
    /// The registry its reference names.
    #[default]
    Registry,
    /// An image of a bundle file (`oci-archive`) or OCI layout directory (`oci`); its
    /// reference's repository, tag and digest are its name there.
    Bundle {
        path: PathBuf,
        /// The path as written in the Mirrorfile.
        written: String,
        is_dir: bool,
    },
    /// An image read from `[[archives]]` (docker save / OCI tars); its blobs and manifests are
    /// already in the cache when it is planned, and `resolve::Provenance` says which archive
    /// gave which platform.
    Archives,
}

/// The registry name used in the references of images that come from bundles: never a real
/// host (`.invalid` is reserved), only there so such images reuse the reference grammar.
pub const BUNDLE_HOST: &str = "bundle.mirror.invalid";

/// One image to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    pub reference: Reference,
    pub location: SourceLocation,
    pub platforms: PlatformSelection,
    pub index_mode: IndexMode,
    /// The repository path on the target, prefix already applied (`mirror/library/alpine`).
    pub target_repository: String,
    /// The tag on the target: `to`'s tag, else the source tag; `None` for digest-only sources.
    pub target_tag: Option<String>,
    pub origin: Origin,
}

impl ImageSource {
    /// The key of the [`crate::resolve::Sources`] entry that serves this image.
    pub fn source_key(&self) -> String {
        match &self.location {
            SourceLocation::Registry => self.reference.registry().to_string(),
            SourceLocation::Bundle { path, .. } => bundle_key(path),
            SourceLocation::Archives => "archives".to_string(),
        }
    }

    /// The source as users read it: the reference, or `oci-archive:FILE:NAME` / `oci:DIR:NAME`
    /// (skopeo's spelling) for an image of a bundle.
    pub fn display(&self) -> String {
        match &self.location {
            SourceLocation::Registry | SourceLocation::Archives => self.reference.to_string(),
            SourceLocation::Bundle {
                written, is_dir, ..
            } => {
                let transport = if *is_dir { "oci" } else { "oci-archive" };
                let mut name = self.reference.repository().to_string();
                if let Some(tag) = self.reference.tag() {
                    name = format!("{name}:{tag}");
                }
                if let Some(digest) = self.reference.digest() {
                    name = format!("{name}@{digest}");
                }
                format!("{transport}:{written}:{name}")
            }
        }
    }
}

/// The [`crate::resolve::Sources`] key of the bundle at `path`.
pub fn bundle_key(path: &std::path::Path) -> String {
    format!("bundle:{}", path.display())
}

/// How layers of archives are compressed before they are pushed (uncompressed docker-save
/// layers only; layers an archive already holds compressed are pushed as they are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LayerCompression {
    #[default]
    Gzip,
    Zstd,
    None,
}

/// One `[[archives]]` entry: per-architecture `docker save` / OCI archives to push as
/// multi-platform images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSource {
    /// The `path` value as written (a file name or a glob).
    pub pattern: String,
    /// The files it matched, sorted.
    pub files: Vec<PathBuf>,
    /// `platform`: every image in these archives must be this platform.
    pub platform: Option<Platform>,
    /// `images`: take only these names (normalised references); `None` takes every image.
    pub images: Option<Vec<Reference>>,
    pub compression: LayerCompression,
    /// `index = false`: push a single-platform image as a plain manifest instead of an index.
    pub index: bool,
    /// Platform contradictions are warnings instead of errors.
    pub allow_platform_mismatch: bool,
    pub origin: Origin,
}

/// A whole repository, filtered by tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySource {
    /// `registry/repository`, without tag or digest.
    pub registry: String,
    pub repository: String,
    pub filter: TagFilter,
    pub platforms: PlatformSelection,
    pub index_mode: IndexMode,
    /// The repository path on the target, prefix already applied.
    pub target_repository: String,
    pub origin: Origin,
}

impl RepositorySource {
    /// `registry/repository`, as the lock and messages name it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The image for one of its tags.
    pub fn image(&self, tag: &str) -> Option<ImageSource> {
        let reference = Reference::new(&self.registry, &self.repository, Some(tag), None).ok()?;
        Some(ImageSource {
            reference,
            platforms: self.platforms.clone(),
            index_mode: self.index_mode,
            target_repository: self.target_repository.clone(),
            target_tag: Some(tag.to_string()),
            origin: self.origin.clone(),
            location: SourceLocation::Registry,
        })
    }
}

/// Where a source was declared, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

impl Model {
    /// Settings for a registry host; the default (verified HTTPS) when the Mirrorfile has none.
    pub fn registry_settings(&self, host: &str) -> RegistrySettings {
        let mut settings = self.registries.get(host).cloned().unwrap_or_default();
        settings.idle_timeout = settings.idle_timeout.or(self.idle_timeout);
        settings
    }
}
