/*
 * store.c - the placement state in shard 0's column family, through the
 * engine (engine.h): bs_pd_save stages the changed records (and the
 * deletions of finished operators) into the caller's write batch,
 * bs_pd_load walks the column family's "p" records.
 * Everything about the records themselves is in persist.c; this file only
 * adapts the put / next callbacks to the engine, and is the only one in
 * placement/ that touches storage.
 */
#include <stdio.h>

#include "placement_int.h"

struct wb_ctx {
    struct bs_eng_db *db;
    struct bs_eng_wb *wb;
};

/* No value: the record is deleted (bs_pd_put_fn). */
static int wb_put(void *ctx, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    struct wb_ctx *c = ctx;
    if (!val)
        return bs_eng_wb_delete(c->wb, c->db, BS_PD_SHARD_PLACEMENT, key, klen);
    return bs_eng_wb_put(c->wb, c->db, BS_PD_SHARD_PLACEMENT, key, klen, val,
                         vlen);
}

int bs_pd_save(struct bs_pd_state *st, struct bs_eng_db *db,
               struct bs_eng_wb *wb)
{
    struct wb_ctx c = {db, wb};
    return bs_pd_save_to(st, wb_put, &c);
}

struct iter_ctx {
    struct bs_eng_iter *it;
    bool started;
};

static int iter_next(void *ctx, const void **key, size_t *klen,
                     const void **val, size_t *vlen)
{
    struct iter_ctx *c = ctx;
    if (c->started)
        bs_eng_iter_next(c->it);
    c->started = true;
    if (!bs_eng_iter_valid(c->it))
        return bs_eng_iter_status(c->it);
    *key = bs_eng_iter_key(c->it, klen);
    *val = bs_eng_iter_value(c->it, vlen);
    return 1;
}

int bs_pd_load(struct bs_eng_db *db, struct bs_pd_state *st, char *errmsg)
{
    /* Only the "p" namespace: ["p", "q"). */
    struct iter_ctx c = {0};
    int rc = bs_eng_iter_create(db, NULL, BS_PD_SHARD_PLACEMENT, "p", 1, "q", 1,
                                &c.it);
    if (rc) {
        if (errmsg)
            snprintf(errmsg, 256,
                     "placement: cannot read shard 0's column family: %s",
                     bs_strerror(rc));
        return rc;
    }
    bs_eng_iter_seek_first(c.it);
    rc = bs_pd_load_from(st, iter_next, &c, errmsg);
    if (rc && errmsg && errmsg[0] == '\0')
        snprintf(errmsg, 256, "placement: reading shard 0's records: %s",
                 bs_strerror(rc));
    bs_eng_iter_destroy(c.it);
    return rc;
}
