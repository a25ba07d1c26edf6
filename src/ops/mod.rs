//! One function per command, wiring the stages: open endpoints → resolve → plan → execute.
//! Commands in `cli` stay thin over these; tests and benchmarks can call them directly.

pub mod cache;
pub mod inspect;
pub mod inspect_archive;
mod lock;
pub mod saved;

pub use lock::{LockMode, Resolution};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod bundles;

use crate::archive::bundle_write::{LOCK_ENTRY, MIRRORFILE_ENTRY};
use crate::archive::BundleWritten;
use crate::endpoint::bundle::{BundleError, BundleSink};
use crate::endpoint::layout::{LayoutError, LayoutSink};
use crate::endpoint::offline::OfflineSource;
use crate::endpoint::registry::RegistryEndpoint;
use crate::endpoint::retrying::RetryingSink;
use crate::endpoint::{EndpointError, Sink};
use crate::environment::Environment;
use crate::execute::{self, Options, Outcome, Reporter, RetryPolicy};
use crate::lock::{Change, LockError};
use crate::model::{ImageSource, Model, Origin, Target};
use crate::oci::Digest;
use crate::plan::{self, Plan, PlanError};
use crate::registry::{Client, CredentialStore, RegistryError};
use crate::resolve::archives::{ArchiveStats, ArchivesResolved};
use crate::resolve::{self, ResolveError, ResolveErrorKind, ResolvedImage, Sources};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("cannot set up a client for registry {host}: {source}")]
    Client { host: String, source: RegistryError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}", unresolved_summary(.0.len()))]
    Resolve(Vec<ResolveError>),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot open the target {target}: {source}")]
    Target {
        target: String,
        source: EndpointError,
    },
    #[error("bundle `{bundle}` (declared at {origin}): {source}")]
    Bundle {
        bundle: String,
        origin: Origin,
        source: LayoutError,
    },
    #[error("bundle `{bundle}` (declared at {origin}): image `{name}`: {reason}")]
    BundleImage {
        bundle: String,
        origin: Origin,
        name: String,
        reason: String,
    },
    #[error("two different images would go to `{target}`: {first} and {second}")]
    Conflict {
        target: String,
        first: String,
        second: String,
    },
    #[error(transparent)]
    BundleWrite(#[from] BundleError),
    #[error("a worker thread failed: {0}")]
    Worker(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{path} is missing, and --locked needs it")]
    NoLock { path: PathBuf },
    #[error("{path} is out of date, and --locked forbids changing it:\n{}", lines(.changes))]
    LockedChanges {
        path: PathBuf,
        /// Each change, with where its entry is declared (none for a removed one).
        changes: Vec<(Change, Option<Origin>)>,
    },
    #[error("offline, and {} blob(s) the target needs are not in the cache:\n{}", .missing.len(), .missing.iter().map(|(image, d)| format!("  {d} (for {image})")).collect::<Vec<_>>().join("\n"))]
    OfflineMissing { missing: Vec<(String, Digest)> },
    #[error("`{0}` matches no image or repository of the Mirrorfile")]
    UnknownUpdate(String),
    #[error(transparent)]
    Saved(#[from] saved::SavedPlanError),
}

/// "1 entry could not be resolved", "3 entries could not be resolved": an entry is an image,
/// a list line, a repository or an archive.
pub fn unresolved_summary(count: usize) -> String {
    match count {
        1 => "1 entry could not be resolved".to_string(),
        n => format!("{n} entries could not be resolved"),
    }
}

fn lines(changes: &[(Change, Option<Origin>)]) -> String {
    changes
        .iter()
        .map(|(change, origin)| match origin {
            Some(origin) => format!("  {change} (declared at {origin})"),
            None => format!("  {change}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything one command run talks to.
pub struct Session {
    pub model: Model,
    pub store: Store,
    /// Sources as the executor uses them (it retries whole tasks).
    pub sources: Sources,
    pub sink: Arc<dyn Sink>,
    /// The same, with every read-only question retried: what resolve and plan use.
    probing_sources: Sources,
    probing_sink: Arc<dyn Sink>,
    /// The target as users read it (`registry 127.0.0.1:5000`, `bundle k3s.tar.zst`).
    pub target_name: String,
    /// What image names on the target start with (`127.0.0.1:5000/`, `oci:DIR:`).
    target_base: String,
    /// The same with an absolute path for layouts and bundles: the cache's roots are shared by
    /// every Mirrorfile using it, and two projects' `out/` are different directories.
    root_base: String,
    clients: BTreeMap<String, Client>,
    /// Set when the target is a bundle: written by [`Session::finish`] after a successful apply.
    bundle: Option<Arc<BundleSink>>,
    /// The Mirrorfile's images followed by those of its `[[bundles]]`.
    images: Vec<ImageSource>,
    /// Each `[[bundles]]` source as it was read (for the lock).
    bundle_files: Vec<resolve::LocalFile>,
    /// `--offline`: every source registry is an [`OfflineSource`].
    pub offline: bool,
}

/// The default cache directory: `$XDG_CACHE_HOME/mirror`, else `~/.cache/mirror`.
pub fn default_cache_dir(xdg_cache_home: Option<&Path>, home: Option<&Path>) -> PathBuf {
    match (xdg_cache_home, home) {
        (Some(xdg), _) if xdg.is_absolute() => xdg.join("mirror"),
        (_, Some(home)) => home.join(".cache").join("mirror"),
        _ => PathBuf::from(".mirror-cache"),
    }
}

impl Session {
    /// Opens the cache, the target, every `[[bundles]]` source (a bundle file is imported into
    /// the cache, verified) and one client per registry (sources and target share a client when
    /// they are the same host, so they share connections and tokens). Bundle sources never
    /// touch the network.
    /// Credentials are looked up in `env`; resolve and plan retry under `retry`.
    pub async fn open(
        model: Model,
        default_cache: &Path,
        env: Environment,
        retry: RetryPolicy,
    ) -> Result<Session, OpsError> {
        Session::open_with(model, default_cache, env, retry, false).await
    }

    /// [`Session::open`]; with `offline`, sources are never contacted: every source registry is
    /// an [`OfflineSource`], so only the lock and the cache can answer (the target still is).
    pub async fn open_with(
        model: Model,
        default_cache: &Path,
        env: Environment,
        retry: RetryPolicy,
        offline: bool,
    ) -> Result<Session, OpsError> {
        let cache_dir = model
            .cache_dir
            .clone()
            .unwrap_or_else(|| default_cache.to_path_buf());
        let store = Store::open(&cache_dir)?;
        let credentials = CredentialStore::new(env);
        let mut clients: BTreeMap<String, Client> = BTreeMap::new();
        let mut bundle = None;
        let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.into());
        let (sink, target_name, target_base, root_base): (Arc<dyn Sink>, String, String, String) =
            match &model.target {
                Target::Registry { host, .. } => {
                    let client = client_for(host, &model, &credentials).await?;
                    clients.insert(host.clone(), client.clone());
                    let sink = Arc::new(RegistryEndpoint::new(client));
                    let base = format!("{host}/");
                    (sink, format!("registry {host}"), base.clone(), base)
                }
                Target::Layout { path, .. } => {
                    let name = format!("layout {}", path.display());
                    let sink = LayoutSink::open(path).map_err(|source| OpsError::Target {
                        target: name.clone(),
                        source,
                    })?;
                    let base = format!("oci:{}:", path.display());
                    let root = format!("oci:{}:", absolute(path).display());
                    (Arc::new(sink), name, base, root)
                }
                Target::Bundle { path, .. } => {
                    let sink = Arc::new(BundleSink::new(path, store.clone()));
                    bundle = Some(sink.clone());
                    let base = format!("oci-archive:{}:", path.display());
                    let root = format!("oci-archive:{}:", absolute(path).display());
                    (sink, format!("bundle {}", path.display()), base, root)
                }
            };
        let hosts = model
            .images
            .iter()
            .map(|i| i.reference.registry())
            .chain(model.repositories.iter().map(|r| r.registry.as_str()));
        let mut sources = Sources::default();
        for host in hosts {
            if offline {
                sources.insert(host, Arc::new(OfflineSource::new(host)));
                continue;
            }
            if !clients.contains_key(host) {
                clients.insert(
                    host.to_string(),
                    client_for(host, &model, &credentials).await?,
                );
            }
        }
        if !offline {
            for (host, client) in &clients {
                sources.insert(host, Arc::new(RegistryEndpoint::new(client.clone())));
            }
        }
        let mut images = model.images.clone();
        let bundle_files = bundles::open_all(&model, &store, &mut sources, &mut images).await?;
        let probing_sources = sources.retrying(retry);
        let probing_sink: Arc<dyn Sink> = Arc::new(RetryingSink::new(sink.clone(), retry));
        Ok(Session {
            probing_sources,
            probing_sink,
            target_name,
            target_base,
            root_base,
            model,
            store,
            sources,
            sink,
            clients,
            bundle,
            images,
            bundle_files,
            offline,
        })
    }

    /// After a successful apply into a bundle target: writes the bundle file (with the
    /// Mirrorfile and, when it exists beside it, `mirrorfile.lock`). `None` for other targets.
    pub async fn finish(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Option<BundleWritten>, OpsError> {
        let Some(bundle) = &self.bundle else {
            return Ok(None);
        };
        let mut extra = Vec::new();
        for (name, path) in [
            (MIRRORFILE_ENTRY, self.model.path.clone()),
            (LOCK_ENTRY, self.lock_path()),
        ] {
            match std::fs::read(&path) {
                Ok(bytes) => extra.push((name.to_string(), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != MIRRORFILE_ENTRY => {}
                Err(source) => {
                    return Err(OpsError::Store(StoreError::Io { path, source }));
                }
            }
        }
        Ok(Some(bundle.finish(extra, stop).await?))
    }

    /// HTTP requests made so far, over every registry.
    pub fn requests(&self) -> u64 {
        self.clients.values().map(|c| c.requests_made()).sum()
    }

    /// Resolves every image (registries through the lock, and archives), writes the lock when
    /// it changed, and plans against the target.
    pub async fn plan(&self) -> Result<Plan, OpsError> {
        let resolution = self.resolve(&LockMode::default()).await?;
        self.write_lock(&resolution)?;
        self.plan_resolved(resolution.resolved, resolution.archives)
            .await
    }

    /// Plans resolved images against the target. Offline, a blob that would have to be
    /// downloaded is an error naming it (and its image), before anything is pushed.
    pub async fn plan_resolved(
        &self,
        resolved: Vec<resolve::ResolvedImage>,
        archives: ArchiveStats,
    ) -> Result<Plan, OpsError> {
        let mut plan = plan::build(
            resolved,
            self.probing_sink.as_ref(),
            &self.target_base,
            &self.store,
        )
        .await?;
        plan.archives = archives;
        if self.offline {
            let missing: Vec<(String, Digest)> = plan
                .fetches()
                .into_iter()
                .map(|(i, d)| {
                    let image = plan
                        .images
                        .get(i)
                        .map(|p| p.resolved.source.reference.to_string())
                        .unwrap_or_default();
                    (image, d)
                })
                .collect();
            if !missing.is_empty() {
                return Err(OpsError::OfflineMissing { missing });
            }
        }
        Ok(plan)
    }

    /// Reads the `[[archives]]` (blocking work, off the async threads) and checks that no
    /// archive tag is also the target of a registry image. The errors go to `errors`; what is
    /// returned has the images that may be planned.
    async fn resolve_archives(
        &self,
        registry_images: &[ResolvedImage],
        errors: &mut Vec<ResolveError>,
    ) -> Result<ArchivesResolved, OpsError> {
        if self.model.archives.is_empty() {
            return Ok(ArchivesResolved::default());
        }
        let model = self.model.clone();
        let store = self.store.clone();
        let mut read = tokio::task::spawn_blocking(move || {
            resolve::archives::resolve_archives(&model, &store)
        })
        .await
        .map_err(|e| OpsError::Worker(e.to_string()))?;
        errors.append(&mut read.errors);
        let images = std::mem::take(&mut read.images);
        let taken: std::collections::BTreeSet<(String, Option<String>)> = registry_images
            .iter()
            .map(|i| {
                (
                    i.source.target_repository.clone(),
                    i.source.target_tag.clone(),
                )
            })
            .collect();
        let mut kept = Vec::with_capacity(images.len());
        for image in images {
            let key = (
                image.source.target_repository.clone(),
                image.source.target_tag.clone(),
            );
            if taken.contains(&key) {
                errors.push(ResolveError {
                    image: image.source.reference.to_string(),
                    origin: image.source.origin.clone(),
                    kind: Box::new(ResolveErrorKind::TargetClash),
                });
            } else {
                kept.push(image);
            }
        }
        read.images = kept;
        Ok(read)
    }

    /// Runs a plan.
    pub async fn apply(
        &self,
        plan: &Plan,
        options: Options,
        reporter: Arc<dyn Reporter>,
    ) -> Outcome {
        self.apply_until(plan, options, reporter, std::future::pending())
            .await
    }

    /// Runs a plan until it is done or `stop` completes (Ctrl-C, SIGTERM): then tasks in
    /// flight are cancelled (downloads keep their received bytes in the cache's partial files
    /// for the next run) and their upload sessions deleted, and
    /// [`Outcome::interrupted`] is set. What finished before stays recorded.
    pub async fn apply_until(
        &self,
        plan: &Plan,
        options: Options,
        reporter: Arc<dyn Reporter>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Outcome {
        let outcome = execute::execute_until(
            plan,
            self.sources.clone(),
            self.sink.clone(),
            self.store.clone(),
            reporter,
            options,
            stop,
        )
        .await;
        let (mut cancelled, mut left) = (0, 0);
        for client in self.clients.values() {
            let (done, not) = client
                .cancel_abandoned_uploads(std::time::Duration::from_secs(5))
                .await;
            cancelled += done;
            left += not;
        }
        if cancelled > 0 {
            tracing::info!("cancelled {cancelled} unfinished upload session(s)");
        }
        if left > 0 {
            tracing::warn!(
                "{left} upload session(s) cut off mid-request could not be deleted (the registry \
                 refuses a delete without the session's current state); the registry's upload \
                 purging removes them (distribution: after 7 days)"
            );
        }
        // The cache remembers what each target reference now holds: its garbage collection roots.
        let done: Vec<_> = plan
            .images
            .iter()
            .enumerate()
            .filter(|(i, image)| {
                outcome.roots_pushed.get(*i).copied().unwrap_or(false)
                    || image.action == plan::Action::Unchanged
            })
            .map(|(_, image)| {
                let name = match image.target.strip_prefix(&self.target_base) {
                    Some(rest) => format!("{}{rest}", self.root_base),
                    None => image.target.clone(),
                };
                (name, image.resolved.root.descriptor())
            })
            .collect();
        if let Err(e) = self.store.record_roots(&done) {
            // The target is right; only a later `cache gc` would keep less than it could.
            tracing::warn!("could not record the applied roots in the cache index: {e}");
        }
        outcome
    }
}

async fn client_for(
    host: &str,
    model: &Model,
    credentials: &CredentialStore,
) -> Result<Client, OpsError> {
    let settings = model.registry_settings(host);
    let (creds, source) = credentials.lookup(host, &settings).await;
    Client::with_source(host, &settings, creds, source).map_err(|source| OpsError::Client {
        host: host.to_string(),
        source,
    })
}
