/*
 * peer.c - the peer transport of peer.h: one channel per peer node with a
 * Raft stream and a snapshot stream on it, the sender's snapshot
 * transfers driven from the loop thread, and the server side of both
 * methods, which validates everything and hands it to the node.
 *
 * Objects:
 *   - struct peer: one peer node, created by set_addr, freed by destroy
 *     (never before: the loop thread and bs_peer_net_channel hold bare
 *     pointers). Its link is the current channel with its two streams.
 *   - struct link: a channel and its streams, the ctx of their callbacks.
 *     set_addr replaces a peer's link and retires the old one to
 *     net->retired, destroyed by bs_peer_net_destroy; a callback of a
 *     retired link finds p->link != l and does nothing.
 *   - struct tx: one outgoing image (loop thread only): p->cur is in
 *     flight, p->qhead..p->qtail wait.
 *   - struct rs, struct rx: the ctx of one server Raft stream and one
 *     server snapshot stream. Every rx is listed in net->rxs so that a new
 *     image from a peer can supersede an unfinished one on another call.
 *
 * A sender's transfer (p->cur), each edge with the function that takes it:
 *
 *   queued --poll: tx_start()--> SENDING (identity published under p->mu)
 *   SENDING --poll: tx_drive() while sent - acked < BS_PEER_SNAP_WINDOW,
 *             the bandwidth bucket has the chunk's bytes and the stream
 *             accepts--> SENDING, or ALL_SENT after the chunk with last
 *             set
 *   SENDING, ALL_SENT --snap_on_ack(): ack with done--> poll: tx_end(ok)
 *   SENDING, ALL_SENT --snap_on_down() / set_addr() set tx_err, or a send
 *             refused, or no ack for snap_timeout_ms--> poll: tx_end(fail)
 *
 * tx_end removes the image directory in every case.
 *
 * Locks: net->mu guards the peer table and net->retired; p->mu guards a
 * peer's address, link and the tx_* fields shared with the snapshot
 * stream's callbacks; net->rx_mu guards net->rxs and net->nstreams. None
 * is held while another is taken, and none while calling into the
 * channel, the server or deliver. File I/O runs on the loop thread
 * (reading chunks) and on server CQ threads (writing them).
 */
#define _GNU_SOURCE
#include "peer.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MOD "peer"

#define MAX_SNAP_DIR 512
#define MAX_PATH     1024
#define MAX_CHUNK    (32u << 20)
#define IN_PREFIX    "in-n"

struct bs_peer_net;

struct link {
    struct peer *p;
    struct bs_rpc_channel *ch;
    struct bs_rpc_stream *raft, *snap;
    struct link *next; /* net->retired */
};

struct tx {
    struct tx *next;
    struct bs_eng_envelope env; /* the MsgSnap, without data */
    char *dir;
    char **names;
    uint64_t *sizes;
    size_t nfiles;
    struct link *link; /* the link it is sent on */
    size_t fi;         /* next file to read */
    uint64_t foff;     /* next offset in it */
    int fd;            /* names[fi], once opened; -1 */
    bool first_sent, all_sent;
    uint64_t chunks_sent;
    uint8_t *pend; /* encoded chunk not yet accepted by the stream */
    size_t pend_len;
    uint64_t pend_bytes;
    bool pend_last;
};

struct peer {
    struct bs_peer_net *net;
    uint64_t node_id;
    pthread_mutex_t mu; /* guards the fields up to the loop thread's */
    char *addr;
    struct link *link;
    bool tx_live;    /* p->cur is published */
    bool tx_sending; /* its first chunk went to the stream */
    uint64_t tx_shard, tx_index, tx_term;
    uint64_t tx_acked; /* chunks acknowledged */
    bool tx_done;
    int tx_err;
    uint64_t tx_last_ms; /* start or last ack */
    /* loop thread only */
    struct tx *cur;
    struct tx *qhead, *qtail;
    size_t nq;
};

struct stats {
    atomic_uint_fast64_t batches_sent, batches_refused, batches_dropped,
        msgs_dropped, batches_received, batches_rejected, snaps_sent,
        snaps_failed, snaps_received, snap_bytes_sent, snap_bytes_received;
};

struct rx;

struct bs_peer_net {
    uint64_t node_id;
    atomic_uint_fast64_t cluster_id;
    char *snap_dir;
    struct bs_rpc_client *client;
    void (*deliver)(void *ctx, struct bs_peer_inbound *in);
    void *ctx;
    size_t chunk_bytes;
    uint64_t snap_timeout_ms;
    uint64_t snap_max_bytes;
    struct bs_rpc_channel_opts chopts;
    struct bs_rpc_limits lim;

    pthread_mutex_t mu; /* the peer table and retired links */
    struct peer **peers;
    size_t npeers, cap;
    struct link *retired;

    pthread_mutex_t rx_mu; /* rxs and nstreams */
    pthread_cond_t rx_cv;  /* nstreams reached 0 */
    struct rx *rxs;
    size_t nstreams;
    atomic_uint_fast64_t rx_seq;

    uint8_t *chunk_buf; /* loop thread: one chunk of file data */
    struct stats st;

    /* Snapshot bandwidth: one token bucket for every peer. The rate is
     * set from any thread; the bucket belongs to the loop thread, which
     * notices a new rate at its next poll. Tokens are milli-bytes, so that
     * a refill of a few ms at a low rate loses nothing; they go negative
     * when a chunk larger than the bucket is let through. */
    atomic_uint_fast64_t snap_rate; /* bytes per second, 0 = unlimited */
    uint64_t bucket_rate;           /* loop thread: the rate it follows */
    int64_t bucket_mb;              /* loop thread: tokens */
    uint64_t bucket_ms;             /* loop thread: last refill */
    size_t poll_next;               /* loop thread: first peer polled */
    atomic_uint_fast32_t snap_sending, snap_receiving;
};

static void inc(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Removes dir and the plain files in it (images are flat). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char path[MAX_PATH + 300];
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* ============================================================ inbound */

void bs_peer_inbound_free(struct bs_peer_inbound *in)
{
    if (!in)
        return;
    bs_rpc_raft_batch_free(&in->batch_);
    free(in->buf_);
    free(in);
}

/* ============================================================ options */

void bs_peer_net_opts_init(struct bs_peer_net_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->snap_chunk_bytes = BS_PEER_DEFAULT_CHUNK_BYTES;
    o->snap_timeout_ms = BS_PEER_DEFAULT_SNAP_TIMEOUT;
    o->snap_max_bytes = BS_PEER_DEFAULT_SNAP_MAX;
    bs_rpc_channel_opts_init(&o->channel);
}

static void set_err(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(char *errmsg, const char *fmt, ...)
{
    if (!errmsg)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, BS_RPC_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

/* Removes what an earlier run left half-received in snap_dir. */
static void clean_snap_dir(const char *snap_dir)
{
    DIR *d = opendir(snap_dir);
    if (!d)
        return;
    struct dirent *de;
    char path[MAX_PATH];
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, IN_PREFIX, strlen(IN_PREFIX)) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", snap_dir, de->d_name);
        remove_tree(path);
    }
    closedir(d);
}

int bs_peer_net_create(const struct bs_peer_net_opts *o,
                       struct bs_peer_net **out, char *errmsg)
{
    *out = NULL;
    if (!o || o->node_id == 0 || !o->client || !o->deliver || !o->snap_dir ||
        !o->snap_dir[0]) {
        set_err(errmsg, "peer net: node_id, client, deliver and snap_dir "
                        "are required");
        return BS_EINVAL;
    }
    if (strlen(o->snap_dir) > MAX_SNAP_DIR) {
        set_err(errmsg, "peer net: snap_dir is longer than %d bytes",
                MAX_SNAP_DIR);
        return BS_EINVAL;
    }
    if (o->snap_chunk_bytes > MAX_CHUNK) {
        set_err(errmsg, "peer net: snap_chunk_bytes %zu is over %u",
                o->snap_chunk_bytes, MAX_CHUNK);
        return BS_EINVAL;
    }
    if (mkdir(o->snap_dir, 0700) != 0 && errno != EEXIST) {
        set_err(errmsg, "peer net: cannot create %s: %s", o->snap_dir,
                strerror(errno));
        return BS_EIO;
    }
    struct bs_peer_net *net = calloc(1, sizeof(*net));
    if (!net) {
        set_err(errmsg, "peer net: out of memory");
        return BS_ENOMEM;
    }
    net->node_id = o->node_id;
    atomic_init(&net->cluster_id, o->cluster_id);
    net->client = o->client;
    net->deliver = o->deliver;
    net->ctx = o->ctx;
    net->chunk_bytes =
        o->snap_chunk_bytes ? o->snap_chunk_bytes : BS_PEER_DEFAULT_CHUNK_BYTES;
    net->snap_timeout_ms =
        o->snap_timeout_ms ? o->snap_timeout_ms : BS_PEER_DEFAULT_SNAP_TIMEOUT;
    net->snap_max_bytes =
        o->snap_max_bytes ? o->snap_max_bytes : BS_PEER_DEFAULT_SNAP_MAX;
    net->chopts = o->channel;
    bs_rpc_limits_default(&net->lim);
    net->snap_dir = strdup(o->snap_dir);
    net->chunk_buf = malloc(net->chunk_bytes);
    if (!net->snap_dir || !net->chunk_buf) {
        free(net->snap_dir);
        free(net->chunk_buf);
        free(net);
        set_err(errmsg, "peer net: out of memory");
        return BS_ENOMEM;
    }
    pthread_mutex_init(&net->mu, NULL);
    pthread_mutex_init(&net->rx_mu, NULL);
    pthread_cond_init(&net->rx_cv, NULL);
    clean_snap_dir(net->snap_dir);
    *out = net;
    return 0;
}

void bs_peer_net_set_cluster_id(struct bs_peer_net *net, uint64_t cluster_id)
{
    atomic_store(&net->cluster_id, cluster_id);
}

/* ============================================================== peers */

static struct peer *find_peer(struct bs_peer_net *net, uint64_t node_id)
{
    struct peer *p = NULL;
    pthread_mutex_lock(&net->mu);
    for (size_t i = 0; i < net->npeers; i++)
        if (net->peers[i]->node_id == node_id) {
            p = net->peers[i];
            break;
        }
    pthread_mutex_unlock(&net->mu);
    return p;
}

/* The i-th peer, NULL past the end (the table only grows). */
static struct peer *peer_at(struct bs_peer_net *net, size_t i)
{
    pthread_mutex_lock(&net->mu);
    struct peer *p = i < net->npeers ? net->peers[i] : NULL;
    pthread_mutex_unlock(&net->mu);
    return p;
}

static struct link *cur_link(struct peer *p)
{
    pthread_mutex_lock(&p->mu);
    struct link *l = p->link;
    pthread_mutex_unlock(&p->mu);
    return l;
}

/* The Raft stream went down with ndropped batches. */
static void raft_on_down(void *ctx, size_t ndropped, int rc)
{
    struct link *l = ctx;
    struct peer *p = l->p;
    inc(&p->net->st.batches_dropped, ndropped);
    bs_log(BS_LOG_INFO, MOD,
           "peer unreachable peer=%" PRIu64 " addr=%s dropped=%zu err=%s",
           p->node_id, bs_rpc_channel_addr(l->ch), ndropped, bs_err_name(rc));
}

static void snap_on_ack(void *ctx, const void *data, size_t len);
static void snap_on_down(void *ctx, size_t ndropped, int rc);

/* A channel to addr with its two streams. */
static int link_create(struct bs_peer_net *net, struct peer *p,
                       const char *addr, struct link **out)
{
    struct link *l = calloc(1, sizeof(*l));
    if (!l)
        return BS_ENOMEM;
    l->p = p;
    int rc = bs_rpc_channel_create(net->client, addr, &net->chopts, &l->ch);
    if (rc != 0) {
        free(l);
        return rc;
    }
    struct bs_rpc_stream_opts so = {
        .method = BS_PEER_METHOD_STREAM,
        .on_unreachable = raft_on_down,
        .ctx = l,
    };
    rc = bs_rpc_channel_open_stream(l->ch, &so, &l->raft);
    if (rc == 0) {
        struct bs_rpc_stream_opts ss = {
            .method = BS_PEER_METHOD_SNAPSHOT,
            .max_queued = 4 * BS_PEER_SNAP_WINDOW,
            .on_msg = snap_on_ack,
            .on_unreachable = snap_on_down,
            .ctx = l,
        };
        rc = bs_rpc_channel_open_stream(l->ch, &ss, &l->snap);
    }
    if (rc != 0) {
        bs_rpc_channel_destroy(l->ch);
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int bs_peer_net_set_addr(struct bs_peer_net *net, uint64_t node_id,
                         const char *addr)
{
    if (node_id == 0 || node_id == net->node_id || !addr || !addr[0])
        return BS_EINVAL;
    struct peer *p = find_peer(net, node_id);
    if (p) {
        pthread_mutex_lock(&p->mu);
        bool same = strcmp(p->addr, addr) == 0;
        pthread_mutex_unlock(&p->mu);
        if (same)
            return 0;
        char *a = strdup(addr);
        struct link *l = NULL;
        int rc = a ? link_create(net, p, addr, &l) : BS_ENOMEM;
        if (rc != 0) {
            free(a);
            return rc;
        }
        pthread_mutex_lock(&p->mu);
        struct link *old = p->link;
        char *olda = p->addr;
        p->link = l;
        p->addr = a;
        if (p->tx_live && p->tx_err == 0)
            p->tx_err = BS_EUNREACHABLE; /* its stream is the old one */
        pthread_mutex_unlock(&p->mu);
        free(olda);
        pthread_mutex_lock(&net->mu);
        old->next = net->retired;
        net->retired = old;
        pthread_mutex_unlock(&net->mu);
        bs_log(BS_LOG_INFO, MOD,
               "peer address changed peer=%" PRIu64 " addr=%s", node_id, addr);
        return 0;
    }

    p = calloc(1, sizeof(*p));
    if (!p)
        return BS_ENOMEM;
    p->net = net;
    p->node_id = node_id;
    p->addr = strdup(addr);
    pthread_mutex_init(&p->mu, NULL);
    int rc = p->addr ? link_create(net, p, addr, &p->link) : BS_ENOMEM;
    if (rc != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p->addr);
        free(p);
        return rc;
    }
    pthread_mutex_lock(&net->mu);
    /* Two threads adding the same peer at once: the second one loses. */
    bool dup = false;
    for (size_t i = 0; i < net->npeers; i++)
        dup = dup || net->peers[i]->node_id == node_id;
    if (!dup && net->npeers == net->cap) {
        size_t ncap = net->cap ? net->cap * 2 : 8;
        struct peer **np = realloc(net->peers, ncap * sizeof(*np));
        if (np) {
            net->peers = np;
            net->cap = ncap;
        }
    }
    rc = dup ? BS_EEXIST : net->npeers < net->cap ? 0 : BS_ENOMEM;
    if (rc == 0)
        net->peers[net->npeers++] = p;
    pthread_mutex_unlock(&net->mu);
    if (rc != 0) {
        bs_rpc_channel_destroy(p->link->ch);
        free(p->link);
        pthread_mutex_destroy(&p->mu);
        free(p->addr);
        free(p);
        return rc == BS_EEXIST ? bs_peer_net_set_addr(net, node_id, addr) : rc;
    }
    return 0;
}

struct bs_rpc_channel *bs_peer_net_channel(struct bs_peer_net *net,
                                           uint64_t node_id)
{
    struct peer *p = find_peer(net, node_id);
    return p ? cur_link(p)->ch : NULL;
}

/* ======================================================= sending side */

static void snap_drop(struct bs_peer_net *net, uint64_t to,
                      const struct bs_eng_envelope *e, const char *why)
{
    char path[MAX_PATH];
    size_t n = e->msg.snapshot.len;
    inc(&net->st.snaps_failed, 1);
    if (n == 0 || n >= sizeof(path))
        return;
    memcpy(path, e->msg.snapshot.data, n);
    path[n] = '\0';
    bs_log(BS_LOG_WARN, MOD,
           "snapshot not sent peer=%" PRIu64 " shard=%" PRIu64 " index=%" PRIu64
           " reason=\"%s\"",
           to, e->shard_id, e->msg.snapshot.meta.index, why);
    remove_tree(path);
}

static bool is_snap(const struct bs_eng_envelope *e)
{
    return e->kind == BS_ENG_ENV_RAFT && e->msg.type == BS_RAFT_MSG_SNAP;
}

/* Sends envs[n] as one or more RaftBatches on p's stream. */
static int send_batches(struct bs_peer_net *net, struct peer *p,
                        const struct bs_eng_envelope *envs, size_t n)
{
    struct bs_rpc_batch_hdr hdr = {
        .cluster_id = atomic_load(&net->cluster_id),
        .from_node = net->node_id,
        .to_node = p->node_id,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_rpc_raft_batch_encode(&hdr, envs, n, &buf, &len, em);
    if (rc != 0) {
        bs_log(BS_LOG_ERROR, MOD,
               "batch not encoded peer=%" PRIu64 " err=%s detail=\"%s\"",
               p->node_id, bs_err_name(rc), em);
        inc(&net->st.msgs_dropped, n);
        return BS_EUNREACHABLE;
    }
    if (len > BS_PEER_MAX_BATCH_BYTES && n > 1) {
        free(buf);
        size_t h = n / 2;
        rc = send_batches(net, p, envs, h);
        if (rc != 0) {
            inc(&net->st.msgs_dropped, n - h);
            return rc;
        }
        return send_batches(net, p, envs + h, n - h);
    }
    rc = bs_rpc_stream_send(cur_link(p)->raft, buf, len);
    free(buf);
    if (rc != 0) {
        inc(&net->st.batches_refused, 1);
        inc(&net->st.msgs_dropped, n);
        return BS_EUNREACHABLE;
    }
    inc(&net->st.batches_sent, 1);
    return 0;
}

/* Takes the image of MsgSnap e over: queued behind p's transfer. */
static void snap_enqueue(struct bs_peer_net *net, struct peer *p,
                         const struct bs_eng_envelope *e)
{
    size_t n = e->msg.snapshot.len;
    if (n == 0 || n >= MAX_PATH) {
        inc(&net->st.snaps_failed, 1);
        bs_log(BS_LOG_ERROR, MOD,
               "MsgSnap without an image path peer=%" PRIu64 " shard=%" PRIu64,
               p->node_id, e->shard_id);
        return;
    }
    if (p->nq >= BS_PEER_MAX_QUEUED_SNAPS) {
        inc(&net->st.msgs_dropped, 1);
        snap_drop(net, p->node_id, e, "too many images queued");
        return;
    }
    struct tx *t = calloc(1, sizeof(*t));
    char *dir = t ? strndup((const char *)e->msg.snapshot.data, n) : NULL;
    if (!dir) {
        free(t);
        inc(&net->st.msgs_dropped, 1);
        snap_drop(net, p->node_id, e, "out of memory");
        return;
    }
    t->env = *e;
    t->env.msg.entries = NULL;
    t->env.msg.n_entries = 0;
    t->env.msg.snapshot.data = NULL;
    t->env.msg.snapshot.len = 0;
    t->dir = dir;
    t->fd = -1;
    if (p->qtail)
        p->qtail->next = t;
    else
        p->qhead = t;
    p->qtail = t;
    p->nq++;
}

static int t_send(void *ctx, uint64_t to, const struct bs_eng_envelope *envs,
                  size_t n)
{
    struct bs_peer_net *net = ctx;
    struct peer *p = find_peer(net, to);
    size_t nsnap = 0;
    for (size_t i = 0; i < n; i++)
        nsnap += is_snap(&envs[i]);
    if (!p) {
        inc(&net->st.msgs_dropped, n);
        for (size_t i = 0; i < n; i++)
            if (is_snap(&envs[i]))
                snap_drop(net, to, &envs[i], "unknown peer");
        return BS_EUNREACHABLE;
    }
    int rc = 0;
    if (nsnap == 0) {
        rc = n > 0 ? send_batches(net, p, envs, n) : 0;
    } else if (n > nsnap) {
        struct bs_eng_envelope *rest = malloc((n - nsnap) * sizeof(*rest));
        if (!rest) {
            inc(&net->st.msgs_dropped, n);
            rc = BS_EUNREACHABLE;
        } else {
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (!is_snap(&envs[i]))
                    rest[k++] = envs[i];
            rc = send_batches(net, p, rest, k);
            free(rest);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_snap(&envs[i]))
            continue;
        if (rc != 0) {
            inc(&net->st.msgs_dropped, 1);
            snap_drop(net, to, &envs[i], "peer unreachable");
        } else
            snap_enqueue(net, p, &envs[i]);
    }
    return rc;
}

static uint64_t t_now_ms(void *ctx)
{
    (void)ctx;
    return mono_ms();
}

static const struct bs_eng_transport_ops transport_ops = {
    .send = t_send,
    .now_ms = t_now_ms,
};

void bs_peer_net_transport(struct bs_peer_net *net, struct bs_eng_transport *t)
{
    t->ops = &transport_ops;
    t->ctx = net;
}

/* ------------------------------------------------ snapshot transfers */

static void tx_free(struct tx *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd);
    for (size_t i = 0; i < t->nfiles; i++)
        free(t->names[i]);
    free(t->names);
    free(t->sizes);
    free(t->pend);
    free(t->dir);
    free(t);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the regular files of t->dir, by name. */
static int tx_list(struct tx *t, char *why, size_t whylen)
{
    DIR *d = opendir(t->dir);
    if (!d) {
        snprintf(why, whylen, "cannot open %.200s: %s", t->dir,
                 strerror(errno));
        return BS_EIO;
    }
    size_t cap = 0;
    int rc = 0;
    struct dirent *de;
    char path[MAX_PATH + 300];
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", t->dir, de->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (strlen(de->d_name) > 255) {
            snprintf(why, whylen, "file name too long in %.200s", t->dir);
            rc = BS_EINVAL;
            break;
        }
        if (t->nfiles == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(t->names, ncap * sizeof(*nn));
            if (nn)
                t->names = nn;
            uint64_t *ns = nn ? realloc(t->sizes, ncap * sizeof(*ns)) : NULL;
            if (ns)
                t->sizes = ns;
            if (!nn || !ns) {
                rc = BS_ENOMEM;
                break;
            }
            cap = ncap;
        }
        t->names[t->nfiles] = strdup(de->d_name);
        if (!t->names[t->nfiles]) {
            rc = BS_ENOMEM;
            break;
        }
        t->sizes[t->nfiles++] = (uint64_t)sb.st_size;
    }
    closedir(d);
    if (rc == BS_ENOMEM)
        snprintf(why, whylen, "out of memory listing %.200s", t->dir);
    if (rc == 0) {
        /* Names and sizes sorted together: sort an index. */
        for (size_t i = 1; i < t->nfiles; i++)
            for (size_t j = i;
                 j > 0 && cmp_names(&t->names[j - 1], &t->names[j]) > 0; j--) {
                char *tn = t->names[j];
                t->names[j] = t->names[j - 1];
                t->names[j - 1] = tn;
                uint64_t ts = t->sizes[j];
                t->sizes[j] = t->sizes[j - 1];
                t->sizes[j - 1] = ts;
            }
    }
    return rc;
}

/* Ends p's transfer: ok (delivered) or not, why says. */
static void tx_end(struct bs_peer_net *net, struct peer *p, bool ok,
                   const char *why)
{
    struct tx *t = p->cur;
    pthread_mutex_lock(&p->mu);
    p->tx_live = false;
    p->tx_sending = false;
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_sub(&net->snap_sending, 1);
    if (ok) {
        inc(&net->st.snaps_sent, 1);
        bs_log(BS_LOG_INFO, MOD,
               "snapshot sent peer=%" PRIu64 " shard=%" PRIu64 " index=%" PRIu64
               " files=%zu chunks=%" PRIu64,
               p->node_id, t->env.shard_id, t->env.msg.snapshot.meta.index,
               t->nfiles, t->chunks_sent);
    } else {
        inc(&net->st.snaps_failed, 1);
        bs_log(BS_LOG_WARN, MOD,
               "snapshot failed peer=%" PRIu64 " shard=%" PRIu64
               " index=%" PRIu64 " reason=\"%s\"",
               p->node_id, t->env.shard_id, t->env.msg.snapshot.meta.index,
               why);
    }
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    remove_tree(t->dir);
    tx_free(t);
    p->cur = NULL;
}

/* Pops the next image of p and publishes it. */
static int tx_start(struct bs_peer_net *net, struct peer *p, char *why,
                    size_t whylen)
{
    struct tx *t = p->qhead;
    p->qhead = t->next;
    if (!p->qhead)
        p->qtail = NULL;
    p->nq--;
    t->next = NULL;
    p->cur = t;
    int rc = tx_list(t, why, whylen);
    pthread_mutex_lock(&p->mu);
    t->link = p->link;
    p->tx_live = true;
    p->tx_sending = false;
    p->tx_shard = t->env.shard_id;
    p->tx_index = t->env.msg.snapshot.meta.index;
    p->tx_term = t->env.msg.snapshot.meta.term;
    p->tx_acked = 0;
    p->tx_done = false;
    p->tx_err = 0;
    p->tx_last_ms = mono_ms();
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_add(&net->snap_sending, 1);
    return rc;
}

/* Reads and encodes t's next chunk into t->pend. */
static int tx_make_chunk(struct bs_peer_net *net, struct tx *t, char *why,
                         size_t whylen)
{
    struct bs_rpc_snap_chunk c;
    memset(&c, 0, sizeof(c));
    c.cluster_id = atomic_load(&net->cluster_id);
    c.from_node = net->node_id;
    c.shard_id = t->env.shard_id;
    c.meta = t->env.msg.snapshot.meta;
    if (!t->first_sent) {
        c.has_msg = true;
        c.msg = t->env;
    }
    size_t n = 0;
    if (t->fi < t->nfiles) {
        const char *name = t->names[t->fi];
        uint64_t size = t->sizes[t->fi];
        if (t->fd < 0) {
            char path[MAX_PATH + 300];
            snprintf(path, sizeof(path), "%s/%s", t->dir, name);
            t->fd = open(path, O_RDONLY | O_CLOEXEC);
            if (t->fd < 0) {
                snprintf(why, whylen, "cannot open %.200s: %s", path,
                         strerror(errno));
                return BS_EIO;
            }
        }
        uint64_t left = size - t->foff;
        n = left < net->chunk_bytes ? (size_t)left : net->chunk_bytes;
        size_t got = 0;
        while (got < n) {
            ssize_t r = pread(t->fd, net->chunk_buf + got, n - got,
                              (off_t)(t->foff + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                snprintf(why, whylen, "cannot read %s: %s", name,
                         r < 0 ? strerror(errno) : "file shrank");
                return BS_EIO;
            }
            got += (size_t)r;
        }
        c.file = name;
        c.file_len = strlen(name);
        c.offset = t->foff;
        c.data = net->chunk_buf;
        c.len = n;
        t->foff += n;
        if (t->foff >= size) {
            close(t->fd);
            t->fd = -1;
            t->fi++;
            t->foff = 0;
        }
    }
    c.last = t->fi >= t->nfiles;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_rpc_snap_chunk_encode(&c, &t->pend, &t->pend_len, em);
    if (rc != 0) {
        snprintf(why, whylen, "cannot encode a chunk: %s", em);
        return rc;
    }
    t->pend_bytes = n;
    t->pend_last = c.last;
    return 0;
}

/* ------------------------------------------------- snapshot bandwidth */

/*
 * Why a bucket of about 100 ms of the rate: a transfer stays smooth (no
 * second-long bursts that Raft heartbeats on the same link queue behind)
 * while a poll every few ms still finds whole chunks' worth of tokens. A
 * chunk larger than the bucket (a low rate with 1 MiB chunks) goes once
 * the bucket is full and leaves it in debt, so the average rate holds
 * whatever the sizes. Rates above 2^44 bytes/s count as 2^44, to keep the
 * arithmetic in 64 bits.
 */
#define BUCKET_MAX_RATE (1ull << 44)

static int64_t bucket_cap_mb(const struct bs_peer_net *net, uint64_t rate)
{
    uint64_t cap = rate / 10;
    if (cap < net->chunk_bytes)
        cap = net->chunk_bytes;
    return (int64_t)cap * 1000;
}

/* Loop thread, once per poll: follows the rate and refills the bucket. */
static void bucket_refill(struct bs_peer_net *net, uint64_t now)
{
    uint64_t rate = atomic_load(&net->snap_rate);
    if (rate > BUCKET_MAX_RATE)
        rate = BUCKET_MAX_RATE;
    if (rate != net->bucket_rate) {
        /* A new rate starts with a full bucket. */
        net->bucket_rate = rate;
        net->bucket_mb = bucket_cap_mb(net, rate);
        net->bucket_ms = now;
        return;
    }
    if (rate == 0 || now <= net->bucket_ms)
        return;
    uint64_t el = now - net->bucket_ms;
    net->bucket_ms = now;
    if (el > 10000)
        el = 10000; /* the bucket is full long before */
    int64_t cap = bucket_cap_mb(net, rate);
    net->bucket_mb += (int64_t)(el * rate); /* ms x bytes/s = milli-bytes */
    if (net->bucket_mb > cap)
        net->bucket_mb = cap;
}

/* Whether a chunk of n bytes may go now. */
static bool bucket_allows(const struct bs_peer_net *net, size_t n)
{
    if (net->bucket_rate == 0)
        return true;
    int64_t need = (int64_t)n * 1000;
    int64_t cap = bucket_cap_mb(net, net->bucket_rate);
    return net->bucket_mb >= (need < cap ? need : cap);
}

static void bucket_take(struct bs_peer_net *net, size_t n)
{
    if (net->bucket_rate != 0)
        net->bucket_mb -= (int64_t)n * 1000;
}

void bs_peer_net_set_snapshot_rate(struct bs_peer_net *net,
                                   uint64_t bytes_per_sec)
{
    atomic_store(&net->snap_rate, bytes_per_sec);
}

void bs_peer_net_snapshot_stats(const struct bs_peer_net *net,
                                uint32_t *sending, uint32_t *receiving,
                                uint64_t *bytes_sent)
{
    if (sending)
        *sending = (uint32_t)atomic_load(&net->snap_sending);
    if (receiving)
        *receiving = (uint32_t)atomic_load(&net->snap_receiving);
    if (bytes_sent)
        *bytes_sent = atomic_load(&net->st.snap_bytes_sent);
}

/* Advances p's transfer as far as the window, the bandwidth limit and the
 * stream allow. */
static void tx_drive(struct bs_peer_net *net, struct peer *p)
{
    char why[BS_RPC_ERRMSG_LEN + 64] = "";
    if (!p->cur) {
        if (!p->qhead)
            return;
        int rc = tx_start(net, p, why, sizeof(why));
        if (rc != 0) {
            tx_end(net, p, false, why);
            return;
        }
    }
    struct tx *t = p->cur;
    pthread_mutex_lock(&p->mu);
    bool done = p->tx_done;
    int err = p->tx_err;
    uint64_t acked = p->tx_acked, last = p->tx_last_ms;
    pthread_mutex_unlock(&p->mu);
    if (done) {
        tx_end(net, p, true, NULL);
        return;
    }
    if (err) {
        snprintf(why, sizeof(why), "stream ended: %s", bs_strerror(err));
        tx_end(net, p, false, why);
        return;
    }
    /* With every chunk sent acknowledged and more to send, the transfer
     * waits on this side (the bandwidth limit), not on the peer: that is
     * no stall. The clock restarts when the next chunk goes (below). */
    bool waiting_here = !t->all_sent && t->chunks_sent == acked;
    if (!waiting_here && mono_ms() - last > net->snap_timeout_ms) {
        snprintf(why, sizeof(why), "no progress for %" PRIu64 " ms",
                 net->snap_timeout_ms);
        tx_end(net, p, false, why);
        return;
    }
    while (!t->all_sent && t->chunks_sent - acked < BS_PEER_SNAP_WINDOW) {
        if (!t->pend) {
            int rc = tx_make_chunk(net, t, why, sizeof(why));
            if (rc != 0) {
                tx_end(net, p, false, why);
                return;
            }
        }
        /* Held back, not blocked: the next poll tries again. */
        if (!bucket_allows(net, t->pend_len))
            break;
        if (!t->first_sent) {
            pthread_mutex_lock(&p->mu);
            p->tx_sending = true;
            pthread_mutex_unlock(&p->mu);
        }
        int rc = bs_rpc_stream_send(t->link->snap, t->pend, t->pend_len);
        if (rc == BS_EBUSY)
            break; /* the stream's queue is full: the same chunk later */
        if (rc != 0) {
            snprintf(why, sizeof(why), "stream refused a chunk: %s",
                     bs_strerror(rc));
            tx_end(net, p, false, why);
            return;
        }
        bucket_take(net, t->pend_len);
        if (t->chunks_sent == acked) {
            pthread_mutex_lock(&p->mu);
            p->tx_last_ms = mono_ms();
            pthread_mutex_unlock(&p->mu);
        }
        inc(&net->st.snap_bytes_sent, t->pend_bytes);
        t->chunks_sent++;
        t->first_sent = true;
        t->all_sent = t->pend_last;
        free(t->pend);
        t->pend = NULL;
    }
}

void bs_peer_net_poll(struct bs_peer_net *net)
{
    bucket_refill(net, mono_ms());
    pthread_mutex_lock(&net->mu);
    size_t n = net->npeers;
    pthread_mutex_unlock(&net->mu);
    if (n == 0)
        return;
    /* Each poll starts at the next peer: with a bandwidth limit, the
     * first peer polled gets the tokens, so the peers take turns. */
    size_t first = net->poll_next++ % n;
    for (size_t k = 0; k < n; k++)
        tx_drive(net, peer_at(net, (first + k) % n));
}

bool bs_peer_net_busy(struct bs_peer_net *net)
{
    struct peer *p;
    for (size_t i = 0; (p = peer_at(net, i)) != NULL; i++)
        if (p->cur || p->qhead)
            return true;
    return false;
}

/* An ack on the snapshot stream (client CQ thread). */
static void snap_on_ack(void *ctx, const void *data, size_t len)
{
    struct link *l = ctx;
    struct peer *p = l->p;
    struct bs_rpc_snap_ack a;
    char em[BS_RPC_ERRMSG_LEN] = "";
    int rc = bs_rpc_snap_ack_decode(data, len, &p->net->lim, &a, em);
    if (rc != 0) {
        bs_log(BS_LOG_WARN, MOD,
               "bad snapshot ack peer=%" PRIu64 " err=%s detail=\"%s\"",
               p->node_id, bs_err_name(rc), em);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->link == l && p->tx_live && a.shard_id == p->tx_shard &&
        a.index == p->tx_index && a.term == p->tx_term) {
        if (a.chunks > p->tx_acked)
            p->tx_acked = a.chunks;
        p->tx_done = p->tx_done || a.done;
        p->tx_last_ms = mono_ms();
    }
    pthread_mutex_unlock(&p->mu);
}

/* The snapshot stream went down: the image in flight is lost. */
static void snap_on_down(void *ctx, size_t ndropped, int rc)
{
    struct link *l = ctx;
    struct peer *p = l->p;
    (void)ndropped;
    pthread_mutex_lock(&p->mu);
    if (p->link == l && p->tx_live && p->tx_sending && p->tx_err == 0)
        p->tx_err = rc ? rc : BS_EUNREACHABLE;
    pthread_mutex_unlock(&p->mu);
}

/* ===================================================== receiving side */

/* One server Raft stream. */
struct rs {
    struct bs_peer_net *net;
    uint64_t from;
    bool closed;
};

/* One server snapshot stream and the image it is assembling. */
struct rx {
    struct bs_peer_net *net;
    struct bs_rpc_sstream *s;
    struct rx *prev, *next; /* net->rxs */
    uint64_t from;
    bool closed;
    atomic_bool superseded; /* set by another call of the same peer */
    bool active;            /* an image is being assembled */
    char dir[MAX_PATH];
    struct bs_eng_envelope msg;
    int fd;
    char file[256];
    uint64_t off, bytes, chunks;
    uint32_t files;
};

static void stream_count(struct bs_peer_net *net, int d)
{
    pthread_mutex_lock(&net->rx_mu);
    if (d > 0) {
        net->nstreams++;
    } else if (--net->nstreams == 0) {
        pthread_cond_broadcast(&net->rx_cv);
    }
    pthread_mutex_unlock(&net->rx_mu);
}

/* The sender fields every message carries. Returns 0, or an error with a
 * sentence in why. */
static int check_sender(struct bs_peer_net *net, uint64_t *stream_from,
                        uint64_t cluster_id, uint64_t from, char *why,
                        size_t whylen)
{
    uint64_t ours = atomic_load(&net->cluster_id);
    if (ours != 0 && cluster_id != 0 && cluster_id != ours) {
        snprintf(why, whylen,
                 "cluster id %" PRIu64 " is not this cluster's %" PRIu64,
                 cluster_id, ours);
        return BS_EINVAL;
    }
    if (from == 0 || from == net->node_id) {
        snprintf(why, whylen, "from_node %" PRIu64 " is not a peer", from);
        return BS_EPROTO;
    }
    if (*stream_from != 0 && from != *stream_from) {
        snprintf(why, whylen,
                 "from_node changed from %" PRIu64 " to %" PRIu64
                 " within a stream",
                 *stream_from, from);
        return BS_EPROTO;
    }
    *stream_from = from;
    return 0;
}

static void *raft_open(struct bs_rpc_sstream *s, void *ctx)
{
    struct bs_peer_net *net = ctx;
    struct rs *r = calloc(1, sizeof(*r));
    if (!r) {
        bs_rpc_sstream_close(s, BS_ENOMEM, "out of memory");
        return NULL;
    }
    r->net = net;
    stream_count(net, 1);
    return r;
}

static void raft_msg(struct bs_rpc_sstream *s, void *sctx, const void *data,
                     size_t len)
{
    struct rs *r = sctx;
    if (!r || r->closed)
        return;
    struct bs_peer_net *net = r->net;
    char why[BS_RPC_ERRMSG_LEN + 64] = "";
    int rc = 0;
    struct bs_peer_inbound *in = calloc(1, sizeof(*in));
    if (in)
        in->buf_ = malloc(len ? len : 1);
    if (!in || !in->buf_) {
        rc = BS_ENOMEM;
        snprintf(why, sizeof(why), "out of memory for a batch of %zu bytes",
                 len);
        goto refuse;
    }
    memcpy(in->buf_, data, len);
    char em[BS_RPC_ERRMSG_LEN] = "";
    rc = bs_rpc_raft_batch_decode(in->buf_, len, &net->lim, &in->batch_, em);
    if (rc != 0) {
        snprintf(why, sizeof(why), "malformed RaftBatch: %s", em);
        goto refuse;
    }
    const struct bs_rpc_batch_hdr *h = &in->batch_.hdr;
    rc = check_sender(net, &r->from, h->cluster_id, h->from_node, why,
                      sizeof(why));
    if (rc == 0 && h->to_node != net->node_id) {
        snprintf(why, sizeof(why),
                 "to_node %" PRIu64 " is not this node %" PRIu64, h->to_node,
                 net->node_id);
        rc = BS_EINVAL;
    }
    if (rc != 0)
        goto refuse;
    in->from_node = h->from_node;
    in->envs = in->batch_.envs;
    in->n = in->batch_.n_envs;
    inc(&net->st.batches_received, 1);
    net->deliver(net->ctx, in);
    return;

refuse:;
    /* The sender as it claims to be, for the log. */
    uint64_t claimed = in ? in->batch_.hdr.from_node : r->from;
    bs_peer_inbound_free(in);
    inc(&net->st.batches_rejected, 1);
    bs_log(BS_LOG_WARN, MOD,
           "raft stream refused from=%" PRIu64 " err=%s detail=\"%s\"", claimed,
           bs_err_name(rc), why);
    r->closed = true;
    bs_rpc_sstream_close(s, rc, why);
}

static void raft_end(struct bs_rpc_sstream *s, void *sctx, int rc)
{
    struct rs *r = sctx;
    (void)rc;
    if (!r)
        return; /* closed in on_open */
    if (!r->closed)
        bs_rpc_sstream_close(s, 0, NULL);
    struct bs_peer_net *net = r->net;
    free(r);
    stream_count(net, -1);
}

static const struct bs_rpc_stream_ops raft_ops = {
    .on_open = raft_open,
    .on_msg = raft_msg,
    .on_end = raft_end,
};

/* ------------------------------------------------ receiving images */

/* x starts or stops assembling an image (the count of
 * bs_peer_net_snapshot_stats). */
static void rx_set_active(struct rx *x, bool active)
{
    if (x->active == active)
        return;
    x->active = active;
    if (active)
        atomic_fetch_add(&x->net->snap_receiving, 1);
    else
        atomic_fetch_sub(&x->net->snap_receiving, 1);
}

static void rx_abort(struct rx *x, const char *why)
{
    if (!x->active)
        return;
    if (x->fd >= 0) {
        close(x->fd);
        x->fd = -1;
    }
    bs_log(BS_LOG_WARN, MOD,
           "partial snapshot removed from=%" PRIu64 " shard=%" PRIu64
           " index=%" PRIu64 " chunks=%" PRIu64 " reason=\"%s\"",
           x->from, x->msg.shard_id, x->msg.msg.snapshot.meta.index, x->chunks,
           why);
    remove_tree(x->dir);
    inc(&x->net->st.snaps_failed, 1);
    rx_set_active(x, false);
}

static void *snap_open(struct bs_rpc_sstream *s, void *ctx)
{
    struct bs_peer_net *net = ctx;
    struct rx *x = calloc(1, sizeof(*x));
    if (!x) {
        bs_rpc_sstream_close(s, BS_ENOMEM, "out of memory");
        return NULL;
    }
    x->net = net;
    x->s = s;
    x->fd = -1;
    atomic_init(&x->superseded, false);
    pthread_mutex_lock(&net->rx_mu);
    x->next = net->rxs;
    if (net->rxs)
        net->rxs->prev = x;
    net->rxs = x;
    net->nstreams++;
    pthread_mutex_unlock(&net->rx_mu);
    return x;
}

/* Marks the other calls of the same peer: their unfinished images go. */
static void supersede_others(struct rx *x)
{
    struct bs_peer_net *net = x->net;
    pthread_mutex_lock(&net->rx_mu);
    for (struct rx *o = net->rxs; o; o = o->next)
        if (o != x && o->from == x->from)
            atomic_store(&o->superseded, true);
    pthread_mutex_unlock(&net->rx_mu);
}

/* Starts the image of chunk c (which carries its MsgSnap). */
static int rx_begin(struct rx *x, const struct bs_rpc_snap_chunk *c, char *why,
                    size_t whylen)
{
    struct bs_peer_net *net = x->net;
    const struct bs_eng_envelope *e = &c->msg;
    if (e->kind != BS_ENG_ENV_RAFT || e->msg.type != BS_RAFT_MSG_SNAP) {
        snprintf(why, whylen,
                 "the first chunk's message is not a MsgSnap "
                 "(kind %u, type %u)",
                 e->kind, e->msg.type);
        return BS_EPROTO;
    }
    if (e->shard_id != c->shard_id ||
        e->msg.snapshot.meta.index != c->meta.index ||
        e->msg.snapshot.meta.term != c->meta.term || c->meta.index == 0) {
        snprintf(why, whylen,
                 "the MsgSnap (shard %" PRIu64 ", index %" PRIu64
                 ") does not match the chunk (shard %" PRIu64 ", index %" PRIu64
                 ")",
                 e->shard_id, e->msg.snapshot.meta.index, c->shard_id,
                 c->meta.index);
        return BS_EPROTO;
    }
    if (BS_ENG_REPLICA_NODE(e->msg.to) != net->node_id) {
        snprintf(why, whylen,
                 "the MsgSnap is for replica %" PRIu64 " of another node",
                 e->msg.to);
        return BS_EINVAL;
    }
    if (e->msg.n_entries != 0) {
        snprintf(why, whylen, "the MsgSnap carries entries");
        return BS_EPROTO;
    }
    rx_abort(x, "replaced by a new image");
    supersede_others(x);
    uint64_t seq = atomic_fetch_add(&net->rx_seq, 1);
    snprintf(x->dir, sizeof(x->dir),
             "%s/" IN_PREFIX "%" PRIu64 "-s%" PRIu64 "-i%" PRIu64 "-%" PRIu64,
             net->snap_dir, x->from, c->shard_id, c->meta.index, seq);
    if (mkdir(x->dir, 0700) != 0) {
        snprintf(why, whylen, "cannot create %.200s: %s", x->dir,
                 strerror(errno));
        return BS_EIO;
    }
    x->msg = *e;
    x->msg.msg.entries = NULL;
    x->msg.msg.snapshot.data = NULL;
    x->msg.msg.snapshot.len = 0;
    x->fd = -1;
    x->file[0] = '\0';
    x->off = x->bytes = x->chunks = 0;
    x->files = 0;
    rx_set_active(x, true);
    return 0;
}

/* Writes the file part of chunk c. */
static int rx_write(struct rx *x, const struct bs_rpc_snap_chunk *c, char *why,
                    size_t whylen)
{
    struct bs_peer_net *net = x->net;
    if (c->file_len == 0)
        return 0; /* the codec refuses data without a file */
    bool same = x->fd >= 0 && strlen(x->file) == c->file_len &&
                memcmp(x->file, c->file, c->file_len) == 0;
    if (!same) {
        if (x->fd >= 0) {
            close(x->fd);
            x->fd = -1;
        }
        if (c->offset != 0) {
            snprintf(why, whylen, "file %.*s starts at offset %" PRIu64,
                     (int)c->file_len, c->file, c->offset);
            return BS_EPROTO;
        }
        if (x->files >= BS_PEER_MAX_IMAGE_FILES) {
            snprintf(why, whylen, "more than %d files in an image",
                     BS_PEER_MAX_IMAGE_FILES);
            return BS_ETOOBIG;
        }
        memcpy(x->file, c->file, c->file_len);
        x->file[c->file_len] = '\0';
        char path[MAX_PATH + 300];
        snprintf(path, sizeof(path), "%s/%s", x->dir, x->file);
        x->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (x->fd < 0) {
            int e = errno;
            snprintf(why, whylen, "cannot create %s: %s", x->file,
                     e == EEXIST ? "sent twice" : strerror(e));
            return e == EEXIST ? BS_EPROTO : BS_EIO;
        }
        x->files++;
        x->off = 0;
    } else if (c->offset != x->off) {
        snprintf(why, whylen, "file %s: offset %" PRIu64 ", expected %" PRIu64,
                 x->file, c->offset, x->off);
        return BS_EPROTO;
    }
    if (c->len > net->snap_max_bytes - x->bytes) {
        snprintf(why, whylen, "image larger than %" PRIu64 " bytes",
                 net->snap_max_bytes);
        return BS_ETOOBIG;
    }
    size_t done = 0;
    while (done < c->len) {
        ssize_t w = write(x->fd, c->data + done, c->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(why, whylen, "cannot write %s: %s", x->file,
                     w < 0 ? strerror(errno) : "no progress");
            return BS_EIO;
        }
        done += (size_t)w;
    }
    x->off += c->len;
    x->bytes += c->len;
    inc(&net->st.snap_bytes_received, c->len);
    return 0;
}

/* Delivers the complete image of x. */
static int rx_finish(struct rx *x, char *why, size_t whylen)
{
    struct bs_peer_net *net = x->net;
    if (x->fd >= 0) {
        close(x->fd);
        x->fd = -1;
    }
    size_t n = strlen(x->dir);
    struct bs_peer_inbound *in = calloc(1, sizeof(*in));
    if (in)
        in->buf_ = malloc(n);
    if (!in || !in->buf_) {
        free(in);
        snprintf(why, whylen, "out of memory");
        return BS_ENOMEM;
    }
    memcpy(in->buf_, x->dir, n);
    in->from_node = x->from;
    in->snap_ = x->msg;
    in->snap_.msg.snapshot.data = in->buf_;
    in->snap_.msg.snapshot.len = n;
    in->envs = &in->snap_;
    in->n = 1;
    rx_set_active(x, false); /* the directory is the receiver's now */
    inc(&net->st.snaps_received, 1);
    bs_log(BS_LOG_INFO, MOD,
           "snapshot received from=%" PRIu64 " shard=%" PRIu64 " index=%" PRIu64
           " files=%u bytes=%" PRIu64,
           x->from, x->msg.shard_id, x->msg.msg.snapshot.meta.index, x->files,
           x->bytes);
    net->deliver(net->ctx, in);
    return 0;
}

static void rx_ack(struct rx *x, bool done)
{
    struct bs_rpc_snap_ack a;
    memset(&a, 0, sizeof(a));
    a.accepted = true;
    a.shard_id = x->msg.shard_id;
    a.index = x->msg.msg.snapshot.meta.index;
    a.term = x->msg.msg.snapshot.meta.term;
    a.chunks = x->chunks;
    a.bytes = x->bytes;
    a.done = done;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (bs_rpc_snap_ack_encode(&a, &buf, &len, NULL) == 0)
        (void)bs_rpc_sstream_send(x->s, buf, len); /* a lost ack: timeout */
    free(buf);
}

static void snap_msg(struct bs_rpc_sstream *s, void *sctx, const void *data,
                     size_t len)
{
    struct rx *x = sctx;
    if (!x || x->closed)
        return;
    if (atomic_exchange(&x->superseded, false))
        rx_abort(x, "the peer started a new image on another call");
    struct bs_peer_net *net = x->net;
    char why[BS_RPC_ERRMSG_LEN + 128] = "";
    char em[BS_RPC_ERRMSG_LEN] = "";
    struct bs_rpc_snap_chunk c;
    int rc = bs_rpc_snap_chunk_decode(data, len, &net->lim, &c, em);
    if (rc != 0) {
        snprintf(why, sizeof(why), "malformed SnapshotChunk: %s", em);
        goto refuse;
    }
    rc = check_sender(net, &x->from, c.cluster_id, c.from_node, why,
                      sizeof(why));
    if (rc != 0)
        goto refuse;
    if (c.has_msg) {
        rc = rx_begin(x, &c, why, sizeof(why));
        if (rc != 0)
            goto refuse;
    } else if (!x->active) {
        snprintf(why, sizeof(why),
                 "a chunk outside an image (the first "
                 "chunk of an image carries its MsgSnap)");
        rc = BS_EPROTO;
        goto refuse;
    } else if (c.shard_id != x->msg.shard_id ||
               c.meta.index != x->msg.msg.snapshot.meta.index ||
               c.meta.term != x->msg.msg.snapshot.meta.term) {
        snprintf(why, sizeof(why),
                 "a chunk of shard %" PRIu64 " index %" PRIu64
                 " inside the image of shard %" PRIu64 " index %" PRIu64,
                 c.shard_id, c.meta.index, x->msg.shard_id,
                 x->msg.msg.snapshot.meta.index);
        rc = BS_EPROTO;
        goto refuse;
    }
    rc = rx_write(x, &c, why, sizeof(why));
    if (rc != 0)
        goto refuse;
    x->chunks++;
    if (c.last) {
        rc = rx_finish(x, why, sizeof(why));
        if (rc != 0)
            goto refuse;
    }
    rx_ack(x, c.last);
    bs_rpc_snap_chunk_free(&c);
    return;

refuse:;
    uint64_t claimed = c.from_node ? c.from_node : x->from; /* for the log */
    bs_rpc_snap_chunk_free(&c);
    bs_log(BS_LOG_WARN, MOD,
           "snapshot stream refused from=%" PRIu64 " err=%s detail=\"%s\"",
           claimed, bs_err_name(rc), why);
    if (x->active)
        rx_abort(x, "refused");
    else
        inc(&net->st.snaps_failed, 1);
    x->closed = true;
    bs_rpc_sstream_close(s, rc, why);
}

static void snap_end(struct bs_rpc_sstream *s, void *sctx, int rc)
{
    struct rx *x = sctx;
    if (!x)
        return; /* closed in on_open */
    rx_abort(x, rc == 0 ? "the sender closed the stream mid-image"
                        : "the call ended mid-image");
    if (!x->closed)
        bs_rpc_sstream_close(s, 0, NULL);
    struct bs_peer_net *net = x->net;
    pthread_mutex_lock(&net->rx_mu);
    if (x->prev)
        x->prev->next = x->next;
    else
        net->rxs = x->next;
    if (x->next)
        x->next->prev = x->prev;
    if (--net->nstreams == 0)
        pthread_cond_broadcast(&net->rx_cv);
    pthread_mutex_unlock(&net->rx_mu);
    free(x);
}

static const struct bs_rpc_stream_ops snap_ops = {
    .on_open = snap_open,
    .on_msg = snap_msg,
    .on_end = snap_end,
};

int bs_peer_net_register(struct bs_peer_net *net, struct bs_rpc_server *srv)
{
    int rc =
        bs_rpc_server_add_stream(srv, BS_PEER_METHOD_STREAM, &raft_ops, net);
    if (rc == 0)
        rc = bs_rpc_server_add_stream(srv, BS_PEER_METHOD_SNAPSHOT, &snap_ops,
                                      net);
    return rc;
}

/* ============================================================== stats */

void bs_peer_net_stats(struct bs_peer_net *net, struct bs_peer_net_stats *st)
{
    const struct stats *s = &net->st;
    st->batches_sent = atomic_load(&s->batches_sent);
    st->batches_refused = atomic_load(&s->batches_refused);
    st->batches_dropped = atomic_load(&s->batches_dropped);
    st->msgs_dropped = atomic_load(&s->msgs_dropped);
    st->batches_received = atomic_load(&s->batches_received);
    st->batches_rejected = atomic_load(&s->batches_rejected);
    st->snaps_sent = atomic_load(&s->snaps_sent);
    st->snaps_failed = atomic_load(&s->snaps_failed);
    st->snaps_received = atomic_load(&s->snaps_received);
    st->snap_bytes_sent = atomic_load(&s->snap_bytes_sent);
    st->snap_bytes_received = atomic_load(&s->snap_bytes_received);
}

/* ============================================================ destroy */

void bs_peer_net_destroy(struct bs_peer_net *net)
{
    if (!net)
        return;
    /* Every server call ends once the server is shut down. */
    pthread_mutex_lock(&net->rx_mu);
    while (net->nstreams > 0)
        pthread_cond_wait(&net->rx_cv, &net->rx_mu);
    pthread_mutex_unlock(&net->rx_mu);

    for (size_t i = 0; i < net->npeers; i++)
        bs_rpc_channel_destroy(net->peers[i]->link->ch);
    for (struct link *l = net->retired; l; l = l->next)
        bs_rpc_channel_destroy(l->ch);
    while (net->retired) {
        struct link *next = net->retired->next;
        free(net->retired);
        net->retired = next;
    }
    for (size_t i = 0; i < net->npeers; i++) {
        struct peer *p = net->peers[i];
        if (p->cur)
            tx_end(net, p, false, "the transport is shutting down");
        while (p->qhead) {
            struct tx *t = p->qhead;
            p->qhead = t->next;
            remove_tree(t->dir);
            inc(&net->st.snaps_failed, 1);
            tx_free(t);
        }
        free(p->link);
        free(p->addr);
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
    free(net->peers);
    pthread_cond_destroy(&net->rx_cv);
    pthread_mutex_destroy(&net->rx_mu);
    pthread_mutex_destroy(&net->mu);
    free(net->chunk_buf);
    free(net->snap_dir);
    free(net);
}
