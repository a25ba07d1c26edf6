//! Upload sessions that were opened but never closed: a transfer cancelled by Ctrl-C (its
//! future dropped mid-request) or one that failed. Each one is remembered when its guard drops
//! unfinished, and [`Client::cancel_abandoned_uploads`] DELETEs them, so the registry does not
//! keep half-written uploads around until its own purge runs (a week, by default, in
//! distribution).

use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;

use super::auth::push_scope;
use super::Client;

/// Sessions left open, per client.
#[derive(Debug, Default)]
pub(super) struct Abandoned(Mutex<Vec<(String, Url)>>);

/// An open upload session; dropping it unfinished records it as abandoned.
pub(super) struct OpenUpload {
    client: Client,
    repo: String,
    url: Option<Url>,
}

impl OpenUpload {
    pub(super) fn new(client: &Client, repo: &str, url: Url) -> OpenUpload {
        OpenUpload {
            client: client.clone(),
            repo: repo.to_string(),
            url: Some(url),
        }
    }

    pub(super) fn url(&self) -> Option<Url> {
        self.url.clone()
    }

    /// The session moved (each PATCH answers with the next Location).
    pub(super) fn moved_to(&mut self, url: Url) {
        self.url = Some(url);
    }

    /// The session is closed (committed, or cancelled by the caller itself).
    pub(super) fn finish(&mut self) {
        self.url = None;
    }
}

impl Drop for OpenUpload {
    fn drop(&mut self) {
        if let Some(url) = self.url.take() {
            if let Ok(mut list) = self.client.inner.abandoned.0.lock() {
                list.push((std::mem::take(&mut self.repo), url));
            }
        }
    }
}

impl Client {
    /// DELETEs every upload session left open so far (at most `timeout` each); returns how
    /// many were cancelled and how many could not be.
    ///
    /// A session that had already received bytes of a request cut short cannot be deleted on
    /// distribution: a DELETE must carry the session's current `_state`, which the registry
    /// only hands out in the answer to a finished request (measured on 2.8.2: 404
    /// BLOB_UPLOAD_INVALID, "upload resumed at wrong offset", and the data stays). Such a
    /// session is left to the registry's upload purging (distribution: older than 7 days).
    pub async fn cancel_abandoned_uploads(&self, timeout: Duration) -> (usize, usize) {
        let open: Vec<(String, Url)> = match self.inner.abandoned.0.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(_) => return (0, 0),
        };
        let (mut cancelled, mut left) = (0, 0);
        for (repo, url) in open {
            let op = format!("cancel upload to {repo}");
            let request = self.transport().client().delete(url).timeout(timeout);
            match self.send(request, &[push_scope(&repo)], &op).await {
                Ok(response) if response.status().is_success() => cancelled += 1,
                Ok(response) => {
                    left += 1;
                    tracing::debug!(status = %response.status(), "upload session not cancelled")
                }
                Err(e) => {
                    left += 1;
                    tracing::debug!(error = %e, "could not cancel upload session")
                }
            }
        }
        (cancelled, left)
    }
}
