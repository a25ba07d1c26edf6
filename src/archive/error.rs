//! What can be wrong with an archive, always naming the archive and the entry or image.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{archive}: {source}{}", hint(source))]
    Io {
        archive: PathBuf,
        source: std::io::Error,
    },
    #[error("{archive}: entry `{entry}` {reason}; refusing the archive")]
    UnsafePath {
        archive: PathBuf,
        entry: String,
        reason: &'static str,
    },
    #[error("{archive}: link `{entry}` points to `{target}`, outside the archive")]
    LinkEscapes {
        archive: PathBuf,
        entry: String,
        target: String,
    },
    #[error("{archive}: entry `{entry}` appears twice; refusing to guess which one is meant")]
    Duplicate { archive: PathBuf, entry: String },
    #[error("{archive}: `{entry}` (named by {named_by}) is not in the archive")]
    Missing {
        archive: PathBuf,
        entry: String,
        named_by: String,
    },
    #[error("{archive}: `{entry}` hashes to {actual}, not to the digest its name states")]
    WrongDigest {
        archive: PathBuf,
        entry: String,
        actual: String,
    },
    #[error("{archive}: `{entry}` is {size} bytes, over the {limit}-byte limit for metadata")]
    TooLarge {
        archive: PathBuf,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("{archive}: `{entry}` is not valid: {detail}")]
    BadJson {
        archive: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{archive}: not an image archive: it has neither `manifest.json` (docker save) nor `index.json` (OCI layout)")]
    NoLayout { archive: PathBuf },
    #[error("{archive}: not a tar archive{}: expected what `docker save`, `podman save` or `ctr images export` write (plain, .gz or .zst)", if *.decompressed { " once decompressed" } else { "" })]
    NotTar {
        archive: PathBuf,
        decompressed: bool,
    },
    #[error("{archive} is a mirror bundle (an OCI layout with the `mirrorfile.toml` that made it), not an image archive: read as one, its manifests would be rebuilt and its attestations and digest-only images dropped")]
    MirrorBundle { archive: PathBuf },
    #[error("{archive}: image {image}: {detail}")]
    Image {
        archive: PathBuf,
        image: String,
        detail: String,
    },
}

/// Read errors in the middle of an archive nearly always mean a cut-off or damaged file: say so.
fn hint(source: &std::io::Error) -> &'static str {
    let eof = source.to_string().to_ascii_lowercase().contains("eof");
    match source.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => {
            " (the archive is truncated or corrupt)"
        }
        _ if eof => " (the archive is truncated or corrupt)",
        _ => "",
    }
}
