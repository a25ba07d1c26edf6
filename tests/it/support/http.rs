//! A minimal HTTP/1.0 client over `std::net::TcpStream`, enough to ask a local registry
//! whether something exists. Deliberately independent of `mirror`'s own client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Media types sent in `Accept` for manifest requests (distribution 2.8.2 answers 404 without one).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `host` (`127.0.0.1:PORT`) and reads the whole answer.
pub fn request(
    host: &str,
    method: &str,
    path: &str,
    accept: Option<&str>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(accept) = accept {
        req.push_str(&format!("Accept: {accept}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of HTTP headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("HTTP head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("empty HTTP answer"))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad HTTP status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

/// GET that panics with a clear message when the registry cannot be reached.
pub fn get(host: &str, path: &str, accept: Option<&str>) -> Response {
    request(host, "GET", path, accept).unwrap_or_else(|e| panic!("GET http://{host}{path}: {e}"))
}

/// HEAD `/v2/REPO/blobs/DIGEST` answers 200.
pub fn blob_exists(host: &str, repo: &str, digest: &str) -> bool {
    let path = format!("/v2/{repo}/blobs/{digest}");
    let resp = request(host, "HEAD", &path, None)
        .unwrap_or_else(|e| panic!("HEAD http://{host}{path}: {e}"));
    match resp.status {
        200 => true,
        404 => false,
        other => panic!("HEAD http://{host}{path}: unexpected status {other}"),
    }
}

/// HEAD `/v2/REPO/manifests/REF` (tag or digest) answers 200.
pub fn manifest_exists(host: &str, repo: &str, reference: &str) -> bool {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = request(host, "HEAD", &path, Some(MANIFEST_ACCEPT))
        .unwrap_or_else(|e| panic!("HEAD http://{host}{path}: {e}"));
    match resp.status {
        200 => true,
        404 => false,
        other => panic!("HEAD http://{host}{path}: unexpected status {other}"),
    }
}

/// The repositories listed by `GET /v2/_catalog` (follows no pagination: tests hold few repos).
pub fn catalog(host: &str) -> Vec<String> {
    let resp = get(host, "/v2/_catalog?n=1000", None);
    assert_eq!(resp.status, 200, "GET /v2/_catalog: {}", resp.text());
    let value: serde_json::Value =
        serde_json::from_slice(&resp.body).expect("catalog answer is JSON");
    let mut repos: Vec<String> = value["repositories"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    repos.sort();
    repos
}

/// Tags of one repository, sorted (distribution returns them unsorted).
pub fn tags(host: &str, repo: &str) -> Vec<String> {
    let resp = get(host, &format!("/v2/{repo}/tags/list"), None);
    if resp.status == 404 {
        return Vec::new();
    }
    assert_eq!(resp.status, 200, "GET tags/list: {}", resp.text());
    let value: serde_json::Value = serde_json::from_slice(&resp.body).expect("tags answer is JSON");
    let mut tags: Vec<String> = value["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// Sends one request with a body and extra headers; reads the whole answer.
pub fn send(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Uploads `bytes` as a blob of `repo` (POST, then one monolithic PUT), independently of
/// `mirror`'s client: used to seed upstream content skopeo cannot write (Docker media types,
/// nested indexes, inconsistent platforms).
pub fn push_blob(host: &str, repo: &str, bytes: &[u8]) {
    let digest = super::images::sha256(bytes);
    let start = send(
        host,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    )
    .unwrap_or_else(|e| panic!("POST upload to {host}/{repo}: {e}"));
    assert_eq!(start.status, 202, "POST upload: {}", start.text());
    let location = start
        .header("Location")
        .expect("upload Location")
        .to_string();
    let path = location
        .strip_prefix(&format!("http://{host}"))
        .unwrap_or(&location)
        .to_string();
    let sep = if path.contains('?') { '&' } else { '?' };
    let put = send(
        host,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .unwrap_or_else(|e| panic!("PUT blob to {host}/{repo}: {e}"));
    assert_eq!(put.status, 201, "PUT blob {digest}: {}", put.text());
}

/// PUTs manifest bytes under `reference` with `media_type` as Content-Type.
pub fn put_manifest(host: &str, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let resp = send(
        host,
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    )
    .unwrap_or_else(|e| panic!("PUT manifest {repo}:{reference}: {e}"));
    assert_eq!(
        resp.status,
        201,
        "PUT manifest {repo}:{reference}: {}",
        resp.text()
    );
}
