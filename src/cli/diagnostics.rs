//! Every error becomes a miette report here, with a `help:` line saying what to do next.

use super::output::note;
use miette::{miette, Report};

use crate::execute::{Outcome, TaskError};
use crate::ops::OpsError;
use crate::plan::Plan;

pub fn install_hook() {
    let _ = miette::set_hook(Box::new(|_| {
        // No escapes into pipes and files, nor with NO_COLOR (pitfall P13).
        let color = super::output::stderr_color();
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .build(),
        )
    }));
}

/// An error from a command's stages. Resolution errors are printed one report each (so every
/// broken entry is shown with its own help), followed by the returned summary report.
pub fn ops(error: OpsError) -> Report {
    match error {
        OpsError::Resolve(errors) => {
            for error in &errors {
                let report = match error.help() {
                    Some(help) => miette!(help = help, "{}", chain(error)),
                    None => miette!("{}", chain(error)),
                };
                note!("{report:?}");
            }
            Report::new(Unresolved {
                details: errors
                    .iter()
                    .map(|e| Detail {
                        message: chain(e),
                        help: e.help(),
                        // Where the entry is declared (a Mirrorfile or list line).
                        location: (e.origin.line > 0).then(|| Location {
                            file: e.origin.file.display().to_string(),
                            line: e.origin.line,
                            column: None,
                        }),
                    })
                    .collect(),
            })
        }
        // A damaged lock points at its line, as Mirrorfile errors do.
        OpsError::Lock(error) => Report::new(error),
        other => {
            let message = chain(&other);
            miette!(help = "nothing was transferred", "{message}")
        }
    }
}

/// The summary after each unresolved entry was reported on its own; it keeps their messages
/// and help for `--json`'s error document (`details`).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{}", crate::ops::unresolved_summary(details.len()))]
#[diagnostic(help("nothing was transferred; fix the entries above and run again"))]
pub struct Unresolved {
    pub details: Vec<Detail>,
}

/// One entry at fault, as `--json` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Detail {
    pub message: String,
    pub help: Option<String>,
    /// Where in a file, for errors that point into one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// A position in a file, as `--json` error documents give it (1-based; the column is `null`
/// for an entry known by its line only).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: Option<usize>,
}

/// Where a diagnostic points, for machines: its first label in its source file, or `None` when
/// it points into no file.
pub fn location(diagnostic: &dyn miette::Diagnostic) -> Option<Location> {
    let source = diagnostic.source_code()?;
    let label = diagnostic.labels()?.next()?;
    let contents = source.read_span(label.inner(), 0, 0).ok()?;
    Some(Location {
        file: contents.name()?.to_string(),
        line: contents.line() + 1,
        column: Some(contents.column() + 1),
    })
}

/// For a diagnostic with related ones (a Mirrorfile with several mistakes): it and each related
/// one as a [`Detail`]; nothing for a diagnostic that stands alone.
pub fn related_details(diagnostic: &dyn miette::Diagnostic) -> Vec<Detail> {
    let Some(related) = diagnostic.related() else {
        return Vec::new();
    };
    let related: Vec<&dyn miette::Diagnostic> = related.collect();
    if related.is_empty() {
        return Vec::new();
    }
    std::iter::once(diagnostic)
        .chain(related)
        .map(|d| Detail {
            message: d.to_string(),
            help: d.help().map(|h| h.to_string()),
            location: location(d),
        })
        .collect()
}

/// The failures of an apply: each real failure on its line, and tasks that failed only because
/// a host had already been given up on ([`TaskError::HostDown`]) as one line per host.
pub fn failures(plan: &Plan, outcome: &Outcome) -> Report {
    let mut lines = Vec::new();
    // host → (tasks skipped, why the host was given up on), in order of first appearance.
    let mut down: Vec<(&str, usize, &str)> = Vec::new();
    for f in &outcome.failures {
        if let TaskError::HostDown { host, cause } = &f.error {
            match down.iter_mut().find(|(h, _, _)| h == host) {
                Some(entry) => entry.1 += 1,
                None => down.push((host, 1, cause)),
            }
            continue;
        }
        let image = plan
            .images
            .get(f.image)
            .map(|i| format!("{} → {}", i.resolved.source.display(), i.target))
            .unwrap_or_default();
        lines.push(format!("  × {image}: {}: {}", f.task, chain(&f.error)));
    }
    let failed = lines.len();
    let skipped: usize = down.iter().map(|(_, n, _)| n).sum();
    for (host, n, cause) in &down {
        let more = if failed > 0 { " more" } else { "" };
        lines.push(format!(
            "  × {n}{more} task(s) skipped: {host} is unreachable ({})",
            escape_controls(cause)
        ));
    }
    let headline = match (failed, skipped) {
        (_, 0) => format!("{failed} task(s) failed"),
        (0, _) => format!("{skipped} task(s) failed on an unreachable host"),
        _ => format!("{failed} task(s) failed, {skipped} more skipped on an unreachable host"),
    };
    miette!(
        help = "tags of failed images were not moved; run `mirror apply` again to finish (nothing already done is repeated)",
        "{headline}:\n{}",
        lines.join("\n")
    )
}

/// `error: cause: cause`, skipping causes whose text the outer message already contains.
/// Control characters are escaped: messages can quote untrusted input (a tar entry name from an
/// archive carried across an air gap), which must never drive the terminal.
pub fn chain(error: &dyn std::error::Error) -> String {
    escape_controls(&chain_raw(error))
}

/// Replaces control characters other than newline and tab with `\u{…}` escapes.
pub fn escape_controls(text: &str) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn chain_raw(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_untrusted_input_are_escaped() {
        let hostile = "name \u{1b}[2J\u{1b}[H\u{7} end\nnext";
        let shown = escape_controls(hostile);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown}"
        );
        assert!(
            shown.contains("\\u{1b}[2J") && shown.ends_with(" end\nnext"),
            "{shown}"
        );
    }
}
