#!/usr/bin/env bash
# Profiles a 3-node raftkv cluster under a wrk load with `perf record -e cpu-clock`
# (a software event: works in VMs without hardware counters) and prints the top
# symbols of the leader and of the whole machine.
#
#   OP=put CONNS=64 DURATION_S=10 bench/profile.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OP=${OP:-put}
CONNS=${CONNS:-64}
DURATION_S=${DURATION_S:-10}
WORK=$(mktemp -d /tmp/raftkv-prof.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK/raftkv"
}
trap cleanup EXIT INT TERM
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
leader_pid=""
for _ in $(seq 1 150); do
  for i in 0 1 2; do
    if curl -sf "http://127.0.0.1:${kv[$i]}/health" | grep -q '"state":"Leader"'; then
      leader=${kv[$i]}; leader_pid=${PIDS[$i]}
    fi
  done
  [ -n "$leader_pid" ] && break
  sleep 0.2
done
[ -n "$leader_pid" ] || { echo "no leader" >&2; exit 1; }
url="http://127.0.0.1:$leader"
wrk -t2 -c16 -d2s -s "$ROOT/bench/wrk/raftkv-preload.lua" "$url" >/dev/null 2>&1 || true
wrk -t2 -c"$CONNS" -d"${DURATION_S}s" --latency -s "$ROOT/bench/wrk/raftkv-$OP.lua" "$url" >"$WORK/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 1
perf record -q -e cpu-clock -F 2000 -a -o "$WORK/perf.data" -- sleep $((DURATION_S - 2)) 2>/dev/null
wait $wrk_pid || true
grep -E "Requests/sec|50%|99%" "$WORK/wrk.txt"
echo "== share of all samples by process"
perf report -i "$WORK/perf.data" --sort comm,pid --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo "== leader (pid $leader_pid): top symbols"
perf report -i "$WORK/perf.data" --pid "$leader_pid" --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -${TOP:-45}
echo "perf data: $WORK/perf.data"
