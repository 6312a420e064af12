//! Shared helpers for integration tests (each test file does `mod support;`).
#![allow(dead_code)]
pub mod cosign;
pub mod data;
pub mod e2e;
pub mod go;
pub mod hostile;
pub mod images;
pub mod imgpkg;
pub mod registry;
pub mod signed_graph;
pub mod token;
