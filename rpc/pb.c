/*
 * pb.c - the nanopb scaffolding shared by rpc/'s codecs (pb_int.h).
 */
#include "pb_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bs_rpc__vset_msg(char *errmsg, const char *fmt, va_list ap)
{
    if (errmsg != NULL)
        vsnprintf(errmsg, BS_RPC_ERRMSG_LEN, fmt, ap);
}

void bs_rpc__set_msg(char *errmsg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    bs_rpc__vset_msg(errmsg, fmt, ap);
    va_end(ap);
}

void *bs_rpc__grow(void *arr, size_t *cap, size_t n, size_t sz)
{
    size_t ncap;
    void *p;

    if (n < *cap)
        return arr;
    ncap = *cap ? *cap * 2 : 4;
    if (ncap > SIZE_MAX / sz)
        return NULL;
    p = realloc(arr, ncap * sz);
    if (p == NULL)
        return NULL;
    *cap = ncap;
    return p;
}

/* ============================================================ encoding */

static bool enc_bytes_cb(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct bs_rpc__bytes *b = *arg;

    if (b->len == 0 && !b->always)
        return true;
    return pb_encode_tag_for_field(s, f) &&
           pb_encode_string(s, (const pb_byte_t *)b->p, b->len);
}

pb_callback_t bs_rpc__enc_bytes(struct bs_rpc__bytes *b, const void *p,
                                size_t len)
{
    pb_callback_t cb;

    b->p = p;
    b->len = len;
    b->always = false;
    cb.funcs.encode = enc_bytes_cb;
    cb.arg = b;
    return cb;
}

int bs_rpc__encode(const pb_msgdesc_t *fields, const void *msg,
                   const char *what, const int *cb_err, char *errmsg,
                   uint8_t **out, size_t *len)
{
    pb_ostream_t os;
    size_t size;
    uint8_t *buf;

    *out = NULL;
    *len = 0;
    if (!pb_get_encoded_size(&size, fields, msg)) {
        if (cb_err && *cb_err)
            return *cb_err;
        bs_rpc__set_msg(errmsg, "cannot encode %s", what);
        return BS_EINVAL;
    }
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        bs_rpc__set_msg(errmsg, "out of memory encoding %s (%zu bytes)", what,
                        size);
        return BS_ENOMEM;
    }
    os = pb_ostream_from_buffer(buf, size);
    if (!pb_encode(&os, fields, msg)) {
        free(buf);
        if (cb_err && *cb_err)
            return *cb_err;
        bs_rpc__set_msg(errmsg, "cannot encode %s: %s", what,
                        PB_GET_ERROR(&os));
        return BS_EINVAL;
    }
    assert(os.bytes_written == size);
    *out = buf;
    *len = size;
    return 0;
}

/* ============================================================ decoding */

void bs_rpc__dec_init(struct bs_rpc__dec *d, const struct bs_rpc_limits *lim,
                      const uint8_t *buf, size_t len, char *errmsg)
{
    memset(d, 0, sizeof *d);
    if (lim == NULL) {
        bs_rpc_limits_default(&d->deflim);
        lim = &d->deflim;
    }
    d->lim = lim;
    d->base = (uintptr_t)buf;
    d->end = (uintptr_t)buf + len;
    d->errmsg = errmsg;
    if (errmsg != NULL)
        errmsg[0] = '\0';
}

bool bs_rpc__dec_fail(struct bs_rpc__dec *d, int err, const char *fmt, ...)
{
    va_list ap;

    if (d->err == 0) {
        d->err = err;
        va_start(ap, fmt);
        bs_rpc__vset_msg(d->errmsg, fmt, ap);
        va_end(ap);
    }
    return false;
}

bool bs_rpc__dec_pb_fail(struct bs_rpc__dec *d, pb_istream_t *s,
                         const char *what)
{
    return bs_rpc__dec_fail(d, BS_EPROTO, "malformed %s: %s", what,
                            PB_GET_ERROR(s));
}

bool bs_rpc__dec_check_size(struct bs_rpc__dec *d, size_t len, const char *what)
{
    if (len > d->lim->max_message)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "%s is %zu bytes, more than the limit of %zu",
                                what, len, d->lim->max_message);
    return true;
}

bool bs_rpc__dec_in_buf(struct bs_rpc__dec *d, pb_istream_t *s,
                        const char *what)
{
    uintptr_t at = (uintptr_t)s->state;

    if (at < d->base || at > d->end || s->bytes_left > d->end - at)
        return bs_rpc__dec_fail(d, BS_EPROTO, "malformed %s: wrong wire type",
                                what);
    return true;
}

bool bs_rpc__dec_span(struct bs_rpc__dec *d, pb_istream_t *s, const char *what,
                      size_t max, const uint8_t **p, size_t *n)
{
    const uint8_t *at = s->state;
    size_t left = s->bytes_left;

    if (!bs_rpc__dec_in_buf(d, s, what))
        return false;
    if (left > max)
        return bs_rpc__dec_fail(d, BS_ETOOBIG,
                                "%s is %zu bytes, more than the limit of %zu",
                                what, left, max);
    if (!pb_read(s, NULL, left))
        return bs_rpc__dec_pb_fail(d, s, what);
    *p = left ? at : NULL;
    *n = left;
    return true;
}

static bool copy_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    struct bs_rpc__copy *c = *arg;
    const uint8_t *src = NULL;
    uint8_t *cp = NULL;
    size_t n = 0;

    (void)f;
    if (!bs_rpc__dec_span(c->d, s, c->what, c->max, &src, &n))
        return false;
    if (n > 0) {
        cp = malloc(n);
        if (cp == NULL)
            return bs_rpc__dec_fail(c->d, BS_ENOMEM, "out of memory copying %s",
                                    c->what);
        memcpy(cp, src, n);
    }
    free(*c->p);
    *c->p = cp;
    *c->n = n;
    return true;
}

pb_callback_t bs_rpc__copy_cb(struct bs_rpc__copy *c, struct bs_rpc__dec *d,
                              const char *what, size_t max, uint8_t **p,
                              size_t *n)
{
    pb_callback_t cb;

    c->d = d;
    c->what = what;
    c->max = max;
    c->p = p;
    c->n = n;
    cb.funcs.decode = copy_cb;
    cb.arg = c;
    return cb;
}
