#!/usr/bin/env bash
# pkgr copy against skopeo copy (and imgpkg, when IMGPKG names its binary), measured in the same
# run on the same machine (issues 4 and 19).
#
# Setup: two Debian docker-registry processes on loopback (scripts/registry.sh): SRC plain HTTP,
# DST HTTPS with a CA made for the run and htpasswd Basic auth. SRC holds one 500 MiB image of
# 10 incompressible 50 MiB layers, and a bundle of 50 small images.
#
# Cases (each tool REPS times, median reported; DST emptied before every cold/import run):
#   cold      SRC image -> DST repository, destination empty
#   warm      the same again, everything present
#   to-tar    SRC image -> tarball   (skopeo: oci-archive:)
#   from-tar  tarball -> DST repository, destination empty (skopeo: from its oci-archive)
#   floor     the destination's own ingest rate: the same 10 layers uploaded to DST by curl, all
#             at once (one POST and one streamed PUT each, HTTP/1.1 as pkgr speaks, the same TLS
#             and Basic auth), from files on disk; a client that does nothing else. from-tar is
#             reported against it. (curl's default HTTP/2 is about 3x slower to docker-registry.)
#   get-floor the source's own serving rate: the same 10 layers downloaded from SRC by curl, all
#             at once, into files (no digest check); to-tar is reported against it.
#   bundle50  pkgr only: the 50-image bundle, cold and warm: time and registry requests
#             (from both registries' access logs), writes on DST
# Measured with /usr/bin/time -v: wall time, CPU user+sys, peak RSS. Targets (issue 19): cold
# <= 0.7x skopeo, warm <= 0.2x, to-tar <= 0.2x, from-tar <= 0.5x, peak RSS <= 20 MiB.
#
# Usage: bench/copy-vs-skopeo.sh            (builds target/release/pkgr unless PKGR is set)
#        REPS=5 LAYERS=10 LAYER_MIB=50 SKIP_BUNDLE=1 bench/copy-vs-skopeo.sh   (or SKIP_IMAGE=1)
#        IMGPKG=/path/to/imgpkg bench/copy-vs-skopeo.sh   (adds imgpkg to every image case)
# Needs: docker-registry, skopeo, curl, apache2-utils (htpasswd), openssl, python3, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/registry.sh

REPS=${REPS:-3}
LAYERS=${LAYERS:-10}
LAYER_MIB=${LAYER_MIB:-50}
SMALL_IMAGES=${SMALL_IMAGES:-50}
if [ -z "${PKGR:-}" ]; then
  cargo build --release --locked --bin pkgr >&2
  PKGR=${CARGO_TARGET_DIR:-target}/release/pkgr
fi
for tool in skopeo curl /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pkgr-bench.XXXXXX")
PKGR_REGISTRY_DIRS+=("$WORK")
start_registry SRC
start_registry DST tls-auth bench bench-pass
mkdir -p "$WORK/certs"
cp "$DST_CA" "$WORK/certs/ca.crt"

# pkgr reads credentials the imgpkg way; skopeo gets them as flags.
export IMGPKG_REGISTRY_HOSTNAME_0="$DST_HOST" IMGPKG_REGISTRY_USERNAME_0=bench IMGPKG_REGISTRY_PASSWORD_0=bench-pass
PKGR_TLS=(--registry-ca-cert-path "$DST_CA")
SKOPEO_DST=(--dest-cert-dir "$WORK/certs" --dest-creds bench:bench-pass)
SKOPEO_SRC=(--src-tls-verify=false)

echo "== setup: ${LAYERS}x${LAYER_MIB} MiB image and a ${SMALL_IMAGES}-image bundle on $SRC_HOST" >&2
python3 - "$SRC_HOST" "$LAYERS" "$LAYER_MIB" "$SMALL_IMAGES" "$WORK" <<'PY'
import hashlib, io, json, os, sys, tarfile, gzip, urllib.request
host, layers, mib, small, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
base = f"http://{host}/v2"
def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(r) as resp:
        return resp.status, resp.headers
def blob(repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    _, h = req("POST", f"{base}/{repo}/blobs/uploads/")
    loc = h["Location"]
    loc = loc if loc.startswith("http") else f"http://{host}{loc}"
    sep = "&" if "?" in loc else "?"
    req("PUT", f"{loc}{sep}digest={d}", data, {"Content-Type": "application/octet-stream"})
    return d
def image(repo, tag, layer_blobs, labels=None):
    ds = [blob(repo, b) for b in layer_blobs]
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ds}, "config": {"Labels": labels} if labels else {}}
    cb = json.dumps(cfg, separators=(",", ":")).encode()
    cd = blob(repo, cb)
    m = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(cb), "digest": cd},
         "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(b), "digest": d} for b, d in zip(layer_blobs, ds)]}
    mb = json.dumps(m, separators=(",", ":")).encode()
    req("PUT", f"{base}/{repo}/manifests/{tag}", mb, {"Content-Type": m["mediaType"]})
    return "sha256:" + hashlib.sha256(mb).hexdigest()
# The big image: incompressible layers.
big = [os.urandom(mib * 1024 * 1024) for _ in range(layers)]
image("bench/big", "v1", big)
# The same layers as files, for the curl floor: name.bin and its digest in name.digest.
os.makedirs(f"{work}/layers", exist_ok=True)
for i, b in enumerate(big):
    open(f"{work}/layers/{i}.bin", "wb").write(b)
    open(f"{work}/layers/{i}.digest", "w").write("sha256:" + hashlib.sha256(b).hexdigest())
del big
# The bundle of small images.
refs = []
for i in range(small):
    d = image(f"bench/small{i}", "v1", [os.urandom(4096 + i)])
    refs.append(f"{host}/bench/small{i}@{d}")
lock = "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n" + "".join(f"- image: {r}\n" for r in refs)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    for name, data in [(".imgpkg/images.yml", lock.encode())]:
        info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o600
        t.addfile(info, io.BytesIO(data))
layer = gzip.compress(buf.getvalue(), mtime=0)
image("bench/bundle", "v1", [layer], {"dev.carvel.imgpkg.bundle": "true"})
PY

# measure NAME CMD...: run under /usr/bin/time -v; prints "wall_s cpu_s rss_kib" and keeps stderr.
measure() {
  local name=$1; shift
  local log="$WORK/$name.time"
  if ! /usr/bin/time -v -o "$log" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
    echo "FAILED: $name: $*" >&2
    tail -20 "$WORK/$name.err" >&2
    exit 1
  fi
  python3 - "$log" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def f(k): return re.search(re.escape(k) + r":\s*(.+)", t).group(1).strip()
w = f("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
print(f"{wall:.3f} {float(f('User time (seconds)')) + float(f('System time (seconds)')):.2f} {f('Maximum resident set size (kbytes)')}")
PY
}

empty_dst() { rm -rf "${DST_DIR:?}/storage"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A RESULT
run_case() { # run_case CASE TOOL PREP_FN CMD...
  local case=$1 tool=$2 prep=$3; shift 3
  local walls=() cpus=() rsss=()
  for rep in $(seq "$REPS"); do
    $prep
    read -r wall cpu rss < <(measure "$case-$tool-$rep" "$@")
    walls+=("$wall"); cpus+=("$cpu"); rsss+=("$rss")
  done
  local w c r
  w=$(printf '%s\n' "${walls[@]}" | median)
  c=$(printf '%s\n' "${cpus[@]}" | median)
  r=$(printf '%s\n' "${rsss[@]}" | sort -n | tail -1)
  RESULT[$case,$tool]="$w $c $r"
  printf '%-9s %-7s wall %7.3fs  cpu %6.2fs  peak RSS %6.1f MiB   (walls: %s)\n' \
    "$case" "$tool" "$w" "$c" "$(echo "$r / 1024" | bc -l)" "${walls[*]}" >&2
}
noop() { :; }
rm_pkgr_tar() { rm -f "$WORK/pkgr.tar"; }
rm_skopeo_tar() { rm -f "$WORK/skopeo.tar"; }

# The floor: every layer file uploaded to DST at once by curl, which streams it (-T).
cat >"$WORK/floor.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
host=$1 ca=$2 dir=$3
upload() {
  local file=$1 digest location sep
  digest=$(cat "${file%.bin}.digest")
  location=$(curl -sSf --cacert "$ca" -u bench:bench-pass -X POST -o /dev/null -D - \
    "https://$host/v2/bench/floor/blobs/uploads/" | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
  case $location in http*) ;; *) location="https://$host$location" ;; esac
  sep='?'; case $location in *\?*) sep='&' ;; esac
  curl --http1.1 -sSf --cacert "$ca" -u bench:bench-pass -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$file" -o /dev/null "$location${sep}digest=$digest"
}
pids=()
for file in "$dir"/*.bin; do upload "$file" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done
SH
chmod +x "$WORK/floor.sh"

# The to-tar floor: every layer downloaded from SRC at once by curl into a file of its own.
cat >"$WORK/get-floor.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
host=$1 dir=$2 out=$3
mkdir -p "$out"
pids=()
for file in "$dir"/*.digest; do
  curl --http1.1 -sSf -o "$out/$(basename "$file" .digest)" "http://$host/v2/bench/big/blobs/$(cat "$file")" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
SH
chmod +x "$WORK/get-floor.sh"
rm_got() { rm -rf "$WORK/got"; }

SRC_IMG="$SRC_HOST/bench/big:v1"
ok=true
TOOLS=(pkgr skopeo)
if [ -n "${IMGPKG:-}" ]; then TOOLS+=(imgpkg); fi
rm_imgpkg_tar() { rm -f "$WORK/imgpkg.tar"; }
if [ "${SKIP_IMAGE:-0}" != 1 ]; then
echo "== 500 MiB image, $REPS run(s) per tool and case" >&2
# Each tool's warm run follows its own cold run (the cold runs empty the destination).
run_case cold pkgr empty_dst "$PKGR" copy -i "$SRC_IMG" --to-repo "$DST_HOST/bench/big" "${PKGR_TLS[@]}"
run_case warm pkgr noop "$PKGR" copy -i "$SRC_IMG" --to-repo "$DST_HOST/bench/big" "${PKGR_TLS[@]}"
run_case cold skopeo empty_dst skopeo copy -q "${SKOPEO_SRC[@]}" "${SKOPEO_DST[@]}" "docker://$SRC_IMG" "docker://$DST_HOST/bench/big:v1"
run_case warm skopeo noop skopeo copy -q "${SKOPEO_SRC[@]}" "${SKOPEO_DST[@]}" "docker://$SRC_IMG" "docker://$DST_HOST/bench/big:v1"
if [ -n "${IMGPKG:-}" ]; then
  # imgpkg reads the same flags and environment variables as pkgr.
  run_case cold imgpkg empty_dst "$IMGPKG" copy -i "$SRC_IMG" --to-repo "$DST_HOST/bench/big" "${PKGR_TLS[@]}"
  run_case warm imgpkg noop "$IMGPKG" copy -i "$SRC_IMG" --to-repo "$DST_HOST/bench/big" "${PKGR_TLS[@]}"
fi
run_case to-tar pkgr rm_pkgr_tar "$PKGR" copy -i "$SRC_IMG" --to-tar "$WORK/pkgr.tar"
run_case to-tar skopeo rm_skopeo_tar skopeo copy -q "${SKOPEO_SRC[@]}" "docker://$SRC_IMG" "oci-archive:$WORK/skopeo.tar"
[ -z "${IMGPKG:-}" ] || run_case to-tar imgpkg rm_imgpkg_tar "$IMGPKG" copy -i "$SRC_IMG" --to-tar "$WORK/imgpkg.tar"
run_case from-tar pkgr empty_dst "$PKGR" copy --tar "$WORK/pkgr.tar" --to-repo "$DST_HOST/bench/big" "${PKGR_TLS[@]}"
run_case from-tar skopeo empty_dst skopeo copy -q "${SKOPEO_DST[@]}" "oci-archive:$WORK/skopeo.tar" "docker://$DST_HOST/bench/big:v1"
[ -z "${IMGPKG:-}" ] || run_case from-tar imgpkg empty_dst "$IMGPKG" copy --tar "$WORK/imgpkg.tar" --to-repo "$DST_HOST/bench/big" "${PKGR_TLS[@]}"
run_case floor curl empty_dst "$WORK/floor.sh" "$DST_HOST" "$DST_CA" "$WORK/layers"
run_case get-floor curl rm_got "$WORK/get-floor.sh" "$SRC_HOST" "$WORK/layers" "$WORK/got"
rm_got
rm -f "$WORK/pkgr.tar" "$WORK/skopeo.tar" "$WORK/imgpkg.tar"

echo "== ratios pkgr / skopeo (wall) and peak RSS" >&2
for case in cold warm to-tar from-tar; do
  read -r pw pc pr <<<"${RESULT[$case,pkgr]}"
  read -r sw sc sr <<<"${RESULT[$case,skopeo]}"
  case $case in cold) target=0.7 ;; from-tar) target=0.5 ;; *) target=0.2 ;; esac
  ratio=$(echo "$pw / $sw" | bc -l)
  verdict=ok
  if [ "$(echo "$ratio > $target" | bc -l)" = 1 ] || [ "$pr" -gt 20480 ]; then verdict=MISS; ok=false; fi
  extra=""
  if [ -n "${IMGPKG:-}" ]; then
    read -r iw ic ir <<<"${RESULT[$case,imgpkg]}"
    extra=$(printf '  pkgr/imgpkg %.2f (imgpkg cpu %ss, RSS %.1f MiB)' "$(echo "$pw / $iw" | bc -l)" "$ic" "$(echo "$ir / 1024" | bc -l)")
  fi
  printf '%-9s wall ratio %.2f (target <= %s)  cpu pkgr %ss skopeo %ss  RSS pkgr %.1f MiB skopeo %.1f MiB  %s%s\n' \
    "$case" "$ratio" "$target" "$pc" "$sc" "$(echo "$pr / 1024" | bc -l)" "$(echo "$sr / 1024" | bc -l)" "$verdict" "$extra"
done
read -r pw _ _ <<<"${RESULT[from-tar,pkgr]}"
read -r fw fc _ <<<"${RESULT[floor,curl]}"
printf 'from-tar  against the floor (curl, %s parallel uploads: %.3fs, cpu %ss): pkgr %.2fx\n' \
  "$LAYERS" "$fw" "$fc" "$(echo "$pw / $fw" | bc -l)"
read -r tw _ _ <<<"${RESULT[to-tar,pkgr]}"
read -r gw gc _ <<<"${RESULT[get-floor,curl]}"
printf 'to-tar    against the floor (curl, %s parallel downloads to files, no digest check: %.3fs, cpu %ss): pkgr %.2fx\n' \
  "$LAYERS" "$gw" "$gc" "$(echo "$tw / $gw" | bc -l)"
fi

# Registry requests from the access logs (one line per request: "METHOD /v2/... HTTP/1.1").
count_requests() { grep -cE '"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/' "$1" || true; }
count_writes() { grep -cE '"(PUT|POST|PATCH|DELETE) /v2/' "$1" || true; }
bundle_case() {
  local label=$1 s0 d0 w0
  s0=$(count_requests "$SRC_DIR/log"); d0=$(count_requests "$DST_DIR/log"); w0=$(count_writes "$DST_DIR/log")
  read -r wall cpu rss < <(measure "bundle50-$label" "$PKGR" copy -b "$SRC_HOST/bench/bundle:v1" --to-repo "$DST_HOST/bench/bundle" "${PKGR_TLS[@]}")
  local s d w
  s=$(( $(count_requests "$SRC_DIR/log") - s0 )); d=$(( $(count_requests "$DST_DIR/log") - d0 )); w=$(( $(count_writes "$DST_DIR/log") - w0 ))
  printf 'bundle of %s images, %-4s: wall %.3fs cpu %ss peak RSS %.1f MiB; requests: source %s, destination %s (writes %s)\n' \
    "$SMALL_IMAGES" "$label" "$wall" "$cpu" "$(echo "$rss / 1024" | bc -l)" "$s" "$d" "$w"
}
if [ "${SKIP_BUNDLE:-0}" != 1 ]; then
  empty_dst
  bundle_case cold
  bundle_case warm
fi
$ok || echo "some targets were missed (see MISS above)"
