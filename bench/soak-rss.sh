#!/usr/bin/env bash
# Write soak: a 3-node raftkv cluster (durable, default snapshot threshold of
# 10,000 entries) under a steady wrk write load (256-byte values over 10,000
# keys, leader only) for SOAK_S seconds; prints every node's RSS every
# SAMPLE_S seconds, then start and end RSS and what was written. Snapshots and
# log compaction should keep RSS flat.
#
#   bench/soak-rss.sh                   # 10 minutes, 64 connections
#   SOAK_S=120 CONNS=16 bench/soak-rss.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOAK_S=${SOAK_S:-600}
SAMPLE_S=${SAMPLE_S:-30}
CONNS=${CONNS:-64}
WORK=$(mktemp -d /tmp/raftkv-soak.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
start_raftkv_cluster
rss() { awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "-"; }
snapshot_count() { curl -sf "$url/metrics" | awk '$1 == "raftkv_snapshots_saved_total" {print $2}'; }
applied() { curl -sf "$url/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["appliedIndex"])'; }
echo "soak: ${SOAK_S}s of writes at c=$CONNS against $url; RSS in MiB (n1 n2 n3)"
wrk -t2 -c"$CONNS" -d"${SOAK_S}s" --timeout 5s --latency -s "$ROOT/bench/wrk/raftkv-put.lua" "$url" >"$WORK/wrk.txt" 2>&1 &
wrk_pid=$!
start=$SECONDS first="" last=""
while kill -0 "$wrk_pid" 2>/dev/null; do
  sleep "$SAMPLE_S"
  kill -0 "$wrk_pid" 2>/dev/null || break
  line="$(rss "${PIDS[0]}") $(rss "${PIDS[1]}") $(rss "${PIDS[2]}")"
  [ -n "$first" ] || first=$line
  last=$line
  printf '  t=%4ds  rss %s  applied %s  snapshots(leader) %s\n' $((SECONDS - start)) "$line" "$(applied)" "$(snapshot_count)"
done
wait "$wrk_pid" || true
grep -E "Requests/sec|requests in|Non-2xx|Socket errors|50%|99%" "$WORK/wrk.txt" | sed 's/^/  wrk: /'
echo "RSS MiB at the first sample (t=${SAMPLE_S}s): $first; at the end: $last"
