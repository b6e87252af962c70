/*
 * faults.c - see faults.h. Linked only into the tests that wrap malloc,
 * calloc and realloc; the others have no __real_malloc.
 */
#include <stdlib.h>
#include <string.h>

#include "faults.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

/* Allocations left before the injected failure; < 0: never fail. */
static long budget = -1;
static long failures;

static bool fail_now(void)
{
    if (budget < 0)
        return false;
    if (budget == 0) {
        failures++;
        return true;
    }
    budget--;
    return false;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return fail_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

/* The k-th allocation from now fails (0: the next). */
static void arm(long k)
{
    failures = 0;
    budget = k;
}

/* No allocation fails any more; returns how many did since arm. */
static long disarm(void)
{
    budget = -1;
    return failures;
}

long th_apply_under_faults(struct bs_pd_state *st, uint64_t index,
                           const uint8_t *data, size_t len, int want)
{
    size_t before_len;
    uint8_t *before = th_image(st, &before_len);
    uint64_t applied = bs_pd_applied(st);
    long k;
    for (k = 0;; k++) {
        arm(k);
        int rc = bs_pd_apply(st, index, data, len, NULL);
        /* The failure may have hit an allocation whose failure the code
         * absorbs; then it must have succeeded entirely. */
        if (disarm() == 0 || rc != BS_ENOMEM) {
            ck_assert_msg(rc == want, "%s: got %s want %s",
                          bs_pd_cmd_type_name(len > 1 ? data[1] : 0),
                          bs_err_name(rc), bs_err_name(want));
            ck_assert_uint_eq(bs_pd_applied(st), index);
            break;
        }
        ck_assert_uint_eq(bs_pd_applied(st), applied);
        size_t l;
        uint8_t *now = th_image(st, &l);
        ck_assert_msg(l == before_len && memcmp(now, before, l) == 0,
                      "state changed by a failed apply (k = %ld)", k);
        free(now);
        th_check(st);
        ck_assert_int_lt(k, 10000);
    }
    free(before);
    th_check(st);
    return k;
}

long th_decode_all_under_faults(struct bs_pd_state *st, const uint8_t *img,
                                size_t len)
{
    size_t old_len;
    uint8_t *old = th_image(st, &old_len);
    long k;
    for (k = 0;; k++) {
        arm(k);
        int rc = bs_pd_decode_all(st, img, len, NULL);
        if (disarm() == 0 || rc == 0) {
            ck_assert_int_eq(rc, 0);
            break;
        }
        ck_assert_int_eq(rc, BS_ENOMEM);
        size_t l;
        uint8_t *now = th_image(st, &l);
        ck_assert(l == old_len && memcmp(now, old, l) == 0);
        free(now);
    }
    free(old);
    return k;
}
