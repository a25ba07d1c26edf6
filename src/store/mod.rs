//! The content-addressed cache: an OCI image layout on disk (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`), so other tools can read it and a bundle can be cut from it.
//!
//! Invariant: every file under `blobs/` hashed to its name before it got there. Bytes are written
//! to a temp file inside `<root>/tmp` (same filesystem, so the final rename is atomic), hashed while
//! they stream, fsynced, and renamed only when the digest and size match. Two `mirror` processes
//! can share a cache: temp names are unique, and two renames of the same verified content to the
//! same name leave the same bytes whichever wins. Unfinished downloads wait in `<root>/partial`
//! (see `partial`) until they are complete and verified.
//!
//! Who else may use the cache meanwhile is decided by `<cache>/.lock` ([`lock`]): shared for
//! normal runs, exclusive for garbage collection ([`maintenance`]). A run that finds itself
//! alone sweeps the temp files that killed runs left behind. `index.json` records the root of
//! each image applied ([`roots`]), which is what garbage collection keeps.

mod ingest;
mod local;
pub mod lock;
pub mod maintenance;
mod memo;
mod partial;
pub mod roots;

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::oci::digest::Algorithm;
use crate::oci::{Digest, ManifestError, RawManifest};

pub use crate::oci::digest::HashingWriter;
pub use ingest::IngestError;
pub use lock::{CacheLock, LockMode};
pub use maintenance::{BadBlob, GcReport, VerifyReport};
pub use roots::Root;

const OCI_LAYOUT: &str = crate::oci::layout::OCI_LAYOUT_FILE;
const EMPTY_INDEX: &str =
    r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

/// A verified, content-addressed blob store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Held for as long as any clone of this store lives.
    lock: CacheLock,
    /// This process's own temp directory, `tmp/<pid>`: removed (when empty) with the last clone.
    tmp: std::sync::Arc<OwnTmp>,
}

/// `tmp/<pid>`: every temp file of one process lives there, so a sweep can remove exactly what
/// dead processes left (a SIGKILLed run) and never a file another live run is writing.
#[derive(Debug)]
struct OwnTmp(PathBuf);

impl Drop for OwnTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
        // And `tmp/` itself when no other run has a directory there, so a layout target (a
        // store too) is left as an OCI layout and nothing else.
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cache {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cached manifest {digest} at {path} is damaged: {source} (delete the file; it will be fetched again)")]
    BadManifest {
        digest: Digest,
        path: PathBuf,
        source: ManifestError,
    },
    #[error("digest {0} uses an algorithm the cache cannot verify (only sha256)")]
    Unsupported(Digest),
    #[error("cache {path} is in use by another mirror process (garbage collection needs it alone; try again when that run is over)")]
    Busy { path: PathBuf },
    #[error("cache {path} is damaged: {message}")]
    BadIndex { path: PathBuf, message: String },
    #[error("reading the input failed (truncated or corrupt?): {0}")]
    Input(io::Error),
}

/// A cache file that is read whole (a manifest, a config), as [`read_small_file`] found it.
enum SmallFile {
    Missing,
    /// Larger than the caller's limit: not read (a layer filed under the digest a manifest or
    /// config was expected at can be gigabytes).
    TooLarge(u64),
    Read(Bytes),
}

/// Reads `path` whole when it holds at most `limit` bytes.
fn read_small_file(path: &Path, limit: u64) -> Result<SmallFile, StoreError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SmallFile::Missing),
        Err(e) => return Err(io_err(path)(e)),
    };
    let size = file.metadata().map_err(io_err(path))?.len();
    if size > limit {
        return Ok(SmallFile::TooLarge(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > limit {
        return Ok(SmallFile::TooLarge(bytes.len() as u64));
    }
    Ok(SmallFile::Read(Bytes::from(bytes)))
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens (creating when needed) the cache at `root`, shared with other normal runs. When
    /// no other process uses it, temp files of killed runs are removed first.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        Store::open_as(root, LockMode::Shared)
    }

    /// Opens the cache alone (for garbage collection); fails when another process uses it.
    pub fn open_exclusive(root: &Path) -> Result<Store, StoreError> {
        Store::open_as(root, LockMode::Exclusive)
    }

    fn open_as(root: &Path, mode: LockMode) -> Result<Store, StoreError> {
        let blobs = root.join("blobs").join("sha256");
        let tmp_root = root.join("tmp");
        let own = tmp_root.join(std::process::id().to_string());
        for dir in [&blobs, &own] {
            // A second try: another process may remove an empty `tmp/` between our creating it
            // and our `tmp/<pid>` (see [`OwnTmp`]'s drop).
            std::fs::create_dir_all(dir)
                .or_else(|_| std::fs::create_dir_all(dir))
                .map_err(io_err(dir))?;
        }
        let lock = CacheLock::acquire(root, mode)?;
        sweep_dead_temp_dirs(&tmp_root);
        let store = Store {
            root: root.to_path_buf(),
            lock,
            tmp: std::sync::Arc::new(OwnTmp(own)),
        };
        for (name, content) in [("oci-layout", OCI_LAYOUT), ("index.json", EMPTY_INDEX)] {
            let path = root.join(name);
            if !path.exists() {
                write_atomically(&store.tmp_dir(), &path, content.as_bytes())?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this process holds the cache alone.
    pub fn is_exclusive(&self) -> bool {
        self.lock.mode() == LockMode::Exclusive
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.tmp.0.clone()
    }

    /// Where the blob lives (whether or not it is there yet).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// Whether a verified copy of `digest` is in the cache.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a cached blob.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(self.blob_path(digest))
            .ok()
            .map(|m| m.len())
    }

    /// Stores manifest bytes (their digest was computed from them, so they are verified).
    pub fn put_manifest(&self, manifest: &RawManifest) -> Result<(), StoreError> {
        let path = self.blob_path(manifest.digest());
        if path.is_file() {
            return Ok(());
        }
        write_atomically(&self.tmp_dir(), &path, manifest.bytes())
    }

    /// Reads a cached manifest, re-verifying its digest (manifests are small; a damaged cache
    /// file must never be pushed).
    pub fn manifest(&self, digest: &Digest) -> Result<Option<RawManifest>, StoreError> {
        if digest.algorithm() != Algorithm::Sha256 {
            return Err(StoreError::Unsupported(digest.clone()));
        }
        let path = self.blob_path(digest);
        let limit = crate::oci::MAX_MANIFEST_BYTES;
        let bytes = match read_small_file(&path, limit as u64)? {
            SmallFile::Missing => return Ok(None),
            SmallFile::TooLarge(size) => {
                return Err(StoreError::BadManifest {
                    digest: digest.clone(),
                    path,
                    source: ManifestError::TooLarge {
                        digest: digest.to_string(),
                        size: usize::try_from(size).unwrap_or(usize::MAX),
                        limit,
                    },
                })
            }
            SmallFile::Read(bytes) => bytes,
        };
        RawManifest::verified(bytes, None, digest)
            .map(Some)
            .map_err(|source| StoreError::BadManifest {
                digest: digest.clone(),
                path,
                source,
            })
    }

    /// [`Store::manifest`], except that a cache file whose bytes no longer hash to its name (a
    /// bad disk, an edit by hand) is removed and reported as not cached, so it is fetched again
    /// like any missing manifest, as a damaged blob is.
    pub fn manifest_or_discard(&self, digest: &Digest) -> Result<Option<RawManifest>, StoreError> {
        match self.manifest(digest) {
            Err(StoreError::BadManifest {
                path,
                source: ManifestError::DigestMismatch { actual, .. },
                ..
            }) => {
                tracing::warn!(
                    "cached manifest {digest} was damaged (its bytes hash to {actual}): removed \
                     {} and fetching it again",
                    path.display()
                );
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                Ok(None)
            }
            other => other,
        }
    }

    /// Reads a small cached blob (an image config) whole, verified. A file larger than any
    /// config is not read (it cannot be one): `None`, so the caller's capped fetch says why.
    pub fn read_small_blob(&self, digest: &Digest) -> Result<Option<Bytes>, StoreError> {
        let path = self.blob_path(digest);
        let SmallFile::Read(bytes) = read_small_file(&path, crate::oci::MAX_CONFIG_BYTES)? else {
            return Ok(None);
        };
        if &Digest::sha256_of(&bytes) != digest {
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Replaces the layout's `index.json` atomically (for an OCI layout used as a target; the
    /// bytes come from [`crate::oci::layout::LayoutIndex::to_bytes`]).
    pub fn replace_index(&self, bytes: &[u8]) -> Result<(), StoreError> {
        write_atomically(&self.tmp_dir(), &self.root.join("index.json"), bytes)
    }

    /// Stores small bytes known by content (a config fetched whole), verified against `digest`.
    pub fn put_small_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<bool, StoreError> {
        if &Digest::sha256_of(bytes) != digest {
            return Ok(false);
        }
        let path = self.blob_path(digest);
        if !path.is_file() {
            write_atomically(&self.tmp_dir(), &path, bytes)?;
        }
        Ok(true)
    }
}

/// Removes what `tmp/` holds: only called while no other process uses the cache, so every
/// file there belongs to a run that was killed before it could clean up.
/// Removes what dead processes left under `tmp/`: `tmp/<pid>` directories whose process is
/// gone, and loose temp files (from older versions) nobody has touched for a while.
fn sweep_dead_temp_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let path = entry.path();
        if meta.is_dir() {
            let pid = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok());
            if pid.is_some_and(|pid| pid != std::process::id() && !process_alive(pid)) {
                let _ = std::fs::remove_dir_all(&path);
            }
        } else if meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE)
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether a process with this id runs (Linux: `/proc/<pid>`). Elsewhere every process counts
/// as alive, so nothing is swept: leaving a stale temp file is harmless, deleting a live one not.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// How long a loose temp file must sit untouched before it counts as left behind.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub use crate::fsutil::make_readable;

/// temp file in `tmp_dir` → write → fsync → rename to `dest`.
fn write_atomically(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_err(tmp_dir))?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err(dest))?;
    make_readable(tmp.as_file()).map_err(io_err(dest))?;
    tmp.persist(dest).map_err(|e| StoreError::Io {
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}
