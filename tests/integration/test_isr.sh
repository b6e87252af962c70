#!/usr/bin/env bash
# test_isr.sh - in-sync replicas and min-insync-replicas, with real
# processes: with --min-insync-replicas 3 on a 3-node cluster,
#   - writes succeed while every replica is in sync;
#   - once a node is killed and --max-lag-ms has passed, its shards' ISR
#     shrinks (isr-status shows 2 of 3 in sync, the leaders count the
#     shrink) and writes to them are refused with a reason naming
#     min-insync-replicas, while reads still work;
#   - when the node is back and caught up, the ISR expands and writes
#     succeed again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v jq >/dev/null 2>&1 || skip "jq not found (Debian package jq)"
is_basalt || skip "min-insync-replicas is Basalt's"

cluster_start 3 --heartbeat-ms 300 --max-lag-ms 1000 --min-insync-replicas 3

key() { printf '%sisr/%s' "$(shard_prefix "$1")" "$2"; }

assert_ok "a write with every replica in sync" ectl 1 put "$(key 1 a)" v1
isr_all() {
    "$BASALT" cluster isr-status -o json --endpoints "$(endpoint 1)" 2>/dev/null |
        jq -e "[.shards[] | select(.shard_id != 0)] | length > 0 and
               all(.[]; ([.replicas[] | select(.in_sync)] | length) == $1)" \
            >/dev/null
}
wait_until 10 "isr-status shows every data shard's 3 replicas in sync" isr_all 3

node_kill 3
log "node 3 killed; waiting for the ISR to shrink"
wait_until 20 "every data shard has 2 of 3 replicas in sync" isr_all 2
ECTL_TIMEOUT=10s assert_fails "a write with 2 of 3 in sync" ectl 1 put "$(key 1 b)" v2
assert_match 'min-insync-replicas' "$OUT" "the refusal names the setting"
got=$(ECTL_TIMEOUT=5s ectl 2 get --print-value-only "$(key 1 a)")
assert_eq v1 "$got" "reads still work"
shrinks=0
for i in 1 2; do
    v=$(metric "$i" basalt_isr_shrinks_total)
    shrinks=$((shrinks + ${v%.*}))
done
((shrinks > 0)) || fail "basalt_isr_shrinks_total is 0 on nodes 1 and 2"

node_start 3
wait_until 30 "writes succeed again once node 3 is back in sync" \
    ectl 1 put "$(key 1 c)" v3
assert_ok "a write through node 3" ectl 3 put "$(key 1 d)" v4
log "ok"
