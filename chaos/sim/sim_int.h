/*
 * sim_int.h - the simulator's internal state, shared by its files.
 *
 *   net.c     virtual network: a heap of in-flight messages, partitions
 *   node.c    one replica: storage, bs_raft, state machine, ready cycle,
 *             crash and restart, snapshots
 *   check.c   Raft safety invariants and the client history checks
 *   history.c simulated clients: writes, reads, acknowledgements
 *   sim.c     a run: parameters drawn from the seed, the step loop,
 *             workload, fault schedule, final heal and liveness check
 *   demo.c    the scripted demo
 *
 * A run (struct bs_sim) owns everything it allocates and frees it in
 * bs_sim__free(); no state survives between runs.
 */
#ifndef BS_CHAOS_SIM_INT_H
#define BS_CHAOS_SIM_INT_H

#include "raft.h"
#include "sim.h"

struct bs_sim;

/* Node ids of a run are 1..BS_SIM_MAX_IDS; ids are never reused. */
#define BS_SIM_MAX_IDS 24
/* Registers of a run; a register retires after BS_SIM_KEY_CAP operations
 * and a fresh one takes its place, which bounds each checked history. */
#define BS_SIM_MAX_KEYS   96
#define BS_SIM_KEY_CAP    160
#define BS_SIM_MAX_ACTIVE 4
/* Clients of one register have at most this many operations pending. */
#define BS_SIM_KEY_CLIENTS 6
/* Messages in flight beyond this are dropped (bounded memory). */
#define BS_SIM_NET_CAP 20000
/* States of one linearizability search beyond this: inconclusive. */
#define BS_SIM_LIN_BUDGET 2000000

/* ----------------------------------------------------------------- network */

struct bs_sim_packet {
    uint64_t at;       /* delivery step */
    uint64_t seq;      /* tie-break: send order */
    uint32_t from_inc; /* sender's incarnation */
    bool lost; /* lost on the way: a snapshot whose failure the transport
                  reports when it would have arrived */
    struct bs_raft_msg m; /* owned */
};

struct bs_sim_slot {
    uint64_t at, seq;
    struct bs_sim_packet *p; /* owned */
};

struct bs_sim_net {
    struct bs_sim_slot *heap; /* min-heap on (at, seq) */
    size_t n, cap;
    uint64_t seq;
    /* cut[from][to]: messages from -> to are lost (partitions). */
    bool cut[BS_SIM_MAX_IDS + 1][BS_SIM_MAX_IDS + 1];
    uint32_t drop_ppm, dup_ppm, spike_ppm;
    uint32_t lat_min, lat_max, spike_max;
};

/* Copies m into the network; may drop or duplicate it. Returns the number
 * of copies queued (0, 1 or 2) or BS_ENOMEM. */
int bs_sim__net_send(struct bs_sim *s, const struct bs_raft_msg *m,
                     uint32_t from_inc);
/* Pops the earliest packet due at or before now into *out (caller frees
 * out->m). Returns false if none is due. */
bool bs_sim__net_pop(struct bs_sim_net *net, uint64_t now,
                     struct bs_sim_packet *out);
void bs_sim__net_heal(struct bs_sim_net *net);
void bs_sim__net_free(struct bs_sim_net *net);

/* ------------------------------------------------------------------- nodes */

enum bs_sim_node_state {
    BS_SIM_ABSENT = 0, /* id not used yet */
    BS_SIM_UP = 1,
    BS_SIM_DOWN = 2,    /* crashed: storage kept */
    BS_SIM_RETIRED = 3, /* removed from the group and shut down */
};

struct bs_sim_node {
    struct bs_sim *sim; /* back pointer (storage callbacks) */
    uint64_t id;
    int state;
    uint32_t inc;                   /* incarnation, bumped at each start */
    struct bs_raft_mem_storage *ms; /* owned; survives crashes */
    struct bs_raft *r;              /* owned; NULL unless UP */
    /* The state machine: one register per key, the set of write ids
     * already applied (proposals may be duplicated in the log), and the
     * configuration as of the applied index. Lost in a crash. */
    uint64_t vals[BS_SIM_MAX_KEYS];
    uint8_t *done; /* bitmap of applied write ids */
    size_t done_bytes;
    uint64_t applied;
    struct bs_raft_conf_state conf;
    /* Checker bookkeeping. */
    uint64_t seen_commit;
    uint64_t seen_term;
    int seen_role;
    uint64_t seen_lead;
    uint64_t lead_checked_term;
    /* Reads whose read state came out, waiting for applied >= index. */
    uint64_t *waiting;
    size_t n_waiting, cap_waiting;
    uint64_t down_until; /* earliest restart step */
    uint64_t retire_at;  /* 0 = not removed; else step to shut down */
    bool crash_in_ready; /* crash after persisting the next ready */
    uint64_t installs;   /* snapshots installed from readies */
    uint64_t kill_at;    /* new leader: crash or isolate at this step */
    bool kill_isolate;   /* ...and only isolate it */
};

/* ------------------------------------------------------------- history */

enum bs_sim_op_state {
    BS_SIM_PENDING = 0,
    BS_SIM_DONE = 1,  /* acknowledged / served */
    BS_SIM_INDET = 2, /* write never acknowledged */
    BS_SIM_DEAD = 3,  /* read that never returned (left out) */
};

struct bs_sim_write {
    uint32_t key;
    uint8_t state;
    uint64_t node;
    uint32_t inc;
    uint64_t invoke, ret;
    uint64_t deadline;
};

struct bs_sim_read {
    uint32_t key;
    uint8_t state;
    bool final; /* a read of the final check */
    uint64_t node;
    uint32_t inc;
    uint64_t invoke, ret;
    uint64_t deadline;
    uint64_t index; /* read index, once known */
    uint64_t value;
    uint64_t min_index; /* highest commit index seen anywhere at invoke */
};

/* Operation ids in a key's history: write id, or read id | READ_TAG. */
#define BS_SIM_READ_TAG (1ULL << 63)

struct bs_sim_key {
    uint64_t *ops;
    size_t n, cap;
    bool used;
    uint32_t pending; /* operations not yet answered or abandoned */
};

/* -------------------------------------------------------- log records */

/* What the checker knows about one log index. */
struct bs_sim_idx {
    uint64_t cterm;     /* term of the committed entry (0: unknown) */
    uint64_t cobs_term; /* lowest term of a node that saw it committed */
    uint64_t aterm;     /* term of the entry applied here */
    uint64_t ahash;     /* hash of the entry applied here */
    uint64_t shash;     /* hash of the snapshot data taken here */
    uint64_t chash;     /* hash of the configuration after this entry */
    int64_t lm;         /* log-matching records (list in lm pool), -1 */
};

struct bs_sim_lm {
    uint64_t term, hash, prev_term; /* prev_term 0: unknown */
    int64_t next;
};

/* --------------------------------------------------------------- the run */

struct bs_sim_params {
    int voters, learners;
    int election_tick, heartbeat_tick;
    int steps_per_tick;
    bool check_quorum, pre_vote;
    int read_only;
    uint64_t max_size_per_msg;
    int max_inflight;
    uint64_t max_uncommitted;
    bool no_forwarding;
    int n_active_keys;
    uint32_t write_ppm, read_ppm, fault_ppm, member_ppm, transfer_ppm, snap_ppm,
        campaign_ppm;
    uint32_t kill_leader_ppm; /* a new leader dies or is cut off at once */
    uint64_t op_timeout;      /* steps before a client gives up */
    uint64_t min_down;        /* shortest crash (steps) */
    int max_pad;              /* extra bytes in a command */
};

struct bs_sim {
    struct bs_sim_options opt;
    FILE *out;
    struct bs_sim_params p;
    struct bs_sim_rng rng;
    uint64_t now; /* current step (virtual time) */
    uint64_t seq; /* history event counter */
    bool healing; /* final phase: no new faults */
    bool narrate; /* demo: events go through the narrator */

    struct bs_sim_node nodes[BS_SIM_MAX_IDS + 1]; /* index = id */
    uint64_t max_id;                              /* ids used: 1..max_id */
    struct bs_sim_net net;
    uint64_t partition_until; /* 0: no partition */
    uint64_t client_lead;     /* the leader as clients last saw it */

    /* Invariant records. */
    uint64_t *leader_of_term;
    size_t n_terms;
    struct bs_sim_idx *idx;
    size_t n_idx;
    struct bs_sim_lm *lm;
    size_t n_lm, cap_lm;
    uint64_t gcommit;

    /* Client history. */
    struct bs_sim_write *writes; /* [0] unused; id = value written */
    size_t n_writes, cap_writes;
    struct bs_sim_read *reads; /* [0] unused; id = read ctx */
    size_t n_reads, cap_reads;
    uint64_t *pend_w, *pend_r; /* pending op ids */
    size_t n_pend_w, cap_pend_w, n_pend_r, cap_pend_r;
    struct bs_sim_key keys[BS_SIM_MAX_KEYS];
    uint32_t active[BS_SIM_MAX_ACTIVE];
    uint32_t next_key;

    struct bs_sim_stats st;
    struct bs_sim_failure *fail;
    int oom;
};

/* sim.c */
void bs_sim__trace(struct bs_sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Records the first failure; later ones are ignored. */
void bs_sim__fail(struct bs_sim *s, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool bs_sim__failed(const struct bs_sim *s);
/* Draws the run's parameters from the seed; setup (may be NULL) may then
 * override s->p and s->net before the nodes boot. */
int bs_sim__init(struct bs_sim *s, const struct bs_sim_options *o,
                 struct bs_sim_failure *f, void (*setup)(struct bs_sim *s));
void bs_sim__free(struct bs_sim *s);
void bs_sim__step(struct bs_sim *s, bool with_events);
/* Retry-friendly workload primitives (also used by the demo). */
uint64_t bs_sim__write(struct bs_sim *s, struct bs_sim_node *n, uint32_t key);
uint64_t bs_sim__read(struct bs_sim *s, struct bs_sim_node *n, uint32_t key,
                      bool final);
struct bs_sim_node *bs_sim__leader(struct bs_sim *s);
void bs_sim__partition(struct bs_sim *s, const bool *side_a, bool asym);
int bs_sim__final(struct bs_sim *s);
void bs_sim__new_key(struct bs_sim *s, int slot);
/* Starts a node with a fresh id and empty storage; NULL if none left. */
struct bs_sim_node *bs_sim__new_node(struct bs_sim *s);

/* history.c */
void bs_sim__hist_applied(struct bs_sim *s, struct bs_sim_node *n,
                          uint64_t w_id);
void bs_sim__hist_read_state(struct bs_sim *s, struct bs_sim_node *n,
                             const struct bs_raft_read_state *rs);
/* Serves the node's waiting reads whose index is applied. */
void bs_sim__hist_serve(struct bs_sim *s, struct bs_sim_node *n);
/* The node crashed or shut down: its pending operations are lost. */
void bs_sim__hist_node_lost(struct bs_sim *s, struct bs_sim_node *n);
void bs_sim__hist_expire(struct bs_sim *s);

/* node.c */
int bs_sim__node_boot(struct bs_sim *s, struct bs_sim_node *n,
                      const struct bs_raft_conf_state *cs);
int bs_sim__node_start(struct bs_sim *s, struct bs_sim_node *n);
void bs_sim__node_crash(struct bs_sim *s, struct bs_sim_node *n);
void bs_sim__node_retire(struct bs_sim *s, struct bs_sim_node *n);
/* Runs ready cycles until the node has none, then checks it. */
void bs_sim__node_ready(struct bs_sim *s, struct bs_sim_node *n);
/* Snapshots the node's state machine at its applied index and compacts
 * the log, keeping `keep` entries (< 0: a random number). */
void bs_sim__node_snapshot(struct bs_sim *s, struct bs_sim_node *n, int keep);
/* Frees everything the node owns (end of run). */
void bs_sim__node_free(struct bs_sim_node *n);
/* Encodes put(key, value) plus `pad` filler bytes into buf (at least
 * 13 + pad bytes); returns the length. */
size_t bs_sim__encode_put(uint8_t *buf, uint32_t key, uint64_t value,
                          size_t pad);
void bs_sim__deliver(struct bs_sim *s, struct bs_sim_packet *p);
bool bs_sim__conf_has(const struct bs_raft_conf_state *cs, uint64_t id);
bool bs_sim__conf_joint(const struct bs_raft_conf_state *cs);
bool bs_sim__conf_voter(const struct bs_raft_conf_state *cs, uint64_t id);
void bs_sim__conf_str(const struct bs_raft_conf_state *cs, char *buf,
                      size_t len);
uint64_t bs_sim__hash(const void *data, size_t len, uint64_t h);

/* check.c */
struct bs_sim_idx *bs_sim__idx(struct bs_sim *s, uint64_t index);
void bs_sim__check_node(struct bs_sim *s, struct bs_sim_node *n);
void bs_sim__check_persist(struct bs_sim *s, struct bs_sim_node *n,
                           const struct bs_raft_entry *ents, size_t cnt);
void bs_sim__check_apply(struct bs_sim *s, struct bs_sim_node *n,
                         const struct bs_raft_entry *e);
/* The node applied the conf change entry at index: its configuration must
 * be the one every other node reached there. */
void bs_sim__check_conf(struct bs_sim *s, struct bs_sim_node *n,
                        uint64_t index);
void bs_sim__check_snapdata(struct bs_sim *s, struct bs_sim_node *n,
                            uint64_t index, uint64_t hash);
void bs_sim__check_snapshot(struct bs_sim *s, struct bs_sim_node *n,
                            const struct bs_raft_snapshot *snap);
void bs_sim__check_read(struct bs_sim *s, uint64_t read_id);
void bs_sim__check_history(struct bs_sim *s);

#endif
