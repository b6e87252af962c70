/*
 * sm.c - the placement state machine as the store's state machine of
 * shard 0 (struct bs_eng_sm_ops, engine.h), and the local bootstrap of a
 * new cluster.
 *
 * Shard 0's column family holds placement's own records ("p...", see
 * persist.c) and one more record written here, "r": the Raft apply state
 * the store needs (applied term and configuration; the applied index is
 * placement's own). Both are staged in the same batch as the command's
 * effects, so a crash never separates them.
 *
 *   "r" = version (1) | index u64 | term u64 | conf | crc32c u32
 *   conf = auto_leave u8 | 4 x (count u32, ids u64...)
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "placement_int.h"
#include "shard.h"

#define RAFT_KEY "r"

struct pd_sm {
    struct bs_eng_db *db;
    struct bs_pd_state *st;
    uint64_t term; /* of the last applied entry */
    struct bs_raft_conf_state conf;
    bool has_state; /* a bootstrapped or snapshot-installed state */
};

static void put_ids(struct bs_pd_buf *b, const uint64_t *ids, uint32_t n)
{
    bs_pd__buf_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        bs_pd__buf_u64(b, ids[i]);
}

static void get_ids(struct bs_pd_rd *r, uint64_t *ids, uint32_t *n)
{
    uint32_t k = bs_pd__rd_u32(r);
    if (k > BS_RAFT_MAX_MEMBERS) {
        r->bad = true;
        *n = 0;
        return;
    }
    for (uint32_t i = 0; i < k; i++)
        ids[i] = bs_pd__rd_u64(r);
    *n = k;
}

static int save_raft(struct pd_sm *sm, struct bs_eng_wb *wb, uint64_t index)
{
    struct bs_pd_buf b = {0};
    const struct bs_raft_conf_state *c = &sm->conf;
    bs_pd__buf_u8(&b, 1);
    bs_pd__buf_u64(&b, index);
    bs_pd__buf_u64(&b, sm->term);
    bs_pd__buf_u8(&b, c->auto_leave);
    put_ids(&b, c->voters, c->n_voters);
    put_ids(&b, c->voters_outgoing, c->n_voters_outgoing);
    put_ids(&b, c->learners, c->n_learners);
    put_ids(&b, c->learners_next, c->n_learners_next);
    bs_pd__buf_u32(&b, bs_eng_crc32c(0, b.p, b.len));
    int rc = b.err;
    if (rc == 0)
        rc = bs_eng_wb_put(wb, sm->db, BS_PD_SHARD_PLACEMENT, RAFT_KEY, 1,
                           b.p, b.len);
    free(b.p);
    return rc;
}

static int load_raft(struct pd_sm *sm, uint64_t *index)
{
    void *val = NULL;
    size_t len = 0;
    int rc = bs_eng_get(sm->db, NULL, BS_PD_SHARD_PLACEMENT, RAFT_KEY, 1,
                        &val, &len);
    if (rc != 0)
        return rc;
    struct bs_pd_rd r = {.p = val, .len = len};
    struct bs_raft_conf_state c;
    memset(&c, 0, sizeof(c));
    uint8_t ver = bs_pd__rd_u8(&r);
    *index = bs_pd__rd_u64(&r);
    uint64_t term = bs_pd__rd_u64(&r);
    c.auto_leave = bs_pd__rd_u8(&r) != 0;
    get_ids(&r, c.voters, &c.n_voters);
    get_ids(&r, c.voters_outgoing, &c.n_voters_outgoing);
    get_ids(&r, c.learners, &c.n_learners);
    get_ids(&r, c.learners_next, &c.n_learners_next);
    size_t body = r.off;
    uint32_t crc = bs_pd__rd_u32(&r);
    bool ok = !r.bad && ver == 1 && r.off == len &&
              crc == bs_eng_crc32c(0, val, body);
    free(val);
    if (!ok)
        return BS_ECORRUPT;
    sm->term = term;
    sm->conf = c;
    return 0;
}

/* Loads placement and the raft record; a CF without them is blank. */
static int sm_load(struct pd_sm *sm)
{
    uint64_t index = 0;
    int rc = load_raft(sm, &index);
    if (rc == BS_ENOTFOUND) {
        sm->has_state = false;
        return 0;
    }
    if (rc != 0)
        return rc;
    char em[256];
    rc = bs_pd_load(sm->db, sm->st, em);
    if (rc != 0)
        return rc;
    if (bs_pd_applied(sm->st) != index)
        return BS_ECORRUPT; /* written in one batch: they must agree */
    sm->has_state = true;
    return 0;
}

/* What changed the cluster's shape is logged (every placement replica
 * logs it, the leader included): operators created, finished and
 * cancelled, replica sets, splits, node states, and refusals. Leader and
 * heartbeat reports are not: they come every second. */
static void log_applied(struct pd_sm *sm, uint64_t index,
                        const struct bs_pd_result *pr, int rc, uint64_t fin,
                        uint64_t can)
{
    if (pr->skipped || pr->type == BS_PD_CMD_SHARD_LEADER ||
        pr->type == BS_PD_CMD_NODE_HEARTBEAT || rc == BS_ESTALE)
        return;
    uint64_t f = bs_pd_ops_finished(sm->st) - fin;
    uint64_t c = bs_pd_ops_cancelled(sm->st) - can;
    bs_log(rc ? BS_LOG_WARN : BS_LOG_INFO, "placement",
           "applied index=%llu cmd=%s rc=%s%s%s id=%llu ops=%zu "
           "finished=+%llu cancelled=+%llu",
           (unsigned long long)index, bs_pd_cmd_type_name(pr->type),
           rc ? bs_strerror(rc) : "ok", pr->msg[0] ? " detail=" : "",
           pr->msg, (unsigned long long)pr->first_id,
           bs_pd_op_count(sm->st), (unsigned long long)f,
           (unsigned long long)c);
}

static int sm_apply(void *p, struct bs_eng_wb *wb, uint64_t index,
                    uint64_t term, const uint8_t *cmd, size_t len,
                    struct bs_eng_apply_result *res)
{
    struct pd_sm *sm = p;
    if (!sm->has_state)
        return BS_EINVAL;
    if (index <= bs_pd_applied(sm->st))
        return 0; /* replay after a crash */
    struct bs_pd_result pr;
    memset(&pr, 0, sizeof(pr));
    uint64_t fin = bs_pd_ops_finished(sm->st);
    uint64_t can = bs_pd_ops_cancelled(sm->st);
    int rc = bs_pd_apply(sm->st, index, cmd, len, &pr);
    if (rc == BS_ENOMEM)
        return rc;
    log_applied(sm, index, &pr, rc, fin, can);
    res->status = rc; /* command-level: the index is consumed */
    sm->term = term;
    if ((rc = bs_pd_save(sm->st, sm->db, wb)) != 0)
        return rc;
    if ((rc = save_raft(sm, wb, index)) != 0)
        return rc;
    /* The proposer gets the first allocated id (ALLOC_IDS) back. */
    uint8_t *out = malloc(8);
    if (out) {
        for (int i = 0; i < 8; i++)
            out[i] = (uint8_t)(pr.first_id >> (56 - 8 * i));
        res->resp = out;
        res->resp_len = 8;
    }
    return 0;
}

static int sm_advance(void *p, struct bs_eng_wb *wb, uint64_t index,
                      uint64_t term, const struct bs_raft_conf_state *cs)
{
    struct pd_sm *sm = p;
    if (!sm->has_state || index <= bs_pd_applied(sm->st))
        return 0;
    struct bs_pd_result pr;
    memset(&pr, 0, sizeof(pr));
    int rc = bs_pd_apply(sm->st, index, NULL, 0, &pr);
    if (rc == BS_ENOMEM)
        return rc;
    sm->term = term;
    if (cs)
        sm->conf = *cs;
    if ((rc = bs_pd_save(sm->st, sm->db, wb)) != 0)
        return rc;
    return save_raft(sm, wb, index);
}

static void sm_applied(void *p, uint64_t *index, uint64_t *term,
                       struct bs_raft_conf_state *cs)
{
    struct pd_sm *sm = p;
    if (!sm->has_state) {
        *index = *term = 0;
        memset(cs, 0, sizeof(*cs));
        return;
    }
    *index = bs_pd_applied(sm->st);
    *term = sm->term;
    *cs = sm->conf;
}

static int sm_reload(void *p)
{
    return sm_load(p);
}

static void sm_batch_done(void *p, bool written)
{
    struct pd_sm *sm = p;
    if (!written)
        (void)sm_load(sm); /* back to what the db holds */
}

static void sm_destroy(void *p)
{
    struct pd_sm *sm = p;
    if (!sm)
        return;
    bs_pd_state_destroy(sm->st);
    free(sm);
}

static const struct bs_eng_sm_ops pd_sm_ops = {
    .apply = sm_apply,
    .advance = sm_advance,
    .applied = sm_applied,
    .reload = sm_reload,
    .batch_done = sm_batch_done,
    .destroy = sm_destroy,
};

int bs_pd_sm_open(struct bs_eng_db *db, void **out,
                  const struct bs_eng_sm_ops **ops)
{
    struct pd_sm *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return BS_ENOMEM;
    sm->db = db;
    sm->st = bs_pd_state_create();
    if (!sm->st) {
        free(sm);
        return BS_ENOMEM;
    }
    int rc = sm_load(sm);
    if (rc != 0) {
        sm_destroy(sm);
        return rc;
    }
    *out = sm;
    *ops = &pd_sm_ops;
    return 0;
}

const struct bs_pd_state *bs_pd_sm_state(void *sm)
{
    struct pd_sm *p = sm;
    return p && p->has_state ? p->st : NULL;
}

int bs_pd_bootstrap_local(struct bs_eng_db *db,
                          const struct bs_pd_cmd *boot /* borrowed */,
                          struct bs_pd_state **out, char *errmsg)
{
    *out = NULL;
    if (boot->type != BS_PD_CMD_BOOTSTRAP)
        return BS_EINVAL;
    int rc = bs_eng_db_shard_create(db, BS_PD_SHARD_PLACEMENT);
    if (rc != 0 && rc != BS_EEXIST)
        return rc;
    struct pd_sm sm = {.db = db};
    uint64_t index = 0;
    if (load_raft(&sm, &index) == 0) {
        if (errmsg)
            snprintf(errmsg, 256, "placement: already bootstrapped");
        return BS_EEXIST;
    }
    sm.st = bs_pd_state_create();
    if (!sm.st)
        return BS_ENOMEM;
    uint8_t *buf = NULL;
    size_t len = 0;
    struct bs_pd_result pr;
    memset(&pr, 0, sizeof(pr));
    struct bs_eng_wb *wb = bs_eng_wb_create();
    rc = wb ? bs_pd_cmd_encode(boot, &buf, &len) : BS_ENOMEM;
    if (rc == 0)
        rc = bs_pd_apply(sm.st, 1, buf, len, &pr);
    if (rc != 0 && errmsg)
        snprintf(errmsg, 256, "placement bootstrap refused: %s",
                 pr.msg[0] ? pr.msg : bs_strerror(rc));
    if (rc == 0) {
        /* Shard 0's configuration: its replicas. */
        const struct bs_pd_shard *s0 =
            bs_pd_shard_find(sm.st, BS_PD_SHARD_PLACEMENT);
        bs_pd_shard_conf_state(s0, &sm.conf);
        sm.term = 1;
        rc = bs_pd_save(sm.st, db, wb);
        if (rc == 0)
            rc = save_raft(&sm, wb, 1);
        if (rc == 0)
            rc = bs_eng_db_write(db, wb, true);
    }
    free(buf);
    bs_eng_wb_destroy(wb);
    if (rc != 0) {
        bs_pd_state_destroy(sm.st);
        return rc;
    }
    *out = sm.st;
    return 0;
}

/* ------------------------------------------------ the node's sm factory */

/* Shard 0 is placement; every other group is a data shard (shard/sm.c). */
static int node_sm_open(void *ctx, struct bs_eng_db *db, uint64_t shard_id,
                        void **sm, const struct bs_eng_sm_ops **ops)
{
    if (shard_id == BS_PD_SHARD_PLACEMENT)
        return bs_pd_sm_open(db, sm, ops);
    struct bs_eng_sm_factory shard;
    bs_shard_sm_factory(&shard, ctx);
    return shard.open(shard.ctx, db, shard_id, sm, ops);
}

void bs_pd_node_sm_factory(struct bs_eng_sm_factory *f,
                           const struct bs_shard_limits *limits)
{
    f->open = node_sm_open;
    f->ctx = (void *)limits;
}
