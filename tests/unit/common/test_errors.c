/*
 * test_errors.c - unit tests of common/errors.c: every BS_E* code has a
 * distinct, meaningful message and its own symbolic name, and codes outside
 * the list are answered without crashing.
 */
#include <check.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

struct code {
    const char *name;
    int value;
    const char *msg;
};

static const struct code codes[] = {
#define CODE_ROW(name, value, msg) {#name, (value), (msg)},
    BS_ERRORS(CODE_ROW)
#undef CODE_ROW
};
#define N_CODES (sizeof(codes) / sizeof(codes[0]))

START_TEST(test_codes_are_zero_or_negative_and_distinct)
{
    ck_assert_int_eq(codes[0].value, BS_OK);
    ck_assert_int_eq(BS_OK, 0);
    for (size_t i = 0; i < N_CODES; i++) {
        ck_assert_int_le(codes[i].value, 0);
        for (size_t j = i + 1; j < N_CODES; j++)
            ck_assert_int_ne(codes[i].value, codes[j].value);
    }
}
END_TEST

START_TEST(test_messages_match_table_and_are_distinct)
{
    for (size_t i = 0; i < N_CODES; i++) {
        const char *m = bs_strerror(codes[i].value);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m, codes[i].msg);
        ck_assert_uint_gt(strlen(m), 0);
        ck_assert_str_ne(m, "unknown error");
        for (size_t j = i + 1; j < N_CODES; j++)
            ck_assert_str_ne(m, bs_strerror(codes[j].value));
    }
}
END_TEST

START_TEST(test_names_match_table_and_are_distinct)
{
    for (size_t i = 0; i < N_CODES; i++) {
        const char *n = bs_err_name(codes[i].value);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_eq(n, codes[i].name);
        ck_assert_int_eq(strncmp(n, "BS_", 3), 0);
        for (size_t j = i + 1; j < N_CODES; j++)
            ck_assert_str_ne(n, bs_err_name(codes[j].value));
    }
}
END_TEST

START_TEST(test_known_codes_spot_check)
{
    ck_assert_str_eq(bs_err_name(BS_EINVAL), "BS_EINVAL");
    ck_assert_str_eq(bs_strerror(BS_ENOMEM), "out of memory");
    ck_assert_str_eq(bs_err_name(BS_OK), "BS_OK");
}
END_TEST

START_TEST(test_unknown_codes)
{
    static const int unknown[] = {1, 42, -1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        ck_assert_str_eq(bs_strerror(unknown[i]), "unknown error");
        ck_assert_str_eq(bs_err_name(unknown[i]), "BS_E?");
    }
    /* The code just past the most negative one is unknown too. */
    int lowest = 0;
    for (size_t i = 0; i < N_CODES; i++)
        if (codes[i].value < lowest)
            lowest = codes[i].value;
    ck_assert_str_eq(bs_strerror(lowest - 1), "unknown error");
    ck_assert_str_eq(bs_err_name(lowest - 1), "BS_E?");
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_codes_are_zero_or_negative_and_distinct);
    tcase_add_test(tc, test_messages_match_table_and_are_distinct);
    tcase_add_test(tc, test_names_match_table_and_are_distinct);
    tcase_add_test(tc, test_known_codes_spot_check);
    tcase_add_test(tc, test_unknown_codes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(errors_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
