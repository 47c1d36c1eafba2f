# Shared by bench/soak-rss.sh and bench/profile.sh: start a durable 3-node
# raftkv cluster on loopback (release build, OS-picked ports) and find its leader.
# The caller sets ROOT and WORK, keeps PIDS=() and kills them on exit.
# After start_raftkv_cluster: kv[i] (client ports), PIDS[i], leader (client port
# of the leader), leader_pid, url (the leader's client URL).
# RAFTKV_BIN=/path/to/raftkv profiles or soaks another build (e.g. an older one).

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_raftkv_cluster() { # RAFTKV_BIN=<binary> runs that one instead of building this tree
  local bin=${RAFTKV_BIN:-} raft=() peers="" i token
  if [ -z "$bin" ]; then
    (cd "$ROOT" && cargo build --release -q -p node)
    bin="$ROOT/target/release/raftkv"
  fi
  token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  kv=()
  for i in 0 1 2; do kv+=("$(free_port)"); raft+=("$(free_port)"); done
  for i in 0 1 2; do peers+="127.0.0.1:${raft[$i]},"; done
  for i in 0 1 2; do
    KVSTORE_PORT=${kv[$i]} RAFT_PORT=${raft[$i]} NODE_ID="n$((i + 1))" PEERS="${peers%,}" PEER_IDS=n1,n2,n3 \
      RAFT_CLUSTER_TOKEN="$token" RAFT_DATA_DIR="$WORK/raftkv" RUST_LOG=warn "$bin" serve >"$WORK/n$((i + 1)).log" 2>&1 &
    PIDS+=($!)
  done
  leader="" leader_pid=""
  for _ in $(seq 1 150); do
    for i in 0 1 2; do
      if curl -sf "http://127.0.0.1:${kv[$i]}/health" | grep -q '"state":"Leader"'; then
        leader=${kv[$i]} leader_pid=${PIDS[$i]}
      fi
    done
    [ -n "$leader_pid" ] && break
    sleep 0.2
  done
  [ -n "$leader_pid" ] || { echo "no raftkv leader within 30 s" >&2; exit 1; }
  url="http://127.0.0.1:$leader"
}
