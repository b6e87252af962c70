/*
 * test_nomem.c - fault injection: every allocation that bs_pd_apply,
 * bs_pd_cmd_decode and bs_pd_decode_all make is failed in turn (malloc,
 * calloc and realloc are wrapped at link time, see faults.h). A failed
 * call must answer BS_ENOMEM and leave the state exactly as it was, applied
 * index included, so that the store can retry the same entry; the retry
 * must then succeed and give the same state as a run without faults.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"

static uint8_t *encode(const struct bs_pd_cmd *cmd, size_t *len)
{
    uint8_t *buf;
    ck_assert_int_eq(bs_pd_cmd_encode(cmd, &buf, len), 0);
    return buf;
}

START_TEST(test_apply_is_all_or_nothing_under_enomem)
{
    /* Reference run without faults. */
    uint64_t ridx = 0;
    struct bs_pd_state *ref = th_bootstrap(5, 16, 3, &ridx);

    /* Bootstrap. */
    struct bs_pd_node_info ni[5];
    for (int i = 0; i < 5; i++)
        th_node_info(&ni[i], (uint64_t)i + 1);
    struct bs_pd_cmd boot = {.type = BS_PD_CMD_BOOTSTRAP};
    boot.u.bootstrap.cluster_id = 42;
    boot.u.bootstrap.initial_shards = 16;
    boot.u.bootstrap.replicas = 3;
    boot.u.bootstrap.now = 1000;
    boot.u.bootstrap.n_nodes = 5;
    boot.u.bootstrap.nodes = ni;
    size_t len;
    uint8_t *buf = encode(&boot, &len);
    struct bs_pd_state *st = bs_pd_state_create();
    /* decode, sort copy, state, arrays, leader counts, 17 shards... */
    ck_assert_int_gt(th_apply_under_faults(st, 1, buf, len, 0), 20);
    free(buf);
    ck_assert(th_equal(st, ref));

    /* A split (its allocations applied normally, on both). */
    uint64_t idx = 1;
    struct bs_pd_cmd split;
    th_split_cmd(st, &idx, 5, "\x48\x01", 2, &split);
    th_split_cmd(ref, &ridx, 5, "\x48\x01", 2, &split);
    buf = encode(&split, &len);
    /* the new shard, its bounds, the parent's new end */
    ck_assert_int_ge(th_apply_under_faults(st, ++idx, buf, len, 0), 3);
    ck_assert_int_eq(bs_pd_apply(ref, ++ridx, buf, len, NULL), 0);
    free(buf);
    ck_assert(th_equal(st, ref));

    /* A node registration (the node array grows). */
    for (uint64_t id = 6; id <= 12; id++) {
        struct bs_pd_cmd reg = th_cmd_register(id, 0);
        buf = encode(&reg, &len);
        th_apply_under_faults(st, ++idx, buf, len, 0);
        ck_assert_int_eq(bs_pd_apply(ref, ++ridx, buf, len, NULL), 0);
        free(buf);
    }
    ck_assert(th_equal(st, ref));

    /* A heartbeat and a refused command. */
    struct bs_pd_cmd hb = {.type = BS_PD_CMD_NODE_HEARTBEAT};
    hb.u.heartbeat.node_id = 3;
    hb.u.heartbeat.now = 5000;
    buf = encode(&hb, &len);
    th_apply_under_faults(st, ++idx, buf, len, 0);
    ck_assert_int_eq(bs_pd_apply(ref, ++ridx, buf, len, NULL), 0);
    th_apply_under_faults(st, ++idx, buf, len, BS_ESTALE);
    ck_assert_int_eq(bs_pd_apply(ref, ++ridx, buf, len, NULL), BS_ESTALE);
    free(buf);
    ck_assert(th_equal(st, ref));

    bs_pd_state_destroy(st);
    bs_pd_state_destroy(ref);
}
END_TEST

START_TEST(test_decode_all_is_all_or_nothing_under_enomem)
{
    uint64_t idx = 0;
    struct bs_pd_state *src = th_bootstrap(3, 8, 3, &idx);
    size_t len;
    uint8_t *img = th_image(src, &len);
    struct bs_pd_state *st = th_bootstrap(1, 1, 1, &(uint64_t){0});
    th_decode_all_under_faults(st, img, len);
    ck_assert(th_equal(st, src));
    free(img);
    bs_pd_state_destroy(st);
    bs_pd_state_destroy(src);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement_nomem");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_apply_is_all_or_nothing_under_enomem);
    tcase_add_test(tc, test_decode_all_is_all_or_nothing_under_enomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(suite());
}
