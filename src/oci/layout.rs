//! OCI image layout vocabulary: the names images carry inside a layout (`index.json` entries'
//! `org.opencontainers.image.ref.name`) and the one deterministic writer of `index.json`.
//!
//! A layout has no registry host, so `mirror` names an image there by its target repository
//! path and tag (`mirror/library/alpine:3.20`), or `repository@sha256:…` when it has no tag.
//! That is the whole target reference inside a layout, it matches the OCI annotation grammar, so
//! skopeo finds it as `oci:DIR:mirror/library/alpine:3.20`, and it round-trips without the host
//! ambiguity a docker-style reference would have (`infra.x/pause` is a path here, not a host).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::descriptor::ANNOTATION_REF_NAME;
use super::reference::valid_tag;
use super::{Descriptor, Digest, MediaType, Reference};

/// The `oci-layout` file's content.
pub const OCI_LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Where an image sits in a layout: `repository[:tag][@digest]`, host-free.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefName {
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a `repository:tag` or `repository@digest` image name: {reason}")]
pub struct RefNameError {
    pub name: String,
    pub reason: String,
}

/// A host that cannot collide with a real one; only used to reuse the reference grammar.
const CHECK_HOST: &str = "layout.mirror.invalid";

impl RefName {
    pub fn new(repository: &str, tag: Option<&str>, digest: Option<Digest>) -> RefName {
        RefName {
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        }
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for RefName {
    type Err = RefNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| RefNameError {
            name: name.to_string(),
            reason,
        };
        let (rest, digest) = match name.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(digest.parse::<Digest>().map_err(|e| err(e.to_string()))?),
            ),
            None => (name, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].find(':') {
            Some(colon) => {
                let at = last_slash + colon;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if tag.is_none() && digest.is_none() {
            return Err(err("it has neither a tag nor a digest".into()));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(err(format!("`{tag}` is not a valid tag")));
            }
        }
        if repository.is_empty() || repository.split('/').any(|c| c.contains(':')) {
            return Err(err("the repository path is missing or malformed".into()));
        }
        let parsed = Reference::new(CHECK_HOST, repository, tag, digest.clone())
            .map_err(|e| err(e.to_string()))?;
        if parsed.repository() != repository {
            return Err(err("the repository path is malformed".into()));
        }
        Ok(RefName::new(repository, tag, digest))
    }
}

/// One named entry of a layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEntry {
    pub name: RefName,
    pub descriptor: Descriptor,
}

#[derive(Serialize)]
struct IndexOut<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    manifests: &'a [Descriptor],
}

#[derive(Deserialize)]
struct IndexIn {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// A layout's `index.json` entries, as read (unnamed and foreign entries kept as they are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutIndex {
    pub manifests: Vec<Descriptor>,
}

impl LayoutIndex {
    pub fn parse(bytes: &[u8]) -> Result<LayoutIndex, serde_json::Error> {
        let index: IndexIn = serde_json::from_slice(bytes)?;
        Ok(LayoutIndex {
            manifests: index.manifests,
        })
    }

    /// The entries that carry a `ref.name`, each parsed. An unparsable name is an error: every
    /// image of a bundle must be placed somewhere, and guessing a repository would be wrong.
    pub fn named(&self) -> Result<Vec<NamedEntry>, RefNameError> {
        self.named_with(None)
    }

    /// Like [`LayoutIndex::named`], placing bare-tag names (`1.35`, as `skopeo copy …
    /// oci:DIR:TAG` writes them) under `bare_repository` when one is given.
    pub fn named_with(
        &self,
        bare_repository: Option<&str>,
    ) -> Result<Vec<NamedEntry>, RefNameError> {
        let mut out = Vec::new();
        for d in &self.manifests {
            let Some(name) = d.annotations.get(ANNOTATION_REF_NAME) else {
                continue;
            };
            let parsed = match (name.parse::<RefName>(), bare_repository) {
                (Ok(parsed), _) => parsed,
                (Err(_), Some(repository)) if is_bare_tag(name) => {
                    RefName::new(repository, Some(name), None)
                }
                (Err(_), None) if is_bare_tag(name) => {
                    return Err(RefNameError {
                        name: name.clone(),
                        reason: "it is a bare tag, as `skopeo copy … oci:DIR:TAG` writes it; say which repository it belongs to with `repository = \"…\"` on the [[bundles]] entry".into(),
                    })
                }
                (Err(e), _) => return Err(e),
            };
            out.push(NamedEntry {
                name: parsed,
                descriptor: d.clone(),
            });
        }
        Ok(out)
    }

    /// The digest an image name points at.
    pub fn lookup(&self, name: &str) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(name))
    }

    /// Points `name` at `manifest` (replacing an entry of the same name).
    pub fn set(&mut self, name: &RefName, digest: &Digest, size: u64, media_type: &MediaType) {
        let name = name.to_string();
        self.manifests
            .retain(|d| d.annotations.get(ANNOTATION_REF_NAME) != Some(&name));
        let mut descriptor = Descriptor {
            media_type: media_type.clone(),
            digest: digest.clone(),
            size,
            platform: None,
            annotations: Default::default(),
            urls: Vec::new(),
            artifact_type: None,
        };
        descriptor
            .annotations
            .insert(ANNOTATION_REF_NAME.to_string(), name);
        self.manifests.push(descriptor);
    }

    /// The `index.json` bytes: entries sorted by name (then digest), compact JSON, so the same
    /// entries always give the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut manifests = self.manifests.clone();
        manifests.sort_by(|a, b| {
            let key = |d: &Descriptor| {
                (
                    d.annotations.get(ANNOTATION_REF_NAME).cloned(),
                    d.digest.to_string(),
                )
            };
            key(a).cmp(&key(b))
        });
        let doc = IndexOut {
            schema_version: 2,
            media_type: MediaType::OciIndex.as_str(),
            manifests: &manifests,
        };
        // Serialising plain structs, strings and numbers cannot fail.
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

/// A `ref.name` that is only a tag (no repository, no digest).
pub fn is_bare_tag(name: &str) -> bool {
    !name.contains(['/', ':', '@']) && valid_tag(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let d = Digest::sha256_of(b"x");
        for name in [
            "lab/tiny:1.0".to_string(),
            "mirror/library/alpine:3.20".into(),
            "infra.x/pause:3.9".into(),
            format!("solo@{d}"),
            format!("a/b:1@{d}"),
        ] {
            let parsed: RefName = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.to_string(), name);
        }
        let parsed: RefName = "infra.x/pause:3.9".parse().expect("valid");
        assert_eq!(parsed.repository(), "infra.x/pause");
        assert_eq!(parsed.tag(), Some("3.9"));
        for bad in [
            "latest",
            "Lab/tiny:1",
            ":1",
            "a//b:1",
            "127.0.0.1:5000/a:1",
            "a:-x",
        ] {
            assert!(bad.parse::<RefName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn index_bytes_are_sorted_and_stable() {
        let mut index = LayoutIndex::default();
        let (a, b) = (Digest::sha256_of(b"a"), Digest::sha256_of(b"b"));
        let name = |s: &str| s.parse::<RefName>().expect("valid");
        index.set(&name("z/z:1"), &a, 10, &MediaType::OciIndex);
        index.set(&name("a/a:1"), &b, 20, &MediaType::OciManifest);
        index.set(&name("z/z:1"), &b, 20, &MediaType::OciManifest);
        let bytes = index.to_bytes();
        let again = LayoutIndex::parse(&bytes).expect("parse");
        assert_eq!(again.to_bytes(), bytes);
        let named = again.named().expect("names");
        assert_eq!(named.len(), 2);
        assert_eq!(named[0].name.to_string(), "a/a:1");
        assert_eq!(named[1].descriptor.digest, b, "replaced, not duplicated");
        assert!(String::from_utf8_lossy(&bytes).starts_with(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"#
        ));
    }
}
