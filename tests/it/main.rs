//! The integration test binary: real `docker-registry` processes on 127.0.0.1, images made by a
//! deterministic builder and pushed/checked with skopeo, and the built `mirror` binary run the
//! way a user runs it.

mod support;

mod apply;
mod archive_formats;
mod archive_oci;
mod archives;
mod auth;
mod bundle;
mod commands;
mod crash;
mod errors;
mod examples;
mod examples_airgap;
mod faults;
mod harness;
mod hostile;
mod inspect;
mod integrity;
mod lock;
mod lock_archives;
mod network;
mod plan;
mod properties;
mod semantics;
mod snapshots;
