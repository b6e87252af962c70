/*
 * helpers.h - shared by the placement unit tests: node infos, builders of
 * the commands a test applies (registrations, node states, the reports of
 * a shard leader), applying a command at the next index, bootstrapping a
 * cluster, reporting a split the way a data shard would (ids from
 * ALLOC_IDS), refusals that must leave the state alone, an in-memory
 * record store for save / load, the command codec's fuzzing and
 * truncation checks, a RocksDB in a temp directory, a seeded PRNG, state
 * comparison through bs_pd_encode_all, and main()'s runner.
 *
 * Every helper fails the running Check test on an unexpected error.
 * Fault injection (malloc wrapped at link time) is in faults.h.
 */
#ifndef BS_TESTS_PLACEMENT_HELPERS_H
#define BS_TESTS_PLACEMENT_HELPERS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "placement.h"

/* ------------------------------------------------------------ commands */

/* Fills a node info with id, addresses derived from it, and the label
 * rack=r<id % 3>. */
void th_node_info(struct bs_pd_node_info *ni, uint64_t id);

/* REGISTER_NODE of th_node_info(id) at now (no join token). */
struct bs_pd_cmd th_cmd_register(uint64_t id, uint64_t now);
/* UPDATE_NODE_STATE of node id to state at now. */
struct bs_pd_cmd th_cmd_node_state(uint64_t id, uint8_t state, uint64_t now);
/* SHARD_REPLICA_CHANGE: shard's replica set is reps (n, copied) at its
 * next conf_ver. */
struct bs_pd_cmd th_cmd_replicas(const struct bs_pd_state *st, uint64_t shard,
                                 const struct bs_pd_replica *reps, uint32_t n);
/* SHARD_REPLICA_CHANGE reporting a move done: shard's replicas without
 * the one on node from (0: none leaves), plus a voter rid on node to (0:
 * none joins). */
struct bs_pd_cmd th_cmd_moved(const struct bs_pd_state *st, uint64_t shard,
                              uint64_t from, uint64_t to, uint64_t rid);
/* SHARD_LEADER: the replica on node leads shard, one term later. Asserts
 * that node holds a replica of shard. */
struct bs_pd_cmd th_cmd_leader(const struct bs_pd_state *st, uint64_t shard,
                               uint64_t node);
/* The split report a shard leader sends after executing SPLIT operator op
 * at key (borrowed): the operator's new shard and replica ids. */
void th_split_report(const struct bs_pd_state *st, const struct bs_pd_op *op,
                     const void *key, size_t klen, struct bs_pd_cmd *cmd);

/* --------------------------------------------------------------- apply */

/* Encodes cmd and applies it at ++*index; returns bs_pd_apply's code.
 * res may be NULL. Aborts the test if the command does not encode. */
int th_apply(struct bs_pd_state *st, uint64_t *index,
             const struct bs_pd_cmd *cmd, struct bs_pd_result *res);
/* th_apply, asserting it returned 0 (res may be NULL). */
void th_apply_ok(struct bs_pd_state *st, uint64_t *index,
                 const struct bs_pd_cmd *cmd, struct bs_pd_result *res);
/* Registers node id (th_cmd_register at 2000), asserting success. */
void th_register(struct bs_pd_state *st, uint64_t *index, uint64_t id);

/* Applies cmd at the next index to st, and an empty entry at the same
 * index to a copy: asserts the code is want, that a refusal other than
 * BS_ESTALE explains itself (in a message naming needle, if not NULL),
 * that the index was consumed and that the state is the copy's. */
void th_refused(struct bs_pd_state *st, uint64_t *index,
                const struct bs_pd_cmd *cmd, int want, const char *needle);

/* A bootstrapped state with nodes 1..n_nodes (index starts at 0). */
struct bs_pd_state *th_bootstrap(uint32_t n_nodes, uint32_t shards,
                                 uint32_t replicas, uint64_t *index);

/* Reserves count ids of kind; returns the first. */
uint64_t th_alloc(struct bs_pd_state *st, uint64_t *index, uint8_t kind,
                  uint32_t count);

/* Builds the split report a data shard would send after splitting shard
 * at key: ids from ALLOC_IDS, the parent's replicas on the same nodes with
 * new ids, both epochs at version + 1. Does not apply it. */
void th_split_cmd(struct bs_pd_state *st, uint64_t *index, uint64_t shard,
                  const void *key, size_t klen, struct bs_pd_cmd *cmd);
/* th_split_cmd then apply; returns the code, *new_id the new shard id. */
int th_split(struct bs_pd_state *st, uint64_t *index, uint64_t shard,
             const void *key, size_t klen, uint64_t *new_id);

/* The data shard holding key by a linear scan over the shard table. */
const struct bs_pd_shard *th_route_linear(const struct bs_pd_state *st,
                                          const void *key, size_t len);

/* --------------------------------------------------------------- state */

/* Asserts bs_pd_check(st) passes. */
void th_check(const struct bs_pd_state *st);
/* bs_pd_encode_all's image of st (caller frees). */
uint8_t *th_image(const struct bs_pd_state *st, size_t *len);
/* A new state decoded from st's image (caller destroys). */
struct bs_pd_state *th_copy(const struct bs_pd_state *st);
/* Whether the two states encode to the same image. */
bool th_equal(const struct bs_pd_state *a, const struct bs_pd_state *b);

/* ------------------------------------------------- in-memory record store */

struct th_rec {
    uint8_t *key, *val;
    size_t klen, vlen;
};

/* Records sorted by key, like a column family. Zero-initialised = empty. */
struct th_kv {
    struct th_rec *v;
    size_t n, cap;
    size_t puts, dels; /* since the caller last reset them */
    size_t pos;        /* iteration */
};

/* A bs_pd_put_fn on a struct th_kv: stores a copy; a NULL val deletes. */
int th_kv_put(void *kv, const void *key, size_t klen, const void *val,
              size_t vlen);
/* The record under key, or NULL. */
struct th_rec *th_kv_find(struct th_kv *kv, const void *key, size_t klen);
/* Placement's record key of kind ('m', 'n', 's', 'o') and id into key;
 * returns its length (2 for meta, which has no id, 10 otherwise). */
size_t th_rec_key(uint8_t key[10], char kind, uint64_t id);
/* th_kv_find of th_rec_key(kind, id). */
struct th_rec *th_kv_find_id(struct th_kv *kv, char kind, uint64_t id);
/* bs_pd_load_from over every record, in key order. */
int th_kv_load(struct th_kv *kv, struct bs_pd_state *st, char *errmsg);
/* Frees every record; kv is empty again. */
void th_kv_free(struct th_kv *kv);

/* --------------------------------------------------------------- codec */

/* Changes 1 to max_flips bytes of buf (len > 0) at random. */
void th_flip(uint8_t *buf, size_t len, uint64_t *seed, unsigned max_flips);
/* A command fuzzer: rounds times, encodes cmds[round % n], th_flip's the
 * bytes (1 to max_flips), cuts them to a random length one time in
 * cut_one_in, and decodes that, asserting 0 or BS_ECORRUPT; if canonical,
 * whatever decodes must encode to the very same bytes. Counts the two
 * outcomes into *ok and *bad. */
void th_fuzz_cmds(const struct bs_pd_cmd *cmds, size_t n, uint64_t seed,
                  int rounds, unsigned max_flips, unsigned cut_one_in,
                  bool canonical, size_t *ok, size_t *bad);
/* Asserts that every proper prefix of a command's bytes (each copied to a
 * buffer of exactly its size) and the bytes with one more byte are
 * refused with BS_ECORRUPT. */
void th_assert_cmd_truncations(const uint8_t *buf, size_t len);
/* Asserts got (takes ownership: freed) holds exactly want's bytes. */
void th_assert_bytes(uint8_t *got, size_t glen, const uint8_t *want,
                     size_t wlen);

/* ------------------------------------------------------------- RocksDB */

/* A new directory under /tmp (caller passes it to th_rmdir_all). */
char *th_tmpdir(void);
/* Removes dir and everything under it; frees dir. */
void th_rmdir_all(char *dir);
/* Opens the engine's db in dir. */
struct bs_eng_db *th_open_db(const char *dir);
/* Saves st's changes and writes them (one batch, synced). */
void th_save_db(struct bs_pd_state *st, struct bs_eng_db *db);

/* ---------------------------------------------------------------- misc */

/* xorshift64* */
uint64_t th_rand(uint64_t *s);

/* Runs suite (takes ownership); EXIT_SUCCESS if every test passed. */
int th_run(Suite *suite);

#endif
