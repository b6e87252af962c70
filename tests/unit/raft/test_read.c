/*
 * test_read.c - linearizable reads without log entries (thesis 6.4):
 * ReadIndex confirmed by a heartbeat round with a quorum, batching of many
 * reads into one round, forwarding from followers, a new leader waiting
 * for an entry of its term, and leader-lease reads (6.4.1), which need
 * check-quorum and must stop when the lease runs out.
 */
#include <string.h>

#include "fixture.h"

static void setup_leader(struct fx_net **out, const struct bs_raft_config *c)
{
    struct fx_net *net = fx_new(3, 0, c);
    if (c && c->read_only_option == BS_RAFT_READ_LEASE_BASED) {
        /* raft.h: in lease mode a node refuses votes for election_tick
         * ticks after it is created (a lease may survive its restart). */
        for (int k = 0; k < c->election_tick; k++) {
            fx_tick(net, 2);
            fx_tick(net, 3);
        }
        fx_tick_deliver(net, 1);
    }
    fx_elect(net, 1);
    ck_assert_int_eq(fx_propose(net, 1, "a"), 0);
    fx_deliver(net);
    if (c && c->read_only_option == BS_RAFT_READ_LEASE_BASED) {
        /* The lease is measured from a heartbeat round a quorum
         * acknowledged; run one. */
        fx_tick_deliver(net, c->heartbeat_tick);
    }
    *out = net;
}

/* Thesis 6.4 step 3: the leader answers a read only after a round of
 * heartbeats acknowledged by a quorum; the read index is its commit index
 * when the read arrived. An isolated leader does not answer; once a
 * follower can hear it again the read completes. */
static void read_needs_quorum(uint32_t faults)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.faults = faults;
    struct fx_net *net;
    setup_leader(&net, &c);
    uint64_t commit = bs_raft_committed(fx_r(net, 1));
    fx_isolate(net, 1);
    ck_assert_int_eq(bs_raft_read_index(fx_r(net, 1), 100), 0);
    fx_deliver(net);
    for (int k = 0; k < 3; k++) {
        fx_tick(net, 1);
        fx_deliver(net);
    }
    if (faults) {
        ck_assert(fx_read_of(net, 1, 100, NULL));
        fx_free(net);
        return;
    }
    ck_assert_msg(!fx_read_of(net, 1, 100, NULL),
                  "read answered without a quorum");
    fx_link(net, 1, 2, FX_PASS);
    fx_link(net, 2, 1, FX_PASS);
    for (int k = 0; k < 3 && !fx_read_of(net, 1, 100, NULL); k++) {
        fx_tick(net, 1);
        fx_deliver(net);
    }
    uint64_t idx = 0;
    ck_assert_msg(fx_read_of(net, 1, 100, &idx),
                  "read not answered after the partition healed");
    ck_assert_uint_eq(idx, commit);
    fx_free(net);
}

START_TEST(test_read_index_needs_quorum_round)
{
    read_needs_quorum(0);
}
END_TEST

/* The check above can fail: with BS_RAFT_FAULT_STALE_READ the isolated
 * leader answers. */
START_TEST(test_stale_read_fault_detected)
{
    read_needs_quorum(BS_RAFT_FAULT_STALE_READ);
}
END_TEST

/* Keeps heartbeat responses queued: read rounds cannot complete. */
static int hold_hb_resp(void *arg, const struct bs_raft_msg *m)
{
    (void)arg;
    return m->type == BS_RAFT_MSG_HEARTBEAT_RESP ? FX_HOLD : FX_PASS;
}

/* Thesis 6.4: many reads share one heartbeat round. Ten reads issued
 * together cost at most two rounds of heartbeats (one to each follower per
 * round), not ten, and all are answered with the commit index. */
START_TEST(test_read_index_batched)
{
    struct fx_net *net;
    setup_leader(&net, NULL);
    uint64_t commit = bs_raft_committed(fx_r(net, 1));
    uint64_t hb0 = net->sent[BS_RAFT_MSG_HEARTBEAT];
    for (uint64_t ctx = 1; ctx <= 10; ctx++)
        ck_assert_int_eq(bs_raft_read_index(fx_r(net, 1), ctx), 0);
    fx_deliver(net);
    uint64_t hbs = net->sent[BS_RAFT_MSG_HEARTBEAT] - hb0;
    for (uint64_t ctx = 1; ctx <= 10; ctx++) {
        uint64_t idx = 0;
        ck_assert_msg(fx_read_of(net, 1, ctx, &idx), "read %llu missing",
                      (unsigned long long)ctx);
        ck_assert_uint_eq(idx, commit);
    }
    ck_assert_uint_eq(fx_node(net, 1)->n_reads, 10);
    ck_assert_msg(hbs >= 2 && hbs <= 4,
                  "%llu heartbeats for 10 reads: not batched",
                  (unsigned long long)hbs);
    fx_free(net);
}
END_TEST

/* A read is never answered with a commit index older than the one the
 * leader had when the read arrived: read 1 is issued at commit c1 and its
 * round is held; a write then commits c2 > c1; read 2 is issued at c2.
 * Whatever rounds the core batches them into, read 2 must get >= c2. */
START_TEST(test_read_index_not_older_than_request)
{
    struct fx_net *net;
    setup_leader(&net, NULL);
    struct bs_raft *r1 = fx_r(net, 1);
    uint64_t c1 = bs_raft_committed(r1);
    fx_set_filter(net, hold_hb_resp, NULL);
    ck_assert_int_eq(bs_raft_read_index(r1, 1), 0);
    fx_deliver(net);
    ck_assert_int_eq(fx_propose(net, 1, "w"), 0);
    fx_deliver(net);
    uint64_t c2 = bs_raft_committed(r1);
    ck_assert_uint_gt(c2, c1);
    ck_assert(!fx_read_of(net, 1, 1, NULL));
    ck_assert_int_eq(bs_raft_read_index(r1, 2), 0);
    fx_deliver(net);
    fx_set_filter(net, NULL, NULL);
    fx_deliver(net);
    for (int k = 0; k < 3 && !fx_read_of(net, 1, 2, NULL); k++) {
        fx_tick(net, 1);
        fx_deliver(net);
    }
    uint64_t i1 = 0, i2 = 0;
    ck_assert(fx_read_of(net, 1, 1, &i1));
    ck_assert(fx_read_of(net, 1, 2, &i2));
    ck_assert_uint_ge(i1, c1);
    ck_assert_msg(i2 >= c2, "read 2 answered with %llu < its commit %llu",
                  (unsigned long long)i2, (unsigned long long)c2);
    fx_free(net);
}
END_TEST

static uint64_t allowed_round;

/* Holds heartbeat responses except those of round allowed_round (all when
 * it is UINT64_MAX). */
static int hold_hb_resp_except(void *arg, const struct bs_raft_msg *m)
{
    (void)arg;
    if (m->type != BS_RAFT_MSG_HEARTBEAT_RESP)
        return FX_PASS;
    return allowed_round == UINT64_MAX || m->ctx == allowed_round ? FX_PASS
                                                                  : FX_HOLD;
}

/* Thesis 6.4 step 3: a read is confirmed only by a heartbeat round sent
 * after the read arrived. Read 2 arrives while round 1 (sent for read 1)
 * is in flight; round 1's acknowledgements confirm read 1 but must not
 * confirm read 2: a newer leader could have been elected between round 1
 * and read 2. */
START_TEST(test_read_needs_round_started_after_it)
{
    struct fx_net *net;
    setup_leader(&net, NULL);
    struct bs_raft *r1 = fx_r(net, 1);
    allowed_round = 0;
    fx_set_filter(net, hold_hb_resp_except, NULL);
    ck_assert_int_eq(bs_raft_read_index(r1, 1), 0);
    fx_deliver(net);
    const struct bs_raft_msg *hb =
        fx_queued_msg(net, BS_RAFT_MSG_HEARTBEAT_RESP, 2, 1, 0);
    ck_assert_ptr_nonnull(hb);
    uint64_t round1 = hb->ctx;
    ck_assert_int_eq(bs_raft_read_index(r1, 2), 0);
    fx_deliver(net);
    allowed_round = round1;
    fx_deliver(net);
    ck_assert(fx_read_of(net, 1, 1, NULL));
    ck_assert_msg(!fx_read_of(net, 1, 2, NULL),
                  "read 2 confirmed by a round sent before it arrived");
    allowed_round = UINT64_MAX;
    fx_deliver(net);
    for (int k = 0; k < 3 && !fx_read_of(net, 1, 2, NULL); k++)
        fx_tick_deliver(net, 1);
    ck_assert(fx_read_of(net, 1, 2, NULL));
    fx_free(net);
}
END_TEST

/* A follower's ReadIndex is forwarded to the leader and answered with the
 * leader's commit index, which is at least the follower's. Without a known
 * leader a read is dropped. */
START_TEST(test_follower_read_index)
{
    struct fx_net *net = fx_new_default(3);
    ck_assert_int_eq(bs_raft_read_index(fx_r(net, 2), 5), BS_EDROPPED);
    fx_free(net);

    setup_leader(&net, NULL);
    uint64_t fc = bs_raft_committed(fx_r(net, 2));
    ck_assert_int_eq(bs_raft_read_index(fx_r(net, 2), 77), 0);
    fx_deliver(net);
    uint64_t idx = 0;
    ck_assert(fx_read_of(net, 2, 77, &idx));
    ck_assert_uint_eq(idx, bs_raft_committed(fx_r(net, 1)));
    ck_assert_uint_ge(idx, fc);
    ck_assert(!fx_read_of(net, 1, 77, NULL));
    ck_assert_uint_ge(net->delivered[BS_RAFT_MSG_READ_INDEX], 1);
    ck_assert_uint_ge(net->delivered[BS_RAFT_MSG_READ_INDEX_RESP], 1);
    fx_free(net);
}
END_TEST

static int hold_app_from_2(void *arg, const struct bs_raft_msg *m)
{
    (void)arg;
    return m->type == BS_RAFT_MSG_APP && m->from == 2 ? FX_HOLD : FX_PASS;
}

/* Thesis 6.4 step 1: a new leader does not know the commit index until it
 * commits an entry of its own term, so it serves no read before that; the
 * read waits and is answered once the entry commits. */
START_TEST(test_new_leader_waits_for_its_term)
{
    struct bs_raft_config c;
    fx_config(&c);
    c.pre_vote = false;
    c.check_quorum = false;
    struct fx_net *net;
    setup_leader(&net, &c);
    fx_set_filter(net, hold_app_from_2, NULL);
    fx_elect(net, 2);
    struct bs_raft *r2 = fx_r(net, 2);
    uint64_t own = bs_raft_last_index(r2);
    ck_assert_uint_lt(bs_raft_committed(r2), own);
    ck_assert_int_eq(bs_raft_read_index(r2, 55), 0);
    fx_deliver(net);
    ck_assert_msg(!fx_read_of(net, 2, 55, NULL),
                  "read served before the leader committed in its term");
    fx_set_filter(net, NULL, NULL);
    fx_deliver(net);
    for (int k = 0; k < 3 && !fx_read_of(net, 2, 55, NULL); k++) {
        fx_tick(net, 2);
        fx_deliver(net);
    }
    uint64_t idx = 0;
    ck_assert(fx_read_of(net, 2, 55, &idx));
    ck_assert_uint_ge(idx, own);
    fx_free(net);
}
END_TEST

static void cfg_lease(struct bs_raft_config *c)
{
    fx_config(c);
    c->read_only_option = BS_RAFT_READ_LEASE_BASED;
    c->check_quorum = true;
    c->lease_ticks = 4;
}

/* Thesis 6.4.1: within its lease the leader answers a read at once, with
 * no heartbeat round. */
START_TEST(test_lease_read_without_round)
{
    struct bs_raft_config c;
    cfg_lease(&c);
    struct fx_net *net;
    setup_leader(&net, &c);
    struct bs_raft *r1 = fx_r(net, 1);
    ck_assert(bs_raft_lease_valid(r1));
    ck_assert(!bs_raft_lease_valid(fx_r(net, 2)));
    fx_clear_queue(net);
    ck_assert_int_eq(bs_raft_read_index(r1, 9), 0);
    fx_collect(net);
    uint64_t idx = 0;
    ck_assert(fx_read_of(net, 1, 9, &idx));
    ck_assert_uint_eq(idx, bs_raft_committed(r1));
    ck_assert_uint_eq(fx_queued(net, BS_RAFT_MSG_HEARTBEAT, 1, 0), 0);
    /* A follower's lease read goes through the leader. */
    ck_assert_int_eq(bs_raft_read_index(fx_r(net, 3), 10), 0);
    fx_deliver(net);
    ck_assert(fx_read_of(net, 3, 10, &idx));
    ck_assert_uint_eq(idx, bs_raft_committed(r1));
    fx_free(net);
}
END_TEST

/* Thesis 6.4.1: a leader cut from the cluster keeps its lease for at most
 * lease_ticks; no other node can be elected meanwhile; once the lease has
 * run out the stale leader answers no lease read, even after the rest of
 * the cluster elected a new leader and committed a write. */
START_TEST(test_stale_leader_cannot_serve_lease_read)
{
    struct bs_raft_config c;
    cfg_lease(&c);
    struct fx_net *net;
    setup_leader(&net, &c);
    struct bs_raft *r1 = fx_r(net, 1);
    fx_isolate(net, 1);
    fx_tick(net, 1);
    ck_assert(bs_raft_lease_valid(r1));
    for (int k = 1; k < c.lease_ticks; k++) {
        fx_tick(net, 2);
        fx_tick(net, 3);
        fx_deliver(net);
        ck_assert_uint_eq(fx_leader(net), 1); /* nobody else yet */
    }
    for (int k = 1; k <= c.lease_ticks; k++)
        fx_tick(net, 1);
    ck_assert(!bs_raft_lease_valid(r1));
    int rc = bs_raft_read_index(r1, 5);
    ck_assert(rc == 0 || rc == BS_EDROPPED);
    fx_deliver(net);
    ck_assert_msg(!fx_read_of(net, 1, 5, NULL),
                  "stale leader served a read after its lease");
    /* The majority side elects a new leader and commits a write. */
    for (int k = 0; k < 6 * c.election_tick; k++) {
        fx_tick(net, 2);
        fx_tick(net, 3);
        fx_deliver(net);
        if (bs_raft_role(fx_r(net, 2)) == BS_RAFT_LEADER ||
            bs_raft_role(fx_r(net, 3)) == BS_RAFT_LEADER)
            break;
    }
    uint64_t l = bs_raft_role(fx_r(net, 2)) == BS_RAFT_LEADER ? 2 : 3;
    ck_assert_int_eq(bs_raft_role(fx_r(net, l)), BS_RAFT_LEADER);
    ck_assert_int_eq(fx_propose(net, l, "new"), 0);
    fx_deliver(net);
    ck_assert(fx_applied_has(net, l, "new"));
    rc = bs_raft_read_index(r1, 6);
    ck_assert(rc == 0 || rc == BS_EDROPPED);
    fx_deliver(net);
    ck_assert(!fx_read_of(net, 1, 5, NULL));
    ck_assert(!fx_read_of(net, 1, 6, NULL));
    ck_assert(!bs_raft_lease_valid(r1));
    fx_free(net);
}
END_TEST

/* Lease reads rely on check-quorum (the lease is the time a quorum was
 * last heard): the config is refused without it, and a lease as long as
 * the election timeout is refused too. */
START_TEST(test_lease_read_needs_check_quorum)
{
    struct bs_raft_mem_storage *ms = bs_raft_mem_storage_create();
    struct bs_raft_config c;
    cfg_lease(&c);
    c.id = 1;
    c.storage = bs_raft_mem_storage_iface(ms);
    c.check_quorum = false;
    struct bs_raft *r = NULL;
    char err[256] = "";
    ck_assert_int_eq(bs_raft_create(&c, &r, err), BS_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert(strlen(err) > 0);
    c.check_quorum = true;
    c.lease_ticks = c.election_tick;
    err[0] = 0;
    ck_assert_int_eq(bs_raft_create(&c, &r, err), BS_EINVAL);
    ck_assert(strlen(err) > 0);
    c.lease_ticks = c.election_tick - 1;
    ck_assert_int_eq(bs_raft_create(&c, &r, err), 0);
    bs_raft_destroy(r);
    bs_raft_mem_storage_destroy(ms);
}
END_TEST

static Suite *read_suite(void)
{
    Suite *s = suite_create("raft_read");
    FX_TCASE(s, read_index, 30);
    tcase_add_test(read_index, test_read_index_needs_quorum_round);
    tcase_add_test(read_index, test_stale_read_fault_detected);
    tcase_add_test(read_index, test_read_index_batched);
    tcase_add_test(read_index, test_read_index_not_older_than_request);
    tcase_add_test(read_index, test_read_needs_round_started_after_it);
    tcase_add_test(read_index, test_follower_read_index);
    tcase_add_test(read_index, test_new_leader_waits_for_its_term);
    FX_TCASE(s, lease, 30);
    tcase_add_test(lease, test_lease_read_without_round);
    tcase_add_test(lease, test_stale_leader_cannot_serve_lease_read);
    tcase_add_test(lease, test_lease_read_needs_check_quorum);
    return s;
}

int main(void)
{
    return fx_run_suite(read_suite());
}
