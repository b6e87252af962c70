/*
 * test_client.c - unit tests of rpc/client.c against bs_rpc_servers on
 * 127.0.0.1 with kernel-chosen ports: a reply (and an empty one), error
 * statuses with their messages and codes, failover (a dead first
 * endpoint, a live one answering UNAVAILABLE, every endpoint dead), the
 * deadline, the endpoint list's syntax, and concurrent calls from several
 * threads. Check forks each test, so each starts and stops gRPC in its
 * own process, as in test_server.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "server.h"

/* ------------------------------------------------------------ helpers */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port nobody listens on (bound, read, released). */
static int free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------- server-side methods */

/* Echo, prefixed with the server's name (its ctx). */
static void echo(struct bs_rpc_call *call, const void *req, size_t len,
                 void *ctx)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s:", (const char *)ctx);

    ck_assert_uint_lt(n + len, sizeof buf);
    memcpy(buf + n, req, len);
    bs_rpc_call_reply(call, buf, n + len);
}

static void empty(struct bs_rpc_call *call, const void *req, size_t len,
                  void *ctx)
{
    bs_rpc_call_reply(call, NULL, 0);
}

static void fail_stale(struct bs_rpc_call *call, const void *req, size_t len,
                       void *ctx)
{
    bs_rpc_call_fail(call, BS_ESTALE, "route epoch 7 is stale");
}

static void fail_precondition(struct bs_rpc_call *call, const void *req,
                              size_t len, void *ctx)
{
    bs_rpc_call_fail_status(call, BS_RPC_FAILED_PRECONDITION,
                            "historical revisions are not supported");
}

static void fail_not_leader(struct bs_rpc_call *call, const void *req,
                            size_t len, void *ctx)
{
    bs_rpc_call_fail(call, BS_ENOTLEADER, "not the leader of shard 3");
}

/* Calls to Hold are kept, and answered by the test. */
static struct bs_rpc_call *_Atomic held;

static void hold(struct bs_rpc_call *call, const void *req, size_t len,
                 void *ctx)
{
    atomic_store(&held, call);
}

/* A server on 127.0.0.1 (any port) named name; "Maybe" is echo, or
 * not-the-leader when maybe_fails. */
static struct bs_rpc_server *server_start(const char *name, bool maybe_fails)
{
    struct bs_rpc_server_opts o;
    struct bs_rpc_server *srv = NULL;
    char err[BS_RPC_ERRMSG_SIZE];
    int rc;

    bs_rpc_server_opts_init(&o);
    o.addr = "127.0.0.1:0";
    ck_assert_int_eq(bs_rpc_server_create(&o, &srv, err), 0);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(srv, "/test.T/Echo", echo, (void *)name), 0);
    ck_assert_int_eq(bs_rpc_server_add_unary(srv, "/test.T/Empty", empty, NULL),
                     0);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(srv, "/test.T/Stale", fail_stale, NULL), 0);
    ck_assert_int_eq(bs_rpc_server_add_unary(srv, "/test.T/Precond",
                                             fail_precondition, NULL),
                     0);
    ck_assert_int_eq(bs_rpc_server_add_unary(
                         srv, "/test.T/Maybe",
                         maybe_fails ? fail_not_leader : echo, (void *)name),
                     0);
    ck_assert_int_eq(bs_rpc_server_add_unary(srv, "/test.T/Hold", hold, NULL),
                     0);
    rc = bs_rpc_server_start(srv);
    ck_assert_msg(rc == 0, "start: %s", bs_rpc_server_errmsg(srv));
    return srv;
}

/* A connection to 127.0.0.1:p1 and, if p2 is not 0, 127.0.0.1:p2; with
 * blanks and an "http://" prefix when fancy. */
static struct bs_rpc_conn *conn_open(int p1, int p2, bool fancy)
{
    char eps[256], err[BS_RPC_CONN_ERRMSG_SIZE];
    struct bs_rpc_conn *c = NULL;
    int rc;

    if (p2 == 0)
        snprintf(eps, sizeof eps, "127.0.0.1:%d", p1);
    else if (fancy)
        snprintf(eps, sizeof eps, " http://127.0.0.1:%d , 127.0.0.1:%d\t", p1,
                 p2);
    else
        snprintf(eps, sizeof eps, "127.0.0.1:%d,127.0.0.1:%d", p1, p2);
    rc = bs_rpc_conn_open(eps, &c, err);
    ck_assert_msg(rc == 0, "open %s: %s", eps, err);
    return c;
}

/* Calls and expects success with the reply want. */
static void call_ok(struct bs_rpc_conn *c, const char *method, const char *req,
                    const char *want)
{
    char err[BS_RPC_CONN_ERRMSG_SIZE] = "";
    enum bs_rpc_status st = BS_RPC_UNKNOWN;
    uint8_t *resp;
    size_t len;
    int rc = bs_rpc_conn_call(c, method, req, strlen(req), 10000, &resp, &len,
                              &st, err);

    ck_assert_msg(rc == 0, "%s: %s (%s)", method, bs_err_name(rc), err);
    ck_assert_int_eq(st, BS_RPC_OK);
    ck_assert_ptr_nonnull(resp);
    ck_assert_msg(len == strlen(want) && memcmp(resp, want, len) == 0,
                  "got '%.*s', want '%s'", (int)len, (char *)resp, want);
    free(resp);
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_reply)
{
    struct bs_rpc_server *srv = server_start("a", false);
    struct bs_rpc_conn *c = conn_open(bs_rpc_server_port(srv), 0, false);
    char err[BS_RPC_CONN_ERRMSG_SIZE];
    uint8_t *resp;
    size_t len;

    call_ok(c, "/test.T/Echo", "hello", "a:hello");
    call_ok(c, "/test.T/Echo", "", "a:");
    /* An empty message is a message; *resp is still a buffer. */
    ck_assert_int_eq(bs_rpc_conn_call(c, "/test.T/Empty", NULL, 0, 10000, &resp,
                                      &len, NULL, err),
                     0);
    ck_assert_ptr_nonnull(resp);
    ck_assert_uint_eq(len, 0);
    free(resp);
    /* No method. */
    ck_assert_int_eq(
        bs_rpc_conn_call(c, "", NULL, 0, 10000, &resp, &len, NULL, err),
        BS_EINVAL);
    ck_assert_ptr_null(resp);
    ck_assert_uint_eq(bs_rpc_conn_n_endpoints(c), 1);
    bs_rpc_conn_close(c);
    bs_rpc_server_destroy(srv);
}
END_TEST

START_TEST(test_error_status)
{
    struct bs_rpc_server *srv = server_start("a", false);
    struct bs_rpc_conn *c = conn_open(bs_rpc_server_port(srv), 0, false);
    char err[BS_RPC_CONN_ERRMSG_SIZE];
    enum bs_rpc_status st;
    uint8_t *resp = (uint8_t *)"x";
    size_t len = 1;

    /* A Basalt code crosses exactly, with the server's message. */
    ck_assert_int_eq(bs_rpc_conn_call(c, "/test.T/Stale", "x", 1, 10000, &resp,
                                      &len, &st, err),
                     BS_ESTALE);
    ck_assert_int_eq(st, BS_RPC_FAILED_PRECONDITION);
    ck_assert_str_eq(err, "route epoch 7 is stale");
    ck_assert_ptr_null(resp);
    ck_assert_uint_eq(len, 0);

    /* A status without a code. */
    ck_assert_int_eq(bs_rpc_conn_call(c, "/test.T/Precond", "x", 1, 10000,
                                      &resp, &len, &st, err),
                     bs_rpc_err_from_status(BS_RPC_FAILED_PRECONDITION));
    ck_assert_int_eq(st, BS_RPC_FAILED_PRECONDITION);
    ck_assert_str_eq(err, "historical revisions are not supported");

    /* An unknown method. */
    ck_assert_int_eq(bs_rpc_conn_call(c, "/test.T/Nope", "x", 1, 10000, &resp,
                                      &len, &st, err),
                     BS_ENOTIMPL);
    ck_assert_int_eq(st, BS_RPC_UNIMPLEMENTED);
    ck_assert_str_ne(err, "");

    /* The only endpoint answers UNAVAILABLE: nowhere else to go. */
    srv = (bs_rpc_server_destroy(srv), server_start("b", true));
    bs_rpc_conn_close(c);
    c = conn_open(bs_rpc_server_port(srv), 0, false);
    ck_assert_int_eq(bs_rpc_conn_call(c, "/test.T/Maybe", "x", 1, 10000, &resp,
                                      &len, &st, err),
                     BS_ENOTLEADER);
    ck_assert_int_eq(st, BS_RPC_UNAVAILABLE);
    ck_assert_str_eq(err, "not the leader of shard 3");
    bs_rpc_conn_close(c);
    bs_rpc_server_destroy(srv);
}
END_TEST

START_TEST(test_failover)
{
    struct bs_rpc_server *a = server_start("a", true);
    struct bs_rpc_server *b = server_start("b", false);
    int dead = free_port();
    char err[BS_RPC_CONN_ERRMSG_SIZE];
    enum bs_rpc_status st;
    struct bs_rpc_conn *c;
    uint8_t *resp;
    size_t len;

    /* The first endpoint is dead: the second answers. */
    c = conn_open(dead, bs_rpc_server_port(b), true);
    ck_assert_uint_eq(bs_rpc_conn_n_endpoints(c), 2);
    snprintf(err, sizeof err, "127.0.0.1:%d", dead);
    ck_assert_str_eq(bs_rpc_conn_endpoint(c, 0), err);
    ck_assert_ptr_null(bs_rpc_conn_endpoint(c, 2));
    call_ok(c, "/test.T/Echo", "x", "b:x");
    /* The next call starts with the one that answered. */
    call_ok(c, "/test.T/Echo", "y", "b:y");
    /* Asked alone, the dead one is unreachable, named in the message. */
    ck_assert_int_eq(bs_rpc_conn_call_one(c, 0, "/test.T/Echo", "x", 1, 10000,
                                          &resp, &len, &st, err),
                     BS_EUNREACHABLE);
    ck_assert_int_eq(st, BS_RPC_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err, bs_rpc_conn_endpoint(c, 0)));
    ck_assert_int_eq(bs_rpc_conn_call_one(c, 2, "/test.T/Echo", "x", 1, 10000,
                                          &resp, &len, &st, err),
                     BS_EINVAL);
    bs_rpc_conn_close(c);

    /* A live endpoint answering UNAVAILABLE (not the leader): the next
     * one is tried; a definite error is not retried elsewhere. */
    c = conn_open(bs_rpc_server_port(a), bs_rpc_server_port(b), false);
    call_ok(c, "/test.T/Maybe", "z", "b:z");
    bs_rpc_conn_close(c);
    c = conn_open(bs_rpc_server_port(a), bs_rpc_server_port(b), false);
    ck_assert_int_eq(bs_rpc_conn_call(c, "/test.T/Stale", "x", 1, 10000, &resp,
                                      &len, &st, err),
                     BS_ESTALE);
    bs_rpc_conn_close(c);

    /* Every endpoint dead. */
    c = conn_open(dead, free_port(), false);
    ck_assert_int_eq(bs_rpc_conn_call(c, "/test.T/Echo", "x", 1, 10000, &resp,
                                      &len, &st, err),
                     BS_EUNREACHABLE);
    ck_assert_ptr_null(resp);
    ck_assert_ptr_nonnull(strstr(err, "127.0.0.1:"));
    bs_rpc_conn_close(c);
    bs_rpc_server_destroy(a);
    bs_rpc_server_destroy(b);
}
END_TEST

START_TEST(test_deadline)
{
    struct bs_rpc_server *srv = server_start("a", false);
    struct bs_rpc_conn *c = conn_open(bs_rpc_server_port(srv), 0, false);
    char err[BS_RPC_CONN_ERRMSG_SIZE];
    enum bs_rpc_status st;
    struct bs_rpc_call *call;
    uint8_t *resp;
    size_t len;
    int64_t t0, dt;

    /* Connect first, so that the deadline measures the call only. */
    call_ok(c, "/test.T/Echo", "x", "a:x");
    t0 = now_ms();
    ck_assert_int_eq(
        bs_rpc_conn_call(c, "/test.T/Hold", "x", 1, 300, &resp, &len, &st, err),
        BS_ETIMEDOUT);
    dt = now_ms() - t0;
    ck_assert_int_eq(st, BS_RPC_DEADLINE_EXCEEDED);
    ck_assert_ptr_null(resp);
    ck_assert_int_ge(dt, 250);
    ck_assert_int_lt(dt, 5000);
    ck_assert_str_ne(err, "");
    /* The held call must still be answered; it has ended. */
    while ((call = atomic_load(&held)) == NULL)
        usleep(1000);
    bs_rpc_call_reply(call, "late", 4);

    /* A deadline of 0 has passed already. */
    ck_assert_int_eq(
        bs_rpc_conn_call(c, "/test.T/Echo", "x", 1, 0, &resp, &len, &st, err),
        BS_ETIMEDOUT);
    ck_assert_int_eq(st, BS_RPC_UNKNOWN);
    /* No deadline. */
    ck_assert_int_eq(
        bs_rpc_conn_call(c, "/test.T/Echo", "x", 1, -1, &resp, &len, &st, err),
        0);
    free(resp);
    bs_rpc_conn_close(c);
    bs_rpc_server_destroy(srv);
}
END_TEST

START_TEST(test_open_refuses)
{
    char err[BS_RPC_CONN_ERRMSG_SIZE], many[64 * 20];
    struct bs_rpc_conn *c = (struct bs_rpc_conn *)1;
    size_t n = 0;

    ck_assert_int_eq(bs_rpc_conn_open(NULL, &c, err), BS_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(bs_rpc_conn_open("", &c, err), BS_EINVAL);
    ck_assert_int_eq(bs_rpc_conn_open(" , ", &c, err), BS_EINVAL);
    ck_assert_int_eq(bs_rpc_conn_open("a:1,,b:2", &c, err), BS_EINVAL);
    ck_assert_int_eq(bs_rpc_conn_open("a:1,", &c, err), BS_EINVAL);
    ck_assert_int_eq(bs_rpc_conn_open("http://", &c, err), BS_EINVAL);
    ck_assert_int_eq(bs_rpc_conn_open("https://a:1", &c, err), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "TLS"));
    for (int i = 0; i <= BS_RPC_CONN_MAX_ENDPOINTS; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%sh%d:1",
                              i ? "," : "", i);
    ck_assert_int_eq(bs_rpc_conn_open(many, &c, err), BS_EINVAL);
    ck_assert_ptr_null(c);
    bs_rpc_conn_close(NULL);
}
END_TEST

/* Four threads, 100 calls each, on one connection. */
struct conc_arg {
    struct bs_rpc_conn *c;
    int id;
    atomic_int *bad;
};

static void *conc_main(void *p)
{
    struct conc_arg *a = p;

    for (int i = 0; i < 100; i++) {
        char req[32], want[40], err[BS_RPC_CONN_ERRMSG_SIZE];
        uint8_t *resp;
        size_t len;

        snprintf(req, sizeof req, "t%d-%d", a->id, i);
        snprintf(want, sizeof want, "a:%s", req);
        if (bs_rpc_conn_call(a->c, "/test.T/Echo", req, strlen(req), 10000,
                             &resp, &len, NULL, err) != 0 ||
            len != strlen(want) || memcmp(resp, want, len) != 0)
            atomic_fetch_add(a->bad, 1);
        else
            free(resp);
    }
    return NULL;
}

START_TEST(test_concurrent)
{
    struct bs_rpc_server *srv = server_start("a", false);
    struct bs_rpc_conn *c = conn_open(bs_rpc_server_port(srv), 0, false);
    atomic_int bad = 0;
    struct conc_arg args[4];
    pthread_t t[4];

    for (int i = 0; i < 4; i++) {
        args[i] = (struct conc_arg){c, i, &bad};
        pthread_create(&t[i], NULL, conc_main, &args[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&bad), 0);
    bs_rpc_conn_close(c);
    bs_rpc_server_destroy(srv);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rpc_client");
    TCase *tc = tcase_create("client");

    /* valgrind needs far more than the second or two this takes. */
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_reply);
    tcase_add_test(tc, test_error_status);
    tcase_add_test(tc, test_failover);
    tcase_add_test(tc, test_deadline);
    tcase_add_test(tc, test_open_refuses);
    tcase_add_test(tc, test_concurrent);
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
