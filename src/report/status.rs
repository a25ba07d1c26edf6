//! What became of each image in an apply, for both the text and the JSON report.
//!
//! The executor knows which tags it pushed and which tasks failed; an image is done only when its
//! tag was pushed (or needed nothing). Everything else is either `failed` (one of its own tasks
//! failed, or a task of another image it shares content with did: then it is *blocked*) or
//! `not_done` (the run was interrupted before it got there). Reports never call an image `ok`
//! whose tag is not in the target.

use std::collections::{BTreeSet, HashSet};

use petgraph::stable_graph::NodeIndex;
use petgraph::Direction;
use serde::Serialize;

use crate::execute::Outcome;
use crate::plan::{Action, Plan, Task};

/// An image's fate, as the JSON `status` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The target tag holds the image (pushed now, or already there).
    Ok,
    /// The tag was not pushed because a task failed (this image's or one it depends on).
    Failed,
    /// The tag was not pushed because the run was interrupted first.
    NotDone,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::NotDone => "not_done",
        }
    }
}

/// One image's status and, unless it is `ok`, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageStatus {
    pub status: Status,
    pub reason: Option<String>,
}

/// The status of every image of `plan`, in plan order.
pub fn image_statuses(plan: &Plan, outcome: &Outcome) -> Vec<ImageStatus> {
    let failed_nodes: HashSet<NodeIndex> = outcome.failures.iter().filter_map(|f| f.node).collect();
    plan.images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let pushed = outcome.roots_pushed.get(i).copied().unwrap_or(false);
            if pushed || image.action == Action::Unchanged {
                return ImageStatus {
                    status: Status::Ok,
                    reason: None,
                };
            }
            let own: Vec<&str> = outcome
                .failures
                .iter()
                .filter(|f| f.image == i)
                .map(|f| f.task.as_str())
                .collect();
            if let Some(first) = own.first() {
                let more = match own.len() - 1 {
                    0 => String::new(),
                    n => format!(" (and {n} more task(s))"),
                };
                return ImageStatus {
                    status: Status::Failed,
                    reason: Some(format!("{first} failed{more}")),
                };
            }
            let blockers = blocking_images(plan, i, &failed_nodes);
            if !blockers.is_empty() {
                let names: Vec<&str> = blockers
                    .iter()
                    .filter_map(|&j| plan.images.get(j).map(|b| b.target.as_str()))
                    .collect();
                return ImageStatus {
                    status: Status::Failed,
                    reason: Some(format!("blocked by a failed task of {}", names.join(", "))),
                };
            }
            if outcome.interrupted {
                ImageStatus {
                    status: Status::NotDone,
                    reason: Some("interrupted before its tag was pushed".into()),
                }
            } else {
                ImageStatus {
                    status: Status::Failed,
                    reason: Some("its tag was not pushed".into()),
                }
            }
        })
        .collect()
}

/// The images (other than `image`) owning a failed task that `image`'s tag depends on.
fn blocking_images(plan: &Plan, image: usize, failed: &HashSet<NodeIndex>) -> BTreeSet<usize> {
    let graph = &plan.graph;
    let mut blockers = BTreeSet::new();
    if failed.is_empty() {
        return blockers;
    }
    let mut stack: Vec<NodeIndex> = graph
        .node_indices()
        .filter(|&n| graph[n].image == image && matches!(graph[n].task, Task::PushRoot { .. }))
        .collect();
    let mut seen: HashSet<NodeIndex> = stack.iter().copied().collect();
    while let Some(node) = stack.pop() {
        if failed.contains(&node) && graph[node].image != image {
            blockers.insert(graph[node].image);
        }
        for dep in graph.neighbors_directed(node, Direction::Incoming) {
            if seen.insert(dep) {
                stack.push(dep);
            }
        }
    }
    blockers
}

/// How many images are in each state, with the done ones split by what was done.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub not_done: u64,
}

pub fn counts(plan: &Plan, statuses: &[ImageStatus]) -> Counts {
    let mut counts = Counts::default();
    for (image, status) in plan.images.iter().zip(statuses) {
        match (status.status, image.action) {
            (Status::Ok, Action::Create) => counts.created += 1,
            (Status::Ok, Action::Update) => counts.updated += 1,
            (Status::Ok, Action::Unchanged) => counts.unchanged += 1,
            (Status::Failed, _) => counts.failed += 1,
            (Status::NotDone, _) => counts.not_done += 1,
        }
    }
    counts
}
