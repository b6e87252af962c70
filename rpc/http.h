/*
 * http.h - the node's HTTP port (libmicrohttpd): what Prometheus, load
 * balancers, orchestrators and people with curl look at. It serves four
 * read-only routes from callbacks the node supplies, and nothing else:
 *
 *   GET /metrics  200, text/plain; version=0.0.4 (Prometheus text format,
 *                 built with struct bs_prom below)
 *   GET /health   200 "ok\n" while the process runs (liveness)
 *   GET /ready    200 "ready\n", or 503 "not ready\n" (readiness: the node
 *                 has joined and can serve)
 *   GET /status   200, application/json
 *
 * HEAD is answered as GET without the body. Any other path is 404 "not
 * found\n"; any other method 405 "method not allowed\n" (with "Allow:
 * GET, HEAD"); a route whose callback is NULL is 404. A callback that
 * fails is answered 500 with "error: <bs_strerror(code)>\n". Every body
 * the server writes itself is one line of text/plain.
 *
 * One thread: libmicrohttpd's internal polling thread (epoll or poll)
 * accepts, reads and answers every connection, and runs the callbacks,
 * one at a time. A callback therefore blocks the HTTP port (only) while
 * it runs, and must be safe to call concurrently with the rest of the
 * node.
 */
#ifndef BS_RPC_HTTP_H
#define BS_RPC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

/* Size of the errmsg buffers that functions of this header fill (every
 * errmsg may be NULL). */
#define BS_HTTP_ERRMSG_SIZE 256

/* What the server answers with. Every callback runs on the HTTP thread
 * with ctx; NULL callbacks are allowed (their route is 404). */
struct bs_http_ops {
    /* Fill *body (malloc'd, handed to the server, which frees it) with
     * *len bytes, and return 0; or return a BS_E* code (answered 500) and
     * leave *body alone (the server frees nothing then). */
    int (*metrics)(void *ctx, char **body, size_t *len);
    int (*status)(void *ctx, char **body, size_t *len);
    /* Whether the node is ready to serve. */
    bool (*ready)(void *ctx);
    void *ctx;
};

struct bs_http;

/*
 * Starts serving on addr, "HOST:PORT" (borrowed): HOST an IPv4 address, a
 * bracketed IPv6 address ("[::1]:8080"), a name (its first address), or
 * empty ("":8080, every IPv4 address); PORT 0 = a free port chosen by the
 * kernel (bs_http_port). ops is borrowed and must outlive the server.
 * Returns 0 and *out; BS_EINVAL (addr not HOST:PORT, a port out of range,
 * a name that does not resolve) or BS_EIO (the address cannot be bound or
 * the thread cannot start) or BS_ENOMEM, with a sentence in errmsg.
 */
int bs_http_start(const char *addr, const struct bs_http_ops *ops,
                  struct bs_http **out, char *errmsg);

/* The port the server listens on. */
int bs_http_port(const struct bs_http *h);

/* Closes the port, waits for a callback that is running to return, and
 * frees h. No callback runs after it returns. Accepts NULL. */
void bs_http_stop(struct bs_http *h);

/* ==================================================== Prometheus text */

/*
 * A builder of the Prometheus text exposition format (version 0.0.4):
 *
 *   struct bs_prom p = {0};
 *   bs_prom_metric(&p, "basalt_shard_applied_index", "gauge",
 *                  "Last applied Raft index of a shard replica.");
 *   bs_prom_sample(&p, "basalt_shard_applied_index", "shard=\"3\"", 1042);
 *   ...
 *   rc = bs_prom_finish(&p, body, len);   (or bs_prom_free on a path
 *                                          that gives up)
 *
 * Each metric is declared once (# HELP, # TYPE) and its samples follow it.
 * The builder checks what it can: a name that is not a valid metric name
 * ([a-zA-Z_:][a-zA-Z0-9_:]*, at most BS_PROM_NAME_MAX bytes), a type
 * other than "counter" or "gauge", a sample whose name is not the metric
 * declared last, a metric declared a second time after another one
 * (bs_prom_metric again for the current metric adds nothing) all set err
 * to BS_EINVAL; running out of memory sets BS_ENOMEM. After an error
 * every call does nothing, and bs_prom_finish reports it: a caller
 * checks once, at the end. The HELP text is escaped (\\ and \n); label
 * values should be built with bs_prom_label, which escapes them. Values
 * are written exactly (%.17g; NaN, +Inf and -Inf as Prometheus spells
 * them).
 */
#define BS_PROM_NAME_MAX 127

struct bs_prom {
    char *buf; /* owned: the text so far, NUL-terminated (NULL when
                  nothing was written) */
    size_t len, cap;
    int err;                        /* the first error, 0 = none */
    char cur[BS_PROM_NAME_MAX + 1]; /* the metric declared last */
};

/* Declares metric name (borrowed) of type ("counter" or "gauge") with a
 * help text (borrowed, may be NULL: no # HELP line). */
void bs_prom_metric(struct bs_prom *p, const char *name, const char *type,
                    const char *help);

/* A sample of the current metric name with labels (borrowed: the text
 * between the braces, e.g. "shard=\"3\",role=\"leader\"", or NULL / "" for
 * none) and value. */
void bs_prom_sample(struct bs_prom *p, const char *name, const char *labels,
                    double value);

/* Appends name="value" to the label list dst (cap bytes, NUL-terminated;
 * a comma first when dst is not empty), escaping value (\\, \" and \n).
 * Returns 0, or BS_EINVAL (an invalid label name) / BS_ETOOBIG (does not
 * fit: dst is then unchanged). */
int bs_prom_label(char *dst, size_t cap, const char *name, const char *value);

/* Hands the text over: 0 with *body (malloc'd, caller frees;
 * NUL-terminated, never NULL) and *len (without the NUL), or p->err (the
 * text is freed). Either way p is empty afterwards. */
int bs_prom_finish(struct bs_prom *p, char **body, size_t *len);

/* Frees the text and empties p. Accepts NULL. */
void bs_prom_free(struct bs_prom *p);

#endif
