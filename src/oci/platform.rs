//! Platforms (`os/architecture[/variant]`, plus `os.version` and `os.features`) and the matching
//! rules containerd uses.
//!
//! A `Platform` keeps the strings it was given, so output shows what the registry said; matching
//! compares normalised forms: `aarch64` = `arm64` = `arm64/v8`, `x86_64` = `amd64`, `arm` without a
//! variant = `arm/v7`, `armhf` = `arm/v7`, `armel` = `arm/v6`. A selector without `os.version`
//! matches every `os.version`, so selecting `windows/amd64` keeps all windows/amd64 entries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A platform as an index entry or an image config states it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("`{0}` is not a platform: expected `os/architecture[/variant]`, e.g. `linux/arm64` or `linux/arm/v7`")]
    Shape(String),
    #[error("`{input}`: unknown operating system `{os}` (known: {known})")]
    UnknownOs {
        input: String,
        os: String,
        known: &'static str,
    },
    #[error("`{input}`: unknown architecture `{arch}` (known: {known})")]
    UnknownArch {
        input: String,
        arch: String,
        known: &'static str,
    },
}

const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "android",
    "ios",
    "dragonfly",
    "plan9",
    "js",
    "wasip1",
    "zos",
    "unknown",
];
const KNOWN_OS_TEXT: &str = "linux, windows, darwin, freebsd, …";
const KNOWN_ARCH: &[&str] = &[
    "amd64", "386", "arm", "arm64", "ppc64le", "ppc64", "s390x", "riscv64", "mips", "mipsle",
    "mips64", "mips64le", "loong64", "wasm", "unknown",
];
const KNOWN_ARCH_TEXT: &str =
    "amd64, arm64, arm, 386, ppc64le, s390x, riscv64, mips64le, loong64, …";

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: Vec::new(),
        }
    }

    /// The normalised `(os, architecture, variant)` triple used for comparisons.
    pub fn normalized(&self) -> (String, String, Option<String>) {
        let os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self
            .variant
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(str::to_ascii_lowercase);
        let (arch, variant) = match arch.as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), variant),
            "i386" | "386" => ("386".to_string(), variant),
            "aarch64" | "arm64" => {
                let variant = match variant.as_deref() {
                    None | Some("v8") | Some("8") => None,
                    Some(v) => Some(v.to_string()),
                };
                ("arm64".to_string(), variant)
            }
            "armhf" => ("arm".to_string(), Some("v7".to_string())),
            "armel" => ("arm".to_string(), Some("v6".to_string())),
            "arm" => {
                let variant = match variant.as_deref() {
                    None => "v7".to_string(),
                    Some(v) if v.starts_with('v') => v.to_string(),
                    Some(v) => format!("v{v}"),
                };
                ("arm".to_string(), Some(variant))
            }
            _ => (arch, variant),
        };
        (os, arch, variant)
    }

    /// Whether `self`, used as a selector, selects `candidate`. Extra detail the selector leaves
    /// out (`os.version`, `os.features`) matches anything.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.normalized() != candidate.normalized() {
            return false;
        }
        if let Some(version) = &self.os_version {
            if candidate.os_version.as_ref() != Some(version) {
                return false;
            }
        }
        self.os_features
            .iter()
            .all(|f| candidate.os_features.contains(f))
    }

    /// Whether two statements of a platform describe the same platform (for the index-vs-config
    /// consistency check): normalised triple equal, and `os.version` equal when both state one.
    pub fn agrees_with(&self, other: &Platform) -> bool {
        self.normalized() == other.normalized()
            && match (&self.os_version, &other.os_version) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// `unknown/unknown`, the platform of attestation manifests.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{variant}")?;
        }
        if let Some(version) = &self.os_version {
            write!(f, " ({version})")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    /// Parses a user-written selector such as `linux/arm/v7`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = input.trim().split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError::Shape(input.to_string()));
        }
        let os = parts[0].to_ascii_lowercase();
        if !KNOWN_OS.contains(&os.as_str()) {
            return Err(PlatformError::UnknownOs {
                input: input.to_string(),
                os,
                known: KNOWN_OS_TEXT,
            });
        }
        let probe = Platform::new(&os, parts[1], parts.get(2).copied());
        let (_, arch, _) = probe.normalized();
        if !KNOWN_ARCH.contains(&arch.as_str()) {
            return Err(PlatformError::UnknownArch {
                input: input.to_string(),
                arch: parts[1].to_string(),
                known: KNOWN_ARCH_TEXT,
            });
        }
        Ok(probe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        match s.parse() {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn normalises_like_containerd() {
        assert!(p("linux/arm64").matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(p("linux/arm64/v8").matches(&Platform::new("linux", "arm64", None)));
        assert!(p("linux/arm").matches(&Platform::new("linux", "arm", Some("v7"))));
        assert!(p("linux/arm/v7").matches(&Platform::new("linux", "arm", None)));
        assert!(!p("linux/arm/v7").matches(&Platform::new("linux", "arm", Some("v6"))));
        assert!(p("linux/x86_64").matches(&Platform::new("linux", "amd64", None)));
        assert!(!p("linux/amd64").matches(&Platform::new("windows", "amd64", None)));
    }

    #[test]
    fn selector_without_os_version_keeps_all_versions() {
        let mut a = Platform::new("windows", "amd64", None);
        a.os_version = Some("10.0.17763.1".into());
        let mut b = a.clone();
        b.os_version = Some("10.0.20348.1".into());
        let sel = p("windows/amd64");
        assert!(sel.matches(&a) && sel.matches(&b));
        assert!(!a.agrees_with(&b));
    }

    #[test]
    fn rejects_bad_platforms() {
        assert!(matches!(
            "linux".parse::<Platform>(),
            Err(PlatformError::Shape(_))
        ));
        assert!(matches!(
            "linux/arm/v7/x".parse::<Platform>(),
            Err(PlatformError::Shape(_))
        ));
        assert!(matches!(
            "lunix/amd64".parse::<Platform>(),
            Err(PlatformError::UnknownOs { .. })
        ));
        assert!(matches!(
            "linux/amd46".parse::<Platform>(),
            Err(PlatformError::UnknownArch { .. })
        ));
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
    }
}
