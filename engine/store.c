/*
 * store.c - the multi-raft store: every replica of one node, driven by one
 * loop (engine.h, "store", for the contract).
 *
 * A group's life:
 *
 *   bootstrap_group / create_replica / split apply / reopen
 *        |
 *        v
 *   +---------+  idle & caught up (tick)   +--------+
 *   |  AWAKE  | -------------------------> | ASLEEP |
 *   |         | <------------------------- |        |
 *   +---------+  raft message, proposal,   +--------+
 *        |       read, leader node down (tick)
 *        | conf change removes this replica (apply)
 *        v
 *   destroyed: raft log, hard state and CF dropped (destroy_group)
 *
 * One round of bs_eng_store_process (engine.h lists the steps) handles
 * every group with work. Completions (proposer and reader callbacks) are
 * queued and run at the end of the round, after every group advanced, so
 * a callback may call back into the store.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"

#define MOD "store"

/* ----------------------------------------------------------- structures */

struct req {
    uint64_t id;
    bool is_read;
    bool is_conf;   /* a configuration change */
    uint64_t index; /* proposal: entry index; read: read index */
    uint64_t term;  /* proposal: entry term */
    bool have_index; /* read: read state arrived */
    uint64_t deadline_ms;
    bs_eng_done_cb cb;
    void *ctx;
};

struct group {
    uint64_t shard_id;
    uint64_t replica_id;
    bool compact_after_split; /* its CF holds the half it gave away */
    struct bs_raft *raft;
    struct bs_eng_log *log;
    void *sm;
    const struct bs_eng_sm_ops *ops;
    bool asleep;
    bool dirty;
    bool removed;
    int idle_ticks;
    int snap_wait_ticks;
    /* A snapshot's image is prepared as generation snap_gen of the CF and
     * its switch staged in the persist batch (install_snapshot). */
    bool snap_pending;
    uint64_t snap_gen;
    struct req *reqs;
    size_t n_reqs;
    size_t cap_reqs;
    /* In-sync tracking (bs_eng_store_progress) while this replica leads:
     * cu_ms[i] is the last store time at which member cu_id[i] had match
     * >= the leader's last index. cu_term is the term of the leadership
     * the table belongs to (0: none). A fixed array: refreshing it
     * allocates nothing. */
    uint64_t cu_term;
    uint32_t n_cu;
    uint64_t cu_id[BS_RAFT_MAX_MEMBERS];
    uint64_t cu_ms[BS_RAFT_MAX_MEMBERS];
    /* Round scratch. */
    struct bs_raft_ready rd;
    bool in_round;
    bool msgs_early; /* this round's messages went before the write */
};

struct completion {
    bs_eng_done_cb cb;
    void *ctx;
    int status;
    void *resp; /* owned */
    size_t len;
};

struct peer {
    uint64_t node;
    uint64_t last_heard_ms;
    struct bs_eng_envelope *out; /* outbox of this round */
    size_t n_out;
    size_t cap_out;
};

struct bs_eng_store {
    struct bs_eng_store_config cfg;
    char snap_dir[512];
    struct group **groups; /* sorted by shard_id */
    size_t n_groups;
    size_t cap_groups;
    struct peer *peers;
    size_t n_peers;
    size_t cap_peers;
    struct completion *done;
    size_t n_done;
    size_t cap_done;
    struct bs_eng_wb *wb_persist;
    struct bs_eng_wb *wb_apply;
    uint64_t next_req_id;
    uint64_t snap_seq;
    int fatal;
    struct bs_eng_store_stats st;
};

/* -------------------------------------------------------------- helpers */

static uint64_t now_ms(const struct bs_eng_store *s)
{
    return s->cfg.transport.ops->now_ms(s->cfg.transport.ctx);
}

void bs_eng_store_config_default(struct bs_eng_store_config *c)
{
    memset(c, 0, sizeof(*c));
    c->election_tick = 10;
    c->heartbeat_tick = 1;
    c->tick_ms = 100;
    c->hibernate_ticks = 20;
    c->log_max_entries = 10000;
    c->log_max_bytes = 64ull << 20;
    c->tail_cache_bytes = 1 << 20;
    c->request_timeout_ms = 10000;
    c->read_only_option = BS_RAFT_READ_SAFE;
}

static struct group *find_group(const struct bs_eng_store *s, uint64_t id)
{
    size_t lo = 0, hi = s->n_groups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t g = s->groups[mid]->shard_id;
        if (g == id)
            return s->groups[mid];
        if (g < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int insert_group(struct bs_eng_store *s, struct group *g)
{
    if (s->n_groups == s->cap_groups) {
        size_t cap = s->cap_groups ? s->cap_groups * 2 : 16;
        struct group **v = realloc(s->groups, cap * sizeof(*v));
        if (!v)
            return BS_ENOMEM;
        s->groups = v;
        s->cap_groups = cap;
    }
    size_t i = s->n_groups;
    while (i > 0 && s->groups[i - 1]->shard_id > g->shard_id) {
        s->groups[i] = s->groups[i - 1];
        i--;
    }
    s->groups[i] = g;
    s->n_groups++;
    return 0;
}

static void remove_group_slot(struct bs_eng_store *s, struct group *g)
{
    for (size_t i = 0; i < s->n_groups; i++) {
        if (s->groups[i] == g) {
            memmove(&s->groups[i], &s->groups[i + 1],
                    (s->n_groups - i - 1) * sizeof(s->groups[0]));
            s->n_groups--;
            return;
        }
    }
}

static struct peer *get_peer(struct bs_eng_store *s, uint64_t node)
{
    for (size_t i = 0; i < s->n_peers; i++)
        if (s->peers[i].node == node)
            return &s->peers[i];
    if (s->n_peers == s->cap_peers) {
        size_t cap = s->cap_peers ? s->cap_peers * 2 : 8;
        struct peer *v = realloc(s->peers, cap * sizeof(*v));
        if (!v)
            return NULL;
        s->peers = v;
        s->cap_peers = cap;
    }
    struct peer *p = &s->peers[s->n_peers++];
    memset(p, 0, sizeof(*p));
    p->node = node;
    /* A node never heard from counts as heard now: give it a full
     * election timeout before its groups are woken. */
    p->last_heard_ms = now_ms(s);
    return p;
}

static void complete(struct bs_eng_store *s, bs_eng_done_cb cb, void *ctx,
                     int status, void *resp /* taken */, size_t len)
{
    if (s->n_done == s->cap_done) {
        size_t cap = s->cap_done ? s->cap_done * 2 : 32;
        struct completion *v = realloc(s->done, cap * sizeof(*v));
        if (!v) {
            /* Cannot queue: answer now (the callback must then not call
             * into the store, which is documented for this case only). */
            cb(ctx, status, resp, len);
            free(resp);
            return;
        }
        s->done = v;
        s->cap_done = cap;
    }
    struct completion *c = &s->done[s->n_done++];
    c->cb = cb;
    c->ctx = ctx;
    c->status = status;
    c->resp = resp;
    c->len = len;
}

static void run_completions(struct bs_eng_store *s)
{
    /* Callbacks may queue more completions: loop on a detached list. */
    while (s->n_done > 0) {
        struct completion *list = s->done;
        size_t n = s->n_done;
        s->done = NULL;
        s->n_done = s->cap_done = 0;
        for (size_t i = 0; i < n; i++) {
            list[i].cb(list[i].ctx, list[i].status, list[i].resp,
                       list[i].len);
            free(list[i].resp);
        }
        free(list);
    }
}

static int add_req(struct group *g, const struct req *r)
{
    if (g->n_reqs == g->cap_reqs) {
        size_t cap = g->cap_reqs ? g->cap_reqs * 2 : 8;
        struct req *v = realloc(g->reqs, cap * sizeof(*v));
        if (!v)
            return BS_ENOMEM;
        g->reqs = v;
        g->cap_reqs = cap;
    }
    g->reqs[g->n_reqs++] = *r;
    return 0;
}

static void fail_all_reqs(struct bs_eng_store *s, struct group *g, int st)
{
    for (size_t i = 0; i < g->n_reqs; i++)
        complete(s, g->reqs[i].cb, g->reqs[i].ctx, st, NULL, 0);
    g->n_reqs = 0;
}

static void wake(struct group *g)
{
    g->asleep = false;
    g->idle_ticks = 0;
    g->dirty = true;
}

/* -------------------------------------------------------- in-sync (ISR) */

/*
 * Why a table of times rather than a lag computed on demand: the core
 * knows where each member's log ends (match), not since when it has been
 * behind. The store samples that whenever a group it leads has work (at
 * the start of each process round) and at each of its ticks: a member
 * whose match reaches the leader's last index gets the sample's time.
 * Catching up cannot go unseen for long: a follower's acknowledgement is
 * a received message, which makes its group dirty, and the next round
 * samples it. A sleeping group is neither ticked nor dirty, but it sleeps
 * only with every follower caught up and nothing new proposed, so the
 * reader (bs_eng_store_progress) counts a member caught up at read time as
 * caught up now: the table is stale only for those.
 */

static uint64_t cu_lookup(const struct group *g, uint64_t id, uint64_t dflt)
{
    for (uint32_t i = 0; i < g->n_cu; i++)
        if (g->cu_id[i] == id)
            return g->cu_ms[i];
    return dflt;
}

/* Samples g's members at time now from pi[n], the core's progress (n == 0
 * when g does not lead: the table is dropped). */
static void track_in_sync(struct group *g, uint64_t now,
                          const struct bs_raft_progress_info *pi, size_t n)
{
    if (n > BS_RAFT_MAX_MEMBERS)
        n = BS_RAFT_MAX_MEMBERS;
    if (n == 0) {
        g->cu_term = 0;
        g->n_cu = 0;
        return;
    }
    uint64_t term = bs_raft_term(g->raft);
    uint64_t last = bs_raft_last_index(g->raft);
    /* A new leadership has no history: everyone starts at now, and a
     * member found behind starts lagging from there. So does a member new
     * to the configuration (cu_lookup's default). The leader itself is the
     * reference, always caught up. */
    bool fresh = g->cu_term != term;
    uint64_t ms[BS_RAFT_MAX_MEMBERS];
    for (size_t i = 0; i < n; i++) {
        bool caught = fresh || pi[i].id == g->replica_id || pi[i].match >= last;
        ms[i] = caught ? now : cu_lookup(g, pi[i].id, now);
    }
    for (size_t i = 0; i < n; i++) {
        g->cu_id[i] = pi[i].id;
        g->cu_ms[i] = ms[i];
    }
    g->n_cu = (uint32_t)n;
    g->cu_term = term;
}

/* track_in_sync for a group that leads or did at the last sample. */
static void sample_in_sync(struct group *g, uint64_t now)
{
    if (g->cu_term == 0 && bs_raft_role(g->raft) != BS_RAFT_LEADER)
        return;
    struct bs_raft_progress_info pi[BS_RAFT_MAX_MEMBERS];
    size_t n = bs_raft_progress(g->raft, pi, BS_RAFT_MAX_MEMBERS);
    track_in_sync(g, now, pi, n);
}

/* ------------------------------------------------------ group lifecycle */

static int save_replica_id(struct bs_eng_store *s, uint64_t shard,
                           uint64_t rid)
{
    char key[64];
    snprintf(key, sizeof(key), "replica/%" PRIu64, shard);
    uint8_t v[8];
    for (int i = 0; i < 8; i++)
        v[i] = (uint8_t)(rid >> (56 - 8 * i));
    return bs_eng_db_meta_put(s->cfg.db, key, v, sizeof(v));
}

static int load_replica_id(struct bs_eng_store *s, uint64_t shard,
                           uint64_t *rid)
{
    char key[64];
    snprintf(key, sizeof(key), "replica/%" PRIu64, shard);
    void *val = NULL;
    size_t len = 0;
    int rc = bs_eng_db_meta_get(s->cfg.db, key, &val, &len);
    if (rc != 0)
        return rc;
    if (len != 8) {
        free(val);
        return BS_ECORRUPT;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | ((uint8_t *)val)[i];
    free(val);
    *rid = v;
    return 0;
}

static void destroy_group_mem(struct group *g)
{
    if (!g)
        return;
    bs_raft_destroy(g->raft);
    if (g->ops && g->sm)
        g->ops->destroy(g->sm);
    bs_eng_log_close(g->log);
    free(g->reqs);
    free(g);
}

/*
 * Opens an existing group from disk: log, state machine, raft node. If the
 * state machine is ahead of the log, the log is fast-forwarded to the
 * state machine's apply state. A snapshot install cannot cause that any
 * more (the data and the log switch in one batch, install_snapshot): this
 * is a safety net.
 */
static int open_group(struct bs_eng_store *s, uint64_t shard, uint64_t rid,
                      struct group **out, char *errmsg)
{
    struct group *g = calloc(1, sizeof(*g));
    if (!g)
        return BS_ENOMEM;
    g->shard_id = shard;
    g->replica_id = rid;
    int rc = bs_eng_log_open(s->cfg.db, shard, s->cfg.tail_cache_bytes,
                             &g->log, errmsg);
    if (rc != 0)
        goto err;
    rc = s->cfg.sm_factory.open(s->cfg.sm_factory.ctx, s->cfg.db, shard,
                                &g->sm, &g->ops);
    if (rc != 0) {
        if (errmsg)
            snprintf(errmsg, 256, "shard %" PRIu64 ": state machine: %s",
                     shard, bs_strerror(rc));
        goto err;
    }
    uint64_t applied = 0, aterm = 0;
    struct bs_raft_conf_state cs;
    g->ops->applied(g->sm, &applied, &aterm, &cs);
    bs_eng_log_set_conf(g->log, &cs);
    if (applied > 0 && applied > bs_eng_log_last_index(g->log)) {
        struct bs_raft_snapshot_meta meta = {
            .index = applied, .term = aterm, .conf = cs};
        bs_eng_wb_clear(s->wb_persist);
        struct bs_raft_hard_state hs;
        struct bs_raft_conf_state ignored;
        struct bs_raft_storage st = bs_eng_log_iface(g->log);
        st.ops->initial_state(st.ctx, &hs, &ignored);
        if (hs.term < aterm)
            hs.term = aterm;
        if (hs.commit < applied)
            hs.commit = applied;
        if ((rc = bs_eng_log_apply_snapshot(g->log, s->wb_persist,
                                            &meta)) ||
            (rc = bs_eng_log_set_hard_state(g->log, s->wb_persist, &hs)) ||
            (rc = bs_eng_db_write(s->cfg.db, s->wb_persist, true)))
            goto err;
    }
    if (applied > 0) {
        struct bs_raft_snapshot_meta meta = {
            .index = applied, .term = aterm, .conf = cs};
        bs_eng_log_set_snapshot_meta(g->log, &meta);
    }
    struct bs_raft_config rc_cfg;
    bs_raft_config_default(&rc_cfg);
    rc_cfg.id = rid;
    rc_cfg.election_tick = s->cfg.election_tick;
    rc_cfg.heartbeat_tick = s->cfg.heartbeat_tick;
    rc_cfg.storage = bs_eng_log_iface(g->log);
    rc_cfg.applied = applied;
    rc_cfg.seed = s->cfg.seed ^ (shard * 0x9e3779b97f4a7c15ULL);
    rc_cfg.read_only_option = s->cfg.read_only_option;
    /* Requests reach the leader's node through the rpc layer, never as
     * raft-level forwarding: a proposal here is answered by this node. */
    rc_cfg.disable_proposal_forwarding = true;
    rc = bs_raft_create(&rc_cfg, &g->raft, errmsg);
    if (rc != 0)
        goto err;
    g->dirty = true;
    *out = g;
    return 0;
err:
    destroy_group_mem(g);
    return rc;
}

static int add_group(struct bs_eng_store *s, uint64_t shard, uint64_t rid,
                     char *errmsg)
{
    struct group *g = NULL;
    int rc = open_group(s, shard, rid, &g, errmsg);
    if (rc != 0)
        return rc;
    rc = insert_group(s, g);
    if (rc != 0) {
        destroy_group_mem(g);
        return rc;
    }
    /* Know the peers for node heartbeats. */
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(g->raft, &cs);
    for (uint32_t i = 0; i < cs.n_voters; i++)
        (void)get_peer(s, BS_ENG_REPLICA_NODE(cs.voters[i]));
    return 0;
}

/* Finds this node's replica in a configuration. */
static uint64_t my_replica(const struct bs_eng_store *s,
                           const struct bs_raft_conf_state *cs)
{
    uint64_t ids[BS_RAFT_CONF_MAX_LIST];
    size_t n = bs_raft_conf_members(cs, ids, NULL);
    for (size_t i = 0; i < n; i++)
        if (BS_ENG_REPLICA_NODE(ids[i]) == s->cfg.node_id)
            return ids[i];
    return 0;
}

static void destroy_group(struct bs_eng_store *s, struct group *g)
{
    bs_log(BS_LOG_INFO, MOD, "replica removed shard=%" PRIu64
           " replica=%" PRIx64, g->shard_id, g->replica_id);
    /* Unknown outcome, not "dropped": a removed leader's pending entries
     * can still commit under the new configuration (nodesim seed 9045). */
    fail_all_reqs(s, g, BS_ETIMEDOUT);
    bs_eng_wb_clear(s->wb_persist);
    if (bs_eng_log_destroy(s->cfg.db, s->wb_persist, g->shard_id) == 0)
        (void)bs_eng_db_write(s->cfg.db, s->wb_persist, true);
    remove_group_slot(s, g);
    uint64_t shard = g->shard_id;
    destroy_group_mem(g);
    (void)bs_eng_db_shard_drop(s->cfg.db, shard);
    char key[64];
    snprintf(key, sizeof(key), "replica/%" PRIu64, shard);
    (void)bs_eng_db_meta_put(s->cfg.db, key, "", 0);
}

/* ---------------------------------------------------------- open/close */

int bs_eng_store_open(const struct bs_eng_store_config *c,
                      struct bs_eng_store **out, char *errmsg)
{
    *out = NULL;
    if (c->node_id == 0 || c->node_id > UINT32_MAX || !c->db ||
        !c->transport.ops || !c->sm_factory.open || !c->snap_dir) {
        if (errmsg)
            snprintf(errmsg, 256, "store config: node_id (1..2^32-1), db, "
                                  "transport, sm_factory and snap_dir are "
                                  "required");
        return BS_EINVAL;
    }
    struct bs_eng_store *s = calloc(1, sizeof(*s));
    if (!s)
        return BS_ENOMEM;
    s->cfg = *c;
    snprintf(s->snap_dir, sizeof(s->snap_dir), "%s", c->snap_dir);
    s->cfg.snap_dir = s->snap_dir;
    if (mkdir(s->snap_dir, 0755) != 0 && errno != EEXIST) {
        if (errmsg)
            snprintf(errmsg, 256, "snap_dir %.180s: %.60s", s->snap_dir,
                     strerror(errno));
        free(s);
        return BS_EIO;
    }
    s->wb_persist = bs_eng_wb_create();
    s->wb_apply = bs_eng_wb_create();
    if (!s->wb_persist || !s->wb_apply) {
        bs_eng_store_close(s);
        return BS_ENOMEM;
    }
    size_t n = bs_eng_db_shard_list(c->db, NULL, 0);
    uint64_t *ids = calloc(n ? n : 1, sizeof(*ids));
    if (!ids) {
        bs_eng_store_close(s);
        return BS_ENOMEM;
    }
    n = bs_eng_db_shard_list(c->db, ids, n);
    for (size_t i = 0; i < n; i++) {
        uint64_t rid = 0;
        int rc = load_replica_id(s, ids[i], &rid);
        if (rc == BS_ENOTFOUND || (rc == BS_ECORRUPT && rid == 0)) {
            /* A CF without a replica record: left by a crash between
             * creating a CF and recording it (split or create_replica).
             * The re-apply of the split recreates it. */
            continue;
        }
        if (rc == 0)
            rc = add_group(s, ids[i], rid, errmsg);
        if (rc != 0) {
            free(ids);
            bs_eng_store_close(s);
            return rc;
        }
    }
    free(ids);
    s->st.groups = s->n_groups;
    *out = s;
    return 0;
}

void bs_eng_store_close(struct bs_eng_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_groups; i++)
        fail_all_reqs(s, s->groups[i], BS_ESTOPPED);
    run_completions(s);
    for (size_t i = 0; i < s->n_groups; i++)
        destroy_group_mem(s->groups[i]);
    free(s->groups);
    for (size_t i = 0; i < s->n_peers; i++)
        free(s->peers[i].out);
    free(s->peers);
    free(s->done);
    bs_eng_wb_destroy(s->wb_persist);
    bs_eng_wb_destroy(s->wb_apply);
    free(s);
}

/* Creates the CF and the log of a new group whose first state is the
 * snapshot 'meta' (bootstrap or split), then opens it. */
static int create_group_at(struct bs_eng_store *s, uint64_t shard,
                           uint64_t rid,
                           const struct bs_raft_snapshot_meta *meta,
                           bool create_cf)
{
    char em[256] = "";
    int rc;
    if (create_cf) {
        rc = bs_eng_db_shard_create(s->cfg.db, shard);
        if (rc != 0 && rc != BS_EEXIST)
            return rc;
    }
    struct bs_eng_log *log = NULL;
    rc = bs_eng_log_open(s->cfg.db, shard, 0, &log, em);
    if (rc != 0)
        return rc;
    bs_eng_wb_clear(s->wb_persist);
    if (meta) {
        struct bs_raft_hard_state hs = {
            .term = meta->term, .vote = 0, .commit = meta->index};
        if ((rc = bs_eng_log_apply_snapshot(log, s->wb_persist, meta)) ||
            (rc = bs_eng_log_set_hard_state(log, s->wb_persist, &hs))) {
            bs_eng_log_close(log);
            return rc;
        }
    }
    bs_eng_log_close(log);
    if ((rc = bs_eng_db_write(s->cfg.db, s->wb_persist, true)) != 0)
        return rc;
    if ((rc = save_replica_id(s, shard, rid)) != 0)
        return rc;
    rc = add_group(s, shard, rid, em);
    if (rc != 0)
        bs_log(BS_LOG_ERROR, MOD, "cannot open new group shard=%" PRIu64
               " err=%s detail=\"%s\"", shard, bs_strerror(rc), em);
    s->st.groups = s->n_groups;
    return rc;
}

int bs_eng_store_bootstrap_group(struct bs_eng_store *s, uint64_t shard_id,
                                 uint64_t replica_id,
                                 const struct bs_raft_conf_state *cs)
{
    if (find_group(s, shard_id))
        return BS_EEXIST;
    if (BS_ENG_REPLICA_NODE(replica_id) != s->cfg.node_id ||
        !bs_raft_conf_has(cs, replica_id))
        return BS_EINVAL;
    int rc = bs_eng_db_shard_create(s->cfg.db, shard_id);
    if (rc != 0 && rc != BS_EEXIST)
        return rc;
    /* The state machine records the bootstrap configuration as applied at
     * index 1 (raft.h, "Bootstrapping"). */
    void *sm = NULL;
    const struct bs_eng_sm_ops *ops = NULL;
    rc = s->cfg.sm_factory.open(s->cfg.sm_factory.ctx, s->cfg.db, shard_id,
                                &sm, &ops);
    if (rc != 0)
        return rc;
    bs_eng_wb_clear(s->wb_apply);
    rc = ops->advance(sm, s->wb_apply, 1, 1, cs);
    if (rc == 0)
        rc = bs_eng_db_write(s->cfg.db, s->wb_apply, true);
    ops->batch_done(sm, rc == 0);
    ops->destroy(sm);
    if (rc != 0)
        return rc;
    struct bs_raft_snapshot_meta meta = {.index = 1, .term = 1, .conf = *cs};
    return create_group_at(s, shard_id, replica_id, &meta, false);
}

int bs_eng_store_create_replica(struct bs_eng_store *s, uint64_t shard_id,
                                uint64_t replica_id)
{
    if (find_group(s, shard_id))
        return BS_EEXIST;
    if (BS_ENG_REPLICA_NODE(replica_id) != s->cfg.node_id)
        return BS_EINVAL;
    return create_group_at(s, shard_id, replica_id, NULL, true);
}

/* ------------------------------------------------------------- inbound */

/* Checks a snapshot image before the raft core sees the message. */
static bool snapshot_ok(struct bs_eng_store *s, uint64_t shard_id,
                        const struct bs_raft_msg *m)
{
    char path[1024];
    if (m->snapshot.len == 0 || m->snapshot.len >= sizeof(path))
        return false;
    memcpy(path, m->snapshot.data, m->snapshot.len);
    path[m->snapshot.len] = '\0';
    char em[256] = "";
    struct bs_eng_snap_info info;
    int rc = bs_eng_snap_verify(path, &info, em);
    if (rc != 0) {
        bs_log(BS_LOG_WARN, MOD, "snapshot refused path=%s err=%s "
               "detail=\"%s\"", path, bs_strerror(rc), em);
        return false;
    }
    (void)s;
    /* An image of another shard would fail the ingest after the core
     * took the snapshot, which stops the store. */
    return info.shard_id == shard_id &&
           info.index == m->snapshot.meta.index &&
           info.term == m->snapshot.meta.term;
}

static void remove_tree(const char *dir);

/* A received snapshot image that will not be installed (its group is not
 * here, or the image was refused): nobody else removes it. */
static void drop_image(const struct bs_eng_envelope *e)
{
    char path[1024];
    if (e->kind != BS_ENG_ENV_RAFT || e->msg.type != BS_RAFT_MSG_SNAP ||
        e->msg.snapshot.len == 0 || e->msg.snapshot.len >= sizeof(path))
        return;
    memcpy(path, e->msg.snapshot.data, e->msg.snapshot.len);
    path[e->msg.snapshot.len] = '\0';
    remove_tree(path);
}

void bs_eng_store_receive(struct bs_eng_store *s, uint64_t from,
                          const struct bs_eng_envelope *envs, size_t n)
{
    struct peer *p = get_peer(s, from);
    if (p)
        p->last_heard_ms = now_ms(s);
    for (size_t i = 0; i < n; i++) {
        const struct bs_eng_envelope *e = &envs[i];
        if (e->kind == BS_ENG_ENV_NODE_HEARTBEAT)
            continue;
        struct group *g = find_group(s, e->shard_id);
        if (!g || g->removed || e->msg.to != g->replica_id) {
            s->st.dropped_unknown++;
            drop_image(e);
            continue;
        }
        if (e->kind == BS_ENG_ENV_HIBERNATE) {
            /* Sleep only if caught up with the sleeping leader. */
            if (bs_raft_term(g->raft) == e->msg.term &&
                bs_raft_lead(g->raft) == e->msg.from &&
                bs_raft_committed(g->raft) >= e->msg.commit &&
                bs_raft_applied(g->raft) == bs_raft_committed(g->raft) &&
                g->n_reqs == 0) {
                g->asleep = true;
            }
            continue;
        }
        if (e->kind != BS_ENG_ENV_RAFT)
            continue;
        if (e->msg.type == BS_RAFT_MSG_SNAP &&
            !snapshot_ok(s, e->shard_id, &e->msg)) {
            drop_image(e);
            continue;
        }
        /* A heartbeat (or its response) of the current term is stepped
         * (read rounds still get their answer) but wakes nobody: the
         * leader's last one and its answer cross the hibernate notice and
         * would otherwise wake both sides at once. */
        bool quiet = (e->msg.type == BS_RAFT_MSG_HEARTBEAT ||
                      e->msg.type == BS_RAFT_MSG_HEARTBEAT_RESP) &&
                     e->msg.term == bs_raft_term(g->raft);
        if (g->asleep && !quiet)
            wake(g);
        int rc = bs_raft_step(g->raft, &e->msg);
        if (rc != 0 && rc != BS_EDROPPED && rc != BS_EINVAL)
            s->fatal = rc;
        g->dirty = true;
    }
}

/* ---------------------------------------------------------------- tick */

static bool leader_idle(struct group *g)
{
    if (bs_raft_role(g->raft) != BS_RAFT_LEADER || g->n_reqs > 0)
        return false;
    uint64_t last = bs_raft_last_index(g->raft);
    if (bs_raft_committed(g->raft) != last ||
        bs_raft_applied(g->raft) != last)
        return false;
    struct bs_raft_progress_info pi[BS_RAFT_MAX_MEMBERS];
    size_t n = bs_raft_progress(g->raft, pi, BS_RAFT_MAX_MEMBERS);
    for (size_t i = 0; i < n && i < BS_RAFT_MAX_MEMBERS; i++)
        if (pi[i].match != last)
            return false;
    return true;
}

static int outbox_push(struct bs_eng_store *s, uint64_t node,
                       const struct bs_eng_envelope *e /* taken */)
{
    struct peer *p = get_peer(s, node);
    if (!p)
        return BS_ENOMEM;
    if (p->n_out == p->cap_out) {
        size_t cap = p->cap_out ? p->cap_out * 2 : 16;
        struct bs_eng_envelope *v = realloc(p->out, cap * sizeof(*v));
        if (!v)
            return BS_ENOMEM;
        p->out = v;
        p->cap_out = cap;
    }
    p->out[p->n_out++] = *e;
    return 0;
}

static void hibernate(struct bs_eng_store *s, struct group *g)
{
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(g->raft, &cs);
    uint64_t ids[BS_RAFT_CONF_MAX_LIST];
    size_t n = bs_raft_conf_members(&cs, ids, NULL);
    for (size_t i = 0; i < n; i++) {
        uint64_t rid = ids[i];
        if (rid == g->replica_id)
            continue;
        struct bs_eng_envelope e = {.kind = BS_ENG_ENV_HIBERNATE,
                                    .shard_id = g->shard_id};
        e.msg.to = rid;
        e.msg.from = g->replica_id;
        e.msg.term = bs_raft_term(g->raft);
        e.msg.commit = bs_raft_committed(g->raft);
        (void)outbox_push(s, BS_ENG_REPLICA_NODE(rid), &e);
    }
    g->asleep = true;
}

static void expire_requests(struct bs_eng_store *s, struct group *g,
                            uint64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < g->n_reqs; i++) {
        struct req *r = &g->reqs[i];
        if (r->deadline_ms <= now)
            complete(s, r->cb, r->ctx, BS_ETIMEDOUT, NULL, 0);
        else
            g->reqs[w++] = *r;
    }
    g->n_reqs = w;
}

static void flush_outboxes(struct bs_eng_store *s);

void bs_eng_store_tick(struct bs_eng_store *s)
{
    uint64_t now = now_ms(s);
    uint64_t down_ms =
        (uint64_t)s->cfg.election_tick * (uint64_t)s->cfg.tick_ms;
    for (size_t i = 0; i < s->n_groups; i++) {
        struct group *g = s->groups[i];
        expire_requests(s, g, now);
        if (g->asleep) {
            /* Wake followers whose leader's node went quiet. */
            uint64_t lead = bs_raft_lead(g->raft);
            uint64_t ln = BS_ENG_REPLICA_NODE(lead);
            if (lead != 0 && ln != s->cfg.node_id) {
                struct peer *p = get_peer(s, ln);
                if (p && now - p->last_heard_ms > down_ms)
                    wake(g);
            }
            if (g->asleep) {
                s->st.ticks_skipped++;
                continue;
            }
        }
        bs_raft_tick(g->raft);
        g->dirty = true;
        if (s->cfg.hibernate_ticks > 0 && leader_idle(g)) {
            if (++g->idle_ticks >= s->cfg.hibernate_ticks)
                hibernate(s, g);
        } else {
            g->idle_ticks = 0;
        }
        if (bs_raft_role(g->raft) != BS_RAFT_LEADER && g->cu_term != 0)
            track_in_sync(g, now, NULL, 0); /* deposed */
        /* A snapshot that was lost in transit: retry after a while. */
        if (bs_raft_role(g->raft) == BS_RAFT_LEADER) {
            struct bs_raft_progress_info pi[BS_RAFT_MAX_MEMBERS];
            size_t n = bs_raft_progress(g->raft, pi, BS_RAFT_MAX_MEMBERS);
            track_in_sync(g, now, pi, n);
            bool waiting = false;
            for (size_t k = 0; k < n && k < BS_RAFT_MAX_MEMBERS; k++)
                waiting |= pi[k].state == 2;
            if (!waiting) {
                g->snap_wait_ticks = 0;
            } else if (++g->snap_wait_ticks >= 2 * s->cfg.election_tick) {
                g->snap_wait_ticks = 0;
                for (size_t k = 0; k < n && k < BS_RAFT_MAX_MEMBERS; k++)
                    if (pi[k].state == 2)
                        bs_raft_report_snapshot(g->raft, pi[k].id, true);
            }
        }
    }
    /* Node liveness: one heartbeat per peer node per tick. */
    for (size_t i = 0; i < s->n_peers; i++) {
        if (s->peers[i].node == s->cfg.node_id)
            continue;
        struct bs_eng_envelope e = {.kind = BS_ENG_ENV_NODE_HEARTBEAT};
        (void)outbox_push(s, s->peers[i].node, &e);
    }
    flush_outboxes(s);
    s->st.groups_asleep = 0;
    for (size_t i = 0; i < s->n_groups; i++)
        s->st.groups_asleep += s->groups[i]->asleep;
    run_completions(s);
}

/* ------------------------------------------------------------- requests */

int bs_eng_store_propose(struct bs_eng_store *s, uint64_t shard_id,
                         const void *cmd, size_t len, bs_eng_done_cb cb,
                         void *ctx)
{
    struct group *g = find_group(s, shard_id);
    if (!g || g->removed)
        return BS_ENOTFOUND;
    if (g->asleep)
        wake(g);
    if (bs_raft_role(g->raft) != BS_RAFT_LEADER)
        return BS_ENOTLEADER;
    int rc = bs_raft_propose(g->raft, cmd, len);
    if (rc != 0)
        return rc == BS_ETOOBIG ? BS_EBUSY : BS_EDROPPED;
    struct req r = {.id = ++s->next_req_id,
                    .index = bs_raft_last_index(g->raft),
                    .term = bs_raft_term(g->raft),
                    .deadline_ms = now_ms(s) + s->cfg.request_timeout_ms,
                    .cb = cb,
                    .ctx = ctx};
    rc = add_req(g, &r);
    g->dirty = true;
    return rc;
}

int bs_eng_store_propose_conf_change(struct bs_eng_store *s,
                                     uint64_t shard_id,
                                     const struct bs_raft_conf_change *cc,
                                     bs_eng_done_cb cb, void *ctx)
{
    struct group *g = find_group(s, shard_id);
    if (!g || g->removed)
        return BS_ENOTFOUND;
    if (g->asleep)
        wake(g);
    if (bs_raft_role(g->raft) != BS_RAFT_LEADER)
        return BS_ENOTLEADER;
    uint64_t before = bs_raft_last_index(g->raft);
    int rc = bs_raft_propose_conf_change(g->raft, cc);
    if (rc != 0)
        return rc;
    if (bs_raft_last_index(g->raft) == before)
        return BS_EDROPPED;
    struct req r = {.id = ++s->next_req_id,
                    .is_conf = true,
                    .index = bs_raft_last_index(g->raft),
                    .term = bs_raft_term(g->raft),
                    .deadline_ms = now_ms(s) + s->cfg.request_timeout_ms,
                    .cb = cb,
                    .ctx = ctx};
    rc = add_req(g, &r);
    g->dirty = true;
    return rc;
}

int bs_eng_store_read_index(struct bs_eng_store *s, uint64_t shard_id,
                            bs_eng_done_cb cb, void *ctx)
{
    struct group *g = find_group(s, shard_id);
    if (!g || g->removed)
        return BS_ENOTFOUND;
    if (g->asleep)
        wake(g);
    struct req r = {.id = ++s->next_req_id,
                    .is_read = true,
                    .deadline_ms = now_ms(s) + s->cfg.request_timeout_ms,
                    .cb = cb,
                    .ctx = ctx};
    int rc = bs_raft_read_index(g->raft, r.id);
    if (rc != 0)
        return rc == BS_EDROPPED ? BS_ENOTLEADER : rc;
    rc = add_req(g, &r);
    g->dirty = true;
    return rc;
}

int bs_eng_store_campaign(struct bs_eng_store *s, uint64_t shard_id)
{
    struct group *g = find_group(s, shard_id);
    if (!g || g->removed)
        return BS_ENOTFOUND;
    if (g->asleep)
        wake(g);
    bs_raft_campaign(g->raft);
    g->dirty = true;
    return 0;
}

int bs_eng_store_transfer_leader(struct bs_eng_store *s, uint64_t shard_id,
                                 uint64_t to)
{
    struct group *g = find_group(s, shard_id);
    if (!g || g->removed)
        return BS_ENOTFOUND;
    if (bs_raft_role(g->raft) != BS_RAFT_LEADER)
        return BS_ENOTLEADER;
    if (g->asleep)
        wake(g);
    bs_raft_transfer_leader(g->raft, to);
    g->dirty = true;
    return 0;
}

int bs_eng_store_remove_replica(struct bs_eng_store *s, uint64_t shard_id)
{
    struct group *g = find_group(s, shard_id);
    if (!g)
        return BS_ENOTFOUND;
    /* Between rounds (the store's single thread): nothing of g is staged
     * in a batch, so the removal path of apply serves as it is. */
    destroy_group(s, g);
    s->st.groups = s->n_groups;
    run_completions(s);
    return 0;
}

/* ----------------------------------------------------------- the round */

static void free_envelope(struct bs_eng_envelope *e)
{
    bs_raft_msg_free(&e->msg);
}

static void flush_outboxes(struct bs_eng_store *s)
{
    for (size_t i = 0; i < s->n_peers; i++) {
        struct peer *p = &s->peers[i];
        if (p->n_out == 0)
            continue;
        int rc = s->cfg.transport.ops->send(s->cfg.transport.ctx, p->node,
                                            p->out, p->n_out);
        s->st.batches_sent++;
        for (size_t k = 0; k < p->n_out; k++) {
            struct bs_eng_envelope *e = &p->out[k];
            if (e->kind == BS_ENG_ENV_RAFT) {
                s->st.msgs_sent++;
                if (rc != 0) {
                    struct group *g = find_group(s, e->shard_id);
                    if (g && !g->in_round &&
                        bs_raft_role(g->raft) == BS_RAFT_LEADER) {
                        if (e->msg.type == BS_RAFT_MSG_SNAP)
                            bs_raft_report_snapshot(g->raft, e->msg.to, true);
                        bs_raft_report_unreachable(g->raft, e->msg.to);
                        g->dirty = true;
                    }
                }
            }
            free_envelope(e);
        }
        p->n_out = 0;
    }
}

/* Exports the shard image for an outgoing MsgSnap; the envelope's copy of
 * the message carries the image's path as snapshot data. */
static int prepare_snapshot(struct bs_eng_store *s, struct group *g,
                            struct bs_raft_msg *m)
{
    char dir[768];
    snprintf(dir, sizeof(dir), "%s/s%" PRIu64 "-i%" PRIu64 "-n%" PRIu64,
             s->snap_dir, g->shard_id, m->snapshot.meta.index,
             ++s->snap_seq);
    char em[256] = "";
    struct bs_eng_snap_info info;
    int rc = bs_eng_snap_export(s->cfg.db, NULL, g->shard_id,
                                m->snapshot.meta.index, m->snapshot.meta.term,
                                dir, &info, em);
    if (rc != 0) {
        bs_log(BS_LOG_ERROR, MOD, "snapshot export failed shard=%" PRIu64
               " err=%s detail=\"%s\"", g->shard_id, bs_strerror(rc), em);
        return rc;
    }
    free(m->snapshot.data);
    m->snapshot.len = strlen(dir);
    m->snapshot.data = malloc(m->snapshot.len);
    if (!m->snapshot.data)
        return BS_ENOMEM;
    memcpy(m->snapshot.data, dir, m->snapshot.len);
    s->st.snapshots_sent++;
    return 0;
}

/* Moves the messages of g's ready into the outboxes: early (before the
 * round's write) all but snapshots, which need the export; or what is
 * left. */
static int stage_msgs(struct bs_eng_store *s, struct group *g, bool early)
{
    for (size_t k = 0; k < g->rd.n_msgs; k++) {
        bool snap = g->rd.msgs[k].type == BS_RAFT_MSG_SNAP;
        if (early ? snap : (g->msgs_early && !snap))
            continue;
        struct bs_eng_envelope e = {.kind = BS_ENG_ENV_RAFT,
                                    .shard_id = g->shard_id};
        if (bs_raft_msg_copy(&e.msg, &g->rd.msgs[k]) != 0)
            return BS_ENOMEM;
        if (e.msg.type == BS_RAFT_MSG_SNAP &&
            prepare_snapshot(s, g, &e.msg) != 0) {
            free_envelope(&e);
            continue; /* the core retries after report_snapshot */
        }
        if (outbox_push(s, BS_ENG_REPLICA_NODE(e.msg.to), &e) != 0) {
            free_envelope(&e);
            return BS_ENOMEM;
        }
    }
    g->msgs_early = early;
    return 0;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char path[1536];
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/*
 * Stages the snapshot of a ready (engine.h, "shard snapshots"): the image
 * is ingested into the next generation of the shard's CF, the live one
 * untouched, and the switch to it goes into the persist batch together
 * with the log reset and the hard state. A crash thus leaves either the old
 * data with the old log or the new data with the new log; wiping the log
 * of a replica whose data went missing would not be safe (a voter with an
 * empty log can help elect a leader that lacks committed entries). The
 * state machine reloads once the batch is written (finish_snapshot).
 */
static int install_snapshot(struct bs_eng_store *s, struct group *g,
                            const struct bs_raft_snapshot *snap)
{
    char path[1024];
    if (snap->len == 0 || snap->len >= sizeof(path))
        return BS_EPROTO;
    memcpy(path, snap->data, snap->len);
    path[snap->len] = '\0';
    char em[256] = "";
    struct bs_eng_snap_info info;
    uint64_t gen = 0;
    int rc = bs_eng_snap_ingest_prepare(s->cfg.db, g->shard_id, path, &info,
                                        &gen, em);
    remove_tree(path);
    if (rc != 0) {
        bs_log(BS_LOG_ERROR, MOD, "snapshot ingest failed shard=%" PRIu64
               " err=%s detail=\"%s\"", g->shard_id, bs_strerror(rc), em);
        return rc;
    }
    g->snap_pending = true; /* finish_snapshot commits or aborts it */
    g->snap_gen = gen;
    rc = bs_eng_wb_switch_generation(s->wb_persist, s->cfg.db, g->shard_id,
                                     gen);
    if (rc != 0)
        return rc;
    rc = bs_eng_log_apply_snapshot(g->log, s->wb_persist, &snap->meta);
    if (rc != 0)
        return rc;
    bs_eng_log_set_conf(g->log, &snap->meta.conf);
    return 0;
}

/* After the persist batch was written (written) or not: switch to the
 * prepared generation and reload the state machine from it, or drop it. */
static int finish_snapshot(struct bs_eng_store *s, struct group *g,
                           bool written)
{
    if (!g->snap_pending)
        return 0;
    g->snap_pending = false;
    if (!written) {
        (void)bs_eng_db_generation_abort(s->cfg.db, g->shard_id, g->snap_gen);
        return 0;
    }
    int rc = bs_eng_db_generation_committed(s->cfg.db, g->shard_id,
                                            g->snap_gen);
    if (rc == 0)
        rc = g->ops->reload(g->sm);
    if (rc == 0)
        s->st.snapshots_applied++;
    return rc;
}

/* Answers proposals whose entry was applied (or overwritten). */
static void settle_proposal(struct bs_eng_store *s, struct group *g,
                            uint64_t index, uint64_t term,
                            struct bs_eng_apply_result *res)
{
    size_t w = 0;
    bool taken = false;
    for (size_t i = 0; i < g->n_reqs; i++) {
        struct req *r = &g->reqs[i];
        if (!r->is_read && r->index == index) {
            if (r->term == term && !taken) {
                /* A conf change settled by an entry without a result was
                 * replaced by an empty entry (the core refused it). */
                int st = res ? res->status : r->is_conf ? BS_EDROPPED : 0;
                complete(s, r->cb, r->ctx, st,
                         res ? res->resp : NULL, res ? res->resp_len : 0);
                taken = true;
            } else {
                /* Another leader's entry took the slot: ours was lost. */
                complete(s, r->cb, r->ctx, BS_EDROPPED, NULL, 0);
            }
            continue;
        }
        if (!r->is_read && r->index < index) {
            /* Skipped over: a snapshot covered its index after this node
             * lost leadership. The entry may be inside the snapshot or may
             * have been replaced: the outcome is unknown (nodesim seed
             * 1110 read a value whose write had been reported dropped). */
            complete(s, r->cb, r->ctx, BS_ETIMEDOUT, NULL, 0);
            continue;
        }
        g->reqs[w++] = *r;
    }
    g->n_reqs = w;
    if (res && !taken)
        free(res->resp);
}

static void settle_reads(struct bs_eng_store *s, struct group *g)
{
    uint64_t applied = bs_raft_applied(g->raft);
    size_t w = 0;
    for (size_t i = 0; i < g->n_reqs; i++) {
        struct req *r = &g->reqs[i];
        if (r->is_read && r->have_index && r->index <= applied) {
            complete(s, r->cb, r->ctx, 0, NULL, 0);
            continue;
        }
        g->reqs[w++] = *r;
    }
    g->n_reqs = w;
}

/* Applies one committed entry of g. Returns 0 or a fatal error. */
static int apply_entry(struct bs_eng_store *s, struct group *g,
                       const struct bs_raft_entry *e, uint64_t **split_ids,
                       size_t *n_split, size_t *cap_split)
{
    int rc = 0;
    if (e->type == BS_RAFT_ENTRY_CONF_CHANGE) {
        struct bs_raft_conf_change cc;
        struct bs_raft_conf_state cs;
        if (bs_raft_cc_decode(e->data, e->len, &cc) != 0) {
            /* Every replica decodes the same bytes the same way: a no-op
             * everywhere. */
            rc = g->ops->advance(g->sm, s->wb_apply, e->index, e->term, NULL);
            settle_proposal(s, g, e->index, e->term, NULL);
            return rc;
        }
        int st = bs_raft_apply_conf_change(g->raft, &cc, &cs);
        rc = g->ops->advance(g->sm, s->wb_apply, e->index, e->term, &cs);
        bs_eng_log_set_conf(g->log, &cs);
        for (uint32_t i = 0; i < cs.n_voters; i++)
            (void)get_peer(s, BS_ENG_REPLICA_NODE(cs.voters[i]));
        if (st == 0 && !bs_raft_conf_has(&cs, g->replica_id))
            g->removed = true;
        struct bs_eng_apply_result res = {.status = st};
        settle_proposal(s, g, e->index, e->term, &res);
        return rc;
    }
    if (e->len == 0) {
        rc = g->ops->advance(g->sm, s->wb_apply, e->index, e->term, NULL);
        settle_proposal(s, g, e->index, e->term, NULL);
        return rc;
    }
    struct bs_eng_apply_result res = {0};
    rc = g->ops->apply(g->sm, s->wb_apply, e->index, e->term, e->data, e->len,
                       &res);
    if (rc != 0) {
        free(res.resp);
        return rc;
    }
    if (res.split) {
        /* Unbounded: a group may apply several splits in one round. */
        if (*n_split == *cap_split) {
            size_t cap = *cap_split ? *cap_split * 2 : 16;
            uint64_t *v = realloc(*split_ids, cap * sizeof(*v));
            if (!v) {
                free(res.resp);
                return BS_ENOMEM;
            }
            *split_ids = v;
            *cap_split = cap;
        }
        (*split_ids)[(*n_split)++] = res.split_shard_id;
        g->compact_after_split = true;
    }
    settle_proposal(s, g, e->index, e->term, &res);
    return 0;
}

static void maybe_compact(struct bs_eng_store *s, struct group *g)
{
    uint64_t first = bs_eng_log_first_index(g->log);
    uint64_t last = bs_eng_log_last_index(g->log);
    uint64_t applied = bs_raft_applied(g->raft);
    uint64_t n = last >= first ? last - first + 1 : 0;
    if (n <= s->cfg.log_max_entries &&
        bs_eng_log_bytes(g->log) <= s->cfg.log_max_bytes)
        return;
    /* Keep half the budget for slow followers (they get a snapshot if
     * they fall further behind). */
    uint64_t keep = s->cfg.log_max_entries / 2;
    if (applied <= keep + first)
        return;
    uint64_t to = applied - keep;
    bs_eng_wb_clear(s->wb_persist);
    if (bs_eng_log_compact(g->log, s->wb_persist, to) == 0 &&
        bs_eng_db_write(s->cfg.db, s->wb_persist, false) == 0)
        s->st.compactions++;
}

/* The snapshot a leader would send now stands for the applied state. */
static void update_snapshot_meta(struct group *g)
{
    uint64_t index = 0, term = 0;
    struct bs_raft_snapshot_meta meta;
    g->ops->applied(g->sm, &index, &term, &meta.conf);
    if (index == 0)
        return;
    meta.index = index;
    meta.term = term;
    bs_eng_log_set_snapshot_meta(g->log, &meta);
}

static int round_once(struct bs_eng_store *s, bool *worked)
{
    *worked = false;
    size_t n_ready = 0;
    struct group **ready = malloc((s->n_groups ? s->n_groups : 1) *
                                  sizeof(*ready));
    if (!ready)
        return BS_ENOMEM;
    uint64_t now = 0;
    bool have_now = false;
    for (size_t i = 0; i < s->n_groups; i++) {
        struct group *g = s->groups[i];
        if (!g->dirty)
            continue;
        g->dirty = false;
        /* Messages stepped since the last round moved matches: sample
         * them (one clock read per round, and only with a leader). */
        if (g->cu_term != 0 || bs_raft_role(g->raft) == BS_RAFT_LEADER) {
            if (!have_now) {
                now = now_ms(s);
                have_now = true;
            }
            sample_in_sync(g, now);
        }
        if (!bs_raft_has_ready(g->raft))
            continue;
        bs_raft_ready(g->raft, &g->rd);
        g->in_round = true;
        g->msgs_early = false;
        ready[n_ready++] = g;
    }
    if (n_ready == 0) {
        free(ready);
        return 0;
    }
    *worked = true;
    s->st.rounds++;
    int rc = 0;

    /* 0. A leader's messages leave before its own write (thesis 10.2.1):
     * followers persist in parallel with it. Safe because the leader counts
     * its own entries towards commit only after advance(), and because its
     * term and vote were persisted while it was a candidate. Any other
     * role's messages (votes, acknowledgements) promise durable state and
     * wait for the write. */
    for (size_t i = 0; i < n_ready && rc == 0; i++)
        if (bs_raft_role(ready[i]->raft) == BS_RAFT_LEADER)
            rc = stage_msgs(s, ready[i], true);
    flush_outboxes(s);

    /* 1. Persist: one batch, one fsync, for every group. */
    bs_eng_wb_clear(s->wb_persist);
    bool sync = false;
    for (size_t i = 0; i < n_ready && rc == 0; i++) {
        struct group *g = ready[i];
        struct bs_raft_ready *rd = &g->rd;
        if (rd->has_snapshot)
            rc = install_snapshot(s, g, &rd->snapshot);
        if (rc == 0 && rd->n_entries > 0) {
            rc = bs_eng_log_append(g->log, s->wb_persist, rd->entries,
                                   rd->n_entries);
            s->st.entries_persisted += rd->n_entries;
        }
        if (rc == 0 && rd->has_hard_state)
            rc = bs_eng_log_set_hard_state(g->log, s->wb_persist,
                                           &rd->hard_state);
        /* A snapshot's switch is synced before its old CF is dropped. */
        sync |= rd->must_sync || rd->has_snapshot;
    }
    if (rc == 0 && bs_eng_wb_count(s->wb_persist) > 0) {
        rc = bs_eng_db_write(s->cfg.db, s->wb_persist,
                             sync && s->cfg.db != NULL);
        if (sync)
            s->st.fsyncs++;
    }
    /* Snapshots switch data generations only now, with the log: then the
     * state machines reload. */
    bool written = rc == 0;
    for (size_t i = 0; i < n_ready; i++) {
        int r = finish_snapshot(s, ready[i], written);
        if (rc == 0)
            rc = r;
    }

    /* 2. Send: one batch per destination node (what a leader's groups
     * sent before the write is gone already). */
    for (size_t i = 0; i < n_ready && rc == 0; i++)
        rc = stage_msgs(s, ready[i], false);
    flush_outboxes(s);

    /* 3. Apply: one batch for every group, no fsync. */
    uint64_t *split_ids = NULL;
    size_t n_split = 0, cap_split = 0;
    bs_eng_wb_clear(s->wb_apply);
    for (size_t i = 0; i < n_ready && rc == 0; i++) {
        struct group *g = ready[i];
        for (size_t k = 0; k < g->rd.n_committed && rc == 0; k++) {
            rc = apply_entry(s, g, &g->rd.committed[k], &split_ids, &n_split,
                             &cap_split);
            s->st.entries_applied++;
        }
        for (size_t k = 0; k < g->rd.n_read_states; k++) {
            for (size_t q = 0; q < g->n_reqs; q++) {
                if (g->reqs[q].is_read &&
                    g->reqs[q].id == g->rd.read_states[k].ctx) {
                    g->reqs[q].have_index = true;
                    g->reqs[q].index = g->rd.read_states[k].index;
                }
            }
        }
    }
    if (rc == 0 && bs_eng_wb_count(s->wb_apply) > 0)
        rc = bs_eng_db_write(s->cfg.db, s->wb_apply, false);
    for (size_t i = 0; i < n_ready; i++)
        if (ready[i]->rd.n_committed > 0)
            ready[i]->ops->batch_done(ready[i]->sm, rc == 0);

    /* 4. Advance every group; then answer, create, remove, compact. */
    for (size_t i = 0; i < n_ready; i++) {
        struct group *g = ready[i];
        bs_raft_advance(g->raft, &g->rd);
        g->in_round = false;
        g->dirty = true;
    }
    for (size_t i = 0; i < n_ready && rc == 0; i++) {
        struct group *g = ready[i];
        settle_reads(s, g);
        update_snapshot_meta(g);
        maybe_compact(s, g);
    }
    for (size_t i = 0; i < n_split && rc == 0; i++) {
        /* The split's apply wrote the new shard's CF and apply state; the
         * new group starts from that state on every replica. */
        uint64_t id = split_ids[i];
        if (find_group(s, id))
            continue;
        void *sm = NULL;
        const struct bs_eng_sm_ops *ops = NULL;
        rc = s->cfg.sm_factory.open(s->cfg.sm_factory.ctx, s->cfg.db, id,
                                    &sm, &ops);
        if (rc != 0)
            break;
        struct bs_raft_snapshot_meta meta;
        ops->applied(sm, &meta.index, &meta.term, &meta.conf);
        ops->destroy(sm);
        uint64_t rid = my_replica(s, &meta.conf);
        if (rid == 0)
            continue; /* not a member here */
        rc = create_group_at(s, id, rid, &meta, false);
    }
    for (size_t i = 0; i < n_ready; i++) {
        if (ready[i]->removed) {
            destroy_group(s, ready[i]);
        } else if (ready[i]->compact_after_split) {
            /* The half a split gave away is deleted from this CF by a
             * range tombstone, but its bytes stay in the memtable and the
             * files until compaction, and so in the shard's size estimate
             * (bs_eng_db_shard_size), which would split the shard again
             * and again. Compacting now drops them. It blocks this loop
             * for the time it takes (milliseconds for a few MiB, about a
             * second for a 64 MiB shard); splits are rare. */
            ready[i]->compact_after_split = false;
            (void)bs_eng_db_shard_compact(s->cfg.db, ready[i]->shard_id);
        }
    }
    free(split_ids);
    free(ready);
    s->st.groups = s->n_groups;
    return rc;
}

bool bs_eng_store_has_work(const struct bs_eng_store *s)
{
    for (size_t i = 0; i < s->n_groups; i++)
        if (s->groups[i]->dirty && bs_raft_has_ready(s->groups[i]->raft))
            return true;
    return false;
}

int bs_eng_store_process(struct bs_eng_store *s)
{
    if (s->fatal)
        return s->fatal;
    /* Bounded: callbacks that propose again would otherwise keep one call
     * going for seconds with no tick (store_bench saw 1.2-8.8 s), longer
     * than an election timeout. */
    for (int guard = 0; guard < BS_ENG_STORE_MAX_ROUNDS; guard++) {
        bool worked = false;
        int rc = round_once(s, &worked);
        if (rc != 0) {
            s->fatal = rc;
            bs_log(BS_LOG_ERROR, MOD, "store stopped err=%s detail=\"%s\"",
                   bs_strerror(rc), bs_eng_db_errmsg(s->cfg.db));
            run_completions(s);
            return rc;
        }
        run_completions(s);
        if (!worked)
            break;
    }
    return s->fatal;
}

/* ----------------------------------------------------------- inspection */

int bs_eng_store_group(const struct bs_eng_store *s, uint64_t shard_id,
                       struct bs_eng_group_info *info)
{
    struct group *g = find_group(s, shard_id);
    if (!g)
        return BS_ENOTFOUND;
    info->shard_id = g->shard_id;
    info->replica_id = g->replica_id;
    info->leader = bs_raft_lead(g->raft);
    info->term = bs_raft_term(g->raft);
    info->commit = bs_raft_committed(g->raft);
    info->applied = bs_raft_applied(g->raft);
    info->role = (uint8_t)bs_raft_role(g->raft);
    info->asleep = g->asleep;
    bs_raft_conf_state(g->raft, &info->conf);
    return 0;
}

size_t bs_eng_store_groups(const struct bs_eng_store *s, uint64_t *ids,
                           size_t cap)
{
    for (size_t i = 0; i < s->n_groups && i < cap; i++)
        ids[i] = s->groups[i]->shard_id;
    return s->n_groups;
}

void *bs_eng_store_sm(const struct bs_eng_store *s, uint64_t shard_id)
{
    struct group *g = find_group(s, shard_id);
    return g ? g->sm : NULL;
}

uint64_t bs_eng_store_leader(const struct bs_eng_store *s, uint64_t shard_id)
{
    struct group *g = find_group(s, shard_id);
    return g ? bs_raft_lead(g->raft) : 0;
}

size_t bs_eng_store_progress(const struct bs_eng_store *s, uint64_t shard_id,
                             struct bs_eng_progress *out, size_t cap,
                             uint64_t *last_index)
{
    if (last_index)
        *last_index = 0;
    struct group *g = find_group(s, shard_id);
    if (!g || g->removed || bs_raft_role(g->raft) != BS_RAFT_LEADER)
        return 0;
    struct bs_raft_progress_info pi[BS_RAFT_MAX_MEMBERS];
    size_t n = bs_raft_progress(g->raft, pi, BS_RAFT_MAX_MEMBERS);
    if (n > BS_RAFT_MAX_MEMBERS)
        n = BS_RAFT_MAX_MEMBERS;
    uint64_t last = bs_raft_last_index(g->raft);
    uint64_t now = now_ms(s);
    /* Not sampled since it became leader: as the first sample would. */
    bool tracked = g->cu_term == bs_raft_term(g->raft);
    for (size_t i = 0; i < n && i < cap; i++) {
        bool self = pi[i].id == g->replica_id;
        out[i].id = pi[i].id;
        out[i].match = self && pi[i].match < last ? last : pi[i].match;
        out[i].next = pi[i].next;
        out[i].state = pi[i].state;
        out[i].learner = pi[i].learner;
        out[i].recent_active = pi[i].recent_active;
        /* Caught up now (this is what keeps a sleeping group's followers
         * in sync: see the ISR section above). */
        bool caught = !tracked || self || pi[i].match >= last;
        out[i].caught_up_ms = caught ? now : cu_lookup(g, pi[i].id, now);
    }
    if (last_index)
        *last_index = last;
    return n;
}

void bs_eng_store_stats(const struct bs_eng_store *s,
                        struct bs_eng_store_stats *st)
{
    *st = s->st;
}
