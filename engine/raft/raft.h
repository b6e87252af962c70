/*
 * raft.h - the Raft consensus algorithm as a pure, deterministic state
 * machine (public interface of engine/raft).
 *
 * Modelled on etcd's raft package. The core performs no I/O, reads no clock,
 * starts no thread and calls no rand(): time enters as bs_raft_tick(),
 * randomness as a seeded PRNG in the config, and all effects leave through a
 * "ready" record that the caller persists, sends and applies before calling
 * bs_raft_advance(). Every replica of every shard runs one struct bs_raft.
 *
 * Features (Raft thesis, Ongaro 2014, sections cited where implemented):
 *   - leader election with randomized timeouts (3.4), pre-vote (9.6),
 *     check-quorum (6.2);
 *   - log replication with pipelining, an inflight window, a byte limit per
 *     message, probe / replicate / snapshot progress states, and conflict
 *     hints for O(terms) repair of a lagging follower (3.5);
 *   - commit only of current-term entries by counting (3.6.2);
 *   - batched ReadIndex reads and lease reads (6.4, 6.4.1);
 *   - learners (4.2.1): never counted in any quorum or vote;
 *   - joint consensus configuration changes (4.3) with automatic leave, plus
 *     the one-step shortcut for single changes (4.1); only one change in
 *     flight; a removed leader steps down;
 *   - leadership transfer with TimeoutNow (3.10);
 *   - snapshots and log compaction through the storage interface (5).
 *
 * Usage cycle (one struct bs_raft):
 *
 *     bs_raft_tick() / bs_raft_step() / bs_raft_propose() / ...
 *     if (bs_raft_has_ready(r)) {
 *         bs_raft_ready(r, &rd);
 *         1. persist rd.hard_state, rd.entries and rd.snapshot (if any);
 *            fsync if rd.must_sync;
 *         2. send rd.msgs, after step 1 is durable. (A leader may send
 *            its MsgApp/MsgHeartbeat/MsgSnap while step 1 is in progress,
 *            thesis 10.2.1; a follower's responses acknowledge what step 1
 *            wrote and must wait for it.)
 *         3. apply rd.committed (calling bs_raft_apply_conf_change() for each
 *            configuration-change entry) and serve rd.read_states;
 *         bs_raft_advance(r, &rd);
 *     }
 *
 * Everything in a ready is borrowed from the node and valid until
 * bs_raft_advance(); between bs_raft_ready() and bs_raft_advance() the only
 * calls allowed on the node are bs_raft_apply_conf_change() (required for
 * conf-change entries, step 3) and the inspection functions. A leader counts its own log in the commit quorum only
 * after bs_raft_advance() says its entries are durable (thesis 10.2.1).
 *
 * Bootstrapping (as TiKV does): every initial member persists a snapshot
 * meta {index = 1, term = 1, conf = initial voters} with empty data and the
 * hard state {term = 1, vote = 0, commit = 1}, then creates its node. A
 * replica added later starts from empty storage (no configuration, term 0):
 * it stays passive until the leader sends it the snapshot, which carries
 * the configuration.
 */
#ifndef BS_ENGINE_RAFT_RAFT_H
#define BS_ENGINE_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* ---------------------------------------------------------------- limits */

/* Largest number of members (voters, outgoing voters and learners together)
 * in one group. Replica sets are 3 to 7 in practice; a change that would
 * exceed this is refused with BS_EINVAL. */
#define BS_RAFT_MAX_MEMBERS 16

/* Largest number of single changes in one configuration change. */
#define BS_RAFT_MAX_CC 8

/* Node id 0 means "nobody". */
#define BS_RAFT_NONE 0

/* ---------------------------------------------------------------- entries */

enum bs_raft_entry_type {
    BS_RAFT_ENTRY_NORMAL = 0,
    BS_RAFT_ENTRY_CONF_CHANGE = 1, /* data is an encoded bs_raft_conf_change */
};

/*
 * A log entry. The entry owns its data when it sits in a container made by
 * this library (log, message, entry vector); pointers handed out in a ready
 * or a message are borrowed. An entry with len == 0 has data == NULL (the
 * empty entry a new leader appends, thesis 3.6.2 / 6.4).
 */
struct bs_raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum bs_raft_entry_type */
    uint32_t len;
    uint8_t *data;
};

/* Growable array of entries that owns the entries' data. Zero-initialize
 * ({0}) before use; bs_raft_entry_vec_free() releases everything. */
struct bs_raft_entry_vec {
    struct bs_raft_entry *v;
    size_t n;
    size_t cap;
};

/* Appends a copy of *e (its data copied too). Returns 0 or BS_ENOMEM, in
 * which case the vector is unchanged. */
int bs_raft_entry_vec_push(struct bs_raft_entry_vec *vec,
                           const struct bs_raft_entry *e /* borrowed */);
/* Frees the data of entries [from, n) and sets n = from. */
void bs_raft_entry_vec_truncate(struct bs_raft_entry_vec *vec, size_t from);
/* Frees all entries' data and the array. Accepts NULL. */
void bs_raft_entry_vec_free(struct bs_raft_entry_vec *vec);

/* Size that counts against byte limits: data length plus a fixed overhead
 * so that empty entries are not free. */
uint64_t bs_raft_entry_size(const struct bs_raft_entry *e /* borrowed */);

/* ---------------------------------------------------- configuration state */

/*
 * The membership of a group (thesis 4.3). Outside a joint configuration
 * n_voters_outgoing == 0 and n_learners_next == 0. In a joint configuration
 * voters is the incoming set C_new and voters_outgoing is C_old; a voter of
 * C_old that becomes a learner in C_new sits in learners_next until the joint
 * state is left. auto_leave says that the leader leaves the joint
 * configuration by itself once the entering entry is applied.
 */
struct bs_raft_conf_state {
    uint64_t voters[BS_RAFT_MAX_MEMBERS];
    uint32_t n_voters;
    uint64_t voters_outgoing[BS_RAFT_MAX_MEMBERS];
    uint32_t n_voters_outgoing;
    uint64_t learners[BS_RAFT_MAX_MEMBERS];
    uint32_t n_learners;
    uint64_t learners_next[BS_RAFT_MAX_MEMBERS];
    uint32_t n_learners_next;
    bool auto_leave;
};

/* Room for every member of a configuration (each set is bounded by
 * BS_RAFT_MAX_MEMBERS). */
#define BS_RAFT_CONF_MAX_LIST (4 * BS_RAFT_MAX_MEMBERS)

/* Lists every member of cs once, in the order voters, outgoing voters,
 * learners, next learners, into ids (room for BS_RAFT_CONF_MAX_LIST);
 * learner (may be NULL) says whether each only learns now (a voter being
 * demoted in a joint state still votes). Returns how many. */
size_t bs_raft_conf_members(const struct bs_raft_conf_state *cs,
                            uint64_t *ids /* out */, bool *learner /* out */);
/* Whether id is a member of cs in any role. */
bool bs_raft_conf_has(const struct bs_raft_conf_state *cs, uint64_t id);

/* True if the two states hold the same sets (order ignored) and the same
 * auto_leave. */
bool bs_raft_conf_state_equal(const struct bs_raft_conf_state *a,
                              const struct bs_raft_conf_state *b);

enum bs_raft_cc_type {
    BS_RAFT_CC_ADD_VOTER = 0,   /* add a voter, or promote a learner */
    BS_RAFT_CC_ADD_LEARNER = 1, /* add a learner, or demote a voter */
    BS_RAFT_CC_REMOVE = 2,      /* remove a voter or learner */
};

enum bs_raft_cc_transition {
    /* One-step change if it is a single voter change (thesis 4.1), joint
     * consensus with automatic leave otherwise. */
    BS_RAFT_CC_TRANSITION_AUTO = 0,
    /* Always joint consensus; the leader leaves the joint state by itself. */
    BS_RAFT_CC_TRANSITION_JOINT_IMPLICIT = 1,
    /* Always joint consensus; the application proposes the leave (an empty
     * conf change) itself. */
    BS_RAFT_CC_TRANSITION_JOINT_EXPLICIT = 2,
};

struct bs_raft_cc_single {
    uint8_t type; /* enum bs_raft_cc_type */
    uint64_t node_id;
};

/*
 * A configuration change. n_changes == 0 means "leave the joint
 * configuration". Encoded in the data of a BS_RAFT_ENTRY_CONF_CHANGE entry.
 */
struct bs_raft_conf_change {
    uint8_t transition; /* enum bs_raft_cc_transition */
    uint32_t n_changes;
    struct bs_raft_cc_single changes[BS_RAFT_MAX_CC];
};

/* Largest encoded size of a conf change. */
#define BS_RAFT_CC_MAX_ENCODED (8 + BS_RAFT_MAX_CC * 9)

/* Encodes cc into buf (at least BS_RAFT_CC_MAX_ENCODED bytes). Returns the
 * encoded length (> 0), or BS_EINVAL if cc is malformed. */
int bs_raft_cc_encode(const struct bs_raft_conf_change *cc /* borrowed */,
                      uint8_t *buf /* borrowed */);
/* Decodes; returns 0, or BS_ECORRUPT if the bytes are not a valid encoding
 * (cc is then undefined). */
int bs_raft_cc_decode(const uint8_t *data /* borrowed */, size_t len,
                      struct bs_raft_conf_change *cc /* out */);

/* ---------------------------------------------------- persistent state */

/* Must be persisted before any message of the same ready that depends on
 * it is sent (vote before a vote response, term before anything). */
struct bs_raft_hard_state {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
};

struct bs_raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    struct bs_raft_conf_state conf;
};

/* A snapshot: metadata plus an opaque state-machine image. The engine may
 * leave data empty and move the image out of band; the core only reads
 * meta. */
struct bs_raft_snapshot {
    struct bs_raft_snapshot_meta meta;
    uint8_t *data;
    size_t len;
};

/* ---------------------------------------------------------------- messages */

enum bs_raft_msg_type {
    /* Local messages: never sent over the network. */
    BS_RAFT_MSG_HUP = 0,          /* start an election */
    BS_RAFT_MSG_BEAT = 1,         /* leader: send heartbeats */
    BS_RAFT_MSG_UNREACHABLE = 2,  /* transport: 'from' could not be reached */
    BS_RAFT_MSG_SNAP_STATUS = 3,  /* transport: snapshot to 'from' done or
                                     failed (reject) */
    BS_RAFT_MSG_CHECK_QUORUM = 4, /* leader: check that a quorum is active */
    /* Wire messages. */
    BS_RAFT_MSG_PROP = 5,         /* forwarded proposal */
    BS_RAFT_MSG_APP = 6,          /* AppendEntries */
    BS_RAFT_MSG_APP_RESP = 7,
    BS_RAFT_MSG_VOTE = 8,         /* RequestVote */
    BS_RAFT_MSG_VOTE_RESP = 9,
    BS_RAFT_MSG_PREVOTE = 10,
    BS_RAFT_MSG_PREVOTE_RESP = 11,
    BS_RAFT_MSG_SNAP = 12,        /* InstallSnapshot */
    BS_RAFT_MSG_HEARTBEAT = 13,
    BS_RAFT_MSG_HEARTBEAT_RESP = 14,
    BS_RAFT_MSG_TRANSFER_LEADER = 15,
    BS_RAFT_MSG_TIMEOUT_NOW = 16,
    BS_RAFT_MSG_READ_INDEX = 17,
    BS_RAFT_MSG_READ_INDEX_RESP = 18,
    BS_RAFT_MSG__COUNT = 19,
};

/* Name of a message type ("MsgApp"); never NULL. */
const char *bs_raft_msg_type_name(int type);

/* Flags of struct bs_raft_msg. */
#define BS_RAFT_MSG_F_TRANSFER 0x01 /* vote of a leadership transfer: granted
                                       even inside a leader lease */

/*
 * One Raft message. A message owns its entries and snapshot data when built
 * by this library or by bs_raft_msg_copy(); messages in a ready are borrowed
 * until bs_raft_advance().
 *
 * Field use by type:
 *   APP:         term, log_term/index (of the entry before entries), commit,
 *                entries
 *   APP_RESP:    index (last index matched, or the rejected index),
 *                reject, reject_hint + log_term (conflict hint)
 *   VOTE/PREVOTE: term, log_term/index (candidate's last entry), flags
 *   *_RESP:      reject
 *   SNAP:        snapshot
 *   HEARTBEAT:   commit, ctx (read round)
 *   HEARTBEAT_RESP: ctx (read round echoed)
 *   READ_INDEX:  ctx (request id)
 *   READ_INDEX_RESP: index (read index), ctx (request id)
 *   PROP:        entries
 *   TRANSFER_LEADER: from = transferee
 */
struct bs_raft_msg {
    uint8_t type; /* enum bs_raft_msg_type */
    uint8_t flags;
    bool reject;
    uint64_t to;
    uint64_t from;
    uint64_t term;
    uint64_t log_term;
    uint64_t index;
    uint64_t commit;
    uint64_t reject_hint;
    uint64_t ctx;
    struct bs_raft_entry *entries;
    size_t n_entries;
    struct bs_raft_snapshot snapshot; /* only for SNAP */
};

/* Deep-copies src into *dst (entries and snapshot data included). Returns 0
 * or BS_ENOMEM (dst then owns nothing). */
int bs_raft_msg_copy(struct bs_raft_msg *dst /* out */,
                     const struct bs_raft_msg *src /* borrowed */);
/* Frees what a message owns (not the struct itself). Accepts NULL. */
void bs_raft_msg_free(struct bs_raft_msg *m);

/* ---------------------------------------------------------------- storage */

/*
 * Read-only view of the persisted log, implemented by the engine (RocksDB
 * with a tail cache) or by bs_raft_mem_storage. The core never writes
 * through it; the caller persists what readies tell it to.
 *
 * Log layout: a snapshot covers [1, first_index - 1]; entries
 * [first_index, last_index] are readable; term(first_index - 1) is the
 * snapshot's term and must be answered.
 *
 * Snapshots: the leader sends snapshot() to a follower whose entries are
 * compacted, but only if its configuration includes that follower (a
 * replica ignores a snapshot that predates its membership). The engine
 * therefore takes a new snapshot after a configuration change that adds a
 * member (TiKV does the same), and reports each snapshot's delivery with
 * bs_raft_report_snapshot(); until it does, the follower's progress stays
 * in the snapshot state.
 *
 * Errors: BS_ECOMPACTED for an index below first_index - 1 (term) or below
 * first_index (entries); BS_EUNAVAIL above last_index; BS_ESNAPTEMP from
 * snapshot() when the image is being built (the core retries later); any
 * other code is treated as fatal and returned to the caller.
 */
struct bs_raft_storage_ops {
    /* Hard state and configuration saved last. */
    int (*initial_state)(void *ctx, struct bs_raft_hard_state *hs,
                         struct bs_raft_conf_state *cs);
    /* Appends copies of entries [lo, hi) to out, stopping once their total
     * size would exceed max_bytes (at least one entry is always returned).
     */
    int (*entries)(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                   struct bs_raft_entry_vec *out);
    int (*term)(void *ctx, uint64_t index, uint64_t *term);
    uint64_t (*first_index)(void *ctx);
    uint64_t (*last_index)(void *ctx);
    /* Fills *snap with the latest snapshot; data is a copy the caller owns
     * (freed with free()). */
    int (*snapshot)(void *ctx, struct bs_raft_snapshot *snap);
};

struct bs_raft_storage {
    const struct bs_raft_storage_ops *ops;
    void *ctx;
};

/* ------------------------------------------------------ in-memory storage */

/*
 * In-memory implementation of the storage interface, like etcd's
 * MemoryStorage: used by the tests, the simulator and the benchmark. It keeps
 * a dummy entry at position 0 that stands for the snapshot's (index, term).
 */
struct bs_raft_mem_storage;

/* Returns NULL on out-of-memory. */
struct bs_raft_mem_storage *bs_raft_mem_storage_create(void);
/* Accepts NULL. */
void bs_raft_mem_storage_destroy(struct bs_raft_mem_storage *ms);
/* The storage interface over ms (borrowed; valid while ms lives). */
struct bs_raft_storage bs_raft_mem_storage_iface(
    struct bs_raft_mem_storage *ms);
void bs_raft_mem_storage_set_hard_state(struct bs_raft_mem_storage *ms,
                                        const struct bs_raft_hard_state *hs);
/* Sets the configuration returned by initial_state (for bootstrapping). */
void bs_raft_mem_storage_set_conf(struct bs_raft_mem_storage *ms,
                                  const struct bs_raft_conf_state *cs);
/* Appends entries (copied), truncating any conflicting suffix. Entries
 * below first_index are ignored. Returns 0, BS_ENOMEM, or BS_EINVAL if the
 * entries would leave a gap. */
int bs_raft_mem_storage_append(struct bs_raft_mem_storage *ms,
                               const struct bs_raft_entry *ents /* borrowed */,
                               size_t n);
/* Replaces the whole log with the snapshot (data copied). Returns 0,
 * BS_ESNAPOUTDATED if older than the current snapshot, or BS_ENOMEM. */
int bs_raft_mem_storage_apply_snapshot(
    struct bs_raft_mem_storage *ms,
    const struct bs_raft_snapshot *snap /* borrowed */);
/* Records a snapshot at index i (<= last index) with the given conf and
 * data (copied). Returns 0, BS_ESNAPOUTDATED, BS_EUNAVAIL or BS_ENOMEM. */
int bs_raft_mem_storage_create_snapshot(
    struct bs_raft_mem_storage *ms, uint64_t i,
    const struct bs_raft_conf_state *cs /* borrowed */,
    const uint8_t *data /* borrowed */, size_t len);
/* Discards entries before compact_index. Returns 0, BS_ECOMPACTED if
 * already compacted there, or BS_EUNAVAIL if beyond the last index. */
int bs_raft_mem_storage_compact(struct bs_raft_mem_storage *ms,
                                uint64_t compact_index);

/* ------------------------------------------------------------------ config */

enum bs_raft_read_only_option {
    /* ReadIndex confirmed by a heartbeat round with a quorum (6.4). */
    BS_RAFT_READ_SAFE = 0,
    /* Leader lease (6.4.1): answered without a round while the leader has
     * heard from a quorum within the lease. Requires check_quorum. In this
     * mode a node whose term is > 1 refuses (pre-)votes for election_tick
     * ticks after it is created: it may have acknowledged a lease before a
     * restart, and granting a vote inside that lease could let a stale
     * leader serve reads. (At term <= 1 no leader has ever existed.) */
    BS_RAFT_READ_LEASE_BASED = 1,
};

/* Fault injection for the simulator's self-test: each bit breaks one rule
 * on purpose so that the invariant checkers can be shown to catch it. Never
 * set outside tests. */
#define BS_RAFT_FAULT_COUNT_LEARNER_VOTE 0x01 /* a learner's vote counts */
#define BS_RAFT_FAULT_COMMIT_OLD_TERM 0x02    /* commit by counting entries
                                                 of earlier terms */
#define BS_RAFT_FAULT_VOTE_ANY_LOG 0x04       /* grant votes without the
                                                 up-to-date log check */
#define BS_RAFT_FAULT_STALE_READ 0x08         /* answer ReadIndex without a
                                                 heartbeat round */

struct bs_raft_config {
    uint64_t id;                 /* this node, != BS_RAFT_NONE */
    int election_tick;           /* > heartbeat_tick; timeout is drawn from
                                    [election_tick, 2*election_tick) */
    int heartbeat_tick;          /* >= 1 */
    struct bs_raft_storage storage; /* borrowed; must outlive the node */
    uint64_t applied;            /* last index applied before a restart */
    uint64_t max_size_per_msg;   /* bytes of entries per APP; 0 = one entry */
    uint64_t max_committed_size_per_ready; /* 0 = unlimited */
    uint64_t max_uncommitted_entries_size; /* 0 = unlimited; proposals over
                                              it are dropped */
    int max_inflight_msgs;       /* > 0: APPs in flight per follower */
    bool check_quorum;
    bool pre_vote;
    int read_only_option;        /* enum bs_raft_read_only_option */
    /* Lease length in ticks for lease reads; must be < election_tick.
     * 0 means election_tick - 1. */
    int lease_ticks;
    bool disable_proposal_forwarding;
    uint64_t seed;               /* PRNG seed for election timeouts */
    uint32_t faults;             /* BS_RAFT_FAULT_* (tests only) */
};

/* Fills sensible defaults (election 10, heartbeat 1, 1 MiB per message,
 * 256 inflight, check_quorum and pre_vote on, safe reads). The caller sets
 * id, storage and seed. */
void bs_raft_config_default(struct bs_raft_config *c /* out */);

/* --------------------------------------------------------------- the node */

enum bs_raft_role {
    BS_RAFT_FOLLOWER = 0,
    BS_RAFT_CANDIDATE = 1,
    BS_RAFT_LEADER = 2,
    BS_RAFT_PRE_CANDIDATE = 3,
};

const char *bs_raft_role_name(int role);

struct bs_raft_soft_state {
    uint64_t lead;
    uint8_t role; /* enum bs_raft_role */
};

/* A read request that became safe: the caller may answer request ctx once
 * its applied index reaches index. */
struct bs_raft_read_state {
    uint64_t index;
    uint64_t ctx;
};

struct bs_raft_ready {
    bool has_soft_state;
    struct bs_raft_soft_state soft_state;
    bool has_hard_state;
    struct bs_raft_hard_state hard_state;
    bool has_snapshot; /* install before applying committed entries */
    struct bs_raft_snapshot snapshot;
    const struct bs_raft_entry *entries; /* to persist (append) */
    size_t n_entries;
    const struct bs_raft_entry *committed; /* to apply, in order */
    size_t n_committed;
    const struct bs_raft_msg *msgs; /* to send */
    size_t n_msgs;
    const struct bs_raft_read_state *read_states;
    size_t n_read_states;
    bool must_sync; /* hard state term/vote or entries changed */
};

struct bs_raft;

/*
 * Creates a node from its config and the state in config->storage.
 * The configuration comes from storage's initial_state. Returns 0 and sets
 * *out, or BS_EINVAL (config invalid: the reason in errmsg), BS_ENOMEM, or
 * a storage error. errmsg (borrowed, may be NULL, >= 128 bytes) receives a
 * sentence on failure.
 */
int bs_raft_create(const struct bs_raft_config *config /* borrowed */,
                   struct bs_raft **out, char *errmsg);
/* Accepts NULL. */
void bs_raft_destroy(struct bs_raft *r);

/* Advances the logical clock by one tick. */
void bs_raft_tick(struct bs_raft *r);

/* Feeds a message from the network (or a local message). Returns 0,
 * BS_EDROPPED (proposal not taken: no leader, transfer in progress...),
 * BS_EINVAL for a malformed message, or a fatal storage error. Messages
 * of unknown groups or stale terms are ignored with 0. */
int bs_raft_step(struct bs_raft *r, const struct bs_raft_msg *m /* borrowed */);

/* Proposes data (copied) to be appended. Returns 0 or BS_EDROPPED /
 * BS_ENOTLEADER-like conditions as BS_EDROPPED, BS_ETOOBIG over the
 * uncommitted limit. A proposal taken may still be lost. */
int bs_raft_propose(struct bs_raft *r, const uint8_t *data /* borrowed */,
                    size_t len);

/* Proposes a configuration change. Returns 0, BS_EDROPPED, or BS_EINVAL if
 * cc is malformed. A leader with a change already pending replaces the
 * proposal with an empty normal entry (it is dropped, as in etcd). */
int bs_raft_propose_conf_change(
    struct bs_raft *r, const struct bs_raft_conf_change *cc /* borrowed */);

/* Applies a committed conf change entry's change to the node's tracker and
 * returns the new configuration in *cs (may be NULL). Must be called for
 * every committed BS_RAFT_ENTRY_CONF_CHANGE entry, in log order. Returns 0
 * or BS_EINVAL if the change is invalid for the current configuration (the
 * configuration is then unchanged: such an entry is a no-op everywhere). */
int bs_raft_apply_conf_change(struct bs_raft *r,
                              const struct bs_raft_conf_change *cc,
                              struct bs_raft_conf_state *cs /* out */);

/* Requests a linearizable read. When safe, a read state (index, ctx)
 * appears in a ready. Returns 0 or BS_EDROPPED (no leader known). */
int bs_raft_read_index(struct bs_raft *r, uint64_t ctx);

/* Asks the leader to transfer leadership to 'to'. Refused silently if 'to'
 * is a learner or unknown; waits for 'to' to catch up before TimeoutNow;
 * aborted after an election timeout. */
void bs_raft_transfer_leader(struct bs_raft *r, uint64_t to);

/* Starts an election now (no-op for learners and leaders). */
void bs_raft_campaign(struct bs_raft *r);

/* Tells a leader that a snapshot to 'to' finished (failed = true if it was
 * not delivered). */
void bs_raft_report_snapshot(struct bs_raft *r, uint64_t to, bool failed);
/* Tells a leader that 'to' is unreachable. */
void bs_raft_report_unreachable(struct bs_raft *r, uint64_t to);

bool bs_raft_has_ready(const struct bs_raft *r);
/* Fills *rd; everything in it is borrowed until bs_raft_advance(). */
void bs_raft_ready(struct bs_raft *r, struct bs_raft_ready *rd /* out */);
/* The caller has persisted, sent and applied rd. */
void bs_raft_advance(struct bs_raft *r, const struct bs_raft_ready *rd);

/* ------------------------------------------------------------- inspection */

uint64_t bs_raft_id(const struct bs_raft *r);
uint64_t bs_raft_term(const struct bs_raft *r);
uint64_t bs_raft_lead(const struct bs_raft *r);
int bs_raft_role(const struct bs_raft *r);
uint64_t bs_raft_committed(const struct bs_raft *r);
uint64_t bs_raft_applied(const struct bs_raft *r);
uint64_t bs_raft_last_index(const struct bs_raft *r);
uint64_t bs_raft_vote(const struct bs_raft *r);
bool bs_raft_is_learner(const struct bs_raft *r);
/* The lead_transferee, or BS_RAFT_NONE. */
uint64_t bs_raft_lead_transferee(const struct bs_raft *r);
/* Current configuration. */
void bs_raft_conf_state(const struct bs_raft *r,
                        struct bs_raft_conf_state *cs /* out */);
/* Term of entry i as this node sees it (unstable or storage). Returns 0 or
 * BS_ECOMPACTED / BS_EUNAVAIL. */
int bs_raft_log_term(struct bs_raft *r, uint64_t i, uint64_t *term);
/* Whether a lease read would be answered right now without a round. */
bool bs_raft_lease_valid(const struct bs_raft *r);

/* Replication progress of one peer, as the leader sees it. */
struct bs_raft_progress_info {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    uint8_t state; /* 0 probe, 1 replicate, 2 snapshot */
    bool learner;
    bool recent_active;
};
/* Fills up to cap entries; returns how many peers there are (0 when not
 * leader). */
size_t bs_raft_progress(const struct bs_raft *r,
                        struct bs_raft_progress_info *out, size_t cap);

/* Checks the node's internal invariants; returns NULL if they hold or a
 * static string naming the first one broken. For use inside assert(). */
const char *bs_raft_check(const struct bs_raft *r);

#endif
