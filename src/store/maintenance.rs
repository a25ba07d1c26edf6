//! `mirror cache verify` and `mirror cache gc`: re-hash every blob, and delete what no root
//! reaches.
//!
//! Verification trusts nothing: each file under `blobs/sha256/` is read again and hashed; a file
//! whose bytes do not hash to its name is reported and (when asked) removed, so the next run
//! fetches it again instead of pushing bad bytes.
//!
//! Collection needs the cache to itself (the exclusive lock): it walks every root (the cache's
//! `index.json` plus whatever digests the caller adds) through the cached manifests, keeps what
//! it reaches, and removes the rest, together with temp files crashed runs left behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{io_err, Store, StoreError};
use crate::oci::{Digest, ManifestView, Sha256Hasher};

/// A blob whose bytes are not what its name says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadBlob {
    pub path: PathBuf,
    /// The digest its name claims (`None` when the name is not a digest at all).
    pub expected: Option<Digest>,
    pub actual: Digest,
    pub size: u64,
    pub removed: bool,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub checked: u64,
    pub bytes: u64,
    pub bad: Vec<BadBlob>,
}

/// One file `gc` removes (or would remove).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Garbage {
    pub path: PathBuf,
    pub size: u64,
}

/// What `gc` found (and did, unless it was a dry run).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    pub roots: u64,
    pub kept: u64,
    pub kept_bytes: u64,
    /// Partial downloads of blobs still wanted and not cached: kept for the next run to resume.
    pub kept_partial: u64,
    pub kept_partial_bytes: u64,
    pub garbage: Vec<Garbage>,
    pub garbage_bytes: u64,
    pub applied: bool,
}

impl Store {
    /// Re-hashes every blob; removes the bad ones when `remove` is set.
    pub fn verify(&self, remove: bool) -> Result<VerifyReport, StoreError> {
        let files = self.blob_files()?;
        let results: Vec<Result<(u64, Option<BadBlob>), StoreError>> = files
            .par_iter()
            .map(|(path, size)| {
                let actual = hash_file(path)?;
                let expected = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
                if expected.as_ref() == Some(&actual) {
                    return Ok((*size, None));
                }
                let removed = remove && std::fs::remove_file(path).is_ok();
                Ok((
                    *size,
                    Some(BadBlob {
                        path: path.clone(),
                        expected,
                        actual,
                        size: *size,
                        removed,
                    }),
                ))
            })
            .collect();
        let mut report = VerifyReport::default();
        for result in results {
            let (size, bad) = result?;
            report.checked += 1;
            report.bytes += size;
            report.bad.extend(bad);
        }
        report.bad.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(report)
    }

    /// Re-hashes the cached `digest`; when its bytes are not what its name says, removes it and
    /// returns what they hash to (`None`: intact, or not cached). Used when a sink refused the
    /// bytes: a damaged copy is fetched again instead of failing every run the same way.
    pub fn evict_if_damaged(&self, digest: &Digest) -> Result<Option<Digest>, StoreError> {
        let path = self.blob_path(digest);
        if !path.is_file() {
            return Ok(None);
        }
        let actual = hash_file(&path)?;
        if &actual == digest {
            return Ok(None);
        }
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        Ok(Some(actual))
    }

    /// Removes (with `apply`) or lists every blob that neither `index.json` nor `extra_roots`
    /// reaches, and stale temp files. Needs the exclusive lock ([`Store::open_exclusive`]).
    pub fn gc(&self, extra_roots: &[Digest], apply: bool) -> Result<GcReport, StoreError> {
        if !self.is_exclusive() {
            return Err(StoreError::Busy {
                path: self.root.clone(),
            });
        }
        let mut roots: BTreeSet<Digest> = self.root_digests()?.into_iter().collect();
        roots.extend(extra_roots.iter().cloned());
        let reachable = self.reachable(&roots)?;
        let mut report = GcReport {
            roots: roots.len() as u64,
            applied: apply,
            ..GcReport::default()
        };
        let named_reachable = |path: &Path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok())
                .is_some_and(|d| reachable.contains(&d))
        };
        for (path, size) in self.blob_files()? {
            if named_reachable(&path) {
                report.kept += 1;
                report.kept_bytes += size;
            } else {
                report.garbage.push(Garbage { path, size });
            }
        }
        // Partial downloads are worth keeping only for blobs still wanted and not yet cached
        // (the next run resumes them); the rest are leftovers.
        let blob_dir = self.blob_dir();
        for (path, size) in files_in(&self.partial_dir())? {
            let complete = path
                .file_name()
                .is_some_and(|name| blob_dir.join(name).is_file());
            if complete || !named_reachable(&path) {
                report.garbage.push(Garbage { path, size });
            } else {
                report.kept_partial += 1;
                report.kept_partial_bytes += size;
            }
        }
        // Alone on the cache (gc holds it exclusively): every temp file, of any process's
        // `tmp/<pid>` directory, is a leftover.
        let tmp_root = self.root().join("tmp");
        let mut tmp_dirs = vec![tmp_root.clone()];
        if let Ok(entries) = std::fs::read_dir(&tmp_root) {
            tmp_dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        for dir in tmp_dirs {
            for (path, size) in files_in(&dir)? {
                report.garbage.push(Garbage { path, size });
            }
        }
        report.garbage.sort_by(|a, b| a.path.cmp(&b.path));
        report.garbage_bytes = report.garbage.iter().map(|g| g.size).sum();
        if apply {
            for g in &report.garbage {
                match std::fs::remove_file(&g.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&g.path)(e)),
                }
            }
        }
        Ok(report)
    }

    /// Every digest reachable from `roots` through cached manifests (roots included; children
    /// that are not cached are still counted, so a later fetch keeps them).
    pub fn reachable(&self, roots: &BTreeSet<Digest>) -> Result<BTreeSet<Digest>, StoreError> {
        let mut seen: BTreeSet<Digest> = BTreeSet::new();
        let mut todo: Vec<Digest> = roots.iter().cloned().collect();
        while let Some(digest) = todo.pop() {
            if !seen.insert(digest.clone()) {
                continue;
            }
            let manifest = match self.manifest(&digest) {
                Ok(Some(m)) => m,
                // Not cached, not a sha256 digest, or not a manifest: a leaf.
                Ok(None) | Err(_) => continue,
            };
            match manifest.view() {
                Ok(ManifestView::Index(index)) => {
                    todo.extend(index.manifests.into_iter().map(|d| d.digest));
                }
                Ok(ManifestView::Image(image)) => {
                    // A config and layers are leaves: kept without being read (a layer can be
                    // gigabytes); only the subject is another manifest.
                    seen.insert(image.config.digest);
                    seen.extend(image.layers.into_iter().map(|d| d.digest));
                    todo.extend(image.subject.map(|d| d.digest));
                }
                Err(_) => {} // a config or layer that happened to parse as a manifest type
            }
        }
        Ok(seen)
    }

    /// `(path, size)` of every file under `blobs/sha256/`.
    fn blob_files(&self) -> Result<Vec<(PathBuf, u64)>, StoreError> {
        files_in(&self.blob_dir())
    }
}

fn files_in(dir: &Path) -> Result<Vec<(PathBuf, u64)>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let meta = entry.metadata().map_err(io_err(&entry.path()))?;
        if meta.is_file() {
            out.push((entry.path(), meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

/// sha256 of a file, read in 1 MiB pieces (memory stays flat).
fn hash_file(path: &Path) -> Result<Digest, StoreError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256Hasher::new();
    hasher.update_from(file, |_| {}).map_err(io_err(path))?;
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::oci::RawManifest;

    fn put(store: &Store, bytes: &[u8]) -> Digest {
        let d = Digest::sha256_of(bytes);
        assert!(store.put_small_blob(&d, bytes).expect("put"));
        d
    }

    /// A layer far larger than memory (sparse) is reachable without being read: gc's walk
    /// keeps configs and layers as leaves, and a file past the manifest cap is refused as a
    /// manifest from its size alone.
    #[test]
    fn reachable_manifest_and_config_reads_never_read_a_layer_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let config = put(&store, b"{\"architecture\":\"amd64\",\"os\":\"linux\"}");
        let huge = Digest::sha256_of(b"stands for a 1 TiB layer");
        let file = std::fs::File::create(store.blob_path(&huge)).expect("create");
        file.set_len(1 << 40).expect("sparse 1 TiB");
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":38}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{huge}","size":1099511627776}}]}}"#
        );
        let manifest = RawManifest::new(Bytes::from(body), None).expect("manifest");
        store.put_manifest(&manifest).expect("put manifest");
        let roots = BTreeSet::from([manifest.digest().clone()]);
        let reached = store.reachable(&roots).expect("walk");
        assert!(reached.contains(&huge) && reached.contains(&config));
        match store.manifest(&huge) {
            Err(StoreError::BadManifest {
                source: crate::oci::ManifestError::TooLarge { size, .. },
                ..
            }) => assert_eq!(size as u64, 1 << 40),
            other => panic!("expected too large for a manifest, got {other:?}"),
        }
        // Nor is it read as a config: it cannot be one.
        assert!(matches!(store.read_small_blob(&huge), Ok(None)));
    }

    #[test]
    fn gc_keeps_what_roots_reach_and_verify_finds_damaged_blobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_exclusive(dir.path()).expect("open");
        let config = put(&store, b"{\"architecture\":\"amd64\",\"os\":\"linux\"}");
        let layer = put(&store, b"layer bytes");
        let orphan = put(&store, b"nobody wants me");
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":38}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":11}}]}}"#
        );
        let manifest = RawManifest::new(Bytes::from(body), None).expect("manifest");
        store.put_manifest(&manifest).expect("put manifest");
        store
            .record_roots(&[("h/r:1".into(), manifest.descriptor())])
            .expect("record");
        std::fs::write(dir.path().join("tmp").join(".tmpleft"), b"partial").expect("tmp");
        // Partial downloads: one of a blob nothing needs, one of a blob already complete in
        // the cache (both leftovers), one of a blob a root needs and the cache lacks (kept: the
        // next run resumes it).
        std::fs::create_dir_all(dir.path().join("partial")).expect("partial dir");
        let stale_partial = store.partial_path(&Digest::sha256_of(b"nobody's"));
        std::fs::write(&stale_partial, b"stale").expect("partial");
        let done_partial = store.partial_path(&layer);
        std::fs::write(&done_partial, b"lay").expect("partial");
        let wanted = Digest::sha256_of(b"wanted, not yet cached");
        let wanted_partial = store.partial_path(&wanted);
        std::fs::write(&wanted_partial, b"want").expect("partial");

        let dry = store
            .gc(std::slice::from_ref(&wanted), false)
            .expect("gc dry run");
        assert_eq!(dry.kept, 3, "manifest, config and layer are kept");
        assert_eq!(
            (dry.kept_partial, dry.kept_partial_bytes),
            (1, 4),
            "the wanted blob's partial download is kept, and said so"
        );
        let mut names: Vec<_> = dry.garbage.iter().map(|g| g.path.clone()).collect();
        names.sort();
        let mut expected = vec![
            store.blob_path(&orphan),
            stale_partial.clone(),
            done_partial.clone(),
            dir.path().join("tmp").join(".tmpleft"),
        ];
        expected.sort();
        assert_eq!(names, expected);
        assert_eq!(dry.garbage_bytes, 15 + 5 + 3 + 7);
        assert!(store.contains(&orphan), "a dry run deletes nothing");
        // An extra root (from a lock file) keeps the orphan.
        let kept = store
            .gc(&[orphan.clone(), wanted.clone()], false)
            .expect("gc");
        assert_eq!(kept.garbage.len(), 3, "the temp file and two partials");
        let done = store
            .gc(std::slice::from_ref(&wanted), true)
            .expect("gc apply");
        assert!(done.applied);
        assert!(!store.contains(&orphan));
        assert!(!stale_partial.exists() && !done_partial.exists());
        assert!(wanted_partial.exists(), "kept for resuming");
        assert!(store.contains(&layer) && store.contains(&config));

        std::fs::write(store.blob_path(&layer), b"layer bytez").expect("damage");
        let report = store.verify(false).expect("verify");
        assert_eq!(report.checked, 3);
        assert_eq!(report.bad.len(), 1);
        assert_eq!(report.bad[0].expected.as_ref(), Some(&layer));
        assert_eq!(report.bad[0].actual, Digest::sha256_of(b"layer bytez"));
        assert!(
            store.contains(&layer),
            "verify without removal keeps the file"
        );
        let report = store.verify(true).expect("verify and remove");
        assert!(report.bad[0].removed && !store.contains(&layer));
    }

    #[test]
    fn gc_refuses_a_shared_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        assert!(matches!(store.gc(&[], false), Err(StoreError::Busy { .. })));
        assert!(matches!(
            Store::open_exclusive(dir.path()),
            Err(StoreError::Busy { .. })
        ));
    }
}
