/*
 * admin_svc.c - what a node answers about itself and the cluster:
 * basalt.Admin (ClusterStatus, ShardInfo, Ping, TransferLeader), etcd's
 * Maintenance.Status and Cluster.MemberList (enough for `etcdctl endpoint
 * status` and `etcdctl member list`), and the HTTP pages /metrics and
 * /status. Admin's Join, RemoveNode, Rebalance, IsrStatus, Split and
 * Scheduler are registered here and handed to pd_admin.c, which answers
 * them on the placement leader's node.
 *
 * Every answer is built on the loop thread (the only one that may read
 * the store and the placement view): a handler posts a task that builds
 * and sends it. The HTTP pages are synchronous, so their thread waits for
 * the task.
 *
 * What a node knows: placement's view (nodes, shards, replicas, the
 * leaders as last reported) for every shard, and the live Raft state
 * (leader, term, commit, applied) of the shards it holds a replica of;
 * those override placement's leader hints. The ISR of a shard is known
 * exactly where it is tracked (the shard's leader) and reported (the
 * placement leader, from heartbeats); elsewhere it is approximated.
 */
#define _GNU_SOURCE
#include "node_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <pb_decode.h>

#include "admin.pb.h"
#include "rpc.pb.h"

#include "log.h"

#define MOD BS_NODE_MOD

#define BS_NODE_VERSION "0.1.0"
/* What Maintenance.Status reports as the server version: etcd's API level
 * with Basalt's own version as semver build metadata, so that clients
 * that parse it see the 3.4 API they talk to. */
#define BS_NODE_ETCD_VERSION "3.4.0+basalt." BS_NODE_VERSION

enum admin_kind {
    ADM_CLUSTER_STATUS,
    ADM_SHARD_INFO,
    ADM_PING,
    ADM_ETCD_STATUS,
    ADM_MEMBER_LIST,
    ADM_TRANSFER_LEADER,
    /* answered by the placement leader's node (pd_admin.c) */
    ADM_JOIN,
    ADM_REMOVE_NODE,
    ADM_REBALANCE,
    ADM_ISR_STATUS,
    ADM_SPLIT,
    ADM_SCHEDULER,
};

struct admin_method {
    struct bs_node *n;
    enum admin_kind kind;
    bool forwarded; /* arrived on the peer port: act here or refuse */
};

struct admin_task {
    struct bs_node *n;
    struct bs_rpc_call *call; /* NULL once handed on */
    enum admin_kind kind;
    bool forwarded;
    uint8_t *req;
    size_t len;
};

/* ------------------------------------------------------ the cluster view */

/* Fills sh from placement's shard ps and, if a replica is here, its live
 * Raft state. Borrows ps's keys. */
static void shard_view(struct bs_node *n, const struct bs_pd_shard *ps,
                       struct bs_adm_shard *sh)
{
    memset(sh, 0, sizeof(*sh));
    sh->id = ps->id;
    sh->start = ps->start;
    sh->start_len = ps->start_len;
    sh->end = ps->end;
    sh->end_len = ps->end_len;
    sh->conf_ver = ps->epoch.conf_ver;
    sh->version = ps->epoch.version;
    sh->leader = ps->leader;
    sh->term = ps->leader_term;
    struct bs_eng_group_info gi;
    bool local = bs_eng_store_group(n->store, ps->id, &gi) == 0;
    if (local) {
        if (gi.leader)
            sh->leader = gi.leader;
        sh->term = gi.term;
        sh->commit = gi.commit;
        sh->applied = gi.applied;
        struct bs_shard *s =
            ps->id == BS_PD_SHARD_PLACEMENT
                ? NULL
                : bs_shard_sm_shard(bs_eng_store_sm(n->store, ps->id));
        if (s)
            sh->revision = s->revision;
    }
    sh->leader_node = sh->leader ? BS_ENG_REPLICA_NODE(sh->leader) : 0;
    /* Where the ISR comes from: the live tracking of a shard led here;
     * else, on the placement leader, the shard leader's last heartbeat
     * report; else (another node, or no report yet) nothing better than
     * "its node is alive", an approximation this node says nothing more
     * precise about. */
    const struct node_shard_stat *ns = local && gi.role == BS_RAFT_LEADER
                                           ? bs_node__shard_stat(n, ps->id)
                                           : NULL;
    if (ns && !ns->leading)
        ns = NULL;
    const struct bs_pd_stats *stats = ns ? NULL : bs_node__pd_stats(n);
    const struct bs_pd_shard_stat *rep =
        stats ? bs_pd_stats_shard(stats, ps->id, NULL, NULL) : NULL;
    for (uint32_t i = 0; i < ps->n_replicas && i < BS_RAFT_MAX_MEMBERS; i++) {
        struct bs_adm_replica *r = &sh->replicas[sh->n_replicas++];
        r->id = ps->replicas[i].id;
        r->node_id = ps->replicas[i].node_id;
        r->learner = ps->replicas[i].role == BS_PD_ROLE_LEARNER;
        if (ns) {
            for (uint32_t k = 0; k < ns->n_isr && k < BS_RAFT_MAX_MEMBERS; k++)
                r->in_sync |= ns->isr[k] == r->id;
            for (uint32_t k = 0; k < ns->n_prog && k < BS_RAFT_MAX_MEMBERS; k++)
                if (ns->prog[k].id == r->id)
                    r->match = ns->prog[k].match;
            continue;
        }
        if (rep) {
            for (uint32_t k = 0; k < rep->n_replicas && k < BS_RAFT_MAX_MEMBERS;
                 k++) {
                if (rep->replicas[k].replica_id == r->id) {
                    r->in_sync = rep->replicas[k].in_sync;
                    r->match = rep->replicas[k].match;
                }
            }
            continue;
        }
        r->in_sync = bs_node__alive(n, r->node_id);
        if (local && r->id == gi.replica_id)
            r->match = gi.commit;
    }
}

/* The whole view; arrays malloc'd (free st->nodes and st->shards). */
static int cluster_view(struct bs_node *n, struct bs_adm_status *st)
{
    memset(st, 0, sizeof(*st));
    st->cluster_id = n->cluster_id;
    st->node_id = n->o.node_id;
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (!pd)
        return BS_EUNAVAIL;
    size_t nn = bs_pd_node_count(pd), ns = bs_pd_shard_count(pd);
    st->nodes = calloc(nn ? nn : 1, sizeof(*st->nodes));
    st->shards = calloc(ns ? ns : 1, sizeof(*st->shards));
    if (!st->nodes || !st->shards) {
        free(st->nodes);
        free(st->shards);
        return BS_ENOMEM;
    }
    for (size_t i = 0; i < ns; i++)
        shard_view(n, bs_pd_shard_at(pd, i), &st->shards[i]);
    st->n_shards = ns;
    /* Disk figures and heartbeat ages: only the placement leader has
     * them (soft state from the heartbeats); elsewhere they stay 0. */
    const struct bs_pd_stats *stats = bs_node__pd_stats(n);
    uint64_t now = bs_node__wall_ms();
    for (size_t i = 0; i < nn; i++) {
        const struct bs_pd_node *pn = bs_pd_node_at(pd, i);
        struct bs_adm_node *an = &st->nodes[i];
        an->id = pn->info.id;
        snprintf(an->client_addr, sizeof(an->client_addr), "%s",
                 pn->info.client_addr);
        snprintf(an->peer_addr, sizeof(an->peer_addr), "%s",
                 pn->info.peer_addr);
        snprintf(an->http_addr, sizeof(an->http_addr), "%s",
                 pn->info.http_addr);
        an->alive = bs_node__alive(n, an->id);
        snprintf(an->state, sizeof(an->state), "%s",
                 bs_pd_node_state_name(pn->state));
        const char *rack = bs_pd_node_label(pn, "rack");
        snprintf(an->rack, sizeof(an->rack), "%s", rack ? rack : "");
        const struct bs_pd_node_stat *nst =
            stats ? bs_pd_stats_node(stats, an->id) : NULL;
        if (nst) {
            an->used_bytes = nst->used_bytes;
            an->capacity_bytes = nst->capacity_bytes;
            an->available_bytes = nst->available_bytes;
        }
        uint64_t heard = stats ? bs_pd_stats_heard(stats, an->id) : 0;
        an->heard_ms_ago = heard && now > heard ? now - heard : 0;
        for (size_t k = 0; k < ns; k++) {
            const struct bs_adm_shard *sh = &st->shards[k];
            for (uint32_t r = 0; r < sh->n_replicas; r++)
                an->replicas += sh->replicas[r].node_id == an->id;
            an->leaders += sh->leader_node == an->id;
        }
    }
    st->n_nodes = nn;
    return 0;
}

static void view_free(struct bs_adm_status *st)
{
    free(st->nodes);
    free(st->shards);
}

/* ------------------------------------------------------------- answers */

static void reply_buf(struct bs_rpc_call *call, int rc, uint8_t *out,
                      size_t len, const char *em)
{
    if (rc == 0)
        (void)bs_rpc_call_reply(call, out, len);
    else
        (void)bs_rpc_call_fail(call, rc, em && *em ? em : NULL);
    free(out);
}

static void answer_cluster_status(struct admin_task *t)
{
    struct bs_adm_status st;
    int rc = cluster_view(t->n, &st);
    if (rc != 0) {
        (void)bs_rpc_call_fail(t->call, rc,
                               "basalt: this node has no placement view yet");
        return;
    }
    uint8_t *out = NULL;
    size_t len = 0;
    char em[256] = "";
    rc = bs_adm_status_encode(&st, &out, &len, em);
    view_free(&st);
    reply_buf(t->call, rc, out, len, em);
}

static void answer_shard_info(struct admin_task *t)
{
    uint64_t id = 0;
    uint8_t *key = NULL;
    size_t kl = 0;
    char em[256] = "";
    int rc = bs_adm_shard_info_req_decode(t->req, t->len, &id, &key, &kl, em);
    if (rc != 0) {
        (void)bs_rpc_call_fail(t->call, rc, em);
        return;
    }
    const struct bs_pd_state *pd = bs_node__pd(t->n);
    const struct bs_pd_shard *ps = NULL;
    if (!pd)
        rc = BS_EUNAVAIL;
    else if (id != 0 || kl == 0)
        ps = bs_pd_shard_find(pd, id);
    else
        rc = bs_pd_route(pd, key, kl, &ps);
    free(key);
    if (rc == 0 && !ps) {
        snprintf(em, sizeof(em), "basalt: there is no shard %" PRIu64, id);
        rc = BS_ENOTFOUND;
    }
    if (rc != 0) {
        (void)bs_rpc_call_fail(t->call, rc, em[0] ? em : NULL);
        return;
    }
    struct bs_adm_shard sh;
    shard_view(t->n, ps, &sh);
    uint8_t *out = NULL;
    size_t len = 0;
    rc = bs_adm_shard_info_resp_encode(&sh, &out, &len, em);
    reply_buf(t->call, rc, out, len, em);
}

static void answer_ping(struct admin_task *t)
{
    struct bs_adm_ping req;
    char em[256] = "";
    int rc = bs_adm_ping_req_decode(t->req, t->len, &req, em);
    if (rc != 0) {
        (void)bs_rpc_call_fail(t->call, rc, em);
        return;
    }
    struct bs_adm_ping resp = {
        .cluster_id = t->n->cluster_id,
        .node_id = t->n->o.node_id,
        .uptime_ms = bs_node__now() - t->n->start_ms,
        .payload = req.payload,
        .payload_len = req.payload_len,
    };
    snprintf(resp.version, sizeof(resp.version), "%s", BS_NODE_VERSION);
    uint8_t *out = NULL;
    size_t len = 0;
    rc = bs_adm_ping_resp_encode(&resp, &out, &len, em);
    bs_adm_ping_free(&req);
    reply_buf(t->call, rc, out, len, em);
}

/* etcd's view of "the" leader is the placement group's: the one Raft
 * group every cluster has and every node (up to five) votes in. */
static void answer_etcd_status(struct admin_task *t)
{
    struct bs_node *n = t->n;
    struct bs_adm_etcd_status s;
    memset(&s, 0, sizeof(s));
    s.hdr.cluster_id = n->cluster_id;
    s.hdr.member_id = n->o.node_id;
    snprintf(s.version, sizeof(s.version), "%s", BS_NODE_ETCD_VERSION);
    struct bs_eng_group_info gi;
    if (bs_eng_store_group(n->store, BS_PD_SHARD_PLACEMENT, &gi) == 0) {
        s.leader = gi.leader ? BS_ENG_REPLICA_NODE(gi.leader) : 0;
        s.raft_index = gi.commit;
        s.raft_term = gi.term;
        s.raft_applied_index = gi.applied;
        s.hdr.raft_term = gi.term;
        for (uint32_t i = 0; i < gi.conf.n_learners; i++)
            s.is_learner |= gi.conf.learners[i] == gi.replica_id;
    } else {
        const struct bs_pd_state *pd = bs_node__pd(n);
        const struct bs_pd_shard *p0 =
            pd ? bs_pd_shard_find(pd, BS_PD_SHARD_PLACEMENT) : NULL;
        if (p0 && p0->leader)
            s.leader = BS_ENG_REPLICA_NODE(p0->leader);
    }
    /* Data size: the shard CFs as RocksDB estimates them. */
    s.db_size = (int64_t)bs_eng_db_size_estimate(n->db);
    s.db_size_in_use = s.db_size;
    uint8_t *out = NULL;
    size_t len = 0;
    char em[256] = "";
    int rc = bs_adm_etcd_status_encode(&s, &out, &len, em);
    reply_buf(t->call, rc, out, len, em);
}

static void answer_member_list(struct admin_task *t)
{
    struct bs_node *n = t->n;
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (!pd) {
        (void)bs_rpc_call_fail(t->call, BS_EUNAVAIL,
                               "basalt: this node has no placement view yet");
        return;
    }
    size_t nn = bs_pd_node_count(pd);
    struct bs_adm_member *m = calloc(nn ? nn : 1, sizeof(*m));
    if (!m) {
        (void)bs_rpc_call_fail(t->call, BS_ENOMEM, NULL);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < nn; i++) {
        const struct bs_pd_node *pn = bs_pd_node_at(pd, i);
        if (pn->state == BS_PD_NODE_REMOVED)
            continue;
        struct bs_adm_member *mm = &m[k++];
        mm->id = pn->info.id;
        snprintf(mm->name, sizeof(mm->name), "basalt-%" PRIu64, pn->info.id);
        if (pn->info.peer_addr[0])
            snprintf(mm->peer_url, sizeof(mm->peer_url), "http://%s",
                     pn->info.peer_addr);
        if (pn->info.client_addr[0])
            snprintf(mm->client_url, sizeof(mm->client_url), "http://%s",
                     pn->info.client_addr);
    }
    struct bs_rpc_header h = {.cluster_id = n->cluster_id,
                              .member_id = n->o.node_id};
    struct bs_eng_group_info gi;
    if (bs_eng_store_group(n->store, BS_PD_SHARD_PLACEMENT, &gi) == 0)
        h.raft_term = gi.term;
    uint8_t *out = NULL;
    size_t len = 0;
    char em[256] = "";
    int rc = bs_adm_member_list_encode(&h, m, k, &out, &len, em);
    free(m);
    reply_buf(t->call, rc, out, len, em);
}

/* ------------------------------------------------ leadership transfer */

/*
 * TransferLeader: the shard's leader (here, or the node a request is
 * forwarded to over the peer channel) starts a Raft transfer to the
 * target's replica, and the call is answered once the local replica sees
 * the target lead (checked every tick; the transfer is restarted every
 * second, since Raft gives one up after an election timeout), or after
 * BS_NODE_TRANSFER_MS with BS_ETIMEDOUT.
 */
#define BS_NODE_TRANSFER_MS 5000

struct xfer_wait {
    struct bs_node *n;
    struct bs_rpc_call *call;
    uint64_t shard_id, to_node, target, deadline, next_try;
    struct xfer_wait *next;
};

static void xfer_answer(struct xfer_wait *w, uint64_t term)
{
    struct bs_adm_transfer r = {w->shard_id, w->to_node, term};
    uint8_t *out = NULL;
    size_t len = 0;
    char em[256] = "";
    int rc = bs_adm_transfer_resp_encode(&r, &out, &len, em);
    reply_buf(w->call, rc, out, len, em);
}

void bs_node__admin_tick(struct bs_node *n)
{
    uint64_t now = bs_node__now();
    struct xfer_wait **pp = &n->xfers;
    while (*pp) {
        struct xfer_wait *w = *pp;
        struct bs_eng_group_info gi;
        int rc = bs_eng_store_group(n->store, w->shard_id, &gi);
        bool done = rc == 0 && gi.leader == w->target;
        if (done) {
            xfer_answer(w, gi.term);
        } else if (rc != 0 || now >= w->deadline) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "basalt: shard %" PRIu64 "'s leadership did not move "
                     "to node %" PRIu64 " within %d ms",
                     w->shard_id, w->to_node, BS_NODE_TRANSFER_MS);
            (void)bs_rpc_call_fail(w->call, rc ? rc : BS_ETIMEDOUT, msg);
            done = true;
        } else if (now >= w->next_try && gi.role == BS_RAFT_LEADER) {
            (void)bs_eng_store_transfer_leader(n->store, w->shard_id,
                                               w->target);
            w->next_try = now + 1000;
        }
        if (done) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

void bs_node__admin_fail_waiting(struct bs_node *n)
{
    while (n->xfers) {
        struct xfer_wait *w = n->xfers;
        n->xfers = w->next;
        (void)bs_rpc_call_fail(w->call, BS_EUNAVAIL,
                               "basalt: the node is stopping");
        free(w);
    }
}

/* CQ thread: the leader's node answered a forwarded transfer: relay. */
static void on_xfer_forwarded(void *ctx, const struct bs_rpc_result *res)
{
    struct bs_rpc_call *call = ctx;
    if (res->rc == 0)
        (void)bs_rpc_call_reply(call, res->data, res->len);
    else
        (void)bs_rpc_call_fail(call, res->rc, res->msg[0] ? res->msg : NULL);
}

static void answer_transfer(struct admin_task *t)
{
    struct bs_node *n = t->n;
    struct bs_adm_transfer req;
    char em[256] = "";
    int rc = bs_adm_transfer_req_decode(t->req, t->len, &req, em);
    if (rc != 0) {
        (void)bs_rpc_call_fail(t->call, rc, em);
        return;
    }
    const struct bs_pd_state *pd = bs_node__pd(n);
    const struct bs_pd_shard *ps =
        pd ? bs_pd_shard_find(pd, req.shard_id) : NULL;
    if (!pd) {
        (void)bs_rpc_call_fail(t->call, BS_EUNAVAIL,
                               "basalt: this node has no placement view yet");
        return;
    }
    if (!ps) {
        snprintf(em, sizeof(em), "basalt: there is no shard %" PRIu64,
                 req.shard_id);
        (void)bs_rpc_call_fail(t->call, BS_ENOTFOUND, em);
        return;
    }
    const struct bs_pd_replica *to = bs_pd_shard_replica_on(ps, req.node_id);
    if (!to || to->role != BS_PD_ROLE_VOTER) {
        snprintf(em, sizeof(em),
                 "basalt: node %" PRIu64 " holds no voting "
                 "replica of shard %" PRIu64,
                 req.node_id, req.shard_id);
        (void)bs_rpc_call_fail(t->call, BS_EINVAL, em);
        return;
    }
    struct bs_eng_group_info gi;
    bool local = bs_eng_store_group(n->store, req.shard_id, &gi) == 0;
    if (local && gi.leader == to->id) {
        struct xfer_wait w = {
            .call = t->call, .shard_id = req.shard_id, .to_node = req.node_id};
        xfer_answer(&w, gi.term);
        t->call = NULL;
        return;
    }
    if (local && gi.role == BS_RAFT_LEADER) {
        struct xfer_wait *w = calloc(1, sizeof(*w));
        if (!w) {
            (void)bs_rpc_call_fail(t->call, BS_ENOMEM, NULL);
            return;
        }
        uint64_t now = bs_node__now();
        *w = (struct xfer_wait){n,           t->call, req.shard_id,
                                req.node_id, to->id,  now + BS_NODE_TRANSFER_MS,
                                now + 1000,  n->xfers};
        n->xfers = w;
        t->call = NULL;
        (void)bs_eng_store_transfer_leader(n->store, req.shard_id, to->id);
        return;
    }
    /* The leader is elsewhere: ask its node (once; it does not forward). */
    uint64_t leader = local && gi.leader ? gi.leader : ps->leader;
    uint64_t node = leader ? BS_ENG_REPLICA_NODE(leader) : 0;
    struct bs_rpc_channel *ch =
        node && node != n->o.node_id ? bs_peer_net_channel(n->net, node) : NULL;
    if (t->forwarded || !ch) {
        snprintf(em, sizeof(em),
                 "basalt: shard %" PRIu64 " has no leader "
                 "this node can reach; try again",
                 req.shard_id);
        (void)bs_rpc_call_fail(t->call, BS_ENOTLEADER, em);
        return;
    }
    rc = bs_rpc_channel_call(ch, BS_ADM_METHOD_TRANSFER_LEADER, t->req, t->len,
                             BS_NODE_TRANSFER_MS + 1000, on_xfer_forwarded,
                             t->call);
    if (rc != 0)
        (void)bs_rpc_call_fail(t->call, BS_EUNREACHABLE,
                               "basalt: the shard leader's node is "
                               "unreachable");
    t->call = NULL;
}

static enum bs_node_pd_admin pd_kind(enum admin_kind kind)
{
    switch (kind) {
    case ADM_REMOVE_NODE:
        return BS_PD_ADMIN_REMOVE_NODE;
    case ADM_REBALANCE:
        return BS_PD_ADMIN_REBALANCE;
    case ADM_ISR_STATUS:
        return BS_PD_ADMIN_ISR_STATUS;
    case ADM_SPLIT:
        return BS_PD_ADMIN_SPLIT;
    case ADM_SCHEDULER:
        return BS_PD_ADMIN_SCHEDULER;
    default:
        return BS_PD_ADMIN_JOIN;
    }
}

static void task_admin(void *ctx, bool cancelled)
{
    struct admin_task *t = ctx;
    if (cancelled) {
        (void)bs_rpc_call_fail(t->call, BS_EUNAVAIL,
                               "basalt: the node is stopping");
    } else {
        switch (t->kind) {
        case ADM_CLUSTER_STATUS:
            answer_cluster_status(t);
            break;
        case ADM_SHARD_INFO:
            answer_shard_info(t);
            break;
        case ADM_PING:
            answer_ping(t);
            break;
        case ADM_ETCD_STATUS:
            answer_etcd_status(t);
            break;
        case ADM_MEMBER_LIST:
            answer_member_list(t);
            break;
        case ADM_TRANSFER_LEADER:
            answer_transfer(t);
            break;
        case ADM_JOIN:
        case ADM_REMOVE_NODE:
        case ADM_REBALANCE:
        case ADM_ISR_STATUS:
        case ADM_SPLIT:
        case ADM_SCHEDULER:
            bs_node__pd_admin(t->n, pd_kind(t->kind), t->call, t->req, t->len,
                              t->forwarded);
            t->call = NULL;
            break;
        }
    }
    free(t->req);
    free(t);
}

/* The requests of ClusterStatus, Status and MemberList have no fields,
 * but must still be valid protobuf (etcd refuses garbage the same way):
 * true if req decodes as the empty message. */
static bool empty_request_ok(enum admin_kind kind, const void *req, size_t len)
{
    pb_istream_t is = pb_istream_from_buffer(req, len);
    switch (kind) {
    case ADM_CLUSTER_STATUS: {
        basalt_ClusterStatusRequest m = basalt_ClusterStatusRequest_init_zero;
        return pb_decode(&is, basalt_ClusterStatusRequest_fields, &m);
    }
    case ADM_ETCD_STATUS: {
        etcdserverpb_StatusRequest m = etcdserverpb_StatusRequest_init_zero;
        return pb_decode(&is, etcdserverpb_StatusRequest_fields, &m);
    }
    case ADM_MEMBER_LIST: {
        etcdserverpb_MemberListRequest m =
            etcdserverpb_MemberListRequest_init_zero;
        return pb_decode(&is, etcdserverpb_MemberListRequest_fields, &m);
    }
    default:
        return true; /* the others decode their own */
    }
}

static void admin_unary(struct bs_rpc_call *call, const void *req, size_t len,
                        void *ctx)
{
    struct admin_method *m = ctx;
    if (!empty_request_ok(m->kind, req, len)) {
        (void)bs_rpc_call_fail(call, BS_EPROTO,
                               "basalt: the request is not a valid protobuf "
                               "message of its type");
        return;
    }
    struct admin_task *t = calloc(1, sizeof(*t));
    if (t)
        t->req = malloc(len ? len : 1);
    if (!t || !t->req) {
        if (t)
            free(t);
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
        return;
    }
    memcpy(t->req, req, len);
    t->len = len;
    t->n = m->n;
    t->call = call;
    t->kind = m->kind;
    t->forwarded = m->forwarded;
    if (bs_node__post(m->n, task_admin, t) != 0) {
        free(t->req);
        free(t);
        (void)bs_rpc_call_fail(call, BS_ENOMEM, NULL);
    }
}

int bs_node__admin_register(struct bs_node *n)
{
    static const struct {
        const char *name;
        enum admin_kind kind;
    } tab[] = {
        {"/basalt.Admin/ClusterStatus", ADM_CLUSTER_STATUS},
        {"/basalt.Admin/ShardInfo", ADM_SHARD_INFO},
        {"/basalt.Admin/Ping", ADM_PING},
        {"/etcdserverpb.Maintenance/Status", ADM_ETCD_STATUS},
        {"/etcdserverpb.Cluster/MemberList", ADM_MEMBER_LIST},
        {BS_ADM_METHOD_TRANSFER_LEADER, ADM_TRANSFER_LEADER},
        {BS_ADM_METHOD_JOIN, ADM_JOIN},
        {BS_ADM_METHOD_REMOVE_NODE, ADM_REMOVE_NODE},
        {BS_ADM_METHOD_REBALANCE, ADM_REBALANCE},
        {BS_ADM_METHOD_ISR_STATUS, ADM_ISR_STATUS},
        {BS_ADM_METHOD_SPLIT, ADM_SPLIT},
        {BS_ADM_METHOD_SCHEDULER, ADM_SCHEDULER},
    };
    /* On the peer port: Ping (nodes ask each other), and the calls a
     * node forwards to the node that can act on them, the shard leader's
     * (TransferLeader) or the placement leader's (the rest): acted on
     * there, never forwarded again. */
    static const struct {
        const char *name;
        enum admin_kind kind;
        bool forwarded;
    } peer_tab[] = {
        {BS_ADM_METHOD_PING, ADM_PING, false},
        {BS_ADM_METHOD_TRANSFER_LEADER, ADM_TRANSFER_LEADER, true},
        {BS_ADM_METHOD_JOIN, ADM_JOIN, true},
        {BS_ADM_METHOD_REMOVE_NODE, ADM_REMOVE_NODE, true},
        {BS_ADM_METHOD_REBALANCE, ADM_REBALANCE, true},
        {BS_ADM_METHOD_ISR_STATUS, ADM_ISR_STATUS, true},
        {BS_ADM_METHOD_SPLIT, ADM_SPLIT, true},
        {BS_ADM_METHOD_SCHEDULER, ADM_SCHEDULER, true},
    };
    size_t k = sizeof(tab) / sizeof(tab[0]);
    size_t kp = sizeof(peer_tab) / sizeof(peer_tab[0]);
    struct admin_method *ms = calloc(k + kp, sizeof(*ms));
    if (!ms)
        return BS_ENOMEM;
    n->admin_methods_ = ms;
    for (size_t i = 0; i < k; i++) {
        ms[i] = (struct admin_method){n, tab[i].kind, false};
        int rc = bs_rpc_server_add_unary(n->client_srv, tab[i].name,
                                         admin_unary, &ms[i]);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < kp; i++) {
        ms[k + i] =
            (struct admin_method){n, peer_tab[i].kind, peer_tab[i].forwarded};
        int rc = bs_rpc_server_add_unary(n->peer_srv, peer_tab[i].name,
                                         admin_unary, &ms[k + i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ----------------------------------------------------------- HTTP pages */

struct page_task {
    struct bs_node *n;
    bool metrics; /* else the status JSON */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    char *body;
    size_t len;
};

static void metrics_page(struct page_task *p)
{
    struct bs_node *n = p->n;
    struct bs_prom pr = {0};
    struct bs_eng_store_stats ss;
    bs_eng_store_stats(n->store, &ss);
    struct bs_peer_net_stats ps;
    bs_peer_net_stats(n->net, &ps);
    /* Operators and the scheduler as the committed placement state has
     * them: every node with a view reports the same values. */
    const struct bs_pd_state *pd = bs_node__pd(n);
    const struct {
        const char *name, *type, *help;
        double v;
    } m[] = {
        {"basalt_up", "gauge", "1 while the node serves", 1},
        {"basalt_ready", "gauge", "1 once the node has a placement view",
         bs_node_ready(n) ? 1 : 0},
        {"basalt_uptime_seconds", "gauge", "Seconds since the node started",
         (double)(bs_node__now() - n->start_ms) / 1000.0},
        {"basalt_kv_requests_total", "counter",
         "etcd KV requests received (client and forwarded)",
         (double)n->kv_requests},
        {"basalt_kv_errors_total", "counter",
         "etcd KV requests answered with an error", (double)n->kv_errors},
        {"basalt_forwarded_out_total", "counter",
         "Request pieces forwarded to another node", (double)n->forwarded_out},
        {"basalt_forwarded_in_total", "counter",
         "Requests forwarded here by another node", (double)n->forwarded_in},
        {"basalt_store_rounds_total", "counter", "Store loop rounds with work",
         (double)ss.rounds},
        {"basalt_store_fsyncs_total", "counter", "Synced raft log batches",
         (double)ss.fsyncs},
        {"basalt_store_entries_persisted_total", "counter",
         "Raft entries persisted", (double)ss.entries_persisted},
        {"basalt_store_entries_applied_total", "counter",
         "Raft entries applied", (double)ss.entries_applied},
        {"basalt_store_messages_sent_total", "counter", "Raft messages sent",
         (double)ss.msgs_sent},
        {"basalt_store_snapshots_sent_total", "counter", "Snapshots sent",
         (double)ss.snapshots_sent},
        {"basalt_store_snapshots_applied_total", "counter",
         "Snapshots installed", (double)ss.snapshots_applied},
        {"basalt_store_compactions_total", "counter", "Raft log compactions",
         (double)ss.compactions},
        {"basalt_shard_replicas", "gauge", "Shard replicas on this node",
         (double)ss.groups},
        {"basalt_shard_replicas_asleep", "gauge", "Shard replicas hibernating",
         (double)ss.groups_asleep},
        {"basalt_peer_batches_sent_total", "counter",
         "Raft batches sent to peers", (double)ps.batches_sent},
        {"basalt_peer_batches_refused_total", "counter",
         "Raft batches refused (peer unreachable)", (double)ps.batches_refused},
        {"basalt_peer_batches_received_total", "counter",
         "Raft batches received", (double)ps.batches_received},
        {"basalt_peer_batches_rejected_total", "counter",
         "Raft batches rejected as malformed", (double)ps.batches_rejected},
        {"basalt_peer_snapshot_bytes_sent_total", "counter",
         "Snapshot bytes sent", (double)ps.snap_bytes_sent},
        {"basalt_peer_snapshot_bytes_received_total", "counter",
         "Snapshot bytes received", (double)ps.snap_bytes_received},
        {"basalt_isr_shrinks_total", "counter",
         "Replicas that left the ISR of a shard led here",
         (double)n->isr_shrinks},
        {"basalt_isr_expands_total", "counter",
         "Replicas that joined the ISR of a shard led here",
         (double)n->isr_expands},
        {"basalt_heartbeats_sent_total", "counter",
         "Node heartbeats sent to the placement leader", (double)n->hb_sent},
        {"basalt_heartbeats_failed_total", "counter",
         "Node heartbeats that did not reach the placement leader",
         (double)n->hb_failed},
        {"basalt_operators_in_flight", "gauge",
         "Placement operators (moves, leader transfers, splits) in flight",
         pd ? (double)bs_pd_op_count(pd) : 0},
        {"basalt_operators_finished_total", "counter",
         "Placement operators finished since the cluster started",
         pd ? (double)bs_pd_ops_finished(pd) : 0},
        {"basalt_operators_cancelled_total", "counter",
         "Placement operators cancelled since the cluster started",
         pd ? (double)bs_pd_ops_cancelled(pd) : 0},
        {"basalt_scheduler_paused", "gauge", "1 while the scheduler is paused",
         pd && bs_pd_sched(pd)->paused ? 1 : 0},
        {"basalt_replicas_created_total", "counter",
         "Replicas created on this node for operators",
         (double)n->replicas_created},
        {"basalt_replicas_collected_total", "counter",
         "Stale replicas removed from this node",
         (double)n->replicas_collected},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        bs_prom_metric(&pr, m[i].name, m[i].type, m[i].help);
        bs_prom_sample(&pr, m[i].name, NULL, m[i].v);
    }
    /* Per shard replica: role and indexes. */
    bs_prom_metric(&pr, "basalt_shard_is_leader", "gauge",
                   "1 if this node's replica leads the shard");
    uint64_t ids[1024];
    size_t ng = bs_eng_store_groups(n->store, ids, 1024);
    for (size_t i = 0; i < ng && i < 1024; i++) {
        struct bs_eng_group_info gi;
        if (bs_eng_store_group(n->store, ids[i], &gi) != 0)
            continue;
        char lab[48];
        snprintf(lab, sizeof(lab), "shard=\"%" PRIu64 "\"", ids[i]);
        bs_prom_sample(&pr, "basalt_shard_is_leader", lab,
                       gi.role == BS_RAFT_LEADER ? 1 : 0);
    }
    bs_prom_metric(&pr, "basalt_shard_applied_index", "gauge",
                   "Last Raft index applied by this node's replica");
    for (size_t i = 0; i < ng && i < 1024; i++) {
        struct bs_eng_group_info gi;
        if (bs_eng_store_group(n->store, ids[i], &gi) != 0)
            continue;
        char lab[48];
        snprintf(lab, sizeof(lab), "shard=\"%" PRIu64 "\"", ids[i]);
        bs_prom_sample(&pr, "basalt_shard_applied_index", lab,
                       (double)gi.applied);
    }
    /* ISR of the shards led here (the others' leaders report theirs). */
    bs_prom_metric(&pr, "basalt_shard_isr_size", "gauge",
                   "Replicas in sync, leader included, of a shard led here");
    for (size_t i = 0; i < ng && i < 1024; i++) {
        const struct node_shard_stat *s = bs_node__shard_stat(n, ids[i]);
        if (!s || !s->leading)
            continue;
        char lab[48];
        snprintf(lab, sizeof(lab), "shard=\"%" PRIu64 "\"", ids[i]);
        bs_prom_sample(&pr, "basalt_shard_isr_size", lab, (double)s->n_isr);
    }
    bs_prom_metric(&pr, "basalt_shard_under_min_isr", "gauge",
                   "1 if fewer voters than min_insync_replicas are in sync "
                   "(writes refused) on a shard led here");
    for (size_t i = 0; i < ng && i < 1024; i++) {
        const struct node_shard_stat *s = bs_node__shard_stat(n, ids[i]);
        if (!s || !s->leading)
            continue;
        char lab[48];
        snprintf(lab, sizeof(lab), "shard=\"%" PRIu64 "\"", ids[i]);
        bs_prom_sample(
            &pr, "basalt_shard_under_min_isr", lab,
            s->voters_in_sync < bs_node__min_insync(n, s->voters) ? 1 : 0);
    }
    p->rc = pr.err;
    p->body = pr.buf;
    p->len = pr.len;
    if (p->rc != 0) {
        free(pr.buf);
        p->body = NULL;
    }
}

static char *hex_or_text(const uint8_t *b, size_t len)
{
    bool text = true;
    for (size_t i = 0; i < len; i++)
        text &= b[i] >= 0x20 && b[i] < 0x7f;
    char *s = malloc(2 * len + 3);
    if (!s)
        return NULL;
    if (text) {
        if (len)
            memcpy(s, b, len);
        s[len] = '\0';
    } else {
        s[0] = '0';
        s[1] = 'x';
        for (size_t i = 0; i < len; i++)
            sprintf(s + 2 + 2 * i, "%02x", b[i]);
        s[2 + 2 * len] = '\0';
    }
    return s;
}

static void status_page(struct page_task *p)
{
    struct bs_node *n = p->n;
    struct bs_adm_status st;
    int rc = cluster_view(n, &st);
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        if (rc == 0)
            view_free(&st);
        p->rc = BS_ENOMEM;
        return;
    }
    char idbuf[32];
    snprintf(idbuf, sizeof(idbuf), "%016" PRIx64, n->cluster_id);
    cJSON_AddStringToObject(root, "cluster_id", idbuf);
    cJSON_AddNumberToObject(root, "node_id", (double)n->o.node_id);
    cJSON_AddBoolToObject(root, "ready", bs_node_ready(n));
    cJSON_AddStringToObject(root, "version", BS_NODE_VERSION);
    cJSON_AddStringToObject(root, "client_addr", n->o.client_addr);
    cJSON_AddStringToObject(root, "peer_addr", n->o.peer_addr);
    if (rc == 0) {
        cJSON *nodes = cJSON_AddArrayToObject(root, "nodes");
        for (size_t i = 0; nodes && i < st.n_nodes; i++) {
            cJSON *o = cJSON_CreateObject();
            if (!o)
                break;
            cJSON_AddNumberToObject(o, "id", (double)st.nodes[i].id);
            cJSON_AddStringToObject(o, "client_addr", st.nodes[i].client_addr);
            cJSON_AddBoolToObject(o, "alive", st.nodes[i].alive);
            cJSON_AddStringToObject(o, "state", st.nodes[i].state);
            cJSON_AddNumberToObject(o, "replicas", st.nodes[i].replicas);
            cJSON_AddNumberToObject(o, "leaders", st.nodes[i].leaders);
            cJSON_AddItemToArray(nodes, o);
        }
        cJSON *shards = cJSON_AddArrayToObject(root, "shards");
        for (size_t i = 0; shards && i < st.n_shards; i++) {
            const struct bs_adm_shard *sh = &st.shards[i];
            cJSON *o = cJSON_CreateObject();
            if (!o)
                break;
            cJSON_AddNumberToObject(o, "id", (double)sh->id);
            char *s = hex_or_text(sh->start, sh->start_len);
            char *e = hex_or_text(sh->end, sh->end_len);
            cJSON_AddStringToObject(o, "start", s ? s : "");
            cJSON_AddStringToObject(o, "end", e ? e : "");
            free(s);
            free(e);
            cJSON_AddNumberToObject(o, "leader_node", (double)sh->leader_node);
            cJSON_AddNumberToObject(o, "term", (double)sh->term);
            cJSON_AddNumberToObject(o, "applied", (double)sh->applied);
            cJSON_AddItemToArray(shards, o);
        }
        view_free(&st);
    }
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!out) {
        p->rc = BS_ENOMEM;
        return;
    }
    p->len = strlen(out);
    p->body = malloc(p->len + 2);
    if (!p->body) {
        cJSON_free(out);
        p->rc = BS_ENOMEM;
        return;
    }
    memcpy(p->body, out, p->len);
    p->body[p->len++] = '\n';
    cJSON_free(out);
    p->rc = 0;
}

static void task_page(void *ctx, bool cancelled)
{
    struct page_task *p = ctx;
    if (cancelled)
        p->rc = BS_ESTOPPED;
    else if (p->metrics)
        metrics_page(p);
    else
        status_page(p);
    pthread_mutex_lock(&p->mu);
    p->done = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static int page(struct bs_node *n, bool metrics, char **body, size_t *len)
{
    struct page_task p = {.n = n, .metrics = metrics};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    int rc = bs_node__post(n, task_page, &p);
    if (rc == 0) {
        pthread_mutex_lock(&p.mu);
        while (!p.done)
            pthread_cond_wait(&p.cv, &p.mu);
        pthread_mutex_unlock(&p.mu);
        rc = p.rc;
    }
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    *body = p.body;
    *len = p.len;
    return rc;
}

int bs_node__metrics(void *ctx, char **body, size_t *len)
{
    return page(ctx, true, body, len);
}

int bs_node__status_json(void *ctx, char **body, size_t *len)
{
    return page(ctx, false, body, len);
}
