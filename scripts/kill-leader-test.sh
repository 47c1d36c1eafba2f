#!/usr/bin/env bash
# Failover check on a fresh local 3-node cluster: elect a leader, write keys,
# kill -9 the leader, wait for a new leader, verify every write, restart the old
# leader and verify it rejoins as a follower with all the data. Exit 0 = PASS.
#
#   scripts/kill-leader-test.sh
#
# Uses its own ports (BASE_PORT, default 18080) and a temporary data directory;
# stops every node it started, also on failure.
set -euo pipefail
export BASE_PORT=${BASE_PORT:-18080}
WORK=$(mktemp -d /tmp/raftkv-kill-leader.XXXXXX)
export DATA_DIR=$WORK/data LOG_DIR=$WORK/logs
source "$(dirname "$0")/lib.sh"

cleanup() {
  for port in $(ports); do stop_node "$port" KILL; done
  if [ "${PASSED:-0}" = 1 ]; then rm -rf "$WORK"; else echo "logs kept in $LOG_DIR"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

ensure_binary
step "starting 3 nodes on ports $(ports | tr '\n' ' ')"
for port in $(ports); do start_node "$port" >/dev/null; done
wait_for 20 has_leader || fail "no leader elected"
old=$(leader_port)
step "A1 leader elected: node-$old"

follower=$(ports | grep -v "^$old$" | head -1)
code=$(curl -s -o "$WORK/409.json" -w '%{http_code}' -X PUT "http://127.0.0.1:$follower/set" \
  -H 'Content-Type: application/json' -d '{"key":"probe","value":"x"}')
[ "$code" = 409 ] || fail "write on follower node-$follower returned $code, expected 409"
grep -q "\"leaderId\":\"node-$old\"" "$WORK/409.json" || fail "409 without the leader hint: $(cat "$WORK/409.json")"
step "B1 follower answers 409 with leaderId=node-$old"

for i in $(seq 1 20); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$old/set" \
    -H 'Content-Type: application/json' -d "{\"key\":\"k$i\",\"value\":\"v$i\"}")
  [ "$code" = 200 ] || fail "write k$i on the leader returned $code"
done
step "B2 20 writes committed on the leader"

stop_node "$old" KILL
step "G1 killed the leader node-$old with SIGKILL"
new_leader() { local p; p=$(leader_port); [ -n "$p" ] && [ "$p" != "$old" ]; }
wait_for 20 new_leader || fail "no new leader after killing node-$old"
new=$(leader_port)
step "G1 new leader: node-$new"

for i in $(seq 1 20); do
  value=$(curl -s "http://127.0.0.1:$new/get?key=k$i" | json_field value)
  [ "$value" = "v$i" ] || fail "k$i reads '$value' on the new leader, expected v$i"
done
step "C1 all 20 acknowledged writes readable on the new leader"
curl -s -X PUT "http://127.0.0.1:$new/set" -d '{"key":"after","value":"failover"}' | grep -q '"ok":true' \
  || fail "write on the new leader failed"

start_node "$old" >/dev/null
rejoined() {
  local body; body=$(health "$old")
  [ "$(json_field state <<<"$body")" = Follower ] && [ "$(json_field leaderId <<<"$body")" = "node-$new" ] \
    && [ "$(curl -s "http://127.0.0.1:$old/get?key=after&consistency=stale" | json_field value)" = failover ]
}
wait_for 20 rejoined || fail "old leader node-$old did not rejoin as a follower with the new data"
step "P2 old leader node-$old rejoined as a follower of node-$new and caught up"
PASSED=1
echo "PASS"
