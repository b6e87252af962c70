/*
 * protoc_util.h - what the rpc codec tests share to check their bytes
 * against protoc's own encoder and decoder (the generated code's source
 * of truth), and to compare buffers.
 */
#ifndef BS_TEST_RPC_PROTOC_UTIL_H
#define BS_TEST_RPC_PROTOC_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Runs protoc over rpc/proto (BS_RPC_PROTOC and BS_RPC_PROTO_DIR, which
 * meson test sets): mode "decode" (bytes in, text out) or "encode" (text
 * in, bytes out) of message msg declared in file (e.g. "admin.proto").
 * Returns the output, malloc'd and NUL-terminated, its length in *out_len
 * (may be NULL). A failing protoc fails the test with its output. */
char *bs_test_protoc(const char *mode, const char *msg, const char *file,
                     const void *in, size_t in_len, size_t *out_len);

/* a[alen] and b[blen] hold the same bytes. */
bool bs_test_bytes_eq(const void *a, size_t alen, const void *b, size_t blen);

#endif
