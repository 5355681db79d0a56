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
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$fpid/stat; }
before=$(cpu)
bin/certmint bench --server https://127.0.0.1:$port/dir --root "$tmp/root.pem" \
  --workers "$workers" --duration "$duration" --http01-listen 127.0.0.1:$hport --dns-listen 127.0.0.1:$dport --json >"$tmp/report.json" || true
after=$(cpu)
python3 - "$tmp/report.json" "$before" "$after" "$ticks" <<'PY'
import json,sys
r=json.load(open(sys.argv[1])); flows=r.get("flows",0)
cpu=(float(sys.argv[3])-float(sys.argv[2]))/float(sys.argv[4])
print("floor: flows %d, errors %d, %.1f flows/s, %.1f requests/flow, flow p50 %.1f ms p99 %.1f ms, server CPU per flow %.3f ms, bench CPU per flow %.3f ms" % (
  flows, r.get("errors",0), r.get("flows_per_second",0), r.get("requests_per_flow",0), r["flow_latency"]["p50_ms"], r["flow_latency"]["p99_ms"],
  cpu*1000/max(flows,1), r.get("bench_cpu_per_flow_ms",0)))
print("errors by type:", r.get("errors_by_type"))
PY
