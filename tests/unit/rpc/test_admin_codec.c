/*
 * test_admin_codec.c - unit tests of rpc/admin_codec.c: every encoder and
 * decoder round-trips edge-case values of its structs (cluster status,
 * shard info, ping, join, remove node, rebalance, ISR status, split,
 * scheduler, etcd's Status, MemberList and Compact); encoders
 * refuse structs the decoders would refuse; decoders refuse malformed,
 * truncated, out-of-domain and oversized input with the right code and a
 * message, leak nothing (run under the valgrind or asan setup) and
 * survive random mutations of valid encodings; and the bytes are the
 * schema's and etcd's: compared with protoc's own decoder and encoder run
 * over rpc/proto (BS_RPC_PROTOC, BS_RPC_PROTO_DIR, set by meson), and
 * with hand-computed bytes from etcd 3.4's field numbers.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_codec.h"
#include "protoc_util.h"

/* ------------------------------------------------------------ helpers */

static const uint8_t *B(const char *s)
{
    return (const uint8_t *)s;
}

/* Protobuf writers for hand-made (and malformed) messages. */
struct w {
    uint8_t b[1 << 18];
    size_t n;
};

static struct w *w_new(void)
{
    struct w *w = calloc(1, sizeof *w);

    ck_assert_ptr_nonnull(w);
    return w;
}

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

static void w_str(struct w *w, unsigned field, const char *s)
{
    w_bytes(w, field, s, strlen(s));
}

static void w_msg(struct w *w, unsigned field, const struct w *m)
{
    w_bytes(w, field, m->b, m->n);
}

/* An exactly sized copy, so that ASan/valgrind see any read past the end. */
static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(b);
    memcpy(b, p, n);
    return b;
}

/* ------------------------------------------------------ sample values */

static struct bs_adm_node sample_nodes[3];
static struct bs_adm_shard sample_shards[3];

static void fill_samples(void)
{
    memset(sample_nodes, 0, sizeof sample_nodes);
    memset(sample_shards, 0, sizeof sample_shards);
    sample_nodes[0].id = 1;
    strcpy(sample_nodes[0].client_addr, "10.0.0.1:2379");
    strcpy(sample_nodes[0].peer_addr, "10.0.0.1:2380");
    strcpy(sample_nodes[0].http_addr, "10.0.0.1:8080");
    sample_nodes[0].alive = true;
    sample_nodes[0].replicas = 3;
    sample_nodes[0].leaders = 2;
    strcpy(sample_nodes[0].state, "up");
    strcpy(sample_nodes[0].rack, "rack-1");
    sample_nodes[0].used_bytes = 1ULL << 30;
    sample_nodes[0].capacity_bytes = 1ULL << 40;
    sample_nodes[0].available_bytes = (1ULL << 40) - (1ULL << 30);
    sample_nodes[0].heard_ms_ago = 250;
    /* All defaults: an empty submessage, still an element. */
    sample_nodes[1].id = 0;
    /* Longest addresses; id at the top of its range. */
    sample_nodes[2].id = UINT64_MAX;
    memset(sample_nodes[2].client_addr, 'c', BS_ADM_ADDR_MAX);
    memset(sample_nodes[2].peer_addr, 'p', BS_ADM_ADDR_MAX);
    memset(sample_nodes[2].http_addr, 'h', BS_ADM_ADDR_MAX);
    sample_nodes[2].replicas = UINT32_MAX;
    memset(sample_nodes[2].state, 's', sizeof sample_nodes[2].state - 1);
    memset(sample_nodes[2].rack, 'r', sizeof sample_nodes[2].rack - 1);
    sample_nodes[2].used_bytes = UINT64_MAX;
    sample_nodes[2].capacity_bytes = UINT64_MAX;
    sample_nodes[2].heard_ms_ago = UINT64_MAX;

    /* The first shard: no lower bound, key "m" up. */
    sample_shards[0].id = 1;
    sample_shards[0].end = (uint8_t *)"m";
    sample_shards[0].end_len = 1;
    sample_shards[0].conf_ver = 4;
    sample_shards[0].version = 2;
    sample_shards[0].leader = 11;
    sample_shards[0].leader_node = 1;
    sample_shards[0].term = 7;
    sample_shards[0].commit = 1000;
    sample_shards[0].applied = 999;
    sample_shards[0].revision = -1;
    sample_shards[0].n_replicas = 3;
    for (uint32_t i = 0; i < 3; i++) {
        sample_shards[0].replicas[i].id = 11 + i;
        sample_shards[0].replicas[i].node_id = 1 + i;
        sample_shards[0].replicas[i].match = 1000 - i;
        sample_shards[0].replicas[i].in_sync = i != 2;
        sample_shards[0].replicas[i].learner = i == 2;
    }
    /* Binary boundaries with NUL bytes; a full set of replicas. */
    sample_shards[1].id = 2;
    sample_shards[1].start = (uint8_t *)"m\0x";
    sample_shards[1].start_len = 3;
    sample_shards[1].end = (uint8_t *)"\xff\xff";
    sample_shards[1].end_len = 2;
    sample_shards[1].revision = INT64_MAX;
    sample_shards[1].n_replicas = BS_RAFT_MAX_MEMBERS;
    for (uint32_t i = 0; i < BS_RAFT_MAX_MEMBERS; i++)
        sample_shards[1].replicas[i].id = 100 + i;
    /* All defaults. */
    sample_shards[2].id = 0;
}

static struct bs_adm_status sample_status(void)
{
    struct bs_adm_status st = {0};

    fill_samples();
    st.cluster_id = 0xdeadbeefcafeULL;
    st.node_id = 2;
    st.nodes = sample_nodes;
    st.n_nodes = 3;
    st.shards = sample_shards;
    st.n_shards = 3;
    return st;
}

static void check_node_eq(const struct bs_adm_node *a,
                          const struct bs_adm_node *b)
{
    ck_assert_uint_eq(a->id, b->id);
    ck_assert_str_eq(a->client_addr, b->client_addr);
    ck_assert_str_eq(a->peer_addr, b->peer_addr);
    ck_assert_str_eq(a->http_addr, b->http_addr);
    ck_assert_int_eq(a->alive, b->alive);
    ck_assert_uint_eq(a->replicas, b->replicas);
    ck_assert_uint_eq(a->leaders, b->leaders);
    ck_assert_str_eq(a->state, b->state);
    ck_assert_str_eq(a->rack, b->rack);
    ck_assert_uint_eq(a->used_bytes, b->used_bytes);
    ck_assert_uint_eq(a->capacity_bytes, b->capacity_bytes);
    ck_assert_uint_eq(a->available_bytes, b->available_bytes);
    ck_assert_uint_eq(a->heard_ms_ago, b->heard_ms_ago);
}

static void check_shard_eq(const struct bs_adm_shard *a,
                           const struct bs_adm_shard *b)
{
    ck_assert_uint_eq(a->id, b->id);
    ck_assert(bs_test_bytes_eq(a->start, a->start_len, b->start, b->start_len));
    ck_assert(bs_test_bytes_eq(a->end, a->end_len, b->end, b->end_len));
    ck_assert_uint_eq(a->conf_ver, b->conf_ver);
    ck_assert_uint_eq(a->version, b->version);
    ck_assert_uint_eq(a->leader, b->leader);
    ck_assert_uint_eq(a->leader_node, b->leader_node);
    ck_assert_uint_eq(a->term, b->term);
    ck_assert_uint_eq(a->commit, b->commit);
    ck_assert_uint_eq(a->applied, b->applied);
    ck_assert_int_eq(a->revision, b->revision);
    ck_assert_uint_eq(a->n_replicas, b->n_replicas);
    for (uint32_t i = 0; i < a->n_replicas; i++) {
        ck_assert_uint_eq(a->replicas[i].id, b->replicas[i].id);
        ck_assert_uint_eq(a->replicas[i].node_id, b->replicas[i].node_id);
        ck_assert_int_eq(a->replicas[i].learner, b->replicas[i].learner);
        ck_assert_uint_eq(a->replicas[i].match, b->replicas[i].match);
        ck_assert_int_eq(a->replicas[i].in_sync, b->replicas[i].in_sync);
    }
}

/* Operators: a planned move, a running split with a binary key, an
 * all-default element, and one at every limit (a key of BS_ADM_MAX_KEY
 * bytes: not in the fuzzed encodings, which must stay small). */
static struct bs_adm_op sample_ops[4];
static uint8_t sample_op_key[BS_ADM_MAX_KEY];

static void fill_ops(void)
{
    memset(sample_ops, 0, sizeof sample_ops);
    strcpy(sample_ops[0].kind, "move");
    strcpy(sample_ops[0].reason, "balance-replicas");
    sample_ops[0].shard_id = 5;
    sample_ops[0].from_node = 1;
    sample_ops[0].to_node = 4;
    sample_ops[1].id = 17;
    strcpy(sample_ops[1].kind, "split");
    strcpy(sample_ops[1].reason, "size");
    sample_ops[1].shard_id = 6;
    sample_ops[1].split_key = (uint8_t *)"m\0\xff";
    sample_ops[1].split_key_len = 3;
    sample_ops[1].age_ms = 1500;
    sample_ops[3].id = UINT64_MAX;
    memset(sample_ops[3].kind, 'k', sizeof sample_ops[3].kind - 1);
    memset(sample_ops[3].reason, 'r', sizeof sample_ops[3].reason - 1);
    sample_ops[3].shard_id = UINT64_MAX;
    sample_ops[3].from_node = UINT64_MAX;
    sample_ops[3].to_node = UINT64_MAX;
    memset(sample_op_key, 'x', sizeof sample_op_key);
    sample_ops[3].split_key = sample_op_key;
    sample_ops[3].split_key_len = sizeof sample_op_key;
    sample_ops[3].age_ms = UINT64_MAX;
}

static void check_op_eq(const struct bs_adm_op *a, const struct bs_adm_op *b)
{
    ck_assert_uint_eq(a->id, b->id);
    ck_assert_str_eq(a->kind, b->kind);
    ck_assert_str_eq(a->reason, b->reason);
    ck_assert_uint_eq(a->shard_id, b->shard_id);
    ck_assert_uint_eq(a->from_node, b->from_node);
    ck_assert_uint_eq(a->to_node, b->to_node);
    ck_assert(bs_test_bytes_eq(a->split_key, a->split_key_len, b->split_key,
                               b->split_key_len));
    ck_assert_uint_eq(a->age_ms, b->age_ms);
}

/* ISR shards: a typical one, a full Raft group at the top of every
 * range, an all-default element. */
static struct bs_adm_isr_shard sample_isr[3];

static void fill_isr(void)
{
    memset(sample_isr, 0, sizeof sample_isr);
    sample_isr[0].shard_id = 1;
    sample_isr[0].leader_node = 2;
    sample_isr[0].term = 7;
    sample_isr[0].commit = 1000;
    sample_isr[0].min_insync = 2;
    sample_isr[0].n_replicas = 3;
    for (uint32_t i = 0; i < 3; i++) {
        struct bs_adm_isr_replica *r = &sample_isr[0].replicas[i];

        r->replica_id = 11 + i;
        r->node_id = 1 + i;
        r->learner = i == 2;
        r->match = 1000 - 10 * i;
        r->lag_entries = 10 * i;
        r->lag_ms = 5 * i;
        r->in_sync = i != 2;
    }
    sample_isr[0].size_bytes = 1 << 20;
    sample_isr[0].keys = 5000;
    sample_isr[0].read_qps = 300;
    sample_isr[0].write_qps = 40;
    sample_isr[0].reported_ms_ago = 900;
    sample_isr[1].shard_id = UINT64_MAX;
    sample_isr[1].min_insync = UINT32_MAX;
    sample_isr[1].n_replicas = BS_RAFT_MAX_MEMBERS;
    for (uint32_t i = 0; i < BS_RAFT_MAX_MEMBERS; i++) {
        sample_isr[1].replicas[i].replica_id = 100 + i;
        sample_isr[1].replicas[i].lag_ms = UINT64_MAX;
    }
    sample_isr[1].reported_ms_ago = UINT64_MAX;
}

static void check_isr_eq(const struct bs_adm_isr_shard *a,
                         const struct bs_adm_isr_shard *b)
{
    ck_assert_uint_eq(a->shard_id, b->shard_id);
    ck_assert_uint_eq(a->leader_node, b->leader_node);
    ck_assert_uint_eq(a->term, b->term);
    ck_assert_uint_eq(a->commit, b->commit);
    ck_assert_uint_eq(a->min_insync, b->min_insync);
    ck_assert_uint_eq(a->n_replicas, b->n_replicas);
    for (uint32_t i = 0; i < a->n_replicas; i++) {
        const struct bs_adm_isr_replica *x = &a->replicas[i];
        const struct bs_adm_isr_replica *y = &b->replicas[i];

        ck_assert_uint_eq(x->replica_id, y->replica_id);
        ck_assert_uint_eq(x->node_id, y->node_id);
        ck_assert_int_eq(x->learner, y->learner);
        ck_assert_uint_eq(x->match, y->match);
        ck_assert_uint_eq(x->lag_entries, y->lag_entries);
        ck_assert_uint_eq(x->lag_ms, y->lag_ms);
        ck_assert_int_eq(x->in_sync, y->in_sync);
    }
    ck_assert_uint_eq(a->size_bytes, b->size_bytes);
    ck_assert_uint_eq(a->keys, b->keys);
    ck_assert_uint_eq(a->read_qps, b->read_qps);
    ck_assert_uint_eq(a->write_qps, b->write_qps);
    ck_assert_uint_eq(a->reported_ms_ago, b->reported_ms_ago);
}

/* A join request with three labels (one with an empty value). */
static struct bs_adm_join sample_join_req(void)
{
    struct bs_adm_join j;

    memset(&j, 0, sizeof j);
    j.join_token = 0x1234567890abcdefULL;
    strcpy(j.client_addr, "10.0.0.4:2379");
    strcpy(j.peer_addr, "10.0.0.4:2380");
    strcpy(j.http_addr, "10.0.0.4:8080");
    strcpy(j.labels[0].key, "rack");
    strcpy(j.labels[0].value, "r2");
    strcpy(j.labels[1].key, "zone");
    strcpy(j.labels[1].value, "eu-1");
    strcpy(j.labels[2].key, "ssd");
    j.n_labels = 3;
    return j;
}

static struct bs_adm_sched sample_sched(void)
{
    struct bs_adm_sched s;

    memset(&s, 0, sizeof s);
    fill_ops();
    strcpy(s.action, "pause");
    s.paused = true;
    s.max_concurrent_moves = 4;
    s.split_size = 96ULL << 20;
    s.split_qps = 2000;
    s.down_after_ms = 30000;
    s.max_lag_entries = 1000;
    s.max_lag_ms = 5000;
    s.snapshot_rate = 64ULL << 20;
    s.ops = sample_ops;
    s.n_ops = 3;
    s.ops_finished = 12;
    s.ops_cancelled = 3;
    return s;
}

/* Every byte of p[n] is zero: what a failed decode leaves. */
static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

/* ------------------------------------------------------ round trips */

START_TEST(test_status_round_trip)
{
    struct bs_adm_status st = sample_status(), got;
    char err[BS_RPC_ERRMSG_LEN];
    uint8_t *buf, *cp;
    size_t len;

    ck_assert_int_eq(bs_adm_status_encode(&st, &buf, &len, err), 0);
    cp = exact(buf, len);
    ck_assert_int_eq(bs_adm_status_decode(cp, len, &got, err), 0);
    free(cp);
    ck_assert_uint_eq(got.cluster_id, st.cluster_id);
    ck_assert_uint_eq(got.node_id, st.node_id);
    ck_assert_uint_eq(got.n_nodes, 3);
    ck_assert_uint_eq(got.n_shards, 3);
    for (size_t i = 0; i < 3; i++) {
        check_node_eq(&got.nodes[i], &st.nodes[i]);
        check_shard_eq(&got.shards[i], &st.shards[i]);
    }
    /* Owned copies, not pointers into the buffer (freed above). */
    ck_assert_ptr_null(got.shards[0].start);
    ck_assert_ptr_nonnull(got.shards[1].start);
    bs_adm_status_free(&got);
    ck_assert_ptr_null(got.nodes);
    ck_assert_uint_eq(got.n_shards, 0);
    bs_adm_status_free(&got);
    bs_adm_status_free(NULL);
    free(buf);

    /* Nothing at all: zero bytes, and back. */
    memset(&st, 0, sizeof st);
    ck_assert_int_eq(bs_adm_status_encode(&st, &buf, &len, err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bs_adm_status_decode(buf, len, &got, err), 0);
    ck_assert_uint_eq(got.n_nodes + got.n_shards + got.cluster_id, 0);
    bs_adm_status_free(&got);
    free(buf);
    ck_assert_int_eq(bs_adm_status_decode(NULL, 0, &got, err), 0);
}
END_TEST

START_TEST(test_shard_info_round_trip)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_shard sh;
    uint8_t *buf, *key, *cp;
    size_t len, key_len;
    uint64_t id;

    fill_samples();
    ck_assert_int_eq(
        bs_adm_shard_info_req_encode(0, B("k\0ey"), 4, &buf, &len, err), 0);
    cp = exact(buf, len);
    ck_assert_int_eq(
        bs_adm_shard_info_req_decode(cp, len, &id, &key, &key_len, err), 0);
    free(cp);
    ck_assert_uint_eq(id, 0);
    ck_assert(bs_test_bytes_eq(key, key_len, "k\0ey", 4));
    free(key);
    free(buf);

    ck_assert_int_eq(bs_adm_shard_info_req_encode(42, NULL, 0, &buf, &len, err),
                     0);
    ck_assert_int_eq(
        bs_adm_shard_info_req_decode(buf, len, &id, &key, &key_len, err), 0);
    ck_assert_uint_eq(id, 42);
    ck_assert_ptr_null(key);
    ck_assert_uint_eq(key_len, 0);
    free(buf);

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(
            bs_adm_shard_info_resp_encode(&sample_shards[i], &buf, &len, err),
            0);
        /* The shard is present even when all of it is default. */
        ck_assert_uint_ge(len, 2);
        cp = exact(buf, len);
        ck_assert_int_eq(bs_adm_shard_info_resp_decode(cp, len, &sh, err), 0);
        free(cp);
        check_shard_eq(&sh, &sample_shards[i]);
        bs_adm_shard_free(&sh);
        free(buf);
    }
    bs_adm_shard_free(NULL);

    /* A response without its shard says nothing: refused. */
    ck_assert_int_eq(bs_adm_shard_info_resp_decode(NULL, 0, &sh, err),
                     BS_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "shard"));
}
END_TEST

START_TEST(test_ping_round_trip)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_ping p = {0}, got;
    uint8_t *buf;
    size_t len;

    p.cluster_id = 9;
    p.node_id = 3;
    p.from_node = 4;
    p.uptime_ms = 123456;
    strcpy(p.version, "0.1.0-dev");
    p.payload = (uint8_t *)"\0ping\xff";
    p.payload_len = 6;

    /* The request carries the sender's side only. */
    ck_assert_int_eq(bs_adm_ping_req_encode(&p, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_ping_req_decode(buf, len, &got, err), 0);
    ck_assert_uint_eq(got.cluster_id, 9);
    ck_assert_uint_eq(got.node_id, 3);
    ck_assert_uint_eq(got.from_node, 4);
    ck_assert_uint_eq(got.uptime_ms, 0);
    ck_assert_str_eq(got.version, "");
    ck_assert(bs_test_bytes_eq(got.payload, got.payload_len, p.payload, 6));
    bs_adm_ping_free(&got);
    ck_assert_ptr_null(got.payload);
    free(buf);

    /* The response carries the answering node's. */
    ck_assert_int_eq(bs_adm_ping_resp_encode(&p, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_ping_resp_decode(buf, len, &got, err), 0);
    ck_assert_uint_eq(got.cluster_id, 9);
    ck_assert_uint_eq(got.node_id, 3);
    ck_assert_uint_eq(got.from_node, 0);
    ck_assert_uint_eq(got.uptime_ms, 123456);
    ck_assert_str_eq(got.version, "0.1.0-dev");
    ck_assert(bs_test_bytes_eq(got.payload, got.payload_len, p.payload, 6));
    bs_adm_ping_free(&got);
    free(buf);

    /* Longest version. */
    memset(p.version, 'v', sizeof p.version - 1);
    p.payload = NULL;
    p.payload_len = 0;
    ck_assert_int_eq(bs_adm_ping_resp_encode(&p, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_ping_resp_decode(buf, len, &got, err), 0);
    ck_assert_str_eq(got.version, p.version);
    ck_assert_ptr_null(got.payload);
    bs_adm_ping_free(&got);
    bs_adm_ping_free(NULL);
    free(buf);
}
END_TEST

START_TEST(test_etcd_round_trip)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_etcd_status s = {0}, gs;
    struct bs_adm_member m[3], *gm;
    struct bs_rpc_header h = {1, 2, -3, 4}, gh;
    uint8_t *buf;
    size_t len, n;
    int64_t rev;
    bool phys;

    s.hdr = h;
    strcpy(s.version, "3.4.0");
    s.db_size = 1 << 20;
    s.db_size_in_use = 1 << 19;
    s.leader = 0x8e9e05c52164694dULL;
    s.raft_index = 10;
    s.raft_term = 2;
    s.raft_applied_index = 9;
    s.is_learner = true;
    ck_assert_int_eq(bs_adm_etcd_status_encode(&s, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_etcd_status_decode(buf, len, &gs, err), 0);
    ck_assert_int_eq(memcmp(&gs.hdr, &h, sizeof h), 0);
    ck_assert_str_eq(gs.version, "3.4.0");
    ck_assert_int_eq(gs.db_size, s.db_size);
    ck_assert_int_eq(gs.db_size_in_use, s.db_size_in_use);
    ck_assert_uint_eq(gs.leader, s.leader);
    ck_assert_uint_eq(gs.raft_index, 10);
    ck_assert_uint_eq(gs.raft_term, 2);
    ck_assert_uint_eq(gs.raft_applied_index, 9);
    ck_assert(gs.is_learner);
    free(buf);

    memset(m, 0, sizeof m);
    m[0].id = 0x8e9e05c52164694dULL;
    strcpy(m[0].name, "node1");
    strcpy(m[0].peer_url, "http://10.0.0.1:2380");
    strcpy(m[0].client_url, "http://10.0.0.1:2379");
    /* A member not started yet: no name, no client URL. */
    m[1].id = 7;
    strcpy(m[1].peer_url, "http://10.0.0.2:2380");
    m[1].is_learner = true;
    m[2].id = 8;
    memset(m[2].name, 'n', sizeof m[2].name - 1);
    memset(m[2].peer_url, 'p', sizeof m[2].peer_url - 1);
    memset(m[2].client_url, 'c', sizeof m[2].client_url - 1);
    ck_assert_int_eq(bs_adm_member_list_encode(&h, m, 3, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_member_list_decode(buf, len, &gh, &gm, &n, err), 0);
    ck_assert_int_eq(memcmp(&gh, &h, sizeof h), 0);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(gm[i].id, m[i].id);
        ck_assert_str_eq(gm[i].name, m[i].name);
        ck_assert_str_eq(gm[i].peer_url, m[i].peer_url);
        ck_assert_str_eq(gm[i].client_url, m[i].client_url);
        ck_assert_int_eq(gm[i].is_learner, m[i].is_learner);
    }
    free(gm);
    free(buf);
    ck_assert_int_eq(bs_adm_member_list_encode(&h, NULL, 0, &buf, &len, err),
                     0);
    ck_assert_int_eq(bs_adm_member_list_decode(buf, len, NULL, &gm, &n, err),
                     0);
    ck_assert_ptr_null(gm);
    ck_assert_uint_eq(n, 0);
    free(buf);

    ck_assert_int_eq(bs_adm_compact_req_encode(-5, true, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_compact_req_decode(buf, len, &rev, &phys, err), 0);
    ck_assert_int_eq(rev, -5);
    ck_assert(phys);
    free(buf);
    ck_assert_int_eq(bs_adm_compact_resp_encode(&h, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_compact_resp_decode(buf, len, &gh, err), 0);
    ck_assert_int_eq(memcmp(&gh, &h, sizeof h), 0);
    free(buf);
}
END_TEST

START_TEST(test_join_round_trip)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_join j = sample_join_req(), got;
    uint8_t *buf, *cp;
    size_t len;

    /* The request carries the joining node's side only. */
    j.node_id = 9;
    j.cluster_id = 5;
    fill_samples();
    j.nodes = sample_nodes;
    j.n_nodes = 3;
    ck_assert_int_eq(bs_adm_join_req_encode(&j, &buf, &len, err), 0);
    cp = exact(buf, len);
    free(buf);
    ck_assert_int_eq(bs_adm_join_req_decode(cp, len, &got, err), 0);
    free(cp);
    ck_assert_uint_eq(got.node_id, 9);
    ck_assert_uint_eq(got.join_token, j.join_token);
    ck_assert_uint_eq(got.cluster_id, 0);
    ck_assert_str_eq(got.client_addr, j.client_addr);
    ck_assert_str_eq(got.peer_addr, j.peer_addr);
    ck_assert_str_eq(got.http_addr, j.http_addr);
    ck_assert_uint_eq(got.n_labels, 3);
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_str_eq(got.labels[i].key, j.labels[i].key);
        ck_assert_str_eq(got.labels[i].value, j.labels[i].value);
    }
    ck_assert_ptr_null(got.nodes);
    ck_assert_uint_eq(got.n_nodes, 0);
    bs_adm_join_free(&got);

    /* Every label, every string at its longest. */
    j.n_labels = BS_ADM_MAX_LABELS;
    for (uint32_t i = 0; i < BS_ADM_MAX_LABELS; i++) {
        memset(j.labels[i].key, 'a' + (char)i, BS_ADM_LABEL_KEY_MAX);
        j.labels[i].key[BS_ADM_LABEL_KEY_MAX] = '\0';
        memset(j.labels[i].value, 'A' + (char)i, BS_ADM_LABEL_MAX);
        j.labels[i].value[BS_ADM_LABEL_MAX] = '\0';
    }
    memset(j.client_addr, 'c', BS_ADM_ADDR_MAX);
    j.client_addr[BS_ADM_ADDR_MAX] = '\0';
    j.join_token = UINT64_MAX;
    ck_assert_int_eq(bs_adm_join_req_encode(&j, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_join_req_decode(buf, len, &got, err), 0);
    free(buf);
    ck_assert_str_eq(got.client_addr, j.client_addr);
    ck_assert_uint_eq(got.join_token, UINT64_MAX);
    ck_assert_uint_eq(got.n_labels, BS_ADM_MAX_LABELS);
    for (uint32_t i = 0; i < BS_ADM_MAX_LABELS; i++) {
        ck_assert_str_eq(got.labels[i].key, j.labels[i].key);
        ck_assert_str_eq(got.labels[i].value, j.labels[i].value);
    }
    bs_adm_join_free(&got);

    /* The response: the id, the cluster, every node with the fields of
     * NodeStatus 8-13; owned copies of the nodes. */
    ck_assert_int_eq(bs_adm_join_resp_encode(&j, &buf, &len, err), 0);
    cp = exact(buf, len);
    free(buf);
    ck_assert_int_eq(bs_adm_join_resp_decode(cp, len, &got, err), 0);
    free(cp);
    ck_assert_uint_eq(got.node_id, 9);
    ck_assert_uint_eq(got.cluster_id, 5);
    ck_assert_uint_eq(got.join_token, 0);
    ck_assert_str_eq(got.client_addr, "");
    ck_assert_uint_eq(got.n_labels, 0);
    ck_assert_uint_eq(got.n_nodes, 3);
    for (size_t i = 0; i < 3; i++)
        check_node_eq(&got.nodes[i], &sample_nodes[i]);
    bs_adm_join_free(&got);
    ck_assert_ptr_null(got.nodes);
    ck_assert_uint_eq(got.n_nodes, 0);
    bs_adm_join_free(&got);
    bs_adm_join_free(NULL);

    /* Nothing at all: zero bytes, and back. */
    memset(&j, 0, sizeof j);
    ck_assert_int_eq(bs_adm_join_resp_encode(&j, &buf, &len, err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bs_adm_join_resp_decode(buf, len, &got, err), 0);
    ck_assert(all_zero(&got, sizeof got));
    free(buf);
    ck_assert_int_eq(bs_adm_join_req_encode(&j, &buf, &len, err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bs_adm_join_req_decode(buf, len, &got, err), 0);
    ck_assert(all_zero(&got, sizeof got));
    free(buf);
}
END_TEST

START_TEST(test_remove_split_round_trip)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_remove r = {0}, gr;
    struct bs_adm_split sp = {0}, gs;
    uint8_t *buf, *cp;
    size_t len;

    r.node_id = 3;
    r.cancel = true;
    strcpy(r.state, "draining");
    r.replicas = 12;
    ck_assert_int_eq(bs_adm_remove_req_encode(&r, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_remove_req_decode(buf, len, &gr, err), 0);
    free(buf);
    ck_assert_uint_eq(gr.node_id, 3);
    ck_assert(gr.cancel);
    ck_assert_str_eq(gr.state, "");
    ck_assert_uint_eq(gr.replicas, 0);
    ck_assert_int_eq(bs_adm_remove_resp_encode(&r, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_remove_resp_decode(buf, len, &gr, err), 0);
    free(buf);
    ck_assert_uint_eq(gr.node_id, 3);
    ck_assert(!gr.cancel);
    ck_assert_str_eq(gr.state, "draining");
    ck_assert_uint_eq(gr.replicas, 12);
    /* The longest state; the top of every range. */
    memset(r.state, 's', sizeof r.state - 1);
    r.node_id = UINT64_MAX;
    r.replicas = UINT32_MAX;
    ck_assert_int_eq(bs_adm_remove_resp_encode(&r, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_remove_resp_decode(buf, len, &gr, err), 0);
    free(buf);
    ck_assert_str_eq(gr.state, r.state);
    ck_assert_uint_eq(gr.node_id, UINT64_MAX);
    ck_assert_uint_eq(gr.replicas, UINT32_MAX);

    /* A binary split key, copied; then the longest key; then none. */
    sp.shard_id = 9;
    sp.key = (uint8_t *)"m\0n";
    sp.key_len = 3;
    sp.op_id = 77;
    sp.new_shard_id = 10;
    ck_assert_int_eq(bs_adm_split_req_encode(&sp, &buf, &len, err), 0);
    cp = exact(buf, len);
    free(buf);
    ck_assert_int_eq(bs_adm_split_req_decode(cp, len, &gs, err), 0);
    free(cp);
    ck_assert_uint_eq(gs.shard_id, 9);
    ck_assert(bs_test_bytes_eq(gs.key, gs.key_len, "m\0n", 3));
    ck_assert_uint_eq(gs.op_id + gs.new_shard_id, 0);
    free(gs.key);
    sp.key = calloc(1, BS_ADM_MAX_KEY);
    sp.key_len = BS_ADM_MAX_KEY;
    ck_assert_int_eq(bs_adm_split_req_encode(&sp, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_split_req_decode(buf, len, &gs, err), 0);
    free(buf);
    ck_assert(bs_test_bytes_eq(gs.key, gs.key_len, sp.key, sp.key_len));
    free(gs.key);
    free(sp.key);
    sp.key = NULL;
    sp.key_len = 0;
    ck_assert_int_eq(bs_adm_split_req_encode(&sp, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_split_req_decode(buf, len, &gs, err), 0);
    free(buf);
    ck_assert_ptr_null(gs.key);
    ck_assert_uint_eq(gs.key_len, 0);
    ck_assert_uint_eq(gs.shard_id, 9);

    ck_assert_int_eq(bs_adm_split_resp_encode(&sp, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_split_resp_decode(buf, len, &gs, err), 0);
    free(buf);
    ck_assert_uint_eq(gs.op_id, 77);
    ck_assert_uint_eq(gs.new_shard_id, 10);
    ck_assert_uint_eq(gs.shard_id, 0);
    ck_assert_ptr_null(gs.key);
}
END_TEST

START_TEST(test_rebalance_sched_round_trip)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_rebalance r = {0}, gr;
    struct bs_adm_sched s = sample_sched(), gs;
    uint8_t *buf, *cp;
    size_t len;

    r.dry_run = true;
    r.max_moves = UINT32_MAX;
    r.plan = sample_ops;
    r.n_plan = 2;
    r.in_flight = sample_ops + 2;
    r.n_in_flight = 2;
    ck_assert_int_eq(bs_adm_rebalance_req_encode(&r, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_rebalance_req_decode(buf, len, &gr, err), 0);
    free(buf);
    ck_assert(gr.dry_run);
    ck_assert_uint_eq(gr.max_moves, UINT32_MAX);
    ck_assert_ptr_null(gr.plan);
    ck_assert_uint_eq(gr.n_plan + gr.n_in_flight, 0);

    /* plan and in_flight stay apart; split keys are owned copies. */
    ck_assert_int_eq(bs_adm_rebalance_resp_encode(&r, &buf, &len, err), 0);
    cp = exact(buf, len);
    free(buf);
    ck_assert_int_eq(bs_adm_rebalance_resp_decode(cp, len, &gr, err), 0);
    free(cp);
    ck_assert(!gr.dry_run);
    ck_assert_uint_eq(gr.max_moves, 0);
    ck_assert_uint_eq(gr.n_plan, 2);
    ck_assert_uint_eq(gr.n_in_flight, 2);
    for (size_t i = 0; i < 2; i++) {
        check_op_eq(&gr.plan[i], &sample_ops[i]);
        check_op_eq(&gr.in_flight[i], &sample_ops[2 + i]);
    }
    ck_assert_ptr_null(gr.plan[0].split_key);
    ck_assert_ptr_null(gr.in_flight[0].split_key);
    bs_adm_rebalance_free(&gr);
    ck_assert_ptr_null(gr.plan);
    ck_assert_uint_eq(gr.n_in_flight, 0);
    bs_adm_rebalance_free(&gr);
    bs_adm_rebalance_free(NULL);

    /* Only operators in flight; nothing at all. */
    r.n_plan = 0;
    r.plan = NULL;
    ck_assert_int_eq(bs_adm_rebalance_resp_encode(&r, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_rebalance_resp_decode(buf, len, &gr, err), 0);
    free(buf);
    ck_assert_ptr_null(gr.plan);
    ck_assert_uint_eq(gr.n_in_flight, 2);
    check_op_eq(&gr.in_flight[1], &sample_ops[3]);
    bs_adm_rebalance_free(&gr);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(bs_adm_rebalance_resp_encode(&r, &buf, &len, err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bs_adm_rebalance_resp_decode(buf, len, &gr, err), 0);
    ck_assert(all_zero(&gr, sizeof gr));
    free(buf);

    /* The scheduler: the request carries the action only. */
    ck_assert_int_eq(bs_adm_sched_req_encode(&s, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_sched_req_decode(buf, len, &gs, err), 0);
    free(buf);
    ck_assert_str_eq(gs.action, "pause");
    ck_assert(!gs.paused);
    ck_assert_uint_eq(gs.split_size, 0);
    ck_assert_ptr_null(gs.ops);
    bs_adm_sched_free(&gs);

    s.n_ops = 4;
    ck_assert_int_eq(bs_adm_sched_resp_encode(&s, &buf, &len, err), 0);
    cp = exact(buf, len);
    free(buf);
    ck_assert_int_eq(bs_adm_sched_resp_decode(cp, len, &gs, err), 0);
    free(cp);
    ck_assert_str_eq(gs.action, "");
    ck_assert(gs.paused);
    ck_assert_uint_eq(gs.max_concurrent_moves, 4);
    ck_assert_uint_eq(gs.split_size, 96ULL << 20);
    ck_assert_uint_eq(gs.split_qps, 2000);
    ck_assert_uint_eq(gs.down_after_ms, 30000);
    ck_assert_uint_eq(gs.max_lag_entries, 1000);
    ck_assert_uint_eq(gs.max_lag_ms, 5000);
    ck_assert_uint_eq(gs.snapshot_rate, 64ULL << 20);
    ck_assert_uint_eq(gs.ops_finished, 12);
    ck_assert_uint_eq(gs.ops_cancelled, 3);
    ck_assert_uint_eq(gs.n_ops, 4);
    for (size_t i = 0; i < 4; i++)
        check_op_eq(&gs.ops[i], &sample_ops[i]);
    bs_adm_sched_free(&gs);
    ck_assert_ptr_null(gs.ops);
    ck_assert_uint_eq(gs.n_ops, 0);
    bs_adm_sched_free(&gs);
    bs_adm_sched_free(NULL);

    /* The longest action; an empty one is the empty message. */
    memset(s.action, 'a', sizeof s.action - 1);
    ck_assert_int_eq(bs_adm_sched_req_encode(&s, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_sched_req_decode(buf, len, &gs, err), 0);
    free(buf);
    ck_assert_str_eq(gs.action, s.action);
    s.action[0] = '\0';
    ck_assert_int_eq(bs_adm_sched_req_encode(&s, &buf, &len, err), 0);
    ck_assert_uint_eq(len, 0);
    free(buf);
}
END_TEST

START_TEST(test_isr_round_trip)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_isr_shard *got;
    uint8_t *buf, *cp;
    size_t len, n;
    uint64_t id;

    ck_assert_int_eq(bs_adm_isr_req_encode(UINT64_MAX, &buf, &len, err), 0);
    ck_assert_int_eq(bs_adm_isr_req_decode(buf, len, &id, err), 0);
    ck_assert_uint_eq(id, UINT64_MAX);
    free(buf);
    /* 0 = every shard: the empty message. */
    ck_assert_int_eq(bs_adm_isr_req_encode(0, &buf, &len, err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bs_adm_isr_req_decode(buf, len, &id, err), 0);
    ck_assert_uint_eq(id, 0);
    free(buf);

    fill_isr();
    ck_assert_int_eq(bs_adm_isr_resp_encode(sample_isr, 3, &buf, &len, err), 0);
    cp = exact(buf, len);
    free(buf);
    ck_assert_int_eq(bs_adm_isr_resp_decode(cp, len, &got, &n, err), 0);
    free(cp);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < 3; i++)
        check_isr_eq(&got[i], &sample_isr[i]);
    free(got);

    ck_assert_int_eq(bs_adm_isr_resp_encode(NULL, 0, &buf, &len, err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bs_adm_isr_resp_decode(buf, len, &got, &n, err), 0);
    ck_assert_ptr_null(got);
    ck_assert_uint_eq(n, 0);
    free(buf);
}
END_TEST

/* ------------------------------------------------- encoders refuse */

START_TEST(test_encode_refuses)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_status st = sample_status();
    struct bs_adm_ping p = {0};
    struct bs_adm_etcd_status es = {0};
    struct bs_adm_member mb = {0};
    struct bs_rpc_header h = {0};
    static uint8_t big[BS_ADM_MAX_KEY + 1];
    uint8_t *buf = (uint8_t *)"x";
    size_t len = 1;

    memset(sample_nodes[1].peer_addr, 'x', sizeof sample_nodes[1].peer_addr);
    err[0] = '\0';
    ck_assert_int_eq(bs_adm_status_encode(&st, &buf, &len, err), BS_EINVAL);
    ck_assert_ptr_null(buf);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(strstr(err, "nodes[1].peer_addr"));

    st = sample_status();
    sample_shards[2].n_replicas = BS_RAFT_MAX_MEMBERS + 1;
    ck_assert_int_eq(bs_adm_status_encode(&st, &buf, &len, err), BS_EINVAL);
    ck_assert_int_eq(
        bs_adm_shard_info_resp_encode(&sample_shards[2], &buf, &len, err),
        BS_EINVAL);

    st = sample_status();
    sample_shards[0].start = big;
    sample_shards[0].start_len = sizeof big;
    ck_assert_int_eq(bs_adm_status_encode(&st, &buf, &len, err), BS_EINVAL);

    st = sample_status();
    st.n_nodes = BS_ADM_MAX_NODES + 1;
    ck_assert_int_eq(bs_adm_status_encode(&st, &buf, &len, err), BS_EINVAL);
    st = sample_status();
    st.shards = NULL;
    ck_assert_int_eq(bs_adm_status_encode(&st, &buf, &len, err), BS_EINVAL);

    ck_assert_int_eq(
        bs_adm_shard_info_req_encode(0, big, sizeof big, &buf, &len, err),
        BS_EINVAL);
    ck_assert_int_eq(bs_adm_shard_info_req_encode(0, NULL, 3, &buf, &len, err),
                     BS_EINVAL);

    memset(p.version, 'v', sizeof p.version);
    ck_assert_int_eq(bs_adm_ping_resp_encode(&p, &buf, &len, err), BS_EINVAL);
    /* The request does not carry the version. */
    ck_assert_int_eq(bs_adm_ping_req_encode(&p, &buf, &len, err), 0);
    free(buf);
    p.payload_len = 3;
    ck_assert_int_eq(bs_adm_ping_req_encode(&p, &buf, &len, err), BS_EINVAL);

    memset(es.version, '3', sizeof es.version);
    ck_assert_int_eq(bs_adm_etcd_status_encode(&es, &buf, &len, err),
                     BS_EINVAL);
    memset(mb.client_url, 'u', sizeof mb.client_url);
    ck_assert_int_eq(bs_adm_member_list_encode(&h, &mb, 1, &buf, &len, err),
                     BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "members[0].client_url"));
    ck_assert_int_eq(bs_adm_member_list_encode(&h, NULL, 1, &buf, &len, err),
                     BS_EINVAL);
}
END_TEST

/* Asserts that an encoder refused: BS_EINVAL, no buffer, err naming
 * what. */
static void refused(int rc, const uint8_t *buf, size_t len, const char *err,
                    const char *what)
{
    ck_assert_msg(rc == BS_EINVAL, "got %s, want BS_EINVAL (%s)",
                  bs_err_name(rc), what);
    ck_assert_ptr_null(buf);
    ck_assert_uint_eq(len, 0);
    ck_assert_msg(strstr(err, what) != NULL, "'%s' does not name %s", err,
                  what);
}

START_TEST(test_encode_refuses_new)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_status st;
    struct bs_adm_join j;
    struct bs_adm_remove rm = {0};
    struct bs_adm_rebalance rb = {0};
    struct bs_adm_sched s;
    struct bs_adm_split sp = {0};
    static uint8_t big[BS_ADM_MAX_KEY + 1];
    uint8_t *buf;
    size_t len;
    int rc;

    /* NodeStatus 8-13 wherever a NodeStatus is. */
    st = sample_status();
    memset(sample_nodes[1].state, 'x', sizeof sample_nodes[1].state);
    rc = bs_adm_status_encode(&st, &buf, &len, err);
    refused(rc, buf, len, err, "nodes[1].state");
    st = sample_status();
    memset(sample_nodes[2].rack, 'x', sizeof sample_nodes[2].rack);
    rc = bs_adm_status_encode(&st, &buf, &len, err);
    refused(rc, buf, len, err, "nodes[2].rack");
    memset(&j, 0, sizeof j);
    j.nodes = sample_nodes;
    j.n_nodes = 3;
    rc = bs_adm_join_resp_encode(&j, &buf, &len, err);
    refused(rc, buf, len, err, "nodes[2].rack");
    fill_samples();
    memset(sample_nodes[0].http_addr, 'x', sizeof sample_nodes[0].http_addr);
    rc = bs_adm_join_resp_encode(&j, &buf, &len, err);
    refused(rc, buf, len, err, "nodes[0].http_addr");
    /* The request does not carry the nodes. */
    ck_assert_int_eq(bs_adm_join_req_encode(&j, &buf, &len, err), 0);
    free(buf);
    fill_samples();
    j.n_nodes = BS_ADM_MAX_NODES + 1;
    rc = bs_adm_join_resp_encode(&j, &buf, &len, err);
    refused(rc, buf, len, err, "nodes");
    j.nodes = NULL;
    j.n_nodes = 1;
    rc = bs_adm_join_resp_encode(&j, &buf, &len, err);
    refused(rc, buf, len, err, "NULL");

    /* The join request: addresses, labels, their count. */
    j = sample_join_req();
    memset(j.peer_addr, 'p', sizeof j.peer_addr);
    rc = bs_adm_join_req_encode(&j, &buf, &len, err);
    refused(rc, buf, len, err, "peer_addr");
    j = sample_join_req();
    memset(j.labels[1].value, 'v', sizeof j.labels[1].value);
    rc = bs_adm_join_req_encode(&j, &buf, &len, err);
    refused(rc, buf, len, err, "labels[1].value");
    j = sample_join_req();
    memset(j.labels[2].key, 'k', sizeof j.labels[2].key);
    rc = bs_adm_join_req_encode(&j, &buf, &len, err);
    refused(rc, buf, len, err, "labels[2].key");
    /* A label beyond n_labels is not looked at. */
    j = sample_join_req();
    memset(j.labels[3].key, 'k', sizeof j.labels[3].key);
    ck_assert_int_eq(bs_adm_join_req_encode(&j, &buf, &len, err), 0);
    free(buf);
    j.n_labels = BS_ADM_MAX_LABELS + 1;
    rc = bs_adm_join_req_encode(&j, &buf, &len, err);
    refused(rc, buf, len, err, "labels");
    /* The response does not carry the labels. */
    ck_assert_int_eq(bs_adm_join_resp_encode(&j, &buf, &len, err), 0);
    free(buf);

    /* RemoveNode: the response's state; the request has none. */
    memset(rm.state, 's', sizeof rm.state);
    rc = bs_adm_remove_resp_encode(&rm, &buf, &len, err);
    refused(rc, buf, len, err, "state");
    ck_assert_int_eq(bs_adm_remove_req_encode(&rm, &buf, &len, err), 0);
    free(buf);

    /* Operators: strings, split keys, counts, arrays. */
    fill_ops();
    rb.plan = sample_ops;
    rb.n_plan = 2;
    rb.in_flight = sample_ops + 2;
    rb.n_in_flight = 2;
    memset(sample_ops[0].kind, 'k', sizeof sample_ops[0].kind);
    rc = bs_adm_rebalance_resp_encode(&rb, &buf, &len, err);
    refused(rc, buf, len, err, "plan[0].kind");
    fill_ops();
    memset(sample_ops[3].reason, 'r', sizeof sample_ops[3].reason);
    rc = bs_adm_rebalance_resp_encode(&rb, &buf, &len, err);
    refused(rc, buf, len, err, "in_flight[1].reason");
    /* The request carries no operator. */
    ck_assert_int_eq(bs_adm_rebalance_req_encode(&rb, &buf, &len, err), 0);
    free(buf);
    fill_ops();
    sample_ops[1].split_key = big;
    sample_ops[1].split_key_len = sizeof big;
    rc = bs_adm_rebalance_resp_encode(&rb, &buf, &len, err);
    refused(rc, buf, len, err, "plan[1].split_key");
    sample_ops[1].split_key = NULL;
    sample_ops[1].split_key_len = 1;
    rc = bs_adm_rebalance_resp_encode(&rb, &buf, &len, err);
    refused(rc, buf, len, err, "plan[1].split_key");
    fill_ops();
    rb.in_flight = NULL;
    rc = bs_adm_rebalance_resp_encode(&rb, &buf, &len, err);
    refused(rc, buf, len, err, "in_flight");
    /* BS_ADM_MAX_OPS holds for the whole message (checked before any
     * element is looked at). */
    rb.n_plan = BS_ADM_MAX_OPS / 2 + 1;
    rb.n_in_flight = BS_ADM_MAX_OPS / 2;
    rc = bs_adm_rebalance_resp_encode(&rb, &buf, &len, err);
    refused(rc, buf, len, err, "operators");
    rb.n_plan = SIZE_MAX;
    rb.n_in_flight = 2;
    rc = bs_adm_rebalance_resp_encode(&rb, &buf, &len, err);
    refused(rc, buf, len, err, "operators");

    s = sample_sched();
    memset(sample_ops[2].kind, 'k', sizeof sample_ops[2].kind);
    rc = bs_adm_sched_resp_encode(&s, &buf, &len, err);
    refused(rc, buf, len, err, "operators[2].kind");
    /* The request carries the action only. */
    ck_assert_int_eq(bs_adm_sched_req_encode(&s, &buf, &len, err), 0);
    free(buf);
    s = sample_sched();
    s.n_ops = BS_ADM_MAX_OPS + 1;
    rc = bs_adm_sched_resp_encode(&s, &buf, &len, err);
    refused(rc, buf, len, err, "operators");
    s = sample_sched();
    memset(s.action, 'a', sizeof s.action);
    rc = bs_adm_sched_req_encode(&s, &buf, &len, err);
    refused(rc, buf, len, err, "action");
    ck_assert_int_eq(bs_adm_sched_resp_encode(&s, &buf, &len, err), 0);
    free(buf);

    /* ISR: a Raft group's members, the shard count, the array. */
    fill_isr();
    sample_isr[2].n_replicas = BS_RAFT_MAX_MEMBERS + 1;
    rc = bs_adm_isr_resp_encode(sample_isr, 3, &buf, &len, err);
    refused(rc, buf, len, err, "replicas");
    fill_isr();
    rc =
        bs_adm_isr_resp_encode(sample_isr, BS_ADM_MAX_OPS + 1, &buf, &len, err);
    refused(rc, buf, len, err, "shards");
    rc = bs_adm_isr_resp_encode(NULL, 1, &buf, &len, err);
    refused(rc, buf, len, err, "NULL");

    /* Split: the key's length and pointer. */
    sp.key = big;
    sp.key_len = sizeof big;
    rc = bs_adm_split_req_encode(&sp, &buf, &len, err);
    refused(rc, buf, len, err, "key");
    sp.key_len = sizeof big - 1;
    ck_assert_int_eq(bs_adm_split_req_encode(&sp, &buf, &len, err), 0);
    free(buf);
    sp.key = NULL;
    sp.key_len = 1;
    rc = bs_adm_split_req_encode(&sp, &buf, &len, err);
    refused(rc, buf, len, err, "key");
    /* The response does not carry the key. */
    ck_assert_int_eq(bs_adm_split_resp_encode(&sp, &buf, &len, err), 0);
    free(buf);
}
END_TEST

/* ------------------------------------------------- decoders refuse */

enum target {
    T_STATUS,
    T_SHARD_REQ,
    T_SHARD_RESP,
    T_PING_REQ,
    T_PING_RESP,
    T_ETCD_STATUS,
    T_MEMBERS,
    T_COMPACT_REQ,
    T_COMPACT_RESP,
    T_JOIN_REQ,
    T_JOIN_RESP,
    T_REMOVE_REQ,
    T_REMOVE_RESP,
    T_REBALANCE_REQ,
    T_REBALANCE_RESP,
    T_ISR_REQ,
    T_ISR_RESP,
    T_SPLIT_REQ,
    T_SPLIT_RESP,
    T_SCHED_REQ,
    T_SCHED_RESP,
    T__COUNT
};

/* The message of the last failed dec_as. */
static char dec_err[BS_RPC_ERRMSG_LEN];

/* Decodes buf[len] (copied exactly) as target; checks the contract of a
 * failure (a message, outputs zeroed) and frees a success. */
static int dec_as(int target, const void *p, size_t len)
{
    char err[BS_RPC_ERRMSG_LEN];
    uint8_t *buf = exact(p, len);
    int rc;

    err[0] = '\0';
    switch (target) {
    case T_STATUS: {
        struct bs_adm_status st;

        rc = bs_adm_status_decode(buf, len, &st, err);
        if (rc != 0)
            ck_assert(all_zero(&st, sizeof st));
        bs_adm_status_free(&st);
        break;
    }
    case T_SHARD_REQ: {
        uint64_t id;
        uint8_t *key;
        size_t kl;

        rc = bs_adm_shard_info_req_decode(buf, len, &id, &key, &kl, err);
        if (rc != 0)
            ck_assert(key == NULL && kl == 0 && id == 0);
        free(key);
        break;
    }
    case T_SHARD_RESP: {
        struct bs_adm_shard sh;

        rc = bs_adm_shard_info_resp_decode(buf, len, &sh, err);
        if (rc != 0)
            ck_assert(all_zero(&sh, sizeof sh));
        bs_adm_shard_free(&sh);
        break;
    }
    case T_PING_REQ:
    case T_PING_RESP: {
        struct bs_adm_ping pg;

        rc = target == T_PING_REQ ? bs_adm_ping_req_decode(buf, len, &pg, err)
                                  : bs_adm_ping_resp_decode(buf, len, &pg, err);
        if (rc != 0)
            ck_assert(all_zero(&pg, sizeof pg));
        bs_adm_ping_free(&pg);
        break;
    }
    case T_ETCD_STATUS: {
        struct bs_adm_etcd_status s;

        rc = bs_adm_etcd_status_decode(buf, len, &s, err);
        if (rc != 0)
            ck_assert(all_zero(&s, sizeof s));
        break;
    }
    case T_MEMBERS: {
        struct bs_adm_member *m;
        struct bs_rpc_header h;
        size_t n;

        rc = bs_adm_member_list_decode(buf, len, &h, &m, &n, err);
        if (rc != 0)
            ck_assert(m == NULL && n == 0 && all_zero(&h, sizeof h));
        free(m);
        break;
    }
    case T_COMPACT_REQ: {
        int64_t rev;
        bool phys;

        rc = bs_adm_compact_req_decode(buf, len, &rev, &phys, err);
        if (rc != 0)
            ck_assert(rev == 0 && !phys);
        break;
    }
    case T_COMPACT_RESP: {
        struct bs_rpc_header h;

        rc = bs_adm_compact_resp_decode(buf, len, &h, err);
        if (rc != 0)
            ck_assert(all_zero(&h, sizeof h));
        break;
    }
    case T_JOIN_REQ:
    case T_JOIN_RESP: {
        struct bs_adm_join j;

        rc = target == T_JOIN_REQ ? bs_adm_join_req_decode(buf, len, &j, err)
                                  : bs_adm_join_resp_decode(buf, len, &j, err);
        if (rc != 0)
            ck_assert(all_zero(&j, sizeof j));
        bs_adm_join_free(&j);
        break;
    }
    case T_REMOVE_REQ:
    case T_REMOVE_RESP: {
        struct bs_adm_remove r;

        rc = target == T_REMOVE_REQ
                 ? bs_adm_remove_req_decode(buf, len, &r, err)
                 : bs_adm_remove_resp_decode(buf, len, &r, err);
        if (rc != 0)
            ck_assert(all_zero(&r, sizeof r));
        break;
    }
    case T_REBALANCE_REQ:
    case T_REBALANCE_RESP: {
        struct bs_adm_rebalance r;

        rc = target == T_REBALANCE_REQ
                 ? bs_adm_rebalance_req_decode(buf, len, &r, err)
                 : bs_adm_rebalance_resp_decode(buf, len, &r, err);
        if (rc != 0)
            ck_assert(all_zero(&r, sizeof r));
        bs_adm_rebalance_free(&r);
        break;
    }
    case T_ISR_REQ: {
        uint64_t id;

        rc = bs_adm_isr_req_decode(buf, len, &id, err);
        if (rc != 0)
            ck_assert_uint_eq(id, 0);
        break;
    }
    case T_ISR_RESP: {
        struct bs_adm_isr_shard *sh;
        size_t n;

        rc = bs_adm_isr_resp_decode(buf, len, &sh, &n, err);
        if (rc != 0)
            ck_assert(sh == NULL && n == 0);
        free(sh);
        break;
    }
    case T_SPLIT_REQ:
    case T_SPLIT_RESP: {
        struct bs_adm_split s;

        rc = target == T_SPLIT_REQ
                 ? bs_adm_split_req_decode(buf, len, &s, err)
                 : bs_adm_split_resp_decode(buf, len, &s, err);
        if (rc != 0)
            ck_assert(all_zero(&s, sizeof s));
        free(s.key);
        break;
    }
    default: {
        struct bs_adm_sched s;

        ck_assert(target == T_SCHED_REQ || target == T_SCHED_RESP);
        rc = target == T_SCHED_REQ
                 ? bs_adm_sched_req_decode(buf, len, &s, err)
                 : bs_adm_sched_resp_decode(buf, len, &s, err);
        if (rc != 0)
            ck_assert(all_zero(&s, sizeof s));
        bs_adm_sched_free(&s);
        break;
    }
    }
    if (rc != 0)
        ck_assert_msg(err[0] != '\0', "no message for %d", rc);
    memcpy(dec_err, err, sizeof dec_err);
    free(buf);
    return rc;
}

/* Asserts rc and that the message names what (when not NULL). */
static void dec_expect(int target, const struct w *w, int want,
                       const char *what)
{
    int rc = dec_as(target, w->b, w->n);

    ck_assert_msg(rc == want, "got %s, want %s (%s)", bs_err_name(rc),
                  bs_err_name(want), what);
    if (want != 0 && what != NULL)
        ck_assert_msg(strstr(dec_err, what) != NULL, "'%s' does not name %s",
                      dec_err, what);
}

START_TEST(test_decode_refuses)
{
    struct w *w = w_new(), *m = w_new(), *r = w_new();
    char long_addr[BS_ADM_ADDR_MAX + 2];

    /* A string one byte too long for its array. */
    memset(long_addr, 'a', sizeof long_addr - 1);
    long_addr[sizeof long_addr - 1] = '\0';
    w_uint(m, 1, 5);
    w_str(m, 3, long_addr);
    w_msg(w, 3, m);
    dec_expect(T_STATUS, w, BS_ETOOBIG, "NodeStatus.peer_addr");
    /* One byte less fits. */
    w->n = m->n = 0;
    w_str(m, 3, long_addr + 1);
    w_msg(w, 3, m);
    dec_expect(T_STATUS, w, 0, NULL);

    /* A NUL inside a string. */
    w->n = m->n = 0;
    w_bytes(m, 2, "a\0b", 3);
    w_msg(w, 3, m);
    dec_expect(T_STATUS, w, BS_EPROTO, "NodeStatus.client_addr");

    /* A string sent as a varint (the wire-type trap). */
    w->n = m->n = 0;
    w_uint(m, 4, 12345);
    w_msg(w, 3, m);
    dec_expect(T_STATUS, w, BS_EPROTO, "NodeStatus.http_addr");
    /* A repeated submessage sent as a varint. */
    w->n = 0;
    w_uint(w, 4, 1);
    dec_expect(T_STATUS, w, BS_EPROTO, "ClusterStatusResponse.shards");

    /* More replicas than a Raft group has; the keys decoded before the
     * error are freed (valgrind/asan). */
    w->n = m->n = 0;
    w_str(m, 2, "start");
    w_str(m, 3, "end");
    r->n = 0;
    w_uint(r, 1, 1);
    for (int i = 0; i <= BS_RAFT_MAX_MEMBERS; i++)
        w_msg(m, 12, r);
    w_msg(w, 4, m);
    dec_expect(T_STATUS, w, BS_EPROTO, "ShardStatus.replicas");
    w->n = 0;
    w_msg(w, 1, m);
    dec_expect(T_SHARD_RESP, w, BS_EPROTO, NULL);

    /* A boundary longer than a key may be. */
    {
        static uint8_t key[BS_ADM_MAX_KEY + 1];

        w->n = m->n = 0;
        w_str(m, 2, "a");
        w_bytes(m, 3, key, sizeof key);
        w_msg(w, 4, m);
        dec_expect(T_STATUS, w, BS_ETOOBIG, "ShardStatus.end");
        w->n = 0;
        w_bytes(w, 2, key, sizeof key);
        dec_expect(T_SHARD_REQ, w, BS_ETOOBIG, NULL);
        w->n = 0;
        w_bytes(w, 2, key, sizeof key - 1);
        dec_expect(T_SHARD_REQ, w, 0, NULL);
    }

    /* Too many nodes, too many shards (empty elements). */
    w->n = m->n = 0;
    for (int i = 0; i <= BS_ADM_MAX_NODES; i++)
        w_msg(w, 3, m);
    dec_expect(T_STATUS, w, BS_ETOOBIG, "nodes");
    w->n = 0;
    for (int i = 0; i < BS_ADM_MAX_NODES; i++)
        w_msg(w, 3, m);
    dec_expect(T_STATUS, w, 0, NULL);
    {
        /* 65537 two-byte shards do not fit in struct w. */
        size_t n = (BS_ADM_MAX_SHARDS + 1) * 2;
        uint8_t *b = malloc(n);
        struct bs_adm_status st;
        char err[BS_RPC_ERRMSG_LEN];

        for (size_t i = 0; i < n; i += 2) {
            b[i] = 4 << 3 | 2;
            b[i + 1] = 0;
        }
        ck_assert_int_eq(bs_adm_status_decode(b, n, &st, err), BS_ETOOBIG);
        ck_assert_ptr_nonnull(strstr(err, "shards"));
        ck_assert_int_eq(bs_adm_status_decode(b, n - 2, &st, err), 0);
        ck_assert_uint_eq(st.n_shards, BS_ADM_MAX_SHARDS);
        bs_adm_status_free(&st);
        free(b);
    }

    /* A whole message beyond the limit is refused before it is read. */
    {
        size_t n = (size_t)BS_RPC_DEFAULT_MAX_MESSAGE + 1;
        uint8_t *b = calloc(1, n);
        struct bs_adm_ping pg;
        char err[BS_RPC_ERRMSG_LEN];

        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(bs_adm_ping_req_decode(b, n, &pg, err), BS_ETOOBIG);
        free(b);
    }

    /* A version longer than 31 bytes; a NUL in an etcd string. */
    w->n = 0;
    w_str(w, 3, "0123456789012345678901234567890123");
    dec_expect(T_PING_RESP, w, BS_ETOOBIG, NULL);
    w->n = 0;
    w_str(w, 2, "0123456789012345678901234567890");
    dec_expect(T_ETCD_STATUS, w, 0, NULL);
    w->n = 0;
    w_str(w, 2, "01234567890123456789012345678901");
    dec_expect(T_ETCD_STATUS, w, BS_ETOOBIG, NULL);
    w->n = m->n = 0;
    w_bytes(m, 2, "n\0", 2);
    w_msg(w, 2, m);
    dec_expect(T_MEMBERS, w, BS_EPROTO, NULL);

    /* etcd's lists: the first URL is kept, the others skipped; the
     * errors of a StatusResponse are skipped. */
    {
        struct bs_adm_member *mm;
        struct bs_rpc_header h;
        struct bs_adm_etcd_status es;
        size_t n;
        char err[BS_RPC_ERRMSG_LEN];

        w->n = m->n = 0;
        w_uint(m, 1, 3);
        w_str(m, 3, "http://a:2380");
        w_str(m, 3, "http://b:2380");
        w_str(m, 4, "http://a:2379");
        w_str(m, 4, "http://b:2379");
        w_msg(w, 2, m);
        ck_assert_int_eq(
            bs_adm_member_list_decode(w->b, w->n, &h, &mm, &n, err), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(mm[0].peer_url, "http://a:2380");
        ck_assert_str_eq(mm[0].client_url, "http://a:2379");
        free(mm);
        w->n = 0;
        w_str(w, 2, "3.4.23");
        w_str(w, 8, "alarm: NOSPACE");
        w_uint(w, 10, 1);
        ck_assert_int_eq(bs_adm_etcd_status_decode(w->b, w->n, &es, err), 0);
        ck_assert_str_eq(es.version, "3.4.23");
        ck_assert(es.is_learner);
    }

    /* Not protobuf at all. */
    for (int t = 0; t < T__COUNT; t++) {
        ck_assert_int_eq(dec_as(t, "\xff\xff\xff", 3), BS_EPROTO);
        /* Field 0 is not a field. */
        ck_assert_int_eq(dec_as(t, "\x00\x01", 2), BS_EPROTO);
        /* A varint that never ends. */
        ck_assert_int_eq(dec_as(t, "\x08\x80\x80", 3), BS_EPROTO);
    }
    free(w);
    free(m);
    free(r);
}
END_TEST

/* A string of n bytes c (n < 4096), in a static buffer. */
static const char *rep(char c, size_t n)
{
    static char s[4096];

    ck_assert_uint_lt(n, sizeof s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Writes count copies of field field holding m, as one message into b
 * (malloc'd, *n bytes): for counts that do not fit in struct w. */
static uint8_t *repeated(unsigned field, const struct w *m, size_t count,
                         size_t *n)
{
    struct w *e = w_new();
    uint8_t *b;

    w_msg(e, field, m);
    b = malloc(e->n * count);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < count; i++)
        memcpy(b + i * e->n, e->b, e->n);
    *n = e->n * count;
    free(e);
    return b;
}

START_TEST(test_decode_refuses_new)
{
    struct w *w = w_new(), *m = w_new(), *r = w_new();
    char err[BS_RPC_ERRMSG_LEN];
    static uint8_t key[BS_ADM_MAX_KEY + 1];

    /* NodeStatus 8-13, in both messages that carry it: a string one
     * byte too long, the longest, a NUL, the wire-type trap. */
    for (int k = 0; k < 2; k++) {
        int t = k == 0 ? T_STATUS : T_JOIN_RESP;

        w->n = m->n = 0;
        w_str(m, 8, rep('s', 16));
        w_msg(w, 3, m);
        dec_expect(t, w, BS_ETOOBIG, "NodeStatus.state");
        w->n = m->n = 0;
        w_str(m, 8, rep('s', 15));
        w_str(m, 9, rep('r', BS_ADM_LABEL_MAX));
        w_uint(m, 10, UINT64_MAX);
        w_uint(m, 13, 1);
        w_msg(w, 3, m);
        dec_expect(t, w, 0, NULL);
        w->n = m->n = 0;
        w_str(m, 9, rep('r', BS_ADM_LABEL_MAX + 1));
        w_msg(w, 3, m);
        dec_expect(t, w, BS_ETOOBIG, "NodeStatus.rack");
        w->n = m->n = 0;
        w_bytes(m, 9, "r\0", 2);
        w_msg(w, 3, m);
        dec_expect(t, w, BS_EPROTO, "NodeStatus.rack");
        w->n = m->n = 0;
        w_uint(m, 8, 3);
        w_msg(w, 3, m);
        dec_expect(t, w, BS_EPROTO, "NodeStatus.state");
        w->n = 0;
        w_uint(w, 3, 1);
        dec_expect(t, w, BS_EPROTO, "nodes");
    }
    /* Too many nodes in a JoinResponse; nodes decoded before are freed. */
    w->n = m->n = 0;
    w_str(m, 2, "a:1");
    for (int i = 0; i <= BS_ADM_MAX_NODES; i++)
        w_msg(w, 3, m);
    dec_expect(T_JOIN_RESP, w, BS_ETOOBIG, "JoinResponse");
    w->n -= m->n + 2;
    dec_expect(T_JOIN_RESP, w, 0, NULL);

    /* Labels: their count, their strings, their wire type. */
    w->n = m->n = 0;
    w_str(m, 1, "k");
    w_str(m, 2, "v");
    for (int i = 0; i < BS_ADM_MAX_LABELS; i++)
        w_msg(w, 4, m);
    dec_expect(T_JOIN_REQ, w, 0, NULL);
    w_msg(w, 4, m);
    dec_expect(T_JOIN_REQ, w, BS_ETOOBIG, "labels");
    w->n = m->n = 0;
    w_str(m, 1, rep('k', BS_ADM_LABEL_KEY_MAX + 1));
    w_msg(w, 4, m);
    dec_expect(T_JOIN_REQ, w, BS_ETOOBIG, "Label.key");
    w->n = m->n = 0;
    w_str(m, 1, rep('k', BS_ADM_LABEL_KEY_MAX));
    w_str(m, 2, rep('v', BS_ADM_LABEL_MAX + 1));
    w_msg(w, 4, m);
    dec_expect(T_JOIN_REQ, w, BS_ETOOBIG, "Label.value");
    w->n = m->n = 0;
    w_str(m, 1, rep('k', BS_ADM_LABEL_KEY_MAX));
    w_str(m, 2, rep('v', BS_ADM_LABEL_MAX));
    w_msg(w, 4, m);
    dec_expect(T_JOIN_REQ, w, 0, NULL);
    w->n = m->n = 0;
    w_bytes(m, 1, "\0", 1);
    w_msg(w, 4, m);
    dec_expect(T_JOIN_REQ, w, BS_EPROTO, "Label.key");
    w->n = m->n = 0;
    w_uint(m, 2, 7);
    w_msg(w, 4, m);
    dec_expect(T_JOIN_REQ, w, BS_EPROTO, "Label.value");
    w->n = 0;
    w_uint(w, 4, 7);
    dec_expect(T_JOIN_REQ, w, BS_EPROTO, "JoinRequest.labels");
    w->n = 0;
    w_str(w, 1, rep('a', BS_ADM_ADDR_MAX + 1));
    dec_expect(T_JOIN_REQ, w, BS_ETOOBIG, "JoinRequest.client_addr");
    w->n = 0;
    w_bytes(w, 3, "h\0", 2);
    dec_expect(T_JOIN_REQ, w, BS_EPROTO, "JoinRequest.http_addr");

    /* RemoveNodeResponse.state; SchedulerRequest.action. */
    w->n = 0;
    w_str(w, 2, rep('s', 16));
    dec_expect(T_REMOVE_RESP, w, BS_ETOOBIG, "RemoveNodeResponse.state");
    w->n = 0;
    w_str(w, 2, rep('s', 15));
    dec_expect(T_REMOVE_RESP, w, 0, NULL);
    w->n = 0;
    w_str(w, 1, rep('a', 16));
    dec_expect(T_SCHED_REQ, w, BS_ETOOBIG, "SchedulerRequest.action");
    w->n = 0;
    w_bytes(w, 1, "pa\0se", 5);
    dec_expect(T_SCHED_REQ, w, BS_EPROTO, "SchedulerRequest.action");
    w->n = 0;
    w_uint(w, 1, 1);
    dec_expect(T_SCHED_REQ, w, BS_EPROTO, "SchedulerRequest.action");

    /* Operators, in the three lists that carry them; the split keys
     * decoded before the error are freed (valgrind/asan). */
    {
        const struct {
            int target;
            unsigned field;
        } lists[] = {
            {T_REBALANCE_RESP, 1}, {T_REBALANCE_RESP, 2}, {T_SCHED_RESP, 8}};

        for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
            int t = lists[i].target;
            unsigned fl = lists[i].field;

            w->n = m->n = 0;
            w_str(m, 7, "key");
            w_msg(w, fl, m);
            m->n = 0;
            w_str(m, 2, rep('k', 16));
            w_msg(w, fl, m);
            dec_expect(t, w, BS_ETOOBIG, "Operator.kind");
            w->n = m->n = 0;
            w_str(m, 7, "key");
            w_str(m, 3, rep('r', 24));
            w_msg(w, fl, m);
            dec_expect(t, w, BS_ETOOBIG, "Operator.reason");
            w->n = m->n = 0;
            w_str(m, 2, rep('k', 15));
            w_str(m, 3, rep('r', 23));
            w_bytes(m, 7, key, sizeof key - 1);
            w_msg(w, fl, m);
            dec_expect(t, w, 0, NULL);
            w->n = m->n = 0;
            w_str(m, 7, "first");
            w_bytes(m, 7, key, sizeof key);
            w_msg(w, fl, m);
            dec_expect(t, w, BS_ETOOBIG, "Operator.split_key");
            w->n = m->n = 0;
            w_str(m, 7, "first");
            w_uint(m, 7, 1);
            w_msg(w, fl, m);
            dec_expect(t, w, BS_EPROTO, "Operator.split_key");
            w->n = m->n = 0;
            w_bytes(m, 2, "mo\0ve", 5);
            w_msg(w, fl, m);
            dec_expect(t, w, BS_EPROTO, "Operator.kind");
            w->n = 0;
            w_uint(w, fl, 1);
            dec_expect(t, w, BS_EPROTO, NULL);
        }
    }
    /* BS_ADM_MAX_OPS operators in one message: in one list, or in plan
     * and in_flight together (empty elements, 2 bytes each). */
    {
        size_t n1, n2;
        uint8_t *b1, *b2, *b;
        struct bs_adm_rebalance rb;
        struct bs_adm_sched sc;

        m->n = 0;
        b1 = repeated(1, m, BS_ADM_MAX_OPS / 2, &n1);
        b2 = repeated(2, m, BS_ADM_MAX_OPS / 2 + 1, &n2);
        b = malloc(n1 + n2);
        memcpy(b, b1, n1);
        memcpy(b + n1, b2, n2);
        ck_assert_int_eq(bs_adm_rebalance_resp_decode(b, n1 + n2, &rb, err),
                         BS_ETOOBIG);
        ck_assert_ptr_nonnull(strstr(err, "operators"));
        ck_assert(all_zero(&rb, sizeof rb));
        ck_assert_int_eq(bs_adm_rebalance_resp_decode(b, n1 + n2 - 2, &rb, err),
                         0);
        ck_assert_uint_eq(rb.n_plan, BS_ADM_MAX_OPS / 2);
        ck_assert_uint_eq(rb.n_in_flight, BS_ADM_MAX_OPS / 2);
        bs_adm_rebalance_free(&rb);
        free(b);
        free(b1);
        free(b2);
        b = repeated(8, m, BS_ADM_MAX_OPS + 1, &n1);
        ck_assert_int_eq(bs_adm_sched_resp_decode(b, n1, &sc, err), BS_ETOOBIG);
        ck_assert_ptr_nonnull(strstr(err, "SchedulerResponse.operators"));
        ck_assert_int_eq(bs_adm_sched_resp_decode(b, n1 - 2, &sc, err), 0);
        ck_assert_uint_eq(sc.n_ops, BS_ADM_MAX_OPS);
        bs_adm_sched_free(&sc);
        free(b);
    }

    /* ISR: more replicas than a Raft group has; too many shards. */
    w->n = m->n = r->n = 0;
    w_uint(r, 1, 1);
    w_uint(m, 1, 3);
    for (int i = 0; i < BS_RAFT_MAX_MEMBERS; i++)
        w_msg(m, 6, r);
    w_msg(w, 1, m);
    dec_expect(T_ISR_RESP, w, 0, NULL);
    w->n = 0;
    w_msg(m, 6, r);
    w_msg(w, 1, m);
    dec_expect(T_ISR_RESP, w, BS_EPROTO, "IsrShard.replicas");
    w->n = m->n = 0;
    w_uint(m, 6, 1);
    w_msg(w, 1, m);
    dec_expect(T_ISR_RESP, w, BS_EPROTO, "IsrShard.replicas");
    w->n = 0;
    w_uint(w, 1, 1);
    dec_expect(T_ISR_RESP, w, BS_EPROTO, "IsrStatusResponse.shards");
    {
        size_t len, n;
        uint8_t *b;
        struct bs_adm_isr_shard *sh;

        m->n = 0;
        b = repeated(1, m, BS_ADM_MAX_OPS + 1, &len);
        ck_assert_int_eq(bs_adm_isr_resp_decode(b, len, &sh, &n, err),
                         BS_ETOOBIG);
        ck_assert_ptr_null(sh);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_nonnull(strstr(err, "shards"));
        ck_assert_int_eq(bs_adm_isr_resp_decode(b, len - 2, &sh, &n, err), 0);
        ck_assert_uint_eq(n, BS_ADM_MAX_OPS);
        free(sh);
        free(b);
    }

    /* Split keys: the longest, one byte more, the wire-type trap. */
    w->n = 0;
    w_bytes(w, 2, key, sizeof key - 1);
    dec_expect(T_SPLIT_REQ, w, 0, NULL);
    w->n = 0;
    w_bytes(w, 2, key, sizeof key);
    dec_expect(T_SPLIT_REQ, w, BS_ETOOBIG, "SplitRequest.key");
    w->n = 0;
    w_uint(w, 1, 4);
    w_uint(w, 2, 4);
    dec_expect(T_SPLIT_REQ, w, BS_EPROTO, "SplitRequest.key");

    /* Fields of a later version are skipped, as protobuf requires; a
     * repeated scalar is the last value. */
    {
        struct bs_adm_join j;
        struct bs_adm_split sp;

        w->n = m->n = 0;
        w_str(m, 1, "rack");
        w_str(m, 2, "r1");
        w_uint(m, 3, 99);
        w_uint(w, 6, 4);
        w_msg(w, 4, m);
        w_str(w, 40, "future");
        w_uint(w, 6, 5);
        ck_assert_int_eq(bs_adm_join_req_decode(w->b, w->n, &j, err), 0);
        ck_assert_uint_eq(j.node_id, 5);
        ck_assert_uint_eq(j.n_labels, 1);
        ck_assert_str_eq(j.labels[0].value, "r1");
        bs_adm_join_free(&j);
        w->n = 0;
        w_uint(w, 3, 1);
        w_uint(w, 1, 8);
        ck_assert_int_eq(bs_adm_split_resp_decode(w->b, w->n, &sp, err), 0);
        ck_assert_uint_eq(sp.op_id, 8);
    }

    /* Not protobuf at all. */
    for (int t = T_JOIN_REQ; t < T__COUNT; t++) {
        ck_assert_int_eq(dec_as(t, "\xff\xff\xff", 3), BS_EPROTO);
        ck_assert_int_eq(dec_as(t, "\x00\x01", 2), BS_EPROTO);
        ck_assert_int_eq(dec_as(t, "\x08\x80\x80", 3), BS_EPROTO);
    }
    free(w);
    free(m);
    free(r);
}
END_TEST

/* valid_encoding() of the membership, scheduling and ISR messages: the
 * samples, without sample_ops[3] (its key would not fit the fuzzer's
 * buffer). */
static int valid_encoding_new(int target, uint8_t **out, size_t *len)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_join j = sample_join_req();
    struct bs_adm_remove rm = {3, true, "draining", 12};
    struct bs_adm_rebalance rb = {0};
    struct bs_adm_sched sc = sample_sched();
    struct bs_adm_split sp = {9, (uint8_t *)"m\0n", 3, 77, 10};

    fill_samples();
    fill_isr();
    j.node_id = 4;
    j.cluster_id = 5;
    j.nodes = sample_nodes;
    j.n_nodes = 3;
    rb.dry_run = true;
    rb.max_moves = 8;
    rb.plan = sample_ops;
    rb.n_plan = 2;
    rb.in_flight = sample_ops + 2;
    rb.n_in_flight = 1;
    switch (target) {
    case T_JOIN_REQ:
        return bs_adm_join_req_encode(&j, out, len, err);
    case T_JOIN_RESP:
        return bs_adm_join_resp_encode(&j, out, len, err);
    case T_REMOVE_REQ:
        return bs_adm_remove_req_encode(&rm, out, len, err);
    case T_REMOVE_RESP:
        return bs_adm_remove_resp_encode(&rm, out, len, err);
    case T_REBALANCE_REQ:
        return bs_adm_rebalance_req_encode(&rb, out, len, err);
    case T_REBALANCE_RESP:
        return bs_adm_rebalance_resp_encode(&rb, out, len, err);
    case T_ISR_REQ:
        return bs_adm_isr_req_encode(7, out, len, err);
    case T_ISR_RESP:
        return bs_adm_isr_resp_encode(sample_isr, 3, out, len, err);
    case T_SPLIT_REQ:
        return bs_adm_split_req_encode(&sp, out, len, err);
    case T_SPLIT_RESP:
        return bs_adm_split_resp_encode(&sp, out, len, err);
    case T_SCHED_REQ:
        return bs_adm_sched_req_encode(&sc, out, len, err);
    default:
        ck_assert_int_eq(target, T_SCHED_RESP);
        return bs_adm_sched_resp_encode(&sc, out, len, err);
    }
}

/* Valid encodings of every target, for truncation and mutation. */
static size_t valid_encoding(int target, uint8_t **out)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_status st = sample_status();
    struct bs_adm_ping p = {0};
    struct bs_adm_etcd_status es = {0};
    struct bs_adm_member mb[2];
    struct bs_rpc_header h = {1, 2, 3, 4};
    size_t len = 0;
    int rc;

    p.cluster_id = 1;
    p.node_id = 2;
    p.from_node = 3;
    p.uptime_ms = 4;
    strcpy(p.version, "1.0");
    p.payload = (uint8_t *)"payload";
    p.payload_len = 7;
    es.hdr = h;
    strcpy(es.version, "3.4.0");
    es.db_size = 5;
    es.leader = 6;
    memset(mb, 0, sizeof mb);
    mb[0].id = 1;
    strcpy(mb[0].name, "a");
    strcpy(mb[0].peer_url, "http://a:2380");
    strcpy(mb[0].client_url, "http://a:2379");
    mb[1].id = 2;
    switch (target) {
    case T_STATUS:
        rc = bs_adm_status_encode(&st, out, &len, err);
        break;
    case T_SHARD_REQ:
        rc = bs_adm_shard_info_req_encode(5, B("key"), 3, out, &len, err);
        break;
    case T_SHARD_RESP:
        rc = bs_adm_shard_info_resp_encode(&sample_shards[0], out, &len, err);
        break;
    case T_PING_REQ:
        rc = bs_adm_ping_req_encode(&p, out, &len, err);
        break;
    case T_PING_RESP:
        rc = bs_adm_ping_resp_encode(&p, out, &len, err);
        break;
    case T_ETCD_STATUS:
        rc = bs_adm_etcd_status_encode(&es, out, &len, err);
        break;
    case T_MEMBERS:
        rc = bs_adm_member_list_encode(&h, mb, 2, out, &len, err);
        break;
    case T_COMPACT_REQ:
        rc = bs_adm_compact_req_encode(77, true, out, &len, err);
        break;
    case T_COMPACT_RESP:
        rc = bs_adm_compact_resp_encode(&h, out, &len, err);
        break;
    default:
        rc = valid_encoding_new(target, out, &len);
        break;
    }
    ck_assert_int_eq(rc, 0);
    return len;
}

/* Every prefix of a valid encoding decodes (ending on a field boundary)
 * or fails with BS_EPROTO; nothing leaks either way. */
START_TEST(test_truncated)
{
    for (int t = 0; t < T__COUNT; t++) {
        uint8_t *buf;
        size_t len = valid_encoding(t, &buf);
        int n_refused = 0;

        ck_assert_uint_gt(len, 0);
        for (size_t cut = 0; cut < len; cut++) {
            int rc = dec_as(t, buf, cut);

            ck_assert_msg(rc == 0 || rc == BS_EPROTO, "target %d cut %zu: %s",
                          t, cut, bs_err_name(rc));
            n_refused += rc != 0;
        }
        /* Truncated inside a field: the last byte always is. */
        if (len > 1)
            ck_assert_int_eq(dec_as(t, buf, len - 1), BS_EPROTO);
        ck_assert_int_gt(n_refused, 0);
        ck_assert_int_eq(dec_as(t, buf, len), 0);
        free(buf);
    }
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Random byte flips, insertions and deletions of valid encodings: every
 * decoder answers 0 or a code with a message, and leaks nothing. */
START_TEST(test_fuzz)
{
    uint64_t seed = 12345;
    const char *env = getenv("BS_RPC_FUZZ_ROUNDS");
    int rounds = env ? atoi(env) : 2000;

    for (int t = 0; t < T__COUNT; t++) {
        uint8_t *buf, mut[4096];
        size_t len = valid_encoding(t, &buf);

        ck_assert_uint_lt(len, sizeof mut - 16);
        for (int i = 0; i < rounds; i++) {
            size_t n = len;
            int k = 1 + (int)(rng_next(&seed) % 4);

            memcpy(mut, buf, len);
            while (k-- > 0 && n > 0) {
                size_t at = rng_next(&seed) % n;

                switch (rng_next(&seed) % 3) {
                case 0:
                    mut[at] = (uint8_t)rng_next(&seed);
                    break;
                case 1:
                    memmove(mut + at + 1, mut + at, n - at);
                    mut[at] = (uint8_t)rng_next(&seed);
                    n++;
                    break;
                default:
                    memmove(mut + at, mut + at + 1, n - at - 1);
                    n--;
                    break;
                }
            }
            int rc = dec_as(t, mut, n);

            ck_assert_msg(rc == 0 || rc == BS_EPROTO || rc == BS_ETOOBIG,
                          "target %d round %d: %s", t, i, bs_err_name(rc));
        }
        free(buf);
    }
}
END_TEST

/* ---------------------------------------------------- etcd's bytes */

/* Hand-computed from etcd 3.4's etcdserverpb field numbers, not from
 * rpc/proto: what etcd sends and accepts. */
START_TEST(test_wire_golden)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_etcd_status s = {0};
    struct bs_rpc_header h = {0x1234, 0x8e9e05c52164694dULL, 42, 3};
    struct bs_adm_member mb = {0};
    struct w *w = w_new(), *hw = w_new(), *mw = w_new();
    uint8_t *buf;
    size_t len;
    int64_t rev;
    bool phys;

    /* ResponseHeader {cluster_id 1, member_id 2, revision 3,
     * raft_term 4}. */
    w_uint(hw, 1, h.cluster_id);
    w_uint(hw, 2, h.member_id);
    w_uint(hw, 3, (uint64_t)h.revision);
    w_uint(hw, 4, h.raft_term);

    /* StatusResponse {header 1, version 2, dbSize 3, leader 4,
     * raftIndex 5, raftTerm 6, raftAppliedIndex 7, errors 8,
     * dbSizeInUse 9, isLearner 10}. */
    s.hdr = h;
    strcpy(s.version, "3.4.23");
    s.db_size = 20480;
    s.leader = h.member_id;
    s.raft_index = 8;
    s.raft_term = 3;
    s.raft_applied_index = 8;
    s.db_size_in_use = 16384;
    w_msg(w, 1, hw);
    w_str(w, 2, "3.4.23");
    w_uint(w, 3, 20480);
    w_uint(w, 4, h.member_id);
    w_uint(w, 5, 8);
    w_uint(w, 6, 3);
    w_uint(w, 7, 8);
    w_uint(w, 9, 16384);
    ck_assert_int_eq(bs_adm_etcd_status_encode(&s, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, w->b, w->n));
    free(buf);

    /* An all-zero header is still sent (etcd always sets it). */
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(bs_adm_etcd_status_encode(&s, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, "\x0a\x00", 2));
    free(buf);

    /* MemberListResponse {header 1, members 2}; Member {ID 1, name 2,
     * peerURLs 3, clientURLs 4, isLearner 5}. */
    mb.id = 0x8e9e05c52164694dULL;
    strcpy(mb.name, "default");
    strcpy(mb.peer_url, "http://localhost:2380");
    mb.is_learner = true;
    w->n = 0;
    w_msg(w, 1, hw);
    w_uint(mw, 1, mb.id);
    w_str(mw, 2, "default");
    w_str(mw, 3, "http://localhost:2380");
    w_uint(mw, 5, 1);
    w_msg(w, 2, mw);
    ck_assert_int_eq(bs_adm_member_list_encode(&h, &mb, 1, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, w->b, w->n));
    free(buf);

    /* CompactionRequest {revision 1, physical 2}; CompactionResponse
     * {header 1}. */
    ck_assert_int_eq(
        bs_adm_compact_req_decode(B("\x08\x05\x10\x01"), 4, &rev, &phys, err),
        0);
    ck_assert_int_eq(rev, 5);
    ck_assert(phys);
    w->n = 0;
    w_msg(w, 1, hw);
    ck_assert_int_eq(bs_adm_compact_resp_encode(&h, &buf, &len, err), 0);
    ck_assert(bs_test_bytes_eq(buf, len, w->b, w->n));
    free(buf);
    free(w);
    free(hw);
    free(mw);
}
END_TEST

START_TEST(test_wire_protoc)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_status st = sample_status(), got;
    struct bs_adm_ping p = {0}, gp;
    struct bs_adm_member *gm;
    struct bs_rpc_header gh;
    uint8_t *buf, *pb;
    size_t len, pb_len, n;
    char *text;

    /* Our bytes, protoc's decoder. */
    st.n_nodes = 2;
    st.n_shards = 1;
    sample_shards[0].n_replicas = 2;
    ck_assert_int_eq(bs_adm_status_encode(&st, &buf, &len, err), 0);
    text = bs_test_protoc("decode", "basalt.ClusterStatusResponse",
                          "admin.proto", buf, len, NULL);
    ck_assert_str_eq(text, "cluster_id: 244837814094590\n"
                           "node_id: 2\n"
                           "nodes {\n"
                           "  id: 1\n"
                           "  client_addr: \"10.0.0.1:2379\"\n"
                           "  peer_addr: \"10.0.0.1:2380\"\n"
                           "  http_addr: \"10.0.0.1:8080\"\n"
                           "  alive: true\n"
                           "  replicas: 3\n"
                           "  leaders: 2\n"
                           "  state: \"up\"\n"
                           "  rack: \"rack-1\"\n"
                           "  used_bytes: 1073741824\n"
                           "  capacity_bytes: 1099511627776\n"
                           "  available_bytes: 1098437885952\n"
                           "  heard_ms_ago: 250\n"
                           "}\n"
                           "nodes {\n"
                           "}\n"
                           "shards {\n"
                           "  id: 1\n"
                           "  end: \"m\"\n"
                           "  conf_ver: 4\n"
                           "  version: 2\n"
                           "  leader: 11\n"
                           "  leader_node: 1\n"
                           "  term: 7\n"
                           "  commit: 1000\n"
                           "  applied: 999\n"
                           "  revision: -1\n"
                           "  replicas {\n"
                           "    id: 11\n"
                           "    node_id: 1\n"
                           "    match: 1000\n"
                           "    in_sync: true\n"
                           "  }\n"
                           "  replicas {\n"
                           "    id: 12\n"
                           "    node_id: 2\n"
                           "    match: 999\n"
                           "    in_sync: true\n"
                           "  }\n"
                           "}\n");
    free(text);
    free(buf);

    p.cluster_id = 9;
    p.node_id = 3;
    p.from_node = 4;
    p.payload = (uint8_t *)"\x01hi";
    p.payload_len = 3;
    ck_assert_int_eq(bs_adm_ping_req_encode(&p, &buf, &len, err), 0);
    text = bs_test_protoc("decode", "basalt.PingRequest", "admin.proto", buf,
                          len, NULL);
    ck_assert_str_eq(text, "from_node: 4\n"
                           "payload: \"\\001hi\"\n"
                           "cluster_id: 9\n"
                           "node_id: 3\n");
    free(text);
    free(buf);

    /* protoc's bytes, our decoder. */
    {
        const char *in = "shard { id: 3 start: \"a\\000\" end: \"b\" "
                         "term: 9 revision: -7 "
                         "replicas { id: 1 node_id: 2 learner: true } "
                         "replicas { id: 5 in_sync: true match: 77 } }";
        struct bs_adm_shard sh;

        pb = (uint8_t *)bs_test_protoc("encode", "basalt.ShardInfoResponse",
                                       "admin.proto", in, strlen(in), &pb_len);
        ck_assert_int_eq(bs_adm_shard_info_resp_decode(pb, pb_len, &sh, err),
                         0);
        ck_assert_uint_eq(sh.id, 3);
        ck_assert(bs_test_bytes_eq(sh.start, sh.start_len, "a\0", 2));
        ck_assert(bs_test_bytes_eq(sh.end, sh.end_len, "b", 1));
        ck_assert_uint_eq(sh.term, 9);
        ck_assert_int_eq(sh.revision, -7);
        ck_assert_uint_eq(sh.n_replicas, 2);
        ck_assert(sh.replicas[0].learner);
        ck_assert_uint_eq(sh.replicas[0].node_id, 2);
        ck_assert_uint_eq(sh.replicas[1].match, 77);
        ck_assert(sh.replicas[1].in_sync);
        bs_adm_shard_free(&sh);
        free(pb);
    }
    {
        const char *in = "cluster_id: 1 node_id: 2 version: \"0.1.0\" "
                         "uptime_ms: 5000 payload: \"xyz\"";

        pb = (uint8_t *)bs_test_protoc("encode", "basalt.PingResponse",
                                       "admin.proto", in, strlen(in), &pb_len);
        ck_assert_int_eq(bs_adm_ping_resp_decode(pb, pb_len, &gp, err), 0);
        ck_assert_str_eq(gp.version, "0.1.0");
        ck_assert_uint_eq(gp.uptime_ms, 5000);
        ck_assert(bs_test_bytes_eq(gp.payload, gp.payload_len, "xyz", 3));
        bs_adm_ping_free(&gp);
        free(pb);
    }
    {
        const char *in = "header { cluster_id: 14841639068965178418 member_id: "
                         "10276657743932975437 revision: 1 raft_term: 2 } "
                         "members { ID: 10276657743932975437 name: \"default\" "
                         "peerURLs: \"http://localhost:2380\" "
                         "clientURLs: \"http://localhost:2379\" "
                         "clientURLs: \"http://127.0.0.1:2379\" }";

        pb = (uint8_t *)bs_test_protoc("encode",
                                       "etcdserverpb.MemberListResponse",
                                       "rpc.proto", in, strlen(in), &pb_len);
        ck_assert_int_eq(
            bs_adm_member_list_decode(pb, pb_len, &gh, &gm, &n, err), 0);
        ck_assert_uint_eq(gh.cluster_id, 14841639068965178418ULL);
        ck_assert_uint_eq(gh.raft_term, 2);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(gm[0].id, 10276657743932975437ULL);
        ck_assert_str_eq(gm[0].name, "default");
        ck_assert_str_eq(gm[0].client_url, "http://localhost:2379");
        free(gm);
        free(pb);

        /* Our encoding of the same is protoc's, byte for byte (one
         * client URL: the struct holds one). */
        in = "header { cluster_id: 14841639068965178418 member_id: "
             "10276657743932975437 revision: 1 raft_term: 2 } "
             "members { ID: 10276657743932975437 name: \"default\" "
             "peerURLs: \"http://localhost:2380\" "
             "clientURLs: \"http://localhost:2379\" }";
        pb = (uint8_t *)bs_test_protoc("encode",
                                       "etcdserverpb.MemberListResponse",
                                       "rpc.proto", in, strlen(in), &pb_len);
        gm = calloc(1, sizeof *gm);
        gm->id = 10276657743932975437ULL;
        strcpy(gm->name, "default");
        strcpy(gm->peer_url, "http://localhost:2380");
        strcpy(gm->client_url, "http://localhost:2379");
        ck_assert_int_eq(bs_adm_member_list_encode(&gh, gm, 1, &buf, &len, err),
                         0);
        ck_assert(bs_test_bytes_eq(buf, len, pb, pb_len));
        free(buf);
        free(gm);
        free(pb);
    }
    {
        const char *in = "header { member_id: 5 } version: \"3.4.23\" "
                         "dbSize: 20480 leader: 5 raftIndex: 4 raftTerm: 2 "
                         "raftAppliedIndex: 4 errors: \"x\" "
                         "dbSizeInUse: 16384";
        struct bs_adm_etcd_status es;

        pb = (uint8_t *)bs_test_protoc("encode", "etcdserverpb.StatusResponse",
                                       "rpc.proto", in, strlen(in), &pb_len);
        ck_assert_int_eq(bs_adm_etcd_status_decode(pb, pb_len, &es, err), 0);
        ck_assert_str_eq(es.version, "3.4.23");
        ck_assert_uint_eq(es.hdr.member_id, 5);
        ck_assert_int_eq(es.db_size, 20480);
        ck_assert_int_eq(es.db_size_in_use, 16384);
        ck_assert_uint_eq(es.raft_applied_index, 4);
        free(pb);
    }
    {
        const char *in = "revision: 100 physical: true";
        int64_t rev;
        bool phys;

        pb = (uint8_t *)bs_test_protoc("encode",
                                       "etcdserverpb.CompactionRequest",
                                       "rpc.proto", in, strlen(in), &pb_len);
        ck_assert_int_eq(
            bs_adm_compact_req_decode(pb, pb_len, &rev, &phys, err), 0);
        ck_assert_int_eq(rev, 100);
        ck_assert(phys);
        free(pb);
    }
    (void)got;
}
END_TEST

/* Our bytes are protoc's: its decoder prints want for buf[len], and its
 * encoder turns want into buf[len] exactly (canonical form, field
 * order). */
static void protoc_same(const char *msg, const uint8_t *buf, size_t len,
                        const char *want)
{
    char *text = bs_test_protoc("decode", msg, "admin.proto", buf, len, NULL);
    uint8_t *pb;
    size_t pb_len;

    ck_assert_str_eq(text, want);
    free(text);
    pb = (uint8_t *)bs_test_protoc("encode", msg, "admin.proto", want,
                                   strlen(want), &pb_len);
    ck_assert_msg(bs_test_bytes_eq(buf, len, pb, pb_len),
                  "%s: %zu bytes of ours, %zu of protoc's", msg, len, pb_len);
    free(pb);
}

/* The text of sample_nodes[0], as protoc prints it, nested once. */
#define NODE0_TEXT                                                             \
    "  id: 1\n"                                                                \
    "  client_addr: \"10.0.0.1:2379\"\n"                                       \
    "  peer_addr: \"10.0.0.1:2380\"\n"                                         \
    "  http_addr: \"10.0.0.1:8080\"\n"                                         \
    "  alive: true\n"                                                          \
    "  replicas: 3\n"                                                          \
    "  leaders: 2\n"                                                           \
    "  state: \"up\"\n"                                                        \
    "  rack: \"rack-1\"\n"                                                     \
    "  used_bytes: 1073741824\n"                                               \
    "  capacity_bytes: 1099511627776\n"                                        \
    "  available_bytes: 1098437885952\n"                                       \
    "  heard_ms_ago: 250\n"

/* The text of sample_ops[0] and [1], nested once. */
#define OP0_TEXT                                                               \
    "  kind: \"move\"\n"                                                       \
    "  reason: \"balance-replicas\"\n"                                         \
    "  shard_id: 5\n"                                                          \
    "  from_node: 1\n"                                                         \
    "  to_node: 4\n"
#define OP1_TEXT                                                               \
    "  id: 17\n"                                                               \
    "  kind: \"split\"\n"                                                      \
    "  reason: \"size\"\n"                                                     \
    "  shard_id: 6\n"                                                          \
    "  split_key: \"m\\000\\377\"\n"                                           \
    "  age_ms: 1500\n"

START_TEST(test_wire_protoc_new)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_join j = sample_join_req();
    struct bs_adm_remove rm = {3, true, "draining", 12};
    struct bs_adm_rebalance rb = {0};
    struct bs_adm_sched sc = sample_sched();
    struct bs_adm_split sp = {9, (uint8_t *)"m\0n", 3, 77, 10};
    struct bs_adm_isr_shard isr[2];
    uint8_t *buf;
    size_t len;

    ck_assert_int_eq(bs_adm_join_req_encode(&j, &buf, &len, err), 0);
    protoc_same("basalt.JoinRequest", buf, len,
                "client_addr: \"10.0.0.4:2379\"\n"
                "peer_addr: \"10.0.0.4:2380\"\n"
                "http_addr: \"10.0.0.4:8080\"\n"
                "labels {\n"
                "  key: \"rack\"\n"
                "  value: \"r2\"\n"
                "}\n"
                "labels {\n"
                "  key: \"zone\"\n"
                "  value: \"eu-1\"\n"
                "}\n"
                "labels {\n"
                "  key: \"ssd\"\n"
                "}\n"
                "join_token: 1311768467294899695\n");
    free(buf);

    fill_samples();
    j.node_id = 4;
    j.cluster_id = 5;
    j.nodes = sample_nodes;
    j.n_nodes = 2;
    ck_assert_int_eq(bs_adm_join_resp_encode(&j, &buf, &len, err), 0);
    protoc_same("basalt.JoinResponse", buf, len,
                "node_id: 4\n"
                "cluster_id: 5\n"
                "nodes {\n" NODE0_TEXT "}\n"
                "nodes {\n"
                "}\n");
    free(buf);

    ck_assert_int_eq(bs_adm_remove_req_encode(&rm, &buf, &len, err), 0);
    protoc_same("basalt.RemoveNodeRequest", buf, len,
                "node_id: 3\n"
                "cancel: true\n");
    free(buf);
    ck_assert_int_eq(bs_adm_remove_resp_encode(&rm, &buf, &len, err), 0);
    protoc_same("basalt.RemoveNodeResponse", buf, len,
                "node_id: 3\n"
                "state: \"draining\"\n"
                "replicas: 12\n");
    free(buf);

    rb.dry_run = true;
    rb.max_moves = 8;
    rb.plan = sample_ops;
    rb.n_plan = 2;
    rb.in_flight = sample_ops + 2;
    rb.n_in_flight = 1;
    ck_assert_int_eq(bs_adm_rebalance_req_encode(&rb, &buf, &len, err), 0);
    protoc_same("basalt.RebalanceRequest", buf, len,
                "dry_run: true\n"
                "max_moves: 8\n");
    free(buf);
    ck_assert_int_eq(bs_adm_rebalance_resp_encode(&rb, &buf, &len, err), 0);
    protoc_same("basalt.RebalanceResponse", buf, len,
                "plan {\n" OP0_TEXT "}\n"
                "plan {\n" OP1_TEXT "}\n"
                "in_flight {\n"
                "}\n");
    free(buf);

    ck_assert_int_eq(bs_adm_isr_req_encode(7, &buf, &len, err), 0);
    protoc_same("basalt.IsrStatusRequest", buf, len, "shard_id: 7\n");
    free(buf);
    fill_isr();
    isr[0] = sample_isr[0];
    isr[1] = sample_isr[1];
    isr[1].n_replicas = 1;
    ck_assert_int_eq(bs_adm_isr_resp_encode(isr, 2, &buf, &len, err), 0);
    protoc_same("basalt.IsrStatusResponse", buf, len,
                "shards {\n"
                "  shard_id: 1\n"
                "  leader_node: 2\n"
                "  term: 7\n"
                "  commit: 1000\n"
                "  min_insync: 2\n"
                "  replicas {\n"
                "    replica_id: 11\n"
                "    node_id: 1\n"
                "    match: 1000\n"
                "    in_sync: true\n"
                "  }\n"
                "  replicas {\n"
                "    replica_id: 12\n"
                "    node_id: 2\n"
                "    match: 990\n"
                "    lag_entries: 10\n"
                "    lag_ms: 5\n"
                "    in_sync: true\n"
                "  }\n"
                "  replicas {\n"
                "    replica_id: 13\n"
                "    node_id: 3\n"
                "    learner: true\n"
                "    match: 980\n"
                "    lag_entries: 20\n"
                "    lag_ms: 10\n"
                "  }\n"
                "  size_bytes: 1048576\n"
                "  keys: 5000\n"
                "  read_qps: 300\n"
                "  write_qps: 40\n"
                "  reported_ms_ago: 900\n"
                "}\n"
                "shards {\n"
                "  shard_id: 18446744073709551615\n"
                "  min_insync: 4294967295\n"
                "  replicas {\n"
                "    replica_id: 100\n"
                "    lag_ms: 18446744073709551615\n"
                "  }\n"
                "  reported_ms_ago: 18446744073709551615\n"
                "}\n");
    free(buf);

    ck_assert_int_eq(bs_adm_split_req_encode(&sp, &buf, &len, err), 0);
    protoc_same("basalt.SplitRequest", buf, len,
                "shard_id: 9\n"
                "key: \"m\\000n\"\n");
    free(buf);
    ck_assert_int_eq(bs_adm_split_resp_encode(&sp, &buf, &len, err), 0);
    protoc_same("basalt.SplitResponse", buf, len,
                "op_id: 77\n"
                "new_shard_id: 10\n");
    free(buf);

    ck_assert_int_eq(bs_adm_sched_req_encode(&sc, &buf, &len, err), 0);
    protoc_same("basalt.SchedulerRequest", buf, len, "action: \"pause\"\n");
    free(buf);
    sc.n_ops = 2;
    ck_assert_int_eq(bs_adm_sched_resp_encode(&sc, &buf, &len, err), 0);
    protoc_same("basalt.SchedulerResponse", buf, len,
                "paused: true\n"
                "max_concurrent_moves: 4\n"
                "split_size: 100663296\n"
                "split_qps: 2000\n"
                "down_after_ms: 30000\n"
                "max_lag_entries: 1000\n"
                "max_lag_ms: 5000\n"
                "operators {\n" OP0_TEXT "}\n"
                "operators {\n" OP1_TEXT "}\n"
                "ops_finished: 12\n"
                "ops_cancelled: 3\n"
                "snapshot_rate: 67108864\n");
    free(buf);

    /* protoc's bytes, our decoder: a message written by hand in protoc's
     * text format, every field of a NodeStatus and an Operator. */
    {
        const char *in = "node_id: 6 cluster_id: 7 nodes { id: 2 "
                         "client_addr: \"c:1\" peer_addr: \"p:2\" "
                         "http_addr: \"h:3\" alive: true replicas: 4 "
                         "leaders: 1 state: \"suspect\" rack: \"r9\" "
                         "used_bytes: 10 capacity_bytes: 30 "
                         "available_bytes: 20 heard_ms_ago: 40 }";
        struct bs_adm_join got;
        uint8_t *pb;
        size_t pb_len;

        pb = (uint8_t *)bs_test_protoc("encode", "basalt.JoinResponse",
                                       "admin.proto", in, strlen(in), &pb_len);
        ck_assert_int_eq(bs_adm_join_resp_decode(pb, pb_len, &got, err), 0);
        free(pb);
        ck_assert_uint_eq(got.node_id, 6);
        ck_assert_uint_eq(got.cluster_id, 7);
        ck_assert_uint_eq(got.n_nodes, 1);
        ck_assert_uint_eq(got.nodes[0].id, 2);
        ck_assert_str_eq(got.nodes[0].client_addr, "c:1");
        ck_assert_str_eq(got.nodes[0].peer_addr, "p:2");
        ck_assert_str_eq(got.nodes[0].http_addr, "h:3");
        ck_assert(got.nodes[0].alive);
        ck_assert_uint_eq(got.nodes[0].replicas, 4);
        ck_assert_uint_eq(got.nodes[0].leaders, 1);
        ck_assert_str_eq(got.nodes[0].state, "suspect");
        ck_assert_str_eq(got.nodes[0].rack, "r9");
        ck_assert_uint_eq(got.nodes[0].used_bytes, 10);
        ck_assert_uint_eq(got.nodes[0].capacity_bytes, 30);
        ck_assert_uint_eq(got.nodes[0].available_bytes, 20);
        ck_assert_uint_eq(got.nodes[0].heard_ms_ago, 40);
        bs_adm_join_free(&got);
    }
    {
        const char *in = "in_flight { id: 3 kind: \"leader\" "
                         "reason: \"drain\" shard_id: 4 from_node: 5 "
                         "to_node: 6 split_key: \"\\001k\" age_ms: 7 }";
        struct bs_adm_rebalance got;
        uint8_t *pb;
        size_t pb_len;

        pb = (uint8_t *)bs_test_protoc("encode", "basalt.RebalanceResponse",
                                       "admin.proto", in, strlen(in), &pb_len);
        ck_assert_int_eq(bs_adm_rebalance_resp_decode(pb, pb_len, &got, err),
                         0);
        free(pb);
        ck_assert_uint_eq(got.n_plan, 0);
        ck_assert_uint_eq(got.n_in_flight, 1);
        ck_assert_uint_eq(got.in_flight[0].id, 3);
        ck_assert_str_eq(got.in_flight[0].kind, "leader");
        ck_assert_str_eq(got.in_flight[0].reason, "drain");
        ck_assert_uint_eq(got.in_flight[0].shard_id, 4);
        ck_assert_uint_eq(got.in_flight[0].from_node, 5);
        ck_assert_uint_eq(got.in_flight[0].to_node, 6);
        ck_assert(bs_test_bytes_eq(got.in_flight[0].split_key,
                                   got.in_flight[0].split_key_len, "\001k", 2));
        ck_assert_uint_eq(got.in_flight[0].age_ms, 7);
        bs_adm_rebalance_free(&got);
    }
}
END_TEST

static Suite *admin_codec_suite(void)
{
    Suite *s = suite_create("rpc_admin_codec");
    TCase *tc = tcase_create("admin_codec");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_status_round_trip);
    tcase_add_test(tc, test_shard_info_round_trip);
    tcase_add_test(tc, test_ping_round_trip);
    tcase_add_test(tc, test_etcd_round_trip);
    tcase_add_test(tc, test_join_round_trip);
    tcase_add_test(tc, test_remove_split_round_trip);
    tcase_add_test(tc, test_rebalance_sched_round_trip);
    tcase_add_test(tc, test_isr_round_trip);
    tcase_add_test(tc, test_encode_refuses);
    tcase_add_test(tc, test_encode_refuses_new);
    tcase_add_test(tc, test_decode_refuses);
    tcase_add_test(tc, test_decode_refuses_new);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_fuzz);
    tcase_add_test(tc, test_wire_golden);
    tcase_add_test(tc, test_wire_protoc);
    tcase_add_test(tc, test_wire_protoc_new);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(admin_codec_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
