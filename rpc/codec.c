/*
 * codec.c - nanopb callbacks that encode and decode the hot-path messages
 * (Raft batches, snapshot chunks, etcd KV requests and responses) straight
 * from and into the structs of engine/ and shard/.
 *
 * Every unbounded field of the generated structs is a pb_callback_t (see
 * the .options files in rpc/proto). Encoding points each callback at a
 * small source record on the stack (struct bs_rpc__bytes, or the array to
 * walk) and lets pb_encode call it; nanopb calls encode callbacks more than
 * once (a sizing pass per level of nesting), so they are pure functions of
 * their source. Decoding points each callback at its destination in the C
 * struct, with the limit that applies, and the callback fails with a
 * BS_E* code recorded in struct bs_rpc__dec; the first error wins and names the
 * field.
 *
 * Zero copy. Decoders only ever run over a buffer stream
 * (pb_istream_from_buffer), whose state is the read position in the
 * caller's buffer: a byte-string callback takes the pointer and skips the
 * bytes, so a batch's entry data is never copied (the result borrows the
 * buffer). One trap: for a field sent with a non-length-delimited wire
 * type, nanopb hands the callback a substream over a copy on its own
 * stack; bs_rpc__dec_span() therefore checks that the stream position lies
 * inside the caller's buffer before taking a pointer, and calls such a field
 * malformed. Responses, which outlive the gRPC buffer, are copied
 * instead (copy_cb).
 *
 * Recursion is bounded by the schema: the only recursive pair (a Txn
 * inside a RequestOp, a TxnResponse inside a ResponseOp) is refused in
 * the oneof's submessage callback, before nanopb descends into it.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "codec.h"
#include "kv.pb.h"
#include "pb_int.h"
#include "raft.pb.h"
#include "rpc.pb.h"

/* The configuration sets of raft.options are static arrays of
 * BS_RAFT_MAX_MEMBERS ids. */
_Static_assert(sizeof(((basalt_raft_ConfState *)0)->voters) ==
                   BS_RAFT_MAX_MEMBERS * sizeof(uint64_t),
               "raft.options: ConfState max_count must be BS_RAFT_MAX_MEMBERS");
_Static_assert(sizeof(((basalt_raft_ConfState *)0)->learners_next) ==
                   BS_RAFT_MAX_MEMBERS * sizeof(uint64_t),
               "raft.options: ConfState max_count must be BS_RAFT_MAX_MEMBERS");

#define MAX_FILE_NAME 255

void bs_rpc_limits_default(struct bs_rpc_limits *l)
{
    l->max_message = BS_RPC_DEFAULT_MAX_MESSAGE;
    l->max_envelopes = BS_RPC_DEFAULT_MAX_ENVELOPES;
    l->max_entries = BS_RPC_DEFAULT_MAX_ENTRIES;
    l->max_entry = BS_RPC_DEFAULT_MAX_ENTRY;
    l->max_key = BS_SHARD_DEFAULT_MAX_KEY;
    l->max_value = BS_SHARD_DEFAULT_MAX_VALUE;
    l->max_txn_ops = BS_SHARD_DEFAULT_MAX_TXN_OPS;
    l->max_kvs = BS_RPC_DEFAULT_MAX_KVS;
}


/* ============================================================ encoding */

struct enc {
    int err; /* first error of a callback, 0 = none */
    char *errmsg;
};

static bool enc_fail(struct enc *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool enc_fail(struct enc *e, const char *fmt, ...)
{
    va_list ap;

    if (e->err == 0) {
        e->err = BS_EINVAL;
        va_start(ap, fmt);
        bs_rpc__vset_msg(e->errmsg, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Encodes msg into a malloc'd buffer of exactly its size. */
static int encode(struct enc *e, const pb_msgdesc_t *fields, const void *msg,
                  const char *what, uint8_t **out, size_t *len)
{
    return bs_rpc__encode(fields, msg, what, &e->err, e->errmsg, out, len);
}

/* ============================================================ decoding */


/* The outcome of a top-level decode. */
static int dec_result(struct bs_rpc__dec *d, pb_istream_t *s, bool ok,
                      const char *what)
{
    if (ok)
        return 0;
    if (d->err == 0)
        bs_rpc__dec_pb_fail(d, s, what);
    return d->err;
}

/* A byte string that will point into the caller's buffer. */
struct borrow_dst {
    struct bs_rpc__dec *d;
    const char *what;
    size_t max;
    const uint8_t **p;
    size_t *n;
};

static bool borrow_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct borrow_dst *b = *arg;

    return bs_rpc__dec_span(b->d, s, b->what, b->max, b->p, b->n);
}

static pb_callback_t borrow(struct borrow_dst *b, struct bs_rpc__dec *d,
                            const char *what, size_t max, const uint8_t **p,
                            size_t *n)
{
    pb_callback_t cb;

    b->d = d;
    b->what = what;
    b->max = max;
    b->p = p;
    b->n = n;
    cb.funcs.decode = borrow_cb;
    cb.arg = b;
    return cb;
}

/* ===================================================== raft: shared */

static void conf_to_pb(const struct bs_raft_conf_state *cs,
                       basalt_raft_ConfState *pc)
{
    pc->voters_count = (pb_size_t)cs->n_voters;
    memcpy(pc->voters, cs->voters, cs->n_voters * sizeof(uint64_t));
    pc->voters_outgoing_count = (pb_size_t)cs->n_voters_outgoing;
    memcpy(pc->voters_outgoing, cs->voters_outgoing,
           cs->n_voters_outgoing * sizeof(uint64_t));
    pc->learners_count = (pb_size_t)cs->n_learners;
    memcpy(pc->learners, cs->learners, cs->n_learners * sizeof(uint64_t));
    pc->learners_next_count = (pb_size_t)cs->n_learners_next;
    memcpy(pc->learners_next, cs->learners_next,
           cs->n_learners_next * sizeof(uint64_t));
    pc->auto_leave = cs->auto_leave;
}

static bool conf_fits(const struct bs_raft_conf_state *cs)
{
    return cs->n_voters <= BS_RAFT_MAX_MEMBERS &&
           cs->n_voters_outgoing <= BS_RAFT_MAX_MEMBERS &&
           cs->n_learners <= BS_RAFT_MAX_MEMBERS &&
           cs->n_learners_next <= BS_RAFT_MAX_MEMBERS;
}

static bool conf_empty(const struct bs_raft_conf_state *cs)
{
    return cs->n_voters == 0 && cs->n_voters_outgoing == 0 &&
           cs->n_learners == 0 && cs->n_learners_next == 0 && !cs->auto_leave;
}

static bool meta_empty(const struct bs_raft_snapshot_meta *m)
{
    return m->index == 0 && m->term == 0 && conf_empty(&m->conf);
}

static void meta_to_pb(const struct bs_raft_snapshot_meta *m,
                       basalt_raft_SnapshotMeta *pm)
{
    pm->index = m->index;
    pm->term = m->term;
    pm->has_conf = !conf_empty(&m->conf);
    if (pm->has_conf)
        conf_to_pb(&m->conf, &pm->conf);
}

/* nanopb refuses sets longer than their arrays ("array overflow"); the
 * check here keeps that promise visible. */
static bool meta_from_pb(struct bs_rpc__dec *d,
                         const basalt_raft_SnapshotMeta *pm,
                         struct bs_raft_snapshot_meta *m, const char *what)
{
    const basalt_raft_ConfState *pc = &pm->conf;
    struct bs_raft_conf_state *cs = &m->conf;

    m->index = pm->index;
    m->term = pm->term;
    memset(cs, 0, sizeof *cs);
    if (!pm->has_conf)
        return true;
    if (pc->voters_count > BS_RAFT_MAX_MEMBERS ||
        pc->voters_outgoing_count > BS_RAFT_MAX_MEMBERS ||
        pc->learners_count > BS_RAFT_MAX_MEMBERS ||
        pc->learners_next_count > BS_RAFT_MAX_MEMBERS)
        return bs_rpc__dec_fail(
            d, BS_EPROTO, "%s: a configuration set is longer than %d members",
            what, BS_RAFT_MAX_MEMBERS);
    cs->n_voters = pc->voters_count;
    memcpy(cs->voters, pc->voters, pc->voters_count * sizeof(uint64_t));
    cs->n_voters_outgoing = pc->voters_outgoing_count;
    memcpy(cs->voters_outgoing, pc->voters_outgoing,
           pc->voters_outgoing_count * sizeof(uint64_t));
    cs->n_learners = pc->learners_count;
    memcpy(cs->learners, pc->learners, pc->learners_count * sizeof(uint64_t));
    cs->n_learners_next = pc->learners_next_count;
    memcpy(cs->learners_next, pc->learners_next,
           pc->learners_next_count * sizeof(uint64_t));
    cs->auto_leave = pc->auto_leave;
    return true;
}

/* Checks the domain of an envelope's kind and message type (both
 * directions use it): NULL if fine, else what is wrong. */
static const char *env_domain(uint32_t kind, uint32_t type, uint32_t flags)
{
    if (kind > BS_ENG_ENV_NODE_HEARTBEAT)
        return "kind is not an envelope kind";
    if (type >= BS_RAFT_MSG__COUNT)
        return "type is not a Raft message type";
    if (kind == BS_ENG_ENV_RAFT && type < BS_RAFT_MSG_PROP)
        return "type is a local Raft message, never sent";
    if (flags > UINT8_MAX)
        return "flags do not fit in 8 bits";
    return NULL;
}

/* ===================================================== raft: encoding */

struct ents_enc {
    struct enc *e;
    const struct bs_raft_entry *ents;
    size_t n;
    size_t env; /* index of the envelope, for messages */
};

static bool enc_entries_cb(pb_ostream_t *s, const pb_field_t *f,
                           void *const *arg)
{
    const struct ents_enc *ee = *arg;

    for (size_t i = 0; i < ee->n; i++) {
        const struct bs_raft_entry *x = &ee->ents[i];
        basalt_raft_Entry pe = basalt_raft_Entry_init_zero;
        struct bs_rpc__bytes data;

        if (x->type > BS_RAFT_ENTRY_CONF_CHANGE)
            return enc_fail(
                ee->e, "envelope %zu, entry %zu: type %u is not an entry type",
                ee->env, i, x->type);
        if (x->len > 0 && x->data == NULL)
            return enc_fail(ee->e,
                            "envelope %zu, entry %zu: %u bytes of data at NULL",
                            ee->env, i, x->len);
        pe.term = x->term;
        pe.index = x->index;
        pe.type = x->type;
        pe.data = bs_rpc__enc_bytes(&data, x->data, x->len);
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_raft_Entry_fields, &pe))
            return false;
    }
    return true;
}

/* Sources of one envelope's callbacks; lives while it is encoded. */
struct env_enc {
    struct ents_enc ents;
    struct bs_rpc__bytes snap_data;
};

static bool env_to_pb(struct enc *e, const struct bs_eng_envelope *env,
                      size_t idx, basalt_raft_Envelope *pm, struct env_enc *x)
{
    const struct bs_raft_msg *m = &env->msg;
    const char *bad = env_domain(env->kind, m->type, m->flags);

    if (bad != NULL)
        return enc_fail(e, "envelope %zu (kind %u, type %u): %s", idx,
                        env->kind, m->type, bad);
    if (!conf_fits(&m->snapshot.meta.conf))
        return enc_fail(
            e, "envelope %zu: a configuration set is longer than %d members",
            idx, BS_RAFT_MAX_MEMBERS);
    if ((m->n_entries > 0 && m->entries == NULL) ||
        (m->snapshot.len > 0 && m->snapshot.data == NULL))
        return enc_fail(e, "envelope %zu: entries or data at NULL", idx);
    pm->kind = env->kind;
    pm->shard_id = env->shard_id;
    pm->type = m->type;
    pm->to = m->to;
    pm->from = m->from;
    pm->term = m->term;
    pm->log_term = m->log_term;
    pm->index = m->index;
    pm->commit = m->commit;
    pm->reject = m->reject;
    pm->reject_hint = m->reject_hint;
    pm->ctx = m->ctx;
    pm->flags = m->flags;
    x->ents.e = e;
    x->ents.ents = m->entries;
    x->ents.n = m->n_entries;
    x->ents.env = idx;
    pm->entries.funcs.encode = enc_entries_cb;
    pm->entries.arg = &x->ents;
    pm->has_snapshot = !meta_empty(&m->snapshot.meta) || m->snapshot.len > 0;
    if (pm->has_snapshot)
        meta_to_pb(&m->snapshot.meta, &pm->snapshot);
    pm->snapshot_data =
        bs_rpc__enc_bytes(&x->snap_data, m->snapshot.data, m->snapshot.len);
    return true;
}

struct batch_enc {
    struct enc *e;
    const struct bs_eng_envelope *envs;
    size_t n;
};

static bool enc_envelopes_cb(pb_ostream_t *s, const pb_field_t *f,
                             void *const *arg)
{
    const struct batch_enc *be = *arg;

    for (size_t i = 0; i < be->n; i++) {
        basalt_raft_Envelope pm = basalt_raft_Envelope_init_zero;
        struct env_enc x;

        if (!env_to_pb(be->e, &be->envs[i], i, &pm, &x) ||
            !pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_raft_Envelope_fields, &pm))
            return false;
    }
    return true;
}

int bs_rpc_raft_batch_encode(const struct bs_rpc_batch_hdr *hdr,
                             const struct bs_eng_envelope *envs, size_t n,
                             uint8_t **out, size_t *len, char *errmsg)
{
    struct enc e = {0, errmsg};
    basalt_raft_RaftBatch pb = basalt_raft_RaftBatch_init_zero;
    struct batch_enc be = {&e, envs, n};

    pb.cluster_id = hdr->cluster_id;
    pb.from_node = hdr->from_node;
    pb.to_node = hdr->to_node;
    pb.envelopes.funcs.encode = enc_envelopes_cb;
    pb.envelopes.arg = &be;
    return encode(&e, basalt_raft_RaftBatch_fields, &pb, "RaftBatch", out, len);
}

/* ===================================================== raft: decoding */

struct ents_dec {
    struct bs_rpc__dec *d;
    struct bs_raft_msg *msg;
    size_t cap;
    size_t env;
};

static bool dec_entry_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    void *grown;
    struct ents_dec *ed = *arg;
    struct bs_rpc__dec *d = ed->d;
    struct bs_raft_msg *m = ed->msg;
    basalt_raft_Entry pe = basalt_raft_Entry_init_zero;
    struct borrow_dst bd;
    const uint8_t *data = NULL;
    size_t dlen = 0, max = d->lim->max_entry;
    struct bs_raft_entry *x;

    if (!bs_rpc__dec_in_buf(d, s, "Envelope.entries"))
        return false;
    if (d->n_entries >= d->lim->max_entries)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "more than %zu entries in one message",
                                d->lim->max_entries);
    grown = bs_rpc__grow(m->entries, &ed->cap, m->n_entries, sizeof *x);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM, "out of memory decoding entries");
    m->entries = grown;
    if (max > UINT32_MAX)
        max = UINT32_MAX;
    pe.data = borrow(&bd, d, "Entry.data", max, &data, &dlen);
    if (!pb_decode(s, basalt_raft_Entry_fields, &pe))
        return bs_rpc__dec_pb_fail(d, s, "Entry");
    if (pe.type > BS_RAFT_ENTRY_CONF_CHANGE)
        return bs_rpc__dec_fail(
            d, BS_EPROTO,
            "envelope %zu, entry %zu: type %u is not an entry type", ed->env,
            m->n_entries, pe.type);
    x = &m->entries[m->n_entries++];
    x->term = pe.term;
    x->index = pe.index;
    x->type = (uint8_t)pe.type;
    x->len = (uint32_t)dlen;
    x->data = (uint8_t *)(uintptr_t)data; /* borrowed, never written */
    d->n_entries++;
    return true;
}

/* Destinations of one envelope's callbacks; lives while it is decoded. */
struct env_dec {
    struct ents_dec ents;
    struct borrow_dst snap;
    const uint8_t *snap_data;
    size_t snap_len;
};

static void env_dec_setup(struct env_dec *x, struct bs_rpc__dec *d,
                          basalt_raft_Envelope *pm, struct bs_eng_envelope *env,
                          size_t idx)
{
    memset(x, 0, sizeof *x);
    x->ents.d = d;
    x->ents.msg = &env->msg;
    x->ents.env = idx;
    pm->entries.funcs.decode = dec_entry_cb;
    pm->entries.arg = &x->ents;
    pm->snapshot_data =
        borrow(&x->snap, d, "Envelope.snapshot_data", d->lim->max_message,
               &x->snap_data, &x->snap_len);
}

/* The scalar fields, once nanopb decoded the envelope. */
static bool env_dec_finish(struct env_dec *x, struct bs_rpc__dec *d,
                           const basalt_raft_Envelope *pm,
                           struct bs_eng_envelope *env, size_t idx)
{
    struct bs_raft_msg *m = &env->msg;
    const char *bad = env_domain(pm->kind, pm->type, pm->flags);
    char what[64];

    if (bad != NULL)
        return bs_rpc__dec_fail(d, BS_EPROTO,
                                "envelope %zu (kind %u, type %u): %s", idx,
                                pm->kind, pm->type, bad);
    env->kind = (uint8_t)pm->kind;
    env->shard_id = pm->shard_id;
    m->type = (uint8_t)pm->type;
    m->flags = (uint8_t)pm->flags;
    m->reject = pm->reject;
    m->to = pm->to;
    m->from = pm->from;
    m->term = pm->term;
    m->log_term = pm->log_term;
    m->index = pm->index;
    m->commit = pm->commit;
    m->reject_hint = pm->reject_hint;
    m->ctx = pm->ctx;
    snprintf(what, sizeof what, "envelope %zu", idx);
    if (pm->has_snapshot &&
        !meta_from_pb(d, &pm->snapshot, &m->snapshot.meta, what))
        return false;
    m->snapshot.data = (uint8_t *)(uintptr_t)x->snap_data; /* borrowed */
    m->snapshot.len = x->snap_len;
    return true;
}

struct batch_dec {
    struct bs_rpc__dec *d;
    struct bs_rpc_raft_batch *b;
    size_t cap;
};

static bool dec_envelope_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    void *grown;
    struct batch_dec *bd = *arg;
    struct bs_rpc__dec *d = bd->d;
    struct bs_rpc_raft_batch *b = bd->b;
    basalt_raft_Envelope pm = basalt_raft_Envelope_init_zero;
    struct bs_eng_envelope *env;
    struct env_dec x;
    size_t idx = b->n_envs;

    if (!bs_rpc__dec_in_buf(d, s, "RaftBatch.envelopes"))
        return false;
    if (b->n_envs >= d->lim->max_envelopes)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "RaftBatch has more than %zu envelopes",
                                d->lim->max_envelopes);
    grown = bs_rpc__grow(b->envs, &bd->cap, b->n_envs, sizeof *env);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM,
                                "out of memory decoding envelopes");
    b->envs = grown;
    /* Counted at once, so that an error frees its entries too. */
    env = &b->envs[b->n_envs++];
    memset(env, 0, sizeof *env);
    env_dec_setup(&x, d, &pm, env, idx);
    if (!pb_decode(s, basalt_raft_Envelope_fields, &pm))
        return bs_rpc__dec_pb_fail(d, s, "Envelope");
    return env_dec_finish(&x, d, &pm, env, idx);
}

int bs_rpc_raft_batch_decode(const uint8_t *buf, size_t len,
                             const struct bs_rpc_limits *lim,
                             struct bs_rpc_raft_batch *b, char *errmsg)
{
    struct bs_rpc__dec d;
    basalt_raft_RaftBatch pb = basalt_raft_RaftBatch_init_zero;
    struct batch_dec bd;
    pb_istream_t s;
    bool ok;
    int rc;

    memset(b, 0, sizeof *b);
    bs_rpc__dec_init(&d, lim, buf, len, errmsg);
    if (!bs_rpc__dec_check_size(&d, len, "RaftBatch"))
        return d.err;
    bd.d = &d;
    bd.b = b;
    bd.cap = 0;
    pb.envelopes.funcs.decode = dec_envelope_cb;
    pb.envelopes.arg = &bd;
    s = pb_istream_from_buffer(buf, len);
    ok = pb_decode(&s, basalt_raft_RaftBatch_fields, &pb);
    rc = dec_result(&d, &s, ok, "RaftBatch");
    if (rc != 0) {
        bs_rpc_raft_batch_free(b);
        return rc;
    }
    b->hdr.cluster_id = pb.cluster_id;
    b->hdr.from_node = pb.from_node;
    b->hdr.to_node = pb.to_node;
    return 0;
}

void bs_rpc_raft_batch_free(struct bs_rpc_raft_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n_envs; i++)
        free(b->envs[i].msg.entries);
    free(b->envs);
    memset(b, 0, sizeof *b);
}

/* ==================================================== snapshot chunks */

/* NULL if name[len] is a plain file name, else what is wrong. */
static const char *file_name_bad(const char *name, size_t len)
{
    if (len > MAX_FILE_NAME)
        return "longer than 255 bytes";
    if (len > 0 && memchr(name, '/', len) != NULL)
        return "has a '/'";
    if (len > 0 && memchr(name, '\0', len) != NULL)
        return "has a NUL byte";
    if ((len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.'))
        return "is \".\" or \"..\"";
    return NULL;
}

int bs_rpc_snap_chunk_encode(const struct bs_rpc_snap_chunk *c, uint8_t **out,
                             size_t *len, char *errmsg)
{
    struct enc e = {0, errmsg};
    basalt_raft_SnapshotChunk pc = basalt_raft_SnapshotChunk_init_zero;
    struct bs_rpc__bytes file, data;
    struct env_enc x;
    const char *bad = file_name_bad(c->file, c->file_len);

    *out = NULL;
    *len = 0;
    if (bad != NULL || (c->file_len == 0 && c->len > 0)) {
        bs_rpc__set_msg(errmsg, "SnapshotChunk: file name %s",
                        bad ? bad : "is empty in a chunk with data");
        return BS_EINVAL;
    }
    if (!conf_fits(&c->meta.conf)) {
        bs_rpc__set_msg(
            errmsg,
            "SnapshotChunk: a configuration set is longer than %d members",
            BS_RAFT_MAX_MEMBERS);
        return BS_EINVAL;
    }
    pc.cluster_id = c->cluster_id;
    pc.from_node = c->from_node;
    pc.shard_id = c->shard_id;
    pc.has_meta = !meta_empty(&c->meta);
    if (pc.has_meta)
        meta_to_pb(&c->meta, &pc.meta);
    pc.has_msg = c->has_msg;
    if (c->has_msg && !env_to_pb(&e, &c->msg, 0, &pc.msg, &x))
        return e.err;
    pc.file = bs_rpc__enc_bytes(&file, c->file, c->file_len);
    pc.offset = c->offset;
    pc.data = bs_rpc__enc_bytes(&data, c->data, c->len);
    pc.last = c->last;
    return encode(&e, basalt_raft_SnapshotChunk_fields, &pc, "SnapshotChunk",
                  out, len);
}

int bs_rpc_snap_chunk_decode(const uint8_t *buf, size_t len,
                             const struct bs_rpc_limits *lim,
                             struct bs_rpc_snap_chunk *c, char *errmsg)
{
    struct bs_rpc__dec d;
    basalt_raft_SnapshotChunk pc = basalt_raft_SnapshotChunk_init_zero;
    struct borrow_dst bf, bd;
    struct env_dec x;
    const uint8_t *file = NULL;
    const char *bad;
    pb_istream_t s;
    bool ok;
    int rc;

    memset(c, 0, sizeof *c);
    bs_rpc__dec_init(&d, lim, buf, len, errmsg);
    if (!bs_rpc__dec_check_size(&d, len, "SnapshotChunk"))
        return d.err;
    env_dec_setup(&x, &d, &pc.msg, &c->msg, 0);
    pc.file = borrow(&bf, &d, "SnapshotChunk.file", MAX_FILE_NAME, &file,
                     &c->file_len);
    pc.data = borrow(&bd, &d, "SnapshotChunk.data", d.lim->max_message,
                     &c->data, &c->len);
    s = pb_istream_from_buffer(buf, len);
    ok = pb_decode(&s, basalt_raft_SnapshotChunk_fields, &pc);
    if (ok && pc.has_msg)
        ok = env_dec_finish(&x, &d, &pc.msg, &c->msg, 0);
    if (ok && pc.has_meta)
        ok = meta_from_pb(&d, &pc.meta, &c->meta, "SnapshotChunk.meta");
    c->file = (const char *)file;
    if (ok) {
        bad = file_name_bad(c->file, c->file_len);
        if (bad == NULL && c->file_len == 0 && c->len > 0)
            bad = "is empty in a chunk with data";
        if (bad != NULL)
            ok = bs_rpc__dec_fail(&d, BS_EPROTO, "SnapshotChunk: file name %s",
                                  bad);
    }
    rc = dec_result(&d, &s, ok, "SnapshotChunk");
    if (rc != 0) {
        bs_rpc_snap_chunk_free(c);
        return rc;
    }
    c->cluster_id = pc.cluster_id;
    c->from_node = pc.from_node;
    c->shard_id = pc.shard_id;
    c->has_msg = pc.has_msg;
    c->offset = pc.offset;
    c->last = pc.last;
    return 0;
}

void bs_rpc_snap_chunk_free(struct bs_rpc_snap_chunk *c)
{
    if (c == NULL)
        return;
    free(c->msg.msg.entries);
    memset(c, 0, sizeof *c);
}

/* ================================================== etcd: requests */

const char *bs_rpc_kv_method(uint8_t type)
{
    switch (type) {
    case BS_SHARD_CMD_PUT:
        return "/etcdserverpb.KV/Put";
    case BS_SHARD_CMD_DELETE_RANGE:
        return "/etcdserverpb.KV/DeleteRange";
    case BS_SHARD_CMD_RANGE:
        return "/etcdserverpb.KV/Range";
    case BS_SHARD_CMD_TXN:
        return "/etcdserverpb.KV/Txn";
    default:
        return NULL;
    }
}

/* --------------------------------------------------------- encoding */

struct req_enc {
    struct bs_rpc__bytes a, b; /* key and value or range_end */
};

static void put_to_pb(const struct bs_shard_put_req *r,
                      etcdserverpb_PutRequest *pm, struct req_enc *x)
{
    pm->key = bs_rpc__enc_bytes(&x->a, r->key, r->key_len);
    pm->value = bs_rpc__enc_bytes(&x->b, r->value, r->value_len);
    pm->lease = r->lease;
    pm->prev_kv = r->prev_kv;
    pm->ignore_value = r->ignore_value;
    pm->ignore_lease = r->ignore_lease;
}

static void del_to_pb(const struct bs_shard_delete_req *r,
                      etcdserverpb_DeleteRangeRequest *pm, struct req_enc *x)
{
    pm->key = bs_rpc__enc_bytes(&x->a, r->key, r->key_len);
    pm->range_end = bs_rpc__enc_bytes(&x->b, r->range_end, r->range_end_len);
    pm->prev_kv = r->prev_kv;
}

static bool range_to_pb(struct enc *e, const struct bs_shard_range_req *r,
                        etcdserverpb_RangeRequest *pm, struct req_enc *x)
{
    if (r->sort_order > BS_SHARD_SORT_DESCEND ||
        r->sort_target > BS_SHARD_SORT_VALUE)
        return enc_fail(
            e, "RangeRequest: sort order %u / target %u out of etcd's enums",
            r->sort_order, r->sort_target);
    pm->key = bs_rpc__enc_bytes(&x->a, r->key, r->key_len);
    pm->range_end = bs_rpc__enc_bytes(&x->b, r->range_end, r->range_end_len);
    pm->limit = r->limit;
    pm->revision = r->revision;
    pm->sort_order = (etcdserverpb_RangeRequest_SortOrder)r->sort_order;
    pm->sort_target = (etcdserverpb_RangeRequest_SortTarget)r->sort_target;
    pm->serializable = r->serializable;
    pm->keys_only = r->keys_only;
    pm->count_only = r->count_only;
    pm->min_mod_revision = r->min_mod_revision;
    pm->max_mod_revision = r->max_mod_revision;
    pm->min_create_revision = r->min_create_revision;
    pm->max_create_revision = r->max_create_revision;
    return true;
}

/* The target_union member of a compare target. */
static pb_size_t cmp_member(uint8_t target)
{
    switch (target) {
    case BS_SHARD_CMP_VERSION:
        return etcdserverpb_Compare_version_tag;
    case BS_SHARD_CMP_CREATE:
        return etcdserverpb_Compare_create_revision_tag;
    case BS_SHARD_CMP_MOD:
        return etcdserverpb_Compare_mod_revision_tag;
    case BS_SHARD_CMP_VALUE:
        return etcdserverpb_Compare_value_tag;
    case BS_SHARD_CMP_LEASE:
        return etcdserverpb_Compare_lease_tag;
    default:
        return 0;
    }
}

/* Called for each of the five target_union members: writes the one that
 * matches the target, even when it is 0 or empty (a oneof has presence,
 * and etcd's client always sets it). */
static bool enc_cmp_member_cb(pb_ostream_t *s, const pb_field_t *f,
                              void *const *arg)
{
    const struct bs_shard_compare *c = *arg;

    if (f->tag != cmp_member(c->target))
        return true;
    if (!pb_encode_tag_for_field(s, f))
        return false;
    if (f->tag == etcdserverpb_Compare_value_tag)
        return pb_encode_string(s, c->value, c->value_len);
    return pb_encode_varint(s, (uint64_t)c->number);
}

struct cmps_enc {
    struct enc *e;
    const struct bs_shard_compare *cmps;
    size_t n;
};

static bool enc_compares_cb(pb_ostream_t *s, const pb_field_t *f,
                            void *const *arg)
{
    const struct cmps_enc *ce = *arg;

    for (size_t i = 0; i < ce->n; i++) {
        const struct bs_shard_compare *c = &ce->cmps[i];
        etcdserverpb_Compare pc = etcdserverpb_Compare_init_zero;
        struct bs_rpc__bytes key, end;
        pb_callback_t member;

        if (cmp_member(c->target) == 0 || c->result > BS_SHARD_CMP_NOT_EQUAL)
            return enc_fail(
                ce->e, "compare %zu: target %u / result %u out of etcd's enums",
                i, c->target, c->result);
        pc.result = (etcdserverpb_Compare_CompareResult)c->result;
        pc.target = (etcdserverpb_Compare_CompareTarget)c->target;
        pc.key = bs_rpc__enc_bytes(&key, c->key, c->key_len);
        pc.range_end = bs_rpc__enc_bytes(&end, c->range_end, c->range_end_len);
        member.funcs.encode = enc_cmp_member_cb;
        member.arg = (void *)(uintptr_t)c; /* read only */
        pc.version = member;
        pc.create_revision = member;
        pc.mod_revision = member;
        pc.value = member;
        pc.lease = member;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, etcdserverpb_Compare_fields, &pc))
            return false;
    }
    return true;
}

struct ops_enc {
    struct enc *e;
    const struct bs_shard_op *ops;
    size_t n;
    const char *what; /* "success" or "failure" */
};

static bool enc_ops_cb(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct ops_enc *oe = *arg;

    for (size_t i = 0; i < oe->n; i++) {
        const struct bs_shard_op *op = &oe->ops[i];
        etcdserverpb_RequestOp po = etcdserverpb_RequestOp_init_zero;
        struct req_enc x;

        switch (op->type) {
        case BS_SHARD_CMD_PUT:
            po.which_request = etcdserverpb_RequestOp_request_put_tag;
            put_to_pb(&op->u.put, &po.request.request_put, &x);
            break;
        case BS_SHARD_CMD_DELETE_RANGE:
            po.which_request = etcdserverpb_RequestOp_request_delete_range_tag;
            del_to_pb(&op->u.del, &po.request.request_delete_range, &x);
            break;
        case BS_SHARD_CMD_RANGE:
            po.which_request = etcdserverpb_RequestOp_request_range_tag;
            if (!range_to_pb(oe->e, &op->u.range, &po.request.request_range,
                             &x))
                return false;
            break;
        default:
            return enc_fail(
                oe->e,
                "Txn %s op %zu: type %u is not a Put, DeleteRange or Range",
                oe->what, i, op->type);
        }
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, etcdserverpb_RequestOp_fields, &po))
            return false;
    }
    return true;
}

int bs_rpc_kv_req_encode(const struct bs_shard_cmd *cmd, uint8_t **out,
                         size_t *len, char *errmsg)
{
    struct enc e = {0, errmsg};
    struct req_enc x;

    *out = NULL;
    *len = 0;
    switch (cmd->type) {
    case BS_SHARD_CMD_PUT: {
        etcdserverpb_PutRequest pm = etcdserverpb_PutRequest_init_zero;

        put_to_pb(&cmd->u.put, &pm, &x);
        return encode(&e, etcdserverpb_PutRequest_fields, &pm, "PutRequest",
                      out, len);
    }
    case BS_SHARD_CMD_DELETE_RANGE: {
        etcdserverpb_DeleteRangeRequest pm =
            etcdserverpb_DeleteRangeRequest_init_zero;

        del_to_pb(&cmd->u.del, &pm, &x);
        return encode(&e, etcdserverpb_DeleteRangeRequest_fields, &pm,
                      "DeleteRangeRequest", out, len);
    }
    case BS_SHARD_CMD_RANGE: {
        etcdserverpb_RangeRequest pm = etcdserverpb_RangeRequest_init_zero;

        if (!range_to_pb(&e, &cmd->u.range, &pm, &x))
            return e.err;
        return encode(&e, etcdserverpb_RangeRequest_fields, &pm, "RangeRequest",
                      out, len);
    }
    case BS_SHARD_CMD_TXN: {
        const struct bs_shard_txn_req *t = &cmd->u.txn;
        etcdserverpb_TxnRequest pm = etcdserverpb_TxnRequest_init_zero;
        struct cmps_enc ce = {&e, t->compares, t->n_compares};
        struct ops_enc se = {&e, t->success, t->n_success, "success"};
        struct ops_enc fe = {&e, t->failure, t->n_failure, "failure"};

        pm.compare.funcs.encode = enc_compares_cb;
        pm.compare.arg = &ce;
        pm.success.funcs.encode = enc_ops_cb;
        pm.success.arg = &se;
        pm.failure.funcs.encode = enc_ops_cb;
        pm.failure.arg = &fe;
        return encode(&e, etcdserverpb_TxnRequest_fields, &pm, "TxnRequest",
                      out, len);
    }
    default:
        bs_rpc__set_msg(errmsg, "command type %u has no etcd request",
                        cmd->type);
        return BS_EINVAL;
    }
}

/* --------------------------------------------------------- decoding */

struct req_dec {
    struct borrow_dst a, b;
};

static void put_dec_setup(struct bs_rpc__dec *d, etcdserverpb_PutRequest *pm,
                          struct bs_shard_put_req *r, struct req_dec *x)
{
    pm->key = borrow(&x->a, d, "PutRequest.key", d->lim->max_key, &r->key,
                     &r->key_len);
    pm->value = borrow(&x->b, d, "PutRequest.value", d->lim->max_value,
                       &r->value, &r->value_len);
}

static void put_from_pb(const etcdserverpb_PutRequest *pm,
                        struct bs_shard_put_req *r)
{
    r->lease = pm->lease;
    r->prev_kv = pm->prev_kv;
    r->ignore_value = pm->ignore_value;
    r->ignore_lease = pm->ignore_lease;
}

static void del_dec_setup(struct bs_rpc__dec *d,
                          etcdserverpb_DeleteRangeRequest *pm,
                          struct bs_shard_delete_req *r, struct req_dec *x)
{
    pm->key = borrow(&x->a, d, "DeleteRangeRequest.key", d->lim->max_key,
                     &r->key, &r->key_len);
    pm->range_end = borrow(&x->b, d, "DeleteRangeRequest.range_end",
                           d->lim->max_key, &r->range_end, &r->range_end_len);
}

static void range_dec_setup(struct bs_rpc__dec *d,
                            etcdserverpb_RangeRequest *pm,
                            struct bs_shard_range_req *r, struct req_dec *x)
{
    pm->key = borrow(&x->a, d, "RangeRequest.key", d->lim->max_key, &r->key,
                     &r->key_len);
    pm->range_end = borrow(&x->b, d, "RangeRequest.range_end", d->lim->max_key,
                           &r->range_end, &r->range_end_len);
}

/* etcd answers an unknown sort option "invalid sort option"; so do we. */
static bool range_from_pb(struct bs_rpc__dec *d,
                          const etcdserverpb_RangeRequest *pm,
                          struct bs_shard_range_req *r)
{
    if ((uint32_t)pm->sort_order > BS_SHARD_SORT_DESCEND)
        return bs_rpc__dec_fail(d, BS_EPROTO,
                                "RangeRequest.sort_order %u is not a SortOrder",
                                (unsigned)pm->sort_order);
    if ((uint32_t)pm->sort_target > BS_SHARD_SORT_VALUE)
        return bs_rpc__dec_fail(
            d, BS_EPROTO, "RangeRequest.sort_target %u is not a SortTarget",
            (unsigned)pm->sort_target);
    r->limit = pm->limit;
    r->revision = pm->revision;
    r->sort_order = (uint8_t)pm->sort_order;
    r->sort_target = (uint8_t)pm->sort_target;
    r->serializable = pm->serializable;
    r->keys_only = pm->keys_only;
    r->count_only = pm->count_only;
    r->min_mod_revision = pm->min_mod_revision;
    r->max_mod_revision = pm->max_mod_revision;
    r->min_create_revision = pm->min_create_revision;
    r->max_create_revision = pm->max_create_revision;
    return true;
}

struct cmp_dec {
    struct bs_rpc__dec *d;
    struct bs_shard_compare *c;
    pb_size_t member; /* tag of the target_union member seen last */
};

static bool dec_cmp_number_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct cmp_dec *cd = *arg;
    uint64_t v;

    if (!pb_decode_varint(s, &v))
        return bs_rpc__dec_pb_fail(cd->d, s, "Compare.target_union");
    cd->c->number = (int64_t)v;
    cd->c->value = NULL;
    cd->c->value_len = 0;
    cd->member = f->tag;
    return true;
}

static bool dec_cmp_value_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct cmp_dec *cd = *arg;

    if (!bs_rpc__dec_span(cd->d, s, "Compare.value", cd->d->lim->max_value,
                          &cd->c->value, &cd->c->value_len))
        return false;
    cd->c->number = 0;
    cd->member = f->tag;
    return true;
}

static const char *const cmp_target_names[] = {"VERSION", "CREATE", "MOD",
                                               "VALUE", "LEASE"};

struct txn_dec {
    struct bs_rpc__dec *d;
    struct bs_shard_txn_req *t;
    size_t cap;
};

static bool dec_compare_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    void *grown;
    struct txn_dec *td = *arg;
    struct bs_rpc__dec *d = td->d;
    struct bs_shard_txn_req *t = td->t;
    etcdserverpb_Compare pc = etcdserverpb_Compare_init_zero;
    struct bs_shard_compare *c;
    struct cmp_dec cd;
    struct borrow_dst bk, be;
    pb_callback_t number;

    if (!bs_rpc__dec_in_buf(d, s, "TxnRequest.compare"))
        return false;
    if (t->n_compares >= d->lim->max_txn_ops)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "TxnRequest has more than %zu compares",
                                d->lim->max_txn_ops);
    grown = bs_rpc__grow(t->compares, &td->cap, t->n_compares, sizeof *c);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM,
                                "out of memory decoding compares");
    t->compares = grown;
    c = &t->compares[t->n_compares];
    memset(c, 0, sizeof *c);
    cd.d = d;
    cd.c = c;
    cd.member = 0;
    pc.key =
        borrow(&bk, d, "Compare.key", d->lim->max_key, &c->key, &c->key_len);
    pc.range_end = borrow(&be, d, "Compare.range_end", d->lim->max_key,
                          &c->range_end, &c->range_end_len);
    number.funcs.decode = dec_cmp_number_cb;
    number.arg = &cd;
    pc.version = number;
    pc.create_revision = number;
    pc.mod_revision = number;
    pc.lease = number;
    pc.value.funcs.decode = dec_cmp_value_cb;
    pc.value.arg = &cd;
    if (!pb_decode(s, etcdserverpb_Compare_fields, &pc))
        return bs_rpc__dec_pb_fail(d, s, "Compare");
    if ((uint32_t)pc.result > BS_SHARD_CMP_NOT_EQUAL)
        return bs_rpc__dec_fail(d, BS_EPROTO,
                                "Compare.result %u is not a CompareResult",
                                (unsigned)pc.result);
    if ((uint32_t)pc.target > BS_SHARD_CMP_LEASE)
        return bs_rpc__dec_fail(d, BS_EPROTO,
                                "Compare.target %u is not a CompareTarget",
                                (unsigned)pc.target);
    c->target = (uint8_t)pc.target;
    c->result = (uint8_t)pc.result;
    /* No member at all compares against 0 (or an empty value). */
    if (cd.member != 0 && cd.member != cmp_member(c->target))
        return bs_rpc__dec_fail(
            d, BS_EPROTO,
            "Compare with target %s carries target_union field %u, not %u",
            cmp_target_names[c->target], (unsigned)cd.member,
            (unsigned)cmp_member(c->target));
    t->n_compares++;
    return true;
}

/* One RequestOp being decoded into op. */
struct reqop_dec {
    struct bs_rpc__dec *d;
    struct bs_shard_op *op;
    struct req_dec x;
};

/* Runs before the member of RequestOp's oneof is decoded (nanopb's
 * submsg_callback): points the member's byte fields at op. */
static bool dec_reqop_member_cb(pb_istream_t *s, const pb_field_t *f,
                                void **arg)
{
    struct reqop_dec *rd = *arg;
    struct bs_shard_op *op = rd->op;
    uint8_t type;

    switch (f->tag) {
    case etcdserverpb_RequestOp_request_put_tag:
        type = BS_SHARD_CMD_PUT;
        break;
    case etcdserverpb_RequestOp_request_delete_range_tag:
        type = BS_SHARD_CMD_DELETE_RANGE;
        break;
    case etcdserverpb_RequestOp_request_range_tag:
        type = BS_SHARD_CMD_RANGE;
        break;
    case etcdserverpb_RequestOp_request_txn_tag:
        return bs_rpc__dec_fail(rd->d, BS_ENOTIMPL,
                                "a Txn nested in a Txn is not supported");
    default:
        return bs_rpc__dec_fail(rd->d, BS_EPROTO, "RequestOp member %u",
                                (unsigned)f->tag);
    }
    /* Another member replaces the first (a oneof); the same one merges. */
    if (op->type != type) {
        memset(op, 0, sizeof *op);
        op->type = type;
    }
    switch (type) {
    case BS_SHARD_CMD_PUT:
        put_dec_setup(rd->d, f->pData, &op->u.put, &rd->x);
        break;
    case BS_SHARD_CMD_DELETE_RANGE:
        del_dec_setup(rd->d, f->pData, &op->u.del, &rd->x);
        break;
    default:
        range_dec_setup(rd->d, f->pData, &op->u.range, &rd->x);
        break;
    }
    return true;
}

struct ops_dec {
    struct bs_rpc__dec *d;
    struct bs_shard_op **ops;
    size_t *n;
    size_t cap;
    const char *what; /* "TxnRequest.success" */
};

static bool dec_op_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    void *grown;
    struct ops_dec *od = *arg;
    struct bs_rpc__dec *d = od->d;
    etcdserverpb_RequestOp po = etcdserverpb_RequestOp_init_zero;
    struct reqop_dec rd;
    struct bs_shard_op *op;

    if (!bs_rpc__dec_in_buf(d, s, od->what))
        return false;
    if (*od->n >= d->lim->max_txn_ops)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "%s has more than %zu operations", od->what,
                                d->lim->max_txn_ops);
    grown = bs_rpc__grow(*od->ops, &od->cap, *od->n, sizeof *op);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM, "out of memory decoding %s",
                                od->what);
    *od->ops = grown;
    op = &(*od->ops)[*od->n];
    memset(op, 0, sizeof *op);
    memset(&rd, 0, sizeof rd);
    rd.d = d;
    rd.op = op;
    po.cb_request.funcs.decode = dec_reqop_member_cb;
    po.cb_request.arg = &rd;
    if (!pb_decode(s, etcdserverpb_RequestOp_fields, &po))
        return bs_rpc__dec_pb_fail(d, s, "RequestOp");
    switch (po.which_request) {
    case etcdserverpb_RequestOp_request_put_tag:
        put_from_pb(&po.request.request_put, &op->u.put);
        break;
    case etcdserverpb_RequestOp_request_delete_range_tag:
        op->u.del.prev_kv = po.request.request_delete_range.prev_kv;
        break;
    case etcdserverpb_RequestOp_request_range_tag:
        if (!range_from_pb(d, &po.request.request_range, &op->u.range))
            return false;
        break;
    default:
        return bs_rpc__dec_fail(d, BS_EPROTO,
                                "%s[%zu]: RequestOp has no request", od->what,
                                *od->n);
    }
    (*od->n)++;
    return true;
}

int bs_rpc_kv_req_decode(uint8_t type, const uint8_t *buf, size_t len,
                         const struct bs_rpc_limits *lim,
                         struct bs_shard_cmd *cmd, char *errmsg)
{
    struct bs_rpc__dec d;
    struct req_dec x;
    pb_istream_t s;
    const char *what;
    bool ok;
    int rc;

    memset(cmd, 0, sizeof *cmd);
    bs_rpc__dec_init(&d, lim, buf, len, errmsg);
    what = type == BS_SHARD_CMD_PUT            ? "PutRequest"
           : type == BS_SHARD_CMD_DELETE_RANGE ? "DeleteRangeRequest"
           : type == BS_SHARD_CMD_RANGE        ? "RangeRequest"
           : type == BS_SHARD_CMD_TXN          ? "TxnRequest"
                                               : NULL;
    if (what == NULL) {
        bs_rpc__set_msg(errmsg, "command type %u has no etcd request", type);
        return BS_EINVAL;
    }
    if (!bs_rpc__dec_check_size(&d, len, what))
        return d.err;
    cmd->type = type;
    s = pb_istream_from_buffer(buf, len);
    switch (type) {
    case BS_SHARD_CMD_PUT: {
        etcdserverpb_PutRequest pm = etcdserverpb_PutRequest_init_zero;

        put_dec_setup(&d, &pm, &cmd->u.put, &x);
        ok = pb_decode(&s, etcdserverpb_PutRequest_fields, &pm);
        if (ok)
            put_from_pb(&pm, &cmd->u.put);
        break;
    }
    case BS_SHARD_CMD_DELETE_RANGE: {
        etcdserverpb_DeleteRangeRequest pm =
            etcdserverpb_DeleteRangeRequest_init_zero;

        del_dec_setup(&d, &pm, &cmd->u.del, &x);
        ok = pb_decode(&s, etcdserverpb_DeleteRangeRequest_fields, &pm);
        if (ok)
            cmd->u.del.prev_kv = pm.prev_kv;
        break;
    }
    case BS_SHARD_CMD_RANGE: {
        etcdserverpb_RangeRequest pm = etcdserverpb_RangeRequest_init_zero;

        range_dec_setup(&d, &pm, &cmd->u.range, &x);
        ok = pb_decode(&s, etcdserverpb_RangeRequest_fields, &pm) &&
             range_from_pb(&d, &pm, &cmd->u.range);
        break;
    }
    default: {
        struct bs_shard_txn_req *t = &cmd->u.txn;
        etcdserverpb_TxnRequest pm = etcdserverpb_TxnRequest_init_zero;
        struct txn_dec cd = {&d, t, 0};
        struct ops_dec sd = {&d, &t->success, &t->n_success, 0,
                             "TxnRequest.success"};
        struct ops_dec fd = {&d, &t->failure, &t->n_failure, 0,
                             "TxnRequest.failure"};

        pm.compare.funcs.decode = dec_compare_cb;
        pm.compare.arg = &cd;
        pm.success.funcs.decode = dec_op_cb;
        pm.success.arg = &sd;
        pm.failure.funcs.decode = dec_op_cb;
        pm.failure.arg = &fd;
        ok = pb_decode(&s, etcdserverpb_TxnRequest_fields, &pm);
        break;
    }
    }
    rc = dec_result(&d, &s, ok, what);
    if (rc != 0)
        bs_rpc_kv_req_free(cmd);
    return rc;
}

void bs_rpc_kv_req_free(struct bs_shard_cmd *cmd)
{
    if (cmd == NULL)
        return;
    if (cmd->type == BS_SHARD_CMD_TXN) {
        free(cmd->u.txn.compares);
        free(cmd->u.txn.success);
        free(cmd->u.txn.failure);
    }
    memset(cmd, 0, sizeof *cmd);
}

/* ================================================= etcd: responses */

/* --------------------------------------------------------- encoding */

struct kv_enc {
    struct bs_rpc__bytes key, value;
};

static void kv_to_pb(const struct bs_shard_kv *kv, mvccpb_KeyValue *pk,
                     struct kv_enc *x)
{
    pk->key = bs_rpc__enc_bytes(&x->key, kv->key, kv->key_len);
    pk->create_revision = kv->create_revision;
    pk->mod_revision = kv->mod_revision;
    pk->version = kv->version;
    pk->value = bs_rpc__enc_bytes(&x->value, kv->value, kv->value_len);
    pk->lease = kv->lease;
}

struct kvs_enc {
    const struct bs_shard_kv *kvs;
    size_t n;
};

static bool enc_kvs_cb(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct kvs_enc *ke = *arg;

    for (size_t i = 0; i < ke->n; i++) {
        mvccpb_KeyValue pk = mvccpb_KeyValue_init_zero;
        struct kv_enc x;

        kv_to_pb(&ke->kvs[i], &pk, &x);
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, mvccpb_KeyValue_fields, &pk))
            return false;
    }
    return true;
}

/* Sources of one op response's callbacks. */
struct opresp_enc {
    struct kvs_enc kvs;
    struct kv_enc prev;
};

static pb_callback_t enc_kvs(struct opresp_enc *x,
                             const struct bs_shard_op_resp *op)
{
    pb_callback_t cb;

    x->kvs.kvs = op->kvs;
    x->kvs.n = op->n_kvs;
    cb.funcs.encode = enc_kvs_cb;
    cb.arg = &x->kvs;
    return cb;
}

static void range_resp_to_pb(const etcdserverpb_ResponseHeader *h,
                             const struct bs_shard_op_resp *op,
                             etcdserverpb_RangeResponse *pm,
                             struct opresp_enc *x)
{
    pm->has_header = true;
    pm->header = *h;
    pm->kvs = enc_kvs(x, op);
    pm->more = op->more;
    pm->count = op->count;
}

static void put_resp_to_pb(const etcdserverpb_ResponseHeader *h,
                           const struct bs_shard_op_resp *op,
                           etcdserverpb_PutResponse *pm, struct opresp_enc *x)
{
    pm->has_header = true;
    pm->header = *h;
    pm->has_prev_kv = op->n_kvs > 0;
    if (pm->has_prev_kv)
        kv_to_pb(&op->kvs[0], &pm->prev_kv, &x->prev);
}

static void del_resp_to_pb(const etcdserverpb_ResponseHeader *h,
                           const struct bs_shard_op_resp *op,
                           etcdserverpb_DeleteRangeResponse *pm,
                           struct opresp_enc *x)
{
    pm->has_header = true;
    pm->header = *h;
    pm->deleted = op->deleted;
    pm->prev_kvs = enc_kvs(x, op);
}

struct resps_enc {
    struct enc *e;
    const etcdserverpb_ResponseHeader *h;
    const struct bs_shard_op_resp *ops;
    size_t n;
};

static bool enc_respops_cb(pb_ostream_t *s, const pb_field_t *f,
                           void *const *arg)
{
    const struct resps_enc *re = *arg;

    for (size_t i = 0; i < re->n; i++) {
        const struct bs_shard_op_resp *op = &re->ops[i];
        etcdserverpb_ResponseOp pr = etcdserverpb_ResponseOp_init_zero;
        struct opresp_enc x;

        switch (op->type) {
        case BS_SHARD_CMD_PUT:
            pr.which_response = etcdserverpb_ResponseOp_response_put_tag;
            put_resp_to_pb(re->h, op, &pr.response.response_put, &x);
            break;
        case BS_SHARD_CMD_DELETE_RANGE:
            pr.which_response =
                etcdserverpb_ResponseOp_response_delete_range_tag;
            del_resp_to_pb(re->h, op, &pr.response.response_delete_range, &x);
            break;
        case BS_SHARD_CMD_RANGE:
            pr.which_response = etcdserverpb_ResponseOp_response_range_tag;
            range_resp_to_pb(re->h, op, &pr.response.response_range, &x);
            break;
        default:
            return enc_fail(re->e,
                            "Txn response op %zu: type %u is not a Put, "
                            "DeleteRange or Range",
                            i, op->type);
        }
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, etcdserverpb_ResponseOp_fields, &pr))
            return false;
    }
    return true;
}

int bs_rpc_kv_resp_encode(const struct bs_rpc_header *hdr,
                          const struct bs_shard_resp *resp, uint8_t **out,
                          size_t *len, char *errmsg)
{
    struct enc e = {0, errmsg};
    etcdserverpb_ResponseHeader h = etcdserverpb_ResponseHeader_init_zero;
    struct opresp_enc x;

    *out = NULL;
    *len = 0;
    if (resp->err != 0) {
        bs_rpc__set_msg(
            errmsg,
            "a refused command (%s) has no etcd response: answer it with a "
            "status",
            bs_err_name(resp->err));
        return BS_EINVAL;
    }
    h.cluster_id = hdr->cluster_id;
    h.member_id = hdr->member_id;
    h.revision = resp->revision;
    h.raft_term = hdr->raft_term;
    switch (resp->type) {
    case BS_SHARD_CMD_PUT: {
        etcdserverpb_PutResponse pm = etcdserverpb_PutResponse_init_zero;

        put_resp_to_pb(&h, &resp->op, &pm, &x);
        return encode(&e, etcdserverpb_PutResponse_fields, &pm, "PutResponse",
                      out, len);
    }
    case BS_SHARD_CMD_DELETE_RANGE: {
        etcdserverpb_DeleteRangeResponse pm =
            etcdserverpb_DeleteRangeResponse_init_zero;

        del_resp_to_pb(&h, &resp->op, &pm, &x);
        return encode(&e, etcdserverpb_DeleteRangeResponse_fields, &pm,
                      "DeleteRangeResponse", out, len);
    }
    case BS_SHARD_CMD_RANGE: {
        etcdserverpb_RangeResponse pm = etcdserverpb_RangeResponse_init_zero;

        range_resp_to_pb(&h, &resp->op, &pm, &x);
        return encode(&e, etcdserverpb_RangeResponse_fields, &pm,
                      "RangeResponse", out, len);
    }
    case BS_SHARD_CMD_TXN: {
        etcdserverpb_TxnResponse pm = etcdserverpb_TxnResponse_init_zero;
        struct resps_enc re = {&e, &h, resp->ops, resp->n_ops};

        pm.has_header = true;
        pm.header = h;
        pm.succeeded = resp->succeeded;
        pm.responses.funcs.encode = enc_respops_cb;
        pm.responses.arg = &re;
        return encode(&e, etcdserverpb_TxnResponse_fields, &pm, "TxnResponse",
                      out, len);
    }
    default:
        bs_rpc__set_msg(errmsg, "response type %u has no etcd response",
                        resp->type);
        return BS_EINVAL;
    }
}

/* --------------------------------------------------------- decoding */

static void kvs_free(struct bs_shard_kv *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
}

static void op_resp_clear(struct bs_shard_op_resp *op)
{
    kvs_free(op->kvs, op->n_kvs);
    memset(op, 0, sizeof *op);
}

struct kv_dec {
    struct bs_rpc__copy key, value;
};

static void kv_dec_setup(struct bs_rpc__dec *d, mvccpb_KeyValue *pk,
                         struct bs_shard_kv *kv, struct kv_dec *x)
{
    pk->key = bs_rpc__copy_cb(&x->key, d, "KeyValue.key", d->lim->max_key,
                              &kv->key, &kv->key_len);
    pk->value = bs_rpc__copy_cb(&x->value, d, "KeyValue.value",
                                d->lim->max_value, &kv->value, &kv->value_len);
}

static void kv_from_pb(const mvccpb_KeyValue *pk, struct bs_shard_kv *kv)
{
    kv->create_revision = pk->create_revision;
    kv->mod_revision = pk->mod_revision;
    kv->version = pk->version;
    kv->lease = pk->lease;
}

static bool count_kv(struct bs_rpc__dec *d)
{
    if (d->n_kvs >= d->lim->max_kvs)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "response has more than %zu key-values",
                                d->lim->max_kvs);
    d->n_kvs++;
    return true;
}

/* Appends the key-values of a repeated KeyValue field to op. */
struct kvs_dec {
    struct bs_rpc__dec *d;
    struct bs_shard_op_resp *op;
    size_t cap;
};

static bool dec_kv_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    void *grown;
    struct kvs_dec *kd = *arg;
    struct bs_rpc__dec *d = kd->d;
    struct bs_shard_op_resp *op = kd->op;
    mvccpb_KeyValue pk = mvccpb_KeyValue_init_zero;
    struct bs_shard_kv *kv;
    struct kv_dec x;

    if (!bs_rpc__dec_in_buf(d, s, "KeyValue") || !count_kv(d))
        return false;
    grown = bs_rpc__grow(op->kvs, &kd->cap, op->n_kvs, sizeof *kv);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM,
                                "out of memory decoding key-values");
    op->kvs = grown;
    /* Counted at once, so that an error frees its copies too. */
    kv = &op->kvs[op->n_kvs++];
    memset(kv, 0, sizeof *kv);
    kv_dec_setup(d, &pk, kv, &x);
    if (!pb_decode(s, mvccpb_KeyValue_fields, &pk))
        return bs_rpc__dec_pb_fail(d, s, "KeyValue");
    kv_from_pb(&pk, kv);
    return true;
}

static pb_callback_t dec_kvs(struct kvs_dec *kd, struct bs_rpc__dec *d,
                             struct bs_shard_op_resp *op)
{
    pb_callback_t cb;

    kd->d = d;
    kd->op = op;
    kd->cap = op->n_kvs;
    cb.funcs.decode = dec_kv_cb;
    cb.arg = kd;
    return cb;
}

/* A PutResponse's prev_kv is a singular KeyValue: decoded into prev,
 * then moved into op (or freed) by prev_finish. */
static bool prev_finish(struct bs_rpc__dec *d, bool has,
                        struct bs_shard_kv *prev, struct bs_shard_op_resp *op)
{
    if (!has) {
        free(prev->key);
        free(prev->value);
        memset(prev, 0, sizeof *prev);
        return true;
    }
    if (!count_kv(d))
        return false;
    op->kvs = malloc(sizeof *op->kvs);
    if (op->kvs == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM, "out of memory decoding prev_kv");
    op->kvs[0] = *prev;
    op->n_kvs = 1;
    memset(prev, 0, sizeof *prev);
    return true;
}

/* One ResponseOp being decoded into op. */
struct respop_dec {
    struct bs_rpc__dec *d;
    struct bs_shard_op_resp *op;
    struct kvs_dec kvs;
    struct bs_shard_kv prev;
    struct kv_dec prev_x;
};

static bool dec_respop_member_cb(pb_istream_t *s, const pb_field_t *f,
                                 void **arg)
{
    struct respop_dec *rd = *arg;
    struct bs_shard_op_resp *op = rd->op;
    uint8_t type;

    switch (f->tag) {
    case etcdserverpb_ResponseOp_response_put_tag:
        type = BS_SHARD_CMD_PUT;
        break;
    case etcdserverpb_ResponseOp_response_delete_range_tag:
        type = BS_SHARD_CMD_DELETE_RANGE;
        break;
    case etcdserverpb_ResponseOp_response_range_tag:
        type = BS_SHARD_CMD_RANGE;
        break;
    case etcdserverpb_ResponseOp_response_txn_tag:
        return bs_rpc__dec_fail(
            rd->d, BS_ENOTIMPL,
            "a Txn response nested in a Txn response is not supported");
    default:
        return bs_rpc__dec_fail(rd->d, BS_EPROTO, "ResponseOp member %u",
                                (unsigned)f->tag);
    }
    if (op->type != type) {
        op_resp_clear(op);
        free(rd->prev.key);
        free(rd->prev.value);
        memset(&rd->prev, 0, sizeof rd->prev);
        op->type = type;
    }
    switch (type) {
    case BS_SHARD_CMD_PUT: {
        etcdserverpb_PutResponse *pm = f->pData;

        kv_dec_setup(rd->d, &pm->prev_kv, &rd->prev, &rd->prev_x);
        break;
    }
    case BS_SHARD_CMD_DELETE_RANGE: {
        etcdserverpb_DeleteRangeResponse *pm = f->pData;

        pm->prev_kvs = dec_kvs(&rd->kvs, rd->d, op);
        break;
    }
    default: {
        etcdserverpb_RangeResponse *pm = f->pData;

        pm->kvs = dec_kvs(&rd->kvs, rd->d, op);
        break;
    }
    }
    return true;
}

struct resps_dec {
    struct bs_rpc__dec *d;
    struct bs_shard_resp *r;
    size_t cap;
};

static bool dec_respop_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    void *grown;
    struct resps_dec *rsd = *arg;
    struct bs_rpc__dec *d = rsd->d;
    struct bs_shard_resp *r = rsd->r;
    etcdserverpb_ResponseOp pr = etcdserverpb_ResponseOp_init_zero;
    struct respop_dec rd;
    struct bs_shard_op_resp *op;
    bool ok;

    if (!bs_rpc__dec_in_buf(d, s, "TxnResponse.responses"))
        return false;
    if (r->n_ops >= d->lim->max_txn_ops)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "TxnResponse has more than %zu responses",
                                d->lim->max_txn_ops);
    grown = bs_rpc__grow(r->ops, &rsd->cap, r->n_ops, sizeof *op);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM,
                                "out of memory decoding responses");
    r->ops = grown;
    op = &r->ops[r->n_ops++];
    memset(op, 0, sizeof *op);
    memset(&rd, 0, sizeof rd);
    rd.d = d;
    rd.op = op;
    pr.cb_response.funcs.decode = dec_respop_member_cb;
    pr.cb_response.arg = &rd;
    ok = pb_decode(s, etcdserverpb_ResponseOp_fields, &pr);
    if (!ok) {
        bs_rpc__dec_pb_fail(d, s, "ResponseOp");
    } else {
        switch (pr.which_response) {
        case etcdserverpb_ResponseOp_response_put_tag:
            if (pr.response.response_put.has_prev_kv)
                kv_from_pb(&pr.response.response_put.prev_kv, &rd.prev);
            ok = prev_finish(d, pr.response.response_put.has_prev_kv, &rd.prev,
                             op);
            break;
        case etcdserverpb_ResponseOp_response_delete_range_tag:
            op->deleted = pr.response.response_delete_range.deleted;
            break;
        case etcdserverpb_ResponseOp_response_range_tag:
            op->count = pr.response.response_range.count;
            op->more = pr.response.response_range.more;
            break;
        default:
            ok = bs_rpc__dec_fail(
                d, BS_EPROTO,
                "TxnResponse.responses[%zu]: ResponseOp has no response",
                r->n_ops - 1);
            break;
        }
    }
    free(rd.prev.key);
    free(rd.prev.value);
    return ok;
}

static void header_from_pb(bool has, const etcdserverpb_ResponseHeader *h,
                           struct bs_rpc_header *hdr,
                           struct bs_shard_resp *resp)
{
    struct bs_rpc_header tmp = {0, 0, 0, 0};

    if (has) {
        tmp.cluster_id = h->cluster_id;
        tmp.member_id = h->member_id;
        tmp.revision = h->revision;
        tmp.raft_term = h->raft_term;
    }
    resp->revision = tmp.revision;
    if (hdr != NULL)
        *hdr = tmp;
}

int bs_rpc_kv_resp_decode(uint8_t type, const uint8_t *buf, size_t len,
                          const struct bs_rpc_limits *lim,
                          struct bs_rpc_header *hdr, struct bs_shard_resp *resp,
                          char *errmsg)
{
    struct bs_rpc__dec d;
    struct kvs_dec kd;
    pb_istream_t s;
    const char *what;
    bool ok;
    int rc;

    bs_shard_resp_init(resp);
    if (hdr != NULL)
        memset(hdr, 0, sizeof *hdr);
    bs_rpc__dec_init(&d, lim, buf, len, errmsg);
    what = type == BS_SHARD_CMD_PUT            ? "PutResponse"
           : type == BS_SHARD_CMD_DELETE_RANGE ? "DeleteRangeResponse"
           : type == BS_SHARD_CMD_RANGE        ? "RangeResponse"
           : type == BS_SHARD_CMD_TXN          ? "TxnResponse"
                                               : NULL;
    if (what == NULL) {
        bs_rpc__set_msg(errmsg, "type %u has no etcd response", type);
        return BS_EINVAL;
    }
    if (!bs_rpc__dec_check_size(&d, len, what))
        return d.err;
    resp->type = type;
    if (type != BS_SHARD_CMD_TXN)
        resp->op.type = type;
    s = pb_istream_from_buffer(buf, len);
    switch (type) {
    case BS_SHARD_CMD_PUT: {
        etcdserverpb_PutResponse pm = etcdserverpb_PutResponse_init_zero;
        struct bs_shard_kv prev;
        struct kv_dec x;

        memset(&prev, 0, sizeof prev);
        kv_dec_setup(&d, &pm.prev_kv, &prev, &x);
        ok = pb_decode(&s, etcdserverpb_PutResponse_fields, &pm);
        if (ok && pm.has_prev_kv)
            kv_from_pb(&pm.prev_kv, &prev);
        if (ok)
            ok = prev_finish(&d, pm.has_prev_kv, &prev, &resp->op);
        free(prev.key);
        free(prev.value);
        header_from_pb(pm.has_header, &pm.header, hdr, resp);
        break;
    }
    case BS_SHARD_CMD_DELETE_RANGE: {
        etcdserverpb_DeleteRangeResponse pm =
            etcdserverpb_DeleteRangeResponse_init_zero;

        pm.prev_kvs = dec_kvs(&kd, &d, &resp->op);
        ok = pb_decode(&s, etcdserverpb_DeleteRangeResponse_fields, &pm);
        resp->op.deleted = pm.deleted;
        header_from_pb(pm.has_header, &pm.header, hdr, resp);
        break;
    }
    case BS_SHARD_CMD_RANGE: {
        etcdserverpb_RangeResponse pm = etcdserverpb_RangeResponse_init_zero;

        pm.kvs = dec_kvs(&kd, &d, &resp->op);
        ok = pb_decode(&s, etcdserverpb_RangeResponse_fields, &pm);
        resp->op.count = pm.count;
        resp->op.more = pm.more;
        header_from_pb(pm.has_header, &pm.header, hdr, resp);
        break;
    }
    default: {
        etcdserverpb_TxnResponse pm = etcdserverpb_TxnResponse_init_zero;
        struct resps_dec rsd = {&d, resp, 0};

        pm.responses.funcs.decode = dec_respop_cb;
        pm.responses.arg = &rsd;
        ok = pb_decode(&s, etcdserverpb_TxnResponse_fields, &pm);
        resp->succeeded = pm.succeeded;
        header_from_pb(pm.has_header, &pm.header, hdr, resp);
        break;
    }
    }
    rc = dec_result(&d, &s, ok, what);
    if (rc != 0) {
        bs_shard_resp_free(resp);
        if (hdr != NULL)
            memset(hdr, 0, sizeof *hdr);
    }
    return rc;
}

/* ====================================================== snapshot acks */

/* The longest SnapshotAck.error kept: a sentence, not a payload. */
#define MAX_ACK_ERROR 1024

int bs_rpc_snap_ack_encode(const struct bs_rpc_snap_ack *a, uint8_t **out,
                           size_t *len, char *errmsg)
{
    struct enc e = {0, errmsg};
    basalt_raft_SnapshotAck pa = basalt_raft_SnapshotAck_init_zero;
    struct bs_rpc__bytes err;

    *out = NULL;
    *len = 0;
    if (a->error_len > MAX_ACK_ERROR) {
        bs_rpc__set_msg(errmsg, "SnapshotAck: error is longer than %d bytes",
                        MAX_ACK_ERROR);
        return BS_EINVAL;
    }
    pa.accepted = a->accepted;
    pa.error = bs_rpc__enc_bytes(&err, a->error, a->error_len);
    pa.shard_id = a->shard_id;
    pa.index = a->index;
    pa.term = a->term;
    pa.chunks = a->chunks;
    pa.bytes = a->bytes;
    pa.done = a->done;
    return encode(&e, basalt_raft_SnapshotAck_fields, &pa, "SnapshotAck", out,
                  len);
}

int bs_rpc_snap_ack_decode(const uint8_t *buf, size_t len,
                           const struct bs_rpc_limits *lim,
                           struct bs_rpc_snap_ack *a, char *errmsg)
{
    struct bs_rpc__dec d;
    basalt_raft_SnapshotAck pa = basalt_raft_SnapshotAck_init_zero;
    struct borrow_dst be;
    const uint8_t *err = NULL;
    pb_istream_t s;
    bool ok;
    int rc;

    memset(a, 0, sizeof *a);
    bs_rpc__dec_init(&d, lim, buf, len, errmsg);
    if (!bs_rpc__dec_check_size(&d, len, "SnapshotAck"))
        return d.err;
    pa.error = borrow(&be, &d, "SnapshotAck.error", MAX_ACK_ERROR, &err,
                      &a->error_len);
    s = pb_istream_from_buffer(buf, len);
    ok = pb_decode(&s, basalt_raft_SnapshotAck_fields, &pa);
    rc = dec_result(&d, &s, ok, "SnapshotAck");
    if (rc != 0) {
        memset(a, 0, sizeof *a);
        return rc;
    }
    a->accepted = pa.accepted;
    a->error = (const char *)err;
    a->shard_id = pa.shard_id;
    a->index = pa.index;
    a->term = pa.term;
    a->chunks = pa.chunks;
    a->bytes = pa.bytes;
    a->done = pa.done;
    return 0;
}
