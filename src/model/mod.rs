//! What the user asked for, validated and free of I/O.
//!
//! [`crate::mirrorfile`] lowers the TOML into these types: defaults applied, references and
//! platforms parsed, target names computed. Everything after parsing works from a `Model` and never
//! looks at TOML again. Each source keeps an [`Origin`] so later errors can still say "declared at
//! mirrorfile.toml:12".

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::oci::{Platform, Reference};

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
    /// `[cache] dir`, resolved relative to the Mirrorfile; `None` means the user's cache dir.
    pub cache_dir: Option<PathBuf>,
}

/// Where images go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A registry, with an optional path prefix put in front of every repository.
    Registry {
        host: String,
        prefix: Option<String>,
    },
}

/// How to talk to one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    pub tls: TlsMode,
    /// A PEM file of extra CA certificates to trust for this host.
    pub ca: Option<PathBuf>,
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

/// One image to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    pub reference: Reference,
    pub platforms: PlatformSelection,
    pub index_mode: IndexMode,
    /// The repository path on the target, prefix already applied (`mirror/library/alpine`).
    pub target_repository: String,
    /// The tag on the target: `to`'s tag, else the source tag; `None` for digest-only sources.
    pub target_tag: Option<String>,
    pub origin: Origin,
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
        self.registries.get(host).cloned().unwrap_or_default()
    }
}
