//! One function per command, wiring the stages: open endpoints → resolve → plan → execute.
//! Commands in `cli` stay thin over these; tests and benchmarks can call them directly.

pub mod inspect;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::endpoint::registry::RegistryEndpoint;
use crate::endpoint::Sink;
use crate::execute::{self, Options, Outcome, Reporter};
use crate::model::{Model, Target};
use crate::plan::{self, Plan, PlanError};
use crate::registry::{Client, CredentialStore, RegistryError};
use crate::resolve::{self, ResolveError, Sources};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("cannot set up a client for registry {host}: {source}")]
    Client { host: String, source: RegistryError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{} image(s) could not be resolved", .0.len())]
    Resolve(Vec<ResolveError>),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Everything one command run talks to.
pub struct Session {
    pub model: Model,
    pub store: Store,
    pub sources: Sources,
    pub sink: Arc<dyn Sink>,
    /// The target as users read it (`registry 127.0.0.1:5000`).
    pub target_name: String,
    target_host: String,
    clients: BTreeMap<String, Client>,
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
    /// Opens the cache and creates one client per registry (sources and target share a client
    /// when they are the same host, so they share connections and tokens).
    pub async fn open(model: Model, default_cache: &Path) -> Result<Session, OpsError> {
        let cache_dir = model
            .cache_dir
            .clone()
            .unwrap_or_else(|| default_cache.to_path_buf());
        let store = Store::open(&cache_dir)?;
        let credentials = CredentialStore::new();
        let Target::Registry {
            host: target_host, ..
        } = &model.target;
        let target_client = client_for(target_host, &model, &credentials).await?;
        let mut clients: BTreeMap<String, Client> = BTreeMap::new();
        clients.insert(target_host.clone(), target_client.clone());
        for image in &model.images {
            let host = image.reference.registry();
            if !clients.contains_key(host) {
                clients.insert(
                    host.to_string(),
                    client_for(host, &model, &credentials).await?,
                );
            }
        }
        let mut sources = Sources::default();
        for (host, client) in &clients {
            sources.insert(host, Arc::new(RegistryEndpoint::new(client.clone())));
        }
        let sink: Arc<dyn Sink> = Arc::new(RegistryEndpoint::new(target_client));
        Ok(Session {
            target_name: format!("registry {target_host}"),
            target_host: target_host.clone(),
            model,
            store,
            sources,
            sink,
            clients,
        })
    }

    /// HTTP requests made so far, over every registry.
    pub fn requests(&self) -> u64 {
        self.clients.values().map(|c| c.requests_made()).sum()
    }

    /// Resolves every image and plans against the target.
    pub async fn plan(&self) -> Result<Plan, OpsError> {
        let results = resolve::resolve_all(&self.model.images, &self.sources, &self.store).await;
        let mut resolved = Vec::with_capacity(results.len());
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok(image) => resolved.push(image),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(OpsError::Resolve(errors));
        }
        Ok(plan::build(resolved, self.sink.as_ref(), &self.target_host, &self.store).await?)
    }

    /// Runs a plan.
    pub async fn apply(
        &self,
        plan: &Plan,
        options: Options,
        reporter: Arc<dyn Reporter>,
    ) -> Outcome {
        execute::execute(
            plan,
            self.sources.clone(),
            self.sink.clone(),
            self.store.clone(),
            reporter,
            options,
        )
        .await
    }
}

async fn client_for(
    host: &str,
    model: &Model,
    credentials: &CredentialStore,
) -> Result<Client, OpsError> {
    let settings = model.registry_settings(host);
    let (creds, source) = credentials.lookup(host).await;
    Client::with_source(host, &settings, creds, source).map_err(|source| OpsError::Client {
        host: host.to_string(),
        source,
    })
}
