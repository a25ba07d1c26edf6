//! Streaming ingest: bytes arrive from the network (or an archive), are hashed and written on a
//! blocking thread, and become visible in the cache only once they hashed to the expected digest.
//!
//! Hashing and file writes run on `spawn_blocking`, fed through a bounded channel, so a fast
//! download never stalls the async runtime and memory stays flat (at most a few chunks in
//! flight whatever the blob size).

use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::{Store, StoreError};
use crate::fsutil::DirectWriter;
use crate::oci::digest::Algorithm;
use crate::oci::{Digest, Sha256Hasher};

/// Chunks buffered between the network task and the writer thread. A chunk is what one socket
/// read returned (up to a few hundred KiB on a fast link), so a few of them keep the writer busy;
/// more would only raise peak memory (one channel per concurrent download).
const CHANNEL_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum IngestError<E: std::error::Error + 'static> {
    #[error("reading {digest}: {source}")]
    Source { digest: Digest, source: E },
    #[error("blob {digest}: expected digest {digest}, but the {size} bytes received hash to {actual}; nothing was stored or pushed")]
    DigestMismatch {
        digest: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("{digest}: expected {expected} bytes, received {actual}; nothing was stored")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{digest}: the partially downloaded file changed under us (another mirror process?)")]
    PartialChanged { digest: Digest },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Streams `body` into the cache under `digest`, verifying digest and (when given) size.
    /// Returns the number of bytes written.
    pub async fn ingest<S, E>(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
        body: S,
    ) -> Result<u64, IngestError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + 'static,
    {
        if digest.algorithm() != Algorithm::Sha256 {
            return Err(StoreError::Unsupported(digest.clone()).into());
        }
        let tmp_dir = self.tmp_dir();
        let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|source| StoreError::Io {
            path: tmp_dir.clone(),
            source,
        })?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let writer = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256Hasher::new();
            // A second handle on the same open file: the temp file keeps its name (and deletes
            // it if this ingest fails) while the bytes go around the page cache.
            let mut file = DirectWriter::new(tmp.as_file().try_clone()?, 0);
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                file.write_all(&chunk)?;
            }
            file.finish()?;
            tmp.as_file().sync_all()?;
            Ok::<_, std::io::Error>((tmp, hasher))
        });

        let mut body = body;
        let mut source_error = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
                Err(e) => {
                    source_error = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let joined = writer.await.map_err(|e| StoreError::Io {
            path: tmp_dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let (tmp, hasher) = joined.map_err(|source| StoreError::Io {
            path: tmp_dir.clone(),
            source,
        })?;
        if let Some(source) = source_error {
            return Err(IngestError::Source {
                digest: digest.clone(),
                source,
            });
        }
        self.commit(tmp, hasher, digest, expected_size)
    }
}

impl Store {
    /// The one way a written temp file becomes a blob: size and digest checked against what was
    /// expected, then made readable and renamed under its digest. On a mismatch the temp file is
    /// dropped (deleted) and nothing is stored.
    fn commit<E: std::error::Error + 'static>(
        &self,
        tmp: tempfile::NamedTempFile,
        hasher: Sha256Hasher,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<u64, IngestError<E>> {
        let size = hasher.len();
        if let Some(expected) = expected_size {
            if expected != size {
                return Err(IngestError::SizeMismatch {
                    digest: digest.clone(),
                    expected,
                    actual: size,
                });
            }
        }
        let actual = hasher.finish();
        if &actual != digest {
            return Err(IngestError::DigestMismatch {
                digest: digest.clone(),
                actual,
                size,
            });
        }
        let dest: PathBuf = self.blob_path(digest);
        super::make_readable(tmp.as_file()).map_err(|source| StoreError::Io {
            path: dest.clone(),
            source,
        })?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(size)
    }

    /// The blocking twin of [`Store::ingest`], for readers that are themselves blocking (a tar
    /// entry inside a zstd stream): copy → hash → fsync → rename, only when digest and size
    /// match. Call it from a blocking thread.
    pub fn ingest_reader(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
        reader: &mut dyn std::io::Read,
    ) -> Result<u64, IngestError<std::io::Error>> {
        if digest.algorithm() != Algorithm::Sha256 {
            return Err(StoreError::Unsupported(digest.clone()).into());
        }
        let tmp_dir = self.tmp_dir();
        let io = |source| StoreError::Io {
            path: tmp_dir.clone(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io)?;
        let mut hasher = Sha256Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(IngestError::Source {
                        digest: digest.clone(),
                        source,
                    })
                }
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io)?;
        }
        tmp.as_file().sync_all().map_err(io)?;
        self.commit(tmp, hasher, digest, expected_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn stores_only_verified_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let good = Digest::sha256_of(b"hello world");
        let n = store
            .ingest(&good, Some(11), chunks(&[b"hello ", b"world"]))
            .await
            .expect("ingest");
        assert_eq!(n, 11);
        assert!(store.contains(&good));

        let wanted = Digest::sha256_of(b"other");
        let err = store.ingest(&wanted, None, chunks(&[b"evil"])).await;
        assert!(matches!(err, Err(IngestError::DigestMismatch { .. })));
        assert!(!store.contains(&wanted));
        let err = store.ingest(&wanted, Some(99), chunks(&[b"other"])).await;
        assert!(matches!(err, Err(IngestError::SizeMismatch { .. })));
        assert!(!store.contains(&wanted));
        // The blocking twin verifies the same way.
        let mut evil: &[u8] = b"evil";
        let err = store.ingest_reader(&wanted, None, &mut evil);
        assert!(matches!(err, Err(IngestError::DigestMismatch { .. })));
        let mut good_bytes: &[u8] = b"other";
        assert_eq!(
            store.ingest_reader(&wanted, Some(5), &mut good_bytes).ok(),
            Some(5)
        );
        assert!(store.contains(&wanted));
        // No temp files are left behind.
        assert_eq!(
            std::fs::read_dir(store.tmp_dir()).map(|d| d.count()).ok(),
            Some(0)
        );
    }
}
