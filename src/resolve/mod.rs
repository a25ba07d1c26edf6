//! Stage 2: each image source becomes a [`ResolvedImage`]: the tag pinned to a digest, the
//! platform selection applied, every manifest to push known (as exact bytes, cached and
//! verified) and every blob listed.
//!
//! Resolution reads only manifests and image configs (small), through the cache: a digest that is
//! already cached is never fetched again. With a lock entry ([`Policy`]), the tag is not resolved
//! either, so a rerun with a complete lock and cache costs no source request at all.

pub mod archives;
mod error;
mod fetch;
mod image;
mod pinned;
mod policy;
mod repository;
mod select;
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::{stream, StreamExt};

use crate::endpoint::{EndpointError, Source};
use crate::model::{ImageSource, IndexMode, PlatformSelection};
use crate::oci::canonical::subset_index_with;
use crate::oci::{Descriptor, Digest, ManifestView, Platform, RawManifest, MAX_CONFIG_BYTES};
use crate::store::{Store, StoreError};

pub use error::{ResolveError, ResolveErrorKind};
use fetch::Ctx;
pub use image::{ArchivePlatform, Drift, ManifestNeed, Provenance, ResolvedImage};
pub use pinned::{lockfile, written_path, LocalFile};
pub use policy::{Policy, Refresh, Selector};
pub use repository::{expand, images_of, merged, ExpandedRepository};
pub use select::{select, Selection};
use walk::{image_need, walk_index};

/// How deep indexes may nest (index → index → … → manifest) before we refuse.
pub const MAX_INDEX_DEPTH: usize = 4;
/// Images resolved at once.
const RESOLVE_CONCURRENCY: usize = 8;

/// Where to read each registry's images from, keyed by registry name (`docker.io`, `host:port`).
#[derive(Default, Clone)]
pub struct Sources {
    by_registry: BTreeMap<String, Arc<dyn Source>>,
}

impl Sources {
    pub fn insert(&mut self, registry: &str, source: Arc<dyn Source>) {
        self.by_registry.insert(registry.to_string(), source);
    }

    pub fn get(&self, registry: &str) -> Option<&Arc<dyn Source>> {
        self.by_registry.get(registry)
    }

    /// The same sources with every read-only question retried under `policy` (for the resolve
    /// and plan phases; the executor retries whole tasks instead).
    pub fn retrying(&self, policy: crate::endpoint::retry::RetryPolicy) -> Sources {
        let by_registry = self
            .by_registry
            .iter()
            .map(|(registry, source)| {
                let wrapped: Arc<dyn Source> = Arc::new(
                    crate::endpoint::retrying::RetryingSource::new(source.clone(), policy),
                );
                (registry.clone(), wrapped)
            })
            .collect();
        Sources { by_registry }
    }

    /// Requests made by all sources so far.
    pub fn requests(&self) -> u64 {
        self.by_registry.values().map(|s| s.requests()).sum()
    }
}

/// Resolves every image, concurrently, keeping Mirrorfile order. All errors are returned, not
/// just the first, so one run shows every broken entry.
pub async fn resolve_all(
    images: &[ImageSource],
    sources: &Sources,
    store: &Store,
) -> Vec<Result<ResolvedImage, ResolveError>> {
    resolve_all_with(images, sources, store, &Policy::default()).await
}

/// [`resolve_all`] with a lock-aware policy.
pub async fn resolve_all_with(
    images: &[ImageSource],
    sources: &Sources,
    store: &Store,
    policy: &Policy,
) -> Vec<Result<ResolvedImage, ResolveError>> {
    stream::iter(images.iter())
        .map(|image| resolve_image(image, sources, store, policy))
        .buffered(RESOLVE_CONCURRENCY)
        .collect()
        .await
}

async fn resolve_image(
    image: &ImageSource,
    sources: &Sources,
    store: &Store,
    policy: &Policy,
) -> Result<ResolvedImage, ResolveError> {
    let reference = &image.reference;
    let shown = image.display();
    let Some(source) = sources.get(&image.source_key()) else {
        return Err(ResolveError::new(
            image,
            ResolveErrorKind::NoSource(image.source_key()),
        ));
    };
    let ctx = Ctx {
        image,
        source: source.as_ref(),
        store,
        repo: reference.repository(),
        prefetched: Default::default(),
    };
    let pinned = policy::pin(image, source.as_ref(), policy).await?;
    let drift_warning = pinned.warning;
    let drift = pinned.drift;
    let upstream_digest = match pinned.digest {
        Some(digest) => {
            tracing::info!("{shown}: {digest} (pinned by the lock)");
            digest
        }
        None => match source.resolve(reference).await {
            Ok(digest) => {
                tracing::info!("{shown}: resolved to {digest}");
                digest
            }
            Err(e) if e.is_not_found() => {
                let kind = ResolveErrorKind::NotFound {
                    registry: reference.registry().to_string(),
                    repository: reference.repository().to_string(),
                    reference: reference.manifest_reference(),
                };
                return Err(ResolveError::new(image, kind));
            }
            Err(e) => return Err(ctx.endpoint(e)),
        },
    };
    let root = ctx.manifest(&upstream_digest).await?;
    let upstream_media_type = pinned
        .media_type
        .unwrap_or_else(|| root.media_type().to_string());

    if !root.is_index() {
        let need = image_need(&ctx, &root)?;
        let platform = match root.view() {
            Ok(ManifestView::Image(view)) => {
                ctx.config_platform(root.digest(), &view.config).await?
            }
            _ => Platform::default(),
        };
        let mut warnings: Vec<String> = drift_warning.into_iter().collect();
        if let PlatformSelection::Only(selectors) = &image.platforms {
            if !selectors.iter().any(|s| s.matches(&platform)) {
                warnings.push(format!(
                    "{shown} is a single-platform image ({platform}), which is not among the selected platforms; it is copied as it is"
                ));
            }
        }
        return Ok(ResolvedImage {
            source: image.clone(),
            upstream_digest,
            upstream_media_type,
            pinned: pinned.from_lock,
            drift,
            children: vec![(platform.clone(), root.digest().clone())],
            root: root.clone(),
            manifests: vec![need],
            platforms: vec![platform],
            missing_platforms: Vec::new(),
            warnings,
            prefetched: ctx.take_prefetched(),
            provenance: Provenance::Registry,
        });
    }

    let walked = walk_index(&ctx, root, 1).await?;
    if walked.platforms.is_empty() {
        if let PlatformSelection::Only(selectors) = &image.platforms {
            let kind = ResolveErrorKind::NothingSelected {
                selected: join(selectors),
                available: available_platforms(&ctx, &upstream_digest).await,
            };
            return Err(ResolveError::new(image, kind));
        }
    }
    if walked.manifest.digest() != &upstream_digest && reference.digest().is_some() {
        return Err(ResolveError::new(
            image,
            ResolveErrorKind::PinnedSubset(upstream_digest),
        ));
    }
    let mut warnings: Vec<String> = drift_warning.into_iter().collect();
    warnings.extend(walked.warnings);
    let missing_platforms: Vec<Platform> = walked.unmatched.into_iter().collect();
    for platform in &missing_platforms {
        warnings.push(format!("{shown} has no {platform} image"));
    }
    if image.index_mode == IndexMode::Sparse
        && walked.manifest.digest() == &upstream_digest
        && !matches!(image.platforms, PlatformSelection::All)
    {
        warnings.push(format!(
            "{shown}: index = \"sparse\" pushes the original index with only the selected children; registries that check index children (distribution/registry 2.x, Docker Hub, Harbor) will reject it"
        ));
    }
    Ok(ResolvedImage {
        source: image.clone(),
        upstream_digest,
        upstream_media_type,
        pinned: pinned.from_lock,
        drift,
        children: walked.children,
        root: walked.manifest,
        manifests: walked.below,
        platforms: walked.platforms,
        missing_platforms,
        warnings,
        prefetched: ctx.take_prefetched(),
        provenance: Provenance::Registry,
    })
}

fn join(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn available_platforms(ctx: &Ctx<'_>, digest: &Digest) -> String {
    let Ok(Some(index)) = ctx.store.manifest(digest) else {
        return "no platforms".into();
    };
    match index.view() {
        Ok(ManifestView::Index(view)) => {
            let list: Vec<String> = view
                .manifests
                .iter()
                .filter(|d| d.attests().is_none())
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect();
            if list.is_empty() {
                "no platforms".into()
            } else {
                list.join(", ")
            }
        }
        _ => "no platforms".into(),
    }
}
