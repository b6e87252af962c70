/*
 * fixture.c - the simulated Raft cluster of the unit tests (see fixture.h).
 *
 * The fixture is deliberately dumb: it persists, sends, applies and advances
 * in the order raft.h documents and never second-guesses the core, so that
 * every behaviour a test observes comes from engine/raft. What it adds is
 * checking: any broken invariant fails the running test at the step that
 * broke it, not at the assertion that happens to notice later.
 */
#include "fixture.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void fx_config(struct bs_raft_config *c)
{
    memset(c, 0, sizeof(*c));
    bs_raft_config_default(c);
    c->seed = 42;
}

struct fx_node *fx_node(struct fx_net *net, uint64_t id)
{
    ck_assert_msg(id >= 1 && id <= FX_MAX_ID && net->nodes[id].exists,
                  "no node %" PRIu64, id);
    return &net->nodes[id];
}

struct bs_raft *fx_r(struct fx_net *net, uint64_t id)
{
    struct fx_node *n = fx_node(net, id);
    ck_assert_msg(n->up, "node %" PRIu64 " is down", id);
    return n->r;
}

/* The node's storage: the mem storage's interface, with snapshot() taking
 * a fresh snapshot first when the configuration changed (see fixture.h).
 */
static int w_initial_state(void *ctx, struct bs_raft_hard_state *hs,
                           struct bs_raft_conf_state *cs)
{
    struct fx_node *n = ctx;
    return n->inner.ops->initial_state(n->inner.ctx, hs, cs);
}

static int w_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                     struct bs_raft_entry_vec *out)
{
    struct fx_node *n = ctx;
    return n->inner.ops->entries(n->inner.ctx, lo, hi, max_bytes, out);
}

static int w_term(void *ctx, uint64_t index, uint64_t *term)
{
    struct fx_node *n = ctx;
    return n->inner.ops->term(n->inner.ctx, index, term);
}

static uint64_t w_first_index(void *ctx)
{
    struct fx_node *n = ctx;
    return n->inner.ops->first_index(n->inner.ctx);
}

static uint64_t w_last_index(void *ctx)
{
    struct fx_node *n = ctx;
    return n->inner.ops->last_index(n->inner.ctx);
}

static int w_snapshot(void *ctx, struct bs_raft_snapshot *snap)
{
    struct fx_node *n = ctx;
    if (n->net->snap_on_demand) {
        struct bs_raft_snapshot cur;
        memset(&cur, 0, sizeof(cur));
        int rc = n->inner.ops->snapshot(n->inner.ctx, &cur);
        if (rc != 0)
            return rc;
        if (n->applied_index > cur.meta.index &&
            !bs_raft_conf_state_equal(&cur.meta.conf, &n->conf)) {
            rc = bs_raft_mem_storage_create_snapshot(
                n->ms, n->applied_index, &n->conf, cur.data, cur.len);
            ck_assert_msg(rc == 0, "create_snapshot: %s", bs_err_name(rc));
        }
        free(cur.data);
    }
    return n->inner.ops->snapshot(n->inner.ctx, snap);
}

static const struct bs_raft_storage_ops wrapped_ops = {
    .initial_state = w_initial_state,
    .entries = w_entries,
    .term = w_term,
    .first_index = w_first_index,
    .last_index = w_last_index,
    .snapshot = w_snapshot,
};

static void node_start(struct fx_net *net, struct fx_node *n)
{
    char errmsg[256] = "";
    n->cfg = net->base;
    n->cfg.id = n->id;
    n->cfg.seed = net->base.seed + n->id;
    n->net = net;
    n->inner = bs_raft_mem_storage_iface(n->ms);
    n->cfg.storage.ops = &wrapped_ops;
    n->cfg.storage.ctx = n;
    n->cfg.applied = n->applied_index;
    int rc = bs_raft_create(&n->cfg, &n->r, errmsg);
    ck_assert_msg(rc == 0, "bs_raft_create(%" PRIu64 "): %s: %s", n->id,
                  bs_err_name(rc), errmsg);
    const char *bad = bs_raft_check(n->r);
    ck_assert_msg(bad == NULL, "node %" PRIu64 " invariant: %s", n->id, bad);
    n->up = true;
}

static struct fx_node *node_init(struct fx_net *net, uint64_t id)
{
    ck_assert(id >= 1 && id <= FX_MAX_ID);
    struct fx_node *n = &net->nodes[id];
    ck_assert_msg(!n->exists, "node %" PRIu64 " exists", id);
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->exists = true;
    n->ms = bs_raft_mem_storage_create();
    ck_assert_ptr_nonnull(n->ms);
    return n;
}

struct fx_net *fx_new(int voters, int learners,
                      const struct bs_raft_config *base)
{
    ck_assert(voters >= 1 && voters + learners <= FX_MAX_ID);
    struct fx_net *net = calloc(1, sizeof(*net));
    ck_assert_ptr_nonnull(net);
    net->canon = calloc(FX_MAX_LOG, sizeof(*net->canon));
    ck_assert_ptr_nonnull(net->canon);
    if (base)
        net->base = *base;
    else
        fx_config(&net->base);
    net->report_snaps = true;
    net->snap_on_demand = true;
    const char *tr = getenv("FX_TRACE");
    net->trace = tr && *tr && *tr != '0';

    struct bs_raft_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    snap.meta.index = 1;
    snap.meta.term = 1;
    for (int i = 1; i <= voters; i++)
        snap.meta.conf.voters[snap.meta.conf.n_voters++] = (uint64_t)i;
    for (int i = voters + 1; i <= voters + learners; i++)
        snap.meta.conf.learners[snap.meta.conf.n_learners++] = (uint64_t)i;
    struct bs_raft_hard_state hs = {.term = 1, .vote = 0, .commit = 1};

    for (int i = 1; i <= voters + learners; i++) {
        struct fx_node *n = node_init(net, (uint64_t)i);
        ck_assert_int_eq(bs_raft_mem_storage_apply_snapshot(n->ms, &snap), 0);
        bs_raft_mem_storage_set_hard_state(n->ms, &hs);
        bs_raft_mem_storage_set_conf(n->ms, &snap.meta.conf);
        n->applied_index = 1;
        n->conf = snap.meta.conf;
        node_start(net, n);
    }
    return net;
}

struct fx_net *fx_new_default(int voters)
{
    return fx_new(voters, 0, NULL);
}

void fx_add_empty(struct fx_net *net, uint64_t id)
{
    struct fx_node *n = node_init(net, id);
    node_start(net, n);
}

static void msgq_push(struct fx_msgq *q, const struct bs_raft_msg *m)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->v = realloc(q->v, q->cap * sizeof(*q->v));
        ck_assert_ptr_nonnull(q->v);
    }
    ck_assert_int_eq(bs_raft_msg_copy(&q->v[q->n], m), 0);
    q->n++;
}

void fx_clear_queue(struct fx_net *net)
{
    for (size_t i = 0; i < net->q.n; i++)
        bs_raft_msg_free(&net->q.v[i]);
    net->q.n = 0;
}

void fx_free(struct fx_net *net)
{
    if (!net)
        return;
    fx_clear_queue(net);
    free(net->q.v);
    for (int i = 1; i <= FX_MAX_ID; i++) {
        struct fx_node *n = &net->nodes[i];
        if (!n->exists)
            continue;
        bs_raft_destroy(n->up ? n->r : NULL);
        bs_raft_mem_storage_destroy(n->ms);
        bs_raft_entry_vec_free(&n->applied);
        free(n->last_snap.data);
    }
    free(net->canon);
    free(net);
}

void fx_crash(struct fx_net *net, uint64_t id)
{
    struct fx_node *n = fx_node(net, id);
    ck_assert(n->up);
    bs_raft_destroy(n->r);
    n->r = NULL;
    n->up = false;
}

void fx_restart(struct fx_net *net, uint64_t id)
{
    struct fx_node *n = fx_node(net, id);
    if (n->up)
        fx_crash(net, id);
    node_start(net, n);
}

void fx_preload(struct fx_net *net, uint64_t id, const uint64_t *terms,
                size_t n, uint64_t hs_term, uint64_t commit)
{
    struct fx_node *nd = fx_node(net, id);
    if (nd->up)
        fx_crash(net, id);
    struct bs_raft_storage st = bs_raft_mem_storage_iface(nd->ms);
    uint64_t last = st.ops->last_index(st.ctx);
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        struct bs_raft_entry e;
        memset(&e, 0, sizeof(e));
        e.index = last + 1 + i;
        e.term = terms[i];
        e.type = BS_RAFT_ENTRY_NORMAL;
        e.len = (uint32_t)snprintf(buf, sizeof(buf), "p%" PRIu64, e.index);
        e.data = (uint8_t *)buf;
        ck_assert_int_eq(bs_raft_mem_storage_append(nd->ms, &e, 1), 0);
    }
    struct bs_raft_hard_state hs = {
        .term = hs_term, .vote = 0, .commit = commit};
    bs_raft_mem_storage_set_hard_state(nd->ms, &hs);
    node_start(net, nd);
}

static void check_node(struct fx_net *net, struct fx_node *n)
{
    const char *bad = bs_raft_check(n->r);
    if (bad) {
        fx_dump(net, "invariant broken");
        ck_abort_msg("node %" PRIu64 " invariant: %s", n->id, bad);
    }
    if (bs_raft_role(n->r) == BS_RAFT_LEADER) {
        uint64_t t = bs_raft_term(n->r);
        if (t < FX_MAX_TERM) {
            uint64_t *l = &net->leader_of_term[t];
            ck_assert_msg(*l == 0 || *l == n->id,
                          "election safety: %" PRIu64 " and %" PRIu64
                          " both leaders of term %" PRIu64,
                          *l, n->id, t);
            *l = n->id;
        }
    }
}

static void check_canon(struct fx_net *net, struct fx_node *n,
                        const struct bs_raft_entry *e)
{
    if (e->index >= FX_MAX_LOG)
        return;
    struct fx_canon *c = &net->canon[e->index];
    uint64_t h = fnv(e->data, e->len);
    if (!c->set) {
        c->set = true;
        c->term = e->term;
        c->type = e->type;
        c->len = e->len;
        c->hash = h;
        return;
    }
    ck_assert_msg(c->term == e->term && c->type == e->type &&
                      c->len == e->len && c->hash == h,
                  "state machine safety: node %" PRIu64
                  " applied a different entry at index %" PRIu64
                  " (term %" PRIu64 " vs %" PRIu64 ")",
                  n->id, e->index, e->term, c->term);
}

static void conf_hist_push(struct fx_node *n,
                           const struct bs_raft_conf_state *cs)
{
    n->conf = *cs;
    if (n->n_conf_hist < FX_MAX_CONF_HIST)
        n->conf_hist[n->n_conf_hist++] = *cs;
}

bool fx_ready_cycle(struct fx_net *net, uint64_t id)
{
    struct fx_node *n = fx_node(net, id);
    if (!n->up || !bs_raft_has_ready(n->r))
        return false;
    struct bs_raft_ready rd;
    memset(&rd, 0, sizeof(rd));
    bs_raft_ready(n->r, &rd);
    if (net->on_ready)
        net->on_ready(net->ready_arg, id, &rd);

    /* 1. Persist: snapshot, entries, hard state. */
    if (rd.has_snapshot) {
        int rc = bs_raft_mem_storage_apply_snapshot(n->ms, &rd.snapshot);
        ck_assert_msg(rc == 0, "node %" PRIu64 " apply_snapshot: %s", id,
                      bs_err_name(rc));
        bs_raft_mem_storage_set_conf(n->ms, &rd.snapshot.meta.conf);
        ck_assert_msg(rd.snapshot.meta.index >= n->applied_index,
                      "node %" PRIu64 " snapshot %" PRIu64
                      " below applied %" PRIu64,
                      id, rd.snapshot.meta.index, n->applied_index);
        n->applied_index = rd.snapshot.meta.index;
        n->snap_index = rd.snapshot.meta.index;
        n->n_snaps_installed++;
        free(n->last_snap.data);
        n->last_snap = rd.snapshot;
        n->last_snap.data = NULL;
        if (rd.snapshot.len) {
            n->last_snap.data = malloc(rd.snapshot.len);
            ck_assert_ptr_nonnull(n->last_snap.data);
            memcpy(n->last_snap.data, rd.snapshot.data, rd.snapshot.len);
        }
        conf_hist_push(n, &rd.snapshot.meta.conf);
    }
    if (rd.n_entries) {
        for (size_t i = 1; i < rd.n_entries; i++)
            ck_assert_uint_eq(rd.entries[i].index, rd.entries[i - 1].index + 1);
        int rc = bs_raft_mem_storage_append(n->ms, rd.entries, rd.n_entries);
        ck_assert_msg(rc == 0, "node %" PRIu64 " append: %s", id,
                      bs_err_name(rc));
    }
    if (rd.has_hard_state)
        bs_raft_mem_storage_set_hard_state(n->ms, &rd.hard_state);

    /* 2. Send. */
    for (size_t i = 0; i < rd.n_msgs; i++) {
        const struct bs_raft_msg *m = &rd.msgs[i];
        ck_assert_msg(m->from == id,
                      "node %" PRIu64 " sent a message from %" PRIu64, id,
                      m->from);
        ck_assert(m->type < BS_RAFT_MSG__COUNT);
        ck_assert_msg(m->type >= BS_RAFT_MSG_PROP,
                      "local message %s in a ready",
                      bs_raft_msg_type_name(m->type));
        net->sent[m->type]++;
        msgq_push(&net->q, m);
    }

    /* 3. Apply committed entries and record read states. */
    for (size_t i = 0; i < rd.n_committed; i++) {
        const struct bs_raft_entry *e = &rd.committed[i];
        ck_assert_msg(e->index == n->applied_index + 1,
                      "node %" PRIu64 " applies %" PRIu64 " after %" PRIu64, id,
                      e->index, n->applied_index);
        check_canon(net, n, e);
        if (e->type == BS_RAFT_ENTRY_CONF_CHANGE) {
            struct bs_raft_conf_change cc;
            int rc = bs_raft_cc_decode(e->data, e->len, &cc);
            ck_assert_msg(rc == 0,
                          "node %" PRIu64 " committed a corrupt conf"
                          " change at %" PRIu64,
                          id, e->index);
            struct bs_raft_conf_state cs;
            memset(&cs, 0, sizeof(cs));
            rc = bs_raft_apply_conf_change(n->r, &cc, &cs);
            if (rc == 0) {
                n->n_cc_applied++;
                conf_hist_push(n, &cs);
                bs_raft_mem_storage_set_conf(n->ms, &cs);
            } else {
                ck_assert_int_eq(rc, BS_EINVAL);
                n->n_cc_rejected++;
            }
        }
        ck_assert_int_eq(bs_raft_entry_vec_push(&n->applied, e), 0);
        n->applied_index = e->index;
    }
    for (size_t i = 0; i < rd.n_read_states; i++) {
        ck_assert(n->n_reads < FX_MAX_READS);
        n->reads[n->n_reads++] = rd.read_states[i];
    }

    bs_raft_advance(n->r, &rd);
    check_node(net, n);
    return true;
}

void fx_collect(struct fx_net *net)
{
    for (int round = 0;; round++) {
        ck_assert_msg(round < 1000, "readies never stop");
        bool any = false;
        for (uint64_t id = 1; id <= FX_MAX_ID; id++)
            if (net->nodes[id].exists && fx_ready_cycle(net, id))
                any = true;
        if (!any)
            return;
    }
}

void fx_step(struct fx_net *net, const struct bs_raft_msg *m)
{
    struct fx_node *n = fx_node(net, m->to);
    ck_assert(n->up);
    if (net->trace)
        fprintf(stderr,
                "  %" PRIu64 "->%" PRIu64 " %s term %" PRIu64 " lt %" PRIu64
                " idx %" PRIu64 " commit %" PRIu64 " n %zu%s ctx %" PRIu64 "\n",
                m->from, m->to, bs_raft_msg_type_name(m->type), m->term,
                m->log_term, m->index, m->commit, m->n_entries,
                m->reject ? " REJECT" : "", m->ctx);
    int rc = bs_raft_step(n->r, m);
    ck_assert_msg(rc == 0 || rc == BS_EDROPPED, "node %" PRIu64 " step %s: %s",
                  m->to, bs_raft_msg_type_name(m->type), bs_err_name(rc));
    check_node(net, n);
}

struct bs_raft_msg fx_msg(int type, uint64_t from, uint64_t to, uint64_t term)
{
    struct bs_raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = (uint8_t)type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

const struct bs_raft_msg *fx_ask(struct fx_net *net,
                                 const struct bs_raft_msg *m, int resp)
{
    fx_collect(net);
    fx_clear_queue(net);
    fx_step(net, m);
    fx_collect(net);
    return fx_queued_msg(net, resp, m->to, m->from, 0);
}

static int verdict(struct fx_net *net, const struct bs_raft_msg *m)
{
    if (m->to < 1 || m->to > FX_MAX_ID || !net->nodes[m->to].exists ||
        !net->nodes[m->to].up)
        return FX_DROP;
    int v = FX_PASS;
    if (m->from >= 1 && m->from <= FX_MAX_ID)
        v = net->link[m->from][m->to];
    if (v == FX_PASS && net->filter)
        v = net->filter(net->filter_arg, m);
    return v;
}

static void report_snap(struct fx_net *net, const struct bs_raft_msg *m,
                        bool failed)
{
    if (m->type != BS_RAFT_MSG_SNAP || !net->report_snaps || m->from < 1 ||
        m->from > FX_MAX_ID)
        return;
    struct fx_node *n = &net->nodes[m->from];
    if (!n->exists || !n->up)
        return;
    bs_raft_report_snapshot(n->r, m->to, failed);
    check_node(net, n);
}

size_t fx_deliver(struct fx_net *net)
{
    size_t total = 0;
    for (int round = 0;; round++) {
        ck_assert_msg(round < 100000, "messages never stop");
        fx_collect(net);
        struct fx_msgq batch = net->q;
        memset(&net->q, 0, sizeof(net->q));
        size_t stepped = 0;
        for (size_t i = 0; i < batch.n; i++) {
            struct bs_raft_msg *m = &batch.v[i];
            int v = verdict(net, m);
            if (v == FX_HOLD) {
                msgq_push(&net->q, m);
            } else if (v == FX_DROP) {
                net->dropped[m->type]++;
                report_snap(net, m, true);
            } else {
                net->delivered[m->type]++;
                if (m->reject)
                    net->rejects[m->type]++;
                fx_step(net, m);
                report_snap(net, m, false);
                stepped++;
            }
            bs_raft_msg_free(m);
        }
        free(batch.v);
        total += stepped;
        if (stepped == 0)
            return total; /* only held messages are left */
    }
}

size_t fx_queued(struct fx_net *net, int type, uint64_t from, uint64_t to)
{
    size_t k = 0;
    for (size_t i = 0; i < net->q.n; i++) {
        const struct bs_raft_msg *m = &net->q.v[i];
        if ((type < 0 || m->type == type) && (!from || m->from == from) &&
            (!to || m->to == to))
            k++;
    }
    return k;
}

const struct bs_raft_msg *fx_queued_msg(struct fx_net *net, int type,
                                        uint64_t from, uint64_t to, size_t i)
{
    for (size_t j = 0; j < net->q.n; j++) {
        const struct bs_raft_msg *m = &net->q.v[j];
        if ((type < 0 || m->type == type) && (!from || m->from == from) &&
            (!to || m->to == to)) {
            if (i == 0)
                return m;
            i--;
        }
    }
    return NULL;
}

void fx_tick(struct fx_net *net, uint64_t id)
{
    struct bs_raft *r = fx_r(net, id);
    bs_raft_tick(r);
    check_node(net, fx_node(net, id));
}

void fx_tick_all(struct fx_net *net)
{
    for (uint64_t id = 1; id <= FX_MAX_ID; id++)
        if (net->nodes[id].exists && net->nodes[id].up)
            fx_tick(net, id);
}

void fx_tick_deliver(struct fx_net *net, int n)
{
    for (int i = 0; i < n; i++) {
        fx_tick_all(net);
        fx_deliver(net);
    }
}

void fx_link(struct fx_net *net, uint64_t from, uint64_t to, int v)
{
    ck_assert(from >= 1 && from <= FX_MAX_ID && to >= 1 && to <= FX_MAX_ID);
    net->link[from][to] = (uint8_t)v;
}

void fx_cut(struct fx_net *net, uint64_t a, uint64_t b)
{
    fx_link(net, a, b, FX_DROP);
    fx_link(net, b, a, FX_DROP);
}

void fx_isolate(struct fx_net *net, uint64_t id)
{
    for (uint64_t o = 1; o <= FX_MAX_ID; o++)
        if (o != id)
            fx_cut(net, id, o);
}

void fx_heal(struct fx_net *net)
{
    memset(net->link, 0, sizeof(net->link));
}

void fx_set_filter(struct fx_net *net, fx_filter_fn f, void *arg)
{
    net->filter = f;
    net->filter_arg = arg;
}

uint64_t fx_leader(struct fx_net *net)
{
    uint64_t best = 0, best_term = 0;
    for (uint64_t id = 1; id <= FX_MAX_ID; id++) {
        struct fx_node *n = &net->nodes[id];
        if (!n->exists || !n->up || bs_raft_role(n->r) != BS_RAFT_LEADER)
            continue;
        if (bs_raft_term(n->r) >= best_term) {
            best = id;
            best_term = bs_raft_term(n->r);
        }
    }
    return best;
}

void fx_elect(struct fx_net *net, uint64_t id)
{
    bs_raft_campaign(fx_r(net, id));
    fx_deliver(net);
    if (bs_raft_role(fx_r(net, id)) != BS_RAFT_LEADER) {
        fx_dump(net, "fx_elect");
        ck_abort_msg("node %" PRIu64 " was not elected", id);
    }
}

int fx_propose(struct fx_net *net, uint64_t id, const char *s)
{
    return bs_raft_propose(fx_r(net, id), (const uint8_t *)s, strlen(s));
}

int fx_propose_cc1(struct fx_net *net, uint64_t id, int transition, int type,
                   uint64_t node)
{
    struct bs_raft_conf_change cc;
    memset(&cc, 0, sizeof(cc));
    cc.transition = (uint8_t)transition;
    cc.n_changes = 1;
    cc.changes[0].type = (uint8_t)type;
    cc.changes[0].node_id = node;
    return bs_raft_propose_conf_change(fx_r(net, id), &cc);
}

size_t fx_applied_data(struct fx_net *net, uint64_t id)
{
    struct fx_node *n = fx_node(net, id);
    size_t k = 0;
    for (size_t i = 0; i < n->applied.n; i++)
        if (n->applied.v[i].type == BS_RAFT_ENTRY_NORMAL &&
            n->applied.v[i].len > 0)
            k++;
    return k;
}

bool fx_applied_has(struct fx_net *net, uint64_t id, const char *s)
{
    struct fx_node *n = fx_node(net, id);
    size_t len = strlen(s);
    for (size_t i = 0; i < n->applied.n; i++) {
        const struct bs_raft_entry *e = &n->applied.v[i];
        if (e->type == BS_RAFT_ENTRY_NORMAL && e->len == len &&
            memcmp(e->data, s, len) == 0)
            return true;
    }
    return false;
}

bool fx_read_of(struct fx_net *net, uint64_t id, uint64_t ctx, uint64_t *index)
{
    struct fx_node *n = fx_node(net, id);
    for (size_t i = 0; i < n->n_reads; i++)
        if (n->reads[i].ctx == ctx) {
            if (index)
                *index = n->reads[i].index;
            return true;
        }
    return false;
}

void fx_conf_set(struct bs_raft_conf_state *cs, const uint64_t *voters,
                 size_t nv, const uint64_t *learners, size_t nl)
{
    memset(cs, 0, sizeof(*cs));
    for (size_t i = 0; i < nv; i++)
        cs->voters[cs->n_voters++] = voters[i];
    for (size_t i = 0; i < nl; i++)
        cs->learners[cs->n_learners++] = learners[i];
}

static bool in_set(const uint64_t *v, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

bool fx_conf_has_voter(const struct bs_raft_conf_state *cs, uint64_t id)
{
    return in_set(cs->voters, cs->n_voters, id);
}

bool fx_conf_has_learner(const struct bs_raft_conf_state *cs, uint64_t id)
{
    return in_set(cs->learners, cs->n_learners, id);
}

struct bs_raft_progress_info fx_progress(struct fx_net *net, uint64_t leader,
                                         uint64_t peer)
{
    struct bs_raft_progress_info pi[FX_MAX_ID * 2];
    size_t n = bs_raft_progress(fx_r(net, leader), pi, FX_MAX_ID * 2);
    for (size_t i = 0; i < n && i < FX_MAX_ID * 2; i++)
        if (pi[i].id == peer)
            return pi[i];
    ck_abort_msg("leader %" PRIu64 " has no progress for %" PRIu64, leader,
                 peer);
    struct bs_raft_progress_info none;
    memset(&none, 0, sizeof(none));
    return none;
}

bool fx_logs_match(struct fx_net *net, uint64_t a, uint64_t b, uint64_t from,
                   uint64_t to)
{
    for (uint64_t i = from; i <= to; i++) {
        uint64_t ta = 0, tb = 0;
        if (bs_raft_log_term(fx_r(net, a), i, &ta) != 0 ||
            bs_raft_log_term(fx_r(net, b), i, &tb) != 0 || ta != tb)
            return false;
    }
    return true;
}

void fx_dump(struct fx_net *net, const char *why)
{
    fprintf(stderr, "--- cluster (%s)\n", why);
    for (uint64_t id = 1; id <= FX_MAX_ID; id++) {
        struct fx_node *n = &net->nodes[id];
        if (!n->exists)
            continue;
        if (!n->up) {
            fprintf(stderr, "  %" PRIu64 ": down\n", id);
            continue;
        }
        fprintf(stderr,
                "  %" PRIu64 ": %s term %" PRIu64 " vote %" PRIu64
                " lead %" PRIu64 " commit %" PRIu64 " applied %" PRIu64
                " last %" PRIu64 "\n",
                id, bs_raft_role_name(bs_raft_role(n->r)), bs_raft_term(n->r),
                bs_raft_vote(n->r), bs_raft_lead(n->r), bs_raft_committed(n->r),
                n->applied_index, bs_raft_last_index(n->r));
    }
    fprintf(stderr, "  queue: %zu messages\n", net->q.n);
}

int fx_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
