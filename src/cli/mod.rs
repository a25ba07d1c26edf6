//! The edge: the only code that knows clap, stdout/stderr, exit codes and miette.
//!
//! One file per command (`plan.rs`, `apply.rs`, `inspect.rs`, …), each thin over `ops`/`report`;
//! `output.rs` writes to stdout, `logging.rs` sets up tracing, `progress.rs` and `reporter.rs`
//! turn executor events into bars or lines on stderr, `diagnostics.rs` builds miette reports.

mod apply;
mod bundle;
mod cache;
mod completions;
mod diagnostics;
mod init;
mod inspect;
mod lock;
mod logging;
mod output;
mod plan;
mod progress;
mod registries_yaml;
mod reporter;
mod schema;
mod signals;

use output::note;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::environment::Environment;
use crate::execute::RetryPolicy;
use crate::ops::{self, Session};

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

    /// Whether `-f`/`--file` was given (not the default): a named file that is missing is an
    /// error for every command, never a reason to fall back to defaults.
    #[arg(skip)]
    pub file_given: bool,

    /// Print nothing but results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Retries for a failed request (network errors, 5xx, 429, a body cut short) before giving
    /// up, in every phase: resolving tags, probing the target, and transfers.
    #[arg(long, global = true, default_value_t = 5)]
    pub retries: u32,

    /// Seconds a request may go without receiving a byte before it fails (and is retried);
    /// connecting is given at most 15 s. A transfer that keeps flowing is never cut off.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,

    /// More log output on stderr (-v: info, -vv: debug, -vvv: trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// How to show progress on stderr: bars on a terminal, lines otherwise (`auto`).
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// Report an archive image whose config contradicts the archive's `platform` or file name
    /// as a warning instead of an error.
    #[arg(long, global = true)]
    pub allow_platform_mismatch: bool,

    /// Fail instead of changing mirrorfile.lock (an entry missing, or the Mirrorfile edited).
    #[arg(long, global = true)]
    pub locked: bool,

    /// Use only the lock and the cache: no request to any source registry (the target is still
    /// contacted). Anything not cached is an error naming the missing digests.
    #[arg(long, global = true)]
    pub offline: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Progress bars (overall bytes and images, the largest transfers, ETA); plain lines when
    /// stderr is not a terminal, where bars cannot be drawn.
    Bars,
    /// One line per event, for logs and CI.
    Plain,
    /// No progress at all.
    None,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `apply` would change on the target and how many bytes would move.
    Plan(plan::PlanArgs),
    /// Make the target match the Mirrorfile (or run a plan saved with `plan -o`).
    Apply(apply::ApplyArgs),
    /// Resolve every source and write mirrorfile.lock, without touching the target.
    Lock(lock::LockArgs),
    /// Work with bundles (the one file carried across an air gap).
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Show an image: platforms with digests, sizes, created time and layers (or its raw bytes).
    Inspect(inspect::InspectArgs),
    /// Write a commented starter Mirrorfile (refuses to overwrite one).
    Init(init::InitArgs),
    /// Print the JSON Schema of the Mirrorfile (committed as schemas/mirrorfile.schema.json).
    Schema,
    /// Print the k3s/RKE2 registries.yaml that makes a cluster pull these images from the target.
    RegistriesYaml(registries_yaml::RegistriesYamlArgs),
    /// Check the cache (`verify`) or delete what no applied image needs (`gc`).
    Cache(cache::CacheArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), e.g. `mirror man > mirror.1`.
    Man,
}

/// Parses the command line, runs the command, and maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    crate::registry::install_crypto_provider();
    diagnostics::install_hook();
    let bars = logging::init(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            note!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.wants_json();
    match runtime.block_on(run(cli, bars)) {
        Ok(code) => {
            if let Some(stop) = signals::requested_now().filter(|_| json) {
                output::print_json_stopped(stop);
            }
            code
        }
        Err(report) => {
            note!("{report:?}");
            if json {
                output::print_json_error(&report);
            }
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Whether the command watches for Ctrl-C / SIGTERM itself ([`signals`]).
    fn stops_in_order(&self) -> bool {
        matches!(
            self,
            Command::Apply(_)
                | Command::Plan(_)
                | Command::Lock(_)
                | Command::Inspect(_)
                | Command::Bundle(_)
        )
    }
}

impl Cli {
    /// Whether the command writes a JSON document to stdout (`--json`).
    fn wants_json(&self) -> bool {
        match &self.command {
            Command::Plan(args) => args.json,
            Command::Apply(args) => args.json,
            Command::Inspect(args) => args.json,
            Command::Bundle(bundle::BundleCommand::Inspect(args)) => args.json,
            Command::Cache(args) => match &args.command {
                cache::CacheCommand::Verify { json, .. } | cache::CacheCommand::Gc { json, .. } => {
                    *json
                }
            },
            _ => false,
        }
    }
}

/// [`Cli`] from the process's arguments, noting whether `-f` was given.
fn parse_command_line() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    cli.file_given = given_anywhere(&matches, "file");
    Ok(cli)
}

/// Whether the global argument `id` came from the command line, at any subcommand level.
fn given_anywhere(matches: &clap::ArgMatches, id: &str) -> bool {
    let here = matches
        .value_source(id)
        .is_some_and(|source| source == clap::parser::ValueSource::CommandLine);
    here || matches
        .subcommand()
        .is_some_and(|(_, sub)| given_anywhere(sub, id))
}

/// Prints a command-line error (or `--help`/`--version`). A usage error exits 1, like every
/// other error: clap's usual 2 would read as "changes pending" under `plan --detailed-exitcode`,
/// so a typo in CI would look like an out-of-date mirror.
fn usage(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::SUCCESS;
    }
    // A script that asked for JSON parses stdout: it gets the error document there too.
    let asked_for_json = std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json");
    if asked_for_json {
        output::print_json_usage_error(&e.render().to_string());
    }
    ExitCode::FAILURE
}

async fn run(cli: Cli, bars: bool) -> miette::Result<ExitCode> {
    // Commands that run on the async runtime stop in order; the synchronous ones (cache
    // verify/gc, init, schema, …) keep the signals' default action, which ends them at once.
    if cli.command.stops_in_order() {
        signals::listen();
    }
    match &cli.command {
        // apply stops its own transfers cleanly on Ctrl-C or SIGTERM; until its plan is made,
        // and for every other command, a stop request simply drops the work (temp files go with
        // it).
        Command::Apply(args) => {
            let session = match interruptible(session(&cli)).await {
                Ok(session) => session?,
                Err(stop) => return Ok(ExitCode::from(stop.exit_code())),
            };
            apply::run(&session, args, &cli, bars).await
        }
        command => match interruptible(run_other(&cli, command)).await {
            Ok(result) => result,
            Err(stop) => Ok(ExitCode::from(stop.exit_code())),
        },
    }
}

/// The result of `work`, or the stop request that came first (the future is dropped).
pub(super) async fn interruptible<T>(
    work: impl std::future::Future<Output = T>,
) -> Result<T, signals::Stop> {
    tokio::select! {
        value = work => Ok(value),
        // The listener has said so on stderr already.
        stop = signals::requested() => Err(stop),
    }
}

async fn run_other(cli: &Cli, command: &Command) -> miette::Result<ExitCode> {
    match command {
        // Dispatched by `run`, which lets apply handle Ctrl-C itself; never reached.
        Command::Apply(_) => Ok(ExitCode::FAILURE),
        Command::Plan(args) => plan::run(&session(cli).await?, args, cli).await,
        Command::Lock(args) if args.update.is_some() && cli.offline => Err(miette::miette!(
            help =
                "drop --offline to update the lock, or drop --update to check it against the cache",
            "`lock --update` asks the source registries what the tags point at now, which \
             --offline rules out"
        )),
        Command::Lock(args) => lock::run(&session(cli).await?, args, cli).await,
        Command::Bundle(command) => bundle::run(command).await,
        Command::Inspect(args) => inspect::run(cli, args).await,
        Command::Init(args) => init::run(cli, args),
        Command::Schema => schema::run(),
        Command::RegistriesYaml(args) => registries_yaml::run(cli, args),
        Command::Cache(args) => cache::run(cli, args),
        Command::Completions(args) => completions::run(args),
        Command::Man => completions::man(),
    }
}

/// The cache directory when the Mirrorfile names none.
impl Cli {
    /// `--timeout` as a duration.
    pub(crate) fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout)
    }

    /// The Mirrorfile for commands that also work without one (`inspect`, `cache`): `None`
    /// when there is none here. A file named with `-f` that is not there is an error, never a
    /// quiet fall back to defaults (for `cache gc`, the default cache without that project's
    /// lock, which would delete what the lock pins).
    pub(crate) fn optional_model(&self) -> miette::Result<Option<crate::model::Model>> {
        if self.file.exists() {
            return crate::mirrorfile::load(&self.file)
                .map(Some)
                .map_err(miette::Report::new);
        }
        if self.file_given {
            return Err(miette::miette!(
                help = "check the path, or leave out -f to go without a Mirrorfile",
                "no Mirrorfile at {}",
                self.file.display()
            ));
        }
        Ok(None)
    }
}

pub(crate) fn default_cache(env: &Environment) -> PathBuf {
    let xdg = env.path_var("XDG_CACHE_HOME");
    ops::default_cache_dir(xdg.as_deref(), env.home().as_deref())
}

/// Loads the Mirrorfile and opens cache and clients.
async fn session(cli: &Cli) -> miette::Result<Session> {
    let mut model = crate::mirrorfile::load(&cli.file).map_err(miette::Report::new)?;
    model.idle_timeout = Some(cli.idle_timeout());
    for warning in &model.warnings {
        tracing::warn!("{warning}");
    }
    if cli.allow_platform_mismatch {
        for archive in &mut model.archives {
            archive.allow_platform_mismatch = true;
        }
    }
    // The environment is read here, once; credentials and config locations come from it.
    let env = Environment::from_process();
    let retry = RetryPolicy {
        retries: cli.retries,
        ..RetryPolicy::default()
    };
    Session::open_with(model, &default_cache(&env), env, retry, cli.offline)
        .await
        .map_err(diagnostics::ops)
}
