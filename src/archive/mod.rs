//! Offline formats, read and written as streams: each file here is one reader or writer, turns
//! file contents into `oci` values, and never decides what to push.
//!
//! Bundles (`bundle_read`, `bundle_write`, `inspect`) are mirror's own air-gap format. Image
//! archives from other tools (`image_archive` with `docker_save`, `oci_tar`, `spool`, `config`,
//! `compression`) are per-architecture `docker save` / OCI tars, read without a daemon.

pub mod bundle_read;
pub mod bundle_write;
pub mod compression;
pub mod config;
pub mod docker_save;
mod error;
pub mod image_archive;
pub mod inspect;
pub mod oci_tar;
pub mod parallel_gzip;
pub mod spool;
#[cfg(test)]
mod test_io;

pub use bundle_read::{read_bundle, BundleReadError};
pub use bundle_write::{
    write_bundle, write_bundle_until, BlobFile, BundleContents, BundleWriteError, BundleWritten,
};
pub use compression::Compression;
pub use config::ImageConfig;
pub use error::ArchiveError;
pub(crate) use image_archive::read_limited;
pub use image_archive::{read, Found, FoundImage, FoundLayer, MAX_CONFIG_BYTES, MAX_JSON_BYTES};
pub use spool::{Blob, Contents, Spool};
