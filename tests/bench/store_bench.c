/*
 * store_bench.c - benchmark of the multi-raft store (engine/store.c) on one
 * node, with the shard state machine (shard/) and a real, fsyncing RocksDB.
 *
 * Every group has a single replica (node 1), so nothing crosses a network:
 * the transport drops what it is given (there are no peers to reach) and
 * its clock is CLOCK_MONOTONIC. What is measured is the node's own write
 * path: propose -> one synced write batch per round for every group
 * (group commit) -> apply -> answer.
 *
 * For each shard count (--shards, default 1,8,64,1024) a fresh database is
 * bootstrapped with that many shards, each owning one slice of the keys
 * "k000000".."k999999". Every group is elected, then a closed loop keeps
 * --inflight PUTs of --value-size bytes outstanding: each one goes to the
 * next shard (round-robin, or --random), and its completion callback
 * proposes the next one until --seconds (or --ops) have passed. The main
 * loop calls bs_eng_store_process() and, every tick_ms of real time,
 * bs_eng_store_tick(). One row is printed per shard count: acknowledged
 * puts per second, fsyncs per second and entries per fsync (the store's
 * own counters), put latency (proposal to callback), CPU seconds used per
 * wall second (the whole process, RocksDB's threads included), and how
 * long one bs_eng_store_process() call held the thread at most: while it
 * runs nothing ticks, which matters because a put re-proposed from its
 * callback keeps the call going (--defer re-proposes from the main loop
 * instead, between calls).
 *
 * Then the idle test (--idle-seconds, default 10): --idle-shards (1024)
 * groups are elected, ticked every tick_ms of real time until all of them
 * hibernate, and the process CPU time used over the next --idle-seconds of
 * ticking is printed; then the same groups are reopened with hibernation
 * disabled and measured again for comparison.
 *
 * Setting up 1024 shards takes minutes: RocksDB rewrites (and re-reads)
 * its OPTIONS file, which lists every column family, on each column family
 * it creates; the "last ms" column shows what one more shard costs.
 *
 * It prints figures and never judges timing. It exits non-zero only for a
 * correctness failure: an API or storage error, a put answered with an
 * error, or groups that never elect themselves or never fall asleep.
 */
#define _GNU_SOURCE /* mkdtemp, nftw */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "shard.h"

#define KEYSPACE         1000000u /* keys "k000000" .. "k999999" */
#define MAX_SHARD_COUNTS 16
#define TICK_MS          100

/* --------------------------------------------------------------- options */

struct options {
    uint64_t shards[MAX_SHARD_COUNTS];
    size_t n_shards;
    uint64_t inflight;   /* outstanding puts */
    uint64_t value_size; /* bytes per value */
    double seconds;      /* per shard count */
    uint64_t ops;        /* puts per shard count; 0 = by --seconds */
    bool random_routing; /* random shard instead of round-robin */
    bool defer;          /* re-propose from the main loop, not the
                            completion callback */
    uint64_t tail_cache; /* store's per-group tail cache, bytes */
    double idle_seconds; /* 0 = no idle test */
    uint64_t idle_shards;
    uint64_t hibernate_ticks;
    const char *dir; /* parent of the temporary databases */
    bool keep;       /* leave the databases behind */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: store_bench [--shards N,N,..] [--inflight K] "
               "[--value-size B]\n"
               "                   [--seconds S] [--ops N] [--random] "
               "[--idle-seconds S]\n"
               "                   [--idle-shards N] [--hibernate-ticks T] "
               "[--defer]\n"
               "                   [--tail-cache BYTES] [--dir D] [--keep]\n"
               "  --shards N,..        shard counts to run (default "
               "1,8,64,1024)\n"
               "  --inflight K         puts outstanding (default 256)\n"
               "  --value-size B       bytes per value (default 256)\n"
               "  --seconds S          load per shard count (default 3)\n"
               "  --ops N              puts per shard count instead of "
               "--seconds\n"
               "  --random             route puts to random shards (default "
               "round-robin)\n"
               "  --idle-seconds S     idle CPU measurement, 0 = skip "
               "(default 10)\n"
               "  --idle-shards N      groups of the idle test (default 1024)\n"
               "  --hibernate-ticks T  idle ticks before a group sleeps "
               "(default 20)\n"
               "  --defer              re-propose from the main loop between "
               "bs_eng_store_process\n"
               "                       calls (default: from the completion "
               "callback)\n"
               "  --tail-cache BYTES   the store's per-group log tail cache "
               "(default 1 MiB)\n"
               "  --dir D              where the temporary databases go "
               "(default $TMPDIR or /tmp)\n"
               "  --keep               do not delete them\n");
}

static int parse_u64(const char *flag, const char *s, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL) {
        fprintf(stderr, "store_bench: %s needs a value\n", flag);
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min ||
        v > max) {
        fprintf(stderr,
                "store_bench: %s: '%s' is not an integer in [%" PRIu64
                ", %" PRIu64 "]\n",
                flag, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_secs(const char *flag, const char *s, double *out)
{
    char *end;
    double v;

    if (s == NULL) {
        fprintf(stderr, "store_bench: %s needs a value\n", flag);
        return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 86400) {
        fprintf(stderr, "store_bench: %s: '%s' is not a number of seconds\n",
                flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_list(const char *flag, const char *s, struct options *o)
{
    char buf[256];

    if (s == NULL || strlen(s) >= sizeof(buf)) {
        fprintf(stderr, "store_bench: %s needs a list like 1,8,64\n", flag);
        return -1;
    }
    strcpy(buf, s);
    o->n_shards = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (o->n_shards == MAX_SHARD_COUNTS) {
            fprintf(stderr, "store_bench: %s: at most %d counts\n", flag,
                    MAX_SHARD_COUNTS);
            return -1;
        }
        if (parse_u64(flag, t, 1, KEYSPACE, &o->shards[o->n_shards]) != 0)
            return -1;
        o->n_shards++;
    }
    if (o->n_shards == 0) {
        fprintf(stderr, "store_bench: %s: empty list\n", flag);
        return -1;
    }
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const uint64_t def[] = {1, 8, 64, 1024};
    const char *tmp = getenv("TMPDIR");

    memset(o, 0, sizeof(*o));
    memcpy(o->shards, def, sizeof(def));
    o->n_shards = 4;
    o->inflight = 256;
    o->value_size = 256;
    o->seconds = 3;
    o->idle_seconds = 10;
    o->idle_shards = 1024;
    o->hibernate_ticks = 20;
    o->tail_cache = 1u << 20;
    o->dir = tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--random") == 0) {
            o->random_routing = true;
            continue;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = true;
            continue;
        } else if (strcmp(a, "--defer") == 0) {
            o->defer = true;
            continue;
        } else if (strcmp(a, "--tail-cache") == 0) {
            rc = parse_u64(a, v, 0, 1u << 30, &o->tail_cache);
        } else if (strcmp(a, "--shards") == 0) {
            rc = parse_list(a, v, o);
        } else if (strcmp(a, "--inflight") == 0) {
            rc = parse_u64(a, v, 1, 1u << 20, &o->inflight);
        } else if (strcmp(a, "--value-size") == 0) {
            rc = parse_u64(a, v, 0, BS_SHARD_DEFAULT_MAX_VALUE, &o->value_size);
        } else if (strcmp(a, "--seconds") == 0) {
            rc = parse_secs(a, v, &o->seconds);
        } else if (strcmp(a, "--ops") == 0) {
            rc = parse_u64(a, v, 0, UINT64_MAX, &o->ops);
        } else if (strcmp(a, "--idle-seconds") == 0) {
            rc = parse_secs(a, v, &o->idle_seconds);
        } else if (strcmp(a, "--idle-shards") == 0) {
            rc = parse_u64(a, v, 1, KEYSPACE, &o->idle_shards);
        } else if (strcmp(a, "--hibernate-ticks") == 0) {
            rc = parse_u64(a, v, 1, 1000000, &o->hibernate_ticks);
        } else if (strcmp(a, "--dir") == 0) {
            rc = v != NULL ? 0 : -1;
            o->dir = v;
        } else {
            fprintf(stderr, "store_bench: unknown argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
        if (rc != 0)
            return -1;
        i++;
    }
    return 0;
}

/* ----------------------------------------------------------------- clock */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* User + system CPU of the whole process (every thread), in seconds. */
static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u),
                          .tv_nsec = (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ------------------------------------------------------------- transport */

/* Single-replica groups have no peers: nothing is ever sent. */
static int tr_send(void *ctx, uint64_t to_node,
                   const struct bs_eng_envelope *envs, size_t n)
{
    (void)ctx;
    (void)to_node;
    (void)envs;
    (void)n;
    return 0;
}

static uint64_t tr_now(void *ctx)
{
    (void)ctx;
    return mono_ns() / 1000000u;
}

static const struct bs_eng_transport_ops tr_ops = {
    .send = tr_send,
    .now_ms = tr_now,
};

/* ------------------------------------------------------------- histogram */

/* Log-linear latency histogram in ns: 32 sub-buckets per power of two
 * (about 3% resolution), bounded memory whatever the run length. */
#define HIST_SUB_BITS 5
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_N        ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t n;
    uint64_t max;
    uint64_t b[HIST_N];
};

static size_t hist_idx(uint64_t v)
{
    if (v < HIST_SUB)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - HIST_SUB_BITS;
    return (size_t)(shift + 1) * HIST_SUB + (size_t)((v >> shift) - HIST_SUB);
}

/* Middle of bucket i. */
static double hist_value(size_t i)
{
    if (i < HIST_SUB)
        return (double)i;
    int shift = (int)(i / HIST_SUB) - 1;
    uint64_t lo = (uint64_t)(HIST_SUB + i % HIST_SUB) << shift;
    return (double)lo + (double)((uint64_t)1 << shift) / 2.0;
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->b[hist_idx(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static double hist_quantile(const struct hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_N; i++) {
        seen += h->b[i];
        if (seen > want)
            return hist_value(i);
    }
    return (double)h->max;
}

/* ------------------------------------------------------------------ node */

static struct bs_shard_limits g_limits;

struct node {
    char base[512];
    char db_dir[600];
    char snap_dir[600];
    struct bs_eng_db *db;
    struct bs_eng_store *store;
    uint64_t n_shards;
    uint64_t width;     /* keys per shard */
    double last_boot_s; /* bootstrap of the last shard alone */
};

static void fail(const char *what, int rc, const char *detail)
{
    fprintf(stderr, "store_bench: FAILED: %s: %s%s%s\n", what, bs_strerror(rc),
            detail && detail[0] ? ": " : "", detail ? detail : "");
    exit(1);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "store_bench: could not remove %s\n", dir);
}

static void key_of(uint32_t k, char out[8])
{
    snprintf(out, 8, "k%06u", (unsigned)(k % KEYSPACE));
}

static void store_open(struct node *n, const struct options *o,
                       uint64_t hibernate_ticks)
{
    char em[BS_ENG_ERRMSG_SIZE] = "";
    struct bs_eng_store_config c;
    bs_eng_store_config_default(&c);
    c.node_id = 1;
    c.db = n->db;
    c.snap_dir = n->snap_dir;
    c.transport.ops = &tr_ops;
    c.transport.ctx = n;
    bs_shard_sm_factory(&c.sm_factory, &g_limits);
    c.seed = 1;
    c.tick_ms = TICK_MS;
    c.hibernate_ticks = (int)hibernate_ticks;
    c.tail_cache_bytes = o->tail_cache;
    int rc = bs_eng_store_open(&c, &n->store, em);
    if (rc != 0)
        fail("bs_eng_store_open", rc, em);
}

/* A fresh database in a new temporary directory, n_shards single-replica
 * groups bootstrapped on it (shard i+1 owns the i-th slice of the keys). */
static void node_create(struct node *n, const struct options *o,
                        uint64_t n_shards, uint64_t hibernate_ticks)
{
    char em[BS_ENG_ERRMSG_SIZE] = "";
    memset(n, 0, sizeof(*n));
    snprintf(n->base, sizeof(n->base), "%s/store_bench.XXXXXX", o->dir);
    if (mkdtemp(n->base) == NULL)
        fail("mkdtemp", BS_EIO, strerror(errno));
    snprintf(n->db_dir, sizeof(n->db_dir), "%s/db", n->base);
    snprintf(n->snap_dir, sizeof(n->snap_dir), "%s/snap", n->base);
    n->n_shards = n_shards;
    n->width = KEYSPACE / n_shards;

    struct bs_eng_db_options dbo;
    bs_eng_db_options_default(&dbo);
    dbo.sync = true; /* real fsyncs: what group commit is about */
    int rc = bs_eng_db_open(n->db_dir, &dbo, &n->db, em);
    if (rc != 0)
        fail("bs_eng_db_open", rc, em);
    store_open(n, o, hibernate_ticks);

    for (uint64_t i = 0; i < n_shards; i++) {
        uint64_t t0 = mono_ns();
        char start[8], end[8];
        struct bs_shard_desc d;
        memset(&d, 0, sizeof(d));
        d.id = i + 1;
        if (i > 0) {
            key_of((uint32_t)(i * n->width), start);
            d.start = (uint8_t *)start;
            d.start_len = 7;
        }
        if (i + 1 < n_shards) {
            key_of((uint32_t)((i + 1) * n->width), end);
            d.end = (uint8_t *)end;
            d.end_len = 7;
        }
        d.epoch.conf_ver = 1;
        d.epoch.version = 1;
        d.replicas[0].id = BS_ENG_REPLICA_ID(1, d.id);
        d.replicas[0].node_id = 1;
        d.n_replicas = 1;
        struct bs_raft_conf_state cs;
        bs_shard_desc_conf(&d, &cs);
        rc = bs_shard_bootstrap(n->db, &d, &cs, 1, 1);
        if (rc != 0)
            fail("bs_shard_bootstrap", rc, bs_eng_db_errmsg(n->db));
        rc =
            bs_eng_store_bootstrap_group(n->store, d.id, d.replicas[0].id, &cs);
        if (rc != 0)
            fail("bs_eng_store_bootstrap_group", rc, bs_eng_db_errmsg(n->db));
        n->last_boot_s = (double)(mono_ns() - t0) / 1e9;
    }
}

static void node_destroy(struct node *n, const struct options *o)
{
    bs_eng_store_close(n->store);
    bs_eng_db_close(n->db);
    if (!o->keep)
        remove_tree(n->base);
}

static void process(struct node *n)
{
    int rc = bs_eng_store_process(n->store);
    if (rc != 0)
        fail("bs_eng_store_process", rc, bs_eng_db_errmsg(n->db));
}

/* Ticks (as fast as it goes: election timing is not measured) until every
 * group leads and has applied its leader's empty entry. Returns the ticks
 * it took. */
static int elect_all(struct node *n)
{
    for (int t = 0; t < 1000; t++) {
        uint64_t ready = 0;
        for (uint64_t id = 1; id <= n->n_shards; id++) {
            struct bs_eng_group_info gi;
            if (bs_eng_store_group(n->store, id, &gi) != 0)
                fail("bs_eng_store_group", BS_ENOTFOUND, "");
            ready += gi.role == BS_RAFT_LEADER && gi.applied == gi.commit &&
                     gi.commit >= 2;
        }
        if (ready == n->n_shards)
            return t;
        bs_eng_store_tick(n->store);
        process(n);
    }
    fprintf(stderr, "store_bench: FAILED: groups not all elected after "
                    "1000 ticks\n");
    exit(1);
}

/* ------------------------------------------------------------- workload */

struct run;

struct slot {
    struct run *r;
    uint64_t t0_ns; /* when its put was proposed */
};

struct run {
    struct node *n;
    const struct options *o;
    uint8_t *value;
    struct slot *slots;
    uint64_t *next_key; /* per shard */
    uint64_t rr;        /* round-robin cursor */
    uint64_t rng;
    uint64_t deadline_ns;
    uint64_t issued;
    uint64_t acked;
    uint64_t errors;
    uint64_t outstanding;
    struct slot **pending; /* --defer: slots to re-propose */
    size_t n_pending;
    int first_error;
    struct hist lat;
};

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void put_done(void *ctx, int status, const void *resp, size_t len);

/* Proposes the next put for slot; false if it stopped (time or op count
 * reached, or the proposal was refused: counted as an error). */
static bool issue(struct run *r, struct slot *sl)
{
    uint64_t now = mono_ns();
    if (now >= r->deadline_ns || (r->o->ops > 0 && r->issued >= r->o->ops))
        return false;
    uint64_t sh = r->o->random_routing ? xorshift(&r->rng) % r->n->n_shards
                                       : r->rr++ % r->n->n_shards;
    char key[8];
    key_of((uint32_t)(sh * r->n->width + r->next_key[sh]++ % r->n->width), key);
    struct bs_shard_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_SHARD_CMD_PUT;
    cmd.epoch.conf_ver = 1;
    cmd.epoch.version = 1;
    cmd.u.put.key = (const uint8_t *)key;
    cmd.u.put.key_len = 7;
    cmd.u.put.value = r->value;
    cmd.u.put.value_len = r->o->value_size;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = bs_shard_cmd_encode(&cmd, &buf, &len);
    if (rc == 0) {
        sl->t0_ns = now;
        rc = bs_eng_store_propose(r->n->store, sh + 1, buf, len, put_done, sl);
        free(buf);
    }
    if (rc != 0) {
        r->errors++;
        if (r->first_error == 0)
            r->first_error = rc;
        return false;
    }
    r->issued++;
    return true;
}

/* Completion: count, record the latency, propose the next put at once
 * (the store allows callbacks to call back into it). */
static void put_done(void *ctx, int status, const void *resp, size_t len)
{
    struct slot *sl = ctx;
    struct run *r = sl->r;
    (void)resp;
    (void)len;
    if (status == 0) {
        r->acked++;
        hist_add(&r->lat, mono_ns() - sl->t0_ns);
    } else {
        r->errors++;
        if (r->first_error == 0)
            r->first_error = status;
    }
    if (status == 0 && r->o->defer) {
        r->pending[r->n_pending++] = sl;
        return;
    }
    if (status == 0 && issue(r, sl))
        return;
    r->outstanding--;
}

static void bench_shards(const struct options *o, uint64_t n_shards)
{
    struct node n;
    uint64_t t0 = mono_ns();
    node_create(&n, o, n_shards, o->hibernate_ticks);
    double boot_s = (double)(mono_ns() - t0) / 1e9;
    int ticks = elect_all(&n);

    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL)
        fail("calloc", BS_ENOMEM, "");
    r->n = &n;
    r->o = o;
    r->value = malloc(o->value_size ? o->value_size : 1);
    r->slots = calloc(o->inflight, sizeof(*r->slots));
    r->next_key = calloc(n_shards, sizeof(*r->next_key));
    r->pending = calloc(o->inflight, sizeof(*r->pending));
    if (r->value == NULL || r->slots == NULL || r->next_key == NULL ||
        r->pending == NULL)
        fail("calloc", BS_ENOMEM, "");
    for (uint64_t i = 0; i < o->value_size; i++)
        r->value[i] = (uint8_t)('a' + i % 26);
    r->rng = 0x9e3779b97f4a7c15ull ^ n_shards;

    struct bs_eng_store_stats st0, st1;
    bs_eng_store_stats(n.store, &st0);
    double cpu0 = cpu_s();
    uint64_t start = mono_ns();
    r->deadline_ns =
        o->ops > 0 ? UINT64_MAX : start + (uint64_t)(o->seconds * 1e9);
    for (uint64_t i = 0; i < o->inflight; i++) {
        r->slots[i].r = r;
        if (!issue(r, &r->slots[i]))
            break;
        r->outstanding++;
    }
    uint64_t tick_ns = (uint64_t)TICK_MS * 1000000u;
    uint64_t next_tick = start + tick_ns;
    uint64_t calls = 0, max_call = 0;
    while (r->outstanding > 0) {
        uint64_t c0 = mono_ns();
        process(&n);
        uint64_t c1 = mono_ns();
        calls++;
        if (c1 - c0 > max_call)
            max_call = c1 - c0;
        for (size_t i = 0; i < r->n_pending; i++)
            if (!issue(r, r->pending[i]))
                r->outstanding--;
        r->n_pending = 0;
        if (c1 >= next_tick) {
            bs_eng_store_tick(n.store);
            next_tick += tick_ns;
            if (next_tick < c1)
                next_tick = c1 + tick_ns;
        }
        if (r->errors > 0)
            break;
    }
    double wall = (double)(mono_ns() - start) / 1e9;
    double cpu = cpu_s() - cpu0;
    bs_eng_store_stats(n.store, &st1);
    if (r->errors > 0)
        fail("put", r->first_error, "a put was refused or failed");

    uint64_t fsyncs = st1.fsyncs - st0.fsyncs;
    uint64_t persisted = st1.entries_persisted - st0.entries_persisted;
    uint64_t rounds = st1.rounds - st0.rounds;
    printf("%6" PRIu64 " %10.0f %9.0f %9.1f %8.0f %7.2f %7.2f %7.2f %6.2f "
           "%7.1f %6.1f | %5.1fs %7.1f %4d\n",
           n_shards, (double)r->acked / wall, (double)fsyncs / wall,
           fsyncs ? (double)persisted / (double)fsyncs : 0.0,
           (double)rounds / wall, hist_quantile(&r->lat, 0.50) / 1e6,
           hist_quantile(&r->lat, 0.99) / 1e6, (double)r->lat.max / 1e6,
           cpu / wall, (double)rounds / (double)(calls ? calls : 1),
           (double)max_call / 1e6, boot_s, n.last_boot_s * 1e3, ticks);
    fflush(stdout);

    free(r->value);
    free(r->slots);
    free(r->next_key);
    free(r->pending);
    free(r);
    node_destroy(&n, o);
}

/* ------------------------------------------------------------ idle test */

struct idle_result {
    double cpu;
    double wall;
    uint64_t skipped;
    uint64_t asleep;
    uint64_t fsyncs;
    uint64_t rounds;
};

/* Ticks every TICK_MS of real time for 'seconds', processing after each
 * tick, and measures the process CPU time used. */
static void idle_measure(struct node *n, double seconds,
                         struct idle_result *res)
{
    struct bs_eng_store_stats st0, st1;
    uint64_t tick_ns = (uint64_t)TICK_MS * 1000000u;
    bs_eng_store_stats(n->store, &st0);
    double cpu0 = cpu_s();
    uint64_t start = mono_ns();
    uint64_t ticks = (uint64_t)(seconds * 1000.0 / TICK_MS + 0.5);
    for (uint64_t i = 1; i <= ticks; i++) {
        sleep_until_ns(start + i * tick_ns);
        bs_eng_store_tick(n->store);
        process(n);
    }
    res->cpu = cpu_s() - cpu0;
    res->wall = (double)(mono_ns() - start) / 1e9;
    bs_eng_store_stats(n->store, &st1);
    res->skipped = st1.ticks_skipped - st0.ticks_skipped;
    res->asleep = st1.groups_asleep;
    res->fsyncs = st1.fsyncs - st0.fsyncs;
    res->rounds = st1.rounds - st0.rounds;
}

static void print_idle(const char *what, uint64_t groups,
                       const struct idle_result *r)
{
    printf("  %-22s %.3f s cpu over %.1f s (%.2f%% of one core, %.1f us "
           "per tick)\n"
           "  %-22s group ticks skipped %" PRIu64 " of %" PRIu64
           ", asleep %" PRIu64 "/%" PRIu64 ", rounds %" PRIu64
           ", fsyncs %" PRIu64 "\n",
           what, r->cpu, r->wall, 100.0 * r->cpu / r->wall,
           r->cpu * 1e6 / (r->wall * 1000.0 / TICK_MS), "", r->skipped,
           groups * (uint64_t)(r->wall * 1000.0 / TICK_MS + 0.5), r->asleep,
           groups, r->rounds, r->fsyncs);
}

static void bench_idle(const struct options *o)
{
    struct node n;
    struct idle_result hib, awake;
    uint64_t groups = o->idle_shards;

    printf("\nidle: %" PRIu64 " single-replica groups, no load, one tick "
           "every %d ms of real time, %.0f s measured\n",
           groups, TICK_MS, o->idle_seconds);
    node_create(&n, o, groups, o->hibernate_ticks);
    elect_all(&n);

    /* Let them fall asleep, in real time. */
    uint64_t tick_ns = (uint64_t)TICK_MS * 1000000u;
    uint64_t start = mono_ns();
    struct bs_eng_store_stats st;
    uint64_t ticks = 0;
    for (;;) {
        bs_eng_store_stats(n.store, &st);
        if (st.groups_asleep == groups)
            break;
        if (ticks > o->hibernate_ticks + 600) {
            fprintf(stderr,
                    "store_bench: FAILED: only %" PRIu64 " of %" PRIu64
                    " groups asleep after %" PRIu64 " ticks\n",
                    st.groups_asleep, groups, ticks);
            exit(1);
        }
        sleep_until_ns(start + ++ticks * tick_ns);
        bs_eng_store_tick(n.store);
        process(&n);
    }
    printf("  all %" PRIu64 " asleep after %" PRIu64 " ticks (%.1f s; "
           "hibernate_ticks %" PRIu64 ")\n",
           groups, ticks, (double)(mono_ns() - start) / 1e9,
           o->hibernate_ticks);
    idle_measure(&n, o->idle_seconds, &hib);
    print_idle("hibernation on:", groups, &hib);

    /* The same groups, reopened with hibernation off. */
    bs_eng_store_close(n.store);
    n.store = NULL;
    uint64_t t0 = mono_ns();
    store_open(&n, o, 0);
    printf("  store reopened (recovering %" PRIu64 " groups) in %.2f s\n",
           groups, (double)(mono_ns() - t0) / 1e9);
    elect_all(&n);
    idle_measure(&n, o->idle_seconds, &awake);
    print_idle("hibernation off:", groups, &awake);
    if (hib.cpu > 0)
        printf("  ratio off/on:          %.1fx cpu\n", awake.cpu / hib.cpu);
    node_destroy(&n, o);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    bs_shard_limits_default(&g_limits);

    struct bs_eng_db_options dbo;
    bs_eng_db_options_default(&dbo);
    printf("store_bench: one node, single-replica groups, shard state "
           "machine, RocksDB with sync = true under %s\n",
           o.dir);
    printf("  load: %" PRIu64 " puts in flight (closed loop, re-proposed "
           "from %s), key \"k%%06u\" (7 B), %" PRIu64
           " B values, %s over the shards, ",
           o.inflight, o.defer ? "the main loop" : "the callback", o.value_size,
           o.random_routing ? "random" : "round-robin");
    if (o.ops > 0)
        printf("%" PRIu64 " puts per shard count\n", o.ops);
    else
        printf("%.1f s per shard count\n", o.seconds);
    printf("  store: tick %d ms, election_tick 10, hibernate_ticks %" PRIu64
           ", tail cache %" PRIu64
           " KiB per group, defaults otherwise;\n  db: block cache %zu MiB, "
           "memtable %zu MiB per CF, %d background jobs\n",
           TICK_MS, o.hibernate_ticks, o.tail_cache >> 10,
           dbo.block_cache_bytes >> 20, dbo.write_buffer_bytes >> 20,
           dbo.max_background_jobs);
    printf("  host: %ld cpus online (figures depend on the disk's fsync "
           "latency and on other load)\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("\n%6s %10s %9s %9s %8s %7s %7s %7s %6s %7s %6s | %6s %7s "
           "%4s\n",
           "shards", "puts/s", "fsyncs/s", "ent/fsync", "rounds/s", "p50 ms",
           "p99 ms", "max ms", "cpu/s", "rnd/cal", "cal ms", "boot", "last ms",
           "tick");
    for (size_t i = 0; i < o.n_shards; i++)
        bench_shards(&o, o.shards[i]);
    printf("  (puts/s: acknowledged puts; ent/fsync: raft entries per synced "
           "batch; cpu/s: process cpu seconds per second, all threads;\n"
           "   rnd/cal: rounds per bs_eng_store_process call; cal ms: its "
           "longest call;\n"
           "   boot: bootstrap of all shards; last ms: of the last shard "
           "alone; tick: ticks to elect every group)\n");

    if (o.idle_seconds > 0)
        bench_idle(&o);

    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        printf("\nmax RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    return 0;
}
