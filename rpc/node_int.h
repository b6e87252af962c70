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

/* pd_svc.c: what this node keeps per shard it holds: request counters
 * for the heartbeat's rates, and, for the shards it leads, the ISR. */
struct node_shard_stat {
    uint64_t shard_id;
    uint64_t reads, writes;           /* since start */
    uint64_t reads_prev, writes_prev; /* at the last rate sample */
    uint64_t read_qps, write_qps;     /* over the last heartbeat interval */
    bool leading;                     /* the ISR below is current */
    uint32_t n_isr;                   /* replicas in sync, leader included */
    uint64_t isr[BS_RAFT_MAX_MEMBERS];
    uint32_t voters;                  /* voters of the configuration */
    uint32_t voters_in_sync;
    uint64_t last_index;
    struct bs_eng_progress prog[BS_RAFT_MAX_MEMBERS];
    uint32_t n_prog;
};

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
    uint32_t leader_reports; /* SHARD_LEADER reports in flight */
    bool joined;       /* started with --join (and answered) */
    bool transferring; /* stop: handing leaderships away */
    struct node_peer_seen seen[64];
    size_t n_seen;
    /* counters (loop thread; read racily by the metrics page) */
    uint64_t kv_requests, kv_errors, forwarded_out, forwarded_in;

    /* ---- pd_svc.c (loop thread) */
    struct bs_pd_sched_config sched; /* the options, defaults filled */
    uint64_t max_lag_entries, max_lag_ms, heartbeat_ms;
    struct node_shard_stat *sstats; /* owned, sorted by shard id */
    size_t n_sstats, cap_sstats;
    uint64_t next_hb_ms, last_rate_ms, next_isr_ms, next_duty_ms;
    struct bs_pd_stats *pd_stats; /* owned; valid while pd_leading */
    bool pd_leading;
    uint64_t pd_lead_term;
    uint32_t pd_inflight; /* maintenance / operator commands proposed */
    uint64_t isr_shrinks, isr_expands, hb_sent, hb_failed, hb_received;
    uint64_t ops_proposed, moves_steps;
    /* ---- mover.c (loop thread) */
    struct mover_step *steps; /* owned: last action per operator */
    size_t n_steps, cap_steps;
    uint64_t next_mover_ms;
    uint64_t replicas_created, replicas_collected;
};

/* Posts a task to the loop (any thread). If the loop has stopped, runs it
 * cancelled, right here. Returns 0, or BS_ENOMEM (the task was NOT run:
 * the caller still owns ctx). */
int bs_node__post(struct bs_node *n, bs_node_task_fn run, void *ctx);

/* Loop thread: the placement view (NULL if this node has none). */
const struct bs_pd_state *bs_node__pd(struct bs_node *n);
/* Loop thread: now, monotonic ms. */
uint64_t bs_node__now(void);
/* Loop thread: true if node id was heard from recently (within two
 * election timeouts; or is us). */
bool bs_node__alive(struct bs_node *n, uint64_t node_id);
/* Loop thread: true if node id was heard from within ms (or is us). */
bool bs_node__heard_within(struct bs_node *n, uint64_t node_id, uint64_t ms);

/* Loop thread: proposes a placement command to shard 0 here if this node
 * leads it, else forwards it to the node that does. done(ctx, status)
 * runs on the loop thread (or cancelled, with BS_ESTOPPED, on any). */
typedef void (*bs_node_pd_done)(struct bs_node *n, void *ctx, int status,
                                uint64_t first_id);
int bs_node__pd_propose(struct bs_node *n, const struct bs_pd_cmd *cmd,
                        bs_node_pd_done done, void *ctx);

/* kv_svc.c: the body of /basalt.node.Forward/Placement (PlacementCommand:
 * the encoded bs_pd_cmd) and of its answer (PlacementResult: the status).
 * PlacementCommand, PlacementImage and HeartbeatRequest are each one
 * bytes field 1, so the command's encoder and the image's decoder serve
 * all three. */
int bs_rpc_pd_command_encode(const uint8_t *cmd, size_t len, uint8_t **out,
                             size_t *out_len);
int bs_rpc_pd_result_decode(const void *buf, size_t len, int64_t *status,
                            uint64_t *first_id);
/* The id a placement command allocated, from the response its apply gave
 * the proposer (placement/sm.c: 8 bytes big-endian), 0 if none. */
uint64_t bs_node__pd_first_id(const void *resp, size_t len);
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

/* pd_svc.c: heartbeats, ISR, the placement leader's duties. */
/* Fills n->sched and the ISR settings from the options; creates the
 * stats table. 0 or BS_ENOMEM. */
int bs_node__pd_svc_init(struct bs_node *n);
void bs_node__pd_svc_free(struct bs_node *n);
/* Registers Forward/Heartbeat on the peer server. */
int bs_node__pd_svc_register(struct bs_node *n);
/* Loop thread, every tick: ISR (every 200 ms), the heartbeat (every
 * heartbeat interval), and on the placement leader maintenance and
 * scheduling (every heartbeat interval). */
void bs_node__pd_tick(struct bs_node *n);
/* Loop thread: true if this node leads the placement group and its stats
 * table is live. */
bool bs_node__pd_leading(struct bs_node *n);
/* Loop thread: the placement leader's stats table (NULL elsewhere). */
const struct bs_pd_stats *bs_node__pd_stats(struct bs_node *n);
/* Loop thread: the per-shard record (created on demand; NULL on
 * out-of-memory). */
struct node_shard_stat *bs_node__shard_stat(struct bs_node *n,
                                            uint64_t shard_id);
/* Loop thread: a request was served (or proposed) here for shard_id. */
void bs_node__count(struct bs_node *n, uint64_t shard_id, bool write);
/* Loop thread: true if replica id of shard_id, led here, is in its ISR
 * as last judged. */
bool bs_node__in_isr(struct bs_node *n, uint64_t shard_id, uint64_t id);
/* Loop thread, before proposing a write to a shard led here: 0, or
 * BS_EUNAVAIL with the reason in msg (>= 160 bytes) when fewer voters
 * than min_insync_replicas are in sync. */
int bs_node__isr_check(struct bs_node *n, uint64_t shard_id, char *msg);
/* Wall-clock milliseconds: the `now` of placement commands and stats, so
 * that a new placement leader reads the same clock as the old one. */
uint64_t bs_node__wall_ms(void);
/* The effective minimum ISR for a shard with `voters` voters. */
uint32_t bs_node__min_insync(const struct bs_node *n, uint32_t voters);

/* mover.c: operators executed here (shards led here), replicas created
 * for operators that target this node, stale replicas collected. */
void bs_node__mover_tick(struct bs_node *n);
void bs_node__mover_free(struct bs_node *n);

/* pd_admin.c: Admin Join, RemoveNode, Rebalance, IsrStatus, Split and
 * Scheduler. Each is answered by the placement leader's node; any other
 * node forwards the call there once over the peer channel (forwarded =
 * it arrived that way: act or refuse, never forward again). Loop thread;
 * takes the call (answers it, now or later). req borrowed. */
enum bs_node_pd_admin {
    BS_PD_ADMIN_JOIN,
    BS_PD_ADMIN_REMOVE_NODE,
    BS_PD_ADMIN_REBALANCE,
    BS_PD_ADMIN_ISR_STATUS,
    BS_PD_ADMIN_SPLIT,
    BS_PD_ADMIN_SCHEDULER,
};
void bs_node__pd_admin(struct bs_node *n, enum bs_node_pd_admin kind,
                       struct bs_rpc_call *call, const uint8_t *req,
                       size_t len, bool forwarded);

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
