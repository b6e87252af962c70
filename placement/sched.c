/*
 * sched.c - what the placement leader asks for: the maintenance commands
 * that keep node states in line with the heartbeats and drop stuck
 * operators (bs_pd_maintain), and the operators that keep replicas placed
 * well (bs_pd_schedule).
 *
 * Both are pure functions of the committed state, the leader's soft
 * statistics (stats.c) and `now`; the leader proposes what they return
 * and calls again once it applied, so the policy lives here and the
 * mechanism (apply.c, rpc/mover.c) stays dumb. Only the public accessors
 * of placement.h are used: the scheduler sees what the CLI sees.
 *
 * Liveness (bs_pd_maintain). A node's silence is measured from
 * bs_pd_stats_heard, never from the replicated last_heartbeat: that one is
 * only written by NODE_HEARTBEAT commands, which the leader proposes only
 * to bring a node back, so it is stale by design. Two refinements:
 *   - a node the table knows nothing about (heard == 0: no heartbeat and
 *     no reset) is not judged; the leader resets the table with its clock
 *     when it takes over, which starts every node's clock;
 *   - an UP node's silence is counted from max(heard, state_since): a
 *     node that just registered (or was just set UP by an operator) gets
 *     a full suspect_after before its first heartbeat is due, even when
 *     the table was reset long before it joined. Only UP: a SUSPECT
 *     node's state_since is when the leader marked it, and counting from
 *     there would put DOWN off by another suspect_after.
 * A SUSPECT or DOWN node is back when the table holds a heartbeat from it
 * that is fresh (not older than suspect_after); a reset alone never
 * brings a node back. The command is NODE_HEARTBEAT at now, unless now is
 * not after the node's recorded last_heartbeat (another leader's clock ran
 * ahead), which apply would refuse as stale again and again: then
 * UPDATE_NODE_STATE up, which apply takes from SUSPECT and DOWN too.
 *
 * Scheduling (bs_pd_schedule) works on a virtual copy of the per-node
 * counts that matter (data replicas, data leaders): operators in flight
 * and operators already planned are counted as done, so that one call can
 * plan many moves without piling them onto the node that was emptiest at
 * the start. Every operator touches one shard and a shard gets at most
 * one, so per-shard state never needs a virtual copy: a shard with an
 * operator (in flight or planned) is simply skipped.
 *
 * The rules, in priority order (each stops when the MOVE / SPLIT budget
 * or the output capacity runs out; LEADER operators only need capacity):
 *   1 replace   a replica on a DOWN node moves to a target;
 *   2 drain     a replica on a DRAINING node moves to a target (shards
 *               the draining node leads first), then leadership leaves
 *               draining nodes for the shards that got no move;
 *   3 repair    too few voters: add on a target; too many: remove one,
 *               on a DOWN / DRAINING / SUSPECT node first, then one whose
 *               rack another replica shares, then the most loaded node;
 *   4 split     over split_size, or hot for split_qps_ms;
 *   5 replicas  data replica counts of UP nodes within one;
 *   6 leaders   data leader counts of UP nodes within one;
 *   7 racks     a shard with two replicas on one rack moves one of them
 *               to a rack it does not use yet, if an UP node there can
 *               take it.
 * Rules 1-3 take a target that collides on racks when nothing else can
 * take the replica (availability first); rules 5 and 7 never make a
 * shard's rack spread worse, so they cannot undo each other: rule 7
 * strictly lowers the number of rack collisions and rule 5 the sum of
 * squared loads without raising collisions, so repeated plans converge.
 * Ties are broken by the lowest id everywhere: same inputs, same plan.
 *
 * Out of memory: bs_pd_schedule plans nothing (returns 0), which is what
 * a paused scheduler does too; the leader tries again on its next round.
 */
#include <stdlib.h>
#include <string.h>

#include "placement.h"

void bs_pd_sched_config_default(struct bs_pd_sched_config *c)
{
    memset(c, 0, sizeof(*c));
    c->suspect_after_ms = 3000;
    c->down_after_ms = 30000;
    c->op_timeout_ms = 600000;
    c->max_concurrent_moves = 3;
    c->split_size = 64ull << 20;
    c->split_qps = 0; /* off: rpc/node.h's default */
    c->split_qps_ms = 10000;
    c->max_shards = 100000;
    c->placement_voters = BS_PD_MAX_PLACEMENT_REPLICAS;
}

/* ------------------------------------------------------------ helpers */

static bool is_joint(const struct bs_pd_shard *s)
{
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (s->replicas[i].role == BS_PD_ROLE_INCOMING_VOTER ||
            s->replicas[i].role == BS_PD_ROLE_DEMOTING_VOTER)
            return true;
    return false;
}

static uint32_t voter_count(const struct bs_pd_shard *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_replicas; i++)
        n += s->replicas[i].role == BS_PD_ROLE_VOTER;
    return n;
}

/* The node of the shard's leader, 0 if unknown. */
static uint64_t leader_node(const struct bs_pd_shard *s)
{
    if (s->leader == 0)
        return 0;
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (s->replicas[i].id == s->leader)
            return s->replicas[i].node_id;
    return 0;
}

static uint64_t since(uint64_t now, uint64_t t)
{
    /* A time in the future (another leader's clock) is "just now". */
    return now > t ? now - t : 0;
}

/* ----------------------------------------------------------- maintain */

static void node_state_cmd(struct bs_pd_cmd *cmd, uint64_t id, uint8_t state,
                           uint64_t now)
{
    cmd->type = BS_PD_CMD_UPDATE_NODE_STATE;
    cmd->u.node_state.node_id = id;
    cmd->u.node_state.state = state;
    cmd->u.node_state.now = now;
}

static bool node_holds_replica(const struct bs_pd_state *st, uint64_t id)
{
    for (size_t i = 0; i < bs_pd_shard_count(st); i++)
        if (bs_pd_shard_replica_on(bs_pd_shard_at(st, i), id))
            return true;
    return false;
}

static bool op_targets(const struct bs_pd_state *st, uint64_t id)
{
    for (size_t i = 0; i < bs_pd_op_count(st); i++)
        if (bs_pd_op_at(st, i)->to_node == id)
            return true;
    return false;
}

int bs_pd_maintain(const struct bs_pd_state *st,
                   const struct bs_pd_stats *stats,
                   const struct bs_pd_sched_config *cfg, uint64_t now,
                   struct bs_pd_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    if (!bs_pd_bootstrapped(st))
        return 0;
    size_t n = bs_pd_node_count(st);

    /* 1. Back: a real heartbeat, fresh. */
    for (size_t i = 0; stats && i < n; i++) {
        const struct bs_pd_node *node = bs_pd_node_at(st, i);
        uint64_t id = node->info.id;
        if (node->state != BS_PD_NODE_SUSPECT && node->state != BS_PD_NODE_DOWN)
            continue;
        if (!bs_pd_stats_node(stats, id) ||
            since(now, bs_pd_stats_heard(stats, id)) > cfg->suspect_after_ms)
            continue;
        if (now > node->last_heartbeat) {
            cmd->type = BS_PD_CMD_NODE_HEARTBEAT;
            cmd->u.heartbeat.node_id = id;
            cmd->u.heartbeat.now = now;
        } else {
            node_state_cmd(cmd, id, BS_PD_NODE_UP, now);
        }
        return 1;
    }

    /* 2. Silent: UP -> SUSPECT, UP / SUSPECT -> DOWN. */
    for (size_t i = 0; stats && i < n; i++) {
        const struct bs_pd_node *node = bs_pd_node_at(st, i);
        uint64_t heard = bs_pd_stats_heard(stats, node->info.id);
        if (heard == 0)
            continue; /* never judged on no information */
        struct bs_pd_node v = *node;
        v.last_heartbeat = heard;
        if (node->state == BS_PD_NODE_UP && node->state_since > heard) {
            /* Registered (or brought up) after its last heartbeat: a
             * node that just joined opens its store and fetches
             * placement's state before its first heartbeat, which takes
             * longer than suspect_after at short intervals. It is judged
             * only once down_after has passed without one. */
            if (since(now, node->state_since) <= cfg->down_after_ms)
                continue;
            v.last_heartbeat = node->state_since;
        }
        int next = bs_pd_node_next_state(&v, now, cfg->suspect_after_ms,
                                         cfg->down_after_ms);
        if (next != node->state) {
            node_state_cmd(cmd, node->info.id, (uint8_t)next, now);
            return 1;
        }
    }

    /* 3. Drained. A node an operator still moves a replica to is left
     * alone: rule 4 cancels that operator first (its to_node is not UP),
     * so the learner it may have added is not orphaned on a removed
     * node. */
    for (size_t i = 0; i < n; i++) {
        const struct bs_pd_node *node = bs_pd_node_at(st, i);
        uint64_t id = node->info.id;
        if (node->state != BS_PD_NODE_DRAINING || node_holds_replica(st, id) ||
            op_targets(st, id))
            continue;
        node_state_cmd(cmd, id, BS_PD_NODE_REMOVED, now);
        return 1;
    }

    /* 4. Stuck operators. op_timeout_ms 0 disables the timeout. */
    for (size_t i = 0; i < bs_pd_op_count(st); i++) {
        const struct bs_pd_op *op = bs_pd_op_at(st, i);
        bool cancel = cfg->op_timeout_ms &&
                      since(now, op->created_at) > cfg->op_timeout_ms;
        if (op->to_node) {
            const struct bs_pd_node *to = bs_pd_node_find(st, op->to_node);
            cancel |= !to || to->state != BS_PD_NODE_UP;
        }
        if (cancel) {
            cmd->type = BS_PD_CMD_OP_CANCEL;
            cmd->u.op_cancel.op_id = op->id;
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ planning */

struct vnode {
    uint64_t id;
    uint8_t state;
    const char *rack; /* borrowed from the state; NULL = no rack label */
    int64_t load;     /* data replicas, operators counted as done */
    int64_t leaders;  /* data shards led, operators counted as done */
};

struct plan {
    const struct bs_pd_state *st;
    const struct bs_pd_stats *stats; /* may be NULL */
    const struct bs_pd_sched_config *cfg;
    uint64_t now;
    struct vnode *nodes; /* owned, in id order */
    size_t n_nodes;
    struct vnode **order; /* owned scratch for sorting UP nodes */
    bool *busy;           /* owned, per shard index: operator on it */
    size_t n_shards;
    size_t budget;   /* MOVE / SPLIT operators left to plan */
    uint64_t n_data; /* data shards, splits in flight and planned added */
    uint32_t n_up;
    struct bs_pd_op *out; /* borrowed */
    size_t n, cap;
};

static struct vnode *vnode_find(const struct plan *p, uint64_t id)
{
    size_t lo = 0, hi = p->n_nodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->nodes[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n_nodes && p->nodes[lo].id == id ? &p->nodes[lo] : NULL;
}

static bool vnode_up(const struct plan *p, uint64_t id)
{
    const struct vnode *v = vnode_find(p, id);
    return v && v->state == BS_PD_NODE_UP;
}

/* Index of shard id in the shard table, or n_shards. */
static size_t shard_index(const struct plan *p, uint64_t id)
{
    size_t lo = 0, hi = p->n_shards;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bs_pd_shard_at(p->st, mid)->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n_shards && bs_pd_shard_at(p->st, lo)->id == id
               ? lo
               : p->n_shards;
}

/* Voters a shard should have. Shard 0: placement_voters (at most
 * BS_PD_MAX_PLACEMENT_REPLICAS) when that many nodes are UP, else 3, else
 * the UP count, rounded down to odd (an even group tolerates no more
 * failures than the odd one below it); rule 3 refuses to reach a target
 * below three by removing healthy voters. 0 = leave it alone. */
static uint32_t wanted_voters(const struct plan *p, const struct bs_pd_shard *s)
{
    if (s->id != BS_PD_SHARD_PLACEMENT)
        return bs_pd_replicas_per_shard(p->st);
    uint32_t want = p->cfg->placement_voters;
    if (want > BS_PD_MAX_PLACEMENT_REPLICAS)
        want = BS_PD_MAX_PLACEMENT_REPLICAS;
    if (p->n_up < want)
        want = p->n_up >= 3 ? 3 : p->n_up;
    if (want % 2 == 0 && want > 0)
        want--;
    return want;
}

/* No bound on rack collisions (more than a replica set can have). */
#define ANY_RACKS (BS_RAFT_MAX_MEMBERS + 1)

/*
 * Rack collisions of the shard's replicas with the one on `without`
 * removed and one on `with` added (0 = none): replicas minus distinct
 * racks, over the replicas whose node has a rack label. 0 = every labelled
 * replica on its own rack.
 */
static int rack_collisions(const struct plan *p, const struct bs_pd_shard *s,
                           uint64_t without, uint64_t with)
{
    const char *racks[BS_RAFT_MAX_MEMBERS + 1];
    size_t n = 0;
    for (uint32_t i = 0; i < s->n_replicas; i++) {
        if (s->replicas[i].node_id == without)
            continue;
        const struct vnode *v = vnode_find(p, s->replicas[i].node_id);
        if (v && v->rack)
            racks[n++] = v->rack;
    }
    const struct vnode *w = with ? vnode_find(p, with) : NULL;
    if (w && w->rack)
        racks[n++] = w->rack;
    int c = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(racks[i], racks[j]) == 0) {
                c++;
                break;
            }
    return c;
}

/*
 * The best UP node to take the replica of s that leaves `from` (0 = an
 * added replica): not holding s, fewest rack collisions afterwards, then
 * fewest data replicas, then lowest id. max_col bounds the collisions
 * allowed afterwards (ANY_RACKS: any). 0 if there is none, also when the
 * shard has no room for the learner a move adds first, or for a node id
 * that no replica id can carry (apply would refuse both, and the leader
 * would propose the same refused operator round after round).
 */
static uint64_t pick_target(const struct plan *p, const struct bs_pd_shard *s,
                            uint64_t from, int max_col)
{
    const struct vnode *best = NULL;
    int best_col = 0;
    if (s->n_replicas >= BS_RAFT_MAX_MEMBERS)
        return 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const struct vnode *v = &p->nodes[i];
        if (v->state != BS_PD_NODE_UP || v->id == from || v->id > UINT32_MAX ||
            bs_pd_shard_replica_on(s, v->id))
            continue;
        int col = rack_collisions(p, s, from, v->id);
        if (col > max_col)
            continue;
        if (!best || col < best_col ||
            (col == best_col && v->load < best->load)) {
            best = v;
            best_col = col;
        }
    }
    return best ? best->id : 0;
}

/* Whether the scheduler may still plan a MOVE / SPLIT, a LEADER. */
static bool can_move(const struct plan *p)
{
    return p->budget > 0 && p->n < p->cap;
}

static bool can_lead(const struct plan *p)
{
    return p->n < p->cap;
}

/* Among the UP voters of s other than on `except`, the node with the
 * fewest leaders (lowest id on a tie), or NULL. */
static struct vnode *least_leading_voter(const struct plan *p,
                                         const struct bs_pd_shard *s,
                                         uint64_t except)
{
    struct vnode *best = NULL;
    for (uint32_t i = 0; i < s->n_replicas; i++) {
        const struct bs_pd_replica *r = &s->replicas[i];
        if (r->role != BS_PD_ROLE_VOTER || r->node_id == except)
            continue;
        struct vnode *v = vnode_find(p, r->node_id);
        if (!v || v->state != BS_PD_NODE_UP)
            continue;
        if (!best || v->leaders < best->leaders ||
            (v->leaders == best->leaders && v->id < best->id))
            best = v;
    }
    return best;
}

/*
 * Counts a move of s's replica from `from` to `to` (either may be 0) as
 * done in the virtual counts. If the leaving replica leads, the executor
 * first hands leadership to another voter: counted as going to the one
 * that leads fewest, which is the choice rule 6 would make.
 */
static void count_move(struct plan *p, const struct bs_pd_shard *s,
                       uint64_t from, uint64_t to)
{
    if (s->keyless)
        return; /* shard 0 is outside both balances */
    struct vnode *f = from ? vnode_find(p, from) : NULL;
    struct vnode *t = to ? vnode_find(p, to) : NULL;
    if (f && bs_pd_shard_replica_on(s, from))
        f->load--;
    if (t && !bs_pd_shard_replica_on(s, to))
        t->load++;
    uint64_t ln = leader_node(s);
    if (f && ln == from) {
        struct vnode *heir = least_leading_voter(p, s, from);
        f->leaders--;
        if (heir)
            heir->leaders++;
    }
}

static void count_leader(struct plan *p, const struct bs_pd_shard *s,
                         uint64_t to)
{
    uint64_t ln = leader_node(s);
    if (s->keyless || ln == to)
        return;
    struct vnode *f = ln ? vnode_find(p, ln) : NULL;
    struct vnode *t = vnode_find(p, to);
    if (f)
        f->leaders--;
    if (t)
        t->leaders++;
}

static void plan_op(struct plan *p, size_t si, uint8_t kind, uint8_t reason,
                    uint64_t from, uint64_t to)
{
    const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
    struct bs_pd_op *op = &p->out[p->n++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->reason = reason;
    op->shard_id = s->id;
    op->from_node = from;
    op->to_node = to;
    op->created_at = p->now;
    p->busy[si] = true;
    switch (kind) {
    case BS_PD_OP_MOVE:
        p->budget--;
        count_move(p, s, from, to);
        break;
    case BS_PD_OP_SPLIT:
        p->budget--;
        p->n_data++;
        break;
    case BS_PD_OP_LEADER:
        count_leader(p, s, to);
        break;
    }
}

/* The first replica of s (lowest node id) on a node in `state`, or
 * NULL. */
static const struct bs_pd_replica *replica_in_state(const struct plan *p,
                                                    const struct bs_pd_shard *s,
                                                    uint8_t state)
{
    const struct bs_pd_replica *best = NULL;
    for (uint32_t i = 0; i < s->n_replicas; i++) {
        const struct bs_pd_replica *r = &s->replicas[i];
        const struct vnode *v = vnode_find(p, r->node_id);
        if (v && v->state == state && (!best || r->node_id < best->node_id))
            best = r;
    }
    return best;
}

/*
 * Moves the replica r of shard si off its node (rules 1 and 2): a learner
 * is only removed (no operator names it, so it is a leftover); a voter of
 * a shard that has more than it should is removed too; otherwise it is
 * replaced on a target, or left where it is if no node can take it.
 */
static void evacuate(struct plan *p, size_t si, const struct bs_pd_replica *r,
                     uint8_t reason)
{
    const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
    if (r->role != BS_PD_ROLE_VOTER) {
        plan_op(p, si, BS_PD_OP_MOVE, reason, r->node_id, 0);
        return;
    }
    if (voter_count(s) > wanted_voters(p, s)) {
        plan_op(p, si, BS_PD_OP_MOVE, BS_PD_REASON_REPAIR, r->node_id, 0);
        return;
    }
    uint64_t to = pick_target(p, s, r->node_id, ANY_RACKS);
    if (to)
        plan_op(p, si, BS_PD_OP_MOVE, reason, r->node_id, to);
}

/* A shard rules 1-3 and 5-7 may touch. */
static bool movable(const struct plan *p, size_t si)
{
    return !p->busy[si] && !is_joint(bs_pd_shard_at(p->st, si));
}

/* 1 */
static void rule_replace(struct plan *p)
{
    for (size_t si = 0; si < p->n_shards && can_move(p); si++) {
        if (!movable(p, si))
            continue;
        const struct bs_pd_replica *r =
            replica_in_state(p, bs_pd_shard_at(p->st, si), BS_PD_NODE_DOWN);
        if (r)
            evacuate(p, si, r, BS_PD_REASON_REPLACE);
    }
}

/* 2 */
static void rule_drain(struct plan *p)
{
    /* Pass 0: shards a draining node leads, so leadership leaves it early;
     * pass 1: the rest. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t si = 0; si < p->n_shards && can_move(p); si++) {
            if (!movable(p, si))
                continue;
            const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
            const struct bs_pd_replica *r =
                replica_in_state(p, s, BS_PD_NODE_DRAINING);
            if (!r)
                continue;
            const struct vnode *lv = vnode_find(p, leader_node(s));
            bool led = lv && lv->state == BS_PD_NODE_DRAINING;
            if (led == (pass == 0))
                evacuate(p, si, r, BS_PD_REASON_DRAIN);
        }
    }
    /* Leadership off draining nodes for the shards that got no move (the
     * budget ran out, or no node can take the replica): LEADER operators
     * are cheap and unlimited. */
    for (size_t si = 0; si < p->n_shards && can_lead(p); si++) {
        if (!movable(p, si))
            continue;
        const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
        uint64_t ln = leader_node(s);
        const struct vnode *lv = ln ? vnode_find(p, ln) : NULL;
        if (!lv || lv->state != BS_PD_NODE_DRAINING)
            continue;
        const struct vnode *heir = least_leading_voter(p, s, ln);
        if (heir)
            plan_op(p, si, BS_PD_OP_LEADER, BS_PD_REASON_DRAIN, ln, heir->id);
    }
}

/* Rank of a voter to remove from an over-full shard: lower goes first. */
static int victim_rank(const struct vnode *v)
{
    if (!v)
        return 0;
    switch (v->state) {
    case BS_PD_NODE_DOWN:
        return 0;
    case BS_PD_NODE_DRAINING:
        return 1;
    case BS_PD_NODE_SUSPECT:
        return 2;
    default:
        return 3;
    }
}

/* The voter to remove from s: by victim_rank, then one whose removal
 * lowers rack collisions, then the node with most data replicas, then
 * the lowest node id. The leader may be chosen: the executor transfers
 * leadership first. */
static uint64_t pick_victim(const struct plan *p, const struct bs_pd_shard *s)
{
    int col = rack_collisions(p, s, 0, 0);
    uint64_t best = 0;
    int best_rank = 0;
    bool best_rack = false;
    int64_t best_load = 0;
    for (uint32_t i = 0; i < s->n_replicas; i++) {
        const struct bs_pd_replica *r = &s->replicas[i];
        if (r->role != BS_PD_ROLE_VOTER)
            continue;
        const struct vnode *v = vnode_find(p, r->node_id);
        int rank = victim_rank(v);
        bool rack = rack_collisions(p, s, r->node_id, 0) < col;
        int64_t load = v ? v->load : 0;
        bool better;
        if (!best)
            better = true;
        else if (rank != best_rank)
            better = rank < best_rank;
        else if (rack != best_rack)
            better = rack;
        else if (load != best_load)
            better = load > best_load;
        else
            better = r->node_id < best;
        if (better) {
            best = r->node_id;
            best_rank = rank;
            best_rack = rack;
            best_load = load;
        }
    }
    return best;
}

/* 3 */
static void rule_repair(struct plan *p)
{
    for (size_t si = 0; si < p->n_shards && can_move(p); si++) {
        if (!movable(p, si))
            continue;
        const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
        uint32_t have = voter_count(s), want = wanted_voters(p, s);
        if (want == 0 || have == want)
            continue;
        if (have < want) {
            uint64_t to = pick_target(p, s, 0, ANY_RACKS);
            if (to)
                plan_op(p, si, BS_PD_OP_MOVE, BS_PD_REASON_REPAIR, 0, to);
        } else {
            uint64_t from = pick_victim(p, s);
            /* With fewer than three nodes UP the placement group's target
             * drops to one voter; removing the voters on nodes that are
             * gone is right, but removing a healthy one would only throw
             * away a copy (two voters and one are equally unavailable
             * when a node fails, and one loses the data with it). Repair
             * grows the group again when nodes come back. */
            if (s->keyless && p->n_up < 3 && have <= 3 && vnode_up(p, from))
                continue;
            if (from)
                plan_op(p, si, BS_PD_OP_MOVE, BS_PD_REASON_REPAIR, from, 0);
        }
    }
}

/*
 * 4. The size only counts if the report is at least as new as the shard's
 * range (version): right after a split, the last report still describes
 * the range before it and would split the halves again.
 */
static void rule_split(struct plan *p)
{
    const struct bs_pd_sched_config *c = p->cfg;
    if (!p->stats)
        return;
    for (size_t si = 0; si < p->n_shards && can_move(p); si++) {
        const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
        if (s->keyless || p->busy[si])
            continue;
        uint64_t hot_since;
        const struct bs_pd_shard_stat *ss =
            bs_pd_stats_shard(p->stats, s->id, NULL, &hot_since);
        if (!ss || ss->version < s->epoch.version)
            continue;
        uint8_t reason;
        if (c->split_size && ss->size_bytes > c->split_size)
            reason = BS_PD_REASON_SPLIT_SIZE;
        else if (c->split_qps && hot_since &&
                 since(p->now, hot_since) >= c->split_qps_ms &&
                 p->now >= hot_since)
            reason = BS_PD_REASON_SPLIT_LOAD;
        else
            continue;
        if (p->n_data >= c->max_shards)
            return;
        plan_op(p, si, BS_PD_OP_SPLIT, reason, 0, 0);
    }
}

/* UP nodes into p->order, sorted by key (load or leaders) descending,
 * lowest id first on a tie; returns how many. */
static int by_load(const void *a, const void *b)
{
    const struct vnode *x = *(struct vnode *const *)a;
    const struct vnode *y = *(struct vnode *const *)b;
    if (x->load != y->load)
        return x->load > y->load ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int by_leaders(const void *a, const void *b)
{
    const struct vnode *x = *(struct vnode *const *)a;
    const struct vnode *y = *(struct vnode *const *)b;
    if (x->leaders != y->leaders)
        return x->leaders > y->leaders ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static size_t sort_up(struct plan *p, int (*cmp)(const void *, const void *))
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].state == BS_PD_NODE_UP)
            p->order[k++] = &p->nodes[i];
    qsort(p->order, k, sizeof(*p->order), cmp);
    return k;
}

/* Whether every replica of s is on an UP node: moving one replica of a
 * shard that already lacks one would lower its availability further. */
static bool all_up(const struct plan *p, const struct bs_pd_shard *s)
{
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (!vnode_up(p, s->replicas[i].node_id))
            return false;
    return true;
}

/*
 * A data shard to move from src to dst for the replica balance: healthy
 * (no operator, not joint, the voters it should have, all on UP nodes), a
 * voter on src, nothing on dst, racks no worse afterwards. Shards src
 * does not lead first (no leadership transfer needed), then by id.
 * n_shards if none.
 */
static size_t balance_shard(const struct plan *p, uint64_t src, uint64_t dst)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t si = 0; si < p->n_shards; si++) {
            const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
            if (s->keyless || !movable(p, si))
                continue;
            const struct bs_pd_replica *r = bs_pd_shard_replica_on(s, src);
            if (!r || r->role != BS_PD_ROLE_VOTER ||
                bs_pd_shard_replica_on(s, dst))
                continue;
            if ((leader_node(s) == src) != (pass == 1))
                continue;
            if (voter_count(s) != wanted_voters(p, s) || !all_up(p, s))
                continue;
            if (rack_collisions(p, s, src, dst) > rack_collisions(p, s, 0, 0))
                continue;
            return si;
        }
    }
    return p->n_shards;
}

/* 5. From the most to the least loaded pair that has a shard to move,
 * while some pair of UP nodes differs by more than one. */
static void rule_balance_replicas(struct plan *p)
{
    while (can_move(p)) {
        size_t k = sort_up(p, by_load);
        if (k < 2 || p->order[0]->load - p->order[k - 1]->load <= 1)
            return;
        bool planned = false;
        for (size_t a = 0; a < k && !planned; a++) {
            for (size_t b = k; b-- > 0 && !planned;) {
                struct vnode *src = p->order[a], *dst = p->order[b];
                if (src->load - dst->load <= 1)
                    break;
                size_t si = balance_shard(p, src->id, dst->id);
                if (si < p->n_shards) {
                    plan_op(p, si, BS_PD_OP_MOVE, BS_PD_REASON_BALANCE_REPLICAS,
                            src->id, dst->id);
                    planned = true;
                }
            }
        }
        if (!planned)
            return;
    }
}

/* A data shard src leads with a voter on dst, no operator, not joint;
 * n_shards if none. */
static size_t leader_shard(const struct plan *p, uint64_t src, uint64_t dst)
{
    for (size_t si = 0; si < p->n_shards; si++) {
        const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
        if (s->keyless || !movable(p, si) || leader_node(s) != src)
            continue;
        const struct bs_pd_replica *r = bs_pd_shard_replica_on(s, dst);
        if (r && r->role == BS_PD_ROLE_VOTER)
            return si;
    }
    return p->n_shards;
}

/* 6 */
static void rule_balance_leaders(struct plan *p)
{
    while (can_lead(p)) {
        size_t k = sort_up(p, by_leaders);
        if (k < 2 || p->order[0]->leaders - p->order[k - 1]->leaders <= 1)
            return;
        bool planned = false;
        for (size_t a = 0; a < k && !planned; a++) {
            for (size_t b = k; b-- > 0 && !planned;) {
                struct vnode *src = p->order[a], *dst = p->order[b];
                if (src->leaders - dst->leaders <= 1)
                    break;
                size_t si = leader_shard(p, src->id, dst->id);
                if (si < p->n_shards) {
                    plan_op(p, si, BS_PD_OP_LEADER,
                            BS_PD_REASON_BALANCE_LEADERS, src->id, dst->id);
                    planned = true;
                }
            }
        }
        if (!planned)
            return;
    }
}

/*
 * 7. A healthy shard with two replicas on one rack: move one of the
 * colliding replicas (not the leader's if possible, then the most loaded
 * node, then the lowest id) to a node whose rack lowers the collisions.
 */
static void rule_racks(struct plan *p)
{
    for (size_t si = 0; si < p->n_shards && can_move(p); si++) {
        if (!movable(p, si))
            continue;
        const struct bs_pd_shard *s = bs_pd_shard_at(p->st, si);
        int col = rack_collisions(p, s, 0, 0);
        if (col == 0 || voter_count(s) != wanted_voters(p, s) || !all_up(p, s))
            continue;
        uint64_t ln = leader_node(s), best_from = 0, best_to = 0;
        bool best_leads = false;
        int64_t best_load = 0;
        for (uint32_t i = 0; i < s->n_replicas; i++) {
            uint64_t from = s->replicas[i].node_id;
            if (s->replicas[i].role != BS_PD_ROLE_VOTER ||
                rack_collisions(p, s, from, 0) >= col)
                continue; /* not one of the colliding replicas */
            uint64_t to = pick_target(p, s, from, col - 1);
            if (!to)
                continue;
            bool leads = from == ln;
            int64_t load = vnode_find(p, from)->load;
            bool better;
            if (!best_from)
                better = true;
            else if (leads != best_leads)
                better = !leads;
            else if (load != best_load)
                better = load > best_load;
            else
                better = from < best_from;
            if (better) {
                best_from = from;
                best_to = to;
                best_leads = leads;
                best_load = load;
            }
        }
        if (best_from)
            plan_op(p, si, BS_PD_OP_MOVE, BS_PD_REASON_RACK, best_from,
                    best_to);
    }
}

/* Fills the virtual counts from the state, then counts the operators in
 * flight as done and marks their shards busy. */
static void plan_init(struct plan *p)
{
    const struct bs_pd_state *st = p->st;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const struct bs_pd_node *n = bs_pd_node_at(st, i);
        p->nodes[i] = (struct vnode){.id = n->info.id,
                                     .state = n->state,
                                     .rack = bs_pd_node_label(n, "rack")};
        p->n_up += n->state == BS_PD_NODE_UP;
    }
    for (size_t si = 0; si < p->n_shards; si++) {
        const struct bs_pd_shard *s = bs_pd_shard_at(st, si);
        if (s->keyless)
            continue;
        for (uint32_t i = 0; i < s->n_replicas; i++) {
            struct vnode *v = vnode_find(p, s->replicas[i].node_id);
            if (v)
                v->load++;
        }
        struct vnode *lv = vnode_find(p, leader_node(s));
        if (lv)
            lv->leaders++;
    }
    p->n_data = bs_pd_route_count(st);
    /* A shard whose leader reports a newer configuration or range than
     * placement records has changed under placement (a cancelled move
     * that had already promoted its learner, a split not reported yet):
     * planning on the old record could move a replica to a node that
     * already holds one. It waits for the report. */
    for (size_t si = 0; p->stats && si < p->n_shards; si++) {
        const struct bs_pd_shard *s = bs_pd_shard_at(st, si);
        const struct bs_pd_shard_stat *ss =
            bs_pd_stats_shard(p->stats, s->id, NULL, NULL);
        if (ss && (ss->conf_ver > s->epoch.conf_ver ||
                   ss->version > s->epoch.version))
            p->busy[si] = true;
    }
    size_t inflight = 0;
    for (size_t i = 0; i < bs_pd_op_count(st); i++) {
        const struct bs_pd_op *op = bs_pd_op_at(st, i);
        size_t si = shard_index(p, op->shard_id);
        if (si == p->n_shards)
            continue;
        const struct bs_pd_shard *s = bs_pd_shard_at(st, si);
        p->busy[si] = true;
        switch (op->kind) {
        case BS_PD_OP_MOVE:
            inflight++;
            count_move(p, s, op->from_node, op->to_node);
            break;
        case BS_PD_OP_SPLIT:
            inflight++;
            p->n_data++;
            break;
        case BS_PD_OP_LEADER:
            count_leader(p, s, op->to_node);
            break;
        }
    }
    uint32_t max = p->cfg->max_concurrent_moves;
    if (p->budget != SIZE_MAX)
        p->budget = inflight < max ? max - inflight : 0;
}

size_t bs_pd_schedule(const struct bs_pd_state *st,
                      const struct bs_pd_stats *stats,
                      const struct bs_pd_sched_config *cfg, uint64_t now,
                      bool ignore_limit, struct bs_pd_op *out, size_t cap)
{
    if (cap == 0 || !bs_pd_bootstrapped(st))
        return 0;
    if (bs_pd_sched(st)->paused && !ignore_limit)
        return 0;
    struct plan p = {.st = st,
                     .stats = stats,
                     .cfg = cfg,
                     .now = now,
                     .n_nodes = bs_pd_node_count(st),
                     .n_shards = bs_pd_shard_count(st),
                     .budget = ignore_limit ? SIZE_MAX : 0,
                     .out = out,
                     .cap = cap};
    size_t nn = p.n_nodes ? p.n_nodes : 1;
    p.nodes = calloc(nn, sizeof(*p.nodes));
    p.order = calloc(nn, sizeof(*p.order));
    p.busy = calloc(p.n_shards ? p.n_shards : 1, sizeof(*p.busy));
    if (p.nodes && p.order && p.busy) {
        plan_init(&p);
        rule_replace(&p);
        rule_drain(&p);
        rule_repair(&p);
        rule_split(&p);
        rule_balance_replicas(&p);
        rule_balance_leaders(&p);
        rule_racks(&p);
    }
    free(p.nodes);
    free(p.order);
    free(p.busy);
    return p.n;
}
