//! The one writer of `mirrorfile.lock`: fixed key order, sorted entries, one value per line for
//! lists, `\n` line ends. Written by hand rather than through a TOML serializer so the bytes do
//! not change with a dependency's formatting choices.

use std::fmt::Write;

use super::{Lockfile, VERSION};

const HEADER: &str = "# mirrorfile.lock: written by `mirror` (`mirror lock`, `plan`, `apply`). It pins every\n# source tag to a digest so the same mirror can be made again. Commit it; do not edit it.\n";

/// The lock as text.
pub fn write(lock: &Lockfile) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "version = {VERSION}");
    for ((name, filter), repo) in &lock.repositories {
        let _ = writeln!(out, "\n[[repository]]");
        let _ = writeln!(out, "name = {}", quote(name));
        let _ = writeln!(out, "filter = {}", quote(filter));
        list(&mut out, "tags", repo.tags.iter().map(|t| quote(t)));
    }
    for (source, image) in &lock.images {
        let _ = writeln!(out, "\n[[image]]");
        let _ = writeln!(out, "source = {}", quote(source));
        let _ = writeln!(out, "digest = {}", quote(&image.digest.to_string()));
        let _ = writeln!(out, "media_type = {}", quote(&image.media_type));
        list(
            &mut out,
            "platforms",
            image.platforms.iter().map(|(platform, digest)| {
                format!(
                    "{{ platform = {}, digest = {} }}",
                    quote(platform),
                    quote(&digest.to_string())
                )
            }),
        );
        if !image.subset_indexes.is_empty() {
            list(
                &mut out,
                "subset_indexes",
                image.subset_indexes.iter().map(|d| quote(&d.to_string())),
            );
        }
    }
    out
}

fn list(out: &mut String, key: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        let _ = writeln!(out, "{key} = []");
        return;
    }
    let _ = writeln!(out, "{key} = [");
    for item in items {
        let _ = writeln!(out, "    {item},");
    }
    let _ = writeln!(out, "]");
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::lock::{read, LockedImage, LockedRepository};
    use crate::oci::Digest;

    fn sample() -> Lockfile {
        let mut lock = Lockfile::default();
        lock.repositories.insert(
            (
                "reg.example:5000/lab/alpine".into(),
                r#"regex = "^3\\.\\d+$", latest = 2"#.into(),
            ),
            LockedRepository {
                tags: vec!["3.19".into(), "3.20".into()],
            },
        );
        lock.images.insert(
            "reg.example:5000/lab/tiny:1.0".into(),
            LockedImage {
                digest: Digest::sha256_of(b"root"),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                platforms: BTreeSet::from([
                    ("linux/arm64".into(), Digest::sha256_of(b"arm")),
                    ("linux/amd64".into(), Digest::sha256_of(b"amd")),
                ]),
                subset_indexes: BTreeSet::from([Digest::sha256_of(b"subset")]),
            },
        );
        lock
    }

    #[test]
    fn round_trips_and_is_stable() {
        let lock = sample();
        let text = write(&lock);
        let back = read::parse(Path::new("mirrorfile.lock"), &text).expect("parses");
        assert_eq!(back, lock);
        assert_eq!(
            write(&back),
            text,
            "writing what was read gives the same bytes"
        );
        assert!(text.starts_with("# mirrorfile.lock"));
        assert!(text.contains("\nversion = 1\n"));
        let amd = text.find("linux/amd64").expect("amd64");
        let arm = text.find("linux/arm64").expect("arm64");
        assert!(amd < arm, "children sorted:\n{text}");
    }

    #[test]
    fn quotes_what_toml_needs() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\u{1}"), r#""x\u0001""#);
    }
}
