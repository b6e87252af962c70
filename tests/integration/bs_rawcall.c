/*
 * bs_rawcall.c - a tiny gRPC client for the integration tests: sends raw
 * bytes to one unary method of a server and prints what came back, so that
 * test_malformed.sh can feed a node bytes that no well-behaved client
 * (etcdctl, basalt kv) would ever send.
 *
 *   bs_rawcall [--timeout MS] HOST:PORT /pkg.Service/Method [HEX]
 *
 * The request is HEX (hex digits; spaces, colons and newlines ignored), or
 * the raw bytes of stdin when HEX is absent ("" sends an empty message).
 * The output is three lines, stable for grep:
 *
 *   status=<gRPC code> <NAME>
 *   message=<the status message, "" if none>
 *   response=<the response bytes in hex, empty unless status is OK>
 *
 * Exit status: 0 when the call completed with any status (the status is
 * the test's business, not this tool's), 2 on bad usage or input, 3 when
 * the call could not be made at all.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "errors.h"
#include "status.h"

struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    char *msg;
    unsigned char *data;
    size_t len;
};

static void on_done(void *ctx, const struct bs_rpc_result *res)
{
    struct outcome *o = ctx;
    pthread_mutex_lock(&o->mu);
    o->status = (int)res->status;
    o->msg = strdup(res->msg ? res->msg : "");
    if (res->data && res->len > 0) {
        o->data = malloc(res->len);
        if (o->data) {
            memcpy(o->data, res->data, res->len);
            o->len = res->len;
        }
    }
    o->done = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex into a malloc'd buffer. Returns 0, or -1 on a bad digit or
 * an odd number of digits. */
static int parse_hex(const char *s, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(s);
    unsigned char *b = malloc(n / 2 + 1);
    if (!b)
        return -1;
    size_t len = 0;
    int hi = -1;
    for (; *s; s++) {
        if (*s == ' ' || *s == ':' || *s == '\n' || *s == '\t')
            continue;
        int v = hexval((unsigned char)*s);
        if (v < 0) {
            free(b);
            return -1;
        }
        if (hi < 0) {
            hi = v;
        } else {
            b[len++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0) {
        free(b);
        return -1;
    }
    *out = b;
    *outlen = len;
    return 0;
}

/* Reads all of stdin into a malloc'd buffer. Returns 0 or -1. */
static int read_stdin(unsigned char **out, size_t *outlen)
{
    size_t cap = 4096, len = 0;
    unsigned char *b = malloc(cap);
    if (!b)
        return -1;
    for (;;) {
        if (len == cap) {
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return -1;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + len, 1, cap - len, stdin);
        len += r;
        if (r == 0) {
            if (ferror(stdin)) {
                free(b);
                return -1;
            }
            break;
        }
    }
    *out = b;
    *outlen = len;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bs_rawcall [--timeout MS] HOST:PORT "
                    "/pkg.Service/Method [HEX]\n"
                    "  without HEX, the request is the bytes of stdin\n");
}

int main(int argc, char **argv)
{
    long timeout_ms = 5000;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0) {
        char *end;
        errno = 0;
        timeout_ms = strtol(argv[i + 1], &end, 10);
        if (errno || *end || timeout_ms <= 0) {
            usage();
            return 2;
        }
        i += 2;
    }
    if (argc - i < 2 || argc - i > 3) {
        usage();
        return 2;
    }
    const char *addr = argv[i], *method = argv[i + 1];
    unsigned char *req = NULL;
    size_t len = 0;
    int rc = argc - i == 3 ? parse_hex(argv[i + 2], &req, &len)
                           : read_stdin(&req, &len);
    if (rc != 0) {
        fprintf(stderr, "bs_rawcall: cannot read the request (bad hex?)\n");
        return 2;
    }

    struct bs_rpc_client *cl = NULL;
    struct bs_rpc_channel *ch = NULL;
    struct outcome o = {.status = -1};
    pthread_mutex_init(&o.mu, NULL);
    pthread_cond_init(&o.cv, NULL);
    int ret = 3;
    if ((rc = bs_rpc_client_create(1, &cl)) != 0) {
        fprintf(stderr, "bs_rawcall: client: %s\n", bs_strerror(rc));
        goto out;
    }
    if ((rc = bs_rpc_channel_create(cl, addr, NULL, &ch)) != 0) {
        fprintf(stderr, "bs_rawcall: channel to %s: %s\n", addr,
                bs_strerror(rc));
        goto out;
    }
    rc = bs_rpc_channel_call(ch, method, req ? (void *)req : (void *)"", len,
                             timeout_ms, on_done, &o);
    if (rc != 0) {
        fprintf(stderr, "bs_rawcall: call: %s\n", bs_strerror(rc));
        goto out;
    }
    pthread_mutex_lock(&o.mu);
    while (!o.done)
        pthread_cond_wait(&o.cv, &o.mu);
    pthread_mutex_unlock(&o.mu);

    printf("status=%d %s\n", o.status, bs_rpc_status_name(o.status));
    printf("message=%s\n", o.msg ? o.msg : "");
    printf("response=");
    for (size_t k = 0; k < o.len; k++)
        printf("%02x", o.data[k]);
    printf("\n");
    fflush(stdout);
    ret = 0;
out:
    bs_rpc_channel_destroy(ch);
    bs_rpc_client_destroy(cl);
    pthread_cond_destroy(&o.cv);
    pthread_mutex_destroy(&o.mu);
    free(o.msg);
    free(o.data);
    free(req);
    return ret;
}
