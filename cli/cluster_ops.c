/*
 * cluster_ops.c - the `basalt cluster` commands that change the cluster
 * or look at its scheduler: add-node, remove-node, rebalance, split,
 * scheduler show|pause|resume, isr-status, and status --detailed. The
 * flags are parsed, and the output helpers live, in cluster.c
 * (cluster_int.h).
 *
 * The commands that wait poll once a second, over the one connection of
 * their context, and print one line per change they see (never a line
 * per poll). A poll that fails (a node restarting, a leader changing) is
 * retried until the deadline; at the deadline the command fails with
 * what it saw last. What each one waits for:
 *
 *   add-node     ClusterStatus lists a node that was not there at the
 *                start (and is not removed)
 *   remove-node  ClusterStatus shows the node removed (or no longer
 *                lists it); fails at once if the node is up again after
 *                draining (someone cancelled)
 *   rebalance    Scheduler show has no operator in flight on any shard
 *                of the plan; fails if the scheduler cancelled any
 *                operator meanwhile
 *   split        ClusterStatus routes the new shard
 *
 * Exit status as cluster.c: 0, 1 (one line "basalt cluster <cmd>:
 * <reason>", the gRPC status message for a refused call), 2 (usage,
 * decided in cluster.c before anything here runs).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_int.h"

/* ------------------------------------------------------------ helpers */

/* Sleeps ms milliseconds. */
static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Waits until the next poll: a second, or what is left before deadline
 * (microseconds, bs_cli__now_us). Returns false once the deadline has
 * passed (then nothing was slept). */
static bool next_poll(int64_t deadline)
{
    int64_t left = deadline - bs_cli__now_us();

    if (left <= 0)
        return false;
    sleep_ms(left < 1000000 ? (left + 999) / 1000 : 1000);
    return true;
}

/* "-" for 0 (no node, no operator id yet), else the number. */
static char *id_or_dash(uint64_t v)
{
    return v ? bs_cli__fmt("%" PRIu64, v) : strdup("-");
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* The in-sync voters of an ISR report, and its voters. */
static uint32_t isr_size(const struct bs_adm_isr_shard *s, uint32_t *voters)
{
    uint32_t in = 0, v = 0;

    for (uint32_t r = 0; r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS; r++) {
        if (s->replicas[r].learner)
            continue;
        v++;
        if (s->replicas[r].in_sync)
            in++;
    }
    *voters = v;
    return in;
}

/*
 * Encode, call, decode: the shape of every request below, a macro because
 * the codec functions differ in their argument types. enc_expr and
 * dec_expr are expressions over the macro's own req_, len_ (the encoded
 * request), resp_, resp_len_ (the answer) and why_ (the codec's message).
 * Sets rc (0 or a BS_E* code) and, on failure, em (BS_RPC_CONN_ERRMSG_SIZE
 * bytes): nothing is printed.
 */
#define CALL_QUIET(c, method, enc_expr, dec_expr, what, rc, em)                \
    do {                                                                       \
        uint8_t *req_ = NULL, *resp_ = NULL;                                   \
        size_t len_ = 0, resp_len_ = 0;                                        \
        char why_[BS_RPC_ERRMSG_LEN] = "";                                     \
        (rc) = (enc_expr);                                                     \
        if ((rc) != 0)                                                         \
            snprintf((em), BS_RPC_CONN_ERRMSG_SIZE, "%s",                      \
                     why_[0] ? why_ : bs_strerror(rc));                        \
        else                                                                   \
            (rc) = bs_cli__call_quiet((c), (method), req_, len_, &resp_,       \
                                      &resp_len_, (em));                       \
        if ((rc) == 0) {                                                       \
            (rc) = (dec_expr);                                                 \
            if ((rc) != 0)                                                     \
                snprintf((em), BS_RPC_CONN_ERRMSG_SIZE, "bad %s response: %s", \
                         (what), why_[0] ? why_ : bs_strerror(rc));            \
        }                                                                      \
        free(req_);                                                            \
        free(resp_);                                                           \
    } while (0)

/* Scheduler(action) into *s (bs_adm_sched_free): 0 or a BS_E* code with
 * the reason in em. */
static int sched_call(struct bs_cli_cctx *c, const char *action,
                      struct bs_adm_sched *s, char *em)
{
    struct bs_adm_sched rq;
    int rc;

    memset(&rq, 0, sizeof(rq));
    memset(s, 0, sizeof(*s));
    snprintf(rq.action, sizeof(rq.action), "%s", action);
    CALL_QUIET(c, BS_ADM_METHOD_SCHEDULER,
               bs_adm_sched_req_encode(&rq, &req_, &len_, why_),
               bs_adm_sched_resp_decode(resp_, resp_len_, s, why_), "Scheduler",
               rc, em);
    return rc;
}

/* IsrStatus(shard_id, 0 = every shard) into *shards (caller frees), *n. */
static int isr_call(struct bs_cli_cctx *c, uint64_t shard_id,
                    struct bs_adm_isr_shard **shards, size_t *n, char *em)
{
    int rc;

    *shards = NULL;
    *n = 0;
    CALL_QUIET(c, BS_ADM_METHOD_ISR_STATUS,
               bs_adm_isr_req_encode(shard_id, &req_, &len_, why_),
               bs_adm_isr_resp_decode(resp_, resp_len_, shards, n, why_),
               "IsrStatus", rc, em);
    return rc;
}

/* ---------------------------------------------------- operators, JSON */

static cJSON *op_obj(const struct bs_adm_op *op)
{
    cJSON *o = cJSON_CreateObject();

    bs_cli__add_u64(o, "id", op->id);
    cJSON_AddStringToObject(o, "kind", op->kind);
    cJSON_AddStringToObject(o, "reason", op->reason);
    bs_cli__add_u64(o, "shard_id", op->shard_id);
    bs_cli__add_u64(o, "from_node", op->from_node);
    bs_cli__add_u64(o, "to_node", op->to_node);
    if (op->split_key_len > 0)
        bs_cli__add_bytes(o, "split_key", op->split_key, op->split_key_len);
    bs_cli__add_u64(o, "age_ms", op->age_ms);
    return o;
}

static cJSON *ops_arr(cJSON *parent, const char *name,
                      const struct bs_adm_op *ops, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(parent, name);

    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, op_obj(&ops[i]));
    return arr;
}

/* Operators as a table: ID KIND REASON SHARD FROM TO [AGE] (a plan's
 * operators have no age: they were not created yet). */
static void print_ops(const struct bs_adm_op *ops, size_t n, bool age)
{
    struct bs_cli_table t = {0};
    char *row[7];

    t.n_cols = age ? 7 : 6;
    for (size_t i = 0; i <= n; i++) {
        const struct bs_adm_op *op = i ? &ops[i - 1] : NULL;

        if (op == NULL) {
            static const char *const head[] = {
                "ID", "KIND", "REASON", "SHARD", "FROM", "TO", "AGE"};

            for (size_t k = 0; k < t.n_cols; k++)
                row[k] = strdup(head[k]);
        } else {
            row[0] = id_or_dash(op->id);
            row[1] = strdup(op->kind);
            row[2] = strdup(op->reason);
            row[3] = bs_cli__fmt("%" PRIu64, op->shard_id);
            row[4] = id_or_dash(op->from_node);
            row[5] = id_or_dash(op->to_node);
            if (age)
                row[6] = bs_cli__fmt("%.1fs", (double)op->age_ms / 1000.0);
        }
        bs_cli__table_add(&t, row);
    }
    bs_cli__table_print(&t);
}

static cJSON *sched_obj(const struct bs_adm_sched *s)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddBoolToObject(o, "paused", s->paused);
    bs_cli__add_u64(o, "max_concurrent_moves", s->max_concurrent_moves);
    bs_cli__add_u64(o, "split_size", s->split_size);
    bs_cli__add_u64(o, "split_qps", s->split_qps);
    bs_cli__add_u64(o, "snapshot_rate", s->snapshot_rate);
    bs_cli__add_u64(o, "down_after_ms", s->down_after_ms);
    bs_cli__add_u64(o, "max_lag_entries", s->max_lag_entries);
    bs_cli__add_u64(o, "max_lag_ms", s->max_lag_ms);
    bs_cli__add_u64(o, "ops_finished", s->ops_finished);
    bs_cli__add_u64(o, "ops_cancelled", s->ops_cancelled);
    ops_arr(o, "operators", s->ops, s->n_ops);
    return o;
}

/* "scheduler: running, 2 operators in flight" and their table. */
static void print_sched_summary(const struct bs_adm_sched *s)
{
    printf("scheduler: %s, %zu %s in flight (finished %" PRIu64
           ", cancelled %" PRIu64 ")\n",
           s->paused ? "paused" : "running", s->n_ops,
           plural(s->n_ops, "operator", "operators"), s->ops_finished,
           s->ops_cancelled);
    if (s->n_ops > 0) {
        printf("\n");
        print_ops(s->ops, s->n_ops, true);
    }
}

/* ----------------------------------------------------- status --detailed */

/* The ISR report of shard id in isr[n], or NULL. */
static const struct bs_adm_isr_shard *
find_isr(const struct bs_adm_isr_shard *isr, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++) {
        if (isr[i].shard_id == id)
            return &isr[i];
    }
    return NULL;
}

static void print_nodes_detailed(const struct bs_adm_status *st)
{
    struct bs_cli_table t = {0};

    t.n_cols = 10;
    bs_cli__table_add(&t, (char *[]){strdup("NODE"), strdup("CLIENT ADDR"),
                                     strdup("STATE"), strdup("RACK"),
                                     strdup("ALIVE"), strdup("REPLICAS"),
                                     strdup("LEADERS"), strdup("USED"),
                                     strdup("CAPACITY"), strdup("HEARD")});
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_adm_node *n = &st->nodes[i];
        bool heard = n->used_bytes || n->capacity_bytes || n->heard_ms_ago;

        bs_cli__table_add(
            &t,
            (char *[]){
                bs_cli__fmt("%" PRIu64, n->id), strdup(n->client_addr),
                strdup(n->state[0] ? n->state : "-"),
                strdup(n->rack[0] ? n->rack : "-"),
                strdup(n->alive ? "yes" : "no"),
                bs_cli__fmt("%" PRIu32, n->replicas),
                bs_cli__fmt("%" PRIu32, n->leaders),
                n->used_bytes ? bs_cli__size_str(n->used_bytes) : strdup("-"),
                n->capacity_bytes ? bs_cli__size_str(n->capacity_bytes)
                                  : strdup("-"),
                heard ? bs_cli__fmt("%" PRIu64 " ms ago", n->heard_ms_ago)
                      : strdup("-")});
    }
    bs_cli__table_print(&t);
}

static void print_shards_detailed(const struct bs_adm_status *st,
                                  const struct bs_adm_isr_shard *isr,
                                  size_t n_isr)
{
    struct bs_cli_table t = {0};

    t.n_cols = 9;
    bs_cli__table_add(
        &t, (char *[]){strdup("SHARD"), strdup("RANGE"), strdup("LEADER"),
                       strdup("TERM"), strdup("COMMIT"), strdup("APPLIED"),
                       strdup("ISR"), strdup("MIN-INSYNC"),
                       strdup("REPLICAS (node, *leader, ~learner)")});
    for (size_t i = 0; i < st->n_shards; i++) {
        const struct bs_adm_shard *s = &st->shards[i];
        const struct bs_adm_isr_shard *r = find_isr(isr, n_isr, s->id);
        uint32_t voters = 0, in = r ? isr_size(r, &voters) : 0;

        bs_cli__table_add(
            &t,
            (char *[]){bs_cli__fmt("%" PRIu64, s->id), bs_cli__range_str(s),
                       id_or_dash(s->leader_node),
                       bs_cli__fmt("%" PRIu64, s->term),
                       bs_cli__fmt("%" PRIu64, s->commit),
                       bs_cli__fmt("%" PRIu64, s->applied),
                       r ? bs_cli__fmt("%" PRIu32 "/%" PRIu32, in, voters)
                         : strdup("-"),
                       r ? bs_cli__fmt("%" PRIu32, r->min_insync) : strdup("-"),
                       bs_cli__replicas_str(s)});
    }
    bs_cli__table_print(&t);
}

int bs_cli__cmd_status_detailed(struct bs_cli_cctx *c)
{
    char isr_em[BS_RPC_CONN_ERRMSG_SIZE], sched_em[BS_RPC_CONN_ERRMSG_SIZE];
    struct bs_adm_isr_shard *isr = NULL;
    struct bs_adm_status st;
    struct bs_adm_sched sch;
    size_t n_isr = 0;
    int isr_rc, sched_rc, code = 0;

    if (bs_cli__get_status_figures(c, &st) != 0)
        return 1;
    /* What the placement leader knows: shown when it answers, and the
     * command fails (after printing the rest) when it does not. */
    isr_rc = isr_call(c, 0, &isr, &n_isr, isr_em);
    sched_rc = sched_call(c, "show", &sch, sched_em);

    if (bs_cli__is_table(c)) {
        printf("cluster %016" PRIx64 ", answered by node %" PRIu64 "\n\n",
               st.cluster_id, st.node_id);
        print_nodes_detailed(&st);
        printf("\n");
        print_shards_detailed(&st, isr, n_isr);
        if (sched_rc == 0) {
            printf("\n");
            print_sched_summary(&sch);
        }
        fflush(stdout);
    } else {
        cJSON *root = bs_cli__status_tree(&st, true, true);
        cJSON *shards = root ? cJSON_GetObjectItem(root, "shards") : NULL;
        size_t i = 0;
        cJSON *so;

        cJSON_ArrayForEach(so, shards)
        {
            const struct bs_adm_isr_shard *r =
                i < st.n_shards ? find_isr(isr, n_isr, st.shards[i].id) : NULL;
            uint32_t voters = 0, in;

            i++;
            if (r == NULL)
                continue;
            in = isr_size(r, &voters);
            bs_cli__add_u64(so, "isr_size", in);
            bs_cli__add_u64(so, "voters", voters);
            bs_cli__add_u64(so, "min_insync", r->min_insync);
        }
        if (root && sched_rc == 0)
            cJSON_AddItemToObject(root, "scheduler", sched_obj(&sch));
        code = bs_cli__print_tree(c, root);
    }
    if (isr_rc != 0)
        code = bs_cli__failed(c, "no ISR figures: %s", isr_em);
    if (sched_rc != 0)
        code = bs_cli__failed(c, "no scheduler view: %s", sched_em);
    bs_adm_sched_free(&sch);
    free(isr);
    bs_adm_status_free(&st);
    return code;
}

/* ------------------------------------------------------------ add-node */

/* s quoted for a POSIX shell when it needs it (malloc'd). */
static char *shell_quote(const char *s)
{
    size_t n = 2;
    char *q, *p;

    if (s[0] != '\0' &&
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_@%+=:,./-[]") == strlen(s))
        return strdup(s);
    for (const char *r = s; *r; r++)
        n += *r == '\'' ? 4 : 1;
    q = p = malloc(n + 1);
    if (q == NULL)
        return NULL;
    *p++ = '\'';
    for (const char *r = s; *r; r++) {
        if (*r == '\'') {
            memcpy(p, "'\\''", 4);
            p += 4;
        } else {
            *p++ = *r;
        }
    }
    *p++ = '\'';
    *p = '\0';
    return q;
}

/* The client addresses a new node can join through: the nodes alive and
 * not leaving (every listed node if none is), else the --endpoints. */
static char *join_list(const struct bs_cli_cctx *c,
                       const struct bs_adm_status *st)
{
    size_t cap = 1, off = 0;
    char *out;

    for (size_t i = 0; i < st->n_nodes; i++)
        cap += strlen(st->nodes[i].client_addr) + 1;
    out = calloc(1, cap);
    if (out == NULL)
        return NULL;
    for (int pass = 0; pass < 2 && off == 0; pass++) {
        for (size_t i = 0; i < st->n_nodes; i++) {
            const struct bs_adm_node *n = &st->nodes[i];

            if (n->client_addr[0] == '\0' || strcmp(n->state, "removed") == 0)
                continue;
            if (pass == 0 && (!n->alive || strcmp(n->state, "draining") == 0))
                continue;
            off += (size_t)snprintf(out + off, cap - off, "%s%s",
                                    off ? "," : "", n->client_addr);
        }
    }
    if (off == 0) {
        free(out);
        return strdup(c->endpoints);
    }
    return out;
}

int bs_cli__cmd_add_node(struct bs_cli_cctx *c,
                         const struct bs_cli_cluster_args *a)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "";
    struct bs_adm_status st, now;
    uint64_t *known = NULL;
    char *join = NULL, *dir = NULL, *cmdline = NULL;
    FILE *info = bs_cli__is_table(c) ? stdout : stderr;
    size_t n_known;
    int64_t deadline;
    int code = 1;

    if (bs_cli__get_status(c, &st) != 0)
        return 1;
    n_known = st.n_nodes;
    known = calloc(n_known ? n_known : 1, sizeof(*known));
    join = join_list(c, &st);
    dir = shell_quote(a->data_dir ? a->data_dir : "DATA_DIR");
    if (known == NULL || join == NULL || dir == NULL) {
        code = bs_cli__failed(c, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_known; i++)
        known[i] = st.nodes[i].id;
    cmdline = bs_cli__fmt(
        "basalt start --join %s --data-dir %s --client-addr %s "
        "--peer-addr %s",
        join, dir, a->client_addr ? a->client_addr : "HOST:CLIENT_PORT",
        a->peer_addr ? a->peer_addr : "HOST:PEER_PORT");
    if (cmdline == NULL) {
        code = bs_cli__failed(c, "out of memory");
        goto out;
    }
    fprintf(info,
            "Start the new node with:\n\n  %s\n\n"
            "(add --http-addr HOST:PORT for /metrics and --labels rack=RACK "
            "to\nspread replicas over racks; --id N is optional: the "
            "cluster gives\nthe node an id)\n\n"
            "waiting up to %" PRId64 " s for a new node to register...\n",
            cmdline, a->wait_s);
    fflush(info);

    deadline = bs_cli__now_us() + a->wait_s * 1000000;
    while (next_poll(deadline)) {
        const struct bs_adm_node *n = NULL;

        if (bs_cli__status_quiet(c, &now, em) != 0)
            continue;
        for (size_t i = 0; i < now.n_nodes && n == NULL; i++) {
            bool old = false;

            for (size_t k = 0; k < n_known && !old; k++)
                old = known[k] == now.nodes[i].id;
            if (!old && strcmp(now.nodes[i].state, "removed") != 0)
                n = &now.nodes[i];
        }
        if (n != NULL) {
            if (bs_cli__is_table(c)) {
                printf("node %" PRIu64 " registered: client %s, peer %s, "
                       "state %s\n",
                       n->id, n->client_addr, n->peer_addr,
                       n->state[0] ? n->state : "-");
                fflush(stdout);
                code = 0;
            } else {
                cJSON *o = cJSON_CreateObject();

                if (o) {
                    cJSON_AddStringToObject(o, "start_command", cmdline);
                    cJSON_AddItemToObject(o, "node", bs_cli__node_obj(n));
                }
                code = bs_cli__print_tree(c, o);
            }
            bs_adm_status_free(&now);
            goto out;
        }
        bs_adm_status_free(&now);
    }
    code = bs_cli__failed(
        c, "no new node registered within %" PRId64 " s%s%s%s", a->wait_s,
        em[0] ? " (last poll: " : "", em, em[0] ? ")" : "");
out:
    free(cmdline);
    free(dir);
    free(join);
    free(known);
    bs_adm_status_free(&st);
    return code;
}

/* --------------------------------------------------------- remove-node */

/* The node's state and replicas in st; a node no longer listed counts as
 * removed. */
static void node_state(const struct bs_adm_status *st, uint64_t id,
                       char state[16], uint32_t *replicas)
{
    const struct bs_adm_node *n = bs_cli__find_node(st, id);

    snprintf(state, 16, "%s", n ? n->state : "removed");
    *replicas = n ? n->replicas : 0;
}

static int print_remove(const struct bs_cli_cctx *c, uint64_t id,
                        const char *state, uint32_t replicas)
{
    cJSON *o;

    if (bs_cli__is_table(c))
        return 0;
    o = cJSON_CreateObject();
    if (o) {
        bs_cli__add_u64(o, "node_id", id);
        cJSON_AddStringToObject(o, "state", state);
        bs_cli__add_u64(o, "replicas", replicas);
    }
    return bs_cli__print_tree(c, o);
}

int bs_cli__cmd_remove_node(struct bs_cli_cctx *c,
                            const struct bs_cli_cluster_args *a)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "", state[16];
    struct bs_adm_remove rq = {0}, r = {0};
    struct bs_adm_status st;
    bool table = bs_cli__is_table(c), drained = false;
    uint32_t replicas;
    int64_t deadline;
    int rc;

    rq.node_id = a->id;
    rq.cancel = a->cancel;
    CALL_QUIET(c, BS_ADM_METHOD_REMOVE_NODE,
               bs_adm_remove_req_encode(&rq, &req_, &len_, why_),
               bs_adm_remove_resp_decode(resp_, resp_len_, &r, why_),
               "RemoveNode", rc, em);
    if (rc != 0)
        return bs_cli__failed(c, "%s", em);
    if (table) {
        if (a->cancel)
            printf("node %" PRIu64 ": decommission cancelled, state %s\n",
                   a->id, r.state[0] ? r.state : "-");
        else
            printf("node %" PRIu64 ": %s, %" PRIu32 " %s to move\n", a->id,
                   r.state[0] ? r.state : "-", r.replicas,
                   plural(r.replicas, "replica", "replicas"));
        fflush(stdout);
    }
    if (!a->wait || strcmp(r.state, "removed") == 0)
        return print_remove(c, a->id, r.state, r.replicas);

    /* --wait: one line per change of the node's state or replica count. */
    snprintf(state, sizeof(state), "%s", r.state);
    replicas = r.replicas;
    drained = strcmp(state, "draining") == 0;
    if (table) {
        printf("waiting up to %" PRId64 " s for node %" PRIu64
               " to be removed...\n",
               a->wait_s, a->id);
        fflush(stdout);
    }
    deadline = bs_cli__now_us() + a->wait_s * 1000000;
    while (next_poll(deadline)) {
        char s2[16];
        uint32_t r2;

        if (bs_cli__status_quiet(c, &st, em) != 0)
            continue;
        em[0] = '\0';
        node_state(&st, a->id, s2, &r2);
        bs_adm_status_free(&st);
        if (strcmp(s2, state) != 0 || r2 != replicas) {
            snprintf(state, sizeof(state), "%s", s2);
            replicas = r2;
            if (table) {
                printf("node %" PRIu64 ": %s, %" PRIu32 " %s left\n", a->id,
                       state[0] ? state : "-", replicas,
                       plural(replicas, "replica", "replicas"));
                fflush(stdout);
            }
        }
        if (strcmp(state, "removed") == 0)
            return print_remove(c, a->id, state, replicas);
        if (strcmp(state, "draining") == 0)
            drained = true;
        else if (drained && strcmp(state, "up") == 0)
            return bs_cli__failed(c,
                                  "the decommission of node %" PRIu64
                                  " was cancelled (state up, %" PRIu32 " %s)",
                                  a->id, replicas,
                                  plural(replicas, "replica", "replicas"));
    }
    return bs_cli__failed(c,
                          "node %" PRIu64 " is still %s after %" PRId64
                          " s (%" PRIu32 " %s left)%s%s%s",
                          a->id, state[0] ? state : "-", a->wait_s, replicas,
                          plural(replicas, "replica", "replicas"),
                          em[0] ? " (last poll: " : "", em, em[0] ? ")" : "");
}

/* ----------------------------------------------------------- rebalance */

/* How many shards of plan[n] have an operator in s; their ids listed in
 * buf[size] ("3, 5, 7"). */
static size_t pending(const struct bs_adm_op *plan, size_t n,
                      const struct bs_adm_sched *s, char *buf, size_t size)
{
    size_t count = 0, off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        bool busy = false;

        for (size_t k = 0; k < s->n_ops && !busy; k++)
            busy = s->ops[k].shard_id == plan[i].shard_id;
        if (!busy)
            continue;
        count++;
        if (off + 24 < size)
            off += (size_t)snprintf(buf + off, size - off, "%s%" PRIu64,
                                    off ? ", " : "", plan[i].shard_id);
    }
    return count;
}

static int wait_rebalance(struct bs_cli_cctx *c,
                          const struct bs_cli_cluster_args *a,
                          const struct bs_adm_rebalance *r,
                          const struct bs_adm_sched *before)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "", shards[256] = "";
    bool table = bs_cli__is_table(c);
    size_t last = SIZE_MAX, left = r->n_plan;
    uint64_t fin = 0, canc = 0;
    int64_t deadline = bs_cli__now_us() + a->wait_s * 1000000;
    bool done = false;

    if (table) {
        printf("\nwaiting up to %" PRId64 " s for %zu %s to finish...\n",
               a->wait_s, r->n_plan,
               plural(r->n_plan, "operator", "operators"));
        fflush(stdout);
    }
    /* The first look is immediate: a plan can be done at once. */
    do {
        struct bs_adm_sched s;

        if (sched_call(c, "show", &s, em) != 0)
            continue;
        em[0] = '\0';
        left = pending(r->plan, r->n_plan, &s, shards, sizeof(shards));
        fin = s.ops_finished > before->ops_finished
                  ? s.ops_finished - before->ops_finished
                  : 0;
        canc = s.ops_cancelled > before->ops_cancelled
                   ? s.ops_cancelled - before->ops_cancelled
                   : 0;
        bs_adm_sched_free(&s);
        if (left != last && left > 0 && table) {
            printf("%zu of %zu %s in flight (%s %s)\n", left, r->n_plan,
                   plural(r->n_plan, "operator", "operators"),
                   plural(left, "shard", "shards"), shards);
            fflush(stdout);
        }
        last = left;
        done = left == 0;
    } while (!done && next_poll(deadline));

    if (!done)
        return bs_cli__failed(
            c, "%zu of %zu %s still in flight after %" PRId64 " s (%s %s)%s%s",
            left, r->n_plan, plural(r->n_plan, "operator", "operators"),
            a->wait_s, plural(left, "shard", "shards"),
            shards[0] ? shards : "?", em[0] ? "; last poll: " : "", em);
    if (table) {
        printf("done: none of the plan's shards has an operator in flight "
               "(scheduler: +%" PRIu64 " finished, +%" PRIu64 " cancelled)\n",
               fin, canc);
        fflush(stdout);
    }
    if (canc > 0)
        return bs_cli__failed(c,
                              "%" PRIu64 " %s cancelled meanwhile (timed "
                              "out or rolled back): see basalt cluster "
                              "scheduler show and the nodes' logs",
                              canc,
                              plural(canc, "operator was", "operators were"));
    return 0;
}

int bs_cli__cmd_rebalance(struct bs_cli_cctx *c,
                          const struct bs_cli_cluster_args *a)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "";
    struct bs_adm_rebalance rq = {0}, r = {0};
    struct bs_adm_sched before = {0};
    bool table = bs_cli__is_table(c);
    int rc, code = 0;

    /* The scheduler's counters before: cancellations are told apart
     * from completions by their change. */
    if (!a->dry_run && sched_call(c, "show", &before, em) != 0)
        return bs_cli__failed(c, "%s", em);
    rq.dry_run = a->dry_run;
    rq.max_moves = a->max_moves;
    CALL_QUIET(c, BS_ADM_METHOD_REBALANCE,
               bs_adm_rebalance_req_encode(&rq, &req_, &len_, why_),
               bs_adm_rebalance_resp_decode(resp_, resp_len_, &r, why_),
               "Rebalance", rc, em);
    if (rc != 0) {
        bs_adm_sched_free(&before);
        return bs_cli__failed(c, "%s", em);
    }
    if (table) {
        if (r.n_plan == 0)
            printf("nothing to do: the scheduler plans no operator\n");
        else
            printf("%s %zu %s:\n\n",
                   a->dry_run ? "plan (dry run, nothing started):" : "started",
                   r.n_plan, plural(r.n_plan, "operator", "operators"));
        if (r.n_plan > 0)
            print_ops(r.plan, r.n_plan, false);
        if (r.n_in_flight > 0) {
            printf("\nalready in flight: %zu %s\n\n", r.n_in_flight,
                   plural(r.n_in_flight, "operator", "operators"));
            print_ops(r.in_flight, r.n_in_flight, true);
        }
        fflush(stdout);
    } else {
        cJSON *o = cJSON_CreateObject();

        if (o) {
            cJSON_AddBoolToObject(o, "dry_run", a->dry_run);
            bs_cli__add_u64(o, "max_moves", a->max_moves);
            ops_arr(o, "plan", r.plan, r.n_plan);
            ops_arr(o, "in_flight", r.in_flight, r.n_in_flight);
        }
        code = bs_cli__print_tree(c, o);
    }
    if (code == 0 && !a->dry_run && r.n_plan > 0)
        code = wait_rebalance(c, a, &r, &before);
    bs_adm_rebalance_free(&r);
    bs_adm_sched_free(&before);
    return code;
}

/* ---------------------------------------------------------- isr-status */

/* "node[*][~][!]=entries/ms,..." */
static char *isr_replicas_str(const struct bs_adm_isr_shard *s)
{
    char buf[BS_RAFT_MAX_MEMBERS * 64 + 1] = "";
    size_t off = 0;

    for (uint32_t r = 0; r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS; r++) {
        const struct bs_adm_isr_replica *rp = &s->replicas[r];

        off += (size_t)snprintf(buf + off, sizeof(buf) - off,
                                "%s%" PRIu64 "%s%s%s=%" PRIu64 "/%" PRIu64,
                                r ? "," : "", rp->node_id,
                                rp->node_id == s->leader_node ? "*" : "",
                                rp->learner ? "~" : "", rp->in_sync ? "" : "!",
                                rp->lag_entries, rp->lag_ms);
        if (off >= sizeof(buf))
            break;
    }
    return strdup(buf);
}

static cJSON *isr_obj(const struct bs_adm_isr_shard *s)
{
    cJSON *o = cJSON_CreateObject(), *reps;
    uint32_t voters = 0, in = isr_size(s, &voters);

    bs_cli__add_u64(o, "shard_id", s->shard_id);
    bs_cli__add_u64(o, "leader_node", s->leader_node);
    bs_cli__add_u64(o, "term", s->term);
    bs_cli__add_u64(o, "commit", s->commit);
    bs_cli__add_u64(o, "isr_size", in);
    bs_cli__add_u64(o, "voters", voters);
    bs_cli__add_u64(o, "min_insync", s->min_insync);
    bs_cli__add_u64(o, "size_bytes", s->size_bytes);
    bs_cli__add_u64(o, "keys", s->keys);
    bs_cli__add_u64(o, "read_qps", s->read_qps);
    bs_cli__add_u64(o, "write_qps", s->write_qps);
    bs_cli__add_u64(o, "reported_ms_ago", s->reported_ms_ago);
    reps = cJSON_AddArrayToObject(o, "replicas");
    for (uint32_t r = 0; r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS; r++) {
        const struct bs_adm_isr_replica *rp = &s->replicas[r];
        cJSON *ro = cJSON_CreateObject();

        bs_cli__add_u64(ro, "replica_id", rp->replica_id);
        bs_cli__add_u64(ro, "node_id", rp->node_id);
        cJSON_AddBoolToObject(ro, "learner", rp->learner);
        bs_cli__add_u64(ro, "match", rp->match);
        bs_cli__add_u64(ro, "lag_entries", rp->lag_entries);
        bs_cli__add_u64(ro, "lag_ms", rp->lag_ms);
        cJSON_AddBoolToObject(ro, "in_sync", rp->in_sync);
        cJSON_AddItemToArray(reps, ro);
    }
    return o;
}

int bs_cli__cmd_isr_status(struct bs_cli_cctx *c,
                           const struct bs_cli_cluster_args *a)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "";
    struct bs_adm_isr_shard *sh = NULL;
    size_t n = 0, n_under = 0, n_lagging = 0, shown = 0;
    int code = 0;

    /* IsrStatus's shard 0 means "every shard": the placement group's own
     * report (--id 0) is picked from the whole answer. */
    if (isr_call(c, a->has_id ? a->id : 0, &sh, &n, em) != 0)
        return bs_cli__failed(c, "%s", em);
    for (size_t i = 0; i < n; i++) {
        if (!a->has_id || sh[i].shard_id == a->id)
            shown++;
    }
    if (a->has_id && shown == 0) {
        free(sh);
        return bs_cli__failed(c,
                              "no ISR report for shard %" PRIu64
                              " (no such shard, or its leader has not "
                              "reported yet)",
                              a->id);
    }
    if (bs_cli__is_table(c)) {
        struct bs_cli_table t = {0};

        t.n_cols = 7;
        bs_cli__table_add(
            &t,
            (char *[]){strdup("SHARD"), strdup("LEADER"), strdup("TERM"),
                       strdup("COMMIT"), strdup("ISR"), strdup("MIN-INSYNC"),
                       strdup("LAG (node=entries/ms, *leader, ~learner, "
                              "!out of sync)")});
        for (size_t i = 0; i < n; i++) {
            const struct bs_adm_isr_shard *s = &sh[i];
            uint32_t voters = 0, in;
            bool lagging = false;

            if (a->has_id && s->shard_id != a->id)
                continue;
            in = isr_size(s, &voters);
            for (uint32_t r = 0; r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS;
                 r++)
                lagging |= !s->replicas[r].in_sync;
            n_under += in < s->min_insync;
            n_lagging += lagging;
            bs_cli__table_add(
                &t, (char *[]){bs_cli__fmt("%" PRIu64, s->shard_id),
                               id_or_dash(s->leader_node),
                               bs_cli__fmt("%" PRIu64, s->term),
                               bs_cli__fmt("%" PRIu64, s->commit),
                               bs_cli__fmt("%" PRIu32 "/%" PRIu32, in, voters),
                               bs_cli__fmt("%" PRIu32, s->min_insync),
                               isr_replicas_str(s)});
        }
        bs_cli__table_print(&t);
        printf("\n%zu %s: %zu below min-insync, %zu with a replica out of "
               "sync\n",
               shown, plural(shown, "shard", "shards"), n_under, n_lagging);
        fflush(stdout);
    } else {
        cJSON *root = cJSON_CreateObject(), *arr;

        arr = root ? cJSON_AddArrayToObject(root, "shards") : NULL;
        for (size_t i = 0; arr && i < n; i++) {
            if (!a->has_id || sh[i].shard_id == a->id)
                cJSON_AddItemToArray(arr, isr_obj(&sh[i]));
        }
        code = bs_cli__print_tree(c, root);
    }
    free(sh);
    return code;
}

/* --------------------------------------------------------------- split */

int bs_cli__cmd_split(struct bs_cli_cctx *c,
                      const struct bs_cli_cluster_args *a)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "";
    struct bs_adm_split rq = {0}, r = {0};
    bool table = bs_cli__is_table(c);
    int64_t deadline;
    int rc;

    rq.shard_id = a->id;
    rq.key = (uint8_t *)a->key;
    rq.key_len = a->key ? strlen(a->key) : 0;
    CALL_QUIET(c, BS_ADM_METHOD_SPLIT,
               bs_adm_split_req_encode(&rq, &req_, &len_, why_),
               bs_adm_split_resp_decode(resp_, resp_len_, &r, why_), "Split",
               rc, em);
    if (rc != 0)
        return bs_cli__failed(c, "%s", em);
    free(r.key); /* a response carries none; the decoder's contract */
    if (r.new_shard_id == 0)
        return bs_cli__failed(
            c, "the server started operator %" PRIu64 " but named no new shard",
            r.op_id);
    if (table) {
        printf("shard %" PRIu64 ": split started (operator %" PRIu64
               "), new shard %" PRIu64 "; waiting up to %" PRId64
               " s for it to be routed...\n",
               a->id, r.op_id, r.new_shard_id, a->wait_s);
        fflush(stdout);
    }
    deadline = bs_cli__now_us() + a->wait_s * 1000000;
    do {
        const struct bs_adm_shard *old = NULL, *new = NULL;
        struct bs_adm_status st;
        int code;

        if (bs_cli__status_quiet(c, &st, em) != 0)
            continue;
        em[0] = '\0';
        for (size_t i = 0; i < st.n_shards; i++) {
            if (st.shards[i].id == a->id)
                old = &st.shards[i];
            else if (st.shards[i].id == r.new_shard_id)
                new = &st.shards[i];
        }
        if (old == NULL || new == NULL) {
            bs_adm_status_free(&st);
            continue;
        }
        if (table) {
            struct bs_cli_table t = {0};

            t.n_cols = 4;
            bs_cli__table_add(&t,
                              (char *[]){strdup("SHARD"), strdup("RANGE"),
                                         strdup("LEADER"), strdup("REPLICAS")});
            for (int k = 0; k < 2; k++) {
                const struct bs_adm_shard *s = k ? new : old;

                bs_cli__table_add(&t, (char *[]){bs_cli__fmt("%" PRIu64, s->id),
                                                 bs_cli__range_str(s),
                                                 id_or_dash(s->leader_node),
                                                 bs_cli__replicas_str(s)});
            }
            bs_cli__table_print(&t);
            fflush(stdout);
            code = 0;
        } else {
            cJSON *o = cJSON_CreateObject(), *arr;

            if (o) {
                bs_cli__add_u64(o, "op_id", r.op_id);
                bs_cli__add_u64(o, "shard_id", a->id);
                bs_cli__add_u64(o, "new_shard_id", r.new_shard_id);
                arr = cJSON_AddArrayToObject(o, "shards");
                cJSON_AddItemToArray(arr, bs_cli__shard_obj(old));
                cJSON_AddItemToArray(arr, bs_cli__shard_obj(new));
            }
            code = bs_cli__print_tree(c, o);
        }
        bs_adm_status_free(&st);
        return code;
    } while (next_poll(deadline));
    return bs_cli__failed(c,
                          "shard %" PRIu64 " (split of shard %" PRIu64
                          ", operator %" PRIu64 ") is not routed after %" PRId64
                          " s: see basalt cluster scheduler show%s%s",
                          r.new_shard_id, a->id, r.op_id, a->wait_s,
                          em[0] ? "; last poll: " : "", em);
}

/* ----------------------------------------------------------- scheduler */

int bs_cli__cmd_scheduler(struct bs_cli_cctx *c,
                          const struct bs_cli_cluster_args *a)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "";
    struct bs_adm_sched s;
    int code = 0;

    if (sched_call(c, a->action, &s, em) != 0)
        return bs_cli__failed(c, "%s", em);
    if (!bs_cli__is_table(c)) {
        code = bs_cli__print_tree(c, sched_obj(&s));
    } else if (strcmp(a->action, "show") != 0) {
        printf("scheduler %s; %zu %s in flight\n",
               strcmp(a->action, "pause") == 0 ? "paused" : "resumed", s.n_ops,
               plural(s.n_ops, "operator", "operators"));
    } else {
        struct bs_cli_table t = {0};
        char *rate;

        t.n_cols = 2;
        bs_cli__table_add(&t,
                          (char *[]){strdup("scheduler"),
                                     strdup(s.paused ? "paused" : "running")});
        bs_cli__table_add(
            &t, (char *[]){strdup("max-concurrent-moves"),
                           bs_cli__fmt("%" PRIu32, s.max_concurrent_moves)});
        bs_cli__table_add(&t, (char *[]){strdup("split-size"),
                                         s.split_size
                                             ? bs_cli__size_str(s.split_size)
                                             : strdup("0 (never)")});
        bs_cli__table_add(
            &t, (char *[]){strdup("split-qps"),
                           s.split_qps ? bs_cli__fmt("%" PRIu64, s.split_qps)
                                       : strdup("0 (never)")});
        rate = s.snapshot_rate ? bs_cli__size_str(s.snapshot_rate) : NULL;
        bs_cli__table_add(
            &t,
            (char *[]){strdup("snapshot-rate"),
                       s.snapshot_rate ? bs_cli__fmt("%s/s", rate ? rate : "?")
                                       : strdup("0 (unlimited)")});
        free(rate);
        bs_cli__table_add(&t,
                          (char *[]){strdup("down-after-ms"),
                                     bs_cli__fmt("%" PRIu64, s.down_after_ms)});
        bs_cli__table_add(
            &t, (char *[]){strdup("max-lag-entries"),
                           bs_cli__fmt("%" PRIu64, s.max_lag_entries)});
        bs_cli__table_add(&t,
                          (char *[]){strdup("max-lag-ms"),
                                     bs_cli__fmt("%" PRIu64, s.max_lag_ms)});
        bs_cli__table_add(&t,
                          (char *[]){strdup("operators finished"),
                                     bs_cli__fmt("%" PRIu64, s.ops_finished)});
        bs_cli__table_add(&t,
                          (char *[]){strdup("operators cancelled"),
                                     bs_cli__fmt("%" PRIu64, s.ops_cancelled)});
        bs_cli__table_print(&t);
        if (s.n_ops == 0) {
            printf("\nno operator in flight\n");
        } else {
            printf("\n%zu %s in flight:\n\n", s.n_ops,
                   plural(s.n_ops, "operator", "operators"));
            print_ops(s.ops, s.n_ops, true);
        }
    }
    fflush(stdout);
    bs_adm_sched_free(&s);
    return code;
}
