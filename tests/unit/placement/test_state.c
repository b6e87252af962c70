/*
 * test_state.c - unit tests of placement/state.c and cmd.c: bootstrap
 * layout (key space coverage, split points, replica and leader balance),
 * routing against a linear scan, the liveness rule, conversion to a Raft
 * configuration, and the command encoding (round trips, every truncation,
 * random corruption).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* Replica and preferred-leader counts per node over the data shards. */
static void counts(const struct bs_pd_state *st, uint32_t *reps,
                   uint32_t *leads, uint32_t n_nodes)
{
    memset(reps, 0, n_nodes * sizeof(*reps));
    memset(leads, 0, n_nodes * sizeof(*leads));
    for (size_t i = 0; i < bs_pd_route_count(st); i++) {
        const struct bs_pd_shard *s = bs_pd_route_at(st, i);
        for (uint32_t j = 0; j < s->n_replicas; j++) {
            uint64_t node = s->replicas[j].node_id;
            ck_assert(node >= 1 && node <= n_nodes);
            reps[node - 1]++;
            if (s->replicas[j].id == s->leader)
                leads[node - 1]++;
        }
    }
}

static uint32_t spread(const uint32_t *v, uint32_t n)
{
    uint32_t lo = v[0], hi = v[0];
    for (uint32_t i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    return hi - lo;
}

/* Checks everything bootstrap promises for (n nodes, shards, replicas). */
static void check_layout(uint32_t n, uint32_t shards, uint32_t replicas)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(n, shards, replicas, &idx);
    uint32_t want_shards = shards ? shards : BS_PD_DEFAULT_INITIAL_SHARDS;
    uint32_t r = replicas ? replicas : BS_PD_DEFAULT_REPLICAS;
    if (r > n)
        r = n;
    ck_assert(bs_pd_bootstrapped(st));
    ck_assert_uint_eq(bs_pd_cluster_id(st), 42);
    ck_assert_uint_eq(bs_pd_applied(st), 1);
    ck_assert_uint_eq(bs_pd_replicas_per_shard(st), r);
    ck_assert_uint_eq(bs_pd_node_count(st), n);
    ck_assert_uint_eq(bs_pd_shard_count(st), want_shards + 1);
    ck_assert_uint_eq(bs_pd_route_count(st), want_shards);
    ck_assert_uint_eq(bs_pd_next_shard_id(st), want_shards + 1);
    ck_assert_uint_eq(bs_pd_next_node_id(st), n + 1);

    /* Shard 0: keyless, odd voters <= 5 on the first nodes. */
    const struct bs_pd_shard *s0 = bs_pd_shard_find(st, 0);
    ck_assert_ptr_nonnull(s0);
    ck_assert(s0->keyless);
    uint32_t p = n < 5 ? n : 5;
    if (p % 2 == 0)
        p--;
    ck_assert_uint_eq(s0->n_replicas, p);
    for (uint32_t j = 0; j < p; j++)
        ck_assert_uint_eq(s0->replicas[j].node_id, j + 1);
    ck_assert(!bs_pd_shard_contains(s0, "", 0));
    ck_assert(!bs_pd_shard_contains(s0, "a", 1));

    /* Data shards: ids 1..N in key order, contiguous split points. */
    uint64_t replica_ids = 0;
    for (uint32_t i = 0; i < want_shards; i++) {
        const struct bs_pd_shard *s = bs_pd_route_at(st, i);
        ck_assert_uint_eq(s->id, i + 1);
        ck_assert(!s->keyless);
        ck_assert_uint_eq(s->epoch.conf_ver, 1);
        ck_assert_uint_eq(s->epoch.version, 1);
        ck_assert_uint_eq(s->n_replicas, r);
        ck_assert_uint_ne(s->leader, 0);
        ck_assert_uint_eq(s->leader_term, 0);
        uint8_t k[2];
        size_t klen;
        bs_pd_initial_split_key(i, want_shards, k, &klen);
        ck_assert_uint_eq(s->start_len, klen);
        ck_assert(klen == 0 || memcmp(s->start, k, klen) == 0);
        if (i + 1 == want_shards)
            ck_assert_uint_eq(s->end_len, 0);
        else
            ck_assert_uint_eq(s->end_len, 2);
        replica_ids += s->n_replicas;
    }
    ck_assert_uint_eq(bs_pd_next_replica_id(st), 1 + p + replica_ids);

    uint32_t *reps = calloc(n, sizeof(*reps));
    uint32_t *leads = calloc(n, sizeof(*leads));
    counts(st, reps, leads, n);
    ck_assert_msg(spread(reps, n) <= 1, "replicas unbalanced n=%u N=%u r=%u", n,
                  want_shards, r);
    ck_assert_msg(spread(leads, n) <= 1, "leaders unbalanced n=%u N=%u r=%u", n,
                  want_shards, r);
    free(reps);
    free(leads);
    th_check(st);
    bs_pd_state_destroy(st);
}

START_TEST(test_bootstrap_3x8)
{
    check_layout(3, 8, 3);
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    /* Every node holds all 8 shards; leaders 3/3/2. */
    uint32_t reps[3], leads[3];
    counts(st, reps, leads, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(reps[i], 8);
        ck_assert(leads[i] == 2 || leads[i] == 3);
    }
    /* Split points at 0x2000, 0x4000, ... 0xE000. */
    for (uint32_t i = 1; i < 8; i++) {
        const struct bs_pd_shard *s = bs_pd_route_at(st, i);
        ck_assert_uint_eq(s->start[0], i * 0x20);
        ck_assert_uint_eq(s->start[1], 0);
    }
    const struct bs_pd_node *n1 = bs_pd_node_find(st, 1);
    ck_assert_int_eq(n1->state, BS_PD_NODE_UP);
    ck_assert_uint_eq(n1->last_heartbeat, 1000);
    ck_assert_str_eq(n1->info.client_addr, "10.0.0.1:2379");
    ck_assert_str_eq(bs_pd_node_label(n1, "rack"), "r1");
    ck_assert_ptr_null(bs_pd_node_label(n1, "zone"));
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_bootstrap_single_node)
{
    check_layout(1, 8, 3);
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(1, 8, 3, &idx);
    for (size_t i = 0; i < bs_pd_route_count(st); i++) {
        const struct bs_pd_shard *s = bs_pd_route_at(st, i);
        ck_assert_uint_eq(s->n_replicas, 1);
        ck_assert_uint_eq(s->leader, s->replicas[0].id);
    }
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_bootstrap_5x64)
{
    check_layout(5, 64, 3);
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(5, 64, 3, &idx);
    uint32_t reps[5], leads[5];
    counts(st, reps, leads, 5);
    uint32_t tr = 0, tl = 0;
    for (int i = 0; i < 5; i++) {
        ck_assert(reps[i] == 38 || reps[i] == 39);
        ck_assert(leads[i] == 12 || leads[i] == 13);
        tr += reps[i];
        tl += leads[i];
    }
    ck_assert_uint_eq(tr, 192);
    ck_assert_uint_eq(tl, 64);
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 5);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_bootstrap_one_shard)
{
    check_layout(3, 1, 3);
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 1, 3, &idx);
    const struct bs_pd_shard *s;
    ck_assert_int_eq(bs_pd_route(st, "", 0, &s), 0);
    ck_assert_uint_eq(s->id, 1);
    ck_assert_int_eq(bs_pd_route(st, "\xff\xff\xff", 3, &s), 0);
    ck_assert_uint_eq(s->id, 1);
    ck_assert_uint_eq(s->start_len, 0);
    ck_assert_uint_eq(s->end_len, 0);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_bootstrap_defaults_and_small_clusters)
{
    check_layout(3, 0, 0); /* defaults: 8 shards, 3 replicas */
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(2, 0, 0, &idx);
    ck_assert_uint_eq(bs_pd_route_count(st), BS_PD_DEFAULT_INITIAL_SHARDS);
    ck_assert_uint_eq(bs_pd_replicas_per_shard(st), 2);
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 1);
    bs_pd_state_destroy(st);
    idx = 0;
    st = th_bootstrap(4, 8, 3, &idx);
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 3);
    bs_pd_state_destroy(st);
    idx = 0;
    st = th_bootstrap(7, 8, 3, &idx);
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 5);
    bs_pd_state_destroy(st);
}
END_TEST

/* Balance as a property over many shapes. */
START_TEST(test_bootstrap_balance_matrix)
{
    static const uint32_t shard_counts[] = {1, 2, 3, 7, 8, 16, 63, 100};
    for (uint32_t n = 1; n <= 9; n++)
        for (size_t k = 0; k < sizeof(shard_counts) / sizeof(*shard_counts);
             k++)
            for (uint32_t r = 1; r <= 5; r++)
                check_layout(n, shard_counts[k], r);
}
END_TEST

START_TEST(test_bootstrap_refuses_bad_input)
{
    struct bs_pd_state *st = bs_pd_state_create();
    struct bs_pd_node_info nodes[3];
    for (int i = 0; i < 3; i++)
        th_node_info(&nodes[i], (uint64_t)i + 1);
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_BOOTSTRAP};
    cmd.u.bootstrap.nodes = nodes;
    cmd.u.bootstrap.n_nodes = 3;
    struct bs_pd_result res;
    uint64_t idx = 0;

    nodes[2].id = 1; /* duplicate id */
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), BS_EINVAL);
    ck_assert(strstr(res.msg, "twice"));
    nodes[2].id = 0;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), BS_EINVAL);
    nodes[2].id = 3;
    cmd.u.bootstrap.initial_shards = BS_PD_MAX_INITIAL_SHARDS + 1;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), BS_EINVAL);
    cmd.u.bootstrap.initial_shards = 8;
    cmd.u.bootstrap.replicas = BS_RAFT_MAX_MEMBERS + 1;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), BS_EINVAL);
    cmd.u.bootstrap.replicas = 3;
    nodes[1].n_labels = 2;
    strcpy(nodes[1].labels[1].key, "rack"); /* label given twice */
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), BS_EINVAL);
    nodes[1].n_labels = 1;
    ck_assert(!bs_pd_bootstrapped(st));
    ck_assert_uint_eq(bs_pd_applied(st), idx); /* refusals consume */
    th_check(st);

    /* Input order does not matter: nodes are sorted by id. */
    struct bs_pd_node_info rev[3] = {nodes[2], nodes[0], nodes[1]};
    cmd.u.bootstrap.nodes = rev;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), 0);
    uint64_t idx2 = 0;
    struct bs_pd_state *ref = th_bootstrap(3, 8, 3, &idx2);
    ck_assert_uint_eq(bs_pd_node_at(st, 0)->info.id, 1);
    for (size_t i = 0; i < bs_pd_shard_count(st); i++)
        ck_assert_mem_eq(bs_pd_shard_at(st, i)->replicas,
                         bs_pd_shard_at(ref, i)->replicas,
                         sizeof(struct bs_pd_replica) * 3);

    /* A second bootstrap is refused. */
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), BS_EEXIST);
    bs_pd_state_destroy(ref);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_initial_split_keys)
{
    static const uint32_t ns[] = {1, 2, 3, 7, 8, 255, 256, 1000, 65535, 65536};
    for (size_t k = 0; k < sizeof(ns) / sizeof(*ns); k++) {
        uint32_t n = ns[k];
        uint8_t prev[2] = {0, 0};
        size_t plen = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t key[2];
            size_t len;
            bs_pd_initial_split_key(i, n, key, &len);
            ck_assert_uint_eq(len, i == 0 ? 0 : 2);
            if (i > 0) {
                uint32_t v = (uint32_t)key[0] << 8 | key[1];
                uint32_t pv = plen ? ((uint32_t)prev[0] << 8 | prev[1]) : 0;
                ck_assert(plen == 0 ? v > 0 : v > pv);
                /* Even: each step is floor or ceil of 65536 / n. */
                uint32_t step = v - pv;
                ck_assert(step == 65536 / n || step == (65536 + n - 1) / n);
            }
            memcpy(prev, key, 2);
            plen = len;
        }
    }
}
END_TEST

START_TEST(test_route_matches_linear_scan)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    /* Split a few shards at random keys so that boundaries have varied
     * lengths, not only 2 bytes. */
    for (int i = 0; i < 40; i++) {
        uint8_t key[6];
        size_t len = 1 + th_rand(&seed) % 6;
        for (size_t j = 0; j < len; j++)
            key[j] = (uint8_t)th_rand(&seed);
        const struct bs_pd_shard *s;
        ck_assert_int_eq(bs_pd_route(st, key, len, &s), 0);
        int rc = th_split(st, &idx, s->id, key, len, NULL);
        ck_assert(rc == 0 || rc == BS_ERANGE); /* key == start */
    }
    th_check(st);
    for (int i = 0; i < 20000; i++) {
        uint8_t key[7];
        size_t len = th_rand(&seed) % 8;
        for (size_t j = 0; j < len; j++) {
            uint64_t r = th_rand(&seed);
            /* Bias towards boundary-looking bytes. */
            key[j] = (r & 3) == 0 ? 0 : (r & 3) == 1 ? 0xff : (uint8_t)(r >> 8);
        }
        if (i % 3 == 0 && len >= 2) { /* exactly on a boundary */
            const struct bs_pd_shard *b =
                bs_pd_route_at(st, th_rand(&seed) % bs_pd_route_count(st));
            if (b->start_len <= 7) {
                if (b->start_len)
                    memcpy(key, b->start, b->start_len);
                len = b->start_len;
            }
        }
        const struct bs_pd_shard *s;
        ck_assert_int_eq(bs_pd_route(st, key, len, &s), 0);
        ck_assert_ptr_eq(s, th_route_linear(st, key, len));
    }
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_route_before_bootstrap)
{
    struct bs_pd_state *st = bs_pd_state_create();
    const struct bs_pd_shard *s = NULL;
    ck_assert_int_eq(bs_pd_route(st, "k", 1, &s), BS_ENOTFOUND);
    ck_assert_ptr_null(s);
    ck_assert(!bs_pd_bootstrapped(st));
    ck_assert_uint_eq(bs_pd_applied(st), 0);
    ck_assert_uint_eq(bs_pd_shard_count(st), 0);
    ck_assert_ptr_null(bs_pd_shard_find(st, 0));
    ck_assert_ptr_null(bs_pd_node_find(st, 1));
    ck_assert_ptr_null(bs_pd_node_at(st, 0));
    ck_assert_uint_eq(bs_pd_op_count(st), 0);
    th_check(st);
    bs_pd_state_destroy(st);
    bs_pd_state_destroy(NULL);
}
END_TEST

START_TEST(test_node_liveness_rule)
{
    struct bs_pd_node n = {.state = BS_PD_NODE_UP, .last_heartbeat = 1000};
    ck_assert_int_eq(bs_pd_node_next_state(&n, 1500, 1000, 5000),
                     BS_PD_NODE_UP);
    ck_assert_int_eq(bs_pd_node_next_state(&n, 2001, 1000, 5000),
                     BS_PD_NODE_SUSPECT);
    ck_assert_int_eq(bs_pd_node_next_state(&n, 6001, 1000, 5000),
                     BS_PD_NODE_DOWN);
    ck_assert_int_eq(bs_pd_node_next_state(&n, 10, 1000, 5000),
                     BS_PD_NODE_UP); /* clock behind: fresh */
    n.state = BS_PD_NODE_SUSPECT;
    ck_assert_int_eq(bs_pd_node_next_state(&n, 1500, 1000, 5000),
                     BS_PD_NODE_SUSPECT); /* only a heartbeat revives */
    n.state = BS_PD_NODE_DRAINING;
    ck_assert_int_eq(bs_pd_node_next_state(&n, 99999, 1000, 5000),
                     BS_PD_NODE_DRAINING);
    n.state = BS_PD_NODE_DOWN;
    ck_assert_int_eq(bs_pd_node_next_state(&n, 99999, 1000, 5000),
                     BS_PD_NODE_DOWN);
    ck_assert_str_eq(bs_pd_node_state_name(BS_PD_NODE_DRAINING), "draining");
    ck_assert_str_eq(bs_pd_node_state_name(99), "unknown");
}
END_TEST

static bool has(const uint64_t *v, uint32_t n, uint64_t x)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

START_TEST(test_conf_state)
{
    struct bs_pd_shard s = {.id = 1, .n_replicas = 4};
    s.replicas[0] = (struct bs_pd_replica){10, 1, BS_PD_ROLE_VOTER};
    s.replicas[1] = (struct bs_pd_replica){11, 2, BS_PD_ROLE_VOTER};
    s.replicas[2] = (struct bs_pd_replica){12, 3, BS_PD_ROLE_VOTER};
    s.replicas[3] = (struct bs_pd_replica){13, 4, BS_PD_ROLE_LEARNER};
    struct bs_raft_conf_state cs;
    bs_pd_shard_conf_state(&s, &cs);
    ck_assert_uint_eq(cs.n_voters, 3);
    ck_assert_uint_eq(cs.n_voters_outgoing, 0);
    ck_assert_uint_eq(cs.n_learners, 1);
    ck_assert(has(cs.learners, 1, 13));
    ck_assert(has(cs.voters, 3, 12));

    /* Joint: 12 is being demoted, 13 promoted. */
    s.replicas[2].role = BS_PD_ROLE_DEMOTING_VOTER;
    s.replicas[3].role = BS_PD_ROLE_INCOMING_VOTER;
    bs_pd_shard_conf_state(&s, &cs);
    ck_assert_uint_eq(cs.n_voters, 3); /* 10 11 13 */
    ck_assert(has(cs.voters, 3, 13) && !has(cs.voters, 3, 12));
    ck_assert_uint_eq(cs.n_voters_outgoing, 3); /* 10 11 12 */
    ck_assert(has(cs.voters_outgoing, 3, 12));
    ck_assert(!has(cs.voters_outgoing, 3, 13));
    ck_assert_uint_eq(cs.n_learners_next, 1);
    ck_assert_uint_eq(cs.learners_next[0], 12);
    ck_assert_uint_eq(cs.n_learners, 0);
    ck_assert_ptr_eq(bs_pd_shard_replica_on(&s, 3), &s.replicas[2]);
    ck_assert_ptr_null(bs_pd_shard_replica_on(&s, 9));
}
END_TEST

/* ---------------------------------------------------------- commands */

/* One valid command of every type. */
static size_t sample_cmds(struct bs_pd_cmd *out, struct bs_pd_node_info *ni)
{
    size_t n = 0;
    th_node_info(&ni[0], 1);
    th_node_info(&ni[1], 2);
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_BOOTSTRAP};
    out[n].u.bootstrap.cluster_id = 7;
    out[n].u.bootstrap.initial_shards = 8;
    out[n].u.bootstrap.replicas = 3;
    out[n].u.bootstrap.now = 123;
    out[n].u.bootstrap.n_nodes = 2;
    out[n++].u.bootstrap.nodes = ni;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_REGISTER_NODE};
    out[n].u.register_node.node = ni[1];
    out[n++].u.register_node.now = 5;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_UPDATE_NODE_STATE};
    out[n].u.node_state.node_id = 2;
    out[n].u.node_state.state = BS_PD_NODE_DRAINING;
    out[n++].u.node_state.now = 9;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_NODE_HEARTBEAT};
    out[n].u.heartbeat.node_id = 3;
    out[n++].u.heartbeat.now = 77;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_SHARD_SPLIT};
    out[n].u.split.shard_id = 4;
    out[n].u.split.epoch = (struct bs_pd_epoch){2, 3};
    out[n].u.split.split_key = (const uint8_t *)"m\0x";
    out[n].u.split.split_key_len = 3;
    out[n].u.split.new_shard_id = 12;
    out[n].u.split.new_epoch = (struct bs_pd_epoch){2, 3};
    out[n].u.split.n_replicas = 2;
    out[n].u.split.replicas[0] = (struct bs_pd_replica){30, 1, 0};
    out[n++].u.split.replicas[1] = (struct bs_pd_replica){31, 2, 1};
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_SHARD_REPLICA_CHANGE};
    out[n].u.replica_change.shard_id = 4;
    out[n].u.replica_change.conf_ver = 3;
    out[n].u.replica_change.n_replicas = 1;
    out[n++].u.replica_change.replicas[0] = (struct bs_pd_replica){30, 1, 2};
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_SHARD_LEADER};
    out[n].u.leader.shard_id = 4;
    out[n].u.leader.leader = 30;
    out[n++].u.leader.term = 6;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_ALLOC_IDS};
    out[n].u.alloc.kind = BS_PD_ID_REPLICA;
    out[n++].u.alloc.count = 3;
    return n;
}

static void assert_same_cmd(const struct bs_pd_cmd *a,
                            const struct bs_pd_cmd *b)
{
    ck_assert_int_eq(a->type, b->type);
    switch (a->type) {
    case BS_PD_CMD_BOOTSTRAP:
        ck_assert_uint_eq(a->u.bootstrap.cluster_id, b->u.bootstrap.cluster_id);
        ck_assert_uint_eq(a->u.bootstrap.initial_shards,
                          b->u.bootstrap.initial_shards);
        ck_assert_uint_eq(a->u.bootstrap.replicas, b->u.bootstrap.replicas);
        ck_assert_uint_eq(a->u.bootstrap.now, b->u.bootstrap.now);
        ck_assert_uint_eq(a->u.bootstrap.n_nodes, b->u.bootstrap.n_nodes);
        ck_assert_mem_eq(a->u.bootstrap.nodes, b->u.bootstrap.nodes,
                         a->u.bootstrap.n_nodes *
                             sizeof(struct bs_pd_node_info));
        break;
    case BS_PD_CMD_REGISTER_NODE:
        ck_assert_mem_eq(&a->u.register_node.node, &b->u.register_node.node,
                         sizeof(struct bs_pd_node_info));
        ck_assert_uint_eq(a->u.register_node.now, b->u.register_node.now);
        break;
    case BS_PD_CMD_SHARD_SPLIT:
        ck_assert_uint_eq(a->u.split.split_key_len, b->u.split.split_key_len);
        ck_assert_mem_eq(a->u.split.split_key, b->u.split.split_key,
                         a->u.split.split_key_len);
        ck_assert_uint_eq(a->u.split.new_shard_id, b->u.split.new_shard_id);
        ck_assert_uint_eq(a->u.split.epoch.version, b->u.split.epoch.version);
        ck_assert_uint_eq(a->u.split.n_replicas, b->u.split.n_replicas);
        ck_assert_mem_eq(a->u.split.replicas, b->u.split.replicas,
                         a->u.split.n_replicas * sizeof(struct bs_pd_replica));
        break;
    default:
        break; /* fixed-size fields: compared by re-encoding */
    }
}

START_TEST(test_cmd_round_trip)
{
    struct bs_pd_cmd cmds[16];
    struct bs_pd_node_info ni[2];
    size_t n = sample_cmds(cmds, ni);
    ck_assert_uint_eq(n, 8);
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf, *buf2;
        size_t len, len2;
        ck_assert_int_eq(bs_pd_cmd_encode(&cmds[i], &buf, &len), 0);
        ck_assert_uint_eq(buf[0], 1);
        ck_assert_uint_eq(buf[1], cmds[i].type);
        struct bs_pd_cmd d;
        ck_assert_int_eq(bs_pd_cmd_decode(buf, len, &d), 0);
        assert_same_cmd(&cmds[i], &d);
        ck_assert_int_eq(bs_pd_cmd_encode(&d, &buf2, &len2), 0);
        th_assert_bytes(buf2, len2, buf, len);
        ck_assert_str_ne(bs_pd_cmd_type_name(d.type), "unknown");
        bs_pd_cmd_free(&d);
        free(buf);
    }
    bs_pd_cmd_free(NULL);
}
END_TEST

START_TEST(test_cmd_decode_rejects_every_truncation_and_trailer)
{
    struct bs_pd_cmd cmds[16];
    struct bs_pd_node_info ni[2];
    size_t n = sample_cmds(cmds, ni);
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf;
        size_t len;
        ck_assert_int_eq(bs_pd_cmd_encode(&cmds[i], &buf, &len), 0);
        th_assert_cmd_truncations(buf, len);
        struct bs_pd_cmd d;
        buf[0] = 2; /* unknown version */
        ck_assert_int_eq(bs_pd_cmd_decode(buf, len, &d), BS_ECORRUPT);
        free(buf);
    }
    uint8_t unknown[] = {1, 99};
    struct bs_pd_cmd d;
    ck_assert_int_eq(bs_pd_cmd_decode(unknown, 2, &d), BS_ECORRUPT);
    ck_assert_int_eq(bs_pd_cmd_decode(NULL, 0, &d), BS_ECORRUPT);
    /* A bootstrap that claims 2^32-1 nodes in a few bytes must not try to
     * allocate them. */
    uint8_t huge[2 + 8 + 4 + 4 + 8 + 4 + 15] = {1, BS_PD_CMD_BOOTSTRAP};
    memset(huge + 26, 0xff, 4);
    ck_assert_int_eq(bs_pd_cmd_decode(huge, sizeof(huge), &d), BS_ECORRUPT);
    /* Split key longer than the limit. */
    uint8_t bigkey[2 + 24 + 4] = {1, BS_PD_CMD_SHARD_SPLIT};
    memset(bigkey + 26, 0xff, 4);
    ck_assert_int_eq(bs_pd_cmd_decode(bigkey, sizeof(bigkey), &d), BS_ECORRUPT);
}
END_TEST

START_TEST(test_cmd_decode_survives_random_corruption)
{
    struct bs_pd_cmd cmds[16];
    struct bs_pd_node_info ni[2];
    size_t n = sample_cmds(cmds, ni);
    size_t ok, bad;
    th_fuzz_cmds(cmds, n, 12345, 20000, 4, 4, false, &ok, &bad);
    ck_assert_uint_gt(bad, 0);
    ck_assert_uint_gt(ok, 0); /* flips inside values still decode */
}
END_TEST

START_TEST(test_cmd_encode_refuses_bad_commands)
{
    uint8_t *buf = NULL;
    size_t len;
    struct bs_pd_cmd c = {.type = 0};
    ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), BS_EINVAL);
    c.type = 200;
    ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), BS_EINVAL);
    c = (struct bs_pd_cmd){.type = BS_PD_CMD_SHARD_REPLICA_CHANGE};
    c.u.replica_change.n_replicas = BS_RAFT_MAX_MEMBERS + 1;
    ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), BS_EINVAL);
    c = (struct bs_pd_cmd){.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&c.u.register_node.node, 1);
    memset(c.u.register_node.node.client_addr, 'a', BS_PD_ADDR_MAX + 1);
    ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), BS_EINVAL);
    th_node_info(&c.u.register_node.node, 1);
    c.u.register_node.node.n_labels = BS_PD_MAX_LABELS + 1;
    ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), BS_EINVAL);
    c = (struct bs_pd_cmd){.type = BS_PD_CMD_BOOTSTRAP};
    ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), BS_EINVAL);
    ck_assert_ptr_null(buf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement_state");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bootstrap_3x8);
    tcase_add_test(tc, test_bootstrap_single_node);
    tcase_add_test(tc, test_bootstrap_5x64);
    tcase_add_test(tc, test_bootstrap_one_shard);
    tcase_add_test(tc, test_bootstrap_defaults_and_small_clusters);
    tcase_add_test(tc, test_bootstrap_balance_matrix);
    tcase_add_test(tc, test_bootstrap_refuses_bad_input);
    tcase_add_test(tc, test_initial_split_keys);
    tcase_add_test(tc, test_route_matches_linear_scan);
    tcase_add_test(tc, test_route_before_bootstrap);
    tcase_add_test(tc, test_node_liveness_rule);
    tcase_add_test(tc, test_conf_state);
    tcase_add_test(tc, test_cmd_round_trip);
    tcase_add_test(tc, test_cmd_decode_rejects_every_truncation_and_trailer);
    tcase_add_test(tc, test_cmd_decode_survives_random_corruption);
    tcase_add_test(tc, test_cmd_encode_refuses_bad_commands);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(suite());
}
