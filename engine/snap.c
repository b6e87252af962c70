/*
 * snap.c - shard snapshots as SST files (DESIGN.md section 3): export a
 * shard CF at a RocksDB snapshot with rocksdb_sstfilewriter, verify an
 * image, and ingest it into a fresh CF on the receiver.
 *
 * An image is a directory:
 *
 *   000001.sst 000002.sst ...   the CF's keys in order, split every
 *                               bs_eng__snap_file_bytes (64 MiB); an empty
 *                               shard has no SST file at all
 *   MANIFEST                    written last (tmp + fsync + rename), so an
 *                               image without one is incomplete
 *
 * MANIFEST, all integers little-endian:
 *
 *   magic "BSNP" (4) | version (4) = 1 | shard_id (8) | index (8)
 *   | term (8) | keys (8) | bytes (8) | files (4)
 *   | files x { size (8) | keys (8) | crc32c of the file (4) }
 *   | crc32c of everything before (4)
 *
 * Files are named by their position, so the manifest holds no names. The
 * receiver verifies the manifest and every file's size and checksum before
 * it touches the db; the image travels between nodes (rpc/ streams it in
 * chunks), so it is treated like anything read from the network.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_int.h"

uint64_t bs_eng__snap_file_bytes = 64ull * 1024 * 1024;

#define MAGIC            0x504e5342u /* "BSNP" little-endian */
#define MANIFEST_VERSION 1
#define HDR_LEN          (4 + 4 + 8 * 5 + 4)
#define FILE_REC_LEN     (8 + 8 + 4)
#define MAX_FILES        (1u << 20)

struct file_rec {
    uint64_t size;
    uint64_t keys;
    uint32_t crc;
};

/* dir + "/" + name, malloc'd; NULL on out-of-memory. */
static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *sst_path(const char *dir, uint32_t i)
{
    char name[32];
    snprintf(name, sizeof(name), "%06" PRIu32 ".sst", i + 1);
    return path_join(dir, name);
}

static int sys_err(char *errmsg, const char *what, const char *path)
{
    int e = errno;
    return bs_eng__seterr(errmsg, BS_EIO, "%s %s: %s", what, path, strerror(e));
}

/* Size and CRC32C of a whole file. */
static int file_crc(const char *path, uint64_t *size, uint32_t *crc,
                    char *errmsg)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? bs_eng__seterr(errmsg, BS_ECORRUPT,
                                                "snapshot: %s is missing", path)
                               : sys_err(errmsg, "snapshot: open", path);
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
    }
    uint64_t total = 0;
    uint32_t c = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = sys_err(errmsg, "snapshot: read", path);
            break;
        }
        if (r == 0)
            break;
        c = bs_eng_crc32c(c, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    close(fd);
    *size = total;
    *crc = c;
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static int write_manifest(const char *dir, const struct bs_eng_snap_info *in,
                          const struct file_rec *files, char *errmsg)
{
    size_t n = HDR_LEN + (size_t)in->files * FILE_REC_LEN + 4;
    uint8_t *m = malloc(n);
    char *tmp = path_join(dir, "MANIFEST.tmp");
    char *fin = path_join(dir, "MANIFEST");
    int rc = 0, fd = -1;
    if (!m || !tmp || !fin) {
        rc = bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
        goto out;
    }
    uint8_t *p = m;
    bs_eng__put_u32le(p, MAGIC);
    bs_eng__put_u32le(p + 4, MANIFEST_VERSION);
    bs_eng__put_u64le(p + 8, in->shard_id);
    bs_eng__put_u64le(p + 16, in->index);
    bs_eng__put_u64le(p + 24, in->term);
    bs_eng__put_u64le(p + 32, in->keys);
    bs_eng__put_u64le(p + 40, in->bytes);
    bs_eng__put_u32le(p + 48, in->files);
    p += HDR_LEN;
    for (uint32_t i = 0; i < in->files; i++, p += FILE_REC_LEN) {
        bs_eng__put_u64le(p, files[i].size);
        bs_eng__put_u64le(p + 8, files[i].keys);
        bs_eng__put_u32le(p + 16, files[i].crc);
    }
    bs_eng__put_u32le(p, bs_eng_crc32c(0, m, n - 4));

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = sys_err(errmsg, "snapshot: create", tmp);
        goto out;
    }
    if (write_all(fd, m, n) != 0 || fsync(fd) != 0) {
        rc = sys_err(errmsg, "snapshot: write", tmp);
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, fin) != 0) {
        rc = sys_err(errmsg, "snapshot: rename", tmp);
        goto out;
    }
    if (fsync_dir(dir) != 0)
        rc = sys_err(errmsg, "snapshot: fsync", dir);
out:
    if (fd >= 0)
        close(fd);
    free(m);
    free(tmp);
    free(fin);
    return rc;
}

/* Removes what a failed export left behind (best effort). */
static void remove_image(const char *dir, uint32_t nfiles)
{
    for (uint32_t i = 0; i < nfiles; i++) {
        char *p = sst_path(dir, i);
        if (p)
            unlink(p);
        free(p);
    }
    char *t = path_join(dir, "MANIFEST.tmp");
    if (t)
        unlink(t);
    free(t);
    rmdir(dir);
}

/* ---------------------------------------------------------------- export */

int bs_eng_snap_export(struct bs_eng_db *db, const struct bs_eng_snap *snap,
                       uint64_t shard_id, uint64_t index, uint64_t term,
                       const char *dir, struct bs_eng_snap_info *info,
                       char *errmsg)
{
    struct bs_eng_snap_info in = {
        .shard_id = shard_id, .index = index, .term = term};
    struct file_rec *files = NULL;
    uint32_t cap_files = 0;
    uint32_t opened = 0; /* files created so far, for cleanup */
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_iterator_t *it = NULL;
    rocksdb_envoptions_t *env = NULL;
    rocksdb_sstfilewriter_t *w = NULL;
    char *path = NULL;
    char *err = NULL;
    int rc = 0;

    if (mkdir(dir, 0755) != 0)
        return errno == EEXIST
                   ? bs_eng__seterr(errmsg, BS_EEXIST,
                                    "snapshot export: %s already exists", dir)
                   : sys_err(errmsg, "snapshot export: mkdir", dir);

    ro = rocksdb_readoptions_create();
    env = rocksdb_envoptions_create();
    if (!ro || !env) {
        rc = bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
        goto out;
    }
    rocksdb_readoptions_set_fill_cache(ro, 0); /* a bulk scan */
    if (snap)
        rocksdb_readoptions_set_snapshot(ro, snap->s);
    rocksdb_column_family_handle_t *cf;
    if ((rc = bs_eng__shard_acquire(db, shard_id, &cf)) != 0) {
        bs_eng__seterr(errmsg, rc, "snapshot export: no shard %" PRIu64,
                       shard_id);
        goto out;
    }
    it = rocksdb_create_iterator_cf(bs_eng__db_rocks(db), ro, cf);
    bs_eng__shard_release(db);

    uint64_t file_keys = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (!w) {
            if (in.files == cap_files) {
                uint32_t nc = cap_files ? 2 * cap_files : 4;
                if (nc > MAX_FILES) {
                    rc = bs_eng__seterr(errmsg, BS_ETOOBIG,
                                        "snapshot: more than %u files",
                                        MAX_FILES);
                    goto out;
                }
                struct file_rec *nf = realloc(files, nc * sizeof(*nf));
                if (!nf) {
                    rc = bs_eng__seterr(errmsg, BS_ENOMEM,
                                        "snapshot: out of memory");
                    goto out;
                }
                files = nf;
                cap_files = nc;
            }
            free(path);
            path = sst_path(dir, in.files);
            w = rocksdb_sstfilewriter_create(env, bs_eng__db_shard_options(db));
            if (!path || !w) {
                rc = bs_eng__seterr(errmsg, BS_ENOMEM,
                                    "snapshot: out of memory");
                goto out;
            }
            opened = in.files + 1;
            rocksdb_sstfilewriter_open(w, path, &err);
            if (err) {
                rc = bs_eng__fail(errmsg, err, "snapshot: sst open");
                goto out;
            }
            file_keys = 0;
        }
        rocksdb_sstfilewriter_put(w, k, klen, v, vlen, &err);
        if (err) {
            rc = bs_eng__fail(errmsg, err, "snapshot: sst put");
            goto out;
        }
        file_keys++;
        uint64_t fsize = 0;
        rocksdb_sstfilewriter_file_size(w, &fsize);
        if (fsize >= bs_eng__snap_file_bytes) {
            rocksdb_sstfilewriter_finish(w, &err);
            rocksdb_sstfilewriter_destroy(w);
            w = NULL;
            if (err) {
                rc = bs_eng__fail(errmsg, err, "snapshot: sst finish");
                goto out;
            }
            files[in.files].keys = file_keys;
            in.keys += file_keys;
            in.files++;
        }
    }
    rocksdb_iter_get_error(it, &err);
    if (err) {
        rc = bs_eng__fail(errmsg, err, "snapshot: scan");
        goto out;
    }
    if (w) {
        rocksdb_sstfilewriter_finish(w, &err);
        rocksdb_sstfilewriter_destroy(w);
        w = NULL;
        if (err) {
            rc = bs_eng__fail(errmsg, err, "snapshot: sst finish");
            goto out;
        }
        files[in.files].keys = file_keys;
        in.keys += file_keys;
        in.files++;
    }
    for (uint32_t i = 0; i < in.files; i++) {
        free(path);
        if (!(path = sst_path(dir, i))) {
            rc = bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
            goto out;
        }
        if ((rc = file_crc(path, &files[i].size, &files[i].crc, errmsg)) != 0)
            goto out;
        in.bytes += files[i].size;
    }
    rc = write_manifest(dir, &in, files, errmsg);

out:
    if (w)
        rocksdb_sstfilewriter_destroy(w);
    if (it)
        rocksdb_iter_destroy(it);
    if (ro)
        rocksdb_readoptions_destroy(ro);
    if (env)
        rocksdb_envoptions_destroy(env);
    free(path);
    free(files);
    if (rc != 0)
        remove_image(dir, opened);
    else if (info)
        *info = in;
    return rc;
}

/* ---------------------------------------------------------------- verify */

static int read_manifest(const char *dir, uint8_t **out, size_t *len,
                         char *errmsg)
{
    char *p = path_join(dir, "MANIFEST");
    if (!p)
        return bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
    int rc = 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        struct stat st;
        if (errno == ENOENT && stat(dir, &st) != 0)
            rc = bs_eng__seterr(errmsg, BS_ENOTFOUND,
                                "snapshot: no image at %s", dir);
        else if (errno == ENOENT)
            rc =
                bs_eng__seterr(errmsg, BS_ECORRUPT,
                               "snapshot: %s is missing (incomplete image)", p);
        else
            rc = sys_err(errmsg, "snapshot: open", p);
        free(p);
        return rc;
    }
    struct stat st;
    size_t max = HDR_LEN + (size_t)MAX_FILES * FILE_REC_LEN + 4;
    if (fstat(fd, &st) != 0) {
        rc = sys_err(errmsg, "snapshot: stat", p);
    } else if ((uint64_t)st.st_size < HDR_LEN + 4 ||
               (uint64_t)st.st_size > max) {
        rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                            "snapshot: %s has an impossible size (%lld)", p,
                            (long long)st.st_size);
    } else {
        size_t n = (size_t)st.st_size;
        uint8_t *m = malloc(n);
        size_t got = 0;
        if (!m)
            rc = bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
        while (rc == 0 && got < n) {
            ssize_t r = read(fd, m + got, n - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                rc = sys_err(errmsg, "snapshot: read", p);
            else if (r == 0)
                rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                                    "snapshot: %s shrank while read", p);
            else
                got += (size_t)r;
        }
        if (rc == 0) {
            *out = m;
            *len = n;
        } else {
            free(m);
        }
    }
    close(fd);
    free(p);
    return rc;
}

/* Checks the image; on success *files (malloc'd) holds its file records. */
static int verify(const char *dir, struct bs_eng_snap_info *info,
                  struct file_rec **files_out, char *errmsg)
{
    uint8_t *m = NULL;
    size_t n = 0;
    int rc = read_manifest(dir, &m, &n, errmsg);
    if (rc != 0)
        return rc;
    struct bs_eng_snap_info in;
    struct file_rec *files = NULL;
    uint64_t keys = 0, bytes = 0;
    if (bs_eng__get_u32le(m + n - 4) != bs_eng_crc32c(0, m, n - 4)) {
        rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                            "snapshot: MANIFEST checksum mismatch");
        goto out;
    }
    if (bs_eng__get_u32le(m) != MAGIC ||
        bs_eng__get_u32le(m + 4) != MANIFEST_VERSION) {
        rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                            "snapshot: MANIFEST has an unknown format");
        goto out;
    }
    in.shard_id = bs_eng__get_u64le(m + 8);
    in.index = bs_eng__get_u64le(m + 16);
    in.term = bs_eng__get_u64le(m + 24);
    in.keys = bs_eng__get_u64le(m + 32);
    in.bytes = bs_eng__get_u64le(m + 40);
    in.files = bs_eng__get_u32le(m + 48);
    if (in.files > MAX_FILES ||
        n != HDR_LEN + (size_t)in.files * FILE_REC_LEN + 4) {
        rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                            "snapshot: MANIFEST length does not match its "
                            "file count");
        goto out;
    }
    files = calloc(in.files ? in.files : 1, sizeof(*files));
    if (!files) {
        rc = bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
        goto out;
    }
    const uint8_t *p = m + HDR_LEN;
    for (uint32_t i = 0; i < in.files; i++, p += FILE_REC_LEN) {
        files[i].size = bs_eng__get_u64le(p);
        files[i].keys = bs_eng__get_u64le(p + 8);
        files[i].crc = bs_eng__get_u32le(p + 16);
        keys += files[i].keys;
        bytes += files[i].size;
    }
    if (keys != in.keys || bytes != in.bytes) {
        rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                            "snapshot: MANIFEST totals do not add up");
        goto out;
    }
    for (uint32_t i = 0; i < in.files; i++) {
        char *path = sst_path(dir, i);
        uint64_t size;
        uint32_t crc;
        if (!path) {
            rc = bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
            goto out;
        }
        rc = file_crc(path, &size, &crc, errmsg);
        if (rc == 0 && size != files[i].size)
            rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                                "snapshot: %s has %" PRIu64
                                " bytes, the manifest says %" PRIu64,
                                path, size, files[i].size);
        else if (rc == 0 && crc != files[i].crc)
            rc = bs_eng__seterr(errmsg, BS_ECORRUPT,
                                "snapshot: %s checksum mismatch", path);
        free(path);
        if (rc != 0)
            goto out;
    }
    if (info)
        *info = in;
out:
    free(m);
    if (rc == 0 && files_out)
        *files_out = files;
    else
        free(files);
    return rc;
}

int bs_eng_snap_verify(const char *dir, struct bs_eng_snap_info *info,
                       char *errmsg)
{
    return verify(dir, info, NULL, errmsg);
}

/* ---------------------------------------------------------------- ingest */

/*
 * Two phases (engine.h, "shard snapshots"): the image goes into a new CF,
 * the next generation of the shard, while the live CF keeps serving; the
 * caller then switches generations in a write batch of its own, so that
 * the data changes atomically with whatever else that batch holds (the
 * store's raft log reset). Nothing done here is visible after a crash
 * until the switch is written: the next open drops the prepared CF.
 */
int bs_eng_snap_ingest_prepare(struct bs_eng_db *db, uint64_t shard_id,
                               const char *dir, struct bs_eng_snap_info *info,
                               uint64_t *gen, char *errmsg)
{
    struct bs_eng_snap_info in;
    struct file_rec *files = NULL;
    char **paths = NULL;
    rocksdb_ingestexternalfileoptions_t *io = NULL;
    uint64_t g = 0;
    bool prepared = false;
    int rc = verify(dir, &in, &files, errmsg);
    if (rc != 0)
        return rc;
    if (in.shard_id != shard_id) {
        rc = bs_eng__seterr(errmsg, BS_EINVAL,
                            "snapshot: image of shard %" PRIu64
                            " offered to shard %" PRIu64,
                            in.shard_id, shard_id);
        goto out;
    }
    paths = calloc(in.files ? in.files : 1, sizeof(*paths));
    io = rocksdb_ingestexternalfileoptions_create();
    if (!paths || !io) {
        rc = bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < in.files; i++) {
        if (!(paths[i] = sst_path(dir, i))) {
            rc = bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
            goto out;
        }
    }
    /* Hard-link the files in (RocksDB copies if it cannot link); they
     * leave dir. */
    rocksdb_ingestexternalfileoptions_set_move_files(io, 1);

    if ((rc = bs_eng__shard_prepare(db, shard_id, &g)) != 0) {
        bs_eng__seterr(errmsg, rc, "snapshot ingest: %s", bs_eng_db_errmsg(db));
        goto out;
    }
    prepared = true;
    if (in.files > 0) {
        rocksdb_column_family_handle_t *cf;
        char *err = NULL;
        if ((rc = bs_eng__shard_acquire_prepared(db, shard_id, g, &cf)) != 0) {
            bs_eng__seterr(errmsg, rc,
                           "snapshot ingest: shard %" PRIu64
                           " dropped meanwhile",
                           shard_id);
            goto out;
        }
        rocksdb_ingest_external_file_cf(bs_eng__db_rocks(db), cf,
                                        (const char *const *)paths, in.files,
                                        io, &err);
        bs_eng__shard_release(db);
        if (err) {
            rc = bs_eng__fail(errmsg, err, "snapshot ingest");
            goto out;
        }
    }
    if (info)
        *info = in;
    *gen = g;
out:
    if (rc != 0 && prepared)
        (void)bs_eng_db_generation_abort(db, shard_id, g);
    if (paths)
        for (uint32_t i = 0; i < in.files; i++)
            free(paths[i]);
    free(paths);
    free(files);
    if (io)
        rocksdb_ingestexternalfileoptions_destroy(io);
    return rc;
}

int bs_eng_snap_ingest(struct bs_eng_db *db, uint64_t shard_id, const char *dir,
                       struct bs_eng_snap_info *info, char *errmsg)
{
    uint64_t gen;
    int rc = bs_eng_snap_ingest_prepare(db, shard_id, dir, info, &gen, errmsg);
    if (rc != 0)
        return rc;
    struct bs_eng_wb *wb = bs_eng_wb_create();
    if (!wb) {
        (void)bs_eng_db_generation_abort(db, shard_id, gen);
        return bs_eng__seterr(errmsg, BS_ENOMEM, "snapshot: out of memory");
    }
    if ((rc = bs_eng_wb_switch_generation(wb, db, shard_id, gen)) == 0 &&
        (rc = bs_eng_db_write(db, wb, true)) == 0) {
        bs_eng_wb_destroy(wb);
        rc = bs_eng_db_generation_committed(db, shard_id, gen);
        if (rc != 0)
            bs_eng__seterr(errmsg, rc, "snapshot ingest: %s",
                           bs_eng_db_errmsg(db));
        return rc;
    }
    bs_eng_wb_destroy(wb);
    bs_eng__seterr(errmsg, rc, "snapshot ingest: %s", bs_eng_db_errmsg(db));
    (void)bs_eng_db_generation_abort(db, shard_id, gen);
    return rc;
}
