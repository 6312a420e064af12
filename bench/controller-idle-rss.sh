#!/usr/bin/env bash
# Idle memory of the release `pkgr controller` binary: started against a minimal fake API server
# on loopback (CRDs present, no PackageRepositories, watches held open), measured once all four
# watches are open. No cluster needed; bench/controller.sh measures against a real one.
#   bench/controller-idle-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
cleanup() {
  [[ -n "${controller:-}" ]] && kill "$controller" 2>/dev/null || true
  [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/api.py" <<'EOF'
import http.server, json, sys, threading
watches = set()
lock = threading.Lock()
CRD_SPEC = {"group": "x", "names": {"kind": "X", "plural": "x"}, "scope": "Cluster", "versions": []}

class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        path, _, query = self.path.partition("?")
        if "watch=true" in query.split("&") or "watch=1" in query.split("&"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            with lock:
                watches.add(path)
                if len(watches) == 4:
                    print("watching", flush=True)
            self.rfile.read(1)  # hold the watch until the client goes away
            return
        if path.startswith("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"):
            name = path.rsplit("/", 1)[1]
            self.reply(200, {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                             "metadata": {"name": name}, "spec": CRD_SPEC})
        elif path.startswith("/apis/apiregistration.k8s.io/") or path.endswith("/secrets/kapp-controller-config"):
            self.reply(404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "reason": "NotFound", "code": 404})
        else:
            self.reply(200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []})

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
EOF

coproc API { python3 "$work/api.py"; }
server=$API_PID
read -r port <&"${API[0]}"
cat > "$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$port"}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
users: [{name: fake, user: {token: bench}}]
EOF
KUBECONFIG="$work/kubeconfig" target/release/pkgr controller --metrics-address 127.0.0.1:0 \
  2>"$work/controller.log" &
controller=$!
read -r -t 60 ready <&"${API[0]}" || { echo "the controller did not open its watches"; cat "$work/controller.log"; exit 1; }
[[ "$ready" == watching ]]
grep -E '^(VmRSS|VmHWM)' "/proc/$controller/status" | sed 's/^/pkgr controller idle, all watches open: /'
