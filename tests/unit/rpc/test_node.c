/*
 * test_node.c - unit tests of the parts of a node that run without one:
 * rpc/node.c's options (bs_node_parse_members, bs_node_opts_check) and
 * rpc/fwd_codec.c, the ForwardBatch / ForwardReplies messages of the
 * Forward stream (node_int.h).
 *
 * Options: good member lists parse into o->initial; every refusal is
 * BS_EINVAL with a sentence naming the problem; bs_node_opts_check passes
 * the defaults plus the required fields and the bounds of every range,
 * and refuses each bad field naming its flag.
 *
 * Codec: batches and replies round-trip (0, 1, 1000 and BS_FWD_MAX_ITEMS
 * elements; empty and non-empty byte strings; negative codes; every
 * status); decoding borrows pointers inside the buffer; malformed input
 * (ids of 0, positive codes, unknown statuses, truncations, byte fields
 * of the wrong wire type, random bytes and mutations of valid encodings)
 * is BS_EPROTO or BS_ETOOBIG, never a crash or a pointer outside the
 * buffer; and the bytes are the schema's, checked with protoc's own
 * decoder and encoder over rpc/proto (BS_RPC_PROTOC, BS_RPC_PROTO_DIR,
 * set by meson).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node.h"
#include "node_int.h"
#include "protoc_util.h"

/* ------------------------------------------------------------ helpers */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

/* Whether [p, p + n) lies inside [buf, buf + len). */
static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *b = p;

    return n == 0 || (b != NULL && b >= buf && b + n <= buf + len);
}

/* Asserts that errmsg contains every word of the NULL-terminated list. */
static void assert_has(const char *errmsg, const char *const *words)
{
    for (; *words != NULL; words++)
        ck_assert_msg(strstr(errmsg, *words) != NULL,
                      "errmsg \"%s\" lacks \"%s\"", errmsg, *words);
}

/* Protobuf writer for hand-made (and malformed) messages. */
struct w {
    uint8_t b[512];
    size_t n;
};

static void w_byte(struct w *w, uint8_t c)
{
    ck_assert_uint_lt(w->n, sizeof w->b);
    w->b[w->n++] = c;
}

static void w_varint(struct w *w, uint64_t v)
{
    while (v >= 0x80) {
        w_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    w_byte(w, (uint8_t)v);
}

static void w_tag(struct w *w, unsigned field, unsigned wire_type)
{
    w_varint(w, (uint64_t)field << 3 | wire_type);
}

static void w_bytes(struct w *w, unsigned field, const void *p, size_t n)
{
    w_tag(w, field, 2);
    w_varint(w, n);
    for (size_t i = 0; i < n; i++)
        w_byte(w, ((const uint8_t *)p)[i]);
}

static void w_uint(struct w *w, unsigned field, uint64_t v)
{
    w_tag(w, field, 0);
    w_varint(w, v);
}

/* ------------------------------------------------- members: accepted */

START_TEST(test_members_good)
{
    struct bs_node_opts o;
    char err[BS_NODE_ERRMSG_SIZE];
    char s[BS_NODE_MAX_INITIAL * 32];
    char addr[BS_NODE_ADDR_MAX + 1];
    size_t n = 0;

    bs_node_opts_init(&o);
    ck_assert_int_eq(bs_node_parse_members(&o, "1=127.0.0.1:2380", err), 0);
    ck_assert_uint_eq(o.n_initial, 1);
    ck_assert_uint_eq(o.initial[0].id, 1);
    ck_assert_str_eq(o.initial[0].peer_addr, "127.0.0.1:2380");

    ck_assert_int_eq(
        bs_node_parse_members(&o, "1=a:1,2=b.example.com:2,3=c:65535", err), 0);
    ck_assert_uint_eq(o.n_initial, 3);
    ck_assert_uint_eq(o.initial[0].id, 1);
    ck_assert_str_eq(o.initial[0].peer_addr, "a:1");
    ck_assert_uint_eq(o.initial[1].id, 2);
    ck_assert_str_eq(o.initial[1].peer_addr, "b.example.com:2");
    ck_assert_uint_eq(o.initial[2].id, 3);
    ck_assert_str_eq(o.initial[2].peer_addr, "c:65535");

    /* The largest id, IPv6, and a parse that replaces the previous list. */
    ck_assert_int_eq(
        bs_node_parse_members(&o, "4294967295=[::1]:2380,7=[fe80::1]:1", err),
        0);
    ck_assert_uint_eq(o.n_initial, 2);
    ck_assert_uint_eq(o.initial[0].id, 4294967295u);
    ck_assert_str_eq(o.initial[0].peer_addr, "[::1]:2380");
    ck_assert_uint_eq(o.initial[1].id, 7);
    ck_assert_str_eq(o.initial[1].peer_addr, "[fe80::1]:1");

    /* Exactly BS_NODE_MAX_INITIAL members, ids in any order. */
    s[0] = '\0';
    for (int i = BS_NODE_MAX_INITIAL; i >= 1; i--)
        n += (size_t)snprintf(s + n, sizeof s - n, "%s%d=h%d:%d", n ? "," : "",
                              i, i, 1000 + i);
    ck_assert_int_eq(bs_node_parse_members(&o, s, err), 0);
    ck_assert_uint_eq(o.n_initial, BS_NODE_MAX_INITIAL);
    ck_assert_uint_eq(o.initial[0].id, BS_NODE_MAX_INITIAL);
    ck_assert_str_eq(o.initial[BS_NODE_MAX_INITIAL - 1].peer_addr, "h1:1001");

    /* An address of BS_NODE_ADDR_MAX bytes fits. */
    memset(addr, 'h', sizeof addr);
    memcpy(addr + BS_NODE_ADDR_MAX - 5, ":2380", 5);
    addr[BS_NODE_ADDR_MAX] = '\0';
    snprintf(s, sizeof s, "9=%s", addr);
    ck_assert_int_eq(bs_node_parse_members(&o, s, err), 0);
    ck_assert_uint_eq(o.n_initial, 1);
    ck_assert_str_eq(o.initial[0].peer_addr, addr);
}
END_TEST

/* ------------------------------------------------- members: refused */

struct members_bad {
    const char *s;
    const char *words[4]; /* all in errmsg; NULL-terminated */
};

static const struct members_bad members_bad[] = {
    {"1-127.0.0.1:2380", {"no '='", "1-127.0.0.1:2380", NULL}},
    {"1=a:1,2b:2", {"no '='", "\"2b:2\"", NULL}},
    {"0=a:1", {"\"0\"", "not a node id", "1 .. 4294967295", NULL}},
    {"4294967296=a:1", {"\"4294967296\"", "not a node id", NULL}},
    {"18446744073709551616=a:1", {"not a node id", NULL}},
    {"123456789012345678901234=a:1", {"not a node id", NULL}},
    {"x=a:1", {"\"x\"", "not a node id", NULL}},
    {"1x=a:1", {"\"1x\"", "not a node id", NULL}},
    {"-1=a:1", {"\"-1\"", "not a node id", NULL}},
    {" 1=a:1", {"not a node id", NULL}},
    {"=a:1", {"\"\"", "not a node id", NULL}},
    {"1=a:1,2=b:2,1=c:3", {"node id 1", "appears twice", NULL}},
    {"1=", {"node 1", "empty address", NULL}},
    {"1=a:1,2=", {"node 2", "empty address", NULL}},
    {"1=,2=b:2", {"node 1", "empty address", NULL}},
    {"1=a:1,", {"ends with ','", NULL}},
    {"1=a:1,,2=b:2", {"no '='", NULL}},
    {",", {"no '='", NULL}},
    {"", {"--initial-cluster", "empty", NULL}},
};

START_TEST(test_members_refused)
{
    const struct members_bad *c = &members_bad[_i];
    struct bs_node_opts o;
    char err[BS_NODE_ERRMSG_SIZE] = "";

    bs_node_opts_init(&o);
    ck_assert_msg(bs_node_parse_members(&o, c->s, err) == BS_EINVAL,
                  "\"%s\" accepted", c->s);
    ck_assert_msg(strstr(err, "--initial-cluster") != NULL,
                  "errmsg \"%s\" does not name the flag", err);
    assert_has(err, c->words);
}
END_TEST

START_TEST(test_members_limits)
{
    static const char *const more[] = {"more than 16", NULL};
    static const char *const long_addr[] = {"node 9", "too long", NULL};
    static const char *const empty[] = {"empty", NULL};
    struct bs_node_opts o;
    char err[BS_NODE_ERRMSG_SIZE] = "";
    char s[BS_NODE_MAX_INITIAL * 40 + BS_NODE_ADDR_MAX];
    size_t n = 0;

    /* BS_NODE_MAX_INITIAL + 1 members. */
    bs_node_opts_init(&o);
    for (int i = 1; i <= BS_NODE_MAX_INITIAL + 1; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "%s%d=h%d:%d", n ? "," : "",
                              i, i, 2000 + i);
    ck_assert_int_eq(bs_node_parse_members(&o, s, err), BS_EINVAL);
    assert_has(err, more);

    /* An address one byte beyond BS_NODE_ADDR_MAX. */
    memcpy(s, "9=", 2);
    memset(s + 2, 'h', BS_NODE_ADDR_MAX + 1);
    memcpy(s + 2 + BS_NODE_ADDR_MAX + 1 - 5, ":2380", 5);
    s[2 + BS_NODE_ADDR_MAX + 1] = '\0';
    ck_assert_int_eq(bs_node_parse_members(&o, s, err), BS_EINVAL);
    assert_has(err, long_addr);

    /* NULL is the empty list. */
    ck_assert_int_eq(bs_node_parse_members(&o, NULL, err), BS_EINVAL);
    assert_has(err, empty);
    ck_assert_uint_eq(o.n_initial, 0);
}
END_TEST

/* --------------------------------------------------- opts: accepted */

static void good_opts(struct bs_node_opts *o)
{
    bs_node_opts_init(o);
    o->node_id = 1;
    snprintf(o->data_dir, sizeof o->data_dir, "/var/lib/basalt");
    snprintf(o->client_addr, sizeof o->client_addr, "127.0.0.1:2379");
    snprintf(o->peer_addr, sizeof o->peer_addr, "127.0.0.1:2380");
}

START_TEST(test_opts_defaults)
{
    struct bs_node_opts o;
    char err[BS_NODE_ERRMSG_SIZE] = "";

    bs_node_opts_init(&o);
    ck_assert_uint_eq(o.node_id, 0);
    ck_assert_str_eq(o.data_dir, "");
    ck_assert_str_eq(o.client_addr, "");
    ck_assert_str_eq(o.peer_addr, "");
    ck_assert_str_eq(o.http_addr, "");
    ck_assert_uint_eq(o.n_initial, 0);
    ck_assert_uint_eq(o.initial_shards, BS_NODE_DEFAULT_INITIAL_SHARDS);
    ck_assert_int_eq(o.tick_ms, BS_NODE_DEFAULT_TICK_MS);
    ck_assert_int_eq(o.election_ticks, BS_NODE_DEFAULT_ELECTION_TICKS);
    ck_assert_uint_eq(o.log_max_entries, BS_NODE_DEFAULT_LOG_MAX);
    ck_assert(!o.lease_reads);
    /* The defaults alone lack the required fields. */
    ck_assert_int_eq(bs_node_opts_check(&o, err), BS_EINVAL);

    good_opts(&o);
    ck_assert_msg(bs_node_opts_check(&o, err) == 0, "%s", err);
}
END_TEST

/* Each case changes one field of good_opts() to a value at a bound. */
START_TEST(test_opts_bounds)
{
    struct bs_node_opts o;
    char err[BS_NODE_ERRMSG_SIZE] = "";

    for (int c = 0; c < 17; c++) {
        good_opts(&o);
        switch (c) {
        case 0:
            o.node_id = UINT32_MAX;
            break;
        case 1:
            snprintf(o.http_addr, sizeof o.http_addr, "0.0.0.0:8080");
            break;
        case 2:
            snprintf(o.client_addr, sizeof o.client_addr, "[::1]:0");
            snprintf(o.peer_addr, sizeof o.peer_addr, "[::]:65535");
            snprintf(o.http_addr, sizeof o.http_addr, "[::1]:9090");
            break;
        case 3:
            snprintf(o.client_addr, sizeof o.client_addr, "localhost:2379");
            break;
        case 4:
            o.initial_shards = 1;
            break;
        case 5:
            o.initial_shards = BS_PD_MAX_INITIAL_SHARDS;
            break;
        case 6:
            o.tick_ms = 1;
            break;
        case 7:
            o.tick_ms = 10000;
            break;
        case 8:
            o.election_ticks = 3;
            break;
        case 9:
            o.election_ticks = 1000;
            break;
        case 10:
            o.log_max_entries = 10;
            break;
        case 11:
            o.log_max_entries = UINT64_MAX;
            break;
        case 12:
            ck_assert_int_eq(bs_node_parse_members(
                                 &o, "1=127.0.0.1:2380,2=h:2,3=[::1]:3", err),
                             0);
            break;
        case 13:
            o.lease_reads = true;
            break;
        case 14:
            snprintf(o.data_dir, sizeof o.data_dir, "relative/dir");
            break;
        case 15:
            o.node_id = 4242;
            break;
        default:
            memset(o.data_dir, 'd', BS_NODE_PATH_MAX);
            o.data_dir[BS_NODE_PATH_MAX] = '\0';
            break;
        }
        ck_assert_msg(bs_node_opts_check(&o, err) == 0, "case %d: %s", c, err);
    }
}
END_TEST

/* ---------------------------------------------------- opts: refused */

struct opts_bad {
    const char *flag;   /* in errmsg */
    const char *detail; /* also in errmsg, or NULL */
};

static const struct opts_bad opts_bad[] = {
    {"--id", "1 .. 4294967295"},          /* 0: id 0 */
    {"--id", NULL},                       /* 1: id 2^32 */
    {"--id", NULL},                       /* 2: id UINT64_MAX */
    {"--data-dir", "required"},           /* 3: empty */
    {"--client-addr", "HOST:PORT"},       /* 4: empty */
    {"--client-addr", "\"localhost\""},   /* 5: no port */
    {"--client-addr", "\":2379\""},       /* 6: no host */
    {"--client-addr", "\"h:\""},          /* 7: empty port */
    {"--client-addr", "\"h:65536\""},     /* 8: port too large */
    {"--client-addr", "\"h:12x\""},       /* 9: port not a number */
    {"--peer-addr", "HOST:PORT"},         /* 10: empty */
    {"--peer-addr", "\"h:-1\""},          /* 11: negative port */
    {"--peer-addr", "\"h:99999999999\""}, /* 12: port far too large */
    {"--http-addr", "\"8080\""},          /* 13: no host */
    {"--http-addr", "\"h:70000\""},       /* 14: port too large */
    {"--initial-shards", "1 .. 65536"},   /* 15: 0 */
    {"--initial-shards", NULL},           /* 16: 65537 */
    {"--initial-shards", NULL},           /* 17: UINT32_MAX */
    {"--tick-ms", "1 .. 10000"},          /* 18: 0 */
    {"--tick-ms", NULL},                  /* 19: -1 */
    {"--tick-ms", NULL},                  /* 20: 10001 */
    {"--election-ticks", "3 .. 1000"},    /* 21: 2 */
    {"--election-ticks", NULL},           /* 22: 1001 */
    {"--election-ticks", NULL},           /* 23: -5 */
    {"--log-max-entries", "at least 10"}, /* 24: 9 */
    {"--log-max-entries", NULL},          /* 25: 0 */
    {"--initial-cluster", "\"noport\""},  /* 26: member without port */
    {"--initial-cluster", "node 3"},      /* 27: second member bad */
    {"--down-after-ms", "three heartbeats"}, /* 28: down 3000, hb 1000 */
    {"--down-after-ms", "--heartbeat-ms 10000"}, /* 29: default down */
    {"--max-lag-ms", "shorter than a heartbeat"}, /* 30 */
    {"--join and --initial-cluster", NULL}, /* 31: both */
};

START_TEST(test_opts_refused)
{
    const struct opts_bad *c = &opts_bad[_i];
    struct bs_node_opts o;
    char err[BS_NODE_ERRMSG_SIZE] = "";

    good_opts(&o);
    switch (_i) {
    case 0:
        o.node_id = 0;
        break;
    case 1:
        o.node_id = (uint64_t)UINT32_MAX + 1;
        break;
    case 2:
        o.node_id = UINT64_MAX;
        break;
    case 3:
        o.data_dir[0] = '\0';
        break;
    case 4:
        o.client_addr[0] = '\0';
        break;
    case 5:
        snprintf(o.client_addr, sizeof o.client_addr, "localhost");
        break;
    case 6:
        snprintf(o.client_addr, sizeof o.client_addr, ":2379");
        break;
    case 7:
        snprintf(o.client_addr, sizeof o.client_addr, "h:");
        break;
    case 8:
        snprintf(o.client_addr, sizeof o.client_addr, "h:65536");
        break;
    case 9:
        snprintf(o.client_addr, sizeof o.client_addr, "h:12x");
        break;
    case 10:
        o.peer_addr[0] = '\0';
        break;
    case 11:
        snprintf(o.peer_addr, sizeof o.peer_addr, "h:-1");
        break;
    case 12:
        snprintf(o.peer_addr, sizeof o.peer_addr, "h:99999999999");
        break;
    case 13:
        snprintf(o.http_addr, sizeof o.http_addr, "8080");
        break;
    case 14:
        snprintf(o.http_addr, sizeof o.http_addr, "h:70000");
        break;
    case 15:
        o.initial_shards = 0;
        break;
    case 16:
        o.initial_shards = BS_PD_MAX_INITIAL_SHARDS + 1;
        break;
    case 17:
        o.initial_shards = UINT32_MAX;
        break;
    case 18:
        o.tick_ms = 0;
        break;
    case 19:
        o.tick_ms = -1;
        break;
    case 20:
        o.tick_ms = 10001;
        break;
    case 21:
        o.election_ticks = 2;
        break;
    case 22:
        o.election_ticks = 1001;
        break;
    case 23:
        o.election_ticks = -5;
        break;
    case 24:
        o.log_max_entries = 9;
        break;
    case 25:
        o.log_max_entries = 0;
        break;
    case 26:
        o.n_initial = 1;
        o.initial[0].id = 1;
        snprintf(o.initial[0].peer_addr, sizeof o.initial[0].peer_addr,
                 "noport");
        break;
    case 27:
        ck_assert_int_eq(bs_node_parse_members(&o, "1=a:1,3=b", err), 0);
        break;
    case 28:
        o.down_after_ms = 3000;
        break;
    case 29:
        o.heartbeat_ms = 10000;
        o.down_after_ms = 0; /* the default, 30000 = 3 x 10000 */
        break;
    case 30:
        o.max_lag_ms = 999;
        break;
    default:
        o.n_join = 1;
        snprintf(o.join[0], sizeof o.join[0], "127.0.0.1:2379");
        ck_assert_int_eq(bs_node_parse_members(&o, "1=a:1", err), 0);
        break;
    }
    ck_assert_msg(bs_node_opts_check(&o, err) == BS_EINVAL,
                  "case %d (%s) accepted", _i, c->flag);
    ck_assert_msg(strstr(err, c->flag) != NULL,
                  "case %d: errmsg \"%s\" does not name %s", _i, err, c->flag);
    ck_assert_msg(c->detail == NULL || strstr(err, c->detail) != NULL,
                  "case %d: errmsg \"%s\" lacks %s", _i, err, c->detail);
}
END_TEST

/* ------------------------------------------------ codec: round trips */

/* Fills it[0..n) with ids 1..n (some extreme), types and requests drawn
 * from s; the requests point into pool (>= 64 KiB). */
static void rand_items(uint64_t *s, struct bs_fwd_item *it, size_t n,
                       const uint8_t *pool)
{
    for (size_t i = 0; i < n; i++) {
        it[i].id = i == 0 && n > 1 ? UINT64_MAX
                                   : i + 1 + rng_below(s, 2) * (1ULL << 40);
        it[i].type = (uint8_t)rng_below(s, 256);
        it[i].len = rng_below(s, 3) == 0    ? 0
                    : rng_below(s, 20) == 0 ? 60000 + rng_below(s, 5000)
                                            : rng_below(s, 200);
        it[i].req = it[i].len ? pool + rng_below(s, 256) : NULL;
    }
}

static const char *const msgs[] = {
    "",
    "not the leader",
    "key outside the shard's range",
    "a sentence with \"quotes\", a NUL-free UTF-8 \xc3\xa9 and 40 more bytes",
};

static void rand_replies(uint64_t *s, struct bs_fwd_reply *r, size_t n,
                         const uint8_t *pool)
{
    for (size_t i = 0; i < n; i++) {
        const char *m = msgs[rng_below(s, 4)];

        r[i].id = i == 0 && n > 1 ? UINT64_MAX : i + 1;
        switch (rng_below(s, 4)) {
        case 0:
            r[i].rc = 0;
            break;
        case 1:
            r[i].rc = INT32_MIN;
            break;
        default:
            r[i].rc = -(int32_t)rng_below(s, 30);
            break;
        }
        r[i].status = (uint32_t)rng_below(s, BS_RPC_UNAUTHENTICATED + 1);
        r[i].msg = m;
        r[i].msg_len = strlen(m);
        r[i].resp_len = rng_below(s, 3) == 0 ? 0 : rng_below(s, 300);
        r[i].resp = r[i].resp_len ? pool + rng_below(s, 256) : NULL;
    }
}

static uint8_t *make_pool(uint64_t *s)
{
    uint8_t *pool = malloc(70000);

    ck_assert_ptr_nonnull(pool);
    for (size_t i = 0; i < 70000; i++)
        pool[i] = (uint8_t)rng_next(s);
    return pool;
}

static void check_items(const struct bs_fwd_item *a, size_t na,
                        const struct bs_fwd_item *b, size_t nb,
                        const uint8_t *buf, size_t len)
{
    ck_assert_uint_eq(na, nb);
    for (size_t i = 0; i < na; i++) {
        ck_assert_uint_eq(a[i].id, b[i].id);
        ck_assert_uint_eq(a[i].type, b[i].type);
        ck_assert(bs_test_bytes_eq(a[i].req, a[i].len, b[i].req, b[i].len));
        ck_assert_msg(inside(b[i].req, b[i].len, buf, len),
                      "item %zu: request not borrowed from the buffer", i);
    }
}

static void check_replies(const struct bs_fwd_reply *a, size_t na,
                          const struct bs_fwd_reply *b, size_t nb,
                          const uint8_t *buf, size_t len)
{
    ck_assert_uint_eq(na, nb);
    for (size_t i = 0; i < na; i++) {
        ck_assert_uint_eq(a[i].id, b[i].id);
        ck_assert_int_eq(a[i].rc, b[i].rc);
        ck_assert_uint_eq(a[i].status, b[i].status);
        ck_assert(
            bs_test_bytes_eq(a[i].msg, a[i].msg_len, b[i].msg, b[i].msg_len));
        ck_assert(bs_test_bytes_eq(a[i].resp, a[i].resp_len, b[i].resp,
                                   b[i].resp_len));
        ck_assert_msg(inside(b[i].msg, b[i].msg_len, buf, len),
                      "reply %zu: msg not borrowed from the buffer", i);
        ck_assert_msg(inside(b[i].resp, b[i].resp_len, buf, len),
                      "reply %zu: response not borrowed from the buffer", i);
    }
}

static const size_t rt_sizes[] = {0, 1, 2, 1000};

START_TEST(test_batch_round_trip)
{
    uint64_t s = 0x5eed0000u + (uint64_t)_i;
    uint8_t *pool = make_pool(&s);
    size_t n = rt_sizes[_i];
    struct bs_fwd_item *it = calloc(n ? n : 1, sizeof *it), *d = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, nd = 99;

    ck_assert_ptr_nonnull(it);
    rand_items(&s, it, n, pool);
    ck_assert_int_eq(bs_fwd_batch_encode(it, n, &buf, &len), 0);
    ck_assert_ptr_nonnull(buf);
    if (n == 0)
        ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bs_fwd_batch_decode(buf, len, &d, &nd), 0);
    check_items(it, n, d, nd, buf, len);

    /* Borrowed: a change to the buffer shows through the decoded item. */
    for (size_t i = 0; i < nd; i++) {
        if (d[i].len) {
            uint8_t old = d[i].req[0];

            buf[d[i].req - buf] ^= 0xff;
            ck_assert_uint_eq(d[i].req[0], (uint8_t)(old ^ 0xff));
            break;
        }
    }
    free(d);
    free(buf);
    free(it);
    free(pool);
}
END_TEST

START_TEST(test_replies_round_trip)
{
    uint64_t s = 0x5eed1000u + (uint64_t)_i;
    uint8_t *pool = make_pool(&s);
    size_t n = rt_sizes[_i];
    struct bs_fwd_reply *r = calloc(n ? n : 1, sizeof *r), *d = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, nd = 99;

    ck_assert_ptr_nonnull(r);
    rand_replies(&s, r, n, pool);
    ck_assert_int_eq(bs_fwd_replies_encode(r, n, &buf, &len), 0);
    ck_assert_ptr_nonnull(buf);
    if (n == 0)
        ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bs_fwd_replies_decode(buf, len, &d, &nd), 0);
    check_replies(r, n, d, nd, buf, len);
    free(d);
    free(buf);
    free(r);
    free(pool);
}
END_TEST

/* Every type and every status value; the extremes of rc. */
START_TEST(test_codec_domains)
{
    struct bs_fwd_item it[256], *di = NULL;
    struct bs_fwd_reply r[BS_RPC_UNAUTHENTICATED + 1 + 2], *dr = NULL;
    size_t nr = sizeof r / sizeof r[0], n = 0;
    uint8_t *buf = NULL;
    size_t len = 0;

    for (int i = 0; i < 256; i++)
        it[i] = (struct bs_fwd_item){(uint64_t)i + 1, (uint8_t)i,
                                     (const uint8_t *)"x", (size_t)i % 2};
    ck_assert_int_eq(bs_fwd_batch_encode(it, 256, &buf, &len), 0);
    ck_assert_int_eq(bs_fwd_batch_decode(buf, len, &di, &n), 0);
    check_items(it, 256, di, n, buf, len);
    free(di);
    free(buf);

    memset(r, 0, sizeof r);
    for (size_t i = 0; i < nr; i++) {
        r[i].id = i + 1;
        r[i].status = i <= BS_RPC_UNAUTHENTICATED ? (uint32_t)i : 0;
        r[i].rc = i % 3 == 0 ? 0 : BS_ENOTLEADER;
    }
    r[nr - 2].rc = INT32_MIN;
    r[nr - 1].rc = -1;
    ck_assert_int_eq(bs_fwd_replies_encode(r, nr, &buf, &len), 0);
    ck_assert_int_eq(bs_fwd_replies_decode(buf, len, &dr, &n), 0);
    check_replies(r, nr, dr, n, buf, len);
    free(dr);
    free(buf);
}
END_TEST

/* BS_FWD_MAX_ITEMS elements decode; one more is BS_ETOOBIG. */
START_TEST(test_codec_max_items)
{
    size_t max = BS_FWD_MAX_ITEMS;
    struct bs_fwd_item *it = calloc(max + 1, sizeof *it), *di = NULL;
    struct bs_fwd_reply *r = calloc(max + 1, sizeof *r), *dr = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, n = 0;

    ck_assert_ptr_nonnull(it);
    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i <= max; i++) {
        it[i].id = i + 1;
        r[i].id = i + 1;
    }
    ck_assert_int_eq(bs_fwd_batch_encode(it, max, &buf, &len), 0);
    ck_assert_int_eq(bs_fwd_batch_decode(buf, len, &di, &n), 0);
    ck_assert_uint_eq(n, max);
    ck_assert_uint_eq(di[max - 1].id, max);
    free(di);
    free(buf);
    /* One more: the encoder refuses it, and the decoder refuses the same
     * batch built by hand (each item: field 1, its id). */
    ck_assert_int_eq(bs_fwd_batch_encode(it, max + 1, &buf, &len), BS_EINVAL);
    ck_assert_int_eq(bs_fwd_replies_encode(r, max + 1, &buf, &len), BS_EINVAL);
    buf = malloc((max + 1) * 8);
    ck_assert_ptr_nonnull(buf);
    len = 0;
    for (size_t i = 0; i <= max; i++) {
        struct w item;
        memset(&item, 0, sizeof item);
        w_uint(&item, 1, i + 1);
        buf[len++] = 0x0a; /* field 1, length-delimited */
        buf[len++] = (uint8_t)item.n;
        memcpy(buf + len, item.b, item.n);
        len += item.n;
    }
    di = NULL;
    ck_assert_int_eq(bs_fwd_batch_decode(buf, len, &di, &n), BS_ETOOBIG);
    ck_assert_ptr_null(di);
    free(buf);

    ck_assert_int_eq(bs_fwd_replies_encode(r, max, &buf, &len), 0);
    ck_assert_int_eq(bs_fwd_replies_decode(buf, len, &dr, &n), 0);
    ck_assert_uint_eq(n, max);
    free(dr);
    free(buf);
    buf = malloc((max + 1) * 8);
    ck_assert_ptr_nonnull(buf);
    len = 0;
    for (size_t i = 0; i <= max; i++) {
        struct w rep;
        memset(&rep, 0, sizeof rep);
        w_uint(&rep, 1, i + 1);
        buf[len++] = 0x0a;
        buf[len++] = (uint8_t)rep.n;
        memcpy(buf + len, rep.b, rep.n);
        len += rep.n;
    }
    dr = NULL;
    ck_assert_int_eq(bs_fwd_replies_decode(buf, len, &dr, &n), BS_ETOOBIG);
    ck_assert_ptr_null(dr);
    free(buf);
    free(it);
    free(r);
}
END_TEST

/* ------------------------------------------------- codec: malformed */

static int dec_batch(const uint8_t *b, size_t n)
{
    struct bs_fwd_item *it = NULL;
    size_t k = 0;
    int rc = bs_fwd_batch_decode(b, n, &it, &k);

    if (rc == 0)
        free(it);
    return rc;
}

static int dec_replies(const uint8_t *b, size_t n)
{
    struct bs_fwd_reply *r = NULL;
    size_t k = 0;
    int rc = bs_fwd_replies_decode(b, n, &r, &k);

    if (rc == 0)
        free(r);
    return rc;
}

/* Wraps the message m as element 1 of a batch or replies message. */
static void w_wrap(struct w *out, const struct w *m)
{
    w_bytes(out, 1, m->b, m->n);
}

START_TEST(test_codec_refuses)
{
    struct bs_fwd_item it = {0, 1, (const uint8_t *)"req", 3};
    struct bs_fwd_reply r = {0};
    uint8_t *buf;
    size_t len;
    struct w m, o;

    /* What the decoders refuse, the encoders refuse too (BS_EINVAL): an id
     * of 0, a positive rc, an unknown status. */
    ck_assert_int_eq(bs_fwd_batch_encode(&it, 1, &buf, &len), BS_EINVAL);
    r.id = 0;
    ck_assert_int_eq(bs_fwd_replies_encode(&r, 1, &buf, &len), BS_EINVAL);
    r.id = 1;
    r.rc = 1;
    ck_assert_int_eq(bs_fwd_replies_encode(&r, 1, &buf, &len), BS_EINVAL);
    r.rc = BS_EINVAL;
    r.status = BS_RPC_UNAUTHENTICATED + 1;
    ck_assert_int_eq(bs_fwd_replies_encode(&r, 1, &buf, &len), BS_EINVAL);
    (void)buf;

    /* ... and the decoders refuse them built by hand. */
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 2, 1); /* an item with a type but id 0 */
    w_wrap(&o, &m);
    ck_assert_int_eq(dec_batch(o.b, o.n), BS_EPROTO);
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 3, 0); /* a reply with id 0 */
    w_wrap(&o, &m);
    ck_assert_int_eq(dec_replies(o.b, o.n), BS_EPROTO);
    static const uint64_t bad_rc[] = {1, INT32_MAX};
    for (size_t i = 0; i < 2; i++) {
        memset(&m, 0, sizeof m);
        memset(&o, 0, sizeof o);
        w_uint(&m, 1, 1);
        w_uint(&m, 2, bad_rc[i]);
        w_wrap(&o, &m);
        ck_assert_int_eq(dec_replies(o.b, o.n), BS_EPROTO);
    }
    static const uint64_t bad_status[] = {BS_RPC_UNAUTHENTICATED + 1,
                                          UINT32_MAX};
    for (size_t i = 0; i < 2; i++) {
        memset(&m, 0, sizeof m);
        memset(&o, 0, sizeof o);
        w_uint(&m, 1, 1);
        w_uint(&m, 2, (uint64_t)(int64_t)BS_EINVAL);
        w_uint(&m, 3, bad_status[i]);
        w_wrap(&o, &m);
        ck_assert_int_eq(dec_replies(o.b, o.n), BS_EPROTO);
    }

    /* An item's type beyond uint8 (256) or beyond uint32. */
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 1, 5);
    w_uint(&m, 2, 256);
    w_wrap(&o, &m);
    ck_assert_int_eq(dec_batch(o.b, o.n), BS_EPROTO);
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 1, 5);
    w_uint(&m, 2, 1ULL << 32);
    w_wrap(&o, &m);
    ck_assert_int_eq(dec_batch(o.b, o.n), BS_EPROTO);
    /* Type 255 with the same bytes is fine. */
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 1, 5);
    w_uint(&m, 2, 255);
    w_wrap(&o, &m);
    ck_assert_int_eq(dec_batch(o.b, o.n), 0);

    /* A status beyond uint32. */
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 1, 5);
    w_uint(&m, 3, (1ULL << 32) + 3);
    w_wrap(&o, &m);
    ck_assert_int_eq(dec_replies(o.b, o.n), BS_EPROTO);

    /* A submessage longer than what is left. */
    memset(&o, 0, sizeof o);
    w_tag(&o, 1, 2);
    w_varint(&o, 10);
    w_uint(&o, 1, 7);
    ck_assert_int_eq(dec_batch(o.b, o.n), BS_EPROTO);
    ck_assert_int_eq(dec_replies(o.b, o.n), BS_EPROTO);

    /* A byte field longer than its submessage. */
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 1, 5);
    w_tag(&m, 3, 2);
    w_varint(&m, 50);
    w_byte(&m, 'a');
    w_wrap(&o, &m);
    ck_assert_int_eq(dec_batch(o.b, o.n), BS_EPROTO);
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 1, 5);
    w_tag(&m, 4, 2);
    w_varint(&m, 50);
    w_byte(&m, 'a');
    w_wrap(&o, &m);
    ck_assert_int_eq(dec_replies(o.b, o.n), BS_EPROTO);

    /* A varint of 11 bytes; a lone tag; field number 0. */
    {
        static const uint8_t long_varint[] = {0x0a, 0x0c, 0x08, 0xff, 0xff,
                                              0xff, 0xff, 0xff, 0xff, 0xff,
                                              0xff, 0xff, 0xff, 0x01};
        static const uint8_t lone_tag[] = {0x0a};
        static const uint8_t field0[] = {0x02, 0x00};

        ck_assert_int_eq(dec_batch(long_varint, sizeof long_varint), BS_EPROTO);
        ck_assert_int_eq(dec_replies(long_varint, sizeof long_varint),
                         BS_EPROTO);
        ck_assert_int_eq(dec_batch(lone_tag, sizeof lone_tag), BS_EPROTO);
        ck_assert_int_eq(dec_replies(lone_tag, sizeof lone_tag), BS_EPROTO);
        ck_assert_int_eq(dec_batch(field0, sizeof field0), BS_EPROTO);
        ck_assert_int_eq(dec_replies(field0, sizeof field0), BS_EPROTO);
    }

    /* Unknown fields are skipped (forward compatibility). */
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    w_uint(&m, 1, 5);
    w_uint(&m, 9, 123);
    w_bytes(&m, 10, "zz", 2);
    w_wrap(&o, &m);
    w_uint(&o, 7, 1);
    ck_assert_int_eq(dec_batch(o.b, o.n), 0);
    ck_assert_int_eq(dec_replies(o.b, o.n), 0);
}
END_TEST

/*
 * A byte field of a non-length-delimited wire type: nanopb hands such a
 * value to the callback in a copy on its own stack, so a decoder that
 * borrowed it would return a dangling pointer. Refused.
 */
START_TEST(test_codec_wrong_wire_type)
{
    struct w m, o;

    /* request (3) as a varint, as a fixed32 and as a fixed64. */
    for (unsigned wt = 0; wt <= 5; wt += wt == 0 ? 1 : 4) {
        memset(&m, 0, sizeof m);
        memset(&o, 0, sizeof o);
        w_uint(&m, 1, 5);
        w_tag(&m, 3, wt);
        if (wt == 0)
            w_varint(&m, 0x414243);
        else
            for (int i = 0; i < (wt == 1 ? 8 : 4); i++)
                w_byte(&m, (uint8_t)('A' + i));
        w_wrap(&o, &m);
        ck_assert_msg(dec_batch(o.b, o.n) == BS_EPROTO,
                      "request of wire type %u accepted", wt);

        /* msg (4) and response (5) likewise. */
        for (unsigned f = 4; f <= 5; f++) {
            memset(&m, 0, sizeof m);
            memset(&o, 0, sizeof o);
            w_uint(&m, 1, 5);
            w_tag(&m, f, wt);
            if (wt == 0)
                w_varint(&m, 0x414243);
            else
                for (int i = 0; i < (wt == 1 ? 8 : 4); i++)
                    w_byte(&m, (uint8_t)('A' + i));
            w_wrap(&o, &m);
            ck_assert_msg(dec_replies(o.b, o.n) == BS_EPROTO,
                          "field %u of wire type %u accepted", f, wt);
        }
    }

    /* A whole item as a fixed64 whose 8 bytes hold a request: the request
     * would point into nanopb's stack copy. */
    {
        static const uint8_t b[] = {0x09, 0x08, 0x05, 0x10, 0x01,
                                    0x1a, 0x02, 'A',  'B'};
        static const uint8_t rb[] = {0x09, 0x08, 0x05, 0x22, 0x04,
                                     'A',  'B',  'C',  'D'};

        ck_assert_int_eq(dec_batch(b, sizeof b), BS_EPROTO);
        ck_assert_int_eq(dec_replies(rb, sizeof rb), BS_EPROTO);
    }
}
END_TEST

/* Every strict prefix of a valid encoding decodes to a prefix of its
 * elements or is BS_EPROTO; a prefix that cuts the last one is BS_EPROTO. */
START_TEST(test_codec_truncated)
{
    uint64_t s = 0x7a11;
    uint8_t *pool = make_pool(&s);
    struct bs_fwd_item it[4], *di;
    struct bs_fwd_reply r[4], *dr;
    uint8_t *buf, *cp;
    size_t len, n;
    int rc;

    rand_items(&s, it, 4, pool);
    it[3].req = pool;
    it[3].len = 5;
    ck_assert_int_eq(bs_fwd_batch_encode(it, 4, &buf, &len), 0);
    for (size_t k = 0; k < len; k++) {
        /* A copy of exactly k bytes, so valgrind sees any over-read. */
        cp = malloc(k ? k : 1);
        memcpy(cp, buf, k);
        di = NULL;
        rc = bs_fwd_batch_decode(cp, k, &di, &n);
        ck_assert_msg(rc == 0 || rc == BS_EPROTO, "prefix %zu: %d", k, rc);
        if (rc == 0) {
            ck_assert_uint_lt(n, 4);
            check_items(it, n, di, n, cp, k);
            free(di);
        }
        if (k == len - 1)
            ck_assert_int_eq(rc, BS_EPROTO);
        free(cp);
    }
    free(buf);

    rand_replies(&s, r, 4, pool);
    r[3].resp = pool;
    r[3].resp_len = 5;
    ck_assert_int_eq(bs_fwd_replies_encode(r, 4, &buf, &len), 0);
    for (size_t k = 0; k < len; k++) {
        cp = malloc(k ? k : 1);
        memcpy(cp, buf, k);
        dr = NULL;
        rc = bs_fwd_replies_decode(cp, k, &dr, &n);
        ck_assert_msg(rc == 0 || rc == BS_EPROTO, "prefix %zu: %d", k, rc);
        if (rc == 0) {
            ck_assert_uint_lt(n, 4);
            check_replies(r, n, dr, n, cp, k);
            free(dr);
        }
        if (k == len - 1)
            ck_assert_int_eq(rc, BS_EPROTO);
        free(cp);
    }
    free(buf);
    free(pool);
}
END_TEST

/* What a successful decode of untrusted bytes must still guarantee. */
static void check_decoded_sane(const uint8_t *b, size_t len)
{
    struct bs_fwd_item *it = NULL;
    struct bs_fwd_reply *r = NULL;
    size_t n = 0;
    int rc;

    rc = bs_fwd_batch_decode(b, len, &it, &n);
    ck_assert_msg(rc == 0 || rc == BS_EPROTO || rc == BS_ETOOBIG,
                  "batch decode returned %d", rc);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_ne(it[i].id, 0);
            ck_assert(inside(it[i].req, it[i].len, b, len));
        }
        free(it);
    }
    rc = bs_fwd_replies_decode(b, len, &r, &n);
    ck_assert_msg(rc == 0 || rc == BS_EPROTO || rc == BS_ETOOBIG,
                  "replies decode returned %d", rc);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_ne(r[i].id, 0);
            ck_assert_int_le(r[i].rc, 0);
            ck_assert_uint_le(r[i].status, BS_RPC_UNAUTHENTICATED);
            ck_assert(inside(r[i].msg, r[i].msg_len, b, len));
            ck_assert(inside(r[i].resp, r[i].resp_len, b, len));
        }
        free(r);
    }
}

START_TEST(test_codec_random_bytes)
{
    uint64_t s = 0xbad5eed;
    uint8_t b[300];

    for (int round = 0; round < 20000; round++) {
        size_t len = rng_below(&s, sizeof b + 1);
        uint8_t *cp = malloc(len ? len : 1);

        for (size_t i = 0; i < len; i++)
            b[i] = (uint8_t)rng_next(&s);
        /* Often start like a real message: field 1, length-delimited. */
        if (len > 2 && rng_below(&s, 2)) {
            b[0] = 0x0a;
            b[1] = (uint8_t)rng_below(&s, len - 1);
        }
        memcpy(cp, b, len);
        check_decoded_sane(cp, len);
        free(cp);
    }
}
END_TEST

START_TEST(test_codec_mutations)
{
    uint64_t s = 0x3a7e;
    uint8_t *pool = make_pool(&s);
    struct bs_fwd_item it[6];
    struct bs_fwd_reply r[6];
    uint8_t *enc[2];
    size_t enc_len[2];

    rand_items(&s, it, 6, pool);
    for (int i = 0; i < 6; i++)
        if (it[i].len > 40)
            it[i].len = 40;
    rand_replies(&s, r, 6, pool);
    ck_assert_int_eq(bs_fwd_batch_encode(it, 6, &enc[0], &enc_len[0]), 0);
    ck_assert_int_eq(bs_fwd_replies_encode(r, 6, &enc[1], &enc_len[1]), 0);
    for (int round = 0; round < 10000; round++) {
        int which = round & 1;
        size_t len = enc_len[which];
        uint8_t *cp = malloc(len + 8);

        memcpy(cp, enc[which], len);
        for (uint64_t k = 1 + rng_below(&s, 3); k > 0; k--) {
            size_t at = rng_below(&s, len);

            switch (rng_below(&s, 3)) {
            case 0:
                cp[at] = (uint8_t)rng_next(&s);
                break;
            case 1:
                cp[at] ^= (uint8_t)(1u << rng_below(&s, 8));
                break;
            default:
                len = at; /* truncate */
                break;
            }
            if (len == 0)
                break;
        }
        check_decoded_sane(cp, len);
        free(cp);
    }
    free(enc[0]);
    free(enc[1]);
    free(pool);
}
END_TEST

/* Hand-computed bytes (node.proto's field numbers): proto3 leaves out
 * zero numbers and empty strings; rc is a sign-extended 10-byte varint. */
START_TEST(test_wire_golden)
{
    static const uint8_t batch[] = {0x0a, 0x02, 0x08, 0x01, /* {id 1} */
                                    0x0a, 0x08, 0x08, 0x80, 0x01,
                                    0x10, 0x03, 0x1a, 0x01, 'q'};
    static const uint8_t replies[] = {
        0x0a, 0x02, 0x08, 0x01, /* {id 1} */
        0x0a, 0x15, 0x08, 0x02, 0x10, 0xf7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0x01, 0x18, 0x0e, 0x22, 0x01, 'm',  0x2a, 0x01, 'r'};
    struct bs_fwd_item it[2] = {{1, 0, NULL, 0},
                                {128, 3, (const uint8_t *)"q", 1}};
    struct bs_fwd_reply r[2] = {
        {1, 0, 0, "", 0, (const uint8_t *)"", 0},
        {2, BS_ENOTLEADER, 14, "m", 1, (const uint8_t *)"r", 1}};
    uint8_t *buf;
    size_t len;

    ck_assert_int_eq(bs_fwd_batch_encode(it, 2, &buf, &len), 0);
    ck_assert(bs_test_bytes_eq(buf, len, batch, sizeof batch));
    free(buf);
    ck_assert_int_eq(bs_fwd_replies_encode(r, 2, &buf, &len), 0);
    ck_assert(bs_test_bytes_eq(buf, len, replies, sizeof replies));
    free(buf);
}
END_TEST

/* ------------------------------------------------------ codec: protoc */

START_TEST(test_wire_protoc)
{
    struct bs_fwd_item it[2] = {
        {1, 2, (const uint8_t *)"ab", 2},
        {UINT64_MAX, 0, NULL, 0},
    };
    struct bs_fwd_reply r[2] = {
        {7, BS_ENOTLEADER, 14, "not the leader", 14, NULL, 0},
        {8, 0, 0, NULL, 0, (const uint8_t *)"\x00\xff", 2},
    };
    struct bs_fwd_item *di;
    struct bs_fwd_reply *dr;
    uint8_t *buf, *pb;
    size_t len, n;
    char *text;

    /* Our bytes, protoc's decoder. */
    ck_assert_int_eq(bs_fwd_batch_encode(it, 2, &buf, &len), 0);
    text = bs_test_protoc("decode", "basalt.node.ForwardBatch", "node.proto",
                          buf, len, NULL);
    ck_assert_str_eq(text, "items {\n"
                           "  id: 1\n"
                           "  type: 2\n"
                           "  request: \"ab\"\n"
                           "}\n"
                           "items {\n"
                           "  id: 18446744073709551615\n"
                           "}\n");
    free(text);
    free(buf);

    ck_assert_int_eq(bs_fwd_replies_encode(r, 2, &buf, &len), 0);
    text = bs_test_protoc("decode", "basalt.node.ForwardReplies", "node.proto",
                          buf, len, NULL);
    ck_assert_str_eq(text, "replies {\n"
                           "  id: 7\n"
                           "  rc: -9\n"
                           "  status: 14\n"
                           "  msg: \"not the leader\"\n"
                           "}\n"
                           "replies {\n"
                           "  id: 8\n"
                           "  response: \"\\000\\377\"\n"
                           "}\n");
    free(text);
    free(buf);

    /* protoc's bytes, our decoder. */
    {
        static const char txt[] =
            "items { id: 3 type: 255 request: \"xyz\" } items { id: 9 }";

        pb = (uint8_t *)bs_test_protoc("encode", "basalt.node.ForwardBatch",
                                       "node.proto", txt, sizeof txt - 1, &len);
        ck_assert_int_eq(bs_fwd_batch_decode(pb, len, &di, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(di[0].id, 3);
        ck_assert_uint_eq(di[0].type, 255);
        ck_assert(bs_test_bytes_eq(di[0].req, di[0].len, "xyz", 3));
        ck_assert_uint_eq(di[1].id, 9);
        ck_assert_uint_eq(di[1].type, 0);
        ck_assert_uint_eq(di[1].len, 0);
        free(di);
        free(pb);
    }
    {
        static const char txt[] =
            "replies { id: 5 rc: -2147483648 status: 16 msg: \"m\" "
            "response: \"r\" } replies { id: 6 }";

        pb = (uint8_t *)bs_test_protoc("encode", "basalt.node.ForwardReplies",
                                       "node.proto", txt, sizeof txt - 1, &len);
        ck_assert_int_eq(bs_fwd_replies_decode(pb, len, &dr, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(dr[0].id, 5);
        ck_assert_int_eq(dr[0].rc, INT32_MIN);
        ck_assert_uint_eq(dr[0].status, 16);
        ck_assert(bs_test_bytes_eq(dr[0].msg, dr[0].msg_len, "m", 1));
        ck_assert(bs_test_bytes_eq(dr[0].resp, dr[0].resp_len, "r", 1));
        ck_assert_uint_eq(dr[1].id, 6);
        ck_assert_int_eq(dr[1].rc, 0);
        ck_assert_uint_eq(dr[1].msg_len, 0);
        ck_assert_uint_eq(dr[1].resp_len, 0);
        free(dr);
        free(pb);
    }
}
END_TEST

/* ------------------------------------------------------------- suite */

static Suite *node_suite(void)
{
    Suite *s = suite_create("rpc_node");
    TCase *opts = tcase_create("opts");
    TCase *codec = tcase_create("fwd_codec");

    tcase_add_test(opts, test_members_good);
    tcase_add_loop_test(opts, test_members_refused, 0,
                        (int)(sizeof members_bad / sizeof members_bad[0]));
    tcase_add_test(opts, test_members_limits);
    tcase_add_test(opts, test_opts_defaults);
    tcase_add_test(opts, test_opts_bounds);
    tcase_add_loop_test(opts, test_opts_refused, 0,
                        (int)(sizeof opts_bad / sizeof opts_bad[0]));
    suite_add_tcase(s, opts);

    tcase_set_timeout(codec, 600);
    tcase_add_loop_test(codec, test_batch_round_trip, 0,
                        (int)(sizeof rt_sizes / sizeof rt_sizes[0]));
    tcase_add_loop_test(codec, test_replies_round_trip, 0,
                        (int)(sizeof rt_sizes / sizeof rt_sizes[0]));
    tcase_add_test(codec, test_codec_domains);
    tcase_add_test(codec, test_codec_max_items);
    tcase_add_test(codec, test_codec_refuses);
    tcase_add_test(codec, test_codec_wrong_wire_type);
    tcase_add_test(codec, test_codec_truncated);
    tcase_add_test(codec, test_codec_random_bytes);
    tcase_add_test(codec, test_codec_mutations);
    tcase_add_test(codec, test_wire_golden);
    tcase_add_test(codec, test_wire_protoc);
    suite_add_tcase(s, codec);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(node_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
