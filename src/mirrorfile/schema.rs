//! The Mirrorfile exactly as written: serde types that match the TOML one to one.
//!
//! These types hold no defaults and check no cross-field rules; that is `lower`'s job. Keeping
//! them dumb means the TOML shape is readable in one place (and a JSON schema can be generated
//! from it later). Every value an error may point at is wrapped in [`Spanned`] so the error can
//! underline it, and `deny_unknown_fields` everywhere turns a typo into an error instead of a
//! silently ignored setting.
//!
//! The same types generate `schemas/mirrorfile.schema.json` ([`json_schema`], `mirror schema`)
//! so editors can validate and complete Mirrorfiles; a test fails when the committed file is
//! stale. `Spanned<T>` is invisible in TOML, so each such field tells schemars to describe `T`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A Mirrorfile: what to mirror, where, and for which platforms.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MirrorfileToml {
    #[schemars(with = "Option<TargetTable>")]
    pub target: Option<Spanned<TargetTable>>,
    /// `[registry."host"]` tables, keyed by host as written.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RegistryTable>")]
    pub registry: BTreeMap<Spanned<String>, RegistryTable>,
    pub defaults: Option<DefaultsTable>,
    #[serde(default)]
    #[schemars(with = "Vec<ImageEntry>")]
    pub images: Vec<Spanned<ImageEntry>>,
    /// `[[bundles]]`: bundle files or OCI layout directories to mirror every image of.
    #[serde(default)]
    #[schemars(with = "Vec<BundleEntry>")]
    pub bundles: Vec<Spanned<BundleEntry>>,
    /// Per-architecture `docker save` / OCI archives to push as multi-platform images.
    #[serde(default)]
    #[schemars(with = "Vec<ArchiveEntry>")]
    pub archives: Vec<Spanned<ArchiveEntry>>,
    pub cache: Option<CacheTable>,
}

/// `[target]`: where images go.
///
/// Each kind of target is its own optional key (`registry`, `layout`, `bundle`), so "exactly
/// one of" is checked in one place in `lower` and a new kind is one more field.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetTable {
    /// The registry to mirror into: `host` or `host:port`.
    #[schemars(with = "Option<String>")]
    pub registry: Option<Spanned<String>>,
    /// An OCI image layout directory to mirror into, relative to the Mirrorfile's directory.
    #[schemars(with = "Option<String>")]
    pub layout: Option<Spanned<String>>,
    /// A bundle file to write (`.tar`, or `.tar.zst` for zstd), relative to the Mirrorfile's
    /// directory.
    #[schemars(with = "Option<String>")]
    pub bundle: Option<Spanned<String>>,
    /// A repository path put in front of every target repository (`mirror` → `mirror/library/alpine`).
    #[schemars(with = "Option<String>")]
    pub prefix: Option<Spanned<String>>,
}

/// `[registry."host"]`: how to talk to one registry, source or target.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryTable {
    /// `verify` (the default), `skip-verify` or `http`.
    #[schemars(with = "Option<Tls>")]
    pub tls: Option<Spanned<Tls>>,
    /// A PEM file of extra CA certificates, relative to the Mirrorfile's directory.
    #[schemars(with = "Option<String>")]
    pub ca: Option<Spanned<String>>,
    /// A PEM client certificate for mutual TLS (with `key`), relative to the Mirrorfile.
    #[schemars(with = "Option<String>")]
    pub cert: Option<Spanned<String>>,
    /// The PEM private key of `cert`, relative to the Mirrorfile.
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// The name of an environment variable holding the username (with `password_env`).
    #[schemars(with = "Option<String>")]
    pub username_env: Option<Spanned<String>>,
    /// The name of an environment variable holding the password or token.
    #[schemars(with = "Option<String>")]
    pub password_env: Option<Spanned<String>>,
    /// Where to look for credentials, in order: `docker-config`, `containers-auth`, `env`.
    #[schemars(with = "Option<Vec<CredentialPlace>>")]
    pub credentials: Option<Spanned<Vec<Spanned<CredentialPlace>>>>,
    /// Requests in flight to this registry at most.
    #[schemars(with = "Option<u16>")]
    pub max_concurrency: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialPlace {
    /// Docker's `config.json`, with its credential helpers.
    DockerConfig,
    /// containers' `auth.json` (podman, skopeo).
    ContainersAuth,
    /// The variables named by `username_env` / `password_env`.
    Env,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Tls {
    /// HTTPS with certificate verification (the default).
    Verify,
    /// HTTPS without certificate verification.
    SkipVerify,
    /// Plain HTTP.
    Http,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Index {
    /// Write a new index listing only the selected platforms (the default).
    Rewrite,
    /// Push the original index bytes unchanged, with only the selected children present.
    Sparse,
}

/// `[defaults]`: settings every `[[images]]` entry inherits unless it sets its own.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultsTable {
    /// `os/architecture[/variant]` selectors, or `"all"`; absent means all platforms.
    #[schemars(with = "Option<PlatformsSchema>")]
    pub platforms: Option<Spanned<Platforms>>,
    /// `rewrite` (the default) or `sparse`.
    #[schemars(with = "Option<Index>")]
    pub index: Option<Spanned<Index>>,
    /// How `[[archives]]` layers are compressed: `gzip` (the default), `zstd` or `none`.
    #[schemars(with = "Option<Compression>")]
    pub compression: Option<Spanned<Compression>>,
}

/// `platforms`: a list of `os/architecture[/variant]` selectors, or the word `"all"` — which
/// lets one entry take every platform when `[defaults]` narrows the rest.
#[derive(Debug)]
pub enum Platforms {
    All,
    List(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Platforms {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Platforms;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"a list of platforms like ["linux/amd64"], or "all""#)
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Platforms, E> {
                if value == "all" {
                    Ok(Platforms::All)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(value), &self))
                }
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Platforms, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element()? {
                    list.push(item);
                }
                Ok(Platforms::List(list))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

// How [`Platforms`] looks in the JSON schema (serde never uses it).
/// Platforms to copy: `"all"`, or a list of `os/architecture[/variant]` selectors.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PlatformsSchema {
    /// Every platform.
    All(AllPlatforms),
    /// Only these `os/architecture[/variant]` selectors.
    List(Vec<String>),
}

/// Every platform.
#[derive(JsonSchema)]
#[allow(dead_code)]
enum AllPlatforms {
    #[serde(rename = "all")]
    All,
}

/// Layer compression for `[[archives]]`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// One `[[archives]]` entry: `docker save` / OCI archives, one per architecture.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveEntry {
    /// A file or a glob (`k3s-airgap-images-*.tar*`), relative to the Mirrorfile's directory.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// Asserts the platform of every image in the archive(s), e.g. `linux/arm/v7`.
    #[schemars(with = "Option<String>")]
    pub platform: Option<Spanned<String>>,
    /// Take only these images (names as in the archive, e.g. `rancher/mirrored-pause:3.6`).
    #[schemars(with = "Option<Vec<String>>")]
    pub images: Option<Spanned<Vec<Spanned<String>>>>,
    /// `gzip` (the default), `zstd` or `none`; overrides `[defaults]`.
    #[schemars(with = "Option<Compression>")]
    pub compression: Option<Spanned<Compression>>,
    /// `false`: a single-platform image is pushed as a plain manifest, not an index.
    #[schemars(with = "Option<bool>")]
    pub index: Option<Spanned<bool>>,
    /// `true`: a platform contradiction is a warning, not an error.
    pub allow_platform_mismatch: Option<bool>,
}

/// One `[[images]]` entry: a single reference (`ref`), a list file (`list`) or a whole
/// repository filtered by tag (`repository` + `tags`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// One image reference, e.g. `docker.io/rancher/mirrored-pause:3.6`.
    #[serde(rename = "ref")]
    #[schemars(with = "Option<String>")]
    pub reference: Option<Spanned<String>>,
    /// A file with one reference per line, relative to the Mirrorfile's directory.
    #[schemars(with = "Option<String>")]
    pub list: Option<Spanned<String>>,
    /// A whole repository (`registry/path`, no tag), with `tags` saying which tags to copy.
    #[schemars(with = "Option<String>")]
    pub repository: Option<Spanned<String>>,
    /// Which tags of `repository` to copy; only with `repository`.
    #[schemars(with = "Option<TagsTable>")]
    pub tags: Option<Spanned<TagsTable>>,
    /// `os/architecture[/variant]` selectors for this entry, or `"all"`, overriding `[defaults]`.
    #[schemars(with = "Option<PlatformsSchema>")]
    pub platforms: Option<Spanned<Platforms>>,
    /// Rename on the target: `repository[:tag]`; only with `ref`.
    #[schemars(with = "Option<String>")]
    pub to: Option<Spanned<String>>,
    /// `rewrite` or `sparse` for this entry, overriding `[defaults]`.
    #[schemars(with = "Option<Index>")]
    pub index: Option<Spanned<Index>>,
}

/// One `[[bundles]]` entry: every image of a bundle file or OCI layout directory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleEntry {
    /// The bundle file or layout directory, relative to the Mirrorfile's directory.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// `os/architecture[/variant]` selectors, or `"all"`; absent means the `[defaults]` (or all
    /// platforms).
    #[schemars(with = "Option<PlatformsSchema>")]
    pub platforms: Option<Spanned<Platforms>>,
    /// `rewrite` (the default) or `sparse`.
    #[schemars(with = "Option<Index>")]
    pub index: Option<Spanned<Index>>,
    /// The repository for images named only by a tag in the layout's `index.json` (as
    /// `skopeo copy … oci:DIR:TAG` writes them), e.g. `library/busybox`.
    #[schemars(with = "Option<String>")]
    pub repository: Option<Spanned<String>>,
}

/// `tags = { regex = "…", semver = "…", latest = N }`: every key optional, all must hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsTable {
    /// A regular expression a tag must match (anywhere; anchor with `^…$`).
    #[schemars(with = "Option<String>")]
    pub regex: Option<Spanned<String>>,
    /// A semver requirement (`>=3.18, <4`) a tag, read as a version, must satisfy.
    #[schemars(with = "Option<String>")]
    pub semver: Option<Spanned<String>>,
    /// Keep only the N highest of the tags left.
    #[schemars(with = "Option<u32>")]
    pub latest: Option<Spanned<i64>>,
}

/// `[cache]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheTable {
    /// The cache directory, relative to the Mirrorfile's directory.
    #[schemars(with = "Option<String>")]
    pub dir: Option<Spanned<String>>,
}

/// The JSON Schema of a Mirrorfile (draft 2020-12), pretty-printed with a trailing newline:
/// exactly the text of `schemas/mirrorfile.schema.json`.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(MirrorfileToml);
    schema.insert("title".into(), "mirrorfile.toml".into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join("mirrorfile.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == json_schema(),
            "{} is stale or missing: regenerate it with \
             `cargo run -- schema > schemas/mirrorfile.schema.json` and commit it",
            path.display()
        );
    }

    #[test]
    fn schema_rejects_unknown_keys_and_lists_the_enums() {
        let schema: serde_json::Value =
            serde_json::from_str(&json_schema()).expect("the schema is JSON");
        assert_eq!(schema["additionalProperties"], false);
        let defs = &schema["$defs"];
        for table in [
            "TargetTable",
            "RegistryTable",
            "DefaultsTable",
            "ImageEntry",
            "TagsTable",
            "CacheTable",
        ] {
            assert_eq!(defs[table]["additionalProperties"], false, "{table}");
        }
        let entry: Vec<&String> = defs["ImageEntry"]["properties"]
            .as_object()
            .expect("ImageEntry properties")
            .keys()
            .collect();
        assert_eq!(
            entry,
            [
                "ref",
                "list",
                "repository",
                "tags",
                "platforms",
                "to",
                "index"
            ]
        );
        // `Spanned<String>` is described as the string it wraps.
        assert_eq!(
            defs["TargetTable"]["properties"]["registry"]["type"],
            serde_json::json!(["string", "null"])
        );
        let tls = serde_json::to_string(&defs["Tls"]).expect("Tls");
        for value in ["\"verify\"", "\"skip-verify\"", "\"http\""] {
            assert!(tls.contains(value), "{value} in {tls}");
        }
    }
}
