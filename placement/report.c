/*
 * report.c - what placement has not yet heard about the shards: the next
 * report command that brings placement's table in line with the shards as
 * their leaders see them (DESIGN.md 7: every split and replica change is
 * reflected in placement through committed commands).
 *
 * Pure: a function of placement's state and the shards' own descriptors.
 * A node calls it with the shards it leads and proposes what it returns to
 * shard 0's leader, again and again until it returns 0; duplicates and
 * stale reports are refused by apply (BS_ESTALE), so retries are harmless.
 *
 * Order matters for splits: placement takes the splits of one shard in
 * version order. A shard that split twice before reporting left two
 * children, [k1, end) first and then [k2, k1) with k2 < k1, so among the
 * unknown children of one parent the one with the greatest start key is
 * reported first.
 */
#include <string.h>

#include "placement_int.h"
#include "shard.h"

static void fill_replicas(const struct bs_shard *sh,
                          struct bs_pd_replica *reps, uint32_t *n)
{
    *n = 0;
    for (uint32_t i = 0; i < sh->conf.n_voters; i++)
        reps[(*n)++] = (struct bs_pd_replica){
            sh->conf.voters[i], BS_ENG_REPLICA_NODE(sh->conf.voters[i]),
            BS_PD_ROLE_VOTER};
    for (uint32_t i = 0; i < sh->conf.n_learners; i++)
        reps[(*n)++] = (struct bs_pd_replica){
            sh->conf.learners[i], BS_ENG_REPLICA_NODE(sh->conf.learners[i]),
            BS_PD_ROLE_LEARNER};
}

int bs_pd_next_report(const struct bs_pd_state *pd,
                      const struct bs_shard *const *shards, size_t n,
                      struct bs_pd_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    bool behind = false;
    /* Splits first. */
    const struct bs_shard *best = NULL;
    const struct bs_pd_shard *best_parent = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct bs_shard *sh = shards[i];
        if (sh->desc.id == BS_PD_SHARD_PLACEMENT ||
            bs_pd_shard_find(pd, sh->desc.id))
            continue;
        behind = true;
        const struct bs_pd_shard *parent = NULL;
        if (bs_pd_route(pd, sh->desc.start, sh->desc.start_len, &parent) != 0)
            continue;
        if (best && parent != best_parent)
            continue; /* one parent at a time */
        if (!best || bs_pd__key_cmp(sh->desc.start, sh->desc.start_len,
                            best->desc.start, best->desc.start_len) > 0) {
            best = sh;
            best_parent = parent;
        }
    }
    if (best) {
        cmd->type = BS_PD_CMD_SHARD_SPLIT;
        cmd->u.split.shard_id = best_parent->id;
        cmd->u.split.epoch = best_parent->epoch;
        cmd->u.split.epoch.version++;
        cmd->u.split.split_key = best->desc.start;
        cmd->u.split.split_key_len = best->desc.start_len;
        cmd->u.split.new_shard_id = best->desc.id;
        cmd->u.split.new_epoch = cmd->u.split.epoch;
        fill_replicas(best, cmd->u.split.replicas, &cmd->u.split.n_replicas);
        return 1;
    }
    /* Replica changes: placement's conf_ver behind a settled (non-joint)
     * configuration. */
    for (size_t i = 0; i < n; i++) {
        const struct bs_shard *sh = shards[i];
        const struct bs_pd_shard *ps = bs_pd_shard_find(pd, sh->desc.id);
        if (!ps || ps->epoch.conf_ver >= sh->desc.epoch.conf_ver)
            continue;
        behind = true;
        if (sh->conf.n_voters_outgoing > 0 || sh->conf.n_learners_next > 0)
            continue; /* report once the joint state is left */
        cmd->type = BS_PD_CMD_SHARD_REPLICA_CHANGE;
        cmd->u.replica_change.shard_id = sh->desc.id;
        cmd->u.replica_change.conf_ver = sh->desc.epoch.conf_ver;
        fill_replicas(sh, cmd->u.replica_change.replicas,
                      &cmd->u.replica_change.n_replicas);
        return 1;
    }
    return behind ? BS_EBUSY : 0;
}
