/*
 * node.c - one simulated replica: its persisted storage, its bs_raft, its
 * state machine, and the ready cycle that connects them.
 *
 * The ready cycle follows raft.h to the letter:
 *
 *   1. persist: install rd.snapshot into storage (and restore the state
 *      machine from its data), append rd.entries, save rd.hard_state;
 *   2. send rd.msgs (copied into the virtual network);
 *   3. apply rd.committed in order (conf changes through
 *      bs_raft_apply_conf_change()), serve rd.read_states whose index is
 *      applied;
 *   then bs_raft_advance().
 *
 * Storage writes are synchronous, so "durable" means "done". A crash
 * destroys the bs_raft and the state machine and keeps the mem storage; an
 * injected crash may also strike between steps 1 and 2 of a ready, so that
 * what was persisted is never sent nor applied. A restart rebuilds the state
 * machine from the storage's snapshot and lets the core hand the committed
 * entries after it out again (config.applied = snapshot index).
 *
 * The core reads the log through a thin wrapper over the mem storage whose
 * snapshot() behaves like an engine that builds snapshots on demand (as
 * TiKV does): asked for a snapshot older than the state machine, or one
 * whose configuration is no longer current (a replica added since would
 * refuse it), it usually takes a fresh one first, and now and then answers
 * BS_ESNAPTEMP ("being built") so that the core's retry path runs too.
 *
 * The state machine is a set of registers (put key value) plus the set of
 * write ids already applied: a proposal can appear twice in the log (a
 * duplicated MsgProp), and, like any real client protocol, the state
 * machine applies a request id once. Its snapshot image is those two sets.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

#define SNAP_MAGIC 0x31535342u /* "BSS1" */
#define CMD_PUT    'W'
#define CMD_LEN    13

uint64_t bs_sim__hash(const void *data, size_t len, uint64_t h)
{
    const uint8_t *p = data;
    if (!h)
        h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ------------------------------------------------------- configuration */

static bool in_set(const uint64_t *v, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

bool bs_sim__conf_voter(const struct bs_raft_conf_state *cs, uint64_t id)
{
    return in_set(cs->voters, cs->n_voters, id) ||
           in_set(cs->voters_outgoing, cs->n_voters_outgoing, id);
}

bool bs_sim__conf_has(const struct bs_raft_conf_state *cs, uint64_t id)
{
    return bs_sim__conf_voter(cs, id) ||
           in_set(cs->learners, cs->n_learners, id) ||
           in_set(cs->learners_next, cs->n_learners_next, id);
}

bool bs_sim__conf_joint(const struct bs_raft_conf_state *cs)
{
    return cs->n_voters_outgoing > 0;
}

static size_t put_set(char *buf, size_t len, size_t at, const char *name,
                      const uint64_t *v, uint32_t n)
{
    if (at >= len)
        return at;
    int k = snprintf(buf + at, len - at, "%s%s{", at ? " " : "", name);
    at += k > 0 ? (size_t)k : 0;
    for (uint32_t i = 0; i < n && at < len; i++) {
        k = snprintf(buf + at, len - at, "%sn%llu", i ? "," : "",
                     (unsigned long long)v[i]);
        at += k > 0 ? (size_t)k : 0;
    }
    if (at < len) {
        k = snprintf(buf + at, len - at, "}");
        at += k > 0 ? (size_t)k : 0;
    }
    return at;
}

void bs_sim__conf_str(const struct bs_raft_conf_state *cs, char *buf,
                      size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    at = put_set(buf, len, at, "voters", cs->voters, cs->n_voters);
    if (cs->n_voters_outgoing)
        at = put_set(buf, len, at, "outgoing", cs->voters_outgoing,
                     cs->n_voters_outgoing);
    if (cs->n_learners)
        at = put_set(buf, len, at, "learners", cs->learners, cs->n_learners);
    if (cs->n_learners_next)
        put_set(buf, len, at, "learners_next", cs->learners_next,
                cs->n_learners_next);
}

/* Schedules the shutdown of members that `next` (a committed, non-joint
 * configuration that follows `prev` in the log) no longer holds. Ids are
 * never reused, so leaving a configuration is final. */
static void note_removals(struct bs_sim *s,
                          const struct bs_raft_conf_state *prev,
                          const struct bs_raft_conf_state *next)
{
    if (bs_sim__conf_joint(next))
        return;
    for (uint64_t id = 1; id <= s->max_id; id++) {
        struct bs_sim_node *x = &s->nodes[id];
        if (x->retire_at || x->state == BS_SIM_RETIRED)
            continue;
        if (bs_sim__conf_has(prev, id) && !bs_sim__conf_has(next, id)) {
            uint64_t et = (uint64_t)s->p.election_tick * s->p.steps_per_tick;
            x->retire_at = s->now + 1 + bs_sim_rng_below(&s->rng, 2 * et);
        }
    }
}

/* -------------------------------------------------------- state machine */

static void sm_reset(struct bs_sim_node *n)
{
    memset(n->vals, 0, sizeof n->vals);
    free(n->done);
    n->done = NULL;
    n->done_bytes = 0;
    n->applied = 0;
}

static bool sm_done(const struct bs_sim_node *n, uint64_t w)
{
    return w / 8 < n->done_bytes && (n->done[w / 8] >> (w % 8)) & 1;
}

static int sm_mark(struct bs_sim_node *n, uint64_t w)
{
    if (w / 8 >= n->done_bytes) {
        size_t nb = (w / 8 + 1) * 2;
        uint8_t *nd = realloc(n->done, nb);
        if (!nd)
            return BS_ENOMEM;
        memset(nd + n->done_bytes, 0, nb - n->done_bytes);
        n->done = nd;
        n->done_bytes = nb;
    }
    n->done[w / 8] |= (uint8_t)(1u << (w % 8));
    return 0;
}

/* Serializes the state machine: magic, key count, values, bitmap length,
 * bitmap trimmed of trailing zero bytes (so equal states encode equally).
 * Returns a malloc'd buffer (caller owns) or NULL. */
static uint8_t *sm_encode(const struct bs_sim_node *n, size_t *len)
{
    size_t bytes = n->done_bytes;
    while (bytes > 0 && n->done[bytes - 1] == 0)
        bytes--;
    size_t sz = 8 + 8 * BS_SIM_MAX_KEYS + 4 + bytes;
    uint8_t *buf = malloc(sz);
    if (!buf)
        return NULL;
    put_u32(buf, SNAP_MAGIC);
    put_u32(buf + 4, BS_SIM_MAX_KEYS);
    for (int k = 0; k < BS_SIM_MAX_KEYS; k++)
        put_u64(buf + 8 + 8 * k, n->vals[k]);
    put_u32(buf + 8 + 8 * BS_SIM_MAX_KEYS, (uint32_t)bytes);
    if (bytes)
        memcpy(buf + 12 + 8 * BS_SIM_MAX_KEYS, n->done, bytes);
    *len = sz;
    return buf;
}

/* Restores from an image (empty = the initial state). Returns 0,
 * BS_ECORRUPT or BS_ENOMEM. */
static int sm_decode(struct bs_sim_node *n, const uint8_t *data, size_t len)
{
    sm_reset(n);
    if (len == 0)
        return 0;
    size_t head = 12 + 8 * BS_SIM_MAX_KEYS;
    if (len < head || get_u32(data) != SNAP_MAGIC ||
        get_u32(data + 4) != BS_SIM_MAX_KEYS)
        return BS_ECORRUPT;
    size_t bytes = get_u32(data + 8 + 8 * BS_SIM_MAX_KEYS);
    if (len != head + bytes)
        return BS_ECORRUPT;
    for (int k = 0; k < BS_SIM_MAX_KEYS; k++)
        n->vals[k] = get_u64(data + 8 + 8 * k);
    if (bytes) {
        n->done = malloc(bytes);
        if (!n->done)
            return BS_ENOMEM;
        memcpy(n->done, data + head, bytes);
        n->done_bytes = bytes;
    }
    return 0;
}

size_t bs_sim__encode_put(uint8_t *buf, uint32_t key, uint64_t value,
                          size_t pad)
{
    buf[0] = CMD_PUT;
    put_u32(buf + 1, key);
    put_u64(buf + 5, value);
    for (size_t i = 0; i < pad; i++)
        buf[CMD_LEN + i] = (uint8_t)(value + i);
    return CMD_LEN + pad;
}

/* ---------------------------------------------------------------- apply */

static const char *cc_name(int t)
{
    return t == BS_RAFT_CC_ADD_VOTER     ? "add-voter"
           : t == BS_RAFT_CC_ADD_LEARNER ? "add-learner"
                                         : "remove";
}

static void apply_entry(struct bs_sim *s, struct bs_sim_node *n,
                        const struct bs_raft_entry *e)
{
    if (e->index != n->applied + 1) {
        bs_sim__fail(s, "apply-order",
                     "n%llu applied index %llu, then was handed entry %llu",
                     (unsigned long long)n->id, (unsigned long long)n->applied,
                     (unsigned long long)e->index);
        return;
    }
    bs_sim__check_apply(s, n, e);
    if (bs_sim__failed(s))
        return;
    /* n->applied moves only once the entry's effect is in place: the core
     * may read a snapshot from storage while it applies a conf change (to
     * reach a new peer), and an on-demand snapshot pairs n->applied with
     * n->conf and the registers. */
    if (e->type == BS_RAFT_ENTRY_CONF_CHANGE) {
        struct bs_raft_conf_change cc;
        if (bs_raft_cc_decode(e->data, e->len, &cc) != 0) {
            bs_sim__fail(s, "corrupt-entry",
                         "n%llu: conf change entry %llu does not decode",
                         (unsigned long long)n->id,
                         (unsigned long long)e->index);
            return;
        }
        struct bs_raft_conf_state cs, prev = n->conf;
        int rc = bs_raft_apply_conf_change(n->r, &cc, &cs);
        if (rc == 0) {
            n->conf = cs;
            note_removals(s, &prev, &cs);
            char buf[256];
            bs_sim__conf_str(&cs, buf, sizeof buf);
            bs_sim__trace(s, "n%llu applies conf change at %llu: %s",
                          (unsigned long long)n->id,
                          (unsigned long long)e->index, buf);
        } else if (s->opt.trace) {
            char buf[256];
            bs_sim__conf_str(&n->conf, buf, sizeof buf);
            bs_sim__trace(
                s,
                "n%llu: conf change at %llu (%u changes, "
                "first %s n%llu) refused (%s) in %s",
                (unsigned long long)n->id, (unsigned long long)e->index,
                cc.n_changes, cc.n_changes ? cc_name(cc.changes[0].type) : "-",
                (unsigned long long)(cc.n_changes ? cc.changes[0].node_id : 0),
                bs_err_name(rc), buf);
        }
        bs_sim__check_conf(s, n, e->index);
        n->applied = e->index;
        return;
    }
    if (e->len == 0) {
        n->applied = e->index; /* a new leader's empty entry */
        return;
    }
    if (e->len < CMD_LEN || e->data[0] != CMD_PUT) {
        bs_sim__fail(s, "corrupt-entry",
                     "n%llu: entry %llu holds %u bytes that are no command",
                     (unsigned long long)n->id, (unsigned long long)e->index,
                     (unsigned)e->len);
        return;
    }
    uint32_t key = get_u32(e->data + 1);
    uint64_t w = get_u64(e->data + 5);
    if (key >= BS_SIM_MAX_KEYS || w == 0 || w > s->n_writes) {
        bs_sim__fail(s, "corrupt-entry", "n%llu: entry %llu: bad command",
                     (unsigned long long)n->id, (unsigned long long)e->index);
        return;
    }
    if (sm_done(n, w)) {
        n->applied = e->index; /* a duplicate of a request applied */
        return;
    }
    if (sm_mark(n, w) != 0) {
        s->oom = 1;
        return;
    }
    n->vals[key] = w;
    n->applied = e->index;
    bs_sim__hist_applied(s, n, w);
}

static void install_snapshot(struct bs_sim *s, struct bs_sim_node *n,
                             const struct bs_raft_snapshot *snap)
{
    bs_sim__check_snapshot(s, n, snap);
    if (bs_sim__failed(s))
        return;
    int rc = bs_raft_mem_storage_apply_snapshot(n->ms, snap);
    if (rc != 0) {
        bs_sim__fail(s, "snapshot",
                     "n%llu: installing the ready's snapshot at %llu: %s",
                     (unsigned long long)n->id,
                     (unsigned long long)snap->meta.index, bs_err_name(rc));
        return;
    }
    rc = sm_decode(n, snap->data, snap->len);
    if (rc != 0) {
        bs_sim__fail(s, "snapshot", "n%llu: snapshot data at %llu: %s",
                     (unsigned long long)n->id,
                     (unsigned long long)snap->meta.index, bs_err_name(rc));
        return;
    }
    struct bs_raft_conf_state prev = n->conf;
    n->applied = snap->meta.index;
    n->conf = snap->meta.conf;
    note_removals(s, &prev, &n->conf);
    s->st.snapshots++;
    n->installs++;
    bs_sim__trace(s, "n%llu installs snapshot at %llu (term %llu)",
                  (unsigned long long)n->id,
                  (unsigned long long)snap->meta.index,
                  (unsigned long long)snap->meta.term);
}

/* ------------------------------------------------------ storage wrapper */

static struct bs_raft_storage inner(void *ctx)
{
    return bs_raft_mem_storage_iface(((struct bs_sim_node *)ctx)->ms);
}

static int w_initial_state(void *ctx, struct bs_raft_hard_state *hs,
                           struct bs_raft_conf_state *cs)
{
    struct bs_raft_storage st = inner(ctx);
    return st.ops->initial_state(st.ctx, hs, cs);
}

static int w_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                     struct bs_raft_entry_vec *out)
{
    struct bs_raft_storage st = inner(ctx);
    return st.ops->entries(st.ctx, lo, hi, max_bytes, out);
}

static int w_term(void *ctx, uint64_t index, uint64_t *term)
{
    struct bs_raft_storage st = inner(ctx);
    return st.ops->term(st.ctx, index, term);
}

static uint64_t w_first_index(void *ctx)
{
    struct bs_raft_storage st = inner(ctx);
    return st.ops->first_index(st.ctx);
}

static uint64_t w_last_index(void *ctx)
{
    struct bs_raft_storage st = inner(ctx);
    return st.ops->last_index(st.ctx);
}

static int w_snapshot(void *ctx, struct bs_raft_snapshot *snap)
{
    struct bs_sim_node *n = ctx;
    struct bs_sim *s = n->sim;
    struct bs_raft_storage st = inner(ctx);
    int rc = st.ops->snapshot(st.ctx, snap);
    if (rc != 0 || n->state != BS_SIM_UP || n->applied <= snap->meta.index)
        return rc;
    bool stale = !bs_raft_conf_state_equal(&snap->meta.conf, &n->conf) ||
                 n->applied - snap->meta.index > 64;
    if (!stale || bs_sim_rng_below(&s->rng, 4) == 0)
        return 0;
    free(snap->data);
    memset(snap, 0, sizeof *snap);
    if (bs_sim_rng_below(&s->rng, 4) == 0)
        return BS_ESNAPTEMP;
    bs_sim__node_snapshot(s, n, INT32_MAX);
    if (bs_sim__failed(s))
        return BS_ESNAPTEMP;
    return st.ops->snapshot(st.ctx, snap);
}

static const struct bs_raft_storage_ops wrap_ops = {
    w_initial_state, w_entries, w_term, w_first_index, w_last_index, w_snapshot,
};

/* ------------------------------------------------------------ lifecycle */

int bs_sim__node_boot(struct bs_sim *s, struct bs_sim_node *n,
                      const struct bs_raft_conf_state *cs)
{
    n->sim = s;
    n->ms = bs_raft_mem_storage_create();
    if (!n->ms)
        return BS_ENOMEM;
    if (cs) {
        /* raft.h: an initial member persists the snapshot meta {1, 1,
         * conf} with empty data and the hard state {1, 0, 1}. */
        struct bs_raft_snapshot snap;
        memset(&snap, 0, sizeof snap);
        snap.meta.index = 1;
        snap.meta.term = 1;
        snap.meta.conf = *cs;
        int rc = bs_raft_mem_storage_apply_snapshot(n->ms, &snap);
        if (rc != 0)
            return rc;
        bs_raft_mem_storage_set_conf(n->ms, cs);
        struct bs_raft_hard_state hs = {1, 0, 1};
        bs_raft_mem_storage_set_hard_state(n->ms, &hs);
    }
    /* A replica added later starts from empty storage. */
    return bs_sim__node_start(s, n);
}

int bs_sim__node_start(struct bs_sim *s, struct bs_sim_node *n)
{
    struct bs_raft_storage st = bs_raft_mem_storage_iface(n->ms);
    struct bs_raft_snapshot snap;
    memset(&snap, 0, sizeof snap);
    int rc = st.ops->snapshot(st.ctx, &snap);
    if (rc != 0) {
        bs_sim__fail(s, "restart", "n%llu: storage snapshot(): %s",
                     (unsigned long long)n->id, bs_err_name(rc));
        return rc;
    }
    rc = sm_decode(n, snap.data, snap.len);
    free(snap.data);
    if (rc != 0) {
        bs_sim__fail(s, "restart", "n%llu: snapshot data: %s",
                     (unsigned long long)n->id, bs_err_name(rc));
        return rc;
    }
    n->applied = snap.meta.index;
    n->conf = snap.meta.conf;

    struct bs_raft_config c;
    bs_raft_config_default(&c);
    c.id = n->id;
    c.election_tick = s->p.election_tick;
    c.heartbeat_tick = s->p.heartbeat_tick;
    c.storage = (struct bs_raft_storage){&wrap_ops, n};
    c.applied = snap.meta.index;
    c.max_size_per_msg = s->p.max_size_per_msg;
    c.max_inflight_msgs = s->p.max_inflight;
    c.max_uncommitted_entries_size = s->p.max_uncommitted;
    c.check_quorum = s->p.check_quorum;
    c.pre_vote = s->p.pre_vote;
    c.read_only_option = s->p.read_only;
    c.disable_proposal_forwarding = s->p.no_forwarding;
    c.seed = bs_sim_rng_next(&s->rng);
    c.faults = s->opt.faults;
    char errmsg[256] = "";
    rc = bs_raft_create(&c, &n->r, errmsg);
    if (rc != 0) {
        bs_sim__fail(s, "restart", "n%llu: bs_raft_create: %s: %s",
                     (unsigned long long)n->id, bs_err_name(rc), errmsg);
        n->r = NULL;
        return rc;
    }
    n->inc++;
    n->state = BS_SIM_UP;
    n->crash_in_ready = false;
    n->seen_commit = st.ops->first_index(st.ctx) - 1;
    n->seen_term = 0;
    n->seen_role = -1;
    n->seen_lead = 0;
    n->lead_checked_term = 0;
    bs_sim__node_ready(s, n);
    return 0;
}

void bs_sim__node_crash(struct bs_sim *s, struct bs_sim_node *n)
{
    if (n->state != BS_SIM_UP)
        return;
    bs_raft_destroy(n->r);
    n->r = NULL;
    n->state = BS_SIM_DOWN;
    sm_reset(n);
    bs_sim__hist_node_lost(s, n);
    uint64_t et = (uint64_t)s->p.election_tick * s->p.steps_per_tick;
    n->down_until = s->now + s->p.min_down + bs_sim_rng_below(&s->rng, 6 * et);
    s->st.crashes++;
}

void bs_sim__node_retire(struct bs_sim *s, struct bs_sim_node *n)
{
    if (n->state == BS_SIM_UP) {
        bs_raft_destroy(n->r);
        n->r = NULL;
        bs_sim__hist_node_lost(s, n);
    }
    sm_reset(n);
    bs_raft_mem_storage_destroy(n->ms);
    n->ms = NULL;
    n->state = BS_SIM_RETIRED;
    bs_sim__trace(s, "n%llu shuts down (removed from the group)",
                  (unsigned long long)n->id);
}

void bs_sim__node_free(struct bs_sim_node *n)
{
    bs_raft_destroy(n->r);
    n->r = NULL;
    bs_raft_mem_storage_destroy(n->ms);
    n->ms = NULL;
    sm_reset(n);
    free(n->waiting);
    n->waiting = NULL;
    n->n_waiting = n->cap_waiting = 0;
}

/* ----------------------------------------------------------- the cycle */

void bs_sim__node_ready(struct bs_sim *s, struct bs_sim_node *n)
{
    while (n->state == BS_SIM_UP && !bs_sim__failed(s) &&
           bs_raft_has_ready(n->r)) {
        struct bs_raft_ready rd;
        bs_raft_ready(n->r, &rd);

        /* 1. persist */
        if (rd.has_snapshot) {
            install_snapshot(s, n, &rd.snapshot);
            if (bs_sim__failed(s))
                return;
        }
        if (rd.n_entries) {
            bs_sim__check_persist(s, n, rd.entries, rd.n_entries);
            if (bs_sim__failed(s))
                return;
            int rc =
                bs_raft_mem_storage_append(n->ms, rd.entries, rd.n_entries);
            if (rc != 0) {
                bs_sim__fail(
                    s, "storage", "n%llu: appending entries %llu..%llu: %s",
                    (unsigned long long)n->id,
                    (unsigned long long)rd.entries[0].index,
                    (unsigned long long)rd.entries[rd.n_entries - 1].index,
                    bs_err_name(rc));
                return;
            }
        }
        if (rd.has_hard_state)
            bs_raft_mem_storage_set_hard_state(n->ms, &rd.hard_state);
        if (n->crash_in_ready) {
            bs_sim__trace(s,
                          "n%llu crashes after persisting a ready "
                          "(its %zu messages are never sent)",
                          (unsigned long long)n->id, rd.n_msgs);
            bs_sim__node_crash(s, n);
            return;
        }

        /* 2. send */
        for (size_t i = 0; i < rd.n_msgs; i++) {
            if (bs_sim__net_send(s, &rd.msgs[i], n->inc) < 0) {
                s->oom = 1;
                return;
            }
        }

        /* 3. apply, then serve reads */
        for (size_t i = 0; i < rd.n_committed && !bs_sim__failed(s); i++)
            apply_entry(s, n, &rd.committed[i]);
        if (bs_sim__failed(s) || s->oom)
            return;
        for (size_t i = 0; i < rd.n_read_states; i++)
            bs_sim__hist_read_state(s, n, &rd.read_states[i]);
        bs_raft_advance(n->r, &rd);
        bs_sim__hist_serve(s, n);
    }
    if (n->state == BS_SIM_UP && !bs_sim__failed(s))
        bs_sim__check_node(s, n);
}

void bs_sim__node_snapshot(struct bs_sim *s, struct bs_sim_node *n, int keep_n)
{
    if (n->state != BS_SIM_UP)
        return;
    struct bs_raft_storage st = bs_raft_mem_storage_iface(n->ms);
    uint64_t first = st.ops->first_index(st.ctx);
    uint64_t last = st.ops->last_index(st.ctx);
    uint64_t at = n->applied;
    if (at < first || at > last)
        return;
    size_t len;
    uint8_t *data = sm_encode(n, &len);
    if (!data) {
        s->oom = 1;
        return;
    }
    bs_sim__check_snapdata(s, n, at, bs_sim__hash(data, len, 0));
    int rc =
        bs_raft_mem_storage_create_snapshot(n->ms, at, &n->conf, data, len);
    free(data);
    if (rc == BS_ESNAPOUTDATED)
        return; /* a snapshot at or after `at` exists already */
    if (rc != 0) {
        bs_sim__fail(s, "storage", "n%llu: create_snapshot(%llu): %s",
                     (unsigned long long)n->id, (unsigned long long)at,
                     bs_err_name(rc));
        return;
    }
    s->st.snapshots++;
    /* Keep a few entries behind the snapshot, sometimes none. */
    uint64_t keep;
    if (keep_n >= 0)
        keep = (uint64_t)keep_n;
    else if (bs_sim_rng_below(&s->rng, 3) == 0)
        keep = 0;
    else
        keep = bs_sim_rng_below(&s->rng, 24);
    uint64_t upto = at > keep ? at - keep : 1;
    if (upto > first) {
        rc = bs_raft_mem_storage_compact(n->ms, upto);
        if (rc != 0 && rc != BS_ECOMPACTED)
            bs_sim__fail(s, "storage", "n%llu: compact(%llu): %s",
                         (unsigned long long)n->id, (unsigned long long)upto,
                         bs_err_name(rc));
    }
    bs_sim__trace(s, "n%llu snapshots at %llu, compacts before %llu",
                  (unsigned long long)n->id, (unsigned long long)at,
                  (unsigned long long)upto);
}

/* ------------------------------------------------------------- delivery */

void bs_sim__deliver(struct bs_sim *s, struct bs_sim_packet *p)
{
    const struct bs_raft_msg *m = &p->m;
    uint64_t to = m->to, from = m->from;
    bool from_ok = from >= 1 && from <= s->max_id;
    struct bs_sim_node *src = from_ok ? &s->nodes[from] : NULL;
    bool src_same = src && src->state == BS_SIM_UP && src->inc == p->from_inc;
    bool ok = !p->lost && to >= 1 && to <= s->max_id &&
              s->nodes[to].state == BS_SIM_UP &&
              !(from_ok && s->net.cut[from][to]);
    if (s->opt.trace_msgs)
        bs_sim__trace(s,
                      "  %s n%llu -> n%llu term %llu index %llu/%llu "
                      "commit %llu%s hint %llu ents %zu%s",
                      bs_raft_msg_type_name(m->type), (unsigned long long)from,
                      (unsigned long long)to, (unsigned long long)m->term,
                      (unsigned long long)m->index,
                      (unsigned long long)m->log_term,
                      (unsigned long long)m->commit, m->reject ? " REJECT" : "",
                      (unsigned long long)m->reject_hint, m->n_entries,
                      ok ? "" : " (lost)");
    if (!ok) {
        if (!p->lost) /* counted when it was lost */
            s->st.msgs_dropped++;
        if (m->type == BS_RAFT_MSG_SNAP && src_same) {
            bs_raft_report_snapshot(src->r, to, true);
            bs_sim__node_ready(s, src);
        } else if (m->type == BS_RAFT_MSG_APP && src_same &&
                   bs_sim_rng_below(&s->rng, 4) == 0) {
            bs_raft_report_unreachable(src->r, to);
            bs_sim__node_ready(s, src);
        }
        return;
    }
    struct bs_sim_node *dst = &s->nodes[to];
    int rc = bs_raft_step(dst->r, m);
    if (rc != 0 && rc != BS_EDROPPED) {
        bs_sim__fail(s, "step",
                     "n%llu: bs_raft_step(%s from n%llu, term %llu): %s",
                     (unsigned long long)to, bs_raft_msg_type_name(m->type),
                     (unsigned long long)from, (unsigned long long)m->term,
                     bs_err_name(rc));
        return;
    }
    bs_sim__node_ready(s, dst);
    if (m->type == BS_RAFT_MSG_SNAP && src_same && src->state == BS_SIM_UP) {
        bs_raft_report_snapshot(src->r, to, false);
        bs_sim__node_ready(s, src);
    }
}
