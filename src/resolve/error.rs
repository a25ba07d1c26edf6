//! Why an image could not be resolved, with the image and where it was declared.

use super::MAX_INDEX_DEPTH;
use crate::endpoint::EndpointError;
use crate::model::{ImageSource, Origin};
use crate::oci::{Digest, Platform};
use crate::store::StoreError;

/// Why one image could not be resolved, and which image (with where it was declared).
#[derive(Debug, thiserror::Error)]
#[error("{image} (declared at {origin}): {kind}")]
pub struct ResolveError {
    pub image: String,
    pub origin: Origin,
    pub kind: Box<ResolveErrorKind>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveErrorKind {
    #[error(transparent)]
    Endpoint(EndpointError),
    #[error(transparent)]
    Store(StoreError),
    #[error("no source for `{0}`")]
    NoSource(String),
    #[error(
        "{registry} has no `{reference}` in repository {repository} (the registry answered 404)"
    )]
    NotFound {
        registry: String,
        repository: String,
        reference: String,
    },
    #[error("it has no entry in the lock, and --locked forbids adding one")]
    NotInLock,
    #[error("it is pinned by index digest {0}, but only some of its platforms are selected: a rewritten index would have another digest")]
    PinnedSubset(Digest),
    #[error("indexes nested more than {MAX_INDEX_DEPTH} levels deep")]
    TooDeep,
    #[error("none of the selected platforms ({selected}) is in its index, which has {available}")]
    NothingSelected { selected: String, available: String },
    #[error(transparent)]
    Archive(crate::archive::ArchiveError),
    #[error("its config says {stated}, but {claim} (archive {})", archive.display())]
    PlatformMismatch {
        archive: std::path::PathBuf,
        stated: Platform,
        claim: String,
    },
    #[error("two archives give different {platform} images for this tag: {} (config {first_config}) and {} (config {second_config})", first.display(), second.display())]
    PlatformConflict {
        platform: Platform,
        first: std::path::PathBuf,
        first_config: Digest,
        second: std::path::PathBuf,
        second_config: Digest,
    },
    #[error("the [[archives]] entries at {first} and {second} both give its {platform} image (config {config}), but would push it as different manifests ({first_manifest} and {second_manifest}): their settings differ")]
    ManifestConflict {
        platform: Platform,
        config: Digest,
        first: crate::model::Origin,
        first_manifest: Digest,
        second: crate::model::Origin,
        second_manifest: Digest,
    },
    #[error("it is not in any archive matching `{pattern}`")]
    NotInArchives { pattern: String },
    #[error("`index = false`, but the archives give several platforms for this tag ({platforms})")]
    IndexFalse { platforms: String },
    #[error("it is also the target of an [[images]] entry; one tag cannot come from both")]
    TargetClash,
    #[error("config {digest} of manifest {manifest} is not a valid image config: {detail}")]
    BadConfig {
        digest: Digest,
        manifest: Digest,
        detail: String,
    },
}

impl ResolveError {
    pub(super) fn new(image: &ImageSource, kind: ResolveErrorKind) -> ResolveError {
        ResolveError {
            image: image.display(),
            origin: image.origin.clone(),
            kind: Box::new(kind),
        }
    }

    /// The `help:` line the CLI shows.
    pub fn help(&self) -> Option<String> {
        match *self.kind {
            ResolveErrorKind::PinnedSubset(_) => Some(
                "set `index = \"sparse\"` to push the original index with only the selected children, remove `platforms` to copy every platform, or pin the child manifest's digest instead".into(),
            ),
            ResolveErrorKind::PlatformMismatch { .. } => Some(
                "check that the right archive is named; pass --allow-platform-mismatch (or set `allow_platform_mismatch = true` on the entry) to push it anyway".into(),
            ),
            ResolveErrorKind::PlatformConflict { .. } => Some(
                "the archives disagree about this image: use archives of one release, or take the image from one of them with `images = [...]`".into(),
            ),
            ResolveErrorKind::ManifestConflict { .. } => Some(
                "give both entries the same `compression` (or list each archive file in one entry only), so the image has one manifest".into(),
            ),
            ResolveErrorKind::IndexFalse { .. } => {
                Some("remove `index = false`, so the platforms are pushed as one index".into())
            }
            ResolveErrorKind::NotFound { .. } => Some(
                "check the tag and the repository path (official Docker Hub images live under `library/`); `mirror inspect REF` shows what a reference points at".into(),
            ),
            ResolveErrorKind::NotInLock => Some(
                "run `mirror lock` to add it (and commit the lock), or run without --locked".into(),
            ),
            ResolveErrorKind::Archive(crate::archive::ArchiveError::MirrorBundle { .. }) => {
                Some(format!(
                    "make the `[[archives]]` entry at {} a `[[bundles]]` entry with the same `path`: \
                     a bundle's images are mirrored with every digest kept byte for byte, attestations \
                     and digest-only images included (`[[archives]]` rebuilds manifests)",
                    self.origin
                ))
            }
            ResolveErrorKind::NothingSelected { .. } => {
                Some("change `platforms` for this image, or remove it to copy every platform".into())
            }
            _ => None,
        }
    }
}
