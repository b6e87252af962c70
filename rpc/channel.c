/*
 * channel.c - the client side of channel.h: a client's CQ threads,
 * channels, unary calls and the long-lived streams with their bounded
 * queue, drop reports and lazy reconnection.
 *
 * Objects and their references:
 *   - struct ucall: one unary call, one gRPC batch with all six ops; freed
 *     by its completion after the user's callback has returned. Listed in
 *     its channel so that destroy can cancel it.
 *   - struct cs_call: one gRPC call of a stream (one connection attempt).
 *     A reference per batch in flight (start, status, receive, write); the
 *     stream's `cur` points at it while it is the live attempt, which is
 *     until stream_fail() or on_status() clears it, both before the status
 *     batch's reference goes.
 *   - ch->live counts ucalls and cs_calls; destroy waits for 0 before
 *     grpc_channel_destroy, so no completion ever finds a freed channel or
 *     stream.
 *
 * Locks: s->mu (a stream's state, queue and cur) may be held while taking
 * ch->mu; ch->mu is innermost and never held while taking s->mu. User
 * callbacks run with no lock held.
 *
 * Invariants:
 *   1. A cs_call has at most one write in flight (c->writing); queued
 *      messages wait in the stream's ring and go out in order, one per
 *      completed write, on the same call.
 *   2. s->cur == NULL exactly in DOWN and CLOSED; the ring is empty then.
 *   3. Every message accepted by bs_rpc_stream_send is either written
 *      (stats.sent), or counted once in an on_unreachable's ndropped, or
 *      discarded silently by channel destroy.
 */
#include "channel.h"

#include <assert.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>

#include "cq_int.h"

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

struct bs_rpc_client {
    struct bs_rpc_cq q;
    pthread_mutex_t mu;
    size_t nchannels;
};

struct ucall;

struct bs_rpc_channel {
    struct bs_rpc_client *cl;
    grpc_channel *gch;
    char *addr;
    int backoff_min_ms, backoff_max_ms;

    pthread_mutex_t mu; /* innermost lock; guards the fields below */
    pthread_cond_t cv;  /* live reached 0 */
    bool closing;
    size_t live;         /* ucalls + cs_calls allocated */
    struct ucall *calls; /* unary calls in flight */
    struct bs_rpc_stream *streams;
};

struct ucall {
    struct bs_rpc_tag tag;
    struct bs_rpc_channel *ch;
    grpc_call *gc;
    grpc_metadata_array md_init, md_trail;
    grpc_byte_buffer *send_buf, *recv_buf;
    grpc_status_code status;
    grpc_slice details;
    bs_rpc_done_fn done;
    void *ctx;
    struct ucall *prev, *next; /* ch->calls */
};

enum cs_state { CS_DOWN, CS_CONNECTING, CS_UP, CS_CLOSED };

struct cs_call {
    struct bs_rpc_stream *s;
    grpc_call *gc;
    atomic_int refs;
    struct bs_rpc_tag t_start, t_status, t_recv, t_send;
    grpc_metadata_array md_init, md_trail;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf; /* the write in flight (s->mu) */
    size_t send_len;
    bool writing; /* invariant 1 (s->mu) */
    bool dead;    /* no longer s->cur (s->mu) */
};

struct bs_rpc_stream {
    struct bs_rpc_channel *ch;
    char *method;
    size_t max_queued, max_queued_bytes;
    void (*on_msg)(void *ctx, const void *data, size_t len);
    void (*on_unreachable)(void *ctx, size_t ndropped, int rc);
    void *ctx;

    pthread_mutex_t mu; /* guards the fields below */
    enum cs_state state;
    struct cs_call *cur; /* invariant 2 */
    grpc_byte_buffer **ring;
    size_t *ring_len;
    size_t ring_head, ring_n, ring_bytes;
    int64_t retry_at_ms;
    int backoff_ms;
    uint64_t rng;
    struct bs_rpc_stream_stats st;
    struct bs_rpc_stream *next; /* ch->streams */
};

/* ------------------------------------------------------------- client */

int bs_rpc_client_create(int nthreads, struct bs_rpc_client **out)
{
    struct bs_rpc_client *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return BS_ENOMEM;
    grpc_init();
    int rc = bs_rpc__cq_init(
        &cl->q, nthreads > 0 ? nthreads : BS_RPC_DEFAULT_CLIENT_THREADS);
    if (rc == 0)
        rc = bs_rpc__cq_start(&cl->q);
    if (rc != 0) {
        bs_rpc__cq_stop(&cl->q);
        grpc_shutdown();
        free(cl);
        return rc;
    }
    pthread_mutex_init(&cl->mu, NULL);
    *out = cl;
    return 0;
}

void bs_rpc_client_destroy(struct bs_rpc_client *cl)
{
    if (!cl)
        return;
    assert(!bs_rpc__on_cq_thread() && "client destroyed on a CQ thread");
    assert(cl->nchannels == 0 && "client destroyed before its channels");
    bs_rpc__cq_stop(&cl->q);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
    grpc_shutdown();
}

/* ------------------------------------------------------------ channel */

void bs_rpc_channel_opts_init(struct bs_rpc_channel_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_recv_bytes = BS_RPC_DEFAULT_CLIENT_MAX_RECV;
    o->backoff_min_ms = BS_RPC_DEFAULT_BACKOFF_MIN_MS;
    o->backoff_max_ms = BS_RPC_DEFAULT_BACKOFF_MAX_MS;
    o->keepalive_ms = BS_RPC_DEFAULT_KEEPALIVE_MS;
}

int bs_rpc_channel_create(struct bs_rpc_client *cl, const char *addr,
                          const struct bs_rpc_channel_opts *o,
                          struct bs_rpc_channel **out)
{
    struct bs_rpc_channel_opts d;
    bs_rpc_channel_opts_init(&d);
    if (o) {
        if (o->max_recv_bytes)
            d.max_recv_bytes = o->max_recv_bytes;
        if (o->backoff_min_ms)
            d.backoff_min_ms = o->backoff_min_ms;
        if (o->backoff_max_ms)
            d.backoff_max_ms = o->backoff_max_ms;
        if (o->keepalive_ms)
            d.keepalive_ms = o->keepalive_ms;
    }
    if (!addr || !addr[0] || d.max_recv_bytes < -1 ||
        d.max_recv_bytes > INT_MAX || d.backoff_min_ms < 0 ||
        d.backoff_max_ms < d.backoff_min_ms || d.keepalive_ms < 0)
        return BS_EINVAL;
    struct bs_rpc_channel *ch = calloc(1, sizeof(*ch));
    if (!ch || !(ch->addr = strdup(addr))) {
        free(ch);
        return BS_ENOMEM;
    }
    ch->cl = cl;
    ch->backoff_min_ms = d.backoff_min_ms;
    ch->backoff_max_ms = d.backoff_max_ms;
    pthread_mutex_init(&ch->mu, NULL);
    pthread_cond_init(&ch->cv, NULL);

    grpc_arg args[] = {
        {GRPC_ARG_INTEGER,
         GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         {.integer = (int)d.max_recv_bytes}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}},
        /* gRPC's own reconnection of the connection, in step with the
         * streams' backoff (the minimum connect timeout stays 20 s). */
        {GRPC_ARG_INTEGER,
         GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         {.integer = d.backoff_min_ms}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         {.integer = d.backoff_max_ms}},
        /* A peer that vanishes without closing (a partition, a power
         * loss) is noticed by unanswered pings, not in TCP's hours. */
        {GRPC_ARG_INTEGER,
         GRPC_ARG_KEEPALIVE_TIME_MS,
         {.integer = d.keepalive_ms}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
         {.integer = d.keepalive_ms}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         {.integer = 1}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
         {.integer = 0}},
        /* No transparent retries: Basalt decides what to resend. */
        {GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_RETRIES, {.integer = 0}},
        /* One connection per channel, never shared with another channel
         * to the same address. */
        {GRPC_ARG_INTEGER, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
    };
    grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    ch->gch = grpc_channel_create(addr, creds, &cargs);
    grpc_channel_credentials_release(creds);

    pthread_mutex_lock(&cl->mu);
    cl->nchannels++;
    pthread_mutex_unlock(&cl->mu);
    *out = ch;
    return 0;
}

const char *bs_rpc_channel_addr(const struct bs_rpc_channel *ch)
{
    return ch->addr;
}

/* Counts an object of ch; fails once destroy has begun. */
static int ch_hold(struct bs_rpc_channel *ch)
{
    pthread_mutex_lock(&ch->mu);
    int rc = ch->closing ? BS_ESTOPPED : 0;
    if (rc == 0)
        ch->live++;
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

/* The last thing done for an object of ch: after it, ch may be gone. */
static void ch_release(struct bs_rpc_channel *ch)
{
    pthread_mutex_lock(&ch->mu);
    if (--ch->live == 0)
        pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
}

/* The BS_E* code for a finished call: the peer's "bs-err" if it sent a
 * valid one (it is network input: checked, never trusted), else the
 * status's. */
static int result_err(grpc_status_code st, const grpc_metadata_array *md)
{
    for (size_t i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        if (grpc_slice_str_cmp(m->key, BS_RPC_ERR_KEY) != 0)
            continue;
        char txt[16];
        if (GRPC_SLICE_LENGTH(m->value) >= sizeof(txt))
            break;
        bs_rpc__slice_str(m->value, txt, sizeof(txt));
        char *end;
        long v = strtol(txt, &end, 10);
        if (*end == '\0' && v < 0 && v > INT_MIN &&
            strcmp(bs_strerror((int)v), "unknown error") != 0)
            return (int)v;
        break;
    }
    return st == GRPC_STATUS_OK ? BS_EPROTO /* no message */
                                : bs_rpc_err_from_status((int)st);
}

/* ---------------------------------------------------------- unary calls */

static void ucall_done(struct bs_rpc_tag *t, bool ok)
{
    struct ucall *u = container_of(t, struct ucall, tag);
    struct bs_rpc_channel *ch = u->ch;
    (void)ok; /* a client batch reports its failures in the status */

    pthread_mutex_lock(&ch->mu);
    if (u->prev)
        u->prev->next = u->next;
    else
        ch->calls = u->next;
    if (u->next)
        u->next->prev = u->prev;
    pthread_mutex_unlock(&ch->mu);

    struct bs_rpc_result res = {0};
    grpc_slice body = grpc_empty_slice();
    char *msg = grpc_slice_to_c_string(u->details);
    res.status = (enum bs_rpc_status)u->status;
    res.msg = msg;
    if (u->status == GRPC_STATUS_OK && u->recv_buf &&
        bs_rpc__buf_flatten(u->recv_buf, &body) == 0) {
        res.data = GRPC_SLICE_START_PTR(body);
        res.len = GRPC_SLICE_LENGTH(body);
    } else {
        res.rc = result_err(u->status, &u->md_trail);
    }
    u->done(u->ctx, &res);

    grpc_slice_unref(body);
    gpr_free(msg);
    grpc_slice_unref(u->details);
    grpc_metadata_array_destroy(&u->md_init);
    grpc_metadata_array_destroy(&u->md_trail);
    grpc_byte_buffer_destroy(u->send_buf);
    if (u->recv_buf)
        grpc_byte_buffer_destroy(u->recv_buf);
    grpc_call_unref(u->gc);
    free(u);
    ch_release(ch);
}

int bs_rpc_channel_call(struct bs_rpc_channel *ch, const char *method,
                        const void *req, size_t len, int64_t timeout_ms,
                        bs_rpc_done_fn done, void *ctx)
{
    assert(method && done && (req || len == 0));
    struct ucall *u = calloc(1, sizeof(*u));
    if (!u)
        return BS_ENOMEM;
    u->ch = ch;
    u->done = done;
    u->ctx = ctx;
    u->tag.fn = ucall_done;
    grpc_slice m = grpc_slice_from_copied_string(method);
    u->gc = grpc_channel_create_call(ch->gch, NULL, GRPC_PROPAGATE_DEFAULTS,
                                     ch->cl->q.cq, m, NULL,
                                     bs_rpc__deadline(timeout_ms), NULL);
    grpc_slice_unref(m);
    grpc_metadata_array_init(&u->md_init);
    grpc_metadata_array_init(&u->md_trail);
    u->send_buf = bs_rpc__buf_copy(req, len);

    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->md_init;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv_buf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->md_trail;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;

    /* Listed and counted before the batch starts, so that destroy either
     * sees it (and cancels it) or refuses it. */
    pthread_mutex_lock(&ch->mu);
    int rc = ch->closing ? BS_ESTOPPED : 0;
    if (rc == 0) {
        ch->live++;
        u->next = ch->calls;
        if (ch->calls)
            ch->calls->prev = u;
        ch->calls = u;
        if (grpc_call_start_batch(u->gc, ops, 6, &u->tag, NULL) !=
            GRPC_CALL_OK) {
            ch->calls = u->next;
            if (u->next)
                u->next->prev = NULL;
            ch->live--;
            rc = BS_EIO;
        }
    }
    pthread_mutex_unlock(&ch->mu);
    if (rc != 0) {
        grpc_metadata_array_destroy(&u->md_init);
        grpc_metadata_array_destroy(&u->md_trail);
        grpc_byte_buffer_destroy(u->send_buf);
        grpc_call_unref(u->gc);
        free(u);
    }
    return rc;
}

/* ------------------------------------------------------------- streams */

static void cs_unref(struct cs_call *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct bs_rpc_channel *ch = c->s->ch;
    grpc_call_unref(c->gc);
    grpc_metadata_array_destroy(&c->md_init);
    grpc_metadata_array_destroy(&c->md_trail);
    grpc_slice_unref(c->details);
    if (c->recv_buf)
        grpc_byte_buffer_destroy(c->recv_buf);
    if (c->send_buf)
        grpc_byte_buffer_destroy(c->send_buf);
    free(c);
    ch_release(ch);
}

static bool cs_start(struct cs_call *c, const grpc_op *ops, size_t n,
                     struct bs_rpc_tag *tag)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    if (grpc_call_start_batch(c->gc, ops, n, tag, NULL) == GRPC_CALL_OK)
        return true;
    assert(!"grpc_call_start_batch failed");
    cs_unref(c);
    return false;
}

/* Empties the ring; s->mu held. Returns how many messages it held. */
static size_t ring_clear(struct bs_rpc_stream *s)
{
    size_t n = s->ring_n;
    while (s->ring_n > 0) {
        grpc_byte_buffer_destroy(s->ring[s->ring_head]);
        s->ring_head = (s->ring_head + 1) % s->max_queued;
        s->ring_n--;
    }
    s->ring_bytes = 0;
    return n;
}

/* A uniform draw in [lo, hi] from the stream's xorshift generator. */
static int64_t jitter(struct bs_rpc_stream *s, int64_t lo, int64_t hi)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return lo + (int64_t)(s->rng % (uint64_t)(hi - lo + 1));
}

/* CONNECTING/UP -> DOWN for call c, if c is still the live attempt;
 * s->mu held. Returns the number of dropped messages to report, or -1 if
 * there is nothing to report (c was already replaced or the stream is
 * closed). */
static long stream_fail(struct bs_rpc_stream *s, struct cs_call *c)
{
    if (c->dead || s->cur != c)
        return -1;
    c->dead = true;
    s->cur = NULL;
    size_t n = ring_clear(s) + (c->writing ? 1 : 0);
    s->state = CS_DOWN;
    /* Retry after the backoff, +-20 % so that peers do not reconnect in
     * lockstep; the next one is twice as long, up to the maximum. */
    int64_t b = s->backoff_ms;
    s->retry_at_ms = bs_rpc__now_ms() + jitter(s, b - b / 5, b + b / 5);
    s->backoff_ms = s->backoff_ms * 2 > s->ch->backoff_max_ms
                        ? s->ch->backoff_max_ms
                        : s->backoff_ms * 2;
    s->st.dropped += n;
    s->st.failures++;
    s->st.up = false;
    grpc_call_cancel(c->gc, NULL); /* ends the call's other batches */
    return (long)n;
}

static void report(struct bs_rpc_stream *s, long n, int rc)
{
    if (n >= 0 && s->on_unreachable)
        s->on_unreachable(s->ctx, (size_t)n, rc);
}

/* Starts a write of bb on c; s->mu held (invariant 1). */
static void cs_write(struct cs_call *c, grpc_byte_buffer *bb, size_t len)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    c->writing = true;
    c->send_buf = bb;
    c->send_len = len;
    cs_start(c, &op, 1, &c->t_send);
}

static void on_sent(struct bs_rpc_tag *t, bool ok)
{
    struct cs_call *c = container_of(t, struct cs_call, t_send);
    struct bs_rpc_stream *s = c->s;
    long n = -1;
    pthread_mutex_lock(&s->mu);
    grpc_byte_buffer_destroy(c->send_buf);
    c->send_buf = NULL;
    if (!ok) {
        n = stream_fail(s, c); /* counts this write while c->writing */
        c->writing = false;
    } else {
        s->st.sent++;
        c->writing = false;
        if (!c->dead && s->ring_n > 0) {
            grpc_byte_buffer *bb = s->ring[s->ring_head];
            size_t len = s->ring_len[s->ring_head];
            s->ring_head = (s->ring_head + 1) % s->max_queued;
            s->ring_n--;
            s->ring_bytes -= len;
            cs_write(c, bb, len);
        }
    }
    pthread_mutex_unlock(&s->mu);
    report(s, n, BS_EUNREACHABLE);
    cs_unref(c);
}

static void post_cs_recv(struct cs_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    cs_start(c, &op, 1, &c->t_recv);
}

static void on_cs_recv(struct bs_rpc_tag *t, bool ok)
{
    struct cs_call *c = container_of(t, struct cs_call, t_recv);
    struct bs_rpc_stream *s = c->s;
    if (ok && c->recv_buf) {
        grpc_slice msg;
        int rc = bs_rpc__buf_flatten(c->recv_buf, &msg);
        grpc_byte_buffer_destroy(c->recv_buf);
        c->recv_buf = NULL;
        if (rc == 0) {
            if (s->on_msg)
                s->on_msg(s->ctx, GRPC_SLICE_START_PTR(msg),
                          GRPC_SLICE_LENGTH(msg));
            grpc_slice_unref(msg);
            post_cs_recv(c);
        } else {
            grpc_call_cancel_with_status(c->gc, GRPC_STATUS_INVALID_ARGUMENT,
                                         "a stream message cannot be read",
                                         NULL);
        }
    }
    cs_unref(c);
}

/* The server's initial metadata: the peer is there. */
static void on_start(struct bs_rpc_tag *t, bool ok)
{
    struct cs_call *c = container_of(t, struct cs_call, t_start);
    struct bs_rpc_stream *s = c->s;
    pthread_mutex_lock(&s->mu);
    if (ok && !c->dead && s->cur == c) {
        s->state = CS_UP;
        s->st.up = true;
        s->backoff_ms = s->ch->backoff_min_ms;
        post_cs_recv(c);
    }
    /* A failure here is reported by on_status, which always follows. */
    pthread_mutex_unlock(&s->mu);
    cs_unref(c);
}

static void on_status(struct bs_rpc_tag *t, bool ok)
{
    (void)ok;
    struct cs_call *c = container_of(t, struct cs_call, t_status);
    struct bs_rpc_stream *s = c->s;
    int rc = c->status == GRPC_STATUS_OK
                 ? BS_ESTOPPED /* the server ended the stream */
                 : result_err(c->status, &c->md_trail);
    pthread_mutex_lock(&s->mu);
    long n = stream_fail(s, c);
    pthread_mutex_unlock(&s->mu);
    report(s, n, rc);
    cs_unref(c);
}

/* DOWN -> CONNECTING: a new gRPC call for the stream; s->mu held. Returns
 * 0, or BS_ESTOPPED when the channel is being destroyed. */
static int stream_connect(struct bs_rpc_stream *s)
{
    struct bs_rpc_channel *ch = s->ch;
    struct cs_call *c = calloc(1, sizeof(*c));
    if (!c)
        return BS_ENOMEM;
    int rc = ch_hold(ch);
    if (rc != 0) {
        free(c);
        return rc;
    }
    c->s = s;
    c->t_start.fn = on_start;
    c->t_status.fn = on_status;
    c->t_recv.fn = on_cs_recv;
    c->t_send.fn = on_sent;
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->md_init);
    grpc_metadata_array_init(&c->md_trail);
    atomic_init(&c->refs, 1); /* setup; dropped below */
    grpc_slice m = grpc_slice_from_copied_string(s->method);
    c->gc = grpc_channel_create_call(ch->gch, NULL, GRPC_PROPAGATE_DEFAULTS,
                                     ch->cl->q.cq, m, NULL,
                                     gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_slice_unref(m);

    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &c->md_trail;
    ops[0].data.recv_status_on_client.status = &c->status;
    ops[0].data.recv_status_on_client.status_details = &c->details;
    cs_start(c, ops, 1, &c->t_status);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &c->md_init;
    cs_start(c, ops, 2, &c->t_start);

    s->cur = c;
    s->state = CS_CONNECTING;
    s->st.connects++;
    cs_unref(c); /* the batches hold it now */
    return 0;
}

int bs_rpc_channel_open_stream(struct bs_rpc_channel *ch,
                               const struct bs_rpc_stream_opts *o,
                               struct bs_rpc_stream **out)
{
    if (!o || !o->method || o->method[0] != '/')
        return BS_EINVAL;
    struct bs_rpc_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return BS_ENOMEM;
    s->ch = ch;
    s->max_queued = o->max_queued ? o->max_queued : BS_RPC_DEFAULT_QUEUE_MSGS;
    s->max_queued_bytes =
        o->max_queued_bytes ? o->max_queued_bytes : BS_RPC_DEFAULT_QUEUE_BYTES;
    s->on_msg = o->on_msg;
    s->on_unreachable = o->on_unreachable;
    s->ctx = o->ctx;
    s->method = strdup(o->method);
    s->ring = calloc(s->max_queued, sizeof(*s->ring));
    s->ring_len = calloc(s->max_queued, sizeof(*s->ring_len));
    if (!s->method || !s->ring || !s->ring_len) {
        free(s->method);
        free(s->ring);
        free(s->ring_len);
        free(s);
        return BS_ENOMEM;
    }
    s->backoff_ms = ch->backoff_min_ms;
    s->rng = (uint64_t)(uintptr_t)s ^ (uint64_t)bs_rpc__now_ms() ^
             0x9e3779b97f4a7c15ull;
    if (s->rng == 0)
        s->rng = 1;
    pthread_mutex_init(&s->mu, NULL);
    s->state = CS_DOWN;

    pthread_mutex_lock(&ch->mu);
    int rc = ch->closing ? BS_ESTOPPED : 0;
    if (rc == 0) {
        s->next = ch->streams;
        ch->streams = s;
    }
    pthread_mutex_unlock(&ch->mu);
    if (rc != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s->method);
        free(s->ring);
        free(s->ring_len);
        free(s);
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    stream_connect(s); /* on failure: DOWN, retried by the first send */
    pthread_mutex_unlock(&s->mu);
    *out = s;
    return 0;
}

int bs_rpc_stream_send(struct bs_rpc_stream *s, const void *data, size_t len)
{
    assert(data || len == 0);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->state == CS_CLOSED) {
        rc = BS_ESTOPPED;
    } else if (!s->cur) {
        if (bs_rpc__now_ms() < s->retry_at_ms || stream_connect(s) != 0)
            rc = BS_EUNREACHABLE;
    }
    if (rc == 0) {
        struct cs_call *c = s->cur;
        if (!c->writing) {
            cs_write(c, bs_rpc__buf_copy(data, len), len);
        } else if (s->ring_n == s->max_queued ||
                   s->ring_bytes + len > s->max_queued_bytes) {
            rc = BS_EBUSY;
        } else {
            size_t i = (s->ring_head + s->ring_n) % s->max_queued;
            s->ring[i] = bs_rpc__buf_copy(data, len);
            s->ring_len[i] = len;
            s->ring_n++;
            s->ring_bytes += len;
        }
    }
    if (rc == BS_EUNREACHABLE || rc == BS_EBUSY)
        s->st.refused++;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void bs_rpc_stream_stats(struct bs_rpc_stream *s,
                         struct bs_rpc_stream_stats *st)
{
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    pthread_mutex_unlock(&s->mu);
}

/* --------------------------------------------------------- destruction */

void bs_rpc_channel_destroy(struct bs_rpc_channel *ch)
{
    if (!ch)
        return;
    assert(!bs_rpc__on_cq_thread() && "channel destroyed on a CQ thread");
    pthread_mutex_lock(&ch->mu);
    ch->closing = true;
    for (struct ucall *u = ch->calls; u; u = u->next)
        grpc_call_cancel(u->gc, NULL); /* completes through the CQ */
    struct bs_rpc_stream *streams = ch->streams;
    pthread_mutex_unlock(&ch->mu);

    /* The stream list is fixed now (open_stream checks closing). */
    for (struct bs_rpc_stream *s = streams; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        if (s->cur) {
            s->cur->dead = true;
            grpc_call_cancel(s->cur->gc, NULL);
            s->cur = NULL;
        }
        ring_clear(s);
        s->state = CS_CLOSED;
        pthread_mutex_unlock(&s->mu);
    }

    pthread_mutex_lock(&ch->mu);
    while (ch->live > 0)
        pthread_cond_wait(&ch->cv, &ch->mu);
    pthread_mutex_unlock(&ch->mu);

    while (streams) {
        struct bs_rpc_stream *next = streams->next;
        pthread_mutex_destroy(&streams->mu);
        free(streams->method);
        free(streams->ring);
        free(streams->ring_len);
        free(streams);
        streams = next;
    }
    grpc_channel_destroy(ch->gch);
    pthread_mutex_lock(&ch->cl->mu);
    ch->cl->nchannels--;
    pthread_mutex_unlock(&ch->cl->mu);
    pthread_cond_destroy(&ch->cv);
    pthread_mutex_destroy(&ch->mu);
    free(ch->addr);
    free(ch);
}
