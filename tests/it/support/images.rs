//! A deterministic image builder.
//!
//! [`ImageSpec::build`] makes real OCI images in memory: gzip'd tar layers (fixed mtime, uid,
//! gid, mode, sorted entries, gzip level 6 with header mtime 0), configs with true
//! `architecture`/`os`/`variant` and `rootfs.diff_ids`, OCI manifests and, for multi-platform
//! specs, an OCI index (optionally with a buildx-style attestation entry). The same spec always
//! gives the same digests. [`write_layout`] writes images into an OCI image layout directory,
//! and [`BuiltImage::push`] seeds a registry through skopeo.
//!
//! OCI media types only: skopeo 1.9.3's `oci:` transport ignores Docker media types.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::skopeo;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ATTESTATION_TYPE_KEY: &str = "vnd.docker.reference.type";
pub const ATTESTATION_DIGEST_KEY: &str = "vnd.docker.reference.digest";

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// What to build.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// `os/arch[/variant]`, in index order.
    pub platforms: Vec<String>,
    /// Everything that is not the shared base derives from this string.
    pub seed: String,
    /// Layers per platform image, including the shared base layer when there is one.
    pub layers_per_image: usize,
    /// Extra deterministic pseudo-random (incompressible) bytes in each layer.
    pub layer_bytes: usize,
    /// When set, the first layer of each platform image derives from this seed and the platform
    /// only, so two images with the same base share that layer (blob) per platform.
    pub shared_base: Option<String>,
    /// Add a buildx-style attestation manifest describing the first platform's image.
    pub attestation: bool,
    /// Build an index even for a single platform (`false` gives a bare manifest for one platform).
    pub index: bool,
}

impl ImageSpec {
    /// A multi-platform image (an OCI index) with two small layers per platform.
    pub fn multi(seed: &str, platforms: &[&str]) -> ImageSpec {
        ImageSpec {
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
            seed: seed.to_string(),
            layers_per_image: 2,
            layer_bytes: 0,
            shared_base: None,
            attestation: false,
            index: true,
        }
    }

    /// A single-platform image: the tag points at a manifest, not an index.
    pub fn single(seed: &str, platform: &str) -> ImageSpec {
        ImageSpec {
            index: false,
            ..ImageSpec::multi(seed, &[platform])
        }
    }

    pub fn layers(mut self, n: usize) -> ImageSpec {
        assert!(n >= 1, "an image needs at least one layer");
        self.layers_per_image = n;
        self
    }

    pub fn layer_bytes(mut self, n: usize) -> ImageSpec {
        self.layer_bytes = n;
        self
    }

    pub fn shared_base(mut self, base_seed: &str) -> ImageSpec {
        self.shared_base = Some(base_seed.to_string());
        self
    }

    pub fn attestation(mut self, yes: bool) -> ImageSpec {
        self.attestation = yes;
        self
    }

    /// Builds everything in memory.
    pub fn build(&self) -> BuiltImage {
        assert!(!self.platforms.is_empty(), "an image needs a platform");
        assert!(
            self.index || self.platforms.len() == 1,
            "a single-manifest image has exactly one platform"
        );
        let mut blobs = BTreeMap::new();
        let mut manifests = Vec::new();
        for platform in &self.platforms {
            manifests.push(self.build_platform(platform, &mut blobs));
        }
        let attestation = if self.attestation {
            assert!(self.index, "attestations live in an index");
            Some(self.build_attestation(&manifests[0], &mut blobs))
        } else {
            None
        };

        let (bytes, media_type) = if self.index {
            let mut entries: Vec<Value> = manifests
                .iter()
                .map(|m| {
                    json!({
                        "mediaType": OCI_MANIFEST,
                        "digest": m.digest,
                        "size": m.bytes.len(),
                        "platform": platform_json(&m.platform),
                    })
                })
                .collect();
            if let Some(att) = &attestation {
                entries.push(json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": att.digest,
                    "size": att.bytes.len(),
                    "annotations": {
                        ATTESTATION_DIGEST_KEY: manifests[0].digest,
                        ATTESTATION_TYPE_KEY: "attestation-manifest",
                    },
                    "platform": {"architecture": "unknown", "os": "unknown"},
                }));
            }
            let index = json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": entries,
            });
            (to_json_bytes(&index), OCI_INDEX)
        } else {
            (manifests[0].bytes.clone(), OCI_MANIFEST)
        };
        BuiltImage {
            digest: sha256(&bytes),
            media_type: media_type.to_string(),
            bytes,
            manifests,
            attestation,
            blobs,
        }
    }

    fn build_platform(
        &self,
        platform: &str,
        blobs: &mut BTreeMap<String, Vec<u8>>,
    ) -> BuiltManifest {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for i in 0..self.layers_per_image {
            let seed = match (&self.shared_base, i) {
                (Some(base), 0) => format!("base:{base}:{platform}"),
                _ => format!("image:{}:{platform}:layer{i}", self.seed),
            };
            let tar = layer_tar(&seed, self.layer_bytes);
            diff_ids.push(sha256(&tar));
            let gz = gzip(&tar);
            layers.push(add_blob(blobs, OCI_LAYER_GZIP, gz));
        }
        let parts: Vec<&str> = platform.split('/').collect();
        let mut config = serde_json::Map::new();
        config.insert("architecture".into(), json!(parts[1]));
        config.insert("os".into(), json!(parts[0]));
        if let Some(variant) = parts.get(2) {
            config.insert("variant".into(), json!(variant));
        }
        config.insert(
            "config".into(),
            json!({
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
                "Labels": {"test.seed": self.seed, "test.platform": platform},
            }),
        );
        config.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        let config = add_blob(blobs, OCI_CONFIG, to_json_bytes(&Value::Object(config)));
        let bytes = manifest_bytes(&config, &layers, None);
        BuiltManifest {
            platform: platform.to_string(),
            digest: sha256(&bytes),
            bytes,
            config,
            layers,
        }
    }

    fn build_attestation(
        &self,
        subject: &BuiltManifest,
        blobs: &mut BTreeMap<String, Vec<u8>>,
    ) -> BuiltManifest {
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"name": format!("pkg:docker/{}", self.seed), "digest": {"sha256": subject.digest.trim_start_matches("sha256:")}}],
            "predicate": {"spdxVersion": "SPDX-2.3", "name": self.seed},
        });
        let layer_bytes = to_json_bytes(&statement);
        let layer = add_blob(blobs, IN_TOTO, layer_bytes.clone());
        let config = json!({
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(&layer_bytes)]},
        });
        let config = add_blob(blobs, OCI_CONFIG, to_json_bytes(&config));
        let annotations = json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"});
        let bytes = manifest_bytes(&config, std::slice::from_ref(&layer), Some(annotations));
        BuiltManifest {
            platform: "unknown/unknown".to_string(),
            digest: sha256(&bytes),
            bytes,
            config,
            layers: vec![layer],
        }
    }
}

/// A content blob: config or layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// One image manifest (a platform's image, or the attestation manifest).
#[derive(Debug, Clone)]
pub struct BuiltManifest {
    /// `os/arch[/variant]`, or `unknown/unknown` for the attestation.
    pub platform: String,
    pub digest: String,
    pub bytes: Vec<u8>,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

impl BuiltManifest {
    /// Config and layers.
    pub fn blobs(&self) -> Vec<&Blob> {
        std::iter::once(&self.config).chain(&self.layers).collect()
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// The result of [`ImageSpec::build`].
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// What a tag points at: the index digest, or the manifest digest for a single image.
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// Platform manifests, in spec order.
    pub manifests: Vec<BuiltManifest>,
    pub attestation: Option<BuiltManifest>,
    /// Every blob's bytes by digest.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

impl BuiltImage {
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX
    }

    /// The manifest for `platform` (`os/arch[/variant]`).
    pub fn manifest(&self, platform: &str) -> &BuiltManifest {
        self.manifests
            .iter()
            .find(|m| m.platform == platform)
            .unwrap_or_else(|| panic!("image has no platform {platform}"))
    }

    /// Every manifest below the top level: platforms, then the attestation.
    pub fn all_manifests(&self) -> Vec<&BuiltManifest> {
        self.manifests.iter().chain(&self.attestation).collect()
    }

    /// Distinct blobs of every manifest (platforms and attestation), sorted by digest.
    pub fn all_blobs(&self) -> Vec<Blob> {
        unique(self.all_manifests().into_iter().flat_map(|m| m.blobs()))
    }

    /// Sum of the sizes of [`BuiltImage::all_blobs`].
    pub fn blob_bytes(&self) -> u64 {
        self.all_blobs().iter().map(|b| b.size).sum()
    }

    /// Distinct blobs of the selected platforms, plus the attestation's when `with_attestation`
    /// (the attestation describes the first platform).
    pub fn blobs_for(&self, platforms: &[&str], with_attestation: bool) -> Vec<Blob> {
        let selected = self
            .manifests
            .iter()
            .filter(|m| platforms.contains(&m.platform.as_str()))
            .chain(self.attestation.iter().filter(|_| with_attestation));
        unique(selected.flat_map(|m| m.blobs()))
    }

    /// Writes this image alone into a fresh OCI layout under `tag` and pushes it with skopeo to
    /// `dest` (`HOST/REPO:TAG`), digests preserved.
    pub fn push(&self, dest: &str) {
        let dir = tempfile::Builder::new()
            .prefix("mirror-it-layout-")
            .tempdir()
            .expect("create layout temp dir");
        write_layout(dir.path(), &[("seed", self)]);
        skopeo::copy_layout_to_registry(dir.path(), "seed", dest);
    }
}

/// Sum of sizes of distinct blobs.
pub fn total_size(blobs: &[Blob]) -> u64 {
    blobs.iter().map(|b| b.size).sum()
}

fn unique<'a>(blobs: impl Iterator<Item = &'a Blob>) -> Vec<Blob> {
    let map: BTreeMap<&str, &Blob> = blobs.map(|b| (b.digest.as_str(), b)).collect();
    map.into_values().cloned().collect()
}

/// Writes an OCI image layout holding `images`, each tagged with
/// `org.opencontainers.image.ref.name`.
pub fn write_layout(dir: &Path, images: &[(&str, &BuiltImage)]) {
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).expect("create layout blob dir");
    let write_blob = |digest: &str, bytes: &[u8]| {
        let path = blob_dir.join(digest.trim_start_matches("sha256:"));
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    };
    let mut entries = Vec::new();
    for (tag, image) in images {
        for (digest, bytes) in &image.blobs {
            write_blob(digest, bytes);
        }
        for m in image.all_manifests() {
            write_blob(&m.digest, &m.bytes);
        }
        write_blob(&image.digest, &image.bytes);
        entries.push(json!({
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": image.bytes.len(),
            "annotations": {REF_NAME: tag},
        }));
    }
    let index = json!({"schemaVersion": 2, "manifests": entries});
    fs::write(dir.join("index.json"), to_json_bytes(&index)).expect("write index.json");
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
}

fn add_blob(blobs: &mut BTreeMap<String, Vec<u8>>, media_type: &str, bytes: Vec<u8>) -> Blob {
    let blob = Blob {
        digest: sha256(&bytes),
        size: bytes.len() as u64,
        media_type: media_type.to_string(),
    };
    blobs.insert(blob.digest.clone(), bytes);
    blob
}

fn manifest_bytes(config: &Blob, layers: &[Blob], annotations: Option<Value>) -> Vec<u8> {
    let desc = |b: &Blob| json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size});
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(config),
        "layers": layers.iter().map(desc).collect::<Vec<_>>(),
    });
    if let Some(annotations) = annotations {
        manifest["annotations"] = annotations;
    }
    to_json_bytes(&manifest)
}

fn platform_json(platform: &str) -> Value {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut p = serde_json::Map::new();
    p.insert("architecture".into(), json!(parts[1]));
    p.insert("os".into(), json!(parts[0]));
    if let Some(variant) = parts.get(2) {
        p.insert("variant".into(), json!(variant));
    }
    Value::Object(p)
}

fn to_json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialise JSON")
}

/// An uncompressed tar: a directory and a few small text files derived from `seed`, plus
/// `data.bin` with `extra` pseudo-random bytes when non-zero. Entries sorted, metadata fixed.
pub fn layer_tar(seed: &str, extra: usize) -> Vec<u8> {
    let tag = hex::encode(&Sha256::digest(seed.as_bytes())[..6]);
    let dir = format!("opt/{tag}/");
    let mut files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            let body = format!("seed={seed}\nfile={i}\n{}\n", "x".repeat(i * 17));
            (format!("{dir}file-{i}.txt"), body.into_bytes())
        })
        .collect();
    if extra > 0 {
        files.push((format!("{dir}data.bin"), pseudo_random(seed, extra)));
    }
    files.sort();

    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    // Parents before children, which is also sorted order.
    for path in ["opt/", dir.as_str()] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_path(path).expect("tar dir path");
        header.set_size(0);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append(&header, std::io::empty())
            .expect("append tar dir");
    }
    for (path, body) in &files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_path(path).expect("tar file path");
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append(&header, body.as_slice())
            .expect("append tar file");
    }
    builder.into_inner().expect("finish tar")
}

/// Gzip with fixed settings: level 6, header mtime 0, no file name.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(6));
    enc.write_all(bytes).expect("gzip write");
    enc.finish().expect("gzip finish")
}

/// `len` bytes from a splitmix64 stream seeded by sha256(`seed`): incompressible, deterministic.
pub fn pseudo_random(seed: &str, len: usize) -> Vec<u8> {
    let h = Sha256::digest(seed.as_bytes());
    let mut state = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}
