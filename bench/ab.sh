#!/usr/bin/env bash
# Two raftkv binaries, A and B, measured in alternation: ROUNDS rounds of one
# run of each (a fresh 3-node cluster per run, preloaded, then wrk for
# DURATION_S), printing per run the requests completed and the CPU time the
# three servers spent per request (user + system, from /proc), and at the end
# the medians and the ratio B / A.
#
# Alternating runs put A and B under the same drift of a shared machine's load,
# and CPU per request moves much less with a noisy neighbour than req/s does;
# that is what makes a 5 % difference visible where compare-etcd.sh's
# one-system-after-the-other runs swing by 20 %.
#
#   A=/tmp/raftkv-old B=target/release/raftkv bench/ab.sh
#   OP=get CONNS=64 ROUNDS=7 DURATION_S=8 A=... B=... bench/ab.sh
#
# OP is a bench/wrk script: put (default) or get.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${A:?set A to the first raftkv binary}" "${B:?set B to the second raftkv binary}"
ROUNDS=${ROUNDS:-5}
threads=2
DURATION_S=${DURATION_S:-6}
CONNS=${CONNS:-64}
OP=${OP:-put}
[ "$CONNS" -ge 2 ] || threads=1 # wrk wants at least one connection per thread
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
source "$ROOT/bench/lib.sh"
WORK="" PIDS=()

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

one_run() { # one_run <binary>: prints "<requests> <cpu us per request> <p50>" (runs in a subshell)
  WORK=$(mktemp -d /tmp/raftkv-ab.XXXXXX)
  PIDS=()
  trap stop_cluster EXIT INT TERM
  RAFTKV_BIN=$1 start_raftkv_cluster
  wrk -t2 -c16 -d2s -s "$ROOT/bench/wrk/raftkv-preload.lua" "$url" >/dev/null 2>&1 || true
  local pid t0=0 t1=0 requests
  for pid in "${PIDS[@]}"; do t0=$((t0 + $(ticks "$pid"))); done
  wrk -t"$threads" -c"$CONNS" -d"${DURATION_S}s" --latency -s "$ROOT/bench/wrk/raftkv-$OP.lua" "$url" >"$WORK/wrk.txt" 2>&1
  for pid in "${PIDS[@]}"; do t1=$((t1 + $(ticks "$pid"))); done
  requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
  [ -n "$requests" ] || { echo "wrk failed: $(cat "$WORK/wrk.txt")" >&2; exit 1; }
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.txt")
  stop_cluster
  # Clock ticks are 10 ms: ticks * 10,000 us / requests.
  echo "$requests $(python3 -c "print(round(($t1 - $t0) * 10000 / $requests, 1))") $p50"
}

stop_cluster() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  [ -z "$WORK" ] || rm -rf "$WORK"
}

results_a=() results_b=()
for round in $(seq 1 "$ROUNDS"); do
  a=$(one_run "$A")
  b=$(one_run "$B")
  results_a+=("$a") results_b+=("$b")
  echo "round $round: A $a | B $b   (requests, CPU us per request, p50)"
done

python3 - "$OP" "$CONNS" "$DURATION_S" "${#results_a[@]}" "${results_a[@]}" "${results_b[@]}" <<'EOF'
import statistics, sys
op, conns, duration_s, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
def ms(latency):  # wrk's "612.00us", "1.23ms", "2.01s"
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if latency.endswith(unit):
            return float(latency[: -len(unit)]) * scale
    raise ValueError(latency)
runs = [(float(r.split()[0]), float(r.split()[1]), ms(r.split()[2])) for r in sys.argv[5:]]
a, b = runs[:rounds], runs[rounds:]
def med(rs, i): return statistics.median(r[i] for r in rs)
ra, rb = med(a, 0) / duration_s, med(b, 0) / duration_s
ca, cb = med(a, 1), med(b, 1)
print(f"{op} c={conns}, median of {rounds} alternating runs:")
pa, pb = med(a, 2), med(b, 2)
print(f"  A: {ra:,.0f} req/s, {ca:.1f} us CPU per request, p50 {pa:.2f} ms")
print(f"  B: {rb:,.0f} req/s, {cb:.1f} us CPU per request, p50 {pb:.2f} ms")
print(f"  B / A: {rb / ra:.2f}x req/s, {cb / ca:.2f}x CPU per request, {pb / pa:.2f}x p50")
EOF
