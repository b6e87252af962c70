/*
 * test_lincheck.c - unit tests of the simulator's linearizability checker
 * (lincheck.c): known-good and known-bad register histories, indeterminate
 * writes, the search budget, and randomized histories generated from a real
 * register (always linearizable) next to the same histories with one read
 * made stale (never linearizable).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "sim.h"

#define W(v, a, b)                                                             \
    {                                                                          \
        BS_SIM_OP_WRITE, (v), (a), (b)                                         \
    }
#define R(v, a, b)                                                             \
    {                                                                          \
        BS_SIM_OP_READ, (v), (a), (b)                                          \
    }
#define INF BS_SIM_T_INF
#define CHECK(ops)                                                             \
    bs_sim_lin_check((ops), sizeof(ops) / sizeof((ops)[0]), 0, 0, why,         \
                     sizeof why)

static char why[256];

START_TEST(test_sequential_good)
{
    struct bs_sim_lin_op ops[] = {
        R(0, 1, 2), W(1, 3, 4), R(1, 5, 6), W(2, 7, 8), R(2, 9, 10),
    };
    ck_assert_int_eq(CHECK(ops), 1);
}
END_TEST

START_TEST(test_empty_history)
{
    ck_assert_int_eq(bs_sim_lin_check(NULL, 0, 0, 0, why, sizeof why), 1);
}
END_TEST

START_TEST(test_concurrent_good)
{
    /* A read overlapping a write may see either value; later reads must
     * agree with the order the earlier reads imply. */
    struct bs_sim_lin_op ops[] = {
        W(1, 1, 10),  R(0, 2, 3),   R(1, 4, 5),   R(1, 11, 12),
        W(2, 13, 20), W(3, 14, 21), R(3, 22, 23), R(3, 24, 25),
    };
    ck_assert_int_eq(CHECK(ops), 1);
}
END_TEST

START_TEST(test_stale_read_bad)
{
    struct bs_sim_lin_op ops[] = {
        W(1, 1, 2),
        W(2, 3, 4),
        R(1, 5, 6),
    };
    ck_assert_int_eq(CHECK(ops), 0);
    ck_assert_ptr_nonnull(strstr(why, "read of value 1"));
}
END_TEST

START_TEST(test_new_then_old_bad)
{
    /* Once a read saw the write's value, a later read cannot see the old
     * one: the write has taken effect. */
    struct bs_sim_lin_op ops[] = {
        W(1, 1, 10),
        R(1, 2, 3),
        R(0, 4, 5),
    };
    ck_assert_int_eq(CHECK(ops), 0);
}
END_TEST

START_TEST(test_two_writes_order_bad)
{
    /* Concurrent writes 1 and 2: reads see 1 then 2 then 1 again. */
    struct bs_sim_lin_op ops[] = {
        W(1, 1, 10), W(2, 2, 11), R(1, 12, 13), R(2, 14, 15), R(1, 16, 17),
    };
    ck_assert_int_eq(CHECK(ops), 0);
}
END_TEST

START_TEST(test_never_written_bad)
{
    struct bs_sim_lin_op ops[] = {
        W(1, 1, 2),
        R(7, 3, 4),
    };
    ck_assert_int_eq(CHECK(ops), 0);
    ck_assert_ptr_nonnull(strstr(why, "never written"));
}
END_TEST

START_TEST(test_read_from_future_bad)
{
    /* The read ends before the write begins. */
    struct bs_sim_lin_op ops[] = {
        R(1, 1, 2),
        W(1, 3, 4),
    };
    ck_assert_int_eq(CHECK(ops), 0);
}
END_TEST

START_TEST(test_indeterminate)
{
    /* An indeterminate write may take effect late... */
    struct bs_sim_lin_op late[] = {
        W(1, 1, INF), R(0, 2, 3), W(2, 4, 5),
        R(2, 6, 7),   R(1, 8, 9), R(1, 10, 11),
    };
    ck_assert_int_eq(CHECK(late), 1);
    /* ...or never... */
    struct bs_sim_lin_op never[] = {
        W(1, 1, INF),
        W(2, 2, 3),
        R(2, 4, 5),
        R(2, 6, 7),
    };
    ck_assert_int_eq(CHECK(never), 1);
    /* ...but only once. */
    struct bs_sim_lin_op twice[] = {
        W(1, 1, INF), R(1, 2, 3), W(2, 4, 5), R(2, 6, 7), R(1, 8, 9),
    };
    ck_assert_int_eq(CHECK(twice), 0);
    /* And not before its invocation. */
    struct bs_sim_lin_op early[] = {
        R(1, 1, 2),
        W(1, 3, INF),
    };
    ck_assert_int_eq(CHECK(early), 0);
}
END_TEST

START_TEST(test_many_unobserved_indeterminate)
{
    /* 300 lost writes nobody read cost nothing. */
    struct bs_sim_lin_op ops[400];
    size_t n = 0;
    uint64_t t = 1;
    for (uint64_t v = 1; v <= 300; v++)
        ops[n++] = (struct bs_sim_lin_op)W(v, t++, INF);
    for (uint64_t v = 301; v <= 350; v++) {
        ops[n++] = (struct bs_sim_lin_op)W(v, t, t + 1);
        t += 2;
        ops[n++] = (struct bs_sim_lin_op)R(v, t, t + 1);
        t += 2;
    }
    ck_assert_int_eq(bs_sim_lin_check(ops, n, 0, 10000, why, sizeof why), 1);
}
END_TEST

START_TEST(test_budget)
{
    /* Many overlapping writes with reads that force wide search. */
    enum { N = 40 };
    struct bs_sim_lin_op ops[2 * N];
    for (uint64_t v = 1; v <= N; v++) {
        ops[v - 1] = (struct bs_sim_lin_op)W(v, v, 1000 + v);
        ops[N + v - 1] = (struct bs_sim_lin_op)R(v, 100 + v, 2000 + v);
    }
    ck_assert_int_eq(bs_sim_lin_check(ops, 2 * N, 0, 50, why, sizeof why),
                     BS_ETOOBIG);
}
END_TEST

/* Generates a history from a real register: each op has a random
 * interval, and takes effect at a random point inside it. */
struct gen_op {
    struct bs_sim_lin_op op;
    uint64_t at;
};

static int gen_cmp(const void *a, const void *b)
{
    const struct gen_op *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

static size_t gen_history(struct bs_sim_rng *g, struct gen_op *ops, size_t n)
{
    /* Distinct times: 4 per op. */
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = 4 * i + 1 + bs_sim_rng_below(g, 3);
        uint64_t len = 1 + bs_sim_rng_below(g, 12);
        ops[i].op.invoke = a * 10;
        ops[i].op.ret = (a + len) * 10 + 1;
        ops[i].at = ops[i].op.invoke + 1 +
                    bs_sim_rng_below(g, ops[i].op.ret - ops[i].op.invoke - 1);
        ops[i].op.kind =
            bs_sim_rng_below(g, 2) ? BS_SIM_OP_WRITE : BS_SIM_OP_READ;
        if (ops[i].op.kind == BS_SIM_OP_WRITE)
            ops[i].op.value = ++v;
    }
    /* Replay in linearization order to fill in read values. */
    qsort(ops, n, sizeof *ops, gen_cmp);
    uint64_t reg = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].op.kind == BS_SIM_OP_WRITE)
            reg = ops[i].op.value;
        else
            ops[i].op.value = reg;
    }
    /* Some writes lose their acknowledgement. */
    for (size_t i = 0; i < n; i++)
        if (ops[i].op.kind == BS_SIM_OP_WRITE && bs_sim_rng_below(g, 8) == 0)
            ops[i].op.ret = INF;
    return n;
}

START_TEST(test_random_generated)
{
    struct bs_sim_rng g;
    bs_sim_rng_seed(&g, 12345);
    enum { N = 120 };
    struct gen_op gops[N];
    struct bs_sim_lin_op ops[N];
    int bad_caught = 0, bad_made = 0;
    for (int round = 0; round < 200; round++) {
        gen_history(&g, gops, N);
        for (size_t i = 0; i < N; i++)
            ops[i] = gops[i].op;
        ck_assert_int_eq(bs_sim_lin_check(ops, N, 0, 1000000, why, sizeof why),
                         1);
        /* Make a read stale: give it the value of a write that completed
         * before another completed write that completed before the read
         * began. */
        for (size_t i = 0; i < N; i++) {
            if (ops[i].kind != BS_SIM_OP_READ)
                continue;
            for (size_t j = 0; j < N; j++) {
                if (ops[j].kind != BS_SIM_OP_WRITE || ops[j].ret == INF)
                    continue;
                for (size_t k = 0; k < N; k++) {
                    if (ops[k].kind != BS_SIM_OP_WRITE || ops[k].ret == INF ||
                        ops[j].ret >= ops[k].invoke ||
                        ops[k].ret >= ops[i].invoke)
                        continue;
                    uint64_t saved = ops[i].value;
                    ops[i].value = ops[j].value;
                    bad_made++;
                    if (bs_sim_lin_check(ops, N, 0, 1000000, why, sizeof why) ==
                        0)
                        bad_caught++;
                    ops[i].value = saved;
                    goto next_round;
                }
            }
        }
    next_round:;
    }
    ck_assert_int_gt(bad_made, 100);
    ck_assert_int_eq(bad_caught, bad_made);
}
END_TEST

START_TEST(test_zones_agree_with_search)
{
    /* Random small histories, linearizable or not: the zone test and the
     * search must give the same verdict on every one. */
    struct bs_sim_rng g;
    bs_sim_rng_seed(&g, 777);
    int good = 0, bad = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = 2 + bs_sim_rng_below(&g, 9);
        struct bs_sim_lin_op ops[12];
        uint64_t nw = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t a = 1 + bs_sim_rng_below(&g, 3 * n);
            ops[i].invoke = 2 * a * 16 + i;
            ops[i].ret = ops[i].invoke + 16 * (1 + bs_sim_rng_below(&g, 8));
            ops[i].kind =
                bs_sim_rng_below(&g, 2) ? BS_SIM_OP_WRITE : BS_SIM_OP_READ;
            if (ops[i].kind == BS_SIM_OP_WRITE) {
                ops[i].value = ++nw;
                if (bs_sim_rng_below(&g, 5) == 0)
                    ops[i].ret = INF;
            }
        }
        for (size_t i = 0; i < n; i++)
            if (ops[i].kind == BS_SIM_OP_READ)
                ops[i].value = bs_sim_rng_below(&g, nw + 1);
        int a = bs_sim_lin_check(ops, n, 0, 0, why, sizeof why);
        int b = bs_sim_lin_zones(ops, n, 0, why, sizeof why);
        ck_assert_int_ge(a, 0);
        ck_assert_msg(a == b, "round %d: search says %d, zones say %d", round,
                      a, b);
        good += a == 1;
        bad += a == 0;
    }
    /* Both verdicts must be well represented. */
    ck_assert_int_gt(good, 2000);
    ck_assert_int_gt(bad, 2000);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lincheck");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sequential_good);
    tcase_add_test(tc, test_empty_history);
    tcase_add_test(tc, test_concurrent_good);
    tcase_add_test(tc, test_stale_read_bad);
    tcase_add_test(tc, test_new_then_old_bad);
    tcase_add_test(tc, test_two_writes_order_bad);
    tcase_add_test(tc, test_never_written_bad);
    tcase_add_test(tc, test_read_from_future_bad);
    tcase_add_test(tc, test_indeterminate);
    tcase_add_test(tc, test_many_unobserved_indeterminate);
    tcase_add_test(tc, test_budget);
    tcase_add_test(tc, test_random_generated);
    tcase_add_test(tc, test_zones_agree_with_search);
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
