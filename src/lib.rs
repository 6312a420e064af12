//! pkgr: a Kubernetes controller and relocation tool for Carvel package repositories.
//!
//! Dependencies point one way: `controller` and `relocate` use `registry`, `bundle` and
//! `repository`; `repository` knows neither the cluster nor the network; `registry` knows
//! nothing of Kubernetes; `relocate` never needs the cluster.
#![deny(unsafe_code)]

pub mod api;
pub mod bundle;
pub mod cli;
pub mod controller;
pub mod goflag;
pub mod gotime;
pub mod registry;
pub mod relocate;
pub mod repository;
pub mod verify;
