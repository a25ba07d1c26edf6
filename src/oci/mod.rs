//! The vocabulary every other module speaks: digests, references, platforms, media types,
//! descriptors and raw manifests.
//!
//! Nothing here does I/O or async work, so every layer may depend on it and its tests are plain
//! tables. Each type has exactly one parsing constructor that returns a typed error, and a
//! `Display` that round-trips through that constructor.

pub mod canonical;
pub mod descriptor;
pub mod digest;
pub mod layout;
pub mod manifest;
pub mod media_type;
pub mod platform;
pub mod reference;

pub use descriptor::Descriptor;
pub use digest::{read_hashed, Digest, DigestError, FileDigest, Sha256Hasher};
pub use manifest::{ImageView, IndexView, ManifestError, ManifestView, RawManifest};
pub use media_type::MediaType;
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError};

/// The largest manifest `mirror` accepts, as distribution and most registries enforce it.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The largest image config `mirror` reads into memory (configs are read whole, to learn an
/// image's platform and check its layers); larger ones are refused as absurd.
pub const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;
