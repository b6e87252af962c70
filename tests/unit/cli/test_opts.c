/*
 * test_opts.c - unit tests of cli/opts.c: the flag walker (long and short
 * forms, inline values, "--", unknown, duplicate and valueless flags),
 * the value parsers (integers at their bounds and beyond, booleans,
 * HOST:PORT), `basalt start`'s options from flags, from a YAML file and
 * from both (flags win; errors name the flag, or the file, line and key),
 * and the byte-string helpers the clients print with (prefix range end,
 * text-or-hex).
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
    tcase_add_test(tc, test_parse_bool);
    tcase_add_test(tc, test_check_addr);
    suite_add_tcase(s, tc);

    tc = tcase_create("start");
    tcase_add_test(tc, test_start_flags);
    tcase_add_test(tc, test_start_defaults_and_restart);
    tcase_add_test(tc, test_start_help);
    tcase_add_test(tc, test_start_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("yaml");
    tcase_add_test(tc, test_config_file_and_override);
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
