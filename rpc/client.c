/*
 * client.c - synchronous unary calls with endpoint failover, over the
 * asynchronous channels of channel.c.
 *
 * A call is a struct sync_call on the caller's stack: the channel's
 * callback copies the result into it (on the CQ thread) and signals its
 * condition variable; the caller waits for that signal and never for a
 * time of its own, because channel.h promises that the callback runs
 * exactly once, by the gRPC deadline at the latest. That promise is what
 * makes the stack record safe: the caller cannot return before the
 * callback is done with it.
 *
 * Failover walks the endpoints once, starting with the one that answered
 * last (an atomic index, so concurrent calls need no lock); the deadline
 * covers the whole walk, each attempt getting what is left of it.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "client.h"

#define MAX_ENDPOINT_LEN 1023

struct bs_rpc_conn {
    struct bs_rpc_client *cl;    /* owned */
    struct bs_rpc_channel **chs; /* owned, n of them */
    size_t n;
    atomic_size_t next; /* the endpoint that answered last */
};

static void set_msg(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_msg(char *errmsg, const char *fmt, ...)
{
    va_list ap;

    if (errmsg == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(errmsg, BS_RPC_CONN_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- open */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses the next entry of the list at *p into buf (cap bytes) and
 * advances *p past its comma. */
static int next_endpoint(const char **p, char *buf, size_t cap, char *errmsg)
{
    const char *s = *p, *e, *comma;
    size_t n;

    comma = strchr(s, ',');
    e = comma ? comma : s + strlen(s);
    *p = comma ? comma + 1 : e;
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    if ((size_t)(e - s) >= 7 && strncmp(s, "http://", 7) == 0)
        s += 7;
    else if ((size_t)(e - s) >= 8 && strncmp(s, "https://", 8) == 0) {
        set_msg(errmsg, "endpoint '%.*s': TLS is not supported yet",
                (int)(e - s > 200 ? 200 : e - s), s);
        return BS_EINVAL;
    }
    n = (size_t)(e - s);
    if (n == 0) {
        set_msg(errmsg, "empty endpoint in the list");
        return BS_EINVAL;
    }
    if (n >= cap) {
        set_msg(errmsg, "endpoint of %zu bytes: at most %zu", n, cap - 1);
        return BS_EINVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

int bs_rpc_conn_open(const char *endpoints, struct bs_rpc_conn **out,
                     char *errmsg)
{
    char ep[MAX_ENDPOINT_LEN + 1];
    struct bs_rpc_conn *c;
    const char *p;
    size_t n = 1;
    int rc;

    *out = NULL;
    if (endpoints == NULL) {
        set_msg(errmsg, "no endpoints");
        return BS_EINVAL;
    }
    for (p = endpoints; *p; p++)
        n += *p == ',';
    if (n > BS_RPC_CONN_MAX_ENDPOINTS) {
        set_msg(errmsg, "%zu endpoints: at most %d", n,
                BS_RPC_CONN_MAX_ENDPOINTS);
        return BS_EINVAL;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->chs = calloc(n, sizeof *c->chs)) == NULL) {
        free(c);
        set_msg(errmsg, "out of memory");
        return BS_ENOMEM;
    }
    atomic_init(&c->next, 0);
    /* Parse everything before starting a thread. */
    p = endpoints;
    for (size_t i = 0; i < n; i++)
        if ((rc = next_endpoint(&p, ep, sizeof ep, errmsg)) != 0)
            goto err;
    rc = bs_rpc_client_create(1, &c->cl);
    if (rc != 0) {
        set_msg(errmsg, "cannot start the client: %s", bs_strerror(rc));
        goto err;
    }
    p = endpoints;
    for (size_t i = 0; i < n; i++) {
        next_endpoint(&p, ep, sizeof ep, NULL);
        rc = bs_rpc_channel_create(c->cl, ep, NULL, &c->chs[i]);
        if (rc != 0) {
            set_msg(errmsg, "endpoint '%s': %s", ep, bs_strerror(rc));
            goto err;
        }
        c->n++;
    }
    *out = c;
    return 0;
err:
    bs_rpc_conn_close(c);
    return rc;
}

void bs_rpc_conn_close(struct bs_rpc_conn *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        bs_rpc_channel_destroy(c->chs[i]);
    free(c->chs);
    bs_rpc_client_destroy(c->cl);
    free(c);
}

size_t bs_rpc_conn_n_endpoints(const struct bs_rpc_conn *c)
{
    return c->n;
}

const char *bs_rpc_conn_endpoint(const struct bs_rpc_conn *c, size_t i)
{
    return i < c->n ? bs_rpc_channel_addr(c->chs[i]) : NULL;
}

/* ------------------------------------------------------------- calls */

/* One call's result, filled by on_done on a CQ thread. */
struct sync_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    enum bs_rpc_status status;
    char msg[BS_RPC_CONN_ERRMSG_SIZE];
    uint8_t *data; /* owned: malloc'd copy of the response */
    size_t len;
};

static void on_done(void *ctx, const struct bs_rpc_result *res)
{
    struct sync_call *sc = ctx;
    uint8_t *data = NULL;
    int rc = res->rc;

    if (rc == 0) {
        data = malloc(res->len ? res->len : 1);
        if (data == NULL)
            rc = BS_ENOMEM;
        else if (res->len > 0)
            memcpy(data, res->data, res->len);
    }
    pthread_mutex_lock(&sc->mu);
    sc->rc = rc;
    sc->status = res->status;
    if (rc == BS_ENOMEM && res->rc == 0)
        snprintf(sc->msg, sizeof sc->msg, "out of memory copying a response");
    else
        snprintf(sc->msg, sizeof sc->msg, "%s", res->msg ? res->msg : "");
    sc->data = data;
    sc->len = rc == 0 ? res->len : 0;
    sc->done = true;
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
}

/* One attempt on endpoint i with timeout_ms (< 0: none). Fills sc. */
static void attempt(struct bs_rpc_conn *c, size_t i, const char *method,
                    const void *req, size_t len, int64_t timeout_ms,
                    struct sync_call *sc)
{
    int rc;

    sc->done = false;
    sc->data = NULL;
    sc->len = 0;
    sc->msg[0] = '\0';
    sc->status = BS_RPC_UNKNOWN;
    rc = bs_rpc_channel_call(c->chs[i], method, req, len, timeout_ms, on_done,
                             sc);
    if (rc != 0) {
        /* done will never be called. */
        sc->rc = rc;
        snprintf(sc->msg, sizeof sc->msg, "cannot start the call: %s",
                 bs_strerror(rc));
        return;
    }
    pthread_mutex_lock(&sc->mu);
    while (!sc->done)
        pthread_cond_wait(&sc->cv, &sc->mu);
    pthread_mutex_unlock(&sc->mu);
}

/* Whether a failed attempt should move on to the next endpoint. */
static bool retry_elsewhere(const struct sync_call *sc)
{
    return sc->rc == BS_EUNREACHABLE || sc->status == BS_RPC_UNAVAILABLE;
}

/* The caller's errmsg for a failed attempt on endpoint ep: the server's
 * own message, or a sentence when there is none or it is gRPC's about
 * the transport. */
static void fail_msg(const struct sync_call *sc, const char *ep, char *errmsg)
{
    bool transport = sc->rc == BS_EUNREACHABLE || sc->rc == BS_ETIMEDOUT ||
                     sc->rc == BS_ESTOPPED;

    if (!transport && sc->msg[0] != '\0')
        set_msg(errmsg, "%s", sc->msg);
    else if (sc->msg[0] != '\0')
        set_msg(errmsg, "%s: %s (%s)", ep, bs_strerror(sc->rc), sc->msg);
    else
        set_msg(errmsg, "%s: %s", ep, bs_strerror(sc->rc));
}

/* Calls endpoints first, first+1, ... (count of them, modulo n). */
static int call_from(struct bs_rpc_conn *c, size_t first, size_t count,
                     const char *method, const void *req, size_t len,
                     int64_t timeout_ms, uint8_t **resp, size_t *resp_len,
                     enum bs_rpc_status *status, char *errmsg)
{
    struct sync_call sc;
    char last[BS_RPC_CONN_ERRMSG_SIZE] = "";
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
    size_t i = first;
    int rc = BS_EUNREACHABLE;

    *resp = NULL;
    *resp_len = 0;
    if (status != NULL)
        *status = BS_RPC_UNKNOWN;
    if (method == NULL || method[0] == '\0' || (len > 0 && req == NULL)) {
        set_msg(errmsg, "no method, or a NULL request with a length");
        return BS_EINVAL;
    }
    pthread_mutex_init(&sc.mu, NULL);
    pthread_cond_init(&sc.cv, NULL);
    for (size_t k = 0; k < count; k++, i = (i + 1) % c->n) {
        int64_t left = -1;

        if (deadline >= 0) {
            left = deadline - now_ms();
            if (left <= 0) {
                rc = BS_ETIMEDOUT;
                if (k == 0)
                    set_msg(errmsg, "timed out before the call (%lld ms)",
                            (long long)timeout_ms);
                else
                    set_msg(errmsg, "timed out after %zu endpoints; last, %s",
                            k, last);
                break;
            }
        }
        attempt(c, i, method, req, len, left, &sc);
        rc = sc.rc;
        if (status != NULL)
            *status = sc.status;
        if (rc == 0) {
            atomic_store(&c->next, i);
            *resp = sc.data;
            *resp_len = sc.len;
            break;
        }
        fail_msg(&sc, bs_rpc_channel_addr(c->chs[i]), last);
        set_msg(errmsg, "%s", last);
        if (!retry_elsewhere(&sc))
            break;
    }
    pthread_cond_destroy(&sc.cv);
    pthread_mutex_destroy(&sc.mu);
    return rc;
}

int bs_rpc_conn_call(struct bs_rpc_conn *c, const char *method, const void *req,
                     size_t len, int64_t timeout_ms, uint8_t **resp,
                     size_t *resp_len, enum bs_rpc_status *status, char *errmsg)
{
    size_t first = atomic_load(&c->next) % c->n;

    return call_from(c, first, c->n, method, req, len, timeout_ms, resp,
                     resp_len, status, errmsg);
}

int bs_rpc_conn_call_one(struct bs_rpc_conn *c, size_t i, const char *method,
                         const void *req, size_t len, int64_t timeout_ms,
                         uint8_t **resp, size_t *resp_len,
                         enum bs_rpc_status *status, char *errmsg)
{
    if (i >= c->n) {
        *resp = NULL;
        *resp_len = 0;
        if (status != NULL)
            *status = BS_RPC_UNKNOWN;
        set_msg(errmsg, "no endpoint %zu (there are %zu)", i, c->n);
        return BS_EINVAL;
    }
    return call_from(c, i, 1, method, req, len, timeout_ms, resp, resp_len,
                     status, errmsg);
}
