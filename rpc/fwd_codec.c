/*
 * fwd_codec.c - ForwardBatch and ForwardReplies (rpc/proto/node.proto),
 * the batched requests and answers of the Forward stream, to and from
 * plain arrays (node_int.h, struct bs_fwd_item and struct bs_fwd_reply).
 *
 * Decoding borrows: byte strings point into the decoded buffer, which the
 * caller keeps alive; only the arrays are allocated. Nothing from the
 * wire is trusted: a malformed message, an id of 0, a string or byte
 * field beyond the message, or more items than BS_FWD_MAX_ITEMS is
 * BS_EPROTO / BS_ETOOBIG.
 */
#include "node_int.h"

#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "node.pb.h"

/* ------------------------------------------------------------ encoding */

struct span {
    const void *p;
    size_t n;
};

static bool enc_span(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct span *sp = *arg;
    if (sp->n == 0)
        return true; /* proto3: an empty string is not sent */
    return pb_encode_tag_for_field(s, f) && pb_encode_string(s, sp->p, sp->n);
}

struct items_src {
    const struct bs_fwd_item *it;
    size_t n;
};

static bool enc_items(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct items_src *src = *arg;
    for (size_t i = 0; i < src->n; i++) {
        struct span req = {src->it[i].req, src->it[i].len};
        basalt_node_ForwardItem m = basalt_node_ForwardItem_init_zero;
        m.id = src->it[i].id;
        m.type = src->it[i].type;
        m.request.funcs.encode = enc_span;
        m.request.arg = &req;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_node_ForwardItem_fields, &m))
            return false;
    }
    return true;
}

static int encode(const pb_msgdesc_t *fields, const void *m, uint8_t **out,
                  size_t *len)
{
    size_t sz = 0;
    if (!pb_get_encoded_size(&sz, fields, m))
        return BS_EINVAL;
    uint8_t *buf = malloc(sz ? sz : 1);
    if (!buf)
        return BS_ENOMEM;
    pb_ostream_t os = pb_ostream_from_buffer(buf, sz);
    if (!pb_encode(&os, fields, m)) {
        free(buf);
        return BS_EINVAL;
    }
    *out = buf;
    *len = os.bytes_written;
    return 0;
}

/* The encoders refuse (BS_EINVAL) what the decoders would refuse, so a
 * bad element never costs the whole batch at the receiver. */
int bs_fwd_batch_encode(const struct bs_fwd_item *it, size_t n, uint8_t **out,
                        size_t *len)
{
    if (n > BS_FWD_MAX_ITEMS)
        return BS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (it[i].id == 0)
            return BS_EINVAL;
    struct items_src src = {it, n};
    basalt_node_ForwardBatch m = basalt_node_ForwardBatch_init_zero;
    m.items.funcs.encode = enc_items;
    m.items.arg = &src;
    return encode(basalt_node_ForwardBatch_fields, &m, out, len);
}

struct replies_src {
    const struct bs_fwd_reply *r;
    size_t n;
};

static bool enc_replies(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct replies_src *src = *arg;
    for (size_t i = 0; i < src->n; i++) {
        const struct bs_fwd_reply *r = &src->r[i];
        struct span msg = {r->msg, r->msg_len};
        struct span resp = {r->resp, r->resp_len};
        basalt_node_ForwardReply m = basalt_node_ForwardReply_init_zero;
        m.id = r->id;
        m.rc = r->rc;
        m.status = r->status;
        m.msg.funcs.encode = enc_span;
        m.msg.arg = &msg;
        m.response.funcs.encode = enc_span;
        m.response.arg = &resp;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, basalt_node_ForwardReply_fields, &m))
            return false;
    }
    return true;
}

int bs_fwd_replies_encode(const struct bs_fwd_reply *r, size_t n, uint8_t **out,
                          size_t *len)
{
    if (n > BS_FWD_MAX_ITEMS)
        return BS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (r[i].id == 0 || r[i].rc > 0 || r[i].status > 16)
            return BS_EINVAL;
    struct replies_src src = {r, n};
    basalt_node_ForwardReplies m = basalt_node_ForwardReplies_init_zero;
    m.replies.funcs.encode = enc_replies;
    m.replies.arg = &src;
    return encode(basalt_node_ForwardReplies_fields, &m, out, len);
}

/* ------------------------------------------------------------ decoding */

struct dec {
    const uint8_t *buf;
    size_t len;
    int rc;
    void *arr; /* items or replies */
    size_t n, cap, elem;
};

/* A byte string inside the decoded buffer: borrow it. */
static bool dec_span(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct span *sp = *arg;
    sp->p = s->state;
    sp->n = s->bytes_left;
    return pb_read(s, NULL, s->bytes_left);
}

static void *dec_push(struct dec *d)
{
    if (d->n == BS_FWD_MAX_ITEMS) {
        d->rc = BS_ETOOBIG;
        return NULL;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        void *a = realloc(d->arr, cap * d->elem);
        if (!a) {
            d->rc = BS_ENOMEM;
            return NULL;
        }
        d->arr = a;
        d->cap = cap;
    }
    return (char *)d->arr + d->n++ * d->elem;
}

/* Whether [p, p + n) lies in the buffer (nanopb's substreams share the
 * buffer, so a borrowed pointer must). */
static bool in_buf(const struct dec *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    return n == 0 || (b >= d->buf && b + n <= d->buf + d->len);
}

static bool dec_item(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct dec *d = *arg;
    struct span req = {NULL, 0};
    basalt_node_ForwardItem m = basalt_node_ForwardItem_init_zero;
    m.request.funcs.decode = dec_span;
    m.request.arg = &req;
    if (!pb_decode(s, basalt_node_ForwardItem_fields, &m))
        return false;
    if (m.id == 0 || m.type > 255 || !in_buf(d, req.p, req.n)) {
        d->rc = BS_EPROTO;
        return false;
    }
    struct bs_fwd_item *it = dec_push(d);
    if (!it)
        return false;
    it->id = m.id;
    it->type = (uint8_t)m.type;
    it->req = req.p;
    it->len = req.n;
    return true;
}

int bs_fwd_batch_decode(const uint8_t *buf, size_t len, struct bs_fwd_item **it,
                        size_t *n)
{
    struct dec d = {.buf = buf, .len = len, .elem = sizeof(**it)};
    basalt_node_ForwardBatch m = basalt_node_ForwardBatch_init_zero;
    m.items.funcs.decode = dec_item;
    m.items.arg = &d;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, basalt_node_ForwardBatch_fields, &m)) {
        free(d.arr);
        return d.rc ? d.rc : BS_EPROTO;
    }
    *it = d.arr;
    *n = d.n;
    return 0;
}

static bool dec_reply(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct dec *d = *arg;
    struct span msg = {NULL, 0}, resp = {NULL, 0};
    basalt_node_ForwardReply m = basalt_node_ForwardReply_init_zero;
    m.msg.funcs.decode = dec_span;
    m.msg.arg = &msg;
    m.response.funcs.decode = dec_span;
    m.response.arg = &resp;
    if (!pb_decode(s, basalt_node_ForwardReply_fields, &m))
        return false;
    if (m.id == 0 || !in_buf(d, msg.p, msg.n) || !in_buf(d, resp.p, resp.n) ||
        m.rc > 0 || m.status > 16) {
        d->rc = BS_EPROTO;
        return false;
    }
    struct bs_fwd_reply *r = dec_push(d);
    if (!r)
        return false;
    r->id = m.id;
    r->rc = m.rc;
    r->status = m.status;
    r->msg = msg.p;
    r->msg_len = msg.n;
    r->resp = resp.p;
    r->resp_len = resp.n;
    return true;
}

int bs_fwd_replies_decode(const uint8_t *buf, size_t len,
                          struct bs_fwd_reply **r, size_t *n)
{
    struct dec d = {.buf = buf, .len = len, .elem = sizeof(**r)};
    basalt_node_ForwardReplies m = basalt_node_ForwardReplies_init_zero;
    m.replies.funcs.decode = dec_reply;
    m.replies.arg = &d;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, basalt_node_ForwardReplies_fields, &m)) {
        free(d.arr);
        return d.rc ? d.rc : BS_EPROTO;
    }
    *r = d.arr;
    *n = d.n;
    return 0;
}
