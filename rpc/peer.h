/*
 * peer.h - the peer transport between Basalt nodes (DESIGN.md section 5):
 * struct bs_eng_transport over one gRPC channel per peer node, and the
 * server side that hands what arrives to the node.
 *
 * Sending. The store's send() goes to bs_peer_net, which keeps one
 * struct bs_rpc_channel per peer node (the node also forwards client
 * requests on it: bs_peer_net_channel). On that channel:
 *
 *   /basalt.raft.Raft/Stream    one long-lived stream; each send() call
 *                               becomes one RaftBatch (split in several if
 *                               it would exceed BS_PEER_MAX_BATCH_BYTES)
 *                               with every envelope but the MsgSnaps;
 *   /basalt.raft.Raft/Snapshot  one long-lived stream carrying snapshot
 *                               images one after the other, in
 *                               SnapshotChunks, each acknowledged by the
 *                               receiver (SnapshotAck).
 *
 * A MsgSnap's snapshot.data is the path of an image that bs_eng_snap_export
 * wrote; send() takes the image over (queues it; at most one image per peer
 * is in flight, BS_PEER_MAX_QUEUED_SNAPS wait behind it, more are refused)
 * and bs_peer_net_poll() pushes its chunks while fewer than
 * BS_PEER_SNAP_WINDOW are unacknowledged (and the node's snapshot
 * bandwidth limit allows: bs_peer_net_set_snapshot_rate), so neither side
 * ever holds a whole image in memory. When the transfer ends, delivered or
 * failed (stream down, refused, no progress for snap_timeout_ms), the image
 * directory is removed. A failed or refused image is not reported to the
 * Raft core; it sends a new one after its snapshot timeout.
 *
 * A peer that is down never blocks: send() answers BS_EUNREACHABLE when
 * the Raft stream refuses the batch (down and backing off, or its queue
 * full); the store then reports the replicas unreachable.
 *
 * Receiving. Every message from the network is checked before anything is
 * done with it: it must decode within the codec's limits (rpc/codec.h),
 * carry this cluster's id (see bs_peer_net_set_cluster_id) and, for a
 * batch, this node as to_node; a stream's from_node may not change. Chunks
 * must follow one another (files in order, each with contiguous offsets
 * from 0, file names plain and never repeated within an image, at most
 * BS_PEER_MAX_IMAGE_FILES files and opts.snap_max_bytes bytes), and an
 * image's MsgSnap must be a Raft MsgSnap for a replica of this node whose
 * shard and snapshot index and term are those of the chunks. Anything else
 * ends that call only, with the status of its BS_E* code and a sentence,
 * and is logged (module "peer"). Images are assembled in
 * opts.snap_dir/in-n<from>-s<shard>-i<index>-<seq>; an unfinished image
 * is removed when its call ends, and replaced when the same peer starts
 * another. A complete image is delivered as a one-envelope inbound whose
 * MsgSnap's snapshot.data is that directory's path; the receiving store
 * verifies, ingests and removes it.
 *
 * Threads: bs_peer_net_transport's send and now_ms, bs_peer_net_poll and
 * bs_peer_net_busy are called by one thread, the store's loop thread.
 * Every other function may be called from any thread unless it says
 * otherwise. deliver runs on the server's CQ threads.
 */
#ifndef BS_RPC_PEER_H
#define BS_RPC_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "codec.h"
#include "engine.h"
#include "errors.h"
#include "server.h"

/* Methods that bs_peer_net_register adds. */
#define BS_PEER_METHOD_STREAM   "/basalt.raft.Raft/Stream"
#define BS_PEER_METHOD_SNAPSHOT "/basalt.raft.Raft/Snapshot"

/* Largest encoded RaftBatch sent: a send() whose batch is larger is split
 * (a single envelope larger than this still goes alone, up to the
 * receiver's 64 MiB limit). */
#define BS_PEER_MAX_BATCH_BYTES (16u << 20)
/* Snapshot chunks sent and not yet acknowledged, per peer. */
#define BS_PEER_SNAP_WINDOW 4
/* Images waiting per peer behind the one in flight; more are refused. */
#define BS_PEER_MAX_QUEUED_SNAPS 8
/* Files in one received image. */
#define BS_PEER_MAX_IMAGE_FILES 65536
/* Defaults of struct bs_peer_net_opts. */
#define BS_PEER_DEFAULT_CHUNK_BYTES  (1u << 20)
#define BS_PEER_DEFAULT_SNAP_TIMEOUT 30000
#define BS_PEER_DEFAULT_SNAP_MAX     (256ull << 30)

struct bs_peer_net;

/*
 * What arrived from one peer, handed to the node (which takes ownership):
 * envs[n], with every pointer inside valid until bs_peer_inbound_free. A
 * snapshot inbound has n == 1 and its MsgSnap's snapshot.data holds the
 * local image path (not NUL-terminated: snapshot.len bytes).
 */
struct bs_peer_inbound {
    uint64_t from_node;
    struct bs_eng_envelope *envs;
    size_t n;
    /* private */
    uint8_t *buf_;                   /* the received bytes, or the path */
    struct bs_rpc_raft_batch batch_; /* what decode allocated */
    struct bs_eng_envelope snap_;    /* envs of a snapshot inbound */
};

/* Frees in and all it holds. Accepts NULL. */
void bs_peer_inbound_free(struct bs_peer_inbound *in /* takes ownership */);

struct bs_peer_net_opts {
    uint64_t node_id;     /* this node (not 0) */
    uint64_t cluster_id;  /* 0 = not known yet: accept any; see
                             bs_peer_net_set_cluster_id */
    const char *snap_dir; /* borrowed (copied): where received images are
                             assembled; created if missing */
    struct bs_rpc_client *client; /* borrowed: its CQ threads run the
                                     channels; outlives the net */
    /* Called on a server CQ thread with each inbound batch, and with each
     * completed snapshot image (see struct bs_peer_inbound). Ownership of
     * in passes to the callee. Must not block. */
    void (*deliver)(void *ctx, struct bs_peer_inbound *in);
    void *ctx;
    size_t snap_chunk_bytes;  /* file bytes per chunk (0 = 1 MiB; at most
                                 32 MiB) */
    uint64_t snap_timeout_ms; /* a transfer without progress for this long
                                 fails (0 = 30000) */
    uint64_t snap_max_bytes;  /* largest image received (0 = 256 GiB) */
    struct bs_rpc_channel_opts channel; /* for the peer channels (zeroes:
                                           the defaults) */
};

/* Zeroes o and fills the defaults. */
void bs_peer_net_opts_init(struct bs_peer_net_opts *o /* out */);

/*
 * Creates a net with no peers. Returns 0 and *out; or BS_EINVAL (node_id
 * 0, no client, no deliver, no snap_dir or one longer than 512 bytes, a
 * chunk size over 32 MiB), BS_EIO (snap_dir cannot be created) or
 * BS_ENOMEM, with a sentence in errmsg (BS_RPC_ERRMSG_SIZE bytes, may be
 * NULL).
 */
int bs_peer_net_create(const struct bs_peer_net_opts *o /* borrowed */,
                       struct bs_peer_net **out, char *errmsg);

/* Adds BS_PEER_METHOD_STREAM and BS_PEER_METHOD_SNAPSHOT to srv
 * (borrowed; not started yet). Returns 0 or the error of
 * bs_rpc_server_add_stream. */
int bs_peer_net_register(struct bs_peer_net *net, struct bs_rpc_server *srv);

/* Sets the cluster id, once known: from then on, messages are refused
 * when they carry another non-zero cluster id (a sender that does not
 * know its own yet sends 0 and is accepted), and outgoing ones carry it. */
void bs_peer_net_set_cluster_id(struct bs_peer_net *net, uint64_t cluster_id);

/*
 * Adds peer node_id (not 0, not this node) at addr ("HOST:PORT",
 * borrowed), or changes its address: a new channel replaces the old one,
 * which stays valid (unused) until bs_peer_net_destroy, and an image in
 * flight to it fails. The same address again changes nothing. Returns 0,
 * BS_EINVAL or BS_ENOMEM.
 */
int bs_peer_net_set_addr(struct bs_peer_net *net, uint64_t node_id,
                         const char *addr);

/* Fills *t with this net's transport (send and now_ms, the latter
 * CLOCK_MONOTONIC milliseconds). send returns 0 or BS_EUNREACHABLE (the
 * peer is unknown, or its stream refused the batch); it never blocks. */
void bs_peer_net_transport(struct bs_peer_net *net,
                           struct bs_eng_transport *t /* out */);

/* The channel to node_id, NULL if it is unknown. Valid until
 * bs_peer_net_destroy (even after set_addr replaced it). */
struct bs_rpc_channel *bs_peer_net_channel(struct bs_peer_net *net,
                                           uint64_t node_id);

/* Loop thread: starts queued images, pushes chunks, finishes transfers
 * that are acknowledged, failed or stalled. Call it at least every tick,
 * and every few milliseconds while bs_peer_net_busy. */
void bs_peer_net_poll(struct bs_peer_net *net);

/* Loop thread: true while an image is in flight or queued. */
bool bs_peer_net_busy(struct bs_peer_net *net);

/*
 * Limits the bytes of snapshot chunks this node sends (encoded, as they go
 * on the wire; all peers together) to bytes_per_sec; 0 = unlimited (the
 * default). A token bucket holding about 100 ms of the rate (at least one
 * chunk): bs_peer_net_poll holds a chunk back until the bucket has its
 * bytes, never blocking, and the peers' transfers take turns. Waiting for
 * the bucket does not count as a stall (opts.snap_timeout_ms counts only
 * while chunks sent are unacknowledged). Takes effect at the next poll,
 * starting with a full bucket. Any thread.
 */
void bs_peer_net_set_snapshot_rate(struct bs_peer_net *net,
                                   uint64_t bytes_per_sec);

/*
 * Snapshot transfers at this moment: *sending = images in flight to peers
 * (at most one per peer; the queued ones are not counted), *receiving =
 * images being assembled from peers, *bytes_sent = file bytes of chunks
 * sent since create (stats' snap_bytes_sent). Any out pointer may be
 * NULL. Any thread.
 */
void bs_peer_net_snapshot_stats(const struct bs_peer_net *net,
                                uint32_t *sending, uint32_t *receiving,
                                uint64_t *bytes_sent);

struct bs_peer_net_stats {
    uint64_t batches_sent;     /* RaftBatches accepted by a stream */
    uint64_t batches_refused;  /* refused by a stream (send() failed) */
    uint64_t batches_dropped;  /* accepted, then lost with their stream */
    uint64_t msgs_dropped;     /* envelopes of refused batches, to unknown
                                  peers, and refused images */
    uint64_t batches_received; /* delivered */
    uint64_t batches_rejected; /* refused, ending their call */
    uint64_t snaps_sent;       /* images acknowledged complete */
    uint64_t snaps_failed;     /* images refused or failed on either side */
    uint64_t snaps_received;   /* images delivered */
    uint64_t snap_bytes_sent;  /* file bytes in chunks accepted by a stream */
    uint64_t snap_bytes_received; /* file bytes written */
};

void bs_peer_net_stats(struct bs_peer_net *net,
                       struct bs_peer_net_stats *st /* out */);

/*
 * Frees the net: destroys every channel (waiting for their callbacks),
 * removes the images still queued or in flight, and frees the peers.
 * Precondition: the server it was registered on is shut down
 * (bs_rpc_server_shutdown): destroy waits for the end of every call it
 * serves. Not on a CQ thread. Accepts NULL.
 */
void bs_peer_net_destroy(struct bs_peer_net *net);

#endif
