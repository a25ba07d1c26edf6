//! Property-based tests of the parsers that read outside input: references, platforms,
//! digests, `WWW-Authenticate` challenges, manifests, whole Mirrorfiles and docker-save/OCI
//! archives (`mirror::archive::read`). Whatever the input,
//! they return a value or an error, never panic; what they accept survives a print/parse round
//! trip. Bounded for CI: `PROPTEST_CASES` (default 256 per property).

use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;

use mirror::oci::{Digest, Platform, RawManifest, Reference};
use mirror::registry::challenge::parse_challenge;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings that look like references: registry, path components, tag and digest pieces,
/// including the characters that make parsing hard.
fn reference_like() -> impl Strategy<Value = String> {
    let part = "[a-zA-Z0-9._:@/+-]{0,12}";
    prop::collection::vec(part, 1..6).prop_map(|parts| parts.join("/"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn references_parse_or_fail_and_round_trip(text in prop_oneof![reference_like(), any::<String>()]) {
        if let Ok(reference) = text.parse::<Reference>() {
            let again: Reference = reference.to_string().parse().expect("printed reference parses");
            prop_assert_eq!(again, reference);
        }
    }

    #[test]
    fn digests_parse_or_fail_and_round_trip(
        algorithm in prop_oneof![Just("sha256".to_string()), Just("sha512".to_string()), "[a-z0-9+._-]{0,8}"],
        hex in "[0-9a-fA-F]{0,130}",
        junk in any::<String>(),
    ) {
        for text in [format!("{algorithm}:{hex}"), junk] {
            if let Ok(digest) = text.parse::<Digest>() {
                prop_assert_eq!(digest.to_string().parse::<Digest>().ok(), Some(digest));
            }
        }
    }

    #[test]
    fn well_formed_sha256_digests_are_accepted(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let digest = Digest::sha256_of(&bytes);
        prop_assert_eq!(digest.to_string().parse::<Digest>().ok(), Some(digest));
    }

    #[test]
    fn platforms_parse_or_fail_and_round_trip(
        text in prop_oneof!["[a-z0-9./_-]{0,24}", any::<String>()],
    ) {
        if let Ok(platform) = text.parse::<Platform>() {
            let again: Platform = platform.to_string().parse().expect("printed platform parses");
            prop_assert_eq!(again, platform);
        }
    }

    #[test]
    fn challenges_never_panic(
        text in prop_oneof![
            "(Bearer|Basic|bearer|Negotiate)? ?((realm|service|scope|error)=\"?[^\"]{0,20}\"?,? ?){0,5}",
            any::<String>(),
        ],
    ) {
        if let Some(challenge) = parse_challenge(&text) {
            let _ = format!("{challenge:?}");
        }
    }

    #[test]
    fn manifests_from_any_bytes_never_panic(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512).prop_map(Bytes::from),
            manifest_like().prop_map(Bytes::from),
        ],
        declared in prop::option::of("[a-z./+0-9-]{0,60}"),
    ) {
        if let Ok(manifest) = RawManifest::new(body, declared.as_deref()) {
            let _ = manifest.view();
            prop_assert_eq!(manifest.digest(), &Digest::sha256_of(manifest.bytes()));
        }
    }

    #[test]
    fn mirrorfiles_never_panic(text in mirrorfile_like()) {
        let _ = mirror::mirrorfile::parse(Path::new("mirrorfile.toml"), &text);
    }
}

/// JSON shaped like manifests and indexes, with hostile field values.
fn manifest_like() -> impl Strategy<Value = String> {
    let media = prop_oneof![
        Just("application/vnd.oci.image.index.v1+json".to_string()),
        Just("application/vnd.oci.image.manifest.v1+json".to_string()),
        Just("application/vnd.docker.distribution.manifest.list.v2+json".to_string()),
        "[a-z./+]{0,30}",
    ];
    let digest = prop_oneof![
        Just("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string()),
        "[a-z0-9]{0,8}:[0-9a-f]{0,70}",
    ];
    let size = prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e400".to_string()),
        Just("18446744073709551616".to_string()),
        "[0-9]{1,5}"
    ];
    (media.clone(), media, digest, size, 0i64..3).prop_map(|(top, child, digest, size, version)| {
        format!(
            r#"{{"schemaVersion":{version},"mediaType":"{top}","manifests":[{{"mediaType":"{child}","digest":"{digest}","size":{size},"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}}],"config":{{"mediaType":"{child}","digest":"{digest}","size":{size}}},"layers":[]}}"#
        )
    })
}

/// Mirrorfile text assembled from plausible and hostile lines.
fn mirrorfile_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[target]".to_string()),
        Just("[[images]]".to_string()),
        Just("[defaults]".to_string()),
        Just("[cache]".to_string()),
        "registry = \"[a-z0-9.:]{0,20}\"",
        "prefix = \"[a-z0-9/._-]{0,20}\"",
        "ref = \"[a-zA-Z0-9./:@_-]{0,40}\"",
        "list = \"[a-z./]{0,12}\"",
        "to = \"[a-z0-9/:._-]{0,20}\"",
        "platforms = \\[(\"[a-z0-9/]{0,16}\", ?){0,3}\\]",
        "index = \"[a-z]{0,8}\"",
        "tls = \"[a-z-]{0,12}\"",
        "dir = \"[a-z./]{0,12}\"",
        "\\[registry.\"[a-z0-9.:]{0,16}\"\\]",
        any::<String>(),
    ];
    prop::collection::vec(line, 0..14).prop_map(|lines| lines.join("\n"))
}

/// An in-memory spool for the archive reader.
#[derive(Default)]
struct MemSpool(std::sync::Mutex<std::collections::BTreeMap<Digest, Vec<u8>>>);

impl mirror::archive::Spool for MemSpool {
    fn put(&self, reader: &mut dyn std::io::Read) -> std::io::Result<(Digest, u64)> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        let digest = Digest::sha256_of(&bytes);
        let size = bytes.len() as u64;
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .insert(digest.clone(), bytes);
        Ok((digest, size))
    }

    fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let bytes = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .get(digest)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }
}

/// docker-save–shaped archive entries with hostile contents.
fn archive_entries() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        Just("manifest.json".to_string()),
        Just("index.json".to_string()),
        Just("oci-layout".to_string()),
        Just("repositories".to_string()),
        "blobs/sha256/[0-9a-f]{0,64}",
        "[a-z0-9./_-]{1,30}",
        Just("../escape".to_string()),
    ];
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        manifest_like().prop_map(String::into_bytes),
        "\\[\\{\"Config\":\"[a-z0-9/.:]{0,40}\",\"RepoTags\":\\[\"[a-zA-Z0-9:/._-]{0,20}\"\\],\"Layers\":\\[\"[a-z0-9/.:]{0,40}\"\\]\\}\\]"
            .prop_map(String::into_bytes),
    ];
    prop::collection::vec((name, body), 0..6)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn archive_reader_never_panics(entries in archive_entries(), gzip in any::<bool>()) {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, body) in &entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            // Names tar refuses (such as `..`) are left out: the reader must cope with the rest.
            let _ = builder.append_data(&mut header, name, body.as_slice());
        }
        let tar = builder.into_inner().expect("tar in memory");
        let bytes = if gzip {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&tar).expect("gzip");
            enc.finish().expect("gzip")
        } else {
            tar
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("images.tar");
        std::fs::write(&path, &bytes).expect("write archive");
        let _ = mirror::archive::read(&path, &MemSpool::default());
        // Truncated archives too.
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write archive");
        let _ = mirror::archive::read(&path, &MemSpool::default());
    }
}
