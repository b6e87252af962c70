/*
 * helpers.c - see helpers.h.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* ------------------------------------------------------------ commands */

void th_node_info(struct bs_pd_node_info *ni, uint64_t id)
{
    memset(ni, 0, sizeof(*ni));
    ni->id = id;
    snprintf(ni->client_addr, sizeof(ni->client_addr), "10.0.0.%llu:2379",
             (unsigned long long)id);
    snprintf(ni->peer_addr, sizeof(ni->peer_addr), "10.0.0.%llu:2380",
             (unsigned long long)id);
    snprintf(ni->http_addr, sizeof(ni->http_addr), "10.0.0.%llu:8080",
             (unsigned long long)id);
    ni->n_labels = 1;
    strcpy(ni->labels[0].key, "rack");
    snprintf(ni->labels[0].value, sizeof(ni->labels[0].value), "r%llu",
             (unsigned long long)(id % 3));
}

struct bs_pd_cmd th_cmd_register(uint64_t id, uint64_t now)
{
    struct bs_pd_cmd c = {.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&c.u.register_node.node, id);
    c.u.register_node.now = now;
    return c;
}

struct bs_pd_cmd th_cmd_node_state(uint64_t id, uint8_t state, uint64_t now)
{
    struct bs_pd_cmd c = {.type = BS_PD_CMD_UPDATE_NODE_STATE};
    c.u.node_state.node_id = id;
    c.u.node_state.state = state;
    c.u.node_state.now = now;
    return c;
}

struct bs_pd_cmd th_cmd_replicas(const struct bs_pd_state *st, uint64_t shard,
                                 const struct bs_pd_replica *reps, uint32_t n)
{
    struct bs_pd_cmd c = {.type = BS_PD_CMD_SHARD_REPLICA_CHANGE};
    c.u.replica_change.shard_id = shard;
    c.u.replica_change.conf_ver =
        bs_pd_shard_find(st, shard)->epoch.conf_ver + 1;
    c.u.replica_change.n_replicas = n;
    memcpy(c.u.replica_change.replicas, reps, n * sizeof(*reps));
    return c;
}

struct bs_pd_cmd th_cmd_moved(const struct bs_pd_state *st, uint64_t shard,
                              uint64_t from, uint64_t to, uint64_t rid)
{
    const struct bs_pd_shard *s = bs_pd_shard_find(st, shard);
    struct bs_pd_replica reps[BS_RAFT_MAX_MEMBERS + 1];
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (s->replicas[i].node_id != from)
            reps[n++] = s->replicas[i];
    if (to)
        reps[n++] = (struct bs_pd_replica){rid, to, BS_PD_ROLE_VOTER};
    ck_assert_uint_le(n, BS_RAFT_MAX_MEMBERS);
    return th_cmd_replicas(st, shard, reps, n);
}

struct bs_pd_cmd th_cmd_leader(const struct bs_pd_state *st, uint64_t shard,
                               uint64_t node)
{
    const struct bs_pd_shard *s = bs_pd_shard_find(st, shard);
    const struct bs_pd_replica *r = bs_pd_shard_replica_on(s, node);
    ck_assert_ptr_nonnull(r);
    struct bs_pd_cmd c = {.type = BS_PD_CMD_SHARD_LEADER};
    c.u.leader.shard_id = shard;
    c.u.leader.leader = r->id;
    c.u.leader.term = s->leader_term + 1;
    return c;
}

/* A SHARD_SPLIT of shard s at key, both epochs at s's version + 1; the
 * new shard and its replicas are the caller's. */
static void split_of(const struct bs_pd_shard *s, const void *key, size_t klen,
                     struct bs_pd_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = BS_PD_CMD_SHARD_SPLIT;
    cmd->u.split.shard_id = s->id;
    cmd->u.split.epoch = s->epoch;
    cmd->u.split.epoch.version++;
    cmd->u.split.split_key = key;
    cmd->u.split.split_key_len = klen;
    cmd->u.split.new_epoch = cmd->u.split.epoch;
}

void th_split_report(const struct bs_pd_state *st, const struct bs_pd_op *op,
                     const void *key, size_t klen, struct bs_pd_cmd *cmd)
{
    split_of(bs_pd_shard_find(st, op->shard_id), key, klen, cmd);
    cmd->u.split.new_shard_id = op->new_shard_id;
    cmd->u.split.n_replicas = op->n_new_replicas;
    memcpy(cmd->u.split.replicas, op->new_replicas,
           op->n_new_replicas * sizeof(op->new_replicas[0]));
}

/* --------------------------------------------------------------- apply */

int th_apply(struct bs_pd_state *st, uint64_t *index,
             const struct bs_pd_cmd *cmd, struct bs_pd_result *res)
{
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(bs_pd_cmd_encode(cmd, &buf, &len), 0);
    int rc = bs_pd_apply(st, ++*index, buf, len, res);
    free(buf);
    return rc;
}

void th_apply_ok(struct bs_pd_state *st, uint64_t *index,
                 const struct bs_pd_cmd *cmd, struct bs_pd_result *res)
{
    struct bs_pd_result r;
    if (!res)
        res = &r;
    int rc = th_apply(st, index, cmd, res);
    ck_assert_msg(rc == 0, "%s: %s (%s)", bs_pd_cmd_type_name(cmd->type),
                  bs_err_name(rc), res->msg);
}

void th_register(struct bs_pd_state *st, uint64_t *index, uint64_t id)
{
    struct bs_pd_cmd cmd = th_cmd_register(id, 2000);
    th_apply_ok(st, index, &cmd, NULL);
}

void th_refused(struct bs_pd_state *st, uint64_t *index,
                const struct bs_pd_cmd *cmd, int want, const char *needle)
{
    struct bs_pd_state *copy = th_copy(st);
    struct bs_pd_result res;
    int rc = th_apply(st, index, cmd, &res);
    ck_assert_msg(rc == want, "%s: got %s want %s (%s)",
                  bs_pd_cmd_type_name(cmd->type), bs_err_name(rc),
                  bs_err_name(want), res.msg);
    if (rc != 0 && rc != BS_ESTALE)
        ck_assert_uint_gt(strlen(res.msg), 0);
    if (needle)
        ck_assert_msg(strstr(res.msg, needle), "'%s' lacks '%s'", res.msg,
                      needle);
    ck_assert_int_eq(bs_pd_apply(copy, *index, NULL, 0, NULL), 0);
    ck_assert_uint_eq(bs_pd_applied(st), *index);
    ck_assert(th_equal(st, copy));
    bs_pd_state_destroy(copy);
    th_check(st);
}

struct bs_pd_state *th_bootstrap(uint32_t n_nodes, uint32_t shards,
                                 uint32_t replicas, uint64_t *index)
{
    struct bs_pd_state *st = bs_pd_state_create();
    ck_assert_ptr_nonnull(st);
    struct bs_pd_node_info *nodes = calloc(n_nodes, sizeof(*nodes));
    ck_assert_ptr_nonnull(nodes);
    for (uint32_t i = 0; i < n_nodes; i++)
        th_node_info(&nodes[i], i + 1);
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_BOOTSTRAP};
    cmd.u.bootstrap.cluster_id = 42;
    cmd.u.bootstrap.initial_shards = shards;
    cmd.u.bootstrap.replicas = replicas;
    cmd.u.bootstrap.now = 1000;
    cmd.u.bootstrap.n_nodes = n_nodes;
    cmd.u.bootstrap.nodes = nodes;
    struct bs_pd_result res;
    int rc = th_apply(st, index, &cmd, &res);
    ck_assert_msg(rc == 0, "bootstrap: %s (%s)", bs_err_name(rc), res.msg);
    free(nodes);
    th_check(st);
    return st;
}

uint64_t th_alloc(struct bs_pd_state *st, uint64_t *index, uint8_t kind,
                  uint32_t count)
{
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_ALLOC_IDS};
    cmd.u.alloc.kind = kind;
    cmd.u.alloc.count = count;
    struct bs_pd_result res;
    ck_assert_int_eq(th_apply(st, index, &cmd, &res), 0);
    return res.first_id;
}

void th_split_cmd(struct bs_pd_state *st, uint64_t *index, uint64_t shard,
                  const void *key, size_t klen, struct bs_pd_cmd *cmd)
{
    const struct bs_pd_shard *s = bs_pd_shard_find(st, shard);
    ck_assert_ptr_nonnull(s);
    uint32_t n = s->n_replicas;
    uint64_t new_id = th_alloc(st, index, BS_PD_ID_SHARD, 1);
    uint64_t rid = th_alloc(st, index, BS_PD_ID_REPLICA, n);
    s = bs_pd_shard_find(st, shard); /* borrowed pointers may move */
    split_of(s, key, klen, cmd);
    cmd->u.split.new_shard_id = new_id;
    cmd->u.split.n_replicas = n;
    for (uint32_t i = 0; i < n; i++) {
        cmd->u.split.replicas[i] = s->replicas[i];
        cmd->u.split.replicas[i].id =
            BS_ENG_REPLICA_ID(s->replicas[i].node_id, rid + i);
    }
}

int th_split(struct bs_pd_state *st, uint64_t *index, uint64_t shard,
             const void *key, size_t klen, uint64_t *new_id)
{
    struct bs_pd_cmd cmd;
    th_split_cmd(st, index, shard, key, klen, &cmd);
    if (new_id)
        *new_id = cmd.u.split.new_shard_id;
    return th_apply(st, index, &cmd, NULL);
}

const struct bs_pd_shard *th_route_linear(const struct bs_pd_state *st,
                                          const void *key, size_t len)
{
    const struct bs_pd_shard *hit = NULL;
    for (size_t i = 0; i < bs_pd_shard_count(st); i++) {
        const struct bs_pd_shard *s = bs_pd_shard_at(st, i);
        if (bs_pd_shard_contains(s, key, len)) {
            ck_assert_msg(hit == NULL, "key in shards %llu and %llu",
                          (unsigned long long)hit->id,
                          (unsigned long long)s->id);
            hit = s;
        }
    }
    return hit;
}

/* --------------------------------------------------------------- state */

void th_check(const struct bs_pd_state *st)
{
    const char *why = bs_pd_check(st);
    ck_assert_msg(why == NULL, "invariant broken: %s", why);
}

uint8_t *th_image(const struct bs_pd_state *st, size_t *len)
{
    uint8_t *img;
    ck_assert_int_eq(bs_pd_encode_all(st, &img, len), 0);
    return img;
}

struct bs_pd_state *th_copy(const struct bs_pd_state *st)
{
    size_t len;
    uint8_t *img = th_image(st, &len);
    struct bs_pd_state *copy = bs_pd_state_create();
    ck_assert_int_eq(bs_pd_decode_all(copy, img, len, NULL), 0);
    free(img);
    return copy;
}

bool th_equal(const struct bs_pd_state *a, const struct bs_pd_state *b)
{
    size_t xl, yl;
    uint8_t *x = th_image(a, &xl);
    uint8_t *y = th_image(b, &yl);
    bool eq = xl == yl && memcmp(x, y, xl) == 0;
    free(x);
    free(y);
    return eq;
}

/* ------------------------------------------------- in-memory record store */

static int kv_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

int th_kv_put(void *ctx, const void *key, size_t klen, const void *val,
              size_t vlen)
{
    struct th_kv *kv = ctx;
    size_t i = 0;
    while (i < kv->n && kv_cmp(kv->v[i].key, kv->v[i].klen, key, klen) < 0)
        i++;
    bool found =
        i < kv->n && kv_cmp(kv->v[i].key, kv->v[i].klen, key, klen) == 0;
    if (!val) {
        kv->dels++;
        if (found) {
            free(kv->v[i].key);
            free(kv->v[i].val);
            memmove(&kv->v[i], &kv->v[i + 1], (kv->n - i - 1) * sizeof(*kv->v));
            kv->n--;
        }
        return 0;
    }
    kv->puts++;
    if (found) {
        free(kv->v[i].val);
    } else {
        if (kv->n == kv->cap) {
            kv->cap = kv->cap ? kv->cap * 2 : 16;
            kv->v = realloc(kv->v, kv->cap * sizeof(*kv->v));
            ck_assert_ptr_nonnull(kv->v);
        }
        memmove(&kv->v[i + 1], &kv->v[i], (kv->n - i) * sizeof(*kv->v));
        kv->n++;
        kv->v[i].key = malloc(klen);
        memcpy(kv->v[i].key, key, klen);
        kv->v[i].klen = klen;
    }
    kv->v[i].val = malloc(vlen);
    memcpy(kv->v[i].val, val, vlen);
    kv->v[i].vlen = vlen;
    return 0;
}

static int kv_next(void *ctx, const void **key, size_t *klen, const void **val,
                   size_t *vlen)
{
    struct th_kv *kv = ctx;
    if (kv->pos >= kv->n)
        return 0;
    struct th_rec *r = &kv->v[kv->pos++];
    *key = r->key;
    *klen = r->klen;
    *val = r->val;
    *vlen = r->vlen;
    return 1;
}

struct th_rec *th_kv_find(struct th_kv *kv, const void *key, size_t klen)
{
    for (size_t i = 0; i < kv->n; i++)
        if (kv_cmp(kv->v[i].key, kv->v[i].klen, key, klen) == 0)
            return &kv->v[i];
    return NULL;
}

size_t th_rec_key(uint8_t key[10], char kind, uint64_t id)
{
    key[0] = 'p';
    key[1] = (uint8_t)kind;
    if (kind == 'm')
        return 2;
    for (int i = 0; i < 8; i++)
        key[2 + i] = (uint8_t)(id >> (56 - 8 * i));
    return 10;
}

struct th_rec *th_kv_find_id(struct th_kv *kv, char kind, uint64_t id)
{
    uint8_t key[10];
    size_t klen = th_rec_key(key, kind, id);
    return th_kv_find(kv, key, klen);
}

int th_kv_load(struct th_kv *kv, struct bs_pd_state *st, char *errmsg)
{
    kv->pos = 0;
    return bs_pd_load_from(st, kv_next, kv, errmsg);
}

void th_kv_free(struct th_kv *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        free(kv->v[i].key);
        free(kv->v[i].val);
    }
    free(kv->v);
    memset(kv, 0, sizeof(*kv));
}

/* --------------------------------------------------------------- codec */

void th_flip(uint8_t *buf, size_t len, uint64_t *seed, unsigned max_flips)
{
    int flips = 1 + (int)(th_rand(seed) % max_flips);
    for (int f = 0; f < flips; f++)
        buf[th_rand(seed) % len] ^= (uint8_t)(1 + th_rand(seed) % 255);
}

void th_fuzz_cmds(const struct bs_pd_cmd *cmds, size_t n, uint64_t seed,
                  int rounds, unsigned max_flips, unsigned cut_one_in,
                  bool canonical, size_t *ok, size_t *bad)
{
    *ok = *bad = 0;
    for (int round = 0; round < rounds; round++) {
        uint8_t *buf;
        size_t len;
        ck_assert_int_eq(bs_pd_cmd_encode(&cmds[round % n], &buf, &len), 0);
        th_flip(buf, len, &seed, max_flips);
        if (th_rand(&seed) % cut_one_in == 0)
            len = th_rand(&seed) % len;
        struct bs_pd_cmd d;
        int rc = bs_pd_cmd_decode(buf, len, &d);
        ck_assert(rc == 0 || rc == BS_ECORRUPT);
        if (rc == 0) {
            if (canonical) {
                uint8_t *again;
                size_t alen;
                ck_assert_int_eq(bs_pd_cmd_encode(&d, &again, &alen), 0);
                th_assert_bytes(again, alen, buf, len);
            }
            bs_pd_cmd_free(&d);
            ++*ok;
        } else {
            ++*bad;
        }
        free(buf);
    }
}

void th_assert_cmd_truncations(const uint8_t *buf, size_t len)
{
    struct bs_pd_cmd d;
    for (size_t cut = 0; cut < len; cut++) {
        /* A copy of exactly cut bytes, so that reading past the end
         * would show under valgrind / ASan. */
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, buf, cut);
        int rc = bs_pd_cmd_decode(t, cut, &d);
        ck_assert_msg(rc == BS_ECORRUPT, "cut at %zu of %zu: %s", cut, len,
                      bs_err_name(rc));
        free(t);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    ck_assert_int_eq(bs_pd_cmd_decode(longer, len + 1, &d), BS_ECORRUPT);
    free(longer);
}

void th_assert_bytes(uint8_t *got, size_t glen, const uint8_t *want,
                     size_t wlen)
{
    ck_assert_uint_eq(glen, wlen);
    ck_assert_mem_eq(got, want, wlen);
    free(got);
}

/* ------------------------------------------------------------- RocksDB */

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

char *th_tmpdir(void)
{
    char *d = strdup("/tmp/bs_pd_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

void th_rmdir_all(char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

struct bs_eng_db *th_open_db(const char *dir)
{
    struct bs_eng_db *db = NULL;
    char err[256];
    int rc = bs_eng_db_open(dir, NULL, &db, err);
    ck_assert_msg(rc == 0, "open: %s %s", bs_err_name(rc), err);
    return db;
}

void th_save_db(struct bs_pd_state *st, struct bs_eng_db *db)
{
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_ptr_nonnull(wb);
    ck_assert_int_eq(bs_pd_save(st, db, wb), 0);
    ck_assert_int_eq(bs_eng_db_write(db, wb, true), 0);
    bs_eng_wb_destroy(wb);
}

/* ---------------------------------------------------------------- misc */

uint64_t th_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int th_run(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
