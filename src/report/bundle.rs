//! Bundle reports: what `bundle inspect` found, and the line `apply` prints after writing one.

use std::fmt::Write;

use serde::Serialize;

use super::human_bytes;
use crate::archive::inspect::BundleInfo;
use crate::archive::BundleWritten;

/// The `bundle` member of `apply --json` when the target is a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleDoc {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

pub fn written_doc(written: &BundleWritten) -> BundleDoc {
    BundleDoc {
        path: written.path.display().to_string(),
        sha256: written.sha256.to_string(),
        size: written.size,
        blobs: written.blobs,
        blob_bytes: written.blob_bytes,
    }
}

/// `Bundle written: FILE (12.3 MB, 42 blobs), sha256:…`.
pub fn written(written: &BundleWritten) -> String {
    format!(
        "Bundle written: {} ({}, {} blobs), {}\n",
        written.path.display(),
        human_bytes(written.size),
        written.blobs,
        written.sha256
    )
}

/// `bundle inspect` as text.
pub fn inspect(info: &BundleInfo) -> String {
    let mut out = String::new();
    let noun = if info.images.len() == 1 {
        "image"
    } else {
        "images"
    };
    let _ = writeln!(
        out,
        "Bundle {}: {} {noun}, {} blobs ({})",
        info.path,
        info.images.len(),
        info.blobs,
        human_bytes(info.blob_bytes)
    );
    if !info.files.is_empty() {
        let _ = writeln!(out, "  also holds: {}", info.files.join(", "));
    }
    for image in &info.images {
        let _ = writeln!(
            out,
            "\n  {}  {} ({}, {})",
            image.name,
            image.digest,
            image.media_type,
            human_bytes(image.size)
        );
        for p in &image.platforms {
            let _ = writeln!(
                out,
                "      {:<16} {}  {}",
                p.platform,
                p.digest,
                human_bytes(p.size)
            );
        }
        for missing in &image.missing {
            let _ = writeln!(out, "      missing from the bundle: {missing}");
        }
    }
    if info.damaged.is_empty() {
        let _ = writeln!(out, "\nAll {} blobs match their digests.", info.blobs);
    } else {
        let _ = writeln!(
            out,
            "\nDAMAGED: {} blob(s) do not match their digests:",
            info.damaged.len()
        );
        for entry in &info.damaged {
            let _ = writeln!(out, "  {entry}");
        }
    }
    let incomplete: Vec<&str> = info
        .images
        .iter()
        .filter(|i| i.incomplete)
        .map(|i| i.name.as_str())
        .collect();
    if !incomplete.is_empty() {
        let _ = writeln!(
            out,
            "INCOMPLETE: the bundle lacks blobs that {} {} (a file cut short at an entry \
             boundary?): {}",
            incomplete.len(),
            if incomplete.len() == 1 {
                "image needs"
            } else {
                "images need"
            },
            incomplete.join(", ")
        );
    }
    out
}
