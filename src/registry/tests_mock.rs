//! Protocol and fault tests against the scripted server: bearer tokens and their cache, scopes
//! for mounts, refresh tokens, redirects, 413 fallback, pagination, and hostile answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::model::{RegistrySettings, TlsMode};
use crate::oci::{Digest, MAX_MANIFEST_BYTES};

use super::mock_server::{MockServer, Reply, Request};
use super::{install_crypto_provider, Client, Credentials, MountOutcome, RegistryError};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;

fn client(host: &str, credentials: Credentials) -> Client {
    install_crypto_provider();
    let settings = RegistrySettings {
        tls: TlsMode::Http,
        ..RegistrySettings::default()
    };
    Client::new(host, &settings, credentials).unwrap()
}

fn manifest_reply() -> Reply {
    Reply::new(200)
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .header(
            "Docker-Content-Digest",
            Digest::sha256_of(MANIFEST.as_bytes()).to_string(),
        )
        .body(MANIFEST)
}

/// A bearer-protected registry: tokens `tok-N` with N ≥ `first_valid` are accepted.
fn bearer_registry(first_valid: Arc<AtomicUsize>) -> MockServer {
    let issued = AtomicUsize::new(0);
    MockServer::start(move |req: &Request| {
        let host = req.header("host").unwrap_or_default().to_string();
        if req.path() == "/token" {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::new(200).body(format!(r#"{{"token":"tok-{n}","expires_in":300}}"#));
        }
        let valid = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer tok-"))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n >= first_valid.load(Ordering::SeqCst));
        if !valid {
            let challenge = format!(
                r#"Bearer realm="http://{host}/token",service="mock",scope="repository:app:pull""#
            );
            return Reply::new(401).header("WWW-Authenticate", challenge).body(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
        }
        match (req.method.as_str(), req.path()) {
            ("GET", "/v2/app/manifests/v1") => manifest_reply(),
            ("POST", "/v2/app/blobs/uploads/") => Reply::new(201),
            _ => Reply::new(404),
        }
    })
}

#[tokio::test]
async fn bearer_tokens_are_cached_scoped_and_refreshed_once() {
    let first_valid = Arc::new(AtomicUsize::new(1));
    let server = bearer_registry(first_valid.clone());
    let client = client(&server.host, Credentials::basic("u", "p"));
    client.get_manifest("app", "v1").await.unwrap();
    assert_eq!(client.requests_made(), 3, "401, token, retry");
    client.get_manifest("app", "v1").await.unwrap();
    assert_eq!(client.requests_made(), 4, "token sent up front, no probe");

    let digest = Digest::sha256_of(b"layer");
    assert_eq!(
        client.mount_blob("app", &digest, "base").await.unwrap(),
        MountOutcome::Mounted
    );
    let requests = server.requests();
    let tokens: Vec<&Request> = requests.iter().filter(|r| r.path() == "/token").collect();
    assert_eq!(tokens.len(), 2);
    assert!(tokens[0]
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(
        tokens[0].query(),
        "service=mock&scope=repository%3Aapp%3Apull"
    );
    assert_eq!(
        tokens[1].query(),
        "service=mock&scope=repository%3Aapp%3Apull%2Cpush&scope=repository%3Abase%3Apull",
        "a mount needs both scopes in one token"
    );

    // The registry stops accepting the cached token: one refresh, one retry.
    first_valid.store(3, Ordering::SeqCst);
    let before = client.requests_made();
    client.get_manifest("app", "v1").await.unwrap();
    assert_eq!(
        client.requests_made(),
        before + 3,
        "stale token, new token, retry"
    );
}

#[tokio::test]
async fn identity_token_uses_the_refresh_token_grant() {
    let server = MockServer::start(|req: &Request| {
        let host = req.header("host").unwrap_or_default().to_string();
        if req.path() == "/oauth" {
            let body = String::from_utf8_lossy(&req.body);
            let ok = req.method == "POST"
                && body.contains("grant_type=refresh_token")
                && body.contains("refresh_token=refresh-secret")
                && body.contains("client_id=mirror")
                && body.contains("scope=repository%3Aapp%3Apull");
            return if ok {
                Reply::new(200).body(r#"{"access_token":"at-1"}"#)
            } else {
                Reply::new(400).body("bad grant")
            };
        }
        if req.header("authorization") == Some("Bearer at-1") {
            return manifest_reply();
        }
        Reply::new(401).header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="http://{host}/oauth",service="s""#),
        )
    });
    let client = client(
        &server.host,
        Credentials::IdentityToken("refresh-secret".into()),
    );
    client.get_manifest("app", "v1").await.unwrap();
}

#[tokio::test]
async fn redirects_do_not_carry_authorization_to_other_hosts() {
    let storage = MockServer::start(|_req: &Request| Reply::new(200).body("blob-bytes"));
    let storage_host = storage.host.clone();
    let registry = MockServer::start(move |req: &Request| {
        if req.header("authorization").is_none() {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#);
        }
        Reply::new(307).header(
            "Location",
            format!("http://{storage_host}/bucket/object?sig=secret"),
        )
    });
    let client = client(&registry.host, Credentials::basic("u", "p"));
    let mut blob = client
        .get_blob("app", &Digest::sha256_of(b"blob-bytes"), 0)
        .await
        .unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = blob.stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes, b"blob-bytes");
    let at_storage = storage.requests();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].header("authorization"), None);
    assert!(registry
        .requests()
        .last()
        .unwrap()
        .header("authorization")
        .is_some());
}

#[tokio::test]
async fn too_large_single_put_falls_back_to_chunks_keeping_session_state() {
    let sessions = AtomicUsize::new(0);
    let server = MockServer::start(move |req: &Request| match req.method.as_str() {
        "POST" => {
            let n = sessions.fetch_add(1, Ordering::SeqCst);
            Reply::new(202).header("Location", format!("/upload/{n}?state=s{n}"))
        }
        "PUT" if !req.body.is_empty() => {
            Reply::new(413).body("<html>Request Entity Too Large</html>")
        }
        "PATCH" => Reply::new(202).header("Location", format!("{}?state=next", req.path())),
        "PUT" if req.query().starts_with("state=next&digest=sha256%3A") => Reply::new(201),
        "DELETE" => Reply::new(204),
        _ => Reply::new(400),
    });
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let path = dir.path().join("blob");
    std::fs::write(&path, &content).unwrap();
    let client = client(&server.host, Credentials::Anonymous);
    client.set_upload_limits(1 << 20, 4_000);
    let digest = Digest::sha256_of(&content);
    client
        .upload_blob("app", &digest, 10_000, &path)
        .await
        .unwrap();
    let requests = server.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        ["POST", "PUT", "DELETE", "POST", "PATCH", "PATCH", "PATCH", "PUT"]
    );
    assert_eq!(
        requests[1].query(),
        format!("state=s0&digest={}", digest.to_string().replace(':', "%3A"))
    );
    let ranges: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.header("content-range"))
        .collect();
    assert_eq!(ranges, ["0-3999", "4000-7999", "8000-9999"]);
    let sent: Vec<u8> = requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .flat_map(|r| r.body.clone())
        .collect();
    assert_eq!(sent, content);
}

#[tokio::test]
async fn tag_lists_follow_link_pagination() {
    let server = MockServer::start(|req: &Request| match req.query() {
        "" => Reply::new(200)
            .header("Link", r#"</v2/app/tags/list?last=b&n=2>; rel="next""#)
            .body(r#"{"name":"app","tags":["a","b"]}"#),
        "last=b&n=2" => Reply::new(200).body(r#"{"name":"app","tags":["c"]}"#),
        _ => Reply::new(200).body(r#"{"name":"app","tags":null}"#),
    });
    let client = client(&server.host, Credentials::Anonymous);
    assert_eq!(client.list_tags("app").await.unwrap(), ["a", "b", "c"]);
}

#[tokio::test]
async fn hostile_and_failing_answers_become_clear_errors() {
    let wrong = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let server = MockServer::start(move |req: &Request| match req.path() {
        "/v2/busy/manifests/v1" => Reply::new(429)
            .header("Retry-After", "3")
            .header("Content-Type", "text/html")
            .body(format!(
                "<html><body>{}</body></html>",
                "slow down ".repeat(100)
            )),
        "/v2/down/manifests/v1" => {
            Reply::new(503).body(r#"{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}"#)
        }
        "/v2/liar/manifests/v1" => Reply::new(200)
            .header(
                "Docker-Content-Digest",
                Digest::sha256_of(b"other").to_string(),
            )
            .body(MANIFEST),
        p if p.starts_with("/v2/swap/manifests/") => Reply::new(200).body(wrong),
        "/v2/huge/manifests/v1" => Reply {
            unsized_body: true,
            ..Reply::new(200).body(vec![b' '; MAX_MANIFEST_BYTES + 10])
        },
        "/v2/nodigest/manifests/v1" => Reply::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(MANIFEST),
        _ => Reply::new(404).body("404 page not found"),
    });
    let client = client(&server.host, Credentials::basic("u", "never-printed"));

    let busy = client.get_manifest("busy", "v1").await.unwrap_err();
    assert!(busy.is_retryable());
    assert_eq!(busy.retry_after(), Some(Duration::from_secs(3)));
    let text = busy.to_string();
    assert!(
        text.contains("HTTP 429") && text.contains("GET manifest busy:v1") && text.len() < 400,
        "{text}"
    );

    let down = client.get_manifest("down", "v1").await.unwrap_err();
    assert!(
        down.is_retryable() && down.to_string().contains("UNAVAILABLE (maintenance)"),
        "{down}"
    );

    let liar = client.get_manifest("liar", "v1").await.unwrap_err();
    assert!(
        matches!(liar, RegistryError::DigestMismatch { .. }),
        "{liar:?}"
    );

    let asked = Digest::sha256_of(MANIFEST.as_bytes());
    let swap = client
        .get_manifest("swap", &asked.to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(&swap, RegistryError::DigestMismatch { expected, .. } if *expected == asked),
        "{swap:?}"
    );

    let huge = client.get_manifest("huge", "v1").await.unwrap_err();
    assert!(matches!(huge, RegistryError::Manifest { .. }), "{huge:?}");

    let head = client
        .head_manifest("nodigest", "v1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.digest, asked, "falls back to GET + hash");

    let missing = client.get_blob("gone", &asked, 0).await.unwrap_err();
    assert!(
        missing.is_not_found() && missing.to_string().contains("404 page not found"),
        "{missing}"
    );
    assert!(!format!("{missing} {missing:?} {busy:?}").contains("never-printed"));

    install_crypto_provider();
    let https = Client::new(
        &server.host,
        &RegistrySettings::default(),
        Credentials::Anonymous,
    )
    .unwrap();
    let tls = https.ping().await.unwrap_err();
    let text = tls.to_string();
    assert!(matches!(tls, RegistryError::Tls { .. }), "{tls:?}");
    assert!(
        text.contains(&format!("[registry.\"{}\"]", server.host)) && text.contains("skip-verify"),
        "{text}"
    );

    drop(server);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = client_for_port(port).ping().await.unwrap_err();
    assert!(
        matches!(refused, RegistryError::Transport { .. })
            && refused.is_retryable()
            && refused.unreachable_host() == Some(&*format!("127.0.0.1:{port}")),
        "{refused:?}"
    );
}

fn client_for_port(port: u16) -> Client {
    client(&format!("127.0.0.1:{port}"), Credentials::Anonymous)
}
