#!/usr/bin/env bash
# The running controller (release build, real registry client, real docker-registry behind a
# counting proxy, the fake API server of tests/apiserver) for one repository of N Packages
# (default 1,000): first reconcile time, registry requests and API writes of a resync and of a
# restart with nothing changed, how long after a control-plane restart (the API server away for 3 s)
# a new repository is reconciled, and the test process's peak RSS (fake API server included).
#   bench/controller-restart.sh [PACKAGES]   (BENCH_BESIDE_KAPP=1: with kapp-controller's packaging API in the fake API server)
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=${1:-1000} cargo test --release --test controller_bench -- --ignored --nocapture 2>&1 \
  | grep -E "first reconcile|resync|restart with|control-plane restart|peak RSS|test result|panicked"
