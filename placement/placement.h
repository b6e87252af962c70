/*
 * placement.h - public interface of placement/: the cluster metadata state
 * machine that the placement group (shard 0) replicates.
 *
 * The placement group is a Raft group like any shard (DESIGN.md section 7).
 * Its committed entries are placement commands (struct bs_pd_cmd, encoded
 * with bs_pd_cmd_encode); every replica applies them in log order with
 * bs_pd_apply and so holds the same struct bs_pd_state:
 *
 *   nodes    id, client / peer / http addresses, labels (rack=r1, ...),
 *            state (up, suspect, down, draining, removed), last heartbeat;
 *   shards   id, key range [start, end), epoch {conf_ver, version},
 *            replicas (replica id = Raft node id in that group, node id,
 *            role), leader replica and term as last reported;
 *   routing  the data shards sorted by start key: key -> shard in
 *            O(log n) (bs_pd_route);
 *   ids      allocators for shard, replica and node ids, so that ids are
 *            unique cluster-wide.
 *
 * Everything here is a deterministic function of its inputs: no threads,
 * no clock (time enters as a `now` carried by commands, in milliseconds of
 * whatever clock the proposer uses), no randomness. The simulator replays
 * it; every replica computes the same state from the same log.
 *
 * Shard 0 and the key space. Shard 0 (BS_PD_SHARD_PLACEMENT) is the
 * placement group itself: it appears in the shard table (so that its
 * replicas, epoch and leader are tracked and changed like any shard's) but
 * it covers no user key: its descriptor has keyless = true and empty
 * bounds, and it is never in the routing table. Data shards (ids >= 1)
 * partition the whole byte-string key space: the first starts at the empty
 * key, each one's end is the next one's start, the last one's end is empty
 * (meaning +infinity). A data shard's range is never empty.
 *
 * Persistence: the state lives in shard 0's column family as one record per
 * node, one per shard, one per operator in flight and one meta record
 * (applied index, id allocators, counts), each versioned and checksummed
 * (placement/persist.c). A change rewrites only the records it touched, in
 * the same write batch as the applied index (bs_pd_save), so apply is
 * idempotent across a crash: bs_pd_load restores exactly the state of the
 * last saved index. A snapshot of the placement group is its column family
 * (the engine exports it); bs_pd_encode_all / bs_pd_decode_all give the
 * same records as one buffer.
 *
 * Pointers returned by the inspection functions (nodes, shards) are
 * borrowed from the state and valid until the next bs_pd_apply, bs_pd_load,
 * bs_pd_decode_all or bs_pd_state_destroy on that state. One state belongs
 * to one thread at a time.
 */
#ifndef BS_PLACEMENT_PLACEMENT_H
#define BS_PLACEMENT_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "errors.h"
#include "raft.h"

/* ---------------------------------------------------------------- limits */

/* Shard id of the placement group. */
#define BS_PD_SHARD_PLACEMENT 0

#define BS_PD_DEFAULT_INITIAL_SHARDS 8 /* --initial-shards */
#define BS_PD_DEFAULT_REPLICAS       3 /* replicas per data shard */
/* The placement group's own voters: the largest odd number <= 5 that the
 * initial nodes allow (an even count tolerates no more failures than the
 * odd count below it). */
#define BS_PD_MAX_PLACEMENT_REPLICAS 5

/* Initial split points are evenly spaced 2-byte prefixes (see
 * bs_pd_initial_split_key), so at most 65536 initial shards. */
#define BS_PD_MAX_INITIAL_SHARDS 65536
/* Largest count of one AllocIds command. */
#define BS_PD_MAX_ALLOC 65536

#define BS_PD_ADDR_MAX      255 /* host:port, bytes without the NUL */
#define BS_PD_MAX_LABELS    16  /* labels per node */
#define BS_PD_LABEL_KEY_MAX 63  /* bytes without the NUL */
#define BS_PD_LABEL_VAL_MAX 127
/* Sanity bound on a range boundary (a split key), above etcd's request
 * size limit so that no key etcd accepts is refused here. */
#define BS_PD_MAX_KEY_LEN (4u << 20)

/* ----------------------------------------------------------------- nodes */

/*
 * Node states and their transitions. Every edge is a committed command
 * applied by bs_pd_apply; the function named is the static handler in
 * apply.c. `liveness` marks the edges the placement leader proposes when
 * bs_pd_node_next_state (a pure function of the last heartbeat and `now`)
 * says so.
 *
 *   BOOTSTRAP, REGISTER_NODE
 *        |
 *        v        suspect (liveness)          down (liveness)
 *   +-> UP ---------------------> SUSPECT ---------------> DOWN
 *   |    ^ ^                         |                       |
 *   |    | +----- heartbeat, up -----+                       |
 *   |    +--------- heartbeat, up ---------------------------+
 *   |              (and UP -> DOWN directly: down)
 *   |
 *   | up (decommission cancelled)
 *   |
 *   +-- DRAINING <---- draining ---- UP, SUSPECT, DOWN
 *          |
 *          | removed: only once the node holds no replica (else BS_EBUSY)
 *          v
 *       REMOVED  (terminal: the id is never reused)
 *
 *   (heartbeat = NODE_HEARTBEAT; up, suspect, ... = UPDATE_NODE_STATE)
 *
 *   edge                           command            handler
 *   (none) -> UP                   BOOTSTRAP          apply_bootstrap
 *   (none) -> UP                   REGISTER_NODE      apply_register_node
 *   UP -> SUSPECT, UP -> DOWN,
 *     SUSPECT -> DOWN              UPDATE_NODE_STATE  apply_node_state
 *   SUSPECT / DOWN -> UP           NODE_HEARTBEAT     apply_heartbeat
 *   SUSPECT / DOWN -> UP           UPDATE_NODE_STATE  apply_node_state
 *   UP / SUSPECT / DOWN
 *     -> DRAINING                  UPDATE_NODE_STATE  apply_node_state
 *   DRAINING -> UP                 UPDATE_NODE_STATE  apply_node_state
 *   DRAINING -> REMOVED            UPDATE_NODE_STATE  apply_node_state
 *
 * Any other edge is refused with BS_EINVAL; a command that asks for the
 * state the node is already in returns BS_ESTALE (a duplicate). A draining
 * node stays draining whatever its heartbeats say; its liveness is still
 * visible in last_heartbeat.
 */
enum bs_pd_node_state {
    BS_PD_NODE_UP = 1,
    BS_PD_NODE_SUSPECT = 2,
    BS_PD_NODE_DOWN = 3,
    BS_PD_NODE_DRAINING = 4,
    BS_PD_NODE_REMOVED = 5,
};

/* "up", "suspect", ...; "unknown" for other values. Never NULL. */
const char *bs_pd_node_state_name(int state);

struct bs_pd_label {
    char key[BS_PD_LABEL_KEY_MAX + 1]; /* non-empty, NUL-terminated */
    char value[BS_PD_LABEL_VAL_MAX + 1];
};

/* What a node says about itself when it registers. Strings are
 * NUL-terminated; an empty address means "not served". */
struct bs_pd_node_info {
    uint64_t id; /* not 0, not UINT64_MAX */
    char client_addr[BS_PD_ADDR_MAX + 1];
    char peer_addr[BS_PD_ADDR_MAX + 1];
    char http_addr[BS_PD_ADDR_MAX + 1];
    uint32_t n_labels;
    struct bs_pd_label labels[BS_PD_MAX_LABELS]; /* distinct keys */
};

struct bs_pd_node {
    struct bs_pd_node_info info;
    uint8_t state;           /* enum bs_pd_node_state */
    uint64_t last_heartbeat; /* `now` of the last heartbeat command */
    uint64_t state_since;    /* `now` of the command that set state */
    uint64_t join_token;     /* the token it joined with, 0 = bootstrap */
};

/* The label value of key on node, or NULL. */
const char *bs_pd_node_label(const struct bs_pd_node *node, const char *key);

/*
 * The state the liveness rule gives a node at time now: an UP or SUSPECT
 * node silent for more than down_after becomes DOWN, one silent for more
 * than suspect_after becomes SUSPECT; other states are returned unchanged
 * (DRAINING and REMOVED are operator states, and only a heartbeat brings a
 * SUSPECT or DOWN node back). A heartbeat in the future (another leader's
 * clock) counts as fresh. Pure: the placement leader proposes
 * UPDATE_NODE_STATE when the answer differs from node->state.
 */
int bs_pd_node_next_state(const struct bs_pd_node *node, uint64_t now,
                          uint64_t suspect_after, uint64_t down_after);

/* ---------------------------------------------------------------- shards */

enum bs_pd_role {
    BS_PD_ROLE_VOTER = 0,
    BS_PD_ROLE_LEARNER = 1,
    /* Joint consensus (thesis 4.3), room for moves (issue 5): a voter of
     * C_new only, and a voter of C_old that becomes a learner in C_new. */
    BS_PD_ROLE_INCOMING_VOTER = 2,
    BS_PD_ROLE_DEMOTING_VOTER = 3,
};

struct bs_pd_replica {
    uint64_t id;      /* Raft node id within the shard's group, != 0 */
    uint64_t node_id; /* the node that hosts it */
    uint8_t role;     /* enum bs_pd_role */
};

/* TiKV's region epoch: conf_ver grows with every replica change, version
 * with every split (range change). Reports older than placement's epoch
 * are stale. */
struct bs_pd_epoch {
    uint64_t conf_ver;
    uint64_t version;
};

struct bs_pd_shard {
    uint64_t id;
    bool keyless; /* true only for shard 0, which covers no user key */
    /* [start, end). start_len == 0: from the smallest key; end_len == 0:
     * to +infinity. Both empty and meaningless when keyless. Owned. */
    uint8_t *start;
    size_t start_len;
    uint8_t *end;
    size_t end_len;
    struct bs_pd_epoch epoch;
    uint32_t n_replicas;
    /* In the order reported (bootstrap: slot order on the node ring);
     * one replica per node. */
    struct bs_pd_replica replicas[BS_RAFT_MAX_MEMBERS];
    /* Last reported leader (replica id, 0 = unknown) and its term. Term 0
     * marks placement's own hint (bootstrap's preferred leader, or the
     * parent leader's counterpart after a split), replaced by the first
     * real report. */
    uint64_t leader;
    uint64_t leader_term;
    /* private to placement/ */
    bool dirty_;
};

/* The replica of shard on node_id, or NULL. */
const struct bs_pd_replica *
bs_pd_shard_replica_on(const struct bs_pd_shard *shard, uint64_t node_id);

/* The Raft configuration the shard's replicas describe (voters, learners,
 * and the joint sets for incoming / demoting voters), e.g. to bootstrap
 * the group's storage. */
void bs_pd_shard_conf_state(const struct bs_pd_shard *shard,
                            struct bs_raft_conf_state *cs /* out */);

/* True if key (borrowed, any bytes) lies in the shard's range. */
bool bs_pd_shard_contains(const struct bs_pd_shard *shard, const void *key,
                          size_t len);

/*
 * The start key of data shard i (0-based) of n initial shards, written to
 * out (2 bytes) with its length in *len: shard 0 starts at the empty key
 * (*len = 0); shard i > 0 starts at the big-endian 16-bit value
 * floor(i * 65536 / n). So the first two bytes of the key space,
 * 0x0000..0xFFFF, are split evenly; keys shorter than two bytes sort with
 * their prefix (key "\x40" < "\x40\x00"). Real keys are rarely uniform
 * (etcd keys are mostly ASCII paths): the split points only give every
 * node work from the start; load-based splitting takes over later.
 * Precondition: 1 <= n <= BS_PD_MAX_INITIAL_SHARDS, i < n.
 */
void bs_pd_initial_split_key(uint32_t i, uint32_t n, uint8_t out[2],
                             size_t *len);

/* -------------------------------------------------------------- operators */

/*
 * An operator: one change of one shard that placement asked for and tracks
 * until the shard's own reports show it done (DESIGN.md 7). Operators live
 * in the replicated state, so a new placement leader sees the ones in
 * flight. The shard's leader executes them (rpc/mover.c); every step is
 * decided from the shard's current configuration, so retrying any step is
 * harmless. At most one operator per shard at a time.
 *
 *   kind     fields used          what the shard leader does
 *   MOVE     from_node, to_node,  add new_replica (on to_node) as a learner
 *            new_replica          -> wait until it is in sync -> if the
 *                                 leaving replica leads, transfer leadership
 *                                 to another voter -> joint change {add
 *                                 voter new_replica, remove the replica on
 *                                 from_node} (auto leave); from_node 0: add
 *                                 only (the learner is then promoted alone);
 *                                 to_node 0: remove only.
 *   LEADER   to_node              transfer leadership to the replica on
 *                                 to_node.
 *   SPLIT    split_key (empty =   split at the key (the leader picks the
 *            leader picks),       key that halves the shard's size when it
 *            new_shard_id,        is empty); the new shard's replicas are
 *            new_replicas         new_replicas (one per replica of the
 *                                 parent at creation, same nodes).
 *
 * Life of an operator (each edge a committed command):
 *
 *   OP_CREATE --> in flight --(report shows it done: REPLICA_CHANGE with
 *                     |        the target set, LEADER on to_node, SPLIT of
 *                     |        the shard)--> gone (counted as finished)
 *                     +--OP_CANCEL (timeout, operator, node removed)--> gone
 *
 * A cancelled MOVE is rolled back by the shard leader: a learner that no
 * operator names is removed (rpc/mover.c); a replica already promoted stays
 * and the scheduler's replica-count rule removes the extra one later.
 */
enum bs_pd_op_kind {
    BS_PD_OP_MOVE = 1,
    BS_PD_OP_LEADER = 2,
    BS_PD_OP_SPLIT = 3,
};

/* "move", "leader", "split"; "unknown" otherwise. */
const char *bs_pd_op_kind_name(int kind);

/* Why an operator exists (shown by the CLI; no effect on execution). */
enum bs_pd_op_reason {
    BS_PD_REASON_OPERATOR = 0,   /* asked for by an operator (CLI) */
    BS_PD_REASON_REPLACE = 1,    /* replace a replica on a down node */
    BS_PD_REASON_DRAIN = 2,      /* move off a draining node */
    BS_PD_REASON_SPLIT_SIZE = 3, /* shard over split_size */
    BS_PD_REASON_SPLIT_LOAD = 4, /* shard over split_qps */
    BS_PD_REASON_BALANCE_REPLICAS = 5,
    BS_PD_REASON_BALANCE_LEADERS = 6,
    BS_PD_REASON_RACK = 7,       /* two replicas on one rack */
    BS_PD_REASON_REPAIR = 8,     /* too few or too many replicas */
    BS_PD_REASON_PLACEMENT = 9,  /* placement group's own voters */
};
const char *bs_pd_op_reason_name(int reason);

struct bs_pd_op {
    uint64_t id;          /* from placement's operator counter, != 0 */
    uint8_t kind;         /* enum bs_pd_op_kind */
    uint8_t reason;       /* enum bs_pd_op_reason */
    uint64_t shard_id;
    uint64_t from_node;   /* MOVE: leaving node, 0 = none */
    uint64_t to_node;     /* MOVE: receiving node (0 = none); LEADER */
    uint64_t new_replica; /* MOVE with to_node: the replica id to add */
    /* SPLIT: the key (owned by the state; NULL / 0 = leader picks), the
     * new shard and its replicas (ids allocated at creation). */
    uint8_t *split_key;
    size_t split_key_len;
    uint64_t new_shard_id;
    uint32_t n_new_replicas;
    struct bs_pd_replica new_replicas[BS_RAFT_MAX_MEMBERS];
    uint64_t created_at;  /* `now` of OP_CREATE */
};

/* Scheduler settings that every placement replica must agree on (the rest
 * are node options, struct bs_pd_sched_config). */
struct bs_pd_sched_state {
    bool paused;
};

/* ----------------------------------------------------------------- state */

struct bs_pd_state;

/* An empty state (not bootstrapped, applied index 0). NULL on
 * out-of-memory. */
struct bs_pd_state *bs_pd_state_create(void);
/* Accepts NULL. */
void bs_pd_state_destroy(struct bs_pd_state *st);

bool bs_pd_bootstrapped(const struct bs_pd_state *st);
uint64_t bs_pd_cluster_id(const struct bs_pd_state *st);
/* Index of the last entry applied (0 before any). */
uint64_t bs_pd_applied(const struct bs_pd_state *st);
/* Replicas per data shard chosen at bootstrap (0 before). */
uint32_t bs_pd_replicas_per_shard(const struct bs_pd_state *st);
/* The next id each allocator hands out. */
uint64_t bs_pd_next_shard_id(const struct bs_pd_state *st);
uint64_t bs_pd_next_replica_id(const struct bs_pd_state *st);
uint64_t bs_pd_next_node_id(const struct bs_pd_state *st);

/* Nodes in id order, removed ones included (their ids stay taken). */
size_t bs_pd_node_count(const struct bs_pd_state *st);
const struct bs_pd_node *bs_pd_node_at(const struct bs_pd_state *st, size_t i);
/* NULL if there is no such node. */
const struct bs_pd_node *bs_pd_node_find(const struct bs_pd_state *st,
                                         uint64_t id);

/* Shards in id order, shard 0 first (once bootstrapped). */
size_t bs_pd_shard_count(const struct bs_pd_state *st);
const struct bs_pd_shard *bs_pd_shard_at(const struct bs_pd_state *st,
                                         size_t i);
const struct bs_pd_shard *bs_pd_shard_find(const struct bs_pd_state *st,
                                           uint64_t id);

/* Data shards in key order (the routing table); route_count is the number
 * of data shards. */
size_t bs_pd_route_count(const struct bs_pd_state *st);
const struct bs_pd_shard *bs_pd_route_at(const struct bs_pd_state *st,
                                         size_t i);
/*
 * The data shard whose range holds key (borrowed, len bytes, any bytes, the
 * empty key included), by binary search: 0 and *out, or BS_ENOTFOUND before
 * bootstrap.
 */
int bs_pd_route(const struct bs_pd_state *st, const void *key, size_t len,
                const struct bs_pd_shard **out);

/* Operators in flight, in id order. */
size_t bs_pd_op_count(const struct bs_pd_state *st);
const struct bs_pd_op *bs_pd_op_at(const struct bs_pd_state *st, size_t i);
const struct bs_pd_op *bs_pd_op_find(const struct bs_pd_state *st,
                                     uint64_t id);
/* The operator in flight on shard_id, or NULL. */
const struct bs_pd_op *bs_pd_op_of_shard(const struct bs_pd_state *st,
                                         uint64_t shard_id);
/* Operators finished (reported done) and cancelled since bootstrap. */
uint64_t bs_pd_ops_finished(const struct bs_pd_state *st);
uint64_t bs_pd_ops_cancelled(const struct bs_pd_state *st);
/* The next operator id OP_CREATE will take. */
uint64_t bs_pd_next_op_id(const struct bs_pd_state *st);
const struct bs_pd_sched_state *bs_pd_sched(const struct bs_pd_state *st);

/*
 * Whether node_id may be decommissioned now (pure; the admin service asks
 * before proposing UPDATE_NODE_STATE draining, and apply asks again):
 * 0, or BS_ENOTFOUND (no such node, or removed), BS_EBUSY (another node is
 * draining), BS_EINVAL (already draining; or fewer than replicas_per_shard
 * other UP nodes would remain to hold three replicas of every shard; or a
 * shard, placement's included, whose replicas on UP nodes other than
 * node_id are not a majority of its voters), with the reason in msg
 * (>= 160 bytes, may be NULL).
 */
int bs_pd_can_decommission(const struct bs_pd_state *st, uint64_t node_id,
                           char *msg);

/*
 * Checks the invariants of the state: nodes and shards sorted by id and
 * unique; shard 0 present iff bootstrapped and keyless; the routing table
 * holds exactly the data shards, covers the key space with no gap and no
 * overlap; every replica set is valid (1..BS_RAFT_MAX_MEMBERS replicas,
 * at least one voter, distinct nodes that exist and are not removed) and
 * replica ids are unique cluster-wide (ids that operators reserved
 * included); ids below their allocators; leader unknown or a member;
 * operators sorted by id below the operator counter, at most one per
 * shard, naming shards and nodes that exist (nodes not removed), a split
 * key strictly inside its shard. Returns NULL if all hold, or a static
 * sentence naming the first broken one. O(R log R) for R replicas: for asserts,
 * tests and load, not for every apply.
 */
const char *bs_pd_check(const struct bs_pd_state *st);

/* -------------------------------------------------------------- commands */

enum bs_pd_cmd_type {
    BS_PD_CMD_BOOTSTRAP = 1,
    BS_PD_CMD_REGISTER_NODE = 2,
    BS_PD_CMD_UPDATE_NODE_STATE = 3,
    BS_PD_CMD_NODE_HEARTBEAT = 4,
    BS_PD_CMD_SHARD_SPLIT = 5,
    BS_PD_CMD_SHARD_REPLICA_CHANGE = 6,
    BS_PD_CMD_SHARD_LEADER = 7,
    BS_PD_CMD_ALLOC_IDS = 8,
    BS_PD_CMD_OP_CREATE = 9,
    BS_PD_CMD_OP_CANCEL = 10,
    BS_PD_CMD_SET_SCHED = 11,
};

/* "bootstrap", "register_node", ...; "unknown" otherwise. */
const char *bs_pd_cmd_type_name(int type);

enum bs_pd_id_kind {
    BS_PD_ID_SHARD = 0,
    BS_PD_ID_REPLICA = 1,
    BS_PD_ID_NODE = 2,
};

/*
 * A placement command. Built by the proposer (pointers borrowed from it)
 * and encoded, or produced by bs_pd_cmd_decode (see there for ownership).
 */
struct bs_pd_cmd {
    uint8_t type; /* enum bs_pd_cmd_type */
    union {
        /* Creates the cluster: the nodes (UP), shard 0 on the first
         * BS_PD_MAX_PLACEMENT_REPLICAS-or-fewer (odd) nodes by id, and
         * initial_shards data shards split by bs_pd_initial_split_key with
         * min(replicas, n_nodes) replicas each, spread evenly: over the
         * data shards, replica counts and preferred-leader counts differ
         * by at most one between nodes (shard 0 is outside that count).
         * 0 for initial_shards / replicas means the default. Shard ids
         * are 0..initial_shards, replica ids start at 1 (shard 0's
         * first). Node order in the command does not matter. */
        struct {
            uint64_t cluster_id;
            uint32_t initial_shards;
            uint32_t replicas;
            uint64_t now;
            uint32_t n_nodes;
            const struct bs_pd_node_info *nodes; /* n_nodes, distinct ids */
        } bootstrap;
        /* A node joins (UP), or a known node re-registers with new
         * addresses or labels (its state is left alone: liveness is the
         * heartbeats' business; identical info is BS_ESTALE). The id of a
         * removed node is refused (BS_EEXIST).
         * Join: node.id == 0 asks for a new id (result->first_id), taken
         * from the node allocator (ids stay below 2^32, BS_EINVAL when
         * exhausted). join_token (random, != 0, required with id 0) makes
         * it idempotent: a node that registered with the same token gets
         * its id back (BS_ESTALE with first_id set), so a retried join
         * never creates a second node. */
        struct {
            struct bs_pd_node_info node;
            uint64_t now;
            uint64_t join_token;
        } register_node;
        struct {
            uint64_t node_id;
            uint8_t state; /* enum bs_pd_node_state */
            uint64_t now;
        } node_state;
        struct {
            uint64_t node_id;
            uint64_t now;
        } heartbeat;
        /*
         * A data shard applied a split at split_key: it keeps
         * [start, split_key) with epoch (only its version is taken: a split
         * changes no replica), and new_shard_id takes [split_key, end) with
         * new_epoch and replicas (the parent's, with new replica ids). The
         * ids come from ALLOC_IDS. Splits of one shard must be reported in
         * version order: epoch.version must be the shard's version + 1
         * (older: BS_ESTALE; newer: BS_EINVAL, report the earlier split
         * first). split_key must lie strictly inside the range
         * (BS_ERANGE otherwise).
         */
        struct {
            uint64_t shard_id;
            struct bs_pd_epoch epoch;
            const uint8_t *split_key;
            size_t split_key_len; /* >= 1 */
            uint64_t new_shard_id;
            struct bs_pd_epoch new_epoch;
            uint32_t n_replicas;
            struct bs_pd_replica replicas[BS_RAFT_MAX_MEMBERS];
        } split;
        /* A shard's replica set after a configuration change; applied if
         * conf_ver is newer than placement's. New replica ids must come
         * from ALLOC_IDS and belong to no other shard; if the leader left,
         * the leader becomes unknown (0). Shard 0 too. */
        struct {
            uint64_t shard_id;
            uint64_t conf_ver;
            uint32_t n_replicas;
            struct bs_pd_replica replicas[BS_RAFT_MAX_MEMBERS];
        } replica_change;
        /* A shard's leader (a member replica) at term >= 1. An older
         * term, or the same leader and term, is BS_ESTALE; another leader
         * for the same term is BS_EINVAL. */
        struct {
            uint64_t shard_id;
            uint64_t leader;
            uint64_t term;
        } leader;
        /* Reserves count ids of kind; result->first_id is the first. */
        struct {
            uint8_t kind; /* enum bs_pd_id_kind */
            uint32_t count;
        } alloc;
        /*
         * Creates an operator. The proposer fills kind, reason, shard_id,
         * from_node, to_node, created_at (its now) and, for SPLIT,
         * split_key (borrowed; may be empty); apply assigns the id
         * (result->first_id) and the ids: MOVE with to_node gets
         * new_replica = BS_ENG_REPLICA_ID(to_node, next replica seq); SPLIT
         * gets new_shard_id and one new replica per replica of the shard,
         * same node and role. Refused (BS_EBUSY) when the shard has an
         * operator in flight; BS_EINVAL when it makes no sense for the
         * state (a MOVE to a node not UP, or to a node that already holds
         * a replica, from a node that holds none, a LEADER to a node
         * without a voter or not UP, a SPLIT key outside the range or of
         * shard 0, a node removed); BS_ENOTFOUND for an unknown shard or
         * node.
         */
        struct bs_pd_op op;
        /* Drops operator op_id (BS_ENOTFOUND if it is not in flight). */
        struct {
            uint64_t op_id;
        } op_cancel;
        struct bs_pd_sched_state sched;
    } u;
    /* private: what bs_pd_cmd_decode allocated */
    void *owned_;
};

/*
 * Encodes cmd into a malloc'd buffer (*out, caller frees; *len bytes).
 * Format: byte 0 the format version (the lowest that carries the command:
 * 2 for the operator commands and a join token, else 1), byte 1 the type,
 * then the fields in a fixed order, integers little-endian of fixed width,
 * strings and keys length-prefixed (placement/cmd.c). Returns 0,
 * BS_EINVAL if cmd cannot be encoded (unknown type, a count over its
 * limit, a string that does not fit), or BS_ENOMEM. Semantic checks (does
 * the shard exist?) are apply's.
 */
int bs_pd_cmd_encode(const struct bs_pd_cmd *cmd /* borrowed */, uint8_t **out,
                     size_t *len);

/*
 * Decodes untrusted bytes. Returns 0, BS_ECORRUPT (truncated, trailing
 * bytes, unknown version or type, a version other than the one encode
 * writes, a count or length over its limit) or BS_ENOMEM; never crashes.
 * On success the command borrows split_key (a split's or an operator's)
 * from data (keep data alive) and owns the bootstrap node array: release
 * with bs_pd_cmd_free. On failure there is nothing to free.
 */
int bs_pd_cmd_decode(const uint8_t *data /* borrowed */, size_t len,
                     struct bs_pd_cmd *cmd /* out */);
/* Frees what decode allocated; accepts NULL and encoder-built commands. */
void bs_pd_cmd_free(struct bs_pd_cmd *cmd);

/* ------------------------------------------------------------------ apply */

struct bs_pd_result {
    uint8_t type;      /* the command's type (0 for an empty entry) */
    bool skipped;      /* index <= applied: nothing was done */
    uint64_t first_id; /* ALLOC_IDS: the first id reserved; OP_CREATE: the
                          operator's id; REGISTER_NODE with id 0: the id
                          given to the node */
    char msg[160];     /* why a command was refused; "" on success */
};

/*
 * Applies the committed entry at index (data: an encoded command, len 0
 * for an empty entry or one that carries no placement command, which only
 * advances the applied index).
 *
 * Idempotent by index: index <= applied returns 0 with result->skipped and
 * changes nothing. Otherwise the outcome is a deterministic function of the
 * state and the bytes, and every outcome except BS_ENOMEM consumes the
 * index (applied = index), so all replicas agree:
 *   0             applied;
 *   BS_ESTALE     a report older than (or equal to) what placement has, or
 *                 a duplicate: ignored, harmless;
 *   BS_EINVAL     refused: the command contradicts the state (unknown
 *                 transition, replica set, a command before bootstrap,
 *                 a split reported out of order...); detail in msg;
 *   BS_ERANGE     a split key not strictly inside the shard's range;
 *   BS_ENOTFOUND  the node or shard it names does not exist;
 *   BS_EEXIST     bootstrap of a bootstrapped cluster, or an id taken;
 *   BS_EBUSY      removing a node that still holds replicas, an operator
 *                 for a shard that has one, a decommission while another
 *                 node drains;
 *   BS_ECORRUPT   the bytes are not a command;
 *   BS_ENOMEM     nothing changed, not even applied: retry or crash.
 * Records touched are marked for the next bs_pd_save. result may be NULL.
 */
int bs_pd_apply(struct bs_pd_state *st, uint64_t index,
                const uint8_t *data /* borrowed */, size_t len,
                struct bs_pd_result *result /* out, may be NULL */);

/* --------------------------------------------------------- persistence */

/* Receives one record (key and value borrowed for the call); val NULL
 * (vlen 0) means: delete the record of key (a finished operator's). Every
 * record value is at least 5 bytes, so no record is ever put empty.
 * Returns 0 or a negative BS_E* code that stops the save. */
typedef int (*bs_pd_put_fn)(void *ctx, const void *key, size_t klen,
                            const void *val, size_t vlen);
/* Produces the next record: 1 with *key / *val set (borrowed until the next
 * call), 0 at the end, or a negative BS_E* code. */
typedef int (*bs_pd_next_fn)(void *ctx, const void **key, size_t *klen,
                             const void **val, size_t *vlen);

/*
 * Hands put the records changed since the last save (and the deletions of
 * operators gone since), then the meta record (applied index, allocators,
 * counts), and forgets the changes. Records: "pm" (meta), "pn" + node id,
 * "po" + operator id, "ps" + shard id (ids 8 bytes big-endian); shard CFs
 * keep user keys under 'z' and local keys under 0x00, so these never
 * collide. Values: format version byte, fields, CRC32C. Returns 0,
 * BS_ENOMEM, or put's error; after an error the state must be reloaded
 * (the changes are forgotten either way).
 */
int bs_pd_save_to(struct bs_pd_state *st, bs_pd_put_fn put, void *ctx);
/* Hands put every record (a full image in key order, for an empty
 * destination: nothing is deleted), then forgets the changes. Same
 * errors. */
int bs_pd_save_all_to(struct bs_pd_state *st, bs_pd_put_fn put, void *ctx);

/*
 * Replaces *st by the state the records from next describe (any order;
 * keys outside the "p" namespace are skipped, so next may walk the whole
 * column family). No record at all gives an empty state. On error *st is
 * unchanged and errmsg (>= 256 bytes, may be NULL) names the record:
 * BS_ECORRUPT (bad checksum, unknown version, malformed, a missing or
 * duplicate record, broken invariants), BS_ENOMEM, or next's error.
 */
int bs_pd_load_from(struct bs_pd_state *st, bs_pd_next_fn next, void *ctx,
                    char *errmsg);

/*
 * Stages into wb the records changed since the last save plus the meta
 * record with the applied index, as puts in shard 0's column family (which
 * must exist: bs_eng_db_shard_create(db, BS_PD_SHARD_PLACEMENT)). The
 * caller writes wb (with whatever else the round holds); once it is
 * written, bs_pd_load returns this state. Returns 0, BS_ENOMEM, or
 * BS_ENOTFOUND (no CF); after an error, or if writing wb fails, reload the
 * state (the changes are forgotten).
 */
int bs_pd_save(struct bs_pd_state *st, struct bs_eng_db *db /* borrowed */,
               struct bs_eng_wb *wb /* borrowed */);
/* Loads the state from shard 0's column family (latest view). Errors as
 * bs_pd_load_from, plus BS_EIO / BS_ENOTFOUND (no CF) from the engine. */
int bs_pd_load(struct bs_eng_db *db /* borrowed */, struct bs_pd_state *st,
               char *errmsg);

/*
 * The whole state as one buffer (malloc'd, caller frees): "BSPD", a format
 * version, the record count, then each record as length-prefixed key and
 * value, in key order. Two states are equal iff their images are equal.
 * Returns 0 or BS_ENOMEM. Does not touch the change tracking.
 */
int bs_pd_encode_all(const struct bs_pd_state *st, uint8_t **out, size_t *len);
/* Replaces *st by the image (untrusted bytes). Errors as bs_pd_load_from. */
int bs_pd_decode_all(struct bs_pd_state *st, const uint8_t *data, size_t len,
                     char *errmsg);


/* ------------------------------------------- shard 0 in the store (sm.c) */

/* The placement state machine as the store's state machine of shard 0
 * (engine.h, struct bs_eng_sm_ops). A CF without state opens blank
 * (applied 0) until a snapshot is installed. */
int bs_pd_sm_open(struct bs_eng_db *db, void **sm,
                  const struct bs_eng_sm_ops **ops);
/* The placement state of an open shard-0 state machine (NULL if blank);
 * borrowed, valid until the next store call. Any replica of shard 0 can
 * route keys with it (bs_pd_route). */
const struct bs_pd_state *bs_pd_sm_state(void *sm);
/*
 * Bootstraps a new cluster on this node's db: applies the BOOTSTRAP
 * command at index 1 to a fresh placement state and writes it (synced)
 * with shard 0's Raft apply state {index 1, term 1, conf = shard 0's
 * replicas}. Every initial member does the same with the same command,
 * so they agree; then each creates its groups (shard 0 and its data
 * shards) from the returned state. Returns 0 and *out (caller destroys),
 * BS_EEXIST if already bootstrapped, the apply's refusal (errmsg says
 * why), or a storage error.
 */
int bs_pd_bootstrap_local(struct bs_eng_db *db,
                          const struct bs_pd_cmd *boot /* borrowed */,
                          struct bs_pd_state **out, char *errmsg);

struct bs_shard_limits;
/* The store's state machine factory for a node: shard 0 is placement,
 * every other shard a data shard with the given limits (borrowed, must
 * outlive the store; NULL = defaults). */
void bs_pd_node_sm_factory(struct bs_eng_sm_factory *f,
                           const struct bs_shard_limits *limits);


/* ------------------------------------- heartbeat statistics (stats.c) */

/*
 * What nodes tell the placement leader once a second (one heartbeat RPC
 * per node, rpc/node.c): the node's own figures and those of every shard
 * it leads. Soft state: kept in memory on the placement leader only (a
 * new leader starts empty and counts every node as heard when it took
 * over), never replicated; the committed state changes only through the
 * commands that the maintenance and scheduling functions below return.
 */
struct bs_pd_replica_stat {
    uint64_t replica_id;
    uint64_t node_id;
    uint64_t match;       /* leader's view */
    uint64_t lag_entries; /* leader's last index - match */
    uint64_t lag_ms;      /* since the replica was last caught up */
    bool learner;
    bool in_sync;         /* in the ISR (judged by the shard leader) */
};

struct bs_pd_shard_stat {
    uint64_t shard_id;
    uint64_t leader; /* replica id of the reporting leader */
    uint64_t term;
    uint64_t conf_ver;
    uint64_t version;
    uint64_t commit;
    uint64_t applied;
    uint64_t size_bytes; /* approximate */
    uint64_t keys;       /* approximate */
    uint64_t read_qps;   /* over the last interval */
    uint64_t write_qps;
    uint32_t n_replicas;
    struct bs_pd_replica_stat replicas[BS_RAFT_MAX_MEMBERS];
};

struct bs_pd_node_stat {
    uint64_t node_id;
    uint64_t capacity_bytes;  /* of the data directory's file system */
    uint64_t available_bytes;
    uint64_t used_bytes;      /* the node's db */
    uint32_t replicas;        /* groups hosted, shard 0 included */
    uint32_t leaders;
    uint64_t read_qps;
    uint64_t write_qps;
    uint32_t snapshots_sending;
    uint32_t snapshots_receiving;
};

/* One heartbeat: shards borrowed for the call. */
struct bs_pd_heartbeat {
    struct bs_pd_node_stat node;
    uint32_t n_shards;
    const struct bs_pd_shard_stat *shards;
};

struct bs_pd_stats;
/* NULL on out-of-memory. */
struct bs_pd_stats *bs_pd_stats_create(void);
void bs_pd_stats_destroy(struct bs_pd_stats *s); /* accepts NULL */
/* Forgets everything; every node then counts as heard at now (a new
 * placement leader gives each node a full down_after before judging it). */
void bs_pd_stats_reset(struct bs_pd_stats *s, uint64_t now);
/*
 * Records hb (copied), received at now. A shard's entry is replaced by a
 * report of a term >= the kept one's (an old leader's late report is
 * ignored). hot_qps (0 = off): tracks since when read+write qps of each
 * shard has stayed above it (bs_pd_stats_shard's hot_since). Returns 0 or
 * BS_ENOMEM (nothing recorded).
 */
int bs_pd_stats_update(struct bs_pd_stats *s,
                       const struct bs_pd_heartbeat *hb /* borrowed */,
                       uint64_t now, uint64_t hot_qps);
/* When node_id was last heard: its last heartbeat, or the last reset,
 * 0 if neither. */
uint64_t bs_pd_stats_heard(const struct bs_pd_stats *s, uint64_t node_id);
/* Borrowed until the next update / reset / destroy; NULL if unknown. */
const struct bs_pd_node_stat *bs_pd_stats_node(const struct bs_pd_stats *s,
                                               uint64_t node_id);
/* *reported_at and *hot_since (0 = not hot) may be NULL. */
const struct bs_pd_shard_stat *bs_pd_stats_shard(const struct bs_pd_stats *s,
                                                 uint64_t shard_id,
                                                 uint64_t *reported_at,
                                                 uint64_t *hot_since);

/* Most shard stats one heartbeat may carry (the codec refuses more). */
#define BS_PD_HB_MAX_SHARDS 1000000u

/*
 * The heartbeat as bytes, for a bytes field of the heartbeat RPC. Format
 * (stats.c): byte 0 the format version (1), the node stat, a u32 shard
 * count, then each shard stat with a u8 replica count and its replicas;
 * integers little-endian of fixed width, booleans as one flags byte.
 * *out is malloc'd (caller frees), *len its size. Returns 0, BS_EINVAL
 * (more than BS_PD_HB_MAX_SHARDS shards or BS_RAFT_MAX_MEMBERS replicas in
 * one shard) or BS_ENOMEM; *out is untouched on error.
 */
int bs_pd_heartbeat_encode(const struct bs_pd_heartbeat *hb /* borrowed */,
                           uint8_t **out, size_t *len);
/*
 * Decodes untrusted bytes into *hb. Returns 0, BS_ECORRUPT (truncated,
 * trailing bytes, unknown version, unknown flag bits, a count over its
 * limit) or BS_ENOMEM; never crashes. On success hb->shards points to
 * memory that hb owns (NULL when n_shards is 0): release it with
 * bs_pd_heartbeat_free. On failure *hb is zeroed and there is nothing to
 * free.
 */
int bs_pd_heartbeat_decode(const uint8_t *data /* borrowed */, size_t len,
                           struct bs_pd_heartbeat *hb /* out */);
/* Frees the shards of a heartbeat filled by bs_pd_heartbeat_decode and
 * zeroes it; accepts NULL and a zeroed heartbeat. Never call it on a
 * heartbeat whose shards are borrowed from elsewhere. */
void bs_pd_heartbeat_free(struct bs_pd_heartbeat *hb);

/* ------------------------------------ liveness and scheduling (sched.c) */

/* The placement leader's settings (node options; see rpc/node.h). */
struct bs_pd_sched_config {
    uint64_t suspect_after_ms;     /* 3 x heartbeat interval: 3000 */
    uint64_t down_after_ms;        /* 30000 */
    uint64_t op_timeout_ms;        /* an operator older is cancelled: 600000 */
    uint32_t max_concurrent_moves; /* MOVE and SPLIT operators: 3 */
    uint64_t split_size;           /* bytes, 64 MiB; 0 = never */
    uint64_t split_qps;            /* reads + writes per second; 0 = never */
    uint64_t split_qps_ms;         /* sustained this long: 10000 */
    uint64_t max_shards;           /* no split beyond: 100000 */
    uint32_t placement_voters;     /* at most: 5 */
};
void bs_pd_sched_config_default(struct bs_pd_sched_config *c /* out */);

/*
 * The next maintenance command the placement leader should propose, in
 * this order: a node heard again after being SUSPECT or DOWN (NODE_HEARTBEAT
 * at now, which brings it UP); an UP node silent past suspect_after, or
 * an UP / SUSPECT node silent past down_after (UPDATE_NODE_STATE);
 * a DRAINING node that holds no replica (UPDATE_NODE_STATE removed); an
 * operator older than op_timeout, or one whose to_node is no longer UP
 * (OP_CANCEL). Returns 1 with *cmd filled (no pointers into anything), or
 * 0 when nothing is due. Pure. Propose, wait for it to apply, call again.
 */
int bs_pd_maintain(const struct bs_pd_state *st, const struct bs_pd_stats *stats,
                   const struct bs_pd_sched_config *cfg, uint64_t now,
                   struct bs_pd_cmd *cmd /* out */);

/*
 * The operators the scheduler wants now, best first, at most cap (each
 * as OP_CREATE takes it: kind, reason, shard_id, from_node, to_node,
 * split_key borrowed from stats-free state or NULL; no ids). Pure. Checks
 * in priority order (DESIGN.md 7): replicas on DOWN nodes are replaced;
 * replicas on DRAINING nodes are moved off (their leaders first); shards
 * with fewer or more voters than they should have are repaired (data
 * shards: replicas_per_shard; shard 0: placement_voters when that many
 * nodes are UP, else 3, else what is UP, always odd); shards over
 * split_size (or over split_qps for split_qps_ms) are split; replica
 * counts of data shards are balanced across UP nodes (moved from the most
 * to the least loaded until max - min <= 1); then leader counts (LEADER);
 * replicas of one shard are kept on distinct racks (the "rack" label)
 * whenever enough racks exist. Targets are UP nodes that hold no replica
 * of the shard, fewest replicas first, never making racks collide.
 * A shard with an operator in flight is skipped; MOVE and SPLIT operators
 * stop at max_concurrent_moves minus those in flight unless
 * ignore_limit (rebalance --max-moves), and at most one is planned per
 * shard. Planned moves are counted as done when planning the next, so a
 * plan of many moves converges instead of piling onto one node.
 * paused (bs_pd_sched) returns 0 unless ignore_limit.
 */
size_t bs_pd_schedule(const struct bs_pd_state *st,
                      const struct bs_pd_stats *stats,
                      const struct bs_pd_sched_config *cfg, uint64_t now,
                      bool ignore_limit, struct bs_pd_op *out, size_t cap);

/* ------------------------------------------------- reports (report.c) */

struct bs_shard;
/*
 * The next command that brings placement (pd) in line with the shards as
 * their leaders see them (shards: borrowed, typically the ones a node
 * leads): an unknown child of a split (in the order placement accepts),
 * else a replica set newer than placement's. Returns 1 with *cmd filled
 * (pointers borrowed from shards), 0 when placement already knows all of
 * them, or BS_EBUSY when it is behind but nothing can be reported yet (a
 * joint configuration, or a child whose parent is not known yet). Propose
 * the command to shard 0 and call again once it applied.
 */
int bs_pd_next_report(const struct bs_pd_state *pd,
                      const struct bs_shard *const *shards, size_t n,
                      struct bs_pd_cmd *cmd /* out */);

#endif
