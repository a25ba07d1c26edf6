//! Resumable downloads: bytes of a blob not yet complete live in `<cache>/partial/<hex>`, so an
//! interrupted transfer, in this run or a later one, continues where it stopped (`Range`).
//!
//! The partial file is *not* trusted content: it sits outside `blobs/` and only becomes a blob
//! after the whole of it (the kept prefix is hashed first, then the new bytes) hashed to the
//! digest and had the expected size. A mismatch deletes it, so a poisoned prefix costs one
//! download, never a wrong blob. The file is locked (flock) while written; when another process
//! or task holds it, the download goes through an ordinary temp file instead.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::{io_err, IngestError, Store, StoreError};
use crate::fsutil::DirectWriter;
use crate::oci::digest::Algorithm;
use crate::oci::{Digest, Sha256Hasher};

/// Chunks buffered between the network task and the writer thread.
const CHANNEL_DEPTH: usize = 4;
/// Read size while hashing the kept prefix.
const PREFIX_READ: usize = 1024 * 1024;

/// What the writer thread reports.
enum Written {
    /// All bytes are in; size and digest as computed over the whole file.
    Complete { size: u64, actual: Digest },
    /// More bytes than expected arrived: the file was deleted.
    TooLong { size: u64 },
}

impl Store {
    pub(super) fn partial_dir(&self) -> PathBuf {
        self.root.join("partial")
    }

    /// Where the unfinished bytes of `digest` are kept.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.partial_dir().join(digest.hex())
    }

    /// How many bytes of `digest` a previous attempt left (0 when none).
    pub fn partial_len(&self, digest: &Digest) -> u64 {
        std::fs::metadata(self.partial_path(digest))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Streams `body` into the partial file of `digest` from `resumed_from` (0 starts over;
    /// otherwise the kept prefix must be at least that long), then verifies the whole file and
    /// moves it into the cache. On a source error the bytes received so far are kept (fsynced)
    /// for the next attempt. Returns the bytes received in this call.
    pub async fn ingest_resumable<S, E>(
        &self,
        digest: &Digest,
        expected_size: u64,
        resumed_from: u64,
        body: S,
    ) -> Result<u64, IngestError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + 'static,
    {
        if digest.algorithm() != Algorithm::Sha256 {
            return Err(StoreError::Unsupported(digest.clone()).into());
        }
        let dir = self.partial_dir();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = self.partial_path(digest);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // Someone else is filling this partial file: download independently.
                drop(file);
                if resumed_from > 0 {
                    return Err(IngestError::PartialChanged {
                        digest: digest.clone(),
                    });
                }
                return self.ingest(digest, Some(expected_size), body).await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&path)(e).into()),
        }
        // Another process may have finished this blob between our open and our lock: it renamed
        // the partial file into `blobs/`, so the handle we hold is now the verified blob itself.
        // Writing through it would truncate cached content; check the name still leads here.
        if !still_at(&file, &path) {
            drop(file);
            if self.contains(digest) {
                return Ok(0);
            }
            return Err(IngestError::PartialChanged {
                digest: digest.clone(),
            });
        }
        let kept = file.metadata().map_err(io_err(&path))?.len();
        if kept < resumed_from {
            // The prefix shrank since the offset was chosen (another process finished or
            // discarded it): start this attempt over.
            return Err(IngestError::PartialChanged {
                digest: digest.clone(),
            });
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let writer_path = path.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let mut hasher = Sha256Hasher::new();
            file.set_len(resumed_from)?;
            hash_prefix(&mut file, resumed_from, &mut hasher)?;
            let mut writer = DirectWriter::new(file, resumed_from);
            let mut size = resumed_from;
            while let Some(chunk) = rx.blocking_recv() {
                size += chunk.len() as u64;
                if size > expected_size {
                    drop(writer);
                    let _ = std::fs::remove_file(&writer_path);
                    return Ok((None, Written::TooLong { size }));
                }
                hasher.update(&chunk);
                writer.write_all(&chunk)?;
            }
            // Written and fsynced also when the source failed: the bytes received are kept.
            let file = writer.finish()?;
            file.sync_all()?;
            if size < expected_size {
                // Kept for the next attempt; the caller reports the short read.
                return Ok((
                    None,
                    Written::Complete {
                        size,
                        actual: Digest::sha256_of(b""),
                    },
                ));
            }
            // The file (and with it the lock) goes back to the caller, which holds it until the
            // rename into `blobs/` is done: released earlier, another process could take the
            // lock, find the name still here and truncate the inode that becomes the blob.
            Ok::<_, io::Error>((
                Some(file),
                Written::Complete {
                    size,
                    actual: hasher.finish(),
                },
            ))
        });
        let mut body = body;
        let mut source_error = None;
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    received += chunk.len() as u64;
                    if tx.send(chunk).await.is_err() {
                        break; // the writer stopped; its answer is below
                    }
                }
                Err(e) => {
                    source_error = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let written = writer
            .await
            .map_err(|e| io_err(&path)(io::Error::other(e.to_string())))?
            .map_err(io_err(&path))?;
        let (held, written) = written;
        let (size, actual) = match written {
            Written::TooLong { size } => {
                return Err(IngestError::SizeMismatch {
                    digest: digest.clone(),
                    expected: expected_size,
                    actual: size,
                })
            }
            Written::Complete { size, actual } => (size, actual),
        };
        if let Some(source) = source_error {
            return Err(IngestError::Source {
                digest: digest.clone(),
                source,
            });
        }
        if size < expected_size {
            return Err(IngestError::SizeMismatch {
                digest: digest.clone(),
                expected: expected_size,
                actual: size,
            });
        }
        if &actual != digest {
            let _ = std::fs::remove_file(&path);
            return Err(IngestError::DigestMismatch {
                digest: digest.clone(),
                actual,
                size,
            });
        }
        let dest = self.blob_path(digest);
        match std::fs::rename(&path, &dest) {
            Ok(()) => {}
            // Another process moved this partial file into place first (its content is the
            // same verified blob): nothing is lost. Without it, try again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.contains(digest) {
                    return Ok(received);
                }
                return Err(IngestError::PartialChanged {
                    digest: digest.clone(),
                });
            }
            Err(e) => return Err(io_err(&path)(e).into()),
        }
        drop(held);
        sync_dir(&dest);
        Ok(received)
    }
}

/// Whether `path` still names the open `file` (same device and inode).
fn still_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Feeds the first `len` bytes of `file` to `hasher`.
fn hash_prefix(file: &mut File, len: u64, hasher: &mut Sha256Hasher) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = (&mut *file).take(len);
    let mut buf = vec![0u8; PREFIX_READ];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// Best-effort fsync of the directory holding `path`, so the rename survives a crash.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: Vec<Result<&'static [u8], io::Error>>,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin {
        futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| p.map(Bytes::from_static))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn an_interrupted_download_resumes_and_is_verified_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let blob = b"0123456789abcdef";
        let digest = Digest::sha256_of(blob);
        let cut = chunks(vec![Ok(&blob[..6]), Err(io::Error::other("reset"))]);
        let err = store.ingest_resumable(&digest, 16, 0, cut).await;
        assert!(matches!(err, Err(IngestError::Source { .. })), "{err:?}");
        assert_eq!(store.partial_len(&digest), 6, "received bytes are kept");
        assert!(!store.contains(&digest));

        let rest = chunks(vec![Ok(&blob[6..])]);
        let n = store
            .ingest_resumable(&digest, 16, 6, rest)
            .await
            .expect("resumed");
        assert_eq!(n, 10, "only the missing bytes were received");
        assert!(store.contains(&digest));
        assert_eq!(store.partial_len(&digest), 0);
        assert_eq!(
            std::fs::read(store.blob_path(&digest)).expect("blob"),
            blob.to_vec()
        );
    }

    #[tokio::test]
    async fn a_poisoned_prefix_is_dropped_and_a_full_answer_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let blob = b"0123456789abcdef";
        let digest = Digest::sha256_of(blob);
        std::fs::create_dir_all(store.partial_dir()).expect("mkdir");
        std::fs::write(store.partial_path(&digest), b"XXXXXX").expect("write");
        let rest = chunks(vec![Ok(&blob[6..])]);
        let err = store.ingest_resumable(&digest, 16, 6, rest).await;
        assert!(
            matches!(err, Err(IngestError::DigestMismatch { .. })),
            "{err:?}"
        );
        assert_eq!(store.partial_len(&digest), 0, "the bad prefix is gone");
        assert!(!store.contains(&digest));
        // The registry ignored the range (200): offset 0 overwrites whatever was kept.
        std::fs::write(store.partial_path(&digest), b"XXXXXX").expect("write");
        let whole = chunks(vec![Ok(&blob[..])]);
        store
            .ingest_resumable(&digest, 16, 0, whole)
            .await
            .expect("whole");
        assert!(store.contains(&digest));
        let long = chunks(vec![Ok(b"0123456789abcdef+")]);
        let other = Digest::sha256_of(b"other");
        let err = store.ingest_resumable(&other, 16, 0, long).await;
        assert!(
            matches!(err, Err(IngestError::SizeMismatch { actual: 17, .. })),
            "{err:?}"
        );
        assert_eq!(store.partial_len(&other), 0);
    }
}
