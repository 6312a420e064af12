#!/usr/bin/env bash
# Peak memory of `pkgr pull` on a large image: pushes a 500 MiB image of incompressible data to
# a throw-away docker-registry on loopback, pulls it with /usr/bin/time -v, prints wall time and
# peak RSS. The target is a peak RSS under 64 MiB (the layer streams: registry -> gzip -> tar -> disk).
#   bench/pull-rss.sh [SIZE_MIB]     (default 500; uses target/release/pkgr, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/registry.sh

size_mib=${1:-500}
target_dir=${CARGO_TARGET_DIR:-target}
pkgr="$target_dir/release/pkgr"
if [ ! -x "$pkgr" ]; then
  cargo build --release --locked
fi
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pkgr-bench.XXXXXX")
trap 'rm -rf "$work"; stop_registries' EXIT
start_registry BENCH
image="$BENCH_HOST/bench/big:v1"

mkdir -p "$work/in"
# Ten files of random data: gzip cannot shrink them, so the blob is as large as the content.
per_file=$((size_mib / 10))
for i in $(seq 0 9); do
  head -c "$((per_file * 1024 * 1024))" /dev/urandom >"$work/in/part-$i.bin"
done
echo "==> pushing ${size_mib} MiB of incompressible data to $image"
/usr/bin/time -f "push: wall %e s, peak RSS %M KiB" "$pkgr" push -i "$image" -f "$work/in"

echo "==> pulling it"
/usr/bin/time -v "$pkgr" pull -i "$image" -o "$work/out" >"$work/pull.out" 2>"$work/pull.time"
cmp -s <(cat "$work"/in/part-*.bin) <(cat "$work"/out/part-*.bin) || { echo "pulled content differs" >&2; exit 1; }
wall=$(grep "Elapsed (wall clock)" "$work/pull.time" | awk '{print $NF}')
rss_kib=$(grep "Maximum resident set size" "$work/pull.time" | awk '{print $NF}')
echo "pull: wall ${wall}, peak RSS $((rss_kib / 1024)) MiB (${rss_kib} KiB) for ${size_mib} MiB"
if [ "$rss_kib" -ge $((64 * 1024)) ]; then
  echo "peak RSS is above the 64 MiB target" >&2
  exit 1
fi
