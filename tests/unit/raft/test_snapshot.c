/*
 * test_snapshot.c - snapshots and log compaction (thesis chapter 5), in
 * the spirit of etcd's raft_snap_test.go: a follower whose next entries
 * were compacted away gets InstallSnapshot, installs it (the ready carries
 * it) and takes its configuration from the snapshot's meta; a failed
 * snapshot send goes back to probing; an empty new replica is seeded by a
 * snapshot; stale snapshots are ignored and a snapshot whose last entry
 * the follower already holds only moves its commit index.
 */
#include <string.h>

#include "fixture.h"

/* Snapshots node id's state machine at its applied index with the given
 * image, and compacts its log there. */
static uint64_t compact_applied(struct fx_net *net, uint64_t id,
                                const char *image)
{
    struct fx_node *n = fx_node(net, id);
    uint64_t idx = n->applied_index;
    ck_assert_int_eq(bs_raft_mem_storage_create_snapshot(n->ms, idx, &n->conf,
                                                         (const uint8_t *)image,
                                                         strlen(image)),
                     0);
    ck_assert_int_eq(bs_raft_mem_storage_compact(n->ms, idx), 0);
    return idx;
}

struct snap_watch {
    int mode; /* 0 pass, 1 drop SNAP */
    size_t snaps;
    size_t apps_to_3_with_entries;
    struct bs_raft_snapshot_meta meta;
    size_t data_len;
    char data[32];
};

static int watch_snaps(void *arg, const struct bs_raft_msg *m)
{
    struct snap_watch *w = arg;
    if (m->type == BS_RAFT_MSG_APP && m->to == 3 && m->n_entries)
        w->apps_to_3_with_entries++;
    if (m->type != BS_RAFT_MSG_SNAP)
        return FX_PASS;
    w->snaps++;
    w->meta = m->snapshot.meta;
    w->data_len = m->snapshot.len;
    if (m->snapshot.len && m->snapshot.len < sizeof(w->data))
        memcpy(w->data, m->snapshot.data, m->snapshot.len);
    return w->mode == 1 ? FX_DROP : FX_PASS;
}

/* Sets up a 3-node cluster where node 3 missed entries that the leader
 * has compacted away; returns the snapshot index. */
static uint64_t lagging_follower(struct fx_net **out)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    fx_deliver(net);
    fx_cut(net, 1, 3);
    char buf[16];
    for (int i = 0; i < 10; i++) {
        buf[0] = 'k';
        buf[1] = (char)('0' + i);
        buf[2] = 0;
        ck_assert_int_eq(fx_propose(net, 1, buf), 0);
    }
    fx_deliver(net);
    ck_assert_uint_eq(fx_applied_data(net, 1), 11);
    uint64_t idx = compact_applied(net, 1, "image");
    struct bs_raft_storage st = bs_raft_mem_storage_iface(fx_node(net, 1)->ms);
    ck_assert_uint_eq(st.ops->first_index(st.ctx), idx + 1);
    *out = net;
    return idx;
}

/* A follower whose needed entries were compacted receives the snapshot,
 * installs it (ready.has_snapshot), takes its configuration from the
 * snapshot meta, and then follows the log. */
START_TEST(test_compacted_follower_gets_snapshot)
{
    struct fx_net *net;
    uint64_t idx = lagging_follower(&net);
    struct snap_watch w;
    memset(&w, 0, sizeof(w));
    fx_set_filter(net, watch_snaps, &w);
    fx_heal(net);
    for (int k = 0; k < 10 && fx_node(net, 3)->n_snaps_installed == 0; k++)
        fx_tick_deliver(net, 1);
    fx_tick_deliver(net, 2);
    struct fx_node *n3 = fx_node(net, 3);
    ck_assert_uint_ge(w.snaps, 1);
    ck_assert_uint_eq(w.meta.index, idx);
    ck_assert_int_eq(n3->n_snaps_installed, 1);
    ck_assert_uint_eq(n3->snap_index, idx);
    ck_assert_uint_eq(n3->last_snap.meta.index, idx);
    uint64_t t1 = 0;
    ck_assert_int_eq(bs_raft_log_term(fx_r(net, 1), idx, &t1), 0);
    ck_assert_uint_eq(n3->last_snap.meta.term, t1);
    ck_assert_uint_eq(n3->last_snap.len, 5);
    ck_assert_mem_eq(n3->last_snap.data, "image", 5);
    struct bs_raft_conf_state cs1, cs3;
    bs_raft_conf_state(fx_r(net, 1), &cs1);
    bs_raft_conf_state(fx_r(net, 3), &cs3);
    ck_assert(bs_raft_conf_state_equal(&cs1, &cs3));
    ck_assert(bs_raft_conf_state_equal(&n3->last_snap.meta.conf, &cs1));
    ck_assert_uint_eq(bs_raft_committed(fx_r(net, 3)),
                      bs_raft_committed(fx_r(net, 1)));
    ck_assert_int_eq(fx_propose(net, 1, "after"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 3, "after"));
    uint64_t last = bs_raft_last_index(fx_r(net, 1));
    ck_assert(fx_logs_match(net, 1, 3, idx, last));
    ck_assert_int_eq(fx_progress(net, 1, 3).state, 1);
    fx_free(net);
}
END_TEST

/* While a snapshot is in flight the follower gets no appends; a failed
 * snapshot (report_snapshot(failed)) sends it back to probe, and the
 * leader later retries until it succeeds. */
START_TEST(test_snapshot_failure_back_to_probe)
{
    struct fx_net *net;
    uint64_t idx = lagging_follower(&net);
    /* This test plays the transport: it reports the failure itself. */
    net->report_snaps = false;
    struct snap_watch w;
    memset(&w, 0, sizeof(w));
    w.mode = 1;
    fx_set_filter(net, watch_snaps, &w);
    fx_heal(net);
    for (int k = 0; k < 10 && w.snaps == 0; k++)
        fx_tick_deliver(net, 1);
    ck_assert_uint_ge(w.snaps, 1);
    struct bs_raft_progress_info p = fx_progress(net, 1, 3);
    ck_assert_int_eq(p.state, 2); /* snapshot */
    size_t apps = w.apps_to_3_with_entries;
    ck_assert_int_eq(fx_propose(net, 1, "during"), 0);
    fx_tick_deliver(net, 3);
    ck_assert_uint_eq(w.apps_to_3_with_entries, apps);
    ck_assert_int_eq(fx_progress(net, 1, 3).state, 2);

    bs_raft_report_snapshot(fx_r(net, 1), 3, true);
    ck_assert_int_eq(fx_progress(net, 1, 3).state, 0); /* probe */
    w.mode = 0;
    for (int k = 0; k < 20 && fx_node(net, 3)->n_snaps_installed == 0; k++)
        fx_tick_deliver(net, 1);
    fx_tick_deliver(net, 3);
    ck_assert_int_eq(fx_node(net, 3)->n_snaps_installed, 1);
    ck_assert_uint_eq(fx_node(net, 3)->snap_index, idx);
    ck_assert(fx_applied_has(net, 3, "during"));
    p = fx_progress(net, 1, 3);
    ck_assert_int_eq(p.state, 1);
    ck_assert_uint_eq(p.match, bs_raft_last_index(fx_r(net, 1)));
    fx_free(net);
}
END_TEST

/* A replica added with empty storage (no configuration, term 0) stays
 * passive until the leader's snapshot arrives; it takes the configuration
 * from the snapshot meta and then follows the log. */
START_TEST(test_new_empty_replica_gets_snapshot)
{
    struct fx_net *net = fx_new_default(3);
    fx_add_empty(net, 4);
    struct bs_raft *r4 = fx_r(net, 4);
    ck_assert_uint_eq(bs_raft_term(r4), 0);
    ck_assert_uint_eq(bs_raft_last_index(r4), 0);
    struct bs_raft_conf_state cs;
    memset(&cs, 0xff, sizeof(cs));
    bs_raft_conf_state(r4, &cs);
    ck_assert_uint_eq(cs.n_voters, 0);
    ck_assert_uint_eq(cs.n_learners, 0);
    /* An empty replica never campaigns. */
    for (int k = 0; k < 40; k++) {
        fx_tick(net, 4);
        fx_deliver(net);
    }
    ck_assert_int_eq(bs_raft_role(r4), BS_RAFT_FOLLOWER);
    ck_assert_uint_eq(bs_raft_term(r4), 0);

    fx_elect(net, 1);
    fx_isolate(net, 4);
    ck_assert_int_eq(fx_propose_cc1(net, 1, BS_RAFT_CC_TRANSITION_AUTO,
                                    BS_RAFT_CC_ADD_LEARNER, 4),
                     0);
    fx_deliver(net);
    ck_assert_int_eq(fx_propose(net, 1, "b"), 0);
    fx_deliver(net);
    uint64_t idx = compact_applied(net, 1, "img4");
    ck_assert(fx_conf_has_learner(&fx_node(net, 1)->conf, 4));
    fx_heal(net);
    for (int k = 0; k < 10 && fx_node(net, 4)->n_snaps_installed == 0; k++)
        fx_tick_deliver(net, 1);
    struct fx_node *n4 = fx_node(net, 4);
    ck_assert_int_eq(n4->n_snaps_installed, 1);
    ck_assert_uint_eq(n4->snap_index, idx);
    ck_assert_mem_eq(n4->last_snap.data, "img4", 4);
    bs_raft_conf_state(r4, &cs);
    ck_assert(bs_raft_conf_state_equal(&cs, &n4->last_snap.meta.conf));
    ck_assert(fx_conf_has_learner(&cs, 4));
    ck_assert(bs_raft_is_learner(r4));
    ck_assert_uint_eq(bs_raft_term(r4), bs_raft_term(fx_r(net, 1)));
    ck_assert_int_eq(fx_propose(net, 1, "c"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, 4, "c"));
    ck_assert(!fx_applied_has(net, 4, "b")); /* inside the snapshot */
    fx_free(net);
}
END_TEST

/* A SNAP message with conf voters {1,2,3}, learner {4}, image "img". */
static struct bs_raft_msg snap_msg(uint64_t from, uint64_t to, uint64_t term,
                                   uint64_t index, uint64_t snap_term)
{
    struct bs_raft_msg m = fx_msg(BS_RAFT_MSG_SNAP, from, to, term);
    m.snapshot.meta.index = index;
    m.snapshot.meta.term = snap_term;
    struct bs_raft_conf_state *cs = &m.snapshot.meta.conf;
    cs->voters[0] = 1;
    cs->voters[1] = 2;
    cs->voters[2] = 3;
    cs->n_voters = 3;
    cs->learners[0] = 4;
    cs->n_learners = 1;
    m.snapshot.data = (uint8_t *)"img";
    m.snapshot.len = 3;
    return m;
}

/* Installing a snapshot resets the log to it: last index and its term,
 * commit, applied, and the configuration all come from the meta. */
START_TEST(test_snapshot_restores_state)
{
    struct fx_net *net = fx_new_default(3);
    struct bs_raft_msg m = snap_msg(1, 2, 3, 10, 3);
    fx_step(net, &m);
    fx_collect(net);
    struct fx_node *n2 = fx_node(net, 2);
    struct bs_raft *r2 = n2->r;
    ck_assert_int_eq(n2->n_snaps_installed, 1);
    ck_assert_uint_eq(bs_raft_last_index(r2), 10);
    uint64_t t = 0;
    ck_assert_int_eq(bs_raft_log_term(r2, 10, &t), 0);
    ck_assert_uint_eq(t, 3);
    ck_assert_uint_eq(bs_raft_committed(r2), 10);
    ck_assert_uint_eq(bs_raft_applied(r2), 10);
    ck_assert_uint_eq(bs_raft_term(r2), 3);
    ck_assert_uint_eq(bs_raft_lead(r2), 1);
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(r2, &cs);
    ck_assert(bs_raft_conf_state_equal(&cs, &m.snapshot.meta.conf));
    const struct bs_raft_msg *resp =
        fx_queued_msg(net, BS_RAFT_MSG_APP_RESP, 2, 1, 0);
    ck_assert_ptr_nonnull(resp);
    ck_assert(!resp->reject);
    ck_assert_uint_eq(resp->index, 10);
    fx_free(net);
}
END_TEST

/* A snapshot no newer than the follower's commit index is ignored. */
START_TEST(test_stale_snapshot_ignored)
{
    struct fx_net *net = fx_new_default(3);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    fx_deliver(net);
    struct bs_raft *r2 = fx_r(net, 2);
    uint64_t commit = bs_raft_committed(r2), last = bs_raft_last_index(r2);
    struct bs_raft_msg m =
        snap_msg(1, 2, bs_raft_term(r2), commit, bs_raft_term(r2));
    fx_step(net, &m);
    fx_collect(net);
    ck_assert_int_eq(fx_node(net, 2)->n_snaps_installed, 0);
    ck_assert_uint_eq(bs_raft_committed(r2), commit);
    ck_assert_uint_eq(bs_raft_last_index(r2), last);
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(r2, &cs);
    ck_assert_uint_eq(cs.n_learners, 0); /* the snapshot's conf was not used */
    fx_free(net);
}
END_TEST

/* Thesis figure 5.3: if the follower already holds the snapshot's last
 * entry (same index and term), it keeps its log and only commits up to
 * the snapshot index. */
START_TEST(test_snapshot_of_known_entry_fast_forwards)
{
    struct bs_raft_config c;
    fx_config(&c);
    struct fx_net *net = fx_new(3, 0, &c);
    const uint64_t terms[] = {2, 2, 2};
    fx_preload(net, 2, terms, 3, 2, 1);
    struct bs_raft_msg m = snap_msg(1, 2, 2, 3, 2);
    fx_step(net, &m);
    fx_collect(net);
    struct bs_raft *r2 = fx_r(net, 2);
    ck_assert_int_eq(fx_node(net, 2)->n_snaps_installed, 0);
    ck_assert_uint_eq(bs_raft_last_index(r2), 4);
    ck_assert_uint_eq(bs_raft_committed(r2), 3);
    ck_assert(fx_applied_has(net, 2, "p3"));
    ck_assert(!fx_applied_has(net, 2, "p4"));
    fx_free(net);
}
END_TEST

static Suite *snapshot_suite(void)
{
    Suite *s = suite_create("raft_snapshot");
    FX_TCASE(s, snap, 30);
    tcase_add_test(snap, test_compacted_follower_gets_snapshot);
    tcase_add_test(snap, test_snapshot_failure_back_to_probe);
    tcase_add_test(snap, test_new_empty_replica_gets_snapshot);
    tcase_add_test(snap, test_snapshot_restores_state);
    tcase_add_test(snap, test_stale_snapshot_ignored);
    tcase_add_test(snap, test_snapshot_of_known_entry_fast_forwards);
    return s;
}

int main(void)
{
    return fx_run_suite(snapshot_suite());
}
