//! What the executor tells the outside world while it runs. The library never prints: the CLI
//! implements [`Reporter`] (plain lines or progress bars), tests implement it with a recorder.

use std::time::Duration;

/// One thing that happened.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        task: String,
        bytes: u64,
    },
    Finished {
        task: String,
        bytes: u64,
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
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}

/// A reporter that drops everything.
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _event: Event) {}
}
