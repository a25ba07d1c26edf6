//! Turns the [`spec`](crate::spec) into blobs, manifests and indexes on disk, and records what it
//! made in `workload.json` (read by `push`, `archives` and `bench/run.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blobs::{self, Blob, Layer};
use crate::spec::{self, ImageSpec, Knobs, PLATFORMS};

/// One platform of one image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformImage {
    /// `linux/arm/v7`.
    pub platform: String,
    pub arch: String,
    pub variant: Option<String>,
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Layer>,
}

/// One multi-arch image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    pub repository: String,
    pub tag: String,
    pub index: Blob,
    pub platforms: Vec<PlatformImage>,
}

impl Image {
    /// Config and layer blobs of every platform.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.platforms
            .iter()
            .flat_map(|p| std::iter::once(&p.config).chain(p.layers.iter().map(|l| &l.blob)))
    }
}

/// Everything `generate` made.
#[derive(Debug, Serialize, Deserialize)]
pub struct Workload {
    pub images: Vec<Image>,
    /// The first image's next release (one new layer per platform).
    pub bump: Image,
    /// Blobs of `bump` that the first image does not have (new layers and configs).
    pub bump_new: Vec<Blob>,
    /// Bytes of all distinct config and layer blobs of `images`.
    pub unique_bytes: u64,
}

impl Workload {
    pub fn read(dir: &Path) -> io::Result<Workload> {
        let text = std::fs::read(dir.join("workload.json"))?;
        serde_json::from_slice(&text).map_err(io::Error::other)
    }
}

/// Generates everything into `dir`.
pub fn generate(dir: &Path, knobs: &Knobs) -> io::Result<Workload> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let specs = spec::images(knobs);
    let bump_spec = specs
        .first()
        .map(|first| spec::bumped(knobs, first))
        .ok_or_else(|| io::Error::other("--repos must be at least 1"))?;

    // Every distinct (layer, platform) once, generated in parallel.
    let mut wanted: BTreeMap<(String, String), u64> = BTreeMap::new();
    for image in specs.iter().chain([&bump_spec]) {
        for p in PLATFORMS {
            for layer in layers_for(image, &p.slug()) {
                wanted.insert((layer.name.clone(), p.slug()), layer.payload);
            }
        }
    }
    let made: BTreeMap<(String, String), Layer> = wanted
        .into_par_iter()
        .map(|((name, slug), payload)| {
            let layer = blobs::write_layer(dir, &name, &slug, payload)?;
            Ok(((name, slug), layer))
        })
        .collect::<io::Result<_>>()?;

    let mut images = Vec::new();
    for image in &specs {
        images.push(assemble(dir, image, &made)?);
    }
    let bump = assemble(dir, &bump_spec, &made)?;
    let old: BTreeSet<&Blob> = images[0].blobs().collect();
    let bump_new = bump.blobs().filter(|b| !old.contains(b)).cloned().collect();
    let unique: BTreeSet<(&str, u64)> = images
        .iter()
        .flat_map(|i| i.blobs())
        .map(|b| (b.digest.as_str(), b.size))
        .collect();
    let unique_bytes = unique.iter().map(|(_, size)| size).sum();
    write_index_json(dir, images.iter().chain([&bump]))?;
    let workload = Workload {
        images,
        bump,
        bump_new,
        unique_bytes,
    };
    let json = serde_json::to_vec_pretty(&workload).map_err(io::Error::other)?;
    std::fs::write(dir.join("workload.json"), json)?;
    Ok(workload)
}

fn layers_for<'a>(image: &'a ImageSpec, slug: &str) -> Vec<&'a spec::LayerSpec> {
    let mut layers: Vec<_> = image.layers.iter().collect();
    if let Some((only, extra)) = &image.extra {
        if only == slug {
            layers.push(extra);
        }
    }
    layers
}

/// Writes configs, manifests and the index of one image.
fn assemble(
    dir: &Path,
    image: &ImageSpec,
    made: &BTreeMap<(String, String), Layer>,
) -> io::Result<Image> {
    let mut platforms = Vec::new();
    for p in PLATFORMS {
        let slug = p.slug();
        let layers: Vec<Layer> = layers_for(image, &slug)
            .into_iter()
            .map(|l| {
                made.get(&(l.name.clone(), slug.clone()))
                    .cloned()
                    .ok_or_else(|| io::Error::other(format!("layer {} not generated", l.name)))
            })
            .collect::<io::Result<_>>()?;
        let mut config = serde_json::json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": p.arch,
            "os": "linux",
        });
        let mut platform = serde_json::json!({"architecture": p.arch, "os": "linux"});
        if let Some(v) = p.variant {
            config["variant"] = v.into();
            platform["variant"] = v.into();
        }
        config["config"] = serde_json::json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": {"bench.image": format!("{}:{}", image.repository, image.tag)},
        });
        config["rootfs"] = serde_json::json!({
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        });
        let config = blobs::write_json(dir, &config, blobs::CONFIG)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": blobs::MANIFEST,
            "config": config.descriptor(),
            "layers": layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
        });
        let manifest = blobs::write_json(dir, &manifest, blobs::MANIFEST)?;
        platforms.push((platform, manifest, config, layers, p));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": blobs::INDEX,
        "manifests": platforms.iter().map(|(platform, manifest, ..)| {
            let mut d = manifest.descriptor();
            d["platform"] = platform.clone();
            d
        }).collect::<Vec<_>>(),
    });
    let index = blobs::write_json(dir, &index, blobs::INDEX)?;
    Ok(Image {
        repository: image.repository.clone(),
        tag: image.tag.clone(),
        index,
        platforms: platforms
            .into_iter()
            .map(|(_, manifest, config, layers, p)| PlatformImage {
                platform: match p.variant {
                    Some(v) => format!("linux/{}/{v}", p.arch),
                    None => format!("linux/{}", p.arch),
                },
                arch: p.arch.to_string(),
                variant: p.variant.map(str::to_string),
                manifest,
                config,
                layers,
            })
            .collect(),
    })
}

/// `index.json` naming every image `REPOSITORY:TAG`, so `skopeo copy oci:DIR:NAME` works.
fn write_index_json<'a>(dir: &Path, images: impl Iterator<Item = &'a Image>) -> io::Result<()> {
    let manifests: Vec<_> = images
        .map(|i| {
            let mut d = i.index.descriptor();
            d["annotations"] = serde_json::json!({
                "org.opencontainers.image.ref.name": format!("{}:{}", i.repository, i.tag),
            });
            d
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    let bytes = serde_json::to_vec_pretty(&index).map_err(io::Error::other)?;
    std::fs::write(dir.join("index.json"), bytes)
}
