/*
 * kv_svc.c - the etcd v3 KV service of a node (DESIGN.md section 6), and
 * the Forward service that carries a request to the node leading the
 * key's shard (rpc/proto/node.proto).
 *
 * Any node accepts any request. A request becomes a struct kv_op that the
 * loop thread drives piece by piece: a piece is the part of the request
 * that one shard holds. Put and Txn have one piece (a Txn whose keys span
 * shards is refused with FAILED_PRECONDITION); Range and DeleteRange have
 * one per shard their range overlaps, run one after the other in key order
 * (reverse order for a descending sort), each routed afresh when it starts,
 * so a split or a leader change between pieces is seen. `limit` is
 * honoured across pieces: once it is reached the remaining pieces only
 * count.
 *
 * Where a piece runs:
 *
 *   write, a replica here leads the shard   propose here
 *   write, the leader is on node N          forward to N (Forward/<m>)
 *   read, a replica is here                 serializable: read here now;
 *                                           else ReadIndex here (a
 *                                           follower's too), then read
 *   no replica here                         forward to placement's leader
 *                                           hint, or a replica's node
 *   no leader known (an election)           wait, retried every tick
 *
 * A forwarded request is executed, never forwarded again: its node
 * answers BS_ENOTLEADER when it does not lead the shard, and the origin
 * routes again. An op that waited longer than BS_NODE_REQUEST_BUDGET_MS
 * is answered UNAVAILABLE.
 *
 * Outcomes. A piece may be retried only when it certainly did not apply:
 * BS_ENOTLEADER, BS_EDROPPED, BS_EUNREACHABLE (the call never left),
 * BS_EUNAVAIL; and reads after any failure. BS_ETIMEDOUT (the outcome is
 * unknown) goes to the client as DEADLINE_EXCEEDED. A stale route (the
 * shard answers BS_ERANGE or BS_ESTALE) is retried once, routed again.
 *
 * Cross-shard ranges read each shard linearizably, but not all shards at
 * one instant; a cross-shard DeleteRange is atomic per shard, not as a
 * whole. Both are what TiKV's raw API does; the README says so.
 */
#define _GNU_SOURCE
#include "node_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "log.h"
#include "node.pb.h"

#define MOD BS_NODE_MOD

/* One registered method: which node, which command type, forwarded. */
struct kv_method {
    struct bs_node *n;
    uint8_t type;
    bool forwarded;
};

struct kv_op {
    struct bs_node *n;
    struct bs_rpc_call *call; /* answered exactly once by finish() */
    uint8_t type;
    bool forwarded; /* arrived on Forward: run here or refuse */
    uint8_t *buf;   /* the request bytes (owned); cmd borrows */
    size_t len;
    struct bs_shard_cmd cmd;
    uint64_t deadline;
    bool rerouted; /* the one stale-route retry was used */

    /* Pieces. The whole range is [key, end) of cmd (etcd conventions);
     * cur is the next piece's start (ascending) or end (descending). */
    bool multi;
    bool descending;
    bool done_all;
    uint8_t *cur;
    size_t cur_len;
    bool cur_inf; /* descending: the next piece ends at +infinity */
    struct bs_shard_cmd piece;
    uint64_t piece_shard;
    uint8_t *piece_start, *piece_end; /* owned copies of the bounds */
    size_t piece_start_len, piece_end_len;
    bool piece_end_inf;
    struct bs_shard_resp acc; /* what the pieces returned so far */
    uint64_t raft_term;

    /* A forwarded piece's answer, filled on a CQ thread. */
    int f_rc;
    char f_msg[256];
    struct bs_shard_resp f_resp;

    struct kv_op *next; /* n->waiting */

    /* Answered on an inbound Forward stream (call == NULL). */
    struct fwd_in *fin; /* holds a reference */
    uint64_t fin_id;
    /* Forwarded on an outbound Forward stream, in flight. */
    struct fwd_peer *fpeer;
    uint64_t fid;
    uint64_t fseq; /* the batch it went in (0: not sent yet) */
    uint64_t fdeadline;
    struct kv_op *fprev, *fnext; /* fpeer->inflight */
};

/* An inbound Forward stream: requests from one peer, answered in batches
 * (one per loop iteration). refs: one for the stream until on_end, one
 * per op answering on it, one per task in flight, one while dirty. */
struct fwd_in {
    struct bs_node *n;
    struct bs_rpc_sstream *s;
    atomic_int refs;
    struct bs_fwd_reply *pend; /* msg and resp owned */
    size_t n_pend, cap_pend;
    bool dirty;
    struct fwd_in *next_dirty;
};

/* The outbound Forward stream to one peer. Lives as long as the node. */
struct fwd_peer {
    struct bs_node *n;
    uint64_t node_id;
    struct bs_rpc_channel *ch; /* the channel st was opened on */
    struct bs_rpc_stream *st;
    struct bs_fwd_item *pend; /* this iteration's items; req owned */
    size_t n_pend, cap_pend;
    atomic_uint_fast64_t seq_accepted; /* batches the stream accepted */
    struct kv_op *inflight;            /* sent or pending, by fprev/fnext */
};

#define FWD_MAX_PEERS 64

static void run_piece(struct kv_op *op);

/* ------------------------------------------------------------ helpers */

static int cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl;
}

/* etcd's range end: "" = just key, "\0" = +infinity. */
static bool end_is_inf(const uint8_t *e, size_t el)
{
    return el == 1 && e[0] == 0;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (d && len)
        memcpy(d, p, len);
    return d;
}

static const char *method_name(uint8_t type)
{
    switch (type) {
    case BS_SHARD_CMD_PUT:
        return "Put";
    case BS_SHARD_CMD_DELETE_RANGE:
        return "DeleteRange";
    case BS_SHARD_CMD_RANGE:
        return "Range";
    case BS_SHARD_CMD_TXN:
        return "Txn";
    }
    return "?";
}

static bool is_read(const struct kv_op *op)
{
    return op->type == BS_SHARD_CMD_RANGE;
}

static void fin_unref(struct fwd_in *f);
static void fin_add_reply(struct fwd_in *f, uint64_t id, int rc,
                          enum bs_rpc_status st, const char *msg,
                          const uint8_t *resp, size_t len);
static void fwd_unlink(struct kv_op *op);

static void op_free(struct kv_op *op)
{
    if (op->fpeer)
        fwd_unlink(op);
    if (op->fin)
        fin_unref(op->fin);
    bs_rpc_kv_req_free(&op->cmd);
    bs_shard_resp_free(&op->acc);
    bs_shard_resp_free(&op->f_resp);
    free(op->buf);
    free(op->cur);
    free(op->piece_start);
    free(op->piece_end);
    free(op);
}

/* Answers op's requester: the client's call, or the peer that forwarded
 * it. st (not BS_RPC_OK) overrides the status rc would give. */
static void op_answer(struct kv_op *op, int rc, enum bs_rpc_status st,
                      const char *msg, const uint8_t *resp, size_t len)
{
    if (op->call) {
        if (st != BS_RPC_OK)
            (void)bs_rpc_call_fail_status(op->call, st, msg);
        else if (rc != 0)
            (void)bs_rpc_call_fail(op->call, rc, msg);
        else
            (void)bs_rpc_call_reply(op->call, resp, len);
        op->call = NULL;
    } else if (op->fin) {
        fin_add_reply(op->fin, op->fin_id, rc, st, msg, resp, len);
    }
}

/* The loop has stopped: answer UNAVAILABLE (a forwarding peer learns it
 * from its stream ending) and free. */
static void op_cancel(struct kv_op *op)
{
    if (op->call)
        (void)bs_rpc_call_fail(op->call, BS_EUNAVAIL,
                               "basalt: the node is stopping");
    op->call = NULL;
    op_free(op);
}

/* Answers the call and frees op. rc 0: resp (borrowed) is the answer. A
 * BS_EINVAL..-style rc goes out with its gRPC status and "bs-err" (so a
 * forwarding node gets the exact code back); status overrides the gRPC
 * status for etcd's FAILED_PRECONDITION. */
static void finish(struct kv_op *op, int rc, const char *msg,
                   const struct bs_shard_resp *resp)
{
    struct bs_node *n = op->n;
    if (rc == 0) {
        struct bs_rpc_header h = {
            .cluster_id = n->cluster_id,
            .member_id = n->o.node_id,
            .revision = resp->revision,
            .raft_term = op->raft_term,
        };
        uint8_t *out = NULL;
        size_t len = 0;
        char em[BS_RPC_ERRMSG_LEN] = "";
        int erc = bs_rpc_kv_resp_encode(&h, resp, &out, &len, em);
        if (erc == 0)
            op_answer(op, 0, BS_RPC_OK, NULL, out, len);
        else
            op_answer(op, erc, BS_RPC_OK, em, NULL, 0);
        free(out);
    } else {
        n->kv_errors++;
        op_answer(op, rc, BS_RPC_OK, msg && *msg ? msg : NULL, NULL, 0);
    }
    op_free(op);
}

static void finish_status(struct kv_op *op, enum bs_rpc_status st,
                          const char *msg)
{
    op->n->kv_errors++;
    op_answer(op, BS_EINVAL, st, msg, NULL, 0);
    op_free(op);
}

/* Parks op until the next tick (a leader to appear, a route to heal);
 * answers UNAVAILABLE once its budget is spent. */
static void wait_retry(struct kv_op *op, const char *why)
{
    if (op->n->loop_gone) {
        /* Stopping: no tick will come to retry it (a read failed by the
         * store's close, say). */
        finish(op, BS_EUNAVAIL, "basalt: the node is stopping", NULL);
        return;
    }
    if (bs_node__now() >= op->deadline) {
        char msg[400];
        snprintf(msg, sizeof(msg), "basalt: %.300s (gave up after %d ms)", why,
                 BS_NODE_REQUEST_BUDGET_MS);
        finish(op, BS_EUNAVAIL, msg, NULL);
        return;
    }
    op->next = op->n->waiting;
    op->n->waiting = op;
}

static void fwd_expire(struct bs_node *n);

void bs_node__kv_tick(struct bs_node *n)
{
    fwd_expire(n);
    struct kv_op *list = n->waiting;
    n->waiting = NULL;
    while (list) {
        struct kv_op *op = list;
        list = op->next;
        op->next = NULL;
        run_piece(op);
    }
}

void bs_node__kv_fail_waiting(struct bs_node *n)
{
    struct kv_op *list = n->waiting;
    n->waiting = NULL;
    while (list) {
        struct kv_op *op = list;
        list = op->next;
        finish(op, BS_EUNAVAIL, "basalt: the node is stopping", NULL);
    }
}

/* --------------------------------------------------------- the pieces */

/* The shard (placement's view) that holds key. */
static const struct bs_pd_shard *route(struct bs_node *n, const uint8_t *key,
                                       size_t len)
{
    const struct bs_pd_state *pd = bs_node__pd(n);
    const struct bs_pd_shard *ps = NULL;
    if (!pd || bs_pd_route(pd, key, len, &ps) != 0)
        return NULL;
    return ps;
}

/* The shard holding the keys just below end (end_inf: the last shard). */
static const struct bs_pd_shard *
route_below(struct bs_node *n, const uint8_t *end, size_t el, bool end_inf)
{
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (!pd)
        return NULL;
    size_t cnt = bs_pd_route_count(pd);
    const struct bs_pd_shard *best = NULL;
    for (size_t i = 0; i < cnt; i++) {
        const struct bs_pd_shard *ps = bs_pd_route_at(pd, i);
        if (end_inf || cmp_bytes(ps->start, ps->start_len, end, el) < 0)
            best = ps;
    }
    return best;
}

static bool shard_holds_range(const struct bs_pd_shard *ps, const uint8_t *key,
                              size_t kl, const uint8_t *end, size_t el)
{
    if (!bs_pd_shard_contains(ps, key, kl))
        return false;
    if (el == 0)
        return true;
    if (end_is_inf(end, el))
        return ps->end_len == 0;
    return ps->end_len == 0 || cmp_bytes(end, el, ps->end, ps->end_len) <= 0;
}

/* The single shard a Put or Txn touches; NULL with msg set when its keys
 * span shards (or no placement view exists yet: msg empty). */
static const struct bs_pd_shard *single_shard(struct kv_op *op, char *msg,
                                              size_t msz)
{
    struct bs_node *n = op->n;
    const struct bs_shard_cmd *c = &op->cmd;
    const uint8_t *k0 = NULL;
    size_t k0l = 0;
    msg[0] = '\0';
    if (c->type == BS_SHARD_CMD_PUT) {
        return route(n, c->u.put.key, c->u.put.key_len);
    }
    /* TXN: every key and range of compares and both branches. */
    const struct bs_pd_shard *ps = NULL;
    struct {
        const uint8_t *k, *e;
        size_t kl, el;
    } keys[3 * 128 + 1];
    size_t nk = 0;
    for (size_t i = 0; i < c->u.txn.n_compares && nk < 384; i++)
        keys[nk++] = (typeof(keys[0])){
            c->u.txn.compares[i].key, c->u.txn.compares[i].range_end,
            c->u.txn.compares[i].key_len, c->u.txn.compares[i].range_end_len};
    for (int br = 0; br < 2; br++) {
        const struct bs_shard_op *ops =
            br ? c->u.txn.failure : c->u.txn.success;
        size_t no = br ? c->u.txn.n_failure : c->u.txn.n_success;
        for (size_t i = 0; i < no && nk < 384; i++) {
            const struct bs_shard_op *o = &ops[i];
            if (o->type == BS_SHARD_CMD_PUT)
                keys[nk++] =
                    (typeof(keys[0])){o->u.put.key, NULL, o->u.put.key_len, 0};
            else if (o->type == BS_SHARD_CMD_DELETE_RANGE)
                keys[nk++] =
                    (typeof(keys[0])){o->u.del.key, o->u.del.range_end,
                                      o->u.del.key_len, o->u.del.range_end_len};
            else
                keys[nk++] = (typeof(keys[0])){
                    o->u.range.key, o->u.range.range_end, o->u.range.key_len,
                    o->u.range.range_end_len};
        }
    }
    if (nk == 0) {
        /* An empty Txn: etcd answers it with the current revision; any
         * shard will do. */
        static const uint8_t z = 0;
        return route(n, &z, 0);
    }
    k0 = keys[0].k;
    k0l = keys[0].kl;
    ps = route(n, k0, k0l);
    if (!ps)
        return NULL;
    for (size_t i = 0; i < nk; i++) {
        if (!shard_holds_range(ps, keys[i].k, keys[i].kl, keys[i].e,
                               keys[i].el)) {
            snprintf(msg, msz,
                     "basalt: this transaction touches keys of "
                     "more than one shard (\"%.*s\" and \"%.*s\"); "
                     "cross-shard transactions are not "
                     "implemented",
                     (int)(k0l > 40 ? 40 : k0l), (const char *)k0,
                     (int)(keys[i].kl > 40 ? 40 : keys[i].kl),
                     (const char *)keys[i].k);
            return NULL;
        }
    }
    return ps;
}

/* Sets op->piece (the part of the request shard ps holds, ascending from
 * op->cur or descending to it) and its bounds. */
static int make_piece(struct kv_op *op, const struct bs_pd_shard *ps)
{
    const struct bs_shard_cmd *c = &op->cmd;
    const uint8_t *key, *end;
    size_t kl, el;
    if (c->type == BS_SHARD_CMD_RANGE) {
        key = c->u.range.key;
        kl = c->u.range.key_len;
        end = c->u.range.range_end;
        el = c->u.range.range_end_len;
    } else {
        key = c->u.del.key;
        kl = c->u.del.key_len;
        end = c->u.del.range_end;
        el = c->u.del.range_end_len;
    }
    bool inf = end_is_inf(end, el);
    /* start = max(key, shard start) (ascending: cur), end = min(end, shard
     * end) (descending: cur). */
    const uint8_t *ps_s = ps->start, *ps_e = ps->end;
    size_t ps_sl = ps->start_len, ps_el = ps->end_len;
    const uint8_t *s = key;
    size_t sl = kl;
    if (!op->descending && op->cur) {
        s = op->cur;
        sl = op->cur_len;
    }
    if (cmp_bytes(ps_s, ps_sl, s, sl) > 0) {
        s = ps_s;
        sl = ps_sl;
    }
    const uint8_t *e = end;
    size_t elen = el;
    bool e_inf = inf;
    if (op->descending && op->cur && !op->cur_inf) {
        e = op->cur;
        elen = op->cur_len;
        e_inf = false;
    }
    if (ps_el != 0 && (e_inf || cmp_bytes(ps_e, ps_el, e, elen) < 0)) {
        e = ps_e;
        elen = ps_el;
        e_inf = false;
    }
    free(op->piece_start);
    free(op->piece_end);
    op->piece_start = dup_bytes(s, sl);
    op->piece_end = e_inf ? NULL : dup_bytes(e, elen);
    if (!op->piece_start || (!e_inf && !op->piece_end))
        return BS_ENOMEM;
    op->piece_start_len = sl;
    op->piece_end_len = e_inf ? 0 : elen;
    op->piece_end_inf = e_inf;
    static const uint8_t zero = 0;
    op->piece = *c;
    if (c->type == BS_SHARD_CMD_RANGE) {
        struct bs_shard_range_req *r = &op->piece.u.range;
        r->key = op->piece_start;
        r->key_len = sl;
        r->range_end = e_inf ? &zero : op->piece_end;
        r->range_end_len = e_inf ? 1 : elen;
        if (c->u.range.limit > 0) {
            int64_t left = c->u.range.limit - (int64_t)op->acc.op.n_kvs;
            if (left <= 0)
                r->count_only = true; /* limit reached: count the rest */
            else
                r->limit = left;
        }
    } else {
        struct bs_shard_delete_req *d = &op->piece.u.del;
        d->key = op->piece_start;
        d->key_len = sl;
        d->range_end = e_inf ? &zero : op->piece_end;
        d->range_end_len = e_inf ? 1 : elen;
    }
    op->piece_shard = ps->id;
    return 0;
}

/* Moves the kvs of r into op->acc (appending). */
static int take_kvs(struct bs_shard_op_resp *acc, struct bs_shard_op_resp *r,
                    bool prepend)
{
    if (r->n_kvs == 0)
        return 0;
    struct bs_shard_kv *v =
        realloc(acc->kvs, (acc->n_kvs + r->n_kvs) * sizeof(*v));
    if (!v)
        return BS_ENOMEM;
    if (prepend) {
        memmove(v + r->n_kvs, v, acc->n_kvs * sizeof(*v));
        memcpy(v, r->kvs, r->n_kvs * sizeof(*v));
    } else {
        memcpy(v + acc->n_kvs, r->kvs, r->n_kvs * sizeof(*v));
    }
    acc->kvs = v;
    acc->n_kvs += r->n_kvs;
    free(r->kvs);
    r->kvs = NULL;
    r->n_kvs = 0;
    return 0;
}

/* A piece finished with resp (consumed). */
static void piece_done(struct kv_op *op, struct bs_shard_resp *resp)
{
    if (!op->multi) {
        finish(op, 0, NULL, resp);
        bs_shard_resp_free(resp);
        return;
    }
    struct bs_shard_resp *acc = &op->acc;
    acc->type = resp->type;
    acc->op.type = resp->op.type;
    if (resp->revision > acc->revision)
        acc->revision = resp->revision;
    acc->op.count += resp->op.count;
    acc->op.deleted += resp->op.deleted;
    acc->op.more |= resp->op.more;
    /* Ascending pieces append; a descending sort's pieces come in reverse
     * key order and each is sorted descending already: append too. */
    int rc = take_kvs(&acc->op, &resp->op, false);
    bs_shard_resp_free(resp);
    if (rc != 0) {
        finish(op, rc, NULL, NULL);
        return;
    }
    /* Next piece. */
    const uint8_t *next = op->descending ? op->piece_start : op->piece_end;
    size_t next_len = op->descending ? op->piece_start_len : op->piece_end_len;
    bool last;
    const struct bs_shard_cmd *c = &op->cmd;
    const uint8_t *key =
        c->type == BS_SHARD_CMD_RANGE ? c->u.range.key : c->u.del.key;
    size_t kl =
        c->type == BS_SHARD_CMD_RANGE ? c->u.range.key_len : c->u.del.key_len;
    if (op->descending)
        last = cmp_bytes(next, next_len, key, kl) <= 0;
    else
        last = op->piece_end_inf ||
               (op->piece_end_len == 0 && !op->piece_end_inf) || !op->piece_end;
    if (!op->descending && !last) {
        const uint8_t *end = c->type == BS_SHARD_CMD_RANGE
                                 ? c->u.range.range_end
                                 : c->u.del.range_end;
        size_t el = c->type == BS_SHARD_CMD_RANGE ? c->u.range.range_end_len
                                                  : c->u.del.range_end_len;
        if (!end_is_inf(end, el) && cmp_bytes(next, next_len, end, el) >= 0)
            last = true;
    }
    if (last) {
        if (c->type == BS_SHARD_CMD_RANGE && c->u.range.limit > 0 &&
            acc->op.count > (int64_t)acc->op.n_kvs)
            acc->op.more = true;
        if (c->type == BS_SHARD_CMD_RANGE && c->u.range.count_only) {
            free(acc->op.kvs);
            acc->op.kvs = NULL;
            acc->op.n_kvs = 0;
        }
        finish(op, 0, NULL, acc);
        return;
    }
    uint8_t *cur = dup_bytes(next, next_len);
    if (!cur) {
        finish(op, BS_ENOMEM, NULL, NULL);
        return;
    }
    free(op->cur);
    op->cur = cur;
    op->cur_len = next_len;
    op->cur_inf = false;
    op->rerouted = false;
    run_piece(op);
}

/* A piece failed with rc (and msg); retry when that is safe. */
static void piece_failed(struct kv_op *op, int rc, const char *msg)
{
    bool retry;
    switch (rc) {
    case BS_ENOTLEADER:
    case BS_EDROPPED:
    case BS_EUNREACHABLE:
    case BS_EUNAVAIL:
    case BS_ENOTFOUND: /* the replica is gone (moved) */
        retry = true;
        break;
    case BS_ERANGE:
    case BS_ESTALE:
        /* A stale route: the shard split or moved and placement has not
         * heard yet (its leader reports within a second). Retried at every
         * tick, like a missing leader, within the request's budget. */
        retry = true;
        op->rerouted = true;
        break;
    case BS_ETIMEDOUT:
    case BS_ESTOPPED:
        retry = is_read(op); /* a write's outcome is unknown */
        break;
    default:
        retry = false;
    }
    if (retry && !op->forwarded) {
        char why[300];
        snprintf(why, sizeof(why), "shard %" PRIu64 ": %s", op->piece_shard,
                 msg && *msg ? msg : bs_strerror(rc));
        wait_retry(op, why);
        return;
    }
    if (rc == BS_ETIMEDOUT && !is_read(op)) {
        finish(op, rc,
               "basalt: the request timed out; it may or may not "
               "have been applied",
               NULL);
        return;
    }
    finish(op, rc, msg, NULL);
}

/* ---------------------------------------------------- local execution */

static void on_proposed(void *ctx, int status, const void *resp, size_t len)
{
    struct kv_op *op = ctx;
    if (resp && len > 0) {
        struct bs_shard_resp r;
        bs_shard_resp_init(&r);
        int rc = bs_shard_resp_decode(resp, len, &r);
        if (rc != 0) {
            bs_shard_resp_free(&r);
            finish(op, BS_ECORRUPT, "basalt: an apply result did not decode",
                   NULL);
            return;
        }
        if (r.err != 0) {
            char msg[BS_SHARD_ERRMSG_LEN + 1];
            snprintf(msg, sizeof(msg), "%s", r.errmsg);
            int err = r.err;
            bs_shard_resp_free(&r);
            piece_failed(op, err, msg);
            return;
        }
        piece_done(op, &r);
        return;
    }
    piece_failed(op, status ? status : BS_EPROTO, NULL);
}

static void read_local(struct kv_op *op)
{
    struct bs_node *n = op->n;
    struct bs_shard *sh =
        bs_shard_sm_shard(bs_eng_store_sm(n->store, op->piece_shard));
    if (!sh) {
        piece_failed(op, BS_ENOTFOUND, "the replica has no data yet");
        return;
    }
    struct bs_shard_resp r;
    bs_shard_resp_init(&r);
    bs_node__count(n, op->piece_shard, false);
    /* The loop thread applies: the shard's memory is the db's. */
    int rc =
        bs_shard_range_live(sh, n->db, &sh->desc.epoch, &op->piece.u.range, &r);
    if (rc != 0) {
        char msg[BS_SHARD_ERRMSG_LEN + 1];
        snprintf(msg, sizeof(msg), "%s", r.errmsg);
        bs_shard_resp_free(&r);
        piece_failed(op, rc, msg);
        return;
    }
    piece_done(op, &r);
}

static void on_read_index(void *ctx, int status, const void *resp, size_t len)
{
    struct kv_op *op = ctx;
    (void)resp;
    (void)len;
    if (status != 0) {
        piece_failed(op, status, NULL);
        return;
    }
    read_local(op);
}

static void propose_local(struct kv_op *op, struct bs_shard *sh)
{
    struct bs_node *n = op->n;
    op->piece.epoch = sh->desc.epoch;
    char em[BS_SHARD_ERRMSG_LEN] = "";
    int rc = bs_shard_validate(sh, &op->piece, em);
    if (rc != 0) {
        piece_failed(op, rc, em);
        return;
    }
    /* min_insync_replicas (pd_svc.c): refused while too few replicas
     * are in sync; retried within the request's budget like a missing
     * leader, since the ISR may grow back. */
    char im[160];
    rc = bs_node__isr_check(n, op->piece_shard, im);
    if (rc != 0) {
        piece_failed(op, rc, im);
        return;
    }
    bs_node__count(n, op->piece_shard, true);
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = bs_shard_cmd_encode(&op->piece, &buf, &len);
    if (rc == 0) {
        rc = bs_eng_store_propose(n->store, op->piece_shard, buf, len,
                                  on_proposed, op);
        free(buf);
    }
    if (rc != 0)
        piece_failed(op, rc, NULL);
}

/* ------------------------------------------------------- forwarding */

static void task_forwarded(void *ctx, bool cancelled)
{
    struct kv_op *op = ctx;
    if (cancelled) {
        op_cancel(op);
        return;
    }
    if (op->f_rc != 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", op->f_msg);
        piece_failed(op, op->f_rc, msg);
        return;
    }
    struct bs_shard_resp r = op->f_resp;
    bs_shard_resp_init(&op->f_resp);
    piece_done(op, &r);
}

/* CQ thread: the answer of a forwarded piece. */
static void on_forwarded(void *ctx, const struct bs_rpc_result *res)
{
    struct kv_op *op = ctx;
    op->f_rc = res->rc;
    snprintf(op->f_msg, sizeof(op->f_msg), "%s", res->msg ? res->msg : "");
    bs_shard_resp_free(&op->f_resp);
    if (res->rc == 0) {
        char em[BS_RPC_ERRMSG_LEN] = "";
        int rc =
            bs_rpc_kv_resp_decode(op->type, res->data, res->len,
                                  &op->n->rpc_limits, NULL, &op->f_resp, em);
        if (rc != 0) {
            op->f_rc = rc;
            snprintf(op->f_msg, sizeof(op->f_msg),
                     "basalt: a forwarded answer did not decode: %s", em);
        }
    }
    if (op->f_rc == 0 && !op->multi) {
        /* The whole answer: relay it from here, sparing the loop a wake-up
         * (finish touches nothing the loop owns but a counter). */
        struct bs_shard_resp r = op->f_resp;
        bs_shard_resp_init(&op->f_resp);
        finish(op, 0, NULL, &r);
        bs_shard_resp_free(&r);
        return;
    }
    if (bs_node__post(op->n, task_forwarded, op) != 0) {
        op_answer(op, BS_ENOMEM, BS_RPC_OK, NULL, NULL, 0);
        op_free(op);
    }
}

/* ------------------------------------------- the Forward stream, out */

static void fwd_unlink(struct kv_op *op)
{
    struct fwd_peer *fp = op->fpeer;
    if (op->fprev)
        op->fprev->fnext = op->fnext;
    else
        fp->inflight = op->fnext;
    if (op->fnext)
        op->fnext->fprev = op->fprev;
    struct kv_op **slot = &fp->n->fwd_slots[op->fid & (BS_FWD_SLOTS - 1)];
    if (*slot == op)
        *slot = NULL;
    op->fpeer = NULL;
    op->fprev = op->fnext = NULL;
}

struct fwd_msg {
    struct fwd_peer *fp;
    uint8_t *buf; /* owned */
    size_t len;
    uint64_t down_seq; /* task_fwd_down */
    size_t ndropped;
};

/* A forwarded request whose answer will not come: a read, or a request
 * that never left, is tried again; a write that may have applied is
 * answered "unknown". */
static void fwd_lost(struct kv_op *op, bool never_sent, const char *why)
{
    if (never_sent || is_read(op))
        piece_failed(op, BS_EUNREACHABLE, why);
    else
        finish(op, BS_ETIMEDOUT,
               "basalt: the connection to the shard leader's node was lost; "
               "the request may or may not have been applied",
               NULL);
}

static void task_fwd_replies(void *ctx, bool cancelled)
{
    struct fwd_msg *m = ctx;
    struct bs_fwd_reply *r = NULL;
    size_t nr = 0;
    if (!cancelled && bs_fwd_replies_decode(m->buf, m->len, &r, &nr) != 0)
        bs_log(BS_LOG_WARN, MOD,
               "forward replies from node %" PRIu64 " do not decode: dropped",
               m->fp->node_id);
    struct bs_node *n = m->fp->n;
    for (size_t i = 0; !cancelled && i < nr; i++) {
        struct kv_op *op = n->fwd_slots[r[i].id & (BS_FWD_SLOTS - 1)];
        if (!op || op->fid != r[i].id || op->fpeer != m->fp)
            continue; /* timed out already */
        fwd_unlink(op);
        char msg[256];
        snprintf(msg, sizeof(msg), "%.*s",
                 (int)(r[i].msg_len > 255 ? 255 : r[i].msg_len),
                 r[i].msg ? r[i].msg : "");
        if (r[i].rc == 0) {
            struct bs_shard_resp resp;
            bs_shard_resp_init(&resp);
            char em[BS_RPC_ERRMSG_LEN] = "";
            int rc = bs_rpc_kv_resp_decode(op->type, r[i].resp, r[i].resp_len,
                                           &n->rpc_limits, NULL, &resp, em);
            if (rc != 0) {
                bs_shard_resp_free(&resp);
                finish(op, rc, em, NULL);
            } else {
                piece_done(op, &resp);
            }
        } else if (r[i].status != 0) {
            finish_status(op, (enum bs_rpc_status)r[i].status, msg);
        } else {
            piece_failed(op, r[i].rc, msg);
        }
    }
    free(r);
    free(m->buf);
    free(m);
}

static void task_fwd_down(void *ctx, bool cancelled)
{
    struct fwd_msg *m = ctx;
    struct fwd_peer *fp = m->fp;
    if (!cancelled) {
        /* Batches after down_seq - ndropped were never written. */
        size_t k = 0;
        for (struct kv_op *op = fp->inflight; op; op = op->fnext)
            k += op->fseq != 0 && op->fseq <= m->down_seq;
        struct kv_op **lost = malloc((k ? k : 1) * sizeof(*lost));
        k = 0;
        for (struct kv_op *op = fp->inflight; lost && op; op = op->fnext)
            if (op->fseq != 0 && op->fseq <= m->down_seq)
                lost[k++] = op;
        for (size_t i = 0; i < k; i++) {
            fwd_unlink(lost[i]);
            fwd_lost(lost[i], lost[i]->fseq + m->ndropped > m->down_seq,
                     "basalt: the shard leader's node is unreachable");
        }
        free(lost);
    }
    free(m);
}

/* CQ thread: answers from the peer. */
static void fwd_on_msg(void *ctx, const void *data, size_t len)
{
    struct fwd_peer *fp = ctx;
    struct fwd_msg *m = calloc(1, sizeof(*m));
    if (m)
        m->buf = malloc(len ? len : 1);
    if (!m || !m->buf) {
        free(m); /* lost: the ops time out */
        return;
    }
    memcpy(m->buf, data, len);
    m->len = len;
    m->fp = fp;
    if (bs_node__post(fp->n, task_fwd_replies, m) != 0) {
        free(m->buf);
        free(m);
    }
}

/* CQ thread: the stream went down; ndropped batches were never written. */
static void fwd_on_down(void *ctx, size_t ndropped, int rc)
{
    (void)rc;
    struct fwd_peer *fp = ctx;
    struct fwd_msg *m = calloc(1, sizeof(*m));
    if (!m)
        return;
    m->fp = fp;
    m->down_seq = atomic_load(&fp->seq_accepted);
    m->ndropped = ndropped;
    if (bs_node__post(fp->n, task_fwd_down, m) != 0)
        free(m);
}

/* The Forward stream to node on channel ch (opened on first use, and
 * again when the peer's channel changed); NULL when none can be had. */
static struct fwd_peer *fwd_peer_get(struct bs_node *n, uint64_t node,
                                     struct bs_rpc_channel *ch)
{
    struct fwd_peer *fp = NULL;
    for (size_t i = 0; i < n->n_fwd_peers && !fp; i++)
        if (n->fwd_peers[i].node_id == node)
            fp = &n->fwd_peers[i];
    if (!fp) {
        if (n->n_fwd_peers == FWD_MAX_PEERS)
            return NULL;
        fp = &n->fwd_peers[n->n_fwd_peers++];
        fp->n = n;
        fp->node_id = node;
    }
    if (fp->ch != ch || !fp->st) {
        struct bs_rpc_stream_opts so = {
            .method = "/basalt.node.Forward/Stream",
            .max_queued = 4096,
            .on_msg = fwd_on_msg,
            .on_unreachable = fwd_on_down,
            .ctx = fp,
        };
        struct bs_rpc_stream *st = NULL;
        if (bs_rpc_channel_open_stream(ch, &so, &st) != 0)
            return NULL;
        fp->ch = ch;
        fp->st = st; /* the old one, if any, stays with its channel */
    }
    return fp;
}

/* Sends the items gathered for fp during this iteration as one batch. */
static void fwd_flush_peer(struct fwd_peer *fp)
{
    struct bs_node *n = fp->n;
    struct bs_fwd_item *items = fp->pend;
    size_t k = fp->n_pend;
    fp->pend = NULL;
    fp->n_pend = fp->cap_pend = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = bs_fwd_batch_encode(items, k, &buf, &len);
    if (rc == 0)
        rc = bs_rpc_stream_send(fp->st, buf, len);
    free(buf);
    uint64_t seq = 0;
    if (rc == 0)
        seq = atomic_fetch_add(&fp->seq_accepted, 1) + 1;
    for (size_t i = 0; i < k; i++) {
        struct kv_op *op = n->fwd_slots[items[i].id & (BS_FWD_SLOTS - 1)];
        free((void *)items[i].req);
        if (!op || op->fid != items[i].id || op->fpeer != fp)
            continue;
        if (rc == 0) {
            op->fseq = seq;
        } else {
            fwd_unlink(op);
            piece_failed(op, BS_EUNREACHABLE,
                         "basalt: the shard leader's node is unreachable");
        }
    }
    free(items);
}

/* Forward stream ops that waited too long for their answer. */
static void fwd_expire(struct bs_node *n)
{
    uint64_t now = bs_node__now();
    for (size_t p = 0; p < n->n_fwd_peers; p++) {
        struct fwd_peer *fp = &n->fwd_peers[p];
        struct kv_op *op = fp->inflight;
        while (op) {
            struct kv_op *next = op->fnext;
            if (op->fseq != 0 && now >= op->fdeadline) {
                fwd_unlink(op);
                fwd_lost(op, false,
                         "basalt: the shard leader's node did "
                         "not answer in time");
            }
            op = next;
        }
    }
}

/* Unary forwarding: when the stream cannot take the request. */
static void forward_unary(struct kv_op *op, struct bs_rpc_channel *ch,
                          uint8_t *req, size_t len)
{
    char method[64];
    snprintf(method, sizeof(method), "/basalt.node.Forward/%s",
             method_name(op->type));
    int rc = bs_rpc_channel_call(ch, method, req, len,
                                 BS_NODE_FORWARD_TIMEOUT_MS, on_forwarded, op);
    free(req);
    if (rc != 0)
        piece_failed(op, BS_EUNREACHABLE, "basalt: forwarding failed");
}

static void forward_piece(struct kv_op *op, uint64_t node)
{
    struct bs_node *n = op->n;
    if (op->forwarded) {
        piece_failed(op, BS_ENOTLEADER, "basalt: not the shard's leader");
        return;
    }
    struct bs_rpc_channel *ch = bs_peer_net_channel(n->net, node);
    if (!ch) {
        char why[128];
        snprintf(why, sizeof(why), "node %" PRIu64 " has no known address",
                 node);
        wait_retry(op, why);
        return;
    }
    uint8_t *req = NULL;
    size_t len = 0;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_rpc_kv_req_encode(&op->piece, &req, &len, em);
    if (rc != 0) {
        finish(op, rc, em, NULL);
        return;
    }
    n->forwarded_out++;
    uint64_t id = ++n->fwd_next_id;
    struct kv_op **slot = &n->fwd_slots[id & (BS_FWD_SLOTS - 1)];
    struct fwd_peer *fp = *slot ? NULL : fwd_peer_get(n, node, ch);
    if (!fp) {
        forward_unary(op, ch, req, len);
        return;
    }
    if (fp->n_pend == fp->cap_pend) {
        size_t cap = fp->cap_pend ? fp->cap_pend * 2 : 64;
        struct bs_fwd_item *v = realloc(fp->pend, cap * sizeof(*v));
        if (!v) {
            forward_unary(op, ch, req, len);
            return;
        }
        fp->pend = v;
        fp->cap_pend = cap;
    }
    fp->pend[fp->n_pend++] = (struct bs_fwd_item){id, op->type, req, len};
    *slot = op;
    op->fid = id;
    op->fseq = 0;
    op->fpeer = fp;
    op->fdeadline = bs_node__now() + BS_NODE_FORWARD_TIMEOUT_MS;
    op->fprev = NULL;
    op->fnext = fp->inflight;
    if (fp->inflight)
        fp->inflight->fprev = op;
    fp->inflight = op;
}

/* -------------------------------------------- the Forward stream, in */

static void fin_unref(struct fwd_in *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    bs_rpc_sstream_close(f->s, 0, NULL);
    for (size_t i = 0; i < f->n_pend; i++) {
        free((void *)f->pend[i].msg);
        free((void *)f->pend[i].resp);
    }
    free(f->pend);
    free(f);
}

static void fin_add_reply(struct fwd_in *f, uint64_t id, int rc,
                          enum bs_rpc_status st, const char *msg,
                          const uint8_t *resp, size_t len)
{
    if (f->n_pend == f->cap_pend) {
        size_t cap = f->cap_pend ? f->cap_pend * 2 : 64;
        struct bs_fwd_reply *v = realloc(f->pend, cap * sizeof(*v));
        if (!v)
            return; /* the forwarding node times it out */
        f->pend = v;
        f->cap_pend = cap;
    }
    struct bs_fwd_reply *r = &f->pend[f->n_pend];
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->rc = rc;
    r->status = st;
    if (msg && *msg) {
        r->msg_len = strlen(msg);
        r->msg = strdup(msg);
        if (!r->msg)
            r->msg_len = 0;
    }
    if (len > 0) {
        uint8_t *c = malloc(len);
        if (!c)
            return;
        memcpy(c, resp, len);
        r->resp = c;
        r->resp_len = len;
    }
    f->n_pend++;
    if (!f->dirty) {
        f->dirty = true;
        atomic_fetch_add(&f->refs, 1);
        f->next_dirty = f->n->fwd_dirty;
        f->n->fwd_dirty = f;
    }
}

struct fin_batch {
    struct fwd_in *f;
    uint8_t *buf; /* owned */
    size_t len;
};

static void task_fin_batch(void *ctx, bool cancelled)
{
    struct fin_batch *b = ctx;
    struct fwd_in *f = b->f;
    struct bs_node *n = f->n;
    struct bs_fwd_item *it = NULL;
    size_t k = 0;
    if (!cancelled && bs_fwd_batch_decode(b->buf, b->len, &it, &k) != 0)
        bs_log(BS_LOG_WARN, MOD, "a forward batch does not decode: dropped");
    for (size_t i = 0; !cancelled && i < k; i++) {
        struct kv_op *op = calloc(1, sizeof(*op));
        if (!op)
            break;
        op->n = n;
        op->type = it[i].type;
        op->forwarded = true;
        op->fin = f;
        op->fin_id = it[i].id;
        atomic_fetch_add(&f->refs, 1);
        op->deadline = bs_node__now() + BS_NODE_REQUEST_BUDGET_MS;
        bs_shard_resp_init(&op->acc);
        bs_shard_resp_init(&op->f_resp);
        op->buf = dup_bytes(it[i].req, it[i].len);
        op->len = it[i].len;
        char em[BS_RPC_ERRMSG_LEN] = "";
        int rc = op->buf ? 0 : BS_ENOMEM;
        if (rc == 0 && !bs_rpc_kv_method(op->type))
            rc = BS_EPROTO;
        if (rc == 0)
            rc = bs_rpc_kv_req_decode(op->type, op->buf, op->len,
                                      &n->rpc_limits, &op->cmd, em);
        if (rc == 0 && atomic_load(&n->stopping)) {
            rc = BS_EUNAVAIL;
            snprintf(em, sizeof(em), "the node is stopping");
        }
        if (rc != 0) {
            char msg[BS_RPC_ERRMSG_LEN + 32];
            snprintf(msg, sizeof(msg), "basalt: %s",
                     em[0] ? em : bs_strerror(rc));
            op_answer(op, rc, BS_RPC_OK, msg, NULL, 0);
            op_free(op);
            continue;
        }
        if (op->type == BS_SHARD_CMD_RANGE &&
            op->cmd.u.range.sort_order == BS_SHARD_SORT_DESCEND &&
            op->cmd.u.range.sort_target == BS_SHARD_SORT_KEY)
            op->descending = true;
        n->kv_requests++;
        n->forwarded_in++;
        run_piece(op);
    }
    free(it);
    free(b->buf);
    free(b);
    fin_unref(f);
}

static void *fin_open(struct bs_rpc_sstream *s, void *method_ctx)
{
    struct fwd_in *f = calloc(1, sizeof(*f));
    if (!f) {
        bs_rpc_sstream_close(s, BS_ENOMEM, NULL);
        return NULL;
    }
    f->n = method_ctx;
    f->s = s;
    atomic_init(&f->refs, 1);
    return f;
}

static void fin_msg(struct bs_rpc_sstream *s, void *sctx, const void *data,
                    size_t len)
{
    (void)s;
    struct fwd_in *f = sctx;
    if (!f)
        return;
    struct fin_batch *b = malloc(sizeof(*b));
    if (b)
        b->buf = malloc(len ? len : 1);
    if (!b || !b->buf) {
        free(b);
        return; /* the forwarding node times these out */
    }
    memcpy(b->buf, data, len);
    b->len = len;
    b->f = f;
    atomic_fetch_add(&f->refs, 1);
    if (bs_node__post(f->n, task_fin_batch, b) != 0) {
        free(b->buf);
        free(b);
        fin_unref(f);
    }
}

static void fin_end(struct bs_rpc_sstream *s, void *sctx, int rc)
{
    (void)s;
    (void)rc;
    if (sctx)
        fin_unref(sctx);
}

static const struct bs_rpc_stream_ops fin_ops = {
    .on_open = fin_open,
    .on_msg = fin_msg,
    .on_end = fin_end,
};

void bs_node__kv_flush(struct bs_node *n)
{
    for (size_t p = 0; p < n->n_fwd_peers; p++)
        if (n->fwd_peers[p].n_pend > 0)
            fwd_flush_peer(&n->fwd_peers[p]);
    struct fwd_in *f = n->fwd_dirty;
    n->fwd_dirty = NULL;
    while (f) {
        struct fwd_in *next = f->next_dirty;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (bs_fwd_replies_encode(f->pend, f->n_pend, &buf, &len) == 0)
            (void)bs_rpc_sstream_send(f->s, buf, len);
        free(buf);
        for (size_t i = 0; i < f->n_pend; i++) {
            free((void *)f->pend[i].msg);
            free((void *)f->pend[i].resp);
        }
        f->n_pend = 0;
        f->dirty = false;
        f->next_dirty = NULL;
        fin_unref(f);
        f = next;
    }
}

void bs_node__kv_free(struct bs_node *n)
{
    for (size_t p = 0; p < n->n_fwd_peers; p++) {
        struct fwd_peer *fp = &n->fwd_peers[p];
        while (fp->inflight) {
            struct kv_op *op = fp->inflight;
            fwd_unlink(op);
            op_cancel(op);
        }
        for (size_t i = 0; i < fp->n_pend; i++)
            free((void *)fp->pend[i].req);
        free(fp->pend);
    }
    /* Answers gathered after the loop stopped: the server is shut down,
     * nobody will read them. */
    struct fwd_in *f = n->fwd_dirty;
    n->fwd_dirty = NULL;
    while (f) {
        struct fwd_in *next = f->next_dirty;
        f->dirty = false;
        fin_unref(f);
        f = next;
    }
    free(n->fwd_peers);
    free(n->fwd_slots);
    n->fwd_peers = NULL;
    n->fwd_slots = NULL;
}

/* ------------------------------------------------------------ routing */

static void run_piece(struct kv_op *op)
{
    struct bs_node *n = op->n;
    if (!bs_node__pd(n)) {
        wait_retry(op, "this node has no placement view yet");
        return;
    }
    const struct bs_pd_shard *ps = NULL;
    char msg[300] = "";
    if (!op->multi) {
        if (op->type == BS_SHARD_CMD_PUT || op->type == BS_SHARD_CMD_TXN) {
            ps = single_shard(op, msg, sizeof(msg));
            if (!ps && msg[0]) {
                finish_status(op, BS_RPC_FAILED_PRECONDITION, msg);
                return;
            }
        }
    }
    if (!ps && (op->type == BS_SHARD_CMD_RANGE ||
                op->type == BS_SHARD_CMD_DELETE_RANGE)) {
        const struct bs_shard_cmd *c = &op->cmd;
        const uint8_t *key =
            c->type == BS_SHARD_CMD_RANGE ? c->u.range.key : c->u.del.key;
        size_t kl = c->type == BS_SHARD_CMD_RANGE ? c->u.range.key_len
                                                  : c->u.del.key_len;
        const uint8_t *end = c->type == BS_SHARD_CMD_RANGE
                                 ? c->u.range.range_end
                                 : c->u.del.range_end;
        size_t el = c->type == BS_SHARD_CMD_RANGE ? c->u.range.range_end_len
                                                  : c->u.del.range_end_len;
        if (el == 0)
            ps = route(n, key, kl); /* one key */
        else if (op->descending)
            ps = op->cur ? route_below(n, op->cur, op->cur_len, op->cur_inf)
                         : route_below(n, end, el, end_is_inf(end, el));
        else
            ps = op->cur ? route(n, op->cur, op->cur_len) : route(n, key, kl);
        if (ps && !op->multi && el != 0 &&
            !shard_holds_range(ps, key, kl, end, el))
            op->multi = true;
        if (ps && make_piece(op, ps) != 0) {
            finish(op, BS_ENOMEM, NULL, NULL);
            return;
        }
    } else if (ps) {
        op->piece = op->cmd;
        op->piece_shard = ps->id;
    }
    if (!ps) {
        wait_retry(op, "no shard holds the key in this node's placement view");
        return;
    }
    /* etcd sorts by a target other than the key ascending even when the
     * order says NONE. */
    if (op->multi && op->type == BS_SHARD_CMD_RANGE &&
        op->cmd.u.range.sort_target != BS_SHARD_SORT_KEY) {
        finish_status(op, BS_RPC_UNIMPLEMENTED,
                      "basalt: sorting a range that spans several shards by "
                      "anything but the key is not implemented");
        return;
    }

    /* Where: a replica here, or the leader's node. */
    struct bs_eng_group_info gi;
    bool local =
        bs_eng_store_group(n->store, op->piece_shard, &gi) == 0 &&
        bs_eng_store_sm(n->store, op->piece_shard) != NULL &&
        bs_shard_sm_shard(bs_eng_store_sm(n->store, op->piece_shard)) != NULL;
    if (local)
        op->raft_term = gi.term;
    if (is_read(op)) {
        if (local && op->piece.u.range.serializable) {
            read_local(op);
            return;
        }
        if (local) {
            int rc = bs_eng_store_read_index(n->store, op->piece_shard,
                                             on_read_index, op);
            if (rc != 0)
                piece_failed(op, rc, NULL);
            return;
        }
    } else if (local && gi.role == BS_RAFT_LEADER) {
        propose_local(
            op, bs_shard_sm_shard(bs_eng_store_sm(n->store, op->piece_shard)));
        return;
    }
    /* Not here: the leader's node, as the local replica or placement
     * knows it; without a leader, a replica's node in turn. */
    uint64_t leader = local ? gi.leader : 0;
    if (leader == 0 && !local)
        leader = ps->leader;
    uint64_t node = leader ? BS_ENG_REPLICA_NODE(leader) : 0;
    if (node == 0 && !local && ps->n_replicas > 0) {
        uint64_t pick = (bs_node__now() / 500) % ps->n_replicas;
        node = ps->replicas[pick].node_id;
    }
    if (node == 0 || node == n->o.node_id) {
        char why[96];
        snprintf(why, sizeof(why), "shard %" PRIu64 " has no leader",
                 op->piece_shard);
        if (op->forwarded)
            piece_failed(op, BS_ENOTLEADER, why);
        else
            wait_retry(op, why);
        return;
    }
    forward_piece(op, node);
}

/* ------------------------------------------------------------ handlers */

static void task_start(void *ctx, bool cancelled)
{
    struct kv_op *op = ctx;
    if (cancelled) {
        op_cancel(op);
        return;
    }
    op->n->kv_requests++;
    if (op->forwarded)
        op->n->forwarded_in++;
    run_piece(op);
}

/* CQ thread: an etcd KV request (client port) or a forwarded one (peer
 * port). Decodes it and hands it to the loop. */
static void kv_unary(struct bs_rpc_call *call, const void *req, size_t len,
                     void *ctx)
{
    struct kv_method *m = ctx;
    struct bs_node *n = m->n;
    if (atomic_load(&n->stopping)) {
        (void)bs_rpc_call_fail(call, BS_EUNAVAIL,
                               "basalt: the node is stopping");
        return;
    }
    struct kv_op *op = calloc(1, sizeof(*op));
    if (!op) {
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
        return;
    }
    op->n = n;
    op->call = call;
    op->type = m->type;
    op->forwarded = m->forwarded;
    op->deadline = bs_node__now() + BS_NODE_REQUEST_BUDGET_MS;
    bs_shard_resp_init(&op->acc);
    bs_shard_resp_init(&op->f_resp);
    op->buf = dup_bytes(req, len);
    op->len = len;
    if (!op->buf) {
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
        op_free(op);
        return;
    }
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_rpc_kv_req_decode(m->type, op->buf, len, &n->rpc_limits,
                                  &op->cmd, em);
    if (rc != 0) {
        char msg[BS_RPC_ERRMSG_LEN + 32];
        snprintf(msg, sizeof(msg), "basalt: %s", em[0] ? em : bs_strerror(rc));
        (void)bs_rpc_call_fail(call, rc, msg);
        op_free(op);
        return;
    }
    if (m->type == BS_SHARD_CMD_RANGE &&
        op->cmd.u.range.sort_order == BS_SHARD_SORT_DESCEND &&
        op->cmd.u.range.sort_target == BS_SHARD_SORT_KEY)
        op->descending = true;
    if (bs_node__post(n, task_start, op) != 0) {
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
        op_free(op);
    }
}

/* Compact: Basalt keeps no history (every read is of the latest
 * revision), so there is nothing to discard; the answer says so by being
 * empty but successful, as etcd's is. A revision in the future of every
 * shard cannot be checked against per-shard revisions and is accepted. */
static void compact_unary(struct bs_rpc_call *call, const void *req, size_t len,
                          void *ctx)
{
    struct kv_method *m = ctx;
    int64_t rev = 0;
    bool physical = false;
    char em[256] = "";
    int rc = bs_adm_compact_req_decode(req, len, &rev, &physical, em);
    if (rc != 0) {
        (void)bs_rpc_call_fail(call, rc, em);
        return;
    }
    struct bs_rpc_header h = {.cluster_id = m->n->cluster_id,
                              .member_id = m->n->o.node_id,
                              .revision = rev};
    uint8_t *out = NULL;
    size_t olen = 0;
    rc = bs_adm_compact_resp_encode(&h, &out, &olen, em);
    if (rc == 0)
        (void)bs_rpc_call_reply(call, out, olen);
    else
        (void)bs_rpc_call_fail(call, rc, em);
    free(out);
}

/* ---------------------------------------------- forwarded placement */

static bool enc_cmd(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const uint8_t **p = (const uint8_t **)*arg;
    size_t len = (size_t)(uintptr_t)p[1];
    return pb_encode_tag_for_field(s, f) && pb_encode_string(s, p[0], len);
}

int bs_rpc_pd_command_encode(const uint8_t *cmd, size_t len, uint8_t **out,
                             size_t *out_len)
{
    const void *arg[2] = {cmd, (const void *)(uintptr_t)len};
    basalt_node_PlacementCommand m = basalt_node_PlacementCommand_init_zero;
    m.cmd.funcs.encode = enc_cmd;
    m.cmd.arg = (void *)arg;
    size_t sz = 0;
    if (!pb_get_encoded_size(&sz, basalt_node_PlacementCommand_fields, &m))
        return BS_EINVAL;
    uint8_t *buf = malloc(sz ? sz : 1);
    if (!buf)
        return BS_ENOMEM;
    pb_ostream_t os = pb_ostream_from_buffer(buf, sz);
    if (!pb_encode(&os, basalt_node_PlacementCommand_fields, &m)) {
        free(buf);
        return BS_EINVAL;
    }
    *out = buf;
    *out_len = os.bytes_written;
    return 0;
}

int bs_rpc_pd_result_decode(const void *buf, size_t len, int64_t *status,
                            uint64_t *first_id)
{
    basalt_node_PlacementResult m = basalt_node_PlacementResult_init_zero;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, basalt_node_PlacementResult_fields, &m))
        return BS_EPROTO;
    *status = m.status;
    *first_id = m.first_id;
    return 0;
}

struct pd_in {
    struct bs_node *n;
    struct bs_rpc_call *call;
    uint8_t *cmd;
    size_t len;
};

struct cmd_dst {
    uint8_t *buf;
    size_t len, max;
    bool too_big;
};

static bool dec_cmd(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct cmd_dst *d = *arg;
    if (s->bytes_left > d->max) {
        d->too_big = true;
        return false;
    }
    free(d->buf);
    d->len = s->bytes_left;
    d->buf = malloc(d->len ? d->len : 1);
    return d->buf && pb_read(s, d->buf, d->len);
}

static void pd_answer(struct bs_rpc_call *call, int status, uint64_t first_id)
{
    basalt_node_PlacementResult m = basalt_node_PlacementResult_init_zero;
    m.status = status;
    m.first_id = first_id;
    uint8_t buf[32];
    pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof(buf));
    if (pb_encode(&os, basalt_node_PlacementResult_fields, &m))
        (void)bs_rpc_call_reply(call, buf, os.bytes_written);
    else
        (void)bs_rpc_call_fail(call, BS_EINVAL, NULL);
}

static void on_pd_applied(void *ctx, int status, const void *resp, size_t len)
{
    struct pd_in *p = ctx;
    if (status == BS_ENOTLEADER || status == BS_EDROPPED ||
        status == BS_ETIMEDOUT || status == BS_ESTOPPED)
        (void)bs_rpc_call_fail(p->call, status, NULL);
    else
        pd_answer(p->call, status, bs_node__pd_first_id(resp, len));
    free(p->cmd);
    free(p);
}

static void task_pd_in(void *ctx, bool cancelled)
{
    struct pd_in *p = ctx;
    int rc = BS_EUNAVAIL;
    if (!cancelled) {
        struct bs_eng_group_info gi;
        rc = bs_eng_store_group(p->n->store, BS_PD_SHARD_PLACEMENT, &gi);
        if (rc == 0 && gi.role != BS_RAFT_LEADER)
            rc = BS_ENOTLEADER;
        if (rc == 0)
            rc = bs_eng_store_propose(p->n->store, BS_PD_SHARD_PLACEMENT,
                                      p->cmd, p->len, on_pd_applied, p);
        if (rc == 0)
            return;
    }
    (void)bs_rpc_call_fail(p->call, rc, NULL);
    free(p->cmd);
    free(p);
}

static void pd_unary(struct bs_rpc_call *call, const void *req, size_t len,
                     void *ctx)
{
    struct bs_node *n = ctx;
    struct cmd_dst d = {.max = n->rpc_limits.max_message};
    basalt_node_PlacementCommand m = basalt_node_PlacementCommand_init_zero;
    m.cmd.funcs.decode = dec_cmd;
    m.cmd.arg = &d;
    pb_istream_t is = pb_istream_from_buffer(req, len);
    struct bs_pd_cmd check;
    if (!pb_decode(&is, basalt_node_PlacementCommand_fields, &m) || !d.buf ||
        bs_pd_cmd_decode(d.buf, d.len, &check) != 0) {
        free(d.buf);
        (void)bs_rpc_call_fail(call, d.too_big ? BS_ETOOBIG : BS_EPROTO,
                               "basalt: not a placement command");
        return;
    }
    bs_pd_cmd_free(&check);
    struct pd_in *p = calloc(1, sizeof(*p));
    if (!p) {
        free(d.buf);
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
        return;
    }
    *p = (struct pd_in){n, call, d.buf, d.len};
    if (bs_node__post(n, task_pd_in, p) != 0) {
        free(d.buf);
        free(p);
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
    }
}

/* ------------------------------------------- placement state, copied */

int bs_rpc_pd_image_encode(const uint8_t *img, size_t len, uint8_t **out,
                           size_t *out_len)
{
    /* PlacementImage and PlacementCommand are both one bytes field 1:
     * the same bytes on the wire. */
    return bs_rpc_pd_command_encode(img, len, out, out_len);
}

int bs_rpc_pd_image_decode(const void *buf, size_t len, size_t max,
                           uint8_t **img, size_t *img_len)
{
    struct cmd_dst d = {.max = max};
    basalt_node_PlacementImage m = basalt_node_PlacementImage_init_zero;
    m.image.funcs.decode = dec_cmd;
    m.image.arg = &d;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, basalt_node_PlacementImage_fields, &m) || !d.buf) {
        free(d.buf);
        return d.too_big ? BS_ETOOBIG : BS_EPROTO;
    }
    *img = d.buf;
    *img_len = d.len;
    return 0;
}

struct pd_state_req {
    struct bs_node *n;
    struct bs_rpc_call *call;
};

static void task_pd_state(void *ctx, bool cancelled)
{
    struct pd_state_req *r = ctx;
    int rc = BS_EUNAVAIL;
    uint8_t *img = NULL, *out = NULL;
    size_t len = 0, olen = 0;
    if (!cancelled) {
        /* Only a replica of the placement group answers: a copy of a copy
         * could be older than the asker's. */
        void *sm = bs_eng_store_sm(r->n->store, BS_PD_SHARD_PLACEMENT);
        const struct bs_pd_state *pd = sm ? bs_pd_sm_state(sm) : NULL;
        rc = pd && bs_pd_bootstrapped(pd) ? 0 : BS_ENOTFOUND;
        if (rc == 0)
            rc = bs_pd_encode_all(pd, &img, &len);
        if (rc == 0)
            rc = bs_rpc_pd_image_encode(img, len, &out, &olen);
    }
    if (rc == 0)
        (void)bs_rpc_call_reply(r->call, out, olen);
    else
        (void)bs_rpc_call_fail(r->call, rc,
                               "basalt: this node holds no replica of the "
                               "placement group");
    free(img);
    free(out);
    free(r);
}

static void pd_state_unary(struct bs_rpc_call *call, const void *req,
                           size_t len, void *ctx)
{
    (void)req;
    (void)len;
    struct pd_state_req *r = malloc(sizeof(*r));
    if (!r) {
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
        return;
    }
    r->n = ctx;
    r->call = call;
    if (bs_node__post(r->n, task_pd_state, r) != 0) {
        free(r);
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
    }
}

/* --------------------------------------------------------- registration */

int bs_node__kv_register(struct bs_node *n)
{
    static const uint8_t types[] = {BS_SHARD_CMD_RANGE, BS_SHARD_CMD_PUT,
                                    BS_SHARD_CMD_DELETE_RANGE,
                                    BS_SHARD_CMD_TXN};
    /* The servers borrow the table; the node frees it after them. */
    struct kv_method *ms = calloc(9, sizeof(*ms));
    if (!ms)
        return BS_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < 4 && rc == 0; i++) {
        ms[2 * i] = (struct kv_method){n, types[i], false};
        ms[2 * i + 1] = (struct kv_method){n, types[i], true};
        char name[64];
        snprintf(name, sizeof(name), "/etcdserverpb.KV/%s",
                 method_name(types[i]));
        rc = bs_rpc_server_add_unary(n->client_srv, name, kv_unary, &ms[2 * i]);
        snprintf(name, sizeof(name), "/basalt.node.Forward/%s",
                 method_name(types[i]));
        if (rc == 0)
            rc = bs_rpc_server_add_unary(n->peer_srv, name, kv_unary,
                                         &ms[2 * i + 1]);
    }
    ms[8] = (struct kv_method){n, 0, false};
    if (rc == 0)
        rc = bs_rpc_server_add_unary(n->client_srv, "/etcdserverpb.KV/Compact",
                                     compact_unary, &ms[8]);
    if (rc == 0)
        rc = bs_rpc_server_add_unary(
            n->peer_srv, "/basalt.node.Forward/Placement", pd_unary, n);
    if (rc == 0)
        rc = bs_rpc_server_add_stream(
            n->peer_srv, "/basalt.node.Forward/Stream", &fin_ops, n);
    if (rc == 0)
        rc = bs_rpc_server_add_unary(n->peer_srv,
                                     "/basalt.node.Forward/PlacementState",
                                     pd_state_unary, n);
    n->kv_methods_ = ms;
    if (rc == 0) {
        n->fwd_peers = calloc(FWD_MAX_PEERS, sizeof(*n->fwd_peers));
        n->fwd_slots = calloc(BS_FWD_SLOTS, sizeof(*n->fwd_slots));
        if (!n->fwd_peers || !n->fwd_slots)
            rc = BS_ENOMEM;
    }
    return rc;
}
