//! The bundle reader: walks a bundle's files in one forward pass, handing each to a visitor as
//! a stream, so nothing is unpacked to disk and memory stays flat.
//!
//! A `.tar.zst` cannot seek, so a single pass is the only way through it; the visitor decides
//! what to keep (the importer streams blobs into the verified cache, `bundle inspect` keeps only
//! the small JSON documents). The compression is sniffed from the first bytes, not the name.
//! An OCI layout *directory* is walked the same way (`oci-layout`, `index.json`, then the blobs
//! sorted by name), so every caller handles bundles and layouts with one code path.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::oci::{read_hashed, FileDigest};

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

#[derive(Debug, thiserror::Error)]
pub enum BundleReadError {
    #[error("reading bundle {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is gzip-compressed; bundles are `.tar` or `.tar.zst` (recompress with `zstd`)"
    )]
    Gzip { path: PathBuf },
    #[error("{path}: entry `{entry}` has an unsafe path")]
    UnsafePath { path: PathBuf, entry: String },
    #[error("{path} is not a bundle: not a tar archive (bundles are `.tar` or `.tar.zst`)")]
    NotTar { path: PathBuf },
}

/// What the visitor is told about one file of the bundle.
pub struct BundleFile<'a> {
    /// Path inside the layout, `/`-separated, without a leading `./` (`blobs/sha256/ab…`).
    pub name: &'a str,
    pub size: u64,
}

/// Calls `visit` for every regular file of the bundle (or layout directory) at `path`, in
/// archive order. The visitor reads as much of the reader as it wants; the rest is skipped.
/// A visitor error stops the walk and is returned as is.
///
/// Returns the sha256 and size of a bundle *file* as on disk (its bytes hashed as they are read,
/// before decompression: no second read), for `mirrorfile.lock`; `None` for a directory.
pub fn read_bundle<E>(
    path: &Path,
    visit: &mut dyn FnMut(BundleFile<'_>, &mut dyn Read) -> Result<(), E>,
) -> Result<Option<FileDigest>, E>
where
    E: From<BundleReadError>,
{
    let io_err = |source| BundleReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return read_dir(path, visit).map(|()| None);
    }
    let source = File::open(path).map_err(io_err)?;
    let ((), file) = read_hashed(
        source,
        |raw| {
            let mut reader = BufReader::with_capacity(256 * 1024, raw);
            let head = reader.fill_buf().map_err(io_err)?;
            if head.starts_with(&ZSTD_MAGIC) {
                let decoder = zstd::Decoder::with_buffer(reader).map_err(io_err)?;
                read_tar(path, decoder, visit)
            } else if head.starts_with(&GZIP_MAGIC) {
                Err(BundleReadError::Gzip {
                    path: path.to_path_buf(),
                }
                .into())
            } else {
                read_tar(path, reader, visit)
            }
        },
        |e| io_err(e).into(),
    )?;
    Ok(Some(file))
}

fn read_tar<E, R: Read>(
    path: &Path,
    reader: R,
    visit: &mut dyn FnMut(BundleFile<'_>, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<BundleReadError>,
{
    let io_err = |source| BundleReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (is_tar, reader) = super::spool::peek_tar(reader).map_err(io_err)?;
    if !is_tar {
        return Err(BundleReadError::NotTar {
            path: path.to_path_buf(),
        }
        .into());
    }
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = clean_name(&raw).ok_or_else(|| BundleReadError::UnsafePath {
            path: path.to_path_buf(),
            entry: raw.clone(),
        })?;
        let size = entry.size();
        visit(BundleFile { name: &name, size }, &mut entry)?;
    }
    Ok(())
}

fn read_dir<E>(
    dir: &Path,
    visit: &mut dyn FnMut(BundleFile<'_>, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<BundleReadError>,
{
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleReadError::Io { path, source }
    };
    let mut names: Vec<String> = ["oci-layout", "index.json"]
        .iter()
        .filter(|n| dir.join(n).is_file())
        .map(|n| n.to_string())
        .collect();
    let blobs = dir.join("blobs");
    if blobs.is_dir() {
        let mut algorithms: Vec<_> = std::fs::read_dir(&blobs)
            .map_err(io_err(&blobs))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        algorithms.sort();
        for algorithm in algorithms {
            let sub = blobs.join(&algorithm);
            let mut files: Vec<String> = std::fs::read_dir(&sub)
                .map_err(io_err(&sub))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            names.extend(files.into_iter().map(|f| format!("blobs/{algorithm}/{f}")));
        }
    }
    for name in names {
        let path = dir.join(&name);
        let mut file = File::open(&path).map_err(io_err(&path))?;
        let size = file.metadata().map_err(io_err(&path))?.len();
        visit(BundleFile { name: &name, size }, &mut file)?;
    }
    Ok(())
}

/// `./a/b` → `a/b`; `None` for absolute paths or `..` (a bundle never needs them).
fn clean_name(raw: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => continue,
            ".." => return None,
            p => parts.push(p),
        }
    }
    if raw.starts_with('/') || parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{write_bundle, BlobFile, BundleContents};
    use crate::oci::Digest;

    fn collect(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        read_bundle::<BundleReadError>(path, &mut |file, reader| {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map_err(|source| BundleReadError::Io {
                    path: PathBuf::new(),
                    source,
                })?;
            out.push((file.name.to_string(), bytes));
            Ok(())
        })
        .expect("read");
        out
    }

    fn fs_digest(path: &Path) -> FileDigest {
        let bytes = std::fs::read(path).expect("read file");
        FileDigest {
            sha256: Digest::sha256_of(&bytes),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn reads_what_the_writer_wrote_compressed_or_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blob = dir.path().join("blob");
        std::fs::write(&blob, b"payload").expect("write");
        let contents = BundleContents {
            index_json: b"{}".to_vec(),
            files: vec![],
            blobs: vec![BlobFile {
                digest: Digest::sha256_of(b"payload"),
                size: 7,
                path: blob,
                hashed: None,
            }],
        };
        for name in ["b.tar", "b.tar.zst"] {
            let written = write_bundle(&dir.path().join(name), &contents).expect("write");
            let files = collect(&written.path);
            let on_disk = fs_digest(&written.path);
            let read =
                read_bundle::<BundleReadError>(&written.path, &mut |_, _| Ok(())).expect("read");
            assert_eq!(read, Some(on_disk), "{name}: the file as on disk");
            let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
            let blob_name = format!("blobs/sha256/{}", contents.blobs[0].digest.hex());
            assert_eq!(names, vec!["oci-layout", "index.json", blob_name.as_str()]);
            assert_eq!(files[2].1, b"payload");
        }
    }

    #[test]
    fn refuses_gzip_and_unsafe_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = dir.path().join("x.tar.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).expect("write");
        let err = read_bundle::<BundleReadError>(&gz, &mut |_, _| Ok(()));
        assert!(matches!(err, Err(BundleReadError::Gzip { .. })));
        let text = dir.path().join("notes.tar");
        std::fs::write(&text, "release notes, not a bundle\n".repeat(50)).expect("write");
        let err = read_bundle::<BundleReadError>(&text, &mut |_, _| Ok(()));
        assert!(
            matches!(err, Err(BundleReadError::NotTar { .. })),
            "{err:?}"
        );
        assert_eq!(
            clean_name("./blobs/sha256/ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(clean_name("../etc/passwd"), None);
        assert_eq!(clean_name("/etc/passwd"), None);
    }
}
