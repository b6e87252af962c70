/*
 * cmd.c - the binary encoding of shard commands (what the Raft log
 * stores) and of their responses (what a node that forwarded a request
 * gets back).
 *
 * Format 1. Integers are LEB128 varints (u = unsigned, s = zigzag signed),
 * byte strings are a uvarint length then the bytes, flags are one byte
 * whose unknown bits must be zero, counts are uvarints bounded by the
 * bytes left.
 *
 *   command  = u8 format(1) u8 type u(epoch.conf_ver) u(epoch.version) body
 *   PUT      = bytes key, bytes value, s lease,
 *              u8 flags {1 prev_kv, 2 ignore_value, 4 ignore_lease}
 *   DELETE   = bytes key, bytes range_end, u8 flags {1 prev_kv}
 *   RANGE    = bytes key, bytes range_end, s limit, s revision,
 *              u8 sort_order, u8 sort_target,
 *              u8 flags {1 serializable, 2 keys_only, 4 count_only},
 *              s min_mod, s max_mod, s min_create, s max_create
 *   TXN      = u n, n x compare, u n, n x op, u n, n x op
 *     compare = u8 target, u8 result, bytes key, bytes range_end,
 *               (target VALUE: bytes value | else: s number)
 *     op      = u8 type (PUT, DELETE, RANGE), that type's body
 *   SPLIT    = bytes split_key, u new_shard_id, u n (<= 16),
 *              n x (u id, u node_id, u8 learner)
 *
 *   response = u8 format(1) u8 type (0 = empty entry) s err, bytes errmsg,
 *              u8 flags {1 skipped, 2 succeeded}, s revision,
 *              u(epoch.conf_ver) u(epoch.version) body
 *   PUT, DELETE, RANGE = op_resp
 *     op_resp = u n, n x kv, s deleted, s count, u8 more
 *     kv      = bytes key, bytes value, s create, s mod, s version, s lease
 *   TXN      = u n, n x (u8 type, op_resp)
 *   SPLIT    = desc left, desc right (shard.c)
 *
 * Decoding validates everything it reads: a truncated, padded or
 * garbage buffer is BS_ECORRUPT, never a crash and never a large
 * allocation (counts are bounded by the bytes that remain).
 */
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

#define F_PUT_PREV_KV        1u
#define F_PUT_IGNORE_VALUE   2u
#define F_PUT_IGNORE_LEASE   4u
#define F_DEL_PREV_KV        1u
#define F_RANGE_SERIALIZABLE 1u
#define F_RANGE_KEYS_ONLY    2u
#define F_RANGE_COUNT_ONLY   4u
#define F_RESP_SKIPPED       1u
#define F_RESP_SUCCEEDED     2u

static bool is_op_type(uint8_t t)
{
    return t == BS_SHARD_CMD_PUT || t == BS_SHARD_CMD_DELETE_RANGE ||
           t == BS_SHARD_CMD_RANGE;
}

static bool range_enums_ok(const struct bs_shard_range_req *q)
{
    return q->sort_order <= BS_SHARD_SORT_DESCEND &&
           q->sort_target <= BS_SHARD_SORT_VALUE;
}

/* ============================================================ encode */

static int enc_op(struct bs_shard__w *w, uint8_t type,
                  const struct bs_shard_put_req *put,
                  const struct bs_shard_delete_req *del,
                  const struct bs_shard_range_req *rq)
{
    switch (type) {
    case BS_SHARD_CMD_PUT:
        bs_shard__w_bytes(w, put->key, put->key_len);
        bs_shard__w_bytes(w, put->value, put->value_len);
        bs_shard__w_svar(w, put->lease);
        bs_shard__w_u8(w,
                       (uint8_t)((put->prev_kv ? F_PUT_PREV_KV : 0) |
                                 (put->ignore_value ? F_PUT_IGNORE_VALUE : 0) |
                                 (put->ignore_lease ? F_PUT_IGNORE_LEASE : 0)));
        return 0;
    case BS_SHARD_CMD_DELETE_RANGE:
        bs_shard__w_bytes(w, del->key, del->key_len);
        bs_shard__w_bytes(w, del->range_end, del->range_end_len);
        bs_shard__w_u8(w, del->prev_kv ? F_DEL_PREV_KV : 0);
        return 0;
    case BS_SHARD_CMD_RANGE:
        if (!range_enums_ok(rq))
            return BS_EINVAL;
        bs_shard__w_bytes(w, rq->key, rq->key_len);
        bs_shard__w_bytes(w, rq->range_end, rq->range_end_len);
        bs_shard__w_svar(w, rq->limit);
        bs_shard__w_svar(w, rq->revision);
        bs_shard__w_u8(w, rq->sort_order);
        bs_shard__w_u8(w, rq->sort_target);
        bs_shard__w_u8(w,
                       (uint8_t)((rq->serializable ? F_RANGE_SERIALIZABLE : 0) |
                                 (rq->keys_only ? F_RANGE_KEYS_ONLY : 0) |
                                 (rq->count_only ? F_RANGE_COUNT_ONLY : 0)));
        bs_shard__w_svar(w, rq->min_mod_revision);
        bs_shard__w_svar(w, rq->max_mod_revision);
        bs_shard__w_svar(w, rq->min_create_revision);
        bs_shard__w_svar(w, rq->max_create_revision);
        return 0;
    }
    return BS_EINVAL;
}

static int enc_ops(struct bs_shard__w *w, const struct bs_shard_op *ops,
                   size_t n)
{
    int rc;

    bs_shard__w_uvar(w, n);
    for (size_t i = 0; i < n; i++) {
        const struct bs_shard_op *o = &ops[i];

        bs_shard__w_u8(w, o->type);
        rc = enc_op(w, o->type, &o->u.put, &o->u.del, &o->u.range);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int bs_shard_cmd_encode(const struct bs_shard_cmd *cmd, uint8_t **out,
                        size_t *len)
{
    struct bs_shard__w w = {0};
    int rc = 0;

    *out = NULL;
    *len = 0;
    bs_shard__w_u8(&w, BS_SHARD_CMD_FORMAT);
    bs_shard__w_u8(&w, cmd->type);
    bs_shard__w_uvar(&w, cmd->epoch.conf_ver);
    bs_shard__w_uvar(&w, cmd->epoch.version);
    switch (cmd->type) {
    case BS_SHARD_CMD_PUT:
    case BS_SHARD_CMD_DELETE_RANGE:
    case BS_SHARD_CMD_RANGE:
        rc = enc_op(&w, cmd->type, &cmd->u.put, &cmd->u.del, &cmd->u.range);
        break;
    case BS_SHARD_CMD_TXN: {
        const struct bs_shard_txn_req *t = &cmd->u.txn;

        bs_shard__w_uvar(&w, t->n_compares);
        for (size_t i = 0; i < t->n_compares && rc == 0; i++) {
            const struct bs_shard_compare *c = &t->compares[i];

            if (c->target > BS_SHARD_CMP_LEASE ||
                c->result > BS_SHARD_CMP_NOT_EQUAL) {
                rc = BS_EINVAL;
                break;
            }
            bs_shard__w_u8(&w, c->target);
            bs_shard__w_u8(&w, c->result);
            bs_shard__w_bytes(&w, c->key, c->key_len);
            bs_shard__w_bytes(&w, c->range_end, c->range_end_len);
            if (c->target == BS_SHARD_CMP_VALUE)
                bs_shard__w_bytes(&w, c->value, c->value_len);
            else
                bs_shard__w_svar(&w, c->number);
        }
        if (rc == 0)
            rc = enc_ops(&w, t->success, t->n_success);
        if (rc == 0)
            rc = enc_ops(&w, t->failure, t->n_failure);
        break;
    }
    case BS_SHARD_CMD_SPLIT: {
        const struct bs_shard_split_req *s = &cmd->u.split;

        if (s->n_replicas > BS_RAFT_MAX_MEMBERS) {
            rc = BS_EINVAL;
            break;
        }
        bs_shard__w_bytes(&w, s->split_key, s->split_key_len);
        bs_shard__w_uvar(&w, s->new_shard_id);
        bs_shard__w_uvar(&w, s->n_replicas);
        for (uint32_t i = 0; i < s->n_replicas; i++) {
            bs_shard__w_uvar(&w, s->replicas[i].id);
            bs_shard__w_uvar(&w, s->replicas[i].node_id);
            bs_shard__w_u8(&w, s->replicas[i].learner ? 1 : 0);
        }
        break;
    }
    default:
        rc = BS_EINVAL;
    }
    if (rc == 0)
        rc = w.err;
    if (rc != 0) {
        free(w.p);
        return rc;
    }
    *out = w.p;
    *len = w.len;
    return 0;
}

/* ============================================================ decode */

static void dec_op(struct bs_shard__r *r, uint8_t type,
                   struct bs_shard_put_req *put,
                   struct bs_shard_delete_req *del,
                   struct bs_shard_range_req *rq)
{
    uint8_t f;

    switch (type) {
    case BS_SHARD_CMD_PUT:
        memset(put, 0, sizeof *put);
        bs_shard__r_bytes(r, &put->key, &put->key_len);
        bs_shard__r_bytes(r, &put->value, &put->value_len);
        put->lease = bs_shard__r_svar(r);
        f = bs_shard__r_u8(r);
        if (f & ~(F_PUT_PREV_KV | F_PUT_IGNORE_VALUE | F_PUT_IGNORE_LEASE))
            r->err = BS_ECORRUPT;
        put->prev_kv = f & F_PUT_PREV_KV;
        put->ignore_value = f & F_PUT_IGNORE_VALUE;
        put->ignore_lease = f & F_PUT_IGNORE_LEASE;
        return;
    case BS_SHARD_CMD_DELETE_RANGE:
        memset(del, 0, sizeof *del);
        bs_shard__r_bytes(r, &del->key, &del->key_len);
        bs_shard__r_bytes(r, &del->range_end, &del->range_end_len);
        f = bs_shard__r_u8(r);
        if (f & ~F_DEL_PREV_KV)
            r->err = BS_ECORRUPT;
        del->prev_kv = f & F_DEL_PREV_KV;
        return;
    case BS_SHARD_CMD_RANGE:
        memset(rq, 0, sizeof *rq);
        bs_shard__r_bytes(r, &rq->key, &rq->key_len);
        bs_shard__r_bytes(r, &rq->range_end, &rq->range_end_len);
        rq->limit = bs_shard__r_svar(r);
        rq->revision = bs_shard__r_svar(r);
        rq->sort_order = bs_shard__r_u8(r);
        rq->sort_target = bs_shard__r_u8(r);
        f = bs_shard__r_u8(r);
        if (f &
            ~(F_RANGE_SERIALIZABLE | F_RANGE_KEYS_ONLY | F_RANGE_COUNT_ONLY))
            r->err = BS_ECORRUPT;
        rq->serializable = f & F_RANGE_SERIALIZABLE;
        rq->keys_only = f & F_RANGE_KEYS_ONLY;
        rq->count_only = f & F_RANGE_COUNT_ONLY;
        rq->min_mod_revision = bs_shard__r_svar(r);
        rq->max_mod_revision = bs_shard__r_svar(r);
        rq->min_create_revision = bs_shard__r_svar(r);
        rq->max_create_revision = bs_shard__r_svar(r);
        if (!range_enums_ok(rq))
            r->err = BS_ECORRUPT;
        return;
    }
    r->err = BS_ECORRUPT;
}

/* Smallest encoding of an op (type byte, two empty strings, flags) and of
 * a compare: bounds for the counts. */
#define MIN_OP_BYTES  4
#define MIN_CMP_BYTES 5

static int dec_ops(struct bs_shard__r *r, struct bs_shard_op **out,
                   size_t *n_out)
{
    size_t n = bs_shard__r_count(r, MIN_OP_BYTES);
    struct bs_shard_op *ops;

    *out = NULL;
    *n_out = 0;
    if (r->err != 0 || n == 0)
        return r->err;
    ops = calloc(n, sizeof *ops);
    if (ops == NULL)
        return BS_ENOMEM;
    for (size_t i = 0; i < n && r->err == 0; i++) {
        ops[i].type = bs_shard__r_u8(r);
        if (!is_op_type(ops[i].type))
            r->err = BS_ECORRUPT;
        else
            dec_op(r, ops[i].type, &ops[i].u.put, &ops[i].u.del,
                   &ops[i].u.range);
    }
    *out = ops;
    *n_out = n;
    return r->err;
}

static int dec_txn(struct bs_shard__r *r, struct bs_shard_txn_req *t)
{
    size_t n = bs_shard__r_count(r, MIN_CMP_BYTES);
    int rc;

    if (r->err != 0)
        return r->err;
    if (n > 0) {
        t->compares = calloc(n, sizeof *t->compares);
        if (t->compares == NULL)
            return BS_ENOMEM;
        t->n_compares = n;
    }
    for (size_t i = 0; i < n && r->err == 0; i++) {
        struct bs_shard_compare *c = &t->compares[i];

        c->target = bs_shard__r_u8(r);
        c->result = bs_shard__r_u8(r);
        if (c->target > BS_SHARD_CMP_LEASE ||
            c->result > BS_SHARD_CMP_NOT_EQUAL)
            r->err = BS_ECORRUPT;
        bs_shard__r_bytes(r, &c->key, &c->key_len);
        bs_shard__r_bytes(r, &c->range_end, &c->range_end_len);
        if (c->target == BS_SHARD_CMP_VALUE)
            bs_shard__r_bytes(r, &c->value, &c->value_len);
        else
            c->number = bs_shard__r_svar(r);
    }
    if (r->err != 0)
        return r->err;
    rc = dec_ops(r, &t->success, &t->n_success);
    if (rc == 0)
        rc = dec_ops(r, &t->failure, &t->n_failure);
    return rc;
}

int bs_shard_cmd_decode(const uint8_t *buf, size_t len,
                        struct bs_shard_cmd *cmd)
{
    struct bs_shard__r r = {.p = buf, .len = len};
    int rc = 0;

    memset(cmd, 0, sizeof *cmd);
    if (bs_shard__r_u8(&r) != BS_SHARD_CMD_FORMAT)
        return BS_ECORRUPT;
    cmd->type = bs_shard__r_u8(&r);
    cmd->epoch.conf_ver = bs_shard__r_uvar(&r);
    cmd->epoch.version = bs_shard__r_uvar(&r);
    if (r.err != 0)
        return BS_ECORRUPT;
    switch (cmd->type) {
    case BS_SHARD_CMD_PUT:
    case BS_SHARD_CMD_DELETE_RANGE:
    case BS_SHARD_CMD_RANGE:
        dec_op(&r, cmd->type, &cmd->u.put, &cmd->u.del, &cmd->u.range);
        break;
    case BS_SHARD_CMD_TXN:
        rc = dec_txn(&r, &cmd->u.txn);
        break;
    case BS_SHARD_CMD_SPLIT: {
        struct bs_shard_split_req *s = &cmd->u.split;
        uint64_t n;

        bs_shard__r_bytes(&r, &s->split_key, &s->split_key_len);
        s->new_shard_id = bs_shard__r_uvar(&r);
        n = bs_shard__r_uvar(&r);
        if (n > BS_RAFT_MAX_MEMBERS) {
            r.err = BS_ECORRUPT;
            break;
        }
        s->n_replicas = (uint32_t)n;
        for (uint32_t i = 0; i < s->n_replicas; i++) {
            s->replicas[i].id = bs_shard__r_uvar(&r);
            s->replicas[i].node_id = bs_shard__r_uvar(&r);
            s->replicas[i].learner = bs_shard__r_bool(&r);
        }
        break;
    }
    default:
        r.err = BS_ECORRUPT;
    }
    if (rc == 0 && r.err == 0 && bs_shard__r_left(&r) != 0)
        rc = BS_ECORRUPT; /* trailing bytes */
    if (rc == 0)
        rc = r.err;
    if (rc != 0) {
        bs_shard_cmd_free(cmd);
        memset(cmd, 0, sizeof *cmd);
        return rc == BS_ENOMEM ? BS_ENOMEM : BS_ECORRUPT;
    }
    return 0;
}

void bs_shard_cmd_free(struct bs_shard_cmd *cmd)
{
    if (cmd == NULL || cmd->type != BS_SHARD_CMD_TXN)
        return;
    free(cmd->u.txn.compares);
    free(cmd->u.txn.success);
    free(cmd->u.txn.failure);
    memset(&cmd->u.txn, 0, sizeof cmd->u.txn);
}

/* ========================================================= responses */

void bs_shard_resp_init(struct bs_shard_resp *resp)
{
    memset(resp, 0, sizeof *resp);
}

void bs_shard_resp_free(struct bs_shard_resp *resp)
{
    if (resp == NULL)
        return;
    bs_shard__op_resp_free(&resp->op);
    for (size_t i = 0; i < resp->n_ops; i++)
        bs_shard__op_resp_free(&resp->ops[i]);
    free(resp->ops);
    bs_shard_desc_free(&resp->left);
    bs_shard_desc_free(&resp->right);
    memset(resp, 0, sizeof *resp);
}

static void enc_op_resp(struct bs_shard__w *w,
                        const struct bs_shard_op_resp *op)
{
    bs_shard__w_uvar(w, op->n_kvs);
    for (size_t i = 0; i < op->n_kvs; i++) {
        const struct bs_shard_kv *kv = &op->kvs[i];

        bs_shard__w_bytes(w, kv->key, kv->key_len);
        bs_shard__w_bytes(w, kv->value, kv->value_len);
        bs_shard__w_svar(w, kv->create_revision);
        bs_shard__w_svar(w, kv->mod_revision);
        bs_shard__w_svar(w, kv->version);
        bs_shard__w_svar(w, kv->lease);
    }
    bs_shard__w_svar(w, op->deleted);
    bs_shard__w_svar(w, op->count);
    bs_shard__w_u8(w, op->more ? 1 : 0);
}

int bs_shard_resp_encode(const struct bs_shard_resp *resp, uint8_t **out,
                         size_t *len)
{
    struct bs_shard__w w = {0};
    size_t elen = strnlen(resp->errmsg, sizeof resp->errmsg);

    *out = NULL;
    *len = 0;
    if (resp->type > BS_SHARD_CMD_SPLIT)
        return BS_EINVAL;
    bs_shard__w_u8(&w, BS_SHARD_CMD_FORMAT);
    bs_shard__w_u8(&w, resp->type);
    bs_shard__w_svar(&w, resp->err);
    bs_shard__w_bytes(&w, resp->errmsg, elen);
    bs_shard__w_u8(&w, (uint8_t)((resp->skipped ? F_RESP_SKIPPED : 0) |
                                 (resp->succeeded ? F_RESP_SUCCEEDED : 0)));
    bs_shard__w_svar(&w, resp->revision);
    bs_shard__w_uvar(&w, resp->epoch.conf_ver);
    bs_shard__w_uvar(&w, resp->epoch.version);
    switch (resp->type) {
    case BS_SHARD_CMD_PUT:
    case BS_SHARD_CMD_DELETE_RANGE:
    case BS_SHARD_CMD_RANGE:
        enc_op_resp(&w, &resp->op);
        break;
    case BS_SHARD_CMD_TXN:
        bs_shard__w_uvar(&w, resp->n_ops);
        for (size_t i = 0; i < resp->n_ops; i++) {
            bs_shard__w_u8(&w, resp->ops[i].type);
            enc_op_resp(&w, &resp->ops[i]);
        }
        break;
    case BS_SHARD_CMD_SPLIT:
        bs_shard__desc_encode(&w, &resp->left);
        bs_shard__desc_encode(&w, &resp->right);
        break;
    default:
        break;
    }
    if (w.err != 0) {
        free(w.p);
        return w.err;
    }
    *out = w.p;
    *len = w.len;
    return 0;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n, int *err)
{
    uint8_t *d;

    if (n == 0)
        return NULL;
    d = malloc(n);
    if (d == NULL) {
        *err = BS_ENOMEM;
        return NULL;
    }
    memcpy(d, p, n);
    return d;
}

/* Smallest kv: two empty strings and four one-byte varints. */
#define MIN_KV_BYTES 6

static int dec_op_resp(struct bs_shard__r *r, struct bs_shard_op_resp *op)
{
    size_t n = bs_shard__r_count(r, MIN_KV_BYTES);
    int err = 0;

    if (r->err != 0)
        return r->err;
    if (n > 0) {
        op->kvs = calloc(n, sizeof *op->kvs);
        if (op->kvs == NULL)
            return BS_ENOMEM;
    }
    for (size_t i = 0; i < n && r->err == 0 && err == 0; i++) {
        struct bs_shard_kv *kv = &op->kvs[i];
        const uint8_t *p;
        size_t len;

        op->n_kvs = i + 1;
        bs_shard__r_bytes(r, &p, &len);
        kv->key = dup_bytes(p, len, &err);
        kv->key_len = kv->key ? len : 0;
        bs_shard__r_bytes(r, &p, &len);
        kv->value = dup_bytes(p, len, &err);
        kv->value_len = kv->value ? len : 0;
        kv->create_revision = bs_shard__r_svar(r);
        kv->mod_revision = bs_shard__r_svar(r);
        kv->version = bs_shard__r_svar(r);
        kv->lease = bs_shard__r_svar(r);
    }
    op->deleted = bs_shard__r_svar(r);
    op->count = bs_shard__r_svar(r);
    op->more = bs_shard__r_bool(r);
    return err != 0 ? err : r->err;
}

int bs_shard_resp_decode(const uint8_t *buf, size_t len,
                         struct bs_shard_resp *resp)
{
    struct bs_shard__r r = {.p = buf, .len = len};
    const uint8_t *msg;
    size_t mlen;
    uint8_t f;
    int rc = 0;

    bs_shard_resp_init(resp);
    if (bs_shard__r_u8(&r) != BS_SHARD_CMD_FORMAT)
        return BS_ECORRUPT;
    resp->type = bs_shard__r_u8(&r);
    if (resp->type > BS_SHARD_CMD_SPLIT)
        return BS_ECORRUPT;
    resp->err = (int)bs_shard__r_svar(&r);
    bs_shard__r_bytes(&r, &msg, &mlen);
    if (mlen >= sizeof resp->errmsg)
        return BS_ECORRUPT;
    if (mlen > 0)
        memcpy(resp->errmsg, msg, mlen);
    f = bs_shard__r_u8(&r);
    if (f & ~(F_RESP_SKIPPED | F_RESP_SUCCEEDED))
        return BS_ECORRUPT;
    resp->skipped = f & F_RESP_SKIPPED;
    resp->succeeded = f & F_RESP_SUCCEEDED;
    resp->revision = bs_shard__r_svar(&r);
    resp->epoch.conf_ver = bs_shard__r_uvar(&r);
    resp->epoch.version = bs_shard__r_uvar(&r);
    if (r.err != 0)
        return BS_ECORRUPT;
    switch (resp->type) {
    case BS_SHARD_CMD_PUT:
    case BS_SHARD_CMD_DELETE_RANGE:
    case BS_SHARD_CMD_RANGE:
        resp->op.type = resp->type;
        rc = dec_op_resp(&r, &resp->op);
        break;
    case BS_SHARD_CMD_TXN: {
        /* Smallest op response: type byte plus an empty op_resp. */
        size_t n = bs_shard__r_count(&r, 5);

        if (r.err != 0 || n == 0)
            break;
        resp->ops = calloc(n, sizeof *resp->ops);
        if (resp->ops == NULL) {
            rc = BS_ENOMEM;
            break;
        }
        for (size_t i = 0; i < n && rc == 0 && r.err == 0; i++) {
            resp->n_ops = i + 1;
            resp->ops[i].type = bs_shard__r_u8(&r);
            if (!is_op_type(resp->ops[i].type)) {
                r.err = BS_ECORRUPT;
                break;
            }
            rc = dec_op_resp(&r, &resp->ops[i]);
        }
        break;
    }
    case BS_SHARD_CMD_SPLIT:
        rc = bs_shard__desc_decode(&r, &resp->left);
        if (rc == 0)
            rc = bs_shard__desc_decode(&r, &resp->right);
        break;
    default:
        break;
    }
    if (rc == 0 && r.err == 0 && bs_shard__r_left(&r) != 0)
        rc = BS_ECORRUPT;
    if (rc == 0)
        rc = r.err;
    if (rc != 0)
        return rc == BS_ENOMEM ? BS_ENOMEM : BS_ECORRUPT;
    return 0;
}
