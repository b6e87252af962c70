/*
 * store_fixture.c - the in-process cluster of store_fixture.h: nodes over
 * real RocksDB, a FIFO virtual network with cuttable links, a virtual
 * clock, and request helpers over the shard state machine.
 */
#define _GNU_SOURCE
#include "store_fixture.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- network */

static uint64_t tr_now(void *ctx)
{
    struct sf_node *n = ctx;
    return n->c->now_ms;
}

static int tr_send(void *ctx, uint64_t to_node,
                   const struct bs_eng_envelope *envs, size_t n)
{
    struct sf_node *from = ctx;
    struct sf_cluster *c = from->c;
    if (to_node < 1 || to_node > (uint64_t)c->n_nodes)
        return BS_EUNREACHABLE;
    int to = (int)to_node;
    if (!c->nodes[to].up || c->cut[from->id][to]) {
        c->batches_lost++;
        return 0; /* lost silently, as on a real network */
    }
    if (c->n_net == c->cap_net) {
        size_t cap = c->cap_net ? c->cap_net * 2 : 64;
        struct sf_packet *v = realloc(c->net, cap * sizeof(*v));
        ck_assert_ptr_nonnull(v);
        c->net = v;
        c->cap_net = cap;
    }
    struct sf_packet *p = &c->net[c->n_net++];
    p->from = from->id;
    p->to = to;
    p->n = n;
    p->envs = calloc(n ? n : 1, sizeof(*p->envs));
    ck_assert_ptr_nonnull(p->envs);
    for (size_t i = 0; i < n; i++) {
        p->envs[i] = envs[i];
        ck_assert_int_eq(bs_raft_msg_copy(&p->envs[i].msg, &envs[i].msg), 0);
    }
    return 0;
}

static const struct bs_eng_transport_ops tr_ops = {
    .send = tr_send,
    .now_ms = tr_now,
};

static void free_packet(struct sf_packet *p)
{
    for (size_t i = 0; i < p->n; i++)
        bs_raft_msg_free(&p->envs[i].msg);
    free(p->envs);
    p->envs = NULL;
    p->n = 0;
}

/* -------------------------------------------------------------- nodes */

static char g_root[200] = "/tmp";

void sf_set_root(const char *dir)
{
    snprintf(g_root, sizeof(g_root), "%s", dir);
}

void sf_init(struct sf_cluster *c, int n_nodes, const char *what)
{
    ck_assert(n_nodes >= 1 && n_nodes <= SF_MAX_NODES);
    memset(c, 0, sizeof(*c));
    char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "%s/basalt-store-%s-XXXXXX", g_root, what);
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    c->base = strdup(d);
    c->n_nodes = n_nodes;
    c->now_ms = 1000000; /* far from 0: "never heard" must not look old */
    bs_shard_limits_default(&c->limits);
    bs_eng_store_config_default(&c->cfg);
    c->cfg.tick_ms = 100;
    c->cfg.election_tick = 10;
    c->cfg.heartbeat_tick = 1;
    c->cfg.hibernate_ticks = 0;
    c->cfg.request_timeout_ms = 3000;
    c->cfg.seed = 7;
    for (int i = 1; i <= n_nodes; i++) {
        struct sf_node *n = &c->nodes[i];
        n->c = c;
        n->id = i;
        snprintf(n->dir, sizeof(n->dir), "%s/n%d", c->base, i);
        snprintf(n->snap_dir, sizeof(n->snap_dir), "%s/snap", n->dir);
    }
}

void sf_open(struct sf_cluster *c, int i)
{
    struct sf_node *n = &c->nodes[i];
    ck_assert(!n->up);
    mkdir(n->dir, 0755);
    struct bs_eng_db_options o;
    bs_eng_db_options_default(&o);
    o.sync = c->db_sync;
    o.block_cache_bytes = 1u << 20;
    o.write_buffer_bytes = 1u << 20;
    o.max_background_jobs = 1;
    char em[BS_ENG_ERRMSG_SIZE] = "";
    int rc = bs_eng_db_open(n->dir, &o, &n->db, em);
    ck_assert_msg(rc == 0, "db open node %d: %s (%s)", i, bs_err_name(rc), em);
    struct bs_eng_store_config sc = c->cfg;
    sc.node_id = (uint64_t)i;
    sc.db = n->db;
    sc.snap_dir = n->snap_dir;
    sc.transport.ops = &tr_ops;
    sc.transport.ctx = n;
    bs_shard_sm_factory(&sc.sm_factory, &c->limits);
    sc.seed = c->cfg.seed * 31 + (uint64_t)i;
    rc = bs_eng_store_open(&sc, &n->store, em);
    ck_assert_msg(rc == 0, "store open node %d: %s (%s)", i, bs_err_name(rc),
                  em);
    n->up = true;
}

void sf_open_all(struct sf_cluster *c)
{
    for (int i = 1; i <= c->n_nodes; i++)
        sf_open(c, i);
}

void sf_close(struct sf_cluster *c, int i)
{
    struct sf_node *n = &c->nodes[i];
    if (!n->up)
        return;
    n->up = false;
    bs_eng_store_close(n->store);
    n->store = NULL;
    bs_eng_db_close(n->db);
    n->db = NULL;
    size_t w = 0;
    for (size_t k = 0; k < c->n_net; k++) {
        if (c->net[k].to == i || c->net[k].from == i)
            free_packet(&c->net[k]);
        else
            c->net[w++] = c->net[k];
    }
    c->n_net = w;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void sf_destroy(struct sf_cluster *c)
{
    for (int i = 1; i <= c->n_nodes; i++)
        sf_close(c, i);
    for (size_t k = 0; k < c->n_net; k++)
        free_packet(&c->net[k]);
    free(c->net);
    c->net = NULL;
    c->n_net = c->cap_net = 0;
    if (c->base)
        nftw(c->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(c->base);
    c->base = NULL;
}

void sf_bootstrap(struct sf_cluster *c, uint64_t shard, const char *start,
                  const char *end, const int *nodes, int n)
{
    struct bs_shard_desc d;
    memset(&d, 0, sizeof(d));
    d.id = shard;
    d.start = (uint8_t *)start;
    d.start_len = strlen(start);
    d.end = (uint8_t *)end;
    d.end_len = strlen(end);
    d.epoch.conf_ver = 1;
    d.epoch.version = 1;
    for (int k = 0; k < n; k++) {
        d.replicas[k].id = BS_ENG_REPLICA_ID(nodes[k], shard);
        d.replicas[k].node_id = (uint64_t)nodes[k];
    }
    d.n_replicas = (uint32_t)n;
    struct bs_raft_conf_state cs;
    bs_shard_desc_conf(&d, &cs);
    for (int k = 0; k < n; k++) {
        struct sf_node *nd = &c->nodes[nodes[k]];
        ck_assert(nd->up);
        ck_assert_int_eq(bs_shard_bootstrap(nd->db, &d, &cs, 1, 1), 0);
        ck_assert_int_eq(
            bs_eng_store_bootstrap_group(
                nd->store, shard, BS_ENG_REPLICA_ID(nodes[k], shard), &cs),
            0);
    }
}

/* ---------------------------------------------------------- the clock */

static void process_all(struct sf_cluster *c)
{
    for (int i = 1; i <= c->n_nodes; i++) {
        struct sf_node *n = &c->nodes[i];
        if (!n->up)
            continue;
        int rc = bs_eng_store_process(n->store);
        ck_assert_msg(rc == 0, "node %d: store process failed: %s", i,
                      bs_err_name(rc));
    }
}

void sf_pump(struct sf_cluster *c)
{
    for (int iter = 0; iter < 100000; iter++) {
        process_all(c);
        if (c->n_net == 0)
            return;
        /* Deliver what is queued now; what this produces waits for the
         * next pass (FIFO). */
        struct sf_packet *batch = c->net;
        size_t n = c->n_net;
        c->net = NULL;
        c->n_net = c->cap_net = 0;
        for (size_t k = 0; k < n; k++) {
            struct sf_packet *p = &batch[k];
            struct sf_node *to = &c->nodes[p->to];
            if (to->up && !c->cut[p->from][p->to] && c->nodes[p->from].up) {
                bs_eng_store_receive(to->store, (uint64_t)p->from, p->envs,
                                     p->n);
                c->batches_delivered++;
            } else {
                c->batches_lost++;
            }
            free_packet(p);
        }
        free(batch);
    }
    ck_abort_msg("network never went quiet");
}

void sf_step(struct sf_cluster *c)
{
    c->now_ms += SF_STEP_MS;
    if (c->now_ms % (uint64_t)c->cfg.tick_ms == 0)
        for (int i = 1; i <= c->n_nodes; i++)
            if (c->nodes[i].up)
                bs_eng_store_tick(c->nodes[i].store);
    sf_pump(c);
}

void sf_run(struct sf_cluster *c, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += SF_STEP_MS)
        sf_step(c);
}

void sf_isolate(struct sf_cluster *c, int i, bool cut)
{
    for (int k = 1; k <= c->n_nodes; k++) {
        if (k == i)
            continue;
        c->cut[i][k] = cut;
        c->cut[k][i] = cut;
    }
}

/* ------------------------------------------------------------ queries */

int sf_leader(struct sf_cluster *c, uint64_t shard)
{
    int best = 0;
    uint64_t term = 0;
    for (int i = 1; i <= c->n_nodes; i++) {
        struct sf_node *n = &c->nodes[i];
        struct bs_eng_group_info gi;
        if (!n->up || bs_eng_store_group(n->store, shard, &gi) != 0)
            continue;
        if (gi.role == BS_RAFT_LEADER && gi.term >= term) {
            best = i;
            term = gi.term;
        }
    }
    return best;
}

/* A leader is usable if it is not cut off from every other open node. */
static bool reachable(struct sf_cluster *c, int i)
{
    int others = 0, linked = 0;
    for (int k = 1; k <= c->n_nodes; k++) {
        if (k == i || !c->nodes[k].up)
            continue;
        others++;
        linked += !c->cut[i][k] && !c->cut[k][i];
    }
    return others == 0 || linked > 0;
}

int sf_wait_leader(struct sf_cluster *c, uint64_t shard, uint64_t max_ms)
{
    for (uint64_t t = 0;; t += SF_STEP_MS) {
        int l = sf_leader(c, shard);
        if (l && reachable(c, l))
            return l;
        if (t >= max_ms)
            return 0;
        sf_step(c);
    }
}

bool sf_wait_req(struct sf_cluster *c, struct sf_req *r, uint64_t max_ms)
{
    for (uint64_t t = 0; r->calls == 0; t += SF_STEP_MS) {
        if (t >= max_ms)
            return false;
        sf_step(c);
    }
    return true;
}

void sf_cb(void *ctx, int status, const void *resp, size_t len)
{
    struct sf_req *r = ctx;
    r->calls++;
    r->status = status;
    free(r->resp);
    r->resp = NULL;
    r->len = 0;
    if (resp && len) {
        r->resp = malloc(len);
        ck_assert_ptr_nonnull(r->resp);
        memcpy(r->resp, resp, len);
        r->len = len;
    }
}

void sf_req_free(struct sf_req *r)
{
    free(r->resp);
    memset(r, 0, sizeof(*r));
}

struct bs_shard *sf_shard(struct sf_cluster *c, int i, uint64_t shard)
{
    ck_assert(c->nodes[i].up);
    struct bs_shard *sh =
        bs_shard_sm_shard(bs_eng_store_sm(c->nodes[i].store, shard));
    ck_assert_msg(sh != NULL, "node %d has no state for shard %llu", i,
                  (unsigned long long)shard);
    return sh;
}

struct bs_eng_group_info sf_info(struct sf_cluster *c, int i, uint64_t shard)
{
    struct bs_eng_group_info gi;
    memset(&gi, 0, sizeof(gi));
    ck_assert(c->nodes[i].up);
    int rc = bs_eng_store_group(c->nodes[i].store, shard, &gi);
    ck_assert_msg(rc == 0, "node %d: no group %llu (%s)", i,
                  (unsigned long long)shard, bs_err_name(rc));
    return gi;
}

/* ----------------------------------------------------------- requests */

uint8_t *sf_put_cmd(struct sf_cluster *c, int i, uint64_t shard,
                    const struct bs_shard_epoch *epoch, const char *key,
                    const char *val, size_t *len)
{
    struct bs_shard_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_SHARD_CMD_PUT;
    cmd.epoch = epoch ? *epoch : sf_shard(c, i, shard)->desc.epoch;
    cmd.u.put.key = (const uint8_t *)key;
    cmd.u.put.key_len = strlen(key);
    cmd.u.put.value = (const uint8_t *)val;
    cmd.u.put.value_len = strlen(val);
    uint8_t *buf = NULL;
    ck_assert_int_eq(bs_shard_cmd_encode(&cmd, &buf, len), 0);
    return buf;
}

int sf_propose_put(struct sf_cluster *c, int i, uint64_t shard, const char *key,
                   const char *val, struct sf_req *r)
{
    size_t len = 0;
    uint8_t *buf = sf_put_cmd(c, i, shard, NULL, key, val, &len);
    int rc = bs_eng_store_propose(c->nodes[i].store, shard, buf, len, sf_cb, r);
    free(buf);
    return rc;
}

int sf_put(struct sf_cluster *c, uint64_t shard, const char *key,
           const char *val)
{
    int l = sf_wait_leader(c, shard, 5000);
    ck_assert_msg(l != 0, "shard %llu: no leader", (unsigned long long)shard);
    struct sf_req r = {0};
    int rc = sf_propose_put(c, l, shard, key, val, &r);
    if (rc != 0)
        return rc;
    if (!sf_wait_req(c, &r, 5000))
        rc = BS_ETIMEDOUT;
    else
        rc = r.status;
    ck_assert_int_le(r.calls, 1);
    sf_req_free(&r);
    return rc;
}

/* Range over node i's replica; resp filled (caller frees). */
static void local_range(struct sf_cluster *c, int i, uint64_t shard,
                        const uint8_t *key, size_t klen, const uint8_t *end,
                        size_t elen, struct bs_shard_resp *rs)
{
    struct bs_shard *sh = sf_shard(c, i, shard);
    struct bs_shard_range_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.key = key;
    rq.key_len = klen;
    rq.range_end = end;
    rq.range_end_len = elen;
    int rc = bs_shard_range(sh, c->nodes[i].db, NULL, &sh->desc.epoch, &rq, rs);
    ck_assert_msg(rc == 0, "node %d shard %llu: range: %s (%s)", i,
                  (unsigned long long)shard, bs_err_name(rc), rs->errmsg);
}

char *sf_get(struct sf_cluster *c, int i, uint64_t shard, const char *key)
{
    struct bs_shard_resp rs;
    local_range(c, i, shard, (const uint8_t *)key, strlen(key), NULL, 0, &rs);
    char *v = NULL;
    if (rs.op.n_kvs > 0) {
        v = strndup((const char *)rs.op.kvs[0].value, rs.op.kvs[0].value_len);
        ck_assert_ptr_nonnull(v);
    }
    bs_shard_resp_free(&rs);
    return v;
}

char *sf_dump(struct sf_cluster *c, int i, uint64_t shard)
{
    struct bs_shard *sh = sf_shard(c, i, shard);
    static const uint8_t zero[1] = {0};
    const uint8_t *key = sh->desc.start_len ? sh->desc.start : zero;
    size_t klen = sh->desc.start_len ? sh->desc.start_len : 1;
    const uint8_t *end = sh->desc.end_len ? sh->desc.end : zero;
    size_t elen = sh->desc.end_len ? sh->desc.end_len : 1;
    /* The descriptor's keys live in sh: copy them before the call. */
    uint8_t kb[256], eb[256];
    ck_assert(klen <= sizeof(kb) && elen <= sizeof(eb));
    memcpy(kb, key, klen);
    memcpy(eb, end, elen);
    struct bs_shard_resp rs;
    local_range(c, i, shard, kb, klen, eb, elen, &rs);
    char *out = NULL;
    size_t cap = 0;
    FILE *f = open_memstream(&out, &cap);
    ck_assert_ptr_nonnull(f);
    fprintf(f, "rev=%lld|", (long long)rs.revision);
    for (size_t k = 0; k < rs.op.n_kvs; k++) {
        const struct bs_shard_kv *kv = &rs.op.kvs[k];
        fprintf(f, "%.*s=%.*s@%lld/%lld;", (int)kv->key_len,
                (const char *)kv->key, (int)kv->value_len,
                (const char *)kv->value, (long long)kv->mod_revision,
                (long long)kv->version);
    }
    fclose(f);
    bs_shard_resp_free(&rs);
    return out;
}
