# Sourced by bench-pebble.sh and bench-floor.sh: runs `certmint bench`
# against another ACME server already listening, and prints one summary
# line with that server's CPU per flow (user+system from /proc) beside
# the bench's own.
# Usage: bench_other NAME PID DIRECTORY_URL ROOT_PEM WORKERS DURATION HTTP01_PORT DNS_PORT REPORT_JSON
bench_other() {
  local name=$1 pid=$2 dir=$3 root=$4 workers=$5 duration=$6 hport=$7 dport=$8 report=$9
  local ticks before after
  ticks=$(getconf CLK_TCK)
  before=$(awk '{print $14+$15}' "/proc/$pid/stat")
  bin/certmint bench --server "$dir" --root "$root" --workers "$workers" --duration "$duration" \
    --http01-listen "127.0.0.1:$hport" --dns-listen "127.0.0.1:$dport" --json >"$report" || true
  after=$(awk '{print $14+$15}' "/proc/$pid/stat")
  python3 - "$name" "$report" "$before" "$after" "$ticks" <<'PY'
import json, sys
name, path, before, after, ticks = sys.argv[1:]
r = json.load(open(path)); flows = r.get("flows", 0)
cpu = (float(after) - float(before)) / float(ticks)
print("%s: flows %d, errors %d, %.1f flows/s, %.1f requests/flow, flow p50 %.1f ms p99 %.1f ms, "
      "server CPU per flow %.3f ms, bench CPU per flow %.3f ms" % (
      name, flows, r.get("errors", 0), r.get("flows_per_second", 0), r.get("requests_per_flow", 0),
      r["flow_latency"]["p50_ms"], r["flow_latency"]["p99_ms"], cpu * 1000 / max(flows, 1),
      r.get("bench_cpu_per_flow_ms", 0)))
print("errors by type:", r.get("errors_by_type"))
PY
}
