/*
 * helpers.c - see helpers.h.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

void th_node_info(struct bs_pd_node_info *ni, uint64_t id)
{
    memset(ni, 0, sizeof(*ni));
    ni->id = id;
    snprintf(ni->client_addr, sizeof(ni->client_addr), "10.0.0.%llu:2379",
             (unsigned long long)id);
    snprintf(ni->peer_addr, sizeof(ni->peer_addr), "10.0.0.%llu:2380",
             (unsigned long long)id);
    snprintf(ni->http_addr, sizeof(ni->http_addr), "10.0.0.%llu:8080",
             (unsigned long long)id);
    ni->n_labels = 1;
    strcpy(ni->labels[0].key, "rack");
    snprintf(ni->labels[0].value, sizeof(ni->labels[0].value), "r%llu",
             (unsigned long long)(id % 3));
}

int th_apply(struct bs_pd_state *st, uint64_t *index,
             const struct bs_pd_cmd *cmd, struct bs_pd_result *res)
{
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(bs_pd_cmd_encode(cmd, &buf, &len), 0);
    int rc = bs_pd_apply(st, ++*index, buf, len, res);
    free(buf);
    return rc;
}

struct bs_pd_state *th_bootstrap(uint32_t n_nodes, uint32_t shards,
                                 uint32_t replicas, uint64_t *index)
{
    struct bs_pd_state *st = bs_pd_state_create();
    ck_assert_ptr_nonnull(st);
    struct bs_pd_node_info *nodes = calloc(n_nodes, sizeof(*nodes));
    ck_assert_ptr_nonnull(nodes);
    for (uint32_t i = 0; i < n_nodes; i++)
        th_node_info(&nodes[i], i + 1);
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_BOOTSTRAP};
    cmd.u.bootstrap.cluster_id = 42;
    cmd.u.bootstrap.initial_shards = shards;
    cmd.u.bootstrap.replicas = replicas;
    cmd.u.bootstrap.now = 1000;
    cmd.u.bootstrap.n_nodes = n_nodes;
    cmd.u.bootstrap.nodes = nodes;
    struct bs_pd_result res;
    int rc = th_apply(st, index, &cmd, &res);
    ck_assert_msg(rc == 0, "bootstrap: %s (%s)", bs_err_name(rc), res.msg);
    free(nodes);
    th_check(st);
    return st;
}

uint64_t th_alloc(struct bs_pd_state *st, uint64_t *index, uint8_t kind,
                  uint32_t count)
{
    struct bs_pd_cmd cmd = {.type = BS_PD_CMD_ALLOC_IDS};
    cmd.u.alloc.kind = kind;
    cmd.u.alloc.count = count;
    struct bs_pd_result res;
    ck_assert_int_eq(th_apply(st, index, &cmd, &res), 0);
    return res.first_id;
}

void th_split_cmd(struct bs_pd_state *st, uint64_t *index, uint64_t shard,
                  const void *key, size_t klen, struct bs_pd_cmd *cmd)
{
    const struct bs_pd_shard *s = bs_pd_shard_find(st, shard);
    ck_assert_ptr_nonnull(s);
    uint32_t n = s->n_replicas;
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = BS_PD_CMD_SHARD_SPLIT;
    cmd->u.split.new_shard_id = th_alloc(st, index, BS_PD_ID_SHARD, 1);
    uint64_t rid = th_alloc(st, index, BS_PD_ID_REPLICA, n);
    s = bs_pd_shard_find(st, shard); /* borrowed pointers may move */
    cmd->u.split.shard_id = shard;
    cmd->u.split.epoch = s->epoch;
    cmd->u.split.epoch.version++;
    cmd->u.split.split_key = key;
    cmd->u.split.split_key_len = klen;
    cmd->u.split.new_epoch = cmd->u.split.epoch;
    cmd->u.split.n_replicas = n;
    for (uint32_t i = 0; i < n; i++) {
        cmd->u.split.replicas[i] = s->replicas[i];
        cmd->u.split.replicas[i].id =
            BS_ENG_REPLICA_ID(s->replicas[i].node_id, rid + i);
    }
}

int th_split(struct bs_pd_state *st, uint64_t *index, uint64_t shard,
             const void *key, size_t klen, uint64_t *new_id)
{
    struct bs_pd_cmd cmd;
    th_split_cmd(st, index, shard, key, klen, &cmd);
    if (new_id)
        *new_id = cmd.u.split.new_shard_id;
    return th_apply(st, index, &cmd, NULL);
}

const struct bs_pd_shard *th_route_linear(const struct bs_pd_state *st,
                                          const void *key, size_t len)
{
    const struct bs_pd_shard *hit = NULL;
    for (size_t i = 0; i < bs_pd_shard_count(st); i++) {
        const struct bs_pd_shard *s = bs_pd_shard_at(st, i);
        if (bs_pd_shard_contains(s, key, len)) {
            ck_assert_msg(hit == NULL, "key in shards %llu and %llu",
                          (unsigned long long)hit->id,
                          (unsigned long long)s->id);
            hit = s;
        }
    }
    return hit;
}

void th_check(const struct bs_pd_state *st)
{
    const char *why = bs_pd_check(st);
    ck_assert_msg(why == NULL, "invariant broken: %s", why);
}

bool th_equal(const struct bs_pd_state *a, const struct bs_pd_state *b)
{
    uint8_t *x, *y;
    size_t xl, yl;
    ck_assert_int_eq(bs_pd_encode_all(a, &x, &xl), 0);
    ck_assert_int_eq(bs_pd_encode_all(b, &y, &yl), 0);
    bool eq = xl == yl && memcmp(x, y, xl) == 0;
    free(x);
    free(y);
    return eq;
}

uint64_t th_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
