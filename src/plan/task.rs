//! The units of work in a plan, each with the reason it exists.

use std::fmt;

use serde::Serialize;

use crate::oci::{Descriptor, Digest, RawManifest};

/// One node of the plan's DAG.
#[derive(Debug, Clone)]
pub struct Node {
    pub task: Task,
    pub reason: Reason,
    /// The image (index into `Plan::images`) this task was created for first.
    pub image: usize,
}

#[derive(Debug, Clone)]
pub enum Task {
    /// Download a blob into the cache (verified).
    FetchBlob {
        registry: String,
        repository: String,
        descriptor: Descriptor,
    },
    /// Upload a cached blob to a target repository, or mount it from another target repository.
    PushBlob {
        repository: String,
        descriptor: Descriptor,
        mount_from: Option<String>,
        /// Where to fetch it from if a mount fails and the cache lacks it.
        source_registry: String,
        source_repository: String,
    },
    /// Push a child manifest by digest.
    PushManifest {
        repository: String,
        manifest: RawManifest,
    },
    /// Push the image's root manifest under its tag (or digest): always last for its image, so a
    /// tag never points at missing content.
    PushRoot {
        repository: String,
        reference: String,
        manifest: RawManifest,
    },
}

/// Why a task is in the plan (cargo's "dirty reason").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The blob is not in the cache.
    NotCached,
    /// The blob or manifest is not in the target repository.
    MissingInTarget,
    /// Another target repository has the blob: mount instead of uploading.
    MountableFrom { repository: String },
    /// The target tag does not exist yet.
    TagMissing,
    /// The target tag points at other content.
    TagMoved { from: Digest, to: Digest },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotCached => f.write_str("not in the cache"),
            Reason::MissingInTarget => f.write_str("missing in the target"),
            Reason::MountableFrom { repository } => {
                write!(f, "already in target repository {repository}")
            }
            Reason::TagMissing => f.write_str("tag does not exist on the target"),
            Reason::TagMoved { from, to } => {
                write!(f, "tag moves from {} to {}", from.short(), to.short())
            }
        }
    }
}

impl Task {
    /// Bytes this task moves (blob size for transfers, manifest size for pushes).
    pub fn bytes(&self) -> u64 {
        match self {
            Task::FetchBlob { descriptor, .. } | Task::PushBlob { descriptor, .. } => {
                descriptor.size
            }
            Task::PushManifest { manifest, .. } | Task::PushRoot { manifest, .. } => {
                manifest.size()
            }
        }
    }

    /// A one-line description for progress and errors.
    pub fn describe(&self) -> String {
        match self {
            Task::FetchBlob {
                registry,
                repository,
                descriptor,
            } => {
                format!(
                    "fetch {} from {registry}/{repository}",
                    descriptor.digest.short()
                )
            }
            Task::PushBlob {
                repository,
                descriptor,
                mount_from: Some(from),
                ..
            } => {
                format!(
                    "mount {} into {repository} from {from}",
                    descriptor.digest.short()
                )
            }
            Task::PushBlob {
                repository,
                descriptor,
                ..
            } => format!("push {} to {repository}", descriptor.digest.short()),
            Task::PushManifest {
                repository,
                manifest,
            } => format!(
                "push manifest {} to {repository}",
                manifest.digest().short()
            ),
            Task::PushRoot {
                repository,
                reference,
                ..
            } if reference.contains(':') => format!("push {repository}@{reference}"),
            Task::PushRoot {
                repository,
                reference,
                ..
            } => format!("tag {repository}:{reference}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_pushed_by_digest_is_not_called_a_tag() {
        let bytes = bytes::Bytes::from_static(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
        );
        let manifest = RawManifest::new(bytes, None).expect("valid index");
        let digest = manifest.digest().to_string();
        let root = |reference: &str| Task::PushRoot {
            repository: "lab/tiny".into(),
            reference: reference.into(),
            manifest: manifest.clone(),
        };
        assert_eq!(root("1.0").describe(), "tag lab/tiny:1.0");
        assert_eq!(root(&digest).describe(), format!("push lab/tiny@{digest}"));
    }
}
