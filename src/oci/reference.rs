//! Image references, parsed and normalised the way `docker pull` reads them.
//!
//! `alpine` is `docker.io/library/alpine:latest`; `rancher/pause:3.1` is
//! `docker.io/rancher/pause:3.1`; the first path component is a registry host only when it contains
//! a `.` or a `:` or is `localhost`. All Docker Hub spellings collapse to `docker.io`, which is
//! served by `registry-1.docker.io`.

use std::fmt;
use std::str::FromStr;

use super::digest::{Digest, DigestError};

pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const DEFAULT_TAG: &str = "latest";

/// A fully qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the image reference is empty")]
    Empty,
    #[error("`{input}`: repository names must be lowercase")]
    Uppercase { input: String },
    #[error("`{input}`: invalid repository path component `{component}` (allowed: a-z, 0-9, and `.`, `_`, `__`, `-` between them)")]
    BadComponent { input: String, component: String },
    #[error(
        "`{input}`: invalid tag `{tag}` (up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)"
    )]
    BadTag { input: String, tag: String },
    #[error("`{input}`: invalid registry host `{host}`")]
    BadHost { input: String, host: String },
    #[error("`{input}`: {source}")]
    BadDigest { input: String, source: DigestError },
    #[error("`{input}`: the name is longer than 255 characters")]
    TooLong { input: String },
}

impl Reference {
    /// Builds a reference from parts that are already valid (used for target names).
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Self, ReferenceError> {
        let mut text = format!("{registry}/{repository}");
        if let Some(tag) = tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &digest {
            text.push('@');
            text.push_str(&digest.to_string());
        }
        text.parse()
    }

    /// The registry as users write it (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves the API for this registry.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The repository path inside the registry (`library/alpine`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same reference with another digest and no tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }
}

/// The API host for a registry name: Docker Hub's name differs from its API host.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let err_input = || trimmed.to_string();

        let (name_and_tag, digest) = match trimmed.split_once('@') {
            Some((rest, digest)) => {
                let digest =
                    digest
                        .parse::<Digest>()
                        .map_err(|source| ReferenceError::BadDigest {
                            input: err_input(),
                            source,
                        })?;
                (rest, Some(digest))
            }
            None => (trimmed, None),
        };

        // A `:` after the last `/` starts the tag; one before it is a registry port.
        let last_slash = name_and_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_and_tag[last_slash..].find(':') {
            Some(colon) => {
                let at = last_slash + colon;
                (&name_and_tag[..at], Some(&name_and_tag[at + 1..]))
            }
            None => (name_and_tag, None),
        };
        if name.len() > 255 {
            return Err(ReferenceError::TooLong { input: err_input() });
        }

        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        validate_host(&registry).map_err(|()| ReferenceError::BadHost {
            input: err_input(),
            host: registry.clone(),
        })?;
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
                DOCKER_HUB.to_string()
            }
            _ => registry,
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase { input: err_input() });
        }
        for component in path.split('/') {
            if !valid_component(component) {
                return Err(ReferenceError::BadComponent {
                    input: err_input(),
                    component: component.to_string(),
                });
            }
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };

        let tag = match tag {
            Some(tag) if valid_tag(tag) => Some(tag.to_string()),
            Some(tag) => {
                return Err(ReferenceError::BadTag {
                    input: err_input(),
                    tag: tag.to_string(),
                })
            }
            None if digest.is_none() => Some(DEFAULT_TAG.to_string()),
            None => None,
        };

        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the distribution grammar for a path component.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

fn validate_host(host: &str) -> Result<(), ()> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
    }
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'[' || b == b']')
        && !name.starts_with('-')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        match s.parse() {
            Ok(r) => r,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn normalises_like_docker() {
        let table = [
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            ("rancher/pause:3.1", "docker.io/rancher/pause:3.1"),
            (
                "docker.io/rancher/mirrored-pause:3.6",
                "docker.io/rancher/mirrored-pause:3.6",
            ),
            (
                "index.docker.io/library/nginx",
                "docker.io/library/nginx:latest",
            ),
            (
                "registry-1.docker.io/nginx",
                "docker.io/library/nginx:latest",
            ),
            ("host:5000/a/b:tag", "host:5000/a/b:tag"),
            ("localhost/a", "localhost/a:latest"),
            ("ghcr.io/x/y_z__w.v-1:v1.0", "ghcr.io/x/y_z__w.v-1:v1.0"),
        ];
        for (input, want) in table {
            assert_eq!(parse(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn digests_and_tags() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("alpine@{d}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().map(|d| d.to_string()), Some(d.clone()));
        assert_eq!(r.manifest_reference(), d);
        let r = parse(&format!("host:5000/a:1.0@{d}"));
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(parse("alpine").api_host(), "registry-1.docker.io");
        assert_eq!(parse("host:5000/a").api_host(), "host:5000");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Alpine",
            "a//b",
            "a/b:",
            "a/b:-x",
            "a@sha256:xyz",
            "host:port/a",
            "a/-b",
            "a/b..c",
            &format!("a:{}", "t".repeat(129)),
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad} should fail");
        }
    }
}
