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
//!
//! A mirror bundle is refused here too, as soon as its `index.json` and Mirrorfile have gone by
//! (the bundle writer puts both before any blob): read as an image archive, its manifests would
//! be rebuilt and its attestations and digest-only images lost, and a bundle can be gigabytes,
//! so there is no point in reading on.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::bundle_write::{LOCK_ENTRY, MIRRORFILE_ENTRY};
use super::compression::{self, Compression};
use super::ArchiveError;
use crate::oci::{read_hashed, Digest, FileDigest};

/// Entries in one archive before we call it hostile.
const MAX_ENTRIES: usize = 1_000_000;
/// A tar block (and header) is this many bytes.
const TAR_BLOCK: usize = 512;

/// A reader with the block [`peek_tar`] read put back in front of the rest.
pub(crate) type Restored<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

/// Reads the first block of `reader` and says whether it starts a tar stream (a header, the
/// zero block of an empty tar, or nothing at all), handing back a reader with that block put
/// back. Checked before the tar reader runs, whose complaints about a non-tar file quote the
/// file's bytes as header text.
pub(crate) fn peek_tar<R: Read>(mut reader: R) -> std::io::Result<(bool, Restored<R>)> {
    let mut head = Vec::with_capacity(TAR_BLOCK);
    (&mut reader)
        .take(TAR_BLOCK as u64)
        .read_to_end(&mut head)?;
    let is_tar = head.is_empty() || is_tar_header(&head);
    Ok((is_tar, std::io::Cursor::new(head).chain(reader)))
}

/// Whether `block` is a full tar block that is all zeros (an empty archive's end) or a header
/// whose checksum field matches its bytes (the sum with the field itself read as spaces).
fn is_tar_header(block: &[u8]) -> bool {
    if block.len() != TAR_BLOCK {
        return false;
    }
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let Ok(text) = std::str::from_utf8(field) else {
        return false;
    };
    let Ok(stated) = u32::from_str_radix(text.trim_matches(|c| c == '\0' || c == ' '), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stated
}

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
    /// The archive file as on disk: sha256 of its bytes and size (what `mirrorfile.lock` records).
    pub file: FileDigest,
    files: Files,
    links: Links,
}

impl Contents {
    /// Reads the archive at `path` once, spooling every file. The file's own bytes are hashed
    /// on the way in (before decompression), so [`Contents::file`] costs no second read.
    pub fn read(path: &Path, spool: &dyn Spool) -> Result<Contents, ArchiveError> {
        let io = |source| ArchiveError::Io {
            archive: path.to_path_buf(),
            source,
        };
        let source = std::fs::File::open(path).map_err(io)?;
        let ((compression, (files, links)), file) = read_hashed(
            source,
            |raw| {
                let (compression, reader) = compression::decoder(raw).map_err(io)?;
                let (is_tar, reader) = peek_tar(reader).map_err(io)?;
                if !is_tar {
                    return Err(ArchiveError::NotTar {
                        archive: path.to_path_buf(),
                        decompressed: compression != Compression::None,
                    });
                }
                Ok((compression, read_entries(path, reader, spool)?))
            },
            io,
        )?;
        Ok(Contents {
            archive: path.to_path_buf(),
            compression,
            file,
            files,
            links,
        })
    }

    fn unsafe_path(&self, entry: &str, reason: &'static str) -> ArchiveError {
        unsafe_path(&self.archive, entry, reason)
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

type Files = BTreeMap<String, Blob>;
type Links = BTreeMap<String, String>;

fn unsafe_path(archive: &Path, entry: &str, reason: &'static str) -> ArchiveError {
    ArchiveError::UnsafePath {
        archive: archive.to_path_buf(),
        entry: entry.to_string(),
        reason,
    }
}

/// Every entry of the (decompressed) tar stream: regular files spooled, links recorded.
fn read_entries(
    path: &Path,
    reader: impl Read,
    spool: &dyn Spool,
) -> Result<(Files, Links), ArchiveError> {
    let io = |source| ArchiveError::Io {
        archive: path.to_path_buf(),
        source,
    };
    let mut files = Files::new();
    let mut links = Links::new();
    let mut tar = tar::Archive::new(reader);
    let mut count = 0usize;
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(unsafe_path(
                path,
                "…",
                "is past the limit of entries per archive",
            ));
        }
        let raw = entry.path_bytes().into_owned();
        let Ok(raw) = String::from_utf8(raw) else {
            continue; // not UTF-8: no JSON document can name it
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let name = normalise(&raw).map_err(|reason| unsafe_path(path, &raw, reason))?;
        if files.contains_key(&name) || links.contains_key(&name) {
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
            links.insert(name, resolved);
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
        let bundle_member = [INDEX_JSON, MIRRORFILE_ENTRY, LOCK_ENTRY].contains(&name.as_str());
        files.insert(name, Blob { digest, size });
        if bundle_member && is_mirror_bundle(&files) {
            return Err(ArchiveError::MirrorBundle {
                archive: path.to_path_buf(),
            });
        }
    }
    Ok((files, links))
}

/// The layout's root document, which a bundle shares with every OCI-layout tar.
const INDEX_JSON: &str = "index.json";

/// Whether the files so far are those of a mirror bundle: an OCI layout with the Mirrorfile (or
/// lock) that made it at its top level, which no `docker save`, `podman save` or `ctr export`
/// writes.
fn is_mirror_bundle(files: &Files) -> bool {
    files.contains_key(INDEX_JSON)
        && (files.contains_key(MIRRORFILE_ENTRY) || files.contains_key(LOCK_ENTRY))
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

    /// Keeps spooled bytes in memory.
    #[derive(Default)]
    struct Memory(std::sync::Mutex<BTreeMap<Digest, Vec<u8>>>);

    impl Spool for Memory {
        fn put(&self, reader: &mut dyn Read) -> std::io::Result<(Digest, u64)> {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes)?;
            let digest = Digest::sha256_of(&bytes);
            let size = bytes.len() as u64;
            if let Ok(mut map) = self.0.lock() {
                map.insert(digest.clone(), bytes);
            }
            Ok((digest, size))
        }

        fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send>> {
            let bytes = self.0.lock().ok().and_then(|m| m.get(digest).cloned());
            Ok(Box::new(std::io::Cursor::new(bytes.unwrap_or_default())))
        }
    }

    #[test]
    fn the_file_digest_covers_every_byte_on_disk_compressed_or_not() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "a.txt", &b"hello"[..])
            .expect("append");
        let mut plain = tar.into_inner().expect("tar");
        // `docker save` pads to a 10 KiB record: bytes after the end marker the parser skips.
        plain.resize(10240, 0);
        let gzipped = {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&plain).expect("gzip");
            gz.finish().expect("gzip")
        };
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, bytes) in [("a.tar", &plain), ("a.tar.gz", &gzipped)] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            let contents = Contents::read(&path, &Memory::default()).expect("reads");
            assert_eq!(contents.file.sha256, Digest::sha256_of(bytes), "{name}");
            assert_eq!(contents.file.size, bytes.len() as u64, "{name}");
            assert!(contents.has("a.txt"));
        }
    }

    #[test]
    fn files_that_are_not_tars_are_named_as_such() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text =
            b"# mirror\n\nA tool that mirrors images: this README is not a tar.\n".repeat(40);
        let gzipped = {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&text).expect("gzip");
            gz.finish().expect("gzip")
        };
        for (name, bytes, decompressed) in [
            ("readme.tar", &text[..], false),
            ("short.tar", &text[..100], false),
            ("readme.tar.gz", &gzipped[..], true),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            let err = Contents::read(&path, &Memory::default()).expect_err(name);
            assert!(
                matches!(err, ArchiveError::NotTar { decompressed: d, .. } if d == decompressed),
                "{name}: {err}"
            );
            let message = err.to_string();
            assert!(message.contains("not a tar archive"), "{message}");
            // Nothing of the file's own bytes is quoted back.
            assert!(!message.contains("README"), "{message}");
        }
    }

    #[test]
    fn a_mirror_bundle_is_refused_before_its_blobs_are_read() {
        let mut tar = tar::Builder::new(Vec::new());
        let entries: [(&str, &[u8]); 4] = [
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            ("index.json", br#"{"schemaVersion":2,"manifests":[]}"#),
            ("mirrorfile.toml", b"[target]\nregistry = \"r:5000\"\n"),
            // A blob whose bytes do not match its name: reading on would refuse it as such.
            (
                "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000",
                b"not that",
            ),
        ];
        for (name, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, body).expect("append");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.mirror.tar");
        std::fs::write(&path, tar.into_inner().expect("tar")).expect("write");
        let err = Contents::read(&path, &Memory::default()).expect_err("a bundle");
        assert!(matches!(err, ArchiveError::MirrorBundle { .. }), "{err}");
        assert!(err.to_string().contains("is a mirror bundle"), "{err}");
    }

    #[test]
    fn a_tar_header_is_known_by_its_checksum() {
        let mut header = tar::Header::new_ustar();
        header.set_path("blobs/sha256/abc").expect("path");
        header.set_size(5);
        header.set_cksum();
        assert!(is_tar_header(header.as_bytes()));
        assert!(is_tar_header(&[0u8; TAR_BLOCK]));
        let mut damaged = *header.as_bytes();
        damaged[0] ^= 1;
        assert!(!is_tar_header(&damaged));
        assert!(!is_tar_header(&header.as_bytes()[..511]));
    }

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
