#!/usr/bin/env bash
# test_placement.sh - the placement driver at work (issue 5), with real
# processes on loopback:
#
#   A. join: 3 nodes, 16 shards, ~50 MB loaded; a 4th node starts with
#      --join and, within JOIN_BALANCE_S (60), every up node holds replica
#      and leader counts within +-1 of the mean, while writers run through
#      the first three nodes: no write fails, none is lost;
#   B. down: node 2 is killed for longer than --down-after-ms; its
#      replicas are re-created on the others (every shard back to 3
#      replicas, none on node 2); restarted, it collects its stale ones;
#   C. decommission: `cluster remove-node --id 3 --wait` under writes ends
#      with node 3 removed and holding nothing, every shard with 3
#      replicas, no write failed or lost;
#   D. split: writing past --split-size into one shard splits it; both
#      halves serve through every node, and a scan across the boundary
#      returns every key;
#   E. dry run: with the scheduler paused, a 5th node joins (a skewed
#      cluster); `rebalance --dry-run` prints moves to it and changes
#      nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v jq >/dev/null 2>&1 || skip "jq not found (Debian package jq)"
is_basalt || skip "placement is Basalt's"

JOIN_BALANCE_S=${JOIN_BALANCE_S:-60}
LOAD_KEYS=${LOAD_KEYS:-50000} # x 1000-byte values: ~50 MB
NWRITERS=3

# ------------------------------------------------------------ helpers

status_js() { bcluster "${1:-1}" status -o json 2>/dev/null; }

# balanced N: N nodes are up, and their replica and leader counts (data
# shards) are within 1 of the mean; every data shard has 3 voters and a
# leader.
balanced() {
    local js
    js=$(status_js "$(live_nodes | head -1)") || return 1
    jq -e --argjson want "$1" '
      [.nodes[] | select(.state == "up") | .id] as $up |
      [.shards[] | select(.id != 0)] as $ds |
      [$ds[].replicas[].node_id] as $r |
      [$ds[].leader_node] as $l |
      ($up | map(. as $n | [$r[] | select(. == $n)] | length)) as $rc |
      ($up | map(. as $n | [$l[] | select(. == $n)] | length)) as $lc |
      (($rc | add) / ($up | length)) as $rm |
      (($lc | add) / ($up | length)) as $lm |
      ($up | length) == $want and
      all($ds[]; (.replicas | length) == 3 and
                 all(.replicas[]; .learner == false) and .leader_node != 0) and
      all($rc[]; . - $rm <= 1 and $rm - . <= 1) and
      all($lc[]; . - $lm <= 1 and $lm - . <= 1)' <<<"$js" >/dev/null
}

# counts: "node replicas leaders" per node, for the log.
counts() {
    status_js "$(live_nodes | head -1)" | jq -r '
      [.shards[] | select(.id != 0)] as $ds |
      .nodes[] | .id as $n |
      "node \($n) \(.state): \([$ds[].replicas[] | select(.node_id == $n)] | length) replicas, \([$ds[] | select(.leader_node == $n)] | length) leaders"'
}

# node_state_is N STATE: placement says node N is in STATE.
node_state_is() {
    status_js 1 | jq -e ".nodes[] | select(.id == $1) | .state == \"$2\"" \
        >/dev/null
}

# split_apart K1 K2: keys K1 and K2 are in different shards.
shard_of() { bcluster 1 partition-info --key "$1" -o json | jq -r .id; }
split_apart() { [[ $(shard_of "$1") != "$(shard_of "$2")" ]]; }

# replicas_on N: replicas (any shard) placement lists on node N.
replicas_on() {
    status_js "$(live_nodes | head -1)" |
        jq -r "[.shards[].replicas[] | select(.node_id == $1)] | length"
}

# three_replicas_without N: every shard (placement's included) has 3
# voters, none on node N.
three_replicas_without() {
    status_js "$(live_nodes | head -1)" | jq -e "
      all(.shards[]; (.replicas | length) == 3 and
                     all(.replicas[]; .node_id != $1 and .learner == false))" \
        >/dev/null
}

# Writers: etcdctl puts of unique keys through the given endpoints; a
# write counts when etcdctl exits 0, a failure is recorded and fails the
# test at the end of the phase.
wkey() { printf 'w%d/%06d' "$1" "$2"; }
writer() {
    local k=$1 eps=$2 n=0
    while [[ ! -e $WORK/stop ]]; do
        if ECTL_TIMEOUT=5s ectl_eps "$eps" put "$(wkey "$k" "$n")" "v$n" \
            >/dev/null 2>>"$WORK/w.err.$k"; then
            echo "$n" >>"$WORK/w.ack.$k"
        else
            echo "$n $(now_ms)" >>"$WORK/w.fail.$k"
        fi
        n=$((n + 1))
        sleep 0.05
    done
}
declare -a WPID=()
writers_start() {
    local eps=$1 k
    rm -f "$WORK/stop"
    for ((k = 0; k < NWRITERS; k++)); do
        writer "$k" "$eps" &
        WPID[k]=$!
    done
}
writers_stop() {
    local k
    touch "$WORK/stop"
    for ((k = 0; k < NWRITERS; k++)); do wait "${WPID[k]}" 2>/dev/null; done
}
# writers_check I WHAT [ALLOW_FAIL]: no failed write so far (unless
# ALLOW_FAIL: a kill -9 leaves the outcome of the writes in flight on the
# killed node unknown, and etcdctl gives up on them), every acknowledged
# one read back through node I.
writers_check() {
    local i=$1 what=$2 allow_fail=${3:-} k n nack have
    for ((k = 0; k < NWRITERS; k++)); do
        if [[ -s $WORK/w.fail.$k && -z $allow_fail ]]; then
            fail "$what: writer $k saw $(wc -l <"$WORK/w.fail.$k") failed writes; first error: $(head -3 "$WORK/w.err.$k")"
        fi
        have=$(ECTL_TIMEOUT=20s ectl "$i" get --prefix --keys-only "w$k/" |
            grep -c . || true)
        nack=$(sort -u "$WORK/w.ack.$k" 2>/dev/null | wc -l)
        ((nack > 0)) || fail "$what: writer $k acknowledged nothing"
        # Every acknowledged key is there (a write whose etcdctl was
        # killed by the phase's end may be there without an ack).
        while read -r n; do
            ECTL_TIMEOUT=5s ectl "$i" get --print-value-only "$(wkey "$k" "$n")" |
                grep -qx "v$n" || fail "$what: writer $k's acknowledged key $n is lost"
        done < <(sort -un "$WORK/w.ack.$k" | awk 'NR % 25 == 1')
        ((have >= nack)) || fail "$what: writer $k: $nack acknowledged, $have keys read back"
        log "$what: writer $k: $nack writes acknowledged, none failed, all read back"
    done
}

# ------------------------------------------------------------------- A

cluster_start 3 --initial-shards 16 --heartbeat-ms 300 --down-after-ms 3000 \
    --split-size 8M
log "loading $LOAD_KEYS keys of 1000 bytes"
assert_ok "bench load" "$BASALT" bench put --endpoints "$(endpoints 1 2 3)" \
    --clients 16 --conns 3 --total "$LOAD_KEYS" --val-size 1000 \
    --key-space "$LOAD_KEYS" --sequential
writers_start "$(endpoint 1),$(endpoint 2),$(endpoint 3)"
sleep 1
t0=$(now_ms)
node_add
log "node $ADDED joined"
wait_until "$JOIN_BALANCE_S" "4 up nodes with replica and leader counts within 1 of the mean after the join" balanced 4
log "balanced $(($(now_ms) - t0)) ms after the join: $(counts | tr '\n' ';')"
assert_match '[1-9]' "$(replicas_on "$ADDED")" "the joined node holds replicas"
writers_stop
writers_check 4 "join"

# ------------------------------------------------------------------- B

rm -f "$WORK"/w.*
writers_start "$(endpoint 1),$(endpoint 3),$(endpoint 4)"
node_kill 2
wait_until 60 "shards re-replicated off the dead node 2" three_replicas_without 2
log "node 2's replicas re-created elsewhere: $(counts | tr '\n' ';')"
node_start 2
wait_until 30 "node 2 collects its stale replicas" \
    grep -q "collecting stale replica" "${LOG[2]}"
writers_stop
writers_check 1 "down" allow-fail

# ------------------------------------------------------------------- C

wait_until 30 "node 2 is up again" node_state_is 2 up
rm -f "$WORK"/w.*
writers_start "$(endpoint 1),$(endpoint 2),$(endpoint 4)"
log "decommissioning node 3 ($(replicas_on 3) replicas)"
assert_ok "remove-node --id 3 --wait" bcluster 1 remove-node --id 3 --wait --timeout 120
log "$(tail -3 <<<"$OUT" | tr '\n' ';')"
assert_eq removed "$(status_js 1 | jq -r '.nodes[] | select(.id == 3) | .state')" "node 3's state"
assert_eq 0 "$(replicas_on 3)" "replicas left on the decommissioned node"
wait_until 30 "every shard has 3 replicas without node 3" three_replicas_without 3
writers_stop
writers_check 1 "decommission"

# ------------------------------------------------------------------- D

before=$(shard_of s/000)
log "writing ~10 MB into shard $before"
big=$(head -c 100000 /dev/zero | tr '\0' x) # under one argument's limit
for ((n = 0; n < 100; n++)); do
    ECTL_TIMEOUT=10s ectl 1 put "$(printf 's/%03d' "$n")" "$big" >/dev/null ||
        fail "put s/$n"
done
wait_until 60 "shard $before splits" split_apart s/000 s/099
left=$(shard_of s/000)
right=$(shard_of s/099)
log "split: s/000 in shard $left, s/099 in shard $right"
for i in $(live_nodes); do
    got=$(ECTL_TIMEOUT=10s ectl "$i" get --prefix --keys-only s/ | grep -c . || true)
    assert_eq 100 "$got" "scan across the split boundary through node $i"
    for n in 000 049 050 099; do
        assert_eq 100000 "$(ECTL_TIMEOUT=5s ectl "$i" get --print-value-only "s/$n" | tr -d '\n' | wc -c)" \
            "s/$n through node $i"
    done
done
assert_ok "a put in each half" ectl 2 put s/000 after
assert_ok "a put in each half" ectl 4 put s/099 after

# ------------------------------------------------------------------- E

assert_ok "scheduler pause" bcluster 1 scheduler pause
node_add
wait_until 30 "node $ADDED registers" node_state_is "$ADDED" up
layout() { status_js 1 | jq -c '[.shards[] | {id, r: [.replicas[].node_id] | sort}]'; }
before=$(layout)
assert_ok "rebalance --dry-run" bcluster 1 rebalance --dry-run -o json
plan=$OUT
assert_match "\"to_node\":[[:space:]]*$ADDED" "$plan" "the dry-run plan moves replicas to the new node"
bcluster 1 rebalance --dry-run >"$WORK/plan.txt" || fail "rebalance --dry-run (table)"
log "dry-run plan: $(head -5 "$WORK/plan.txt" | tr '\n' ';')"
sleep 3
assert_eq "$before" "$(layout)" "replicas after a dry run"
assert_eq 0 "$(replicas_on "$ADDED")" "replicas on the new node after a dry run"
assert_ok "scheduler resume" bcluster 1 scheduler resume

log "ok"
