//! The one writer of `mirrorfile.lock`: fixed key order, sorted entries, one value per line for
//! lists, `\n` line ends. Written by hand rather than through a TOML serializer so the bytes do
//! not change with a dependency's formatting choices.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{FileKind, LockedFile, Lockfile, VERSION};
use crate::oci::Digest;

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
        list(&mut out, "platforms", children(&image.platforms));
        if !image.subset_indexes.is_empty() {
            list(
                &mut out,
                "subset_indexes",
                image.subset_indexes.iter().map(|d| quote(&d.to_string())),
            );
        }
    }
    for kind in [FileKind::Archive, FileKind::Bundle] {
        for (path, file) in lock.files(kind) {
            local_source(&mut out, kind.as_str(), path, file);
        }
    }
    out
}

/// One `[[archive]]` or `[[bundle]]` entry, with an `[[archive.image]]` table per target.
fn local_source(out: &mut String, table: &str, path: &str, file: &LockedFile) {
    let _ = writeln!(out, "\n[[{table}]]");
    let _ = writeln!(out, "path = {}", quote(path));
    if let Some(on_disk) = &file.file {
        // Bare hex, as `sha256sum` prints it, so the file can be checked by hand.
        let _ = writeln!(out, "sha256 = {}", quote(on_disk.sha256.hex()));
        let _ = writeln!(out, "size = {}", on_disk.size);
    }
    for (target, produced) in &file.images {
        let _ = writeln!(out, "\n[[{table}.image]]");
        let _ = writeln!(out, "target = {}", quote(target));
        let _ = writeln!(out, "digest = {}", quote(&produced.digest.to_string()));
        list(out, "platforms", children(&produced.platforms));
    }
}

fn children(platforms: &BTreeSet<(String, Digest)>) -> impl Iterator<Item = String> + '_ {
    platforms.iter().map(|(platform, digest)| {
        format!(
            "{{ platform = {}, digest = {} }}",
            quote(platform),
            quote(&digest.to_string())
        )
    })
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
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use super::*;
    use crate::lock::{read, LockedImage, LockedRepository, LockedTarget};
    use crate::oci::FileDigest;

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
        let target = |seed: &[u8], platform: &str| LockedTarget {
            digest: Digest::sha256_of(seed),
            platforms: BTreeSet::from([(platform.to_string(), Digest::sha256_of(b"child"))]),
        };
        lock.archives.insert(
            "images/app-amd64.tar".into(),
            LockedFile {
                file: Some(FileDigest {
                    sha256: Digest::sha256_of(b"archive"),
                    size: 10240,
                }),
                images: BTreeMap::from([
                    ("mirror/bench/b:1".into(), target(b"b", "linux/amd64")),
                    ("mirror/bench/a:1".into(), target(b"a", "linux/amd64")),
                ]),
            },
        );
        lock.bundles.insert(
            "/media/usb/layout".into(),
            LockedFile {
                file: None,
                images: BTreeMap::from([("lab/tiny:1.0".into(), target(b"t", "linux/arm64"))]),
            },
        );
        lock
    }

    #[test]
    fn local_sources_are_written_with_the_file_digest_as_sha256sum_prints_it() {
        let text = write(&sample());
        let sha = Digest::sha256_of(b"archive");
        let archive = format!(
            "\n[[archive]]\npath = \"images/app-amd64.tar\"\nsha256 = \"{}\"\nsize = 10240\n\n[[archive.image]]\ntarget = \"mirror/bench/a:1\"\n",
            sha.hex()
        );
        assert!(text.contains(&archive), "{text}");
        let a = text.find("mirror/bench/a:1").expect("a");
        let b = text.find("mirror/bench/b:1").expect("b");
        assert!(a < b, "targets sorted:\n{text}");
        let bundle = text.find("[[bundle]]").expect("bundle entry");
        assert!(text.find("[[archive]]").expect("archive") < bundle);
        assert!(
            !text[bundle..].contains("sha256 ="),
            "a layout directory has no file digest:\n{text}"
        );
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
