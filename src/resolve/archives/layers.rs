//! Layers of archive images, made ready to push: uncompressed tars compressed with fixed
//! settings (in parallel on rayon, across layers and, for gzip, across 1 MiB blocks of each
//! layer), compressed ones kept as they are, and every layer checked against the config's
//! `rootfs.diff_ids`.
//!
//! Both derived facts are memoised in the cache (`diff_id + settings → compressed digest`,
//! `compressed digest → diff_id`), so a rerun over unchanged archives recompresses and
//! decompresses nothing; a memo is trusted only while the blob it names is still cached.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::archive::compression::{self, Compression};
use crate::fsutil::SequentialReader;
use crate::oci::{Digest, Sha256Hasher};
use crate::store::{Store, StoreError};

/// Counters for the JSON summary and the tests.
#[derive(Debug, Default)]
pub struct Counters {
    pub compressed: AtomicU64,
    pub memo_hits: AtomicU64,
    pub decompressed: AtomicU64,
}

/// How a cached blob is compressed, from its first bytes.
pub fn sniff_blob(store: &Store, digest: &Digest) -> Result<Compression, StoreError> {
    let mut head = [0u8; 4];
    let mut file = store.open_blob(digest)?;
    let mut filled = 0;
    while filled < head.len() {
        let n = file
            .read(&mut head[filled..])
            .map_err(|source| StoreError::Io {
                path: store.blob_path(digest),
                source,
            })?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(compression::sniff(&head[..filled]))
}

/// The blob an uncompressed layer (`diff_id`) becomes under `kind`, made once and memoised.
pub fn compressed(
    store: &Store,
    diff_id: &Digest,
    kind: Compression,
    counters: &Counters,
) -> Result<(Digest, u64), StoreError> {
    if kind == Compression::None {
        let size = store.size(diff_id).unwrap_or_default();
        return Ok((diff_id.clone(), size));
    }
    let key = format!("layer {diff_id} {}", kind.settings());
    if let Some(hit) = remembered(store, &key) {
        counters.memo_hits.fetch_add(1, Ordering::Relaxed);
        return Ok(hit);
    }
    // Read around the page cache: the uncompressed copy is not read again this run (pushes
    // send the compressed one).
    let mut source = SequentialReader::new(store.open_blob(diff_id)?);
    let made = store.write_blob_with(|out| compression::compress(kind, &mut source, out))?;
    store.memo_put(&key, &format!("{} {}", made.0, made.1))?;
    counters.compressed.fetch_add(1, Ordering::Relaxed);
    Ok(made)
}

/// The diff_id (sha256 of the uncompressed tar) of a compressed cached blob, memoised.
pub fn diff_id_of(store: &Store, blob: &Digest, counters: &Counters) -> Result<Digest, StoreError> {
    let key = format!("diff-id {blob}");
    if let Some(value) = store.memo_get(&key) {
        if let Ok(digest) = value.parse() {
            counters.memo_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(digest);
        }
    }
    let path = store.blob_path(blob);
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let (_, mut reader) = compression::decoder(store.open_blob(blob)?).map_err(io)?;
    let mut hasher = Sha256Hasher::new();
    hasher.update_from(&mut reader, |_| {}).map_err(io)?;
    let digest = hasher.finish();
    store.memo_put(&key, &digest.to_string())?;
    counters.decompressed.fetch_add(1, Ordering::Relaxed);
    Ok(digest)
}

fn remembered(store: &Store, key: &str) -> Option<(Digest, u64)> {
    let value = store.memo_get(key)?;
    let (digest, size) = value.split_once(' ')?;
    let digest: Digest = digest.parse().ok()?;
    let size: u64 = size.parse().ok()?;
    (store.size(&digest) == Some(size)).then_some((digest, size))
}
