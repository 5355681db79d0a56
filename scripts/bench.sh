#!/usr/bin/env bash
# Benchmarks certmint with certmint bench on this machine: starts a server
# on a fresh SQLite data dir (or on Postgres with DB=postgres://...), runs
# the bench, and prints the bench report plus the server's CPU time per
# issued certificate (user+system from /proc, divided by flows) and its
# peak RSS. Usage: scripts/bench.sh [WORKERS] [DURATION] [extra bench flags]
# DATA=dir reuses a data directory (e.g. one seeded by scripts/seed).
# SERVER_BIN=path serves with another certmint build (an A/B run with the
# same bench); NOBUILD=1 skips `make build`; SHOWLOG=1 prints the server
# log's tail at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-8}; duration=${2:-20s}; shift 2 || true
bin=${BIN:-bin}
[ -n "${NOBUILD:-}" ] || make -s build
tmp=$(mktemp -d)
trap 'kill $spid 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${SHOWLOG:-}" ] && tail -5 "$tmp/server.log"; rm -rf "$tmp"' EXIT
port=${PORT:-14443}; aport=$((port+1)); cport=$((port+2)); hport=${HTTP01_PORT:-15002}; dport=${DNS_PORT:-15353}
dbflag=(); [ -n "${DB:-}" ] && dbflag=(--db "$DB")
data=${DATA:-$tmp/data}
srv=${SERVER_BIN:-$bin/certmint}
"$srv" serve --data "$data" --listen 127.0.0.1:$port --admin-listen 127.0.0.1:$aport \
  --crl-listen 127.0.0.1:$cport --http01-port $hport --dns-resolver 127.0.0.1:$dport \
  --rate-limits=false --log-level warn "${dbflag[@]}" ${SERVE_FLAGS:-} 2>"$tmp/server.log" &
spid=$!
for _ in $(seq 100); do curl -skf https://127.0.0.1:$port/acme/directory >/dev/null && break; sleep 0.1; done
"$srv" ca root --data "$data" >"$tmp/root.pem" 2>/dev/null
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$spid/stat; }
before=$(cpu)
"$bin/certmint" bench --server https://127.0.0.1:$port/acme/directory --root "$tmp/root.pem" \
  --workers "$workers" --duration "$duration" --http01-listen 127.0.0.1:$hport \
  --dns-listen 127.0.0.1:$dport --json "$@" >"$tmp/report.json"
after=$(cpu)
rss=$(awk '/VmHWM/ {print $2}' /proc/$spid/status)
flows=$(python3 -c "import json,sys; r=json.load(open('$tmp/report.json')); print(r.get('flows') or r.get('Flows'))")
python3 - "$tmp/report.json" <<PY
import json,sys
r=json.load(open(sys.argv[1]))
print(json.dumps(r, indent=1)[:3000])
PY
python3 -c "print('server CPU per flow: %.3f ms; peak RSS: %d MB' % ((($after-$before)/$ticks)*1000/max($flows,1), $rss/1024))"
