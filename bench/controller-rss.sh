#!/usr/bin/env bash
# Memory of the `pkgr controller` process itself (release build, as deployed) holding one
# repository of N Packages (default 10,000) from a real docker-registry, against the fake API
# server of tests/apiserver: RSS idle, after the first reconcile (and its peak), after a resync.
#   bench/controller-rss.sh [PACKAGES]   (BENCH_BESIDE_KAPP=1: with kapp-controller's packaging API in the fake API server)
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=${1:-10000} cargo test --release --test controller_bench bench_controller_process_memory \
  -- --ignored --nocapture 2>&1 | grep -E "pkgr controller process|test result|panicked"
