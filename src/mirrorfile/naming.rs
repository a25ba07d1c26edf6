//! Names on the target: validating hosts and repository paths, reading `to`, and computing the
//! repository and tag an image lands on.
//!
//! Pure functions returning a reason string, so `lower` decides where the error points (the `to`
//! value, the `ref`, or a list-file line) and these rules are testable as plain tables.

use crate::oci::reference::valid_tag;
use crate::oci::Reference;

/// `host` or `host:port`, as a reference's first component; Docker Hub aliases become `docker.io`.
///
/// A host must look like one to `docker pull` (a `.` or a `:`, or `localhost`); otherwise a
/// reference naming it would be read as a Docker Hub repository and never match this key.
pub(crate) fn normalise_host(host: &str) -> Option<String> {
    let looks_like_host = host.contains('.') || host.contains(':') || host == "localhost";
    if !looks_like_host || host.contains(['/', '@']) {
        return None;
    }
    let parsed = Reference::new(host, "x", None, None).ok()?;
    Some(parsed.registry().to_string())
}

/// Checks a repository path (`a/b/c`), returning why it is invalid.
pub(crate) fn check_repo_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the repository path is empty".into());
    }
    for component in path.split('/') {
        // Reuse the reference grammar rather than restating it: a lone component under a
        // dummy host parses exactly when it is a valid path component.
        let ok = !component.is_empty()
            && !component.contains([':', '@'])
            && format!("mirror.invalid/{component}")
                .parse::<Reference>()
                .is_ok();
        if !ok {
            return Err(format!(
                "`{component}` is not a valid repository path component"
            ));
        }
    }
    Ok(())
}

/// A parsed `to = "path[:tag]"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rename {
    pub path: String,
    pub tag: Option<String>,
}

/// Parses `to`; a digest is refused because the target's digest is the source's.
pub(crate) fn parse_to(value: &str) -> Result<Rename, String> {
    if value.contains('@') {
        return Err("a target cannot be pinned to a digest".into());
    }
    let last_slash = value.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match value[last_slash..].find(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (&value[..at], Some(&value[at + 1..]))
        }
        None => (value, None),
    };
    check_repo_path(path)?;
    if let Some(tag) = tag {
        if !valid_tag(tag) {
            return Err(format!("`{tag}` is not a valid tag"));
        }
    }
    Ok(Rename {
        path: path.to_string(),
        tag: tag.map(str::to_string),
    })
}

/// The target repository and tag for `source`: `to`'s path or the source path, under the prefix;
/// `to`'s tag, else the source tag (none for a digest-only source).
pub(crate) fn target_name(
    host: &str,
    prefix: Option<&str>,
    source: &Reference,
    to: Option<&Rename>,
) -> Result<(String, Option<String>), String> {
    let path = to.map_or(source.repository(), |r| r.path.as_str());
    let repo = match prefix {
        Some(prefix) => format!("{prefix}/{path}"),
        None => path.to_string(),
    };
    let tag = to
        .and_then(|r| r.tag.clone())
        .or_else(|| source.tag().map(str::to_string));
    // The whole name must still be a valid reference (the 255-character limit, mostly).
    Reference::new(host, &repo, tag.as_deref(), None)
        .map_err(|e| format!("invalid target name: {e}"))?;
    Ok((repo, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let table = [
            (
                "registry.example.internal:5000",
                Some("registry.example.internal:5000"),
            ),
            ("localhost", Some("localhost")),
            ("127.0.0.1:5000", Some("127.0.0.1:5000")),
            ("docker.io", Some("docker.io")),
            ("index.docker.io", Some("docker.io")),
            ("registry-1.docker.io", Some("docker.io")),
            ("myregistry", None),
            ("a.com/b", None),
            ("a.com:port", None),
            ("", None),
        ];
        for (input, want) in table {
            assert_eq!(normalise_host(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn to_values() {
        let rename = |path: &str, tag: Option<&str>| Rename {
            path: path.into(),
            tag: tag.map(Into::into),
        };
        assert_eq!(parse_to("infra/pause"), Ok(rename("infra/pause", None)));
        assert_eq!(
            parse_to("infra/pause:stable"),
            Ok(rename("infra/pause", Some("stable")))
        );
        assert_eq!(parse_to("pause:1.0"), Ok(rename("pause", Some("1.0"))));
        for bad in [
            "",
            "Infra/pause",
            "a//b",
            "a/b:",
            "a/b:-x",
            "a@sha256:00",
            "/a",
        ] {
            assert!(parse_to(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn too_long_target_names_are_refused() {
        let source: Reference = "alpine".parse().expect("valid");
        let prefix = "p".repeat(250);
        assert!(target_name("reg.local", Some(&prefix), &source, None).is_err());
    }
}
