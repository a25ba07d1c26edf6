//! Writes classic `docker save` archives, one per platform, as a user of per-architecture air-gap
//! tarballs holds them (`images-amd64.tar`, …): `manifest.json`, `repositories`, each config as
//! `HEX.json` and each layer once, uncompressed, as `DIFFHEX/layer.tar`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::generate::{PlatformImage, Workload};

/// Writes `out/images-SLUG.tar` for every platform, holding the first `repos` images. Returns
/// the archive paths.
pub fn write_archives(dir: &Path, out: &Path, repos: usize) -> io::Result<Vec<PathBuf>> {
    let workload = Workload::read(dir)?;
    std::fs::create_dir_all(out)?;
    let images: Vec<_> = workload.images.iter().take(repos).collect();
    let Some(first) = images.first() else {
        return Ok(Vec::new());
    };
    let mut paths = Vec::new();
    for (n, platform) in first.platforms.iter().enumerate() {
        let slug = platform
            .platform
            .trim_start_matches("linux/")
            .replace('/', "-");
        let path = out.join(format!("images-{slug}.tar"));
        let members: Vec<(String, &PlatformImage)> = images
            .iter()
            .filter_map(|i| Some((format!("{}:{}", i.repository, i.tag), i.platforms.get(n)?)))
            .collect();
        write_one(dir, &path, &members)?;
        paths.push(path);
    }
    Ok(paths)
}

fn write_one(dir: &Path, path: &Path, members: &[(String, &PlatformImage)]) -> io::Result<()> {
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut tar = tar::Builder::new(file);
    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut manifest = Vec::new();
    let mut repositories = serde_json::Map::new();
    for (name, image) in members {
        let config_name = format!("{}.json", image.config.hex());
        if written.insert(config_name.clone()) {
            let bytes = std::fs::read(image.config.path(dir))?;
            append(&mut tar, &config_name, bytes.len() as u64, &bytes[..])?;
        }
        let mut layers = Vec::new();
        for layer in &image.layers {
            let id = layer.diff_id.trim_start_matches("sha256:");
            let entry = format!("{id}/layer.tar");
            if written.insert(entry.clone()) {
                let gz = GzDecoder::new(File::open(layer.blob.path(dir))?);
                append(&mut tar, &entry, layer.tar_size, gz)?;
            }
            layers.push(entry);
        }
        manifest.push(serde_json::json!({
            "Config": config_name,
            "RepoTags": [name],
            "Layers": layers,
        }));
        if let (Some((repo, tag)), Some(top)) = (name.rsplit_once(':'), image.layers.last()) {
            let top = top.diff_id.trim_start_matches("sha256:");
            repositories.insert(repo.to_string(), serde_json::json!({ tag: top }));
        }
    }
    let manifest = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    append(
        &mut tar,
        "manifest.json",
        manifest.len() as u64,
        &manifest[..],
    )?;
    let repositories = serde_json::to_vec(&repositories).map_err(io::Error::other)?;
    append(
        &mut tar,
        "repositories",
        repositories.len() as u64,
        &repositories[..],
    )?;
    tar.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

fn append<W: io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl io::Read,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, data)
}
