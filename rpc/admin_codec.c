/*
 * admin_codec.c - nanopb callbacks for the operator's messages: basalt.Admin
 * (cluster status, shard info, ping, transfer leader; join, remove node,
 * rebalance, ISR status, split, scheduler) and etcd's Maintenance.Status,
 * Cluster.MemberList and KV.Compact.
 *
 * The machinery is codec.c's, in a smaller form: every unbounded field of
 * the generated structs is a pb_callback_t (rpc/proto/admin.options and
 * rpc.options). Encoding first checks the whole C struct (so that no
 * callback has to fail halfway through a sizing pass), then points each
 * callback at a small source record on the stack; nanopb calls encode
 * callbacks more than once, so they are pure functions of their source.
 * Decoding points each callback at its destination in the C struct with
 * the limit that applies; a callback that fails records a BS_E* code and
 * a sentence in struct bs_rpc__dec, and the first error wins.
 *
 * Every decoder copies (see admin_codec.h). The wire-type trap of codec.c
 * applies here too: for a callback field sent with a non-length-delimited
 * wire type nanopb hands the callback a substream over a copy on its own
 * stack, so bs_rpc__dec_in_buf() checks that a callback's stream lies inside
 * the caller's buffer and calls the field malformed otherwise.
 *
 * Partial results are freed on error by the same free functions the
 * caller uses: an element is counted in its array before it is decoded,
 * so whatever it already owns is found and freed.
 *
 * Two message parts appear in several messages and have one encoder and
 * one decoder each: NodeStatus (ClusterStatusResponse, JoinResponse) and
 * Operator (RebalanceResponse's plan and in_flight, SchedulerResponse).
 * BS_ADM_MAX_OPS bounds the operators of a whole message, so the plan and
 * in_flight of one RebalanceResponse share it.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "admin.pb.h"
#include "admin_codec.h"
#include "pb_int.h"
#include "rpc.pb.h"


/* ============================================================ encoding */

/* A C string (checked NUL-terminated beforehand). */
static pb_callback_t enc_str(struct bs_rpc__bytes *b, const char *s)
{
    return bs_rpc__enc_bytes(b, s, strlen(s));
}

/* A repeated string of zero elements (s empty) or one. */
static pb_callback_t enc_str_list(struct bs_rpc__bytes *b, const char *s)
{
    pb_callback_t cb = enc_str(b, s);

    b->always = b->len > 0;
    return cb;
}

/* Encodes msg into a malloc'd buffer of exactly its size. The structs are
 * checked before, so a failure here is out of memory or a bug. */
static int encode(const pb_msgdesc_t *fields, const void *msg, const char *what,
                  uint8_t **out, size_t *len, char *errmsg)
{
    return bs_rpc__encode(fields, msg, what, NULL, errmsg, out, len);
}

/* A string field of a struct is NUL-terminated within its array. */
static int check_str(const char *s, size_t cap, const char *what, char *errmsg)
{
    if (memchr(s, '\0', cap) == NULL) {
        bs_rpc__set_msg(errmsg, "%s is not NUL-terminated within its %zu bytes",
                        what, cap);
        return BS_EINVAL;
    }
    return 0;
}

static int check_node(const struct bs_adm_node *n, size_t i, char *errmsg)
{
    const struct {
        const char *name;
        const char *s;
        size_t cap;
    } f[] = {
        {"client_addr", n->client_addr, sizeof n->client_addr},
        {"peer_addr", n->peer_addr, sizeof n->peer_addr},
        {"http_addr", n->http_addr, sizeof n->http_addr},
        {"state", n->state, sizeof n->state},
        {"rack", n->rack, sizeof n->rack},
    };
    char what[64];
    int rc;

    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        snprintf(what, sizeof what, "nodes[%zu].%s", i, f[k].name);
        if ((rc = check_str(f[k].s, f[k].cap, what, errmsg)) != 0)
            return rc;
    }
    return 0;
}

/* A list of nodes an encoder is given: at most BS_ADM_MAX_NODES, an
 * array when there are any, every string terminated. */
static int check_nodes(const struct bs_adm_node *nodes, size_t n, char *errmsg)
{
    int rc;

    if (n > BS_ADM_MAX_NODES || (n > 0 && nodes == NULL)) {
        bs_rpc__set_msg(errmsg, "%zu nodes: at most %d, and not NULL", n,
                        BS_ADM_MAX_NODES);
        return BS_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = check_node(&nodes[i], i, errmsg)) != 0)
            return rc;
    return 0;
}

static int check_shard(const struct bs_adm_shard *sh, char *errmsg)
{
    if (sh->n_replicas > BS_RAFT_MAX_MEMBERS) {
        bs_rpc__set_msg(errmsg, "shard %llu has %u replicas, more than %d",
                        (unsigned long long)sh->id, sh->n_replicas,
                        BS_RAFT_MAX_MEMBERS);
        return BS_EINVAL;
    }
    if (sh->start_len > BS_ADM_MAX_KEY || sh->end_len > BS_ADM_MAX_KEY) {
        bs_rpc__set_msg(errmsg,
                        "shard %llu: a boundary is longer than %d bytes",
                        (unsigned long long)sh->id, BS_ADM_MAX_KEY);
        return BS_EINVAL;
    }
    if ((sh->start_len > 0 && sh->start == NULL) ||
        (sh->end_len > 0 && sh->end == NULL)) {
        bs_rpc__set_msg(errmsg, "shard %llu: a boundary is NULL with a length",
                        (unsigned long long)sh->id);
        return BS_EINVAL;
    }
    return 0;
}

/* ============================================================ decoding */


/* Runs pb_decode over the whole of buf; returns 0 or the first error. */
static int dec_run(struct bs_rpc__dec *d, const uint8_t *buf, size_t len,
                   const pb_msgdesc_t *fields, void *msg, const char *what)
{
    pb_istream_t s;

    if (!bs_rpc__dec_check_size(d, len, what))
        return d->err;
    s = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&s, fields, msg) && d->err == 0)
        bs_rpc__dec_pb_fail(d, &s, what);
    return d->err;
}

/* A string into a char array of cap bytes (with its NUL). first_only: an
 * element of a repeated string of which only the first is kept. */
struct str_dst {
    struct bs_rpc__dec *d;
    const char *what;
    char *dst;
    size_t cap;
    bool first_only;
    bool seen;
};

static bool str_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct str_dst *sd = *arg;
    size_t n = s->bytes_left;

    (void)f;
    if (!bs_rpc__dec_in_buf(sd->d, s, sd->what))
        return false;
    if (sd->first_only && sd->seen) {
        if (!pb_read(s, NULL, n))
            return bs_rpc__dec_pb_fail(sd->d, s, sd->what);
        return true;
    }
    if (n >= sd->cap)
        return bs_rpc__dec_fail(sd->d, BS_ETOOBIG,
                                "%s is %zu bytes, more than the limit of %zu",
                                sd->what, n, sd->cap - 1);
    if (!pb_read(s, (pb_byte_t *)sd->dst, n))
        return bs_rpc__dec_pb_fail(sd->d, s, sd->what);
    if (memchr(sd->dst, '\0', n) != NULL) {
        sd->dst[0] = '\0';
        return bs_rpc__dec_fail(sd->d, BS_EPROTO, "malformed %s: a NUL byte",
                                sd->what);
    }
    sd->dst[n] = '\0';
    sd->seen = true;
    return true;
}

static pb_callback_t str(struct str_dst *sd, struct bs_rpc__dec *d,
                         const char *what, char *dst, size_t cap,
                         bool first_only)
{
    pb_callback_t cb;

    sd->d = d;
    sd->what = what;
    sd->dst = dst;
    sd->cap = cap;
    sd->first_only = first_only;
    sd->seen = false;
    dst[0] = '\0';
    cb.funcs.decode = str_cb;
    cb.arg = sd;
    return cb;
}

/* ================================================= ResponseHeader */

static etcdserverpb_ResponseHeader header_to_pb(const struct bs_rpc_header *h)
{
    etcdserverpb_ResponseHeader ph = etcdserverpb_ResponseHeader_init_zero;

    ph.cluster_id = h->cluster_id;
    ph.member_id = h->member_id;
    ph.revision = h->revision;
    ph.raft_term = h->raft_term;
    return ph;
}

static void header_from_pb(const etcdserverpb_ResponseHeader *ph,
                           struct bs_rpc_header *h)
{
    h->cluster_id = ph->cluster_id;
    h->member_id = ph->member_id;
    h->revision = ph->revision;
    h->raft_term = ph->raft_term;
}

/* ================================================= shards: encoding */

struct replicas_src {
    const struct bs_adm_replica *r;
    uint32_t n;
};

static bool enc_replicas_cb(pb_ostream_t *s, const pb_field_t *f,
                            void *const *arg)
{
    const struct replicas_src *rs = *arg;

    for (uint32_t i = 0; i < rs->n; i++) {
        basalt_ReplicaStatus pr = basalt_ReplicaStatus_init_zero;

        pr.id = rs->r[i].id;
        pr.node_id = rs->r[i].node_id;
        pr.learner = rs->r[i].learner;
        pr.match = rs->r[i].match;
        pr.in_sync = rs->r[i].in_sync;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_ReplicaStatus_fields, &pr))
            return false;
    }
    return true;
}

/* The sources a ShardStatus's callbacks point at. */
struct shard_src {
    struct bs_rpc__bytes start, end;
    struct replicas_src reps;
};

static void shard_to_pb(const struct bs_adm_shard *sh, basalt_ShardStatus *ps,
                        struct shard_src *x)
{
    ps->id = sh->id;
    ps->start = bs_rpc__enc_bytes(&x->start, sh->start, sh->start_len);
    ps->end = bs_rpc__enc_bytes(&x->end, sh->end, sh->end_len);
    ps->conf_ver = sh->conf_ver;
    ps->version = sh->version;
    ps->leader = sh->leader;
    ps->leader_node = sh->leader_node;
    ps->term = sh->term;
    ps->commit = sh->commit;
    ps->applied = sh->applied;
    ps->revision = sh->revision;
    x->reps.r = sh->replicas;
    x->reps.n = sh->n_replicas;
    ps->replicas.funcs.encode = enc_replicas_cb;
    ps->replicas.arg = &x->reps;
}

/* ================================================= shards: decoding */

struct replicas_dst {
    struct bs_rpc__dec *d;
    struct bs_adm_shard *sh;
};

static bool dec_replica_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct replicas_dst *rd = *arg;
    basalt_ReplicaStatus pr = basalt_ReplicaStatus_init_zero;
    struct bs_adm_replica *r;

    (void)f;
    if (!bs_rpc__dec_in_buf(rd->d, s, "ShardStatus.replicas"))
        return false;
    if (rd->sh->n_replicas >= BS_RAFT_MAX_MEMBERS)
        return bs_rpc__dec_fail(rd->d, BS_EPROTO,
                                "ShardStatus.replicas: more than %d replicas",
                                BS_RAFT_MAX_MEMBERS);
    if (!pb_decode(s, basalt_ReplicaStatus_fields, &pr))
        return bs_rpc__dec_pb_fail(rd->d, s, "ShardStatus.replicas");
    r = &rd->sh->replicas[rd->sh->n_replicas++];
    r->id = pr.id;
    r->node_id = pr.node_id;
    r->learner = pr.learner;
    r->match = pr.match;
    r->in_sync = pr.in_sync;
    return true;
}

/* The destinations a ShardStatus's callbacks point at. */
struct shard_dst {
    struct bs_rpc__copy start, end;
    struct replicas_dst reps;
};

static void shard_dec_setup(struct bs_rpc__dec *d, basalt_ShardStatus *ps,
                            struct bs_adm_shard *sh, struct shard_dst *x)
{
    ps->start = bs_rpc__copy_cb(&x->start, d, "ShardStatus.start",
                                BS_ADM_MAX_KEY, &sh->start, &sh->start_len);
    ps->end = bs_rpc__copy_cb(&x->end, d, "ShardStatus.end", BS_ADM_MAX_KEY,
                              &sh->end, &sh->end_len);
    x->reps.d = d;
    x->reps.sh = sh;
    ps->replicas.funcs.decode = dec_replica_cb;
    ps->replicas.arg = &x->reps;
}

static void shard_from_pb(const basalt_ShardStatus *ps, struct bs_adm_shard *sh)
{
    sh->id = ps->id;
    sh->conf_ver = ps->conf_ver;
    sh->version = ps->version;
    sh->leader = ps->leader;
    sh->leader_node = ps->leader_node;
    sh->term = ps->term;
    sh->commit = ps->commit;
    sh->applied = ps->applied;
    sh->revision = ps->revision;
}

void bs_adm_shard_free(struct bs_adm_shard *sh)
{
    if (sh == NULL)
        return;
    free(sh->start);
    free(sh->end);
    memset(sh, 0, sizeof *sh);
}

/* ================================================== nodes: encoding */

/* The sources a NodeStatus's callbacks point at. */
struct node_src {
    struct bs_rpc__bytes client, peer, http, state, rack;
};

static void node_to_pb(const struct bs_adm_node *n, basalt_NodeStatus *pn,
                       struct node_src *x)
{
    pn->id = n->id;
    pn->client_addr = enc_str(&x->client, n->client_addr);
    pn->peer_addr = enc_str(&x->peer, n->peer_addr);
    pn->http_addr = enc_str(&x->http, n->http_addr);
    pn->alive = n->alive;
    pn->replicas = n->replicas;
    pn->leaders = n->leaders;
    pn->state = enc_str(&x->state, n->state);
    pn->rack = enc_str(&x->rack, n->rack);
    pn->used_bytes = n->used_bytes;
    pn->capacity_bytes = n->capacity_bytes;
    pn->available_bytes = n->available_bytes;
    pn->heard_ms_ago = n->heard_ms_ago;
}

/* The repeated NodeStatus of a ClusterStatusResponse or JoinResponse. */
struct nodes_src {
    const struct bs_adm_node *nodes;
    size_t n;
};

static bool enc_nodes_cb(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct nodes_src *ns = *arg;

    for (size_t i = 0; i < ns->n; i++) {
        basalt_NodeStatus pn = basalt_NodeStatus_init_zero;
        struct node_src x;

        node_to_pb(&ns->nodes[i], &pn, &x);
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_NodeStatus_fields, &pn))
            return false;
    }
    return true;
}

static pb_callback_t enc_nodes(struct nodes_src *ns,
                               const struct bs_adm_node *nodes, size_t n)
{
    pb_callback_t cb;

    ns->nodes = nodes;
    ns->n = n;
    cb.funcs.encode = enc_nodes_cb;
    cb.arg = ns;
    return cb;
}

/* ================================================== nodes: decoding */

/* Where the repeated NodeStatus of message msg (field "msg.nodes") is
 * decoded to: a growing array, counted in *n. */
struct nodes_dst {
    struct bs_rpc__dec *d;
    const char *msg, *field;
    struct bs_adm_node **nodes;
    size_t *n;
    size_t cap;
};

static bool dec_node_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct nodes_dst *nd = *arg;
    struct bs_rpc__dec *d = nd->d;
    basalt_NodeStatus pn = basalt_NodeStatus_init_zero;
    struct str_dst a, b, c, st, rk;
    struct bs_adm_node *n;
    void *grown;

    (void)f;
    if (!bs_rpc__dec_in_buf(d, s, nd->field))
        return false;
    if (*nd->n >= BS_ADM_MAX_NODES)
        return bs_rpc__dec_fail(d, BS_ETOOBIG, "%s has more than %d nodes",
                                nd->msg, BS_ADM_MAX_NODES);
    grown = bs_rpc__grow(*nd->nodes, &nd->cap, *nd->n, sizeof *n);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM, "out of memory decoding nodes");
    *nd->nodes = grown;
    n = &(*nd->nodes)[(*nd->n)++];
    memset(n, 0, sizeof *n);
    pn.client_addr = str(&a, d, "NodeStatus.client_addr", n->client_addr,
                         sizeof n->client_addr, false);
    pn.peer_addr = str(&b, d, "NodeStatus.peer_addr", n->peer_addr,
                       sizeof n->peer_addr, false);
    pn.http_addr = str(&c, d, "NodeStatus.http_addr", n->http_addr,
                       sizeof n->http_addr, false);
    pn.state =
        str(&st, d, "NodeStatus.state", n->state, sizeof n->state, false);
    pn.rack = str(&rk, d, "NodeStatus.rack", n->rack, sizeof n->rack, false);
    if (!pb_decode(s, basalt_NodeStatus_fields, &pn))
        return bs_rpc__dec_pb_fail(d, s, nd->field);
    n->id = pn.id;
    n->alive = pn.alive;
    n->replicas = pn.replicas;
    n->leaders = pn.leaders;
    n->used_bytes = pn.used_bytes;
    n->capacity_bytes = pn.capacity_bytes;
    n->available_bytes = pn.available_bytes;
    n->heard_ms_ago = pn.heard_ms_ago;
    return true;
}

static pb_callback_t dec_nodes(struct nodes_dst *nd, struct bs_rpc__dec *d,
                               const char *msg, const char *field,
                               struct bs_adm_node **nodes, size_t *n)
{
    pb_callback_t cb;

    nd->d = d;
    nd->msg = msg;
    nd->field = field;
    nd->nodes = nodes;
    nd->n = n;
    nd->cap = 0;
    cb.funcs.decode = dec_node_cb;
    cb.arg = nd;
    return cb;
}

/* ===================================================== ClusterStatus */

static bool enc_shards_cb(pb_ostream_t *s, const pb_field_t *f,
                          void *const *arg)
{
    const struct bs_adm_status *st = *arg;

    for (size_t i = 0; i < st->n_shards; i++) {
        basalt_ShardStatus ps = basalt_ShardStatus_init_zero;
        struct shard_src x;

        shard_to_pb(&st->shards[i], &ps, &x);
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_ShardStatus_fields, &ps))
            return false;
    }
    return true;
}

int bs_adm_status_encode(const struct bs_adm_status *st, uint8_t **out,
                         size_t *len, char *errmsg)
{
    basalt_ClusterStatusResponse pm = basalt_ClusterStatusResponse_init_zero;
    struct nodes_src ns;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_nodes(st->nodes, st->n_nodes, errmsg)) != 0)
        return rc;
    if (st->n_shards > BS_ADM_MAX_SHARDS ||
        (st->n_shards > 0 && st->shards == NULL)) {
        bs_rpc__set_msg(errmsg, "%zu shards: at most %d, and not NULL",
                        st->n_shards, BS_ADM_MAX_SHARDS);
        return BS_EINVAL;
    }
    for (size_t i = 0; i < st->n_shards; i++)
        if ((rc = check_shard(&st->shards[i], errmsg)) != 0)
            return rc;
    pm.cluster_id = st->cluster_id;
    pm.node_id = st->node_id;
    pm.nodes = enc_nodes(&ns, st->nodes, st->n_nodes);
    pm.shards.funcs.encode = enc_shards_cb;
    pm.shards.arg = (void *)st;
    return encode(basalt_ClusterStatusResponse_fields, &pm,
                  "ClusterStatusResponse", out, len, errmsg);
}

struct status_dst {
    struct bs_rpc__dec *d;
    struct bs_adm_status *st;
    size_t shards_cap;
};

static bool dec_shard_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct status_dst *sd = *arg;
    struct bs_rpc__dec *d = sd->d;
    struct bs_adm_status *st = sd->st;
    basalt_ShardStatus ps = basalt_ShardStatus_init_zero;
    struct shard_dst x;
    struct bs_adm_shard *sh;
    void *grown;

    (void)f;
    if (!bs_rpc__dec_in_buf(d, s, "ClusterStatusResponse.shards"))
        return false;
    if (st->n_shards >= BS_ADM_MAX_SHARDS)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "ClusterStatusResponse has more than %d shards",
                                BS_ADM_MAX_SHARDS);
    grown = bs_rpc__grow(st->shards, &sd->shards_cap, st->n_shards, sizeof *sh);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM, "out of memory decoding shards");
    st->shards = grown;
    /* Counted at once, so that an error frees its keys too. */
    sh = &st->shards[st->n_shards++];
    memset(sh, 0, sizeof *sh);
    shard_dec_setup(d, &ps, sh, &x);
    if (!pb_decode(s, basalt_ShardStatus_fields, &ps))
        return bs_rpc__dec_pb_fail(d, s, "ClusterStatusResponse.shards");
    shard_from_pb(&ps, sh);
    return true;
}

int bs_adm_status_decode(const uint8_t *buf, size_t len,
                         struct bs_adm_status *st, char *errmsg)
{
    basalt_ClusterStatusResponse pm = basalt_ClusterStatusResponse_init_zero;
    struct bs_rpc__dec d;
    struct status_dst sd;
    struct nodes_dst nd;
    int rc;

    memset(st, 0, sizeof *st);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    memset(&sd, 0, sizeof sd);
    sd.d = &d;
    sd.st = st;
    pm.nodes =
        dec_nodes(&nd, &d, "ClusterStatusResponse",
                  "ClusterStatusResponse.nodes", &st->nodes, &st->n_nodes);
    pm.shards.funcs.decode = dec_shard_cb;
    pm.shards.arg = &sd;
    rc = dec_run(&d, buf, len, basalt_ClusterStatusResponse_fields, &pm,
                 "ClusterStatusResponse");
    if (rc != 0) {
        bs_adm_status_free(st);
        return rc;
    }
    st->cluster_id = pm.cluster_id;
    st->node_id = pm.node_id;
    return 0;
}

void bs_adm_status_free(struct bs_adm_status *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n_shards; i++)
        bs_adm_shard_free(&st->shards[i]);
    free(st->shards);
    free(st->nodes);
    memset(st, 0, sizeof *st);
}

/* ========================================================= ShardInfo */

int bs_adm_shard_info_req_encode(uint64_t shard_id, const uint8_t *key,
                                 size_t key_len, uint8_t **out, size_t *len,
                                 char *errmsg)
{
    basalt_ShardInfoRequest pm = basalt_ShardInfoRequest_init_zero;
    struct bs_rpc__bytes k;

    *out = NULL;
    *len = 0;
    if (key_len > BS_ADM_MAX_KEY || (key_len > 0 && key == NULL)) {
        bs_rpc__set_msg(errmsg, "key of %zu bytes: at most %d, and not NULL",
                        key_len, BS_ADM_MAX_KEY);
        return BS_EINVAL;
    }
    pm.shard_id = shard_id;
    pm.key = bs_rpc__enc_bytes(&k, key, key_len);
    return encode(basalt_ShardInfoRequest_fields, &pm, "ShardInfoRequest", out,
                  len, errmsg);
}

int bs_adm_shard_info_req_decode(const uint8_t *buf, size_t len,
                                 uint64_t *shard_id, uint8_t **key,
                                 size_t *key_len, char *errmsg)
{
    basalt_ShardInfoRequest pm = basalt_ShardInfoRequest_init_zero;
    struct bs_rpc__dec d;
    struct bs_rpc__copy k;
    int rc;

    *shard_id = 0;
    *key = NULL;
    *key_len = 0;
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.key = bs_rpc__copy_cb(&k, &d, "ShardInfoRequest.key", BS_ADM_MAX_KEY,
                             key, key_len);
    rc = dec_run(&d, buf, len, basalt_ShardInfoRequest_fields, &pm,
                 "ShardInfoRequest");
    if (rc != 0) {
        free(*key);
        *key = NULL;
        *key_len = 0;
        return rc;
    }
    *shard_id = pm.shard_id;
    return 0;
}

int bs_adm_shard_info_resp_encode(const struct bs_adm_shard *sh, uint8_t **out,
                                  size_t *len, char *errmsg)
{
    basalt_ShardInfoResponse pm = basalt_ShardInfoResponse_init_zero;
    struct shard_src x;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_shard(sh, errmsg)) != 0)
        return rc;
    pm.has_shard = true;
    shard_to_pb(sh, &pm.shard, &x);
    return encode(basalt_ShardInfoResponse_fields, &pm, "ShardInfoResponse",
                  out, len, errmsg);
}

int bs_adm_shard_info_resp_decode(const uint8_t *buf, size_t len,
                                  struct bs_adm_shard *sh, char *errmsg)
{
    basalt_ShardInfoResponse pm = basalt_ShardInfoResponse_init_zero;
    struct bs_rpc__dec d;
    struct shard_dst x;
    int rc;

    memset(sh, 0, sizeof *sh);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    shard_dec_setup(&d, &pm.shard, sh, &x);
    rc = dec_run(&d, buf, len, basalt_ShardInfoResponse_fields, &pm,
                 "ShardInfoResponse");
    if (rc == 0 && !pm.has_shard) {
        bs_rpc__dec_fail(&d, BS_EPROTO,
                         "malformed ShardInfoResponse: no shard");
        rc = d.err;
    }
    if (rc != 0) {
        bs_adm_shard_free(sh);
        return rc;
    }
    shard_from_pb(&pm.shard, sh);
    return 0;
}

/* ============================================================== Ping */

int bs_adm_ping_req_encode(const struct bs_adm_ping *p, uint8_t **out,
                           size_t *len, char *errmsg)
{
    basalt_PingRequest pm = basalt_PingRequest_init_zero;
    struct bs_rpc__bytes pl;

    *out = NULL;
    *len = 0;
    if (p->payload_len > 0 && p->payload == NULL) {
        bs_rpc__set_msg(errmsg, "payload is NULL with a length");
        return BS_EINVAL;
    }
    pm.from_node = p->from_node;
    pm.payload = bs_rpc__enc_bytes(&pl, p->payload, p->payload_len);
    pm.cluster_id = p->cluster_id;
    pm.node_id = p->node_id;
    return encode(basalt_PingRequest_fields, &pm, "PingRequest", out, len,
                  errmsg);
}

int bs_adm_ping_resp_encode(const struct bs_adm_ping *p, uint8_t **out,
                            size_t *len, char *errmsg)
{
    basalt_PingResponse pm = basalt_PingResponse_init_zero;
    struct bs_rpc__bytes v, pl;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_str(p->version, sizeof p->version, "version", errmsg)) != 0)
        return rc;
    if (p->payload_len > 0 && p->payload == NULL) {
        bs_rpc__set_msg(errmsg, "payload is NULL with a length");
        return BS_EINVAL;
    }
    pm.cluster_id = p->cluster_id;
    pm.node_id = p->node_id;
    pm.version = enc_str(&v, p->version);
    pm.uptime_ms = p->uptime_ms;
    pm.payload = bs_rpc__enc_bytes(&pl, p->payload, p->payload_len);
    return encode(basalt_PingResponse_fields, &pm, "PingResponse", out, len,
                  errmsg);
}

int bs_adm_ping_req_decode(const uint8_t *buf, size_t len,
                           struct bs_adm_ping *p, char *errmsg)
{
    basalt_PingRequest pm = basalt_PingRequest_init_zero;
    struct bs_rpc__dec d;
    struct bs_rpc__copy pl;
    int rc;

    memset(p, 0, sizeof *p);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.payload = bs_rpc__copy_cb(&pl, &d, "PingRequest.payload",
                                 BS_RPC_DEFAULT_MAX_MESSAGE, &p->payload,
                                 &p->payload_len);
    rc = dec_run(&d, buf, len, basalt_PingRequest_fields, &pm, "PingRequest");
    if (rc != 0) {
        bs_adm_ping_free(p);
        return rc;
    }
    p->from_node = pm.from_node;
    p->cluster_id = pm.cluster_id;
    p->node_id = pm.node_id;
    return 0;
}

int bs_adm_ping_resp_decode(const uint8_t *buf, size_t len,
                            struct bs_adm_ping *p, char *errmsg)
{
    basalt_PingResponse pm = basalt_PingResponse_init_zero;
    struct bs_rpc__dec d;
    struct bs_rpc__copy pl;
    struct str_dst v;
    int rc;

    memset(p, 0, sizeof *p);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.version = str(&v, &d, "PingResponse.version", p->version,
                     sizeof p->version, false);
    pm.payload = bs_rpc__copy_cb(&pl, &d, "PingResponse.payload",
                                 BS_RPC_DEFAULT_MAX_MESSAGE, &p->payload,
                                 &p->payload_len);
    rc = dec_run(&d, buf, len, basalt_PingResponse_fields, &pm, "PingResponse");
    if (rc != 0) {
        bs_adm_ping_free(p);
        return rc;
    }
    p->cluster_id = pm.cluster_id;
    p->node_id = pm.node_id;
    p->uptime_ms = pm.uptime_ms;
    return 0;
}

void bs_adm_ping_free(struct bs_adm_ping *p)
{
    if (p == NULL)
        return;
    free(p->payload);
    memset(p, 0, sizeof *p);
}

/* ================================================ etcd Maintenance */

int bs_adm_etcd_status_encode(const struct bs_adm_etcd_status *s, uint8_t **out,
                              size_t *len, char *errmsg)
{
    etcdserverpb_StatusResponse pm = etcdserverpb_StatusResponse_init_zero;
    struct bs_rpc__bytes v;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_str(s->version, sizeof s->version, "version", errmsg)) != 0)
        return rc;
    /* etcd always sets the header (a pointer in Go): present even when
     * every field of it is zero. */
    pm.has_header = true;
    pm.header = header_to_pb(&s->hdr);
    pm.version = enc_str(&v, s->version);
    pm.dbSize = s->db_size;
    pm.leader = s->leader;
    pm.raftIndex = s->raft_index;
    pm.raftTerm = s->raft_term;
    pm.raftAppliedIndex = s->raft_applied_index;
    pm.dbSizeInUse = s->db_size_in_use;
    pm.isLearner = s->is_learner;
    return encode(etcdserverpb_StatusResponse_fields, &pm, "StatusResponse",
                  out, len, errmsg);
}

int bs_adm_etcd_status_decode(const uint8_t *buf, size_t len,
                              struct bs_adm_etcd_status *s, char *errmsg)
{
    etcdserverpb_StatusResponse pm = etcdserverpb_StatusResponse_init_zero;
    struct bs_rpc__dec d;
    struct str_dst v;
    int rc;

    memset(s, 0, sizeof *s);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.version = str(&v, &d, "StatusResponse.version", s->version,
                     sizeof s->version, false);
    /* pm.errors stays without a decode function: nanopb skips it. */
    rc = dec_run(&d, buf, len, etcdserverpb_StatusResponse_fields, &pm,
                 "StatusResponse");
    if (rc != 0) {
        memset(s, 0, sizeof *s);
        return rc;
    }
    header_from_pb(&pm.header, &s->hdr);
    s->db_size = pm.dbSize;
    s->leader = pm.leader;
    s->raft_index = pm.raftIndex;
    s->raft_term = pm.raftTerm;
    s->raft_applied_index = pm.raftAppliedIndex;
    s->db_size_in_use = pm.dbSizeInUse;
    s->is_learner = pm.isLearner;
    return 0;
}

/* ==================================================== etcd Cluster */

struct members_src {
    const struct bs_adm_member *m;
    size_t n;
};

static bool enc_members_cb(pb_ostream_t *s, const pb_field_t *f,
                           void *const *arg)
{
    const struct members_src *ms = *arg;

    for (size_t i = 0; i < ms->n; i++) {
        const struct bs_adm_member *m = &ms->m[i];
        etcdserverpb_Member pm = etcdserverpb_Member_init_zero;
        struct bs_rpc__bytes name, peer, client;

        pm.ID = m->id;
        pm.name = enc_str(&name, m->name);
        pm.peerURLs = enc_str_list(&peer, m->peer_url);
        pm.clientURLs = enc_str_list(&client, m->client_url);
        pm.isLearner = m->is_learner;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, etcdserverpb_Member_fields, &pm))
            return false;
    }
    return true;
}

int bs_adm_member_list_encode(const struct bs_rpc_header *hdr,
                              const struct bs_adm_member *m, size_t n,
                              uint8_t **out, size_t *len, char *errmsg)
{
    etcdserverpb_MemberListResponse pm =
        etcdserverpb_MemberListResponse_init_zero;
    struct members_src ms = {m, n};
    char what[64];
    int rc;

    *out = NULL;
    *len = 0;
    if (n > BS_ADM_MAX_MEMBERS || (n > 0 && m == NULL)) {
        bs_rpc__set_msg(errmsg, "%zu members: at most %d, and not NULL", n,
                        BS_ADM_MAX_MEMBERS);
        return BS_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof what, "members[%zu].name", i);
        if ((rc = check_str(m[i].name, sizeof m[i].name, what, errmsg)) != 0)
            return rc;
        snprintf(what, sizeof what, "members[%zu].peer_url", i);
        if ((rc = check_str(m[i].peer_url, sizeof m[i].peer_url, what,
                            errmsg)) != 0)
            return rc;
        snprintf(what, sizeof what, "members[%zu].client_url", i);
        if ((rc = check_str(m[i].client_url, sizeof m[i].client_url, what,
                            errmsg)) != 0)
            return rc;
    }
    pm.has_header = true;
    pm.header = header_to_pb(hdr);
    pm.members.funcs.encode = enc_members_cb;
    pm.members.arg = &ms;
    return encode(etcdserverpb_MemberListResponse_fields, &pm,
                  "MemberListResponse", out, len, errmsg);
}

struct members_dst {
    struct bs_rpc__dec *d;
    struct bs_adm_member *m;
    size_t n, cap;
};

static bool dec_member_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct members_dst *md = *arg;
    struct bs_rpc__dec *d = md->d;
    etcdserverpb_Member pm = etcdserverpb_Member_init_zero;
    struct str_dst name, peer, client;
    struct bs_adm_member *m;
    void *grown;

    (void)f;
    if (!bs_rpc__dec_in_buf(d, s, "MemberListResponse.members"))
        return false;
    if (md->n >= BS_ADM_MAX_MEMBERS)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "MemberListResponse has more than %d members",
                                BS_ADM_MAX_MEMBERS);
    grown = bs_rpc__grow(md->m, &md->cap, md->n, sizeof *m);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM, "out of memory decoding members");
    md->m = grown;
    m = &md->m[md->n++];
    memset(m, 0, sizeof *m);
    pm.name = str(&name, d, "Member.name", m->name, sizeof m->name, false);
    pm.peerURLs =
        str(&peer, d, "Member.peerURLs", m->peer_url, sizeof m->peer_url, true);
    pm.clientURLs = str(&client, d, "Member.clientURLs", m->client_url,
                        sizeof m->client_url, true);
    if (!pb_decode(s, etcdserverpb_Member_fields, &pm))
        return bs_rpc__dec_pb_fail(d, s, "MemberListResponse.members");
    m->id = pm.ID;
    m->is_learner = pm.isLearner;
    return true;
}

int bs_adm_member_list_decode(const uint8_t *buf, size_t len,
                              struct bs_rpc_header *hdr,
                              struct bs_adm_member **m, size_t *n, char *errmsg)
{
    etcdserverpb_MemberListResponse pm =
        etcdserverpb_MemberListResponse_init_zero;
    struct bs_rpc__dec d;
    struct members_dst md;
    int rc;

    *m = NULL;
    *n = 0;
    if (hdr != NULL)
        memset(hdr, 0, sizeof *hdr);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    memset(&md, 0, sizeof md);
    md.d = &d;
    pm.members.funcs.decode = dec_member_cb;
    pm.members.arg = &md;
    rc = dec_run(&d, buf, len, etcdserverpb_MemberListResponse_fields, &pm,
                 "MemberListResponse");
    if (rc != 0) {
        free(md.m);
        return rc;
    }
    if (hdr != NULL)
        header_from_pb(&pm.header, hdr);
    *m = md.m;
    *n = md.n;
    return 0;
}

/* ======================================================= etcd Compact */

int bs_adm_compact_req_encode(int64_t revision, bool physical, uint8_t **out,
                              size_t *len, char *errmsg)
{
    etcdserverpb_CompactionRequest pm =
        etcdserverpb_CompactionRequest_init_zero;

    pm.revision = revision;
    pm.physical = physical;
    return encode(etcdserverpb_CompactionRequest_fields, &pm,
                  "CompactionRequest", out, len, errmsg);
}

int bs_adm_compact_req_decode(const uint8_t *buf, size_t len, int64_t *revision,
                              bool *physical, char *errmsg)
{
    etcdserverpb_CompactionRequest pm =
        etcdserverpb_CompactionRequest_init_zero;
    struct bs_rpc__dec d;
    int rc;

    *revision = 0;
    *physical = false;
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    rc = dec_run(&d, buf, len, etcdserverpb_CompactionRequest_fields, &pm,
                 "CompactionRequest");
    if (rc != 0)
        return rc;
    *revision = pm.revision;
    *physical = pm.physical;
    return 0;
}

int bs_adm_compact_resp_encode(const struct bs_rpc_header *hdr, uint8_t **out,
                               size_t *len, char *errmsg)
{
    etcdserverpb_CompactionResponse pm =
        etcdserverpb_CompactionResponse_init_zero;

    pm.has_header = true;
    pm.header = header_to_pb(hdr);
    return encode(etcdserverpb_CompactionResponse_fields, &pm,
                  "CompactionResponse", out, len, errmsg);
}

int bs_adm_compact_resp_decode(const uint8_t *buf, size_t len,
                               struct bs_rpc_header *hdr, char *errmsg)
{
    etcdserverpb_CompactionResponse pm =
        etcdserverpb_CompactionResponse_init_zero;
    struct bs_rpc__dec d;
    int rc;

    memset(hdr, 0, sizeof *hdr);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    rc = dec_run(&d, buf, len, etcdserverpb_CompactionResponse_fields, &pm,
                 "CompactionResponse");
    if (rc != 0)
        return rc;
    header_from_pb(&pm.header, hdr);
    return 0;
}

/* ================================================= TransferLeader */

int bs_adm_transfer_req_encode(const struct bs_adm_transfer *t, uint8_t **out,
                               size_t *len, char *errmsg)
{
    basalt_TransferLeaderRequest m = basalt_TransferLeaderRequest_init_zero;

    m.shard_id = t->shard_id;
    m.to_node = t->node_id;
    return encode(basalt_TransferLeaderRequest_fields, &m,
                  "TransferLeaderRequest", out, len, errmsg);
}

int bs_adm_transfer_req_decode(const uint8_t *buf, size_t len,
                               struct bs_adm_transfer *t, char *errmsg)
{
    basalt_TransferLeaderRequest m = basalt_TransferLeaderRequest_init_zero;
    struct bs_rpc__dec d;
    int rc;

    memset(t, 0, sizeof *t);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    rc = dec_run(&d, buf, len, basalt_TransferLeaderRequest_fields, &m,
                 "TransferLeaderRequest");
    if (rc != 0)
        return rc;
    t->shard_id = m.shard_id;
    t->node_id = m.to_node;
    return 0;
}

int bs_adm_transfer_resp_encode(const struct bs_adm_transfer *t, uint8_t **out,
                                size_t *len, char *errmsg)
{
    basalt_TransferLeaderResponse m = basalt_TransferLeaderResponse_init_zero;

    m.shard_id = t->shard_id;
    m.leader_node = t->node_id;
    m.term = t->term;
    return encode(basalt_TransferLeaderResponse_fields, &m,
                  "TransferLeaderResponse", out, len, errmsg);
}

int bs_adm_transfer_resp_decode(const uint8_t *buf, size_t len,
                                struct bs_adm_transfer *t, char *errmsg)
{
    basalt_TransferLeaderResponse m = basalt_TransferLeaderResponse_init_zero;
    struct bs_rpc__dec d;
    int rc;

    memset(t, 0, sizeof *t);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    rc = dec_run(&d, buf, len, basalt_TransferLeaderResponse_fields, &m,
                 "TransferLeaderResponse");
    if (rc != 0)
        return rc;
    t->shard_id = m.shard_id;
    t->node_id = m.leader_node;
    t->term = m.term;
    return 0;
}

/* ======================================================== Join: labels */

static int check_join_req(const struct bs_adm_join *j, char *errmsg)
{
    char what[64];
    int rc;

    if ((rc = check_str(j->client_addr, sizeof j->client_addr, "client_addr",
                        errmsg)) != 0 ||
        (rc = check_str(j->peer_addr, sizeof j->peer_addr, "peer_addr",
                        errmsg)) != 0 ||
        (rc = check_str(j->http_addr, sizeof j->http_addr, "http_addr",
                        errmsg)) != 0)
        return rc;
    if (j->n_labels > BS_ADM_MAX_LABELS) {
        bs_rpc__set_msg(errmsg, "%u labels: at most %d", j->n_labels,
                        BS_ADM_MAX_LABELS);
        return BS_EINVAL;
    }
    for (uint32_t i = 0; i < j->n_labels; i++) {
        const struct bs_adm_label *l = &j->labels[i];

        snprintf(what, sizeof what, "labels[%u].key", i);
        if ((rc = check_str(l->key, sizeof l->key, what, errmsg)) != 0)
            return rc;
        snprintf(what, sizeof what, "labels[%u].value", i);
        if ((rc = check_str(l->value, sizeof l->value, what, errmsg)) != 0)
            return rc;
    }
    return 0;
}

static bool enc_labels_cb(pb_ostream_t *s, const pb_field_t *f,
                          void *const *arg)
{
    const struct bs_adm_join *j = *arg;

    for (uint32_t i = 0; i < j->n_labels; i++) {
        basalt_Label pl = basalt_Label_init_zero;
        struct bs_rpc__bytes k, v;

        pl.key = enc_str(&k, j->labels[i].key);
        pl.value = enc_str(&v, j->labels[i].value);
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_Label_fields, &pl))
            return false;
    }
    return true;
}

struct labels_dst {
    struct bs_rpc__dec *d;
    struct bs_adm_join *j;
};

static bool dec_label_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct labels_dst *ld = *arg;
    basalt_Label pl = basalt_Label_init_zero;
    struct str_dst k, v;
    struct bs_adm_label *l;

    (void)f;
    if (!bs_rpc__dec_in_buf(ld->d, s, "JoinRequest.labels"))
        return false;
    if (ld->j->n_labels >= BS_ADM_MAX_LABELS)
        return bs_rpc__dec_fail(ld->d, BS_ETOOBIG,
                                "JoinRequest has more than %d labels",
                                BS_ADM_MAX_LABELS);
    l = &ld->j->labels[ld->j->n_labels++];
    pl.key = str(&k, ld->d, "Label.key", l->key, sizeof l->key, false);
    pl.value = str(&v, ld->d, "Label.value", l->value, sizeof l->value, false);
    if (!pb_decode(s, basalt_Label_fields, &pl))
        return bs_rpc__dec_pb_fail(ld->d, s, "JoinRequest.labels");
    return true;
}

/* =============================================================== Join */

int bs_adm_join_req_encode(const struct bs_adm_join *j, uint8_t **out,
                           size_t *len, char *errmsg)
{
    basalt_JoinRequest pm = basalt_JoinRequest_init_zero;
    struct bs_rpc__bytes a, b, c;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_join_req(j, errmsg)) != 0)
        return rc;
    pm.client_addr = enc_str(&a, j->client_addr);
    pm.peer_addr = enc_str(&b, j->peer_addr);
    pm.http_addr = enc_str(&c, j->http_addr);
    pm.labels.funcs.encode = enc_labels_cb;
    pm.labels.arg = (void *)j;
    pm.join_token = j->join_token;
    pm.node_id = j->node_id;
    return encode(basalt_JoinRequest_fields, &pm, "JoinRequest", out, len,
                  errmsg);
}

int bs_adm_join_req_decode(const uint8_t *buf, size_t len,
                           struct bs_adm_join *j, char *errmsg)
{
    basalt_JoinRequest pm = basalt_JoinRequest_init_zero;
    struct bs_rpc__dec d;
    struct str_dst a, b, c;
    struct labels_dst ld;
    int rc;

    memset(j, 0, sizeof *j);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.client_addr = str(&a, &d, "JoinRequest.client_addr", j->client_addr,
                         sizeof j->client_addr, false);
    pm.peer_addr = str(&b, &d, "JoinRequest.peer_addr", j->peer_addr,
                       sizeof j->peer_addr, false);
    pm.http_addr = str(&c, &d, "JoinRequest.http_addr", j->http_addr,
                       sizeof j->http_addr, false);
    ld.d = &d;
    ld.j = j;
    pm.labels.funcs.decode = dec_label_cb;
    pm.labels.arg = &ld;
    rc = dec_run(&d, buf, len, basalt_JoinRequest_fields, &pm, "JoinRequest");
    if (rc != 0) {
        memset(j, 0, sizeof *j);
        return rc;
    }
    j->join_token = pm.join_token;
    j->node_id = pm.node_id;
    return 0;
}

int bs_adm_join_resp_encode(const struct bs_adm_join *j, uint8_t **out,
                            size_t *len, char *errmsg)
{
    basalt_JoinResponse pm = basalt_JoinResponse_init_zero;
    struct nodes_src ns;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_nodes(j->nodes, j->n_nodes, errmsg)) != 0)
        return rc;
    pm.node_id = j->node_id;
    pm.cluster_id = j->cluster_id;
    pm.nodes = enc_nodes(&ns, j->nodes, j->n_nodes);
    return encode(basalt_JoinResponse_fields, &pm, "JoinResponse", out, len,
                  errmsg);
}

int bs_adm_join_resp_decode(const uint8_t *buf, size_t len,
                            struct bs_adm_join *j, char *errmsg)
{
    basalt_JoinResponse pm = basalt_JoinResponse_init_zero;
    struct bs_rpc__dec d;
    struct nodes_dst nd;
    int rc;

    memset(j, 0, sizeof *j);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.nodes = dec_nodes(&nd, &d, "JoinResponse", "JoinResponse.nodes",
                         &j->nodes, &j->n_nodes);
    rc = dec_run(&d, buf, len, basalt_JoinResponse_fields, &pm, "JoinResponse");
    if (rc != 0) {
        bs_adm_join_free(j);
        return rc;
    }
    j->node_id = pm.node_id;
    j->cluster_id = pm.cluster_id;
    return 0;
}

void bs_adm_join_free(struct bs_adm_join *j)
{
    if (j == NULL)
        return;
    free(j->nodes);
    memset(j, 0, sizeof *j);
}

/* ========================================================= RemoveNode */

int bs_adm_remove_req_encode(const struct bs_adm_remove *r, uint8_t **out,
                             size_t *len, char *errmsg)
{
    basalt_RemoveNodeRequest pm = basalt_RemoveNodeRequest_init_zero;

    pm.node_id = r->node_id;
    pm.cancel = r->cancel;
    return encode(basalt_RemoveNodeRequest_fields, &pm, "RemoveNodeRequest",
                  out, len, errmsg);
}

int bs_adm_remove_req_decode(const uint8_t *buf, size_t len,
                             struct bs_adm_remove *r, char *errmsg)
{
    basalt_RemoveNodeRequest pm = basalt_RemoveNodeRequest_init_zero;
    struct bs_rpc__dec d;
    int rc;

    memset(r, 0, sizeof *r);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    rc = dec_run(&d, buf, len, basalt_RemoveNodeRequest_fields, &pm,
                 "RemoveNodeRequest");
    if (rc != 0)
        return rc;
    r->node_id = pm.node_id;
    r->cancel = pm.cancel;
    return 0;
}

int bs_adm_remove_resp_encode(const struct bs_adm_remove *r, uint8_t **out,
                              size_t *len, char *errmsg)
{
    basalt_RemoveNodeResponse pm = basalt_RemoveNodeResponse_init_zero;
    struct bs_rpc__bytes st;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_str(r->state, sizeof r->state, "state", errmsg)) != 0)
        return rc;
    pm.node_id = r->node_id;
    pm.state = enc_str(&st, r->state);
    pm.replicas = r->replicas;
    return encode(basalt_RemoveNodeResponse_fields, &pm, "RemoveNodeResponse",
                  out, len, errmsg);
}

int bs_adm_remove_resp_decode(const uint8_t *buf, size_t len,
                              struct bs_adm_remove *r, char *errmsg)
{
    basalt_RemoveNodeResponse pm = basalt_RemoveNodeResponse_init_zero;
    struct bs_rpc__dec d;
    struct str_dst st;
    int rc;

    memset(r, 0, sizeof *r);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.state = str(&st, &d, "RemoveNodeResponse.state", r->state,
                   sizeof r->state, false);
    rc = dec_run(&d, buf, len, basalt_RemoveNodeResponse_fields, &pm,
                 "RemoveNodeResponse");
    if (rc != 0) {
        memset(r, 0, sizeof *r);
        return rc;
    }
    r->node_id = pm.node_id;
    r->replicas = pm.replicas;
    return 0;
}

/* ========================================================== operators */

/* A list of operators an encoder is given (the count is checked by the
 * caller: BS_ADM_MAX_OPS holds for a whole message). */
static int check_ops(const struct bs_adm_op *ops, size_t n, const char *list,
                     char *errmsg)
{
    char what[64];
    int rc;

    if (n > 0 && ops == NULL) {
        bs_rpc__set_msg(errmsg, "%s is NULL with %zu operators", list, n);
        return BS_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct bs_adm_op *op = &ops[i];

        snprintf(what, sizeof what, "%s[%zu].kind", list, i);
        if ((rc = check_str(op->kind, sizeof op->kind, what, errmsg)) != 0)
            return rc;
        snprintf(what, sizeof what, "%s[%zu].reason", list, i);
        if ((rc = check_str(op->reason, sizeof op->reason, what, errmsg)) != 0)
            return rc;
        if (op->split_key_len > BS_ADM_MAX_KEY ||
            (op->split_key_len > 0 && op->split_key == NULL)) {
            bs_rpc__set_msg(errmsg,
                            "%s[%zu].split_key of %zu bytes: at most %d, and "
                            "not NULL",
                            list, i, op->split_key_len, BS_ADM_MAX_KEY);
            return BS_EINVAL;
        }
    }
    return 0;
}

struct ops_src {
    const struct bs_adm_op *ops;
    size_t n;
};

static bool enc_ops_cb(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct ops_src *os = *arg;

    for (size_t i = 0; i < os->n; i++) {
        const struct bs_adm_op *op = &os->ops[i];
        basalt_Operator po = basalt_Operator_init_zero;
        struct bs_rpc__bytes kind, reason, key;

        po.id = op->id;
        po.kind = enc_str(&kind, op->kind);
        po.reason = enc_str(&reason, op->reason);
        po.shard_id = op->shard_id;
        po.from_node = op->from_node;
        po.to_node = op->to_node;
        po.split_key =
            bs_rpc__enc_bytes(&key, op->split_key, op->split_key_len);
        po.age_ms = op->age_ms;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_Operator_fields, &po))
            return false;
    }
    return true;
}

static pb_callback_t enc_ops(struct ops_src *os, const struct bs_adm_op *ops,
                             size_t n)
{
    pb_callback_t cb;

    os->ops = ops;
    os->n = n;
    cb.funcs.encode = enc_ops_cb;
    cb.arg = os;
    return cb;
}

/* Where a repeated Operator (field) is decoded to: a growing array,
 * counted in *n; *total counts the operators of the whole message, which
 * BS_ADM_MAX_OPS bounds. */
struct ops_dst {
    struct bs_rpc__dec *d;
    const char *field;
    struct bs_adm_op **ops;
    size_t *n;
    size_t cap;
    size_t *total;
};

static bool dec_op_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct ops_dst *od = *arg;
    struct bs_rpc__dec *d = od->d;
    basalt_Operator po = basalt_Operator_init_zero;
    struct str_dst kind, reason;
    struct bs_rpc__copy key;
    struct bs_adm_op *op;
    void *grown;

    (void)f;
    if (!bs_rpc__dec_in_buf(d, s, od->field))
        return false;
    if (*od->total >= BS_ADM_MAX_OPS)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "%s: more than %d operators in one message",
                                od->field, BS_ADM_MAX_OPS);
    grown = bs_rpc__grow(*od->ops, &od->cap, *od->n, sizeof *op);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM, "out of memory decoding %s",
                                od->field);
    *od->ops = grown;
    /* Counted at once, so that an error frees its split key too. */
    op = &(*od->ops)[(*od->n)++];
    (*od->total)++;
    memset(op, 0, sizeof *op);
    po.kind = str(&kind, d, "Operator.kind", op->kind, sizeof op->kind, false);
    po.reason = str(&reason, d, "Operator.reason", op->reason,
                    sizeof op->reason, false);
    po.split_key =
        bs_rpc__copy_cb(&key, d, "Operator.split_key", BS_ADM_MAX_KEY,
                        &op->split_key, &op->split_key_len);
    if (!pb_decode(s, basalt_Operator_fields, &po))
        return bs_rpc__dec_pb_fail(d, s, od->field);
    op->id = po.id;
    op->shard_id = po.shard_id;
    op->from_node = po.from_node;
    op->to_node = po.to_node;
    op->age_ms = po.age_ms;
    return true;
}

static pb_callback_t dec_ops(struct ops_dst *od, struct bs_rpc__dec *d,
                             const char *field, struct bs_adm_op **ops,
                             size_t *n, size_t *total)
{
    pb_callback_t cb;

    od->d = d;
    od->field = field;
    od->ops = ops;
    od->n = n;
    od->cap = 0;
    od->total = total;
    cb.funcs.decode = dec_op_cb;
    cb.arg = od;
    return cb;
}

static void free_ops(struct bs_adm_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ops[i].split_key);
    free(ops);
}

/* ========================================================== Rebalance */

int bs_adm_rebalance_req_encode(const struct bs_adm_rebalance *r, uint8_t **out,
                                size_t *len, char *errmsg)
{
    basalt_RebalanceRequest pm = basalt_RebalanceRequest_init_zero;

    pm.dry_run = r->dry_run;
    pm.max_moves = r->max_moves;
    return encode(basalt_RebalanceRequest_fields, &pm, "RebalanceRequest", out,
                  len, errmsg);
}

int bs_adm_rebalance_req_decode(const uint8_t *buf, size_t len,
                                struct bs_adm_rebalance *r, char *errmsg)
{
    basalt_RebalanceRequest pm = basalt_RebalanceRequest_init_zero;
    struct bs_rpc__dec d;
    int rc;

    memset(r, 0, sizeof *r);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    rc = dec_run(&d, buf, len, basalt_RebalanceRequest_fields, &pm,
                 "RebalanceRequest");
    if (rc != 0)
        return rc;
    r->dry_run = pm.dry_run;
    r->max_moves = pm.max_moves;
    return 0;
}

int bs_adm_rebalance_resp_encode(const struct bs_adm_rebalance *r,
                                 uint8_t **out, size_t *len, char *errmsg)
{
    basalt_RebalanceResponse pm = basalt_RebalanceResponse_init_zero;
    struct ops_src plan, in_flight;
    int rc;

    *out = NULL;
    *len = 0;
    if (r->n_plan > BS_ADM_MAX_OPS || r->n_in_flight > BS_ADM_MAX_OPS ||
        r->n_plan + r->n_in_flight > BS_ADM_MAX_OPS) {
        bs_rpc__set_msg(errmsg, "%zu + %zu operators: at most %d", r->n_plan,
                        r->n_in_flight, BS_ADM_MAX_OPS);
        return BS_EINVAL;
    }
    if ((rc = check_ops(r->plan, r->n_plan, "plan", errmsg)) != 0 ||
        (rc = check_ops(r->in_flight, r->n_in_flight, "in_flight", errmsg)) !=
            0)
        return rc;
    pm.plan = enc_ops(&plan, r->plan, r->n_plan);
    pm.in_flight = enc_ops(&in_flight, r->in_flight, r->n_in_flight);
    return encode(basalt_RebalanceResponse_fields, &pm, "RebalanceResponse",
                  out, len, errmsg);
}

int bs_adm_rebalance_resp_decode(const uint8_t *buf, size_t len,
                                 struct bs_adm_rebalance *r, char *errmsg)
{
    basalt_RebalanceResponse pm = basalt_RebalanceResponse_init_zero;
    struct bs_rpc__dec d;
    struct ops_dst plan, in_flight;
    size_t total = 0;
    int rc;

    memset(r, 0, sizeof *r);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.plan = dec_ops(&plan, &d, "RebalanceResponse.plan", &r->plan, &r->n_plan,
                      &total);
    pm.in_flight = dec_ops(&in_flight, &d, "RebalanceResponse.in_flight",
                           &r->in_flight, &r->n_in_flight, &total);
    rc = dec_run(&d, buf, len, basalt_RebalanceResponse_fields, &pm,
                 "RebalanceResponse");
    if (rc != 0) {
        bs_adm_rebalance_free(r);
        return rc;
    }
    return 0;
}

void bs_adm_rebalance_free(struct bs_adm_rebalance *r)
{
    if (r == NULL)
        return;
    free_ops(r->plan, r->n_plan);
    free_ops(r->in_flight, r->n_in_flight);
    memset(r, 0, sizeof *r);
}

/* ========================================================== IsrStatus */

int bs_adm_isr_req_encode(uint64_t shard_id, uint8_t **out, size_t *len,
                          char *errmsg)
{
    basalt_IsrStatusRequest pm = basalt_IsrStatusRequest_init_zero;

    pm.shard_id = shard_id;
    return encode(basalt_IsrStatusRequest_fields, &pm, "IsrStatusRequest", out,
                  len, errmsg);
}

int bs_adm_isr_req_decode(const uint8_t *buf, size_t len, uint64_t *shard_id,
                          char *errmsg)
{
    basalt_IsrStatusRequest pm = basalt_IsrStatusRequest_init_zero;
    struct bs_rpc__dec d;
    int rc;

    *shard_id = 0;
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    rc = dec_run(&d, buf, len, basalt_IsrStatusRequest_fields, &pm,
                 "IsrStatusRequest");
    if (rc != 0)
        return rc;
    *shard_id = pm.shard_id;
    return 0;
}

static bool enc_isr_replicas_cb(pb_ostream_t *s, const pb_field_t *f,
                                void *const *arg)
{
    const struct bs_adm_isr_shard *sh = *arg;

    for (uint32_t i = 0; i < sh->n_replicas; i++) {
        const struct bs_adm_isr_replica *r = &sh->replicas[i];
        basalt_IsrReplica pr = basalt_IsrReplica_init_zero;

        pr.replica_id = r->replica_id;
        pr.node_id = r->node_id;
        pr.learner = r->learner;
        pr.match = r->match;
        pr.lag_entries = r->lag_entries;
        pr.lag_ms = r->lag_ms;
        pr.in_sync = r->in_sync;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_IsrReplica_fields, &pr))
            return false;
    }
    return true;
}

struct isr_src {
    const struct bs_adm_isr_shard *shards;
    size_t n;
};

static bool enc_isr_shards_cb(pb_ostream_t *s, const pb_field_t *f,
                              void *const *arg)
{
    const struct isr_src *is = *arg;

    for (size_t i = 0; i < is->n; i++) {
        const struct bs_adm_isr_shard *sh = &is->shards[i];
        basalt_IsrShard ps = basalt_IsrShard_init_zero;

        ps.shard_id = sh->shard_id;
        ps.leader_node = sh->leader_node;
        ps.term = sh->term;
        ps.commit = sh->commit;
        ps.min_insync = sh->min_insync;
        ps.replicas.funcs.encode = enc_isr_replicas_cb;
        ps.replicas.arg = (void *)sh;
        ps.size_bytes = sh->size_bytes;
        ps.keys = sh->keys;
        ps.read_qps = sh->read_qps;
        ps.write_qps = sh->write_qps;
        ps.reported_ms_ago = sh->reported_ms_ago;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_IsrShard_fields, &ps))
            return false;
    }
    return true;
}

int bs_adm_isr_resp_encode(const struct bs_adm_isr_shard *shards, size_t n,
                           uint8_t **out, size_t *len, char *errmsg)
{
    basalt_IsrStatusResponse pm = basalt_IsrStatusResponse_init_zero;
    struct isr_src is = {shards, n};

    *out = NULL;
    *len = 0;
    if (n > BS_ADM_MAX_OPS || (n > 0 && shards == NULL)) {
        bs_rpc__set_msg(errmsg, "%zu shards: at most %d, and not NULL", n,
                        BS_ADM_MAX_OPS);
        return BS_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (shards[i].n_replicas > BS_RAFT_MAX_MEMBERS) {
            bs_rpc__set_msg(errmsg, "shard %llu has %u replicas, more than %d",
                            (unsigned long long)shards[i].shard_id,
                            shards[i].n_replicas, BS_RAFT_MAX_MEMBERS);
            return BS_EINVAL;
        }
    pm.shards.funcs.encode = enc_isr_shards_cb;
    pm.shards.arg = &is;
    return encode(basalt_IsrStatusResponse_fields, &pm, "IsrStatusResponse",
                  out, len, errmsg);
}

struct isr_dst {
    struct bs_rpc__dec *d;
    struct bs_adm_isr_shard *shards;
    size_t n, cap;
};

static bool dec_isr_replica_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct isr_dst *id = *arg;
    struct bs_adm_isr_shard *sh = &id->shards[id->n - 1];
    basalt_IsrReplica pr = basalt_IsrReplica_init_zero;
    struct bs_adm_isr_replica *r;

    (void)f;
    if (!bs_rpc__dec_in_buf(id->d, s, "IsrShard.replicas"))
        return false;
    /* A Raft group has no more members: not a valid message. */
    if (sh->n_replicas >= BS_RAFT_MAX_MEMBERS)
        return bs_rpc__dec_fail(id->d, BS_EPROTO,
                                "IsrShard.replicas: more than %d replicas",
                                BS_RAFT_MAX_MEMBERS);
    if (!pb_decode(s, basalt_IsrReplica_fields, &pr))
        return bs_rpc__dec_pb_fail(id->d, s, "IsrShard.replicas");
    r = &sh->replicas[sh->n_replicas++];
    r->replica_id = pr.replica_id;
    r->node_id = pr.node_id;
    r->learner = pr.learner;
    r->match = pr.match;
    r->lag_entries = pr.lag_entries;
    r->lag_ms = pr.lag_ms;
    r->in_sync = pr.in_sync;
    return true;
}

static bool dec_isr_shard_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct isr_dst *id = *arg;
    basalt_IsrShard ps = basalt_IsrShard_init_zero;
    struct bs_adm_isr_shard *sh;
    void *grown;

    (void)f;
    if (!bs_rpc__dec_in_buf(id->d, s, "IsrStatusResponse.shards"))
        return false;
    if (id->n >= BS_ADM_MAX_OPS)
        return bs_rpc__dec_fail(id->d, BS_ETOOBIG,
                                "IsrStatusResponse has more than %d shards",
                                BS_ADM_MAX_OPS);
    grown = bs_rpc__grow(id->shards, &id->cap, id->n, sizeof *sh);
    if (grown == NULL)
        return bs_rpc__dec_fail(id->d, BS_ENOMEM,
                                "out of memory decoding ISR shards");
    id->shards = grown;
    /* The replicas' callback appends to the last shard counted. */
    sh = &id->shards[id->n++];
    memset(sh, 0, sizeof *sh);
    ps.replicas.funcs.decode = dec_isr_replica_cb;
    ps.replicas.arg = id;
    if (!pb_decode(s, basalt_IsrShard_fields, &ps))
        return bs_rpc__dec_pb_fail(id->d, s, "IsrStatusResponse.shards");
    sh->shard_id = ps.shard_id;
    sh->leader_node = ps.leader_node;
    sh->term = ps.term;
    sh->commit = ps.commit;
    sh->min_insync = ps.min_insync;
    sh->size_bytes = ps.size_bytes;
    sh->keys = ps.keys;
    sh->read_qps = ps.read_qps;
    sh->write_qps = ps.write_qps;
    sh->reported_ms_ago = ps.reported_ms_ago;
    return true;
}

int bs_adm_isr_resp_decode(const uint8_t *buf, size_t len,
                           struct bs_adm_isr_shard **shards, size_t *n,
                           char *errmsg)
{
    basalt_IsrStatusResponse pm = basalt_IsrStatusResponse_init_zero;
    struct bs_rpc__dec d;
    struct isr_dst id;
    int rc;

    *shards = NULL;
    *n = 0;
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    memset(&id, 0, sizeof id);
    id.d = &d;
    pm.shards.funcs.decode = dec_isr_shard_cb;
    pm.shards.arg = &id;
    rc = dec_run(&d, buf, len, basalt_IsrStatusResponse_fields, &pm,
                 "IsrStatusResponse");
    if (rc != 0) {
        free(id.shards);
        return rc;
    }
    *shards = id.shards;
    *n = id.n;
    return 0;
}

/* ============================================================== Split */

int bs_adm_split_req_encode(const struct bs_adm_split *s, uint8_t **out,
                            size_t *len, char *errmsg)
{
    basalt_SplitRequest pm = basalt_SplitRequest_init_zero;
    struct bs_rpc__bytes k;

    *out = NULL;
    *len = 0;
    if (s->key_len > BS_ADM_MAX_KEY || (s->key_len > 0 && s->key == NULL)) {
        bs_rpc__set_msg(errmsg, "key of %zu bytes: at most %d, and not NULL",
                        s->key_len, BS_ADM_MAX_KEY);
        return BS_EINVAL;
    }
    pm.shard_id = s->shard_id;
    pm.key = bs_rpc__enc_bytes(&k, s->key, s->key_len);
    return encode(basalt_SplitRequest_fields, &pm, "SplitRequest", out, len,
                  errmsg);
}

int bs_adm_split_req_decode(const uint8_t *buf, size_t len,
                            struct bs_adm_split *s, char *errmsg)
{
    basalt_SplitRequest pm = basalt_SplitRequest_init_zero;
    struct bs_rpc__dec d;
    struct bs_rpc__copy k;
    int rc;

    memset(s, 0, sizeof *s);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.key = bs_rpc__copy_cb(&k, &d, "SplitRequest.key", BS_ADM_MAX_KEY,
                             &s->key, &s->key_len);
    rc = dec_run(&d, buf, len, basalt_SplitRequest_fields, &pm, "SplitRequest");
    if (rc != 0) {
        free(s->key);
        memset(s, 0, sizeof *s);
        return rc;
    }
    s->shard_id = pm.shard_id;
    return 0;
}

int bs_adm_split_resp_encode(const struct bs_adm_split *s, uint8_t **out,
                             size_t *len, char *errmsg)
{
    basalt_SplitResponse pm = basalt_SplitResponse_init_zero;

    pm.op_id = s->op_id;
    pm.new_shard_id = s->new_shard_id;
    return encode(basalt_SplitResponse_fields, &pm, "SplitResponse", out, len,
                  errmsg);
}

int bs_adm_split_resp_decode(const uint8_t *buf, size_t len,
                             struct bs_adm_split *s, char *errmsg)
{
    basalt_SplitResponse pm = basalt_SplitResponse_init_zero;
    struct bs_rpc__dec d;
    int rc;

    memset(s, 0, sizeof *s);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    rc = dec_run(&d, buf, len, basalt_SplitResponse_fields, &pm,
                 "SplitResponse");
    if (rc != 0)
        return rc;
    s->op_id = pm.op_id;
    s->new_shard_id = pm.new_shard_id;
    return 0;
}

/* ========================================================== Scheduler */

int bs_adm_sched_req_encode(const struct bs_adm_sched *s, uint8_t **out,
                            size_t *len, char *errmsg)
{
    basalt_SchedulerRequest pm = basalt_SchedulerRequest_init_zero;
    struct bs_rpc__bytes a;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_str(s->action, sizeof s->action, "action", errmsg)) != 0)
        return rc;
    pm.action = enc_str(&a, s->action);
    return encode(basalt_SchedulerRequest_fields, &pm, "SchedulerRequest", out,
                  len, errmsg);
}

int bs_adm_sched_req_decode(const uint8_t *buf, size_t len,
                            struct bs_adm_sched *s, char *errmsg)
{
    basalt_SchedulerRequest pm = basalt_SchedulerRequest_init_zero;
    struct bs_rpc__dec d;
    struct str_dst a;
    int rc;

    memset(s, 0, sizeof *s);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.action = str(&a, &d, "SchedulerRequest.action", s->action,
                    sizeof s->action, false);
    rc = dec_run(&d, buf, len, basalt_SchedulerRequest_fields, &pm,
                 "SchedulerRequest");
    if (rc != 0) {
        memset(s, 0, sizeof *s);
        return rc;
    }
    return 0;
}

int bs_adm_sched_resp_encode(const struct bs_adm_sched *s, uint8_t **out,
                             size_t *len, char *errmsg)
{
    basalt_SchedulerResponse pm = basalt_SchedulerResponse_init_zero;
    struct ops_src ops;
    int rc;

    *out = NULL;
    *len = 0;
    if (s->n_ops > BS_ADM_MAX_OPS) {
        bs_rpc__set_msg(errmsg, "%zu operators: at most %d", s->n_ops,
                        BS_ADM_MAX_OPS);
        return BS_EINVAL;
    }
    if ((rc = check_ops(s->ops, s->n_ops, "operators", errmsg)) != 0)
        return rc;
    pm.paused = s->paused;
    pm.max_concurrent_moves = s->max_concurrent_moves;
    pm.split_size = s->split_size;
    pm.split_qps = s->split_qps;
    pm.down_after_ms = s->down_after_ms;
    pm.max_lag_entries = s->max_lag_entries;
    pm.max_lag_ms = s->max_lag_ms;
    pm.operators = enc_ops(&ops, s->ops, s->n_ops);
    pm.ops_finished = s->ops_finished;
    pm.ops_cancelled = s->ops_cancelled;
    pm.snapshot_rate = s->snapshot_rate;
    return encode(basalt_SchedulerResponse_fields, &pm, "SchedulerResponse",
                  out, len, errmsg);
}

int bs_adm_sched_resp_decode(const uint8_t *buf, size_t len,
                             struct bs_adm_sched *s, char *errmsg)
{
    basalt_SchedulerResponse pm = basalt_SchedulerResponse_init_zero;
    struct bs_rpc__dec d;
    struct ops_dst od;
    size_t total = 0;
    int rc;

    memset(s, 0, sizeof *s);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    pm.operators = dec_ops(&od, &d, "SchedulerResponse.operators", &s->ops,
                           &s->n_ops, &total);
    rc = dec_run(&d, buf, len, basalt_SchedulerResponse_fields, &pm,
                 "SchedulerResponse");
    if (rc != 0) {
        bs_adm_sched_free(s);
        return rc;
    }
    s->paused = pm.paused;
    s->max_concurrent_moves = pm.max_concurrent_moves;
    s->split_size = pm.split_size;
    s->split_qps = pm.split_qps;
    s->down_after_ms = pm.down_after_ms;
    s->max_lag_entries = pm.max_lag_entries;
    s->max_lag_ms = pm.max_lag_ms;
    s->ops_finished = pm.ops_finished;
    s->ops_cancelled = pm.ops_cancelled;
    s->snapshot_rate = pm.snapshot_rate;
    return 0;
}

void bs_adm_sched_free(struct bs_adm_sched *s)
{
    if (s == NULL)
        return;
    free_ops(s->ops, s->n_ops);
    memset(s, 0, sizeof *s);
}
