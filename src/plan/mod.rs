//! Stage 3: compare resolved images with the cache and the target, and build the DAG of tasks
//! that makes the target match (petgraph). Finished work is left out: a tag already at the
//! wanted digest costs one HEAD and prunes its whole subtree; a manifest already in the target
//! repository prunes its blobs; a blob already there is skipped; a blob another target
//! repository has is mounted instead of uploaded; each digest moves once per repository.

pub mod fingerprint;
mod probe;
pub mod task;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::stable_graph::{NodeIndex, StableDiGraph};

use crate::endpoint::{EndpointError, Sink};
use crate::oci::{Digest, Platform};
use crate::resolve::archives::ArchiveStats;
use crate::resolve::ResolvedImage;
use crate::store::Store;

pub use probe::TargetState;
pub use task::{Node, Reason, Task};

/// What happens to one image's target tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

/// A count of blobs and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub blobs: u64,
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, bytes: u64) {
        self.blobs += 1;
        self.bytes += bytes;
    }
}

/// The plan for one image.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    pub resolved: ResolvedImage,
    /// `host/repository:tag` (or `@digest`) on the target; `oci:DIR:repository:tag` for layouts.
    pub target: String,
    pub repository: String,
    /// The tag, or the digest for digest-only sources.
    pub reference: String,
    pub current: Option<Digest>,
    pub action: Action,
    pub fetch: Totals,
    pub push: Totals,
    pub mount: Totals,
    /// Blobs the target repository already has.
    pub present: Totals,
}

impl ImagePlan {
    pub fn platforms(&self) -> &[Platform] {
        &self.resolved.platforms
    }
}

/// The whole plan: per-image summaries and the task graph.
#[derive(Debug, Clone)]
pub struct Plan {
    pub images: Vec<ImagePlan>,
    pub graph: StableDiGraph<Node, ()>,
    /// Blobs that resolving already downloaded (image configs): part of what the run fetched.
    pub prefetched: Totals,
    /// What reading `[[archives]]` cost in this run (all zero without archives).
    pub archives: ArchiveStats,
    /// [`TargetState::fingerprint`] of what the probe saw (for saved plans).
    pub target_fingerprint: String,
    /// Notes about the run as a whole rather than one image (content an archive holds that
    /// no image takes, repository tags skipped, …): set by the caller from the resolution.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("checking {target} on the target: {source}")]
pub struct PlanError {
    pub target: String,
    #[source]
    pub source: EndpointError,
}

impl Plan {
    /// Blobs the run would have to download (not in the cache, needed by the target), with the
    /// image (index into `images`) that needs each first.
    pub fn fetches(&self) -> Vec<(usize, Digest)> {
        self.graph
            .node_weights()
            .filter_map(|n| match &n.task {
                Task::FetchBlob { descriptor, .. } => Some((n.image, descriptor.digest.clone())),
                _ => None,
            })
            .collect()
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.images.iter().any(|i| i.action != Action::Unchanged)
    }

    pub fn totals(&self) -> PlanTotals {
        let mut t = PlanTotals::default();
        for image in &self.images {
            match image.action {
                Action::Create => t.create += 1,
                Action::Update => t.update += 1,
                Action::Unchanged => t.unchanged += 1,
            }
            t.fetch.blobs += image.fetch.blobs;
            t.fetch.bytes += image.fetch.bytes;
            t.push.blobs += image.push.blobs;
            t.push.bytes += image.push.bytes;
            t.mount.blobs += image.mount.blobs;
            t.mount.bytes += image.mount.bytes;
        }
        t
    }
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PlanTotals {
    pub create: u64,
    pub update: u64,
    pub unchanged: u64,
    pub fetch: Totals,
    pub push: Totals,
    pub mount: Totals,
}

/// Builds the plan for `resolved` against the target `sink`. `target_base` is what image names
/// on the target start with: `host:port/` for a registry, `oci:DIR:` for a layout,
/// `oci-archive:FILE:` for a bundle (skopeo's spelling, so the names can be pasted into it).
pub async fn build(
    resolved: Vec<ResolvedImage>,
    sink: &dyn Sink,
    target_base: &str,
    store: &Store,
) -> Result<Plan, PlanError> {
    let state = probe::probe(&resolved, sink, target_base).await?;
    Ok(assemble(resolved, &state, target_base, store))
}

/// The pure half of planning: turns probe answers into the graph.
pub fn assemble(
    resolved: Vec<ResolvedImage>,
    state: &TargetState,
    target_base: &str,
    store: &Store,
) -> Plan {
    let mut graph: StableDiGraph<Node, ()> = StableDiGraph::new();
    let mut fetch_nodes: HashMap<Digest, NodeIndex> = HashMap::new();
    let mut blob_nodes: HashMap<(String, Digest), NodeIndex> = HashMap::new();
    let mut manifest_nodes: HashMap<(String, Digest), NodeIndex> = HashMap::new();
    // The repository that uploads a digest first in this run: later repositories mount from it.
    let mut first_upload: HashMap<Digest, (String, NodeIndex)> = HashMap::new();
    let mut counted_present: BTreeSet<(String, Digest)> = BTreeSet::new();
    let mut images = Vec::with_capacity(resolved.len());
    let mut prefetched_seen: BTreeSet<Digest> = BTreeSet::new();
    let mut prefetched = Totals::default();

    for (i, image) in resolved.into_iter().enumerate() {
        let repository = image.source.target_repository.clone();
        let reference = image
            .source
            .target_tag
            .clone()
            .unwrap_or_else(|| image.root.digest().to_string());
        let target = match &image.source.target_tag {
            Some(tag) => format!("{target_base}{repository}:{tag}"),
            None => format!("{target_base}{repository}@{}", image.root.digest()),
        };
        let current = state.current.get(i).cloned().flatten();
        let wanted = image.root.digest().clone();
        let action = match &current {
            Some(d) if d == &wanted => Action::Unchanged,
            Some(_) => Action::Update,
            None => Action::Create,
        };
        let mut plan = ImagePlan {
            target,
            repository: repository.clone(),
            reference: reference.clone(),
            current: current.clone(),
            action,
            fetch: Totals::default(),
            push: Totals::default(),
            mount: Totals::default(),
            present: Totals::default(),
            resolved: image,
        };
        for blob in &plan.resolved.prefetched {
            if prefetched_seen.insert(blob.digest.clone()) {
                plan.fetch.add(blob.size);
                prefetched.add(blob.size);
            }
        }
        if action == Action::Unchanged {
            images.push(plan);
            continue;
        }
        let image = &plan.resolved;
        let source_registry = image.source.source_key();
        let source_repository = image.source.reference.repository().to_string();
        let root_present = state.has_manifest(&repository, &wanted);
        let mut root_deps: Vec<NodeIndex> = Vec::new();
        // Every download of this image before any of its uploads: a blob that fails
        // verification then stops the whole image, and none of its bytes reach the target.
        let mut image_fetches: BTreeSet<NodeIndex> = BTreeSet::new();
        let mut image_uploads: Vec<NodeIndex> = Vec::new();

        for need in image.manifests.iter().filter(|_| !root_present) {
            let digest = need.manifest.digest();
            let is_root = digest == &wanted;
            if !is_root && state.has_manifest(&repository, digest) {
                continue;
            }
            let mut deps = Vec::new();
            for blob in &need.blobs {
                let key = (repository.clone(), blob.digest.clone());
                if state.has_blob(&repository, &blob.digest) {
                    if counted_present.insert(key) {
                        plan.present.add(blob.size);
                    }
                    continue;
                }
                if let Some(&node) = blob_nodes.get(&key) {
                    deps.push(node);
                    continue;
                }
                let elsewhere = state.blob_elsewhere(&blob.digest, &repository);
                let (mount_from, upstream) = match (elsewhere, first_upload.get(&blob.digest)) {
                    (Some(repo), _) => (Some(repo), None),
                    (None, Some((repo, node))) => (Some(repo.clone()), Some(*node)),
                    (None, None) => (None, None),
                };
                let reason = match &mount_from {
                    Some(repo) => Reason::MountableFrom {
                        repository: repo.clone(),
                    },
                    None => Reason::MissingInTarget,
                };
                let node = graph.add_node(Node {
                    task: Task::PushBlob {
                        repository: repository.clone(),
                        descriptor: blob.clone(),
                        mount_from: mount_from.clone(),
                        source_registry: source_registry.clone(),
                        source_repository: source_repository.clone(),
                    },
                    reason,
                    image: i,
                });
                if let Some(upstream) = upstream {
                    graph.add_edge(upstream, node, ());
                }
                if mount_from.is_some() {
                    plan.mount.add(blob.size);
                } else {
                    plan.push.add(blob.size);
                    first_upload.insert(blob.digest.clone(), (repository.clone(), node));
                    image_uploads.push(node);
                    if !store.contains(&blob.digest) {
                        let fetch = *fetch_nodes.entry(blob.digest.clone()).or_insert_with(|| {
                            plan.fetch.add(blob.size);
                            graph.add_node(Node {
                                task: Task::FetchBlob {
                                    registry: source_registry.clone(),
                                    repository: source_repository.clone(),
                                    descriptor: blob.clone(),
                                },
                                reason: Reason::NotCached,
                                image: i,
                            })
                        });
                        image_fetches.insert(fetch);
                    }
                }
                blob_nodes.insert(key, node);
                deps.push(node);
            }
            if is_root {
                root_deps.extend(deps);
                continue;
            }
            let key = (repository.clone(), digest.clone());
            let node = match manifest_nodes.get(&key) {
                Some(&node) => node,
                None => {
                    let node = graph.add_node(Node {
                        task: Task::PushManifest {
                            repository: repository.clone(),
                            manifest: need.manifest.clone(),
                        },
                        reason: Reason::MissingInTarget,
                        image: i,
                    });
                    manifest_nodes.insert(key, node);
                    node
                }
            };
            // An index child depends on every manifest before it (its own children).
            if need.manifest.is_index() {
                for &earlier in &root_deps {
                    if matches!(graph[earlier].task, Task::PushManifest { .. }) {
                        graph.add_edge(earlier, node, ());
                    }
                }
            }
            for dep in deps {
                graph.add_edge(dep, node, ());
            }
            root_deps.push(node);
        }

        for &upload in &image_uploads {
            for &fetch in &image_fetches {
                graph.add_edge(fetch, upload, ());
            }
        }

        let reason = match &current {
            Some(from) => Reason::TagMoved {
                from: from.clone(),
                to: wanted.clone(),
            },
            None => Reason::TagMissing,
        };
        let root = graph.add_node(Node {
            task: Task::PushRoot {
                repository: repository.clone(),
                reference,
                manifest: image.root.clone(),
            },
            reason,
            image: i,
        });
        for dep in root_deps {
            graph.add_edge(dep, root, ());
        }
        images.push(plan);
    }
    Plan {
        images,
        graph,
        prefetched,
        archives: ArchiveStats::default(),
        target_fingerprint: state.fingerprint(),
        warnings: Vec::new(),
    }
}

/// Repositories per digest, for reports.
pub type Locations = BTreeMap<Digest, BTreeSet<String>>;
