//! `mirrorfile.lock`: every source tag pinned to the digest it resolved to, so the same mirror can
//! be made again, byte for byte, after upstream tags have moved and without a network.
//!
//! The lock lives next to the Mirrorfile (`mirrorfile.toml` → `mirrorfile.lock`; `x.toml` →
//! `x.lock`) and is meant to be committed. It holds no timestamps, no hosts' credentials and
//! nothing that depends on the machine: the same Mirrorfile and the same upstream content give
//! the same bytes, on any run (entries are sorted, formatting is fixed by [`write()`]).
//!
//! What it records, per source reference (`[[image]]`): the digest and media type the tag
//! resolved to, the child manifest digest of every selected platform, and the digests of the
//! subset indexes `mirror` wrote from it. Per whole repository (`[[repository]]`): the tag filter
//! as written and the set of tags it chose. Only `digest` (and, for repositories, `tags`) is
//! read back as a pin; the rest is derived from the pinned content and checked, so an edited
//! Mirrorfile (other platforms, another filter) shows up as a change of the lock.
//!
//! Local sources are recorded too, not as pins (a file is what it is) but as a check: per file
//! an `[[archives]]` entry read (`[[archive]]`) and per `[[bundles]]` source (`[[bundle]]`), the
//! path as written in the Mirrorfile (relative to it), the sha256 and size of the file as on
//! disk (hashed during the one read of it, before any decompression; none for an OCI layout
//! directory) and, per target reference it produced, the digest the tag points at and the child
//! manifest of each platform it gave. So `--locked` notices a replaced `images-amd64.tar`, and a
//! `mirror` that would make other digests from the same file shows up as a change of the lock.
//!
//! # Version policy
//!
//! The file starts with `version = 1`. Keys a reader does not know are ignored, so a field may
//! be *added* without a new version when older readers can do without it. Removing a field, or
//! changing what one means, bumps `version`; a `mirror` that knows version N reads every version
//! up to N ("read first, write later": support for reading a new version ships before any
//! release writes it), writes the version it read unless an entry needs the new one, and
//! refuses a lock with a version above N, asking for a newer `mirror` instead of guessing.
//!
//! `[[archive]]` and `[[bundle]]` were added that way, under version 1: they pin nothing, so a
//! reader from before them ignores both tables and loses only the check. It drops them when it
//! rewrites the lock; the next newer run adds them back, as added entries (which `--locked`
//! refuses until a run without it has written them).

mod diff;
mod local;
mod read;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::oci::Digest;

pub use diff::{diff, Change};
pub use local::{FileKind, LockedFile, LockedTarget};
pub use read::LockError;
pub use write::write;

/// The lock format this build writes and the highest it reads.
pub const VERSION: u32 = 1;

/// The lock of a Mirrorfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lockfile {
    /// By source reference as written in the lock (`registry/repository:tag`).
    pub images: BTreeMap<String, LockedImage>,
    /// By (`registry/repository`, filter as described by [`crate::model::TagFilter::describe`]).
    pub repositories: BTreeMap<(String, String), LockedRepository>,
    /// `[[archive]]`: every file the `[[archives]]` entries read, by path as written (relative
    /// to the Mirrorfile, `/`-separated).
    pub archives: BTreeMap<String, LockedFile>,
    /// `[[bundle]]`: every `[[bundles]]` source, by path as written in the Mirrorfile.
    pub bundles: BTreeMap<String, LockedFile>,
}

impl Lockfile {
    /// The entries of one kind of local source.
    pub fn files(&self, kind: FileKind) -> &BTreeMap<String, LockedFile> {
        match kind {
            FileKind::Archive => &self.archives,
            FileKind::Bundle => &self.bundles,
        }
    }
}

/// One source reference, pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedImage {
    pub digest: Digest,
    pub media_type: String,
    /// (`os/arch[/variant]`, child manifest digest), sorted.
    pub platforms: BTreeSet<(String, Digest)>,
    /// Subset indexes `mirror` wrote from this image (one per platform selection in use).
    pub subset_indexes: BTreeSet<Digest>,
}

/// The tags a repository filter chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedRepository {
    /// Sorted.
    pub tags: Vec<String>,
}

/// Where the lock of the Mirrorfile at `mirrorfile` lives.
pub fn path_for(mirrorfile: &Path) -> PathBuf {
    mirrorfile.with_extension("lock")
}

impl Lockfile {
    /// Reads the lock at `path`; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Lockfile>, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => read::parse(path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LockError::io(path, e)),
        }
    }

    /// Writes the lock atomically (temp file in the same directory, then rename).
    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        use std::io::Write;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |e| LockError::io(path, e);
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
        tmp.write_all(write(self).as_bytes()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        crate::fsutil::make_readable(tmp.as_file()).map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}
