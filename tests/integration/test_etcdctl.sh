#!/usr/bin/env bash
# test_etcdctl.sh - a 3-node cluster speaks etcd's v3 API to etcdctl.
#
# Checks, with exact outputs where the output does not depend on the
# server's internals (revisions, ids, sizes):
#   1. a put through node 1 is read through nodes 2 and 3;
#   2. put/get of keys in all 8 shards (--initial-shards 8 splits the key
#      space evenly on the first byte: SHARD_BYTES in lib.sh), gets through
#      every node, get --prefix within a shard, a range spanning shards,
#      the whole key space, --limit across shards (with count and more),
#      --keys-only, --print-value-only, a missing key;
#   3. del of one key, del --prefix within a shard, a delete range that
#      spans shards (done in full, or refused with nothing deleted);
#   4. endpoint status answers on all three endpoints; member list shows
#      3 members with their peer and client URLs;
#   5. (basalt only) `basalt kv` put/get/get --prefix/del/scan agree with
#      etcdctl, and `basalt cluster status -o json` shows 3 nodes and a
#      leader for every shard.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cluster_start 3 --initial-shards 8

# ---------------------------------------------------------------- 1.
log "1. a write through node 1 is read through nodes 2 and 3"
assert_ok "put through node 1" ectl 1 put greeting hello
assert_eq OK "$OUT" "etcdctl put prints OK"
for i in 2 3; do
    assert_ok "get through node $i" ectl "$i" get greeting
    assert_eq $'greeting\nhello' "$OUT" "get greeting through node $i"
done
assert_ok "del greeting" ectl 2 del greeting
assert_eq 1 "$OUT" "del greeting deletes one key"

# ---------------------------------------------------------------- 2.
log "2. keys in all 8 shards, written through rotating nodes"
# key K J: the J-th key of shard K; value K J: its value.
key() { printf '%sk/%d' "$(shard_prefix "$1")" "$2"; }
val() { printf 'v-%d-%d' "$1" "$2"; }
for ((k = 0; k < 8; k++)); do
    for j in 1 2 3; do
        n=$(((k + j) % 3 + 1))
        assert_ok "put $(key $k $j) through node $n" \
            ectl "$n" put "$(key $k $j)" "$(val $k $j)"
        assert_eq OK "$OUT" "put $(key $k $j) prints OK"
    done
done

# expect_kv K0 K1 [J...]: the simple output of a get over the keys J (all
# three by default) of shards K0..K1, in key order.
expect_kv() {
    local k0=$1 k1=$2 k j out=
    shift 2
    local sel=("$@")
    ((${#sel[@]})) || sel=(1 2 3)
    for ((k = k0; k <= k1; k++)); do
        for j in "${sel[@]}"; do
            out+=$(key $k $j)$'\n'$(val $k $j)$'\n'
        done
    done
    printf '%s' "${out%$'\n'}"
}
expect_keys() {
    local k0=$1 k1=$2 k j out=
    for ((k = k0; k <= k1; k++)); do
        for j in 1 2 3; do out+=$(key $k $j)$'\n'; done
    done
    printf '%s' "${out%$'\n'}"
}

for i in 1 2 3; do
    for ((k = 0; k < 8; k++)); do
        assert_ok "get $(key $k 2) through node $i" ectl "$i" get "$(key $k 2)"
        assert_eq "$(expect_kv $k $k 2)" "$OUT" \
            "get $(key $k 2) through node $i (shard $k)"
    done
done

log "2. get --prefix within a shard, through each node"
for i in 1 2 3; do
    for k in 1 3 6; do
        p=$(shard_prefix $k)
        assert_ok "get --prefix through node $i" ectl "$i" get --prefix "${p}k/"
        assert_eq "$(expect_kv $k $k)" "$OUT" \
            "get --prefix '${p}k/' through node $i (shard $k)"
    done
done

log "2. ranges spanning shards"
# [ "0", "b" ) holds shards 1, 2 and 3 ("0…", "A…", "a…").
assert_ok "get 0 b" ectl 2 get 0 b
assert_eq "$(expect_kv 1 3)" "$OUT" "get [0, b) spans shards 1..3"
# The whole key space: get --prefix "" (etcdctl: from "\0" to the end).
for i in 1 3; do
    assert_ok "get --prefix ''" ectl "$i" get --prefix ""
    assert_eq "$(expect_kv 0 7)" "$OUT" "get --prefix '' through node $i"
done
assert_ok "get --from-key" ectl 1 get --from-key A
assert_eq "$(expect_kv 2 7)" "$OUT" "get --from-key A spans shards 2..7"
assert_ok "get --prefix '' --keys-only" ectl 2 get --prefix "" --keys-only
# --keys-only prints an empty line after every key.
exp=$(expect_keys 0 7 | sed 's/$/\n/')
assert_eq "$exp" "$OUT" "get --prefix '' --keys-only"
assert_ok "get --print-value-only" ectl 3 get --prefix "a" --print-value-only
assert_eq $'v-3-1\nv-3-2\nv-3-3' "$OUT" "get --prefix a --print-value-only"

log "2. --limit across shards"
# The first 5 keys in order: shard 0's three, then shard 1's first two.
assert_ok "get --limit 5" ectl 1 get --prefix "" --limit 5
exp=$(expect_kv 0 0)$'\n'$(expect_kv 1 1 1 2)
assert_eq "$exp" "$OUT" "get --prefix '' --limit 5"
assert_ok "get --limit 4 starting mid-way" ectl 2 get "A" "z" --limit 4
exp=$(expect_kv 2 2)$'\n'$(expect_kv 3 3 1)
assert_eq "$exp" "$OUT" "get [A, z) --limit 4 crosses from shard 2 into 3"
# -w json: count is every key in the range, more says there are more.
assert_ok "get --limit 5 -w json" ectl 3 get --prefix "" --limit 5 -w json
js=$OUT
assert_match '"count":24([,}]|$)' "$js" "get --prefix '' --limit 5: count of the whole range"
assert_match '"more":true' "$js" "get --prefix '' --limit 5: more is true"
nk=$(grep -o '"key":"[^"]*"' <<<"$js" | wc -l)
assert_eq 5 "$nk" "get --prefix '' --limit 5 -w json: number of kvs"
first=$(grep -o '"key":"[^"]*"' <<<"$js" | head -1 | cut -d'"' -f4)
assert_eq "$(key 0 1 | base64)" "$first" "first key (base64) of the json output"
assert_ok "get --limit 24 -w json" ectl 3 get --prefix "" --limit 24 -w json
assert_no_match '"more":true' "$OUT" "get --limit equal to the count: more is false"

log "2. sorted ranges across shards (done right, or refused as not built)"
run ectl 1 get --prefix "" --order DESCEND --limit 4
if ((RC == 0)); then
    exp=$(key 7 3)$'\n'$(val 7 3)$'\n'$(key 7 2)$'\n'$(val 7 2)$'\n'$(key 7 1)$'\n'$(val 7 1)$'\n'$(key 6 3)$'\n'$(val 6 3)
    assert_eq "$exp" "$OUT" "get --prefix '' --order DESCEND --limit 4 (the last 4 keys, descending)"
else
    log "note: get --order DESCEND refused: $(tail -n1 <<<"$OUT")"
    # DESIGN.md section 6 says UNIMPLEMENTED for what is not built; Basalt
    # answers FAILED_PRECONDITION for a sort it cannot do across shards,
    # as for a cross-shard txn. Either, with a sentence, is a clear refusal.
    assert_match 'code = (Unimplemented|FailedPrecondition) desc = [A-Za-z].{8,}' "$OUT" \
        "a refused sorted range says why"
fi
run ectl 2 get --prefix "" --sort-by VALUE --order DESCEND --limit 2
if ((RC == 0)); then
    exp=$(key 7 3)$'\n'$(val 7 3)$'\n'$(key 7 2)$'\n'$(val 7 2)
    assert_eq "$exp" "$OUT" "get --prefix '' --sort-by VALUE --order DESCEND --limit 2"
else
    log "note: get --sort-by VALUE refused: $(tail -n1 <<<"$OUT")"
    # DESIGN.md section 6 says UNIMPLEMENTED for what is not built; Basalt
    # answers FAILED_PRECONDITION for a sort it cannot do across shards,
    # as for a cross-shard txn. Either, with a sentence, is a clear refusal.
    assert_match 'code = (Unimplemented|FailedPrecondition) desc = [A-Za-z].{8,}' "$OUT" \
        "a refused sorted range says why"
fi

log "2. put --prev-kv"
assert_ok "put --prev-kv" ectl 2 put --prev-kv "$(key 5 1)" "v-5-1b"
assert_eq $'OK\n'"$(key 5 1)"$'\n'v-5-1 "$OUT" "put --prev-kv prints the previous kv"
assert_ok "put back" ectl 3 put "$(key 5 1)" "$(val 5 1)"

log "2. a missing key"
assert_ok "get a missing key" ectl 2 get "nosuchkey"
assert_eq "" "$OUT" "get of a missing key prints nothing"
assert_ok "get a missing key -w json" ectl 2 get "nosuchkey" -w json
assert_no_match '"kvs"' "$OUT" "get of a missing key has no kvs"

# ---------------------------------------------------------------- 3.
log "3. del, del --prefix, del of a range across shards"
assert_ok "del one key" ectl 3 del "$(key 0 2)"
assert_eq 1 "$OUT" "del $(key 0 2)"
assert_ok "del a missing key" ectl 3 del "$(key 0 2)"
assert_eq 0 "$OUT" "del of a missing key deletes 0"
assert_ok "get deleted" ectl 1 get "$(key 0 2)"
assert_eq "" "$OUT" "get $(key 0 2) after del"
assert_ok "del --prefix" ectl 1 del --prefix "a"
assert_eq 3 "$OUT" "del --prefix a"
assert_ok "del --prefix --prev-kv" ectl 2 del --prefix "A" --prev-kv
assert_eq $'3\n'"$(expect_kv 2 2)" "$OUT" "del --prefix A --prev-kv"
for i in 1 2 3; do
    assert_ok "get --prefix '' after dels" ectl "$i" get --prefix ""
    exp=$(expect_kv 0 0 1 3)$'\n'$(expect_kv 1 1)$'\n'$(expect_kv 4 7)
    assert_eq "$exp" "$OUT" "whole key space after the dels, through node $i"
done
# A delete range over shards 4..5: either done in full, or refused with a
# message and nothing deleted (DESIGN.md section 6: nothing half-applied).
b4=$(shard_prefix 4)
b6=$(shard_prefix 6)
run ectl 2 del "$b4" "$b6"
if ((RC == 0)); then
    assert_eq 6 "$OUT" "del over shards 4..5 deletes their 6 keys"
    exp=$(expect_kv 0 0 1 3)$'\n'$(expect_kv 1 1)$'\n'$(expect_kv 6 7)
else
    log "note: del over shards 4..5 refused: $OUT"
    assert_match 'FailedPrecondition|Unimplemented|failed precondition|not implemented' \
        "$OUT" "refused cross-shard delete range says why"
    exp=$(expect_kv 0 0 1 3)$'\n'$(expect_kv 1 1)$'\n'$(expect_kv 4 7)
fi
assert_ok "get --prefix '' after cross-shard del" ectl 3 get --prefix ""
assert_eq "$exp" "$OUT" "whole key space after the cross-shard delete"

# ---------------------------------------------------------------- 4.
log "4. endpoint status on all three endpoints"
eps=$(endpoints 1 2 3)
assert_ok "endpoint status" ectl_eps "$eps" endpoint status
assert_eq 3 "$(grep -c . <<<"$OUT")" "endpoint status: one line per endpoint"
for i in 1 2 3; do
    assert_match "^$(endpoint "$i"), [0-9a-f]+, " "$OUT" \
        "endpoint status: a line for $(endpoint "$i")"
done
assert_ok "endpoint status -w json" ectl_eps "$eps" endpoint status -w json
js=$OUT
ne=$(grep -o '"Endpoint":"[^"]*"' <<<"$js" | sort -u | wc -l)
assert_eq 3 "$ne" "endpoint status -w json: three endpoints"
nm=$(json_uints member_id <<<"$js" | sort -u | wc -l)
assert_eq 3 "$nm" "endpoint status -w json: three distinct member ids"
nl=$(json_uints leader <<<"$js" | grep -vxc 0)
assert_eq 3 "$nl" "endpoint status -w json: every endpoint names a leader"
assert_ok "endpoint health" ectl_eps "$eps" endpoint health
assert_eq 3 "$(grep -c 'is healthy' <<<"$OUT")" "endpoint health: 3 healthy"

log "4. member list"
for i in 1 3; do
    assert_ok "member list through node $i" ectl "$i" member list
    ml=$OUT
    assert_eq 3 "$(grep -c . <<<"$ml")" "member list through node $i: 3 members"
    for j in 1 2 3; do
        line=$(grep -F "http://127.0.0.1:${PEER_PORT[j]}" <<<"$ml")
        assert_match "^[0-9a-f]+, started, [^,]*, http://127\.0\.0\.1:${PEER_PORT[j]}, http://127\.0\.0\.1:${CLIENT_PORT[j]}, false$" \
            "$line" "member list through node $i: member $j (peer URL, client URL)"
    done
    ids=$(cut -d, -f1 <<<"$ml" | sort -u | wc -l)
    assert_eq 3 "$ids" "member list: three distinct ids"
done
assert_ok "member list -w json" ectl 2 member list -w json
assert_eq 3 "$(grep -o '"peerURLs"' <<<"$OUT" | wc -l)" "member list -w json: 3 members"

# ---------------------------------------------------------------- 5.
if ! is_basalt; then
    log "ENGINE=$ENGINE: skipping the basalt kv and cluster status checks"
    exit 0
fi

log "5. basalt kv agrees with etcdctl"
# basalt kv prints like etcdctl's simple output, except that keys and
# values that are not printable UTF-8 are printed as 0x and hex.
hexkey() { printf '0x%s' "$(printf '%s' "$1" | od -An -tx1 | tr -d ' \n')"; }
assert_ok "basalt kv put" bkv 1 put "bk/one" "uno"
assert_eq OK "$OUT" "basalt kv put prints OK"
assert_ok "etcdctl get of a basalt kv put" ectl 2 get "bk/one"
assert_eq $'bk/one\nuno' "$OUT" "etcdctl sees basalt kv put"
assert_ok "etcdctl put" ectl 3 put "bk/two" "dos"
assert_ok "basalt kv put" bkv 2 put "bk/three" "tres"
assert_ok "basalt kv get" bkv 3 get "bk/two"
assert_eq $'bk/two\ndos' "$OUT" "basalt kv get bk/two"
assert_ok "basalt kv get --prefix" bkv 1 get "bk/" --prefix
assert_eq $'bk/one\nuno\nbk/three\ntres\nbk/two\ndos' "$OUT" "basalt kv get bk/ --prefix"
assert_ok "basalt kv get --prefix --limit" bkv 2 get "bk/" --prefix --limit 2
assert_eq $'bk/one\nuno\nbk/three\ntres' "$OUT" "basalt kv get bk/ --prefix --limit 2"
assert_ok "basalt kv get -o json" bkv 2 get "bk/one" -o json
assert_match '"kvs":\[\{"key":"bk/one","value":"uno",' "$OUT" "basalt kv get -o json: the kv"
assert_match '"count":1,"more":false' "$OUT" "basalt kv get -o json: count and more"
assert_ok "basalt kv get missing" bkv 2 get "bk/none"
assert_eq "" "$OUT" "basalt kv get of a missing key prints nothing"
assert_ok "basalt kv get --serializable" bkv 3 get "bk/one" --serializable
assert_eq $'bk/one\nuno' "$OUT" "basalt kv get --serializable"

# Shard 0 holds k/1 and k/3 now (k/2 was deleted above).
assert_ok "basalt kv scan with --limit" bkv 3 scan "$(shard_prefix 0)" --limit 2
exp="$(hexkey "$(key 0 1)")"$'\n'v-0-1$'\n'"$(hexkey "$(key 0 3)")"$'\n'v-0-3
assert_eq "$exp" "$OUT" "basalt kv scan from shard 0 --limit 2"
assert_ok "basalt kv scan START END" bkv 1 scan "$(shard_prefix 6)" "$(shard_prefix 7)z"
exp=
for k in 6 7; do
    for j in 1 2 3; do exp+="$(hexkey "$(key $k $j)")"$'\n'"$(val $k $j)"$'\n'; done
done
assert_eq "${exp%$'\n'}" "$OUT" "basalt kv scan over shards 6..7"
assert_ok "basalt kv scan across shards with --limit" bkv 2 scan "0" --limit 5
exp=$(expect_kv 1 1)$'\n'bk/one$'\n'uno$'\n'bk/three$'\n'tres
assert_eq "$exp" "$OUT" "basalt kv scan from '0' --limit 5 (shards 1 then 3)"

assert_ok "basalt kv del" bkv 1 del "bk/two"
assert_eq 1 "$OUT" "basalt kv del prints the number deleted"
assert_ok "etcdctl get after basalt kv del" ectl 3 get --prefix "bk/"
assert_eq $'bk/one\nuno\nbk/three\ntres' "$OUT" "bk/ after basalt kv del bk/two"
assert_ok "basalt kv del --prefix" bkv 2 del "bk/" --prefix
assert_eq 2 "$OUT" "basalt kv del bk/ --prefix"
assert_ok "etcdctl get after basalt kv del --prefix" ectl 1 get --prefix "bk/"
assert_eq "" "$OUT" "bk/ after basalt kv del --prefix"
assert_fails "basalt kv put with an empty key" bkv 1 put "" v
assert_match 'empty' "$OUT" "basalt kv put '': the error says the key is empty"

log "5. basalt cluster status -o json"
for i in 1 2 3; do
    assert_ok "cluster status through node $i" cluster_status_json "$i"
    js=$OUT
    nn=$(grep -oE '"client_addr"[[:space:]]*:' <<<"$js" | wc -l)
    assert_eq 3 "$nn" "cluster status through node $i: 3 nodes"
    for j in 1 2 3; do
        assert_match "\"$(endpoint "$j")\"" "$js" "cluster status lists node $j's client address"
    done
    leaders=$(json_uints leader_node <<<"$js")
    ns=$(grep -c . <<<"$leaders")
    ((ns >= 8)) || fail "cluster status through node $i: $ns shards, expected at least 8:
$js"
    bad=$(grep -vxE '[123]' <<<"$leaders" | wc -l)
    assert_eq 0 "$bad" "cluster status through node $i: every shard has a leader among nodes 1..3 (leader_node values: $(tr '\n' ' ' <<<"$leaders"))"
done
assert_ok "cluster status (text)" bcluster 2 status

log "5. the HTTP port: /health, /ready, /metrics"
for i in 1 2 3; do
    for path in /health /ready; do
        run http_get "$i" "$path"
        assert_match '^HTTP/1\.[01] 200' "$OUT" "GET $path on node $i's HTTP port"
    done
    run http_get "$i" /metrics
    assert_match '^HTTP/1\.[01] 200' "$OUT" "GET /metrics on node $i"
    assert_match '^basalt_[a-z_]+ ' "$OUT" "/metrics on node $i has basalt_ samples"
done
exit 0
