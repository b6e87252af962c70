/*
 * admin_codec.c - nanopb callbacks for the operator's messages: basalt.Admin
 * (cluster status, shard info, ping) and etcd's Maintenance.Status,
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
    char what[64];
    int rc;

    snprintf(what, sizeof what, "nodes[%zu].client_addr", i);
    if ((rc = check_str(n->client_addr, sizeof n->client_addr, what, errmsg)) !=
        0)
        return rc;
    snprintf(what, sizeof what, "nodes[%zu].peer_addr", i);
    if ((rc = check_str(n->peer_addr, sizeof n->peer_addr, what, errmsg)) != 0)
        return rc;
    snprintf(what, sizeof what, "nodes[%zu].http_addr", i);
    return check_str(n->http_addr, sizeof n->http_addr, what, errmsg);
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

/* ===================================================== ClusterStatus */

static bool enc_nodes_cb(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct bs_adm_status *st = *arg;

    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_adm_node *n = &st->nodes[i];
        basalt_NodeStatus pn = basalt_NodeStatus_init_zero;
        struct bs_rpc__bytes a, b, c;

        pn.id = n->id;
        pn.client_addr = enc_str(&a, n->client_addr);
        pn.peer_addr = enc_str(&b, n->peer_addr);
        pn.http_addr = enc_str(&c, n->http_addr);
        pn.alive = n->alive;
        pn.replicas = n->replicas;
        pn.leaders = n->leaders;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_NodeStatus_fields, &pn))
            return false;
    }
    return true;
}

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
    int rc;

    *out = NULL;
    *len = 0;
    if (st->n_nodes > BS_ADM_MAX_NODES || st->n_shards > BS_ADM_MAX_SHARDS) {
        bs_rpc__set_msg(
            errmsg, "%zu nodes and %zu shards: the limits are %d and %d",
            st->n_nodes, st->n_shards, BS_ADM_MAX_NODES, BS_ADM_MAX_SHARDS);
        return BS_EINVAL;
    }
    if ((st->n_nodes > 0 && st->nodes == NULL) ||
        (st->n_shards > 0 && st->shards == NULL)) {
        bs_rpc__set_msg(errmsg, "a NULL array with a count");
        return BS_EINVAL;
    }
    for (size_t i = 0; i < st->n_nodes; i++)
        if ((rc = check_node(&st->nodes[i], i, errmsg)) != 0)
            return rc;
    for (size_t i = 0; i < st->n_shards; i++)
        if ((rc = check_shard(&st->shards[i], errmsg)) != 0)
            return rc;
    pm.cluster_id = st->cluster_id;
    pm.node_id = st->node_id;
    pm.nodes.funcs.encode = enc_nodes_cb;
    pm.nodes.arg = (void *)st;
    pm.shards.funcs.encode = enc_shards_cb;
    pm.shards.arg = (void *)st;
    return encode(basalt_ClusterStatusResponse_fields, &pm,
                  "ClusterStatusResponse", out, len, errmsg);
}

struct status_dst {
    struct bs_rpc__dec *d;
    struct bs_adm_status *st;
    size_t nodes_cap, shards_cap;
};

static bool dec_node_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct status_dst *sd = *arg;
    struct bs_rpc__dec *d = sd->d;
    struct bs_adm_status *st = sd->st;
    basalt_NodeStatus pn = basalt_NodeStatus_init_zero;
    struct str_dst a, b, c;
    struct bs_adm_node *n;
    void *grown;

    (void)f;
    if (!bs_rpc__dec_in_buf(d, s, "ClusterStatusResponse.nodes"))
        return false;
    if (st->n_nodes >= BS_ADM_MAX_NODES)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "ClusterStatusResponse has more than %d nodes",
                                BS_ADM_MAX_NODES);
    grown = bs_rpc__grow(st->nodes, &sd->nodes_cap, st->n_nodes, sizeof *n);
    if (grown == NULL)
        return bs_rpc__dec_fail(d, BS_ENOMEM, "out of memory decoding nodes");
    st->nodes = grown;
    n = &st->nodes[st->n_nodes++];
    memset(n, 0, sizeof *n);
    pn.client_addr = str(&a, d, "NodeStatus.client_addr", n->client_addr,
                         sizeof n->client_addr, false);
    pn.peer_addr = str(&b, d, "NodeStatus.peer_addr", n->peer_addr,
                       sizeof n->peer_addr, false);
    pn.http_addr = str(&c, d, "NodeStatus.http_addr", n->http_addr,
                       sizeof n->http_addr, false);
    if (!pb_decode(s, basalt_NodeStatus_fields, &pn))
        return bs_rpc__dec_pb_fail(d, s, "ClusterStatusResponse.nodes");
    n->id = pn.id;
    n->alive = pn.alive;
    n->replicas = pn.replicas;
    n->leaders = pn.leaders;
    return true;
}

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
    int rc;

    memset(st, 0, sizeof *st);
    bs_rpc__dec_init(&d, NULL, buf, len, errmsg);
    memset(&sd, 0, sizeof sd);
    sd.d = &d;
    sd.st = st;
    pm.nodes.funcs.decode = dec_node_cb;
    pm.nodes.arg = &sd;
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
