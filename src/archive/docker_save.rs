//! `manifest.json` of `docker save` (every Docker version) and `podman save --format
//! docker-archive`: a list of `{Config, RepoTags, Layers}` naming files inside the archive.
//!
//! The layouts differ only in where those files are (`<id>/layer.tar` with symlinked duplicates
//! for Docker < 25, `blobs/sha256/<hex>` for Docker 25+, `<diffid>.tar` and `<cfg>.json` for
//! podman); the names are followed through [`Contents::get`], so one reader serves all three.

use serde::Deserialize;

use super::spool::{Blob, Contents};
use super::ArchiveError;

/// The name of the docker-save index.
pub const MANIFEST_JSON: &str = "manifest.json";

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// One image `manifest.json` lists, its files resolved.
#[derive(Debug, Clone)]
pub struct SavedImage {
    pub names: Vec<String>,
    pub config: Blob,
    /// Layer files, base first (uncompressed tars, normally).
    pub layers: Vec<Blob>,
}

/// Parses `manifest.json` and checks that every file it names is in the archive.
pub fn read(contents: &Contents, bytes: &[u8]) -> Result<Vec<SavedImage>, ArchiveError> {
    let entries: Vec<Entry> = serde_json::from_slice(bytes).map_err(|e| ArchiveError::BadJson {
        archive: contents.archive.clone(),
        entry: MANIFEST_JSON.into(),
        detail: e.to_string(),
    })?;
    entries
        .into_iter()
        .map(|entry| {
            let names = entry.repo_tags.unwrap_or_default();
            let who = format!(
                "{MANIFEST_JSON} for {}",
                names.first().map_or(entry.config.as_str(), String::as_str)
            );
            let config = contents.get(&entry.config, &who)?.clone();
            let layers = entry
                .layers
                .iter()
                .map(|l| contents.get(l, &who).cloned())
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SavedImage {
                names,
                config,
                layers,
            })
        })
        .collect()
}
