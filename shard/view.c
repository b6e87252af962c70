/*
 * view.c - what apply and reads see: the shard CF merged with the overlay
 * of writes that apply staged into a batch not yet written.
 *
 * Why an overlay: the store applies the committed entries of a whole
 * round into one RocksDB WriteBatch, and a WriteBatch cannot be read.
 * Entry n+1 (a Put's prev_kv, a version, a Txn compare, a DeleteRange)
 * must see entry n's writes, and a Txn op must see the ops before it, so
 * every write apply stages also goes into the shard's overlay: a sorted
 * array of user key -> latest record or tombstone. The merged view
 * answers from the overlay first and from the db otherwise; a scan walks
 * a RocksDB iterator and the overlay side by side, the overlay winning on
 * equal keys. The overlay is dropped once the batch is written
 * (bs_shard_batch_written), so it holds at most one round of writes.
 *
 * Also here: etcd key intervals, and the kv copies responses own.
 */
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

/* ----------------------------------------------------------- overlay */

bool bs_shard__ov_find(const struct bs_shard_overlay *ov, const uint8_t *key,
                       size_t len, size_t *pos)
{
    size_t lo = 0, hi = ov->n;

    /* Fast path: keys staged in ascending order append. */
    if (hi > 0 &&
        bs_shard__cmp(ov->v[hi - 1].key, ov->v[hi - 1].key_len, key, len) < 0) {
        *pos = hi;
        return false;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = bs_shard__cmp(ov->v[mid].key, ov->v[mid].key_len, key, len);

        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

int bs_shard__ov_set(struct bs_shard_overlay *ov, const uint8_t *key,
                     size_t len, const struct bs_shard__rec *rec)
{
    struct bs_shard__ov_ent *e;
    uint8_t *val = NULL;
    size_t pos;

    if (rec != NULL && rec->value_len > 0) {
        val = malloc(rec->value_len);
        if (val == NULL)
            return BS_ENOMEM;
        memcpy(val, rec->value, rec->value_len);
    }
    if (bs_shard__ov_find(ov, key, len, &pos)) {
        e = &ov->v[pos];
        free((void *)e->rec.value);
    } else {
        uint8_t *k = malloc(len ? len : 1);

        if (k == NULL) {
            free(val);
            return BS_ENOMEM;
        }
        if (ov->n == ov->cap) {
            size_t cap = ov->cap ? 2 * ov->cap : 16;
            struct bs_shard__ov_ent *v = realloc(ov->v, cap * sizeof *v);

            if (v == NULL) {
                free(k);
                free(val);
                return BS_ENOMEM;
            }
            ov->v = v;
            ov->cap = cap;
        }
        memmove(&ov->v[pos + 1], &ov->v[pos], (ov->n - pos) * sizeof *ov->v);
        ov->n++;
        e = &ov->v[pos];
        if (len > 0)
            memcpy(k, key, len);
        e->key = k;
        e->key_len = len;
    }
    if (rec != NULL) {
        e->deleted = false;
        e->rec = *rec;
    } else {
        e->deleted = true;
        memset(&e->rec, 0, sizeof e->rec);
    }
    e->rec.value = val;
    return 0;
}

void bs_shard__ov_drop_from(struct bs_shard_overlay *ov, const uint8_t *from,
                            size_t len)
{
    size_t pos;

    bs_shard__ov_find(ov, from, len, &pos);
    for (size_t i = pos; i < ov->n; i++) {
        free(ov->v[i].key);
        free((void *)ov->v[i].rec.value);
    }
    ov->n = pos;
}

void bs_shard__ov_clear(struct bs_shard_overlay *ov)
{
    if (ov == NULL)
        return;
    for (size_t i = 0; i < ov->n; i++) {
        free(ov->v[i].key);
        free((void *)ov->v[i].rec.value);
    }
    free(ov->v);
    memset(ov, 0, sizeof *ov);
}

/* --------------------------------------------------------- intervals */

void bs_shard__ival_make(struct bs_shard__ival *iv, const uint8_t *key,
                         size_t key_len, const uint8_t *range_end,
                         size_t range_end_len)
{
    memset(iv, 0, sizeof *iv);
    iv->lo = key;
    iv->lo_len = key_len;
    if (range_end_len == 0)
        iv->single = true;
    else if (range_end_len == 1 && range_end[0] == 0)
        iv->hi_inf = true;
    else {
        iv->hi = range_end;
        iv->hi_len = range_end_len;
    }
}

/* True if k is below the interval's upper bound. */
static bool below_hi(const struct bs_shard__ival *iv, const uint8_t *k,
                     size_t len)
{
    if (iv->single)
        return bs_shard__cmp(k, len, iv->lo, iv->lo_len) <= 0;
    return iv->hi_inf || bs_shard__cmp(k, len, iv->hi, iv->hi_len) < 0;
}

bool bs_shard__ival_has(const struct bs_shard__ival *iv, const uint8_t *key,
                        size_t len)
{
    return bs_shard__cmp(key, len, iv->lo, iv->lo_len) >= 0 &&
           below_hi(iv, key, len);
}

bool bs_shard__ival_overlap(const struct bs_shard__ival *a,
                            const struct bs_shard__ival *b)
{
    /* Two intervals meet iff the larger low end lies in both. */
    const struct bs_shard__ival *hi_lo =
        bs_shard__cmp(a->lo, a->lo_len, b->lo, b->lo_len) >= 0 ? a : b;

    return bs_shard__ival_has(a, hi_lo->lo, hi_lo->lo_len) &&
           bs_shard__ival_has(b, hi_lo->lo, hi_lo->lo_len);
}

/* ------------------------------------------------------- merged view */

int bs_shard__get(const struct bs_shard__view *v, const uint8_t *key,
                  size_t len, struct bs_shard__rec *rec, void **hold)
{
    uint8_t *dk;
    size_t dklen, vlen;
    void *val = NULL;
    size_t pos;
    int rc;

    *hold = NULL;
    if (v->ov != NULL && bs_shard__ov_find(v->ov, key, len, &pos)) {
        if (v->ov->v[pos].deleted)
            return BS_ENOTFOUND;
        *rec = v->ov->v[pos].rec;
        return 0;
    }
    rc = bs_shard__data_key(key, len, &dk, &dklen);
    if (rc != 0)
        return rc;
    rc = bs_eng_get(v->db, v->snap, v->id, dk, dklen, &val, &vlen);
    free(dk);
    if (rc != 0)
        return rc;
    rc = bs_shard__rec_decode(val, vlen, rec);
    if (rc != 0) {
        free(val);
        return rc;
    }
    *hold = val;
    return 0;
}

int bs_shard__scan(const struct bs_shard__view *v,
                   const struct bs_shard__ival *iv, bs_shard__scan_cb cb,
                   void *ctx)
{
    static const uint8_t data_end[1] = {BS_SHARD__DATA_PREFIX + 1};
    struct bs_eng_iter *it = NULL;
    uint8_t *lo = NULL, *hi = NULL;
    size_t lolen, hilen, oi = 0;
    int rc;

    if (iv->single) {
        struct bs_shard__rec rec;
        void *hold;

        rc = bs_shard__get(v, iv->lo, iv->lo_len, &rec, &hold);
        if (rc == BS_ENOTFOUND)
            return 0;
        if (rc == 0) {
            rc = cb(ctx, iv->lo, iv->lo_len, &rec);
            free(hold);
        }
        return rc < 0 ? rc : 0;
    }
    /* An empty interval ([a, b) with b <= a) holds nothing, as in etcd. */
    if (!iv->hi_inf &&
        bs_shard__cmp(iv->hi, iv->hi_len, iv->lo, iv->lo_len) <= 0)
        return 0;
    rc = bs_shard__data_key(iv->lo, iv->lo_len, &lo, &lolen);
    if (rc == 0 && !iv->hi_inf)
        rc = bs_shard__data_key(iv->hi, iv->hi_len, &hi, &hilen);
    if (rc == 0)
        rc = bs_eng_iter_create(v->db, v->snap, v->id, lo, lolen,
                                hi ? hi : data_end, hi ? hilen : 1, &it);
    if (rc != 0)
        goto out;
    bs_eng_iter_seek_first(it);
    if (v->ov != NULL)
        bs_shard__ov_find(v->ov, iv->lo, iv->lo_len, &oi);
    for (;;) {
        const struct bs_shard__ov_ent *oe = NULL;
        const uint8_t *dk = NULL;
        size_t dklen = 0;
        int c;

        if (bs_eng_iter_valid(it)) {
            dk = bs_eng_iter_key(it, &dklen);
            if (dklen == 0 || dk[0] != BS_SHARD__DATA_PREFIX) {
                rc = BS_ECORRUPT; /* bounds keep us inside 'z' */
                break;
            }
            dk++;
            dklen--;
        }
        if (v->ov != NULL && oi < v->ov->n &&
            below_hi(iv, v->ov->v[oi].key, v->ov->v[oi].key_len))
            oe = &v->ov->v[oi];
        if (dk == NULL && oe == NULL)
            break;
        c = dk == NULL   ? 1
            : oe == NULL ? -1
                         : bs_shard__cmp(dk, dklen, oe->key, oe->key_len);
        if (c < 0) {
            struct bs_shard__rec rec;
            const void *val;
            size_t vlen;

            val = bs_eng_iter_value(it, &vlen);
            rc = bs_shard__rec_decode(val, vlen, &rec);
            if (rc == 0)
                rc = cb(ctx, dk, dklen, &rec);
            bs_eng_iter_next(it);
        } else {
            /* The overlay shadows the db on equal keys. */
            if (c == 0)
                bs_eng_iter_next(it);
            oi++;
            rc = oe->deleted ? 0 : cb(ctx, oe->key, oe->key_len, &oe->rec);
        }
        if (rc != 0)
            break;
    }
    if (rc == 1)
        rc = 0;
    if (rc == 0)
        rc = bs_eng_iter_status(it);
out:
    bs_eng_iter_destroy(it);
    free(lo);
    free(hi);
    return rc;
}

/* ------------------------------------------------------------- kvs */

int bs_shard__kv_set(struct bs_shard_kv *kv, const uint8_t *key, size_t len,
                     const struct bs_shard__rec *rec, bool keys_only)
{
    memset(kv, 0, sizeof *kv);
    if (len > 0) {
        kv->key = malloc(len);
        if (kv->key == NULL)
            return BS_ENOMEM;
        memcpy(kv->key, key, len);
        kv->key_len = len;
    }
    if (!keys_only && rec->value_len > 0) {
        kv->value = malloc(rec->value_len);
        if (kv->value == NULL) {
            free(kv->key);
            kv->key = NULL;
            return BS_ENOMEM;
        }
        memcpy(kv->value, rec->value, rec->value_len);
        kv->value_len = rec->value_len;
    }
    kv->create_revision = rec->create_revision;
    kv->mod_revision = rec->mod_revision;
    kv->version = rec->version;
    kv->lease = rec->lease;
    return 0;
}

void bs_shard__kv_free(struct bs_shard_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

int bs_shard__kvs_push(struct bs_shard_kv **kvs, size_t *n, size_t *cap,
                       const uint8_t *key, size_t len,
                       const struct bs_shard__rec *rec, bool keys_only)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        struct bs_shard_kv *v = realloc(*kvs, c * sizeof *v);

        if (v == NULL)
            return BS_ENOMEM;
        *kvs = v;
        *cap = c;
    }
    if (bs_shard__kv_set(&(*kvs)[*n], key, len, rec, keys_only) != 0)
        return BS_ENOMEM;
    (*n)++;
    return 0;
}

void bs_shard__op_resp_free(struct bs_shard_op_resp *op)
{
    for (size_t i = 0; i < op->n_kvs; i++)
        bs_shard__kv_free(&op->kvs[i]);
    free(op->kvs);
    memset(op, 0, sizeof *op);
}
