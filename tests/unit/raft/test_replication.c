/*
 * test_replication.c - log replication (thesis 3.5), the commitment rule
 * (3.6.2, the "figure 8" case), the log matching property and conflict
 * repair, conflict hints for O(terms) repair of a divergent follower, and
 * the rule that a leader counts its own log only once it is durable
 * (10.2.1). Flow control (byte limits, inflight window, progress states)
 * is in test_flow_control.c.
 */
#include <string.h>

#include "fixture.h"

static void cfg_plain(struct bs_raft_config *c)
{
    fx_config(c);
    c->pre_vote = false;
    c->check_quorum = false;
}

/* Thesis 3.5: entries proposed to the leader are replicated, committed and
 * applied on every node in the same order; proposals made at a follower
 * are forwarded to the leader. */
START_TEST(test_entries_replicate_and_commit)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    ck_assert_int_eq(fx_propose(net, 1, "b"), 0);
    fx_deliver(net);
    ck_assert_int_eq(fx_propose(net, 2, "c"), 0); /* forwarded */
    fx_deliver(net);
    uint64_t last = bs_raft_last_index(fx_r(net, 1));
    ck_assert_uint_eq(last, 5); /* 2: empty entry, 3..5: a b c */
    for (uint64_t id = 1; id <= 3; id++) {
        struct fx_node *n = fx_node(net, id);
        ck_assert_uint_eq(bs_raft_committed(n->r), last);
        ck_assert_uint_eq(n->applied_index, last);
        ck_assert_uint_eq(fx_applied_data(net, id), 3);
        ck_assert(fx_logs_match(net, 1, id, 1, last));
        /* applied[0] is the empty entry at 2; data follows in order. */
        ck_assert_uint_eq(n->applied.n, 4);
        ck_assert_uint_eq(n->applied.v[0].len, 0);
        ck_assert_mem_eq(n->applied.v[1].data, "a", 1);
        ck_assert_mem_eq(n->applied.v[2].data, "b", 1);
        ck_assert_mem_eq(n->applied.v[3].data, "c", 1);
    }
    fx_free(net);
}
END_TEST

static int hold_app_resp_from_3(void *arg, const struct bs_raft_msg *m)
{
    (void)arg;
    return m->type == BS_RAFT_MSG_APP_RESP && m->from == 3 ? FX_HOLD : FX_PASS;
}

/* A follower whose acknowledgement arrives after the entry committed (it
 * was still being probed when the commit index was broadcast) is sent the
 * commit index at once, without waiting for a heartbeat (etcd: "this node
 * may be missing the latest commit index, so send it"). No tick here. */
START_TEST(test_late_follower_learns_commit)
{
    struct fx_net *net = fx_new_default(3);
    fx_set_filter(net, hold_app_resp_from_3, NULL);
    bs_raft_campaign(fx_r(net, 1));
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    ck_assert_uint_eq(bs_raft_committed(fx_r(net, 1)), 2);
    ck_assert_uint_eq(bs_raft_committed(fx_r(net, 3)), 1);
    fx_set_filter(net, NULL, NULL);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_committed(fx_r(net, 3)), 2);
    ck_assert_uint_eq(fx_node(net, 3)->applied_index, 2);
    fx_free(net);
}
END_TEST

/* Proposals need a leader: dropped with no leader known, and at a
 * follower when forwarding is disabled. */
START_TEST(test_proposal_dropped_without_leader)
{
    struct fx_net *net = fx_new_default(3);
    ck_assert_int_eq(fx_propose(net, 2, "x"), BS_EDROPPED);
    fx_free(net);

    struct bs_raft_config c;
    fx_config(&c);
    c.disable_proposal_forwarding = true;
    net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 2, "x"), BS_EDROPPED);
    fx_deliver(net);
    ck_assert(!fx_applied_has(net, 1, "x"));
    ck_assert_int_eq(fx_propose(net, 1, "y"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 2, "y"));
    fx_free(net);
}
END_TEST

/*
 * Thesis 3.6.2 (figure 3.7, the paper's figure 8): a leader commits by
 * counting replicas only entries of its own term; earlier entries commit
 * indirectly with them. Leader 1 of term 3 has [2:t2] from an earlier term
 * and its own empty entry [3:t3]. A follower acknowledging index 2 makes
 * index 2 stored on a majority, yet it must not commit; acknowledging
 * index 3 commits both.
 */
static void only_current_term_case(uint32_t faults)
{
    struct bs_raft_config c;
    cfg_plain(&c);
    c.faults = faults;
    struct fx_net *net = fx_new(3, 0, &c);
    const uint64_t t2[] = {2};
    fx_preload(net, 1, t2, 1, 2, 1);
    fx_preload(net, 2, NULL, 0, 2, 1);
    fx_preload(net, 3, NULL, 0, 2, 1);
    /* Elect 1 in term 3 but keep its appends from the followers. */
    fx_cut(net, 1, 2);
    fx_link(net, 2, 1, FX_PASS);
    fx_cut(net, 1, 3);
    fx_link(net, 3, 1, FX_PASS);
    bs_raft_campaign(fx_r(net, 1));
    fx_collect(net);
    struct bs_raft_msg g = fx_msg(BS_RAFT_MSG_VOTE_RESP, 2, 1, 3);
    fx_step(net, &g);
    fx_deliver(net);
    struct bs_raft *r1 = fx_r(net, 1);
    ck_assert_int_eq(bs_raft_role(r1), BS_RAFT_LEADER);
    ck_assert_uint_eq(bs_raft_term(r1), 3);
    ck_assert_uint_eq(bs_raft_last_index(r1), 3);
    ck_assert_uint_eq(bs_raft_committed(r1), 1);

    struct bs_raft_msg ack = fx_msg(BS_RAFT_MSG_APP_RESP, 2, 1, 3);
    ack.index = 2;
    fx_step(net, &ack);
    fx_deliver(net);
    if (faults) {
        ck_assert_uint_eq(bs_raft_committed(r1), 2);
        fx_free(net);
        return;
    }
    ck_assert_msg(bs_raft_committed(r1) == 1,
                  "committed %llu by counting an entry of an older term",
                  (unsigned long long)bs_raft_committed(r1));
    ck_assert_uint_eq(fx_node(net, 1)->applied_index, 1);

    ack.index = 3;
    fx_step(net, &ack);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_committed(r1), 3);
    ck_assert_uint_eq(fx_node(net, 1)->applied_index, 3);
    ck_assert(fx_applied_has(net, 1, "p2"));
    fx_free(net);
}

START_TEST(test_only_current_term_commits_by_counting)
{
    only_current_term_case(0);
}
END_TEST

/* The check above can fail: with BS_RAFT_FAULT_COMMIT_OLD_TERM index 2
 * commits on the first acknowledgement. */
START_TEST(test_commit_old_term_fault_detected)
{
    only_current_term_case(BS_RAFT_FAULT_COMMIT_OLD_TERM);
}
END_TEST

static int drop_app_from(void *arg, const struct bs_raft_msg *m)
{
    uint64_t from = *(const uint64_t *)arg;
    return m->type == BS_RAFT_MSG_APP && m->from == from ? FX_DROP : FX_PASS;
}

/*
 * Figure 8 played out on 5 nodes (thesis figure 3.7), from state (c): S5
 * led term 3 and appended [2:t3] alone; S1, S2, S3 hold [2:t2]; S4 holds
 * nothing. S1 is elected in term 4 (S2, S3, S4 vote for it) and learns
 * that S2 and S3 match it at index 2: [2:t2] is on a majority, but of an
 * older term, and S1's appends of its own entry are lost. It must not
 * commit index 2: S1 then fails, S5 is elected in term 5 by S2, S3, S4
 * and overwrites index 2 with [2:t3]. The fixture's state machine safety
 * check fails the test if any node ever applied [2:t2].
 */
START_TEST(test_figure8)
{
    struct bs_raft_config c;
    cfg_plain(&c);
    struct fx_net *net = fx_new(5, 0, &c);
    const uint64_t t2[] = {2}, t3[] = {3};
    for (uint64_t id = 1; id <= 3; id++)
        fx_preload(net, id, t2, 1, 3, 1);
    fx_preload(net, 4, NULL, 0, 3, 1);
    fx_preload(net, 5, t3, 1, 3, 1);

    uint64_t s1 = 1;
    fx_set_filter(net, drop_app_from, &s1);
    fx_elect(net, 1);
    struct bs_raft *r1 = fx_r(net, 1);
    ck_assert_uint_eq(bs_raft_term(r1), 4);
    ck_assert_uint_eq(bs_raft_last_index(r1), 3);
    for (uint64_t id = 2; id <= 3; id++) {
        struct bs_raft_msg ack = fx_msg(BS_RAFT_MSG_APP_RESP, id, 1, 4);
        ack.index = 2;
        fx_step(net, &ack);
    }
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_committed(r1), 1);
    ck_assert_uint_eq(fx_node(net, 1)->applied_index, 1);

    /* S1 fails; S5 wins term 5 and overwrites index 2. */
    fx_set_filter(net, NULL, NULL);
    fx_isolate(net, 1);
    fx_elect(net, 5);
    ck_assert_uint_eq(bs_raft_term(fx_r(net, 5)), 5);
    for (uint64_t id = 2; id <= 5; id++) {
        uint64_t t = 0;
        ck_assert_int_eq(bs_raft_log_term(fx_r(net, id), 2, &t), 0);
        ck_assert_uint_eq(t, 3);
        ck_assert_uint_eq(bs_raft_committed(fx_r(net, id)), 3);
    }
    /* S1 comes back and its log is repaired. */
    fx_heal(net);
    fx_tick_deliver(net, 5);
    ck_assert_uint_eq(bs_raft_lead(fx_r(net, 1)), 5);
    ck_assert(fx_logs_match(net, 1, 5, 1, bs_raft_last_index(fx_r(net, 5))));
    ck_assert_uint_eq(fx_node(net, 1)->applied_index, 3);
    fx_free(net);
}
END_TEST

/*
 * Log matching (thesis 3.5): a follower whose log diverges from the leader
 * (uncommitted entries of a deposed leader) has the conflicting suffix
 * erased and replaced; it never applies the erased entries.
 */
START_TEST(test_divergent_follower_repaired)
{
    struct bs_raft_config c;
    cfg_plain(&c);
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    fx_deliver(net);
    fx_isolate(net, 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(fx_propose(net, 1, "lost"), 0);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_last_index(fx_r(net, 1)), 6);
    fx_elect(net, 2);
    ck_assert_int_eq(fx_propose(net, 2, "b"), 0);
    ck_assert_int_eq(fx_propose(net, 2, "c"), 0);
    fx_deliver(net);
    fx_heal(net);
    fx_tick_deliver(net, 5);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_FOLLOWER);
    ck_assert_uint_eq(bs_raft_lead(fx_r(net, 1)), 2);
    uint64_t last = bs_raft_last_index(fx_r(net, 2));
    ck_assert_uint_eq(bs_raft_last_index(fx_r(net, 1)), last);
    ck_assert(fx_logs_match(net, 1, 2, 1, last));
    ck_assert_uint_eq(fx_node(net, 1)->applied_index, last);
    ck_assert(fx_applied_has(net, 1, "b") && fx_applied_has(net, 1, "c"));
    ck_assert(!fx_applied_has(net, 1, "lost"));
    fx_free(net);
}
END_TEST

/*
 * AppendEntries at a follower (thesis figure 3.1, receiver rules): reject
 * if the log has no entry at prev index with prev term; otherwise erase
 * conflicting entries, append new ones, and set commit to
 * min(leaderCommit, index of last new entry). The follower's log is
 * [1:t1 (snapshot), 2:t2, 3:t2], its commit 1.
 */
START_TEST(test_follower_handles_append)
{
    static const struct {
        uint64_t term, prev_index, prev_term, commit;
        size_t n;
        uint64_t ent_term; /* entries at prev_index+1.. with this term */
        bool reject;
        uint64_t want_last, want_commit;
    } tt[] = {
        /* prev term mismatch */
        {2, 3, 3, 3, 0, 0, true, 3, 1},
        /* prev beyond the log */
        {2, 4, 2, 3, 0, 0, true, 3, 1},
        /* heartbeat-like append: commit follows, bounded by prev */
        {2, 3, 2, 3, 0, 0, false, 3, 3},
        {2, 2, 2, 3, 0, 0, false, 3, 2},
        /* new entry after the log; commit bounded by last new */
        {2, 3, 2, 9, 1, 2, false, 4, 4},
        /* conflict at 3: replaced by 3:t3 */
        {3, 2, 2, 3, 1, 3, false, 3, 3},
        /* entries already present: nothing truncated (stale append) */
        {2, 1, 1, 1, 1, 2, false, 3, 1},
        /* prev at the snapshot */
        {2, 1, 1, 2, 2, 2, false, 3, 2},
    };
    for (size_t i = 0; i < sizeof(tt) / sizeof(tt[0]); i++) {
        struct bs_raft_config c;
        cfg_plain(&c);
        struct fx_net *net = fx_new(3, 0, &c);
        const uint64_t terms[] = {2, 2};
        fx_preload(net, 2, terms, 2, 2, 1);
        struct bs_raft_msg m = fx_msg(BS_RAFT_MSG_APP, 1, 2, tt[i].term);
        m.index = tt[i].prev_index;
        m.log_term = tt[i].prev_term;
        m.commit = tt[i].commit;
        struct bs_raft_entry ents[4];
        memset(ents, 0, sizeof(ents));
        for (size_t k = 0; k < tt[i].n; k++) {
            ents[k].index = tt[i].prev_index + 1 + k;
            ents[k].term = tt[i].ent_term;
        }
        m.entries = tt[i].n ? ents : NULL;
        m.n_entries = tt[i].n;
        const struct bs_raft_msg *r = fx_ask(net, &m, BS_RAFT_MSG_APP_RESP);
        ck_assert_msg(r != NULL, "case %zu: no response", i);
        ck_assert_msg(r->reject == tt[i].reject, "case %zu: reject %d", i,
                      r->reject);
        struct bs_raft *f = fx_r(net, 2);
        ck_assert_msg(bs_raft_last_index(f) == tt[i].want_last,
                      "case %zu: last %llu", i,
                      (unsigned long long)bs_raft_last_index(f));
        ck_assert_msg(bs_raft_committed(f) == tt[i].want_commit,
                      "case %zu: commit %llu", i,
                      (unsigned long long)bs_raft_committed(f));
        if (!tt[i].reject)
            ck_assert_uint_eq(r->index, tt[i].prev_index + tt[i].n);
        else
            ck_assert_uint_eq(r->index, tt[i].prev_index);
        if (tt[i].n) {
            uint64_t t = 0;
            ck_assert_int_eq(bs_raft_log_term(f, tt[i].prev_index + 1, &t), 0);
            ck_assert_uint_eq(t, tt[i].ent_term);
        }
        fx_free(net);
    }
}
END_TEST

static uint64_t app_rejects_to_leader, apps_to_3;

static int count_repair(void *arg, const struct bs_raft_msg *m)
{
    (void)arg;
    if (m->type == BS_RAFT_MSG_APP_RESP && m->from == 3 && m->reject)
        app_rejects_to_leader++;
    if (m->type == BS_RAFT_MSG_APP && m->to == 3)
        apps_to_3++;
    return FX_PASS;
}

/* Builds terms[] of n entries made of runs of 'run' entries with terms
 * first, first+1, ... */
static void runs(uint64_t *terms, size_t n, uint64_t first, size_t run)
{
    for (size_t i = 0; i < n; i++)
        terms[i] = first + i / run;
}

/*
 * Conflict hints (thesis 3.5, the optimization etcd implements with
 * findConflictByTerm): repairing a follower costs O(terms) rejected
 * AppendEntries, not O(entries). All logs share [2..11] of term 2; then
 * the leader (and node 2) and the follower (node 3) diverge as each case
 * says. Without hints the leader would back off one entry per rejection,
 * about 50 rounds in every case.
 */
START_TEST(test_conflict_hints_repair_in_o_terms)
{
    static const struct {
        const char *name;
        size_t lead_n;
        uint64_t lead_first;
        size_t lead_run;
        size_t fol_n;
        uint64_t fol_first;
        size_t fol_run;
        uint64_t max_rejects;
    } tt[] = {
        {"longer follower, one term each", 50, 4, 50, 100, 3, 100, 2},
        {"leader tail of five terms", 50, 4, 10, 100, 3, 100, 2},
        {"follower tail of five terms", 50, 9, 50, 100, 3, 20, 6},
        {"lagging follower", 50, 4, 50, 0, 3, 1, 2},
        {"both tails many terms", 50, 20, 5, 60, 3, 4, 17},
    };
    for (size_t i = 0; i < sizeof(tt) / sizeof(tt[0]); i++) {
        struct bs_raft_config c;
        cfg_plain(&c);
        struct fx_net *net = fx_new(3, 0, &c);
        uint64_t common[10], lead[64], fol[128];
        runs(common, 10, 2, 10);
        runs(lead, tt[i].lead_n, tt[i].lead_first, tt[i].lead_run);
        runs(fol, tt[i].fol_n, tt[i].fol_first, tt[i].fol_run);
        uint64_t lead_last_term = lead[tt[i].lead_n - 1];
        uint64_t fol_last_term = tt[i].fol_n ? fol[tt[i].fol_n - 1] : 2;
        ck_assert_uint_gt(lead_last_term, fol_last_term);
        uint64_t hs = lead_last_term;
        for (uint64_t id = 1; id <= 3; id++) {
            fx_preload(net, id, common, 10, hs, 1);
            if (id < 3)
                fx_preload(net, id, lead, tt[i].lead_n, hs, 1);
            else
                fx_preload(net, id, fol, tt[i].fol_n, hs, 1);
        }
        app_rejects_to_leader = apps_to_3 = 0;
        fx_set_filter(net, count_repair, NULL);
        fx_elect(net, 1);
        struct bs_raft *r1 = fx_r(net, 1);
        uint64_t last = bs_raft_last_index(r1);
        ck_assert_uint_eq(last, 11 + tt[i].lead_n + 1);
        ck_assert_msg(bs_raft_last_index(fx_r(net, 3)) == last &&
                          fx_logs_match(net, 1, 3, 1, last),
                      "%s: follower not repaired", tt[i].name);
        ck_assert_uint_eq(bs_raft_committed(fx_r(net, 3)), last);
        ck_assert_msg(app_rejects_to_leader >= 1 &&
                          app_rejects_to_leader <= tt[i].max_rejects,
                      "%s: %llu rejected appends (at most %llu expected)",
                      tt[i].name, (unsigned long long)app_rejects_to_leader,
                      (unsigned long long)tt[i].max_rejects);
        fx_free(net);
    }
}
END_TEST

static uint64_t watched_index;
static int entry_ready_commits_it, entry_ready_seen;
static uint64_t commit_at_entry_ready;

static void watch_entry(void *arg, uint64_t id, const struct bs_raft_ready *rd)
{
    struct fx_net *net = arg;
    for (size_t i = 0; i < rd->n_entries; i++) {
        if (rd->entries[i].index != watched_index)
            continue;
        entry_ready_seen++;
        commit_at_entry_ready = bs_raft_committed(fx_r(net, id));
        for (size_t k = 0; k < rd->n_committed; k++)
            if (rd->committed[k].index == watched_index)
                entry_ready_commits_it++;
        if (rd->has_hard_state && rd->hard_state.commit >= watched_index)
            entry_ready_commits_it++;
    }
}

/* Thesis 10.2.1: the leader counts its own log in the commit quorum only
 * once the entries are durable, i.e. after bs_raft_advance() of the ready
 * that asked to persist them. In a single-node cluster, the ready that
 * carries a new entry to persist therefore cannot commit it; the next
 * ready does. */
START_TEST(test_leader_counts_itself_only_after_advance)
{
    struct fx_net *net = fx_new_default(1);
    fx_elect(net, 1);
    struct bs_raft *r = fx_r(net, 1);
    ck_assert_uint_eq(bs_raft_committed(r), 2);
    watched_index = bs_raft_last_index(r) + 1;
    entry_ready_commits_it = entry_ready_seen = 0;
    net->on_ready = watch_entry;
    net->ready_arg = net;
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    ck_assert_uint_lt(bs_raft_committed(r), watched_index);
    fx_collect(net);
    ck_assert_int_eq(entry_ready_seen, 1);
    ck_assert_int_eq(entry_ready_commits_it, 0);
    ck_assert_uint_lt(commit_at_entry_ready, watched_index);
    ck_assert_uint_eq(bs_raft_committed(r), watched_index);
    ck_assert(fx_applied_has(net, 1, "a"));
    fx_free(net);
}
END_TEST

static Suite *replication_suite(void)
{
    Suite *s = suite_create("raft_replication");
    FX_TCASE(s, basic, 30);
    tcase_add_test(basic, test_entries_replicate_and_commit);
    tcase_add_test(basic, test_late_follower_learns_commit);
    tcase_add_test(basic, test_proposal_dropped_without_leader);
    tcase_add_test(basic, test_follower_handles_append);
    tcase_add_test(basic, test_divergent_follower_repaired);
    FX_TCASE(s, commit, 30);
    tcase_add_test(commit, test_only_current_term_commits_by_counting);
    tcase_add_test(commit, test_commit_old_term_fault_detected);
    tcase_add_test(commit, test_figure8);
    tcase_add_test(commit, test_leader_counts_itself_only_after_advance);
    FX_TCASE(s, hints, 30);
    tcase_add_test(hints, test_conflict_hints_repair_in_o_terms);
    return s;
}

int main(void)
{
    return fx_run_suite(replication_suite());
}
