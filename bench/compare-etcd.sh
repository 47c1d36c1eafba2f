#!/usr/bin/env bash
# Side-by-side load test: a 3-node raftkv cluster and a 3-node etcd cluster on
# loopback, both durable (fsync on), driven by the same wrk load shape: 256-byte
# values over 10,000 keys, durable writes and linearizable reads against the
# leader, at several connection counts, each point REPS times. Prints one table.
#
#   bench/compare-etcd.sh                       # full run
#   DURATION_S=5 CONNS="1 64" REPS=1 bench/compare-etcd.sh   # quick look
#   SYSTEMS=etcd bench/compare-etcd.sh          # one system only
#   RAFTKV_BEFORE_BIN=/tmp/raftkv-old SYSTEMS="before raftkv etcd" bench/compare-etcd.sh
#   SYSTEMS="raftkv raftkv-tls etcd etcd-tls" bench/compare-etcd.sh   # TLS on and off, both systems
#                                               # also an older raftkv binary, same run
#   OPS="put get range100 txn watch" bench/compare-etcd.sh   # the KV v2 rows too (default: put get):
#       range100: a linearizable range of 100 keys by prefix; txn: one comparison and one
#       put; watch: WATCHERS (100) streams on one prefix, events delivered/s and the
#       put-to-delivery latency (bench/watch-bench.py; one row per system, conns = watchers)
#
# Installs etcd-server, wrk and fio with apt if they are missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION_S=${DURATION_S:-10}
CONNS=${CONNS:-"1 16 64 256"}
REPS=${REPS:-2}
SYSTEMS=${SYSTEMS:-"raftkv etcd"}
OPS=${OPS:-"put get"}
WATCHERS=${WATCHERS:-100}
WRK_DIR="$ROOT/bench/wrk"
WORK=$(mktemp -d /tmp/raftkv-bench.XXXXXX)
RESULTS="$WORK/results.tsv"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

need() {
  local missing=()
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v fio >/dev/null || missing+=(fio)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # wait_for <description> <timeout_s> <command...>
  local what=$1 timeout_s=$2
  shift 2
  local deadline=$((SECONDS + timeout_s))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# ---- raftkv ---------------------------------------------------------------

RAFTKV_LEADER=""
start_raftkv() { # start_raftkv [binary]
  local bin=${1:-}
  if [ -z "$bin" ]; then
    (cd "$ROOT" && cargo build --release -q -p node)
    bin="$ROOT/target/release/raftkv"
  fi
  local kv_ports=() raft_ports=() peers="" ids="n1,n2,n3" token
  token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  for i in 1 2 3; do
    kv_ports+=("$(free_port)")
    raft_ports+=("$(free_port)")
  done
  local tls_env=()
  if [ "$SCHEME" = https ]; then
    tls_env=(RAFT_TLS_CERT="$CERTS/node.crt" RAFT_TLS_KEY="$CERTS/node.key" RAFT_TLS_CA="$CERTS/ca.crt")
  fi
  for i in 0 1 2; do peers+="$SCHEME://127.0.0.1:${raft_ports[$i]},"; done
  peers=${peers%,}
  rm -rf "$WORK/raftkv"
  for i in 0 1 2; do
    env "${tls_env[@]}" KVSTORE_PORT=${kv_ports[$i]} RAFT_PORT=${raft_ports[$i]} NODE_ID="n$((i + 1))" \
      PEERS="$peers" PEER_IDS="$ids" RAFT_CLUSTER_TOKEN="$token" RAFT_DATA_DIR="$WORK/raftkv" RUST_LOG=warn \
      "$bin" serve >"$WORK/raftkv-n$((i + 1)).log" 2>&1 &
    PIDS+=($!)
  done
  RAFTKV_PORTS=("${kv_ports[@]}")
  wait_for "a raftkv leader" 30 raftkv_find_leader
  raftkv_find_leader
  echo "raftkv leader: $RAFTKV_LEADER"
}

raftkv_find_leader() {
  for port in "${RAFTKV_PORTS[@]}"; do
    if curl -sf --cacert "$CERTS/ca.crt" "$SCHEME://127.0.0.1:$port/health" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["state"].lower()=="leader" else 1)'; then
      RAFTKV_LEADER="$SCHEME://127.0.0.1:$port"
      return 0
    fi
  done
  return 1
}

# ---- etcd -----------------------------------------------------------------

ETCD_LEADER=""
start_etcd() {
  local client_ports=() peer_ports=() cluster=""
  for i in 1 2 3; do
    client_ports+=("$(free_port)")
    peer_ports+=("$(free_port)")
  done
  local tls_args=()
  if [ "$SCHEME" = https ]; then
    # Client port: server TLS only (as raftkv's); peer port: mutual TLS (as raftkv's Raft port).
    tls_args=(--cert-file "$CERTS/node.crt" --key-file "$CERTS/node.key"
      --peer-cert-file "$CERTS/node.crt" --peer-key-file "$CERTS/node.key" --peer-trusted-ca-file "$CERTS/ca.crt"
      --peer-client-cert-auth)
  fi
  for i in 0 1 2; do cluster+="e$((i + 1))=$SCHEME://127.0.0.1:${peer_ports[$i]},"; done
  cluster=${cluster%,}
  rm -rf "$WORK/etcd"
  for i in 0 1 2; do
    etcd --name "e$((i + 1))" --data-dir "$WORK/etcd/e$((i + 1))" "${tls_args[@]}" \
      --listen-client-urls "$SCHEME://127.0.0.1:${client_ports[$i]}" \
      --advertise-client-urls "$SCHEME://127.0.0.1:${client_ports[$i]}" \
      --listen-peer-urls "$SCHEME://127.0.0.1:${peer_ports[$i]}" \
      --initial-advertise-peer-urls "$SCHEME://127.0.0.1:${peer_ports[$i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token bench \
      --logger zap --log-level error >"$WORK/etcd-e$((i + 1)).log" 2>&1 &
    PIDS+=($!)
  done
  ETCD_PORTS=("${client_ports[@]}")
  wait_for "an etcd leader" 30 etcd_find_leader
  etcd_find_leader
  echo "etcd leader: $ETCD_LEADER"
}

etcd_find_leader() {
  for port in "${ETCD_PORTS[@]}"; do
    if curl -sf --cacert "$CERTS/ca.crt" -X POST "$SCHEME://127.0.0.1:$port/v3/maintenance/status" -d '{}' |
      python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["header"]["member_id"]==s["leader"] else 1)'; then
      ETCD_LEADER="$SCHEME://127.0.0.1:$port"
      return 0
    fi
  done
  return 1
}

# ---- load -----------------------------------------------------------------

# CPU time (user + system, clock ticks) the running cluster's processes used so far.
cluster_cpu_ticks() {
  local total=0 pid
  for pid in "${PIDS[@]}"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# run_wrk <system> <op> <conns> <rep> <url> <script>: appends one line to $RESULTS.
# Besides throughput and latency it records the cluster's CPU time per request
# (all three servers, user + system): a cost that, unlike throughput, a busy
# machine hardly changes.
run_wrk() {
  local system=$1 op=$2 conns=$3 rep=$4 url=$5 script=$6
  local threads=$((conns < 2 ? conns : 2))
  local out="$WORK/wrk-$system-$op-$conns-$rep.txt"
  local ticks_before ticks_after
  ticks_before=$(cluster_cpu_ticks)
  wrk -t"$threads" -c"$conns" -d"${DURATION_S}s" --timeout 5s --latency -s "$WRK_DIR/$script" "$url" >"$out" 2>&1 || true
  ticks_after=$(cluster_cpu_ticks)
  python3 - "$out" "$system" "$op" "$conns" "$rep" "$((ticks_after - ticks_before))" "$(getconf CLK_TCK)" >>"$RESULTS" <<'PY'
import re, sys
path, system, op, conns, rep, ticks, tck = sys.argv[1:]
text = open(path).read()
def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p50 = re.search(r"\n\s+50%\s+([\d.]+)(us|ms|s)", text)
p99 = re.search(r"\n\s+99%\s+([\d.]+)(us|ms|s)", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
requests = re.search(r"(\d+) requests in", text)
cpu_us = int(ticks) / int(tck) * 1e6 / int(requests.group(1)) if requests and int(requests.group(1)) else float("nan")
print("\t".join([system, op, conns, rep,
                 rps.group(1) if rps else "0",
                 f"{ms(*p50.groups()):.3f}" if p50 else "nan",
                 f"{ms(*p99.groups()):.3f}" if p99 else "nan",
                 str(errors), f"{cpu_us:.1f}"]))
PY
  tail -n 1 "$RESULTS" | awk -F'\t' '{printf "  %-7s %-5s c=%-4s rep %s: %9.0f req/s  p50 %7.3f ms  p99 %8.3f ms  errors %s  cpu %s us/req\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
}

bench_system() { # bench_system <system> <leader url> [script prefix]
  local system=$1 leader=$2 scripts=${3:-$1}
  echo "== $system: preload 10,000 keys"
  wrk -t2 -c16 -d3s -s "$WRK_DIR/$scripts-preload.lua" "$leader" >/dev/null 2>&1 || true
  for op in $OPS; do
    if [ "$op" = watch ]; then
      for rep in $(seq 1 "$REPS"); do
        python3 "$ROOT/bench/watch-bench.py" "$scripts" "$leader" "$WATCHERS" "$DURATION_S" "$rep" |
          sed "s/^$scripts\t/$system\t/" >>"$RESULTS"
        tail -n 1 "$RESULTS" | awk -F'\t' '{printf "  %-7s %-5s w=%-4s rep %s: %9.0f events/s  p50 %7.3f ms  p99 %8.3f ms  errors %s\n", $1, $2, $3, $4, $5, $6, $7, $8}'
      done
      continue
    fi
    for conns in $CONNS; do
      for rep in $(seq 1 "$REPS"); do
        run_wrk "$system" "$op" "$conns" "$rep" "$leader" "$scripts-$op.lua"
      done
    done
  done
}

# The disk's fdatasync latency three ways: appending to a file (the size changes,
# so the journal commits too), overwriting preallocated blocks (what the raftkv WAL
# does), and three overwriting writers at once (three nodes sharing one disk, as
# here). The last one is the physical floor under a replicated write.
fdatasync_rate() {
  local mode args
  for mode in append overwrite overwrite-x3; do
    case $mode in
      append) args=() ;;
      overwrite) args=(--overwrite=1) ;;
      overwrite-x3) args=(--overwrite=1 --numjobs=3 --group_reporting) ;;
    esac
    fio --name="fdatasync-$mode" --directory="$WORK" --rw=write --bs=4k --size=4m --fdatasync=1 \
      --ioengine=sync "${args[@]}" --output-format=json 2>/dev/null >"$WORK/fio-$mode.json" || true
    python3 - "$WORK/fio-$mode.json" "$mode" <<'PY'
import json, sys
path, mode = sys.argv[1:]
try:
    job = json.load(open(path))["jobs"][0]
    sync = job["sync"]["lat_ns"]
    p50 = sync["percentile"]["50.000000"] / 1e6
    p99 = sync["percentile"]["99.000000"] / 1e6
except (OSError, ValueError, KeyError, IndexError):
    print(f"disk: fio ({mode}) failed")
    sys.exit(0)
print(f"disk: fdatasync {mode:<12} p50 {p50:.3f} ms, p99 {p99:.3f} ms (fio, 4 KiB writes)")
PY
    rm -f "$WORK"/fdatasync-*
  done
}

report() {
  python3 - "$RESULTS" <<'PY'
import sys, statistics
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    fields = line.rstrip("\n").split("\t")
    system, op, conns, rep, rps, p50, p99, errors = fields[:8]
    cpu_us = fields[8] if len(fields) > 8 else "nan"  # (the watch rows have no CPU column)
    rows[(op, int(conns), system)].append((float(rps), float(p50), float(p99), int(errors), float(cpu_us)))
def summary(runs):
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            statistics.median(r[2] for r in runs), sum(r[3] for r in runs), len(runs),
            statistics.median(r[4] for r in runs))
names = {"put": "write", "get": "lin. read", "range100": "range 100 keys", "txn": "txn 1 cmp + 1 put",
         "watch": "watch events/s (conns = watchers)"}
ops = [op for op in names if any(k[0] == op for k in rows)]
print()
print("| op | conns | raftkv req/s | raftkv p50 ms | raftkv p99 ms | raftkv errors | etcd req/s | etcd p50 ms | etcd p99 ms | etcd errors | throughput ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for op in ops:
    for conns in sorted({k[1] for k in rows if k[0] == op}):
        cells = [names[op], str(conns)]
        rps = {}
        for system in ("raftkv", "etcd"):
            runs = rows.get((op, conns, system))
            if runs:
                r, p50, p99, errors, n, _ = summary(runs)
                rps[system] = r
                cells += [f"{r:,.0f}", f"{p50:.2f}", f"{p99:.2f}", str(errors)]
            else:
                cells += ["-", "-", "-", "-"]
        ratio = rps.get("raftkv", 0) / rps["etcd"] if rps.get("etcd") else float("nan")
        cells.append(f"{ratio:.2f}x")
        print("| " + " | ".join(cells) + " |")
print()
print("medians of the repetitions; ratio = raftkv / etcd throughput")
tls_systems = [name for name in ("raftkv", "raftkv-tls", "etcd", "etcd-tls") if any(k[2] == name for k in rows)]
if "raftkv-tls" in tls_systems or "etcd-tls" in tls_systems:
    print()
    print("TLS on and off, same run (req/s, p50 ms):")
    print("| op | conns | " + " | ".join(tls_systems) + " |")
    print("|---|---:|" + "---:|" * len(tls_systems))
    for op in ("put", "get"):
        for conns in sorted({k[1] for k in rows if k[0] == op}):
            cells = []
            for name in tls_systems:
                runs = rows.get((op, conns, name))
                cells.append(f"{summary(runs)[0]:,.0f} ({summary(runs)[1]:.2f})" if runs else "-")
            print(f"| {names[op]} | {conns} | " + " | ".join(cells) + " |")
if any(k[2] == "before" for k in rows):
    print()
    print("raftkv before (RAFTKV_BEFORE_BIN) and after (this tree), same run:")
    print()
    print("| op | conns | before req/s | before p50 ms | before p99 ms | before CPU us/req | after req/s | after p50 ms | after p99 ms | after CPU us/req | after / before |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for op in ("put", "get"):
        for conns in sorted({k[1] for k in rows if k[0] == op}):
            b, a = rows.get((op, conns, "before")), rows.get((op, conns, "raftkv"))
            if not (a and b):
                continue
            b, a = summary(b), summary(a)
            print(f"| {names[op]} | {conns} | {b[0]:,.0f} | {b[1]:.2f} | {b[2]:.2f} | {b[5]:.0f} | {a[0]:,.0f} | {a[1]:.2f} | {a[2]:.2f} | {a[5]:.0f} | {a[0] / b[0]:.2f}x |")
PY
}

# TLS for both systems (SYSTEMS="raftkv raftkv-tls etcd etcd-tls"): one throw-away CA and one
# certificate for 127.0.0.1, made by the node crate's gen-certs example (rcgen, no OpenSSL).
SCHEME=http
CERTS="$WORK/certs"
tls_certs() {
  [ -f "$CERTS/node.crt" ] && return 0
  (cd "$ROOT" && cargo run -q --release -p node --example gen-certs -- "$CERTS" 127.0.0.1 localhost n1 n2 n3 e1 e2 e3 >/dev/null)
}

need
echo "machine: $(nproc) cores; load: wrk, ${DURATION_S}s per point, ${REPS} reps, conns: $CONNS"
fdatasync_rate
: >"$RESULTS"
for system in $SYSTEMS; do
  case $system in
    raftkv) start_raftkv && bench_system raftkv "$RAFTKV_LEADER" ;;
    before) start_raftkv "${RAFTKV_BEFORE_BIN:?set RAFTKV_BEFORE_BIN to an older raftkv binary}" &&
      bench_system before "$RAFTKV_LEADER" raftkv ;;
    etcd) start_etcd && bench_system etcd "$ETCD_LEADER" ;;
    raftkv-tls) tls_certs && SCHEME=https start_raftkv && SCHEME=https bench_system raftkv-tls "$RAFTKV_LEADER" raftkv ;;
    etcd-tls) tls_certs && SCHEME=https start_etcd && SCHEME=https bench_system etcd-tls "$ETCD_LEADER" etcd ;;
  esac
  SCHEME=http
  # Stop this system before measuring the next so they never share the CPU.
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
done
report
