#!/usr/bin/env bash
# test_cluster_cli2.sh - the `basalt cluster` commands of issue 5 against
# a real cluster: three nodes started with --initial-shards 8 and a rack
# label each (rack=r1..r3), then a fourth that joins with --join.
#
# Checks:
#   1. usage errors of the new commands and of `basalt start`'s new flags
#      exit 2 naming the flag (no cluster needed: they run first);
#   2. list-nodes shows state, rack and disk use; status --detailed adds
#      the ISR of every shard (3/3, min-insync 2) and the scheduler;
#   3. isr-status: every shard, one shard, an unknown shard; JSON fields;
#   4. scheduler show reports the settings the nodes were started with;
#      pause and resume flip it (table, JSON, YAML);
#   5. split at a key: both ranges printed, keys on both sides still
#      served, partition-info finds the new shard; split without a key in
#      JSON; refusals are one line with the server's reason (exit 1);
#   6. add-node prints the `basalt start --join` line and reports node 4
#      once it has joined (the scheduler is paused meanwhile, so that
#      nothing moves on its own);
#   7. rebalance --dry-run plans moves onto the new node without starting
#      them (a paused scheduler pauses the automatic scheduling only); rebalance --max-moves starts them and waits until done; the
#      new node then holds replicas;
#   8. remove-node --wait decommissions the new node: one line per change
#      until "removed"; with three nodes left a removal is refused; the
#      data written along the way is all still there.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

is_basalt || skip "basalt cluster commands need a Basalt cluster"
command -v jq >/dev/null 2>&1 || skip "jq not found (Debian package jq)"

# assert_rc EXPECTED WHAT CMD...: CMD exits with status EXPECTED.
assert_rc() {
    local exp=$1 what=$2
    shift 2
    run "$@"
    ((RC == exp)) || fail "$what: expected exit $exp, got $RC: $*
$OUT"
}

# usage WHAT FLAG ARGS...: `basalt cluster ARGS` exits 2 naming FLAG.
usage() {
    local what=$1 flag=$2
    shift 2
    assert_rc 2 "$what" "$BASALT" cluster "$@" --endpoints 127.0.0.1:1
    assert_match "^basalt cluster [a-z-]+: .*$flag" "$OUT" \
        "$what: the usage error names $flag"
    assert_eq 1 "$(grep -c . <<<"$OUT")" "$what: one line"
}

# ---------------------------------------------------------------- 1.
log "1. usage errors (exit 2, naming the flag)"
usage "status --detailed --id" --id status --detailed --id 1
usage "list-nodes --detailed" --detailed list-nodes --detailed
usage "isr-status --id x" --id isr-status --id x
usage "isr-status -o xml" --output isr-status -o xml
usage "split without --id" --id split
usage "split --id 0" --id split --id 0
usage "split --key empty" --key split --id 4 --key=
usage "split --timeout 0" --timeout split --id 4 --timeout 0
usage "remove-node without --id" --id remove-node
usage "remove-node --id 0" --id remove-node --id 0
usage "remove-node --timeout without --wait" --timeout remove-node --id 3 --timeout 5
usage "remove-node --wait --cancel" --cancel remove-node --id 3 --wait --cancel
usage "rebalance --max-moves 0" --max-moves rebalance --max-moves 0
usage "rebalance --dry-run --timeout" --timeout rebalance --dry-run --timeout 5
usage "add-node --client-addr nohost" --client-addr add-node --client-addr nohost
usage "add-node --peer-addr h:99999" --peer-addr add-node --peer-addr h:99999
usage "add-node --timeout 0" --timeout add-node --timeout 0
usage "add-node --id" --id add-node --id 4
usage "scheduler without action" 'show, pause or resume' scheduler
usage "scheduler stop" "'stop'" scheduler stop
assert_rc 2 "scheduler show extra" "$BASALT" cluster scheduler show extra --endpoints 127.0.0.1:1
assert_match "unexpected argument 'extra'" "$OUT" "a third word is refused"
assert_ok "cluster --help" "$BASALT" cluster --help
for c in status isr-status add-node remove-node rebalance split scheduler; do
    assert_match "^  $c" "$OUT" "cluster --help lists $c"
done
assert_match '--detailed' "$OUT" "cluster --help mentions --detailed"

base=(--data-dir "$WORK/x" --client-addr 127.0.0.1:1 --peer-addr 127.0.0.1:2)
assert_rc 2 "start --join with --initial-cluster" "$BASALT" start "${base[@]}" \
    --join 127.0.0.1:3 --initial-cluster 1=127.0.0.1:2
assert_match '^basalt start: --join and --initial-cluster exclude each other' "$OUT" \
    "start refuses --join with --initial-cluster"
assert_rc 2 "start without --id or --join" "$BASALT" start "${base[@]}"
assert_match '^basalt start: missing --id \(or --join' "$OUT" "start: --id or --join"
assert_rc 2 "start --split-size 1X" "$BASALT" start --id 1 "${base[@]}" --split-size 1X
assert_match '^basalt start: --split-size: ' "$OUT" "start names --split-size"
assert_rc 2 "start --labels rack" "$BASALT" start --id 1 "${base[@]}" --labels rack
assert_match '^basalt start: --labels: ' "$OUT" "start names --labels"
assert_rc 2 "start --min-insync-replicas 0" "$BASALT" start --id 1 "${base[@]}" \
    --min-insync-replicas 0
assert_match '^basalt start: --min-insync-replicas: ' "$OUT" "start names --min-insync-replicas"
[[ ! -e $WORK/x ]] || fail "a refused start created its data directory"
assert_ok "start --help" "$BASALT" start --help
for f in join labels heartbeat-ms down-after-ms max-lag-entries max-lag-ms \
    min-insync-replicas max-concurrent-moves split-size split-qps \
    snapshot-rate op-timeout-ms; do
    assert_match "^  --$f " "$OUT" "start --help lists --$f"
done

# ------------------------------------------------------------ the cluster
# Nodes 1..3 bootstrap with a rack each (rack=rI); node 4 joins through
# lib.sh's node_add. The library's node_cmd is kept as lib_node_cmd and
# wrapped to add the label: it builds --initial-cluster from NNODES,
# which must stay 3 for the initial nodes even once node 4 exists.
eval "lib_$(declare -f node_cmd)"
INITIAL=3
# Every node alike: the scheduler's and ISR settings the test reads back.
SETTINGS=(--heartbeat-ms 200 --max-concurrent-moves 2 --snapshot-rate 32M
    --split-size 48M --down-after-ms 20000)
node_cmd() {
    local i=$1
    if [[ -n ${JOINED[i]:-} ]]; then
        lib_node_cmd "$i"
        return
    fi
    local NNODES=$INITIAL
    lib_node_cmd "$i"
    printf '%s\0' --labels "rack=r$i"
}

cluster_start 3 --initial-shards 8 "${SETTINGS[@]}"

# Data written along the way, read back at the end: one key per shard.
declare -A DATA=()
put() {
    assert_ok "put $1" ectl 1 put "$1" "$2"
    DATA[$1]=$2
}
for k in 0 1 2 3 4 5 6 7; do put "$(shard_prefix "$k")-before-$k" "v$k"; done

# ---------------------------------------------------------------- 2.
log "2. list-nodes and status --detailed"
# State, rack and disk use come with the heartbeats: wait for them.
heartbeats_in() {
    bcluster 1 list-nodes -o json 2>/dev/null |
        jq -e '(.nodes | length) == 3 and all(.nodes[]; .state == "up" and .used_bytes > 0)' \
            >/dev/null
}
wait_until 30 "every node up with a heartbeat" heartbeats_in
assert_ok "list-nodes" bcluster 1 list-nodes
assert_match '^NODE +CLIENT ADDR +PEER ADDR +HTTP ADDR +STATE +RACK +ALIVE +REPLICAS +LEADERS +USED$' \
    "$OUT" "list-nodes header"
for j in 1 2 3; do
    assert_match "^$j +$(endpoint "$j") +127\.0\.0\.1:${PEER_PORT[j]} +127\.0\.0\.1:${HTTP_PORT[j]} +up +r$j +yes +[0-9]+ +[0-9]+ +[0-9.]+[KMGT]?\$" \
        "$OUT" "list-nodes row of node $j"
done
assert_ok "list-nodes -o json" bcluster 2 list-nodes -o json
for j in 1 2 3; do
    assert_eq "up r$j" "$(jq -r ".nodes[] | select(.id == $j) | \"\(.state) \(.rack)\"" <<<"$OUT")" \
        "list-nodes JSON state and rack of node $j"
done
assert_eq true "$(jq -r 'all(.nodes[]; .capacity_bytes >= .available_bytes and .capacity_bytes > 0)' <<<"$OUT")" \
    "list-nodes JSON capacity and available bytes"

# Every shard's leader reports its ISR with the heartbeats.
isr_known() {
    bcluster 1 status --detailed -o json 2>/dev/null |
        jq -e '(.shards | length) == 9 and all(.shards[]; .isr_size == 3 and .voters == 3)' >/dev/null
}
wait_until 30 "every shard's ISR reported, 3 of 3" isr_known
assert_ok "status --detailed" bcluster 1 status --detailed
st=$OUT
log "status --detailed:
$st"
assert_match '^NODE +CLIENT ADDR +STATE +RACK +ALIVE +REPLICAS +LEADERS +USED +CAPACITY +HEARD$' \
    "$st" "status --detailed node header"
for j in 1 2 3; do
    assert_match "^$j +$(endpoint "$j") +up +r$j +yes +[0-9]+ +[0-9]+ +[0-9.]+[KMGT]? +[0-9.]+[KMGTPE]? +[0-9]+ ms ago\$" \
        "$st" "status --detailed row of node $j"
done
assert_match '^SHARD +RANGE +LEADER +TERM +COMMIT +APPLIED +ISR +MIN-INSYNC +REPLICAS' \
    "$st" "status --detailed shard header"
for id in 0 1 2 3 4 5 6 7 8; do
    # Three voters: the default minimum is their majority, 2.
    assert_match "^$id +.* [123] +[0-9]+ +[0-9]+ +[0-9]+ +3/3 +2 +[0-9,*~]+\$" \
        "$st" "status --detailed row of shard $id"
done
assert_match '^scheduler: running, [0-9]+ operators? in flight \(finished [0-9]+, cancelled [0-9]+\)$' \
    "$st" "status --detailed scheduler line"
assert_ok "status --detailed -o yaml" bcluster 2 status --detailed -o yaml
assert_match '^  isr_size: 3$' "$OUT" "status --detailed YAML isr_size"
assert_match '^scheduler:$' "$OUT" "status --detailed YAML scheduler"
assert_ok "status (not detailed)" bcluster 1 status
assert_no_match 'MIN-INSYNC' "$OUT" "plain status has no ISR column"

# ---------------------------------------------------------------- 3.
log "3. isr-status"
assert_ok "isr-status" bcluster 2 isr-status
log "isr-status:
$OUT"
assert_match '^SHARD +LEADER +TERM +COMMIT +ISR +MIN-INSYNC +LAG \(node=entries/ms' "$OUT" \
    "isr-status header"
for id in 0 1 2 3 4 5 6 7 8; do
    assert_match "^$id +[123] +[0-9]+ +[0-9]+ +3/3 +2 +[123]\\*?=[0-9]+/[0-9]+,[123]\\*?=[0-9]+/[0-9]+,[123]\\*?=[0-9]+/[0-9]+\$" \
        "$OUT" "isr-status row of shard $id"
done
assert_match '^9 shards: 0 below min-insync, 0 with a replica out of sync$' "$OUT" \
    "isr-status summary"
assert_ok "isr-status -o json" bcluster 3 isr-status -o json
assert_eq 9 "$(jq '.shards | length' <<<"$OUT")" "isr-status JSON: 9 shards"
for f in shard_id leader_node term commit isr_size voters min_insync size_bytes keys \
    read_qps write_qps reported_ms_ago replicas; do
    assert_eq true "$(jq "all(.shards[]; has(\"$f\"))" <<<"$OUT")" "isr-status JSON field $f"
done
for f in replica_id node_id learner match lag_entries lag_ms in_sync; do
    assert_eq true "$(jq "all(.shards[].replicas[]; has(\"$f\"))" <<<"$OUT")" \
        "isr-status JSON replica field $f"
done
assert_eq true "$(jq 'all(.shards[].replicas[]; .in_sync)' <<<"$OUT")" "isr-status JSON: all in sync"
assert_ok "isr-status --id 4 -o json" bcluster 1 isr-status --id 4 -o json
assert_eq 4 "$(jq -r '[.shards[].shard_id] | join(",")' <<<"$OUT")" "isr-status --id 4: shard 4 only"
assert_ok "isr-status --id 0 -o yaml" bcluster 1 isr-status --id 0 -o yaml
assert_match '^- shard_id: 0$' "$OUT" "isr-status --id 0: the placement group"
assert_eq 1 "$(grep -c '^- shard_id:' <<<"$OUT")" "isr-status --id 0: one shard"
assert_rc 1 "isr-status --id 99" bcluster 1 isr-status --id 99
assert_eq "basalt cluster isr-status: basalt: there is no shard 99" "$OUT" \
    "isr-status --id 99: the server's reason on one line"

# ---------------------------------------------------------------- 4.
log "4. scheduler show, pause, resume"
assert_ok "scheduler show" bcluster 1 scheduler show
log "scheduler show:
$OUT"
assert_match '^scheduler +running$' "$OUT" "scheduler show: running"
assert_match '^max-concurrent-moves +2$' "$OUT" "scheduler show: --max-concurrent-moves"
assert_match '^split-size +48M$' "$OUT" "scheduler show: --split-size"
assert_match '^snapshot-rate +32M/s$' "$OUT" "scheduler show: --snapshot-rate"
assert_match '^down-after-ms +20000$' "$OUT" "scheduler show: --down-after-ms"
assert_ok "scheduler show -o json" bcluster 2 scheduler show -o json
assert_eq "false 2 50331648 33554432 20000" \
    "$(jq -r '"\(.paused) \(.max_concurrent_moves) \(.split_size) \(.snapshot_rate) \(.down_after_ms)"' <<<"$OUT")" \
    "scheduler show JSON settings"
assert_ok "scheduler pause" bcluster 3 scheduler pause
assert_match '^scheduler paused; [0-9]+ operators? in flight$' "$OUT" "scheduler pause"
assert_ok "scheduler show after pause" bcluster 1 scheduler show -o yaml
assert_match '^paused: true$' "$OUT" "scheduler paused (YAML)"
assert_ok "scheduler pause again" bcluster 1 scheduler pause
assert_ok "scheduler resume" bcluster 2 scheduler resume -o json
assert_eq false "$(jq -r .paused <<<"$OUT")" "scheduler resumed (JSON)"

# ---------------------------------------------------------------- 5.
log "5. split"
# Shard 4 is [0x6000, 0x8000): "p" (0x70) is inside it.
put a-left-of-p vl
put q-right-of-p vr
assert_ok "split --id 4 --key p" bcluster 1 split --id 4 --key p --timeout 60
log "split:
$OUT"
assert_match '^shard 4: split started \(operator [0-9]+\), new shard [0-9]+; waiting up to 60 s' \
    "$OUT" "split: started"
new=$(sed -nE 's/^shard 4: split started \(operator [0-9]+\), new shard ([0-9]+);.*/\1/p' <<<"$OUT")
[[ $new =~ ^[0-9]+$ && $new -ge 9 ]] || fail "split: no new shard id in:
$OUT"
assert_match '^SHARD +RANGE +LEADER +REPLICAS$' "$OUT" "split: table header"
assert_match '^4 +\[0x6000, p\) +[1-3] +' "$OUT" "split: shard 4 ends at p"
assert_match "^$new +\\[p, 0x8000\\) +(-|[1-3]) +" "$OUT" "split: the new shard starts at p"
assert_ok "partition-info --key q-right-of-p" bcluster 2 partition-info --key q-right-of-p -o json
assert_eq "$new" "$(jq -r .id <<<"$OUT")" "the key right of p is in the new shard"
assert_ok "partition-info --key a-left-of-p" bcluster 2 partition-info --key a-left-of-p -o json
assert_eq 4 "$(jq -r .id <<<"$OUT")" "the key left of p stays in shard 4"
served_right() {
    [[ $(ECTL_TIMEOUT=2s ectl 3 get --print-value-only q-right-of-p 2>/dev/null) == vr ]]
}
wait_until 30 "the new shard serves its keys" served_right
put q-after-split vq
assert_eq vl "$(ectl 2 get --print-value-only a-left-of-p)" "the key left of p is served"

# Shard 2 is [0x2000, 0x4000): "0" (0x30) is inside it. JSON output.
assert_ok "split --id 2 --key 0 -o json" bcluster 2 split --id 2 --key 0 -o json
sj=$OUT
assert_eq 2 "$(jq -r .shard_id <<<"$sj")" "split JSON shard_id"
assert_eq "2 $(jq -r .new_shard_id <<<"$sj")" "$(jq -r '[.shards[].id] | map(tostring) | join(" ")' <<<"$sj")" \
    "split JSON: the old shard, then the new one"
assert_eq 0 "$(jq -r '.shards[0].end' <<<"$sj")" "split JSON: shard 2 ends at 0"
assert_eq 0 "$(jq -r '.shards[1].start' <<<"$sj")" "split JSON: the new shard starts at 0"
assert_rc 1 "split of an unknown shard" bcluster 1 split --id 99
assert_eq "basalt cluster split: basalt: there is no shard 99" "$OUT" \
    "split --id 99: the server's reason on one line"
assert_rc 1 "split at a key outside the shard" bcluster 1 split --id 4 --key zzz
assert_match '^basalt cluster split: .+' "$OUT" "split outside the range: the server's reason"
assert_eq 1 "$(grep -c . <<<"$OUT")" "split outside the range: one line"

# ---------------------------------------------------------------- 6.
log "6. add-node: node 4 joins"
# Paused: the rebalance below is the only thing that moves replicas.
assert_ok "scheduler pause before the join" bcluster 1 scheduler pause
# add-node looks at the cluster first (so node 4 is new to it), then
# waits; it is given no addresses: it prints placeholders.
bcluster 1 add-node --timeout 90 >"$WORK/add-node.out" 2>&1 &
addpid=$!
sleep 1
node_add --labels rack=r4
((ADDED == 4)) || fail "node_add: node $ADDED, expected 4"
wait "$addpid"
addrc=$?
OUT=$(cat "$WORK/add-node.out")
log "add-node:
$OUT"
((addrc == 0)) || fail "add-node exited $addrc:
$OUT"
assert_match "^  basalt start --join $(endpoints 1 2 3) --data-dir DATA_DIR --client-addr HOST:CLIENT_PORT --peer-addr HOST:PEER_PORT\$" \
    "$OUT" "add-node prints the start command"
assert_match "^node [0-9]+ registered: client 127\\.0\\.0\\.1:${CLIENT_PORT[4]}, peer 127\\.0\\.0\\.1:${PEER_PORT[4]}, state [a-z]+\$" \
    "$OUT" "add-node reports the new node"
# Its id is the cluster's choice (node.h: placement allocates it).
nid=$(sed -nE 's/^node ([0-9]+) registered: .*/\1/p' <<<"$OUT")
[[ $nid =~ ^[0-9]+$ ]] && ((nid > 3)) || fail "add-node: the new node's id is '$nid'"
log "node 4 of the harness has id $nid"
wait_until "$READY_TIMEOUT" "node 4 answers" node_answers 4
node4_up() {
    bcluster 1 list-nodes -o json 2>/dev/null |
        jq -e ".nodes[] | select(.id == $nid) | .state == \"up\" and .rack == \"r4\" and .alive" >/dev/null
}
wait_until 30 "node 4 up with rack r4" node4_up
assert_ok "put through node 4" ectl 4 put via-node-4 v4
DATA[via-node-4]=v4

# ---------------------------------------------------------------- 7.
log "7. rebalance onto node 4"
assert_ok "rebalance --dry-run, paused, no --max-moves" bcluster 1 rebalance --dry-run
assert_match "^- +move +balance-replicas +[0-9]+ +[1-3] +$nid\$" "$OUT" \
    "an operator's dry run plans even while the scheduler is paused"
assert_ok "rebalance --dry-run --max-moves 2" bcluster 2 rebalance --dry-run --max-moves 2
log "rebalance --dry-run:
$OUT"
assert_match '^plan \(dry run, nothing started\): [12] operators?:$' "$OUT" "dry run: a plan"
assert_match '^ID +KIND +REASON +SHARD +FROM +TO$' "$OUT" "dry run: plan header"
assert_match "^- +move +balance-replicas +[0-9]+ +[1-3] +$nid\$" "$OUT" "dry run: a move onto node 4"
assert_ok "rebalance --dry-run --max-moves 2 -o json" bcluster 3 rebalance --dry-run --max-moves 2 -o json
plan=$OUT
assert_eq true "$(jq '.dry_run and (.plan | length) >= 1 and (.plan | length) <= 2' <<<"$plan")" \
    "dry run JSON: 1 or 2 operators"
assert_eq true "$(jq "any(.plan[]; .kind == \"move\" and .to_node == $nid)" <<<"$plan")" \
    "dry run JSON: a move onto node 4"
assert_eq true "$(jq 'all(.plan[]; has("id") and has("reason") and has("shard_id") and has("from_node"))' <<<"$plan")" \
    "dry run JSON: operator fields"
assert_ok "scheduler show after the dry runs" bcluster 1 scheduler show -o json
assert_eq 0 "$(jq "[.operators[] | select(.to_node == $nid)] | length" <<<"$OUT")" \
    "a dry run starts nothing"
assert_ok "list-nodes before the rebalance" bcluster 1 list-nodes -o json
assert_eq 0 "$(jq ".nodes[] | select(.id == $nid) | .replicas" <<<"$OUT")" \
    "node 4 holds nothing before the rebalance"

assert_ok "rebalance --max-moves 2" bcluster 1 rebalance --max-moves 2 --timeout 180
log "rebalance:
$OUT"
assert_match '^started [12] operators?:$' "$OUT" "rebalance: started"
assert_match "^[0-9]+ +move +balance-replicas +[0-9]+ +[1-3] +$nid\$" "$OUT" \
    "rebalance: the started moves have ids"
assert_match '^done: none of the plan.s shards has an operator in flight' "$OUT" "rebalance: done"
prog=$(grep -E '^[0-9]+ of [0-9]+ operators? in flight' <<<"$OUT")
assert_eq "" "$(uniq -d <<<"$prog")" "rebalance: one line per change"
node4_holds() {
    bcluster 1 list-nodes -o json 2>/dev/null |
        jq -e ".nodes[] | select(.id == $nid) | .replicas >= 1" >/dev/null
}
wait_until 30 "node 4 holds replicas" node4_holds
assert_ok "scheduler resume" bcluster 1 scheduler resume

# ---------------------------------------------------------------- 8.
log "8. remove-node: node 4 is decommissioned"
assert_ok "remove-node --id $nid --wait" bcluster 2 remove-node --id "$nid" --wait --timeout 240
log "remove-node:
$OUT"
assert_match "^node $nid: draining, [0-9]+ replicas? to move\$" "$OUT" "remove-node: draining"
assert_match "^waiting up to 240 s for node $nid to be removed\\.\\.\\.\$" "$OUT" "remove-node: waiting"
assert_match "^node $nid: removed, 0 replicas left\$" "$OUT" "remove-node: removed"
prog=$(grep -E "^node $nid: " <<<"$OUT")
assert_eq "" "$(uniq -d <<<"$prog")" "remove-node: one line per change"
removed() {
    bcluster 1 list-nodes -o json 2>/dev/null |
        jq -e "[.nodes[] | select(.id == $nid and .state != \"removed\")] | length == 0" >/dev/null
}
wait_until 10 "node 4 removed in list-nodes" removed
assert_ok "status --detailed after the removal" bcluster 1 status --detailed -o json
assert_eq 0 "$(jq "[.shards[].replicas[] | select(.node_id == $nid)] | length" <<<"$OUT")" \
    "no replica left on node 4"
# A removed node may stop by itself or keep running idle; it must not
# crash (die by a signal).
if node_alive 4; then
    node_stop 4
else
    node_reap 4
    log "node 4 exited by itself with status $REAPED after its removal"
    ((REAPED < 128)) || fail "node 4 died by signal $((REAPED - 128)) after its removal (see its log)"
fi

assert_rc 1 "remove-node with three nodes left" bcluster 1 remove-node --id 3
assert_match '^basalt cluster remove-node: .+' "$OUT" "the refusal is the server's reason"
assert_eq 1 "$(grep -c . <<<"$OUT")" "the refusal is one line"
assert_rc 1 "remove-node of an unknown node" bcluster 1 remove-node --id 99
assert_match '^basalt cluster remove-node: .+' "$OUT" "unknown node: the server's reason"
assert_eq 1 "$(grep -c . <<<"$OUT")" "unknown node: one line"
assert_ok "list-nodes after the refusals" bcluster 1 list-nodes -o json
assert_eq "up up up" "$(jq -r '[.nodes[] | select(.id <= 3) | .state] | join(" ")' <<<"$OUT")" \
    "nodes 1..3 still up"

log "every key written is still there"
for k in "${!DATA[@]}"; do
    assert_eq "${DATA[$k]}" "$(ectl 1 get --print-value-only "$k")" "key $k"
done
# health leaves the removed node out (it no longer belongs to the cluster).
assert_ok "health at the end" bcluster 1 health
assert_no_match "^$nid +" "$OUT" "health does not ping the removed node"
exit 0
