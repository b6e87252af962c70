/*
 * tracker.c - what a leader knows of each member: replication progress,
 * the inflight window (flow control), and the quorum arithmetic of majority
 * and joint configurations (thesis 4.3: in C_old,new every decision needs a
 * majority of C_old and a majority of C_new). Learners are tracked for
 * replication but never counted in any quorum (thesis 4.2.1).
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

/* ------------------------------------------------------------ inflights */

bool bs_raft__inflights_full(const struct bs_raft_inflights *in)
{
    return in->count >= in->cap;
}

void bs_raft__inflights_add(struct bs_raft_inflights *in, uint64_t idx)
{
    if (in->count >= in->cap)
        return; /* caller checked full(); never overwrite */
    in->idx[(in->start + in->count) % in->cap] = idx;
    in->count++;
}

void bs_raft__inflights_free_le(struct bs_raft_inflights *in, uint64_t idx)
{
    while (in->count > 0 && in->idx[in->start] <= idx) {
        in->start = (in->start + 1) % in->cap;
        in->count--;
    }
    if (in->count == 0)
        in->start = 0;
}

void bs_raft__inflights_free_first(struct bs_raft_inflights *in)
{
    if (in->count > 0)
        bs_raft__inflights_free_le(in, in->idx[in->start]);
}

/* ------------------------------------------------------------- progress */

bool bs_raft__pr_is_paused(const struct bs_raft_progress *pr)
{
    switch (pr->state) {
    case BS_RAFT_PR_PROBE:
        return pr->probe_sent;
    case BS_RAFT_PR_REPLICATE:
        return bs_raft__inflights_full(&pr->inflights);
    default:
        return true;
    }
}

static void pr_reset_state(struct bs_raft_progress *pr, uint8_t state)
{
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    pr->state = state;
    pr->inflights.start = pr->inflights.count = 0;
}

void bs_raft__pr_become_probe(struct bs_raft_progress *pr)
{
    /* Coming back from a snapshot, the follower has at least the snapshot
     * index. */
    if (pr->state == BS_RAFT_PR_SNAPSHOT) {
        uint64_t ps = pr->pending_snapshot;
        pr_reset_state(pr, BS_RAFT_PR_PROBE);
        pr->next = (pr->match + 1 > ps + 1) ? pr->match + 1 : ps + 1;
    } else {
        pr_reset_state(pr, BS_RAFT_PR_PROBE);
        pr->next = pr->match + 1;
    }
}

void bs_raft__pr_become_replicate(struct bs_raft_progress *pr)
{
    pr_reset_state(pr, BS_RAFT_PR_REPLICATE);
    pr->next = pr->match + 1;
}

void bs_raft__pr_become_snapshot(struct bs_raft_progress *pr, uint64_t i)
{
    pr_reset_state(pr, BS_RAFT_PR_SNAPSHOT);
    pr->pending_snapshot = i;
}

bool bs_raft__pr_maybe_update(struct bs_raft_progress *pr, uint64_t n)
{
    bool updated = false;
    if (pr->match < n) {
        pr->match = n;
        updated = true;
        pr->probe_sent = false;
    }
    if (pr->next < n + 1)
        pr->next = n + 1;
    return updated;
}

void bs_raft__pr_optimistic_update(struct bs_raft_progress *pr, uint64_t n)
{
    pr->next = n + 1;
}

/*
 * A rejection of the APP at index 'rejected'. In REPLICATE a rejection of
 * anything at or below match is stale. In PROBE only the rejection of the
 * probe we sent (next - 1) counts; match_hint is where the follower's log
 * may match (from the conflict hint), so next jumps there directly.
 */
bool bs_raft__pr_maybe_decr_to(struct bs_raft_progress *pr,
                               uint64_t rejected, uint64_t match_hint)
{
    if (pr->state == BS_RAFT_PR_REPLICATE) {
        if (rejected <= pr->match)
            return false;
        pr->next = pr->match + 1;
        return true;
    }
    if (pr->next == 0 || pr->next - 1 != rejected)
        return false;
    uint64_t n = rejected < match_hint + 1 ? rejected : match_hint + 1;
    if (n < pr->match + 1)
        n = pr->match + 1;
    if (n < 1)
        n = 1;
    pr->next = n;
    pr->probe_sent = false;
    return true;
}

void bs_raft__pr_reset(struct bs_raft_progress *pr, uint64_t next)
{
    pr->match = 0;
    pr->next = next;
    pr->recent_active = false;
    pr->beat_acked = 0;
    pr->beat_acked_tick = 0;
    pr_reset_state(pr, BS_RAFT_PR_PROBE);
}

/* -------------------------------------------------------------- tracker */

struct bs_raft_progress *bs_raft__tracker_get(struct bs_raft_tracker *t,
                                              uint64_t id)
{
    for (uint32_t i = 0; i < t->n_prs; i++)
        if (t->prs[i].id == id)
            return &t->prs[i];
    return NULL;
}

bool bs_raft__tracker_is_joint(const struct bs_raft_tracker *t)
{
    return t->conf.n_voters_outgoing > 0;
}

bool bs_raft__tracker_is_voter(const struct bs_raft_tracker *t, uint64_t id)
{
    return bs_raft__ids_has(t->conf.voters, t->conf.n_voters, id) ||
           bs_raft__ids_has(t->conf.voters_outgoing,
                            t->conf.n_voters_outgoing, id);
}


static int add_member(struct bs_raft_tracker *t, uint64_t id,
                      uint64_t next_index)
{
    if (bs_raft__tracker_get(t, id))
        return 0;
    if (t->n_prs >= BS_RAFT_MAX_MEMBERS)
        return BS_EINVAL;
    struct bs_raft_progress *pr = &t->prs[t->n_prs];
    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->inflights.cap = t->max_inflight;
    pr->inflights.idx = malloc(t->max_inflight * sizeof(uint64_t));
    if (!pr->inflights.idx)
        return BS_ENOMEM;
    bs_raft__pr_reset(pr, next_index);
    /* A new member counts as active so that check-quorum does not depose
     * the leader before it hears back, and so that it can get a
     * snapshot. */
    pr->recent_active = true;
    t->n_prs++;
    return 0;
}

int bs_raft__tracker_set_conf(struct bs_raft_tracker *t,
                              const struct bs_raft_conf_state *cs,
                              uint64_t next_index)
{
    /* Drop progress of ids no longer in the configuration. */
    uint32_t w = 0;
    for (uint32_t i = 0; i < t->n_prs; i++) {
        if (bs_raft_conf_has(cs, t->prs[i].id))
            t->prs[w++] = t->prs[i];
        else
            free(t->prs[i].inflights.idx);
    }
    t->n_prs = w;
    uint64_t ids[BS_RAFT_CONF_MAX_LIST];
    size_t n = bs_raft_conf_members(cs, ids, NULL);
    for (size_t i = 0; i < n; i++) {
        int rc = add_member(t, ids[i], next_index);
        if (rc != 0)
            return rc;
    }
    t->conf = *cs;
    for (uint32_t i = 0; i < t->n_prs; i++) {
        uint64_t id = t->prs[i].id;
        t->prs[i].is_learner =
            bs_raft__ids_has(cs->learners, cs->n_learners, id) ||
            bs_raft__ids_has(cs->learners_next, cs->n_learners_next, id);
    }
    return 0;
}

void bs_raft__tracker_free(struct bs_raft_tracker *t)
{
    for (uint32_t i = 0; i < t->n_prs; i++)
        free(t->prs[i].inflights.idx);
    t->n_prs = 0;
}

/* ---------------------------------------------------------- quorum math */

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

/*
 * The largest value v such that a majority of ids have a value >= v.
 * An empty configuration returns UINT64_MAX so that in a joint config with
 * an empty side the other side decides alone.
 */
static uint64_t majority_value(const struct bs_raft_tracker *t,
                               const uint64_t *ids, uint32_t n, int which)
{
    if (n == 0)
        return UINT64_MAX;
    uint64_t vals[BS_RAFT_MAX_MEMBERS];
    for (uint32_t i = 0; i < n; i++) {
        const struct bs_raft_progress *pr =
            bs_raft__tracker_get((struct bs_raft_tracker *)t, ids[i]);
        uint64_t v = 0;
        if (pr)
            v = which == 0 ? pr->match
                           : (which == 1 ? pr->beat_acked
                                         : pr->beat_acked_tick);
        vals[i] = v;
    }
    qsort(vals, n, sizeof(vals[0]), cmp_desc);
    return vals[n / 2 + 1 - 1];
}

static uint64_t joint_value(const struct bs_raft_tracker *t, int which)
{
    uint64_t a = majority_value(t, t->conf.voters, t->conf.n_voters, which);
    uint64_t b = majority_value(t, t->conf.voters_outgoing,
                                t->conf.n_voters_outgoing, which);
    uint64_t v = a < b ? a : b;
    return v == UINT64_MAX ? 0 : v;
}

uint64_t bs_raft__tracker_committed(const struct bs_raft_tracker *t)
{
    return joint_value(t, 0);
}

uint64_t bs_raft__tracker_quorum_beat(const struct bs_raft_tracker *t)
{
    return joint_value(t, 1);
}

uint64_t bs_raft__tracker_quorum_beat_tick(const struct bs_raft_tracker *t)
{
    return joint_value(t, 2);
}

/* Vote result of one majority config given the recorded votes. */
static int majority_vote(const struct bs_raft_tracker *t, const uint64_t *ids,
                         uint32_t n, uint32_t extra_yes)
{
    if (n == 0)
        return BS_RAFT_VOTE_WON;
    uint32_t yes = extra_yes, missing = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool found = false;
        for (uint32_t j = 0; j < t->n_votes; j++) {
            if (t->vote_ids[j] == ids[i]) {
                found = true;
                if (t->vote_granted[j])
                    yes++;
                break;
            }
        }
        if (!found)
            missing++;
    }
    uint32_t q = n / 2 + 1;
    if (yes >= q)
        return BS_RAFT_VOTE_WON;
    if (yes + missing >= q)
        return BS_RAFT_VOTE_PENDING;
    return BS_RAFT_VOTE_LOST;
}

int bs_raft__tracker_tally(const struct bs_raft_tracker *t)
{
    uint32_t extra = 0;
    if (t->faults & BS_RAFT_FAULT_COUNT_LEARNER_VOTE) {
        /* Deliberately wrong: learners' votes count (simulator self-test).
         */
        for (uint32_t j = 0; j < t->n_votes; j++)
            if (t->vote_granted[j] &&
                !bs_raft__tracker_is_voter(t, t->vote_ids[j]))
                extra++;
    }
    int a = majority_vote(t, t->conf.voters, t->conf.n_voters, extra);
    int b = majority_vote(t, t->conf.voters_outgoing,
                          t->conf.n_voters_outgoing, 0);
    if (a == BS_RAFT_VOTE_WON && b == BS_RAFT_VOTE_WON)
        return BS_RAFT_VOTE_WON;
    if (a == BS_RAFT_VOTE_LOST || b == BS_RAFT_VOTE_LOST)
        return BS_RAFT_VOTE_LOST;
    return BS_RAFT_VOTE_PENDING;
}

void bs_raft__tracker_reset_votes(struct bs_raft_tracker *t)
{
    t->n_votes = 0;
}

void bs_raft__tracker_record_vote(struct bs_raft_tracker *t, uint64_t id,
                                  bool granted)
{
    for (uint32_t j = 0; j < t->n_votes; j++)
        if (t->vote_ids[j] == id)
            return; /* first answer counts */
    if (t->n_votes >= BS_RAFT_MAX_MEMBERS)
        return;
    t->vote_ids[t->n_votes] = id;
    t->vote_granted[t->n_votes] = granted;
    t->n_votes++;
}

/* Check-quorum (thesis 6.2): has a quorum of voters been heard from since
 * the last check? The leader counts itself. */
static bool majority_active(const struct bs_raft_tracker *t,
                            const uint64_t *ids, uint32_t n, uint64_t self)
{
    if (n == 0)
        return true;
    uint32_t act = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct bs_raft_progress *pr =
            bs_raft__tracker_get((struct bs_raft_tracker *)t, ids[i]);
        if (ids[i] == self || (pr && pr->recent_active))
            act++;
    }
    return act >= n / 2 + 1;
}

bool bs_raft__tracker_quorum_active(const struct bs_raft_tracker *t,
                                    uint64_t self)
{
    return majority_active(t, t->conf.voters, t->conf.n_voters, self) &&
           majority_active(t, t->conf.voters_outgoing,
                           t->conf.n_voters_outgoing, self);
}

const char *bs_raft__tracker_check(const struct bs_raft_tracker *t)
{
    const struct bs_raft_conf_state *c = &t->conf;
    for (uint32_t i = 0; i < c->n_learners; i++) {
        if (bs_raft__ids_has(c->voters, c->n_voters, c->learners[i]) ||
            bs_raft__ids_has(c->voters_outgoing, c->n_voters_outgoing,
                             c->learners[i]))
            return "T2: a learner is also a voter";
    }
    for (uint32_t i = 0; i < c->n_learners_next; i++) {
        if (bs_raft__ids_has(c->voters, c->n_voters, c->learners_next[i]))
            return "T2: a next learner is an incoming voter";
        if (!bs_raft__ids_has(c->voters_outgoing, c->n_voters_outgoing,
                              c->learners_next[i]))
            return "T2: a next learner is not an outgoing voter";
    }
    if (c->n_voters_outgoing == 0 &&
        (c->n_learners_next > 0 || c->auto_leave))
        return "T3: joint-only state outside a joint configuration";
    for (uint32_t i = 0; i < t->n_prs; i++) {
        if (!bs_raft_conf_has(c, t->prs[i].id))
            return "T1: progress for a non-member";
        for (uint32_t j = i + 1; j < t->n_prs; j++)
            if (t->prs[i].id == t->prs[j].id)
                return "T1: duplicate progress";
    }
    return NULL;
}
