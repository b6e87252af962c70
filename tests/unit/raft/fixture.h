/*
 * fixture.h - a small simulated Raft cluster for the unit tests of
 * engine/raft.
 *
 * A network of up to FX_MAX_ID nodes, each a struct bs_raft over its own
 * bs_raft_mem_storage, driven on virtual time exactly as raft.h's usage
 * cycle says: every ready is persisted into the node's storage (snapshot,
 * entries, hard state), its messages are queued on the network, its
 * committed entries are applied (bs_raft_apply_conf_change() for
 * configuration changes) and its read states recorded, then the node is
 * advanced. Messages travel only when a test delivers them, so a test
 * controls every interleaving; links can drop or hold messages in one or
 * both directions, and a filter can drop or hold single messages.
 *
 * Every ready cycle and every step also checks what must hold in any run:
 * bs_raft_check() on the node, committed entries applied contiguously, at
 * most one leader per term (election safety, thesis 3.6.3), and no two
 * nodes applying different entries at one index (state machine safety).
 * A violation fails the running Check test.
 *
 * Node ids are 1..FX_MAX_ID. fx_new() bootstraps nodes 1..voters as voters
 * and the next ones as learners, as raft.h prescribes (snapshot meta
 * {1, 1, conf}, hard state {1, 0, 1}); fx_add_empty() adds a replica with
 * empty storage, as a new member starts.
 */
#ifndef BS_TESTS_UNIT_RAFT_FIXTURE_H
#define BS_TESTS_UNIT_RAFT_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

#define FX_MAX_ID        8
#define FX_MAX_READS     256
#define FX_MAX_CONF_HIST 32
#define FX_MAX_LOG       8192 /* highest log index the safety checker tracks */
#define FX_MAX_TERM      4096

/* What a link or the filter does with a message. */
enum fx_verdict {
    FX_PASS = 0, /* deliver */
    FX_DROP = 1, /* lose it */
    FX_HOLD = 2, /* keep it queued until the link or filter lets it pass */
};

/* Called at every delivery attempt of m (borrowed); returns a verdict. A
 * held message is shown again at the next attempt, so count a message only
 * when returning FX_PASS. */
typedef int (*fx_filter_fn)(void *arg, const struct bs_raft_msg *m);
/* Called with every ready before the fixture handles it. */
typedef void (*fx_ready_fn)(void *arg, uint64_t id,
                            const struct bs_raft_ready *rd);

struct fx_node {
    uint64_t id;
    bool exists;
    bool up; /* false while crashed (node destroyed, storage kept) */
    struct bs_raft *r;
    struct bs_raft_mem_storage *ms;
    struct bs_raft_storage inner; /* ms's own interface */
    struct fx_net *net;
    struct bs_raft_config cfg;
    /* Committed entries applied, in order (copies). */
    struct bs_raft_entry_vec applied;
    uint64_t applied_index;
    int n_snaps_installed;
    uint64_t snap_index; /* last snapshot installed from a ready */
    struct bs_raft_snapshot last_snap; /* meta and a copy of its data */
    struct bs_raft_conf_state conf;    /* configuration last applied */
    struct bs_raft_conf_state conf_hist[FX_MAX_CONF_HIST];
    int n_conf_hist;
    int n_cc_applied;
    int n_cc_rejected; /* apply_conf_change() returned an error */
    struct bs_raft_read_state reads[FX_MAX_READS];
    size_t n_reads;
};

struct fx_msgq {
    struct bs_raft_msg *v;
    size_t n, cap;
};

struct fx_canon {
    bool set;
    uint64_t term;
    uint8_t type;
    uint32_t len;
    uint64_t hash;
};

struct fx_net {
    struct bs_raft_config base;
    struct fx_node nodes[FX_MAX_ID + 1]; /* by id; [0] unused */
    struct fx_msgq q;
    uint8_t link[FX_MAX_ID + 1][FX_MAX_ID + 1]; /* enum fx_verdict */
    fx_filter_fn filter;
    void *filter_arg;
    fx_ready_fn on_ready;
    void *ready_arg;
    uint64_t sent[BS_RAFT_MSG__COUNT];      /* queued from readies */
    uint64_t delivered[BS_RAFT_MSG__COUNT]; /* stepped into a node */
    uint64_t rejects[BS_RAFT_MSG__COUNT];   /* delivered with reject set */
    uint64_t dropped[BS_RAFT_MSG__COUNT];
    uint64_t leader_of_term[FX_MAX_TERM];
    struct fx_canon *canon; /* [FX_MAX_LOG]: what was applied at index */
    bool trace;             /* FX_TRACE=1 in the environment */
    /* The transport's duty (raft.h): report every snapshot message as
     * delivered or lost with bs_raft_report_snapshot(). Default on. */
    bool report_snaps;
    /* The engine's snapshot policy (as TiKV's): storage's snapshot()
     * first records a fresh snapshot at the applied index when the
     * configuration changed since the last one, so that a new member is
     * sent a snapshot that includes it. Default on. */
    bool snap_on_demand;
};

/* A config with raft.h's defaults (bs_raft_config_default), seed 42. */
void fx_config(struct bs_raft_config *c);

/* Bootstraps nodes 1..voters as voters and voters+1..voters+learners as
 * learners, each with base (NULL: fx_config()) and seed base.seed + id. */
struct fx_net *fx_new(int voters, int learners,
                      const struct bs_raft_config *base);
struct fx_net *fx_new_default(int voters);
void fx_free(struct fx_net *net);

/* Adds node id with empty storage (a member added later). */
void fx_add_empty(struct fx_net *net, uint64_t id);

struct bs_raft *fx_r(struct fx_net *net, uint64_t id);
struct fx_node *fx_node(struct fx_net *net, uint64_t id);

/* Destroys node id keeping its storage and what it applied. */
void fx_crash(struct fx_net *net, uint64_t id);
/* Recreates node id from its storage (config.applied = what it applied). */
void fx_restart(struct fx_net *net, uint64_t id);
/* Crashes id, appends entries with the given terms at indexes
 * last+1.. (data "p<index>"), sets the hard state {hs_term, 0, commit}, and
 * restarts it. */
void fx_preload(struct fx_net *net, uint64_t id, const uint64_t *terms,
                size_t n, uint64_t hs_term, uint64_t commit);

/* One ready cycle of node id if it has a ready; returns whether it had. */
bool fx_ready_cycle(struct fx_net *net, uint64_t id);
/* Runs ready cycles of every node until none has a ready (messages are
 * queued, nothing is delivered). */
void fx_collect(struct fx_net *net);
/* Collects and delivers until no message can be delivered; returns how
 * many were stepped. Held messages stay queued. */
size_t fx_deliver(struct fx_net *net);
/* Steps m (borrowed) into node m->to as if delivered, checking the result.
 */
void fx_step(struct fx_net *net, const struct bs_raft_msg *m);
/* A zeroed message with these fields set. */
struct bs_raft_msg fx_msg(int type, uint64_t from, uint64_t to, uint64_t term);
/* Steps m into m->to, then collects, and returns the first queued message
 * of type resp from m->to to m->from (NULL if none). The queue is cleared
 * first. */
const struct bs_raft_msg *fx_ask(struct fx_net *net,
                                 const struct bs_raft_msg *m, int resp);
/* Discards every queued message. */
void fx_clear_queue(struct fx_net *net);
/* Queued messages matching type (-1: any), from and to (0: any). */
size_t fx_queued(struct fx_net *net, int type, uint64_t from, uint64_t to);
/* The i-th queued message matching, or NULL. */
const struct bs_raft_msg *fx_queued_msg(struct fx_net *net, int type,
                                        uint64_t from, uint64_t to, size_t i);

void fx_tick(struct fx_net *net, uint64_t id);
void fx_tick_all(struct fx_net *net);
/* n times: tick every node, then deliver. */
void fx_tick_deliver(struct fx_net *net, int n);

/* Links: what happens to messages from -> to. */
void fx_link(struct fx_net *net, uint64_t from, uint64_t to, int verdict);
void fx_cut(struct fx_net *net, uint64_t a, uint64_t b); /* both ways */
void fx_isolate(struct fx_net *net, uint64_t id);        /* drop all */
void fx_heal(struct fx_net *net); /* every link passes again */
void fx_set_filter(struct fx_net *net, fx_filter_fn f, void *arg);

/* Campaigns id and delivers; fails the test unless id is leader. */
void fx_elect(struct fx_net *net, uint64_t id);
/* The leader of the highest term among the running nodes, or 0. */
uint64_t fx_leader(struct fx_net *net);
/* Proposes the string s at node id; returns bs_raft_propose()'s code. */
int fx_propose(struct fx_net *net, uint64_t id, const char *s);
/* Proposes a conf change of one single change. */
int fx_propose_cc1(struct fx_net *net, uint64_t id, int transition, int type,
                   uint64_t node);

/* Number of applied normal entries with data on node id, and whether the
 * string s was applied. */
size_t fx_applied_data(struct fx_net *net, uint64_t id);
bool fx_applied_has(struct fx_net *net, uint64_t id, const char *s);
/* Whether node id has a read state with this ctx; *index receives it. */
bool fx_read_of(struct fx_net *net, uint64_t id, uint64_t ctx, uint64_t *index);

/* Configuration helpers. */
void fx_conf_set(struct bs_raft_conf_state *cs, const uint64_t *voters,
                 size_t nv, const uint64_t *learners, size_t nl);
bool fx_conf_has_voter(const struct bs_raft_conf_state *cs, uint64_t id);
bool fx_conf_has_learner(const struct bs_raft_conf_state *cs, uint64_t id);

/* Progress of peer id as the leader sees it; fails if absent. */
struct bs_raft_progress_info fx_progress(struct fx_net *net, uint64_t leader,
                                         uint64_t peer);

/* Whether two nodes hold the same log terms over [from, to]. */
bool fx_logs_match(struct fx_net *net, uint64_t a, uint64_t b, uint64_t from,
                   uint64_t to);

/* Prints every node's state to stderr (for failing tests). */
void fx_dump(struct fx_net *net, const char *why);

/* A test main: runs the suite built by make_suite, exit 0 iff all pass. */
int fx_run_suite(Suite *s);

#define FX_TCASE(s, name, timeout)                                             \
    TCase *name = tcase_create(#name);                                         \
    tcase_set_timeout(name, (timeout));                                        \
    suite_add_tcase((s), name)

#endif
