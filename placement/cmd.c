/*
 * cmd.c - the binary encoding of placement commands, the payload of the
 * placement group's Raft entries.
 *
 * Format version 1 (integers little-endian, fixed width; str = u16 length
 * and bytes without NUL; blob = u32 length and bytes; node = node info as
 * in codec.c; replicas = u8 count and {id u64, node u64, role u8} each):
 *
 *   u8 version (1) | u8 type | body
 *
 *   BOOTSTRAP            cluster_id u64, initial_shards u32, replicas u32,
 *                        now u64, n_nodes u32, node * n_nodes
 *   REGISTER_NODE        node, now u64
 *   UPDATE_NODE_STATE    node_id u64, state u8, now u64
 *   NODE_HEARTBEAT       node_id u64, now u64
 *   SHARD_SPLIT          shard_id u64, conf_ver u64, version u64,
 *                        split_key blob, new_shard_id u64,
 *                        new conf_ver u64, new version u64, replicas
 *   SHARD_REPLICA_CHANGE shard_id u64, conf_ver u64, replicas
 *   SHARD_LEADER         shard_id u64, leader u64, term u64
 *   ALLOC_IDS            kind u8, count u32
 *
 * The decoder treats its input as untrusted: every length is bounded by
 * the bytes left and by the limits of placement.h, trailing bytes are an
 * error, and nothing is allocated before the node count has been checked
 * against the bytes that could hold that many nodes. A new field or
 * command means a new version; old versions stay decodable because the
 * log keeps them.
 */
#include <stdlib.h>
#include <string.h>

#include "placement_int.h"

#define CMD_VERSION 1

/* Smallest encoding of one node info: id and four length fields. */
#define NODE_INFO_MIN (8 + 2 + 2 + 2 + 1)

const char *bs_pd_cmd_type_name(int type)
{
    switch (type) {
    case BS_PD_CMD_BOOTSTRAP:
        return "bootstrap";
    case BS_PD_CMD_REGISTER_NODE:
        return "register_node";
    case BS_PD_CMD_UPDATE_NODE_STATE:
        return "update_node_state";
    case BS_PD_CMD_NODE_HEARTBEAT:
        return "node_heartbeat";
    case BS_PD_CMD_SHARD_SPLIT:
        return "shard_split";
    case BS_PD_CMD_SHARD_REPLICA_CHANGE:
        return "shard_replica_change";
    case BS_PD_CMD_SHARD_LEADER:
        return "shard_leader";
    case BS_PD_CMD_ALLOC_IDS:
        return "alloc_ids";
    default:
        return "unknown";
    }
}

int bs_pd_cmd_encode(const struct bs_pd_cmd *cmd, uint8_t **out, size_t *len)
{
    struct bs_pd_buf b = {0};
    bs_pd__buf_u8(&b, CMD_VERSION);
    bs_pd__buf_u8(&b, cmd->type);
    switch (cmd->type) {
    case BS_PD_CMD_BOOTSTRAP: {
        const typeof(cmd->u.bootstrap) *c = &cmd->u.bootstrap;
        if (c->n_nodes == 0 || !c->nodes)
            goto einval;
        bs_pd__buf_u64(&b, c->cluster_id);
        bs_pd__buf_u32(&b, c->initial_shards);
        bs_pd__buf_u32(&b, c->replicas);
        bs_pd__buf_u64(&b, c->now);
        bs_pd__buf_u32(&b, c->n_nodes);
        for (uint32_t i = 0; i < c->n_nodes; i++) {
            if (!bs_pd__node_info_encodable(&c->nodes[i]))
                goto einval;
            bs_pd__put_node_info(&b, &c->nodes[i]);
        }
        break;
    }
    case BS_PD_CMD_REGISTER_NODE:
        if (!bs_pd__node_info_encodable(&cmd->u.register_node.node))
            goto einval;
        bs_pd__put_node_info(&b, &cmd->u.register_node.node);
        bs_pd__buf_u64(&b, cmd->u.register_node.now);
        break;
    case BS_PD_CMD_UPDATE_NODE_STATE:
        bs_pd__buf_u64(&b, cmd->u.node_state.node_id);
        bs_pd__buf_u8(&b, cmd->u.node_state.state);
        bs_pd__buf_u64(&b, cmd->u.node_state.now);
        break;
    case BS_PD_CMD_NODE_HEARTBEAT:
        bs_pd__buf_u64(&b, cmd->u.heartbeat.node_id);
        bs_pd__buf_u64(&b, cmd->u.heartbeat.now);
        break;
    case BS_PD_CMD_SHARD_SPLIT: {
        const typeof(cmd->u.split) *c = &cmd->u.split;
        if (c->split_key_len > BS_PD_MAX_KEY_LEN ||
            (c->split_key_len && !c->split_key) ||
            c->n_replicas > BS_RAFT_MAX_MEMBERS)
            goto einval;
        bs_pd__buf_u64(&b, c->shard_id);
        bs_pd__buf_u64(&b, c->epoch.conf_ver);
        bs_pd__buf_u64(&b, c->epoch.version);
        bs_pd__buf_blob(&b, c->split_key, c->split_key_len);
        bs_pd__buf_u64(&b, c->new_shard_id);
        bs_pd__buf_u64(&b, c->new_epoch.conf_ver);
        bs_pd__buf_u64(&b, c->new_epoch.version);
        bs_pd__put_replicas(&b, c->replicas, c->n_replicas);
        break;
    }
    case BS_PD_CMD_SHARD_REPLICA_CHANGE: {
        const typeof(cmd->u.replica_change) *c = &cmd->u.replica_change;
        if (c->n_replicas > BS_RAFT_MAX_MEMBERS)
            goto einval;
        bs_pd__buf_u64(&b, c->shard_id);
        bs_pd__buf_u64(&b, c->conf_ver);
        bs_pd__put_replicas(&b, c->replicas, c->n_replicas);
        break;
    }
    case BS_PD_CMD_SHARD_LEADER:
        bs_pd__buf_u64(&b, cmd->u.leader.shard_id);
        bs_pd__buf_u64(&b, cmd->u.leader.leader);
        bs_pd__buf_u64(&b, cmd->u.leader.term);
        break;
    case BS_PD_CMD_ALLOC_IDS:
        bs_pd__buf_u8(&b, cmd->u.alloc.kind);
        bs_pd__buf_u32(&b, cmd->u.alloc.count);
        break;
    default:
        goto einval;
    }
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.len;
    return 0;
einval:
    free(b.p);
    return BS_EINVAL;
}

int bs_pd_cmd_decode(const uint8_t *data, size_t len, struct bs_pd_cmd *cmd)
{
    struct bs_pd_rd r = {.p = data, .len = len};
    memset(cmd, 0, sizeof(*cmd));
    if (!data && len)
        return BS_ECORRUPT;
    if (bs_pd__rd_u8(&r) != CMD_VERSION)
        return BS_ECORRUPT;
    cmd->type = bs_pd__rd_u8(&r);
    switch (cmd->type) {
    case BS_PD_CMD_BOOTSTRAP: {
        typeof(cmd->u.bootstrap) *c = &cmd->u.bootstrap;
        c->cluster_id = bs_pd__rd_u64(&r);
        c->initial_shards = bs_pd__rd_u32(&r);
        c->replicas = bs_pd__rd_u32(&r);
        c->now = bs_pd__rd_u64(&r);
        uint32_t n = bs_pd__rd_u32(&r);
        /* Bound the allocation by what the bytes can hold. */
        if (r.bad || n == 0 || n > (r.len - r.off) / NODE_INFO_MIN)
            return BS_ECORRUPT;
        struct bs_pd_node_info *nodes = calloc(n, sizeof(*nodes));
        if (!nodes)
            return BS_ENOMEM;
        for (uint32_t i = 0; i < n && !r.bad; i++)
            bs_pd__get_node_info(&r, &nodes[i]);
        c->n_nodes = n;
        c->nodes = nodes;
        cmd->owned_ = nodes;
        break;
    }
    case BS_PD_CMD_REGISTER_NODE:
        bs_pd__get_node_info(&r, &cmd->u.register_node.node);
        cmd->u.register_node.now = bs_pd__rd_u64(&r);
        break;
    case BS_PD_CMD_UPDATE_NODE_STATE:
        cmd->u.node_state.node_id = bs_pd__rd_u64(&r);
        cmd->u.node_state.state = bs_pd__rd_u8(&r);
        cmd->u.node_state.now = bs_pd__rd_u64(&r);
        break;
    case BS_PD_CMD_NODE_HEARTBEAT:
        cmd->u.heartbeat.node_id = bs_pd__rd_u64(&r);
        cmd->u.heartbeat.now = bs_pd__rd_u64(&r);
        break;
    case BS_PD_CMD_SHARD_SPLIT: {
        typeof(cmd->u.split) *c = &cmd->u.split;
        c->shard_id = bs_pd__rd_u64(&r);
        c->epoch.conf_ver = bs_pd__rd_u64(&r);
        c->epoch.version = bs_pd__rd_u64(&r);
        c->split_key = bs_pd__rd_blob(&r, BS_PD_MAX_KEY_LEN, &c->split_key_len);
        c->new_shard_id = bs_pd__rd_u64(&r);
        c->new_epoch.conf_ver = bs_pd__rd_u64(&r);
        c->new_epoch.version = bs_pd__rd_u64(&r);
        bs_pd__get_replicas(&r, c->replicas, &c->n_replicas);
        break;
    }
    case BS_PD_CMD_SHARD_REPLICA_CHANGE: {
        typeof(cmd->u.replica_change) *c = &cmd->u.replica_change;
        c->shard_id = bs_pd__rd_u64(&r);
        c->conf_ver = bs_pd__rd_u64(&r);
        bs_pd__get_replicas(&r, c->replicas, &c->n_replicas);
        break;
    }
    case BS_PD_CMD_SHARD_LEADER:
        cmd->u.leader.shard_id = bs_pd__rd_u64(&r);
        cmd->u.leader.leader = bs_pd__rd_u64(&r);
        cmd->u.leader.term = bs_pd__rd_u64(&r);
        break;
    case BS_PD_CMD_ALLOC_IDS:
        cmd->u.alloc.kind = bs_pd__rd_u8(&r);
        cmd->u.alloc.count = bs_pd__rd_u32(&r);
        break;
    default:
        return BS_ECORRUPT;
    }
    if (r.bad || r.off != r.len) {
        bs_pd_cmd_free(cmd);
        return BS_ECORRUPT;
    }
    return 0;
}

void bs_pd_cmd_free(struct bs_pd_cmd *cmd)
{
    if (!cmd)
        return;
    if (!cmd->owned_)
        return; /* built by a caller: nothing of ours */
    free(cmd->owned_);
    cmd->owned_ = NULL;
    if (cmd->type == BS_PD_CMD_BOOTSTRAP) {
        cmd->u.bootstrap.nodes = NULL;
        cmd->u.bootstrap.n_nodes = 0;
    }
}
