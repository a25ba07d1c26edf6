//! Stage 4: run the plan's DAG on tokio.
//!
//! A task starts when everything it depends on has finished (in-degree scheduling, largest
//! transfers first), with at most `jobs` tasks at once. A failed task stops only what depends on
//! it: other images carry on, and no tag is ever pushed above missing content. Retryable failures
//! (network, 5xx, 429) are retried with backoff before they count as failures.

pub mod event;
mod repair;
pub mod retry;
mod run_task;

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use tokio::task::JoinSet;

use crate::endpoint::Sink;
use crate::plan::{Plan, Task};
use crate::resolve::Sources;
use crate::store::Store;

pub use event::{Event, Reporter, Silent};
pub use retry::RetryPolicy;
pub use run_task::TaskError;

/// Settings for one run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Tasks at once.
    pub jobs: usize,
    pub retry: RetryPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 8,
            retry: RetryPolicy::default(),
        }
    }
}

/// Counters the executor keeps while it runs.
#[derive(Debug, Default)]
pub struct Counters {
    pub blobs_fetched: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub blobs_pushed: AtomicU64,
    pub bytes_pushed: AtomicU64,
    pub blobs_mounted: AtomicU64,
    pub manifests_pushed: AtomicU64,
}

/// What the run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Outcome {
    pub blobs_fetched: u64,
    pub bytes_fetched: u64,
    pub blobs_pushed: u64,
    pub bytes_pushed: u64,
    pub blobs_mounted: u64,
    pub manifests_pushed: u64,
    /// Tasks that failed, with the image they belonged to.
    #[serde(skip)]
    pub failures: Vec<Failure>,
    /// Per image: whether its root (tag) was pushed in this run.
    #[serde(skip)]
    pub roots_pushed: Vec<bool>,
    /// The run was stopped (Ctrl-C) before it finished: tasks in flight were cancelled.
    #[serde(skip)]
    pub interrupted: bool,
}

impl Outcome {
    /// Whether everything the plan asked for was done: nothing failed and no Ctrl-C.
    pub fn complete(&self) -> bool {
        self.failures.is_empty() && !self.interrupted
    }
}

/// One failed task.
#[derive(Debug)]
pub struct Failure {
    pub image: usize,
    /// The task's node in the plan's graph (`None` only for a task that crashed unidentified),
    /// so reports can tell which other images it blocked.
    pub node: Option<NodeIndex>,
    pub task: String,
    pub error: TaskError,
}

impl Clone for Failure {
    fn clone(&self) -> Self {
        let error = match &self.error {
            TaskError::HostDown { host, cause } => TaskError::HostDown {
                host: host.clone(),
                cause: cause.clone(),
            },
            other => TaskError::Message(other.to_string()),
        };
        Failure {
            image: self.image,
            node: self.node,
            task: self.task.clone(),
            error,
        }
    }
}

/// Everything a task needs, shared by all of them.
pub(crate) struct Shared {
    pub sources: Sources,
    pub sink: Arc<dyn Sink>,
    pub store: Store,
    pub counters: Counters,
    pub reporter: Arc<dyn Reporter>,
    pub retry: RetryPolicy,
    /// Hosts a task gave up on because no connection could be made, with what it saw.
    pub down: std::sync::Mutex<HashMap<String, String>>,
}

impl Shared {
    /// Remembers that every retry on `host` failed to connect.
    pub(crate) fn mark_down(&self, host: &str, cause: String) {
        if let Ok(mut down) = self.down.lock() {
            down.entry(host.to_string()).or_insert(cause);
        }
    }

    /// `(host, what the task that gave up on it saw)` when `host` is known to be down.
    pub(crate) fn down_cause(&self, host: &str) -> Option<(String, String)> {
        let down = self.down.lock().ok()?;
        down.get(host)
            .map(|cause| (host.to_string(), cause.clone()))
    }
}

/// Runs the plan.
pub async fn execute(
    plan: &Plan,
    sources: Sources,
    sink: Arc<dyn Sink>,
    store: Store,
    reporter: Arc<dyn Reporter>,
    options: Options,
) -> Outcome {
    execute_until(
        plan,
        sources,
        sink,
        store,
        reporter,
        options,
        std::future::pending(),
    )
    .await
}

/// Runs the plan until it is done or `stop` completes (Ctrl-C). On a stop, nothing new starts
/// and every task in flight is cancelled and waited for, so its temp file is gone and its
/// upload session abandoned (see `Client::cancel_abandoned_uploads`) before this returns.
pub async fn execute_until(
    plan: &Plan,
    sources: Sources,
    sink: Arc<dyn Sink>,
    store: Store,
    reporter: Arc<dyn Reporter>,
    options: Options,
    stop: impl std::future::Future<Output = ()>,
) -> Outcome {
    let mut stop = std::pin::pin!(stop);
    let shared = Arc::new(Shared {
        sources,
        sink,
        store,
        counters: Counters::default(),
        reporter,
        retry: options.retry,
        down: Default::default(),
    });
    let graph = &plan.graph;
    let mut waiting: HashMap<NodeIndex, usize> = graph
        .node_indices()
        .map(|n| (n, graph.edges_directed(n, Direction::Incoming).count()))
        .collect();
    let mut ready: BinaryHeap<(u8, u64, NodeIndex)> = BinaryHeap::new();
    let priority = |n: NodeIndex| {
        let task = &graph[n].task;
        // A blob push as soon as its fetch is done, before more fetches: downloads (disk-bound)
        // then overlap uploads (bound by the target registry) instead of running as two phases.
        let class = match task {
            Task::PushBlob { .. } => 3,
            Task::FetchBlob { .. } => 2,
            Task::PushManifest { .. } => 1,
            Task::PushRoot { .. } => 0,
        };
        (class, task.bytes(), n)
    };
    for (&n, &count) in &waiting {
        if count == 0 {
            ready.push(priority(n));
        }
    }
    let mut outcome = Outcome {
        roots_pushed: vec![false; plan.images.len()],
        ..Outcome::default()
    };
    let mut running: JoinSet<(NodeIndex, Result<(), TaskError>)> = JoinSet::new();
    // Which node each running task is, so even a task that panicked is blamed on its image.
    let mut spawned: HashMap<tokio::task::Id, NodeIndex> = HashMap::new();
    // Hosts whose first `HostDown` failure was reported: the rest fail quietly (one line per
    // host instead of one per task when a registry goes away mid-run).
    let mut down_reported: HashSet<String> = HashSet::new();
    let jobs = options.jobs.max(1);
    loop {
        while running.len() < jobs {
            let Some((_, _, node)) = ready.pop() else {
                break;
            };
            let task = graph[node].task.clone();
            let shared = shared.clone();
            let handle = running.spawn(async move { (node, run_task::run(&task, &shared).await) });
            spawned.insert(handle.id(), node);
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id() => joined,
            () = &mut stop => {
                running.abort_all();
                while running.join_next().await.is_some() {}
                outcome.interrupted = true;
                break;
            }
        };
        let Some(joined) = joined else {
            break;
        };
        let (node, result) = match joined {
            Ok((id, pair)) => {
                spawned.remove(&id);
                pair
            }
            Err(panic) => {
                // A task panicked: that is a bug, but it must not take the run down silently.
                let node = spawned.remove(&panic.id());
                let (image, task) = match node {
                    Some(n) => (graph[n].image, graph[n].task.describe()),
                    None => (0, "internal task".into()),
                };
                outcome.failures.push(Failure {
                    image,
                    node,
                    task,
                    error: TaskError::Message(format!("task crashed: {panic}")),
                });
                continue;
            }
        };
        let task = &graph[node];
        match result {
            Ok(()) => {
                if let Task::PushRoot { .. } = task.task {
                    if let Some(flag) = outcome.roots_pushed.get_mut(task.image) {
                        *flag = true;
                    }
                    if let Some(image) = plan.images.get(task.image) {
                        shared.reporter.event(Event::ImageDone {
                            target: image.target.clone(),
                        });
                    }
                }
                for edge in graph.edges_directed(node, Direction::Outgoing) {
                    let next = edge.target();
                    if let Some(count) = waiting.get_mut(&next) {
                        *count -= 1;
                        if *count == 0 {
                            ready.push(priority(next));
                        }
                    }
                }
            }
            Err(error) => {
                let event = match &error {
                    TaskError::HostDown { host, .. } if !down_reported.insert(host.clone()) => {
                        Event::Skipped {
                            task: task.task.describe(),
                            host: host.clone(),
                        }
                    }
                    TaskError::HostDown { .. } => Event::Failed {
                        task: task.task.describe(),
                        error: format!("{error}; later tasks that need it fail without a line"),
                    },
                    _ => Event::Failed {
                        task: task.task.describe(),
                        error: error.to_string(),
                    },
                };
                shared.reporter.event(event);
                outcome.failures.push(Failure {
                    image: task.image,
                    node: Some(node),
                    task: task.task.describe(),
                    error,
                });
            }
        }
    }
    let c = &shared.counters;
    outcome.blobs_fetched = c.blobs_fetched.load(Ordering::Relaxed);
    outcome.bytes_fetched = c.bytes_fetched.load(Ordering::Relaxed);
    outcome.blobs_pushed = c.blobs_pushed.load(Ordering::Relaxed);
    outcome.bytes_pushed = c.bytes_pushed.load(Ordering::Relaxed);
    outcome.blobs_mounted = c.blobs_mounted.load(Ordering::Relaxed);
    outcome.manifests_pushed = c.manifests_pushed.load(Ordering::Relaxed);
    outcome
}
