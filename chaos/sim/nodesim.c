/*
 * nodesim.c - the deterministic simulator over whole nodes (issue 3):
 * several stores (engine/store.c) in one process, each over a real RocksDB
 * in its own directory, the shard state machine (shard/) as every group's
 * state machine, a virtual clock and a faulty virtual network between
 * them.
 *
 * Each run (one seed) bootstraps NODES nodes holding SHARDS shards on three
 * replicas each, then runs steps of 10 virtual ms. Clients put, delete,
 * compare-and-set (Txn) and read (ReadIndex, then the local replica) keys
 * across the shards while the simulator partitions and heals links, drops
 * and delays messages, crashes and restarts nodes (the store and RocksDB
 * are closed and reopened from disk), splits shards, moves replicas (add
 * learner, promote, remove) and transfers leadership. At the end every
 * fault is healed and the history of every key is checked for
 * linearizability (a register per key, chaos/sim/lincheck.c), which also
 * catches lost acknowledged writes; then every replica of every shard must
 * hold exactly the same data.
 *
 * The cluster is bootstrapped through placement (shard 0, a Raft group of
 * its own): every node applies the same BOOTSTRAP command and creates its
 * replicas from the resulting state. Ids for splits and new replicas come
 * from placement's allocator; every split and replica change is reported
 * back to placement with committed commands by a reconciler (the sim
 * plays the node's reporting role here; in the cluster, heartbeats will).
 * At the end every replica of shard 0 must route every key to the shard
 * that really holds it, with the same range, epoch and replicas.
 *
 * Durability model: RocksDB is opened without fsync (a simulated crash is
 * a process crash: what reached the OS survives), which keeps runs fast.
 * Everything is driven by one PRNG seeded from the run's seed; a failing
 * run prints the seed and `bs_nodesim --seed S` replays it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "placement.h"
#include "shard.h"
#include "sim.h"

#define MAX_NODES 5
#define MAX_KEYS 24
#define MAX_CLIENTS 6
#define STEP_MS 10
#define TICK_MS 100

/* ------------------------------------------------------------- network */

struct packet {
    uint64_t at_ms;
    uint64_t seq; /* FIFO among equal times */
    int from;
    int to;
    struct bs_eng_envelope *envs; /* owned */
    size_t n;
};

struct sim;

struct node {
    int id; /* 1-based */
    struct sim *sim;
    bool up;
    char dir[300];
    char snap_dir[320];
    struct bs_eng_db *db;
    struct bs_eng_store *store;
};

struct op {
    bool active;
    int kind; /* 0 put, 1 delete, 2 cas, 3 read */
    int key;
    uint64_t value;    /* written value (put/cas) */
    uint64_t expect;   /* cas: expected value */
    uint64_t invoke;   /* history seq */
    uint64_t shard;
    int node;
    uint64_t deadline_ms;
    uint64_t gen;
};

struct hist_op {
    int key;
    struct bs_sim_lin_op op;
};

struct client {
    struct sim *sim;
    int id;
    struct op op;
    uint64_t gen;
};

struct sim {
    uint64_t seed;
    struct bs_sim_rng rng;
    uint64_t now_ms;
    uint64_t hseq;
    uint64_t pseq;
    int n_nodes;
    struct node nodes[MAX_NODES + 1];
    bool cut[MAX_NODES + 1][MAX_NODES + 1]; /* from -> to blocked */
    struct packet *net;
    size_t n_net;
    size_t cap_net;
    struct client clients[MAX_CLIENTS];
    struct hist_op *hist;
    size_t n_hist;
    size_t cap_hist;
    uint64_t next_value;
    uint64_t next_shard;       /* from placement's allocator (pool) */
    uint64_t end_shard;
    uint32_t next_replica_seq; /* likewise */
    uint32_t end_replica_seq;
    bool report_busy;
    uint64_t reports;
    bool lossless; /* no random drops (bootstrap: check the leader plan) */
    char base[200];
    bool verbose;
    /* totals */
    uint64_t acked;
    uint64_t indeterminate;
    uint64_t reads;
    uint64_t crashes;
    uint64_t splits;
    uint64_t moves;
    uint64_t transfers;
    uint64_t refused;
    char fail[512];
};

static struct sim *g_cur;

static uint64_t rnd(struct sim *s, uint64_t n)
{
    return bs_sim_rng_below(&s->rng, n);
}

static bool chance(struct sim *s, uint32_t ppm)
{
    return bs_sim_rng_chance(&s->rng, ppm);
}

/* Records the first failure of the run (later ones are consequences). */
static void failf(struct sim *s, const char *what, const char *detail)
{
    if (s->fail[0] == '\0')
        snprintf(s->fail, sizeof(s->fail), "%s%s", what, detail);
}

static uint64_t tr_now(void *ctx)
{
    struct node *n = ctx;
    return n->sim->now_ms;
}

static int tr_send(void *ctx, uint64_t to_node, const struct bs_eng_envelope *envs,
                   size_t n)
{
    struct node *from = ctx;
    struct sim *s = from->sim;
    int to = (int)to_node;
    if (to < 1 || to > s->n_nodes)
        return BS_EUNREACHABLE;
    if (!s->nodes[to].up || s->cut[from->id][to])
        return 0; /* lost silently, as on a real network */
    if (!s->lossless && chance(s, 20000))
        return 0; /* 2% of batches dropped */
    if (s->n_net == s->cap_net) {
        size_t cap = s->cap_net ? s->cap_net * 2 : 256;
        struct packet *v = realloc(s->net, cap * sizeof(*v));
        if (!v)
            return BS_ENOMEM;
        s->net = v;
        s->cap_net = cap;
    }
    struct packet *p = &s->net[s->n_net];
    p->envs = calloc(n ? n : 1, sizeof(*p->envs));
    if (!p->envs)
        return BS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        p->envs[i] = envs[i];
        if (bs_raft_msg_copy(&p->envs[i].msg, &envs[i].msg) != 0) {
            for (size_t k = 0; k < i; k++)
                bs_raft_msg_free(&p->envs[k].msg);
            free(p->envs);
            return BS_ENOMEM;
        }
    }
    p->n = n;
    p->from = from->id;
    p->to = to;
    p->at_ms = s->now_ms + 1 + rnd(s, 30);
    p->seq = ++s->pseq;
    s->n_net++;
    return 0;
}

static const struct bs_eng_transport_ops tr_ops = {
    .send = tr_send,
    .now_ms = tr_now,
};

static void free_packet(struct packet *p)
{
    for (size_t i = 0; i < p->n; i++)
        bs_raft_msg_free(&p->envs[i].msg);
    free(p->envs);
}

static void deliver_due(struct sim *s)
{
    for (;;) {
        size_t best = s->n_net;
        for (size_t i = 0; i < s->n_net; i++) {
            if (s->net[i].at_ms > s->now_ms)
                continue;
            if (best == s->n_net || s->net[i].at_ms < s->net[best].at_ms ||
                (s->net[i].at_ms == s->net[best].at_ms &&
                 s->net[i].seq < s->net[best].seq))
                best = i;
        }
        if (best == s->n_net)
            return;
        struct packet p = s->net[best];
        s->net[best] = s->net[--s->n_net];
        struct node *to = &s->nodes[p.to];
        if (to->up && !s->cut[p.from][p.to])
            bs_eng_store_receive(to->store, (uint64_t)p.from, p.envs, p.n);
        free_packet(&p);
    }
}

/* ----------------------------------------------------------------- nodes */

static struct bs_shard_limits g_limits;

static int node_open(struct sim *s, struct node *n)
{
    char em[256] = "";
    struct bs_eng_db_options o;
    bs_eng_db_options_default(&o);
    o.sync = false;
    o.block_cache_bytes = 1 << 20;
    o.write_buffer_bytes = 1 << 20;
    o.max_background_jobs = 1;
    int rc = bs_eng_db_open(n->dir, &o, &n->db, em);
    if (rc != 0) {
        failf(s, "db open failed: ", em);
        return rc;
    }
    struct bs_eng_store_config c;
    bs_eng_store_config_default(&c);
    c.node_id = (uint64_t)n->id;
    c.db = n->db;
    c.snap_dir = n->snap_dir;
    c.transport.ops = &tr_ops;
    c.transport.ctx = n;
    bs_pd_node_sm_factory(&c.sm_factory, &g_limits);
    c.seed = s->seed * 31 + (uint64_t)n->id;
    c.tick_ms = TICK_MS;
    c.hibernate_ticks = 20;
    c.log_max_entries = 200; /* compact often: exercise snapshots */
    c.request_timeout_ms = 3000;
    /* Odd seeds read through the leader lease, even ones through a
     * ReadIndex round. */
    c.read_only_option = (s->seed & 1) ? BS_RAFT_READ_LEASE_BASED
                                       : BS_RAFT_READ_SAFE;
    rc = bs_eng_store_open(&c, &n->store, em);
    if (rc != 0) {
        failf(s, "store open failed: ", em);
        bs_eng_db_close(n->db);
        n->db = NULL;
        return rc;
    }
    n->up = true;
    return 0;
}

static void node_crash(struct sim *s, struct node *n)
{
    (void)s;
    n->up = false;
    bs_eng_store_close(n->store); /* pending requests: BS_ESTOPPED */
    n->store = NULL;
    bs_eng_db_close(n->db);
    n->db = NULL;
}

/* ------------------------------------------------------------- history */

static void hist_add(struct sim *s, int key, uint8_t kind, uint64_t value,
                     uint64_t invoke, uint64_t ret)
{
    if (s->n_hist == s->cap_hist) {
        size_t cap = s->cap_hist ? s->cap_hist * 2 : 256;
        struct hist_op *v = realloc(s->hist, cap * sizeof(*v));
        if (!v)
            return;
        s->hist = v;
        s->cap_hist = cap;
    }
    struct hist_op *h = &s->hist[s->n_hist++];
    h->key = key;
    h->op.kind = kind;
    h->op.value = value;
    h->op.invoke = invoke;
    h->op.ret = ret;
}

/* Keys: a first byte spread over the key space (so that placement's
 * initial shards, split by the first two bytes, all get keys), then
 * "k00".."k23". Values are 8-byte big-endian unique numbers, 0 = absent. */
static size_t key_bytes(int k, uint8_t *buf)
{
    buf[0] = (uint8_t)(k * 256 / MAX_KEYS);
    return 1 + (size_t)snprintf((char *)buf + 1, 7, "k%02d", k);
}

static void val_bytes(uint64_t v, uint8_t *buf)
{
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t bytes_val(const uint8_t *b, size_t len)
{
    if (len != 8)
        return UINT64_MAX; /* not a value we wrote */
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

/* The shard of node n holding key, or NULL. */
static struct bs_shard *shard_for(struct node *n, const uint8_t *key,
                                  size_t klen)
{
    uint64_t ids[256];
    size_t cnt = bs_eng_store_groups(n->store, ids, 256);
    for (size_t i = 0; i < cnt && i < 256; i++) {
        if (ids[i] == BS_PD_SHARD_PLACEMENT)
            continue; /* placement's state machine, not a data shard */
        struct bs_shard *sh = bs_shard_sm_shard(bs_eng_store_sm(n->store,
                                                                ids[i]));
        if (!sh)
            continue;
        if (bs_shard_desc_contains(&sh->desc, key, klen))
            return sh;
    }
    return NULL;
}

/* ------------------------------------------------------------- clients */

static void op_done(struct client *c, int status, const void *resp,
                    size_t len);

static void cb_write(void *ctx, int status, const void *resp, size_t len)
{
    struct client *c = ctx;
    op_done(c, status, resp, len);
}

static void cb_read(void *ctx, int status, const void *resp, size_t len)
{
    struct client *c = ctx;
    struct sim *s = c->sim;
    (void)resp;
    (void)len;
    if (!c->op.active)
        return;
    c->op.active = false;
    if (status != 0)
        return; /* no answer: a read without result is not recorded */
    struct node *n = &s->nodes[c->op.node];
    if (!n->up)
        return;
    struct bs_shard *sh = bs_shard_sm_shard(bs_eng_store_sm(n->store,
                                                            c->op.shard));
    if (!sh)
        return;
    uint8_t kb[8];
    size_t kl = key_bytes(c->op.key, kb);
    struct bs_shard_range_req rq = {.key = kb, .key_len = kl};
    struct bs_shard_resp rs;
    bs_shard_resp_init(&rs);
    int rc = bs_shard_range(sh, n->db, NULL, &sh->desc.epoch, &rq, &rs);
    if (rc == 0) {
        uint64_t v = rs.op.n_kvs ? bytes_val(rs.op.kvs[0].value,
                                             rs.op.kvs[0].value_len)
                                 : 0;
        hist_add(s, c->op.key, BS_SIM_OP_READ, v, c->op.invoke, ++s->hseq);
        s->reads++;
    }
    bs_shard_resp_free(&rs);
}

static void op_done(struct client *c, int status, const void *resp,
                    size_t len)
{
    struct sim *s = c->sim;
    if (!c->op.active)
        return;
    c->op.active = false;
    struct op *o = &c->op;
    if (status == BS_ENOTLEADER || status == BS_EDROPPED ||
        status == BS_ESTALE || status == BS_ERANGE) {
        s->refused++;
        return; /* definitely not applied */
    }
    if (status != 0) {
        /* Timed out or stopped: the write may or may not have applied. */
        if (o->kind != 3) {
            hist_add(s, o->key, BS_SIM_OP_WRITE, o->kind == 1 ? 0 : o->value,
                     o->invoke, BS_SIM_T_INF);
            s->indeterminate++;
        }
        return;
    }
    struct bs_shard_resp rs;
    bs_shard_resp_init(&rs);
    if (bs_shard_resp_decode(resp, len, &rs) != 0) {
        failf(s, "", "response does not decode");
        return;
    }
    if (rs.err != 0) {
        s->refused++; /* refused at apply: a no-op everywhere */
        bs_shard_resp_free(&rs);
        return;
    }
    uint64_t ret = ++s->hseq;
    if (o->kind == 0) {
        hist_add(s, o->key, BS_SIM_OP_WRITE, o->value, o->invoke, ret);
    } else if (o->kind == 1) {
        hist_add(s, o->key, BS_SIM_OP_WRITE, 0, o->invoke, ret);
    } else if (o->kind == 2) {
        if (rs.succeeded) {
            hist_add(s, o->key, BS_SIM_OP_WRITE, o->value, o->invoke, ret);
        } else if (rs.n_ops == 1) {
            const struct bs_shard_op_resp *r = &rs.ops[0];
            uint64_t v = r->n_kvs ? bytes_val(r->kvs[0].value,
                                              r->kvs[0].value_len)
                                  : 0;
            hist_add(s, o->key, BS_SIM_OP_READ, v, o->invoke, ret);
        }
    }
    s->acked++;
    bs_shard_resp_free(&rs);
}

static void client_start(struct sim *s, struct client *c)
{
    int ni = 1 + (int)rnd(s, (uint64_t)s->n_nodes);
    struct node *n = &s->nodes[ni];
    if (!n->up)
        return;
    int key = (int)rnd(s, MAX_KEYS);
    uint8_t kb[8];
    size_t kl = key_bytes(key, kb);
    struct bs_shard *sh = shard_for(n, kb, kl);
    if (!sh)
        return;
    uint64_t shard = sh->desc.id;
    struct op o = {.active = true, .key = key, .shard = shard};
    int kind = (int)rnd(s, 10);
    o.kind = kind < 4 ? 0 : kind < 5 ? 1 : kind < 7 ? 2 : 3;
    if (o.kind == 3) {
        /* Reads: ReadIndex at any replica, then the local state. */
        o.node = ni;
        o.invoke = ++s->hseq;
        c->op = o;
        if (bs_eng_store_read_index(n->store, shard, cb_read, c) != 0)
            c->op.active = false;
        return;
    }
    /* Writes go to the leader's node (the rpc layer forwards, later). */
    uint64_t lead = bs_eng_store_leader(n->store, shard);
    int ln = (int)BS_ENG_REPLICA_NODE(lead);
    if (lead == 0 || ln < 1 || ln > s->n_nodes || !s->nodes[ln].up)
        return;
    struct node *L = &s->nodes[ln];
    struct bs_shard *lsh = bs_shard_sm_shard(bs_eng_store_sm(L->store, shard));
    if (!lsh)
        return;
    o.node = ln;
    o.value = ++s->next_value;
    uint8_t vb[8], eb[8];
    val_bytes(o.value, vb);
    struct bs_shard_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.epoch = lsh->desc.epoch;
    struct bs_shard_compare cmp;
    struct bs_shard_op succ, fail;
    if (o.kind == 0) {
        cmd.type = BS_SHARD_CMD_PUT;
        cmd.u.put.key = kb;
        cmd.u.put.key_len = kl;
        cmd.u.put.value = vb;
        cmd.u.put.value_len = 8;
    } else if (o.kind == 1) {
        cmd.type = BS_SHARD_CMD_DELETE_RANGE;
        cmd.u.del.key = kb;
        cmd.u.del.key_len = kl;
    } else {
        /* CAS: if value == a recently written value, put; else read. */
        o.expect = s->next_value > 3 ? s->next_value - 1 - rnd(s, 3) : 0;
        val_bytes(o.expect, eb);
        memset(&cmp, 0, sizeof(cmp));
        cmp.target = BS_SHARD_CMP_VALUE;
        cmp.result = BS_SHARD_CMP_EQUAL;
        cmp.key = kb;
        cmp.key_len = kl;
        cmp.value = eb;
        cmp.value_len = 8;
        memset(&succ, 0, sizeof(succ));
        succ.type = BS_SHARD_CMD_PUT;
        succ.u.put.key = kb;
        succ.u.put.key_len = kl;
        succ.u.put.value = vb;
        succ.u.put.value_len = 8;
        memset(&fail, 0, sizeof(fail));
        fail.type = BS_SHARD_CMD_RANGE;
        fail.u.range.key = kb;
        fail.u.range.key_len = kl;
        cmd.type = BS_SHARD_CMD_TXN;
        cmd.u.txn.compares = &cmp;
        cmd.u.txn.n_compares = 1;
        cmd.u.txn.success = &succ;
        cmd.u.txn.n_success = 1;
        cmd.u.txn.failure = &fail;
        cmd.u.txn.n_failure = 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (bs_shard_cmd_encode(&cmd, &buf, &len) != 0)
        return;
    o.invoke = ++s->hseq;
    c->op = o;
    int rc = bs_eng_store_propose(L->store, shard, buf, len, cb_write, c);
    free(buf);
    if (rc != 0)
        c->op.active = false; /* not proposed: nothing to record */
}

/* ---------------------------------------------------------- admin faults */

static int leader_node(struct sim *s, uint64_t shard, uint64_t *lead)
{
    for (int i = 1; i <= s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        if (!n->up)
            continue;
        struct bs_eng_group_info gi;
        if (bs_eng_store_group(n->store, shard, &gi) == 0 &&
            gi.role == BS_RAFT_LEADER) {
            *lead = gi.replica_id;
            return i;
        }
    }
    return 0;
}

static void noop_cb(void *ctx, int status, const void *resp, size_t len)
{
    (void)ctx;
    (void)status;
    (void)resp;
    (void)len;
}

static uint64_t pick_shard(struct sim *s)
{
    uint64_t ids[256];
    int ni = 1 + (int)rnd(s, (uint64_t)s->n_nodes);
    if (!s->nodes[ni].up)
        return 0;
    size_t n = bs_eng_store_groups(s->nodes[ni].store, ids, 256);
    if (n == 0)
        return 0;
    return ids[rnd(s, n < 256 ? n : 256)];
}

static void do_split(struct sim *s)
{
    uint64_t shard = pick_shard(s), lead = 0;
    int ln = shard != BS_PD_SHARD_PLACEMENT ? leader_node(s, shard, &lead)
                                            : 0;
    if (!ln)
        return;
    struct node *L = &s->nodes[ln];
    struct bs_shard *sh = bs_shard_sm_shard(bs_eng_store_sm(L->store, shard));
    if (!sh)
        return;
    /* Split at a key strictly inside the range. */
    uint8_t kb[8];
    size_t kl = key_bytes((int)rnd(s, MAX_KEYS), kb);
    struct bs_shard_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_SHARD_CMD_SPLIT;
    cmd.epoch = sh->desc.epoch;
    cmd.u.split.split_key = kb;
    cmd.u.split.split_key_len = kl;
    if (s->next_shard >= s->end_shard ||
        s->next_replica_seq >= s->end_replica_seq)
        return; /* ids not allocated yet */
    cmd.u.split.new_shard_id = s->next_shard++;
    uint32_t seq = s->next_replica_seq++;
    struct bs_raft_conf_state cs = sh->conf;
    if (cs.n_voters_outgoing > 0 || cs.n_learners > 0)
        return; /* only plain configurations */
    for (uint32_t i = 0; i < cs.n_voters; i++) {
        uint64_t node = BS_ENG_REPLICA_NODE(cs.voters[i]);
        cmd.u.split.replicas[i].id = BS_ENG_REPLICA_ID(node, seq);
        cmd.u.split.replicas[i].node_id = node;
    }
    cmd.u.split.n_replicas = cs.n_voters;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (bs_shard_cmd_encode(&cmd, &buf, &len) != 0)
        return;
    if (bs_eng_store_propose(L->store, shard, buf, len, noop_cb, NULL) == 0)
        s->splits++;
    free(buf);
}

static void do_move(struct sim *s)
{
    uint64_t shard = pick_shard(s), lead = 0;
    int ln = shard ? leader_node(s, shard, &lead) : 0;
    if (!ln)
        return;
    struct node *L = &s->nodes[ln];
    struct bs_eng_group_info gi;
    if (bs_eng_store_group(L->store, shard, &gi) != 0 ||
        gi.conf.n_voters_outgoing > 0)
        return;
    struct bs_raft_conf_change cc;
    memset(&cc, 0, sizeof(cc));
    if (gi.conf.n_learners > 0) {
        /* Promote the learner (joint consensus replacing a voter that is
         * not the leader, or a plain promotion). */
        uint64_t learner = gi.conf.learners[0];
        uint64_t victim = 0;
        for (uint32_t i = 0; i < gi.conf.n_voters; i++)
            if (gi.conf.voters[i] != lead)
                victim = gi.conf.voters[i];
        cc.n_changes = 2;
        cc.changes[0].type = BS_RAFT_CC_ADD_VOTER;
        cc.changes[0].node_id = learner;
        cc.changes[1].type = BS_RAFT_CC_REMOVE;
        cc.changes[1].node_id = victim;
        if (victim == 0)
            cc.n_changes = 1;
    } else {
        /* Add a learner on a node without a replica of this shard. */
        int target = 0;
        for (int i = 1; i <= s->n_nodes; i++) {
            bool has = false;
            for (uint32_t k = 0; k < gi.conf.n_voters; k++)
                has |= BS_ENG_REPLICA_NODE(gi.conf.voters[k]) ==
                       (uint64_t)i;
            if (!has && s->nodes[i].up)
                target = i;
        }
        if (!target || s->next_replica_seq >= s->end_replica_seq)
            return;
        uint64_t rid = BS_ENG_REPLICA_ID(target, s->next_replica_seq++);
        int rc = bs_eng_store_create_replica(s->nodes[target].store, shard,
                                             rid);
        if (rc != 0)
            return;
        cc.n_changes = 1;
        cc.changes[0].type = BS_RAFT_CC_ADD_LEARNER;
        cc.changes[0].node_id = rid;
    }
    if (bs_eng_store_propose_conf_change(L->store, shard, &cc, noop_cb,
                                         NULL) == 0)
        s->moves++;
}

static void do_transfer(struct sim *s)
{
    uint64_t shard = pick_shard(s), lead = 0;
    int ln = shard ? leader_node(s, shard, &lead) : 0;
    if (!ln)
        return;
    struct bs_eng_group_info gi;
    if (bs_eng_store_group(s->nodes[ln].store, shard, &gi) != 0 ||
        gi.conf.n_voters < 2)
        return;
    uint64_t to = gi.conf.voters[rnd(s, gi.conf.n_voters)];
    if (to != lead &&
        bs_eng_store_transfer_leader(s->nodes[ln].store, shard, to) == 0)
        s->transfers++;
}

/* ------------------------------------------------------------------ run */

static void process_all(struct sim *s)
{
    for (int i = 1; i <= s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        if (!n->up)
            continue;
        int rc = bs_eng_store_process(n->store);
        if (rc != 0) {
            char why[128];
            snprintf(why, sizeof(why), "node %d store failed: %s", i,
                     bs_strerror(rc));
            failf(s, "", why);
        }
    }
}

static void step(struct sim *s, bool faults, bool clients)
{
    s->now_ms += STEP_MS;
    if (s->now_ms % TICK_MS == 0)
        for (int i = 1; i <= s->n_nodes; i++)
            if (s->nodes[i].up)
                bs_eng_store_tick(s->nodes[i].store);
    deliver_due(s);
    process_all(s);
    if (clients) {
        for (int c = 0; c < MAX_CLIENTS; c++)
            if (!s->clients[c].op.active && chance(s, 300000))
                client_start(s, &s->clients[c]);
        process_all(s);
    }
    if (!faults)
        return;
    if (chance(s, 3000)) {
        int a = 1 + (int)rnd(s, (uint64_t)s->n_nodes);
        int b = 1 + (int)rnd(s, (uint64_t)s->n_nodes);
        if (a != b) {
            s->cut[a][b] = true;
            if (chance(s, 700000))
                s->cut[b][a] = true;
        }
    }
    if (chance(s, 1500)) {
        /* Isolate one node, often a leader: the case where an old leader
         * must stop serving (lease) reads. */
        int a = 1 + (int)rnd(s, (uint64_t)s->n_nodes);
        for (int b = 1; b <= s->n_nodes; b++)
            if (b != a)
                s->cut[a][b] = s->cut[b][a] = true;
    }
    if (chance(s, 4000))
        memset(s->cut, 0, sizeof(s->cut));
    if (chance(s, 1000)) {
        int i = 1 + (int)rnd(s, (uint64_t)s->n_nodes);
        int down = 0;
        for (int k = 1; k <= s->n_nodes; k++)
            down += !s->nodes[k].up;
        if (s->nodes[i].up && down == 0) {
            node_crash(s, &s->nodes[i]);
            s->crashes++;
        }
    }
    for (int i = 1; i <= s->n_nodes; i++)
        if (!s->nodes[i].up && chance(s, 10000))
            node_open(s, &s->nodes[i]);
    if (chance(s, 1500))
        do_split(s);
    if (chance(s, 1500))
        do_move(s);
    if (chance(s, 1500))
        do_transfer(s);
}

/* Converts placement's view of a shard into the shard layer's. */
static void pd_to_desc(const struct bs_pd_shard *ps, struct bs_shard_desc *d)
{
    memset(d, 0, sizeof(*d));
    d->id = ps->id;
    d->start = ps->start;
    d->start_len = ps->start_len;
    d->end = ps->end;
    d->end_len = ps->end_len;
    d->epoch.conf_ver = ps->epoch.conf_ver;
    d->epoch.version = ps->epoch.version;
    for (uint32_t i = 0; i < ps->n_replicas; i++) {
        d->replicas[i].id = ps->replicas[i].id;
        d->replicas[i].node_id = ps->replicas[i].node_id;
        d->replicas[i].learner = ps->replicas[i].role == BS_PD_ROLE_LEARNER;
    }
    d->n_replicas = ps->n_replicas;
}

/* Every node applies the same BOOTSTRAP and creates its replicas from the
 * resulting placement state: shard 0 and 4 data shards, 3 replicas each. */
static int bootstrap(struct sim *s)
{
    struct bs_pd_node_info infos[MAX_NODES];
    memset(infos, 0, sizeof(infos));
    for (int i = 1; i <= s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        n->id = i;
        n->sim = s;
        snprintf(n->dir, sizeof(n->dir), "%s/n%d", s->base, i);
        snprintf(n->snap_dir, sizeof(n->snap_dir), "%s/snap", n->dir);
        mkdir(n->dir, 0755);
        if (node_open(s, n) != 0)
            return -1;
        infos[i - 1].id = (uint64_t)i;
        snprintf(infos[i - 1].client_addr, sizeof(infos[i - 1].client_addr),
                 "sim:%d", i);
    }
    struct bs_pd_cmd boot;
    memset(&boot, 0, sizeof(boot));
    boot.type = BS_PD_CMD_BOOTSTRAP;
    boot.u.bootstrap.cluster_id = s->seed;
    boot.u.bootstrap.initial_shards = 4;
    boot.u.bootstrap.replicas = 3;
    boot.u.bootstrap.n_nodes = (uint32_t)s->n_nodes;
    boot.u.bootstrap.nodes = infos;
    for (int i = 1; i <= s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        struct bs_pd_state *st = NULL;
        char em[256] = "";
        int rc = bs_pd_bootstrap_local(n->db, &boot, &st, em);
        if (rc != 0) {
            failf(s, "placement bootstrap failed: ", em);
            return -1;
        }
        for (size_t k = 0; k < bs_pd_shard_count(st) && rc == 0; k++) {
            const struct bs_pd_shard *ps = bs_pd_shard_at(st, k);
            const struct bs_pd_replica *mine =
                bs_pd_shard_replica_on(ps, (uint64_t)i);
            if (!mine)
                continue;
            struct bs_raft_conf_state cs;
            bs_pd_shard_conf_state(ps, &cs);
            if (ps->id != BS_PD_SHARD_PLACEMENT) {
                struct bs_shard_desc d;
                pd_to_desc(ps, &d);
                rc = bs_shard_bootstrap(n->db, &d, &cs, 1, 1);
            }
            if (rc == 0)
                rc = bs_eng_store_bootstrap_group(n->store, ps->id, mine->id,
                                                  &cs);
            /* Placement's preferred leader campaigns first, so leaders
             * start out balanced across the nodes. */
            if (rc == 0 && ps->leader == mine->id)
                rc = bs_eng_store_campaign(n->store, ps->id);
        }
        bs_pd_state_destroy(st);
        if (rc != 0) {
            failf(s, "bootstrap failed: ", bs_strerror(rc));
            return -1;
        }
    }
    return 0;
}

/* --------------------------------------------------- placement reporter */

static uint64_t be64(const void *p)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

struct alloc_wait {
    struct sim *s;
    int kind;
};

static void cb_alloc(void *ctx, int status, const void *resp, size_t len)
{
    struct alloc_wait *w = ctx;
    struct sim *s = w->s;
    if (s->verbose)
        fprintf(stderr, "alloc kind=%d status=%s len=%zu\n", w->kind,
                bs_strerror(status), len);
    if (status == 0 && len == 8) {
        uint64_t first = be64(resp);
        if (w->kind == BS_PD_ID_SHARD) {
            s->next_shard = first;
            s->end_shard = first + 1000;
        } else {
            s->next_replica_seq = (uint32_t)first;
            s->end_replica_seq = (uint32_t)first + 10000;
        }
    }
    free(w);
}

static void propose_pd(struct sim *s, const struct bs_pd_cmd *cmd,
                       bs_eng_done_cb cb, void *ctx)
{
    uint64_t lead = 0;
    int ln = leader_node(s, BS_PD_SHARD_PLACEMENT, &lead);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!ln || bs_pd_cmd_encode(cmd, &buf, &len) != 0 ||
        bs_eng_store_propose(s->nodes[ln].store, BS_PD_SHARD_PLACEMENT, buf,
                             len, cb, ctx) != 0)
        cb(ctx, BS_ENOTLEADER, NULL, 0);
    free(buf);
}

/* Reserves a pool of shard and replica ids from placement (as a node
 * would, in batches). */
static void alloc_pools(struct sim *s)
{
    for (int kind = BS_PD_ID_SHARD; kind <= BS_PD_ID_REPLICA; kind++) {
        for (int tries = 0; tries < 200 && !s->fail[0]; tries++) {
            if (kind == BS_PD_ID_SHARD ? s->end_shard : s->end_replica_seq)
                break;
            struct alloc_wait *w = malloc(sizeof(*w));
            if (!w)
                return;
            w->s = s;
            w->kind = kind;
            struct bs_pd_cmd cmd = {.type = BS_PD_CMD_ALLOC_IDS};
            cmd.u.alloc.kind = (uint8_t)kind;
            cmd.u.alloc.count = kind == BS_PD_ID_SHARD ? 1000 : 10000;
            propose_pd(s, &cmd, cb_alloc, w);
            for (int k = 0; k < 20; k++)
                step(s, false, false);
        }
    }
}

static void cb_report(void *ctx, int status, const void *resp, size_t len)
{
    struct sim *s = ctx;
    (void)resp;
    (void)len;
    s->report_busy = false;
    if (status == 0)
        s->reports++;
}

/* Placement's state on the leader of shard 0 (NULL if none). */
static const struct bs_pd_state *pd_view(struct sim *s)
{
    uint64_t lead = 0;
    int ln = leader_node(s, BS_PD_SHARD_PLACEMENT, &lead);
    if (!ln)
        return NULL;
    return bs_pd_sm_state(bs_eng_store_sm(s->nodes[ln].store,
                                          BS_PD_SHARD_PLACEMENT));
}

/* The freshest loaded view of data shard id on its leader. */
static struct bs_shard *actual_shard(struct sim *s, uint64_t id)
{
    uint64_t lead = 0;
    int ln = leader_node(s, id, &lead);
    if (!ln)
        return NULL;
    return bs_shard_sm_shard(bs_eng_store_sm(s->nodes[ln].store, id));
}

/*
 * One reconciliation pass, as a node's reporter does (bs_pd_next_report
 * over the shards the leaders hold): proposes the next report, if any.
 * Returns true if placement already matches every data shard.
 */
static bool reconcile(struct sim *s)
{
    if (s->report_busy)
        return false;
    const struct bs_pd_state *pd = pd_view(s);
    if (!pd)
        return false;
    /* Every data shard, as its leader sees it. */
    const struct bs_shard *shards[512];
    size_t n_shards = 0;
    bool missing = false;
    uint64_t seen[512];
    size_t n_seen = 0;
    for (int i = 1; i <= s->n_nodes; i++) {
        if (!s->nodes[i].up)
            continue;
        uint64_t g[256];
        size_t n = bs_eng_store_groups(s->nodes[i].store, g, 256);
        for (size_t k = 0; k < n && k < 256; k++) {
            bool dup = g[k] == BS_PD_SHARD_PLACEMENT;
            for (size_t j = 0; j < n_seen; j++)
                dup |= seen[j] == g[k];
            if (dup || n_seen >= 512)
                continue;
            seen[n_seen++] = g[k];
            struct bs_shard *sh = actual_shard(s, g[k]);
            if (sh)
                shards[n_shards++] = sh;
            else
                missing = true; /* no leader now: cannot tell */
        }
    }
    struct bs_pd_cmd cmd;
    int rc = bs_pd_next_report(pd, shards, n_shards, &cmd);
    if (rc == 1) {
        s->report_busy = true;
        propose_pd(s, &cmd, cb_report, s);
        return false;
    }
    return rc == 0 && !missing;
}

/* Every replica of shard 0 routes every key to the shard that holds it,
 * with the same range and epoch version. */
static void check_routing(struct sim *s)
{
    for (int i = 1; i <= s->n_nodes && !s->fail[0]; i++) {
        const struct bs_pd_state *pd = bs_pd_sm_state(
            bs_eng_store_sm(s->nodes[i].store, BS_PD_SHARD_PLACEMENT));
        if (!pd)
            continue;
        const char *why = bs_pd_check(pd);
        if (why) {
            failf(s, "placement invariant: ", why);
            return;
        }
        for (int k = 0; k < MAX_KEYS; k++) {
            uint8_t kb[8];
            size_t kl = key_bytes(k, kb);
            const struct bs_pd_shard *ps = NULL;
            if (bs_pd_route(pd, kb, kl, &ps) != 0) {
                failf(s, "routing: ", "a key has no shard");
                return;
            }
            /* The leaders' views are authoritative: the routed shard's
             * leader holds the key at the same version, and no other
             * shard's leader claims it. (A lagging or removed replica may
             * still show an older range.) */
            struct bs_shard *act = actual_shard(s, ps->id);
            bool ok = act && bs_shard_desc_contains(&act->desc, kb, kl) &&
                      ps->epoch.version == act->desc.epoch.version;
            uint64_t other = 0;
            for (size_t g = 0; g < bs_pd_shard_count(pd) && ok; g++) {
                const struct bs_pd_shard *q = bs_pd_shard_at(pd, g);
                if (q->id == ps->id || q->id == BS_PD_SHARD_PLACEMENT)
                    continue;
                struct bs_shard *qs = actual_shard(s, q->id);
                if (qs && bs_shard_desc_contains(&qs->desc, kb, kl)) {
                    ok = false;
                    other = q->id;
                }
            }
            if (!ok) {
                char msg[160];
                snprintf(msg, sizeof(msg),
                         "node %d routes key %d to shard %" PRIu64
                         " v%" PRIu64 "; its leader %s; shard %" PRIu64
                         " claims it",
                         i, k, ps->id, ps->epoch.version,
                         act ? "disagrees" : "is unknown", other);
                failf(s, "routing: ", msg);
                return;
            }
        }
    }
}

static void remove_tree(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "nodesim: could not remove %s\n", path);
}

static int cmp_hist(const void *a, const void *b)
{
    const struct hist_op *x = a, *y = b;
    if (x->key != y->key)
        return x->key - y->key;
    return x->op.invoke < y->op.invoke ? -1 : x->op.invoke > y->op.invoke;
}

/* Every replica of a shard holds the same keys and values. */
static void check_replicas(struct sim *s)
{
    uint64_t ids[256];
    for (int i = 1; i <= s->n_nodes && !s->fail[0]; i++) {
        size_t cnt = bs_eng_store_groups(s->nodes[i].store, ids, 256);
        for (size_t k = 0; k < cnt && k < 256 && !s->fail[0]; k++) {
            struct bs_eng_group_info a;
            bs_eng_store_group(s->nodes[i].store, ids[k], &a);
            for (int j = i + 1; j <= s->n_nodes; j++) {
                struct bs_eng_group_info b;
                if (bs_eng_store_group(s->nodes[j].store, ids[k], &b) != 0 ||
                    b.applied != a.applied)
                    continue;
                struct bs_eng_iter *x = NULL, *y = NULL;
                bs_eng_iter_create(s->nodes[i].db, NULL, ids[k], "z", 1,
                                   "{", 1, &x);
                bs_eng_iter_create(s->nodes[j].db, NULL, ids[k], "z", 1,
                                   "{", 1, &y);
                if (!x || !y) {
                    bs_eng_iter_destroy(x);
                    bs_eng_iter_destroy(y);
                    continue;
                }
                bs_eng_iter_seek_first(x);
                bs_eng_iter_seek_first(y);
                while (bs_eng_iter_valid(x) || bs_eng_iter_valid(y)) {
                    size_t kx = 0, ky = 0, vx = 0, vy = 0;
                    if (!bs_eng_iter_valid(x) || !bs_eng_iter_valid(y)) {
                        failf(s, "", "replicas at the same applied index "
                                       "hold different key sets");
                        break;
                    }
                    const void *px = bs_eng_iter_key(x, &kx);
                    const void *py = bs_eng_iter_key(y, &ky);
                    const void *qx = bs_eng_iter_value(x, &vx);
                    const void *qy = bs_eng_iter_value(y, &vy);
                    if (kx != ky || vx != vy || memcmp(px, py, kx) ||
                        memcmp(qx, qy, vx)) {
                        failf(s, "", "replicas at the same applied index "
                                       "hold different data");
                        break;
                    }
                    bs_eng_iter_next(x);
                    bs_eng_iter_next(y);
                }
                bs_eng_iter_destroy(x);
                bs_eng_iter_destroy(y);
            }
        }
    }
}

static int run_seed(uint64_t seed, int steps, bool verbose, FILE *out)
{
    struct sim *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    g_cur = s;
    s->seed = seed;
    s->verbose = verbose;
    bs_sim_rng_seed(&s->rng, seed);
    s->n_nodes = 4;
    snprintf(s->base, sizeof(s->base), "/tmp/bs_nodesim.%d.%" PRIu64,
             (int)getpid(), seed);
    remove_tree(s->base);
    mkdir(s->base, 0755);
    for (int c = 0; c < MAX_CLIENTS; c++) {
        s->clients[c].sim = s;
        s->clients[c].id = c;
    }
    int rc = bootstrap(s);
    if (rc == 0) {
        /* Leaders start where placement put them: at most one apart (on
         * a network that loses nothing meanwhile). */
        s->lossless = true;
        for (int i = 0; i < 100; i++)
            step(s, false, false);
        s->lossless = false;
        int leads[MAX_NODES + 1] = {0};
        for (uint64_t sid = 1; sid <= 4; sid++) {
            uint64_t lead = 0;
            leads[leader_node(s, sid, &lead)]++;
        }
        int lo = 100, hi = 0;
        for (int i = 1; i <= s->n_nodes; i++) {
            lo = leads[i] < lo ? leads[i] : lo;
            hi = leads[i] > hi ? leads[i] : hi;
        }
        if (leads[0] > 0 || hi - lo > 1)
            failf(s, "bootstrap: ", "leaders are not balanced");
        alloc_pools(s);
    }
    for (int i = 0; rc == 0 && i < steps && !s->fail[0]; i++) {
        step(s, true, true);
        if (i % 20 == 0)
            reconcile(s);
    }
    /* Heal: restart everyone, join every link, let clients finish. */
    memset(s->cut, 0, sizeof(s->cut));
    for (int i = 1; i <= s->n_nodes; i++)
        if (!s->nodes[i].up)
            node_open(s, &s->nodes[i]);
    for (int i = 0; i < 1500 && !s->fail[0]; i++)
        step(s, false, false);
    /* Placement catches up with every split and replica change. */
    bool synced = false;
    for (int i = 0; i < 3000 && !s->fail[0] && !synced; i++) {
        step(s, false, false);
        if (i % 10 == 0)
            synced = reconcile(s);
    }
    if (!synced && !s->fail[0])
        failf(s, "placement did not catch up with the shards", "");
    /* Final reads of every key, then the checks. */
    for (int k = 0; k < MAX_KEYS && !s->fail[0]; k++) {
        for (int tries = 0; tries < 200; tries++) {
            struct client *c = &s->clients[0];
            if (!c->op.active) {
                uint64_t before = s->reads;
                int ni = 1 + (int)rnd(s, (uint64_t)s->n_nodes);
                uint8_t kb[8];
                size_t kl = key_bytes(k, kb);
                struct bs_shard *sh = shard_for(&s->nodes[ni], kb, kl);
                if (sh) {
                    c->op = (struct op){.active = true, .kind = 3, .key = k,
                                        .shard = sh->desc.id, .node = ni,
                                        .invoke = ++s->hseq};
                    if (bs_eng_store_read_index(s->nodes[ni].store,
                                                sh->desc.id, cb_read, c))
                        c->op.active = false;
                }
                for (int w = 0; w < 50 && c->op.active; w++)
                    step(s, false, false);
                if (s->reads > before)
                    break;
            }
            step(s, false, false);
        }
    }
    if (!s->fail[0]) {
        qsort(s->hist, s->n_hist, sizeof(*s->hist), cmp_hist);
        size_t i = 0;
        struct bs_sim_lin_op *ops = calloc(s->n_hist + 1, sizeof(*ops));
        while (ops && i < s->n_hist && !s->fail[0]) {
            size_t j = i, n = 0;
            while (j < s->n_hist && s->hist[j].key == s->hist[i].key)
                ops[n++] = s->hist[j++].op;
            char why[256] = "";
            int ok = bs_sim_lin_check(ops, n, 0, 2000000, why, sizeof(why));
            if (ok == 0) {
                char msg[320];
                snprintf(msg, sizeof(msg), "key k%02d not linearizable: %s",
                         s->hist[i].key, why);
                failf(s, "", msg);
            }
            i = j;
        }
        free(ops);
    }
    if (!s->fail[0])
        check_replicas(s);
    if (!s->fail[0])
        check_routing(s);
    int result = s->fail[0] ? 1 : 0;
    struct bs_eng_store_stats tot = {0};
    for (int i = 1; i <= s->n_nodes; i++) {
        struct bs_eng_store_stats st;
        if (!s->nodes[i].up)
            continue;
        bs_eng_store_stats(s->nodes[i].store, &st);
        tot.snapshots_sent += st.snapshots_sent;
        tot.snapshots_applied += st.snapshots_applied;
        tot.compactions += st.compactions;
        tot.groups += st.groups;
        tot.groups_asleep += st.groups_asleep;
        tot.fsyncs += st.fsyncs;
        tot.entries_applied += st.entries_applied;
    }
    if (s->verbose)
        fprintf(out,
                "  stores: replicas=%" PRIu64 " asleep=%" PRIu64
                " snapshots sent=%" PRIu64 " applied=%" PRIu64
                " compactions=%" PRIu64 " raft writes=%" PRIu64
                " entries applied=%" PRIu64 "\n",
                tot.groups, tot.groups_asleep, tot.snapshots_sent,
                tot.snapshots_applied, tot.compactions, tot.fsyncs,
                tot.entries_applied);
    fprintf(out,
            "seed %" PRIu64 ": %s%s acked=%" PRIu64 " indeterminate=%" PRIu64
            " reads=%" PRIu64 " refused=%" PRIu64 " crashes=%" PRIu64
            " splits=%" PRIu64 " moves=%" PRIu64 " transfers=%" PRIu64
            " reports=%" PRIu64 "\n",
            seed, result ? "FAIL " : "ok", s->fail, s->acked,
            s->indeterminate, s->reads, s->refused, s->crashes, s->splits,
            s->moves, s->transfers, s->reports);
    if (result)
        fprintf(out, "replay: bs_nodesim --seed %" PRIu64 " --steps %d\n",
                seed, steps);
    for (int i = 1; i <= s->n_nodes; i++)
        if (s->nodes[i].up)
            node_crash(s, &s->nodes[i]);
    for (size_t i = 0; i < s->n_net; i++)
        free_packet(&s->net[i]);
    free(s->net);
    free(s->hist);
    remove_tree(s->base);
    free(s);
    g_cur = NULL;
    return result;
}

int main(int argc, char **argv)
{
    uint64_t seed = 0, start = 1;
    int seeds = 0, steps = 3000;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--start-seed") && i + 1 < argc)
            start = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--verbose"))
            verbose = true;
        else {
            fprintf(stderr,
                    "bs_nodesim: unknown argument '%s'\n"
                    "usage: bs_nodesim [--seed S | --seeds N "
                    "[--start-seed S]] [--steps N]\n",
                    argv[i]);
            return 2;
        }
    }
    bs_shard_limits_default(&g_limits);
    bs_log_set_level(BS_LOG_ERROR);
    if (seed != 0)
        return run_seed(seed, steps, verbose, stdout);
    if (seeds <= 0)
        seeds = 10;
    int failed = 0;
    for (int i = 0; i < seeds; i++)
        failed += run_seed(start + (uint64_t)i, steps, verbose, stdout);
    printf("%d seeds x %d steps: %d passed, %d failed\n", seeds, steps,
           seeds - failed, failed);
    return failed ? 1 : 0;
}
