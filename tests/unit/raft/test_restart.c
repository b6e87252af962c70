/*
 * test_restart.c - a node's life cycle: bs_raft_create() validating its
 * config, and a node recreated from its storage (thesis 3.8: term, vote
 * and log are persistent state) keeping term, vote, log, commit and
 * configuration, not re-applying what config.applied says was applied,
 * and replaying committed entries that were not.
 */
#include <string.h>

#include "fixture.h"

struct saved {
    uint64_t term, vote, last, commit;
    struct bs_raft_conf_state conf;
    uint64_t terms[64];
};

static void save(struct fx_net *net, uint64_t id, struct saved *s)
{
    struct bs_raft *r = fx_r(net, id);
    memset(s, 0, sizeof(*s));
    s->term = bs_raft_term(r);
    s->vote = bs_raft_vote(r);
    s->last = bs_raft_last_index(r);
    s->commit = bs_raft_committed(r);
    bs_raft_conf_state(r, &s->conf);
    ck_assert_uint_lt(s->last, 64);
    for (uint64_t i = 1; i <= s->last; i++)
        if (bs_raft_log_term(r, i, &s->terms[i]) != 0)
            s->terms[i] = 0;
}

static void expect_saved(struct fx_net *net, uint64_t id, const struct saved *s)
{
    struct bs_raft *r = fx_r(net, id);
    ck_assert_uint_eq(bs_raft_term(r), s->term);
    ck_assert_uint_eq(bs_raft_vote(r), s->vote);
    ck_assert_uint_eq(bs_raft_last_index(r), s->last);
    ck_assert_uint_eq(bs_raft_committed(r), s->commit);
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(r, &cs);
    ck_assert(bs_raft_conf_state_equal(&cs, &s->conf));
    for (uint64_t i = 1; i <= s->last; i++) {
        uint64_t t = 0;
        if (s->terms[i] == 0)
            continue; /* compacted before the restart */
        ck_assert_int_eq(bs_raft_log_term(r, i, &t), 0);
        ck_assert_uint_eq(t, s->terms[i]);
    }
    ck_assert_int_eq(bs_raft_role(r), BS_RAFT_FOLLOWER);
}

/* A follower recreated from its storage keeps its persistent state and
 * the configuration last applied (a learner was added), and applies
 * nothing twice. */
START_TEST(test_restart_keeps_state)
{
    struct fx_net *net = fx_new_default(3);
    fx_add_empty(net, 4);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_ADD_LEARNER, 4),
                     0);
    fx_deliver(net);
    fx_tick_deliver(net, 3);
    ck_assert_int_eq(fx_propose(net, 1, "b"), 0);
    fx_deliver(net);
    struct saved s;
    save(net, 2, &s);
    ck_assert_uint_eq(s.vote, 1);
    ck_assert(fx_conf_has_learner(&s.conf, 4));
    size_t applied = fx_node(net, 2)->applied.n;
    fx_restart(net, 2);
    expect_saved(net, 2, &s);
    ck_assert_uint_eq(bs_raft_applied(fx_r(net, 2)), s.commit);
    fx_collect(net); /* would re-apply (and fail) if applied were ignored */
    ck_assert_uint_eq(fx_node(net, 2)->applied.n, applied);
    ck_assert_int_eq(fx_propose(net, 1, "c"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 2, "c"));
    ck_assert_uint_eq(fx_node(net, 2)->applied.n, applied + 1);
    fx_free(net);
}
END_TEST

/* The same after the node's log was compacted into a snapshot: the
 * restarted node reads its first entries' terms and its configuration
 * from storage. */
START_TEST(test_restart_after_compaction)
{
    struct fx_net *net = fx_new(3, 1, NULL);
    fx_elect(net, 1);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(fx_propose(net, 1, "x"), 0);
    fx_deliver(net);
    struct fx_node *n2 = fx_node(net, 2);
    uint64_t idx = n2->applied_index;
    ck_assert_int_eq(bs_raft_mem_storage_create_snapshot(n2->ms, idx - 2,
                                                         &n2->conf, NULL, 0),
                     0);
    ck_assert_int_eq(bs_raft_mem_storage_compact(n2->ms, idx - 2), 0);
    struct saved s;
    save(net, 2, &s);
    for (uint64_t i = 0; i < idx - 2; i++)
        s.terms[i] = 0;
    fx_restart(net, 2);
    expect_saved(net, 2, &s);
    uint64_t t = 0;
    ck_assert_int_eq(bs_raft_log_term(fx_r(net, 2), 1, &t), BS_ECOMPACTED);
    ck_assert_int_eq(fx_propose(net, 1, "y"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 2, "y"));
    fx_free(net);
}
END_TEST

/* Committed entries the application had not applied before the crash
 * (config.applied behind the commit index) are handed out again. */
START_TEST(test_restart_replays_unapplied)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(fx_propose(net, 1, "r"), 0);
    fx_deliver(net);
    struct fx_node *n3 = fx_node(net, 3);
    uint64_t commit = bs_raft_committed(n3->r);
    ck_assert_uint_eq(n3->applied_index, commit);
    fx_crash(net, 3);
    n3->applied_index = 3; /* lost what was applied after index 3 */
    bs_raft_entry_vec_truncate(&n3->applied, 2); /* entries 2 and 3 */
    fx_restart(net, 3);
    ck_assert_uint_eq(bs_raft_applied(n3->r), 3);
    fx_collect(net);
    ck_assert_uint_eq(n3->applied_index, commit);
    ck_assert_uint_eq(fx_applied_data(net, 3), 4);
    fx_free(net);
}
END_TEST

/* A restarted leader comes back as a follower in its term; the cluster
 * elects again and nothing committed is lost. Restarting every node at
 * once loses nothing either. */
START_TEST(test_restart_leader_and_all)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    fx_deliver(net);
    struct saved s;
    save(net, 1, &s);
    fx_restart(net, 1);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_FOLLOWER);
    ck_assert_uint_eq(bs_raft_term(fx_r(net, 1)), s.term);
    ck_assert_uint_eq(bs_raft_vote(fx_r(net, 1)), 1);
    ck_assert_uint_eq(bs_raft_last_index(fx_r(net, 1)), s.last);
    int ticks = 0;
    while (fx_leader(net) == 0 ||
           bs_raft_term(fx_r(net, fx_leader(net))) == s.term) {
        ck_assert_int_lt(ticks++, 200);
        fx_tick_deliver(net, 1);
    }
    uint64_t l = fx_leader(net);
    ck_assert_int_eq(fx_propose(net, l, "b"), 0);
    fx_deliver(net);
    for (uint64_t id = 1; id <= 3; id++)
        fx_restart(net, id);
    for (uint64_t id = 1; id <= 3; id++) {
        ck_assert_int_eq(bs_raft_role(fx_r(net, id)), BS_RAFT_FOLLOWER);
        ck_assert(fx_applied_has(net, id, "a") && fx_applied_has(net, id, "b"));
    }
    fx_elect(net, 3);
    ck_assert_int_eq(fx_propose(net, 3, "c"), 0);
    fx_deliver(net);
    for (uint64_t id = 1; id <= 3; id++)
        ck_assert(fx_applied_has(net, id, "c"));
    fx_free(net);
}
END_TEST

/* bs_raft_config_default() fills what raft.h promises. */
START_TEST(test_config_default)
{
    struct bs_raft_config c;
    memset(&c, 0xab, sizeof(c));
    bs_raft_config_default(&c);
    ck_assert_int_eq(c.election_tick, 10);
    ck_assert_int_eq(c.heartbeat_tick, 1);
    ck_assert_uint_eq(c.max_size_per_msg, 1024 * 1024);
    ck_assert_int_eq(c.max_inflight_msgs, 256);
    ck_assert(c.check_quorum);
    ck_assert(c.pre_vote);
    ck_assert_int_eq(c.read_only_option, BS_RAFT_READ_SAFE);
    ck_assert_uint_eq(c.faults, 0);
}
END_TEST

/* bs_raft_create() refuses an invalid config with BS_EINVAL and a reason,
 * and creates nothing. */
START_TEST(test_create_rejects_invalid_config)
{
    struct bs_raft_mem_storage *ms = bs_raft_mem_storage_create();
    ck_assert_ptr_nonnull(ms);
    for (int k = 0; k < 7; k++) {
        struct bs_raft_config c;
        fx_config(&c);
        c.id = 1;
        c.storage = bs_raft_mem_storage_iface(ms);
        switch (k) {
        case 0:
            c.id = BS_RAFT_NONE;
            break;
        case 1:
            c.heartbeat_tick = 0;
            break;
        case 2:
            c.election_tick = c.heartbeat_tick;
            break;
        case 3:
            c.max_inflight_msgs = 0;
            break;
        case 4:
            c.storage.ops = NULL;
            break;
        case 5:
            c.read_only_option = 7;
            break;
        case 6:
            c.read_only_option = BS_RAFT_READ_LEASE_BASED;
            c.lease_ticks = -1;
            break;
        }
        struct bs_raft *r = NULL;
        char err[256] = "";
        int rc = bs_raft_create(&c, &r, err);
        ck_assert_msg(rc == BS_EINVAL, "case %d: %s", k, bs_err_name(rc));
        ck_assert_ptr_null(r);
        ck_assert_msg(strlen(err) > 0, "case %d: no reason given", k);
        /* errmsg may be NULL. */
        ck_assert_int_eq(bs_raft_create(&c, &r, NULL), BS_EINVAL);
    }
    bs_raft_destroy(NULL);
    bs_raft_mem_storage_destroy(ms);
}
END_TEST

static Suite *restart_suite(void)
{
    Suite *s = suite_create("raft_restart");
    FX_TCASE(s, restart, 30);
    tcase_add_test(restart, test_restart_keeps_state);
    tcase_add_test(restart, test_restart_after_compaction);
    tcase_add_test(restart, test_restart_replays_unapplied);
    tcase_add_test(restart, test_restart_leader_and_all);
    FX_TCASE(s, config, 30);
    tcase_add_test(config, test_config_default);
    tcase_add_test(config, test_create_rejects_invalid_config);
    return s;
}

int main(void)
{
    return fx_run_suite(restart_suite());
}
