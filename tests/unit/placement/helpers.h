/*
 * helpers.h - shared by the placement unit tests: node infos, applying a
 * command at the next index, bootstrapping a cluster, reporting a split
 * the way a data shard would (ids from ALLOC_IDS), a seeded PRNG, and
 * state comparison through bs_pd_encode_all.
 */
#ifndef BS_TESTS_PLACEMENT_HELPERS_H
#define BS_TESTS_PLACEMENT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "placement.h"

/* Fills a node info with id, addresses derived from it, and the label
 * rack=r<id % 3>. */
void th_node_info(struct bs_pd_node_info *ni, uint64_t id);

/* Encodes cmd and applies it at ++*index; returns bs_pd_apply's code.
 * res may be NULL. Aborts the test if the command does not encode. */
int th_apply(struct bs_pd_state *st, uint64_t *index,
             const struct bs_pd_cmd *cmd, struct bs_pd_result *res);

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

/* Asserts bs_pd_check(st) passes. */
void th_check(const struct bs_pd_state *st);
/* Whether the two states encode to the same image. */
bool th_equal(const struct bs_pd_state *a, const struct bs_pd_state *b);

/* xorshift64* */
uint64_t th_rand(uint64_t *s);

#endif
