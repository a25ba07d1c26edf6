//! Content descriptors as they appear inside manifests and indexes.
//!
//! These structs are for *reading* only: `mirror` never serialises an upstream manifest back from
//! them (that would change its bytes and digest). Unknown fields are ignored on purpose.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Digest, MediaType, Platform};

/// The annotation buildx puts on attestation entries, naming the manifest they describe.
pub const ANNOTATION_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// The annotation that marks an index entry as an attestation (`attestation-manifest`).
pub const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// The OCI layout annotation holding an image's tag or full reference.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default = "empty_media_type")]
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

fn empty_media_type() -> MediaType {
    MediaType::Other(String::new())
}

impl Descriptor {
    /// The digest of the manifest this entry attests to, when it is a buildx attestation.
    pub fn attests(&self) -> Option<Digest> {
        if self
            .annotations
            .get(ANNOTATION_REFERENCE_TYPE)
            .map(String::as_str)
            != Some("attestation-manifest")
        {
            return None;
        }
        self.annotations
            .get(ANNOTATION_REFERENCE_DIGEST)
            .and_then(|d| d.parse().ok())
    }

    /// Layers that registries are not allowed to redistribute (Windows base layers): they are
    /// fetched from their `urls` by the runtime and never copied by mirrors.
    pub fn is_non_distributable(&self) -> bool {
        let mt = self.media_type.as_str();
        mt.contains("foreign") || mt.contains("nondistributable")
    }
}
