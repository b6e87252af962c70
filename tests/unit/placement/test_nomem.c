/*
 * test_nomem.c - fault injection: every allocation that bs_pd_apply,
 * bs_pd_cmd_decode and bs_pd_decode_all make is failed in turn (malloc,
 * calloc and realloc are wrapped at link time, see meson.build). A failed
 * call must answer BS_ENOMEM and leave the state exactly as it was, applied
 * index included, so that the store can retry the same entry; the retry
 * must then succeed and give the same state as a run without faults.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

/* Allocations left before the injected failure; < 0: never fail. */
static long budget = -1;
static long failures;

static bool fail_now(void)
{
    if (budget < 0)
        return false;
    if (budget == 0) {
        failures++;
        return true;
    }
    budget--;
    return false;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return fail_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

static uint8_t *image(const struct bs_pd_state *st, size_t *len)
{
    uint8_t *img;
    ck_assert_int_eq(bs_pd_encode_all(st, &img, len), 0);
    return img;
}

/*
 * Applies data at index to st with the k-th allocation failing, for every
 * k until one run needs no failure; after each failure the state must be
 * unchanged. Leaves st with the entry applied; returns how many runs
 * failed.
 */
static long apply_under_faults(struct bs_pd_state *st, uint64_t index,
                               const uint8_t *data, size_t len, int want)
{
    size_t before_len;
    uint8_t *before = image(st, &before_len);
    uint64_t applied = bs_pd_applied(st);
    long k;
    for (k = 0;; k++) {
        failures = 0;
        budget = k;
        int rc = bs_pd_apply(st, index, data, len, NULL);
        budget = -1;
        if (failures == 0) {
            ck_assert_int_eq(rc, want);
            ck_assert_uint_eq(bs_pd_applied(st), index);
            break;
        }
        /* The failure may have hit an allocation whose failure the code
         * absorbs; then it must have succeeded entirely. */
        if (rc != BS_ENOMEM) {
            ck_assert_int_eq(rc, want);
            break;
        }
        ck_assert_uint_eq(bs_pd_applied(st), applied);
        size_t l;
        uint8_t *now = image(st, &l);
        ck_assert_msg(l == before_len && memcmp(now, before, l) == 0,
                      "state changed by a failed apply (k = %ld)", k);
        free(now);
        th_check(st);
        ck_assert_int_lt(k, 10000);
    }
    free(before);
    th_check(st);
    return k;
}

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
    ck_assert_int_gt(apply_under_faults(st, 1, buf, len, 0), 20);
    free(buf);
    ck_assert(th_equal(st, ref));

    /* A split (its allocations applied normally, on both). */
    uint64_t idx = 1;
    struct bs_pd_cmd split;
    th_split_cmd(st, &idx, 5, "\x48\x01", 2, &split);
    th_split_cmd(ref, &ridx, 5, "\x48\x01", 2, &split);
    buf = encode(&split, &len);
    /* the new shard, its bounds, the parent's new end */
    ck_assert_int_ge(apply_under_faults(st, ++idx, buf, len, 0), 3);
    ck_assert_int_eq(bs_pd_apply(ref, ++ridx, buf, len, NULL), 0);
    free(buf);
    ck_assert(th_equal(st, ref));

    /* A node registration (the node array grows). */
    for (uint64_t id = 6; id <= 12; id++) {
        struct bs_pd_cmd reg = {.type = BS_PD_CMD_REGISTER_NODE};
        th_node_info(&reg.u.register_node.node, id);
        buf = encode(&reg, &len);
        apply_under_faults(st, ++idx, buf, len, 0);
        ck_assert_int_eq(bs_pd_apply(ref, ++ridx, buf, len, NULL), 0);
        free(buf);
    }
    ck_assert(th_equal(st, ref));

    /* A heartbeat and a refused command. */
    struct bs_pd_cmd hb = {.type = BS_PD_CMD_NODE_HEARTBEAT};
    hb.u.heartbeat.node_id = 3;
    hb.u.heartbeat.now = 5000;
    buf = encode(&hb, &len);
    apply_under_faults(st, ++idx, buf, len, 0);
    ck_assert_int_eq(bs_pd_apply(ref, ++ridx, buf, len, NULL), 0);
    apply_under_faults(st, ++idx, buf, len, BS_ESTALE);
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
    uint8_t *img = image(src, &len);
    struct bs_pd_state *st = th_bootstrap(1, 1, 1, &(uint64_t){0});
    size_t old_len;
    uint8_t *old = image(st, &old_len);
    for (long k = 0;; k++) {
        failures = 0;
        budget = k;
        int rc = bs_pd_decode_all(st, img, len, NULL);
        budget = -1;
        if (failures == 0 || rc == 0) {
            ck_assert_int_eq(rc, 0);
            break;
        }
        ck_assert_int_eq(rc, BS_ENOMEM);
        size_t l;
        uint8_t *now = image(st, &l);
        ck_assert(l == old_len && memcmp(now, old, l) == 0);
        free(now);
    }
    ck_assert(th_equal(st, src));
    free(img);
    free(old);
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
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
