/*
 * test_opts.c - unit tests of cli/opts.c: the flag walker (long and short
 * forms, inline values, "--", unknown, duplicate and valueless flags),
 * the value parsers (integers at their bounds and beyond, booleans,
 * HOST:PORT), `basalt start`'s options from flags, from a YAML file and
 * from both (flags win; errors name the flag, or the file, line and key),
 * issue 5's options (--join and its exclusion of --initial-cluster,
 * --labels, the placement and ISR settings, sizes with K/M/G) with
 * node.c's list parsers, and the byte-string helpers the clients print with
 * (prefix range end, text-or-hex).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opts.h"

/* ------------------------------------------------------------ helpers */

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(v)   argc_of(v)

static int argc_of(char **v)
{
    int n = 0;

    while (v[n] != NULL)
        n++;
    return n;
}

static const struct bs_cli_flag tflags[] = {
    {"endpoints", 0, BS_CLI_ARG_REQUIRED}, {"output", 'o', BS_CLI_ARG_REQUIRED},
    {"prefix", 0, BS_CLI_ARG_NONE},        {"lease", 0, BS_CLI_ARG_OPTIONAL},
    {"help", 'h', BS_CLI_ARG_NONE},
};
#define N_TFLAGS (sizeof(tflags) / sizeof(tflags[0]))

/* Walks argv; returns the first error code, or 0; records each result. */
struct walk {
    int which[16];
    const char *val[16];
    int n;
    char err[BS_CLI_ERRMSG_SIZE];
};

static int walk(char **argv, struct walk *w)
{
    struct bs_cli_argv a;
    int rc;

    memset(w, 0, sizeof(*w));
    bs_cli_argv_init(&a, argc_of(argv), argv, tflags, N_TFLAGS);
    for (;;) {
        int which;
        const char *val;

        rc = bs_cli_argv_next(&a, &which, &val, w->err);
        if (rc != 0 || which == BS_CLI_END)
            return rc;
        ck_assert_int_lt(w->n, 16);
        w->which[w->n] = which;
        w->val[w->n] = val;
        w->n++;
    }
}

static char *write_tmp(const char *text)
{
    static char path[64];
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/bs-cli-test-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* ------------------------------------------------------- flag walker */

START_TEST(test_walk_forms)
{
    struct walk w;

    ck_assert_int_eq(walk(ARGV("kv", "get", "--endpoints", "a:1", "k", "-o",
                               "json", "--prefix"),
                          &w),
                     0);
    ck_assert_int_eq(w.n, 5);
    ck_assert_int_eq(w.which[0], BS_CLI_POSITIONAL);
    ck_assert_str_eq(w.val[0], "get");
    ck_assert_int_eq(w.which[1], 0);
    ck_assert_str_eq(w.val[1], "a:1");
    ck_assert_int_eq(w.which[2], BS_CLI_POSITIONAL);
    ck_assert_str_eq(w.val[2], "k");
    ck_assert_int_eq(w.which[3], 1);
    ck_assert_str_eq(w.val[3], "json");
    ck_assert_int_eq(w.which[4], 2);
    ck_assert_ptr_null(w.val[4]);

    ck_assert_int_eq(walk(ARGV("x", "--endpoints=b:2", "-ojson"), &w), 0);
    ck_assert_int_eq(w.n, 2);
    ck_assert_str_eq(w.val[0], "b:2");
    ck_assert_str_eq(w.val[1], "json");

    /* An empty inline value is a value. */
    ck_assert_int_eq(walk(ARGV("x", "--endpoints="), &w), 0);
    ck_assert_str_eq(w.val[0], "");
}
END_TEST

START_TEST(test_walk_positional_escapes)
{
    struct walk w;

    /* "-" is a word; after "--" everything is a word. */
    ck_assert_int_eq(walk(ARGV("x", "-", "--", "--prefix", "-o"), &w), 0);
    ck_assert_int_eq(w.n, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(w.which[i], BS_CLI_POSITIONAL);
    ck_assert_str_eq(w.val[0], "-");
    ck_assert_str_eq(w.val[1], "--prefix");
    ck_assert_str_eq(w.val[2], "-o");
}
END_TEST

START_TEST(test_walk_optional_value)
{
    struct walk w;

    /* An optional value is never taken from the next word. */
    ck_assert_int_eq(walk(ARGV("x", "--lease", "word"), &w), 0);
    ck_assert_int_eq(w.n, 2);
    ck_assert_int_eq(w.which[0], 3);
    ck_assert_ptr_null(w.val[0]);
    ck_assert_int_eq(w.which[1], BS_CLI_POSITIONAL);
    ck_assert_int_eq(walk(ARGV("x", "--lease=false"), &w), 0);
    ck_assert_str_eq(w.val[0], "false");
}
END_TEST

START_TEST(test_walk_errors)
{
    struct walk w;

    ck_assert_int_eq(walk(ARGV("x", "--bogus"), &w), BS_EINVAL);
    ck_assert_str_eq(w.err, "unknown flag --bogus");
    ck_assert_int_eq(walk(ARGV("x", "--bogus=1"), &w), BS_EINVAL);
    ck_assert_str_eq(w.err, "unknown flag --bogus");
    ck_assert_int_eq(walk(ARGV("x", "-z"), &w), BS_EINVAL);
    ck_assert_str_eq(w.err, "unknown flag -z");
    /* -hx is not -h followed by garbage silently dropped. */
    ck_assert_int_eq(walk(ARGV("x", "-hx"), &w), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(w.err, "-hx"));

    ck_assert_int_eq(walk(ARGV("x", "--prefix", "k", "--prefix"), &w),
                     BS_EINVAL);
    ck_assert_str_eq(w.err, "flag --prefix given twice");
    ck_assert_int_eq(walk(ARGV("x", "-o", "json", "--output=text"), &w),
                     BS_EINVAL);
    ck_assert_str_eq(w.err, "flag --output given twice");

    ck_assert_int_eq(walk(ARGV("x", "k", "--endpoints"), &w), BS_EINVAL);
    ck_assert_str_eq(w.err, "flag --endpoints needs a value");
    ck_assert_int_eq(walk(ARGV("x", "-o"), &w), BS_EINVAL);
    ck_assert_str_eq(w.err, "flag --output needs a value");

    ck_assert_int_eq(walk(ARGV("x", "--prefix=yes"), &w), BS_EINVAL);
    ck_assert_str_eq(w.err, "flag --prefix takes no value");
}
END_TEST

/* ------------------------------------------------------ value parsers */

START_TEST(test_parse_uint)
{
    char r[BS_CLI_ERRMSG_SIZE];
    uint64_t v = 7;

    ck_assert_int_eq(bs_cli_parse_uint("42", 1, 100, &v, r), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(bs_cli_parse_uint("1", 1, 100, &v, r), 0);
    ck_assert_int_eq(bs_cli_parse_uint("100", 1, 100, &v, r), 0);
    ck_assert_uint_eq(v, 100);
    ck_assert_int_eq(
        bs_cli_parse_uint("18446744073709551615", 0, UINT64_MAX, &v, r), 0);
    ck_assert_uint_eq(v, UINT64_MAX);

    v = 7;
    ck_assert_int_eq(bs_cli_parse_uint("0", 1, 100, &v, r), BS_EINVAL);
    ck_assert_str_eq(r, "'0' is not an integer in 1 .. 100");
    ck_assert_int_eq(bs_cli_parse_uint("101", 1, 100, &v, r), BS_EINVAL);
    ck_assert_int_eq(
        bs_cli_parse_uint("18446744073709551616", 0, UINT64_MAX, &v, r),
        BS_EINVAL);
    ck_assert_int_eq(
        bs_cli_parse_uint("99999999999999999999999", 0, UINT64_MAX, &v, r),
        BS_EINVAL);
    ck_assert_int_eq(bs_cli_parse_uint("", 0, 100, &v, r), BS_EINVAL);
    ck_assert_int_eq(bs_cli_parse_uint("-1", 0, 100, &v, r), BS_EINVAL);
    ck_assert_int_eq(bs_cli_parse_uint("+1", 0, 100, &v, r), BS_EINVAL);
    ck_assert_int_eq(bs_cli_parse_uint(" 1", 0, 100, &v, r), BS_EINVAL);
    ck_assert_int_eq(bs_cli_parse_uint("1x", 0, 100, &v, r), BS_EINVAL);
    ck_assert_int_eq(bs_cli_parse_uint("0x10", 0, 100, &v, r), BS_EINVAL);
    ck_assert_uint_eq(v, 7); /* untouched on error */
}
END_TEST

START_TEST(test_parse_size)
{
    static const struct {
        const char *s;
        uint64_t want;
    } good[] = {
        {"0", 0},
        {"512", 512},
        {"1K", 1024},
        {"1k", 1024},
        {"64M", 64ULL << 20},
        {"64m", 64ULL << 20},
        {"2G", 2ULL << 30},
        {"3g", 3ULL << 30},
        {"17179869183G", 17179869183ULL << 30}, /* the largest G */
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *const bad[] = {
        "",    "K",    "M",   "1.5M", "1X",  "1KB", "1 K",          " 1K",
        "-1K", "+1K",  "1KK", "0x10", "1e3", "1T",  "17179869184G", "1M ",
        "k1",  "1 024"};
    char r[BS_CLI_ERRMSG_SIZE];
    uint64_t v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = 7;
        ck_assert_msg(bs_cli_parse_size(good[i].s, 0, UINT64_MAX, &v, r) == 0,
                      "%s: %s", good[i].s, r);
        ck_assert_msg(v == good[i].want, "%s: got %llu", good[i].s,
                      (unsigned long long)v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        ck_assert_msg(bs_cli_parse_size(bad[i], 0, UINT64_MAX, &v, r) ==
                          BS_EINVAL,
                      "'%s' accepted", bad[i]);
        ck_assert_uint_eq(v, 7); /* untouched on error */
    }
    /* The bounds apply to the value in bytes, suffix included. */
    ck_assert_int_eq(bs_cli_parse_size("1K", 1024, 1024, &v, r), 0);
    ck_assert_int_eq(bs_cli_parse_size("1023", 1024, 2048, &v, r), BS_EINVAL);
    ck_assert_str_eq(r, "'1023' is not a size in 1024 .. 2048 bytes (a "
                        "number, or with a suffix K, M or G: KiB, MiB, GiB)");
    ck_assert_int_eq(bs_cli_parse_size("3K", 1024, 2048, &v, r), BS_EINVAL);
    ck_assert_int_eq(bs_cli_parse_size("2K", 1024, 2048, &v, r), 0);
    ck_assert_uint_eq(v, 2048);
}
END_TEST

START_TEST(test_parse_bool)
{
    char r[BS_CLI_ERRMSG_SIZE];
    bool b = false;

    ck_assert_int_eq(bs_cli_parse_bool("True", &b, r), 0);
    ck_assert(b);
    ck_assert_int_eq(bs_cli_parse_bool("off", &b, r), 0);
    ck_assert(!b);
    ck_assert_int_eq(bs_cli_parse_bool("YES", &b, r), 0);
    ck_assert(b);
    ck_assert_int_eq(bs_cli_parse_bool("0", &b, r), 0);
    ck_assert(!b);
    ck_assert_int_eq(bs_cli_parse_bool("maybe", &b, r), BS_EINVAL);
    ck_assert_int_eq(bs_cli_parse_bool("", &b, r), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(r, "not a boolean"));
}
END_TEST

START_TEST(test_check_addr)
{
    static const char *const good[] = {
        "127.0.0.1:2379",
        "localhost:0",
        "[::1]:2379",
        "node-1.example:65535",
    };
    static const char *const bad[] = {
        "host",    ":80",   "h:",    "h:p",  "h:65536", "h:123456", "::1:2379",
        "[::1:80", "[]:80", "a b:1", "h:-1", "h:1 ",    "",
    };
    char r[BS_CLI_ERRMSG_SIZE], longaddr[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(bs_cli_check_addr(good[i], r) == 0, "%s: %s", good[i], r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(bs_cli_check_addr(bad[i], r) == BS_EINVAL, "%s accepted",
                      bad[i]);
    memset(longaddr, 'a', sizeof(longaddr));
    strcpy(longaddr + BS_NODE_ADDR_MAX - 3, ":80"); /* exactly the max */
    ck_assert_int_eq(bs_cli_check_addr(longaddr, r), 0);
    memset(longaddr, 'a', sizeof(longaddr));
    strcpy(longaddr + BS_NODE_ADDR_MAX - 2, ":80"); /* one more */
    ck_assert_int_eq(bs_cli_check_addr(longaddr, r), BS_EINVAL);
}
END_TEST

/* ---------------------------------------------------- `basalt start` */

#define BASE                                                                   \
    "start", "--id", "2", "--data-dir", "/tmp/d2", "--client-addr",            \
        "127.0.0.1:2379", "--peer-addr", "127.0.0.1:2380"

static int start_parse(char **argv, struct bs_node_opts *o, bool *help,
                       char *err)
{
    err[0] = '\0';
    return bs_cli_start_parse(argc_of(argv), argv, o, help, err);
}

START_TEST(test_start_flags)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    bool help = true;

    ck_assert_int_eq(
        start_parse(
            ARGV(BASE, "--http-addr", "127.0.0.1:8080", "--initial-cluster",
                 "1=127.0.0.1:2280,2=127.0.0.1:2380,3=h3:2480",
                 "--initial-shards", "4", "--tick-ms=50", "--election-ticks",
                 "20", "--log-max-entries", "500", "--lease-reads"),
            &o, &help, err),
        0);
    ck_assert_msg(err[0] == '\0', "%s", err);
    ck_assert(!help);
    ck_assert_uint_eq(o.node_id, 2);
    ck_assert_str_eq(o.data_dir, "/tmp/d2");
    ck_assert_str_eq(o.client_addr, "127.0.0.1:2379");
    ck_assert_str_eq(o.peer_addr, "127.0.0.1:2380");
    ck_assert_str_eq(o.http_addr, "127.0.0.1:8080");
    ck_assert_uint_eq(o.n_initial, 3);
    ck_assert_uint_eq(o.initial[2].id, 3);
    ck_assert_str_eq(o.initial[2].peer_addr, "h3:2480");
    ck_assert_uint_eq(o.initial_shards, 4);
    ck_assert_int_eq(o.tick_ms, 50);
    ck_assert_int_eq(o.election_ticks, 20);
    ck_assert_uint_eq(o.log_max_entries, 500);
    ck_assert(o.lease_reads);
}
END_TEST

/* Every placement, ISR, join and label flag lands in its field. */
START_TEST(test_start_flags_issue5)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    bool help;

    ck_assert_int_eq(
        start_parse(ARGV(BASE, "--labels", "rack=r1,zone=z-2", "--heartbeat-ms",
                         "500", "--down-after-ms", "20000", "--max-lag-entries",
                         "5000", "--max-lag-ms=7000", "--min-insync-replicas",
                         "2", "--max-concurrent-moves", "5", "--split-size",
                         "32M", "--split-qps", "1500", "--snapshot-rate", "8m",
                         "--op-timeout-ms", "120000"),
                    &o, &help, err),
        0);
    ck_assert_msg(err[0] == '\0', "%s", err);
    ck_assert_uint_eq(o.n_labels, 2);
    ck_assert_str_eq(o.label_keys[0], "rack");
    ck_assert_str_eq(o.label_values[0], "r1");
    ck_assert_str_eq(o.label_keys[1], "zone");
    ck_assert_str_eq(o.label_values[1], "z-2");
    ck_assert_uint_eq(o.heartbeat_ms, 500);
    ck_assert_uint_eq(o.down_after_ms, 20000);
    ck_assert_uint_eq(o.max_lag_entries, 5000);
    ck_assert_uint_eq(o.max_lag_ms, 7000);
    ck_assert_uint_eq(o.min_insync_replicas, 2);
    ck_assert_uint_eq(o.max_concurrent_moves, 5);
    ck_assert_uint_eq(o.split_size, 32ULL << 20);
    ck_assert_uint_eq(o.split_qps, 1500);
    ck_assert_uint_eq(o.snapshot_rate, 8ULL << 20);
    ck_assert_uint_eq(o.op_timeout_ms, 120000);
    ck_assert_uint_eq(o.n_join, 0);

    /* Not given: 0, node.c's "the default". */
    ck_assert_int_eq(start_parse(ARGV(BASE), &o, &help, err), 0);
    ck_assert_uint_eq(o.n_labels, 0);
    ck_assert_uint_eq(o.heartbeat_ms, 0);
    ck_assert_uint_eq(o.down_after_ms, 0);
    ck_assert_uint_eq(o.max_lag_entries, 0);
    ck_assert_uint_eq(o.max_lag_ms, 0);
    ck_assert_uint_eq(o.min_insync_replicas, 0);
    ck_assert_uint_eq(o.max_concurrent_moves, 0);
    ck_assert_uint_eq(o.split_size, 0);
    ck_assert_uint_eq(o.split_qps, 0);
    ck_assert_uint_eq(o.snapshot_rate, 0);
    ck_assert_uint_eq(o.op_timeout_ms, 0);

    /* 0 means "off" / "unlimited" where a flag takes it; sizes in bytes. */
    ck_assert_int_eq(
        start_parse(ARGV(BASE, "--split-qps", "0", "--snapshot-rate", "0",
                         "--split-size", "1048576"),
                    &o, &help, err),
        0);
    ck_assert_uint_eq(o.split_qps, 0);
    ck_assert_uint_eq(o.snapshot_rate, 0);
    ck_assert_uint_eq(o.split_size, 1048576);
    /* The bounds. */
    ck_assert_int_eq(
        start_parse(ARGV(BASE, "--heartbeat-ms", "10", "--down-after-ms",
                         "86400000", "--min-insync-replicas", "16",
                         "--max-concurrent-moves", "1000", "--split-size", "1K",
                         "--op-timeout-ms", "1000"),
                    &o, &help, err),
        0);
    ck_assert_uint_eq(o.heartbeat_ms, 10);
    ck_assert_uint_eq(o.down_after_ms, 86400000);
    ck_assert_uint_eq(o.min_insync_replicas, 16);
    ck_assert_uint_eq(o.max_concurrent_moves, 1000);
    ck_assert_uint_eq(o.split_size, 1024);
    ck_assert_uint_eq(o.op_timeout_ms, 1000);
}
END_TEST

/* --join: --id becomes optional; --initial-cluster is refused with it,
 * whichever source either comes from. */
START_TEST(test_start_join)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    bool help;
    char *path;

    ck_assert_int_eq(
        start_parse(ARGV("start", "--join", "10.0.0.1:2379,10.0.0.2:2379",
                         "--data-dir", "d", "--client-addr", "h:1",
                         "--peer-addr", "h:2"),
                    &o, &help, err),
        0);
    ck_assert_msg(err[0] == '\0', "%s", err);
    ck_assert_uint_eq(o.node_id, 0); /* placement gives one */
    ck_assert_uint_eq(o.n_join, 2);
    ck_assert_str_eq(o.join[0], "10.0.0.1:2379");
    ck_assert_str_eq(o.join[1], "10.0.0.2:2379");
    ck_assert_uint_eq(o.n_initial, 0);

    /* With --id too: the node asks for that id. */
    ck_assert_int_eq(
        start_parse(ARGV(BASE, "--join", "[::1]:2379"), &o, &help, err), 0);
    ck_assert_uint_eq(o.node_id, 2);
    ck_assert_uint_eq(o.n_join, 1);
    ck_assert_str_eq(o.join[0], "[::1]:2379");

    /* Without --join, --id is required and the message says why. */
    ck_assert_int_eq(
        start_parse(ARGV("start", "--data-dir", "d", "--client-addr", "h:1",
                         "--peer-addr", "h:2"),
                    &o, &help, err),
        BS_EINVAL);
    ck_assert_str_eq(err, "missing --id (or --join, to be given one)");

    /* Both flags. */
    ck_assert_int_eq(
        start_parse(ARGV(BASE, "--join", "h:1", "--initial-cluster", "2=h:2"),
                    &o, &help, err),
        BS_EINVAL);
    ck_assert_str_eq(err, "--join and --initial-cluster exclude each other: "
                          "--join adds this node to a running cluster, "
                          "--initial-cluster bootstraps a new one");
    /* One from the file, one from a flag, either way round. */
    path = write_tmp("initial-cluster: 2=h:2\n");
    ck_assert_int_eq(start_parse(ARGV(BASE, "--config", path, "--join", "h:1"),
                                 &o, &help, err),
                     BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--join and --initial-cluster"));
    unlink(path);
    path = write_tmp("join: [h:1, h:3]\n");
    ck_assert_int_eq(
        start_parse(ARGV(BASE, "--config", path, "--initial-cluster", "2=h:2"),
                    &o, &help, err),
        BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--join and --initial-cluster"));
    /* The file's join alone makes --id optional. */
    ck_assert_int_eq(
        start_parse(ARGV("start", "--config", path, "--data-dir", "d",
                         "--client-addr", "h:1", "--peer-addr", "h:2"),
                    &o, &help, err),
        0);
    ck_assert_uint_eq(o.n_join, 2);
    ck_assert_str_eq(o.join[1], "h:3");
    /* A flag replaces the file's list, it does not add to it. */
    ck_assert_int_eq(start_parse(ARGV(BASE, "--config", path, "--join", "h:9"),
                                 &o, &help, err),
                     0);
    ck_assert_uint_eq(o.n_join, 1);
    ck_assert_str_eq(o.join[0], "h:9");
    unlink(path);
}
END_TEST

/* node.c's list parsers, called directly: what they accept, and a list
 * refused leaves nothing half-parsed. */
START_TEST(test_node_parse_lists)
{
    char err[BS_NODE_ERRMSG_SIZE], list[BS_NODE_MAX_JOIN * 16 + 32];
    struct bs_node_opts o;
    size_t off = 0;

    bs_node_opts_init(&o);
    ck_assert_int_eq(bs_node_parse_join(&o, "a:1,b:2", err), 0);
    ck_assert_uint_eq(o.n_join, 2);
    ck_assert_int_eq(bs_node_parse_join(&o, "a:1,b", err), BS_EINVAL);
    ck_assert_str_eq(err, "--join: \"b\" is not HOST:PORT");
    ck_assert_uint_eq(o.n_join, 0);
    ck_assert_int_eq(bs_node_parse_join(&o, "a:1,,b:2", err), BS_EINVAL);
    ck_assert_str_eq(err, "--join: an empty address in \"a:1,,b:2\"");
    ck_assert_int_eq(bs_node_parse_join(&o, "a:1,", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_join(&o, ",a:1", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_join(&o, "a:1,a:1", err), BS_EINVAL);
    ck_assert_str_eq(err, "--join: \"a:1\" appears twice");
    ck_assert_int_eq(bs_node_parse_join(&o, "a:70000", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_join(&o, ":1", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_join(&o, "a b:1", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_join(&o, "", err), BS_EINVAL);
    for (int i = 0; i < BS_NODE_MAX_JOIN; i++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%sh%d:1",
                                i ? "," : "", i);
    ck_assert_int_eq(bs_node_parse_join(&o, list, err), 0);
    ck_assert_uint_eq(o.n_join, BS_NODE_MAX_JOIN);
    snprintf(list + off, sizeof(list) - off, ",one-more:1");
    ck_assert_int_eq(bs_node_parse_join(&o, list, err), BS_EINVAL);
    ck_assert_str_eq(err, "--join: more than 16 addresses");
    ck_assert_uint_eq(o.n_join, 0);

    ck_assert_int_eq(bs_node_parse_labels(&o, "rack=r1", err), 0);
    ck_assert_uint_eq(o.n_labels, 1);
    ck_assert_int_eq(bs_node_parse_labels(&o, "rack=r1,rack=r2", err),
                     BS_EINVAL);
    ck_assert_str_eq(err, "--labels: key \"rack\" appears twice");
    ck_assert_uint_eq(o.n_labels, 0);
    ck_assert_int_eq(bs_node_parse_labels(&o, "rack", err), BS_EINVAL);
    ck_assert_str_eq(err, "--labels: \"rack\" has no '=' (expected "
                          "KEY=VALUE)");
    ck_assert_int_eq(bs_node_parse_labels(&o, "=r1", err), BS_EINVAL);
    ck_assert_str_eq(err, "--labels: \"=r1\" has an empty key");
    ck_assert_int_eq(bs_node_parse_labels(&o, "rack=", err), BS_EINVAL);
    ck_assert_str_eq(err, "--labels: \"rack=\" has an empty value");
    ck_assert_int_eq(bs_node_parse_labels(&o, "rack=a=b", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_labels(&o, "rack=a b", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_labels(&o, "ra\tck=a", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_labels(&o, "a=1,,b=2", err), BS_EINVAL);
    ck_assert_int_eq(bs_node_parse_labels(&o, "", err), BS_EINVAL);
    /* The longest key (63 bytes) and value (127) fit, one more does not. */
    {
        char lab[256];

        memset(lab, 'k', 63);
        lab[63] = '=';
        memset(lab + 64, 'v', 127);
        lab[191] = '\0';
        ck_assert_int_eq(bs_node_parse_labels(&o, lab, err), 0);
        ck_assert_uint_eq(strlen(o.label_keys[0]), 63);
        ck_assert_uint_eq(strlen(o.label_values[0]), 127);
        lab[191] = 'v';
        lab[192] = '\0';
        ck_assert_int_eq(bs_node_parse_labels(&o, lab, err), BS_EINVAL);
        memmove(lab + 1, lab, 192);
        lab[0] = 'k';
        lab[64 + 127 + 1] = '\0'; /* a 64-byte key, 127-byte value */
        ck_assert_int_eq(bs_node_parse_labels(&o, lab, err), BS_EINVAL);
    }
    off = 0;
    for (int i = 0; i <= BS_NODE_MAX_LABELS; i++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%sk%d=v",
                                i ? "," : "", i);
    ck_assert_int_eq(bs_node_parse_labels(&o, list, err), BS_EINVAL);
    ck_assert_str_eq(err, "--labels: more than 16 labels");
    *strrchr(list, ',') = '\0'; /* exactly 16 */
    ck_assert_int_eq(bs_node_parse_labels(&o, list, err), 0);
    ck_assert_uint_eq(o.n_labels, BS_NODE_MAX_LABELS);
}
END_TEST

START_TEST(test_start_defaults_and_restart)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    bool help;

    /* No --initial-cluster: a restart; defaults for the rest. */
    ck_assert_int_eq(start_parse(ARGV(BASE), &o, &help, err), 0);
    ck_assert_uint_eq(o.n_initial, 0);
    ck_assert_str_eq(o.http_addr, "");
    ck_assert_uint_eq(o.initial_shards, BS_NODE_DEFAULT_INITIAL_SHARDS);
    ck_assert_int_eq(o.tick_ms, BS_NODE_DEFAULT_TICK_MS);
    ck_assert_int_eq(o.election_ticks, BS_NODE_DEFAULT_ELECTION_TICKS);
    ck_assert_uint_eq(o.log_max_entries, BS_NODE_DEFAULT_LOG_MAX);
    ck_assert(!o.lease_reads);

    ck_assert_int_eq(
        start_parse(ARGV(BASE, "--lease-reads=false"), &o, &help, err), 0);
    ck_assert(!o.lease_reads);
    /* An empty --http-addr means no HTTP port. */
    ck_assert_int_eq(start_parse(ARGV(BASE, "--http-addr="), &o, &help, err),
                     0);
    ck_assert_str_eq(o.http_addr, "");
}
END_TEST

START_TEST(test_start_help)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    bool help = false;

    /* --help needs none of the required flags. */
    ck_assert_int_eq(start_parse(ARGV("start", "--help"), &o, &help, err), 0);
    ck_assert(help);
    ck_assert_int_eq(start_parse(ARGV("start", "-h"), &o, &help, err), 0);
    ck_assert(help);
}
END_TEST

/* Each bad command line must fail with a message that starts with want. */
START_TEST(test_start_errors)
{
    static const struct {
        char *argv[24];
        const char *want;
    } cases[] = {
        {{"start", "--data-dir", "d", "--client-addr", "h:1", "--peer-addr",
          "h:2"},
         "missing --id"},
        {{"start", "--id", "1", "--client-addr", "h:1", "--peer-addr", "h:2"},
         "missing --data-dir"},
        {{"start", "--id", "1", "--data-dir", "d", "--peer-addr", "h:2"},
         "missing --client-addr"},
        {{"start", "--id", "1", "--data-dir", "d", "--client-addr", "h:1"},
         "missing --peer-addr"},
        {{BASE, "--id", "3"}, "flag --id given twice"},
        {{BASE, "--bogus"}, "unknown flag --bogus"},
        {{BASE, "extra"}, "unexpected argument 'extra'"},
        {{BASE, "--tick-ms"}, "flag --tick-ms needs a value"},
        {{"start", "--id", "0", "--data-dir", "d", "--client-addr", "h:1",
          "--peer-addr", "h:2"},
         "--id: '0' is not an integer in 1 .. 4294967295"},
        {{"start", "--id", "4294967296", "--data-dir", "d", "--client-addr",
          "h:1", "--peer-addr", "h:2"},
         "--id: "},
        {{"start", "--id", "1", "--data-dir", "", "--client-addr", "h:1",
          "--peer-addr", "h:2"},
         "--data-dir: must not be empty"},
        {{"start", "--id", "1", "--data-dir", "d", "--client-addr", "nohost",
          "--peer-addr", "h:2"},
         "--client-addr: "},
        {{"start", "--id", "1", "--data-dir", "d", "--client-addr", "h:1",
          "--peer-addr", "h:99999"},
         "--peer-addr: "},
        {{BASE, "--http-addr", "x"}, "--http-addr: "},
        {{BASE, "--tick-ms", "0"}, "--tick-ms: "},
        {{BASE, "--tick-ms", "abc"}, "--tick-ms: 'abc'"},
        {{BASE, "--election-ticks", "2"}, "--election-ticks: "},
        {{BASE, "--initial-shards", "0"}, "--initial-shards: "},
        {{BASE, "--log-max-entries", "9"}, "--log-max-entries: "},
        {{BASE, "--lease-reads=maybe"}, "--lease-reads: "},
        {{BASE, "--initial-cluster", "1=h:1,1=h:2"}, "--initial-cluster: "},
        {{BASE, "--initial-cluster", "x=h:1"}, "--initial-cluster: "},
        {{BASE, "--initial-cluster", ""}, "--initial-cluster: "},
        {{BASE, "--config", "/nonexistent/basalt.yaml"},
         "--config: cannot open /nonexistent/basalt.yaml"},
        /* issue 5: every new flag names itself, with the reason. */
        {{BASE, "--heartbeat-ms", "9"},
         "--heartbeat-ms: '9' is not an integer in 10 .. 60000"},
        {{BASE, "--heartbeat-ms", "60001"}, "--heartbeat-ms: "},
        {{BASE, "--down-after-ms", "abc"},
         "--down-after-ms: 'abc' is not an integer in 100 .. 86400000"},
        {{BASE, "--down-after-ms", "99"}, "--down-after-ms: "},
        {{BASE, "--max-lag-entries", "0"},
         "--max-lag-entries: '0' is not an "
         "integer in 1 .. "},
        {{BASE, "--max-lag-ms", "0"}, "--max-lag-ms: "},
        {{BASE, "--max-lag-ms", "86400001"}, "--max-lag-ms: "},
        {{BASE, "--min-insync-replicas", "0"},
         "--min-insync-replicas: '0' is not an integer in 1 .. 16"},
        {{BASE, "--min-insync-replicas", "17"}, "--min-insync-replicas: "},
        {{BASE, "--max-concurrent-moves", "0"},
         "--max-concurrent-moves: '0' is not an integer in 1 .. 1000"},
        {{BASE, "--split-size", "1X"},
         "--split-size: '1X' is not a size in 1024 .. 1125899906842624 "
         "bytes"},
        {{BASE, "--split-size", "1023"}, "--split-size: '1023' is not a size"},
        {{BASE, "--split-size", "0"}, "--split-size: '0' is not a size"},
        {{BASE, "--split-size", "1.5G"}, "--split-size: "},
        {{BASE, "--split-qps", "-1"}, "--split-qps: '-1' is not an integer"},
        {{BASE, "--split-qps", "1K"}, "--split-qps: "},
        {{BASE, "--snapshot-rate", "fast"},
         "--snapshot-rate: 'fast' is not a size in 0 .. "},
        {{BASE, "--snapshot-rate", "2000000G"}, "--snapshot-rate: "},
        {{BASE, "--op-timeout-ms", "999"},
         "--op-timeout-ms: '999' is not an integer in 1000 .. 86400000"},
        {{BASE, "--join", ""}, "--join: must not be empty (HOST:PORT,...)"},
        {{BASE, "--join", "h"}, "--join: \"h\" is not HOST:PORT"},
        {{BASE, "--join", "h:1,,h:2"}, "--join: an empty address in"},
        {{BASE, "--join", "h:1,h:1"}, "--join: \"h:1\" appears twice"},
        {{BASE, "--join", "::1:2379"},
         "--join: '::1:2379': put an IPv6 host in brackets"},
        {{BASE, "--labels", ""}, "--labels: must not be empty"},
        {{BASE, "--labels", "rack"}, "--labels: \"rack\" has no '='"},
        {{BASE, "--labels", "rack=r1,rack=r2"},
         "--labels: key \"rack\" appears twice"},
        {{BASE, "--labels", "rack="},
         "--labels: \"rack=\" has an empty "
         "value"},
        {{BASE, "--join", "h:1", "--initial-cluster", "2=h:2"},
         "--join and --initial-cluster exclude each other"},
    };
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    bool help;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char **argv = (char **)cases[i].argv;
        int rc = start_parse(argv, &o, &help, err);

        ck_assert_msg(rc == BS_EINVAL, "case %zu accepted", i);
        ck_assert_msg(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0,
                      "case %zu: got \"%s\", want \"%s...\"", i, err,
                      cases[i].want);
    }
    /* node.c's own message names the flag too: it is not repeated. */
    ck_assert_int_eq(start_parse(ARGV(BASE, "--initial-cluster", "1=h:1,1=h:2"),
                                 &o, &help, err),
                     BS_EINVAL);
    ck_assert_ptr_null(strstr(err + 1, "--initial-cluster"));
    ck_assert_int_eq(start_parse(ARGV(BASE, "--join", "h:1,x"), &o, &help, err),
                     BS_EINVAL);
    ck_assert_ptr_null(strstr(err + 1, "--join"));
    ck_assert_int_eq(
        start_parse(ARGV(BASE, "--labels", "a=1,b"), &o, &help, err),
        BS_EINVAL);
    ck_assert_ptr_null(strstr(err + 1, "--labels"));
}
END_TEST

/* ---------------------------------------------------------------- YAML */

START_TEST(test_config_file_and_override)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    bool help;
    char *path = write_tmp("# a node\n"
                           "id: 3\n"
                           "data-dir: /var/lib/basalt\n"
                           "client-addr: 10.0.0.3:2379\n"
                           "peer-addr: \"10.0.0.3:2380\"\n"
                           "http-addr: 10.0.0.3:8080\n"
                           "initial-cluster: 1=10.0.0.1:2380,"
                           "2=10.0.0.2:2380,3=10.0.0.3:2380\n"
                           "initial-shards: 16\n"
                           "tick-ms: 20\n"
                           "election-ticks: 15\n"
                           "log-max-entries: 1000\n"
                           "lease-reads: true\n");

    /* The file alone supplies every required setting. */
    ck_assert_int_eq(
        start_parse(ARGV("start", "--config", path), &o, &help, err), 0);
    ck_assert_uint_eq(o.node_id, 3);
    ck_assert_str_eq(o.data_dir, "/var/lib/basalt");
    ck_assert_str_eq(o.peer_addr, "10.0.0.3:2380");
    ck_assert_str_eq(o.http_addr, "10.0.0.3:8080");
    ck_assert_uint_eq(o.n_initial, 3);
    ck_assert_uint_eq(o.initial_shards, 16);
    ck_assert_int_eq(o.tick_ms, 20);
    ck_assert_int_eq(o.election_ticks, 15);
    ck_assert_uint_eq(o.log_max_entries, 1000);
    ck_assert(o.lease_reads);

    /* Flags win, before or after --config. */
    ck_assert_int_eq(start_parse(ARGV("start", "--tick-ms", "30", "--config",
                                      path, "--initial-cluster",
                                      "3=10.0.0.3:2380", "--lease-reads=no"),
                                 &o, &help, err),
                     0);
    ck_assert_int_eq(o.tick_ms, 30);
    ck_assert_uint_eq(o.n_initial, 1);
    ck_assert(!o.lease_reads);
    ck_assert_int_eq(o.election_ticks, 15); /* still the file's */
    unlink(path);
}
END_TEST

/* Every key of issue 5 in a file, as the flags spell them. */
START_TEST(test_config_issue5_keys)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    uint64_t set;
    static const char doc[] = "join: 10.0.0.1:2379,10.0.0.2:2379\n"
                              "labels: rack=r2,disk=ssd\n"
                              "heartbeat-ms: 250\n"
                              "down-after-ms: 9000\n"
                              "max-lag-entries: 123\n"
                              "max-lag-ms: 4567\n"
                              "min-insync-replicas: 3\n"
                              "max-concurrent-moves: 7\n"
                              "split-size: 1G\n"
                              "split-qps: 300\n"
                              "snapshot-rate: 512K\n"
                              "op-timeout-ms: 60000\n";
    static const char maps[] = "labels:\n"
                               "  rack: r3\n"
                               "  zone: \"z1\"\n"
                               "join:\n"
                               "  - 10.0.0.5:2379\n"
                               "  - 10.0.0.6:2379\n";

    bs_node_opts_init(&o);
    ck_assert_int_eq(bs_cli_config_parse("c.yaml", (const uint8_t *)doc,
                                         strlen(doc), &o, &set, err),
                     0);
    ck_assert_uint_eq(o.n_join, 2);
    ck_assert_str_eq(o.join[1], "10.0.0.2:2379");
    ck_assert_uint_eq(o.n_labels, 2);
    ck_assert_str_eq(o.label_keys[1], "disk");
    ck_assert_str_eq(o.label_values[1], "ssd");
    ck_assert_uint_eq(o.heartbeat_ms, 250);
    ck_assert_uint_eq(o.down_after_ms, 9000);
    ck_assert_uint_eq(o.max_lag_entries, 123);
    ck_assert_uint_eq(o.max_lag_ms, 4567);
    ck_assert_uint_eq(o.min_insync_replicas, 3);
    ck_assert_uint_eq(o.max_concurrent_moves, 7);
    ck_assert_uint_eq(o.split_size, 1ULL << 30);
    ck_assert_uint_eq(o.split_qps, 300);
    ck_assert_uint_eq(o.snapshot_rate, 512ULL << 10);
    ck_assert_uint_eq(o.op_timeout_ms, 60000);
    ck_assert_int_eq(__builtin_popcountll(set), 12);

    /* labels as a mapping, join as a sequence. */
    bs_node_opts_init(&o);
    ck_assert_int_eq(bs_cli_config_parse("c.yaml", (const uint8_t *)maps,
                                         strlen(maps), &o, &set, err),
                     0);
    ck_assert_uint_eq(o.n_labels, 2);
    ck_assert_str_eq(o.label_keys[0], "rack");
    ck_assert_str_eq(o.label_values[0], "r3");
    ck_assert_str_eq(o.label_values[1], "z1");
    ck_assert_uint_eq(o.n_join, 2);
    ck_assert_str_eq(o.join[0], "10.0.0.5:2379");
}
END_TEST

START_TEST(test_config_members_mapping)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;
    uint64_t set;
    static const char doc[] = "initial-cluster:\n"
                              "  1: 127.0.0.1:2380\n"
                              "  2: 127.0.0.1:2480\n"
                              "  7: \"127.0.0.1:2580\"\n";

    bs_node_opts_init(&o);
    ck_assert_int_eq(bs_cli_config_parse("c.yaml", (const uint8_t *)doc,
                                         strlen(doc), &o, &set, err),
                     0);
    ck_assert_uint_eq(o.n_initial, 3);
    ck_assert_uint_eq(o.initial[0].id, 1);
    ck_assert_str_eq(o.initial[0].peer_addr, "127.0.0.1:2380");
    ck_assert_uint_eq(o.initial[2].id, 7);
    ck_assert_str_eq(o.initial[2].peer_addr, "127.0.0.1:2580");
    ck_assert_uint_ne(set, 0);
}
END_TEST

/* Each bad document fails with exactly this message (file c.yaml). */
START_TEST(test_config_errors)
{
    static const struct {
        const char *doc;
        const char *want;
    } cases[] = {
        {"id: 1\ntick-ms: 10\nbogus: 3\n", "c.yaml:3: unknown key 'bogus'"},
        {"id: 1\nid: 2\n", "c.yaml:2: key 'id' given twice"},
        {"id: 1\ntick-ms: 0\n",
         "c.yaml:2: tick-ms: '0' is not an integer in 1 .. 10000"},
        {"\n\nlease-reads: perhaps\n",
         "c.yaml:3: lease-reads: 'perhaps' is not a boolean (true or false)"},
        {"client-addr: nohost\n", "c.yaml:1: client-addr: 'nohost' is not "
                                  "HOST:PORT"},
        {"- id\n- 1\n", "c.yaml:1: expected a mapping of settings (key: "
                        "value)"},
        {"id: [1, 2]\n", "c.yaml:1: id: expected a single value"},
        {"config: other.yaml\n", "c.yaml:1: unknown key 'config'"},
        {"help: true\n", "c.yaml:1: unknown key 'help'"},
        {"initial-cluster:\n  1: [a]\n",
         "c.yaml:2: initial-cluster: each member must be ID: HOST:PORT"},
        {"initial-cluster:\n  x: h:1\n", "c.yaml:2: initial-cluster: \"x\" "
                                         "is not a node id (1 .. "
                                         "4294967295)"},
        {"initial-cluster:\n  1: h:1,2=h:2\n",
         "c.yaml:2: initial-cluster: bad member '1'"},
        {"split-size: 10X\n",
         "c.yaml:1: split-size: '10X' is not a size in 1024 .. "
         "1125899906842624 bytes (a number, or with a suffix K, M or G: "
         "KiB, MiB, GiB)"},
        {"heartbeat-ms: 1\n",
         "c.yaml:1: heartbeat-ms: '1' is not an integer in 10 .. 60000"},
        {"labels:\n  rack: [a]\n",
         "c.yaml:2: labels: each label must be KEY: VALUE"},
        {"labels:\n  rack: r1\n  rack: r2\n",
         "c.yaml:2: labels: key \"rack\" appears twice"},
        {"labels: rack\n",
         "c.yaml:1: labels: \"rack\" has no '=' (expected KEY=VALUE)"},
        {"join:\n  - [a]\n", "c.yaml:2: join: each address must be "
                             "HOST:PORT"},
        {"join:\n  - h:1,h:2\n", "c.yaml:2: join: bad address 'h:1,h:2'"},
        {"join:\n  - nohost\n", "c.yaml:2: join: \"nohost\" is not HOST:PORT"},
        {"join: []\n", "c.yaml:1: join: must not be empty (HOST:PORT,...)"},
        {"join: {a: b}\n", "c.yaml:1: join: expected a single value"},
        {"min-insync-replicas: 0\n",
         "c.yaml:1: min-insync-replicas: '0' is not an integer in 1 .. 16"},
    };
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bs_node_opts_init(&o);
        err[0] = '\0';
        ck_assert_int_eq(
            bs_cli_config_parse("c.yaml", (const uint8_t *)cases[i].doc,
                                strlen(cases[i].doc), &o, NULL, err),
            BS_EINVAL);
        ck_assert_msg(strcmp(err, cases[i].want) == 0,
                      "case %zu: got \"%s\", want \"%s\"", i, err,
                      cases[i].want);
    }
    /* Not YAML at all: the line of the problem. */
    {
        static const char doc[] = "id: 1\nkey: \"unterminated\n";

        ck_assert_int_eq(bs_cli_config_parse("c.yaml", (const uint8_t *)doc,
                                             strlen(doc), &o, NULL, err),
                         BS_EINVAL);
        ck_assert_msg(strncmp(err, "c.yaml:", 7) == 0 &&
                          strstr(err, "not valid YAML") != NULL,
                      "%s", err);
    }
}
END_TEST

START_TEST(test_config_empty_and_file_errors)
{
    char err[BS_CLI_ERRMSG_SIZE];
    struct bs_node_opts o, def;
    uint64_t set = 99;
    bool help;
    char *path;

    bs_node_opts_init(&o);
    bs_node_opts_init(&def);
    ck_assert_int_eq(
        bs_cli_config_parse("c.yaml", (const uint8_t *)"", 0, &o, &set, err),
        0);
    ck_assert_uint_eq(set, 0);
    ck_assert_int_eq(memcmp(&o, &def, sizeof(o)), 0);
    ck_assert_int_eq(bs_cli_config_parse("c.yaml",
                                         (const uint8_t *)"# nothing\n", 10, &o,
                                         &set, err),
                     0);

    /* An error in the file is reported with its path and line through
     * `basalt start --config`. */
    path = write_tmp("id: 1\ndata-dir: d\nelection-ticks: many\n");
    ck_assert_int_eq(start_parse(ARGV(BASE, "--config", path), &o, &help, err),
                     BS_EINVAL);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0 &&
                      strncmp(err + strlen(path), ":3: election-ticks: ", 20) ==
                          0,
                  "%s", err);
    unlink(path);

    /* The file does not make a missing flag optional when it lacks it. */
    path = write_tmp("id: 1\n");
    ck_assert_int_eq(
        start_parse(ARGV("start", "--config", path), &o, &help, err),
        BS_EINVAL);
    ck_assert_str_eq(err, "missing --data-dir");
    unlink(path);
}
END_TEST

/* ------------------------------------------------------- byte strings */

START_TEST(test_prefix_end)
{
    uint8_t out[8];
    size_t n;

    n = bs_cli_prefix_end((const uint8_t *)"abc", 3, out);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(out, "abd", 3), 0);
    n = bs_cli_prefix_end((const uint8_t *)"a\xff\xff", 3, out);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 'b');
    n = bs_cli_prefix_end((const uint8_t *)"a\xfe", 2, out);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(out[1], 0xff);
    n = bs_cli_prefix_end((const uint8_t *)"\xff\xff", 2, out);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 0);
    n = bs_cli_prefix_end((const uint8_t *)"", 0, out);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(test_is_text)
{
    static const char *const text[] = {
        "",
        "hello world",
        "h\xc3\xa9llo",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "~!@#$%^&*()",
    };
    static const struct {
        const char *b;
        size_t len;
    } bin[] = {
        {"\x00", 1},         {"a\x01", 2},
        {"\x7f", 1},         {"tab\t", 4},
        {"nl\n", 3},         {"\xc3", 1},
        {"\xc0\xaf", 2},     {"\xe0\x80\xaf", 3},
        {"\xed\xa0\x80", 3}, {"\xf4\x90\x80\x80", 4},
        {"\xc2\x85", 2},     {"\xff", 1},
        {"\x80", 1},         {"\xe2\x82", 2},
    };

    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        ck_assert_msg(bs_cli_is_text((const uint8_t *)text[i], strlen(text[i])),
                      "text case %zu", i);
    for (size_t i = 0; i < sizeof(bin) / sizeof(bin[0]); i++)
        ck_assert_msg(!bs_cli_is_text((const uint8_t *)bin[i].b, bin[i].len),
                      "binary case %zu", i);
}
END_TEST

START_TEST(test_bytes_str)
{
    char *s;

    s = bs_cli_bytes_str((const uint8_t *)"hello", 5);
    ck_assert_str_eq(s, "hello");
    free(s);
    s = bs_cli_bytes_str((const uint8_t *)"\x00\xff\x10", 3);
    ck_assert_str_eq(s, "0x00ff10");
    free(s);
    s = bs_cli_bytes_str(NULL, 0);
    ck_assert_str_eq(s, "");
    free(s);
    s = bs_cli_hex((const uint8_t *)"\xab\x01", 2);
    ck_assert_str_eq(s, "ab01");
    free(s);
}
END_TEST

static Suite *opts_suite(void)
{
    Suite *s = suite_create("cli_opts");
    TCase *tc = tcase_create("walk");

    tcase_add_test(tc, test_walk_forms);
    tcase_add_test(tc, test_walk_positional_escapes);
    tcase_add_test(tc, test_walk_optional_value);
    tcase_add_test(tc, test_walk_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, test_parse_uint);
    tcase_add_test(tc, test_parse_size);
    tcase_add_test(tc, test_parse_bool);
    tcase_add_test(tc, test_check_addr);
    suite_add_tcase(s, tc);

    tc = tcase_create("start");
    tcase_add_test(tc, test_start_flags);
    tcase_add_test(tc, test_start_flags_issue5);
    tcase_add_test(tc, test_start_join);
    tcase_add_test(tc, test_node_parse_lists);
    tcase_add_test(tc, test_start_defaults_and_restart);
    tcase_add_test(tc, test_start_help);
    tcase_add_test(tc, test_start_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("yaml");
    tcase_add_test(tc, test_config_file_and_override);
    tcase_add_test(tc, test_config_issue5_keys);
    tcase_add_test(tc, test_config_members_mapping);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_config_empty_and_file_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("bytes");
    tcase_add_test(tc, test_prefix_end);
    tcase_add_test(tc, test_is_text);
    tcase_add_test(tc, test_bytes_str);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(opts_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
