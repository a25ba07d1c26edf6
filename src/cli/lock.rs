//! `mirror lock [--update [REF…]]`, and the lock notes every command prints on stderr.

use super::output::note;
use std::process::ExitCode;

use clap::Args;

use super::output::print_stdout;
use super::{diagnostics, Cli};
use crate::lock::Change;
use crate::ops::{LockMode, Resolution, Session};

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Resolve entries again: all of them, or those matching REF (`registry/repo:tag`, or
    /// `registry/repo` for every tag of a repository); prints what moved.
    #[arg(long, num_args = 0.., value_name = "REF")]
    pub update: Option<Vec<String>>,
}

/// Resolves under the lock, writes it when it changed, and says so on stderr.
pub async fn resolve_and_write(
    session: &Session,
    mode: &LockMode,
    quiet: bool,
) -> miette::Result<Resolution> {
    let resolution = session.resolve(mode).await.map_err(diagnostics::ops)?;
    let wrote = session
        .write_lock(&resolution)
        .map_err(miette::Report::new)?;
    if !quiet {
        for warning in &resolution.warnings {
            note!("warning: {warning}");
        }
        if wrote {
            note!("{}", wrote_line(&resolution));
        }
    }
    Ok(resolution)
}

/// `N image(s) pinned`, and the local sources recorded when there are any.
fn contents(resolution: &Resolution) -> String {
    let lock = &resolution.lock;
    let mut out = format!("{} image(s) pinned", lock.images.len());
    let (archives, bundles) = (lock.archives.len(), lock.bundles.len());
    if archives + bundles > 0 {
        out.push_str(&format!(
            "; {archives} archive(s) and {bundles} bundle(s) recorded"
        ));
    }
    out
}

fn wrote_line(resolution: &Resolution) -> String {
    let name = resolution.lock_path.display();
    if resolution.previous.is_none() {
        return format!("Wrote {name}: {}.", contents(resolution));
    }
    let count = |f: fn(&Change) -> bool| resolution.changes.iter().filter(|c| f(c)).count();
    let added = count(|c| {
        matches!(
            c,
            Change::Added { .. } | Change::RepositoryAdded { .. } | Change::FileAdded { .. }
        )
    });
    let removed = count(|c| {
        matches!(
            c,
            Change::Removed { .. } | Change::RepositoryRemoved { .. } | Change::FileRemoved { .. }
        )
    });
    let changed = resolution.changes.len() - added - removed;
    format!("Updated {name}: {added} added, {removed} removed, {changed} changed.")
}

pub async fn run(session: &Session, args: &LockArgs, cli: &Cli) -> miette::Result<ExitCode> {
    let mode = LockMode {
        update: args.update.clone(),
        locked: cli.locked,
        check_drift: false,
    };
    let resolution = session.resolve(&mode).await.map_err(diagnostics::ops)?;
    let wrote = session
        .write_lock(&resolution)
        .map_err(miette::Report::new)?;
    for warning in &resolution.warnings {
        if !cli.quiet {
            note!("warning: {warning}");
        }
    }
    let mut out = String::new();
    if args.update.is_some() {
        let moved: Vec<&Change> = resolution
            .changes
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Change::Moved { .. } | Change::Tags { .. } | Change::Derived { .. }
                )
            })
            .collect();
        if moved.is_empty() {
            out.push_str("Nothing moved upstream.\n");
        } else {
            for change in moved {
                out.push_str(&format!("{change}\n"));
            }
        }
    }
    for change in resolution.changes.iter().filter(|c| {
        !matches!(
            c,
            Change::Moved { .. } | Change::Tags { .. } | Change::Derived { .. }
        )
    }) {
        out.push_str(&format!("{change}\n"));
    }
    out.push_str(&if wrote {
        wrote_line(&resolution)
    } else {
        format!(
            "{} is up to date: {}.",
            resolution.lock_path.display(),
            contents(&resolution)
        )
    });
    out.push('\n');
    print_stdout(&out);
    Ok(ExitCode::SUCCESS)
}
