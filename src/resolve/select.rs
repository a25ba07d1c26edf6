//! Which entries of an index to keep for a platform selection. Pure: no I/O.
//!
//! Rules: an entry is kept when its platform matches a selector (containerd normalisation, see
//! [`Platform::matches`]); an attestation entry (`unknown/unknown` with
//! `vnd.docker.reference.type: attestation-manifest`) is kept exactly when the manifest it
//! describes is kept; an entry without a platform is kept only when everything is selected.

use crate::model::PlatformSelection;
use crate::oci::{Descriptor, Platform};

/// The decision for one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Positions of kept entries, ascending.
    pub keep: Vec<usize>,
    /// Selectors that matched no entry.
    pub unmatched: Vec<Platform>,
}

/// Decides which entries of `entries` to keep. Nested indexes are decided by the caller (they
/// are kept when any of their leaves is); pass `nested_kept` for those positions.
pub fn select(
    entries: &[Descriptor],
    selection: &PlatformSelection,
    nested_kept: &dyn Fn(usize) -> Option<bool>,
) -> Selection {
    let selectors = match selection {
        PlatformSelection::All => {
            return Selection {
                keep: (0..entries.len())
                    .filter(|&i| nested_kept(i) != Some(false))
                    .collect(),
                unmatched: Vec::new(),
            }
        }
        PlatformSelection::Only(selectors) => selectors,
    };
    let mut matched = vec![false; selectors.len()];
    let mut keep = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(kept) = nested_kept(i) {
            if kept {
                keep.push(i);
            }
            continue;
        }
        if entry.attests().is_some() {
            continue; // decided below, once the described manifests are known
        }
        let Some(platform) = &entry.platform else {
            continue;
        };
        let mut hit = false;
        for (s, selector) in selectors.iter().enumerate() {
            if selector.matches(platform) {
                matched[s] = true;
                hit = true;
            }
        }
        if hit {
            keep.push(i);
        }
    }
    let kept_digests: Vec<_> = keep.iter().map(|&i| entries[i].digest.clone()).collect();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(described) = entry.attests() {
            if kept_digests.contains(&described) {
                keep.push(i);
            }
        }
    }
    keep.sort_unstable();
    let unmatched = selectors
        .iter()
        .zip(matched)
        .filter(|(_, m)| !m)
        .map(|(s, _)| s.clone())
        .collect();
    Selection { keep, unmatched }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Digest, MediaType};
    use std::collections::BTreeMap;

    fn entry(n: u8, platform: Option<Platform>, attests: Option<&Digest>) -> Descriptor {
        let mut annotations = BTreeMap::new();
        if let Some(d) = attests {
            annotations.insert(
                "vnd.docker.reference.type".into(),
                "attestation-manifest".into(),
            );
            annotations.insert("vnd.docker.reference.digest".into(), d.to_string());
        }
        Descriptor {
            media_type: MediaType::OciManifest,
            digest: Digest::sha256_of(&[n]),
            size: 1,
            platform,
            annotations,
            urls: vec![],
            artifact_type: None,
        }
    }

    fn p(s: &str) -> Platform {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn keeps_attestations_with_their_subject_only() {
        let amd = entry(0, Some(Platform::new("linux", "amd64", None)), None);
        let arm = entry(1, Some(Platform::new("linux", "arm", Some("v7"))), None);
        let att_amd = entry(
            2,
            Some(Platform::new("unknown", "unknown", None)),
            Some(&amd.digest),
        );
        let att_arm = entry(
            3,
            Some(Platform::new("unknown", "unknown", None)),
            Some(&arm.digest),
        );
        let entries = [amd, arm, att_amd, att_arm];
        let sel = PlatformSelection::Only(vec![p("linux/amd64"), p("linux/s390x")]);
        let got = select(&entries, &sel, &|_| None);
        assert_eq!(got.keep, vec![0, 2]);
        assert_eq!(got.unmatched, vec![p("linux/s390x")]);
        let all = select(&entries, &PlatformSelection::All, &|_| None);
        assert_eq!(all.keep, vec![0, 1, 2, 3]);
    }

    #[test]
    fn arm_selector_matches_v7_and_keeps_every_os_version() {
        let mut w1 = Platform::new("windows", "amd64", None);
        w1.os_version = Some("10.0.17763.1".into());
        let mut w2 = w1.clone();
        w2.os_version = Some("10.0.20348.1".into());
        let entries = [
            entry(0, Some(Platform::new("linux", "arm", Some("v7"))), None),
            entry(1, Some(w1), None),
            entry(2, Some(w2), None),
            entry(3, Some(Platform::new("linux", "arm", Some("v6"))), None),
        ];
        let sel = PlatformSelection::Only(vec![p("linux/arm"), p("windows/amd64")]);
        assert_eq!(select(&entries, &sel, &|_| None).keep, vec![0, 1, 2]);
    }
}
