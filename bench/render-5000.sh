#!/usr/bin/env bash
# Benchmark: `pkgr render -b` of a synthetic repository of 5,000 Packages (500 packages x 10
# versions, plus 500 PackageMetadatas, one images.yml entry per Package) pushed to a local
# docker-registry. Target: under 1 s wall time and under 100 MiB peak RSS.
# Two cases are timed:
#   relocated: the bundle after `pkgr copy --to-repo` (what the controller reads in an air-gapped
#              cluster): the locations image says where every image is, one request.
#   fresh:     the bundle as pushed, its images elsewhere: images.yml is checked against the
#              bundle's repository entry by entry, as imgpkg pull does.
#   bench/render-5000.sh [PACKAGES] [VERSIONS]      (defaults 500 10)
# Needs docker-registry (Debian) and GNU time (/usr/bin/time). Builds pkgr in release mode
# unless PKGR is set to a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/registry.sh

packages=${1:-500}
versions=${2:-10}
if [ -z "${PKGR:-}" ]; then
  cargo build --release --locked
  PKGR=${CARGO_TARGET_DIR:-target}/release/pkgr
fi
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pkgr-bench.XXXXXX")
trap 'stop_registries; rm -rf "$work"' EXIT
repo="$work/repo"
mkdir -p "$repo/.imgpkg" "$repo/packages"

echo "==> generating $packages packages x $versions versions in $repo"
start_registry BENCH
# Every Package's image is one small image pushed here (distinct kbld ids, one digest), so that
# `pkgr copy` has something real to relocate.
mkdir -p "$work/pkg-image"
echo "kind: ConfigMap" >"$work/pkg-image/app.yml"
pushed=$("$PKGR" push -i "$BENCH_HOST/bench/pkg:1" -f "$work/pkg-image")
pkg_image=$(sed -n "s/^Pushed '\(.*\)'$/\1/p" <<<"$pushed")
[ -n "$pkg_image" ] || { echo "could not read the pushed image from: $pushed" >&2; exit 1; }

python3 - "$repo" "$packages" "$versions" "$pkg_image" <<'PY'
import os, sys
root, packages, versions, pkg_image = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lock = ["---", "apiVersion: imgpkg.carvel.dev/v1alpha1", "images:"]
for p in range(packages):
    ref = f"pkg{p:04d}.bench.corp.com"
    d = os.path.join(root, "packages", ref)
    os.makedirs(d)
    with open(os.path.join(d, "metadata.yml"), "w") as f:
        f.write(f"""apiVersion: data.packaging.carvel.dev/v1alpha1
kind: PackageMetadata
metadata:
  name: {ref}
spec:
  displayName: Package {p}
  shortDescription: Synthetic package {p} for the render benchmark
  providerName: Bench Corp
  maintainers:
  - name: Bench Team
  categories:
  - bench
""")
    for v in range(versions):
        version = f"1.{v}.0" if v % 3 else f"1.{v}.0+bench.{v}"
        image_id = f"docker.io/bench/{ref}:{v}"
        lock += ["- annotations:", f"    kbld.carvel.dev/id: {image_id}",
                 f"  image: {pkg_image}"]
        with open(os.path.join(d, f"{version}.yml"), "w") as f:
            f.write(f"""apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata:
  name: {ref}.{version}
spec:
  refName: {ref}
  version: {version}
  releasedAt: "2024-01-0{1 + v % 9}T00:00:00Z"
  releaseNotes: Release {version} of package {p}
  licenses:
  - Apache 2.0
  valuesSchema:
    openAPIv3:
      properties:
        replicas:
          type: integer
          default: 1
        message:
          type: string
          default: hello
  template:
    spec:
      fetch:
      - imgpkgBundle:
          image: {image_id}
      template:
      - ytt:
          paths:
          - config/
      - kbld:
          paths:
          - "-"
          - .imgpkg/images.yml
      deploy:
      - kapp: {{}}
""")
lock.append("kind: ImagesLock")
with open(os.path.join(root, ".imgpkg", "images.yml"), "w") as f:
    f.write("\n".join(lock) + "\n")
PY

bundle="$BENCH_HOST/bench/repo-5000:v1"
relocated="$BENCH_HOST/bench/relocated-5000"
echo "==> pkgr push -b $bundle"
"$PKGR" push -b "$bundle" -f "$repo" >/dev/null
echo "==> pkgr copy -b $bundle --to-repo $relocated"
"$PKGR" copy -b "$bundle" --to-repo "$relocated" >/dev/null 2>&1

expected=$((packages * versions))
time_render() {
  local name=$1 ref=$2
  # One untimed run checks the output, then the timed runs.
  local count
  count=$("$PKGR" render -b "$ref" 2>/dev/null | grep -c '^kind: Package$')
  if [ "$count" -ne "$expected" ]; then
    echo "render of $ref printed $count Packages, expected $expected" >&2
    exit 1
  fi
  echo "==> $name: pkgr render -b $ref ($count Packages), 3 runs"
  for run in 1 2 3; do
    /usr/bin/time -v "$PKGR" render -b "$ref" 2>"$work/time.$run" >/dev/null
    wall=$(grep 'Elapsed (wall clock)' "$work/time.$run" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$work/time.$run" | awk '{print $NF}')
    echo "$name run $run: wall ${wall} (m:ss), peak RSS $((rss / 1024)) MiB"
  done
}
time_render relocated "$relocated:v1"
# The relocated render must point every Package at the copy.
"$PKGR" render -b "$relocated:v1" >"$work/relocated.yml" 2>/dev/null
if ! grep -q "image: $relocated@sha256:" "$work/relocated.yml"; then
  echo "the relocated render does not point at $relocated" >&2
  exit 1
fi
time_render fresh "$bundle"
