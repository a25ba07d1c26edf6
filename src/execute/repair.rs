//! Pushing a blob from the cache, and repairing the cache when the sink refuses its bytes.
//!
//! The cache verifies every blob as it is written, but a file can be damaged later (a disk
//! error, a stray edit). A registry then answers DIGEST_INVALID, and a layout's own hash check
//! fails: every rerun would fail the same way, since the cache still "has" the blob. So when a
//! sink refuses the bytes, the cached file is hashed again; if it is damaged it is removed,
//! fetched again from the source, and pushed once more. An intact file keeps the sink's error.
//! A source that cannot give the blob again (offline, down) fails the task with an error saying
//! that the cached copy was damaged and removed, so a later run online fetches it.
//!
//! Bundle targets take part too: their sink hashes each cache file it is given (the bundle is
//! written from those files at the end), so a damaged copy is refused here, during the run.

use super::run_task::{fetch, progress_of, TaskError};
use super::Shared;
use crate::oci::{Descriptor, Digest};
use crate::store::{Store, StoreError};

/// Where the blob comes from when the cache lacks it.
pub(super) struct BlobSource<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
}

/// Pushes `descriptor` to `repository` from the cache (fetching it first when missing); a
/// damaged cached copy is replaced from the source and pushed again.
pub(super) async fn push_blob(
    shared: &Shared,
    name: &str,
    from: BlobSource<'_>,
    repository: &str,
    descriptor: &Descriptor,
) -> Result<(), TaskError> {
    let error = match push_once(shared, name, &from, repository, descriptor).await {
        Err(TaskError::Endpoint(error)) if error.may_be_bad_content() => error,
        other => return other,
    };
    let Some(actual) = evict_if_damaged(&shared.store, &descriptor.digest).await? else {
        return Err(error.into());
    };
    if let Err(source) = fetch(shared, name, from.registry, from.repository, descriptor).await {
        return Err(TaskError::Refetch {
            digest: descriptor.digest.clone(),
            actual,
            from: format!("{}/{}", from.registry, from.repository),
            source: Box::new(source),
        });
    }
    tracing::warn!(
        "the cached copy of {} was damaged (its bytes hash to {actual}) and was refused ({error}); \
         removed it from the cache and fetched it again from {}/{}",
        descriptor.digest,
        from.registry,
        from.repository
    );
    push_once(shared, name, &from, repository, descriptor).await
}

async fn push_once(
    shared: &Shared,
    name: &str,
    from: &BlobSource<'_>,
    repository: &str,
    descriptor: &Descriptor,
) -> Result<(), TaskError> {
    if !shared.store.contains(&descriptor.digest) {
        fetch(shared, name, from.registry, from.repository, descriptor).await?;
    }
    let path = shared.store.blob_path(&descriptor.digest);
    shared
        .sink
        .put_blob_reporting(repository, descriptor, &path, progress_of(name, shared))
        .await?;
    Ok(())
}

/// [`Store::evict_if_damaged`] off the async threads (it reads the whole blob).
async fn evict_if_damaged(store: &Store, digest: &Digest) -> Result<Option<Digest>, TaskError> {
    let store = store.clone();
    let wanted = digest.clone();
    match tokio::task::spawn_blocking(move || store.evict_if_damaged(&wanted)).await {
        Ok(result) => Ok(result?),
        Err(join) => Err(TaskError::Store(StoreError::Io {
            path: digest.to_string().into(),
            source: std::io::Error::other(join.to_string()),
        })),
    }
}
