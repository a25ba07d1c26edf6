//! Writing results to stdout, and whether it may be coloured.

use std::io::{IsTerminal, Write};

/// `eprintln!` that ignores a closed stderr (`mirror plan 2>&1 | head`, quitting `less`):
/// `eprintln!` panics there, turning a finished run into exit 101.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use note;

/// Whether anything was written to stdout yet: a `--json` run that fails before its report
/// prints an error document instead (see [`print_json_error`]), never a second document.
static WROTE_STDOUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes `text` to stdout. A closed pipe (`mirror plan | head`) is not an error worth a panic.
pub fn print_stdout(text: &str) {
    WROTE_STDOUT.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes bytes to stdout exactly as given (`inspect --raw`).
pub fn print_bytes(bytes: &[u8]) {
    WROTE_STDOUT.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// For a `--json` command that failed before writing its report: `{"version", "error":
/// {"message", "help", "location", "details"}}` on stdout, so CI that parses stdout reads why
/// (the diagnostic still goes to stderr). `location` is where in which file the error is
/// (a Mirrorfile, list or lock error), `details` one per image or entry at fault (for a
/// Mirrorfile with several mistakes, each of them with its own location). Nothing when a
/// document was already written (apply's report of a run with failed tasks is that run's
/// document).
pub fn print_json_error(report: &miette::Report) {
    let details = match report.downcast_ref::<super::diagnostics::Unresolved>() {
        Some(unresolved) => unresolved.details.clone(),
        None => super::diagnostics::related_details(report.as_ref()),
    };
    print_json_error_doc(
        &report.to_string(),
        report.help().map(|h| h.to_string()),
        super::diagnostics::location(report.as_ref()),
        details,
    );
}

/// The error document for a `--json` command line clap refused (an unknown flag, a bad value):
/// the message is clap's first line, its advice the rest.
pub fn print_json_usage_error(rendered: &str) {
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let message = lines
        .next()
        .map(|l| l.trim().trim_start_matches("error: ").to_string())
        .unwrap_or_default();
    let help = lines.map(str::trim).collect::<Vec<_>>().join("; ");
    print_json_error_doc(
        &message,
        Some(help).filter(|h| !h.is_empty()),
        None,
        Vec::new(),
    );
}

/// The error document for a `--json` command stopped (Ctrl-C, SIGTERM) before its report.
pub fn print_json_stopped(stop: super::signals::Stop) {
    print_json_error_doc(
        &format!(
            "{} before the report was made; nothing was transferred",
            stop.name()
        ),
        Some("run the command again".to_string()),
        None,
        Vec::new(),
    );
}

fn print_json_error_doc(
    message: &str,
    help: Option<String>,
    location: Option<super::diagnostics::Location>,
    details: Vec<super::diagnostics::Detail>,
) {
    if WROTE_STDOUT.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let doc = serde_json::json!({
        "version": crate::report::json::VERSION,
        "error": {
            "message": message,
            "help": help,
            "location": location,
            "details": details,
        },
    });
    print_stdout(&to_json(&doc));
}

/// Pretty JSON with a trailing newline.
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        Err(e) => format!("{{\"error\":\"{e}\"}}\n"),
    }
}

/// `NO_COLOR` set to anything non-empty (<https://no-color.org>).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Colour on stdout: only on a terminal, and never with `NO_COLOR`.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && !no_color()
}

/// Colour on stderr: only on a terminal, and never with `NO_COLOR`.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && !no_color()
}
