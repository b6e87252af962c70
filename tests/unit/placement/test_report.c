/*
 * test_report.c - bs_pd_next_report: which report brings placement in line
 * with the shards, and in which order.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "shard.h"

/* A shard as its leader would hold it: placement's view of shard id, with
 * the range start, versions and configuration overridden. */
static void shard_from_pd(const struct bs_pd_state *st, uint64_t id,
                          struct bs_shard *sh)
{
    memset(sh, 0, sizeof(*sh));
    const struct bs_pd_shard *ps = bs_pd_shard_find(st, id);
    ck_assert_ptr_nonnull(ps);
    sh->desc.id = id;
    sh->desc.start = ps->start;
    sh->desc.start_len = ps->start_len;
    sh->desc.end = ps->end;
    sh->desc.end_len = ps->end_len;
    sh->desc.epoch.conf_ver = ps->epoch.conf_ver;
    sh->desc.epoch.version = ps->epoch.version;
    bs_pd_shard_conf_state(ps, &sh->conf);
}

START_TEST(test_in_sync_reports_nothing)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 2, 3, &idx);
    struct bs_shard a, b;
    shard_from_pd(st, 1, &a);
    shard_from_pd(st, 2, &b);
    const struct bs_shard *v[] = {&a, &b};
    struct bs_pd_cmd cmd;
    ck_assert_int_eq(bs_pd_next_report(st, v, 2, &cmd), 0);
    bs_pd_state_destroy(st);
}
END_TEST

/* Shard 1 split twice before reporting: at 0x40 (child 100, first) and
 * then at 0x20 (child 101). Reports come in that order, each accepted. */
START_TEST(test_two_splits_reported_in_order)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 2, 3, &idx);
    uint64_t sid = th_alloc(st, &idx, BS_PD_ID_SHARD, 2);
    uint64_t rseq = th_alloc(st, &idx, BS_PD_ID_REPLICA, 6);
    struct bs_shard parent, c1, c2;
    shard_from_pd(st, 1, &parent);
    shard_from_pd(st, 1, &c1);
    shard_from_pd(st, 1, &c2);
    static const uint8_t k1[] = {0x40}, k2[] = {0x20};
    parent.desc.epoch.version = 3;
    c1.desc.id = sid;
    c1.desc.start = (uint8_t *)k1;
    c1.desc.start_len = 1;
    c1.desc.epoch.version = 2;
    c2.desc.id = sid + 1;
    c2.desc.start = (uint8_t *)k2;
    c2.desc.start_len = 1;
    c2.desc.epoch.version = 3;
    for (uint32_t i = 0; i < c1.conf.n_voters; i++) {
        uint64_t node = BS_ENG_REPLICA_NODE(c1.conf.voters[i]);
        c1.conf.voters[i] = BS_ENG_REPLICA_ID(node, rseq + i);
        c2.conf.voters[i] = BS_ENG_REPLICA_ID(node, rseq + 3 + i);
    }
    const struct bs_shard *v[] = {&c2, &parent, &c1};
    struct bs_pd_cmd cmd;
    ck_assert_int_eq(bs_pd_next_report(st, v, 3, &cmd), 1);
    ck_assert_int_eq(cmd.type, BS_PD_CMD_SHARD_SPLIT);
    ck_assert_uint_eq(cmd.u.split.new_shard_id, sid); /* 0x40 first */
    ck_assert_uint_eq(cmd.u.split.shard_id, 1);
    ck_assert_uint_eq(cmd.u.split.epoch.version, 2);
    struct bs_pd_result res;
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), 0);
    ck_assert_int_eq(bs_pd_next_report(st, v, 3, &cmd), 1);
    ck_assert_uint_eq(cmd.u.split.new_shard_id, sid + 1);
    ck_assert_uint_eq(cmd.u.split.epoch.version, 3);
    ck_assert_int_eq(th_apply(st, &idx, &cmd, &res), 0);
    ck_assert_int_eq(bs_pd_next_report(st, v, 3, &cmd), 0);
    /* Routing now matches the shards. */
    const struct bs_pd_shard *ps;
    ck_assert_int_eq(bs_pd_route(st, "\x30", 1, &ps), 0);
    ck_assert_uint_eq(ps->id, sid + 1);
    ck_assert_int_eq(bs_pd_route(st, "\x50", 1, &ps), 0);
    ck_assert_uint_eq(ps->id, sid);
    ck_assert_int_eq(bs_pd_route(st, "\x10", 1, &ps), 0);
    ck_assert_uint_eq(ps->id, 1);
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_replica_change_waits_for_joint_to_end)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(4, 2, 3, &idx);
    uint64_t rseq = th_alloc(st, &idx, BS_PD_ID_REPLICA, 1);
    struct bs_shard sh;
    shard_from_pd(st, 1, &sh);
    /* Find a node without a replica of shard 1. */
    uint64_t free_node = 0;
    for (uint64_t n = 1; n <= 4 && !free_node; n++)
        if (!bs_pd_shard_replica_on(bs_pd_shard_find(st, 1), n))
            free_node = n;
    ck_assert_uint_ne(free_node, 0);
    uint64_t rid = BS_ENG_REPLICA_ID(free_node, rseq);
    /* Joint: the new replica incoming, an old voter outgoing. */
    sh.desc.epoch.conf_ver = 3;
    memcpy(sh.conf.voters_outgoing, sh.conf.voters, sizeof(sh.conf.voters));
    sh.conf.n_voters_outgoing = sh.conf.n_voters;
    uint64_t victim = sh.conf.voters[0];
    sh.conf.voters[0] = rid;
    const struct bs_shard *v[] = {&sh};
    struct bs_pd_cmd cmd;
    ck_assert_int_eq(bs_pd_next_report(st, v, 1, &cmd), BS_EBUSY);
    /* Joint left: reported. */
    sh.conf.n_voters_outgoing = 0;
    ck_assert_int_eq(bs_pd_next_report(st, v, 1, &cmd), 1);
    ck_assert_int_eq(cmd.type, BS_PD_CMD_SHARD_REPLICA_CHANGE);
    ck_assert_uint_eq(cmd.u.replica_change.conf_ver, 3);
    ck_assert_int_eq(th_apply(st, &idx, &cmd, NULL), 0);
    const struct bs_pd_shard *ps = bs_pd_shard_find(st, 1);
    ck_assert_uint_eq(ps->epoch.conf_ver, 3);
    ck_assert_ptr_nonnull(bs_pd_shard_replica_on(ps, free_node));
    ck_assert_ptr_null(bs_pd_shard_replica_on(ps, BS_ENG_REPLICA_NODE(victim)));
    ck_assert_int_eq(bs_pd_next_report(st, v, 1, &cmd), 0);
    bs_pd_state_destroy(st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement_report");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_in_sync_reports_nothing);
    tcase_add_test(tc, test_two_splits_reported_in_order);
    tcase_add_test(tc, test_replica_change_waits_for_joint_to_end);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(suite());
}
