#!/usr/bin/env bash
# Runs the same `certmint bench` against scripts/floor, an in-memory ACME
# server that does only the work every flow needs (TLS, nonces, JWS
# checks, http-01 validation, CSR check, signing) with certmint's code for
# it: the floor of server CPU per flow on this machine, for BENCHMARKS.md.
# Usage: scripts/bench-floor.sh [WORKERS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-8}; duration=${2:-20s}
[ -n "${NOBUILD:-}" ] || { make -s build; go build -o bin/floor ./scripts/floor; }
tmp=$(mktemp -d)
trap 'kill $fpid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=14700; hport=15702; dport=15753
GOGC=${GOGC:-400} bin/floor -listen 127.0.0.1:$port -http01-port $hport -dns-resolver 127.0.0.1:$dport \
  -root-out "$tmp/root.pem" 2>"$tmp/floor.log" &
fpid=$!
for _ in $(seq 100); do curl -skf https://127.0.0.1:$port/dir >/dev/null && break; sleep 0.1; done
. scripts/lib/bench-other.sh
bench_other floor $fpid https://127.0.0.1:$port/dir "$tmp/root.pem" "$workers" "$duration" $hport $dport "$tmp/report.json"
