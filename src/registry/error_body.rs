//! Error bodies of registry answers: outside data, so they can never fail to parse. A JSON body
//! (`{"errors":[{"code":..,"message":..}]}`) becomes its OCI error codes; anything else (a
//! proxy's HTML 429 page, distribution's plain-text 404) is kept as truncated text.

use std::fmt;

/// How much of a non-JSON error body is kept for the message.
const TEXT_LIMIT: usize = 200;

/// One entry of a distribution error body (`{"errors":[{"code":..,"message":..}]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: String,
    pub message: String,
}

/// What an error response said, as far as it could be understood.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ErrorBody {
    /// No body, or only whitespace.
    #[default]
    Empty,
    /// A distribution JSON error body.
    Codes(Vec<ErrorCode>),
    /// Anything else, truncated.
    Text(String),
}

impl ErrorBody {
    /// Parses a response body; never fails.
    pub fn parse(bytes: &[u8]) -> ErrorBody {
        #[derive(serde::Deserialize)]
        struct Body {
            errors: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        if let Ok(body) = serde_json::from_slice::<Body>(bytes) {
            if !body.errors.is_empty() {
                return ErrorBody::Codes(
                    body.errors
                        .into_iter()
                        .map(|e| ErrorCode {
                            code: e.code.unwrap_or_else(|| "UNKNOWN".to_string()),
                            message: e.message.unwrap_or_default(),
                        })
                        .collect(),
                );
            }
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return ErrorBody::Empty;
        }
        ErrorBody::Text(truncate(&text, TEXT_LIMIT))
    }

    /// The OCI error codes, if the body had any.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        let codes: &[ErrorCode] = match self {
            ErrorBody::Codes(codes) => codes,
            _ => &[],
        };
        codes.iter().map(|c| c.code.as_str())
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.codes().any(|c| c == code)
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorBody::Empty => Ok(()),
            ErrorBody::Text(text) => write!(f, ": {text}"),
            ErrorBody::Codes(codes) => {
                for (i, c) in codes.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    if c.message.is_empty() {
                        write!(f, "{sep}{}", c.code)?;
                    } else {
                        write!(f, "{sep}{} ({})", c.code, truncate(&c.message, TEXT_LIMIT))?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Cuts `text` to at most `limit` characters, on a character boundary.
pub(crate) fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_becomes_codes() {
        let body = ErrorBody::parse(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#);
        assert!(body.has_code("MANIFEST_UNKNOWN"));
        assert_eq!(body.to_string(), ": MANIFEST_UNKNOWN (manifest unknown)");
    }

    #[test]
    fn text_and_garbage_bodies_are_text() {
        assert_eq!(
            ErrorBody::parse(b"404 page not found\n"),
            ErrorBody::Text("404 page not found".into())
        );
        assert_eq!(ErrorBody::parse(b"  \n"), ErrorBody::Empty);
        assert!(matches!(
            ErrorBody::parse(br#"{"errors":"nope"}"#),
            ErrorBody::Text(_)
        ));
        assert!(matches!(
            ErrorBody::parse(br#"{"errors":[]}"#),
            ErrorBody::Text(_)
        ));
        let long = "é".repeat(1000);
        match ErrorBody::parse(long.as_bytes()) {
            ErrorBody::Text(t) => assert_eq!(t.chars().count(), TEXT_LIMIT + 1),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            ErrorBody::parse(&[0xff, 0xfe, 0x00]),
            ErrorBody::Text(_)
        ));
    }
}
