/*
 * state.c - the placement state: nodes, shards, the routing table and the
 * id allocators, their lookups and the invariant checker.
 *
 * Layout (placement_int.h): nodes in an array sorted by id (few, looked up
 * by binary search, moved on insert); shards as owned pointers sorted by id
 * so that a descriptor stays put while the arrays around it grow; the
 * routing table as a second array of the same pointers sorted by start key.
 * A split inserts the new shard right after its parent in the routing
 * table, an O(n) memmove of pointers that costs microseconds even for
 * 100k shards, in exchange for O(log n) lookups with no tree to balance.
 *
 * Mutations happen in apply.c and persist.c, which reserve capacity first
 * (bs_pd__reserve_*) so that a command either fails with BS_ENOMEM before
 * touching anything or succeeds entirely.
 */
#include <assert.h>
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
    free(st->ops);
    free(st->dirty_nodes);
    free(st->dirty_shards);
    memset(st, 0, sizeof(*st));
    st->next_shard_id = 1;
    st->next_replica_id = 1;
    st->next_node_id = 1;
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
    st->n_dirty_nodes = 0;
    st->n_dirty_shards = 0;
    st->meta_dirty = false;
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

static bool role_votes(uint8_t role)
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
        voter |= role_votes(reps[i].role);
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
    if (st->n_ops != 0)
        return "operators are present before they exist (issue 5)";

    /* Replica ids unique cluster-wide. */
    size_t total = 0;
    for (size_t i = 0; i < st->n_shards; i++)
        total += st->shards[i]->n_replicas;
    uint64_t *ids = malloc((total ? total : 1) * sizeof(*ids));
    if (!ids) {
        *nomem = true;
        return "out of memory while checking replica ids";
    }
    size_t k = 0;
    for (size_t i = 0; i < st->n_shards; i++)
        for (uint32_t j = 0; j < st->shards[i]->n_replicas; j++)
            ids[k++] = st->shards[i]->replicas[j].id;
    qsort(ids, total, sizeof(*ids), u64_order);
    for (size_t i = 1; i < total && !why; i++)
        if (ids[i] == ids[i - 1])
            why = "a replica id is used by two shards";
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
