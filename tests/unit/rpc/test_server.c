/*
 * test_server.c - unit tests of rpc/server.c and rpc/channel.c on
 * 127.0.0.1 with ports chosen by the kernel: unary echo and error codes
 * across the wire, 1000 concurrent calls, answers from another thread
 * (and after the deadline), unknown methods, oversized messages in both
 * directions, a bidirectional stream of 10,000 messages in order, a peer
 * that is down (sends dropped and reported) and then comes up (the stream
 * reconnects), and shutdowns with calls and streams in flight on either
 * side. Payloads are raw bytes: no protobuf at this layer.
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

#include "channel.h"
#include "server.h"

/* ------------------------------------------------------------ helpers */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* A plain read of an atomic, for readable assertion messages. */
static int ld(atomic_int *a)
{
    return atomic_load(a);
}

/* A counter that tests wait on. */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
};

static void w_init(struct waiter *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->n = 0;
}

static void w_destroy(struct waiter *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

static void w_add(struct waiter *w, int k)
{
    pthread_mutex_lock(&w->mu);
    w->n += k;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int w_get(struct waiter *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Waits until the count reaches target; false after timeout_ms. */
static bool w_wait(struct waiter *w, int target, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->mu);
    while (w->n < target)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0)
            break;
    bool ok = w->n >= target;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

/* Generous: valgrind slows everything down by an order of magnitude. */
#define WAIT_MS 60000

/* A port nobody listens on (bound, read, released). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t n = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------- server-side methods */

static void echo(struct bs_rpc_call *call, const void *req, size_t len,
                 void *ctx)
{
    (void)ctx;
    ck_assert_int_eq(bs_rpc_call_reply(call, req, len), 0);
}

static void fail_stale(struct bs_rpc_call *call, const void *req, size_t len,
                       void *ctx)
{
    (void)req;
    (void)len;
    (void)ctx;
    bs_rpc_call_fail(call, BS_ESTALE, "route epoch 7 is stale");
}

static void fail_precondition(struct bs_rpc_call *call, const void *req,
                              size_t len, void *ctx)
{
    (void)req;
    (void)len;
    (void)ctx;
    bs_rpc_call_fail_status(call, BS_RPC_FAILED_PRECONDITION,
                            "historical revisions are not supported");
}

/* Calls handed to "Hold", answered later by the test's own thread. */
struct held {
    pthread_mutex_t mu;
    struct bs_rpc_call *calls[256];
    char *reqs[256];
    int n;
    struct waiter arrived;
};

static struct held held;

static void hold(struct bs_rpc_call *call, const void *req, size_t len,
                 void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&held.mu);
    ck_assert_int_lt(held.n, 256);
    held.reqs[held.n] = strndup(req, len);
    held.calls[held.n++] = call;
    pthread_mutex_unlock(&held.mu);
    w_add(&held.arrived, 1);
}

/* Takes the oldest held call (NULL if none); *req is the caller's. */
static struct bs_rpc_call *held_pop(char **req)
{
    struct bs_rpc_call *c = NULL;
    pthread_mutex_lock(&held.mu);
    if (held.n > 0) {
        c = held.calls[0];
        *req = held.reqs[0];
        held.n--;
        memmove(held.calls, held.calls + 1, held.n * sizeof(*held.calls));
        memmove(held.reqs, held.reqs + 1, held.n * sizeof(*held.reqs));
    }
    pthread_mutex_unlock(&held.mu);
    return c;
}

/* The stream method: checks that message i reads "m<i>", echoes it back,
 * and closes OK when the client closes (or at on_end in any case). */
struct sstate {
    struct bs_rpc_sstream *s;
    unsigned next;
    bool closed;
    int end_rc;
};

static struct waiter srv_msgs, srv_ends;
static atomic_int srv_order_errors, srv_send_errors;

static void *ss_open(struct bs_rpc_sstream *s, void *ctx)
{
    (void)ctx;
    struct sstate *st = calloc(1, sizeof(*st));
    ck_assert_ptr_nonnull(st);
    st->s = s;
    ck_assert_str_eq(bs_rpc_sstream_method(s), "/test.Echo/Stream");
    return st;
}

static void ss_msg(struct bs_rpc_sstream *s, void *sctx, const void *data,
                   size_t len)
{
    struct sstate *st = sctx;
    char want[32];
    int n = snprintf(want, sizeof(want), "m%u", st->next++);
    if ((size_t)n != len || memcmp(want, data, len) != 0)
        atomic_fetch_add(&srv_order_errors, 1);
    if (bs_rpc_sstream_send(s, data, len) != 0)
        atomic_fetch_add(&srv_send_errors, 1);
    w_add(&srv_msgs, 1);
}

static void ss_end(struct bs_rpc_sstream *s, void *sctx, int rc)
{
    struct sstate *st = sctx;
    st->end_rc = rc;
    bs_rpc_sstream_close(s, 0, NULL);
    free(st);
    w_add(&srv_ends, 1);
}

static const struct bs_rpc_stream_ops echo_stream_ops = {
    .on_open = ss_open,
    .on_msg = ss_msg,
    .on_end = ss_end,
};

/* A sink stream that only counts what arrives. */
static struct waiter sink_msgs;

static void *sink_open(struct bs_rpc_sstream *s, void *ctx)
{
    (void)s;
    return ctx;
}

static void sink_msg(struct bs_rpc_sstream *s, void *sctx, const void *data,
                     size_t len)
{
    (void)s;
    (void)sctx;
    (void)data;
    (void)len;
    w_add(&sink_msgs, 1);
}

static void sink_end(struct bs_rpc_sstream *s, void *sctx, int rc)
{
    (void)sctx;
    (void)rc;
    bs_rpc_sstream_close(s, 0, NULL);
}

static const struct bs_rpc_stream_ops sink_ops = {
    .on_open = sink_open,
    .on_msg = sink_msg,
    .on_end = sink_end,
};

/* Starts a server on 127.0.0.1:port (0: any) with every test method. */
static struct bs_rpc_server *server_start(int port, int64_t max_recv)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    struct bs_rpc_server_opts o;
    bs_rpc_server_opts_init(&o);
    o.addr = addr;
    if (max_recv)
        o.max_recv_bytes = max_recv;
    o.stream_max_queued = 20000;
    struct bs_rpc_server *srv = NULL;
    char err[BS_RPC_ERRMSG_SIZE];
    ck_assert_int_eq(bs_rpc_server_create(&o, &srv, err), 0);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(srv, "/test.Echo/Echo", echo, NULL), 0);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(srv, "/test.Echo/Echo", echo, NULL), BS_EEXIST);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(srv, "/test.Echo/Stale", fail_stale, NULL), 0);
    ck_assert_int_eq(bs_rpc_server_add_unary(srv, "/test.Echo/Precond",
                                             fail_precondition, NULL),
                     0);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(srv, "/test.Echo/Hold", hold, NULL), 0);
    ck_assert_int_eq(bs_rpc_server_add_stream(srv, "/test.Echo/Stream",
                                              &echo_stream_ops, NULL),
                     0);
    ck_assert_int_eq(
        bs_rpc_server_add_stream(srv, "/test.Raft/Sink", &sink_ops, NULL), 0);
    int rc = bs_rpc_server_start(srv);
    ck_assert_msg(rc == 0, "start: %s", bs_rpc_server_errmsg(srv));
    ck_assert_int_gt(bs_rpc_server_port(srv), 0);
    if (port)
        ck_assert_int_eq(bs_rpc_server_port(srv), port);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(srv, "/test.Echo/Late", echo, NULL), BS_EINVAL);
    return srv;
}

static struct bs_rpc_channel *channel_to(struct bs_rpc_client *cl, int port,
                                         const struct bs_rpc_channel_opts *o)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    struct bs_rpc_channel *ch = NULL;
    ck_assert_int_eq(bs_rpc_channel_create(cl, addr, o, &ch), 0);
    ck_assert_str_eq(bs_rpc_channel_addr(ch), addr);
    return ch;
}

static struct bs_rpc_client *client_new(void)
{
    struct bs_rpc_client *cl = NULL;
    ck_assert_int_eq(bs_rpc_client_create(0, &cl), 0);
    return cl;
}

/* --------------------------------------------- client-side call helper */

/* The copy of one result, filled by the callback. */
struct reply {
    struct waiter done;
    int rc;
    int status;
    char msg[256];
    char *data;
    size_t len;
};

static void reply_init(struct reply *r)
{
    memset(r, 0, sizeof(*r));
    w_init(&r->done);
}

static void reply_free(struct reply *r)
{
    free(r->data);
    w_destroy(&r->done);
}

static void on_reply(void *ctx, const struct bs_rpc_result *res)
{
    struct reply *r = ctx;
    r->rc = res->rc;
    r->status = res->status;
    ck_assert_ptr_nonnull(res->msg);
    snprintf(r->msg, sizeof(r->msg), "%s", res->msg);
    if (res->rc == 0) {
        r->data = malloc(res->len + 1);
        memcpy(r->data, res->data, res->len);
        r->data[res->len] = '\0';
        r->len = res->len;
    } else {
        ck_assert_ptr_null(res->data);
    }
    w_add(&r->done, 1);
}

/* Calls and waits for the result. */
static void call_sync(struct bs_rpc_channel *ch, const char *method,
                      const void *req, size_t len, int64_t timeout_ms,
                      struct reply *r)
{
    reply_init(r);
    ck_assert_int_eq(
        bs_rpc_channel_call(ch, method, req, len, timeout_ms, on_reply, r), 0);
    ck_assert(w_wait(&r->done, 1, WAIT_MS));
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_unary_echo)
{
    struct bs_rpc_server *srv = server_start(0, 0);
    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel *ch = channel_to(cl, bs_rpc_server_port(srv), NULL);

    struct reply r;
    call_sync(ch, "/test.Echo/Echo", "hello", 5, 10000, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.status, BS_RPC_OK);
    ck_assert_uint_eq(r.len, 5);
    ck_assert_str_eq(r.data, "hello");
    reply_free(&r);

    /* An empty message is a message (protobuf's empty request). */
    call_sync(ch, "/test.Echo/Echo", NULL, 0, 10000, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.len, 0);
    reply_free(&r);

    /* A Basalt error code crosses the wire exactly ("bs-err"), with the
     * status a non-Basalt client would see. */
    call_sync(ch, "/test.Echo/Stale", "x", 1, 10000, &r);
    ck_assert_int_eq(r.rc, BS_ESTALE);
    ck_assert_int_eq(r.status, BS_RPC_FAILED_PRECONDITION);
    ck_assert_str_eq(r.msg, "route epoch 7 is stale");
    reply_free(&r);

    /* An explicit status without a code: converted from the status. */
    call_sync(ch, "/test.Echo/Precond", "x", 1, 10000, &r);
    ck_assert_int_eq(r.status, BS_RPC_FAILED_PRECONDITION);
    ck_assert_int_eq(r.rc, bs_rpc_err_from_status(BS_RPC_FAILED_PRECONDITION));
    ck_assert_str_eq(r.msg, "historical revisions are not supported");
    reply_free(&r);

    bs_rpc_channel_destroy(ch);
    bs_rpc_client_destroy(cl);
    bs_rpc_server_destroy(srv);
}
END_TEST

/* 1000 calls in flight at once over one channel, each answered with its
 * own payload. */
#define NCONC 1000

struct conc {
    struct waiter done;
    atomic_int ok, bad;
    char reqs[NCONC][16];
};

struct conc_one {
    struct conc *c;
    int i;
};

static void on_conc(void *ctx, const struct bs_rpc_result *res)
{
    struct conc_one *o = ctx;
    const char *want = o->c->reqs[o->i];
    if (res->rc == 0 && res->len == strlen(want) &&
        memcmp(res->data, want, res->len) == 0)
        atomic_fetch_add(&o->c->ok, 1);
    else
        atomic_fetch_add(&o->c->bad, 1);
    w_add(&o->c->done, 1);
}

START_TEST(test_unary_concurrent)
{
    struct bs_rpc_server *srv = server_start(0, 0);
    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel *ch = channel_to(cl, bs_rpc_server_port(srv), NULL);
    struct conc *c = calloc(1, sizeof(*c));
    struct conc_one *one = calloc(NCONC, sizeof(*one));
    w_init(&c->done);
    for (int i = 0; i < NCONC; i++) {
        snprintf(c->reqs[i], sizeof(c->reqs[i]), "req-%d", i);
        one[i].c = c;
        one[i].i = i;
        ck_assert_int_eq(bs_rpc_channel_call(ch, "/test.Echo/Echo", c->reqs[i],
                                             strlen(c->reqs[i]), WAIT_MS,
                                             on_conc, &one[i]),
                         0);
    }
    ck_assert(w_wait(&c->done, NCONC, WAIT_MS));
    ck_assert_int_eq(ld(&c->ok), NCONC);
    ck_assert_int_eq(ld(&c->bad), 0);
    bs_rpc_channel_destroy(ch);
    bs_rpc_client_destroy(cl);
    bs_rpc_server_destroy(srv);
    w_destroy(&c->done);
    free(one);
    free(c);
}
END_TEST

/* The handler keeps the call; another thread answers it later. */
struct answerer {
    int n;        /* calls to answer */
    int delay_ms; /* before each answer */
    int results[8];
};

static void *answer_main(void *arg)
{
    struct answerer *a = arg;
    for (int i = 0; i < a->n; i++) {
        ck_assert(w_wait(&held.arrived, i + 1, WAIT_MS));
        sleep_ms(a->delay_ms);
        char *req = NULL;
        struct bs_rpc_call *call = held_pop(&req);
        ck_assert_ptr_nonnull(call);
        ck_assert_str_eq(bs_rpc_call_method(call), "/test.Echo/Hold");
        char resp[64];
        snprintf(resp, sizeof(resp), "late:%s", req);
        a->results[i] = bs_rpc_call_reply(call, resp, strlen(resp));
        free(req);
    }
    return NULL;
}

START_TEST(test_async_reply)
{
    struct bs_rpc_server *srv = server_start(0, 0);
    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel *ch = channel_to(cl, bs_rpc_server_port(srv), NULL);

    struct answerer a = {.n = 1, .delay_ms = 50};
    pthread_t t;
    pthread_create(&t, NULL, answer_main, &a);
    struct reply r;
    call_sync(ch, "/test.Echo/Hold", "put", 3, WAIT_MS, &r);
    pthread_join(t, NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(r.data, "late:put");
    ck_assert_int_eq(a.results[0], 0);
    reply_free(&r);

    /* A deadline that passes before the answer: the client gets
     * BS_ETIMEDOUT; the server's handle stays valid, says it is
     * cancelled, and the late answer reports BS_ESTOPPED. */
    call_sync(ch, "/test.Echo/Hold", "slow", 4, 200, &r);
    ck_assert_int_eq(r.rc, BS_ETIMEDOUT);
    ck_assert_int_eq(r.status, BS_RPC_DEADLINE_EXCEEDED);
    reply_free(&r);
    ck_assert(w_wait(&held.arrived, 2, WAIT_MS));
    char *req = NULL;
    struct bs_rpc_call *call = held_pop(&req);
    ck_assert_ptr_nonnull(call);
    ck_assert_str_eq(req, "slow");
    free(req);
    int64_t until = now_ms() + WAIT_MS;
    while (!bs_rpc_call_cancelled(call) && now_ms() < until)
        sleep_ms(5);
    ck_assert(bs_rpc_call_cancelled(call));
    ck_assert_int_eq(bs_rpc_call_reply(call, "too late", 8), BS_ESTOPPED);

    bs_rpc_channel_destroy(ch);
    bs_rpc_client_destroy(cl);
    bs_rpc_server_destroy(srv);
}
END_TEST

START_TEST(test_unknown_method)
{
    struct bs_rpc_server *srv = server_start(0, 0);
    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel *ch = channel_to(cl, bs_rpc_server_port(srv), NULL);
    struct reply r;
    call_sync(ch, "/etcdserverpb.Watch/Watch", "x", 1, 10000, &r);
    ck_assert_int_eq(r.status, BS_RPC_UNIMPLEMENTED);
    ck_assert_int_eq(r.rc, BS_ENOTIMPL);
    ck_assert_msg(strstr(r.msg, "/etcdserverpb.Watch/Watch") &&
                      strstr(r.msg, "not implemented"),
                  "message: %s", r.msg);
    reply_free(&r);
    /* The server still serves. */
    call_sync(ch, "/test.Echo/Echo", "ok", 2, 10000, &r);
    ck_assert_int_eq(r.rc, 0);
    reply_free(&r);
    bs_rpc_channel_destroy(ch);
    bs_rpc_client_destroy(cl);
    bs_rpc_server_destroy(srv);
}
END_TEST

START_TEST(test_oversized)
{
    /* A 64 KiB receive limit on the server, 16 KiB on one client. */
    struct bs_rpc_server *srv = server_start(0, 64 << 10);
    struct bs_rpc_client *cl = client_new();
    int port = bs_rpc_server_port(srv);
    struct bs_rpc_channel *ch = channel_to(cl, port, NULL);
    size_t big = 128 << 10;
    char *buf = malloc(big);
    memset(buf, 'b', big);

    struct reply r;
    call_sync(ch, "/test.Echo/Echo", buf, big, 10000, &r);
    ck_assert_int_eq(r.status, BS_RPC_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(r.rc, BS_ETOOBIG);
    ck_assert_msg(strstr(r.msg, "larger than max"), "message: %s", r.msg);
    reply_free(&r);

    /* Only that call ended: the same channel and server go on. */
    call_sync(ch, "/test.Echo/Echo", buf, 32 << 10, 10000, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.len, 32 << 10);
    reply_free(&r);

    /* The client's own limit applies to responses. */
    struct bs_rpc_channel_opts o;
    bs_rpc_channel_opts_init(&o);
    o.max_recv_bytes = 16 << 10;
    struct bs_rpc_channel *small = channel_to(cl, port, &o);
    call_sync(small, "/test.Echo/Echo", buf, 32 << 10, 10000, &r);
    ck_assert_int_eq(r.status, BS_RPC_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(r.rc, BS_ETOOBIG);
    reply_free(&r);
    call_sync(small, "/test.Echo/Echo", "fits", 4, 10000, &r);
    ck_assert_int_eq(r.rc, 0);
    reply_free(&r);

    free(buf);
    bs_rpc_channel_destroy(small);
    bs_rpc_channel_destroy(ch);
    bs_rpc_client_destroy(cl);
    bs_rpc_server_destroy(srv);
}
END_TEST

/* Client-side stream state for the stream tests. */
struct cstate {
    struct waiter msgs;
    struct waiter downs;
    atomic_uint next;
    atomic_int order_errors;
    atomic_size_t dropped;
    atomic_int last_rc;
};

static void cs_msg(void *ctx, const void *data, size_t len)
{
    struct cstate *c = ctx;
    char want[32];
    int n = snprintf(want, sizeof(want), "m%u", atomic_fetch_add(&c->next, 1));
    if ((size_t)n != len || memcmp(want, data, len) != 0)
        atomic_fetch_add(&c->order_errors, 1);
    w_add(&c->msgs, 1);
}

static void cs_down(void *ctx, size_t ndropped, int rc)
{
    struct cstate *c = ctx;
    atomic_fetch_add(&c->dropped, ndropped);
    atomic_store(&c->last_rc, rc);
    w_add(&c->downs, 1);
}

static void cstate_init(struct cstate *c)
{
    memset(c, 0, sizeof(*c));
    w_init(&c->msgs);
    w_init(&c->downs);
}

static void cstate_destroy(struct cstate *c)
{
    w_destroy(&c->msgs);
    w_destroy(&c->downs);
}

#define NSTREAM 10000

START_TEST(test_stream_10k_in_order)
{
    struct bs_rpc_server *srv = server_start(0, 0);
    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel *ch = channel_to(cl, bs_rpc_server_port(srv), NULL);
    struct cstate c;
    cstate_init(&c);
    struct bs_rpc_stream_opts so = {
        .method = "/test.Echo/Stream",
        .max_queued = 256, /* small: the sender meets BS_EBUSY */
        .on_msg = cs_msg,
        .on_unreachable = cs_down,
        .ctx = &c,
    };
    struct bs_rpc_stream *s = NULL;
    ck_assert_int_eq(bs_rpc_channel_open_stream(ch, &so, &s), 0);
    int busy = 0;
    for (unsigned i = 0; i < NSTREAM;) {
        char m[32];
        int n = snprintf(m, sizeof(m), "m%u", i);
        int rc = bs_rpc_stream_send(s, m, (size_t)n);
        if (rc == BS_EBUSY) {
            busy++;
            sleep_ms(1);
            continue;
        }
        ck_assert_msg(rc == 0, "send %u: %s", i, bs_err_name(rc));
        i++;
    }
    ck_assert(w_wait(&srv_msgs, NSTREAM, WAIT_MS));
    ck_assert(w_wait(&c.msgs, NSTREAM, WAIT_MS));
    ck_assert_int_eq(ld(&srv_order_errors), 0);
    ck_assert_int_eq(ld(&srv_send_errors), 0);
    ck_assert_int_eq(ld(&c.order_errors), 0);
    /* A write's completion may trail its arrival at the server. */
    struct bs_rpc_stream_stats st;
    int64_t until = now_ms() + WAIT_MS;
    do {
        bs_rpc_stream_stats(s, &st);
    } while (st.sent < NSTREAM && now_ms() < until && (sleep_ms(5), true));
    ck_assert_uint_eq(st.sent, NSTREAM);
    ck_assert_uint_eq(st.dropped, 0);
    ck_assert_uint_eq(st.refused, (uint64_t)busy);
    ck_assert_uint_eq(st.connects, 1);
    ck_assert(st.up);
    ck_assert_int_eq(w_get(&c.downs), 0);

    /* Destroying the channel ends the server's stream (on_end). */
    bs_rpc_channel_destroy(ch);
    ck_assert(w_wait(&srv_ends, 1, WAIT_MS));
    bs_rpc_client_destroy(cl);
    bs_rpc_server_destroy(srv);
    cstate_destroy(&c);
}
END_TEST

START_TEST(test_peer_down_then_up)
{
    int port = free_port();
    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel_opts o;
    bs_rpc_channel_opts_init(&o);
    o.backoff_min_ms = 50;
    o.backoff_max_ms = 400;
    struct bs_rpc_channel *ch = channel_to(cl, port, &o);
    struct cstate c;
    cstate_init(&c);
    struct bs_rpc_stream_opts so = {
        .method = "/test.Raft/Sink",
        .on_unreachable = cs_down,
        .ctx = &c,
    };
    struct bs_rpc_stream *s = NULL;
    ck_assert_int_eq(bs_rpc_channel_open_stream(ch, &so, &s), 0);

    /* Nobody listens. Sends never block; the attempt fails and is
     * reported; sends during the backoff are refused; the next one after
     * it reconnects (accepted), fails again, and is reported dropped. */
    int accepted = 0, refused = 0;
    int64_t until = now_ms() + WAIT_MS;
    while ((atomic_load(&c.dropped) == 0 || refused == 0) && now_ms() < until) {
        int64_t t0 = now_ms();
        int rc = bs_rpc_stream_send(s, "hb", 2);
        ck_assert_int_lt(now_ms() - t0, 1000); /* never blocks */
        ck_assert_msg(rc == 0 || rc == BS_EUNREACHABLE, "send: %s",
                      bs_err_name(rc));
        if (rc == 0)
            accepted++;
        else
            refused++;
        sleep_ms(2);
    }
    ck_assert_int_ge(w_get(&c.downs), 1);
    ck_assert_int_eq(ld(&c.last_rc), BS_EUNREACHABLE);
    ck_assert_int_ge(refused, 1);
    struct bs_rpc_stream_stats st;
    bs_rpc_stream_stats(s, &st);
    ck_assert_uint_eq(st.sent, 0);
    ck_assert_uint_ge(st.failures, 1);
    ck_assert_uint_ge(st.dropped, 1);
    ck_assert_uint_le(st.dropped, (uint64_t)accepted);
    ck_assert_uint_eq(st.refused, (uint64_t)refused);

    /* The peer starts on that port: the stream comes back by itself on
     * the next sends after the backoff, and messages arrive. */
    struct bs_rpc_server *srv = server_start(port, 0);
    until = now_ms() + WAIT_MS;
    while (w_get(&sink_msgs) == 0 && now_ms() < until) {
        bs_rpc_stream_send(s, "hb", 2);
        sleep_ms(10);
    }
    ck_assert_int_ge(w_get(&sink_msgs), 1);
    /* The server's headers may be processed after its first message. */
    do {
        bs_rpc_stream_stats(s, &st);
    } while (!st.up && now_ms() < until && (sleep_ms(5), true));
    ck_assert(st.up);
    ck_assert_uint_ge(st.connects, 2);

    /* Once up, every send arrives. */
    int before = w_get(&sink_msgs);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(bs_rpc_stream_send(s, "data", 4), 0);
    ck_assert(w_wait(&sink_msgs, before + 100, WAIT_MS));

    bs_rpc_channel_destroy(ch);
    bs_rpc_client_destroy(cl);
    bs_rpc_server_destroy(srv);
    cstate_destroy(&c);
}
END_TEST

/* Result counting for calls ended by a shutdown. */
struct ended {
    struct waiter done;
    atomic_int ok, failed;
};

static void on_ended(void *ctx, const struct bs_rpc_result *res)
{
    struct ended *e = ctx;
    if (res->rc == 0)
        atomic_fetch_add(&e->ok, 1);
    else
        atomic_fetch_add(&e->failed, 1);
    w_add(&e->done, 1);
}

struct late_answer {
    int n;
    int stopped; /* answers that reported BS_ESTOPPED */
};

/* Answers n held calls as soon as they are cancelled. */
static void *late_main(void *arg)
{
    struct late_answer *l = arg;
    for (int i = 0; i < l->n; i++) {
        char *req = NULL;
        struct bs_rpc_call *call;
        while (!(call = held_pop(&req)))
            sleep_ms(1);
        int64_t until = now_ms() + WAIT_MS;
        while (!bs_rpc_call_cancelled(call) && now_ms() < until)
            sleep_ms(1);
        if (bs_rpc_call_reply(call, req, strlen(req)) == BS_ESTOPPED)
            l->stopped++;
        free(req);
    }
    return NULL;
}

START_TEST(test_server_shutdown_in_flight)
{
    struct bs_rpc_server *srv = server_start(0, 0);
    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel *ch = channel_to(cl, bs_rpc_server_port(srv), NULL);
    struct ended e = {0};
    w_init(&e.done);
    enum { N = 20 };
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(bs_rpc_channel_call(ch, "/test.Echo/Hold", "h", 1,
                                             WAIT_MS, on_ended, &e),
                         0);
    struct cstate c;
    cstate_init(&c);
    struct bs_rpc_stream_opts so = {
        .method = "/test.Echo/Stream",
        .on_msg = cs_msg,
        .on_unreachable = cs_down,
        .ctx = &c,
    };
    struct bs_rpc_stream *s = NULL;
    ck_assert_int_eq(bs_rpc_channel_open_stream(ch, &so, &s), 0);
    ck_assert_int_eq(bs_rpc_stream_send(s, "m0", 2), 0);
    ck_assert(w_wait(&c.msgs, 1, WAIT_MS)); /* the stream is up */
    ck_assert(w_wait(&held.arrived, N, WAIT_MS));

    /* Shut down with 20 unanswered calls and an open stream: the calls
     * are cancelled, the stream's handler gets on_end, and destroy waits
     * for the answers given after the cancellation. */
    struct late_answer l = {.n = N};
    pthread_t t;
    pthread_create(&t, NULL, late_main, &l);
    bs_rpc_server_shutdown(srv);
    bs_rpc_server_destroy(srv);
    pthread_join(t, NULL);
    ck_assert_int_eq(l.stopped, N);
    ck_assert(w_wait(&srv_ends, 1, WAIT_MS));

    /* Every client call ended with an error, and the stream is down. */
    ck_assert(w_wait(&e.done, N, WAIT_MS));
    ck_assert_int_eq(ld(&e.failed), N);
    ck_assert(w_wait(&c.downs, 1, WAIT_MS));

    bs_rpc_channel_destroy(ch);
    bs_rpc_client_destroy(cl);
    w_destroy(&e.done);
    cstate_destroy(&c);
}
END_TEST

START_TEST(test_channel_destroy_in_flight)
{
    struct bs_rpc_server *srv = server_start(0, 0);
    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel *ch = channel_to(cl, bs_rpc_server_port(srv), NULL);
    struct ended e = {0};
    w_init(&e.done);
    enum { N = 10 };
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(bs_rpc_channel_call(ch, "/test.Echo/Hold", "h", 1,
                                             WAIT_MS, on_ended, &e),
                         0);
    ck_assert(w_wait(&held.arrived, N, WAIT_MS));

    /* The client goes away first: its callbacks run (BS_ESTOPPED) before
     * destroy returns; the server sees the calls cancelled. */
    bs_rpc_channel_destroy(ch);
    ck_assert_int_eq(w_get(&e.done), N);
    ck_assert_int_eq(ld(&e.failed), N);
    struct late_answer l = {.n = N};
    late_main(&l);
    ck_assert_int_eq(l.stopped, N);

    bs_rpc_client_destroy(cl);
    bs_rpc_server_destroy(srv);
    w_destroy(&e.done);
}
END_TEST

START_TEST(test_bad_options)
{
    struct bs_rpc_server_opts o;
    bs_rpc_server_opts_init(&o);
    struct bs_rpc_server *srv = NULL;
    char err[BS_RPC_ERRMSG_SIZE];
    ck_assert_int_eq(bs_rpc_server_create(&o, &srv, err), BS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "address"));

    /* A port in use: start fails with a sentence, destroy still works. */
    struct bs_rpc_server *a = server_start(0, 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", bs_rpc_server_port(a));
    o.addr = addr;
    ck_assert_int_eq(bs_rpc_server_create(&o, &srv, err), 0);
    ck_assert_int_eq(bs_rpc_server_add_unary(srv, "no-slash", echo, NULL),
                     BS_EINVAL);
    ck_assert_int_eq(bs_rpc_server_start(srv), BS_EIO);
    ck_assert_ptr_nonnull(strstr(bs_rpc_server_errmsg(srv), addr));
    bs_rpc_server_destroy(srv);
    bs_rpc_server_destroy(a);
    bs_rpc_server_destroy(NULL);

    struct bs_rpc_client *cl = client_new();
    struct bs_rpc_channel *ch = NULL;
    ck_assert_int_eq(bs_rpc_channel_create(cl, "", NULL, &ch), BS_EINVAL);
    ch = channel_to(cl, 1, NULL);
    struct bs_rpc_stream *s = NULL;
    struct bs_rpc_stream_opts so = {.method = NULL};
    ck_assert_int_eq(bs_rpc_channel_open_stream(ch, &so, &s), BS_EINVAL);
    bs_rpc_channel_destroy(ch);
    bs_rpc_channel_destroy(NULL);
    bs_rpc_client_destroy(cl);
    bs_rpc_client_destroy(NULL);
}
END_TEST

static void setup(void)
{
    memset(&held, 0, sizeof(held));
    pthread_mutex_init(&held.mu, NULL);
    w_init(&held.arrived);
    w_init(&srv_msgs);
    w_init(&srv_ends);
    w_init(&sink_msgs);
    atomic_store(&srv_order_errors, 0);
    atomic_store(&srv_send_errors, 0);
}

static void teardown(void)
{
    for (int i = 0; i < held.n; i++)
        free(held.reqs[i]);
    w_destroy(&held.arrived);
    pthread_mutex_destroy(&held.mu);
    w_destroy(&srv_msgs);
    w_destroy(&srv_ends);
    w_destroy(&sink_msgs);
}

static Suite *suite(void)
{
    Suite *s = suite_create("rpc_server");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    /* Check's alarm; valgrind needs far more than the few seconds the
     * whole case takes natively (meson's timeout is the outer bound). */
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_unary_echo);
    tcase_add_test(tc, test_unary_concurrent);
    tcase_add_test(tc, test_async_reply);
    tcase_add_test(tc, test_unknown_method);
    tcase_add_test(tc, test_oversized);
    tcase_add_test(tc, test_stream_10k_in_order);
    tcase_add_test(tc, test_peer_down_then_up);
    tcase_add_test(tc, test_server_shutdown_in_flight);
    tcase_add_test(tc, test_channel_destroy_in_flight);
    tcase_add_test(tc, test_bad_options);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
