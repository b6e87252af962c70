/*
 * raftlog.c - the Raft log and hard state of one group over RocksDB: the
 * engine's implementation of the core's storage interface
 * (struct bs_raft_storage_ops in raft.h), with the same semantics as
 * engine/raft/mem_storage.c.
 *
 * On disk (DESIGN.md section 3):
 *
 *   raftlog   key  shard_id (8B BE) . index (8B BE)
 *             val  version (1) = 1 | type (1) | term (8 LE) | index (8 LE)
 *                  | len (4 LE) | data (len) | crc32c (4 LE) of all before
 *   raftstate key  shard_id (8B BE)
 *             val  version (1) = 1 | term | vote | commit | trunc_index
 *                  | trunc_term (8 LE each) | crc32c (4 LE) of all before
 *
 * Big-endian keys keep each group's entries contiguous and in index order.
 * The index is repeated in the value so that a record stored under the
 * wrong key is caught, and the checksum catches everything else: a record
 * that does not decode is answered with BS_ECORRUPT (naming the shard and
 * the index in the log's errmsg), never with a crash.
 *
 * The truncated state (trunc_index, trunc_term) is the last entry removed
 * by compaction or covered by an installed snapshot; it plays the part of
 * mem_storage's dummy entry:
 *
 *   first_index = trunc_index + 1,  term(trunc_index) = trunc_term,
 *   entries [first_index, last_index] are stored without gaps.
 *
 * In memory the log keeps the hard state, the truncated state, last index
 * and term, the size of every stored entry (for bs_eng_log_bytes, so that
 * compaction by size needs no reads), and a tail cache: copies of the most
 * recent entries, contiguous and ending at last_index, bounded in bytes.
 * The Raft core mostly reads entries it appended moments ago (to send them
 * to followers and to apply them), so the cache answers nearly every read.
 *
 * Writes are staged in the caller's batch (group commit) and the in-memory
 * view moves at once. Staging never fails halfway: memory is reserved
 * before the first record is added to the batch.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define ENT_VERSION   1
#define ENT_HDR       (1 + 1 + 8 + 8 + 4)
#define ENT_OVERHEAD  (ENT_HDR + 4)
#define STATE_VERSION 1
#define STATE_LEN     (1 + 5 * 8 + 4)
#define KEY_LEN       16

/* Per-entry sizes of [first_index, last_index]: a sliding array, live
 * elements v[off, off + n). */
struct sizes {
    uint64_t *v;
    size_t off, n, cap;
};

/* Tail cache: entries [first, first + n) in v[off, off + n), owning their
 * data; always ends at the log's last index when n > 0. */
struct tail_cache {
    struct bs_raft_entry *v;
    size_t off, n, cap;
    uint64_t first;
    uint64_t bytes; /* sum of bs_raft_entry_size */
    uint64_t limit;
};

struct bs_eng_log {
    struct bs_eng_db *db;
    uint64_t shard_id;
    struct bs_raft_hard_state hs;
    struct bs_raft_conf_state cs;
    uint64_t trunc_index, trunc_term;
    uint64_t last_index, last_term;
    bool have_snap;
    struct bs_raft_snapshot_meta snap;
    struct sizes sizes;
    uint64_t bytes;
    struct tail_cache cache;
    uint8_t *buf; /* encoding scratch */
    size_t buf_cap;
    char errmsg[BS_ENG_ERRMSG_SIZE];
};

/* ------------------------------------------------------------- codec */

static void log_key(uint8_t *k, uint64_t shard_id, uint64_t index)
{
    bs_eng__put_u64be(k, shard_id);
    bs_eng__put_u64be(k + 8, index);
}

/* A key past every index of shard_id: its prefix followed by 0xff * 8 and
 * one more byte (17 bytes). */
static void log_end_key(uint8_t *k, uint64_t shard_id)
{
    bs_eng__put_u64be(k, shard_id);
    memset(k + 8, 0xff, 8);
    k[16] = 0;
}

static size_t ent_enc_size(const struct bs_raft_entry *e)
{
    return ENT_OVERHEAD + (size_t)e->len;
}

static void ent_encode(uint8_t *p, const struct bs_raft_entry *e)
{
    p[0] = ENT_VERSION;
    p[1] = e->type;
    bs_eng__put_u64le(p + 2, e->term);
    bs_eng__put_u64le(p + 10, e->index);
    bs_eng__put_u32le(p + 18, e->len);
    if (e->len)
        memcpy(p + ENT_HDR, e->data, e->len);
    size_t n = ENT_HDR + e->len;
    bs_eng__put_u32le(p + n, bs_eng_crc32c(0, p, n));
}

/* Decodes the record stored under index; e->data points into p. */
static int ent_decode(struct bs_eng_log *log, uint64_t index, const uint8_t *p,
                      size_t n, struct bs_raft_entry *e)
{
    const char *why = NULL;
    if (n < ENT_OVERHEAD)
        why = "record too short";
    else if (bs_eng__get_u32le(p + n - 4) != bs_eng_crc32c(0, p, n - 4))
        why = "checksum mismatch";
    else if (p[0] != ENT_VERSION)
        why = "unknown record version";
    else if (bs_eng__get_u32le(p + 18) != n - ENT_OVERHEAD)
        why = "length mismatch";
    else if (bs_eng__get_u64le(p + 10) != index)
        why = "record stored under another index";
    if (why)
        return bs_eng__seterr(log->errmsg, BS_ECORRUPT,
                              "raftlog shard=%" PRIu64 " index=%" PRIu64 ": %s",
                              log->shard_id, index, why);
    e->type = p[1];
    e->term = bs_eng__get_u64le(p + 2);
    e->index = index;
    e->len = (uint32_t)(n - ENT_OVERHEAD);
    e->data = e->len ? (uint8_t *)p + ENT_HDR : NULL;
    return 0;
}

static void state_encode(uint8_t *p, const struct bs_eng_log *log)
{
    p[0] = STATE_VERSION;
    bs_eng__put_u64le(p + 1, log->hs.term);
    bs_eng__put_u64le(p + 9, log->hs.vote);
    bs_eng__put_u64le(p + 17, log->hs.commit);
    bs_eng__put_u64le(p + 25, log->trunc_index);
    bs_eng__put_u64le(p + 33, log->trunc_term);
    bs_eng__put_u32le(p + 41, bs_eng_crc32c(0, p, 41));
}

static int state_decode(struct bs_eng_log *log, const uint8_t *p, size_t n)
{
    const char *why = NULL;
    if (n != STATE_LEN)
        why = "wrong record length";
    else if (bs_eng__get_u32le(p + 41) != bs_eng_crc32c(0, p, 41))
        why = "checksum mismatch";
    else if (p[0] != STATE_VERSION)
        why = "unknown record version";
    if (why)
        return bs_eng__seterr(log->errmsg, BS_ECORRUPT,
                              "raftstate shard=%" PRIu64 ": %s", log->shard_id,
                              why);
    log->hs.term = bs_eng__get_u64le(p + 1);
    log->hs.vote = bs_eng__get_u64le(p + 9);
    log->hs.commit = bs_eng__get_u64le(p + 17);
    log->trunc_index = bs_eng__get_u64le(p + 25);
    log->trunc_term = bs_eng__get_u64le(p + 33);
    return 0;
}

static void stage_state(struct bs_eng_log *log, struct bs_eng_wb *wb)
{
    uint8_t k[8], v[STATE_LEN];
    bs_eng__put_u64be(k, log->shard_id);
    state_encode(v, log);
    rocksdb_writebatch_put_cf(
        wb->b, bs_eng__db_cf(log->db, BS_ENG__CF_RAFTSTATE), (const char *)k,
        sizeof(k), (const char *)v, sizeof(v));
}

static int reserve_buf(struct bs_eng_log *log, size_t n)
{
    if (n <= log->buf_cap)
        return 0;
    uint8_t *b = realloc(log->buf, n);
    if (!b)
        return BS_ENOMEM;
    log->buf = b;
    log->buf_cap = n;
    return 0;
}

/* ------------------------------------------------------------- sizes */

static int sizes_reserve(struct sizes *s, size_t want)
{
    if (s->off + want <= s->cap)
        return 0;
    if (s->off > 0) {
        memmove(s->v, s->v + s->off, s->n * sizeof(s->v[0]));
        s->off = 0;
        if (want <= s->cap)
            return 0;
    }
    size_t cap = s->cap ? s->cap : 64;
    while (cap < want)
        cap *= 2;
    uint64_t *v = realloc(s->v, cap * sizeof(*v));
    if (!v)
        return BS_ENOMEM;
    s->v = v;
    s->cap = cap;
    return 0;
}

/* Capacity reserved by sizes_reserve. */
static void sizes_push(struct sizes *s, uint64_t size)
{
    s->v[s->off + s->n++] = size;
}

/* Keeps the first k; returns the sum of the removed ones. */
static uint64_t sizes_truncate(struct sizes *s, size_t k)
{
    uint64_t sum = 0;
    for (size_t i = k; i < s->n; i++)
        sum += s->v[s->off + i];
    if (k < s->n)
        s->n = k;
    return sum;
}

/* Drops the first k; returns their sum. */
static uint64_t sizes_pop_front(struct sizes *s, size_t k)
{
    uint64_t sum = 0;
    if (k > s->n)
        k = s->n;
    for (size_t i = 0; i < k; i++)
        sum += s->v[s->off + i];
    s->off += k;
    s->n -= k;
    if (s->n == 0)
        s->off = 0;
    return sum;
}

/* -------------------------------------------------------- tail cache */

static void cache_clear(struct tail_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[c->off + i].data);
    c->off = c->n = 0;
    c->bytes = 0;
}

static void cache_free(struct tail_cache *c)
{
    cache_clear(c);
    free(c->v);
    c->v = NULL;
    c->cap = 0;
}

static const struct bs_raft_entry *cache_get(const struct tail_cache *c,
                                             uint64_t index)
{
    if (c->n == 0 || index < c->first || index - c->first >= c->n)
        return NULL;
    return &c->v[c->off + (size_t)(index - c->first)];
}

static void cache_pop_front(struct tail_cache *c)
{
    struct bs_raft_entry *e = &c->v[c->off];
    c->bytes -= bs_raft_entry_size(e);
    free(e->data);
    c->off++;
    c->n--;
    c->first++;
    if (c->n == 0)
        c->off = 0;
}

/* Drops entries >= index. */
static void cache_truncate(struct tail_cache *c, uint64_t index)
{
    while (c->n > 0 && c->first + c->n - 1 >= index) {
        struct bs_raft_entry *e = &c->v[c->off + c->n - 1];
        c->bytes -= bs_raft_entry_size(e);
        free(e->data);
        c->n--;
    }
    if (c->n == 0)
        c->off = 0;
}

/* Appends a copy of e (index must be first + n, or anything if empty). On
 * out-of-memory the cache is emptied: it is an optimisation only. */
static void cache_push(struct tail_cache *c, const struct bs_raft_entry *e)
{
    if (c->off + c->n == c->cap) {
        if (c->off > 0 && c->off >= c->n) {
            memmove(c->v, c->v + c->off, c->n * sizeof(c->v[0]));
            c->off = 0;
        } else {
            size_t cap = c->cap ? 2 * c->cap : 64;
            struct bs_raft_entry *v = realloc(c->v, cap * sizeof(*v));
            if (!v) {
                cache_clear(c);
                return;
            }
            c->v = v;
            c->cap = cap;
        }
    }
    struct bs_raft_entry copy = *e;
    copy.data = NULL;
    if (e->len) {
        copy.data = malloc(e->len);
        if (!copy.data) {
            cache_clear(c);
            return;
        }
        memcpy(copy.data, e->data, e->len);
    }
    if (c->n == 0)
        c->first = e->index;
    c->v[c->off + c->n++] = copy;
    c->bytes += bs_raft_entry_size(e);
}

static void cache_evict(struct tail_cache *c)
{
    while (c->n > 0 && c->bytes > c->limit)
        cache_pop_front(c);
}

/* ------------------------------------------------------------- reads */

static int db_error(struct bs_eng_log *log, char *err, const char *what)
{
    int rc = bs_eng__fail(log->errmsg, err, what);
    bs_eng__db_seterr(log->db, rc, "%s", log->errmsg);
    return rc;
}

/* Reads the term of entry index (which must be stored) from RocksDB,
 * checking the whole record. */
static int db_term(struct bs_eng_log *log, uint64_t index, uint64_t *term)
{
    uint8_t k[KEY_LEN];
    char *err = NULL;
    log_key(k, log->shard_id, index);
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(
        bs_eng__db_rocks(log->db), bs_eng__db_readopts(log->db),
        bs_eng__db_cf(log->db, BS_ENG__CF_RAFTLOG), (const char *)k, sizeof(k),
        &err);
    if (err)
        return db_error(log, err, "raftlog read");
    if (!ps)
        return bs_eng__seterr(log->errmsg, BS_ECORRUPT,
                              "raftlog shard=%" PRIu64 " index=%" PRIu64
                              ": entry missing",
                              log->shard_id, index);
    size_t n;
    const uint8_t *p = (const uint8_t *)rocksdb_pinnableslice_value(ps, &n);
    struct bs_raft_entry e;
    int rc = ent_decode(log, index, p, n, &e);
    if (rc == 0)
        *term = e.term;
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

/* State of one entries() call, shared by the RocksDB and cache parts. */
struct collect {
    uint64_t lo;
    uint64_t max_bytes;
    uint64_t size;
    bool done;
    struct bs_raft_entry_vec *out;
};

/* Adds e under mem_storage's rule: stop once the total would exceed
 * max_bytes, but always return at least one entry; 0 = one entry. */
static int collect_one(struct collect *c, const struct bs_raft_entry *e)
{
    c->size += bs_raft_entry_size(e);
    if (e->index > c->lo && c->max_bytes > 0 && c->size > c->max_bytes) {
        c->done = true;
        return 0;
    }
    int rc = bs_raft_entry_vec_push(c->out, e);
    if (rc != 0)
        return rc;
    if (c->max_bytes == 0)
        c->done = true;
    return 0;
}

/* Collects entries [lo, hi) from RocksDB. */
static int db_entries(struct bs_eng_log *log, uint64_t lo, uint64_t hi,
                      struct collect *c)
{
    uint8_t lk[KEY_LEN], uk[KEY_LEN];
    char *err = NULL;
    int rc = 0;
    log_key(lk, log->shard_id, lo);
    log_key(uk, log->shard_id, hi);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (!ro)
        return BS_ENOMEM;
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lk,
                                                sizeof(lk));
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)uk,
                                                sizeof(uk));
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(bs_eng__db_rocks(log->db), ro,
                                   bs_eng__db_cf(log->db, BS_ENG__CF_RAFTLOG));
    uint64_t want = lo;
    for (rocksdb_iter_seek(it, (const char *)lk, sizeof(lk));
         rocksdb_iter_valid(it) && !c->done; rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (klen != KEY_LEN || bs_eng__get_u64be(k + 8) != want)
            break; /* a gap: reported below */
        struct bs_raft_entry e;
        if ((rc = ent_decode(log, want, v, vlen, &e)) != 0)
            goto out;
        if ((rc = collect_one(c, &e)) != 0)
            goto out;
        want++;
    }
    rocksdb_iter_get_error(it, &err);
    if (err) {
        rc = db_error(log, err, "raftlog scan");
        goto out;
    }
    if (!c->done && want < hi)
        rc = bs_eng__seterr(log->errmsg, BS_ECORRUPT,
                            "raftlog shard=%" PRIu64 " index=%" PRIu64
                            ": entry missing",
                            log->shard_id, want);
out:
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

/* ------------------------------------------------- storage interface */

static int st_initial_state(void *ctx, struct bs_raft_hard_state *hs,
                            struct bs_raft_conf_state *cs)
{
    const struct bs_eng_log *log = ctx;
    *hs = log->hs;
    *cs = log->cs;
    return 0;
}

static uint64_t st_first_index(void *ctx)
{
    return ((const struct bs_eng_log *)ctx)->trunc_index + 1;
}

static uint64_t st_last_index(void *ctx)
{
    return ((const struct bs_eng_log *)ctx)->last_index;
}

static int st_term(void *ctx, uint64_t index, uint64_t *term)
{
    struct bs_eng_log *log = ctx;
    if (index < log->trunc_index)
        return BS_ECOMPACTED;
    if (index == log->trunc_index) {
        *term = log->trunc_term;
        return 0;
    }
    if (index > log->last_index)
        return BS_EUNAVAIL;
    if (index == log->last_index) {
        *term = log->last_term;
        return 0;
    }
    const struct bs_raft_entry *e = cache_get(&log->cache, index);
    if (e) {
        *term = e->term;
        return 0;
    }
    return db_term(log, index, term);
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct bs_raft_entry_vec *out)
{
    struct bs_eng_log *log = ctx;
    if (lo <= log->trunc_index)
        return BS_ECOMPACTED;
    if (hi > log->last_index + 1)
        return BS_EUNAVAIL;
    if (lo >= hi)
        return 0;
    size_t n0 = out->n;
    struct collect c = {.lo = lo, .max_bytes = max_bytes, .out = out};
    int rc = 0;
    uint64_t i = lo;
    const struct tail_cache *tc = &log->cache;
    uint64_t cached_from = tc->n > 0 ? tc->first : log->last_index + 1;
    if (i < cached_from) {
        uint64_t end = hi < cached_from ? hi : cached_from;
        rc = db_entries(log, i, end, &c);
        i = end;
    }
    for (; rc == 0 && i < hi && !c.done; i++)
        rc = collect_one(&c, cache_get(tc, i));
    if (rc != 0)
        bs_raft_entry_vec_truncate(out, n0); /* all or nothing */
    return rc;
}

static int st_snapshot(void *ctx, struct bs_raft_snapshot *snap)
{
    const struct bs_eng_log *log = ctx;
    memset(snap, 0, sizeof(*snap));
    if (log->have_snap) {
        snap->meta = log->snap;
        return 0;
    }
    /* Entries were compacted but the store has not said which image it
     * can send yet (after a restart): the core retries later. */
    if (log->trunc_index > 0)
        return BS_ESNAPTEMP;
    return 0;
}

static const struct bs_raft_storage_ops log_ops = {
    .initial_state = st_initial_state,
    .entries = st_entries,
    .term = st_term,
    .first_index = st_first_index,
    .last_index = st_last_index,
    .snapshot = st_snapshot,
};

struct bs_raft_storage bs_eng_log_iface(struct bs_eng_log *log)
{
    struct bs_raft_storage st = {&log_ops, log};
    return st;
}

/* -------------------------------------------------------- open/close */

/* Loads the raftstate record (absent = empty log). */
static int load_state(struct bs_eng_log *log)
{
    uint8_t k[8];
    bs_eng__put_u64be(k, log->shard_id);
    void *v = NULL;
    size_t n = 0;
    int rc =
        bs_eng__get_cf(log->db, bs_eng__db_cf(log->db, BS_ENG__CF_RAFTSTATE),
                       NULL, k, sizeof(k), &v, &n);
    if (rc == BS_ENOTFOUND)
        return 0;
    if (rc != 0)
        return bs_eng__seterr(log->errmsg, rc,
                              "raftstate shard=%" PRIu64 ": %s", log->shard_id,
                              bs_eng_db_errmsg(log->db));
    rc = state_decode(log, v, n);
    free(v);
    return rc;
}

/*
 * Scans the stored entries from the newest down to first_index: finds the
 * last index and term, checks that there is no gap, records every entry's
 * size and fills the tail cache with the newest entries that fit (decoding
 * them, so a corrupt tail is found now). Entries below first_index cannot
 * exist (compaction deletes them in the batch that moves the truncated
 * state) and are not looked at.
 */
static int load_entries(struct bs_eng_log *log)
{
    uint8_t lk[KEY_LEN], uk[KEY_LEN + 1];
    char *err = NULL;
    int rc = 0;
    uint64_t *sz = NULL; /* sizes, newest first */
    size_t n = 0, cap = 0;
    struct bs_raft_entry_vec tail = {0}; /* newest first */
    uint64_t tail_bytes = 0;
    bool tail_full = log->cache.limit == 0;

    log->last_index = log->trunc_index;
    log->last_term = log->trunc_term;
    log_key(lk, log->shard_id, log->trunc_index + 1);
    log_end_key(uk, log->shard_id);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (!ro)
        return BS_ENOMEM;
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lk,
                                                sizeof(lk));
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)uk,
                                                sizeof(uk));
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(bs_eng__db_rocks(log->db), ro,
                                   bs_eng__db_cf(log->db, BS_ENG__CF_RAFTLOG));
    uint64_t want = 0;
    for (rocksdb_iter_seek_to_last(it); rocksdb_iter_valid(it);
         rocksdb_iter_prev(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        uint64_t index = klen == KEY_LEN ? bs_eng__get_u64be(k + 8) : 0;
        if (klen != KEY_LEN || (n > 0 && index != want)) {
            rc = bs_eng__seterr(log->errmsg, BS_ECORRUPT,
                                "raftlog shard=%" PRIu64 " index=%" PRIu64
                                ": entry missing",
                                log->shard_id, want);
            goto out;
        }
        struct bs_raft_entry e;
        if (n == 0 || !tail_full) {
            if ((rc = ent_decode(log, index, v, vlen, &e)) != 0)
                goto out;
            if (n == 0) {
                log->last_index = index;
                log->last_term = e.term;
            }
            if (!tail_full) {
                tail_bytes += bs_raft_entry_size(&e);
                if (tail_bytes > log->cache.limit)
                    tail_full = true;
                else if ((rc = bs_raft_entry_vec_push(&tail, &e)) != 0)
                    goto out;
            }
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            uint64_t *nv = realloc(sz, cap * sizeof(*nv));
            if (!nv) {
                rc = BS_ENOMEM;
                goto out;
            }
            sz = nv;
        }
        sz[n++] = KEY_LEN + vlen;
        want = index - 1;
    }
    rocksdb_iter_get_error(it, &err);
    if (err) {
        rc = db_error(log, err, "raftlog scan");
        goto out;
    }
    if (n > 0 && want != log->trunc_index) {
        rc = bs_eng__seterr(log->errmsg, BS_ECORRUPT,
                            "raftlog shard=%" PRIu64 " index=%" PRIu64
                            ": entry missing",
                            log->shard_id, log->trunc_index + 1);
        goto out;
    }
    if ((rc = sizes_reserve(&log->sizes, n)) != 0)
        goto out;
    for (size_t i = n; i > 0; i--) {
        sizes_push(&log->sizes, sz[i - 1]);
        log->bytes += sz[i - 1];
    }
    for (size_t i = tail.n; i > 0; i--)
        cache_push(&log->cache, &tail.v[i - 1]);
out:
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    free(sz);
    bs_raft_entry_vec_free(&tail);
    return rc;
}

int bs_eng_log_open(struct bs_eng_db *db, uint64_t shard_id,
                    size_t tail_cache_bytes, struct bs_eng_log **out,
                    char *errmsg)
{
    *out = NULL;
    struct bs_eng_log *log = calloc(1, sizeof(*log));
    if (!log)
        return bs_eng__seterr(errmsg, BS_ENOMEM, "raftlog: out of memory");
    log->db = db;
    log->shard_id = shard_id;
    log->cache.limit = tail_cache_bytes;
    int rc = load_state(log);
    if (rc == 0)
        rc = load_entries(log);
    if (rc != 0) {
        if (rc == BS_ENOMEM)
            bs_eng__seterr(log->errmsg, rc, "raftlog: out of memory");
        bs_eng__seterr(errmsg, rc, "%s", log->errmsg);
        bs_eng_log_close(log);
        return rc;
    }
    *out = log;
    return 0;
}

void bs_eng_log_close(struct bs_eng_log *log)
{
    if (!log)
        return;
    cache_free(&log->cache);
    free(log->sizes.v);
    free(log->buf);
    free(log);
}

const char *bs_eng_log_errmsg(const struct bs_eng_log *log)
{
    return log->errmsg;
}

void bs_eng_log_set_conf(struct bs_eng_log *log,
                         const struct bs_raft_conf_state *cs)
{
    log->cs = *cs;
}

/* ------------------------------------------------------------ writes */

int bs_eng_log_append(struct bs_eng_log *log, struct bs_eng_wb *wb,
                      const struct bs_raft_entry *ents, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (ents[i].index != ents[0].index + i)
            return bs_eng__seterr(log->errmsg, BS_EINVAL,
                                  "raftlog append: indexes not contiguous");
    uint64_t first = log->trunc_index + 1;
    if (ents[n - 1].index < first)
        return 0; /* all compacted already */
    if (ents[0].index < first) {
        size_t skip = (size_t)(first - ents[0].index);
        ents += skip;
        n -= skip;
    }
    uint64_t from = ents[0].index;
    if (from > log->last_index + 1)
        return bs_eng__seterr(log->errmsg, BS_EINVAL,
                              "raftlog append: gap after index %" PRIu64,
                              log->last_index);

    /* Reserve everything before staging anything. */
    size_t keep = (size_t)(from - first);
    size_t maxenc = 0;
    for (size_t i = 0; i < n; i++)
        if (ent_enc_size(&ents[i]) > maxenc)
            maxenc = ent_enc_size(&ents[i]);
    if (reserve_buf(log, maxenc) != 0 ||
        sizes_reserve(&log->sizes, keep + n) != 0)
        return bs_eng__seterr(log->errmsg, BS_ENOMEM,
                              "raftlog append: out of memory");

    rocksdb_column_family_handle_t *cf =
        bs_eng__db_cf(log->db, BS_ENG__CF_RAFTLOG);
    uint8_t k[KEY_LEN + 1];
    for (size_t i = 0; i < n; i++) {
        size_t len = ent_enc_size(&ents[i]);
        ent_encode(log->buf, &ents[i]);
        log_key(k, log->shard_id, ents[i].index);
        rocksdb_writebatch_put_cf(wb->b, cf, (const char *)k, KEY_LEN,
                                  (const char *)log->buf, len);
    }
    /* The old suffix beyond the new last entry conflicts: delete it. A few
     * point deletes are cheaper for later reads than a range tombstone. */
    uint64_t new_last = ents[n - 1].index;
    if (new_last < log->last_index) {
        if (log->last_index - new_last <= 64) {
            for (uint64_t i = new_last + 1; i <= log->last_index; i++) {
                log_key(k, log->shard_id, i);
                rocksdb_writebatch_delete_cf(wb->b, cf, (const char *)k,
                                             KEY_LEN);
            }
        } else {
            uint8_t e[KEY_LEN + 1];
            log_key(k, log->shard_id, new_last + 1);
            log_end_key(e, log->shard_id);
            rocksdb_writebatch_delete_range_cf(wb->b, cf, (const char *)k,
                                               KEY_LEN, (const char *)e,
                                               sizeof(e));
        }
    }

    /* The in-memory view. */
    log->bytes -= sizes_truncate(&log->sizes, keep);
    for (size_t i = 0; i < n; i++) {
        uint64_t s = KEY_LEN + ent_enc_size(&ents[i]);
        sizes_push(&log->sizes, s);
        log->bytes += s;
    }
    struct tail_cache *c = &log->cache;
    if (c->limit > 0) {
        if (c->n > 0 && from < c->first)
            cache_clear(c);
        else
            cache_truncate(c, from);
        /* Only the newest entries that fit can stay. */
        size_t start = n;
        uint64_t fit = 0;
        while (start > 0) {
            fit += bs_raft_entry_size(&ents[start - 1]);
            if (fit > c->limit)
                break;
            start--;
        }
        if (start > 0)
            cache_clear(c);
        for (size_t i = start; i < n; i++)
            cache_push(c, &ents[i]);
        cache_evict(c);
    }
    log->last_index = new_last;
    log->last_term = ents[n - 1].term;
    return 0;
}

int bs_eng_log_set_hard_state(struct bs_eng_log *log, struct bs_eng_wb *wb,
                              const struct bs_raft_hard_state *hs)
{
    log->hs = *hs;
    stage_state(log, wb);
    return 0;
}

/* Stages deletion of every raftlog record of shard_id. */
static void stage_delete_all(struct bs_eng_db *db, struct bs_eng_wb *wb,
                             uint64_t shard_id)
{
    uint8_t b[KEY_LEN], e[KEY_LEN + 1];
    log_key(b, shard_id, 0);
    log_end_key(e, shard_id);
    rocksdb_writebatch_delete_range_cf(
        wb->b, bs_eng__db_cf(db, BS_ENG__CF_RAFTLOG), (const char *)b,
        sizeof(b), (const char *)e, sizeof(e));
}

int bs_eng_log_apply_snapshot(struct bs_eng_log *log, struct bs_eng_wb *wb,
                              const struct bs_raft_snapshot_meta *meta)
{
    if (log->trunc_index > 0 && meta->index <= log->trunc_index)
        return BS_ESNAPOUTDATED;
    if (log->last_index > log->trunc_index)
        stage_delete_all(log->db, wb, log->shard_id);
    log->trunc_index = meta->index;
    log->trunc_term = meta->term;
    if (log->hs.commit < meta->index)
        log->hs.commit = meta->index;
    stage_state(log, wb);

    sizes_truncate(&log->sizes, 0);
    log->sizes.off = 0;
    log->bytes = 0;
    cache_clear(&log->cache);
    log->last_index = meta->index;
    log->last_term = meta->term;
    log->cs = meta->conf;
    log->snap = *meta;
    log->have_snap = true;
    return 0;
}

void bs_eng_log_set_snapshot_meta(struct bs_eng_log *log,
                                  const struct bs_raft_snapshot_meta *meta)
{
    log->snap = *meta;
    log->have_snap = true;
}

int bs_eng_log_compact(struct bs_eng_log *log, struct bs_eng_wb *wb,
                       uint64_t compact_index)
{
    if (compact_index <= log->trunc_index)
        return BS_ECOMPACTED;
    if (compact_index > log->last_index)
        return BS_EUNAVAIL;
    uint64_t term;
    int rc = st_term(log, compact_index, &term);
    if (rc != 0)
        return rc;
    uint64_t first = log->trunc_index + 1;
    uint8_t b[KEY_LEN], e[KEY_LEN];
    log_key(b, log->shard_id, first);
    log_key(e, log->shard_id, compact_index + 1);
    rocksdb_writebatch_delete_range_cf(
        wb->b, bs_eng__db_cf(log->db, BS_ENG__CF_RAFTLOG), (const char *)b,
        sizeof(b), (const char *)e, sizeof(e));
    log->trunc_index = compact_index;
    log->trunc_term = term;
    stage_state(log, wb);

    log->bytes -=
        sizes_pop_front(&log->sizes, (size_t)(compact_index - first + 1));
    struct tail_cache *c = &log->cache;
    while (c->n > 0 && c->first <= compact_index)
        cache_pop_front(c);
    return 0;
}

uint64_t bs_eng_log_first_index(const struct bs_eng_log *log)
{
    return log->trunc_index + 1;
}

uint64_t bs_eng_log_last_index(const struct bs_eng_log *log)
{
    return log->last_index;
}

uint64_t bs_eng_log_bytes(const struct bs_eng_log *log)
{
    return log->bytes;
}

int bs_eng_log_destroy(struct bs_eng_db *db, struct bs_eng_wb *wb,
                       uint64_t shard_id)
{
    uint8_t k[8];
    stage_delete_all(db, wb, shard_id);
    bs_eng__put_u64be(k, shard_id);
    rocksdb_writebatch_delete_cf(wb->b, bs_eng__db_cf(db, BS_ENG__CF_RAFTSTATE),
                                 (const char *)k, sizeof(k));
    return 0;
}
