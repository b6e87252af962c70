# lib.sh - the harness of Basalt's integration tests (sourced, not run).
#
# DESIGN.md section 9: real processes, real gRPC, real RocksDB on loopback,
# etcdctl against the cluster. A test sources this file, calls
# cluster_start N [extra `basalt start` flags], talks to the nodes through
# ectl/bkv, and may kill, stop and restart them; an EXIT trap stops every
# node it started and removes the temporary directory (kept on failure).
#
# Inputs (environment; meson sets the first ones, see meson.build):
#   BASALT        the basalt binary (or the test's first argument)
#   BS_RAWCALL    the bs_rawcall tool (test_malformed.sh)
#   ENGINE        basalt (default) or etcd: run the same scripts against a
#                 3-node etcd, to check the harness and what the scripts
#                 expect of etcdctl; basalt-only checks are skipped
#   ETCDCTL, ETCD the etcd client and server (default: from PATH)
#   READY_TIMEOUT seconds to wait for a cluster to serve (default 30)
#   KEEP_TMP=1    keep the temporary directory even when the test passes
#
# Nodes are numbered 1..N. Per node i: CLIENT_PORT[i], PEER_PORT[i],
# HTTP_PORT[i], DATA_DIR[i], LOG[i] (stdout and stderr of every run of
# that node, appended, with a marker line per start), PID[i] (empty when
# not running).
#
# Every check that fails calls fail(), which prints what was expected and
# what came instead, then the tail of every node's log, and exits 1.

set -u -o pipefail
export LC_ALL=C # byte order for sort, bytes as bytes for grep and sed

BASALT=${BASALT:-${1:-}}
ENGINE=${ENGINE:-basalt}
ETCDCTL=${ETCDCTL:-etcdctl}
ETCD=${ETCD:-etcd}
READY_TIMEOUT=${READY_TIMEOUT:-30}
export ETCDCTL_API=3

TEST_NAME=$(basename "${0%.sh}")
declare -a CLIENT_PORT=() PEER_PORT=() HTTP_PORT=() DATA_DIR=() LOG=() PID=()
declare -a NODE_ARGS=() # extra start flags of the cluster, in order
NNODES=0
declare -A USED_PORTS=()
FAILED=0

# ------------------------------------------------------------- messages

log() { printf '[%s %s] %s\n' "$TEST_NAME" "$(date +%T.%3N)" "$*" >&2; }

# Prints the last lines of every node's log (stderr).
dump_logs() {
    local i n=${1:-40}
    for ((i = 1; i <= NNODES; i++)); do
        [[ -n ${LOG[i]:-} && -f ${LOG[i]} ]] || continue
        printf '\n----- node %d (pid %s): last %d lines of %s -----\n' \
            "$i" "${PID[i]:-stopped}" "$n" "${LOG[i]}" >&2
        tail -n "$n" "${LOG[i]}" >&2
    done
    printf '%s\n' '----- end of logs -----' >&2
}

# fail MESSAGE...: the test failed. Prints the message, the logs, exits 1.
fail() {
    FAILED=1
    printf '\n[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
    dump_logs 40
    exit 1
}

# skip MESSAGE: the test cannot run here (meson counts exit 77 as skipped).
skip() {
    printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2
    exit 77
}

is_basalt() { [[ $ENGINE == basalt ]]; }

# ------------------------------------------------------------ assertions

# assert_eq EXPECTED GOT WHAT (bytes outside ASCII are shown as cat -v does)
assert_eq() {
    [[ $1 == "$2" ]] && return 0
    fail "$3: expected
--- expected ---
$(cat -v <<<"$1")
--- got ---
$(cat -v <<<"$2")
---"
}

# assert_match REGEX GOT WHAT (extended regex, grep -E, on the whole text)
assert_match() {
    grep -Eq -- "$1" <<<"$2" && return 0
    fail "$3: expected output matching /$1/, got:
$2"
}

# assert_no_match REGEX GOT WHAT
assert_no_match() {
    grep -Eq -- "$1" <<<"$2" || return 0
    fail "$3: expected output NOT matching /$1/, got:
$2"
}

# OUT holds the stdout+stderr of the last run/assert_ok/assert_fails.
OUT=
RC=0

# run CMD...: runs CMD, keeps its output in OUT and its status in RC.
run() {
    OUT=$("$@" 2>&1)
    RC=$?
    return 0
}

# assert_ok WHAT CMD...: CMD must exit 0.
assert_ok() {
    local what=$1
    shift
    run "$@"
    ((RC == 0)) || fail "$what: command failed (exit $RC): $*
$OUT"
}

# assert_fails WHAT CMD...: CMD must exit non-zero.
assert_fails() {
    local what=$1
    shift
    run "$@"
    ((RC != 0)) || fail "$what: command succeeded but should have failed: $*
$OUT"
}

# now_ms: wall clock in milliseconds (bash 5's EPOCHREALTIME, no fork).
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

# ----------------------------------------------------------------- ports

# port_in_use P: something listens on 127.0.0.1:P (or on any address).
port_in_use() {
    local p=$1
    if command -v ss >/dev/null 2>&1; then
        ss -Htln "sport = :$p" 2>/dev/null | grep -q . && return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
    return 1
}

# free_port: sets PORT to a loopback port that nothing listens on, chosen
# at random in 20000..32767 (below Linux's default ephemeral range, so that
# outgoing connections do not take it meanwhile) and never handed out
# before in this test. Not in a subshell: it records what it handed out.
PORT=
free_port() {
    local p tries
    for ((tries = 0; tries < 200; tries++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        [[ -n ${USED_PORTS[$p]:-} ]] && continue
        port_in_use "$p" && continue
        USED_PORTS[$p]=1
        PORT=$p
        return 0
    done
    fail "no free port found after 200 tries"
}

# -------------------------------------------------------------- clients

# endpoint I: the client address of node I.
endpoint() { echo "127.0.0.1:${CLIENT_PORT[$1]}"; }

# endpoints I...: the client addresses of nodes I..., comma separated.
endpoints() {
    local i out=
    for i in "$@"; do out+=${out:+,}$(endpoint "$i"); done
    echo "$out"
}

# all_nodes: 1..NNODES; live_nodes: those running.
all_nodes() { seq 1 "$NNODES"; }
live_nodes() {
    local i
    for ((i = 1; i <= NNODES; i++)); do
        [[ -n ${PID[i]:-} ]] && echo "$i"
    done
}

# ectl I ARGS...: etcdctl against node I.
ectl() {
    local i=$1
    shift
    "$ETCDCTL" --endpoints="$(endpoint "$i")" --dial-timeout=2s \
        --command-timeout="${ECTL_TIMEOUT:-5s}" "$@"
}

# ectl_eps EPS ARGS...: etcdctl against the endpoints EPS ("h:p,h:p").
ectl_eps() {
    local eps=$1
    shift
    "$ETCDCTL" --endpoints="$eps" --dial-timeout=2s \
        --command-timeout="${ECTL_TIMEOUT:-5s}" "$@"
}

# bkv I ARGS...: basalt kv against node I.
bkv() {
    local i=$1
    shift
    "$BASALT" kv "$@" --endpoints "$(endpoint "$i")"
}

# bcluster I ARGS...: basalt cluster against node I.
bcluster() {
    local i=$1
    shift
    "$BASALT" cluster "$@" --endpoints "$(endpoint "$i")"
}

# ---------------------------------------------------------------- nodes

# The first byte of a key decides its shard when --initial-shards 8 splits
# the key space evenly on the first two bytes: shard k holds the keys
# whose first byte is in [0x20*k, 0x20*(k+1)). SHARD_BYTES[k] is one first
# byte per shard, as a printf escape.
SHARD_BYTES=('\x10' '0' 'A' 'a' '\x90' '\xb0' '\xd0' '\xf0')

# shard_prefix K: the first byte of shard K's keys (raw byte on stdout).
shard_prefix() { printf "${SHARD_BYTES[$1]}"; }

# node_cmd I: prints (NUL separated) the command line that starts node I.
# A node added by node_add starts with --join (no --id: placement gives
# it one) and its own extra flags (NODE_EXTRA[i]).
node_cmd() {
    local i=$1 j ic=
    if is_basalt && [[ -n ${JOINED[i]:-} ]]; then
        local -a extra=()
        [[ -n ${NODE_EXTRA[i]:-} ]] && read -r -a extra <<<"${NODE_EXTRA[i]}"
        printf '%s\0' "$BASALT" start --join "${JOINED[i]}" \
            --data-dir "${DATA_DIR[i]}" \
            --client-addr "127.0.0.1:${CLIENT_PORT[i]}" \
            --peer-addr "127.0.0.1:${PEER_PORT[i]}" \
            --http-addr "127.0.0.1:${HTTP_PORT[i]}" \
            "${NODE_ARGS[@]}" "${extra[@]}"
    elif is_basalt; then
        for ((j = 1; j <= NNODES; j++)); do
            ic+=${ic:+,}$j=127.0.0.1:${PEER_PORT[j]}
        done
        printf '%s\0' "$BASALT" start --id "$i" --data-dir "${DATA_DIR[i]}" \
            --client-addr "127.0.0.1:${CLIENT_PORT[i]}" \
            --peer-addr "127.0.0.1:${PEER_PORT[i]}" \
            --http-addr "127.0.0.1:${HTTP_PORT[i]}" \
            --initial-cluster "$ic" "${NODE_ARGS[@]}"
    else
        # etcd: the same topology; Basalt's flags translated where etcd
        # has an equivalent (tick and election timeout in ms, snapshot
        # count for the log limit), dropped otherwise.
        for ((j = 1; j <= NNODES; j++)); do
            ic+=${ic:+,}n$j=http://127.0.0.1:${PEER_PORT[j]}
        done
        local tick=100 eticks=10 a extra=() k
        for ((k = 0; k < ${#NODE_ARGS[@]}; k++)); do
            a=${NODE_ARGS[k]}
            case $a in
            --tick-ms) tick=${NODE_ARGS[k + 1]} ;;
            --election-ticks) eticks=${NODE_ARGS[k + 1]} ;;
            --log-max-entries)
                extra+=(--snapshot-count "${NODE_ARGS[k + 1]}")
                ;;
            esac
        done
        printf '%s\0' "$ETCD" --name "n$i" --data-dir "${DATA_DIR[i]}" \
            --listen-client-urls "http://127.0.0.1:${CLIENT_PORT[i]}" \
            --advertise-client-urls "http://127.0.0.1:${CLIENT_PORT[i]}" \
            --listen-peer-urls "http://127.0.0.1:${PEER_PORT[i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${PEER_PORT[i]}" \
            --listen-metrics-urls "http://127.0.0.1:${HTTP_PORT[i]}" \
            --initial-cluster "$ic" --initial-cluster-state new \
            --initial-cluster-token "bs-it-$$" \
            --heartbeat-interval "$tick" \
            --election-timeout "$((tick * eticks))" "${extra[@]}"
    fi
}

# node_start I: starts node I in the background (first start or restart
# from its data directory: the command line is the same).
node_start() {
    local i=$1 cmd=()
    [[ -z ${PID[i]:-} ]] || fail "node_start $i: node $i is already running"
    mapfile -d '' cmd < <(node_cmd "$i")
    printf '\n===== %s: start: %s\n' "$(date +%T.%3N)" "${cmd[*]}" \
        >>"${LOG[i]}"
    "${cmd[@]}" >>"${LOG[i]}" 2>&1 </dev/null &
    PID[i]=$!
    log "node $i started (pid ${PID[i]}, client $(endpoint "$i"))"
}

# node_add [FLAGS...]: starts node NNODES+1 with --join through the live
# nodes' client endpoints (and FLAGS, e.g. --labels rack=r2). Placement
# gives it the next free id, which is its number here as long as no id
# was skipped. Sets ADDED to its number.
declare -a JOINED=() NODE_EXTRA=()
node_add() {
    is_basalt || skip "node_add: etcd has no --join"
    local i=$((NNODES + 1)) j eps=
    for j in $(live_nodes); do eps+=${eps:+,}$(endpoint "$j"); done
    free_port
    CLIENT_PORT[i]=$PORT
    free_port
    PEER_PORT[i]=$PORT
    free_port
    HTTP_PORT[i]=$PORT
    DATA_DIR[i]=$WORK/node$i
    LOG[i]=$WORK/node$i.log
    : >"${LOG[i]}"
    JOINED[i]=$eps
    NODE_EXTRA[i]="$*"
    NNODES=$i
    node_start "$i"
    ADDED=$i
}

# node_alive I: node I's process is running.
node_alive() { [[ -n ${PID[$1]:-} ]] && kill -0 "${PID[$1]}" 2>/dev/null; }

# node_kill I: kill -9 node I and reap it.
node_kill() {
    local i=$1
    [[ -n ${PID[i]:-} ]] || fail "node_kill $i: node $i is not running"
    kill -9 "${PID[i]}" 2>/dev/null
    wait "${PID[i]}" 2>/dev/null
    printf '===== %s: killed with SIGKILL\n' "$(date +%T.%3N)" >>"${LOG[i]}"
    log "node $i killed (SIGKILL)"
    PID[i]=
}

# node_stop I [TIMEOUT_S]: SIGTERM node I and wait for it (default 20 s).
# Basalt must exit 0 (node.h: a clean stop); a node that does not exit in
# time is killed and the test fails. Sets STOP_RC.
STOP_RC=0
node_stop() {
    local i=$1 t=${2:-20} p=${PID[$1]:-} k
    [[ -n $p ]] || fail "node_stop $i: node $i is not running"
    kill -TERM "$p" 2>/dev/null
    for ((k = 0; k < t * 10; k++)); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        PID[i]=
        fail "node $i did not exit within ${t} s of SIGTERM (killed)"
    fi
    wait "$p"
    STOP_RC=$?
    PID[i]=
    printf '===== %s: stopped by SIGTERM, exit %d\n' "$(date +%T.%3N)" \
        "$STOP_RC" >>"${LOG[i]}"
    log "node $i stopped (SIGTERM, exit $STOP_RC)"
    if is_basalt && ((STOP_RC != 0)); then
        fail "node $i exited with status $STOP_RC after SIGTERM (expected 0)"
    fi
}

# node_restart I: starts node I again from its data directory and waits
# until it answers a serializable read (it need not be caught up).
node_restart() {
    local i=$1
    node_start "$i"
    wait_until "$READY_TIMEOUT" "node $i answers after restart" \
        node_answers "$i"
}

# node_reap I: node I has exited by itself: sets REAPED to its exit status
# and forgets its pid (not in a subshell: wait needs the parent).
REAPED=
node_reap() {
    local p=${PID[$1]:-}
    wait "$p" 2>/dev/null
    REAPED=$?
    PID[$1]=
}

# node_answers I: node I answers a serializable get (any result).
node_answers() {
    if ! node_alive "$1"; then
        node_reap "$1"
        fail "node $1 exited with status $REAPED (see its log)"
    fi
    ECTL_TIMEOUT=2s ectl "$1" get --consistency=s "__bs_probe" >/dev/null 2>&1
}

# wait_until SECONDS WHAT CMD...: retries CMD every 0.2 s until it exits 0;
# fails the test after SECONDS.
wait_until() {
    local t=$1 what=$2 deadline
    shift 2
    deadline=$(($(now_ms) + t * 1000))
    while :; do
        "$@" && return 0
        (($(now_ms) < deadline)) || fail "timed out after ${t} s: $what"
        sleep 0.2
    done
}

# The readiness keys: one per shard, written and deleted by cluster_ready.
ready_key() { printf '%s__bs_ready' "$(shard_prefix "$1")"; }

# cluster_ready_once: through every live node, a put of one key per shard
# succeeds and every live node reads back all of them (linearizable).
cluster_ready_once() {
    local i j k v
    for i in $(live_nodes); do
        if ! node_alive "$i"; then
            node_reap "$i"
            fail "node $i exited during startup with status $REAPED (see its log)"
        fi
    done
    for i in $(live_nodes); do
        for ((k = 0; k < 8; k++)); do
            ECTL_TIMEOUT=3s ectl "$i" put "$(ready_key "$k")" "r$i" \
                >/dev/null 2>&1 || return 1
        done
        for j in $(live_nodes); do
            for ((k = 0; k < 8; k++)); do
                v=$(ECTL_TIMEOUT=3s ectl "$j" get --print-value-only \
                    "$(ready_key "$k")" 2>/dev/null) || return 1
                [[ $v == "r$i" ]] || return 1
            done
        done
    done
    return 0
}

# cluster_ready: waits (READY_TIMEOUT) until cluster_ready_once passes, then
# deletes the readiness keys so that tests see an empty key space.
cluster_ready() {
    local t0 k
    t0=$(now_ms)
    wait_until "$READY_TIMEOUT" "cluster serves puts and gets through every node" \
        cluster_ready_once
    for ((k = 0; k < 8; k++)); do
        assert_ok "delete readiness key" ectl 1 del "$(ready_key "$k")"
    done
    log "cluster ready after $(($(now_ms) - t0)) ms"
}

# cluster_bound: waits (up to 10 s) until every node listens on its client
# port. Returns 1 if a node exited because one of its ports was taken in
# the meantime (another test on this machine), fails the test if a node
# exited for any other reason.
cluster_bound() {
    local i deadline all
    deadline=$(($(now_ms) + 10000))
    while (($(now_ms) < deadline)); do
        all=1
        for ((i = 1; i <= NNODES; i++)); do
            if ! node_alive "$i"; then
                node_reap "$i"
                if tail -n 5 "${LOG[i]}" |
                    grep -qiE 'cannot listen|address already in use|address in use'; then
                    log "node $i could not bind its ports (taken meanwhile): retrying with others"
                    return 1
                fi
                fail "node $i exited during startup with status $REAPED (see its log)"
            fi
            port_in_use "${CLIENT_PORT[i]}" || all=0
        done
        ((all)) && return 0
        sleep 0.1
    done
    return 0 # cluster_ready reports what is wrong
}

# cluster_start N [FLAGS...]: a fresh N-node cluster (FLAGS are added to
# every node's `basalt start`), waited until ready. Retries with new ports
# (three attempts) when a port was taken between the choice and the bind.
cluster_start() {
    local n=$1 i attempt
    shift
    NODE_ARGS=("$@")
    ((NNODES == 0)) || fail "cluster_start: a cluster is already running"
    NNODES=$n
    for attempt in 1 2 3; do
        for ((i = 1; i <= n; i++)); do
            free_port
            CLIENT_PORT[i]=$PORT
            free_port
            PEER_PORT[i]=$PORT
            free_port
            HTTP_PORT[i]=$PORT
            DATA_DIR[i]=$WORK/node$i
            LOG[i]=$WORK/node$i.log
            : >"${LOG[i]}"
        done
        log "starting $n ${ENGINE} nodes in $WORK (flags: ${NODE_ARGS[*]:-none})"
        for ((i = 1; i <= n; i++)); do node_start "$i"; done
        cluster_bound && break
        ((attempt < 3)) || fail "could not start the cluster: ports taken three times"
        for ((i = 1; i <= n; i++)); do
            [[ -n ${PID[i]:-} ]] && node_kill "$i"
            mv "${LOG[i]}" "${LOG[i]}.attempt$attempt"
            rm -rf "${DATA_DIR[i]}"
        done
    done
    cluster_ready
}

# cluster_destroy: stops every node (SIGTERM, then SIGKILL) and forgets the
# cluster, so that the test may start another one. Data stays in $WORK.
cluster_destroy() {
    local i
    for ((i = 1; i <= NNODES; i++)); do
        [[ -n ${PID[i]:-} ]] && node_stop "$i"
    done
    local old=$WORK/cluster.$(now_ms)
    mkdir -p "$old"
    for ((i = 1; i <= NNODES; i++)); do
        mv "${DATA_DIR[i]}" "${LOG[i]}" "$old/" 2>/dev/null
    done
    NNODES=0
    CLIENT_PORT=() PEER_PORT=() HTTP_PORT=() DATA_DIR=() LOG=() PID=()
}

# http_get I PATH: GET PATH from node I's HTTP port with bash's /dev/tcp (no
# curl on CI); prints the status line, the headers and the body.
http_get() {
    local i=$1 path=$2
    (
        exec 3<>"/dev/tcp/127.0.0.1/${HTTP_PORT[i]}" || exit 1
        printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
        timeout 10 cat <&3
    )
}

# metric I NAME: the value of the unlabelled sample NAME in node I's
# /metrics (empty if absent).
metric() {
    http_get "$1" /metrics | tr -d '\r' | awk -v n="$2" '$1 == n { print $2 }'
}

# ---------------------------------------------------------- cluster info

# cluster_status_json I: `basalt cluster status -o json` through node I.
cluster_status_json() { bcluster "$1" status -o json; }

# json_uints FIELD: every unsigned number value of "FIELD" in stdin's JSON,
# one per line, in order (enough for the flat fields we read; no jq).
json_uints() {
    grep -oE "\"$1\"[[:space:]]*:[[:space:]]*\"?[0-9]+" |
        grep -oE '[0-9]+$'
}

# leaders_by_count: from cluster status JSON on stdin, the node ids that
# lead shards, the one leading the most first ("count id" per line).
leaders_by_count() { json_uints leader_node | grep -vx 0 | sort | uniq -c |
    sort -k1,1nr -k2,2n; }

# status_alive I J: "true" or "false": whether node J is alive according to
# `basalt cluster status -o json` through node I (empty if not listed).
status_alive() {
    local js
    js=$(cluster_status_json "$1" 2>/dev/null | tr -d ' \t\n') || return 1
    grep -oE "\"id\":$2,\"client_addr\":\"[^\"]*\",\"peer_addr\":\"[^\"]*\",\"http_addr\":\"[^\"]*\",\"alive\":(true|false)" <<<"$js" |
        grep -oE '(true|false)$'
}

# etcd_leader_node: (ENGINE=etcd) the node number of the etcd leader.
etcd_leader_node() {
    local i out
    for i in $(live_nodes); do
        out=$(ectl "$i" endpoint status -w json 2>/dev/null) || continue
        local me lead
        me=$(json_uints member_id <<<"$out" | head -1)
        lead=$(json_uints leader <<<"$out" | head -1)
        if [[ -n $me && $me == "$lead" ]]; then
            echo "$i"
            return 0
        fi
    done
    return 1
}

# ------------------------------------------------------------- lifecycle

cleanup() {
    local rc=$? i p k s
    trap - EXIT
    local -a termed=()
    for ((i = 1; i <= NNODES; i++)); do
        p=${PID[i]:-}
        [[ -n $p ]] || continue
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null
            termed[i]=1
        fi
    done
    for ((i = 1; i <= NNODES; i++)); do
        p=${PID[i]:-}
        [[ -n $p ]] || continue
        for ((k = 0; k < 200; k++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$p" 2>/dev/null; then
            kill -9 "$p" 2>/dev/null
            wait "$p" 2>/dev/null
            log "node $i did not exit within 20 s of SIGTERM: killed"
            ((rc == 0)) && rc=1
        else
            wait "$p"
            s=$?
            if [[ -z ${termed[i]:-} ]]; then
                # It had exited by itself: a crash, unless the test failed
                # because of it already.
                log "node $i had exited by itself (status $s) before the end of the test"
                ((rc == 0)) && rc=1 && dump_logs 40
            elif is_basalt && ((s != 0)); then
                log "node $i exited with status $s after SIGTERM (expected 0)"
                ((rc == 0)) && rc=1 && dump_logs 40
            fi
        fi
        PID[i]=
    done
    # Background helpers the test started (writers).
    local j
    for j in $(jobs -p); do kill "$j" 2>/dev/null; done
    wait 2>/dev/null
    if ((rc != 0 && rc != 77)) || [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "keeping $WORK"
    else
        rm -rf "$WORK"
    fi
    if ((rc == 0)); then
        log PASS
    fi
    exit "$rc"
}

# lib_init: checks the tools, makes $WORK, installs the trap. Called below.
lib_init() {
    command -v "$ETCDCTL" >/dev/null 2>&1 ||
        skip "etcdctl not found (Debian package etcd-client)"
    case $ENGINE in
    basalt)
        [[ -n $BASALT && -x $BASALT ]] ||
            skip "basalt binary not given (BASALT=... or first argument)"
        ;;
    etcd)
        command -v "$ETCD" >/dev/null 2>&1 ||
            skip "etcd not found (Debian package etcd-server)"
        ;;
    *) skip "unknown ENGINE=$ENGINE (basalt or etcd)" ;;
    esac
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/bs-it-$TEST_NAME.XXXXXX") ||
        fail "mktemp failed"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

lib_init
