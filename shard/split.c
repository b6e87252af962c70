/*
 * split.c - applying a Split: the upper keys of a shard move to a new
 * shard, deterministically on every replica, inside the apply of the
 * split entry (DESIGN.md section 3).
 *
 * State of the pair (the split entry at index i, term t):
 *
 *   before:  S  = [start, end)        epoch {c, v}      revision r
 *   after:   S  = [start, split_key)  epoch {c, v + 1}  revision r
 *            N  = [split_key, end)    epoch {c, v + 1}  revision r,
 *                 applied i/t, conf = the given replicas
 *
 *   transition                         made by
 *   check epoch {c, v}, key inside     bs_shard__check (apply.c)
 *   create CF of N                     bs_eng_db_shard_create, here,
 *                                      before the batch is written
 *   copy keys >= split_key to N        bs_shard__apply_split (staged)
 *   delete them from S                 bs_eng_wb_delete_range (staged)
 *   apply states of N and S            staged in the same batch
 *   N's Raft group created             the store, after the batch
 *
 * RocksDB cannot create a column family inside a WriteBatch, so the CF
 * exists before the batch that fills it is durable. After a crash in
 * between, S's applied index is still i - 1, the split is applied again,
 * the CF already exists (BS_EEXIST) and is empty (batches are atomic):
 * the apply stages a clear of its whole key space before the copy, so the
 * result does not depend on what the CF held. One exception keeps a
 * replica from going back in time: if N's CF holds an apply state of
 * shard N already past index i (its group ran ahead of this replica and
 * installed a snapshot here), N's data is left alone. And a split that
 * names a shard N which an earlier entry created (a retried proposal
 * after the first split applied) is refused: it would clear N's keys.
 *
 * The copy reads S through the overlay, so writes staged earlier in the
 * same batch move too; S's overlay entries above split_key are dropped,
 * since S can no longer be asked about those keys.
 */
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

struct copy_ctx {
    struct bs_eng_db *db;
    struct bs_eng_wb *wb;
    uint64_t to;
};

static int copy_cb(void *arg, const uint8_t *key, size_t len,
                   const struct bs_shard__rec *rec)
{
    struct copy_ctx *c = arg;
    struct bs_shard__w w = {0};
    uint8_t *dk = NULL;
    size_t dklen;
    int rc;

    bs_shard__rec_encode(&w, rec);
    rc = w.err;
    if (rc == 0)
        rc = bs_shard__data_key(key, len, &dk, &dklen);
    if (rc == 0)
        rc = bs_eng_wb_put(c->wb, c->db, c->to, dk, dklen, w.p, w.len);
    free(dk);
    free(w.p);
    return rc;
}

/* True if N's CF must be left as it is (see the file comment); *taken if
 * it holds a shard that an EARLIER entry created (applied below index):
 * another split already used the id. */
static int new_shard_ahead(struct bs_eng_db *db, uint64_t id, uint64_t index,
                           bool *ahead, bool *taken)
{
    struct bs_shard__state st;
    int rc;

    *ahead = false;
    *taken = false;
    rc = bs_shard__state_read(db, NULL, id, &st, NULL);
    if (rc == BS_ENOTFOUND || rc == BS_ECORRUPT)
        return 0; /* nothing worth keeping: overwrite */
    if (rc != 0)
        return rc;
    *ahead = st.applied_index > index;
    *taken = st.applied_index < index;
    bs_shard_desc_free(&st.desc);
    return 0;
}

int bs_shard__apply_split(struct bs_shard *s, struct bs_eng_db *db,
                          struct bs_eng_wb *wb, uint64_t index, uint64_t term,
                          const struct bs_shard_split_req *req,
                          struct bs_shard_resp *resp)
{
    static const uint8_t all_lo[1] = {0x00}, all_hi[1] = {0xff};
    static const uint8_t data_end[1] = {BS_SHARD__DATA_PREFIX + 1};
    struct bs_shard__state nst;
    struct bs_shard__ival iv;
    struct bs_shard__view v = {
        .db = db, .snap = NULL, .id = s->desc.id, .ov = s->ov};
    struct copy_ctx cc = {.db = db, .wb = wb, .to = req->new_shard_id};
    uint8_t *lo = NULL, *hi = NULL, *new_end = NULL;
    size_t lolen, hilen = 0;
    bool ahead = false;
    int rc;

    /* N's descriptor: [split_key, end), the new epoch and replicas. */
    memset(&nst, 0, sizeof nst);
    nst.desc.id = req->new_shard_id;
    nst.desc.start = (uint8_t *)req->split_key;
    nst.desc.start_len = req->split_key_len;
    nst.desc.end = s->desc.end;
    nst.desc.end_len = s->desc.end_len;
    nst.desc.epoch.conf_ver = s->desc.epoch.conf_ver;
    nst.desc.epoch.version = s->desc.epoch.version + 1;
    memcpy(nst.desc.replicas, req->replicas,
           req->n_replicas * sizeof *req->replicas);
    nst.desc.n_replicas = req->n_replicas;
    nst.revision = s->revision;
    nst.applied_index = index;
    nst.applied_term = term;
    bs_shard_desc_conf(&nst.desc, &nst.conf);

    rc = bs_eng_db_shard_create(db, req->new_shard_id);
    if (rc == BS_EEXIST) {
        bool taken = false;
        rc = new_shard_ahead(db, req->new_shard_id, index, &ahead, &taken);
        if (rc == 0 && taken && !ahead) {
            /* A second split naming the same new shard (a proposer that
             * retried after the first one applied): clearing N would wipe
             * the keys the first split gave it. Refused, S unchanged. */
            resp->err = bs_shard__err(
                resp->errmsg, BS_EEXIST,
                "shard %llu exists already: split of shard %llu refused",
                (unsigned long long)req->new_shard_id,
                (unsigned long long)s->desc.id);
            return 0;
        }
        if (rc == 0 && !ahead)
            rc = bs_eng_wb_delete_range(wb, db, req->new_shard_id, all_lo, 1,
                                        all_hi, 1);
    }
    if (rc != 0)
        return rc;

    if (!ahead) {
        memset(&iv, 0, sizeof iv);
        iv.lo = req->split_key;
        iv.lo_len = req->split_key_len;
        if (s->desc.end_len == 0) {
            iv.hi_inf = true;
        } else {
            iv.hi = s->desc.end;
            iv.hi_len = s->desc.end_len;
        }
        rc = bs_shard__scan(&v, &iv, copy_cb, &cc);
        if (rc == 0)
            rc = bs_shard__state_stage(db, wb, &nst);
        if (rc != 0)
            return rc;
    }

    /* Remove the upper keys from S (after the copy in the batch order). */
    rc = bs_shard__data_key(req->split_key, req->split_key_len, &lo, &lolen);
    if (rc == 0 && s->desc.end_len > 0)
        rc = bs_shard__data_key(s->desc.end, s->desc.end_len, &hi, &hilen);
    if (rc == 0)
        rc = bs_eng_wb_delete_range(wb, db, s->desc.id, lo, lolen,
                                    hi ? hi : data_end, hi ? hilen : 1);
    free(lo);
    free(hi);
    if (rc != 0)
        return rc;

    /* The response owns copies of both descriptors. */
    rc = bs_shard_desc_copy(&resp->right, &nst.desc);
    if (rc != 0)
        return rc;
    new_end = malloc(req->split_key_len);
    if (new_end == NULL)
        return BS_ENOMEM;
    memcpy(new_end, req->split_key, req->split_key_len);

    /* S becomes [start, split_key) with the new version. */
    bs_shard__ov_drop_from(s->ov, req->split_key, req->split_key_len);
    free(s->desc.end);
    s->desc.end = new_end;
    s->desc.end_len = req->split_key_len;
    s->desc.epoch.version++;
    return bs_shard_desc_copy(&resp->left, &s->desc);
}
