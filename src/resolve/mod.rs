//! Stage 2: each image source becomes a [`ResolvedImage`]: the tag pinned to a digest, the
//! platform selection applied, every manifest to push known (as exact bytes, cached and
//! verified) and every blob listed.
//!
//! Resolution reads only manifests and image configs (small), through the cache: a digest that is
//! already cached is never fetched again. With a lock entry ([`Policy`]), the tag is not resolved
//! either, so a rerun with a complete lock and cache costs no source request at all.

pub mod archives;
mod error;
mod pinned;
mod policy;
mod repository;
mod select;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::{stream, StreamExt};

use crate::endpoint::{EndpointError, Source};
use crate::model::{ImageSource, IndexMode, PlatformSelection};
use crate::oci::canonical::subset_index_with;
use crate::oci::{Descriptor, Digest, ManifestView, Platform, RawManifest};
use crate::store::{Store, StoreError};

pub use error::{ResolveError, ResolveErrorKind};
pub use pinned::lockfile;
pub use policy::{Policy, Refresh, Selector};
pub use repository::{expand, images_of, ExpandedRepository};
pub use select::{select, Selection};

/// How deep indexes may nest (index → index → … → manifest) before we refuse.
pub const MAX_INDEX_DEPTH: usize = 4;
/// Image configs are read whole to learn their platform; refuse absurd ones.
const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;
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

/// One image, ready to plan.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub source: ImageSource,
    /// What the source reference points at upstream (as pinned by the lock, when it has it).
    pub upstream_digest: Digest,
    /// The media type of that manifest (as the lock records it, when pinned).
    pub upstream_media_type: String,
    /// Whether `upstream_digest` came from the lock.
    pub pinned: bool,
    /// Set when the lock pins `upstream_digest` but the tag upstream now points elsewhere.
    pub drift: Option<Drift>,
    /// The child manifest of every platform the target will have (the root itself for a
    /// single-platform image).
    pub children: Vec<(Platform, Digest)>,
    /// What the target tag will point at: the upstream bytes, or a rewritten subset index.
    pub root: RawManifest,
    /// Manifests to push before the root, children before parents, without duplicates.
    pub manifests: Vec<ManifestNeed>,
    /// Platforms the target will have.
    pub platforms: Vec<Platform>,
    /// Selected platforms the image does not have.
    pub missing_platforms: Vec<Platform>,
    pub warnings: Vec<String>,
    /// Blobs (image configs) that resolving downloaded into the cache: they count as fetched.
    pub prefetched: Vec<Descriptor>,
    /// Where the image comes from.
    pub provenance: Provenance,
}

/// Where a resolved image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// A registry (the source reference says which).
    Registry,
    /// Archives, one per platform (sorted by platform).
    Archives(Vec<ArchivePlatform>),
}

/// One platform of an image made from archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePlatform {
    pub platform: Platform,
    pub archive: std::path::PathBuf,
    /// The manifest pushed for this platform.
    pub manifest: Digest,
    /// The upstream multi-platform index the archive recorded it under (`ctr export`).
    pub upstream_index: Option<Digest>,
}

/// A pinned tag that upstream has moved since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// What the lock pins (and what is mirrored).
    pub locked: Digest,
    /// Where the tag points upstream now.
    pub upstream: Digest,
}

/// A manifest to push and the blobs it needs (empty for an index).
#[derive(Debug, Clone)]
pub struct ManifestNeed {
    pub manifest: RawManifest,
    pub blobs: Vec<Descriptor>,
}

impl ResolvedImage {
    /// Whether the root was rewritten (a subset index with a new digest).
    pub fn rewritten(&self) -> bool {
        self.root.digest() != &self.upstream_digest
    }

    /// Blobs of the root itself when it is a single image manifest.
    pub fn root_blobs(&self) -> &[Descriptor] {
        self.manifests
            .iter()
            .find(|m| m.manifest.digest() == self.root.digest())
            .map(|m| m.blobs.as_slice())
            .unwrap_or(&[])
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

struct Ctx<'a> {
    image: &'a ImageSource,
    source: &'a dyn Source,
    store: &'a Store,
    repo: &'a str,
    prefetched: std::sync::Mutex<Vec<Descriptor>>,
}

impl Ctx<'_> {
    fn endpoint(&self, source: EndpointError) -> ResolveError {
        ResolveError::new(self.image, ResolveErrorKind::Endpoint(source))
    }

    fn store_err(&self, source: StoreError) -> ResolveError {
        ResolveError::new(self.image, ResolveErrorKind::Store(source))
    }

    fn take_prefetched(&self) -> Vec<Descriptor> {
        self.prefetched
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// A manifest from the cache, or fetched (verified) and cached.
    async fn manifest(&self, digest: &Digest) -> Result<RawManifest, ResolveError> {
        if let Some(cached) = self.store.manifest(digest).map_err(|e| self.store_err(e))? {
            return Ok(cached);
        }
        let fetched = self
            .source
            .manifest(self.repo, digest)
            .await
            .map_err(|e| self.endpoint(e))?;
        self.store
            .put_manifest(&fetched)
            .map_err(|e| self.store_err(e))?;
        Ok(fetched)
    }

    /// The platform an image config states, fetching the config into the cache if needed.
    async fn config_platform(
        &self,
        manifest: &Digest,
        config: &Descriptor,
    ) -> Result<Platform, ResolveError> {
        let bytes = match self
            .store
            .read_small_blob(&config.digest)
            .map_err(|e| self.store_err(e))?
        {
            Some(bytes) => bytes,
            None => {
                let bytes = self
                    .source
                    .small_blob(self.repo, config, MAX_CONFIG_BYTES)
                    .await
                    .map_err(|e| self.endpoint(e))?;
                let verified = self
                    .store
                    .put_small_blob(&config.digest, &bytes)
                    .map_err(|e| self.store_err(e))?;
                if !verified {
                    return Err(self.bad_config(
                        manifest,
                        config,
                        format!(
                            "its bytes hash to {}, not to its digest",
                            Digest::sha256_of(&bytes)
                        ),
                    ));
                }
                if let Ok(mut list) = self.prefetched.lock() {
                    list.push(config.clone());
                }
                bytes
            }
        };
        serde_json::from_slice::<Platform>(&bytes)
            .map_err(|e| self.bad_config(manifest, config, e.to_string()))
    }

    fn bad_config(&self, manifest: &Digest, config: &Descriptor, detail: String) -> ResolveError {
        ResolveError::new(
            self.image,
            ResolveErrorKind::BadConfig {
                digest: config.digest.clone(),
                manifest: manifest.clone(),
                detail,
            },
        )
    }
}

/// What walking one index produced.
struct Walked {
    /// The index to push in its parent's place (original or rewritten).
    manifest: RawManifest,
    /// Everything below it to push first, children before parents.
    below: Vec<ManifestNeed>,
    platforms: Vec<Platform>,
    children: Vec<(Platform, Digest)>,
    unmatched: BTreeSet<Platform>,
    warnings: Vec<String>,
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
        Some(digest) => digest,
        None => source
            .resolve(reference)
            .await
            .map_err(|e| ctx.endpoint(e))?,
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

/// The config and distributable layers of an image manifest.
fn image_need(ctx: &Ctx<'_>, manifest: &RawManifest) -> Result<ManifestNeed, ResolveError> {
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

fn walk_index<'a>(
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
