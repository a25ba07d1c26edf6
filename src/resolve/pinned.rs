//! Resolved images → the lock they imply. Pure, and the only place a [`Lockfile`] is built, so
//! the same resolution always gives the same lock.

use super::{ExpandedRepository, ResolvedImage};
use crate::lock::{LockedImage, LockedRepository, Lockfile};
use crate::model::SourceLocation;

/// The lock for `images` and `repositories` (entries merged by source reference: two entries of
/// one source with different platform selections share one pin and list both selections).
pub fn lockfile(images: &[ResolvedImage], repositories: &[ExpandedRepository]) -> Lockfile {
    let mut lock = Lockfile::default();
    for repo in repositories {
        lock.repositories.insert(
            (repo.source.name(), repo.source.filter.describe()),
            LockedRepository {
                tags: repo.tags.clone(),
            },
        );
    }
    // Bundle images are pinned by the bundle itself (and carry no registry to re-resolve).
    for image in images
        .iter()
        .filter(|i| i.source.location == SourceLocation::Registry)
    {
        let entry = lock
            .images
            .entry(image.source.reference.to_string())
            .or_insert_with(|| LockedImage {
                digest: image.upstream_digest.clone(),
                media_type: image.upstream_media_type.clone(),
                platforms: Default::default(),
                subset_indexes: Default::default(),
            });
        for (platform, digest) in &image.children {
            entry
                .platforms
                .insert((platform.to_string(), digest.clone()));
        }
        if image.rewritten() {
            entry.subset_indexes.insert(image.root.digest().clone());
        }
    }
    lock
}
