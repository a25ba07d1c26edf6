//! Raw manifests: the exact bytes a registry served, with their digest and media type.
//!
//! Bytes are the canonical artefact. Views parse a copy only to discover children, and are never
//! serialised back.

use bytes::Bytes;
use serde::Deserialize;

use super::{Descriptor, Digest, MediaType, MAX_MANIFEST_BYTES};

/// A manifest or index exactly as received (or as `mirror` wrote it once, canonically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    bytes: Bytes,
    digest: Digest,
    media_type: MediaType,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest {digest} is {size} bytes, over the {limit}-byte limit registries enforce")]
    TooLarge {
        digest: String,
        size: usize,
        limit: usize,
    },
    #[error("manifest bytes hash to {actual}, not the expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("manifest {digest} is not valid JSON: {source}")]
    Json {
        digest: Digest,
        source: serde_json::Error,
    },
    #[error("manifest {digest} has media type `{media_type}`, which is neither an image manifest nor an index")]
    UnsupportedMediaType { digest: Digest, media_type: String },
    #[error("manifest {digest} is a Docker schema 1 manifest; schema 1 is deprecated and not supported (re-push the image with a current client)")]
    Schema1 { digest: Digest },
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct IndexJson {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ImageJson {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// The children of an index.
#[derive(Debug, Clone)]
pub struct IndexView {
    pub manifests: Vec<Descriptor>,
}

/// The blobs of an image manifest.
#[derive(Debug, Clone)]
pub struct ImageView {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
}

#[derive(Debug, Clone)]
pub enum ManifestView {
    Index(IndexView),
    Image(Box<ImageView>),
}

impl RawManifest {
    /// Wraps bytes, computing their digest and deciding the media type: the body's `mediaType`
    /// when it states one (registries check the two agree on push), else the declared
    /// `Content-Type` unless that is generic, else inferred from the body's shape.
    pub fn new(bytes: Bytes, declared: Option<&str>) -> Result<RawManifest, ManifestError> {
        let digest = Digest::sha256_of(&bytes);
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                digest: digest.to_string(),
                size: bytes.len(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let probe: Probe =
            serde_json::from_slice(&bytes).map_err(|source| ManifestError::Json {
                digest: digest.clone(),
                source,
            })?;
        if probe.schema_version == Some(1) {
            return Err(ManifestError::Schema1 { digest });
        }
        let declared = declared.map(MediaType::parse).filter(|m| !m.is_generic());
        let media_type = match (probe.media_type.as_deref().map(MediaType::parse), declared) {
            (Some(body), _) if !body.is_generic() => body,
            (_, Some(declared)) => declared,
            _ if probe.manifests.is_some() => MediaType::OciIndex,
            _ if probe.config.is_some() => MediaType::OciManifest,
            (body, _) => {
                return Err(ManifestError::UnsupportedMediaType {
                    digest,
                    media_type: body.map(|m| m.to_string()).unwrap_or_default(),
                })
            }
        };
        if !media_type.is_index() && !media_type.is_image_manifest() {
            return Err(ManifestError::UnsupportedMediaType {
                digest,
                media_type: media_type.to_string(),
            });
        }
        Ok(RawManifest {
            bytes,
            digest,
            media_type,
        })
    }

    /// Like [`RawManifest::new`], and fails unless the bytes hash to `expected`.
    pub fn verified(
        bytes: Bytes,
        declared: Option<&str>,
        expected: &Digest,
    ) -> Result<RawManifest, ManifestError> {
        let actual = Digest::sha256_of(&bytes);
        if &actual != expected {
            return Err(ManifestError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        RawManifest::new(bytes, declared)
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn media_type(&self) -> &MediaType {
        &self.media_type
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_index(&self) -> bool {
        self.media_type.is_index()
    }

    /// A descriptor for this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size(),
            platform: None,
            annotations: Default::default(),
            urls: Vec::new(),
            artifact_type: None,
        }
    }

    /// Parses a copy of the bytes to find the children.
    pub fn view(&self) -> Result<ManifestView, ManifestError> {
        let json = |source| ManifestError::Json {
            digest: self.digest.clone(),
            source,
        };
        if self.media_type.is_index() {
            let index: IndexJson = serde_json::from_slice(&self.bytes).map_err(json)?;
            Ok(ManifestView::Index(IndexView {
                manifests: index.manifests,
            }))
        } else {
            let image: ImageJson = serde_json::from_slice(&self.bytes).map_err(json)?;
            Ok(ManifestView::Image(Box::new(ImageView {
                config: image.config,
                layers: image.layers,
                subject: image.subject,
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_body_then_header_then_shape() {
        let body = Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#);
        let m = RawManifest::new(body.clone(), Some("application/json")).ok();
        assert_eq!(m.map(|m| m.media_type().clone()), Some(MediaType::OciIndex));
        let bare = Bytes::from_static(br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#);
        let m = RawManifest::new(
            bare.clone(),
            Some("application/vnd.docker.distribution.manifest.v2+json"),
        )
        .ok();
        assert_eq!(
            m.map(|m| m.media_type().clone()),
            Some(MediaType::DockerManifest)
        );
        let m = RawManifest::new(bare, None).ok();
        assert_eq!(
            m.map(|m| m.media_type().clone()),
            Some(MediaType::OciManifest)
        );
    }

    #[test]
    fn rejects_garbage_schema1_and_mismatch() {
        assert!(matches!(
            RawManifest::new(Bytes::from_static(b"{"), None),
            Err(ManifestError::Json { .. })
        ));
        assert!(matches!(
            RawManifest::new(
                Bytes::from_static(br#"{"schemaVersion":1,"name":"x"}"#),
                None
            ),
            Err(ManifestError::Schema1 { .. })
        ));
        let other = Digest::sha256_of(b"other");
        assert!(matches!(
            RawManifest::verified(Bytes::from_static(b"{}"), None, &other),
            Err(ManifestError::DigestMismatch { .. })
        ));
        let negative = Bytes::from_static(br#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}]}"#);
        let m = RawManifest::new(negative, None);
        assert!(matches!(m.map(|m| m.view().is_err()), Ok(true)));
    }
}
