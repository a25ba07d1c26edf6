//! One sequential pass over an archive: every regular file goes into the content-addressed
//! cache as it streams by, and only names, digests, sizes and links are kept in memory.
//!
//! Why one pass: `docker save` writes `manifest.json` (and Docker 25+ `index.json`) at the end,
//! and a `.tar.gz`/`.tar.zst` cannot seek back. Spooling everything first and interpreting the
//! metadata afterwards reads the archive exactly once, with flat memory whatever its size.
//!
//! Hostile input is refused here, before anything is interpreted: absolute names, `..`,
//! duplicate names, links leaving the archive, and `blobs/sha256/<hex>` files whose bytes do not
//! hash to `<hex>`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::compression::{self, Compression};
use super::ArchiveError;
use crate::oci::Digest;

/// Entries in one archive before we call it hostile.
const MAX_ENTRIES: usize = 1_000_000;
/// Links followed in a chain before we call it a loop.
const MAX_LINK_DEPTH: usize = 16;

/// Where spooled bytes go (the cache, in practice) and how to read them back.
pub trait Spool: Sync {
    /// Stores everything `reader` yields, returning its sha256 and size.
    fn put(&self, reader: &mut dyn Read) -> std::io::Result<(Digest, u64)>;
    /// Opens stored bytes.
    fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send>>;
}

/// A regular file of the archive, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

/// What one archive holds, by name.
#[derive(Debug)]
pub struct Contents {
    pub archive: PathBuf,
    /// How the archive file itself is compressed.
    pub compression: Compression,
    files: BTreeMap<String, Blob>,
    links: BTreeMap<String, String>,
}

impl Contents {
    /// Reads the archive at `path` once, spooling every file.
    pub fn read(path: &Path, spool: &dyn Spool) -> Result<Contents, ArchiveError> {
        let io = |source| ArchiveError::Io {
            archive: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let (compression, reader) = compression::decoder(file).map_err(io)?;
        let mut contents = Contents {
            archive: path.to_path_buf(),
            compression,
            files: BTreeMap::new(),
            links: BTreeMap::new(),
        };
        let mut tar = tar::Archive::new(reader);
        let mut count = 0usize;
        for entry in tar.entries().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            count += 1;
            if count > MAX_ENTRIES {
                return Err(contents.unsafe_path("…", "is past the limit of entries per archive"));
            }
            let raw = entry.path_bytes().into_owned();
            let Ok(raw) = String::from_utf8(raw) else {
                continue; // not UTF-8: no JSON document can name it
            };
            let kind = entry.header().entry_type();
            if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
                continue;
            }
            let name = normalise(&raw).map_err(|reason| contents.unsafe_path(&raw, reason))?;
            if contents.files.contains_key(&name) || contents.links.contains_key(&name) {
                return Err(ArchiveError::Duplicate {
                    archive: path.to_path_buf(),
                    entry: name,
                });
            }
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let resolved = if kind.is_symlink() {
                    resolve_symlink(&name, &target)
                } else {
                    normalise(&target).ok()
                };
                let Some(resolved) = resolved else {
                    return Err(ArchiveError::LinkEscapes {
                        archive: path.to_path_buf(),
                        entry: name,
                        target,
                    });
                };
                contents.links.insert(name, resolved);
                continue;
            }
            if !kind.is_file() && kind != tar::EntryType::Continuous {
                continue; // devices, fifos: never part of an image archive's metadata or blobs
            }
            let (digest, size) = spool.put(&mut entry).map_err(io)?;
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                if hex != digest.hex() {
                    return Err(ArchiveError::WrongDigest {
                        archive: path.to_path_buf(),
                        entry: name,
                        actual: digest.to_string(),
                    });
                }
            }
            contents.files.insert(name, Blob { digest, size });
        }
        Ok(contents)
    }

    fn unsafe_path(&self, entry: &str, reason: &'static str) -> ArchiveError {
        ArchiveError::UnsafePath {
            archive: self.archive.clone(),
            entry: entry.to_string(),
            reason,
        }
    }

    /// Whether `name` exists (as a file or a link).
    pub fn has(&self, name: &str) -> bool {
        normalise(name)
            .map(|n| self.files.contains_key(&n) || self.links.contains_key(&n))
            .unwrap_or(false)
    }

    /// The file `name` refers to, following links. `named_by` says who asked, for the error.
    pub fn get(&self, name: &str, named_by: &str) -> Result<&Blob, ArchiveError> {
        let missing = || ArchiveError::Missing {
            archive: self.archive.clone(),
            entry: name.to_string(),
            named_by: named_by.to_string(),
        };
        let mut current = normalise(name).map_err(|reason| self.unsafe_path(name, reason))?;
        for _ in 0..MAX_LINK_DEPTH {
            if let Some(blob) = self.files.get(&current) {
                return Ok(blob);
            }
            match self.links.get(&current) {
                Some(next) => current = next.clone(),
                None => return Err(missing()),
            }
        }
        Err(missing())
    }

    /// The blob with `digest` under `blobs/sha256/`, if the archive has it.
    pub fn blob_by_digest(&self, digest: &Digest) -> Option<&Blob> {
        self.get(&format!("blobs/sha256/{}", digest.hex()), "")
            .ok()
            .filter(|b| &b.digest == digest)
    }
}

/// `./a//b/./c` → `a/b/c`; refuses absolute names and `..`.
pub fn normalise(raw: &str) -> Result<String, &'static str> {
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err("has an absolute path");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("has a `..` path component"),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("has an empty name");
    }
    Ok(parts.join("/"))
}

/// A symlink target, resolved against the link's directory; `None` when it leaves the archive.
fn resolve_symlink(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.is_empty() {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_hostile_ones_refused() {
        assert_eq!(normalise("./a//b/./c"), Ok("a/b/c".into()));
        assert!(normalise("/etc/passwd").is_err());
        assert!(normalise("a/../../b").is_err());
        assert!(normalise("./").is_err());
        assert_eq!(
            resolve_symlink("abc/layer.tar", "../def/layer.tar").as_deref(),
            Some("def/layer.tar")
        );
        assert_eq!(resolve_symlink("abc/layer.tar", "../../etc/passwd"), None);
        assert_eq!(resolve_symlink("layer.tar", "/etc/passwd"), None);
    }
}
