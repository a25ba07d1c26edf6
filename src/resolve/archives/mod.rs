//! Archive resolution: `[[archives]]` → [`ResolvedImage`]s, with everything imported into the
//! verified cache first, so planning needs no fetch for archive images.
//!
//! Steps: read each archive once (spooling its files into the cache, see [`crate::archive`]);
//! name each image as docker would (`rancher/pause:3.1` → `docker.io/rancher/pause:3.1`) and
//! apply the entry's `images` filter; check each image's config platform against the entry's
//! `platform` and the file name; make its layers ready (compress, in parallel, memoised) and
//! check them against the config's diff_ids; write its manifest (or keep the archive's); then
//! group by target tag (`group`). Any error leaves the image out of the plan: nothing of a bad
//! image is ever pushed.

mod assemble;
mod group;
mod layers;
mod platform_check;

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::{LocalFile, ResolveError, ResolveErrorKind, ResolvedImage};
use crate::archive::{self, ArchiveError, Compression, FoundImage, Spool};
use crate::model::{ArchiveSource, LayerCompression, Model, Target};
use crate::oci::{Digest, Reference};
use crate::store::Store;

pub use platform_check::arch_in_file_name;

/// What reading the archives cost, for the summary (a rerun over unchanged archives shows
/// `layers_compressed: 0`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveStats {
    pub archives: u64,
    pub layers_compressed: u64,
    pub layers_decompressed: u64,
    pub memo_hits: u64,
}

/// The cache as the archive reader's spool.
struct StoreSpool<'a>(&'a Store);

impl Spool for StoreSpool<'_> {
    fn put(&self, reader: &mut dyn Read) -> std::io::Result<(Digest, u64)> {
        self.0
            .write_blob_from(reader)
            .map_err(std::io::Error::other)
    }

    fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::fs::File::open(self.0.blob_path(digest))?))
    }
}

/// An image read from one archive file, named and checked, before its layers are ready.
pub(super) struct Pending<'a> {
    entry: &'a ArchiveSource,
    file: std::path::PathBuf,
    image: FoundImage,
    references: Vec<Reference>,
    warnings: Vec<String>,
    /// Per layer: how the archive holds it.
    layer_kinds: Vec<Compression>,
}

/// What [`resolve_archives`] gives.
#[derive(Debug, Default)]
pub struct ArchivesResolved {
    pub images: Vec<ResolvedImage>,
    pub stats: ArchiveStats,
    /// Each image (or file) that could not be used; nothing of it is pushed.
    pub errors: Vec<ResolveError>,
    /// Every file read, with its sha256 (for the lock).
    pub files: Vec<LocalFile>,
    /// Content the archives hold that no image takes, one note per manifest naming the archive,
    /// its digest and why (an unnamed or digest-only entry, an attestation). About the files,
    /// not about an image that is planned: shown once, beside the plan.
    pub warnings: Vec<String>,
}

/// Resolves every `[[archives]]` entry of `model`, and says which files it read (with their
/// sha256, for the lock). Blocking (file I/O and compression): call it from `spawn_blocking`.
pub fn resolve_archives(model: &Model, store: &Store) -> ArchivesResolved {
    let spool = StoreSpool(store);
    let mut read_files = Vec::new();
    let mut errors = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut stats = ArchiveStats::default();
    let mut pending: Vec<Pending<'_>> = Vec::new();
    // Every file is read (hashed, spooled into the cache) at once, in parallel: reading one is
    // sequential by nature (a tar stream) and bound by sha256 on one core, and a run usually
    // names one archive per architecture. The results are then taken in Mirrorfile order.
    let mut reads = model
        .archives
        .iter()
        .flat_map(|entry| &entry.files)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|file| archive::read(file, &spool))
        .collect::<Vec<_>>()
        .into_iter();
    for entry in &model.archives {
        let fail = |image: String, kind: ResolveErrorKind| ResolveError {
            image,
            origin: entry.origin.clone(),
            kind: Box::new(kind),
        };
        let mut matched: BTreeSet<String> = BTreeSet::new();
        for (file, read) in entry.files.iter().zip(&mut reads) {
            stats.archives += 1;
            let found = match read {
                Ok(found) => found,
                Err(e) => {
                    errors.push(fail(
                        file.display().to_string(),
                        ResolveErrorKind::Archive(e),
                    ));
                    continue;
                }
            };
            read_files.push(LocalFile::archive(
                &model.path,
                entry,
                file,
                &found.contents.file,
            ));
            skipped.extend(found.skipped.iter().cloned());
            for image in found.images {
                let label = image
                    .names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| image.config.digest.to_string());
                let mut warnings = found.warnings.clone();
                let references =
                    match names(&image.names) {
                        Ok((refs, digest_only)) if refs.is_empty() => {
                            // Pushed by tag or not at all: say so, since no planned image will.
                            skipped.push(nameless(file, &image, &digest_only));
                            continue;
                        }
                        Ok((refs, digest_only)) => {
                            warnings.extend(digest_only.into_iter().map(|n| {
                                format!("{}: `{n}` names no tag; skipped", file.display())
                            }));
                            refs
                        }
                        Err(e) => {
                            errors.push(fail(
                                label,
                                ResolveErrorKind::Archive(ArchiveError::Image {
                                    archive: file.clone(),
                                    image: e.0,
                                    detail: e.1,
                                }),
                            ));
                            continue;
                        }
                    };
                let references: Vec<Reference> = match &entry.images {
                    None => references,
                    Some(wanted) => references
                        .into_iter()
                        .filter(|r| wanted.iter().any(|w| w.to_string() == r.to_string()))
                        .collect(),
                };
                matched.extend(references.iter().map(|r| r.to_string()));
                if references.is_empty() {
                    continue;
                }
                let stated = &image.config_info.platform;
                if let Some(claim) =
                    platform_check::contradiction(file, entry.platform.as_ref(), stated)
                {
                    let kind = ResolveErrorKind::PlatformMismatch {
                        archive: file.clone(),
                        stated: stated.clone(),
                        claim,
                    };
                    if entry.allow_platform_mismatch {
                        warnings.push(format!("{}: {kind}", references[0]));
                    } else {
                        errors.push(fail(references[0].to_string(), kind));
                        continue;
                    }
                }
                let layer_kinds = match image
                    .layers
                    .iter()
                    .map(|l| layers::sniff_blob(store, &l.blob.digest))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(kinds) => kinds,
                    Err(e) => {
                        errors.push(fail(label, ResolveErrorKind::Store(e)));
                        continue;
                    }
                };
                pending.push(Pending {
                    entry,
                    file: file.clone(),
                    image,
                    references,
                    warnings,
                    layer_kinds,
                });
            }
        }
        if let Some(wanted) = &entry.images {
            for w in wanted {
                if !matched.contains(&w.to_string()) {
                    errors.push(fail(
                        w.to_string(),
                        ResolveErrorKind::NotInArchives {
                            pattern: entry.pattern.clone(),
                        },
                    ));
                }
            }
        }
    }

    // Layer work, in parallel: compress uncompressed layers of rebuilt manifests, and learn the
    // diff_id of every compressed layer. Each distinct job runs once.
    let counters = layers::Counters::default();
    let mut compress_jobs: BTreeSet<(Digest, Compression)> = BTreeSet::new();
    let mut diff_jobs: BTreeSet<Digest> = BTreeSet::new();
    for p in &pending {
        let keep = keeps_manifest(p);
        for (layer, kind) in p.image.layers.iter().zip(&p.layer_kinds) {
            if *kind != Compression::None {
                diff_jobs.insert(layer.blob.digest.clone());
            } else if !keep {
                compress_jobs.insert((
                    layer.blob.digest.clone(),
                    compression_of(p.entry.compression),
                ));
            }
        }
    }
    let compressed: assemble::Compressed = compress_jobs
        .into_par_iter()
        .map(|(diff, kind)| {
            let made = layers::compressed(store, &diff, kind, &counters).map_err(|e| e.to_string());
            ((diff, kind), made)
        })
        .collect();
    let diff_ids: assemble::DiffIds = diff_jobs
        .into_par_iter()
        .map(|blob| {
            let id = layers::diff_id_of(store, &blob, &counters).map_err(|e| e.to_string());
            (blob, id)
        })
        .collect();
    stats.layers_compressed = counters.compressed.load(Ordering::Relaxed);
    stats.layers_decompressed = counters.decompressed.load(Ordering::Relaxed);
    stats.memo_hits = counters.memo_hits.load(Ordering::Relaxed);

    // Layout and bundle targets have no host; names are still checked as references.
    let host = match &model.target {
        Target::Registry { host, .. } => host.as_str(),
        _ => "localhost",
    };
    let prefix = model.target.prefix();
    let mut members = Vec::new();
    for p in pending {
        let from_archive = keeps_manifest(&p);
        match assemble::assemble(&p, &compressed, &diff_ids, store) {
            Ok((manifest, blobs)) => {
                for reference in &p.references {
                    let Some(tag) = reference.tag() else { continue };
                    let repository = match prefix {
                        Some(prefix) => format!("{prefix}/{}", reference.repository()),
                        None => reference.repository().to_string(),
                    };
                    if let Err(e) = Reference::new(host, &repository, Some(tag), None) {
                        errors.push(ResolveError {
                            image: reference.to_string(),
                            origin: p.entry.origin.clone(),
                            kind: Box::new(ResolveErrorKind::Archive(ArchiveError::Image {
                                archive: p.file.clone(),
                                image: reference.to_string(),
                                detail: format!("invalid target name: {e}"),
                            })),
                        });
                        continue;
                    }
                    members.push(group::Member {
                        reference: reference.clone(),
                        target_repository: repository,
                        tag: tag.to_string(),
                        platform: p.image.config_info.platform.clone(),
                        manifest: manifest.clone(),
                        blobs: blobs.clone(),
                        config: p.image.config.digest.clone(),
                        archive: p.file.clone(),
                        origin: p.entry.origin.clone(),
                        index: p.entry.index,
                        upstream_index: p.image.upstream_index.clone(),
                        from_archive,
                        warnings: p.warnings.clone(),
                    });
                }
            }
            Err(kind) => errors.push(ResolveError {
                image: p.references[0].to_string(),
                origin: p.entry.origin.clone(),
                kind,
            }),
        }
    }
    let (images, group_errors) = group::build(members, store);
    errors.extend(group_errors);
    ArchivesResolved {
        images,
        stats,
        errors,
        files: read_files,
        warnings: skipped,
    }
}

/// The note for an image the archive holds under no name with a tag: what it is (manifest
/// digest, and the index.json entry's index when it came through one; the config for a
/// `docker save` image) and what names it had, if any.
fn nameless(file: &std::path::Path, image: &FoundImage, digest_only: &[String]) -> String {
    let what = match (&image.manifest, &image.upstream_index) {
        (Some(m), Some(index)) => format!("image manifest {} (of index {index})", m.digest()),
        (Some(m), None) => format!("image manifest {}", m.digest()),
        (None, _) => format!("image with config {}", image.config.digest),
    };
    let why = match (digest_only.is_empty(), &image.manifest) {
        (true, Some(_)) => "its index.json entry has no image name (no io.containerd.image.name, \
                            no org.opencontainers.image.ref.name with a repository)"
            .to_string(),
        (true, None) => "manifest.json gives it no RepoTags".to_string(),
        (false, _) => {
            format!("it is named only by digest ({})", digest_only.join(", "))
        }
    };
    format!(
        "{}: {what}, {}, skipped: {why}, and images from archives are pushed by tag",
        file.display(),
        image.config_info.platform,
    )
}

pub(super) fn compression_of(c: LayerCompression) -> Compression {
    match c {
        LayerCompression::Gzip => Compression::Gzip,
        LayerCompression::Zstd => Compression::Zstd,
        LayerCompression::None => Compression::None,
    }
}

/// Whether the archive's own manifest is pushed as it is: it exists, and every layer it names
/// is already compressed (Docker 25+ saves uncompressed layers; those are rebuilt so the same
/// image gives the same digest whichever layout it came in).
pub(super) fn keeps_manifest(p: &Pending<'_>) -> bool {
    p.image.manifest.is_some()
        && !p.image.layers.is_empty()
        && p.image.layers.iter().all(|l| l.descriptor.is_some())
        && p.layer_kinds.iter().all(|k| *k != Compression::None)
}

/// Every name as a normalised reference with a tag; names with neither tag nor digest get
/// `latest` (as docker does); digest-only names are returned as skipped.
fn names(raw: &[String]) -> Result<(Vec<Reference>, Vec<String>), (String, String)> {
    let mut out: Vec<Reference> = Vec::new();
    let mut skipped = Vec::new();
    for name in raw {
        let parsed: Reference = name
            .parse()
            .map_err(|e| (name.clone(), format!("`{name}` is not an image name: {e}")))?;
        let parsed = match (parsed.tag(), parsed.digest()) {
            (Some(_), _) => parsed,
            (None, Some(_)) => {
                skipped.push(name.clone());
                continue;
            }
            (None, None) => {
                Reference::new(parsed.registry(), parsed.repository(), Some("latest"), None)
                    .map_err(|e| (name.clone(), e.to_string()))?
            }
        };
        if !out.iter().any(|r| r.to_string() == parsed.to_string()) {
            out.push(parsed);
        }
    }
    Ok((out, skipped))
}
