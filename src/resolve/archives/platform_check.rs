//! The platform an archive claims, by the `platform` key or by its file name, against the
//! platform each image's config states. k3s names its archives by architecture
//! (`k3s-airgap-images-arm64.tar.zst`); a mismatch there has put amd64 images behind arm64
//! index entries before, so it is an error unless the user downgrades it.

use std::path::Path;

use crate::oci::Platform;

/// Architecture tokens recognised in file names, and what they mean.
const NAME_ARCHES: &[(&str, &str)] = &[
    ("amd64", "amd64"),
    ("x86_64", "amd64"),
    ("arm64", "arm64"),
    ("aarch64", "arm64"),
    ("arm", "arm"),
    ("armhf", "arm"),
    ("armel", "arm"),
    ("armv7", "arm"),
    ("armv6", "arm"),
    ("s390x", "s390x"),
    ("ppc64le", "ppc64le"),
    ("riscv64", "riscv64"),
    ("386", "386"),
    ("i386", "386"),
];

/// The architecture a file name names (`…-arm64.tar.zst` → `arm64`); `None` when it names none,
/// or more than one.
pub fn arch_in_file_name(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let mut found: Option<&'static str> = None;
    for token in name.split(['-', '_', '.']) {
        if let Some((_, arch)) = NAME_ARCHES.iter().find(|(t, _)| *t == token) {
            match found {
                Some(other) if other != *arch => return None,
                _ => found = Some(arch),
            }
        }
    }
    found
}

/// What contradicts the image's own platform, if anything: the assertion first, then the name.
pub fn contradiction(
    archive: &Path,
    asserted: Option<&Platform>,
    stated: &Platform,
) -> Option<String> {
    if let Some(asserted) = asserted {
        if !asserted.matches(stated) {
            return Some(format!("the entry's `platform` says {asserted}"));
        }
        return None; // an explicit assertion overrides what the name suggests
    }
    let arch = arch_in_file_name(archive)?;
    let (_, stated_arch, _) = stated.normalized();
    (stated_arch != arch).then(|| format!("its file name says {arch}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_assertions() {
        let p = |s: &str| s.parse::<Platform>().unwrap_or_default();
        assert_eq!(
            arch_in_file_name(Path::new("k3s-airgap-images-arm64.tar.zst")),
            Some("arm64")
        );
        assert_eq!(
            arch_in_file_name(Path::new("lab-airgap-images-arm.classic.tar.gz")),
            Some("arm")
        );
        assert_eq!(arch_in_file_name(Path::new("images.tar")), None);
        assert_eq!(arch_in_file_name(Path::new("x-amd64-arm64.tar")), None);
        let arm_v6 = Platform::new("linux", "arm", Some("v6"));
        // An arm archive may mix v6 and v7: the name only says `arm`.
        assert_eq!(contradiction(Path::new("a-arm.tar"), None, &arm_v6), None);
        assert!(contradiction(Path::new("a-arm64.tar"), None, &p("linux/amd64")).is_some());
        assert!(contradiction(Path::new("a.tar"), Some(&p("linux/arm/v7")), &arm_v6).is_some());
        assert_eq!(
            contradiction(Path::new("a-amd64.tar"), Some(&p("linux/arm/v6")), &arm_v6),
            None
        );
    }
}
