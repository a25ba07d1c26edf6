//! Round trips against a real distribution registry (see `test_registry.rs`).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::model::{RegistrySettings, TlsMode};
use crate::oci::{Digest, MediaType, RawManifest};

use super::test_registry::TestRegistry;
use super::{install_crypto_provider, Client, Credentials, MountOutcome, RegistryError};

fn http() -> RegistrySettings {
    RegistrySettings {
        tls: TlsMode::Http,
        ..RegistrySettings::default()
    }
}

fn client(registry: &TestRegistry, credentials: Credentials) -> Client {
    install_crypto_provider();
    Client::new(&registry.host, &http(), credentials).unwrap()
}

/// Deterministic pseudo-random bytes (incompressible enough to be a realistic layer).
fn blob_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

struct Blob {
    digest: Digest,
    bytes: Vec<u8>,
    path: PathBuf,
}

fn write_blob(dir: &Path, bytes: Vec<u8>) -> Blob {
    let digest = Digest::sha256_of(&bytes);
    let path = dir.join(digest.hex());
    std::fs::write(&path, &bytes).unwrap();
    Blob {
        digest,
        bytes,
        path,
    }
}

fn image_manifest(config: &Blob, layers: &[&Blob]) -> RawManifest {
    let layers: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}"#,
                l.digest,
                l.bytes.len()
            )
        })
        .collect();
    let json = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        config.digest,
        config.bytes.len(),
        layers.join(",")
    );
    RawManifest::new(Bytes::from(json), None).unwrap()
}

fn index(children: &[(&RawManifest, &str)]) -> RawManifest {
    let entries: Vec<String> = children
        .iter()
        .map(|(m, arch)| {
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"{arch}"}}}}"#,
                m.media_type(),
                m.digest(),
                m.size()
            )
        })
        .collect();
    let json = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n  \"manifests\": [{}]\n}}\n",
        entries.join(",")
    );
    RawManifest::new(Bytes::from(json), None).unwrap()
}

async fn download(client: &Client, repo: &str, digest: &Digest, offset: u64) -> (u64, Vec<u8>) {
    let mut response = client.get_blob(repo, digest, offset).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = response.stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    if let Some(len) = response.content_length {
        assert_eq!(len, out.len() as u64);
    }
    (response.resumed_from, out)
}

#[tokio::test]
async fn round_trip_blobs_manifests_index_mounts_and_tags() {
    let registry = TestRegistry::start();
    let client = client(&registry, Credentials::Anonymous);
    client.ping().await.unwrap();
    // Lowered limits so the large blob goes through PATCH chunks (4 of them, the last partial).
    client.set_upload_limits(64 * 1024, 100_000);
    let dir = tempfile::tempdir().unwrap();
    let config = write_blob(
        dir.path(),
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
    );
    let small = write_blob(dir.path(), blob_bytes(10_000, 1));
    let large = write_blob(dir.path(), blob_bytes(300_001, 2));
    let repo = "mirror/test/app";
    for blob in [&config, &small, &large] {
        assert_eq!(client.head_blob(repo, &blob.digest).await.unwrap(), None);
        client
            .upload_blob(repo, &blob.digest, blob.bytes.len() as u64, &blob.path)
            .await
            .unwrap();
        assert_eq!(
            client.head_blob(repo, &blob.digest).await.unwrap(),
            Some(blob.bytes.len() as u64)
        );
    }
    let (from, bytes) = download(&client, repo, &large.digest, 0).await;
    assert_eq!((from, Digest::sha256_of(&bytes)), (0, large.digest.clone()));
    let (from, tail) = download(&client, repo, &large.digest, 1000).await;
    assert_eq!(from, 1000);
    assert_eq!(tail, large.bytes[1000..]);

    let amd64 = image_manifest(&config, &[&small, &large]);
    let arm64 = image_manifest(&config, &[&large]);
    for m in [&amd64, &arm64] {
        client
            .put_manifest(repo, &m.digest().to_string(), m)
            .await
            .unwrap();
    }
    let idx = index(&[(&amd64, "amd64"), (&arm64, "arm64")]);
    client.put_manifest(repo, "v1", &idx).await.unwrap();
    client.put_manifest(repo, "v2", &amd64).await.unwrap();

    let head = client.head_manifest(repo, "v1").await.unwrap().unwrap();
    assert_eq!(head.digest, *idx.digest());
    assert_eq!(head.media_type, Some(MediaType::OciIndex));
    assert_eq!(head.size, Some(idx.size()));
    let got = client.get_manifest(repo, "v1").await.unwrap();
    assert_eq!(
        got.bytes(),
        idx.bytes(),
        "index bytes must be byte-identical"
    );
    assert_eq!(got.media_type(), &MediaType::OciIndex);
    let by_digest = client
        .get_manifest(repo, &amd64.digest().to_string())
        .await
        .unwrap();
    assert_eq!(by_digest, amd64);

    assert_eq!(client.head_manifest(repo, "missing").await.unwrap(), None);
    let missing = client.get_manifest(repo, "missing").await.unwrap_err();
    assert!(
        missing.is_not_found() && !missing.is_retryable(),
        "{missing}"
    );
    assert!(
        missing.to_string().contains("MANIFEST_UNKNOWN"),
        "{missing}"
    );

    let mut tags = client.list_tags(repo).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);

    // Mount into a second repository: 201.
    let other = "mirror/test/other";
    assert_eq!(
        client.mount_blob(other, &large.digest, repo).await.unwrap(),
        MountOutcome::Mounted
    );
    assert_eq!(
        client.head_blob(other, &large.digest).await.unwrap(),
        Some(300_001)
    );
    // Mount from a repository lacking the blob: 202, session cancelled, then a normal upload.
    let fresh = write_blob(dir.path(), blob_bytes(5_000, 3));
    let outcome = client
        .mount_blob(other, &fresh.digest, "mirror/test/empty")
        .await
        .unwrap();
    assert_eq!(outcome, MountOutcome::NotMounted);
    client
        .upload_blob(other, &fresh.digest, 5_000, &fresh.path)
        .await
        .unwrap();
    assert_eq!(
        client.head_blob(other, &fresh.digest).await.unwrap(),
        Some(5_000)
    );

    // A wrong size is refused locally before anything is sent.
    let before = client.requests_made();
    assert!(client
        .upload_blob(other, &fresh.digest, 4_999, &fresh.path)
        .await
        .is_err());
    assert_eq!(client.requests_made(), before);
    assert!(before > 20, "requests are counted: {before}");
}

/// Blobs of several 1 MiB read pieces arrive whole and in order, in one PUT and in PATCH chunks
/// that start and end inside pieces (uploads read one piece ahead while the last one is sent).
#[tokio::test]
async fn multi_piece_uploads_arrive_in_order() {
    let registry = TestRegistry::start();
    let client = client(&registry, Credentials::Anonymous);
    let dir = tempfile::tempdir().unwrap();
    let repo = "mirror/test/pieces";
    let whole = write_blob(dir.path(), blob_bytes(3 * 1024 * 1024 + 12_345, 7));
    let chunked = write_blob(dir.path(), blob_bytes(4 * 1024 * 1024 + 1, 8));
    client
        .upload_blob(repo, &whole.digest, whole.bytes.len() as u64, &whole.path)
        .await
        .unwrap();
    client.set_upload_limits(1024 * 1024, 1_500_000);
    client
        .upload_blob(
            repo,
            &chunked.digest,
            chunked.bytes.len() as u64,
            &chunked.path,
        )
        .await
        .unwrap();
    for blob in [&whole, &chunked] {
        let (from, bytes) = download(&client, repo, &blob.digest, 0).await;
        assert_eq!(from, 0);
        assert_eq!(bytes.len(), blob.bytes.len());
        assert!(bytes == blob.bytes, "{} came back different", blob.digest);
    }
}

#[tokio::test]
async fn htpasswd_basic_auth() {
    let registry = TestRegistry::start_htpasswd("mirror-user", "right-horse-battery");
    let dir = tempfile::tempdir().unwrap();
    let good = client(
        &registry,
        Credentials::basic("mirror-user", "right-horse-battery"),
    );
    let blob = write_blob(dir.path(), blob_bytes(1234, 9));
    good.upload_blob("auth/repo", &blob.digest, 1234, &blob.path)
        .await
        .unwrap();
    let config = write_blob(dir.path(), b"{}".to_vec());
    good.upload_blob("auth/repo", &config.digest, 2, &config.path)
        .await
        .unwrap();
    let manifest = image_manifest(&config, &[&blob]);
    good.put_manifest("auth/repo", "latest", &manifest)
        .await
        .unwrap();
    assert_eq!(
        good.get_manifest("auth/repo", "latest").await.unwrap(),
        manifest
    );
    // The challenge is remembered: one more HEAD costs exactly one request.
    let before = good.requests_made();
    assert!(good
        .head_blob("auth/repo", &blob.digest)
        .await
        .unwrap()
        .is_some());
    assert_eq!(good.requests_made(), before + 1);

    let wrong = client(
        &registry,
        Credentials::basic("mirror-user", "wrong-password-xyz"),
    );
    let err = wrong
        .head_manifest("auth/repo", "latest")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        !text.contains("wrong-password-xyz") && !format!("{err:?}").contains("wrong-password-xyz")
    );
    assert!(
        text.contains(&registry.host) && text.contains("check those credentials"),
        "{text}"
    );

    let anonymous = client(&registry, Credentials::Anonymous);
    let err = anonymous
        .get_manifest("auth/repo", "latest")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("using no credentials"), "{err}");
    anonymous.ping().await.unwrap();
}
