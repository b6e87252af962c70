/*
 * test_admin_codec.c - unit tests of rpc/admin_codec.c: every encoder and
 * decoder round-trips edge-case values of its structs (cluster status,
 * shard info, ping, etcd's Status, MemberList and Compact); encoders
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
    /* All defaults: an empty submessage, still an element. */
    sample_nodes[1].id = 0;
    /* Longest addresses; id at the top of its range. */
    sample_nodes[2].id = UINT64_MAX;
    memset(sample_nodes[2].client_addr, 'c', BS_ADM_ADDR_MAX);
    memset(sample_nodes[2].peer_addr, 'p', BS_ADM_ADDR_MAX);
    memset(sample_nodes[2].http_addr, 'h', BS_ADM_ADDR_MAX);
    sample_nodes[2].replicas = UINT32_MAX;

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
    T__COUNT
};

/* Decodes buf[len] (copied exactly) as target; checks the contract of a
 * failure (a message, outputs empty) and frees a success. */
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
            ck_assert(st.nodes == NULL && st.shards == NULL &&
                      st.n_nodes == 0 && st.n_shards == 0);
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
            ck_assert(sh.start == NULL && sh.end == NULL && sh.n_replicas == 0);
        bs_adm_shard_free(&sh);
        break;
    }
    case T_PING_REQ:
    case T_PING_RESP: {
        struct bs_adm_ping pg;

        rc = target == T_PING_REQ ? bs_adm_ping_req_decode(buf, len, &pg, err)
                                  : bs_adm_ping_resp_decode(buf, len, &pg, err);
        if (rc != 0)
            ck_assert(pg.payload == NULL && pg.payload_len == 0);
        bs_adm_ping_free(&pg);
        break;
    }
    case T_ETCD_STATUS: {
        struct bs_adm_etcd_status s;

        rc = bs_adm_etcd_status_decode(buf, len, &s, err);
        break;
    }
    case T_MEMBERS: {
        struct bs_adm_member *m;
        struct bs_rpc_header h;
        size_t n;

        rc = bs_adm_member_list_decode(buf, len, &h, &m, &n, err);
        if (rc != 0)
            ck_assert(m == NULL && n == 0);
        free(m);
        break;
    }
    case T_COMPACT_REQ: {
        int64_t rev;
        bool phys;

        rc = bs_adm_compact_req_decode(buf, len, &rev, &phys, err);
        break;
    }
    default: {
        struct bs_rpc_header h;

        rc = bs_adm_compact_resp_decode(buf, len, &h, err);
        break;
    }
    }
    if (rc != 0)
        ck_assert_msg(err[0] != '\0', "no message for %d", rc);
    free(buf);
    return rc;
}

/* Asserts rc and that err names what. */
static void dec_expect(int target, const struct w *w, int want,
                       const char *what)
{
    char err[BS_RPC_ERRMSG_LEN];
    struct bs_adm_status st;
    int rc = dec_as(target, w->b, w->n);

    ck_assert_msg(rc == want, "got %s, want %s (%s)", bs_err_name(rc),
                  bs_err_name(want), what);
    if (target == T_STATUS && what != NULL) {
        /* Again, for the message. */
        ck_assert_int_eq(bs_adm_status_decode(w->b, w->n, &st, err), want);
        ck_assert_msg(strstr(err, what) != NULL, "'%s' does not name %s", err,
                      what);
    }
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
    default:
        rc = bs_adm_compact_resp_encode(&h, out, &len, err);
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

static Suite *admin_codec_suite(void)
{
    Suite *s = suite_create("rpc_admin_codec");
    TCase *tc = tcase_create("admin_codec");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_status_round_trip);
    tcase_add_test(tc, test_shard_info_round_trip);
    tcase_add_test(tc, test_ping_round_trip);
    tcase_add_test(tc, test_etcd_round_trip);
    tcase_add_test(tc, test_encode_refuses);
    tcase_add_test(tc, test_decode_refuses);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_fuzz);
    tcase_add_test(tc, test_wire_golden);
    tcase_add_test(tc, test_wire_protoc);
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
