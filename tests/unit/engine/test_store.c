/*
 * test_store.c - engine/store.c, the multi-raft store, driven as whole
 * nodes (real RocksDB, the shard state machine, a virtual clock and an
 * in-memory network: store_fixture.h):
 *
 *   - group commit: the entries of 64 groups proposed in one loop
 *     iteration are persisted by ONE synced write;
 *   - recovery: after closing every store and db, each group's hard state,
 *     log, applied index, configuration and data are back, also after a
 *     SIGKILL with everything open; the cluster serves again and no
 *     acknowledged write is lost;
 *   - proposal outcomes: not leader, unknown shard, a leader deposed before
 *     commit (never success with another leader's entry; never "dropped"
 *     when its own entry won and it caught up by snapshot), a conf change
 *     the core replaced by an empty entry (never success);
 *   - ReadIndex on a follower waits for the follower's apply;
 *   - hibernation: asleep groups neither tick nor send; waking by a
 *     proposal, a read, and by node liveness; sleeping again after the
 *     stopped node returns;
 *   - catch-up of a new replica through a snapshot after compaction;
 *   - split: a new group on every node, old shard refuses upper keys, both
 *     back after a restart; 70 splits applied in one round;
 *   - replica removal, by conf change and by the node itself (destroyed,
 *     stays gone), and leadership transfer;
 *   - replication progress for the ISR: every member of a group led here,
 *     when each was last caught up (a lagging follower's lag, a proposal
 *     not yet acknowledged, a sleeping group);
 *   - unknown shards, malformed envelopes and a snapshot image of another
 *     shard are dropped without stopping the store.
 *
 * RocksDB runs without fsync (sync = false) everywhere: the store counts a
 * synced raft write in st.fsyncs whatever the db does with it.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "shard.h"
#include "store_fixture.h"

#define ET_MS 1000 /* election timeout: 10 ticks of 100 ms */

static struct bs_eng_store_stats stats(struct sf_cluster *c, int i)
{
    struct bs_eng_store_stats st;
    bs_eng_store_stats(c->nodes[i].store, &st);
    return st;
}

static void assert_value(struct sf_cluster *c, int i, uint64_t shard,
                         const char *key, const char *want)
{
    char *v = sf_get(c, i, shard, key);
    if (want == NULL)
        ck_assert_msg(v == NULL, "node %d key %s: '%s', expected absent", i,
                      key, v);
    else
        ck_assert_msg(v != NULL && strcmp(v, want) == 0,
                      "node %d key %s: '%s', expected '%s'", i, key,
                      v ? v : "(absent)", want);
    free(v);
}

/* Steps until every open replica of shard applied what its leader
 * committed. */
static void settle(struct sf_cluster *c, uint64_t shard)
{
    for (int t = 0; t < 500; t++) {
        int l = sf_leader(c, shard);
        bool done = l != 0;
        if (l) {
            uint64_t commit = sf_info(c, l, shard).commit;
            for (int i = 1; i <= c->n_nodes; i++) {
                struct bs_eng_group_info gi;
                if (!c->nodes[i].up ||
                    bs_eng_store_group(c->nodes[i].store, shard, &gi) != 0)
                    continue;
                done &= gi.applied == commit && gi.commit == commit;
            }
        }
        if (done)
            return;
        sf_step(c);
    }
    ck_abort_msg("shard %" PRIu64 " never settled", shard);
}

static int propose_cc(struct sf_cluster *c, int i, uint64_t shard, uint8_t type,
                      uint64_t rid, struct sf_req *r)
{
    struct bs_raft_conf_change cc;
    memset(&cc, 0, sizeof(cc));
    cc.n_changes = 1;
    cc.changes[0].type = type;
    cc.changes[0].node_id = rid;
    return bs_eng_store_propose_conf_change(c->nodes[i].store, shard, &cc,
                                            sf_cb, r);
}

/* ===================================================== 1. group commit */

START_TEST(test_group_commit_one_fsync)
{
    struct sf_cluster c;
    sf_init(&c, 1, "gc");
    sf_open(&c, 1);
    const int n1[] = {1};
    char lo[16], hi[16], key[16];
    for (int s = 1; s <= 64; s++) {
        snprintf(lo, sizeof(lo), "k%03d", s);
        snprintf(hi, sizeof(hi), "k%03d", s + 1);
        sf_bootstrap(&c, (uint64_t)s, lo, hi, n1, 1);
    }
    for (int s = 1; s <= 64; s++)
        ck_assert_int_eq(sf_wait_leader(&c, (uint64_t)s, 5000), 1);
    sf_run(&c, 300);
    struct bs_eng_store *st = c.nodes[1].store;
    struct bs_eng_store_stats before = stats(&c, 1);
    ck_assert_uint_eq(before.groups, 64);

    struct sf_req reqs[64];
    memset(reqs, 0, sizeof(reqs));
    for (int s = 1; s <= 64; s++) {
        snprintf(key, sizeof(key), "k%03d", s);
        ck_assert_int_eq(
            sf_propose_put(&c, 1, (uint64_t)s, key, "v", &reqs[s - 1]), 0);
    }
    /* Proposing alone writes nothing. */
    struct bs_eng_store_stats mid = stats(&c, 1);
    ck_assert_uint_eq(mid.fsyncs, before.fsyncs);
    ck_assert_uint_eq(mid.entries_persisted, before.entries_persisted);

    ck_assert_int_eq(bs_eng_store_process(st), 0);
    struct bs_eng_store_stats after = stats(&c, 1);
    ck_assert_uint_eq(after.entries_persisted - before.entries_persisted, 64);
    ck_assert_msg(after.fsyncs - before.fsyncs == 1,
                  "64 groups' entries took %" PRIu64 " synced writes",
                  after.fsyncs - before.fsyncs);
    /* Single-voter groups commit what they persist: all applied in the
     * same call, answered once each. */
    ck_assert_uint_eq(after.entries_applied - before.entries_applied, 64);
    for (int s = 1; s <= 64; s++) {
        ck_assert_int_eq(reqs[s - 1].calls, 1);
        ck_assert_int_eq(reqs[s - 1].status, 0);
        snprintf(key, sizeof(key), "k%03d", s);
        assert_value(&c, 1, (uint64_t)s, key, "v");
        sf_req_free(&reqs[s - 1]);
    }

    /* Control: the counter does see separate rounds. */
    before = after;
    for (int s = 1; s <= 8; s++) {
        snprintf(key, sizeof(key), "k%03d", s);
        ck_assert_int_eq(
            sf_propose_put(&c, 1, (uint64_t)s, key, "w", &reqs[s - 1]), 0);
        ck_assert_int_eq(bs_eng_store_process(st), 0);
        ck_assert_int_eq(reqs[s - 1].calls, 1);
        sf_req_free(&reqs[s - 1]);
    }
    after = stats(&c, 1);
    ck_assert_uint_eq(after.fsyncs - before.fsyncs, 8);
    sf_destroy(&c);
}
END_TEST

/* =================================================== 2. crash recovery */

/* What survives a restart, as read from the db: hard state, log bounds
 * and every entry (index, term, type, data). */
struct log_image {
    struct bs_raft_hard_state hs;
    uint64_t first;
    uint64_t last;
    char *ents; /* malloc'd text */
};

static struct log_image log_capture(struct bs_eng_db *db, uint64_t shard)
{
    struct log_image im;
    memset(&im, 0, sizeof(im));
    struct bs_eng_log *log = NULL;
    char em[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_log_open(db, shard, 0, &log, em), 0);
    struct bs_raft_storage st = bs_eng_log_iface(log);
    struct bs_raft_conf_state cs;
    ck_assert_int_eq(st.ops->initial_state(st.ctx, &im.hs, &cs), 0);
    im.first = st.ops->first_index(st.ctx);
    im.last = st.ops->last_index(st.ctx);
    size_t cap = 0;
    FILE *f = open_memstream(&im.ents, &cap);
    ck_assert_ptr_nonnull(f);
    if (im.last >= im.first) {
        struct bs_raft_entry_vec v = {0};
        ck_assert_int_eq(
            st.ops->entries(st.ctx, im.first, im.last + 1, UINT64_MAX, &v), 0);
        ck_assert_uint_eq(v.n, im.last - im.first + 1);
        for (size_t k = 0; k < v.n; k++) {
            fprintf(f, "%" PRIu64 ":%" PRIu64 ":%u:", v.v[k].index, v.v[k].term,
                    v.v[k].type);
            for (uint32_t b = 0; b < v.v[k].len; b++)
                fprintf(f, "%02x", v.v[k].data[b]);
            fputc(';', f);
        }
        bs_raft_entry_vec_free(&v);
    }
    fclose(f);
    bs_eng_log_close(log);
    return im;
}

static uint64_t log_capture_first(struct sf_cluster *c, int i)
{
    struct log_image im = log_capture(c->nodes[i].db, 1);
    free(im.ents);
    return im.first;
}

struct replica_image {
    struct bs_eng_group_info gi;
    struct log_image log;
    char *data;
};

static struct replica_image replica_capture(struct sf_cluster *c, int i,
                                            uint64_t shard)
{
    struct replica_image r;
    r.gi = sf_info(c, i, shard);
    r.log = log_capture(c->nodes[i].db, shard);
    r.data = sf_dump(c, i, shard);
    return r;
}

static void replica_compare(struct sf_cluster *c, int i, uint64_t shard,
                            const struct replica_image *was)
{
    struct replica_image now = replica_capture(c, i, shard);
    const char *w = "node/shard";
    ck_assert_msg(now.gi.replica_id == was->gi.replica_id,
                  "%s %d/%" PRIu64 " replica id", w, i, shard);
    ck_assert_msg(now.gi.term == was->gi.term,
                  "node %d shard %" PRIu64 ": term %" PRIu64 " -> %" PRIu64, i,
                  shard, was->gi.term, now.gi.term);
    ck_assert_msg(now.gi.commit == was->gi.commit,
                  "node %d shard %" PRIu64 ": commit %" PRIu64 " -> %" PRIu64,
                  i, shard, was->gi.commit, now.gi.commit);
    ck_assert_msg(now.gi.applied == was->gi.applied,
                  "node %d shard %" PRIu64 ": applied %" PRIu64 " -> %" PRIu64,
                  i, shard, was->gi.applied, now.gi.applied);
    ck_assert_msg(bs_raft_conf_state_equal(&now.gi.conf, &was->gi.conf),
                  "node %d shard %" PRIu64 ": configuration changed", i, shard);
    ck_assert_uint_eq(now.log.hs.term, was->log.hs.term);
    ck_assert_uint_eq(now.log.hs.vote, was->log.hs.vote);
    ck_assert_uint_eq(now.log.hs.commit, was->log.hs.commit);
    ck_assert_uint_eq(now.log.first, was->log.first);
    ck_assert_uint_eq(now.log.last, was->log.last);
    ck_assert_msg(strcmp(now.log.ents, was->log.ents) == 0,
                  "node %d shard %" PRIu64 ": log entries differ", i, shard);
    ck_assert_msg(strcmp(now.data, was->data) == 0,
                  "node %d shard %" PRIu64 ": data\n  was %s\n  now %s", i,
                  shard, was->data, now.data);
    free(now.log.ents);
    free(now.data);
}

/* A linearizable read of key at node i: ReadIndex, then the local state. */
static char *read_at(struct sf_cluster *c, int i, uint64_t shard,
                     const char *key)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        struct sf_req r = {0};
        int rc = bs_eng_store_read_index(c->nodes[i].store, shard, sf_cb, &r);
        if (rc == 0 && sf_wait_req(c, &r, 5000) && r.status == 0) {
            sf_req_free(&r);
            return sf_get(c, i, shard, key);
        }
        sf_req_free(&r);
        sf_run(c, 200);
    }
    ck_abort_msg("node %d: no read of %s", i, key);
    return NULL;
}

START_TEST(test_recovery_after_close)
{
    struct sf_cluster c;
    sf_init(&c, 3, "rec");
    sf_open_all(&c);
    const int n123[] = {1, 2, 3};
    sf_bootstrap(&c, 1, "", "m", n123, 3);
    sf_bootstrap(&c, 2, "m", "", n123, 3);
    char key[16], val[16];
    for (int k = 0; k < 15; k++) {
        snprintf(key, sizeof(key), "a%02d", k);
        snprintf(val, sizeof(val), "v%d", k);
        ck_assert_int_eq(sf_put(&c, 1, key, val), 0);
        key[0] = 'n';
        ck_assert_int_eq(sf_put(&c, 2, key, val), 0);
    }
    /* A configuration change on shard 2: demote a follower to learner. */
    int l2 = sf_wait_leader(&c, 2, 5000);
    int demoted = l2 == 3 ? 2 : 3;
    struct sf_req r = {0};
    ck_assert_int_eq(propose_cc(&c, l2, 2, BS_RAFT_CC_ADD_LEARNER,
                                BS_ENG_REPLICA_ID(demoted, 2), &r),
                     0);
    ck_assert(sf_wait_req(&c, &r, 5000));
    ck_assert_int_eq(r.status, 0);
    sf_req_free(&r);
    for (int k = 0; k < 3; k++) {
        snprintf(key, sizeof(key), "n%02d", k);
        ck_assert_int_eq(sf_put(&c, 2, key, "after-cc"), 0);
    }
    settle(&c, 1);
    settle(&c, 2);
    sf_run(&c, 300);
    struct bs_eng_group_info g2 = sf_info(&c, demoted, 2);
    ck_assert_uint_eq(g2.conf.n_learners, 1);
    ck_assert_uint_eq(g2.conf.learners[0], BS_ENG_REPLICA_ID(demoted, 2));
    ck_assert_uint_eq(g2.conf.n_voters, 2);
    ck_assert_uint_eq(g2.conf.n_voters_outgoing, 0);

    struct replica_image was[4][3];
    for (int i = 1; i <= 3; i++)
        for (uint64_t s = 1; s <= 2; s++)
            was[i][s] = replica_capture(&c, i, s);
    /* Closing answers what is pending with BS_ESTOPPED. */
    int l1 = sf_leader(&c, 1);
    ck_assert_int_eq(sf_propose_put(&c, l1, 1, "zz-pending", "x", &r), 0);
    for (int i = 1; i <= 3; i++)
        sf_close(&c, i);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.status, BS_ESTOPPED);
    sf_req_free(&r);

    sf_open_all(&c);
    /* Before any tick or message: everything is back as it was. */
    for (int i = 1; i <= 3; i++)
        for (uint64_t s = 1; s <= 2; s++) {
            replica_compare(&c, i, s, &was[i][s]);
            ck_assert_int_ne(sf_info(&c, i, s).role, BS_RAFT_LEADER);
        }
    /* The cluster elects and serves again. */
    ck_assert_int_ne(sf_wait_leader(&c, 1, 5000), 0);
    ck_assert_int_ne(sf_wait_leader(&c, 2, 5000), 0);
    ck_assert_int_eq(sf_put(&c, 1, "b-new", "fresh"), 0);
    ck_assert_int_eq(sf_put(&c, 2, "n-new", "fresh"), 0);
    for (int i = 1; i <= 3; i++) {
        for (int k = 0; k < 15; k++) {
            snprintf(key, sizeof(key), "a%02d", k);
            snprintf(val, sizeof(val), "v%d", k);
            char *v = read_at(&c, i, 1, key);
            ck_assert_msg(v && !strcmp(v, val), "node %d lost %s", i, key);
            free(v);
            key[0] = 'n';
            v = read_at(&c, i, 2, key);
            ck_assert_msg(v && !strcmp(v, k < 3 ? "after-cc" : val),
                          "node %d lost %s", i, key);
            free(v);
        }
        char *v = read_at(&c, i, 2, "n-new");
        ck_assert_str_eq(v, "fresh");
        free(v);
        ck_assert_uint_eq(sf_info(&c, i, 2).conf.n_learners, 1);
    }
    for (int i = 1; i <= 3; i++)
        for (uint64_t s = 1; s <= 2; s++) {
            free(was[i][s].log.ents);
            free(was[i][s].data);
        }
    sf_destroy(&c);
}
END_TEST

/* A process killed (SIGKILL) with its stores and dbs open, no destructor
 * run: acknowledged writes are on disk all the same. */
START_TEST(test_recovery_after_exit)
{
    struct sf_cluster c;
    sf_init(&c, 3, "exit");
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        sf_open_all(&c);
        const int n123[] = {1, 2, 3};
        sf_bootstrap(&c, 1, "", "", n123, 3);
        int acked = 0;
        char key[16];
        for (int k = 0; k < 20; k++) {
            snprintf(key, sizeof(key), "k%02d", k);
            if (sf_put(&c, 1, key, key) != 0)
                break;
            acked++;
        }
        if (write(fds[1], &acked, sizeof(acked)) != sizeof(acked))
            _exit(3);
        for (;;)
            pause(); /* killed with everything open: nothing flushed */
    }
    close(fds[1]);
    int acked = -1, status = 0;
    ssize_t got = read(fds[0], &acked, sizeof(acked));
    close(fds[0]);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(got, sizeof(acked));
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert_int_eq(acked, 20);

    sf_open_all(&c);
    ck_assert_int_ne(sf_wait_leader(&c, 1, 5000), 0);
    char key[16];
    for (int i = 1; i <= 3; i++)
        for (int k = 0; k < 20; k++) {
            snprintf(key, sizeof(key), "k%02d", k);
            char *v = read_at(&c, i, 1, key);
            ck_assert_msg(v && !strcmp(v, key), "node %d lost %s", i, key);
            free(v);
        }
    ck_assert_int_eq(sf_put(&c, 1, "after", "exit"), 0);
    sf_destroy(&c);
}
END_TEST

/* ================================================ 3. proposal outcomes */

/* Opens nodes 1..3 of c (settings already made) with shard 1 = every key
 * on the three of them, elected and holding one key. */
static void start3(struct sf_cluster *c)
{
    sf_open_all(c);
    const int n123[] = {1, 2, 3};
    sf_bootstrap(c, 1, "", "", n123, 3);
    ck_assert_int_ne(sf_wait_leader(c, 1, 5000), 0);
    ck_assert_int_eq(sf_put(c, 1, "init", "0"), 0);
    settle(c, 1);
}

static void setup3(struct sf_cluster *c, const char *what)
{
    sf_init(c, 3, what);
    start3(c);
}

START_TEST(test_propose_not_leader_unknown_shard)
{
    struct sf_cluster c;
    setup3(&c, "outc");
    int l = sf_leader(&c, 1);
    int f = l == 1 ? 2 : 1;
    struct sf_req r = {0};
    ck_assert_int_eq(sf_propose_put(&c, f, 1, "x", "1", &r), BS_ENOTLEADER);
    ck_assert_uint_eq(bs_eng_store_leader(c.nodes[f].store, 1),
                      BS_ENG_REPLICA_ID(l, 1));
    struct bs_raft_conf_change cc = {.n_changes = 1};
    cc.changes[0].type = BS_RAFT_CC_ADD_LEARNER;
    cc.changes[0].node_id = BS_ENG_REPLICA_ID(4, 1);
    ck_assert_int_eq(
        bs_eng_store_propose_conf_change(c.nodes[f].store, 1, &cc, sf_cb, &r),
        BS_ENOTLEADER);
    size_t len = 0;
    uint8_t *cmd = sf_put_cmd(&c, l, 1, NULL, "x", "1", &len);
    ck_assert_int_eq(
        bs_eng_store_propose(c.nodes[l].store, 77, cmd, len, sf_cb, &r),
        BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_store_read_index(c.nodes[l].store, 77, sf_cb, &r),
                     BS_ENOTFOUND);
    ck_assert_int_eq(
        bs_eng_store_propose_conf_change(c.nodes[l].store, 77, &cc, sf_cb, &r),
        BS_ENOTFOUND);
    free(cmd);
    sf_run(&c, 500);
    ck_assert_int_eq(r.calls, 0); /* a refused request is never answered */
    assert_value(&c, l, 1, "x", NULL);
    sf_destroy(&c);
}
END_TEST

START_TEST(test_propose_deposed_leader)
{
    struct sf_cluster c;
    setup3(&c, "depose");
    int old = sf_leader(&c, 1);
    uint64_t old_term = sf_info(&c, 1 + (old % 3), 1).term;
    sf_isolate(&c, old, true);
    struct sf_req lost[3];
    memset(lost, 0, sizeof(lost));
    char key[16];
    for (int k = 0; k < 3; k++) {
        snprintf(key, sizeof(key), "p%d", k);
        ck_assert_int_eq(sf_propose_put(&c, old, 1, key, "old", &lost[k]), 0);
    }
    /* The others elect a new leader and write over the same indexes. */
    int nl = 0;
    for (int t = 0; t < 500 && !nl; t++) {
        sf_step(&c);
        for (int i = 1; i <= 3; i++)
            if (i != old && sf_info(&c, i, 1).role == BS_RAFT_LEADER)
                nl = i;
    }
    ck_assert_int_ne(nl, 0);
    ck_assert_uint_gt(sf_info(&c, nl, 1).term, old_term);
    for (int k = 0; k < 6; k++) {
        struct sf_req w = {0};
        snprintf(key, sizeof(key), "p%d", k % 3);
        ck_assert_int_eq(sf_propose_put(&c, nl, 1, key, "new", &w), 0);
        ck_assert(sf_wait_req(&c, &w, 3000));
        ck_assert_int_eq(w.status, 0);
        sf_req_free(&w);
    }
    sf_isolate(&c, old, false);
    for (int k = 0; k < 3; k++) {
        ck_assert_msg(sf_wait_req(&c, &lost[k], 5000),
                      "proposal %d of the deposed leader never answered", k);
        ck_assert_int_eq(lost[k].calls, 1);
        ck_assert_msg(lost[k].status == BS_EDROPPED ||
                          lost[k].status == BS_ETIMEDOUT,
                      "proposal %d of the deposed leader answered %s", k,
                      bs_err_name(lost[k].status));
        sf_req_free(&lost[k]);
    }
    settle(&c, 1);
    for (int i = 1; i <= 3; i++)
        for (int k = 0; k < 3; k++) {
            snprintf(key, sizeof(key), "p%d", k);
            assert_value(&c, i, 1, key, "new");
        }
    sf_destroy(&c);
}
END_TEST

/* The deposed leader's own entry wins: a follower got it before the
 * partition and, elected, commits it; the old leader then catches up
 * through a snapshot (its log is compacted away meanwhile) and never sees
 * the entry applied. Its proposer must not hear BS_EDROPPED ("definitely
 * not applied") for a write that every replica applied. */
START_TEST(test_propose_deposed_leader_own_entry_wins)
{
    struct sf_cluster c;
    sf_init(&c, 3, "ownwin");
    c.cfg.log_max_entries = 10;
    c.cfg.request_timeout_ms = 60000;
    start3(&c);
    int l = sf_leader(&c, 1);
    int f = l % 3 + 1, g = f % 3 + 1;
    /* l reaches f one way only; l and g are apart. */
    c.cut[f][l] = true;
    c.cut[l][g] = c.cut[g][l] = true;
    struct sf_req p = {0};
    ck_assert_int_eq(sf_propose_put(&c, l, 1, "p", "mine", &p), 0);
    sf_pump(&c);
    ck_assert_int_eq(p.calls, 0);
    struct log_image li = log_capture(c.nodes[l].db, 1);
    struct log_image fi = log_capture(c.nodes[f].db, 1);
    ck_assert_uint_eq(fi.last, li.last); /* f holds the entry */
    free(li.ents);
    free(fi.ents);

    sf_isolate(&c, l, true);
    int nl = 0;
    for (int t = 0; t < 500 && nl != f; t++) {
        sf_step(&c);
        nl = sf_info(&c, f, 1).role == BS_RAFT_LEADER ? f : 0;
    }
    ck_assert_int_eq(nl, f); /* g's log is behind: only f can win */
    char key[16];
    for (int k = 0; k < 30; k++) {
        snprintf(key, sizeof(key), "q%02d", k);
        ck_assert_int_eq(sf_put(&c, 1, key, "x"), 0);
    }
    assert_value(&c, f, 1, "p", "mine");
    assert_value(&c, g, 1, "p", "mine");
    ck_assert_uint_gt(log_capture_first(&c, f), li.last + 1);

    sf_isolate(&c, l, false);
    sf_run(&c, 1000);
    ck_assert_int_eq(sf_put(&c, 1, "after", "heal"), 0);
    settle(&c, 1);
    ck_assert_uint_ge(stats(&c, l).snapshots_applied, 1);
    assert_value(&c, l, 1, "p", "mine");
    /* An entry past its index applied here: it is settled by now. */
    ck_assert_int_eq(p.calls, 1);
    ck_assert_msg(p.status == 0 || p.status == BS_ETIMEDOUT,
                  "an applied write was answered %s", bs_err_name(p.status));
    sf_req_free(&p);
    sf_destroy(&c);
}
END_TEST

/* The core replaces a configuration change it cannot take (another one
 * still pending) by an empty entry: that entry applies, but the change
 * did not, and its proposer must not hear success. */
START_TEST(test_conf_change_replaced_not_success)
{
    struct sf_cluster c;
    setup3(&c, "ccrep");
    int l = sf_leader(&c, 1);
    struct sf_req a = {0}, b = {0};
    ck_assert_int_eq(propose_cc(&c, l, 1, BS_RAFT_CC_ADD_LEARNER,
                                BS_ENG_REPLICA_ID(4, 1), &a),
                     0);
    int rc = propose_cc(&c, l, 1, BS_RAFT_CC_ADD_LEARNER,
                        BS_ENG_REPLICA_ID(5, 1), &b);
    ck_assert(sf_wait_req(&c, &a, 5000));
    ck_assert_int_eq(a.status, 0);
    settle(&c, 1);
    struct bs_eng_group_info gi = sf_info(&c, l, 1);
    ck_assert_uint_eq(gi.conf.n_learners, 1);
    ck_assert_uint_eq(gi.conf.learners[0], BS_ENG_REPLICA_ID(4, 1));
    if (rc == 0) {
        ck_assert(sf_wait_req(&c, &b, 5000));
        ck_assert_msg(b.status != 0,
                      "a conf change that was not applied answered success");
    } else {
        ck_assert_int_eq(b.calls, 0);
    }
    sf_req_free(&a);
    sf_req_free(&b);
    sf_destroy(&c);
}
END_TEST

/* ====================================================== 4. read index */

struct read_probe {
    struct sf_cluster *c;
    int node;
    int calls;
    int status;
    uint64_t applied; /* follower's applied index when answered */
    char *value;      /* follower's local value when answered */
};

static void read_probe_cb(void *ctx, int status, const void *resp, size_t len)
{
    (void)resp;
    (void)len;
    struct read_probe *p = ctx;
    p->calls++;
    p->status = status;
    if (status != 0)
        return;
    p->applied = sf_info(p->c, p->node, 1).applied;
    p->value = sf_get(p->c, p->node, 1, "k");
}

START_TEST(test_read_index_follower_waits_apply)
{
    struct sf_cluster c;
    setup3(&c, "read");
    int l = sf_leader(&c, 1);
    int f = l == 1 ? 2 : 1;
    ck_assert_int_eq(sf_put(&c, 1, "k", "v1"), 0);
    settle(&c, 1);
    assert_value(&c, f, 1, "k", "v1");

    /* The write commits with the leader and the other follower while
     * everything the leader sends to f is lost. */
    c.cut[l][f] = true;
    struct sf_req w = {0};
    ck_assert_int_eq(sf_propose_put(&c, l, 1, "k", "v2", &w), 0);
    sf_pump(&c);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_int_eq(w.status, 0);
    uint64_t windex = sf_info(&c, l, 1).applied;
    ck_assert_uint_lt(sf_info(&c, f, 1).applied, windex); /* the point */
    assert_value(&c, f, 1, "k", "v1");

    struct read_probe p = {.c = &c, .node = f};
    ck_assert_int_eq(
        bs_eng_store_read_index(c.nodes[f].store, 1, read_probe_cb, &p), 0);
    c.cut[l][f] = false;
    for (int t = 0; t < 300 && p.calls == 0; t++)
        sf_step(&c);
    ck_assert_int_eq(p.calls, 1);
    ck_assert_int_eq(p.status, 0);
    ck_assert_uint_ge(p.applied, windex);
    ck_assert_msg(p.value && !strcmp(p.value, "v2"),
                  "read on the follower saw '%s' after a committed 'v2'",
                  p.value ? p.value : "(absent)");
    free(p.value);
    sf_req_free(&w);
    sf_destroy(&c);
}
END_TEST

/* ====================================================== 5. hibernation */

START_TEST(test_hibernate_wake)
{
    struct sf_cluster c;
    sf_init(&c, 3, "hib");
    c.cfg.hibernate_ticks = 20;
    sf_open_all(&c);
    const int n123[] = {1, 2, 3};
    const char *bounds[] = {"", "f", "m", "t", ""};
    for (uint64_t s = 1; s <= 4; s++)
        sf_bootstrap(&c, s, bounds[s - 1], bounds[s], n123, 3);
    for (uint64_t s = 1; s <= 4; s++)
        ck_assert_int_ne(sf_wait_leader(&c, s, 5000), 0);
    sf_run(&c, 40 * 100); /* well past hibernate_ticks idle ticks */
    for (int i = 1; i <= 3; i++) {
        struct bs_eng_store_stats st = stats(&c, i);
        ck_assert_msg(st.groups_asleep == 4,
                      "node %d: %" PRIu64 " of 4 groups asleep", i,
                      st.groups_asleep);
        for (uint64_t s = 1; s <= 4; s++)
            ck_assert(sf_info(&c, i, s).asleep);
    }
    /* Asleep groups skip their ticks and send nothing at all. */
    struct bs_eng_store_stats st0[4];
    for (int i = 1; i <= 3; i++)
        st0[i] = stats(&c, i);
    sf_run(&c, 500);
    for (int i = 1; i <= 3; i++) {
        struct bs_eng_store_stats st1 = stats(&c, i);
        ck_assert_uint_ge(st1.ticks_skipped - st0[i].ticks_skipped, 4 * 5);
        ck_assert_msg(st1.msgs_sent == st0[i].msgs_sent,
                      "node %d sent %" PRIu64 " raft messages while asleep", i,
                      st1.msgs_sent - st0[i].msgs_sent);
    }

    /* A proposal wakes its group, which commits on every replica. */
    int l = sf_leader(&c, 2);
    struct sf_req r = {0};
    ck_assert_int_eq(sf_propose_put(&c, l, 2, "g", "awake", &r), 0);
    ck_assert(!sf_info(&c, l, 2).asleep);
    ck_assert(sf_wait_req(&c, &r, 2000));
    ck_assert_int_eq(r.status, 0);
    sf_req_free(&r);
    settle(&c, 2);
    for (int i = 1; i <= 3; i++)
        assert_value(&c, i, 2, "g", "awake");
    sf_run(&c, 40 * 100);
    for (int i = 1; i <= 3; i++)
        ck_assert_uint_eq(stats(&c, i).groups_asleep, 4);
    /* So does a read on a follower (ReadIndex through a sleeping
     * leader). */
    int f2 = l % 3 + 1;
    uint64_t t_read = c.now_ms;
    char *v = read_at(&c, f2, 2, "g");
    ck_assert_str_eq(v, "awake");
    free(v);
    ck_assert_uint_le(c.now_ms - t_read, 500);
    sf_run(&c, 40 * 100);
    for (int i = 1; i <= 3; i++)
        ck_assert_uint_eq(stats(&c, i).groups_asleep, 4);

    /* The leader of shard 1's node stops: the groups it led wake on the
     * other nodes by node liveness and elect a new leader. */
    int dead = sf_leader(&c, 1);
    bool led[5] = {false};
    for (uint64_t s = 1; s <= 4; s++)
        led[s] = sf_leader(&c, s) == dead;
    sf_close(&c, dead);
    uint64_t t0 = c.now_ms, t_wake = 0;
    bool all = false;
    while (!all && c.now_ms - t0 <= 3 * ET_MS) {
        sf_step(&c);
        all = true;
        bool awake = true;
        for (uint64_t s = 1; s <= 4; s++) {
            if (!led[s])
                continue;
            int nl = sf_leader(&c, s);
            all &= nl != 0 && nl != dead;
            for (int i = 1; i <= 3; i++)
                if (i != dead)
                    awake &= !sf_info(&c, i, s).asleep;
        }
        if (awake && !t_wake)
            t_wake = c.now_ms;
    }
    /* Wake-up after one election timeout of silence (checked on ticks),
     * then an election timeout drawn from [1, 2) ET: at most 3 ET. */
    ck_assert_msg(t_wake != 0 && t_wake - t0 > ET_MS &&
                      t_wake - t0 <= 2 * ET_MS,
                  "followers woke %" PRIu64 " ms after their leader's node "
                  "stopped",
                  t_wake ? t_wake - t0 : 0);
    ck_assert_msg(all,
                  "groups led by the stopped node %d have no leader "
                  "after %" PRIu64 " ms",
                  dead, c.now_ms - t0);
    const char *inside[] = {"", "a", "g", "n", "u"};
    for (uint64_t s = 1; s <= 4; s++)
        if (led[s])
            ck_assert_int_eq(sf_put(&c, s, inside[s], "after"), 0);

    /* The node comes back: it catches up and every group sleeps again. */
    sf_open(&c, dead);
    sf_run(&c, 80 * 100);
    for (uint64_t s = 1; s <= 4; s++) {
        settle(&c, s);
        if (led[s])
            assert_value(&c, dead, s, inside[s], "after");
    }
    sf_run(&c, 40 * 100);
    for (int i = 1; i <= 3; i++)
        ck_assert_msg(stats(&c, i).groups_asleep == 4,
                      "node %d: %" PRIu64 " of 4 groups asleep after the "
                      "restart of node %d",
                      i, stats(&c, i).groups_asleep, dead);
    sf_destroy(&c);
}
END_TEST

/* ================================================ 6. snapshot catch-up */

static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

START_TEST(test_snapshot_catch_up)
{
    struct sf_cluster c;
    sf_init(&c, 4, "snap");
    c.cfg.log_max_entries = 10;
    sf_open_all(&c);
    const int n123[] = {1, 2, 3};
    sf_bootstrap(&c, 1, "", "", n123, 3);
    char key[16], val[16];
    for (int k = 0; k < 60; k++) {
        snprintf(key, sizeof(key), "k%02d", k);
        snprintf(val, sizeof(val), "v%d", k * 7);
        ck_assert_int_eq(sf_put(&c, 1, key, val), 0);
    }
    settle(&c, 1);
    int l = sf_leader(&c, 1);
    ck_assert_uint_gt(stats(&c, l).compactions, 0);
    struct log_image im = log_capture(c.nodes[l].db, 1);
    ck_assert_uint_gt(im.first, 10); /* the start of the log is gone */
    free(im.ents);

    uint64_t rid = BS_ENG_REPLICA_ID(4, 1);
    ck_assert_int_eq(bs_eng_store_create_replica(c.nodes[4].store, 1, rid), 0);
    ck_assert_int_eq(bs_eng_store_create_replica(c.nodes[4].store, 1, rid),
                     BS_EEXIST);
    struct sf_req r = {0};
    ck_assert_int_eq(propose_cc(&c, l, 1, BS_RAFT_CC_ADD_LEARNER, rid, &r), 0);
    ck_assert(sf_wait_req(&c, &r, 5000));
    ck_assert_int_eq(r.status, 0);
    sf_req_free(&r);
    settle(&c, 1);
    uint64_t sent = 0;
    for (int i = 1; i <= 3; i++)
        sent += stats(&c, i).snapshots_sent;
    ck_assert_uint_ge(sent, 1);
    ck_assert_uint_ge(stats(&c, 4).snapshots_applied, 1);
    char *want = sf_dump(&c, l, 1);
    char *got = sf_dump(&c, 4, 1);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);

    /* After the snapshot it follows the log, and keeps it over a
     * restart. */
    ck_assert_int_eq(sf_put(&c, 1, "k00", "later"), 0);
    settle(&c, 1);
    assert_value(&c, 4, 1, "k00", "later");
    char *v = read_at(&c, 4, 1, "k30");
    ck_assert_str_eq(v, "v210");
    free(v);
    sf_close(&c, 4);
    sf_open(&c, 4);
    assert_value(&c, 4, 1, "k59", "v413");
    ck_assert_int_eq(sf_put(&c, 1, "k01", "after-restart"), 0);
    settle(&c, 1);
    /* Images are removed once ingested. */
    for (int i = 1; i <= 4; i++)
        ck_assert_int_eq(dir_entries(c.nodes[i].snap_dir), 0);
    want = sf_dump(&c, sf_leader(&c, 1), 1);
    got = sf_dump(&c, 4, 1);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
    sf_destroy(&c);
}
END_TEST

/* ============================================================ 7. split */

START_TEST(test_split)
{
    struct sf_cluster c;
    setup3(&c, "split");
    const char *keys[] = {"a", "c", "k", "m", "q", "x"};
    for (int k = 0; k < 6; k++)
        ck_assert_int_eq(sf_put(&c, 1, keys[k], keys[k]), 0);
    int l = sf_leader(&c, 1);
    struct bs_shard *sh = sf_shard(&c, l, 1);
    struct bs_shard_epoch old_epoch = sh->desc.epoch;
    struct bs_shard_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_SHARD_CMD_SPLIT;
    cmd.epoch = old_epoch;
    cmd.u.split.split_key = (const uint8_t *)"m";
    cmd.u.split.split_key_len = 1;
    cmd.u.split.new_shard_id = 2;
    for (int i = 0; i < 3; i++) {
        cmd.u.split.replicas[i].id = BS_ENG_REPLICA_ID(i + 1, 2);
        cmd.u.split.replicas[i].node_id = (uint64_t)(i + 1);
    }
    cmd.u.split.n_replicas = 3;
    uint8_t *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(bs_shard_cmd_encode(&cmd, &buf, &len), 0);
    struct sf_req r = {0};
    ck_assert_int_eq(
        bs_eng_store_propose(c.nodes[l].store, 1, buf, len, sf_cb, &r), 0);
    free(buf);
    ck_assert(sf_wait_req(&c, &r, 5000));
    ck_assert_int_eq(r.status, 0);
    struct bs_shard_resp rs;
    bs_shard_resp_init(&rs);
    ck_assert_int_eq(bs_shard_resp_decode(r.resp, r.len, &rs), 0);
    ck_assert_int_eq(rs.err, 0);
    ck_assert_uint_eq(rs.right.id, 2);
    ck_assert_uint_eq(rs.left.end_len, 1);
    bs_shard_resp_free(&rs);
    sf_req_free(&r);
    settle(&c, 1);

    for (int i = 1; i <= 3; i++) {
        struct bs_eng_group_info gi;
        ck_assert_int_eq(bs_eng_store_group(c.nodes[i].store, 2, &gi), 0);
        ck_assert_uint_eq(gi.replica_id, BS_ENG_REPLICA_ID(i, 2));
        ck_assert_uint_eq(gi.conf.n_voters, 3);
    }
    int l2 = sf_wait_leader(&c, 2, 5000);
    ck_assert_int_ne(l2, 0);
    ck_assert_int_eq(sf_put(&c, 2, "q", "q2"), 0);
    ck_assert_int_eq(sf_put(&c, 2, "z", "z2"), 0);
    settle(&c, 2);

    /* The old shard refuses upper keys, at apply, in the callback. */
    l = sf_wait_leader(&c, 1, 5000);
    struct bs_shard_epoch new_epoch = sf_shard(&c, l, 1)->desc.epoch;
    ck_assert_uint_gt(new_epoch.version, old_epoch.version);
    const struct bs_shard_epoch *ep[2] = {&new_epoch, &old_epoch};
    const int want[2] = {BS_ERANGE, BS_ESTALE};
    for (int k = 0; k < 2; k++) {
        buf = sf_put_cmd(&c, l, 1, ep[k], "q", "wrong", &len);
        memset(&r, 0, sizeof(r));
        ck_assert_int_eq(
            bs_eng_store_propose(c.nodes[l].store, 1, buf, len, sf_cb, &r), 0);
        free(buf);
        ck_assert(sf_wait_req(&c, &r, 5000));
        ck_assert_msg(r.status == want[k],
                      "put above the split (%s epoch) "
                      "answered %s, expected %s",
                      k ? "old" : "new", bs_err_name(r.status),
                      bs_err_name(want[k]));
        sf_req_free(&r);
    }
    ck_assert_int_eq(sf_put(&c, 1, "b", "b1"), 0);
    settle(&c, 1);
    for (int i = 1; i <= 3; i++) {
        char *d1 = sf_dump(&c, i, 1), *d2 = sf_dump(&c, i, 2);
        ck_assert_msg(strstr(d1, "a=a@") && strstr(d1, "b=b1@") &&
                          strstr(d1, "k=k@") && !strstr(d1, "q=") &&
                          !strstr(d1, "m="),
                      "node %d shard 1: %s", i, d1);
        ck_assert_msg(strstr(d2, "m=m@") && strstr(d2, "q=q2@") &&
                          strstr(d2, "x=x@") && strstr(d2, "z=z2@") &&
                          !strstr(d2, "a="),
                      "node %d shard 2: %s", i, d2);
        free(d1);
        free(d2);
    }
    /* Both groups come back from disk on every node. */
    char *was1 = sf_dump(&c, 1, 1), *was2 = sf_dump(&c, 1, 2);
    for (int i = 1; i <= 3; i++)
        sf_close(&c, i);
    sf_open_all(&c);
    for (int i = 1; i <= 3; i++) {
        ck_assert_uint_eq(bs_eng_store_groups(c.nodes[i].store, NULL, 0), 2);
        char *d1 = sf_dump(&c, i, 1), *d2 = sf_dump(&c, i, 2);
        ck_assert_str_eq(d1, was1);
        ck_assert_str_eq(d2, was2);
        free(d1);
        free(d2);
    }
    free(was1);
    free(was2);
    ck_assert_int_eq(sf_put(&c, 2, "y", "y3"), 0);
    ck_assert_int_eq(sf_put(&c, 1, "d", "d3"), 0);
    sf_destroy(&c);
}
END_TEST

/* Many splits applied in one round (here 70 single-replica shards split
 * at once): every new group is created, none is forgotten. */
START_TEST(test_many_splits_one_round)
{
    struct sf_cluster c;
    sf_init(&c, 1, "splits");
    sf_open(&c, 1);
    enum { N = 70 };
    const int n1[] = {1};
    char lo[16], hi[16], mid[16];
    for (int s = 1; s <= N; s++) {
        snprintf(lo, sizeof(lo), "k%03d", s);
        snprintf(hi, sizeof(hi), "k%03d", s + 1);
        sf_bootstrap(&c, (uint64_t)s, lo, hi, n1, 1);
    }
    for (int s = 1; s <= N; s++)
        ck_assert_int_eq(sf_wait_leader(&c, (uint64_t)s, 5000), 1);
    struct sf_req reqs[N];
    memset(reqs, 0, sizeof(reqs));
    for (int s = 1; s <= N; s++) {
        struct bs_shard_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = BS_SHARD_CMD_SPLIT;
        cmd.epoch = sf_shard(&c, 1, (uint64_t)s)->desc.epoch;
        int ml = snprintf(mid, sizeof(mid), "k%03dm", s);
        cmd.u.split.split_key = (const uint8_t *)mid;
        cmd.u.split.split_key_len = (size_t)ml;
        cmd.u.split.new_shard_id = 1000 + (uint64_t)s;
        cmd.u.split.replicas[0].id = BS_ENG_REPLICA_ID(1, 1000 + s);
        cmd.u.split.replicas[0].node_id = 1;
        cmd.u.split.n_replicas = 1;
        uint8_t *buf = NULL;
        size_t len = 0;
        ck_assert_int_eq(bs_shard_cmd_encode(&cmd, &buf, &len), 0);
        ck_assert_int_eq(bs_eng_store_propose(c.nodes[1].store, (uint64_t)s,
                                              buf, len, sf_cb, &reqs[s - 1]),
                         0);
        free(buf);
    }
    ck_assert_int_eq(bs_eng_store_process(c.nodes[1].store), 0);
    for (int s = 1; s <= N; s++) {
        ck_assert_int_eq(reqs[s - 1].calls, 1);
        ck_assert_int_eq(reqs[s - 1].status, 0);
        sf_req_free(&reqs[s - 1]);
    }
    ck_assert_uint_eq(bs_eng_store_groups(c.nodes[1].store, NULL, 0), 2 * N);
    for (int s = 1; s <= N; s++) {
        struct bs_eng_group_info gi;
        ck_assert_msg(
            bs_eng_store_group(c.nodes[1].store, 1000 + (uint64_t)s, &gi) == 0,
            "split %d: new group missing", s);
    }
    sf_destroy(&c);
}
END_TEST

/* A replica removed by a conf change is destroyed on its node (log, hard
 * state and data), stays gone over a restart, and what is still sent to it
 * is dropped as unknown. Leadership transfer moves the leader. */
START_TEST(test_remove_replica_and_transfer)
{
    struct sf_cluster c;
    setup3(&c, "remove");
    int l = sf_leader(&c, 1);
    int f = l % 3 + 1, g = f % 3 + 1;
    ck_assert_int_eq(bs_eng_store_transfer_leader(c.nodes[f].store, 1,
                                                  BS_ENG_REPLICA_ID(g, 1)),
                     BS_ENOTLEADER);
    ck_assert_int_eq(bs_eng_store_transfer_leader(c.nodes[l].store, 9,
                                                  BS_ENG_REPLICA_ID(g, 1)),
                     BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_store_transfer_leader(c.nodes[l].store, 1,
                                                  BS_ENG_REPLICA_ID(f, 1)),
                     0);
    for (int t = 0; t < 300 && sf_leader(&c, 1) != f; t++)
        sf_step(&c);
    ck_assert_int_eq(sf_leader(&c, 1), f);
    ck_assert_int_eq(sf_put(&c, 1, "k", "1"), 0);

    struct sf_req r = {0};
    ck_assert_int_eq(
        propose_cc(&c, f, 1, BS_RAFT_CC_REMOVE, BS_ENG_REPLICA_ID(l, 1), &r),
        0);
    ck_assert(sf_wait_req(&c, &r, 5000));
    ck_assert_int_eq(r.status, 0);
    sf_req_free(&r);
    sf_run(&c, 500);
    struct bs_eng_group_info gi;
    ck_assert_int_eq(bs_eng_store_group(c.nodes[l].store, 1, &gi),
                     BS_ENOTFOUND);
    ck_assert(!bs_eng_db_shard_exists(c.nodes[l].db, 1));
    ck_assert_uint_eq(stats(&c, l).groups, 0);
    ck_assert_uint_eq(sf_info(&c, f, 1).conf.n_voters, 2);
    ck_assert_int_eq(sf_put(&c, 1, "k", "2"), 0);
    settle(&c, 1);
    assert_value(&c, g, 1, "k", "2");

    sf_close(&c, l);
    sf_open(&c, l);
    ck_assert_int_eq(bs_eng_store_group(c.nodes[l].store, 1, &gi),
                     BS_ENOTFOUND);
    struct log_image im = log_capture(c.nodes[l].db, 1);
    ck_assert_uint_eq(im.hs.term, 0);
    ck_assert_uint_lt(im.last, im.first); /* no entries left */
    free(im.ents);
    uint64_t before = stats(&c, l).dropped_unknown;
    struct bs_eng_envelope e;
    memset(&e, 0, sizeof(e));
    e.kind = BS_ENG_ENV_RAFT;
    e.shard_id = 1;
    e.msg.type = BS_RAFT_MSG_HEARTBEAT;
    e.msg.from = BS_ENG_REPLICA_ID(f, 1);
    e.msg.to = BS_ENG_REPLICA_ID(l, 1);
    e.msg.term = sf_info(&c, f, 1).term;
    bs_eng_store_receive(c.nodes[l].store, (uint64_t)f, &e, 1);
    ck_assert_int_eq(bs_eng_store_process(c.nodes[l].store), 0);
    ck_assert_uint_eq(stats(&c, l).dropped_unknown - before, 1);
    ck_assert_int_eq(sf_put(&c, 1, "k", "3"), 0);
    sf_destroy(&c);
}
END_TEST

/* ======================================== 8. unknown and bad messages */

/* A replica removed by the node itself (a stale one, say): its pending
 * requests end with an unknown outcome, its data and log go, it stays gone
 * after a restart, and what the group sends it is dropped as unknown. */
START_TEST(test_remove_replica_direct)
{
    struct sf_cluster c;
    setup3(&c, "remove-direct");
    int l = sf_leader(&c, 1);
    int f = l % 3 + 1;
    struct bs_eng_store *fs = c.nodes[f].store;
    struct sf_req r = {0};
    ck_assert_int_eq(bs_eng_store_read_index(fs, 1, sf_cb, &r), 0);
    ck_assert_int_eq(bs_eng_store_remove_replica(fs, 1), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.status, BS_ETIMEDOUT);
    sf_req_free(&r);
    struct bs_eng_group_info gi;
    ck_assert_int_eq(bs_eng_store_group(fs, 1, &gi), BS_ENOTFOUND);
    ck_assert(!bs_eng_db_shard_exists(c.nodes[f].db, 1));
    ck_assert_uint_eq(stats(&c, f).groups, 0);
    ck_assert_int_eq(bs_eng_store_remove_replica(fs, 1), BS_ENOTFOUND);
    ck_assert_int_eq(bs_eng_store_remove_replica(fs, 7), BS_ENOTFOUND);

    /* The other two still make a majority. */
    uint64_t before = stats(&c, f).dropped_unknown;
    ck_assert_int_eq(sf_put(&c, 1, "k", "1"), 0);
    sf_run(&c, 300);
    ck_assert_uint_gt(stats(&c, f).dropped_unknown, before);

    sf_close(&c, f);
    sf_open(&c, f);
    ck_assert_int_eq(bs_eng_store_group(c.nodes[f].store, 1, &gi),
                     BS_ENOTFOUND);
    struct log_image im = log_capture(c.nodes[f].db, 1);
    ck_assert_uint_eq(im.hs.term, 0);
    ck_assert_uint_lt(im.last, im.first);
    free(im.ents);
    sf_destroy(&c);
}
END_TEST

START_TEST(test_unknown_and_malformed)
{
    struct sf_cluster c;
    sf_init(&c, 3, "bad");
    sf_open_all(&c);
    const int n123[] = {1, 2, 3};
    sf_bootstrap(&c, 1, "", "m", n123, 3);
    sf_bootstrap(&c, 2, "m", "", n123, 3);
    ck_assert_int_ne(sf_wait_leader(&c, 1, 5000), 0);
    ck_assert_int_ne(sf_wait_leader(&c, 2, 5000), 0);
    ck_assert_int_eq(sf_put(&c, 1, "a", "1"), 0);
    ck_assert_int_eq(sf_put(&c, 2, "n", "1"), 0);
    settle(&c, 1);
    settle(&c, 2);
    int l = sf_leader(&c, 1);
    int f = l == 1 ? 2 : 1;
    struct bs_eng_store *fs = c.nodes[f].store;

    /* Unknown shard, a replica that is not the one here, a hibernate
     * notice for an unknown shard: dropped and counted. */
    uint64_t before = stats(&c, f).dropped_unknown;
    struct bs_eng_envelope e[3];
    memset(e, 0, sizeof(e));
    e[0].kind = BS_ENG_ENV_RAFT;
    e[0].shard_id = 999;
    e[0].msg.type = BS_RAFT_MSG_HEARTBEAT;
    e[0].msg.from = BS_ENG_REPLICA_ID(l, 999);
    e[0].msg.to = BS_ENG_REPLICA_ID(f, 999);
    e[0].msg.term = 5;
    e[1] = e[0];
    e[1].shard_id = 1;
    e[1].msg.to = BS_ENG_REPLICA_ID(f, 77);
    e[2] = e[0];
    e[2].kind = BS_ENG_ENV_HIBERNATE;
    bs_eng_store_receive(fs, (uint64_t)l, e, 3);
    ck_assert_int_eq(bs_eng_store_process(fs), 0);
    ck_assert_uint_eq(stats(&c, f).dropped_unknown - before, 3);

    /* A MsgApp from the real leader, in its term, right after f's last
     * entry, whose entries skip an index: ignored. */
    struct bs_eng_group_info gf = sf_info(&c, f, 1);
    struct log_image im = log_capture(c.nodes[f].db, 1);
    free(im.ents);
    uint64_t last_term = 0;
    {
        struct bs_eng_log *lg = NULL;
        ck_assert_int_eq(bs_eng_log_open(c.nodes[f].db, 1, 0, &lg, NULL), 0);
        struct bs_raft_storage st = bs_eng_log_iface(lg);
        ck_assert_int_eq(st.ops->term(st.ctx, im.last, &last_term), 0);
        bs_eng_log_close(lg);
    }
    size_t l1 = 0, l2 = 0;
    uint8_t *c1 = sf_put_cmd(&c, l, 1, NULL, "evil", "1", &l1);
    uint8_t *c2 = sf_put_cmd(&c, l, 1, NULL, "evil", "2", &l2);
    struct bs_raft_entry ents[2] = {
        {.term = gf.term,
         .index = im.last + 1,
         .len = (uint32_t)l1,
         .data = c1},
        {.term = gf.term,
         .index = im.last + 3,
         .len = (uint32_t)l2,
         .data = c2},
    };
    struct bs_eng_envelope app;
    memset(&app, 0, sizeof(app));
    app.kind = BS_ENG_ENV_RAFT;
    app.shard_id = 1;
    app.msg.type = BS_RAFT_MSG_APP;
    app.msg.from = BS_ENG_REPLICA_ID(l, 1);
    app.msg.to = BS_ENG_REPLICA_ID(f, 1);
    app.msg.term = gf.term;
    app.msg.index = im.last;
    app.msg.log_term = last_term;
    app.msg.commit = gf.commit;
    app.msg.entries = ents;
    app.msg.n_entries = 2;
    bs_eng_store_receive(fs, (uint64_t)l, &app, 1);
    ck_assert_int_eq(bs_eng_store_process(fs), 0);
    struct log_image im2 = log_capture(c.nodes[f].db, 1);
    ck_assert_uint_eq(im2.last, im.last);
    free(im2.ents);
    struct bs_eng_group_info gf2 = sf_info(&c, f, 1);
    ck_assert_uint_eq(gf2.term, gf.term);
    ck_assert_uint_eq(gf2.applied, gf.applied);
    free(c1);
    free(c2);

    /* A snapshot message whose image does not exist: ignored. */
    struct bs_eng_envelope snap;
    memset(&snap, 0, sizeof(snap));
    snap.kind = BS_ENG_ENV_RAFT;
    snap.shard_id = 1;
    snap.msg.type = BS_RAFT_MSG_SNAP;
    snap.msg.from = BS_ENG_REPLICA_ID(l, 1);
    snap.msg.to = BS_ENG_REPLICA_ID(f, 1);
    snap.msg.term = gf.term;
    snap.msg.snapshot.meta.index = gf.commit + 100;
    snap.msg.snapshot.meta.term = gf.term;
    snap.msg.snapshot.meta.conf = gf.conf;
    char path[400];
    snprintf(path, sizeof(path), "%s/no-such-image", c.base);
    snap.msg.snapshot.data = (uint8_t *)path;
    snap.msg.snapshot.len = strlen(path);
    bs_eng_store_receive(fs, (uint64_t)l, &snap, 1);
    ck_assert_int_eq(bs_eng_store_process(fs), 0);

    /* A sound image, at the message's index and term, but of shard 2:
     * refused before the core installs it; the store keeps serving. */
    snprintf(path, sizeof(path), "%s/foreign", c.base);
    char em[BS_ENG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(bs_eng_snap_export(c.nodes[l].db, NULL, 2,
                                        snap.msg.snapshot.meta.index, gf.term,
                                        path, NULL, em),
                     0);
    snap.msg.snapshot.len = strlen(path);
    bs_eng_store_receive(fs, (uint64_t)l, &snap, 1);
    int rc = bs_eng_store_process(fs);
    ck_assert_msg(rc == 0, "an image of another shard stopped the store: %s",
                  bs_err_name(rc));
    ck_assert_uint_eq(sf_info(&c, f, 1).applied, gf.applied);
    assert_value(&c, f, 1, "a", "1");
    /* The refused image is removed by the store (nobody else would). */
    struct stat sb;
    ck_assert_int_ne(stat(path, &sb), 0);

    /* Everyone keeps serving, f included, and the evil entries never
     * appear. */
    ck_assert_int_eq(sf_put(&c, 1, "b", "2"), 0);
    ck_assert_int_eq(sf_put(&c, 2, "o", "2"), 0);
    settle(&c, 1);
    settle(&c, 2);
    for (int i = 1; i <= 3; i++) {
        assert_value(&c, i, 1, "b", "2");
        assert_value(&c, i, 1, "evil", NULL);
        assert_value(&c, i, 2, "o", "2");
    }
    char *d0 = sf_dump(&c, l, 1), *d1 = sf_dump(&c, f, 1);
    ck_assert_str_eq(d1, d0);
    free(d0);
    free(d1);
    sf_destroy(&c);
}
END_TEST

/* ====================================================== ISR progress */

static size_t progress(struct sf_cluster *c, int i, uint64_t shard,
                       struct bs_eng_progress *out, uint64_t *last)
{
    return bs_eng_store_progress(c->nodes[i].store, shard, out,
                                 BS_RAFT_MAX_MEMBERS, last);
}

static const struct bs_eng_progress *
progress_of(const struct bs_eng_progress *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    ck_abort_msg("replica %" PRIx64 " missing from the progress", id);
    return NULL;
}

/* Every member of shard 1's current leader is caught up now. */
static void assert_all_caught_up(struct sf_cluster *c)
{
    int l = sf_leader(c, 1);
    ck_assert_int_ne(l, 0);
    struct bs_eng_progress pr[BS_RAFT_MAX_MEMBERS];
    uint64_t last = 0;
    size_t n = progress(c, l, 1, pr, &last);
    ck_assert_uint_eq(n, 3);
    for (size_t k = 0; k < n; k++) {
        ck_assert_msg(pr[k].match == last,
                      "replica %" PRIx64 ": match %" PRIu64 " of %" PRIu64,
                      pr[k].id, pr[k].match, last);
        ck_assert_msg(pr[k].caught_up_ms == c->now_ms,
                      "replica %" PRIx64 ": caught up %" PRIu64
                      " ms ago although match is the last index",
                      pr[k].id, c->now_ms - pr[k].caught_up_ms);
    }
}

/* A leader reports every member, itself included; a follower cut off
 * stops being caught up at the first entry it misses (not when it was cut
 * off, not later) and its lag in time grows until it catches up again. */
START_TEST(test_progress_lag)
{
    struct sf_cluster c;
    setup3(&c, "isr");
    sf_run(&c, 300);
    int l = sf_leader(&c, 1);
    struct bs_eng_progress pr[BS_RAFT_MAX_MEMBERS];
    uint64_t last = 0;
    ck_assert_uint_eq(progress(&c, l, 1, pr, &last), 3);
    ck_assert_uint_eq(last, sf_info(&c, l, 1).commit);
    for (int i = 1; i <= 3; i++)
        (void)progress_of(pr, 3, BS_ENG_REPLICA_ID(i, 1));
    assert_all_caught_up(&c);

    /* Followers and unknown shards report nothing; a short array gets
     * what fits and the count of all. */
    int f = l % 3 + 1, g = f % 3 + 1;
    last = 99;
    ck_assert_uint_eq(progress(&c, f, 1, pr, &last), 0);
    ck_assert_uint_eq(last, 0);
    ck_assert_uint_eq(progress(&c, l, 42, pr, NULL), 0);
    struct bs_eng_progress one[2];
    memset(one, 0, sizeof(one));
    ck_assert_uint_eq(bs_eng_store_progress(c.nodes[l].store, 1, one, 1, NULL),
                      3);
    ck_assert_uint_ne(one[0].id, 0);
    ck_assert_uint_eq(one[1].id, 0);
    ck_assert_uint_eq(bs_eng_store_progress(c.nodes[l].store, 1, NULL, 0, NULL),
                      3);

    /* f cut off with nothing to replicate: still caught up. */
    sf_isolate(&c, f, true);
    sf_run(&c, 500);
    ck_assert_int_eq(sf_leader(&c, 1), l);
    ck_assert_uint_eq(progress(&c, l, 1, pr, &last), 3);
    ck_assert_uint_eq(progress_of(pr, 3, BS_ENG_REPLICA_ID(f, 1))->caught_up_ms,
                      c.now_ms);

    /* The first entry it misses starts its lag. */
    uint64_t t_put = c.now_ms;
    ck_assert_int_eq(sf_put(&c, 1, "b", "2"), 0);
    sf_run(&c, 2000);
    ck_assert_int_eq(sf_leader(&c, 1), l);
    ck_assert_uint_eq(progress(&c, l, 1, pr, &last), 3);
    const struct bs_eng_progress *pf =
        progress_of(pr, 3, BS_ENG_REPLICA_ID(f, 1));
    ck_assert_uint_lt(pf->match, last);
    ck_assert_msg(pf->caught_up_ms <= t_put &&
                      pf->caught_up_ms + (uint64_t)c.cfg.tick_ms >= t_put,
                  "caught up at %" PRIu64 ", the put came at %" PRIu64,
                  pf->caught_up_ms, t_put);
    uint64_t was = pf->caught_up_ms;
    ck_assert_uint_ge(c.now_ms - was, 2000);
    const struct bs_eng_progress *pg =
        progress_of(pr, 3, BS_ENG_REPLICA_ID(g, 1));
    ck_assert_uint_eq(pg->match, last);
    ck_assert_uint_eq(pg->caught_up_ms, c.now_ms);
    const struct bs_eng_progress *pl =
        progress_of(pr, 3, BS_ENG_REPLICA_ID(l, 1));
    ck_assert_uint_eq(pl->match, last);
    ck_assert_uint_eq(pl->caught_up_ms, c.now_ms);

    /* More writes: its lag keeps counting from the first miss. */
    ck_assert_int_eq(sf_put(&c, 1, "c", "3"), 0);
    sf_run(&c, 1000);
    ck_assert_uint_eq(progress(&c, l, 1, pr, &last), 3);
    pf = progress_of(pr, 3, BS_ENG_REPLICA_ID(f, 1));
    ck_assert_uint_eq(pf->caught_up_ms, was);

    /* Healed: caught up again, lag 0, on whoever leads then. */
    sf_isolate(&c, f, false);
    ck_assert_int_ne(sf_wait_leader(&c, 1, 5000), 0);
    settle(&c, 1);
    sf_run(&c, 500);
    assert_all_caught_up(&c);
    sf_destroy(&c);
}
END_TEST

/* A proposal not yet acknowledged puts every follower behind the leader's
 * last index, the leader itself never. */
START_TEST(test_progress_leader_ahead)
{
    struct sf_cluster c;
    setup3(&c, "isr-ahead");
    sf_run(&c, 300);
    int l = sf_leader(&c, 1);
    struct sf_req r = {0};
    ck_assert_int_eq(sf_propose_put(&c, l, 1, "x", "y", &r), 0);
    struct bs_eng_progress pr[BS_RAFT_MAX_MEMBERS];
    uint64_t last = 0;
    ck_assert_uint_eq(progress(&c, l, 1, pr, &last), 3);
    for (size_t k = 0; k < 3; k++) {
        if (pr[k].id == BS_ENG_REPLICA_ID(l, 1)) {
            ck_assert_uint_eq(pr[k].match, last);
            ck_assert_uint_eq(pr[k].caught_up_ms, c.now_ms);
        } else {
            ck_assert_uint_lt(pr[k].match, last);
        }
    }
    ck_assert(sf_wait_req(&c, &r, 2000));
    ck_assert_int_eq(r.status, 0);
    sf_req_free(&r);
    settle(&c, 1);
    assert_all_caught_up(&c);
    sf_destroy(&c);
}
END_TEST

/* A sleeping leader samples nothing, yet its caught-up followers stay
 * caught up (refreshed on read). */
START_TEST(test_progress_hibernating)
{
    struct sf_cluster c;
    sf_init(&c, 3, "isr-hib");
    c.cfg.hibernate_ticks = 20;
    start3(&c);
    sf_run(&c, 40 * 100);
    int l = sf_leader(&c, 1);
    ck_assert(sf_info(&c, l, 1).asleep);
    sf_run(&c, 3000);
    ck_assert(sf_info(&c, l, 1).asleep);
    assert_all_caught_up(&c);
    sf_destroy(&c);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_recovery_after_close);
    tcase_add_test(tc, test_recovery_after_exit);
    tcase_add_test(tc, test_propose_not_leader_unknown_shard);
    tcase_add_test(tc, test_propose_deposed_leader);
    tcase_add_test(tc, test_propose_deposed_leader_own_entry_wins);
    tcase_add_test(tc, test_conf_change_replaced_not_success);
    tcase_add_test(tc, test_read_index_follower_waits_apply);
    tcase_add_test(tc, test_hibernate_wake);
    tcase_add_test(tc, test_snapshot_catch_up);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_remove_replica_and_transfer);
    tcase_add_test(tc, test_remove_replica_direct);
    tcase_add_test(tc, test_unknown_and_malformed);
    tcase_add_test(tc, test_progress_lag);
    tcase_add_test(tc, test_progress_leader_ahead);
    tcase_add_test(tc, test_progress_hibernating);
    suite_add_tcase(s, tc);
    /* Many groups on one node (64+ column families): slow under
     * valgrind. */
    TCase *many = tcase_create("many");
    tcase_set_timeout(many, 300);
    tcase_add_test(many, test_group_commit_one_fsync);
    tcase_add_test(many, test_many_splits_one_round);
    suite_add_tcase(s, many);
    return s;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    bs_log_set_level(BS_LOG_ERROR);
    /* Every cluster lives under one directory removed at the end, also
     * when a test failed before cleaning up. */
    char root[] = "/tmp/basalt-store-XXXXXX";
    if (!mkdtemp(root))
        return EXIT_FAILURE;
    sf_set_root(root);
    SRunner *sr = srunner_create(store_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
