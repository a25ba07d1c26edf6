//! The commented starter Mirrorfile `mirror init` writes: every key a newcomer needs, each with a
//! comment saying what it does, and nothing that would copy more than asked.

use std::fmt::Write;

use crate::oci::Reference;

/// A starter Mirrorfile targeting `registry`, listing `images` (or one commented example entry
/// when there are none).
pub fn starter(registry: &str, images: Option<&[Reference]>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"# mirrorfile.toml: what to mirror, where, and for which platforms.
# `mirror plan` shows what would change; `mirror apply` makes the target match.
# Reference: README.md ("Mirrorfile reference").
# Editor validation: `mirror schema > mirrorfile.schema.json`, then make the first line of this
# file `#:schema ./mirrorfile.schema.json` (taplo / Even Better TOML).

# Where images go: a registry you control.
[target]
registry = "{registry}"
# prefix = "mirror"        # put every image under {registry}/mirror/...

# How to reach that registry. Without an entry a registry is reached over verified HTTPS.
[registry."{registry}"]
tls = "verify"             # "verify" (default) | "skip-verify" | "http"
# ca = "certs/ca.pem"      # extra CA certificates (PEM), relative to this file

# The platforms your fleet runs. Remove to copy every platform, byte-identical.
[defaults]
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
"#
    );
    match images {
        Some(images) if !images.is_empty() => {
            for image in images {
                let _ = write!(out, "\n[[images]]\nref = \"{image}\"\n");
            }
        }
        _ => {
            out.push_str(
                r#"
# One entry per image; `to = "infra/pause"` renames it on the target.
[[images]]
ref = "docker.io/rancher/mirrored-pause:3.6"

# Or a list file, one reference per line (like the k3s-images.txt of a k3s release):
# [[images]]
# list = "k3s-images.txt"
"#,
            );
        }
    }
    out.push_str(
        r#"
# [cache]
# dir = "/var/cache/mirror"   # default: $XDG_CACHE_HOME/mirror or ~/.cache/mirror
"#,
    );
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::{PlatformSelection, Target};

    #[test]
    fn starter_parses_and_lists_the_given_images() {
        let images: Vec<Reference> = [
            "rancher/pause:3.1",
            "quay.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ]
        .iter()
        .map(|r| r.parse().expect("valid reference"))
        .collect();
        let text = starter("10.0.0.5:5000", Some(&images));
        let model = crate::mirrorfile::parse(Path::new("/nowhere/mirrorfile.toml"), &text)
            .expect("the starter must be a valid Mirrorfile");
        assert_eq!(
            model.target,
            Target::Registry {
                host: "10.0.0.5:5000".into(),
                prefix: None
            }
        );
        let refs: Vec<String> = model
            .images
            .iter()
            .map(|i| i.reference.to_string())
            .collect();
        assert_eq!(refs, vec![images[0].to_string(), images[1].to_string()]);
        assert!(matches!(&model.images[0].platforms, PlatformSelection::Only(p) if p.len() == 3));
    }

    #[test]
    fn starter_without_images_has_one_example_entry() {
        let text = starter("registry.example.internal:5000", None);
        let model = crate::mirrorfile::parse(Path::new("/nowhere/mirrorfile.toml"), &text)
            .expect("the starter must be a valid Mirrorfile");
        assert_eq!(model.images.len(), 1);
        assert_eq!(
            model.images[0].reference.to_string(),
            "docker.io/rancher/mirrored-pause:3.6"
        );
    }
}
