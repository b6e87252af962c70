/*
 * test_http.c - unit tests of rpc/http.c: the four routes with their
 * status codes, content types and bodies (read with a raw socket client,
 * so the tests need no curl), 404 and 405, HEAD, a failing callback
 * (500), readiness flipping, addresses that cannot be served, and the
 * Prometheus text builder's output, escaping and refusals.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <math.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"

/* ------------------------------------------------------ a raw client */

struct resp {
    int code;
    char head[4096]; /* status line and headers */
    char body[65536];
    size_t body_len;
};

/* Sends req (a whole HTTP request) to 127.0.0.1:port, reads to EOF. */
static void raw(int port, const char *req, struct resp *r)
{
    static char buf[sizeof r->head + sizeof r->body];
    struct sockaddr_in a = {0};
    struct timeval tv = {10, 0};
    size_t n = 0;
    ssize_t k;
    char *sep;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while ((k = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    ck_assert_int_eq(k, 0); /* EOF, not a timeout */
    close(fd);
    buf[n] = '\0';
    sep = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(sep);
    ck_assert_uint_lt((size_t)(sep - buf), sizeof r->head);
    memcpy(r->head, buf, (size_t)(sep - buf));
    r->head[sep - buf] = '\0';
    r->body_len = n - (size_t)(sep + 4 - buf);
    memcpy(r->body, sep + 4, r->body_len);
    r->body[r->body_len] = '\0';
    ck_assert_int_eq(sscanf(r->head, "HTTP/1.1 %d", &r->code), 1);
}

static void get(int port, const char *method, const char *path, struct resp *r)
{
    char req[512];

    snprintf(req, sizeof req,
             "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
             method, path);
    raw(port, req, r);
}

/* The value of header name (case-insensitive), or NULL. */
static const char *header(const struct resp *r, const char *name)
{
    static char v[512];
    const char *line = strstr(r->head, "\r\n");

    while (line != NULL) {
        line += 2;
        if (strncasecmp(line, name, strlen(name)) == 0 &&
            line[strlen(name)] == ':') {
            const char *s = line + strlen(name) + 1, *e = strstr(s, "\r\n");
            size_t n = e ? (size_t)(e - s) : strlen(s);

            while (*s == ' ')
                s++, n--;
            snprintf(v, sizeof v, "%.*s", (int)n, s);
            return v;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

/* ------------------------------------------------------- the node */

static atomic_bool ready_flag;
static atomic_int fail_metrics;

static int metrics(void *ctx, char **body, size_t *len)
{
    struct bs_prom p = {0};
    int rc = atomic_load(&fail_metrics);

    ck_assert_ptr_eq(ctx, &ready_flag);
    if (rc != 0)
        return rc;
    bs_prom_metric(&p, "basalt_up", "gauge", "Whether the node is up.");
    bs_prom_sample(&p, "basalt_up", NULL, 1);
    return bs_prom_finish(&p, body, len);
}

static int status(void *ctx, char **body, size_t *len)
{
    *body = strdup("{\"node_id\":1}");
    *len = strlen(*body);
    return 0;
}

static bool ready(void *ctx)
{
    return atomic_load(&ready_flag);
}

static const struct bs_http_ops ops = {metrics, status, ready, &ready_flag};

static struct bs_http *start(const struct bs_http_ops *o)
{
    char err[BS_HTTP_ERRMSG_SIZE];
    struct bs_http *h = NULL;
    int rc = bs_http_start("127.0.0.1:0", o, &h, err);

    ck_assert_msg(rc == 0, "start: %s", err);
    ck_assert_int_gt(bs_http_port(h), 0);
    return h;
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_routes)
{
    struct bs_http *h = start(&ops);
    int port = bs_http_port(h);
    struct resp *r = calloc(1, sizeof *r);

    get(port, "GET", "/health", r);
    ck_assert_int_eq(r->code, 200);
    ck_assert_str_eq(r->body, "ok\n");
    ck_assert_str_eq(header(r, "Content-Type"), "text/plain; charset=utf-8");

    get(port, "GET", "/metrics", r);
    ck_assert_int_eq(r->code, 200);
    ck_assert_str_eq(header(r, "Content-Type"),
                     "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_str_eq(r->body, "# HELP basalt_up Whether the node is up.\n"
                              "# TYPE basalt_up gauge\n"
                              "basalt_up 1\n");

    get(port, "GET", "/status", r);
    ck_assert_int_eq(r->code, 200);
    ck_assert_str_eq(header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(r->body, "{\"node_id\":1}");

    /* Query strings do not change the route. */
    get(port, "GET", "/health?verbose=1", r);
    ck_assert_int_eq(r->code, 200);

    get(port, "GET", "/", r);
    ck_assert_int_eq(r->code, 404);
    ck_assert_str_eq(r->body, "not found\n");
    get(port, "GET", "/metrics/", r);
    ck_assert_int_eq(r->code, 404);

    get(port, "POST", "/health", r);
    ck_assert_int_eq(r->code, 405);
    ck_assert_str_eq(r->body, "method not allowed\n");
    ck_assert_str_eq(header(r, "Allow"), "GET, HEAD");
    get(port, "DELETE", "/nothing", r);
    ck_assert_int_eq(r->code, 405);
    /* A request with a body is answered too. */
    raw(port,
        "PUT /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Length: 5\r\n\r\nhello",
        r);
    ck_assert_int_eq(r->code, 405);

    /* HEAD: the headers of GET, no body. */
    get(port, "HEAD", "/health", r);
    ck_assert_int_eq(r->code, 200);
    ck_assert_str_eq(r->body, "");

    /* Several requests on one connection (keep-alive). */
    raw(port,
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        r);
    ck_assert_int_eq(r->code, 200);
    ck_assert_ptr_nonnull(strstr(r->body, "HTTP/1.1 200"));

    bs_http_stop(h);
    bs_http_stop(NULL);
    free(r);
}
END_TEST

START_TEST(test_ready_and_errors)
{
    struct bs_http *h = start(&ops);
    int port = bs_http_port(h);
    struct resp *r = calloc(1, sizeof *r);

    atomic_store(&ready_flag, false);
    get(port, "GET", "/ready", r);
    ck_assert_int_eq(r->code, 503);
    ck_assert_str_eq(r->body, "not ready\n");
    atomic_store(&ready_flag, true);
    get(port, "GET", "/ready", r);
    ck_assert_int_eq(r->code, 200);
    ck_assert_str_eq(r->body, "ready\n");

    /* A failing callback: 500 with the code's text. */
    atomic_store(&fail_metrics, BS_ESTOPPED);
    get(port, "GET", "/metrics", r);
    ck_assert_int_eq(r->code, 500);
    ck_assert_str_eq(r->body, "error: stopped\n");
    atomic_store(&fail_metrics, 0);
    get(port, "GET", "/metrics", r);
    ck_assert_int_eq(r->code, 200);
    bs_http_stop(h);

    /* No callbacks: only /health. */
    {
        static const struct bs_http_ops none = {NULL, NULL, NULL, NULL};

        h = start(&none);
        port = bs_http_port(h);
        get(port, "GET", "/health", r);
        ck_assert_int_eq(r->code, 200);
        get(port, "GET", "/metrics", r);
        ck_assert_int_eq(r->code, 404);
        get(port, "GET", "/ready", r);
        ck_assert_int_eq(r->code, 404);
        bs_http_stop(h);
    }
    free(r);
}
END_TEST

START_TEST(test_addresses)
{
    char err[BS_HTTP_ERRMSG_SIZE], addr[64];
    struct bs_http *h = (struct bs_http *)1, *h2 = NULL;
    const char *bad[] = {"",        "nocolon",      "1.2.3.4:99999",
                         "host:-1", "127.0.0.1:",   "[::1",
                         "::1:80",  "127.0.0.1:8x", "127.0.0.1: 80",
                         "[::1]80"};
    struct resp *r = calloc(1, sizeof *r);

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        ck_assert_msg(bs_http_start(bad[i], &ops, &h, err) == BS_EINVAL, "%s",
                      bad[i]);
        ck_assert_ptr_null(h);
        ck_assert_str_ne(err, "");
    }
    ck_assert_int_eq(bs_http_start(NULL, &ops, &h, err), BS_EINVAL);
    ck_assert_int_eq(bs_http_start("no-such-host.invalid:80", &ops, &h, err),
                     BS_EINVAL);

    /* A port in use. */
    h = start(&ops);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", bs_http_port(h));
    ck_assert_int_eq(bs_http_start(addr, &ops, &h2, err), BS_EIO);
    ck_assert_ptr_nonnull(strstr(err, addr));
    bs_http_stop(h);
    /* Free again once stopped. */
    ck_assert_int_eq(bs_http_start(addr, &ops, &h, err), 0);
    get(bs_http_port(h), "GET", "/health", r);
    ck_assert_int_eq(r->code, 200);
    bs_http_stop(h);

    /* Every address; a name. */
    ck_assert_int_eq(bs_http_start(":0", &ops, &h, err), 0);
    get(bs_http_port(h), "GET", "/health", r);
    ck_assert_int_eq(r->code, 200);
    bs_http_stop(h);
    ck_assert_int_eq(bs_http_start("localhost:0", &ops, &h, err), 0);
    bs_http_stop(h);
    /* IPv6 loopback, where the machine has it. */
    if (bs_http_start("[::1]:0", &ops, &h, err) == 0) {
        ck_assert_int_gt(bs_http_port(h), 0);
        bs_http_stop(h);
    }
    free(r);
}
END_TEST

START_TEST(test_prom)
{
    struct bs_prom p = {0};
    char labels[64] = "", small[12] = "";
    char *body;
    size_t len;

    bs_prom_metric(&p, "basalt_raft_term", "gauge",
                   "Raft term of a replica.\nSee \\docs.");
    ck_assert_int_eq(bs_prom_label(labels, sizeof labels, "shard", "3"), 0);
    ck_assert_int_eq(bs_prom_label(labels, sizeof labels, "addr", "a\"b\\c\nd"),
                     0);
    ck_assert_str_eq(labels, "shard=\"3\",addr=\"a\\\"b\\\\c\\nd\"");
    bs_prom_sample(&p, "basalt_raft_term", labels, 7);
    bs_prom_sample(&p, "basalt_raft_term", "shard=\"4\"", 1e20);
    /* Declaring the current metric again adds nothing. */
    bs_prom_metric(&p, "basalt_raft_term", "gauge", "again");
    bs_prom_sample(&p, "basalt_raft_term", "", 0.1);
    bs_prom_metric(&p, "basalt:proposals_total", "counter", NULL);
    bs_prom_sample(&p, "basalt:proposals_total", NULL, 18446744073709551616.0);
    bs_prom_sample(&p, "basalt:proposals_total", "k=\"nan\"", NAN);
    bs_prom_sample(&p, "basalt:proposals_total", "k=\"inf\"", INFINITY);
    bs_prom_sample(&p, "basalt:proposals_total", "k=\"-inf\"", -INFINITY);
    bs_prom_sample(&p, "basalt:proposals_total", "k=\"neg\"", -2.5);
    ck_assert_int_eq(bs_prom_finish(&p, &body, &len), 0);
    ck_assert_str_eq(body, "# HELP basalt_raft_term Raft term of a "
                           "replica.\\nSee \\\\docs.\n"
                           "# TYPE basalt_raft_term gauge\n"
                           "basalt_raft_term{shard=\"3\",addr=\"a\\\"b\\\\c"
                           "\\nd\"} 7\n"
                           "basalt_raft_term{shard=\"4\"} 1e+20\n"
                           "basalt_raft_term 0.1\n"
                           "# TYPE basalt:proposals_total counter\n"
                           "basalt:proposals_total 1.8446744073709552e+19\n"
                           "basalt:proposals_total{k=\"nan\"} NaN\n"
                           "basalt:proposals_total{k=\"inf\"} +Inf\n"
                           "basalt:proposals_total{k=\"-inf\"} -Inf\n"
                           "basalt:proposals_total{k=\"neg\"} -2.5\n");
    ck_assert_uint_eq(len, strlen(body));
    ck_assert_ptr_null(p.buf);
    free(body);

    /* Nothing at all: an empty body. */
    ck_assert_int_eq(bs_prom_finish(&p, &body, &len), 0);
    ck_assert_str_eq(body, "");
    ck_assert_uint_eq(len, 0);
    free(body);

    /* Refusals: the first error sticks, and nothing is returned. */
    bs_prom_metric(&p, "9lives", "gauge", NULL);
    ck_assert_int_eq(p.err, BS_EINVAL);
    bs_prom_metric(&p, "fine", "gauge", NULL);
    ck_assert_int_eq(bs_prom_finish(&p, &body, &len), BS_EINVAL);
    ck_assert_ptr_null(body);
    bs_prom_metric(&p, "a", "histogram", NULL);
    ck_assert_int_eq(p.err, BS_EINVAL);
    bs_prom_free(&p);
    bs_prom_metric(&p, "a-b", "gauge", NULL);
    ck_assert_int_eq(p.err, BS_EINVAL);
    bs_prom_free(&p);
    bs_prom_sample(&p, "undeclared", NULL, 1);
    ck_assert_int_eq(p.err, BS_EINVAL);
    bs_prom_free(&p);
    bs_prom_metric(&p, "a", "gauge", NULL);
    bs_prom_sample(&p, "b", NULL, 1);
    ck_assert_int_eq(p.err, BS_EINVAL);
    bs_prom_free(&p);
    bs_prom_metric(&p, "a", "gauge", NULL);
    bs_prom_sample(&p, "a", "x=\"1\"\ny", 1);
    ck_assert_int_eq(p.err, BS_EINVAL);
    bs_prom_free(&p);
    /* A metric declared again after another: its samples would split. */
    bs_prom_metric(&p, "a", "gauge", NULL);
    bs_prom_metric(&p, "ab", "gauge", NULL);
    bs_prom_metric(&p, "b", "gauge", NULL);
    ck_assert_int_eq(p.err, 0);
    bs_prom_metric(&p, "a", "gauge", NULL);
    ck_assert_int_eq(p.err, BS_EINVAL);
    bs_prom_free(&p);
    bs_prom_free(NULL);

    /* Labels that do not fit leave the list alone. */
    ck_assert_int_eq(bs_prom_label(small, sizeof small, "a", "1234"), 0);
    ck_assert_int_eq(bs_prom_label(small, sizeof small, "b", "1"), BS_ETOOBIG);
    ck_assert_str_eq(small, "a=\"1234\"");
    ck_assert_int_eq(bs_prom_label(small, sizeof small, "b:c", "1"), BS_EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rpc_http");
    TCase *tc = tcase_create("http");

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_ready_and_errors);
    tcase_add_test(tc, test_addresses);
    tcase_add_test(tc, test_prom);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
