/*
 * pd_admin.c - the Admin calls that act on, or read, what only the
 * placement leader holds: Join, RemoveNode, Rebalance, IsrStatus, Split
 * and Scheduler (rpc/proto/admin.proto).
 *
 * Where a call is answered. The placement leader's node answers: it
 * holds the heartbeat statistics (ISR, sizes, rates) and the
 * scheduler's settings, and its proposals to shard 0 need no further
 * hop. Any other node forwards the call, bytes unchanged, once over the
 * peer channel to that node and relays the answer (as TransferLeader
 * does in admin_svc.c); a call that arrived forwarded is acted on or
 * refused, never forwarded again, so two nodes with different ideas of
 * the leader cannot bounce a call between them.
 *
 * The calls that change placement propose a command (bs_node__pd_propose)
 * and answer from its done callback. That callback runs on the loop
 * thread with the command's apply outcome (0, or BS_ESTALE etc. as
 * bs_pd_apply returns them), or, once the loop has stopped, with
 * BS_ESTOPPED on whatever thread ends it. So a done callback reads the
 * placement view only on an apply outcome of success, and every other
 * path answers with a sentence built from what its context holds.
 *
 * Every refusal is a one-line sentence that the CLI prints as it is.
 */
#define _GNU_SOURCE
#include "node_int.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MOD BS_NODE_MOD

/* What a Rebalance without max_moves plans at most (the scheduler's own
 * max_concurrent_moves bounds it further). */
#define PD_ADMIN_PLAN_CAP 64

#define MSG_STOPPING "basalt: the node is stopping"
#define MSG_NO_LEADER                                                          \
    "basalt: the placement group has no leader this node can reach; try "      \
    "again"

_Static_assert(BS_ADM_ADDR_MAX <= BS_PD_ADDR_MAX, "address sizes");
_Static_assert(BS_ADM_MAX_LABELS <= BS_PD_MAX_LABELS, "label counts");
_Static_assert(BS_ADM_LABEL_KEY_MAX <= BS_PD_LABEL_KEY_MAX, "label keys");
_Static_assert(BS_ADM_LABEL_MAX <= BS_PD_LABEL_VAL_MAX, "label values");

static const char *const method_of[] = {
    [BS_PD_ADMIN_JOIN] = BS_ADM_METHOD_JOIN,
    [BS_PD_ADMIN_REMOVE_NODE] = BS_ADM_METHOD_REMOVE_NODE,
    [BS_PD_ADMIN_REBALANCE] = BS_ADM_METHOD_REBALANCE,
    [BS_PD_ADMIN_ISR_STATUS] = BS_ADM_METHOD_ISR_STATUS,
    [BS_PD_ADMIN_SPLIT] = BS_ADM_METHOD_SPLIT,
    [BS_PD_ADMIN_SCHEDULER] = BS_ADM_METHOD_SCHEDULER,
};

/* ------------------------------------------------------------- helpers */

/*
 * Answers call with err and the sentence em (may be NULL). This node
 * answers, so the codes a client takes as news about its own connection
 * to this node (unreachable, timed out, stopped: it prints the endpoint
 * and gRPC's words around the sentence) become BS_EUNAVAIL, which is
 * UNAVAILABLE on the wire all the same: retry, here or elsewhere.
 */
static void fail(struct bs_rpc_call *call, int err, const char *em)
{
    if (err == BS_EUNREACHABLE || err == BS_ETIMEDOUT || err == BS_ESTOPPED)
        err = BS_EUNAVAIL;
    (void)bs_rpc_call_fail(call, err, em && *em ? em : NULL);
}

static void reply_buf(struct bs_rpc_call *call, int rc, uint8_t *out,
                      size_t len, const char *em)
{
    if (rc == 0)
        (void)bs_rpc_call_reply(call, out, len);
    else
        fail(call, rc, em);
    free(out);
}

/* then -> now in ms, 0 when then is unknown (0) or in the future (another
 * node's clock). */
static uint64_t ms_since(uint64_t now, uint64_t then)
{
    return then && now > then ? now - then : 0;
}

/* True if status is an outcome of bs_pd_apply (the command committed and
 * was judged); anything else means it never reached the log, or nobody
 * learned what became of it. */
static bool apply_outcome(int status)
{
    switch (status) {
    case 0:
    case BS_ESTALE:
    case BS_EINVAL:
    case BS_ERANGE:
    case BS_ENOTFOUND:
    case BS_EEXIST:
    case BS_EBUSY:
    case BS_ECORRUPT:
        return true;
    default:
        return false;
    }
}

/*
 * The sentence for a placement command (`what`: "the split of shard 4")
 * that did not do what was asked. The done callback carries the apply's
 * code but not its message (struct bs_pd_result.msg), so the codes the
 * callers do not handle themselves get a generic sentence.
 */
static void refusal(char *em, size_t cap, int status, const char *what)
{
    switch (status) {
    case BS_ESTOPPED:
        snprintf(em, cap, MSG_STOPPING);
        break;
    case BS_ENOTLEADER:
    case BS_EDROPPED:
    case BS_EUNREACHABLE:
    case BS_EUNAVAIL:
        snprintf(em, cap,
                 "basalt: the placement group lost its leader before "
                 "%s committed; try again",
                 what);
        break;
    case BS_ETIMEDOUT:
        snprintf(em, cap,
                 "basalt: placement did not commit %s in time; try again",
                 what);
        break;
    case BS_ENOMEM:
        snprintf(em, cap, "basalt: out of memory proposing %s", what);
        break;
    default:
        snprintf(em, cap, "basalt: placement refused %s: %s", what,
                 bs_strerror(status));
        break;
    }
}

/*
 * Proposes cmd (borrowed) with done and ctx (taken: freed here if the
 * proposal fails, for done then never runs). Returns 0, or the code with
 * the refusal sentence for what (see refusal) in em[cap].
 */
static int propose(struct bs_node *n, const struct bs_pd_cmd *cmd,
                   bs_node_pd_done done, void *ctx, const char *what, char *em,
                   size_t cap)
{
    int rc = bs_node__pd_propose(n, cmd, done, ctx);
    if (rc != 0) {
        free(ctx);
        refusal(em, cap, rc, what);
    }
    return rc;
}

/* Operator o as the Admin API shows it; split_key borrowed from o. */
static void op_view(const struct bs_pd_op *o, uint64_t now, struct bs_adm_op *a)
{
    memset(a, 0, sizeof(*a));
    a->id = o->id;
    snprintf(a->kind, sizeof(a->kind), "%s", bs_pd_op_kind_name(o->kind));
    snprintf(a->reason, sizeof(a->reason), "%s",
             bs_pd_op_reason_name(o->reason));
    a->shard_id = o->shard_id;
    a->from_node = o->from_node;
    a->to_node = o->to_node;
    a->split_key = o->split_key_len ? o->split_key : NULL;
    a->split_key_len = o->split_key_len;
    a->age_ms = o->id ? ms_since(now, o->created_at) : 0;
}

/* Like op_view, with a malloc'd copy of the split key (for answers built
 * after the placement view may have changed). BS_ENOMEM or 0. */
static int op_copy(const struct bs_pd_op *o, uint64_t now, struct bs_adm_op *a)
{
    op_view(o, now, a);
    if (a->split_key_len == 0)
        return 0;
    uint8_t *k = malloc(a->split_key_len);
    if (!k) {
        a->split_key = NULL;
        a->split_key_len = 0;
        return BS_ENOMEM;
    }
    memcpy(k, o->split_key, a->split_key_len);
    a->split_key = k;
    return 0;
}

static void ops_free(struct bs_adm_op *ops, size_t n)
{
    for (size_t i = 0; ops && i < n; i++)
        free(ops[i].split_key);
    free(ops);
}

/* The operators in flight, keys copied (*ops malloc'd, NULL when none).
 * 0 or BS_ENOMEM. */
static int ops_in_flight(const struct bs_pd_state *pd, uint64_t now,
                         struct bs_adm_op **ops, size_t *n)
{
    size_t k = bs_pd_op_count(pd);
    *ops = NULL;
    *n = 0;
    if (k == 0)
        return 0;
    struct bs_adm_op *a = calloc(k, sizeof(*a));
    if (!a)
        return BS_ENOMEM;
    for (size_t i = 0; i < k; i++) {
        if (op_copy(bs_pd_op_at(pd, i), now, &a[i]) != 0) {
            ops_free(a, k);
            return BS_ENOMEM;
        }
    }
    *ops = a;
    *n = k;
    return 0;
}

/* Replicas that placement places on node_id. */
static uint32_t replicas_on(const struct bs_pd_state *pd, uint64_t node_id)
{
    uint32_t k = 0;
    for (size_t i = 0; i < bs_pd_shard_count(pd); i++)
        k += bs_pd_shard_replica_on(bs_pd_shard_at(pd, i), node_id) != NULL;
    return k;
}

/* ----------------------------------------------------------- forwarding */

struct fwd_ctx {
    struct bs_rpc_call *call;
    uint64_t node; /* the placement leader's node asked */
};

/* CQ thread: the placement leader's node answered a forwarded call:
 * relay its answer, or, when the call never reached it (gRPC's own
 * message, not a sentence of that node), say so in one line. */
static void on_forwarded(void *ctx, const struct bs_rpc_result *res)
{
    struct fwd_ctx *f = ctx;
    if (res->rc == 0) {
        (void)bs_rpc_call_reply(f->call, res->data, res->len);
    } else if (strncmp(res->msg, "basalt: ", 8) == 0 ||
               (res->rc != BS_EUNREACHABLE && res->rc != BS_ETIMEDOUT &&
                res->rc != BS_ESTOPPED)) {
        fail(f->call, res->rc, res->msg[0] ? res->msg : NULL);
    } else {
        char em[BS_RPC_ERRMSG_LEN];
        snprintf(em, sizeof(em),
                 "basalt: node %" PRIu64 ", the placement leader as far as "
                 "this node knows, %s; try again",
                 f->node,
                 res->rc == BS_ETIMEDOUT ? "did not answer in time"
                                         : "is unreachable");
        fail(f->call, res->rc, em);
    }
    free(f);
}

/* The node that leads the placement group as this node knows it (its own
 * replica of shard 0 first, else placement's hint), 0 if unknown. *live:
 * the answer comes from this node's own replica. */
static uint64_t pd_leader_node(struct bs_node *n, bool *live)
{
    struct bs_eng_group_info gi;
    *live = bs_eng_store_group(n->store, BS_PD_SHARD_PLACEMENT, &gi) == 0 &&
            gi.leader;
    if (*live)
        return BS_ENG_REPLICA_NODE(gi.leader);
    const struct bs_pd_state *pd = bs_node__pd(n);
    const struct bs_pd_shard *p0 =
        pd ? bs_pd_shard_find(pd, BS_PD_SHARD_PLACEMENT) : NULL;
    return p0 && p0->leader ? BS_ENG_REPLICA_NODE(p0->leader) : 0;
}

static void forward(struct bs_node *n, enum bs_node_pd_admin kind,
                    struct bs_rpc_call *call, const uint8_t *req, size_t len,
                    bool forwarded)
{
    bool live = false;
    uint64_t node = pd_leader_node(n, &live);
    if (node == n->o.node_id && live) {
        /* Raft made this node the leader, but its statistics are not
         * live yet (they start at the next tick). */
        fail(call, BS_EUNAVAIL,
             "basalt: this node has just become the "
             "placement leader; try again");
        return;
    }
    if (node == n->o.node_id)
        node = 0; /* placement's hint is stale: it names this node */
    struct bs_rpc_channel *ch =
        !forwarded && node ? bs_peer_net_channel(n->net, node) : NULL;
    if (!ch) {
        fail(call, forwarded ? BS_ENOTLEADER : BS_EUNAVAIL, MSG_NO_LEADER);
        return;
    }
    struct fwd_ctx *f = calloc(1, sizeof(*f));
    if (!f) {
        fail(call, BS_ENOMEM, NULL);
        return;
    }
    *f = (struct fwd_ctx){call, node};
    int rc = bs_rpc_channel_call(ch, method_of[kind], req, len,
                                 BS_NODE_FORWARD_TIMEOUT_MS, on_forwarded, f);
    if (rc != 0) {
        free(f);
        fail(call, BS_EUNREACHABLE,
             "basalt: the placement leader's node is "
             "unreachable; try again");
    }
}

/* ------------------------------------------------------------------ Join */

struct join_ctx {
    struct bs_rpc_call *call;
    uint64_t node_id; /* asked for; 0 = allocate */
};

/* "HOST:PORT" (HOST may be "[v6]"): a host before the last ':', a port
 * of 1 to 5 digits up to 65535 after it. */
static bool addr_ok(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || !colon[1] || strlen(colon + 1) > 5)
        return false;
    unsigned port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (unsigned)(*p - '0');
    }
    return port <= 65535;
}

/* Node pn as the Admin API shows it (NodeStatus); replicas and leaders
 * are left 0 (the caller counts them if it needs them). */
static void node_view(struct bs_node *n, const struct bs_pd_node *pn,
                      struct bs_adm_node *an)
{
    memset(an, 0, sizeof(*an));
    an->id = pn->info.id;
    snprintf(an->client_addr, sizeof(an->client_addr), "%s",
             pn->info.client_addr);
    snprintf(an->peer_addr, sizeof(an->peer_addr), "%s", pn->info.peer_addr);
    snprintf(an->http_addr, sizeof(an->http_addr), "%s", pn->info.http_addr);
    snprintf(an->state, sizeof(an->state), "%s",
             bs_pd_node_state_name(pn->state));
    const char *rack = bs_pd_node_label(pn, "rack");
    snprintf(an->rack, sizeof(an->rack), "%s", rack ? rack : "");
    an->alive = bs_node__alive(n, an->id);
}

/* Loop thread: answers a join of node id with every node placement
 * knows, so that the new node can reach them before it has a view. */
static void answer_join(struct bs_node *n, struct bs_rpc_call *call,
                        uint64_t id)
{
    const struct bs_pd_state *pd = bs_node__pd(n);
    struct bs_adm_join j;
    memset(&j, 0, sizeof(j));
    j.node_id = id;
    j.cluster_id = n->cluster_id;
    if (!j.cluster_id && pd)
        j.cluster_id = bs_pd_cluster_id(pd);
    size_t nn = pd ? bs_pd_node_count(pd) : 0;
    j.nodes = calloc(nn ? nn : 1, sizeof(*j.nodes));
    if (!j.nodes) {
        fail(call, BS_ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < nn; i++)
        node_view(n, bs_pd_node_at(pd, i), &j.nodes[i]);
    j.n_nodes = nn;
    uint8_t *out = NULL;
    size_t len = 0;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_join_resp_encode(&j, &out, &len, em);
    free(j.nodes);
    reply_buf(call, rc, out, len, em);
}

static void join_done(struct bs_node *n, void *ctx, int status,
                      uint64_t first_id)
{
    struct join_ctx *c = ctx;
    char em[BS_RPC_ERRMSG_LEN];
    uint64_t id = c->node_id ? c->node_id : first_id;
    if ((status == 0 || status == BS_ESTALE) && id != 0) {
        bs_log(BS_LOG_INFO, MOD, "node joined node=%" PRIu64 " new=%d", id,
               status == 0);
        answer_join(n, c->call, id);
    } else if (status == 0 || status == BS_ESTALE) {
        fail(c->call, BS_EUNAVAIL,
             "basalt: placement registered the node but "
             "gave it no id; try again");
    } else if (status == BS_EEXIST) {
        snprintf(em, sizeof(em),
                 "basalt: node %" PRIu64 " was removed; start it with a new "
                 "data directory",
                 c->node_id);
        fail(c->call, BS_EEXIST, em);
    } else {
        char what[64];
        if (c->node_id)
            snprintf(what, sizeof(what), "the join of node %" PRIu64,
                     c->node_id);
        else
            snprintf(what, sizeof(what), "the join");
        refusal(em, sizeof(em), status, what);
        fail(c->call, status, em);
    }
    free(c);
}

static void pd_join(struct bs_node *n, struct bs_rpc_call *call,
                    const uint8_t *req, size_t len)
{
    struct bs_adm_join j;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_join_req_decode(req, len, &j, em);
    if (rc != 0) {
        fail(call, rc, em);
        return;
    }
    rc = BS_EINVAL;
    if (j.node_id == 0 && j.join_token == 0)
        snprintf(em, sizeof(em),
                 "basalt: a join without a node id needs a join token");
    else if (j.node_id > UINT32_MAX)
        snprintf(em, sizeof(em),
                 "basalt: node id %" PRIu64 " is not in 1 .. 4294967295",
                 j.node_id);
    else if (!addr_ok(j.client_addr))
        snprintf(em, sizeof(em),
                 "basalt: the client address \"%.64s\" is not HOST:PORT",
                 j.client_addr);
    else if (!addr_ok(j.peer_addr))
        snprintf(em, sizeof(em),
                 "basalt: the peer address \"%.64s\" is not HOST:PORT",
                 j.peer_addr);
    else if (j.http_addr[0] && !addr_ok(j.http_addr))
        snprintf(em, sizeof(em),
                 "basalt: the HTTP address \"%.64s\" is not HOST:PORT",
                 j.http_addr);
    else
        rc = 0;
    struct bs_pd_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    struct bs_pd_node_info *ni = &cmd.u.register_node.node;
    for (uint32_t i = 0; rc == 0 && i < j.n_labels; i++) {
        const struct bs_adm_label *l = &j.labels[i];
        if (!l->key[0]) {
            snprintf(em, sizeof(em), "basalt: a label has an empty key");
            rc = BS_EINVAL;
        }
        for (uint32_t k = 0; rc == 0 && k < i; k++) {
            if (strcmp(j.labels[k].key, l->key) == 0) {
                snprintf(em, sizeof(em),
                         "basalt: label \"%.64s\" is given twice", l->key);
                rc = BS_EINVAL;
            }
        }
        snprintf(ni->labels[i].key, sizeof(ni->labels[i].key), "%s", l->key);
        snprintf(ni->labels[i].value, sizeof(ni->labels[i].value), "%s",
                 l->value);
    }
    if (rc != 0) {
        bs_adm_join_free(&j);
        fail(call, rc, em);
        return;
    }
    cmd.type = BS_PD_CMD_REGISTER_NODE;
    ni->id = j.node_id;
    snprintf(ni->client_addr, sizeof(ni->client_addr), "%s", j.client_addr);
    snprintf(ni->peer_addr, sizeof(ni->peer_addr), "%s", j.peer_addr);
    snprintf(ni->http_addr, sizeof(ni->http_addr), "%s", j.http_addr);
    ni->n_labels = j.n_labels;
    cmd.u.register_node.now = bs_node__wall_ms();
    cmd.u.register_node.join_token = j.join_token;
    struct join_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        bs_adm_join_free(&j);
        fail(call, BS_ENOMEM, NULL);
        return;
    }
    c->call = call;
    c->node_id = j.node_id;
    bs_adm_join_free(&j);
    rc = propose(n, &cmd, join_done, c, "the join", em, sizeof(em));
    if (rc != 0)
        fail(call, rc, em);
}

/* ------------------------------------------------------------ RemoveNode */

struct remove_ctx {
    struct bs_rpc_call *call;
    uint64_t node_id;
    bool cancel;
};

/* Loop thread: the node's state and the replicas it still holds. */
static void answer_remove(struct bs_node *n, struct bs_rpc_call *call,
                          uint64_t id)
{
    const struct bs_pd_state *pd = bs_node__pd(n);
    const struct bs_pd_node *pn = pd ? bs_pd_node_find(pd, id) : NULL;
    struct bs_adm_remove r;
    memset(&r, 0, sizeof(r));
    r.node_id = id;
    if (pn) {
        snprintf(r.state, sizeof(r.state), "%s",
                 bs_pd_node_state_name(pn->state));
        r.replicas = replicas_on(pd, id);
    }
    uint8_t *out = NULL;
    size_t len = 0;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_remove_resp_encode(&r, &out, &len, em);
    reply_buf(call, rc, out, len, em);
}

static void remove_done(struct bs_node *n, void *ctx, int status,
                        uint64_t first_id)
{
    (void)first_id;
    struct remove_ctx *c = ctx;
    char em[BS_RPC_ERRMSG_LEN];
    /* BS_ESTALE: the node was in the asked state already (a retry). */
    if (status == 0 || status == BS_ESTALE) {
        bs_log(BS_LOG_INFO, MOD, "%s node=%" PRIu64,
               c->cancel ? "decommission cancelled" : "decommission started",
               c->node_id);
        answer_remove(n, c->call, c->node_id);
    } else {
        /* A refused command changed nothing: the check apply made gives
         * the same answer on the state as it is now. */
        const struct bs_pd_state *pd =
            apply_outcome(status) ? bs_node__pd(n) : NULL;
        char why[160] = "";
        if (!c->cancel && pd && (status == BS_EBUSY || status == BS_EINVAL) &&
            bs_pd_can_decommission(pd, c->node_id, why) != 0)
            snprintf(em, sizeof(em),
                     "basalt: node %" PRIu64 " cannot be decommissioned: %s",
                     c->node_id, why);
        else if (status == BS_ENOTFOUND)
            snprintf(em, sizeof(em), "basalt: there is no node %" PRIu64,
                     c->node_id);
        else if (status == BS_EINVAL && c->cancel)
            snprintf(em, sizeof(em),
                     "basalt: node %" PRIu64 " is not being decommissioned",
                     c->node_id);
        else {
            char what[80];
            snprintf(what, sizeof(what), "the %s of node %" PRIu64,
                     c->cancel ? "return to service" : "decommission",
                     c->node_id);
            refusal(em, sizeof(em), status, what);
        }
        fail(c->call, status, em);
    }
    free(c);
}

static void pd_remove(struct bs_node *n, struct bs_rpc_call *call,
                      const uint8_t *req, size_t len)
{
    struct bs_adm_remove r;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_remove_req_decode(req, len, &r, em);
    if (rc != 0) {
        fail(call, rc, em);
        return;
    }
    const struct bs_pd_state *pd = bs_node__pd(n);
    const struct bs_pd_node *pn = bs_pd_node_find(pd, r.node_id);
    if (!pn || pn->state == BS_PD_NODE_REMOVED) {
        snprintf(em, sizeof(em),
                 pn ? "basalt: node %" PRIu64 " was removed already"
                    : "basalt: there is no node %" PRIu64,
                 r.node_id);
        fail(call, BS_ENOTFOUND, em);
        return;
    }
    uint8_t to;
    if (r.cancel) {
        if (pn->state != BS_PD_NODE_DRAINING) {
            snprintf(em, sizeof(em),
                     "basalt: node %" PRIu64 " is not being decommissioned",
                     r.node_id);
            fail(call, BS_EINVAL, em);
            return;
        }
        to = BS_PD_NODE_UP;
    } else if (pn->state == BS_PD_NODE_DRAINING) {
        /* Being decommissioned already: a retry, answered as a success. */
        answer_remove(n, call, r.node_id);
        return;
    } else {
        char why[160] = "";
        rc = bs_pd_can_decommission(pd, r.node_id, why);
        if (rc != 0) {
            snprintf(em, sizeof(em),
                     "basalt: node %" PRIu64 " cannot be decommissioned: %s",
                     r.node_id, why[0] ? why : bs_strerror(rc));
            fail(call, rc, em);
            return;
        }
        to = BS_PD_NODE_DRAINING;
    }
    struct remove_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        fail(call, BS_ENOMEM, NULL);
        return;
    }
    *c = (struct remove_ctx){call, r.node_id, r.cancel};
    struct bs_pd_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_PD_CMD_UPDATE_NODE_STATE;
    cmd.u.node_state.node_id = r.node_id;
    cmd.u.node_state.state = to;
    cmd.u.node_state.now = bs_node__wall_ms();
    rc = propose(n, &cmd, remove_done, c, "the node's new state", em,
                 sizeof(em));
    if (rc != 0)
        fail(call, rc, em);
}

/* ------------------------------------------------------------- Rebalance */

/*
 * A rebalance that starts its plan: one OP_CREATE per planned operator,
 * all proposed at once, answered when the last one has come back. refs
 * counts the proposals outstanding plus one held while proposing, so the
 * answer cannot go out before every proposal was made; the one that drops
 * it to zero answers and frees. Once the loop has stopped, the remaining
 * done callbacks may run on other threads (BS_ESTOPPED): the answer is
 * built from this struct alone, never from the placement view.
 */
struct rebal;

struct rebal_slot {
    struct rebal *r;
    size_t i;
};

struct rebal {
    struct bs_rpc_call *call;
    atomic_size_t refs;
    struct bs_adm_op *plan; /* n_plan, split keys owned */
    size_t n_plan;
    int *status;                 /* per plan entry: the proposal's outcome */
    struct rebal_slot *slots;    /* per plan entry: the done context */
    struct bs_adm_op *in_flight; /* before this call; keys owned */
    size_t n_in_flight;
};

static void rebal_free(struct rebal *r)
{
    if (!r)
        return;
    ops_free(r->plan, r->n_plan);
    ops_free(r->in_flight, r->n_in_flight);
    free(r->status);
    free(r->slots);
    free(r);
}

/* Answers with the operators created (or, in a dry run, planned), and
 * frees r. */
static void rebal_answer(struct rebal *r)
{
    size_t k = 0;
    int first_err = 0;
    for (size_t i = 0; i < r->n_plan; i++) {
        if (r->status[i] == 0) {
            struct bs_adm_op tmp = r->plan[k];
            r->plan[k++] = r->plan[i];
            r->plan[i] = tmp;
        } else if (!first_err && !apply_outcome(r->status[i])) {
            first_err = r->status[i];
        }
    }
    if (k == 0 && first_err) {
        /* Nothing was started, and not because placement said no. */
        char em[BS_RPC_ERRMSG_LEN];
        refusal(em, sizeof(em), first_err, "the rebalance");
        fail(r->call, first_err, em);
        rebal_free(r);
        return;
    }
    if (k < r->n_plan)
        bs_log(BS_LOG_INFO, MOD,
               "rebalance: %zu of %zu planned operators refused", r->n_plan - k,
               r->n_plan);
    struct bs_adm_rebalance resp = {
        .plan = r->plan,
        .n_plan = k,
        .in_flight = r->in_flight,
        .n_in_flight = r->n_in_flight,
    };
    uint8_t *out = NULL;
    size_t len = 0;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_rebalance_resp_encode(&resp, &out, &len, em);
    reply_buf(r->call, rc, out, len, em);
    rebal_free(r);
}

static void rebal_release(struct rebal *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        rebal_answer(r);
}

static void rebal_done(struct bs_node *n, void *ctx, int status,
                       uint64_t first_id)
{
    (void)n;
    struct rebal_slot *s = ctx;
    struct rebal *r = s->r;
    r->status[s->i] = status;
    if (status == 0)
        r->plan[s->i].id = first_id;
    rebal_release(r);
}

static void pd_rebalance(struct bs_node *n, struct bs_rpc_call *call,
                         const uint8_t *req, size_t len)
{
    struct bs_adm_rebalance q;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_rebalance_req_decode(req, len, &q, em);
    if (rc != 0) {
        fail(call, rc, em);
        return;
    }
    bool dry_run = q.dry_run;
    uint32_t max_moves = q.max_moves;
    bs_adm_rebalance_free(&q);
    const struct bs_pd_state *pd = bs_node__pd(n);
    uint64_t now = bs_node__wall_ms();
    /* An operator's rebalance is planned whether or not the scheduler is
     * paused (pausing stops the automatic scheduling only). A dry run
     * shows the whole plan (up to --max-moves); a run without
     * --max-moves starts as many moves as max_concurrent_moves allows,
     * one with --max-moves that many. At most one operator per shard is
     * ever planned: no more room. */
    size_t cap = max_moves      ? max_moves
                 : dry_run      ? PD_ADMIN_PLAN_CAP
                                : n->sched.max_concurrent_moves;
    if (cap > bs_pd_shard_count(pd))
        cap = bs_pd_shard_count(pd);
    if (cap > BS_ADM_MAX_OPS)
        cap = BS_ADM_MAX_OPS;
    struct bs_pd_op *ops = calloc(cap ? cap : 1, sizeof(*ops));
    struct rebal *r = calloc(1, sizeof(*r));
    if (r) {
        r->plan = calloc(cap ? cap : 1, sizeof(*r->plan));
        r->status = calloc(cap ? cap : 1, sizeof(*r->status));
        r->slots = calloc(cap ? cap : 1, sizeof(*r->slots));
    }
    rc = ops && r && r->plan && r->status && r->slots ? 0 : BS_ENOMEM;
    if (rc == 0)
        rc = ops_in_flight(pd, now, &r->in_flight, &r->n_in_flight);
    size_t np = 0;
    if (rc == 0)
        np = bs_pd_schedule(pd, bs_node__pd_stats(n), &n->sched, now, true,
                            ops, cap);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        rc = op_copy(&ops[i], now, &r->plan[i]);
        r->n_plan = i + 1; /* its key is r's to free from now on */
    }
    if (rc != 0) {
        free(ops);
        rebal_free(r);
        fail(call, rc, NULL);
        return;
    }
    r->call = call;
    atomic_init(&r->refs, 1);
    for (size_t i = 0; !dry_run && i < np; i++) {
        struct bs_pd_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = BS_PD_CMD_OP_CREATE;
        cmd.u.op = ops[i];
        cmd.u.op.created_at = now;
        r->slots[i] = (struct rebal_slot){r, i};
        atomic_fetch_add(&r->refs, 1);
        rc = bs_node__pd_propose(n, &cmd, rebal_done, &r->slots[i]);
        if (rc != 0) {
            r->status[i] = rc;
            atomic_fetch_sub(&r->refs, 1);
        }
    }
    free(ops);
    rebal_release(r);
}

/* ------------------------------------------------------------- IsrStatus */

/* Voters of a configuration (those of the incoming one when it is joint:
 * the ISR minimum is about the configuration writes will need). */
static uint32_t pd_voters(const struct bs_pd_shard *ps)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < ps->n_replicas; i++)
        v += ps->replicas[i].role == BS_PD_ROLE_VOTER ||
             ps->replicas[i].role == BS_PD_ROLE_INCOMING_VOTER;
    return v;
}

/*
 * Shard ps as its leader last reported it. A shard without a report yet
 * (a new placement leader, a shard without a leader) shows placement's
 * replicas, none in sync, commit 0, and reported_ms_ago 0: 0 stands for
 * "no report", since a real report is never exactly 0 ms old by the time
 * the heartbeat was handled and this answer built (and the CLI shows
 * replicas all out of sync, which is the safe reading).
 */
static void isr_view(struct bs_node *n, const struct bs_pd_stats *stats,
                     const struct bs_pd_shard *ps, uint64_t now,
                     struct bs_adm_isr_shard *is)
{
    memset(is, 0, sizeof(*is));
    is->shard_id = ps->id;
    uint64_t at = 0;
    const struct bs_pd_shard_stat *st =
        stats ? bs_pd_stats_shard(stats, ps->id, &at, NULL) : NULL;
    if (!st) {
        is->leader_node = ps->leader ? BS_ENG_REPLICA_NODE(ps->leader) : 0;
        is->term = ps->leader_term;
        is->min_insync = bs_node__min_insync(n, pd_voters(ps));
        for (uint32_t i = 0; i < ps->n_replicas; i++) {
            struct bs_adm_isr_replica *r = &is->replicas[is->n_replicas++];
            r->replica_id = ps->replicas[i].id;
            r->node_id = ps->replicas[i].node_id;
            r->learner = ps->replicas[i].role == BS_PD_ROLE_LEARNER;
        }
        return;
    }
    is->leader_node = BS_ENG_REPLICA_NODE(st->leader);
    is->term = st->term;
    is->commit = st->commit;
    is->size_bytes = st->size_bytes;
    is->keys = st->keys;
    is->read_qps = st->read_qps;
    is->write_qps = st->write_qps;
    is->reported_ms_ago = ms_since(now, at);
    uint32_t voters = 0;
    for (uint32_t i = 0; i < st->n_replicas && i < BS_RAFT_MAX_MEMBERS; i++) {
        const struct bs_pd_replica_stat *rs = &st->replicas[i];
        struct bs_adm_isr_replica *r = &is->replicas[is->n_replicas++];
        *r = (struct bs_adm_isr_replica){
            .replica_id = rs->replica_id,
            .node_id = rs->node_id,
            .learner = rs->learner,
            .match = rs->match,
            .lag_entries = rs->lag_entries,
            .lag_ms = rs->lag_ms,
            .in_sync = rs->in_sync,
        };
        voters += !rs->learner;
        if (rs->replica_id == st->leader)
            is->leader_node = rs->node_id;
    }
    is->min_insync = bs_node__min_insync(n, voters);
}

static void pd_isr(struct bs_node *n, struct bs_rpc_call *call,
                   const uint8_t *req, size_t len)
{
    uint64_t id = 0;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_isr_req_decode(req, len, &id, em);
    if (rc != 0) {
        fail(call, rc, em);
        return;
    }
    const struct bs_pd_state *pd = bs_node__pd(n);
    const struct bs_pd_stats *stats = bs_node__pd_stats(n);
    const struct bs_pd_shard *one = id ? bs_pd_shard_find(pd, id) : NULL;
    if (id && !one) {
        snprintf(em, sizeof(em), "basalt: there is no shard %" PRIu64, id);
        fail(call, BS_ENOTFOUND, em);
        return;
    }
    size_t ns = one ? 1 : bs_pd_shard_count(pd);
    struct bs_adm_isr_shard *sh = calloc(ns ? ns : 1, sizeof(*sh));
    if (!sh) {
        fail(call, BS_ENOMEM, NULL);
        return;
    }
    uint64_t now = bs_node__wall_ms();
    for (size_t i = 0; i < ns; i++)
        isr_view(n, stats, one ? one : bs_pd_shard_at(pd, i), now, &sh[i]);
    uint8_t *out = NULL;
    size_t olen = 0;
    rc = bs_adm_isr_resp_encode(sh, ns, &out, &olen, em);
    free(sh);
    reply_buf(call, rc, out, olen, em);
}

/* ----------------------------------------------------------------- Split */

struct split_ctx {
    struct bs_rpc_call *call;
    uint64_t shard_id;
};

static void split_done(struct bs_node *n, void *ctx, int status,
                       uint64_t first_id)
{
    struct split_ctx *c = ctx;
    char em[BS_RPC_ERRMSG_LEN] = "";
    if (status == 0) {
        struct bs_adm_split s = {.shard_id = c->shard_id, .op_id = first_id};
        /* The operator carries the new shard's id from its creation (a
         * command forwarded elsewhere may not have applied here yet: 0,
         * and the CLI shows the operator). */
        const struct bs_pd_state *pd = bs_node__pd(n);
        const struct bs_pd_op *op = pd ? bs_pd_op_find(pd, first_id) : NULL;
        s.new_shard_id = op ? op->new_shard_id : 0;
        bs_log(BS_LOG_INFO, MOD,
               "split requested shard=%" PRIu64 " op=%" PRIu64
               " new_shard=%" PRIu64,
               c->shard_id, first_id, s.new_shard_id);
        uint8_t *out = NULL;
        size_t len = 0;
        int rc = bs_adm_split_resp_encode(&s, &out, &len, em);
        reply_buf(c->call, rc, out, len, em);
        free(c);
        return;
    }
    if (status == BS_EBUSY)
        snprintf(em, sizeof(em),
                 "basalt: shard %" PRIu64 " already has an operator in "
                 "flight; try again once it finishes",
                 c->shard_id);
    else if (status == BS_ERANGE)
        snprintf(em, sizeof(em),
                 "basalt: the key is outside shard %" PRIu64 "'s range",
                 c->shard_id);
    else if (status == BS_ENOTFOUND)
        snprintf(em, sizeof(em), "basalt: there is no shard %" PRIu64,
                 c->shard_id);
    else {
        char what[64];
        snprintf(what, sizeof(what), "the split of shard %" PRIu64,
                 c->shard_id);
        refusal(em, sizeof(em), status, what);
    }
    fail(c->call, status, em);
    free(c);
}

/* 0 if shard s->shard_id may be split at s->key (empty: the leader picks);
 * else the code, with the sentence in em. */
static int split_check(const struct bs_pd_state *pd,
                       const struct bs_adm_split *s, char *em, size_t cap)
{
    if (s->shard_id == BS_PD_SHARD_PLACEMENT) {
        snprintf(em, cap, "basalt: shard 0 holds no keys");
        return BS_EINVAL;
    }
    const struct bs_pd_shard *ps = bs_pd_shard_find(pd, s->shard_id);
    if (!ps) {
        snprintf(em, cap, "basalt: there is no shard %" PRIu64, s->shard_id);
        return BS_ENOTFOUND;
    }
    if (s->key_len && !bs_pd_shard_contains(ps, s->key, s->key_len)) {
        snprintf(em, cap,
                 "basalt: the key is outside shard %" PRIu64 "'s range",
                 s->shard_id);
        return BS_EINVAL;
    }
    /* Strictly inside: at the start key, one side would be empty. */
    if (s->key_len && s->key_len == ps->start_len &&
        memcmp(s->key, ps->start, s->key_len) == 0) {
        snprintf(em, cap,
                 "basalt: the key is shard %" PRIu64 "'s start key; a split "
                 "needs a key strictly inside the range",
                 s->shard_id);
        return BS_EINVAL;
    }
    const struct bs_pd_op *busy = bs_pd_op_of_shard(pd, ps->id);
    if (busy) {
        snprintf(em, cap,
                 "basalt: shard %" PRIu64 " already has an operator in "
                 "flight (%s, id %" PRIu64 "); try again once it finishes",
                 s->shard_id, bs_pd_op_kind_name(busy->kind), busy->id);
        return BS_EBUSY;
    }
    return 0;
}

static void pd_split(struct bs_node *n, struct bs_rpc_call *call,
                     const uint8_t *req, size_t len)
{
    struct bs_adm_split s;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_split_req_decode(req, len, &s, em);
    if (rc != 0) {
        fail(call, rc, em);
        return;
    }
    rc = split_check(bs_node__pd(n), &s, em, sizeof(em));
    struct split_ctx *c = rc == 0 ? calloc(1, sizeof(*c)) : NULL;
    if (rc == 0 && !c)
        rc = BS_ENOMEM;
    if (rc == 0) {
        *c = (struct split_ctx){call, s.shard_id};
        struct bs_pd_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = BS_PD_CMD_OP_CREATE;
        cmd.u.op.kind = BS_PD_OP_SPLIT;
        cmd.u.op.reason = BS_PD_REASON_OPERATOR;
        cmd.u.op.shard_id = s.shard_id;
        cmd.u.op.split_key = s.key;
        cmd.u.op.split_key_len = s.key_len;
        cmd.u.op.created_at = bs_node__wall_ms();
        char what[64];
        snprintf(what, sizeof(what), "the split of shard %" PRIu64, s.shard_id);
        rc = propose(n, &cmd, split_done, c, what, em, sizeof(em));
    }
    free(s.key);
    if (rc != 0)
        fail(call, rc, em[0] ? em : NULL);
}

/* ------------------------------------------------------------- Scheduler */

/* Loop thread: the scheduler's settings, state and operators. */
static void answer_sched(struct bs_node *n, struct bs_rpc_call *call)
{
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (!pd) {
        fail(call, BS_EUNAVAIL, "basalt: this node has no placement view yet");
        return;
    }
    struct bs_adm_sched s;
    memset(&s, 0, sizeof(s));
    s.paused = bs_pd_sched(pd)->paused;
    s.max_concurrent_moves = n->sched.max_concurrent_moves;
    s.split_size = n->sched.split_size;
    s.split_qps = n->sched.split_qps;
    s.down_after_ms = n->sched.down_after_ms;
    s.max_lag_entries = n->max_lag_entries;
    s.max_lag_ms = n->max_lag_ms;
    s.snapshot_rate = n->o.snapshot_rate;
    s.ops_finished = bs_pd_ops_finished(pd);
    s.ops_cancelled = bs_pd_ops_cancelled(pd);
    size_t k = bs_pd_op_count(pd);
    s.ops = calloc(k ? k : 1, sizeof(*s.ops));
    if (!s.ops) {
        fail(call, BS_ENOMEM, NULL);
        return;
    }
    uint64_t now = bs_node__wall_ms();
    for (size_t i = 0; i < k; i++)
        op_view(bs_pd_op_at(pd, i), now, &s.ops[i]);
    s.n_ops = k;
    uint8_t *out = NULL;
    size_t len = 0;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_sched_resp_encode(&s, &out, &len, em);
    free(s.ops);
    reply_buf(call, rc, out, len, em);
}

struct sched_ctx {
    struct bs_rpc_call *call;
    bool pause;
};

static void sched_done(struct bs_node *n, void *ctx, int status,
                       uint64_t first_id)
{
    (void)first_id;
    struct sched_ctx *c = ctx;
    /* BS_ESTALE: paused (resumed) already; the answer says so. */
    if (status == 0 || status == BS_ESTALE) {
        if (status == 0)
            bs_log(BS_LOG_INFO, MOD, "scheduler %s",
                   c->pause ? "paused" : "resumed");
        answer_sched(n, c->call);
    } else {
        char em[BS_RPC_ERRMSG_LEN];
        refusal(em, sizeof(em), status,
                c->pause ? "pausing the scheduler" : "resuming the scheduler");
        fail(c->call, status, em);
    }
    free(c);
}

static void pd_sched(struct bs_node *n, struct bs_rpc_call *call,
                     const uint8_t *req, size_t len)
{
    struct bs_adm_sched q;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_adm_sched_req_decode(req, len, &q, em);
    if (rc != 0) {
        fail(call, rc, em);
        return;
    }
    char action[sizeof(q.action)];
    snprintf(action, sizeof(action), "%s", q.action);
    bs_adm_sched_free(&q);
    /* An empty action (a request with no fields) is a "show". */
    if (!action[0] || strcmp(action, "show") == 0) {
        answer_sched(n, call);
        return;
    }
    bool pause = strcmp(action, "pause") == 0;
    if (!pause && strcmp(action, "resume") != 0) {
        snprintf(em, sizeof(em),
                 "basalt: unknown action \"%s\" (expected show, pause or "
                 "resume)",
                 action);
        fail(call, BS_EINVAL, em);
        return;
    }
    struct sched_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        fail(call, BS_ENOMEM, NULL);
        return;
    }
    *c = (struct sched_ctx){call, pause};
    struct bs_pd_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_PD_CMD_SET_SCHED;
    cmd.u.sched.paused = pause;
    rc = propose(n, &cmd, sched_done, c,
                 pause ? "pausing the scheduler" : "resuming the scheduler", em,
                 sizeof(em));
    if (rc != 0)
        fail(call, rc, em);
}

/* ------------------------------------------------------------- dispatch */

void bs_node__pd_admin(struct bs_node *n, enum bs_node_pd_admin kind,
                       struct bs_rpc_call *call, const uint8_t *req, size_t len,
                       bool forwarded)
{
    if (!bs_node__pd_leading(n) || !bs_node__pd(n) || !bs_node__pd_stats(n)) {
        forward(n, kind, call, req, len, forwarded);
        return;
    }
    switch (kind) {
    case BS_PD_ADMIN_JOIN:
        pd_join(n, call, req, len);
        break;
    case BS_PD_ADMIN_REMOVE_NODE:
        pd_remove(n, call, req, len);
        break;
    case BS_PD_ADMIN_REBALANCE:
        pd_rebalance(n, call, req, len);
        break;
    case BS_PD_ADMIN_ISR_STATUS:
        pd_isr(n, call, req, len);
        break;
    case BS_PD_ADMIN_SPLIT:
        pd_split(n, call, req, len);
        break;
    case BS_PD_ADMIN_SCHEDULER:
        pd_sched(n, call, req, len);
        break;
    default:
        fail(call, BS_ENOTIMPL, NULL);
        break;
    }
}
