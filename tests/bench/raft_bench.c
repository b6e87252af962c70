/*
 * raft_bench.c - micro-benchmark of the Raft core (engine/raft) alone.
 *
 * A 3-node cluster of struct bs_raft over bs_raft_mem_storage, all in one
 * thread: messages are copied into an in-process queue and stepped into
 * their target on the next round, nothing touches a disk or a socket. Node
 * 1 is elected with bs_raft_campaign(), then the leader is given --batch
 * proposals of --payload bytes per round until --entries have been
 * committed and applied on all three nodes. What is measured is the cost of
 * the algorithm and its data structures: the figure to watch over time is
 * allocations per committed entry (malloc, calloc and realloc calls counted
 * through the linker's --wrap, which catches calls made from the static
 * Raft library), then entries per second on one core.
 *
 * One "ready round" = every node, in turn, handles at most one ready record
 * (persist, queue messages, apply, advance), then every queued message is
 * delivered. The cycle follows the one documented at the top of raft.h.
 *
 * It prints figures and never judges timing. It exits non-zero only for a
 * correctness failure: an API error, entries applied out of order or
 * corrupted, a node that is not in step at the end, or no progress.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "raft.h"

#define N_NODES 3

/* ------------------------------------------------ allocation accounting */

/* Every allocation is charged to the phase the benchmark is in. */
enum phase {
    PH_HARNESS = 0, /* setup, bookkeeping */
    PH_CORE,        /* bs_raft_* calls: propose, step, tick, ready, advance */
    PH_STORAGE,     /* bs_raft_mem_storage_* calls */
    PH_TRANSPORT,   /* bs_raft_msg_copy / bs_raft_msg_free, the queue */
    PH__COUNT,
};

static const char *const phase_names[PH__COUNT] = {"harness", "core", "storage",
                                                   "transport"};

struct alloc_stats {
    uint64_t allocs[PH__COUNT]; /* malloc + calloc + realloc calls */
    uint64_t bytes[PH__COUNT];  /* bytes requested by those calls (for
                                   realloc: only the growth) */
    uint64_t frees;             /* free() of a non-NULL pointer */
};

static struct alloc_stats g_alloc;
static enum phase g_phase = PH_HARNESS;

void *__real_malloc(size_t n);
void *__real_calloc(size_t nmemb, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t nmemb, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

void *__wrap_malloc(size_t n)
{
    g_alloc.allocs[g_phase]++;
    g_alloc.bytes[g_phase] += n;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t nmemb, size_t n)
{
    g_alloc.allocs[g_phase]++;
    g_alloc.bytes[g_phase] += nmemb * n;
    return __real_calloc(nmemb, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    size_t old = p != NULL ? malloc_usable_size(p) : 0;

    g_alloc.allocs[g_phase]++;
    if (n > old)
        g_alloc.bytes[g_phase] += n - old;
    return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
    if (p != NULL)
        g_alloc.frees++;
    __real_free(p);
}

/* --------------------------------------------------------------- options */

struct options {
    uint64_t entries;       /* payload entries to commit */
    uint64_t batch;         /* proposals per round */
    uint64_t payload;       /* bytes per proposal, >= 8 */
    uint64_t tick_every;    /* rounds between ticks, 0 = never */
    uint64_t compact_every; /* applied entries between compactions */
    uint64_t keep;          /* entries kept below the applied index */
    uint64_t seed;
    uint64_t trace; /* print the messages of the first N rounds */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: raft_bench [--entries N] [--batch B] [--payload BYTES]\n"
               "                  [--tick-every R] [--compact-every N] "
               "[--keep N] [--seed S] [--trace R]\n"
               "  --entries N        entries to commit (default 200000)\n"
               "  --batch B          proposals per ready round (default 64)\n"
               "  --payload BYTES    bytes per entry, >= 8 (default 256)\n"
               "  --tick-every R     one tick per R rounds, 0 = none "
               "(default 100)\n"
               "  --compact-every N  compact each log every N applied entries "
               "(default 10000)\n"
               "  --keep N           entries kept below the applied index on "
               "compaction (default 1024)\n"
               "  --seed S           PRNG seed of the nodes (default 1)\n"
               "  --trace R          print every message of the first R "
               "rounds (stderr)\n");
}

static int parse_u64(const char *flag, const char *s, uint64_t min,
                     uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL) {
        fprintf(stderr, "raft_bench: %s needs a value\n", flag);
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min) {
        fprintf(stderr,
                "raft_bench: %s: '%s' is not an integer >= %" PRIu64 "\n", flag,
                s, min);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    o->entries = 200000;
    o->batch = 64;
    o->payload = 256;
    o->tick_every = 100;
    o->compact_every = 10000;
    o->keep = 1024;
    o->seed = 1;
    o->trace = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--entries") == 0) {
            rc = parse_u64(a, v, 1, &o->entries);
        } else if (strcmp(a, "--batch") == 0) {
            rc = parse_u64(a, v, 1, &o->batch);
        } else if (strcmp(a, "--payload") == 0) {
            rc = parse_u64(a, v, 8, &o->payload);
            if (rc == 0 && o->payload > (1u << 20)) {
                fprintf(stderr, "raft_bench: --payload is at most 1 MiB\n");
                rc = -1;
            }
        } else if (strcmp(a, "--tick-every") == 0) {
            rc = parse_u64(a, v, 0, &o->tick_every);
        } else if (strcmp(a, "--compact-every") == 0) {
            rc = parse_u64(a, v, 1, &o->compact_every);
        } else if (strcmp(a, "--keep") == 0) {
            rc = parse_u64(a, v, 0, &o->keep);
        } else if (strcmp(a, "--trace") == 0) {
            rc = parse_u64(a, v, 0, &o->trace);
        } else if (strcmp(a, "--seed") == 0) {
            rc = parse_u64(a, v, 0, &o->seed);
        } else {
            fprintf(stderr, "raft_bench: unknown argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
        if (rc != 0)
            return -1;
        i++;
    }
    return 0;
}

/* --------------------------------------------------------------- cluster */

/* Queue of messages in flight; owns the copies. */
struct msgq {
    struct bs_raft_msg *v;
    size_t n;
    size_t cap;
};

struct node {
    uint64_t id;
    struct bs_raft *r;              /* owned */
    struct bs_raft_mem_storage *ms; /* owned */
    uint64_t applied;               /* last index applied */
    uint64_t next_seq;              /* sequence number expected next */
    uint64_t last_compact;          /* applied index at last compaction */
    uint64_t readies;
    bool resync; /* a snapshot skipped payloads */
};

struct cluster {
    struct node nodes[N_NODES];
    struct msgq q, spare;
    const struct options *o;
    uint64_t rounds;
    uint64_t msgs_delivered;
    uint64_t msgs_by_type[BS_RAFT_MSG__COUNT];
    uint64_t entries_in_msgs; /* entries carried by delivered messages */
    uint64_t snaps_sent;
    uint64_t compactions;
    uint64_t conf_changes;
    uint64_t step_errors;
};

static void fail(const char *what, int rc)
{
    fprintf(stderr, "raft_bench: FAILED: %s: %s (%s)\n", what, bs_strerror(rc),
            bs_err_name(rc));
    exit(1);
}

static struct node *node_by_id(struct cluster *c, uint64_t id)
{
    if (id < 1 || id > N_NODES)
        return NULL;
    return &c->nodes[id - 1];
}

static void q_push_copy(struct msgq *q, const struct bs_raft_msg *m)
{
    int rc;

    g_phase = PH_TRANSPORT;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct bs_raft_msg *v = realloc(q->v, cap * sizeof(*v));
        if (v == NULL)
            fail("queue growth", BS_ENOMEM);
        q->v = v;
        q->cap = cap;
    }
    rc = bs_raft_msg_copy(&q->v[q->n], m);
    if (rc != 0)
        fail("bs_raft_msg_copy", rc);
    q->n++;
    g_phase = PH_HARNESS;
}

/* Checks a committed normal entry: payloads carry their sequence number in
 * the first 8 bytes and a pattern derived from it in the rest. */
static void check_payload(struct node *nd, const struct bs_raft_entry *e,
                          uint64_t payload)
{
    uint64_t seq;

    if (e->len != payload) {
        fprintf(stderr,
                "raft_bench: FAILED: node %" PRIu64 " applied entry %" PRIu64
                " of %" PRIu32 " bytes, expected %" PRIu64 "\n",
                nd->id, e->index, e->len, payload);
        exit(1);
    }
    memcpy(&seq, e->data, sizeof(seq));
    if (nd->resync && seq >= nd->next_seq) {
        nd->next_seq = seq;
        nd->resync = false;
    }
    if (seq != nd->next_seq ||
        e->data[e->len - 1] != (uint8_t)(seq * 31 + e->len - 1)) {
        fprintf(stderr,
                "raft_bench: FAILED: node %" PRIu64 " applied seq %" PRIu64
                " at index %" PRIu64 ", expected seq %" PRIu64 "\n",
                nd->id, seq, e->index, nd->next_seq);
        exit(1);
    }
    nd->next_seq++;
}

static void apply_committed(struct cluster *c, struct node *nd,
                            const struct bs_raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_committed; i++) {
        const struct bs_raft_entry *e = &rd->committed[i];
        if (e->index != nd->applied + 1) {
            fprintf(stderr,
                    "raft_bench: FAILED: node %" PRIu64 " got committed "
                    "index %" PRIu64 " after applying %" PRIu64 "\n",
                    nd->id, e->index, nd->applied);
            exit(1);
        }
        if (e->type == BS_RAFT_ENTRY_CONF_CHANGE) {
            struct bs_raft_conf_change cc;
            struct bs_raft_conf_state cs;
            int rc = bs_raft_cc_decode(e->data, e->len, &cc);
            if (rc != 0)
                fail("bs_raft_cc_decode", rc);
            g_phase = PH_CORE;
            rc = bs_raft_apply_conf_change(nd->r, &cc, &cs);
            g_phase = PH_HARNESS;
            if (rc == 0) {
                g_phase = PH_STORAGE;
                bs_raft_mem_storage_set_conf(nd->ms, &cs);
                g_phase = PH_HARNESS;
            }
            c->conf_changes++;
        } else if (e->len > 0) {
            check_payload(nd, e, c->o->payload);
        }
        nd->applied = e->index;
    }
}

/* One ready of one node, in the order raft.h prescribes: persist, send,
 * apply, advance. */
static void handle_ready(struct cluster *c, struct node *nd)
{
    struct bs_raft_ready rd;
    int rc;

    g_phase = PH_CORE;
    if (!bs_raft_has_ready(nd->r)) {
        g_phase = PH_HARNESS;
        return;
    }
    bs_raft_ready(nd->r, &rd);
    nd->readies++;

    /* 1. Persist: snapshot, then entries, then hard state. */
    g_phase = PH_STORAGE;
    if (rd.has_snapshot) {
        rc = bs_raft_mem_storage_apply_snapshot(nd->ms, &rd.snapshot);
        if (rc != 0)
            fail("bs_raft_mem_storage_apply_snapshot", rc);
    }
    if (rd.n_entries > 0) {
        rc = bs_raft_mem_storage_append(nd->ms, rd.entries, rd.n_entries);
        if (rc != 0)
            fail("bs_raft_mem_storage_append", rc);
    }
    if (rd.has_hard_state)
        bs_raft_mem_storage_set_hard_state(nd->ms, &rd.hard_state);
    g_phase = PH_HARNESS;

    /* 2. Send: copies go to the queue, stepped in after every node ran. */
    for (size_t i = 0; i < rd.n_msgs; i++)
        q_push_copy(&c->q, &rd.msgs[i]);

    /* 3. Apply. */
    if (rd.has_snapshot && rd.snapshot.meta.index > nd->applied) {
        /* The benchmark's state machine has no image: a snapshot can only
         * come from compaction racing a slow follower, and stands for
         * payloads this node never sees. Resynchronise the sequence check
         * on the next payload. */
        nd->resync = true;
        nd->applied = rd.snapshot.meta.index;
    }
    apply_committed(c, nd, &rd);

    g_phase = PH_CORE;
    bs_raft_advance(nd->r, &rd);
    g_phase = PH_HARNESS;
}

static void maybe_compact(struct cluster *c, struct node *nd)
{
    struct bs_raft_conf_state cs;
    uint64_t upto;
    int rc;

    if (nd->applied < nd->last_compact + c->o->compact_every)
        return;
    g_phase = PH_CORE;
    bs_raft_conf_state(nd->r, &cs);
    g_phase = PH_STORAGE;
    rc = bs_raft_mem_storage_create_snapshot(nd->ms, nd->applied, &cs, NULL, 0);
    if (rc != 0 && rc != BS_ESNAPOUTDATED)
        fail("bs_raft_mem_storage_create_snapshot", rc);
    upto = nd->applied > c->o->keep ? nd->applied - c->o->keep : 0;
    if (upto > nd->last_compact && upto > 1) {
        rc = bs_raft_mem_storage_compact(nd->ms, upto);
        if (rc != 0 && rc != BS_ECOMPACTED)
            fail("bs_raft_mem_storage_compact", rc);
    }
    g_phase = PH_HARNESS;
    nd->last_compact = nd->applied;
    c->compactions++;
}

/* Steps every queued message into its target. Messages sent during this
 * delivery (there are none: output only leaves through readies) would wait
 * for the next round. */
static void deliver(struct cluster *c)
{
    struct msgq tmp = c->q;

    c->q = c->spare;
    c->spare = tmp;
    for (size_t i = 0; i < c->spare.n; i++) {
        struct bs_raft_msg *m = &c->spare.v[i];
        struct node *to = node_by_id(c, m->to);
        int rc;

        if (to == NULL) {
            fprintf(stderr,
                    "raft_bench: FAILED: %s from %" PRIu64
                    " to unknown node %" PRIu64 "\n",
                    bs_raft_msg_type_name(m->type), m->from, m->to);
            exit(1);
        }
        if (c->rounds < c->o->trace)
            fprintf(stderr,
                    "round %" PRIu64 ": %s %" PRIu64 "->%" PRIu64
                    " term %" PRIu64 " log_term %" PRIu64 " index %" PRIu64
                    " commit %" PRIu64 " entries %zu%s\n",
                    c->rounds, bs_raft_msg_type_name(m->type), m->from, m->to,
                    m->term, m->log_term, m->index, m->commit, m->n_entries,
                    m->reject ? " reject" : "");
        g_phase = PH_CORE;
        rc = bs_raft_step(to->r, m);
        if (rc != 0 && rc != BS_EDROPPED)
            fail("bs_raft_step", rc);
        if (rc != 0)
            c->step_errors++;
        if (m->type == BS_RAFT_MSG_SNAP) {
            /* Delivered in full: tell the sender, as a transport would. */
            struct node *from = node_by_id(c, m->from);
            c->snaps_sent++;
            if (from != NULL)
                bs_raft_report_snapshot(from->r, m->to, false);
        }
        c->msgs_delivered++;
        if (m->type < BS_RAFT_MSG__COUNT)
            c->msgs_by_type[m->type]++;
        c->entries_in_msgs += m->n_entries;
        g_phase = PH_TRANSPORT;
        bs_raft_msg_free(m);
        g_phase = PH_HARNESS;
    }
    c->spare.n = 0;
}

static void round_trip(struct cluster *c)
{
    for (int i = 0; i < N_NODES; i++)
        handle_ready(c, &c->nodes[i]);
    deliver(c);
    for (int i = 0; i < N_NODES; i++)
        maybe_compact(c, &c->nodes[i]);
    c->rounds++;
    if (c->o->tick_every > 0 && c->rounds % c->o->tick_every == 0) {
        g_phase = PH_CORE;
        for (int i = 0; i < N_NODES; i++)
            bs_raft_tick(c->nodes[i].r);
        g_phase = PH_HARNESS;
    }
}

static void cluster_init(struct cluster *c, const struct options *o)
{
    struct bs_raft_snapshot boot;
    struct bs_raft_hard_state hs = {.term = 1, .vote = 0, .commit = 1};
    char errmsg[256];

    memset(c, 0, sizeof(*c));
    c->o = o;
    memset(&boot, 0, sizeof(boot));
    boot.meta.index = 1;
    boot.meta.term = 1;
    for (uint64_t id = 1; id <= N_NODES; id++)
        boot.meta.conf.voters[boot.meta.conf.n_voters++] = id;

    for (int i = 0; i < N_NODES; i++) {
        struct node *nd = &c->nodes[i];
        struct bs_raft_config cfg;
        int rc;

        nd->id = (uint64_t)i + 1;
        nd->ms = bs_raft_mem_storage_create();
        if (nd->ms == NULL)
            fail("bs_raft_mem_storage_create", BS_ENOMEM);
        rc = bs_raft_mem_storage_apply_snapshot(nd->ms, &boot);
        if (rc != 0)
            fail("bootstrap snapshot", rc);
        bs_raft_mem_storage_set_conf(nd->ms, &boot.meta.conf);
        bs_raft_mem_storage_set_hard_state(nd->ms, &hs);
        nd->applied = 1;
        nd->last_compact = 1;

        bs_raft_config_default(&cfg);
        cfg.id = nd->id;
        cfg.storage = bs_raft_mem_storage_iface(nd->ms);
        cfg.applied = 1;
        cfg.seed = o->seed * 1000003 + nd->id;
        errmsg[0] = '\0';
        rc = bs_raft_create(&cfg, &nd->r, errmsg);
        if (rc != 0) {
            fprintf(stderr, "raft_bench: bs_raft_create: %s\n", errmsg);
            fail("bs_raft_create", rc);
        }
    }
}

static void cluster_destroy(struct cluster *c)
{
    for (size_t i = 0; i < c->q.n; i++)
        bs_raft_msg_free(&c->q.v[i]);
    free(c->q.v);
    free(c->spare.v);
    for (int i = 0; i < N_NODES; i++) {
        bs_raft_destroy(c->nodes[i].r);
        bs_raft_mem_storage_destroy(c->nodes[i].ms);
    }
}

static struct node *leader_of(struct cluster *c)
{
    for (int i = 0; i < N_NODES; i++)
        if (bs_raft_role(c->nodes[i].r) == BS_RAFT_LEADER)
            return &c->nodes[i];
    return NULL;
}

static void dump_state(struct cluster *c)
{
    for (int i = 0; i < N_NODES; i++) {
        struct node *nd = &c->nodes[i];
        fprintf(stderr,
                "  node %" PRIu64 ": role %s term %" PRIu64 " lead %" PRIu64
                " commit %" PRIu64 " applied %" PRIu64 " last %" PRIu64
                " payloads %" PRIu64 "\n",
                nd->id, bs_raft_role_name(bs_raft_role(nd->r)),
                bs_raft_term(nd->r), bs_raft_lead(nd->r),
                bs_raft_committed(nd->r), nd->applied,
                bs_raft_last_index(nd->r), nd->next_seq);
    }
}

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t min_payloads(struct cluster *c)
{
    uint64_t m = UINT64_MAX;
    for (int i = 0; i < N_NODES; i++)
        if (c->nodes[i].next_seq < m)
            m = c->nodes[i].next_seq;
    return m;
}

static void check_invariants(struct cluster *c)
{
    for (int i = 0; i < N_NODES; i++) {
        const char *broken = bs_raft_check(c->nodes[i].r);
        if (broken != NULL) {
            fprintf(stderr,
                    "raft_bench: FAILED: node %d invariant broken: %s\n", i + 1,
                    broken);
            dump_state(c);
            exit(1);
        }
    }
}

int main(int argc, char **argv)
{
    struct options o;
    struct cluster c;
    struct alloc_stats base, end;
    uint64_t rounds, msgs, by_type[BS_RAFT_MSG__COUNT];
    uint8_t *payload;
    uint64_t proposed = 0, dropped = 0, stall = 0, last_progress = 0;
    uint64_t rounds0, elect_rounds, allocs = 0, bytes = 0;
    double t0, cpu0, wall, cpu;
    struct node *lead;
    struct rusage ru;

    if (parse_options(argc, argv, &o) != 0)
        return 2;
    payload = malloc(o.payload);
    if (payload == NULL)
        fail("payload buffer", BS_ENOMEM);
    cluster_init(&c, &o);

    /* Election: node 1 campaigns (pre-vote, then vote). */
    g_phase = PH_CORE;
    bs_raft_campaign(c.nodes[0].r);
    g_phase = PH_HARNESS;
    while ((lead = leader_of(&c)) == NULL || c.nodes[0].applied < 2 ||
           c.nodes[1].applied < 2 || c.nodes[2].applied < 2) {
        round_trip(&c);
        if (c.rounds > 10000) {
            fprintf(stderr, "raft_bench: FAILED: no leader with its empty "
                            "entry applied everywhere after 10000 rounds\n");
            dump_state(&c);
            return 1;
        }
    }
    elect_rounds = c.rounds;
    check_invariants(&c);
    printf("raft_bench: %d nodes in memory, one thread; %" PRIu64
           " entries x %" PRIu64 " B, batch %" PRIu64 ", tick every %" PRIu64
           " rounds, compact every %" PRIu64 "\n",
           N_NODES, o.entries, o.payload, o.batch, o.tick_every,
           o.compact_every);
    printf("election:                  node %" PRIu64 " leads term %" PRIu64
           " after %" PRIu64 " rounds\n",
           lead->id, bs_raft_term(lead->r), elect_rounds);

    /* Measured phase: counters start from zero here. */
    c.msgs_delivered = 0;
    c.entries_in_msgs = 0;
    memset(c.msgs_by_type, 0, sizeof(c.msgs_by_type));
    base = g_alloc;
    rounds0 = c.rounds;
    t0 = now_s(CLOCK_MONOTONIC);
    cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    while (min_payloads(&c) < o.entries) {
        lead = leader_of(&c);
        for (uint64_t b = 0;
             lead != NULL && b < o.batch && proposed < o.entries; b++) {
            int rc;
            memcpy(payload, &proposed, sizeof(proposed));
            for (uint64_t k = 8; k < o.payload; k++)
                payload[k] = (uint8_t)(proposed * 31 + k);
            g_phase = PH_CORE;
            rc = bs_raft_propose(lead->r, payload, o.payload);
            g_phase = PH_HARNESS;
            if (rc == BS_EDROPPED || rc == BS_ETOOBIG) {
                dropped++;
                break; /* retry the same sequence number next round */
            }
            if (rc != 0)
                fail("bs_raft_propose", rc);
            proposed++;
        }
        round_trip(&c);
        if (min_payloads(&c) != last_progress) {
            last_progress = min_payloads(&c);
            stall = 0;
        } else if (++stall > 100000) {
            fprintf(stderr,
                    "raft_bench: FAILED: no entry applied in 100000 "
                    "rounds (proposed %" PRIu64 ")\n",
                    proposed);
            dump_state(&c);
            return 1;
        }
    }
    wall = now_s(CLOCK_MONOTONIC) - t0;
    cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    end = g_alloc;
    rounds = c.rounds - rounds0;
    msgs = c.msgs_delivered;
    memcpy(by_type, c.msgs_by_type, sizeof(by_type));

    /* Drain: let the last commit index reach every node, then check. */
    for (int i = 0; i < 50; i++)
        round_trip(&c);
    check_invariants(&c);
    for (int i = 0; i < N_NODES; i++) {
        struct node *nd = &c.nodes[i];
        if (nd->next_seq != o.entries ||
            bs_raft_committed(nd->r) != bs_raft_committed(c.nodes[0].r)) {
            fprintf(stderr, "raft_bench: FAILED: nodes not in step at the "
                            "end\n");
            dump_state(&c);
            return 1;
        }
    }

    for (int p = 0; p < PH__COUNT; p++) {
        allocs += end.allocs[p] - base.allocs[p];
        bytes += end.bytes[p] - base.bytes[p];
    }
    printf("committed entries:         %" PRIu64
           " (applied in order on all %d nodes, last index %" PRIu64 ")\n",
           o.entries, N_NODES, bs_raft_committed(c.nodes[0].r));
    printf("time:                      %.3f s wall, %.3f s cpu\n", wall, cpu);
    printf("committed entries/s:       %.0f (one core; %.1f MB/s of "
           "payload)\n",
           (double)o.entries / wall,
           (double)o.entries * (double)o.payload / wall / 1e6);
    printf("ready rounds:              %" PRIu64 " (%.1f entries per round; "
           "readies handled: %" PRIu64 ")\n",
           rounds, (double)o.entries / (double)rounds,
           c.nodes[0].readies + c.nodes[1].readies + c.nodes[2].readies);
    printf("messages delivered:        %" PRIu64 " (%.2f per committed "
           "entry; %" PRIu64 " entries carried):",
           msgs, (double)msgs / (double)o.entries, c.entries_in_msgs);
    for (int t = 0; t < BS_RAFT_MSG__COUNT; t++)
        if (by_type[t] > 0)
            printf(" %s %" PRIu64, bs_raft_msg_type_name(t), by_type[t]);
    printf("\n");
    printf("allocations per committed entry: %.2f (",
           (double)allocs / (double)o.entries);
    for (int p = 0; p < PH__COUNT; p++)
        printf("%s%s %.2f", p ? ", " : "", phase_names[p],
               (double)(end.allocs[p] - base.allocs[p]) / (double)o.entries);
    printf(")\n");
    printf("bytes allocated per entry: %.0f (",
           (double)bytes / (double)o.entries);
    for (int p = 0; p < PH__COUNT; p++)
        printf("%s%s %.0f", p ? ", " : "", phase_names[p],
               (double)(end.bytes[p] - base.bytes[p]) / (double)o.entries);
    printf("; payload %" PRIu64 " B)\n", o.payload);
    printf("other:                     %" PRIu64 " proposals dropped, %" PRIu64
           " steps refused, %" PRIu64 " snapshots sent, %" PRIu64
           " compactions, %" PRIu64 " conf changes\n",
           dropped, c.step_errors, c.snaps_sent, c.compactions, c.conf_changes);
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        printf("max RSS:                   %.1f MiB\n",
               (double)ru.ru_maxrss / 1024.0);

    cluster_destroy(&c);
    free(payload);
    return 0;
}
