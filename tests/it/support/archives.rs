//! Writes per-architecture image archives the way `docker save` (classic and Docker 25+), and
//! `ctr images export` do, plain or gzip/zstd compressed, plus hostile variants: raw tar entries
//! with any name, links and duplicates. Everything is deterministic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::images::{gzip, layer_tar, sha256, BuiltImage};

/// One image to put in an archive: uncompressed layers and a config stating its platform.
#[derive(Clone, Debug)]
pub struct ArchImage {
    pub names: Vec<String>,
    pub platform: String,
    pub layers: Vec<Vec<u8>>,
    pub config: Vec<u8>,
}

impl ArchImage {
    /// An image named `names`, for `platform` (`linux/arm/v7`), with one layer per seed.
    pub fn new(names: &[&str], platform: &str, layer_seeds: &[&str]) -> ArchImage {
        let layers: Vec<Vec<u8>> = layer_seeds.iter().map(|s| layer_tar(s, 3000)).collect();
        let config = config_for(platform, &layers);
        ArchImage {
            names: names.iter().map(|n| n.to_string()).collect(),
            platform: platform.to_string(),
            layers,
            config,
        }
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config)
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| sha256(l)).collect()
    }
}

/// A config JSON for `platform` whose diff_ids are those of `layers`.
pub fn config_for(platform: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut config = json!({
        "architecture": parts[1],
        "os": parts[0],
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256(l)).collect::<Vec<_>>()},
    });
    if let Some(v) = parts.get(2) {
        config["variant"] = json!(v);
    }
    serde_json::to_vec(&config).expect("config JSON")
}

/// A tar entry, possibly hostile.
pub enum Entry {
    File(String, Vec<u8>),
    Symlink(String, String),
}

/// Tar bytes for `entries`, names written raw (no checks), in order.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, body, link): (&str, &[u8], Option<&str>) = match entry {
            Entry::File(name, body) => (name, body, None),
            Entry::Symlink(name, target) => (name, &[], Some(target)),
        };
        {
            let gnu = header.as_gnu_mut().expect("gnu header");
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(target) = link {
                gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
            }
        }
        header.set_entry_type(if link.is_some() {
            tar::EntryType::Symlink
        } else {
            tar::EntryType::Regular
        });
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        out.append(&header, body).expect("append");
    }
    out.into_inner().expect("finish tar")
}

/// How the archive file is compressed.
#[derive(Clone, Copy, Debug)]
pub enum Packing {
    Plain,
    Gzip,
    Zstd,
}

/// Writes `tar` to `path`, compressed as asked.
pub fn write_packed(path: &Path, tar: &[u8], packing: Packing) {
    let bytes = match packing {
        Packing::Plain => tar.to_vec(),
        Packing::Gzip => gzip(tar),
        Packing::Zstd => zstd::encode_all(tar, 3).expect("zstd"),
    };
    let mut file = std::fs::File::create(path).expect("create archive");
    file.write_all(&bytes).expect("write archive");
}

/// Entries of a classic (Docker < 25) `docker save`: `<id>/layer.tar` (repeats as symlinks),
/// `<cfg>.json`, `manifest.json`, `repositories`.
pub fn classic_entries(images: &[ArchImage]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new(); // diff_id → dir
    let mut manifest = Vec::new();
    for image in images {
        let config_name = format!(
            "{}.json",
            image.config_digest().trim_start_matches("sha256:")
        );
        entries.push(Entry::File(config_name.clone(), image.config.clone()));
        let mut chain = String::new();
        let mut layer_names = Vec::new();
        for layer in &image.layers {
            let diff = sha256(layer);
            chain.push_str(&diff);
            let id = sha256(chain.as_bytes())
                .trim_start_matches("sha256:")
                .to_string();
            let name = format!("{id}/layer.tar");
            match seen.iter().find(|(d, _)| *d == diff) {
                Some((_, first)) if *first != name => {
                    entries.push(Entry::Symlink(name.clone(), format!("../{first}")));
                }
                Some(_) => {}
                None => {
                    entries.push(Entry::File(name.clone(), layer.clone()));
                    seen.push((diff, name.clone()));
                }
            }
            layer_names.push(name);
        }
        manifest
            .push(json!({"Config": config_name, "RepoTags": image.names, "Layers": layer_names}));
    }
    entries.push(Entry::File("repositories".into(), b"{}".to_vec()));
    entries.push(Entry::File(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).expect("json"),
    ));
    entries
}

/// Entries of a Docker 25+ save: `blobs/sha256/…` (uncompressed layers), OCI `index.json` with
/// one entry per name, `oci-layout`, and `manifest.json` pointing into `blobs/`.
pub fn docker25_entries(images: &[ArchImage]) -> Vec<Entry> {
    docker25_with(images, Docker25::default())
}

/// How a Docker 25+ save departs from the norm.
#[derive(Clone, Debug, Default)]
pub struct Docker25 {
    /// The Docker 25.0.0 defect: OCI manifests list no layers (`manifest.json` still does).
    pub empty_oci_layers: bool,
    /// Images (by position) left out of `index.json`.
    pub not_in_index: Vec<usize>,
    /// Images (by position) left out of `manifest.json`.
    pub not_in_manifest_json: Vec<usize>,
}

/// [`docker25_entries`] with the departures of `how`.
pub fn docker25_with(images: &[ArchImage], how: Docker25) -> Vec<Entry> {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |bytes: &[u8]| {
        let d = sha256(bytes);
        if !blobs.iter().any(|(x, _)| *x == d) {
            blobs.push((d.clone(), bytes.to_vec()));
        }
        d
    };
    let mut index = Vec::new();
    let mut manifest_json = Vec::new();
    for (position, image) in images.iter().enumerate() {
        let config = add(&image.config);
        let layers: Vec<String> = image.layers.iter().map(|l| add(l)).collect();
        let listed: Vec<serde_json::Value> = if how.empty_oci_layers {
            Vec::new()
        } else {
            image.layers.iter().zip(&layers).map(|(l, d)| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()
            })).collect()
        };
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": image.config.len()},
            "layers": listed,
        }))
        .expect("json");
        let m = add(&manifest);
        let path = |d: &String| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        if !how.not_in_manifest_json.contains(&position) {
            manifest_json.push(json!({
                "Config": path(&config),
                "RepoTags": image.names,
                "Layers": layers.iter().map(path).collect::<Vec<_>>(),
            }));
        }
        if how.not_in_index.contains(&position) {
            continue;
        }
        for name in &image.names {
            index.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": m, "size": manifest.len(),
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(':').next()},
            }));
        }
    }
    let mut entries: Vec<Entry> = blobs
        .into_iter()
        .map(|(d, b)| {
            Entry::File(
                format!("blobs/sha256/{}", d.trim_start_matches("sha256:")),
                b,
            )
        })
        .collect();
    entries.push(Entry::File(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})).expect("json"),
    ));
    entries.push(Entry::File(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    entries.push(Entry::File(
        "manifest.json".into(),
        serde_json::to_vec(&manifest_json).expect("json"),
    ));
    entries
}

/// Entries of `podman save --format docker-archive` (containers/image's writer): layers as
/// `<diffid>.tar`, configs as `<cfg>.json`, legacy `<v1id>/layer.tar` symlinks to the diffid
/// tars (with `<v1id>/json` and `VERSION`), `manifest.json` naming the diffid tars and fully
/// qualified `RepoTags` (`docker.io/…`), and `repositories`.
pub fn podman_entries(images: &[ArchImage]) -> Vec<Entry> {
    let hex = |d: String| d.trim_start_matches("sha256:").to_string();
    let mut entries = Vec::new();
    let mut written: Vec<String> = Vec::new();
    let mut manifest = Vec::new();
    for image in images {
        let config_name = format!("{}.json", hex(image.config_digest()));
        if !written.contains(&config_name) {
            entries.push(Entry::File(config_name.clone(), image.config.clone()));
            written.push(config_name.clone());
        }
        let mut layer_names = Vec::new();
        let mut parent = String::new();
        for layer in &image.layers {
            let name = format!("{}.tar", hex(sha256(layer)));
            if !written.contains(&name) {
                entries.push(Entry::File(name.clone(), layer.clone()));
                written.push(name.clone());
            }
            let v1 = hex(sha256(format!("{parent}{name}").as_bytes()));
            if !written.contains(&v1) {
                entries.push(Entry::Symlink(
                    format!("{v1}/layer.tar"),
                    format!("../{name}"),
                ));
                entries.push(Entry::File(
                    format!("{v1}/json"),
                    serde_json::to_vec(&json!({"id": v1, "parent": parent})).expect("json"),
                ));
                entries.push(Entry::File(format!("{v1}/VERSION"), b"1.0".to_vec()));
                written.push(v1.clone());
            }
            parent = v1;
            layer_names.push(name);
        }
        manifest
            .push(json!({"Config": config_name, "RepoTags": image.names, "Layers": layer_names}));
    }
    entries.push(Entry::File(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).expect("json"),
    ));
    entries.push(Entry::File("repositories".into(), b"{}".to_vec()));
    entries
}

/// What a `ctr images export --platform` archive holds, and the digests to expect.
pub struct CtrExport {
    pub entries: Vec<Entry>,
    pub upstream_index: String,
    pub manifest: String,
}

/// A `ctr export` of `image` (gzip layers): `index.json` names the full upstream index, which
/// lists `image`'s platform and two others whose manifests are not in the archive.
pub fn ctr_export(image: &ArchImage) -> CtrExport {
    let mut entries = Vec::new();
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let config = sha256(&image.config);
    entries.push(Entry::File(blob(&config), image.config.clone()));
    let mut layers = Vec::new();
    for l in &image.layers {
        let gz = gzip(l);
        let d = sha256(&gz);
        layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": gz.len()}));
        entries.push(Entry::File(blob(&d), gz));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": image.config.len()},
        "layers": layers,
    }))
    .expect("json");
    let m = sha256(&manifest);
    entries.push(Entry::File(blob(&m), manifest.clone()));
    let parts: Vec<&str> = image.platform.split('/').collect();
    let absent = |n: &str| sha256(n.as_bytes());
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent("s390x"), "size": 500, "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": manifest.len(), "platform": {"os": parts[0], "architecture": parts[1]}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent("ppc"), "size": 500, "platform": {"os": "linux", "architecture": "ppc64le"}},
        ],
    }))
    .expect("json");
    let i = sha256(&index);
    entries.push(Entry::File(blob(&i), index.clone()));
    entries.push(Entry::File(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    entries.push(Entry::File(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": i, "size": index.len(),
            "annotations": {"io.containerd.image.name": image.names[0]},
        }]}))
        .expect("json"),
    ));
    CtrExport {
        entries,
        upstream_index: i,
        manifest: m,
    }
}

/// Entries of an OCI-layout tar as `skopeo copy --all … oci-archive:` or `ctr export` (without
/// `--platform`) write it: every image whole, attestation manifests included, each listed in
/// `index.json` with the annotations given (none: an unnamed entry, known only by digest).
pub fn oci_layout_entries(images: &[(&[(&str, &str)], &BuiltImage)]) -> Vec<Entry> {
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut index = Vec::new();
    for (annotations, image) in images {
        blobs.extend(image.blobs.clone());
        for m in image.all_manifests() {
            blobs.insert(m.digest.clone(), m.bytes.clone());
        }
        blobs.insert(image.digest.clone(), image.bytes.clone());
        let mut entry = json!({
            "mediaType": image.media_type, "digest": image.digest, "size": image.bytes.len(),
        });
        if !annotations.is_empty() {
            let map: serde_json::Map<String, serde_json::Value> = annotations
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            entry["annotations"] = serde_json::Value::Object(map);
        }
        index.push(entry);
    }
    let mut entries = vec![Entry::File(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    )];
    entries.push(Entry::File(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": index})).expect("json"),
    ));
    entries.extend(blobs.into_iter().map(|(d, b)| {
        Entry::File(
            format!("blobs/sha256/{}", d.trim_start_matches("sha256:")),
            b,
        )
    }));
    entries
}
