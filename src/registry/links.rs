//! URL plumbing the distribution protocol leaves to clients: upload `Location`s and `Link`
//! pagination.
//!
//! An upload session's `Location` may be relative or absolute (object-storage front ends answer
//! with another host) and may already carry a query string holding session state, so the
//! `digest=` of the final PUT must be appended, never concatenated blindly.

use reqwest::Url;

/// Resolves a `Location` (or `Link`) target against the URL of the request that returned it.
pub fn resolve(request_url: &Url, location: &str) -> Option<Url> {
    let location = location.trim();
    if location.is_empty() {
        return None;
    }
    request_url
        .join(location)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// Appends `key=value` to the query, with `?` or `&` as needed, keeping the existing query as is.
pub fn with_query(mut url: Url, key: &str, value: &str) -> Url {
    url.query_pairs_mut().append_pair(key, value);
    url
}

/// The target of the `rel="next"` entry of a `Link` header, if any.
pub fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let params_and_more = &after[close + 1..];
        let params = &params_and_more[..params_and_more.find('<').unwrap_or(params_and_more.len())];
        let is_next = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_end_matches(',')
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target);
        }
        rest = params_and_more;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_joining() {
        let post = Url::parse("https://r.example/v2/a/b/blobs/uploads/").unwrap();
        let rel = resolve(&post, "/v2/a/b/blobs/uploads/uuid?_state=xyz").unwrap();
        assert_eq!(
            rel.as_str(),
            "https://r.example/v2/a/b/blobs/uploads/uuid?_state=xyz"
        );
        let abs = resolve(&post, "https://s3.example/up/1").unwrap();
        assert_eq!(abs.host_str(), Some("s3.example"));
        assert!(resolve(&post, "  ").is_none());
        assert!(resolve(&post, "file:///etc/passwd").is_none());
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let with_state = with_query(rel, "digest", d);
        assert_eq!(
            with_state.as_str(),
            "https://r.example/v2/a/b/blobs/uploads/uuid?_state=xyz&digest=sha256%3Ae3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let bare = with_query(abs, "digest", "x");
        assert_eq!(bare.as_str(), "https://s3.example/up/1?digest=x");
    }

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/r/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/r/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/p1>; rel="prev", <https://x/p3>; rel="next""#),
            Some("https://x/p3")
        );
        assert_eq!(next_link(r#"<a>; rel=next"#), Some("a"));
        assert_eq!(next_link(r#"<a>; rel="prev""#), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("<unterminated; rel=next"), None);
        assert_eq!(next_link(">>><<<;;rel"), None);
        assert_eq!(next_link(r#"<a>; title="x"; REL="last next""#), Some("a"));
    }
}
