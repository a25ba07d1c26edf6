//! `mirror cache verify` and `mirror cache gc`: which cache, and with which roots.
//!
//! The cache is the Mirrorfile's `[cache] dir` when there is a Mirrorfile, else the default one,
//! unless `--dir` names it. Garbage collection keeps what the cache's `index.json` records (the
//! root of every image applied, per target reference), everything lock files pin (the
//! Mirrorfile's own `mirrorfile.lock` when there is one, plus `--lock FILE`), and any digests the
//! caller adds.

use std::path::{Path, PathBuf};

use crate::lock::{LockError, Lockfile};
use crate::model::Model;
use crate::oci::Digest;
use crate::store::{GcReport, Store, StoreError, VerifyReport};

/// The cache directory a `cache` command works on.
pub fn cache_dir(explicit: Option<&Path>, model: Option<&Model>, default: &Path) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| model.and_then(|m| m.cache_dir.clone()))
        .unwrap_or_else(|| default.to_path_buf())
}

/// Re-hashes every cached blob; removes the bad ones when `remove` is set.
pub fn verify(dir: &Path, remove: bool) -> Result<VerifyReport, StoreError> {
    let store = Store::open(dir)?;
    store.verify(remove)
}

/// Collects garbage (a dry run unless `apply`), keeping `keep` in addition to the recorded roots.
pub fn gc(dir: &Path, keep: &[Digest], apply: bool) -> Result<GcReport, StoreError> {
    let store = Store::open_exclusive(dir)?;
    store.gc(keep, apply)
}

/// A lock file that cannot give garbage collection its roots.
#[derive(Debug, thiserror::Error)]
pub enum LockRootsError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("lock file {} does not exist", .0.display())]
    Missing(PathBuf),
}

/// Every digest a lock file pins: roots, the child chosen per platform, subset indexes.
/// A missing lock file is an error here: the user named it.
pub fn lock_roots(path: &Path) -> Result<Vec<Digest>, LockRootsError> {
    let lock = Lockfile::load(path)?.ok_or_else(|| LockRootsError::Missing(path.to_path_buf()))?;
    Ok(pinned(&lock))
}

/// The digests `lock` pins.
pub fn pinned(lock: &Lockfile) -> Vec<Digest> {
    let mut out = Vec::new();
    for image in lock.images.values() {
        out.push(image.digest.clone());
        out.extend(image.platforms.iter().map(|(_, d)| d.clone()));
        out.extend(image.subset_indexes.iter().cloned());
    }
    // What archives and bundles produced: without these, a gc after `apply` of archives alone
    // would keep only the applied roots, not what the lock says the files give.
    for file in lock.archives.values().chain(lock.bundles.values()) {
        for target in file.images.values() {
            out.push(target.digest.clone());
            out.extend(target.platforms.iter().map(|(_, d)| d.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::lock::{LockedFile, LockedTarget};

    fn digest(byte: u8) -> Digest {
        format!("sha256:{}", format!("{byte:02x}").repeat(32))
            .parse()
            .expect("a digest")
    }

    #[test]
    fn what_archives_and_bundles_produced_is_pinned() {
        let produced = |root: u8, child: u8| LockedFile {
            file: None,
            images: BTreeMap::from([(
                "app:1".to_string(),
                LockedTarget {
                    digest: digest(root),
                    platforms: [("linux/arm64".to_string(), digest(child))].into(),
                },
            )]),
        };
        let lock = Lockfile {
            archives: BTreeMap::from([("a.tar".to_string(), produced(1, 2))]),
            bundles: BTreeMap::from([("b.tar".to_string(), produced(3, 4))]),
            ..Lockfile::default()
        };
        assert_eq!(
            pinned(&lock),
            vec![digest(1), digest(2), digest(3), digest(4)]
        );
    }
}
