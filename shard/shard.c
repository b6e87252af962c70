/*
 * shard.c - the shard's persisted state: descriptors, the value record
 * of each user key, the apply state record, and loading / bootstrapping a
 * shard from its column family.
 *
 * The apply state (key 0x00 "apply") is rewritten in the same batch as
 * the data of every entry applied, so after a crash the CF holds exactly
 * the effects of entries 1..applied_index and replay starts after it:
 *
 *   apply state = u8 format(1), desc, u revision, u applied_index,
 *                 u applied_term, conf, u32 CRC32C (little-endian) of
 *                 every byte before it
 *   desc        = u id, bytes start, bytes end, u conf_ver, u version,
 *                 u n (<= 16), n x (u id, u node_id, u8 learner)
 *   conf        = voters, voters_outgoing, learners, learners_next (each
 *                 u n (<= 16), n x u id), u8 auto_leave
 *
 *   value record = u8 format(1), u create_revision, u mod_revision,
 *                  u version, s lease, then the value (the rest)
 *
 * (varints and byte strings as in wire.c). A record that fails to decode
 * is BS_ECORRUPT with the reason; nothing here asserts on stored bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

const uint8_t bs_shard__state_key[6] = {0x00, 'a', 'p', 'p', 'l', 'y'};

void bs_shard_limits_default(struct bs_shard_limits *l)
{
    l->max_key = BS_SHARD_DEFAULT_MAX_KEY;
    l->max_value = BS_SHARD_DEFAULT_MAX_VALUE;
    l->max_txn_ops = BS_SHARD_DEFAULT_MAX_TXN_OPS;
}

/* ------------------------------------------------------- descriptors */

static int dup_into(uint8_t **dst, size_t *dlen, const uint8_t *src, size_t len)
{
    *dst = NULL;
    *dlen = 0;
    if (len == 0)
        return 0;
    *dst = malloc(len);
    if (*dst == NULL)
        return BS_ENOMEM;
    memcpy(*dst, src, len);
    *dlen = len;
    return 0;
}

int bs_shard_desc_copy(struct bs_shard_desc *dst,
                       const struct bs_shard_desc *src)
{
    struct bs_shard_desc d = *src;

    if (dup_into(&d.start, &d.start_len, src->start, src->start_len) != 0)
        return BS_ENOMEM;
    if (dup_into(&d.end, &d.end_len, src->end, src->end_len) != 0) {
        free(d.start);
        return BS_ENOMEM;
    }
    *dst = d;
    return 0;
}

void bs_shard_desc_free(struct bs_shard_desc *d)
{
    if (d == NULL)
        return;
    free(d->start);
    free(d->end);
    memset(d, 0, sizeof *d);
}

void bs_shard_desc_conf(const struct bs_shard_desc *d,
                        struct bs_raft_conf_state *cs)
{
    memset(cs, 0, sizeof *cs);
    for (uint32_t i = 0; i < d->n_replicas && i < BS_RAFT_MAX_MEMBERS; i++) {
        if (d->replicas[i].learner)
            cs->learners[cs->n_learners++] = d->replicas[i].id;
        else
            cs->voters[cs->n_voters++] = d->replicas[i].id;
    }
}

void bs_shard__desc_encode(struct bs_shard__w *w, const struct bs_shard_desc *d)
{
    bs_shard__w_uvar(w, d->id);
    bs_shard__w_bytes(w, d->start, d->start_len);
    bs_shard__w_bytes(w, d->end, d->end_len);
    bs_shard__w_uvar(w, d->epoch.conf_ver);
    bs_shard__w_uvar(w, d->epoch.version);
    bs_shard__w_uvar(w, d->n_replicas);
    for (uint32_t i = 0; i < d->n_replicas; i++) {
        bs_shard__w_uvar(w, d->replicas[i].id);
        bs_shard__w_uvar(w, d->replicas[i].node_id);
        bs_shard__w_u8(w, d->replicas[i].learner ? 1 : 0);
    }
}

int bs_shard__desc_decode(struct bs_shard__r *r, struct bs_shard_desc *d)
{
    const uint8_t *s, *e;
    size_t slen, elen;
    uint64_t n;

    memset(d, 0, sizeof *d);
    d->id = bs_shard__r_uvar(r);
    bs_shard__r_bytes(r, &s, &slen);
    bs_shard__r_bytes(r, &e, &elen);
    d->epoch.conf_ver = bs_shard__r_uvar(r);
    d->epoch.version = bs_shard__r_uvar(r);
    n = bs_shard__r_uvar(r);
    if (n > BS_RAFT_MAX_MEMBERS)
        r->err = BS_ECORRUPT;
    if (r->err != 0)
        return BS_ECORRUPT;
    d->n_replicas = (uint32_t)n;
    for (uint32_t i = 0; i < d->n_replicas; i++) {
        d->replicas[i].id = bs_shard__r_uvar(r);
        d->replicas[i].node_id = bs_shard__r_uvar(r);
        d->replicas[i].learner = bs_shard__r_bool(r);
    }
    if (r->err != 0)
        return BS_ECORRUPT;
    if (dup_into(&d->start, &d->start_len, s, slen) != 0 ||
        dup_into(&d->end, &d->end_len, e, elen) != 0) {
        bs_shard_desc_free(d);
        return BS_ENOMEM;
    }
    return 0;
}

/* ----------------------------------------------------------- records */

void bs_shard__rec_encode(struct bs_shard__w *w,
                          const struct bs_shard__rec *rec)
{
    bs_shard__w_u8(w, BS_SHARD__REC_FORMAT);
    bs_shard__w_uvar(w, (uint64_t)rec->create_revision);
    bs_shard__w_uvar(w, (uint64_t)rec->mod_revision);
    bs_shard__w_uvar(w, (uint64_t)rec->version);
    bs_shard__w_svar(w, rec->lease);
    bs_shard__w_raw(w, rec->value, rec->value_len);
}

int bs_shard__rec_decode(const uint8_t *buf, size_t len,
                         struct bs_shard__rec *rec)
{
    struct bs_shard__r r = {.p = buf, .len = len};

    memset(rec, 0, sizeof *rec);
    if (bs_shard__r_u8(&r) != BS_SHARD__REC_FORMAT)
        return BS_ECORRUPT;
    rec->create_revision = bs_shard__r_nonneg(&r);
    rec->mod_revision = bs_shard__r_nonneg(&r);
    rec->version = bs_shard__r_nonneg(&r);
    rec->lease = bs_shard__r_svar(&r);
    if (r.err != 0)
        return BS_ECORRUPT;
    rec->value_len = bs_shard__r_left(&r);
    rec->value = rec->value_len ? buf + r.off : NULL;
    return 0;
}

int bs_shard__data_key(const uint8_t *key, size_t len, uint8_t **out,
                       size_t *out_len)
{
    uint8_t *k = malloc(len + 1);

    if (k == NULL)
        return BS_ENOMEM;
    k[0] = BS_SHARD__DATA_PREFIX;
    if (len > 0)
        memcpy(k + 1, key, len);
    *out = k;
    *out_len = len + 1;
    return 0;
}

/* ------------------------------------------------------- apply state */

static void enc_ids(struct bs_shard__w *w, const uint64_t *ids, uint32_t n)
{
    bs_shard__w_uvar(w, n);
    for (uint32_t i = 0; i < n; i++)
        bs_shard__w_uvar(w, ids[i]);
}

static uint32_t dec_ids(struct bs_shard__r *r, uint64_t *ids)
{
    uint64_t n = bs_shard__r_uvar(r);

    if (n > BS_RAFT_MAX_MEMBERS) {
        r->err = BS_ECORRUPT;
        return 0;
    }
    for (uint64_t i = 0; i < n; i++)
        ids[i] = bs_shard__r_uvar(r);
    return r->err ? 0 : (uint32_t)n;
}

void bs_shard__state_encode(struct bs_shard__w *w,
                            const struct bs_shard__state *st)
{
    size_t start = w->len;
    uint32_t crc;
    uint8_t b[4];

    bs_shard__w_u8(w, BS_SHARD__STATE_FORMAT);
    bs_shard__desc_encode(w, &st->desc);
    bs_shard__w_uvar(w, (uint64_t)st->revision);
    bs_shard__w_uvar(w, st->applied_index);
    bs_shard__w_uvar(w, st->applied_term);
    enc_ids(w, st->conf.voters, st->conf.n_voters);
    enc_ids(w, st->conf.voters_outgoing, st->conf.n_voters_outgoing);
    enc_ids(w, st->conf.learners, st->conf.n_learners);
    enc_ids(w, st->conf.learners_next, st->conf.n_learners_next);
    bs_shard__w_u8(w, st->conf.auto_leave ? 1 : 0);
    if (w->err != 0)
        return;
    crc = bs_eng_crc32c(0, w->p + start, w->len - start);
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(crc >> (8 * i));
    bs_shard__w_raw(w, b, 4);
}

int bs_shard__state_decode(const uint8_t *buf, size_t len,
                           struct bs_shard__state *st, char *errmsg)
{
    struct bs_shard__r r;
    uint32_t crc = 0;
    int rc;

    memset(st, 0, sizeof *st);
    if (len < 5)
        return bs_shard__err(errmsg, BS_ECORRUPT,
                             "apply state is truncated (%zu bytes)", len);
    for (int i = 0; i < 4; i++)
        crc |= (uint32_t)buf[len - 4 + i] << (8 * i);
    if (crc != bs_eng_crc32c(0, buf, len - 4))
        return bs_shard__err(errmsg, BS_ECORRUPT,
                             "apply state fails its checksum");
    r = (struct bs_shard__r){.p = buf, .len = len - 4};
    if (bs_shard__r_u8(&r) != BS_SHARD__STATE_FORMAT)
        return bs_shard__err(errmsg, BS_ECORRUPT,
                             "apply state has unknown format %u", buf[0]);
    rc = bs_shard__desc_decode(&r, &st->desc);
    if (rc != 0)
        return bs_shard__err(errmsg, rc, "apply state: bad descriptor");
    st->revision = bs_shard__r_nonneg(&r);
    st->applied_index = bs_shard__r_uvar(&r);
    st->applied_term = bs_shard__r_uvar(&r);
    st->conf.n_voters = dec_ids(&r, st->conf.voters);
    st->conf.n_voters_outgoing = dec_ids(&r, st->conf.voters_outgoing);
    st->conf.n_learners = dec_ids(&r, st->conf.learners);
    st->conf.n_learners_next = dec_ids(&r, st->conf.learners_next);
    st->conf.auto_leave = bs_shard__r_bool(&r);
    if (r.err != 0 || bs_shard__r_left(&r) != 0) {
        bs_shard_desc_free(&st->desc);
        memset(st, 0, sizeof *st);
        return bs_shard__err(errmsg, BS_ECORRUPT,
                             "apply state does not decode");
    }
    return 0;
}

int bs_shard__state_read(struct bs_eng_db *db, const struct bs_eng_snap *snap,
                         uint64_t id, struct bs_shard__state *st, char *errmsg)
{
    void *val = NULL;
    size_t vlen = 0;
    int rc;

    memset(st, 0, sizeof *st);
    rc = bs_eng_get(db, snap, id, bs_shard__state_key,
                    sizeof bs_shard__state_key, &val, &vlen);
    if (rc == BS_ENOTFOUND)
        return bs_shard__err(errmsg, rc, "shard %llu has no apply state here",
                             (unsigned long long)id);
    if (rc != 0)
        return bs_shard__err(errmsg, rc, "shard %llu: reading apply state: %s",
                             (unsigned long long)id, bs_eng_db_errmsg(db));
    rc = bs_shard__state_decode(val, vlen, st, errmsg);
    free(val);
    if (rc == 0 && st->desc.id != id) {
        bs_shard_desc_free(&st->desc);
        return bs_shard__err(
            errmsg, BS_ECORRUPT, "apply state of CF s%llu names shard %llu",
            (unsigned long long)id, (unsigned long long)st->desc.id);
    }
    return rc;
}

int bs_shard__state_stage(struct bs_eng_db *db, struct bs_eng_wb *wb,
                          const struct bs_shard__state *st)
{
    struct bs_shard__w w = {0};
    int rc;

    bs_shard__state_encode(&w, st);
    rc = w.err;
    if (rc == 0)
        rc = bs_eng_wb_put(wb, db, st->desc.id, bs_shard__state_key,
                           sizeof bs_shard__state_key, w.p, w.len);
    free(w.p);
    return rc;
}

/* ------------------------------------------------------------ shards */

int bs_shard_bootstrap(struct bs_eng_db *db, const struct bs_shard_desc *desc,
                       const struct bs_raft_conf_state *cs, uint64_t index,
                       uint64_t term)
{
    struct bs_shard__state st;
    struct bs_eng_wb *wb;
    void *val = NULL;
    size_t vlen;
    int rc;

    if (desc->id == 0 || desc->n_replicas > BS_RAFT_MAX_MEMBERS ||
        (desc->end_len > 0 && bs_shard__cmp(desc->start, desc->start_len,
                                            desc->end, desc->end_len) >= 0))
        return BS_EINVAL;
    rc = bs_eng_db_shard_create(db, desc->id);
    if (rc != 0 && rc != BS_EEXIST)
        return rc;
    rc = bs_eng_get(db, NULL, desc->id, bs_shard__state_key,
                    sizeof bs_shard__state_key, &val, &vlen);
    free(val);
    if (rc == 0)
        return BS_EEXIST;
    if (rc != BS_ENOTFOUND)
        return rc;
    memset(&st, 0, sizeof st);
    st.desc = *desc; /* keys borrowed */
    st.revision = 1;
    st.applied_index = index;
    st.applied_term = term;
    if (cs != NULL)
        st.conf = *cs;
    else
        bs_shard_desc_conf(desc, &st.conf);
    wb = bs_eng_wb_create();
    if (wb == NULL)
        return BS_ENOMEM;
    rc = bs_shard__state_stage(db, wb, &st);
    if (rc == 0)
        rc = bs_eng_db_write(db, wb, true);
    bs_eng_wb_destroy(wb);
    return rc;
}

static void set_from_state(struct bs_shard *s, struct bs_shard__state *st)
{
    bs_shard_desc_free(&s->desc);
    s->desc = st->desc; /* takes the keys */
    s->revision = st->revision;
    s->applied_index = st->applied_index;
    s->applied_term = st->applied_term;
    s->conf = st->conf;
}

int bs_shard_load(struct bs_eng_db *db, uint64_t id,
                  const struct bs_shard_limits *limits, struct bs_shard **out,
                  char *errmsg)
{
    struct bs_shard__state st;
    struct bs_shard *s;
    int rc;

    *out = NULL;
    if (!bs_eng_db_shard_exists(db, id))
        return bs_shard__err(errmsg, BS_ENOTFOUND,
                             "shard %llu has no column family here",
                             (unsigned long long)id);
    rc = bs_shard__state_read(db, NULL, id, &st, errmsg);
    if (rc != 0)
        return rc;
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->ov = calloc(1, sizeof *s->ov)) == NULL) {
        free(s);
        bs_shard_desc_free(&st.desc);
        return bs_shard__err(errmsg, BS_ENOMEM, "out of memory");
    }
    set_from_state(s, &st);
    if (limits != NULL)
        s->limits = *limits;
    else
        bs_shard_limits_default(&s->limits);
    *out = s;
    return 0;
}

void bs_shard_destroy(struct bs_shard *s)
{
    if (s == NULL)
        return;
    if (s->ov != NULL) {
        bs_shard__ov_clear(s->ov);
        free(s->ov);
    }
    bs_shard_desc_free(&s->desc);
    free(s);
}

void bs_shard_batch_written(struct bs_shard *s)
{
    bs_shard__ov_clear(s->ov);
}

int bs_shard_batch_discard(struct bs_shard *s, struct bs_eng_db *db)
{
    struct bs_shard__state st;
    int rc;

    bs_shard__ov_clear(s->ov);
    rc = bs_shard__state_read(db, NULL, s->desc.id, &st, NULL);
    if (rc != 0)
        return rc;
    set_from_state(s, &st);
    return 0;
}
