/*
 * pb_int.h - the nanopb scaffolding that rpc/'s codecs share (codec.c,
 * admin_codec.c): error messages, growing arrays, byte-string callbacks,
 * encoding into an exact-size buffer, and the decode context that every
 * callback reports through. Private to rpc/.
 *
 * Decoding never trusts its input. A callback for a length-delimited
 * field reads the caller's buffer directly; nanopb hands a field sent
 * with another wire type to the callback as a copy on its own stack, so
 * bs_rpc__dec_in_buf checks that the stream still points into the
 * caller's buffer before anything is borrowed from it.
 */
#ifndef BS_RPC_PB_INT_H
#define BS_RPC_PB_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "codec.h"

/* errmsg (BS_RPC_ERRMSG_LEN bytes, may be NULL) = the formatted text. */
void bs_rpc__vset_msg(char *errmsg, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void bs_rpc__set_msg(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Makes room for element n of an array of elements of size sz whose
 * capacity is *cap: returns arr itself, or a larger copy (the caller
 * stores it back), or NULL on out-of-memory (arr is then intact). A macro
 * would hide the assignment; a void ** would break aliasing rules. */
void *bs_rpc__grow(void *arr, size_t *cap, size_t n, size_t sz);

/* ------------------------------------------------------------ encoding */

/* A byte string to write. always: write it even when empty (a oneof
 * member or a repeated element has presence; a plain proto3 field omits
 * its default). */
struct bs_rpc__bytes {
    const void *p;
    size_t len;
    bool always;
};

/* The callback that writes b (borrowed, must outlive the encode);
 * always starts false. */
pb_callback_t bs_rpc__enc_bytes(struct bs_rpc__bytes *b, const void *p,
                                size_t len);

/* Encodes msg into *out (malloc'd, exactly its size) of *len bytes.
 * Returns 0; *cb_err (may be NULL) when an encode callback failed and set
 * it (its message already in errmsg); BS_EINVAL otherwise when nanopb
 * refuses; BS_ENOMEM. */
int bs_rpc__encode(const pb_msgdesc_t *fields, const void *msg,
                   const char *what, const int *cb_err, char *errmsg,
                   uint8_t **out, size_t *len);

/* ------------------------------------------------------------ decoding */

/* The context of one decode. The first error a callback reports wins. */
struct bs_rpc__dec {
    const struct bs_rpc_limits *lim; /* the caller's, or deflim */
    struct bs_rpc_limits deflim;
    uintptr_t base, end; /* the caller's buffer */
    int err;             /* first error of a callback, 0 = none */
    char *errmsg;
    size_t n_entries; /* codec.c: entries decoded so far (all envelopes) */
    size_t n_kvs;     /* codec.c: key-values decoded so far (all ops) */
};

/* lim NULL: the defaults. Clears errmsg. */
void bs_rpc__dec_init(struct bs_rpc__dec *d, const struct bs_rpc_limits *lim,
                      const uint8_t *buf, size_t len, char *errmsg);
/* Records err and the message unless an error was recorded already;
 * returns false (what a nanopb callback returns to stop). */
bool bs_rpc__dec_fail(struct bs_rpc__dec *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* nanopb refused the bytes of what: BS_EPROTO "malformed what: why". */
bool bs_rpc__dec_pb_fail(struct bs_rpc__dec *d, pb_istream_t *s,
                         const char *what);
/* A whole message of len bytes within lim->max_message (BS_ETOOBIG). */
bool bs_rpc__dec_check_size(struct bs_rpc__dec *d, size_t len,
                            const char *what);
/* The rest of stream s lies inside the caller's buffer (see above). */
bool bs_rpc__dec_in_buf(struct bs_rpc__dec *d, pb_istream_t *s,
                        const char *what);
/* Takes the rest of s (a byte-string field) as a span of the caller's
 * buffer, at most max bytes (BS_ETOOBIG). *p is NULL when empty. */
bool bs_rpc__dec_span(struct bs_rpc__dec *d, pb_istream_t *s, const char *what,
                      size_t max, const uint8_t **p, size_t *n);

/* A byte string copied into a malloc'd buffer (NULL when empty); a
 * repeated field replaces (and frees) the previous copy. */
struct bs_rpc__copy {
    struct bs_rpc__dec *d;
    const char *what;
    size_t max;
    uint8_t **p;
    size_t *n;
};

/* The callback that fills *p and *n; c is borrowed until the decode
 * ends. */
pb_callback_t bs_rpc__copy_cb(struct bs_rpc__copy *c, struct bs_rpc__dec *d,
                              const char *what, size_t max, uint8_t **p,
                              size_t *n);

#endif
