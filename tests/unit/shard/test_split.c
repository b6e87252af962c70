/*
 * test_split.c - unit tests of shard/split.c over a real RocksDB: a split
 * moves exactly the keys >= split_key (with their etcd metadata) into the
 * new shard's CF, both shards get the right ranges, epochs, revision and
 * apply state, commands routed with the old epoch are refused afterwards,
 * replay is a no-op, a crash between the CF creation and the batch write
 * is repaired by the replay, and bad splits are refused.
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

static struct bs_shard_cmd split_cmd(const char *key, uint64_t new_id)
{
    struct bs_shard_cmd c;

    memset(&c, 0, sizeof c);
    c.type = BS_SHARD_CMD_SPLIT;
    c.epoch = fx_epoch(&f);
    c.u.split.split_key = (const uint8_t *)key;
    c.u.split.split_key_len = strlen(key);
    c.u.split.new_shard_id = new_id;
    c.u.split.n_replicas = 3;
    for (uint32_t i = 0; i < 3; i++) {
        c.u.split.replicas[i].id = 10 + i;
        c.u.split.replicas[i].node_id = 1 + i;
    }
    c.u.split.replicas[2].learner = true;
    return c;
}

static void put_keys(void)
{
    static const char *const keys[] = {"a", "b",  "l", "lzz",
                                       "m", "m0", "n", "z"};

    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        struct bs_shard_cmd c = fx_put(&f, keys[i], keys[i]);

        fx_ok(&f, &c);
    }
    /* Update one upper key so its metadata is not trivial. */
    {
        struct bs_shard_cmd c = fx_put(&f, "n", "n2");

        fx_ok(&f, &c); /* revision 10; n: create 8, mod 10, version 2 */
    }
}

/* Count of keys of shard id in its whole CF, read raw through engine.h:
 * also proves nothing is left behind outside the shard's range. */
static size_t raw_user_keys(uint64_t id)
{
    struct bs_eng_iter *it;
    size_t n = 0;

    ck_assert_int_eq(bs_eng_iter_create(f.db, NULL, id, "z", 1, "{", 1, &it),
                     0);
    for (bs_eng_iter_seek_first(it); bs_eng_iter_valid(it);
         bs_eng_iter_next(it))
        n++;
    ck_assert_int_eq(bs_eng_iter_status(it), 0);
    bs_eng_iter_destroy(it);
    return n;
}

static bool key_eq(const uint8_t *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

START_TEST(test_split_moves_upper_keys)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;
    struct bs_shard *n;
    struct bs_shard_range_req q;
    struct bs_shard_resp rr;
    struct bs_raft_conf_state cs;
    char msg[256];
    uint64_t split_index;

    put_keys();
    c = split_cmd("m", 2);
    fx_apply(&f, &c, &r);
    split_index = f.index;
    ck_assert_msg(r.err == 0, "%s", r.errmsg);
    ck_assert_uint_eq(r.type, BS_SHARD_CMD_SPLIT);
    ck_assert_int_eq(r.revision, 10); /* a split is not a KV change */

    /* The old shard: [ "", "m" ), version 2, same conf_ver, revision. */
    ck_assert_uint_eq(f.s->desc.start_len, 0);
    ck_assert(key_eq(f.s->desc.end, f.s->desc.end_len, "m"));
    ck_assert_uint_eq(f.s->desc.epoch.version, 2);
    ck_assert_uint_eq(f.s->desc.epoch.conf_ver, 1);
    ck_assert_int_eq(f.s->revision, 10);
    ck_assert(key_eq(r.left.end, r.left.end_len, "m"));
    ck_assert_uint_eq(r.left.epoch.version, 2);

    /* The response's new shard. */
    ck_assert_uint_eq(r.right.id, 2);
    ck_assert(key_eq(r.right.start, r.right.start_len, "m"));
    ck_assert_uint_eq(r.right.end_len, 0);
    ck_assert_uint_eq(r.right.epoch.version, 2);
    ck_assert_uint_eq(r.right.epoch.conf_ver, 1);
    ck_assert_uint_eq(r.right.n_replicas, 3);
    ck_assert_uint_eq(r.right.replicas[1].id, 11);
    ck_assert_uint_eq(r.right.replicas[1].node_id, 2);
    bs_shard_desc_conf(&r.right, &cs);
    bs_shard_resp_free(&r);

    /* Exactly the upper keys moved; nothing stays behind. */
    ck_assert_uint_eq(raw_user_keys(1), 4); /* a b l lzz */
    ck_assert_uint_eq(raw_user_keys(2), 4); /* m m0 n z */
    ck_assert_int_eq(fx_count(&f, "", "m"), 4);

    /* The new shard loads with the inherited state. */
    ck_assert_int_eq(bs_shard_load(f.db, 2, NULL, &n, msg), 0);
    ck_assert_uint_eq(n->applied_index, split_index);
    ck_assert_uint_eq(n->applied_term, 1);
    ck_assert_int_eq(n->revision, 10);
    ck_assert(key_eq(n->desc.start, n->desc.start_len, "m"));
    ck_assert_uint_eq(n->desc.end_len, 0);
    ck_assert_uint_eq(n->desc.epoch.version, 2);
    ck_assert(bs_raft_conf_state_equal(&n->conf, &cs));
    ck_assert_uint_eq(n->conf.n_voters, 2);
    ck_assert_uint_eq(n->conf.n_learners, 1);

    memset(&q, 0, sizeof q);
    q.key = (const uint8_t *)"m";
    q.key_len = 1;
    q.range_end = (const uint8_t *)"";
    q.range_end_len = 1; /* "\0": to the end */
    ck_assert_int_eq(bs_shard_range(n, f.db, NULL, &n->desc.epoch, &q, &rr), 0);
    ck_assert_uint_eq(rr.op.n_kvs, 4);
    ck_assert(key_eq(rr.op.kvs[2].key, rr.op.kvs[2].key_len, "n"));
    ck_assert(key_eq(rr.op.kvs[2].value, rr.op.kvs[2].value_len, "n2"));
    ck_assert_int_eq(rr.op.kvs[2].create_revision, 8);
    ck_assert_int_eq(rr.op.kvs[2].mod_revision, 10);
    ck_assert_int_eq(rr.op.kvs[2].version, 2);
    ck_assert_int_eq(rr.revision, 10);
    bs_shard_resp_free(&rr);

    /* The new shard continues the revision counter. */
    {
        struct bs_shard_cmd p = fx_put(&f, "q", "1");
        struct bs_shard_resp pr;
        uint8_t *buf;
        size_t len;

        p.epoch = n->desc.epoch;
        ck_assert_int_eq(bs_shard_cmd_encode(&p, &buf, &len), 0);
        ck_assert_int_eq(
            bs_shard_apply(n, f.db, f.wb, split_index + 1, 2, buf, len, &pr),
            0);
        ck_assert_int_eq(pr.err, 0);
        ck_assert_int_eq(pr.revision, 11);
        bs_shard_resp_free(&pr);
        free(buf);
        ck_assert_int_eq(bs_eng_db_write(f.db, f.wb, false), 0);
        bs_shard_batch_written(n);
        bs_eng_wb_clear(f.wb);
    }
    bs_shard_destroy(n);
}
END_TEST

START_TEST(test_after_split_old_epoch_and_moved_keys_refused)
{
    struct bs_shard_cmd c, old;
    char msg[BS_SHARD_ERRMSG_LEN];

    put_keys();
    old = fx_put(&f, "b", "x"); /* routed before the split */
    c = split_cmd("m", 2);
    fx_ok(&f, &c);
    ck_assert_int_eq(fx_err(&f, &old, msg), BS_ESTALE);
    ck_assert_ptr_nonnull(strstr(msg, "[\"\", \"m\")"));
    ck_assert_ptr_nonnull(strstr(msg, "version=2"));
    old.epoch = fx_epoch(&f);
    ck_assert_int_eq(fx_err(&f, &old, NULL), 0);
    c = fx_put(&f, "n", "x"); /* new epoch, but the key moved */
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_ERANGE);
    ck_assert_ptr_nonnull(strstr(msg, "\"n\""));
    c = fx_range(&f, "a", ""); /* unbounded read over the old range */
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_ERANGE);
}
END_TEST

START_TEST(test_split_reapply_is_noop)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;
    uint8_t *buf;
    size_t len;
    uint64_t idx;

    put_keys();
    c = split_cmd("m", 2);
    ck_assert_int_eq(bs_shard_cmd_encode(&c, &buf, &len), 0);
    fx_ok(&f, &c);
    idx = f.index;
    ck_assert_int_eq(bs_shard_apply(f.s, f.db, f.wb, idx, 1, buf, len, &r), 0);
    ck_assert(r.skipped);
    bs_shard_resp_free(&r);
    ck_assert_uint_eq(bs_eng_wb_count(f.wb), 0);
    ck_assert_uint_eq(f.s->desc.epoch.version, 2);
    ck_assert(key_eq(f.s->desc.end, f.s->desc.end_len, "m"));
    ck_assert_uint_eq(raw_user_keys(2), 4);
    /* The same split as a new entry: stale now. */
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_ESTALE);
    free(buf);
}
END_TEST

/* A second split that names a shard an earlier split created (a proposer
 * that retried after the first applied) must not clear that shard: it is
 * refused and nothing moves. */
START_TEST(test_split_reusing_new_id_refused)
{
    struct bs_shard_cmd c;

    put_keys();
    c = split_cmd("m", 2);
    fx_ok(&f, &c);
    ck_assert_uint_eq(raw_user_keys(2), 4);
    ck_assert_uint_eq(raw_user_keys(1), 4);
    c = split_cmd("b", 2); /* current epoch, same new id */
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EEXIST);
    ck_assert_uint_eq(raw_user_keys(2), 4);
    ck_assert_uint_eq(raw_user_keys(1), 4);
    ck_assert_uint_eq(f.s->desc.epoch.version, 2);
    ck_assert(key_eq(f.s->desc.end, f.s->desc.end_len, "m"));
    /* With a fresh id the same split goes through. */
    c = split_cmd("b", 3);
    fx_ok(&f, &c);
    ck_assert_uint_eq(raw_user_keys(3), 3);
    ck_assert_uint_eq(raw_user_keys(2), 4);
}
END_TEST

START_TEST(test_split_crash_before_batch_write)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;
    struct bs_shard *n;
    char msg[256];
    static const uint8_t junk_key[] = {'z', 'j', 'u', 'n', 'k'};

    put_keys();
    c = split_cmd("m", 2);
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    ck_assert_int_eq(r.err, 0);
    bs_shard_resp_free(&r);
    /* Crash: the CF exists, the batch never reached the db. */
    bs_eng_wb_clear(f.wb);
    ck_assert_int_eq(bs_shard_batch_discard(f.s, f.db), 0);
    ck_assert(bs_eng_db_shard_exists(f.db, 2));
    ck_assert_uint_eq(raw_user_keys(2), 0);
    ck_assert_int_eq(bs_shard_load(f.db, 2, NULL, &n, msg), BS_ENOTFOUND);
    ck_assert_uint_eq(f.s->desc.epoch.version, 1);
    ck_assert_uint_eq(f.s->desc.end_len, 0);
    /* Whatever the CF holds is cleared by the replay. */
    ck_assert_int_eq(
        bs_eng_wb_put(f.wb, f.db, 2, junk_key, sizeof junk_key, "x", 1), 0);
    ck_assert_int_eq(bs_eng_db_write(f.db, f.wb, false), 0);
    bs_eng_wb_clear(f.wb);

    fx_reopen(&f);
    f.index--; /* replay the same entry */
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert(!r.skipped);
    bs_shard_resp_free(&r);
    ck_assert_uint_eq(raw_user_keys(1), 4);
    ck_assert_uint_eq(raw_user_keys(2), 4);
    ck_assert_int_eq(bs_shard_load(f.db, 2, NULL, &n, msg), 0);
    ck_assert_int_eq(n->revision, 10);
    ck_assert_uint_eq(n->applied_index, f.index);
    bs_shard_destroy(n);
}
END_TEST

START_TEST(test_split_keeps_new_shard_that_is_ahead)
{
    struct bs_shard_cmd c;
    struct bs_shard *n;
    struct bs_shard_desc d;
    char msg[256];

    put_keys();
    /* Shard 2 already exists here at a later index (a snapshot of its own
     * group arrived first) with one key. */
    memset(&d, 0, sizeof d);
    d.id = 2;
    d.start = (uint8_t *)"m";
    d.start_len = 1;
    d.epoch.version = 2;
    d.n_replicas = 1;
    d.replicas[0].id = 10;
    d.replicas[0].node_id = 1;
    ck_assert_int_eq(bs_shard_bootstrap(f.db, &d, NULL, 1000, 5), 0);
    c = split_cmd("m", 2);
    fx_ok(&f, &c);
    ck_assert_uint_eq(raw_user_keys(1), 4); /* upper keys still leave S */
    ck_assert_uint_eq(raw_user_keys(2), 0); /* N untouched */
    ck_assert_int_eq(bs_shard_load(f.db, 2, NULL, &n, msg), 0);
    ck_assert_uint_eq(n->applied_index, 1000);
    bs_shard_destroy(n);
}
END_TEST

START_TEST(test_split_sees_staged_writes)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    put_keys();
    /* In one batch: write above and below the split key, then split. */
    c = fx_put(&f, "x", "staged");
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    bs_shard_resp_free(&r);
    c = fx_del(&f, "z", NULL);
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    bs_shard_resp_free(&r);
    c = fx_put(&f, "c", "staged");
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    bs_shard_resp_free(&r);
    c = split_cmd("m", 2);
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    ck_assert_int_eq(r.err, 0);
    bs_shard_resp_free(&r);
    /* And after the split, in the same batch, a write below. */
    c = fx_put(&f, "d", "after");
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    ck_assert_int_eq(r.err, 0);
    bs_shard_resp_free(&r);
    fx_write(&f);
    ck_assert_uint_eq(raw_user_keys(1), 6); /* a b c d l lzz */
    ck_assert_uint_eq(raw_user_keys(2), 4); /* m m0 n x (z deleted) */
    ck_assert_int_eq(f.s->revision, 14);
}
END_TEST

START_TEST(test_split_bounded_shard)
{
    struct bs_shard_cmd c;
    struct bs_shard_resp r;

    fx_close(&f);
    fx_open(&f, "b", "y");
    c = fx_put(&f, "c", "1");
    fx_ok(&f, &c);
    c = fx_put(&f, "x", "1");
    fx_ok(&f, &c);
    c = split_cmd("m", 5);
    fx_apply(&f, &c, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert(key_eq(r.left.start, r.left.start_len, "b"));
    ck_assert(key_eq(r.left.end, r.left.end_len, "m"));
    ck_assert(key_eq(r.right.start, r.right.start_len, "m"));
    ck_assert(key_eq(r.right.end, r.right.end_len, "y"));
    bs_shard_resp_free(&r);
    ck_assert_uint_eq(raw_user_keys(1), 1);
    ck_assert_uint_eq(raw_user_keys(5), 1);
}
END_TEST

START_TEST(test_split_refusals)
{
    struct bs_shard_cmd c;
    char msg[BS_SHARD_ERRMSG_LEN];

    fx_close(&f);
    fx_open(&f, "b", "y");
    c = split_cmd("b", 2); /* the start itself: not strictly inside */
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_ERANGE);
    ck_assert_ptr_nonnull(strstr(msg, "strictly inside"));
    c = split_cmd("a", 2);
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_ERANGE);
    c = split_cmd("y", 2);
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_ERANGE);
    c = split_cmd("z", 2);
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_ERANGE);
    c = split_cmd("", 2);
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
    c = split_cmd("m", 1); /* its own id */
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
    c = split_cmd("m", 0);
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
    c = split_cmd("m", 2);
    c.u.split.n_replicas = 0;
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
    c = split_cmd("m", 2);
    c.u.split.replicas[1].id = c.u.split.replicas[0].id;
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_EINVAL);
    c = split_cmd("m", 2);
    c.epoch.conf_ver++; /* a split checks conf_ver too */
    ck_assert_int_eq(fx_err(&f, &c, msg), BS_ESTALE);
    c = split_cmd("m", 2);
    c.epoch.version--;
    ck_assert_int_eq(fx_err(&f, &c, NULL), BS_ESTALE);
    /* None of them touched anything. */
    ck_assert(!bs_eng_db_shard_exists(f.db, 2));
    ck_assert_uint_eq(f.s->desc.epoch.version, 1);
    ck_assert_uint_eq(f.s->applied_index, f.index);
}
END_TEST

START_TEST(test_split_survives_reopen)
{
    struct bs_shard_cmd c;
    struct bs_shard *n;
    char msg[256];

    put_keys();
    c = split_cmd("m", 2);
    fx_ok(&f, &c);
    fx_reopen(&f);
    ck_assert(key_eq(f.s->desc.end, f.s->desc.end_len, "m"));
    ck_assert_uint_eq(f.s->desc.epoch.version, 2);
    ck_assert_int_eq(bs_shard_load(f.db, 2, NULL, &n, msg), 0);
    ck_assert(key_eq(n->desc.start, n->desc.start_len, "m"));
    bs_shard_destroy(n);
    /* A second split of the lower shard. */
    c = split_cmd("c", 3);
    fx_ok(&f, &c);
    ck_assert(key_eq(f.s->desc.end, f.s->desc.end_len, "c"));
    ck_assert_uint_eq(f.s->desc.epoch.version, 3);
    ck_assert_uint_eq(raw_user_keys(1), 2);
    ck_assert_uint_eq(raw_user_keys(3), 2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("shard_split");
    TCase *tc = tcase_create("split");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_split_moves_upper_keys);
    tcase_add_test(tc, test_after_split_old_epoch_and_moved_keys_refused);
    tcase_add_test(tc, test_split_reapply_is_noop);
    tcase_add_test(tc, test_split_reusing_new_id_refused);
    tcase_add_test(tc, test_split_crash_before_batch_write);
    tcase_add_test(tc, test_split_keeps_new_shard_that_is_ahead);
    tcase_add_test(tc, test_split_sees_staged_writes);
    tcase_add_test(tc, test_split_bounded_shard);
    tcase_add_test(tc, test_split_refusals);
    tcase_add_test(tc, test_split_survives_reopen);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fx_run(suite());
}
