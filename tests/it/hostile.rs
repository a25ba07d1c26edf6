//! Hostile input, no panic: every case of `tests/fixtures/hostile/cases.toml` (Mirrorfiles,
//! image lists, manifests and `WWW-Authenticate` headers served through the fault proxy), plus
//! generated ones (a 100 MB manifest, indexes nested past the limit, JSON nested 100,000 deep),
//! must end with exit 1 and the expected error, never a panic.

use std::path::PathBuf;

use crate::support::context::{describe, mirrorfile_header, stderr};
use crate::support::flip_proxy::{Fault, FlipProxy};
use crate::support::images::sha256;
use crate::support::lab::Lab;

#[derive(Debug, serde::Deserialize)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Debug, serde::Deserialize)]
struct Case {
    file: String,
    kind: String,
    #[serde(default)]
    content_type: Option<String>,
    expect: String,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile")
}

fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .collect()
}

/// A canned answer for every request of tag `tag`.
fn respond(tag: &str, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Fault {
    Fault::Respond {
        path_suffix: format!("/manifests/{tag}"),
        status,
        headers,
        body,
    }
}

/// Serves `body` for tag `tag` and for its digest (resolving fetches the root by digest).
fn serve_manifest(proxy: &FlipProxy, tag: &str, content_type: &str, body: Vec<u8>) {
    let headers = vec![("Content-Type".to_string(), content_type.to_string())];
    proxy.add(respond(&sha256(&body), 200, headers.clone(), body.clone()));
    proxy.add(respond(tag, 200, headers, body));
}

/// Runs `mirror plan` with `mirrorfile` and checks: exit 1, no panic, `expect` in stderr.
fn check(lab: &Lab, name: &str, mirrorfile: &[u8], expect: &str) -> String {
    std::fs::write(lab.ctx.work().join("mirrorfile.toml"), mirrorfile).expect("write");
    let out = lab.ctx.cmd(&["plan"]);
    let err = stderr(&out);
    assert!(
        !err.contains("panicked"),
        "{name}: panic\n{}",
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{name}\n{}", describe(&out));
    if std::env::var_os("MIRROR_HOSTILE_SHOW").is_some() {
        eprintln!("=== {name}\n{err}");
        return err;
    }
    assert!(
        squash(&err).contains(&squash(expect)),
        "{name}: expected `{expect}` in:\n{err}"
    );
    err
}

#[test]
fn every_hostile_input_gives_a_clear_error_and_no_panic() {
    let text = std::fs::read_to_string(fixtures().join("cases.toml")).expect("cases.toml");
    let cases: Cases = toml::from_str(&text).expect("cases.toml parses");
    let lab = Lab::new();
    let proxy = FlipProxy::start(&lab.up());
    let src = proxy.host();
    let header = mirrorfile_header(&src, &lab.tgt(), None);
    let mut tried = 0;
    for (i, case) in cases.case.iter().enumerate() {
        let bytes = std::fs::read(fixtures().join(&case.file)).expect("fixture");
        let tag = format!("case{i}");
        let image = format!("{header}\n[[images]]\nref = \"{src}/lab/hostile:{tag}\"\n");
        match case.kind.as_str() {
            "mirrorfile" => check(&lab, &case.file, &bytes, &case.expect),
            "list" => {
                std::fs::write(lab.ctx.work().join("list.txt"), &bytes).expect("write list");
                let mirrorfile =
                    std::fs::read(fixtures().join("mirrorfile-with-list.toml")).expect("fixture");
                check(&lab, &case.file, &mirrorfile, &case.expect)
            }
            "lock" => {
                std::fs::write(lab.ctx.work().join("mirrorfile.lock"), &bytes).expect("write lock");
                let err = check(&lab, &case.file, image.as_bytes(), &case.expect);
                std::fs::remove_file(lab.ctx.work().join("mirrorfile.lock")).expect("remove lock");
                err
            }
            "manifest" => {
                let content_type = case.content_type.clone().unwrap_or_default();
                serve_manifest(&proxy, &tag, &content_type, bytes);
                check(&lab, &case.file, image.as_bytes(), &case.expect)
            }
            "auth" => {
                let value = String::from_utf8_lossy(&bytes).into_owned();
                proxy.add(respond(
                    &tag,
                    401,
                    vec![("WWW-Authenticate".into(), value)],
                    b"{}".to_vec(),
                ));
                check(&lab, &case.file, image.as_bytes(), &case.expect)
            }
            other => panic!("unknown kind {other}"),
        };
        tried += 1;
    }
    eprintln!("hostile inputs: {tried} cases from cases.toml, 0 panics");
}

/// An index of one child, as bytes.
fn index_of(child: &[u8], media_type: &str) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"{media_type}","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        sha256(child),
        child.len()
    )
    .into_bytes()
}

#[test]
fn generated_hostile_manifests_are_refused_with_bounded_memory() {
    let lab = Lab::new();
    let proxy = FlipProxy::start(&lab.up());
    let src = proxy.host();
    let header = mirrorfile_header(&src, &lab.tgt(), None);
    let image = |tag: &str| format!("{header}\n[[images]]\nref = \"{src}/lab/gen:{tag}\"\n");
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";

    // 100 MB manifest: refused from its Content-Length, or while streaming past 4 MiB.
    let mut huge = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#.to_vec();
    huge.resize(100 * 1024 * 1024, b'a');
    proxy.add(respond(
        "huge",
        200,
        vec![("Content-Type".into(), INDEX.into())],
        huge,
    ));
    check(
        &lab,
        "100 MB manifest",
        image("huge").as_bytes(),
        "manifest huge is 104857600 bytes, over the 4194304-byte limit registries enforce",
    );

    // JSON nested 100,000 levels deep (under the size limit).
    let mut deep = b"{\"schemaVersion\":2,\"manifests\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.push(b'}');
    serve_manifest(&proxy, "deep", INDEX, deep);
    check(
        &lab,
        "deep JSON",
        image("deep").as_bytes(),
        "is not valid JSON",
    );

    // Indexes nested 8 deep: every level served by digest, the leaf an (absent) image.
    let leaf = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#.to_vec();
    let mut child = leaf;
    let mut child_type = "application/vnd.oci.image.manifest.v1+json";
    for _ in 0..8 {
        let parent = index_of(&child, child_type);
        proxy.add(respond(
            &sha256(&child),
            200,
            vec![("Content-Type".into(), child_type.into())],
            child.clone(),
        ));
        child = parent;
        child_type = INDEX;
    }
    serve_manifest(&proxy, "nested", INDEX, child);
    check(
        &lab,
        "nested indexes",
        image("nested").as_bytes(),
        "indexes nested more than 4 levels deep",
    );
}
