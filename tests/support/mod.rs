//! Shared helpers for integration tests (each test file does `mod support;`).
#![allow(dead_code)]
pub mod hostile;
pub mod registry;
