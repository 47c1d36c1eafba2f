#!/usr/bin/env bash
# Print every node's role, term and leader once a second (Ctrl-C to stop).
#
#   scripts/watch-leader.sh           # watch
#   scripts/watch-leader.sh --once    # one table
#
# Environment: NODES (3), BASE_PORT (8080), INTERVAL_S (1).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

table() {
  printf '%s\n' "$(date +%H:%M:%S)"
  printf '  %-10s %-10s %5s %-10s %8s %8s\n' NODE STATE TERM LEADER COMMIT HB_AGO
  local port body
  for port in $(ports); do
    body=$(health "$port")
    if [ -z "$body" ]; then
      printf '  %-10s %-10s\n' "node-$port" "down"
      continue
    fi
    printf '  %-10s %-10s %5s %-10s %8s %8s\n' "node-$port" \
      "$(json_field state <<<"$body")" "$(json_field term <<<"$body")" \
      "$(json_field leaderId <<<"$body")" "$(json_field commitIndex <<<"$body")" \
      "$(json_field lastHeartbeatAgoMs <<<"$body")"
  done
}

if [ "${1:-}" = "--once" ]; then table; exit 0; fi
while true; do
  clear 2>/dev/null || true
  table
  sleep "${INTERVAL_S:-1}"
done
