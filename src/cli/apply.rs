//! `mirror apply`: the plan on stdout, progress on stderr (bars or lines), then the summary.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::output::{print_stdout, stdout_color, to_json};
use super::{diagnostics, progress, reporter, Cli, ProgressMode};
use crate::execute::{Options, Reporter, RetryPolicy};
use crate::ops::Session;
use crate::report;

#[derive(Debug, Args)]
pub struct ApplyArgs {
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
    let plan = session.plan().await.map_err(diagnostics::ops)?;
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
    let outcome = session.apply(&plan, options, reporter.clone()).await;
    // Bars are cleared when the reporter goes; the summary must come after them.
    drop(reporter);
    let requests = session.requests();
    // A bundle target is written only when everything went in: it must hold exactly the plan.
    let bundle = if outcome.failures.is_empty() {
        session.finish().await.map_err(diagnostics::ops)?
    } else {
        None
    };
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
    if outcome.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(diagnostics::failures(&plan, &outcome))
    }
}
