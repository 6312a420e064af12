//! `copy`: plan the graph of bundles and images, then registry → registry, → tar, tar → registry.
