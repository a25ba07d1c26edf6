//! `mirror apply`: the plan on stdout, progress on stderr (bars or lines), then the summary.

use super::output::note;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::output::{print_stdout, stdout_color, to_json};
use super::{diagnostics, lock, progress, reporter, Cli, ProgressMode};
use crate::execute::{Options, Reporter, RetryPolicy};
use crate::ops::saved::SavedPlan;
use crate::ops::{LockMode, Session};
use crate::plan::Plan;
use crate::report;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `mirror plan -o FILE`: applied only if nothing it was made from changed.
    #[arg(value_name = "PLAN")]
    pub plan: Option<std::path::PathBuf>,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    /// Transfers at once.
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
}

pub async fn run(
    session: &Session,
    args: &ApplyArgs,
    cli: &Cli,
    bars: bool,
) -> miette::Result<ExitCode> {
    let started = Instant::now();
    let mode = LockMode {
        locked: cli.locked,
        ..LockMode::default()
    };
    // Until the plan is made a stop request simply drops the work (nothing was transferred);
    // from then on `apply_until` stops transfers cleanly.
    let planning = async {
        match &args.plan {
            None => {
                let resolution = lock::resolve_and_write(session, &mode, cli.quiet).await?;
                session
                    .plan_resolved(resolution.resolved, resolution.archives)
                    .await
                    .map_err(diagnostics::ops)
            }
            Some(path) => saved_plan(session, &mode, path).await,
        }
    };
    let plan = match super::interruptible(planning).await {
        Ok(plan) => plan?,
        Err(stop) => return Ok(ExitCode::from(stop.exit_code())),
    };
    let style = report::human::Style::new(stdout_color());
    if !args.json && !cli.quiet {
        print_stdout(&report::human::plan(&plan, &session.target_name, style));
    }
    let silent = cli.quiet
        || cli.progress == ProgressMode::None
        || (args.json && cli.progress == ProgressMode::Auto);
    let reporter: Arc<dyn Reporter> = if silent {
        Arc::new(crate::execute::Silent)
    } else if bars {
        Arc::new(progress::Bars::new(&plan))
    } else {
        Arc::new(reporter::PlainReporter::new(&plan))
    };
    let options = Options {
        jobs: usize::from(args.jobs),
        retry: RetryPolicy {
            retries: cli.retries,
            ..RetryPolicy::default()
        },
    };
    let stop = std::sync::OnceLock::new();
    let stop_requested = || async {
        let _ = stop.set(super::signals::requested().await);
    };
    let mut outcome = session
        .apply_until(&plan, options, reporter.clone(), stop_requested())
        .await;
    // Bars are cleared when the reporter goes; the summary must come after them.
    drop(reporter);
    // A bundle target is written only when everything went in: it must hold exactly the plan.
    // A stop while it is written leaves no bundle, and the run counts as interrupted.
    let mut bundle_stopped = false;
    let bundle = if outcome.complete() {
        match session.finish(stop_requested()).await {
            Ok(written) => written,
            Err(_) if stop.get().is_some() => {
                // Nothing is in the bundle until it is written: no image counts as done.
                outcome.interrupted = true;
                outcome
                    .roots_pushed
                    .iter_mut()
                    .for_each(|done| *done = false);
                bundle_stopped = true;
                None
            }
            Err(e) => return Err(diagnostics::ops(e)),
        }
    } else {
        None
    };
    let requests = session.requests();
    if args.json {
        let mut doc = report::json::apply(&plan, &outcome, requests);
        doc.bundle = bundle.as_ref().map(report::bundle::written_doc);
        print_stdout(&to_json(&doc));
    } else {
        print_stdout(&report::human::apply_summary(
            &plan,
            &outcome,
            requests,
            started.elapsed(),
            style,
        ));
        if let Some(written) = &bundle {
            print_stdout(&report::bundle::written(written));
        }
    }
    if outcome.interrupted {
        let stop = stop
            .get()
            .copied()
            .unwrap_or(super::signals::Stop::Interrupt);
        if bundle_stopped {
            note!(
                "{}: no bundle was written (everything it needs is in the cache). Run `mirror \
                 apply` again to write it.",
                stop.name()
            );
        } else {
            note!(
                "{}: transfers in flight were cancelled (the bytes they had downloaded are kept \
                 in the cache for the next run) and tags of unfinished images were not moved. \
                 Run `mirror apply` again to finish.",
                stop.name()
            );
        }
        return Ok(ExitCode::from(stop.exit_code()));
    }
    if outcome.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(diagnostics::failures(&plan, &outcome))
    }
}

/// A saved plan: resolved again from the same lock (never written here), planned again, and
/// refused unless every input is what the plan saw.
async fn saved_plan(
    session: &Session,
    mode: &LockMode,
    path: &std::path::Path,
) -> miette::Result<Plan> {
    let saved = SavedPlan::load(path).map_err(|e| diagnostics::ops(e.into()))?;
    let resolution = session.resolve(mode).await.map_err(diagnostics::ops)?;
    let plan = session
        .plan_resolved(resolution.resolved.clone(), resolution.archives)
        .await
        .map_err(diagnostics::ops)?;
    let now = session
        .plan_inputs(&resolution, &plan)
        .map_err(|e| diagnostics::ops(e.into()))?;
    saved
        .check(path, &now)
        .map_err(|e| diagnostics::ops(e.into()))?;
    Ok(plan)
}
