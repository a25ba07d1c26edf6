//! Synchronous writes into the cache for content produced on this machine: entries spooled out
//! of an archive, layers compressed from them. The digest is not known in advance, so the bytes
//! are hashed while they are written to a temp file and the file is renamed to that digest; the
//! same invariant as [`Store::ingest`] holds (nothing visible under `blobs/` that did not hash
//! to its name). Meant for rayon or `spawn_blocking` threads, never for the async runtime.

use std::io::{self, Read, Write};

use super::{io_err, Store, StoreError};
use crate::fsutil::DirectWriter;
use crate::oci::digest::HashingWriter;
use crate::oci::{Digest, Sha256Hasher};

/// Remembers whether writing to the cache file failed, to tell cache errors from input errors.
struct WatchedWriter<W: Write> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for WatchedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

impl Store {
    /// Runs `produce` against a temp file in the cache, then stores the bytes it wrote under
    /// their sha256. Returns the digest and size. When the blob is already cached, the temp file
    /// is dropped and the cached copy (same bytes, by construction) stays.
    pub fn write_blob_with<F>(&self, produce: F) -> Result<(Digest, u64), StoreError>
    where
        F: FnOnce(&mut dyn Write) -> io::Result<()>,
    {
        let tmp_dir = self.tmp_dir();
        let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err(&tmp_dir))?;
        // A second handle on the temp file's open file: the temp file keeps its name (deleted
        // if this fails) while the bytes go around the page cache.
        let file = tmp.as_file().try_clone().map_err(io_err(&tmp_dir))?;
        let mut writer = HashingWriter {
            inner: WatchedWriter {
                inner: DirectWriter::new(file, 0),
                failed: false,
            },
            hasher: Sha256Hasher::new(),
        };
        if let Err(e) = produce(&mut writer) {
            // A failed write is the cache's problem (disk full); anything else came from the
            // input (a truncated or corrupt archive) and must not be blamed on the cache.
            return Err(if writer.inner.failed {
                io_err(&tmp_dir)(e)
            } else {
                StoreError::Input(e)
            });
        }
        let HashingWriter { inner, hasher } = writer;
        inner.inner.finish().map_err(io_err(&tmp_dir))?;
        let size = hasher.len();
        let digest = hasher.finish();
        let dest = self.blob_path(&digest);
        if dest.is_file() {
            return Ok((digest, size));
        }
        tmp.as_file().sync_all().map_err(io_err(&dest))?;
        super::make_readable(tmp.as_file()).map_err(io_err(&dest))?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        Ok((digest, size))
    }

    /// Copies everything `reader` yields into the cache (see [`Store::write_blob_with`]).
    pub fn write_blob_from(&self, reader: &mut dyn Read) -> Result<(Digest, u64), StoreError> {
        self.write_blob_with(|w| io::copy(reader, w).map(|_| ()))
    }

    /// Opens a cached blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<std::fs::File, StoreError> {
        let path = self.blob_path(digest);
        std::fs::File::open(&path).map_err(io_err(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_under_the_hash_of_what_was_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let (digest, size) = store
            .write_blob_from(&mut &b"hello world"[..])
            .expect("write");
        assert_eq!(digest, Digest::sha256_of(b"hello world"));
        assert_eq!(size, 11);
        assert_eq!(
            std::fs::read(store.blob_path(&digest)).ok(),
            Some(b"hello world".to_vec())
        );
        // Again: same digest, nothing left in tmp.
        let again = store
            .write_blob_from(&mut &b"hello world"[..])
            .expect("write");
        assert_eq!(again.0, digest);
        assert_eq!(
            std::fs::read_dir(store.tmp_dir()).map(|d| d.count()).ok(),
            Some(0)
        );
    }
}
