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

/// Writes `text` to stdout. A closed pipe (`mirror plan | head`) is not an error worth a panic.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes bytes to stdout exactly as given (`inspect --raw`).
pub fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
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
