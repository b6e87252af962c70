#!/usr/bin/env bash
# test_failover.sh - kill -9 of a node that leads shards, under writes.
#
# Part 1 (default log limit):
#   - writers, one per shard, put through the two surviving endpoints
#     before, during and after the kill; a write counts as acknowledged
#     only when etcdctl exited 0;
#   - availability: for every shard, the longest gap between two
#     acknowledged writes (the kill included) stays under GAP_MAX_MS
#     (5000: election timeout plus a retry or two);
#   - durability: every acknowledged write is read back (linearizable,
#     through the survivors) with its value; nothing else is there;
#   - recovery: the killed node restarted from its data directory catches
#     up: its serializable reads eventually return what the survivors have.
# Part 2 (--log-max-entries 50): a node is killed, SNAP_WRITES writes go to
#   two shards while it is down, so that their logs are compacted past
#   what it has and it must catch up by snapshot; then the same checks.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GAP_MAX_MS=${GAP_MAX_MS:-5000}
RUN_AFTER_KILL_S=${RUN_AFTER_KILL_S:-10}
SNAP_WRITES=${SNAP_WRITES:-150} # per shard, two shards
CATCHUP_TIMEOUT=${CATCHUP_TIMEOUT:-60}

# wkey K N / wval K N: the N-th key of writer K (in shard K) and its value.
wkey() { printf '%sw/%06d' "$(shard_prefix "$1")" "$2"; }
wval() { printf 'x-%d-%d' "$1" "$2"; }

# writer K EPS TAG [MAX]: puts wkey K 0, 1, ... through EPS until the file
# $WORK/stop exists (or MAX writes were tried), appending "N MS" to
# $WORK/TAG.ack.K for every put that returned 0 and to $WORK/TAG.fail.K for
# every other. Runs in the background.
writer() {
    local k=$1 eps=$2 tag=$3 max=${4:-0} n=0
    while [[ ! -e $WORK/stop ]]; do
        ((max > 0 && n >= max)) && break
        if ECTL_TIMEOUT=2s ectl_eps "$eps" put "$(wkey "$k" "$n")" \
            "$(wval "$k" "$n")" >/dev/null 2>>"$WORK/$tag.err.$k"; then
            echo "$n $(now_ms)" >>"$WORK/$tag.ack.$k"
        else
            echo "$n $(now_ms)" >>"$WORK/$tag.fail.$k"
        fi
        n=$((n + 1))
        [[ -n ${WRITER_PAUSE:-} ]] && sleep "$WRITER_PAUSE"
    done
    return 0
}

# listing I K [CONSISTENCY]: "N VALUE" for every key of writer K that node I
# returns (get --prefix), sorted by N.
listing() {
    local i=$1 k=$2 c=${3:-l}
    ECTL_TIMEOUT=10s ectl "$i" get --consistency="$c" --prefix \
        "$(shard_prefix "$k")w/" | paste -d' ' - - | sed 's|^.*w/0*\([0-9]\)|\1|'
}

# check_writes I TAG K...: the writes of writers K... read through node I:
# every acknowledged one with its value, nothing that was never tried,
# every value the one its key was written with. Sets LISTING_K (the
# listings, for the catch-up check).
declare -A LISTING=()
check_writes() {
    local i=$1 tag=$2 k
    shift 2
    for k in "$@"; do
        local lst
        lst=$(listing "$i" "$k") || fail "get --prefix of writer $k's keys through node $i failed"
        LISTING[$k]=$lst
        local nacks=0 nfail=0 missing=0 bad=0 n v
        declare -A have=()
        while read -r n v; do
            [[ -n $n ]] || continue
            have[$n]=$v
            [[ $v == "$(wval "$k" "$n")" ]] || {
                bad=$((bad + 1))
                log "writer $k: key $n has value '$v', expected '$(wval "$k" "$n")'"
            }
        done <<<"$lst"
        if [[ -f $WORK/$tag.ack.$k ]]; then
            while read -r n _; do
                nacks=$((nacks + 1))
                [[ -n ${have[$n]:-} ]] || {
                    missing=$((missing + 1))
                    log "writer $k: acknowledged write $n is missing"
                }
            done <"$WORK/$tag.ack.$k"
        fi
        [[ -f $WORK/$tag.fail.$k ]] && nfail=$(wc -l <"$WORK/$tag.fail.$k")
        # Keys beyond the last one tried cannot exist.
        local tried=$((nacks + nfail)) extra=0
        for n in "${!have[@]}"; do ((n < tried)) || extra=$((extra + 1)); done
        log "writer $k (shard $k): $nacks acknowledged, $nfail failed, ${#have[@]} present"
        ((missing == 0)) || fail "writer $k: $missing acknowledged writes lost (read through node $i)"
        ((bad == 0)) || fail "writer $k: $bad keys with a wrong value (read through node $i)"
        ((extra == 0)) || fail "writer $k: $extra keys present that were never written"
        ((nacks > 0)) || fail "writer $k: no write was acknowledged at all"
        unset have
    done
}

# max_gap TAG K FROM_MS TO_MS: the longest time (ms) without an
# acknowledged write of writer K between FROM_MS and TO_MS (from FROM_MS to
# the first ack, between acks, from the last ack to TO_MS).
max_gap() {
    local tag=$1 k=$2 from=$3 to=$4
    awk -v from="$from" -v to="$to" '
        BEGIN { prev = from; max = 0 }
        $2 >= from && $2 <= to { if ($2 - prev > max) max = $2 - prev; prev = $2 }
        END { if (to - prev > max) max = to - prev; print max }' \
        "$WORK/$tag.ack.$k" 2>/dev/null || echo $((to - from))
}

# wait_caught_up I K...: node I's serializable reads of writers K... return
# exactly LISTING[K] (what the survivors had), within CATCHUP_TIMEOUT.
caught_up() {
    local i=$1 k
    shift
    for k in "$@"; do
        local got
        got=$(listing "$i" "$k" s 2>/dev/null) || return 1
        [[ $got == "${LISTING[$k]}" ]] || return 1
    done
    return 0
}
# caught_up_l I K...: the same with linearizable reads (after a restart of
# every node, when the survivors' listing is all there is to compare with).
caught_up_l() {
    local i=$1 k
    shift
    for k in "$@"; do
        local got
        got=$(listing "$i" "$k" 2>/dev/null) || return 1
        [[ $got == "${LISTING[$k]}" ]] || return 1
    done
    return 0
}
wait_caught_up() {
    local i=$1 t0
    shift
    t0=$(now_ms)
    if ! wait_until_quiet "$CATCHUP_TIMEOUT" caught_up "$i" "$@"; then
        local k
        for k in "$@"; do
            local got
            got=$(listing "$i" "$k" s 2>&1)
            [[ $got == "${LISTING[$k]}" ]] && continue
            fail "node $i has not caught up after ${CATCHUP_TIMEOUT} s: serializable get --prefix of writer $k's keys through node $i returned $(grep -c . <<<"$got") keys (last: $(tail -n1 <<<"$got")), the survivors $(grep -c . <<<"${LISTING[$k]}") (last: $(tail -n1 <<<"${LISTING[$k]}"))"
        done
    fi
    log "node $i caught up after $(($(now_ms) - t0)) ms"
}

# wait_until_quiet SECONDS CMD...: like wait_until but returns 1 on timeout.
wait_until_quiet() {
    local t=$1 deadline
    shift
    deadline=$(($(now_ms) + t * 1000))
    while :; do
        "$@" && return 0
        (($(now_ms) < deadline)) || return 1
        sleep 0.5
    done
}

# pick_victim: a node that leads shards: the leader of the placement shard
# (id 0, listed first) when it also leads data shards, else the node that
# leads the most.
pick_victim() {
    if is_basalt; then
        local js pl
        js=$(cluster_status_json 1) || fail "basalt cluster status -o json failed:
$js"
        log "leaders (count node): $(leaders_by_count <<<"$js" | tr '\n' ';')"
        pl=$(json_uints leader_node <<<"$js" | head -1)
        if [[ $(json_uints leader_node <<<"$js" | tail -n +2 | grep -cx "$pl") -gt 0 ]]; then
            VICTIM=$pl
        else
            VICTIM=$(leaders_by_count <<<"$js" | awk 'NR == 1 { print $2 }')
        fi
        [[ $VICTIM =~ ^[123]$ ]] || fail "no shard leader found in cluster status:
$js"
    else
        VICTIM=$(etcd_leader_node) || fail "no etcd leader found"
    fi
}

survivors_of() {
    local i out=()
    for i in 1 2 3; do ((i == $1)) || out+=("$i"); done
    echo "${out[@]}"
}

# ---------------------------------------------------------------- part 1
log "part 1: kill -9 of a shard leader under writes"
cluster_start 3 --initial-shards 8
pick_victim
read -r s1 s2 <<<"$(survivors_of "$VICTIM")"
log "victim: node $VICTIM; survivors: $s1 $s2"
eps=$(endpoints "$s1" "$s2")

rm -f "$WORK/stop"
wpids=()
for ((k = 0; k < 8; k++)); do
    WRITER_PAUSE=0.2 writer "$k" "$eps" p1 &
    wpids+=($!)
done
sleep 3
t_kill=$(now_ms)
node_kill "$VICTIM"
sleep "$RUN_AFTER_KILL_S"
touch "$WORK/stop"
wait "${wpids[@]}"
t_end=$(now_ms)

log "part 1: availability (longest gap between acknowledged writes, per shard, from 1 s before the kill)"
worst=0
for ((k = 0; k < 8; k++)); do
    g=$(max_gap p1 "$k" $((t_kill - 1000)) "$t_end")
    nerr=0
    [[ -f $WORK/p1.fail.$k ]] && nerr=$(wc -l <"$WORK/p1.fail.$k")
    log "  shard $k: longest gap ${g} ms, $nerr failed puts"
    if ((g > GAP_MAX_MS)); then
        [[ -f $WORK/p1.err.$k ]] && tail -n 5 "$WORK/p1.err.$k" >&2
        fail "shard $k: no acknowledged write for ${g} ms around the kill of node $VICTIM (limit ${GAP_MAX_MS} ms; writes ran $((t_end - t_kill)) ms after the kill)"
    fi
    ((g > worst)) && worst=$g
done
log "part 1: worst gap ${worst} ms"

log "part 1: every acknowledged write is there"
check_writes "$s1" p1 0 1 2 3 4 5 6 7
# The other survivor agrees (linearizable reads).
for ((k = 0; k < 8; k++)); do
    got=$(listing "$s2" "$k") || fail "get through node $s2 failed"
    assert_eq "${LISTING[$k]}" "$got" "writer $k's keys read through node $s2 vs node $s1"
done

if is_basalt; then
    # basalt kv tries its endpoints in turn: a dead first one is skipped.
    assert_ok "basalt kv put with the dead node first in --endpoints" \
        "$BASALT" kv put "after/kill" yes --endpoints "$(endpoints "$VICTIM" "$s1")"
    assert_ok "basalt kv get with the dead node first in --endpoints" \
        "$BASALT" kv get "after/kill" --endpoints "$(endpoints "$VICTIM" "$s2")"
    assert_eq $'after/kill\nyes' "$OUT" "basalt kv get past a dead endpoint"
    assert_eq false "$(status_alive "$s1" "$VICTIM")" \
        "cluster status through node $s1: node $VICTIM alive, $(($(now_ms) - t_kill)) ms after its kill"
fi

log "part 1: node $VICTIM restarts from its data directory and catches up"
node_restart "$VICTIM"
# At once, before it has caught up: a linearizable read through it either
# fails or returns the latest data, never what it had before the kill.
for ((k = 0; k < 8; k++)); do
    if got=$(listing "$VICTIM" "$k" 2>/dev/null); then
        assert_eq "${LISTING[$k]}" "$got" \
            "linearizable get --prefix of writer $k's keys through node $VICTIM just after its restart (stale read?)"
    else
        log "  linearizable read of writer $k's keys through node $VICTIM just after restart: refused (allowed)"
    fi
done
wait_caught_up "$VICTIM" 0 1 2 3 4 5 6 7
if is_basalt; then
    victim_alive() { [[ $(status_alive "$s1" "$VICTIM") == true ]]; }
    wait_until 15 "cluster status through node $s1 shows node $VICTIM alive again" victim_alive
fi
assert_ok "put through the restarted node" ectl "$VICTIM" put "after/restart" yes
assert_ok "get through a survivor" ectl "$s1" get --print-value-only "after/restart"
assert_eq yes "$OUT" "write through the restarted node, read through node $s1"

log "part 1: SIGTERM stops node $s2 cleanly (exit 0); the others serve; it restarts"
node_stop "$s2"
for ((k = 0; k < 8; k++)); do
    assert_ok "put with node $s2 stopped" ectl "$VICTIM" put "$(wkey "$k" 900000)" after-term
done
node_restart "$s2"
for ((k = 0; k < 8; k++)); do LISTING[$k]=$(listing "$s1" "$k"); done
wait_caught_up "$s2" 0 1 2 3 4 5 6 7

log "part 1: the whole cluster stops (SIGTERM) and restarts from its data directories"
for i in 1 2 3; do node_stop "$i"; done
for i in 1 2 3; do node_start "$i"; done
for i in 1 2 3; do
    wait_until "$READY_TIMEOUT" "node $i serves linearizable reads after a full restart" \
        caught_up_l "$i" 0 1 2 3 4 5 6 7
done
assert_ok "put after a full restart" ectl 2 put "after/full-restart" yes
assert_ok "get after a full restart" ectl 3 get --print-value-only "after/full-restart"
assert_eq yes "$OUT" "a write after a full restart"

cluster_destroy

# ---------------------------------------------------------------- part 2
log "part 2: --log-max-entries 50; a node misses ${SNAP_WRITES} writes on each of two shards"
rm -f "$WORK/stop"
cluster_start 3 --initial-shards 8 --log-max-entries 50
# A node that leads shards, so that its restart also exercises recovery of
# a former leader; any node would do.
pick_victim
read -r s1 s2 <<<"$(survivors_of "$VICTIM")"
eps=$(endpoints "$s1" "$s2")
# Some writes before the kill, which the victim has.
writer 1 "$eps" p2 20 &
w1=$!
writer 6 "$eps" p2 20 &
wait "$w1" "$!"
node_kill "$VICTIM"
rm -f "$WORK/p2".*
# Writers 1 and 6 again, from key 0 (rewrites the first 20 with the same
# value), SNAP_WRITES each, in parallel.
writer 1 "$eps" p2 "$SNAP_WRITES" &
w1=$!
writer 6 "$eps" p2 "$SNAP_WRITES" &
wait "$w1" "$!"
check_writes "$s1" p2 1 6
for k in 1 6; do
    na=$(wc -l <"$WORK/p2.ack.$k")
    ((na * 10 >= SNAP_WRITES * 8)) || fail "writer $k: only $na of $SNAP_WRITES writes acknowledged with node $VICTIM down (expected most of them)"
done
log "part 2: node $VICTIM restarts and must catch up by snapshot"
node_restart "$VICTIM"
wait_caught_up "$VICTIM" 1 6
if is_basalt; then
    n=$(metric "$VICTIM" basalt_store_snapshots_applied_total)
    log "part 2: node $VICTIM installed ${n:-?} snapshots since its restart"
    [[ -n $n ]] || fail "node $VICTIM's /metrics has no basalt_store_snapshots_applied_total"
    # Printed as a float by some exporters ("2" or "2.0").
    [[ ${n%%.*} -ge 1 ]] || fail "node $VICTIM caught up without installing a snapshot (basalt_store_snapshots_applied_total = $n), though the two shards wrote $SNAP_WRITES entries each with --log-max-entries 50 while it was down"
fi
# And it keeps following: new writes reach it.
assert_ok "put after catch-up" ectl "$s1" put "$(wkey 1 999999)" "$(wval 1 999999)"
LISTING[1]=$(listing "$s1" 1)
wait_caught_up "$VICTIM" 1

# ---------------------------------------------------------------- part 3
# SIGTERM of a node serving linearizable reads (ReadIndex, pending in its
# store) and writes: the reads the store's close fails must be answered,
# not parked for a retry that never comes (a node once hung here).
if is_basalt; then
    log "part 3: SIGTERM of node $VICTIM under read and write load exits 0"
    "$BASALT" bench put --endpoints "$(endpoint "$VICTIM")" --clients 100 \
        --conns 10 --total 1000000 --timeout-ms 3000 >/dev/null 2>&1 &
    bp=$!
    "$BASALT" bench range --endpoints "$(endpoint "$VICTIM")" --clients 50 \
        --conns 5 --total 1000000 --timeout-ms 3000 >/dev/null 2>&1 &
    br=$!
    sleep 3
    node_stop "$VICTIM" 20
    kill "$bp" "$br" 2>/dev/null
    wait "$bp" "$br" 2>/dev/null || true
    node_restart "$VICTIM"
fi
exit 0
