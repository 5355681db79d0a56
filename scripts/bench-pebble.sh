#!/usr/bin/env bash
# Runs the same `certmint bench` against Pebble (Let's Encrypt's test ACME
# server, built from the Go module proxy) for a side-by-side figure.
# Usage: scripts/bench-pebble.sh [WORKERS] [DURATION]
# PEBBLE_VERSION picks the release (default v2.8.0).
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-8}; duration=${2:-20s}
ver=${PEBBLE_VERSION:-v2.8.0}
make -s build
cache=${XDG_CACHE_HOME:-$HOME/.cache}/certmint-bench/pebble-$ver
if [ ! -x "$cache/pebble" ]; then
  mkdir -p "$cache"
  (cd "$cache" && printf 'module pebblebuild\n\ngo 1.26\n' > go.mod &&
   GOFLAGS=-mod=mod go get "github.com/letsencrypt/pebble/v2@$ver" &&
   GOFLAGS=-mod=mod go build -o pebble github.com/letsencrypt/pebble/v2/cmd/pebble)
fi
src=$(cd "$cache" && go list -m -f '{{.Dir}}' github.com/letsencrypt/pebble/v2)
tmp=$(mktemp -d)
trap 'kill $ppid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=14600; hport=15602; dport=15653
cat >"$tmp/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$port", "managementListenAddress": "127.0.0.1:$((port+1))",
  "certificate": "$src/test/certs/localhost/cert.pem", "privateKey": "$src/test/certs/localhost/key.pem",
  "httpPort": $hport, "tlsPort": $((hport+1)), "ocspResponderURL": "", "externalAccountBindingRequired": false,
  "retryAfter": {"authz": 1, "order": 1},
  "profiles": {"default": {"description": "default", "validityPeriod": 7776000}}}}
JSON
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 "$cache/pebble" -config "$tmp/pebble.json" -dnsserver 127.0.0.1:$dport >"$tmp/pebble.log" 2>&1 &
ppid=$!
for _ in $(seq 100); do curl -skf https://127.0.0.1:$port/dir >/dev/null && break; sleep 0.1; done
. scripts/lib/bench-other.sh
bench_other pebble $ppid https://127.0.0.1:$port/dir "$src/test/certs/pebble.minica.pem" \
  "$workers" "$duration" $hport $dport "$tmp/report.json"
