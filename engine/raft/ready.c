/*
 * ready.c - the ready / advance cycle: how the core hands its effects to
 * the caller and learns that they were carried out.
 *
 * Ordering rules (why they are safe):
 *   - entries and hard state are persisted before messages that depend on
 *     them are sent: a vote response or an APP response promises durable
 *     state (thesis 3.8);
 *   - a leader's own log counts towards commitment only once advance says
 *     it is durable (thesis 10.2.1), so it may send APPs before its fsync;
 *   - committed entries are applied in order after the entries of the same
 *     ready are persisted (a follower may learn of an entry and of its
 *     commitment in one message);
 *   - messages and read states of a ready are moved aside, so that
 *     bs_raft_apply_conf_change, called while applying, queues its
 *     messages for the next ready without touching this one.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

static struct bs_raft_soft_state soft_state(const struct bs_raft *r)
{
    struct bs_raft_soft_state ss = {.lead = r->lead, .role = r->role};
    return ss;
}

static struct bs_raft_hard_state hard_state(const struct bs_raft *r)
{
    struct bs_raft_hard_state hs = {
        .term = r->term, .vote = r->vote, .commit = r->log.committed};
    return hs;
}

static bool hs_equal(const struct bs_raft_hard_state *a,
                     const struct bs_raft_hard_state *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

/* First committed index not yet handed to the application. */
static uint64_t next_apply_index(const struct bs_raft *r)
{
    uint64_t lo = r->log.applied + 1;
    uint64_t first = bs_raft__log_first_index(&r->log);
    return lo > first ? lo : first;
}

bool bs_raft_has_ready(const struct bs_raft *r)
{
    if (r->in_ready)
        return false;
    struct bs_raft_soft_state ss = soft_state(r);
    struct bs_raft_hard_state hs = hard_state(r);
    if (ss.lead != r->prev_ss.lead || ss.role != r->prev_ss.role)
        return true;
    if (!hs_equal(&hs, &r->prev_hs))
        return true;
    if (r->log.has_snapshot || r->log.unstable.n > 0 || r->msgs.n > 0 ||
        r->n_read_states > 0 || r->bcast_pending)
        return true;
    return r->log.committed >= next_apply_index(r);
}

void bs_raft_ready(struct bs_raft *r, struct bs_raft_ready *rd)
{
    memset(rd, 0, sizeof(*rd));
    if (r->in_ready)
        return;
    /* Coalesced appends: one APP per follower for everything proposed or
     * committed since the last ready. */
    if (r->bcast_pending && r->role == BS_RAFT_LEADER)
        bs_raft__bcast_append(r);
    r->bcast_pending = false;
    r->in_ready = true;

    rd->soft_state = soft_state(r);
    rd->has_soft_state = rd->soft_state.lead != r->prev_ss.lead ||
                         rd->soft_state.role != r->prev_ss.role;
    rd->hard_state = hard_state(r);
    rd->has_hard_state = !hs_equal(&rd->hard_state, &r->prev_hs);

    if (r->log.has_snapshot) {
        rd->has_snapshot = true;
        rd->snapshot = r->log.snapshot;
    }
    rd->entries = r->log.unstable.v;
    rd->n_entries = r->log.unstable.n;
    r->rd_last_index = 0;
    if (rd->n_entries > 0) {
        r->rd_last_index = rd->entries[rd->n_entries - 1].index;
        r->rd_last_term = rd->entries[rd->n_entries - 1].term;
    }

    /* Committed entries: borrowed from the tail when they are all there,
     * else copied from storage (and the tail). */
    uint64_t lo = next_apply_index(r), hi = r->log.committed + 1;
    if (lo < hi) {
        uint64_t max = r->cfg.max_committed_size_per_ready;
        if (max == 0)
            max = UINT64_MAX;
        if (lo >= r->log.unstable_offset && !r->log.has_snapshot) {
            const struct bs_raft_entry *base =
                &r->log.unstable.v[lo - r->log.unstable_offset];
            size_t n = 0;
            uint64_t size = 0;
            while (lo + n < hi) {
                size += bs_raft_entry_size(&base[n]);
                if (n > 0 && size > max)
                    break;
                n++;
            }
            rd->committed = base;
            rd->n_committed = n;
        } else {
            int rc = bs_raft__log_slice(&r->log, lo, hi, max,
                                        &r->rd_committed);
            if (rc != 0 && rc != BS_ECOMPACTED && rc != BS_EUNAVAIL)
                r->fatal = rc;
            rd->committed = r->rd_committed.v;
            rd->n_committed = r->rd_committed.n;
        }
    }

    /* Move messages and read states aside (see the file comment). */
    r->rd_msgs = r->msgs;
    memset(&r->msgs, 0, sizeof(r->msgs));
    rd->msgs = r->rd_msgs.v;
    rd->n_msgs = r->rd_msgs.n;
    free(r->rd_read_states);
    r->rd_read_states = r->read_states;
    r->rd_n_read_states = r->n_read_states;
    r->read_states = NULL;
    r->n_read_states = r->cap_read_states = 0;
    rd->read_states = r->rd_read_states;
    rd->n_read_states = r->rd_n_read_states;

    rd->must_sync = rd->n_entries > 0 || rd->has_snapshot ||
                    rd->hard_state.term != r->prev_hs.term ||
                    rd->hard_state.vote != r->prev_hs.vote;
}

static void maybe_auto_leave(struct bs_raft *r)
{
    if (r->role != BS_RAFT_LEADER || !bs_raft__tracker_is_joint(&r->trk) ||
        !r->trk.conf.auto_leave || r->log.applied < r->pending_conf_index)
        return;
    /* Thesis 4.3: once C_old,new is in place, the leader moves on to
     * C_new by itself. */
    struct bs_raft_conf_change leave = {0};
    uint8_t buf[BS_RAFT_CC_MAX_ENCODED];
    int n = bs_raft_cc_encode(&leave, buf);
    if (n > 0)
        (void)bs_raft__propose_entry(r, BS_RAFT_ENTRY_CONF_CHANGE, buf,
                                     (uint32_t)n);
}

void bs_raft_advance(struct bs_raft *r, const struct bs_raft_ready *rd)
{
    if (!r->in_ready)
        return;
    r->in_ready = false;
    if (rd->has_soft_state)
        r->prev_ss = rd->soft_state;
    if (rd->has_hard_state)
        r->prev_hs = rd->hard_state;

    for (size_t i = 0; i < r->rd_msgs.n; i++)
        bs_raft_msg_free(&r->rd_msgs.v[i]);
    free(r->rd_msgs.v);
    memset(&r->rd_msgs, 0, sizeof(r->rd_msgs));
    free(r->rd_read_states);
    r->rd_read_states = NULL;
    r->rd_n_read_states = 0;

    if (rd->has_snapshot) {
        uint64_t si = rd->snapshot.meta.index;
        bs_raft__log_stable_snap_to(&r->log, si);
        bs_raft__log_applied_to(&r->log, si);
    }

    /* Committed entries were applied. */
    if (rd->n_committed > 0) {
        uint64_t size = 0;
        for (size_t i = 0; i < rd->n_committed; i++)
            size += rd->committed[i].len;
        r->uncommitted_size =
            r->uncommitted_size > size ? r->uncommitted_size - size : 0;
        bs_raft__log_applied_to(&r->log,
                                rd->committed[rd->n_committed - 1].index);
    }
    bs_raft_entry_vec_truncate(&r->rd_committed, 0);

    /* Entries are durable: a leader now counts itself (thesis 10.2.1). */
    if (r->rd_last_index > 0) {
        bs_raft__log_stable_to(&r->log, r->rd_last_index, r->rd_last_term);
        r->rd_last_index = 0;
    }
    if (r->role == BS_RAFT_LEADER) {
        struct bs_raft_progress *self = bs_raft__tracker_get(&r->trk, r->id);
        if (self &&
            bs_raft__pr_maybe_update(self, bs_raft__log_stable_last(&r->log)))
            if (bs_raft__maybe_commit(r))
                r->bcast_pending = true;
    }
    maybe_auto_leave(r);
}
