/*
 * test_mem_storage.c - bs_raft_mem_storage, the in-memory implementation
 * of the storage interface (modelled on etcd's MemoryStorage and its
 * storage_test.go): term and entries lookups with their error codes at
 * both ends of the log, byte limits, append with truncation, compaction,
 * snapshots, and the initial state.
 */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

/* Storage with snapshot {3, t3} and entries 4:t4 "e4", 5:t5 "e5". */
static struct bs_raft_mem_storage *make(struct bs_raft_storage *st)
{
    struct bs_raft_mem_storage *ms = bs_raft_mem_storage_create();
    ck_assert_ptr_nonnull(ms);
    struct bs_raft_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    snap.meta.index = 3;
    snap.meta.term = 3;
    snap.meta.conf.voters[0] = 1;
    snap.meta.conf.n_voters = 1;
    ck_assert_int_eq(bs_raft_mem_storage_apply_snapshot(ms, &snap), 0);
    struct bs_raft_entry e[2];
    memset(e, 0, sizeof(e));
    e[0].index = 4;
    e[0].term = 4;
    e[0].len = 2;
    e[0].data = (uint8_t *)"e4";
    e[1].index = 5;
    e[1].term = 5;
    e[1].len = 2;
    e[1].data = (uint8_t *)"e5";
    ck_assert_int_eq(bs_raft_mem_storage_append(ms, e, 2), 0);
    *st = bs_raft_mem_storage_iface(ms);
    return ms;
}

START_TEST(test_fresh_storage)
{
    struct bs_raft_mem_storage *ms = bs_raft_mem_storage_create();
    struct bs_raft_storage st = bs_raft_mem_storage_iface(ms);
    ck_assert_uint_eq(st.ops->first_index(st.ctx), 1);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 0);
    uint64_t t = 99;
    ck_assert_int_eq(st.ops->term(st.ctx, 0, &t), 0);
    ck_assert_uint_eq(t, 0);
    ck_assert_int_eq(st.ops->term(st.ctx, 1, &t), BS_EUNAVAIL);
    struct bs_raft_hard_state hs;
    struct bs_raft_conf_state cs;
    memset(&hs, 0xff, sizeof(hs));
    memset(&cs, 0xff, sizeof(cs));
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &hs, &cs), 0);
    ck_assert_uint_eq(hs.term, 0);
    ck_assert_uint_eq(hs.vote, 0);
    ck_assert_uint_eq(hs.commit, 0);
    ck_assert_uint_eq(cs.n_voters, 0);
    ck_assert_uint_eq(cs.n_learners, 0);
    struct bs_raft_snapshot snap;
    memset(&snap, 0xff, sizeof(snap));
    ck_assert_int_eq(st.ops->snapshot(st.ctx, &snap), 0);
    ck_assert_uint_eq(snap.meta.index, 0);
    free(snap.data);
    bs_raft_mem_storage_destroy(ms);
    bs_raft_mem_storage_destroy(NULL);
}
END_TEST

START_TEST(test_term)
{
    struct bs_raft_storage st;
    struct bs_raft_mem_storage *ms = make(&st);
    static const struct {
        uint64_t i;
        int rc;
        uint64_t term;
    } tt[] = {{2, BS_ECOMPACTED, 0},
              {3, 0, 3},
              {4, 0, 4},
              {5, 0, 5},
              {6, BS_EUNAVAIL, 0}};
    for (size_t k = 0; k < sizeof(tt) / sizeof(tt[0]); k++) {
        uint64_t t = 0;
        ck_assert_int_eq(st.ops->term(st.ctx, tt[k].i, &t), tt[k].rc);
        if (tt[k].rc == 0)
            ck_assert_uint_eq(t, tt[k].term);
    }
    ck_assert_uint_eq(st.ops->first_index(st.ctx), 4);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 5);
    bs_raft_mem_storage_destroy(ms);
}
END_TEST

START_TEST(test_entries)
{
    struct bs_raft_storage st;
    struct bs_raft_mem_storage *ms = make(&st);
    struct bs_raft_entry e;
    memset(&e, 0, sizeof(e));
    e.len = 2;
    uint64_t sz = bs_raft_entry_size(&e);
    static const uint64_t unlimited = UINT64_MAX;
    const struct {
        uint64_t lo, hi, max;
        int rc;
        size_t n;
    } tt[] = {
        {2, 6, unlimited, BS_ECOMPACTED, 0},
        {3, 4, unlimited, BS_ECOMPACTED, 0},
        {4, 5, unlimited, 0, 1},
        {4, 6, unlimited, 0, 2},
        {4, 6, 2 * sz, 0, 2},
        {4, 6, 2 * sz - 1, 0, 1},
        {4, 6, 0, 0, 1}, /* at least one entry */
        {5, 6, 0, 0, 1},
        {4, 7, unlimited, BS_EUNAVAIL, 0},
    };
    for (size_t k = 0; k < sizeof(tt) / sizeof(tt[0]); k++) {
        struct bs_raft_entry_vec v = {0};
        int rc = st.ops->entries(st.ctx, tt[k].lo, tt[k].hi, tt[k].max, &v);
        ck_assert_msg(rc == tt[k].rc, "case %zu: %s", k, bs_err_name(rc));
        if (rc == 0) {
            ck_assert_uint_eq(v.n, tt[k].n);
            for (size_t i = 0; i < v.n; i++) {
                ck_assert_uint_eq(v.v[i].index, tt[k].lo + i);
                ck_assert_uint_eq(v.v[i].term, tt[k].lo + i);
                ck_assert_uint_eq(v.v[i].len, 2);
                char want[3] = {'e', (char)('0' + tt[k].lo + i), 0};
                ck_assert_mem_eq(v.v[i].data, want, 2);
            }
        }
        bs_raft_entry_vec_free(&v);
    }
    bs_raft_mem_storage_destroy(ms);
}
END_TEST

/* Appends to a non-empty vector: the storage appends, it does not
 * overwrite. */
START_TEST(test_entries_appends_to_out)
{
    struct bs_raft_storage st;
    struct bs_raft_mem_storage *ms = make(&st);
    struct bs_raft_entry_vec v = {0};
    ck_assert_int_eq(st.ops->entries(st.ctx, 4, 5, UINT64_MAX, &v), 0);
    ck_assert_int_eq(st.ops->entries(st.ctx, 5, 6, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v.n, 2);
    ck_assert_uint_eq(v.v[0].index, 4);
    ck_assert_uint_eq(v.v[1].index, 5);
    bs_raft_entry_vec_free(&v);
    bs_raft_mem_storage_destroy(ms);
}
END_TEST

static void ent(struct bs_raft_entry *e, uint64_t index, uint64_t term)
{
    memset(e, 0, sizeof(*e));
    e->index = index;
    e->term = term;
}

/* etcd's TestStorageAppend: entries below first_index are ignored, a
 * conflicting suffix is truncated, a gap is refused. */
START_TEST(test_append)
{
    static const struct {
        uint64_t ents[4][2];
        size_t n;
        int rc;
        uint64_t want[5]; /* terms of 3.. (0 ends) */
    } tt[] = {
        {{{3, 3}, {4, 4}, {5, 5}}, 3, 0, {3, 4, 5, 0}},
        {{{3, 3}, {4, 6}, {5, 6}}, 3, 0, {3, 6, 6, 0}},
        {{{3, 3}, {4, 4}, {5, 5}, {6, 5}}, 4, 0, {3, 4, 5, 5, 0}},
        {{{2, 3}, {3, 3}, {4, 5}}, 3, 0, {3, 5, 0}},
        {{{4, 5}}, 1, 0, {3, 5, 0}},
        {{{6, 5}}, 1, 0, {3, 4, 5, 5, 0}},
        {{{7, 5}}, 1, BS_EINVAL, {3, 4, 5, 0}},
    };
    for (size_t k = 0; k < sizeof(tt) / sizeof(tt[0]); k++) {
        struct bs_raft_storage st;
        struct bs_raft_mem_storage *ms = make(&st);
        struct bs_raft_entry e[4];
        for (size_t i = 0; i < tt[k].n; i++)
            ent(&e[i], tt[k].ents[i][0], tt[k].ents[i][1]);
        int rc = bs_raft_mem_storage_append(ms, e, tt[k].n);
        ck_assert_msg(rc == tt[k].rc, "case %zu: %s", k, bs_err_name(rc));
        size_t n = 0;
        while (tt[k].want[n])
            n++;
        ck_assert_msg(st.ops->last_index(st.ctx) == 3 + n - 1,
                      "case %zu: last %llu", k,
                      (unsigned long long)st.ops->last_index(st.ctx));
        for (size_t i = 0; i < n; i++) {
            uint64_t t = 0;
            ck_assert_int_eq(st.ops->term(st.ctx, 3 + i, &t), 0);
            ck_assert_msg(t == tt[k].want[i], "case %zu: term(%zu) = %llu", k,
                          3 + i, (unsigned long long)t);
        }
        bs_raft_mem_storage_destroy(ms);
    }
}
END_TEST

START_TEST(test_compact)
{
    static const struct {
        uint64_t i;
        int rc;
        uint64_t first;
    } tt[] = {{2, BS_ECOMPACTED, 4},
              {3, BS_ECOMPACTED, 4},
              {4, 0, 5},
              {5, 0, 6},
              {6, BS_EUNAVAIL, 4}};
    for (size_t k = 0; k < sizeof(tt) / sizeof(tt[0]); k++) {
        struct bs_raft_storage st;
        struct bs_raft_mem_storage *ms = make(&st);
        ck_assert_int_eq(bs_raft_mem_storage_compact(ms, tt[k].i), tt[k].rc);
        ck_assert_uint_eq(st.ops->first_index(st.ctx), tt[k].first);
        ck_assert_uint_eq(st.ops->last_index(st.ctx), 5);
        uint64_t t = 0;
        ck_assert_int_eq(st.ops->term(st.ctx, tt[k].first - 1, &t), 0);
        ck_assert_uint_eq(t, tt[k].first - 1);
        if (tt[k].first > 4)
            ck_assert_int_eq(st.ops->term(st.ctx, tt[k].first - 2, &t),
                             BS_ECOMPACTED);
        bs_raft_mem_storage_destroy(ms);
    }
}
END_TEST

START_TEST(test_create_snapshot)
{
    struct bs_raft_conf_state cs;
    memset(&cs, 0, sizeof(cs));
    cs.voters[0] = 1;
    cs.voters[1] = 2;
    cs.n_voters = 2;
    cs.learners[0] = 3;
    cs.n_learners = 1;
    uint8_t data[4] = {'d', 'a', 't', 'a'};
    static const struct {
        uint64_t i;
        int rc;
    } tt[] = {{4, 0}, {5, 0}, {3, BS_ESNAPOUTDATED}, {6, BS_EUNAVAIL}};
    for (size_t k = 0; k < sizeof(tt) / sizeof(tt[0]); k++) {
        struct bs_raft_storage st;
        struct bs_raft_mem_storage *ms = make(&st);
        int rc = bs_raft_mem_storage_create_snapshot(ms, tt[k].i, &cs, data,
                                                     sizeof(data));
        ck_assert_msg(rc == tt[k].rc, "case %zu: %s", k, bs_err_name(rc));
        data[0] = 'X'; /* the storage holds its own copy */
        struct bs_raft_snapshot snap;
        memset(&snap, 0, sizeof(snap));
        ck_assert_int_eq(st.ops->snapshot(st.ctx, &snap), 0);
        if (rc == 0) {
            ck_assert_uint_eq(snap.meta.index, tt[k].i);
            ck_assert_uint_eq(snap.meta.term, tt[k].i);
            ck_assert(bs_raft_conf_state_equal(&snap.meta.conf, &cs));
            ck_assert_uint_eq(snap.len, 4);
            ck_assert_mem_eq(snap.data, "data", 4);
            /* Creating a snapshot does not compact. */
            ck_assert_uint_eq(st.ops->first_index(st.ctx), 4);
        } else {
            ck_assert_uint_eq(snap.meta.index, 3);
        }
        free(snap.data);
        data[0] = 'd';
        bs_raft_mem_storage_destroy(ms);
    }
}
END_TEST

START_TEST(test_apply_snapshot)
{
    struct bs_raft_storage st;
    struct bs_raft_mem_storage *ms = make(&st);
    struct bs_raft_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    snap.meta.index = 10;
    snap.meta.term = 7;
    snap.meta.conf.voters[0] = 4;
    snap.meta.conf.n_voters = 1;
    uint8_t img[3] = {1, 2, 3};
    snap.data = img;
    snap.len = 3;
    ck_assert_int_eq(bs_raft_mem_storage_apply_snapshot(ms, &snap), 0);
    img[0] = 9;
    ck_assert_uint_eq(st.ops->first_index(st.ctx), 11);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 10);
    uint64_t t = 0;
    ck_assert_int_eq(st.ops->term(st.ctx, 10, &t), 0);
    ck_assert_uint_eq(t, 7);
    ck_assert_int_eq(st.ops->term(st.ctx, 5, &t), BS_ECOMPACTED);
    struct bs_raft_snapshot out;
    memset(&out, 0, sizeof(out));
    ck_assert_int_eq(st.ops->snapshot(st.ctx, &out), 0);
    ck_assert_uint_eq(out.meta.index, 10);
    ck_assert_uint_eq(out.len, 3);
    ck_assert_uint_eq(out.data[0], 1);
    free(out.data);
    /* An older snapshot is refused. */
    snap.meta.index = 8;
    ck_assert_int_eq(bs_raft_mem_storage_apply_snapshot(ms, &snap),
                     BS_ESNAPOUTDATED);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 10);
    /* Entries continue after it. */
    struct bs_raft_entry e;
    ent(&e, 11, 7);
    ck_assert_int_eq(bs_raft_mem_storage_append(ms, &e, 1), 0);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 11);
    bs_raft_mem_storage_destroy(ms);
}
END_TEST

START_TEST(test_initial_state)
{
    struct bs_raft_storage st;
    struct bs_raft_mem_storage *ms = make(&st);
    struct bs_raft_hard_state hs = {.term = 5, .vote = 2, .commit = 4};
    bs_raft_mem_storage_set_hard_state(ms, &hs);
    struct bs_raft_conf_state cs;
    memset(&cs, 0, sizeof(cs));
    cs.voters[0] = 1;
    cs.voters[1] = 2;
    cs.n_voters = 2;
    cs.voters_outgoing[0] = 1;
    cs.n_voters_outgoing = 1;
    cs.auto_leave = true;
    bs_raft_mem_storage_set_conf(ms, &cs);
    struct bs_raft_hard_state ohs;
    struct bs_raft_conf_state ocs;
    memset(&ocs, 0, sizeof(ocs));
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &ohs, &ocs), 0);
    ck_assert_uint_eq(ohs.term, 5);
    ck_assert_uint_eq(ohs.vote, 2);
    ck_assert_uint_eq(ohs.commit, 4);
    ck_assert(bs_raft_conf_state_equal(&ocs, &cs));
    ck_assert(ocs.auto_leave);
    bs_raft_mem_storage_destroy(ms);
}
END_TEST

static Suite *mem_storage_suite(void)
{
    Suite *s = suite_create("raft_mem_storage");
    FX_TCASE(s, storage, 10);
    tcase_add_test(storage, test_fresh_storage);
    tcase_add_test(storage, test_term);
    tcase_add_test(storage, test_entries);
    tcase_add_test(storage, test_entries_appends_to_out);
    tcase_add_test(storage, test_append);
    tcase_add_test(storage, test_compact);
    tcase_add_test(storage, test_create_snapshot);
    tcase_add_test(storage, test_apply_snapshot);
    tcase_add_test(storage, test_initial_state);
    return s;
}

int main(void)
{
    return fx_run_suite(mem_storage_suite());
}
