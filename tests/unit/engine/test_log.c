/*
 * test_log.c - unit tests of engine/log.c: level filtering, level names
 * and BASALT_LOG, the logfmt line format (one event per line, escaping,
 * truncation), the sink, and the default output to stderr.
 *
 * Check runs every test in its own forked process, so the logger's globals
 * start fresh in each one.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"

/* Captured output of the sink (a tmpfile). */
static FILE *sink;

static void capture_begin(void)
{
    sink = tmpfile();
    ck_assert_ptr_nonnull(sink);
    bs_log_set_sink(sink);
}

/* Returns everything logged since capture_begin (malloc'd; caller frees). */
static char *capture_end(void)
{
    long n;
    char *buf;

    bs_log_set_sink(NULL);
    ck_assert_int_eq(fflush(sink), 0);
    n = ftell(sink);
    ck_assert_int_ge(n, 0);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    rewind(sink);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, sink), (size_t)n);
    buf[n] = '\0';
    fclose(sink);
    sink = NULL;
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    ck_assert_int_eq(rc, 0);
    rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "line <%s> does not match <%s>", s, pattern);
}

START_TEST(test_level_filtering)
{
    char *out;

    bs_log_set_level(BS_LOG_WARN);
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_WARN);
    ck_assert(bs_log_enabled(BS_LOG_ERROR));
    ck_assert(bs_log_enabled(BS_LOG_WARN));
    ck_assert(!bs_log_enabled(BS_LOG_INFO));
    ck_assert(!bs_log_enabled(BS_LOG_DEBUG));

    capture_begin();
    bs_log(BS_LOG_ERROR, "t", "e1");
    bs_log(BS_LOG_WARN, "t", "w1");
    bs_log(BS_LOG_INFO, "t", "i1");
    bs_log(BS_LOG_DEBUG, "t", "d1");
    out = capture_end();
    ck_assert_int_eq(count_lines(out), 2);
    ck_assert_ptr_nonnull(strstr(out, "level=error module=t msg=\"e1\"\n"));
    ck_assert_ptr_nonnull(strstr(out, "level=warn module=t msg=\"w1\"\n"));
    ck_assert_ptr_null(strstr(out, "i1"));
    ck_assert_ptr_null(strstr(out, "d1"));
    free(out);

    bs_log_set_level(BS_LOG_DEBUG);
    capture_begin();
    bs_log(BS_LOG_INFO, "t", "i2");
    bs_log(BS_LOG_DEBUG, "t", "d2");
    out = capture_end();
    ck_assert_int_eq(count_lines(out), 2);
    free(out);

    bs_log_set_level(BS_LOG_ERROR);
    capture_begin();
    bs_log(BS_LOG_WARN, "t", "w3");
    bs_log(BS_LOG_ERROR, "t", "e3");
    out = capture_end();
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_ptr_nonnull(strstr(out, "e3"));
    free(out);
}
END_TEST

START_TEST(test_set_level_clamps)
{
    bs_log_set_level(-5);
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_ERROR);
    bs_log_set_level(99);
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_DEBUG);
}
END_TEST

START_TEST(test_level_names)
{
    ck_assert_int_eq(bs_log_parse_level("error"), BS_LOG_ERROR);
    ck_assert_int_eq(bs_log_parse_level("WARN"), BS_LOG_WARN);
    ck_assert_int_eq(bs_log_parse_level("warning"), BS_LOG_WARN);
    ck_assert_int_eq(bs_log_parse_level("Info"), BS_LOG_INFO);
    ck_assert_int_eq(bs_log_parse_level("debug"), BS_LOG_DEBUG);
    ck_assert_int_eq(bs_log_parse_level("trace"), BS_EINVAL);
    ck_assert_int_eq(bs_log_parse_level(""), BS_EINVAL);
    ck_assert_int_eq(bs_log_parse_level(NULL), BS_EINVAL);
    for (int l = BS_LOG_ERROR; l <= BS_LOG_DEBUG; l++)
        ck_assert_int_eq(bs_log_parse_level(bs_log_level_name(l)), l);
    ck_assert_str_eq(bs_log_level_name(-1), "?");
    ck_assert_str_eq(bs_log_level_name(4), "?");
}
END_TEST

START_TEST(test_env_default_is_info)
{
    unsetenv(BS_LOG_ENV);
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_INFO);
}
END_TEST

START_TEST(test_env_debug_on_first_use)
{
    char *out;

    /* Nothing set yet in this (forked) process: first use reads the env. */
    setenv(BS_LOG_ENV, "debug", 1);
    capture_begin();
    bs_log(BS_LOG_DEBUG, "t", "visible");
    out = capture_end();
    ck_assert_int_eq(count_lines(out), 1);
    free(out);
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_DEBUG);
}
END_TEST

START_TEST(test_env_explicit_level_wins)
{
    setenv(BS_LOG_ENV, "debug", 1);
    bs_log_set_level(BS_LOG_ERROR);
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_ERROR);
}
END_TEST

START_TEST(test_env_reinit_and_bad_value)
{
    char *out;

    setenv(BS_LOG_ENV, "error", 1);
    ck_assert_int_eq(bs_log_init_from_env(), 0);
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_ERROR);

    setenv(BS_LOG_ENV, "loud", 1);
    capture_begin();
    ck_assert_int_eq(bs_log_init_from_env(), BS_EINVAL);
    out = capture_end();
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_INFO);
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_ptr_nonnull(strstr(out, "level=warn module=log "));
    ck_assert_ptr_nonnull(strstr(out, "BASALT_LOG=loud"));
    free(out);

    unsetenv(BS_LOG_ENV);
    ck_assert_int_eq(bs_log_init_from_env(), 0);
    ck_assert_int_eq(bs_log_get_level(), BS_LOG_INFO);
}
END_TEST

START_TEST(test_line_format)
{
    char *out;

    bs_log_set_level(BS_LOG_INFO);
    capture_begin();
    bs_log(BS_LOG_INFO, "store", "group started shard=%d peers=%s", 7, "1,2,3");
    out = capture_end();
    assert_matches(out, "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                        "[0-9]{2}\\.[0-9]{3}Z level=info module=store "
                        "msg=\"group started shard=7 peers=1,2,3\"\n$");
    free(out);
}
END_TEST

START_TEST(test_escaping_keeps_one_line)
{
    char *out;

    bs_log_set_level(BS_LOG_INFO);
    capture_begin();
    bs_log(BS_LOG_INFO, "my mod", "a \"q\" b\\c\nd\te\x01");
    bs_log(BS_LOG_INFO, NULL, "x");
    out = capture_end();
    ck_assert_int_eq(count_lines(out), 2);
    ck_assert_ptr_nonnull(strstr(
        out, " module=\"my mod\" msg=\"a \\\"q\\\" b\\\\c\\nd\\te\\x01\"\n"));
    ck_assert_ptr_nonnull(strstr(out, " module=- msg=\"x\"\n"));
    free(out);
}
END_TEST

START_TEST(test_long_message_truncated)
{
    char *out, *big;
    size_t n = 3 * BS_LOG_MAX_MSG;
    const char *tail;

    big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'z', n);
    big[n] = '\0';
    bs_log_set_level(BS_LOG_INFO);
    capture_begin();
    bs_log(BS_LOG_INFO, "t", "%s", big);
    /* The worst case for escaping: every byte becomes \xHH. */
    memset(big, 0x02, n);
    bs_log(BS_LOG_INFO, "t", "%s", big);
    out = capture_end();
    ck_assert_int_eq(count_lines(out), 2);
    tail = "z\" truncated=1\n";
    ck_assert_ptr_nonnull(strstr(out, tail));
    ck_assert_ptr_nonnull(strstr(out, "\\x02\" truncated=1\n"));
    ck_assert_uint_lt(strlen(out), 6 * BS_LOG_MAX_MSG);
    free(out);
    free(big);
}
END_TEST

START_TEST(test_default_sink_is_stderr)
{
    int fds[2], saved;
    char buf[512];
    ssize_t n;

    bs_log_set_level(BS_LOG_INFO);
    ck_assert_int_eq(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fds[1], STDERR_FILENO), 0);
    bs_log(BS_LOG_INFO, "t", "to stderr");
    fflush(stderr);
    ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    close(fds[1]);
    n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_int_eq(count_lines(buf), 1);
    ck_assert_ptr_nonnull(strstr(buf, "level=info module=t msg=\"to stderr\""));
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_level_filtering);
    tcase_add_test(tc, test_set_level_clamps);
    tcase_add_test(tc, test_level_names);
    tcase_add_test(tc, test_env_default_is_info);
    tcase_add_test(tc, test_env_debug_on_first_use);
    tcase_add_test(tc, test_env_explicit_level_wins);
    tcase_add_test(tc, test_env_reinit_and_bad_value);
    tcase_add_test(tc, test_line_format);
    tcase_add_test(tc, test_escaping_keeps_one_line);
    tcase_add_test(tc, test_long_message_truncated);
    tcase_add_test(tc, test_default_sink_is_stderr);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    /* The tests rely on fresh globals per test; force forking even if
     * CK_FORK=no is set in the environment. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
