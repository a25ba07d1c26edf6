//! Stage 5: plans and outcomes as terraform-like text or as a stable, versioned JSON document;
//! also the documents derived from a Mirrorfile for other tools (k3s `registries.yaml`).
//!
//! Functions here build strings and values; printing is the CLI's job.

pub mod bundle;
pub mod human;
pub mod json;
pub mod registries_yaml;
mod size;
pub mod status;

pub use size::human_bytes;
