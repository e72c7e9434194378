#!/usr/bin/env bash
# Benchmark of the bulletin board feed (issue 6): wrk against GET /api/v1/boards/{id}/feed of a
# running release nguon-server (SQLite, embedded broker, three published bulletins), and against
# nginx serving the same JSON as a static file, in the same run. Prints req/s of both and the ratio.
#
#   scripts/bench-feed.sh [duration_s=10] [connections=64]
#   NGUON_BENCH_BIN=/path/to/nguon-server scripts/bench-feed.sh   # skip the build
#
# Needs: cargo, curl, wrk, nginx (apt-get install -y wrk nginx-light). Starts everything on free
# ports in a temp dir and stops it on exit; the system nginx service is not touched.
set -euo pipefail
DUR="${1:-10}"
CONN="${2:-64}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/nguon-bench-feed.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "install wrk and nginx-light first" >&2; exit 2; }
# NGUON_BENCH_BIN=path uses an already built binary instead of building one.
BIN="${NGUON_BENCH_BIN:-}"
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release -q -p nguon-server --bin nguon-server)
  BIN="$ROOT/target/release/nguon-server"
fi

HTTP_PORT="$(free_port)"; MQTT_PORT="$(free_port)"; NGINX_PORT="$(free_port)"
TOKEN="bench-admin-token-0123456789"
S="http://127.0.0.1:$HTTP_PORT"
NGUON_HTTP_ADDR="127.0.0.1:$HTTP_PORT" NGUON_MQTT_ADDR="127.0.0.1:$MQTT_PORT" NGUON_DATA_DIR="$WORK/data" \
  NGUON_ADMIN_TOKEN="$TOKEN" RUST_LOG=warn "$BIN" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fs "$S/healthz" >/dev/null && break; sleep 0.1; done

api() { curl -fsS -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }
api -X POST "$S/api/v1/areas" -d '{"code":"08","name":"Tỉnh Lào Cai","level":"province"}' >/dev/null
api -X POST "$S/api/v1/areas" -d '{"code":"08003","name":"Xã Sa Pa","parent":"08","level":"commune"}' >/dev/null
api -X POST "$S/api/v1/devices" -d '{"id":"bang-08003-01","kind":"board","area":"08003"}' >/dev/null
for i in 1 2 3; do
  ID=$(api -X POST "$S/api/v1/bulletins" -d "{\"title\":\"Bản tin số $i: lịch tiêm chủng và phòng chống mưa lũ\",\"body\":\"UBND xã thông báo ngày 15/6/2025 **tiêm chủng** cho trẻ em.\\n\\n- Mang sổ tiêm\\n- Đến đúng giờ\",\"areas\":[\"08\"]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  api -X POST "$S/api/v1/bulletins/$ID/submit" >/dev/null
  api -X POST "$S/api/v1/bulletins/$ID/approve" >/dev/null
  api -X POST "$S/api/v1/bulletins/$ID/publish" -d '{"speakers":false}' >/dev/null
done
FEED="$S/api/v1/boards/bang-08003-01/feed"
mkdir -p "$WORK/www"
api "$FEED" >"$WORK/www/feed.json"
echo "feed: $(wc -c <"$WORK/www/feed.json") bytes, $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["bulletins"]))' "$WORK/www/feed.json") bulletins"

cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  types { application/json json; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$NGINX_PORT/feed.json" >/dev/null && break; sleep 0.1; done

run_wrk() { wrk -t2 -c"$CONN" -d"${DUR}s" "$@" | tee -a "$WORK/wrk.log" | awk '/Requests\/sec/ {print $2}'; }
echo "wrk -t2 -c$CONN -d${DUR}s (one machine: server/nginx and wrk share the cores)"
NGUON_RPS=$(run_wrk -H "Authorization: Bearer $TOKEN" "$FEED")
NGINX_RPS=$(run_wrk "http://127.0.0.1:$NGINX_PORT/feed.json")
NGUON_304=$(run_wrk -H "Authorization: Bearer $TOKEN" -H "If-None-Match: $(curl -fsI -H "Authorization: Bearer $TOKEN" "$FEED" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')" "$FEED")
echo "nguon feed (200):        $NGUON_RPS req/s"
echo "nguon feed (304, ETag):  $NGUON_304 req/s"
echo "nginx static same JSON:  $NGINX_RPS req/s"
python3 -c "import sys; print(f'ratio nguon/nginx: {float(sys.argv[1])/float(sys.argv[2]):.2f}x')" "$NGUON_RPS" "$NGINX_RPS"
