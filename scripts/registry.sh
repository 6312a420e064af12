# Sourced by scripts/demo, scripts/image-check and bench/*.sh: start Debian's docker-registry on a
# free loopback port.
#   start_registry NAME [tls-auth USER PASS]
# sets ${NAME}_HOST (127.0.0.1:PORT), ${NAME}_DIR (its storage/config dir), ${NAME}_CA (tls only)
# and registers a trap that stops every registry started this way when the script exits.
set -euo pipefail

PKGR_REGISTRY_PIDS=()
PKGR_REGISTRY_DIRS=()
stop_registries() {
  for pid in "${PKGR_REGISTRY_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for dir in "${PKGR_REGISTRY_DIRS[@]}"; do rm -rf "$dir"; done
}
trap stop_registries EXIT

start_registry() {
  local name=$1 mode=${2:-plain} user=${3:-} pass=${4:-}
  command -v docker-registry >/dev/null || {
    echo "docker-registry is not installed: apt-get install docker-registry apache2-utils openssl" >&2
    exit 1
  }
  local dir host
  dir=$(mktemp -d "${TMPDIR:-/tmp}/pkgr-registry.XXXXXX")
  PKGR_REGISTRY_DIRS+=("$dir")
  cat >"$dir/config.yml" <<CFG
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  # Port 0: the kernel picks a free port when the registry binds, so no other process can take
  # it in between; the registry logs the address it got.
  addr: 127.0.0.1:0
  secret: pkgr-bench-secret
CFG
  if [ "$mode" = tls-auth ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj "/CN=pkgr test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/ext.cnf"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null
    htpasswd -Bbn -C 5 "$user" "$pass" >"$dir/htpasswd"
    cat >>"$dir/config.yml" <<CFG
  tls:
    certificate: $dir/server.pem
    key: $dir/server.key
auth:
  htpasswd:
    realm: pkgr
    path: $dir/htpasswd
CFG
    printf -v "${name}_CA" '%s' "$dir/ca.pem"
  fi
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  local pid=$!
  PKGR_REGISTRY_PIDS+=("$pid")
  # The registry logs "listening on 127.0.0.1:PORT" once it accepts connections; wait for that
  # line (tail stops with the registry) and take the port from it.
  host=$(timeout 30 grep -o -m1 "listening on 127\.0\.0\.1:[0-9]*" \
    <(tail -F --pid="$pid" "$dir/log" 2>/dev/null) | cut -d' ' -f3) || true
  if [ -z "$host" ]; then
    echo "docker-registry did not start within 30 s; its log ($dir/log):" >&2
    cat "$dir/log" >&2
    exit 1
  fi
  printf -v "${name}_HOST" '%s' "$host"
  printf -v "${name}_DIR" '%s' "$dir"
}
