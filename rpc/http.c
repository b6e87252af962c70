/*
 * http.c - the node's HTTP port on libmicrohttpd, and the Prometheus text
 * builder its /metrics callback uses.
 *
 * The listening socket is opened here, not by libmicrohttpd: that gives
 * exact errors (EADDRINUSE, a name that does not resolve) and the port
 * the kernel chose, and lets one code path serve IPv4, IPv6 and names.
 * It is handed over with MHD_OPTION_LISTEN_SOCKET, after which
 * MHD_stop_daemon closes it. The daemon runs one internal polling thread
 * (MHD_USE_AUTO picks epoll on Linux), which also runs every callback.
 *
 * Requests are answered on the last call of the access handler, once the
 * whole request has been read (a body, which no route reads, is
 * discarded on the way): answering on the first call would make
 * libmicrohttpd close the connection after the response, since it could
 * not know where the next request begins, and keep-alive (Prometheus
 * scrapes reuse their connection) would be lost.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"

#define LISTEN_BACKLOG     128
#define CONNECTION_LIMIT   256
#define CONNECTION_TIMEOUT 30 /* seconds an idle connection is kept */

struct bs_http {
    struct MHD_Daemon *d;          /* owned */
    const struct bs_http_ops *ops; /* borrowed */
    int port;
};

static void set_msg(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_msg(char *errmsg, const char *fmt, ...)
{
    va_list ap;

    if (errmsg == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(errmsg, BS_HTTP_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

/* ========================================================== requests */

static const char TEXT[] = "text/plain; charset=utf-8";
static const char PROM[] = "text/plain; version=0.0.4; charset=utf-8";
static const char JSON[] = "application/json";

/* Queues body[0..len) with code. mode: MHD_RESPMEM_PERSISTENT for a
 * static string, MHD_RESPMEM_MUST_COPY for one on the stack,
 * MHD_RESPMEM_MUST_FREE for a malloc'd one handed over (freed here if the
 * response cannot be made). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code,
                             const char *type, char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode, bool allow)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* A one-line body of the server's own. */
static enum MHD_Result reply_line(struct MHD_Connection *conn, unsigned code,
                                  const char *line)
{
    return reply(conn, code, TEXT, (char *)line, strlen(line),
                 MHD_RESPMEM_PERSISTENT, code == MHD_HTTP_METHOD_NOT_ALLOWED);
}

/* A body from a callback: fn's result, or 500. */
static enum MHD_Result reply_fn(struct MHD_Connection *conn,
                                int (*fn)(void *, char **, size_t *), void *ctx,
                                const char *type)
{
    char *body = NULL, line[128];
    size_t len = 0;
    int rc = fn(ctx, &body, &len);

    if (rc != 0) {
        snprintf(line, sizeof line, "error: %s\n", bs_strerror(rc));
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, line,
                     strlen(line), MHD_RESPMEM_MUST_COPY, false);
    }
    if (body == NULL) {
        body = malloc(1);
        if (body == NULL)
            return MHD_NO;
        len = 0;
    }
    return reply(conn, MHD_HTTP_OK, type, body, len, MHD_RESPMEM_MUST_FREE,
                 false);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    const struct bs_http *h = cls;
    const struct bs_http_ops *ops = h->ops;

    static int seen; /* its address marks a request seen once */

    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        /* The headers are in; wait for the end of the request. */
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        /* A body no route reads: discarded. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_line(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed\n");
    if (strcmp(url, "/health") == 0)
        return reply_line(conn, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/ready") == 0 && ops->ready != NULL)
        return ops->ready(ops->ctx)
                   ? reply_line(conn, MHD_HTTP_OK, "ready\n")
                   : reply_line(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "not ready\n");
    if (strcmp(url, "/metrics") == 0 && ops->metrics != NULL)
        return reply_fn(conn, ops->metrics, ops->ctx, PROM);
    if (strcmp(url, "/status") == 0 && ops->status != NULL)
        return reply_fn(conn, ops->status, ops->ctx, JSON);
    return reply_line(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ============================================================ server */

/* Splits "HOST:PORT" / "[V6]:PORT" into host (cap bytes) and port. */
static int parse_addr(const char *addr, char *host, size_t cap, char *port,
                      size_t pcap, char *errmsg)
{
    const char *colon, *hs = addr, *he;
    char *end;
    long v;

    if (addr == NULL) {
        set_msg(errmsg, "no address");
        return BS_EINVAL;
    }
    if (addr[0] == '[') {
        he = strchr(addr, ']');
        if (he == NULL || he[1] != ':')
            goto bad;
        hs = addr + 1;
        colon = he + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)))
            goto bad;
        he = colon;
    }
    if ((size_t)(he - hs) >= cap || strlen(colon + 1) >= pcap ||
        colon[1] == '\0')
        goto bad;
    errno = 0;
    v = strtol(colon + 1, &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > 65535 || colon[1] < '0' ||
        colon[1] > '9')
        goto bad;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    snprintf(port, pcap, "%ld", v);
    return 0;
bad:
    set_msg(errmsg, "address '%.200s' is not HOST:PORT", addr);
    return BS_EINVAL;
}

/* A listening socket on addr; its port in *port. */
static int listen_on(const char *addr, int *fd_out, int *port, bool *v6,
                     char *errmsg)
{
    char host[256], pstr[8];
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd, one = 1, rc, g;

    if ((rc = parse_addr(addr, host, sizeof host, pstr, sizeof pstr, errmsg)) !=
        0)
        return rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    g = getaddrinfo(host[0] ? host : NULL, pstr, &hints, &ai);
    if (g != 0 || ai == NULL) {
        set_msg(errmsg, "address '%.200s': %s", addr, gai_strerror(g));
        return BS_EINVAL;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_msg(errmsg, "socket: %s", strerror(errno));
        freeaddrinfo(ai);
        return BS_EIO;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        set_msg(errmsg, "cannot listen on %.200s: %s", addr, strerror(errno));
        close(fd);
        freeaddrinfo(ai);
        return BS_EIO;
    }
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    *port = ss.ss_family == AF_INET6
                ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

int bs_http_start(const char *addr, const struct bs_http_ops *ops,
                  struct bs_http **out, char *errmsg)
{
    struct bs_http *h;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD;
    bool v6 = false;
    int fd, rc;

    *out = NULL;
    h = calloc(1, sizeof *h);
    if (h == NULL) {
        set_msg(errmsg, "out of memory");
        return BS_ENOMEM;
    }
    h->ops = ops;
    if ((rc = listen_on(addr, &fd, &h->port, &v6, errmsg)) != 0) {
        free(h);
        return rc;
    }
    if (v6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, h, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT,
        MHD_OPTION_END);
    if (h->d == NULL) {
        set_msg(errmsg, "cannot start the HTTP server on %.200s", addr);
        close(fd);
        free(h);
        return BS_EIO;
    }
    *out = h;
    return 0;
}

int bs_http_port(const struct bs_http *h)
{
    return h->port;
}

void bs_http_stop(struct bs_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}

/* ===================================================== Prometheus */

/* Room for n more bytes and a NUL. */
static bool prom_room(struct bs_prom *p, size_t n)
{
    size_t ncap;
    char *nb;

    if (p->err != 0)
        return false;
    if (p->len + n + 1 <= p->cap)
        return true;
    ncap = p->cap ? p->cap : 1024;
    while (ncap < p->len + n + 1) {
        if (ncap > SIZE_MAX / 2) {
            p->err = BS_ENOMEM;
            return false;
        }
        ncap *= 2;
    }
    nb = realloc(p->buf, ncap);
    if (nb == NULL) {
        p->err = BS_ENOMEM;
        return false;
    }
    p->buf = nb;
    p->cap = ncap;
    return true;
}

static void prom_put(struct bs_prom *p, const char *s, size_t n)
{
    if (!prom_room(p, n))
        return;
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void prom_puts(struct bs_prom *p, const char *s)
{
    prom_put(p, s, strlen(s));
}

static bool name_ok(const char *s, bool colon)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '_' || (colon && c == ':');

        if (!alpha && (n == 0 || c < '0' || c > '9'))
            return false;
    }
    return n > 0 && n <= BS_PROM_NAME_MAX;
}

/* Whether "# TYPE name " begins a line of the text. */
static bool prom_declared(const struct bs_prom *p, const char *name)
{
    size_t nl = strlen(name);
    const char *at = p->buf;

    while (at != NULL && (at = strstr(at, "# TYPE ")) != NULL) {
        if ((at == p->buf || at[-1] == '\n') &&
            strncmp(at + 7, name, nl) == 0 && at[7 + nl] == ' ')
            return true;
        at += 7;
    }
    return false;
}

void bs_prom_metric(struct bs_prom *p, const char *name, const char *type,
                    const char *help)
{
    if (p->err != 0)
        return;
    if (!name_ok(name, true) || type == NULL ||
        (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0)) {
        p->err = BS_EINVAL;
        return;
    }
    if (strcmp(p->cur, name) == 0)
        return;
    if (prom_declared(p, name)) {
        p->err = BS_EINVAL;
        return;
    }
    if (help != NULL) {
        prom_puts(p, "# HELP ");
        prom_puts(p, name);
        prom_puts(p, " ");
        for (const char *c = help; *c; c++) {
            if (*c == '\\')
                prom_puts(p, "\\\\");
            else if (*c == '\n')
                prom_puts(p, "\\n");
            else
                prom_put(p, c, 1);
        }
        prom_puts(p, "\n");
    }
    prom_puts(p, "# TYPE ");
    prom_puts(p, name);
    prom_puts(p, " ");
    prom_puts(p, type);
    prom_puts(p, "\n");
    if (p->err == 0)
        snprintf(p->cur, sizeof p->cur, "%s", name);
}

/* The shortest %g form that reads back as v; Prometheus's NaN and Inf. */
static void format_value(double v, char *buf, size_t cap)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

void bs_prom_sample(struct bs_prom *p, const char *name, const char *labels,
                    double value)
{
    char v[64];

    if (p->err != 0)
        return;
    if (name == NULL || p->cur[0] == '\0' || strcmp(name, p->cur) != 0 ||
        (labels != NULL && strchr(labels, '\n') != NULL)) {
        p->err = BS_EINVAL;
        return;
    }
    format_value(value, v, sizeof v);
    prom_puts(p, name);
    if (labels != NULL && labels[0] != '\0') {
        prom_puts(p, "{");
        prom_puts(p, labels);
        prom_puts(p, "}");
    }
    prom_puts(p, " ");
    prom_puts(p, v);
    prom_puts(p, "\n");
}

int bs_prom_label(char *dst, size_t cap, const char *name, const char *value)
{
    size_t len = strlen(dst), need = 0;
    char *at;

    if (!name_ok(name, false) || value == NULL)
        return BS_EINVAL;
    for (const char *c = value; *c; c++)
        need += (*c == '\\' || *c == '"' || *c == '\n') ? 2 : 1;
    need += (len ? 1 : 0) + strlen(name) + 3; /* ,name="" */
    if (len + need + 1 > cap)
        return BS_ETOOBIG;
    at = dst + len;
    if (len)
        *at++ = ',';
    at += sprintf(at, "%s=\"", name);
    for (const char *c = value; *c; c++) {
        if (*c == '\\' || *c == '"') {
            *at++ = '\\';
            *at++ = *c;
        } else if (*c == '\n') {
            *at++ = '\\';
            *at++ = 'n';
        } else {
            *at++ = *c;
        }
    }
    *at++ = '"';
    *at = '\0';
    return 0;
}

int bs_prom_finish(struct bs_prom *p, char **body, size_t *len)
{
    int rc = p->err;

    *body = NULL;
    *len = 0;
    if (rc == 0 && p->buf == NULL) {
        if (prom_room(p, 0))
            p->buf[0] = '\0';
        rc = p->err;
    }
    if (rc != 0) {
        bs_prom_free(p);
        return rc;
    }
    *body = p->buf;
    *len = p->len;
    p->buf = NULL;
    bs_prom_free(p);
    return 0;
}

void bs_prom_free(struct bs_prom *p)
{
    if (p == NULL)
        return;
    free(p->buf);
    memset(p, 0, sizeof *p);
}
