//! terraform-like text: `+` create, `~` update, `=` unchanged, then a summary line.
//!
//! Colour is the caller's decision ([`Style`]): the CLI turns it on only for a terminal without
//! `NO_COLOR`, so pipes, files and snapshots get plain text.

use std::fmt::Write;
use std::time::Duration;

use super::human_bytes;
use super::status::{self, Status};
use crate::execute::Outcome;
use crate::plan::{Action, ImagePlan, Plan, Totals};
use crate::resolve::Provenance;

/// Whether to colour the text (ANSI SGR codes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn new(color: bool) -> Style {
        Style { color }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

fn blobs(t: Totals) -> String {
    let noun = if t.blobs == 1 { "blob" } else { "blobs" };
    format!("{} {noun} ({})", t.blobs, human_bytes(t.bytes))
}

fn image_lines(out: &mut String, image: &ImagePlan, style: Style) {
    let (sign, what) = match image.action {
        Action::Create => ("+", "create".to_string()),
        Action::Update => (
            "~",
            match &image.current {
                Some(from) => format!(
                    "update {} → {}",
                    from.short(),
                    image.resolved.root.digest().short()
                ),
                None => "update".into(),
            },
        ),
        Action::Unchanged => ("=", "unchanged".into()),
    };
    let sign = match image.action {
        Action::Create => style.green(sign),
        Action::Update => style.yellow(sign),
        Action::Unchanged => style.dim(sign),
    };
    let _ = writeln!(out, "  {sign} {}  ({what})", style.bold(&image.target));
    let r = &image.resolved;
    match &r.provenance {
        Provenance::Registry => {
            let _ = writeln!(
                out,
                "      from {} {}",
                r.source.display(),
                r.upstream_digest.short()
            );
            let platforms: Vec<String> = r.platforms.iter().map(|p| p.to_string()).collect();
            if !platforms.is_empty() {
                let _ = writeln!(out, "      platforms: {}", platforms.join(", "));
            }
        }
        Provenance::Archives(list) => {
            let _ = writeln!(
                out,
                "      from archives as {} {}",
                r.source.reference,
                r.root.digest().short()
            );
            for p in list {
                let name = p
                    .archive
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "      {:<14} {} from {name}",
                    p.platform.to_string(),
                    p.manifest.short()
                );
            }
        }
    }
    if r.rewritten() && r.provenance == Provenance::Registry {
        let _ = writeln!(
            out,
            "      index rewritten for the selected platforms: {} → {}",
            r.upstream_digest.short(),
            r.root.digest().short()
        );
    }
    if image.action != Action::Unchanged {
        let mut parts = vec![
            format!("fetch {}", blobs(image.fetch)),
            format!("push {}", blobs(image.push)),
        ];
        if image.mount.blobs > 0 {
            parts.push(format!("mount {}", blobs(image.mount)));
        }
        if image.present.blobs > 0 {
            parts.push(format!("{} already there", blobs(image.present)));
        }
        let _ = writeln!(out, "      {}", parts.join(", "));
    }
    if let Some(drift) = &r.drift {
        let _ = writeln!(
            out,
            "      upstream tag moved: {} → {}; keeping the locked digest",
            drift.locked, drift.upstream
        );
    }
    for warning in &r.warnings {
        let _ = writeln!(out, "      {} {warning}", style.yellow("warning:"));
    }
}

/// The plan, image by image, with a summary line.
pub fn plan(plan: &Plan, target: &str, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan for {target}:\n");
    for image in &plan.images {
        image_lines(&mut out, image, style);
    }
    let t = plan.totals();
    let _ = writeln!(
        out,
        "\n{} {} to create, {} to update, {} unchanged; fetch {}{}, push {}{}.",
        style.bold("Plan:"),
        style.green(&t.create.to_string()),
        style.yellow(&t.update.to_string()),
        t.unchanged,
        blobs(t.fetch),
        if plan.prefetched.blobs > 0 {
            format!(
                " (of which {} image config{}, {}, already fetched while planning)",
                plan.prefetched.blobs,
                if plan.prefetched.blobs == 1 { "" } else { "s" },
                human_bytes(plan.prefetched.bytes)
            )
        } else {
            String::new()
        },
        blobs(t.push),
        if t.mount.blobs > 0 {
            format!(", mount {}", blobs(t.mount))
        } else {
            String::new()
        }
    );
    let a = plan.archives;
    if a.archives > 0 {
        let _ = writeln!(
            out,
            "Archives: {} read; {} layers compressed, {} decompressed, {} reused from the cache.",
            a.archives, a.layers_compressed, a.layers_decompressed, a.memo_hits
        );
    }
    out
}

/// The closing summary of an apply.
pub fn apply_summary(
    plan: &Plan,
    outcome: &Outcome,
    requests: u64,
    elapsed: Duration,
    style: Style,
) -> String {
    let statuses = status::image_statuses(plan, outcome);
    let n = status::counts(plan, &statuses);
    let headline = if outcome.interrupted {
        style.red("Apply INTERRUPTED")
    } else if outcome.failures.is_empty() && n.failed == 0 {
        style.green("Apply complete")
    } else {
        style.red("Apply FAILED")
    };
    let not_pushed = n.failed + n.not_done;
    // Count what really happened: an image whose tag was not pushed was not created. The words
    // are the JSON statuses (`failed`, `not_done`), so both reports agree.
    let mut counts = format!(
        "{} created, {} updated, {} unchanged",
        n.created, n.updated, n.unchanged
    );
    if n.failed > 0 {
        let _ = write!(counts, ", {} failed", n.failed);
    }
    if n.not_done > 0 || (not_pushed == 0 && !outcome.complete()) {
        let _ = write!(counts, ", {} not done", n.not_done);
    }
    let mut out = format!("{headline}: {counts}.\n");
    let _ = writeln!(
        out,
        "  fetched {}, pushed {}, mounted {}, {} already there, {} manifests pushed; {} requests in {:.1}s",
        blobs(Totals {
            blobs: outcome.blobs_fetched + plan.prefetched.blobs,
            bytes: outcome.bytes_fetched + plan.prefetched.bytes
        }),
        blobs(Totals {
            blobs: outcome.blobs_pushed,
            bytes: outcome.bytes_pushed
        }),
        outcome.blobs_mounted,
        plan.images.iter().map(|i| i.present.blobs).sum::<u64>(),
        outcome.manifests_pushed,
        requests,
        elapsed.as_secs_f64()
    );
    if not_pushed > 0 {
        let _ = writeln!(out, "Not pushed:");
        for (image, st) in plan.images.iter().zip(&statuses) {
            let sign = match st.status {
                Status::Ok => continue,
                Status::Failed => style.red("×"),
                Status::NotDone => style.yellow("-"),
            };
            let reason = st.reason.as_deref().unwrap_or("");
            let _ = writeln!(out, "  {sign} {}  ({reason})", image.target);
        }
    }
    out
}
