//! Whole repositories → images: the tag set comes from the lock when it has the entry (same
//! repository, same filter), else from the source's tag list through the filter.

use std::collections::BTreeSet;

use futures_util::{stream, StreamExt};

use super::{Policy, ResolveError, ResolveErrorKind, Sources};
use crate::model::{ImageSource, RepositorySource};

/// One repository entry with the tags it stands for.
#[derive(Debug, Clone)]
pub struct ExpandedRepository {
    pub source: RepositorySource,
    /// Sorted.
    pub tags: Vec<String>,
    /// Whether the tags came from the lock (no request was made).
    pub from_lock: bool,
    pub warnings: Vec<String>,
}

/// The tag set of every repository entry, concurrently, in Mirrorfile order.
pub async fn expand(
    repositories: &[RepositorySource],
    sources: &Sources,
    policy: &Policy,
) -> Vec<Result<ExpandedRepository, ResolveError>> {
    stream::iter(repositories.iter())
        .map(|repo| expand_one(repo, sources, policy))
        .buffered(4)
        .collect()
        .await
}

async fn expand_one(
    repo: &RepositorySource,
    sources: &Sources,
    policy: &Policy,
) -> Result<ExpandedRepository, ResolveError> {
    let error = |kind| ResolveError {
        image: repo.name(),
        origin: repo.origin.clone(),
        kind: Box::new(kind),
    };
    if let Some(locked) = policy.locked_tags(repo) {
        return Ok(ExpandedRepository {
            source: repo.clone(),
            tags: locked.tags.clone(),
            from_lock: true,
            warnings: Vec::new(),
        });
    }
    if policy.locked {
        return Err(error(ResolveErrorKind::NotInLock));
    }
    let Some(source) = sources.get(&repo.registry) else {
        return Err(error(ResolveErrorKind::NoSource(repo.registry.clone())));
    };
    let listed = source
        .list_tags(&repo.repository)
        .await
        .map_err(|e| error(ResolveErrorKind::Endpoint(e)))?;
    let chosen = repo.filter.choose(&listed);
    let mut warnings: Vec<String> = chosen
        .warnings
        .into_iter()
        .map(|w| format!("{}: {w}", repo.name()))
        .collect();
    if chosen.tags.is_empty() {
        warnings.push(format!(
            "{}: no tag matches {} (declared at {})",
            repo.name(),
            repo.filter.describe(),
            repo.origin
        ));
    }
    Ok(ExpandedRepository {
        source: repo.clone(),
        tags: chosen.tags,
        from_lock: false,
        warnings,
    })
}

/// The images of expanded repositories, after `explicit` ones: a tag an explicit entry already
/// mirrors to the same target is left to that entry (its settings are the more specific).
pub fn images_of(explicit: &[ImageSource], expanded: &[ExpandedRepository]) -> Vec<ImageSource> {
    let mut taken: BTreeSet<(String, Option<String>)> = explicit
        .iter()
        .map(|i| (i.target_repository.clone(), i.target_tag.clone()))
        .collect();
    let mut out = explicit.to_vec();
    for repo in expanded {
        for tag in &repo.tags {
            let Some(image) = repo.source.image(tag) else {
                continue;
            };
            if taken.insert((image.target_repository.clone(), image.target_tag.clone())) {
                out.push(image);
            }
        }
    }
    out
}
