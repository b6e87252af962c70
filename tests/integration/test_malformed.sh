#!/usr/bin/env bash
# test_malformed.sh - bad requests get a gRPC error that says what was
# wrong, nothing is half-applied, and the node keeps serving.
#
# Checks (DESIGN.md section 6), each followed by a put/get through the
# same node:
#   1. garbage bytes (bs_rawcall) to KV/Put, KV/Range, KV/DeleteRange,
#      KV/Txn (and basalt.Admin/ClusterStatus): a non-OK status with a
#      message (Basalt: INVALID_ARGUMENT); an unknown method: UNIMPLEMENTED;
#   2. an empty key (put, get): refused (INVALID_ARGUMENT);
#   3. a key of 4097 bytes and a value of 1 MiB + 1 byte (etcdctl):
#      refused, and not stored; a key of 4096 bytes and a value of
#      512 KiB: accepted (etcd has no such limits: skipped there);
#   4. what is not built: etcdctl lease grant and watch answer
#      UNIMPLEMENTED with a sentence (etcd: they work);
#   5. a txn whose keys span shards: FAILED_PRECONDITION, nothing applied;
#      a txn within one shard works (etcd: both work);
#   6. finally every node still serves puts and gets.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -n ${BS_RAWCALL:-} && -x ${BS_RAWCALL:-} ]] ||
    skip "bs_rawcall not given (BS_RAWCALL=...)"

cluster_start 3 --initial-shards 8

# still_serves I WHAT: node I is alive and a put/get through it works.
SEQ=0
still_serves() {
    local i=$1 what=$2
    SEQ=$((SEQ + 1))
    node_alive "$i" || fail "node $i died after: $what"
    assert_ok "put through node $i after: $what" ectl "$i" put "alive/$SEQ" "v$SEQ"
    assert_ok "get through node $i after: $what" ectl "$i" get --print-value-only "alive/$SEQ"
    assert_eq "v$SEQ" "$OUT" "get through node $i after: $what"
}

# seen WHAT: logs the last line of OUT (what the client printed).
seen() { log "  $1 -> $(tail -n 1 <<<"$OUT" | cut -c1-300)"; }

# rawcall I METHOD HEX: bs_rawcall against node I; sets RAW_STATUS (the
# numeric gRPC status), RAW_MSG and OUT.
rawcall() {
    local i=$1 method=$2 hex=$3
    assert_ok "bs_rawcall $method" "$BS_RAWCALL" --timeout 10000 \
        "$(endpoint "$i")" "$method" "$hex"
    RAW_STATUS=$(sed -n 's/^status=\([0-9]*\) .*/\1/p' <<<"$OUT")
    RAW_MSG=$(sed -n 's/^message=//p' <<<"$OUT")
}

# ---------------------------------------------------------------- 1.
log "1. garbage bytes to the KV methods"
ff256=$(printf 'ff%.0s' $(seq 256))
garbage=(
    "$ff256"                    # a tag varint that never ends
    "0f"                        # field 1 with wire type 7 (invalid)
    "0a05616263"                # field 1: 5 bytes announced, 3 present
    "0affffffff0f61"            # field 1: 4 GiB announced
    "0a03616263ff"              # a valid field, then a truncated varint
)
i=1
for m in Put Range DeleteRange Txn; do
    for g in "${garbage[@]}"; do
        rawcall "$i" "/etcdserverpb.KV/$m" "$g"
        what="KV/$m with ${g:0:16}... ($(((${#g} + 1) / 2)) bytes)"
        log "  $what -> status $RAW_STATUS: $RAW_MSG"
        [[ $RAW_STATUS != 0 ]] || fail "$what: status OK, expected an error:
$OUT"
        [[ -n $RAW_MSG ]] || fail "$what: an error without a message:
$OUT"
        if is_basalt; then
            assert_eq 3 "$RAW_STATUS" "$what: gRPC status (INVALID_ARGUMENT) [$RAW_MSG]"
        fi
    done
    still_serves "$i" "garbage to KV/$m"
    i=$((i % 3 + 1))
done
if is_basalt; then
    # Requests with fields: garbage must be refused.
    for m in /basalt.Admin/ShardInfo /basalt.Admin/Ping; do
        for g in "$ff256" 0f 0a05616263; do
            rawcall 2 "$m" "$g"
            log "  $m with ${g:0:16}... -> status $RAW_STATUS: $RAW_MSG"
            assert_eq 3 "$RAW_STATUS" "garbage to $m: status INVALID_ARGUMENT [$RAW_MSG]"
            [[ -n $RAW_MSG ]] || fail "garbage to $m: no message"
        done
    done
    still_serves 2 "garbage to basalt.Admin"
fi
# Methods whose request has no fields may ignore the bytes (Basalt does);
# they must not crash the node.
for m in /basalt.Admin/ClusterStatus /etcdserverpb.Maintenance/Status \
    /etcdserverpb.Cluster/MemberList; do
    rawcall 3 "$m" "$ff256"
    log "  $m with 256 bytes of 0xff -> status $RAW_STATUS: $RAW_MSG"
done
still_serves 3 "garbage to methods with empty requests"

log "1. a valid request still decodes (bs_rawcall against KV/Put)"
# PutRequest{key: "raw", value: "ok"}
rawcall 3 /etcdserverpb.KV/Put "0a0372617712026f6b"
assert_eq 0 "$RAW_STATUS" "a well-formed PutRequest through bs_rawcall [$RAW_MSG]"
assert_ok "get raw" ectl 1 get --print-value-only raw
assert_eq ok "$OUT" "the key put by bs_rawcall"

log "1. an unknown method"
for m in /etcdserverpb.KV/NoSuchMethod /etcdserverpb.NoSuchService/Put /basalt.Nope/Nope; do
    rawcall 1 "$m" "0a0161"
    assert_eq 12 "$RAW_STATUS" "unknown method $m: status UNIMPLEMENTED [$RAW_MSG]"
done
still_serves 1 "unknown methods"

# ---------------------------------------------------------------- 2.
log "2. an empty key"
# etcdctl sends these as they are; etcd answers "key is not provided".
refused_re='code = (InvalidArgument|ResourceExhausted|FailedPrecondition) desc = .{8,}|etcdserver: [a-z]'
assert_fails "put with an empty key" ectl 2 put "" value
seen "put with an empty key"
assert_match "$refused_re" "$OUT" "put with an empty key: the error says why"
assert_fails "get of an empty key" ectl 2 get ""
seen "get of an empty key"
assert_match "$refused_re" "$OUT" "get of an empty key: the error says why"
# The same, raw: PutRequest{value: "v"} (no key).
rawcall 2 /etcdserverpb.KV/Put "1201760a00"
assert_eq 3 "$RAW_STATUS" "PutRequest without a key: INVALID_ARGUMENT [$RAW_MSG]"
still_serves 2 "empty keys"

# ---------------------------------------------------------------- 3.
log "3. oversized keys and values"
key4097=b$(head -c 4096 /dev/zero | tr '\0' k)
key4096=${key4097:0:4096}
if is_basalt; then
    assert_fails "put a 4097-byte key" ectl 3 put "$key4097" v
    seen "put of a 4097-byte key"
    assert_match "$refused_re" "$OUT" "put of a 4097-byte key: the error says why"
    assert_ok "get the 4097-byte key's prefix" ectl 1 get --prefix "$key4096" --keys-only
    assert_eq "" "$OUT" "the refused 4097-byte key was not stored"
    still_serves 3 "an oversized key"
else
    log "ENGINE=$ENGINE: no key size limit, skipping the 4097-byte key"
fi
assert_ok "put a 4096-byte key" ectl 3 put "$key4096" v4096
assert_ok "get the 4096-byte key" ectl 1 get --print-value-only "$key4096"
assert_eq v4096 "$OUT" "a 4096-byte key is accepted"

# Values come on stdin (too long for an argument).
if is_basalt; then
    run bash -c 'head -c $((1024 * 1024 + 1)) /dev/zero | tr "\0" x |
        "$0" --endpoints="$1" --command-timeout=10s put big/value' \
        "$ETCDCTL" "$(endpoint 1)"
    ((RC != 0)) || fail "put of a value of 1 MiB + 1 byte succeeded"
    seen "put of a value of 1 MiB + 1 byte"
    assert_match "$refused_re" "$OUT" "put of a value of 1 MiB + 1 byte: the error says why"
    assert_ok "get big/value" ectl 2 get --keys-only big/value
    assert_eq "" "$OUT" "the refused oversized value was not stored"
    still_serves 1 "an oversized value"
else
    log "ENGINE=$ENGINE: no 1 MiB value limit, skipping the oversized value"
fi
assert_ok "put a 512 KiB value" bash -c 'head -c $((512 * 1024)) /dev/zero |
    tr "\0" y | "$0" --endpoints="$1" put big/half' "$ETCDCTL" "$(endpoint 1)"
n=$(ectl 3 get --print-value-only big/half | tr -d '\n' | wc -c)
assert_eq $((512 * 1024)) "$n" "the 512 KiB value read back through node 3"

# ---------------------------------------------------------------- 4.
log "4. what is not built answers UNIMPLEMENTED"
if is_basalt; then
    unimpl_re='code = Unimplemented desc = [A-Za-z].{8,}'
    assert_fails "lease grant" ectl 2 lease grant 10
    seen "etcdctl lease grant"
    assert_match "$unimpl_re" "$OUT" "etcdctl lease grant: Unimplemented with a sentence"
    run timeout 15 "$ETCDCTL" --endpoints="$(endpoint 3)" watch some/key
    ((RC != 124)) || fail "etcdctl watch against node 3 hung (no Unimplemented within 15 s)"
    seen "etcdctl watch"
    assert_match 'Unimplemented' "$OUT" "etcdctl watch: Unimplemented"
    still_serves 2 "lease grant and watch"
else
    assert_ok "lease grant" ectl 2 lease grant 10
    assert_match '^lease [0-9a-f]+ granted with TTL\(10s\)$' "$OUT" "etcd grants leases"
fi

# ---------------------------------------------------------------- 5.
log "5. transactions"
a=$(shard_prefix 3)tx/1 # shard 3
b=$(shard_prefix 3)tx/2 # shard 3
c=$(shard_prefix 5)tx/3 # shard 5
assert_ok "put $a" ectl 1 put "$a" one
# Within one shard: compare, then put (etcdctl txn reads compares, success
# ops and failure ops from stdin, each block ending with an empty line).
printf -v txn_in 'value("%s") = "one"\n\nput %s two\n\nput %s nope\n\n' "$a" "$b" "$b"
assert_ok "txn within a shard" bash -c 'printf "%s" "$2" | "$0" --endpoints="$1" txn' \
    "$ETCDCTL" "$(endpoint 2)" "$txn_in"
assert_eq $'SUCCESS\n\nOK' "$OUT" "txn within one shard"
assert_ok "get $b" ectl 3 get --print-value-only "$b"
assert_eq two "$OUT" "the txn's put"

printf -v txn_x 'value("%s") = "one"\n\nput %s three\nput %s three\n\n\n' "$a" "$b" "$c"
run bash -c 'printf "%s" "$2" | "$0" --endpoints="$1" txn' \
    "$ETCDCTL" "$(endpoint 3)" "$txn_x"
if is_basalt; then
    ((RC != 0)) || fail "a txn over shards 3 and 5 succeeded, expected FailedPrecondition:
$OUT"
    seen "a txn over two shards"
    assert_match 'code = FailedPrecondition desc = [A-Za-z].{8,}' "$OUT" \
        "a txn over two shards: FailedPrecondition with a sentence"
    assert_ok "get $b" ectl 1 get --print-value-only "$b"
    assert_eq two "$OUT" "the refused cross-shard txn changed nothing ($b)"
    assert_ok "get $c" ectl 1 get --keys-only "$c"
    assert_eq "" "$OUT" "the refused cross-shard txn changed nothing ($c)"
    still_serves 3 "a cross-shard txn"
else
    ((RC == 0)) || fail "etcd refused a txn: $OUT"
    assert_eq $'SUCCESS\n\nOK\n\nOK' "$OUT" "etcd: a txn over two keys"
fi

# ---------------------------------------------------------------- 6.
log "6. every node still serves"
for i in 1 2 3; do still_serves "$i" "all of the above"; done
exit 0
