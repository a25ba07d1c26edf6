//! `mirror cache verify` and `mirror cache gc`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use miette::miette;

use super::output::{print_stdout, to_json};
use super::Cli;
use crate::oci::Digest;
use crate::ops::cache;
use crate::report::human_bytes;

#[derive(Debug, Args)]
pub struct CacheArgs {
    /// The cache directory (default: the Mirrorfile's `[cache] dir`, else `$XDG_CACHE_HOME/mirror`).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Re-hash every cached blob and report those whose bytes do not match their digest.
    Verify {
        /// Delete the bad blobs (the next apply fetches them again).
        #[arg(long)]
        remove: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete what no recorded root reaches (a dry run that lists it unless `--apply`).
    Gc {
        /// Really delete.
        #[arg(long)]
        apply: bool,
        /// Keep this digest and everything it reaches, too (repeatable).
        #[arg(long, value_name = "DIGEST")]
        keep: Vec<Digest>,
        /// Keep everything this lock file pins (repeatable; the Mirrorfile's own lock, when it
        /// has one, always counts).
        #[arg(long, value_name = "FILE")]
        lock: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: &Cli, args: &CacheArgs) -> miette::Result<ExitCode> {
    let model = match args.dir {
        Some(_) => None,
        None => cli.optional_model()?,
    };
    let dir = cache::cache_dir(
        args.dir.as_deref(),
        model.as_ref(),
        &super::default_cache(&crate::environment::Environment::from_process()),
    );
    // Verifying or collecting a cache that is not there would create an empty one and report
    // all is well: a mistyped --dir must say so instead.
    if !dir.is_dir() {
        return Err(miette!(
            help = "name the cache directory with --dir, or run where the Mirrorfile is",
            "there is no cache at {}",
            dir.display()
        ));
    }
    let store_error = |e| miette!("{}", super::diagnostics::chain(&e));
    match &args.command {
        CacheCommand::Verify { remove, json } => {
            let report = cache::verify(&dir, *remove).map_err(store_error)?;
            if *json {
                print_stdout(&to_json(&report));
            } else {
                let mut text = String::new();
                for bad in &report.bad {
                    let expected = bad
                        .expected
                        .as_ref()
                        .map_or_else(|| "a digest".to_string(), ToString::to_string);
                    text.push_str(&format!(
                        "bad: {} should hash to {expected} but hashes to {} ({}){}\n",
                        bad.path.display(),
                        bad.actual,
                        human_bytes(bad.size),
                        if bad.removed { "; removed" } else { "" }
                    ));
                }
                text.push_str(&format!(
                    "Checked {} blobs ({}) in {}: {} bad.\n",
                    report.checked,
                    human_bytes(report.bytes),
                    dir.display(),
                    report.bad.len()
                ));
                print_stdout(&text);
            }
            if report.bad.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else if *remove {
                Err(miette!(
                    help = "the next `mirror apply` fetches them again",
                    "{} damaged blob(s) were removed from the cache",
                    report.bad.len()
                ))
            } else {
                Err(miette!(
                    help = "run `mirror cache verify --remove` to delete them",
                    "{} damaged blob(s) in the cache",
                    report.bad.len()
                ))
            }
        }
        CacheCommand::Gc {
            apply,
            keep,
            lock,
            json,
        } => {
            let mut roots = keep.clone();
            let own_lock = crate::lock::path_for(&cli.file);
            let mut locks = lock.clone();
            if cli.file.exists() && own_lock.exists() && !locks.contains(&own_lock) {
                locks.push(own_lock);
            }
            for path in &locks {
                let pinned = cache::lock_roots(path)
                    .map_err(|e| miette!("{}", super::diagnostics::chain(&e)))?;
                roots.extend(pinned);
            }
            let report = cache::gc(&dir, &roots, *apply).map_err(store_error)?;
            if *json {
                print_stdout(&to_json(&report));
            } else {
                let mut text = String::new();
                for g in &report.garbage {
                    text.push_str(&format!(
                        "{} {} ({})\n",
                        if *apply { "removed" } else { "would remove" },
                        g.path.display(),
                        human_bytes(g.size)
                    ));
                }
                let partials = match report.kept_partial {
                    0 => String::new(),
                    n => format!(
                        ", and {n} partial download{} ({}) the next run resumes",
                        if n == 1 { "" } else { "s" },
                        human_bytes(report.kept_partial_bytes)
                    ),
                };
                text.push_str(&format!(
                    "{} {} files ({}); kept {} blobs ({}) reachable from {} roots{partials}.{}\n",
                    if *apply { "Removed" } else { "Would remove" },
                    report.garbage.len(),
                    human_bytes(report.garbage_bytes),
                    report.kept,
                    human_bytes(report.kept_bytes),
                    report.roots,
                    if *apply {
                        ""
                    } else {
                        " Run with --apply to delete."
                    }
                ));
                print_stdout(&text);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
