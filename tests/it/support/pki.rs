//! Certificates made by the test with the `openssl` CLI: a CA, a server certificate for
//! 127.0.0.1 signed by it, client certificates for mutual TLS, and an RSA key + self-signed
//! certificate for signing registry tokens. Everything lives in a temp dir of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub struct Pki {
    dir: TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// A fresh CA (EC P-256, quick to make) and a server certificate for `127.0.0.1`.
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("mirror-it-pki-")
            .tempdir()
            .expect("pki temp dir");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=mirror test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        let pki = Pki { dir };
        pki.sign(
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki
    }

    /// Makes `NAME.key` + `NAME.pem` signed by the CA with the given extensions.
    fn sign(&self, name: &str, cn: &str, ext: &str) {
        self.sign_as(name, cn, Some(ext));
    }

    /// [`Pki::sign`]; with no extensions at all, openssl makes an X.509 version 1 certificate.
    fn sign_as(&self, name: &str, cn: &str, ext: Option<&str>) {
        let d = self.dir.path();
        if let Some(ext) = ext {
            fs::write(
                d.join(format!("{name}.ext")),
                format!("basicConstraints=CA:FALSE\n{ext}"),
            )
            .expect("write ext");
        }
        let (key, csr, pem, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
        ];
        if ext.is_some() {
            args.extend(["-extfile", &extfile]);
        }
        openssl(d, &args);
    }

    /// A client certificate without extensions (`client-v1.pem`, `client-v1.key`): X.509
    /// version 1, what `openssl x509 -req` makes without `-extfile`.
    pub fn client_cert_v1(&self) -> (PathBuf, PathBuf) {
        self.sign_as("client-v1", "mirror test client", None);
        (self.path("client-v1.pem"), self.path("client-v1.key"))
    }

    /// A client certificate (`client.pem`, `client.key`) for mutual TLS.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        self.sign(
            "client",
            "mirror test client",
            "extendedKeyUsage=clientAuth\n",
        );
        (self.path("client.pem"), self.path("client.key"))
    }

    /// An RSA key (PKCS#8 DER, for ring) and its self-signed certificate (PEM for the registry's
    /// `rootcertbundle`, DER for the token's `x5c` header).
    pub fn token_signer(&self) -> (Vec<u8>, PathBuf, Vec<u8>) {
        let d = self.dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "token.key",
                "-out",
                "token.pem",
                "-days",
                "2",
                "-subj",
                "/CN=mirror test token issuer",
            ],
        );
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                "token.key",
                "-outform",
                "DER",
                "-out",
                "token.pk8",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-in",
                "token.pem",
                "-outform",
                "DER",
                "-out",
                "token.der",
            ],
        );
        (
            fs::read(d.join("token.pk8")).expect("read token key"),
            self.path("token.pem"),
            fs::read(d.join("token.der")).expect("read token cert"),
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.path("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }

    /// A directory holding `ca.crt`, as skopeo's `--cert-dir` wants.
    pub fn cert_dir(&self) -> PathBuf {
        let dir = self.path("certs.d");
        fs::create_dir_all(&dir).expect("mkdir certs.d");
        fs::copy(self.ca(), dir.join("ca.crt")).expect("copy ca.crt");
        dir
    }
}
