/*
 * test_split_key.c - unit tests of shard/split_key.c (bs_shard_middle_key)
 * over a real RocksDB: the key that halves a shard's bytes with even and
 * skewed value sizes (one huge value in the middle, at the start, at the
 * end), never the first key, always strictly inside a bounded range,
 * deleted and overwritten data not counted, fewer than two keys refused,
 * and staged writes answered BS_EBUSY.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static struct fx f;

static void setup_all(void)
{
    fx_open(&f, NULL, NULL);
}

static void teardown(void)
{
    fx_close(&f);
}

/* Puts k = a value of n bytes ('v'...). */
static void put_n(const char *k, size_t n)
{
    char *v = malloc(n + 1);
    ck_assert_ptr_nonnull(v);
    memset(v, 'v', n);
    v[n] = '\0';
    struct bs_shard_cmd c = fx_put(&f, k, v);
    fx_ok(&f, &c);
    free(v);
}

/* Keys k000 .. k<n-1> (4 bytes each) with values of vlen bytes. */
static void put_uniform(int n, size_t vlen)
{
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%03d", i);
        put_n(k, vlen);
    }
}

/* Asserts that the middle key of shard 1 is want. */
static void expect_middle(const char *want)
{
    uint8_t *key = NULL;
    size_t len = 0;
    int rc = bs_shard_middle_key(f.s, f.db, &key, &len);
    ck_assert_msg(rc == 0, "middle key: %s", bs_err_name(rc));
    ck_assert_ptr_nonnull(key);
    ck_assert_msg(len == strlen(want) && memcmp(key, want, len) == 0,
                  "middle key '%.*s', expected '%s'", (int)len, key, want);
    free(key);
}

static int middle_rc(void)
{
    uint8_t *key = (uint8_t *)"x";
    size_t len = 7;
    int rc = bs_shard_middle_key(f.s, f.db, &key, &len);
    if (rc != 0) {
        ck_assert_ptr_null(key);
        ck_assert_uint_eq(len, 0);
    }
    free(key);
    return rc;
}

START_TEST(test_too_few_keys)
{
    ck_assert_int_eq(middle_rc(), BS_ENOTFOUND);
    put_n("a", 1000);
    ck_assert_int_eq(middle_rc(), BS_ENOTFOUND);
    /* Two keys: the second, whatever the sizes. */
    put_n("b", 1);
    expect_middle("b");
}
END_TEST

START_TEST(test_uniform)
{
    /* 100 keys of 4 + 100 bytes: the running sum reaches half (5200) at
     * the 50th key. */
    put_uniform(100, 100);
    expect_middle("k049");
}
END_TEST

START_TEST(test_skewed)
{
    /* One value holds most of the bytes: the split goes right before it,
     * whatever the number of small keys on either side. */
    put_uniform(100, 10);
    put_n("k090", 200000);
    expect_middle("k090");
    /* Half of the bytes in k020 and k021 together, the rest spread: the
     * sum passes half at k021. */
    {
        struct bs_shard_cmd c = fx_del(&f, "k090", NULL);
        fx_ok(&f, &c);
    }
    put_n("k020", 50000);
    put_n("k021", 50000);
    expect_middle("k021");
}
END_TEST

START_TEST(test_never_first_key)
{
    /* The first key alone is more than half: splitting there would leave
     * [start, key) empty, so the next key is chosen. */
    put_n("a", 300000);
    put_n("b", 10);
    put_n("c", 10);
    expect_middle("b");
}
END_TEST

START_TEST(test_last_key_huge)
{
    put_n("a", 10);
    put_n("b", 10);
    put_n("c", 10);
    put_n("d", 300000);
    expect_middle("d");
}
END_TEST

START_TEST(test_live_data_only)
{
    /* A huge value overwritten by a small one, and huge keys deleted: the
     * split follows what is live now, not RocksDB's old versions. */
    put_uniform(100, 100);
    put_n("k010", 400000);
    put_n("k011", 400000);
    expect_middle("k011");
    put_n("k010", 100);
    {
        struct bs_shard_cmd c = fx_del(&f, "k011", NULL);
        fx_ok(&f, &c);
    }
    put_n("k011", 100);
    expect_middle("k049");
}
END_TEST

START_TEST(test_staged_writes_busy)
{
    put_uniform(10, 10);
    struct bs_shard_cmd c = fx_put(&f, "k005", "x");
    struct bs_shard_resp r;
    ck_assert_int_eq(fx_stage(&f, &c, &r), 0);
    bs_shard_resp_free(&r);
    ck_assert_int_eq(middle_rc(), BS_EBUSY);
    fx_write(&f);
    ck_assert_int_eq(middle_rc(), 0);
}
END_TEST

/* A bounded shard: the key is strictly inside [start, end) and not the
 * start, also when the start itself is a key holding most bytes. */
START_TEST(test_bounded_range)
{
    fx_close(&f);
    fx_open(&f, "c", "x");
    put_n("c", 300000);
    put_n("d", 10);
    put_n("w", 10);
    expect_middle("d");
    put_n("w", 600000);
    expect_middle("w");
    /* After a split at "m" the shard is [c, m): w is not its key. */
    struct bs_shard_cmd c;
    memset(&c, 0, sizeof c);
    c.type = BS_SHARD_CMD_SPLIT;
    c.epoch = fx_epoch(&f);
    c.u.split.split_key = (const uint8_t *)"m";
    c.u.split.split_key_len = 1;
    c.u.split.new_shard_id = 2;
    c.u.split.n_replicas = 1;
    c.u.split.replicas[0].id = 20;
    c.u.split.replicas[0].node_id = 1;
    fx_ok(&f, &c);
    expect_middle("d");
    put_n("l", 10);
    expect_middle("d");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("shard_split_key");
    TCase *tc = tcase_create("middle");
    tcase_add_checked_fixture(tc, setup_all, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_too_few_keys);
    tcase_add_test(tc, test_uniform);
    tcase_add_test(tc, test_skewed);
    tcase_add_test(tc, test_never_first_key);
    tcase_add_test(tc, test_last_key_huge);
    tcase_add_test(tc, test_live_data_only);
    tcase_add_test(tc, test_staged_writes_busy);
    tcase_add_test(tc, test_bounded_range);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fx_run(suite());
}
