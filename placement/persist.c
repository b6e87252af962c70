/*
 * persist.c - the placement state as records: what bs_pd_save writes into
 * shard 0's column family, what bs_pd_load reads back, and the same
 * records packed into one buffer (bs_pd_encode_all / bs_pd_decode_all).
 * Pure: records go out through a put callback and come in through a next
 * callback, so the engine glue (store.c) is a thin adapter and the
 * simulator can keep the records wherever it likes.
 *
 * Records (keys sort meta, nodes by id, operators by id, shards by id):
 *
 *   "pm"                 meta: bootstrapped u8, cluster_id u64, applied
 *                        u64, replicas_per_shard u32, next shard / replica
 *                        / node id u64 each, node count u64, shard count
 *                        u64; version 2 adds next_op_id u64, ops finished
 *                        u64, ops cancelled u64, paused u8, operator count
 *                        u64
 *   "pn" + id (8B BE)    node: node info, state u8, last_heartbeat u64,
 *                        state_since u64; version 2 adds join_token u64
 *   "po" + id (8B BE)    operator (version 1): id u64, kind u8, reason u8,
 *                        shard_id u64, from_node u64, to_node u64,
 *                        new_replica u64, split_key blob, new_shard_id
 *                        u64, new_replicas, created_at u64
 *   "ps" + id (8B BE)    shard (version 1): id u64, keyless u8, start
 *                        blob, end blob, conf_ver u64, version u64,
 *                        replicas, leader u64, leader_term u64
 *
 * Every value is  u8 format version | payload | u32 CRC32C of the bytes
 * before it. Each kind of record has its own version, and a load accepts
 * every version of it that was ever written (the older ones leave the new
 * fields zero), so a node keeps reading the records of the release before;
 * a save always writes the newest. The counts in the meta record let a
 * load notice a record that went missing, not only one that went bad; a
 * loaded state is also run through bs_pd_check before it replaces
 * anything.
 *
 * Operators are the one kind of record that is deleted: a finished or
 * cancelled operator's record is removed by the same save that writes the
 * applied index (put with no value, see bs_pd_put_fn), so that a reload
 * never resurrects it. A tombstone record would have worked too, but it
 * would stay in the column family for ever and every load would have to
 * skip it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement_int.h"

/* Newest record versions; loads accept 1 .. these. */
#define META_VERSION  2
#define NODE_VERSION  2
#define OP_VERSION    1
#define SHARD_VERSION 1
#define IMAGE_VERSION 1
#define KEY_LEN       10 /* 'p', kind, 8-byte id */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void rec_key(uint8_t key[KEY_LEN], char kind, uint64_t id)
{
    key[0] = 'p';
    key[1] = (uint8_t)kind;
    put_be64(key + 2, id);
}

static void rec_seal(struct bs_pd_buf *b)
{
    bs_pd__buf_u32(b, bs_eng_crc32c(0, b->p, b->len));
}

static void enc_meta(const struct bs_pd_state *st, struct bs_pd_buf *b)
{
    bs_pd__buf_u8(b, META_VERSION);
    bs_pd__buf_u8(b, st->bootstrapped);
    bs_pd__buf_u64(b, st->cluster_id);
    bs_pd__buf_u64(b, st->applied);
    bs_pd__buf_u32(b, st->replicas_per_shard);
    bs_pd__buf_u64(b, st->next_shard_id);
    bs_pd__buf_u64(b, st->next_replica_id);
    bs_pd__buf_u64(b, st->next_node_id);
    bs_pd__buf_u64(b, st->n_nodes);
    bs_pd__buf_u64(b, st->n_shards);
    bs_pd__buf_u64(b, st->next_op_id);
    bs_pd__buf_u64(b, st->ops_finished);
    bs_pd__buf_u64(b, st->ops_cancelled);
    bs_pd__buf_u8(b, st->sched.paused);
    bs_pd__buf_u64(b, st->n_ops);
    rec_seal(b);
}

static void enc_node(const struct bs_pd_node *n, struct bs_pd_buf *b)
{
    bs_pd__buf_u8(b, NODE_VERSION);
    bs_pd__put_node_info(b, &n->info);
    bs_pd__buf_u8(b, n->state);
    bs_pd__buf_u64(b, n->last_heartbeat);
    bs_pd__buf_u64(b, n->state_since);
    bs_pd__buf_u64(b, n->join_token);
    rec_seal(b);
}

static void enc_op(const struct bs_pd_op *op, struct bs_pd_buf *b)
{
    bs_pd__buf_u8(b, OP_VERSION);
    bs_pd__buf_u64(b, op->id);
    bs_pd__buf_u8(b, op->kind);
    bs_pd__buf_u8(b, op->reason);
    bs_pd__buf_u64(b, op->shard_id);
    bs_pd__buf_u64(b, op->from_node);
    bs_pd__buf_u64(b, op->to_node);
    bs_pd__buf_u64(b, op->new_replica);
    bs_pd__buf_blob(b, op->split_key, op->split_key_len);
    bs_pd__buf_u64(b, op->new_shard_id);
    bs_pd__put_replicas(b, op->new_replicas, op->n_new_replicas);
    bs_pd__buf_u64(b, op->created_at);
    rec_seal(b);
}

static void enc_shard(const struct bs_pd_shard *s, struct bs_pd_buf *b)
{
    bs_pd__buf_u8(b, SHARD_VERSION);
    bs_pd__buf_u64(b, s->id);
    bs_pd__buf_u8(b, s->keyless);
    bs_pd__buf_blob(b, s->start, s->start_len);
    bs_pd__buf_blob(b, s->end, s->end_len);
    bs_pd__buf_u64(b, s->epoch.conf_ver);
    bs_pd__buf_u64(b, s->epoch.version);
    bs_pd__put_replicas(b, s->replicas, s->n_replicas);
    bs_pd__buf_u64(b, s->leader);
    bs_pd__buf_u64(b, s->leader_term);
    rec_seal(b);
}

/* Hands the record encoded in *b to put. */
static int emit(struct bs_pd_buf *b, const uint8_t *key, size_t klen,
                bs_pd_put_fn put, void *ctx)
{
    if (b->err)
        return b->err;
    return put(ctx, key, klen, b->p, b->len);
}

static int emit_meta(const struct bs_pd_state *st, struct bs_pd_buf *b,
                     bs_pd_put_fn put, void *ctx)
{
    const uint8_t key[2] = {'p', 'm'};
    b->len = 0;
    enc_meta(st, b);
    return emit(b, key, sizeof(key), put, ctx);
}

static int emit_node(const struct bs_pd_node *n, struct bs_pd_buf *b,
                     bs_pd_put_fn put, void *ctx)
{
    uint8_t key[KEY_LEN];
    rec_key(key, 'n', n->info.id);
    b->len = 0;
    enc_node(n, b);
    return emit(b, key, sizeof(key), put, ctx);
}

static int emit_op(const struct bs_pd_op *op, struct bs_pd_buf *b,
                   bs_pd_put_fn put, void *ctx)
{
    uint8_t key[KEY_LEN];
    rec_key(key, 'o', op->id);
    b->len = 0;
    enc_op(op, b);
    return emit(b, key, sizeof(key), put, ctx);
}

static int emit_shard(const struct bs_pd_shard *s, struct bs_pd_buf *b,
                      bs_pd_put_fn put, void *ctx)
{
    uint8_t key[KEY_LEN];
    rec_key(key, 's', s->id);
    b->len = 0;
    enc_shard(s, b);
    return emit(b, key, sizeof(key), put, ctx);
}

/* Every record in key order. */
static int emit_all(const struct bs_pd_state *st, bs_pd_put_fn put, void *ctx)
{
    struct bs_pd_buf b = {0};
    int rc = emit_meta(st, &b, put, ctx);
    for (size_t i = 0; i < st->n_nodes && rc == 0; i++)
        rc = emit_node(&st->nodes[i].n, &b, put, ctx);
    for (size_t i = 0; i < st->n_ops && rc == 0; i++)
        rc = emit_op(&st->ops[i].op, &b, put, ctx);
    for (size_t i = 0; i < st->n_shards && rc == 0; i++)
        rc = emit_shard(st->shards[i], &b, put, ctx);
    free(b.p);
    return rc;
}

int bs_pd_save_to(struct bs_pd_state *st, bs_pd_put_fn put, void *ctx)
{
    struct bs_pd_buf b = {0};
    int rc = 0;
    for (size_t i = 0; i < st->n_dirty_nodes && rc == 0; i++) {
        const struct bs_pd_node *n = bs_pd_node_find(st, st->dirty_nodes[i]);
        if (n)
            rc = emit_node(n, &b, put, ctx);
    }
    for (size_t i = 0; i < st->n_dirty_ops && rc == 0; i++) {
        const struct bs_pd_op *op = bs_pd_op_find(st, st->dirty_ops[i]);
        if (op) {
            rc = emit_op(op, &b, put, ctx);
        } else {
            /* Finished or cancelled since the last save. */
            uint8_t key[KEY_LEN];
            rec_key(key, 'o', st->dirty_ops[i]);
            rc = put(ctx, key, sizeof(key), NULL, 0);
        }
    }
    for (size_t i = 0; i < st->n_dirty_shards && rc == 0; i++)
        rc = emit_shard(st->dirty_shards[i], &b, put, ctx);
    if (rc == 0)
        rc = emit_meta(st, &b, put, ctx);
    free(b.p);
    bs_pd__clear_dirty(st);
    return rc;
}

int bs_pd_save_all_to(struct bs_pd_state *st, bs_pd_put_fn put, void *ctx)
{
    int rc = emit_all(st, put, ctx);
    bs_pd__clear_dirty(st);
    return rc;
}

/* ------------------------------------------------------------- loading */

struct loader {
    struct bs_pd_state *ns;
    bool have_meta;
    uint64_t want_nodes, want_shards, want_ops;
    char *errmsg;
};

static int fail(struct loader *ld, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *ld, int rc, const char *fmt, ...)
{
    if (ld->errmsg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->errmsg, 256, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Checks checksum and version (1 .. newest); on success r reads the
 * payload and *version is the record's. */
static bool rec_open(const uint8_t *val, size_t vlen, uint8_t newest,
                     struct bs_pd_rd *r, uint8_t *version, const char **why)
{
    if (vlen < 1 + 4) {
        *why = "too short";
        return false;
    }
    struct bs_pd_rd t = {.p = val + vlen - 4, .len = 4};
    if (bs_eng_crc32c(0, val, vlen - 4) != bs_pd__rd_u32(&t)) {
        *why = "checksum mismatch";
        return false;
    }
    if (val[0] < 1 || val[0] > newest) {
        *why = "unknown format version";
        return false;
    }
    *version = val[0];
    *r = (struct bs_pd_rd){.p = val, .len = vlen - 4, .off = 1};
    return true;
}

static int load_meta(struct loader *ld, struct bs_pd_rd *r, uint8_t version)
{
    struct bs_pd_state *ns = ld->ns;
    if (ld->have_meta)
        return fail(ld, BS_ECORRUPT, "placement record meta: duplicate");
    ld->have_meta = true;
    uint8_t boot = bs_pd__rd_u8(r);
    ns->cluster_id = bs_pd__rd_u64(r);
    ns->applied = bs_pd__rd_u64(r);
    ns->replicas_per_shard = bs_pd__rd_u32(r);
    ns->next_shard_id = bs_pd__rd_u64(r);
    ns->next_replica_id = bs_pd__rd_u64(r);
    ns->next_node_id = bs_pd__rd_u64(r);
    ld->want_nodes = bs_pd__rd_u64(r);
    ld->want_shards = bs_pd__rd_u64(r);
    uint8_t paused = 0;
    if (version >= 2) {
        ns->next_op_id = bs_pd__rd_u64(r);
        ns->ops_finished = bs_pd__rd_u64(r);
        ns->ops_cancelled = bs_pd__rd_u64(r);
        paused = bs_pd__rd_u8(r);
        ld->want_ops = bs_pd__rd_u64(r);
    }
    if (r->bad || r->off != r->len || boot > 1 || paused > 1 ||
        ns->next_op_id == 0)
        return fail(ld, BS_ECORRUPT, "placement record meta: malformed");
    ns->bootstrapped = boot;
    ns->sched.paused = paused;
    return 0;
}

static int load_node(struct loader *ld, uint64_t id, struct bs_pd_rd *r,
                     uint8_t version)
{
    struct bs_pd_node n = {0};
    bs_pd__get_node_info(r, &n.info);
    n.state = bs_pd__rd_u8(r);
    n.last_heartbeat = bs_pd__rd_u64(r);
    n.state_since = bs_pd__rd_u64(r);
    if (version >= 2)
        n.join_token = bs_pd__rd_u64(r);
    if (r->bad || r->off != r->len)
        return fail(ld, BS_ECORRUPT, "placement record node/%llu: malformed",
                    (unsigned long long)id);
    if (n.info.id != id)
        return fail(ld, BS_ECORRUPT,
                    "placement record node/%llu: holds node %llu",
                    (unsigned long long)id, (unsigned long long)n.info.id);
    if (bs_pd_node_find(ld->ns, id))
        return fail(ld, BS_ECORRUPT, "placement record node/%llu: duplicate",
                    (unsigned long long)id);
    if (bs_pd__reserve_nodes(ld->ns, 1) || bs_pd__reserve_dirty(ld->ns, 1, 0))
        return BS_ENOMEM;
    bs_pd__node_insert(ld->ns, &n);
    return 0;
}

static int load_op(struct loader *ld, uint64_t id, struct bs_pd_rd *r)
{
    struct bs_pd_op op = {0};
    op.id = bs_pd__rd_u64(r);
    op.kind = bs_pd__rd_u8(r);
    op.reason = bs_pd__rd_u8(r);
    op.shard_id = bs_pd__rd_u64(r);
    op.from_node = bs_pd__rd_u64(r);
    op.to_node = bs_pd__rd_u64(r);
    op.new_replica = bs_pd__rd_u64(r);
    size_t klen;
    const uint8_t *key = bs_pd__rd_blob(r, BS_PD_MAX_KEY_LEN, &klen);
    op.new_shard_id = bs_pd__rd_u64(r);
    bs_pd__get_replicas(r, op.new_replicas, &op.n_new_replicas);
    op.created_at = bs_pd__rd_u64(r);
    if (r->bad || r->off != r->len)
        return fail(ld, BS_ECORRUPT,
                    "placement record operator/%llu: malformed",
                    (unsigned long long)id);
    if (op.id != id)
        return fail(ld, BS_ECORRUPT,
                    "placement record operator/%llu: holds operator %llu",
                    (unsigned long long)id, (unsigned long long)op.id);
    if (bs_pd_op_find(ld->ns, id))
        return fail(ld, BS_ECORRUPT,
                    "placement record operator/%llu: duplicate",
                    (unsigned long long)id);
    if (bs_pd__reserve_ops(ld->ns, 1) || bs_pd__reserve_dirty_ops(ld->ns, 1))
        return BS_ENOMEM;
    if (klen) {
        op.split_key = malloc(klen);
        if (!op.split_key)
            return BS_ENOMEM;
        memcpy(op.split_key, key, klen);
        op.split_key_len = klen;
    }
    /* The rest (kind, shard, nodes, ids) is bs_pd_check's, once every
     * record is in. */
    bs_pd__op_insert(ld->ns, &op);
    return 0;
}

static int load_shard(struct loader *ld, uint64_t id, struct bs_pd_rd *r)
{
    uint64_t sid = bs_pd__rd_u64(r);
    uint8_t keyless = bs_pd__rd_u8(r);
    size_t slen, elen;
    const uint8_t *start = bs_pd__rd_blob(r, BS_PD_MAX_KEY_LEN, &slen);
    const uint8_t *end = bs_pd__rd_blob(r, BS_PD_MAX_KEY_LEN, &elen);
    struct bs_pd_epoch ep;
    ep.conf_ver = bs_pd__rd_u64(r);
    ep.version = bs_pd__rd_u64(r);
    struct bs_pd_replica reps[BS_RAFT_MAX_MEMBERS];
    uint32_t n_reps;
    bs_pd__get_replicas(r, reps, &n_reps);
    uint64_t leader = bs_pd__rd_u64(r);
    uint64_t leader_term = bs_pd__rd_u64(r);
    if (r->bad || r->off != r->len || keyless > 1)
        return fail(ld, BS_ECORRUPT, "placement record shard/%llu: malformed",
                    (unsigned long long)id);
    if (sid != id)
        return fail(ld, BS_ECORRUPT,
                    "placement record shard/%llu: holds shard %llu",
                    (unsigned long long)id, (unsigned long long)sid);
    if (bs_pd_shard_find(ld->ns, id))
        return fail(ld, BS_ECORRUPT, "placement record shard/%llu: duplicate",
                    (unsigned long long)id);
    if (bs_pd__reserve_shards(ld->ns, 1) || bs_pd__reserve_dirty(ld->ns, 0, 1))
        return BS_ENOMEM;
    struct bs_pd_shard *s = bs_pd__shard_new(id, start, slen, end, elen);
    if (!s)
        return BS_ENOMEM;
    s->keyless = keyless;
    s->epoch = ep;
    memcpy(s->replicas, reps, n_reps * sizeof(*reps));
    s->n_replicas = n_reps;
    s->leader = leader;
    s->leader_term = leader_term;
    /* Appended to the routing table; sorted once at the end. */
    bs_pd__shard_insert(ld->ns, s, ld->ns->n_route);
    return 0;
}

static int load_record(struct loader *ld, const uint8_t *key, size_t klen,
                       const uint8_t *val, size_t vlen)
{
    if (klen == 0 || key[0] != 'p')
        return 0; /* not a placement record */
    const char *why = NULL;
    struct bs_pd_rd r;
    uint8_t version;
    if (klen == 2 && key[1] == 'm') {
        if (!rec_open(val, vlen, META_VERSION, &r, &version, &why))
            return fail(ld, BS_ECORRUPT, "placement record meta: %s", why);
        return load_meta(ld, &r, version);
    }
    if (klen == KEY_LEN && (key[1] == 'n' || key[1] == 'o' || key[1] == 's')) {
        uint64_t id = get_be64(key + 2);
        const char *kind = key[1] == 'n'   ? "node"
                           : key[1] == 'o' ? "operator"
                                           : "shard";
        uint8_t newest = key[1] == 'n'   ? NODE_VERSION
                         : key[1] == 'o' ? OP_VERSION
                                         : SHARD_VERSION;
        if (!rec_open(val, vlen, newest, &r, &version, &why))
            return fail(ld, BS_ECORRUPT, "placement record %s/%llu: %s", kind,
                        (unsigned long long)id, why);
        if (key[1] == 'n')
            return load_node(ld, id, &r, version);
        return key[1] == 'o' ? load_op(ld, id, &r) : load_shard(ld, id, &r);
    }
    return fail(ld, BS_ECORRUPT,
                "placement record with unknown key (%zu bytes, kind 0x%02x)",
                klen, klen > 1 ? key[1] : 0);
}

static int load_finish(struct loader *ld)
{
    struct bs_pd_state *ns = ld->ns;
    if (!ld->have_meta) {
        if (ns->n_nodes || ns->n_shards || ns->n_ops)
            return fail(ld, BS_ECORRUPT,
                        "placement record meta: missing, but %zu node, %zu "
                        "operator and %zu shard records exist",
                        ns->n_nodes, ns->n_ops, ns->n_shards);
        return 0; /* nothing saved yet: the empty state */
    }
    if (ld->want_nodes != ns->n_nodes || ld->want_shards != ns->n_shards ||
        ld->want_ops != ns->n_ops)
        return fail(ld, BS_ECORRUPT,
                    "placement record meta: counts %llu nodes, %llu "
                    "operators and %llu shards, found %zu, %zu and %zu "
                    "records",
                    (unsigned long long)ld->want_nodes,
                    (unsigned long long)ld->want_ops,
                    (unsigned long long)ld->want_shards, ns->n_nodes, ns->n_ops,
                    ns->n_shards);
    if (bs_pd__route_rebuild(ns))
        return BS_ENOMEM;
    bs_pd__clear_dirty(ns);
    bool nomem;
    const char *why = bs_pd__check(ns, &nomem);
    if (nomem)
        return BS_ENOMEM;
    if (why)
        return fail(ld, BS_ECORRUPT, "placement records inconsistent: %s", why);
    return 0;
}

int bs_pd_load_from(struct bs_pd_state *st, bs_pd_next_fn next, void *ctx,
                    char *errmsg)
{
    struct loader ld = {.errmsg = errmsg};
    if (errmsg)
        errmsg[0] = '\0';
    ld.ns = bs_pd_state_create();
    if (!ld.ns)
        return BS_ENOMEM;
    int rc;
    for (;;) {
        const void *key, *val;
        size_t klen, vlen;
        rc = next(ctx, &key, &klen, &val, &vlen);
        if (rc <= 0)
            break;
        rc = load_record(&ld, key, klen, val, vlen);
        if (rc)
            break;
    }
    if (rc == 0)
        rc = load_finish(&ld);
    if (rc == BS_ENOMEM)
        fail(&ld, rc, "out of memory while loading placement records");
    if (rc == 0)
        bs_pd__state_swap(st, ld.ns);
    bs_pd_state_destroy(ld.ns);
    return rc;
}

/* --------------------------------------------------------- full image */

/* "BSPD" | u32 version | u32 record count | (key blob, value blob)... */

static int image_put(void *ctx, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    struct bs_pd_buf *b = ctx;
    bs_pd__buf_blob(b, key, klen);
    bs_pd__buf_blob(b, val, vlen);
    return b->err;
}

int bs_pd_encode_all(const struct bs_pd_state *st, uint8_t **out, size_t *len)
{
    struct bs_pd_buf b = {0};
    bs_pd__buf_bytes(&b, "BSPD", 4);
    bs_pd__buf_u32(&b, IMAGE_VERSION);
    bs_pd__buf_u32(&b, (uint32_t)(1 + st->n_nodes + st->n_ops + st->n_shards));
    int rc = b.err ? b.err : emit_all(st, image_put, &b);
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

struct image_rd {
    struct bs_pd_rd r;
    uint32_t left;
};

static int image_next(void *ctx, const void **key, size_t *klen,
                      const void **val, size_t *vlen)
{
    struct image_rd *ir = ctx;
    if (ir->left == 0)
        return ir->r.off == ir->r.len ? 0 : BS_ECORRUPT;
    ir->left--;
    *key = bs_pd__rd_blob(&ir->r, 64, klen);
    *val = bs_pd__rd_blob(&ir->r, ir->r.len, vlen);
    return ir->r.bad ? BS_ECORRUPT : 1;
}

int bs_pd_decode_all(struct bs_pd_state *st, const uint8_t *data, size_t len,
                     char *errmsg)
{
    struct image_rd ir = {.r = {.p = data, .len = data ? len : 0}};
    const uint8_t *magic = bs_pd__rd_bytes(&ir.r, 4);
    uint32_t version = bs_pd__rd_u32(&ir.r);
    ir.left = bs_pd__rd_u32(&ir.r);
    if (!magic || memcmp(magic, "BSPD", 4) != 0 || ir.r.bad ||
        version != IMAGE_VERSION) {
        if (errmsg)
            snprintf(errmsg, 256, "placement image: bad header");
        return BS_ECORRUPT;
    }
    int rc = bs_pd_load_from(st, image_next, &ir, errmsg);
    if (rc == BS_ECORRUPT && errmsg && errmsg[0] == '\0')
        snprintf(errmsg, 256, "placement image: truncated or trailing bytes");
    return rc;
}
