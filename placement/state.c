/*
 * state.c - the placement state: nodes, shards, the routing table, the
 * operators in flight and the id allocators, their lookups, the
 * decommission rule and the invariant checker.
 *
 * Layout (placement_int.h): nodes in an array sorted by id (few, looked up
 * by binary search, moved on insert); shards as owned pointers sorted by id
 * so that a descriptor stays put while the arrays around it grow; the
 * routing table as a second array of the same pointers sorted by start key.
 * A split inserts the new shard right after its parent in the routing
 * table, an O(n) memmove of pointers that costs microseconds even for
 * 100k shards, in exchange for O(log n) lookups with no tree to balance.
 *
 * Operators are few (the scheduler keeps a handful in flight), so they sit
 * in one array sorted by id and "the operator of shard s" is a linear
 * scan; a per-shard index would cost more to keep right than it saves.
 *
 * Mutations happen in apply.c and persist.c, which reserve capacity first
 * (bs_pd__reserve_*) so that a command either fails with BS_ENOMEM before
 * touching anything or succeeds entirely.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement_int.h"

/* ------------------------------------------------------------ basics */

const char *bs_pd_node_state_name(int state)
{
    switch (state) {
    case BS_PD_NODE_UP:
        return "up";
    case BS_PD_NODE_SUSPECT:
        return "suspect";
    case BS_PD_NODE_DOWN:
        return "down";
    case BS_PD_NODE_DRAINING:
        return "draining";
    case BS_PD_NODE_REMOVED:
        return "removed";
    default:
        return "unknown";
    }
}

const char *bs_pd_op_kind_name(int kind)
{
    switch (kind) {
    case BS_PD_OP_MOVE:
        return "move";
    case BS_PD_OP_LEADER:
        return "leader";
    case BS_PD_OP_SPLIT:
        return "split";
    default:
        return "unknown";
    }
}

const char *bs_pd_op_reason_name(int reason)
{
    switch (reason) {
    case BS_PD_REASON_OPERATOR:
        return "operator";
    case BS_PD_REASON_REPLACE:
        return "replace";
    case BS_PD_REASON_DRAIN:
        return "drain";
    case BS_PD_REASON_SPLIT_SIZE:
        return "split-size";
    case BS_PD_REASON_SPLIT_LOAD:
        return "split-load";
    case BS_PD_REASON_BALANCE_REPLICAS:
        return "balance-replicas";
    case BS_PD_REASON_BALANCE_LEADERS:
        return "balance-leaders";
    case BS_PD_REASON_RACK:
        return "rack";
    case BS_PD_REASON_REPAIR:
        return "repair";
    case BS_PD_REASON_PLACEMENT:
        return "placement";
    default:
        return "unknown";
    }
}

const char *bs_pd_node_label(const struct bs_pd_node *node, const char *key)
{
    for (uint32_t i = 0; i < node->info.n_labels; i++)
        if (strcmp(node->info.labels[i].key, key) == 0)
            return node->info.labels[i].value;
    return NULL;
}

int bs_pd_node_next_state(const struct bs_pd_node *node, uint64_t now,
                          uint64_t suspect_after, uint64_t down_after)
{
    if (node->state != BS_PD_NODE_UP && node->state != BS_PD_NODE_SUSPECT)
        return node->state;
    /* A heartbeat stamped by a leader whose clock runs ahead counts as
     * fresh rather than wrapping around. */
    uint64_t silent =
        now > node->last_heartbeat ? now - node->last_heartbeat : 0;
    if (silent > down_after)
        return BS_PD_NODE_DOWN;
    if (silent > suspect_after)
        return BS_PD_NODE_SUSPECT;
    return node->state;
}

int bs_pd__key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

const struct bs_pd_replica *
bs_pd_shard_replica_on(const struct bs_pd_shard *shard, uint64_t node_id)
{
    for (uint32_t i = 0; i < shard->n_replicas; i++)
        if (shard->replicas[i].node_id == node_id)
            return &shard->replicas[i];
    return NULL;
}

void bs_pd_shard_conf_state(const struct bs_pd_shard *shard,
                            struct bs_raft_conf_state *cs)
{
    memset(cs, 0, sizeof(*cs));
    bool joint = false;
    for (uint32_t i = 0; i < shard->n_replicas; i++) {
        const struct bs_pd_replica *r = &shard->replicas[i];
        switch (r->role) {
        case BS_PD_ROLE_VOTER:
            cs->voters[cs->n_voters++] = r->id;
            cs->voters_outgoing[cs->n_voters_outgoing++] = r->id;
            break;
        case BS_PD_ROLE_LEARNER:
            cs->learners[cs->n_learners++] = r->id;
            break;
        case BS_PD_ROLE_INCOMING_VOTER:
            cs->voters[cs->n_voters++] = r->id;
            joint = true;
            break;
        case BS_PD_ROLE_DEMOTING_VOTER:
            cs->voters_outgoing[cs->n_voters_outgoing++] = r->id;
            cs->learners_next[cs->n_learners_next++] = r->id;
            joint = true;
            break;
        }
    }
    /* Outside a joint configuration the outgoing set is empty (raft.h). */
    if (!joint)
        cs->n_voters_outgoing = 0;
    cs->auto_leave = false;
}

bool bs_pd_shard_contains(const struct bs_pd_shard *shard, const void *key,
                          size_t len)
{
    if (shard->keyless)
        return false;
    if (bs_pd__key_cmp(key, len, shard->start, shard->start_len) < 0)
        return false;
    return shard->end_len == 0 ||
           bs_pd__key_cmp(key, len, shard->end, shard->end_len) < 0;
}

void bs_pd_initial_split_key(uint32_t i, uint32_t n, uint8_t out[2],
                             size_t *len)
{
    assert(n >= 1 && n <= BS_PD_MAX_INITIAL_SHARDS && i < n);
    if (i == 0) {
        *len = 0;
        return;
    }
    /* Strictly increasing in i because n <= 65536, so no two initial
     * shards share a start and none is empty. */
    uint32_t v = (uint32_t)(((uint64_t)i * 65536u) / n);
    out[0] = (uint8_t)(v >> 8);
    out[1] = (uint8_t)v;
    *len = 2;
}

/* ------------------------------------------------------- create / free */

struct bs_pd_state *bs_pd_state_create(void)
{
    struct bs_pd_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->next_shard_id = 1;
    st->next_replica_id = 1;
    st->next_node_id = 1;
    st->next_op_id = 1;
    return st;
}

void bs_pd__shard_free(struct bs_pd_shard *s)
{
    if (!s)
        return;
    free(s->start);
    free(s->end);
    free(s);
}

struct bs_pd_shard *bs_pd__shard_new(uint64_t id, const void *start,
                                     size_t slen, const void *end, size_t elen)
{
    struct bs_pd_shard *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->id = id;
    if (slen) {
        s->start = malloc(slen);
        if (!s->start)
            goto err;
        memcpy(s->start, start, slen);
        s->start_len = slen;
    }
    if (elen) {
        s->end = malloc(elen);
        if (!s->end)
            goto err;
        memcpy(s->end, end, elen);
        s->end_len = elen;
    }
    return s;
err:
    bs_pd__shard_free(s);
    return NULL;
}

void bs_pd__state_clear(struct bs_pd_state *st)
{
    for (size_t i = 0; i < st->n_shards; i++)
        bs_pd__shard_free(st->shards[i]);
    free(st->shards);
    free(st->route);
    free(st->nodes);
    for (size_t i = 0; i < st->n_ops; i++)
        free(st->ops[i].op.split_key);
    free(st->ops);
    free(st->dirty_nodes);
    free(st->dirty_shards);
    free(st->dirty_ops);
    memset(st, 0, sizeof(*st));
    st->next_shard_id = 1;
    st->next_replica_id = 1;
    st->next_node_id = 1;
    st->next_op_id = 1;
}

void bs_pd_state_destroy(struct bs_pd_state *st)
{
    if (!st)
        return;
    bs_pd__state_clear(st);
    free(st);
}

void bs_pd__state_swap(struct bs_pd_state *a, struct bs_pd_state *b)
{
    struct bs_pd_state t = *a;
    *a = *b;
    *b = t;
}

/* ------------------------------------------------------------ accessors */

bool bs_pd_bootstrapped(const struct bs_pd_state *st)
{
    return st->bootstrapped;
}

uint64_t bs_pd_cluster_id(const struct bs_pd_state *st)
{
    return st->cluster_id;
}

uint64_t bs_pd_applied(const struct bs_pd_state *st)
{
    return st->applied;
}

uint32_t bs_pd_replicas_per_shard(const struct bs_pd_state *st)
{
    return st->replicas_per_shard;
}

uint64_t bs_pd_next_shard_id(const struct bs_pd_state *st)
{
    return st->next_shard_id;
}

uint64_t bs_pd_next_replica_id(const struct bs_pd_state *st)
{
    return st->next_replica_id;
}

uint64_t bs_pd_next_node_id(const struct bs_pd_state *st)
{
    return st->next_node_id;
}

size_t bs_pd_node_count(const struct bs_pd_state *st)
{
    return st->n_nodes;
}

const struct bs_pd_node *bs_pd_node_at(const struct bs_pd_state *st, size_t i)
{
    return i < st->n_nodes ? &st->nodes[i].n : NULL;
}

size_t bs_pd__node_pos(const struct bs_pd_state *st, uint64_t id, bool *found)
{
    size_t lo = 0, hi = st->n_nodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->nodes[mid].n.info.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < st->n_nodes && st->nodes[lo].n.info.id == id;
    return lo;
}

struct bs_pd_node *bs_pd__node_get(struct bs_pd_state *st, uint64_t id)
{
    bool found;
    size_t i = bs_pd__node_pos(st, id, &found);
    return found ? &st->nodes[i].n : NULL;
}

const struct bs_pd_node *bs_pd_node_find(const struct bs_pd_state *st,
                                         uint64_t id)
{
    return bs_pd__node_get((struct bs_pd_state *)st, id);
}

size_t bs_pd_shard_count(const struct bs_pd_state *st)
{
    return st->n_shards;
}

const struct bs_pd_shard *bs_pd_shard_at(const struct bs_pd_state *st, size_t i)
{
    return i < st->n_shards ? st->shards[i] : NULL;
}

size_t bs_pd__shard_pos(const struct bs_pd_state *st, uint64_t id, bool *found)
{
    size_t lo = 0, hi = st->n_shards;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->shards[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < st->n_shards && st->shards[lo]->id == id;
    return lo;
}

struct bs_pd_shard *bs_pd__shard_get(struct bs_pd_state *st, uint64_t id)
{
    bool found;
    size_t i = bs_pd__shard_pos(st, id, &found);
    return found ? st->shards[i] : NULL;
}

const struct bs_pd_shard *bs_pd_shard_find(const struct bs_pd_state *st,
                                           uint64_t id)
{
    return bs_pd__shard_get((struct bs_pd_state *)st, id);
}

size_t bs_pd_route_count(const struct bs_pd_state *st)
{
    return st->n_route;
}

const struct bs_pd_shard *bs_pd_route_at(const struct bs_pd_state *st, size_t i)
{
    return i < st->n_route ? st->route[i] : NULL;
}

size_t bs_pd_op_count(const struct bs_pd_state *st)
{
    return st->n_ops;
}

const struct bs_pd_op *bs_pd_op_at(const struct bs_pd_state *st, size_t i)
{
    return i < st->n_ops ? &st->ops[i].op : NULL;
}

size_t bs_pd__op_pos(const struct bs_pd_state *st, uint64_t id, bool *found)
{
    size_t lo = 0, hi = st->n_ops;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->ops[mid].op.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < st->n_ops && st->ops[lo].op.id == id;
    return lo;
}

const struct bs_pd_op *bs_pd_op_find(const struct bs_pd_state *st, uint64_t id)
{
    bool found;
    size_t i = bs_pd__op_pos(st, id, &found);
    return found ? &st->ops[i].op : NULL;
}

size_t bs_pd__op_index_of_shard(const struct bs_pd_state *st, uint64_t shard_id)
{
    size_t i = 0;
    while (i < st->n_ops && st->ops[i].op.shard_id != shard_id)
        i++;
    return i;
}

const struct bs_pd_op *bs_pd_op_of_shard(const struct bs_pd_state *st,
                                         uint64_t shard_id)
{
    size_t i = bs_pd__op_index_of_shard(st, shard_id);
    return i < st->n_ops ? &st->ops[i].op : NULL;
}

uint64_t bs_pd_ops_finished(const struct bs_pd_state *st)
{
    return st->ops_finished;
}

uint64_t bs_pd_ops_cancelled(const struct bs_pd_state *st)
{
    return st->ops_cancelled;
}

uint64_t bs_pd_next_op_id(const struct bs_pd_state *st)
{
    return st->next_op_id;
}

const struct bs_pd_sched_state *bs_pd_sched(const struct bs_pd_state *st)
{
    return &st->sched;
}

bool bs_pd__op_names_node(const struct bs_pd_op *op, uint64_t node_id)
{
    if (op->from_node == node_id || op->to_node == node_id)
        return true;
    for (uint32_t i = 0; i < op->n_new_replicas; i++)
        if (op->new_replicas[i].node_id == node_id)
            return true;
    return false;
}

/* Index of the last routing entry whose start is <= key; n_route if none
 * (only when the table is empty: route[0] starts at the smallest key). */
static size_t route_upper(const struct bs_pd_state *st, const void *key,
                          size_t len)
{
    size_t lo = 0, hi = st->n_route;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct bs_pd_shard *s = st->route[mid];
        if (bs_pd__key_cmp(s->start, s->start_len, key, len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? st->n_route : lo - 1;
}

int bs_pd_route(const struct bs_pd_state *st, const void *key, size_t len,
                const struct bs_pd_shard **out)
{
    size_t i = route_upper(st, key, len);
    if (i >= st->n_route)
        return BS_ENOTFOUND;
    /* Holds by invariant 3; checked so that a broken table answers
     * "not found" rather than a wrong shard. */
    if (!bs_pd_shard_contains(st->route[i], key, len))
        return BS_ENOTFOUND;
    *out = st->route[i];
    return 0;
}

size_t bs_pd__route_pos_of(const struct bs_pd_state *st,
                           const struct bs_pd_shard *s)
{
    size_t i = route_upper(st, s->start, s->start_len);
    assert(i < st->n_route && st->route[i] == s);
    return i;
}

/* --------------------------------------------------------- reservations */

static int reserve(void **arr, size_t *cap, size_t n, size_t extra, size_t elem)
{
    if (n + extra <= *cap)
        return 0;
    size_t c = *cap ? *cap : 8;
    while (c < n + extra)
        c *= 2;
    void *p = realloc(*arr, c * elem);
    if (!p)
        return BS_ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

int bs_pd__reserve_nodes(struct bs_pd_state *st, size_t extra)
{
    return reserve((void **)&st->nodes, &st->cap_nodes, st->n_nodes, extra,
                   sizeof(*st->nodes));
}

int bs_pd__reserve_shards(struct bs_pd_state *st, size_t extra)
{
    int rc = reserve((void **)&st->shards, &st->cap_shards, st->n_shards, extra,
                     sizeof(*st->shards));
    if (rc == 0)
        rc = reserve((void **)&st->route, &st->cap_route, st->n_route, extra,
                     sizeof(*st->route));
    return rc;
}

int bs_pd__reserve_dirty(struct bs_pd_state *st, size_t nodes, size_t shards)
{
    int rc = reserve((void **)&st->dirty_nodes, &st->cap_dirty_nodes,
                     st->n_dirty_nodes, nodes, sizeof(*st->dirty_nodes));
    if (rc == 0)
        rc = reserve((void **)&st->dirty_shards, &st->cap_dirty_shards,
                     st->n_dirty_shards, shards, sizeof(*st->dirty_shards));
    return rc;
}

int bs_pd__reserve_ops(struct bs_pd_state *st, size_t extra)
{
    return reserve((void **)&st->ops, &st->cap_ops, st->n_ops, extra,
                   sizeof(*st->ops));
}

int bs_pd__reserve_dirty_ops(struct bs_pd_state *st, size_t extra)
{
    return reserve((void **)&st->dirty_ops, &st->cap_dirty_ops, st->n_dirty_ops,
                   extra, sizeof(*st->dirty_ops));
}

/* ------------------------------------------------------------ mutation */

void bs_pd__mark_node(struct bs_pd_state *st, uint64_t id)
{
    bool found;
    size_t i = bs_pd__node_pos(st, id, &found);
    assert(found);
    if (st->nodes[i].dirty)
        return;
    assert(st->n_dirty_nodes < st->cap_dirty_nodes);
    st->nodes[i].dirty = true;
    st->dirty_nodes[st->n_dirty_nodes++] = id;
}

void bs_pd__mark_shard(struct bs_pd_state *st, struct bs_pd_shard *s)
{
    if (s->dirty_)
        return;
    assert(st->n_dirty_shards < st->cap_dirty_shards);
    s->dirty_ = true;
    st->dirty_shards[st->n_dirty_shards++] = s;
}

void bs_pd__clear_dirty(struct bs_pd_state *st)
{
    for (size_t i = 0; i < st->n_dirty_nodes; i++) {
        struct bs_pd_node *n = bs_pd__node_get(st, st->dirty_nodes[i]);
        if (n)
            ((struct bs_pd_node_rec *)n)->dirty = false;
    }
    for (size_t i = 0; i < st->n_dirty_shards; i++)
        st->dirty_shards[i]->dirty_ = false;
    for (size_t i = 0; i < st->n_ops; i++)
        st->ops[i].dirty = false;
    st->n_dirty_nodes = 0;
    st->n_dirty_shards = 0;
    st->n_dirty_ops = 0;
    st->meta_dirty = false;
}

/*
 * Operators change only by creation and deletion (nothing in one is ever
 * updated), so the change list needs no per-record flag for deletions: an
 * id is listed when its operator is created (flag set) or, if it was not
 * created since the last save, when it is deleted. Either way once.
 */
void bs_pd__op_insert(struct bs_pd_state *st, const struct bs_pd_op *op)
{
    bool found;
    size_t i = bs_pd__op_pos(st, op->id, &found);
    assert(!found && st->n_ops < st->cap_ops);
    assert(st->n_dirty_ops < st->cap_dirty_ops);
    memmove(&st->ops[i + 1], &st->ops[i], (st->n_ops - i) * sizeof(*st->ops));
    st->ops[i].op = *op;
    st->ops[i].dirty = true;
    st->n_ops++;
    st->dirty_ops[st->n_dirty_ops++] = op->id;
}

void bs_pd__op_remove(struct bs_pd_state *st, size_t i)
{
    assert(i < st->n_ops);
    if (!st->ops[i].dirty) {
        assert(st->n_dirty_ops < st->cap_dirty_ops);
        st->dirty_ops[st->n_dirty_ops++] = st->ops[i].op.id;
    }
    free(st->ops[i].op.split_key);
    memmove(&st->ops[i], &st->ops[i + 1],
            (st->n_ops - i - 1) * sizeof(*st->ops));
    st->n_ops--;
}

struct bs_pd_node *bs_pd__node_insert(struct bs_pd_state *st,
                                      const struct bs_pd_node *n)
{
    bool found;
    size_t i = bs_pd__node_pos(st, n->info.id, &found);
    assert(!found && st->n_nodes < st->cap_nodes);
    memmove(&st->nodes[i + 1], &st->nodes[i],
            (st->n_nodes - i) * sizeof(*st->nodes));
    st->nodes[i].n = *n;
    st->nodes[i].dirty = false;
    st->n_nodes++;
    bs_pd__mark_node(st, n->info.id);
    return &st->nodes[i].n;
}

void bs_pd__shard_insert(struct bs_pd_state *st, struct bs_pd_shard *s,
                         size_t rpos)
{
    bool found;
    size_t i = bs_pd__shard_pos(st, s->id, &found);
    assert(!found && st->n_shards < st->cap_shards);
    memmove(&st->shards[i + 1], &st->shards[i],
            (st->n_shards - i) * sizeof(*st->shards));
    st->shards[i] = s;
    st->n_shards++;
    if (!s->keyless) {
        assert(rpos <= st->n_route && st->n_route < st->cap_route);
        memmove(&st->route[rpos + 1], &st->route[rpos],
                (st->n_route - rpos) * sizeof(*st->route));
        st->route[rpos] = s;
        st->n_route++;
    }
    s->dirty_ = false;
    bs_pd__mark_shard(st, s);
}

static int route_order(const void *a, const void *b)
{
    const struct bs_pd_shard *x = *(struct bs_pd_shard *const *)a;
    const struct bs_pd_shard *y = *(struct bs_pd_shard *const *)b;
    int c = bs_pd__key_cmp(x->start, x->start_len, y->start, y->start_len);
    if (c)
        return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

int bs_pd__route_rebuild(struct bs_pd_state *st)
{
    st->n_route = 0;
    if (reserve((void **)&st->route, &st->cap_route, 0, st->n_shards,
                sizeof(*st->route)))
        return BS_ENOMEM;
    for (size_t i = 0; i < st->n_shards; i++)
        if (!st->shards[i]->keyless)
            st->route[st->n_route++] = st->shards[i];
    qsort(st->route, st->n_route, sizeof(*st->route), route_order);
    return 0;
}

/* --------------------------------------------------------- validation */

static bool role_valid(uint8_t role)
{
    return role <= BS_PD_ROLE_DEMOTING_VOTER;
}

bool bs_pd__role_votes(uint8_t role)
{
    return role == BS_PD_ROLE_VOTER || role == BS_PD_ROLE_INCOMING_VOTER;
}

const char *bs_pd__replicas_check(const struct bs_pd_state *st,
                                  const struct bs_pd_replica *reps, uint32_t n)
{
    if (n == 0 || n > BS_RAFT_MAX_MEMBERS)
        return "a replica set has no replica or more than "
               "BS_RAFT_MAX_MEMBERS";
    bool voter = false;
    for (uint32_t i = 0; i < n; i++) {
        /* Replica ids carry their node (engine.h, BS_ENG_REPLICA_ID) and
         * an allocated sequence number below 2^32. */
        uint64_t seq = reps[i].id & 0xffffffffu;
        if (seq == 0 || seq >= st->next_replica_id)
            return "a replica id is 0 or was never allocated";
        if (BS_ENG_REPLICA_NODE(reps[i].id) != reps[i].node_id)
            return "a replica id does not name its node";
        if (!role_valid(reps[i].role))
            return "a replica has an unknown role";
        voter |= bs_pd__role_votes(reps[i].role);
        const struct bs_pd_node *node = bs_pd_node_find(st, reps[i].node_id);
        if (!node)
            return "a replica is on a node that does not exist";
        if (node->state == BS_PD_NODE_REMOVED)
            return "a replica is on a removed node";
        for (uint32_t j = 0; j < i; j++) {
            if (reps[j].id == reps[i].id)
                return "a replica id appears twice in one shard";
            if (reps[j].node_id == reps[i].node_id)
                return "two replicas of one shard are on the same node";
        }
    }
    if (!voter)
        return "a replica set has no voter";
    return NULL;
}

size_t bs_pd__replicas_on_node(const struct bs_pd_state *st, uint64_t node_id)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_shards; i++)
        if (bs_pd_shard_replica_on(st->shards[i], node_id))
            n++;
    return n;
}

static int u64_order(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *check_shards(const struct bs_pd_state *st)
{
    size_t n_data = 0;
    for (size_t i = 0; i < st->n_shards; i++) {
        const struct bs_pd_shard *s = st->shards[i];
        if (i > 0 && st->shards[i - 1]->id >= s->id)
            return "shards are not sorted by id or an id repeats";
        if (s->id >= st->next_shard_id)
            return "a shard id is not below the shard id allocator";
        if (s->keyless != (s->id == BS_PD_SHARD_PLACEMENT))
            return "a shard other than 0 is keyless, or shard 0 has keys";
        if (s->keyless && (s->start_len || s->end_len))
            return "shard 0 has range bounds";
        if (!s->keyless)
            n_data++;
        if (s->start_len > BS_PD_MAX_KEY_LEN || s->end_len > BS_PD_MAX_KEY_LEN)
            return "a range bound is longer than BS_PD_MAX_KEY_LEN";
        const char *why = bs_pd__replicas_check(st, s->replicas, s->n_replicas);
        if (why)
            return why;
        if (s->leader != 0) {
            bool member = false;
            for (uint32_t j = 0; j < s->n_replicas; j++)
                member |= s->replicas[j].id == s->leader;
            if (!member)
                return "a shard's leader is not one of its replicas";
        }
        if (s->epoch.version == 0 || s->epoch.conf_ver == 0)
            return "a shard's epoch has a zero component";
    }
    if (st->bootstrapped !=
        (st->n_shards > 0 && st->shards[0]->id == BS_PD_SHARD_PLACEMENT))
        return "shard 0 is missing from a bootstrapped state, or present "
               "in an empty one";
    if (!st->bootstrapped && (st->n_shards || st->n_nodes))
        return "a state that is not bootstrapped holds nodes or shards";
    if (n_data != st->n_route)
        return "the routing table does not hold exactly the data shards";
    return NULL;
}

static const char *check_route(const struct bs_pd_state *st)
{
    if (st->bootstrapped && st->n_route == 0)
        return "a bootstrapped state has no data shard";
    for (size_t i = 0; i < st->n_route; i++) {
        const struct bs_pd_shard *s = st->route[i];
        if (s->keyless || bs_pd_shard_find(st, s->id) != s)
            return "the routing table holds a shard not in the shard table";
        if (i == 0 && s->start_len != 0)
            return "the first shard does not start at the smallest key";
        if (i + 1 == st->n_route) {
            if (s->end_len != 0)
                return "the last shard does not end at +infinity";
            continue;
        }
        if (s->end_len == 0)
            return "a shard other than the last ends at +infinity";
        if (bs_pd__key_cmp(s->start, s->start_len, s->end, s->end_len) >= 0)
            return "a shard's range is empty";
        const struct bs_pd_shard *t = st->route[i + 1];
        if (bs_pd__key_cmp(s->end, s->end_len, t->start, t->start_len) != 0)
            return "a gap or an overlap between consecutive shards";
    }
    return NULL;
}

/* Invariant 6 for one operator; the cross-operator parts (one per shard,
 * unique ids) are checked by the caller. */
static const char *check_op(const struct bs_pd_state *st,
                            const struct bs_pd_op *op)
{
    if (op->id == 0 || op->id >= st->next_op_id)
        return "an operator id is 0 or not below the operator counter";
    if (op->reason > BS_PD_REASON_PLACEMENT)
        return "an operator has an unknown reason";
    const struct bs_pd_shard *s = bs_pd_shard_find(st, op->shard_id);
    if (!s)
        return "an operator names a shard that does not exist";
    const uint64_t nodes[2] = {op->from_node, op->to_node};
    for (int i = 0; i < 2; i++) {
        if (nodes[i] == 0)
            continue;
        const struct bs_pd_node *n = bs_pd_node_find(st, nodes[i]);
        if (!n)
            return "an operator names a node that does not exist";
        if (n->state == BS_PD_NODE_REMOVED)
            return "an operator names a removed node";
    }
    if ((op->split_key_len != 0) != (op->split_key != NULL) ||
        op->split_key_len > BS_PD_MAX_KEY_LEN)
        return "an operator's split key is malformed";
    if (op->kind != BS_PD_OP_SPLIT &&
        (op->split_key_len || op->new_shard_id || op->n_new_replicas))
        return "an operator other than a split carries split fields";
    switch (op->kind) {
    case BS_PD_OP_MOVE:
        if (op->from_node == 0 && op->to_node == 0)
            return "a move operator names no node";
        if (op->to_node == 0) {
            if (op->new_replica != 0)
                return "a move operator without a target has a new replica";
            return NULL;
        }
        if (BS_ENG_REPLICA_NODE(op->new_replica) != op->to_node ||
            (op->new_replica & 0xffffffffu) == 0 ||
            (op->new_replica & 0xffffffffu) >= st->next_replica_id)
            return "a move operator's new replica id is not an allocated id "
                   "on its target";
        return NULL;
    case BS_PD_OP_LEADER:
        if (op->to_node == 0 || op->new_replica != 0)
            return "a leader operator has no target or has a new replica";
        return NULL;
    case BS_PD_OP_SPLIT:
        if (s->keyless)
            return "a split operator on shard 0";
        if (op->from_node || op->to_node || op->new_replica)
            return "a split operator names nodes or a new replica";
        if (op->new_shard_id == BS_PD_SHARD_PLACEMENT ||
            op->new_shard_id >= st->next_shard_id ||
            bs_pd_shard_find(st, op->new_shard_id))
            return "a split operator's new shard id is taken or was never "
                   "allocated";
        if (op->split_key_len &&
            (bs_pd__key_cmp(op->split_key, op->split_key_len, s->start,
                            s->start_len) <= 0 ||
             !bs_pd_shard_contains(s, op->split_key, op->split_key_len)))
            return "a split operator's key is not strictly inside its shard";
        return bs_pd__replicas_check(st, op->new_replicas, op->n_new_replicas);
    default:
        return "an operator has an unknown kind";
    }
}

/* Whether shard s holds replica id rid. */
static bool shard_has_replica(const struct bs_pd_shard *s, uint64_t rid)
{
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (s->replicas[i].id == rid)
            return true;
    return false;
}

/* Sorts ids and tells whether one repeats. */
static bool has_duplicate(uint64_t *ids, size_t n)
{
    qsort(ids, n, sizeof(*ids), u64_order);
    for (size_t i = 1; i < n; i++)
        if (ids[i] == ids[i - 1])
            return true;
    return false;
}

/* Invariant 6 across operators, and the operators' part of invariant 5. */
static const char *check_ops(const struct bs_pd_state *st, bool *nomem)
{
    for (size_t i = 0; i < st->n_ops; i++) {
        if (i > 0 && st->ops[i - 1].op.id >= st->ops[i].op.id)
            return "operators are not sorted by id or an id repeats";
        const char *why = check_op(st, &st->ops[i].op);
        if (why)
            return why;
    }
    size_t n = st->n_ops > st->n_dirty_ops ? st->n_ops : st->n_dirty_ops;
    uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
    if (!ids) {
        *nomem = true;
        return "out of memory while checking operators";
    }
    const char *why = NULL;
    for (size_t i = 0; i < st->n_ops; i++)
        ids[i] = st->ops[i].op.shard_id;
    if (has_duplicate(ids, st->n_ops))
        why = "two operators on one shard";
    size_t k = 0;
    for (size_t i = 0; i < st->n_ops; i++)
        if (st->ops[i].op.kind == BS_PD_OP_SPLIT)
            ids[k++] = st->ops[i].op.new_shard_id;
    if (!why && has_duplicate(ids, k))
        why = "two split operators make the same new shard";

    /* Change tracking: the listed ids are distinct, and the listed ones
     * still in ops[] are exactly the flagged ones. */
    size_t flagged = 0, listed_live = 0;
    for (size_t i = 0; i < st->n_ops; i++)
        flagged += st->ops[i].dirty;
    for (size_t i = 0; i < st->n_dirty_ops && !why; i++) {
        bool found;
        size_t j = bs_pd__op_pos(st, st->dirty_ops[i], &found);
        if (found && !st->ops[j].dirty)
            why = "a listed operator change is not flagged";
        if (st->dirty_ops[i] == 0 || st->dirty_ops[i] >= st->next_op_id)
            why = "a listed operator change names an id never used";
        listed_live += found;
        ids[i] = st->dirty_ops[i];
    }
    if (!why && (flagged != listed_live || has_duplicate(ids, st->n_dirty_ops)))
        why = "the operator change list disagrees with the dirty flags";
    free(ids);
    return why;
}

const char *bs_pd_check(const struct bs_pd_state *st)
{
    bool nomem;
    return bs_pd__check(st, &nomem);
}

const char *bs_pd__check(const struct bs_pd_state *st, bool *nomem)
{
    *nomem = false;
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_pd_node *n = &st->nodes[i].n;
        if (n->info.id == 0)
            return "a node has id 0";
        if (i > 0 && st->nodes[i - 1].n.info.id >= n->info.id)
            return "nodes are not sorted by id or an id repeats";
        if (n->info.id >= st->next_node_id)
            return "a node id is not below the node id allocator";
        if (n->state < BS_PD_NODE_UP || n->state > BS_PD_NODE_REMOVED)
            return "a node has an unknown state";
    }
    const char *why = check_shards(st);
    if (!why)
        why = check_route(st);
    if (why)
        return why;
    why = check_ops(st, nomem);
    if (why)
        return why;

    /* Replica ids unique cluster-wide, counting the ids that operators
     * reserved: a split's new replicas, and a move's new replica until it
     * joins its shard. */
    size_t total = 0;
    for (size_t i = 0; i < st->n_shards; i++)
        total += st->shards[i]->n_replicas;
    for (size_t i = 0; i < st->n_ops; i++)
        total += st->ops[i].op.n_new_replicas + 1;
    uint64_t *ids = malloc((total ? total : 1) * sizeof(*ids));
    if (!ids) {
        *nomem = true;
        return "out of memory while checking replica ids";
    }
    size_t k = 0;
    for (size_t i = 0; i < st->n_shards; i++)
        for (uint32_t j = 0; j < st->shards[i]->n_replicas; j++)
            ids[k++] = st->shards[i]->replicas[j].id;
    for (size_t i = 0; i < st->n_ops; i++) {
        const struct bs_pd_op *op = &st->ops[i].op;
        for (uint32_t j = 0; j < op->n_new_replicas; j++)
            ids[k++] = op->new_replicas[j].id;
        if (op->new_replica &&
            !shard_has_replica(bs_pd_shard_find(st, op->shard_id),
                               op->new_replica))
            ids[k++] = op->new_replica;
    }
    if (has_duplicate(ids, k))
        why = "a replica id is used twice (by two shards or operators)";
    free(ids);
    if (why)
        return why;

    /* Change tracking (invariant 5). */
    size_t dn = 0, ds = 0;
    for (size_t i = 0; i < st->n_nodes; i++)
        dn += st->nodes[i].dirty;
    for (size_t i = 0; i < st->n_shards; i++)
        ds += st->shards[i]->dirty_;
    if (dn != st->n_dirty_nodes || ds != st->n_dirty_shards)
        return "the change lists disagree with the dirty flags";
    return NULL;
}

/* ---------------------------------------------------------- membership */

/*
 * The decommission rule. Draining moves every replica off the node, so
 * what must hold is that the rest of the cluster can take them: enough
 * other UP nodes for a full replica set of every shard, and for every
 * shard a majority of voters that stays reachable while replicas move
 * (a move is a joint change, which needs a quorum of both the old and the
 * new configuration; with the leaving node's vote discounted, what is left
 * on UP nodes must still be a majority). Only one node drains at a time:
 * two drains compete for the same targets and can strand a shard with two
 * replicas leaving at once.
 *
 * Majorities are counted per configuration: the incoming one (voters and
 * incoming voters) and, during a joint change, the outgoing one (voters
 * and demoting voters).
 */
static bool keeps_majority(const struct bs_pd_state *st,
                           const struct bs_pd_shard *s, uint64_t leaving,
                           bool outgoing, uint32_t *have, uint32_t *of)
{
    *have = *of = 0;
    for (uint32_t i = 0; i < s->n_replicas; i++) {
        uint8_t role = s->replicas[i].role;
        bool votes = role == BS_PD_ROLE_VOTER ||
                     role == (outgoing ? BS_PD_ROLE_DEMOTING_VOTER
                                       : BS_PD_ROLE_INCOMING_VOTER);
        if (!votes)
            continue;
        (*of)++;
        uint64_t nid = s->replicas[i].node_id;
        const struct bs_pd_node *n = bs_pd_node_find(st, nid);
        if (nid != leaving && n && n->state == BS_PD_NODE_UP)
            (*have)++;
    }
    return *of == 0 || *have * 2 > *of;
}

int bs_pd_can_decommission(const struct bs_pd_state *st, uint64_t node_id,
                           char *msg)
{
    char dummy[160];
    if (!msg)
        msg = dummy;
    msg[0] = '\0';
    const struct bs_pd_node *node = bs_pd_node_find(st, node_id);
    if (!node || node->state == BS_PD_NODE_REMOVED) {
        snprintf(msg, 160, "no node %llu%s", (unsigned long long)node_id,
                 node ? " (it was removed)" : "");
        return BS_ENOTFOUND;
    }
    if (node->state == BS_PD_NODE_DRAINING) {
        snprintf(msg, 160, "node %llu is draining already",
                 (unsigned long long)node_id);
        return BS_EINVAL;
    }
    size_t up = 0;
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_pd_node *n = &st->nodes[i].n;
        if (n->info.id == node_id)
            continue;
        if (n->state == BS_PD_NODE_DRAINING) {
            snprintf(msg, 160,
                     "node %llu is being decommissioned: one at a time",
                     (unsigned long long)n->info.id);
            return BS_EBUSY;
        }
        up += n->state == BS_PD_NODE_UP;
    }
    if (up < st->replicas_per_shard) {
        snprintf(msg, 160,
                 "only %zu other nodes are up; %u replicas of every shard "
                 "need at least as many",
                 up, st->replicas_per_shard);
        return BS_EINVAL;
    }
    for (size_t i = 0; i < st->n_shards; i++) {
        const struct bs_pd_shard *s = st->shards[i];
        uint32_t have, of;
        if (!keeps_majority(st, s, node_id, false, &have, &of) ||
            !keeps_majority(st, s, node_id, true, &have, &of)) {
            snprintf(msg, 160,
                     "shard %llu would keep %u of its %u voters on up "
                     "nodes: not a majority",
                     (unsigned long long)s->id, have, of);
            return BS_EINVAL;
        }
    }
    return 0;
}
