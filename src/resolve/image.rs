//! What resolution produces: one [`ResolvedImage`] per image, ready to plan.

use super::*;

/// One image, ready to plan.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub source: ImageSource,
    /// What the source reference points at upstream (as pinned by the lock, when it has it).
    pub upstream_digest: Digest,
    /// The media type of that manifest (as the lock records it, when pinned).
    pub upstream_media_type: String,
    /// Whether `upstream_digest` came from the lock.
    pub pinned: bool,
    /// Set when the lock pins `upstream_digest` but the tag upstream now points elsewhere.
    pub drift: Option<Drift>,
    /// The child manifest of every platform the target will have (the root itself for a
    /// single-platform image).
    pub children: Vec<(Platform, Digest)>,
    /// What the target tag will point at: the upstream bytes, or a rewritten subset index.
    pub root: RawManifest,
    /// Manifests to push before the root, children before parents, without duplicates.
    pub manifests: Vec<ManifestNeed>,
    /// Platforms the target will have.
    pub platforms: Vec<Platform>,
    /// Selected platforms the image does not have.
    pub missing_platforms: Vec<Platform>,
    pub warnings: Vec<String>,
    /// Blobs (image configs) that resolving downloaded into the cache: they count as fetched.
    pub prefetched: Vec<Descriptor>,
    /// Where the image comes from.
    pub provenance: Provenance,
}

/// Where a resolved image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// A registry (the source reference says which).
    Registry,
    /// Archives, one per platform (sorted by platform).
    Archives(Vec<ArchivePlatform>),
}

/// One platform of an image made from archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePlatform {
    pub platform: Platform,
    pub archive: std::path::PathBuf,
    /// The manifest pushed for this platform.
    pub manifest: Digest,
    /// The upstream multi-platform index the archive recorded it under (`ctr export`).
    pub upstream_index: Option<Digest>,
    /// Whether `manifest` is the archive's own (bytes as found) rather than one mirror wrote.
    pub from_archive: bool,
}

/// A pinned tag that upstream has moved since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// What the lock pins (and what is mirrored).
    pub locked: Digest,
    /// Where the tag points upstream now.
    pub upstream: Digest,
}

/// A manifest to push and the blobs it needs (empty for an index).
#[derive(Debug, Clone)]
pub struct ManifestNeed {
    pub manifest: RawManifest,
    pub blobs: Vec<Descriptor>,
}

impl ResolvedImage {
    /// Whether the root was rewritten (a subset index with a new digest).
    pub fn rewritten(&self) -> bool {
        self.root.digest() != &self.upstream_digest
    }

    /// Blobs of the root itself when it is a single image manifest.
    pub fn root_blobs(&self) -> &[Descriptor] {
        self.manifests
            .iter()
            .find(|m| m.manifest.digest() == self.root.digest())
            .map(|m| m.blobs.as_slice())
            .unwrap_or(&[])
    }
}
