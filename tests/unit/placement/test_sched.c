/*
 * test_sched.c - unit tests of placement/sched.c.
 *
 * bs_pd_maintain: each edge it proposes (UP -> SUSPECT -> DOWN, UP ->
 * DOWN, back UP by heartbeat once a node is heard again, DRAINING and
 * empty -> REMOVED, operator timeout and operator to a node that is no
 * longer UP -> OP_CANCEL), and what it must not do (judge a node it has
 * no information about, bring a node back on a reset alone, mark a node
 * that just registered).
 *
 * bs_pd_schedule: each rule on a state built by committed commands
 * (replace, drain, repair, split by size and by sustained load, replica
 * and leader balance, racks), the limits (max_concurrent_moves against
 * operators in flight, cap, paused, ignore_limit) and determinism. The
 * convergence tests run the scheduler in a loop against the real apply:
 * each planned operator is created with OP_CREATE (so apply accepts every
 * plan) and then completed with the report a shard leader would send
 * (REPLICA_CHANGE with the operator's new replica, SHARD_LEADER), until
 * the scheduler has nothing left to ask.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define CAP 256

/* ----------------------------------------------------------- helpers */

static struct bs_pd_sched_config cfg_default(void)
{
    struct bs_pd_sched_config c;
    bs_pd_sched_config_default(&c);
    return c;
}

static void set_state(struct bs_pd_state *st, uint64_t *idx, uint64_t node,
                      uint8_t state, uint64_t now)
{
    struct bs_pd_cmd cmd = th_cmd_node_state(node, state, now);
    th_apply_ok(st, idx, &cmd, NULL);
}

/* Registers node id with rack label `rack` (NULL: no label). */
static void add_node(struct bs_pd_state *st, uint64_t *idx, uint64_t id,
                     const char *rack, uint64_t now)
{
    struct bs_pd_cmd cmd = th_cmd_register(id, now);
    if (rack)
        snprintf(cmd.u.register_node.node.labels[0].value,
                 sizeof(cmd.u.register_node.node.labels[0].value), "%s", rack);
    else
        cmd.u.register_node.node.n_labels = 0;
    th_apply_ok(st, idx, &cmd, NULL);
}

static uint64_t create_op(struct bs_pd_state *st, uint64_t *idx,
                          const struct bs_pd_op *op)
{
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_OP_CREATE};
    cmd.u.op = *op;
    struct bs_pd_result res;
    th_apply_ok(st, idx, &cmd, &res);
    return res.first_id;
}

/* Reports the replica on node as the shard's leader, one term later. */
static void set_leader(struct bs_pd_state *st, uint64_t *idx, uint64_t shard,
                       uint64_t node)
{
    struct bs_pd_cmd cmd = th_cmd_leader(st, shard, node);
    th_apply_ok(st, idx, &cmd, NULL);
}

/* Reports shard's replica on node `from` (0: none) replaced by a voter
 * rid on `to` (0: none). */
static void report_moved(struct bs_pd_state *st, uint64_t *idx, uint64_t shard,
                         uint64_t from, uint64_t to, uint64_t rid)
{
    struct bs_pd_cmd cmd = th_cmd_moved(st, shard, from, to, rid);
    th_apply_ok(st, idx, &cmd, NULL);
}

/* Replaces the replica of shard on node `from` (0: none) by a new voter
 * on `to` (0: none), with a freshly allocated id. */
static void swap_replica(struct bs_pd_state *st, uint64_t *idx, uint64_t shard,
                         uint64_t from, uint64_t to)
{
    uint64_t seq = to ? th_alloc(st, idx, BS_PD_ID_REPLICA, 1) : 0;
    report_moved(st, idx, shard, from, to, BS_ENG_REPLICA_ID(to, seq));
}

static uint64_t leader_node_of(const struct bs_pd_shard *s)
{
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (s->replicas[i].id == s->leader)
            return s->replicas[i].node_id;
    return 0;
}

/* Data replicas and data leaders on node. */
static uint32_t load_of(const struct bs_pd_state *st, uint64_t node)
{
    uint32_t n = 0;
    for (size_t i = 0; i < bs_pd_route_count(st); i++)
        n += bs_pd_shard_replica_on(bs_pd_route_at(st, i), node) != NULL;
    return n;
}

static uint32_t leaders_of(const struct bs_pd_state *st, uint64_t node)
{
    uint32_t n = 0;
    for (size_t i = 0; i < bs_pd_route_count(st); i++)
        n += leader_node_of(bs_pd_route_at(st, i)) == node;
    return n;
}

static const char *rack_of(const struct bs_pd_state *st, uint64_t node)
{
    return bs_pd_node_label(bs_pd_node_find(st, node), "rack");
}

/* Data shards with two replicas on one rack (the placement group may
 * have more voters than there are racks). */
static size_t rack_collisions(const struct bs_pd_state *st)
{
    size_t bad = 0;
    for (size_t i = 0; i < bs_pd_route_count(st); i++) {
        const struct bs_pd_shard *s = bs_pd_route_at(st, i);
        bool dup = false;
        for (uint32_t a = 0; a < s->n_replicas; a++)
            for (uint32_t b = 0; b < a; b++) {
                const char *x = rack_of(st, s->replicas[a].node_id);
                const char *y = rack_of(st, s->replicas[b].node_id);
                dup |= x && y && strcmp(x, y) == 0;
            }
        bad += dup;
    }
    return bad;
}

/* What every plan must be: at most one operator per shard, none on a
 * shard with an operator in flight, fields as OP_CREATE takes them. */
static void check_plan(const struct bs_pd_state *st, const struct bs_pd_op *ops,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct bs_pd_op *op = &ops[i];
        ck_assert_uint_eq(op->id, 0);
        ck_assert_ptr_nonnull(bs_pd_shard_find(st, op->shard_id));
        ck_assert_ptr_null(bs_pd_op_of_shard(st, op->shard_id));
        ck_assert_ptr_null(op->split_key);
        ck_assert_uint_eq(op->new_replica, 0);
        ck_assert_uint_eq(op->n_new_replicas, 0);
        for (size_t j = 0; j < i; j++)
            ck_assert_uint_ne(ops[j].shard_id, op->shard_id);
        if (op->kind == BS_PD_OP_MOVE)
            ck_assert(op->from_node || op->to_node);
        else if (op->kind == BS_PD_OP_LEADER)
            ck_assert_uint_ne(op->to_node, 0);
        else
            ck_assert_uint_eq(op->kind, BS_PD_OP_SPLIT);
    }
}

static size_t plan(const struct bs_pd_state *st,
                   const struct bs_pd_stats *stats,
                   const struct bs_pd_sched_config *cfg, uint64_t now,
                   bool ignore, struct bs_pd_op *out, size_t cap)
{
    size_t n = bs_pd_schedule(st, stats, cfg, now, ignore, out, cap);
    ck_assert_uint_le(n, cap);
    check_plan(st, out, n);
    return n;
}

static size_t count_kind(const struct bs_pd_op *ops, size_t n, uint8_t kind,
                         uint8_t reason)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ops[i].kind == kind && ops[i].reason == reason;
    return k;
}

/*
 * Executes operator id the way the shard leader would and reports it:
 * MOVE: the new replica (the id the operator reserved) joins as a voter
 * and the one on from_node leaves; if the leader left, the first
 * remaining voter reports leadership. LEADER: the replica on to_node
 * reports leadership. Asserts the report finished the operator.
 */
static void complete_op(struct bs_pd_state *st, uint64_t *idx, uint64_t id)
{
    const struct bs_pd_op *op = bs_pd_op_find(st, id);
    ck_assert_ptr_nonnull(op);
    uint64_t shard = op->shard_id, to = op->to_node;
    if (op->kind == BS_PD_OP_LEADER) {
        set_leader(st, idx, shard, to);
    } else {
        ck_assert_uint_eq(op->kind, BS_PD_OP_MOVE);
        report_moved(st, idx, shard, op->from_node, to, op->new_replica);
        const struct bs_pd_shard *s = bs_pd_shard_find(st, shard);
        if (s->leader == 0)
            set_leader(st, idx, shard, s->replicas[0].node_id);
    }
    ck_assert_ptr_null(bs_pd_op_find(st, id));
}

/* Plans, creates and completes operators until the scheduler asks for
 * nothing more; returns the rounds it took (fails past max_rounds). */
static int converge(struct bs_pd_state *st, uint64_t *idx,
                    const struct bs_pd_sched_config *cfg, int max_rounds)
{
    struct bs_pd_op ops[CAP];
    uint64_t ids[CAP];
    for (int round = 0; round < max_rounds; round++) {
        size_t n = plan(st, NULL, cfg, 5000, false, ops, CAP);
        if (n == 0)
            return round;
        size_t moves = 0;
        for (size_t i = 0; i < n; i++) {
            moves += ops[i].kind != BS_PD_OP_LEADER;
            ids[i] = create_op(st, idx, &ops[i]);
        }
        ck_assert_uint_le(moves, cfg->max_concurrent_moves);
        for (size_t i = 0; i < n; i++)
            complete_op(st, idx, ids[i]);
        ck_assert_uint_eq(bs_pd_op_count(st), 0);
        th_check(st);
    }
    ck_abort_msg("no convergence in %d rounds", max_rounds);
    return -1;
}

static struct bs_pd_heartbeat
hb_of(uint64_t node, const struct bs_pd_shard_stat *s, uint32_t n)
{
    struct bs_pd_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.node.node_id = node;
    hb.n_shards = n;
    hb.shards = s;
    return hb;
}

static void heard(struct bs_pd_stats *stats, uint64_t node, uint64_t now)
{
    struct bs_pd_heartbeat hb = hb_of(node, NULL, 0);
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, now, 0), 0);
}

/* ---------------------------------------------------------- maintain */

static int maintain(const struct bs_pd_state *st,
                    const struct bs_pd_stats *stats, uint64_t now,
                    struct bs_pd_cmd *cmd)
{
    struct bs_pd_sched_config cfg = cfg_default();
    return bs_pd_maintain(st, stats, &cfg, now, cmd);
}

static void expect_node_state(const struct bs_pd_cmd *cmd, uint64_t node,
                              uint8_t state, uint64_t now)
{
    ck_assert_uint_eq(cmd->type, BS_PD_CMD_UPDATE_NODE_STATE);
    ck_assert_uint_eq(cmd->u.node_state.node_id, node);
    ck_assert_msg(cmd->u.node_state.state == state, "state %s, want %s",
                  bs_pd_node_state_name(cmd->u.node_state.state),
                  bs_pd_node_state_name(state));
    ck_assert_uint_eq(cmd->u.node_state.now, now);
}

/* Asserts that cmd cancels operator op_id. */
static void expect_cancel(const struct bs_pd_cmd *cmd, uint64_t op_id)
{
    ck_assert_uint_eq(cmd->type, BS_PD_CMD_OP_CANCEL);
    ck_assert_uint_eq(cmd->u.op_cancel.op_id, op_id);
}

START_TEST(test_maintain_suspect_then_down)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_cmd cmd;
    bs_pd_stats_reset(stats, 1000);

    /* Exactly suspect_after of silence is not yet "past" it. */
    ck_assert_int_eq(maintain(st, stats, 4000, &cmd), 0);
    heard(stats, 2, 4000);
    heard(stats, 3, 4000);
    ck_assert_int_eq(maintain(st, stats, 4001, &cmd), 1);
    expect_node_state(&cmd, 1, BS_PD_NODE_SUSPECT, 4001);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_int_eq(maintain(st, stats, 4001, &cmd), 0);

    /* SUSPECT -> DOWN counts from the last time it was heard (the
     * reset), not from when it became SUSPECT. */
    heard(stats, 2, 31000);
    heard(stats, 3, 31000);
    ck_assert_int_eq(maintain(st, stats, 31000, &cmd), 0);
    ck_assert_int_eq(maintain(st, stats, 31001, &cmd), 1);
    expect_node_state(&cmd, 1, BS_PD_NODE_DOWN, 31001);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_uint_eq(bs_pd_node_find(st, 1)->state, BS_PD_NODE_DOWN);

    /* UP -> DOWN in one step when the leader missed the SUSPECT window. */
    heard(stats, 2, 61000);
    ck_assert_int_eq(maintain(st, stats, 61001, &cmd), 1);
    expect_node_state(&cmd, 3, BS_PD_NODE_DOWN, 61001);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_int_eq(maintain(st, stats, 61001, &cmd), 0);
    /* The replicated last_heartbeat (bootstrap's 1000) was never used:
     * node 2 stays UP although its last_heartbeat is ancient. */
    ck_assert_uint_eq(bs_pd_node_find(st, 2)->last_heartbeat, 1000);
    ck_assert_uint_eq(bs_pd_node_find(st, 2)->state, BS_PD_NODE_UP);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_maintain_no_information)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_cmd cmd;
    /* Never reset, never heard: nobody is judged. */
    ck_assert_int_eq(maintain(st, stats, 1u << 30, &cmd), 0);
    ck_assert_int_eq(maintain(st, NULL, 1u << 30, &cmd), 0);
    /* One node heard: only the others stay unjudged. */
    heard(stats, 2, 10);
    ck_assert_int_eq(maintain(st, stats, 1u << 30, &cmd), 1);
    expect_node_state(&cmd, 2, BS_PD_NODE_DOWN, 1u << 30);
    /* Not bootstrapped: nothing. */
    struct bs_pd_state *empty = bs_pd_state_create();
    ck_assert_int_eq(maintain(empty, stats, 1u << 30, &cmd), 0);
    bs_pd_state_destroy(empty);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_maintain_heard_again)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_cmd cmd;
    set_state(st, &idx, 1, BS_PD_NODE_DOWN, 5000);

    /* A reset alone (new leader) does not bring a node back. */
    bs_pd_stats_reset(stats, 6000);
    ck_assert_int_eq(maintain(st, stats, 6001, &cmd), 0);
    /* A heartbeat does... */
    heard(stats, 1, 7000);
    ck_assert_int_eq(maintain(st, stats, 7500, &cmd), 1);
    ck_assert_uint_eq(cmd.type, BS_PD_CMD_NODE_HEARTBEAT);
    ck_assert_uint_eq(cmd.u.heartbeat.node_id, 1);
    ck_assert_uint_eq(cmd.u.heartbeat.now, 7500);
    /* ...unless it is no longer fresh by the time the leader looks. */
    heard(stats, 2, 10001);
    heard(stats, 3, 10001);
    ck_assert_int_eq(maintain(st, stats, 10001, &cmd), 0);
    ck_assert_int_eq(maintain(st, stats, 7500, &cmd), 1);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_uint_eq(bs_pd_node_find(st, 1)->state, BS_PD_NODE_UP);
    ck_assert_int_eq(maintain(st, stats, 7500, &cmd), 0);

    /* SUSPECT too; and with a clock not past the recorded heartbeat
     * (which apply would refuse as stale forever), UPDATE_NODE_STATE up. */
    set_state(st, &idx, 1, BS_PD_NODE_SUSPECT, 7600);
    heard(stats, 1, 7400);
    ck_assert_int_eq(maintain(st, stats, 7500, &cmd), 1);
    expect_node_state(&cmd, 1, BS_PD_NODE_UP, 7500);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_uint_eq(bs_pd_node_find(st, 1)->state, BS_PD_NODE_UP);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_maintain_new_node_grace)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_cmd cmd;
    bs_pd_stats_reset(stats, 1000);
    add_node(st, &idx, 4, "r3", 100000);
    for (uint64_t n = 1; n <= 3; n++)
        heard(stats, n, 103000);
    /* Counted from its registration, not from the reset long before;
     * and a node that has not sent its first heartbeat yet (it is opening
     * its store) is not suspected: it goes down only once down_after
     * passes without one. */
    struct bs_pd_sched_config cfg = cfg_default();
    for (uint64_t n = 1; n <= 3; n++)
        heard(stats, n, 100000 + cfg.down_after_ms);
    ck_assert_int_eq(maintain(st, stats, 100010, &cmd), 0);
    ck_assert_int_eq(maintain(st, stats, 103001, &cmd), 0);
    ck_assert_int_eq(maintain(st, stats, 100000 + cfg.down_after_ms, &cmd), 0);
    ck_assert_int_eq(maintain(st, stats, 100001 + cfg.down_after_ms, &cmd), 1);
    expect_node_state(&cmd, 4, BS_PD_NODE_DOWN, 100001 + cfg.down_after_ms);
    /* Once it has sent one, the ordinary rule holds. */
    heard(stats, 4, 100500);
    for (uint64_t n = 1; n <= 3; n++)
        heard(stats, n, 103600);
    ck_assert_int_eq(maintain(st, stats, 103600, &cmd), 1);
    expect_node_state(&cmd, 4, BS_PD_NODE_SUSPECT, 103600);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_maintain_drained_node_removed)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(4, 4, 3, &idx);
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_cmd cmd;
    bs_pd_stats_reset(stats, 2000);
    add_node(st, &idx, 5, "r2", 2000);
    add_node(st, &idx, 6, "r0", 2000);

    /* An empty draining node goes. */
    set_state(st, &idx, 5, BS_PD_NODE_DRAINING, 2000);
    ck_assert_int_eq(maintain(st, stats, 2001, &cmd), 1);
    expect_node_state(&cmd, 5, BS_PD_NODE_REMOVED, 2001);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_int_eq(maintain(st, stats, 2001, &cmd), 0);

    /* One an operator is still moving a replica to: the operator is
     * cancelled first (its node is no longer UP), then the node goes. */
    struct bs_pd_op op = {.kind = BS_PD_OP_MOVE,
                          .reason = BS_PD_REASON_OPERATOR,
                          .shard_id = 1,
                          .to_node = 6,
                          .created_at = 2000};
    uint64_t op_id = create_op(st, &idx, &op);
    set_state(st, &idx, 6, BS_PD_NODE_DRAINING, 2000);
    ck_assert_int_eq(maintain(st, stats, 2001, &cmd), 1);
    expect_cancel(&cmd, op_id);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_int_eq(maintain(st, stats, 2001, &cmd), 1);
    expect_node_state(&cmd, 6, BS_PD_NODE_REMOVED, 2001);
    th_apply_ok(st, &idx, &cmd, NULL);

    /* A draining node that holds replicas stays until they are moved. */
    set_state(st, &idx, 4, BS_PD_NODE_DRAINING, 2000);
    ck_assert_int_eq(maintain(st, stats, 2001, &cmd), 0);
    struct bs_pd_sched_config cfg = cfg_default();
    converge(st, &idx, &cfg, 20);
    ck_assert_uint_eq(load_of(st, 4), 0);
    ck_assert_int_eq(maintain(st, stats, 2001, &cmd), 1);
    expect_node_state(&cmd, 4, BS_PD_NODE_REMOVED, 2001);
    th_apply_ok(st, &idx, &cmd, NULL);
    th_check(st);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_maintain_operator_timeout)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_cmd cmd;
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 2);
    uint64_t to = s->replicas[0].node_id == leader_node_of(s)
                      ? s->replicas[1].node_id
                      : s->replicas[0].node_id;
    struct bs_pd_op op = {.kind = BS_PD_OP_LEADER,
                          .reason = BS_PD_REASON_OPERATOR,
                          .shard_id = 2,
                          .to_node = to,
                          .created_at = 1000};
    uint64_t op_id = create_op(st, &idx, &op);
    bs_pd_stats_reset(stats, 600000);
    for (uint64_t n = 1; n <= 3; n++)
        heard(stats, n, 601000);
    ck_assert_int_eq(maintain(st, stats, 601000, &cmd), 0);
    /* A timeout of 0 disables it. */
    struct bs_pd_sched_config cfg = cfg_default();
    cfg.op_timeout_ms = 0;
    ck_assert_int_eq(bs_pd_maintain(st, stats, &cfg, 601001, &cmd), 0);
    ck_assert_int_eq(maintain(st, stats, 601001, &cmd), 1);
    expect_cancel(&cmd, op_id);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_uint_eq(bs_pd_op_count(st), 0);
    ck_assert_uint_eq(bs_pd_ops_cancelled(st), 1);
    ck_assert_int_eq(maintain(st, stats, 601001, &cmd), 0);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_maintain_operator_to_down_node)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(4, 4, 3, &idx);
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_cmd cmd;
    bs_pd_stats_reset(stats, 1000);
    /* Shard 1 sits on nodes 1, 2, 3: a move to node 4. */
    ck_assert_ptr_null(bs_pd_shard_replica_on(bs_pd_shard_find(st, 1), 4));
    struct bs_pd_op op = {.kind = BS_PD_OP_MOVE,
                          .reason = BS_PD_REASON_OPERATOR,
                          .shard_id = 1,
                          .from_node = 1,
                          .to_node = 4,
                          .created_at = 1000};
    uint64_t move_id = create_op(st, &idx, &op);
    ck_assert_int_eq(maintain(st, stats, 1500, &cmd), 0);
    set_state(st, &idx, 4, BS_PD_NODE_DOWN, 1500);
    ck_assert_int_eq(maintain(st, stats, 1500, &cmd), 1);
    expect_cancel(&cmd, move_id);

    /* Priority: a node heard again comes before the cancel. */
    heard(stats, 4, 1500);
    ck_assert_int_eq(maintain(st, stats, 1600, &cmd), 1);
    ck_assert_uint_eq(cmd.type, BS_PD_CMD_NODE_HEARTBEAT);
    th_apply_ok(st, &idx, &cmd, NULL);
    /* Back UP: the operator may go on. */
    ck_assert_int_eq(maintain(st, stats, 1600, &cmd), 0);

    /* A leader transfer to a SUSPECT node is cancelled too (the state,
     * not the stats, decides what is UP): a node never heard since the
     * reset, so that it is not "heard again" either. */
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 2);
    uint64_t to = 0;
    for (uint32_t i = 0; i < s->n_replicas && !to; i++)
        if (s->replicas[i].id != s->leader && s->replicas[i].node_id != 4)
            to = s->replicas[i].node_id;
    ck_assert_uint_ne(to, 0);
    op = (struct bs_pd_op){.kind = BS_PD_OP_LEADER,
                           .shard_id = 2,
                           .to_node = to,
                           .created_at = 1600};
    uint64_t lead_id = create_op(st, &idx, &op);
    set_state(st, &idx, to, BS_PD_NODE_SUSPECT, 1600);
    ck_assert_int_eq(maintain(st, stats, 1600, &cmd), 1);
    expect_cancel(&cmd, lead_id);
    ck_assert_ptr_nonnull(bs_pd_op_find(st, move_id));
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

/* ---------------------------------------------------------- schedule */

/* 4 nodes, 8 shards of 3 replicas, and node 2 DOWN: shard 0 and 6 of the
 * data shards have a replica to replace. */
static struct bs_pd_state *node2_down(uint64_t *idx)
{
    *idx = 0;
    struct bs_pd_state *st = th_bootstrap(4, 8, 3, idx);
    set_state(st, idx, 2, BS_PD_NODE_DOWN, 2000);
    return st;
}

START_TEST(test_replace_on_down_node)
{
    uint64_t idx;
    struct bs_pd_state *st = node2_down(&idx);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];

    size_t held = 0;
    for (size_t i = 0; i < bs_pd_shard_count(st); i++)
        held += bs_pd_shard_replica_on(bs_pd_shard_at(st, i), 2) != NULL;
    ck_assert_uint_eq(held, 7); /* shard 0 and 6 of the 8 data shards */

    size_t n = plan(st, NULL, &cfg, 3000, true, ops, CAP);
    ck_assert_uint_eq(n, held);
    for (size_t i = 0; i < n; i++) {
        const struct bs_pd_shard *s = bs_pd_shard_find(st, ops[i].shard_id);
        ck_assert_uint_eq(ops[i].kind, BS_PD_OP_MOVE);
        ck_assert_uint_eq(ops[i].reason, BS_PD_REASON_REPLACE);
        ck_assert_uint_eq(ops[i].from_node, 2);
        /* The one UP node without a replica, even though its rack (r1 for
         * node 4) collides with node 1's: better than no replacement. */
        ck_assert_uint_ne(ops[i].to_node, 2);
        ck_assert_ptr_null(bs_pd_shard_replica_on(s, ops[i].to_node));
        if (i > 0)
            ck_assert_uint_gt(ops[i].shard_id, ops[i - 1].shard_id);
    }
    ck_assert_uint_eq(ops[0].shard_id, 0); /* the placement group too */

    /* Within the limit: the first three. */
    size_t m = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_eq(m, 3);
    ck_assert_uint_eq(count_kind(ops, m, BS_PD_OP_MOVE, BS_PD_REASON_REPLACE),
                      3);

    converge(st, &idx, &cfg, 10);
    for (size_t i = 0; i < bs_pd_shard_count(st); i++) {
        const struct bs_pd_shard *s = bs_pd_shard_at(st, i);
        ck_assert_ptr_null(bs_pd_shard_replica_on(s, 2));
        ck_assert_uint_eq(s->n_replicas, 3);
    }
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_drain)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(4, 16, 3, &idx);
    ck_assert_uint_eq(leaders_of(st, 4), 4);
    set_state(st, &idx, 4, BS_PD_NODE_DRAINING, 2000);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];

    size_t n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    /* The three moves go to shards node 4 leads; the fourth shard it leads
     * gets a leader transfer instead (not limited). */
    ck_assert_uint_ge(n, 4);
    for (size_t i = 0; i < 3; i++) {
        const struct bs_pd_shard *s = bs_pd_shard_find(st, ops[i].shard_id);
        ck_assert_uint_eq(ops[i].kind, BS_PD_OP_MOVE);
        ck_assert_uint_eq(ops[i].reason, BS_PD_REASON_DRAIN);
        ck_assert_uint_eq(ops[i].from_node, 4);
        ck_assert_uint_eq(leader_node_of(s), 4);
        ck_assert_ptr_null(bs_pd_shard_replica_on(s, ops[i].to_node));
        ck_assert_uint_ne(ops[i].to_node, 4);
    }
    ck_assert_uint_eq(ops[3].kind, BS_PD_OP_LEADER);
    ck_assert_uint_eq(ops[3].reason, BS_PD_REASON_DRAIN);
    ck_assert_uint_eq(ops[3].from_node, 4);
    const struct bs_pd_shard *s3 = bs_pd_shard_find(st, ops[3].shard_id);
    ck_assert_uint_eq(leader_node_of(s3), 4);
    ck_assert_ptr_nonnull(bs_pd_shard_replica_on(s3, ops[3].to_node));
    for (size_t i = 4; i < n; i++)
        ck_assert_uint_eq(ops[i].kind, BS_PD_OP_LEADER);

    /* Everything moves off, onto the three others, which end with all 16
     * shards each; no shard lost a replica. */
    converge(st, &idx, &cfg, 20);
    ck_assert_uint_eq(load_of(st, 4), 0);
    ck_assert_uint_eq(leaders_of(st, 4), 0);
    for (uint64_t node = 1; node <= 3; node++)
        ck_assert_uint_eq(load_of(st, node), 16);
    for (size_t i = 0; i < bs_pd_shard_count(st); i++)
        ck_assert_uint_eq(bs_pd_shard_at(st, i)->n_replicas, 3);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_repair_too_few)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];
    swap_replica(st, &idx, 1, 3, 0); /* shard 1 on nodes 1, 2 only */
    size_t n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(ops[0].kind, BS_PD_OP_MOVE);
    ck_assert_uint_eq(ops[0].reason, BS_PD_REASON_REPAIR);
    ck_assert_uint_eq(ops[0].shard_id, 1);
    ck_assert_uint_eq(ops[0].from_node, 0);
    ck_assert_uint_eq(ops[0].to_node, 3);
    converge(st, &idx, &cfg, 10);
    ck_assert_uint_eq(bs_pd_shard_find(st, 1)->n_replicas, 3);

    /* No node to add to: nothing, not a refused operator. */
    set_state(st, &idx, 3, BS_PD_NODE_DOWN, 3000);
    swap_replica(st, &idx, 2, 3, 0);
    n = plan(st, NULL, &cfg, 3000, true, ops, CAP);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_ne(ops[i].shard_id, 2);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_repair_too_many)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(4, 4, 3, &idx);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];
    /* Shard 1 on nodes 1, 2, 3 (racks r1 r2 r0) plus 4 (r1): node 1 or 4
     * must go (rack), and node 4 now holds more replicas. */
    swap_replica(st, &idx, 1, 0, 4);
    ck_assert_uint_gt(load_of(st, 4), load_of(st, 1));
    size_t n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(ops[0].kind, BS_PD_OP_MOVE);
    ck_assert_uint_eq(ops[0].reason, BS_PD_REASON_REPAIR);
    ck_assert_uint_eq(ops[0].shard_id, 1);
    ck_assert_uint_eq(ops[0].from_node, 4);
    ck_assert_uint_eq(ops[0].to_node, 0);

    /* A replica on a DOWN node goes first, whatever the rest says. */
    set_state(st, &idx, 2, BS_PD_NODE_DOWN, 3000);
    n = plan(st, NULL, &cfg, 3000, true, ops, CAP);
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].shard_id != 1)
            continue;
        seen = true;
        ck_assert_uint_eq(ops[i].kind, BS_PD_OP_MOVE);
        ck_assert_uint_eq(ops[i].from_node, 2);
        ck_assert_uint_eq(ops[i].to_node, 0);
    }
    ck_assert(seen);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_repair_placement_group)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(5, 4, 3, &idx);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 5);

    /* placement_voters 3 with 5 UP nodes: shrink to 3. */
    cfg.placement_voters = 3;
    size_t n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 0);
    ck_assert_uint_eq(ops[0].reason, BS_PD_REASON_REPAIR);
    ck_assert_uint_eq(ops[0].to_node, 0);
    /* Even settings round down to odd: 4 means 3. */
    cfg.placement_voters = 4;
    n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 0);
    ck_assert_uint_eq(ops[0].to_node, 0);

    /* Two of five DOWN: three UP, so three voters; the down ones go. */
    cfg = cfg_default();
    set_state(st, &idx, 4, BS_PD_NODE_DOWN, 3000);
    set_state(st, &idx, 5, BS_PD_NODE_DOWN, 3000);
    n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 0);
    ck_assert_uint_eq(ops[0].kind, BS_PD_OP_MOVE);
    ck_assert_uint_eq(ops[0].from_node, 4);
    ck_assert_uint_eq(ops[0].to_node, 0);
    bs_pd_state_destroy(st);

    /* Three nodes, one DOWN: the placement group drops the voter on it,
     * but never a healthy one to reach the "odd" target of 1. */
    idx = 0;
    st = th_bootstrap(3, 4, 3, &idx);
    set_state(st, &idx, 3, BS_PD_NODE_DOWN, 3000);
    n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 0);
    ck_assert_uint_eq(ops[0].from_node, 3);
    ck_assert_uint_eq(ops[0].to_node, 0);
    converge(st, &idx, &cfg, 10);
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 2);
    /* And grows back to three when the node returns. */
    set_state(st, &idx, 3, BS_PD_NODE_UP, 3000);
    converge(st, &idx, &cfg, 10);
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 3);
    bs_pd_state_destroy(st);

    /* Grows when more nodes come: 3 voters on 4 nodes, then a 5th. */
    idx = 0;
    st = th_bootstrap(4, 4, 3, &idx);
    n = plan(st, NULL, &cfg, 3000, true, ops, CAP);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_ne(ops[i].shard_id, 0);
    add_node(st, &idx, 5, "r2", 3000);
    n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 0);
    ck_assert_uint_eq(ops[0].reason, BS_PD_REASON_REPAIR);
    ck_assert_uint_eq(ops[0].from_node, 0);
    /* Every target collides on racks; the emptiest node wins. */
    ck_assert_uint_eq(ops[0].to_node, 5);
    bs_pd_state_destroy(st);
}
END_TEST

static struct bs_pd_shard_stat stat_for(const struct bs_pd_shard *s,
                                        uint64_t size, uint64_t qps)
{
    struct bs_pd_shard_stat ss;
    memset(&ss, 0, sizeof(ss));
    ss.shard_id = s->id;
    ss.leader = s->leader;
    ss.term = 1;
    ss.conf_ver = s->epoch.conf_ver;
    ss.version = s->epoch.version;
    ss.size_bytes = size;
    ss.read_qps = qps;
    return ss;
}

/* A shard whose leader reports a newer configuration (or range) than
 * placement records is left alone until the report lands: a plan on the
 * old record could move a replica to a node that already holds one. */
START_TEST(test_shard_behind_its_report_waits)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_op ops[CAP];
    const uint64_t big = cfg.split_size + 1;
    struct bs_pd_shard_stat ss[2] = {
        stat_for(bs_pd_shard_find(st, 2), big, 0),
        stat_for(bs_pd_shard_find(st, 4), big, 0)};
    ss[0].conf_ver++; /* shard 2 changed under placement */
    struct bs_pd_heartbeat hb = hb_of(1, ss, 2);
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, 1000, 0), 0);
    size_t n = plan(st, stats, &cfg, 1000, false, ops, CAP);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 4);
    /* A newer range (a split not reported yet) waits likewise. */
    ss[0].conf_ver--;
    ss[0].version++;
    ss[0].term = 2;
    hb = hb_of(1, ss, 2);
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, 1100, 0), 0);
    n = plan(st, stats, &cfg, 1100, false, ops, CAP);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 4);
    /* In line again: both split. */
    ss[0].version--;
    ss[0].term = 3;
    hb = hb_of(1, ss, 2);
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, 1200, 0), 0);
    ck_assert_uint_eq(plan(st, stats, &cfg, 1200, false, ops, CAP), 2);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_split_by_size)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_op ops[CAP];
    const uint64_t big = cfg.split_size + 1;
    struct bs_pd_shard_stat ss[3] = {
        stat_for(bs_pd_shard_find(st, 2), big, 0),
        stat_for(bs_pd_shard_find(st, 3), cfg.split_size, 0), /* not over */
        stat_for(bs_pd_shard_find(st, 4), big, 0)};
    struct bs_pd_heartbeat hb = hb_of(1, ss, 3);
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, 1000, 0), 0);

    size_t n = plan(st, stats, &cfg, 1000, false, ops, CAP);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(ops[0].kind, BS_PD_OP_SPLIT);
    ck_assert_uint_eq(ops[0].reason, BS_PD_REASON_SPLIT_SIZE);
    ck_assert_uint_eq(ops[0].shard_id, 2);
    ck_assert_uint_eq(ops[0].split_key_len, 0);
    ck_assert_uint_eq(ops[1].shard_id, 4);

    /* max_shards counts the shards and the splits planned. */
    cfg.max_shards = 5;
    n = plan(st, stats, &cfg, 1000, false, ops, CAP);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 2);
    cfg.max_shards = 4;
    ck_assert_uint_eq(plan(st, stats, &cfg, 1000, false, ops, CAP), 0);
    cfg.max_shards = 100000;
    cfg.split_size = 0; /* never */
    ck_assert_uint_eq(plan(st, stats, &cfg, 1000, false, ops, CAP), 0);
    cfg = cfg_default();
    /* ...and the splits in flight. */
    struct bs_pd_op split = {.kind = BS_PD_OP_SPLIT,
                             .reason = BS_PD_REASON_SPLIT_SIZE,
                             .shard_id = 2,
                             .created_at = 1000};
    uint64_t split_id = create_op(st, &idx, &split);
    cfg.max_shards = 5;
    ck_assert_uint_eq(plan(st, stats, &cfg, 1000, false, ops, CAP), 0);
    cfg = cfg_default();
    n = plan(st, stats, &cfg, 1000, false, ops, CAP);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 4);

    /* Once the split is reported, the old report describes the range
     * before it: no second split until a new report comes. */
    const struct bs_pd_shard *s2 = bs_pd_shard_find(st, 2);
    uint8_t key[3] = {s2->start[0], s2->start[1], 0x80};
    struct bs_pd_cmd cmd;
    th_split_report(st, bs_pd_op_find(st, split_id), key, 3, &cmd);
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_ptr_null(bs_pd_op_find(st, split_id));
    n = plan(st, stats, &cfg, 1000, false, ops, CAP);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(ops[0].shard_id, 4);
    /* A fresh report still over the size: split again. */
    ss[0] = stat_for(bs_pd_shard_find(st, 2), big, 0);
    ss[0].term = 2;
    hb = hb_of(1, ss, 1);
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, 2000, 0), 0);
    n = plan(st, stats, &cfg, 2000, false, ops, CAP);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(ops[0].shard_id, 2);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_split_by_sustained_load)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct bs_pd_sched_config cfg = cfg_default();
    cfg.split_qps = 1000;
    struct bs_pd_stats *stats = bs_pd_stats_create();
    struct bs_pd_op ops[CAP];
    const struct bs_pd_shard *s3 = bs_pd_shard_find(st, 3);

    struct bs_pd_shard_stat ss = stat_for(s3, 1, 5000);
    for (uint64_t t = 1000; t <= 11000; t += 1000) {
        struct bs_pd_heartbeat hb = hb_of(1, &ss, 1);
        ck_assert_int_eq(bs_pd_stats_update(stats, &hb, t, cfg.split_qps), 0);
        size_t n = plan(st, stats, &cfg, t, false, ops, CAP);
        if (t < 11000) {
            ck_assert_msg(n == 0, "split at %llu, hot since 1000",
                          (unsigned long long)t);
        } else {
            ck_assert_uint_eq(n, 1);
            ck_assert_uint_eq(ops[0].kind, BS_PD_OP_SPLIT);
            ck_assert_uint_eq(ops[0].reason, BS_PD_REASON_SPLIT_LOAD);
            ck_assert_uint_eq(ops[0].shard_id, 3);
        }
    }
    /* A quiet interval restarts the clock. */
    ss.read_qps = 10;
    struct bs_pd_heartbeat hb = hb_of(1, &ss, 1);
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, 12000, cfg.split_qps), 0);
    ss.read_qps = 5000;
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, 13000, cfg.split_qps), 0);
    ck_assert_uint_eq(plan(st, stats, &cfg, 22999, false, ops, CAP), 0);
    ck_assert_uint_eq(plan(st, stats, &cfg, 23000, false, ops, CAP), 1);
    /* split_qps 0: never by load. */
    cfg.split_qps = 0;
    ck_assert_uint_eq(plan(st, stats, &cfg, 99000, false, ops, CAP), 0);
    bs_pd_stats_destroy(stats);
    bs_pd_state_destroy(st);
}
END_TEST

static void assert_balanced(const struct bs_pd_state *st, uint64_t nodes)
{
    uint32_t rmin = UINT32_MAX, rmax = 0, lmin = UINT32_MAX, lmax = 0;
    for (uint64_t n = 1; n <= nodes; n++) {
        uint32_t r = load_of(st, n), l = leaders_of(st, n);
        rmin = r < rmin ? r : rmin;
        rmax = r > rmax ? r : rmax;
        lmin = l < lmin ? l : lmin;
        lmax = l > lmax ? l : lmax;
    }
    ck_assert_msg(rmax - rmin <= 1, "replicas %u..%u", rmin, rmax);
    ck_assert_msg(lmax - lmin <= 1, "leaders %u..%u", lmin, lmax);
}

START_TEST(test_balance_new_node)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 16, 3, &idx);
    add_node(st, &idx, 4, "r3", 2000); /* a rack of its own */
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];

    size_t n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(ops[i].kind, BS_PD_OP_MOVE);
        ck_assert_uint_eq(ops[i].reason, BS_PD_REASON_BALANCE_REPLICAS);
        ck_assert_uint_eq(ops[i].to_node, 4);
    }
    /* Planned moves count as done: the three come from three nodes. */
    ck_assert_uint_ne(ops[0].from_node, ops[1].from_node);
    ck_assert_uint_ne(ops[1].from_node, ops[2].from_node);
    ck_assert_uint_ne(ops[0].from_node, ops[2].from_node);

    int rounds = converge(st, &idx, &cfg, 40);
    ck_assert_int_gt(rounds, 3);
    /* 48 replicas and 16 leaders over 4 nodes: 12 and 4 each, +-1. */
    assert_balanced(st, 4);
    for (uint64_t node = 1; node <= 4; node++) {
        ck_assert_uint_ge(load_of(st, node), 11);
        ck_assert_uint_le(load_of(st, node), 13);
        ck_assert_uint_ge(leaders_of(st, node), 3);
        ck_assert_uint_le(leaders_of(st, node), 5);
    }
    ck_assert_uint_eq(rack_collisions(st), 0);

    /* With ignore_limit the whole plan comes at once, and it converges
     * the same way. */
    bs_pd_state_destroy(st);
    idx = 0;
    st = th_bootstrap(3, 16, 3, &idx);
    add_node(st, &idx, 4, "r3", 2000);
    n = plan(st, NULL, &cfg, 3000, true, ops, CAP);
    ck_assert_uint_eq(
        count_kind(ops, n, BS_PD_OP_MOVE, BS_PD_REASON_BALANCE_REPLICAS), 12);
    /* A move in flight counts as done: one fewer is planned. */
    create_op(st, &idx, &ops[0]);
    n = plan(st, NULL, &cfg, 3000, true, ops, CAP);
    ck_assert_uint_eq(
        count_kind(ops, n, BS_PD_OP_MOVE, BS_PD_REASON_BALANCE_REPLICAS), 11);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_balance_respects_racks)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 16, 3, &idx);
    /* Node 4 on rack r1, like node 1: every shard has one replica per
     * rack, so only node 1's replicas can move to node 4. */
    add_node(st, &idx, 4, "r1", 2000);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];
    size_t n = plan(st, NULL, &cfg, 3000, true, ops, CAP);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == BS_PD_OP_MOVE)
            ck_assert_uint_eq(ops[i].from_node, 1);
    converge(st, &idx, &cfg, 40);
    ck_assert_uint_eq(rack_collisions(st), 0);
    ck_assert_uint_eq(load_of(st, 2), 16);
    ck_assert_uint_eq(load_of(st, 3), 16);
    ck_assert_uint_eq(load_of(st, 1), 8);
    ck_assert_uint_eq(load_of(st, 4), 8);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_rack_collisions_fixed)
{
    uint64_t idx = 0;
    /* Racks r1 r2 r0 r1 r2 r0; shards alternate between nodes 1-3 and
     * 4-6. */
    struct bs_pd_state *st = th_bootstrap(6, 6, 3, &idx);
    ck_assert_uint_eq(rack_collisions(st), 0);
    /* Shard 1: 1 2 3 -> 1 2 4 (r1 twice); shard 2: 4 5 6 -> 3 5 6 (r0
     * twice). Loads stay even. */
    swap_replica(st, &idx, 1, 3, 4);
    swap_replica(st, &idx, 2, 4, 3);
    ck_assert_uint_eq(rack_collisions(st), 2);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];
    size_t n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_eq(count_kind(ops, n, BS_PD_OP_MOVE, BS_PD_REASON_RACK), 2);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].reason != BS_PD_REASON_RACK)
            continue;
        const struct bs_pd_shard *s = bs_pd_shard_find(st, ops[i].shard_id);
        const char *to_rack = rack_of(st, ops[i].to_node);
        /* From one of the two on the shared rack, to a rack the shard does
         * not use. */
        uint32_t same = 0;
        for (uint32_t j = 0; j < s->n_replicas; j++) {
            const char *r = rack_of(st, s->replicas[j].node_id);
            same += strcmp(r, rack_of(st, ops[i].from_node)) == 0;
            ck_assert_str_ne(r, to_rack);
        }
        ck_assert_uint_eq(same, 2);
    }
    converge(st, &idx, &cfg, 20);
    ck_assert_uint_eq(rack_collisions(st), 0);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_concurrency_limit)
{
    uint64_t idx;
    struct bs_pd_state *st = node2_down(&idx);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];
    size_t n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_eq(n, 3);

    /* One move in flight: two more, none on its shard. */
    uint64_t busy = ops[1].shard_id;
    create_op(st, &idx, &ops[1]);
    n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_ne(ops[i].shard_id, busy);
    /* ignore_limit: every remaining one (7 shards on node 2, one busy). */
    ck_assert_uint_eq(plan(st, NULL, &cfg, 3000, true, ops, CAP), 6);
    /* cap bounds it. */
    ck_assert_uint_eq(plan(st, NULL, &cfg, 3000, true, ops, 2), 2);
    ck_assert_uint_eq(plan(st, NULL, &cfg, 3000, true, ops, 0), 0);
    /* As many in flight as allowed: no move. */
    cfg.max_concurrent_moves = 1;
    n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(ops[i].kind, BS_PD_OP_LEADER);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_leader_ops_unlimited)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 6, 3, &idx);
    for (uint64_t s = 1; s <= 6; s++)
        set_leader(st, &idx, s, 1);
    ck_assert_uint_eq(leaders_of(st, 1), 6);
    struct bs_pd_sched_config cfg = cfg_default();
    cfg.max_concurrent_moves = 0;
    struct bs_pd_op ops[CAP];
    size_t n = plan(st, NULL, &cfg, 3000, false, ops, CAP);
    /* 6 0 0 -> 2 2 2. */
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(
        count_kind(ops, n, BS_PD_OP_LEADER, BS_PD_REASON_BALANCE_LEADERS), 4);
    uint32_t to2 = 0, to3 = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(ops[i].from_node, 1);
        to2 += ops[i].to_node == 2;
        to3 += ops[i].to_node == 3;
    }
    ck_assert_uint_eq(to2, 2);
    ck_assert_uint_eq(to3, 2);
    converge(st, &idx, &cfg, 5);
    assert_balanced(st, 3);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_paused)
{
    uint64_t idx;
    struct bs_pd_state *st = node2_down(&idx);
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_SET_SCHED};
    cmd.u.sched.paused = true;
    th_apply_ok(st, &idx, &cmd, NULL);
    struct bs_pd_sched_config cfg = cfg_default();
    struct bs_pd_op ops[CAP];
    ck_assert_uint_eq(plan(st, NULL, &cfg, 3000, false, ops, CAP), 0);
    ck_assert_uint_eq(plan(st, NULL, &cfg, 3000, true, ops, CAP), 7);
    cmd.u.sched.paused = false;
    th_apply_ok(st, &idx, &cmd, NULL);
    ck_assert_uint_eq(plan(st, NULL, &cfg, 3000, false, ops, CAP), 3);
    /* Not bootstrapped: nothing. */
    struct bs_pd_state *empty = bs_pd_state_create();
    ck_assert_uint_eq(plan(empty, NULL, &cfg, 3000, true, ops, CAP), 0);
    bs_pd_state_destroy(empty);
    bs_pd_state_destroy(st);
}
END_TEST

/* The same commands give the same state and the same plan, call after
 * call; a random mix of down, draining, uneven and hot shards. */
static struct bs_pd_state *messy_state(uint64_t seed, uint64_t *idx,
                                       struct bs_pd_stats *stats)
{
    *idx = 0;
    struct bs_pd_state *st = th_bootstrap(5, 24, 3, idx);
    add_node(st, idx, 6, "r3", 2000);
    add_node(st, idx, 7, NULL, 2000);
    set_state(st, idx, 2, BS_PD_NODE_DOWN, 2000);
    for (int i = 0; i < 12; i++) {
        uint64_t shard = 1 + th_rand(&seed) % 24;
        uint64_t node = 1 + th_rand(&seed) % 7;
        if (bs_pd_shard_replica_on(bs_pd_shard_find(st, shard), node))
            set_leader(st, idx, shard, node);
    }
    struct bs_pd_shard_stat ss[4];
    for (int i = 0; i < 4; i++)
        ss[i] = stat_for(bs_pd_shard_find(st, 1 + th_rand(&seed) % 24),
                         th_rand(&seed) % (128u << 20), 0);
    struct bs_pd_heartbeat hb = hb_of(1, ss, 4);
    ck_assert_int_eq(bs_pd_stats_update(stats, &hb, 1000, 0), 0);
    return st;
}

START_TEST(test_deterministic)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        uint64_t ia, ib;
        struct bs_pd_stats *sa = bs_pd_stats_create();
        struct bs_pd_stats *sb = bs_pd_stats_create();
        struct bs_pd_state *a = messy_state(seed, &ia, sa);
        struct bs_pd_state *b = messy_state(seed, &ib, sb);
        ck_assert(th_equal(a, b));
        struct bs_pd_sched_config cfg = cfg_default();
        struct bs_pd_op x[CAP], y[CAP], z[CAP];
        memset(x, 0, sizeof(x));
        memset(y, 0, sizeof(y));
        memset(z, 0, sizeof(z));
        for (int ignore = 0; ignore < 2; ignore++) {
            size_t nx = plan(a, sa, &cfg, 5000, ignore, x, CAP);
            size_t ny = plan(b, sb, &cfg, 5000, ignore, y, CAP);
            size_t nz = plan(a, sa, &cfg, 5000, ignore, z, CAP);
            ck_assert_uint_gt(nx, 0);
            ck_assert_uint_eq(nx, ny);
            ck_assert_uint_eq(nx, nz);
            ck_assert_mem_eq(x, y, nx * sizeof(x[0]));
            ck_assert_mem_eq(x, z, nx * sizeof(x[0]));
        }
        /* And the plan is one apply accepts, to the end. */
        converge(a, &ia, &cfg, 60);
        for (size_t i = 0; i < bs_pd_shard_count(a); i++)
            ck_assert_ptr_null(bs_pd_shard_replica_on(bs_pd_shard_at(a, i), 2));
        bs_pd_state_destroy(a);
        bs_pd_state_destroy(b);
        bs_pd_stats_destroy(sa);
        bs_pd_stats_destroy(sb);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement_sched");
    TCase *m = tcase_create("maintain");
    tcase_add_test(m, test_maintain_suspect_then_down);
    tcase_add_test(m, test_maintain_no_information);
    tcase_add_test(m, test_maintain_heard_again);
    tcase_add_test(m, test_maintain_new_node_grace);
    tcase_add_test(m, test_maintain_drained_node_removed);
    tcase_add_test(m, test_maintain_operator_timeout);
    tcase_add_test(m, test_maintain_operator_to_down_node);
    suite_add_tcase(s, m);
    TCase *p = tcase_create("schedule");
    tcase_set_timeout(p, 60);
    tcase_add_test(p, test_replace_on_down_node);
    tcase_add_test(p, test_drain);
    tcase_add_test(p, test_repair_too_few);
    tcase_add_test(p, test_repair_too_many);
    tcase_add_test(p, test_repair_placement_group);
    tcase_add_test(p, test_split_by_size);
    tcase_add_test(p, test_shard_behind_its_report_waits);
    tcase_add_test(p, test_split_by_sustained_load);
    tcase_add_test(p, test_balance_new_node);
    tcase_add_test(p, test_balance_respects_racks);
    tcase_add_test(p, test_rack_collisions_fixed);
    tcase_add_test(p, test_concurrency_limit);
    tcase_add_test(p, test_leader_ops_unlimited);
    tcase_add_test(p, test_paused);
    tcase_add_test(p, test_deterministic);
    suite_add_tcase(s, p);
    return s;
}

int main(void)
{
    return th_run(suite());
}
