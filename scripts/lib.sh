# Shared helpers for the raftkv scripts (sourced, not run).
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODES=${NODES:-3}
BASE_PORT=${BASE_PORT:-8080}
RAFT_OFFSET=1000
DATA_DIR=${DATA_DIR:-$ROOT/data}
LOG_DIR=${LOG_DIR:-$ROOT/tmp-test-logs}
RAFTKV_BIN=${RAFTKV_BIN:-$ROOT/target/release/raftkv}

ensure_binary() {
  if [ ! -x "$RAFTKV_BIN" ]; then
    echo "building raftkv (cargo build --release -p node) ..."
    (cd "$ROOT" && cargo build --release -p node -q)
  fi
}

ports() { local i; for ((i = 0; i < NODES; i++)); do echo $((BASE_PORT + i)); done; }

peers() {
  local list="" port
  for port in $(ports); do list+="http://127.0.0.1:$((port + RAFT_OFFSET)),"; done
  echo "${list%,}"
}

# json_field FIELD < json : the value of a top-level string/number field ("" if null).
json_field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" | sed 's/^null$//'; }

health() { curl -s -m 1 "http://127.0.0.1:$1/health"; }

pid_file() { echo "$LOG_DIR/node-$1.pid"; }

# cluster_token: $RAFT_CLUSTER_TOKEN if set, else the cluster's own random token,
# made on first use and kept (mode 600) in $DATA_DIR/cluster-token, so restarted
# nodes authenticate with the same one.
cluster_token() {
  if [ -n "${RAFT_CLUSTER_TOKEN:-}" ]; then echo "$RAFT_CLUSTER_TOKEN"; return; fi
  local file="$DATA_DIR/cluster-token"
  if [ ! -s "$file" ]; then
    mkdir -p "$DATA_DIR"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

# running_pid PORT: the pid of this cluster's node on PORT if it is alive ("" if not).
running_pid() {
  local pid
  pid=$(cat "$(pid_file "$1")" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q raftkv; then
    echo "$pid"
  fi
}

start_node() { # start_node PORT  (refuses a node that is running; fails if it dies at start)
  local port=$1 pid
  mkdir -p "$LOG_DIR" "$DATA_DIR"
  pid=$(running_pid "$port")
  if [ -n "$pid" ]; then
    echo "node-$port is already running (pid $pid); stop it first (scripts/run-cluster.sh stop)" >&2
    return 1
  fi
  KVSTORE_PORT=$port RAFT_PORT=$((port + RAFT_OFFSET)) NODE_ID="node-$port" \
    PEERS="$(peers)" RAFT_DATA_DIR="$DATA_DIR" RAFT_BIND=127.0.0.1 RAFT_CLUSTER_TOKEN="$(cluster_token)" \
    nohup "$RAFTKV_BIN" serve >>"$LOG_DIR/node-$port.log" 2>&1 &
  pid=$!
  disown "$pid" 2>/dev/null || true
  # It must still be alive once it answers (or after 3 s): a node that cannot
  # bind its port or refuses its data directory exits at once.
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    # Only this node's own answer counts: another process on the port is not it.
    [[ "$(health "$port")" == *"\"id\":\"node-$port\""* ]] && break
    sleep 0.05
  done
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "node-$port exited at start; last lines of $LOG_DIR/node-$port.log:" >&2
    tail -n 5 "$LOG_DIR/node-$port.log" >&2
    return 1
  fi
  echo "$pid" >"$(pid_file "$port")"
  echo "started node-$port (pid $pid), client http://127.0.0.1:$port, log $LOG_DIR/node-$port.log"
}

stop_node() { # stop_node PORT [SIGNAL]
  local port=$1 signal=${2:-TERM} pid
  pid=$(cat "$(pid_file "$port")" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "node-$port (pid $pid) did not stop within 10 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$(pid_file "$port")"
}

# leader_port: the client port of the node that says it leads ("" if none).
leader_port() {
  local port
  for port in $(ports); do
    if health "$port" | grep -q '"state":"Leader"'; then echo "$port"; return; fi
  done
}

has_leader() { [ -n "$(leader_port)" ]; }

# wait_for SECONDS COMMAND... : poll until COMMAND succeeds or time runs out.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
