/*
 * shard.h - public interface of shard/: the shard state machine.
 *
 * A shard owns the user keys in [start, end) (end empty = no upper bound)
 * and is one Raft group; every replica of it keeps one column family
 * "s<id>" in the node's RocksDB (engine.h). This module is what the store
 * calls to apply committed entries and to serve reads. It is a pure
 * function of its inputs: no threads, no clock, no randomness, so every
 * replica (and the simulator) reaches the same state from the same log.
 *
 * Contents:
 *   - commands and responses (cmd.c): etcd's Put / DeleteRange / Range /
 *     Txn plus the admin Split, each carrying the epoch it was routed with,
 *     in a versioned binary encoding that the Raft log stores;
 *   - shard state (shard.c): range, epoch, revision, applied index and Raft
 *     configuration, persisted under a reserved key of the shard CF;
 *   - apply (apply.c): etcd semantics (revisions, versions, prev_kv, txn
 *     compares), epoch / range / size checks, idempotent by Raft index;
 *   - reads (read.c): Range served from local state (linearizable reads are
 *     the store's business: it waits for ReadIndex or the lease first);
 *   - split (split.c), and where to split a shard by size (split_key.c).
 *
 * Layout of a shard CF (DESIGN.md section 3):
 *
 *   0x00 "apply"     -> apply state (format byte, fields, CRC32C)
 *   'z' . user key   -> format byte, create_revision, mod_revision,
 *                       version, lease, value
 *
 * Epoch (as TiKV's RegionEpoch): conf_ver grows with every configuration
 * change, version with every change of the key range (split). A KV command
 * must carry the shard's current version (conf_ver is not compared: a
 * membership change moves no key); a Split must carry both. A mismatch is
 * refused with BS_ESTALE, a key outside the range with BS_ERANGE; both
 * messages name the shard's current range and epoch so that the router
 * refreshes its table and retries.
 *
 * Revisions (etcd): each shard has its own revision counter, starting at 1
 * like a fresh etcd. A command that changes at least one key increments it
 * once (a Txn with several puts is one revision; a DeleteRange that deletes
 * nothing does not count); every key it writes gets mod_revision = the new
 * revision. A key's create_revision is the revision that created it since
 * its last deletion, version counts its puts since then (1 on creation).
 * MVCC history is not kept: only the latest version of each key exists, so
 * historical reads and Compact are answered BS_ENOTIMPL.
 *
 * Threads: none of this is thread-safe; a struct bs_shard belongs to the
 * thread that applies its entries. Reads at a snapshot (bs_shard_range)
 * touch only the db and the shard's id, so they may run on other threads
 * as long as the shard is not destroyed meanwhile.
 */
#ifndef BS_SHARD_SHARD_H
#define BS_SHARD_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "errors.h"
#include "raft.h"

/* Size of every errmsg buffer of this module (responses, load). */
#define BS_SHARD_ERRMSG_LEN 256

/* Version of the command and response encodings (first byte). */
#define BS_SHARD_CMD_FORMAT 1

/* ============================================================ limits */

/*
 * Size limits, checked before proposing (bs_shard_validate) and again at
 * apply. Apply must decide identically on every replica, so the limits
 * must be the same on every node of the cluster (one cluster-wide
 * setting); a node with different limits would diverge on a command
 * between the two limits.
 */
struct bs_shard_limits {
    size_t max_key;     /* bytes of a key or range_end (default 4096) */
    size_t max_value;   /* bytes of a value (default 1 MiB) */
    size_t max_txn_ops; /* compares, and ops of either branch (128) */
};

#define BS_SHARD_DEFAULT_MAX_KEY     4096
#define BS_SHARD_DEFAULT_MAX_VALUE   (1024 * 1024)
#define BS_SHARD_DEFAULT_MAX_TXN_OPS 128

void bs_shard_limits_default(struct bs_shard_limits *l /* out */);

/* ====================================================== descriptors */

struct bs_shard_epoch {
    uint64_t conf_ver; /* +1 per configuration change */
    uint64_t version;  /* +1 per range change (split) */
};

/* One replica of a shard: its Raft member id and the node it lives on. */
struct bs_shard_replica {
    uint64_t id;      /* Raft member id, unique in the cluster, != 0 */
    uint64_t node_id; /* node hosting it, != 0 */
    bool learner;
};

/*
 * What the router and the placement driver know of a shard. start and end
 * are owned by the descriptor (malloc'd, may be NULL when the length is 0;
 * freed by bs_shard_desc_free). start empty = the lowest key, end empty =
 * no upper bound.
 */
struct bs_shard_desc {
    uint64_t id;
    uint8_t *start;
    size_t start_len;
    uint8_t *end;
    size_t end_len;
    struct bs_shard_epoch epoch;
    struct bs_shard_replica replicas[BS_RAFT_MAX_MEMBERS];
    uint32_t n_replicas;
};

/* Deep copy; BS_ENOMEM. dst must not hold anything (it is overwritten). */
int bs_shard_desc_copy(struct bs_shard_desc *dst /* out */,
                       const struct bs_shard_desc *src /* borrowed */);
/* Frees the keys and zeroes d. Accepts NULL. */
void bs_shard_desc_free(struct bs_shard_desc *d);
/* The Raft configuration a fresh group of these replicas starts with
 * (voters and learners, no joint state). */
/* Whether key lies in d's range [start, end) (an empty end is +inf). */
bool bs_shard_desc_contains(const struct bs_shard_desc *d /* borrowed */,
                            const void *key /* borrowed */, size_t len);
void bs_shard_desc_conf(const struct bs_shard_desc *d /* borrowed */,
                        struct bs_raft_conf_state *cs /* out */);

/* ========================================================= commands */

enum bs_shard_cmd_type {
    BS_SHARD_CMD_PUT = 1,
    BS_SHARD_CMD_DELETE_RANGE = 2,
    BS_SHARD_CMD_RANGE = 3,
    BS_SHARD_CMD_TXN = 4,
    BS_SHARD_CMD_SPLIT = 5,
};

/*
 * Requests hold borrowed byte strings (key, value, range_end): the caller
 * keeps them alive while the request is used; after bs_shard_cmd_decode
 * they point into the decoded buffer.
 *
 * Key ranges follow etcd: range_end empty = the single key `key`;
 * range_end = "\0" (one zero byte) = every key >= key; otherwise
 * [key, range_end) (prefix p: range_end = p with its last byte + 1).
 * key = "\0" with range_end = "\0" means every key. An empty key is
 * refused (etcd's "key is not provided").
 */
struct bs_shard_put_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int64_t lease;     /* stored and returned, not enforced (no leases yet) */
    bool prev_kv;      /* return the previous key-value */
    bool ignore_value; /* refused: BS_ENOTIMPL */
    bool ignore_lease; /* refused: BS_ENOTIMPL */
};

struct bs_shard_delete_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *range_end;
    size_t range_end_len;
    bool prev_kv; /* return the deleted key-values */
};

/* etcd's RangeRequest.SortOrder / SortTarget (same numbers). */
enum bs_shard_sort_order {
    BS_SHARD_SORT_NONE = 0,
    BS_SHARD_SORT_ASCEND = 1,
    BS_SHARD_SORT_DESCEND = 2,
};
enum bs_shard_sort_target {
    BS_SHARD_SORT_KEY = 0,
    BS_SHARD_SORT_VERSION = 1,
    BS_SHARD_SORT_CREATE = 2,
    BS_SHARD_SORT_MOD = 3,
    BS_SHARD_SORT_VALUE = 4,
};

struct bs_shard_range_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *range_end;
    size_t range_end_len;
    int64_t limit;       /* 0 = no limit; negative refused */
    int64_t revision;    /* 0 or the current revision; older: BS_ENOTIMPL */
    uint8_t sort_order;  /* enum bs_shard_sort_order */
    uint8_t sort_target; /* enum bs_shard_sort_target */
    bool serializable;   /* for the store: read locally, no ReadIndex */
    bool keys_only;
    bool count_only;
    /* Filters on the returned keys (0 = none), etcd's min/max. */
    int64_t min_mod_revision;
    int64_t max_mod_revision;
    int64_t min_create_revision;
    int64_t max_create_revision;
};

/* One operation of a Txn branch (etcd's RequestOp without nested Txn). */
struct bs_shard_op {
    uint8_t type; /* BS_SHARD_CMD_PUT, _DELETE_RANGE or _RANGE */
    union {
        struct bs_shard_put_req put;
        struct bs_shard_delete_req del;
        struct bs_shard_range_req range;
    } u;
};

/* etcd's Compare.CompareTarget / CompareResult (same numbers). */
enum bs_shard_cmp_target {
    BS_SHARD_CMP_VERSION = 0,
    BS_SHARD_CMP_CREATE = 1,
    BS_SHARD_CMP_MOD = 2,
    BS_SHARD_CMP_VALUE = 3,
    BS_SHARD_CMP_LEASE = 4,
};
enum bs_shard_cmp_result {
    BS_SHARD_CMP_EQUAL = 0,
    BS_SHARD_CMP_GREATER = 1,
    BS_SHARD_CMP_LESS = 2,
    BS_SHARD_CMP_NOT_EQUAL = 3,
};

/*
 * A compare holds for every key in [key, range_end) (etcd conventions as
 * above). No key: a VALUE compare fails, the others compare against 0.
 */
struct bs_shard_compare {
    uint8_t target; /* enum bs_shard_cmp_target */
    uint8_t result; /* enum bs_shard_cmp_result */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *range_end;
    size_t range_end_len;
    int64_t number;       /* VERSION, CREATE, MOD, LEASE */
    const uint8_t *value; /* VALUE */
    size_t value_len;
};

/*
 * A Txn (etcd): if every compare holds, run success, else failure; ops run
 * in order and see the writes of the ops before them. As etcd does, a
 * branch whose puts repeat a key, or put a key that one of its deletes
 * covers, is refused (BS_EINVAL, "duplicate key given in txn request").
 * The arrays are borrowed (after bs_shard_cmd_decode: owned by the cmd and
 * freed by bs_shard_cmd_free).
 */
struct bs_shard_txn_req {
    struct bs_shard_compare *compares;
    size_t n_compares;
    struct bs_shard_op *success;
    size_t n_success;
    struct bs_shard_op *failure;
    size_t n_failure;
};

/*
 * Split at split_key: this shard keeps [start, split_key), a new shard
 * new_shard_id gets [split_key, end) with the given replicas (their Raft
 * ids and nodes: the new group's initial configuration).
 */
struct bs_shard_split_req {
    const uint8_t *split_key;
    size_t split_key_len;
    uint64_t new_shard_id;
    struct bs_shard_replica replicas[BS_RAFT_MAX_MEMBERS];
    uint32_t n_replicas;
};

struct bs_shard_cmd {
    uint8_t type;                /* enum bs_shard_cmd_type */
    struct bs_shard_epoch epoch; /* the epoch the command was routed with */
    union {
        struct bs_shard_put_req put;
        struct bs_shard_delete_req del;
        struct bs_shard_range_req range;
        struct bs_shard_txn_req txn;
        struct bs_shard_split_req split;
    } u;
};

/*
 * Encodes cmd into *out (malloc'd, caller frees) of *len bytes. Returns 0,
 * BS_EINVAL (a field is out of its domain: unknown type or enum value, a
 * nested count too large) or BS_ENOMEM. Encoding checks the format only;
 * limits and ranges are the shard's business.
 */
int bs_shard_cmd_encode(const struct bs_shard_cmd *cmd /* borrowed */,
                        uint8_t **out, size_t *len);
/*
 * Decodes buf. Byte fields of *cmd point into buf, which must outlive cmd;
 * Txn arrays are malloc'd (bs_shard_cmd_free). Returns 0, BS_ECORRUPT
 * (truncated, trailing bytes, unknown format version, type, flag or enum
 * value: nothing is allocated then) or BS_ENOMEM. Never reads outside buf.
 */
int bs_shard_cmd_decode(const uint8_t *buf /* borrowed */, size_t len,
                        struct bs_shard_cmd *cmd /* out */);
/* Frees what decode allocated (not the struct). Only for decoded cmds. */
void bs_shard_cmd_free(struct bs_shard_cmd *cmd);

/* ======================================================== responses */

/*
 * A key-value as etcd returns it. key and value are owned (malloc'd; NULL
 * when the length is 0), freed with the response.
 */
struct bs_shard_kv {
    uint8_t *key;
    size_t key_len;
    uint8_t *value; /* NULL for keys_only */
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};

/*
 * Result of a Put, DeleteRange or Range. kvs holds, by type:
 *   PUT           the previous key-value (0 or 1, only if prev_kv);
 *   DELETE_RANGE  the deleted key-values (only if prev_kv);
 *   RANGE         the key-values found (up to limit; none if count_only).
 */
struct bs_shard_op_resp {
    uint8_t type; /* enum bs_shard_cmd_type: PUT, DELETE_RANGE, RANGE */
    struct bs_shard_kv *kvs;
    size_t n_kvs;
    int64_t deleted; /* DELETE_RANGE: keys deleted */
    int64_t count;   /* RANGE: keys in the range (before filters, limit) */
    bool more;       /* RANGE: more keys than limit passed the filters */
};

/*
 * The answer to one command. err is the command's outcome (0, or the
 * BS_E* code with a sentence in errmsg: BS_ESTALE, BS_ERANGE, BS_EINVAL,
 * BS_ENOTIMPL); a refused command changed nothing but the applied index.
 * revision is etcd's header revision: the shard's revision after the
 * command. Owns everything it points to (bs_shard_resp_free).
 */
struct bs_shard_resp {
    uint8_t type; /* enum bs_shard_cmd_type; 0 for an empty entry */
    int err;
    char errmsg[BS_SHARD_ERRMSG_LEN];
    bool skipped; /* the index was applied before: nothing was done */
    int64_t revision;
    struct bs_shard_epoch epoch; /* the shard's epoch after the command */
    /* PUT, DELETE_RANGE, RANGE */
    struct bs_shard_op_resp op;
    /* TXN: which branch ran and one response per op of it */
    bool succeeded;
    struct bs_shard_op_resp *ops;
    size_t n_ops;
    /* SPLIT: this shard after the split (left) and the new one (right) */
    struct bs_shard_desc left;
    struct bs_shard_desc right;
};

/* Zeroes resp (what every function here does first with its out resp). */
void bs_shard_resp_init(struct bs_shard_resp *resp /* out */);
/* Frees what resp owns and zeroes it. Accepts NULL. */
void bs_shard_resp_free(struct bs_shard_resp *resp);

/* Encodes resp into *out (malloc'd) of *len bytes: 0, BS_EINVAL, or
 * BS_ENOMEM. */
int bs_shard_resp_encode(const struct bs_shard_resp *resp /* borrowed */,
                         uint8_t **out, size_t *len);
/* Decodes into *resp, copying every byte string (resp owns them; free with
 * bs_shard_resp_free, also after an error). Returns 0, BS_ECORRUPT or
 * BS_ENOMEM. */
int bs_shard_resp_decode(const uint8_t *buf /* borrowed */, size_t len,
                         struct bs_shard_resp *resp /* out */);

/* ============================================================ shard */

struct bs_shard_overlay; /* private: writes staged but not yet written */

/*
 * One replica's shard state machine. Fields are read-only for callers:
 * they change only through the functions below. The in-memory state runs
 * ahead of the db between bs_shard_apply and the write of the batch (see
 * "Batches" below).
 */
struct bs_shard {
    struct bs_shard_desc desc; /* id, range, epoch, replicas */
    int64_t revision;          /* etcd revision of the last change */
    uint64_t applied_index;    /* last Raft entry applied */
    uint64_t applied_term;
    struct bs_raft_conf_state conf; /* Raft configuration as applied */
    struct bs_shard_limits limits;
    struct bs_shard_overlay *ov;
};

/*
 * Creates the CF of desc->id if needed and writes (synced) a fresh apply
 * state: revision 1 (an empty etcd), applied index/term as given (the
 * bootstrap snapshot, e.g. 1/1), conf = cs (NULL = from the replicas).
 * For cluster bootstrap. Returns 0, BS_EEXIST (the CF already holds an
 * apply state: nothing written), BS_EINVAL, BS_EIO or BS_ENOMEM.
 */
int bs_shard_bootstrap(struct bs_eng_db *db,
                       const struct bs_shard_desc *desc /* borrowed */,
                       const struct bs_raft_conf_state *cs /* borrowed */,
                       uint64_t index, uint64_t term);

/*
 * Loads shard id from its CF. limits: NULL = defaults. Returns 0 and *out
 * (free with bs_shard_destroy), BS_ENOTFOUND (no CF or no apply state),
 * BS_ECORRUPT (the apply state does not decode or fails its checksum:
 * errmsg says which), BS_EIO or BS_ENOMEM. errmsg may be NULL.
 */
int bs_shard_load(struct bs_eng_db *db, uint64_t id,
                  const struct bs_shard_limits *limits /* borrowed */,
                  struct bs_shard **out, char *errmsg);
void bs_shard_destroy(struct bs_shard *s); /* accepts NULL */

/*
 * Checks a command against the shard as it stands, as apply will: epoch,
 * key range, limits, format rules (empty key, duplicate txn keys, things
 * not implemented). The store calls it before proposing so that a doomed
 * command never enters the log. Returns 0 or the code, with the sentence
 * in errmsg (BS_SHARD_ERRMSG_LEN bytes, may be NULL).
 */
int bs_shard_validate(const struct bs_shard *s /* borrowed */,
                      const struct bs_shard_cmd *cmd /* borrowed */,
                      char *errmsg);

/*
 * Applies the committed Raft entry (index, term) whose data is data[len]
 * (an encoded command; len 0 = an empty entry, e.g. a new leader's,
 * which only advances the applied index). Stages the writes and the new
 * apply state into wb (the caller's batch, which may hold other shards'
 * and other entries' writes) and updates the in-memory state.
 *
 * Returns 0 when the entry was consumed; resp says how (resp->err != 0: the
 * command was refused and only the applied index moved; resp->skipped:
 * index <= applied_index, nothing done: replay after a crash is
 * idempotent). A command that does not decode is consumed as refused
 * (BS_ECORRUPT in resp) rather than stopping the shard. For SPLIT,
 * resp->right describes the new shard (see bs_shard_split below).
 *
 * Returns a negative code when the entry could not be applied: BS_EINVAL
 * (index > applied_index + 1: entries are missing), BS_EIO, BS_ECORRUPT (a
 * stored record does not decode) or BS_ENOMEM. wb then holds a partial
 * entry: the caller must drop the batch (bs_eng_wb_clear) and call
 * bs_shard_batch_discard on every shard that staged into it.
 *
 * Batches: reads during apply (prev_kv, versions, compares, ranges,
 * deletes, split) see the db plus the writes of every entry this shard
 * staged since its last bs_shard_batch_written/discard: the shard keeps
 * them in an in-memory overlay, because a RocksDB WriteBatch cannot be
 * read. After bs_eng_db_write(wb) succeeds, call bs_shard_batch_written to
 * drop the overlay; do not serve reads (bs_shard_range) of this shard
 * between apply and the write.
 */
int bs_shard_apply(struct bs_shard *s, struct bs_eng_db *db,
                   struct bs_eng_wb *wb, uint64_t index, uint64_t term,
                   const uint8_t *data /* borrowed */, size_t len,
                   struct bs_shard_resp *resp /* out */);

/*
 * Applies a configuration-change entry: conf becomes cs, the replica list
 * becomes replicas[n] (the store maps Raft ids to nodes), conf_ver + 1,
 * applied index moves. Skipped (0) if index <= applied_index. Errors as
 * bs_shard_apply's negative returns, plus BS_EINVAL for n > max.
 */
int bs_shard_apply_conf(struct bs_shard *s, struct bs_eng_db *db,
                        struct bs_eng_wb *wb, uint64_t index, uint64_t term,
                        const struct bs_raft_conf_state *cs /* borrowed */,
                        const struct bs_shard_replica *replicas /* borrowed */,
                        uint32_t n);

/* The batch holding this shard's staged writes was written: drop them. */
void bs_shard_batch_written(struct bs_shard *s);
/* The batch was dropped: forget the staged writes and reload the state
 * from the db (as bs_shard_load). 0, or bs_shard_load's errors (the shard
 * is then unusable: stop the replica). */
int bs_shard_batch_discard(struct bs_shard *s, struct bs_eng_db *db);

/* ============================================================ reads */

/*
 * Serves a Range from the shard CF at snap (NULL = a snapshot taken here),
 * checking the epoch (version) it was routed with and the range against
 * the apply state stored in the same snapshot, so data, revision and range
 * agree. Linearizability is the caller's: it waits until the applied index
 * covers the ReadIndex (or holds the lease) first.
 *
 * Returns 0 with resp filled (revision = the shard's revision at snap),
 * or the error also stored in resp->err with the sentence in
 * resp->errmsg: BS_ESTALE, BS_ERANGE, BS_EINVAL, BS_ENOTIMPL (historical
 * revision), BS_ENOTFOUND (no such shard here), BS_EIO, BS_ECORRUPT,
 * BS_ENOMEM.
 */
int bs_shard_range(const struct bs_shard *s /* borrowed */,
                   struct bs_eng_db *db, const struct bs_eng_snap *snap,
                   const struct bs_shard_epoch *epoch /* borrowed */,
                   const struct bs_shard_range_req *req /* borrowed */,
                   struct bs_shard_resp *resp /* out */);

/*
 * The same read from the live db, without a RocksDB snapshot or a read of
 * the stored apply state: the shard's in-memory state is the db's. Only
 * for the thread that applies (the store's), between batches; with writes
 * staged (between bs_shard_apply and bs_shard_batch_written) it answers
 * BS_EBUSY. Errors as bs_shard_range.
 */
int bs_shard_range_live(const struct bs_shard *s /* borrowed */,
                        struct bs_eng_db *db,
                        const struct bs_shard_epoch *epoch /* borrowed */,
                        const struct bs_shard_range_req *req /* borrowed */,
                        struct bs_shard_resp *resp /* out */);

/* ==================================================== store adapter */

/*
 * sm.c: the shard as the store's state machine (struct bs_eng_sm_ops of
 * engine.h), so that engine/ drives shards without knowing them.
 * bs_shard_sm_factory fills f so that the store opens every shard replica
 * with the given limits (borrowed: must outlive the store; NULL =
 * defaults). bs_shard_sm_shard returns the bs_shard behind a state
 * machine the factory opened (bs_eng_store_sm), or NULL for a replica
 * that has no state yet (created empty, waiting for its first snapshot).
 */
void bs_shard_sm_factory(struct bs_eng_sm_factory *f /* out */,
                         const struct bs_shard_limits *limits);
struct bs_shard *bs_shard_sm_shard(void *sm);

/* ============================================================ split */

/*
 * Split (split.c), applied through bs_shard_apply with a SPLIT command.
 *
 *   NORMAL --bs_shard_apply(SPLIT), epoch matches, key inside--> SPLIT
 *   SPLIT: this shard = [start, split_key), version + 1;
 *          new shard  = [split_key, end), same conf_ver, version + 1,
 *                       same revision, applied index/term = the split's,
 *                       conf = the given replicas.
 *
 * After the batch is written, the store loads the new shard with
 * bs_shard_load(resp->right.id) and creates its Raft group from the
 * snapshot meta {split index, split term, bs_shard_desc_conf(&resp->right)}.
 * The new CF is created (bs_eng_db_shard_create) during the apply, before
 * the batch is written: RocksDB cannot create a column family inside a
 * batch. A crash in between leaves an empty CF (batches are atomic, so
 * never a half-written one); replay applies the split again, finds the
 * CF, stages a clear of it and writes it again in the same batch, so the
 * result is the same. If the new shard's CF already holds an apply state
 * past the split's index (its group got ahead, e.g. from a snapshot of its
 * own leader, before this replica applied the split), that state is kept
 * and only the old shard's upper keys are deleted.
 */

/*
 * Where to split s by size (split_key.c): the first of its live user keys,
 * in key order, at which the running sum of key + value bytes (that key's
 * included) reaches half of the shard's total; never the shard's first
 * key, so both halves [start, key) and [key, end) hold at least one key.
 * The key thus lies strictly inside the range and differs from its start.
 *
 * Reads the db (two full passes over the shard's data at one snapshot):
 * O(shard size) time, O(1) memory. Meant for the loop thread that applies
 * s, between batches, once a shard is past the split size (64 MiB by
 * default), which bounds the cost.
 *
 * Returns 0 and *key (malloc'd, caller frees; *len may be 0 only for an
 * empty key, which cannot occur: empty keys are refused at apply),
 * BS_ENOTFOUND (fewer than 2 keys: no split possible), BS_EBUSY (writes
 * are staged: call after the batch is written), BS_EIO / BS_ECORRUPT (the
 * db; detail in bs_eng_db_errmsg) or BS_ENOMEM. *key is NULL on error.
 */
int bs_shard_middle_key(const struct bs_shard *s /* borrowed */,
                        struct bs_eng_db *db, uint8_t **key /* out */,
                        size_t *len /* out */);

#endif
