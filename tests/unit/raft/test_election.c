/*
 * test_election.c - leader election (thesis 3.4), the up-to-date log rule
 * (3.6.1 / paper 5.4.1), learners (4.2.1), pre-vote (9.6) and check-quorum
 * with leader stickiness (6.2), tested on the fixture's simulated cluster.
 *
 * Each test states the rule it checks. Where a rule can only be shown by
 * its absence (a learner's vote not counting, a vote refused to a stale
 * log), a companion test switches on the core's fault injection for that
 * rule and checks that the same scenario then breaks, so that the test is
 * known to be able to fail.
 */
#include <string.h>

#include "fixture.h"

static void cfg_plain(struct bs_raft_config *c)
{
    fx_config(c);
    c->pre_vote = false;
    c->check_quorum = false;
}

/* Thesis 3.4: a campaigning node with every vote becomes leader; all others
 * follow it in the same term, and the empty entry of its term commits. */
static void elect_n(int n)
{
    struct fx_net *net = fx_new_default(n);
    fx_elect(net, 1);
    uint64_t t = bs_raft_term(fx_r(net, 1));
    ck_assert_uint_eq(t, 2);
    for (int id = 2; id <= n; id++) {
        struct bs_raft *r = fx_r(net, (uint64_t)id);
        ck_assert_int_eq(bs_raft_role(r), BS_RAFT_FOLLOWER);
        ck_assert_uint_eq(bs_raft_term(r), t);
        ck_assert_uint_eq(bs_raft_lead(r), 1);
    }
    /* The leader's empty entry (index 2) is committed and applied. */
    ck_assert_uint_eq(bs_raft_committed(fx_r(net, 1)), 2);
    for (int id = 1; id <= n; id++)
        ck_assert_uint_eq(fx_node(net, (uint64_t)id)->applied_index, 2);
    fx_free(net);
}

START_TEST(test_leader_elected_3)
{
    elect_n(3);
}
END_TEST

START_TEST(test_leader_elected_5)
{
    elect_n(5);
}
END_TEST

/* Randomized timeouts elect exactly one leader by ticking alone, with
 * pre-vote and check-quorum on (the defaults), and it stays leader. */
START_TEST(test_leader_elected_by_ticks)
{
    struct fx_net *net = fx_new_default(5);
    int ticks = 0;
    while (fx_leader(net) == 0) {
        ck_assert_msg(ticks < 200, "no leader after 200 ticks");
        fx_tick_deliver(net, 1);
        ticks++;
    }
    uint64_t l = fx_leader(net);
    uint64_t t = bs_raft_term(fx_r(net, l));
    fx_tick_deliver(net, 100);
    ck_assert_uint_eq(fx_leader(net), l);
    int leaders = 0;
    for (uint64_t id = 1; id <= 5; id++) {
        struct bs_raft *r = fx_r(net, id);
        leaders += bs_raft_role(r) == BS_RAFT_LEADER;
        ck_assert_uint_eq(bs_raft_term(r), t);
        ck_assert_uint_eq(bs_raft_lead(r), l);
    }
    ck_assert_int_eq(leaders, 1);
    fx_free(net);
}
END_TEST

/* Thesis 3.4: a candidate wins only with votes from a majority. Node 1 is
 * cut from k of the other n-1 nodes; it wins iff it can reach a majority. */
START_TEST(test_candidate_needs_majority)
{
    static const struct {
        int n, cut;
        bool wins;
    } tt[] = {
        {3, 2, false}, {3, 1, true}, {5, 3, false}, {5, 2, true}, {5, 0, true},
    };
    for (size_t i = 0; i < sizeof(tt) / sizeof(tt[0]); i++) {
        struct bs_raft_config c;
        cfg_plain(&c);
        struct fx_net *net = fx_new(tt[i].n, 0, &c);
        for (int k = 0; k < tt[i].cut; k++)
            fx_cut(net, 1, (uint64_t)(tt[i].n - k));
        bs_raft_campaign(fx_r(net, 1));
        fx_deliver(net);
        int want = tt[i].wins ? BS_RAFT_LEADER : BS_RAFT_CANDIDATE;
        ck_assert_msg(bs_raft_role(fx_r(net, 1)) == want, "case %zu: role %s",
                      i, bs_raft_role_name(bs_raft_role(fx_r(net, 1))));
        ck_assert_uint_eq(bs_raft_term(fx_r(net, 1)), 2);
        fx_free(net);
    }
}
END_TEST

/* Pre-vote (9.6): without a majority a pre-candidate does not even become
 * a candidate, and its term does not move. */
START_TEST(test_precandidate_needs_majority)
{
    struct fx_net *net = fx_new_default(5);
    fx_cut(net, 1, 3);
    fx_cut(net, 1, 4);
    fx_cut(net, 1, 5);
    bs_raft_campaign(fx_r(net, 1));
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_PRE_CANDIDATE);
    ck_assert_uint_eq(bs_raft_term(fx_r(net, 1)), 1);
    for (uint64_t id = 2; id <= 5; id++)
        ck_assert_uint_eq(bs_raft_term(fx_r(net, id)), 1);
    fx_heal(net);
    bs_raft_campaign(fx_r(net, 1));
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    ck_assert_uint_eq(bs_raft_term(fx_r(net, 1)), 2);
    fx_free(net);
}
END_TEST

/*
 * Paper 5.4.1 / thesis 3.6.1: a vote is granted only if the candidate's log
 * is at least as up to date as the voter's: higher last term, or equal last
 * term and at least as long. The voter's log is [1:t1 (snapshot), 2:t2,
 * 3:t2]. The same rule holds for pre-votes, which do not change the term.
 */
static const struct {
    uint64_t log_term, index;
    bool granted;
} up_to_date_cases[] = {
    {2, 3, true},  /* identical */
    {2, 4, true},  /* same last term, longer */
    {3, 2, true},  /* higher last term, shorter */
    {3, 9, true},  /* higher last term, longer */
    {2, 2, false}, /* same last term, shorter */
    {1, 5, false}, /* lower last term, longer */
    {1, 1, false}, /* lower last term, shorter */
};

static void vote_case(int type, uint64_t log_term, uint64_t index, bool granted,
                      uint32_t faults, size_t i)
{
    struct bs_raft_config c;
    cfg_plain(&c);
    c.faults = faults;
    struct fx_net *net = fx_new(3, 0, &c);
    const uint64_t terms[] = {2, 2};
    fx_preload(net, 1, terms, 2, 2, 1);
    struct bs_raft_msg m = fx_msg(type, 2, 1, 3);
    m.log_term = log_term;
    m.index = index;
    int resp_type = type == BS_RAFT_MSG_VOTE ? BS_RAFT_MSG_VOTE_RESP
                                             : BS_RAFT_MSG_PREVOTE_RESP;
    const struct bs_raft_msg *r = fx_ask(net, &m, resp_type);
    ck_assert_msg(r != NULL, "case %zu: no response", i);
    ck_assert_msg(r->reject == !granted, "case %zu (%s lt %llu idx %llu): %s",
                  i, bs_raft_msg_type_name(type), (unsigned long long)log_term,
                  (unsigned long long)index,
                  r->reject ? "rejected" : "granted");
    /* A vote response carries the voter's new term; a pre-vote grant the
     * proposed term, a pre-vote rejection the voter's own (etcd). */
    ck_assert_uint_eq(r->term, type == BS_RAFT_MSG_PREVOTE && !granted ? 2 : 3);
    if (type == BS_RAFT_MSG_VOTE) {
        ck_assert_uint_eq(bs_raft_term(fx_r(net, 1)), 3);
        ck_assert_uint_eq(bs_raft_vote(fx_r(net, 1)), granted ? 2 : 0);
    } else {
        /* A pre-vote changes neither term nor vote. */
        ck_assert_uint_eq(bs_raft_term(fx_r(net, 1)), 2);
        ck_assert_uint_eq(bs_raft_vote(fx_r(net, 1)), 0);
    }
    fx_free(net);
}

START_TEST(test_vote_requires_up_to_date_log)
{
    for (size_t i = 0;
         i < sizeof(up_to_date_cases) / sizeof(up_to_date_cases[0]); i++)
        vote_case(BS_RAFT_MSG_VOTE, up_to_date_cases[i].log_term,
                  up_to_date_cases[i].index, up_to_date_cases[i].granted, 0, i);
}
END_TEST

START_TEST(test_prevote_requires_up_to_date_log)
{
    for (size_t i = 0;
         i < sizeof(up_to_date_cases) / sizeof(up_to_date_cases[0]); i++)
        vote_case(BS_RAFT_MSG_PREVOTE, up_to_date_cases[i].log_term,
                  up_to_date_cases[i].index, up_to_date_cases[i].granted, 0, i);
}
END_TEST

/* The check above can fail: with BS_RAFT_FAULT_VOTE_ANY_LOG a stale log
 * gets the vote. */
START_TEST(test_vote_up_to_date_fault_detected)
{
    vote_case(BS_RAFT_MSG_VOTE, 1, 5, true, BS_RAFT_FAULT_VOTE_ANY_LOG, 0);
}
END_TEST

/* Thesis 3.4: a server votes for at most one candidate per term, and the
 * vote is durable: a restart does not free it. Repeating the vote for the
 * same candidate is allowed (its request may have been retransmitted). */
START_TEST(test_one_vote_per_term)
{
    struct bs_raft_config c;
    cfg_plain(&c);
    struct fx_net *net = fx_new(3, 0, &c);
    struct bs_raft_msg v1 = fx_msg(BS_RAFT_MSG_VOTE, 1, 3, 2);
    v1.log_term = 1;
    v1.index = 1;
    struct bs_raft_msg v2 = v1;
    v2.from = 2;

    const struct bs_raft_msg *r = fx_ask(net, &v1, BS_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert(!r->reject);
    ck_assert_uint_eq(bs_raft_vote(fx_r(net, 3)), 1);

    r = fx_ask(net, &v2, BS_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert(r->reject);
    ck_assert_uint_eq(bs_raft_vote(fx_r(net, 3)), 1);

    r = fx_ask(net, &v1, BS_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert(!r->reject);

    /* The vote was persisted: a restarted node still refuses 2. */
    struct bs_raft_storage st = bs_raft_mem_storage_iface(fx_node(net, 3)->ms);
    struct bs_raft_hard_state hs;
    struct bs_raft_conf_state cs;
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &hs, &cs), 0);
    ck_assert_uint_eq(hs.term, 2);
    ck_assert_uint_eq(hs.vote, 1);
    fx_restart(net, 3);
    ck_assert_uint_eq(bs_raft_vote(fx_r(net, 3)), 1);
    r = fx_ask(net, &v2, BS_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert(r->reject);

    /* A new term frees the vote. */
    v2.term = 3;
    r = fx_ask(net, &v2, BS_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert(!r->reject);
    ck_assert_uint_eq(bs_raft_vote(fx_r(net, 3)), 2);
    fx_free(net);
}
END_TEST

/* Ticks a lone follower until it leaves the follower role (or, when
 * term_step, until its term grows again); returns the ticks taken. */
static int ticks_until_campaign(struct fx_net *net, uint64_t id, int limit)
{
    struct bs_raft *r = fx_r(net, id);
    uint64_t t0 = bs_raft_term(r);
    int role0 = bs_raft_role(r);
    for (int k = 1; k <= limit; k++) {
        fx_tick(net, id);
        fx_deliver(net);
        if (bs_raft_role(r) != role0 || bs_raft_term(r) != t0)
            return k;
    }
    return -1;
}

/* Thesis 3.4: election timeouts are drawn from [et, 2et), from the seeded
 * PRNG: the same seed gives the same timeout, different seeds spread. */
START_TEST(test_election_timeout_randomized)
{
    static const int ets[] = {10, 5};
    for (size_t e = 0; e < 2; e++) {
        int et = ets[e];
        bool seen[64] = {false};
        int distinct = 0;
        for (uint64_t seed = 1; seed <= 60; seed++) {
            struct bs_raft_config c;
            cfg_plain(&c);
            c.election_tick = et;
            c.seed = seed * 7919;
            int first = -1, again = -1, next = -1;
            for (int rep = 0; rep < 2; rep++) {
                struct fx_net *net = fx_new(3, 0, &c);
                fx_isolate(net, 1);
                int k = ticks_until_campaign(net, 1, 4 * et);
                ck_assert_msg(k >= et && k < 2 * et,
                              "seed %llu: campaigned after %d ticks, et %d",
                              (unsigned long long)c.seed, k, et);
                ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_CANDIDATE);
                if (rep == 0) {
                    first = k;
                    /* The candidate's next timeout is also in range. */
                    next = ticks_until_campaign(net, 1, 4 * et);
                    ck_assert_msg(next >= et && next < 2 * et,
                                  "re-campaign after %d ticks", next);
                } else {
                    again = k;
                }
                fx_free(net);
            }
            ck_assert_int_eq(first, again); /* deterministic */
            if (!seen[first]) {
                seen[first] = true;
                distinct++;
            }
        }
        ck_assert_msg(distinct >= et / 2,
                      "only %d distinct timeouts over 60 seeds (et %d)",
                      distinct, et);
    }
}
END_TEST

/* Thesis 3.3: any message with a higher term makes a leader step down to
 * follower in that term. */
START_TEST(test_higher_term_makes_leader_step_down)
{
    static const int types[] = {BS_RAFT_MSG_APP_RESP,
                                BS_RAFT_MSG_HEARTBEAT_RESP, BS_RAFT_MSG_APP,
                                BS_RAFT_MSG_HEARTBEAT};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct fx_net *net = fx_new_default(3);
        fx_elect(net, 1);
        uint64_t t = bs_raft_term(fx_r(net, 1));
        struct bs_raft_msg m = fx_msg(types[i], 2, 1, t + 3);
        if (types[i] == BS_RAFT_MSG_APP) {
            m.log_term = 2;
            m.index = 2;
        }
        fx_step(net, &m);
        fx_collect(net);
        ck_assert_msg(bs_raft_role(fx_r(net, 1)) == BS_RAFT_FOLLOWER,
                      "%s did not depose the leader",
                      bs_raft_msg_type_name(types[i]));
        ck_assert_uint_eq(bs_raft_term(fx_r(net, 1)), t + 3);
        uint64_t lead = bs_raft_lead(fx_r(net, 1));
        if (types[i] == BS_RAFT_MSG_APP || types[i] == BS_RAFT_MSG_HEARTBEAT)
            ck_assert_uint_eq(lead, 2); /* it comes from the new leader */
        else
            ck_assert_uint_eq(lead, BS_RAFT_NONE);
        fx_free(net);
    }
}
END_TEST

/* A deposed leader rejoins: with no pre-vote and no check-quorum, a node
 * back from a partition with a higher term disrupts the leader (thesis 9.6
 * describes the problem that pre-vote solves), and the cluster then elects
 * a leader in a term at least as high. */
START_TEST(test_disruptive_rejoin_without_prevote)
{
    struct bs_raft_config c;
    cfg_plain(&c);
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    uint64_t t = bs_raft_term(fx_r(net, 1));
    fx_isolate(net, 3);
    for (int k = 0; k < 60; k++) {
        fx_tick(net, 3);
        fx_deliver(net);
    }
    uint64_t t3 = bs_raft_term(fx_r(net, 3));
    ck_assert_uint_gt(t3, t);
    fx_heal(net);
    /* Node 3's next timeout sends a vote request with its higher term. */
    int k = ticks_until_campaign(net, 3, 40);
    ck_assert_int_gt(k, 0);
    ck_assert_uint_gt(bs_raft_term(fx_r(net, 1)), t);
    fx_tick_deliver(net, 60);
    uint64_t l = fx_leader(net);
    ck_assert_uint_ne(l, 0);
    ck_assert_uint_gt(bs_raft_term(fx_r(net, l)), t3);
    fx_free(net);
}
END_TEST

static int learner_campaigned;

static void watch_learner(void *arg, uint64_t id,
                          const struct bs_raft_ready *rd)
{
    uint64_t learner = *(uint64_t *)arg;
    if (id != learner)
        return;
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (rd->msgs[i].type == BS_RAFT_MSG_VOTE ||
            rd->msgs[i].type == BS_RAFT_MSG_PREVOTE)
            learner_campaigned++;
}

/* Thesis 4.2.1: a learner never campaigns, whether by timeout, by
 * bs_raft_campaign() or by a local MsgHup. */
START_TEST(test_learner_never_campaigns)
{
    for (int pv = 0; pv < 2; pv++) {
        struct bs_raft_config c;
        cfg_plain(&c);
        c.pre_vote = pv;
        struct fx_net *net = fx_new(3, 1, &c);
        uint64_t learner = 4;
        learner_campaigned = 0;
        net->on_ready = watch_learner;
        net->ready_arg = &learner;
        ck_assert(bs_raft_is_learner(fx_r(net, 4)));
        fx_isolate(net, 4);
        for (int k = 0; k < 100; k++) {
            fx_tick(net, 4);
            fx_deliver(net);
        }
        bs_raft_campaign(fx_r(net, 4));
        struct bs_raft_msg hup = fx_msg(BS_RAFT_MSG_HUP, 4, 4, 0);
        fx_step(net, &hup);
        fx_deliver(net);
        ck_assert_int_eq(bs_raft_role(fx_r(net, 4)), BS_RAFT_FOLLOWER);
        ck_assert_uint_eq(bs_raft_term(fx_r(net, 4)), 1);
        ck_assert_int_eq(learner_campaigned, 0);
        fx_free(net);
    }
}
END_TEST

/* Thesis 4.2.1: a learner's vote does not count. Candidate 1 (voters
 * {1,2,3}, learner 4) is cut from the voters; a granted vote from the
 * learner must not elect it, a granted vote from voter 2 must. */
static void learner_vote_case(bool pre_vote, uint32_t faults,
                              bool expect_win_on_learner)
{
    struct bs_raft_config c;
    cfg_plain(&c);
    c.pre_vote = pre_vote;
    c.faults = faults;
    struct fx_net *net = fx_new(3, 1, &c);
    fx_cut(net, 1, 2);
    fx_cut(net, 1, 3);
    bs_raft_campaign(fx_r(net, 1));
    fx_deliver(net);
    int want = pre_vote ? BS_RAFT_PRE_CANDIDATE : BS_RAFT_CANDIDATE;
    if (expect_win_on_learner) {
        /* The faulty core may also ask the learner itself (the link to it
         * is open), so the win can come before the forged vote. */
        if (bs_raft_role(fx_r(net, 1)) == want) {
            struct bs_raft_msg g =
                fx_msg(BS_RAFT_MSG_VOTE_RESP, 4, 1, bs_raft_term(fx_r(net, 1)));
            fx_step(net, &g);
            fx_deliver(net);
        }
        ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
        fx_free(net);
        return;
    }
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), want);
    uint64_t t =
        pre_vote ? bs_raft_term(fx_r(net, 1)) + 1 : bs_raft_term(fx_r(net, 1));
    int rt = pre_vote ? BS_RAFT_MSG_PREVOTE_RESP : BS_RAFT_MSG_VOTE_RESP;
    struct bs_raft_msg g = fx_msg(rt, 4, 1, t);
    fx_step(net, &g);
    fx_deliver(net);
    ck_assert_msg(bs_raft_role(fx_r(net, 1)) == want,
                  "a learner's vote changed role to %s",
                  bs_raft_role_name(bs_raft_role(fx_r(net, 1))));
    g.from = 2;
    fx_step(net, &g);
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)),
                     pre_vote ? BS_RAFT_CANDIDATE : BS_RAFT_LEADER);
    fx_free(net);
}

START_TEST(test_learner_vote_ignored)
{
    learner_vote_case(false, 0, false);
    learner_vote_case(true, 0, false);
}
END_TEST

/* The check above can fail: with BS_RAFT_FAULT_COUNT_LEARNER_VOTE the
 * learner's vote elects the candidate. */
START_TEST(test_learner_vote_fault_detected)
{
    learner_vote_case(false, BS_RAFT_FAULT_COUNT_LEARNER_VOTE, true);
}
END_TEST

/* Pre-vote (thesis 9.6): a partitioned node does not raise its term, and
 * when the partition heals it does not disrupt the leader, which keeps its
 * term and its role, and the node catches up. */
START_TEST(test_prevote_partitioned_node_does_not_disrupt)
{
    struct fx_net *net = fx_new_default(3); /* pre-vote, check-quorum */
    fx_elect(net, 1);
    uint64_t t = bs_raft_term(fx_r(net, 1));
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    fx_deliver(net);
    fx_isolate(net, 3);
    for (int k = 0; k < 100; k++) {
        fx_tick_deliver(net, 1);
        if (k == 50)
            ck_assert_int_eq(fx_propose(net, 1, "b"), 0);
        ck_assert_uint_eq(bs_raft_term(fx_r(net, 3)), t);
        ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    }
    ck_assert_int_ne(bs_raft_role(fx_r(net, 3)), BS_RAFT_CANDIDATE);
    fx_heal(net);
    fx_tick_deliver(net, 60);
    for (uint64_t id = 1; id <= 3; id++) {
        ck_assert_uint_eq(bs_raft_term(fx_r(net, id)), t);
        ck_assert_uint_eq(bs_raft_lead(fx_r(net, id)), 1);
    }
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    ck_assert(fx_applied_has(net, 3, "b"));
    fx_free(net);
}
END_TEST

/* Contrast: the same partition without pre-vote raises the term, so the
 * test above would notice a pre-vote that does nothing. */
START_TEST(test_no_prevote_partitioned_node_raises_term)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.pre_vote = false;
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    uint64_t t = bs_raft_term(fx_r(net, 1));
    fx_isolate(net, 3);
    fx_tick_deliver(net, 100);
    ck_assert_uint_gt(bs_raft_term(fx_r(net, 3)), t);
    fx_free(net);
}
END_TEST

/* Check-quorum (thesis 6.2): a leader that has not heard from a quorum for
 * an election timeout steps down; one that hears from a quorum stays. */
START_TEST(test_check_quorum_leader_steps_down)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    int et = net->base.election_tick;
    fx_tick_deliver(net, 5 * et);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    fx_isolate(net, 1);
    for (int k = 0; k < 2 * et + 1; k++) {
        fx_tick(net, 1);
        fx_deliver(net);
    }
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_FOLLOWER);
    ck_assert_uint_eq(bs_raft_lead(fx_r(net, 1)), BS_RAFT_NONE);
    fx_free(net);
}
END_TEST

/* Contrast: without check-quorum the isolated leader stays leader. */
START_TEST(test_no_check_quorum_leader_stays)
{
    struct bs_raft_config c;
    cfg_plain(&c);
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    fx_isolate(net, 1);
    for (int k = 0; k < 5 * c.election_tick; k++) {
        fx_tick(net, 1);
        fx_deliver(net);
    }
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    fx_free(net);
}
END_TEST

/* Check-quorum's leader stickiness (thesis 6.2 / 4.2.3): a follower that
 * heard from its leader within the election timeout ignores a vote
 * request with a higher term, unless the request carries the transfer
 * flag; once it has not heard from a leader for an election timeout it
 * votes again. */
START_TEST(test_leader_stickiness)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.pre_vote = false; /* check_quorum on */
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    uint64_t t = bs_raft_term(fx_r(net, 1));
    struct bs_raft *r3 = fx_r(net, 3);
    struct bs_raft_msg v = fx_msg(BS_RAFT_MSG_VOTE, 2, 3, t + 1);
    v.index = bs_raft_last_index(r3);
    ck_assert_int_eq(bs_raft_log_term(r3, v.index, &v.log_term), 0);

    const struct bs_raft_msg *r = fx_ask(net, &v, BS_RAFT_MSG_VOTE_RESP);
    ck_assert_msg(r == NULL || r->reject, "vote granted inside the lease");
    ck_assert_uint_eq(bs_raft_term(r3), t);
    ck_assert_uint_eq(bs_raft_lead(r3), 1);
    ck_assert_uint_eq(bs_raft_vote(r3), 1);

    /* Pre-votes are refused the same way. */
    struct bs_raft_msg pv = v;
    pv.type = BS_RAFT_MSG_PREVOTE;
    r = fx_ask(net, &pv, BS_RAFT_MSG_PREVOTE_RESP);
    ck_assert_msg(r == NULL || r->reject, "pre-vote granted inside lease");

    /* The transfer flag overrides the lease. */
    v.flags = BS_RAFT_MSG_F_TRANSFER;
    r = fx_ask(net, &v, BS_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert(!r->reject);
    ck_assert_uint_eq(bs_raft_term(r3), t + 1);
    ck_assert_uint_eq(bs_raft_vote(r3), 2);
    fx_free(net);

    /* Out of the lease: node 3 has heard nothing for an election timeout. */
    net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    r3 = fx_r(net, 3);
    fx_isolate(net, 3);
    for (int k = 0; k < c.election_tick; k++) {
        fx_tick(net, 3);
        fx_deliver(net);
    }
    fx_heal(net);
    v = fx_msg(BS_RAFT_MSG_VOTE, 2, 3, t + 10);
    v.index = bs_raft_last_index(fx_r(net, 2));
    ck_assert_int_eq(bs_raft_log_term(fx_r(net, 2), v.index, &v.log_term), 0);
    r = fx_ask(net, &v, BS_RAFT_MSG_VOTE_RESP);
    ck_assert_ptr_nonnull(r);
    ck_assert(!r->reject);
    ck_assert_uint_eq(bs_raft_term(r3), t + 10);
    fx_free(net);
}
END_TEST

/* Check-quorum and pre-vote together: a candidate stuck at a higher term
 * after a partition is freed: the leader's heartbeats are answered with
 * the higher term, and the cluster converges on one leader and term. */
START_TEST(test_stuck_candidate_freed_with_check_quorum)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.pre_vote = false;
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    fx_isolate(net, 3);
    for (int k = 0; k < 4 * c.election_tick; k++)
        fx_tick_deliver(net, 1);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 3)), BS_RAFT_CANDIDATE);
    uint64_t t3 = bs_raft_term(fx_r(net, 3));
    fx_heal(net);
    fx_tick_deliver(net, 8 * c.election_tick);
    uint64_t l = fx_leader(net);
    ck_assert_uint_ne(l, 0);
    ck_assert_uint_ge(bs_raft_term(fx_r(net, l)), t3);
    for (uint64_t id = 1; id <= 3; id++) {
        ck_assert_uint_eq(bs_raft_term(fx_r(net, id)),
                          bs_raft_term(fx_r(net, l)));
        ck_assert_uint_eq(bs_raft_lead(fx_r(net, id)), l);
    }
    fx_free(net);
}
END_TEST

static Suite *election_suite(void)
{
    Suite *s = suite_create("raft_election");
    FX_TCASE(s, basic, 30);
    tcase_add_test(basic, test_leader_elected_3);
    tcase_add_test(basic, test_leader_elected_5);
    tcase_add_test(basic, test_leader_elected_by_ticks);
    tcase_add_test(basic, test_candidate_needs_majority);
    tcase_add_test(basic, test_precandidate_needs_majority);
    tcase_add_test(basic, test_election_timeout_randomized);
    tcase_add_test(basic, test_higher_term_makes_leader_step_down);
    tcase_add_test(basic, test_disruptive_rejoin_without_prevote);
    FX_TCASE(s, votes, 30);
    tcase_add_test(votes, test_vote_requires_up_to_date_log);
    tcase_add_test(votes, test_prevote_requires_up_to_date_log);
    tcase_add_test(votes, test_vote_up_to_date_fault_detected);
    tcase_add_test(votes, test_one_vote_per_term);
    FX_TCASE(s, learners, 30);
    tcase_add_test(learners, test_learner_never_campaigns);
    tcase_add_test(learners, test_learner_vote_ignored);
    tcase_add_test(learners, test_learner_vote_fault_detected);
    FX_TCASE(s, prevote_quorum, 30);
    tcase_add_test(prevote_quorum,
                   test_prevote_partitioned_node_does_not_disrupt);
    tcase_add_test(prevote_quorum,
                   test_no_prevote_partitioned_node_raises_term);
    tcase_add_test(prevote_quorum, test_check_quorum_leader_steps_down);
    tcase_add_test(prevote_quorum, test_no_check_quorum_leader_stays);
    tcase_add_test(prevote_quorum, test_leader_stickiness);
    tcase_add_test(prevote_quorum,
                   test_stuck_candidate_freed_with_check_quorum);
    return s;
}

int main(void)
{
    return fx_run_suite(election_suite());
}
