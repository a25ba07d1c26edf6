//! A read-only [`Source`] over an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`), as `skopeo copy … oci:DIR:TAG` writes it. Used by `mirror inspect
//! oci:DIR[:REF]`.
//!
//! Every manifest read is verified against its digest, because a file on disk can be changed
//! behind our back as easily as a network response. The repository argument of [`Source`] is
//! meaningless here (a layout is one namespace) and ignored.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{ByteStream, EndpointError, Source};
use crate::oci::descriptor::ANNOTATION_REF_NAME;
use crate::oci::{Descriptor, Digest, RawManifest, Reference};

const READ_CHUNK: usize = 256 * 1024;

/// An OCI layout directory.
#[derive(Debug, Clone)]
pub struct OciDir {
    root: PathBuf,
}

#[derive(Deserialize)]
struct IndexJson {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

impl OciDir {
    /// Opens `root`, checking that it looks like an OCI layout.
    pub fn open(root: &Path) -> Result<OciDir, EndpointError> {
        let marker = root.join("oci-layout");
        if !marker.is_file() {
            return Err(EndpointError::Io {
                path: marker,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not an OCI image layout (no oci-layout file)",
                ),
            });
        }
        Ok(OciDir {
            root: root.to_path_buf(),
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn io(&self, path: &Path, source: std::io::Error) -> EndpointError {
        EndpointError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The entries of `index.json`.
    pub fn entries(&self) -> Result<Vec<Descriptor>, EndpointError> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(|e| self.io(&path, e))?;
        let index: IndexJson = serde_json::from_slice(&bytes).map_err(|e| {
            self.io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            )
        })?;
        Ok(index.manifests)
    }

    /// The `index.json` entry named `name` (its `org.opencontainers.image.ref.name`, a tag or a
    /// full reference), or the only entry when `name` is `None`.
    pub fn find(&self, name: Option<&str>) -> Result<Descriptor, EndpointError> {
        let entries = self.entries()?;
        let names: Vec<&str> = entries
            .iter()
            .filter_map(|e| e.annotations.get(ANNOTATION_REF_NAME).map(String::as_str))
            .collect();
        let found = match name {
            Some(name) => entries.iter().find(|e| {
                e.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(name)
                    || e.digest.to_string() == name
            }),
            None if entries.len() == 1 => entries.first(),
            None => None,
        };
        found.cloned().ok_or_else(|| {
            let wanted = match name {
                Some(name) => format!("no image named `{name}`"),
                None => format!("{} images and no name given", entries.len()),
            };
            self.io(
                &self.root.join("index.json"),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{wanted}; names in this layout: {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ),
            )
        })
    }
}

#[async_trait]
impl Source for OciDir {
    fn describe(&self) -> String {
        format!("OCI layout {}", self.root.display())
    }

    async fn resolve(&self, reference: &Reference) -> Result<Digest, EndpointError> {
        if let Some(digest) = reference.digest() {
            return Ok(digest.clone());
        }
        Ok(self.find(reference.tag())?.digest)
    }

    async fn manifest(
        &self,
        _repository: &str,
        digest: &Digest,
    ) -> Result<RawManifest, EndpointError> {
        let path = self.blob_path(digest);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| self.io(&path, e))?;
        Ok(RawManifest::verified(Bytes::from(bytes), None, digest)?)
    }

    async fn blob(
        &self,
        _repository: &str,
        descriptor: &Descriptor,
        offset: u64,
    ) -> Result<(u64, ByteStream), EndpointError> {
        let path = self.blob_path(&descriptor.digest);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| self.io(&path, e))?;
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| self.io(&path, e))?;
        }
        let stream =
            futures_util::stream::try_unfold((file, path), |(mut file, path)| async move {
                let mut buf = BytesMut::with_capacity(READ_CHUNK);
                match file.read_buf(&mut buf).await {
                    Ok(0) => Ok(None),
                    Ok(_) => Ok(Some((buf.freeze(), (file, path)))),
                    Err(source) => Err(EndpointError::Io { path, source }),
                }
            });
        Ok((offset, Box::pin(stream)))
    }
}
