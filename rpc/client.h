/*
 * client.h - a small synchronous client over channel.h, for the `basalt`
 * CLI (`basalt kv`, `basalt cluster`) and for tests: unary calls that
 * block until the answer, carrying raw bytes (the caller encodes and
 * decodes with codec.h or admin_codec.h; nothing here knows protobuf).
 *
 * A connection is one struct bs_rpc_client with one CQ thread and one
 * channel per endpoint of a comma-separated list. A call goes to the
 * endpoint that answered last (the first one at the start) and, while an
 * endpoint cannot be reached or answers UNAVAILABLE, moves on to the
 * next one, once round the list, within one overall deadline: a CLI given
 * the endpoints of a cluster gets its answer from any live node.
 *
 * Threads: every function may be called from any thread except a CQ
 * thread of this connection (a call blocks until its callback has run on
 * it); calls on one connection may run concurrently.
 */
#ifndef BS_RPC_CLIENT_H
#define BS_RPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "status.h"

/* Size of the errmsg buffers that functions of this header fill (every
 * errmsg may be NULL). */
#define BS_RPC_CONN_ERRMSG_SIZE 256

/* Most endpoints in one list. */
#define BS_RPC_CONN_MAX_ENDPOINTS 64

struct bs_rpc_conn; /* a bs_rpc_client (1 CQ thread) + a channel per
                       endpoint */

/*
 * Opens a connection to endpoints (borrowed: copied), a list of
 * "HOST:PORT" (or any gRPC target) separated by commas; blanks around an
 * entry are ignored, and so is an "http://" prefix (etcdctl's form of an
 * endpoint). Does not connect: the first call does. Returns 0 and *out,
 * or BS_EINVAL (an empty list or entry, "https://" (no TLS yet), more than
 * BS_RPC_CONN_MAX_ENDPOINTS entries, an entry longer than 1023 bytes),
 * BS_ENOMEM or BS_EIO (the CQ thread could not start), with a sentence in
 * errmsg.
 */
int bs_rpc_conn_open(const char *endpoints, struct bs_rpc_conn **out,
                     char *errmsg);

/* Closes the channels (calls in flight on other threads end with
 * BS_ESTOPPED: close only once no call is running), stops the thread
 * and frees c. Accepts NULL. */
void bs_rpc_conn_close(struct bs_rpc_conn *c);

/* The number of endpoints, and endpoint i (as given, without blanks or
 * "http://"; valid until close). */
size_t bs_rpc_conn_n_endpoints(const struct bs_rpc_conn *c);
const char *bs_rpc_conn_endpoint(const struct bs_rpc_conn *c, size_t i);

/*
 * Calls method ("/pkg.Service/Method", borrowed) with req[0..len)
 * (borrowed, may be NULL when len is 0) on the first endpoint that
 * answers, starting with the one that answered last; on BS_EUNREACHABLE
 * or an UNAVAILABLE status (a node that is stopping, or not the leader)
 * tries the next endpoint, each at most once. Blocks up to timeout_ms in
 * all (< 0: no deadline; 0 fails at once with BS_ETIMEDOUT).
 *
 * On success returns 0 with *resp (malloc'd, never NULL, even for an
 * empty message: caller frees) of *resp_len bytes. On failure returns the
 * BS_E* code of the last attempt (the server's own code when it sent
 * "bs-err"; BS_ETIMEDOUT on the deadline; BS_EUNREACHABLE when no
 * endpoint answered; BS_EINVAL for a NULL or empty method), *resp NULL and
 * *resp_len 0, and in errmsg the server's status message, or a sentence
 * naming the endpoint when the server gave none. *status, if status is
 * not NULL, gets the gRPC status of the last attempt (BS_RPC_OK on
 * success; BS_RPC_UNKNOWN when no call was made).
 */
int bs_rpc_conn_call(struct bs_rpc_conn *c, const char *method, const void *req,
                     size_t len, int64_t timeout_ms, uint8_t **resp,
                     size_t *resp_len, enum bs_rpc_status *status,
                     char *errmsg);

/* As bs_rpc_conn_call, on endpoint i only (i < bs_rpc_conn_n_endpoints,
 * else BS_EINVAL), without moving on: for commands that ask every
 * endpoint (`basalt cluster status` per node, etcdctl endpoint status). */
int bs_rpc_conn_call_one(struct bs_rpc_conn *c, size_t i, const char *method,
                         const void *req, size_t len, int64_t timeout_ms,
                         uint8_t **resp, size_t *resp_len,
                         enum bs_rpc_status *status, char *errmsg);

#endif
