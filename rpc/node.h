/*
 * node.h - one Basalt node as a running process: its RocksDB, its
 * multi-raft store driven by one loop thread, its gRPC servers (client
 * port: etcd v3 KV, Maintenance.Status, Cluster.MemberList and
 * basalt.Admin; peer port: the Raft transport and forwarded requests),
 * its channels to the other nodes, and its HTTP port (metrics, health).
 *
 * `basalt start` is a thin wrapper: parse flags or YAML into struct
 * bs_node_opts, bs_node_start(), wait for SIGTERM/SIGINT, bs_node_stop().
 *
 * Bootstrap or restart: if data_dir holds no store, the node bootstraps a
 * new cluster from opts.initial (every initial member does the same, with
 * the same list, and they agree); otherwise it recovers from data_dir and
 * ignores initial and initial_shards (the cluster's membership is what
 * placement recorded).
 *
 * Threads: a node runs one loop thread (the only one that touches the
 * store), the CQ threads of its servers and client (DESIGN.md section 4:
 * few threads, these machines have 2 cores), and libmicrohttpd's thread.
 * Every function here is called from one controlling thread.
 */
#ifndef BS_RPC_NODE_H
#define BS_RPC_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define BS_NODE_ADDR_MAX    255 /* "HOST:PORT", bytes without the NUL */
#define BS_NODE_PATH_MAX    511
#define BS_NODE_MAX_INITIAL 16 /* members of --initial-cluster */
#define BS_NODE_ERRMSG_SIZE 256

/* Defaults of struct bs_node_opts. */
#define BS_NODE_DEFAULT_TICK_MS        100
#define BS_NODE_DEFAULT_ELECTION_TICKS 10
#define BS_NODE_DEFAULT_INITIAL_SHARDS 8
#define BS_NODE_DEFAULT_LOG_MAX        10000
#define BS_NODE_MAX_JOIN               16 /* endpoints of --join */
#define BS_NODE_MAX_LABELS             16

/* One member of the initial cluster: node id and peer address. */
struct bs_node_member {
    uint64_t id;
    char peer_addr[BS_NODE_ADDR_MAX + 1];
};

struct bs_node_opts {
    uint64_t node_id;                       /* 1 .. 2^32-1 */
    char data_dir[BS_NODE_PATH_MAX + 1];    /* created if missing */
    char client_addr[BS_NODE_ADDR_MAX + 1]; /* etcd API and Admin */
    char peer_addr[BS_NODE_ADDR_MAX + 1];   /* Raft transport */
    char http_addr[BS_NODE_ADDR_MAX + 1];   /* "" = no HTTP port */
    struct bs_node_member initial[BS_NODE_MAX_INITIAL];
    size_t n_initial;         /* must include node_id, with peer_addr */
    uint32_t initial_shards;  /* data shards at bootstrap (8) */
    int tick_ms;              /* Raft tick (100 ms) */
    int election_ticks;       /* election timeout in ticks (10) */
    uint64_t log_max_entries; /* compact a shard's log beyond (10000) */
    bool lease_reads;         /* linearizable reads by lease, not ReadIndex */

    /* Joining an existing cluster (instead of initial): client addresses
     * (HOST:PORT) of any of its nodes. With node_id 0 placement gives the
     * node an id. Ignored once data_dir holds a store. */
    char join[BS_NODE_MAX_JOIN][BS_NODE_ADDR_MAX + 1];
    size_t n_join;
    /* Labels placement records for this node ("rack" spreads replicas). */
    char label_keys[BS_NODE_MAX_LABELS][64];
    char label_values[BS_NODE_MAX_LABELS][128];
    size_t n_labels;

    /* Placement and ISR settings (used when this node leads placement or
     * a shard; give every node the same). 0 = the default. */
    uint64_t heartbeat_ms;        /* node heartbeat interval (1000) */
    uint64_t down_after_ms;       /* silent this long: down (30000) */
    uint64_t max_lag_entries;     /* ISR: at most this far behind (10000) */
    uint64_t max_lag_ms;          /* ISR: caught up this recently (10000) */
    uint32_t min_insync_replicas; /* writes refused below (majority) */
    uint32_t max_concurrent_moves;/* (3) */
    uint64_t split_size;          /* bytes (64 MiB) */
    uint64_t split_qps;           /* reads+writes per second, 0 = off */
    uint64_t snapshot_rate;       /* bytes per second sent, 0 = unlimited */
    uint64_t op_timeout_ms;       /* an operator older is cancelled */
};

/* Fills o with the defaults (empty addresses, no members). */
void bs_node_opts_init(struct bs_node_opts *o /* out */);

/*
 * Parses "HOST:PORT[,HOST:PORT...]" into o->join, and "k=v[,k=v...]" into
 * o->label_*. Return 0, or BS_EINVAL with a sentence naming the bad
 * element (empty, too long, too many, no '=', a duplicate key).
 */
int bs_node_parse_join(struct bs_node_opts *o, const char *s /* borrowed */,
                       char *errmsg);
int bs_node_parse_labels(struct bs_node_opts *o, const char *s /* borrowed */,
                         char *errmsg);

/*
 * Parses "1=HOST:PORT,2=HOST:PORT" into o->initial. Returns 0, or
 * BS_EINVAL with a sentence in errmsg naming the bad element (no '=', an
 * id that is not a number in 1 .. 2^32-1, a duplicate id, an empty or too
 * long address, more than BS_NODE_MAX_INITIAL members).
 */
int bs_node_parse_members(struct bs_node_opts *o, const char *s /* borrowed */,
                          char *errmsg);

/* Checks o (ids, addresses, ranges): 0 or BS_EINVAL naming the option. */
int bs_node_opts_check(const struct bs_node_opts *o, char *errmsg);

struct bs_node;

/*
 * Opens or bootstraps the node and starts serving. Returns 0 and *out, or
 * BS_EINVAL (bad options), BS_EIO (an address cannot be bound, the data
 * directory cannot be used), BS_ECORRUPT (stored data is damaged),
 * BS_EEXIST (data_dir belongs to another node id) or BS_ENOMEM, with a
 * sentence in errmsg (BS_NODE_ERRMSG_SIZE bytes). Nothing runs on error.
 */
int bs_node_start(const struct bs_node_opts *o /* borrowed */,
                  struct bs_node **out, char *errmsg);

/*
 * Stops the node cleanly: stops taking client requests (they get
 * UNAVAILABLE), hands leadership of the shards it leads to other replicas
 * (bounded wait), answers what is pending, stops the loop (everything
 * acknowledged was fsync'd before it was acknowledged), closes the servers
 * and the db, and frees the node. Accepts NULL.
 */
void bs_node_stop(struct bs_node *n);

/* The ports actually bound (useful with port 0). 0 if not served. */
int bs_node_client_port(const struct bs_node *n);
int bs_node_peer_port(const struct bs_node *n);
int bs_node_http_port(const struct bs_node *n);

/* True once the node has a placement view and serves client requests. */
bool bs_node_ready(struct bs_node *n);

#endif
