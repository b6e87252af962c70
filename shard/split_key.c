/*
 * split_key.c - where to split a shard that grew too large: the key that
 * halves its bytes (bs_shard_middle_key; shard.h has the contract).
 *
 * Two passes over the shard's live user keys, in key order, through the
 * merged view (bs_shard__scan) at one RocksDB snapshot, so that both see
 * the same keys although the loop thread may write between them (it does
 * not, today, but the snapshot makes the result independent of that):
 *
 *   pass 1   total = sum of key + value bytes, and the number of keys;
 *   pass 2   the first key whose running sum (its own bytes included)
 *            reaches total / 2, but never the first key: splitting there
 *            would leave the lower half empty.
 *
 * Why two passes and not an estimate from RocksDB (approximate sizes of
 * key ranges, or SST boundaries): those see overwritten versions and
 * tombstones that compaction has not removed, so the halves they give can
 * be far from even, and they cannot see values one by one. A scan reads
 * only live data, and the shard size that triggers a split (64 MiB by
 * default, see placement's split_size) bounds it: two sequential reads of
 * that much on the loop thread, rare (once per split), are cheaper than
 * the snapshot transfers an uneven split causes later.
 *
 * Only the key is chosen here; the split itself is a SPLIT command
 * through Raft (split.c), which checks the key again against the range
 * and epoch it is applied with.
 */
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

struct sum_ctx {
    uint64_t bytes;
    uint64_t keys;
};

static int sum_cb(void *arg, const uint8_t *key, size_t len,
                  const struct bs_shard__rec *rec)
{
    struct sum_ctx *c = arg;
    (void)key;
    c->bytes += (uint64_t)len + rec->value_len;
    c->keys++;
    return 0;
}

struct mid_ctx {
    uint64_t half2; /* the total: stop when 2 * running sum >= it */
    uint64_t run;   /* running sum */
    uint64_t seen;  /* keys visited */
    uint8_t *key;   /* malloc'd: the chosen key */
    size_t key_len;
};

static int mid_cb(void *arg, const uint8_t *key, size_t len,
                  const struct bs_shard__rec *rec)
{
    struct mid_ctx *c = arg;
    c->run += (uint64_t)len + rec->value_len;
    c->seen++;
    /* The first key never: the lower half [start, key) would be empty. */
    if (c->seen < 2 || 2 * c->run < c->half2)
        return 0;
    c->key = malloc(len ? len : 1);
    if (c->key == NULL)
        return BS_ENOMEM;
    if (len > 0)
        memcpy(c->key, key, len);
    c->key_len = len;
    return 1;
}

int bs_shard_middle_key(const struct bs_shard *s, struct bs_eng_db *db,
                        uint8_t **key, size_t *len)
{
    struct sum_ctx sum = {0};
    struct mid_ctx mid = {0};
    struct bs_shard__ival iv;
    struct bs_shard__view v;
    struct bs_eng_snap *snap;
    int rc;

    *key = NULL;
    *len = 0;
    /* Staged writes are not in the db yet: the keys would not be the
     * shard's (and its range may be about to change). */
    if (s->ov != NULL && s->ov->n > 0)
        return BS_EBUSY;
    memset(&iv, 0, sizeof iv);
    iv.lo = s->desc.start;
    iv.lo_len = s->desc.start_len;
    if (s->desc.end_len == 0) {
        iv.hi_inf = true;
    } else {
        iv.hi = s->desc.end;
        iv.hi_len = s->desc.end_len;
    }
    snap = bs_eng_snap_create(db);
    if (snap == NULL)
        return BS_ENOMEM;
    v = (struct bs_shard__view){
        .db = db, .snap = snap, .id = s->desc.id, .ov = NULL};
    rc = bs_shard__scan(&v, &iv, sum_cb, &sum);
    if (rc == 0 && sum.keys < 2)
        rc = BS_ENOTFOUND;
    if (rc == 0) {
        mid.half2 = sum.bytes;
        rc = bs_shard__scan(&v, &iv, mid_cb, &mid);
    }
    /* With two keys or more at the snapshot, the second pass stops at one
     * of them at the latest (the last key brings the sum to the total). */
    if (rc == 0 && mid.key == NULL)
        rc = BS_ECORRUPT;
    bs_eng_snap_release(db, snap);
    if (rc != 0) {
        free(mid.key);
        return rc;
    }
    *key = mid.key;
    *len = mid.key_len;
    return 0;
}
