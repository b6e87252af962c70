/*
 * protoc_util.c - protoc as the tests' reference codec (protoc_util.h).
 */
#include "protoc_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *bs_test_protoc(const char *mode, const char *msg, const char *file,
                     const void *in, size_t in_len, size_t *out_len)
{
    const char *protoc = getenv("BS_RPC_PROTOC");
    const char *dir = getenv("BS_RPC_PROTO_DIR");
    char in_path[] = "/tmp/bs_protoc_in_XXXXXX";
    char out_path[] = "/tmp/bs_protoc_out_XXXXXX";
    char cmd[2048];
    int fd_in, fd_out, rc;
    FILE *f;
    char *out;
    long n;

    ck_assert_msg(protoc != NULL && dir != NULL,
                  "BS_RPC_PROTOC and BS_RPC_PROTO_DIR must be set (meson "
                  "test sets them)");
    fd_in = mkstemp(in_path);
    fd_out = mkstemp(out_path);
    ck_assert_int_ge(fd_in, 0);
    ck_assert_int_ge(fd_out, 0);
    ck_assert_int_eq(write(fd_in, in, in_len), (ssize_t)in_len);
    close(fd_in);
    close(fd_out);
    snprintf(cmd, sizeof cmd,
             "'%s' --proto_path='%s' --%s=%s %s < %s > %s 2>&1", protoc, dir,
             mode, msg, file, in_path, out_path);
    rc = system(cmd);
    f = fopen(out_path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    out = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(fread(out, 1, (size_t)n, f), (size_t)n);
    out[n] = '\0';
    fclose(f);
    unlink(in_path);
    unlink(out_path);
    ck_assert_msg(rc == 0, "%s failed: %s", cmd, out);
    if (out_len != NULL)
        *out_len = (size_t)n;
    return out;
}

bool bs_test_bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}
