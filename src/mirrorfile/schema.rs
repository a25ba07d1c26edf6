//! The Mirrorfile exactly as written: serde types that match the TOML one to one.
//!
//! These types hold no defaults and check no cross-field rules; that is `lower`'s job. Keeping
//! them dumb means the TOML shape is readable in one place (and a JSON schema can be generated
//! from it later). Every value an error may point at is wrapped in [`Spanned`] so the error can
//! underline it, and `deny_unknown_fields` everywhere turns a typo into an error instead of a
//! silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorfileToml {
    pub target: Option<Spanned<TargetTable>>,
    /// `[registry."host"]` tables, keyed by host as written.
    #[serde(default)]
    pub registry: BTreeMap<Spanned<String>, RegistryTable>,
    pub defaults: Option<DefaultsTable>,
    #[serde(default)]
    pub images: Vec<Spanned<ImageEntry>>,
    pub cache: Option<CacheTable>,
}

/// `[target]`: where images go.
///
/// Each kind of target is its own optional key (`registry` today; `layout` and `bundle` later),
/// so "exactly one of" is checked in one place in `lower` and a new kind is one more field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTable {
    /// The registry to mirror into: `host` or `host:port`.
    pub registry: Option<Spanned<String>>,
    /// A repository path put in front of every target repository (`mirror` → `mirror/library/alpine`).
    pub prefix: Option<Spanned<String>>,
}

/// `[registry."host"]`: how to talk to one registry, source or target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryTable {
    /// `verify` (the default), `skip-verify` or `http`.
    pub tls: Option<Spanned<Tls>>,
    /// A PEM file of extra CA certificates, relative to the Mirrorfile's directory.
    pub ca: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Tls {
    Verify,
    SkipVerify,
    Http,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Index {
    Rewrite,
    Sparse,
}

/// `[defaults]`: settings every `[[images]]` entry inherits unless it sets its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsTable {
    /// `os/architecture[/variant]` selectors; absent means all platforms.
    pub platforms: Option<Spanned<Vec<Spanned<String>>>>,
    /// `rewrite` (the default) or `sparse`.
    pub index: Option<Spanned<Index>>,
}

/// One `[[images]]` entry: a single reference (`ref`) or a list file (`list`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// One image reference, e.g. `docker.io/rancher/mirrored-pause:3.6`.
    #[serde(rename = "ref")]
    pub reference: Option<Spanned<String>>,
    /// A file with one reference per line, relative to the Mirrorfile's directory.
    pub list: Option<Spanned<String>>,
    pub platforms: Option<Spanned<Vec<Spanned<String>>>>,
    /// Rename on the target: `repository[:tag]`; only with `ref`.
    pub to: Option<Spanned<String>>,
    pub index: Option<Spanned<Index>>,
}

/// `[cache]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheTable {
    /// The cache directory, relative to the Mirrorfile's directory.
    pub dir: Option<Spanned<String>>,
}
