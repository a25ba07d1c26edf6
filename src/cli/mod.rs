//! The edge: the only code that knows clap, stdout/stderr, exit codes and miette.

mod diagnostics;
mod reporter;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::execute::{Options, Reporter, RetryPolicy};
use crate::ops::{self, Session};
use crate::report;

/// Declarative, reproducible, incremental mirroring of multi-architecture container images.
#[derive(Debug, Parser)]
#[command(name = "mirror", version, about, long_about = None)]
pub struct Cli {
    /// The Mirrorfile to use.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        value_name = "FILE",
        default_value = "mirrorfile.toml"
    )]
    pub file: PathBuf,

    /// Print nothing but results and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `apply` would change on the target and how many bytes would move.
    Plan(PlanArgs),
    /// Make the target match the Mirrorfile.
    Apply(ApplyArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Print the plan as JSON (see the README for its shape).
    #[arg(long)]
    pub json: bool,

    /// Exit with 2 when changes are pending, 0 when there are none (as terraform does).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    /// Transfers at once.
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Retries for a failed request (network errors, 5xx, 429) before giving up.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

/// Parses the command line, runs the command, and maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::registry::install_crypto_provider();
    diagnostics::install_hook();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> miette::Result<ExitCode> {
    let model = crate::mirrorfile::load(&cli.file).map_err(miette::Report::new)?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
    let default_cache = ops::default_cache_dir(xdg.as_deref(), home.as_deref());
    let session = Session::open(model, &default_cache)
        .await
        .map_err(diagnostics::ops)?;
    match cli.command {
        Command::Plan(args) => plan(&session, &args, cli.quiet).await,
        Command::Apply(args) => apply(&session, &args, cli.quiet).await,
    }
}

fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`mirror plan | head`) is not an error worth a panic.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        Err(e) => format!("{{\"error\":\"{e}\"}}\n"),
    }
}

async fn plan(session: &Session, args: &PlanArgs, _quiet: bool) -> miette::Result<ExitCode> {
    let plan = session.plan().await.map_err(diagnostics::ops)?;
    if args.json {
        print_stdout(&to_json(&report::json::plan(&plan)));
    } else {
        print_stdout(&report::human::plan(&plan, &session.target_name));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn apply(session: &Session, args: &ApplyArgs, quiet: bool) -> miette::Result<ExitCode> {
    let started = Instant::now();
    let plan = session.plan().await.map_err(diagnostics::ops)?;
    if !args.json && !quiet {
        print_stdout(&report::human::plan(&plan, &session.target_name));
    }
    let reporter: Arc<dyn Reporter> = if args.json || quiet {
        Arc::new(crate::execute::Silent)
    } else {
        Arc::new(reporter::PlainReporter)
    };
    let options = Options {
        jobs: usize::from(args.jobs),
        retry: RetryPolicy {
            retries: args.retries,
            ..RetryPolicy::default()
        },
    };
    let outcome = session.apply(&plan, options, reporter).await;
    let requests = session.requests();
    if args.json {
        print_stdout(&to_json(&report::json::apply(&plan, &outcome, requests)));
    } else {
        print_stdout(&report::human::apply_summary(
            &plan,
            &outcome,
            requests,
            started.elapsed(),
        ));
    }
    if outcome.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(diagnostics::failures(&plan, &outcome))
    }
}
