/*
 * codec.h - protobuf encodings of the messages on Basalt's hot paths,
 * to and from the structs of engine/ and shard/.
 *
 * The messages are declared in rpc/proto/ and compiled by nanopb at
 * build time; every unbounded field there is a callback, and this module
 * supplies the callbacks, so decoding fills the project's own structs
 * directly and applies its own limits (struct bs_rpc_limits) instead of
 * sizes compiled into the generated code. What it covers:
 *
 *   RaftBatch      <-> struct bs_eng_envelope[]   (peer transport)
 *   SnapshotChunk  <-> struct bs_rpc_snap_chunk   (snapshot streams)
 *   SnapshotAck    <-> struct bs_rpc_snap_ack     (their answers)
 *   etcd PutRequest, DeleteRangeRequest, RangeRequest, TxnRequest
 *                  <-> struct bs_shard_cmd        (the KV service)
 *   etcd PutResponse, DeleteRangeResponse, RangeResponse, TxnResponse
 *                  <-> struct bs_shard_resp
 *
 * Decoding never trusts its input: a buffer that is not a valid encoding
 * of the message, or that holds a value outside the domain of the C
 * struct (an unknown enum value, a local Raft message type, a nested Txn
 * ...) is refused with BS_EPROTO (BS_ENOTIMPL for a valid request that
 * Basalt does not serve) and a sentence in errmsg that names the field;
 * anything beyond a limit is refused with BS_ETOOBIG. A decoder never
 * reads outside its buffer, never allocates more than its limits allow,
 * and on error leaves nothing allocated. Fields the message has and the
 * struct lacks are skipped, as protobuf requires (clients of newer etcd
 * versions send some).
 *
 * Encoding follows proto3's canonical form (default values omitted), as
 * etcd's Go code does, so the bytes match what etcd would send.
 *
 * Threads: every function here is reentrant; none keeps state.
 */
#ifndef BS_RPC_CODEC_H
#define BS_RPC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "errors.h"
#include "raft.h"
#include "shard.h"

/* Size of the errmsg buffers that functions of this header fill. Every
 * errmsg parameter may be NULL. */
#define BS_RPC_ERRMSG_LEN 256

/* ============================================================ limits */

/*
 * What a decoder accepts; beyond any of them it answers BS_ETOOBIG. The
 * counts bound memory as well as work: a decoded envelope takes about
 * 600 bytes of struct for 2 bytes of wire, so max_envelopes and
 * max_entries, not max_message, are what bound a batch's memory.
 */
struct bs_rpc_limits {
    size_t max_message;   /* bytes of one encoded message (64 MiB); the
                             gRPC receive limit should be the same */
    size_t max_envelopes; /* envelopes in one RaftBatch (65536) */
    size_t max_entries;   /* entries in one RaftBatch or chunk, all
                             envelopes together (1 Mi) */
    size_t max_entry;     /* bytes of one entry's data (64 MiB; at most
                             UINT32_MAX, the width of bs_raft_entry.len) */
    size_t max_key;       /* bytes of a key or range_end (shard's 4096) */
    size_t max_value;     /* bytes of a value (shard's 1 MiB) */
    size_t max_txn_ops;   /* compares, and ops of either Txn branch
                             (shard's 128, etcd's --max-txn-ops) */
    size_t max_kvs;       /* key-values in one response, all ops (4 Mi) */
};

#define BS_RPC_DEFAULT_MAX_MESSAGE   (64u * 1024 * 1024)
#define BS_RPC_DEFAULT_MAX_ENVELOPES 65536
#define BS_RPC_DEFAULT_MAX_ENTRIES   (1024 * 1024)
#define BS_RPC_DEFAULT_MAX_ENTRY     (64u * 1024 * 1024)
#define BS_RPC_DEFAULT_MAX_KVS       (4 * 1024 * 1024)

/* Fills l with the defaults above (key, value and txn limits those of
 * shard.h, so that the codec refuses nothing a shard would accept). */
void bs_rpc_limits_default(struct bs_rpc_limits *l /* out */);

/* ======================================================= raft batches */

/* Who a RaftBatch is from and for. */
struct bs_rpc_batch_hdr {
    uint64_t cluster_id;
    uint64_t from_node;
    uint64_t to_node;
};

/*
 * A decoded RaftBatch. envs and each envelope's msg.entries are arrays
 * this module allocated (bs_rpc_raft_batch_free); entry data and snapshot
 * data point into the decoded buffer, which must outlive the batch and is
 * never written through them. This is exactly what
 * bs_eng_store_receive wants (it copies what it keeps), so a batch goes
 * from the wire to the store without copying a byte of entry data. Do
 * not pass these messages to bs_raft_msg_free.
 */
struct bs_rpc_raft_batch {
    struct bs_rpc_batch_hdr hdr;
    struct bs_eng_envelope *envs;
    size_t n_envs;
};

/*
 * Encodes hdr and envs[n] (borrowed) as a RaftBatch into *out (malloc'd,
 * caller frees) of *len bytes. Every field of every envelope is carried:
 * entries, and the snapshot meta and data when either is non-empty.
 * Returns 0, BS_EINVAL (a value outside its domain: unknown envelope
 * kind, message or entry type, a local message type (HUP .. CHECK_QUORUM)
 * in a RAFT envelope, a configuration set longer than
 * BS_RAFT_MAX_MEMBERS) or BS_ENOMEM.
 */
int bs_rpc_raft_batch_encode(const struct bs_rpc_batch_hdr *hdr,
                             const struct bs_eng_envelope *envs, size_t n,
                             uint8_t **out, size_t *len, char *errmsg);

/*
 * Decodes buf[len] (borrowed, see above) into *b, with the limits lim
 * (NULL = defaults). Refuses what the encoder refuses (BS_EPROTO), and
 * BS_ETOOBIG beyond max_message, max_envelopes, max_entries or
 * max_entry. Returns 0, BS_EPROTO, BS_ETOOBIG or BS_ENOMEM; on error *b
 * is empty.
 */
int bs_rpc_raft_batch_decode(const uint8_t *buf, size_t len,
                             const struct bs_rpc_limits *lim,
                             struct bs_rpc_raft_batch *b /* out */,
                             char *errmsg);

/* Frees what decode allocated and zeroes *b. Accepts NULL. */
void bs_rpc_raft_batch_free(struct bs_rpc_raft_batch *b);

/* ==================================================== snapshot chunks */

/*
 * One SnapshotChunk of a snapshot stream. The sender sends the files of
 * an exported image (bs_eng_snap_export) one after the other in chunks;
 * the first chunk carries the MsgSnap to deliver once the image is
 * complete (has_msg), the last one has last set. file is a plain file
 * name (no '/', not "." or "..", at most 255 bytes, no NUL); it may be
 * empty only in a chunk without data. Byte strings are borrowed: the
 * caller's when encoding, the decoded buffer's after decode (as for
 * batches; msg.entries, if any, is allocated: bs_rpc_snap_chunk_free).
 */
struct bs_rpc_snap_chunk {
    uint64_t cluster_id;
    uint64_t from_node;
    uint64_t shard_id;
    struct bs_raft_snapshot_meta meta;
    bool has_msg;
    struct bs_eng_envelope msg;
    const char *file; /* not NUL-terminated */
    size_t file_len;
    uint64_t offset;
    const uint8_t *data;
    size_t len;
    bool last;
};

/* Returns 0, BS_EINVAL (as batches, or a bad file name) or BS_ENOMEM. */
int bs_rpc_snap_chunk_encode(const struct bs_rpc_snap_chunk *c /* borrowed */,
                             uint8_t **out, size_t *len, char *errmsg);
/* Returns 0, BS_EPROTO, BS_ETOOBIG or BS_ENOMEM; on error *c is empty. */
int bs_rpc_snap_chunk_decode(const uint8_t *buf, size_t len,
                             const struct bs_rpc_limits *lim,
                             struct bs_rpc_snap_chunk *c /* out */,
                             char *errmsg);
/* Frees what decode allocated and zeroes *c. Accepts NULL. */
void bs_rpc_snap_chunk_free(struct bs_rpc_snap_chunk *c);

/* ======================================================= etcd KV API */

/*
 * The etcd method that carries a command or response type:
 * "/etcdserverpb.KV/Put", ".../DeleteRange", ".../Range", ".../Txn"; NULL
 * for any other type.
 */
const char *bs_rpc_kv_method(uint8_t type /* enum bs_shard_cmd_type */);

/*
 * Encodes cmd as the etcd request of its type (PUT: PutRequest,
 * DELETE_RANGE: DeleteRangeRequest, RANGE: RangeRequest, TXN:
 * TxnRequest) into *out (malloc'd) of *len bytes. cmd->epoch is not part
 * of etcd's API and is not encoded. Returns 0, BS_EINVAL (another type, a
 * sort or compare enum out of its domain, a Txn op of another type) or
 * BS_ENOMEM.
 */
int bs_rpc_kv_req_encode(const struct bs_shard_cmd *cmd /* borrowed */,
                         uint8_t **out, size_t *len, char *errmsg);

/*
 * Decodes buf[len], an etcd request of the given type (what the gRPC
 * method says), into *cmd: type set, epoch zero (the router fills it),
 * byte strings pointing into buf (which must outlive cmd), Txn arrays
 * allocated (bs_rpc_kv_req_free). lim NULL = defaults.
 *
 * Returns 0; BS_EPROTO (not a valid encoding; a sort, compare target or
 * compare result outside etcd's enums; a Compare whose target_union
 * member does not match its target; a RequestOp without a request);
 * BS_ETOOBIG (the message, a key, range_end or value, or the compares or
 * ops of a branch beyond lim); BS_ENOTIMPL (a Txn nested in a Txn);
 * BS_EINVAL (type is not one of the four); or BS_ENOMEM. On error *cmd is
 * empty. Semantic checks (empty key, negative limit, duplicate keys in a
 * Txn) are the shard's (bs_shard_validate).
 */
int bs_rpc_kv_req_decode(uint8_t type, const uint8_t *buf, size_t len,
                         const struct bs_rpc_limits *lim,
                         struct bs_shard_cmd *cmd /* out */, char *errmsg);

/* Frees what bs_rpc_kv_req_decode allocated and zeroes the Txn arrays.
 * Accepts NULL and commands of any type. */
void bs_rpc_kv_req_free(struct bs_shard_cmd *cmd);

/* etcd's ResponseHeader. */
struct bs_rpc_header {
    uint64_t cluster_id;
    uint64_t member_id;
    int64_t revision;
    uint64_t raft_term;
};

/*
 * Encodes resp (borrowed) as the etcd response of resp->type (PUT:
 * PutResponse with prev_kv if resp->op holds one key-value, DELETE_RANGE:
 * DeleteRangeResponse, RANGE: RangeResponse, TXN: TxnResponse with one
 * ResponseOp per resp->ops). The header is hdr's, except its revision,
 * which is resp->revision; the ops of a Txn carry the same header.
 * Returns 0, BS_EINVAL (resp->err is set: a refused command is answered
 * with a gRPC status, not a response; or a type without an etcd response)
 * or BS_ENOMEM.
 */
int bs_rpc_kv_resp_encode(const struct bs_rpc_header *hdr /* borrowed */,
                          const struct bs_shard_resp *resp, uint8_t **out,
                          size_t *len, char *errmsg);

/*
 * Decodes buf[len], the etcd response to a request of the given type,
 * into *resp (bs_shard_resp_init'd here; it owns copies of every byte
 * string: bs_shard_resp_free) and, if hdr is not NULL, its header
 * (resp->revision = the header's revision). lim NULL = defaults.
 * Returns 0, BS_EPROTO, BS_ETOOBIG (a key or value, the number of
 * key-values, or of a Txn's responses (max_txn_ops) beyond lim), BS_ENOTIMPL (a
 * nested Txn response), BS_EINVAL (type) or BS_ENOMEM; on error *resp is empty.
 */
int bs_rpc_kv_resp_decode(uint8_t type, const uint8_t *buf, size_t len,
                          const struct bs_rpc_limits *lim,
                          struct bs_rpc_header *hdr /* out, may be NULL */,
                          struct bs_shard_resp *resp /* out */, char *errmsg);

/* ====================================================== snapshot acks */

/*
 * The receiver's answer to one SnapshotChunk (rpc/peer.c): which image
 * (shard_id, index, term), how many of its chunks and file bytes are
 * written, and whether the image is complete and delivered (done). error
 * (not NUL-terminated, at most 1024 bytes) is borrowed: the caller's when
 * encoding, the decoded buffer's after decode; nothing is allocated.
 */
struct bs_rpc_snap_ack {
    bool accepted;
    const char *error;
    size_t error_len;
    uint64_t shard_id;
    uint64_t index;
    uint64_t term;
    uint64_t chunks;
    uint64_t bytes;
    bool done;
};

/* Returns 0, BS_EINVAL (error longer than 1024 bytes) or BS_ENOMEM. */
int bs_rpc_snap_ack_encode(const struct bs_rpc_snap_ack *a /* borrowed */,
                           uint8_t **out, size_t *len, char *errmsg);
/* Returns 0, BS_EPROTO, BS_ETOOBIG (beyond lim->max_message, or an error
 * longer than 1024 bytes) or BS_ENOMEM; on error *a is zeroed. */
int bs_rpc_snap_ack_decode(const uint8_t *buf, size_t len,
                           const struct bs_rpc_limits *lim,
                           struct bs_rpc_snap_ack *a /* out */, char *errmsg);

#endif
