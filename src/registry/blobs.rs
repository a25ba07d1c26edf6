//! Blob endpoints: existence checks, streamed downloads with resume, cross-repository mounts and
//! streamed uploads.
//!
//! Memory stays flat whatever the layer size: downloads are handed to the caller as a stream, and
//! uploads read the file in 1 MiB pieces. Small blobs go in one PUT (one round trip); large
//! ones in PATCH chunks of a bounded size, because some registries and proxies cap request
//! bodies (a 413 on the single PUT also falls back to chunks).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Body, StatusCode, Url};

use crate::fsutil::PieceReader;
use crate::oci::Digest;

use super::auth::{pull_scope, push_scope};
use super::client::{header_str, header_u64, Client};
use super::error::RegistryError;
use super::http::Activity;
use super::links;
use super::uploads::OpenUpload;

/// Size of the pieces a file is read in while uploading.
const READ_CHUNK: usize = 1024 * 1024;

/// Told how many bytes were just sent, while an upload streams (for progress bars).
pub type UploadProgress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// A blob download in progress.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes, RegistryError>> + Send>>;

pub struct BlobResponse {
    /// The offset the stream starts at: the requested offset for a 206 starting there, else 0
    /// (the registry ignored the range and sends the whole blob).
    pub resumed_from: u64,
    /// Bytes the stream will yield, when the registry said.
    pub content_length: Option<u64>,
    pub stream: BlobStream,
}

impl std::fmt::Debug for BlobResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobResponse")
            .field("resumed_from", &self.resumed_from)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// The result of a cross-repository mount attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountOutcome {
    Mounted,
    /// The registry would not mount (source lacks the blob, no access): upload instead.
    NotMounted,
}

/// The start offset of a `Content-Range: bytes START-END/TOTAL` value.
fn content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split(['-', '/']).next()?.trim().parse().ok()
}

/// Streams `len` bytes of `path` from `start`, in [`READ_CHUNK`] pieces, telling `progress` about
/// each piece as it is handed to the connection.
///
/// Each piece is read on a blocking thread straight into the buffer that goes on the wire, with
/// `O_DIRECT` where the file system allows it ([`PieceReader`]): the upload is the last reader a
/// cache file has in a run, so its pages are not worth caching. One piece is read ahead, so the
/// disk read overlaps the send instead of stalling the stream between pieces.
async fn file_body(
    path: &Path,
    start: u64,
    len: u64,
    progress: Option<UploadProgress>,
    activity: Activity,
) -> io::Result<Body> {
    let path = path.to_owned();
    let reader = blocking(move || Ok(PieceReader::new(std::fs::File::open(&path)?))).await?;
    let end = start + len;
    let first = (start < end).then(|| read_piece(reader, start, end));
    let stream = futures_util::stream::try_unfold(first, move |in_flight| async move {
        let Some(in_flight) = in_flight else {
            return Ok(None);
        };
        let (reader, piece, next) = in_flight.await.map_err(io::Error::other)??;
        // The next piece is read while this one is on the wire.
        let ahead = (next < end).then(|| read_piece(reader, next, end));
        Ok::<_, io::Error>(Some((piece, ahead)))
    })
    .inspect_ok(move |piece| {
        activity.touch();
        if let Some(progress) = &progress {
            progress(piece.len() as u64);
        }
    });
    Ok(Body::wrap_stream(stream))
}

/// A piece read in flight: the reader back, the bytes, and the offset after them.
type PieceRead = tokio::task::JoinHandle<io::Result<(PieceReader, Bytes, u64)>>;

/// Starts reading the piece of `reader` at `at` (at most [`READ_CHUNK`], never past `end`) on a
/// blocking thread.
fn read_piece(mut reader: PieceReader, at: u64, end: u64) -> PieceRead {
    tokio::task::spawn_blocking(move || {
        let want = (end - at).min(READ_CHUNK as u64);
        let piece = reader.read(at, want as usize)?;
        if (piece.len() as u64) < want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file ended at byte {} of {end}", at + piece.len() as u64),
            ));
        }
        Ok((reader, piece, at + want))
    })
}

/// Runs blocking file I/O off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

impl Client {
    /// The blob's size if `repo` has it, `None` if not.
    pub async fn head_blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let op = format!("HEAD blob {repo}@{digest}");
        let url = self
            .transport()
            .url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let response = self
            .send(
                self.transport().client().head(url),
                &[pull_scope(repo)],
                &op,
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(header_u64(&response, CONTENT_LENGTH.as_str())),
            _ => Err(self.fail(response, &op).await),
        }
    }

    /// Starts downloading a blob, from `offset` if the registry honours a range. Redirects (to
    /// object storage) are followed; reqwest drops `Authorization` when one changes host.
    /// The caller verifies the digest over the whole content.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobResponse, RegistryError> {
        let op = format!("GET blob {repo}@{digest}");
        let url = self
            .transport()
            .url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let mut request = self.transport().client().get(url);
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        // The permit lives as long as the body stream: a download is one request in flight.
        let permit = self.permit().await;
        let response = self
            .send_unlimited(request, &[pull_scope(repo)], &op)
            .await?;
        let resumed_from = match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let start =
                    header_str(&response, CONTENT_RANGE.as_str()).and_then(content_range_start);
                if start != Some(offset) {
                    return Err(self.invalid(
                        &op,
                        format!("asked for bytes from {offset}, got a 206 for {start:?}"),
                    ));
                }
                offset
            }
            s if s.is_success() => 0,
            _ => return Err(self.fail(response, &op).await),
        };
        let content_length = response.content_length();
        let client = self.clone();
        let stream = response.bytes_stream().map_err(move |e| {
            let _held = &permit;
            client.transport_error(&op, e)
        });
        Ok(BlobResponse {
            resumed_from,
            content_length,
            stream: Box::pin(stream),
        })
    }

    /// Asks the registry to link `digest` from `from_repo` into `repo` without transferring it.
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<MountOutcome, RegistryError> {
        if self.mount_refused() {
            return Ok(MountOutcome::NotMounted);
        }
        let op = format!("mount blob {digest} from {from_repo} into {repo}");
        let url = self
            .transport()
            .url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let url = links::with_query(
            links::with_query(url, "mount", &digest.to_string()),
            "from",
            from_repo,
        );
        let scopes = [push_scope(repo), pull_scope(from_repo)];
        let request = self
            .transport()
            .client()
            .post(url)
            .header(CONTENT_LENGTH, 0);
        let response = self.send(request, &scopes, &op).await?;
        match response.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => {
                // An ordinary upload session was opened instead; close it so it does not linger.
                if let Some(session) = header_str(&response, LOCATION.as_str())
                    .and_then(|l| links::resolve(response.url(), l))
                {
                    self.cancel_upload(repo, session).await;
                }
                Ok(MountOutcome::NotMounted)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                // The registry does not mount (or the token service would not grant both
                // scopes in one token): upload instead, and stop asking this host.
                tracing::debug!(host = self.host(), status = %response.status(), "cross-repository mount refused; uploading instead");
                self.inner.mount_refused.store(true, Ordering::Relaxed);
                Ok(MountOutcome::NotMounted)
            }
            _ => Err(self.fail(response, &op).await),
        }
    }

    /// Best-effort DELETE of an upload session.
    async fn cancel_upload(&self, repo: &str, session: Url) {
        let op = format!("cancel upload to {repo}");
        let request = self.transport().client().delete(session);
        if let Err(err) = self.send(request, &[push_scope(repo)], &op).await {
            tracing::debug!(error = %err, "could not cancel upload session");
        }
    }

    /// Opens an upload session and returns its URL.
    async fn start_upload(&self, repo: &str, op: &str) -> Result<Url, RegistryError> {
        let url = self
            .transport()
            .url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let request = self
            .transport()
            .client()
            .post(url)
            .header(CONTENT_LENGTH, 0);
        let response = self.send(request, &[push_scope(repo)], op).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.fail(response, op).await);
        }
        self.location(&response, op)
    }

    fn location(&self, response: &reqwest::Response, op: &str) -> Result<Url, RegistryError> {
        header_str(response, LOCATION.as_str())
            .and_then(|l| links::resolve(response.url(), l))
            .ok_or_else(|| self.invalid(op, "upload response has no usable Location header"))
    }

    /// Uploads the file at `path` (already verified to hash to `digest`) as blob `digest`.
    pub async fn upload_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
    ) -> Result<(), RegistryError> {
        self.upload_blob_reporting(repo, digest, size, path, None)
            .await
    }

    /// [`Client::upload_blob`], telling `progress` about the bytes as they are sent.
    pub async fn upload_blob_reporting(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: Option<UploadProgress>,
    ) -> Result<(), RegistryError> {
        let op = format!("upload blob {repo}@{digest}");
        let local = |message: String| RegistryError::Local {
            host: self.host().to_string(),
            operation: op.clone(),
            message,
        };
        let actual = tokio::fs::metadata(path)
            .await
            .map_err(|e| local(format!("cannot read {}: {e}", path.display())))?
            .len();
        if actual != size {
            return Err(local(format!(
                "{} is {actual} bytes, expected {size}",
                path.display()
            )));
        }
        let session = self.start_upload(repo, &op).await?;
        let mut open = OpenUpload::new(self, repo, session.clone());
        if size > self.inner.single_put_max.load(Ordering::Relaxed) {
            return self
                .upload_chunked(repo, digest, size, path, &mut open, &op, progress)
                .await;
        }
        let activity = Activity::new();
        let body = file_body(path, 0, size, progress.clone(), activity.clone())
            .await
            .map_err(|e| local(format!("cannot read {}: {e}", path.display())))?;
        let request = self
            .transport()
            .upload_client()
            .put(links::with_query(
                session.clone(),
                "digest",
                &digest.to_string(),
            ))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(body);
        let response = self
            .send_upload(request, &[push_scope(repo)], &op, &activity)
            .await?;
        match response.status() {
            StatusCode::CREATED => {
                open.finish();
                Ok(())
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                tracing::debug!(repo, %digest, "single PUT refused as too large; uploading in chunks");
                open.finish();
                self.cancel_upload(repo, session).await;
                let session = self.start_upload(repo, &op).await?;
                open.moved_to(session);
                self.upload_chunked(repo, digest, size, path, &mut open, &op, progress)
                    .await
            }
            _ => Err(self.fail(response, &op).await),
        }
    }

    /// PATCHes the file in chunks, following each response's Location, then closes with a PUT.
    #[expect(
        clippy::too_many_arguments,
        reason = "one private helper of upload_blob"
    )]
    async fn upload_chunked(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        open: &mut OpenUpload,
        op: &str,
        progress: Option<UploadProgress>,
    ) -> Result<(), RegistryError> {
        let Some(mut session) = open.url() else {
            return Err(self.invalid(op, "upload session already closed"));
        };
        let chunk_size = self.inner.chunk_size.load(Ordering::Relaxed).max(1);
        let mut start = 0;
        while start < size {
            let len = chunk_size.min(size - start);
            let activity = Activity::new();
            let body = file_body(path, start, len, progress.clone(), activity.clone())
                .await
                .map_err(|e| RegistryError::Local {
                    host: self.host().to_string(),
                    operation: op.to_string(),
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
            let request = self
                .transport()
                .upload_client()
                .patch(session.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, format!("{start}-{}", start + len - 1))
                .header(CONTENT_LENGTH, len)
                .body(body);
            let response = self
                .send_upload(request, &[push_scope(repo)], op, &activity)
                .await?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(self.fail(response, op).await);
            }
            session = self.location(&response, op)?;
            open.moved_to(session.clone());
            start += len;
        }
        let request = self
            .transport()
            .client()
            .put(links::with_query(session, "digest", &digest.to_string()))
            .header(CONTENT_LENGTH, 0);
        let response = self.send(request, &[push_scope(repo)], op).await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.fail(response, op).await);
        }
        open.finish();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(content_range_start("items 1-2/3"), None);
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start(""), None);
    }
}
