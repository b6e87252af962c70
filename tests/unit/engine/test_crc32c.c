/*
 * test_crc32c.c - engine/crc32c.c: the published check values of CRC32C,
 * incremental use, and the hardware path agreeing with the table one on
 * every length and alignment.
 */
#include "eng_fixture.h"

#include "engine_int.h"

START_TEST(test_vectors)
{
    ck_assert_uint_eq(bs_eng_crc32c(0, "", 0), 0);
    ck_assert_uint_eq(bs_eng_crc32c(0, "123456789", 9), 0xe3069283u);
    ck_assert_uint_eq(bs_eng__crc32c_sw(0, "123456789", 9), 0xe3069283u);
    /* RFC 3720 B.4: 32 bytes of zeros, of 0xff, ascending. */
    uint8_t b[32];
    memset(b, 0, sizeof(b));
    ck_assert_uint_eq(bs_eng_crc32c(0, b, 32), 0x8a9136aau);
    memset(b, 0xff, sizeof(b));
    ck_assert_uint_eq(bs_eng_crc32c(0, b, 32), 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    ck_assert_uint_eq(bs_eng_crc32c(0, b, 32), 0x46dd794eu);
    /* Incremental = one shot. */
    uint32_t c = bs_eng_crc32c(0, "1234", 4);
    ck_assert_uint_eq(bs_eng_crc32c(c, "56789", 5), 0xe3069283u);
}
END_TEST

START_TEST(test_hw_matches_sw)
{
    uint8_t buf[1100];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= sizeof(buf); len += 1 + len / 8)
            ck_assert_uint_eq(bs_eng_crc32c(7, buf + off, len),
                              bs_eng__crc32c_sw(7, buf + off, len));
}
END_TEST

static Suite *crc_suite(void)
{
    Suite *s = suite_create("engine_crc32c");
    TCase *tc = tcase_create("crc32c");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_vectors);
    tcase_add_test(tc, test_hw_matches_sw);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fx_run(crc_suite());
}
