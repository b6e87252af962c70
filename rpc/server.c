/*
 * server.c - the gRPC-core server of server.h: completion-queue threads, a
 * method table, unary calls answered from any thread, bidirectional
 * streams with a bounded send queue, and a shutdown that drains.
 *
 * Every call is one struct bs_rpc_call, allocated when a slot is armed
 * with grpc_server_request_call() (the server keeps a fixed number of
 * slots armed; each completed slot re-arms one) and freed when its last
 * reference goes. References are held by: the slot itself until the call
 * is set up; each gRPC batch in flight (its tag's callback drops it); the
 * handler's handle (dropped by reply/fail, or by sstream_close); and, for
 * a stream, the receive loop until on_end has returned. Nothing touches a
 * call after dropping its own reference.
 *
 * Life of a unary call (each edge names the function that takes it):
 *
 *   ARMED --on_new(!ok)------------------------------------> FREED
 *     | on_new(ok): unknown method / shutting down
 *     |   -> answer_now(): status + RECV_CLOSE ----------> ENDING
 *     | on_new(ok): start_unary(): RECV_CLOSE, RECV_MESSAGE
 *     v
 *   RECEIVING --on_unary_recv(no message, oversize)-> post_status -> ENDING
 *     | on_unary_recv(message): handler(call)
 *     v
 *   HANDLED (the handler owns the handle; any thread)
 *     | bs_rpc_call_reply / _fail / _fail_status: post_status()
 *     v
 *   ENDING --on_done + on_close (both done; refs reach 0)--> FREED
 *
 * A cancellation (client gone, deadline, bs_rpc_server_shutdown) only
 * completes RECV_CLOSE early (on_close sets `ended`); a HANDLED call still
 * waits for its answer, which then fails quietly in gRPC.
 *
 * Life of a server stream:
 *
 *   ARMED --on_new(ok): start_stream(): RECV_CLOSE, initial metadata,
 *           on_open(), RECV_MESSAGE--> OPEN
 *   OPEN  --on_stream_recv(message): on_msg(), RECV_MESSAGE again--> OPEN
 *   OPEN  --on_stream_recv(none/failed): on_end()--> INPUT_DONE
 *   any   --bs_rpc_sstream_close(): status after the queue--> CLOSING
 *   FREED when on_end has returned, close was called, and the status,
 *   the last write and RECV_CLOSE have completed.
 *
 * Writes of a stream: at most one batch that sends (a message or the
 * status) is in flight (`writing`); others wait in a ring of fixed size,
 * and the status goes last (on_stream_sent decides what goes next).
 *
 * Server shutdown:
 *
 *   CREATED --bs_rpc_server_start()--> RUNNING
 *   CREATED --start fails--> FAILED
 *   RUNNING --bs_rpc_server_shutdown(): shutdown_and_notify,
 *             cancel_all_calls--> DRAINING
 *   DRAINING --destroy(): waits for on_shutdown and live == 0, then
 *             grpc_server_destroy, bs_rpc__cq_stop--> freed
 *
 * Invariants:
 *   1. srv->live counts allocated calls; the CQ is shut down only when it
 *      is 0, so no batch is ever started on a shut-down queue (gRPC
 *      asserts on that).
 *   2. Slots are armed only in RUNNING (checked under srv->mu); a slot
 *      armed while gRPC shuts down completes with ok = false.
 *   3. A stream has at most one sending batch in flight, and after the
 *      status batch is posted nothing else is sent (s->mu).
 */
#include "server.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include "cq_int.h"

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

/* Request slots armed per CQ thread. gRPC queues calls that arrive while
 * no slot is armed, so this bounds latency under bursts, not correctness. */
#define SLOTS_PER_THREAD 16

enum srv_state { SRV_CREATED, SRV_RUNNING, SRV_DRAINING, SRV_FAILED };

struct method {
    char *name;
    size_t len;
    bs_rpc_unary_fn unary;               /* NULL for a stream */
    const struct bs_rpc_stream_ops *ops; /* NULL for a unary method */
    void *ctx;
};

struct bs_rpc_server {
    grpc_server *gs;
    struct bs_rpc_cq q;
    struct method *methods;
    size_t nmethods, cap;
    char *addr;
    int port;
    int64_t max_recv;
    size_t stream_max_queued;
    int ping_min_ms;
    int slots_target;

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;  /* signalled when live hits 0 or on shutdown */
    enum srv_state state;
    int slots_armed;
    size_t live;        /* calls allocated (invariant 1) */
    bool shutdown_done; /* on_shutdown ran */
    struct bs_rpc_tag shutdown_tag;

    char errmsg[BS_RPC_ERRMSG_SIZE];
};

/* One call, unary or stream (struct bs_rpc_sstream is this same object
 * under another name, so that the two handle types cannot be mixed up). */
struct bs_rpc_call {
    struct bs_rpc_server *srv;
    grpc_call *gc; /* set by gRPC when the slot completes */
    grpc_call_details details;
    grpc_metadata_array md;
    const struct method *m; /* NULL: unknown method */
    atomic_int refs;

    struct bs_rpc_tag t_new, t_recv, t_send, t_close, t_meta;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf; /* the message of the sending batch */
    int close_cancelled;        /* RECV_CLOSE_ON_SERVER's out value */
    atomic_bool ended;          /* RECV_CLOSE completed */
    atomic_bool cancelled;      /* ... and reported a cancellation */
    atomic_bool answered;       /* the handle was consumed (debug aid) */

    /* The status to send; slices released in call_free. */
    grpc_slice status_msg;
    bool has_status_msg;
    grpc_metadata trailer; /* "bs-err" */
    bool has_trailer;

    /* Streams only (s->mu guards them; invariant 3). */
    pthread_mutex_t mu;
    bool mu_init;
    grpc_byte_buffer **ring;
    size_t ring_head, ring_n, ring_cap;
    bool writing;       /* a sending batch is in flight */
    bool close_req;     /* bs_rpc_sstream_close was called */
    bool status_posted; /* the in-flight sending batch is the status */
    int close_err;      /* close's code: the status to send */
    void *sctx;         /* on_open's result */
};

static struct bs_rpc_call *CALL(struct bs_rpc_sstream *s)
{
    return (struct bs_rpc_call *)s;
}
static struct bs_rpc_sstream *SSTREAM(struct bs_rpc_call *c)
{
    return (struct bs_rpc_sstream *)c;
}

static void seterr(struct bs_rpc_server *srv, char *errmsg, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));
static void seterr(struct bs_rpc_server *srv, char *errmsg, const char *fmt,
                   ...)
{
    char buf[BS_RPC_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (srv)
        memcpy(srv->errmsg, buf, sizeof(buf));
    if (errmsg)
        memcpy(errmsg, buf, sizeof(buf));
}

void bs_rpc_server_opts_init(struct bs_rpc_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->nthreads = BS_RPC_DEFAULT_THREADS;
    o->max_recv_bytes = BS_RPC_DEFAULT_MAX_RECV;
    o->stream_max_queued = BS_RPC_DEFAULT_STREAM_QUEUE;
    o->ping_min_ms = BS_RPC_DEFAULT_PING_MIN_MS;
}

/* ------------------------------------------------------ call lifetime */

static void call_free(struct bs_rpc_call *c)
{
    struct bs_rpc_server *srv = c->srv;
    if (c->gc)
        grpc_call_unref(c->gc);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->recv_buf)
        grpc_byte_buffer_destroy(c->recv_buf);
    if (c->send_buf)
        grpc_byte_buffer_destroy(c->send_buf);
    if (c->has_status_msg)
        grpc_slice_unref(c->status_msg);
    if (c->has_trailer)
        grpc_slice_unref(c->trailer.value);
    if (c->ring) {
        for (size_t i = 0; i < c->ring_n; i++)
            grpc_byte_buffer_destroy(c->ring[(c->ring_head + i) % c->ring_cap]);
        free(c->ring);
    }
    if (c->mu_init)
        pthread_mutex_destroy(&c->mu);
    free(c);

    /* Last: once live reaches 0 the destroying thread may free srv. */
    pthread_mutex_lock(&srv->mu);
    if (--srv->live == 0)
        pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

static void call_ref(struct bs_rpc_call *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static void call_unref(struct bs_rpc_call *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        call_free(c);
}

/* Starts a batch that holds one reference of c (already counted by the
 * caller); on failure to start, drops it. Returns whether it started. */
static bool start(struct bs_rpc_call *c, const grpc_op *ops, size_t n,
                  struct bs_rpc_tag *tag)
{
    grpc_call_error e = grpc_call_start_batch(c->gc, ops, n, tag, NULL);
    if (e == GRPC_CALL_OK)
        return true;
    /* Only a programming error gets here (two batches with the same op
     * type, ...): the call is abandoned rather than the process. */
    assert(!"grpc_call_start_batch failed");
    call_unref(c);
    return false;
}

/* Records the status to send: the message slice and, for err < 0, the
 * "bs-err" trailer. Called once per call (the handle is consumed). */
static void set_status(struct bs_rpc_call *c, int err, const char *msg)
{
    if (msg) {
        c->status_msg = grpc_slice_from_copied_string(msg);
        c->has_status_msg = true;
    }
    if (err < 0) {
        char txt[16];
        snprintf(txt, sizeof(txt), "%d", err);
        c->trailer.key = grpc_slice_from_static_string(BS_RPC_ERR_KEY);
        c->trailer.value = grpc_slice_from_copied_string(txt);
        c->has_trailer = true;
    }
}

/* Posts [initial metadata,] [message,] status, on t_send, with a reference
 * the caller already holds. The message buffer (may be NULL) becomes the
 * call's. */
static void post_status(struct bs_rpc_call *c, bool with_md,
                        grpc_byte_buffer *msg, enum bs_rpc_status st)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (with_md)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (msg) {
        assert(!c->send_buf);
        c->send_buf = msg;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = msg;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)st;
    ops[n].data.send_status_from_server.status_details =
        c->has_status_msg ? &c->status_msg : NULL;
    ops[n].data.send_status_from_server.trailing_metadata_count =
        c->has_trailer ? 1 : 0;
    ops[n++].data.send_status_from_server.trailing_metadata =
        c->has_trailer ? &c->trailer : NULL;
    start(c, ops, n, &c->t_send);
}

/* t_send of a unary call, t_meta of a stream: nothing to do but release
 * the batch's reference (buffers go in call_free). */
static void on_done(struct bs_rpc_tag *t, bool ok)
{
    (void)ok;
    struct bs_rpc_call *c = container_of(t, struct bs_rpc_call, t_send);
    call_unref(c);
}

static void on_meta_done(struct bs_rpc_tag *t, bool ok)
{
    (void)ok;
    call_unref(container_of(t, struct bs_rpc_call, t_meta));
}

/* RECV_CLOSE_ON_SERVER completed: the call is over (answered, or
 * cancelled). */
static void on_close(struct bs_rpc_tag *t, bool ok)
{
    struct bs_rpc_call *c = container_of(t, struct bs_rpc_call, t_close);
    if (c->mu_init)
        pthread_mutex_lock(&c->mu);
    atomic_store(&c->cancelled, !ok || c->close_cancelled);
    atomic_store(&c->ended, true);
    if (c->mu_init)
        pthread_mutex_unlock(&c->mu);
    call_unref(c);
}

static void post_recv_close(struct bs_rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    call_ref(c);
    start(c, &op, 1, &c->t_close);
}

/* Ends a call that no handler will see: the status, then wait for the
 * close. The caller's reference is kept. */
static void answer_now(struct bs_rpc_call *c, enum bs_rpc_status st,
                       const char *msg)
{
    post_recv_close(c);
    set_status(c, 0, msg);
    call_ref(c);
    post_status(c, true, NULL, st);
}

static const struct method *lookup(const struct bs_rpc_server *srv,
                                   grpc_slice name)
{
    /* A linear scan: a server has a few dozen methods at most, and the
     * table is read-only once the server runs. */
    size_t len = GRPC_SLICE_LENGTH(name);
    const void *p = GRPC_SLICE_START_PTR(name);
    for (size_t i = 0; i < srv->nmethods; i++)
        if (srv->methods[i].len == len &&
            memcmp(srv->methods[i].name, p, len) == 0)
            return &srv->methods[i];
    return NULL;
}

static bool srv_running(struct bs_rpc_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    bool r = srv->state == SRV_RUNNING;
    pthread_mutex_unlock(&srv->mu);
    return r;
}

/* ---------------------------------------------------------- unary path */

static void on_unary_recv(struct bs_rpc_tag *t, bool ok)
{
    struct bs_rpc_call *c = container_of(t, struct bs_rpc_call, t_recv);
    if (!ok || !c->recv_buf) {
        /* No message: the client half-closed without one, or the call
         * failed (gRPC has already cancelled an oversized request with
         * RESOURCE_EXHAUSTED; this status then goes nowhere). */
        set_status(c, 0, "the request has no message");
        post_status(c, true, NULL, BS_RPC_INVALID_ARGUMENT);
        return; /* the receive's reference went to the status batch */
    }
    grpc_slice req;
    int rc = bs_rpc__buf_flatten(c->recv_buf, &req);
    grpc_byte_buffer_destroy(c->recv_buf);
    c->recv_buf = NULL;
    if (rc != 0) {
        set_status(c, 0, "the request message cannot be read");
        post_status(c, true, NULL, BS_RPC_INVALID_ARGUMENT);
        return;
    }
    if (!srv_running(c->srv)) {
        grpc_slice_unref(req);
        set_status(c, 0, "the server is shutting down");
        post_status(c, true, NULL, BS_RPC_UNAVAILABLE);
        return;
    }
    /* The receive's reference becomes the handler's handle. c may be
     * freed as soon as the handler has answered: not touched after. */
    const struct method *m = c->m;
    m->unary(c, GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req), m->ctx);
    grpc_slice_unref(req);
}

static void start_unary(struct bs_rpc_call *c)
{
    c->t_recv.fn = on_unary_recv;
    c->t_send.fn = on_done;
    post_recv_close(c);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    call_ref(c);
    start(c, &op, 1, &c->t_recv);
}

/* Consumes the handler's handle: posts the answer with its reference. */
static int answer(struct bs_rpc_call *c, grpc_byte_buffer *msg,
                  enum bs_rpc_status st, int err, const char *text)
{
    bool was = atomic_exchange(&c->answered, true);
    assert(!was && "a call answered twice");
    (void)was;
    bool ended = atomic_load(&c->ended);
    set_status(c, err, text);
    post_status(c, true, msg, st);
    return ended ? BS_ESTOPPED : 0;
}

int bs_rpc_call_reply(struct bs_rpc_call *call, const void *resp, size_t len)
{
    assert(call && (resp || len == 0));
    return answer(call, bs_rpc__buf_copy(resp, len), BS_RPC_OK, 0, NULL);
}

int bs_rpc_call_fail(struct bs_rpc_call *call, int err, const char *msg)
{
    assert(call && err < 0);
    return answer(call, NULL, bs_rpc_status_from_err(err), err,
                  msg ? msg : bs_strerror(err));
}

int bs_rpc_call_fail_status(struct bs_rpc_call *call, enum bs_rpc_status status,
                            const char *msg)
{
    assert(call && status != BS_RPC_OK);
    return answer(call, NULL, status, 0, msg);
}

bool bs_rpc_call_cancelled(const struct bs_rpc_call *call)
{
    return atomic_load(&call->cancelled);
}

const char *bs_rpc_call_method(const struct bs_rpc_call *call)
{
    return call->m->name;
}

/* -------------------------------------------------------- stream path */

static void post_stream_recv(struct bs_rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    start(c, &op, 1, &c->t_recv);
}

static void on_stream_recv(struct bs_rpc_tag *t, bool ok)
{
    struct bs_rpc_call *c = container_of(t, struct bs_rpc_call, t_recv);
    const struct bs_rpc_stream_ops *ops = c->m->ops;
    int rc = BS_ESTOPPED;
    if (ok && c->recv_buf) {
        grpc_slice msg;
        rc = bs_rpc__buf_flatten(c->recv_buf, &msg);
        grpc_byte_buffer_destroy(c->recv_buf);
        c->recv_buf = NULL;
        if (rc == 0) {
            ops->on_msg(SSTREAM(c), c->sctx, GRPC_SLICE_START_PTR(msg),
                        GRPC_SLICE_LENGTH(msg));
            grpc_slice_unref(msg);
            post_stream_recv(c); /* same reference */
            return;
        }
        grpc_call_cancel_with_status(c->gc, GRPC_STATUS_INVALID_ARGUMENT,
                                     "a stream message cannot be read", NULL);
    } else if (ok) {
        /* The client half-closed, unless our own status ended the call. */
        pthread_mutex_lock(&c->mu);
        rc = c->close_req ? BS_ESTOPPED : 0;
        pthread_mutex_unlock(&c->mu);
    }
    ops->on_end(SSTREAM(c), c->sctx, rc);
    call_unref(c); /* the receive loop's reference */
}

/* Starts a sending batch for one message; s->mu held, reference held. */
static void post_send(struct bs_rpc_call *c, grpc_byte_buffer *bb)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    c->send_buf = bb;
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    start(c, &op, 1, &c->t_send);
}

static void post_stream_status(struct bs_rpc_call *c, enum bs_rpc_status st)
{
    c->status_posted = true;
    post_status(c, false, NULL, st);
}

/* A sending batch completed: start the next message, or the status once
 * the queue is empty and close was requested (invariant 3). */
static void on_stream_sent(struct bs_rpc_tag *t, bool ok)
{
    struct bs_rpc_call *c = container_of(t, struct bs_rpc_call, t_send);
    pthread_mutex_lock(&c->mu);
    if (c->send_buf) {
        grpc_byte_buffer_destroy(c->send_buf);
        c->send_buf = NULL;
    }
    if (c->status_posted) {
        c->writing = false;
    } else {
        if (!ok) {
            /* The call is dead: what is queued can never leave. */
            while (c->ring_n > 0) {
                grpc_byte_buffer_destroy(c->ring[c->ring_head]);
                c->ring_head = (c->ring_head + 1) % c->ring_cap;
                c->ring_n--;
            }
        }
        if (c->ring_n > 0) {
            grpc_byte_buffer *bb = c->ring[c->ring_head];
            c->ring_head = (c->ring_head + 1) % c->ring_cap;
            c->ring_n--;
            post_send(c, bb);
            pthread_mutex_unlock(&c->mu);
            return; /* the reference goes on with the next batch */
        }
        if (c->close_req) {
            post_stream_status(c, bs_rpc_status_from_err(c->close_err));
            pthread_mutex_unlock(&c->mu);
            return;
        }
        c->writing = false;
    }
    pthread_mutex_unlock(&c->mu);
    call_unref(c);
}

static void start_stream(struct bs_rpc_call *c)
{
    struct bs_rpc_server *srv = c->srv;
    c->ring_cap = srv->stream_max_queued;
    c->ring = calloc(c->ring_cap, sizeof(*c->ring));
    if (!c->ring || pthread_mutex_init(&c->mu, NULL) != 0) {
        answer_now(c, BS_RPC_RESOURCE_EXHAUSTED, "the server is out of memory");
        return;
    }
    c->mu_init = true;
    c->t_recv.fn = on_stream_recv;
    c->t_send.fn = on_stream_sent;
    post_recv_close(c);

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA; /* the client's "connected" */
    call_ref(c);
    start(c, &op, 1, &c->t_meta);

    call_ref(c); /* the handler's handle, dropped by sstream_close */
    call_ref(c); /* the receive loop, dropped after on_end */
    c->sctx = c->m->ops->on_open(SSTREAM(c), c->m->ctx);
    post_stream_recv(c);
}

int bs_rpc_sstream_send(struct bs_rpc_sstream *s, const void *data, size_t len)
{
    struct bs_rpc_call *c = CALL(s);
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    if (c->close_req) {
        rc = BS_EINVAL;
    } else if (atomic_load(&c->ended)) {
        rc = BS_ESTOPPED;
    } else if (c->writing) {
        if (c->ring_n == c->ring_cap) {
            rc = BS_EBUSY;
        } else {
            c->ring[(c->ring_head + c->ring_n) % c->ring_cap] =
                bs_rpc__buf_copy(data, len);
            c->ring_n++;
        }
    } else {
        c->writing = true;
        call_ref(c);
        post_send(c, bs_rpc__buf_copy(data, len));
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void bs_rpc_sstream_close(struct bs_rpc_sstream *s, int err, const char *msg)
{
    struct bs_rpc_call *c = CALL(s);
    assert(err <= 0);
    pthread_mutex_lock(&c->mu);
    assert(!c->close_req && "a stream closed twice");
    c->close_req = true;
    c->close_err = err;
    set_status(c, err, err < 0 && !msg ? bs_strerror(err) : msg);
    if (!c->writing) {
        c->writing = true;
        post_stream_status(c, bs_rpc_status_from_err(err));
        pthread_mutex_unlock(&c->mu);
        return; /* the handle's reference went to the status batch */
    }
    pthread_mutex_unlock(&c->mu);
    call_unref(c); /* on_stream_sent posts the status */
}

const char *bs_rpc_sstream_method(const struct bs_rpc_sstream *s)
{
    return ((const struct bs_rpc_call *)s)->m->name;
}

/* ------------------------------------------------------ slots, shutdown */

static void on_new(struct bs_rpc_tag *t, bool ok);

/* Allocates and arms one slot. Returns 0 or BS_ENOMEM / BS_EIO; on failure
 * nothing is left allocated. srv->live was counted by the caller. */
static int arm_one(struct bs_rpc_server *srv)
{
    struct bs_rpc_call *c = calloc(1, sizeof(*c));
    if (!c)
        return BS_ENOMEM;
    c->srv = srv;
    atomic_init(&c->refs, 1); /* the slot */
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    c->t_new.fn = on_new;
    c->t_close.fn = on_close;
    c->t_send.fn = on_done;
    c->t_meta.fn = on_meta_done;
    grpc_call_error e = grpc_server_request_call(
        srv->gs, &c->gc, &c->details, &c->md, srv->q.cq, srv->q.cq, &c->t_new);
    if (e != GRPC_CALL_OK) {
        grpc_call_details_destroy(&c->details);
        grpc_metadata_array_destroy(&c->md);
        free(c);
        return BS_EIO;
    }
    return 0;
}

/* Arms slots up to the target while the server runs (invariant 2). A
 * failed allocation leaves a slot missing until the next call re-arms. */
static void rearm(struct bs_rpc_server *srv)
{
    for (;;) {
        pthread_mutex_lock(&srv->mu);
        if (srv->state != SRV_RUNNING ||
            srv->slots_armed >= srv->slots_target) {
            pthread_mutex_unlock(&srv->mu);
            return;
        }
        srv->slots_armed++;
        srv->live++;
        pthread_mutex_unlock(&srv->mu);
        if (arm_one(srv) != 0) {
            pthread_mutex_lock(&srv->mu);
            srv->slots_armed--;
            if (--srv->live == 0)
                pthread_cond_broadcast(&srv->cv);
            pthread_mutex_unlock(&srv->mu);
            return;
        }
    }
}

static void on_new(struct bs_rpc_tag *t, bool ok)
{
    struct bs_rpc_call *c = container_of(t, struct bs_rpc_call, t_new);
    struct bs_rpc_server *srv = c->srv;
    pthread_mutex_lock(&srv->mu);
    srv->slots_armed--;
    bool running = srv->state == SRV_RUNNING;
    pthread_mutex_unlock(&srv->mu);
    if (running)
        rearm(srv); /* before c can be freed: keeps live > 0 */
    if (!ok) {
        /* The server shut down before a call came for this slot. */
        call_unref(c);
        return;
    }
    c->m = lookup(srv, c->details.method);
    if (!running) {
        answer_now(c, BS_RPC_UNAVAILABLE, "the server is shutting down");
    } else if (!c->m) {
        char msg[192];
        int n = (int)GRPC_SLICE_LENGTH(c->details.method);
        snprintf(msg, sizeof(msg),
                 "method %.*s is not implemented by this Basalt server",
                 n > 120 ? 120 : n,
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
        answer_now(c, BS_RPC_UNIMPLEMENTED, msg);
    } else if (c->m->unary) {
        start_unary(c);
    } else {
        start_stream(c);
    }
    call_unref(c); /* the slot's reference */
}

static void on_shutdown(struct bs_rpc_tag *t, bool ok)
{
    (void)ok;
    struct bs_rpc_server *srv =
        container_of(t, struct bs_rpc_server, shutdown_tag);
    pthread_mutex_lock(&srv->mu);
    srv->shutdown_done = true;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* ------------------------------------------------------------- public */

int bs_rpc_server_create(const struct bs_rpc_server_opts *o,
                         struct bs_rpc_server **out, char *errmsg)
{
    struct bs_rpc_server_opts d;
    if (errmsg)
        errmsg[0] = '\0';
    if (!o) {
        bs_rpc_server_opts_init(&d);
        o = &d;
    }
    if (!o->addr || !o->addr[0]) {
        seterr(NULL, errmsg, "the server needs an address (HOST:PORT)");
        return BS_EINVAL;
    }
    if (o->nthreads < 0 || o->max_recv_bytes < -1 ||
        o->max_recv_bytes > INT_MAX || o->ping_min_ms < 0) {
        seterr(NULL, errmsg, "negative or too large server option");
        return BS_EINVAL;
    }
    struct bs_rpc_server *srv = calloc(1, sizeof(*srv));
    if (!srv || !(srv->addr = strdup(o->addr))) {
        free(srv);
        seterr(NULL, errmsg, "out of memory");
        return BS_ENOMEM;
    }
    srv->max_recv =
        o->max_recv_bytes ? o->max_recv_bytes : BS_RPC_DEFAULT_MAX_RECV;
    srv->stream_max_queued = o->stream_max_queued ? o->stream_max_queued
                                                  : BS_RPC_DEFAULT_STREAM_QUEUE;
    srv->ping_min_ms =
        o->ping_min_ms ? o->ping_min_ms : BS_RPC_DEFAULT_PING_MIN_MS;
    srv->shutdown_tag.fn = on_shutdown;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    grpc_init();
    if (bs_rpc__cq_init(&srv->q, o->nthreads) != 0) {
        grpc_shutdown();
        pthread_cond_destroy(&srv->cv);
        pthread_mutex_destroy(&srv->mu);
        free(srv->addr);
        free(srv);
        seterr(NULL, errmsg, "out of memory");
        return BS_ENOMEM;
    }
    srv->slots_target = SLOTS_PER_THREAD * srv->q.want;

    grpc_arg args[] = {
        {GRPC_ARG_INTEGER,
         GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         {.integer = (int)srv->max_recv}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}},
        /* Two servers must never share a port silently. */
        {GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}},
        /* Clients (etcdctl, our channels) keep idle connections alive
         * with pings; tolerate them at this interval. */
        {GRPC_ARG_INTEGER,
         GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         {.integer = srv->ping_min_ms}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         {.integer = 1}},
        /* Notice dead clients (half-open connections) within a minute. */
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = 30000}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = 10000}},
    };
    grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
    srv->gs = grpc_server_create(&cargs, NULL);
    grpc_server_register_completion_queue(srv->gs, srv->q.cq, NULL);
    srv->state = SRV_CREATED;
    *out = srv;
    return 0;
}

static int add_method(struct bs_rpc_server *srv, const char *name,
                      bs_rpc_unary_fn fn, const struct bs_rpc_stream_ops *ops,
                      void *ctx)
{
    if (srv->state != SRV_CREATED || !name || name[0] != '/') {
        seterr(srv, NULL,
               "method %s: registered too late or not a full "
               "name (\"/pkg.Service/Method\")",
               name ? name : "(null)");
        return BS_EINVAL;
    }
    for (size_t i = 0; i < srv->nmethods; i++)
        if (strcmp(srv->methods[i].name, name) == 0) {
            seterr(srv, NULL, "method %s is registered twice", name);
            return BS_EEXIST;
        }
    if (srv->nmethods == srv->cap) {
        size_t cap = srv->cap ? 2 * srv->cap : 16;
        struct method *m = realloc(srv->methods, cap * sizeof(*m));
        if (!m)
            return BS_ENOMEM;
        srv->methods = m;
        srv->cap = cap;
    }
    struct method *m = &srv->methods[srv->nmethods];
    if (!(m->name = strdup(name)))
        return BS_ENOMEM;
    m->len = strlen(name);
    m->unary = fn;
    m->ops = ops;
    m->ctx = ctx;
    srv->nmethods++;
    return 0;
}

int bs_rpc_server_add_unary(struct bs_rpc_server *srv, const char *method,
                            bs_rpc_unary_fn fn, void *ctx)
{
    assert(fn);
    return add_method(srv, method, fn, NULL, ctx);
}

int bs_rpc_server_add_stream(struct bs_rpc_server *srv, const char *method,
                             const struct bs_rpc_stream_ops *ops, void *ctx)
{
    assert(ops && ops->on_open && ops->on_msg && ops->on_end);
    return add_method(srv, method, NULL, ops, ctx);
}

int bs_rpc_server_start(struct bs_rpc_server *srv)
{
    if (srv->state != SRV_CREATED) {
        seterr(srv, NULL, "the server was started already");
        return BS_EINVAL;
    }
    srv->state = SRV_FAILED; /* until the end of this function */
    /* Threads first: if they cannot start, nothing is bound yet. */
    if (bs_rpc__cq_start(&srv->q) != 0) {
        seterr(srv, NULL, "cannot start the server's threads");
        return BS_EIO;
    }
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    srv->port = grpc_server_add_http2_port(srv->gs, srv->addr, creds);
    grpc_server_credentials_release(creds);
    if (srv->port <= 0) {
        srv->port = 0;
        seterr(srv, NULL,
               "cannot listen on %s (address in use, or not a "
               "HOST:PORT of this machine)",
               srv->addr);
        return BS_EIO;
    }
    grpc_server_start(srv->gs);
    pthread_mutex_lock(&srv->mu);
    srv->state = SRV_RUNNING;
    pthread_mutex_unlock(&srv->mu);
    rearm(srv);
    return 0;
}

int bs_rpc_server_port(const struct bs_rpc_server *srv)
{
    return srv->port;
}

const char *bs_rpc_server_errmsg(const struct bs_rpc_server *srv)
{
    return srv->errmsg;
}

void bs_rpc_server_shutdown(struct bs_rpc_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    bool was_running = srv->state == SRV_RUNNING;
    if (was_running)
        srv->state = SRV_DRAINING;
    pthread_mutex_unlock(&srv->mu);
    if (!was_running)
        return;
    grpc_server_shutdown_and_notify(srv->gs, srv->q.cq, &srv->shutdown_tag);
    grpc_server_cancel_all_calls(srv->gs);
}

void bs_rpc_server_destroy(struct bs_rpc_server *srv)
{
    if (!srv)
        return;
    assert(!bs_rpc__on_cq_thread() && "server destroyed on a CQ thread");
    pthread_mutex_lock(&srv->mu);
    bool started = srv->state == SRV_RUNNING || srv->state == SRV_DRAINING;
    pthread_mutex_unlock(&srv->mu);
    if (started) {
        bs_rpc_server_shutdown(srv);
        pthread_mutex_lock(&srv->mu);
        while (!srv->shutdown_done || srv->live > 0)
            pthread_cond_wait(&srv->cv, &srv->mu);
        pthread_mutex_unlock(&srv->mu);
    }
    /* gRPC's order: the server (its shutdown completed), then the queue,
     * which nothing posts to any more (invariant 1). */
    grpc_server_destroy(srv->gs);
    bs_rpc__cq_stop(&srv->q);
    for (size_t i = 0; i < srv->nmethods; i++)
        free(srv->methods[i].name);
    free(srv->methods);
    free(srv->addr);
    pthread_cond_destroy(&srv->cv);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
    grpc_shutdown();
}
