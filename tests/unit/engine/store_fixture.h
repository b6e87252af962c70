/*
 * store_fixture.h - a small cluster of multi-raft stores (engine/store.c)
 * in one process for the store's unit tests, in the manner of
 * chaos/sim/nodesim.c but without randomness: every node has a real
 * RocksDB in a mkdtemp directory and the shard state machine (shard/) on
 * every group; a virtual clock (steps of SF_STEP_MS, one store tick per
 * tick_ms) and an in-memory network that delivers every batch in FIFO
 * order unless a link is cut (a cut link loses what is sent over it, as a
 * real network would).
 *
 * Snapshot images travel by path (the transport contract of engine.h):
 * all nodes share the filesystem, so the receiver ingests the sender's
 * exported directory directly.
 *
 * Every helper asserts (Check) on what it needs to succeed; a store whose
 * bs_eng_store_process fails fails the test in sf_pump.
 */
#ifndef BS_TESTS_STORE_FIXTURE_H
#define BS_TESTS_STORE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "shard.h"

#define SF_MAX_NODES 5
#define SF_STEP_MS   10

struct sf_cluster;

struct sf_node {
    struct sf_cluster *c;
    int id; /* 1-based, also the store's node id */
    bool up;
    char dir[256];
    char snap_dir[300];
    struct bs_eng_db *db;
    struct bs_eng_store *store;
};

struct sf_packet {
    int from;
    int to;
    struct bs_eng_envelope *envs; /* owned (deep copies) */
    size_t n;
};

struct sf_cluster {
    char *base; /* mkdtemp directory, removed by sf_destroy */
    uint64_t now_ms;
    int n_nodes;
    struct sf_node nodes[SF_MAX_NODES + 1];
    bool cut[SF_MAX_NODES + 1][SF_MAX_NODES + 1]; /* from -> to lost */
    struct sf_packet *net;
    size_t n_net;
    size_t cap_net;
    struct bs_shard_limits limits;
    /* Store settings for sf_open (node_id, db, transport, sm_factory and
     * snap_dir are filled per node). Tests change them before opening. */
    struct bs_eng_store_config cfg;
    bool db_sync; /* RocksDB fsyncs synced writes (default false) */
    uint64_t batches_delivered;
    uint64_t batches_lost;
};

/* Outcome of one request (bs_eng_done_cb ctx). */
struct sf_req {
    int calls; /* how many times the callback ran (must be <= 1) */
    int status;
    uint8_t *resp; /* copy of the response, or NULL */
    size_t len;
};

/* Where sf_init creates its directories (default /tmp). A test program
 * sets a directory of its own and removes it at the end, which also
 * cleans up after tests that failed before sf_destroy. */
void sf_set_root(const char *dir);
/* Creates the base directory and default settings (tick 100 ms, election
 * 10 ticks, hibernation off, request timeout 3 s); opens nothing. */
void sf_init(struct sf_cluster *c, int n_nodes, const char *what);
/* Opens node i's db and store (creating the dirs on first use). */
void sf_open(struct sf_cluster *c, int i);
void sf_open_all(struct sf_cluster *c);
/* Closes node i's store and db, and loses every packet to or from it. */
void sf_close(struct sf_cluster *c, int i);
/* Closes every node, frees the network, removes the base directory. */
void sf_destroy(struct sf_cluster *c);

/* Bootstraps shard [start, end) ("" = unbounded) on nodes[0..n) with
 * replica ids BS_ENG_REPLICA_ID(node, shard), epoch 1/1. */
void sf_bootstrap(struct sf_cluster *c, uint64_t shard, const char *start,
                  const char *end, const int *nodes, int n);

/* Processes every store and delivers every queued batch until the network
 * is empty (no time passes). */
void sf_pump(struct sf_cluster *c);
/* One step: time + SF_STEP_MS, a tick of every open store when a tick is
 * due, then sf_pump. */
void sf_step(struct sf_cluster *c);
void sf_run(struct sf_cluster *c, uint64_t ms);

/* Cuts (or heals) every link to and from node i. */
void sf_isolate(struct sf_cluster *c, int i, bool cut);

/* The open node whose replica of shard is leader with the highest term, or
 * 0. */
int sf_leader(struct sf_cluster *c, uint64_t shard);
/* Steps until shard has a leader (on an open node not cut off from every
 * other); returns its node or 0 after max_ms. */
int sf_wait_leader(struct sf_cluster *c, uint64_t shard, uint64_t max_ms);
/* Steps until r was answered; false after max_ms. */
bool sf_wait_req(struct sf_cluster *c, struct sf_req *r, uint64_t max_ms);

void sf_cb(void *ctx, int status, const void *resp, size_t len);
void sf_req_free(struct sf_req *r);

/* The shard state machine of node i's replica (asserts it exists). */
struct bs_shard *sf_shard(struct sf_cluster *c, int i, uint64_t shard);
struct bs_eng_group_info sf_info(struct sf_cluster *c, int i, uint64_t shard);

/* Encodes a Put of key = val with the given epoch (NULL = the epoch of
 * node i's replica); *len bytes, malloc'd. */
uint8_t *sf_put_cmd(struct sf_cluster *c, int i, uint64_t shard,
                    const struct bs_shard_epoch *epoch, const char *key,
                    const char *val, size_t *len);
/* Proposes a Put on node i (bs_eng_store_propose's return code). */
int sf_propose_put(struct sf_cluster *c, int i, uint64_t shard, const char *key,
                   const char *val, struct sf_req *r);
/* Proposes on the leader (waiting up to 5 s for one) and waits up to 5 s
 * for the answer; returns the callback's status (BS_ETIMEDOUT if none). */
int sf_put(struct sf_cluster *c, uint64_t shard, const char *key,
           const char *val);

/* Node i's local value of key (malloc'd C string), or NULL if absent;
 * asserts that the local read succeeds. */
char *sf_get(struct sf_cluster *c, int i, uint64_t shard, const char *key);
/* Every key of node i's replica as "key=value@mod_rev/version;..."
 * (malloc'd), read with bs_shard_range over the shard's range. */
char *sf_dump(struct sf_cluster *c, int i, uint64_t shard);

#endif
