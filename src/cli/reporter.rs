//! Plain, line-per-event progress on stderr (for logs, CI and non-terminals).

use super::output::note;
use std::sync::atomic::{AtomicU64, Ordering};

use super::progress::images_to_write;
use crate::execute::{Event, Reporter};
use crate::plan::Plan;
use crate::report::human_bytes;

pub struct PlainReporter {
    images_total: u64,
    images_done: AtomicU64,
    /// Blob bytes of finished downloads and uploads, shown with each finished image (mounts
    /// move nothing through us and count for neither).
    fetched: AtomicU64,
    pushed: AtomicU64,
}

impl PlainReporter {
    pub fn new(plan: &Plan) -> PlainReporter {
        PlainReporter {
            images_total: images_to_write(plan),
            images_done: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
            pushed: AtomicU64::new(0),
        }
    }
}

impl Reporter for PlainReporter {
    fn event(&self, event: Event) {
        match event {
            Event::Started { .. } | Event::Progress { .. } => {}
            Event::Finished { task, bytes } => {
                // Task names start with what they do (`Task::describe`).
                if task.starts_with("fetch ") {
                    self.fetched.fetch_add(bytes, Ordering::Relaxed);
                } else if task.starts_with("push ") && !task.starts_with("push manifest ") {
                    self.pushed.fetch_add(bytes, Ordering::Relaxed);
                }
                note!("  done {task} ({})", human_bytes(bytes))
            }
            Event::ImageDone { target } => {
                let done = self.images_done.fetch_add(1, Ordering::Relaxed) + 1;
                note!(
                    "  tagged {target} ({done}/{} images; fetched {}, pushed {} so far)",
                    self.images_total,
                    human_bytes(self.fetched.load(Ordering::Relaxed)),
                    human_bytes(self.pushed.load(Ordering::Relaxed))
                );
            }
            Event::Retrying {
                task,
                attempt,
                delay,
                error,
            } => note!(
                "  retry {attempt} of {task} in {:.1}s: {error}",
                delay.as_secs_f64()
            ),
            Event::Failed { task, error } => note!("  FAILED {task}: {error}"),
            // The first failure on that host said it all.
            Event::Skipped { .. } => {}
        }
    }
}
