/*
 * node_int.h - what node.c (lifecycle, loop thread, bootstrap), kv_svc.c
 * (the etcd KV service and request forwarding) and admin_svc.c (Admin,
 * Maintenance.Status, Cluster.MemberList) share. Private to rpc/.
 *
 * The loop thread is the only thread that touches the store, the db's
 * shard state and the placement view. Everything that arrives on a CQ
 * thread (a client request, an inbound Raft batch, a forwarded call's
 * answer) becomes a task posted to the loop (bs_node__post). A task runs
 * exactly once: run(ctx, false) on the loop thread, or run(ctx, true)
 * ("cancelled", on whatever thread posts it) once the loop has stopped;
 * the cancelled path must answer any client call it holds and free.
 */
#ifndef BS_RPC_NODE_INT_H
#define BS_RPC_NODE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "admin_codec.h"
#include "channel.h"
#include "codec.h"
#include "engine.h"
#include "http.h"
#include "node.h"
#include "peer.h"
#include "placement.h"
#include "server.h"
#include "shard.h"

#define BS_NODE_MOD "node"

/* How long a client request may wait for a shard leader (an election, a
 * node restart) before it is answered UNAVAILABLE; etcdctl's own command
 * timeout is 5 s. */
#define BS_NODE_REQUEST_BUDGET_MS 4500
/* Timeout of a call forwarded to another node. */
#define BS_NODE_FORWARD_TIMEOUT_MS 4000

typedef void (*bs_node_task_fn)(void *ctx, bool cancelled);

struct bs_node_task {
    bs_node_task_fn run;
    void *ctx;
};

struct node_peer_seen {
    uint64_t node_id;
    uint64_t last_ms; /* last batch received from it (monotonic ms) */
};

struct kv_op;    /* kv_svc.c */
struct fwd_peer; /* kv_svc.c: the Forward stream to one peer */
struct fwd_in;   /* kv_svc.c: a Forward stream from one peer */
struct xfer_wait; /* admin_svc.c: a leadership transfer being waited on */

/* The forward table: ids of forwarded requests in flight map to their op
 * by id & (size - 1) (a slot taken by an older op: the request goes as a
 * unary call instead). */
#define BS_FWD_SLOTS (1u << 16)

struct bs_node {
    struct bs_node_opts o;
    char snap_dir[BS_NODE_PATH_MAX + 64];
    char db_dir[BS_NODE_PATH_MAX + 64];
    uint64_t cluster_id;
    uint64_t start_ms;

    struct bs_eng_db *db;
    struct bs_eng_store *store;
    struct bs_shard_limits limits;
    struct bs_rpc_limits rpc_limits;

    struct bs_rpc_server *client_srv; /* client port */
    struct bs_rpc_server *peer_srv;   /* peer port */
    struct bs_rpc_client *rpc_client; /* CQ threads of the peer channels */
    struct bs_peer_net *net;
    struct bs_http *http;
    struct bs_http_ops *hops_; /* owned: what http borrows */
    void *kv_methods_;         /* owned: what the servers borrow */
    void *admin_methods_;      /* owned: likewise */

    /* ---- the loop and its mailbox */
    pthread_t loop;
    bool loop_started;
    pthread_mutex_t mu; /* guards the mailbox fields below */
    pthread_cond_t cv;
    struct bs_node_task *q;
    size_t q_n, q_cap;
    bool quit;         /* loop: drain and leave */
    bool loop_stopped; /* posts run cancelled from now on */
    bool loop_gone;    /* joined (controlling thread, at stop) */

    atomic_bool stopping; /* no new client requests */
    atomic_bool ready;    /* placement view present */
    atomic_int fatal;     /* a fatal store error stopped the loop */

    /* ---- loop-thread state */
    uint64_t next_tick_ms;
    uint64_t ticks;
    struct kv_op *waiting; /* ops waiting for a leader (retried per tick) */
    struct fwd_peer *fwd_peers; /* one per peer forwarded to (owned) */
    size_t n_fwd_peers;
    struct kv_op **fwd_slots; /* BS_FWD_SLOTS entries (owned) */
    uint64_t fwd_next_id;
    struct fwd_in *fwd_dirty; /* inbound streams with answers to send */
    struct xfer_wait *xfers;  /* TransferLeader calls waiting (owned) */
    bool registered;          /* placement holds our addresses */
    /* A node outside the placement group routes by a copy of its state,
     * fetched from a member every second (owned; NULL until the first). */
    struct bs_pd_state *pd_copy;
    bool pd_fetching;
    uint64_t pd_fetch_seq;
    bool reg_busy;     /* a REGISTER_NODE / report in flight */
    bool transferring; /* stop: handing leaderships away */
    struct node_peer_seen seen[64];
    size_t n_seen;
    /* counters (loop thread; read racily by the metrics page) */
    uint64_t kv_requests, kv_errors, forwarded_out, forwarded_in;
};

/* Posts a task to the loop (any thread). If the loop has stopped, runs it
 * cancelled, right here. Returns 0, or BS_ENOMEM (the task was NOT run:
 * the caller still owns ctx). */
int bs_node__post(struct bs_node *n, bs_node_task_fn run, void *ctx);

/* Loop thread: the placement view (NULL if this node has none). */
const struct bs_pd_state *bs_node__pd(struct bs_node *n);
/* Loop thread: now, monotonic ms. */
uint64_t bs_node__now(void);
/* Loop thread: true if node id was heard from recently (or is us). */
bool bs_node__alive(struct bs_node *n, uint64_t node_id);

/* Loop thread: proposes a placement command to shard 0 here if this node
 * leads it, else forwards it to the node that does. done(ctx, status)
 * runs on the loop thread (or cancelled, with BS_ESTOPPED, on any). */
typedef void (*bs_node_pd_done)(struct bs_node *n, void *ctx, int status);
int bs_node__pd_propose(struct bs_node *n, const struct bs_pd_cmd *cmd,
                        bs_node_pd_done done, void *ctx);

/* kv_svc.c: the body of /basalt.node.Forward/Placement (PlacementCommand:
 * the encoded bs_pd_cmd) and of its answer (PlacementResult: the status). */
int bs_rpc_pd_command_encode(const uint8_t *cmd, size_t len, uint8_t **out,
                             size_t *out_len);
int bs_rpc_pd_result_decode(const void *buf, size_t len, int64_t *status);
/* The body of PlacementState's answer (PlacementImage). decode: *img
 * malloc'd; BS_ETOOBIG beyond max bytes. */
int bs_rpc_pd_image_encode(const uint8_t *img, size_t len, uint8_t **out,
                           size_t *out_len);
int bs_rpc_pd_image_decode(const void *buf, size_t len, size_t max,
                           uint8_t **img, size_t *img_len);

/* fwd_codec.c: the messages of /basalt.node.Forward/Stream. Decoded
 * byte strings point into the decoded buffer; the arrays are malloc'd.
 * Return 0, BS_EPROTO, BS_ETOOBIG, BS_EINVAL (encode) or BS_ENOMEM. */
#define BS_FWD_MAX_ITEMS 65536
struct bs_fwd_item {
    uint64_t id;
    uint8_t type; /* enum bs_shard_cmd_type */
    const uint8_t *req;
    size_t len;
};
struct bs_fwd_reply {
    uint64_t id;
    int32_t rc;
    uint32_t status; /* enum bs_rpc_status; 0: the one of rc */
    const char *msg;
    size_t msg_len;
    const uint8_t *resp;
    size_t resp_len;
};
int bs_fwd_batch_encode(const struct bs_fwd_item *it, size_t n, uint8_t **out,
                        size_t *len);
int bs_fwd_batch_decode(const uint8_t *buf, size_t len, struct bs_fwd_item **it,
                        size_t *n);
int bs_fwd_replies_encode(const struct bs_fwd_reply *r, size_t n, uint8_t **out,
                          size_t *len);
int bs_fwd_replies_decode(const uint8_t *buf, size_t len,
                          struct bs_fwd_reply **r, size_t *n);

/* kv_svc.c */
int bs_node__kv_register(struct bs_node *n);
/* Loop thread, once per loop iteration: sends the forward batches and
 * the answers gathered during it. */
void bs_node__kv_flush(struct bs_node *n);
/* After the loop stopped: frees the forward table and peers. */
void bs_node__kv_free(struct bs_node *n);
void bs_node__kv_tick(struct bs_node *n); /* retries ops waiting */
void bs_node__kv_fail_waiting(struct bs_node *n);

/* admin_svc.c */
int bs_node__admin_register(struct bs_node *n);
/* Loop thread, every tick: answers the transfers that completed. */
void bs_node__admin_tick(struct bs_node *n);
/* The loop stopped: answers the transfers still waiting (UNAVAILABLE). */
void bs_node__admin_fail_waiting(struct bs_node *n);
/* The HTTP pages (http.h ops). */
int bs_node__metrics(void *ctx, char **body, size_t *len);
int bs_node__status_json(void *ctx, char **body, size_t *len);

#endif
