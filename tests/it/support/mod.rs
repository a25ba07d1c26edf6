//! Test support: a real registry, an independent client (skopeo), a deterministic image builder
//! an isolated environment for running the `mirror` binary, test PKI (openssl), a token server
//! for token-auth registries, and a fault-injecting proxy.
//!
//! Every test module uses a different slice of this API, so unused items are expected.
#![allow(dead_code, reason = "shared by many test modules, each using a part")]

pub mod archives;
pub mod context;
pub mod fault_proxy;
pub mod flip_proxy;
pub mod http;
pub mod images;
pub mod lab;
pub mod pki;
pub mod registry;
pub mod skopeo;
pub mod token_server;
