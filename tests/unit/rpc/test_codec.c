/*
 * test_codec.c - unit tests of rpc/codec.c: every encoder and decoder
 * round-trips random and edge-case values of its structs (Raft batches
 * with entries and snapshots, snapshot chunks, etcd Put / DeleteRange /
 * Range / Txn requests and responses); encoders refuse values outside
 * their domain; decoders refuse malformed, out-of-domain and oversized
 * input with the right code and a message, and survive thousands of
 * random mutations of valid encodings; and the bytes are etcd's: fixed
 * messages are compared with hand-computed protobuf bytes (from etcd's
 * field numbers, independently of rpc/proto), and with protoc's own
 * decoder and encoder run over rpc/proto (BS_RPC_PROTOC,
 * BS_RPC_PROTO_DIR, set by meson).
 *
 * Soak: BS_RPC_FUZZ_SEED and BS_RPC_FUZZ_ROUNDS (mutations per seed
 * message, default 3000) change the fuzz run, e.g. under the asan setup.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "protoc_util.h"

/* ------------------------------------------------------------ helpers */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

/* An interesting 64-bit value: 0, small, large, extreme. */
static uint64_t rng_u64(uint64_t *s)
{
    switch (rng_below(s, 5)) {
    case 0:
        return 0;
    case 1:
        return rng_below(s, 200);
    case 2:
        return UINT64_MAX - rng_below(s, 3);
    case 3:
        return 1ULL << rng_below(s, 64);
    default:
        return rng_next(s);
    }
}

/* Keeps every buffer a test allocates, freed at the end. */
struct arena {
    void **p;
    size_t n, cap;
};

static void *arena_alloc(struct arena *a, size_t len)
{
    void *p = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(p);
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->p = realloc(a->p, a->cap * sizeof *a->p);
        ck_assert_ptr_nonnull(a->p);
    }
    a->p[a->n++] = p;
    return p;
}

static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    free(a->p);
    memset(a, 0, sizeof *a);
}

static uint8_t *rand_bytes(struct arena *a, uint64_t *s, size_t len)
{
    uint8_t *p;

    if (len == 0)
        return NULL;
    p = arena_alloc(a, len);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)rng_next(s);
    return p;
}

static const uint8_t *B(const char *s)
{
    return (const uint8_t *)s;
}

/* ------------------------------------------------------ raft batches */

static void rand_conf(uint64_t *s, struct bs_raft_conf_state *cs)
{
    memset(cs, 0, sizeof *cs);
    if (rng_below(s, 3) == 0)
        return;
    cs->n_voters = (uint32_t)rng_below(s, BS_RAFT_MAX_MEMBERS + 1);
    cs->n_voters_outgoing = (uint32_t)rng_below(s, BS_RAFT_MAX_MEMBERS + 1);
    cs->n_learners = (uint32_t)rng_below(s, BS_RAFT_MAX_MEMBERS + 1);
    cs->n_learners_next = (uint32_t)rng_below(s, 3);
    for (int i = 0; i < BS_RAFT_MAX_MEMBERS; i++) {
        cs->voters[i] = i < (int)cs->n_voters ? rng_u64(s) : 0;
        cs->voters_outgoing[i] =
            i < (int)cs->n_voters_outgoing ? rng_u64(s) : 0;
        cs->learners[i] = i < (int)cs->n_learners ? rng_u64(s) : 0;
        cs->learners_next[i] = i < (int)cs->n_learners_next ? rng_u64(s) : 0;
    }
    cs->auto_leave = rng_below(s, 2);
}

static void rand_env(struct arena *a, uint64_t *s, struct bs_eng_envelope *e)
{
    struct bs_raft_msg *m = &e->msg;

    memset(e, 0, sizeof *e);
    e->kind = (uint8_t)rng_below(s, 3);
    e->shard_id = rng_u64(s);
    if (e->kind == BS_ENG_ENV_RAFT)
        m->type =
            (uint8_t)(BS_RAFT_MSG_PROP +
                      rng_below(s, BS_RAFT_MSG__COUNT - BS_RAFT_MSG_PROP));
    else
        m->type = (uint8_t)rng_below(s, BS_RAFT_MSG__COUNT);
    m->flags = (uint8_t)rng_below(s, 256);
    m->reject = rng_below(s, 2);
    m->to = rng_u64(s);
    m->from = rng_u64(s);
    m->term = rng_u64(s);
    m->log_term = rng_u64(s);
    m->index = rng_u64(s);
    m->commit = rng_u64(s);
    m->reject_hint = rng_u64(s);
    m->ctx = rng_u64(s);
    m->n_entries = rng_below(s, 4) == 0 ? 0 : rng_below(s, 8);
    if (m->n_entries)
        m->entries =
            arena_alloc(a, m->n_entries * sizeof(struct bs_raft_entry));
    for (size_t i = 0; i < m->n_entries; i++) {
        struct bs_raft_entry *x = &m->entries[i];
        size_t len = rng_below(s, 4) == 0 ? 0
                     : rng_below(s, 50) == 0
                         ? 70000 + rng_below(s, 1000) /* > 64 KiB */
                         : rng_below(s, 300);

        x->term = rng_u64(s);
        x->index = rng_u64(s);
        x->type = (uint8_t)rng_below(s, 2);
        x->len = (uint32_t)len;
        x->data = rand_bytes(a, s, len);
    }
    if (rng_below(s, 3) == 0) {
        m->snapshot.meta.index = rng_u64(s);
        m->snapshot.meta.term = rng_u64(s);
        rand_conf(s, &m->snapshot.meta.conf);
        m->snapshot.len = rng_below(s, 2) ? rng_below(s, 100) : 0;
        m->snapshot.data = rand_bytes(a, s, m->snapshot.len);
    }
}

static void check_conf_eq(const struct bs_raft_conf_state *a,
                          const struct bs_raft_conf_state *b)
{
    ck_assert_uint_eq(a->n_voters, b->n_voters);
    ck_assert_uint_eq(a->n_voters_outgoing, b->n_voters_outgoing);
    ck_assert_uint_eq(a->n_learners, b->n_learners);
    ck_assert_uint_eq(a->n_learners_next, b->n_learners_next);
    ck_assert(memcmp(a->voters, b->voters, a->n_voters * 8) == 0);
    ck_assert(memcmp(a->voters_outgoing, b->voters_outgoing,
                     a->n_voters_outgoing * 8) == 0);
    ck_assert(memcmp(a->learners, b->learners, a->n_learners * 8) == 0);
    ck_assert(memcmp(a->learners_next, b->learners_next,
                     a->n_learners_next * 8) == 0);
    ck_assert_int_eq(a->auto_leave, b->auto_leave);
}

static void check_env_eq(const struct bs_eng_envelope *a,
                         const struct bs_eng_envelope *b)
{
    const struct bs_raft_msg *x = &a->msg, *y = &b->msg;

    ck_assert_uint_eq(a->kind, b->kind);
    ck_assert_uint_eq(a->shard_id, b->shard_id);
    ck_assert_uint_eq(x->type, y->type);
    ck_assert_uint_eq(x->flags, y->flags);
    ck_assert_int_eq(x->reject, y->reject);
    ck_assert_uint_eq(x->to, y->to);
    ck_assert_uint_eq(x->from, y->from);
    ck_assert_uint_eq(x->term, y->term);
    ck_assert_uint_eq(x->log_term, y->log_term);
    ck_assert_uint_eq(x->index, y->index);
    ck_assert_uint_eq(x->commit, y->commit);
    ck_assert_uint_eq(x->reject_hint, y->reject_hint);
    ck_assert_uint_eq(x->ctx, y->ctx);
    ck_assert_uint_eq(x->n_entries, y->n_entries);
    for (size_t i = 0; i < x->n_entries; i++) {
        ck_assert_uint_eq(x->entries[i].term, y->entries[i].term);
        ck_assert_uint_eq(x->entries[i].index, y->entries[i].index);
        ck_assert_uint_eq(x->entries[i].type, y->entries[i].type);
        ck_assert(bs_test_bytes_eq(x->entries[i].data, x->entries[i].len,
                                   y->entries[i].data, y->entries[i].len));
    }
    ck_assert_uint_eq(x->snapshot.meta.index, y->snapshot.meta.index);
    ck_assert_uint_eq(x->snapshot.meta.term, y->snapshot.meta.term);
    check_conf_eq(&x->snapshot.meta.conf, &y->snapshot.meta.conf);
    ck_assert(bs_test_bytes_eq(x->snapshot.data, x->snapshot.len,
                               y->snapshot.data, y->snapshot.len));
}

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *q = p;

    return n == 0 || (q >= buf && q + n <= buf + len);
}

START_TEST(test_batch_round_trip)
{
    uint64_t seed = 42;

    for (int round = 0; round < 300; round++) {
        struct arena a = {0};
        size_t n = round == 0 ? 0 : rng_below(&seed, 12);
        struct bs_eng_envelope *envs =
            arena_alloc(&a, (n ? n : 1) * sizeof *envs);
        struct bs_rpc_batch_hdr hdr = {rng_u64(&seed), rng_u64(&seed),
                                       rng_u64(&seed)};
        struct bs_rpc_raft_batch b;
        uint8_t *buf, *buf2;
        size_t len, len2;
        char err[BS_RPC_ERRMSG_LEN];

        for (size_t i = 0; i < n; i++)
            rand_env(&a, &seed, &envs[i]);
        ck_assert_int_eq(
            bs_rpc_raft_batch_encode(&hdr, envs, n, &buf, &len, err), 0);
        ck_assert_int_eq(bs_rpc_raft_batch_decode(buf, len, NULL, &b, err), 0);
        ck_assert_uint_eq(b.hdr.cluster_id, hdr.cluster_id);
        ck_assert_uint_eq(b.hdr.from_node, hdr.from_node);
        ck_assert_uint_eq(b.hdr.to_node, hdr.to_node);
        ck_assert_uint_eq(b.n_envs, n);
        for (size_t i = 0; i < n; i++) {
            const struct bs_raft_msg *m = &b.envs[i].msg;

            check_env_eq(&envs[i], &b.envs[i]);
            /* Zero copy: the data is the buffer's. */
            for (size_t j = 0; j < m->n_entries; j++)
                ck_assert(
                    inside(m->entries[j].data, m->entries[j].len, buf, len));
            ck_assert(inside(m->snapshot.data, m->snapshot.len, buf, len));
        }
        /* Canonical: the decoded batch encodes to the same bytes. */
        ck_assert_int_eq(bs_rpc_raft_batch_encode(&b.hdr, b.envs, b.n_envs,
                                                  &buf2, &len2, err),
                         0);
        ck_assert(bs_test_bytes_eq(buf, len, buf2, len2));
        free(buf2);
        bs_rpc_raft_batch_free(&b);
        ck_assert_ptr_null(b.envs);
        free(buf);
        arena_free(&a);
    }
    bs_rpc_raft_batch_free(NULL);
}
END_TEST

START_TEST(test_batch_encode_refuses)
{
    struct bs_rpc_batch_hdr hdr = {1, 2, 3};
    struct bs_eng_envelope e;
    struct bs_raft_entry x = {1, 1, 2, 0, NULL};
    uint8_t *buf = (uint8_t *)"x";
    size_t len = 7;
    char err[BS_RPC_ERRMSG_LEN];

    memset(&e, 0, sizeof e);
    e.kind = 3;
    e.msg.type = BS_RAFT_MSG_APP;
    ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, &e, 1, &buf, &len, err),
                     BS_EINVAL);
    ck_assert_ptr_null(buf);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(strstr(err, "kind"));

    e.kind = BS_ENG_ENV_RAFT;
    e.msg.type = BS_RAFT_MSG_HUP;
    ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, &e, 1, &buf, &len, err),
                     BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "local"));

    e.msg.type = BS_RAFT_MSG__COUNT;
    ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, &e, 1, &buf, &len, err),
                     BS_EINVAL);

    e.msg.type = BS_RAFT_MSG_APP;
    e.msg.entries = &x;
    e.msg.n_entries = 1;
    ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, &e, 1, &buf, &len, err),
                     BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "entry"));

    x.type = BS_RAFT_ENTRY_NORMAL;
    e.msg.snapshot.meta.conf.n_voters = BS_RAFT_MAX_MEMBERS + 1;
    ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, &e, 1, &buf, &len, err),
                     BS_EINVAL);

    /* A heartbeat envelope leaves type 0 (HUP): fine outside RAFT. */
    memset(&e, 0, sizeof e);
    e.kind = BS_ENG_ENV_NODE_HEARTBEAT;
    ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, &e, 1, &buf, &len, err), 0);
    free(buf);
}
END_TEST

/* Protobuf writers for hand-made (and malformed) messages. */
struct w {
    uint8_t b[16384];
    size_t n;
};

static void w_var(struct w *w, uint64_t v)
{
    do {
        uint8_t c = v & 0x7f;

        v >>= 7;
        w->b[w->n++] = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
}

static void w_tag(struct w *w, unsigned field, unsigned wt)
{
    w_var(w, (uint64_t)field << 3 | wt);
}

static void w_uint(struct w *w, unsigned field, uint64_t v)
{
    w_tag(w, field, 0);
    w_var(w, v);
}

static void w_bytes(struct w *w, unsigned field, const void *p, size_t n)
{
    w_tag(w, field, 2);
    w_var(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_msg(struct w *w, unsigned field, const struct w *m)
{
    w_bytes(w, field, m->b, m->n);
}

static int dec_batch(const struct w *w, const struct bs_rpc_limits *lim,
                     char *err)
{
    struct bs_rpc_raft_batch b;
    /* Exactly sized, so that ASan/valgrind see any read past the end. */
    uint8_t *buf = malloc(w->n ? w->n : 1);
    int rc;

    memcpy(buf, w->b, w->n);
    err[0] = '\0';
    rc = bs_rpc_raft_batch_decode(buf, w->n, lim, &b, err);
    if (rc == 0)
        bs_rpc_raft_batch_free(&b);
    else
        ck_assert_msg(err[0] != '\0', "no message for %d", rc);
    ck_assert_ptr_null(rc ? b.envs : NULL);
    free(buf);
    return rc;
}

/* A batch of one envelope built by f. */
static struct w batch_of(const struct w *env)
{
    struct w b = {.n = 0};

    w_uint(&b, 1, 7);
    w_msg(&b, 4, env);
    return b;
}

START_TEST(test_batch_decode_refuses)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct w env, b, ent, meta, conf;

    /* A valid one first. */
    env = (struct w){.n = 0};
    w_uint(&env, 1, BS_ENG_ENV_RAFT);
    w_uint(&env, 3, BS_RAFT_MSG_APP);
    b = batch_of(&env);
    ck_assert_int_eq(dec_batch(&b, NULL, err), 0);

    /* Local message type in a RAFT envelope. */
    env = (struct w){.n = 0};
    w_uint(&env, 3, BS_RAFT_MSG_HUP);
    b = batch_of(&env);
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "local"));

    /* Unknown kind, unknown type, flags too wide. */
    env = (struct w){.n = 0};
    w_uint(&env, 1, 9);
    w_uint(&env, 3, BS_RAFT_MSG_APP);
    b = batch_of(&env);
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "kind"));
    env = (struct w){.n = 0};
    w_uint(&env, 3, BS_RAFT_MSG__COUNT);
    b = batch_of(&env);
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    env = (struct w){.n = 0};
    w_uint(&env, 3, BS_RAFT_MSG_APP);
    w_uint(&env, 13, 256);
    b = batch_of(&env);
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "flags"));

    /* Entry type out of its enum. */
    ent = (struct w){.n = 0};
    w_uint(&ent, 3, 2);
    env = (struct w){.n = 0};
    w_uint(&env, 3, BS_RAFT_MSG_APP);
    w_msg(&env, 14, &ent);
    b = batch_of(&env);
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "entry"));

    /* Entry data sent as a varint: wrong wire type, not a stack pointer. */
    ent = (struct w){.n = 0};
    w_uint(&ent, 4, 12345);
    env = (struct w){.n = 0};
    w_uint(&env, 3, BS_RAFT_MSG_APP);
    w_msg(&env, 14, &ent);
    b = batch_of(&env);
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "wire type"));

    /* Envelopes sent as a fixed64. */
    b = (struct w){.n = 0};
    w_tag(&b, 4, 1);
    memcpy(b.b + b.n, "\x08\x00\x18\x06\x00\x00\x00\x00", 8);
    b.n += 8;
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);

    /* 17 voters, packed. */
    conf = (struct w){.n = 0};
    {
        struct w packed = {.n = 0};

        for (int i = 0; i < BS_RAFT_MAX_MEMBERS + 1; i++)
            w_var(&packed, (uint64_t)i + 1);
        w_msg(&conf, 1, &packed);
    }
    meta = (struct w){.n = 0};
    w_msg(&meta, 3, &conf);
    env = (struct w){.n = 0};
    w_uint(&env, 3, BS_RAFT_MSG_SNAP);
    w_msg(&env, 15, &meta);
    b = batch_of(&env);
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);

    /* Truncated varint, bad wire type 7, length past the end. */
    b = (struct w){.n = 2, .b = {0x08, 0x80}};
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    b = (struct w){.n = 2, .b = {0x0f, 0x00}};
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    b = (struct w){.n = 3, .b = {0x22, 0x05, 0x08}};
    ck_assert_int_eq(dec_batch(&b, NULL, err), BS_EPROTO);
    /* Empty input is an empty batch. */
    b = (struct w){.n = 0};
    ck_assert_int_eq(dec_batch(&b, NULL, err), 0);
}
END_TEST

START_TEST(test_batch_limits)
{
    struct arena a = {0};
    uint64_t seed = 7;
    struct bs_eng_envelope envs[4];
    struct bs_raft_entry ents[3];
    struct bs_rpc_batch_hdr hdr = {1, 2, 3};
    struct bs_rpc_limits lim;
    struct bs_rpc_raft_batch b;
    uint8_t *buf;
    size_t len;
    char err[BS_RPC_ERRMSG_LEN];

    for (int i = 0; i < 4; i++) {
        rand_env(&a, &seed, &envs[i]);
        envs[i].msg.n_entries = 0;
        envs[i].msg.snapshot.len = 0;
    }
    for (int i = 0; i < 3; i++) {
        ents[i] = (struct bs_raft_entry){1, (uint64_t)i + 1, 0, 100,
                                         rand_bytes(&a, &seed, 100)};
    }
    envs[1].msg.entries = ents;
    envs[1].msg.n_entries = 3;
    ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, envs, 4, &buf, &len, err),
                     0);

    bs_rpc_limits_default(&lim);
    ck_assert_int_eq(bs_rpc_raft_batch_decode(buf, len, &lim, &b, err), 0);
    bs_rpc_raft_batch_free(&b);

    lim.max_envelopes = 3;
    ck_assert_int_eq(bs_rpc_raft_batch_decode(buf, len, &lim, &b, err),
                     BS_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "envelopes"));
    ck_assert_ptr_null(b.envs);
    ck_assert_uint_eq(b.n_envs, 0);

    bs_rpc_limits_default(&lim);
    lim.max_entries = 2;
    ck_assert_int_eq(bs_rpc_raft_batch_decode(buf, len, &lim, &b, err),
                     BS_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "entries"));

    bs_rpc_limits_default(&lim);
    lim.max_entry = 99;
    ck_assert_int_eq(bs_rpc_raft_batch_decode(buf, len, &lim, &b, err),
                     BS_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "Entry.data"));
    lim.max_entry = 100;
    ck_assert_int_eq(bs_rpc_raft_batch_decode(buf, len, &lim, &b, err), 0);
    bs_rpc_raft_batch_free(&b);

    bs_rpc_limits_default(&lim);
    lim.max_message = len - 1;
    ck_assert_int_eq(bs_rpc_raft_batch_decode(buf, len, &lim, &b, err),
                     BS_ETOOBIG);
    lim.max_message = len;
    ck_assert_int_eq(bs_rpc_raft_batch_decode(buf, len, &lim, &b, err), 0);
    bs_rpc_raft_batch_free(&b);
    free(buf);
    arena_free(&a);
}
END_TEST

/* ---------------------------------------------------- snapshot chunks */

START_TEST(test_chunk_round_trip)
{
    struct arena a = {0};
    uint64_t seed = 99;

    for (int round = 0; round < 100; round++) {
        struct bs_rpc_snap_chunk c, d;
        uint8_t *buf;
        size_t len;
        char err[BS_RPC_ERRMSG_LEN];
        static const char *names[] = {"", "000001.sst", "MANIFEST", "..x"};

        memset(&c, 0, sizeof c);
        c.cluster_id = rng_u64(&seed);
        c.from_node = rng_u64(&seed);
        c.shard_id = rng_u64(&seed);
        c.meta.index = rng_u64(&seed);
        c.meta.term = rng_u64(&seed);
        rand_conf(&seed, &c.meta.conf);
        c.has_msg = rng_below(&seed, 2);
        if (c.has_msg)
            rand_env(&a, &seed, &c.msg);
        c.file = names[rng_below(&seed, 4)];
        c.file_len = strlen(c.file);
        c.offset = rng_u64(&seed);
        c.len = c.file_len ? rng_below(&seed, 5000) : 0;
        c.data = rand_bytes(&a, &seed, c.len);
        c.last = rng_below(&seed, 2);
        ck_assert_int_eq(bs_rpc_snap_chunk_encode(&c, &buf, &len, err), 0);
        ck_assert_int_eq(bs_rpc_snap_chunk_decode(buf, len, NULL, &d, err), 0);
        ck_assert_uint_eq(d.cluster_id, c.cluster_id);
        ck_assert_uint_eq(d.from_node, c.from_node);
        ck_assert_uint_eq(d.shard_id, c.shard_id);
        ck_assert_uint_eq(d.meta.index, c.meta.index);
        ck_assert_uint_eq(d.meta.term, c.meta.term);
        check_conf_eq(&d.meta.conf, &c.meta.conf);
        ck_assert_int_eq(d.has_msg, c.has_msg);
        if (c.has_msg)
            check_env_eq(&c.msg, &d.msg);
        ck_assert(bs_test_bytes_eq(d.file, d.file_len, c.file, c.file_len));
        ck_assert_uint_eq(d.offset, c.offset);
        ck_assert(bs_test_bytes_eq(d.data, d.len, c.data, c.len));
        ck_assert(inside(d.data, d.len, buf, len));
        ck_assert_int_eq(d.last, c.last);
        bs_rpc_snap_chunk_free(&d);
        free(buf);
    }
    arena_free(&a);
}
END_TEST

START_TEST(test_chunk_file_names)
{
    static const char *bad[] = {"a/b", "/etc", ".", "..", "a\0b"};
    static const size_t bad_len[] = {3, 4, 1, 2, 3};
    char err[BS_RPC_ERRMSG_LEN];
    char longname[300];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct bs_rpc_snap_chunk c, d;
        uint8_t *buf;
        size_t len;
        struct w w = {.n = 0};

        memset(&c, 0, sizeof c);
        c.file = bad[i];
        c.file_len = bad_len[i];
        ck_assert_int_eq(bs_rpc_snap_chunk_encode(&c, &buf, &len, err),
                         BS_EINVAL);
        w_bytes(&w, 4, bad[i], bad_len[i]);
        ck_assert_int_eq(bs_rpc_snap_chunk_decode(w.b, w.n, NULL, &d, err),
                         BS_EPROTO);
        ck_assert_ptr_nonnull(strstr(err, "file name"));
    }
    memset(longname, 'a', sizeof longname);
    {
        struct bs_rpc_snap_chunk c, d;
        struct w w = {.n = 0};
        uint8_t *buf;
        size_t len;

        memset(&c, 0, sizeof c);
        c.file = longname;
        c.file_len = 256;
        ck_assert_int_eq(bs_rpc_snap_chunk_encode(&c, &buf, &len, err),
                         BS_EINVAL);
        w_bytes(&w, 4, longname, 256);
        ck_assert_int_eq(bs_rpc_snap_chunk_decode(w.b, w.n, NULL, &d, err),
                         BS_ETOOBIG);
        /* Data without a file name. */
        w = (struct w){.n = 0};
        w_bytes(&w, 6, "xyz", 3);
        ck_assert_int_eq(bs_rpc_snap_chunk_decode(w.b, w.n, NULL, &d, err),
                         BS_EPROTO);
    }
}
END_TEST

/* ------------------------------------------------------ etcd requests */

static struct bs_shard_compare cmps[6];
static struct bs_shard_op succ[3], fail[2];

static void sample_put(struct bs_shard_put_req *p)
{
    memset(p, 0, sizeof *p);
    p->key = B("key\0bin");
    p->key_len = 7;
    p->value = B("value");
    p->value_len = 5;
    p->lease = INT64_MIN;
    p->prev_kv = true;
    p->ignore_value = true;
    p->ignore_lease = true;
}

static void sample_range(struct bs_shard_range_req *q)
{
    memset(q, 0, sizeof *q);
    q->key = B("a");
    q->key_len = 1;
    q->range_end = B("\0");
    q->range_end_len = 1;
    q->limit = INT64_MAX;
    q->revision = -5;
    q->sort_order = BS_SHARD_SORT_DESCEND;
    q->sort_target = BS_SHARD_SORT_VALUE;
    q->serializable = true;
    q->keys_only = true;
    q->count_only = true;
    q->min_mod_revision = 1;
    q->max_mod_revision = -2;
    q->min_create_revision = 3;
    q->max_create_revision = 1LL << 40;
}

static void sample_del(struct bs_shard_delete_req *d)
{
    memset(d, 0, sizeof *d);
    d->key = B("k1");
    d->key_len = 2;
    d->range_end = B("k9");
    d->range_end_len = 2;
    d->prev_kv = true;
}

static struct bs_shard_cmd sample_cmd(uint8_t type)
{
    struct bs_shard_cmd c;

    memset(&c, 0, sizeof c);
    c.type = type;
    switch (type) {
    case BS_SHARD_CMD_PUT:
        sample_put(&c.u.put);
        break;
    case BS_SHARD_CMD_RANGE:
        sample_range(&c.u.range);
        break;
    case BS_SHARD_CMD_DELETE_RANGE:
        sample_del(&c.u.del);
        break;
    case BS_SHARD_CMD_TXN:
        memset(cmps, 0, sizeof cmps);
        /* Every target; zero and empty operands still travel. */
        for (int i = 0; i < 5; i++) {
            cmps[i].target = (uint8_t)i;
            cmps[i].result = (uint8_t)(i % 4);
            cmps[i].key = B("ck");
            cmps[i].key_len = 2;
            cmps[i].number = i == 3 ? 0 : (i == 4 ? -1 : i);
        }
        cmps[3].value = B("v\0v");
        cmps[3].value_len = 3;
        cmps[5].target = BS_SHARD_CMP_VALUE;
        cmps[5].key = B("e");
        cmps[5].key_len = 1;
        cmps[5].range_end = B("f");
        cmps[5].range_end_len = 1;
        succ[0].type = BS_SHARD_CMD_PUT;
        sample_put(&succ[0].u.put);
        succ[1].type = BS_SHARD_CMD_RANGE;
        sample_range(&succ[1].u.range);
        succ[2].type = BS_SHARD_CMD_DELETE_RANGE;
        sample_del(&succ[2].u.del);
        memset(&fail[0], 0, sizeof fail[0]);
        fail[0].type = BS_SHARD_CMD_RANGE; /* all defaults */
        fail[1].type = BS_SHARD_CMD_PUT;
        sample_put(&fail[1].u.put);
        fail[1].u.put.value_len = 0;
        c.u.txn.compares = cmps;
        c.u.txn.n_compares = 6;
        c.u.txn.success = succ;
        c.u.txn.n_success = 3;
        c.u.txn.failure = fail;
        c.u.txn.n_failure = 2;
        break;
    }
    return c;
}

static void check_put_eq(const struct bs_shard_put_req *a,
                         const struct bs_shard_put_req *b)
{
    ck_assert(bs_test_bytes_eq(a->key, a->key_len, b->key, b->key_len));
    ck_assert(bs_test_bytes_eq(a->value, a->value_len, b->value, b->value_len));
    ck_assert_int_eq(a->lease, b->lease);
    ck_assert_int_eq(a->prev_kv, b->prev_kv);
    ck_assert_int_eq(a->ignore_value, b->ignore_value);
    ck_assert_int_eq(a->ignore_lease, b->ignore_lease);
}

static void check_del_eq(const struct bs_shard_delete_req *a,
                         const struct bs_shard_delete_req *b)
{
    ck_assert(bs_test_bytes_eq(a->key, a->key_len, b->key, b->key_len));
    ck_assert(bs_test_bytes_eq(a->range_end, a->range_end_len, b->range_end,
                               b->range_end_len));
    ck_assert_int_eq(a->prev_kv, b->prev_kv);
}

static void check_range_eq(const struct bs_shard_range_req *a,
                           const struct bs_shard_range_req *b)
{
    ck_assert(bs_test_bytes_eq(a->key, a->key_len, b->key, b->key_len));
    ck_assert(bs_test_bytes_eq(a->range_end, a->range_end_len, b->range_end,
                               b->range_end_len));
    ck_assert_int_eq(a->limit, b->limit);
    ck_assert_int_eq(a->revision, b->revision);
    ck_assert_uint_eq(a->sort_order, b->sort_order);
    ck_assert_uint_eq(a->sort_target, b->sort_target);
    ck_assert_int_eq(a->serializable, b->serializable);
    ck_assert_int_eq(a->keys_only, b->keys_only);
    ck_assert_int_eq(a->count_only, b->count_only);
    ck_assert_int_eq(a->min_mod_revision, b->min_mod_revision);
    ck_assert_int_eq(a->max_mod_revision, b->max_mod_revision);
    ck_assert_int_eq(a->min_create_revision, b->min_create_revision);
    ck_assert_int_eq(a->max_create_revision, b->max_create_revision);
}

static void check_op_eq(const struct bs_shard_op *a,
                        const struct bs_shard_op *b)
{
    ck_assert_uint_eq(a->type, b->type);
    if (a->type == BS_SHARD_CMD_PUT)
        check_put_eq(&a->u.put, &b->u.put);
    else if (a->type == BS_SHARD_CMD_RANGE)
        check_range_eq(&a->u.range, &b->u.range);
    else
        check_del_eq(&a->u.del, &b->u.del);
}

static void check_cmd_eq(const struct bs_shard_cmd *a,
                         const struct bs_shard_cmd *b)
{
    ck_assert_uint_eq(a->type, b->type);
    switch (a->type) {
    case BS_SHARD_CMD_PUT:
        check_put_eq(&a->u.put, &b->u.put);
        break;
    case BS_SHARD_CMD_RANGE:
        check_range_eq(&a->u.range, &b->u.range);
        break;
    case BS_SHARD_CMD_DELETE_RANGE:
        check_del_eq(&a->u.del, &b->u.del);
        break;
    default: {
        const struct bs_shard_txn_req *x = &a->u.txn, *y = &b->u.txn;

        ck_assert_uint_eq(x->n_compares, y->n_compares);
        for (size_t i = 0; i < x->n_compares; i++) {
            const struct bs_shard_compare *p = &x->compares[i],
                                          *q = &y->compares[i];

            ck_assert_uint_eq(p->target, q->target);
            ck_assert_uint_eq(p->result, q->result);
            ck_assert(bs_test_bytes_eq(p->key, p->key_len, q->key, q->key_len));
            ck_assert(bs_test_bytes_eq(p->range_end, p->range_end_len,
                                       q->range_end, q->range_end_len));
            if (p->target == BS_SHARD_CMP_VALUE)
                ck_assert(bs_test_bytes_eq(p->value, p->value_len, q->value,
                                           q->value_len));
            else
                ck_assert_int_eq(p->number, q->number);
        }
        ck_assert_uint_eq(x->n_success, y->n_success);
        for (size_t i = 0; i < x->n_success; i++)
            check_op_eq(&x->success[i], &y->success[i]);
        ck_assert_uint_eq(x->n_failure, y->n_failure);
        for (size_t i = 0; i < x->n_failure; i++)
            check_op_eq(&x->failure[i], &y->failure[i]);
    }
    }
}

static const uint8_t req_types[] = {BS_SHARD_CMD_PUT, BS_SHARD_CMD_DELETE_RANGE,
                                    BS_SHARD_CMD_RANGE, BS_SHARD_CMD_TXN};

START_TEST(test_req_round_trip)
{
    uint8_t type = req_types[_i];
    struct bs_shard_cmd c = sample_cmd(type), d;
    uint8_t *buf, *buf2;
    size_t len, len2;
    char err[BS_RPC_ERRMSG_LEN];

    c.epoch.version = 5; /* not etcd's: not carried */
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), 0);
    ck_assert_int_eq(bs_rpc_kv_req_decode(type, buf, len, NULL, &d, err), 0);
    ck_assert_uint_eq(d.epoch.version, 0);
    check_cmd_eq(&c, &d);
    ck_assert_int_eq(bs_rpc_kv_req_encode(&d, &buf2, &len2, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, buf2, len2));
    free(buf2);
    bs_rpc_kv_req_free(&d);
    ck_assert_ptr_null(d.u.txn.compares);

    /* Every field at its default: an empty message. */
    memset(&c, 0, sizeof c);
    c.type = type;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf2, &len2, err), 0);
    ck_assert_uint_eq(len2, 0);
    ck_assert_int_eq(bs_rpc_kv_req_decode(type, buf2, len2, NULL, &d, err), 0);
    check_cmd_eq(&c, &d);
    bs_rpc_kv_req_free(&d);
    free(buf2);
    free(buf);
    ck_assert_str_eq(bs_rpc_kv_method(BS_SHARD_CMD_PUT),
                     "/etcdserverpb.KV/Put");
}
END_TEST

START_TEST(test_req_encode_refuses)
{
    struct bs_shard_cmd c = sample_cmd(BS_SHARD_CMD_RANGE);
    uint8_t *buf;
    size_t len;
    char err[BS_RPC_ERRMSG_LEN];

    c.u.range.sort_order = 3;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), BS_EINVAL);
    c = sample_cmd(BS_SHARD_CMD_TXN);
    cmps[1].target = 5;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), BS_EINVAL);
    c = sample_cmd(BS_SHARD_CMD_TXN);
    fail[0].type = BS_SHARD_CMD_TXN;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), BS_EINVAL);
    c = sample_cmd(BS_SHARD_CMD_PUT);
    c.type = BS_SHARD_CMD_SPLIT;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), BS_EINVAL);
    ck_assert_ptr_null(bs_rpc_kv_method(BS_SHARD_CMD_SPLIT));
}
END_TEST

static int dec_req(uint8_t type, const struct w *w,
                   const struct bs_rpc_limits *lim, char *err)
{
    struct bs_shard_cmd c;
    uint8_t *buf = malloc(w->n ? w->n : 1);
    int rc;

    memcpy(buf, w->b, w->n);
    err[0] = '\0';
    rc = bs_rpc_kv_req_decode(type, buf, w->n, lim, &c, err);
    if (rc == 0) {
        bs_rpc_kv_req_free(&c);
    } else {
        ck_assert_msg(err[0] != '\0', "no message for %d", rc);
        ck_assert_uint_eq(c.type, 0);
    }
    free(buf);
    return rc;
}

START_TEST(test_req_decode_refuses)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_rpc_limits lim;
    struct w w, cmp, op, put;
    char big[5000];

    memset(big, 'k', sizeof big);
    /* Sort options outside etcd's enums ("invalid sort option"). */
    w = (struct w){.n = 0};
    w_uint(&w, 5, 3);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_RANGE, &w, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "sort_order"));
    w = (struct w){.n = 0};
    w_uint(&w, 6, 5);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_RANGE, &w, NULL, err), BS_EPROTO);
    w = (struct w){.n = 0};
    w_uint(&w, 5, UINT64_MAX); /* a negative enum */
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_RANGE, &w, NULL, err), BS_EPROTO);

    /* Oversized key, range_end, value. */
    w = (struct w){.n = 0};
    w_bytes(&w, 1, big, 4097);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_PUT, &w, NULL, err), BS_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "PutRequest.key"));
    w = (struct w){.n = 0};
    w_bytes(&w, 2, big, 4097);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_RANGE, &w, NULL, err), BS_ETOOBIG);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_DELETE_RANGE, &w, NULL, err),
                     BS_ETOOBIG);
    bs_rpc_limits_default(&lim);
    lim.max_value = 10;
    w = (struct w){.n = 0};
    w_bytes(&w, 2, big, 11);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_PUT, &w, &lim, err), BS_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "value"));
    w = (struct w){.n = 0};
    w_bytes(&w, 2, big, 10);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_PUT, &w, &lim, err), 0);
    /* Key as a varint. */
    w = (struct w){.n = 0};
    w_uint(&w, 1, 77);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_PUT, &w, NULL, err), BS_EPROTO);

    /* Compare: bad target, bad result, mismatched member. */
    cmp = (struct w){.n = 0};
    w_uint(&cmp, 2, 5);
    w = (struct w){.n = 0};
    w_msg(&w, 1, &cmp);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "target"));
    cmp = (struct w){.n = 0};
    w_uint(&cmp, 1, 4);
    w = (struct w){.n = 0};
    w_msg(&w, 1, &cmp);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, NULL, err), BS_EPROTO);
    cmp = (struct w){.n = 0};
    w_uint(&cmp, 2, BS_SHARD_CMP_VERSION);
    w_bytes(&cmp, 7, "v", 1); /* value with target VERSION */
    w = (struct w){.n = 0};
    w_msg(&w, 1, &cmp);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "VERSION"));
    /* The last member wins, as in a oneof: value then mod with MOD. */
    cmp = (struct w){.n = 0};
    w_uint(&cmp, 2, BS_SHARD_CMP_MOD);
    w_bytes(&cmp, 7, "v", 1);
    w_uint(&cmp, 6, 9);
    w = (struct w){.n = 0};
    w_msg(&w, 1, &cmp);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, NULL, err), 0);

    /* RequestOp without a request; a nested Txn. */
    op = (struct w){.n = 0};
    w = (struct w){.n = 0};
    w_msg(&w, 2, &op);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, NULL, err), BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "no request"));
    {
        struct w inner = {.n = 0};

        op = (struct w){.n = 0};
        w_msg(&op, 4, &inner);
        w = (struct w){.n = 0};
        w_msg(&w, 3, &op);
        ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, NULL, err), BS_ENOTIMPL);
        ck_assert_ptr_nonnull(strstr(err, "nested"));
    }
    /* A member switch inside one RequestOp: the range replaces the put. */
    put = (struct w){.n = 0};
    w_bytes(&put, 1, "pk", 2);
    op = (struct w){.n = 0};
    w_msg(&op, 2, &put);
    {
        struct w range = {.n = 0};
        struct bs_shard_cmd c;

        w_bytes(&range, 1, "rk", 2);
        w_msg(&op, 1, &range);
        w = (struct w){.n = 0};
        w_msg(&w, 2, &op);
        ck_assert_int_eq(
            bs_rpc_kv_req_decode(BS_SHARD_CMD_TXN, w.b, w.n, NULL, &c, err), 0);
        ck_assert_uint_eq(c.u.txn.n_success, 1);
        ck_assert_uint_eq(c.u.txn.success[0].type, BS_SHARD_CMD_RANGE);
        ck_assert(bs_test_bytes_eq(c.u.txn.success[0].u.range.key,
                                   c.u.txn.success[0].u.range.key_len, "rk",
                                   2));
        bs_rpc_kv_req_free(&c);
    }

    /* Too many compares / ops. */
    bs_rpc_limits_default(&lim);
    lim.max_txn_ops = 2;
    cmp = (struct w){.n = 0};
    op = (struct w){.n = 0};
    w_msg(&op, 2, &put);
    w = (struct w){.n = 0};
    for (int i = 0; i < 3; i++)
        w_msg(&w, 1, &cmp);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, &lim, err), BS_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "compares"));
    w = (struct w){.n = 0};
    for (int i = 0; i < 2; i++)
        w_msg(&w, 1, &cmp);
    for (int i = 0; i < 2; i++)
        w_msg(&w, 2, &op);
    for (int i = 0; i < 2; i++)
        w_msg(&w, 3, &op);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, &lim, err), 0);
    w_msg(&w, 3, &op);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, &lim, err), BS_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "failure"));

    /* Whole message too big; a type with no request. */
    lim.max_message = 3;
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_TXN, &w, &lim, err), BS_ETOOBIG);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_SPLIT, &w, NULL, err), BS_EINVAL);

    /* Unknown fields are skipped (a newer client's). */
    w = (struct w){.n = 0};
    w_bytes(&w, 1, "k", 1);
    w_uint(&w, 99, 1);
    w_bytes(&w, 100, "zz", 2);
    ck_assert_int_eq(dec_req(BS_SHARD_CMD_PUT, &w, NULL, err), 0);
}
END_TEST

/* ----------------------------------------------------- etcd responses */

static struct bs_shard_kv sample_kvs[3];

static void fill_kvs(void)
{
    static uint8_t k0[] = "alpha", v0[] = "one", k1[] = "beta", k2[] = "gamma",
                   v2[] = "\0\1\2";

    memset(sample_kvs, 0, sizeof sample_kvs);
    sample_kvs[0] = (struct bs_shard_kv){k0, 5, v0, 3, 2, 5, 3, 0};
    sample_kvs[1] = (struct bs_shard_kv){k1, 4, NULL, 0, 7, 7, 1, -9};
    sample_kvs[2] = (struct bs_shard_kv){k2, 5, v2, 3, INT64_MAX, 1, 1, 4};
}

static struct bs_shard_op_resp sample_ops[4];

static struct bs_shard_resp sample_resp(uint8_t type)
{
    struct bs_shard_resp r;

    fill_kvs();
    bs_shard_resp_init(&r);
    r.type = type;
    r.revision = 1234;
    r.epoch.version = 3; /* not etcd's */
    switch (type) {
    case BS_SHARD_CMD_PUT:
        r.op.type = type;
        r.op.kvs = sample_kvs;
        r.op.n_kvs = 1;
        break;
    case BS_SHARD_CMD_DELETE_RANGE:
        r.op.type = type;
        r.op.kvs = sample_kvs;
        r.op.n_kvs = 3;
        r.op.deleted = 3;
        break;
    case BS_SHARD_CMD_RANGE:
        r.op.type = type;
        r.op.kvs = sample_kvs;
        r.op.n_kvs = 3;
        r.op.count = 10;
        r.op.more = true;
        break;
    case BS_SHARD_CMD_TXN:
        memset(sample_ops, 0, sizeof sample_ops);
        sample_ops[0] =
            (struct bs_shard_op_resp){BS_SHARD_CMD_PUT, sample_kvs, 1, 0, 0, 0};
        sample_ops[1] =
            (struct bs_shard_op_resp){BS_SHARD_CMD_PUT, NULL, 0, 0, 0, 0};
        sample_ops[2] = (struct bs_shard_op_resp){
            BS_SHARD_CMD_RANGE, sample_kvs + 1, 2, 0, 2, true};
        sample_ops[3] = (struct bs_shard_op_resp){
            BS_SHARD_CMD_DELETE_RANGE, sample_kvs, 2, 2, 0, 0};
        r.succeeded = true;
        r.ops = sample_ops;
        r.n_ops = 4;
        break;
    }
    return r;
}

static void check_op_resp_eq(const struct bs_shard_op_resp *a,
                             const struct bs_shard_op_resp *b)
{
    ck_assert_uint_eq(a->type, b->type);
    ck_assert_uint_eq(a->n_kvs, b->n_kvs);
    for (size_t i = 0; i < a->n_kvs; i++) {
        const struct bs_shard_kv *x = &a->kvs[i], *y = &b->kvs[i];

        ck_assert(bs_test_bytes_eq(x->key, x->key_len, y->key, y->key_len));
        ck_assert(
            bs_test_bytes_eq(x->value, x->value_len, y->value, y->value_len));
        ck_assert_int_eq(x->create_revision, y->create_revision);
        ck_assert_int_eq(x->mod_revision, y->mod_revision);
        ck_assert_int_eq(x->version, y->version);
        ck_assert_int_eq(x->lease, y->lease);
    }
    ck_assert_int_eq(a->deleted, b->deleted);
    ck_assert_int_eq(a->count, b->count);
    ck_assert_int_eq(a->more, b->more);
}

START_TEST(test_resp_round_trip)
{
    uint8_t type = req_types[_i];
    struct bs_shard_resp r = sample_resp(type), d;
    struct bs_rpc_header h = {11, 22, 999, 33}, hd;
    uint8_t *buf, *buf2;
    size_t len, len2;
    char err[BS_RPC_ERRMSG_LEN];

    ck_assert_int_eq(bs_rpc_kv_resp_encode(&h, &r, &buf, &len, err), 0);
    ck_assert_int_eq(bs_rpc_kv_resp_decode(type, buf, len, NULL, &hd, &d, err),
                     0);
    ck_assert_uint_eq(hd.cluster_id, 11);
    ck_assert_uint_eq(hd.member_id, 22);
    ck_assert_int_eq(hd.revision, 1234); /* the response's */
    ck_assert_uint_eq(hd.raft_term, 33);
    ck_assert_uint_eq(d.type, type);
    ck_assert_int_eq(d.revision, 1234);
    if (type == BS_SHARD_CMD_TXN) {
        ck_assert_int_eq(d.succeeded, 1);
        ck_assert_uint_eq(d.n_ops, r.n_ops);
        for (size_t i = 0; i < r.n_ops; i++)
            check_op_resp_eq(&r.ops[i], &d.ops[i]);
    } else {
        check_op_resp_eq(&r.op, &d.op);
    }
    ck_assert_int_eq(bs_rpc_kv_resp_encode(&h, &d, &buf2, &len2, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, buf2, len2));
    free(buf2);
    bs_shard_resp_free(&d);
    free(buf);

    /* Without key-values (a put without prev_kv, an empty range). */
    r.op.n_kvs = 0;
    r.n_ops = 0;
    ck_assert_int_eq(bs_rpc_kv_resp_encode(&h, &r, &buf, &len, err), 0);
    ck_assert_int_eq(bs_rpc_kv_resp_decode(type, buf, len, NULL, NULL, &d, err),
                     0);
    ck_assert_uint_eq(d.op.n_kvs, 0);
    ck_assert_ptr_null(d.op.kvs);
    ck_assert_uint_eq(d.n_ops, 0);
    bs_shard_resp_free(&d);
    free(buf);

    /* A refused command is a status, not a response. */
    r.err = BS_ESTALE;
    ck_assert_int_eq(bs_rpc_kv_resp_encode(&h, &r, &buf, &len, err), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "BS_ESTALE"));
}
END_TEST

START_TEST(test_resp_decode_refuses)
{
    struct bs_shard_resp r = sample_resp(BS_SHARD_CMD_RANGE), d;
    struct bs_rpc_header h = {1, 2, 3, 4};
    struct bs_rpc_limits lim;
    uint8_t *buf;
    size_t len;
    char err[BS_RPC_ERRMSG_LEN];
    struct w w, op;

    ck_assert_int_eq(bs_rpc_kv_resp_encode(&h, &r, &buf, &len, err), 0);
    bs_rpc_limits_default(&lim);
    lim.max_kvs = 2;
    ck_assert_int_eq(bs_rpc_kv_resp_decode(BS_SHARD_CMD_RANGE, buf, len, &lim,
                                           NULL, &d, err),
                     BS_ETOOBIG);
    ck_assert_ptr_null(d.op.kvs);
    ck_assert_uint_eq(d.type, 0);
    lim.max_kvs = 3;
    lim.max_key = 4; /* "alpha" and "gamma" are 5 */
    ck_assert_int_eq(bs_rpc_kv_resp_decode(BS_SHARD_CMD_RANGE, buf, len, &lim,
                                           NULL, &d, err),
                     BS_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "KeyValue.key"));
    free(buf);

    /* Txn: a response op without a member; a nested Txn response. */
    op = (struct w){.n = 0};
    w = (struct w){.n = 0};
    w_msg(&w, 3, &op);
    ck_assert_int_eq(
        bs_rpc_kv_resp_decode(BS_SHARD_CMD_TXN, w.b, w.n, NULL, NULL, &d, err),
        BS_EPROTO);
    {
        struct w inner = {.n = 0};

        op = (struct w){.n = 0};
        w_msg(&op, 4, &inner);
        w = (struct w){.n = 0};
        w_msg(&w, 3, &op);
        ck_assert_int_eq(bs_rpc_kv_resp_decode(BS_SHARD_CMD_TXN, w.b, w.n, NULL,
                                               NULL, &d, err),
                         BS_ENOTIMPL);
    }
    /* A member switch: the put (with prev_kv) is replaced by a range. */
    {
        struct w kv = {.n = 0}, put = {.n = 0}, range = {.n = 0};

        w_bytes(&kv, 1, "pk", 2);
        w_bytes(&kv, 5, "pv", 2);
        w_msg(&put, 2, &kv);
        w_uint(&range, 4, 5);
        op = (struct w){.n = 0};
        w_msg(&op, 2, &put);
        w_msg(&op, 1, &range);
        w = (struct w){.n = 0};
        w_msg(&w, 3, &op);
        ck_assert_int_eq(bs_rpc_kv_resp_decode(BS_SHARD_CMD_TXN, w.b, w.n, NULL,
                                               NULL, &d, err),
                         0);
        ck_assert_uint_eq(d.n_ops, 1);
        ck_assert_uint_eq(d.ops[0].type, BS_SHARD_CMD_RANGE);
        ck_assert_uint_eq(d.ops[0].n_kvs, 0);
        ck_assert_int_eq(d.ops[0].count, 5);
        bs_shard_resp_free(&d);
    }
    ck_assert_int_eq(bs_rpc_kv_resp_decode(BS_SHARD_CMD_SPLIT, w.b, w.n, NULL,
                                           NULL, &d, err),
                     BS_EINVAL);
}
END_TEST

/* ------------------------------------------------------------- fuzzing */

/* Applies 1-4 random mutations of src into dst (cap bytes). */
static size_t mutate(uint64_t *s, const uint8_t *src, size_t n, uint8_t *dst,
                     size_t cap)
{
    size_t len = n < cap ? n : cap;
    int rounds = 1 + (int)rng_below(s, 4);

    memcpy(dst, src, len);
    for (int r = 0; r < rounds; r++) {
        size_t at = len ? rng_below(s, len) : 0;

        switch (rng_below(s, 8)) {
        case 0: /* flip a bit */
            if (len)
                dst[at] ^= (uint8_t)(1u << rng_below(s, 8));
            break;
        case 1: /* a random byte */
            if (len)
                dst[at] = (uint8_t)rng_next(s);
            break;
        case 2: /* truncate */
            len = at;
            break;
        case 3: /* delete a run */ {
            size_t k = rng_below(s, 8);

            if (at + k > len)
                k = len - at;
            memmove(dst + at, dst + at + k, len - at - k);
            len -= k;
            break;
        }
        case 4: /* insert random bytes */ {
            size_t k = 1 + rng_below(s, 4);

            if (len + k > cap)
                break;
            memmove(dst + at + k, dst + at, len - at);
            for (size_t i = 0; i < k; i++)
                dst[at + i] = (uint8_t)rng_next(s);
            len += k;
            break;
        }
        case 5: /* duplicate a run (repeated fields, merges) */ {
            size_t k = rng_below(s, 32);

            if (at + k > len)
                k = len - at;
            if (len + k > cap)
                break;
            memmove(dst + at + k, dst + at, len - at);
            len += k;
            break;
        }
        case 6: /* varint continuation / huge lengths */
            if (len)
                dst[at] = rng_below(s, 2) ? 0xff : 0x80;
            break;
        default: /* a small value (often a tag or length) */
            if (len)
                dst[at] = (uint8_t)rng_below(s, 0x40);
            break;
        }
    }
    return len;
}

enum fuzz_target {
    FZ_BATCH,
    FZ_CHUNK,
    FZ_REQ, /* + type */
    FZ_RESP,
};

/* Decodes buf with the decoder of target; on success the result must
 * encode again (it is inside every domain). Returns the code. */
static int fuzz_one(int target, uint8_t type, const uint8_t *buf, size_t len)
{
    char err[BS_RPC_ERRMSG_LEN];
    uint8_t *out = NULL;
    size_t olen;
    int rc;

    err[0] = '\0';
    switch (target) {
    case FZ_BATCH: {
        struct bs_rpc_raft_batch b;

        rc = bs_rpc_raft_batch_decode(buf, len, NULL, &b, err);
        if (rc == 0) {
            for (size_t i = 0; i < b.n_envs; i++)
                for (size_t j = 0; j < b.envs[i].msg.n_entries; j++)
                    ck_assert(inside(b.envs[i].msg.entries[j].data,
                                     b.envs[i].msg.entries[j].len, buf, len));
            ck_assert_int_eq(bs_rpc_raft_batch_encode(&b.hdr, b.envs, b.n_envs,
                                                      &out, &olen, err),
                             0);
            bs_rpc_raft_batch_free(&b);
        }
        break;
    }
    case FZ_CHUNK: {
        struct bs_rpc_snap_chunk c;

        rc = bs_rpc_snap_chunk_decode(buf, len, NULL, &c, err);
        if (rc == 0) {
            ck_assert_int_eq(bs_rpc_snap_chunk_encode(&c, &out, &olen, err), 0);
            bs_rpc_snap_chunk_free(&c);
        }
        break;
    }
    case FZ_REQ: {
        struct bs_shard_cmd c;

        rc = bs_rpc_kv_req_decode(type, buf, len, NULL, &c, err);
        if (rc == 0) {
            ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &out, &olen, err), 0);
            bs_rpc_kv_req_free(&c);
        }
        break;
    }
    default: {
        struct bs_shard_resp r;
        struct bs_rpc_header h;

        rc = bs_rpc_kv_resp_decode(type, buf, len, NULL, &h, &r, err);
        if (rc == 0) {
            ck_assert_int_eq(bs_rpc_kv_resp_encode(&h, &r, &out, &olen, err),
                             0);
            bs_shard_resp_free(&r);
        } else {
            ck_assert_ptr_null(r.ops);
            ck_assert_ptr_null(r.op.kvs);
        }
        break;
    }
    }
    free(out);
    ck_assert_msg(rc == 0 || rc == BS_EPROTO || rc == BS_ETOOBIG ||
                      rc == BS_ENOTIMPL,
                  "unexpected %s: %s", bs_err_name(rc), err);
    ck_assert_msg(rc == 0 || err[0] != '\0', "%s without a message",
                  bs_err_name(rc));
    return rc;
}

START_TEST(test_fuzz)
{
    struct arena a = {0};
    const char *env_seed = getenv("BS_RPC_FUZZ_SEED");
    const char *env_rounds = getenv("BS_RPC_FUZZ_ROUNDS");
    uint64_t seed = env_seed ? strtoull(env_seed, NULL, 0) : 0xfeed;
    long rounds = env_rounds ? atol(env_rounds) : 3000;
    struct {
        int target;
        uint8_t type;
        uint8_t *buf;
        size_t len;
    } seeds[10];
    size_t n_seeds = 0;
    size_t accepted = 0, refused = 0;
    char err[BS_RPC_ERRMSG_LEN];

    /* Valid encodings to start from. */
    {
        struct bs_eng_envelope envs[3];
        struct bs_rpc_batch_hdr hdr = {1, 2, 3};

        for (int i = 0; i < 3; i++)
            rand_env(&a, &seed, &envs[i]);
        /* small entries, so that mutations hit structure, not data */
        for (int i = 0; i < 3; i++)
            for (size_t j = 0; j < envs[i].msg.n_entries; j++)
                if (envs[i].msg.entries[j].len > 20)
                    envs[i].msg.entries[j].len = 20;
        envs[0].msg.snapshot.meta.conf.n_voters = 3;
        envs[0].msg.snapshot.meta.index = 5;
        ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, envs, 3,
                                                  &seeds[n_seeds].buf,
                                                  &seeds[n_seeds].len, err),
                         0);
        seeds[n_seeds++].target = FZ_BATCH;
    }
    {
        struct bs_rpc_snap_chunk c;

        memset(&c, 0, sizeof c);
        c.shard_id = 9;
        c.has_msg = true;
        rand_env(&a, &seed, &c.msg);
        c.msg.msg.n_entries = 0;
        c.msg.msg.snapshot.len = 0;
        c.file = "000001.sst";
        c.file_len = 10;
        c.data = B("some sst bytes");
        c.len = 14;
        ck_assert_int_eq(bs_rpc_snap_chunk_encode(&c, &seeds[n_seeds].buf,
                                                  &seeds[n_seeds].len, err),
                         0);
        seeds[n_seeds++].target = FZ_CHUNK;
    }
    for (int i = 0; i < 4; i++) {
        struct bs_shard_cmd c = sample_cmd(req_types[i]);
        struct bs_shard_resp r = sample_resp(req_types[i]);
        struct bs_rpc_header h = {1, 2, 3, 4};

        seeds[n_seeds].type = req_types[i];
        seeds[n_seeds].target = FZ_REQ;
        ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &seeds[n_seeds].buf,
                                              &seeds[n_seeds].len, err),
                         0);
        n_seeds++;
        seeds[n_seeds].type = req_types[i];
        seeds[n_seeds].target = FZ_RESP;
        ck_assert_int_eq(bs_rpc_kv_resp_encode(&h, &r, &seeds[n_seeds].buf,
                                               &seeds[n_seeds].len, err),
                         0);
        n_seeds++;
    }

    for (size_t k = 0; k < n_seeds; k++) {
        size_t cap = seeds[k].len + 64;
        uint8_t *tmp = malloc(cap);

        ck_assert_int_eq(fuzz_one(seeds[k].target, seeds[k].type, seeds[k].buf,
                                  seeds[k].len),
                         0);
        /* Every prefix. */
        for (size_t n = 0; n < seeds[k].len; n++) {
            uint8_t *p = malloc(n ? n : 1);

            memcpy(p, seeds[k].buf, n);
            fuzz_one(seeds[k].target, seeds[k].type, p, n);
            free(p);
        }
        /* Random mutations, each in a buffer of exactly its size. */
        for (long i = 0; i < rounds; i++) {
            size_t n = mutate(&seed, seeds[k].buf, seeds[k].len, tmp, cap);
            uint8_t *p = malloc(n ? n : 1);

            memcpy(p, tmp, n);
            if (fuzz_one(seeds[k].target, seeds[k].type, p, n) == 0)
                accepted++;
            else
                refused++;
            free(p);
        }
        free(tmp);
        free(seeds[k].buf);
    }
    /* The mutations exercised both outcomes. */
    ck_assert_uint_gt(accepted, 1000);
    ck_assert_uint_gt(refused, 1000);
    arena_free(&a);
}
END_TEST

/* --------------------------------------------------- wire compatibility */

/* Bytes computed by hand from etcd v3.4's field numbers and proto3's
 * encoding rules: the codec must produce exactly these. */
START_TEST(test_wire_golden)
{
    struct bs_shard_cmd c;
    struct bs_shard_compare cmp;
    struct bs_shard_op op;
    struct bs_shard_resp r;
    struct bs_shard_kv kv;
    struct bs_rpc_header h = {1, 2, 0, 4};
    uint8_t *buf;
    size_t len;
    char err[BS_RPC_ERRMSG_LEN];
    /* PutRequest{key:"foo" value:"bar" lease:7 prev_kv:true} */
    static const uint8_t put[] = {0x0a, 0x03, 'f', 'o',  'o',  0x12, 0x03,
                                  'b',  'a',  'r', 0x18, 0x07, 0x20, 0x01};
    /* RangeRequest{key:"a" range_end:"b" limit:10 revision:0
     * sort_order:DESCEND sort_target:MOD serializable:true keys_only:false
     * count_only:true min_mod_revision:1 max_mod_revision:2
     * min_create_revision:3 max_create_revision:300} */
    static const uint8_t range[] = {0x0a, 0x01, 'a',  0x12, 0x01, 'b',  0x18,
                                    0x0a, 0x28, 0x02, 0x30, 0x03, 0x38, 0x01,
                                    0x48, 0x01, 0x50, 0x01, 0x58, 0x02, 0x60,
                                    0x03, 0x68, 0xac, 0x02};
    /* TxnRequest{compare:[{result:EQUAL target:VERSION key:"k" version:0}]
     * success:[{request_put:{key:"k" value:"v"}}]} */
    static const uint8_t txn[] = {0x0a, 0x05, 0x1a, 0x01, 'k',  0x20,
                                  0x00, 0x12, 0x08, 0x12, 0x06, 0x0a,
                                  0x01, 'k',  0x12, 0x01, 'v'};
    /* RangeResponse{header:{cluster_id:1 member_id:2 revision:3
     * raft_term:4} kvs:[{key:"a" create_revision:2 mod_revision:3
     * version:1 value:"x"}] count:1} */
    static const uint8_t rresp[] = {0x0a, 0x08, 0x08, 0x01, 0x10, 0x02, 0x18,
                                    0x03, 0x20, 0x04, 0x12, 0x0c, 0x0a, 0x01,
                                    'a',  0x10, 0x02, 0x18, 0x03, 0x20, 0x01,
                                    0x2a, 0x01, 'x',  0x20, 0x01};
    /* a negative int64 is a 10-byte varint: PutRequest{lease:-1} */
    static const uint8_t neg[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0x01};

    memset(&c, 0, sizeof c);
    c.type = BS_SHARD_CMD_PUT;
    c.u.put.key = B("foo");
    c.u.put.key_len = 3;
    c.u.put.value = B("bar");
    c.u.put.value_len = 3;
    c.u.put.lease = 7;
    c.u.put.prev_kv = true;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, put, sizeof put));
    free(buf);

    memset(&c, 0, sizeof c);
    c.type = BS_SHARD_CMD_PUT;
    c.u.put.lease = -1;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, neg, sizeof neg));
    free(buf);

    memset(&c, 0, sizeof c);
    c.type = BS_SHARD_CMD_RANGE;
    c.u.range.key = B("a");
    c.u.range.key_len = 1;
    c.u.range.range_end = B("b");
    c.u.range.range_end_len = 1;
    c.u.range.limit = 10;
    c.u.range.sort_order = BS_SHARD_SORT_DESCEND;
    c.u.range.sort_target = BS_SHARD_SORT_MOD;
    c.u.range.serializable = true;
    c.u.range.count_only = true;
    c.u.range.min_mod_revision = 1;
    c.u.range.max_mod_revision = 2;
    c.u.range.min_create_revision = 3;
    c.u.range.max_create_revision = 300;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, range, sizeof range));
    free(buf);
    /* ... and the golden bytes decode to the same request. */
    {
        struct bs_shard_cmd d;

        ck_assert_int_eq(bs_rpc_kv_req_decode(BS_SHARD_CMD_RANGE, range,
                                              sizeof range, NULL, &d, err),
                         0);
        check_cmd_eq(&c, &d);
    }

    memset(&c, 0, sizeof c);
    memset(&cmp, 0, sizeof cmp);
    memset(&op, 0, sizeof op);
    cmp.key = B("k");
    cmp.key_len = 1;
    op.type = BS_SHARD_CMD_PUT;
    op.u.put.key = B("k");
    op.u.put.key_len = 1;
    op.u.put.value = B("v");
    op.u.put.value_len = 1;
    c.type = BS_SHARD_CMD_TXN;
    c.u.txn.compares = &cmp;
    c.u.txn.n_compares = 1;
    c.u.txn.success = &op;
    c.u.txn.n_success = 1;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, txn, sizeof txn));
    free(buf);

    bs_shard_resp_init(&r);
    memset(&kv, 0, sizeof kv);
    kv.key = (uint8_t *)"a";
    kv.key_len = 1;
    kv.value = (uint8_t *)"x";
    kv.value_len = 1;
    kv.create_revision = 2;
    kv.mod_revision = 3;
    kv.version = 1;
    r.type = BS_SHARD_CMD_RANGE;
    r.revision = 3;
    r.op.kvs = &kv;
    r.op.n_kvs = 1;
    r.op.count = 1;
    ck_assert_int_eq(bs_rpc_kv_resp_encode(&h, &r, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, rresp, sizeof rresp));
    free(buf);
}
END_TEST

START_TEST(test_wire_protoc)
{
    struct bs_shard_cmd c = sample_cmd(BS_SHARD_CMD_RANGE), d;
    uint8_t *buf;
    size_t len;
    char err[BS_RPC_ERRMSG_LEN];
    char *text;

    /* Our bytes, protoc's decoder. */
    c.u.range.key = B("apple");
    c.u.range.key_len = 5;
    c.u.range.range_end = B("apples");
    c.u.range.range_end_len = 6;
    c.u.range.limit = 50;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), 0);
    text = bs_test_protoc("decode", "etcdserverpb.RangeRequest", "rpc.proto",
                          buf, len, NULL);
    ck_assert_str_eq(text, "key: \"apple\"\n"
                           "range_end: \"apples\"\n"
                           "limit: 50\n"
                           "revision: -5\n"
                           "sort_order: DESCEND\n"
                           "sort_target: VALUE\n"
                           "serializable: true\n"
                           "keys_only: true\n"
                           "count_only: true\n"
                           "min_mod_revision: 1\n"
                           "max_mod_revision: -2\n"
                           "min_create_revision: 3\n"
                           "max_create_revision: 1099511627776\n");
    free(text);
    free(buf);

    c = sample_cmd(BS_SHARD_CMD_PUT);
    c.u.put.key = B("k");
    c.u.put.key_len = 1;
    ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), 0);
    text = bs_test_protoc("decode", "etcdserverpb.PutRequest", "rpc.proto", buf,
                          len, NULL);
    ck_assert_str_eq(text, "key: \"k\"\n"
                           "value: \"value\"\n"
                           "lease: -9223372036854775808\n"
                           "prev_kv: true\n"
                           "ignore_value: true\n"
                           "ignore_lease: true\n");
    free(text);
    free(buf);

    /* A Txn with a zero version compare: the oneof member is present. */
    {
        struct bs_shard_compare cmp;
        struct bs_shard_op op;

        memset(&c, 0, sizeof c);
        memset(&cmp, 0, sizeof cmp);
        memset(&op, 0, sizeof op);
        cmp.key = B("k");
        cmp.key_len = 1;
        cmp.target = BS_SHARD_CMP_VERSION;
        cmp.result = BS_SHARD_CMP_GREATER;
        op.type = BS_SHARD_CMD_DELETE_RANGE;
        op.u.del.key = B("k");
        op.u.del.key_len = 1;
        c.type = BS_SHARD_CMD_TXN;
        c.u.txn.compares = &cmp;
        c.u.txn.n_compares = 1;
        c.u.txn.failure = &op;
        c.u.txn.n_failure = 1;
        ck_assert_int_eq(bs_rpc_kv_req_encode(&c, &buf, &len, err), 0);
        text = bs_test_protoc("decode", "etcdserverpb.TxnRequest", "rpc.proto",
                              buf, len, NULL);
        ck_assert_str_eq(text, "compare {\n"
                               "  result: GREATER\n"
                               "  key: \"k\"\n"
                               "  version: 0\n"
                               "}\n"
                               "failure {\n"
                               "  request_delete_range {\n"
                               "    key: \"k\"\n"
                               "  }\n"
                               "}\n");
        free(text);
        free(buf);
    }

    /* protoc's bytes, our decoder. */
    {
        static const char txt[] =
            "compare { result: NOT_EQUAL target: VALUE key: \"a\" "
            "value: \"\" range_end: \"b\" }\n"
            "compare { target: MOD key: \"m\" mod_revision: -3 }\n"
            "success { request_range { key: \"r\" limit: 2 "
            "sort_order: ASCEND sort_target: CREATE } }\n"
            "failure { request_put { key: \"p\" value: \"q\" lease: 5 } }\n";
        uint8_t *pb =
            (uint8_t *)bs_test_protoc("encode", "etcdserverpb.TxnRequest",
                                      "rpc.proto", txt, sizeof txt - 1, &len);
        const struct bs_shard_txn_req *t = &d.u.txn;

        ck_assert_int_eq(
            bs_rpc_kv_req_decode(BS_SHARD_CMD_TXN, pb, len, NULL, &d, err), 0);
        ck_assert_uint_eq(t->n_compares, 2);
        ck_assert_uint_eq(t->compares[0].result, BS_SHARD_CMP_NOT_EQUAL);
        ck_assert_uint_eq(t->compares[0].target, BS_SHARD_CMP_VALUE);
        ck_assert(bs_test_bytes_eq(t->compares[0].key, t->compares[0].key_len,
                                   "a", 1));
        ck_assert_uint_eq(t->compares[0].value_len, 0);
        ck_assert(bs_test_bytes_eq(t->compares[0].range_end,
                                   t->compares[0].range_end_len, "b", 1));
        ck_assert_uint_eq(t->compares[1].target, BS_SHARD_CMP_MOD);
        ck_assert_int_eq(t->compares[1].number, -3);
        ck_assert_uint_eq(t->n_success, 1);
        ck_assert_uint_eq(t->success[0].type, BS_SHARD_CMD_RANGE);
        ck_assert_int_eq(t->success[0].u.range.limit, 2);
        ck_assert_uint_eq(t->success[0].u.range.sort_order,
                          BS_SHARD_SORT_ASCEND);
        ck_assert_uint_eq(t->success[0].u.range.sort_target,
                          BS_SHARD_SORT_CREATE);
        ck_assert_uint_eq(t->n_failure, 1);
        ck_assert_uint_eq(t->failure[0].type, BS_SHARD_CMD_PUT);
        ck_assert(bs_test_bytes_eq(t->failure[0].u.put.value,
                                   t->failure[0].u.put.value_len, "q", 1));
        ck_assert_int_eq(t->failure[0].u.put.lease, 5);
        bs_rpc_kv_req_free(&d);
        free(pb);
    }

    /* A Raft batch: packed configuration sets both ways. */
    {
        struct bs_eng_envelope e;
        struct bs_raft_entry x = {3, 4, 1, 2, (uint8_t *)"hi"};
        struct bs_rpc_batch_hdr hdr = {5, 6, 7};
        struct bs_rpc_raft_batch b;
        uint8_t *pb;
        static const char btxt[] = "envelopes { type: 6 snapshot { conf { "
                                   "learners: 4 learners: 5 } } }";

        memset(&e, 0, sizeof e);
        e.kind = BS_ENG_ENV_RAFT;
        e.shard_id = 8;
        e.msg.type = BS_RAFT_MSG_SNAP;
        e.msg.to = 9;
        e.msg.entries = &x;
        e.msg.n_entries = 1;
        e.msg.snapshot.meta.index = 10;
        e.msg.snapshot.meta.conf.n_voters = 2;
        e.msg.snapshot.meta.conf.voters[0] = 1;
        e.msg.snapshot.meta.conf.voters[1] = 300;
        ck_assert_int_eq(bs_rpc_raft_batch_encode(&hdr, &e, 1, &buf, &len, err),
                         0);
        text = bs_test_protoc("decode", "basalt.raft.RaftBatch", "raft.proto",
                              buf, len, NULL);
        ck_assert_str_eq(text, "cluster_id: 5\n"
                               "from_node: 6\n"
                               "to_node: 7\n"
                               "envelopes {\n"
                               "  shard_id: 8\n"
                               "  type: 12\n"
                               "  to: 9\n"
                               "  entries {\n"
                               "    term: 3\n"
                               "    index: 4\n"
                               "    type: 1\n"
                               "    data: \"hi\"\n"
                               "  }\n"
                               "  snapshot {\n"
                               "    index: 10\n"
                               "    conf {\n"
                               "      voters: 1\n"
                               "      voters: 300\n"
                               "    }\n"
                               "  }\n"
                               "}\n");
        free(text);
        pb = (uint8_t *)bs_test_protoc("encode", "basalt.raft.RaftBatch",
                                       "raft.proto", btxt, strlen(btxt), &len);
        ck_assert_int_eq(bs_rpc_raft_batch_decode(pb, len, NULL, &b, err), 0);
        ck_assert_uint_eq(b.n_envs, 1);
        ck_assert_uint_eq(b.envs[0].msg.type, BS_RAFT_MSG_APP);
        ck_assert_uint_eq(b.envs[0].msg.snapshot.meta.conf.n_learners, 2);
        ck_assert_uint_eq(b.envs[0].msg.snapshot.meta.conf.learners[1], 5);
        bs_rpc_raft_batch_free(&b);
        free(pb);
        free(buf);
    }
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("rpc_codec");
    TCase *tc = tcase_create("codec");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_batch_round_trip);
    tcase_add_test(tc, test_batch_encode_refuses);
    tcase_add_test(tc, test_batch_decode_refuses);
    tcase_add_test(tc, test_batch_limits);
    tcase_add_test(tc, test_chunk_round_trip);
    tcase_add_test(tc, test_chunk_file_names);
    tcase_add_loop_test(tc, test_req_round_trip, 0, 4);
    tcase_add_test(tc, test_req_encode_refuses);
    tcase_add_test(tc, test_req_decode_refuses);
    tcase_add_loop_test(tc, test_resp_round_trip, 0, 4);
    tcase_add_test(tc, test_resp_decode_refuses);
    tcase_add_test(tc, test_fuzz);
    tcase_add_test(tc, test_wire_golden);
    tcase_add_test(tc, test_wire_protoc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
