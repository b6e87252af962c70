/*
 * stats.c - the heartbeat statistics the placement leader keeps in memory
 * (struct bs_pd_stats), and the byte codec of one heartbeat.
 *
 * Soft state: nothing here is replicated or persisted. A new placement
 * leader starts with an empty table and resets it with its own clock
 * (bs_pd_stats_reset), so every node gets a full down_after from the
 * moment it took over before the liveness rule (sched.c) judges it. The
 * table answers three questions for sched.c: when was a node last heard,
 * what did a shard's leader last say about it, and since when has a shard
 * been hot.
 *
 * Layout. Nodes are few (tens, hundreds): a sorted array of entries,
 * looked up by binary search, moved on insert. Shards can be 100k and
 * every heartbeat brings hundreds of them, so they live in an open-
 * addressing hash table (linear probing, load <= 1/2, never deleted from:
 * shards are never merged, and reset empties the table) of pointers to
 * individually allocated entries; a rehash moves pointers, never entries,
 * which keeps the pointers bs_pd_stats_shard returns valid until the next
 * update and keeps the table itself small (8 bytes per slot against the
 * ~900 bytes of a shard stat).
 *
 * Invariants:
 *   1. nodes[] is sorted by node id, ids distinct.
 *   2. tab[] has cap slots, cap a power of two (or 0 with tab NULL);
 *      n_shards entries, each reachable from hash(id) by probing without
 *      crossing an empty slot; 2 * n_shards <= cap.
 *   3. hot_since != 0 iff the entry's last accepted report was over the
 *      hot_qps given with it; then it is the `now` (at least 1) of the
 *      first report of the current run of such reports at the same
 *      version.
 *
 * All-or-nothing updates: bs_pd_stats_update reserves the node slot, grows
 * the table and allocates every entry it may need before it changes
 * anything, so BS_ENOMEM records nothing.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "placement_int.h"

struct node_ent {
    uint64_t heard; /* `now` of its last heartbeat */
    struct bs_pd_node_stat stat;
};

struct shard_ent {
    struct bs_pd_shard_stat stat;
    uint64_t reported_at;
    uint64_t hot_since;
};

struct bs_pd_stats {
    uint64_t reset_at; /* `now` of the last reset, 0 = never */

    struct node_ent *nodes; /* owned, sorted by stat.node_id */
    size_t n_nodes, cap_nodes;

    struct shard_ent **tab; /* owned slots of owned entries, NULL = empty */
    size_t cap, n_shards;
};

/* ----------------------------------------------------------- create */

struct bs_pd_stats *bs_pd_stats_create(void)
{
    return calloc(1, sizeof(struct bs_pd_stats));
}

static void free_shards(struct bs_pd_stats *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        free(s->tab[i]);
        s->tab[i] = NULL;
    }
    s->n_shards = 0;
}

void bs_pd_stats_destroy(struct bs_pd_stats *s)
{
    if (!s)
        return;
    free_shards(s);
    free(s->tab);
    free(s->nodes);
    free(s);
}

void bs_pd_stats_reset(struct bs_pd_stats *s, uint64_t now)
{
    /* Capacities stay: the next leader term refills the same table. */
    free_shards(s);
    s->n_nodes = 0;
    s->reset_at = now;
}

/* ------------------------------------------------------------ nodes */

static size_t node_pos(const struct bs_pd_stats *s, uint64_t id, bool *found)
{
    size_t lo = 0, hi = s->n_nodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->nodes[mid].stat.node_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n_nodes && s->nodes[lo].stat.node_id == id;
    return lo;
}

static int reserve_node(struct bs_pd_stats *s)
{
    if (s->n_nodes < s->cap_nodes)
        return 0;
    size_t cap = s->cap_nodes ? s->cap_nodes * 2 : 16;
    struct node_ent *p = realloc(s->nodes, cap * sizeof(*p));
    if (!p)
        return BS_ENOMEM;
    s->nodes = p;
    s->cap_nodes = cap;
    return 0;
}

uint64_t bs_pd_stats_heard(const struct bs_pd_stats *s, uint64_t node_id)
{
    bool found;
    size_t i = node_pos(s, node_id, &found);
    return found ? s->nodes[i].heard : s->reset_at;
}

const struct bs_pd_node_stat *bs_pd_stats_node(const struct bs_pd_stats *s,
                                               uint64_t node_id)
{
    bool found;
    size_t i = node_pos(s, node_id, &found);
    return found ? &s->nodes[i].stat : NULL;
}

/* ----------------------------------------------------------- shards */

static size_t slot_of(uint64_t id, size_t cap)
{
    /* Fibonacci hashing: shard ids are dense small integers, which the
     * multiplication spreads over the high bits. */
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static struct shard_ent *shard_get(const struct bs_pd_stats *s, uint64_t id)
{
    if (s->cap == 0)
        return NULL;
    for (size_t i = slot_of(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
        struct shard_ent *e = s->tab[i];
        if (!e)
            return NULL;
        if (e->stat.shard_id == id)
            return e;
    }
}

/* Precondition: id absent, 2 * (n_shards + 1) <= cap. */
static void shard_put(struct shard_ent **tab, size_t cap, struct shard_ent *e)
{
    size_t i = slot_of(e->stat.shard_id, cap);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = e;
}

/* Grows the table so that extra more entries keep the load <= 1/2. */
static int reserve_shards(struct bs_pd_stats *s, size_t extra)
{
    if (extra > SIZE_MAX / 4 - s->n_shards)
        return BS_ENOMEM;
    size_t need = 2 * (s->n_shards + extra);
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need)
        cap *= 2;
    struct shard_ent **tab = calloc(cap, sizeof(*tab));
    if (!tab)
        return BS_ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i])
            shard_put(tab, cap, s->tab[i]);
    free(s->tab);
    s->tab = tab;
    s->cap = cap;
    return 0;
}

const struct bs_pd_shard_stat *bs_pd_stats_shard(const struct bs_pd_stats *s,
                                                 uint64_t shard_id,
                                                 uint64_t *reported_at,
                                                 uint64_t *hot_since)
{
    const struct shard_ent *e = shard_get(s, shard_id);
    if (reported_at)
        *reported_at = e ? e->reported_at : 0;
    if (hot_since)
        *hot_since = e ? e->hot_since : 0;
    return e ? &e->stat : NULL;
}

/* ----------------------------------------------------------- update */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * Takes report r at now into e (fresh: e holds no report yet). Hot runs
 * restart when the shard's version changes: a split changed the range, so
 * how long the old range was hot says nothing about the new one (and
 * without the restart a parent that is still warm after a split would be
 * split again at once).
 */
static void take_report(struct shard_ent *e, bool fresh,
                        const struct bs_pd_shard_stat *r, uint64_t now,
                        uint64_t hot_qps)
{
    bool hot = hot_qps != 0 && sat_add(r->read_qps, r->write_qps) > hot_qps;
    /* 0 means "not hot", so a run that starts at time 0 starts at 1. */
    uint64_t start = now ? now : 1;
    if (!hot)
        e->hot_since = 0;
    else if (fresh || e->hot_since == 0 || e->stat.version != r->version)
        e->hot_since = start;
    e->stat = *r;
    e->reported_at = now;
}

int bs_pd_stats_update(struct bs_pd_stats *s, const struct bs_pd_heartbeat *hb,
                       uint64_t now, uint64_t hot_qps)
{
    assert(hb->n_shards == 0 || hb->shards);
    struct shard_ent **spare = NULL;
    size_t n_spare = 0, used = 0;
    int rc = BS_ENOMEM;

    /* 1. Everything that can fail. */
    bool found;
    size_t npos = node_pos(s, hb->node.node_id, &found);
    if (!found && reserve_node(s))
        return BS_ENOMEM;
    size_t missing = 0;
    for (uint32_t i = 0; i < hb->n_shards; i++) {
        assert(hb->shards[i].n_replicas <= BS_RAFT_MAX_MEMBERS);
        if (!shard_get(s, hb->shards[i].shard_id))
            missing++; /* a shard twice in hb counts twice: harmless */
    }
    if (missing) {
        if (reserve_shards(s, missing))
            return BS_ENOMEM;
        spare = malloc(missing * sizeof(*spare));
        if (!spare)
            return BS_ENOMEM;
        for (; n_spare < missing; n_spare++) {
            spare[n_spare] = malloc(sizeof(**spare));
            if (!spare[n_spare])
                goto out;
        }
    }

    /* 2. Changes, none of which can fail. */
    if (!found) {
        memmove(&s->nodes[npos + 1], &s->nodes[npos],
                (s->n_nodes - npos) * sizeof(*s->nodes));
        s->n_nodes++;
    }
    s->nodes[npos].stat = hb->node;
    s->nodes[npos].heard = now;

    for (uint32_t i = 0; i < hb->n_shards; i++) {
        const struct bs_pd_shard_stat *r = &hb->shards[i];
        struct shard_ent *e = shard_get(s, r->shard_id);
        if (!e) {
            assert(used < n_spare);
            e = spare[used++];
            take_report(e, true, r, now, hot_qps);
            shard_put(s->tab, s->cap, e);
            s->n_shards++;
            continue;
        }
        /* A deposed leader's late report must not overwrite its
         * successor's: terms only move forward. */
        if (r->term < e->stat.term)
            continue;
        take_report(e, false, r, now, hot_qps);
    }
    rc = 0;
out:
    for (size_t i = used; i < n_spare; i++)
        free(spare[i]);
    free(spare);
    return rc;
}

/* ------------------------------------------------------------ codec */

#define HB_VERSION 1
/* Flags byte of a replica stat. */
#define HB_LEARNER 0x01u
#define HB_IN_SYNC 0x02u
/* Encoded sizes, to refuse a count the remaining bytes cannot hold
 * before allocating for it: a shard stat without replicas is 11 u64 and
 * the replica count; a replica stat 5 u64 and the flags. */
#define HB_SHARD_MIN  (11 * 8 + 1)
#define HB_REPLICA_SZ (5 * 8 + 1)

int bs_pd_heartbeat_encode(const struct bs_pd_heartbeat *hb, uint8_t **out,
                           size_t *len)
{
    if (hb->n_shards > BS_PD_HB_MAX_SHARDS)
        return BS_EINVAL;
    for (uint32_t i = 0; i < hb->n_shards; i++)
        if (hb->shards[i].n_replicas > BS_RAFT_MAX_MEMBERS)
            return BS_EINVAL;

    struct bs_pd_buf b = {0};
    const struct bs_pd_node_stat *n = &hb->node;
    bs_pd__buf_u8(&b, HB_VERSION);
    bs_pd__buf_u64(&b, n->node_id);
    bs_pd__buf_u64(&b, n->capacity_bytes);
    bs_pd__buf_u64(&b, n->available_bytes);
    bs_pd__buf_u64(&b, n->used_bytes);
    bs_pd__buf_u32(&b, n->replicas);
    bs_pd__buf_u32(&b, n->leaders);
    bs_pd__buf_u64(&b, n->read_qps);
    bs_pd__buf_u64(&b, n->write_qps);
    bs_pd__buf_u32(&b, n->snapshots_sending);
    bs_pd__buf_u32(&b, n->snapshots_receiving);
    bs_pd__buf_u32(&b, hb->n_shards);
    for (uint32_t i = 0; i < hb->n_shards; i++) {
        const struct bs_pd_shard_stat *s = &hb->shards[i];
        bs_pd__buf_u64(&b, s->shard_id);
        bs_pd__buf_u64(&b, s->leader);
        bs_pd__buf_u64(&b, s->term);
        bs_pd__buf_u64(&b, s->conf_ver);
        bs_pd__buf_u64(&b, s->version);
        bs_pd__buf_u64(&b, s->commit);
        bs_pd__buf_u64(&b, s->applied);
        bs_pd__buf_u64(&b, s->size_bytes);
        bs_pd__buf_u64(&b, s->keys);
        bs_pd__buf_u64(&b, s->read_qps);
        bs_pd__buf_u64(&b, s->write_qps);
        bs_pd__buf_u8(&b, (uint8_t)s->n_replicas);
        for (uint32_t j = 0; j < s->n_replicas; j++) {
            const struct bs_pd_replica_stat *r = &s->replicas[j];
            bs_pd__buf_u64(&b, r->replica_id);
            bs_pd__buf_u64(&b, r->node_id);
            bs_pd__buf_u64(&b, r->match);
            bs_pd__buf_u64(&b, r->lag_entries);
            bs_pd__buf_u64(&b, r->lag_ms);
            bs_pd__buf_u8(&b, (uint8_t)((r->learner ? HB_LEARNER : 0) |
                                        (r->in_sync ? HB_IN_SYNC : 0)));
        }
    }
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int bs_pd_heartbeat_decode(const uint8_t *data, size_t len,
                           struct bs_pd_heartbeat *hb)
{
    memset(hb, 0, sizeof(*hb));
    struct bs_pd_rd r = {.p = data, .len = len};
    struct bs_pd_shard_stat *shards = NULL;

    if (bs_pd__rd_u8(&r) != HB_VERSION)
        return BS_ECORRUPT;
    struct bs_pd_node_stat *n = &hb->node;
    n->node_id = bs_pd__rd_u64(&r);
    n->capacity_bytes = bs_pd__rd_u64(&r);
    n->available_bytes = bs_pd__rd_u64(&r);
    n->used_bytes = bs_pd__rd_u64(&r);
    n->replicas = bs_pd__rd_u32(&r);
    n->leaders = bs_pd__rd_u32(&r);
    n->read_qps = bs_pd__rd_u64(&r);
    n->write_qps = bs_pd__rd_u64(&r);
    n->snapshots_sending = bs_pd__rd_u32(&r);
    n->snapshots_receiving = bs_pd__rd_u32(&r);
    uint32_t count = bs_pd__rd_u32(&r);
    if (r.bad || count > BS_PD_HB_MAX_SHARDS ||
        count > (r.len - r.off) / HB_SHARD_MIN)
        goto corrupt;
    if (count) {
        shards = calloc(count, sizeof(*shards));
        if (!shards) {
            memset(hb, 0, sizeof(*hb));
            return BS_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < count && !r.bad; i++) {
        struct bs_pd_shard_stat *s = &shards[i];
        s->shard_id = bs_pd__rd_u64(&r);
        s->leader = bs_pd__rd_u64(&r);
        s->term = bs_pd__rd_u64(&r);
        s->conf_ver = bs_pd__rd_u64(&r);
        s->version = bs_pd__rd_u64(&r);
        s->commit = bs_pd__rd_u64(&r);
        s->applied = bs_pd__rd_u64(&r);
        s->size_bytes = bs_pd__rd_u64(&r);
        s->keys = bs_pd__rd_u64(&r);
        s->read_qps = bs_pd__rd_u64(&r);
        s->write_qps = bs_pd__rd_u64(&r);
        uint8_t nr = bs_pd__rd_u8(&r);
        if (nr > BS_RAFT_MAX_MEMBERS || nr > (r.len - r.off) / HB_REPLICA_SZ)
            goto corrupt;
        s->n_replicas = nr;
        for (uint32_t j = 0; j < nr; j++) {
            struct bs_pd_replica_stat *rs = &s->replicas[j];
            rs->replica_id = bs_pd__rd_u64(&r);
            rs->node_id = bs_pd__rd_u64(&r);
            rs->match = bs_pd__rd_u64(&r);
            rs->lag_entries = bs_pd__rd_u64(&r);
            rs->lag_ms = bs_pd__rd_u64(&r);
            uint8_t flags = bs_pd__rd_u8(&r);
            if (flags & ~(HB_LEARNER | HB_IN_SYNC))
                goto corrupt;
            rs->learner = flags & HB_LEARNER;
            rs->in_sync = flags & HB_IN_SYNC;
        }
    }
    if (r.bad || r.off != r.len)
        goto corrupt;
    hb->n_shards = count;
    hb->shards = shards;
    return 0;
corrupt:
    free(shards);
    memset(hb, 0, sizeof(*hb));
    return BS_ECORRUPT;
}

void bs_pd_heartbeat_free(struct bs_pd_heartbeat *hb)
{
    if (!hb)
        return;
    /* The const in the struct is for callers that lend their array; a
     * decoded heartbeat owns its copy. */
    free((void *)hb->shards);
    memset(hb, 0, sizeof(*hb));
}
