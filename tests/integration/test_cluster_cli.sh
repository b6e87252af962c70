#!/usr/bin/env bash
# test_cluster_cli.sh - the read-only `basalt cluster` commands against a
# 3-node cluster with --initial-shards 8 (9 shards: the placement group,
# shard 0, and 8 data shards).
#
# Checks:
#   1. list-nodes: nodes 1..3 with their addresses, as a table, JSON, YAML;
#   2. list-partitions: 9 shards, shard 0 among them, each with a leader;
#   3. partition-info by id and by key: key "a" (0x61) is in the shard
#      whose range covers it; an unknown id fails with the server's reason;
#   4. health and ping-node answer (exit 0), ping-node --id 99 fails;
#   5. bad flags are usage errors (exit 2) naming the flag;
#   6. after kill -9 of node 3, health exits 1 naming node 3.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

is_basalt || skip "basalt cluster commands need a Basalt cluster"
# jq reads the JSON outputs (the harness itself needs none).
command -v jq >/dev/null 2>&1 || skip "jq not found (Debian package jq)"

cluster_start 3 --initial-shards 8

# assert_rc EXPECTED WHAT CMD...: CMD exits with status EXPECTED.
assert_rc() {
    local exp=$1 what=$2
    shift 2
    run "$@"
    ((RC == exp)) || fail "$what: expected exit $exp, got $RC: $*
$OUT"
}

# ---------------------------------------------------------------- 1.
log "1. list-nodes"
assert_ok "list-nodes" bcluster 1 list-nodes
for j in 1 2 3; do
    assert_match "^$j +$(endpoint "$j") +127\.0\.0\.1:${PEER_PORT[j]} +127\.0\.0\.1:${HTTP_PORT[j]} +up +- +yes +[0-9]+ +[0-9]+ +(-|[0-9.]+[KMGT]?)$" \
        "$OUT" "list-nodes table row of node $j"
done
assert_eq 4 "$(grep -c . <<<"$OUT")" "list-nodes: a header and 3 rows"
assert_ok "list-nodes -o json" bcluster 2 list-nodes -o json
js=$OUT
assert_eq $'1\n2\n3' "$(jq -r '.nodes[].id' <<<"$js" | sort)" "list-nodes JSON ids"
for j in 1 2 3; do
    assert_eq "$(endpoint "$j")" "$(jq -r ".nodes[] | select(.id == $j) | .client_addr" <<<"$js")" \
        "list-nodes JSON client_addr of node $j"
    assert_eq "127.0.0.1:${PEER_PORT[j]}" "$(jq -r ".nodes[] | select(.id == $j) | .peer_addr" <<<"$js")" \
        "list-nodes JSON peer_addr of node $j"
done
assert_eq null "$(jq -r '.shards' <<<"$js")" "list-nodes JSON has no shards"
assert_ok "list-nodes -o yaml" bcluster 3 list-nodes -o yaml
for j in 1 2 3; do
    assert_match "^- id: $j\$" "$OUT" "list-nodes YAML node $j"
    assert_match "^  client_addr: $(endpoint "$j")\$" "$OUT" "list-nodes YAML address of node $j"
done
assert_match '^  alive: true$' "$OUT" "list-nodes YAML alive"

# ---------------------------------------------------------------- 2.
log "2. list-partitions"
# Leaders may still be settling just after start: wait for all 9.
all_led() {
    bcluster 1 list-partitions -o json 2>/dev/null |
        jq -e '(.shards | length) == 9 and all(.shards[]; .leader_node >= 1 and .leader_node <= 3)' \
            >/dev/null
}
wait_until 30 "every shard has a leader" all_led
assert_ok "list-partitions" bcluster 1 list-partitions
tab=$OUT
assert_eq 10 "$(grep -c . <<<"$tab")" "list-partitions: a header and 9 rows"
assert_match '^SHARD +RANGE +LEADER +TERM +COMMIT +APPLIED +REPLICAS' "$tab" "list-partitions header"
for id in 0 1 2 3 4 5 6 7 8; do
    assert_match "^$id +.* [123] +[0-9]+ +[0-9]+ +[0-9]+ +[0-9,*~]*\\*" "$tab" "list-partitions row of shard $id (leader, * on it)"
done
assert_match '^0 +\(placement: no keys\)' "$tab" "shard 0 is the placement group"
assert_match '\[-inf, 0x2000\)' "$tab" "the first data shard starts at -inf"
assert_match '\[0x6000, 0x8000\)' "$tab" "a data shard [0x6000, 0x8000)"
assert_ok "list-partitions -o json" bcluster 2 list-partitions -o json
pj=$OUT
assert_eq "0 1 2 3 4 5 6 7 8" "$(jq -r '[.shards[].id] | sort | map(tostring) | join(" ")' <<<"$pj")" \
    "list-partitions JSON: shards 0..8"
assert_eq null "$(jq -r '.nodes' <<<"$pj")" "list-partitions JSON has no nodes"
assert_eq 3 "$(jq -r '.shards[] | select(.id == 1) | .replicas | length' <<<"$pj")" \
    "list-partitions JSON: shard 1 has 3 replicas"
assert_ok "list-partitions -o yaml" bcluster 3 list-partitions -o yaml
nid=$(grep -cE '^- id: [0-9]+$' <<<"$OUT")
assert_eq 9 "$nid" "list-partitions YAML: 9 shards"
assert_match '^- id: 0$' "$OUT" "list-partitions YAML lists shard 0"
assert_match "^  start_hex: '?6000'?\$" "$OUT" "list-partitions YAML start_hex"

# The shard whose range covers key "a" (0x61), from the JSON: hex strings
# compare as the bytes do. Empty start: lowest; empty end: no bound.
want=$(jq -r '.shards[] | select(.id != 0) |
    (.start_hex // (.start | explode | map(. as $c | "0123456789abcdef"[($c/16|floor):($c/16|floor)+1] + "0123456789abcdef"[($c%16):($c%16)+1]) | join(""))) as $s |
    (.end_hex // (.end | explode | map(. as $c | "0123456789abcdef"[($c/16|floor):($c/16|floor)+1] + "0123456789abcdef"[($c%16):($c%16)+1]) | join(""))) as $e |
    select($s <= "61" and ($e == "" or "61" < $e)) | .id' <<<"$pj")
[[ $want =~ ^[1-8]$ ]] || fail "no single data shard covers 0x61 in:
$pj"

# ---------------------------------------------------------------- 3.
log "3. partition-info (key a is in shard $want)"
assert_ok "partition-info --key a" bcluster 1 partition-info --key a
log "partition-info --key a:
$OUT"
assert_match "^shard +$want\$" "$OUT" "partition-info --key a: shard $want"
assert_match '^range +\[0x6000, 0x8000\)$' "$OUT" "partition-info --key a: its range"
assert_match '^leader +node [123] \(replica [0-9]+\)$' "$OUT" "partition-info --key a: leader"
assert_match '^REPLICA +NODE +LEARNER +IN SYNC +MATCH +LEADER$' "$OUT" "partition-info replica table"
assert_eq 3 "$(grep -cE '^[0-9]+ +[123] +(yes|no) +(yes|no) +[0-9]+' <<<"$OUT")" \
    "partition-info --key a: 3 replicas"
assert_ok "partition-info --key a -o json" bcluster 2 partition-info --key a -o json
assert_eq "$want" "$(jq -r .id <<<"$OUT")" "partition-info --key a JSON id"
assert_eq 3 "$(jq -r '.replicas | length' <<<"$OUT")" "partition-info JSON replicas"
assert_eq "true" "$(jq -r 'all(.replicas[]; has("in_sync") and has("match") and has("learner"))' <<<"$OUT")" \
    "partition-info JSON replica fields"
assert_ok "partition-info --id $want -o yaml" bcluster 3 partition-info --id "$want" -o yaml
assert_match "^id: $want\$" "$OUT" "partition-info --id YAML id"
assert_match "^start_hex: '?6000'?\$" "$OUT" "partition-info --id YAML range"
assert_match '^- id: [0-9]+$' "$OUT" "partition-info --id YAML replicas"
assert_ok "partition-info --id 0" bcluster 1 partition-info --id 0
assert_match '^shard +0$' "$OUT" "partition-info --id 0"
assert_match '^range +\(placement: no keys\)$' "$OUT" "partition-info --id 0: placement"
assert_ok "partition-info --key 0 (shard 1's range)" bcluster 1 partition-info --key 0 -o json
k0=$(jq -r .id <<<"$OUT")
[[ $k0 != "$want" && $k0 =~ ^[1-8]$ ]] || fail "partition-info --key 0: shard $k0"
assert_rc 1 "partition-info --id 99" bcluster 1 partition-info --id 99
assert_eq "basalt cluster partition-info: basalt: there is no shard 99" "$OUT" \
    "partition-info --id 99: the server's reason on one line"

# ---------------------------------------------------------------- 4.
log "4. health and ping-node"
assert_ok "health" bcluster 1 health
for j in 1 2 3; do
    assert_match "^$j +$(endpoint "$j") +ok +[0-9]+\.[0-9]+\$" "$OUT" "health: node $j ok"
done
assert_match '^shards: 9, 0 without a leader$' "$OUT" "health: shards"
assert_match '^healthy$' "$OUT" "health: healthy"
assert_ok "health -o json" bcluster 2 health -o json
assert_eq true "$(jq -r .healthy <<<"$OUT")" "health JSON healthy"
assert_eq "1 2 3" "$(jq -r '[.nodes[] | select(.ok) | .id] | sort | map(tostring) | join(" ")' <<<"$OUT")" \
    "health JSON: nodes 1..3 ok"
assert_eq 9 "$(jq -r .shards <<<"$OUT")" "health JSON shards"
assert_ok "health -o yaml" bcluster 3 health -o yaml
assert_match '^healthy: true$' "$OUT" "health YAML"
assert_eq 3 "$(grep -c '^  ok: true$' <<<"$OUT")" "health YAML: 3 nodes ok"

assert_ok "ping-node --id 2" bcluster 1 ping-node --id 2
assert_match "^node 2 \($(endpoint 2)\): ok, basalt .*, [0-9.]+ ms\$" "$OUT" "ping-node --id 2"
assert_ok "ping-node --id 3 -o json" bcluster 1 ping-node --id 3 -o json
assert_eq "3 true" "$(jq -r '"\(.id) \(.ok)"' <<<"$OUT")" "ping-node --id 3 JSON"
assert_ok "ping-node --id 1 -o yaml" bcluster 2 ping-node --id 1 -o yaml
assert_match '^ok: true$' "$OUT" "ping-node --id 1 YAML"
assert_rc 1 "ping-node --id 99" bcluster 1 ping-node --id 99
assert_match '^basalt cluster ping-node: no node 99' "$OUT" "ping-node --id 99 reason"

# ---------------------------------------------------------------- 5.
log "5. usage errors (exit 2, naming the flag)"
assert_rc 2 "partition-info without --id or --key" bcluster 1 partition-info
assert_match '--id and --key' "$OUT" "partition-info without a selector names the flags"
assert_rc 2 "partition-info with both" bcluster 1 partition-info --id 1 --key a
assert_match '--id and --key' "$OUT" "partition-info with both names the flags"
assert_rc 2 "partition-info --id x" bcluster 1 partition-info --id x
assert_match '--id' "$OUT" "partition-info --id x names --id"
assert_rc 2 "ping-node without --id" bcluster 1 ping-node
assert_match '--id' "$OUT" "ping-node without --id names --id"
assert_rc 2 "ping-node --id 0" bcluster 1 ping-node --id 0
assert_rc 2 "list-nodes -o xml" bcluster 1 list-nodes -o xml
assert_match '--output' "$OUT" "-o xml names --output"
assert_rc 2 "health --key a" bcluster 1 health --key a
assert_match '--key' "$OUT" "health --key names --key"
assert_rc 2 "list-partitions --bogus" bcluster 1 list-partitions --bogus
assert_match '--bogus' "$OUT" "an unknown flag is named"
assert_rc 2 "unknown command" bcluster 1 list-everything
assert_ok "cluster --help" "$BASALT" cluster --help
for c in list-nodes list-partitions partition-info health ping-node \
    transfer-leader; do
    assert_match "^  $c" "$OUT" "cluster --help lists $c"
done

# ---------------------------------------------------------------- 5b.
log "5b. transfer-leader: shard 4's leadership moves to each node in turn"
for to in 1 2 3; do
    # Asked through the node after the target: it may not lead the shard
    # and then forwards the request to the node that does.
    via=$((to % 3 + 1))
    assert_ok "transfer-leader --id 4 --to $to via node $via" \
        bcluster "$via" transfer-leader --id 4 --to "$to" -o json
    assert_eq "$to" "$(jq -r .leader_node <<<"$OUT")" \
        "transfer-leader reports node $to leading"
    assert_ok "partition-info --id 4 after the transfer" \
        bcluster "$to" partition-info --id 4 -o json
    assert_eq "$to" "$(jq -r '.leader_node // .shard.leader_node' <<<"$OUT")" \
        "shard 4 is led by node $to"
done
assert_ok "a put in shard 4 after the transfers" ectl 1 put a-after-transfer v
assert_rc 1 "transfer-leader to a node without a replica" \
    bcluster 1 transfer-leader --id 4 --to 9
assert_match 'no voting replica' "$OUT" "the reason names the missing replica"
assert_rc 1 "transfer-leader of an unknown shard" \
    bcluster 1 transfer-leader --id 99 --to 1
assert_rc 2 "transfer-leader without --to" bcluster 1 transfer-leader --id 4
assert_match '--to' "$OUT" "the usage error names --to"

# ---------------------------------------------------------------- 6.
log "6. kill -9 node 3: health fails naming it"
node_kill 3
assert_ok "list-partitions after the kill" bcluster 1 list-partitions
log "list-partitions after killing node 3:
$OUT"
assert_rc 1 "health with node 3 down" bcluster 1 health
assert_match "^3 +$(endpoint 3) +unreachable +-\$" "$OUT" "health table: node 3 unreachable"
assert_match "^basalt cluster health: node 3 \\($(endpoint 3)\\) unreachable" "$OUT" \
    "health's reason names node 3"
assert_eq 1 "$(grep -c '^basalt cluster health:' <<<"$OUT")" "health: one line of reason"
assert_rc 1 "health -o json with node 3 down" bcluster 2 health -o json
js=$(grep -v '^basalt cluster health:' <<<"$OUT")
assert_eq false "$(jq -r .healthy <<<"$js")" "health JSON: unhealthy"
assert_eq false "$(jq -r '.nodes[] | select(.id == 3) | .ok' <<<"$js")" "health JSON: node 3 not ok"
assert_rc 1 "ping-node --id 3 with node 3 down" bcluster 1 ping-node --id 3
assert_match '^basalt cluster ping-node: node 3 .* unreachable' "$OUT" "ping-node --id 3 reason"
assert_ok "ping-node --id 2 still answers" bcluster 1 ping-node --id 2
exit 0
