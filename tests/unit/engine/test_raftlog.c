/*
 * test_raftlog.c - engine/raftlog.c, the RocksDB implementation of the Raft
 * storage interface.
 *
 * The contract tests are those of the in-memory storage
 * (tests/unit/raft/test_mem_storage.c, after etcd's storage_test.go), run
 * in four variants: no tail cache, a cache too small for the whole log, a
 * large cache, and a large cache with the db closed and reopened before
 * every check (so that the answers come from disk). Then what only a
 * persistent log has: a batch staged but never written (a crash), torn and
 * corrupt records (BS_ECORRUPT, never a crash), missing entries, and a
 * randomized comparison of three logs (cache off, small, large) against
 * bs_raft_mem_storage as the model, with reopens in between.
 */
#include "eng_fixture.h"

#include <inttypes.h>

#include "engine_int.h"

/* ------------------------------------------------------------ fixture */

static const struct {
    size_t cache;
    bool reopen;
} variants[] = {{0, false}, {70, false}, {1 << 20, false}, {1 << 20, true}};
#define N_VARIANTS ((int)(sizeof(variants) / sizeof(variants[0])))

struct fx {
    char *dir;
    struct bs_eng_db *db;
    struct bs_eng_log *log;
    struct bs_raft_storage st;
    size_t cache;
    bool reopen;
    uint64_t shard;
};

static void fx_log_open(struct fx *f)
{
    char err[BS_ENG_ERRMSG_SIZE] = "";
    int rc = bs_eng_log_open(f->db, f->shard, f->cache, &f->log, err);
    ck_assert_msg(rc == 0, "log open: %s (%s)", bs_err_name(rc), err);
    f->st = bs_eng_log_iface(f->log);
}

static void fx_init(struct fx *f, int variant)
{
    memset(f, 0, sizeof(*f));
    f->dir = fx_tmpdir("raftlog");
    f->db = fx_open(f->dir);
    f->cache = variants[variant].cache;
    f->reopen = variants[variant].reopen;
    f->shard = 7;
    fx_log_open(f);
}

/* Closes and reopens db and log: what a restart sees. */
static void fx_restart(struct fx *f)
{
    bs_eng_log_close(f->log);
    bs_eng_db_close(f->db);
    f->db = fx_open(f->dir);
    fx_log_open(f);
}

/* In the reopen variant, restart before checking. */
static void fx_maybe_restart(struct fx *f)
{
    if (f->reopen)
        fx_restart(f);
}

static void fx_fini(struct fx *f)
{
    bs_eng_log_close(f->log);
    bs_eng_db_close(f->db);
    fx_rm_rf(f->dir);
}

static void write_wb(struct bs_eng_db *db, struct bs_eng_wb *wb)
{
    int rc = bs_eng_db_write(db, wb, true);
    ck_assert_msg(rc == 0, "write: %s", bs_eng_db_errmsg(db));
    bs_eng_wb_destroy(wb);
}

static void ent(struct bs_raft_entry *e, uint64_t index, uint64_t term)
{
    memset(e, 0, sizeof(*e));
    e->index = index;
    e->term = term;
}

/* Stages and writes entries. */
static int append(struct fx *f, const struct bs_raft_entry *e, size_t n)
{
    struct bs_eng_wb *wb = bs_eng_wb_create();
    int rc = bs_eng_log_append(f->log, wb, e, n);
    write_wb(f->db, wb);
    return rc;
}

/* Log with snapshot {3, t3} and entries 4:t4 "e4", 5:t5 "e5". */
static void make(struct fx *f, int variant)
{
    fx_init(f, variant);
    struct bs_raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 3;
    meta.term = 3;
    meta.conf.voters[0] = 1;
    meta.conf.n_voters = 1;
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_log_apply_snapshot(f->log, wb, &meta), 0);
    struct bs_raft_entry e[2];
    ent(&e[0], 4, 4);
    e[0].len = 2;
    e[0].data = (uint8_t *)"e4";
    ent(&e[1], 5, 5);
    e[1].len = 2;
    e[1].data = (uint8_t *)"e5";
    ck_assert_int_eq(bs_eng_log_append(f->log, wb, e, 2), 0);
    write_wb(f->db, wb);
    fx_maybe_restart(f);
}

/* ------------------------------------------------- contract (as mem) */

START_TEST(test_fresh)
{
    struct fx f;
    fx_init(&f, _i);
    fx_maybe_restart(&f);
    struct bs_raft_storage st = f.st;
    ck_assert_uint_eq(st.ops->first_index(st.ctx), 1);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 0);
    ck_assert_uint_eq(bs_eng_log_first_index(f.log), 1);
    ck_assert_uint_eq(bs_eng_log_last_index(f.log), 0);
    ck_assert_uint_eq(bs_eng_log_bytes(f.log), 0);
    uint64_t t = 99;
    ck_assert_int_eq(st.ops->term(st.ctx, 0, &t), 0);
    ck_assert_uint_eq(t, 0);
    ck_assert_int_eq(st.ops->term(st.ctx, 1, &t), BS_EUNAVAIL);
    struct bs_raft_entry_vec v = {0};
    ck_assert_int_eq(st.ops->entries(st.ctx, 1, 2, UINT64_MAX, &v),
                     BS_EUNAVAIL);
    ck_assert_int_eq(st.ops->entries(st.ctx, 1, 1, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v.n, 0);
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
    ck_assert_ptr_null(snap.data);
    ck_assert_uint_eq(snap.len, 0);
    fx_fini(&f);
}
END_TEST

START_TEST(test_term)
{
    struct fx f;
    make(&f, _i);
    struct bs_raft_storage st = f.st;
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
    fx_fini(&f);
}
END_TEST

START_TEST(test_entries)
{
    struct fx f;
    make(&f, _i);
    struct bs_raft_storage st = f.st;
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
        {4, 6, 1, 0, 1}, /* at least one entry */
        {4, 6, 0, 0, 1}, /* 0: one entry per call */
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
        } else {
            ck_assert_uint_eq(v.n, 0);
        }
        bs_raft_entry_vec_free(&v);
    }
    fx_fini(&f);
}
END_TEST

START_TEST(test_entries_appends_to_out)
{
    struct fx f;
    make(&f, _i);
    struct bs_raft_storage st = f.st;
    struct bs_raft_entry_vec v = {0};
    ck_assert_int_eq(st.ops->entries(st.ctx, 4, 5, UINT64_MAX, &v), 0);
    ck_assert_int_eq(st.ops->entries(st.ctx, 5, 6, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v.n, 2);
    ck_assert_uint_eq(v.v[0].index, 4);
    ck_assert_uint_eq(v.v[1].index, 5);
    bs_raft_entry_vec_free(&v);
    fx_fini(&f);
}
END_TEST

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
        {{{1, 1}, {2, 2}}, 2, 0, {3, 4, 5, 0}},         /* all compacted */
        {{{5, 5}, {7, 5}}, 2, BS_EINVAL, {3, 4, 5, 0}}, /* not contiguous */
    };
    for (size_t k = 0; k < sizeof(tt) / sizeof(tt[0]); k++) {
        struct fx f;
        make(&f, _i);
        struct bs_raft_storage st = f.st;
        struct bs_raft_entry e[4];
        for (size_t i = 0; i < tt[k].n; i++)
            ent(&e[i], tt[k].ents[i][0], tt[k].ents[i][1]);
        struct bs_eng_wb *wb = bs_eng_wb_create();
        int rc = bs_eng_log_append(f.log, wb, e, tt[k].n);
        ck_assert_msg(rc == tt[k].rc, "case %zu: %s", k, bs_err_name(rc));
        if (rc != 0) /* a refused append stages nothing */
            ck_assert_uint_eq(bs_eng_wb_count(wb), 0);
        write_wb(f.db, wb);
        fx_maybe_restart(&f);
        st = f.st;
        size_t n = 0;
        while (tt[k].want[n])
            n++;
        ck_assert_msg(st.ops->last_index(st.ctx) == 3 + n - 1,
                      "case %zu: last %" PRIu64, k, st.ops->last_index(st.ctx));
        for (size_t i = 0; i < n; i++) {
            uint64_t t = 0;
            ck_assert_int_eq(st.ops->term(st.ctx, 3 + i, &t), 0);
            ck_assert_msg(t == tt[k].want[i], "case %zu: term(%zu) = %" PRIu64,
                          k, 3 + i, t);
        }
        /* entries() agrees with term() across the whole log. */
        struct bs_raft_entry_vec v = {0};
        ck_assert_int_eq(st.ops->entries(st.ctx, 4, 3 + n, UINT64_MAX, &v), 0);
        ck_assert_uint_eq(v.n, n - 1);
        for (size_t i = 0; i < v.n; i++)
            ck_assert_uint_eq(v.v[i].term, tt[k].want[i + 1]);
        bs_raft_entry_vec_free(&v);
        fx_fini(&f);
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
        struct fx f;
        make(&f, _i);
        uint64_t bytes = bs_eng_log_bytes(f.log);
        ck_assert_uint_gt(bytes, 0);
        struct bs_eng_wb *wb = bs_eng_wb_create();
        ck_assert_int_eq(bs_eng_log_compact(f.log, wb, tt[k].i), tt[k].rc);
        if (tt[k].rc != 0)
            ck_assert_uint_eq(bs_eng_wb_count(wb), 0);
        write_wb(f.db, wb);
        fx_maybe_restart(&f);
        struct bs_raft_storage st = f.st;
        ck_assert_uint_eq(st.ops->first_index(st.ctx), tt[k].first);
        ck_assert_uint_eq(st.ops->last_index(st.ctx), 5);
        uint64_t t = 0;
        ck_assert_int_eq(st.ops->term(st.ctx, tt[k].first - 1, &t), 0);
        ck_assert_uint_eq(t, tt[k].first - 1);
        if (tt[k].first > 4)
            ck_assert_int_eq(st.ops->term(st.ctx, tt[k].first - 2, &t),
                             BS_ECOMPACTED);
        /* Each compacted entry's bytes are gone: two equal-sized entries. */
        ck_assert_uint_eq(bs_eng_log_bytes(f.log),
                          bytes / 2 * (6 - tt[k].first));
        struct bs_raft_entry_vec v = {0};
        if (tt[k].first <= 5) {
            ck_assert_int_eq(
                st.ops->entries(st.ctx, tt[k].first, 6, UINT64_MAX, &v), 0);
            ck_assert_uint_eq(v.n, 6 - tt[k].first);
        }
        ck_assert_int_eq(
            st.ops->entries(st.ctx, tt[k].first - 1, 6, UINT64_MAX, &v),
            BS_ECOMPACTED);
        bs_raft_entry_vec_free(&v);
        fx_fini(&f);
    }
}
END_TEST

START_TEST(test_apply_snapshot)
{
    struct fx f;
    make(&f, _i);
    struct bs_raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 10;
    meta.term = 7;
    meta.conf.voters[0] = 4;
    meta.conf.n_voters = 1;
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_log_apply_snapshot(f.log, wb, &meta), 0);
    write_wb(f.db, wb);
    ck_assert_uint_eq(bs_eng_log_bytes(f.log), 0);
    struct bs_raft_storage st = f.st;
    struct bs_raft_snapshot out;
    memset(&out, 0xff, sizeof(out));
    ck_assert_int_eq(st.ops->snapshot(st.ctx, &out), 0);
    ck_assert_uint_eq(out.meta.index, 10);
    ck_assert_uint_eq(out.meta.term, 7);
    ck_assert(bs_raft_conf_state_equal(&out.meta.conf, &meta.conf));
    ck_assert_ptr_null(out.data);
    ck_assert_uint_eq(out.len, 0);
    struct bs_raft_hard_state hs;
    struct bs_raft_conf_state cs;
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &hs, &cs), 0);
    ck_assert(bs_raft_conf_state_equal(&cs, &meta.conf));
    ck_assert_uint_eq(hs.commit, 10); /* raised, as mem_storage does */

    fx_maybe_restart(&f);
    st = f.st;
    ck_assert_uint_eq(st.ops->first_index(st.ctx), 11);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 10);
    ck_assert_uint_eq(bs_eng_log_bytes(f.log), 0);
    uint64_t t = 0;
    ck_assert_int_eq(st.ops->term(st.ctx, 10, &t), 0);
    ck_assert_uint_eq(t, 7);
    ck_assert_int_eq(st.ops->term(st.ctx, 5, &t), BS_ECOMPACTED);
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &hs, &cs), 0);
    ck_assert_uint_eq(hs.commit, 10);

    /* An older (or the same) snapshot is refused. */
    meta.index = 8;
    wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_log_apply_snapshot(f.log, wb, &meta),
                     BS_ESNAPOUTDATED);
    meta.index = 10;
    ck_assert_int_eq(bs_eng_log_apply_snapshot(f.log, wb, &meta),
                     BS_ESNAPOUTDATED);
    ck_assert_uint_eq(bs_eng_wb_count(wb), 0);
    bs_eng_wb_destroy(wb);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 10);
    /* Entries continue after it. */
    struct bs_raft_entry e;
    ent(&e, 11, 7);
    ck_assert_int_eq(append(&f, &e, 1), 0);
    fx_maybe_restart(&f);
    st = f.st;
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 11);
    ck_assert_int_eq(st.ops->term(st.ctx, 11, &t), 0);
    ck_assert_uint_eq(t, 7);
    fx_fini(&f);
}
END_TEST

/* snapshot(): the recorded meta; before any, BS_ESNAPTEMP once entries
 * were compacted; the record is in memory only. */
START_TEST(test_snapshot_meta)
{
    struct fx f;
    fx_init(&f, _i);
    struct bs_raft_entry e[5];
    for (int i = 0; i < 5; i++)
        ent(&e[i], (uint64_t)i + 1, 1);
    ck_assert_int_eq(append(&f, e, 5), 0);
    struct bs_raft_storage st = f.st;
    struct bs_raft_snapshot snap;
    ck_assert_int_eq(st.ops->snapshot(st.ctx, &snap), 0);
    ck_assert_uint_eq(snap.meta.index, 0); /* nothing compacted yet */

    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_log_compact(f.log, wb, 3), 0);
    write_wb(f.db, wb);
    fx_maybe_restart(&f);
    st = f.st;
    ck_assert_int_eq(st.ops->snapshot(st.ctx, &snap), BS_ESNAPTEMP);

    struct bs_raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 4;
    meta.term = 1;
    meta.conf.voters[0] = 1;
    meta.conf.voters[1] = 2;
    meta.conf.n_voters = 2;
    bs_eng_log_set_snapshot_meta(f.log, &meta);
    memset(&snap, 0xff, sizeof(snap));
    ck_assert_int_eq(st.ops->snapshot(st.ctx, &snap), 0);
    ck_assert_uint_eq(snap.meta.index, 4);
    ck_assert_uint_eq(snap.meta.term, 1);
    ck_assert(bs_raft_conf_state_equal(&snap.meta.conf, &meta.conf));
    ck_assert_ptr_null(snap.data);
    ck_assert_uint_eq(snap.len, 0);
    /* Recording a snapshot neither compacts nor changes the conf. */
    ck_assert_uint_eq(st.ops->first_index(st.ctx), 4);
    struct bs_raft_hard_state hs;
    struct bs_raft_conf_state cs;
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &hs, &cs), 0);
    ck_assert_uint_eq(cs.n_voters, 0);

    fx_restart(&f); /* always: the record is gone */
    st = f.st;
    ck_assert_int_eq(st.ops->snapshot(st.ctx, &snap), BS_ESNAPTEMP);
    fx_fini(&f);
}
END_TEST

START_TEST(test_initial_state)
{
    struct fx f;
    make(&f, _i);
    struct bs_raft_hard_state hs = {.term = 5, .vote = 2, .commit = 4};
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_log_set_hard_state(f.log, wb, &hs), 0);
    write_wb(f.db, wb);
    fx_maybe_restart(&f);
    struct bs_raft_conf_state cs;
    memset(&cs, 0, sizeof(cs));
    cs.voters[0] = 1;
    cs.voters[1] = 2;
    cs.n_voters = 2;
    cs.voters_outgoing[0] = 1;
    cs.n_voters_outgoing = 1;
    cs.auto_leave = true;
    bs_eng_log_set_conf(f.log, &cs);
    struct bs_raft_storage st = f.st;
    struct bs_raft_hard_state ohs;
    struct bs_raft_conf_state ocs;
    memset(&ocs, 0, sizeof(ocs));
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &ohs, &ocs), 0);
    ck_assert_uint_eq(ohs.term, 5);
    ck_assert_uint_eq(ohs.vote, 2);
    ck_assert_uint_eq(ohs.commit, 4);
    ck_assert(bs_raft_conf_state_equal(&ocs, &cs));
    ck_assert(ocs.auto_leave);
    /* The hard state survives a restart; the truncated state with it. */
    fx_restart(&f);
    st = f.st;
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &ohs, &ocs), 0);
    ck_assert_uint_eq(ohs.term, 5);
    ck_assert_uint_eq(ohs.vote, 2);
    ck_assert_uint_eq(ohs.commit, 4);
    ck_assert_uint_eq(st.ops->first_index(st.ctx), 4);
    fx_fini(&f);
}
END_TEST

/* A conflicting append truncates the cache as well as the disk. */
START_TEST(test_conflict_truncates)
{
    struct fx f;
    fx_init(&f, _i);
    struct bs_raft_entry e[10];
    char data[10][4];
    for (int i = 0; i < 10; i++) {
        ent(&e[i], (uint64_t)i + 1, 1);
        snprintf(data[i], sizeof(data[i]), "a%d", i + 1);
        e[i].data = (uint8_t *)data[i];
        e[i].len = (uint32_t)strlen(data[i]);
    }
    ck_assert_int_eq(append(&f, e, 10), 0);
    uint64_t bytes10 = bs_eng_log_bytes(&*f.log);
    /* Read it all once (fills nothing, but must not matter). */
    struct bs_raft_entry_vec v = {0};
    ck_assert_int_eq(f.st.ops->entries(f.st.ctx, 1, 11, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v.n, 10);
    bs_raft_entry_vec_free(&v);

    struct bs_raft_entry c;
    ent(&c, 6, 2);
    c.data = (uint8_t *)"b6";
    c.len = 2;
    ck_assert_int_eq(append(&f, &c, 1), 0);
    fx_maybe_restart(&f);
    struct bs_raft_storage st = f.st;
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 6);
    uint64_t t;
    ck_assert_int_eq(st.ops->term(st.ctx, 6, &t), 0);
    ck_assert_uint_eq(t, 2);
    ck_assert_int_eq(st.ops->term(st.ctx, 7, &t), BS_EUNAVAIL);
    ck_assert_int_eq(st.ops->term(st.ctx, 5, &t), 0);
    ck_assert_uint_eq(t, 1);
    ck_assert_int_eq(st.ops->entries(st.ctx, 1, 8, UINT64_MAX, &v),
                     BS_EUNAVAIL);
    ck_assert_int_eq(st.ops->entries(st.ctx, 5, 7, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v.n, 2);
    ck_assert_mem_eq(v.v[0].data, "a5", 2);
    ck_assert_mem_eq(v.v[1].data, "b6", 2);
    bs_raft_entry_vec_free(&v);
    /* a1..a9 are 2 bytes, a10 is 3: 4 of 2 bytes, b6 of 2 bytes, left
     * of the original 10. */
    uint64_t per = (bytes10 - 1) / 10;
    ck_assert_uint_eq(bs_eng_log_bytes(f.log), 6 * per);
    fx_fini(&f);
}
END_TEST

/* A long conflicting suffix is removed with a range tombstone. */
START_TEST(test_long_truncation)
{
    struct fx f;
    fx_init(&f, _i);
    struct bs_raft_entry e[200];
    for (int i = 0; i < 200; i++)
        ent(&e[i], (uint64_t)i + 1, 1);
    ck_assert_int_eq(append(&f, e, 200), 0);
    uint64_t b200 = bs_eng_log_bytes(f.log);
    ent(&e[0], 10, 3);
    ck_assert_int_eq(append(&f, e, 1), 0);
    fx_restart(&f);
    ck_assert_uint_eq(bs_eng_log_last_index(f.log), 10);
    ck_assert_uint_eq(bs_eng_log_bytes(f.log), b200 / 20);
    uint64_t t;
    ck_assert_int_eq(f.st.ops->term(f.st.ctx, 10, &t), 0);
    ck_assert_uint_eq(t, 3);
    /* Appending after it works and nothing of the old suffix returns. */
    for (int i = 0; i < 3; i++)
        ent(&e[i], (uint64_t)i + 11, 3);
    ck_assert_int_eq(append(&f, e, 3), 0);
    fx_restart(&f);
    ck_assert_uint_eq(bs_eng_log_last_index(f.log), 13);
    fx_fini(&f);
}
END_TEST

/* ----------------------------------------- what only a disk log has */

/* Staged entries and hard state that were never written (a crash before
 * the batch was written) leave the old state; written, the new one. */
START_TEST(test_crash_mid_batch)
{
    struct fx f;
    fx_init(&f, _i);
    struct bs_raft_entry e[3];
    for (int i = 0; i < 3; i++)
        ent(&e[i], (uint64_t)i + 1, 1);
    struct bs_raft_hard_state hs1 = {.term = 1, .vote = 1, .commit = 2};
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_log_append(f.log, wb, e, 3), 0);
    ck_assert_int_eq(bs_eng_log_set_hard_state(f.log, wb, &hs1), 0);
    write_wb(f.db, wb);

    struct bs_raft_entry n[3];
    ent(&n[0], 3, 2);
    ent(&n[1], 4, 2);
    ent(&n[2], 5, 2);
    struct bs_raft_hard_state hs2 = {.term = 2, .vote = 3, .commit = 3};
    for (int round = 0; round < 2; round++) {
        wb = bs_eng_wb_create();
        ck_assert_int_eq(bs_eng_log_append(f.log, wb, n, 3), 0);
        ck_assert_int_eq(bs_eng_log_set_hard_state(f.log, wb, &hs2), 0);
        /* The in-memory view moves at staging time. */
        ck_assert_uint_eq(bs_eng_log_last_index(f.log), 5);
        if (round == 0)
            bs_eng_wb_destroy(wb); /* crash: never written */
        else
            write_wb(f.db, wb);
        fx_restart(&f);
        struct bs_raft_storage st = f.st;
        struct bs_raft_hard_state hs;
        struct bs_raft_conf_state cs;
        uint64_t t;
        ck_assert_int_eq(st.ops->initial_state(st.ctx, &hs, &cs), 0);
        ck_assert_int_eq(st.ops->term(st.ctx, 3, &t), 0);
        if (round == 0) {
            ck_assert_uint_eq(st.ops->last_index(st.ctx), 3);
            ck_assert_uint_eq(t, 1);
            ck_assert_uint_eq(hs.term, 1);
            ck_assert_uint_eq(hs.vote, 1);
            ck_assert_uint_eq(hs.commit, 2);
        } else {
            ck_assert_uint_eq(st.ops->last_index(st.ctx), 5);
            ck_assert_uint_eq(t, 2);
            ck_assert_uint_eq(hs.term, 2);
            ck_assert_uint_eq(hs.vote, 3);
            ck_assert_uint_eq(hs.commit, 3);
        }
    }
    fx_fini(&f);
}
END_TEST

static void raw_key(uint8_t *k, uint64_t shard, uint64_t index)
{
    bs_eng__put_u64be(k, shard);
    bs_eng__put_u64be(k + 8, index);
}

/* The stored bytes of (shard, index); rocksdb_free them. */
static char *raw_get(struct bs_eng_db *db, uint64_t shard, uint64_t index,
                     size_t *len)
{
    uint8_t k[16];
    char *err = NULL;
    raw_key(k, shard, index);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *v = rocksdb_get_cf(bs_eng__db_rocks(db), ro,
                             bs_eng__db_cf(db, BS_ENG__CF_RAFTLOG),
                             (const char *)k, 16, len, &err);
    rocksdb_readoptions_destroy(ro);
    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* Five entries with data; returns the fixture, written. */
static void make5(struct fx *f, int variant)
{
    fx_init(f, variant);
    struct bs_raft_entry e[5];
    for (int i = 0; i < 5; i++) {
        ent(&e[i], (uint64_t)i + 1, 1);
        e[i].data = (uint8_t *)"payload";
        e[i].len = 7;
    }
    ck_assert_int_eq(append(f, e, 5), 0);
}

enum damage { GARBAGE, FLIP, TORN, MOVED, N_DAMAGE };

static void damage(struct fx *f, uint64_t index, enum damage how)
{
    size_t n;
    char *v = raw_get(f->db, f->shard, index, &n);
    int rc;
    switch (how) {
    case GARBAGE:
        rc = bs_eng__test_log_put_raw(f->db, f->shard, index, "garbage!", 8);
        break;
    case FLIP: /* a bit of the payload: only the checksum sees it */
        v[n - 6] ^= 0x20;
        rc = bs_eng__test_log_put_raw(f->db, f->shard, index, v, n);
        break;
    case TORN:
        rc = bs_eng__test_log_put_raw(f->db, f->shard, index, v, n - 3);
        break;
    default: { /* a valid record under the wrong key */
        size_t m;
        char *w = raw_get(f->db, f->shard, index - 1, &m);
        rc = bs_eng__test_log_put_raw(f->db, f->shard, index, w, m);
        rocksdb_free(w);
        break;
    }
    }
    ck_assert_int_eq(rc, 0);
    rocksdb_free(v);
}

/* A bad record in the middle of the log: with no cache, opening works and
 * every read that touches it answers BS_ECORRUPT naming the index; with a
 * cache holding it, opening fails the same way. */
START_TEST(test_corrupt_record)
{
    for (int how = 0; how < N_DAMAGE; how++) {
        struct fx f;
        make5(&f, 0);
        damage(&f, 3, (enum damage)how);
        bs_eng_log_close(f.log);
        f.log = NULL;
        char err[BS_ENG_ERRMSG_SIZE] = "";
        struct bs_eng_log *log;
        ck_assert_int_eq(bs_eng_log_open(f.db, f.shard, 1 << 20, &log, err),
                         BS_ECORRUPT);
        ck_assert_msg(strstr(err, "shard=7 index=3"), "%s", err);

        fx_log_open(&f); /* cache 0 */
        struct bs_raft_storage st = f.st;
        uint64_t t;
        ck_assert_int_eq(st.ops->term(st.ctx, 3, &t), BS_ECORRUPT);
        ck_assert_msg(strstr(bs_eng_log_errmsg(f.log), "index=3"), "%s",
                      bs_eng_log_errmsg(f.log));
        ck_assert_int_eq(st.ops->term(st.ctx, 2, &t), 0);
        struct bs_raft_entry_vec v = {0};
        ck_assert_int_eq(st.ops->entries(st.ctx, 1, 6, UINT64_MAX, &v),
                         BS_ECORRUPT);
        ck_assert_uint_eq(v.n, 0); /* all or nothing */
        ck_assert_int_eq(st.ops->entries(st.ctx, 1, 6, 1, &v), 0);
        ck_assert_uint_eq(v.n, 1); /* stops before the bad one */
        bs_raft_entry_vec_free(&v);
        ck_assert_int_eq(st.ops->entries(st.ctx, 4, 6, UINT64_MAX, &v), 0);
        ck_assert_uint_eq(v.n, 2);
        bs_raft_entry_vec_free(&v);
        struct bs_eng_wb *wb = bs_eng_wb_create();
        ck_assert_int_eq(bs_eng_log_compact(f.log, wb, 3), BS_ECORRUPT);
        ck_assert_uint_eq(bs_eng_wb_count(wb), 0);
        /* Overwriting the bad record (a leader's conflicting append)
         * repairs the log. */
        struct bs_raft_entry e;
        ent(&e, 3, 2);
        ck_assert_int_eq(bs_eng_log_append(f.log, wb, &e, 1), 0);
        write_wb(f.db, wb);
        ck_assert_int_eq(st.ops->term(st.ctx, 3, &t), 0);
        ck_assert_uint_eq(t, 2);
        fx_fini(&f);
    }
}
END_TEST

/* The newest record is decoded at open (it gives the last term). */
START_TEST(test_corrupt_last_record)
{
    struct fx f;
    make5(&f, 0);
    damage(&f, 5, TORN);
    bs_eng_log_close(f.log);
    f.log = NULL;
    char err[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_log_open(f.db, f.shard, 0, &f.log, err),
                     BS_ECORRUPT);
    ck_assert_ptr_null(f.log);
    ck_assert_msg(strstr(err, "index=5"), "%s", err);
    fx_fini(&f);
}
END_TEST

/* An entry missing in the middle or at the start of the log (the first
 * after the truncated state): found by the scan at open. */
START_TEST(test_missing_entry)
{
    static const uint64_t gone[] = {3, 1};
    for (size_t g = 0; g < 2; g++) {
        struct fx f;
        make5(&f, _i);
        uint8_t k[16];
        char *err = NULL;
        raw_key(k, f.shard, gone[g]);
        rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
        rocksdb_delete_cf(bs_eng__db_rocks(f.db), wo,
                          bs_eng__db_cf(f.db, BS_ENG__CF_RAFTLOG),
                          (const char *)k, 16, &err);
        rocksdb_writeoptions_destroy(wo);
        ck_assert_ptr_null(err);
        bs_eng_log_close(f.log);
        f.log = NULL;
        char msg[BS_ENG_ERRMSG_SIZE] = "";
        ck_assert_int_eq(bs_eng_log_open(f.db, f.shard, f.cache, &f.log, msg),
                         BS_ECORRUPT);
        char want[64];
        snprintf(want, sizeof(want), "index=%" PRIu64 ": entry missing",
                 gone[g]);
        ck_assert_msg(strstr(msg, want), "%s", msg);
        fx_fini(&f);
    }
}
END_TEST

START_TEST(test_corrupt_state)
{
    static const char *bad[] = {"", "short",
                                "0123456789012345678901234567890"
                                "12345678901234"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct fx f;
        make(&f, 0);
        uint8_t key[8];
        char *err = NULL;
        bs_eng__put_u64be(key, f.shard);
        rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
        rocksdb_put_cf(bs_eng__db_rocks(f.db), wo,
                       bs_eng__db_cf(f.db, BS_ENG__CF_RAFTSTATE),
                       (const char *)key, 8, bad[k], strlen(bad[k]), &err);
        rocksdb_writeoptions_destroy(wo);
        ck_assert_ptr_null(err);
        bs_eng_log_close(f.log);
        f.log = NULL;
        char msg[BS_ENG_ERRMSG_SIZE] = "";
        ck_assert_int_eq(bs_eng_log_open(f.db, f.shard, 0, &f.log, msg),
                         BS_ECORRUPT);
        ck_assert_msg(strstr(msg, "raftstate shard=7"), "%s", msg);
        fx_fini(&f);
    }
}
END_TEST

/* destroy removes one shard's log and state, and only that shard's. */
START_TEST(test_destroy_and_isolation)
{
    struct fx f;
    make5(&f, _i);
    struct bs_eng_log *other;
    ck_assert_int_eq(bs_eng_log_open(f.db, 8, f.cache, &other, NULL), 0);
    ck_assert_uint_eq(bs_eng_log_last_index(other), 0); /* 7's not seen */
    struct bs_raft_entry e[2];
    ent(&e[0], 1, 9);
    ent(&e[1], 2, 9);
    struct bs_raft_hard_state hs = {.term = 9, .vote = 8, .commit = 1};
    struct bs_eng_wb *wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_log_append(other, wb, e, 2), 0);
    ck_assert_int_eq(bs_eng_log_set_hard_state(other, wb, &hs), 0);
    ck_assert_int_eq(bs_eng_log_set_hard_state(f.log, wb, &hs), 0);
    write_wb(f.db, wb);
    bs_eng_log_close(other);

    bs_eng_log_close(f.log);
    f.log = NULL;
    wb = bs_eng_wb_create();
    ck_assert_int_eq(bs_eng_log_destroy(f.db, wb, 7), 0);
    write_wb(f.db, wb);
    bs_eng_db_close(f.db);
    f.db = fx_open(f.dir);
    fx_log_open(&f);
    struct bs_raft_storage st = f.st;
    ck_assert_uint_eq(st.ops->first_index(st.ctx), 1);
    ck_assert_uint_eq(st.ops->last_index(st.ctx), 0);
    struct bs_raft_hard_state ohs;
    struct bs_raft_conf_state cs;
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &ohs, &cs), 0);
    ck_assert_uint_eq(ohs.term, 0);
    ck_assert_int_eq(bs_eng_log_open(f.db, 8, f.cache, &other, NULL), 0);
    ck_assert_uint_eq(bs_eng_log_last_index(other), 2);
    struct bs_raft_storage so = bs_eng_log_iface(other);
    ck_assert_int_eq(so.ops->initial_state(so.ctx, &ohs, &cs), 0);
    ck_assert_uint_eq(ohs.term, 9);
    ck_assert_uint_eq(ohs.vote, 8);
    bs_eng_log_close(other);
    bs_eng_log_close(NULL);
    fx_fini(&f);
}
END_TEST

/* ----------------------------------------------- randomized vs model */

static uint64_t rnd_state;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static uint64_t rnd_in(uint64_t lo, uint64_t hi) /* [lo, hi] */
{
    return lo + rnd() % (hi - lo + 1);
}

#define N_LOGS 3
static const size_t model_caches[N_LOGS] = {0, 150, 1 << 20};

static void compare_entries(const struct bs_raft_entry_vec *a,
                            const struct bs_raft_entry_vec *b, int step)
{
    ck_assert_msg(a->n == b->n, "step %d: %zu vs %zu entries", step, a->n,
                  b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct bs_raft_entry *x = &a->v[i], *y = &b->v[i];
        ck_assert_msg(x->index == y->index && x->term == y->term &&
                          x->type == y->type && x->len == y->len,
                      "step %d: entry %zu differs", step, i);
        if (x->len)
            ck_assert_mem_eq(x->data, y->data, x->len);
    }
}

/* Checks every log against the model. */
static void check_all(struct bs_raft_storage *model,
                      struct bs_eng_log *logs[N_LOGS], int step)
{
    uint64_t first = model->ops->first_index(model->ctx);
    uint64_t last = model->ops->last_index(model->ctx);
    struct bs_raft_hard_state mhs, hs;
    struct bs_raft_conf_state mcs, cs;
    ck_assert_int_eq(model->ops->initial_state(model->ctx, &mhs, &mcs), 0);
    for (int l = 0; l < N_LOGS; l++) {
        struct bs_raft_storage st = bs_eng_log_iface(logs[l]);
        ck_assert_msg(st.ops->first_index(st.ctx) == first,
                      "step %d log %d: first %" PRIu64 " vs %" PRIu64, step, l,
                      st.ops->first_index(st.ctx), first);
        ck_assert_msg(st.ops->last_index(st.ctx) == last,
                      "step %d log %d: last %" PRIu64 " vs %" PRIu64, step, l,
                      st.ops->last_index(st.ctx), last);
        ck_assert_uint_eq(bs_eng_log_bytes(logs[l]), bs_eng_log_bytes(logs[0]));
        ck_assert_int_eq(st.ops->initial_state(st.ctx, &hs, &cs), 0);
        ck_assert(memcmp(&hs, &mhs, sizeof(hs)) == 0);
        for (uint64_t i = first > 2 ? first - 2 : 0; i <= last + 2; i++) {
            uint64_t mt = 0, t = 0;
            int mrc = model->ops->term(model->ctx, i, &mt);
            int rc = st.ops->term(st.ctx, i, &t);
            ck_assert_msg(rc == mrc && t == mt,
                          "step %d log %d: term(%" PRIu64 ") %s/%" PRIu64
                          " vs %s/%" PRIu64,
                          step, l, i, bs_err_name(rc), t, bs_err_name(mrc), mt);
        }
        for (int q = 0; q < 12; q++) {
            uint64_t lo = rnd_in(first > 1 ? first - 1 : 1, last + 1);
            uint64_t hi = rnd_in(lo, last + 2);
            uint64_t max = q == 0 ? 0 : q == 1 ? UINT64_MAX : rnd_in(1, 400);
            struct bs_raft_entry_vec mv = {0}, v = {0};
            int mrc = model->ops->entries(model->ctx, lo, hi, max, &mv);
            int rc = st.ops->entries(st.ctx, lo, hi, max, &v);
            ck_assert_msg(rc == mrc,
                          "step %d log %d: entries(%" PRIu64 ", %" PRIu64
                          ") %s vs %s",
                          step, l, lo, hi, bs_err_name(rc), bs_err_name(mrc));
            compare_entries(&v, &mv, step);
            bs_raft_entry_vec_free(&mv);
            bs_raft_entry_vec_free(&v);
        }
    }
}

START_TEST(test_model)
{
    rnd_state = 0x9e3779b97f4a7c15ull * (uint64_t)(_i + 1);
    char *dir = fx_tmpdir("raftlog");
    struct bs_eng_db *db = fx_open(dir);
    struct bs_eng_log *logs[N_LOGS];
    for (int l = 0; l < N_LOGS; l++)
        ck_assert_int_eq(bs_eng_log_open(db, (uint64_t)l + 1, model_caches[l],
                                         &logs[l], NULL),
                         0);
    struct bs_raft_mem_storage *ms = bs_raft_mem_storage_create();
    struct bs_raft_storage model = bs_raft_mem_storage_iface(ms);
    uint64_t term = 1;
    uint8_t data[64];

    for (int step = 0; step < 150; step++) {
        uint64_t first = model.ops->first_index(model.ctx);
        uint64_t last = model.ops->last_index(model.ctx);
        struct bs_eng_wb *wb = bs_eng_wb_create();
        uint64_t op = rnd() % 100;
        if (op < 60) { /* append, often conflicting */
            struct bs_raft_entry e[6];
            size_t n = (size_t)rnd_in(1, 6);
            uint64_t from = rnd_in(first > 2 ? first - 2 : 1, last + 1);
            if (rnd() % 3 == 0)
                term++;
            for (size_t i = 0; i < n; i++) {
                ent(&e[i], from + i, term);
                e[i].type = (uint8_t)(rnd() % 2);
                e[i].len = (uint32_t)rnd_in(0, sizeof(data) - 1);
                for (uint32_t b = 0; b < e[i].len; b++)
                    data[b] = (uint8_t)rnd();
                e[i].data = e[i].len ? data : NULL;
            }
            int mrc = bs_raft_mem_storage_append(ms, e, n);
            for (int l = 0; l < N_LOGS; l++)
                ck_assert_int_eq(bs_eng_log_append(logs[l], wb, e, n), mrc);
        } else if (op < 75) { /* compact, sometimes out of range */
            uint64_t ci = rnd_in(first > 1 ? first - 1 : 1, last + 1);
            int mrc = bs_raft_mem_storage_compact(ms, ci);
            for (int l = 0; l < N_LOGS; l++)
                ck_assert_int_eq(bs_eng_log_compact(logs[l], wb, ci), mrc);
        } else if (op < 85) {
            struct bs_raft_hard_state hs = {
                .term = term, .vote = rnd() % 4, .commit = last};
            bs_raft_mem_storage_set_hard_state(ms, &hs);
            for (int l = 0; l < N_LOGS; l++)
                ck_assert_int_eq(bs_eng_log_set_hard_state(logs[l], wb, &hs),
                                 0);
        } else if (op < 90) { /* install a snapshot ahead of the log */
            struct bs_raft_snapshot snap;
            memset(&snap, 0, sizeof(snap));
            snap.meta.index = last + rnd_in(1, 5);
            snap.meta.term = ++term;
            snap.meta.conf.voters[0] = 1;
            snap.meta.conf.n_voters = 1;
            ck_assert_int_eq(bs_raft_mem_storage_apply_snapshot(ms, &snap), 0);
            for (int l = 0; l < N_LOGS; l++)
                ck_assert_int_eq(
                    bs_eng_log_apply_snapshot(logs[l], wb, &snap.meta), 0);
        }
        write_wb(db, wb);
        if (op >= 90) { /* restart */
            for (int l = 0; l < N_LOGS; l++)
                bs_eng_log_close(logs[l]);
            bs_eng_db_close(db);
            db = fx_open(dir);
            for (int l = 0; l < N_LOGS; l++)
                ck_assert_int_eq(bs_eng_log_open(db, (uint64_t)l + 1,
                                                 model_caches[l], &logs[l],
                                                 NULL),
                                 0);
        }
        check_all(&model, logs, step);
    }
    bs_raft_mem_storage_destroy(ms);
    for (int l = 0; l < N_LOGS; l++)
        bs_eng_log_close(logs[l]);
    bs_eng_db_close(db);
    fx_rm_rf(dir);
}
END_TEST

static Suite *raftlog_suite(void)
{
    Suite *s = suite_create("engine_raftlog");
    TCase *c = tcase_create("contract");
    tcase_set_timeout(c, 120);
    tcase_add_loop_test(c, test_fresh, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_term, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_entries, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_entries_appends_to_out, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_append, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_compact, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_apply_snapshot, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_snapshot_meta, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_initial_state, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_conflict_truncates, 0, N_VARIANTS);
    tcase_add_loop_test(c, test_long_truncation, 0, N_VARIANTS);
    suite_add_tcase(s, c);
    TCase *d = tcase_create("durability");
    tcase_set_timeout(d, 120);
    tcase_add_loop_test(d, test_crash_mid_batch, 0, N_VARIANTS);
    tcase_add_test(d, test_corrupt_record);
    tcase_add_test(d, test_corrupt_last_record);
    tcase_add_loop_test(d, test_missing_entry, 0, N_VARIANTS);
    tcase_add_test(d, test_corrupt_state);
    tcase_add_loop_test(d, test_destroy_and_isolation, 0, N_VARIANTS);
    suite_add_tcase(s, d);
    TCase *m = tcase_create("model");
    tcase_set_timeout(m, 120);
    tcase_add_loop_test(m, test_model, 0, 4);
    suite_add_tcase(s, m);
    return s;
}

int main(void)
{
    return fx_run(raftlog_suite());
}
