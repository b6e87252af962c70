/*
 * sm.c - the shard as the store's state machine: adapts bs_shard_* to
 * struct bs_eng_sm_ops (engine.h) so that engine/ drives shards without
 * knowing them.
 *
 * A replica created empty (bs_eng_store_create_replica) has no apply state
 * yet: the adapter then holds no bs_shard and answers applied = 0 with an
 * empty configuration until its first snapshot is ingested (reload).
 */
#include <stdlib.h>
#include <string.h>

#include "shard.h"

struct shard_sm {
    struct bs_eng_db *db;
    uint64_t id;
    struct bs_shard_limits limits;
    struct bs_shard *sh; /* NULL until the replica has state */
};

static int sm_apply(void *p, struct bs_eng_wb *wb, uint64_t index,
                    uint64_t term, const uint8_t *cmd, size_t len,
                    struct bs_eng_apply_result *res)
{
    struct shard_sm *sm = p;
    if (!sm->sh)
        return BS_EINVAL; /* entries before any state: cannot happen */
    struct bs_shard_resp resp;
    bs_shard_resp_init(&resp);
    int rc = bs_shard_apply(sm->sh, sm->db, wb, index, term, cmd, len, &resp);
    if (rc != 0) {
        bs_shard_resp_free(&resp);
        return rc;
    }
    res->status = resp.err;
    if (resp.type == BS_SHARD_CMD_SPLIT && resp.err == 0 && !resp.skipped) {
        res->split = true;
        res->split_shard_id = resp.right.id;
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (bs_shard_resp_encode(&resp, &out, &out_len) == 0) {
        res->resp = out;
        res->resp_len = out_len;
    }
    bs_shard_resp_free(&resp);
    return 0;
}

static int sm_advance(void *p, struct bs_eng_wb *wb, uint64_t index,
                      uint64_t term, const struct bs_raft_conf_state *cs)
{
    struct shard_sm *sm = p;
    if (!sm->sh)
        return 0; /* blank replica: its state arrives with a snapshot */
    if (!cs) {
        struct bs_shard_resp resp;
        bs_shard_resp_init(&resp);
        int rc = bs_shard_apply(sm->sh, sm->db, wb, index, term, NULL, 0,
                                &resp);
        bs_shard_resp_free(&resp);
        return rc;
    }
    /* Replica ids carry their node (BS_ENG_REPLICA_NODE). */
    uint64_t ids[BS_RAFT_CONF_MAX_LIST];
    bool learner[BS_RAFT_CONF_MAX_LIST];
    size_t m = bs_raft_conf_members(cs, ids, learner);
    struct bs_shard_replica reps[BS_RAFT_MAX_MEMBERS];
    uint32_t n = 0;
    for (size_t i = 0; i < m && n < BS_RAFT_MAX_MEMBERS; i++, n++) {
        reps[n].id = ids[i];
        reps[n].node_id = BS_ENG_REPLICA_NODE(ids[i]);
        reps[n].learner = learner[i];
    }
    return bs_shard_apply_conf(sm->sh, sm->db, wb, index, term, cs, reps, n);
}

static void sm_applied(void *p, uint64_t *index, uint64_t *term,
                       struct bs_raft_conf_state *cs)
{
    struct shard_sm *sm = p;
    if (!sm->sh) {
        *index = 0;
        *term = 0;
        memset(cs, 0, sizeof(*cs));
        return;
    }
    *index = sm->sh->applied_index;
    *term = sm->sh->applied_term;
    *cs = sm->sh->conf;
}

static int sm_reload(void *p)
{
    struct shard_sm *sm = p;
    struct bs_shard *sh = NULL;
    int rc = bs_shard_load(sm->db, sm->id, &sm->limits, &sh, NULL);
    if (rc != 0)
        return rc;
    bs_shard_destroy(sm->sh);
    sm->sh = sh;
    return 0;
}

static void sm_batch_done(void *p, bool written)
{
    struct shard_sm *sm = p;
    if (!sm->sh)
        return;
    if (written)
        bs_shard_batch_written(sm->sh);
    else if (bs_shard_batch_discard(sm->sh, sm->db) != 0) {
        bs_shard_destroy(sm->sh);
        sm->sh = NULL;
    }
}

static void sm_destroy(void *p)
{
    struct shard_sm *sm = p;
    if (!sm)
        return;
    bs_shard_destroy(sm->sh);
    free(sm);
}

static const struct bs_eng_sm_ops shard_sm_ops = {
    .apply = sm_apply,
    .advance = sm_advance,
    .applied = sm_applied,
    .reload = sm_reload,
    .batch_done = sm_batch_done,
    .destroy = sm_destroy,
};

static int sm_open(void *ctx, struct bs_eng_db *db, uint64_t shard_id,
                   void **out, const struct bs_eng_sm_ops **ops)
{
    const struct bs_shard_limits *limits = ctx;
    struct shard_sm *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return BS_ENOMEM;
    sm->db = db;
    sm->id = shard_id;
    if (limits)
        sm->limits = *limits;
    else
        bs_shard_limits_default(&sm->limits);
    int rc = bs_shard_load(db, shard_id, &sm->limits, &sm->sh, NULL);
    if (rc != 0 && rc != BS_ENOTFOUND) {
        free(sm);
        return rc;
    }
    *out = sm;
    *ops = &shard_sm_ops;
    return 0;
}

struct bs_shard *bs_shard_sm_shard(void *sm)
{
    return sm ? ((struct shard_sm *)sm)->sh : NULL;
}

void bs_shard_sm_factory(struct bs_eng_sm_factory *f,
                         const struct bs_shard_limits *limits)
{
    f->open = sm_open;
    f->ctx = (void *)limits;
}
