/*
 * test_codec.c - the small value types of raft.h: conf change encoding
 * (round trips, malformed input refused, corrupt input answered with
 * BS_ECORRUPT and never a crash), deep copies of messages, entry vectors,
 * entry sizes, configuration equality, and the name functions.
 */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    /* xorshift64*: fixed seed, deterministic. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static bool cc_equal(const struct bs_raft_conf_change *a,
                     const struct bs_raft_conf_change *b)
{
    if (a->transition != b->transition || a->n_changes != b->n_changes)
        return false;
    for (uint32_t i = 0; i < a->n_changes; i++)
        if (a->changes[i].type != b->changes[i].type ||
            a->changes[i].node_id != b->changes[i].node_id)
            return false;
    return true;
}

static void random_cc(struct bs_raft_conf_change *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->transition = (uint8_t)(rng() % 3);
    cc->n_changes = (uint32_t)(rng() % (BS_RAFT_MAX_CC + 1));
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        cc->changes[i].type = (uint8_t)(rng() % 3);
        uint64_t r = rng();
        cc->changes[i].node_id = r % 4 == 0 ? UINT64_MAX : 1 + r % 1000;
    }
}

START_TEST(test_cc_round_trip)
{
    struct bs_raft_conf_change cc, out;
    uint8_t buf[BS_RAFT_CC_MAX_ENCODED], buf2[BS_RAFT_CC_MAX_ENCODED];
    /* The leave (no changes) and a full change. */
    memset(&cc, 0, sizeof(cc));
    int len = bs_raft_cc_encode(&cc, buf);
    ck_assert_int_gt(len, 0);
    ck_assert_int_le(len, BS_RAFT_CC_MAX_ENCODED);
    memset(&out, 0xff, sizeof(out));
    ck_assert_int_eq(bs_raft_cc_decode(buf, (size_t)len, &out), 0);
    ck_assert_uint_eq(out.n_changes, 0);
    for (int k = 0; k < 2000; k++) {
        random_cc(&cc);
        if (k == 0) {
            cc.n_changes = BS_RAFT_MAX_CC;
            for (uint32_t i = 0; i < cc.n_changes; i++) {
                cc.changes[i].type = (uint8_t)(i % 3);
                cc.changes[i].node_id = UINT64_MAX - i;
            }
        }
        len = bs_raft_cc_encode(&cc, buf);
        ck_assert_int_gt(len, 0);
        ck_assert_int_le(len, BS_RAFT_CC_MAX_ENCODED);
        memset(&out, 0xff, sizeof(out));
        ck_assert_int_eq(bs_raft_cc_decode(buf, (size_t)len, &out), 0);
        ck_assert(cc_equal(&cc, &out));
        /* Deterministic: the same change encodes to the same bytes. */
        ck_assert_int_eq(bs_raft_cc_encode(&out, buf2), len);
        ck_assert_mem_eq(buf, buf2, (size_t)len);
    }
}
END_TEST

START_TEST(test_cc_encode_refuses_malformed)
{
    struct bs_raft_conf_change cc;
    uint8_t buf[BS_RAFT_CC_MAX_ENCODED + 64];
    memset(&cc, 0, sizeof(cc));
    cc.n_changes = BS_RAFT_MAX_CC + 1;
    ck_assert_int_eq(bs_raft_cc_encode(&cc, buf), BS_EINVAL);
    cc.n_changes = 1;
    cc.changes[0].type = 3;
    cc.changes[0].node_id = 1;
    ck_assert_int_eq(bs_raft_cc_encode(&cc, buf), BS_EINVAL);
    cc.changes[0].type = BS_RAFT_CC_REMOVE;
    cc.transition = 3;
    ck_assert_int_eq(bs_raft_cc_encode(&cc, buf), BS_EINVAL);
    cc.transition = BS_RAFT_CC_TRANSITION_JOINT_EXPLICIT;
    ck_assert_int_gt(bs_raft_cc_encode(&cc, buf), 0);
}
END_TEST

static bool cc_valid(const struct bs_raft_conf_change *cc)
{
    if (cc->transition > 2 || cc->n_changes > BS_RAFT_MAX_CC)
        return false;
    for (uint32_t i = 0; i < cc->n_changes; i++)
        if (cc->changes[i].type > 2)
            return false;
    return true;
}

/* Every strict prefix and every extension of a valid encoding is corrupt;
 * random bytes and random mutations either decode to a valid change that
 * re-encodes, or are refused with BS_ECORRUPT. */
START_TEST(test_cc_decode_corrupt)
{
    struct bs_raft_conf_change cc, out;
    uint8_t buf[BS_RAFT_CC_MAX_ENCODED + 16], re[BS_RAFT_CC_MAX_ENCODED];
    ck_assert_int_eq(bs_raft_cc_decode(NULL, 0, &out), BS_ECORRUPT);
    for (int k = 0; k < 300; k++) {
        random_cc(&cc);
        int len = bs_raft_cc_encode(&cc, buf);
        ck_assert_int_gt(len, 0);
        for (int p = 0; p < len; p++)
            ck_assert_msg(bs_raft_cc_decode(buf, (size_t)p, &out) ==
                              BS_ECORRUPT,
                          "prefix %d of %d decoded", p, len);
        buf[len] = (uint8_t)rng();
        ck_assert_msg(bs_raft_cc_decode(buf, (size_t)len + 1, &out) ==
                          BS_ECORRUPT,
                      "trailing byte accepted");
        /* One-byte mutations. */
        for (int m = 0; m < 20; m++) {
            uint8_t mut[BS_RAFT_CC_MAX_ENCODED];
            memcpy(mut, buf, (size_t)len);
            mut[rng() % (uint64_t)len] ^= (uint8_t)(1 + rng() % 255);
            int rc = bs_raft_cc_decode(mut, (size_t)len, &out);
            ck_assert(rc == 0 || rc == BS_ECORRUPT);
            if (rc == 0) {
                ck_assert(cc_valid(&out));
                ck_assert_int_gt(bs_raft_cc_encode(&out, re), 0);
            }
        }
    }
    for (int k = 0; k < 20000; k++) {
        size_t len = rng() % (BS_RAFT_CC_MAX_ENCODED + 8);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rng();
        if (k % 2 && len > 0)
            buf[0] = (uint8_t)(rng() % 4); /* plausible first byte */
        int rc = bs_raft_cc_decode(buf, len, &out);
        ck_assert(rc == 0 || rc == BS_ECORRUPT);
        if (rc == 0) {
            ck_assert(cc_valid(&out));
            int l2 = bs_raft_cc_encode(&out, re);
            ck_assert_int_gt(l2, 0);
        }
    }
}
END_TEST

START_TEST(test_msg_copy_and_free)
{
    struct bs_raft_entry ents[3];
    memset(ents, 0, sizeof(ents));
    uint8_t d0[5] = "hello", d2[3] = "abc";
    ents[0] =
        (struct bs_raft_entry){.term = 2, .index = 5, .len = 5, .data = d0};
    ents[1] = (struct bs_raft_entry){.term = 2, .index = 6};
    ents[2] = (struct bs_raft_entry){.term = 3,
                                     .index = 7,
                                     .len = 3,
                                     .type = BS_RAFT_ENTRY_CONF_CHANGE,
                                     .data = d2};
    uint8_t img[4] = {9, 8, 7, 6};
    struct bs_raft_msg m = fx_msg(BS_RAFT_MSG_APP, 1, 2, 3);
    m.flags = BS_RAFT_MSG_F_TRANSFER;
    m.reject = true;
    m.log_term = 2;
    m.index = 4;
    m.commit = 4;
    m.reject_hint = 11;
    m.ctx = 77;
    m.entries = ents;
    m.n_entries = 3;
    m.snapshot.meta.index = 9;
    m.snapshot.meta.term = 2;
    m.snapshot.meta.conf.voters[0] = 1;
    m.snapshot.meta.conf.n_voters = 1;
    m.snapshot.data = img;
    m.snapshot.len = 4;

    struct bs_raft_msg c;
    ck_assert_int_eq(bs_raft_msg_copy(&c, &m), 0);
    ck_assert_uint_eq(c.type, m.type);
    ck_assert_uint_eq(c.flags, m.flags);
    ck_assert(c.reject);
    ck_assert_uint_eq(c.to, 2);
    ck_assert_uint_eq(c.from, 1);
    ck_assert_uint_eq(c.term, 3);
    ck_assert_uint_eq(c.log_term, 2);
    ck_assert_uint_eq(c.index, 4);
    ck_assert_uint_eq(c.commit, 4);
    ck_assert_uint_eq(c.reject_hint, 11);
    ck_assert_uint_eq(c.ctx, 77);
    ck_assert_uint_eq(c.n_entries, 3);
    ck_assert_ptr_ne(c.entries, ents);
    ck_assert_ptr_ne(c.entries[0].data, d0);
    ck_assert_mem_eq(c.entries[0].data, "hello", 5);
    ck_assert_uint_eq(c.entries[1].len, 0);
    ck_assert_ptr_null(c.entries[1].data);
    ck_assert_uint_eq(c.entries[2].type, BS_RAFT_ENTRY_CONF_CHANGE);
    ck_assert_uint_eq(c.entries[2].index, 7);
    ck_assert_mem_eq(c.entries[2].data, "abc", 3);
    ck_assert_ptr_ne(c.snapshot.data, img);
    ck_assert_uint_eq(c.snapshot.len, 4);
    ck_assert_mem_eq(c.snapshot.data, img, 4);
    ck_assert_uint_eq(c.snapshot.meta.index, 9);
    ck_assert(
        bs_raft_conf_state_equal(&c.snapshot.meta.conf, &m.snapshot.meta.conf));
    /* The copy is independent of the original. */
    d0[0] = 'J';
    img[0] = 0;
    ck_assert_mem_eq(c.entries[0].data, "hello", 5);
    ck_assert_uint_eq(c.snapshot.data[0], 9);

    /* A copy of a copy, then both freed. */
    struct bs_raft_msg c2;
    ck_assert_int_eq(bs_raft_msg_copy(&c2, &c), 0);
    bs_raft_msg_free(&c);
    ck_assert_mem_eq(c2.entries[2].data, "abc", 3);
    bs_raft_msg_free(&c2);

    /* Messages with nothing to own. */
    struct bs_raft_msg e = fx_msg(BS_RAFT_MSG_HEARTBEAT, 1, 2, 3), ce;
    ck_assert_int_eq(bs_raft_msg_copy(&ce, &e), 0);
    ck_assert_uint_eq(ce.n_entries, 0);
    ck_assert_uint_eq(ce.snapshot.len, 0);
    bs_raft_msg_free(&ce);
    bs_raft_msg_free(NULL);
}
END_TEST

START_TEST(test_entry_vec)
{
    struct bs_raft_entry_vec v = {0};
    uint8_t buf[8];
    for (uint64_t i = 1; i <= 1000; i++) {
        memset(buf, (int)(i & 0xff), sizeof(buf));
        struct bs_raft_entry e = {
            .term = 1, .index = i, .len = (uint32_t)(i % 9), .data = buf};
        if (e.len == 0)
            e.data = NULL;
        ck_assert_int_eq(bs_raft_entry_vec_push(&v, &e), 0);
        memset(buf, 0, sizeof(buf)); /* the vector holds a copy */
    }
    ck_assert_uint_eq(v.n, 1000);
    ck_assert_uint_ge(v.cap, v.n);
    for (size_t i = 0; i < v.n; i++) {
        const struct bs_raft_entry *e = &v.v[i];
        ck_assert_uint_eq(e->index, i + 1);
        ck_assert_uint_eq(e->len, (i + 1) % 9);
        if (e->len == 0)
            ck_assert_ptr_null(e->data);
        for (uint32_t k = 0; k < e->len; k++)
            ck_assert_uint_eq(e->data[k], (i + 1) & 0xff);
    }
    bs_raft_entry_vec_truncate(&v, 10);
    ck_assert_uint_eq(v.n, 10);
    ck_assert_uint_eq(v.v[9].index, 10);
    struct bs_raft_entry e = {
        .term = 2, .index = 11, .len = 2, .data = (uint8_t *)"zz"};
    ck_assert_int_eq(bs_raft_entry_vec_push(&v, &e), 0);
    ck_assert_uint_eq(v.n, 11);
    ck_assert_mem_eq(v.v[10].data, "zz", 2);
    bs_raft_entry_vec_truncate(&v, 0);
    ck_assert_uint_eq(v.n, 0);
    bs_raft_entry_vec_free(&v);
    struct bs_raft_entry_vec empty = {0};
    bs_raft_entry_vec_free(&empty);
    bs_raft_entry_vec_free(NULL);
}
END_TEST

START_TEST(test_entry_size)
{
    struct bs_raft_entry e = {.term = 1, .index = 1};
    uint64_t empty = bs_raft_entry_size(&e);
    ck_assert_uint_gt(empty, 0);
    uint8_t data[100] = {0};
    e.len = 100;
    e.data = data;
    ck_assert_uint_eq(bs_raft_entry_size(&e), empty + 100);
}
END_TEST

START_TEST(test_conf_state_equal)
{
    struct bs_raft_conf_state a, b;
    const uint64_t v1[] = {1, 2, 3}, v2[] = {3, 1, 2}, l1[] = {4, 5},
                   l2[] = {5, 4};
    fx_conf_set(&a, v1, 3, l1, 2);
    fx_conf_set(&b, v2, 3, l2, 2);
    ck_assert(bs_raft_conf_state_equal(&a, &b));
    ck_assert(bs_raft_conf_state_equal(&a, &a));
    /* A member moved from voters to learners. */
    const uint64_t v3[] = {1, 2}, l3[] = {3, 4, 5};
    fx_conf_set(&b, v3, 2, l3, 3);
    ck_assert(!bs_raft_conf_state_equal(&a, &b));
    /* Different sizes. */
    fx_conf_set(&b, v1, 2, l1, 2);
    ck_assert(!bs_raft_conf_state_equal(&a, &b));
    /* Outgoing voters matter. */
    fx_conf_set(&b, v2, 3, l2, 2);
    b.voters_outgoing[0] = 1;
    b.n_voters_outgoing = 1;
    ck_assert(!bs_raft_conf_state_equal(&a, &b));
    a.voters_outgoing[0] = 1;
    a.n_voters_outgoing = 1;
    ck_assert(bs_raft_conf_state_equal(&a, &b));
    /* And learners_next. */
    b.learners_next[0] = 3;
    b.n_learners_next = 1;
    ck_assert(!bs_raft_conf_state_equal(&a, &b));
    /* Same size, different members. */
    const uint64_t v4[] = {1, 2, 9};
    fx_conf_set(&a, v1, 3, NULL, 0);
    fx_conf_set(&b, v4, 3, NULL, 0);
    ck_assert(!bs_raft_conf_state_equal(&a, &b));
}
END_TEST

START_TEST(test_names)
{
    for (int t = 0; t < BS_RAFT_MSG__COUNT; t++) {
        const char *n = bs_raft_msg_type_name(t);
        ck_assert_ptr_nonnull(n);
        ck_assert_uint_gt(strlen(n), 0);
        for (int u = 0; u < t; u++)
            ck_assert_str_ne(n, bs_raft_msg_type_name(u));
    }
    ck_assert_str_eq(bs_raft_msg_type_name(BS_RAFT_MSG_APP), "MsgApp");
    ck_assert_ptr_nonnull(bs_raft_msg_type_name(-1));
    ck_assert_ptr_nonnull(bs_raft_msg_type_name(BS_RAFT_MSG__COUNT));
    ck_assert_ptr_nonnull(bs_raft_msg_type_name(1000));
    for (int r = 0; r < 4; r++) {
        ck_assert_ptr_nonnull(bs_raft_role_name(r));
        for (int u = 0; u < r; u++)
            ck_assert_str_ne(bs_raft_role_name(r), bs_raft_role_name(u));
    }
    ck_assert_ptr_nonnull(bs_raft_role_name(99));
    ck_assert_ptr_nonnull(bs_raft_role_name(-1));
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("raft_codec");
    FX_TCASE(s, cc, 20);
    tcase_add_test(cc, test_cc_round_trip);
    tcase_add_test(cc, test_cc_encode_refuses_malformed);
    tcase_add_test(cc, test_cc_decode_corrupt);
    FX_TCASE(s, values, 10);
    tcase_add_test(values, test_msg_copy_and_free);
    tcase_add_test(values, test_entry_vec);
    tcase_add_test(values, test_entry_size);
    tcase_add_test(values, test_conf_state_equal);
    tcase_add_test(values, test_names);
    return s;
}

int main(void)
{
    return fx_run_suite(codec_suite());
}
