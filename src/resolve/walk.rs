//! Walking an index to its leaves: nested indexes first (kept when any of their leaves is),
//! then the platform selection, then a rewritten index when only some entries are kept.

use super::fetch::Ctx;
use super::*;

/// What walking one index produced.
pub(super) struct Walked {
    /// The index to push in its parent's place (original or rewritten).
    pub(super) manifest: RawManifest,
    /// Everything below it to push first, children before parents.
    pub(super) below: Vec<ManifestNeed>,
    pub(super) platforms: Vec<Platform>,
    pub(super) children: Vec<(Platform, Digest)>,
    pub(super) unmatched: BTreeSet<Platform>,
    pub(super) warnings: Vec<String>,
}

/// The config and distributable layers of an image manifest.
pub(super) fn image_need(
    ctx: &Ctx<'_>,
    manifest: &RawManifest,
) -> Result<ManifestNeed, ResolveError> {
    let blobs = match manifest.view().map_err(|e| ctx.endpoint(e.into()))? {
        ManifestView::Image(view) => std::iter::once(view.config)
            .chain(
                view.layers
                    .into_iter()
                    .filter(|l| !l.is_non_distributable()),
            )
            .collect(),
        ManifestView::Index(_) => Vec::new(),
    };
    Ok(ManifestNeed {
        manifest: manifest.clone(),
        blobs,
    })
}

pub(super) fn walk_index<'a>(
    ctx: &'a Ctx<'a>,
    index: RawManifest,
    depth: usize,
) -> futures_util::future::BoxFuture<'a, Result<Walked, ResolveError>> {
    Box::pin(async move {
        if depth > MAX_INDEX_DEPTH {
            return Err(ResolveError::new(ctx.image, ResolveErrorKind::TooDeep));
        }
        let entries = match index.view().map_err(|e| ctx.endpoint(e.into()))? {
            ManifestView::Index(view) => view.manifests,
            ManifestView::Image(_) => Vec::new(),
        };
        let reference = ctx.image.display();
        let mut warnings = Vec::new();
        let mut below: Vec<ManifestNeed> = Vec::new();
        let mut platforms = Vec::new();
        let mut children = Vec::new();
        let mut unmatched_everywhere: Option<BTreeSet<Platform>> = None;

        // Nested indexes first: they are kept when any of their leaves is.
        let mut nested: BTreeMap<usize, Walked> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.media_type.is_index() {
                let child = ctx.manifest(&entry.digest).await?;
                nested.insert(i, walk_index(ctx, child, depth + 1).await?);
            }
        }
        let nested_kept = |i: usize| nested.get(&i).map(|w| !w.platforms.is_empty());
        let selection = select(&entries, &ctx.image.platforms, &nested_kept);

        let mut replaced = BTreeMap::new();
        for &i in &selection.keep {
            let entry = &entries[i];
            if let Some(walked) = nested.remove(&i) {
                if walked.manifest.digest() != &entry.digest {
                    replaced.insert(
                        i,
                        (walked.manifest.digest().clone(), walked.manifest.size()),
                    );
                }
                let unmatched = walked.unmatched.clone();
                unmatched_everywhere = Some(match unmatched_everywhere {
                    None => unmatched,
                    Some(u) => u.intersection(&unmatched).cloned().collect(),
                });
                platforms.extend(walked.platforms);
                children.extend(walked.children);
                warnings.extend(walked.warnings);
                push_unique(&mut below, walked.below);
                push_unique(
                    &mut below,
                    vec![ManifestNeed {
                        manifest: walked.manifest,
                        blobs: Vec::new(),
                    }],
                );
                continue;
            }
            let child = ctx.manifest(&entry.digest).await?;
            let need = image_need(ctx, &child)?;
            if entry.attests().is_none() {
                if let Ok(ManifestView::Image(view)) = child.view() {
                    let stated = ctx.config_platform(child.digest(), &view.config).await?;
                    match &entry.platform {
                        Some(listed) if !listed.agrees_with(&stated) => warnings.push(format!(
                            "{reference}: index entry {} says {listed} but its config says {stated}; copied byte-exact as upstream has it",
                            entry.digest.short()
                        )),
                        _ => {}
                    }
                }
                platforms.push(entry.platform.clone().unwrap_or_default());
                children.push((
                    entry.platform.clone().unwrap_or_default(),
                    entry.digest.clone(),
                ));
            }
            push_unique(&mut below, vec![need]);
        }

        let mut unmatched: BTreeSet<Platform> = selection.unmatched.into_iter().collect();
        if let Some(u) = unmatched_everywhere {
            unmatched = unmatched.intersection(&u).cloned().collect();
        }
        let everything = selection.keep.len() == entries.len() && replaced.is_empty();
        let manifest = if everything || ctx.image.index_mode == IndexMode::Sparse {
            index
        } else {
            let rewritten = subset_index_with(&index, &selection.keep, &replaced)
                .map_err(|e| ctx.endpoint(e.into()))?;
            ctx.store
                .put_manifest(&rewritten)
                .map_err(|e| ctx.store_err(e))?;
            rewritten
        };
        Ok(Walked {
            manifest,
            below,
            platforms,
            children,
            unmatched,
            warnings,
        })
    })
}

fn push_unique(into: &mut Vec<ManifestNeed>, more: Vec<ManifestNeed>) {
    for need in more {
        if !into
            .iter()
            .any(|n| n.manifest.digest() == need.manifest.digest())
        {
            into.push(need);
        }
    }
}
