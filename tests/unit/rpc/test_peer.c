/*
 * test_peer.c - unit tests of rpc/peer.c, the peer transport: two nets in
 * one process, each with its own gRPC server on 127.0.0.1 (kernel-chosen
 * port) and client. Batches of several shards (entries with data,
 * heartbeats, node heartbeats) arrive intact and in order; real shard
 * images (bs_eng_snap_export) arrive complete and verify, and the sender's
 * directory goes; a multi-MiB image in 64 KiB chunks runs through the
 * ack window, and two images to one peer go one after the other; the
 * node's snapshot bandwidth limit holds two transfers to two peers to the
 * rate together (a lower bound on their time only), and a rate slower
 * than the stall timeout is not a stall; a peer
 * that is down never blocks send() and shows in the stats; malformed
 * bytes, a wrong to_node and a wrong cluster id end only their call; a
 * partial image is removed when its call ends and replaced by a new one.
 * Check forks each test, so gRPC starts and stops in each child.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"

#define WAIT_MS 60000

/* A test may set this before node_start (Check forks each test). */
static uint64_t opt_snap_timeout_ms;

/* ------------------------------------------------------------ helpers */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

static char *tmpdir(const char *what)
{
    char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "/tmp/basalt-%s-XXXXXX", what);
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Entries of dir whose name starts with "in-" (received images). */
static int count_in_dirs(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strncmp(de->d_name, "in-", 3) == 0;
    closedir(d);
    return n;
}

/* A port nobody listens on (bound, read, released). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t n = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------- a node */

#define MAX_INBOX 4096

struct node {
    uint64_t id;
    char *dir; /* scratch: snap/ and export/ below */
    char *snap_dir, *export_dir;
    struct bs_rpc_server *srv;
    struct bs_rpc_client *cl;
    struct bs_peer_net *net;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct bs_peer_inbound *inbox[MAX_INBOX];
    int n_in, taken;
};

static void deliver(void *ctx, struct bs_peer_inbound *in)
{
    struct node *n = ctx;
    pthread_mutex_lock(&n->mu);
    ck_assert_int_lt(n->n_in, MAX_INBOX);
    n->inbox[n->n_in++] = in;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

/* The next inbound, waiting up to ms; NULL on timeout. The caller frees
 * it. */
static struct bs_peer_inbound *next_in(struct node *n, int ms)
{
    int64_t until = now_ms() + ms;
    pthread_mutex_lock(&n->mu);
    while (n->taken == n->n_in && now_ms() < until) {
        pthread_mutex_unlock(&n->mu);
        sleep_ms(2);
        pthread_mutex_lock(&n->mu);
    }
    struct bs_peer_inbound *in =
        n->taken < n->n_in ? n->inbox[n->taken++] : NULL;
    pthread_mutex_unlock(&n->mu);
    return in;
}

static int inbox_count(struct node *n)
{
    pthread_mutex_lock(&n->mu);
    int k = n->n_in;
    pthread_mutex_unlock(&n->mu);
    return k;
}

static void node_start(struct node *n, uint64_t id, uint64_t cluster,
                       size_t chunk)
{
    memset(n, 0, sizeof(*n));
    n->id = id;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    n->dir = tmpdir("peer");
    n->snap_dir = malloc(strlen(n->dir) + 16);
    n->export_dir = malloc(strlen(n->dir) + 16);
    sprintf(n->snap_dir, "%s/snap", n->dir);
    sprintf(n->export_dir, "%s/export", n->dir);
    ck_assert_int_eq(mkdir(n->export_dir, 0700), 0);

    ck_assert_int_eq(bs_rpc_client_create(0, &n->cl), 0);
    struct bs_rpc_server_opts so;
    bs_rpc_server_opts_init(&so);
    so.addr = "127.0.0.1:0";
    char err[BS_RPC_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_rpc_server_create(&so, &n->srv, err), 0);

    struct bs_peer_net_opts o;
    bs_peer_net_opts_init(&o);
    o.node_id = id;
    o.cluster_id = cluster;
    o.snap_dir = n->snap_dir;
    o.client = n->cl;
    o.deliver = deliver;
    o.ctx = n;
    if (chunk)
        o.snap_chunk_bytes = chunk;
    if (opt_snap_timeout_ms)
        o.snap_timeout_ms = opt_snap_timeout_ms;
    o.channel.backoff_min_ms = 50;
    o.channel.backoff_max_ms = 200;
    int rc = bs_peer_net_create(&o, &n->net, err);
    ck_assert_msg(rc == 0, "net create: %s (%s)", bs_err_name(rc), err);
    ck_assert(exists(n->snap_dir));
    ck_assert_int_eq(bs_peer_net_register(n->net, n->srv), 0);
    ck_assert_int_eq(bs_rpc_server_start(n->srv), 0);
    n->port = bs_rpc_server_port(n->srv);
}

/* a learns b's address. */
static void node_link(struct node *a, const struct node *b)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", b->port);
    ck_assert_int_eq(bs_peer_net_set_addr(a->net, b->id, addr), 0);
    struct bs_rpc_channel *ch = bs_peer_net_channel(a->net, b->id);
    ck_assert_ptr_nonnull(ch);
    ck_assert_str_eq(bs_rpc_channel_addr(ch), addr);
    /* Again: nothing changes. */
    ck_assert_int_eq(bs_peer_net_set_addr(a->net, b->id, addr), 0);
    ck_assert_ptr_eq(bs_peer_net_channel(a->net, b->id), ch);
}

/* Shuts down the servers first: each net then sees its calls end. */
static void nodes_stop(struct node *ns, int k)
{
    for (int i = 0; i < k; i++)
        bs_rpc_server_shutdown(ns[i].srv);
    for (int i = 0; i < k; i++) {
        bs_peer_net_destroy(ns[i].net);
        bs_rpc_server_destroy(ns[i].srv);
    }
    for (int i = 0; i < k; i++) {
        struct node *n = &ns[i];
        bs_rpc_client_destroy(n->cl);
        for (int j = n->taken; j < n->n_in; j++)
            bs_peer_inbound_free(n->inbox[j]);
        rm_rf(n->dir);
        free(n->dir);
        free(n->snap_dir);
        free(n->export_dir);
        pthread_cond_destroy(&n->cv);
        pthread_mutex_destroy(&n->mu);
    }
}

static struct bs_peer_net_stats stats(struct node *n)
{
    struct bs_peer_net_stats st;
    bs_peer_net_stats(n->net, &st);
    return st;
}

static int net_send(struct node *n, uint64_t to,
                    const struct bs_eng_envelope *envs, size_t k)
{
    struct bs_eng_transport t;
    bs_peer_net_transport(n->net, &t);
    return t.ops->send(t.ctx, to, envs, k);
}

/* Polls n's net until it is idle. */
static void drive(struct node *n)
{
    int64_t until = now_ms() + WAIT_MS;
    bs_peer_net_poll(n->net);
    while (bs_peer_net_busy(n->net) && now_ms() < until) {
        sleep_ms(2);
        bs_peer_net_poll(n->net);
    }
    ck_assert(!bs_peer_net_busy(n->net));
}

/* ------------------------------------------------------ batches of k */

/* Envelope j of batch b, to node `to`: a mix of kinds, shards and
 * entries; entries' data borrow from buf. */
static void make_env(struct bs_eng_envelope *e, struct bs_raft_entry *ents,
                     uint8_t *buf, uint64_t to, unsigned b, unsigned j)
{
    memset(e, 0, sizeof(*e));
    e->shard_id = 100 + j % 3;
    struct bs_raft_msg *m = &e->msg;
    m->to = BS_ENG_REPLICA_ID(to, e->shard_id);
    m->from = BS_ENG_REPLICA_ID(1, e->shard_id);
    m->term = 7 + b;
    m->index = b * 100 + j; /* the order check */
    m->commit = b;
    m->ctx = 0xabcdef00u + j;
    switch (j % 4) {
    case 0: /* an append with entries */
        e->kind = BS_ENG_ENV_RAFT;
        m->type = BS_RAFT_MSG_APP;
        m->log_term = 6;
        m->n_entries = 3;
        m->entries = ents;
        for (unsigned k = 0; k < 3; k++) {
            ents[k].term = 7;
            ents[k].index = m->index + k + 1;
            ents[k].type = BS_RAFT_ENTRY_NORMAL;
            ents[k].len = (uint32_t)((b * 31 + j * 7 + k * 101) % 3000);
            ents[k].data = buf + k * 3000;
            for (uint32_t i = 0; i < ents[k].len; i++)
                ents[k].data[i] = (uint8_t)(b + j + k + i * 13);
        }
        break;
    case 1:
        e->kind = BS_ENG_ENV_RAFT;
        m->type = BS_RAFT_MSG_HEARTBEAT;
        break;
    case 2:
        e->kind = BS_ENG_ENV_RAFT;
        m->type = BS_RAFT_MSG_APP_RESP;
        m->reject = true;
        m->reject_hint = 5;
        break;
    default:
        e->kind = BS_ENG_ENV_NODE_HEARTBEAT;
        e->shard_id = 0;
        break;
    }
}

static void assert_env_eq(const struct bs_eng_envelope *a,
                          const struct bs_eng_envelope *b)
{
    ck_assert_uint_eq(a->kind, b->kind);
    ck_assert_uint_eq(a->shard_id, b->shard_id);
    ck_assert_uint_eq(a->msg.type, b->msg.type);
    ck_assert_uint_eq(a->msg.to, b->msg.to);
    ck_assert_uint_eq(a->msg.from, b->msg.from);
    ck_assert_uint_eq(a->msg.term, b->msg.term);
    ck_assert_uint_eq(a->msg.log_term, b->msg.log_term);
    ck_assert_uint_eq(a->msg.index, b->msg.index);
    ck_assert_uint_eq(a->msg.commit, b->msg.commit);
    ck_assert_int_eq(a->msg.reject, b->msg.reject);
    ck_assert_uint_eq(a->msg.reject_hint, b->msg.reject_hint);
    ck_assert_uint_eq(a->msg.ctx, b->msg.ctx);
    ck_assert_uint_eq(a->msg.n_entries, b->msg.n_entries);
    for (size_t k = 0; k < a->msg.n_entries; k++) {
        const struct bs_raft_entry *x = &a->msg.entries[k];
        const struct bs_raft_entry *y = &b->msg.entries[k];
        ck_assert_uint_eq(x->term, y->term);
        ck_assert_uint_eq(x->index, y->index);
        ck_assert_uint_eq(x->type, y->type);
        ck_assert_uint_eq(x->len, y->len);
        ck_assert(x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
}

#define NBATCH 300
#define PERB   8

START_TEST(test_batches_in_order)
{
    struct node ns[2];
    node_start(&ns[0], 1, 77, 0);
    node_start(&ns[1], 2, 77, 0);
    node_link(&ns[0], &ns[1]);
    node_link(&ns[1], &ns[0]);
    struct node *a = &ns[0], *b = &ns[1];

    static struct bs_eng_envelope envs[PERB];
    static struct bs_raft_entry ents[PERB][3];
    static uint8_t bufs[PERB][3 * 3000];
    for (unsigned i = 0; i < NBATCH; i++) {
        for (unsigned j = 0; j < PERB; j++)
            make_env(&envs[j], ents[j], bufs[j], 2, i, j);
        int64_t t0 = now_ms();
        int rc = net_send(a, 2, envs, PERB);
        ck_assert_int_lt(now_ms() - t0, 1000);
        ck_assert_msg(rc == 0, "send %u: %s", i, bs_err_name(rc));
    }
    for (unsigned i = 0; i < NBATCH; i++) {
        struct bs_peer_inbound *in = next_in(b, WAIT_MS);
        ck_assert_msg(in != NULL, "batch %u never arrived", i);
        ck_assert_uint_eq(in->from_node, 1);
        ck_assert_uint_eq(in->n, PERB);
        for (unsigned j = 0; j < PERB; j++) {
            make_env(&envs[j], ents[j], bufs[j], 2, i, j);
            assert_env_eq(&in->envs[j], &envs[j]);
        }
        bs_peer_inbound_free(in);
    }
    struct bs_peer_net_stats sa = stats(a), sb = stats(b);
    ck_assert_uint_eq(sa.batches_sent, NBATCH);
    ck_assert_uint_eq(sa.batches_refused, 0);
    ck_assert_uint_eq(sa.msgs_dropped, 0);
    ck_assert_uint_eq(sb.batches_received, NBATCH);
    ck_assert_uint_eq(sb.batches_rejected, 0);

    /* The other way, on b's own channel. */
    make_env(&envs[0], ents[0], bufs[0], 1, 9, 1);
    ck_assert_int_eq(net_send(b, 1, envs, 1), 0);
    struct bs_peer_inbound *in = next_in(a, WAIT_MS);
    ck_assert_ptr_nonnull(in);
    ck_assert_uint_eq(in->from_node, 2);
    ck_assert_uint_eq(in->n, 1);
    assert_env_eq(&in->envs[0], &envs[0]);
    bs_peer_inbound_free(in);
    bs_peer_inbound_free(NULL);

    /* Unknown peers: refused at once. */
    ck_assert_int_eq(net_send(a, 99, envs, 1), BS_EUNREACHABLE);
    ck_assert_ptr_null(bs_peer_net_channel(a->net, 99));
    ck_assert_int_eq(bs_peer_net_set_addr(a->net, 1, "127.0.0.1:1"), BS_EINVAL);
    ck_assert_int_eq(bs_peer_net_set_addr(a->net, 0, "127.0.0.1:1"), BS_EINVAL);
    nodes_stop(ns, 2);
}
END_TEST

/* A batch larger than BS_PEER_MAX_BATCH_BYTES is split, and all of it
 * arrives in order. */
START_TEST(test_big_batch_split)
{
    struct node ns[2];
    node_start(&ns[0], 1, 0, 0);
    node_start(&ns[1], 2, 0, 0);
    node_link(&ns[0], &ns[1]);
    enum { N = 40, LEN = 1 << 20 };
    struct bs_eng_envelope *envs = calloc(N, sizeof(*envs));
    struct bs_raft_entry *ents = calloc(N, sizeof(*ents));
    uint8_t *data = malloc(LEN);
    for (int i = 0; i < LEN; i++)
        data[i] = (uint8_t)(i * 7);
    for (int i = 0; i < N; i++) {
        envs[i].kind = BS_ENG_ENV_RAFT;
        envs[i].shard_id = 5;
        envs[i].msg.type = BS_RAFT_MSG_APP;
        envs[i].msg.to = BS_ENG_REPLICA_ID(2, 5);
        envs[i].msg.from = BS_ENG_REPLICA_ID(1, 5);
        envs[i].msg.index = (uint64_t)i;
        envs[i].msg.entries = &ents[i];
        envs[i].msg.n_entries = 1;
        ents[i].index = (uint64_t)i + 1;
        ents[i].len = LEN;
        ents[i].data = data;
    }
    ck_assert_int_eq(net_send(&ns[0], 2, envs, N), 0);
    int got = 0, batches = 0;
    while (got < N) {
        struct bs_peer_inbound *in = next_in(&ns[1], WAIT_MS);
        ck_assert_ptr_nonnull(in);
        batches++;
        for (size_t j = 0; j < in->n; j++, got++) {
            ck_assert_uint_eq(in->envs[j].msg.index, (uint64_t)got);
            ck_assert_uint_eq(in->envs[j].msg.entries[0].len, LEN);
            ck_assert(memcmp(in->envs[j].msg.entries[0].data, data, LEN) == 0);
        }
        bs_peer_inbound_free(in);
    }
    ck_assert_int_ge(batches, 3);
    ck_assert_uint_eq(stats(&ns[0]).batches_sent, (uint64_t)batches);
    free(envs);
    free(ents);
    free(data);
    nodes_stop(ns, 2);
}
END_TEST

/* ------------------------------------------------------------ images */

/* Exports shard `shard` of a fresh db holding nkeys keys with values of
 * vlen random bytes into dir; returns its info. */
static struct bs_eng_snap_info export_image(const char *scratch, uint64_t shard,
                                            int nkeys, size_t vlen,
                                            uint64_t index, const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/db-%" PRIu64, scratch, shard);
    struct bs_eng_db *db = NULL;
    char err[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_db_open(path, NULL, &db, err), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(db, shard), 0);
    struct bs_eng_wb *wb = bs_eng_wb_create();
    uint8_t *v = malloc(vlen + 1);
    uint64_t x = 0x9e3779b97f4a7c15ull ^ shard;
    for (int i = 0; i < nkeys; i++) {
        char k[32];
        int kl = snprintf(k, sizeof(k), "key%08d", i);
        for (size_t j = 0; j < vlen; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[j] = (uint8_t)x;
        }
        ck_assert_int_eq(bs_eng_wb_put(wb, db, shard, k, (size_t)kl, v, vlen),
                         0);
        if (bs_eng_wb_bytes(wb) > (4u << 20)) {
            ck_assert_int_eq(bs_eng_db_write(db, wb, false), 0);
            bs_eng_wb_clear(wb);
        }
    }
    ck_assert_int_eq(bs_eng_db_write(db, wb, false), 0);
    bs_eng_wb_destroy(wb);
    free(v);
    struct bs_eng_snap_info info;
    int rc = bs_eng_snap_export(db, NULL, shard, index, 3, dir, &info, err);
    ck_assert_msg(rc == 0, "export: %s (%s)", bs_err_name(rc), err);
    bs_eng_db_close(db);
    return info;
}

/* The MsgSnap the store would hand the transport for image dir. */
static void snap_env(struct bs_eng_envelope *e, uint64_t shard, uint64_t to,
                     uint64_t index, const char *dir)
{
    memset(e, 0, sizeof(*e));
    e->kind = BS_ENG_ENV_RAFT;
    e->shard_id = shard;
    e->msg.type = BS_RAFT_MSG_SNAP;
    e->msg.to = BS_ENG_REPLICA_ID(to, 1);
    e->msg.from = BS_ENG_REPLICA_ID(1, 1);
    e->msg.term = 3;
    e->msg.snapshot.meta.index = index;
    e->msg.snapshot.meta.term = 3;
    e->msg.snapshot.meta.conf.n_voters = 2;
    e->msg.snapshot.meta.conf.voters[0] = BS_ENG_REPLICA_ID(1, 1);
    e->msg.snapshot.meta.conf.voters[1] = BS_ENG_REPLICA_ID(to, 1);
    e->msg.snapshot.data = (uint8_t *)(uintptr_t)dir;
    e->msg.snapshot.len = strlen(dir);
}

/* Checks a received image against what was exported, and removes it as
 * the receiving store would. */
static void check_received(struct node *b, struct bs_peer_inbound *in,
                           uint64_t shard, uint64_t index,
                           const struct bs_eng_snap_info *want)
{
    ck_assert_ptr_nonnull(in);
    ck_assert_uint_eq(in->from_node, 1);
    ck_assert_uint_eq(in->n, 1);
    const struct bs_eng_envelope *e = &in->envs[0];
    ck_assert_uint_eq(e->kind, BS_ENG_ENV_RAFT);
    ck_assert_uint_eq(e->shard_id, shard);
    ck_assert_uint_eq(e->msg.type, BS_RAFT_MSG_SNAP);
    ck_assert_uint_eq(e->msg.to, BS_ENG_REPLICA_ID(b->id, 1));
    ck_assert_uint_eq(e->msg.snapshot.meta.index, index);
    ck_assert_uint_eq(e->msg.snapshot.meta.term, 3);
    ck_assert_uint_eq(e->msg.snapshot.meta.conf.n_voters, 2);
    ck_assert_uint_eq(e->msg.snapshot.meta.conf.voters[1],
                      BS_ENG_REPLICA_ID(b->id, 1));
    char path[1024];
    ck_assert_uint_lt(e->msg.snapshot.len, sizeof(path));
    memcpy(path, e->msg.snapshot.data, e->msg.snapshot.len);
    path[e->msg.snapshot.len] = '\0';
    ck_assert_msg(strncmp(path, b->snap_dir, strlen(b->snap_dir)) == 0,
                  "image at %s, outside %s", path, b->snap_dir);
    struct bs_eng_snap_info got;
    char err[BS_ENG_ERRMSG_SIZE] = "";
    int rc = bs_eng_snap_verify(path, &got, err);
    ck_assert_msg(rc == 0, "verify %s: %s (%s)", path, bs_err_name(rc), err);
    ck_assert_uint_eq(got.shard_id, want->shard_id);
    ck_assert_uint_eq(got.index, want->index);
    ck_assert_uint_eq(got.term, want->term);
    ck_assert_uint_eq(got.keys, want->keys);
    ck_assert_uint_eq(got.bytes, want->bytes);
    ck_assert_uint_eq(got.files, want->files);
    rm_rf(path);
    bs_peer_inbound_free(in);
}

START_TEST(test_snapshot_image)
{
    struct node ns[2];
    node_start(&ns[0], 1, 77, 0);
    node_start(&ns[1], 2, 77, 0);
    node_link(&ns[0], &ns[1]);
    struct node *a = &ns[0], *b = &ns[1];
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/s7-i42", a->export_dir);
    struct bs_eng_snap_info info = export_image(a->dir, 7, 2000, 100, 42, dir);
    ck_assert_uint_eq(info.keys, 2000);

    /* The MsgSnap travels with other messages of the same call. */
    struct bs_eng_envelope envs[2];
    snap_env(&envs[0], 7, 2, 42, dir);
    memset(&envs[1], 0, sizeof(envs[1]));
    envs[1].kind = BS_ENG_ENV_NODE_HEARTBEAT;
    ck_assert_int_eq(net_send(a, 2, envs, 2), 0);
    ck_assert(bs_peer_net_busy(a->net));
    drive(a);
    ck_assert(!exists(dir));

    /* The heartbeat and the image, in either order. */
    struct bs_peer_inbound *hb = NULL, *img = NULL;
    for (int i = 0; i < 2; i++) {
        struct bs_peer_inbound *in = next_in(b, WAIT_MS);
        ck_assert_ptr_nonnull(in);
        if (in->envs[0].kind == BS_ENG_ENV_NODE_HEARTBEAT)
            hb = in;
        else
            img = in;
    }
    ck_assert_ptr_nonnull(hb);
    ck_assert_uint_eq(hb->n, 1);
    bs_peer_inbound_free(hb);
    check_received(b, img, 7, 42, &info);

    struct bs_peer_net_stats sa = stats(a), sb = stats(b);
    ck_assert_uint_eq(sa.snaps_sent, 1);
    ck_assert_uint_eq(sa.snaps_failed, 0);
    ck_assert_uint_eq(sb.snaps_received, 1);
    ck_assert_uint_eq(sb.snaps_failed, 0);
    ck_assert_uint_eq(sa.snap_bytes_sent, sb.snap_bytes_received);
    ck_assert_uint_ge(sa.snap_bytes_sent, info.bytes);
    ck_assert_int_eq(count_in_dirs(b->snap_dir), 0);
    nodes_stop(ns, 2);
}
END_TEST

/* Several MiB in 64 KiB chunks: a hundred round trips of the window; and
 * two images queued to one peer go one after the other. */
START_TEST(test_snapshot_flow_control)
{
    struct node ns[2];
    node_start(&ns[0], 1, 77, 64 << 10);
    node_start(&ns[1], 2, 77, 0);
    node_link(&ns[0], &ns[1]);
    struct node *a = &ns[0], *b = &ns[1];
    char d1[512], d2[512];
    snprintf(d1, sizeof(d1), "%s/s8-i90", a->export_dir);
    snprintf(d2, sizeof(d2), "%s/s9-i91", a->export_dir);
    struct bs_eng_snap_info i1 = export_image(a->dir, 8, 6000, 1000, 90, d1);
    struct bs_eng_snap_info i2 = export_image(a->dir, 9, 300, 100, 91, d2);
    ck_assert_uint_gt(i1.bytes, 5u << 20);

    struct bs_eng_envelope envs[2];
    snap_env(&envs[0], 8, 2, 90, d1);
    snap_env(&envs[1], 9, 2, 91, d2);
    ck_assert_int_eq(net_send(a, 2, envs, 2), 0);
    drive(a);
    ck_assert(!exists(d1));
    ck_assert(!exists(d2));
    check_received(b, next_in(b, WAIT_MS), 8, 90, &i1);
    check_received(b, next_in(b, WAIT_MS), 9, 91, &i2);
    struct bs_peer_net_stats sa = stats(a), sb = stats(b);
    ck_assert_uint_eq(sa.snaps_sent, 2);
    ck_assert_uint_eq(sb.snaps_received, 2);
    ck_assert_uint_eq(sa.snap_bytes_sent, sb.snap_bytes_received);
    ck_assert_uint_ge(sa.snap_bytes_sent, i1.bytes + i2.bytes);
    nodes_stop(ns, 2);
}
END_TEST

/* ------------------------------------------------ snapshot bandwidth */

struct snap_counts {
    uint32_t max_sending, max_receiving;
};

/* Polls a's net until it is idle, as the loop thread does, noting the
 * transfers under way on a and on the receivers rx[nrx]; returns the ms it
 * took. */
static int64_t drive_counting(struct node *a, struct node **rx, int nrx,
                              struct snap_counts *sc)
{
    int64_t t0 = now_ms(), until = t0 + WAIT_MS;
    memset(sc, 0, sizeof(*sc));
    bs_peer_net_poll(a->net);
    while (bs_peer_net_busy(a->net) && now_ms() < until) {
        uint32_t n = 0, total = 0;
        bs_peer_net_snapshot_stats(a->net, &n, NULL, NULL);
        if (n > sc->max_sending)
            sc->max_sending = n;
        for (int i = 0; i < nrx; i++) {
            bs_peer_net_snapshot_stats(rx[i]->net, NULL, &n, NULL);
            total += n;
        }
        if (total > sc->max_receiving)
            sc->max_receiving = total;
        sleep_ms(2);
        bs_peer_net_poll(a->net);
    }
    ck_assert(!bs_peer_net_busy(a->net));
    return now_ms() - t0;
}

/* The limit is per node: two images to two peers at once share it, so
 * the pair takes at least about (both sizes) / rate; both arrive intact,
 * and the counters show both transfers under way, then none. */
START_TEST(test_snapshot_rate_limit)
{
    struct node ns[3];
    node_start(&ns[0], 1, 77, 64 << 10);
    node_start(&ns[1], 2, 77, 0);
    node_start(&ns[2], 3, 77, 0);
    node_link(&ns[0], &ns[1]);
    node_link(&ns[0], &ns[2]);
    struct node *a = &ns[0], *b = &ns[1], *c = &ns[2];
    char d1[512], d2[512];
    snprintf(d1, sizeof(d1), "%s/s8-i90", a->export_dir);
    snprintf(d2, sizeof(d2), "%s/s9-i91", a->export_dir);
    struct bs_eng_snap_info i1 = export_image(a->dir, 8, 2000, 1000, 90, d1);
    struct bs_eng_snap_info i2 = export_image(a->dir, 9, 2000, 1000, 91, d2);
    ck_assert_uint_gt(i1.bytes + i2.bytes, 3u << 20);

    uint32_t sending = 9, receiving = 9;
    uint64_t sent = 9;
    bs_peer_net_snapshot_stats(a->net, &sending, &receiving, &sent);
    ck_assert_uint_eq(sending, 0);
    ck_assert_uint_eq(receiving, 0);
    ck_assert_uint_eq(sent, 0);
    bs_peer_net_snapshot_stats(a->net, NULL, NULL, NULL);

    const uint64_t rate = 2u << 20;
    bs_peer_net_set_snapshot_rate(a->net, rate);
    struct bs_eng_envelope e1, e2;
    snap_env(&e1, 8, 2, 90, d1);
    snap_env(&e2, 9, 3, 91, d2);
    ck_assert_int_eq(net_send(a, 2, &e1, 1), 0);
    ck_assert_int_eq(net_send(a, 3, &e2, 1), 0);
    struct node *rx[2] = {b, c};
    struct snap_counts sc;
    int64_t took = drive_counting(a, rx, 2, &sc);
    check_received(b, next_in(b, WAIT_MS), 8, 90, &i1);
    check_received(c, next_in(c, WAIT_MS), 9, 91, &i2);

    double expect_ms = (double)(i1.bytes + i2.bytes) * 1000.0 / (double)rate;
    ck_assert_msg((double)took >= 0.7 * expect_ms,
                  "%" PRIu64 " bytes at %" PRIu64 " B/s took %" PRId64
                  " ms, expected at least about %.0f",
                  i1.bytes + i2.bytes, rate, took, expect_ms);
    ck_assert_uint_eq(sc.max_sending, 2);
    ck_assert_uint_ge(sc.max_receiving, 1);
    bs_peer_net_snapshot_stats(a->net, &sending, &receiving, &sent);
    ck_assert_uint_eq(sending, 0);
    ck_assert_uint_eq(receiving, 0);
    ck_assert_uint_eq(sent, stats(a).snap_bytes_sent);
    ck_assert_uint_ge(sent, i1.bytes + i2.bytes);
    bs_peer_net_snapshot_stats(b->net, &sending, &receiving, NULL);
    ck_assert_uint_eq(sending, 0);
    ck_assert_uint_eq(receiving, 0);
    ck_assert_uint_eq(stats(a).snaps_sent, 2);
    ck_assert_uint_eq(stats(a).snaps_failed, 0);
    nodes_stop(ns, 3);
}
END_TEST

/* A rate so low that each chunk waits longer than snap_timeout_ms for
 * its tokens: the transfer is slow, not stalled, and completes. */
START_TEST(test_snapshot_rate_below_timeout)
{
    opt_snap_timeout_ms = 300;
    struct node ns[2];
    node_start(&ns[0], 1, 77, 32 << 10);
    node_start(&ns[1], 2, 77, 0);
    node_link(&ns[0], &ns[1]);
    struct node *a = &ns[0], *b = &ns[1];
    char d1[512];
    snprintf(d1, sizeof(d1), "%s/s8-i90", a->export_dir);
    struct bs_eng_snap_info i1 = export_image(a->dir, 8, 200, 600, 90, d1);
    ck_assert_uint_gt(i1.bytes, 100u << 10);

    const uint64_t rate = 48u << 10; /* a 32 KiB chunk every ~700 ms */
    bs_peer_net_set_snapshot_rate(a->net, rate);
    struct bs_eng_envelope e;
    snap_env(&e, 8, 2, 90, d1);
    ck_assert_int_eq(net_send(a, 2, &e, 1), 0);
    struct node *rx[1] = {b};
    struct snap_counts sc;
    int64_t took = drive_counting(a, rx, 1, &sc);
    ck_assert_msg(stats(a).snaps_failed == 0,
                  "the limited transfer was taken for a stalled one");
    ck_assert_uint_eq(stats(a).snaps_sent, 1);
    check_received(b, next_in(b, WAIT_MS), 8, 90, &i1);
    /* The first bucketful goes at once: the rest waits for the rate. */
    double expect_ms = (double)(i1.bytes - (32u << 10)) * 1000.0 / (double)rate;
    ck_assert_msg((double)took >= 0.7 * expect_ms,
                  "%" PRIu64 " bytes at %" PRIu64 " B/s took %" PRId64
                  " ms, expected at least about %.0f",
                  i1.bytes, rate, took, expect_ms);
    ck_assert_uint_eq(sc.max_sending, 1);

    /* Unlimited again: the next image is not held back (it still
     * arrives; no bound on its time). */
    bs_peer_net_set_snapshot_rate(a->net, 0);
    char d2[512];
    snprintf(d2, sizeof(d2), "%s/s9-i91", a->export_dir);
    struct bs_eng_snap_info i2 = export_image(a->dir, 9, 200, 600, 91, d2);
    snap_env(&e, 9, 2, 91, d2);
    ck_assert_int_eq(net_send(a, 2, &e, 1), 0);
    drive(a);
    check_received(b, next_in(b, WAIT_MS), 9, 91, &i2);
    nodes_stop(ns, 2);
}
END_TEST

/* A fake image (the transport does not look inside). */
static void fake_image(const char *dir)
{
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char p[600];
    snprintf(p, sizeof(p), "%s/MANIFEST", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not really a manifest\n", f);
    fclose(f);
}

START_TEST(test_peer_down)
{
    struct node ns[1];
    node_start(&ns[0], 1, 77, 0);
    struct node *a = &ns[0];
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
    ck_assert_int_eq(bs_peer_net_set_addr(a->net, 2, addr), 0);

    struct bs_eng_envelope e;
    memset(&e, 0, sizeof(e));
    e.kind = BS_ENG_ENV_NODE_HEARTBEAT;
    int accepted = 0, refused = 0;
    int64_t until = now_ms() + WAIT_MS;
    while ((refused == 0 || stats(a).batches_dropped == 0) &&
           now_ms() < until) {
        int64_t t0 = now_ms();
        int rc = net_send(a, 2, &e, 1);
        ck_assert_int_lt(now_ms() - t0, 500); /* never blocks */
        ck_assert_msg(rc == 0 || rc == BS_EUNREACHABLE, "send: %s",
                      bs_err_name(rc));
        rc == 0 ? accepted++ : refused++;
        sleep_ms(2);
    }
    struct bs_peer_net_stats st = stats(a);
    ck_assert_int_ge(refused, 1);
    ck_assert_uint_eq(st.batches_refused, (uint64_t)refused);
    ck_assert_uint_eq(st.batches_sent, (uint64_t)accepted);
    ck_assert_uint_ge(st.batches_dropped, 1);
    ck_assert_uint_ge(st.msgs_dropped, (uint64_t)refused);

    /* Images to a peer that is down fail without blocking, and go. */
    int snaps = 0;
    uint64_t failed0 = st.snaps_failed;
    for (int i = 0; i < 3; i++) {
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/fake%d", a->export_dir, i);
        fake_image(dir);
        struct bs_eng_envelope s;
        snap_env(&s, 11, 2, 5 + (uint64_t)i, dir);
        int64_t t0 = now_ms();
        int rc = net_send(a, 2, &s, 1);
        ck_assert_int_lt(now_ms() - t0, 500);
        ck_assert_int_eq(rc, 0); /* no batch to refuse: queued */
        snaps++;
        int64_t t1 = now_ms();
        drive(a);
        ck_assert_int_lt(now_ms() - t1, 10000);
        ck_assert(!exists(dir));
    }
    st = stats(a);
    ck_assert_uint_eq(st.snaps_failed - failed0, (uint64_t)snaps);
    ck_assert_uint_eq(st.snaps_sent, 0);

    /* An image in a call refused as a whole goes at once. */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/fake-x", a->export_dir);
    fake_image(dir);
    struct bs_eng_envelope two[2];
    two[0] = e;
    snap_env(&two[1], 11, 2, 50, dir);
    int rc;
    until = now_ms() + WAIT_MS;
    do {
        if (exists(dir) == false) {
            fake_image(dir);
            snap_env(&two[1], 11, 2, 50, dir);
        }
        rc = net_send(a, 2, two, 2);
        if (rc == 0)
            drive(a);
    } while (rc == 0 && now_ms() < until);
    ck_assert_int_eq(rc, BS_EUNREACHABLE);
    ck_assert(!exists(dir));
    ck_assert(!bs_peer_net_busy(a->net));
    nodes_stop(ns, 1);
}
END_TEST

/* ------------------------------------------- raw streams to one node */

struct raw {
    atomic_int downs, last_rc, acks;
    struct bs_rpc_snap_ack last_ack;
    pthread_mutex_t mu;
};

static void raw_down(void *ctx, size_t ndropped, int rc)
{
    struct raw *r = ctx;
    (void)ndropped;
    atomic_store(&r->last_rc, rc);
    atomic_fetch_add(&r->downs, 1);
}

static void raw_msg(void *ctx, const void *data, size_t len)
{
    struct raw *r = ctx;
    struct bs_rpc_snap_ack a;
    ck_assert_int_eq(bs_rpc_snap_ack_decode(data, len, NULL, &a, NULL), 0);
    pthread_mutex_lock(&r->mu);
    r->last_ack = a;
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->acks, 1);
}

static void raw_init(struct raw *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
}

static bool wait_int(atomic_int *v, int target)
{
    int64_t until = now_ms() + WAIT_MS;
    while (atomic_load(v) < target && now_ms() < until)
        sleep_ms(2);
    return atomic_load(v) >= target;
}

static struct bs_rpc_stream *raw_open(struct bs_rpc_channel *ch,
                                      const char *method, struct raw *r)
{
    struct bs_rpc_stream_opts so = {
        .method = method,
        .on_msg = raw_msg,
        .on_unreachable = raw_down,
        .ctx = r,
    };
    struct bs_rpc_stream *s = NULL;
    ck_assert_int_eq(bs_rpc_channel_open_stream(ch, &so, &s), 0);
    return s;
}

static void raw_batch(struct bs_rpc_stream *s, uint64_t cluster, uint64_t from,
                      uint64_t to)
{
    struct bs_rpc_batch_hdr h = {cluster, from, to};
    struct bs_eng_envelope e;
    memset(&e, 0, sizeof(e));
    e.kind = BS_ENG_ENV_NODE_HEARTBEAT;
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(bs_rpc_raft_batch_encode(&h, &e, 1, &buf, &len, NULL), 0);
    ck_assert_int_eq(bs_rpc_stream_send(s, buf, len), 0);
    free(buf);
}

static struct bs_rpc_channel *channel_to(struct bs_rpc_client *cl,
                                         const struct node *n)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", n->port);
    struct bs_rpc_channel *ch = NULL;
    ck_assert_int_eq(bs_rpc_channel_create(cl, addr, NULL, &ch), 0);
    return ch;
}

START_TEST(test_malformed_ends_only_that_call)
{
    struct node ns[2];
    node_start(&ns[0], 1, 77, 0);
    node_start(&ns[1], 2, 77, 0);
    node_link(&ns[0], &ns[1]);
    struct node *a = &ns[0], *b = &ns[1];
    struct bs_rpc_channel *ch = channel_to(a->cl, b);

    /* Garbage on the Raft stream. */
    struct raw r1;
    raw_init(&r1);
    struct bs_rpc_stream *s1 = raw_open(ch, BS_PEER_METHOD_STREAM, &r1);
    ck_assert_int_eq(bs_rpc_stream_send(s1, "\x0a\xff\xff\xff\x0f garbage", 12),
                     0);
    ck_assert(wait_int(&r1.downs, 1));
    ck_assert_int_eq(atomic_load(&r1.last_rc), BS_EPROTO);

    /* A well-formed batch for another node. */
    struct raw r2;
    raw_init(&r2);
    struct bs_rpc_stream *s2 = raw_open(ch, BS_PEER_METHOD_STREAM, &r2);
    raw_batch(s2, 77, 1, 3);
    ck_assert(wait_int(&r2.downs, 1));
    ck_assert_int_eq(atomic_load(&r2.last_rc), BS_EINVAL);

    /* A batch that claims to come from b itself. */
    struct raw r3;
    raw_init(&r3);
    struct bs_rpc_stream *s3 = raw_open(ch, BS_PEER_METHOD_STREAM, &r3);
    raw_batch(s3, 77, 2, 2);
    ck_assert(wait_int(&r3.downs, 1));
    ck_assert_int_eq(atomic_load(&r3.last_rc), BS_EPROTO);

    /* Garbage on the snapshot stream. */
    struct raw r4;
    raw_init(&r4);
    struct bs_rpc_stream *s4 = raw_open(ch, BS_PEER_METHOD_SNAPSHOT, &r4);
    ck_assert_int_eq(bs_rpc_stream_send(s4, "\xff\xff", 2), 0);
    ck_assert(wait_int(&r4.downs, 1));
    ck_assert_int_eq(atomic_load(&r4.last_rc), BS_EPROTO);

    struct bs_peer_net_stats sb = stats(b);
    ck_assert_uint_eq(sb.batches_rejected, 3);
    ck_assert_uint_eq(sb.batches_received, 0);
    ck_assert_int_eq(inbox_count(b), 0);

    /* b keeps serving: the net's own stream, and a new raw one. */
    struct bs_eng_envelope e;
    memset(&e, 0, sizeof(e));
    e.kind = BS_ENG_ENV_NODE_HEARTBEAT;
    ck_assert_int_eq(net_send(a, 2, &e, 1), 0);
    struct bs_peer_inbound *in = next_in(b, WAIT_MS);
    ck_assert_ptr_nonnull(in);
    ck_assert_uint_eq(in->from_node, 1);
    bs_peer_inbound_free(in);
    struct raw r5;
    raw_init(&r5);
    struct bs_rpc_stream *s5 = raw_open(ch, BS_PEER_METHOD_STREAM, &r5);
    raw_batch(s5, 0, 1, 2); /* a sender without a cluster id yet */
    in = next_in(b, WAIT_MS);
    ck_assert_ptr_nonnull(in);
    bs_peer_inbound_free(in);
    ck_assert_int_eq(atomic_load(&r5.downs), 0);

    bs_rpc_channel_destroy(ch);
    nodes_stop(ns, 2);
}
END_TEST

START_TEST(test_wrong_cluster)
{
    struct node ns[2];
    node_start(&ns[0], 1, 111, 0);
    node_start(&ns[1], 2, 222, 0);
    node_link(&ns[0], &ns[1]);
    struct node *a = &ns[0], *b = &ns[1];

    /* Batches: the call ends with BS_EINVAL; sends after it are refused
     * or dropped, never delivered. */
    struct bs_eng_envelope e;
    memset(&e, 0, sizeof(e));
    e.kind = BS_ENG_ENV_NODE_HEARTBEAT;
    int64_t until = now_ms() + 3000;
    while (now_ms() < until) {
        net_send(a, 2, &e, 1);
        sleep_ms(20);
    }
    ck_assert_int_eq(inbox_count(b), 0);
    struct bs_peer_net_stats sb = stats(b);
    ck_assert_uint_ge(sb.batches_rejected, 1);
    ck_assert_uint_eq(sb.batches_received, 0);
    struct bs_peer_net_stats sa = stats(a);
    ck_assert_uint_ge(sa.batches_dropped + sa.batches_refused, 1);

    /* An image: refused, removed on both sides. */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/img", a->export_dir);
    fake_image(dir);
    struct bs_eng_envelope s;
    snap_env(&s, 4, 2, 9, dir);
    int rc = net_send(a, 2, &s, 1);
    ck_assert(rc == 0 || rc == BS_EUNREACHABLE);
    drive(a);
    ck_assert(!exists(dir));
    ck_assert_uint_eq(stats(a).snaps_sent, 0);
    ck_assert_uint_ge(stats(a).snaps_failed, 1);
    ck_assert_int_eq(inbox_count(b), 0);
    ck_assert_int_eq(count_in_dirs(b->snap_dir), 0);

    /* Once b learns that it is in cluster 111, a gets through. */
    bs_peer_net_set_cluster_id(b->net, 111);
    until = now_ms() + WAIT_MS;
    while (inbox_count(b) == 0 && now_ms() < until) {
        net_send(a, 2, &e, 1);
        sleep_ms(20);
    }
    ck_assert_int_ge(inbox_count(b), 1);
    nodes_stop(ns, 2);
}
END_TEST

/* Sends one chunk of an image on a raw snapshot stream. */
static void raw_chunk(struct bs_rpc_stream *s, uint64_t shard, uint64_t index,
                      bool first, const char *file, uint64_t off,
                      const char *data, bool last)
{
    struct bs_rpc_snap_chunk c;
    memset(&c, 0, sizeof(c));
    c.cluster_id = 77;
    c.from_node = 1;
    c.shard_id = shard;
    c.meta.index = index;
    c.meta.term = 3;
    if (first) {
        c.has_msg = true;
        snap_env(&c.msg, shard, 2, index, "");
    }
    c.file = file;
    c.file_len = strlen(file);
    c.offset = off;
    c.data = (const uint8_t *)data;
    c.len = strlen(data);
    c.last = last;
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(bs_rpc_snap_chunk_encode(&c, &buf, &len, NULL), 0);
    ck_assert_int_eq(bs_rpc_stream_send(s, buf, len), 0);
    free(buf);
}

START_TEST(test_partial_images)
{
    struct node ns[2];
    node_start(&ns[0], 1, 77, 0);
    node_start(&ns[1], 2, 77, 0);
    struct node *a = &ns[0], *b = &ns[1];
    struct bs_rpc_channel *ch = channel_to(a->cl, b);

    /* Half an image, then the call ends: the directory goes. */
    struct raw r1;
    raw_init(&r1);
    struct bs_rpc_stream *s1 = raw_open(ch, BS_PEER_METHOD_SNAPSHOT, &r1);
    raw_chunk(s1, 5, 10, true, "000001.sst", 0, "hello", false);
    ck_assert(wait_int(&r1.acks, 1));
    ck_assert_uint_eq(r1.last_ack.chunks, 1);
    ck_assert_uint_eq(r1.last_ack.bytes, 5);
    ck_assert(!r1.last_ack.done);
    ck_assert_int_eq(count_in_dirs(b->snap_dir), 1);
    bs_rpc_channel_destroy(ch);
    int64_t until = now_ms() + WAIT_MS;
    while (count_in_dirs(b->snap_dir) > 0 && now_ms() < until)
        sleep_ms(5);
    ck_assert_int_eq(count_in_dirs(b->snap_dir), 0);

    /* A new image replaces an unfinished one; offsets must follow. */
    ch = channel_to(a->cl, b);
    struct raw r2;
    raw_init(&r2);
    struct bs_rpc_stream *s2 = raw_open(ch, BS_PEER_METHOD_SNAPSHOT, &r2);
    raw_chunk(s2, 5, 10, true, "000001.sst", 0, "hello", false);
    raw_chunk(s2, 5, 11, true, "000001.sst", 0, "world", false);
    raw_chunk(s2, 5, 11, false, "000001.sst", 5, "!", false);
    raw_chunk(s2, 5, 11, false, "MANIFEST", 0, "m", true);
    struct bs_peer_inbound *in = next_in(b, WAIT_MS);
    ck_assert_ptr_nonnull(in);
    ck_assert_uint_eq(in->envs[0].msg.snapshot.meta.index, 11);
    char path[1024];
    memcpy(path, in->envs[0].msg.snapshot.data, in->envs[0].msg.snapshot.len);
    path[in->envs[0].msg.snapshot.len] = '\0';
    char f[1200];
    snprintf(f, sizeof(f), "%s/000001.sst", path);
    FILE *fp = fopen(f, "r");
    ck_assert_ptr_nonnull(fp);
    char got[16] = "";
    ck_assert_uint_eq(fread(got, 1, sizeof(got), fp), 6);
    fclose(fp);
    ck_assert(memcmp(got, "world!", 6) == 0);
    ck_assert(wait_int(&r2.acks, 4));
    ck_assert(r2.last_ack.done);
    ck_assert_uint_eq(r2.last_ack.index, 11);
    ck_assert_int_eq(count_in_dirs(b->snap_dir), 1); /* the delivered one */
    rm_rf(path);
    bs_peer_inbound_free(in);

    /* A gap in the offsets ends the call and removes the partial image. */
    raw_chunk(s2, 6, 12, true, "a", 0, "xyz", false);
    raw_chunk(s2, 6, 12, false, "a", 4, "gap", false);
    ck_assert(wait_int(&r2.downs, 1));
    ck_assert_int_eq(atomic_load(&r2.last_rc), BS_EPROTO);
    ck_assert_int_eq(count_in_dirs(b->snap_dir), 0);

    /* A file name that escapes the directory is refused by the codec. */
    struct raw r3;
    raw_init(&r3);
    struct bs_rpc_stream *s3 = raw_open(ch, BS_PEER_METHOD_SNAPSHOT, &r3);
    {
        /* Encoded by hand: the encoder refuses such names too. */
        struct bs_rpc_snap_chunk c;
        memset(&c, 0, sizeof(c));
        c.cluster_id = 77;
        c.from_node = 1;
        c.shard_id = 6;
        c.meta.index = 13;
        c.meta.term = 3;
        c.has_msg = true;
        snap_env(&c.msg, 6, 2, 13, "");
        c.file = "xx";
        c.file_len = 2;
        c.data = (const uint8_t *)"d";
        c.len = 1;
        uint8_t *buf;
        size_t len;
        ck_assert_int_eq(bs_rpc_snap_chunk_encode(&c, &buf, &len, NULL), 0);
        uint8_t *hit = memmem(buf, len, "xx", 2);
        ck_assert_ptr_nonnull(hit);
        hit[0] = '.';
        hit[1] = '.';
        ck_assert_int_eq(bs_rpc_stream_send(s3, buf, len), 0);
        free(buf);
    }
    ck_assert(wait_int(&r3.downs, 1));
    ck_assert_int_eq(atomic_load(&r3.last_rc), BS_EPROTO);
    ck_assert_int_eq(count_in_dirs(b->snap_dir), 0);
    ck_assert_int_eq(inbox_count(b), 1);

    bs_rpc_channel_destroy(ch);
    nodes_stop(ns, 2);
}
END_TEST

/* A new address replaces the channel; the old one stays valid. */
START_TEST(test_set_addr_moves)
{
    struct node ns[3];
    node_start(&ns[0], 1, 77, 0);
    node_start(&ns[1], 2, 77, 0);
    node_start(&ns[2], 2, 77, 0); /* node 2, moved to another address */
    node_link(&ns[0], &ns[1]);
    struct bs_rpc_channel *old = bs_peer_net_channel(ns[0].net, 2);
    struct bs_eng_envelope e;
    memset(&e, 0, sizeof(e));
    e.kind = BS_ENG_ENV_NODE_HEARTBEAT;
    ck_assert_int_eq(net_send(&ns[0], 2, &e, 1), 0);
    struct bs_peer_inbound *in = next_in(&ns[1], WAIT_MS);
    ck_assert_ptr_nonnull(in);
    bs_peer_inbound_free(in);

    node_link(&ns[0], &ns[2]);
    ck_assert_ptr_ne(bs_peer_net_channel(ns[0].net, 2), old);
    char was[64];
    snprintf(was, sizeof(was), "127.0.0.1:%d", ns[1].port);
    ck_assert_str_eq(bs_rpc_channel_addr(old), was); /* still valid */
    ck_assert_int_eq(net_send(&ns[0], 2, &e, 1), 0);
    in = next_in(&ns[2], WAIT_MS);
    ck_assert_ptr_nonnull(in);
    bs_peer_inbound_free(in);
    nodes_stop(ns, 3);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rpc_peer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_batches_in_order);
    tcase_add_test(tc, test_big_batch_split);
    tcase_add_test(tc, test_snapshot_image);
    tcase_add_test(tc, test_snapshot_flow_control);
    tcase_add_test(tc, test_snapshot_rate_limit);
    tcase_add_test(tc, test_snapshot_rate_below_timeout);
    tcase_add_test(tc, test_peer_down);
    tcase_add_test(tc, test_malformed_ends_only_that_call);
    tcase_add_test(tc, test_wrong_cluster);
    tcase_add_test(tc, test_partial_images);
    tcase_add_test(tc, test_set_addr_moves);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
