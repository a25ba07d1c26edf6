//! Stage 1, parse: `mirrorfile.toml` → [`crate::model::Model`].
//!
//! Three steps, one file each: [`schema`] is the TOML as written (serde, spans kept),
//! `lower` turns it into the model (defaults, parsing, target names, conflicts), and
//! `image_list` reads the k3s-style list files it names. Every failure is a
//! [`MirrorfileError`] pointing at `file:line:column`; turning it into terminal output and an exit
//! code is the CLI's job.

mod archives;
mod conflicts;
mod error;
mod image_list;
mod lower;
mod naming;
mod registries;
mod repository;
pub mod schema;
mod starter;

use std::path::{Path, PathBuf};

pub use error::{ErrorKind, MirrorfileError};
pub use starter::starter;

use crate::model::{BundleSource, ImageSource, Model, SourceLocation, Target, BUNDLE_HOST};
use crate::oci::layout::RefName;
use crate::oci::Reference;
use error::SourceFile;

/// The file name looked for when no `-f` is given.
pub const DEFAULT_FILE_NAME: &str = "mirrorfile.toml";

/// The Mirrorfile to use: the explicit path if given, else `mirrorfile.toml` in `cwd`.
pub fn find(explicit: Option<&Path>, cwd: &Path) -> PathBuf {
    match explicit {
        Some(path) => path.to_path_buf(),
        None => cwd.join(DEFAULT_FILE_NAME),
    }
}

/// The largest Mirrorfile or image list `mirror` reads. A k3s release list is a few hundred
/// bytes; the cap keeps a mistake (`list = "/dev/zero"`, a binary file) from eating memory.
pub const MAX_TEXT_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a text input (Mirrorfile, image list) whole, refusing anything that is not a regular
/// file or is larger than [`MAX_TEXT_FILE_BYTES`], without reading past the cap.
pub(crate) fn read_text_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_TEXT_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEXT_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is larger than {MAX_TEXT_FILE_BYTES} bytes, far more than any Mirrorfile or image list"),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")
    })?;
    // Windows editors start UTF-8 files with a byte-order mark; it is not part of the text.
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Reads and lowers the Mirrorfile at `path`.
pub fn load(path: &Path) -> Result<Model, MirrorfileError> {
    let text = read_text_file(path).map_err(|err| {
        let help = if err.kind() == std::io::ErrorKind::NotFound {
            "run `mirror init` to write a starter here, or pass the path of yours with `-f <FILE>`"
        } else {
            "check the file's permissions, and that it is UTF-8 text"
        };
        MirrorfileError::io(path, err, help)
    })?;
    parse(path, &text)
}

/// Reads a k3s-style image-list file on its own (`mirror init --from`); errors point at the line.
pub fn read_image_list(path: &Path) -> Result<Vec<Reference>, MirrorfileError> {
    let text = read_text_file(path).map_err(|err| {
        MirrorfileError::list_io(
            path,
            err,
            "give the path of an image list: one reference per line, `#` comments allowed",
        )
    })?;
    let file = SourceFile::new(path, &text);
    Ok(image_list::parse(&file)?
        .into_iter()
        .map(|entry| entry.reference)
        .collect())
}

/// Lowers Mirrorfile `text` as if read from `path`; list and CA files are still read relative to
/// `path`'s directory.
pub fn parse(path: &Path, text: &str) -> Result<Model, MirrorfileError> {
    let file = SourceFile::new(path, text);
    let doc = toml::from_str::<schema::MirrorfileToml>(text).map_err(|e| file.toml_error(&e))?;
    lower::lower(doc, file)
}

/// The image a `[[bundles]]` entry contributes for the bundle image named `name`: it keeps its
/// repository path and tag (under the target's prefix), and its platform settings come from the
/// entry. Bundles are opened after lowering (they can be large), hence a separate step; the
/// error is a reason to show next to the bundle's name.
pub fn bundle_image(
    bundle: &BundleSource,
    is_dir: bool,
    name: &RefName,
    target: &Target,
) -> Result<ImageSource, String> {
    let reference = Reference::new(
        BUNDLE_HOST,
        name.repository(),
        name.tag(),
        name.digest().cloned(),
    )
    .map_err(|e| e.to_string())?;
    let host = match target {
        Target::Registry { host, .. } => host.as_str(),
        Target::Layout { .. } | Target::Bundle { .. } => "localhost",
    };
    let (target_repository, target_tag) =
        naming::target_name(host, target.prefix(), &reference, None)?;
    Ok(ImageSource {
        reference,
        location: SourceLocation::Bundle {
            path: bundle.path.clone(),
            written: bundle.written.clone(),
            is_dir,
        },
        platforms: bundle.platforms.clone(),
        index_mode: bundle.index_mode,
        target_repository,
        target_tag,
        origin: bundle.origin.clone(),
    })
}

#[cfg(test)]
mod snapshots;
#[cfg(test)]
mod tests;
