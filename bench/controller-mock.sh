#!/usr/bin/env bash
# The controller's own cost for a first reconcile of N Packages (default 1,000), against the
# in-process fake API server of tests/controller_mock.rs: no cluster, no registry. Separates
# pkgr's overhead (build, serialise, N parallel applies, prune lists, one status write) from the
# API server's. For the real targets use bench/controller.sh with a cluster.
#   bench/controller-mock.sh [PACKAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=${1:-1000} cargo test --release --test controller_mock bench_first_reconcile_of_many_packages \
  -- --ignored --nocapture 2>&1 | grep -E "first reconcile|peak RSS|test result|panicked"
