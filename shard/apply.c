/*
 * apply.c - applying committed Raft entries to a shard, with etcd's KV
 * semantics.
 *
 * Per entry (bs_shard_apply):
 *
 *   index <= applied_index ........ skipped (replay after a crash)
 *   index >  applied_index + 1 .... BS_EINVAL: entries are missing
 *   empty data .................... no-op (a new leader's entry)
 *   does not decode / refused ..... no-op with resp->err (BS_ECORRUPT,
 *                                   BS_ESTALE, BS_ERANGE, BS_EINVAL,
 *                                   BS_ENOTIMPL)
 *   otherwise ..................... Put / DeleteRange / Range / Txn / Split
 *   always ........................ applied_index = index, and the apply
 *                                   state staged into the same batch
 *
 * A refused command is still consumed: it is in the log, every replica
 * refuses it the same way, and the applied index must pass it.
 *
 * Revisions: the command's writes all carry next = revision + 1; the
 * shard's revision becomes next only if something changed (a put always
 * changes; a delete only if it found keys), so a Txn with many puts is one
 * revision and a no-op delete none, as in etcd.
 *
 * Reads go through the shard's overlay (view.c), so a command sees the
 * writes of the entries before it in the same batch and a Txn op sees the
 * ops before it.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

struct actx {
    struct bs_shard *s;
    struct bs_eng_db *db;
    struct bs_eng_wb *wb;
    struct bs_shard__view v;
    int64_t next_rev; /* mod_revision of everything this command writes */
    bool changed;
};

/* ---------------------------------------------------------------- put */

static int do_put(struct actx *a, const struct bs_shard_put_req *q,
                  struct bs_shard_op_resp *out)
{
    struct bs_shard__rec old, rec;
    struct bs_shard__w w = {0};
    uint8_t *dk = NULL;
    size_t dklen;
    void *hold = NULL;
    bool found;
    int rc;

    out->type = BS_SHARD_CMD_PUT;
    rc = bs_shard__get(&a->v, q->key, q->key_len, &old, &hold);
    if (rc != 0 && rc != BS_ENOTFOUND)
        return rc;
    found = rc == 0;
    memset(&rec, 0, sizeof rec);
    rec.create_revision = found ? old.create_revision : a->next_rev;
    rec.mod_revision = a->next_rev;
    rec.version = found ? old.version + 1 : 1;
    rec.lease = q->lease;
    rec.value = q->value;
    rec.value_len = q->value_len;
    if (found && q->prev_kv) {
        out->kvs = calloc(1, sizeof *out->kvs);
        rc = out->kvs
                 ? bs_shard__kv_set(out->kvs, q->key, q->key_len, &old, false)
                 : BS_ENOMEM;
        if (rc != 0)
            goto out;
        out->n_kvs = 1;
    }
    bs_shard__rec_encode(&w, &rec);
    rc = w.err;
    if (rc == 0)
        rc = bs_shard__data_key(q->key, q->key_len, &dk, &dklen);
    if (rc == 0)
        rc = bs_eng_wb_put(a->wb, a->db, a->s->desc.id, dk, dklen, w.p, w.len);
    /* old may point into the overlay entry this replaces: done with it. */
    if (rc == 0)
        rc = bs_shard__ov_set(a->s->ov, q->key, q->key_len, &rec);
    if (rc == 0)
        a->changed = true;
out:
    free(hold);
    free(dk);
    free(w.p);
    return rc;
}

/* ------------------------------------------------------- delete range */

struct del_ctx {
    struct bs_shard_kv *kvs;
    size_t n, cap;
    bool prev_kv;
};

static int del_cb(void *arg, const uint8_t *key, size_t len,
                  const struct bs_shard__rec *rec)
{
    struct del_ctx *c = arg;

    return bs_shard__kvs_push(&c->kvs, &c->n, &c->cap, key, len, rec,
                              !c->prev_kv);
}

static int do_delete(struct actx *a, const struct bs_shard_delete_req *q,
                     struct bs_shard_op_resp *out)
{
    struct del_ctx c = {.prev_kv = q->prev_kv};
    struct bs_shard__ival iv;
    int rc;

    out->type = BS_SHARD_CMD_DELETE_RANGE;
    bs_shard__ival_make(&iv, q->key, q->key_len, q->range_end,
                        q->range_end_len);
    /* Collect first: deleting changes the overlay the scan walks. */
    rc = bs_shard__scan(&a->v, &iv, del_cb, &c);
    for (size_t i = 0; i < c.n && rc == 0; i++) {
        uint8_t *dk;
        size_t dklen;

        rc = bs_shard__data_key(c.kvs[i].key, c.kvs[i].key_len, &dk, &dklen);
        if (rc != 0)
            break;
        rc = bs_eng_wb_delete(a->wb, a->db, a->s->desc.id, dk, dklen);
        free(dk);
        if (rc == 0)
            rc = bs_shard__ov_set(a->s->ov, c.kvs[i].key, c.kvs[i].key_len,
                                  NULL);
    }
    if (rc == 0 && c.n > 0)
        a->changed = true;
    out->deleted = (int64_t)c.n;
    if (rc == 0 && q->prev_kv) {
        out->kvs = c.kvs;
        out->n_kvs = c.n;
    } else {
        for (size_t i = 0; i < c.n; i++)
            bs_shard__kv_free(&c.kvs[i]);
        free(c.kvs);
    }
    return rc;
}

/* ---------------------------------------------------------------- txn */

struct cmp_ctx {
    const struct bs_shard_compare *c;
    bool any;
    bool holds;
};

/* etcd's compareKV: the key's field against the compare's operand. */
static bool compare_one(const struct bs_shard_compare *c,
                        const struct bs_shard__rec *rec)
{
    int r;

    switch (c->target) {
    case BS_SHARD_CMP_VALUE:
        r = bs_shard__cmp(rec->value, rec->value_len, c->value, c->value_len);
        break;
    case BS_SHARD_CMP_VERSION:
        r = rec->version < c->number ? -1 : rec->version > c->number;
        break;
    case BS_SHARD_CMP_CREATE:
        r = rec->create_revision < c->number ? -1
                                             : rec->create_revision > c->number;
        break;
    case BS_SHARD_CMP_MOD:
        r = rec->mod_revision < c->number ? -1 : rec->mod_revision > c->number;
        break;
    default: /* LEASE */
        r = rec->lease < c->number ? -1 : rec->lease > c->number;
        break;
    }
    switch (c->result) {
    case BS_SHARD_CMP_EQUAL:
        return r == 0;
    case BS_SHARD_CMP_GREATER:
        return r > 0;
    case BS_SHARD_CMP_LESS:
        return r < 0;
    default: /* NOT_EQUAL */
        return r != 0;
    }
}

static int cmp_cb(void *arg, const uint8_t *key, size_t len,
                  const struct bs_shard__rec *rec)
{
    struct cmp_ctx *c = arg;

    c->any = true;
    if (!compare_one(c->c, rec)) {
        c->holds = false;
        return 1; /* one failing key decides */
    }
    return 0;
}

/* etcd's applyCompare: true if the compare holds for every key of its
 * range; with no key, a VALUE compare fails and the others compare a
 * zero record. */
static int compare(struct actx *a, const struct bs_shard_compare *cmp,
                   bool *holds)
{
    struct cmp_ctx c = {.c = cmp, .holds = true};
    struct bs_shard__ival iv;
    int rc;

    bs_shard__ival_make(&iv, cmp->key, cmp->key_len, cmp->range_end,
                        cmp->range_end_len);
    rc = bs_shard__scan(&a->v, &iv, cmp_cb, &c);
    if (rc != 0)
        return rc;
    if (!c.any) {
        struct bs_shard__rec zero = {0};

        c.holds = cmp->target != BS_SHARD_CMP_VALUE && compare_one(cmp, &zero);
    }
    *holds = c.holds;
    return 0;
}

static int do_op(struct actx *a, const struct bs_shard_op *op,
                 struct bs_shard_op_resp *out)
{
    switch (op->type) {
    case BS_SHARD_CMD_PUT:
        return do_put(a, &op->u.put, out);
    case BS_SHARD_CMD_DELETE_RANGE:
        return do_delete(a, &op->u.del, out);
    default:
        return bs_shard__do_range(&a->v, &op->u.range, out);
    }
}

static int do_txn(struct actx *a, const struct bs_shard_txn_req *t,
                  struct bs_shard_resp *resp)
{
    const struct bs_shard_op *ops;
    bool ok = true;
    size_t n;
    int rc;

    /* All compares read the state before any op of the txn. */
    for (size_t i = 0; i < t->n_compares && ok; i++) {
        rc = compare(a, &t->compares[i], &ok);
        if (rc != 0)
            return rc;
    }
    resp->succeeded = ok;
    ops = ok ? t->success : t->failure;
    n = ok ? t->n_success : t->n_failure;
    if (n == 0)
        return 0;
    resp->ops = calloc(n, sizeof *resp->ops);
    if (resp->ops == NULL)
        return BS_ENOMEM;
    resp->n_ops = n;
    for (size_t i = 0; i < n; i++) {
        rc = do_op(a, &ops[i], &resp->ops[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* -------------------------------------------------------------- entry */

static int stage_state(struct bs_shard *s, struct bs_eng_db *db,
                       struct bs_eng_wb *wb, uint64_t index, uint64_t term)
{
    struct bs_shard__state st = {
        .desc = s->desc,
        .revision = s->revision,
        .applied_index = index,
        .applied_term = term,
        .conf = s->conf,
    };
    int rc = bs_shard__state_stage(db, wb, &st);

    if (rc == 0) {
        s->applied_index = index;
        s->applied_term = term;
    }
    return rc;
}

/* Common head of every apply: 1 = skip, 0 = go on, < 0 = fatal. */
static int apply_begin(struct bs_shard *s, uint64_t index,
                       struct bs_shard_resp *resp)
{
    resp->revision = s->revision;
    resp->epoch = s->desc.epoch;
    if (index <= s->applied_index) {
        resp->skipped = true;
        return 1;
    }
    if (index != s->applied_index + 1) {
        resp->err = bs_shard__err(
            resp->errmsg, BS_EINVAL,
            "shard %llu: entry %" PRIu64 " applied after %" PRIu64
            ": entries are missing",
            (unsigned long long)s->desc.id, index, s->applied_index);
        return resp->err;
    }
    return 0;
}

static int fatal(struct bs_shard *s, struct bs_eng_db *db,
                 struct bs_shard_resp *resp, int rc)
{
    bs_shard__err(resp->errmsg, rc, "shard %llu: apply failed: %s",
                  (unsigned long long)s->desc.id,
                  rc == BS_EIO ? bs_eng_db_errmsg(db) : bs_strerror(rc));
    resp->err = rc;
    return rc;
}

int bs_shard_apply(struct bs_shard *s, struct bs_eng_db *db,
                   struct bs_eng_wb *wb, uint64_t index, uint64_t term,
                   const uint8_t *data, size_t len, struct bs_shard_resp *resp)
{
    struct bs_shard_cmd cmd;
    struct actx a = {.s = s, .db = db, .wb = wb};
    int rc;

    bs_shard_resp_init(resp);
    rc = apply_begin(s, index, resp);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    if (len == 0)
        goto done;
    rc = bs_shard_cmd_decode(data, len, &cmd);
    if (rc == BS_ENOMEM)
        return fatal(s, db, resp, rc);
    if (rc != 0) {
        resp->err = bs_shard__err(
            resp->errmsg, BS_ECORRUPT,
            "entry %" PRIu64 " is not a valid shard command", index);
        goto done;
    }
    resp->type = cmd.type;
    resp->err =
        bs_shard__check(&s->desc, s->revision, &s->limits, &cmd, resp->errmsg);
    if (resp->err != 0)
        goto done_cmd;

    a.v = (struct bs_shard__view){
        .db = db, .snap = NULL, .id = s->desc.id, .ov = s->ov};
    a.next_rev = s->revision + 1;
    switch (cmd.type) {
    case BS_SHARD_CMD_PUT:
        rc = do_put(&a, &cmd.u.put, &resp->op);
        break;
    case BS_SHARD_CMD_DELETE_RANGE:
        rc = do_delete(&a, &cmd.u.del, &resp->op);
        break;
    case BS_SHARD_CMD_RANGE:
        rc = bs_shard__do_range(&a.v, &cmd.u.range, &resp->op);
        break;
    case BS_SHARD_CMD_TXN:
        rc = do_txn(&a, &cmd.u.txn, resp);
        break;
    case BS_SHARD_CMD_SPLIT:
        rc = bs_shard__apply_split(s, db, wb, index, term, &cmd.u.split, resp);
        break;
    }
    if (rc != 0) {
        bs_shard_cmd_free(&cmd);
        return fatal(s, db, resp, rc);
    }
    if (a.changed)
        s->revision = a.next_rev;
done_cmd:
    bs_shard_cmd_free(&cmd);
done:
    rc = stage_state(s, db, wb, index, term);
    if (rc != 0)
        return fatal(s, db, resp, rc);
    resp->revision = s->revision;
    resp->epoch = s->desc.epoch;
    return 0;
}

int bs_shard_apply_conf(struct bs_shard *s, struct bs_eng_db *db,
                        struct bs_eng_wb *wb, uint64_t index, uint64_t term,
                        const struct bs_raft_conf_state *cs,
                        const struct bs_shard_replica *replicas, uint32_t n)
{
    struct bs_shard_resp resp;
    int rc;

    bs_shard_resp_init(&resp);
    if (n > BS_RAFT_MAX_MEMBERS)
        return BS_EINVAL;
    rc = apply_begin(s, index, &resp);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    s->conf = *cs;
    memcpy(s->desc.replicas, replicas, n * sizeof *replicas);
    s->desc.n_replicas = n;
    s->desc.epoch.conf_ver++;
    return stage_state(s, db, wb, index, term);
}
