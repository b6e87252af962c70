/*
 * placement_int.h - private to placement/: the layout of struct
 * bs_pd_state, the byte codec shared by commands and records, and the
 * helpers that state.c offers to apply.c and persist.c.
 *
 * Invariants of a state (bs_pd_check verifies them):
 *   1. nodes[] is sorted by id, ids distinct and != 0.
 *   2. shards[] (pointers, owned) is sorted by id, ids distinct; shard 0
 *      is present iff bootstrapped and is the only keyless shard.
 *   3. route[] holds exactly the data shards (borrowed pointers into
 *      shards[]), sorted by start key, covering the key space: route[0]
 *      starts at "", route[i].end == route[i+1].start, the last end is ""
 *      (+inf), and start < end for every other shard.
 *   4. every replica set is valid and replica ids are unique cluster-wide;
 *      every id is below its allocator.
 *   5. dirty_nodes[] / dirty_shards[] list exactly the records whose dirty
 *      flag is set, each once. dirty_ops[] lists, each once, the ids of
 *      the operators created since the last save (their dirty flag is
 *      set) and of those deleted since (no longer in ops[]): the save
 *      writes the first and deletes the second.
 *   6. ops[] is sorted by id, ids distinct, != 0 and below next_op_id; at
 *      most one operator per shard; each names an existing shard, nodes
 *      that exist and are not removed, and ids below their allocators; a
 *      SPLIT's key lies strictly inside its shard's range.
 */
#ifndef BS_PLACEMENT_PLACEMENT_INT_H
#define BS_PLACEMENT_PLACEMENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "placement.h"

struct bs_pd_node_rec {
    struct bs_pd_node n;
    bool dirty;
};

/* An operator in flight; split_key owned. */
struct bs_pd_op_rec {
    struct bs_pd_op op;
    bool dirty; /* created since the last save */
};

struct bs_pd_state {
    bool bootstrapped;
    uint64_t cluster_id;
    uint64_t applied;
    uint32_t replicas_per_shard;
    uint64_t next_shard_id;
    uint64_t next_replica_id;
    uint64_t next_node_id;
    uint64_t next_op_id;
    uint64_t ops_finished, ops_cancelled;
    struct bs_pd_sched_state sched;

    struct bs_pd_node_rec *nodes; /* owned array, sorted by id */
    size_t n_nodes, cap_nodes;

    struct bs_pd_shard **shards; /* owned array of owned shards, by id */
    size_t n_shards, cap_shards;

    struct bs_pd_shard **route; /* owned array of borrowed pointers */
    size_t n_route, cap_route;

    struct bs_pd_op_rec *ops; /* owned array, sorted by id */
    size_t n_ops, cap_ops;

    /* Changes since the last save. Node records are referred to by id
     * (nodes[] moves on insert); shards by pointer (stable). */
    uint64_t *dirty_nodes;
    size_t n_dirty_nodes, cap_dirty_nodes;
    struct bs_pd_shard **dirty_shards;
    size_t n_dirty_shards, cap_dirty_shards;
    uint64_t *dirty_ops; /* operator ids, see invariant 5 */
    size_t n_dirty_ops, cap_dirty_ops;
    bool meta_dirty;
};

/* ------------------------------------------------------------ byte codec */

/* A growable output buffer. Errors are sticky: after an allocation failure
 * every append is a no-op and err is BS_ENOMEM. */
struct bs_pd_buf {
    uint8_t *p;
    size_t len, cap;
    int err;
};

void bs_pd__buf_u8(struct bs_pd_buf *b, uint8_t v);
void bs_pd__buf_u16(struct bs_pd_buf *b, uint16_t v);
void bs_pd__buf_u32(struct bs_pd_buf *b, uint32_t v);
void bs_pd__buf_u64(struct bs_pd_buf *b, uint64_t v);
void bs_pd__buf_bytes(struct bs_pd_buf *b, const void *p, size_t n);
/* u32 length, then the bytes. */
void bs_pd__buf_blob(struct bs_pd_buf *b, const void *p, size_t n);
/* u16 length, then the bytes of a NUL-terminated string. */
void bs_pd__buf_str(struct bs_pd_buf *b, const char *s);

/* A bounded reader over untrusted bytes. Reads past the end set bad and
 * return zeros; check bad once at the end. */
struct bs_pd_rd {
    const uint8_t *p;
    size_t len, off;
    bool bad;
};

uint8_t bs_pd__rd_u8(struct bs_pd_rd *r);
uint16_t bs_pd__rd_u16(struct bs_pd_rd *r);
uint32_t bs_pd__rd_u32(struct bs_pd_rd *r);
uint64_t bs_pd__rd_u64(struct bs_pd_rd *r);
/* Returns a pointer to the next n bytes (borrowed), or NULL and bad. */
const uint8_t *bs_pd__rd_bytes(struct bs_pd_rd *r, size_t n);
/* u32 length (<= max) and the bytes, borrowed. */
const uint8_t *bs_pd__rd_blob(struct bs_pd_rd *r, size_t max, size_t *n);
/* u16 length (<= max) and the bytes into dst (max + 1 bytes) with a NUL;
 * an embedded NUL sets bad. */
void bs_pd__rd_str(struct bs_pd_rd *r, char *dst, size_t max);


/* Node info and replica codecs shared by commands and records. */
void bs_pd__put_node_info(struct bs_pd_buf *b,
                          const struct bs_pd_node_info *ni);
void bs_pd__get_node_info(struct bs_pd_rd *r, struct bs_pd_node_info *ni);
void bs_pd__put_replicas(struct bs_pd_buf *b, const struct bs_pd_replica *reps,
                         uint32_t n);
void bs_pd__get_replicas(struct bs_pd_rd *r, struct bs_pd_replica *reps,
                         uint32_t *n);
/* True if ni's strings are NUL-terminated within their arrays and
 * n_labels <= BS_PD_MAX_LABELS (encodable). */
bool bs_pd__node_info_encodable(const struct bs_pd_node_info *ni);

/* ------------------------------------------------------- state helpers */

/* Key order: bytewise, a prefix before its extensions. */
int bs_pd__key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Index of node id in nodes[] or of the place to insert it; *found. */
size_t bs_pd__node_pos(const struct bs_pd_state *st, uint64_t id, bool *found);
size_t bs_pd__shard_pos(const struct bs_pd_state *st, uint64_t id, bool *found);
size_t bs_pd__route_pos_of(const struct bs_pd_state *st,
                           const struct bs_pd_shard *s);
struct bs_pd_node *bs_pd__node_get(struct bs_pd_state *st, uint64_t id);
struct bs_pd_shard *bs_pd__shard_get(struct bs_pd_state *st, uint64_t id);

/* Capacity reservations so that a later insert cannot fail: each returns
 * 0 or BS_ENOMEM and changes nothing visible. */
int bs_pd__reserve_nodes(struct bs_pd_state *st, size_t extra);
int bs_pd__reserve_shards(struct bs_pd_state *st, size_t extra);
int bs_pd__reserve_dirty(struct bs_pd_state *st, size_t nodes, size_t shards);
/* Room for extra operators in ops[] and extra ids in dirty_ops[]. */
int bs_pd__reserve_ops(struct bs_pd_state *st, size_t extra);
int bs_pd__reserve_dirty_ops(struct bs_pd_state *st, size_t extra);

/* Inserts (capacity reserved) and marks dirty. */
struct bs_pd_node *bs_pd__node_insert(struct bs_pd_state *st,
                                      const struct bs_pd_node *n);
/* Takes ownership of s; inserts into shards[] and, unless keyless, into
 * route[] at route position rpos. */
void bs_pd__shard_insert(struct bs_pd_state *st, struct bs_pd_shard *s,
                         size_t rpos);

/* Operators. pos: index in ops[] of id or where it would go; *found. */
size_t bs_pd__op_pos(const struct bs_pd_state *st, uint64_t id, bool *found);
/* Index in ops[] of the operator on shard_id, or n_ops. O(n_ops). */
size_t bs_pd__op_index_of_shard(const struct bs_pd_state *st,
                                uint64_t shard_id);
/* Inserts a copy of *op (capacity and a dirty slot reserved; op->id not
 * in ops[]), taking ownership of op->split_key, and marks it created. */
void bs_pd__op_insert(struct bs_pd_state *st, const struct bs_pd_op *op);
/* Removes ops[i] (a dirty slot reserved), frees its key, and marks its
 * id deleted. */
void bs_pd__op_remove(struct bs_pd_state *st, size_t i);
/* Whether op names node_id (from, to, or a new replica's node). */
bool bs_pd__op_names_node(const struct bs_pd_op *op, uint64_t node_id);

void bs_pd__mark_node(struct bs_pd_state *st, uint64_t id);
void bs_pd__mark_shard(struct bs_pd_state *st, struct bs_pd_shard *s);
void bs_pd__clear_dirty(struct bs_pd_state *st);

/* Allocates a shard with copies of the bounds. NULL on out-of-memory. */
struct bs_pd_shard *bs_pd__shard_new(uint64_t id, const void *start,
                                     size_t slen, const void *end, size_t elen);
void bs_pd__shard_free(struct bs_pd_shard *s);

/* Empties st (frees everything it owns), leaving a fresh state. */
void bs_pd__state_clear(struct bs_pd_state *st);
/* Swaps the contents of two states. */
void bs_pd__state_swap(struct bs_pd_state *a, struct bs_pd_state *b);
/* Rebuilds route[] from shards[] (sorted by start). 0 or BS_ENOMEM. */
int bs_pd__route_rebuild(struct bs_pd_state *st);

/* bs_pd_check, telling out-of-memory (*nomem, with a sentence) apart
 * from a broken invariant. */
const char *bs_pd__check(const struct bs_pd_state *st, bool *nomem);

/* Whether the replica set is well formed for st: 1..MAX members, ids != 0,
 * distinct and below next_replica_id, valid roles, at least one voter,
 * distinct nodes that exist and are not removed. Returns NULL or a static
 * sentence. */
const char *bs_pd__replicas_check(const struct bs_pd_state *st,
                                  const struct bs_pd_replica *reps, uint32_t n);

/* Whether a replica of this role votes in the incoming configuration
 * (VOTER, INCOMING_VOTER). */
bool bs_pd__role_votes(uint8_t role);

/* Number of replicas (of any shard, shard 0 included) on node_id. */
size_t bs_pd__replicas_on_node(const struct bs_pd_state *st, uint64_t node_id);

#endif
