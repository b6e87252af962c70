/*
 * test_stats.c - unit tests of placement/stats.c: what the placement
 * leader remembers of the heartbeats (node stats and heard times, shard
 * reports replaced only by a term at least as new, hot tracking, reset),
 * a table of many shards, and the heartbeat byte codec: round trips of
 * random heartbeats, every truncation and trailing bytes refused, counts
 * over their limits refused before allocating, and random corruption
 * either refused or decoded to bytes that re-encode identically.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static struct bs_pd_shard_stat shard_stat(uint64_t id, uint64_t term,
                                          uint64_t version, uint64_t qps)
{
    struct bs_pd_shard_stat s;
    memset(&s, 0, sizeof(s));
    s.shard_id = id;
    s.leader = BS_ENG_REPLICA_ID(1, id + 1);
    s.term = term;
    s.conf_ver = 1;
    s.version = version;
    s.commit = 10 * term;
    s.applied = 10 * term;
    s.size_bytes = 1000 * id;
    s.read_qps = qps / 2;
    s.write_qps = qps - qps / 2;
    s.n_replicas = 1;
    s.replicas[0].replica_id = s.leader;
    s.replicas[0].node_id = 1;
    s.replicas[0].in_sync = true;
    return s;
}

static int update1(struct bs_pd_stats *st, uint64_t node,
                   const struct bs_pd_shard_stat *ss, uint64_t now,
                   uint64_t hot_qps)
{
    struct bs_pd_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.node.node_id = node;
    hb.n_shards = ss ? 1 : 0;
    hb.shards = ss;
    return bs_pd_stats_update(st, &hb, now, hot_qps);
}

static uint64_t hot_of(const struct bs_pd_stats *st, uint64_t shard)
{
    uint64_t hot = 12345;
    bs_pd_stats_shard(st, shard, NULL, &hot);
    return hot;
}

/* ------------------------------------------------------------- table */

START_TEST(test_update_and_lookup)
{
    struct bs_pd_stats *st = bs_pd_stats_create();
    ck_assert_ptr_nonnull(st);
    /* Nothing known, never reset. */
    ck_assert_uint_eq(bs_pd_stats_heard(st, 1), 0);
    ck_assert_ptr_null(bs_pd_stats_node(st, 1));
    uint64_t at = 7, hot = 7;
    ck_assert_ptr_null(bs_pd_stats_shard(st, 1, &at, &hot));
    ck_assert_uint_eq(at, 0);
    ck_assert_uint_eq(hot, 0);

    struct bs_pd_shard_stat ss[2] = {shard_stat(3, 1, 1, 10),
                                     shard_stat(0, 2, 1, 10)};
    struct bs_pd_heartbeat hb = {.n_shards = 2, .shards = ss};
    hb.node.node_id = 2;
    hb.node.capacity_bytes = 1 << 30;
    hb.node.replicas = 9;
    hb.node.leaders = 3;
    ck_assert_int_eq(bs_pd_stats_update(st, &hb, 100, 0), 0);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 2), 100);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 1), 0);
    const struct bs_pd_node_stat *ns = bs_pd_stats_node(st, 2);
    ck_assert_ptr_nonnull(ns);
    ck_assert_uint_eq(ns->capacity_bytes, 1 << 30);
    ck_assert_uint_eq(ns->replicas, 9);
    ck_assert_uint_eq(ns->leaders, 3);

    const struct bs_pd_shard_stat *s3 = bs_pd_stats_shard(st, 3, &at, &hot);
    ck_assert_ptr_nonnull(s3);
    ck_assert_uint_eq(at, 100);
    ck_assert_uint_eq(hot, 0);
    ck_assert_uint_eq(s3->size_bytes, 3000);
    ck_assert_uint_eq(s3->replicas[0].node_id, 1);
    ck_assert(s3->replicas[0].in_sync);
    /* Shard 0 (the placement group) is an ordinary key of the table. */
    ck_assert_ptr_nonnull(bs_pd_stats_shard(st, 0, NULL, NULL));
    ck_assert_uint_eq(bs_pd_stats_shard(st, 0, NULL, NULL)->term, 2);

    /* The heartbeat was copied: changing the caller's array changes
     * nothing. */
    ss[0].size_bytes = 1;
    ck_assert_uint_eq(bs_pd_stats_shard(st, 3, NULL, NULL)->size_bytes, 3000);

    /* Nodes in any order. */
    ck_assert_int_eq(update1(st, 9, NULL, 150, 0), 0);
    ck_assert_int_eq(update1(st, 1, NULL, 160, 0), 0);
    ck_assert_int_eq(update1(st, 5, NULL, 170, 0), 0);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 1), 160);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 2), 100);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 5), 170);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 9), 150);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 4), 0);
    ck_assert_uint_eq(bs_pd_stats_node(st, 2)->replicas, 9);
    bs_pd_stats_destroy(st);
    bs_pd_stats_destroy(NULL);
}
END_TEST

START_TEST(test_term_ordering)
{
    struct bs_pd_stats *st = bs_pd_stats_create();
    struct bs_pd_shard_stat s = shard_stat(5, 3, 1, 0);
    ck_assert_int_eq(update1(st, 1, &s, 100, 0), 0);

    /* A deposed leader's late report (older term): ignored, though its
     * node's own stat and heard time are taken. */
    struct bs_pd_shard_stat old = shard_stat(5, 2, 1, 0);
    old.size_bytes = 999;
    ck_assert_int_eq(update1(st, 2, &old, 200, 0), 0);
    uint64_t at;
    const struct bs_pd_shard_stat *got = bs_pd_stats_shard(st, 5, &at, NULL);
    ck_assert_uint_eq(got->term, 3);
    ck_assert_uint_eq(got->size_bytes, 5000);
    ck_assert_uint_eq(at, 100);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 2), 200);

    /* Same term: a refresh. */
    struct bs_pd_shard_stat same = shard_stat(5, 3, 1, 0);
    same.size_bytes = 7777;
    ck_assert_int_eq(update1(st, 1, &same, 300, 0), 0);
    got = bs_pd_stats_shard(st, 5, &at, NULL);
    ck_assert_uint_eq(got->size_bytes, 7777);
    ck_assert_uint_eq(at, 300);

    /* Newer term from another node. */
    struct bs_pd_shard_stat newer = shard_stat(5, 4, 1, 0);
    newer.leader = 42;
    ck_assert_int_eq(update1(st, 3, &newer, 400, 0), 0);
    got = bs_pd_stats_shard(st, 5, &at, NULL);
    ck_assert_uint_eq(got->term, 4);
    ck_assert_uint_eq(got->leader, 42);
    ck_assert_uint_eq(at, 400);

    /* And the old leader again: still ignored. */
    ck_assert_int_eq(update1(st, 1, &same, 500, 0), 0);
    ck_assert_uint_eq(bs_pd_stats_shard(st, 5, &at, NULL)->term, 4);
    ck_assert_uint_eq(at, 400);

    /* Duplicates inside one heartbeat: the term rule applies in order. */
    struct bs_pd_shard_stat two[3] = {
        shard_stat(6, 5, 1, 0), shard_stat(6, 4, 1, 0), shard_stat(6, 5, 1, 0)};
    two[0].keys = 1;
    two[1].keys = 2;
    two[2].keys = 3;
    struct bs_pd_heartbeat hb = {.n_shards = 3, .shards = two};
    hb.node.node_id = 1;
    ck_assert_int_eq(bs_pd_stats_update(st, &hb, 600, 0), 0);
    ck_assert_uint_eq(bs_pd_stats_shard(st, 6, NULL, NULL)->keys, 3);
    bs_pd_stats_destroy(st);
}
END_TEST

START_TEST(test_hot_tracking)
{
    struct bs_pd_stats *st = bs_pd_stats_create();
    const uint64_t hq = 100;
    struct bs_pd_shard_stat s = shard_stat(1, 1, 1, 50);
    ck_assert_int_eq(update1(st, 1, &s, 1000, hq), 0);
    ck_assert_uint_eq(hot_of(st, 1), 0);
    s = shard_stat(1, 1, 1, 100); /* at the threshold: not over it */
    ck_assert_int_eq(update1(st, 1, &s, 1500, hq), 0);
    ck_assert_uint_eq(hot_of(st, 1), 0);
    s = shard_stat(1, 1, 1, 150);
    ck_assert_int_eq(update1(st, 1, &s, 2000, hq), 0);
    ck_assert_uint_eq(hot_of(st, 1), 2000);
    s = shard_stat(1, 1, 1, 900);
    ck_assert_int_eq(update1(st, 1, &s, 3000, hq), 0);
    ck_assert_uint_eq(hot_of(st, 1), 2000);
    /* An ignored (older-term) report does not end the run. */
    struct bs_pd_shard_stat old = shard_stat(1, 0, 1, 0);
    ck_assert_int_eq(update1(st, 2, &old, 3500, hq), 0);
    ck_assert_uint_eq(hot_of(st, 1), 2000);
    /* A quiet report ends it; the next hot one starts a new run. */
    s = shard_stat(1, 1, 1, 10);
    ck_assert_int_eq(update1(st, 1, &s, 4000, hq), 0);
    ck_assert_uint_eq(hot_of(st, 1), 0);
    s = shard_stat(1, 1, 1, 200);
    ck_assert_int_eq(update1(st, 1, &s, 5000, hq), 0);
    ck_assert_uint_eq(hot_of(st, 1), 5000);
    /* A new version (the shard split) restarts the run. */
    s = shard_stat(1, 2, 2, 200);
    ck_assert_int_eq(update1(st, 1, &s, 6000, hq), 0);
    ck_assert_uint_eq(hot_of(st, 1), 6000);
    /* hot_qps 0: tracking off. */
    ck_assert_int_eq(update1(st, 1, &s, 7000, 0), 0);
    ck_assert_uint_eq(hot_of(st, 1), 0);
    /* A run starting at time 0 still reads as hot. */
    s = shard_stat(2, 1, 1, 200);
    ck_assert_int_eq(update1(st, 1, &s, 0, hq), 0);
    ck_assert_uint_eq(hot_of(st, 2), 1);
    /* qps that overflow when added saturate instead of wrapping. */
    s = shard_stat(3, 1, 1, 0);
    s.read_qps = UINT64_MAX;
    s.write_qps = 2;
    ck_assert_int_eq(update1(st, 1, &s, 10, hq), 0);
    ck_assert_uint_eq(hot_of(st, 3), 10);
    bs_pd_stats_destroy(st);
}
END_TEST

START_TEST(test_reset)
{
    struct bs_pd_stats *st = bs_pd_stats_create();
    struct bs_pd_shard_stat s = shard_stat(1, 1, 1, 500);
    ck_assert_int_eq(update1(st, 1, &s, 100, 10), 0);
    ck_assert_int_eq(update1(st, 2, NULL, 200, 10), 0);
    bs_pd_stats_reset(st, 5000);
    /* Every node, known or not, counts as heard at the reset. */
    ck_assert_uint_eq(bs_pd_stats_heard(st, 1), 5000);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 2), 5000);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 77), 5000);
    ck_assert_ptr_null(bs_pd_stats_node(st, 1));
    ck_assert_ptr_null(bs_pd_stats_shard(st, 1, NULL, NULL));
    /* Heard after the reset: its own time. */
    ck_assert_int_eq(update1(st, 1, &s, 6000, 10), 0);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 1), 6000);
    ck_assert_uint_eq(bs_pd_stats_heard(st, 2), 5000);
    ck_assert_uint_eq(hot_of(st, 1), 6000); /* a new run */
    bs_pd_stats_destroy(st);
}
END_TEST

/* Enough shards, in shuffled batches, to grow the table several times;
 * every one must be found with its latest report. */
START_TEST(test_many_shards)
{
    enum { N = 20000, BATCH = 700 };
    struct bs_pd_stats *st = bs_pd_stats_create();
    uint64_t *ids = malloc(N * sizeof(*ids));
    struct bs_pd_shard_stat *b = malloc(BATCH * sizeof(*b));
    for (uint64_t i = 0; i < N; i++)
        ids[i] = i * 7 + (i % 3 ? 0 : (uint64_t)1 << 40); /* spread */
    uint64_t seed = 99;
    for (size_t i = N; i > 1; i--) {
        size_t j = th_rand(&seed) % i;
        uint64_t t = ids[i - 1];
        ids[i - 1] = ids[j];
        ids[j] = t;
    }
    for (int round = 1; round <= 2; round++) {
        for (size_t i = 0; i < N; i += BATCH) {
            size_t k = N - i < BATCH ? N - i : BATCH;
            for (size_t j = 0; j < k; j++)
                b[j] = shard_stat(ids[i + j], (uint64_t)round, 1, 0);
            struct bs_pd_heartbeat hb = {.n_shards = (uint32_t)k, .shards = b};
            hb.node.node_id = 1 + i / BATCH;
            ck_assert_int_eq(
                bs_pd_stats_update(st, &hb, 10 * (uint64_t)round, 0), 0);
        }
    }
    for (size_t i = 0; i < N; i++) {
        uint64_t at;
        const struct bs_pd_shard_stat *s =
            bs_pd_stats_shard(st, ids[i], &at, NULL);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->shard_id, ids[i]);
        ck_assert_uint_eq(s->term, 2);
        ck_assert_uint_eq(at, 20);
    }
    ck_assert_ptr_null(bs_pd_stats_shard(st, 1, NULL, NULL));
    ck_assert_ptr_null(bs_pd_stats_shard(st, 3, NULL, NULL));
    bs_pd_stats_reset(st, 1);
    ck_assert_ptr_null(bs_pd_stats_shard(st, ids[0], NULL, NULL));
    free(ids);
    free(b);
    bs_pd_stats_destroy(st);
}
END_TEST

/* ------------------------------------------------------------- codec */

static void random_hb(uint64_t *seed, struct bs_pd_heartbeat *hb,
                      struct bs_pd_shard_stat *buf, uint32_t max)
{
    memset(hb, 0, sizeof(*hb));
    struct bs_pd_node_stat *n = &hb->node;
    n->node_id = th_rand(seed);
    n->capacity_bytes = th_rand(seed);
    n->available_bytes = th_rand(seed);
    n->used_bytes = th_rand(seed);
    n->replicas = (uint32_t)th_rand(seed);
    n->leaders = (uint32_t)th_rand(seed);
    n->read_qps = th_rand(seed);
    n->write_qps = th_rand(seed);
    n->snapshots_sending = (uint32_t)th_rand(seed);
    n->snapshots_receiving = (uint32_t)th_rand(seed);
    hb->n_shards = (uint32_t)(th_rand(seed) % (max + 1));
    hb->shards = buf;
    for (uint32_t i = 0; i < hb->n_shards; i++) {
        struct bs_pd_shard_stat *s = &buf[i];
        memset(s, 0, sizeof(*s));
        s->shard_id = th_rand(seed);
        s->leader = th_rand(seed);
        s->term = th_rand(seed);
        s->conf_ver = th_rand(seed);
        s->version = th_rand(seed);
        s->commit = th_rand(seed);
        s->applied = th_rand(seed);
        s->size_bytes = th_rand(seed);
        s->keys = th_rand(seed);
        s->read_qps = th_rand(seed);
        s->write_qps = th_rand(seed);
        s->n_replicas = (uint32_t)(th_rand(seed) % (BS_RAFT_MAX_MEMBERS + 1));
        for (uint32_t j = 0; j < s->n_replicas; j++) {
            struct bs_pd_replica_stat *r = &s->replicas[j];
            r->replica_id = th_rand(seed);
            r->node_id = th_rand(seed);
            r->match = th_rand(seed);
            r->lag_entries = th_rand(seed);
            r->lag_ms = th_rand(seed);
            r->learner = th_rand(seed) & 1;
            r->in_sync = th_rand(seed) & 1;
        }
    }
}

static void assert_hb_eq(const struct bs_pd_heartbeat *a,
                         const struct bs_pd_heartbeat *b)
{
    ck_assert_mem_eq(&a->node, &b->node, sizeof(a->node));
    ck_assert_uint_eq(a->n_shards, b->n_shards);
    for (uint32_t i = 0; i < a->n_shards; i++) {
        const struct bs_pd_shard_stat *x = &a->shards[i], *y = &b->shards[i];
        ck_assert_uint_eq(x->shard_id, y->shard_id);
        ck_assert_uint_eq(x->leader, y->leader);
        ck_assert_uint_eq(x->term, y->term);
        ck_assert_uint_eq(x->conf_ver, y->conf_ver);
        ck_assert_uint_eq(x->version, y->version);
        ck_assert_uint_eq(x->commit, y->commit);
        ck_assert_uint_eq(x->applied, y->applied);
        ck_assert_uint_eq(x->size_bytes, y->size_bytes);
        ck_assert_uint_eq(x->keys, y->keys);
        ck_assert_uint_eq(x->read_qps, y->read_qps);
        ck_assert_uint_eq(x->write_qps, y->write_qps);
        ck_assert_uint_eq(x->n_replicas, y->n_replicas);
        for (uint32_t j = 0; j < x->n_replicas; j++) {
            const struct bs_pd_replica_stat *r = &x->replicas[j];
            const struct bs_pd_replica_stat *q = &y->replicas[j];
            ck_assert_uint_eq(r->replica_id, q->replica_id);
            ck_assert_uint_eq(r->node_id, q->node_id);
            ck_assert_uint_eq(r->match, q->match);
            ck_assert_uint_eq(r->lag_entries, q->lag_entries);
            ck_assert_uint_eq(r->lag_ms, q->lag_ms);
            ck_assert_int_eq(r->learner, q->learner);
            ck_assert_int_eq(r->in_sync, q->in_sync);
        }
    }
}

START_TEST(test_codec_round_trip)
{
    uint64_t seed = 0x5eed;
    struct bs_pd_shard_stat *buf = malloc(40 * sizeof(*buf));
    for (int iter = 0; iter < 300; iter++) {
        struct bs_pd_heartbeat hb, back;
        random_hb(&seed, &hb, buf, iter < 20 ? 1 : 40);
        uint8_t *enc;
        size_t len;
        ck_assert_int_eq(bs_pd_heartbeat_encode(&hb, &enc, &len), 0);
        ck_assert_uint_eq(enc[0], 1); /* the format version */
        ck_assert_int_eq(bs_pd_heartbeat_decode(enc, len, &back), 0);
        assert_hb_eq(&hb, &back);
        if (back.n_shards == 0)
            ck_assert_ptr_null(back.shards);
        /* Decoded heartbeats feed the table directly. */
        struct bs_pd_stats *st = bs_pd_stats_create();
        ck_assert_int_eq(bs_pd_stats_update(st, &back, 1, 1), 0);
        ck_assert_ptr_nonnull(bs_pd_stats_node(st, hb.node.node_id));
        bs_pd_stats_destroy(st);
        bs_pd_heartbeat_free(&back);
        ck_assert_ptr_null(back.shards);
        ck_assert_uint_eq(back.n_shards, 0);
        free(enc);
    }
    bs_pd_heartbeat_free(NULL);
    free(buf);
}
END_TEST

START_TEST(test_codec_truncation_and_corruption)
{
    uint64_t seed = 0xfeed;
    struct bs_pd_shard_stat buf[6];
    for (int iter = 0; iter < 40; iter++) {
        struct bs_pd_heartbeat hb, back;
        random_hb(&seed, &hb, buf, 6);
        uint8_t *enc;
        size_t len;
        ck_assert_int_eq(bs_pd_heartbeat_encode(&hb, &enc, &len), 0);
        /* Every proper prefix is truncated; one more byte is trailing. */
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *p = malloc(cut ? cut : 1); /* exact size for ASan */
            memcpy(p, enc, cut);
            int rc = bs_pd_heartbeat_decode(p, cut, &back);
            ck_assert_msg(rc == BS_ECORRUPT, "cut %zu of %zu: %s", cut, len,
                          bs_err_name(rc));
            ck_assert_ptr_null(back.shards);
            free(p);
        }
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, enc, len);
        longer[len] = 0;
        ck_assert_int_eq(bs_pd_heartbeat_decode(longer, len + 1, &back),
                         BS_ECORRUPT);
        free(longer);
        /* Random byte changes: refused, or decoded to a heartbeat that
         * encodes to exactly the changed bytes (the format is
         * canonical). */
        for (int f = 0; f < 200; f++) {
            uint8_t *m = malloc(len);
            memcpy(m, enc, len);
            th_flip(m, len, &seed, 3);
            int rc = bs_pd_heartbeat_decode(m, len, &back);
            ck_assert(rc == 0 || rc == BS_ECORRUPT);
            if (rc == 0) {
                uint8_t *re;
                size_t rlen;
                ck_assert_int_eq(bs_pd_heartbeat_encode(&back, &re, &rlen), 0);
                th_assert_bytes(re, rlen, m, len);
                bs_pd_heartbeat_free(&back);
            }
            free(m);
        }
        free(enc);
    }
}
END_TEST

/* Little-endian u32 at p. */
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

START_TEST(test_codec_limits)
{
    struct bs_pd_heartbeat hb, back;
    memset(&hb, 0, sizeof(hb));
    struct bs_pd_shard_stat s = shard_stat(1, 1, 1, 0);
    hb.shards = &s;
    hb.n_shards = 1;
    uint8_t *enc;
    size_t len;
    /* Encoder refuses what the decoder would. */
    s.n_replicas = BS_RAFT_MAX_MEMBERS + 1;
    ck_assert_int_eq(bs_pd_heartbeat_encode(&hb, &enc, &len), BS_EINVAL);
    s.n_replicas = BS_RAFT_MAX_MEMBERS;
    hb.n_shards = BS_PD_HB_MAX_SHARDS + 1;
    ck_assert_int_eq(bs_pd_heartbeat_encode(&hb, &enc, &len), BS_EINVAL);
    hb.n_shards = 1;
    ck_assert_int_eq(bs_pd_heartbeat_encode(&hb, &enc, &len), 0);

    /* Layout: version, 64 bytes of node stat, u32 count at 65, the shard's
     * 11 u64, its replica count at 65 + 4 + 88. */
    const size_t count_at = 65, nrep_at = 65 + 4 + 88;
    ck_assert_uint_eq(enc[nrep_at], BS_RAFT_MAX_MEMBERS);
    ck_assert_uint_eq(len, nrep_at + 1 + BS_RAFT_MAX_MEMBERS * 41);
    uint8_t *m = malloc(len);

    memcpy(m, enc, len);
    m[0] = 2; /* unknown version */
    ck_assert_int_eq(bs_pd_heartbeat_decode(m, len, &back), BS_ECORRUPT);

    memcpy(m, enc, len);
    m[nrep_at] = BS_RAFT_MAX_MEMBERS + 1;
    ck_assert_int_eq(bs_pd_heartbeat_decode(m, len, &back), BS_ECORRUPT);

    memcpy(m, enc, len);
    m[len - 1] = 0x04; /* unknown flag bit */
    ck_assert_int_eq(bs_pd_heartbeat_decode(m, len, &back), BS_ECORRUPT);

    /* Counts the bytes cannot hold, up to the largest: refused before any
     * allocation of that size. */
    uint32_t counts[] = {2, 1000, BS_PD_HB_MAX_SHARDS, BS_PD_HB_MAX_SHARDS + 1,
                         UINT32_MAX};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        memcpy(m, enc, len);
        put32(m + count_at, counts[i]);
        ck_assert_int_eq(bs_pd_heartbeat_decode(m, len, &back), BS_ECORRUPT);
        ck_assert_ptr_null(back.shards);
    }
    free(m);
    free(enc);

    /* No shard at all. */
    hb.n_shards = 0;
    hb.shards = NULL;
    hb.node.node_id = 3;
    ck_assert_int_eq(bs_pd_heartbeat_encode(&hb, &enc, &len), 0);
    ck_assert_uint_eq(len, 69);
    ck_assert_int_eq(bs_pd_heartbeat_decode(enc, len, &back), 0);
    ck_assert_uint_eq(back.node.node_id, 3);
    ck_assert_uint_eq(back.n_shards, 0);
    ck_assert_ptr_null(back.shards);
    bs_pd_heartbeat_free(&back);
    free(enc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement_stats");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_update_and_lookup);
    tcase_add_test(tc, test_term_ordering);
    tcase_add_test(tc, test_hot_tracking);
    tcase_add_test(tc, test_reset);
    tcase_add_test(tc, test_many_shards);
    tcase_add_test(tc, test_codec_round_trip);
    tcase_add_test(tc, test_codec_truncation_and_corruption);
    tcase_add_test(tc, test_codec_limits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(suite());
}
