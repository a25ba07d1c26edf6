//! Read-only questions to the target: where do tags point, which manifests and blobs exist.
//!
//! Questions are asked concurrently and only where the answer can change the plan: nothing is
//! asked below a tag that already points at the wanted digest, and no blob is asked about when
//! the manifest that needs it is already in the repository.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{stream, StreamExt, TryStreamExt};

use super::PlanError;
use crate::endpoint::Sink;
use crate::oci::Digest;
use crate::resolve::ResolvedImage;

/// Requests in flight while probing.
const PROBE_CONCURRENCY: usize = 16;

/// What the target holds, as far as the plan needs to know.
#[derive(Debug, Default, Clone)]
pub struct TargetState {
    /// Per image (same order): the digest its target tag points at now.
    pub current: Vec<Option<Digest>>,
    manifests: BTreeSet<(String, Digest)>,
    blobs: BTreeMap<Digest, BTreeSet<String>>,
}

impl TargetState {
    pub fn has_manifest(&self, repository: &str, digest: &Digest) -> bool {
        self.manifests
            .contains(&(repository.to_string(), digest.clone()))
    }

    pub fn has_blob(&self, repository: &str, digest: &Digest) -> bool {
        self.blobs
            .get(digest)
            .is_some_and(|repos| repos.contains(repository))
    }

    /// Every (repository, manifest digest) known to exist, sorted.
    pub fn manifests(&self) -> impl Iterator<Item = &(String, Digest)> {
        self.manifests.iter()
    }

    /// Every blob known to exist, with the repositories holding it, sorted.
    pub fn blobs(&self) -> impl Iterator<Item = (&Digest, &BTreeSet<String>)> {
        self.blobs.iter()
    }

    /// Another repository of the target that holds `digest` (for a cross-repository mount).
    pub fn blob_elsewhere(&self, digest: &Digest, repository: &str) -> Option<String> {
        self.blobs
            .get(digest)
            .and_then(|repos| repos.iter().find(|r| r.as_str() != repository).cloned())
    }
}

pub(super) async fn probe(
    images: &[ResolvedImage],
    sink: &dyn Sink,
    target_base: &str,
) -> Result<TargetState, PlanError> {
    let err = |repo: &str, what: String| {
        let target = format!("{target_base}{repo}{what}");
        move |source| PlanError { target, source }
    };

    // 1. Where each tag points (or whether the digest exists, for digest-only sources).
    let current: Vec<Option<Digest>> = stream::iter(images.iter())
        .map(|image| async move {
            let repo = &image.source.target_repository;
            match &image.source.target_tag {
                Some(tag) => sink
                    .tag_digest(repo, tag)
                    .await
                    .map_err(err(repo, format!(":{tag}"))),
                None => {
                    let digest = image.root.digest();
                    let present = sink
                        .has_manifest(repo, digest)
                        .await
                        .map_err(err(repo, format!("@{digest}")))?;
                    Ok(present.then(|| digest.clone()))
                }
            }
        })
        .buffered(PROBE_CONCURRENCY)
        .try_collect()
        .await?;

    // 2. Which manifests of changed images exist (root first: if the root exists by digest,
    //    everything below it does too).
    let mut manifest_questions: BTreeSet<(String, Digest)> = BTreeSet::new();
    for (image, now) in images.iter().zip(&current) {
        if now.as_ref() == Some(image.root.digest()) {
            continue;
        }
        let repo = image.source.target_repository.clone();
        manifest_questions.insert((repo.clone(), image.root.digest().clone()));
        for need in &image.manifests {
            manifest_questions.insert((repo.clone(), need.manifest.digest().clone()));
        }
    }
    let manifests: BTreeSet<(String, Digest)> = stream::iter(manifest_questions)
        .map(|(repo, digest)| async move {
            let there = sink
                .has_manifest(&repo, &digest)
                .await
                .map_err(err(&repo, format!("@{digest}")))?;
            Ok::<_, PlanError>(there.then_some((repo, digest)))
        })
        .buffer_unordered(PROBE_CONCURRENCY)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await?;

    // 3. Which blobs exist, for manifests that are not there.
    let mut blob_questions: BTreeSet<(String, Digest)> = BTreeSet::new();
    for (image, now) in images.iter().zip(&current) {
        let repo = &image.source.target_repository;
        if now.as_ref() == Some(image.root.digest())
            || manifests.contains(&(repo.clone(), image.root.digest().clone()))
        {
            continue;
        }
        for need in &image.manifests {
            let is_root = need.manifest.digest() == image.root.digest();
            if !is_root && manifests.contains(&(repo.clone(), need.manifest.digest().clone())) {
                continue;
            }
            for blob in &need.blobs {
                blob_questions.insert((repo.clone(), blob.digest.clone()));
            }
        }
    }
    let found: Vec<(String, Digest)> = stream::iter(blob_questions)
        .map(|(repo, digest)| async move {
            let there = sink
                .has_blob(&repo, &digest)
                .await
                .map_err(err(&repo, format!(" blob {digest}")))?;
            Ok::<_, PlanError>(there.then_some((repo, digest)))
        })
        .buffer_unordered(PROBE_CONCURRENCY)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await?;
    let mut blobs: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
    // A tag at the wanted digest means the registry accepted that manifest, so its blobs are in
    // that repository: known without asking, and mountable into other repositories.
    for (image, now) in images.iter().zip(&current) {
        if now.as_ref() == Some(image.root.digest()) {
            for blob in image.manifests.iter().flat_map(|n| &n.blobs) {
                blobs
                    .entry(blob.digest.clone())
                    .or_default()
                    .insert(image.source.target_repository.clone());
            }
        }
    }
    for (repo, digest) in found {
        blobs.entry(digest).or_default().insert(repo);
    }
    Ok(TargetState {
        current,
        manifests,
        blobs,
    })
}
