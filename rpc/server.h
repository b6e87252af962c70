/*
 * server.h - Basalt's gRPC server over the gRPC core C API, carrying raw
 * bytes (the protobuf codecs live in rpc/codec.c, above this layer).
 *
 * One server listens on one HOST:PORT (insecure for now; TLS is a later
 * option of the same struct). A small fixed number of completion-queue
 * threads (default 2) run every call; there is no thread per call. Methods
 * are registered by full name ("/etcdserverpb.KV/Put") before the server
 * starts, as unary methods or bidirectional streams; any other method is
 * answered UNIMPLEMENTED with a sentence.
 *
 * Handlers run on a CQ thread and must not block. A unary handler receives
 * a call handle that it answers exactly once, with bs_rpc_call_reply() or
 * bs_rpc_call_fail*(), from any thread and at any later time: the store
 * thread answers a Put after the entry commits, without holding a CQ
 * thread meanwhile.
 *
 * Receive limit: set explicitly (default 64 MiB, not gRPC's 4 MiB). A
 * larger request is refused by gRPC with RESOURCE_EXHAUSTED ("Received
 * message larger than max"), which ends that call only; the handler never
 * sees it.
 *
 * Shutdown is two steps so that the code that holds unanswered calls can
 * answer them in between: bs_rpc_server_shutdown() stops accepting and
 * cancels every call (answers after it are cheap no-ops that still must be
 * made); bs_rpc_server_destroy() waits until every call handle has been
 * answered or closed and every gRPC operation has completed, then frees
 * everything.
 *
 * Threads: every function may be called from any thread unless it says
 * otherwise; callbacks run on CQ threads.
 */
#ifndef BS_RPC_SERVER_H
#define BS_RPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "status.h"

/* Size of the errmsg buffers that functions of this header fill. */
#define BS_RPC_ERRMSG_SIZE 256

/* Defaults of struct bs_rpc_server_opts. */
#define BS_RPC_DEFAULT_THREADS      2
#define BS_RPC_DEFAULT_MAX_RECV     (64 << 20)
#define BS_RPC_DEFAULT_STREAM_QUEUE 4096
#define BS_RPC_DEFAULT_PING_MIN_MS  1000

struct bs_rpc_server;
struct bs_rpc_call;    /* one unary call, handed to a unary handler */
struct bs_rpc_sstream; /* one server-side bidirectional stream */

/* Zero fields mean "the default". */
struct bs_rpc_server_opts {
    const char *addr;         /* "HOST:PORT" (borrowed; port 0 picks a free
                                 port: see bs_rpc_server_port) */
    int nthreads;             /* completion-queue threads (2) */
    int64_t max_recv_bytes;   /* largest request message accepted (64 MiB);
                                 -1: no limit */
    size_t stream_max_queued; /* messages a server stream may have queued
                                 for sending before bs_rpc_sstream_send
                                 answers BS_EBUSY (4096) */
    int ping_min_ms;          /* shortest keepalive-ping interval tolerated
                                 from clients (1000; etcdctl pings every 2 s
                                 by default, gRPC's 5 min would GOAWAY it) */
};

void bs_rpc_server_opts_init(struct bs_rpc_server_opts *o /* out */);

/*
 * Unary handler: req[0..len) is the request message, borrowed until the
 * handler returns. The handler owns call until it passes it to exactly one
 * of bs_rpc_call_reply / bs_rpc_call_fail / bs_rpc_call_fail_status (now,
 * or later from any thread). ctx is the one given at registration.
 */
typedef void (*bs_rpc_unary_fn)(struct bs_rpc_call *call, const void *req,
                                size_t len, void *ctx);

/*
 * Server stream callbacks. All run on CQ threads and never concurrently for
 * one stream: on_open first; then on_msg for each message in order; then
 * on_end exactly once (the last callback; the stream's ctx may be freed
 * after it). The stream handle stays valid until both on_end has returned
 * and the handler has called bs_rpc_sstream_close() (exactly once, at any
 * time after on_open began, from any thread, including inside on_open,
 * on_msg and on_end).
 */
struct bs_rpc_stream_ops {
    /* A new stream. Returns the stream's ctx (passed to the other two). */
    void *(*on_open)(struct bs_rpc_sstream *s, void *method_ctx);
    /* One message, data[0..len) borrowed until return. */
    void (*on_msg)(struct bs_rpc_sstream *s, void *sctx, const void *data,
                   size_t len);
    /* No more messages: rc 0 when the client closed its side cleanly,
     * BS_ESTOPPED when the call was cancelled (client gone, deadline,
     * server shutdown) or ended by the handler's close, BS_EPROTO when a
     * message could not be read (the call is then cancelled with
     * INVALID_ARGUMENT). */
    void (*on_end)(struct bs_rpc_sstream *s, void *sctx, int rc);
};

/*
 * Creates a server (not listening yet). Returns 0 and *out, or BS_EINVAL
 * (no address, negative sizes) / BS_ENOMEM, with a sentence in errmsg
 * (BS_RPC_ERRMSG_SIZE bytes, may be NULL).
 */
int bs_rpc_server_create(const struct bs_rpc_server_opts *o /* borrowed */,
                         struct bs_rpc_server **out, char *errmsg);

/* Register a method before bs_rpc_server_start. method is copied; ops is
 * borrowed and must outlive the server; ctx is passed to the handler.
 * Returns 0, BS_EEXIST (name taken), BS_EINVAL (started already, or a name
 * that does not start with '/') or BS_ENOMEM. */
int bs_rpc_server_add_unary(struct bs_rpc_server *srv, const char *method,
                            bs_rpc_unary_fn fn, void *ctx);
int bs_rpc_server_add_stream(struct bs_rpc_server *srv, const char *method,
                             const struct bs_rpc_stream_ops *ops, void *ctx);

/* Binds the address and starts serving. Returns 0, or BS_EIO (the address
 * cannot be bound: detail in bs_rpc_server_errmsg) / BS_EINVAL (started
 * already) / BS_ENOMEM. After a failure only destroy is allowed. */
int bs_rpc_server_start(struct bs_rpc_server *srv);

/* The port bound by bs_rpc_server_start (the chosen one for port 0); 0
 * before start. */
int bs_rpc_server_port(const struct bs_rpc_server *srv);

/* Detail of the last error; never NULL. */
const char *bs_rpc_server_errmsg(const struct bs_rpc_server *srv);

/* Stops accepting calls and connections and cancels every call in flight
 * (their clients see CANCELLED or UNAVAILABLE; stream handlers get on_end).
 * Does not wait. Idempotent. */
void bs_rpc_server_shutdown(struct bs_rpc_server *srv);

/* Shuts down (if not yet), waits until every call handle given to a
 * handler has been answered or closed and every operation has completed,
 * then stops the CQ threads and frees the server. Must not be called on a
 * CQ thread (it would wait for itself). Accepts NULL. */
void bs_rpc_server_destroy(struct bs_rpc_server *srv);

/* ---------------------------------------------------------- unary calls */

/* Answers OK with resp[0..len) (borrowed: copied before return). Consumes
 * call: it is invalid after this returns, whatever the result. Returns 0,
 * or BS_ESTOPPED when the call had already ended (cancelled, deadline, the
 * server shutting down): the answer is discarded. */
int bs_rpc_call_reply(struct bs_rpc_call *call, const void *resp, size_t len);

/* Answers with the status for err (bs_rpc_status_from_err) and err itself
 * in the trailing metadata "bs-err", so that a Basalt client gets err back
 * exactly. msg (borrowed, may be NULL: bs_strerror(err)) is the status
 * message. err must be negative. Consumes call; returns as reply does. */
int bs_rpc_call_fail(struct bs_rpc_call *call, int err, const char *msg);

/* Answers with an explicit status (not BS_RPC_OK) and message (borrowed,
 * may be NULL), without "bs-err": for APIs whose clients expect a given
 * status, like etcd's. Consumes call; returns as reply does. */
int bs_rpc_call_fail_status(struct bs_rpc_call *call, enum bs_rpc_status status,
                            const char *msg);

/* True once the call has ended without an answer reaching the client
 * (cancelled by it, its deadline, or the server shutting down): a hint
 * that work for it can be skipped; it must still be answered. */
bool bs_rpc_call_cancelled(const struct bs_rpc_call *call);

/* The method's full name; valid as long as the handle. */
const char *bs_rpc_call_method(const struct bs_rpc_call *call);

/* ------------------------------------------------------ server streams */

/* Queues data[0..len) (borrowed: copied) for sending; messages leave in
 * order, one write at a time. Never blocks. Returns 0, BS_EBUSY (the
 * stream's queue is full: opts.stream_max_queued), BS_ESTOPPED (the call
 * has ended) or BS_EINVAL (after close). */
int bs_rpc_sstream_send(struct bs_rpc_sstream *s, const void *data, size_t len);

/* Ends the stream after the queued messages, with OK when err is 0 or the
 * status for err (with "bs-err") otherwise; msg is borrowed, may be NULL.
 * Call exactly once (see struct bs_rpc_stream_ops for the handle's life). */
void bs_rpc_sstream_close(struct bs_rpc_sstream *s, int err, const char *msg);

/* The method's full name; valid as long as the handle. */
const char *bs_rpc_sstream_method(const struct bs_rpc_sstream *s);

#endif
