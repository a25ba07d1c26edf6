//! What the executor tells the outside world while it runs. The library never prints: the CLI
//! implements [`Reporter`] (plain lines or progress bars), tests implement it with a recorder.

use std::time::Duration;

/// One thing that happened. `task` is the task's description (`push blob sha256:… to repo`),
/// unique within a plan, so a reporter can key its per-transfer state on it.
#[derive(Debug, Clone)]
pub enum Event {
    /// A task began; `bytes` is what it will move (0 for manifests).
    Started {
        task: String,
        bytes: u64,
    },
    /// `bytes` more of a transfer went through (sent or received and hashed) since the last
    /// `Progress` of that task. A retried attempt starts again from 0 after its `Retrying`.
    Progress {
        task: String,
        bytes: u64,
    },
    /// A task completed; `bytes` as in `Started`.
    Finished {
        task: String,
        bytes: u64,
    },
    /// An image's tag (or root manifest) was pushed: everything of `target` is in place.
    ImageDone {
        target: String,
    },
    Retrying {
        task: String,
        attempt: u32,
        delay: Duration,
        error: String,
    },
    Failed {
        task: String,
        error: String,
    },
    /// A task failed because `host` is unreachable, after a `Failed` already said so for an
    /// earlier task: reporters drop its per-task state and print nothing.
    Skipped {
        task: String,
        host: String,
    },
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}

/// A reporter that drops everything.
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _event: Event) {}
}
