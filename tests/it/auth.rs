//! Credentials users already have, against real registries: htpasswd over TLS with a test CA
//! (credentials from config.json, a credential helper, environment variables), and token auth
//! with a token server that records the scopes `mirror` asks for. No secret may appear in
//! anything `mirror` prints.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use base64::Engine as _;
use serde_json::json;

use crate::support::context::{describe, flat, parse_json, TestContext};
use crate::support::images::{BuiltImage, ImageSpec};
use crate::support::lab::num;
use crate::support::pki::Pki;
use crate::support::registry::{Options, Registry};
use crate::support::skopeo;
use crate::support::token_server::TokenServer;

const USER: &str = "mirror-user";
const PASSWORD: &str = "s3cret-Passw0rd-never-printed";

/// Everything `mirror` printed in these runs.
fn captured(outputs: &[&Output]) -> String {
    outputs
        .iter()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect()
}

fn assert_no_secret(outputs: &[&Output], secrets: &[&str]) {
    let text = captured(outputs);
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "a secret leaked into the output:\n{text}"
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{secret}"));
        assert!(!text.contains(&b64), "base64 credentials leaked:\n{text}");
    }
}

/// An upstream plain registry seeded with one image, a TLS + htpasswd registry, the CA.
struct Secure {
    upstream: Registry,
    secure: Registry,
    _pki: Pki,
    image: BuiltImage,
    ctx: TestContext,
}

impl Secure {
    fn new() -> Secure {
        let pki = Pki::new();
        let secure = Registry::start_with(Options {
            tls: Some((pki.server_cert(), pki.server_key())),
            htpasswd: Some((USER.into(), PASSWORD.into())),
            ..Options::default()
        });
        let upstream = Registry::start();
        let image = ImageSpec::multi("secure", &["linux/amd64", "linux/arm64"])
            .layer_bytes(20_000)
            .build();
        image.push(&format!("{}/lab/app:1.0", upstream.host()));
        let ctx = TestContext::new();
        fs::copy(pki.ca(), ctx.work().join("ca.pem")).expect("copy CA");
        Secure {
            upstream,
            secure,
            _pki: pki,
            image,
            ctx,
        }
    }

    /// Mirrorfile pushing upstream → secure (`push.toml`) and secure → `pull_target` (`pull.toml`).
    fn write_mirrorfiles(&self, extra_secure_keys: &str, pull_target: &str) {
        let (up, sec) = (self.upstream.host(), self.secure.host());
        self.ctx.write_file(
            "push.toml",
            &format!(
                "[target]\nregistry = \"{sec}\"\nprefix = \"mirror\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n\
                 [registry.\"{sec}\"]\nca = \"ca.pem\"\n{extra_secure_keys}\n[cache]\ndir = \"cache\"\n\n\
                 [[images]]\nref = \"{up}/lab/app:1.0\"\n"
            ),
        );
        self.ctx.write_file(
            "pull.toml",
            &format!(
                "[target]\nregistry = \"{pull_target}\"\n\n[registry.\"{pull_target}\"]\ntls = \"http\"\n\n\
                 [registry.\"{sec}\"]\nca = \"ca.pem\"\n{extra_secure_keys}\n[cache]\ndir = \"cache2\"\n\n\
                 [[images]]\nref = \"{sec}/mirror/lab/app:1.0\"\n"
            ),
        );
    }

    /// Pushes into the secure registry, pulls back out of it into a plain one, and checks
    /// digests on both sides with independent means (registry storage, skopeo). Returns the
    /// outputs of the runs.
    fn push_and_pull(&self, prepare: impl Fn(&mut std::process::Command)) -> Vec<Output> {
        let plain = Registry::start();
        self.write_mirrorfiles(self.extra_keys(), &plain.host());
        let run = |args: &[&str]| {
            let mut cmd = self.ctx.command();
            prepare(&mut cmd);
            cmd.args(args).output().expect("run mirror")
        };
        let push = run(&["-f", "push.toml", "apply", "--json"]);
        assert_eq!(
            push.status.code(),
            Some(0),
            "push failed\n{}",
            describe(&push)
        );
        let report = parse_json(&push);
        assert_eq!(
            num(&report["summary"], "blobs_pushed"),
            self.image.all_blobs().len() as u64
        );
        assert_eq!(
            self.secure.tag_on_disk("mirror/lab/app", "1.0").as_deref(),
            Some(self.image.digest.as_str()),
            "the secure registry's tag points at the upstream digest"
        );
        for blob in self.image.all_blobs() {
            assert!(self
                .secure
                .blob_linked_on_disk("mirror/lab/app", &blob.digest));
        }
        let pull = run(&["-f", "pull.toml", "apply", "--json"]);
        assert_eq!(
            pull.status.code(),
            Some(0),
            "pull failed\n{}",
            describe(&pull)
        );
        let raw = skopeo::inspect_raw(&format!("{}/mirror/lab/app:1.0", plain.host()));
        assert_eq!(
            raw, self.image.bytes,
            "pulled through TLS + auth, bytes are sacred"
        );
        vec![push, pull]
    }

    fn extra_keys(&self) -> &'static str {
        ""
    }

    fn docker_config(&self, value: serde_json::Value) {
        let dir = self.ctx.home().join(".docker");
        fs::write(dir.join("config.json"), value.to_string()).expect("write config.json");
    }
}

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[test]
fn tls_htpasswd_with_docker_config_json() {
    let s = Secure::new();
    // Without `ca`, the TLS error names the host and what to set.
    s.write_mirrorfiles("", "127.0.0.1:1");
    let text = fs::read_to_string(s.ctx.work().join("push.toml"))
        .expect("read")
        .replace("ca = \"ca.pem\"\n", "");
    s.ctx.write_file("noca.toml", &text);
    let out = s.ctx.cmd(&["-f", "noca.toml", "--retries", "0", "plan"]);
    assert_ne!(out.status.code(), Some(0));
    let err = flat(&out.stderr);
    let host = s.secure.host();
    assert!(err.contains(&host) && err.contains("TLS"), "{err}");
    assert!(err.contains("ca = "), "says what to set: {err}");

    // Docker Hub's key spelling is also present: the right entry must be picked by host.
    s.docker_config(json!({"auths": {
        "https://index.docker.io/v1/": {"auth": basic("hub", "hub-password")},
        format!("https://{host}/v1/"): {"auth": basic(USER, PASSWORD)},
    }}));
    let outs = s.push_and_pull(|_| {});
    let refs: Vec<&Output> = outs.iter().chain(std::iter::once(&out)).collect();
    assert_no_secret(&refs, &[PASSWORD, "hub-password"]);
}

#[test]
fn credential_helper_on_path() {
    let s = Secure::new();
    let host = s.secure.host();
    let bin = s.ctx.home().join("bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    let calls = s.ctx.home().join("helper-calls.log");
    let script = bin.join("docker-credential-mirrortest");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\necho \"$server\" >> {calls}\n\
             if [ \"$server\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            calls = calls.display()
        ),
    )
    .expect("write helper");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod helper");
    s.docker_config(json!({"credHelpers": {host.clone(): "mirrortest"}, "auths": {}}));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let outs = s.push_and_pull(|cmd| {
        cmd.env("PATH", &path);
    });
    let called = fs::read_to_string(&calls).expect("the helper was called");
    assert!(
        called.lines().all(|l| l == host),
        "helper asked only for {host}: {called}"
    );
    assert!(!called.is_empty());
    assert_no_secret(&outs.iter().collect::<Vec<_>>(), &[PASSWORD]);
}

#[test]
fn environment_variables_named_in_the_mirrorfile() {
    let s = Secure::new();
    let plain = Registry::start();
    s.write_mirrorfiles(
        "username_env = \"MIRROR_IT_USER\"\npassword_env = \"MIRROR_IT_PASSWORD\"\n",
        &plain.host(),
    );
    // Without the variables: anonymous, denied, and the error says where it looked.
    let denied = s.ctx.cmd(&["-f", "push.toml", "apply"]);
    assert_ne!(denied.status.code(), Some(0), "{}", describe(&denied));
    let err = flat(&denied.stderr);
    assert!(err.contains("access denied (HTTP 401)"), "{err}");
    assert!(
        err.contains("MIRROR_IT_USER and MIRROR_IT_PASSWORD"),
        "names the variables: {err}"
    );
    assert!(
        err.contains("config.json"),
        "names the files it looked in: {err}"
    );
    // A wrong password from the variables: the advice is about the variables, not docker login.
    let wrong = s
        .ctx
        .command()
        .env("MIRROR_IT_USER", USER)
        .env("MIRROR_IT_PASSWORD", "not-the-password")
        .args(["-f", "push.toml", "apply"])
        .output()
        .expect("run mirror");
    assert_eq!(wrong.status.code(), Some(1), "{}", describe(&wrong));
    let err = flat(&wrong.stderr);
    assert!(
        err.contains("check the values of $MIRROR_IT_USER and $MIRROR_IT_PASSWORD"),
        "{err}"
    );
    assert!(!err.contains("docker login"), "{err}");
    assert_no_secret(&[&wrong], &["not-the-password"]);

    let run = |file: &str| {
        s.ctx
            .command()
            .env("MIRROR_IT_USER", USER)
            .env("MIRROR_IT_PASSWORD", PASSWORD)
            .args(["-f", file, "apply", "--json"])
            .output()
            .expect("run mirror")
    };
    let push = run("push.toml");
    assert_eq!(push.status.code(), Some(0), "{}", describe(&push));
    assert_eq!(
        s.secure.tag_on_disk("mirror/lab/app", "1.0").as_deref(),
        Some(s.image.digest.as_str())
    );
    let pull = run("pull.toml");
    assert_eq!(pull.status.code(), Some(0), "{}", describe(&pull));
    let raw = skopeo::inspect_raw(&format!("{}/mirror/lab/app:1.0", plain.host()));
    assert_eq!(raw, s.image.bytes);
    assert_no_secret(&[&denied, &push, &pull], &[PASSWORD]);
}

#[test]
fn wrong_password_fails_clearly_without_printing_it() {
    let s = Secure::new();
    let host = s.secure.host();
    let wrong = "Wr0ng-password-also-secret";
    s.docker_config(json!({"auths": {host.clone(): {"auth": basic(USER, wrong)}}}));
    s.write_mirrorfiles("", "127.0.0.1:1");
    let plan = s.ctx.cmd(&["-f", "push.toml", "plan"]);
    let apply = s.ctx.cmd(&["-f", "push.toml", "apply", "--json"]);
    for out in [&plan, &apply] {
        assert_eq!(out.status.code(), Some(1), "{}", describe(out));
        let err = flat(&out.stderr);
        assert!(err.contains(&host), "names the host: {err}");
        assert!(err.contains("access denied (HTTP 401)"), "{err}");
        assert!(
            err.contains("credentials from docker config") && err.contains("config.json"),
            "names the credential source: {err}"
        );
        assert!(
            err.contains(&format!("docker login {host}")),
            "says what to do: {err}"
        );
    }
    assert!(s.secure.tag_on_disk("mirror/lab/app", "1.0").is_none());
    assert_no_secret(&[&plan, &apply], &[wrong, PASSWORD]);
}

#[test]
fn mutual_tls_with_a_client_certificate() {
    let pki = Pki::new();
    let (cert, key) = pki.client_cert();
    let secure = Registry::start_with(Options {
        tls: Some((pki.server_cert(), pki.server_key())),
        client_ca: Some(pki.ca()),
        ..Options::default()
    });
    let upstream = Registry::start();
    let image = ImageSpec::single("mtls", "linux/arm64").build();
    image.push(&format!("{}/lab/m:1", upstream.host()));
    let ctx = TestContext::new();
    for (from, to) in [
        (pki.ca(), "ca.pem"),
        (cert, "client.pem"),
        (key, "client.key"),
    ] {
        fs::copy(from, ctx.work().join(to)).expect("copy pki file");
    }
    let (up, sec) = (upstream.host(), secure.host());
    let base = format!(
        "[target]\nregistry = \"{sec}\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n[cache]\ndir = \"cache\"\n\n\
         [[images]]\nref = \"{up}/lab/m:1\"\n\n[registry.\"{sec}\"]\nca = \"ca.pem\"\n"
    );
    ctx.write_file("nocert.toml", &base);
    let refused = ctx.cmd(&["-f", "nocert.toml", "--retries", "0", "apply"]);
    assert_ne!(refused.status.code(), Some(0), "{}", describe(&refused));
    let err = flat(&refused.stderr);
    assert!(err.contains(&sec), "{err}");
    ctx.write_file(
        "mtls.toml",
        &format!("{base}cert = \"client.pem\"\nkey = \"client.key\"\n"),
    );
    ctx.cmd_ok(&["-f", "mtls.toml", "apply"]);
    assert_eq!(
        secure.tag_on_disk("lab/m", "1").as_deref(),
        Some(image.digest.as_str())
    );
    // A version 1 certificate (openssl x509 -req without -extfile) is refused, saying so and
    // how to make one that works, not with an opaque "builder error".
    let (v1_cert, v1_key) = pki.client_cert_v1();
    fs::copy(v1_cert, ctx.work().join("client-v1.pem")).expect("copy v1 cert");
    fs::copy(v1_key, ctx.work().join("client-v1.key")).expect("copy v1 key");
    ctx.write_file(
        "v1.toml",
        &format!("{base}cert = \"client-v1.pem\"\nkey = \"client-v1.key\"\n"),
    );
    let refused = ctx.cmd(&["-f", "v1.toml", "--retries", "0", "apply"]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    let err = flat(&refused.stderr);
    assert!(err.contains("client-v1.pem is X.509 version 1"), "{err}");
    assert!(err.contains("extendedKeyUsage=clientAuth"), "{err}");
}

/// A registry serving a self-signed CA certificate as its own (what `openssl req -x509` makes):
/// rustls refuses it even when `ca` names it, and the error says why instead of advising the
/// `ca` setting that is already there.
#[test]
fn a_ca_certificate_served_as_the_server_certificate_is_explained() {
    let pki = Pki::new();
    let secure = Registry::start_with(Options {
        tls: Some((pki.ca(), pki.path("ca.key"))),
        ..Options::default()
    });
    let upstream = Registry::start();
    let image = ImageSpec::single("selfsigned", "linux/amd64").build();
    image.push(&format!("{}/lab/s:1", upstream.host()));
    let ctx = TestContext::new();
    fs::copy(pki.ca(), ctx.work().join("ca.pem")).expect("copy ca");
    let (up, sec) = (upstream.host(), secure.host());
    ctx.write_mirrorfile(&format!(
        "[target]\nregistry = \"{sec}\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n\
         [registry.\"{sec}\"]\nca = \"ca.pem\"\n\n[cache]\ndir = \"cache\"\n\n\
         [[images]]\nref = \"{up}/lab/s:1\"\n"
    ));
    let out = ctx.cmd(&["--retries", "0", "apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&out.stderr);
    assert!(err.contains("own certificate is marked as a CA"), "{err}");
    assert!(err.contains("signed by a separate CA"), "{err}");
    assert!(!err.contains("uses a private CA, set"), "{err}");
}

/// Token auth: an upstream plain registry; a token-auth target. Two images share a base layer,
/// so the second repository mounts it from the first.
struct Tokened {
    upstream: Registry,
    target: Registry,
    tokens: TokenServer,
    ctx: TestContext,
    a: BuiltImage,
    b: BuiltImage,
    _pki: Pki,
}

impl Tokened {
    fn new(first: &str, second: &str) -> Tokened {
        let pki = Pki::new();
        let tokens = TokenServer::start(&pki, USER, PASSWORD);
        let target = Registry::start_with(Options {
            token: Some(tokens.auth()),
            ..Options::default()
        });
        let upstream = Registry::start();
        let spec = |seed: &str| {
            ImageSpec::multi(seed, &["linux/amd64", "linux/arm64"])
                .shared_base("base")
                .layer_bytes(10_000)
        };
        let a = spec("a").build();
        let b = spec("b").build();
        a.push(&format!("{}/lab/{first}:1", upstream.host()));
        b.push(&format!("{}/lab/{second}:1", upstream.host()));
        let ctx = TestContext::new();
        let (up, tgt) = (upstream.host(), target.host());
        fs::write(
            ctx.home().join(".docker/config.json"),
            json!({"auths": {tgt.clone(): {"auth": basic(USER, PASSWORD)}}}).to_string(),
        )
        .expect("write config.json");
        ctx.write_mirrorfile(&format!(
            "[target]\nregistry = \"{tgt}\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n[registry.\"{tgt}\"]\ntls = \"http\"\n\n\
             [cache]\ndir = \"cache\"\n\n[[images]]\nref = \"{up}/lab/{first}:1\"\n\n[[images]]\nref = \"{up}/lab/{second}:1\"\n"
        ));
        Tokened {
            upstream,
            target,
            tokens,
            ctx,
            a,
            b,
            _pki: pki,
        }
    }

    fn assert_copied(&self, first: &str, second: &str) {
        for (repo, image) in [(first, &self.a), (second, &self.b)] {
            let repo = format!("lab/{repo}");
            assert_eq!(
                self.target.tag_on_disk(&repo, "1").as_deref(),
                Some(image.digest.as_str()),
                "{repo}"
            );
            for blob in image.all_blobs() {
                assert!(
                    self.target.blob_linked_on_disk(&repo, &blob.digest),
                    "{repo} {}",
                    blob.digest
                );
            }
        }
    }
}

#[test]
fn token_auth_scopes_and_one_token_for_a_cross_repository_mount() {
    let t = Tokened::new("a", "b");
    let out = t.ctx.cmd(&["apply", "--json", "--jobs", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = parse_json(&out);
    t.assert_copied("a", "b");
    // One shared base layer per platform: both mounted into lab/b from lab/a.
    assert_eq!(num(&report["summary"], "blobs_mounted"), 2, "{report:#}");
    let requests = t.tokens.requests();
    assert!(requests.iter().all(|r| r.granted), "{requests:?}");
    let allowed = [
        "repository:lab/a:pull",
        "repository:lab/b:pull",
        "repository:lab/a:pull,push",
        "repository:lab/b:pull,push",
    ];
    for r in &requests {
        for scope in &r.scopes {
            assert!(
                allowed.contains(&scope.as_str()),
                "unexpected scope {scope}: {requests:?}"
            );
        }
    }
    let mount: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.scopes.contains(&"repository:lab/b:pull,push".to_string())
                && r.scopes.contains(&"repository:lab/a:pull".to_string())
        })
        .collect();
    assert_eq!(
        mount.len(),
        1,
        "one token for both mounts, with both scopes: {requests:?}"
    );
    assert_eq!(mount[0].scopes.len(), 2);
    // Tokens are reused until they expire: a handful of requests, not one per HTTP request.
    assert!(
        requests.len() <= 8,
        "{} token requests: {requests:?}",
        requests.len()
    );
    assert_no_secret(&[&out], &[PASSWORD]);

    // A rerun: still authorised, nothing moves.
    t.tokens.clear();
    let again = t.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&again["summary"], "blobs_pushed"), 0);
    assert!(t
        .tokens
        .requests()
        .iter()
        .all(|r| r.scopes.iter().all(|s| s.ends_with(":pull"))));
    let _ = &t.upstream;
}

#[test]
fn a_token_service_honouring_only_the_last_scope_falls_back_to_upload() {
    // lab/b is pushed first; lab/a mounts from it. The scopes sort as
    // `repository:lab/a:pull,push`, `repository:lab/b:pull`: the last one alone lacks push.
    let t = Tokened::new("b", "a");
    t.tokens.set_only_last_scope(true);
    let out = t.ctx.cmd(&["apply", "--json", "--jobs", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = parse_json(&out);
    t.assert_copied("b", "a");
    assert_eq!(num(&report["summary"], "blobs_mounted"), 0, "{report:#}");
    let requests = t.tokens.requests();
    let both = requests.iter().filter(|r| r.scopes.len() == 2).count();
    // One token for the refused mount and one refresh; the host is then not asked again.
    assert!((1..=2).contains(&both), "mount tried once: {requests:?}");
    assert!(
        requests
            .iter()
            .any(|r| r.scopes == ["repository:lab/a:pull,push".to_string()]),
        "the target scope alone was requested for the upload: {requests:?}"
    );
}
