//! The distribution-API client: talks to one registry host, knows nothing of Mirrorfiles or plans.
//!
//! - [`client`]: [`Client`], its authenticated send path and `ping`.
//! - [`manifests`]: manifest head/get/put (exact bytes, verified) and paged tag lists.
//! - [`blobs`]: blob head/get (streamed, resumable), cross-repository mounts, streamed uploads.
//! - [`challenge`]: `WWW-Authenticate` parsing that never panics on hostile headers.
//! - [`auth`]: bearer token exchange and the token cache per scope set.
//! - [`credentials`]: where credentials come from (in order), with redacted `Debug`.
//! - [`auth_file`]: Docker's config.json / containers' auth.json and credential helpers.
//! - [`http`]: reqwest setup per host (custom CA, skip-verify, plain HTTP), request counting.
//! - [`error`]: [`RegistryError`] with the host, operation, status and OCI error codes, and
//!   [`RegistryError::is_retryable`] for the executor.
//!
//! Manifests come back as the exact bytes served ([`crate::oci::RawManifest`]); blobs as streams.
//! There is no retry policy here: callers decide, using the error's verdict.

pub mod auth;
pub mod auth_file;
pub mod blobs;
pub mod challenge;
pub mod client;
pub mod credentials;
pub mod error;
mod error_body;
pub mod http;
pub mod links;
pub mod manifests;
mod uploads;

#[cfg(test)]
mod mock_server;
#[cfg(test)]
mod test_registry;
#[cfg(test)]
mod tests_mock;
#[cfg(test)]
mod tests_registry;

pub use blobs::{BlobResponse, BlobStream, MountOutcome, UploadProgress};
pub use client::Client;
pub use credentials::{CredentialSource, CredentialStore, Credentials};
pub use error::{ErrorBody, ErrorCode, RegistryError};
pub use http::install_crypto_provider;
pub use manifests::ManifestHead;
