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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
(cd "$ROOT" && cargo build --release -q -p node)
bin="$ROOT/target/release/raftkv"
kv=() raft=() peers=""
for i in 0 1 2; do kv+=("$(free_port)"); raft+=("$(free_port)"); done
for i in 0 1 2; do peers+="127.0.0.1:${raft[$i]},"; done
for i in 0 1 2; do
  KVSTORE_PORT=${kv[$i]} RAFT_PORT=${raft[$i]} NODE_ID="n$((i + 1))" PEERS="${peers%,}" PEER_IDS=n1,n2,n3 \
    RAFT_DATA_DIR="$WORK/raftkv" RUST_LOG=warn "$bin" serve >"$WORK/n$((i + 1)).log" 2>&1 &
  PIDS+=($!)
done
leader=""
for _ in $(seq 1 150); do
  for i in 0 1 2; do
    curl -sf "http://127.0.0.1:${kv[$i]}/health" | grep -q '"state":"Leader"' && leader=${kv[$i]}
  done
  [ -n "$leader" ] && break
  sleep 0.2
done
[ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
url="http://127.0.0.1:$leader"
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
