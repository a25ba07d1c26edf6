//! Media types of manifests and blobs, compared case-insensitively with parameters ignored.

use std::fmt;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The Accept header for manifest requests: every manifest and index type `mirror` can copy.
/// Distribution answers 404 for an OCI index requested without it (see REGISTRY-NOTES).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or blob media type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaType {
    OciIndex,
    OciManifest,
    DockerManifestList,
    DockerManifest,
    /// Anything else, lowercased and without parameters.
    Other(String),
}

impl MediaType {
    /// Parses a `Content-Type`-style value: case-insensitive, `; params` dropped.
    pub fn parse(value: &str) -> MediaType {
        let essence = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            OCI_INDEX => MediaType::OciIndex,
            OCI_MANIFEST => MediaType::OciManifest,
            DOCKER_MANIFEST_LIST => MediaType::DockerManifestList,
            DOCKER_MANIFEST => MediaType::DockerManifest,
            _ => MediaType::Other(essence),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MediaType::OciIndex => OCI_INDEX,
            MediaType::OciManifest => OCI_MANIFEST,
            MediaType::DockerManifestList => DOCKER_MANIFEST_LIST,
            MediaType::DockerManifest => DOCKER_MANIFEST,
            MediaType::Other(s) => s,
        }
    }

    /// An index or manifest list: its children are manifests.
    pub fn is_index(&self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }

    /// A single-image manifest: its children are a config and layers.
    pub fn is_image_manifest(&self) -> bool {
        matches!(self, MediaType::OciManifest | MediaType::DockerManifest)
    }

    /// A type that says nothing about the body (so the body's `mediaType` decides).
    pub fn is_generic(&self) -> bool {
        match self {
            MediaType::Other(s) => {
                s.is_empty()
                    || s == "application/json"
                    || s == "text/plain"
                    || s == "application/octet-stream"
            }
            _ => false,
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for MediaType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        Ok(MediaType::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_without_parameters() {
        assert_eq!(
            MediaType::parse("Application/VND.OCI.image.index.v1+json; charset=utf-8"),
            MediaType::OciIndex
        );
        assert!(MediaType::parse("application/json").is_generic());
        assert!(MediaType::parse(DOCKER_MANIFEST_LIST).is_index());
        assert!(MediaType::parse(DOCKER_MANIFEST).is_image_manifest());
        assert_eq!(MediaType::parse("x/y").as_str(), "x/y");
    }
}
