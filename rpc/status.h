/*
 * status.h - gRPC status codes as Basalt sees them, and their conversion
 * to and from the BS_E* codes of common/errors.h.
 *
 * This is the one place where gRPC's status space meets Basalt's error
 * space (CONVENTIONS.md: foreign errors are converted at the boundary).
 * enum bs_rpc_status has the numbers of the gRPC wire protocol, so code
 * above rpc/ can name a status (the etcd API must answer UNIMPLEMENTED or
 * FAILED_PRECONDITION exactly) without including a gRPC header.
 *
 * A Basalt server that fails a call with a BS_E* code also sends the code
 * itself in the trailing metadata key "bs-err" (see server.h), so a Basalt
 * client recovers BS_ESTALE or BS_ENOTLEADER exactly instead of the coarse
 * status; bs_rpc_err_from_status() is the fallback for any other peer.
 */
#ifndef BS_RPC_STATUS_H
#define BS_RPC_STATUS_H

#include "errors.h"

/* The gRPC status codes, numbered as on the wire (grpc/status.h). */
enum bs_rpc_status {
    BS_RPC_OK = 0,
    BS_RPC_CANCELLED = 1,
    BS_RPC_UNKNOWN = 2,
    BS_RPC_INVALID_ARGUMENT = 3,
    BS_RPC_DEADLINE_EXCEEDED = 4,
    BS_RPC_NOT_FOUND = 5,
    BS_RPC_ALREADY_EXISTS = 6,
    BS_RPC_PERMISSION_DENIED = 7,
    BS_RPC_RESOURCE_EXHAUSTED = 8,
    BS_RPC_FAILED_PRECONDITION = 9,
    BS_RPC_ABORTED = 10,
    BS_RPC_OUT_OF_RANGE = 11,
    BS_RPC_UNIMPLEMENTED = 12,
    BS_RPC_INTERNAL = 13,
    BS_RPC_UNAVAILABLE = 14,
    BS_RPC_DATA_LOSS = 15,
    BS_RPC_UNAUTHENTICATED = 16,
};

/* The trailing metadata key that carries a BS_E* code as decimal text. */
#define BS_RPC_ERR_KEY "bs-err"

/* The status a server answers for a BS_E* code (0 gives BS_RPC_OK; an
 * unknown code gives BS_RPC_UNKNOWN). Retryable conditions (not the leader,
 * stopped, busy) map to UNAVAILABLE, which gRPC clients retry. */
enum bs_rpc_status bs_rpc_status_from_err(int err);

/* The BS_E* code for a status received from a peer that did not send
 * "bs-err": 0 for OK, BS_EUNREACHABLE for UNAVAILABLE, BS_ETIMEDOUT for
 * DEADLINE_EXCEEDED, BS_ETOOBIG for RESOURCE_EXHAUSTED, BS_ENOTIMPL for
 * UNIMPLEMENTED, BS_ESTOPPED for CANCELLED, ..., BS_EIO for anything
 * without a closer code (including values outside 0..16). */
int bs_rpc_err_from_status(int status);

/* "UNAVAILABLE" and so on; never NULL ("UNKNOWN_STATUS" out of range). */
const char *bs_rpc_status_name(int status);

#endif
