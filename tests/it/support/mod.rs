//! Test support: a real registry, an independent client (skopeo), a deterministic image builder
//! and an isolated environment for running the `mirror` binary.
//!
//! Every test module uses a different slice of this API, so unused items are expected.
#![allow(dead_code, reason = "shared by many test modules, each using a part")]

pub mod archives;
pub mod context;
pub mod http;
pub mod images;
pub mod lab;
pub mod registry;
pub mod skopeo;
