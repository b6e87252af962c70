/*
 * test_flow_control.c - how fast the leader feeds each follower, in the
 * spirit of etcd's raft_flow_control_test.go: the byte limit per append
 * (max_size_per_msg), the inflight window (max_inflight_msgs), the probe
 * and replicate progress states, the limit on uncommitted entries and the
 * limit on committed entries per ready.
 */
#include <string.h>

#include "fixture.h"

static uint8_t payload[100];

static int propose100(struct fx_net *net, uint64_t id, uint8_t tag)
{
    memset(payload, tag, sizeof(payload));
    return bs_raft_propose(fx_r(net, id), payload, sizeof(payload));
}

static uint64_t size100(void)
{
    struct bs_raft_entry e;
    memset(&e, 0, sizeof(e));
    e.len = sizeof(payload);
    e.data = payload;
    return bs_raft_entry_size(&e);
}

struct app_watch {
    uint64_t to;
    uint64_t max_bytes;
    size_t apps_with_entries;
    size_t apps;
    size_t max_n;
    bool over_limit;
};

static int watch_apps(void *arg, const struct bs_raft_msg *m)
{
    struct app_watch *w = arg;
    if (m->type != BS_RAFT_MSG_APP || m->to != w->to)
        return FX_PASS;
    w->apps++;
    if (m->n_entries)
        w->apps_with_entries++;
    if (m->n_entries > w->max_n)
        w->max_n = m->n_entries;
    uint64_t bytes = 0;
    for (size_t i = 0; i < m->n_entries; i++)
        bytes += bs_raft_entry_size(&m->entries[i]);
    if (m->n_entries > 1 && bytes > w->max_bytes)
        w->over_limit = true;
    return FX_PASS;
}

/* A lagging follower is fed with appends of at most max_size_per_msg bytes
 * (at least one entry each); 0 means one entry per append. */
START_TEST(test_max_size_per_msg)
{
    for (int mode = 0; mode < 2; mode++) {
        struct bs_raft_config c;
        fx_config(&c);
        c.max_size_per_msg = mode == 0 ? 3 * size100() : 0;
        struct fx_net *net = fx_new(3, 0, &c);
        fx_elect(net, 1);
        fx_cut(net, 1, 2);
        for (int i = 0; i < 20; i++)
            ck_assert_int_eq(propose100(net, 1, (uint8_t)i), 0);
        fx_deliver(net);
        fx_heal(net);
        struct app_watch w = {.to = 2,
                              .max_bytes = mode == 0 ? 3 * size100() : 0};
        fx_set_filter(net, watch_apps, &w);
        uint64_t last = bs_raft_last_index(fx_r(net, 1));
        for (int k = 0; k < 50 && bs_raft_last_index(fx_r(net, 2)) < last; k++)
            fx_tick_deliver(net, 1);
        ck_assert_uint_eq(bs_raft_last_index(fx_r(net, 2)), last);
        ck_assert_uint_eq(fx_applied_data(net, 2), 20);
        ck_assert_msg(!w.over_limit, "an append exceeded max_size_per_msg");
        ck_assert_uint_eq(w.max_n, mode == 0 ? 3 : 1);
        fx_free(net);
    }
}
END_TEST

/* The inflight window: with max_inflight_msgs = 3 and a follower whose
 * acknowledgements are held, the leader sends 3 appends and then pauses
 * that follower (not the others); once the acknowledgements arrive it
 * resumes and the follower catches up. */
START_TEST(test_inflight_window_pauses_until_acks)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.max_inflight_msgs = 3;
    c.max_size_per_msg = 0;
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    ck_assert_int_eq(fx_progress(net, 1, 2).state, 1); /* replicate */
    uint64_t base = bs_raft_last_index(fx_r(net, 2));
    struct app_watch w = {.to = 2, .max_bytes = 0};
    fx_set_filter(net, watch_apps, &w);
    fx_link(net, 2, 1, FX_HOLD);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(propose100(net, 1, (uint8_t)i), 0);
        fx_deliver(net);
    }
    ck_assert_uint_eq(w.apps_with_entries, 3);
    ck_assert_uint_eq(bs_raft_last_index(fx_r(net, 2)), base + 3);
    ck_assert_uint_eq(fx_applied_data(net, 3), 10); /* 3 is not paused */
    fx_link(net, 2, 1, FX_PASS);
    fx_deliver(net);
    ck_assert_uint_eq(bs_raft_last_index(fx_r(net, 2)), base + 10);
    ck_assert_uint_ge(w.apps_with_entries, 10);
    fx_tick_deliver(net, 2);
    ck_assert_uint_eq(fx_applied_data(net, 2), 10);
    fx_free(net);
}
END_TEST

/* The window moves forward with acknowledgements: releasing one held
 * acknowledgement of index i frees the slots up to i, so exactly as many
 * new appends go out. */
START_TEST(test_inflight_window_moves_forward)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.max_inflight_msgs = 3;
    c.max_size_per_msg = 0;
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    uint64_t base = bs_raft_last_index(fx_r(net, 2));
    struct app_watch w = {.to = 2, .max_bytes = 0};
    fx_set_filter(net, watch_apps, &w);
    fx_link(net, 2, 1, FX_HOLD);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(propose100(net, 1, (uint8_t)i), 0);
        fx_deliver(net);
    }
    ck_assert_uint_eq(w.apps_with_entries, 3);
    /* Deliver only the held acknowledgement of base+2: the two first
     * slots are freed, two more appends go out. */
    const struct bs_raft_msg *a = NULL;
    for (size_t i = 0;
         (a = fx_queued_msg(net, BS_RAFT_MSG_APP_RESP, 2, 1, i)) != NULL; i++)
        if (!a->reject && a->index == base + 2)
            break;
    ck_assert_ptr_nonnull(a);
    struct bs_raft_msg ack;
    ck_assert_int_eq(bs_raft_msg_copy(&ack, a), 0);
    fx_step(net, &ack);
    bs_raft_msg_free(&ack);
    fx_deliver(net);
    ck_assert_uint_eq(w.apps_with_entries, 5);
    ck_assert_uint_eq(fx_progress(net, 1, 2).match, base + 2);
    fx_free(net);
}
END_TEST

static int hold_app_resp(void *arg, const struct bs_raft_msg *m)
{
    (void)arg;
    return m->type == BS_RAFT_MSG_APP_RESP ? FX_HOLD : FX_PASS;
}

/* Progress states: a new leader probes every follower; the first accepted
 * append moves it to replicate; an unreachable report moves it back to
 * probe, where the leader sends one append and waits for its answer. */
START_TEST(test_probe_replicate_transitions)
{
    struct fx_net *net = fx_new_default(3);
    fx_set_filter(net, hold_app_resp, NULL);
    bs_raft_campaign(fx_r(net, 1));
    fx_deliver(net);
    ck_assert_int_eq(bs_raft_role(fx_r(net, 1)), BS_RAFT_LEADER);
    struct bs_raft_progress_info p = fx_progress(net, 1, 2);
    ck_assert_int_eq(p.state, 0); /* probe */
    ck_assert_uint_eq(p.match, 0);
    fx_set_filter(net, NULL, NULL);
    fx_deliver(net);
    p = fx_progress(net, 1, 2);
    ck_assert_int_eq(p.state, 1); /* replicate */
    uint64_t last = bs_raft_last_index(fx_r(net, 1));
    ck_assert_uint_eq(p.match, last);
    ck_assert_uint_eq(p.next, last + 1);
    ck_assert(!p.learner);

    bs_raft_report_unreachable(fx_r(net, 1), 2);
    p = fx_progress(net, 1, 2);
    ck_assert_int_eq(p.state, 0);
    ck_assert_uint_eq(p.next, p.match + 1);

    struct app_watch w = {.to = 2, .max_bytes = 0};
    fx_set_filter(net, watch_apps, &w);
    fx_link(net, 2, 1, FX_HOLD);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fx_propose(net, 1, "x"), 0);
        fx_deliver(net);
    }
    ck_assert_uint_eq(w.apps_with_entries, 1);
    fx_link(net, 2, 1, FX_PASS);
    fx_deliver(net);
    p = fx_progress(net, 1, 2);
    ck_assert_int_eq(p.state, 1);
    ck_assert_uint_eq(p.match, bs_raft_last_index(fx_r(net, 1)));
    fx_free(net);
}
END_TEST

/* A rejected append moves the probe back (to the follower's hint), and the
 * follower is replicated to once an append is accepted. */
START_TEST(test_reject_backs_off_next)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.pre_vote = false;
    c.check_quorum = false;
    struct fx_net *net = fx_new(3, 0, &c);
    const uint64_t terms[] = {2, 2, 2};
    fx_preload(net, 1, terms, 3, 3, 1);
    fx_preload(net, 2, terms, 3, 3, 1);
    fx_preload(net, 3, NULL, 0, 3, 1);
    fx_set_filter(net, hold_app_resp, NULL);
    fx_elect(net, 1);
    /* Release only 3's rejection. */
    const struct bs_raft_msg *rej =
        fx_queued_msg(net, BS_RAFT_MSG_APP_RESP, 3, 1, 0);
    ck_assert_ptr_nonnull(rej);
    ck_assert(rej->reject);
    struct bs_raft_msg m;
    ck_assert_int_eq(bs_raft_msg_copy(&m, rej), 0);
    fx_step(net, &m);
    bs_raft_msg_free(&m);
    struct bs_raft_progress_info p = fx_progress(net, 1, 3);
    ck_assert_int_eq(p.state, 0);
    ck_assert_uint_le(p.next, 2);
    fx_set_filter(net, NULL, NULL);
    fx_deliver(net);
    p = fx_progress(net, 1, 3);
    ck_assert_int_eq(p.state, 1);
    ck_assert_uint_eq(p.match, bs_raft_last_index(fx_r(net, 1)));
    fx_free(net);
}
END_TEST

/* max_uncommitted_entries_size: a leader that cannot commit refuses new
 * proposals with BS_ETOOBIG once its uncommitted tail reaches the limit,
 * and accepts them again once the tail commits. */
START_TEST(test_max_uncommitted_size)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.max_uncommitted_entries_size = 10 * size100();
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    fx_cut(net, 1, 2);
    fx_cut(net, 1, 3);
    int accepted = 0, refused = 0;
    for (int i = 0; i < 40; i++) {
        int rc = propose100(net, 1, (uint8_t)i);
        if (rc == 0)
            accepted++;
        else {
            ck_assert_int_eq(rc, BS_ETOOBIG);
            refused++;
        }
        fx_deliver(net);
    }
    ck_assert_int_ge(accepted, 5);
    ck_assert_int_le(accepted, 12);
    ck_assert_int_eq(accepted + refused, 40);
    fx_heal(net);
    fx_tick_deliver(net, 3);
    ck_assert_uint_eq(fx_applied_data(net, 1), (size_t)accepted);
    ck_assert_int_eq(propose100(net, 1, 99), 0);
    fx_deliver(net);
    ck_assert_uint_eq(fx_applied_data(net, 2), (size_t)accepted + 1);
    fx_free(net);
}
END_TEST

static uint64_t committed_limit;
static bool committed_over;
static size_t committed_max_n;

static void watch_committed(void *arg, uint64_t id,
                            const struct bs_raft_ready *rd)
{
    (void)arg;
    (void)id;
    uint64_t bytes = 0;
    for (size_t i = 0; i < rd->n_committed; i++)
        bytes += bs_raft_entry_size(&rd->committed[i]);
    if (rd->n_committed > 1 && bytes > committed_limit)
        committed_over = true;
    if (rd->n_committed > committed_max_n)
        committed_max_n = rd->n_committed;
}

/* max_committed_size_per_ready bounds the committed entries of one ready
 * (at least one entry each); the rest come in later readies. */
START_TEST(test_max_committed_size_per_ready)
{
    struct bs_raft_config c;
    fx_config(&c);
    committed_limit = 3 * size100();
    c.max_committed_size_per_ready = committed_limit;
    struct fx_net *net = fx_new(3, 0, &c);
    fx_elect(net, 1);
    fx_cut(net, 1, 3);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(propose100(net, 1, (uint8_t)i), 0);
    committed_over = false;
    committed_max_n = 0;
    net->on_ready = watch_committed;
    fx_deliver(net);
    fx_heal(net);
    fx_tick_deliver(net, 5);
    for (uint64_t id = 1; id <= 3; id++)
        ck_assert_uint_eq(fx_applied_data(net, id), 20);
    ck_assert(!committed_over);
    ck_assert_uint_eq(committed_max_n, 3);
    fx_free(net);
}
END_TEST

static Suite *flow_suite(void)
{
    Suite *s = suite_create("raft_flow_control");
    FX_TCASE(s, flow, 30);
    tcase_add_test(flow, test_max_size_per_msg);
    tcase_add_test(flow, test_inflight_window_pauses_until_acks);
    tcase_add_test(flow, test_inflight_window_moves_forward);
    tcase_add_test(flow, test_probe_replicate_transitions);
    tcase_add_test(flow, test_reject_backs_off_next);
    tcase_add_test(flow, test_max_uncommitted_size);
    tcase_add_test(flow, test_max_committed_size_per_ready);
    return s;
}

int main(void)
{
    return fx_run_suite(flow_suite());
}
