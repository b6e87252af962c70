/*
 * test_apply.c - unit tests of placement/apply.c and persist.c: splits,
 * replica changes and leader reports (with stale and duplicate reports
 * ignored), node registration and every node state transition, idempotent
 * re-apply by index, determinism of replay, refused and corrupt commands,
 * and the records: only changed records are written, save -> load and
 * encode_all -> decode_all give the identical state, and corrupt, missing
 * or inconsistent records are refused naming the record.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* --------------------------------------------------------------- splits */

START_TEST(test_split_updates_routing_and_epochs)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    const struct bs_pd_shard *s1 = bs_pd_shard_find(st, 1);
    uint64_t leader_node = 0;
    for (uint32_t i = 0; i < s1->n_replicas; i++)
        if (s1->replicas[i].id == s1->leader)
            leader_node = s1->replicas[i].node_id;

    uint64_t nid;
    ck_assert_int_eq(th_split(st, &idx, 1, "\x10", 1, &nid), 0);
    ck_assert_uint_eq(nid, 9);
    th_check(st);
    ck_assert_uint_eq(bs_pd_route_count(st), 9);
    const struct bs_pd_shard *s;
    ck_assert_int_eq(bs_pd_route(st, "\x0f\xff", 2, &s), 0);
    ck_assert_uint_eq(s->id, 1);
    ck_assert_int_eq(bs_pd_route(st, "\x10", 1, &s), 0);
    ck_assert_uint_eq(s->id, 9);
    ck_assert_int_eq(bs_pd_route(st, "\x1f\xff\xff", 3, &s), 0);
    ck_assert_uint_eq(s->id, 9);
    ck_assert_int_eq(bs_pd_route(st, "\x20\x00", 2, &s), 0);
    ck_assert_uint_eq(s->id, 2);

    s1 = bs_pd_shard_find(st, 1);
    const struct bs_pd_shard *s9 = bs_pd_shard_find(st, 9);
    ck_assert_uint_eq(s1->epoch.version, 2);
    ck_assert_uint_eq(s1->epoch.conf_ver, 1);
    ck_assert_uint_eq(s9->epoch.version, 2);
    ck_assert_uint_eq(s1->end_len, 1);
    ck_assert_uint_eq(s9->start_len, 1);
    ck_assert_uint_eq(s9->end_len, 2);
    ck_assert_mem_eq(s9->end, "\x20\x00", 2);
    ck_assert_ptr_eq(bs_pd_route_at(st, 1), s9); /* right after parent */
    /* New replicas on the parent's nodes, new ids; leader hint follows
     * the parent's leader's node. */
    ck_assert_uint_eq(s9->n_replicas, 3);
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(s9->replicas[i].node_id, s1->replicas[i].node_id);
        ck_assert_uint_ne(s9->replicas[i].id, s1->replicas[i].id);
    }
    ck_assert_uint_eq(bs_pd_shard_replica_on(s9, leader_node)->id, s9->leader);
    ck_assert_uint_eq(s9->leader_term, 0);

    /* Splitting the last shard (end = +inf) and the first at a long key. */
    ck_assert_int_eq(th_split(st, &idx, 8, "\xff\xff\xff", 3, &nid), 0);
    ck_assert_int_eq(bs_pd_route(st, "\xff\xff\xff\x00", 4, &s), 0);
    ck_assert_uint_eq(s->id, nid);
    ck_assert_uint_eq(s->end_len, 0);
    ck_assert_int_eq(th_split(st, &idx, 1, "\x00\x00\x00\x01", 4, &nid), 0);
    ck_assert_int_eq(bs_pd_route(st, "\x00\x00\x00", 3, &s), 0);
    ck_assert_uint_eq(s->id, 1);
    ck_assert_int_eq(bs_pd_route(st, "\x00\x00\x00\x01", 4, &s), 0);
    ck_assert_uint_eq(s->id, nid);
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_split_stale_duplicate_and_refused)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    struct bs_pd_cmd cmd;
    th_split_cmd(st, &idx, 1, "\x10", 1, &cmd);
    struct bs_pd_cmd first = cmd;

    /* Out of order (version + 2). */
    cmd.u.split.epoch.version = 3;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd = first;
    /* Key outside / on the boundary of the range. */
    cmd.u.split.split_key = (const uint8_t *)"\x30";
    th_refused(st, &idx, &cmd, BS_ERANGE, NULL);
    cmd.u.split.split_key = (const uint8_t *)"";
    cmd.u.split.split_key_len = 0;
    th_refused(st, &idx, &cmd, BS_ERANGE, NULL);
    cmd = first;
    cmd.u.split.shard_id = 2;
    cmd.u.split.split_key = (const uint8_t *)"\x20\x00";
    cmd.u.split.split_key_len = 2; /* == start of shard 2 */
    th_refused(st, &idx, &cmd, BS_ERANGE, NULL);
    cmd = first;
    /* Unknown shard, shard 0, ids never allocated, id taken. */
    cmd.u.split.shard_id = 77;
    th_refused(st, &idx, &cmd, BS_ENOTFOUND, NULL);
    cmd.u.split.shard_id = 0;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd = first;
    cmd.u.split.new_shard_id = 1000;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd.u.split.new_shard_id = 2;
    th_refused(st, &idx, &cmd, BS_EEXIST, NULL);
    cmd = first;
    cmd.u.split.replicas[1].id = BS_ENG_REPLICA_ID(
        cmd.u.split.replicas[1].node_id, 1000); /* never allocated */
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd.u.split.replicas[1].id = bs_pd_shard_find(st, 2)->replicas[0].id;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL); /* used */
    cmd = first;
    cmd.u.split.replicas[1].node_id = cmd.u.split.replicas[0].node_id;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd = first;
    cmd.u.split.new_epoch.version = 0;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);

    /* The real one, then its duplicate and an older report. */
    struct bs_pd_result res;
    ck_assert_int_eq(th_apply(st, &idx, &first, &res), 0);
    th_refused(st, &idx, &first, BS_ESTALE, NULL);
    cmd = first;
    cmd.u.split.epoch.version = 1;
    th_refused(st, &idx, &cmd, BS_ESTALE, NULL);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_many_random_splits)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(5, 8, 3, &idx);
    uint64_t seed = 99;
    size_t done = 0;
    while (done < 300) {
        uint8_t key[5];
        size_t len = 1 + th_rand(&seed) % 5;
        for (size_t j = 0; j < len; j++)
            key[j] = (uint8_t)th_rand(&seed);
        const struct bs_pd_shard *s;
        ck_assert_int_eq(bs_pd_route(st, key, len, &s), 0);
        int rc = th_split(st, &idx, s->id, key, len, NULL);
        ck_assert(rc == 0 || rc == BS_ERANGE);
        done += rc == 0;
    }
    th_check(st);
    ck_assert_uint_eq(bs_pd_route_count(st), 308);
    for (int i = 0; i < 5000; i++) {
        uint8_t key[6];
        size_t len = th_rand(&seed) % 7;
        for (size_t j = 0; j < len; j++)
            key[j] = (uint8_t)th_rand(&seed);
        const struct bs_pd_shard *s;
        ck_assert_int_eq(bs_pd_route(st, key, len, &s), 0);
        ck_assert_ptr_eq(s, th_route_linear(st, key, len));
    }
    bs_pd_state_destroy(st);
}
END_TEST

/* ------------------------------------------------------ replica changes */

static void set_state(struct bs_pd_state *st, uint64_t *idx, uint64_t id,
                      uint8_t to, int want)
{
    struct bs_pd_cmd cmd = th_cmd_node_state(id, to, 3000 + *idx);
    struct bs_pd_result res;
    int rc = th_apply(st, idx, &cmd, &res);
    ck_assert_msg(rc == want, "node %llu -> %s: got %s want %s (%s)",
                  (unsigned long long)id, bs_pd_node_state_name(to),
                  bs_err_name(rc), bs_err_name(want), res.msg);
}

START_TEST(test_replica_change)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    th_register(st, &idx, 4);
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 3);
    uint64_t rid = th_alloc(st, &idx, BS_PD_ID_REPLICA, 1);

    /* Add a learner on node 4. */
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_SHARD_REPLICA_CHANGE};
    cmd.u.replica_change.shard_id = 3;
    cmd.u.replica_change.conf_ver = 2;
    cmd.u.replica_change.n_replicas = 4;
    memcpy(cmd.u.replica_change.replicas, s->replicas,
           3 * sizeof(struct bs_pd_replica));
    cmd.u.replica_change.replicas[3] = (struct bs_pd_replica){
        BS_ENG_REPLICA_ID(4, rid), 4, BS_PD_ROLE_LEARNER};
    struct bs_pd_cmd add = cmd;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, NULL), 0);
    s = bs_pd_shard_find(st, 3);
    ck_assert_uint_eq(s->epoch.conf_ver, 2);
    ck_assert_uint_eq(s->epoch.version, 1);
    ck_assert_uint_eq(s->n_replicas, 4);
    ck_assert_int_eq(bs_pd_shard_replica_on(s, 4)->role, BS_PD_ROLE_LEARNER);
    th_check(st);
    /* Duplicate and stale. */
    th_refused(st, &idx, &add, BS_ESTALE, NULL);
    cmd.u.replica_change.conf_ver = 1;
    th_refused(st, &idx, &cmd, BS_ESTALE, NULL);

    /* Promote it and remove the leader's replica: leader unknown. */
    uint64_t old_leader = s->leader;
    cmd = add;
    cmd.u.replica_change.conf_ver = 3;
    uint32_t k = 0;
    for (uint32_t i = 0; i < 4; i++)
        if (add.u.replica_change.replicas[i].id != old_leader)
            cmd.u.replica_change.replicas[k++] =
                add.u.replica_change.replicas[i];
    cmd.u.replica_change.n_replicas = k;
    cmd.u.replica_change.replicas[2].role = BS_PD_ROLE_VOTER;
    struct bs_pd_cmd promote = cmd;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, NULL), 0);
    s = bs_pd_shard_find(st, 3);
    ck_assert_uint_eq(s->leader, 0);
    ck_assert_uint_eq(s->n_replicas, 3);
    th_check(st);

    /* Refused replica sets. */
    cmd = promote;
    cmd.u.replica_change.conf_ver = 4;
    cmd.u.replica_change.replicas[0].node_id = 99; /* unknown node */
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd = promote;
    cmd.u.replica_change.conf_ver = 4;
    for (uint32_t i = 0; i < 3; i++)
        cmd.u.replica_change.replicas[i].role = BS_PD_ROLE_LEARNER;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL); /* no voter */
    cmd = promote;
    cmd.u.replica_change.conf_ver = 4;
    cmd.u.replica_change.replicas[0].role = 9;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd.u.replica_change.n_replicas = 0;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd = promote;
    cmd.u.replica_change.conf_ver = 4;
    cmd.u.replica_change.replicas[0].id =
        bs_pd_shard_find(st, 1)->replicas[0].id; /* another shard's */
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd.u.replica_change.shard_id = 99;
    th_refused(st, &idx, &cmd, BS_ENOTFOUND, NULL);

    /* The placement group itself changes membership the same way. */
    const struct bs_pd_shard *s0 = bs_pd_shard_find(st, 0);
    rid = th_alloc(st, &idx, BS_PD_ID_REPLICA, 1);
    cmd = (struct bs_pd_cmd){.type = BS_PD_CMD_SHARD_REPLICA_CHANGE};
    cmd.u.replica_change.shard_id = 0;
    cmd.u.replica_change.conf_ver = 2;
    cmd.u.replica_change.n_replicas = 4;
    memcpy(cmd.u.replica_change.replicas, s0->replicas,
           3 * sizeof(struct bs_pd_replica));
    cmd.u.replica_change.replicas[3] = (struct bs_pd_replica){
        BS_ENG_REPLICA_ID(4, rid), 4, BS_PD_ROLE_LEARNER};
    ck_assert_int_eq(th_apply(st, &idx, &cmd, NULL), 0);
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 4);
    ck_assert_uint_eq(bs_pd_route_count(st), 8);
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

/* -------------------------------------------------------------- leaders */

START_TEST(test_leader_reports)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 2);
    uint64_t a = s->replicas[0].id, b = s->replicas[1].id;
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_SHARD_LEADER};
    cmd.u.leader.shard_id = 2;
    cmd.u.leader.leader = b;
    cmd.u.leader.term = 5;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, NULL), 0);
    s = bs_pd_shard_find(st, 2);
    ck_assert_uint_eq(s->leader, b);
    ck_assert_uint_eq(s->leader_term, 5);
    th_refused(st, &idx, &cmd, BS_ESTALE, NULL); /* duplicate */
    cmd.u.leader.term = 4;
    cmd.u.leader.leader = a;
    th_refused(st, &idx, &cmd, BS_ESTALE, NULL); /* older */
    cmd.u.leader.term = 5;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL); /* 2 in a term */
    cmd.u.leader.term = 0;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd.u.leader.term = 6;
    cmd.u.leader.leader = 999;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL); /* not a member */
    cmd.u.leader.leader = 0;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd.u.leader.shard_id = 50;
    th_refused(st, &idx, &cmd, BS_ENOTFOUND, NULL);
    cmd.u.leader.shard_id = 2;
    cmd.u.leader.leader = a;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, NULL), 0);
    ck_assert_uint_eq(bs_pd_shard_find(st, 2)->leader, a);
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

/* ---------------------------------------------------------------- nodes */

START_TEST(test_node_registration)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&cmd.u.register_node.node, 10);
    cmd.u.register_node.now = 5000;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, NULL), 0);
    const struct bs_pd_node *n = bs_pd_node_find(st, 10);
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(n->state, BS_PD_NODE_UP);
    ck_assert_uint_eq(n->last_heartbeat, 5000);
    ck_assert_uint_eq(n->state_since, 5000);
    ck_assert_uint_eq(bs_pd_next_node_id(st), 11);
    ck_assert_uint_eq(bs_pd_node_at(st, 3)->info.id, 10);
    th_refused(st, &idx, &cmd, BS_ESTALE, NULL); /* same info */
    /* New address: updated, state untouched. */
    strcpy(cmd.u.register_node.node.client_addr, "10.9.9.9:2379");
    ck_assert_int_eq(th_apply(st, &idx, &cmd, NULL), 0);
    ck_assert_str_eq(bs_pd_node_find(st, 10)->info.client_addr,
                     "10.9.9.9:2379");
    /* An allocated id, in the middle of the sorted array. */
    uint64_t nid = th_alloc(st, &idx, BS_PD_ID_NODE, 1);
    ck_assert_uint_eq(nid, 11);
    th_register(st, &idx, 5);
    ck_assert_uint_eq(bs_pd_node_at(st, 3)->info.id, 5);
    ck_assert_uint_eq(bs_pd_next_node_id(st), 12);
    /* Refused. */
    th_node_info(&cmd.u.register_node.node, 0);
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    th_node_info(&cmd.u.register_node.node, 20);
    cmd.u.register_node.node.labels[0].key[0] = '\0';
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    th_check(st);
    ck_assert_uint_eq(bs_pd_node_count(st), 5);
    bs_pd_state_destroy(st);
}
END_TEST

/* Every (from, to) pair of UPDATE_NODE_STATE against the diagram. */
START_TEST(test_node_state_transition_table)
{
    enum { U = 0, E = BS_EINVAL, S = BS_ESTALE };
    /* want[from][to], states 1..5 */
    static const int want[6][6] = {
        [BS_PD_NODE_UP] = {0, S, U, U, U, E},
        [BS_PD_NODE_SUSPECT] = {0, U, S, U, U, E},
        [BS_PD_NODE_DOWN] = {0, U, E, S, U, E},
        [BS_PD_NODE_DRAINING] = {0, U, E, E, S, U},
        [BS_PD_NODE_REMOVED] = {0, E, E, E, E, S},
    };
    /* How to reach each state from UP on a node without replicas. */
    static const uint8_t path[6][3] = {
        [BS_PD_NODE_UP] = {0},
        [BS_PD_NODE_SUSPECT] = {BS_PD_NODE_SUSPECT},
        [BS_PD_NODE_DOWN] = {BS_PD_NODE_DOWN},
        [BS_PD_NODE_DRAINING] = {BS_PD_NODE_DRAINING},
        [BS_PD_NODE_REMOVED] = {BS_PD_NODE_DRAINING, BS_PD_NODE_REMOVED},
    };
    for (uint8_t from = 1; from <= 5; from++) {
        for (uint8_t to = 1; to <= 5; to++) {
            uint64_t idx = 0;
            struct bs_pd_state *st = th_bootstrap(3, 2, 3, &idx);
            th_register(st, &idx, 4);
            for (int k = 0; k < 3 && path[from][k]; k++)
                set_state(st, &idx, 4, path[from][k], 0);
            ck_assert_int_eq(bs_pd_node_find(st, 4)->state, from);
            set_state(st, &idx, 4, to, want[from][to]);
            const struct bs_pd_node *n = bs_pd_node_find(st, 4);
            ck_assert_int_eq(n->state, want[from][to] ? from : to);
            if (!want[from][to])
                ck_assert_uint_eq(n->state_since, 3000 + idx - 1);
            set_state(st, &idx, 4, 0, BS_EINVAL); /* unknown state */
            th_check(st);
            bs_pd_state_destroy(st);
        }
    }
}
END_TEST

START_TEST(test_node_removal_and_heartbeats)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    /* A fourth node, so that three remain for three replicas per shard
     * (bs_pd_can_decommission). */
    th_register(st, &idx, 4);
    /* Node 1 holds replicas: draining is fine, removal is not. */
    set_state(st, &idx, 1, BS_PD_NODE_DRAINING, 0);
    set_state(st, &idx, 1, BS_PD_NODE_REMOVED, BS_EBUSY);
    ck_assert_int_eq(bs_pd_node_find(st, 1)->state, BS_PD_NODE_DRAINING);
    set_state(st, &idx, 99, BS_PD_NODE_DOWN, BS_ENOTFOUND);

    /* Heartbeats: a draining node stays draining. */
    struct bs_pd_cmd hb = {.type = BS_PD_CMD_NODE_HEARTBEAT};
    hb.u.heartbeat.node_id = 1;
    hb.u.heartbeat.now = 4000;
    ck_assert_int_eq(th_apply(st, &idx, &hb, NULL), 0);
    ck_assert_int_eq(bs_pd_node_find(st, 1)->state, BS_PD_NODE_DRAINING);
    ck_assert_uint_eq(bs_pd_node_find(st, 1)->last_heartbeat, 4000);
    th_refused(st, &idx, &hb, BS_ESTALE, NULL); /* not newer */

    /* A suspect node comes back with a heartbeat. */
    set_state(st, &idx, 2, BS_PD_NODE_SUSPECT, 0);
    set_state(st, &idx, 2, BS_PD_NODE_DOWN, 0);
    hb.u.heartbeat.node_id = 2;
    hb.u.heartbeat.now = 4500;
    ck_assert_int_eq(th_apply(st, &idx, &hb, NULL), 0);
    const struct bs_pd_node *n2 = bs_pd_node_find(st, 2);
    ck_assert_int_eq(n2->state, BS_PD_NODE_UP);
    ck_assert_uint_eq(n2->state_since, 4500);
    hb.u.heartbeat.node_id = 42;
    th_refused(st, &idx, &hb, BS_ENOTFOUND, NULL);

    /* A fresh node with no replicas: drain, remove, then it is gone for
     * good (heartbeat stale, re-registration refused, no replica may be
     * placed on it). One decommission at a time: node 1's is cancelled
     * first. */
    set_state(st, &idx, 1, BS_PD_NODE_UP, 0);
    th_register(st, &idx, 5);
    set_state(st, &idx, 5, BS_PD_NODE_DRAINING, 0);
    set_state(st, &idx, 5, BS_PD_NODE_REMOVED, 0);
    hb.u.heartbeat.node_id = 5;
    hb.u.heartbeat.now = 9000;
    th_refused(st, &idx, &hb, BS_ESTALE, NULL);
    struct bs_pd_cmd reg = {.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&reg.u.register_node.node, 5);
    th_refused(st, &idx, &reg, BS_EEXIST, NULL);
    uint64_t rid = th_alloc(st, &idx, BS_PD_ID_REPLICA, 1);
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 1);
    struct bs_pd_cmd rc = {.type = BS_PD_CMD_SHARD_REPLICA_CHANGE};
    rc.u.replica_change.shard_id = 1;
    rc.u.replica_change.conf_ver = 2;
    rc.u.replica_change.n_replicas = 4;
    memcpy(rc.u.replica_change.replicas, s->replicas,
           3 * sizeof(struct bs_pd_replica));
    rc.u.replica_change.replicas[3] = (struct bs_pd_replica){
        BS_ENG_REPLICA_ID(5, rid), 5, BS_PD_ROLE_LEARNER};
    th_refused(st, &idx, &rc, BS_EINVAL, NULL);
    ck_assert_uint_eq(bs_pd_node_count(st), 5); /* the id stays taken */
    bs_pd_state_destroy(st);
}
END_TEST

/* ---------------------------------------------- index, ids, corruption */

START_TEST(test_idempotent_by_index)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    uint64_t nid;
    ck_assert_int_eq(th_split(st, &idx, 4, "\x70", 1, &nid), 0);
    uint8_t *img;
    size_t len;
    ck_assert_int_eq(bs_pd_encode_all(st, &img, &len), 0);

    /* Re-applying any index <= applied, whatever its bytes, is a no-op. */
    struct bs_pd_cmd hb = {.type = BS_PD_CMD_NODE_HEARTBEAT};
    hb.u.heartbeat.node_id = 1;
    hb.u.heartbeat.now = 99999;
    uint8_t *buf;
    size_t blen;
    ck_assert_int_eq(bs_pd_cmd_encode(&hb, &buf, &blen), 0);
    for (uint64_t i = 0; i <= idx; i++) {
        struct bs_pd_result res;
        ck_assert_int_eq(bs_pd_apply(st, i, buf, blen, &res), 0);
        ck_assert(res.skipped);
    }
    ck_assert_int_eq(bs_pd_apply(st, idx, (const uint8_t *)"junk", 4, NULL), 0);
    uint8_t *img2;
    size_t len2;
    ck_assert_int_eq(bs_pd_encode_all(st, &img2, &len2), 0);
    ck_assert_uint_eq(len, len2);
    ck_assert_mem_eq(img, img2, len);
    free(img2);

    /* Indexes may skip (entries that carry no placement command). */
    ck_assert_int_eq(bs_pd_apply(st, idx + 10, buf, blen, NULL), 0);
    ck_assert_uint_eq(bs_pd_applied(st), idx + 10);
    ck_assert_uint_eq(bs_pd_node_find(st, 1)->last_heartbeat, 99999);
    ck_assert_int_eq(bs_pd_apply(st, idx + 11, NULL, 0, NULL), 0);
    ck_assert_uint_eq(bs_pd_applied(st), idx + 11);
    free(buf);
    free(img);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_corrupt_command_consumes_index_only)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    uint64_t ridx = 0;
    struct bs_pd_state *ref = th_bootstrap(3, 8, 3, &ridx);
    static const uint8_t junk[][4] = {
        {0, 0, 0, 0}, {1, 0, 0, 0}, {1, 99, 0, 0}, {1, 4, 1, 2}};
    for (size_t i = 0; i < 4; i++) {
        struct bs_pd_result res;
        ck_assert_int_eq(bs_pd_apply(st, ++idx, junk[i], 4, &res), BS_ECORRUPT);
        ck_assert(strstr(res.msg, "not a placement command"));
        ck_assert_int_eq(bs_pd_apply(ref, idx, NULL, 0, NULL), 0);
    }
    ck_assert_uint_eq(bs_pd_applied(st), idx);
    ck_assert(th_equal(st, ref));
    bs_pd_state_destroy(st);
    bs_pd_state_destroy(ref);
}
END_TEST

START_TEST(test_commands_before_bootstrap_and_alloc)
{
    struct bs_pd_state *st = bs_pd_state_create();
    uint64_t idx = 0;
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_ALLOC_IDS};
    cmd.u.alloc.kind = BS_PD_ID_SHARD;
    cmd.u.alloc.count = 1;
    struct bs_pd_result res;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), BS_EINVAL);
    ck_assert(strstr(res.msg, "before bootstrap"));
    ck_assert_uint_eq(bs_pd_applied(st), 1);
    bs_pd_state_destroy(st);

    idx = 0;
    st = th_bootstrap(3, 8, 3, &idx);
    ck_assert_uint_eq(th_alloc(st, &idx, BS_PD_ID_SHARD, 5), 9);
    ck_assert_uint_eq(th_alloc(st, &idx, BS_PD_ID_SHARD, 1), 14);
    uint64_t r = bs_pd_next_replica_id(st);
    ck_assert_uint_eq(th_alloc(st, &idx, BS_PD_ID_REPLICA, 3), r);
    ck_assert_uint_eq(bs_pd_next_replica_id(st), r + 3);
    cmd.u.alloc.count = 0;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd.u.alloc.count = BS_PD_MAX_ALLOC + 1;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    cmd.u.alloc.count = 1;
    cmd.u.alloc.kind = 7;
    th_refused(st, &idx, &cmd, BS_EINVAL, NULL);
    bs_pd_state_destroy(st);
}
END_TEST

/* A random workload: a mix of valid and invalid commands. Appends the
 * encoded commands to log (caller frees each). */
static size_t random_log(uint64_t seed, uint8_t **log, size_t *lens, size_t max)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(4, 8, 3, &idx);
    size_t n = 0;
    struct bs_pd_node_info ni[4];
    for (int i = 0; i < 4; i++)
        th_node_info(&ni[i], (uint64_t)i + 1);
    struct bs_pd_cmd boot = {.type = BS_PD_CMD_BOOTSTRAP};
    boot.u.bootstrap.cluster_id = 42;
    boot.u.bootstrap.initial_shards = 8;
    boot.u.bootstrap.replicas = 3;
    boot.u.bootstrap.now = 1000;
    boot.u.bootstrap.n_nodes = 4;
    boot.u.bootstrap.nodes = ni;
    ck_assert_int_eq(bs_pd_cmd_encode(&boot, &log[n], &lens[n]), 0);
    n++;
    while (n + 4 < max) {
        struct bs_pd_cmd cmd;
        uint8_t key[3]; /* the split command borrows it */
        uint64_t r = th_rand(&seed);
        switch (r % 5) {
        case 0: {
            for (int j = 0; j < 3; j++)
                key[j] = (uint8_t)th_rand(&seed);
            const struct bs_pd_shard *s;
            bs_pd_route(st, key, 3, &s);
            /* The allocations are commands too: log them. */
            th_split_cmd(st, &idx, s->id, key, 3, &cmd);
            struct bs_pd_cmd a = {.type = BS_PD_CMD_ALLOC_IDS};
            a.u.alloc.kind = BS_PD_ID_SHARD;
            a.u.alloc.count = 1;
            ck_assert_int_eq(bs_pd_cmd_encode(&a, &log[n], &lens[n]), 0);
            n++;
            a.u.alloc.kind = BS_PD_ID_REPLICA;
            a.u.alloc.count = cmd.u.split.n_replicas;
            ck_assert_int_eq(bs_pd_cmd_encode(&a, &log[n], &lens[n]), 0);
            n++;
            break;
        }
        case 1:
            cmd = (struct bs_pd_cmd){.type = BS_PD_CMD_NODE_HEARTBEAT};
            cmd.u.heartbeat.node_id = 1 + th_rand(&seed) % 5;
            cmd.u.heartbeat.now = 1000 + th_rand(&seed) % 100000;
            break;
        case 2:
            cmd = (struct bs_pd_cmd){.type = BS_PD_CMD_UPDATE_NODE_STATE};
            cmd.u.node_state.node_id = 1 + th_rand(&seed) % 4;
            cmd.u.node_state.state = (uint8_t)(1 + th_rand(&seed) % 5);
            cmd.u.node_state.now = th_rand(&seed) % 100000;
            break;
        case 3:
            cmd = (struct bs_pd_cmd){.type = BS_PD_CMD_SHARD_LEADER};
            cmd.u.leader.shard_id = th_rand(&seed) % 10;
            {
                const struct bs_pd_shard *s =
                    bs_pd_shard_find(st, cmd.u.leader.shard_id);
                cmd.u.leader.leader =
                    s ? s->replicas[th_rand(&seed) % s->n_replicas].id : 1;
            }
            cmd.u.leader.term = th_rand(&seed) % 20;
            break;
        default:
            cmd = (struct bs_pd_cmd){.type = BS_PD_CMD_ALLOC_IDS};
            cmd.u.alloc.kind = (uint8_t)(th_rand(&seed) % 3);
            cmd.u.alloc.count = (uint32_t)(th_rand(&seed) % 3);
            break;
        }
        ck_assert_int_eq(bs_pd_cmd_encode(&cmd, &log[n], &lens[n]), 0);
        bs_pd_apply(st, ++idx, log[n], lens[n], NULL);
        n++;
    }
    bs_pd_state_destroy(st);
    return n;
}

START_TEST(test_replay_is_deterministic)
{
    enum { MAX = 600 };
    uint8_t *log[MAX];
    size_t lens[MAX];
    size_t n = random_log(2024, log, lens, MAX);
    struct bs_pd_state *a = bs_pd_state_create();
    struct bs_pd_state *b = bs_pd_state_create();
    size_t outcomes[32] = {0};
    for (size_t i = 0; i < n; i++) {
        int ra = bs_pd_apply(a, i + 1, log[i], lens[i], NULL);
        ck_assert_int_ne(ra, BS_ENOMEM);
        outcomes[-ra]++;
    }
    ck_assert_uint_gt(outcomes[0], 50);
    ck_assert_uint_gt(outcomes[-BS_ESTALE] + outcomes[-BS_EINVAL], 10);
    th_check(a);
    /* b: the same log twice (the second pass is all skipped), saved and
     * reloaded midway. */
    struct th_kv kv = {0};
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            struct bs_pd_result res;
            bs_pd_apply(b, i + 1, log[i], lens[i], &res);
            ck_assert(res.skipped == (pass == 1));
            if (i % 97 == 0) {
                ck_assert_int_eq(bs_pd_save_to(b, th_kv_put, &kv), 0);
                ck_assert_int_eq(th_kv_load(&kv, b, NULL), 0);
            }
        }
    ck_assert(th_equal(a, b));
    for (size_t i = 0; i < n; i++)
        free(log[i]);
    th_kv_free(&kv);
    bs_pd_state_destroy(a);
    bs_pd_state_destroy(b);
}
END_TEST

/* ------------------------------------------------------------ persistence */

START_TEST(test_save_writes_only_changes)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    struct th_kv kv = {0};
    ck_assert_int_eq(bs_pd_save_to(st, th_kv_put, &kv), 0);
    ck_assert_uint_eq(kv.puts, 1 + 3 + 9); /* meta, nodes, shards */
    ck_assert_uint_eq(kv.n, 13);
    th_check(st);

    kv.puts = 0;
    ck_assert_int_eq(bs_pd_save_to(st, th_kv_put, &kv), 0);
    ck_assert_uint_eq(kv.puts, 1); /* meta only */

    struct bs_pd_cmd hb = {.type = BS_PD_CMD_NODE_HEARTBEAT};
    hb.u.heartbeat.node_id = 2;
    hb.u.heartbeat.now = 7000;
    ck_assert_int_eq(th_apply(st, &idx, &hb, NULL), 0);
    hb.u.heartbeat.now = 7001;
    ck_assert_int_eq(th_apply(st, &idx, &hb, NULL), 0);
    kv.puts = 0;
    ck_assert_int_eq(bs_pd_save_to(st, th_kv_put, &kv), 0);
    ck_assert_uint_eq(kv.puts, 2); /* node 2 once, meta */

    /* A split: two allocs (meta), then parent + new shard + meta. */
    ck_assert_int_eq(th_split(st, &idx, 3, "\x50", 1, NULL), 0);
    kv.puts = 0;
    ck_assert_int_eq(bs_pd_save_to(st, th_kv_put, &kv), 0);
    ck_assert_uint_eq(kv.puts, 3);
    ck_assert_uint_eq(kv.n, 14);

    /* An ignored report writes only meta (the applied index). */
    ck_assert_int_eq(th_apply(st, &idx, &hb, NULL), BS_ESTALE);
    kv.puts = 0;
    ck_assert_int_eq(bs_pd_save_to(st, th_kv_put, &kv), 0);
    ck_assert_uint_eq(kv.puts, 1);

    struct bs_pd_state *back = bs_pd_state_create();
    char err[256];
    ck_assert_int_eq(th_kv_load(&kv, back, err), 0);
    ck_assert(th_equal(st, back));
    ck_assert_uint_eq(bs_pd_applied(back), idx);
    th_check(back);
    th_kv_free(&kv);
    bs_pd_state_destroy(back);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_load_empty_and_foreign_keys)
{
    struct th_kv kv = {0};
    struct bs_pd_state *st = bs_pd_state_create();
    ck_assert_int_eq(th_kv_load(&kv, st, NULL), 0);
    ck_assert(!bs_pd_bootstrapped(st));
    /* Keys outside the "p" namespace (the shard layer's) are skipped. */
    th_kv_put(&kv,
              "\x00"
              "apply",
              6, "x", 1);
    th_kv_put(&kv, "zuser", 5, "y", 1);
    ck_assert_int_eq(th_kv_load(&kv, st, NULL), 0);
    uint64_t idx = 0;
    struct bs_pd_state *full = th_bootstrap(3, 8, 3, &idx);
    ck_assert_int_eq(bs_pd_save_to(full, th_kv_put, &kv), 0);
    ck_assert_int_eq(th_kv_load(&kv, st, NULL), 0);
    ck_assert(th_equal(st, full));
    th_kv_free(&kv);
    bs_pd_state_destroy(st);
    bs_pd_state_destroy(full);
}
END_TEST

START_TEST(test_load_refuses_bad_records)
{
    uint64_t idx = 0;
    struct bs_pd_state *old = th_bootstrap(3, 8, 3, &idx);
    struct th_kv kv = {0};
    ck_assert_int_eq(bs_pd_save_to(old, th_kv_put, &kv), 0);
    uint8_t k3[10];
    th_rec_key(k3, 's', 3);
    struct th_rec *r3 = th_kv_find(&kv, k3, 10);
    ck_assert_ptr_nonnull(r3);
    uint8_t *old3 = malloc(r3->vlen);
    size_t old3_len = r3->vlen;
    memcpy(old3, r3->val, r3->vlen);

    struct bs_pd_state *st = th_bootstrap(1, 1, 1, &(uint64_t){0});
    struct bs_pd_state *keep = th_bootstrap(1, 1, 1, &(uint64_t){0});
    char err[256];

    /* A bad checksum names the record; the state is unchanged. */
    r3->val[5] ^= 1;
    ck_assert_int_eq(th_kv_load(&kv, st, err), BS_ECORRUPT);
    ck_assert_msg(strstr(err, "shard/3") && strstr(err, "checksum"), "%s", err);
    ck_assert(th_equal(st, keep));
    r3->val[5] ^= 1;
    /* A value too short to hold a version and a checksum. */
    r3->vlen = 3;
    ck_assert_int_eq(th_kv_load(&kv, st, err), BS_ECORRUPT);
    ck_assert(strstr(err, "shard/3"));
    r3->vlen = old3_len;

    /* A missing record is noticed through the meta counts. */
    struct th_kv less = {0};
    for (size_t i = 0; i < kv.n; i++)
        if (&kv.v[i] != r3)
            th_kv_put(&less, kv.v[i].key, kv.v[i].klen, kv.v[i].val,
                      kv.v[i].vlen);
    ck_assert_int_eq(th_kv_load(&less, st, err), BS_ECORRUPT);
    ck_assert_msg(strstr(err, "meta"), "%s", err);
    th_kv_free(&less);

    /* Records without meta. */
    struct th_kv nometa = {0};
    for (size_t i = 1; i < kv.n; i++)
        th_kv_put(&nometa, kv.v[i].key, kv.v[i].klen, kv.v[i].val,
                  kv.v[i].vlen);
    ck_assert_int_eq(th_kv_load(&nometa, st, err), BS_ECORRUPT);
    ck_assert(strstr(err, "meta"));
    th_kv_free(&nometa);

    /* An unknown record kind in the placement namespace. */
    th_kv_put(&kv, "pq", 2, "v", 1);
    ck_assert_int_eq(th_kv_load(&kv, st, err), BS_ECORRUPT);
    ck_assert(strstr(err, "unknown"));
    th_kv_free(&kv);

    /* Valid records that do not fit together: after a split of shard 3,
     * put back shard 3's old (wider) record: an overlap. */
    ck_assert_int_eq(th_split(old, &idx, 3, "\x50", 1, NULL), 0);
    ck_assert_int_eq(bs_pd_save_all_to(old, th_kv_put, &kv), 0);
    th_kv_put(&kv, k3, 10, old3, old3_len);
    ck_assert_int_eq(th_kv_load(&kv, st, err), BS_ECORRUPT);
    ck_assert_msg(strstr(err, "overlap"), "%s", err);
    ck_assert(th_equal(st, keep));
    free(old3);
    th_kv_free(&kv);
    bs_pd_state_destroy(st);
    bs_pd_state_destroy(keep);
    bs_pd_state_destroy(old);
}
END_TEST

START_TEST(test_image_round_trip_and_every_byte_flip)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(2, 2, 2, &idx);
    ck_assert_int_eq(th_split(st, &idx, 2, "\xa0", 1, NULL), 0);
    size_t len;
    uint8_t *img = th_image(st, &len);
    struct bs_pd_state *back = bs_pd_state_create();
    ck_assert_int_eq(bs_pd_decode_all(back, img, len, NULL), 0);
    ck_assert(th_equal(st, back));
    th_check(back);
    ck_assert_uint_eq(bs_pd_route_count(back), 3);

    char err[256];
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            img[i] ^= (uint8_t)(1u << bit);
            int rc = bs_pd_decode_all(back, img, len, err);
            ck_assert_msg(rc == BS_ECORRUPT, "flip byte %zu bit %d: %s", i, bit,
                          bs_err_name(rc));
            ck_assert_uint_gt(strlen(err), 0);
            img[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_eq(bs_pd_decode_all(back, img, cut, NULL), BS_ECORRUPT);
    ck_assert(th_equal(st, back)); /* every failure left it alone */
    free(img);
    bs_pd_state_destroy(back);
    bs_pd_state_destroy(st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement_apply");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_split_updates_routing_and_epochs);
    tcase_add_test(tc, test_split_stale_duplicate_and_refused);
    tcase_add_test(tc, test_many_random_splits);
    tcase_add_test(tc, test_replica_change);
    tcase_add_test(tc, test_leader_reports);
    tcase_add_test(tc, test_node_registration);
    tcase_add_test(tc, test_node_state_transition_table);
    tcase_add_test(tc, test_node_removal_and_heartbeats);
    tcase_add_test(tc, test_idempotent_by_index);
    tcase_add_test(tc, test_corrupt_command_consumes_index_only);
    tcase_add_test(tc, test_commands_before_bootstrap_and_alloc);
    tcase_add_test(tc, test_replay_is_deterministic);
    tcase_add_test(tc, test_save_writes_only_changes);
    tcase_add_test(tc, test_load_empty_and_foreign_keys);
    tcase_add_test(tc, test_load_refuses_bad_records);
    tcase_add_test(tc, test_image_round_trip_and_every_byte_flip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(suite());
}
