//! Which tags of a whole repository to mirror: `tags = { regex, semver, latest }`.
//!
//! Pure: the tag list comes from the caller (a registry's `/tags/list`, or the lock). The result
//! is sorted by tag name, so the same upstream tag list always gives the same set in the same
//! order, whichever order the registry listed them in (distribution returns them unsorted).
//!
//! Rules, applied in this order:
//! 1. names that are not valid tags (`sha256:…` pseudo-tags) are skipped with a warning;
//! 2. `regex`: kept when the pattern matches anywhere in the tag (anchor it with `^…$`);
//! 3. `semver`: kept when the tag reads as a version (an optional `v`, then `MAJOR[.MINOR[.PATCH]]`
//!    with optional `-pre`/`+build`; missing parts are 0) that satisfies the requirement;
//! 4. `latest = N`: the N highest remaining tags, versions ordered as versions, tags that are
//!    not versions ordered below every version (by name among themselves).

use std::cmp::Ordering;

use crate::oci::reference::valid_tag;

/// A compiled tag filter.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    pub regex: Option<regex::Regex>,
    pub semver: Option<semver::VersionReq>,
    pub latest: Option<usize>,
}

impl PartialEq for TagFilter {
    fn eq(&self, other: &Self) -> bool {
        self.describe() == other.describe()
    }
}

impl Eq for TagFilter {}

/// The tags a filter chose, and why some were left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chosen {
    /// Sorted by name.
    pub tags: Vec<String>,
    pub warnings: Vec<String>,
}

impl TagFilter {
    /// A canonical one-line form (`regex = "…", semver = "…", latest = N`), stored in the lock
    /// so an edited filter is noticed.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(re) = &self.regex {
            parts.push(format!("regex = {:?}", re.as_str()));
        }
        if let Some(req) = &self.semver {
            parts.push(format!("semver = {:?}", req.to_string()));
        }
        if let Some(n) = self.latest {
            parts.push(format!("latest = {n}"));
        }
        if parts.is_empty() {
            "all tags".into()
        } else {
            parts.join(", ")
        }
    }

    /// Applies the filter to `tags` as a registry listed them.
    pub fn choose(&self, tags: &[String]) -> Chosen {
        let mut warnings = Vec::new();
        let mut kept: Vec<(&str, Option<semver::Version>)> = Vec::new();
        for tag in tags {
            if !valid_tag(tag) {
                warnings.push(format!("skipped `{tag}`: not a valid tag name"));
                continue;
            }
            if self.regex.as_ref().is_some_and(|re| !re.is_match(tag)) {
                continue;
            }
            let version = lenient_version(tag);
            if let Some(req) = &self.semver {
                match &version {
                    Some(v) if req.matches(v) => {}
                    _ => continue,
                }
            }
            if !kept.iter().any(|(t, _)| t == tag) {
                kept.push((tag.as_str(), version));
            }
        }
        if let Some(n) = self.latest {
            kept.sort_by(|a, b| order(b, a));
            kept.truncate(n);
        }
        let mut tags: Vec<String> = kept.into_iter().map(|(t, _)| t.to_string()).collect();
        tags.sort();
        Chosen { tags, warnings }
    }
}

/// Ascending: non-versions (by name) before versions (by version, then name).
fn order(a: &(&str, Option<semver::Version>), b: &(&str, Option<semver::Version>)) -> Ordering {
    match (&a.1, &b.1) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.0.cmp(b.0)),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.0.cmp(b.0),
    }
}

/// `v1`, `1.2`, `1.2.3`, `1.2.3-rc.1`: missing minor/patch are 0. `latest`, `3.18-alpine`
/// with a non-numeric part other than a semver pre-release are not versions.
pub fn lenient_version(tag: &str) -> Option<semver::Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let split = t.find(['-', '+']).unwrap_or(t.len());
    let (core, rest) = t.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut full = parts.join(".");
    for _ in parts.len()..3 {
        full.push_str(".0");
    }
    full.push_str(rest);
    semver::Version::parse(&full).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn filter(re: Option<&str>, req: Option<&str>, latest: Option<usize>) -> TagFilter {
        TagFilter {
            regex: re.map(|r| regex::Regex::new(r).expect("test regex")),
            semver: req.map(|r| semver::VersionReq::parse(r).expect("test req")),
            latest,
        }
    }

    #[test]
    fn semver_regex_and_latest_compose() {
        let listed = tags(&[
            "3.20.1", "latest", "3.17", "3.18.0", "3.19", "edge", "v3.21.0", "3.20-rc1",
        ]);
        let f = filter(None, Some(">=3.18"), None);
        assert_eq!(
            f.choose(&listed).tags,
            tags(&["3.18.0", "3.19", "3.20.1", "v3.21.0"])
        );
        let f = filter(None, Some(">=3.18"), Some(2));
        assert_eq!(f.choose(&listed).tags, tags(&["3.20.1", "v3.21.0"]));
        let f = filter(Some(r"^\d+\.\d+$"), None, None);
        assert_eq!(f.choose(&listed).tags, tags(&["3.17", "3.19"]));
        let f = filter(Some("^[a-z]+$"), None, Some(1));
        assert_eq!(f.choose(&listed).tags, tags(&["latest"]));
        assert_eq!(filter(None, None, None).choose(&listed).tags.len(), 8);
    }

    #[test]
    fn invalid_names_are_skipped_with_a_warning_and_order_does_not_matter() {
        let a = tags(&["b", "sha256:abc", "a", ".hidden"]);
        let mut b = a.clone();
        b.reverse();
        let got = filter(None, None, None).choose(&a);
        assert_eq!(got.tags, tags(&["a", "b"]));
        assert_eq!(got.warnings.len(), 2);
        assert!(got.warnings[0].contains("sha256:abc"));
        assert_eq!(got.tags, filter(None, None, None).choose(&b).tags);
    }

    #[test]
    fn lenient_versions() {
        assert_eq!(
            lenient_version("v1").map(|v| v.to_string()),
            Some("1.0.0".into())
        );
        assert_eq!(
            lenient_version("1.2.3-rc.1").map(|v| v.to_string()),
            Some("1.2.3-rc.1".into())
        );
        assert_eq!(lenient_version("latest"), None);
        assert_eq!(lenient_version("1.2.3.4"), None);
        assert_eq!(lenient_version("1..2"), None);
    }

    #[test]
    fn describe_is_canonical() {
        let f = filter(Some("^3"), Some(">=3.18"), Some(3));
        assert_eq!(
            f.describe(),
            r#"regex = "^3", semver = ">=3.18", latest = 3"#
        );
        assert_eq!(filter(None, None, None).describe(), "all tags");
    }
}
