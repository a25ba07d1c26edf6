//! `MirrorfileError`: one error type for everything that can be wrong in a Mirrorfile or in a list
//! file it names.
//!
//! Every error carries the text of the file it points into (a [`NamedSource`]) and labelled spans,
//! so a miette report shows `file:line:column`, the offending line and a caret under the exact
//! value. The message says what is wrong in one line; `help` says what to do about it. Errors
//! that involve two places in different files (a conflict between a Mirrorfile entry and a list
//! file line) use a `related` diagnostic for the second place, since one miette label can only
//! point into one source.

use std::ops::Range;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, LabeledSpan, NamedSource};

/// The broad class of a [`MirrorfileError`], for callers and tests that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The Mirrorfile or a file it names could not be read.
    Io,
    /// The TOML itself is malformed.
    Syntax,
    /// A key that this table does not accept.
    UnknownKey,
    /// A value that is missing, of the wrong type, or not valid for its key.
    Invalid,
    /// Two declarations that cannot both hold (same target, different images).
    Conflict,
}

/// An error in a Mirrorfile or a list file, ready to be rendered by miette.
///
/// The details are boxed so `Result<_, MirrorfileError>` stays one pointer wide on the happy path.
#[derive(Debug)]
pub struct MirrorfileError {
    inner: Box<Details>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
struct Details {
    kind: ErrorKind,
    message: String,
    #[source_code]
    source_code: Option<NamedSource<String>>,
    #[label(collection)]
    labels: Vec<LabeledSpan>,
    #[help]
    help: Option<String>,
    #[related]
    related: Vec<MirrorfileError>,
    #[source]
    io: Option<std::io::Error>,
}

impl std::fmt::Display for MirrorfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::error::Error for MirrorfileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl Diagnostic for MirrorfileError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.inner.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.url()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.inner.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}

impl From<Details> for MirrorfileError {
    fn from(details: Details) -> Self {
        MirrorfileError {
            inner: Box::new(details),
        }
    }
}

impl MirrorfileError {
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The one-line message (also what `Display` prints).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// An error with no file text to point into (the Mirrorfile itself cannot be read).
    pub(crate) fn io(path: &Path, source: std::io::Error, help: &str) -> Self {
        let message = if source.kind() == std::io::ErrorKind::NotFound {
            format!("no Mirrorfile at `{}`", path.display())
        } else {
            format!("cannot read `{}`", path.display())
        };
        MirrorfileError::from(Details {
            kind: ErrorKind::Io,
            message,
            source_code: None,
            labels: Vec::new(),
            help: Some(help.to_string()),
            related: Vec::new(),
            io: Some(source),
        })
    }

    /// An image-list file that cannot be read, with no Mirrorfile around it (`mirror init --from`).
    pub(crate) fn list_io(path: &Path, source: std::io::Error, help: &str) -> Self {
        let message = if source.kind() == std::io::ErrorKind::NotFound {
            format!("no image list at `{}`", path.display())
        } else {
            format!("cannot read image list `{}`", path.display())
        };
        MirrorfileError::from(Details {
            kind: ErrorKind::Io,
            message,
            source_code: None,
            labels: Vec::new(),
            help: Some(help.to_string()),
            related: Vec::new(),
            io: Some(source),
        })
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.inner.help = Some(help.into());
        self
    }

    /// Adds a second label in the same file.
    pub(crate) fn with_label(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.inner.labels.push(labeled(span, label.into()));
        self
    }

    /// Adds a note pointing into another file (or another place worth its own snippet).
    pub(crate) fn with_related(mut self, related: MirrorfileError) -> Self {
        self.inner.related.push(related);
        self
    }

    /// Joins the errors of several entries into one report: the first is the error, every
    /// other one (and whatever it carried) follows it as a related diagnostic, one level deep.
    pub(crate) fn joined(errors: Vec<MirrorfileError>) -> Option<Self> {
        let mut errors = errors.into_iter();
        let mut first = errors.next()?;
        for mut error in errors {
            let carried = std::mem::take(&mut error.inner.related);
            first.inner.related.push(error);
            first.inner.related.extend(carried);
        }
        Some(first)
    }

    pub(crate) fn with_io(mut self, source: std::io::Error) -> Self {
        self.inner.io = Some(source);
        self
    }
}

fn labeled(span: Range<usize>, label: String) -> LabeledSpan {
    LabeledSpan::new_with_span(Some(label), span.start..span.end)
}

/// A file whose text errors can point into: the Mirrorfile or a list file.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// An error whose primary label underlines `span` in this file.
    pub fn error(
        &self,
        kind: ErrorKind,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> MirrorfileError {
        MirrorfileError::from(Details {
            kind,
            message: message.into(),
            source_code: Some(NamedSource::new(
                self.path.display().to_string(),
                self.text.clone(),
            )),
            labels: vec![labeled(span, label.into())],
            help: None,
            related: Vec::new(),
            io: None,
        })
    }

    /// An [`ErrorKind::Invalid`] error with its advice, the most common shape.
    pub fn invalid(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        label: &str,
        help: impl Into<String>,
    ) -> MirrorfileError {
        self.error(ErrorKind::Invalid, span, message, label)
            .with_help(help)
    }

    /// The 1-based line number holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// Turns a TOML parse or shape error into a pointed error with advice.
    ///
    /// serde's messages are stable and structured enough (`unknown field `x`, expected one of
    /// …`) to recover the key and the accepted alternatives, which is what the user needs to fix
    /// a typo; anything else is reported as a syntax error at toml's position.
    pub fn toml_error(&self, err: &toml::de::Error) -> MirrorfileError {
        let span = err.span().unwrap_or(0..0);
        let msg = err.message().trim().replace('\n', "; ");
        if let Some(rest) = msg.strip_prefix("unknown field ") {
            let (key, expected) = split_expected(rest);
            let valid = expected_list(expected);
            let mut help = String::new();
            if let Some(best) = closest(key, &valid) {
                help.push_str(&format!("did you mean `{best}`? "));
            }
            if valid.is_empty() {
                help.push_str("this table takes no keys");
            } else {
                let list: Vec<String> = valid.iter().map(|k| format!("`{k}`")).collect();
                help.push_str(&format!("valid keys here: {}", list.join(", ")));
            }
            return self
                .error(
                    ErrorKind::UnknownKey,
                    span,
                    format!("unknown key `{key}`"),
                    "not a key of this table",
                )
                .with_help(help);
        }
        if let Some(rest) = msg.strip_prefix("unknown variant ") {
            let (value, expected) = split_expected(rest);
            let list: Vec<String> = expected_list(expected)
                .iter()
                .map(|k| format!("`\"{k}\"`"))
                .collect();
            return self
                .error(
                    ErrorKind::Invalid,
                    span,
                    format!("invalid value `{value}`"),
                    "not an accepted value",
                )
                .with_help(format!("use one of {}", list.join(", ")));
        }
        // serde's "invalid type: X, expected Y" and "invalid value: X, expected Y".
        for (prefix, what, label) in [
            ("invalid type: ", "wrong type", "wrong type"),
            ("invalid value: ", "invalid value", "not an accepted value"),
        ] {
            if let Some(rest) = msg.strip_prefix(prefix) {
                let (found, expected) = rest
                    .split_once(", expected ")
                    .unwrap_or((rest, "something else"));
                return self
                    .error(
                        ErrorKind::Invalid,
                        span,
                        format!("{what}: found {found}, expected {expected}"),
                        label,
                    )
                    .with_help(format!("write {expected} here"));
            }
        }
        if msg == "duplicate key" {
            return self
                .error(ErrorKind::Syntax, span, "duplicate key", "set again here")
                .with_help("a key may be set only once per table; remove one of them");
        }
        self.error(
            ErrorKind::Syntax,
            span,
            format!("invalid TOML: {msg}"),
            "here",
        )
        .with_help("fix the TOML syntax at the marked position (see https://toml.io)")
    }
}

/// Splits "`x`, expected one of `a`, `b`" into ("x", "one of `a`, `b`").
fn split_expected(rest: &str) -> (&str, &str) {
    let (name, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    (name.trim_matches('`'), expected)
}

/// The backquoted names in serde's "expected" text, in order.
fn expected_list(expected: &str) -> Vec<&str> {
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The candidate nearest to `word` by edit distance, if it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("reff", &["ref", "list", "to"]), Some("ref"));
        assert_eq!(
            closest("platform", &["platforms", "index"]),
            Some("platforms")
        );
        assert_eq!(closest("zzzzzz", &["ref", "list"]), None);
        assert_eq!(expected_list("one of `a`, `b-c`"), vec!["a", "b-c"]);
    }

    #[test]
    fn line_numbers() {
        let f = SourceFile::new("x", "a\nb\nc");
        assert_eq!(f.line_of(0), 1);
        assert_eq!(f.line_of(2), 2);
        assert_eq!(f.line_of(4), 3);
    }
}
