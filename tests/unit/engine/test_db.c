/*
 * test_db.c - unit tests of engine/db.c: open/close/reopen, shard column
 * families that survive a reopen, unknown column families, metadata
 * records, write batches (atomicity, a batch never written), snapshots,
 * bounded iterators with seek/seek_for_prev, a shard's size estimate, and
 * errors (a path that is a file, a db locked by another handle).
 */
#include "eng_fixture.h"

#include <fcntl.h>
#include <inttypes.h>

#include "engine_int.h"

static void put(struct bs_eng_db *db, uint64_t shard, const char *k,
                const char *v)
{
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_ptr_nonnull(wb);
    ck_assert_int_eq(bs_eng_wb_put(wb, db, shard, k, strlen(k), v, strlen(v)),
                     0);
    ck_assert_int_eq(bs_eng_db_write(db, wb, true), 0);
    bs_eng_wb_destroy(wb);
}

/* Asserts that shard's key k holds v (NULL: absent), at snap. */
static void expect_at(struct bs_eng_db *db, const struct bs_eng_snap *snap,
                      uint64_t shard, const char *k, const char *v)
{
    void *got = NULL;
    size_t n = 0;
    int rc = bs_eng_get(db, snap, shard, k, strlen(k), &got, &n);
    if (!v) {
        ck_assert_msg(rc == BS_ENOTFOUND, "%s: %s", k, bs_err_name(rc));
        return;
    }
    ck_assert_msg(rc == 0, "%s: %s", k, bs_err_name(rc));
    ck_assert_uint_eq(n, strlen(v));
    ck_assert_mem_eq(got, v, n);
    free(got);
}

static void expect(struct bs_eng_db *db, uint64_t shard, const char *k,
                   const char *v)
{
    expect_at(db, NULL, shard, k, v);
}

START_TEST(test_open_close_reopen)
{
    char *dir = fx_tmpdir("db");
    char *sub = fx_path(dir, "node"); /* not there yet: created */
    struct bs_eng_db *db = fx_open(sub);
    ck_assert_str_eq(bs_eng_db_errmsg(db), "");
    ck_assert_uint_eq(bs_eng_db_shard_list(db, NULL, 0), 0);
    bs_eng_db_close(db);
    bs_eng_db_close(NULL);
    /* Reopen with the default options (NULL). */
    char err[BS_ENG_ERRMSG_SIZE];
    ck_assert_int_eq(bs_eng_db_open(sub, NULL, &db, err), 0);
    ck_assert_uint_eq(bs_eng_db_shard_list(db, NULL, 0), 0);
    bs_eng_db_close(db);
    free(sub);
    fx_rm_rf(dir);
}
END_TEST

START_TEST(test_shard_cfs)
{
    char *dir = fx_tmpdir("db");
    struct bs_eng_db *db = fx_open(dir);
    ck_assert(!bs_eng_db_shard_exists(db, 1));
    ck_assert_int_eq(bs_eng_db_shard_create(db, 5), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 1), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 30), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 5), BS_EEXIST);
    ck_assert(bs_eng_db_shard_exists(db, 5));
    uint64_t ids[8];
    ck_assert_uint_eq(bs_eng_db_shard_list(db, ids, 8), 3);
    ck_assert_uint_eq(ids[0], 1);
    ck_assert_uint_eq(ids[1], 5);
    ck_assert_uint_eq(ids[2], 30);
    /* cap smaller than the count: fills cap, returns the count. */
    ids[1] = 777;
    ck_assert_uint_eq(bs_eng_db_shard_list(db, ids, 1), 3);
    ck_assert_uint_eq(ids[1], 777);

    put(db, 1, "k", "one");
    put(db, 5, "k", "five");
    ck_assert_int_eq(bs_eng_db_shard_drop(db, 5), 0);
    ck_assert_int_eq(bs_eng_db_shard_drop(db, 5), BS_ENOTFOUND);
    ck_assert(!bs_eng_db_shard_exists(db, 5));
    expect(db, 5, "k", NULL); /* no CF: not found */
    bs_eng_db_close(db);

    db = fx_open(dir);
    ck_assert_uint_eq(bs_eng_db_shard_list(db, ids, 8), 2);
    ck_assert_uint_eq(ids[0], 1);
    ck_assert_uint_eq(ids[1], 30);
    expect(db, 1, "k", "one");
    /* A dropped shard comes back empty. */
    ck_assert_int_eq(bs_eng_db_shard_create(db, 5), 0);
    expect(db, 5, "k", NULL);
    bs_eng_db_close(db);
    fx_rm_rf(dir);
}
END_TEST

/* A CF the engine does not know (another tool's, or "s007") must not stop
 * the db from opening, and must not be taken for a shard. */
START_TEST(test_unknown_cf)
{
    char *dir = fx_tmpdir("db");
    struct bs_eng_db *db = fx_open(dir);
    rocksdb_options_t *o = rocksdb_options_create();
    char *err = NULL;
    /* Not shard names: a leading zero, generation 0 spelt out, a
     * generation without digits. */
    static const char *const names[] = {"foo", "s007", "s7.g0", "s7.g",
                                        "s7.g01"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        rocksdb_column_family_handle_t *h = rocksdb_create_column_family(
            bs_eng__db_rocks(db), o, names[i], &err);
        ck_assert_ptr_null(err);
        rocksdb_column_family_handle_destroy(h);
    }
    rocksdb_options_destroy(o);
    bs_eng_db_close(db);
    db = fx_open(dir);
    ck_assert_uint_eq(bs_eng_db_shard_list(db, NULL, 0), 0);
    ck_assert(!bs_eng_db_shard_exists(db, 7));
    ck_assert_int_eq(bs_eng_db_shard_create(db, 7), 0);
    bs_eng_db_close(db);
    /* Left alone: still there after an open. */
    db = fx_open(dir);
    bs_eng_db_close(db);
    rocksdb_options_t *lo = rocksdb_options_create();
    size_t n = 0;
    char **have = rocksdb_list_column_families(lo, dir, &n, &err);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(n, 3 + sizeof(names) / sizeof(names[0]) + 1);
    rocksdb_list_column_families_destroy(have, n);
    rocksdb_options_destroy(lo);
    fx_rm_rf(dir);
}
END_TEST

/* A generation record that does not decode stops the open: which CF holds
 * the shard's data is unknown. */
START_TEST(test_bad_generation_record)
{
    char *dir = fx_tmpdir("db");
    struct bs_eng_db *db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 3), 0);
    ck_assert_int_eq(bs_eng_db_meta_put(db, "cfgen/3", "abc", 3), 0);
    bs_eng_db_close(db);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_db_open(dir, NULL, &db, err), BS_ECORRUPT);
    ck_assert_msg(strstr(err, "cfgen/3"), "%s", err);
    fx_rm_rf(dir);

    dir = fx_tmpdir("db");
    db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_meta_put(db, "cfgen/03", "\1\0\0\0\0\0\0\0", 8),
                     0);
    bs_eng_db_close(db);
    ck_assert_int_eq(bs_eng_db_open(dir, NULL, &db, err), BS_ECORRUPT);
    fx_rm_rf(dir);

    /* A well-formed record of a shard without CF is fine. */
    dir = fx_tmpdir("db");
    db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_meta_put(db, "cfgen/4", "\2\0\0\0\0\0\0\0", 8),
                     0);
    bs_eng_db_close(db);
    db = fx_open(dir);
    ck_assert_uint_eq(bs_eng_db_shard_generation(db, 4), 2);
    ck_assert(!bs_eng_db_shard_exists(db, 4));
    ck_assert_uint_eq(bs_eng_db_shard_list(db, NULL, 0), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 4), 0);
    bs_eng_db_close(db);
    db = fx_open(dir);
    ck_assert(bs_eng_db_shard_exists(db, 4));
    bs_eng_db_close(db);
    fx_rm_rf(dir);
}
END_TEST

START_TEST(test_meta)
{
    char *dir = fx_tmpdir("db");
    struct bs_eng_db *db = fx_open(dir);
    void *v = NULL;
    size_t n = 99;
    ck_assert_int_eq(bs_eng_db_meta_get(db, "node_id", &v, &n), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_db_meta_put(db, "node_id", "\x00\x07", 2), 0);
    ck_assert_int_eq(bs_eng_db_meta_put(db, "cluster", "c1", 2), 0);
    ck_assert_int_eq(bs_eng_db_meta_put(db, "cluster", "c2", 2), 0);
    ck_assert_int_eq(bs_eng_db_meta_put(db, "empty", "", 0), 0);
    bs_eng_db_close(db);

    db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_meta_get(db, "node_id", &v, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(v, "\x00\x07", 2);
    free(v);
    ck_assert_int_eq(bs_eng_db_meta_get(db, "cluster", &v, &n), 0);
    ck_assert_mem_eq(v, "c2", 2);
    free(v);
    v = NULL;
    ck_assert_int_eq(bs_eng_db_meta_get(db, "empty", &v, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_nonnull(v); /* never NULL on success */
    free(v);
    /* Meta lives in the default CF, apart from shard data. */
    ck_assert_int_eq(bs_eng_db_shard_create(db, 1), 0);
    expect(db, 1, "cluster", NULL);
    bs_eng_db_close(db);
    fx_rm_rf(dir);
}
END_TEST

START_TEST(test_wb_atomic)
{
    char *dir = fx_tmpdir("db");
    struct bs_eng_db *db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 1), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 2), 0);
    put(db, 1, "old", "x");
    for (char c = 'a'; c <= 'f'; c++) {
        char k[2] = {c, 0};
        put(db, 2, k, k);
    }

    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_uint_eq(bs_eng_wb_count(wb), 0);
    size_t empty = bs_eng_wb_bytes(wb);
    ck_assert_int_eq(bs_eng_wb_put(wb, db, 1, "a", 1, "1", 1), 0);
    ck_assert_int_eq(bs_eng_wb_put(wb, db, 2, "z", 1, "26", 2), 0);
    ck_assert_int_eq(bs_eng_wb_delete(wb, db, 1, "old", 3), 0);
    ck_assert_int_eq(bs_eng_wb_delete_range(wb, db, 2, "b", 1, "e", 1), 0);
    /* An unknown shard: refused, the batch unchanged. */
    ck_assert_int_eq(bs_eng_wb_put(wb, db, 9, "a", 1, "1", 1), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_wb_delete(wb, db, 9, "a", 1), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_wb_delete_range(wb, db, 9, "a", 1, "b", 1),
                     BS_ENOTFOUND);
    ck_assert_uint_eq(bs_eng_wb_count(wb), 4);
    ck_assert_uint_gt(bs_eng_wb_bytes(wb), empty);

    /* Staged, not written: invisible, and lost with a "crash". */
    expect(db, 1, "a", NULL);
    expect(db, 1, "old", "x");
    bs_eng_db_close(db);
    db = fx_open(dir);
    expect(db, 1, "a", NULL);
    expect(db, 2, "c", "c");

    /* Written: all of it. (The batch names CFs by id: the reopened db has
     * the same ids.) */
    ck_assert_int_eq(bs_eng_db_write(db, wb, false), 0);
    ck_assert_uint_eq(bs_eng_wb_count(wb), 4); /* not cleared */
    expect(db, 1, "a", "1");
    expect(db, 2, "z", "26");
    expect(db, 1, "old", NULL);
    expect(db, 2, "a", "a");
    expect(db, 2, "b", NULL);
    expect(db, 2, "d", NULL);
    expect(db, 2, "e", "e"); /* end of the range is exclusive */
    bs_eng_wb_clear(wb);
    ck_assert_uint_eq(bs_eng_wb_count(wb), 0);
    ck_assert_uint_eq(bs_eng_wb_bytes(wb), empty);
    bs_eng_wb_destroy(wb);
    bs_eng_wb_destroy(NULL);
    bs_eng_db_close(db);

    db = fx_open(dir); /* the unsynced write survived the clean close */
    expect(db, 1, "a", "1");
    expect(db, 2, "b", NULL);
    bs_eng_db_close(db);
    fx_rm_rf(dir);
}
END_TEST

START_TEST(test_snapshot_reads)
{
    char *dir = fx_tmpdir("db");
    struct bs_eng_db *db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 1), 0);
    put(db, 1, "k", "v1");
    struct bs_eng_snap *s = bs_eng_snap_create(db);
    ck_assert_ptr_nonnull(s);
    put(db, 1, "k", "v2");
    put(db, 1, "new", "n");
    expect_at(db, s, 1, "k", "v1");
    expect_at(db, s, 1, "new", NULL);
    expect(db, 1, "k", "v2");

    struct bs_eng_iter *it;
    ck_assert_int_eq(bs_eng_iter_create(db, s, 1, NULL, 0, NULL, 0, &it), 0);
    bs_eng_iter_seek_first(it);
    size_t n;
    ck_assert(bs_eng_iter_valid(it));
    ck_assert_mem_eq(bs_eng_iter_key(it, &n), "k", 1);
    ck_assert_mem_eq(bs_eng_iter_value(it, &n), "v1", 2);
    bs_eng_iter_next(it);
    ck_assert(!bs_eng_iter_valid(it));
    bs_eng_iter_destroy(it);
    bs_eng_snap_release(db, s);
    bs_eng_snap_release(db, NULL);
    bs_eng_db_close(db);
    fx_rm_rf(dir);
}
END_TEST

static void expect_key(struct bs_eng_iter *it, const char *k)
{
    size_t n;
    const void *p = bs_eng_iter_key(it, &n);
    if (!k) {
        ck_assert(!bs_eng_iter_valid(it));
        ck_assert_ptr_null(p);
        ck_assert_uint_eq(n, 0);
        return;
    }
    ck_assert_msg(bs_eng_iter_valid(it), "expected %s, iterator done", k);
    ck_assert_msg(n == strlen(k) && memcmp(p, k, n) == 0,
                  "expected %s, got %.*s", k, (int)n, (const char *)p);
    const void *v = bs_eng_iter_value(it, &n);
    ck_assert_uint_eq(n, strlen(k) + 1);
    ck_assert_mem_eq(v, "=", 1);
}

START_TEST(test_iter_bounds)
{
    char *dir = fx_tmpdir("db");
    struct bs_eng_db *db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 1), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 2), 0);
    struct bs_eng_wb *wb = bs_eng_wb_create();
    static const char *keys[] = {"a", "b", "c", "cc", "d", "e", "f", "g", "h"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char v[8];
        snprintf(v, sizeof(v), "=%s", keys[i]);
        bs_eng_wb_put(wb, db, 1, keys[i], strlen(keys[i]), v, strlen(v));
        bs_eng_wb_put(wb, db, 2, "other", 5, "x", 1); /* another CF */
    }
    ck_assert_int_eq(bs_eng_db_write(db, wb, false), 0);
    bs_eng_wb_destroy(wb);

    struct bs_eng_iter *it;
    ck_assert_int_eq(bs_eng_iter_create(db, NULL, 9, NULL, 0, NULL, 0, &it),
                     BS_ENOTFOUND);
    /* Bounds [c, g): the buffers are copied, scribbling on ours is fine. */
    char lo[] = "c", hi[] = "g";
    ck_assert_int_eq(bs_eng_iter_create(db, NULL, 1, lo, 1, hi, 1, &it), 0);
    lo[0] = hi[0] = 'z';
    bs_eng_iter_seek_first(it);
    expect_key(it, "c");
    bs_eng_iter_next(it);
    expect_key(it, "cc");
    bs_eng_iter_seek_last(it);
    expect_key(it, "f");
    bs_eng_iter_next(it);
    expect_key(it, NULL);
    bs_eng_iter_seek(it, "a", 1); /* below lower: starts at lower */
    expect_key(it, "c");
    bs_eng_iter_prev(it);
    expect_key(it, NULL);
    bs_eng_iter_seek(it, "ca", 2);
    expect_key(it, "cc");
    bs_eng_iter_seek(it, "f0", 2);
    expect_key(it, NULL);
    bs_eng_iter_seek_for_prev(it, "d0", 2);
    expect_key(it, "d");
    bs_eng_iter_seek_for_prev(it, "d", 1); /* <= key */
    expect_key(it, "d");
    bs_eng_iter_prev(it);
    expect_key(it, "cc");
    bs_eng_iter_seek_for_prev(it, "z", 1); /* above upper */
    expect_key(it, "f");
    bs_eng_iter_seek_for_prev(it, "g", 1); /* upper is exclusive */
    expect_key(it, "f");
    bs_eng_iter_seek_for_prev(it, "b", 1); /* below lower */
    expect_key(it, NULL);
    ck_assert_int_eq(bs_eng_iter_status(it), 0);
    /* Full walk backwards. */
    int n = 0;
    for (bs_eng_iter_seek_last(it); bs_eng_iter_valid(it); bs_eng_iter_prev(it))
        n++;
    ck_assert_int_eq(n, 5);
    bs_eng_iter_destroy(it);

    /* Only an upper bound; only a lower bound. */
    ck_assert_int_eq(bs_eng_iter_create(db, NULL, 1, NULL, 0, "b", 1, &it), 0);
    bs_eng_iter_seek_last(it);
    expect_key(it, "a");
    bs_eng_iter_destroy(it);
    ck_assert_int_eq(bs_eng_iter_create(db, NULL, 1, "h", 1, NULL, 0, &it), 0);
    bs_eng_iter_seek_for_prev(it, "zz", 2);
    expect_key(it, "h");
    bs_eng_iter_seek_first(it);
    expect_key(it, "h");
    bs_eng_iter_next(it);
    expect_key(it, NULL);

    /* An iterator pins its CF: dropping the shard under it is safe. */
    ck_assert_int_eq(bs_eng_db_shard_drop(db, 1), 0);
    bs_eng_iter_seek_first(it);
    expect_key(it, "h");
    bs_eng_iter_destroy(it);
    bs_eng_iter_destroy(NULL);
    bs_eng_db_close(db);
    fx_rm_rf(dir);
}
END_TEST

/* Writes keys [from, to) of 10 bytes with vlen pseudo-random bytes each
 * (incompressible) into shard, in batches of about 256 KiB. */
static void fill(struct bs_eng_db *db, uint64_t shard, int from, int to,
                 size_t vlen)
{
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_ptr_nonnull(wb);
    uint8_t *v = malloc(vlen);
    uint64_t x = 0x9e3779b97f4a7c15ull + (uint64_t)from;
    for (int i = from; i < to; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%09d", i);
        for (size_t j = 0; j < vlen; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[j] = (uint8_t)x;
        }
        ck_assert_int_eq(bs_eng_wb_put(wb, db, shard, k, 10, v, vlen), 0);
        if (bs_eng_wb_bytes(wb) > (256u << 10)) {
            ck_assert_int_eq(bs_eng_db_write(db, wb, false), 0);
            bs_eng_wb_clear(wb);
        }
    }
    ck_assert_int_eq(bs_eng_db_write(db, wb, false), 0);
    bs_eng_wb_destroy(wb);
    free(v);
}

/* The estimate follows the data of one shard only, in memtables (1 MiB
 * write buffers here, so part of it is flushed on the way) and in SST
 * files after a reopen. */
START_TEST(test_shard_size)
{
    enum { N = 6000, VLEN = 300 };
    const uint64_t raw = (uint64_t)N * (10 + VLEN);
    char *dir = fx_tmpdir("db");
    struct bs_eng_db *db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 1), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(db, 2), 0);
    uint64_t bytes = 1, keys = 1;
    ck_assert_int_eq(bs_eng_db_shard_size(db, 1, &bytes, &keys), 0);
    ck_assert_uint_lt(bytes, 64u << 10);
    ck_assert_uint_eq(keys, 0);
    ck_assert_int_eq(bs_eng_db_shard_size(db, 99, &bytes, &keys), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_db_shard_size(db, 1, NULL, NULL), 0);

    /* A few keys, all in the memtable (well under its 1 MiB). */
    fill(db, 1, 0, 500, VLEN);
    ck_assert_int_eq(bs_eng_db_shard_size(db, 1, &bytes, &keys), 0);
    ck_assert_msg(bytes >= 500 * (10 + VLEN) * 8 / 10,
                  "%" PRIu64 " bytes estimated for %d in a memtable", bytes,
                  500 * (10 + VLEN));
    ck_assert_uint_eq(keys, 500);

    fill(db, 1, 500, N, VLEN);
    ck_assert_int_eq(bs_eng_db_shard_size(db, 1, &bytes, &keys), 0);
    ck_assert_msg(bytes >= raw * 8 / 10 && bytes <= raw * 4,
                  "%" PRIu64 " bytes estimated for %" PRIu64, bytes, raw);
    ck_assert_msg(keys >= N * 8 / 10 && keys <= N * 12 / 10,
                  "%" PRIu64 " keys estimated for %d", keys, N);
    uint64_t b1 = bytes;
    /* Shard 2 holds nothing of it. */
    uint64_t b2 = 0, k2 = 1;
    ck_assert_int_eq(bs_eng_db_shard_size(db, 2, &b2, &k2), 0);
    ck_assert_uint_lt(b2, 64u << 10);
    ck_assert_uint_eq(k2, 0);

    /* Twice the keys: about twice the size. */
    fill(db, 1, N, 2 * N, VLEN);
    ck_assert_int_eq(bs_eng_db_shard_size(db, 1, &bytes, &keys), 0);
    ck_assert_msg(bytes >= b1 + raw / 2,
                  "%" PRIu64 " bytes after doubling, %" PRIu64 " before", bytes,
                  b1);
    ck_assert_msg(keys >= 2 * N * 8 / 10 && keys <= 2 * N * 12 / 10,
                  "%" PRIu64 " keys estimated for %d", keys, 2 * N);

    /* After a reopen (memtables recovered from the WAL, or flushed). */
    bs_eng_db_close(db);
    db = fx_open(dir);
    ck_assert_int_eq(bs_eng_db_shard_size(db, 1, &bytes, &keys), 0);
    ck_assert_msg(bytes >= 2 * raw * 8 / 10 && bytes <= 2 * raw * 4,
                  "%" PRIu64 " bytes estimated after a reopen for %" PRIu64,
                  bytes, 2 * raw);
    ck_assert_msg(keys >= 2 * N * 8 / 10 && keys <= 2 * N * 12 / 10,
                  "%" PRIu64 " keys estimated after a reopen for %d", keys,
                  2 * N);
    ck_assert_int_eq(bs_eng_db_shard_size(db, 2, &b2, &k2), 0);
    ck_assert_uint_lt(b2, 64u << 10);
    bs_eng_db_close(db);
    fx_rm_rf(dir);
}
END_TEST

START_TEST(test_open_errors)
{
    char *dir = fx_tmpdir("db");
    char err[BS_ENG_ERRMSG_SIZE] = "";
    struct bs_eng_db *db = (struct bs_eng_db *)1;

    /* A path that is a file. */
    char *file = fx_path(dir, "file");
    int fd = open(file, O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(bs_eng_db_open(file, NULL, &db, err), BS_EINVAL);
    ck_assert_ptr_null(db);
    ck_assert_msg(strstr(err, "not a directory") && strstr(err, file), "%s",
                  err);

    /* A parent that does not exist. */
    char *deep = fx_path(file, "sub/db");
    err[0] = 0;
    ck_assert_int_eq(bs_eng_db_open(deep, NULL, &db, err), BS_EIO);
    ck_assert_msg(strstr(err, "db open"), "%s", err);

    ck_assert_int_eq(bs_eng_db_open("", NULL, &db, NULL), BS_EINVAL);

    /* A db in use by another handle (RocksDB's LOCK file). */
    char *path = fx_path(dir, "db");
    struct bs_eng_db *first = fx_open(path);
    err[0] = 0;
    ck_assert_int_eq(bs_eng_db_open(path, NULL, &db, err), BS_EIO);
    ck_assert_msg(strstr(err, "lock") || strstr(err, "LOCK"), "%s", err);
    bs_eng_db_close(first);

    /* A directory with a damaged CURRENT file: not taken for a new db. */
    char *cur = fx_path(path, "CURRENT");
    fd = open(cur, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "garbage\n", 8), 8);
    close(fd);
    err[0] = 0;
    int rc = bs_eng_db_open(path, NULL, &db, err);
    ck_assert_msg(rc == BS_ECORRUPT || rc == BS_EIO, "%s", bs_err_name(rc));
    ck_assert_msg(err[0] != 0, "no message");
    free(cur);
    free(path);
    free(deep);
    free(file);
    fx_rm_rf(dir);
}
END_TEST

START_TEST(test_error_codes)
{
    ck_assert_int_eq(bs_eng__rocks_code(NULL), 0);
    ck_assert_int_eq(bs_eng__rocks_code("Corruption: bad block"), BS_ECORRUPT);
    ck_assert_int_eq(bs_eng__rocks_code("Invalid argument: x"), BS_EINVAL);
    ck_assert_int_eq(bs_eng__rocks_code("Not found: x"), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng__rocks_code("IO error: disk"), BS_EIO);
    ck_assert_int_eq(bs_eng__rocks_code("Busy: "), BS_EIO);
    char buf[BS_ENG_ERRMSG_SIZE];
    char *e = strdup("Corruption: block checksum mismatch");
    ck_assert_int_eq(bs_eng__fail(buf, e, "get"), BS_ECORRUPT);
    ck_assert_str_eq(buf, "get: Corruption: block checksum mismatch");
}
END_TEST

static Suite *db_suite(void)
{
    Suite *s = suite_create("engine_db");
    TCase *tc = tcase_create("db");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_open_close_reopen);
    tcase_add_test(tc, test_shard_cfs);
    tcase_add_test(tc, test_unknown_cf);
    tcase_add_test(tc, test_bad_generation_record);
    tcase_add_test(tc, test_meta);
    tcase_add_test(tc, test_wb_atomic);
    tcase_add_test(tc, test_snapshot_reads);
    tcase_add_test(tc, test_iter_bounds);
    tcase_add_test(tc, test_shard_size);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_error_codes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fx_run(db_suite());
}
