//! A small token server for distribution's `auth: token` mode: it checks Basic credentials,
//! signs RS256 JWTs with a test key (the certificate goes in the `x5c` header; the registry
//! trusts it through `rootcertbundle`), and records every request's scopes so tests can check
//! what `mirror` asked for. `only_last_scope` imitates token services that honour only the
//! last `scope` parameter.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::json;

use super::pki::Pki;
use super::registry::TokenAuth;

pub const SERVICE: &str = "mirror-test-registry";
pub const ISSUER: &str = "mirror-test-issuer";

/// One token request as received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `scope` parameters, in order.
    pub scopes: Vec<String>,
    /// The Basic user, when credentials came and were right.
    pub user: Option<String>,
    /// Whether an `Authorization` header came at all.
    pub had_credentials: bool,
    pub granted: bool,
}

struct State {
    key: RsaKeyPair,
    cert_der: Vec<u8>,
    user: String,
    password: String,
    only_last_scope: AtomicBool,
    log: Mutex<Vec<TokenRequest>>,
}

pub struct TokenServer {
    port: u16,
    state: Arc<State>,
    rootcertbundle: PathBuf,
}

impl TokenServer {
    /// Serves tokens for `user`/`password` (anything else gets 401).
    pub fn start(pki: &Pki, user: &str, password: &str) -> TokenServer {
        let (pk8, cert_pem, cert_der) = pki.token_signer();
        let key = RsaKeyPair::from_pkcs8(&pk8).expect("token key is PKCS#8 RSA");
        let state = Arc::new(State {
            key,
            cert_der,
            user: user.to_string(),
            password: password.to_string(),
            only_last_scope: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let port = listener.local_addr().expect("addr").port();
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        TokenServer {
            port,
            state,
            rootcertbundle: cert_pem,
        }
    }

    /// The registry settings that trust this server.
    pub fn auth(&self) -> TokenAuth {
        TokenAuth {
            realm: format!("http://127.0.0.1:{}/token", self.port),
            service: SERVICE.to_string(),
            issuer: ISSUER.to_string(),
            rootcertbundle: self.rootcertbundle.clone(),
        }
    }

    pub fn set_only_last_scope(&self, yes: bool) {
        self.state.only_last_scope.store(yes, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.log.lock().expect("token log").clone()
    }

    pub fn clear(&self) {
        self.state.log.lock().expect("token log").clear();
    }
}

fn serve(stream: TcpStream, state: &State) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut authorization = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("authorization") {
                    authorization = Some(value.trim().to_string());
                }
            }
        }
        let (status, body) = answer(state, &target, authorization.as_deref());
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut out = &stream;
        if out.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(state: &State, target: &str, authorization: Option<&str>) -> (&'static str, String) {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut scopes = Vec::new();
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("scope=") {
            scopes.push(percent_decode(value));
        }
    }
    let user = authorization
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| {
            let (u, p) = text.split_once(':')?;
            (u == state.user && p == state.password).then(|| u.to_string())
        });
    let granted = user.is_some();
    state.log.lock().expect("token log").push(TokenRequest {
        scopes: scopes.clone(),
        user: user.clone(),
        had_credentials: authorization.is_some(),
        granted,
    });
    if !granted {
        return (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
        );
    }
    let honoured: Vec<&String> = if state.only_last_scope.load(Ordering::SeqCst) {
        scopes.last().into_iter().collect()
    } else {
        scopes.iter().collect()
    };
    let access: Vec<_> = honoured
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = json!({
        "iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
        "iat": now, "jti": format!("{now}-{}", scopes.join(" ")), "access": access,
    });
    let header = json!({
        "typ": "JWT", "alg": "RS256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&state.cert_der)],
    });
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    let mut signature = vec![0u8; state.key.public().modulus_len()];
    state
        .key
        .sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .expect("sign token");
    let token = format!("{signing_input}.{}", url.encode(signature));
    let body = json!({"token": token, "access_token": token, "expires_in": 300});
    ("200 OK", body.to_string())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
