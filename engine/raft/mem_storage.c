/*
 * mem_storage.c - in-memory implementation of the Raft storage interface.
 *
 * ents.v[0] is a dummy entry standing for the snapshot: its index and term
 * are the snapshot's. Entries ents.v[1..] are the readable log, so
 * first_index = ents.v[0].index + 1 and last_index = ents.v[0].index +
 * ents.n - 1. Used by the tests, the simulator and the benchmark; the
 * engine implements the same interface over RocksDB.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

struct bs_raft_mem_storage {
    struct bs_raft_hard_state hs;
    struct bs_raft_conf_state cs;
    struct bs_raft_snapshot snap; /* owns data */
    struct bs_raft_entry_vec ents;
};

struct bs_raft_mem_storage *bs_raft_mem_storage_create(void)
{
    struct bs_raft_mem_storage *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return NULL;
    struct bs_raft_entry dummy = {0};
    if (bs_raft_entry_vec_push(&ms->ents, &dummy) != 0) {
        free(ms);
        return NULL;
    }
    return ms;
}

void bs_raft_mem_storage_destroy(struct bs_raft_mem_storage *ms)
{
    if (!ms)
        return;
    bs_raft_entry_vec_free(&ms->ents);
    free(ms->snap.data);
    free(ms);
}

static uint64_t ms_offset(const struct bs_raft_mem_storage *ms)
{
    return ms->ents.v[0].index;
}

static uint64_t ms_first(void *ctx)
{
    return ms_offset(ctx) + 1;
}

static uint64_t ms_last(void *ctx)
{
    const struct bs_raft_mem_storage *ms = ctx;
    return ms_offset(ms) + ms->ents.n - 1;
}

static int ms_initial_state(void *ctx, struct bs_raft_hard_state *hs,
                            struct bs_raft_conf_state *cs)
{
    const struct bs_raft_mem_storage *ms = ctx;
    *hs = ms->hs;
    *cs = ms->cs;
    return 0;
}

static int ms_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct bs_raft_entry_vec *out)
{
    const struct bs_raft_mem_storage *ms = ctx;
    uint64_t off = ms_offset(ms);
    if (lo <= off)
        return BS_ECOMPACTED;
    if (hi > ms_last(ctx) + 1)
        return BS_EUNAVAIL;
    uint64_t size = 0;
    for (uint64_t i = lo; i < hi; i++) {
        const struct bs_raft_entry *e = &ms->ents.v[i - off];
        size += bs_raft_entry_size(e);
        if (i > lo && max_bytes > 0 && size > max_bytes)
            break;
        int rc = bs_raft_entry_vec_push(out, e);
        if (rc != 0)
            return rc;
        if (max_bytes == 0)
            break; /* 0 means one entry per call */
    }
    return 0;
}

static int ms_term(void *ctx, uint64_t i, uint64_t *term)
{
    const struct bs_raft_mem_storage *ms = ctx;
    uint64_t off = ms_offset(ms);
    if (i < off)
        return BS_ECOMPACTED;
    if (i - off >= ms->ents.n)
        return BS_EUNAVAIL;
    *term = ms->ents.v[i - off].term;
    return 0;
}

static int ms_snapshot(void *ctx, struct bs_raft_snapshot *snap)
{
    const struct bs_raft_mem_storage *ms = ctx;
    *snap = ms->snap;
    snap->data = NULL;
    if (ms->snap.len > 0) {
        snap->data = malloc(ms->snap.len);
        if (!snap->data)
            return BS_ENOMEM;
        memcpy(snap->data, ms->snap.data, ms->snap.len);
    }
    return 0;
}

static const struct bs_raft_storage_ops ms_ops = {
    .initial_state = ms_initial_state,
    .entries = ms_entries,
    .term = ms_term,
    .first_index = ms_first,
    .last_index = ms_last,
    .snapshot = ms_snapshot,
};

struct bs_raft_storage bs_raft_mem_storage_iface(struct bs_raft_mem_storage *ms)
{
    struct bs_raft_storage st = {&ms_ops, ms};
    return st;
}

void bs_raft_mem_storage_set_hard_state(struct bs_raft_mem_storage *ms,
                                        const struct bs_raft_hard_state *hs)
{
    ms->hs = *hs;
}

void bs_raft_mem_storage_set_conf(struct bs_raft_mem_storage *ms,
                                  const struct bs_raft_conf_state *cs)
{
    ms->cs = *cs;
}

int bs_raft_mem_storage_append(struct bs_raft_mem_storage *ms,
                               const struct bs_raft_entry *ents, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t first = ms_first(ms);
    uint64_t last = ents[n - 1].index;
    if (last < first)
        return 0; /* all compacted already */
    if (ents[0].index < first) {
        size_t skip = (size_t)(first - ents[0].index);
        ents += skip;
        n -= skip;
    }
    uint64_t off = ms_offset(ms);
    if (ents[0].index > off + ms->ents.n)
        return BS_EINVAL; /* gap */
    /* Truncate the conflicting (or overlapping) suffix, then append. */
    bs_raft_entry_vec_truncate(&ms->ents, (size_t)(ents[0].index - off));
    for (size_t i = 0; i < n; i++) {
        int rc = bs_raft_entry_vec_push(&ms->ents, &ents[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int bs_raft_mem_storage_apply_snapshot(struct bs_raft_mem_storage *ms,
                                       const struct bs_raft_snapshot *snap)
{
    if (ms->snap.meta.index >= snap->meta.index && ms->snap.meta.index > 0)
        return BS_ESNAPOUTDATED;
    uint8_t *data = NULL;
    if (snap->len > 0) {
        data = malloc(snap->len);
        if (!data)
            return BS_ENOMEM;
        memcpy(data, snap->data, snap->len);
    }
    free(ms->snap.data);
    ms->snap = *snap;
    ms->snap.data = data;
    ms->cs = snap->meta.conf;
    bs_raft_entry_vec_truncate(&ms->ents, 0);
    struct bs_raft_entry dummy = {.index = snap->meta.index,
                                  .term = snap->meta.term};
    /* Cannot fail: capacity >= 1 is kept by truncate. */
    (void)bs_raft_entry_vec_push(&ms->ents, &dummy);
    if (ms->hs.commit < snap->meta.index)
        ms->hs.commit = snap->meta.index;
    return 0;
}

int bs_raft_mem_storage_create_snapshot(struct bs_raft_mem_storage *ms,
                                        uint64_t i,
                                        const struct bs_raft_conf_state *cs,
                                        const uint8_t *data, size_t len)
{
    if (i <= ms->snap.meta.index && ms->snap.meta.index > 0)
        return BS_ESNAPOUTDATED;
    if (i > ms_last(ms))
        return BS_EUNAVAIL;
    uint64_t off = ms_offset(ms);
    if (i < off)
        return BS_ESNAPOUTDATED;
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (!copy)
            return BS_ENOMEM;
        memcpy(copy, data, len);
    }
    free(ms->snap.data);
    ms->snap.data = copy;
    ms->snap.len = len;
    ms->snap.meta.index = i;
    ms->snap.meta.term = ms->ents.v[i - off].term;
    if (cs) {
        /* initial_state must answer the conf as of the snapshot, which is
         * where a restart resumes applying (bs_sim seed 9). */
        ms->snap.meta.conf = *cs;
        ms->cs = *cs;
    }
    return 0;
}

int bs_raft_mem_storage_compact(struct bs_raft_mem_storage *ms,
                                uint64_t compact_index)
{
    uint64_t off = ms_offset(ms);
    if (compact_index <= off)
        return BS_ECOMPACTED;
    if (compact_index > ms_last(ms))
        return BS_EUNAVAIL;
    size_t k = (size_t)(compact_index - off);
    /* Entry k becomes the new dummy: free the data of 0..k, shift. */
    for (size_t i = 0; i < k; i++)
        free(ms->ents.v[i].data);
    memmove(ms->ents.v, ms->ents.v + k,
            (ms->ents.n - k) * sizeof(ms->ents.v[0]));
    ms->ents.n -= k;
    free(ms->ents.v[0].data);
    ms->ents.v[0].data = NULL;
    ms->ents.v[0].len = 0;
    return 0;
}
