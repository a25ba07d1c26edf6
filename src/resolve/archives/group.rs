//! Images from every archive, grouped by target `repo:tag`: one index per tag listing every
//! platform found (sorted, written by [`canonical::index_of`]), or the plain manifest when the
//! user set `index = false` and there is one platform.
//!
//! Two archives giving one platform of one tag must agree: the same config (and so the same
//! layers, by diff_id) pushed as the same manifest is the same image and is listed once; a
//! different config, or the same one pushed as another manifest (entries with different
//! `compression`), is an error naming both, never a coin toss.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::super::{
    ArchivePlatform, ManifestNeed, Provenance, ResolveError, ResolveErrorKind, ResolvedImage,
};
use crate::model::{ImageSource, IndexMode, Origin, PlatformSelection, SourceLocation};
use crate::oci::canonical;
use crate::oci::{Descriptor, Digest, Platform, RawManifest, Reference};
use crate::store::Store;

/// One platform of one tag, as an archive gives it.
#[derive(Debug, Clone)]
pub struct Member {
    pub reference: Reference,
    pub target_repository: String,
    pub tag: String,
    pub platform: Platform,
    pub manifest: RawManifest,
    pub blobs: Vec<Descriptor>,
    pub config: Digest,
    pub archive: PathBuf,
    pub origin: Origin,
    pub index: bool,
    pub upstream_index: Option<Digest>,
    /// The manifest is the archive's own, bytes as found.
    pub from_archive: bool,
    pub warnings: Vec<String>,
}

type PlatformKey = ((String, String, Option<String>), Option<String>);

fn key_of(p: &Platform) -> PlatformKey {
    (p.normalized(), p.os_version.clone())
}

/// Groups members by target and builds one resolved image per group, in target order.
pub fn build(members: Vec<Member>, store: &Store) -> (Vec<ResolvedImage>, Vec<ResolveError>) {
    let mut groups: BTreeMap<(String, String), BTreeMap<PlatformKey, Member>> = BTreeMap::new();
    let mut errors = Vec::new();
    for member in members {
        let group = groups
            .entry((member.target_repository.clone(), member.tag.clone()))
            .or_default();
        match group.get(&key_of(&member.platform)) {
            Some(first) if first.config != member.config => {
                errors.push(error(
                    &member,
                    ResolveErrorKind::PlatformConflict {
                        platform: member.platform.clone(),
                        first: first.archive.clone(),
                        first_config: first.config.clone(),
                        second: member.archive.clone(),
                        second_config: member.config.clone(),
                    },
                ));
            }
            // The same image, but pushed as another manifest (another entry's `compression`):
            // which one lands must not depend on the order of the entries.
            Some(first) if first.manifest.digest() != member.manifest.digest() => {
                errors.push(error(
                    &member,
                    ResolveErrorKind::ManifestConflict {
                        platform: member.platform.clone(),
                        config: member.config.clone(),
                        first: first.origin.clone(),
                        first_manifest: first.manifest.digest().clone(),
                        second: member.origin.clone(),
                        second_manifest: member.manifest.digest().clone(),
                    },
                ));
            }
            Some(_) => {} // the same image again: listed once
            None => {
                group.insert(key_of(&member.platform), member);
            }
        }
    }
    let mut out = Vec::new();
    for ((repository, tag), members) in groups {
        let members: Vec<Member> = members.into_values().collect();
        match resolved(repository, tag, &members, store) {
            Ok(image) => out.push(image),
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

fn error(member: &Member, kind: ResolveErrorKind) -> ResolveError {
    ResolveError {
        image: member.reference.to_string(),
        origin: member.origin.clone(),
        kind: Box::new(kind),
    }
}

fn resolved(
    repository: String,
    tag: String,
    members: &[Member],
    store: &Store,
) -> Result<ResolvedImage, ResolveError> {
    let Some(first) = members.first() else {
        return Err(ResolveError {
            image: format!("{repository}:{tag}"),
            origin: Origin {
                file: PathBuf::new(),
                line: 0,
            },
            kind: Box::new(ResolveErrorKind::NothingSelected {
                selected: "archives".into(),
                available: "no images".into(),
            }),
        });
    };
    let as_manifest = members.iter().all(|m| !m.index);
    let root = if as_manifest {
        if members.len() > 1 {
            return Err(error(
                first,
                ResolveErrorKind::IndexFalse {
                    platforms: members
                        .iter()
                        .map(|m| m.platform.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            ));
        }
        first.manifest.clone()
    } else {
        let entries: Vec<Descriptor> = members
            .iter()
            .map(|m| Descriptor {
                platform: Some(m.platform.clone()),
                ..m.manifest.descriptor()
            })
            .collect();
        let index = canonical::index_of(&entries)
            .map_err(|e| error(first, ResolveErrorKind::Endpoint(e.into())))?;
        store
            .put_manifest(&index)
            .map_err(|e| error(first, ResolveErrorKind::Store(e)))?;
        index
    };
    let mut ordered: Vec<&Member> = members.iter().collect();
    ordered.sort_by_key(|m| key_of(&m.platform));
    let manifests = ordered
        .iter()
        .map(|m| ManifestNeed {
            manifest: m.manifest.clone(),
            blobs: m.blobs.clone(),
        })
        .collect();
    let mut warnings: Vec<String> = Vec::new();
    for m in &ordered {
        for w in &m.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    Ok(ResolvedImage {
        source: ImageSource {
            reference: first.reference.clone(),
            platforms: PlatformSelection::All,
            index_mode: IndexMode::Rewrite,
            target_repository: repository,
            target_tag: Some(tag),
            origin: first.origin.clone(),
            location: SourceLocation::Archives,
        },
        upstream_digest: root.digest().clone(),
        upstream_media_type: root.media_type().to_string(),
        // Archives are local files: not pinned by mirrorfile.lock, and no upstream to drift.
        pinned: false,
        drift: None,
        children: ordered
            .iter()
            .map(|m| (m.platform.clone(), m.manifest.digest().clone()))
            .collect(),
        root,
        manifests,
        platforms: ordered.iter().map(|m| m.platform.clone()).collect(),
        missing_platforms: Vec::new(),
        warnings,
        prefetched: Vec::new(),
        provenance: Provenance::Archives(
            ordered
                .iter()
                .map(|m| ArchivePlatform {
                    platform: m.platform.clone(),
                    archive: m.archive.clone(),
                    manifest: m.manifest.digest().clone(),
                    upstream_index: m.upstream_index.clone(),
                    from_archive: m.from_archive,
                })
                .collect(),
        ),
    })
}
