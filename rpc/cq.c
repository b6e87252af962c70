/*
 * cq.c - completion-queue threads and shared helpers of rpc/ (cq_int.h).
 *
 * A queue is polled by all of its threads at once with
 * grpc_completion_queue_next(), which gRPC allows: each event goes to one
 * thread, and the threads also drive gRPC's I/O (the queue's pollset). No
 * per-call threads exist anywhere in rpc/.
 */
#define _GNU_SOURCE
#include "cq_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "errors.h"

static __thread bool on_cq_thread;

bool bs_rpc__on_cq_thread(void)
{
    return on_cq_thread;
}

static void *cq_main(void *arg)
{
    struct bs_rpc_cq *q = arg;
    on_cq_thread = true;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            q->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            struct bs_rpc_tag *t = ev.tag;
            t->fn(t, ev.success != 0);
        }
        /* GRPC_QUEUE_TIMEOUT cannot happen with an infinite deadline. */
    }
    return NULL;
}

int bs_rpc__cq_init(struct bs_rpc_cq *q, int nthreads)
{
    memset(q, 0, sizeof(*q));
    q->want = nthreads > 0 ? nthreads : 2;
    q->threads = calloc((size_t)q->want, sizeof(*q->threads));
    if (!q->threads)
        return BS_ENOMEM;
    q->cq = grpc_completion_queue_create_for_next(NULL);
    return 0;
}

int bs_rpc__cq_start(struct bs_rpc_cq *q)
{
    for (int i = 0; i < q->want; i++) {
        if (pthread_create(&q->threads[i], NULL, cq_main, q) != 0)
            return BS_EIO; /* the caller stops the ones that started */
        /* Named for top/perf: "bs-cq" (a thread name is 15 bytes). */
        (void)pthread_setname_np(q->threads[i], "bs-cq");
        q->nthreads++;
    }
    return 0;
}

void bs_rpc__cq_stop(struct bs_rpc_cq *q)
{
    if (!q->cq)
        return;
    grpc_completion_queue_shutdown(q->cq);
    if (q->nthreads == 0) {
        /* Never started: drain here so that destroy's precondition (the
         * queue has delivered GRPC_QUEUE_SHUTDOWN) holds. */
        for (;;) {
            grpc_event ev = grpc_completion_queue_next(
                q->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_QUEUE_SHUTDOWN)
                break;
            if (ev.type == GRPC_OP_COMPLETE) {
                struct bs_rpc_tag *t = ev.tag;
                t->fn(t, ev.success != 0);
            }
        }
    }
    for (int i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    grpc_completion_queue_destroy(q->cq);
    free(q->threads);
    memset(q, 0, sizeof(*q));
}

grpc_byte_buffer *bs_rpc__buf_copy(const void *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

int bs_rpc__buf_flatten(grpc_byte_buffer *bb, grpc_slice *out)
{
    if (bb->type == GRPC_BB_RAW &&
        bb->data.raw.compression == GRPC_COMPRESS_NONE &&
        bb->data.raw.slice_buffer.count == 1) {
        *out = grpc_slice_ref(bb->data.raw.slice_buffer.slices[0]);
        return 0;
    }
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return BS_EPROTO;
    *out = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return 0;
}

int64_t bs_rpc__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

gpr_timespec bs_rpc__deadline(int64_t ms)
{
    if (ms < 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis(ms, GPR_TIMESPAN));
}

void bs_rpc__slice_str(grpc_slice s, char *buf, size_t cap)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, GRPC_SLICE_START_PTR(s), n);
    buf[n] = '\0';
}
