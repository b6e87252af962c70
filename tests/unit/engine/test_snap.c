/*
 * test_snap.c - engine/snap.c, shard snapshots as SST files: export and
 * ingest into another db give a byte-identical shard (over several SST
 * files, at a RocksDB snapshot, and for an empty shard); a corrupt,
 * truncated or missing file, a damaged or missing MANIFEST, or an image of
 * another shard is refused before anything changes. Installs are
 * crash-atomic: a prepared image without its switch, a switch written
 * without committed, an abort, each followed by a reopen, leave exactly the
 * old or exactly the new data, and stray generations are dropped.
 */
#include "eng_fixture.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "engine_int.h"

/* Fills shard with n keys "k%06d" whose values have varied lengths, plus a
 * local key under the 0x00 prefix. */
static void fill(struct bs_eng_db *db, uint64_t shard, int n, int seed)
{
    struct bs_eng_wb *wb = bs_eng_wb_create();
    char k[16], v[300];
    for (int i = 0; i < n; i++) {
        int len = snprintf(k, sizeof(k), "k%06d", i);
        size_t vlen = (size_t)((i * 37 + seed) % 250);
        for (size_t j = 0; j < vlen; j++)
            v[j] = (char)(i + j + (size_t)seed);
        ck_assert_int_eq(bs_eng_wb_put(wb, db, shard, k, (size_t)len, v, vlen),
                         0);
    }
    ck_assert_int_eq(bs_eng_wb_put(wb, db, shard,
                                   "\x00"
                                   "apply",
                                   6, "st", 2),
                     0);
    ck_assert_int_eq(bs_eng_db_write(db, wb, false), 0);
    bs_eng_wb_destroy(wb);
}

/* Every key and value of shard, in order, as one byte string: "klen k vlen
 * v ..." (malloc'd), and the key count. */
static char *dump(struct bs_eng_db *db, uint64_t shard, size_t *len,
                  uint64_t *keys)
{
    struct bs_eng_iter *it;
    ck_assert_int_eq(bs_eng_iter_create(db, NULL, shard, NULL, 0, NULL, 0, &it),
                     0);
    size_t cap = 1024, n = 0;
    char *out = malloc(cap);
    *keys = 0;
    for (bs_eng_iter_seek_first(it); bs_eng_iter_valid(it);
         bs_eng_iter_next(it)) {
        size_t kl, vl;
        const void *k = bs_eng_iter_key(it, &kl);
        const void *v = bs_eng_iter_value(it, &vl);
        while (n + kl + vl + 2 * sizeof(size_t) > cap)
            out = realloc(out, cap *= 2);
        memcpy(out + n, &kl, sizeof(kl));
        memcpy(out + n + sizeof(kl), k, kl);
        n += sizeof(kl) + kl;
        memcpy(out + n, &vl, sizeof(vl));
        memcpy(out + n + sizeof(vl), v, vl);
        n += sizeof(vl) + vl;
        (*keys)++;
    }
    ck_assert_int_eq(bs_eng_iter_status(it), 0);
    bs_eng_iter_destroy(it);
    *len = n;
    return out;
}

static void assert_same(struct bs_eng_db *a, uint64_t sa, struct bs_eng_db *b,
                        uint64_t sb)
{
    size_t la, lb;
    uint64_t ka, kb;
    char *da = dump(a, sa, &la, &ka);
    char *db_ = dump(b, sb, &lb, &kb);
    ck_assert_uint_eq(ka, kb);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(da, db_, la) == 0);
    free(da);
    free(db_);
}

static void assert_info_eq(const struct bs_eng_snap_info *a,
                           const struct bs_eng_snap_info *b)
{
    ck_assert_uint_eq(a->shard_id, b->shard_id);
    ck_assert_uint_eq(a->index, b->index);
    ck_assert_uint_eq(a->term, b->term);
    ck_assert_uint_eq(a->keys, b->keys);
    ck_assert_uint_eq(a->bytes, b->bytes);
    ck_assert_uint_eq(a->files, b->files);
}

struct two {
    char *dir;
    char *p1, *p2, *img;
    struct bs_eng_db *a, *b;
};

static void two_open(struct two *t)
{
    t->dir = fx_tmpdir("snap");
    t->p1 = fx_path(t->dir, "a");
    t->p2 = fx_path(t->dir, "b");
    t->img = fx_path(t->dir, "img");
    t->a = fx_open(t->p1);
    t->b = fx_open(t->p2);
}

static void two_close(struct two *t)
{
    bs_eng_db_close(t->a);
    bs_eng_db_close(t->b);
    free(t->p1);
    free(t->p2);
    free(t->img);
    fx_rm_rf(t->dir);
}

static int count_files(const char *dir, const char *suffix)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null | grep -c '%s$'", dir,
             suffix);
    FILE *p = popen(cmd, "r");
    int n = -1;
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

START_TEST(test_roundtrip)
{
    struct two t;
    two_open(&t);
    bs_eng__snap_file_bytes = 16 * 1024; /* several files */
    ck_assert_int_eq(bs_eng_db_shard_create(t.a, 3), 0);
    fill(t.a, 3, 3000, 1);
    /* Flushed and unflushed data alike: flush half way through. */
    rocksdb_column_family_handle_t *cf;
    ck_assert_int_eq(bs_eng__shard_acquire(t.a, 3, &cf), 0);
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    char *ferr = NULL;
    rocksdb_flush_cf(bs_eng__db_rocks(t.a), fo, cf, &ferr);
    ck_assert_ptr_null(ferr);
    rocksdb_flushoptions_destroy(fo);
    bs_eng__shard_release(t.a);
    fill(t.a, 3, 1000, 2);

    char err[BS_ENG_ERRMSG_SIZE] = "";
    struct bs_eng_snap_info info;
    int rc = bs_eng_snap_export(t.a, NULL, 3, 42, 7, t.img, &info, err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(info.shard_id, 3);
    ck_assert_uint_eq(info.index, 42);
    ck_assert_uint_eq(info.term, 7);
    ck_assert_uint_eq(info.keys, 3001);
    ck_assert_uint_gt(info.files, 2);
    ck_assert_int_eq(count_files(t.img, ".sst"), (int)info.files);
    ck_assert_uint_gt(info.bytes, 0);

    struct bs_eng_snap_info v;
    ck_assert_int_eq(bs_eng_snap_verify(t.img, &v, err), 0);
    assert_info_eq(&v, &info);

    /* The receiver has stale data of its own in that shard: replaced. */
    ck_assert_int_eq(bs_eng_db_shard_create(t.b, 3), 0);
    struct bs_eng_wb *wb = bs_eng_wb_create();
    bs_eng_wb_put(wb, t.b, 3, "stale", 5, "x", 1);
    bs_eng_wb_put(wb, t.b, 3, "k000001", 7, "old", 3);
    ck_assert_int_eq(bs_eng_db_write(t.b, wb, false), 0);
    bs_eng_wb_destroy(wb);

    memset(&v, 0, sizeof(v));
    rc = bs_eng_snap_ingest(t.b, 3, t.img, &v, err);
    ck_assert_msg(rc == 0, "%s", err);
    assert_info_eq(&v, &info);
    assert_same(t.a, 3, t.b, 3);

    /* Still identical after a restart, and the shard is writable. */
    bs_eng_db_close(t.b);
    t.b = fx_open(t.p2);
    assert_same(t.a, 3, t.b, 3);
    wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_wb_put(wb, t.b, 3, "k000001", 7, "new", 3), 0);
    ck_assert_int_eq(bs_eng_db_write(t.b, wb, false), 0);
    bs_eng_wb_destroy(wb);
    void *val;
    size_t vl;
    ck_assert_int_eq(bs_eng_get(t.b, NULL, 3, "k000001", 7, &val, &vl), 0);
    ck_assert_mem_eq(val, "new", 3);
    free(val);
    two_close(&t);
}
END_TEST

/* The image is the shard as seen by the snapshot, not as it is now. */
START_TEST(test_export_at_snapshot)
{
    struct two t;
    two_open(&t);
    ck_assert_int_eq(bs_eng_db_shard_create(t.a, 1), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(t.a, 2), 0);
    fill(t.a, 1, 100, 1);
    fill(t.a, 2, 100, 1); /* a copy to compare with */
    struct bs_eng_snap *s = bs_eng_snap_create(t.a);
    fill(t.a, 1, 150, 5); /* changes after the snapshot */

    char err[BS_ENG_ERRMSG_SIZE] = "";
    struct bs_eng_snap_info info;
    ck_assert_int_eq(bs_eng_snap_export(t.a, s, 1, 9, 2, t.img, &info, err), 0);
    bs_eng_snap_release(t.a, s);
    ck_assert_uint_eq(info.keys, 101);
    ck_assert_uint_eq(info.files, 1);
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 1, t.img, NULL, err), 0);
    assert_same(t.a, 2, t.b, 1);
    two_close(&t);
}
END_TEST

START_TEST(test_empty_shard)
{
    struct two t;
    two_open(&t);
    ck_assert_int_eq(bs_eng_db_shard_create(t.a, 4), 0);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    struct bs_eng_snap_info info;
    ck_assert_int_eq(bs_eng_snap_export(t.a, NULL, 4, 1, 1, t.img, &info, err),
                     0);
    ck_assert_uint_eq(info.files, 0);
    ck_assert_uint_eq(info.keys, 0);
    ck_assert_uint_eq(info.bytes, 0);
    ck_assert_int_eq(count_files(t.img, ".sst"), 0);
    ck_assert_int_eq(count_files(t.img, "MANIFEST"), 1);
    /* Ingesting it empties a shard that had data. */
    ck_assert_int_eq(bs_eng_db_shard_create(t.b, 4), 0);
    fill(t.b, 4, 10, 1);
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 4, t.img, NULL, err), 0);
    size_t len;
    uint64_t keys;
    char *d = dump(t.b, 4, &len, &keys);
    ck_assert_uint_eq(keys, 0);
    free(d);
    /* And creates a shard that did not exist. */
    ck_assert_int_eq(bs_eng_snap_ingest(t.a, 4, t.img, NULL, err), 0);
    ck_assert(bs_eng_db_shard_exists(t.a, 4));
    two_close(&t);
}
END_TEST

START_TEST(test_export_errors)
{
    struct two t;
    two_open(&t);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_snap_export(t.a, NULL, 5, 1, 1, t.img, NULL, err),
                     BS_ENOTFOUND);
    struct stat st;
    ck_assert_int_ne(stat(t.img, &st), 0); /* removed again */
    ck_assert_int_eq(bs_eng_db_shard_create(t.a, 5), 0);
    ck_assert_int_eq(mkdir(t.img, 0755), 0);
    ck_assert_int_eq(bs_eng_snap_export(t.a, NULL, 5, 1, 1, t.img, NULL, err),
                     BS_EEXIST);
    ck_assert_msg(strstr(err, "exists"), "%s", err);
    two_close(&t);
}
END_TEST

enum damage {
    FLIP_SST,     /* one byte of an SST changed */
    TRUNCATE_SST, /* an SST cut short */
    REMOVE_SST,   /* an SST missing */
    REMOVE_MANIFEST,
    FLIP_MANIFEST,
    TRUNCATE_MANIFEST,
    N_DAMAGE
};

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* A damaged image is refused with BS_ECORRUPT by verify and by ingest, and
 * the receiver's shard keeps its old data. */
START_TEST(test_damaged_image)
{
    struct two t;
    two_open(&t);
    bs_eng__snap_file_bytes = 16 * 1024;
    ck_assert_int_eq(bs_eng_db_shard_create(t.a, 6), 0);
    fill(t.a, 6, 1500, 3);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    struct bs_eng_snap_info info;
    ck_assert_int_eq(bs_eng_snap_export(t.a, NULL, 6, 5, 5, t.img, &info, err),
                     0);
    ck_assert_uint_gt(info.files, 1);
    ck_assert_int_eq(bs_eng_db_shard_create(t.b, 6), 0);
    fill(t.b, 6, 20, 9); /* the receiver's old state */
    ck_assert_int_eq(bs_eng_db_shard_create(t.b, 7), 0);
    fill(t.b, 7, 20, 9); /* a copy of it to compare with */

    char *sst = fx_path(t.img, "000002.sst");
    char *man = fx_path(t.img, "MANIFEST");
    switch (_i) {
    case FLIP_SST:
        flip_byte(sst, file_size(sst) / 2);
        break;
    case TRUNCATE_SST:
        ck_assert_int_eq(truncate(sst, file_size(sst) - 1), 0);
        break;
    case REMOVE_SST:
        ck_assert_int_eq(unlink(sst), 0);
        break;
    case REMOVE_MANIFEST:
        ck_assert_int_eq(unlink(man), 0);
        break;
    case FLIP_MANIFEST:
        flip_byte(man, 20); /* inside the index field */
        break;
    case TRUNCATE_MANIFEST:
        ck_assert_int_eq(truncate(man, file_size(man) - 20), 0);
        break;
    }
    err[0] = 0;
    ck_assert_int_eq(bs_eng_snap_verify(t.img, NULL, err), BS_ECORRUPT);
    ck_assert_msg(err[0] != 0, "no message");
    err[0] = 0;
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 6, t.img, NULL, err), BS_ECORRUPT);
    ck_assert_msg(strstr(err, "snapshot"), "%s", err);
    if (_i == FLIP_SST)
        ck_assert_msg(strstr(err, "000002.sst checksum"), "%s", err);
    assert_same(t.b, 6, t.b, 7);
    free(sst);
    free(man);
    two_close(&t);
}
END_TEST

START_TEST(test_wrong_shard_and_no_image)
{
    struct two t;
    two_open(&t);
    ck_assert_int_eq(bs_eng_db_shard_create(t.a, 1), 0);
    fill(t.a, 1, 10, 1);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 1, t.img, NULL, err),
                     BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_snap_verify(t.img, NULL, err), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_snap_export(t.a, NULL, 1, 3, 3, t.img, NULL, err),
                     0);
    ck_assert_int_eq(bs_eng_db_shard_create(t.b, 2), 0);
    fill(t.b, 2, 5, 4);
    ck_assert_int_eq(bs_eng_db_shard_create(t.b, 3), 0);
    fill(t.b, 3, 5, 4);
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 2, t.img, NULL, err), BS_EINVAL);
    ck_assert_msg(strstr(err, "shard 1"), "%s", err);
    assert_same(t.b, 2, t.b, 3);
    two_close(&t);
}
END_TEST


/* ------------------------------------------- crash-atomic install */

/* True if the db at path has a column family of that name (read from the
 * files, so the db must be closed). */
static bool has_cf(const char *path, const char *name)
{
    rocksdb_options_t *o = rocksdb_options_create();
    size_t n = 0;
    char *err = NULL;
    char **names = rocksdb_list_column_families(o, path, &n, &err);
    ck_assert_ptr_null(err);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found = found || strcmp(names[i], name) == 0;
    rocksdb_list_column_families_destroy(names, n);
    rocksdb_options_destroy(o);
    return found;
}

/* The value of key k in shard (malloc'd string), or NULL if absent. */
static char *get_str(struct bs_eng_db *db, uint64_t shard, const char *k)
{
    void *v = NULL;
    size_t n = 0;
    int rc = bs_eng_get(db, NULL, shard, k, strlen(k), &v, &n);
    if (rc == BS_ENOTFOUND)
        return NULL;
    ck_assert_int_eq(rc, 0);
    char *s = malloc(n + 1);
    memcpy(s, v, n);
    s[n] = '\0';
    free(v);
    return s;
}

static void expect_str(struct bs_eng_db *db, uint64_t shard, const char *k,
                       const char *want)
{
    char *got = get_str(db, shard, k);
    if (!want) {
        ck_assert_msg(got == NULL, "%s: %s", k, got);
        return;
    }
    ck_assert_msg(got != NULL, "%s: absent", k);
    ck_assert_str_eq(got, want);
    free(got);
}

static void put_str(struct bs_eng_db *db, uint64_t shard, const char *k,
                    const char *v)
{
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_wb_put(wb, db, shard, k, strlen(k), v, strlen(v)),
                     0);
    ck_assert_int_eq(bs_eng_db_write(db, wb, false), 0);
    bs_eng_wb_destroy(wb);
}

/* Receiver b: shard 8 with "old" data and a neighbour shard 9; an image of
 * shard 8 with "new" data exported from a into t->img. */
static void install_setup(struct two *t)
{
    two_open(t);
    ck_assert_int_eq(bs_eng_db_shard_create(t->a, 8), 0);
    fill(t->a, 8, 200, 1);
    put_str(t->a, 8, "who", "new");
    char err[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(
        bs_eng_snap_export(t->a, NULL, 8, 50, 3, t->img, NULL, err), 0);
    ck_assert_int_eq(bs_eng_db_shard_create(t->b, 8), 0);
    put_str(t->b, 8, "who", "old");
    put_str(t->b, 8, "only-old", "x");
    ck_assert_int_eq(bs_eng_db_shard_create(t->b, 9), 0);
    put_str(t->b, 9, "n", "nine");
}

static void expect_old(struct bs_eng_db *db)
{
    expect_str(db, 8, "who", "old");
    expect_str(db, 8, "only-old", "x");
    expect_str(db, 8, "k000001", NULL);
    expect_str(db, 9, "n", "nine");
}

static void expect_new(struct two *t)
{
    expect_str(t->b, 8, "who", "new");
    expect_str(t->b, 8, "only-old", NULL);
    expect_str(t->b, 9, "n", "nine");
    assert_same(t->a, 8, t->b, 8);
}

static void expect_list_8_9(struct bs_eng_db *db)
{
    uint64_t ids[4] = {0};
    ck_assert_uint_eq(bs_eng_db_shard_list(db, ids, 4), 2);
    ck_assert_uint_eq(ids[0], 8);
    ck_assert_uint_eq(ids[1], 9);
}

/* A crash after the image was prepared but before the switch was written:
 * the shard keeps its old data (it is what the raft log, written in the
 * same batch as the switch, still describes), and the open drops the
 * prepared CF. */
START_TEST(test_prepare_without_switch_survives_crash)
{
    struct two t;
    install_setup(&t);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    struct bs_eng_snap_info info;
    uint64_t gen = 0;
    int rc = bs_eng_snap_ingest_prepare(t.b, 8, t.img, &info, &gen, err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(gen, 1);
    ck_assert_uint_eq(info.index, 50);
    /* Before the switch the shard still reads and writes the old CF, and
     * is listed once. */
    expect_old(t.b);
    expect_list_8_9(t.b);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 0);
    put_str(t.b, 8, "late", "write");
    bs_eng_db_close(t.b); /* the crash: neither committed nor aborted */
    ck_assert(has_cf(t.p2, "s8.g1"));

    t.b = fx_open(t.p2);
    expect_old(t.b);
    expect_str(t.b, 8, "late", "write");
    expect_list_8_9(t.b);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 0);
    /* The prepared generation is gone, and a new install works. */
    bs_eng_db_close(t.b);
    ck_assert(!has_cf(t.p2, "s8.g1"));
    ck_assert(has_cf(t.p2, "s8"));
    t.b = fx_open(t.p2);
    fx_rm_rf(strdup(t.img));
    ck_assert_int_eq(bs_eng_snap_export(t.a, NULL, 8, 50, 3, t.img, NULL, err),
                     0);
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 8, t.img, NULL, err), 0);
    expect_new(&t);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 1);
    two_close(&t);
}
END_TEST

/* The switch written in the same batch as other records (the store's raft
 * log reset), then a crash before committed: the open takes the new
 * generation, drops the old CF, and the other records are there too. */
START_TEST(test_switch_written_survives_crash)
{
    struct two t;
    install_setup(&t);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    uint64_t gen = 0;
    ck_assert_int_eq(bs_eng_snap_ingest_prepare(t.b, 8, t.img, NULL, &gen, err),
                     0);
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_wb_switch_generation(wb, t.b, 8, gen), 0);
    ck_assert_int_eq(bs_eng_wb_put(wb, t.b, 9, "with", 4, "switch", 6), 0);
    ck_assert_int_eq(bs_eng_db_write(t.b, wb, true), 0);
    bs_eng_wb_destroy(wb);
    bs_eng_db_close(t.b); /* crash before bs_eng_db_generation_committed */
    ck_assert(has_cf(t.p2, "s8"));
    ck_assert(has_cf(t.p2, "s8.g1"));

    t.b = fx_open(t.p2);
    expect_new(&t);
    expect_str(t.b, 9, "with", "switch");
    expect_list_8_9(t.b);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 1);
    bs_eng_db_close(t.b);
    ck_assert(!has_cf(t.p2, "s8"));
    ck_assert(has_cf(t.p2, "s8.g1"));
    t.b = fx_open(t.p2);
    expect_new(&t);
    two_close(&t);
}
END_TEST

/* The normal path: prepare, switch, write, committed. Reads move at
 * committed, the old CF goes at once, and the generation survives a
 * reopen; a second install moves to generation 2. */
START_TEST(test_switch_committed)
{
    struct two t;
    install_setup(&t);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    uint64_t gen = 0;
    ck_assert_int_eq(bs_eng_snap_ingest_prepare(t.b, 8, t.img, NULL, &gen, err),
                     0);
    /* A stale iterator on the old CF keeps reading the old data. */
    struct bs_eng_iter *it;
    ck_assert_int_eq(bs_eng_iter_create(t.b, NULL, 8, NULL, 0, NULL, 0, &it),
                     0);
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_wb_switch_generation(wb, t.b, 8, gen + 1),
                     BS_EINVAL);
    ck_assert_int_eq(bs_eng_wb_switch_generation(wb, t.b, 9, gen), BS_EINVAL);
    ck_assert_uint_eq(bs_eng_wb_count(wb), 0);
    ck_assert_int_eq(bs_eng_wb_switch_generation(wb, t.b, 8, gen), 0);
    ck_assert_int_eq(bs_eng_db_write(t.b, wb, true), 0);
    /* Written but not committed: still the old CF in memory. */
    expect_old(t.b);
    ck_assert_int_eq(bs_eng_db_generation_committed(t.b, 8, gen + 1),
                     BS_EINVAL);
    ck_assert_int_eq(bs_eng_db_generation_committed(t.b, 8, gen), 0);
    ck_assert_int_eq(bs_eng_db_generation_committed(t.b, 8, gen), BS_EINVAL);
    expect_new(&t);
    expect_list_8_9(t.b);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 1);
    bs_eng_iter_seek(it, "who", 3);
    size_t vl;
    ck_assert(bs_eng_iter_valid(it));
    ck_assert_mem_eq(bs_eng_iter_value(it, &vl), "old", 3);
    bs_eng_iter_destroy(it);
    /* Writes go to the new generation. */
    put_str(t.b, 8, "after", "switch");
    bs_eng_db_close(t.b);
    ck_assert(!has_cf(t.p2, "s8"));
    ck_assert(has_cf(t.p2, "s8.g1"));

    t.b = fx_open(t.p2);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 1);
    expect_str(t.b, 8, "after", "switch");
    expect_str(t.b, 8, "who", "new");
    /* A second install: generation 2, from "s8.g1" to "s8.g2". */
    fx_rm_rf(strdup(t.img));
    put_str(t.a, 8, "who", "newer");
    ck_assert_int_eq(bs_eng_snap_export(t.a, NULL, 8, 60, 3, t.img, NULL, err),
                     0);
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 8, t.img, NULL, err), 0);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 2);
    expect_str(t.b, 8, "who", "newer");
    expect_str(t.b, 8, "after", NULL);
    assert_same(t.a, 8, t.b, 8);
    bs_eng_wb_destroy(wb);
    bs_eng_db_close(t.b);
    ck_assert(!has_cf(t.p2, "s8.g1"));
    ck_assert(has_cf(t.p2, "s8.g2"));
    t.b = fx_open(t.p2);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 2);
    assert_same(t.a, 8, t.b, 8);
    two_close(&t);
}
END_TEST

/* The batch was not written: abort drops the prepared CF and the shard
 * keeps its old data, before and after a reopen; the next prepare reuses
 * the generation number. */
START_TEST(test_abort)
{
    struct two t;
    install_setup(&t);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    uint64_t gen = 0;
    ck_assert_int_eq(bs_eng_snap_ingest_prepare(t.b, 8, t.img, NULL, &gen, err),
                     0);
    ck_assert_int_eq(bs_eng_db_generation_abort(t.b, 8, gen + 1), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_db_generation_abort(t.b, 8, gen), 0);
    ck_assert_int_eq(bs_eng_db_generation_abort(t.b, 8, gen), BS_ENOTFOUND);
    expect_old(t.b);
    expect_list_8_9(t.b);
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_wb_switch_generation(wb, t.b, 8, gen), BS_EINVAL);
    bs_eng_wb_destroy(wb);
    bs_eng_db_close(t.b);
    ck_assert(!has_cf(t.p2, "s8.g1"));
    t.b = fx_open(t.p2);
    expect_old(t.b);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 0);
    two_close(&t);
}
END_TEST

/* A prepare on a shard that does not exist creates nothing visible until
 * the switch; a prepare over an earlier unfinished one replaces it. */
START_TEST(test_prepare_absent_and_twice)
{
    struct two t;
    install_setup(&t);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    uint64_t gen = 0;
    /* t.a has no shard 8 any more. */
    ck_assert_int_eq(bs_eng_db_shard_drop(t.a, 8), 0);
    ck_assert_int_eq(bs_eng_snap_ingest_prepare(t.a, 8, t.img, NULL, &gen, err),
                     0);
    ck_assert_uint_eq(gen, 1);
    ck_assert(!bs_eng_db_shard_exists(t.a, 8));
    ck_assert_uint_eq(bs_eng_db_shard_list(t.a, NULL, 0), 0);
    ck_assert_int_eq(bs_eng_db_generation_abort(t.a, 8, gen), 0);
    ck_assert(!bs_eng_db_shard_exists(t.a, 8));

    /* Prepared twice (the first attempt's image is reused: the files
     * were moved, so export it again). */
    fx_rm_rf(strdup(t.img));
    ck_assert_int_eq(bs_eng_snap_export(t.b, NULL, 9, 7, 1, t.img, NULL, err),
                     0);
    char *img2 = fx_path(t.dir, "img2");
    ck_assert_int_eq(bs_eng_snap_export(t.b, NULL, 9, 8, 1, img2, NULL, err),
                     0);
    ck_assert_int_eq(bs_eng_snap_ingest_prepare(t.a, 9, t.img, NULL, &gen, err),
                     0);
    ck_assert_int_eq(bs_eng_snap_ingest_prepare(t.a, 9, img2, NULL, &gen, err),
                     0);
    ck_assert_uint_eq(gen, 1);
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_wb_switch_generation(wb, t.a, 9, gen), 0);
    ck_assert_int_eq(bs_eng_db_write(t.a, wb, true), 0);
    bs_eng_wb_destroy(wb);
    ck_assert_int_eq(bs_eng_db_generation_committed(t.a, 9, gen), 0);
    ck_assert(bs_eng_db_shard_exists(t.a, 9));
    assert_same(t.a, 9, t.b, 9);
    fx_rm_rf(img2);
    two_close(&t);
}
END_TEST

/* A dropped shard keeps its generation: created again, it gets a CF a
 * reopen takes for live (not garbage). */
START_TEST(test_drop_create_keeps_generation)
{
    struct two t;
    install_setup(&t);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 8, t.img, NULL, err), 0);
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 1);
    ck_assert_int_eq(bs_eng_db_shard_drop(t.b, 8), 0);
    ck_assert(!bs_eng_db_shard_exists(t.b, 8));
    ck_assert_int_eq(bs_eng_db_shard_drop(t.b, 8), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_db_shard_create(t.b, 8), 0);
    put_str(t.b, 8, "again", "yes");
    bs_eng_db_close(t.b);
    t.b = fx_open(t.p2);
    ck_assert(bs_eng_db_shard_exists(t.b, 8));
    ck_assert_uint_eq(bs_eng_db_shard_generation(t.b, 8), 1);
    expect_str(t.b, 8, "again", "yes");
    expect_str(t.b, 8, "who", NULL);
    two_close(&t);
}
END_TEST

/* With fsync on (the production setting), committed syncs the WAL before
 * it drops the old generation. */
START_TEST(test_ingest_synced_db)
{
    struct two t;
    install_setup(&t);
    bs_eng_db_close(t.b);
    char err[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_db_open(t.p2, NULL, &t.b, err), 0);
    ck_assert_int_eq(bs_eng_snap_ingest(t.b, 8, t.img, NULL, err), 0);
    expect_new(&t);
    bs_eng_db_close(t.b);
    ck_assert(!has_cf(t.p2, "s8"));
    ck_assert(has_cf(t.p2, "s8.g1"));
    t.b = fx_open(t.p2);
    expect_new(&t);
    two_close(&t);
}
END_TEST

static Suite *snap_suite(void)
{
    Suite *s = suite_create("engine_snap");
    TCase *tc = tcase_create("snap");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_export_at_snapshot);
    tcase_add_test(tc, test_empty_shard);
    tcase_add_test(tc, test_export_errors);
    tcase_add_loop_test(tc, test_damaged_image, 0, N_DAMAGE);
    tcase_add_test(tc, test_wrong_shard_and_no_image);
    tcase_add_test(tc, test_prepare_without_switch_survives_crash);
    tcase_add_test(tc, test_switch_written_survives_crash);
    tcase_add_test(tc, test_switch_committed);
    tcase_add_test(tc, test_abort);
    tcase_add_test(tc, test_prepare_absent_and_twice);
    tcase_add_test(tc, test_drop_create_keeps_generation);
    tcase_add_test(tc, test_ingest_synced_db);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fx_run(snap_suite());
}
