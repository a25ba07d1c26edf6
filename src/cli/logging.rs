//! tracing on stderr: `-v` levels or `RUST_LOG`, no ANSI into pipes or with `NO_COLOR` (pitfall
//! P13), and log lines printed above the progress bars through tracing-indicatif's writer so the
//! two never garble each other. Only mirror's own events show by default (see `init`).

use super::output::note;
use std::io::IsTerminal;

use tracing_indicatif::filter::{hide_indicatif_span_fields, IndicatifFilter};
use tracing_indicatif::IndicatifLayer;
use tracing_subscriber::fmt::format::DefaultFields;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::output::stderr_color;
use super::{Cli, ProgressMode};

/// Installs the global subscriber; returns whether progress bars are to be drawn.
pub fn init(cli: &Cli) -> bool {
    // Bars are drawn only on a terminal (indicatif hides them anywhere else), so `bars` into a
    // pipe or file falls back to plain lines rather than showing nothing.
    let bars = !cli.quiet
        && match cli.progress {
            ProgressMode::Bars | ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Plain | ProgressMode::None => false,
        };
    // Dependencies' own log lines (rustls' "failed to verify TLS certificate", hyper's) only from
    // -vv on: by default the error mirror reports says the same with the host and a remedy.
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "off,mirror=error",
        (false, 0) => "off,mirror=warn",
        (false, 1) => "off,mirror=info",
        (false, 2) => "warn,mirror=debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.is_empty() => EnvFilter::try_new(text),
        _ => EnvFilter::try_new(default),
    }
    .unwrap_or_else(|_| EnvFilter::new(default));
    let indicatif = IndicatifLayer::new()
        .with_span_field_formatter(hide_indicatif_span_fields(DefaultFields::new()))
        .with_max_progress_bars(6, None);
    let writer = if bars {
        BoxMakeWriter::new(indicatif.get_stderr_writer())
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(stderr_color())
        .with_target(cli.verbose >= 2)
        .without_time()
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(fmt);
    // Bars exist only for spans that ask for one (`indicatif.pb_show`), i.e. the apply reporter's.
    let result = if bars {
        registry
            .with(indicatif.with_filter(IndicatifFilter::new(false)))
            .try_init()
    } else {
        registry.try_init()
    };
    if let Err(e) = result {
        note!("warning: logging not set up: {e}");
    }
    bars
}
