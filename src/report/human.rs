//! terraform-like text: `+` create, `~` update, `=` unchanged, then a summary line.

use std::fmt::Write;
use std::time::Duration;

use super::human_bytes;
use crate::execute::Outcome;
use crate::plan::{Action, ImagePlan, Plan, Totals};

fn blobs(t: Totals) -> String {
    let noun = if t.blobs == 1 { "blob" } else { "blobs" };
    format!("{} {noun} ({})", t.blobs, human_bytes(t.bytes))
}

fn image_lines(out: &mut String, image: &ImagePlan) {
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
    let _ = writeln!(out, "  {sign} {}  ({what})", image.target);
    let r = &image.resolved;
    let _ = writeln!(
        out,
        "      from {} {}",
        r.source.reference,
        r.upstream_digest.short()
    );
    let platforms: Vec<String> = r.platforms.iter().map(|p| p.to_string()).collect();
    if !platforms.is_empty() {
        let _ = writeln!(out, "      platforms: {}", platforms.join(", "));
    }
    if r.rewritten() {
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
    for warning in &r.warnings {
        let _ = writeln!(out, "      warning: {warning}");
    }
}

/// The plan, image by image, with a summary line.
pub fn plan(plan: &Plan, target: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan for {target}:\n");
    for image in &plan.images {
        image_lines(&mut out, image);
    }
    let t = plan.totals();
    let _ = writeln!(
        out,
        "\nPlan: {} to create, {} to update, {} unchanged; fetch {}, push {}{}.",
        t.create,
        t.update,
        t.unchanged,
        blobs(t.fetch),
        blobs(t.push),
        if t.mount.blobs > 0 {
            format!(", mount {}", blobs(t.mount))
        } else {
            String::new()
        }
    );
    out
}

/// The closing summary of an apply.
pub fn apply_summary(plan: &Plan, outcome: &Outcome, requests: u64, elapsed: Duration) -> String {
    let t = plan.totals();
    let failed = outcome.failures.len();
    let headline = if failed == 0 {
        "Apply complete"
    } else {
        "Apply FAILED"
    };
    let mut out = format!(
        "{headline}: {} created, {} updated, {} unchanged.\n",
        t.create, t.update, t.unchanged
    );
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
    out
}
