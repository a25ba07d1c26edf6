//! A real CNCF distribution registry (`/usr/bin/docker-registry`, Debian 2.8.2) on 127.0.0.1.
//!
//! Each [`Registry`] has its own temp directory holding the config, the storage root and the
//! registry's log, listens on a free port, and is killed when dropped. [`Options`] turn on TLS
//! (with a test CA), mutual TLS, htpasswd or token authentication.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::http;

const BINARY: &str = "/usr/bin/docker-registry";
const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A response header (`http.headers` in the config) naming the instance, so readiness checks
/// cannot mistake another registry that grabbed the same port for this one.
const ID_HEADER: &str = "X-Mirror-Test-Registry";

pub struct Registry {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    options: Options,
}

/// How a registry is configured beyond the defaults (plain HTTP, no auth).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve HTTPS with this certificate and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// With `tls`: require client certificates signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// htpasswd authentication for this user and password (bcrypt, made with `htpasswd -B`).
    pub htpasswd: Option<(String, String)>,
    /// Token authentication.
    pub token: Option<TokenAuth>,
}

#[derive(Debug, Clone)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificate whose key signs the tokens.
    pub rootcertbundle: PathBuf,
}

impl Registry {
    /// Starts a registry on a free port with empty storage and waits until `/v2/` answers.
    pub fn start() -> Registry {
        Registry::start_with(Options::default())
    }

    /// Starts a registry configured by `options`.
    pub fn start_with(options: Options) -> Registry {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} not found: install docker-registry (apt-get install docker-registry)"
        );
        let mut registry = Registry::unstarted();
        registry.options = options;
        registry.launch_on_free_port();
        registry
    }

    /// The tag's digest as stored on disk (`_manifests/tags/TAG/current/link`): an independent
    /// check that needs neither TLS nor credentials.
    pub fn tag_on_disk(&self, repo: &str, tag: &str) -> Option<String> {
        let link = self
            .repo_dir(repo)
            .join("_manifests/tags")
            .join(tag)
            .join("current/link");
        fs::read_to_string(link).ok()
    }

    /// Whether `repo` links layer (blob) `digest` on disk.
    pub fn blob_linked_on_disk(&self, repo: &str, digest: &str) -> bool {
        let hex = digest.trim_start_matches("sha256:");
        self.repo_dir(repo)
            .join("_layers/sha256")
            .join(hex)
            .join("link")
            .is_file()
    }

    /// The bytes of blob `digest` in the registry's storage.
    pub fn blob_data_on_disk(&self, digest: &str) -> Option<Vec<u8>> {
        let hex = digest.trim_start_matches("sha256:");
        let path = self
            .storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        fs::read(path).ok()
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.storage()
            .join("docker/registry/v2/repositories")
            .join(repo)
    }

    /// A unique name for this instance (its temp dir name).
    pub fn id(&self) -> String {
        self.dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Starts a registry on exactly `port`; `Err` (with the registry log) when that fails,
    /// for example because the port is taken, even by another registry.
    pub fn try_start_on(port: u16) -> Result<Registry, String> {
        let mut registry = Registry::unstarted();
        registry.launch(port)?;
        Ok(registry)
    }

    /// `127.0.0.1:PORT`, as used in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The storage root (`storage.filesystem.rootdirectory`).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's own log file (it logs there, not to the test output).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The registry's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the registry (storage is kept), so tests can simulate an unreachable registry.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch(self.port) {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restarting registry on port {}: {e}; retrying", self.port);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("restart registry on port {}: {e}", self.port),
            }
        }
    }

    fn unstarted() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("mirror-it-registry-")
            .tempdir()
            .expect("create registry temp dir");
        fs::create_dir_all(dir.path().join("storage")).expect("create registry storage dir");
        Registry {
            dir,
            port: 0,
            child: None,
            options: Options::default(),
        }
    }

    fn launch_on_free_port(&mut self) {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            match self.launch(port) {
                Ok(()) => return,
                Err(e) => last_error = e,
            }
        }
        panic!("could not start docker-registry after {START_ATTEMPTS} attempts: {last_error}");
    }

    /// Writes the config for `port`, spawns the registry and waits for `/v2/`.
    fn launch(&mut self, port: u16) -> Result<(), String> {
        self.port = port;
        let config = self.dir.path().join("config.yml");
        let mut yaml = config_yaml(port, &self.storage(), &self.id());
        yaml.push_str(&self.extra_config());
        fs::write(&config, yaml).expect("write registry config");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open registry log");
        let log_err = log.try_clone().expect("clone registry log handle");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn {BINARY}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "docker-registry exited early ({status}) on port {port}; log:\n{}",
                        self.log()
                    ));
                }
            }
            if let Ok(resp) = http::request(&self.host(), "GET", "/v2/", None) {
                // Our own process answers, not another registry that won the port race.
                let is_ours = resp.header(ID_HEADER) == Some(self.id().as_str());
                if matches!(resp.status, 200 | 401) && is_ours {
                    return Ok(());
                }
                // Go's TLS listener answers plain HTTP with this 400 (no custom headers).
                if self.options.tls.is_some()
                    && resp.status == 400
                    && resp.text().contains("HTTPS server")
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "docker-registry on port {port} not ready after {READY_TIMEOUT:?}; log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Registry {
    /// The `http.tls` and `auth` sections for the options.
    fn extra_config(&self) -> String {
        // `http:` is the last section of the base config, so TLS settings nest under it.
        let mut yaml = String::new();
        let o = &self.options;
        if let Some((cert, key)) = &o.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            if let Some(ca) = &o.client_ca {
                yaml.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
            }
        }
        if let Some((user, password)) = &o.htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("run htpasswd (package apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            let file = self.dir.path().join("htpasswd");
            fs::write(&file, out.stdout).expect("write htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: mirror-test\n    path: {}\n",
                file.display()
            ));
        }
        if let Some(t) = &o.token {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.rootcertbundle.display()
            ));
        }
        yaml
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago (bind to port 0, read it, release it).
/// The bind race is handled by [`Registry::launch_on_free_port`] retrying.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn config_yaml(port: u16, storage: &Path, id: &str) -> String {
    format!(
        "version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
health:
  storagedriver:
    enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: mirror-integration-tests-fixed-secret
  headers:
    {ID_HEADER}: [\"{id}\"]
",
        storage = storage.display()
    )
}
