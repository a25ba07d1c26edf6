//! Reading manifests and configs for one image through the cache: a digest already cached is
//! never fetched again, and whatever is fetched is verified and cached.

use super::*;

/// One image being resolved: where it comes from, the cache, and the configs fetched so far.
pub(super) struct Ctx<'a> {
    pub(super) image: &'a ImageSource,
    pub(super) source: &'a dyn Source,
    pub(super) store: &'a Store,
    pub(super) repo: &'a str,
    pub(super) prefetched: std::sync::Mutex<Vec<Descriptor>>,
}

impl Ctx<'_> {
    pub(super) fn endpoint(&self, source: EndpointError) -> ResolveError {
        ResolveError::new(self.image, ResolveErrorKind::Endpoint(source))
    }

    pub(super) fn store_err(&self, source: StoreError) -> ResolveError {
        ResolveError::new(self.image, ResolveErrorKind::Store(source))
    }

    pub(super) fn take_prefetched(&self) -> Vec<Descriptor> {
        self.prefetched
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// A manifest from the cache, or fetched (verified) and cached.
    pub(super) async fn manifest(&self, digest: &Digest) -> Result<RawManifest, ResolveError> {
        if let Some(cached) = self
            .store
            .manifest_or_discard(digest)
            .map_err(|e| self.store_err(e))?
        {
            return Ok(cached);
        }
        let fetched = self
            .source
            .manifest(self.repo, digest)
            .await
            .map_err(|e| self.endpoint(e))?;
        self.store
            .put_manifest(&fetched)
            .map_err(|e| self.store_err(e))?;
        Ok(fetched)
    }

    /// The platform an image config states, fetching the config into the cache if needed.
    pub(super) async fn config_platform(
        &self,
        manifest: &Digest,
        config: &Descriptor,
    ) -> Result<Platform, ResolveError> {
        let bytes = match self
            .store
            .read_small_blob(&config.digest)
            .map_err(|e| self.store_err(e))?
        {
            Some(bytes) => bytes,
            None => {
                let bytes = self
                    .source
                    .small_blob(self.repo, config, MAX_CONFIG_BYTES)
                    .await
                    .map_err(|e| self.endpoint(e))?;
                let verified = self
                    .store
                    .put_small_blob(&config.digest, &bytes)
                    .map_err(|e| self.store_err(e))?;
                if !verified {
                    return Err(self.bad_config(
                        manifest,
                        config,
                        format!(
                            "its bytes hash to {}, not to its digest",
                            Digest::sha256_of(&bytes)
                        ),
                    ));
                }
                if let Ok(mut list) = self.prefetched.lock() {
                    list.push(config.clone());
                }
                bytes
            }
        };
        serde_json::from_slice::<Platform>(&bytes)
            .map_err(|e| self.bad_config(manifest, config, e.to_string()))
    }

    pub(super) fn bad_config(
        &self,
        manifest: &Digest,
        config: &Descriptor,
        detail: String,
    ) -> ResolveError {
        ResolveError::new(
            self.image,
            ResolveErrorKind::BadConfig {
                digest: config.digest.clone(),
                manifest: manifest.clone(),
                detail,
            },
        )
    }
}
