//! Plain, line-per-event progress on stderr (for logs and non-terminals).

use crate::execute::{Event, Reporter};
use crate::report::human_bytes;

pub struct PlainReporter;

impl Reporter for PlainReporter {
    fn event(&self, event: Event) {
        match event {
            Event::Started { .. } => {}
            Event::Finished { task, bytes } => eprintln!("  done {task} ({})", human_bytes(bytes)),
            Event::Retrying {
                task,
                attempt,
                delay,
                error,
            } => eprintln!(
                "  retry {attempt} of {task} in {:.1}s: {error}",
                delay.as_secs_f64()
            ),
            Event::Failed { task, error } => eprintln!("  FAILED {task}: {error}"),
        }
    }
}
