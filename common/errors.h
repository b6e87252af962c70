/*
 * errors.h - Basalt's error codes.
 *
 * Every Basalt function that can fail returns an int: 0 on success or a
 * negative BS_E* code. The list below is the single source of truth: it
 * generates the enum, bs_strerror() and bs_err_name(). Foreign errors
 * (RocksDB strings, gRPC status codes, errno) are converted to these codes at
 * the boundary where they occur; nothing above that boundary sees them.
 *
 * This folder depends on libc only, so that engine/raft stays free of I/O.
 */
#ifndef BS_COMMON_ERRORS_H
#define BS_COMMON_ERRORS_H

/* X(name, value, message) */
#define BS_ERRORS(X)                                                         \
    X(BS_OK, 0, "success")                                                   \
    X(BS_ENOMEM, -1, "out of memory")                                        \
    X(BS_EINVAL, -2, "invalid argument")                                     \
    X(BS_ECORRUPT, -3, "corrupt data")                                       \
    X(BS_EPROTO, -4, "protocol error: malformed message")                    \
    X(BS_EIO, -5, "I/O error")                                               \
    X(BS_ENOTFOUND, -6, "not found")                                         \
    X(BS_EEXIST, -7, "already exists")                                       \
    X(BS_EBUSY, -8, "busy: another operation is in flight")                  \
    X(BS_ENOTLEADER, -9, "not the leader")                                   \
    X(BS_EDROPPED, -10, "proposal dropped")                                  \
    X(BS_ECOMPACTED, -11, "requested index is compacted")                    \
    X(BS_EUNAVAIL, -12, "requested entry is not available yet")              \
    X(BS_ESNAPTEMP, -13, "snapshot temporarily unavailable")                 \
    X(BS_ESNAPOUTDATED, -14, "snapshot is older than the current state")     \
    X(BS_ESTOPPED, -15, "stopped")                                           \
    X(BS_ETIMEDOUT, -16, "timed out")                                        \
    X(BS_ENOTIMPL, -17, "not implemented")                                   \
    X(BS_ESTALE, -18, "stale epoch or route: refresh routing and retry")     \
    X(BS_ERANGE, -19, "key outside the shard's range")                       \
    X(BS_ETOOBIG, -20, "too large")                                          \
    X(BS_EUNREACHABLE, -21, "peer unreachable")

enum bs_err {
#define BS_ERR_ENUM(name, value, msg) name = (value),
    BS_ERRORS(BS_ERR_ENUM)
#undef BS_ERR_ENUM
};

/* Human-readable message for a code; never NULL ("unknown error" if the
 * code is not in the list). */
const char *bs_strerror(int err);

/* The code's symbolic name ("BS_EINVAL"); never NULL. */
const char *bs_err_name(int err);

#endif
