//! `WWW-Authenticate` challenges, parsed defensively.
//!
//! The header is outside data (any registry, any proxy in between), so parsing never panics and
//! never fails a run by itself: what cannot be understood is simply not a challenge we answer.
//! The syntax work is http-auth's parser; this file only picks the scheme we can answer.

/// A parsed `WWW-Authenticate` challenge we know how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value, preferring `Bearer` over `Basic`. Unknown schemes, missing
/// realms and syntax errors give `None` (after keeping whatever parsed cleanly before the error):
/// the header is outside data and must never panic or abort a run by itself.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let mut basic = None;
    for parsed in http_auth::ChallengeParser::new(value) {
        let Ok(challenge) = parsed else { break };
        let param = |name: &str| {
            challenge
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if challenge.scheme.eq_ignore_ascii_case("bearer") {
            if let Some(realm) = param("realm").filter(|r| !r.is_empty()) {
                return Some(Challenge::Bearer {
                    realm,
                    service: param("service"),
                    scope: param("scope"),
                });
            }
        } else if challenge.scheme.eq_ignore_ascii_case("basic") && basic.is_none() {
            basic = Some(Challenge::Basic {
                realm: param("realm"),
            });
        }
    }
    basic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic() {
        let bearer = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenge(bearer),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="test""#),
            Some(Challenge::Basic {
                realm: Some("test".into())
            })
        );
        assert_eq!(
            parse_challenge("basic REALM=x"),
            Some(Challenge::Basic {
                realm: Some("x".into())
            })
        );
        let both = r#"Basic realm="a", Bearer realm="https://t/x""#;
        assert!(matches!(
            parse_challenge(both),
            Some(Challenge::Bearer { .. })
        ));
        let escaped = r#"Bearer realm="https://t/\"q\"""#;
        assert!(
            matches!(parse_challenge(escaped), Some(Challenge::Bearer { realm, .. }) if realm == "https://t/\"q\"")
        );
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        let long = "a".repeat(100_000);
        let quotes = "\"".repeat(1000);
        let nested = "Bearer realm=".repeat(500);
        let inputs = [
            "",
            " ",
            ",",
            ",,,",
            "Bearer",
            "Bearer realm",
            "Bearer realm=",
            "Bearer realm=\"",
            "Bearer realm=\"\\",
            "Bearer realm=\"\"",
            "Bearer service=x",
            "Negotiate abc==",
            "Digest realm=x, nonce=y",
            "=====",
            "Bearer realm=\"x\",,,,scope=",
            "\u{0}\u{1}\u{7f}",
            "Bearer realm=\"é😀\"",
            "Basic",
            "Basic token68==",
            long.as_str(),
            quotes.as_str(),
            nested.as_str(),
        ];
        for input in inputs {
            let _ = parse_challenge(input);
        }
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc=="), None);
        assert_eq!(parse_challenge("Bearer realm=\"\""), None);
    }
}
