/*
 * engine.h - public interface of engine/: one node's storage engine.
 *
 * One RocksDB instance per node (DESIGN.md section 3) with the column
 * families
 *
 *   default     node identity and store metadata        (bs_eng_db_meta_*),
 *               and "cfgen/<id>": the current generation of shard <id>
 *   raftlog     shard_id (8B BE) . index (8B BE) -> entry   (bs_eng_log_*)
 *   raftstate   shard_id (8B BE) -> hard state + truncated state
 *   s<id>       one per shard replica: user data and the apply state, in
 *   s<id>.g<n>  the CF of the shard's current generation (0 = "s<id>")
 *
 * Every function below that takes a shard id works on the CF of that
 * shard's current generation; generations change only when a snapshot is
 * installed ("shard snapshots" below), which is what makes an install
 * crash-atomic.
 *
 * Everything RocksDB stays behind this header: callers see opaque handles
 * and BS_E* codes (RocksDB error strings go to the db's errmsg). Shard
 * column families hold whatever keys the shard layer writes; by convention
 * (shard/) user keys are stored under the prefix 'z' and local keys such as
 * the apply state under the prefix 0x00, so the two never collide.
 *
 * Threads: a bs_eng_db may be used from several threads (RocksDB is
 * thread-safe); a bs_eng_log, a bs_eng_wb and a bs_eng_iter belong to one
 * thread at a time.
 */
#ifndef BS_ENGINE_ENGINE_H
#define BS_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "log.h"
#include "raft.h"

/* Size of the errmsg buffers that functions of this header fill. */
#define BS_ENG_ERRMSG_SIZE 256

/* ========================================================== checksums */

/* CRC32C (Castagnoli), the checksum of RocksDB, iSCSI and ext4, used by
 * every record Basalt stores (raft log, apply states, placement records,
 * snapshot manifests). Continue a running checksum by passing the previous
 * result as crc (0 to start); bs_eng_crc32c(0, "123456789", 9) is
 * 0xe3069283. Uses SSE4.2 when the CPU has it. */
uint32_t bs_eng_crc32c(uint32_t crc, const void *buf, size_t len);

/* ================================================================ db */

struct bs_eng_db;

/* A zero size or job count means "the default". */
struct bs_eng_db_options {
    bool sync;                /* honour sync = true by fsyncing the WAL
                                 (default true; false only for tests and
                                 benchmarks) */
    size_t block_cache_bytes; /* shared block cache (default 64 MiB) */
    int max_background_jobs;  /* RocksDB flush/compaction threads (2) */
    size_t write_buffer_bytes; /* per column family memtable (8 MiB) */
};

void bs_eng_db_options_default(struct bs_eng_db_options *o /* out */);

/*
 * Opens (creating if needed) the node's database in dir, with every column
 * family that exists there (default, raftlog and raftstate are created if
 * missing; CFs this code does not know are opened and left alone). A shard
 * CF whose generation is not the shard's recorded one is what an
 * interrupted snapshot install left behind (a prepared generation never
 * switched to, or an old one not yet dropped): it is dropped, with a
 * warning in the log. Returns 0 and *out, or BS_EIO / BS_ECORRUPT (also: a
 * generation record that does not decode) / BS_EINVAL (dir is a file, ...)
 * / BS_ENOMEM with a sentence in errmsg (BS_ENG_ERRMSG_SIZE bytes, may be
 * NULL).
 */
int bs_eng_db_open(const char *dir /* borrowed */,
                   const struct bs_eng_db_options *o /* borrowed, NULL =
                                                         defaults */,
                   struct bs_eng_db **out, char *errmsg);
/* Flushes nothing extra (writes are durable per their sync flag) and
 * closes. Accepts NULL. */
void bs_eng_db_close(struct bs_eng_db *db);
/* Detail of the last error on this db (RocksDB's message); never NULL.
 * Shared by all threads: meaningful right after the failing call. */
const char *bs_eng_db_errmsg(const struct bs_eng_db *db);

/* Shards, by id; each has one live CF, that of its current generation.
 * create: 0, BS_EEXIST or BS_EIO (an empty CF, of the generation the
 * shard had if it existed before). drop: 0, BS_ENOTFOUND or BS_EIO (drops
 * the data with it, and a prepared generation too; the generation record
 * stays). The caller makes sure that nothing else uses the shard's CF
 * while it is dropped: iterators created before stay valid, batches that
 * still name it fail or write into the void. */
int bs_eng_db_shard_create(struct bs_eng_db *db, uint64_t shard_id);
int bs_eng_db_shard_drop(struct bs_eng_db *db, uint64_t shard_id);
bool bs_eng_db_shard_exists(const struct bs_eng_db *db, uint64_t shard_id);
/* Fills up to cap ids (ascending, each shard once, prepared generations
 * not counted); returns how many shards exist. */
size_t bs_eng_db_shard_list(const struct bs_eng_db *db, uint64_t *ids,
                            size_t cap);
/* The shard's current generation (0 for a shard never snapshotted into,
 * or unknown). */
uint64_t bs_eng_db_shard_generation(const struct bs_eng_db *db,
                                    uint64_t shard_id);

/* Bytes of data the db holds, as RocksDB estimates them (live data in
 * SST files plus memtables, every CF): for status pages, not accounting.
 * Any thread. */
uint64_t bs_eng_db_size_estimate(struct bs_eng_db *db);

/* Size of one shard's live CF as RocksDB estimates it, for split
 * decisions and status pages: *bytes = the SST files overlapping the CF's
 * key space (RocksDB's approximate sizes, so overwritten and deleted
 * versions not yet compacted count) plus its memtables; *keys = RocksDB's
 * "estimate-num-keys" (approximate: overwrites and deletes in memtables
 * and unmerged files make it high, and it counts the shard layer's local
 * keys too). Either out pointer may be NULL. Returns 0, BS_ENOTFOUND (no
 * such shard) or BS_EIO (detail in bs_eng_db_errmsg). Any thread; no
 * disk reads beyond RocksDB's file metadata. */
/* Flushes shard_id's memtable and compacts its whole CF (blocking), so
 * that deleted data (the half a split gave away) leaves the files and the
 * size estimate. 0, BS_ENOTFOUND or BS_EIO. */
int bs_eng_db_shard_compact(struct bs_eng_db *db, uint64_t shard_id);
int bs_eng_db_shard_size(struct bs_eng_db *db, uint64_t shard_id,
                         uint64_t *bytes, uint64_t *keys);

/* Small records in the default CF (node id, cluster id, ...), key a C
 * string (borrowed). put is synced: 0 or BS_EIO. get: 0 with *val
 * malloc'd (caller frees), BS_ENOTFOUND, BS_EIO or BS_ENOMEM. */
int bs_eng_db_meta_put(struct bs_eng_db *db, const char *key,
                       const void *val, size_t len);
int bs_eng_db_meta_get(struct bs_eng_db *db, const char *key, void **val,
                       size_t *len);

/* ======================================================= write batches */

/* A RocksDB WriteBatch across column families: the unit of atomicity.
 * The store puts the entries and hard states of every group of one round
 * in one batch and writes it with one fsync (group commit). */
struct bs_eng_wb;

struct bs_eng_wb *bs_eng_wb_create(void); /* NULL on out-of-memory */
void bs_eng_wb_destroy(struct bs_eng_wb *wb); /* accepts NULL */
void bs_eng_wb_clear(struct bs_eng_wb *wb);
size_t bs_eng_wb_count(const struct bs_eng_wb *wb);
size_t bs_eng_wb_bytes(const struct bs_eng_wb *wb);

/* Data operations on a shard CF; key and value are copied into the batch.
 * BS_ENOTFOUND if the CF does not exist (the batch is then unchanged). */
int bs_eng_wb_put(struct bs_eng_wb *wb, struct bs_eng_db *db,
                  uint64_t shard_id, const void *key, size_t klen,
                  const void *val, size_t vlen);
int bs_eng_wb_delete(struct bs_eng_wb *wb, struct bs_eng_db *db,
                     uint64_t shard_id, const void *key, size_t klen);
/* Deletes [start, end). */
int bs_eng_wb_delete_range(struct bs_eng_wb *wb, struct bs_eng_db *db,
                           uint64_t shard_id, const void *start, size_t slen,
                           const void *end, size_t elen);

/* Stages the switch of shard_id to generation gen, which
 * bs_eng_snap_ingest_prepare returned: once the batch is written, the
 * shard's data is the prepared image, on disk; call
 * bs_eng_db_generation_committed right after the write to make reads and
 * writes use it too. 0, or BS_EINVAL (no such prepared generation; the
 * batch is unchanged). */
int bs_eng_wb_switch_generation(struct bs_eng_wb *wb, struct bs_eng_db *db,
                                uint64_t shard_id, uint64_t gen);

/* Writes the batch atomically; sync = fsync the WAL before returning.
 * Returns 0 or BS_EIO (detail in bs_eng_db_errmsg). The batch is not
 * cleared. */
int bs_eng_db_write(struct bs_eng_db *db, struct bs_eng_wb *wb, bool sync);

/* ============================================================== reads */

/* A consistent view of the whole db (RocksDB snapshot). create: NULL on
 * out-of-memory. release accepts NULL. */
struct bs_eng_snap;
struct bs_eng_snap *bs_eng_snap_create(struct bs_eng_db *db);
void bs_eng_snap_release(struct bs_eng_db *db, struct bs_eng_snap *s);

/* Point read in a shard CF, at snap (NULL = latest). 0 with *val malloc'd
 * (caller frees; never NULL, even for an empty value), BS_ENOTFOUND (no
 * such key or no such CF), BS_EIO / BS_ECORRUPT, or BS_ENOMEM. */
int bs_eng_get(struct bs_eng_db *db, const struct bs_eng_snap *snap,
               uint64_t shard_id, const void *key, size_t klen, void **val,
               size_t *vlen);

/* Ordered iteration over a shard CF within [lower, upper) (either bound
 * may be NULL; both are copied), at snap (NULL = latest; the snapshot must
 * outlive the iterator). Keys and values returned are borrowed until the
 * next move; NULL (and *len 0) when the iterator is not valid. Seeking
 * below lower starts at lower; seeking for prev at or above upper ends at
 * the last key below upper. create: 0, BS_ENOTFOUND (no CF), BS_ENOMEM. */
struct bs_eng_iter;
int bs_eng_iter_create(struct bs_eng_db *db, const struct bs_eng_snap *snap,
                       uint64_t shard_id, const void *lower, size_t llen,
                       const void *upper, size_t ulen,
                       struct bs_eng_iter **out);
void bs_eng_iter_destroy(struct bs_eng_iter *it); /* accepts NULL */
void bs_eng_iter_seek(struct bs_eng_iter *it, const void *key, size_t klen);
void bs_eng_iter_seek_first(struct bs_eng_iter *it);
void bs_eng_iter_seek_last(struct bs_eng_iter *it);
/* Last key <= key. */
void bs_eng_iter_seek_for_prev(struct bs_eng_iter *it, const void *key,
                               size_t klen);
bool bs_eng_iter_valid(const struct bs_eng_iter *it);
void bs_eng_iter_next(struct bs_eng_iter *it);
void bs_eng_iter_prev(struct bs_eng_iter *it);
const void *bs_eng_iter_key(const struct bs_eng_iter *it, size_t *len);
const void *bs_eng_iter_value(const struct bs_eng_iter *it, size_t *len);
/* 0, or BS_EIO / BS_ECORRUPT if iteration stopped on an error. */
int bs_eng_iter_status(const struct bs_eng_iter *it);

/* ==================================================== raft log storage */

/*
 * The persisted Raft log and hard state of one group, implementing the
 * core's storage interface (struct bs_raft_storage) over the raftlog and
 * raftstate CFs, with a bounded in-memory tail cache of recent entries so
 * that followers and appliers rarely read RocksDB.
 *
 * Writes are staged into a caller's batch (the store's group-commit batch)
 * and become durable when that batch is written; the in-memory view
 * (last index, cache) is updated at staging time, which is safe because
 * the Raft core reads storage only after bs_raft_advance, i.e. after the
 * batch was written.
 *
 * The configuration and applied index are not kept here: they belong to
 * the apply state the shard writes with its data. The store passes the
 * configuration with bs_eng_log_set_conf before creating the node.
 */
struct bs_eng_log;

/*
 * Loads (or creates empty) the log of shard_id. tail_cache_bytes bounds
 * the cache (0 = no cache). Returns 0, BS_ECORRUPT (a stored record does
 * not decode, or entries are missing: the error names it), BS_EIO,
 * BS_ENOMEM. Opening reads every stored entry's key (to know the log's
 * size) and decodes the newest ones (the cache).
 *
 * The storage interface answers BS_ECORRUPT or BS_EIO when a record it
 * reads from RocksDB is bad (detail in bs_eng_log_errmsg). snapshot()
 * answers the meta of bs_eng_log_set_snapshot_meta or of the last
 * bs_eng_log_apply_snapshot, with empty data; after a restart, until the
 * store records one again, it answers BS_ESNAPTEMP if the log was ever
 * compacted (first_index > 1) and an empty meta otherwise.
 *
 * The staging functions below never leave a half-staged operation in the
 * batch: on error neither the batch nor the log has changed. If writing a
 * batch holding staged log operations fails, the log's in-memory view is
 * ahead of the disk: close and reopen it (the store treats that as fatal).
 */
int bs_eng_log_open(struct bs_eng_db *db, uint64_t shard_id,
                    size_t tail_cache_bytes, struct bs_eng_log **out,
                    char *errmsg);
void bs_eng_log_close(struct bs_eng_log *log); /* accepts NULL */
/* Detail of the log's last error; never NULL. */
const char *bs_eng_log_errmsg(const struct bs_eng_log *log);
struct bs_raft_storage bs_eng_log_iface(struct bs_eng_log *log);
void bs_eng_log_set_conf(struct bs_eng_log *log,
                         const struct bs_raft_conf_state *cs);

/* Stages entries (borrowed, copied), truncating any conflicting suffix
 * already stored; entries below first_index are ignored. Returns 0,
 * BS_EINVAL (a gap after last_index, or indexes not contiguous) or
 * BS_ENOMEM. */
int bs_eng_log_append(struct bs_eng_log *log, struct bs_eng_wb *wb,
                      const struct bs_raft_entry *ents, size_t n);
int bs_eng_log_set_hard_state(struct bs_eng_log *log, struct bs_eng_wb *wb,
                              const struct bs_raft_hard_state *hs);
/* A snapshot was installed: drops every entry, the log restarts after
 * meta->index; storage's snapshot() answers meta from now on,
 * initial_state answers meta->conf, and the hard state's commit is raised
 * to meta->index (as mem_storage does). 0 or BS_ESNAPOUTDATED (not newer
 * than the truncated state). */
int bs_eng_log_apply_snapshot(struct bs_eng_log *log, struct bs_eng_wb *wb,
                              const struct bs_raft_snapshot_meta *meta);
/* Records the meta of the newest snapshot the node can send (no data:
 * the image is exported from the shard CF when needed). In memory only. */
void bs_eng_log_set_snapshot_meta(struct bs_eng_log *log,
                                  const struct bs_raft_snapshot_meta *meta);
/* Discards entries up to and including compact_index (they must be
 * applied): first_index becomes compact_index + 1 and compact_index's term
 * is kept, as mem_storage does. Returns 0, BS_ECOMPACTED (compact_index <
 * first_index), BS_EUNAVAIL (> last_index), or BS_ECORRUPT / BS_EIO if its
 * term cannot be read. */
int bs_eng_log_compact(struct bs_eng_log *log, struct bs_eng_wb *wb,
                       uint64_t compact_index);
uint64_t bs_eng_log_first_index(const struct bs_eng_log *log);
uint64_t bs_eng_log_last_index(const struct bs_eng_log *log);
/* Bytes of entries currently stored, keys and encoded records (for
 * compaction by size); kept in memory, no I/O. */
uint64_t bs_eng_log_bytes(const struct bs_eng_log *log);
/* Stages deletion of the whole log and hard state of shard_id (replica
 * removed). Close any bs_eng_log of that shard first. Returns 0. */
int bs_eng_log_destroy(struct bs_eng_db *db, struct bs_eng_wb *wb,
                       uint64_t shard_id);

/* ================================================ shard snapshots (SST) */

/*
 * A shard's state-machine image: every key of its CF at one RocksDB
 * snapshot, written with rocksdb_sstfilewriter into dir as numbered SST
 * files plus a MANIFEST (file names, sizes, CRC32C of each file, key
 * count, shard id, the raft index and term it stands for). Ingest checks
 * the manifest and every checksum before touching the db; a corrupt or
 * truncated image is refused with BS_ECORRUPT and the old state stays.
 *
 * Installing an image is crash-atomic, in two phases:
 *
 *   bs_eng_snap_ingest_prepare   verify, create the CF of the shard's next
 *                                generation, ingest into it; the live CF
 *                                is untouched and keeps serving
 *   bs_eng_wb_switch_generation  stage the switch in a batch, next to what
 *                                must change with the data (the store puts
 *                                the raft log reset and hard state there)
 *   bs_eng_db_write              the switch is durable with the batch
 *   bs_eng_db_generation_committed  reads and writes move to the new CF;
 *                                the old one is dropped
 *
 * or bs_eng_db_generation_abort instead of the last two if the batch was
 * not written. A crash anywhere leaves either the old data (and whatever
 * else the batch would have changed, as it was) or the new data with the
 * rest of the batch: bs_eng_db_open drops the CF of the generation that
 * lost. Between prepare and committed, the shard's id names the old CF.
 */
struct bs_eng_snap_info {
    uint64_t shard_id;
    uint64_t index;
    uint64_t term;
    uint64_t keys;
    uint64_t bytes;
    uint32_t files;
};

/* Exports shard_id's CF (as seen by snap, NULL = now) into dir (created;
 * must not exist). Returns 0 and *info (may be NULL), BS_EEXIST (dir
 * exists), BS_ENOTFOUND (no CF), BS_EIO, BS_ENOMEM; on error dir is
 * removed again. */
int bs_eng_snap_export(struct bs_eng_db *db, const struct bs_eng_snap *snap,
                       uint64_t shard_id, uint64_t index, uint64_t term,
                       const char *dir, struct bs_eng_snap_info *info,
                       char *errmsg);
/* Verifies the image in dir without ingesting: 0 and *info (may be
 * NULL), BS_ENOTFOUND (no dir), BS_ECORRUPT (MANIFEST missing or bad, a
 * file missing, truncated or with a wrong checksum), BS_EIO. */
int bs_eng_snap_verify(const char *dir, struct bs_eng_snap_info *info,
                       char *errmsg);
/* Phase one: verifies the image in dir and ingests it into a new CF, the
 * next generation of shard_id (which need not exist; a generation
 * prepared before and never switched to is dropped first). Returns 0,
 * *info (may be NULL) and *gen, to pass to the calls below; or the verify
 * errors, BS_EINVAL (an image of another shard), BS_EIO / BS_ECORRUPT
 * (RocksDB), BS_ENOMEM. On error nothing is left prepared and the shard is
 * as it was. The SST files are moved (hard-linked) into the db: afterwards
 * dir holds only the MANIFEST (whatever the result, once verified) and
 * the caller removes it. */
int bs_eng_snap_ingest_prepare(struct bs_eng_db *db, uint64_t shard_id,
                               const char *dir, struct bs_eng_snap_info *info,
                               uint64_t *gen, char *errmsg);
/* The batch holding bs_eng_wb_switch_generation(shard_id, gen) was
 * written: shard_id now names the new CF, and the old one is dropped
 * (after a WAL sync when the db syncs, so that the switch cannot be lost
 * after the drop). Returns 0; BS_EINVAL if gen is not the prepared
 * generation (nothing changes); BS_EIO if the WAL sync or the drop failed:
 * the switch has happened all the same, and the old CF is dropped at the
 * next open. The caller makes sure nothing uses the shard meanwhile
 * (iterators created before keep reading the old data). */
int bs_eng_db_generation_committed(struct bs_eng_db *db, uint64_t shard_id,
                                   uint64_t gen);
/* The batch holding the switch was not written (or never will be): drops
 * the prepared CF. 0, BS_ENOTFOUND (no such prepared generation) or BS_EIO
 * (it stays prepared: the next prepare, drop or open drops it). */
int bs_eng_db_generation_abort(struct bs_eng_db *db, uint64_t shard_id,
                               uint64_t gen);
/* One shot: prepare, then the switch written alone (synced), then
 * committed. Replaces shard_id's data (the shard is created if absent) by
 * the image, atomically even across a crash: on any error but a BS_EIO of
 * the last step the shard keeps its old data. Same errors as
 * bs_eng_snap_ingest_prepare, plus BS_EIO / BS_ENOMEM for the write and
 * those of bs_eng_db_generation_committed. */
int bs_eng_snap_ingest(struct bs_eng_db *db, uint64_t shard_id,
                       const char *dir, struct bs_eng_snap_info *info,
                       char *errmsg);

/* ================================================================ store */

/*
 * The multi-raft store (DESIGN.md section 4): owns every replica of the
 * node, routes inbound message batches by shard id, ticks, and runs the
 * ready -> persist -> send -> apply loop for all groups at once:
 *
 *   bs_eng_store_process():
 *     1. collect the ready of every group with work;
 *     2. stage all their entries, hard states and installed snapshots in
 *        ONE write batch and write it with ONE fsync (group commit);
 *     3. send all messages, grouped into one batch per destination node;
 *     4. apply committed entries of all groups in one batch (no fsync:
 *        the log is durable), then answer proposers and readers;
 *     5. advance every group; compact logs that grew past their limits.
 *
 * The store is sans-I/O at its edges: clock, transport and random seed
 * are injected (struct bs_eng_store_config), so the simulator runs whole
 * nodes on virtual time. It is single-threaded: every bs_eng_store_*
 * call on one store comes from the same thread.
 *
 * Replica ids are unique cluster-wide and carry their node in the high 32
 * bits (BS_ENG_REPLICA_ID), so any layer can route a raft message without a
 * mapping table. A node holds at most one replica of a shard.
 *
 * Hibernation: a leader whose followers are all caught up and that has had
 * no proposals or reads for hibernate_ticks ticks tells its followers
 * (BS_ENG_ENV_HIBERNATE) and stops ticking; a follower that is caught up
 * stops ticking on that message. Any raft message, proposal or read wakes
 * a group. Liveness of nodes comes from node-level heartbeats (one per
 * peer node per tick, whatever the number of shards): when a node has not
 * been heard from for an election timeout, the groups it leads here wake
 * up and elect a new leader.
 */

#define BS_ENG_REPLICA_ID(node, seq)                                         \
    (((uint64_t)(node) << 32) | (uint64_t)(uint32_t)(seq))
#define BS_ENG_REPLICA_NODE(rid) ((uint64_t)(rid) >> 32)

enum bs_eng_env_kind {
    BS_ENG_ENV_RAFT = 0,           /* msg is a raft message of shard_id */
    BS_ENG_ENV_HIBERNATE = 1,      /* msg.from/to/term/commit: leader sleeps */
    BS_ENG_ENV_NODE_HEARTBEAT = 2, /* node liveness; shard_id unused */
};

/* One message between two stores. Entries/snapshot inside msg are owned
 * by whoever built the envelope; the transport copies what it keeps. */
struct bs_eng_envelope {
    uint8_t kind;
    uint64_t shard_id;
    struct bs_raft_msg msg;
};

struct bs_eng_transport_ops {
    /* Sends a batch (borrowed for the call) to node to_node. Must not
     * block: queue or drop. Returns 0, or BS_EUNREACHABLE (the store then
     * reports the destination replicas unreachable to their groups). A
     * MsgSnap's snapshot.data holds the path of the exported image (see
     * bs_eng_snap_export); the transport delivers the files and rewrites
     * the path for the receiver. The receiving store removes that
     * directory once it installed the image, or when it refuses it or has
     * no such group. */
    int (*send)(void *ctx, uint64_t to_node,
                const struct bs_eng_envelope *envs, size_t n);
    /* Milliseconds of a monotonic clock (virtual in the simulator). */
    uint64_t (*now_ms)(void *ctx);
};

struct bs_eng_transport {
    const struct bs_eng_transport_ops *ops;
    void *ctx;
};

/* What the state machine reports for one applied entry. */
struct bs_eng_apply_result {
    int status;      /* command-level result for the proposer: 0/BS_E* */
    void *resp;      /* malloc'd response for the proposer, or NULL */
    size_t resp_len;
    bool split;      /* a new group must be created (shard split) */
    uint64_t split_shard_id;
};

/*
 * The state machine of one group (implemented by shard/ and placement/).
 * Every function stages its writes, including the sm's apply state
 * (applied index, term and configuration), in wb; the store writes wb once
 * per round. Returning an error other than 0 means a fatal storage error
 * (BS_EIO, BS_ENOMEM, BS_ECORRUPT): the store stops. A command that fails
 * for the client (bad epoch, key out of range) returns 0 with
 * res->status set: it is still applied, as a no-op, everywhere.
 */
struct bs_eng_sm_ops {
    int (*apply)(void *sm, struct bs_eng_wb *wb, uint64_t index,
                 uint64_t term, const uint8_t *cmd, size_t len,
                 struct bs_eng_apply_result *res);
    /* An entry with no command (a leader's empty entry: cs == NULL) or a
     * configuration change (cs = the new configuration) was applied. */
    int (*advance)(void *sm, struct bs_eng_wb *wb, uint64_t index,
                   uint64_t term, const struct bs_raft_conf_state *cs);
    /* The apply state as last loaded or staged. */
    void (*applied)(void *sm, uint64_t *index, uint64_t *term,
                    struct bs_raft_conf_state *cs);
    /* The shard's data was replaced by a snapshot image (the switch to
     * its generation is written and committed): reload from db. */
    int (*reload)(void *sm);
    /* The batch holding what apply/advance staged was written (written =
     * true) or dropped after an error (false: forget the staged state). */
    void (*batch_done)(void *sm, bool written);
    void (*destroy)(void *sm);
};

struct bs_eng_sm_factory {
    /* Opens the state machine of shard_id over its CF (which exists),
     * loading its apply state (or starting empty). */
    int (*open)(void *ctx, struct bs_eng_db *db, uint64_t shard_id,
                void **sm, const struct bs_eng_sm_ops **ops);
    void *ctx;
};

struct bs_eng_store_config {
    uint64_t node_id;            /* 1 .. 2^32-1 */
    struct bs_eng_db *db;        /* borrowed */
    const char *snap_dir;        /* borrowed: where snapshot images go */
    struct bs_eng_transport transport;
    struct bs_eng_sm_factory sm_factory;
    uint64_t seed;               /* raft election jitter */
    int election_tick;           /* default 10 */
    int heartbeat_tick;          /* default 1 */
    int tick_ms;                 /* wall length of a tick, default 100 */
    int hibernate_ticks;         /* idle ticks before sleeping, 0 = never */
    uint64_t log_max_entries;    /* compact beyond this many (10000) */
    uint64_t log_max_bytes;      /* ... or this many bytes (64 MiB) */
    size_t tail_cache_bytes;     /* per group (1 MiB) */
    uint64_t request_timeout_ms; /* proposals/reads unanswered (10000) */
    int read_only_option;        /* BS_RAFT_READ_SAFE or _LEASE_BASED */
};

void bs_eng_store_config_default(struct bs_eng_store_config *c /* out */);

struct bs_eng_store;

/* Opens the store and recovers every group found in the db (shard CFs):
 * log, hard state, apply state, configuration. Returns 0, or a storage
 * error with a sentence in errmsg (>= 256 bytes). */
int bs_eng_store_open(const struct bs_eng_store_config *c /* borrowed */,
                      struct bs_eng_store **out, char *errmsg);
/* Fails pending requests with BS_ESTOPPED and closes. Accepts NULL. */
void bs_eng_store_close(struct bs_eng_store *s);

/* Creates a group with an initial configuration (cluster bootstrap):
 * every initial replica does the same, deterministically (raft.h,
 * "Bootstrapping"). The caller first writes the state machine's initial
 * state into the shard's CF (e.g. bs_shard_bootstrap, applied index 1),
 * since only it knows the shard's range. BS_EEXIST if the group exists. */
int bs_eng_store_bootstrap_group(struct bs_eng_store *s, uint64_t shard_id,
                                 uint64_t replica_id,
                                 const struct bs_raft_conf_state *cs);
/* Creates an empty replica that waits for its leader's snapshot (before
 * the leader adds it with a conf change). BS_EEXIST if present. */
int bs_eng_store_create_replica(struct bs_eng_store *s, uint64_t shard_id,
                                uint64_t replica_id);

/* One tick of every awake group, plus node heartbeats. */
void bs_eng_store_tick(struct bs_eng_store *s);
/* An inbound batch from node 'from' (borrowed). Unknown shards are
 * dropped and counted. */
void bs_eng_store_receive(struct bs_eng_store *s, uint64_t from,
                          const struct bs_eng_envelope *envs, size_t n);
/* Runs the loop above until no group has work, or for at most
 * BS_ENG_STORE_MAX_ROUNDS rounds (callbacks that propose again create new
 * work: the caller ticks and calls again; bs_eng_store_has_work says
 * whether work is left). Returns 0 or a fatal storage error (the store
 * must then be closed). */
#define BS_ENG_STORE_MAX_ROUNDS 16
int bs_eng_store_process(struct bs_eng_store *s);
bool bs_eng_store_has_work(const struct bs_eng_store *s);

/* Called once with the outcome of a request: status 0 and the state
 * machine's response (borrowed for the call), or BS_ENOTLEADER /
 * BS_EDROPPED (definitely not applied: another entry took its index),
 * BS_ETIMEDOUT (outcome unknown: no answer in time, a snapshot covered its
 * index, or the replica was removed while it was pending), BS_ESTOPPED
 * (store closed: outcome unknown). */
typedef void (*bs_eng_done_cb)(void *ctx, int status, const void *resp,
                               size_t len);

/* Proposes cmd (copied) to shard_id, which must be led here. Returns 0
 * (cb will be called), BS_ENOTFOUND (no such replica here), BS_ENOTLEADER
 * (bs_eng_store_leader tells who leads), or BS_EDROPPED; on error cb is
 * never called. */
int bs_eng_store_propose(struct bs_eng_store *s, uint64_t shard_id,
                         const void *cmd, size_t len, bs_eng_done_cb cb,
                         void *ctx);
/* Proposes a configuration change to shard_id (led here). */
int bs_eng_store_propose_conf_change(struct bs_eng_store *s,
                                     uint64_t shard_id,
                                     const struct bs_raft_conf_change *cc,
                                     bs_eng_done_cb cb, void *ctx);
/* Linearizable read barrier: cb(0) once the local replica has applied
 * everything committed when the read was requested (ReadIndex or lease);
 * the caller then reads local state. Works on followers too. */
int bs_eng_store_read_index(struct bs_eng_store *s, uint64_t shard_id,
                            bs_eng_done_cb cb, void *ctx);
/* Makes this replica of shard_id start an election now (e.g. the leader
 * placement prefers, right after bootstrap, so that leaders start out
 * balanced). BS_ENOTFOUND if there is no such replica here. */
int bs_eng_store_campaign(struct bs_eng_store *s, uint64_t shard_id);
/* Asks shard_id's leader (here) to hand leadership to replica 'to'. */
int bs_eng_store_transfer_leader(struct bs_eng_store *s, uint64_t shard_id,
                                 uint64_t to);

/* Removes this node's replica of shard_id outright, as a conf change that
 * removes it does: pending requests fail with BS_ETIMEDOUT (outcome
 * unknown; their callbacks run before this returns), its raft log, hard state and CF are dropped and its replica
 * record cleared, so that it does not come back at the next open. For a
 * replica its group no longer lists (left behind by a move while this
 * node was away): removing a current member takes its vote and its data
 * away. 0 or BS_ENOTFOUND (no such replica here). */
int bs_eng_store_remove_replica(struct bs_eng_store *s, uint64_t shard_id);

/* Inspection. */
struct bs_eng_group_info {
    uint64_t shard_id;
    uint64_t replica_id;
    uint64_t leader;  /* replica id, 0 = unknown */
    uint64_t term;
    uint64_t commit;
    uint64_t applied;
    uint8_t role;     /* enum bs_raft_role */
    bool asleep;
    struct bs_raft_conf_state conf;
};
int bs_eng_store_group(const struct bs_eng_store *s, uint64_t shard_id,
                       struct bs_eng_group_info *info);
size_t bs_eng_store_groups(const struct bs_eng_store *s, uint64_t *ids,
                           size_t cap);
void *bs_eng_store_sm(const struct bs_eng_store *s, uint64_t shard_id);
uint64_t bs_eng_store_leader(const struct bs_eng_store *s,
                             uint64_t shard_id);

/*
 * Replication progress of a group led here, for the in-sync replica set
 * (ISR, DESIGN.md section 7): the core's view of each member
 * (bs_raft_progress: match, next, state 0 probe / 1 replicate /
 * 2 snapshot, learner, recent_active) plus caught_up_ms, the last time of
 * the store's clock (the transport's now_ms) at which the member's match
 * was >= the leader's last log index.
 *
 *   lag in entries of a member = *last_index - match (0 if match is ahead)
 *   lag in ms of a member      = now - caught_up_ms while match <
 *                                *last_index, else 0
 *
 * The store samples the members of every group it leads whenever the
 * group has work in bs_eng_store_process and at each of its ticks, so
 * caught_up_ms is exact to a tick. A member caught up at the time of the
 * call counts as caught up now: the followers of a sleeping (hibernating)
 * leader stay caught up although nothing samples them. When this replica
 * becomes leader, every member starts caught up at that time (a new
 * leader has no history), and so does a member added later. The leader's
 * own entry is always caught up (match = *last_index, caught_up_ms = now).
 *
 * Fills up to cap entries (out borrowed; may be NULL with cap 0) and
 * returns the number of members, or 0 if shard_id is not here or not led
 * here. *last_index (may be NULL) gets the leader's last log index, 0 when
 * 0 is returned. No allocation, no I/O.
 */
struct bs_eng_progress {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    uint8_t state; /* 0 probe, 1 replicate, 2 snapshot */
    bool learner;
    bool recent_active;
    uint64_t caught_up_ms;
};
size_t bs_eng_store_progress(const struct bs_eng_store *s, uint64_t shard_id,
                             struct bs_eng_progress *out, size_t cap,
                             uint64_t *last_index /* out, may be NULL */);

struct bs_eng_store_stats {
    uint64_t rounds;          /* process rounds with work */
    uint64_t fsyncs;          /* synced raft batches */
    uint64_t entries_persisted;
    uint64_t entries_applied;
    uint64_t msgs_sent;
    uint64_t batches_sent;    /* transport calls */
    uint64_t dropped_unknown; /* messages for shards not here */
    uint64_t snapshots_sent;
    uint64_t snapshots_applied;
    uint64_t compactions;
    uint64_t groups;
    uint64_t groups_asleep;
    uint64_t ticks_skipped;   /* group ticks saved by hibernation */
};
void bs_eng_store_stats(const struct bs_eng_store *s,
                        struct bs_eng_store_stats *st);

#endif
