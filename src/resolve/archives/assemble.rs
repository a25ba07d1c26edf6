//! One archive image's manifest and blob list: the archive's own manifest kept when its layers
//! are already compressed, otherwise a manifest written by [`canonical::image_manifest`] over
//! the config and the (compressed) layers; in both cases every layer is checked against the
//! config's `rootfs.diff_ids` first, so a layer that is not what the config says is never pushed.

use std::collections::BTreeMap;

use super::{compression_of, keeps_manifest, Pending};
use crate::archive::{ArchiveError, Compression};
use crate::oci::canonical;
use crate::oci::media_type::OCI_CONFIG;
use crate::oci::{Descriptor, Digest, ManifestView, MediaType, RawManifest};
use crate::resolve::ResolveErrorKind;
use crate::store::Store;

/// Compressed blob (digest, size) per (uncompressed layer, compression).
pub(super) type Compressed = BTreeMap<(Digest, Compression), Result<(Digest, u64), String>>;
/// diff_id per compressed layer blob.
pub(super) type DiffIds = BTreeMap<Digest, Result<Digest, String>>;

/// The manifest to push for one image and the blobs it needs, layers checked against the
/// config's diff_ids.
pub(super) fn assemble(
    p: &Pending<'_>,
    compressed: &Compressed,
    diff_ids: &DiffIds,
    store: &Store,
) -> Result<(RawManifest, Vec<Descriptor>), Box<ResolveErrorKind>> {
    let image_err = |detail: String| {
        Box::new(ResolveErrorKind::Archive(ArchiveError::Image {
            archive: p.file.clone(),
            image: p.references[0].to_string(),
            detail,
        }))
    };
    let wanted = &p.image.config_info.diff_ids;
    if wanted.len() != p.image.layers.len() {
        return Err(image_err(format!(
            "its config {} lists {} layer diff_ids, but the archive gives {} layers",
            p.image.config.digest,
            wanted.len(),
            p.image.layers.len()
        )));
    }
    let keep = keeps_manifest(p);
    let target_kind = compression_of(p.entry.compression);
    let mut layer_descs = Vec::new();
    for (i, ((layer, kind), want)) in p
        .image
        .layers
        .iter()
        .zip(&p.layer_kinds)
        .zip(wanted)
        .enumerate()
    {
        let actual = if *kind == Compression::None {
            layer.blob.digest.clone()
        } else {
            match diff_ids.get(&layer.blob.digest) {
                Some(Ok(d)) => d.clone(),
                Some(Err(e)) => return Err(image_err(format!("layer {}: {e}", i + 1))),
                None => return Err(image_err(format!("layer {}: not examined", i + 1))),
            }
        };
        if &actual != want {
            return Err(image_err(if *kind == Compression::None {
                format!(
                    "layer {} is uncompressed and hashes to {actual}, but the config lists \
                     diff_id {want} in its place",
                    i + 1
                )
            } else {
                format!(
                    "layer {} ({}) uncompresses to diff_id {actual}, but the config lists {want} \
                     in its place",
                    i + 1,
                    layer.blob.digest
                )
            }));
        }
        if keep {
            continue;
        }
        let (digest, size, media_type) = if *kind == Compression::None {
            match compressed.get(&(layer.blob.digest.clone(), target_kind)) {
                Some(Ok((d, s))) => (d.clone(), *s, target_kind.layer_media_type()),
                Some(Err(e)) => return Err(image_err(format!("compressing layer {}: {e}", i + 1))),
                None if target_kind == Compression::None => (
                    layer.blob.digest.clone(),
                    layer.blob.size,
                    Compression::None.layer_media_type(),
                ),
                None => return Err(image_err(format!("layer {}: not compressed", i + 1))),
            }
        } else {
            (
                layer.blob.digest.clone(),
                layer.blob.size,
                kind.layer_media_type(),
            )
        };
        layer_descs.push(descriptor(MediaType::parse(media_type), digest, size));
    }
    if keep {
        if let Some(manifest) = &p.image.manifest {
            let blobs = match manifest.view() {
                Ok(ManifestView::Image(view)) => std::iter::once(view.config)
                    .chain(
                        view.layers
                            .into_iter()
                            .filter(|l| !l.is_non_distributable()),
                    )
                    .collect(),
                _ => return Err(image_err("its manifest is not an image manifest".into())),
            };
            store
                .put_manifest(manifest)
                .map_err(|e| Box::new(ResolveErrorKind::Store(e)))?;
            return Ok((manifest.clone(), blobs));
        }
    }
    let config = descriptor(
        MediaType::parse(OCI_CONFIG),
        p.image.config.digest.clone(),
        p.image.config.size,
    );
    let manifest =
        canonical::image_manifest(&config, &layer_descs).map_err(|e| image_err(e.to_string()))?;
    store
        .put_manifest(&manifest)
        .map_err(|e| Box::new(ResolveErrorKind::Store(e)))?;
    let blobs = std::iter::once(config).chain(layer_descs).collect();
    Ok((manifest, blobs))
}

fn descriptor(media_type: MediaType, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type,
        digest,
        size,
        platform: None,
        annotations: BTreeMap::new(),
        urls: Vec::new(),
        artifact_type: None,
    }
}
