/*
 * cmd.c - the binary encoding of placement commands, the payload of the
 * placement group's Raft entries.
 *
 * Integers little-endian, fixed width; str = u16 length and bytes without
 * NUL; blob = u32 length and bytes; node = node info as in codec.c;
 * replicas = u8 count and {id u64, node u64, role u8} each:
 *
 *   u8 version | u8 type | body
 *
 *   version 1:
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
 *   version 2: version 1, plus
 *   REGISTER_NODE        node, now u64, join_token u64 (!= 0)
 *   OP_CREATE            kind u8, reason u8, shard_id u64, from_node u64,
 *                        to_node u64, split_key blob, created_at u64
 *   OP_CANCEL            op_id u64
 *   SET_SCHED            paused u8 (0 or 1)
 *
 * The decoder treats its input as untrusted: every length is bounded by
 * the bytes left and by the limits of placement.h, trailing bytes are an
 * error, and nothing is allocated before the node count has been checked
 * against the bytes that could hold that many nodes. A new field or
 * command means a new version; old versions stay decodable because the
 * log keeps them.
 *
 * Each command is written in the lowest version that can carry it
 * (cmd_version): version 1 unless it is one of the new commands or a
 * REGISTER_NODE with a join token. So a node still running the previous
 * release (which knows only version 1) decodes every entry it could
 * represent during a rolling upgrade, and a command has exactly one
 * encoding: the decoder refuses a version-2 encoding of a command that
 * version 1 carries, as it refuses any other non-canonical bytes.
 * Operator ids, new replica and shard ids are not encoded: apply assigns
 * them from the allocators, identically on every replica.
 */
#include <stdlib.h>
#include <string.h>

#include "placement_int.h"

#define CMD_VERSION_MIN 1
#define CMD_VERSION_MAX 2

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
    case BS_PD_CMD_OP_CREATE:
        return "op_create";
    case BS_PD_CMD_OP_CANCEL:
        return "op_cancel";
    case BS_PD_CMD_SET_SCHED:
        return "set_sched";
    default:
        return "unknown";
    }
}

/* The lowest format version that carries cmd (see the top of the file). */
static uint8_t cmd_version(const struct bs_pd_cmd *cmd)
{
    switch (cmd->type) {
    case BS_PD_CMD_REGISTER_NODE:
        return cmd->u.register_node.join_token ? 2 : 1;
    case BS_PD_CMD_OP_CREATE:
    case BS_PD_CMD_OP_CANCEL:
    case BS_PD_CMD_SET_SCHED:
        return 2;
    default:
        return 1;
    }
}

int bs_pd_cmd_encode(const struct bs_pd_cmd *cmd, uint8_t **out, size_t *len)
{
    struct bs_pd_buf b = {0};
    bs_pd__buf_u8(&b, cmd_version(cmd));
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
        if (cmd->u.register_node.join_token)
            bs_pd__buf_u64(&b, cmd->u.register_node.join_token);
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
    case BS_PD_CMD_OP_CREATE: {
        const struct bs_pd_op *c = &cmd->u.op;
        if (c->split_key_len > BS_PD_MAX_KEY_LEN ||
            (c->split_key_len && !c->split_key))
            goto einval;
        bs_pd__buf_u8(&b, c->kind);
        bs_pd__buf_u8(&b, c->reason);
        bs_pd__buf_u64(&b, c->shard_id);
        bs_pd__buf_u64(&b, c->from_node);
        bs_pd__buf_u64(&b, c->to_node);
        bs_pd__buf_blob(&b, c->split_key, c->split_key_len);
        bs_pd__buf_u64(&b, c->created_at);
        break;
    }
    case BS_PD_CMD_OP_CANCEL:
        bs_pd__buf_u64(&b, cmd->u.op_cancel.op_id);
        break;
    case BS_PD_CMD_SET_SCHED:
        bs_pd__buf_u8(&b, cmd->u.sched.paused ? 1 : 0);
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
    uint8_t version = bs_pd__rd_u8(&r);
    if (version < CMD_VERSION_MIN || version > CMD_VERSION_MAX)
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
        if (version >= 2)
            cmd->u.register_node.join_token = bs_pd__rd_u64(&r);
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
    case BS_PD_CMD_OP_CREATE: {
        struct bs_pd_op *c = &cmd->u.op;
        c->kind = bs_pd__rd_u8(&r);
        c->reason = bs_pd__rd_u8(&r);
        c->shard_id = bs_pd__rd_u64(&r);
        c->from_node = bs_pd__rd_u64(&r);
        c->to_node = bs_pd__rd_u64(&r);
        /* Borrowed from data, like a split report's key. The field is not
         * const because a state's operators own their keys. */
        const uint8_t *key =
            bs_pd__rd_blob(&r, BS_PD_MAX_KEY_LEN, &c->split_key_len);
        c->split_key = c->split_key_len ? (uint8_t *)key : NULL;
        c->created_at = bs_pd__rd_u64(&r);
        break;
    }
    case BS_PD_CMD_OP_CANCEL:
        cmd->u.op_cancel.op_id = bs_pd__rd_u64(&r);
        break;
    case BS_PD_CMD_SET_SCHED: {
        uint8_t paused = bs_pd__rd_u8(&r);
        if (paused > 1)
            r.bad = true;
        cmd->u.sched.paused = paused;
        break;
    }
    default:
        return BS_ECORRUPT;
    }
    if (r.bad || r.off != r.len || version != cmd_version(cmd)) {
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
