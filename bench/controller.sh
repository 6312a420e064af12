#!/usr/bin/env bash
# Benchmark of `pkgr controller` against a real cluster (issue 3 performance targets):
#   - apply → ReconcileSucceeded for a 3-Package repository          (target ≤ 0.2 s)
#   - first reconcile of 1,000 Packages (100 packages × 10 versions) (target ≤ 4 s)
#   - controller RSS idle (target ≤ 30 MiB) and peak during the 1,000 reconcile (≤ 64 MiB)
#
#   PKGR_E2E_KUBECONFIG=~/.kube/config bench/controller.sh [PACKAGES] [VERSIONS]   (defaults 100 10)
#
# The registry is Debian's docker-registry on loopback and the controller runs on this machine
# with that kubeconfig (so it reaches the loopback registry). Needs kubectl ≥ 1.23 (wait
# --for=jsonpath). Builds pkgr in release mode unless PKGR points at a binary. Cleans up the
# PackageRepositories it made; the CRDs stay installed. Works beside kapp-controller too (full
# resource names: the short name pkgr is ambiguous there); `pkgr crd` installs what the cluster needs.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PKGR_E2E_KUBECONFIG:?set PKGR_E2E_KUBECONFIG to the kubeconfig of the cluster to measure}"
export KUBECONFIG=$PKGR_E2E_KUBECONFIG
source scripts/registry.sh

packages=${1:-100}
versions=${2:-10}
if [ -z "${PKGR:-}" ]; then
  cargo build --release --locked
  PKGR=${CARGO_TARGET_DIR:-target}/release/pkgr
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pkgr-bench-controller.XXXXXX")
controller_pid=
cleanup() {
  kubectl delete packagerepositories.install.package.carvel.dev bench-small bench-large --ignore-not-found --wait=true >/dev/null 2>&1 || true
  [ -n "$controller_pid" ] && kill "$controller_pid" 2>/dev/null || true
  stop_registries
  rm -rf "$work"
}
trap cleanup EXIT

start_registry REG
generate() { # DIR PACKAGES VERSIONS
  python3 - "$@" <<'PY'
import os, sys
root, packages, versions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for p in range(packages):
    ref = f"pkg{p:04d}.bench.corp.com"
    d = os.path.join(root, "packages", ref)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "metadata.yml"), "w") as f:
        f.write(f"apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata:\n  name: {ref}\nspec:\n  displayName: Package {p}\n  shortDescription: bench\n")
    for v in range(versions):
        version = f"1.{v}.0"
        with open(os.path.join(d, f"{version}.yml"), "w") as f:
            f.write(f"""apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata:
  name: {ref}.{version}
spec:
  refName: {ref}
  version: {version}
  template:
    spec:
      fetch:
      - imgpkgBundle:
          image: index.docker.io/bench/{ref}:{v}
      template:
      - ytt: {{}}
      deploy:
      - kapp: {{}}
""")
PY
}
generate "$work/small" 1 3
generate "$work/large" "$packages" "$versions"
"$PKGR" push -b "$REG_HOST/bench/small:1" -f "$work/small" >/dev/null
"$PKGR" push -b "$REG_HOST/bench/large:1" -f "$work/large" >/dev/null

"$PKGR" crd | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl create namespace kapp-controller --dry-run=client -o yaml | kubectl apply -f - >/dev/null

"$PKGR" controller --metrics-address 127.0.0.1:0 2>"$work/controller.log" &
controller_pid=$!
# "Idle" RSS is read right after the small repository succeeded: caches filled, nothing running.
rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$controller_pid/status"; }
hwm() { awk '/^VmHWM/ {print int($2/1024)}' "/proc/$controller_pid/status"; }

apply_repo() { # NAME IMAGE
  cat <<YAML | kubectl apply -f - >/dev/null
apiVersion: install.package.carvel.dev/v1alpha1
kind: PackageRepository
metadata:
  name: $1
spec:
  fetch:
    imgpkgBundle:
      image: $2
YAML
}
measure() { # NAME IMAGE → seconds from apply to ReconcileSucceeded
  local start end
  start=$(date +%s.%N)
  apply_repo "$1" "$2"
  kubectl wait "packagerepositories.install.package.carvel.dev/$1" --for=jsonpath='{.status.friendlyDescription}'=ReconcileSucceeded --timeout=300s >/dev/null
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}

small=$(measure bench-small "$REG_HOST/bench/small:1")
idle=$(rss)
large=$(measure bench-large "$REG_HOST/bench/large:1")
peak=$(hwm)
count=$(kubectl get packagerepositories.install.package.carvel.dev bench-large -o jsonpath='{.status.packageCount}')

printf '\n%-48s %10s %10s\n' "measurement" "pkgr" "target"
printf '%-48s %9ss %10s\n' "3 Packages: apply → ReconcileSucceeded" "$small" "≤ 0.2 s"
printf '%-48s %9ss %10s\n' "$count Packages: apply → ReconcileSucceeded" "$large" "≤ 4 s"
printf '%-48s %7s MiB %10s\n' "controller RSS idle (after the small repo)" "$idle" "≤ 30 MiB"
printf '%-48s %7s MiB %10s\n' "controller peak RSS (VmHWM)" "$peak" "≤ 64 MiB"
echo "(times include kubectl apply and kubectl wait's watch; controller log: $work/controller.log)"
