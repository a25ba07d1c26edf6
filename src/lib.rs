//! `mirror`: declarative, reproducible, incremental mirroring of multi-architecture images.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! mirrorfile.toml ─parse─▶ model ─resolve─▶ pinned images ─plan─▶ task DAG ─execute─▶ report
//! ```
//!
//! - [`oci`]: vocabulary shared by everything (digests, references, platforms, raw manifests).
//! - [`environment`]: the process environment, read once by the CLI and passed down.
//! - [`mirrorfile`]: TOML → [`model`], with spans kept so errors point at file:line.
//! - [`registry`]: the distribution-API client (auth, manifests, blobs, uploads, mounts).
//! - [`archive`]: docker-save / podman / OCI-layout tar archives, read without a daemon.
//! - [`store`]: the content-addressed, verified cache (an OCI layout on disk).
//! - [`archive`]: offline formats as streams (the deterministic bundle writer and its reader).
//! - [`endpoint`]: one source/sink shape over every place images live.
//! - [`lock`]: `mirrorfile.lock`, every source tag pinned to a digest (read with spans, written
//!   deterministically).
//! - [`resolve`]: tags → digests (from the lock, or the network), whole repositories → tags,
//!   platform selection, subset indexes.
//! - [`plan`]: what is missing where, as a petgraph DAG of tasks, each with its reason.
//! - [`execute`]: runs the DAG on tokio with bounded concurrency; reports through a trait.
//! - [`report`]: terraform-like text and stable JSON.
//! - [`ops`]: one function per command wiring the stages together.
//!
//! The library never prints; only `main.rs`/`cli` talk to the terminal.

pub mod archive;
pub mod cli;
pub mod endpoint;
pub mod environment;
pub mod execute;
pub mod fsutil;
pub mod lock;
pub mod mirrorfile;
pub mod model;
pub mod oci;
pub mod ops;
pub mod plan;
pub mod registry;
pub mod report;
pub mod resolve;
pub mod store;
