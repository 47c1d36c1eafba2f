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
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
start_raftkv_cluster
wrk -t2 -c16 -d2s -s "$ROOT/bench/wrk/raftkv-preload.lua" "$url" >/dev/null 2>&1 || true
wrk -t2 -c"$CONNS" -d"${DURATION_S}s" --latency -s "$ROOT/bench/wrk/raftkv-$OP.lua" "$url" >"$WORK/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 1
perf record -q -e cpu-clock -F 2000 -a -o "$WORK/perf.data" -- sleep $((DURATION_S - 2)) 2>/dev/null
wait $wrk_pid || true
grep -E "Requests/sec|50%|99%" "$WORK/wrk.txt"
echo "== share of all samples by process"
perf report -i "$WORK/perf.data" --sort comm,pid --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12 || true
echo "== leader (pid $leader_pid): top symbols"
perf report -i "$WORK/perf.data" --pid "$leader_pid" --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -"${TOP:-45}" || true
echo "== leader (pid $leader_pid): share by component (kernel, allocator, crate of the symbol)"
perf report -i "$WORK/perf.data" --pid "$leader_pid" --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | python3 -c '
import collections, re, sys
shares = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s+([\d.]+)%\s+\[(.)\]\s+(.*)", line)
    if not m:
        continue
    pct, kind, sym = float(m.group(1)), m.group(2), m.group(3).lstrip("<")
    if kind == "k":
        key = "kernel"
    elif sym.startswith(("_mi", "mi_")):
        key = "mimalloc"
    else:
        key = re.split(r"::|\s", sym)[0]
    shares[key] += pct
total = sum(shares.values()) or 1
for key, pct in shares.most_common(12):
    print(f"  {100 * pct / total:5.1f}%  {key}")
'
echo "perf data: $WORK/perf.data"
