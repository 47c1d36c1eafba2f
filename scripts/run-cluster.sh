#!/usr/bin/env bash
# Start, stop or inspect a local raftkv cluster of separate background processes
# (unlike `raftkv cluster`, each node can be killed and restarted on its own).
#
#   scripts/run-cluster.sh start            # 3 nodes: client 8080-8082, raft 9080-9082
#   scripts/run-cluster.sh status
#   scripts/run-cluster.sh kill 8081        # kill -9 one node
#   scripts/run-cluster.sh start-node 8081  # (re)start one node with its data
#   scripts/run-cluster.sh stop             # SIGTERM all (a leader hands over first)
#   scripts/run-cluster.sh clean            # stop and delete data and logs
#
# Environment: NODES (3), BASE_PORT (8080), DATA_DIR (./data), LOG_DIR
# (./tmp-test-logs), RAFTKV_BIN (target/release/raftkv; built if missing).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command=${1:-start}
case "$command" in
  start)
    ensure_binary
    for port in $(ports); do
      pid=$(running_pid "$port")
      if [ -n "$pid" ]; then
        echo "the cluster is already running (node-$port, pid $pid); use status, or stop it first" >&2
        exit 1
      fi
    done
    failed=0
    for port in $(ports); do start_node "$port" || failed=1; done
    [ "$failed" = 0 ] || { echo "some nodes did not start; see $LOG_DIR" >&2; exit 1; }
    if wait_for 15 has_leader; then
      echo "leader: node-$(leader_port)"
    else
      echo "no leader yet; see $LOG_DIR" >&2
    fi
    ;;
  start-node) ensure_binary; start_node "${2:?port}" || exit 1 ;;
  kill) stop_node "${2:?port}" KILL; echo "killed node-$2 (SIGKILL)" ;;
  stop)
    stopped=0
    for port in $(ports); do
      if [ -f "$(pid_file "$port")" ]; then stop_node "$port" TERM; echo "stopped node-$port"; stopped=1; fi
    done
    [ "$stopped" = 1 ] || echo "no node of this cluster is running (no pid files in $LOG_DIR)"
    ;;
  status) "$(dirname "$0")/watch-leader.sh" --once ;;
  clean)
    for port in $(ports); do stop_node "$port" TERM; done
    rm -rf "$DATA_DIR" "$LOG_DIR"
    echo "removed $DATA_DIR and $LOG_DIR"
    ;;
  *) echo "usage: $0 start|start-node PORT|kill PORT|stop|status|clean" >&2; exit 2 ;;
esac
