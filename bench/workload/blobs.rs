//! Writes the workload's blobs into a directory laid out as an OCI image layout
//! (`blobs/sha256/HEX`), so skopeo's `oci:` transport can read it too.
//!
//! Layers are real `tar+gzip` blobs: a tar holding one file of pseudo-random bytes, gzip-wrapped
//! with compression level 0. Random payload is incompressible, as the compressed layers a registry
//! serves are, and level 0 keeps generation fast while the blob stays a valid gzip stream (so
//! tools that sniff compression see what they expect). The payload comes from xoshiro256**
//! seeded from the layer's name and platform: the same workload everywhere, forever.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::spec::mix;

pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A blob in the layout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Blob {
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join("blobs/sha256").join(self.hex())
    }

    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A generated layer: the compressed blob plus what a docker-save archive needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layer {
    pub blob: Blob,
    /// sha256 of the uncompressed tar (the config's `diff_id`).
    pub diff_id: String,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
}

/// xoshiro256** over a seed: fast, deterministic, incompressible output.
pub struct Noise {
    s: [u64; 4],
    remaining: u64,
}

impl Noise {
    pub fn new(seed: u64, len: u64) -> Noise {
        let s = [mix(seed), mix(seed ^ 1), mix(seed ^ 2), mix(seed ^ 3)];
        Noise { s, remaining: len }
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.remaining) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct Hashing<W> {
    pub inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// `(sha256:HEX, bytes)` and the inner writer.
    pub fn finish(self) -> (String, u64, W) {
        let hex = hex::encode(self.hasher.finalize());
        (format!("sha256:{hex}"), self.len, self.inner)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A seed from a layer's name and platform.
pub fn seed(name: &str, platform: &str) -> u64 {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain([b'/']).chain(platform.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Writes the uncompressed tar of a layer to `out`.
pub fn write_tar<W: Write>(name: &str, platform: &str, payload: u64, out: W) -> io::Result<W> {
    let mut header = tar::Header::new_gnu();
    header.set_size(payload);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(out);
    builder.append_data(
        &mut header,
        format!("opt/bench/{name}/payload.bin"),
        Noise::new(seed(name, platform), payload),
    )?;
    builder.into_inner()
}

/// Generates one layer into `dir`, unless a previous run already did (the name is unique).
pub fn write_layer(dir: &Path, name: &str, platform: &str, payload: u64) -> io::Result<Layer> {
    let tmp = dir.join(format!("tmp-{name}-{platform}"));
    let file = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let gz = GzEncoder::new(Hashing::new(file), Compression::none());
    let tar = write_tar(name, platform, payload, Hashing::new(gz))?;
    let (diff_id, tar_size, gz) = tar.finish();
    let (digest, size, mut file) = gz.finish()?.finish();
    file.flush()?;
    let blob = Blob {
        media_type: LAYER.to_string(),
        digest,
        size,
    };
    std::fs::rename(&tmp, blob.path(dir))?;
    Ok(Layer {
        blob,
        diff_id,
        tar_size,
    })
}

/// Writes a JSON document as a blob.
pub fn write_json(dir: &Path, value: &serde_json::Value, media_type: &str) -> io::Result<Blob> {
    let bytes = serde_json::to_vec(value)?;
    let hex = hex::encode(Sha256::digest(&bytes));
    let blob = Blob {
        media_type: media_type.to_string(),
        digest: format!("sha256:{hex}"),
        size: bytes.len() as u64,
    };
    std::fs::write(blob.path(dir), &bytes)?;
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_sized() {
        let mut a = Vec::new();
        Noise::new(7, 1001).read_to_end(&mut a).expect("read");
        let mut b = Vec::new();
        Noise::new(7, 1001).read_to_end(&mut b).expect("read");
        assert_eq!(a.len(), 1001);
        assert_eq!(a, b);
        assert_ne!(seed("a", "amd64"), seed("a", "arm64"));
    }
}
