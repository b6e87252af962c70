/*
 * channel.h - the client side of Basalt's transport over the gRPC core C
 * API, carrying raw bytes: one channel per peer address, asynchronous
 * unary calls with deadlines, and long-lived bidirectional streams whose
 * sends never block (DESIGN.md section 5).
 *
 * A struct bs_rpc_client owns one completion queue and a small fixed
 * number of threads (default 2) that run the callbacks of all of its
 * channels; a node has one client for all of its peers. A channel is one
 * HTTP/2 connection to one address (channels never share connections,
 * even to the same address: `basalt bench` opens N connections to one
 * endpoint on purpose), reconnecting by itself with backoff.
 *
 * The stream (bs_rpc_channel_open_stream) is what Raft traffic to a peer
 * travels on: bs_rpc_stream_send() copies the message into a bounded
 * queue and returns at once. While the peer is down, the queue is dropped
 * and reported through on_unreachable, and sends fail with
 * BS_EUNREACHABLE until the backoff expires; the next send after that
 * opens a new gRPC call (reconnection is lazy: a stream nobody writes to
 * stays down, which costs nothing; Raft's heartbeats keep writing).
 *
 * Life of a stream (each edge names the function that takes it):
 *
 *   DOWN(retry_at) --bs_rpc_stream_send() at or after retry_at:
 *                    stream_connect()--> CONNECTING
 *   DOWN --bs_rpc_stream_send() before retry_at--> DOWN (BS_EUNREACHABLE)
 *   CONNECTING --on_start(ok): the server's headers arrived--> UP
 *                (backoff back to its minimum)
 *   CONNECTING, UP --a write fails (on_sent), or the call ends
 *                (on_status): stream_fail()--> DOWN(now + backoff),
 *                queue dropped, on_unreachable(ndropped, rc), backoff x2
 *   any --bs_rpc_channel_destroy()--> CLOSED (nothing reported)
 *
 * Messages sent while CONNECTING are written at once (gRPC buffers them
 * until the connection is up) and count as dropped if it never comes up.
 *
 * Errors from gRPC are converted here: a result carries a BS_E* code
 * (the peer's own code when it sent "bs-err", see status.h) and the gRPC
 * status as enum bs_rpc_status.
 *
 * Threads: all functions may be called from any thread (including from
 * callbacks) unless they say otherwise; callbacks run on the client's CQ
 * threads and must not block.
 */
#ifndef BS_RPC_CHANNEL_H
#define BS_RPC_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "status.h"

/* Defaults of the option structs below. */
#define BS_RPC_DEFAULT_CLIENT_THREADS  2
#define BS_RPC_DEFAULT_CLIENT_MAX_RECV (64 << 20)
#define BS_RPC_DEFAULT_BACKOFF_MIN_MS  100
#define BS_RPC_DEFAULT_BACKOFF_MAX_MS  5000
#define BS_RPC_DEFAULT_KEEPALIVE_MS    10000
#define BS_RPC_DEFAULT_QUEUE_MSGS      1024
#define BS_RPC_DEFAULT_QUEUE_BYTES     (64 << 20)

struct bs_rpc_client;
struct bs_rpc_channel;
struct bs_rpc_stream;

/* ------------------------------------------------------------- client */

/* Creates a client with nthreads CQ threads (0: 2). Returns 0 and *out, or
 * BS_ENOMEM / BS_EIO (threads could not start). */
int bs_rpc_client_create(int nthreads, struct bs_rpc_client **out);
/* Stops the threads and frees the client. Precondition: all of its
 * channels are destroyed. Not on a CQ thread. Accepts NULL. */
void bs_rpc_client_destroy(struct bs_rpc_client *cl);

/* ------------------------------------------------------------ channel */

/* Zero fields mean "the default". */
struct bs_rpc_channel_opts {
    int64_t max_recv_bytes; /* largest response accepted (64 MiB); -1: no
                               limit */
    int backoff_min_ms;     /* first reconnect delay (100) */
    int backoff_max_ms;     /* longest reconnect delay (5000) */
    int keepalive_ms;       /* ping an idle connection this often, and
                               drop it when a ping is unanswered for as
                               long (10000) */
};

void bs_rpc_channel_opts_init(struct bs_rpc_channel_opts *o /* out */);

/* A channel to addr ("HOST:PORT", or any gRPC target; borrowed: copied)
 * with options o (borrowed; NULL: the defaults). Does not connect until
 * the first call. Returns 0 and *out, or BS_EINVAL (empty address, bad
 * options) / BS_ENOMEM. */
int bs_rpc_channel_create(struct bs_rpc_client *cl, const char *addr,
                          const struct bs_rpc_channel_opts *o,
                          struct bs_rpc_channel **out);

/* Cancels every call in flight (their callbacks run, with BS_ESTOPPED)
 * and every stream (nothing reported), waits for all callbacks to return,
 * and frees the channel and its streams. No function may be called on the
 * channel or its streams once this has begun, except from the callbacks
 * it waits for (they get BS_ESTOPPED). Not on a CQ thread. Accepts NULL. */
void bs_rpc_channel_destroy(struct bs_rpc_channel *ch);

/* The address given at creation. */
const char *bs_rpc_channel_addr(const struct bs_rpc_channel *ch);

/* ---------------------------------------------------------- unary calls */

/* What a unary call came back with; every pointer is borrowed until the
 * callback returns. */
struct bs_rpc_result {
    int rc;                    /* 0, or a BS_E* code: the peer's own when
                                  it sent "bs-err", else from the status
                                  (BS_ETIMEDOUT on the deadline,
                                  BS_EUNREACHABLE when unavailable,
                                  BS_ESTOPPED when cancelled, BS_EPROTO for
                                  OK without a message) */
    enum bs_rpc_status status; /* the gRPC status */
    const char *msg;           /* the status message; "" if none */
    const void *data;          /* the response (rc == 0), else NULL */
    size_t len;
};

typedef void (*bs_rpc_done_fn)(void *ctx, const struct bs_rpc_result *res);

/*
 * Calls method ("/pkg.Service/Method", copied) with req[0..len) (borrowed:
 * copied before return) and a deadline timeout_ms from now (< 0: none).
 * Fails fast: when the peer cannot be reached the call ends at once with
 * BS_EUNREACHABLE rather than waiting for the deadline. Returns 0, and
 * done(ctx, result) is then called exactly once on a CQ thread; or
 * BS_ESTOPPED (the channel is being destroyed) / BS_EIO, and done is never
 * called.
 */
int bs_rpc_channel_call(struct bs_rpc_channel *ch, const char *method,
                        const void *req, size_t len, int64_t timeout_ms,
                        bs_rpc_done_fn done, void *ctx);

/* -------------------------------------------------------------- streams */

/* Zero fields mean "the default". Callbacks are optional (NULL). */
struct bs_rpc_stream_opts {
    const char *method;      /* the stream method (copied) */
    size_t max_queued;       /* messages waiting to be written (1024) */
    size_t max_queued_bytes; /* their total size (64 MiB) */
    /* A message from the server, data[0..len) borrowed until return. */
    void (*on_msg)(void *ctx, const void *data, size_t len);
    /* The stream went down: ndropped messages accepted by
     * bs_rpc_stream_send were discarded (may be 0); rc says why
     * (BS_EUNREACHABLE, or the peer's error, e.g. BS_ENOTIMPL). Called
     * once per transition to DOWN. */
    void (*on_unreachable)(void *ctx, size_t ndropped, int rc);
    void *ctx;
};

/* Opens a stream on ch with options o (borrowed), owned by ch (freed by
 * bs_rpc_channel_destroy), and starts connecting. Returns 0 and *out, or
 * BS_EINVAL (no method) / BS_ENOMEM / BS_ESTOPPED (channel being destroyed). */
int bs_rpc_channel_open_stream(struct bs_rpc_channel *ch,
                               const struct bs_rpc_stream_opts *o,
                               struct bs_rpc_stream **out);

/*
 * Queues data[0..len) (borrowed: copied) for the peer. Never blocks.
 * Returns 0 (accepted: it is written, or reported in a later
 * on_unreachable's ndropped), BS_EUNREACHABLE (the stream is down and
 * its backoff has not expired: dropped, not reported again), BS_EBUSY
 * (the queue is full: dropped) or BS_ESTOPPED (channel being destroyed).
 */
int bs_rpc_stream_send(struct bs_rpc_stream *s, const void *data, size_t len);

struct bs_rpc_stream_stats {
    uint64_t sent;     /* messages written (handed to the transport) */
    uint64_t dropped;  /* accepted, then dropped (sum of ndropped) */
    uint64_t refused;  /* sends answered BS_EUNREACHABLE or BS_EBUSY */
    uint64_t connects; /* gRPC calls started (first connect included) */
    uint64_t failures; /* transitions to DOWN */
    bool up;           /* the server's headers arrived on this call */
};

void bs_rpc_stream_stats(struct bs_rpc_stream *s,
                         struct bs_rpc_stream_stats *st /* out */);

#endif
