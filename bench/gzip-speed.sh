#!/usr/bin/env bash
# Throughput of pkgr's Go-compatible gzip (src/bundle/gogzip) against flate2 at level 1 on
# 100 MiB of mixed data (text, LZ77-friendly mix, incompressible, zeros), best of three runs.
# With `go` on the PATH, Go's compress/gzip at BestSpeed is timed on the same bytes too.
#   bench/gzip-speed.sh        (release build; prints one line per encoder)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --release --locked --run-ignored only --no-capture --test gzip_speed 2>&1 |
  grep -E 'MiB' || true
