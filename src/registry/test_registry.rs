//! A real CNCF distribution registry (`/usr/bin/docker-registry`) for tests, on 127.0.0.1 with a
//! free port and a temporary root, killed on drop.
//!
//! Tests talk to the real thing because distribution's quirks (mandatory Accept headers, 202 on a
//! failed mount, sparse indexes refused) are exactly what a fake would get wrong.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/docker-registry";

pub struct TestRegistry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
}

impl TestRegistry {
    /// An open registry (no auth).
    pub fn start() -> TestRegistry {
        TestRegistry::start_with_auth(None)
    }

    /// A registry requiring htpasswd basic auth for `user`/`password`.
    pub fn start_htpasswd(user: &str, password: &str) -> TestRegistry {
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (apache2-utils) must be installed for the auth tests");
        assert!(
            out.status.success(),
            "htpasswd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestRegistry::start_with_auth(Some(out.stdout))
    }

    fn start_with_auth(htpasswd: Option<Vec<u8>>) -> TestRegistry {
        assert!(
            std::path::Path::new(BINARY).exists(),
            "{BINARY} is missing: install the `docker-registry` package (apt-get install -y docker-registry)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let host = format!("127.0.0.1:{port}");
        let root = dir.path().join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: mirror-test-secret\nhealth:\n  storagedriver:\n    enabled: false\n",
            root.display()
        );
        if let Some(entry) = htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, entry).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let mut registry = TestRegistry { child, dir, host };
        registry.wait_ready();
        registry
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                panic!("docker-registry exited with {status}:\n{log}");
            }
            if answers(&self.host) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        panic!(
            "docker-registry did not answer GET /v2/ on {} within 20 s:\n{log}",
            self.host
        );
    }
}

fn answers(host: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(host) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
