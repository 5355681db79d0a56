#!/usr/bin/env bash
# CPU-profiles certmint under certmint bench: signs in to the console,
# fetches /debug/pprof/profile while the bench runs, and prints the top of
# the profile. Usage: scripts/profile.sh [WORKERS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-8}; secs=${2:-15}
make -s build
tmp=$(mktemp -d)
trap 'kill $spid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=14543; aport=14544; cport=14545; hport=15102; dport=15453
bin/certmint serve --data "$tmp/data" --listen 127.0.0.1:$port --admin-listen 127.0.0.1:$aport \
  --crl-listen 127.0.0.1:$cport --http01-port $hport --dns-resolver 127.0.0.1:$dport \
  --rate-limits=false --log-level warn ${SERVE_FLAGS:-} 2>"$tmp/server.log" &
spid=$!
for _ in $(seq 100); do curl -skf https://127.0.0.1:$port/acme/directory >/dev/null && break; sleep 0.1; done
bin/certmint ca root --data "$tmp/data" >"$tmp/root.pem" 2>/dev/null
jar="$tmp/jar"; admin=https://127.0.0.1:$aport
csrf=$(curl -sk -c "$jar" -b "$jar" $admin/login | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
curl -sk -c "$jar" -b "$jar" -o /dev/null -d "csrf_token=$csrf&username=admin&password=$(cat "$tmp/data/initial-admin-password")&next=/" $admin/login
bin/certmint bench --server https://127.0.0.1:$port/acme/directory --root "$tmp/root.pem" \
  --workers "$workers" --duration "$((secs+4))s" --http01-listen 127.0.0.1:$hport --dns-listen 127.0.0.1:$dport >"$tmp/report.txt" 2>/dev/null &
bpid=$!
sleep 2
curl -sk -b "$jar" -o "${OUT:-/tmp/certmint-cpu.pprof}" "$admin/debug/pprof/profile?seconds=$secs"
wait $bpid
head -5 "$tmp/report.txt"
go tool pprof -top -nodecount=${TOP:-40} bin/certmint "${OUT:-/tmp/certmint-cpu.pprof}" 2>/dev/null | head -$(( ${TOP:-40} + 6 ))
