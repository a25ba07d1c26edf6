//! Progress bars on stderr while `apply` runs (only when stderr is a terminal, or `--progress
//! bars`): one overall bar with bytes moved, images done and the ETA, and below it a bar for each
//! of the first transfers in flight (the scheduler starts the largest first; tracing-indicatif
//! caps how many are drawn).
//!
//! The bars are tracing spans drawn by tracing-indicatif, so log lines (`-v`) print above them
//! instead of through them.

use std::collections::HashMap;
use std::sync::Mutex;

use tracing::Span;
use tracing_indicatif::span_ext::IndicatifSpanExt;
use tracing_indicatif::style::ProgressStyle;

use crate::execute::{Event, Reporter};
use crate::plan::{Action, Plan};

/// The `execute::Reporter` that draws bars.
pub struct Bars {
    overall: Span,
    state: Mutex<State>,
    transfer_style: ProgressStyle,
}

#[derive(Default)]
struct State {
    /// Bytes moved so far, over every transfer.
    moved: u64,
    /// The overall bar's length (grows if the plan's estimate was short).
    length: u64,
    images_done: u64,
    images_total: u64,
    /// Per task in flight: its bar and the bytes it reported in the current attempt.
    transfers: HashMap<String, (Option<Span>, u64)>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Bars {
    pub fn new(plan: &Plan) -> Bars {
        let totals = plan.totals();
        let length = totals.fetch.bytes + totals.push.bytes;
        let overall = tracing::info_span!(
            target: "mirror::progress",
            "apply",
            indicatif.pb_show = tracing::field::Empty
        );
        overall.pb_set_style(&style(
            "{spinner} [{elapsed_precise}] [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}  {msg}",
        ));
        overall.pb_set_length(length);
        let state = State {
            length,
            images_total: images_to_write(plan),
            ..State::default()
        };
        overall.pb_set_message(&images_message(&state));
        overall.pb_start();
        Bars {
            overall,
            state: Mutex::new(state),
            transfer_style: style(
                "  [{bar:20}] {decimal_bytes:>9}/{decimal_total_bytes:<9} {wide_msg}",
            ),
        }
    }

    fn update_overall(&self, state: &mut State) {
        if state.moved > state.length {
            state.length = state.moved;
            self.overall.pb_set_length(state.length);
        }
        self.overall.pb_set_position(state.moved);
    }
}

fn images_message(state: &State) -> String {
    format!("images {}/{}", state.images_done, state.images_total)
}

impl Reporter for Bars {
    fn event(&self, event: Event) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match event {
            Event::Started { task, bytes } => {
                let bar = (bytes > 0).then(|| {
                    let span = tracing::info_span!(
                        target: "mirror::progress",
                        parent: &self.overall,
                        "transfer",
                        indicatif.pb_show = tracing::field::Empty
                    );
                    span.pb_set_style(&self.transfer_style);
                    span.pb_set_length(bytes);
                    span.pb_set_message(&task);
                    span.pb_start();
                    span
                });
                state.transfers.insert(task, (bar, 0));
            }
            Event::Progress { task, bytes } => {
                if let Some((bar, seen)) = state.transfers.get_mut(&task) {
                    *seen += bytes;
                    if let Some(bar) = bar {
                        bar.pb_inc(bytes);
                    }
                }
                state.moved += bytes;
                self.update_overall(&mut state);
            }
            Event::Retrying { task, .. } => {
                // The next attempt starts from 0: take back what this one reported.
                if let Some((bar, seen)) = state.transfers.get_mut(&task) {
                    let seen = std::mem::take(seen);
                    if let Some(bar) = bar {
                        bar.pb_set_position(0);
                    }
                    state.moved = state.moved.saturating_sub(seen);
                }
                self.update_overall(&mut state);
            }
            Event::Finished { task, bytes } => {
                if let Some((_, seen)) = state.transfers.remove(&task) {
                    // Mounts and cache hits move no bytes through us; count them as done.
                    if seen < bytes && !task.starts_with("mount ") {
                        state.moved += bytes - seen;
                    }
                }
                self.update_overall(&mut state);
            }
            Event::Failed { task, .. } | Event::Skipped { task, .. } => {
                state.transfers.remove(&task);
            }
            Event::ImageDone { .. } => {
                state.images_done += 1;
                self.overall.pb_set_message(&images_message(&state));
            }
        }
    }
}

/// How many images of the plan will be written (the denominator of "images n/m").
pub fn images_to_write(plan: &Plan) -> u64 {
    plan.images
        .iter()
        .filter(|i| i.action != Action::Unchanged)
        .count() as u64
}
