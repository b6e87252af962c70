/*
 * db.c - the node's RocksDB instance (DESIGN.md section 3): opening it with
 * all its column families, shard CFs, metadata records, write batches,
 * snapshots, point reads and bounded iterators.
 *
 * Everything RocksDB-specific that other files need goes through
 * engine_int.h. Error strings from RocksDB are converted to BS_E* codes here
 * and their text kept in the db's errmsg.
 *
 * Tuning, for machines with 2 cores and thousands of shard CFs:
 *   - one LRU block cache shared by every CF, holding index and filter
 *     blocks too, so memory stays bounded however many SST files exist;
 *   - two background jobs (one flush, one compaction) and at most two
 *     threads opening files at startup;
 *   - max_total_wal_size: the WAL is shared by all CFs, and an idle shard CF
 *     with a few unflushed writes would otherwise keep every old WAL file
 *     alive; past this size RocksDB flushes the CFs that pin the oldest one;
 *   - db_write_buffer_size caps memtables across all CFs, and small arena
 *     blocks (32 KiB) keep an idle shard CF's memtable small, so the cap
 *     is not eaten by empty arenas (see set_cf_common);
 *   - max_open_files: half the descriptor limit, not "all SST files";
 *   - bloom filters (10 bits/key) on shard CFs, where point reads of absent
 *     keys are common (etcd txn compares, puts that look up the previous
 *     version); none on raftlog, which is read by index only for entries
 *     that exist.
 *
 * Durability: raft writes pass sync = true and fsync the WAL; apply writes
 * pass sync = false but still go through the WAL, so a process crash loses
 * nothing and a power loss loses only a suffix of applies, which are
 * replayed from the durable log (the WAL is sequential: an apply that
 * survived implies that every earlier raft write survived).
 *
 * Locking: the table of shard CF handles is guarded by a reader-writer
 * lock; every call that uses a shard handle holds the read side for the
 * duration of the RocksDB call, create/drop and the generation changes
 * hold the write side.
 *
 * Shard generations (see struct shard_cf): a snapshot is ingested into a
 * new CF while the live one stays untouched, and the switch to it is one
 * record in a write batch. Every state a crash can leave is then one of
 *
 *   record = old gen, new CF present   prepared, switch not written: the
 *                                      open drops the new CF (garbage)
 *   record = new gen, old CF present   switch written, old CF not yet
 *                                      dropped: the open drops the old CF
 *   record = new gen, old CF gone      done
 *
 * and the open keeps exactly the CF whose generation is recorded.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "engine_int.h"

#define MIB (1024u * 1024u)

/*
 * One shard of the table. Its data lives in the CF of its current
 * generation: "s<id>" for generation 0 (every db made before generations
 * existed) and "s<id>.g<gen>" after that. The current generation is
 * recorded in the default CF under "cfgen/<id>" (absent = 0) and changes
 * only in a batch the caller writes (bs_eng_wb_switch_generation), so that
 * it switches atomically with whatever else that batch holds: the store
 * puts the raft log's reset for a snapshot in the same batch.
 *
 * h is the CF of generation gen, NULL when the shard has no CF (dropped,
 * or only prepared) but a generation is still known: a later create makes
 * the CF of that generation, never one a restart would take for garbage.
 * next is the CF of generation gen + 1 that bs_eng_snap_ingest_prepare
 * filled and nothing has switched to yet (NULL if none). An entry with
 * neither CF and generation 0 is removed.
 */
struct shard_cf {
    uint64_t id;
    uint64_t gen;
    rocksdb_column_family_handle_t *h;
    rocksdb_column_family_handle_t *next;
};

struct bs_eng_db {
    rocksdb_t *rdb;
    struct bs_eng_db_options opt;
    rocksdb_options_t *dbopts;    /* DB options; also default, raftstate */
    rocksdb_options_t *logopts;   /* raftlog CF */
    rocksdb_options_t *shardopts; /* shard CFs */
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_writeoptions_t *wo_nosync;
    rocksdb_readoptions_t *ro;
    rocksdb_column_family_handle_t *fixed[3]; /* enum bs_eng__cf */
    rocksdb_column_family_handle_t **other;   /* CFs we do not know */
    size_t n_other;

    pthread_rwlock_t lock;   /* guards shards */
    struct shard_cf *shards; /* sorted by id */
    size_t n_shards;
    size_t cap_shards;

    pthread_mutex_t errlock;
    char errmsg[BS_ENG_ERRMSG_SIZE];
};

static const char *const fixed_names[3] = {"default", "raftlog", "raftstate"};

/* ------------------------------------------------------------ errors */

int bs_eng__rocks_code(const char *err)
{
    if (!err)
        return 0;
    if (strncmp(err, "Corruption:", 11) == 0)
        return BS_ECORRUPT;
    if (strncmp(err, "Invalid argument:", 17) == 0)
        return BS_EINVAL;
    if (strncmp(err, "Not found:", 10) == 0)
        return BS_ENOTFOUND;
    return BS_EIO;
}

int bs_eng__seterr(char *buf, int code, const char *fmt, ...)
{
    if (buf) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, BS_ENG_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return code;
}

int bs_eng__db_seterr(struct bs_eng_db *db, int code, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&db->errlock);
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&db->errlock);
    return code;
}

int bs_eng__fail(char *buf, char *err, const char *what)
{
    int code = bs_eng__rocks_code(err);
    if (code == 0)
        code = BS_EIO;
    bs_eng__seterr(buf, code, "%s: %s", what, err ? err : "unknown error");
    free(err);
    return code;
}

int bs_eng__db_fail(struct bs_eng_db *db, char *err, const char *what)
{
    int code = bs_eng__rocks_code(err);
    if (code == 0)
        code = BS_EIO;
    bs_eng__db_seterr(db, code, "%s: %s", what, err ? err : "unknown error");
    free(err);
    return code;
}

const char *bs_eng_db_errmsg(const struct bs_eng_db *db)
{
    return db->errmsg;
}

/* ----------------------------------------------------------- options */

void bs_eng_db_options_default(struct bs_eng_db_options *o)
{
    o->sync = true;
    o->block_cache_bytes = 64 * (size_t)MIB;
    o->max_background_jobs = 2;
    o->write_buffer_bytes = 8 * (size_t)MIB;
}

/* Table options shared by all CFs: the common cache, index and filter
 * blocks inside it (bounded memory with many SSTs), bloom filter if
 * asked. */
static void set_table(struct bs_eng_db *db, rocksdb_options_t *o, bool bloom)
{
    rocksdb_block_based_table_options_t *t =
        rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, db->cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(
        t, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t,
                                                                            1);
    rocksdb_block_based_options_set_format_version(t, 5);
    if (bloom) /* the table options take ownership of the policy */
        rocksdb_block_based_options_set_filter_policy(
            t, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_options_set_block_based_table_factory(o, t); /* copies */
    rocksdb_block_based_options_destroy(t);
}

static void set_cf_common(struct bs_eng_db *db, rocksdb_options_t *o)
{
    rocksdb_options_set_write_buffer_size(o, db->opt.write_buffer_bytes);
    /* A memtable's arena grows in blocks of write_buffer_size / 8 (1 MiB)
     * by default, and every CF holds at least one: with a thousand shard
     * CFs the db_write_buffer_size cap is always exceeded, and RocksDB
     * flushes a CF on nearly every write (store_bench: ~1,600 flushes of
     * ~50 KB in 10 s at 1024 shards). 32 KiB blocks let idle shards cost
     * little and flushes carry real data. */
    rocksdb_options_set_arena_block_size(o, 32 * 1024);
    rocksdb_options_set_max_write_buffer_number(o, 2);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
}

/* RocksDB keeps every SST file open by default; with one CF per shard
 * that can exhaust the descriptor limit, which the rpc layer needs too.
 * Keep at most half of it for table files (LRU beyond that). */
static int max_open_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return -1;
    rlim_t half = rl.rlim_cur / 2;
    if (half < 64)
        half = 64;
    if (half > 1000000)
        half = 1000000;
    return (int)half;
}

static int make_options(struct bs_eng_db *db)
{
    db->cache = rocksdb_cache_create_lru(db->opt.block_cache_bytes);
    db->dbopts = rocksdb_options_create();
    db->logopts = rocksdb_options_create();
    db->shardopts = rocksdb_options_create();
    db->wo_sync = rocksdb_writeoptions_create();
    db->wo_nosync = rocksdb_writeoptions_create();
    db->ro = rocksdb_readoptions_create();
    if (!db->cache || !db->dbopts || !db->logopts || !db->shardopts ||
        !db->wo_sync || !db->wo_nosync || !db->ro)
        return BS_ENOMEM;

    rocksdb_options_t *o = db->dbopts;
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_paranoid_checks(o, 1);
    rocksdb_options_set_max_background_jobs(o, db->opt.max_background_jobs);
    rocksdb_options_set_max_file_opening_threads(o, 2);
    rocksdb_options_set_max_open_files(o, max_open_files());
    rocksdb_options_set_max_total_wal_size(o, 256 * (uint64_t)MIB);
    size_t dbwb = 4 * db->opt.write_buffer_bytes;
    if (dbwb < 64 * (size_t)MIB)
        dbwb = 64 * (size_t)MIB;
    rocksdb_options_set_db_write_buffer_size(o, dbwb);
    rocksdb_options_set_bytes_per_sync(o, MIB);
    rocksdb_options_set_wal_bytes_per_sync(o, MIB);
    rocksdb_options_set_keep_log_file_num(o, 4);
    rocksdb_options_set_max_log_file_size(o, 16 * (size_t)MIB);
    set_table(db, o, false);
    set_cf_common(db, o);

    /* raftlog: same DB options (only the CF part matters for a CF). */
    rocksdb_options_t *l = db->logopts;
    rocksdb_options_set_max_background_jobs(l, db->opt.max_background_jobs);
    set_table(db, l, false);
    set_cf_common(db, l);

    rocksdb_options_t *s = db->shardopts;
    rocksdb_options_set_max_background_jobs(s, db->opt.max_background_jobs);
    set_table(db, s, true);
    set_cf_common(db, s);

    rocksdb_writeoptions_set_sync(db->wo_sync, db->opt.sync ? 1 : 0);
    rocksdb_writeoptions_set_sync(db->wo_nosync, 0);
    return 0;
}

/* ------------------------------------------------------ shard table */

#define GEN_KEY_PREFIX "cfgen/"

static void shard_name(char *buf, size_t cap, uint64_t id, uint64_t gen)
{
    if (gen == 0)
        snprintf(buf, cap, "s%" PRIu64, id);
    else
        snprintf(buf, cap, "s%" PRIu64 ".g%" PRIu64, id, gen);
}

/* Parses a canonical "s<id>" (generation 0) or "s<id>.g<gen>" (gen >= 1);
 * false for anything else ("s007", "s7.g0": not ours). */
static bool parse_shard_name(const char *name, uint64_t *id, uint64_t *gen)
{
    if (name[0] != 's' || name[1] < '0' || name[1] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(name + 1, &end, 10);
    if (errno != 0)
        return false;
    unsigned long long g = 0;
    if (*end == '.') {
        if (end[1] != 'g' || end[2] < '0' || end[2] > '9')
            return false;
        g = strtoull(end + 2, &end, 10);
        if (errno != 0 || g == 0)
            return false;
    }
    if (*end != '\0')
        return false;
    char canon[64];
    shard_name(canon, sizeof(canon), (uint64_t)v, (uint64_t)g);
    if (strcmp(canon, name) != 0)
        return false;
    *id = (uint64_t)v;
    *gen = (uint64_t)g;
    return true;
}

static void gen_key(char *buf, size_t cap, uint64_t id)
{
    snprintf(buf, cap, GEN_KEY_PREFIX "%" PRIu64, id);
}

/* Index of id in db->shards, or the insertion point with *found false. */
static size_t shard_find(const struct bs_eng_db *db, uint64_t id, bool *found)
{
    size_t lo = 0, hi = db->n_shards;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (db->shards[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < db->n_shards && db->shards[lo].id == id;
    return lo;
}

static int shard_reserve(struct bs_eng_db *db)
{
    if (db->n_shards < db->cap_shards)
        return 0;
    size_t cap = db->cap_shards ? 2 * db->cap_shards : 16;
    struct shard_cf *v = realloc(db->shards, cap * sizeof(*v));
    if (!v)
        return BS_ENOMEM;
    db->shards = v;
    db->cap_shards = cap;
    return 0;
}

/* Inserts an entry without CFs at pos; capacity must have been reserved. */
static struct shard_cf *shard_insert(struct bs_eng_db *db, size_t pos,
                                     uint64_t id, uint64_t gen)
{
    memmove(db->shards + pos + 1, db->shards + pos,
            (db->n_shards - pos) * sizeof(db->shards[0]));
    struct shard_cf *e = &db->shards[pos];
    memset(e, 0, sizeof(*e));
    e->id = id;
    e->gen = gen;
    db->n_shards++;
    return e;
}

/* Removes the entry at pos if it no longer holds anything. */
static void shard_tidy(struct bs_eng_db *db, size_t pos)
{
    const struct shard_cf *e = &db->shards[pos];
    if (e->h || e->next || e->gen != 0)
        return;
    memmove(db->shards + pos, db->shards + pos + 1,
            (db->n_shards - pos - 1) * sizeof(db->shards[0]));
    db->n_shards--;
}

/* The entry of id if it has a live CF, else NULL. */
static struct shard_cf *shard_live(const struct bs_eng_db *db, uint64_t id)
{
    bool found;
    size_t pos = shard_find(db, id, &found);
    if (!found || !db->shards[pos].h)
        return NULL;
    return &db->shards[pos];
}

/* The entry of id if it has a prepared CF of generation gen, else NULL. */
static struct shard_cf *shard_prepared(const struct bs_eng_db *db, uint64_t id,
                                       uint64_t gen)
{
    bool found;
    size_t pos = shard_find(db, id, &found);
    if (!found || !db->shards[pos].next || db->shards[pos].gen + 1 != gen)
        return NULL;
    return &db->shards[pos];
}

int bs_eng__shard_acquire(struct bs_eng_db *db, uint64_t shard_id,
                          rocksdb_column_family_handle_t **cf)
{
    pthread_rwlock_rdlock(&db->lock);
    struct shard_cf *e = shard_live(db, shard_id);
    if (!e) {
        pthread_rwlock_unlock(&db->lock);
        return BS_ENOTFOUND;
    }
    *cf = e->h;
    return 0;
}

int bs_eng__shard_acquire_prepared(struct bs_eng_db *db, uint64_t shard_id,
                                   uint64_t gen,
                                   rocksdb_column_family_handle_t **cf)
{
    pthread_rwlock_rdlock(&db->lock);
    struct shard_cf *e = shard_prepared(db, shard_id, gen);
    if (!e) {
        pthread_rwlock_unlock(&db->lock);
        return BS_ENOTFOUND;
    }
    *cf = e->next;
    return 0;
}

void bs_eng__shard_release(struct bs_eng_db *db)
{
    pthread_rwlock_unlock(&db->lock);
}

/* ----------------------------------------------------------- open/close */

/* A shard CF found at open, before it is known to be the live one. */
struct found_cf {
    uint64_t id;
    uint64_t gen;
    const char *name; /* borrowed */
    rocksdb_column_family_handle_t *h;
};

/* Files the handle of a CF just opened: fixed and unknown CFs go into db,
 * shard CFs into found[*n_found] (attach_shards decides about them). */
static int add_handle(struct bs_eng_db *db, const char *name,
                      rocksdb_column_family_handle_t *h, struct found_cf *found,
                      size_t *n_found)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, fixed_names[i]) == 0) {
            db->fixed[i] = h;
            return 0;
        }
    }
    uint64_t id, gen;
    if (parse_shard_name(name, &id, &gen)) {
        found[*n_found] =
            (struct found_cf){.id = id, .gen = gen, .name = name, .h = h};
        (*n_found)++;
        return 0;
    }
    rocksdb_column_family_handle_t **v =
        realloc(db->other, (db->n_other + 1) * sizeof(*v));
    if (!v)
        return BS_ENOMEM;
    db->other = v;
    db->other[db->n_other++] = h;
    return 0;
}

/* Loads every "cfgen/<id>" record of the default CF into the shard table
 * (entries without CFs yet). A record that does not decode is corrupt. */
static int load_generations(struct bs_eng_db *db, char *errmsg)
{
    static const char lower[] = GEN_KEY_PREFIX;
    static const char upper[] = "cfgen0"; /* '/' + 1 */
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (!ro)
        return bs_eng__seterr(errmsg, BS_ENOMEM, "db open: out of memory");
    rocksdb_readoptions_set_iterate_lower_bound(ro, lower, sizeof(lower) - 1);
    rocksdb_readoptions_set_iterate_upper_bound(ro, upper, sizeof(upper) - 1);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(db->rdb, ro, db->fixed[BS_ENG__CF_DEFAULT]);
    int rc = 0;
    for (rocksdb_iter_seek(it, lower, sizeof(lower) - 1);
         rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        char ks[64], canon[64];
        uint64_t id = 0;
        bool ok = klen < sizeof(ks) && vlen == 8;
        if (ok) {
            memcpy(ks, k, klen);
            ks[klen] = '\0';
            char *end;
            const char *num = ks + sizeof(lower) - 1;
            errno = 0;
            id = strtoull(num, &end, 10);
            gen_key(canon, sizeof(canon), id);
            ok = *num >= '0' && *num <= '9' && errno == 0 && *end == '\0' &&
                 strcmp(canon, ks) == 0;
        }
        if (!ok) {
            rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                                "db open: bad generation record \"%.*s\"",
                                (int)(klen < 64 ? klen : 64), k);
            break;
        }
        bool found;
        size_t pos = shard_find(db, id, &found);
        if ((rc = shard_reserve(db)) != 0) {
            bs_eng__seterr(errmsg, rc, "db open: out of memory");
            break;
        }
        shard_insert(db, pos, id, bs_eng__get_u64le((const uint8_t *)v));
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err && rc == 0)
        rc = bs_eng__fail(errmsg, err, "db open: reading generations");
    else
        free(err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

/*
 * Makes the CF of each shard's recorded generation its live CF and drops
 * every other shard CF: those are prepared generations that were never
 * switched to (a crash between bs_eng_snap_ingest_prepare and the write of
 * the switch: the recorded generation and the raft log both still describe
 * the old data) or old ones whose drop was interrupted after a switch.
 * Takes ownership of the handles in found, even on error.
 */
static int attach_shards(struct bs_eng_db *db, struct found_cf *found,
                         size_t n_found, char *errmsg)
{
    int rc = 0;
    for (size_t i = 0; i < n_found && rc == 0; i++) {
        struct found_cf *f = &found[i];
        bool have;
        size_t pos = shard_find(db, f->id, &have);
        uint64_t cur = have ? db->shards[pos].gen : 0;
        if (f->gen == cur) {
            if (!have) {
                if ((rc = shard_reserve(db)) != 0) {
                    bs_eng__seterr(errmsg, rc, "db open: out of memory");
                    break;
                }
                shard_insert(db, pos, f->id, 0);
            }
            db->shards[pos].h = f->h;
            f->h = NULL;
            continue;
        }
        bs_log(BS_LOG_WARN, "engine",
               "dropping column family %s: shard %" PRIu64
               " is at generation %" PRIu64
               " (left by an interrupted snapshot install)",
               f->name, f->id, cur);
        char *err = NULL;
        rocksdb_drop_column_family(db->rdb, f->h, &err);
        if (err) {
            rc = bs_eng__fail(errmsg, err,
                              "db open: dropping a stale "
                              "shard generation");
            break;
        }
        rocksdb_column_family_handle_destroy(f->h);
        f->h = NULL;
    }
    for (size_t i = 0; i < n_found; i++)
        if (found[i].h)
            rocksdb_column_family_handle_destroy(found[i].h);
    return rc;
}

/* True if path/CURRENT exists: the directory holds a database. */
static bool has_current(const char *dir)
{
    size_t n = strlen(dir) + sizeof("/CURRENT");
    char *p = malloc(n);
    if (!p)
        return true; /* be conservative: do not treat it as new */
    snprintf(p, n, "%s/CURRENT", dir);
    struct stat st;
    bool ok = stat(p, &st) == 0;
    free(p);
    return ok;
}

int bs_eng_db_open(const char *dir, const struct bs_eng_db_options *o,
                   struct bs_eng_db **out, char *errmsg)
{
    char **existing = NULL;
    size_t n_existing = 0;
    const char **names = NULL;
    const rocksdb_options_t **cfopts = NULL;
    rocksdb_column_family_handle_t **handles = NULL;
    struct found_cf *found = NULL;
    size_t n = 0, n_found = 0;
    char *err = NULL;
    int rc;

    *out = NULL;
    if (!dir || !*dir)
        return bs_eng__seterr(errmsg, BS_EINVAL, "db open: empty path");
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return bs_eng__seterr(errmsg, BS_EINVAL,
                              "db open: %s exists and is not a directory", dir);

    struct bs_eng_db *db = calloc(1, sizeof(*db));
    if (!db)
        return bs_eng__seterr(errmsg, BS_ENOMEM, "db open: out of memory");
    pthread_rwlock_init(&db->lock, NULL);
    pthread_mutex_init(&db->errlock, NULL);
    bs_eng_db_options_default(&db->opt);
    if (o) {
        db->opt.sync = o->sync;
        if (o->block_cache_bytes)
            db->opt.block_cache_bytes = o->block_cache_bytes;
        if (o->max_background_jobs > 0)
            db->opt.max_background_jobs = o->max_background_jobs;
        if (o->write_buffer_bytes)
            db->opt.write_buffer_bytes = o->write_buffer_bytes;
    }
    rc = make_options(db);
    if (rc != 0) {
        bs_eng__seterr(errmsg, rc, "db open: out of memory");
        goto err;
    }

    existing = rocksdb_list_column_families(db->dbopts, dir, &n_existing, &err);
    if (err) {
        /* RocksDB returns an (empty) array even on error. */
        if (existing)
            rocksdb_list_column_families_destroy(existing, 0);
        existing = NULL;
        n_existing = 0;
        if (has_current(dir)) {
            rc = bs_eng__fail(errmsg, err, "db open: listing column families");
            goto err;
        }
        free(err); /* a new database */
        err = NULL;
    }

    names = calloc(n_existing + 3, sizeof(*names));
    cfopts = calloc(n_existing + 3, sizeof(*cfopts));
    handles = calloc(n_existing + 3, sizeof(*handles));
    found = calloc(n_existing + 3, sizeof(*found));
    if (!names || !cfopts || !handles || !found) {
        rc = bs_eng__seterr(errmsg, BS_ENOMEM, "db open: out of memory");
        goto err;
    }
    for (size_t i = 0; i < n_existing; i++) {
        uint64_t id, gen;
        names[n] = existing[i];
        if (parse_shard_name(existing[i], &id, &gen))
            cfopts[n] = db->shardopts;
        else if (strcmp(existing[i], "raftlog") == 0)
            cfopts[n] = db->logopts;
        else
            cfopts[n] = db->dbopts;
        n++;
    }
    for (int f = 0; f < 3; f++) {
        bool have = false;
        for (size_t i = 0; i < n_existing; i++)
            have = have || strcmp(existing[i], fixed_names[f]) == 0;
        if (!have) {
            names[n] = fixed_names[f];
            cfopts[n] = f == BS_ENG__CF_RAFTLOG ? db->logopts : db->dbopts;
            n++;
        }
    }

    db->rdb = rocksdb_open_column_families(db->dbopts, dir, (int)n, names,
                                           cfopts, handles, &err);
    if (err) {
        db->rdb = NULL;
        rc = bs_eng__fail(errmsg, err, "db open");
        goto err;
    }
    for (size_t i = 0; i < n; i++) {
        rc = add_handle(db, names[i], handles[i], found, &n_found);
        if (rc != 0) {
            /* Destroy the ones not yet recorded; close destroys the rest. */
            for (size_t j = i; j < n; j++)
                rocksdb_column_family_handle_destroy(handles[j]);
            for (size_t j = 0; j < n_found; j++)
                rocksdb_column_family_handle_destroy(found[j].h);
            bs_eng__seterr(errmsg, rc, "db open: out of memory");
            goto err;
        }
    }
    /* Which shard CFs are live depends on the generation records. */
    if ((rc = load_generations(db, errmsg)) != 0) {
        for (size_t j = 0; j < n_found; j++)
            rocksdb_column_family_handle_destroy(found[j].h);
        goto err;
    }
    if ((rc = attach_shards(db, found, n_found, errmsg)) != 0)
        goto err;
    if (existing)
        rocksdb_list_column_families_destroy(existing, n_existing);
    free(names);
    free(cfopts);
    free(handles);
    free(found);
    *out = db;
    return 0;

err:
    if (existing)
        rocksdb_list_column_families_destroy(existing, n_existing);
    free(names);
    free(cfopts);
    free(handles);
    free(found);
    bs_eng_db_close(db);
    return rc;
}

void bs_eng_db_close(struct bs_eng_db *db)
{
    if (!db)
        return;
    /* Handles go before the db (RocksDB's rule). */
    for (int i = 0; i < 3; i++)
        if (db->fixed[i])
            rocksdb_column_family_handle_destroy(db->fixed[i]);
    for (size_t i = 0; i < db->n_shards; i++) {
        if (db->shards[i].h)
            rocksdb_column_family_handle_destroy(db->shards[i].h);
        if (db->shards[i].next) /* prepared, never switched to: the next
                                   open drops it */
            rocksdb_column_family_handle_destroy(db->shards[i].next);
    }
    for (size_t i = 0; i < db->n_other; i++)
        rocksdb_column_family_handle_destroy(db->other[i]);
    if (db->rdb)
        rocksdb_close(db->rdb);
    if (db->ro)
        rocksdb_readoptions_destroy(db->ro);
    if (db->wo_sync)
        rocksdb_writeoptions_destroy(db->wo_sync);
    if (db->wo_nosync)
        rocksdb_writeoptions_destroy(db->wo_nosync);
    if (db->shardopts)
        rocksdb_options_destroy(db->shardopts);
    if (db->logopts)
        rocksdb_options_destroy(db->logopts);
    if (db->dbopts)
        rocksdb_options_destroy(db->dbopts);
    if (db->cache)
        rocksdb_cache_destroy(db->cache);
    free(db->shards);
    free(db->other);
    pthread_rwlock_destroy(&db->lock);
    pthread_mutex_destroy(&db->errlock);
    free(db);
}

rocksdb_t *bs_eng__db_rocks(struct bs_eng_db *db)
{
    return db->rdb;
}

rocksdb_column_family_handle_t *bs_eng__db_cf(struct bs_eng_db *db,
                                              enum bs_eng__cf which)
{
    return db->fixed[which];
}

const rocksdb_options_t *bs_eng__db_shard_options(struct bs_eng_db *db)
{
    return db->shardopts;
}

const rocksdb_readoptions_t *bs_eng__db_readopts(struct bs_eng_db *db)
{
    return db->ro;
}

/* ---------------------------------------------------------- shard CFs */

static int create_cf(struct bs_eng_db *db, uint64_t shard_id, uint64_t gen,
                     rocksdb_column_family_handle_t **h)
{
    char name[64];
    char *err = NULL;
    shard_name(name, sizeof(name), shard_id, gen);
    *h = rocksdb_create_column_family(db->rdb, db->shardopts, name, &err);
    if (err)
        return bs_eng__db_fail(db, err, "create column family");
    return 0;
}

/* Drops the CF and destroys its handle; on error the handle stays valid. */
static int drop_cf(struct bs_eng_db *db, rocksdb_column_family_handle_t *h)
{
    char *err = NULL;
    rocksdb_drop_column_family(db->rdb, h, &err);
    if (err)
        return bs_eng__db_fail(db, err, "drop column family");
    rocksdb_column_family_handle_destroy(h);
    return 0;
}

int bs_eng_db_shard_create(struct bs_eng_db *db, uint64_t shard_id)
{
    int rc;
    bool found;
    pthread_rwlock_wrlock(&db->lock);
    size_t pos = shard_find(db, shard_id, &found);
    if (found && db->shards[pos].h) {
        rc = BS_EEXIST;
    } else if ((rc = shard_reserve(db)) == 0) {
        /* A shard that existed before keeps its generation: the record
         * says which CF a restart takes for live. */
        uint64_t gen = found ? db->shards[pos].gen : 0;
        rocksdb_column_family_handle_t *h;
        if ((rc = create_cf(db, shard_id, gen, &h)) == 0) {
            if (!found)
                shard_insert(db, pos, shard_id, gen);
            db->shards[pos].h = h;
        }
    }
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

int bs_eng_db_shard_drop(struct bs_eng_db *db, uint64_t shard_id)
{
    int rc = 0;
    bool found;
    pthread_rwlock_wrlock(&db->lock);
    size_t pos = shard_find(db, shard_id, &found);
    struct shard_cf *e = found ? &db->shards[pos] : NULL;
    if (!e || !e->h)
        rc = BS_ENOTFOUND;
    /* The generation record stays: a later create reuses it. */
    if (e && e->next) {
        int r = drop_cf(db, e->next);
        if (r == 0)
            e->next = NULL;
        else if (rc == 0)
            rc = r;
    }
    if (e && e->h) {
        int r = drop_cf(db, e->h);
        if (r == 0)
            e->h = NULL;
        else if (rc == 0)
            rc = r;
    }
    if (e)
        shard_tidy(db, pos);
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

bool bs_eng_db_shard_exists(const struct bs_eng_db *db, uint64_t shard_id)
{
    struct bs_eng_db *m = (struct bs_eng_db *)db; /* the lock is mutable */
    pthread_rwlock_rdlock(&m->lock);
    bool live = shard_live(m, shard_id) != NULL;
    pthread_rwlock_unlock(&m->lock);
    return live;
}

size_t bs_eng_db_shard_list(const struct bs_eng_db *db, uint64_t *ids,
                            size_t cap)
{
    struct bs_eng_db *m = (struct bs_eng_db *)db;
    size_t n = 0;
    pthread_rwlock_rdlock(&m->lock);
    for (size_t i = 0; i < m->n_shards; i++) {
        if (!m->shards[i].h)
            continue;
        if (n < cap)
            ids[n] = m->shards[i].id;
        n++;
    }
    pthread_rwlock_unlock(&m->lock);
    return n;
}

uint64_t bs_eng_db_shard_generation(const struct bs_eng_db *db,
                                    uint64_t shard_id)
{
    struct bs_eng_db *m = (struct bs_eng_db *)db;
    bool found;
    pthread_rwlock_rdlock(&m->lock);
    size_t pos = shard_find(m, shard_id, &found);
    uint64_t gen = found ? m->shards[pos].gen : 0;
    pthread_rwlock_unlock(&m->lock);
    return gen;
}

/* -------------------------------------------------- shard generations */

int bs_eng__shard_prepare(struct bs_eng_db *db, uint64_t shard_id,
                          uint64_t *gen)
{
    int rc;
    bool found;
    pthread_rwlock_wrlock(&db->lock);
    size_t pos = shard_find(db, shard_id, &found);
    if (!found) {
        if ((rc = shard_reserve(db)) != 0) {
            pthread_rwlock_unlock(&db->lock);
            return rc;
        }
        shard_insert(db, pos, shard_id, 0);
    }
    struct shard_cf *e = &db->shards[pos];
    /* A generation prepared before and never switched to (an install that
     * failed, or whose abort could not drop it) makes way. */
    if (e->next) {
        if ((rc = drop_cf(db, e->next)) != 0)
            goto out;
        e->next = NULL;
    }
    rocksdb_column_family_handle_t *h;
    if ((rc = create_cf(db, shard_id, e->gen + 1, &h)) != 0)
        goto out;
    e->next = h;
    *gen = e->gen + 1;
out:
    if (rc != 0)
        shard_tidy(db, pos);
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

int bs_eng_wb_switch_generation(struct bs_eng_wb *wb, struct bs_eng_db *db,
                                uint64_t shard_id, uint64_t gen)
{
    pthread_rwlock_rdlock(&db->lock);
    bool ok = shard_prepared(db, shard_id, gen) != NULL;
    pthread_rwlock_unlock(&db->lock);
    if (!ok)
        return bs_eng__db_seterr(db, BS_EINVAL,
                                 "shard %" PRIu64 " has no prepared "
                                 "generation %" PRIu64,
                                 shard_id, gen);
    char key[64];
    uint8_t val[8];
    gen_key(key, sizeof(key), shard_id);
    bs_eng__put_u64le(val, gen);
    rocksdb_writebatch_put_cf(wb->b, db->fixed[BS_ENG__CF_DEFAULT], key,
                              strlen(key), (const char *)val, sizeof(val));
    return 0;
}

int bs_eng_db_generation_committed(struct bs_eng_db *db, uint64_t shard_id,
                                   uint64_t gen)
{
    pthread_rwlock_wrlock(&db->lock);
    struct shard_cf *e = shard_prepared(db, shard_id, gen);
    if (!e) {
        pthread_rwlock_unlock(&db->lock);
        return bs_eng__db_seterr(db, BS_EINVAL,
                                 "shard %" PRIu64 " has no prepared "
                                 "generation %" PRIu64,
                                 shard_id, gen);
    }
    rocksdb_column_family_handle_t *old = e->h;
    e->h = e->next;
    e->next = NULL;
    e->gen = gen;
    /* Readers acquire the new CF from now on; whoever used the old one held
     * the read lock, which the write lock waited for. */
    pthread_rwlock_unlock(&db->lock);
    if (!old)
        return 0;

    /* The old CF may go only once the switch is durable: were the record
     * lost with an unsynced WAL tail after the drop reached the MANIFEST,
     * the next open would find neither generation. */
    int rc = 0;
    char *err = NULL;
    if (db->opt.sync) {
        rocksdb_flush_wal(db->rdb, 1, &err);
        if (err)
            rc = bs_eng__db_fail(db, err,
                                 "sync WAL before dropping the old "
                                 "generation");
    }
    if (rc == 0 && (rc = drop_cf(db, old)) == 0)
        return 0;
    /* Kept: the next open drops it (its generation is not the recorded
     * one, or, if the record was lost, the new one is not). */
    bs_log(BS_LOG_WARN, "engine",
           "shard %" PRIu64 ": old generation %" PRIu64
           " not dropped (%s); the next open drops it",
           shard_id, gen - 1, bs_eng_db_errmsg(db));
    rocksdb_column_family_handle_destroy(old);
    return rc;
}

int bs_eng_db_generation_abort(struct bs_eng_db *db, uint64_t shard_id,
                               uint64_t gen)
{
    int rc;
    bool found;
    pthread_rwlock_wrlock(&db->lock);
    size_t pos = shard_find(db, shard_id, &found);
    if (!shard_prepared(db, shard_id, gen)) {
        rc = BS_ENOTFOUND;
    } else if ((rc = drop_cf(db, db->shards[pos].next)) == 0) {
        db->shards[pos].next = NULL;
        shard_tidy(db, pos);
    }
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

/* -------------------------------------------------------------- meta */

int bs_eng_db_meta_put(struct bs_eng_db *db, const char *key, const void *val,
                       size_t len)
{
    char *err = NULL;
    rocksdb_put_cf(db->rdb, db->wo_sync, db->fixed[BS_ENG__CF_DEFAULT], key,
                   strlen(key), val, len, &err);
    if (err)
        return bs_eng__db_fail(db, err, "meta put");
    return 0;
}

int bs_eng_db_meta_get(struct bs_eng_db *db, const char *key, void **val,
                       size_t *len)
{
    return bs_eng__get_cf(db, db->fixed[BS_ENG__CF_DEFAULT], NULL, key,
                          strlen(key), val, len);
}

/* ------------------------------------------------------- write batches */

struct bs_eng_wb *bs_eng_wb_create(void)
{
    struct bs_eng_wb *wb = malloc(sizeof(*wb));
    if (!wb)
        return NULL;
    wb->b = rocksdb_writebatch_create();
    if (!wb->b) {
        free(wb);
        return NULL;
    }
    return wb;
}

void bs_eng_wb_destroy(struct bs_eng_wb *wb)
{
    if (!wb)
        return;
    rocksdb_writebatch_destroy(wb->b);
    free(wb);
}

void bs_eng_wb_clear(struct bs_eng_wb *wb)
{
    rocksdb_writebatch_clear(wb->b);
}

size_t bs_eng_wb_count(const struct bs_eng_wb *wb)
{
    return (size_t)rocksdb_writebatch_count(wb->b);
}

size_t bs_eng_wb_bytes(const struct bs_eng_wb *wb)
{
    size_t size = 0;
    (void)rocksdb_writebatch_data(wb->b, &size);
    return size;
}

int bs_eng_wb_put(struct bs_eng_wb *wb, struct bs_eng_db *db, uint64_t shard_id,
                  const void *key, size_t klen, const void *val, size_t vlen)
{
    rocksdb_column_family_handle_t *cf;
    int rc = bs_eng__shard_acquire(db, shard_id, &cf);
    if (rc != 0)
        return rc;
    rocksdb_writebatch_put_cf(wb->b, cf, key, klen, val, vlen);
    bs_eng__shard_release(db);
    return 0;
}

int bs_eng_wb_delete(struct bs_eng_wb *wb, struct bs_eng_db *db,
                     uint64_t shard_id, const void *key, size_t klen)
{
    rocksdb_column_family_handle_t *cf;
    int rc = bs_eng__shard_acquire(db, shard_id, &cf);
    if (rc != 0)
        return rc;
    rocksdb_writebatch_delete_cf(wb->b, cf, key, klen);
    bs_eng__shard_release(db);
    return 0;
}

int bs_eng_wb_delete_range(struct bs_eng_wb *wb, struct bs_eng_db *db,
                           uint64_t shard_id, const void *start, size_t slen,
                           const void *end, size_t elen)
{
    rocksdb_column_family_handle_t *cf;
    int rc = bs_eng__shard_acquire(db, shard_id, &cf);
    if (rc != 0)
        return rc;
    rocksdb_writebatch_delete_range_cf(wb->b, cf, start, slen, end, elen);
    bs_eng__shard_release(db);
    return 0;
}

int bs_eng_db_write(struct bs_eng_db *db, struct bs_eng_wb *wb, bool sync)
{
    char *err = NULL;
    rocksdb_write(db->rdb, sync ? db->wo_sync : db->wo_nosync, wb->b, &err);
    if (err)
        return bs_eng__db_fail(db, err, "write batch");
    return 0;
}

/* ------------------------------------------------------------- reads */

struct bs_eng_snap *bs_eng_snap_create(struct bs_eng_db *db)
{
    struct bs_eng_snap *s = malloc(sizeof(*s));
    if (!s)
        return NULL;
    s->s = rocksdb_create_snapshot(db->rdb);
    return s;
}

void bs_eng_snap_release(struct bs_eng_db *db, struct bs_eng_snap *s)
{
    if (!s)
        return;
    rocksdb_release_snapshot(db->rdb, s->s);
    free(s);
}

int bs_eng__get_cf(struct bs_eng_db *db, rocksdb_column_family_handle_t *cf,
                   const struct bs_eng_snap *snap, const void *key, size_t klen,
                   void **val, size_t *vlen)
{
    char *err = NULL;
    rocksdb_readoptions_t *ro = db->ro;
    if (snap) {
        ro = rocksdb_readoptions_create();
        if (!ro)
            return BS_ENOMEM;
        rocksdb_readoptions_set_snapshot(ro, snap->s);
    }
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned_cf(db->rdb, ro, cf, key, klen, &err);
    if (ro != db->ro)
        rocksdb_readoptions_destroy(ro);
    if (err)
        return bs_eng__db_fail(db, err, "get");
    if (!ps)
        return BS_ENOTFOUND;
    size_t n;
    const char *p = rocksdb_pinnableslice_value(ps, &n);
    void *copy = malloc(n ? n : 1);
    if (!copy) {
        rocksdb_pinnableslice_destroy(ps);
        return BS_ENOMEM;
    }
    memcpy(copy, p, n);
    rocksdb_pinnableslice_destroy(ps);
    *val = copy;
    *vlen = n;
    return 0;
}

int bs_eng_get(struct bs_eng_db *db, const struct bs_eng_snap *snap,
               uint64_t shard_id, const void *key, size_t klen, void **val,
               size_t *vlen)
{
    rocksdb_column_family_handle_t *cf;
    int rc = bs_eng__shard_acquire(db, shard_id, &cf);
    if (rc != 0)
        return rc;
    rc = bs_eng__get_cf(db, cf, snap, key, klen, val, vlen);
    bs_eng__shard_release(db);
    return rc;
}

/* ---------------------------------------------------------- iterators */

/*
 * RocksDB's read options point at the bound slices and the iterator points
 * at the read options, so the iterator owns all three and frees them
 * together.
 */
struct bs_eng_iter {
    struct bs_eng_db *db;
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    char *lower;
    size_t llen;
    char *upper;
    size_t ulen;
};

static char *dup_bytes(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (c && n)
        memcpy(c, p, n);
    return c;
}

int bs_eng_iter_create(struct bs_eng_db *db, const struct bs_eng_snap *snap,
                       uint64_t shard_id, const void *lower, size_t llen,
                       const void *upper, size_t ulen, struct bs_eng_iter **out)
{
    *out = NULL;
    struct bs_eng_iter *it = calloc(1, sizeof(*it));
    if (!it)
        return BS_ENOMEM;
    it->db = db;
    it->ro = rocksdb_readoptions_create();
    if (!it->ro)
        goto nomem;
    if (lower) {
        if (!(it->lower = dup_bytes(lower, llen)))
            goto nomem;
        it->llen = llen;
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lower, llen);
    }
    if (upper) {
        if (!(it->upper = dup_bytes(upper, ulen)))
            goto nomem;
        it->ulen = ulen;
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->upper, ulen);
    }
    if (snap)
        rocksdb_readoptions_set_snapshot(it->ro, snap->s);
    rocksdb_column_family_handle_t *cf;
    int rc = bs_eng__shard_acquire(db, shard_id, &cf);
    if (rc != 0) {
        bs_eng_iter_destroy(it);
        return rc;
    }
    /* The iterator pins the CF's data itself: a later drop is safe. */
    it->it = rocksdb_create_iterator_cf(db->rdb, it->ro, cf);
    bs_eng__shard_release(db);
    if (!it->it)
        goto nomem;
    *out = it;
    return 0;
nomem:
    bs_eng_iter_destroy(it);
    return BS_ENOMEM;
}

void bs_eng_iter_destroy(struct bs_eng_iter *it)
{
    if (!it)
        return;
    if (it->it)
        rocksdb_iter_destroy(it->it);
    if (it->ro)
        rocksdb_readoptions_destroy(it->ro);
    free(it->lower);
    free(it->upper);
    free(it);
}

static int cmp_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

void bs_eng_iter_seek(struct bs_eng_iter *it, const void *key, size_t klen)
{
    /* Clamp to the bounds ourselves rather than rely on how a given
     * RocksDB version treats targets outside them. */
    if (it->lower && cmp_bytes(key, klen, it->lower, it->llen) < 0) {
        key = it->lower;
        klen = it->llen;
    }
    rocksdb_iter_seek(it->it, key, klen);
}

void bs_eng_iter_seek_first(struct bs_eng_iter *it)
{
    rocksdb_iter_seek_to_first(it->it);
}

void bs_eng_iter_seek_last(struct bs_eng_iter *it)
{
    rocksdb_iter_seek_to_last(it->it);
}

void bs_eng_iter_seek_for_prev(struct bs_eng_iter *it, const void *key,
                               size_t klen)
{
    if (it->upper && cmp_bytes(key, klen, it->upper, it->ulen) >= 0) {
        rocksdb_iter_seek_to_last(it->it);
        return;
    }
    rocksdb_iter_seek_for_prev(it->it, key, klen);
}

bool bs_eng_iter_valid(const struct bs_eng_iter *it)
{
    return rocksdb_iter_valid(it->it) != 0;
}

void bs_eng_iter_next(struct bs_eng_iter *it)
{
    rocksdb_iter_next(it->it);
}

void bs_eng_iter_prev(struct bs_eng_iter *it)
{
    rocksdb_iter_prev(it->it);
}

const void *bs_eng_iter_key(const struct bs_eng_iter *it, size_t *len)
{
    if (!rocksdb_iter_valid(it->it)) {
        *len = 0;
        return NULL;
    }
    return rocksdb_iter_key(it->it, len);
}

const void *bs_eng_iter_value(const struct bs_eng_iter *it, size_t *len)
{
    if (!rocksdb_iter_valid(it->it)) {
        *len = 0;
        return NULL;
    }
    return rocksdb_iter_value(it->it, len);
}

int bs_eng_iter_status(const struct bs_eng_iter *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (!err)
        return 0;
    return bs_eng__db_fail(it->db, err, "iterator");
}

/* ---------------------------------------------------------- test hooks */

int bs_eng__test_log_put_raw(struct bs_eng_db *db, uint64_t shard_id,
                             uint64_t index, const void *val, size_t len)
{
    uint8_t key[16];
    char *err = NULL;
    bs_eng__put_u64be(key, shard_id);
    bs_eng__put_u64be(key + 8, index);
    rocksdb_put_cf(db->rdb, db->wo_sync, db->fixed[BS_ENG__CF_RAFTLOG],
                   (const char *)key, sizeof(key), val, len, &err);
    if (err)
        return bs_eng__db_fail(db, err, "raw put");
    return 0;
}

int bs_eng_db_shard_compact(struct bs_eng_db *db, uint64_t shard_id)
{
    pthread_rwlock_rdlock(&db->lock);
    struct shard_cf *e = shard_live(db, shard_id);
    int rc = e ? 0 : BS_ENOTFOUND;
    if (e) {
        char *err = NULL;
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        rocksdb_flush_cf(db->rdb, fo, e->h, &err);
        rocksdb_flushoptions_destroy(fo);
        if (err) {
            rc = bs_eng__db_seterr(db, BS_EIO, "flushing shard %" PRIu64
                                   ": %s", shard_id, err);
            free(err);
        } else {
            rocksdb_compact_range_cf(db->rdb, e->h, NULL, 0, NULL, 0);
        }
    }
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

uint64_t bs_eng_db_size_estimate(struct bs_eng_db *db)
{
    uint64_t total = 0, v = 0;
    const char *live = "rocksdb.estimate-live-data-size";
    const char *mem = "rocksdb.cur-size-all-mem-tables";
    for (int i = 0; i < 3; i++) {
        if (rocksdb_property_int_cf(db->rdb, db->fixed[i], live, &v) == 0)
            total += v;
        if (rocksdb_property_int_cf(db->rdb, db->fixed[i], mem, &v) == 0)
            total += v;
    }
    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->n_shards; i++) {
        /* A dropped shard keeps its entry (its generation record) with no
         * handle. */
        if (!db->shards[i].h)
            continue;
        if (rocksdb_property_int_cf(db->rdb, db->shards[i].h, live, &v) == 0)
            total += v;
        if (rocksdb_property_int_cf(db->rdb, db->shards[i].h, mem, &v) == 0)
            total += v;
    }
    pthread_rwlock_unlock(&db->lock);
    return total;
}

/*
 * RocksDB 7.8's C API has no approximate_sizes with flags (files and
 * memtables at once): the files' part comes from approximate sizes over
 * the CF's whole key space, the memtables' from their property. The upper
 * bound 0xff covers every key the shard layer writes (0x00 local keys,
 * 'z' user keys), as split.c's clear of a CF does.
 */
int bs_eng_db_shard_size(struct bs_eng_db *db, uint64_t shard_id,
                         uint64_t *bytes, uint64_t *keys)
{
    static const char lo[1] = {0x00};
    static const char hi[1] = {(char)0xff};
    const char *starts[1] = {lo}, *limits[1] = {hi};
    const size_t start_lens[1] = {0}, limit_lens[1] = {1};
    rocksdb_column_family_handle_t *cf;
    int rc = bs_eng__shard_acquire(db, shard_id, &cf);
    if (rc != 0)
        return rc;
    uint64_t files = 0, mem = 0, n = 0;
    char *err = NULL;
    if (bytes) {
        rocksdb_approximate_sizes_cf(db->rdb, cf, 1, starts, start_lens, limits,
                                     limit_lens, &files, &err);
        if (err) {
            bs_eng__shard_release(db);
            return bs_eng__db_fail(db, err, "approximate sizes");
        }
        if (rocksdb_property_int_cf(
                db->rdb, cf, "rocksdb.cur-size-all-mem-tables", &mem) != 0)
            mem = 0;
    }
    if (keys && rocksdb_property_int_cf(db->rdb, cf,
                                        "rocksdb.estimate-num-keys", &n) != 0)
        n = 0;
    bs_eng__shard_release(db);
    if (bytes)
        *bytes = files + mem;
    if (keys)
        *keys = n;
    return 0;
}
