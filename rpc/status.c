/*
 * status.c - conversions between gRPC status codes and BS_E* codes (see
 * status.h). The two tables are written as switches so that the compiler
 * warns when a code is added to either list without a decision here.
 */
#include "status.h"

#include <grpc/status.h>

/* enum bs_rpc_status must stay numerically equal to grpc_status_code: the
 * server and channel cast between them. */
_Static_assert(BS_RPC_OK == (int)GRPC_STATUS_OK, "status numbering");
_Static_assert(BS_RPC_CANCELLED == (int)GRPC_STATUS_CANCELLED, "numbering");
_Static_assert(BS_RPC_RESOURCE_EXHAUSTED == (int)GRPC_STATUS_RESOURCE_EXHAUSTED,
               "status numbering");
_Static_assert(BS_RPC_UNIMPLEMENTED == (int)GRPC_STATUS_UNIMPLEMENTED,
               "status numbering");
_Static_assert(BS_RPC_UNAVAILABLE == (int)GRPC_STATUS_UNAVAILABLE,
               "status numbering");
_Static_assert(BS_RPC_UNAUTHENTICATED == (int)GRPC_STATUS_UNAUTHENTICATED,
               "status numbering");

enum bs_rpc_status bs_rpc_status_from_err(int err)
{
    switch ((enum bs_err)err) {
    case BS_OK:
        return BS_RPC_OK;
    case BS_ENOMEM:
    case BS_ETOOBIG:
        return BS_RPC_RESOURCE_EXHAUSTED;
    case BS_EINVAL:
    case BS_EPROTO:
        return BS_RPC_INVALID_ARGUMENT;
    case BS_ECORRUPT:
        return BS_RPC_DATA_LOSS;
    case BS_EIO:
        return BS_RPC_INTERNAL;
    case BS_ENOTFOUND:
        return BS_RPC_NOT_FOUND;
    case BS_EEXIST:
        return BS_RPC_ALREADY_EXISTS;
    /* Conditions that a retry (after a while, or elsewhere) may cure. */
    case BS_EBUSY:
    case BS_ENOTLEADER:
    case BS_EDROPPED:
    case BS_EUNAVAIL:
    case BS_ESNAPTEMP:
    case BS_ESTOPPED:
    case BS_EUNREACHABLE:
        return BS_RPC_UNAVAILABLE;
    case BS_ECOMPACTED: /* etcd answers a compacted revision this way */
    case BS_ERANGE:
        return BS_RPC_OUT_OF_RANGE;
    case BS_ESNAPOUTDATED:
    case BS_ESTALE:
        return BS_RPC_FAILED_PRECONDITION;
    case BS_ETIMEDOUT:
        return BS_RPC_DEADLINE_EXCEEDED;
    case BS_ENOTIMPL:
        return BS_RPC_UNIMPLEMENTED;
    }
    return BS_RPC_UNKNOWN;
}

int bs_rpc_err_from_status(int status)
{
    switch ((enum bs_rpc_status)status) {
    case BS_RPC_OK:
        return 0;
    case BS_RPC_CANCELLED:
        return BS_ESTOPPED;
    case BS_RPC_INVALID_ARGUMENT:
    case BS_RPC_FAILED_PRECONDITION:
        return BS_EINVAL;
    case BS_RPC_DEADLINE_EXCEEDED:
        return BS_ETIMEDOUT;
    case BS_RPC_NOT_FOUND:
        return BS_ENOTFOUND;
    case BS_RPC_ALREADY_EXISTS:
        return BS_EEXIST;
    case BS_RPC_RESOURCE_EXHAUSTED:
        return BS_ETOOBIG;
    case BS_RPC_ABORTED:
        return BS_EBUSY;
    case BS_RPC_OUT_OF_RANGE:
        return BS_ERANGE;
    case BS_RPC_UNIMPLEMENTED:
        return BS_ENOTIMPL;
    case BS_RPC_UNAVAILABLE:
        return BS_EUNREACHABLE;
    case BS_RPC_DATA_LOSS:
        return BS_ECORRUPT;
    case BS_RPC_UNKNOWN:
    case BS_RPC_PERMISSION_DENIED:
    case BS_RPC_INTERNAL:
    case BS_RPC_UNAUTHENTICATED:
        return BS_EIO;
    }
    return BS_EIO;
}

const char *bs_rpc_status_name(int status)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (status < 0 || status >= (int)(sizeof(names) / sizeof(names[0])))
        return "UNKNOWN_STATUS";
    return names[status];
}
