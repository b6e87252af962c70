/*
 * cq_int.h - private to rpc/: completion-queue threads, tags, and the few
 * byte-buffer and time helpers that server.c and channel.c share.
 *
 * Every operation posted to gRPC carries a tag that is a pointer to a
 * struct bs_rpc_tag embedded in the object that posted it; the thread that
 * pops the completion calls tag->fn. A struct bs_rpc_cq is one completion
 * queue polled by a small fixed number of threads (no thread per call):
 * the server owns one, and a bs_rpc_client (channel.h) owns one for all of
 * its channels.
 *
 * Shutdown rule (gRPC's): grpc_completion_queue_shutdown() may be called
 * only when no more operations will be posted; the threads then drain
 * what is left and exit on GRPC_QUEUE_SHUTDOWN. The owners guarantee the
 * precondition by counting their live calls (server.c, channel.c).
 */
#ifndef BS_RPC_CQ_INT_H
#define BS_RPC_CQ_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <pthread.h>

struct bs_rpc_tag {
    /* Called on a CQ thread once per completion; ok is the event's success
     * flag (false: the operation failed, e.g. the call was cancelled). */
    void (*fn)(struct bs_rpc_tag *tag, bool ok);
};

struct bs_rpc_cq {
    grpc_completion_queue *cq;
    pthread_t *threads;
    int nthreads; /* threads running (0 before start) */
    int want;     /* threads to start */
};

/* Creates the queue (not the threads). Returns 0 or BS_ENOMEM. */
int bs_rpc__cq_init(struct bs_rpc_cq *q, int nthreads);
/* Starts the threads. Returns 0, or BS_ENOMEM / BS_EIO (pthread_create)
 * after stopping any thread it started. */
int bs_rpc__cq_start(struct bs_rpc_cq *q);
/* Shuts the queue down, joins the threads (they drain it first) and
 * destroys it. Precondition: nothing will be posted any more. Must not be
 * called on one of the queue's threads. */
void bs_rpc__cq_stop(struct bs_rpc_cq *q);
/* True on a thread of any bs_rpc_cq (blocking calls there would deadlock). */
bool bs_rpc__on_cq_thread(void);

/* A byte buffer holding a copy of data[0..len). Never NULL (gRPC aborts
 * the process when it cannot allocate). */
grpc_byte_buffer *bs_rpc__buf_copy(const void *data, size_t len);
/* The contents of bb as one contiguous slice (a reference, not a copy, when
 * bb is one uncompressed slice). Returns 0, or BS_EPROTO when gRPC cannot
 * read it (a decompression failure). The caller unrefs *out. */
int bs_rpc__buf_flatten(grpc_byte_buffer *bb, grpc_slice *out);

/* The monotonic clock in milliseconds. */
int64_t bs_rpc__now_ms(void);
/* An absolute deadline ms milliseconds from now (ms < 0: never). */
gpr_timespec bs_rpc__deadline(int64_t ms);

/* Copies a slice into a NUL-terminated string of at most cap bytes. */
void bs_rpc__slice_str(grpc_slice s, char *buf, size_t cap);

#endif
