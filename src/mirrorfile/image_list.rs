//! k3s-style image-list files: one image reference per line.
//!
//! This is the format k3s and RKE2 publish with each release (`k3s-images.txt`), so users can point
//! at the file they downloaded instead of copying it into the Mirrorfile. Blank lines and `#`
//! comments (a whole line, or trailing after whitespace) are ignored, and CRLF endings are
//! tolerated because such files are often edited on Windows. A `#` glued to a word is not a
//! comment, so a malformed reference is reported rather than silently truncated.
//!
//! Every entry keeps its 1-based line and the byte span of the reference, so errors (here and
//! later, in conflicts) point into the list file itself, not at the Mirrorfile entry that named it.

use std::ops::Range;

use super::error::{ErrorKind, MirrorfileError, SourceFile};
use crate::oci::Reference;

/// One reference read from a list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListEntry {
    pub reference: Reference,
    /// 1-based line number in the list file.
    pub line: usize,
    /// Byte span of the reference text in the list file.
    pub span: Range<usize>,
}

/// Parses every reference in `file`. Every invalid line is reported, not only the first: the
/// first is the error, the others follow it as related diagnostics.
pub(crate) fn parse(file: &SourceFile) -> Result<Vec<ListEntry>, MirrorfileError> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut start = 0;
    for (index, raw) in file.text.split_inclusive('\n').enumerate() {
        let line_start = start;
        start += raw.len();
        let content = raw.strip_suffix('\n').unwrap_or(raw);
        let content = content.strip_suffix('\r').unwrap_or(content);
        let content = &content[..comment_start(content)];
        let value = content.trim();
        if value.is_empty() {
            continue;
        }
        let offset = line_start + (content.len() - content.trim_start().len());
        let span = offset..offset + value.len();
        let parsed = value.parse::<Reference>().map_err(|e| {
            file.error(
                ErrorKind::Invalid,
                span.clone(),
                format!("invalid image reference in list file: {e}"),
                "not a valid image reference",
            )
            .with_help(
                "each line must be one reference such as `docker.io/rancher/mirrored-pause:3.6`; \
                 use `#` (after a space) for comments",
            )
        });
        match parsed {
            Ok(reference) => entries.push(ListEntry {
                reference,
                line: index + 1,
                span,
            }),
            Err(e) => errors.push(e),
        }
    }
    match MirrorfileError::joined(errors) {
        Some(error) => Err(error),
        None => Ok(entries),
    }
}

/// Where a comment starts: a `#` at the start of the line or after whitespace.
fn comment_start(line: &str) -> usize {
    let bytes = line.as_bytes();
    bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .map(|(i, _)| i)
        .unwrap_or(line.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<(String, usize, String)> {
        let file = SourceFile::new("list.txt", text);
        parse(&file)
            .expect("parses")
            .into_iter()
            .map(|e| (e.reference.to_string(), e.line, text[e.span].to_string()))
            .collect()
    }

    #[test]
    fn comments_blanks_and_crlf() {
        let text = "# k3s images\r\n\r\ndocker.io/rancher/mirrored-pause:3.6\r\n  alpine:3.20   # trailing\r\n\t\n#x\nghcr.io/a/b:1";
        assert_eq!(
            refs(text),
            vec![
                (
                    "docker.io/rancher/mirrored-pause:3.6".to_string(),
                    3,
                    "docker.io/rancher/mirrored-pause:3.6".to_string()
                ),
                (
                    "docker.io/library/alpine:3.20".to_string(),
                    4,
                    "alpine:3.20".to_string()
                ),
                ("ghcr.io/a/b:1".to_string(), 7, "ghcr.io/a/b:1".to_string()),
            ]
        );
    }

    #[test]
    fn empty_file_has_no_entries() {
        assert!(refs("").is_empty());
        assert!(refs("# only comments\n\n").is_empty());
    }

    #[test]
    fn bad_line_points_at_its_line() {
        let file = SourceFile::new("list.txt", "alpine\nNot/Valid:1\n");
        let err = parse(&file).expect_err("bad line");
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let labels: Vec<_> = miette::Diagnostic::labels(&err)
            .into_iter()
            .flatten()
            .map(|l| (l.offset(), l.len()))
            .collect();
        assert_eq!(labels, vec![(7, 11)]);
    }

    #[test]
    fn every_bad_line_is_reported() {
        let file = SourceFile::new("list.txt", "alpine\nnot@valid\nnginx:1\nfoo:bar:baz\n");
        let err = parse(&file).expect_err("bad lines");
        let line_of = |d: &dyn miette::Diagnostic| {
            let label = d.labels().and_then(|mut l| l.next()).map(|l| *l.inner());
            label.map(|span| file.line_of(span.offset()))
        };
        let mut lines = vec![line_of(&err)];
        if let Some(related) = miette::Diagnostic::related(&err) {
            lines.extend(related.map(line_of));
        }
        assert_eq!(lines, vec![Some(2), Some(4)]);
    }

    #[test]
    fn hash_inside_a_word_is_not_a_comment() {
        let file = SourceFile::new("list.txt", "alpine#3\n");
        assert!(parse(&file).is_err());
    }
}
