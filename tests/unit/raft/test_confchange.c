/*
 * test_confchange.c - membership changes (thesis chapter 4): learners
 * (4.2.1), one-step single changes (4.1), joint consensus (4.3) with
 * automatic and explicit leave, one change in flight at a time, a removed
 * leader stepping down (4.2.2), both majorities in a joint configuration,
 * and bs_raft_apply_conf_change() refusing invalid changes.
 *
 * Expected configurations are written "voters|outgoing|learners|
 * learners_next", e.g. "1,2,4|1,2,3|3|" for a joint state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static void parse_set(const char *s, uint64_t *v, uint32_t *n)
{
    *n = 0;
    while (*s && *s != '|') {
        char *end;
        v[(*n)++] = strtoull(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
    }
}

static void conf_parse(const char *spec, struct bs_raft_conf_state *cs)
{
    memset(cs, 0, sizeof(*cs));
    const char *p = spec;
    parse_set(p, cs->voters, &cs->n_voters);
    p = strchr(p, '|');
    if (!p)
        return;
    parse_set(++p, cs->voters_outgoing, &cs->n_voters_outgoing);
    p = strchr(p, '|');
    if (!p)
        return;
    parse_set(++p, cs->learners, &cs->n_learners);
    p = strchr(p, '|');
    if (!p)
        return;
    parse_set(++p, cs->learners_next, &cs->n_learners_next);
}

static void conf_str(const struct bs_raft_conf_state *cs, char *buf, size_t len)
{
    size_t o = 0;
    const uint64_t *sets[4] = {cs->voters, cs->voters_outgoing, cs->learners,
                               cs->learners_next};
    const uint32_t ns[4] = {cs->n_voters, cs->n_voters_outgoing, cs->n_learners,
                            cs->n_learners_next};
    for (int s = 0; s < 4; s++) {
        for (uint32_t i = 0; i < ns[s] && o < len; i++)
            o += (size_t)snprintf(buf + o, len - o, "%s%llu", i ? "," : "",
                                  (unsigned long long)sets[s][i]);
        if (s < 3 && o < len)
            o += (size_t)snprintf(buf + o, len - o, "|");
    }
    if (cs->auto_leave && o < len)
        snprintf(buf + o, len - o, " auto");
}

static bool conf_is(const struct bs_raft_conf_state *cs, const char *spec)
{
    struct bs_raft_conf_state want;
    conf_parse(spec, &want);
    want.auto_leave = cs->auto_leave; /* compared by the callers */
    return bs_raft_conf_state_equal(cs, &want);
}

static void expect_conf(struct fx_net *net, uint64_t id, const char *spec)
{
    struct bs_raft_conf_state cs;
    memset(&cs, 0, sizeof(cs));
    bs_raft_conf_state(fx_r(net, id), &cs);
    char buf[256];
    conf_str(&cs, buf, sizeof(buf));
    ck_assert_msg(conf_is(&cs, spec), "node %llu: conf %s, expected %s",
                  (unsigned long long)id, buf, spec);
}

/* cc_make(&cc, transition, n, type, id, type, id, ...) */
static void cc_make(struct bs_raft_conf_change *cc, int transition, int n, ...)
{
    memset(cc, 0, sizeof(*cc));
    cc->transition = (uint8_t)transition;
    cc->n_changes = (uint32_t)n;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        cc->changes[i].type = (uint8_t)va_arg(ap, int);
        cc->changes[i].node_id = (uint64_t)va_arg(ap, int);
    }
    va_end(ap);
}

static int propose_cc(struct fx_net *net, uint64_t id,
                      const struct bs_raft_conf_change *cc)
{
    return bs_raft_propose_conf_change(fx_r(net, id), cc);
}

/* Delivers and ticks until things settle (new members catch up). */
static void settle(struct fx_net *net)
{
    fx_deliver(net);
    fx_tick_deliver(net, 5);
}

static bool committed_y(struct fx_net *net, uint64_t id, const char *s)
{
    return fx_applied_has(net, id, s);
}

/* Thesis 4.2.1: a learner is added, receives the log (here from a
 * snapshot, as its storage is empty) and applies entries, but is never
 * counted in a commit quorum. */
START_TEST(test_add_learner)
{
    struct fx_net *net = fx_new_default(3);
    fx_add_empty(net, 4);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_ADD_LEARNER, 4),
                     0);
    settle(net);
    for (uint64_t id = 1; id <= 4; id++)
        expect_conf(net, id, "1,2,3||4|");
    ck_assert(bs_raft_is_learner(fx_r(net, 4)));
    ck_assert(!bs_raft_is_learner(fx_r(net, 1)));
    ck_assert(fx_progress(net, 1, 4).learner);
    ck_assert_int_eq(fx_propose(net, 1, "x"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 4, "x"));
    /* Leader + learner are not a quorum of {1,2,3}. */
    fx_cut(net, 1, 2);
    fx_cut(net, 1, 3);
    uint64_t c = bs_raft_committed(fx_r(net, 1));
    ck_assert_int_eq(fx_propose(net, 1, "y"), 0);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_last_index(fx_r(net, 4)),
                      bs_raft_last_index(fx_r(net, 1)));
    ck_assert_uint_eq(bs_raft_committed(fx_r(net, 1)), c);
    fx_heal(net);
    fx_tick_deliver(net, 3);
    ck_assert(committed_y(net, 4, "y"));
    fx_free(net);
}
END_TEST

/* A learner is promoted to voter (a single change: one step, thesis 4.1)
 * and then counts: with two voters of four cut, nothing commits. */
START_TEST(test_promote_learner)
{
    struct fx_net *net = fx_new(3, 1, NULL);
    fx_elect(net, 1);
    ck_assert(bs_raft_is_learner(fx_r(net, 4)));
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_ADD_VOTER, 4),
                     0);
    settle(net);
    for (uint64_t id = 1; id <= 4; id++) {
        expect_conf(net, id, "1,2,3,4|||");
        /* One step: no joint state was ever applied. */
        struct fx_node *n = fx_node(net, id);
        for (int h = 0; h < n->n_conf_hist; h++)
            ck_assert_uint_eq(n->conf_hist[h].n_voters_outgoing, 0);
    }
    ck_assert(!bs_raft_is_learner(fx_r(net, 4)));
    fx_cut(net, 1, 2);
    fx_cut(net, 1, 3);
    uint64_t c = bs_raft_committed(fx_r(net, 1));
    ck_assert_int_eq(fx_propose(net, 1, "y"), 0);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_committed(fx_r(net, 1)), c);
    fx_link(net, 1, 2, FX_PASS);
    fx_link(net, 2, 1, FX_PASS);
    fx_tick_deliver(net, 3);
    ck_assert_uint_gt(bs_raft_committed(fx_r(net, 1)), c);
    fx_free(net);
}
END_TEST

/* A voter is removed in one step; the remaining two must both ack. */
START_TEST(test_remove_voter)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_REMOVE, 3),
                     0);
    settle(net);
    expect_conf(net, 1, "1,2|||");
    expect_conf(net, 2, "1,2|||");
    fx_cut(net, 1, 2);
    uint64_t c = bs_raft_committed(fx_r(net, 1));
    ck_assert_int_eq(fx_propose(net, 1, "y"), 0);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_committed(fx_r(net, 1)), c);
    fx_heal(net);
    fx_tick_deliver(net, 3);
    ck_assert(fx_applied_has(net, 2, "y"));
    fx_free(net);
}
END_TEST

static bool hist_has(struct fx_node *n, const char *spec, bool auto_leave)
{
    for (int h = 0; h < n->n_conf_hist; h++)
        if (conf_is(&n->conf_hist[h], spec) &&
            n->conf_hist[h].auto_leave == auto_leave)
            return true;
    return false;
}

/* Thesis 4.3: two changes at once go through a joint configuration
 * C_old,new; with the AUTO and JOINT_IMPLICIT transitions the leader
 * leaves it by itself once it is applied. */
START_TEST(test_joint_auto_leave)
{
    static const int transitions[] = {BS_RAFT_CC_TRANSITION_AUTO,
                                      BS_RAFT_CC_TRANSITION_JOINT_IMPLICIT};
    for (int t = 0; t < 2; t++) {
        struct fx_net *net = fx_new_default(3);
        fx_add_empty(net, 4);
        fx_elect(net, 1);
        struct bs_raft_conf_change cc;
        cc_make(&cc, transitions[t], 2, BS_RAFT_CC_ADD_VOTER, 4,
                BS_RAFT_CC_REMOVE, 3);
        ck_assert_int_eq(propose_cc(net, 1, &cc), 0);
        settle(net);
        for (uint64_t id = 1; id <= 4; id++) {
            if (id == 3)
                continue;
            expect_conf(net, id, "1,2,4|||");
            struct bs_raft_conf_state cs;
            bs_raft_conf_state(fx_r(net, id), &cs);
            ck_assert(!cs.auto_leave);
        }
        struct fx_node *l = fx_node(net, 1);
        ck_assert_msg(hist_has(l, "1,2,4|1,2,3||", true),
                      "the joint state was never applied");
        ck_assert_int_eq(l->n_cc_applied, 2); /* enter, then leave */
        ck_assert_int_eq(l->n_cc_rejected, 0);
        ck_assert_int_eq(fx_propose(net, 1, "after"), 0);
        fx_deliver(net);
        ck_assert(fx_applied_has(net, 4, "after"));
        fx_free(net);
    }
}
END_TEST

/* A single change asked for with JOINT_IMPLICIT still goes through a joint
 * state (a learner addition here), and leaves it by itself. */
START_TEST(test_joint_implicit_single_change)
{
    struct fx_net *net = fx_new_default(3);
    fx_add_empty(net, 4);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose_cc1(net, 1,
                                    BS_RAFT_CC_TRANSITION_JOINT_IMPLICIT,
                                    BS_RAFT_CC_ADD_VOTER, 4),
                     0);
    settle(net);
    expect_conf(net, 1, "1,2,3,4|||");
    ck_assert(hist_has(fx_node(net, 1), "1,2,3,4|1,2,3||", true));
    fx_free(net);
}
END_TEST

/* JOINT_EXPLICIT: the configuration stays joint until the application
 * proposes the leave (an empty conf change); meanwhile any other change is
 * refused. A voter demoted to learner waits in learners_next. */
START_TEST(test_joint_explicit_leave)
{
    struct fx_net *net = fx_new_default(3);
    fx_add_empty(net, 4);
    fx_add_empty(net, 5);
    fx_elect(net, 1);
    struct bs_raft_conf_change cc;
    cc_make(&cc, BS_RAFT_CC_TRANSITION_JOINT_EXPLICIT, 2,
            BS_RAFT_CC_ADD_LEARNER, 3, BS_RAFT_CC_ADD_VOTER, 4);
    ck_assert_int_eq(propose_cc(net, 1, &cc), 0);
    settle(net);
    for (uint64_t id = 1; id <= 4; id++) {
        expect_conf(net, id, "1,2,4|1,2,3||3");
        struct bs_raft_conf_state cs;
        bs_raft_conf_state(fx_r(net, id), &cs);
        ck_assert(!cs.auto_leave);
    }
    /* Another change while joint is refused. */
    int rc = fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                            BS_RAFT_CC_ADD_LEARNER, 5);
    ck_assert(rc == 0 || rc == BS_EDROPPED);
    settle(net);
    expect_conf(net, 1, "1,2,4|1,2,3||3");
    /* The explicit leave. */
    cc_make(&cc, BS_RAFT_CC_TRANSITION_AUTO, 0);
    ck_assert_int_eq(propose_cc(net, 1, &cc), 0);
    settle(net);
    for (uint64_t id = 1; id <= 4; id++)
        expect_conf(net, id, "1,2,4||3|");
    ck_assert(bs_raft_is_learner(fx_r(net, 3)));
    fx_free(net);
}
END_TEST

static size_t cc_entries(struct fx_net *net, uint64_t id)
{
    struct fx_node *n = fx_node(net, id);
    size_t k = 0;
    for (size_t i = 0; i < n->applied.n; i++)
        if (n->applied.v[i].type == BS_RAFT_ENTRY_CONF_CHANGE)
            k++;
    return k;
}

/* Only one change in flight (thesis 4.1): a change proposed while another
 * is not yet applied is dropped (replaced by an empty entry, as in etcd);
 * once the first is applied a new one is accepted. */
START_TEST(test_second_change_refused_while_pending)
{
    struct fx_net *net = fx_new_default(3);
    fx_add_empty(net, 4);
    fx_add_empty(net, 5);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_ADD_LEARNER, 4),
                     0);
    int rc = fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                            BS_RAFT_CC_ADD_LEARNER, 5);
    ck_assert(rc == 0 || rc == BS_EDROPPED);
    settle(net);
    expect_conf(net, 1, "1,2,3||4|");
    ck_assert_uint_eq(cc_entries(net, 1), 1);
    ck_assert_uint_eq(cc_entries(net, 2), 1);
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_ADD_LEARNER, 5),
                     0);
    settle(net);
    for (uint64_t id = 1; id <= 5; id++)
        expect_conf(net, id, "1,2,3||4,5|");
    fx_free(net);
}
END_TEST

/* Thesis 4.2.2: a leader removed from the configuration steps down once
 * the change is applied; the others elect a leader among themselves and
 * the removed node never leads again. */
START_TEST(test_removed_leader_steps_down)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_REMOVE, 1),
                     0);
    fx_deliver(net);
    expect_conf(net, 1, "2,3|||");
    ck_assert_int_ne(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    int et = net->base.election_tick;
    for (int k = 0; k < 8 * et; k++) {
        fx_tick_deliver(net, 1);
        ck_assert_int_ne(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    }
    uint64_t l = fx_leader(net);
    ck_assert(l == 2 || l == 3);
    expect_conf(net, 2, "2,3|||");
    expect_conf(net, 3, "2,3|||");
    ck_assert_int_eq(fx_propose(net, l, "z"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 2, "z") && fx_applied_has(net, 3, "z"));
    fx_free(net);
}
END_TEST

/* Thesis 4.3: in C_old,new = {1,4,5},{1,2,3} both majorities are needed,
 * for commitment and for elections. */
START_TEST(test_joint_needs_both_majorities)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.pre_vote = false;
    c.check_quorum = false;
    struct fx_net *net = fx_new(3, 0, &c);
    fx_add_empty(net, 4);
    fx_add_empty(net, 5);
    fx_elect(net, 1);
    struct bs_raft_conf_change cc;
    cc_make(&cc, BS_RAFT_CC_TRANSITION_JOINT_EXPLICIT, 4, BS_RAFT_CC_ADD_VOTER,
            4, BS_RAFT_CC_ADD_VOTER, 5, BS_RAFT_CC_REMOVE, 2, BS_RAFT_CC_REMOVE,
            3);
    ck_assert_int_eq(propose_cc(net, 1, &cc), 0);
    settle(net);
    for (uint64_t id = 1; id <= 5; id++)
        expect_conf(net, id, "1,4,5|1,2,3||");
    struct bs_raft *r1 = fx_r(net, 1);

    /* Commit: C_old majority alone is not enough, nor C_new alone. */
    static const uint64_t groups[2][2] = {{4, 5}, {2, 3}};
    for (int g = 0; g < 2; g++) {
        fx_cut(net, 1, groups[g][0]);
        fx_cut(net, 1, groups[g][1]);
        uint64_t c0 = bs_raft_committed(r1);
        ck_assert_int_eq(fx_propose(net, 1, g ? "y" : "x"), 0);
        fx_deliver(net);
        ck_assert_msg(bs_raft_committed(r1) == c0,
                      "committed with only one majority (group %d)", g);
        fx_heal(net);
        fx_tick_deliver(net, 3);
        ck_assert_uint_gt(bs_raft_committed(r1), c0);
    }

    /* Election, C_new alone: node 4 (in C_new only) gets the votes of 5
     * and itself, a majority of C_new but none of C_old. */
    fx_isolate(net, 1);
    fx_cut(net, 4, 2);
    fx_cut(net, 4, 3);
    bs_raft_campaign(fx_r(net, 4));
    fx_deliver(net);
    ck_assert_msg(bs_raft_role(fx_r(net, 4)) == BS_RAFT_CANDIDATE,
                  "elected by C_new alone");
    fx_link(net, 4, 3, FX_PASS);
    fx_link(net, 3, 4, FX_PASS);
    bs_raft_campaign(fx_r(net, 4));
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 4)), BS_RAFT_CANDIDATE);
    fx_link(net, 4, 2, FX_PASS);
    fx_link(net, 2, 4, FX_PASS);
    bs_raft_campaign(fx_r(net, 4));
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 4)), BS_RAFT_LEADER);

    /* Election, C_old alone: node 2 (in C_old only) with 1 and 4 away. */
    fx_isolate(net, 4);
    fx_cut(net, 2, 5);
    bs_raft_campaign(fx_r(net, 2));
    fx_deliver(net);
    ck_assert_msg(bs_raft_role(fx_r(net, 2)) == BS_RAFT_CANDIDATE,
                  "elected by C_old alone");
    fx_link(net, 2, 5, FX_PASS);
    fx_link(net, 5, 2, FX_PASS);
    bs_raft_campaign(fx_r(net, 2));
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 2)), BS_RAFT_CANDIDATE);
    fx_link(net, 2, 1, FX_PASS);
    fx_link(net, 1, 2, FX_PASS);
    bs_raft_campaign(fx_r(net, 2));
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 2)), BS_RAFT_LEADER);
    fx_free(net);
}
END_TEST

static void conf_of(struct bs_raft *r, struct bs_raft_conf_state *cs)
{
    memset(cs, 0, sizeof(*cs));
    bs_raft_conf_state(r, cs);
}

static void expect_einval(struct bs_raft *r,
                          const struct bs_raft_conf_change *cc,
                          const char *what)
{
    struct bs_raft_conf_state before, after, out;
    conf_of(r, &before);
    memset(&out, 0, sizeof(out));
    int rc = bs_raft_apply_conf_change(r, cc, &out);
    ck_assert_msg(rc == BS_EINVAL, "%s: got %s", what, bs_err_name(rc));
    conf_of(r, &after);
    ck_assert_msg(bs_raft_conf_state_equal(&before, &after) &&
                      before.auto_leave == after.auto_leave,
                  "%s: the configuration changed", what);
    ck_assert_msg(bs_raft_check(r) == NULL, "%s: %s", what, bs_raft_check(r));
}

/* bs_raft_apply_conf_change() refuses changes that are invalid for the
 * current configuration with BS_EINVAL and leaves it unchanged. */
START_TEST(test_apply_conf_change_rejects_invalid)
{
    struct bs_raft_conf_change cc;
    struct bs_raft_conf_state cs;

    /* Removing the last voter. */
    struct fx_net *net = fx_new_default(1);
    cc_make(&cc, BS_RAFT_CC_TRANSITION_AUTO, 1, BS_RAFT_CC_REMOVE, 1);
    expect_einval(fx_r(net, 1), &cc, "remove the last voter");
    fx_free(net);

    net = fx_new_default(3);
    struct bs_raft *r = fx_r(net, 1);
    /* Leaving a joint state when not joint. */
    cc_make(&cc, BS_RAFT_CC_TRANSITION_AUTO, 0);
    expect_einval(r, &cc, "leave when not joint");
    /* A joint state with no incoming voters. */
    cc_make(&cc, BS_RAFT_CC_TRANSITION_JOINT_EXPLICIT, 3, BS_RAFT_CC_REMOVE, 1,
            BS_RAFT_CC_REMOVE, 2, BS_RAFT_CC_REMOVE, 3);
    expect_einval(r, &cc, "remove every voter");
    /* More than BS_RAFT_MAX_MEMBERS members. */
    cc_make(&cc, BS_RAFT_CC_TRANSITION_JOINT_IMPLICIT, 8,
            BS_RAFT_CC_ADD_LEARNER, 11, BS_RAFT_CC_ADD_LEARNER, 12,
            BS_RAFT_CC_ADD_LEARNER, 13, BS_RAFT_CC_ADD_LEARNER, 14,
            BS_RAFT_CC_ADD_LEARNER, 15, BS_RAFT_CC_ADD_LEARNER, 16,
            BS_RAFT_CC_ADD_LEARNER, 17, BS_RAFT_CC_ADD_LEARNER, 18);
    memset(&cs, 0, sizeof(cs));
    ck_assert_int_eq(bs_raft_apply_conf_change(r, &cc, &cs), 0);
    ck_assert_uint_eq(cs.n_learners, 8);
    ck_assert_uint_eq(cs.n_voters_outgoing, 3);
    cc_make(&cc, BS_RAFT_CC_TRANSITION_AUTO, 0);
    ck_assert_int_eq(bs_raft_apply_conf_change(r, &cc, &cs), 0);
    ck_assert_uint_eq(cs.n_voters_outgoing, 0);
    cc_make(&cc, BS_RAFT_CC_TRANSITION_JOINT_IMPLICIT, 6,
            BS_RAFT_CC_ADD_LEARNER, 21, BS_RAFT_CC_ADD_LEARNER, 22,
            BS_RAFT_CC_ADD_LEARNER, 23, BS_RAFT_CC_ADD_LEARNER, 24,
            BS_RAFT_CC_ADD_LEARNER, 25, BS_RAFT_CC_ADD_LEARNER, 26);
    expect_einval(r, &cc, "17 members");
    /* In a joint state, only the leave is valid. */
    cc_make(&cc, BS_RAFT_CC_TRANSITION_JOINT_EXPLICIT, 1, BS_RAFT_CC_ADD_VOTER,
            11);
    ck_assert_int_eq(bs_raft_apply_conf_change(r, &cc, &cs), 0);
    ck_assert_uint_eq(cs.n_voters_outgoing, 3);
    cc_make(&cc, BS_RAFT_CC_TRANSITION_AUTO, 1, BS_RAFT_CC_ADD_LEARNER, 12);
    expect_einval(r, &cc, "change while joint");
    cc_make(&cc, BS_RAFT_CC_TRANSITION_AUTO, 0);
    ck_assert_int_eq(bs_raft_apply_conf_change(r, &cc, &cs), 0);
    ck_assert(fx_conf_has_voter(&cs, 11));
    ck_assert_uint_eq(cs.n_voters_outgoing, 0);
    fx_free(net);
}
END_TEST

/* bs_raft_propose_conf_change() refuses malformed changes. */
START_TEST(test_propose_malformed_conf_change)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    struct bs_raft *r = fx_r(net, 1);
    struct bs_raft_conf_change cc;
    cc_make(&cc, BS_RAFT_CC_TRANSITION_AUTO, 1, BS_RAFT_CC_ADD_LEARNER, 4);
    cc.n_changes = BS_RAFT_MAX_CC + 1;
    ck_assert_int_eq(bs_raft_propose_conf_change(r, &cc), BS_EINVAL);
    cc_make(&cc, BS_RAFT_CC_TRANSITION_AUTO, 1, 7, 4);
    ck_assert_int_eq(bs_raft_propose_conf_change(r, &cc), BS_EINVAL);
    cc_make(&cc, 9, 1, BS_RAFT_CC_ADD_LEARNER, 4);
    ck_assert_int_eq(bs_raft_propose_conf_change(r, &cc), BS_EINVAL);
    uint64_t last = bs_raft_last_index(r);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_last_index(r), last);
    fx_free(net);
}
END_TEST

static Suite *confchange_suite(void)
{
    Suite *s = suite_create("raft_confchange");
    FX_TCASE(s, single, 30);
    tcase_add_test(single, test_add_learner);
    tcase_add_test(single, test_promote_learner);
    tcase_add_test(single, test_remove_voter);
    tcase_add_test(single, test_removed_leader_steps_down);
    tcase_add_test(single, test_second_change_refused_while_pending);
    FX_TCASE(s, joint, 30);
    tcase_add_test(joint, test_joint_auto_leave);
    tcase_add_test(joint, test_joint_implicit_single_change);
    tcase_add_test(joint, test_joint_explicit_leave);
    tcase_add_test(joint, test_joint_needs_both_majorities);
    FX_TCASE(s, invalid, 30);
    tcase_add_test(invalid, test_apply_conf_change_rejects_invalid);
    tcase_add_test(invalid, test_propose_malformed_conf_change);
    return s;
}

int main(void)
{
    return fx_run_suite(confchange_suite());
}
