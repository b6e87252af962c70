/*
 * bench.c - `basalt bench put|range`: a load generator speaking etcd's v3
 * KV API (Put, Range) over the gRPC core client of rpc/channel.h, so the
 * same command measures Basalt and etcd alike (tests/bench/compare-etcd
 * runs it against both).
 *
 * There is no thread per client. A client is a small state machine with
 * at most one call in flight; the call's done callback, on one of the
 * bs_rpc_client's two CQ threads, records the result and issues the
 * client's next call:
 *
 *   IDLE --issue(): an op index below the phase's end--> IN_FLIGHT
 *   IN_FLIGHT --on_done(): record latency or error; issue()--> IN_FLIGHT
 *   IDLE, IN_FLIGHT --issue(): no op left, or the phase aborted:
 *                    client_finish()--> DONE
 *
 * Op indexes come from one atomic counter per phase, so --total is exact
 * however the clients interleave; the first --warmup indexes are run but
 * not measured. The main thread starts every client and sleeps on a
 * condition variable until the last one reaches DONE. Latencies of the
 * measured successful ops go into an array preallocated for --total
 * entries (8 bytes each), sorted once at the end for exact percentiles.
 *
 * Clients are spread over --conns channels (one HTTP/2 connection each),
 * the channels round-robin over --endpoints. Keys are --key-size bytes:
 * the key's index in [0, --key-space), hashed by a bijection of 64-bit
 * integers (splitmix64's finalizer) when the key has 8 bytes or more, as
 * YCSB hashes its keys, so that consecutive indexes land all over the key
 * space (a range-sharded store then sees every shard, not only the one
 * holding the keys that begin with zero bytes), written big-endian and
 * zero-padded on the left. Shorter keys hold the plain index. Values are
 * --val-size fresh random bytes per put.
 */
#include "cli.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "codec.h"
#include "errors.h"
#include "shard.h"
#include "status.h"

#define PROG "basalt bench"

/* Error buckets: the gRPC statuses 0..16, then one for failures seen on
 * this side (a call that could not start, a response that does not
 * decode, OK without a message). */
#define N_STATUS     17
#define BUCKET_LOCAL N_STATUS
#define N_BUCKETS    (N_STATUS + 1)

/* A phase in which no op has succeeded stops once as many ops as there
 * are clients have failed (each client, roughly, has seen its calls
 * fail) and it has run for ABORT_AFTER_NS: the endpoints are not
 * serving, and with timeouts the run would otherwise last --total /
 * --clients deadlines. The time keeps a burst of fast failures from one
 * dead endpoint from stopping a run whose other connections are still
 * being set up. */
#define ABORT_AFTER_NS 1000000000

struct bench_opts {
    uint8_t type; /* BS_SHARD_CMD_PUT or BS_SHARD_CMD_RANGE */
    char *endpoints_buf;
    char **endpoints;
    size_t n_endpoints;
    uint64_t clients, conns, total, warmup, key_space;
    uint64_t key_size, val_size;
    int64_t timeout_ms;
    bool sequential;
    bool serializable;
    bool prefill;
    bool json;
};

/* One run of ops over all clients: the prefill or the measured run. */
struct phase {
    uint8_t type;
    bool sequential;
    bool serializable;
    uint64_t warmup; /* indexes [0, warmup) are not measured */
    uint64_t end;    /* warmup + measured ops */
    uint64_t clients;
    atomic_uint_fast64_t next; /* next op index to issue */
    atomic_bool aborted;
    atomic_uint_fast64_t n_ok, n_err, n_miss, n_done;
    atomic_uint_fast64_t by_bucket[N_BUCKETS];
    uint64_t *lat_ns; /* measured successful ops, end - warmup slots */
    atomic_uint_fast64_t n_lat;
    int64_t t_begin_ns;             /* when the phase started */
    atomic_int_fast64_t t_start_ns; /* when index `warmup` was issued */
    int64_t t_end_ns;               /* when the last client finished */

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;  /* active reached 0 */
    uint64_t active;    /* clients not DONE */
    char first_err[256];
};

struct bench;

struct client {
    struct bench *b;
    struct bs_rpc_channel *ch;
    uint64_t rng;
    uint64_t op;   /* index of the op in flight */
    int64_t t0_ns; /* when it was issued */
    uint8_t *key;
    uint8_t *val;
};

struct bench {
    const struct bench_opts *o;
    struct phase *ph; /* the phase running (set before any client starts) */
    struct bs_rpc_client *rpc;
    struct bs_rpc_channel **chans;
    size_t n_chans;
    struct client *clients;
};

/* ------------------------------------------------------------ helpers */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: fast, and good enough for keys and value bytes. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A uniform index in [0, n) (n > 0), by Lemire's multiply-shift. */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void make_key(uint8_t *key, size_t size, uint64_t idx)
{
    if (size >= 8)
        idx = mix64(idx);
    for (size_t i = 0; i < size; i++) {
        key[size - 1 - i] = i < 8 ? (uint8_t)(idx >> (8 * i)) : 0;
    }
}

static void fill_random(uint64_t *s, uint8_t *buf, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t r = rng_next(s);
        memcpy(buf + i, &r, 8);
    }
    if (i < len) {
        uint64_t r = rng_next(s);
        memcpy(buf + i, &r, len - i);
    }
}

/* ------------------------------------------------------------- clients */

static void issue(struct client *c);

/* Records a failed op in its bucket, keeps the first message, and aborts
 * the phase when every op so far has failed. */
static void record_error(struct phase *ph, int bucket, const char *what)
{
    atomic_fetch_add(&ph->by_bucket[bucket], 1);
    uint64_t nerr = atomic_fetch_add(&ph->n_err, 1) + 1;
    pthread_mutex_lock(&ph->mu);
    if (ph->first_err[0] == '\0')
        snprintf(ph->first_err, sizeof(ph->first_err), "%s", what);
    pthread_mutex_unlock(&ph->mu);
    uint64_t limit = ph->end < ph->clients ? ph->end : ph->clients;
    if (nerr >= limit && atomic_load(&ph->n_ok) == 0 &&
        now_ns() - ph->t_begin_ns >= ABORT_AFTER_NS)
        atomic_store(&ph->aborted, true);
}

static void on_done(void *ctx, const struct bs_rpc_result *res)
{
    struct client *c = ctx;
    struct phase *ph = c->b->ph;
    int64_t t1 = now_ns();
    char what[256];

    if (res->rc == 0) {
        struct bs_shard_resp resp;
        char errmsg[BS_RPC_ERRMSG_LEN] = "";
        int rc = bs_rpc_kv_resp_decode(ph->type, res->data, res->len, NULL,
                                       NULL, &resp, errmsg);
        if (rc == 0) {
            if (ph->type == BS_SHARD_CMD_RANGE && resp.op.n_kvs == 0)
                atomic_fetch_add(&ph->n_miss, 1);
            bs_shard_resp_free(&resp);
            atomic_fetch_add(&ph->n_ok, 1);
            if (c->op >= ph->warmup) {
                uint64_t slot = atomic_fetch_add(&ph->n_lat, 1);
                ph->lat_ns[slot] = (uint64_t)(t1 - c->t0_ns);
            }
        } else {
            snprintf(what, sizeof(what), "bad response (%s): %s",
                     bs_err_name(rc), errmsg);
            record_error(ph, BUCKET_LOCAL, what);
        }
    } else {
        int st = (int)res->status;
        int bucket = st > 0 && st < N_STATUS ? st : BUCKET_LOCAL;
        snprintf(what, sizeof(what), "%s: %s (%s)", bs_rpc_status_name(st),
                 res->msg[0] ? res->msg : bs_strerror(res->rc),
                 bs_err_name(res->rc));
        record_error(ph, bucket, what);
    }
    atomic_fetch_add(&ph->n_done, 1);
    issue(c);
}

static void client_finish(struct client *c)
{
    struct phase *ph = c->b->ph;
    pthread_mutex_lock(&ph->mu);
    if (--ph->active == 0) {
        ph->t_end_ns = now_ns();
        pthread_cond_signal(&ph->cv);
    }
    pthread_mutex_unlock(&ph->mu);
}

/* Issues c's next op, or finishes c when none is left. Called by the main
 * thread to start a client and by on_done; a call that cannot even start
 * counts as a failed op and the loop takes the next one (no recursion). */
static void issue(struct client *c)
{
    struct bench *b = c->b;
    struct phase *ph = b->ph;
    const struct bench_opts *o = b->o;

    for (;;) {
        if (atomic_load(&ph->aborted)) {
            client_finish(c);
            return;
        }
        uint64_t idx = atomic_fetch_add(&ph->next, 1);
        if (idx >= ph->end) {
            client_finish(c);
            return;
        }
        uint64_t k = ph->sequential ? idx % o->key_space
                                    : rng_below(&c->rng, o->key_space);
        make_key(c->key, o->key_size, k);

        struct bs_shard_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = ph->type;
        if (ph->type == BS_SHARD_CMD_PUT) {
            fill_random(&c->rng, c->val, o->val_size);
            cmd.u.put.key = c->key;
            cmd.u.put.key_len = o->key_size;
            cmd.u.put.value = c->val;
            cmd.u.put.value_len = o->val_size;
        } else {
            cmd.u.range.key = c->key;
            cmd.u.range.key_len = o->key_size;
            cmd.u.range.serializable = ph->serializable;
        }
        uint8_t *req = NULL;
        size_t len = 0;
        char errmsg[BS_RPC_ERRMSG_LEN] = "";
        int rc = bs_rpc_kv_req_encode(&cmd, &req, &len, errmsg);
        if (rc == 0) {
            c->op = idx;
            c->t0_ns = now_ns();
            if (idx == ph->warmup)
                atomic_store(&ph->t_start_ns, c->t0_ns);
            rc = bs_rpc_channel_call(c->ch, bs_rpc_kv_method(ph->type), req,
                                     len, o->timeout_ms, on_done, c);
            free(req);
            if (rc == 0)
                return;
        }
        char what[256];
        snprintf(what, sizeof(what), "call not started: %s %s", bs_strerror(rc),
                 errmsg);
        record_error(ph, BUCKET_LOCAL, what);
        atomic_fetch_add(&ph->n_done, 1);
    }
}

/* Runs one phase to its end on every client; returns when all are DONE. */
static void run_phase(struct bench *b, struct phase *ph)
{
    b->ph = ph;
    ph->active = b->o->clients;
    ph->clients = b->o->clients;
    ph->t_begin_ns = now_ns();
    for (uint64_t i = 0; i < b->o->clients; i++)
        issue(&b->clients[i]);
    pthread_mutex_lock(&ph->mu);
    while (ph->active > 0)
        pthread_cond_wait(&ph->cv, &ph->mu);
    pthread_mutex_unlock(&ph->mu);
}

/* Allocates a phase; lat_ns only when measured_slots > 0. NULL: ENOMEM. */
static struct phase *phase_new(uint8_t type, bool sequential, bool serializable,
                               uint64_t warmup, uint64_t measured)
{
    struct phase *ph = calloc(1, sizeof(*ph));
    if (!ph)
        return NULL;
    if (measured > 0) {
        ph->lat_ns = malloc(measured * sizeof(*ph->lat_ns));
        if (!ph->lat_ns) {
            free(ph);
            return NULL;
        }
    }
    ph->type = type;
    ph->sequential = sequential;
    ph->serializable = serializable;
    ph->warmup = warmup;
    ph->end = warmup + measured;
    atomic_init(&ph->t_start_ns, 0);
    pthread_mutex_init(&ph->mu, NULL);
    pthread_cond_init(&ph->cv, NULL);
    return ph;
}

static void phase_free(struct phase *ph)
{
    if (!ph)
        return;
    pthread_mutex_destroy(&ph->mu);
    pthread_cond_destroy(&ph->cv);
    free(ph->lat_ns);
    free(ph);
}

/* ------------------------------------------------------------- report */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted v[n], in ms (0 when n == 0). */
static double pct_ms(const uint64_t *v, uint64_t n, double q)
{
    if (n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1e6;
}

static const char *bucket_name(int i)
{
    return i == BUCKET_LOCAL ? "CLIENT" : bs_rpc_status_name(i);
}

static void report(const struct bench_opts *o, struct phase *ph)
{
    uint64_t n = atomic_load(&ph->n_lat);
    qsort(ph->lat_ns, n, sizeof(*ph->lat_ns), cmp_u64);
    double sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += (double)ph->lat_ns[i];
    int64_t t0 = atomic_load(&ph->t_start_ns);
    double elapsed = t0 ? (double)(ph->t_end_ns - t0) / 1e9 : 0;
    double ops_s = elapsed > 0 ? (double)n / elapsed : 0;
    uint64_t done = atomic_load(&ph->n_done);
    uint64_t measured = done > ph->warmup ? done - ph->warmup : 0;
    uint64_t nerr = atomic_load(&ph->n_err);
    uint64_t nmiss = atomic_load(&ph->n_miss);
    double p50 = pct_ms(ph->lat_ns, n, 0.50), p90 = pct_ms(ph->lat_ns, n, 0.90);
    double p99 = pct_ms(ph->lat_ns, n, 0.99);
    double p999 = pct_ms(ph->lat_ns, n, 0.999);
    double max = n ? (double)ph->lat_ns[n - 1] / 1e6 : 0;
    double mean = n ? sum / (double)n / 1e6 : 0;
    const char *wl = o->type == BS_SHARD_CMD_PUT ? "put" : "range";
    const char *cons =
        o->type == BS_SHARD_CMD_RANGE ? (o->serializable ? "s" : "l") : "";
    bool aborted = atomic_load(&ph->aborted);

    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "workload", wl);
        if (cons[0])
            cJSON_AddStringToObject(j, "consistency", cons);
        cJSON_AddNumberToObject(j, "clients", (double)o->clients);
        cJSON_AddNumberToObject(j, "conns", (double)o->conns);
        cJSON_AddNumberToObject(j, "endpoints", (double)o->n_endpoints);
        cJSON_AddNumberToObject(j, "key_size", (double)o->key_size);
        cJSON_AddNumberToObject(j, "val_size", (double)o->val_size);
        cJSON_AddNumberToObject(j, "key_space", (double)o->key_space);
        cJSON_AddNumberToObject(j, "warmup", (double)ph->warmup);
        cJSON_AddNumberToObject(j, "ops", (double)measured);
        cJSON_AddNumberToObject(j, "ok", (double)n);
        cJSON_AddNumberToObject(j, "errors", (double)nerr);
        cJSON *eb = cJSON_AddObjectToObject(j, "errors_by_status");
        for (int i = 0; i < N_BUCKETS; i++) {
            uint64_t c = atomic_load(&ph->by_bucket[i]);
            if (c)
                cJSON_AddNumberToObject(eb, bucket_name(i), (double)c);
        }
        if (ph->first_err[0])
            cJSON_AddStringToObject(j, "first_error", ph->first_err);
        if (o->type == BS_SHARD_CMD_RANGE)
            cJSON_AddNumberToObject(j, "misses", (double)nmiss);
        cJSON_AddBoolToObject(j, "aborted", aborted);
        cJSON_AddNumberToObject(j, "elapsed_s", elapsed);
        cJSON_AddNumberToObject(j, "ops_per_s", ops_s);
        cJSON *l = cJSON_AddObjectToObject(j, "latency_ms");
        cJSON_AddNumberToObject(l, "mean", mean);
        cJSON_AddNumberToObject(l, "p50", p50);
        cJSON_AddNumberToObject(l, "p90", p90);
        cJSON_AddNumberToObject(l, "p99", p99);
        cJSON_AddNumberToObject(l, "p99.9", p999);
        cJSON_AddNumberToObject(l, "max", max);
        char *s = cJSON_PrintUnformatted(j);
        if (s)
            printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(j);
        return;
    }

    printf("%s%s%s: %" PRIu64 " clients over %" PRIu64
           " conns to %zu endpoint(s), key %" PRIu64 " B, value %" PRIu64
           " B, key space %" PRIu64 "\n",
           wl, cons[0] ? " " : "",
           cons[0] ? (o->serializable ? "serializable" : "linearizable") : "",
           o->clients, o->conns, o->n_endpoints, o->key_size, o->val_size,
           o->key_space);
    printf("  ops       %" PRIu64 " (+%" PRIu64 " warmup)%s\n", measured,
           ph->warmup, aborted ? "  ABORTED: no op succeeded" : "");
    printf("  errors    %" PRIu64, nerr);
    for (int i = 0; i < N_BUCKETS; i++) {
        uint64_t c = atomic_load(&ph->by_bucket[i]);
        if (c)
            printf("  %s=%" PRIu64, bucket_name(i), c);
    }
    printf("\n");
    if (ph->first_err[0])
        printf("  first     %s\n", ph->first_err);
    if (o->type == BS_SHARD_CMD_RANGE)
        printf("  misses    %" PRIu64 " (key not found)\n", nmiss);
    printf("  elapsed   %.3f s\n", elapsed);
    printf("  ops/s     %.1f\n", ops_s);
    if (n == 0)
        printf("  latency   - (no successful op)\n");
    else
        printf("  latency   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f"
               "  mean %.3f ms\n",
               p50, p90, p99, p999, max, mean);
}

/* ------------------------------------------------------------- options */

static const char usage_text[] =
    "usage: basalt bench put|range --endpoints H:P[,H:P...] [flags]\n"
    "\n"
    "Load generator for etcd's v3 KV API over gRPC (Basalt and etcd alike).\n"
    "put sends PutRequests, range sends RangeRequests for single keys.\n"
    "Each client has one call in flight and issues the next from the\n"
    "previous one's completion; clients share 2 gRPC threads.\n"
    "\n"
    "flags:\n"
    "  --endpoints H:P[,...]  servers (required); connections go to them\n"
    "                         round-robin\n"
    "  --clients N            concurrent clients (default 1)\n"
    "  --conns N              HTTP/2 connections, clients spread over them\n"
    "                         round-robin (default 1; at most --clients)\n"
    "  --total N              measured ops, all clients together\n"
    "                         (default 10000)\n"
    "  --warmup N             ops run first and not measured (default 0);\n"
    "                         their errors still count\n"
    "  --key-size B           bytes per key (default 8): the key index as a\n"
    "                         big-endian number, zero-padded on the left\n"
    "  --val-size B           bytes per value, random (default 256)\n"
    "  --key-space N          keys are indexes in [0, N), uniformly random\n"
    "                         (default 100000)\n"
    "  --sequential           put: keys in order 0, 1, ... (mod N) instead\n"
    "  --consistency l|s      range: linearizable (l, default) or\n"
    "                         serializable (s)\n"
    "  --prefill              range: first put every key of the key space\n"
    "                         once (not measured); without it, keys never\n"
    "                         written count as misses, not errors\n"
    "  --timeout-ms N         deadline of each call (default 10000)\n"
    "  -o json|text           output: one JSON object, or text (default)\n"
    "  -h, --help             this text\n"
    "\n"
    "Prints ops, errors by gRPC status (with the first error's message),\n"
    "elapsed time, ops/s and latency p50 p90 p99 p99.9 max in ms of the\n"
    "successful measured ops. A failed op does not stop the run, unless\n"
    "none has succeeded after 1 s and as many failures as clients. Exit\n"
    "status: 0, 1 if any op failed (after printing; also when the prefill\n"
    "fails), 2 on a usage error.\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt,
                                                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see `basalt bench --help`)\n");
    va_end(ap);
    return 2;
}

/* Parses a decimal integer in [min, max] into *out; 0 or -1. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Splits o->endpoints_buf at commas; 0 or -1 (an empty element). */
static int split_endpoints(struct bench_opts *o)
{
    size_t n = 1;
    for (const char *p = o->endpoints_buf; *p; p++)
        n += *p == ',';
    o->endpoints = calloc(n, sizeof(*o->endpoints));
    if (!o->endpoints)
        return -1;
    char *save = NULL;
    for (char *t = strtok_r(o->endpoints_buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save))
        o->endpoints[o->n_endpoints++] = t;
    return o->n_endpoints == n ? 0 : -1;
}

/* Fills o from argv; returns 0, 2 (usage error, reported) or 3 (--help,
 * printed). */
static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->clients = 1;
    o->conns = 1;
    o->total = 10000;
    o->key_size = 8;
    o->val_size = 256;
    o->key_space = 100000;
    o->timeout_ms = 10000;
    bool conns_set = false, consistency_set = false;
    const char *workload = NULL;

    static const struct {
        const char *name;
        uint64_t min, max;
        size_t off;
    } nums[] = {
        {"--clients", 1, 1000000, offsetof(struct bench_opts, clients)},
        {"--conns", 1, 100000, offsetof(struct bench_opts, conns)},
        {"--total", 1, 1000000000, offsetof(struct bench_opts, total)},
        {"--warmup", 0, 1000000000, offsetof(struct bench_opts, warmup)},
        {"--key-size", 1, BS_SHARD_DEFAULT_MAX_KEY,
         offsetof(struct bench_opts, key_size)},
        {"--val-size", 0, BS_SHARD_DEFAULT_MAX_VALUE,
         offsetof(struct bench_opts, val_size)},
        {"--key-space", 1, UINT64_MAX, offsetof(struct bench_opts, key_space)},
    };

    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(usage_text, stdout);
            return 3;
        }
        if (arg[0] != '-') {
            if (workload)
                return usage_error("unexpected argument '%s'", arg);
            workload = arg;
            continue;
        }
        /* --flag=value or --flag value */
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen >= sizeof(name))
            return usage_error("unknown flag '%s'", arg);
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        if (!strcmp(name, "--sequential") || !strcmp(name, "--prefill")) {
            if (eq)
                return usage_error("%s takes no value", name);
            if (!strcmp(name, "--sequential"))
                o->sequential = true;
            else
                o->prefill = true;
            continue;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        }

        bool known = false;
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
            if (strcmp(name, nums[k].name) != 0)
                continue;
            known = true;
            if (!val)
                return usage_error("%s needs a value", name);
            uint64_t *dst = (uint64_t *)((char *)o + nums[k].off);
            if (parse_u64(val, nums[k].min, nums[k].max, dst) != 0)
                return usage_error("%s: expected an integer in [%" PRIu64
                                   ", %" PRIu64 "], got '%s'",
                                   name, nums[k].min, nums[k].max, val);
            if (!strcmp(name, "--conns"))
                conns_set = true;
        }
        if (known)
            continue;
        if (!strcmp(name, "--endpoints")) {
            if (!val || !*val)
                return usage_error("%s needs a value", name);
            free(o->endpoints_buf);
            free(o->endpoints);
            o->endpoints = NULL;
            o->n_endpoints = 0;
            if (!(o->endpoints_buf = strdup(val)) || split_endpoints(o) != 0)
                return usage_error("%s: bad list '%s'", name, val);
        } else if (!strcmp(name, "--consistency")) {
            consistency_set = true;
            if (!val)
                return usage_error("%s needs a value", name);
            if (!strcmp(val, "l") || !strcmp(val, "linearizable"))
                o->serializable = false;
            else if (!strcmp(val, "s") || !strcmp(val, "serializable"))
                o->serializable = true;
            else
                return usage_error("%s: expected l or s, got '%s'", name, val);
        } else if (!strcmp(name, "--timeout-ms")) {
            uint64_t t;
            if (!val)
                return usage_error("%s needs a value", name);
            if (parse_u64(val, 1, 86400000, &t) != 0)
                return usage_error("%s: expected milliseconds in [1, "
                                   "86400000], got '%s'",
                                   name, val);
            o->timeout_ms = (int64_t)t;
        } else if (!strcmp(name, "-o") || !strcmp(name, "--output")) {
            if (!val)
                return usage_error("%s needs a value", name);
            if (!strcmp(val, "json"))
                o->json = true;
            else if (!strcmp(val, "text"))
                o->json = false;
            else
                return usage_error("%s: expected json or text, got '%s'", name,
                                   val);
        } else {
            return usage_error("unknown flag '%s'", name);
        }
    }

    if (!workload)
        return usage_error("missing workload: put or range");
    if (!strcmp(workload, "put"))
        o->type = BS_SHARD_CMD_PUT;
    else if (!strcmp(workload, "range"))
        o->type = BS_SHARD_CMD_RANGE;
    else
        return usage_error("unknown workload '%s' (put or range)", workload);
    if (o->n_endpoints == 0)
        return usage_error("--endpoints is required");
    if (o->key_size < 8 && o->key_space > (1ULL << (8 * o->key_size)))
        return usage_error("--key-space: more keys than --key-size bytes "
                           "can tell apart");
    if (o->sequential && o->type != BS_SHARD_CMD_PUT)
        return usage_error("--sequential applies to put only");
    if (consistency_set && o->type != BS_SHARD_CMD_RANGE)
        return usage_error("--consistency applies to range only");
    if (o->prefill && o->type != BS_SHARD_CMD_RANGE)
        return usage_error("--prefill applies to range only");
    if (conns_set && o->conns > o->clients)
        return usage_error("--conns: more connections than --clients");
    if (o->conns > o->clients)
        o->conns = o->clients;
    return 0;
}

/* ---------------------------------------------------------------- main */

static void bench_close(struct bench *b)
{
    for (size_t i = 0; i < b->n_chans; i++)
        bs_rpc_channel_destroy(b->chans[i]);
    bs_rpc_client_destroy(b->rpc);
    if (b->clients) {
        for (uint64_t i = 0; i < b->o->clients; i++) {
            free(b->clients[i].key);
            free(b->clients[i].val);
        }
    }
    free(b->clients);
    free(b->chans);
}

static int bench_open(struct bench *b, const struct bench_opts *o)
{
    memset(b, 0, sizeof(*b));
    b->o = o;
    int rc = bs_rpc_client_create(BS_RPC_DEFAULT_CLIENT_THREADS, &b->rpc);
    if (rc != 0) {
        fprintf(stderr, PROG ": gRPC client: %s\n", bs_strerror(rc));
        return rc;
    }
    b->chans = calloc(o->conns, sizeof(*b->chans));
    b->clients = calloc(o->clients, sizeof(*b->clients));
    if (!b->chans || !b->clients)
        goto nomem;
    for (uint64_t i = 0; i < o->conns; i++) {
        const char *ep = o->endpoints[i % o->n_endpoints];
        rc = bs_rpc_channel_create(b->rpc, ep, NULL, &b->chans[i]);
        if (rc != 0) {
            fprintf(stderr, PROG ": channel to %s: %s\n", ep, bs_strerror(rc));
            return rc;
        }
        b->n_chans++;
    }
    uint64_t seed = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
    for (uint64_t i = 0; i < o->clients; i++) {
        struct client *c = &b->clients[i];
        c->b = b;
        c->ch = b->chans[i % o->conns];
        c->rng = (seed + i) * 0x9E3779B97F4A7C15ULL | 1;
        c->key = malloc(o->key_size);
        c->val = malloc(o->val_size ? o->val_size : 1);
        if (!c->key || !c->val)
            goto nomem;
    }
    return 0;
nomem:
    fprintf(stderr, PROG ": %s\n", bs_strerror(BS_ENOMEM));
    return BS_ENOMEM;
}

int bs_cli_bench(int argc, char **argv)
{
    struct bench_opts o;
    int ret = parse_opts(argc, argv, &o);
    if (ret != 0) {
        free(o.endpoints_buf);
        free(o.endpoints);
        return ret == 3 ? 0 : ret;
    }

    struct bench b;
    struct phase *pre = NULL, *ph = NULL;
    ret = 1;
    if (bench_open(&b, &o) != 0)
        goto out;

    if (o.prefill) {
        /* Every key once, in order; all of it "warmup", so unmeasured. */
        pre = phase_new(BS_SHARD_CMD_PUT, true, false, o.key_space, 0);
        if (!pre) {
            fprintf(stderr, PROG ": %s\n", bs_strerror(BS_ENOMEM));
            goto out;
        }
        int64_t t0 = now_ns();
        run_phase(&b, pre);
        double s = (double)(now_ns() - t0) / 1e9;
        uint64_t nerr = atomic_load(&pre->n_err);
        fprintf(stderr,
                PROG ": prefill: %" PRIu64 " keys in %.2f s, %" PRIu64
                     " errors%s%s\n",
                o.key_space, s, nerr, nerr ? ", first: " : "", pre->first_err);
        if (nerr) {
            fprintf(stderr, PROG ": prefill failed\n");
            goto out;
        }
    }

    ph = phase_new(o.type, o.sequential, o.serializable, o.warmup, o.total);
    if (!ph) {
        fprintf(stderr, PROG ": %s\n", bs_strerror(BS_ENOMEM));
        goto out;
    }
    run_phase(&b, ph);
    report(&o, ph);
    fflush(stdout);
    ret = atomic_load(&ph->n_err) ? 1 : 0;

out:
    bench_close(&b);
    phase_free(pre);
    phase_free(ph);
    free(o.endpoints_buf);
    free(o.endpoints);
    return ret;
}
