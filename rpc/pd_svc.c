/*
 * pd_svc.c - a node's part in the placement driver at work (DESIGN.md 7):
 *
 *   every node     computes the ISR of the shards it leads (every 200 ms)
 *                  and refuses writes to a shard whose ISR is under
 *                  min_insync_replicas; sends the placement leader one
 *                  heartbeat per interval with its own figures and those
 *                  of every shard it leads (one RPC per node, not per
 *                  shard: Forward/Heartbeat);
 *   the placement  keeps the heartbeats in a stats table (soft state,
 *   leader         placement/stats.c), proposes the liveness and
 *                  maintenance commands bs_pd_maintain returns, and the
 *                  operators bs_pd_schedule plans (not while paused).
 *
 * The placement leader's duties, as a state machine of this node:
 *
 *   FOLLOWER --(leads shard 0 at term T: stats reset, every node counts
 *   as heard now)--> LEADING(T) --(term changes or leadership lost)-->
 *   FOLLOWER (the table is dropped: a later leader starts fresh)
 *
 *   While LEADING, once per heartbeat interval and only when none of its
 *   own proposals is still in flight (pd_inflight == 0): one maintenance
 *   command if one is due, else the scheduler's operators (each an
 *   OP_CREATE). Apply refuses what has become stale meanwhile, so a
 *   proposal that races another is harmless.
 *
 * ISR (in-sync replicas) of a shard led here: the leader, plus every
 * replica whose node was heard within max_lag_ms, whose match is at most
 * max_lag_entries behind the leader's last index, and that was caught up
 * (match == last index) within max_lag_ms. Shrinks and expands are logged
 * and counted. Writes need min_insync_replicas voters in sync (default: a
 * Raft majority of the voters), Kafka's rule: it refuses a write that a
 * quorum could commit but that too few healthy replicas would hold.
 *
 * Everything here runs on the loop thread except the heartbeat handler's
 * decoding (a CQ thread), which posts to the loop.
 */
#define _GNU_SOURCE
#include "node_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "log.h"

#define MOD BS_NODE_MOD

#define ISR_EVERY_MS 200
/* Most shards reported in one heartbeat (all led here, normally). */
#define HB_MAX_SHARDS 100000

uint64_t bs_node__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint32_t bs_node__min_insync(const struct bs_node *n, uint32_t voters)
{
    uint32_t majority = voters / 2 + 1;
    uint32_t m = n->o.min_insync_replicas ? n->o.min_insync_replicas : majority;
    /* A setting above the group's size would refuse every write forever:
     * cap it at the voters there are. */
    return m > voters ? voters : m;
}

int bs_node__pd_svc_init(struct bs_node *n)
{
    const struct bs_node_opts *o = &n->o;
    bs_pd_sched_config_default(&n->sched);
    n->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : 1000;
    n->sched.suspect_after_ms = 3 * n->heartbeat_ms;
    if (o->down_after_ms)
        n->sched.down_after_ms = o->down_after_ms;
    if (n->sched.suspect_after_ms >= n->sched.down_after_ms)
        n->sched.suspect_after_ms = n->sched.down_after_ms / 2;
    if (o->max_concurrent_moves)
        n->sched.max_concurrent_moves = o->max_concurrent_moves;
    if (o->split_size)
        n->sched.split_size = o->split_size;
    n->sched.split_qps = o->split_qps;
    if (o->op_timeout_ms)
        n->sched.op_timeout_ms = o->op_timeout_ms;
    n->max_lag_entries = o->max_lag_entries ? o->max_lag_entries : 10000;
    n->max_lag_ms = o->max_lag_ms ? o->max_lag_ms : 10000;
    n->pd_stats = bs_pd_stats_create();
    return n->pd_stats ? 0 : BS_ENOMEM;
}

void bs_node__pd_svc_free(struct bs_node *n)
{
    bs_pd_stats_destroy(n->pd_stats);
    n->pd_stats = NULL;
    free(n->sstats);
    n->sstats = NULL;
    n->n_sstats = n->cap_sstats = 0;
}

/* ------------------------------------------------- per-shard records */

static size_t sstat_pos(const struct bs_node *n, uint64_t id, bool *found)
{
    size_t lo = 0, hi = n->n_sstats;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (n->sstats[mid].shard_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < n->n_sstats && n->sstats[lo].shard_id == id;
    return lo;
}

struct node_shard_stat *bs_node__shard_stat(struct bs_node *n,
                                            uint64_t shard_id)
{
    bool found;
    size_t i = sstat_pos(n, shard_id, &found);
    if (found)
        return &n->sstats[i];
    if (n->n_sstats == n->cap_sstats) {
        size_t cap = n->cap_sstats ? 2 * n->cap_sstats : 64;
        struct node_shard_stat *v = realloc(n->sstats, cap * sizeof(*v));
        if (!v)
            return NULL;
        n->sstats = v;
        n->cap_sstats = cap;
    }
    memmove(&n->sstats[i + 1], &n->sstats[i],
            (n->n_sstats - i) * sizeof(*n->sstats));
    n->n_sstats++;
    memset(&n->sstats[i], 0, sizeof(n->sstats[i]));
    n->sstats[i].shard_id = shard_id;
    return &n->sstats[i];
}

void bs_node__count(struct bs_node *n, uint64_t shard_id, bool write)
{
    struct node_shard_stat *s = bs_node__shard_stat(n, shard_id);
    if (!s)
        return;
    if (write)
        s->writes++;
    else
        s->reads++;
}

/* Drops the records of shards no longer held here. */
static void sstats_gc(struct bs_node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_sstats; i++) {
        struct bs_eng_group_info gi;
        if (bs_eng_store_group(n->store, n->sstats[i].shard_id, &gi) == 0)
            n->sstats[k++] = n->sstats[i];
    }
    n->n_sstats = k;
}

/* ------------------------------------------------------------- the ISR */

static bool in_isr(struct bs_node *n, const struct bs_eng_group_info *gi,
                   const struct bs_eng_progress *p, uint64_t last,
                   uint64_t now)
{
    if (p->id == gi->replica_id)
        return true;
    if (!bs_node__heard_within(n, BS_ENG_REPLICA_NODE(p->id), n->max_lag_ms))
        return false;
    /* A replica the leader is still probing or sending a snapshot to is
     * not in sync, however short the log: a learner just added has match
     * 0 and no data, and must not be promoted yet. */
    if (p->state != 1 /* replicate */ || p->match == 0)
        return false;
    if (p->match + n->max_lag_entries < last)
        return false;
    return p->match >= last || now - p->caught_up_ms <= n->max_lag_ms;
}

static bool isr_has(const struct node_shard_stat *s, uint64_t id)
{
    for (uint32_t i = 0; i < s->n_isr; i++)
        if (s->isr[i] == id)
            return true;
    return false;
}

bool bs_node__in_isr(struct bs_node *n, uint64_t shard_id, uint64_t id)
{
    bool found;
    size_t i = sstat_pos(n, shard_id, &found);
    return found && n->sstats[i].leading && isr_has(&n->sstats[i], id);
}

static void isr_update(struct bs_node *n, uint64_t shard_id)
{
    struct bs_eng_group_info gi;
    if (bs_eng_store_group(n->store, shard_id, &gi) != 0)
        return;
    struct node_shard_stat *s = bs_node__shard_stat(n, shard_id);
    if (!s)
        return;
    if (gi.role != BS_RAFT_LEADER) {
        s->leading = false;
        s->n_isr = 0;
        s->n_prog = 0;
        return;
    }
    uint64_t last = 0;
    size_t np = bs_eng_store_progress(n->store, shard_id, s->prog,
                                      BS_RAFT_MAX_MEMBERS, &last);
    if (np > BS_RAFT_MAX_MEMBERS)
        np = BS_RAFT_MAX_MEMBERS;
    s->n_prog = (uint32_t)np;
    s->last_index = last;
    uint64_t now = bs_node__now(); /* the store's clock */
    uint64_t isr[BS_RAFT_MAX_MEMBERS];
    uint32_t k = 0, vin = 0;
    for (size_t i = 0; i < np; i++) {
        if (!in_isr(n, &gi, &s->prog[i], last, now))
            continue;
        isr[k++] = s->prog[i].id;
        vin += !s->prog[i].learner;
    }
    uint32_t voters = 0;
    for (size_t i = 0; i < np; i++)
        voters += !s->prog[i].learner;
    if (s->leading) {
        for (uint32_t i = 0; i < s->n_isr; i++) {
            bool still = false;
            for (uint32_t j = 0; j < k; j++)
                still |= isr[j] == s->isr[i];
            if (!still) {
                n->isr_shrinks++;
                bs_log(BS_LOG_INFO, MOD,
                       "isr shrink shard=%" PRIu64 " replica=%" PRIx64
                       " node=%" PRIu64 " isr=%u/%zu",
                       shard_id, s->isr[i], BS_ENG_REPLICA_NODE(s->isr[i]),
                       k, np);
            }
        }
        for (uint32_t j = 0; j < k; j++) {
            if (!isr_has(s, isr[j])) {
                n->isr_expands++;
                bs_log(BS_LOG_INFO, MOD,
                       "isr expand shard=%" PRIu64 " replica=%" PRIx64
                       " node=%" PRIu64 " isr=%u/%zu",
                       shard_id, isr[j], BS_ENG_REPLICA_NODE(isr[j]), k, np);
            }
        }
    }
    memcpy(s->isr, isr, k * sizeof(isr[0]));
    s->n_isr = k;
    s->voters = voters;
    s->voters_in_sync = vin;
    s->leading = true;
}

int bs_node__isr_check(struct bs_node *n, uint64_t shard_id, char *msg)
{
    bool found;
    size_t i = sstat_pos(n, shard_id, &found);
    if (!found || !n->sstats[i].leading) {
        /* Not judged since this replica became leader (the ISR round
         * runs every 200 ms): judge it now, before the write. */
        isr_update(n, shard_id);
        i = sstat_pos(n, shard_id, &found);
        if (!found || !n->sstats[i].leading)
            return 0; /* not the leader: the propose says so */
    }
    const struct node_shard_stat *s = &n->sstats[i];
    uint32_t min = bs_node__min_insync(n, s->voters);
    if (s->voters_in_sync >= min)
        return 0;
    snprintf(msg, 160,
             "basalt: shard %" PRIu64 " has %u in-sync replicas, fewer "
             "than min-insync-replicas %u: write refused",
             shard_id, s->voters_in_sync, min);
    return BS_EUNAVAIL;
}

static void isr_all(struct bs_node *n)
{
    uint64_t ids[4096];
    size_t ng = bs_eng_store_groups(n->store, ids, 4096);
    for (size_t i = 0; i < ng && i < 4096; i++)
        isr_update(n, ids[i]);
    sstats_gc(n);
}

/* ------------------------------------------------------ the heartbeat */

/* The node that leads the placement group, as far as this node knows
 * (0 = unknown). */
static uint64_t pd_leader_node(struct bs_node *n)
{
    struct bs_eng_group_info g0;
    if (bs_eng_store_group(n->store, BS_PD_SHARD_PLACEMENT, &g0) == 0)
        return g0.leader ? BS_ENG_REPLICA_NODE(g0.leader) : 0;
    const struct bs_pd_state *pd = bs_node__pd(n);
    const struct bs_pd_shard *p0 =
        pd ? bs_pd_shard_find(pd, BS_PD_SHARD_PLACEMENT) : NULL;
    return p0 && p0->leader ? BS_ENG_REPLICA_NODE(p0->leader) : 0;
}

/* Builds this node's heartbeat; hb->shards malloc'd (caller frees). */
static int build_heartbeat(struct bs_node *n, struct bs_pd_heartbeat *hb)
{
    memset(hb, 0, sizeof(*hb));
    struct bs_pd_node_stat *ns = &hb->node;
    ns->node_id = n->o.node_id;
    struct statvfs vfs;
    if (statvfs(n->o.data_dir, &vfs) == 0) {
        ns->capacity_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        ns->available_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    }
    ns->used_bytes = bs_eng_db_size_estimate(n->db);
    uint32_t sending = 0, receiving = 0;
    uint64_t sent = 0;
    bs_peer_net_snapshot_stats(n->net, &sending, &receiving, &sent);
    ns->snapshots_sending = sending;
    ns->snapshots_receiving = receiving;

    /* Rates over the interval since the last sample. */
    uint64_t now = bs_node__now();
    uint64_t dt = n->last_rate_ms && now > n->last_rate_ms
                      ? now - n->last_rate_ms
                      : n->heartbeat_ms;
    n->last_rate_ms = now;
    for (size_t i = 0; i < n->n_sstats; i++) {
        struct node_shard_stat *s = &n->sstats[i];
        s->read_qps = (s->reads - s->reads_prev) * 1000 / (dt ? dt : 1);
        s->write_qps = (s->writes - s->writes_prev) * 1000 / (dt ? dt : 1);
        s->reads_prev = s->reads;
        s->writes_prev = s->writes;
        ns->read_qps += s->read_qps;
        ns->write_qps += s->write_qps;
    }

    uint64_t *ids = malloc(HB_MAX_SHARDS * sizeof(*ids));
    if (!ids)
        return BS_ENOMEM;
    size_t ng = bs_eng_store_groups(n->store, ids, HB_MAX_SHARDS);
    if (ng > HB_MAX_SHARDS)
        ng = HB_MAX_SHARDS;
    struct bs_pd_shard_stat *ss = calloc(ng ? ng : 1, sizeof(*ss));
    if (!ss) {
        free(ids);
        return BS_ENOMEM;
    }
    const struct bs_pd_state *pd = bs_node__pd(n);
    uint32_t k = 0;
    for (size_t i = 0; i < ng; i++) {
        struct bs_eng_group_info gi;
        if (bs_eng_store_group(n->store, ids[i], &gi) != 0)
            continue;
        ns->replicas++;
        if (gi.role != BS_RAFT_LEADER)
            continue;
        ns->leaders++;
        struct node_shard_stat *s = bs_node__shard_stat(n, ids[i]);
        if (!s || !s->leading)
            continue; /* judged at the next ISR round */
        struct bs_pd_shard_stat *st = &ss[k++];
        st->shard_id = ids[i];
        st->leader = gi.replica_id;
        st->term = gi.term;
        st->commit = gi.commit;
        st->applied = gi.applied;
        struct bs_shard *sh =
            ids[i] == BS_PD_SHARD_PLACEMENT
                ? NULL
                : bs_shard_sm_shard(bs_eng_store_sm(n->store, ids[i]));
        if (sh) {
            st->conf_ver = sh->desc.epoch.conf_ver;
            st->version = sh->desc.epoch.version;
        } else if (pd) {
            const struct bs_pd_shard *ps = bs_pd_shard_find(pd, ids[i]);
            if (ps) {
                st->conf_ver = ps->epoch.conf_ver;
                st->version = ps->epoch.version;
            }
        }
        (void)bs_eng_db_shard_size(n->db, ids[i], &st->size_bytes, &st->keys);
        st->read_qps = s->read_qps;
        st->write_qps = s->write_qps;
        for (uint32_t r = 0; r < s->n_prog && r < BS_RAFT_MAX_MEMBERS; r++) {
            const struct bs_eng_progress *p = &s->prog[r];
            struct bs_pd_replica_stat *rs = &st->replicas[st->n_replicas++];
            rs->replica_id = p->id;
            rs->node_id = BS_ENG_REPLICA_NODE(p->id);
            rs->match = p->id == gi.replica_id ? s->last_index : p->match;
            rs->lag_entries =
                s->last_index > rs->match ? s->last_index - rs->match : 0;
            rs->lag_ms = rs->lag_entries && now > p->caught_up_ms
                             ? now - p->caught_up_ms
                             : 0;
            rs->learner = p->learner;
            rs->in_sync = isr_has(s, p->id);
        }
    }
    free(ids);
    hb->n_shards = k;
    hb->shards = ss;
    return 0;
}

struct hb_call {
    struct bs_node *n;
    int rc;
};

static void task_hb_done(void *ctx, bool cancelled)
{
    struct hb_call *c = ctx;
    if (!cancelled) {
        if (c->rc != 0) {
            c->n->hb_failed++;
            bs_log(BS_LOG_DEBUG, MOD, "heartbeat failed err=%s",
                   bs_strerror(c->rc));
        }
    }
    free(c);
}

static void on_hb_sent(void *ctx, const struct bs_rpc_result *res)
{
    struct hb_call *c = ctx;
    c->rc = res->rc;
    if (bs_node__post(c->n, task_hb_done, c) != 0)
        free(c);
}

static void hb_received(struct bs_node *n, const struct bs_pd_heartbeat *hb)
{
    n->hb_received++;
    (void)bs_pd_stats_update(n->pd_stats, hb, bs_node__wall_ms(),
                             n->sched.split_qps);
}

/* One call per interval; it times out within two, so at most two are
 * ever in flight to a slow leader. */
static void send_heartbeat(struct bs_node *n)
{
    struct bs_pd_heartbeat hb;
    if (build_heartbeat(n, &hb) != 0)
        return;
    uint64_t leader = pd_leader_node(n);
    if (leader == n->o.node_id) {
        if (n->pd_leading)
            hb_received(n, &hb);
        n->hb_sent++;
        free((void *)hb.shards);
        return;
    }
    struct bs_rpc_channel *ch =
        leader ? bs_peer_net_channel(n->net, leader) : NULL;
    uint8_t *enc = NULL, *req = NULL;
    size_t elen = 0, rlen = 0;
    int rc = ch ? bs_pd_heartbeat_encode(&hb, &enc, &elen) : BS_EUNREACHABLE;
    free((void *)hb.shards);
    if (rc == 0) /* HeartbeatRequest: one bytes field, as PlacementCommand */
        rc = bs_rpc_pd_command_encode(enc, elen, &req, &rlen);
    free(enc);
    struct hb_call *c = rc == 0 ? calloc(1, sizeof(*c)) : NULL;
    if (c) {
        c->n = n;
        rc = bs_rpc_channel_call(ch, "/basalt.node.Forward/Heartbeat", req,
                                 rlen, (int64_t)n->heartbeat_ms * 2,
                                 on_hb_sent, c);
        if (rc == 0) {
            n->hb_sent++;
        } else {
            free(c);
        }
    }
    if (rc != 0)
        n->hb_failed++;
    free(req);
}

/* ------------------------------------------- receiving (placement leader) */

struct hb_in {
    struct bs_node *n;
    struct bs_rpc_call *call;
    struct bs_pd_heartbeat hb; /* decoded: bs_pd_heartbeat_free */
};

static void task_hb_in(void *ctx, bool cancelled)
{
    struct hb_in *h = ctx;
    if (cancelled) {
        (void)bs_rpc_call_fail(h->call, BS_EUNAVAIL,
                               "basalt: the node is stopping");
    } else if (!h->n->pd_leading) {
        (void)bs_rpc_call_fail(h->call, BS_ENOTLEADER,
                               "basalt: this node does not lead the "
                               "placement group");
    } else {
        hb_received(h->n, &h->hb);
        (void)bs_rpc_call_reply(h->call, "", 0);
    }
    bs_pd_heartbeat_free(&h->hb);
    free(h);
}

static void hb_unary(struct bs_rpc_call *call, const void *req, size_t len,
                     void *ctx)
{
    struct bs_node *n = ctx;
    /* HeartbeatRequest has the shape of PlacementImage: field 1, bytes. */
    uint8_t *hb = NULL;
    size_t hb_len = 0;
    int drc = bs_rpc_pd_image_decode(req, len, n->rpc_limits.max_message, &hb,
                                     &hb_len);
    if (drc != 0) {
        (void)bs_rpc_call_fail(call, drc == BS_ETOOBIG ? drc : BS_EPROTO,
                               "basalt: the heartbeat is not a valid "
                               "HeartbeatRequest");
        return;
    }
    struct hb_in *h = calloc(1, sizeof(*h));
    int rc = h ? bs_pd_heartbeat_decode(hb, hb_len, &h->hb) : BS_ENOMEM;
    free(hb);
    if (rc != 0) {
        free(h);
        (void)bs_rpc_call_fail(call, rc == BS_ENOMEM ? rc : BS_EPROTO,
                               "basalt: the heartbeat does not decode");
        return;
    }
    h->n = n;
    h->call = call;
    if (bs_node__post(n, task_hb_in, h) != 0) {
        bs_pd_heartbeat_free(&h->hb);
        free(h);
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
    }
}

int bs_node__pd_svc_register(struct bs_node *n)
{
    return bs_rpc_server_add_unary(n->peer_srv,
                                   "/basalt.node.Forward/Heartbeat", hb_unary,
                                   n);
}

/* ------------------------------------------ the placement leader's duties */

bool bs_node__pd_leading(struct bs_node *n)
{
    return n->pd_leading;
}

const struct bs_pd_stats *bs_node__pd_stats(struct bs_node *n)
{
    return n->pd_leading ? n->pd_stats : NULL;
}

static void duty_done(struct bs_node *n, void *ctx, int status,
                      uint64_t first_id)
{
    uint8_t type = (uint8_t)(uintptr_t)ctx;
    (void)first_id;
    if (n->pd_inflight > 0)
        n->pd_inflight--;
    if (status != 0 && status != BS_ESTALE && status != BS_ESTOPPED)
        bs_log(BS_LOG_DEBUG, MOD, "placement %s refused err=%s",
               bs_pd_cmd_type_name(type), bs_strerror(status));
}

static void propose_duty(struct bs_node *n, const struct bs_pd_cmd *cmd)
{
    if (bs_node__pd_propose(n, cmd, duty_done,
                            (void *)(uintptr_t)cmd->type) == 0)
        n->pd_inflight++;
}

static void log_op(const struct bs_pd_op *op)
{
    bs_log(BS_LOG_INFO, MOD,
           "operator planned kind=%s reason=%s shard=%" PRIu64
           " from=%" PRIu64 " to=%" PRIu64,
           bs_pd_op_kind_name(op->kind), bs_pd_op_reason_name(op->reason),
           op->shard_id, op->from_node, op->to_node);
}

static void pd_duties(struct bs_node *n)
{
    struct bs_eng_group_info g0;
    bool leading = bs_eng_store_group(n->store, BS_PD_SHARD_PLACEMENT, &g0) ==
                       0 &&
                   g0.role == BS_RAFT_LEADER;
    uint64_t now = bs_node__wall_ms();
    if (!leading) {
        n->pd_leading = false;
        return;
    }
    if (!n->pd_leading || n->pd_lead_term != g0.term) {
        /* A new term: what the previous leader heard is not known here;
         * give every node a full down_after from now. */
        bs_pd_stats_reset(n->pd_stats, now);
        n->pd_leading = true;
        n->pd_lead_term = g0.term;
        n->pd_inflight = 0;
        bs_log(BS_LOG_INFO, MOD, "leading placement term=%" PRIu64, g0.term);
        return;
    }
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (!pd || n->pd_inflight > 0)
        return;
    /* The placement group applies what it commits before the leader acts
     * on it: until its own applied index reaches commit, its view may
     * miss the previous leader's last operators. */
    if (g0.applied < g0.commit)
        return;
    struct bs_pd_cmd cmd;
    if (bs_pd_maintain(pd, n->pd_stats, &n->sched, now, &cmd) == 1) {
        if (cmd.type == BS_PD_CMD_UPDATE_NODE_STATE)
            bs_log(BS_LOG_INFO, MOD, "node state node=%" PRIu64 " -> %s",
                   cmd.u.node_state.node_id,
                   bs_pd_node_state_name(cmd.u.node_state.state));
        propose_duty(n, &cmd);
        return;
    }
    struct bs_pd_op ops[16];
    size_t k = bs_pd_schedule(pd, n->pd_stats, &n->sched, now, false, ops, 16);
    for (size_t i = 0; i < k; i++) {
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = BS_PD_CMD_OP_CREATE;
        cmd.u.op = ops[i];
        cmd.u.op.created_at = now;
        log_op(&ops[i]);
        n->ops_proposed++;
        propose_duty(n, &cmd);
    }
}

void bs_node__pd_tick(struct bs_node *n)
{
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (!pd || !bs_pd_bootstrapped(pd))
        return;
    uint64_t now = bs_node__now();
    if (now >= n->next_isr_ms) {
        n->next_isr_ms = now + ISR_EVERY_MS;
        isr_all(n);
    }
    if (now >= n->next_hb_ms) {
        n->next_hb_ms = now + n->heartbeat_ms;
        pd_duties(n);
        send_heartbeat(n);
    }
}
