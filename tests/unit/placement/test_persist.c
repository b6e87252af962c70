/*
 * test_persist.c - placement state in a real RocksDB through engine.h
 * (placement/store.c): save -> close -> reopen -> load gives the identical
 * state; a batch staged but never written (a crash before the write)
 * loads as the previous applied index; a corrupt record in the column
 * family is refused naming it; a missing column family is an error.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

START_TEST(test_save_reopen_load_identical)
{
    char *dir = th_tmpdir();
    struct bs_eng_db *db = th_open_db(dir);
    ck_assert_int_eq(bs_eng_db_shard_create(db, BS_PD_SHARD_PLACEMENT), 0);

    /* Nothing saved yet: the empty state. */
    struct bs_pd_state *back = bs_pd_state_create();
    char err[256];
    ck_assert_int_eq(bs_pd_load(db, back, err), 0);
    ck_assert(!bs_pd_bootstrapped(back));

    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(5, 64, 3, &idx);
    th_save_db(st, db);
    uint64_t seed = 7;
    for (int i = 0; i < 50; i++) {
        uint8_t key[3] = {(uint8_t)th_rand(&seed), (uint8_t)th_rand(&seed),
                          (uint8_t)th_rand(&seed)};
        const struct bs_pd_shard *s;
        ck_assert_int_eq(bs_pd_route(st, key, 3, &s), 0);
        th_split(st, &idx, s->id, key, 3, NULL);
        struct bs_pd_cmd hb = {.type = BS_PD_CMD_NODE_HEARTBEAT};
        hb.u.heartbeat.node_id = 1 + (uint64_t)i % 5;
        hb.u.heartbeat.now = 2000 + (uint64_t)i;
        th_apply(st, &idx, &hb, NULL);
        if (i % 7 == 0)
            th_save_db(st, db);
    }
    th_save_db(st, db);
    bs_eng_db_close(db);

    db = th_open_db(dir);
    ck_assert_int_eq(bs_pd_load(db, back, err), 0);
    ck_assert(th_equal(st, back));
    ck_assert_uint_eq(bs_pd_applied(back), idx);
    th_check(back);
    ck_assert_uint_eq(bs_pd_route_count(back), bs_pd_route_count(st));

    /* A change staged but never written (crash before the write). */
    struct bs_pd_cmd hb = {.type = BS_PD_CMD_NODE_HEARTBEAT};
    hb.u.heartbeat.node_id = 3;
    hb.u.heartbeat.now = 99999;
    ck_assert_int_eq(th_apply(back, &idx, &hb, NULL), 0);
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_pd_save(back, db, wb), 0);
    ck_assert_uint_eq(bs_eng_wb_count(wb), 2);
    bs_eng_wb_destroy(wb);
    bs_eng_db_close(db);
    db = th_open_db(dir);
    ck_assert_int_eq(bs_pd_load(db, back, err), 0);
    ck_assert(th_equal(st, back));
    ck_assert_uint_eq(bs_pd_applied(back), idx - 1);
    /* ...and re-applying the lost entry after recovery catches up. */
    ck_assert_int_eq(th_apply(back, &(uint64_t){idx - 1}, &hb, NULL), 0);
    ck_assert_uint_eq(bs_pd_node_find(back, 3)->last_heartbeat, 99999);

    bs_eng_db_close(db);
    bs_pd_state_destroy(st);
    bs_pd_state_destroy(back);
    th_rmdir_all(dir);
}
END_TEST

START_TEST(test_load_corrupt_record_and_missing_cf)
{
    char *dir = th_tmpdir();
    struct bs_eng_db *db = th_open_db(dir);
    struct bs_pd_state *st = bs_pd_state_create();
    char err[256];
    int rc = bs_pd_load(db, st, err);
    ck_assert_int_lt(rc, 0); /* no column family for shard 0 */
    ck_assert_uint_gt(strlen(err), 0);

    ck_assert_int_eq(bs_eng_db_shard_create(db, BS_PD_SHARD_PLACEMENT), 0);
    uint64_t idx = 0;
    struct bs_pd_state *full = th_bootstrap(3, 8, 3, &idx);
    th_save_db(full, db);
    /* The shard layer's own keys in the same CF are left alone. */
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_wb_put(wb, db, 0,
                                   "\x00"
                                   "apply",
                                   6, "a", 1),
                     0);
    ck_assert_int_eq(bs_eng_db_write(db, wb, true), 0);
    ck_assert_int_eq(bs_pd_load(db, st, err), 0);
    ck_assert(th_equal(st, full));

    /* Overwrite node 2's record with garbage. */
    bs_eng_wb_clear(wb);
    const uint8_t key[10] = {'p', 'n', 0, 0, 0, 0, 0, 0, 0, 2};
    ck_assert_int_eq(bs_eng_wb_put(wb, db, 0, key, 10, "garbage!", 8), 0);
    ck_assert_int_eq(bs_eng_db_write(db, wb, true), 0);
    struct bs_pd_state *other = bs_pd_state_create();
    ck_assert_int_eq(bs_pd_load(db, other, err), BS_ECORRUPT);
    ck_assert_msg(strstr(err, "node/2"), "%s", err);
    ck_assert(!bs_pd_bootstrapped(other)); /* unchanged */

    bs_eng_wb_destroy(wb);
    bs_eng_db_close(db);
    bs_pd_state_destroy(st);
    bs_pd_state_destroy(full);
    bs_pd_state_destroy(other);
    th_rmdir_all(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement_persist");
    TCase *tc = tcase_create("rocksdb");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_save_reopen_load_identical);
    tcase_add_test(tc, test_load_corrupt_record_and_missing_cf);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(suite());
}
