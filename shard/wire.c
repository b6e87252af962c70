/*
 * wire.c - the encoding primitives every shard/ format is built from:
 * LEB128 varints (zigzag for signed values), length-prefixed byte strings
 * (checksums are the engine's bs_eng_crc32c), plus the formatting of keys and shards in error messages.
 *
 * The reader is the one place that touches untrusted bytes: every read is
 * bounds-checked and the first bad one latches err = BS_ECORRUPT, so the
 * decoders above can read a whole structure and check err once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

/* ------------------------------------------------------------ writer */

static bool w_reserve(struct bs_shard__w *w, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (w->err != 0)
        return false;
    if (w->cap - w->len >= n)
        return true;
    cap = w->cap ? w->cap : 64;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) {
            w->err = BS_ENOMEM;
            return false;
        }
        cap *= 2;
    }
    p = realloc(w->p, cap);
    if (p == NULL) {
        w->err = BS_ENOMEM;
        return false;
    }
    w->p = p;
    w->cap = cap;
    return true;
}

void bs_shard__w_raw(struct bs_shard__w *w, const void *p, size_t n)
{
    if (n == 0 || !w_reserve(w, n))
        return;
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

void bs_shard__w_u8(struct bs_shard__w *w, uint8_t v)
{
    bs_shard__w_raw(w, &v, 1);
}

void bs_shard__w_uvar(struct bs_shard__w *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;

    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    bs_shard__w_raw(w, b, n);
}

void bs_shard__w_svar(struct bs_shard__w *w, int64_t v)
{
    bs_shard__w_uvar(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void bs_shard__w_bytes(struct bs_shard__w *w, const void *p, size_t n)
{
    bs_shard__w_uvar(w, n);
    bs_shard__w_raw(w, p, n);
}

/* ------------------------------------------------------------ reader */

static void r_fail(struct bs_shard__r *r)
{
    r->err = BS_ECORRUPT;
    r->off = r->len;
}

size_t bs_shard__r_left(const struct bs_shard__r *r)
{
    return r->len - r->off;
}

uint8_t bs_shard__r_u8(struct bs_shard__r *r)
{
    if (r->err != 0 || r->off >= r->len) {
        r_fail(r);
        return 0;
    }
    return r->p[r->off++];
}

bool bs_shard__r_bool(struct bs_shard__r *r)
{
    uint8_t v = bs_shard__r_u8(r);

    if (v > 1)
        r_fail(r);
    return v == 1;
}

uint64_t bs_shard__r_uvar(struct bs_shard__r *r)
{
    uint64_t v = 0;
    unsigned shift;

    for (shift = 0; shift < 64; shift += 7) {
        uint8_t b;

        if (r->err != 0 || r->off >= r->len)
            break;
        b = r->p[r->off++];
        /* The tenth byte may carry only the top bit. */
        if (shift == 63 && b > 1)
            break;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return v;
    }
    r_fail(r);
    return 0;
}

int64_t bs_shard__r_svar(struct bs_shard__r *r)
{
    uint64_t u = bs_shard__r_uvar(r);

    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

int64_t bs_shard__r_nonneg(struct bs_shard__r *r)
{
    uint64_t u = bs_shard__r_uvar(r);

    if (u > (uint64_t)INT64_MAX) {
        r_fail(r);
        return 0;
    }
    return (int64_t)u;
}

void bs_shard__r_bytes(struct bs_shard__r *r, const uint8_t **p, size_t *n)
{
    uint64_t len = bs_shard__r_uvar(r);

    *p = NULL;
    *n = 0;
    if (r->err != 0)
        return;
    if (len > bs_shard__r_left(r)) {
        r_fail(r);
        return;
    }
    if (len > 0)
        *p = r->p + r->off;
    *n = (size_t)len;
    r->off += (size_t)len;
}

size_t bs_shard__r_count(struct bs_shard__r *r, size_t min_item)
{
    uint64_t n = bs_shard__r_uvar(r);

    if (r->err != 0)
        return 0;
    if (min_item == 0)
        min_item = 1;
    if (n > bs_shard__r_left(r) / min_item) {
        r_fail(r);
        return 0;
    }
    return (size_t)n;
}

/* ---------------------------------------------------------- helpers */

int bs_shard__cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

char *bs_shard__fmt_key(char *buf, size_t cap, const uint8_t *key, size_t len)
{
    size_t o = 0;
    size_t i;

    for (i = 0; i < len && o + 8 < cap && i < 32; i++) {
        uint8_t c = key[i];

        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        }
    }
    if (i < len && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

void bs_shard__fmt_shard(char *buf, size_t cap, const struct bs_shard_desc *d)
{
    char s[200], e[200];

    bs_shard__fmt_key(s, sizeof s, d->start, d->start_len);
    if (d->end_len == 0)
        snprintf(e, sizeof e, "+inf");
    else {
        e[0] = '"';
        bs_shard__fmt_key(e + 1, sizeof e - 2, d->end, d->end_len);
        strcat(e, "\"");
    }
    snprintf(buf, cap,
             "shard %llu range [\"%s\", %s) epoch conf_ver=%llu version=%llu",
             (unsigned long long)d->id, s, e,
             (unsigned long long)d->epoch.conf_ver,
             (unsigned long long)d->epoch.version);
}

int bs_shard__err(char *errmsg, int err, const char *fmt, ...)
{
    va_list ap;

    if (errmsg != NULL) {
        va_start(ap, fmt);
        vsnprintf(errmsg, BS_SHARD_ERRMSG_LEN, fmt, ap);
        va_end(ap);
    }
    return err;
}
