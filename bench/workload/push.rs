//! Pushes the generated images into a registry with `mirror`'s own registry client: blobs first
//! (a blob another repository already holds is mounted, as a real CI pipeline's pushes are),
//! then each platform's manifest by digest, then the index under its tag.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use bytes::Bytes;
use mirror::model::{RegistrySettings, TlsMode};
use mirror::oci::RawManifest;
use mirror::registry::{Client, Credentials, MountOutcome};

use crate::blobs::Blob;
use crate::generate::{Image, Workload};

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Pushes every image of the workload (and the bumped one when `bump`) to `registry`.
pub async fn push(dir: &Path, registry: &str, bump: bool) -> io::Result<()> {
    let workload = Workload::read(dir)?;
    let settings = RegistrySettings {
        tls: TlsMode::Http,
        ..RegistrySettings::default()
    };
    let client = Client::new(registry, &settings, Credentials::Anonymous).map_err(err)?;
    let mut holders: HashMap<String, String> = HashMap::new();
    let extra = bump.then_some(&workload.bump);
    for image in workload.images.iter().chain(extra) {
        push_image(&client, dir, image, &mut holders).await?;
    }
    Ok(())
}

async fn push_image(
    client: &Client,
    dir: &Path,
    image: &Image,
    holders: &mut HashMap<String, String>,
) -> io::Result<()> {
    let repo = &image.repository;
    for blob in image.blobs() {
        if client
            .head_blob(repo, &parse(blob)?)
            .await
            .map_err(err)?
            .is_some()
        {
            continue;
        }
        let digest = parse(blob)?;
        let mounted = match holders.get(&blob.digest) {
            Some(from) => client.mount_blob(repo, &digest, from).await.map_err(err)?,
            None => MountOutcome::NotMounted,
        };
        if mounted == MountOutcome::NotMounted {
            client
                .upload_blob(repo, &digest, blob.size, &blob.path(dir))
                .await
                .map_err(err)?;
        }
        holders.insert(blob.digest.clone(), repo.clone());
    }
    for platform in &image.platforms {
        let manifest = raw(dir, &platform.manifest)?;
        client
            .put_manifest(repo, &platform.manifest.digest, &manifest)
            .await
            .map_err(err)?;
    }
    let index = raw(dir, &image.index)?;
    client
        .put_manifest(repo, &image.tag, &index)
        .await
        .map_err(err)
}

fn parse(blob: &Blob) -> io::Result<mirror::oci::Digest> {
    blob.digest.parse().map_err(err)
}

fn raw(dir: &Path, blob: &Blob) -> io::Result<RawManifest> {
    let bytes = std::fs::read(blob.path(dir))?;
    RawManifest::new(Bytes::from(bytes), Some(&blob.media_type)).map_err(err)
}
