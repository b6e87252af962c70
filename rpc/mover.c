/*
 * mover.c - executes placement's operators (placement.h, "operators") on
 * the nodes they concern, a few times a second:
 *
 *   on a shard's leader   the next step of the shard's operator, decided
 *                         from the group's configuration as it is now, so
 *                         that repeating a step is harmless;
 *   on a MOVE's target    an empty replica (bs_eng_store_create_replica)
 *                         that waits for the leader's snapshot;
 *   on every node         replicas that placement no longer lists are
 *                         collected (their CF dropped): a replica removed
 *                         while its node was down, or the leaving side of
 *                         a move, which never hears the entry that removes
 *                         it (the leader stops replicating to it first).
 *
 * A MOVE of shard S from node A (replica a) to node B (replica b), as the
 * leader sees its configuration C:
 *
 *   b not in C ----------------------------> propose ADD_LEARNER b
 *   b learner, not in the ISR -------------> wait (snapshot, catch-up)
 *   b learner in the ISR, a leads (here) --> transfer leadership to
 *                                            another in-sync voter
 *   b learner in the ISR ------------------> propose joint {ADD_VOTER b,
 *                                            REMOVE a} (auto leave)
 *   C joint -------------------------------> wait (the leader leaves it)
 *   b voter, a still in C -----------------> (a leads: transfer) else
 *                                            propose REMOVE a
 *   b voter, a gone -----------------------> done: the leader's report
 *                                            (REPLICA_CHANGE) lets
 *                                            placement close the operator
 *
 * The order differs from DESIGN.md 7 in one place: leadership leaves a
 * before the joint change rather than after it. Raft lets a leader that
 * is not in C_new lead through the joint phase, but it steps down as soon
 * as the phase ends and the group is leaderless for an election; a
 * transfer first costs nothing and leaves no gap.
 *
 * Rollback: an operator cancelled (timeout, an operator, a node gone)
 * leaves at most a learner that no operator names; the leader removes it.
 * A replica already promoted stays, and the scheduler's repair rule
 * removes the extra one.
 */
#define _GNU_SOURCE
#include "node_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MOD BS_NODE_MOD

#define MOVER_EVERY_MS 250
/* A step proposed is not repeated sooner (a conf change takes a round
 * trip to commit; a split a round trip and an apply). */
#define STEP_RETRY_MS 1000

struct mover_step {
    uint64_t op_id;
    uint64_t last_ms;
    uint8_t step;
};

void bs_node__mover_free(struct bs_node *n)
{
    free(n->steps);
    n->steps = NULL;
    n->n_steps = n->cap_steps = 0;
}

/* True (and records now) if op may act again; step changes act at once. */
static bool step_due(struct bs_node *n, uint64_t op_id, uint8_t step,
                     uint64_t now)
{
    for (size_t i = 0; i < n->n_steps; i++) {
        struct mover_step *s = &n->steps[i];
        if (s->op_id != op_id)
            continue;
        if (s->step == step && now - s->last_ms < STEP_RETRY_MS)
            return false;
        s->step = step;
        s->last_ms = now;
        return true;
    }
    if (n->n_steps == n->cap_steps) {
        size_t cap = n->cap_steps ? 2 * n->cap_steps : 16;
        struct mover_step *v = realloc(n->steps, cap * sizeof(*v));
        if (!v)
            return false;
        n->steps = v;
        n->cap_steps = cap;
    }
    n->steps[n->n_steps++] = (struct mover_step){op_id, now, step};
    return true;
}

/* Keys of steps that belong to no operator (the top half of the id
 * space, which operator ids never reach): orphan learners per shard, the
 * placement group's own report. */
#define SYNTH_KEY(x) ((UINT64_C(1) << 63) | (x))

/* Forgets the steps of operators placement no longer holds, and the
 * synthetic ones once they are old. */
static void steps_gc(struct bs_node *n, const struct bs_pd_state *pd,
                     uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_steps; i++) {
        const struct mover_step *s = &n->steps[i];
        bool keep = s->op_id >> 63 ? now - s->last_ms < 10 * STEP_RETRY_MS
                                   : bs_pd_op_find(pd, s->op_id) != NULL;
        if (keep)
            n->steps[k++] = *s;
    }
    n->n_steps = k;
}

static bool in_list(const uint64_t *v, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

static bool conf_joint(const struct bs_raft_conf_state *c)
{
    return c->n_voters_outgoing > 0 || c->n_learners_next > 0;
}

/* The member of c on node (0 if none). */
static uint64_t member_on(const struct bs_raft_conf_state *c, uint64_t node)
{
    uint64_t ids[BS_RAFT_CONF_MAX_LIST];
    size_t k = bs_raft_conf_members(c, ids, NULL);
    for (size_t i = 0; i < k; i++)
        if (BS_ENG_REPLICA_NODE(ids[i]) == node)
            return ids[i];
    return 0;
}

static void cc_done(void *ctx, int status, const void *resp, size_t len)
{
    (void)resp;
    (void)len;
    uint64_t shard = (uint64_t)(uintptr_t)ctx;
    if (status != 0)
        bs_log(BS_LOG_DEBUG, MOD,
               "mover: configuration change of shard %" PRIu64 " err=%s",
               shard, bs_strerror(status));
}

static void propose_cc(struct bs_node *n, uint64_t shard, uint8_t transition,
                       const struct bs_raft_cc_single *ch, uint32_t k)
{
    struct bs_raft_conf_change cc;
    memset(&cc, 0, sizeof(cc));
    cc.transition = transition;
    cc.n_changes = k;
    memcpy(cc.changes, ch, k * sizeof(*ch));
    int rc = bs_eng_store_propose_conf_change(n->store, shard, &cc, cc_done,
                                              (void *)(uintptr_t)shard);
    n->moves_steps++;
    if (rc != 0)
        bs_log(BS_LOG_DEBUG, MOD,
               "mover: proposing a change of shard %" PRIu64 " err=%s", shard,
               bs_strerror(rc));
}

/* Hands shard's leadership (led here by self) to an in-sync voter other
 * than self and avoid. */
static void transfer_away(struct bs_node *n, uint64_t shard,
                          const struct bs_eng_group_info *gi, uint64_t avoid)
{
    for (uint32_t i = 0; i < gi->conf.n_voters; i++) {
        uint64_t v = gi->conf.voters[i];
        if (v == gi->replica_id || v == avoid || !bs_node__in_isr(n, shard, v))
            continue;
        bs_log(BS_LOG_INFO, MOD,
               "mover: shard %" PRIu64 " leadership to node %" PRIu64
               " before its replica here leaves",
               shard, BS_ENG_REPLICA_NODE(v));
        (void)bs_eng_store_transfer_leader(n->store, shard, v);
        return;
    }
}

enum {
    ST_ADD = 1,
    ST_PROMOTE,
    ST_REMOVE,
    ST_TRANSFER,
    ST_LEADER,
    ST_SPLIT,
    ST_CANCEL
};

static void cancel_done(struct bs_node *n, void *ctx, int status,
                        uint64_t first_id)
{
    (void)n;
    (void)first_id;
    uint64_t id = (uint64_t)(uintptr_t)ctx;
    if (status != 0 && status != BS_ENOTFOUND)
        bs_log(BS_LOG_INFO, MOD, "mover: cancelling op %" PRIu64 " err=%s",
               id, bs_strerror(status));
}

/* Asks placement to drop an operator that cannot finish. */
static void cancel_op(struct bs_node *n, const struct bs_pd_op *op,
                      const char *why)
{
    bs_log(BS_LOG_INFO, MOD, "mover: op %" PRIu64 " shard %" PRIu64
           " cancelled: %s", op->id, op->shard_id, why);
    struct bs_pd_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_PD_CMD_OP_CANCEL;
    cmd.u.op_cancel.op_id = op->id;
    (void)bs_node__pd_propose(n, &cmd, cancel_done,
                              (void *)(uintptr_t)op->id);
}

static void exec_move(struct bs_node *n, const struct bs_pd_op *op,
                      const struct bs_eng_group_info *gi, uint64_t now)
{
    const struct bs_raft_conf_state *c = &gi->conf;
    if (conf_joint(c))
        return; /* the leader leaves the joint state by itself */
    uint64_t old = op->from_node ? member_on(c, op->from_node) : 0;
    uint64_t nw = op->to_node ? op->new_replica : 0;
    uint64_t on_to = op->to_node ? member_on(c, op->to_node) : 0;
    if (on_to && on_to != nw) {
        /* The target holds another replica of the shard already (placement
         * planned on a record older than this configuration): the move
         * can never finish; give its slot back. */
        if (step_due(n, op->id, ST_CANCEL, now))
            cancel_op(n, op, "the target node already holds a replica");
        return;
    }
    bool nw_voter = nw && in_list(c->voters, c->n_voters, nw);
    bool nw_learner = nw && in_list(c->learners, c->n_learners, nw);
    struct bs_raft_cc_single ch[2];
    if (nw && !nw_voter && !nw_learner) {
        if (step_due(n, op->id, ST_ADD, now)) {
            bs_log(BS_LOG_INFO, MOD,
                   "mover: op %" PRIu64 " shard %" PRIu64
                   " adds a learner on node %" PRIu64,
                   op->id, op->shard_id, op->to_node);
            ch[0] = (struct bs_raft_cc_single){BS_RAFT_CC_ADD_LEARNER, nw};
            propose_cc(n, op->shard_id, BS_RAFT_CC_TRANSITION_AUTO, ch, 1);
        }
        return;
    }
    if (nw_learner) {
        if (!bs_node__in_isr(n, op->shard_id, nw))
            return; /* catching up */
        if (old && old == gi->replica_id) {
            if (step_due(n, op->id, ST_TRANSFER, now))
                transfer_away(n, op->shard_id, gi, old);
            return;
        }
        if (!step_due(n, op->id, ST_PROMOTE, now))
            return;
        bs_log(BS_LOG_INFO, MOD,
               "mover: op %" PRIu64 " shard %" PRIu64
               " promotes node %" PRIu64 "%s",
               op->id, op->shard_id, op->to_node,
               old ? ", replacing its old voter" : "");
        ch[0] = (struct bs_raft_cc_single){BS_RAFT_CC_ADD_VOTER, nw};
        uint32_t k = 1;
        if (old)
            ch[k++] = (struct bs_raft_cc_single){BS_RAFT_CC_REMOVE, old};
        propose_cc(n, op->shard_id,
                   k > 1 ? BS_RAFT_CC_TRANSITION_JOINT_IMPLICIT
                         : BS_RAFT_CC_TRANSITION_AUTO,
                   ch, k);
        return;
    }
    /* b is a voter (or there is no b): only a is left to remove. */
    if (!old)
        return; /* done: placement closes it on the report */
    if (old == gi->replica_id) {
        if (step_due(n, op->id, ST_TRANSFER, now))
            transfer_away(n, op->shard_id, gi, old);
        return;
    }
    if (step_due(n, op->id, ST_REMOVE, now)) {
        bs_log(BS_LOG_INFO, MOD,
               "mover: op %" PRIu64 " shard %" PRIu64
               " removes its replica on node %" PRIu64,
               op->id, op->shard_id, op->from_node);
        ch[0] = (struct bs_raft_cc_single){BS_RAFT_CC_REMOVE, old};
        propose_cc(n, op->shard_id, BS_RAFT_CC_TRANSITION_AUTO, ch, 1);
    }
}

static void exec_leader(struct bs_node *n, const struct bs_pd_op *op,
                        const struct bs_eng_group_info *gi, uint64_t now)
{
    uint64_t to = member_on(&gi->conf, op->to_node);
    if (!to || to == gi->replica_id ||
        !in_list(gi->conf.voters, gi->conf.n_voters, to))
        return;
    if (step_due(n, op->id, ST_LEADER, now))
        (void)bs_eng_store_transfer_leader(n->store, op->shard_id, to);
}

static void split_done(void *ctx, int status, const void *resp, size_t len)
{
    (void)resp;
    (void)len;
    uint64_t shard = (uint64_t)(uintptr_t)ctx;
    if (status != 0)
        bs_log(BS_LOG_INFO, MOD, "mover: split of shard %" PRIu64 " err=%s",
               shard, bs_strerror(status));
}

static void exec_split(struct bs_node *n, const struct bs_pd_op *op,
                       uint64_t now)
{
    struct bs_shard *sh =
        bs_shard_sm_shard(bs_eng_store_sm(n->store, op->shard_id));
    struct bs_eng_group_info ng;
    /* Applied already (the new group exists here): placement closes the
     * operator on the leader's report. Proposing again would split the
     * left half a second time under the same new id (the shard refuses
     * that, but it costs a proposal). */
    if (!sh || bs_eng_store_group(n->store, op->new_shard_id, &ng) == 0 ||
        !step_due(n, op->id, ST_SPLIT, now))
        return;
    uint8_t *mid = NULL;
    size_t mid_len = 0;
    const uint8_t *key = op->split_key;
    size_t key_len = op->split_key_len;
    if (key_len == 0) {
        int rc = bs_shard_middle_key(sh, n->db, &mid, &mid_len);
        if (rc == BS_ENOTFOUND) {
            /* Fewer than two keys: nothing to split, ever. */
            cancel_op(n, op, "the shard holds fewer than two keys");
            return;
        }
        if (rc != 0) {
            bs_log(BS_LOG_INFO, MOD,
                   "mover: shard %" PRIu64 " has no middle key to split "
                   "at err=%s",
                   op->shard_id, bs_strerror(rc));
            return;
        }
        key = mid;
        key_len = mid_len;
    }
    struct bs_shard_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_SHARD_CMD_SPLIT;
    cmd.epoch = sh->desc.epoch;
    cmd.u.split.split_key = key;
    cmd.u.split.split_key_len = key_len;
    cmd.u.split.new_shard_id = op->new_shard_id;
    for (uint32_t i = 0; i < op->n_new_replicas; i++) {
        cmd.u.split.replicas[i].id = op->new_replicas[i].id;
        cmd.u.split.replicas[i].node_id = op->new_replicas[i].node_id;
        cmd.u.split.replicas[i].learner =
            op->new_replicas[i].role == BS_PD_ROLE_LEARNER;
    }
    cmd.u.split.n_replicas = op->n_new_replicas;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = bs_shard_cmd_encode(&cmd, &buf, &len);
    if (rc == 0)
        rc = bs_eng_store_propose(n->store, op->shard_id, buf, len,
                                  split_done, (void *)(uintptr_t)op->shard_id);
    if (rc == 0)
        bs_log(BS_LOG_INFO, MOD,
               "mover: op %" PRIu64 " splits shard %" PRIu64
               " into %" PRIu64 " at a %zu-byte key",
               op->id, op->shard_id, op->new_shard_id, key_len);
    free(buf);
    free(mid);
}

/* Learners no operator names, in a shard led here: a cancelled move's
 * leftovers. */
static void remove_orphan_learners(struct bs_node *n,
                                   const struct bs_pd_state *pd,
                                   uint64_t shard,
                                   const struct bs_eng_group_info *gi)
{
    if (conf_joint(&gi->conf) || gi->conf.n_learners == 0)
        return;
    const struct bs_pd_op *op = bs_pd_op_of_shard(pd, shard);
    for (uint32_t i = 0; i < gi->conf.n_learners; i++) {
        uint64_t l = gi->conf.learners[i];
        if (op && op->kind == BS_PD_OP_MOVE && op->new_replica == l)
            continue;
        if (!step_due(n, SYNTH_KEY(shard), ST_REMOVE, bs_node__now()))
            return;
        bs_log(BS_LOG_INFO, MOD,
               "mover: shard %" PRIu64 " drops learner on node %" PRIu64
               " that no operator names",
               shard, BS_ENG_REPLICA_NODE(l));
        struct bs_raft_cc_single ch = {BS_RAFT_CC_REMOVE, l};
        propose_cc(n, shard, BS_RAFT_CC_TRANSITION_AUTO, &ch, 1);
        return;
    }
}

static void report_done(struct bs_node *n, void *ctx, int status,
                        uint64_t first_id)
{
    (void)n;
    (void)ctx;
    (void)first_id;
    (void)status;
}

/* The placement group reports its own replica set (report.c covers the
 * data shards): its leader compares the configuration with placement's
 * record of shard 0. */
static void report_placement_replicas(struct bs_node *n,
                                      const struct bs_pd_state *pd,
                                      const struct bs_eng_group_info *gi)
{
    if (conf_joint(&gi->conf))
        return;
    const struct bs_pd_shard *p0 = bs_pd_shard_find(pd, BS_PD_SHARD_PLACEMENT);
    if (!p0)
        return;
    struct bs_raft_conf_state cs;
    bs_pd_shard_conf_state(p0, &cs);
    if (bs_raft_conf_state_equal(&cs, &gi->conf))
        return;
    if (!step_due(n, SYNTH_KEY(UINT64_C(1) << 62), ST_REMOVE,
                   bs_node__now()))
        return;
    struct bs_pd_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_PD_CMD_SHARD_REPLICA_CHANGE;
    cmd.u.replica_change.shard_id = BS_PD_SHARD_PLACEMENT;
    cmd.u.replica_change.conf_ver = p0->epoch.conf_ver + 1;
    uint32_t k = 0;
    for (uint32_t i = 0; i < gi->conf.n_voters; i++)
        cmd.u.replica_change.replicas[k++] = (struct bs_pd_replica){
            gi->conf.voters[i], BS_ENG_REPLICA_NODE(gi->conf.voters[i]),
            BS_PD_ROLE_VOTER};
    for (uint32_t i = 0; i < gi->conf.n_learners; i++)
        cmd.u.replica_change.replicas[k++] = (struct bs_pd_replica){
            gi->conf.learners[i], BS_ENG_REPLICA_NODE(gi->conf.learners[i]),
            BS_PD_ROLE_LEARNER};
    cmd.u.replica_change.n_replicas = k;
    (void)bs_node__pd_propose(n, &cmd, report_done, NULL);
}

/*
 * A replica here that placement no longer lists is stale: its shard moved
 * away while this node was down, or it is the leaving side of a move. It
 * is collected when placement's record of the shard is newer than the
 * configuration the replica applied (so a replica that is merely ahead of
 * placement's reports is never touched), and no operator adds it.
 */
static void collect_stale(struct bs_node *n, const struct bs_pd_state *pd)
{
    uint64_t ids[4096];
    size_t ng = bs_eng_store_groups(n->store, ids, 4096);
    for (size_t i = 0; i < ng && i < 4096; i++) {
        const struct bs_pd_shard *ps = bs_pd_shard_find(pd, ids[i]);
        struct bs_eng_group_info gi;
        if (!ps || bs_eng_store_group(n->store, ids[i], &gi) != 0)
            continue;
        if (ids[i] == BS_PD_SHARD_PLACEMENT) {
            /* Judged only by a copy fetched from another member that is
             * newer than this replica's own state (bs_node__pd), never
             * by the replica's own view, which cannot see its removal. */
            void *sm = bs_eng_store_sm(n->store, ids[i]);
            const struct bs_pd_state *own = sm ? bs_pd_sm_state(sm) : NULL;
            if (pd == own || !own)
                continue;
            bool listed0 = false;
            for (uint32_t r = 0; r < ps->n_replicas; r++)
                listed0 |= ps->replicas[r].id == gi.replica_id;
            const struct bs_pd_op *op0 = bs_pd_op_of_shard(pd, ids[i]);
            if (listed0 || (op0 && op0->new_replica == gi.replica_id) ||
                gi.leader != 0)
                continue;
            bs_log(BS_LOG_INFO, MOD,
                   "collecting stale replica shard=0 replica=%" PRIx64
                   " (placement no longer lists it)",
                   gi.replica_id);
            if (bs_eng_store_remove_replica(n->store, ids[i]) == 0)
                n->replicas_collected++;
            continue;
        }
        bool listed = false;
        for (uint32_t r = 0; r < ps->n_replicas; r++)
            listed |= ps->replicas[r].id == gi.replica_id;
        const struct bs_pd_op *op = bs_pd_op_of_shard(pd, ids[i]);
        if (listed || (op && op->new_replica == gi.replica_id))
            continue;
        struct bs_shard *sh = bs_shard_sm_shard(bs_eng_store_sm(n->store, ids[i]));
        uint64_t mine = sh ? sh->desc.epoch.conf_ver : 0;
        if (ps->epoch.conf_ver <= mine)
            continue;
        bs_log(BS_LOG_INFO, MOD,
               "collecting stale replica shard=%" PRIu64 " replica=%" PRIx64
               " (placement conf_ver %" PRIu64 " > %" PRIu64 ")",
               ids[i], gi.replica_id, ps->epoch.conf_ver, mine);
        if (bs_eng_store_remove_replica(n->store, ids[i]) == 0)
            n->replicas_collected++;
    }
}

void bs_node__mover_tick(struct bs_node *n)
{
    uint64_t now = bs_node__now();
    if (now < n->next_mover_ms)
        return;
    n->next_mover_ms = now + MOVER_EVERY_MS;
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (!pd || !bs_pd_bootstrapped(pd))
        return;
    steps_gc(n, pd, now);
    for (size_t i = 0; i < bs_pd_op_count(pd); i++) {
        const struct bs_pd_op *op = bs_pd_op_at(pd, i);
        struct bs_eng_group_info gi;
        bool here = bs_eng_store_group(n->store, op->shard_id, &gi) == 0;
        if (op->kind == BS_PD_OP_MOVE && op->to_node == n->o.node_id &&
            !here) {
            int rc = bs_eng_store_create_replica(n->store, op->shard_id,
                                                 op->new_replica);
            if (rc == 0) {
                n->replicas_created++;
                bs_log(BS_LOG_INFO, MOD,
                       "replica created for op %" PRIu64 " shard=%" PRIu64
                       " replica=%" PRIx64,
                       op->id, op->shard_id, op->new_replica);
            }
            continue;
        }
        if (!here || gi.role != BS_RAFT_LEADER)
            continue;
        switch (op->kind) {
        case BS_PD_OP_MOVE:
            exec_move(n, op, &gi, now);
            break;
        case BS_PD_OP_LEADER:
            exec_leader(n, op, &gi, now);
            break;
        case BS_PD_OP_SPLIT:
            exec_split(n, op, now);
            break;
        }
    }
    uint64_t ids[4096];
    size_t ng = bs_eng_store_groups(n->store, ids, 4096);
    for (size_t i = 0; i < ng && i < 4096; i++) {
        struct bs_eng_group_info gi;
        if (bs_eng_store_group(n->store, ids[i], &gi) != 0 ||
            gi.role != BS_RAFT_LEADER)
            continue;
        remove_orphan_learners(n, pd, ids[i], &gi);
        if (ids[i] == BS_PD_SHARD_PLACEMENT)
            report_placement_replicas(n, pd, &gi);
    }
    collect_stale(n, pd);
}
