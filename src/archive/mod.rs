//! Offline formats, read and written as streams: each file here is one reader or writer, turns
//! file contents into `oci` values, and never decides what to push.

pub mod bundle_read;
pub mod bundle_write;
pub mod inspect;

pub use bundle_read::{read_bundle, BundleReadError};
pub use bundle_write::{write_bundle, BlobFile, BundleContents, BundleWriteError, BundleWritten};
