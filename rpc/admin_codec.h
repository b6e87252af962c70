/*
 * admin_codec.h - protobuf encodings of the operator's messages: Basalt's
 * own Admin service (rpc/proto/admin.proto: ClusterStatus, ShardInfo,
 * Ping) and the parts of etcd's Maintenance, Cluster and KV services that
 * etcdctl uses to look at a cluster (Status, MemberList, Compact; etcd 3.4
 * wire format, rpc/proto/rpc.proto).
 *
 * The same conventions as codec.h hold (and the same nanopb machinery):
 * every unbounded field is a callback, decoders never trust their input
 * and refuse what is not a valid encoding, or not representable in the C
 * structs below, with BS_EPROTO and a sentence naming the field; beyond a
 * limit of this header with BS_ETOOBIG; out of memory with BS_ENOMEM. On
 * error a decoder leaves nothing allocated and its output zeroed.
 * Encoders write proto3's canonical form (defaults omitted), as etcd's Go
 * code does, and refuse (BS_EINVAL) a struct the decoder would refuse
 * (a string not NUL-terminated within its array, too many elements), so
 * a server learns of the problem, not its clients.
 *
 * Unlike the hot-path decoders of codec.h, every decoder here copies its
 * byte strings: the results are read by the CLI long after the gRPC
 * buffer is gone, and they are small.
 *
 * Strings: a decoded string must fit its array with its NUL (else
 * BS_ETOOBIG) and contain no NUL byte (else BS_EPROTO).
 *
 * Threads: every function here is reentrant; none keeps state.
 */
#ifndef BS_RPC_ADMIN_CODEC_H
#define BS_RPC_ADMIN_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "errors.h"
#include "raft.h"

/* Every errmsg parameter below is NULL or BS_RPC_ERRMSG_LEN bytes. */

/* Longest address (HOST:PORT) of a node, without its NUL. */
#define BS_ADM_ADDR_MAX 255
/* Longest label key / value, without the NUL (placement's limits). */
#define BS_ADM_LABEL_KEY_MAX 63
#define BS_ADM_LABEL_MAX     127
#define BS_ADM_MAX_LABELS    16
/* Most operators in one message, most ISR shards. */
#define BS_ADM_MAX_OPS BS_ADM_MAX_SHARDS

/* Decoding limits (BS_ETOOBIG beyond them; encoders refuse the same with
 * BS_EINVAL). Every message is at most BS_RPC_DEFAULT_MAX_MESSAGE bytes.
 * The counts bound memory: a decoded shard takes about 750 bytes of
 * struct for 2 bytes of wire. */
#define BS_ADM_MAX_NODES   4096
#define BS_ADM_MAX_SHARDS  65536
#define BS_ADM_MAX_KEY     BS_SHARD_DEFAULT_MAX_KEY /* a shard boundary */
#define BS_ADM_MAX_MEMBERS BS_ADM_MAX_NODES         /* etcd MemberList */

/* ============================================== basalt.Admin messages */

/* One node of the cluster (NodeStatus). */
struct bs_adm_node {
    uint64_t id;
    char client_addr[BS_ADM_ADDR_MAX + 1];
    char peer_addr[BS_ADM_ADDR_MAX + 1];
    char http_addr[BS_ADM_ADDR_MAX + 1];
    bool alive;        /* heard from within an election timeout */
    uint32_t replicas; /* shard replicas it hosts */
    uint32_t leaders;  /* of which it leads */
    char state[16];    /* up, suspect, down, draining, removed ("" = n/a) */
    char rack[BS_ADM_LABEL_MAX + 1]; /* its "rack" label, "" = none */
    uint64_t used_bytes; /* from its last heartbeat, 0 = none yet */
    uint64_t capacity_bytes;
    uint64_t available_bytes;
    uint64_t heard_ms_ago; /* since its last heartbeat reached placement */
};

/* One replica of a shard (ReplicaStatus). */
struct bs_adm_replica {
    uint64_t id; /* Raft member id */
    uint64_t node_id;
    bool learner;
    uint64_t match; /* leader's view: highest index known replicated */
    bool in_sync;   /* in the shard's ISR */
};

/*
 * One shard (ShardStatus). start and end are owned (malloc'd, NULL when
 * empty) after a decode, borrowed when encoding; empty start = the
 * lowest key, empty end = no upper bound. At most BS_RAFT_MAX_MEMBERS
 * replicas: a decoder refuses more with BS_EPROTO (a Raft group has no
 * more members).
 */
struct bs_adm_shard {
    uint64_t id;
    uint8_t *start;
    size_t start_len;
    uint8_t *end;
    size_t end_len;
    uint64_t conf_ver;
    uint64_t version;
    uint64_t leader; /* replica id, 0 = unknown */
    uint64_t leader_node;
    uint64_t term;
    uint64_t commit;
    uint64_t applied;
    int64_t revision;
    struct bs_adm_replica replicas[BS_RAFT_MAX_MEMBERS];
    uint32_t n_replicas;
};

/* The cluster as one node sees it (ClusterStatusResponse). nodes and
 * shards are borrowed when encoding, owned after a decode
 * (bs_adm_status_free). */
struct bs_adm_status {
    uint64_t cluster_id;
    uint64_t node_id; /* the node that answered */
    struct bs_adm_node *nodes;
    size_t n_nodes;
    struct bs_adm_shard *shards;
    size_t n_shards;
};

/* Encodes st (borrowed) as a ClusterStatusResponse into *out (malloc'd,
 * caller frees) of *len bytes. Returns 0, BS_EINVAL (more than
 * BS_ADM_MAX_NODES nodes or BS_ADM_MAX_SHARDS shards, a shard with more
 * than BS_RAFT_MAX_MEMBERS replicas or a boundary longer than
 * BS_ADM_MAX_KEY, a string not NUL-terminated) or BS_ENOMEM. */
int bs_adm_status_encode(const struct bs_adm_status *st, uint8_t **out,
                         size_t *len, char *errmsg);

/* Decodes a ClusterStatusResponse from buf[len] (borrowed) into *st,
 * which then owns its arrays and keys. Returns 0, BS_EPROTO, BS_ETOOBIG
 * or BS_ENOMEM; on error *st is zeroed. */
int bs_adm_status_decode(const uint8_t *buf, size_t len,
                         struct bs_adm_status *st /* out */, char *errmsg);

/* Frees what bs_adm_status_decode allocated and zeroes *st. Accepts NULL
 * and a zeroed struct. Never call it on a struct the caller filled. */
void bs_adm_status_free(struct bs_adm_status *st);

/* ShardInfoRequest: shard_id, or 0 and the key (borrowed, may be NULL
 * when key_len is 0) the shard holds. Returns 0, BS_EINVAL (key longer
 * than BS_ADM_MAX_KEY) or BS_ENOMEM. */
int bs_adm_shard_info_req_encode(uint64_t shard_id, const uint8_t *key,
                                 size_t key_len, uint8_t **out, size_t *len,
                                 char *errmsg);

/* Decodes a ShardInfoRequest; *key is malloc'd (caller frees), or NULL
 * when the key is empty. Returns 0, BS_EPROTO, BS_ETOOBIG or BS_ENOMEM;
 * on error *shard_id is 0, *key NULL and *key_len 0. */
int bs_adm_shard_info_req_decode(const uint8_t *buf, size_t len,
                                 uint64_t *shard_id /* out */,
                                 uint8_t **key /* out */,
                                 size_t *key_len /* out */, char *errmsg);

/* ShardInfoResponse around sh (borrowed). Returns as
 * bs_adm_status_encode. */
int bs_adm_shard_info_resp_encode(const struct bs_adm_shard *sh, uint8_t **out,
                                  size_t *len, char *errmsg);

/* Decodes a ShardInfoResponse into *sh, which then owns its keys
 * (bs_adm_shard_free). A response without a shard is BS_EPROTO. Returns
 * 0, BS_EPROTO, BS_ETOOBIG or BS_ENOMEM; on error *sh is zeroed. */
int bs_adm_shard_info_resp_decode(const uint8_t *buf, size_t len,
                                  struct bs_adm_shard *sh /* out */,
                                  char *errmsg);

/* Frees a decoded shard's keys and zeroes *sh. Accepts NULL. */
void bs_adm_shard_free(struct bs_adm_shard *sh);

/*
 * Ping, both ways. The request carries cluster_id (the sender's, 0 for a
 * client), node_id (the node the sender means to reach, 0 = any),
 * from_node and payload; the response cluster_id, node_id (the
 * answering node), version, uptime_ms and payload (the request's,
 * echoed). Fields a message does not carry are zero after its decode.
 * payload is borrowed when encoding (may be NULL when payload_len is 0),
 * malloc'd (NULL when empty) after a decode: bs_adm_ping_free.
 */
struct bs_adm_ping {
    uint64_t cluster_id;
    uint64_t node_id;
    uint64_t from_node;
    uint64_t uptime_ms;
    char version[32];
    uint8_t *payload;
    size_t payload_len;
};

/* Return 0, BS_EINVAL (a version not NUL-terminated, in the response) or
 * BS_ENOMEM. The payload is limited only by BS_RPC_DEFAULT_MAX_MESSAGE. */
int bs_adm_ping_req_encode(const struct bs_adm_ping *p, uint8_t **out,
                           size_t *len, char *errmsg);
int bs_adm_ping_resp_encode(const struct bs_adm_ping *p, uint8_t **out,
                            size_t *len, char *errmsg);
/* Return 0, BS_EPROTO, BS_ETOOBIG or BS_ENOMEM; on error *p is zeroed. */
int bs_adm_ping_req_decode(const uint8_t *buf, size_t len,
                           struct bs_adm_ping *p /* out */, char *errmsg);
int bs_adm_ping_resp_decode(const uint8_t *buf, size_t len,
                            struct bs_adm_ping *p /* out */, char *errmsg);
/* Frees a decoded payload and zeroes *p. Accepts NULL. */
void bs_adm_ping_free(struct bs_adm_ping *p);

/* ====================================== membership, scheduling, ISR */

struct bs_adm_label {
    char key[BS_ADM_LABEL_KEY_MAX + 1];
    char value[BS_ADM_LABEL_MAX + 1];
};

/* Admin.Join: the request (node_id 0 = allocate, join_token != 0) and
 * the answer (the id, the cluster, every node: nodes borrowed when
 * encoding, owned after a decode: bs_adm_join_free). */
struct bs_adm_join {
    uint64_t node_id;
    uint64_t join_token;
    uint64_t cluster_id; /* response */
    char client_addr[BS_ADM_ADDR_MAX + 1];
    char peer_addr[BS_ADM_ADDR_MAX + 1];
    char http_addr[BS_ADM_ADDR_MAX + 1];
    struct bs_adm_label labels[BS_ADM_MAX_LABELS];
    uint32_t n_labels;
    struct bs_adm_node *nodes; /* response */
    size_t n_nodes;
};
int bs_adm_join_req_encode(const struct bs_adm_join *j, uint8_t **out,
                           size_t *len, char *errmsg);
int bs_adm_join_req_decode(const uint8_t *buf, size_t len,
                           struct bs_adm_join *j /* out */, char *errmsg);
int bs_adm_join_resp_encode(const struct bs_adm_join *j, uint8_t **out,
                            size_t *len, char *errmsg);
int bs_adm_join_resp_decode(const uint8_t *buf, size_t len,
                            struct bs_adm_join *j /* out */, char *errmsg);
void bs_adm_join_free(struct bs_adm_join *j); /* accepts NULL */

/* Admin.RemoveNode: request node_id + cancel; response node_id, state,
 * replicas. */
struct bs_adm_remove {
    uint64_t node_id;
    bool cancel;
    char state[16];
    uint32_t replicas;
};
int bs_adm_remove_req_encode(const struct bs_adm_remove *r, uint8_t **out,
                             size_t *len, char *errmsg);
int bs_adm_remove_req_decode(const uint8_t *buf, size_t len,
                             struct bs_adm_remove *r /* out */, char *errmsg);
int bs_adm_remove_resp_encode(const struct bs_adm_remove *r, uint8_t **out,
                              size_t *len, char *errmsg);
int bs_adm_remove_resp_decode(const uint8_t *buf, size_t len,
                              struct bs_adm_remove *r /* out */, char *errmsg);

/* One operator (Operator). split_key borrowed when encoding, malloc'd
 * (NULL when empty) after a decode. */
struct bs_adm_op {
    uint64_t id;
    char kind[16];
    char reason[24];
    uint64_t shard_id;
    uint64_t from_node;
    uint64_t to_node;
    uint8_t *split_key;
    size_t split_key_len;
    uint64_t age_ms;
};

/* Admin.Rebalance: request dry_run + max_moves; response plan and
 * in_flight (arrays borrowed when encoding, owned after a decode:
 * bs_adm_rebalance_free). */
struct bs_adm_rebalance {
    bool dry_run;
    uint32_t max_moves;
    struct bs_adm_op *plan;
    size_t n_plan;
    struct bs_adm_op *in_flight;
    size_t n_in_flight;
};
int bs_adm_rebalance_req_encode(const struct bs_adm_rebalance *r,
                                uint8_t **out, size_t *len, char *errmsg);
int bs_adm_rebalance_req_decode(const uint8_t *buf, size_t len,
                                struct bs_adm_rebalance *r /* out */,
                                char *errmsg);
int bs_adm_rebalance_resp_encode(const struct bs_adm_rebalance *r,
                                 uint8_t **out, size_t *len, char *errmsg);
int bs_adm_rebalance_resp_decode(const uint8_t *buf, size_t len,
                                 struct bs_adm_rebalance *r /* out */,
                                 char *errmsg);
void bs_adm_rebalance_free(struct bs_adm_rebalance *r); /* accepts NULL */

/* Admin.IsrStatus (IsrShard / IsrReplica). */
struct bs_adm_isr_replica {
    uint64_t replica_id;
    uint64_t node_id;
    bool learner;
    uint64_t match;
    uint64_t lag_entries;
    uint64_t lag_ms;
    bool in_sync;
};
struct bs_adm_isr_shard {
    uint64_t shard_id;
    uint64_t leader_node;
    uint64_t term;
    uint64_t commit;
    uint32_t min_insync;
    struct bs_adm_isr_replica replicas[BS_RAFT_MAX_MEMBERS];
    uint32_t n_replicas;
    uint64_t size_bytes;
    uint64_t keys;
    uint64_t read_qps;
    uint64_t write_qps;
    uint64_t reported_ms_ago;
};
/* Request: shard_id (0 = all). Response: shards borrowed when encoding,
 * owned after a decode (caller frees *shards). */
int bs_adm_isr_req_encode(uint64_t shard_id, uint8_t **out, size_t *len,
                          char *errmsg);
int bs_adm_isr_req_decode(const uint8_t *buf, size_t len,
                          uint64_t *shard_id /* out */, char *errmsg);
int bs_adm_isr_resp_encode(const struct bs_adm_isr_shard *shards, size_t n,
                           uint8_t **out, size_t *len, char *errmsg);
int bs_adm_isr_resp_decode(const uint8_t *buf, size_t len,
                           struct bs_adm_isr_shard **shards /* out */,
                           size_t *n /* out */, char *errmsg);

/* Admin.Split: request shard_id + key (borrowed when encoding, malloc'd
 * after a decode, NULL when empty: caller frees); response op_id and
 * new_shard_id. */
struct bs_adm_split {
    uint64_t shard_id;
    uint8_t *key;
    size_t key_len;
    uint64_t op_id;
    uint64_t new_shard_id;
};
int bs_adm_split_req_encode(const struct bs_adm_split *s, uint8_t **out,
                            size_t *len, char *errmsg);
int bs_adm_split_req_decode(const uint8_t *buf, size_t len,
                            struct bs_adm_split *s /* out */, char *errmsg);
int bs_adm_split_resp_encode(const struct bs_adm_split *s, uint8_t **out,
                             size_t *len, char *errmsg);
int bs_adm_split_resp_decode(const uint8_t *buf, size_t len,
                             struct bs_adm_split *s /* out */, char *errmsg);

/* Admin.Scheduler: request action ("show", "pause", "resume"); response
 * the settings and operators (borrowed when encoding, owned after a
 * decode: bs_adm_sched_free). */
struct bs_adm_sched {
    char action[16];
    bool paused;
    uint32_t max_concurrent_moves;
    uint64_t split_size;
    uint64_t split_qps;
    uint64_t down_after_ms;
    uint64_t max_lag_entries;
    uint64_t max_lag_ms;
    uint64_t snapshot_rate;
    struct bs_adm_op *ops;
    size_t n_ops;
    uint64_t ops_finished;
    uint64_t ops_cancelled;
};
int bs_adm_sched_req_encode(const struct bs_adm_sched *s, uint8_t **out,
                            size_t *len, char *errmsg);
int bs_adm_sched_req_decode(const uint8_t *buf, size_t len,
                            struct bs_adm_sched *s /* out */, char *errmsg);
int bs_adm_sched_resp_encode(const struct bs_adm_sched *s, uint8_t **out,
                             size_t *len, char *errmsg);
int bs_adm_sched_resp_decode(const uint8_t *buf, size_t len,
                             struct bs_adm_sched *s /* out */, char *errmsg);
void bs_adm_sched_free(struct bs_adm_sched *s); /* accepts NULL */


/* ================================================ etcd's operator API */

/* Maintenance.Status's StatusResponse (etcdctl endpoint status). Its
 * repeated "errors" are not represented: skipped by the decoder. */
struct bs_adm_etcd_status {
    struct bs_rpc_header hdr;
    char version[32]; /* "3.4.0"-like: etcdctl prints it */
    int64_t db_size;
    int64_t db_size_in_use;
    uint64_t leader; /* member id of the leader */
    uint64_t raft_index;
    uint64_t raft_term;
    uint64_t raft_applied_index;
    bool is_learner;
};

/* Returns 0, BS_EINVAL (version not NUL-terminated) or BS_ENOMEM. */
int bs_adm_etcd_status_encode(const struct bs_adm_etcd_status *s, uint8_t **out,
                              size_t *len, char *errmsg);
/* Returns 0, BS_EPROTO, BS_ETOOBIG or BS_ENOMEM; on error *s is zeroed. */
int bs_adm_etcd_status_decode(const uint8_t *buf, size_t len,
                              struct bs_adm_etcd_status *s /* out */,
                              char *errmsg);

/* One etcd Member (etcdctl member list). etcd's peerURLs and clientURLs
 * are lists: an empty string here is an empty list, and a decoder keeps
 * the first URL of each list and skips the others. */
struct bs_adm_member {
    uint64_t id;
    char name[64];
    char peer_url[BS_ADM_ADDR_MAX + 16];
    char client_url[BS_ADM_ADDR_MAX + 16];
    bool is_learner;
};

/* Encodes a MemberListResponse with header hdr and members m[n] (both
 * borrowed). Returns 0, BS_EINVAL (more than BS_ADM_MAX_MEMBERS, a
 * string not NUL-terminated) or BS_ENOMEM. */
int bs_adm_member_list_encode(const struct bs_rpc_header *hdr,
                              const struct bs_adm_member *m, size_t n,
                              uint8_t **out, size_t *len, char *errmsg);

/* Decodes a MemberListResponse: *hdr (may be NULL: not returned), *m
 * malloc'd (caller frees; NULL when *n is 0). Returns 0, BS_EPROTO,
 * BS_ETOOBIG or BS_ENOMEM; on error *m is NULL and *n 0. */
int bs_adm_member_list_decode(const uint8_t *buf, size_t len,
                              struct bs_rpc_header *hdr /* out */,
                              struct bs_adm_member **m /* out */,
                              size_t *n /* out */, char *errmsg);

/* KV.Compact: the request's revision and physical flag. Returns 0,
 * BS_EPROTO or BS_ETOOBIG; the semantic checks (revision in range) are
 * the caller's. */
int bs_adm_compact_req_decode(const uint8_t *buf, size_t len,
                              int64_t *revision /* out */,
                              bool *physical /* out */, char *errmsg);
/* The CompactionResponse (its header only). Returns 0 or BS_ENOMEM. */
int bs_adm_compact_resp_encode(const struct bs_rpc_header *hdr, uint8_t **out,
                               size_t *len, char *errmsg);

/* The client's side of the same two (the CLI and tests). */
int bs_adm_compact_req_encode(int64_t revision, bool physical, uint8_t **out,
                              size_t *len, char *errmsg);
int bs_adm_compact_resp_decode(const uint8_t *buf, size_t len,
                               struct bs_rpc_header *hdr /* out */,
                               char *errmsg);

/* Admin.TransferLeader: the request (shard, target node) and the answer
 * (shard, the node that leads now, its term). Return 0, BS_EPROTO,
 * BS_ETOOBIG (decode) or BS_ENOMEM. */
struct bs_adm_transfer {
    uint64_t shard_id;
    uint64_t node_id; /* request: to_node; response: leader_node */
    uint64_t term;    /* response only */
};
int bs_adm_transfer_req_encode(const struct bs_adm_transfer *t, uint8_t **out,
                               size_t *len, char *errmsg);
int bs_adm_transfer_req_decode(const uint8_t *buf, size_t len,
                               struct bs_adm_transfer *t /* out */,
                               char *errmsg);
int bs_adm_transfer_resp_encode(const struct bs_adm_transfer *t,
                                uint8_t **out, size_t *len, char *errmsg);
int bs_adm_transfer_resp_decode(const uint8_t *buf, size_t len,
                                struct bs_adm_transfer *t /* out */,
                                char *errmsg);

/* The methods, for callers that register or call them. */
#define BS_ADM_METHOD_CLUSTER_STATUS "/basalt.Admin/ClusterStatus"
#define BS_ADM_METHOD_SHARD_INFO     "/basalt.Admin/ShardInfo"
#define BS_ADM_METHOD_PING           "/basalt.Admin/Ping"
#define BS_ADM_METHOD_TRANSFER_LEADER "/basalt.Admin/TransferLeader"
#define BS_ADM_METHOD_JOIN           "/basalt.Admin/Join"
#define BS_ADM_METHOD_REMOVE_NODE    "/basalt.Admin/RemoveNode"
#define BS_ADM_METHOD_REBALANCE      "/basalt.Admin/Rebalance"
#define BS_ADM_METHOD_ISR_STATUS     "/basalt.Admin/IsrStatus"
#define BS_ADM_METHOD_SPLIT          "/basalt.Admin/Split"
#define BS_ADM_METHOD_SCHEDULER      "/basalt.Admin/Scheduler"
#define BS_ADM_METHOD_ETCD_STATUS    "/etcdserverpb.Maintenance/Status"
#define BS_ADM_METHOD_MEMBER_LIST    "/etcdserverpb.Cluster/MemberList"
#define BS_ADM_METHOD_COMPACT        "/etcdserverpb.KV/Compact"

#endif
