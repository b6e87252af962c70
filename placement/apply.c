/*
 * apply.c - bs_pd_apply: the placement state machine's transition
 * function, one committed command at a time.
 *
 * Determinism: the outcome depends only on the state and the command
 * bytes. Every check happens before the first change, and every
 * allocation a command needs is made (or reserved) before the first
 * change too, so a command is applied entirely or not at all; only
 * BS_ENOMEM leaves the index unconsumed, because it is the one outcome
 * that another replica would not share.
 *
 * Reports from data shards (split, replica change, leader) carry epochs
 * and terms; anything not newer than what placement holds is answered
 * BS_ESTALE and ignored, which makes retries, duplicates and replays of
 * old reports harmless. The node state machine is drawn in placement.h;
 * each edge is one of the handlers below.
 *
 * Operators. OP_CREATE reserves every id the operator will need (the new
 * replica of a move, the new shard and its replicas of a split) from the
 * same allocators that ALLOC_IDS uses, so the ids are cluster-wide unique
 * and the shard leader that executes the operator needs no round trip to
 * get them; every replica computes the same ids from the same log. An
 * operator is never updated, only created and deleted. It is deleted when
 * the shard's own report shows its effect, in the apply of that report:
 *
 *   command         when                      ends       handler
 *   REPLICA_CHANGE  new_replica votes (or     MOVE       apply_replica_change
 *                   no to_node) and from_node
 *                   holds none (or is 0)
 *   SHARD_LEADER    the leader is on to_node  LEADER     apply_leader
 *   SHARD_SPLIT     to the new_shard_id       SPLIT      apply_split
 *   SHARD_SPLIT     to another shard id       SPLIT (*)  apply_split
 *   OP_CANCEL       always                    any (*)    apply_op_cancel
 *   UPDATE_NODE_    the node is removed       any naming apply_node_state
 *     STATE                                   it (*)
 *
 *   (*) counted as cancelled; the others as finished.
 *
 * Reserved ids count as taken: a report that uses an id another operator
 * reserved is refused (check_new_replicas), so bs_pd_check's "every
 * replica id once" holds for reserved ids too.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement_int.h"

static int refuse(struct bs_pd_result *res, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct bs_pd_result *res, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
    va_end(ap);
    return rc;
}

/* Non-empty distinct label keys. Strings are NUL-terminated (the decoder
 * guarantees it). */
static int check_labels(const struct bs_pd_node_info *ni,
                        struct bs_pd_result *res)
{
    for (uint32_t i = 0; i < ni->n_labels; i++) {
        if (ni->labels[i].key[0] == '\0')
            return refuse(res, BS_EINVAL, "node %llu: empty label key",
                          (unsigned long long)ni->id);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(ni->labels[i].key, ni->labels[j].key) == 0)
                return refuse(res, BS_EINVAL, "node %llu: label %s given twice",
                              (unsigned long long)ni->id, ni->labels[i].key);
    }
    return 0;
}

/* Id, then labels. */
static int check_node_info(const struct bs_pd_node_info *ni,
                           struct bs_pd_result *res)
{
    if (ni->id == 0 || ni->id == UINT64_MAX)
        return refuse(res, BS_EINVAL, "node ids 0 and 2^64-1 are reserved");
    return check_labels(ni, res);
}

static bool is_member(const struct bs_pd_shard *s, uint64_t rid)
{
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (s->replicas[i].id == rid)
            return true;
    return false;
}

/* Whether replica id rid is used by a shard other than except. */
static bool replica_id_used(const struct bs_pd_state *st, uint64_t rid,
                            const struct bs_pd_shard *except)
{
    for (size_t i = 0; i < st->n_shards; i++) {
        const struct bs_pd_shard *s = st->shards[i];
        if (s == except)
            continue;
        for (uint32_t j = 0; j < s->n_replicas; j++)
            if (s->replicas[j].id == rid)
                return true;
    }
    return false;
}

/* Whether an operator other than own reserved replica id rid. own is the
 * operator that the command being applied completes (its reservation is
 * what the report is expected to use); NULL if none. */
static bool reserved_by_other_op(const struct bs_pd_state *st, uint64_t rid,
                                 const struct bs_pd_op *own)
{
    for (size_t i = 0; i < st->n_ops; i++) {
        const struct bs_pd_op *op = &st->ops[i].op;
        if (op == own)
            continue;
        if (op->new_replica == rid)
            return true;
        for (uint32_t j = 0; j < op->n_new_replicas; j++)
            if (op->new_replicas[j].id == rid)
                return true;
    }
    return false;
}

/* The operator in flight on shard_id if it is of kind, else NULL. */
static const struct bs_pd_op *op_of_kind(const struct bs_pd_state *st,
                                         uint64_t shard_id, uint8_t kind)
{
    const struct bs_pd_op *op = bs_pd_op_of_shard(st, shard_id);
    return op && op->kind == kind ? op : NULL;
}

/* Deletes the operator on shard_id (it must exist; a dirty slot is
 * reserved by bs_pd_apply), counting it finished or cancelled. */
static void op_retire(struct bs_pd_state *st, uint64_t shard_id, bool finished)
{
    size_t i = bs_pd__op_index_of_shard(st, shard_id);
    assert(i < st->n_ops);
    bs_pd__op_remove(st, i);
    if (finished)
        st->ops_finished++;
    else
        st->ops_cancelled++;
}

/* ------------------------------------------------------------ bootstrap */

static int node_id_order(const void *a, const void *b)
{
    uint64_t x = ((const struct bs_pd_node_info *)a)->id;
    uint64_t y = ((const struct bs_pd_node_info *)b)->id;
    return x < y ? -1 : x > y;
}

/*
 * Fills ns (a fresh state) with the initial cluster. Placement: the data
 * shards' replicas take consecutive "slots" of the node ring (sorted by
 * id): shard i gets nodes (i*r + j) mod n for j < r, which are distinct
 * when r <= n and give every node the same replica count to within one.
 * Each shard's preferred leader is, among its replicas, the node that
 * leads fewest shards so far (first slot on a tie); over this slot layout
 * that keeps leader counts within one as well (checked by brute force
 * for n <= 40, r <= 16, up to 1500 shards; the tests keep checking it). Shard 0
 * is not part of that balance: it sits on the first p nodes and leads from the
 * first.
 */
static int build_cluster(struct bs_pd_state *ns,
                         const struct bs_pd_node_info *sorted, uint32_t n,
                         uint32_t n_shards, uint32_t r, uint64_t now)
{
    uint32_t *leads = NULL;
    int rc = BS_ENOMEM;
    if (bs_pd__reserve_nodes(ns, n) ||
        bs_pd__reserve_shards(ns, (size_t)n_shards + 1) ||
        bs_pd__reserve_dirty(ns, n, (size_t)n_shards + 1))
        goto out;
    leads = calloc(n, sizeof(*leads));
    if (!leads)
        goto out;

    for (uint32_t i = 0; i < n; i++) {
        struct bs_pd_node node = {.info = sorted[i],
                                  .state = BS_PD_NODE_UP,
                                  .last_heartbeat = now,
                                  .state_since = now};
        bs_pd__node_insert(ns, &node);
    }
    ns->next_node_id = sorted[n - 1].id + 1;

    /* Shard 0: the placement group, an odd number of voters <= 5. */
    uint32_t p =
        n < BS_PD_MAX_PLACEMENT_REPLICAS ? n : BS_PD_MAX_PLACEMENT_REPLICAS;
    if (p % 2 == 0)
        p--;
    struct bs_pd_shard *s0 =
        bs_pd__shard_new(BS_PD_SHARD_PLACEMENT, NULL, 0, NULL, 0);
    if (!s0)
        goto out;
    s0->keyless = true;
    s0->epoch = (struct bs_pd_epoch){1, 1};
    for (uint32_t j = 0; j < p; j++)
        s0->replicas[j] = (struct bs_pd_replica){
            BS_ENG_REPLICA_ID(sorted[j].id, ns->next_replica_id++),
            sorted[j].id, BS_PD_ROLE_VOTER};
    s0->n_replicas = p;
    s0->leader = s0->replicas[0].id;
    bs_pd__shard_insert(ns, s0, 0);

    for (uint32_t i = 0; i < n_shards; i++) {
        uint8_t start[2], end[2];
        size_t slen, elen = 0;
        bs_pd_initial_split_key(i, n_shards, start, &slen);
        if (i + 1 < n_shards)
            bs_pd_initial_split_key(i + 1, n_shards, end, &elen);
        struct bs_pd_shard *s =
            bs_pd__shard_new((uint64_t)i + 1, start, slen, end, elen);
        if (!s)
            goto out;
        s->epoch = (struct bs_pd_epoch){1, 1};
        uint32_t best = 0;
        for (uint32_t j = 0; j < r; j++) {
            uint32_t k = (uint32_t)(((uint64_t)i * r + j) % n);
            s->replicas[j] = (struct bs_pd_replica){
                BS_ENG_REPLICA_ID(sorted[k].id, ns->next_replica_id++),
                sorted[k].id, BS_PD_ROLE_VOTER};
            uint32_t kb = (uint32_t)(((uint64_t)i * r + best) % n);
            if (leads[k] < leads[kb])
                best = j;
        }
        s->n_replicas = r;
        leads[((uint64_t)i * r + best) % n]++;
        s->leader = s->replicas[best].id;
        bs_pd__shard_insert(ns, s, i);
    }
    ns->next_shard_id = (uint64_t)n_shards + 1;
    rc = 0;
out:
    free(leads);
    return rc;
}

static int apply_bootstrap(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                           struct bs_pd_result *res)
{
    const typeof(cmd->u.bootstrap) *c = &cmd->u.bootstrap;
    if (st->bootstrapped)
        return refuse(res, BS_EEXIST, "the cluster is already bootstrapped");
    uint32_t n_shards =
        c->initial_shards ? c->initial_shards : BS_PD_DEFAULT_INITIAL_SHARDS;
    uint32_t r = c->replicas ? c->replicas : BS_PD_DEFAULT_REPLICAS;
    if (n_shards > BS_PD_MAX_INITIAL_SHARDS)
        return refuse(res, BS_EINVAL, "initial shards %u > %u", n_shards,
                      (unsigned)BS_PD_MAX_INITIAL_SHARDS);
    if (r > BS_RAFT_MAX_MEMBERS)
        return refuse(res, BS_EINVAL, "replicas per shard %u > %u", r,
                      (unsigned)BS_RAFT_MAX_MEMBERS);
    if (c->n_nodes == 0)
        return refuse(res, BS_EINVAL, "bootstrap needs at least one node");
    if (r > c->n_nodes)
        r = c->n_nodes;

    struct bs_pd_node_info *sorted = malloc(c->n_nodes * sizeof(*sorted));
    if (!sorted)
        return BS_ENOMEM;
    memcpy(sorted, c->nodes, c->n_nodes * sizeof(*sorted));
    qsort(sorted, c->n_nodes, sizeof(*sorted), node_id_order);
    int rc = 0;
    for (uint32_t i = 0; i < c->n_nodes && rc == 0; i++) {
        rc = check_node_info(&sorted[i], res);
        if (rc == 0 && i > 0 && sorted[i].id == sorted[i - 1].id)
            rc = refuse(res, BS_EINVAL, "node %llu is listed twice",
                        (unsigned long long)sorted[i].id);
    }
    if (rc) {
        free(sorted);
        return rc;
    }

    /* Built aside and swapped in, so that out-of-memory leaves st as it
     * was. */
    struct bs_pd_state *ns = bs_pd_state_create();
    rc = ns ? build_cluster(ns, sorted, c->n_nodes, n_shards, r, c->now)
            : BS_ENOMEM;
    free(sorted);
    if (rc) {
        bs_pd_state_destroy(ns);
        return rc;
    }
    ns->bootstrapped = true;
    ns->cluster_id = c->cluster_id;
    ns->replicas_per_shard = r;
    ns->applied = st->applied;
    bs_pd__state_swap(st, ns);
    bs_pd_state_destroy(ns);
    return 0;
}

/* ---------------------------------------------------------------- nodes */

/*
 * (none) -> UP with a new id: a node that starts with --join knows no id
 * yet. The join token (random, chosen by the node once and kept until it
 * has its id) is what makes the join idempotent: the node's request may be
 * retried, reach a new placement leader, or be committed twice, and every
 * copy after the first finds the node it created and answers its id
 * (BS_ESTALE, first_id set) instead of making another one. A removed
 * node's token no longer counts: its id is gone for good.
 *
 * Ids of joined nodes stay below 2^32 because a replica id carries its
 * node id in its upper 32 bits (BS_ENG_REPLICA_ID).
 */
static int apply_join(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                      struct bs_pd_result *res)
{
    const typeof(cmd->u.register_node) *c = &cmd->u.register_node;
    if (c->join_token == 0)
        return refuse(res, BS_EINVAL,
                      "a node without an id must send a join token");
    int rc = check_labels(&c->node, res);
    if (rc)
        return rc;
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_pd_node *n = &st->nodes[i].n;
        if (n->join_token == c->join_token && n->state != BS_PD_NODE_REMOVED) {
            res->first_id = n->info.id;
            return refuse(res, BS_ESTALE, "joined already as node %llu",
                          (unsigned long long)n->info.id);
        }
    }
    uint64_t id = st->next_node_id;
    if (id > UINT32_MAX)
        return refuse(res, BS_EINVAL, "node ids are exhausted (2^32)");
    if (bs_pd__reserve_nodes(st, 1))
        return BS_ENOMEM;
    struct bs_pd_node fresh = {.info = c->node,
                               .state = BS_PD_NODE_UP,
                               .last_heartbeat = c->now,
                               .state_since = c->now,
                               .join_token = c->join_token};
    fresh.info.id = id;
    bs_pd__node_insert(st, &fresh);
    st->next_node_id = id + 1;
    res->first_id = id;
    return 0;
}

/* (none) -> UP, or an address / label update of a known node. A node
 * that names its id registers by it; join_token only matters to a join
 * (id 0), so it is ignored here and the stored one is left alone. */
static int apply_register_node(struct bs_pd_state *st,
                               const struct bs_pd_cmd *cmd,
                               struct bs_pd_result *res)
{
    const struct bs_pd_node_info *ni = &cmd->u.register_node.node;
    if (ni->id == 0)
        return apply_join(st, cmd, res);
    int rc = check_node_info(ni, res);
    if (rc)
        return rc;
    struct bs_pd_node *node = bs_pd__node_get(st, ni->id);
    if (node) {
        if (node->state == BS_PD_NODE_REMOVED)
            return refuse(res, BS_EEXIST,
                          "node %llu was removed; its id is not reused",
                          (unsigned long long)ni->id);
        if (memcmp(&node->info, ni, sizeof(*ni)) == 0)
            return refuse(res, BS_ESTALE, "node %llu is registered already",
                          (unsigned long long)ni->id);
        node->info = *ni;
        bs_pd__mark_node(st, ni->id);
        return 0;
    }
    if (bs_pd__reserve_nodes(st, 1))
        return BS_ENOMEM;
    struct bs_pd_node fresh = {.info = *ni,
                               .state = BS_PD_NODE_UP,
                               .last_heartbeat = cmd->u.register_node.now,
                               .state_since = cmd->u.register_node.now};
    bs_pd__node_insert(st, &fresh);
    if (ni->id >= st->next_node_id)
        st->next_node_id = ni->id + 1;
    return 0;
}

/* allowed[from][to] for UPDATE_NODE_STATE (see the diagram in
 * placement.h). */
static const bool allowed[6][6] = {
    [BS_PD_NODE_UP] = {[BS_PD_NODE_SUSPECT] = true,
                       [BS_PD_NODE_DOWN] = true,
                       [BS_PD_NODE_DRAINING] = true},
    [BS_PD_NODE_SUSPECT] = {[BS_PD_NODE_UP] = true,
                            [BS_PD_NODE_DOWN] = true,
                            [BS_PD_NODE_DRAINING] = true},
    [BS_PD_NODE_DOWN] = {[BS_PD_NODE_UP] = true, [BS_PD_NODE_DRAINING] = true},
    [BS_PD_NODE_DRAINING] =
        {[BS_PD_NODE_UP] = true, [BS_PD_NODE_REMOVED] = true},
};

static int apply_node_state(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                            struct bs_pd_result *res)
{
    uint64_t id = cmd->u.node_state.node_id;
    uint8_t to = cmd->u.node_state.state;
    struct bs_pd_node *node = bs_pd__node_get(st, id);
    if (!node)
        return refuse(res, BS_ENOTFOUND, "no node %llu",
                      (unsigned long long)id);
    if (to < BS_PD_NODE_UP || to > BS_PD_NODE_REMOVED)
        return refuse(res, BS_EINVAL, "unknown node state %u", to);
    if (node->state == to)
        return refuse(res, BS_ESTALE, "node %llu is %s already",
                      (unsigned long long)id, bs_pd_node_state_name(to));
    if (!allowed[node->state][to])
        return refuse(res, BS_EINVAL, "node %llu: no transition %s -> %s",
                      (unsigned long long)id,
                      bs_pd_node_state_name(node->state),
                      bs_pd_node_state_name(to));
    /* Decommission (-> DRAINING) asks the same rule the admin service
     * asked before proposing: the state may have changed in between. */
    if (to == BS_PD_NODE_DRAINING) {
        int rc = bs_pd_can_decommission(st, id, res->msg);
        if (rc)
            return rc;
    }
    size_t naming = 0;
    if (to == BS_PD_NODE_REMOVED) {
        size_t held = bs_pd__replicas_on_node(st, id);
        if (held)
            return refuse(res, BS_EBUSY,
                          "node %llu still holds %zu replicas: drain first",
                          (unsigned long long)id, held);
        /* Operators naming a removed node could never finish (and no
         * replica may be placed on it): they go with it. */
        for (size_t i = 0; i < st->n_ops; i++)
            naming += bs_pd__op_names_node(&st->ops[i].op, id);
        if (bs_pd__reserve_dirty_ops(st, naming))
            return BS_ENOMEM;
    }
    node->state = to;
    node->state_since = cmd->u.node_state.now;
    bs_pd__mark_node(st, id);
    for (size_t i = st->n_ops; naming && i-- > 0;) {
        if (bs_pd__op_names_node(&st->ops[i].op, id)) {
            bs_pd__op_remove(st, i);
            st->ops_cancelled++;
            naming--;
        }
    }
    return 0;
}

/* Records the heartbeat; SUSPECT / DOWN -> UP. */
static int apply_heartbeat(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                           struct bs_pd_result *res)
{
    uint64_t id = cmd->u.heartbeat.node_id, now = cmd->u.heartbeat.now;
    struct bs_pd_node *node = bs_pd__node_get(st, id);
    if (!node)
        return refuse(res, BS_ENOTFOUND, "no node %llu",
                      (unsigned long long)id);
    if (node->state == BS_PD_NODE_REMOVED)
        return refuse(res, BS_ESTALE, "node %llu was removed",
                      (unsigned long long)id);
    if (now <= node->last_heartbeat)
        return refuse(res, BS_ESTALE, "node %llu: heartbeat not newer",
                      (unsigned long long)id);
    node->last_heartbeat = now;
    if (node->state == BS_PD_NODE_SUSPECT || node->state == BS_PD_NODE_DOWN) {
        node->state = BS_PD_NODE_UP;
        node->state_since = now;
    }
    bs_pd__mark_node(st, id);
    return 0;
}

/* --------------------------------------------------------------- shards */

/* A reported replica set: well formed, and every id either the owner's
 * already, or free: not another shard's, not reserved by an operator
 * other than own (the one the report completes, whose ids it may use). */
static int check_new_replicas(const struct bs_pd_state *st,
                              const struct bs_pd_replica *reps, uint32_t n,
                              const struct bs_pd_shard *owner,
                              const struct bs_pd_op *own,
                              struct bs_pd_result *res)
{
    const char *why = bs_pd__replicas_check(st, reps, n);
    if (why)
        return refuse(res, BS_EINVAL, "%s", why);
    for (uint32_t i = 0; i < n; i++) {
        if (replica_id_used(st, reps[i].id, owner))
            return refuse(res, BS_EINVAL,
                          "replica id %llu belongs to another shard",
                          (unsigned long long)reps[i].id);
        if (!(owner && is_member(owner, reps[i].id)) &&
            reserved_by_other_op(st, reps[i].id, own))
            return refuse(res, BS_EINVAL,
                          "replica id %llu is reserved by another operator",
                          (unsigned long long)reps[i].id);
    }
    return 0;
}

static int apply_split(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                       struct bs_pd_result *res)
{
    const typeof(cmd->u.split) *c = &cmd->u.split;
    struct bs_pd_shard *parent = bs_pd__shard_get(st, c->shard_id);
    if (!parent)
        return refuse(res, BS_ENOTFOUND, "no shard %llu",
                      (unsigned long long)c->shard_id);
    if (parent->keyless)
        return refuse(res, BS_EINVAL, "shard 0 holds no keys to split");
    if (c->epoch.version <= parent->epoch.version)
        return refuse(res, BS_ESTALE,
                      "shard %llu is at version %llu, report is for %llu",
                      (unsigned long long)c->shard_id,
                      (unsigned long long)parent->epoch.version,
                      (unsigned long long)c->epoch.version);
    if (c->epoch.version != parent->epoch.version + 1)
        return refuse(res, BS_EINVAL,
                      "shard %llu: split to version %llu reported before "
                      "version %llu",
                      (unsigned long long)c->shard_id,
                      (unsigned long long)c->epoch.version,
                      (unsigned long long)parent->epoch.version + 1);
    if (c->new_shard_id == BS_PD_SHARD_PLACEMENT ||
        c->new_shard_id >= st->next_shard_id)
        return refuse(res, BS_EINVAL, "shard id %llu was never allocated",
                      (unsigned long long)c->new_shard_id);
    if (bs_pd__shard_get(st, c->new_shard_id))
        return refuse(res, BS_EEXIST, "shard %llu exists already",
                      (unsigned long long)c->new_shard_id);
    if (c->split_key_len == 0 ||
        bs_pd__key_cmp(c->split_key, c->split_key_len, parent->start,
                       parent->start_len) <= 0 ||
        !bs_pd_shard_contains(parent, c->split_key, c->split_key_len))
        return refuse(res, BS_ERANGE,
                      "split key not strictly inside shard %llu",
                      (unsigned long long)c->shard_id);
    if (c->new_epoch.conf_ver == 0 || c->new_epoch.version == 0)
        return refuse(res, BS_EINVAL, "new shard epoch has a zero part");
    const struct bs_pd_op *op = op_of_kind(st, parent->id, BS_PD_OP_SPLIT);
    int rc = check_new_replicas(st, c->replicas, c->n_replicas, NULL, op, res);
    if (rc)
        return rc;

    /* Allocate everything, then change. */
    if (bs_pd__reserve_shards(st, 1) || bs_pd__reserve_dirty(st, 0, 2))
        return BS_ENOMEM;
    struct bs_pd_shard *ns =
        bs_pd__shard_new(c->new_shard_id, c->split_key, c->split_key_len,
                         parent->end, parent->end_len);
    uint8_t *new_end = malloc(c->split_key_len);
    if (!ns || !new_end) {
        bs_pd__shard_free(ns);
        free(new_end);
        return BS_ENOMEM;
    }
    memcpy(new_end, c->split_key, c->split_key_len);

    size_t rpos = bs_pd__route_pos_of(st, parent) + 1;
    ns->epoch = c->new_epoch;
    memcpy(ns->replicas, c->replicas, c->n_replicas * sizeof(*ns->replicas));
    ns->n_replicas = c->n_replicas;
    /* Hint: the new group usually elects the replica that sits with the
     * parent's leader first (it campaigns right after the split). */
    for (uint32_t i = 0; i < parent->n_replicas; i++) {
        if (parent->replicas[i].id != parent->leader)
            continue;
        const struct bs_pd_replica *twin =
            bs_pd_shard_replica_on(ns, parent->replicas[i].node_id);
        if (twin)
            ns->leader = twin->id;
    }
    /* A split changes no replica: the parent keeps its conf_ver, so that
     * a replica change it reports later is not mistaken for stale. */
    free(parent->end);
    parent->end = new_end;
    parent->end_len = c->split_key_len;
    parent->epoch.version = c->epoch.version;
    bs_pd__mark_shard(st, parent);
    bs_pd__shard_insert(st, ns, rpos);
    /* The split operator is done; a split to another shard id is one the
     * shard made on its own (or of an earlier operator), after which this
     * operator's key and ids no longer fit: it is dropped. */
    if (op)
        op_retire(st, parent->id, c->new_shard_id == op->new_shard_id);
    return 0;
}

static int apply_replica_change(struct bs_pd_state *st,
                                const struct bs_pd_cmd *cmd,
                                struct bs_pd_result *res)
{
    const typeof(cmd->u.replica_change) *c = &cmd->u.replica_change;
    struct bs_pd_shard *s = bs_pd__shard_get(st, c->shard_id);
    if (!s)
        return refuse(res, BS_ENOTFOUND, "no shard %llu",
                      (unsigned long long)c->shard_id);
    if (c->conf_ver <= s->epoch.conf_ver)
        return refuse(res, BS_ESTALE,
                      "shard %llu is at conf_ver %llu, report is for %llu",
                      (unsigned long long)c->shard_id,
                      (unsigned long long)s->epoch.conf_ver,
                      (unsigned long long)c->conf_ver);
    const struct bs_pd_op *op = op_of_kind(st, s->id, BS_PD_OP_MOVE);
    int rc = check_new_replicas(st, c->replicas, c->n_replicas, s, op, res);
    if (rc)
        return rc;
    if (bs_pd__reserve_dirty(st, 0, 1))
        return BS_ENOMEM;
    memcpy(s->replicas, c->replicas, c->n_replicas * sizeof(*s->replicas));
    s->n_replicas = c->n_replicas;
    s->epoch.conf_ver = c->conf_ver;
    /* The leader left: unknown until reported. The term stays, so that
     * older reports remain stale. */
    if (!is_member(s, s->leader))
        s->leader = 0;
    bs_pd__mark_shard(st, s);
    /* A move is done once its new replica votes and the leaving node holds
     * nothing: checked on the final set only, so the intermediate reports
     * (learner added, joint configuration, old replica removed before the
     * promotion is reported) leave it in flight. */
    if (op) {
        bool arrived = op->to_node == 0;
        for (uint32_t i = 0; i < s->n_replicas && !arrived; i++)
            arrived = s->replicas[i].id == op->new_replica &&
                      s->replicas[i].role == BS_PD_ROLE_VOTER;
        bool left =
            op->from_node == 0 || !bs_pd_shard_replica_on(s, op->from_node);
        if (arrived && left)
            op_retire(st, s->id, true);
    }
    return 0;
}

static int apply_leader(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                        struct bs_pd_result *res)
{
    const typeof(cmd->u.leader) *c = &cmd->u.leader;
    struct bs_pd_shard *s = bs_pd__shard_get(st, c->shard_id);
    if (!s)
        return refuse(res, BS_ENOTFOUND, "no shard %llu",
                      (unsigned long long)c->shard_id);
    if (c->term == 0)
        return refuse(res, BS_EINVAL, "a leader report needs a term");
    if (c->term < s->leader_term ||
        (c->term == s->leader_term && c->leader == s->leader))
        return refuse(res, BS_ESTALE,
                      "shard %llu: leader report for term %llu, have %llu",
                      (unsigned long long)c->shard_id,
                      (unsigned long long)c->term,
                      (unsigned long long)s->leader_term);
    if (c->term == s->leader_term && s->leader != 0)
        return refuse(
            res, BS_EINVAL, "shard %llu: two leaders reported for term %llu",
            (unsigned long long)c->shard_id, (unsigned long long)c->term);
    if (!is_member(s, c->leader))
        return refuse(
            res, BS_EINVAL, "shard %llu: leader %llu is not a known replica",
            (unsigned long long)c->shard_id, (unsigned long long)c->leader);
    if (bs_pd__reserve_dirty(st, 0, 1))
        return BS_ENOMEM;
    s->leader = c->leader;
    s->leader_term = c->term;
    bs_pd__mark_shard(st, s);
    const struct bs_pd_op *op = op_of_kind(st, s->id, BS_PD_OP_LEADER);
    const struct bs_pd_replica *on =
        op ? bs_pd_shard_replica_on(s, op->to_node) : NULL;
    if (on && on->id == c->leader)
        op_retire(st, s->id, true);
    return 0;
}

static int apply_alloc(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                       struct bs_pd_result *res)
{
    uint64_t *next;
    switch (cmd->u.alloc.kind) {
    case BS_PD_ID_SHARD:
        next = &st->next_shard_id;
        break;
    case BS_PD_ID_REPLICA:
        next = &st->next_replica_id;
        break;
    case BS_PD_ID_NODE:
        next = &st->next_node_id;
        break;
    default:
        return refuse(res, BS_EINVAL, "unknown id kind %u", cmd->u.alloc.kind);
    }
    uint32_t count = cmd->u.alloc.count;
    if (count == 0 || count > BS_PD_MAX_ALLOC)
        return refuse(res, BS_EINVAL, "id count %u not in 1..%u", count,
                      (unsigned)BS_PD_MAX_ALLOC);
    if (*next > UINT64_MAX - count)
        return refuse(res, BS_EINVAL, "id space exhausted");
    res->first_id = *next;
    *next += count;
    return 0;
}

/* ------------------------------------------------------------ operators */

/* A node an operator names (id != 0): ENOTFOUND if it does not exist,
 * EINVAL if it was removed; on success *out (if out) is the node. */
static int op_node(const struct bs_pd_state *st, uint64_t id, const char *what,
                   const struct bs_pd_node **out, struct bs_pd_result *res)
{
    const struct bs_pd_node *n = bs_pd_node_find(st, id);
    if (!n)
        return refuse(res, BS_ENOTFOUND, "no node %llu (%s)",
                      (unsigned long long)id, what);
    if (n->state == BS_PD_NODE_REMOVED)
        return refuse(res, BS_EINVAL, "node %llu (%s) was removed",
                      (unsigned long long)id, what);
    if (out)
        *out = n;
    return 0;
}

/* Whether k more replica ids fit below 2^32 (the sequence half of a
 * replica id, BS_ENG_REPLICA_ID). */
static bool replica_ids_left(const struct bs_pd_state *st, uint32_t k)
{
    return st->next_replica_id <= ((uint64_t)1 << 32) - k;
}

/* The checks of a MOVE that apply_op_create makes (see placement.h). */
static int check_move(const struct bs_pd_state *st, const struct bs_pd_shard *s,
                      const struct bs_pd_op *c, const struct bs_pd_node *to,
                      struct bs_pd_result *res)
{
    unsigned long long sid = (unsigned long long)s->id;
    if (!c->from_node && !c->to_node)
        return refuse(res, BS_EINVAL, "shard %llu: a move names no node", sid);
    if (c->split_key_len)
        return refuse(res, BS_EINVAL, "shard %llu: a move has no split key",
                      sid);
    const struct bs_pd_replica *leaving =
        c->from_node ? bs_pd_shard_replica_on(s, c->from_node) : NULL;
    if (c->from_node && !leaving)
        return refuse(res, BS_EINVAL, "shard %llu has no replica on node %llu",
                      sid, (unsigned long long)c->from_node);
    if (to) {
        if (to->state != BS_PD_NODE_UP)
            return refuse(res, BS_EINVAL, "shard %llu: node %llu is %s, not up",
                          sid, (unsigned long long)to->info.id,
                          bs_pd_node_state_name(to->state));
        if (bs_pd_shard_replica_on(s, to->info.id))
            return refuse(res, BS_EINVAL,
                          "shard %llu has a replica on node %llu already", sid,
                          (unsigned long long)to->info.id);
        if (to->info.id > UINT32_MAX)
            return refuse(res, BS_EINVAL,
                          "node %llu cannot host a replica (id over 2^32)",
                          (unsigned long long)to->info.id);
        /* The learner comes before anything leaves. */
        if (s->n_replicas >= BS_RAFT_MAX_MEMBERS)
            return refuse(res, BS_EINVAL, "shard %llu has %u replicas already",
                          sid, (unsigned)s->n_replicas);
        if (!replica_ids_left(st, 1))
            return refuse(res, BS_EINVAL, "replica ids are exhausted");
        return 0;
    }
    /* Remove only: some voter must remain. */
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (&s->replicas[i] != leaving &&
            bs_pd__role_votes(s->replicas[i].role))
            return 0;
    return refuse(
        res, BS_EINVAL,
        "shard %llu: removing the replica on node %llu leaves no voter", sid,
        (unsigned long long)c->from_node);
}

static int check_leader(const struct bs_pd_shard *s, const struct bs_pd_op *c,
                        const struct bs_pd_node *to, struct bs_pd_result *res)
{
    unsigned long long sid = (unsigned long long)s->id;
    if (!to)
        return refuse(res, BS_EINVAL,
                      "shard %llu: a leader transfer needs a target node", sid);
    if (c->split_key_len)
        return refuse(res, BS_EINVAL,
                      "shard %llu: a leader transfer has no split key", sid);
    if (to->state != BS_PD_NODE_UP)
        return refuse(res, BS_EINVAL, "shard %llu: node %llu is %s, not up",
                      sid, (unsigned long long)to->info.id,
                      bs_pd_node_state_name(to->state));
    const struct bs_pd_replica *r = bs_pd_shard_replica_on(s, to->info.id);
    if (!r || !bs_pd__role_votes(r->role))
        return refuse(res, BS_EINVAL, "shard %llu has no voter on node %llu",
                      sid, (unsigned long long)to->info.id);
    /* A reported leader (term != 0; term 0 is placement's own guess)
     * already there: nothing would ever report this one done. */
    if (s->leader == r->id && s->leader_term != 0)
        return refuse(res, BS_EINVAL,
                      "shard %llu is led from node %llu already", sid,
                      (unsigned long long)to->info.id);
    return 0;
}

static int check_split(const struct bs_pd_state *st,
                       const struct bs_pd_shard *s, const struct bs_pd_op *c,
                       struct bs_pd_result *res)
{
    unsigned long long sid = (unsigned long long)s->id;
    if (s->keyless)
        return refuse(res, BS_EINVAL, "shard 0 holds no keys to split");
    if (c->from_node || c->to_node)
        return refuse(res, BS_EINVAL, "shard %llu: a split names no node", sid);
    if (c->split_key_len &&
        (bs_pd__key_cmp(c->split_key, c->split_key_len, s->start,
                        s->start_len) <= 0 ||
         !bs_pd_shard_contains(s, c->split_key, c->split_key_len)))
        return refuse(res, BS_EINVAL,
                      "split key not strictly inside shard %llu", sid);
    if (!replica_ids_left(st, s->n_replicas))
        return refuse(res, BS_EINVAL, "replica ids are exhausted");
    if (st->next_shard_id == UINT64_MAX)
        return refuse(res, BS_EINVAL, "shard ids are exhausted");
    return 0;
}

/*
 * OP_CREATE. All checks first (the order fixes which refusal a command
 * with several faults gets: malformed, unknown shard or node, busy, then
 * nonsense for the state), then the allocations, then the change. The
 * from_node of a LEADER operator is not used to execute it; the scheduler
 * may fill in where leadership was when it planned (shown by the CLI), so
 * it is only checked like any node an operator names.
 */
static int apply_op_create(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                           struct bs_pd_result *res)
{
    const struct bs_pd_op *c = &cmd->u.op;
    if (c->kind < BS_PD_OP_MOVE || c->kind > BS_PD_OP_SPLIT)
        return refuse(res, BS_EINVAL, "unknown operator kind %u", c->kind);
    if (c->reason > BS_PD_REASON_PLACEMENT)
        return refuse(res, BS_EINVAL, "unknown operator reason %u", c->reason);
    struct bs_pd_shard *s = bs_pd__shard_get(st, c->shard_id);
    if (!s)
        return refuse(res, BS_ENOTFOUND, "no shard %llu",
                      (unsigned long long)c->shard_id);
    const struct bs_pd_node *to = NULL;
    int rc = 0;
    if (c->from_node)
        rc = op_node(st, c->from_node, "from", NULL, res);
    if (rc == 0 && c->to_node)
        rc = op_node(st, c->to_node, "to", &to, res);
    if (rc)
        return rc;
    const struct bs_pd_op *busy = bs_pd_op_of_shard(st, s->id);
    if (busy)
        return refuse(res, BS_EBUSY,
                      "shard %llu has operator %llu (%s) in flight",
                      (unsigned long long)s->id, (unsigned long long)busy->id,
                      bs_pd_op_kind_name(busy->kind));
    switch (c->kind) {
    case BS_PD_OP_MOVE:
        rc = check_move(st, s, c, to, res);
        break;
    case BS_PD_OP_LEADER:
        rc = check_leader(s, c, to, res);
        break;
    default:
        rc = check_split(st, s, c, res);
        break;
    }
    if (rc)
        return rc;
    if (st->next_op_id == UINT64_MAX)
        return refuse(res, BS_EINVAL, "operator ids are exhausted");

    struct bs_pd_op op = {.id = st->next_op_id,
                          .kind = c->kind,
                          .reason = c->reason,
                          .shard_id = c->shard_id,
                          .from_node = c->from_node,
                          .to_node = c->to_node,
                          .created_at = c->created_at};
    if (bs_pd__reserve_ops(st, 1))
        return BS_ENOMEM;
    if (c->split_key_len) {
        op.split_key = malloc(c->split_key_len);
        if (!op.split_key)
            return BS_ENOMEM;
        memcpy(op.split_key, c->split_key, c->split_key_len);
        op.split_key_len = c->split_key_len;
    }
    if (c->kind == BS_PD_OP_MOVE && c->to_node)
        op.new_replica = BS_ENG_REPLICA_ID(c->to_node, st->next_replica_id++);
    if (c->kind == BS_PD_OP_SPLIT) {
        /* The child's replica set mirrors the parent's now: same nodes,
         * same roles, fresh ids. */
        op.new_shard_id = st->next_shard_id++;
        for (uint32_t i = 0; i < s->n_replicas; i++) {
            const struct bs_pd_replica *r = &s->replicas[i];
            op.new_replicas[i] = (struct bs_pd_replica){
                BS_ENG_REPLICA_ID(r->node_id, st->next_replica_id++),
                r->node_id, r->role};
        }
        op.n_new_replicas = s->n_replicas;
    }
    st->next_op_id++;
    bs_pd__op_insert(st, &op); /* takes op.split_key */
    res->first_id = op.id;
    return 0;
}

static int apply_op_cancel(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                           struct bs_pd_result *res)
{
    uint64_t id = cmd->u.op_cancel.op_id;
    bool found;
    size_t i = bs_pd__op_pos(st, id, &found);
    if (!found)
        return refuse(res, BS_ENOTFOUND, "no operator %llu in flight",
                      (unsigned long long)id);
    bs_pd__op_remove(st, i);
    st->ops_cancelled++;
    return 0;
}

static int apply_set_sched(struct bs_pd_state *st, const struct bs_pd_cmd *cmd,
                           struct bs_pd_result *res)
{
    if (st->sched.paused == cmd->u.sched.paused)
        return refuse(res, BS_ESTALE, "the scheduler is %s already",
                      st->sched.paused ? "paused" : "running");
    st->sched.paused = cmd->u.sched.paused;
    return 0;
}

/* ---------------------------------------------------------------- apply */

int bs_pd_apply(struct bs_pd_state *st, uint64_t index, const uint8_t *data,
                size_t len, struct bs_pd_result *result)
{
    struct bs_pd_result dummy;
    struct bs_pd_result *res = result ? result : &dummy;
    memset(res, 0, sizeof(*res));
    if (index <= st->applied) {
        res->skipped = true;
        return 0;
    }
    /* Every path below may mark up to one node and two shards, and create
     * or delete one operator (a node's removal reserves more itself). */
    if (bs_pd__reserve_dirty(st, 1, 2) || bs_pd__reserve_dirty_ops(st, 1))
        return BS_ENOMEM;

    int rc = 0;
    struct bs_pd_cmd cmd;
    if (len > 0) {
        rc = bs_pd_cmd_decode(data, len, &cmd);
        if (rc == BS_ENOMEM)
            return rc;
        if (rc) {
            refuse(res, rc, "entry %llu is not a placement command",
                   (unsigned long long)index);
            goto done;
        }
        res->type = cmd.type;
        if (cmd.type != BS_PD_CMD_BOOTSTRAP && !st->bootstrapped) {
            rc = refuse(res, BS_EINVAL, "%s before bootstrap",
                        bs_pd_cmd_type_name(cmd.type));
        } else {
            switch (cmd.type) {
            case BS_PD_CMD_BOOTSTRAP:
                rc = apply_bootstrap(st, &cmd, res);
                break;
            case BS_PD_CMD_REGISTER_NODE:
                rc = apply_register_node(st, &cmd, res);
                break;
            case BS_PD_CMD_UPDATE_NODE_STATE:
                rc = apply_node_state(st, &cmd, res);
                break;
            case BS_PD_CMD_NODE_HEARTBEAT:
                rc = apply_heartbeat(st, &cmd, res);
                break;
            case BS_PD_CMD_SHARD_SPLIT:
                rc = apply_split(st, &cmd, res);
                break;
            case BS_PD_CMD_SHARD_REPLICA_CHANGE:
                rc = apply_replica_change(st, &cmd, res);
                break;
            case BS_PD_CMD_SHARD_LEADER:
                rc = apply_leader(st, &cmd, res);
                break;
            case BS_PD_CMD_ALLOC_IDS:
                rc = apply_alloc(st, &cmd, res);
                break;
            case BS_PD_CMD_OP_CREATE:
                rc = apply_op_create(st, &cmd, res);
                break;
            case BS_PD_CMD_OP_CANCEL:
                rc = apply_op_cancel(st, &cmd, res);
                break;
            case BS_PD_CMD_SET_SCHED:
                rc = apply_set_sched(st, &cmd, res);
                break;
            }
        }
        bs_pd_cmd_free(&cmd);
        if (rc == BS_ENOMEM) {
            res->msg[0] = '\0';
            return rc;
        }
    }
done:
    st->applied = index;
    st->meta_dirty = true;
    return rc;
}
