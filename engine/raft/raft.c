/*
 * raft.c - roles, elections, replication, reads and leadership transfer.
 *
 * Role state machine (thesis figure 3.3 plus pre-vote, 9.6):
 *
 *                  timeout, pre_vote           pre-vote won
 *   +----------+ ------------------> +---------------+ ----------+
 *   | FOLLOWER |                     | PRE_CANDIDATE |           |
 *   +----------+ <------------------ +---------------+           v
 *     ^  ^  |   lost / heard leader / higher term          +-----------+
 *     |  |  +------------------------------------------->  | CANDIDATE |
 *     |  |     timeout (no pre_vote) or TimeoutNow          +-----------+
 *     |  |                                                      |  |
 *     |  +------------------------------------------------------+  |
 *     |     lost / heard leader of the term / higher term           |
 *     |                                                  won votes  |
 *     |   higher term / check-quorum failed /          +--------+   |
 *     +-- removed from the configuration ------------- | LEADER | <-+
 *                                                      +--------+
 *
 *   edge                          function
 *   -> PRE_CANDIDATE              become_pre_candidate (campaign)
 *   -> CANDIDATE                  become_candidate (campaign)
 *   -> LEADER                     become_leader (poll result WON)
 *   -> FOLLOWER                   become_follower
 *
 * Each role has its own step function (step_leader, step_candidate,
 * step_follower) and tick function (tick_heartbeat, tick_election), as in
 * etcd's raft. Message handling common to all roles (term comparison,
 * votes) is in bs_raft_step.
 */
#include <stdio.h> /* snprintf only: no I/O */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

enum campaign_type { CAMPAIGN_PRE, CAMPAIGN_ELECTION, CAMPAIGN_TRANSFER };

static void become_follower(struct bs_raft *r, uint64_t term, uint64_t lead);
static void send_append_all(struct bs_raft *r);
static bool send_append(struct bs_raft *r, uint64_t to, bool send_if_empty);

/* ---------------------------------------------------------------- PRNG */

/* splitmix64: small, fast, good enough for election jitter. */
static uint64_t rng_next(struct bs_raft *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void reset_randomized_timeout(struct bs_raft *r)
{
    int et = r->cfg.election_tick;
    r->randomized_election_timeout = et + (int)(rng_next(r) % (uint64_t)et);
}

/* ------------------------------------------------------------ messages */

static int msgs_push(struct bs_raft_msg_vec *mv, const struct bs_raft_msg *m)
{
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 16;
        struct bs_raft_msg *v = realloc(mv->v, cap * sizeof(*v));
        if (!v)
            return BS_ENOMEM;
        mv->v = v;
        mv->cap = cap;
    }
    mv->v[mv->n++] = *m;
    return 0;
}

/* Queues m for the next ready; takes ownership of its entries/snapshot. */
void bs_raft__send(struct bs_raft *r, struct bs_raft_msg *m)
{
    m->from = r->id;
    if (m->type == BS_RAFT_MSG_VOTE || m->type == BS_RAFT_MSG_VOTE_RESP ||
        m->type == BS_RAFT_MSG_PREVOTE ||
        m->type == BS_RAFT_MSG_PREVOTE_RESP) {
        /* Term set by the caller: the candidate's (future) term. */
    } else if (m->type != BS_RAFT_MSG_PROP &&
               m->type != BS_RAFT_MSG_READ_INDEX &&
               m->type != BS_RAFT_MSG_TRANSFER_LEADER) {
        m->term = r->term;
    } else {
        m->term = 0; /* forwarded local messages carry no term */
    }
    if (msgs_push(&r->msgs, m) != 0) {
        /* Out of memory: drop the message; Raft tolerates lost messages. */
        bs_raft_msg_free(m);
    }
}

static void add_read_state(struct bs_raft *r, uint64_t index, uint64_t ctx)
{
    if (r->n_read_states == r->cap_read_states) {
        size_t cap = r->cap_read_states ? r->cap_read_states * 2 : 8;
        struct bs_raft_read_state *v =
            realloc(r->read_states, cap * sizeof(*v));
        if (!v)
            return; /* the read is dropped; the client retries */
        r->read_states = v;
        r->cap_read_states = cap;
    }
    r->read_states[r->n_read_states].index = index;
    r->read_states[r->n_read_states].ctx = ctx;
    r->n_read_states++;
}

static int rq_push(struct bs_raft_read_queue *q,
                   const struct bs_raft_pending_read *pr)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        struct bs_raft_pending_read *v = realloc(q->v, cap * sizeof(*v));
        if (!v)
            return BS_ENOMEM;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = *pr;
    return 0;
}

/* Answers a read request with read index 'index'. */
static void respond_read(struct bs_raft *r, uint64_t from, uint64_t ctx,
                         uint64_t index)
{
    if (from == BS_RAFT_NONE || from == r->id) {
        add_read_state(r, index, ctx);
        return;
    }
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_READ_INDEX_RESP,
                            .to = from,
                            .index = index,
                            .ctx = ctx};
    bs_raft__send(r, &m);
}

/* --------------------------------------------------------------- helpers */

static bool promotable(const struct bs_raft *r)
{
    return bs_raft__tracker_is_voter(&r->trk, r->id) &&
           !r->log.has_snapshot;
}

static bool past_election_timeout(const struct bs_raft *r)
{
    return r->election_elapsed >= r->randomized_election_timeout;
}

static bool committed_in_term(const struct bs_raft *r)
{
    uint64_t t = 0;
    if (bs_raft__log_term(&r->log, r->log.committed, &t) != 0)
        return false;
    return t == r->term;
}

static bool single_voter(const struct bs_raft *r)
{
    return !bs_raft__tracker_is_joint(&r->trk) && r->trk.conf.n_voters == 1 &&
           r->trk.conf.voters[0] == r->id;
}

static void abort_transfer(struct bs_raft *r)
{
    r->lead_transferee = BS_RAFT_NONE;
}

static void reset(struct bs_raft *r, uint64_t term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = BS_RAFT_NONE;
    }
    r->lead = BS_RAFT_NONE;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    reset_randomized_timeout(r);
    abort_transfer(r);
    r->lease_void = false;
    bs_raft__tracker_reset_votes(&r->trk);
    uint64_t next = bs_raft__log_last_index(&r->log) + 1;
    for (uint32_t i = 0; i < r->trk.n_prs; i++) {
        struct bs_raft_progress *pr = &r->trk.prs[i];
        bs_raft__pr_reset(pr, next);
        if (pr->id == r->id)
            pr->match = bs_raft__log_stable_last(&r->log);
    }
    r->pending_conf_index = 0;
    r->uncommitted_size = 0;
    r->bcast_pending = false;
    r->reads.n = 0;
    r->reads_term.n = 0;
    r->beat_seq = 0;
}

static void become_follower(struct bs_raft *r, uint64_t term, uint64_t lead)
{
    reset(r, term);
    r->lead = lead;
    r->role = BS_RAFT_FOLLOWER;
}

static void become_candidate(struct bs_raft *r)
{
    reset(r, r->term + 1);
    r->vote = r->id;
    r->role = BS_RAFT_CANDIDATE;
}

static void become_pre_candidate(struct bs_raft *r)
{
    /* Pre-vote changes neither term nor vote (thesis 9.6). */
    bs_raft__tracker_reset_votes(&r->trk);
    r->lead = BS_RAFT_NONE;
    r->role = BS_RAFT_PRE_CANDIDATE;
}

/* Appends entries proposed by the leader: assigns term and index. The
 * leader's own progress advances only when they are persisted (advance).
 * Returns 0, BS_ETOOBIG (uncommitted limit) or BS_ENOMEM. */
static int append_entries(struct bs_raft *r, struct bs_raft_entry *ents,
                          size_t n)
{
    uint64_t li = bs_raft__log_last_index(&r->log);
    uint64_t size = 0;
    for (size_t i = 0; i < n; i++) {
        ents[i].term = r->term;
        ents[i].index = li + 1 + i;
        size += ents[i].len;
    }
    if (r->cfg.max_uncommitted_entries_size > 0 && size > 0 &&
        r->uncommitted_size > 0 &&
        r->uncommitted_size + size > r->cfg.max_uncommitted_entries_size)
        return BS_ETOOBIG;
    int rc = bs_raft__log_append(&r->log, ents, n);
    if (rc != 0)
        return rc;
    r->uncommitted_size += size;
    return 0;
}

static void become_leader(struct bs_raft *r)
{
    reset(r, r->term);
    r->lead = r->id;
    r->role = BS_RAFT_LEADER;
    struct bs_raft_progress *self = bs_raft__tracker_get(&r->trk, r->id);
    if (self) {
        bs_raft__pr_become_replicate(self);
        self->recent_active = true;
    }
    /* Conf changes in the uncommitted tail may be pending; be safe. */
    r->pending_conf_index = bs_raft__log_last_index(&r->log);
    /* The empty entry of the new term (thesis 6.4: commits earlier entries
     * and lets reads proceed). */
    struct bs_raft_entry e = {0};
    (void)append_entries(r, &e, 1);
    r->uncommitted_size = 0;
}

/* ------------------------------------------------------------- campaign */

static void campaign(struct bs_raft *r, enum campaign_type t);

static void poll_result(struct bs_raft *r, int res)
{
    if (res == BS_RAFT_VOTE_WON) {
        if (r->role == BS_RAFT_PRE_CANDIDATE) {
            campaign(r, CAMPAIGN_ELECTION);
        } else {
            become_leader(r);
            send_append_all(r);
        }
    } else if (res == BS_RAFT_VOTE_LOST) {
        /* Back to follower at the current term (a pre-candidate never
         * raised it). */
        become_follower(r, r->term, BS_RAFT_NONE);
    }
}

static void campaign(struct bs_raft *r, enum campaign_type t)
{
    if (!promotable(r))
        return;
    uint64_t term;
    uint8_t type;
    if (t == CAMPAIGN_PRE) {
        become_pre_candidate(r);
        type = BS_RAFT_MSG_PREVOTE;
        term = r->term + 1; /* the term we would campaign in */
    } else {
        become_candidate(r);
        type = BS_RAFT_MSG_VOTE;
        term = r->term;
    }
    bs_raft__tracker_record_vote(&r->trk, r->id, true);
    int res = bs_raft__tracker_tally(&r->trk);
    if (res == BS_RAFT_VOTE_WON) {
        poll_result(r, res);
        return;
    }
    uint64_t li = bs_raft__log_last_index(&r->log);
    uint64_t lt = bs_raft__log_last_term(&r->log);
    /* Ask every voter of both configs (learners cannot win anything). */
    uint64_t asked[2 * BS_RAFT_MAX_MEMBERS];
    uint32_t n_asked = 0;
    const struct bs_raft_conf_state *c = &r->trk.conf;
    for (uint32_t i = 0; i < c->n_voters; i++)
        asked[n_asked++] = c->voters[i];
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++)
        if (!bs_raft__ids_has(asked, n_asked, c->voters_outgoing[i]))
            asked[n_asked++] = c->voters_outgoing[i];
    for (uint32_t i = 0; i < n_asked; i++) {
        if (asked[i] == r->id)
            continue;
        struct bs_raft_msg m = {.type = type,
                                .to = asked[i],
                                .term = term,
                                .index = li,
                                .log_term = lt};
        if (t == CAMPAIGN_TRANSFER)
            m.flags |= BS_RAFT_MSG_F_TRANSFER;
        bs_raft__send(r, &m);
    }
    if (r->trk.faults & BS_RAFT_FAULT_COUNT_LEARNER_VOTE) {
        /* Deliberately wrong (self-test): ask learners too, so that their
         * votes can be miscounted. */
        for (uint32_t i = 0; i < c->n_learners; i++) {
            struct bs_raft_msg m = {.type = type,
                                    .to = c->learners[i],
                                    .term = term,
                                    .index = li,
                                    .log_term = lt};
            bs_raft__send(r, &m);
        }
    }
}

bool bs_raft__has_unapplied_conf(struct bs_raft *r)
{
    uint64_t lo = r->log.applied + 1, hi = r->log.committed + 1;
    if (lo >= hi)
        return false;
    uint64_t first = bs_raft__log_first_index(&r->log);
    if (lo < first)
        lo = first;
    while (lo < hi) {
        struct bs_raft_entry_vec v = {0};
        int rc = bs_raft__log_slice(&r->log, lo, hi, 1024 * 1024, &v);
        if (rc != 0 || v.n == 0) {
            bs_raft_entry_vec_free(&v);
            return true; /* cannot tell: be safe, do not campaign */
        }
        bool found = false;
        for (size_t i = 0; i < v.n; i++)
            if (v.v[i].type == BS_RAFT_ENTRY_CONF_CHANGE)
                found = true;
        lo = v.v[v.n - 1].index + 1;
        bs_raft_entry_vec_free(&v);
        if (found)
            return true;
    }
    return false;
}

static void hup(struct bs_raft *r, enum campaign_type t)
{
    if (r->role == BS_RAFT_LEADER)
        return;
    if (!promotable(r))
        return;
    if (bs_raft__has_unapplied_conf(r))
        return; /* the configuration we would campaign under may change */
    if (t == CAMPAIGN_ELECTION && r->cfg.pre_vote)
        t = CAMPAIGN_PRE;
    campaign(r, t);
}

/* ---------------------------------------------------------- replication */

/* Sends a snapshot to pr; returns false if none can be sent now. */
static bool send_snapshot(struct bs_raft *r, struct bs_raft_progress *pr)
{
    if (!pr->recent_active)
        return false;
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_SNAP, .to = pr->id};
    int rc = bs_raft__log_snapshot(&r->log, &m.snapshot);
    if (rc != 0) {
        if (rc != BS_ESNAPTEMP)
            r->fatal = rc;
        return false;
    }
    const struct bs_raft_conf_state *cs = &m.snapshot.meta.conf;
    if (m.snapshot.meta.index == 0 ||
        !(bs_raft__ids_has(cs->voters, cs->n_voters, pr->id) ||
          bs_raft__ids_has(cs->voters_outgoing, cs->n_voters_outgoing,
                           pr->id) ||
          bs_raft__ids_has(cs->learners, cs->n_learners, pr->id) ||
          bs_raft__ids_has(cs->learners_next, cs->n_learners_next, pr->id))) {
        /* No snapshot yet, or one older than the follower's membership:
         * the follower would ignore it. Wait (as for BS_ESNAPTEMP) until
         * the engine has a newer one (raft.h, storage contract). */
        free(m.snapshot.data);
        return false;
    }
    bs_raft__pr_become_snapshot(pr, m.snapshot.meta.index);
    bs_raft__send(r, &m);
    return true;
}

/* Sends an APP (or a snapshot) to 'to' if its progress allows. Returns true
 * if a message was sent. */
static bool send_append(struct bs_raft *r, uint64_t to, bool send_if_empty)
{
    struct bs_raft_progress *pr = bs_raft__tracker_get(&r->trk, to);
    if (!pr || to == r->id || bs_raft__pr_is_paused(pr))
        return false;
    uint64_t prev = pr->next - 1;
    uint64_t prev_term = 0;
    int rc = bs_raft__log_term(&r->log, prev, &prev_term);
    if (rc == BS_ECOMPACTED)
        return send_snapshot(r, pr);
    if (rc != 0) {
        if (rc != BS_EUNAVAIL)
            r->fatal = rc;
        return false;
    }
    struct bs_raft_entry_vec ents = {0};
    uint64_t last = bs_raft__log_last_index(&r->log);
    if (pr->next <= last) {
        rc = bs_raft__log_slice(&r->log, pr->next, last + 1,
                                r->cfg.max_size_per_msg, &ents);
        if (rc == BS_ECOMPACTED) {
            bs_raft_entry_vec_free(&ents);
            return send_snapshot(r, pr);
        }
        if (rc != 0) {
            bs_raft_entry_vec_free(&ents);
            r->fatal = rc;
            return false;
        }
    }
    if (ents.n == 0 && !send_if_empty) {
        bs_raft_entry_vec_free(&ents);
        return false;
    }
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_APP,
                            .to = to,
                            .index = prev,
                            .log_term = prev_term,
                            .commit = r->log.committed,
                            .entries = ents.v,
                            .n_entries = ents.n};
    if (ents.n > 0) {
        uint64_t li = ents.v[ents.n - 1].index;
        if (pr->state == BS_RAFT_PR_REPLICATE) {
            bs_raft__pr_optimistic_update(pr, li);
            bs_raft__inflights_add(&pr->inflights, li);
        } else if (pr->state == BS_RAFT_PR_PROBE) {
            pr->probe_sent = true;
        }
    } else if (pr->state == BS_RAFT_PR_PROBE) {
        pr->probe_sent = true;
    }
    bs_raft__send(r, &m);
    return true;
}

static void send_append_all(struct bs_raft *r)
{
    for (uint32_t i = 0; i < r->trk.n_prs; i++)
        if (r->trk.prs[i].id != r->id)
            send_append(r, r->trk.prs[i].id, true);
}

void bs_raft__bcast_append(struct bs_raft *r)
{
    send_append_all(r);
    r->bcast_pending = false;
}

/* Broadcasts a heartbeat round (sequence beat_seq + 1). */
static void bcast_heartbeat(struct bs_raft *r)
{
    r->beat_seq++;
    r->beat_ticks[r->beat_seq % 64] = r->now;
    struct bs_raft_progress *self = bs_raft__tracker_get(&r->trk, r->id);
    if (self) {
        self->beat_acked = r->beat_seq;
        self->beat_acked_tick = r->now + 1; /* tick + 1: 0 = never */
    }
    for (uint32_t i = 0; i < r->trk.n_prs; i++) {
        struct bs_raft_progress *pr = &r->trk.prs[i];
        if (pr->id == r->id)
            continue;
        /* Never tell a follower to commit beyond what it has (thesis
         * figure 3.1: commit = min(leaderCommit, last new entry)). */
        uint64_t commit =
            pr->match < r->log.committed ? pr->match : r->log.committed;
        struct bs_raft_msg m = {.type = BS_RAFT_MSG_HEARTBEAT,
                                .to = pr->id,
                                .commit = commit,
                                .ctx = r->beat_seq};
        bs_raft__send(r, &m);
    }
}

/* Pending reads confirmed by the quorum-acked heartbeat round. */
static void release_reads(struct bs_raft *r)
{
    if (r->reads.n == 0)
        return;
    uint64_t confirmed = bs_raft__tracker_quorum_beat(&r->trk);
    size_t w = 0;
    for (size_t i = 0; i < r->reads.n; i++) {
        struct bs_raft_pending_read *pr = &r->reads.v[i];
        if (pr->beat <= confirmed)
            respond_read(r, pr->from, pr->ctx, pr->index);
        else
            r->reads.v[w++] = *pr;
    }
    r->reads.n = w;
    /* Reads that arrived after the last round was sent need another. */
    if (r->reads.n > 0 && confirmed >= r->beat_seq)
        bcast_heartbeat(r);
}

/* ------------------------------------------------------------------ reads */

static uint64_t lease_ticks(const struct bs_raft *r)
{
    int lt = r->cfg.lease_ticks > 0 ? r->cfg.lease_ticks
                                    : r->cfg.election_tick - 1;
    return (uint64_t)lt;
}

/*
 * Thesis 6.4.1: the leader may answer reads without a round while a quorum
 * acknowledged a heartbeat sent less than lease_ticks ago. No other leader
 * can exist then: with check_quorum, followers refuse votes for an election
 * timeout after hearing from the leader (bs_raft_step, in_lease), and
 * lease_ticks < election_tick leaves margin for clock drift. A leader that
 * sent TimeoutNow gives up its lease for the term (the transferee's votes
 * ignore leases).
 */
bool bs_raft_lease_valid(const struct bs_raft *r)
{
    if (r->role != BS_RAFT_LEADER || !r->cfg.check_quorum ||
        r->cfg.read_only_option != BS_RAFT_READ_LEASE_BASED ||
        r->lease_void || r->lead_transferee != BS_RAFT_NONE)
        return false;
    if (!committed_in_term(r))
        return false;
    if (single_voter(r))
        return true;
    uint64_t t1 = bs_raft__tracker_quorum_beat_tick(&r->trk);
    if (t1 == 0)
        return false; /* no quorum ack this term */
    return r->now < (t1 - 1) + lease_ticks(r);
}

/* ReadIndex at the leader (thesis 6.4). */
static void leader_read_index(struct bs_raft *r, uint64_t from, uint64_t ctx)
{
    if (single_voter(r)) {
        respond_read(r, from, ctx, r->log.committed);
        return;
    }
    if (r->trk.faults & BS_RAFT_FAULT_STALE_READ) {
        /* Deliberately wrong (self-test): no confirmation at all. */
        respond_read(r, from, ctx, r->log.committed);
        return;
    }
    if (!committed_in_term(r)) {
        /* The commit index may be stale until an entry of this term
         * commits (thesis 6.4 step 1): park the request. */
        struct bs_raft_pending_read p = {.ctx = ctx, .from = from};
        (void)rq_push(&r->reads_term, &p);
        return;
    }
    if (bs_raft_lease_valid(r)) {
        respond_read(r, from, ctx, r->log.committed);
        return;
    }
    /* Batched rounds: the read waits for the next heartbeat round. If no
     * round is in flight, start one now; otherwise it joins the round that
     * release_reads starts when the current one is confirmed. */
    struct bs_raft_pending_read p = {.ctx = ctx,
                                     .from = from,
                                     .index = r->log.committed,
                                     .beat = r->beat_seq + 1};
    if (rq_push(&r->reads, &p) != 0)
        return;
    uint64_t confirmed = bs_raft__tracker_quorum_beat(&r->trk);
    if (confirmed >= r->beat_seq)
        bcast_heartbeat(r);
}

void bs_raft__release_term_reads(struct bs_raft *r)
{
    if (r->reads_term.n == 0 || r->role != BS_RAFT_LEADER ||
        !committed_in_term(r))
        return;
    struct bs_raft_read_queue q = r->reads_term;
    r->reads_term.v = NULL;
    r->reads_term.n = r->reads_term.cap = 0;
    for (size_t i = 0; i < q.n; i++)
        leader_read_index(r, q.v[i].from, q.v[i].ctx);
    free(q.v);
}

/* ------------------------------------------------------------ commitment */

bool bs_raft__maybe_commit(struct bs_raft *r)
{
    uint64_t mci = bs_raft__tracker_committed(&r->trk);
    bool changed;
    if (r->trk.faults & BS_RAFT_FAULT_COMMIT_OLD_TERM) {
        /* Deliberately wrong (self-test): commit by counting regardless of
         * the entry's term (thesis figure 3.7). */
        uint64_t old = r->log.committed;
        bs_raft__log_commit_to(&r->log, mci);
        changed = r->log.committed != old;
    } else {
        changed = bs_raft__log_maybe_commit(&r->log, mci, r->term);
    }
    if (changed)
        bs_raft__release_term_reads(r);
    return changed;
}

/* --------------------------------------------------------- leader steps */

static void send_timeout_now(struct bs_raft *r, uint64_t to)
{
    r->lease_void = true;
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_TIMEOUT_NOW, .to = to};
    bs_raft__send(r, &m);
}

static int leader_propose(struct bs_raft *r, const struct bs_raft_msg *m)
{
    if (m->n_entries == 0)
        return BS_EINVAL;
    if (!bs_raft__tracker_get(&r->trk, r->id))
        return BS_EDROPPED; /* removed from the group */
    if (r->lead_transferee != BS_RAFT_NONE)
        return BS_EDROPPED; /* thesis 3.10: stop taking requests */
    /* Shallow copies (data borrowed from m): the log copies once. */
    struct bs_raft_entry stack_ents[16];
    struct bs_raft_entry *ents = stack_ents;
    if (m->n_entries > 16) {
        ents = malloc(m->n_entries * sizeof(*ents));
        if (!ents)
            return BS_ENOMEM;
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        struct bs_raft_entry e = m->entries[i];
        if (e.type == BS_RAFT_ENTRY_CONF_CHANGE) {
            struct bs_raft_conf_change cc;
            bool ok = bs_raft_cc_decode(e.data, e.len, &cc) == 0;
            const char *why = NULL;
            struct bs_raft_conf_state tmp;
            if (ok && r->pending_conf_index > r->log.applied)
                ok = false; /* one change in flight at a time */
            else if (ok && bs_raft__conf_apply(&r->trk.conf, &cc, &tmp,
                                               &why) != 0)
                ok = false;
            if (!ok) {
                /* Replace by an empty normal entry, as etcd does, so the
                 * proposer's bookkeeping still sees an index. */
                e.type = BS_RAFT_ENTRY_NORMAL;
                e.len = 0;
                e.data = NULL;
            } else {
                r->pending_conf_index =
                    bs_raft__log_last_index(&r->log) + 1 + i;
            }
        }
        ents[i] = e;
    }
    int rc = append_entries(r, ents, m->n_entries);
    if (ents != stack_ents)
        free(ents);
    if (rc != 0) /* raft.h: bs_raft_propose() says BS_ETOOBIG */
        return rc == BS_ETOOBIG && m->from != r->id ? BS_EDROPPED : rc;
    /* Coalesced: every follower gets one APP per ready carrying all the
     * proposals of that ready (see bs_raft_ready). */
    r->bcast_pending = true;
    return 0;
}

static void leader_app_resp(struct bs_raft *r, struct bs_raft_progress *pr,
                            const struct bs_raft_msg *m)
{
    pr->recent_active = true;
    if (m->reject) {
        /* Conflict hint (thesis 5.3 optimisation as in etcd): the follower
         * says its log may match at reject_hint with term log_term; jump
         * to the last index of ours with term <= log_term. */
        uint64_t hint = m->reject_hint;
        if (m->log_term > 0) {
            uint64_t t;
            hint = bs_raft__log_find_conflict_by_term(&r->log, hint,
                                                      m->log_term, &t);
        }
        if (bs_raft__pr_maybe_decr_to(pr, m->index, hint)) {
            if (pr->state == BS_RAFT_PR_REPLICATE)
                bs_raft__pr_become_probe(pr);
            send_append(r, pr->id, false);
        }
        return;
    }
    bool was_paused = bs_raft__pr_is_paused(pr);
    if (!bs_raft__pr_maybe_update(pr, m->index)) {
        return;
    }
    switch (pr->state) {
    case BS_RAFT_PR_PROBE:
        bs_raft__pr_become_replicate(pr);
        break;
    case BS_RAFT_PR_SNAPSHOT:
        if (pr->match + 1 >= bs_raft__log_first_index(&r->log)) {
            bs_raft__pr_become_probe(pr);
            bs_raft__pr_become_replicate(pr);
        }
        break;
    case BS_RAFT_PR_REPLICATE:
        bs_raft__inflights_free_le(&pr->inflights, m->index);
        break;
    }
    if (bs_raft__maybe_commit(r)) {
        r->bcast_pending = true; /* the new commit index, once per ready */
    } else if (was_paused) {
        /* It may be missing the latest commit index: send it even with
         * no entries (as etcd does). */
        send_append(r, pr->id, true);
    }
    /* Keep the pipeline full (bounded by the inflight window and the
     * log). */
    while (send_append(r, pr->id, false)) {
    }
    if (pr->id == r->lead_transferee &&
        pr->match == bs_raft__log_last_index(&r->log))
        send_timeout_now(r, pr->id);
}

static void leader_heartbeat_resp(struct bs_raft *r,
                                  struct bs_raft_progress *pr,
                                  const struct bs_raft_msg *m)
{
    pr->recent_active = true;
    pr->probe_sent = false;
    if (pr->state == BS_RAFT_PR_REPLICATE &&
        bs_raft__inflights_full(&pr->inflights))
        bs_raft__inflights_free_first(&pr->inflights);
    /* Send even without entries: an APP whose entries were lost leaves a
     * replicating follower's next past its log, and only a (rejected)
     * empty APP brings it back to probing (as etcd does). */
    if (pr->match < bs_raft__log_last_index(&r->log))
        send_append(r, pr->id, true);
    if (m->ctx > pr->beat_acked && m->ctx <= r->beat_seq) {
        pr->beat_acked = m->ctx;
        if (r->beat_seq - m->ctx < 64)
            pr->beat_acked_tick = r->beat_ticks[m->ctx % 64] + 1;
        release_reads(r);
    }
}

static void leader_transfer(struct bs_raft *r, uint64_t to)
{
    struct bs_raft_progress *pr = bs_raft__tracker_get(&r->trk, to);
    if (!pr || pr->is_learner || !bs_raft__tracker_is_voter(&r->trk, to))
        return; /* only voters can lead */
    if (r->lead_transferee != BS_RAFT_NONE) {
        if (r->lead_transferee == to)
            return; /* same transfer in progress */
        abort_transfer(r);
    }
    if (to == r->id)
        return;
    /* The transfer must finish within an election timeout. */
    r->election_elapsed = 0;
    r->lead_transferee = to;
    if (pr->match == bs_raft__log_last_index(&r->log))
        send_timeout_now(r, to);
    else
        send_append(r, to, true); /* catch it up first (thesis 3.10) */
}

static int step_leader(struct bs_raft *r, const struct bs_raft_msg *m)
{
    switch (m->type) {
    case BS_RAFT_MSG_BEAT:
        bcast_heartbeat(r);
        return 0;
    case BS_RAFT_MSG_CHECK_QUORUM:
        if (!bs_raft__tracker_quorum_active(&r->trk, r->id)) {
            become_follower(r, r->term, BS_RAFT_NONE);
            return 0;
        }
        for (uint32_t i = 0; i < r->trk.n_prs; i++)
            if (r->trk.prs[i].id != r->id)
                r->trk.prs[i].recent_active = false;
        return 0;
    case BS_RAFT_MSG_PROP:
        return leader_propose(r, m);
    case BS_RAFT_MSG_READ_INDEX:
        leader_read_index(r, m->from, m->ctx);
        return 0;
    case BS_RAFT_MSG_TRANSFER_LEADER:
        leader_transfer(r, m->from);
        return 0;
    default:
        break;
    }
    struct bs_raft_progress *pr = bs_raft__tracker_get(&r->trk, m->from);
    if (!pr)
        return 0; /* not a member (any more) */
    switch (m->type) {
    case BS_RAFT_MSG_APP_RESP:
        leader_app_resp(r, pr, m);
        break;
    case BS_RAFT_MSG_HEARTBEAT_RESP:
        leader_heartbeat_resp(r, pr, m);
        break;
    case BS_RAFT_MSG_SNAP_STATUS:
        if (pr->state != BS_RAFT_PR_SNAPSHOT)
            break;
        if (m->reject)
            pr->pending_snapshot = 0;
        bs_raft__pr_become_probe(pr);
        /* Wait for a heartbeat response before probing again. */
        pr->probe_sent = true;
        break;
    case BS_RAFT_MSG_UNREACHABLE:
        if (pr->state == BS_RAFT_PR_REPLICATE)
            bs_raft__pr_become_probe(pr);
        break;
    default:
        break;
    }
    return 0;
}

/* -------------------------------------------------- follower / candidate */

static void handle_append(struct bs_raft *r, const struct bs_raft_msg *m)
{
    struct bs_raft_msg resp = {.type = BS_RAFT_MSG_APP_RESP, .to = m->from};
    if (m->index < r->log.committed) {
        resp.index = r->log.committed;
        bs_raft__send(r, &resp);
        return;
    }
    uint64_t lastnewi = 0;
    int rc = bs_raft__log_maybe_append(&r->log, m->index, m->log_term,
                                       m->commit, m->entries, m->n_entries,
                                       &lastnewi);
    if (rc == 1) {
        resp.index = lastnewi;
        bs_raft__send(r, &resp);
        return;
    }
    if (rc < 0) {
        if (rc == BS_ENOMEM)
            r->fatal = rc;
        return; /* malformed: ignore the message */
    }
    /* Reject with a hint: the last index <= m->index whose term is <=
     * m->log_term (skips a whole divergent term per round trip). */
    uint64_t last = bs_raft__log_last_index(&r->log);
    uint64_t hint_idx = m->index < last ? m->index : last;
    uint64_t hint_term = 0;
    hint_idx = bs_raft__log_find_conflict_by_term(&r->log, hint_idx,
                                                  m->log_term, &hint_term);
    resp.index = m->index;
    resp.reject = true;
    resp.reject_hint = hint_idx;
    resp.log_term = hint_term;
    bs_raft__send(r, &resp);
}

static void handle_heartbeat(struct bs_raft *r, const struct bs_raft_msg *m)
{
    bs_raft__log_commit_to(&r->log, m->commit);
    struct bs_raft_msg resp = {.type = BS_RAFT_MSG_HEARTBEAT_RESP,
                               .to = m->from,
                               .ctx = m->ctx};
    bs_raft__send(r, &resp);
}

/* Installs a snapshot from the leader (thesis 5.2). Returns true if the
 * log was replaced. */
static bool restore(struct bs_raft *r, const struct bs_raft_snapshot *s)
{
    if (s->meta.index <= r->log.committed)
        return false;
    const struct bs_raft_conf_state *cs = &s->meta.conf;
    if (!bs_raft__ids_has(cs->voters, cs->n_voters, r->id) &&
        !bs_raft__ids_has(cs->voters_outgoing, cs->n_voters_outgoing, r->id) &&
        !bs_raft__ids_has(cs->learners, cs->n_learners, r->id) &&
        !bs_raft__ids_has(cs->learners_next, cs->n_learners_next, r->id))
        return false; /* not a member at that point: ignore (as etcd) */
    const char *why;
    struct bs_raft_tracker probe = {.conf = *cs};
    if ((why = bs_raft__tracker_check(&probe)) != NULL)
        return false; /* malformed configuration */
    if (bs_raft__log_match_term(&r->log, s->meta.index, s->meta.term)) {
        /* We have the snapshot's last entry: just fast-forward commit. */
        bs_raft__log_commit_to(&r->log, s->meta.index);
        return false;
    }
    if (bs_raft__log_restore(&r->log, s) != 0) {
        r->fatal = BS_ENOMEM;
        return false;
    }
    if (bs_raft__tracker_set_conf(&r->trk, &s->meta.conf,
                                  s->meta.index + 1) != 0) {
        r->fatal = BS_ENOMEM;
        return false;
    }
    struct bs_raft_progress *self = bs_raft__tracker_get(&r->trk, r->id);
    r->is_learner = self && self->is_learner;
    for (uint32_t i = 0; i < r->trk.n_prs; i++)
        bs_raft__pr_reset(&r->trk.prs[i], s->meta.index + 1);
    return true;
}

static void handle_snapshot(struct bs_raft *r, const struct bs_raft_msg *m)
{
    struct bs_raft_msg resp = {.type = BS_RAFT_MSG_APP_RESP, .to = m->from};
    if (restore(r, &m->snapshot))
        resp.index = bs_raft__log_last_index(&r->log);
    else
        resp.index = r->log.committed;
    bs_raft__send(r, &resp);
}

static int step_candidate(struct bs_raft *r, const struct bs_raft_msg *m)
{
    uint8_t my_resp = r->role == BS_RAFT_PRE_CANDIDATE
                          ? BS_RAFT_MSG_PREVOTE_RESP
                          : BS_RAFT_MSG_VOTE_RESP;
    switch (m->type) {
    case BS_RAFT_MSG_PROP:
    case BS_RAFT_MSG_READ_INDEX:
        return BS_EDROPPED; /* no leader */
    case BS_RAFT_MSG_APP:
        become_follower(r, m->term, m->from);
        handle_append(r, m);
        return 0;
    case BS_RAFT_MSG_HEARTBEAT:
        become_follower(r, m->term, m->from);
        handle_heartbeat(r, m);
        return 0;
    case BS_RAFT_MSG_SNAP:
        become_follower(r, m->term, m->from);
        handle_snapshot(r, m);
        return 0;
    case BS_RAFT_MSG_VOTE_RESP:
    case BS_RAFT_MSG_PREVOTE_RESP:
        if (m->type != my_resp)
            return 0;
        bs_raft__tracker_record_vote(&r->trk, m->from, !m->reject);
        poll_result(r, bs_raft__tracker_tally(&r->trk));
        return 0;
    default:
        return 0;
    }
}

static int step_follower(struct bs_raft *r, const struct bs_raft_msg *m)
{
    switch (m->type) {
    case BS_RAFT_MSG_PROP: {
        if (r->lead == BS_RAFT_NONE || r->cfg.disable_proposal_forwarding)
            return BS_EDROPPED;
        struct bs_raft_msg f;
        if (bs_raft_msg_copy(&f, m) != 0)
            return BS_ENOMEM;
        f.to = r->lead;
        bs_raft__send(r, &f);
        return 0;
    }
    case BS_RAFT_MSG_APP:
        r->election_elapsed = 0;
        r->lead = m->from;
        handle_append(r, m);
        return 0;
    case BS_RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        r->lead = m->from;
        handle_heartbeat(r, m);
        return 0;
    case BS_RAFT_MSG_SNAP:
        r->election_elapsed = 0;
        r->lead = m->from;
        handle_snapshot(r, m);
        return 0;
    case BS_RAFT_MSG_TRANSFER_LEADER: {
        if (r->lead == BS_RAFT_NONE)
            return BS_EDROPPED;
        struct bs_raft_msg f = *m;
        f.entries = NULL;
        f.n_entries = 0;
        f.snapshot.data = NULL;
        f.snapshot.len = 0;
        f.to = r->lead;
        bs_raft__send(r, &f);
        r->msgs.v[r->msgs.n - 1].from = m->from; /* keep the transferee */
        return 0;
    }
    case BS_RAFT_MSG_TIMEOUT_NOW:
        /* Thesis 3.10: start an election at once, even inside a lease. */
        hup(r, CAMPAIGN_TRANSFER);
        return 0;
    case BS_RAFT_MSG_READ_INDEX: {
        if (r->lead == BS_RAFT_NONE)
            return BS_EDROPPED;
        struct bs_raft_msg f = {.type = BS_RAFT_MSG_READ_INDEX,
                                .to = r->lead,
                                .ctx = m->ctx};
        bs_raft__send(r, &f);
        return 0;
    }
    case BS_RAFT_MSG_READ_INDEX_RESP:
        add_read_state(r, m->index, m->ctx);
        return 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ step */

static bool is_local(uint8_t t)
{
    return t == BS_RAFT_MSG_HUP || t == BS_RAFT_MSG_BEAT ||
           t == BS_RAFT_MSG_UNREACHABLE || t == BS_RAFT_MSG_SNAP_STATUS ||
           t == BS_RAFT_MSG_CHECK_QUORUM;
}

/* Rejects messages that no correct peer sends (network input is never
 * trusted). */
static int validate(const struct bs_raft_msg *m)
{
    if (m->type >= BS_RAFT_MSG__COUNT)
        return BS_EINVAL;
    if (m->n_entries > 0 && !m->entries)
        return BS_EINVAL;
    if (m->n_entries > 0 && m->type != BS_RAFT_MSG_APP &&
        m->type != BS_RAFT_MSG_PROP)
        return BS_EINVAL;
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct bs_raft_entry *e = &m->entries[i];
        if (e->len > 0 && !e->data)
            return BS_EINVAL;
        if (e->type > BS_RAFT_ENTRY_CONF_CHANGE)
            return BS_EINVAL;
        if (m->type == BS_RAFT_MSG_APP) {
            if (e->index != m->index + 1 + i || e->term > m->term)
                return BS_EINVAL;
            if (i > 0 && e->term < m->entries[i - 1].term)
                return BS_EINVAL;
            if (i == 0 && e->term < m->log_term)
                return BS_EINVAL;
        }
    }
    if (m->snapshot.len > 0 && !m->snapshot.data)
        return BS_EINVAL;
    if (m->type == BS_RAFT_MSG_SNAP) {
        const struct bs_raft_conf_state *cs = &m->snapshot.meta.conf;
        if (m->snapshot.meta.index == 0 || m->snapshot.meta.term == 0 ||
            cs->n_voters > BS_RAFT_MAX_MEMBERS ||
            cs->n_voters_outgoing > BS_RAFT_MAX_MEMBERS ||
            cs->n_learners > BS_RAFT_MAX_MEMBERS ||
            cs->n_learners_next > BS_RAFT_MAX_MEMBERS)
            return BS_EINVAL;
    }
    if (m->term == 0 && !is_local(m->type) && m->type != BS_RAFT_MSG_PROP &&
        m->type != BS_RAFT_MSG_READ_INDEX &&
        m->type != BS_RAFT_MSG_TRANSFER_LEADER)
        return BS_EINVAL; /* every wire message carries a term */
    return 0;
}

static int step_vote(struct bs_raft *r, const struct bs_raft_msg *m)
{
    /* Thesis 3.6.1 / 9.6: grant if we have not voted for someone else in
     * this term (or, for a pre-vote, the candidate's term is higher), and
     * the candidate's log is at least as up-to-date as ours. */
    bool can_vote =
        r->vote == m->from ||
        (r->vote == BS_RAFT_NONE && r->lead == BS_RAFT_NONE) ||
        (m->type == BS_RAFT_MSG_PREVOTE && m->term > r->term);
    bool up_to_date =
        (r->trk.faults & BS_RAFT_FAULT_VOTE_ANY_LOG) ||
        bs_raft__log_is_up_to_date(&r->log, m->index, m->log_term);
    uint8_t rt = m->type == BS_RAFT_MSG_VOTE ? BS_RAFT_MSG_VOTE_RESP
                                             : BS_RAFT_MSG_PREVOTE_RESP;
    struct bs_raft_msg resp = {.type = rt, .to = m->from};
    if (can_vote && up_to_date) {
        /* The response carries the candidate's term so that it counts. */
        resp.term = m->term;
        if (m->type == BS_RAFT_MSG_VOTE) {
            r->election_elapsed = 0;
            r->vote = m->from;
        }
    } else {
        resp.term = r->term;
        resp.reject = true;
    }
    bs_raft__send(r, &resp);
    return 0;
}

int bs_raft_step(struct bs_raft *r, const struct bs_raft_msg *m)
{
    if (r->in_ready)
        return BS_EINVAL;
    int rc = validate(m);
    if (rc != 0)
        return rc;
    if (r->fatal)
        return r->fatal;

    if (m->term == 0) {
        /* Local message or forwarded request: no term checks. */
    } else if (m->term > r->term) {
        if (m->type == BS_RAFT_MSG_VOTE || m->type == BS_RAFT_MSG_PREVOTE) {
            bool force = (m->flags & BS_RAFT_MSG_F_TRANSFER) != 0;
            bool in_lease = r->cfg.check_quorum && r->lead != BS_RAFT_NONE &&
                            r->election_elapsed < r->cfg.election_tick;
            if (r->cfg.read_only_option == BS_RAFT_READ_LEASE_BASED &&
                r->now < r->lease_guard)
                in_lease = true; /* just restarted: a lease may exist */
            if (!force && in_lease)
                return 0; /* leader stickiness (thesis 4.2.3 / 6.2) */
        }
        if (m->type == BS_RAFT_MSG_PREVOTE ||
            (m->type == BS_RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* A pre-vote never changes our term; a granted pre-vote
             * response carries the future term. */
        } else if (m->type == BS_RAFT_MSG_APP ||
                   m->type == BS_RAFT_MSG_HEARTBEAT ||
                   m->type == BS_RAFT_MSG_SNAP) {
            become_follower(r, m->term, m->from);
        } else {
            become_follower(r, m->term, BS_RAFT_NONE);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == BS_RAFT_MSG_HEARTBEAT ||
             m->type == BS_RAFT_MSG_APP)) {
            /* A stale leader (e.g. after a partition): tell it our term so
             * it steps down; otherwise, with check-quorum or pre-vote, it
             * could never learn of the new term. */
            struct bs_raft_msg resp = {.type = BS_RAFT_MSG_APP_RESP,
                                       .to = m->from};
            bs_raft__send(r, &resp);
        } else if (m->type == BS_RAFT_MSG_PREVOTE) {
            struct bs_raft_msg resp = {.type = BS_RAFT_MSG_PREVOTE_RESP,
                                       .to = m->from,
                                       .term = r->term,
                                       .reject = true};
            bs_raft__send(r, &resp);
        }
        return 0;
    }

    switch (m->type) {
    case BS_RAFT_MSG_HUP:
        hup(r, CAMPAIGN_ELECTION);
        return 0;
    case BS_RAFT_MSG_VOTE:
    case BS_RAFT_MSG_PREVOTE:
        return step_vote(r, m);
    default:
        break;
    }
    switch (r->role) {
    case BS_RAFT_LEADER:
        return step_leader(r, m);
    case BS_RAFT_CANDIDATE:
    case BS_RAFT_PRE_CANDIDATE:
        return step_candidate(r, m);
    default:
        return step_follower(r, m);
    }
}

/* ------------------------------------------------------------------ tick */

static void tick_election(struct bs_raft *r)
{
    r->election_elapsed++;
    if (promotable(r) && past_election_timeout(r)) {
        r->election_elapsed = 0;
        struct bs_raft_msg m = {.type = BS_RAFT_MSG_HUP, .from = r->id};
        (void)bs_raft_step(r, &m);
    }
}

static void tick_heartbeat(struct bs_raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_tick) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum) {
            struct bs_raft_msg m = {.type = BS_RAFT_MSG_CHECK_QUORUM,
                                    .from = r->id};
            (void)bs_raft_step(r, &m);
        }
        /* Thesis 3.10: abort a transfer that did not finish in time. */
        if (r->role == BS_RAFT_LEADER && r->lead_transferee != BS_RAFT_NONE)
            abort_transfer(r);
    }
    if (r->role != BS_RAFT_LEADER)
        return;
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
        r->heartbeat_elapsed = 0;
        struct bs_raft_msg m = {.type = BS_RAFT_MSG_BEAT, .from = r->id};
        (void)bs_raft_step(r, &m);
    }
}

void bs_raft_tick(struct bs_raft *r)
{
    if (r->in_ready)
        return;
    r->now++;
    if (r->role == BS_RAFT_LEADER)
        tick_heartbeat(r);
    else
        tick_election(r);
}

/* ---------------------------------------------------------- public API */

int bs_raft_create(const struct bs_raft_config *c, struct bs_raft **out,
                   char *errmsg)
{
#define FAIL(code, msg)                                                      \
    do {                                                                     \
        if (errmsg)                                                          \
            snprintf(errmsg, 128, "%s", msg);                                      \
        rc = (code);                                                         \
        goto err;                                                            \
    } while (0)
    int rc = 0;
    struct bs_raft *r = NULL;
    *out = NULL;
    if (c->id == BS_RAFT_NONE)
        FAIL(BS_EINVAL, "config: id must not be 0");
    if (c->heartbeat_tick <= 0)
        FAIL(BS_EINVAL, "config: heartbeat_tick must be > 0");
    if (c->election_tick <= c->heartbeat_tick)
        FAIL(BS_EINVAL, "config: election_tick must be > heartbeat_tick");
    if (c->max_inflight_msgs <= 0)
        FAIL(BS_EINVAL, "config: max_inflight_msgs must be > 0");
    if (!c->storage.ops)
        FAIL(BS_EINVAL, "config: storage is missing");
    if (c->read_only_option != BS_RAFT_READ_SAFE &&
        c->read_only_option != BS_RAFT_READ_LEASE_BASED)
        FAIL(BS_EINVAL, "config: unknown read_only_option");
    if (c->read_only_option == BS_RAFT_READ_LEASE_BASED && !c->check_quorum)
        FAIL(BS_EINVAL, "config: lease-based reads require check_quorum");
    if (c->lease_ticks < 0 || c->lease_ticks >= c->election_tick)
        FAIL(BS_EINVAL,
             "config: lease_ticks must be shorter than election_tick");

    r = calloc(1, sizeof(*r));
    if (!r)
        FAIL(BS_ENOMEM, "out of memory");
    r->cfg = *c;
    r->id = c->id;
    r->rng = c->seed ^ (c->id * 0x9e3779b97f4a7c15ULL);
    r->trk.max_inflight = (size_t)c->max_inflight_msgs;
    r->trk.faults = c->faults;
    rc = bs_raft__log_init(&r->log, c->storage);
    if (rc != 0)
        FAIL(rc, "storage: first/last index inconsistent");
    r->log.max_next_ents_size = c->max_committed_size_per_ready;

    struct bs_raft_hard_state hs;
    struct bs_raft_conf_state cs;
    rc = c->storage.ops->initial_state(c->storage.ctx, &hs, &cs);
    if (rc != 0)
        FAIL(rc, "storage: cannot read the initial state");
    uint64_t last = bs_raft__log_last_index(&r->log);
    if (hs.commit > last)
        FAIL(BS_ECORRUPT, "storage: hard state commit beyond the last index");
    rc = bs_raft__tracker_set_conf(&r->trk, &cs, last + 1);
    if (rc != 0)
        FAIL(rc, "storage: invalid configuration");
    const char *why = bs_raft__tracker_check(&r->trk);
    if (why)
        FAIL(BS_ECORRUPT, "storage: configuration breaks an invariant");
    struct bs_raft_progress *self = bs_raft__tracker_get(&r->trk, r->id);
    r->is_learner = self && self->is_learner;
    if (hs.commit > r->log.committed)
        r->log.committed = hs.commit;
    if (c->applied > r->log.applied)
        bs_raft__log_applied_to(&r->log, c->applied);
    become_follower(r, hs.term, BS_RAFT_NONE);
    r->vote = hs.vote;
    r->prev_hs.term = r->term;
    r->prev_hs.vote = r->vote;
    r->prev_hs.commit = r->log.committed;
    r->prev_ss.lead = BS_RAFT_NONE;
    r->prev_ss.role = BS_RAFT_FOLLOWER;
    /* A node that may have acknowledged a leader's lease before a restart
     * must not vote inside it. No leader ever existed at term <= 1 (the
     * first election raises the term to 2), so a freshly bootstrapped or
     * empty replica needs no guard and can elect at once. */
    if (c->read_only_option == BS_RAFT_READ_LEASE_BASED && hs.term > 1)
        r->lease_guard = (uint64_t)c->election_tick;
    *out = r;
    return 0;
err:
    bs_raft_destroy(r);
    return rc;
#undef FAIL
}

void bs_raft_destroy(struct bs_raft *r)
{
    if (!r)
        return;
    bs_raft__log_free(&r->log);
    bs_raft__tracker_free(&r->trk);
    for (size_t i = 0; i < r->msgs.n; i++)
        bs_raft_msg_free(&r->msgs.v[i]);
    free(r->msgs.v);
    /* Destroyed between ready and advance (a crash): the ready's messages
     * are still ours (bs_sim, valgrind). */
    for (size_t i = 0; i < r->rd_msgs.n; i++)
        bs_raft_msg_free(&r->rd_msgs.v[i]);
    free(r->rd_msgs.v);
    free(r->rd_read_states);
    free(r->read_states);
    free(r->reads.v);
    free(r->reads_term.v);
    bs_raft_entry_vec_free(&r->rd_committed);
    free(r);
}

int bs_raft__propose_entry(struct bs_raft *r, uint8_t type,
                           const uint8_t *data, uint32_t len)
{
    struct bs_raft_entry e = {.type = type, .len = len,
                              .data = (uint8_t *)data};
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_PROP,
                            .from = r->id,
                            .entries = &e,
                            .n_entries = 1};
    return bs_raft_step(r, &m);
}

int bs_raft_propose(struct bs_raft *r, const uint8_t *data, size_t len)
{
    if (len > UINT32_MAX)
        return BS_ETOOBIG;
    return bs_raft__propose_entry(r, BS_RAFT_ENTRY_NORMAL, data,
                                  (uint32_t)len);
}

int bs_raft_propose_conf_change(struct bs_raft *r,
                                const struct bs_raft_conf_change *cc)
{
    uint8_t buf[BS_RAFT_CC_MAX_ENCODED];
    int n = bs_raft_cc_encode(cc, buf);
    if (n < 0)
        return n;
    int rc = bs_raft__propose_entry(r, BS_RAFT_ENTRY_CONF_CHANGE, buf,
                                    (uint32_t)n);
    return rc == BS_ETOOBIG ? BS_EDROPPED : rc;
}

int bs_raft_apply_conf_change(struct bs_raft *r,
                              const struct bs_raft_conf_change *cc,
                              struct bs_raft_conf_state *cs)
{
    struct bs_raft_conf_state next;
    const char *why;
    int rc = bs_raft__conf_apply(&r->trk.conf, cc, &next, &why);
    if (rc != 0) {
        if (cs)
            *cs = r->trk.conf;
        return rc;
    }
    rc = bs_raft__tracker_set_conf(&r->trk, &next,
                                   bs_raft__log_last_index(&r->log) + 1);
    if (rc != 0)
        return rc;
    struct bs_raft_progress *self = bs_raft__tracker_get(&r->trk, r->id);
    r->is_learner = self && self->is_learner;
    if (cs)
        *cs = r->trk.conf;
    if (r->role != BS_RAFT_LEADER)
        return 0;
    if (!self || r->is_learner) {
        /* Removed or demoted: step down (a voter of C_old keeps leading
         * through the joint phase and steps down when it is left). */
        become_follower(r, r->term, BS_RAFT_NONE);
        return 0;
    }
    if (r->lead_transferee != BS_RAFT_NONE &&
        !bs_raft__tracker_is_voter(&r->trk, r->lead_transferee))
        abort_transfer(r);
    /* The quorum changed: commit may advance, new members need the log. */
    if (bs_raft__maybe_commit(r))
        send_append_all(r);
    else
        for (uint32_t i = 0; i < r->trk.n_prs; i++)
            if (r->trk.prs[i].id != r->id)
                send_append(r, r->trk.prs[i].id, false);
    release_reads(r);
    return 0;
}

int bs_raft_read_index(struct bs_raft *r, uint64_t ctx)
{
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_READ_INDEX,
                            .from = r->id,
                            .ctx = ctx};
    if (r->role == BS_RAFT_LEADER) {
        if (r->in_ready)
            return BS_EINVAL;
        leader_read_index(r, BS_RAFT_NONE, ctx);
        return 0;
    }
    return bs_raft_step(r, &m);
}

void bs_raft_transfer_leader(struct bs_raft *r, uint64_t to)
{
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_TRANSFER_LEADER, .from = to};
    (void)bs_raft_step(r, &m);
}

void bs_raft_campaign(struct bs_raft *r)
{
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_HUP, .from = r->id};
    (void)bs_raft_step(r, &m);
}

void bs_raft_report_snapshot(struct bs_raft *r, uint64_t to, bool failed)
{
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_SNAP_STATUS,
                            .from = to,
                            .reject = failed};
    (void)bs_raft_step(r, &m);
}

void bs_raft_report_unreachable(struct bs_raft *r, uint64_t to)
{
    struct bs_raft_msg m = {.type = BS_RAFT_MSG_UNREACHABLE, .from = to};
    (void)bs_raft_step(r, &m);
}

/* ------------------------------------------------------------ inspection */

uint64_t bs_raft_id(const struct bs_raft *r) { return r->id; }
uint64_t bs_raft_term(const struct bs_raft *r) { return r->term; }
uint64_t bs_raft_lead(const struct bs_raft *r) { return r->lead; }
int bs_raft_role(const struct bs_raft *r) { return r->role; }
uint64_t bs_raft_committed(const struct bs_raft *r) { return r->log.committed; }
uint64_t bs_raft_applied(const struct bs_raft *r) { return r->log.applied; }
uint64_t bs_raft_vote(const struct bs_raft *r) { return r->vote; }
bool bs_raft_is_learner(const struct bs_raft *r) { return r->is_learner; }

uint64_t bs_raft_last_index(const struct bs_raft *r)
{
    return bs_raft__log_last_index(&r->log);
}

uint64_t bs_raft_lead_transferee(const struct bs_raft *r)
{
    return r->lead_transferee;
}

void bs_raft_conf_state(const struct bs_raft *r,
                        struct bs_raft_conf_state *cs)
{
    *cs = r->trk.conf;
}

int bs_raft_log_term(struct bs_raft *r, uint64_t i, uint64_t *term)
{
    return bs_raft__log_term(&r->log, i, term);
}

size_t bs_raft_progress(const struct bs_raft *r,
                        struct bs_raft_progress_info *out, size_t cap)
{
    if (r->role != BS_RAFT_LEADER)
        return 0;
    for (uint32_t i = 0; i < r->trk.n_prs && i < cap; i++) {
        const struct bs_raft_progress *pr = &r->trk.prs[i];
        out[i].id = pr->id;
        out[i].match = pr->match;
        out[i].next = pr->next;
        out[i].state = pr->state;
        out[i].learner = pr->is_learner;
        out[i].recent_active = pr->recent_active;
    }
    return r->trk.n_prs;
}

const char *bs_raft_check(const struct bs_raft *r)
{
    const char *why = bs_raft__log_check(&r->log);
    if (why)
        return why;
    why = bs_raft__tracker_check(&r->trk);
    if (why)
        return why;
    if (r->role == BS_RAFT_LEADER && r->lead != r->id)
        return "R1: a leader must name itself as lead";
    if (r->role == BS_RAFT_CANDIDATE && r->vote != r->id)
        return "R2: a candidate votes for itself";
    if (r->role == BS_RAFT_LEADER) {
        uint64_t last = bs_raft__log_last_index(&r->log);
        for (uint32_t i = 0; i < r->trk.n_prs; i++) {
            const struct bs_raft_progress *pr = &r->trk.prs[i];
            if (pr->match >= pr->next)
                return "R3: a progress has match >= next";
            if (pr->match > last)
                return "R3: a progress matches beyond the leader's log";
        }
    }
    if (r->lead_transferee != BS_RAFT_NONE && r->role != BS_RAFT_LEADER)
        return "R4: only a leader transfers leadership";
    return NULL;
}
