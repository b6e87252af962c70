/*
 * fixture.c - see fixture.h.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

static const uint8_t zero_byte[1] = {0};

/* The directory every fixture of this run lives in (fx_run_begin): Check
 * ends a failing test with _exit in its forked child, before the teardown,
 * so the parent removes whatever the children left in it at the end. */
static char run_dir[32];

/* C string -> etcd key bytes ("" = "\0"). */
static void kbytes(const char *s, const uint8_t **p, size_t *n)
{
    if (s == NULL) {
        *p = NULL;
        *n = 0;
    } else if (s[0] == '\0') {
        *p = zero_byte;
        *n = 1;
    } else {
        *p = (const uint8_t *)s;
        *n = strlen(s);
    }
}

static void boot(struct fx *f, const char *start, const char *end)
{
    struct bs_shard_desc d;
    char err[256];
    int rc;

    memset(&d, 0, sizeof d);
    d.id = 1;
    d.start = (uint8_t *)start;
    d.start_len = start ? strlen(start) : 0;
    d.end = (uint8_t *)end;
    d.end_len = end ? strlen(end) : 0;
    d.epoch.conf_ver = 1;
    d.epoch.version = 1;
    d.n_replicas = 3;
    for (uint32_t i = 0; i < 3; i++) {
        d.replicas[i].id = i + 1;
        d.replicas[i].node_id = i + 1;
    }
    ck_assert_int_eq(bs_shard_bootstrap(f->db, &d, NULL, 1, 1), 0);
    ck_assert_int_eq(bs_shard_bootstrap(f->db, &d, NULL, 1, 1), BS_EEXIST);
    rc = bs_shard_load(f->db, 1, &f->limits, &f->s, err);
    ck_assert_msg(rc == 0, "load: %s", err);
    f->index = 1;
    f->term = 1;
}

void fx_open_limits(struct fx *f, const char *start, const char *end,
                    const struct bs_shard_limits *l)
{
    char err[256];
    int rc;

    memset(f, 0, sizeof *f);
    f->limits = *l;
    ck_assert_msg(run_dir[0] != '\0', "fx_run_begin not called");
    snprintf(f->dir, sizeof f->dir, "%s/db.XXXXXX", run_dir);
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    rc = bs_eng_db_open(f->dir, NULL, &f->db, err);
    ck_assert_msg(rc == 0, "db open: %s", err);
    f->wb = bs_eng_wb_create();
    ck_assert_ptr_nonnull(f->wb);
    boot(f, start, end);
}

void fx_open(struct fx *f, const char *start, const char *end)
{
    struct bs_shard_limits l;

    bs_shard_limits_default(&l);
    fx_open_limits(f, start, end, &l);
}

void fx_reopen(struct fx *f)
{
    char err[256];
    int rc;

    bs_shard_destroy(f->s);
    f->s = NULL;
    bs_eng_wb_destroy(f->wb);
    bs_eng_db_close(f->db);
    rc = bs_eng_db_open(f->dir, NULL, &f->db, err);
    ck_assert_msg(rc == 0, "db reopen: %s", err);
    f->wb = bs_eng_wb_create();
    rc = bs_shard_load(f->db, 1, &f->limits, &f->s, err);
    ck_assert_msg(rc == 0, "reload: %s", err);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void fx_close(struct fx *f)
{
    bs_shard_destroy(f->s);
    bs_eng_wb_destroy(f->wb);
    bs_eng_db_close(f->db);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    memset(f, 0, sizeof *f);
}

void fx_run_begin(void)
{
    strcpy(run_dir, "/tmp/bs_shard_test.XXXXXX");
    if (mkdtemp(run_dir) == NULL) {
        perror("mkdtemp");
        exit(EXIT_FAILURE);
    }
}

void fx_run_end(void)
{
    if (run_dir[0] != '\0')
        nftw(run_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    run_dir[0] = '\0';
}

int fx_run(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    int failed;

    fx_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    fx_run_end();
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

struct bs_shard_epoch fx_epoch(const struct fx *f)
{
    return f->s->desc.epoch;
}

int fx_stage(struct fx *f, const struct bs_shard_cmd *cmd,
             struct bs_shard_resp *resp)
{
    uint8_t *buf;
    size_t len;
    int rc;

    ck_assert_int_eq(bs_shard_cmd_encode(cmd, &buf, &len), 0);
    rc =
        bs_shard_apply(f->s, f->db, f->wb, ++f->index, f->term, buf, len, resp);
    free(buf);
    return rc;
}

void fx_write(struct fx *f)
{
    ck_assert_int_eq(bs_eng_db_write(f->db, f->wb, false), 0);
    bs_shard_batch_written(f->s);
    bs_eng_wb_clear(f->wb);
}

void fx_apply(struct fx *f, const struct bs_shard_cmd *cmd,
              struct bs_shard_resp *resp)
{
    int rc = fx_stage(f, cmd, resp);

    ck_assert_msg(rc == 0, "apply: %s: %s", bs_err_name(rc), resp->errmsg);
    ck_assert_uint_eq(f->s->applied_index, f->index);
    fx_write(f);
}

int64_t fx_ok(struct fx *f, const struct bs_shard_cmd *cmd)
{
    struct bs_shard_resp r;
    int64_t rev;

    fx_apply(f, cmd, &r);
    ck_assert_msg(r.err == 0, "command refused: %s: %s", bs_err_name(r.err),
                  r.errmsg);
    rev = r.revision;
    bs_shard_resp_free(&r);
    return rev;
}

int fx_err(struct fx *f, const struct bs_shard_cmd *cmd, char *msg)
{
    struct bs_shard_resp r;
    int err;

    fx_apply(f, cmd, &r);
    err = r.err;
    if (msg != NULL)
        memcpy(msg, r.errmsg, BS_SHARD_ERRMSG_LEN);
    bs_shard_resp_free(&r);
    return err;
}

struct bs_shard_op fx_op_put(const char *k, const char *v)
{
    struct bs_shard_op o;

    memset(&o, 0, sizeof o);
    o.type = BS_SHARD_CMD_PUT;
    kbytes(k, &o.u.put.key, &o.u.put.key_len);
    o.u.put.value = (const uint8_t *)v;
    o.u.put.value_len = strlen(v);
    return o;
}

struct bs_shard_op fx_op_del(const char *k, const char *end)
{
    struct bs_shard_op o;

    memset(&o, 0, sizeof o);
    o.type = BS_SHARD_CMD_DELETE_RANGE;
    kbytes(k, &o.u.del.key, &o.u.del.key_len);
    kbytes(end, &o.u.del.range_end, &o.u.del.range_end_len);
    return o;
}

struct bs_shard_op fx_op_range(const char *k, const char *end)
{
    struct bs_shard_op o;

    memset(&o, 0, sizeof o);
    o.type = BS_SHARD_CMD_RANGE;
    kbytes(k, &o.u.range.key, &o.u.range.key_len);
    kbytes(end, &o.u.range.range_end, &o.u.range.range_end_len);
    return o;
}

struct bs_shard_cmd fx_put(const struct fx *f, const char *k, const char *v)
{
    struct bs_shard_cmd c;
    struct bs_shard_op o = fx_op_put(k, v);

    memset(&c, 0, sizeof c);
    c.type = BS_SHARD_CMD_PUT;
    c.epoch = fx_epoch(f);
    c.u.put = o.u.put;
    return c;
}

struct bs_shard_cmd fx_del(const struct fx *f, const char *k, const char *end)
{
    struct bs_shard_cmd c;
    struct bs_shard_op o = fx_op_del(k, end);

    memset(&c, 0, sizeof c);
    c.type = BS_SHARD_CMD_DELETE_RANGE;
    c.epoch = fx_epoch(f);
    c.u.del = o.u.del;
    return c;
}

struct bs_shard_cmd fx_range(const struct fx *f, const char *k, const char *end)
{
    struct bs_shard_cmd c;
    struct bs_shard_op o = fx_op_range(k, end);

    memset(&c, 0, sizeof c);
    c.type = BS_SHARD_CMD_RANGE;
    c.epoch = fx_epoch(f);
    c.u.range = o.u.range;
    return c;
}

struct bs_shard_compare fx_cmp_num(const char *k, uint8_t target,
                                   uint8_t result, int64_t n)
{
    struct bs_shard_compare c;

    memset(&c, 0, sizeof c);
    c.target = target;
    c.result = result;
    kbytes(k, &c.key, &c.key_len);
    c.number = n;
    return c;
}

struct bs_shard_compare fx_cmp_val(const char *k, uint8_t result, const char *v)
{
    struct bs_shard_compare c;

    memset(&c, 0, sizeof c);
    c.target = BS_SHARD_CMP_VALUE;
    c.result = result;
    kbytes(k, &c.key, &c.key_len);
    c.value = (const uint8_t *)v;
    c.value_len = strlen(v);
    return c;
}

int fx_get(struct fx *f, const char *k, struct bs_shard_kv *kv)
{
    struct bs_shard_range_req q;
    struct bs_shard_resp r;
    struct bs_shard_epoch e = fx_epoch(f);
    int rc;

    memset(&q, 0, sizeof q);
    kbytes(k, &q.key, &q.key_len);
    rc = bs_shard_range(f->s, f->db, NULL, &e, &q, &r);
    ck_assert_msg(rc == 0, "get: %s: %s", bs_err_name(rc), r.errmsg);
    ck_assert_uint_le(r.op.n_kvs, 1);
    if (r.op.n_kvs == 0) {
        bs_shard_resp_free(&r);
        return BS_ENOTFOUND;
    }
    *kv = r.op.kvs[0];
    memset(&r.op.kvs[0], 0, sizeof r.op.kvs[0]);
    bs_shard_resp_free(&r);
    return 0;
}

void fx_kv_free(struct bs_shard_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

int64_t fx_count(struct fx *f, const char *k, const char *end)
{
    struct bs_shard_cmd c = fx_range(f, k, end);
    struct bs_shard_resp r;
    struct bs_shard_epoch e = fx_epoch(f);
    int64_t n;

    c.u.range.count_only = true;
    ck_assert_int_eq(bs_shard_range(f->s, f->db, NULL, &e, &c.u.range, &r), 0);
    ck_assert_uint_eq(r.op.n_kvs, 0);
    n = r.op.count;
    bs_shard_resp_free(&r);
    return n;
}

bool fx_val_is(const struct bs_shard_kv *kv, const char *v)
{
    return kv->value_len == strlen(v) &&
           (kv->value_len == 0 || memcmp(kv->value, v, kv->value_len) == 0);
}

bool fx_key_is(const struct bs_shard_kv *kv, const char *k)
{
    return kv->key_len == strlen(k) && memcmp(kv->key, k, kv->key_len) == 0;
}
