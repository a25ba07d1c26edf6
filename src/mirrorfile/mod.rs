//! Stage 1, parse: `mirrorfile.toml` → [`crate::model::Model`].
//!
//! Three steps, one file each: [`schema`] is the TOML as written (serde, spans kept),
//! `lower` turns it into the model (defaults, parsing, target names, conflicts), and
//! `image_list` reads the k3s-style list files it names. Every failure is a
//! [`MirrorfileError`] pointing at `file:line:column`; turning it into terminal output and an exit
//! code is the CLI's job.

mod conflicts;
mod error;
mod image_list;
mod lower;
mod naming;
pub mod schema;
mod starter;

use std::path::{Path, PathBuf};

pub use error::{ErrorKind, MirrorfileError};
pub use starter::starter;

use crate::model::Model;
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

/// Reads and lowers the Mirrorfile at `path`.
pub fn load(path: &Path) -> Result<Model, MirrorfileError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
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
    let text = std::fs::read_to_string(path).map_err(|err| {
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

#[cfg(test)]
mod snapshots;
#[cfg(test)]
mod tests;
