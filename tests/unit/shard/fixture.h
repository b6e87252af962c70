/*
 * fixture.h - helpers for the unit tests of shard/: a real RocksDB in a
 * mkdtemp directory with one bootstrapped shard, builders for commands,
 * and "apply this command as the next Raft entry" in one call.
 *
 * Keys and values in the builders are C strings (the tests use printable
 * keys; binary and oversize keys are built by hand). For key and range_end
 * arguments, NULL end = the single key, "" = the one zero byte "\0"
 * (etcd's "no bound"), so fx_range(f, "", "") reads every key. Every helper
 * fails the running Check test on an unexpected error.
 */
#ifndef BS_TESTS_UNIT_SHARD_FIXTURE_H
#define BS_TESTS_UNIT_SHARD_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "shard.h"

struct fx {
    char dir[64];
    struct bs_eng_db *db;
    struct bs_eng_wb *wb;
    struct bs_shard *s; /* shard 1 */
    uint64_t index;     /* last Raft index handed to apply */
    uint64_t term;
    struct bs_shard_limits limits;
};

/* Called around srunner_run_all: creates / removes the temp directory
 * every fixture of the run lives in. */
void fx_run_begin(void);
void fx_run_end(void);
/* main()'s body: runs suite (takes ownership) between fx_run_begin and
 * fx_run_end; EXIT_SUCCESS if every test passed. */
int fx_run(Suite *suite);

/* Opens a db in a fresh temp dir and bootstraps shard 1 = [start, end)
 * (NULL = "" = unbounded) with replicas 1@1, 2@2, 3@3 at index 1, term 1. */
void fx_open(struct fx *f, const char *start, const char *end);
/* Same, with limits. */
void fx_open_limits(struct fx *f, const char *start, const char *end,
                    const struct bs_shard_limits *l);
/* Closes the db and opens it again; reloads shard 1. */
void fx_reopen(struct fx *f);
/* Destroys everything and removes the directory. */
void fx_close(struct fx *f);

/* The epoch of shard 1 now. */
struct bs_shard_epoch fx_epoch(const struct fx *f);

/* Applies cmd at index ++f->index into f->wb (not written). Returns
 * bs_shard_apply's code; resp is filled (caller frees). */
int fx_stage(struct fx *f, const struct bs_shard_cmd *cmd,
             struct bs_shard_resp *resp);
/* Writes f->wb, tells the shard, clears the batch. */
void fx_write(struct fx *f);
/* fx_stage + fx_write; asserts that bs_shard_apply returned 0. */
void fx_apply(struct fx *f, const struct bs_shard_cmd *cmd,
              struct bs_shard_resp *resp);
/* fx_apply, then asserts resp.err == 0, frees resp, returns revision. */
int64_t fx_ok(struct fx *f, const struct bs_shard_cmd *cmd);
/* fx_apply, then returns resp.err (message copied into msg if not NULL,
 * BS_SHARD_ERRMSG_LEN bytes) and frees resp. */
int fx_err(struct fx *f, const struct bs_shard_cmd *cmd, char *msg);

/* Builders (strings borrowed; epoch = shard 1's current epoch). */
struct bs_shard_cmd fx_put(const struct fx *f, const char *k, const char *v);
struct bs_shard_cmd fx_del(const struct fx *f, const char *k, const char *end);
struct bs_shard_cmd fx_range(const struct fx *f, const char *k,
                             const char *end);
struct bs_shard_op fx_op_put(const char *k, const char *v);
struct bs_shard_op fx_op_del(const char *k, const char *end);
struct bs_shard_op fx_op_range(const char *k, const char *end);
struct bs_shard_compare fx_cmp_num(const char *k, uint8_t target,
                                   uint8_t result, int64_t n);
struct bs_shard_compare fx_cmp_val(const char *k, uint8_t result,
                                   const char *v);

/* Simple reads of shard 1 through bs_shard_range (latest state). */
/* 0 and *kv filled (caller frees with fx_kv_free), or BS_ENOTFOUND. */
int fx_get(struct fx *f, const char *k, struct bs_shard_kv *kv);
void fx_kv_free(struct bs_shard_kv *kv);
/* Number of keys in [k, end) (etcd conventions). */
int64_t fx_count(struct fx *f, const char *k, const char *end);
/* True if kv's value is the C string v. */
bool fx_val_is(const struct bs_shard_kv *kv, const char *v);
bool fx_key_is(const struct bs_shard_kv *kv, const char *k);

#endif
