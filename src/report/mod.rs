//! Stage 5: plans and outcomes as terraform-like text or as a stable, versioned JSON document.
//!
//! Functions here build strings and values; printing is the CLI's job.

pub mod human;
pub mod json;
mod size;

pub use size::human_bytes;
