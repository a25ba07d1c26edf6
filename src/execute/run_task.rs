//! What each kind of task does.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::TryStreamExt;

use super::event::Event;
use super::retry::{with_retries, Retryable};
use super::Shared;
use crate::endpoint::{EndpointError, UploadProgress};
use crate::oci::{Descriptor, Digest};
use crate::plan::Task;
use crate::store::{IngestError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Ingest(#[from] IngestError<EndpointError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no source for registry `{0}`")]
    NoSource(String),
    #[error("{0}")]
    Message(String),
    /// Retries ran out; the last error is kept.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: Box<TaskError> },
    /// No connection to `host` could be made, and an earlier task already waited out every
    /// retry on it: this one fails at once instead of backing off again.
    #[error("skipped: {host} is unreachable (an earlier transfer {cause})")]
    HostDown { host: String, cause: String },
    /// A damaged cached copy was removed, and fetching the blob again failed.
    #[error("the cached copy of {digest} was damaged (its bytes hash to {actual}) and was removed from the cache; fetching it again from {from} failed: {source}")]
    Refetch {
        digest: Digest,
        actual: Digest,
        from: String,
        source: Box<TaskError>,
    },
}

impl TaskError {
    /// The host no connection could be made to, when that is what failed.
    fn unreachable_host(&self) -> Option<&str> {
        match self {
            TaskError::Endpoint(e) => e.unreachable_host(),
            TaskError::Ingest(IngestError::Source { source, .. }) => source.unreachable_host(),
            TaskError::GaveUp { last, .. } => last.unreachable_host(),
            TaskError::Refetch { source, .. } => source.unreachable_host(),
            _ => None,
        }
    }
}

impl Retryable for TaskError {
    fn is_retryable(&self) -> bool {
        match self {
            TaskError::Endpoint(e) => e.is_retryable(),
            TaskError::Ingest(IngestError::Source { source, .. }) => source.is_retryable(),
            // A body cut short by the network shows up as too few bytes: worth another try.
            TaskError::Ingest(IngestError::SizeMismatch {
                expected, actual, ..
            }) => actual < expected,
            TaskError::Ingest(IngestError::PartialChanged { .. }) => true,
            // The next attempt finds the blob missing and fetches it.
            TaskError::Refetch { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            TaskError::Endpoint(e) => e.retry_after(),
            TaskError::Ingest(IngestError::Source { source, .. }) => source.retry_after(),
            TaskError::Refetch { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

pub(super) async fn run(task: &Task, shared: &Shared) -> Result<(), TaskError> {
    let name = task.describe();
    shared.reporter.event(Event::Started {
        task: name.clone(),
        bytes: task.bytes(),
    });
    let on_retry = |attempt, delay, error: &TaskError| {
        shared.reporter.event(Event::Retrying {
            task: name.clone(),
            attempt,
            delay,
            error: error.to_string(),
        })
    };
    // A host another task has given up on gets one connection attempt, not a full backoff:
    // with a target down mid-run, hundreds of tasks would otherwise each wait out the policy.
    let once = || async {
        let error = match attempt(task, &name, shared).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        match error
            .unreachable_host()
            .and_then(|host| shared.down_cause(host))
        {
            Some((host, cause)) => Err(TaskError::HostDown { host, cause }),
            None => Err(error),
        }
    };
    let result = with_retries(shared.retry, once, on_retry)
        .await
        .map_err(|(last, attempts)| {
            // A host found down between attempts is the whole story: no "gave up after" wrapper.
            if attempts > 1 && !matches!(last, TaskError::HostDown { .. }) {
                if let Some(host) = last.unreachable_host() {
                    let cause = format!("gave up after {attempts} attempts: {last}");
                    shared.mark_down(host, cause);
                }
                TaskError::GaveUp {
                    attempts,
                    last: Box::new(last),
                }
            } else {
                last
            }
        });
    if result.is_ok() {
        shared.reporter.event(Event::Finished {
            task: name,
            bytes: task.bytes(),
        });
    }
    result
}

/// A callback that reports `bytes` more of task `name` as [`Event::Progress`].
pub(super) fn progress_of(name: &str, shared: &Shared) -> UploadProgress {
    let reporter = shared.reporter.clone();
    let task = name.to_string();
    Arc::new(move |bytes| {
        reporter.event(Event::Progress {
            task: task.clone(),
            bytes,
        })
    })
}

async fn attempt(task: &Task, name: &str, shared: &Shared) -> Result<(), TaskError> {
    let c = &shared.counters;
    match task {
        Task::FetchBlob {
            registry,
            repository,
            descriptor,
        } => fetch(shared, name, registry, repository, descriptor).await,
        Task::PushBlob {
            repository,
            descriptor,
            mount_from,
            source_registry,
            source_repository,
        } => {
            if let Some(from) = mount_from {
                if shared
                    .sink
                    .mount_blob(repository, &descriptor.digest, from)
                    .await?
                {
                    c.blobs_mounted.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
            }
            let from = super::repair::BlobSource {
                registry: source_registry,
                repository: source_repository,
            };
            super::repair::push_blob(shared, name, from, repository, descriptor).await?;
            c.blobs_pushed.fetch_add(1, Ordering::Relaxed);
            c.bytes_pushed.fetch_add(descriptor.size, Ordering::Relaxed);
            Ok(())
        }
        Task::PushManifest {
            repository,
            manifest,
        } => {
            let reference = manifest.digest().to_string();
            put_manifest_settled(|| shared.sink.put_manifest(repository, &reference, manifest))
                .await?;
            c.manifests_pushed.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Task::PushRoot {
            repository,
            reference,
            manifest,
        } => {
            put_manifest_settled(|| shared.sink.put_root(repository, reference, manifest)).await?;
            c.manifests_pushed.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// Downloads a blob into the cache, verified, resuming a partial download. Several tasks may want
/// the same blob; the cache makes the second one a no-op.
pub(super) async fn fetch(
    shared: &Shared,
    name: &str,
    registry: &str,
    repository: &str,
    descriptor: &Descriptor,
) -> Result<(), TaskError> {
    if shared.store.contains(&descriptor.digest) {
        return Ok(());
    }
    let source = shared
        .sources
        .get(registry)
        .ok_or_else(|| TaskError::NoSource(registry.to_string()))?;
    // Bytes an earlier attempt (or run) left in the cache's partial file are asked for no more:
    // the source answers from that offset, or from 0 when it ignores the range.
    // A kept prefix as long as the blob (or longer) cannot be resumed: start over.
    let mut offset = Some(shared.store.partial_len(&descriptor.digest))
        .filter(|&kept| kept < descriptor.size)
        .unwrap_or(0);
    loop {
        let (resumed_from, stream) = source.blob(repository, descriptor, offset).await?;
        let progress = progress_of(name, shared);
        // Bytes fetched are what arrived in this run: a download resumed from an earlier run's
        // partial file receives only the rest, and an attempt cut short still moved its bytes.
        let received = &shared.counters.bytes_fetched;
        let stream = stream.inspect_ok(move |chunk| {
            progress(chunk.len() as u64);
            received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        });
        let ingested = shared
            .store
            .ingest_resumable(&descriptor.digest, descriptor.size, resumed_from, stream)
            .await;
        match ingested {
            // The kept prefix was damaged (a bad disk, a file edited by hand): the digest is
            // over prefix and rest, so it cannot tell which was wrong. The prefix is gone now;
            // one download from the start settles it in this run instead of failing it.
            Err(IngestError::DigestMismatch { .. }) if resumed_from > 0 => {
                tracing::warn!(
                    digest = %descriptor.digest,
                    kept = resumed_from,
                    "the partial download kept in the cache did not verify with the rest of \
                     the blob; downloading the whole blob again"
                );
                offset = 0;
            }
            other => {
                other?;
                break;
            }
        }
    }
    shared
        .counters
        .blobs_fetched
        .fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Pushes a manifest whose children this run has just made sure of. A registry may still answer
/// MANIFEST_BLOB_UNKNOWN for a moment: distribution's filesystem driver rewrites a repository's
/// link file in place when another client pushes the same content at the same time, and
/// object-store backends are eventually consistent. Two short retries settle that; a child that
/// is really missing (a sparse index on distribution) still fails, a second later.
async fn put_manifest_settled<F, Fut>(put: F) -> Result<(), EndpointError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), EndpointError>>,
{
    let mut waits = [250u64, 750].into_iter();
    loop {
        match put().await {
            Err(e) if e.is_manifest_blob_unknown() => match waits.next() {
                Some(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
                None => return Err(e),
            },
            other => return other,
        }
    }
}
