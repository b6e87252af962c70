/*
 * test_apply.c - unit tests of shard/apply.c, read.c and check.c over a
 * real RocksDB: etcd's KV semantics (revisions, versions, prev_kv,
 * DeleteRange forms, Range options, Txn compares on every target with
 * every result, a Txn seeing its own writes), the revision rules, epoch /
 * range / limit refusals, idempotent replay, batches of several entries
 * (the overlay), and the apply state across a reopen and corruption.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static struct fx f;

static void setup(void)
{
    fx_open(&f, NULL, NULL);
}

static void teardown(void)
{
    fx_close(&f);
}

static struct bs_shard_cmd txn_cmd(struct bs_shard_compare *c, size_t nc,
                                   struct bs_shard_op *s, size_t ns,
                                   struct bs_shard_op *fl, size_t nf)
{
    struct bs_shard_cmd cmd;

    memset(&cmd, 0, sizeof cmd);
    cmd.type = BS_SHARD_CMD_TXN;
    cmd.epoch = fx_epoch(&f);
    cmd.u.txn.compares = c;
    cmd.u.txn.n_compares = nc;
    cmd.u.txn.success = s;
    cmd.u.txn.n_success = ns;
    cmd.u.txn.failure = fl;
    cmd.u.txn.n_failure = nf;
    return cmd;
}

/* Runs a txn with one compare and no ops; returns succeeded. */
static bool cmp_holds(struct bs_shard_compare c)
{
    struct bs_shard_cmd cmd = txn_cmd(&c, 1, NULL, 0, NULL, 0);
    struct bs_shard_resp r;
    bool ok;

    fx_apply(&f, &cmd, &r);
    ck_assert_msg(r.err == 0, "%s", r.errmsg);
    ok = r.succeeded;
    bs_shard_resp_free(&r);
    return ok;
}

/* ================================================================ put */

START_TEST(test_put_revisions_and_versions)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;
    struct bs_shard_kv kv;

    ck_assert_int_eq(f.s->revision, 1); /* a fresh etcd is at 1 */
    c = fx_put(&f, "a", "1");
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.revision, 2);
    ck_assert_uint_eq(r.op.n_kvs, 0);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_get(&f, "a", &kv), 0);
    ck_assert(fx_val_is(&kv, "1"));
    ck_assert_int_eq(kv.create_revision, 2);
    ck_assert_int_eq(kv.mod_revision, 2);
    ck_assert_int_eq(kv.version, 1);
    fx_kv_free(&kv);
}
END_TEST

START_TEST(test_put_update_and_prev_kv)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;
    struct bs_shard_kv kv;

    c = fx_put(&f, "a", "1");
    c.u.put.prev_kv = true;
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 0); /* no previous key */
    bs_shard_resp_free(&r);
    c = fx_put(&f, "b", "x"); /* revision 3 */
    fx_ok(&f, &c);
    c = fx_put(&f, "a", "2");
    c.u.put.prev_kv = true;
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.revision, 4);
    ck_assert_uint_eq(r.op.n_kvs, 1);
    ck_assert(fx_key_is(&r.op.kvs[0], "a"));
    ck_assert(fx_val_is(&r.op.kvs[0], "1"));
    ck_assert_int_eq(r.op.kvs[0].mod_revision, 2);
    ck_assert_int_eq(r.op.kvs[0].version, 1);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_get(&f, "a", &kv), 0);
    ck_assert(fx_val_is(&kv, "2"));
    ck_assert_int_eq(kv.create_revision, 2);
    ck_assert_int_eq(kv.mod_revision, 4);
    ck_assert_int_eq(kv.version, 2);
    fx_kv_free(&kv);
}
END_TEST

START_TEST(test_put_same_value_still_bumps)
{
    struct bs_shard_cmd c = fx_put(&f, "a", "v");

    ck_assert_int_eq(fx_ok(&f, &c), 2);
    ck_assert_int_eq(fx_ok(&f, &c), 3);
    ck_assert_int_eq(fx_ok(&f, &c), 4);
}
END_TEST

START_TEST(test_put_lease_stored_and_empty_value)
{
    struct bs_shard_cmd c = fx_put(&f, "a", "");
    struct bs_shard_kv kv;

    c.u.put.lease = 0x1234;
    fx_ok(&f, &c);
    ck_assert_int_eq(fx_get(&f, "a", &kv), 0);
    ck_assert_int_eq(kv.lease, 0x1234);
    ck_assert_uint_eq(kv.value_len, 0);
    fx_kv_free(&kv);
}
END_TEST

START_TEST(test_put_ignore_flags_not_implemented)
{
    struct bs_shard_cmd c = fx_put(&f, "a", "v");
    char msg[BS_SHARD_ERRMSG_LEN];

    c.u.put.ignore_value = true;
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_ENOTIMPL);
    ck_assert_ptr_nonnull(strstr(msg, "ignore_value"));
    c.u.put.ignore_value = false;
    c.u.put.ignore_lease = true;
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_ENOTIMPL);
    ck_assert_ptr_nonnull(strstr(msg, "ignore_lease"));
    ck_assert_int_eq(f.s->revision, 1);
    ck_assert_uint_eq(f.s->applied_index, 3); /* refusals still consumed */
    ck_assert_int_eq(fx_count(&f, "", ""), 0);
}
END_TEST

START_TEST(test_empty_key_refused)
{
    struct bs_shard_cmd c = fx_put(&f, "a", "v");
    char msg[BS_SHARD_ERRMSG_LEN];

    c.u.put.key_len = 0;
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "key is not provided"));
    c = fx_range(&f, "a", NULL);
    c.u.range.key_len = 0;
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
}
END_TEST

/* ================================================== live reads */

/* bs_shard_range_live answers what bs_shard_range answers (same keys,
 * values, revisions, count, more), and refuses while writes are staged. */
START_TEST(test_range_live_matches_snapshot_read)
{
    static const char *const keys[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++) {
        struct bs_shard_cmd c = fx_put(&f, keys[i], keys[i]);
        fx_ok(&f, &c);
    }
    struct bs_shard_cmd q = fx_range(&f, "b", "e");
    q.u.range.limit = 2;
    struct bs_shard_epoch e = fx_epoch(&f);
    struct bs_shard_resp a, b;
    ck_assert_int_eq(bs_shard_range(f.s, f.db, NULL, &e, &q.u.range, &a), 0);
    ck_assert_int_eq(bs_shard_range_live(f.s, f.db, &e, &q.u.range, &b), 0);
    ck_assert_int_eq(a.revision, b.revision);
    ck_assert_int_eq(a.op.count, b.op.count);
    ck_assert_int_eq(a.op.more, b.op.more);
    ck_assert_uint_eq(a.op.n_kvs, 2);
    ck_assert_uint_eq(b.op.n_kvs, 2);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_mem_eq(a.op.kvs[i].key, b.op.kvs[i].key, 1);
        ck_assert_int_eq(a.op.kvs[i].mod_revision, b.op.kvs[i].mod_revision);
    }
    bs_shard_resp_free(&a);
    bs_shard_resp_free(&b);

    /* A stale epoch is refused as by the snapshot read. */
    struct bs_shard_epoch old = e;
    old.version = e.version + 5;
    ck_assert_int_eq(bs_shard_range_live(f.s, f.db, &old, &q.u.range, &b),
                     BS_ESTALE);
    bs_shard_resp_free(&b);

    /* Staged but unwritten: the live db does not show it yet, so the read
     * is refused rather than answered from a state that is not the db's. */
    struct bs_shard_cmd w = fx_put(&f, "c", "new");
    struct bs_shard_resp wr;
    ck_assert_int_eq(fx_stage(&f, &w, &wr), 0);
    bs_shard_resp_free(&wr);
    ck_assert_int_eq(bs_shard_range_live(f.s, f.db, &e, &q.u.range, &b),
                     BS_EBUSY);
    bs_shard_resp_free(&b);
    fx_write(&f);
    e = fx_epoch(&f);
    q = fx_range(&f, "c", NULL);
    ck_assert_int_eq(bs_shard_range_live(f.s, f.db, &e, &q.u.range, &b), 0);
    ck_assert_uint_eq(b.op.n_kvs, 1);
    ck_assert_uint_eq(b.op.kvs[0].value_len, 3);
    ck_assert_mem_eq(b.op.kvs[0].value, "new", 3);
    bs_shard_resp_free(&b);
}
END_TEST

/* ======================================================= delete range */

static void put_all(const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct bs_shard_cmd c = fx_put(&f, keys[i], keys[i]);

        fx_ok(&f, &c);
    }
}

START_TEST(test_delete_single)
{
    static const char *const keys[] = {"a", "b"};
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    put_all(keys, 2); /* revisions 2, 3 */
    c = fx_del(&f, "a", NULL);
    c.u.del.prev_kv = true;
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.op.deleted, 1);
    ck_assert_int_eq(r.revision, 4);
    ck_assert_uint_eq(r.op.n_kvs, 1);
    ck_assert(fx_key_is(&r.op.kvs[0], "a"));
    ck_assert(fx_val_is(&r.op.kvs[0], "a"));
    ck_assert_int_eq(r.op.kvs[0].mod_revision, 2);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_count(&f, "", ""), 1);

    /* Deleting what is not there: deleted 0, no new revision. */
    c = fx_del(&f, "a", NULL);
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.op.deleted, 0);
    ck_assert_int_eq(r.revision, 4);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(f.s->revision, 4);
}
END_TEST

START_TEST(test_delete_range_prefix_all)
{
    static const char *const keys[] = {"a",   "b",   "c",  "d",
                                       "p/1", "p/2", "p0", "q"};
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    put_all(keys, 8); /* revision 9 */
    /* [b, d) without prev_kv: count only. */
    c = fx_del(&f, "b", "d");
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.op.deleted, 2);
    ck_assert_uint_eq(r.op.n_kvs, 0);
    ck_assert_int_eq(r.revision, 10);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_count(&f, "a", "e"), 2); /* a, d */

    /* Prefix "p/" = ["p/", "p0"), with prev_kv. */
    c = fx_del(&f, "p/", "p0");
    c.u.del.prev_kv = true;
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.op.deleted, 2);
    ck_assert_uint_eq(r.op.n_kvs, 2);
    ck_assert(fx_key_is(&r.op.kvs[0], "p/1"));
    ck_assert(fx_key_is(&r.op.kvs[1], "p/2"));
    ck_assert(fx_val_is(&r.op.kvs[1], "p/2"));
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_count(&f, "p", "q"), 1); /* p0 stays */

    /* Everything >= "c" ("\0" end). */
    c = fx_del(&f, "c", "");
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.op.deleted, 3); /* d, p0, q */
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_count(&f, "", ""), 1);

    /* Every key ("\0", "\0"). */
    c = fx_del(&f, "", "");
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.op.deleted, 1);
    ck_assert_int_eq(r.revision, 13);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_count(&f, "", ""), 0);
}
END_TEST

START_TEST(test_recreate_after_delete_resets_version)
{
    struct bs_shard_cmd c = fx_put(&f, "k", "1");
    struct bs_shard_kv kv;

    fx_ok(&f, &c); /* 2 */
    fx_ok(&f, &c); /* 3 */
    c = fx_del(&f, "k", NULL);
    fx_ok(&f, &c); /* 4 */
    c = fx_put(&f, "k", "2");
    ck_assert_int_eq(fx_ok(&f, &c), 5);
    ck_assert_int_eq(fx_get(&f, "k", &kv), 0);
    ck_assert_int_eq(kv.version, 1);
    ck_assert_int_eq(kv.create_revision, 5);
    ck_assert_int_eq(kv.mod_revision, 5);
    fx_kv_free(&kv);
}
END_TEST

/* ============================================================= range */

static void put_abcde(void)
{
    static const char *const keys[] = {"a", "b", "c", "d", "e"};

    put_all(keys, 5); /* a=2 .. e=6 */
}

START_TEST(test_range_limit_more_count)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    put_abcde();
    c = fx_range(&f, "a", "");
    c.u.range.limit = 2;
    fx_apply(&f, &c, &r); /* through the log, as a linearizable fallback */
    ck_assert_int_eq(r.err, 0);
    ck_assert_uint_eq(r.op.n_kvs, 2);
    ck_assert(fx_key_is(&r.op.kvs[0], "a"));
    ck_assert(fx_key_is(&r.op.kvs[1], "b"));
    ck_assert(fx_val_is(&r.op.kvs[1], "b"));
    ck_assert(r.op.more);
    ck_assert_int_eq(r.op.count, 5);
    ck_assert_int_eq(r.revision, 6);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(f.s->revision, 6); /* a read is no change */

    c.u.range.limit = 5;
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 5);
    ck_assert(!r.op.more);
    bs_shard_resp_free(&r);

    /* [b, d) */
    c = fx_range(&f, "b", "d");
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 2);
    ck_assert_int_eq(r.op.count, 2);
    bs_shard_resp_free(&r);

    /* Missing single key, and an empty interval. */
    c = fx_range(&f, "zz", NULL);
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 0);
    ck_assert_int_eq(r.op.count, 0);
    bs_shard_resp_free(&r);
    c = fx_range(&f, "d", "b");
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.op.count, 0);
    bs_shard_resp_free(&r);
}
END_TEST

START_TEST(test_range_keys_only_count_only)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    put_abcde();
    c = fx_range(&f, "a", "");
    c.u.range.keys_only = true;
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 5);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_ptr_null(r.op.kvs[i].value);
        ck_assert_uint_eq(r.op.kvs[i].value_len, 0);
        ck_assert_int_eq(r.op.kvs[i].mod_revision, (int64_t)i + 2);
    }
    bs_shard_resp_free(&r);

    c = fx_range(&f, "b", "");
    c.u.range.count_only = true;
    c.u.range.limit = 1;
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 0);
    ck_assert_int_eq(r.op.count, 4);
    ck_assert(!r.op.more);
    bs_shard_resp_free(&r);
}
END_TEST

START_TEST(test_range_revision_filters)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    put_abcde();                  /* a=2 .. e=6 */
    c = fx_put(&f, "a", "again"); /* a: create 2, mod 7 */
    fx_ok(&f, &c);
    c = fx_range(&f, "a", "");
    c.u.range.min_mod_revision = 4; /* c, d, e, a(7) */
    c.u.range.max_mod_revision = 6; /* c, d, e */
    c.u.range.limit = 2;
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 2);
    ck_assert(fx_key_is(&r.op.kvs[0], "c"));
    ck_assert(fx_key_is(&r.op.kvs[1], "d"));
    ck_assert(r.op.more);
    ck_assert_int_eq(r.op.count, 5); /* count ignores filters, as etcd */
    bs_shard_resp_free(&r);

    c = fx_range(&f, "a", "");
    c.u.range.max_create_revision = 3; /* a (create 2), b */
    c.u.range.min_create_revision = 2;
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 2);
    ck_assert(fx_key_is(&r.op.kvs[0], "a"));
    ck_assert(fx_key_is(&r.op.kvs[1], "b"));
    ck_assert(!r.op.more);
    bs_shard_resp_free(&r);
}
END_TEST

START_TEST(test_range_sort)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    put_abcde();
    c = fx_put(&f, "b", "zzz"); /* b: version 2, mod 7 */
    fx_ok(&f, &c);
    c = fx_range(&f, "a", "");
    c.u.range.sort_order = BS_SHARD_SORT_DESCEND;
    c.u.range.limit = 2;
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 2);
    ck_assert(fx_key_is(&r.op.kvs[0], "e"));
    ck_assert(fx_key_is(&r.op.kvs[1], "d"));
    ck_assert(r.op.more);
    bs_shard_resp_free(&r);

    /* MOD with order NONE sorts ascending (etcd); DESCEND puts b first. */
    c = fx_range(&f, "a", "");
    c.u.range.sort_target = BS_SHARD_SORT_MOD;
    c.u.range.sort_order = BS_SHARD_SORT_DESCEND;
    fx_apply(&f, &c, &r);
    ck_assert(fx_key_is(&r.op.kvs[0], "b"));
    ck_assert(fx_key_is(&r.op.kvs[1], "e"));
    bs_shard_resp_free(&r);
    c.u.range.sort_order = BS_SHARD_SORT_NONE;
    fx_apply(&f, &c, &r);
    ck_assert(fx_key_is(&r.op.kvs[0], "a"));
    ck_assert(fx_key_is(&r.op.kvs[4], "b"));
    bs_shard_resp_free(&r);

    /* VALUE with keys_only: sorted by value, values dropped after. */
    c = fx_range(&f, "a", "");
    c.u.range.sort_target = BS_SHARD_SORT_VALUE;
    c.u.range.sort_order = BS_SHARD_SORT_DESCEND;
    c.u.range.keys_only = true;
    c.u.range.limit = 1;
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 1);
    ck_assert(fx_key_is(&r.op.kvs[0], "b"));
    ck_assert_ptr_null(r.op.kvs[0].value);
    bs_shard_resp_free(&r);

    /* VERSION ascending: ties by key; b (version 2) last. */
    c = fx_range(&f, "a", "");
    c.u.range.sort_target = BS_SHARD_SORT_VERSION;
    c.u.range.sort_order = BS_SHARD_SORT_ASCEND;
    fx_apply(&f, &c, &r);
    ck_assert(fx_key_is(&r.op.kvs[0], "a"));
    ck_assert(fx_key_is(&r.op.kvs[1], "c"));
    ck_assert(fx_key_is(&r.op.kvs[4], "b"));
    bs_shard_resp_free(&r);
}
END_TEST

START_TEST(test_range_historical_revision)
{
    struct bs_shard_cmd c;
    char msg[BS_SHARD_ERRMSG_LEN];

    put_abcde(); /* revision 6 */
    c = fx_range(&f, "a", NULL);
    c.u.range.revision = 6; /* the current revision is fine */
    ck_assert_int_eq(fx_err(&f, &c, NULL), 0);
    c.u.range.revision = 3;
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_ENOTIMPL);
    ck_assert_ptr_nonnull(strstr(msg, "historical"));
    c.u.range.revision = 7;
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "future"));
    c.u.range.revision = 0;
    c.u.range.limit = -1;
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
}
END_TEST

/* =============================================================== txn */

START_TEST(test_txn_compare_value)
{
    struct bs_shard_cmd c = fx_put(&f, "k", "m");

    fx_ok(&f, &c);
    ck_assert(cmp_holds(fx_cmp_val("k", BS_SHARD_CMP_EQUAL, "m")));
    ck_assert(!cmp_holds(fx_cmp_val("k", BS_SHARD_CMP_EQUAL, "n")));
    ck_assert(cmp_holds(fx_cmp_val("k", BS_SHARD_CMP_NOT_EQUAL, "n")));
    ck_assert(!cmp_holds(fx_cmp_val("k", BS_SHARD_CMP_NOT_EQUAL, "m")));
    ck_assert(cmp_holds(fx_cmp_val("k", BS_SHARD_CMP_GREATER, "a")));
    ck_assert(!cmp_holds(fx_cmp_val("k", BS_SHARD_CMP_GREATER, "m")));
    ck_assert(cmp_holds(fx_cmp_val("k", BS_SHARD_CMP_LESS, "ma")));
    ck_assert(!cmp_holds(fx_cmp_val("k", BS_SHARD_CMP_LESS, "m")));
    /* A value compare on a missing key always fails (etcd). */
    ck_assert(!cmp_holds(fx_cmp_val("nokey", BS_SHARD_CMP_NOT_EQUAL, "x")));
    ck_assert(!cmp_holds(fx_cmp_val("nokey", BS_SHARD_CMP_EQUAL, "")));
}
END_TEST

START_TEST(test_txn_compare_numbers)
{
    struct bs_shard_cmd c = fx_put(&f, "k", "1");

    fx_ok(&f, &c); /* k: create 2, mod 2, version 1 */
    c = fx_put(&f, "x", "1");
    fx_ok(&f, &c); /* 3 */
    c = fx_put(&f, "k", "2");
    c.u.put.lease = 77;
    fx_ok(&f, &c); /* k: create 2, mod 4, version 2, lease 77 */

    static const struct {
        uint8_t target;
        int64_t actual;
    } t[] = {
        {BS_SHARD_CMP_VERSION, 2},
        {BS_SHARD_CMP_CREATE, 2},
        {BS_SHARD_CMP_MOD, 4},
        {BS_SHARD_CMP_LEASE, 77},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t v = t[i].actual;
        uint8_t tg = t[i].target;

        ck_assert(cmp_holds(fx_cmp_num("k", tg, BS_SHARD_CMP_EQUAL, v)));
        ck_assert(!cmp_holds(fx_cmp_num("k", tg, BS_SHARD_CMP_EQUAL, v + 1)));
        ck_assert(cmp_holds(fx_cmp_num("k", tg, BS_SHARD_CMP_NOT_EQUAL, 0)));
        ck_assert(!cmp_holds(fx_cmp_num("k", tg, BS_SHARD_CMP_NOT_EQUAL, v)));
        ck_assert(cmp_holds(fx_cmp_num("k", tg, BS_SHARD_CMP_GREATER, v - 1)));
        ck_assert(!cmp_holds(fx_cmp_num("k", tg, BS_SHARD_CMP_GREATER, v)));
        ck_assert(cmp_holds(fx_cmp_num("k", tg, BS_SHARD_CMP_LESS, v + 1)));
        ck_assert(!cmp_holds(fx_cmp_num("k", tg, BS_SHARD_CMP_LESS, v)));
        /* A missing key compares as zero: version == 0 is etcd's
         * "does not exist". */
        ck_assert(cmp_holds(fx_cmp_num("nokey", tg, BS_SHARD_CMP_EQUAL, 0)));
        ck_assert(!cmp_holds(fx_cmp_num("nokey", tg, BS_SHARD_CMP_GREATER, 0)));
    }
}
END_TEST

START_TEST(test_txn_compare_over_range)
{
    static const char *const keys[] = {"r/1", "r/2", "r/3"};
    struct bs_shard_compare c;

    put_all(keys, 3); /* mods 2, 3, 4 */
    c = fx_cmp_num("r/", BS_SHARD_CMP_MOD, BS_SHARD_CMP_GREATER, 1);
    c.range_end = (const uint8_t *)"r0";
    c.range_end_len = 2;
    ck_assert(cmp_holds(c));
    c.number = 2; /* r/1 has mod 2, not > 2 */
    ck_assert(!cmp_holds(c));
    c.result = BS_SHARD_CMP_LESS;
    c.number = 5;
    ck_assert(cmp_holds(c));
}
END_TEST

START_TEST(test_txn_branches_and_own_writes)
{
    struct bs_shard_compare cmp =
        fx_cmp_num("k", BS_SHARD_CMP_VERSION, BS_SHARD_CMP_EQUAL, 0);
    struct bs_shard_op succ[4] = {
        fx_op_put("k", "v1"),
        fx_op_range("k", NULL),
        fx_op_put("j", "v2"),
        fx_op_range("a", ""),
    };
    struct bs_shard_op fail[1] = {fx_op_range("k", NULL)};
    struct bs_shard_cmd c = txn_cmd(&cmp, 1, succ, 4, fail, 1);
    struct bs_shard_resp r;
    struct bs_shard_kv kv;

    /* k does not exist: success runs; its reads see its writes. */
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert(r.succeeded);
    ck_assert_int_eq(r.revision, 2); /* two puts, one revision */
    ck_assert_uint_eq(r.n_ops, 4);
    ck_assert_uint_eq(r.ops[0].type, BS_SHARD_CMD_PUT);
    ck_assert_uint_eq(r.ops[1].type, BS_SHARD_CMD_RANGE);
    ck_assert_uint_eq(r.ops[1].n_kvs, 1);
    ck_assert(fx_val_is(&r.ops[1].kvs[0], "v1"));
    ck_assert_int_eq(r.ops[1].kvs[0].mod_revision, 2);
    ck_assert_int_eq(r.ops[1].kvs[0].version, 1);
    ck_assert_uint_eq(r.ops[3].n_kvs, 2); /* j and k */
    ck_assert(fx_key_is(&r.ops[3].kvs[0], "j"));
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_get(&f, "j", &kv), 0);
    ck_assert_int_eq(kv.mod_revision, 2);
    fx_kv_free(&kv);

    /* Now k exists: failure runs, nothing changes. */
    c.epoch = fx_epoch(&f);
    fx_apply(&f, &c, &r);
    ck_assert(!r.succeeded);
    ck_assert_uint_eq(r.n_ops, 1);
    ck_assert(fx_val_is(&r.ops[0].kvs[0], "v1"));
    ck_assert_int_eq(r.revision, 2);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(f.s->revision, 2);
}
END_TEST

START_TEST(test_txn_delete_then_read)
{
    static const char *const keys[] = {"a", "b"};
    struct bs_shard_op ops[3] = {
        fx_op_del("a", NULL),
        fx_op_range("a", "c"),
        fx_op_del("zz", NULL),
    };
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    put_all(keys, 2);
    c = txn_cmd(NULL, 0, ops, 3, NULL, 0); /* no compare: success */
    fx_apply(&f, &c, &r);
    ck_assert(r.succeeded);
    ck_assert_int_eq(r.ops[0].deleted, 1);
    ck_assert_int_eq(r.ops[1].count, 1); /* sees the delete */
    ck_assert(fx_key_is(&r.ops[1].kvs[0], "b"));
    ck_assert_int_eq(r.ops[2].deleted, 0);
    ck_assert_int_eq(r.revision, 4);
    bs_shard_resp_free(&r);
}
END_TEST

START_TEST(test_txn_revision_rules)
{
    struct bs_shard_op ops[2] = {fx_op_del("nothing", NULL),
                                 fx_op_range("a", "")};
    struct bs_shard_cmd c = txn_cmd(NULL, 0, ops, 2, NULL, 0);
    struct bs_shard_resp r;

    fx_apply(&f, &c, &r); /* a no-op delete and a read: no revision */
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.revision, 1);
    bs_shard_resp_free(&r);
    c = txn_cmd(NULL, 0, NULL, 0, NULL, 0); /* empty txn */
    ck_assert_int_eq(fx_ok(&f, &c), 1);
    ck_assert_int_eq(f.s->revision, 1);
}
END_TEST

START_TEST(test_txn_duplicate_keys_refused)
{
    struct bs_shard_op dup_put[2] = {fx_op_put("k", "1"), fx_op_put("k", "2")};
    struct bs_shard_op put_del[2] = {fx_op_del("a", "z"), fx_op_put("k", "1")};
    struct bs_shard_op del_all[2] = {fx_op_put("k", "1"), fx_op_del("b", "")};
    struct bs_shard_op fine[2] = {fx_op_del("a", "c"), fx_op_put("k", "1")};
    struct bs_shard_cmd c;
    char msg[BS_SHARD_ERRMSG_LEN];

    c = txn_cmd(NULL, 0, dup_put, 2, NULL, 0);
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "duplicate key"));
    c = txn_cmd(NULL, 0, NULL, 0, put_del, 2);
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
    c = txn_cmd(NULL, 0, del_all, 2, NULL, 0);
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
    ck_assert_int_eq(fx_count(&f, "", ""), 0); /* nothing half-applied */
    c = txn_cmd(NULL, 0, fine, 2, NULL, 0);
    ck_assert_int_eq(fx_err(&f, &c, NULL), 0);
    ck_assert_int_eq(fx_count(&f, "", ""), 1);
}
END_TEST

START_TEST(test_txn_too_many_ops)
{
    struct bs_shard_op ops[BS_SHARD_DEFAULT_MAX_TXN_OPS + 1];
    struct bs_shard_cmd c;
    char msg[BS_SHARD_ERRMSG_LEN];

    for (size_t i = 0; i < BS_SHARD_DEFAULT_MAX_TXN_OPS + 1; i++)
        ops[i] = fx_op_range("a", NULL);
    c = txn_cmd(NULL, 0, ops, BS_SHARD_DEFAULT_MAX_TXN_OPS + 1, NULL, 0);
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "max_txn_ops"));
    c.u.txn.n_success = BS_SHARD_DEFAULT_MAX_TXN_OPS;
    ck_assert_int_eq(fx_err(&f, &c, NULL), 0);
}
END_TEST

/* ========================================================== refusals */

START_TEST(test_stale_epoch_refused)
{
    struct bs_shard_cmd c = fx_put(&f, "a", "v");
    char msg[BS_SHARD_ERRMSG_LEN];
    uint64_t applied;

    c.epoch.version = 0;
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_ESTALE);
    ck_assert_ptr_nonnull(strstr(msg, "shard 1 range"));
    ck_assert_ptr_nonnull(strstr(msg, "version=1"));
    ck_assert_ptr_nonnull(strstr(msg, "refresh"));
    c.epoch.version = 2; /* newer than the shard is refused too */
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_ESTALE);
    applied = f.s->applied_index;
    ck_assert_uint_eq(applied, 3);
    ck_assert_int_eq(f.s->revision, 1);
    ck_assert_int_eq(fx_count(&f, "", ""), 0);
    /* conf_ver is not compared for KV commands. */
    c.epoch.version = 1;
    c.epoch.conf_ver = 99;
    ck_assert_int_eq(fx_err(&f, &c, NULL), 0);
}
END_TEST

START_TEST(test_key_outside_range_refused)
{
    struct fx *g = &f;
    struct bs_shard_cmd c;
    char msg[BS_SHARD_ERRMSG_LEN];

    fx_close(&f);
    fx_open(g, "b", "m");
    c = fx_put(g, "a", "v");
    ck_assert_int_eq(fx_err(g, &c, msg), BS_ERANGE);
    ck_assert_ptr_nonnull(strstr(msg, "\"a\""));
    ck_assert_ptr_nonnull(strstr(msg, "[\"b\", \"m\")"));
    ck_assert_ptr_nonnull(strstr(msg, "version=1"));
    c = fx_put(g, "m", "v"); /* end is exclusive */
    ck_assert_int_eq(fx_err(g, &c, NULL), BS_ERANGE);
    c = fx_put(g, "b", "v"); /* start is inclusive */
    ck_assert_int_eq(fx_err(g, &c, NULL), 0);
    c = fx_put(g, "lzzz", "v");
    ck_assert_int_eq(fx_err(g, &c, NULL), 0);
    c = fx_range(g, "c", "z");
    ck_assert_int_eq(fx_err(g, &c, msg), BS_ERANGE);
    ck_assert_ptr_nonnull(strstr(msg, "not inside"));
    c = fx_range(g, "c", ""); /* unbounded end over a bounded shard */
    ck_assert_int_eq(fx_err(g, &c, NULL), BS_ERANGE);
    c = fx_range(g, "b", "m");
    ck_assert_int_eq(fx_err(g, &c, NULL), 0);
    c = fx_del(g, "a", "c");
    ck_assert_int_eq(fx_err(g, &c, NULL), BS_ERANGE);
    {
        struct bs_shard_compare cmp =
            fx_cmp_num("x", BS_SHARD_CMP_VERSION, BS_SHARD_CMP_EQUAL, 0);
        struct bs_shard_op op = fx_op_put("c", "1");

        c = txn_cmd(&cmp, 1, &op, 1, NULL, 0);
        c.epoch = fx_epoch(g);
        ck_assert_int_eq(fx_err(g, &c, NULL), BS_ERANGE);
        cmp = fx_cmp_num("c", BS_SHARD_CMP_VERSION, BS_SHARD_CMP_EQUAL, 0);
        op = fx_op_put("n", "1"); /* an op outside */
        c = txn_cmd(&cmp, 1, NULL, 0, &op, 1);
        c.epoch = fx_epoch(g);
        ck_assert_int_eq(fx_err(g, &c, NULL), BS_ERANGE);
    }
    ck_assert_int_eq(fx_count(g, "b", "m"), 2);
    /* The read path checks too. */
    {
        struct bs_shard_resp r;
        struct bs_shard_epoch e = fx_epoch(g);

        c = fx_range(g, "n", NULL);
        ck_assert_int_eq(bs_shard_range(g->s, g->db, NULL, &e, &c.u.range, &r),
                         BS_ERANGE);
        ck_assert_int_eq(r.err, BS_ERANGE);
        bs_shard_resp_free(&r);
    }
}
END_TEST

START_TEST(test_size_limits)
{
    char *big = malloc(BS_SHARD_DEFAULT_MAX_VALUE + 2);
    struct bs_shard_cmd c;
    char msg[BS_SHARD_ERRMSG_LEN];

    memset(big, 'x', BS_SHARD_DEFAULT_MAX_VALUE + 1);
    big[BS_SHARD_DEFAULT_MAX_VALUE + 1] = '\0';
    c = fx_put(&f, "k", big);
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "max_value"));
    ck_assert_ptr_nonnull(strstr(msg, "1048576"));
    c.u.put.value_len = BS_SHARD_DEFAULT_MAX_VALUE; /* exactly the limit */
    ck_assert_int_eq(fx_err(&f, &c, NULL), 0);

    big[BS_SHARD_DEFAULT_MAX_KEY + 1] = '\0';
    c = fx_put(&f, big, "v");
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "max_key"));
    ck_assert_ptr_nonnull(strstr(msg, "4096"));
    c.u.put.key_len = BS_SHARD_DEFAULT_MAX_KEY;
    ck_assert_int_eq(fx_err(&f, &c, NULL), 0);
    c = fx_range(&f, "a", big);
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "range_end"));
    ck_assert_int_eq(fx_count(&f, "", ""), 2);
    free(big);
}
END_TEST

START_TEST(test_size_limits_configurable)
{
    struct bs_shard_limits l = {.max_key = 3, .max_value = 4, .max_txn_ops = 1};
    struct bs_shard_cmd c;
    char msg[BS_SHARD_ERRMSG_LEN];

    fx_close(&f);
    fx_open_limits(&f, NULL, NULL, &l);
    c = fx_put(&f, "abc", "1234");
    ck_assert_int_eq(fx_err(&f, &c, NULL), 0);
    c = fx_put(&f, "abc", "12345");
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "limit of 4 bytes (max_value)"));
    c = fx_put(&f, "abcd", "1");
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "limit of 3 bytes (max_key)"));
    /* bs_shard_validate says the same before proposing. */
    ck_assert_int_eq(bs_shard_validate(f.s, &c, msg), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "max_key"));
    c = fx_put(&f, "ab", "1");
    ck_assert_int_eq(bs_shard_validate(f.s, &c, msg), 0);
}
END_TEST

/* ==================================================== apply machinery */

START_TEST(test_reapply_same_index_is_noop)
{
    struct bs_shard_cmd c = fx_put(&f, "a", "1");
    struct bs_shard_resp r;
    struct bs_shard_kv kv;
    uint8_t *buf;
    size_t len;

    fx_ok(&f, &c); /* index 2 */
    c = fx_put(&f, "a", "2");
    ck_assert_int_eq(bs_shard_cmd_encode(&c, &buf, &len), 0);
    for (uint64_t idx = 1; idx <= 2; idx++) {
        ck_assert_int_eq(bs_shard_apply(f.s, f.db, f.wb, idx, 1, buf, len, &r),
                         0);
        ck_assert(r.skipped);
        ck_assert_int_eq(r.err, 0);
        bs_shard_resp_free(&r);
    }
    ck_assert_uint_eq(bs_eng_wb_count(f.wb), 0);
    ck_assert_int_eq(f.s->revision, 2);
    ck_assert_uint_eq(f.s->applied_index, 2);
    ck_assert_int_eq(fx_get(&f, "a", &kv), 0);
    ck_assert(fx_val_is(&kv, "1"));
    ck_assert_int_eq(kv.version, 1);
    fx_kv_free(&kv);

    /* A gap is the caller's bug, reported, nothing staged. */
    ck_assert_int_eq(bs_shard_apply(f.s, f.db, f.wb, 4, 1, buf, len, &r),
                     BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(r.errmsg, "missing"));
    bs_shard_resp_free(&r);
    ck_assert_uint_eq(bs_eng_wb_count(f.wb), 0);
    free(buf);
}
END_TEST

START_TEST(test_replay_after_crash_is_identical)
{
    /* Apply 3 entries, "crash" before the batch is written (discard),
     * replay them: the result is the same as applying once. */
    struct bs_shard_cmd c[3] = {fx_put(&f, "a", "1"), fx_put(&f, "a", "2"),
                                fx_del(&f, "a", NULL)};
    struct bs_shard_resp r;
    struct bs_shard_kv kv;

    for (int round = 0; round < 2; round++) {
        f.index = 1;
        for (int i = 0; i < 2; i++) {
            ck_assert_int_eq(fx_stage(&f, &c[i], &r), 0);
            ck_assert_int_eq(r.err, 0);
            bs_shard_resp_free(&r);
        }
        ck_assert_int_eq(f.s->revision, 3);
        if (round == 0) {
            bs_eng_wb_clear(f.wb);
            ck_assert_int_eq(bs_shard_batch_discard(f.s, f.db), 0);
            ck_assert_int_eq(f.s->revision, 1);
            ck_assert_uint_eq(f.s->applied_index, 1);
            ck_assert_int_eq(fx_count(&f, "", ""), 0);
        }
    }
    fx_write(&f);
    fx_reopen(&f);
    ck_assert_uint_eq(f.s->applied_index, 3);
    /* Replaying the written entries after a restart: skipped. */
    f.index = 1;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(fx_stage(&f, &c[i], &r), 0);
        ck_assert(r.skipped);
        bs_shard_resp_free(&r);
    }
    ck_assert_int_eq(fx_get(&f, "a", &kv), 0);
    ck_assert(fx_val_is(&kv, "2"));
    ck_assert_int_eq(kv.version, 2);
    fx_kv_free(&kv);
    c[2].epoch = fx_epoch(&f);
    ck_assert_int_eq(fx_ok(&f, &c[2]), 4);
}
END_TEST

START_TEST(test_batch_of_entries_sees_earlier_writes)
{
    /* Several entries in one batch, not written in between: every read
     * in apply must see the staged writes (the overlay). */
    struct bs_shard_cmd c;
    struct bs_shard_resp r;
    struct bs_shard_kv kv;
    struct bs_shard_compare cmp;
    struct bs_shard_op op;

    c = fx_put(&f, "a", "1");
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    bs_shard_resp_free(&r);
    c = fx_put(&f, "b", "1");
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    bs_shard_resp_free(&r);
    c = fx_put(&f, "a", "2");
    c.u.put.prev_kv = true;
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    ck_assert_uint_eq(r.op.n_kvs, 1);
    ck_assert(fx_val_is(&r.op.kvs[0], "1")); /* staged, not in the db */
    bs_shard_resp_free(&r);
    cmp = fx_cmp_num("a", BS_SHARD_CMP_VERSION, BS_SHARD_CMP_EQUAL, 2);
    op = fx_op_range("a", "");
    c = txn_cmd(&cmp, 1, &op, 1, NULL, 0);
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    ck_assert(r.succeeded);
    ck_assert_int_eq(r.ops[0].count, 2);
    bs_shard_resp_free(&r);
    c = fx_del(&f, "a", "");
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    ck_assert_int_eq(r.op.deleted, 2);
    bs_shard_resp_free(&r);
    c = fx_put(&f, "b", "3");
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(fx_count(&f, "", ""), 0); /* nothing written yet */
    fx_write(&f);
    ck_assert_int_eq(fx_count(&f, "", ""), 1);
    ck_assert_int_eq(fx_get(&f, "b", &kv), 0);
    ck_assert(fx_val_is(&kv, "3"));
    ck_assert_int_eq(kv.version, 1); /* recreated after the delete */
    ck_assert_int_eq(kv.create_revision, 6);
    fx_kv_free(&kv);
    ck_assert_int_eq(f.s->revision, 6);
}
END_TEST

START_TEST(test_empty_and_corrupt_entries_consumed)
{
    struct bs_shard_resp r;
    static const uint8_t junk[] = {1, 9, 9, 9};

    ck_assert_int_eq(bs_shard_apply(f.s, f.db, f.wb, 2, 2, NULL, 0, &r), 0);
    ck_assert_int_eq(r.err, 0);
    ck_assert_uint_eq(r.type, 0);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(
        bs_shard_apply(f.s, f.db, f.wb, 3, 2, junk, sizeof junk, &r), 0);
    ck_assert_int_eq(r.err, BS_ECORRUPT);
    bs_shard_resp_free(&r);
    fx_write(&f);
    fx_reopen(&f);
    ck_assert_uint_eq(f.s->applied_index, 3);
    ck_assert_uint_eq(f.s->applied_term, 2);
}
END_TEST

START_TEST(test_apply_state_survives_reopen)
{
    static const char *const keys[] = {"a", "b", "c"};
    struct bs_raft_conf_state cs;
    struct bs_shard_replica reps[2] = {{1, 1, false}, {4, 9, true}};
    struct bs_shard_kv kv;

    put_all(keys, 3);
    memset(&cs, 0, sizeof cs);
    cs.voters[0] = 1;
    cs.n_voters = 1;
    cs.learners[0] = 4;
    cs.n_learners = 1;
    ck_assert_int_eq(
        bs_shard_apply_conf(f.s, f.db, f.wb, ++f.index, 3, &cs, reps, 2), 0);
    fx_write(&f);
    ck_assert_uint_eq(f.s->desc.epoch.conf_ver, 2);
    fx_reopen(&f);
    ck_assert_int_eq(f.s->revision, 4);
    ck_assert_uint_eq(f.s->applied_index, 5);
    ck_assert_uint_eq(f.s->applied_term, 3);
    ck_assert_uint_eq(f.s->desc.id, 1);
    ck_assert_uint_eq(f.s->desc.start_len, 0);
    ck_assert_uint_eq(f.s->desc.end_len, 0);
    ck_assert_uint_eq(f.s->desc.epoch.conf_ver, 2);
    ck_assert_uint_eq(f.s->desc.epoch.version, 1);
    ck_assert(bs_raft_conf_state_equal(&f.s->conf, &cs));
    ck_assert_uint_eq(f.s->desc.n_replicas, 2);
    ck_assert_uint_eq(f.s->desc.replicas[1].node_id, 9);
    ck_assert(f.s->desc.replicas[1].learner);
    ck_assert_int_eq(fx_get(&f, "b", &kv), 0);
    ck_assert_int_eq(kv.mod_revision, 3);
    fx_kv_free(&kv);
}
END_TEST

START_TEST(test_corrupt_apply_state_refused)
{
    void *val;
    size_t len;
    uint8_t *bad;
    struct bs_shard *s2;
    char msg[256];
    static const uint8_t key[6] = {0, 'a', 'p', 'p', 'l', 'y'};

    ck_assert_int_eq(bs_eng_get(f.db, NULL, 1, key, 6, &val, &len), 0);
    bad = malloc(len);
    /* Every single-bit flip fails the checksum. */
    for (size_t i = 0; i < len; i += 3) {
        memcpy(bad, val, len);
        bad[i] ^= 0x10;
        ck_assert_int_eq(bs_eng_wb_put(f.wb, f.db, 1, key, 6, bad, len), 0);
        ck_assert_int_eq(bs_eng_db_write(f.db, f.wb, false), 0);
        bs_eng_wb_clear(f.wb);
        ck_assert_int_eq(bs_shard_load(f.db, 1, NULL, &s2, msg), BS_ECORRUPT);
        ck_assert_ptr_null(s2);
        ck_assert_ptr_nonnull(strstr(msg, "apply state"));
    }
    /* Truncated. */
    ck_assert_int_eq(bs_eng_wb_put(f.wb, f.db, 1, key, 6, val, 3), 0);
    ck_assert_int_eq(bs_eng_db_write(f.db, f.wb, false), 0);
    bs_eng_wb_clear(f.wb);
    ck_assert_int_eq(bs_shard_load(f.db, 1, NULL, &s2, msg), BS_ECORRUPT);
    /* Absent shard. */
    ck_assert_int_eq(bs_shard_load(f.db, 77, NULL, &s2, msg), BS_ENOTFOUND);
    free(bad);
    free(val);
}
END_TEST

START_TEST(test_corrupt_value_record_is_error)
{
    static const uint8_t key[2] = {'z', 'k'};
    static const uint8_t junk[1] = {7}; /* unknown record format */
    struct bs_shard_cmd c;
    struct bs_shard_resp r;
    struct bs_shard_epoch e = fx_epoch(&f);

    ck_assert_int_eq(bs_eng_wb_put(f.wb, f.db, 1, key, 2, junk, 1), 0);
    fx_write(&f);
    c = fx_range(&f, "a", "");
    ck_assert_int_eq(bs_shard_range(f.s, f.db, NULL, &e, &c.u.range, &r),
                     BS_ECORRUPT);
    bs_shard_resp_free(&r);
    c = fx_put(&f, "k", "v");
    ck_assert_int_eq(fx_stage(&f, &c, &r), BS_ECORRUPT);
    bs_shard_resp_free(&r);
    bs_eng_wb_clear(f.wb);
    ck_assert_int_eq(bs_shard_batch_discard(f.s, f.db), 0);
    ck_assert_uint_eq(f.s->applied_index, 1);
}
END_TEST

/* ============================================================= reads */

START_TEST(test_read_at_snapshot)
{
    struct bs_shard_cmd c = fx_put(&f, "a", "old");
    struct bs_shard_resp r;
    struct bs_shard_epoch e;
    struct bs_eng_snap *snap;

    fx_ok(&f, &c);
    snap = bs_eng_snap_create(f.db);
    c = fx_put(&f, "a", "new");
    fx_ok(&f, &c);
    e = fx_epoch(&f);
    c = fx_range(&f, "a", NULL);
    c.u.range.serializable = true;
    ck_assert_int_eq(bs_shard_range(f.s, f.db, snap, &e, &c.u.range, &r), 0);
    ck_assert(fx_val_is(&r.op.kvs[0], "old"));
    ck_assert_int_eq(r.revision, 2); /* the revision of the snapshot */
    bs_shard_resp_free(&r);
    ck_assert_int_eq(bs_shard_range(f.s, f.db, NULL, &e, &c.u.range, &r), 0);
    ck_assert(fx_val_is(&r.op.kvs[0], "new"));
    ck_assert_int_eq(r.revision, 3);
    bs_shard_resp_free(&r);
    e.version = 5;
    ck_assert_int_eq(bs_shard_range(f.s, f.db, snap, &e, &c.u.range, &r),
                     BS_ESTALE);
    ck_assert_ptr_nonnull(strstr(r.errmsg, "version=1"));
    bs_shard_resp_free(&r);
    bs_eng_snap_release(f.db, snap);
}
END_TEST

START_TEST(test_binary_keys)
{
    static const uint8_t k1[] = {0x00, 0xff, 0x7b};
    static const uint8_t k2[] = {0xff, 0xff};
    struct bs_shard_cmd c = fx_put(&f, "x", "v");
    struct bs_shard_resp r;

    c.u.put.key = k1;
    c.u.put.key_len = sizeof k1;
    fx_ok(&f, &c);
    c.u.put.key = k2;
    c.u.put.key_len = sizeof k2;
    fx_ok(&f, &c);
    c = fx_range(&f, "", ""); /* every key */
    fx_apply(&f, &c, &r);
    ck_assert_uint_eq(r.op.n_kvs, 2);
    ck_assert_mem_eq(r.op.kvs[0].key, k1, sizeof k1);
    ck_assert_mem_eq(r.op.kvs[1].key, k2, sizeof k2);
    bs_shard_resp_free(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("shard_apply");
    TCase *tc = tcase_create("apply");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_put_revisions_and_versions);
    tcase_add_test(tc, test_put_update_and_prev_kv);
    tcase_add_test(tc, test_put_same_value_still_bumps);
    tcase_add_test(tc, test_put_lease_stored_and_empty_value);
    tcase_add_test(tc, test_put_ignore_flags_not_implemented);
    tcase_add_test(tc, test_empty_key_refused);
    tcase_add_test(tc, test_range_live_matches_snapshot_read);
    tcase_add_test(tc, test_delete_single);
    tcase_add_test(tc, test_delete_range_prefix_all);
    tcase_add_test(tc, test_recreate_after_delete_resets_version);
    tcase_add_test(tc, test_range_limit_more_count);
    tcase_add_test(tc, test_range_keys_only_count_only);
    tcase_add_test(tc, test_range_revision_filters);
    tcase_add_test(tc, test_range_sort);
    tcase_add_test(tc, test_range_historical_revision);
    tcase_add_test(tc, test_txn_compare_value);
    tcase_add_test(tc, test_txn_compare_numbers);
    tcase_add_test(tc, test_txn_compare_over_range);
    tcase_add_test(tc, test_txn_branches_and_own_writes);
    tcase_add_test(tc, test_txn_delete_then_read);
    tcase_add_test(tc, test_txn_revision_rules);
    tcase_add_test(tc, test_txn_duplicate_keys_refused);
    tcase_add_test(tc, test_txn_too_many_ops);
    tcase_add_test(tc, test_stale_epoch_refused);
    tcase_add_test(tc, test_key_outside_range_refused);
    tcase_add_test(tc, test_size_limits);
    tcase_add_test(tc, test_size_limits_configurable);
    tcase_add_test(tc, test_reapply_same_index_is_noop);
    tcase_add_test(tc, test_replay_after_crash_is_identical);
    tcase_add_test(tc, test_batch_of_entries_sees_earlier_writes);
    tcase_add_test(tc, test_empty_and_corrupt_entries_consumed);
    tcase_add_test(tc, test_apply_state_survives_reopen);
    tcase_add_test(tc, test_corrupt_apply_state_refused);
    tcase_add_test(tc, test_corrupt_value_record_is_error);
    tcase_add_test(tc, test_read_at_snapshot);
    tcase_add_test(tc, test_binary_keys);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fx_run(suite());
}
