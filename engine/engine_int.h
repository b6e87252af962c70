/*
 * engine_int.h - private interface between the files of engine/ (db.c,
 * raftlog.c, snap.c, crc32c.c) and the engine's own unit tests.
 *
 * It is the only header that names RocksDB types: it lets raftlog.c and
 * snap.c reach the column families behind a bs_eng_db. Code outside
 * engine/ includes engine.h only (the engine's tests are the exception:
 * they use the test hooks at the end).
 *
 * Handles of shard column families (the live generation of each shard,
 * and a prepared next one during a snapshot install) live in a table
 * guarded by a reader-writer lock: bs_eng__shard_acquire() takes the read
 * side and bs_eng__shard_release() drops it, so a concurrent drop or
 * generation switch cannot destroy a handle while a call uses it. Hold it
 * only for the duration of one RocksDB call (an iterator, once created,
 * pins its column family by itself).
 */
#ifndef BS_ENGINE_ENGINE_INT_H
#define BS_ENGINE_ENGINE_INT_H

#include <rocksdb/c.h>
#include <stdarg.h>

#include "engine.h"

struct bs_eng_wb {
    rocksdb_writebatch_t *b;
};

struct bs_eng_snap {
    const rocksdb_snapshot_t *s;
};

/* Fixed column families. */
enum bs_eng__cf {
    BS_ENG__CF_DEFAULT = 0,
    BS_ENG__CF_RAFTLOG = 1,
    BS_ENG__CF_RAFTSTATE = 2,
};

rocksdb_t *bs_eng__db_rocks(struct bs_eng_db *db);
rocksdb_column_family_handle_t *bs_eng__db_cf(struct bs_eng_db *db,
                                              enum bs_eng__cf which);
/* Options of shard CFs (for rocksdb_sstfilewriter: same table format). */
const rocksdb_options_t *bs_eng__db_shard_options(struct bs_eng_db *db);
/* Read options with default settings (no snapshot, no bounds). */
const rocksdb_readoptions_t *bs_eng__db_readopts(struct bs_eng_db *db);

/* Read-locks the shard table and returns the handle of shard_id's live CF
 * (its current generation). 0 (lock held: call bs_eng__shard_release) or
 * BS_ENOTFOUND (not held). */
int bs_eng__shard_acquire(struct bs_eng_db *db, uint64_t shard_id,
                          rocksdb_column_family_handle_t **cf);
/* The same for the CF of generation gen that bs_eng__shard_prepare
 * created and nothing has switched to yet. */
int bs_eng__shard_acquire_prepared(struct bs_eng_db *db, uint64_t shard_id,
                                   uint64_t gen,
                                   rocksdb_column_family_handle_t **cf);
void bs_eng__shard_release(struct bs_eng_db *db);

/* Creates an empty CF for the next generation of shard_id (current + 1;
 * the shard need not exist), dropping one prepared before and never
 * switched to. The live CF is untouched. Returns 0 and *gen, BS_ENOMEM or
 * BS_EIO (detail in the db's errmsg). */
int bs_eng__shard_prepare(struct bs_eng_db *db, uint64_t shard_id,
                          uint64_t *gen);

/*
 * Converts a RocksDB error string to a BS_E* code ("Corruption: ..." ->
 * BS_ECORRUPT, "Invalid argument: ..." -> BS_EINVAL, "Not found: ..." ->
 * BS_ENOTFOUND, anything else BS_EIO) and frees it.
 * bs_eng__db_fail also records "<what>: <rocksdb message>" as the db's
 * errmsg; bs_eng__fail writes it into buf (>= BS_ENG_ERRMSG_SIZE, may be
 * NULL). err: takes ownership.
 */
int bs_eng__rocks_code(const char *err);
int bs_eng__db_fail(struct bs_eng_db *db, char *err, const char *what);
int bs_eng__fail(char *buf, char *err, const char *what);
/* Sets the db's errmsg (printf format); returns code. */
int bs_eng__db_seterr(struct bs_eng_db *db, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* snprintf into buf (may be NULL, BS_ENG_ERRMSG_SIZE bytes); returns
 * code. */
int bs_eng__seterr(char *buf, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Point read in any CF (borrowed handle), at snap (NULL = latest). Same
 * results as bs_eng_get. */
int bs_eng__get_cf(struct bs_eng_db *db, rocksdb_column_family_handle_t *cf,
                   const struct bs_eng_snap *snap, const void *key, size_t klen,
                   void **val, size_t *vlen);

/* ----------------------------------------------------------- CRC32C */

/* CRC32C (Castagnoli) of buf, continuing from crc (0 to start): the
 * checksum of iSCSI, ext4 and RocksDB. bs_eng_crc32c(0, "123456789", 9)
 * is 0xe3069283. Uses the SSE 4.2 instruction when the CPU has it. */
/* The portable table-driven version (for tests of the fast path). */
uint32_t bs_eng__crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* ------------------------------------------- fixed-width integer codec */

static inline void bs_eng__put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t bs_eng__get_u64be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void bs_eng__put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t bs_eng__get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline void bs_eng__put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint32_t bs_eng__get_u32le(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---------------------------------------------------- test-only hooks */

/* Writes raw bytes (synced) as the raftlog record of (shard_id, index),
 * bypassing the encoding: lets tests plant a torn or corrupt record. */
int bs_eng__test_log_put_raw(struct bs_eng_db *db, uint64_t shard_id,
                             uint64_t index, const void *val, size_t len);

/* Size at which snapshot export starts a new SST file (default 64 MiB);
 * tests lower it to get several files from a small shard. */
extern uint64_t bs_eng__snap_file_bytes;

#endif
