/*
 * test_transfer.c - leadership transfer (thesis 3.10): the leader brings
 * the target up to date, then sends TimeoutNow, which makes the target
 * campaign at once (skipping pre-vote, its vote request flagged so that
 * followers inside a leader lease grant it). Learners and unknown nodes
 * are refused; proposals are dropped while a transfer is in progress; a
 * transfer that does not finish within an election timeout is aborted.
 */
#include <string.h>

#include "fixture.h"

static struct fx_net *cluster(int voters, int learners)
{
    struct fx_net *net = fx_new(voters, learners, NULL);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    fx_deliver(net);
    return net;
}

/* An up-to-date follower becomes leader in the next term through
 * TimeoutNow; the old leader and the others follow it. Check-quorum and
 * pre-vote are on: the flagged vote passes the followers' leases. */
START_TEST(test_transfer_to_up_to_date_follower)
{
    struct fx_net *net = cluster(3, 0);
    uint64_t t = bs_raft_term(fx_r(net, 1));
    uint64_t prevotes = net->sent[BS_RAFT_MSG_PREVOTE];
    bs_raft_transfer_leader(fx_r(net, 1), 2);
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 2)), BS_RAFT_LEADER);
    ck_assert_uint_eq(bs_raft_term(fx_r(net, 2)), t + 1);
    for (uint64_t id = 1; id <= 3; id++)
        ck_assert_uint_eq(bs_raft_lead(fx_r(net, id)), 2);
    ck_assert_uint_eq(net->delivered[BS_RAFT_MSG_TIMEOUT_NOW], 1);
    /* The transferee campaigns at once, without a pre-vote round. */
    ck_assert_uint_eq(net->sent[BS_RAFT_MSG_PREVOTE], prevotes);
    ck_assert_uint_eq(bs_raft_lead_transferee(fx_r(net, 1)), BS_RAFT_NONE);
    ck_assert_int_eq(fx_propose(net, 2, "b"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 1, "b"));
    fx_free(net);
}
END_TEST

/* Transfer is refused silently to a learner, an unknown node, and the
 * leader itself: nothing is sent and the leader keeps leading. */
START_TEST(test_transfer_refused)
{
    struct fx_net *net = cluster(3, 1);
    uint64_t t = bs_raft_term(fx_r(net, 1));
    static const uint64_t targets[] = {4, 9, 1};
    for (size_t i = 0; i < 3; i++) {
        bs_raft_transfer_leader(fx_r(net, 1), targets[i]);
        ck_assert_uint_eq(bs_raft_lead_transferee(fx_r(net, 1)), BS_RAFT_NONE);
        fx_deliver(net);
        ck_assert_uint_eq(net->sent[BS_RAFT_MSG_TIMEOUT_NOW], 0);
        ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
        ck_assert_uint_eq(bs_raft_term(fx_r(net, 1)), t);
        ck_assert_int_eq(fx_propose(net, 1, "ok"), 0);
    }
    fx_free(net);
}
END_TEST

/* A learner that receives TimeoutNow anyway does not campaign. */
START_TEST(test_learner_ignores_timeout_now)
{
    struct fx_net *net = cluster(3, 1);
    uint64_t t = bs_raft_term(fx_r(net, 4));
    struct bs_raft_msg m = fx_msg(BS_RAFT_MSG_TIMEOUT_NOW, 1, 4, t);
    fx_step(net, &m);
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 4)), BS_RAFT_FOLLOWER);
    ck_assert_uint_eq(bs_raft_term(fx_r(net, 4)), t);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    fx_free(net);
}
END_TEST

/* A target that is behind is first brought up to date; TimeoutNow goes
 * only once it matches the leader's log. Proposals (normal and conf
 * changes) are dropped meanwhile. */
START_TEST(test_transfer_waits_for_catch_up)
{
    struct fx_net *net = cluster(3, 0);
    struct bs_raft *r1 = fx_r(net, 1);
    fx_link(net, 1, 3, FX_HOLD);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(fx_propose(net, 1, "e"), 0);
    fx_deliver(net);
    ck_assert_uint_lt(bs_raft_last_index(fx_r(net, 3)), bs_raft_last_index(r1));
    bs_raft_transfer_leader(r1, 3);
    ck_assert_uint_eq(bs_raft_lead_transferee(r1), 3);
    fx_deliver(net);
    ck_assert_uint_eq(fx_queued(net, BS_RAFT_MSG_TIMEOUT_NOW, 1, 3), 0);
    ck_assert_uint_eq(net->sent[BS_RAFT_MSG_TIMEOUT_NOW], 0);
    uint64_t last = bs_raft_last_index(r1);
    ck_assert_int_eq(fx_propose(net, 1, "dropped"), BS_EDROPPED);
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_ADD_LEARNER, 5),
                     BS_EDROPPED);
    ck_assert_int_eq(fx_propose(net, 2, "forwarded"), 0);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_last_index(r1), last);
    fx_link(net, 1, 3, FX_PASS);
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 3)), BS_RAFT_LEADER);
    ck_assert_uint_eq(bs_raft_lead(fx_r(net, 1)), 3);
    ck_assert_uint_eq(net->sent[BS_RAFT_MSG_TIMEOUT_NOW], 1);
    ck_assert_int_eq(fx_propose(net, 3, "f"), 0);
    fx_deliver(net);
    for (uint64_t id = 1; id <= 3; id++) {
        ck_assert_uint_eq(fx_applied_data(net, id), 5); /* a e e e f */
        ck_assert(!fx_applied_has(net, id, "dropped"));
        ck_assert(!fx_applied_has(net, id, "forwarded"));
    }
    fx_free(net);
}
END_TEST

/* A transfer that cannot finish (target unreachable) is aborted after an
 * election timeout; the leader then accepts proposals again. */
START_TEST(test_transfer_aborted_after_election_timeout)
{
    struct fx_net *net = cluster(3, 0);
    struct bs_raft *r1 = fx_r(net, 1);
    fx_cut(net, 1, 3);
    bs_raft_transfer_leader(r1, 3);
    ck_assert_uint_eq(bs_raft_lead_transferee(r1), 3);
    ck_assert_int_eq(fx_propose(net, 1, "x"), BS_EDROPPED);
    fx_tick_deliver(net, 1);
    ck_assert_uint_eq(bs_raft_lead_transferee(r1), 3);
    fx_tick_deliver(net, net->base.election_tick);
    ck_assert_uint_eq(bs_raft_lead_transferee(r1), BS_RAFT_NONE);
    ck_assert_int_eq(bs_raft_role(r1), BS_RAFT_LEADER);
    ck_assert_int_eq(fx_propose(net, 1, "y"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 2, "y"));
    fx_free(net);
}
END_TEST

/* A new transfer to another target replaces one in progress. */
START_TEST(test_transfer_retargeted)
{
    struct fx_net *net = cluster(3, 0);
    struct bs_raft *r1 = fx_r(net, 1);
    fx_cut(net, 1, 3);
    bs_raft_transfer_leader(r1, 3);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_lead_transferee(r1), 3);
    bs_raft_transfer_leader(r1, 2);
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 2)), BS_RAFT_LEADER);
    ck_assert_uint_eq(bs_raft_lead(r1), 2);
    fx_free(net);
}
END_TEST

static Suite *transfer_suite(void)
{
    Suite *s = suite_create("raft_transfer");
    FX_TCASE(s, transfer, 30);
    tcase_add_test(transfer, test_transfer_to_up_to_date_follower);
    tcase_add_test(transfer, test_transfer_refused);
    tcase_add_test(transfer, test_learner_ignores_timeout_now);
    tcase_add_test(transfer, test_transfer_waits_for_catch_up);
    tcase_add_test(transfer, test_transfer_aborted_after_election_timeout);
    tcase_add_test(transfer, test_transfer_retargeted);
    return s;
}

int main(void)
{
    return fx_run_suite(transfer_suite());
}
