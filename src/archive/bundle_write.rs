//! The deterministic bundle writer: one tar (zstd-compressed when the file name ends in `.zst`)
//! of an OCI image layout plus the Mirrorfile and lock that made it.
//!
//! The same content must give the same bytes on any machine, so a bundle's sha256 can be
//! published and checked on the far side of an air gap. Everything that could vary is fixed:
//! entry order (metadata files, then blobs in the order given: the caller puts manifests and
//! configs first so a streaming reader meets them before the layers), ustar headers with mtime 0,
//! uid/gid 0, no user or group names, modes 0644/0755, and zstd level 3 on one thread.
//!
//! Blobs stream from their files into the archive (memory stays flat whatever their size) and
//! are hashed on the way: a file that no longer matches its digest aborts the bundle. A blob the
//! caller already hashed in this run ([`BlobFile::hashed`]) is not hashed twice: while its file
//! is still the one that was hashed (the same [`FileStamp`]), only its size is checked. The
//! output is written to a temp file beside the destination and renamed only once complete and
//! fsynced.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::fsutil::FileStamp;
use crate::oci::digest::HashingWriter;
use crate::oci::layout::OCI_LAYOUT_FILE;
use crate::oci::{Digest, Sha256Hasher};

/// The Mirrorfile a bundle carries beside its layout (written by `mirror` after `index.json`,
/// before any blob). With [`LOCK_ENTRY`], what tells a bundle from other OCI-layout tars.
pub const MIRRORFILE_ENTRY: &str = "mirrorfile.toml";
/// The lock a bundle carries, when one sat next to the Mirrorfile.
pub const LOCK_ENTRY: &str = "mirrorfile.lock";

/// zstd level: the CLI's default, a good speed/ratio point (≈110 MB/s per core here).
const ZSTD_LEVEL: i32 = 3;

/// A blob to put in the bundle, read from `path`.
#[derive(Debug, Clone)]
pub struct BlobFile {
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
    /// The file as it was when the caller hashed it to `digest` in this run: when it is still
    /// that file, its bytes are copied without being hashed again. `None`: hash them here.
    pub hashed: Option<FileStamp>,
}

/// Everything a bundle holds, in write order.
#[derive(Debug, Clone, Default)]
pub struct BundleContents {
    pub index_json: Vec<u8>,
    /// Extra top-level files (`mirrorfile.toml`, `mirrorfile.lock`), written after `index.json`.
    pub files: Vec<(String, Vec<u8>)>,
    pub blobs: Vec<BlobFile>,
}

/// The bundle file as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleWritten {
    pub path: PathBuf,
    /// sha256 of the bundle file itself.
    pub sha256: Digest,
    pub size: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleWriteError {
    #[error("writing bundle {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("blob {digest} ({path}) changed on disk: its bytes hash to {actual} ({size} bytes); no bundle was written (a damaged cache copy: run `mirror cache verify --remove`, then run again to fetch it anew)")]
    Changed {
        digest: Digest,
        path: PathBuf,
        actual: Digest,
        size: u64,
    },
    /// A stop was requested (Ctrl-C, SIGTERM) while the bundle was being written.
    #[error("stopped while writing bundle {path}; no bundle was written")]
    Stopped { path: PathBuf },
    #[error("blob {digest} ({path}) changed on disk: it has {size} bytes, not {expected}; no bundle was written (run again to check and fetch it anew)")]
    Resized {
        digest: Digest,
        path: PathBuf,
        expected: u64,
        size: u64,
    },
}

/// Whether a bundle named `path` is zstd-compressed.
pub fn is_zstd_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("zst") || e.eq_ignore_ascii_case("zstd"))
}

/// Writes the bundle at `dest` (atomically) and returns its digest and size.
pub fn write_bundle(
    dest: &Path,
    contents: &BundleContents,
) -> Result<BundleWritten, BundleWriteError> {
    write_bundle_until(dest, contents, &AtomicBool::new(false))
}

/// [`write_bundle`], giving up with [`BundleWriteError::Stopped`] (and leaving nothing at
/// `dest`) soon after `stop` is set: bundles are gigabytes, and Ctrl-C must not wait for one.
pub fn write_bundle_until(
    dest: &Path,
    contents: &BundleContents,
    stop: &AtomicBool,
) -> Result<BundleWritten, BundleWriteError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleWriteError::Io { path, source }
    };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    remove_abandoned_temp_files(&dir);
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(&dir)
        .map_err(io_err(&dir))?;
    // Held until this process ends: the mark of a bundle still being written (see
    // `remove_abandoned_temp_files`). A file system without locks just goes without.
    let _ = tmp.as_file().try_lock();
    let file = tmp.as_file().try_clone().map_err(io_err(dest))?;
    let hashing = HashingWriter {
        inner: io::BufWriter::with_capacity(256 * 1024, file),
        hasher: Sha256Hasher::new(),
    };
    let hashing = if is_zstd_name(dest) {
        let mut encoder = zstd::Encoder::new(hashing, ZSTD_LEVEL).map_err(io_err(dest))?;
        encoder.include_checksum(true).map_err(io_err(dest))?;
        let encoder = write_tar(encoder, contents, dest, stop)?;
        encoder.finish().map_err(io_err(dest))?
    } else {
        write_tar(hashing, contents, dest, stop)?
    };
    let HashingWriter { inner, hasher } = hashing;
    let file = inner
        .into_inner()
        .map_err(|e| io_err(dest)(e.into_error()))?;
    file.sync_all().map_err(io_err(dest))?;
    let size = hasher.len();
    let sha256 = hasher.finish();
    if stop.load(Ordering::Relaxed) {
        return Err(BundleWriteError::Stopped {
            path: dest.to_path_buf(),
        });
    }
    crate::fsutil::make_readable(tmp.as_file()).map_err(io_err(dest))?;
    tmp.persist(dest).map_err(|e| io_err(dest)(e.error))?;
    Ok(BundleWritten {
        path: dest.to_path_buf(),
        sha256,
        size,
        blobs: contents.blobs.len() as u64,
        blob_bytes: contents.blobs.iter().map(|b| b.size).sum(),
    })
}

/// Names of bundles being written, next to where they will land.
const TEMP_PREFIX: &str = ".mirror-bundle-";

/// How old an unlocked temp file must be to count as abandoned: a writer locks its file right
/// after creating it, and this covers that moment.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Removes temp files of bundle writes that were killed (`kill -9`, OOM, a CI timeout) in `dir`:
/// they are as large as the bundle and nothing else would ever remove them. A file whose
/// writer is alive is locked and left alone. Best effort: what cannot be checked is kept.
fn remove_abandoned_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let old_enough = file
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|meta| meta.modified().ok())
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age >= ABANDONED_AFTER);
        if old_enough && file.try_lock().is_ok() {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed the temp file of a bundle write that was killed")
                }
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "could not remove an abandoned bundle temp file")
                }
            }
        }
    }
}

fn write_tar<W: Write>(
    out: W,
    contents: &BundleContents,
    dest: &Path,
    stop: &AtomicBool,
) -> Result<W, BundleWriteError> {
    let io_err = |source| BundleWriteError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let mut tar = tar::Builder::new(out);
    let mut files: Vec<(&str, &[u8])> = vec![
        ("oci-layout", OCI_LAYOUT_FILE.as_bytes()),
        ("index.json", &contents.index_json),
    ];
    files.extend(
        contents
            .files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice())),
    );
    for (name, bytes) in files {
        let header = header(name, bytes.len() as u64, false).map_err(io_err)?;
        tar.append(&header, bytes).map_err(io_err)?;
    }
    for dir in ["blobs/", "blobs/sha256/"] {
        let header = header(dir, 0, true).map_err(io_err)?;
        tar.append(&header, io::empty()).map_err(io_err)?;
    }
    let stopped = || BundleWriteError::Stopped {
        path: dest.to_path_buf(),
    };
    for blob in &contents.blobs {
        if stop.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        let name = format!(
            "blobs/{}/{}",
            blob.digest.algorithm().as_str(),
            blob.digest.hex()
        );
        let header = header(&name, blob.size, false).map_err(io_err)?;
        let file = File::open(&blob.path).map_err(|source| BundleWriteError::Io {
            path: blob.path.clone(),
            source,
        })?;
        let stamp = file
            .metadata()
            .map_err(|source| BundleWriteError::Io {
                path: blob.path.clone(),
                source,
            })
            .map(|meta| FileStamp::of(&meta))?;
        let hasher = (blob.hashed != Some(stamp)).then(Sha256Hasher::new);
        let mut reader = VerifyingReader {
            stop,
            inner: file,
            hasher,
            read: 0,
            done: false,
            blob,
            mismatch: None,
            read_failed: false,
        };
        let result = tar.append(&header, &mut reader);
        if stop.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        if let Some(mismatch) = reader.mismatch.take() {
            return Err(match mismatch {
                Mismatch::Hash { actual, size } => BundleWriteError::Changed {
                    digest: blob.digest.clone(),
                    path: blob.path.clone(),
                    actual,
                    size,
                },
                Mismatch::Size(size) => BundleWriteError::Resized {
                    digest: blob.digest.clone(),
                    path: blob.path.clone(),
                    expected: blob.size,
                    size,
                },
            });
        }
        // A failed read is the blob's; a failed write (a full disk) is the bundle's.
        result.map_err(|source| BundleWriteError::Io {
            path: if reader.read_failed {
                blob.path.clone()
            } else {
                dest.to_path_buf()
            },
            source,
        })?;
    }
    tar.into_inner().map_err(io_err)
}

/// A fixed ustar header: nothing about the machine or the time leaks into the bundle.
fn header(name: &str, size: u64, dir: bool) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_username("")?;
    h.set_groupname("")?;
    if dir {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
    } else {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
    }
    h.set_cksum();
    Ok(h)
}

/// Reads a blob file, checking at its end that it still has the size it is filed under (tar
/// would otherwise pad or truncate silently) and, unless it was hashed already, its digest.
struct VerifyingReader<'a> {
    /// Set when the run is stopped: reading fails at once.
    stop: &'a AtomicBool,
    inner: File,
    hasher: Option<Sha256Hasher>,
    read: u64,
    done: bool,
    blob: &'a BlobFile,
    mismatch: Option<Mismatch>,
    /// Reading the blob file failed (as opposed to writing the bundle).
    read_failed: bool,
}

/// How a blob file turned out not to be what it is filed under.
enum Mismatch {
    Hash { actual: Digest, size: u64 },
    Size(u64),
}

impl Read for VerifyingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped"));
        }
        let n = self
            .inner
            .read(buf)
            .inspect_err(|_| self.read_failed = true)?;
        if self.done {
            return Ok(n);
        }
        self.read += n as u64;
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&buf[..n]);
        }
        if n == 0 || self.read > self.blob.size {
            self.done = true;
            let mismatch = match self.hasher.take().map(Sha256Hasher::finish) {
                Some(actual) if actual != self.blob.digest || self.read != self.blob.size => {
                    Some(Mismatch::Hash {
                        actual,
                        size: self.read,
                    })
                }
                _ if self.read != self.blob.size => Some(Mismatch::Size(self.read)),
                _ => None,
            };
            if let Some(mismatch) = mismatch {
                self.mismatch = Some(mismatch);
                return Err(io::Error::other("blob changed on disk"));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(dir: &Path) -> BundleContents {
        let mut blobs = Vec::new();
        for (i, body) in [&b"layer one"[..], b"{\"config\":1}"].iter().enumerate() {
            let path = dir.join(format!("b{i}"));
            std::fs::write(&path, body).expect("write blob");
            blobs.push(BlobFile {
                digest: Digest::sha256_of(body),
                size: body.len() as u64,
                path,
                hashed: None,
            });
        }
        BundleContents {
            index_json: br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
            files: vec![("mirrorfile.toml".into(), b"[target]\n".to_vec())],
            blobs,
        }
    }

    #[test]
    fn same_content_same_bytes_and_entries_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = contents(dir.path());
        for name in ["a.tar", "a.tar.zst"] {
            let first = write_bundle(&dir.path().join(name), &c).expect("write");
            let second = write_bundle(&dir.path().join(format!("2{name}")), &c).expect("write");
            assert_eq!(first.sha256, second.sha256, "{name} is deterministic");
            let bytes = std::fs::read(&first.path).expect("read");
            assert_eq!(Digest::sha256_of(&bytes), first.sha256);
            assert_eq!(bytes.len() as u64, first.size);
        }
        let file = File::open(dir.path().join("a.tar")).expect("open");
        let mut archive = tar::Archive::new(file);
        let mut names = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let h = entry.header();
            assert_eq!(h.mtime().ok(), Some(0));
            assert_eq!(h.uid().ok(), Some(0));
            names.push(entry.path().expect("path").display().to_string());
        }
        let hex = |i: usize| c.blobs[i].digest.hex().to_string();
        assert_eq!(
            names,
            vec![
                "oci-layout".to_string(),
                "index.json".into(),
                "mirrorfile.toml".into(),
                "blobs/".into(),
                "blobs/sha256/".into(),
                format!("blobs/sha256/{}", hex(0)),
                format!("blobs/sha256/{}", hex(1)),
            ]
        );
    }

    #[test]
    fn a_full_disk_is_blamed_on_the_bundle_not_on_the_blob_being_copied() {
        use crate::archive::test_io::FullDisk;
        let dir = tempfile::tempdir().expect("tempdir");
        let c = contents(dir.path());
        let dest = dir.path().join("out.tar");
        // Room for the three files and two directories (8 blocks of 512 bytes) and the first
        // blob's header, and for 1 of its bytes.
        let room = 9 * 512 + 1;
        let err = write_tar(FullDisk { room }, &c, &dest, &AtomicBool::new(false))
            .err()
            .expect("the disk fills up");
        match err {
            BundleWriteError::Io { path, source } => {
                assert_eq!(path, dest, "{source}");
                assert_eq!(source.raw_os_error(), Some(28));
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn temp_files_of_killed_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let make = |name: &str, age: Option<std::time::SystemTime>| {
            let path = dir.path().join(name);
            let file = File::create(&path).expect("create");
            file.set_len(4096).expect("size");
            if let Some(when) = age {
                file.set_modified(when).expect("mtime");
            }
            (path, file)
        };
        let (killed, _) = make(".mirror-bundle-killed", Some(old));
        let (live, live_file) = make(".mirror-bundle-live", Some(old));
        live_file.try_lock().expect("the live writer's lock");
        let (fresh, _) = make(".mirror-bundle-fresh", None);
        let (other, _) = make("other.tar", Some(old));
        let bundle = write_bundle(&dir.path().join("b.tar"), &contents(dir.path())).expect("write");
        assert!(bundle.path.exists());
        assert!(!killed.exists(), "an abandoned temp file is removed");
        assert!(
            live.exists(),
            "a temp file whose writer holds its lock is kept"
        );
        assert!(
            fresh.exists(),
            "a temp file just created (its writer about to lock it) is kept"
        );
        assert!(other.exists(), "other files are not touched");
        drop(live_file);
    }

    #[test]
    fn a_blob_that_changed_on_disk_aborts_the_bundle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = contents(dir.path());
        std::fs::write(&c.blobs[0].path, b"layer 0ne").expect("corrupt");
        let dest = dir.path().join("x.tar.zst");
        let err = write_bundle(&dest, &c).expect_err("must fail");
        assert!(matches!(err, BundleWriteError::Changed { .. }), "{err}");
        assert!(!dest.exists(), "no partial bundle is left");
    }

    #[test]
    fn a_blob_hashed_in_this_run_is_not_hashed_again_while_its_file_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = contents(dir.path());
        let stamp = |path: &Path| FileStamp::of(&std::fs::metadata(path).expect("stat"));
        // Filed under another digest of the same size: only a hash could tell.
        c.blobs[0].digest = Digest::sha256_of(b"layer two");
        c.blobs[0].hashed = Some(stamp(&c.blobs[0].path));
        let trusted = write_bundle(&dir.path().join("t.tar"), &c).expect("copied unhashed");
        assert_eq!(trusted.blobs, 2);

        // Rewritten since it was hashed: hashed again, and the mismatch aborts the bundle.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&c.blobs[0].path, b"layer one").expect("rewrite");
        let dest = dir.path().join("u.tar");
        let err = write_bundle(&dest, &c).expect_err("must fail");
        assert!(matches!(err, BundleWriteError::Changed { .. }), "{err}");
        assert!(!dest.exists());

        // Hashed but cut short since: its size no longer matches.
        c.blobs[0].digest = Digest::sha256_of(b"layer one");
        std::fs::write(&c.blobs[0].path, b"layer").expect("truncate");
        c.blobs[0].hashed = Some(stamp(&c.blobs[0].path));
        let err = write_bundle(&dest, &c).expect_err("must fail");
        assert!(
            matches!(
                err,
                BundleWriteError::Resized {
                    size: 5,
                    expected: 9,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!dest.exists());
    }
}
