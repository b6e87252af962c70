/*
 * read.c - etcd's Range over a shard: used by apply (Range commands and
 * the Range ops of a Txn, through the overlay) and by bs_shard_range, the
 * read path the store calls for serializable reads and for linearizable
 * ones once ReadIndex or the lease allowed them.
 *
 * Semantics follow etcd's v3 server (applyRange): count is the number of
 * keys in the range before filters and limit; the min/max revision
 * filters drop keys from kvs; more says that more keys passed the filters
 * than limit let through; count_only returns no kvs (and more = false);
 * keys_only returns kvs without values. Sorting is done in memory like
 * etcd does (all matching keys are collected, sorted, then cut to limit);
 * a target other than KEY with order NONE sorts ascending, as in etcd.
 * Ties of the sort target are ordered by key, ascending, so that every
 * replica answers the same.
 */
#define _GNU_SOURCE /* qsort_r */
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

struct range_ctx {
    const struct bs_shard_range_req *q;
    struct bs_shard_op_resp *out;
    size_t cap;
    bool collect_all; /* sorting: collect every match, cut afterwards */
    bool with_values; /* copy values (keys_only may still drop them) */
};

static bool filtered_out(const struct bs_shard_range_req *q,
                         const struct bs_shard__rec *rec)
{
    return (q->max_mod_revision != 0 &&
            rec->mod_revision > q->max_mod_revision) ||
           (q->min_mod_revision != 0 &&
            rec->mod_revision < q->min_mod_revision) ||
           (q->max_create_revision != 0 &&
            rec->create_revision > q->max_create_revision) ||
           (q->min_create_revision != 0 &&
            rec->create_revision < q->min_create_revision);
}

static int range_cb(void *arg, const uint8_t *key, size_t len,
                    const struct bs_shard__rec *rec)
{
    struct range_ctx *c = arg;
    struct bs_shard_op_resp *o = c->out;

    o->count++;
    if (c->q->count_only || filtered_out(c->q, rec))
        return 0;
    if (!c->collect_all && c->q->limit > 0 && o->n_kvs >= (size_t)c->q->limit) {
        o->more = true;
        return 0; /* keep counting */
    }
    return bs_shard__kvs_push(&o->kvs, &o->n_kvs, &c->cap, key, len, rec,
                              !c->with_values);
}

struct sort_spec {
    uint8_t target;
    bool descend;
};

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
    const struct bs_shard_kv *a = pa, *b = pb;
    const struct sort_spec *sp = arg;
    int c = 0;

    switch (sp->target) {
    case BS_SHARD_SORT_VERSION:
        c = cmp_i64(a->version, b->version);
        break;
    case BS_SHARD_SORT_CREATE:
        c = cmp_i64(a->create_revision, b->create_revision);
        break;
    case BS_SHARD_SORT_MOD:
        c = cmp_i64(a->mod_revision, b->mod_revision);
        break;
    case BS_SHARD_SORT_VALUE:
        c = bs_shard__cmp(a->value, a->value_len, b->value, b->value_len);
        break;
    default:
        break;
    }
    if (sp->descend)
        c = -c;
    if (c == 0) {
        c = bs_shard__cmp(a->key, a->key_len, b->key, b->key_len);
        if (sp->target == BS_SHARD_SORT_KEY && sp->descend)
            c = -c;
    }
    return c;
}

int bs_shard__do_range(const struct bs_shard__view *v,
                       const struct bs_shard_range_req *q,
                       struct bs_shard_op_resp *out)
{
    struct range_ctx c = {.q = q, .out = out};
    struct bs_shard__ival iv;
    struct sort_spec sp = {.target = q->sort_target};
    uint8_t order = q->sort_order;
    int rc;

    memset(out, 0, sizeof *out);
    out->type = BS_SHARD_CMD_RANGE;
    if (order == BS_SHARD_SORT_NONE && q->sort_target != BS_SHARD_SORT_KEY)
        order = BS_SHARD_SORT_ASCEND;
    sp.descend = order == BS_SHARD_SORT_DESCEND;
    /* Keys come in ascending order: only another order needs a sort. */
    c.collect_all = order != BS_SHARD_SORT_NONE &&
                    !(q->sort_target == BS_SHARD_SORT_KEY && !sp.descend);
    c.with_values = !q->keys_only ||
                    (c.collect_all && q->sort_target == BS_SHARD_SORT_VALUE);

    bs_shard__ival_make(&iv, q->key, q->key_len, q->range_end,
                        q->range_end_len);
    rc = bs_shard__scan(v, &iv, range_cb, &c);
    if (rc != 0) {
        bs_shard__op_resp_free(out);
        out->type = BS_SHARD_CMD_RANGE;
        return rc;
    }
    if (c.collect_all && out->n_kvs > 1)
        qsort_r(out->kvs, out->n_kvs, sizeof *out->kvs, sort_cmp, &sp);
    if (q->limit > 0 && out->n_kvs > (size_t)q->limit) {
        for (size_t i = (size_t)q->limit; i < out->n_kvs; i++)
            bs_shard__kv_free(&out->kvs[i]);
        out->n_kvs = (size_t)q->limit;
        out->more = true;
    }
    if (q->keys_only && c.with_values) {
        for (size_t i = 0; i < out->n_kvs; i++) {
            free(out->kvs[i].value);
            out->kvs[i].value = NULL;
            out->kvs[i].value_len = 0;
        }
    }
    return 0;
}

int bs_shard_range(const struct bs_shard *s, struct bs_eng_db *db,
                   const struct bs_eng_snap *snap,
                   const struct bs_shard_epoch *epoch,
                   const struct bs_shard_range_req *req,
                   struct bs_shard_resp *resp)
{
    struct bs_eng_snap *own = NULL;
    struct bs_shard__state st;
    struct bs_shard__view v;
    struct bs_shard_cmd cmd;
    int rc;

    bs_shard_resp_init(resp);
    resp->type = BS_SHARD_CMD_RANGE;
    resp->op.type = BS_SHARD_CMD_RANGE;
    /* State and data must come from one view: take a snapshot if the
     * caller gave none. */
    if (snap == NULL) {
        own = bs_eng_snap_create(db);
        if (own == NULL) {
            resp->err = bs_shard__err(resp->errmsg, BS_ENOMEM,
                                      "cannot take a snapshot");
            return resp->err;
        }
        snap = own;
    }
    rc = bs_shard__state_read(db, snap, s->desc.id, &st, resp->errmsg);
    if (rc != 0)
        goto out;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = BS_SHARD_CMD_RANGE;
    cmd.epoch = *epoch;
    cmd.u.range = *req;
    resp->revision = st.revision;
    resp->epoch = st.desc.epoch;
    rc = bs_shard__check(&st.desc, st.revision, &s->limits, &cmd, resp->errmsg);
    if (rc == 0) {
        v = (struct bs_shard__view){
            .db = db, .snap = snap, .id = s->desc.id, .ov = NULL};
        rc = bs_shard__do_range(&v, req, &resp->op);
        if (rc != 0)
            bs_shard__err(resp->errmsg, rc, "shard %llu: range: %s",
                          (unsigned long long)s->desc.id,
                          rc == BS_EIO ? bs_eng_db_errmsg(db)
                                       : bs_strerror(rc));
    }
    bs_shard_desc_free(&st.desc);
out:
    if (own != NULL)
        bs_eng_snap_release(db, own);
    resp->err = rc;
    return rc;
}

int bs_shard_range_live(const struct bs_shard *s, struct bs_eng_db *db,
                        const struct bs_shard_epoch *epoch,
                        const struct bs_shard_range_req *req,
                        struct bs_shard_resp *resp)
{
    struct bs_shard__view v;
    struct bs_shard_cmd cmd;
    int rc;

    bs_shard_resp_init(resp);
    resp->type = BS_SHARD_CMD_RANGE;
    resp->op.type = BS_SHARD_CMD_RANGE;
    /* The in-memory state is the db's: the caller applies on this thread
     * and has no staged writes (no snapshot, no state read needed). */
    if (s->ov != NULL && s->ov->n > 0) {
        resp->err = bs_shard__err(resp->errmsg, BS_EBUSY,
                                  "shard %llu: writes are staged; read "
                                  "after the batch is written",
                                  (unsigned long long)s->desc.id);
        return resp->err;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = BS_SHARD_CMD_RANGE;
    cmd.epoch = *epoch;
    cmd.u.range = *req;
    resp->revision = s->revision;
    resp->epoch = s->desc.epoch;
    rc = bs_shard__check(&s->desc, s->revision, &s->limits, &cmd, resp->errmsg);
    if (rc == 0) {
        v = (struct bs_shard__view){
            .db = db, .snap = NULL, .id = s->desc.id, .ov = NULL};
        rc = bs_shard__do_range(&v, req, &resp->op);
        if (rc != 0)
            bs_shard__err(resp->errmsg, rc, "shard %llu: range: %s",
                          (unsigned long long)s->desc.id,
                          rc == BS_EIO ? bs_eng_db_errmsg(db)
                                       : bs_strerror(rc));
    }
    resp->err = rc;
    return rc;
}
