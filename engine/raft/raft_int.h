/*
 * raft_int.h - private structures of the Raft core, shared by its files:
 *
 *   util.c        entry vectors, message copies, conf change codec, names
 *   log.c         the raft log: storage + unstable tail (thesis 3.5)
 *   tracker.c     progress of each peer, inflight window, quorum math
 *   confchange.c  joint consensus and one-step changes (thesis 4.1, 4.3)
 *   raft.c        roles, elections, replication, reads, transfer
 *   ready.c       the ready / advance cycle
 *   mem_storage.c the in-memory storage
 *
 * Nothing here is visible outside engine/raft.
 */
#ifndef BS_ENGINE_RAFT_RAFT_INT_H
#define BS_ENGINE_RAFT_RAFT_INT_H

#include "raft.h"

/* ------------------------------------------------------------------ log */

/*
 * The log is the storage's persisted entries followed by an unstable tail
 * that the node appended but the caller has not yet persisted.
 *
 * Invariants (checked by bs_raft__log_check):
 *   L1. storage last index + 1 >= unstable_offset (the tail starts at or
 *       before the end of what storage holds; a shorter start means the
 *       tail overwrites a conflicting suffix not yet truncated in storage).
 *   L2. unstable entries have consecutive indexes from unstable_offset.
 *   L3. applied <= committed <= last_index.
 *   L4. an unstable snapshot, if any, has index == unstable_offset - 1.
 */
struct bs_raft_log {
    struct bs_raft_storage storage;
    bool has_snapshot; /* unstable snapshot to install */
    struct bs_raft_snapshot snapshot; /* owns data */
    struct bs_raft_entry_vec unstable;
    uint64_t unstable_offset;
    uint64_t committed;
    uint64_t applied;
    uint64_t max_next_ents_size;
};

int bs_raft__log_init(struct bs_raft_log *l, struct bs_raft_storage st);
void bs_raft__log_free(struct bs_raft_log *l);
uint64_t bs_raft__log_first_index(const struct bs_raft_log *l);
uint64_t bs_raft__log_last_index(const struct bs_raft_log *l);
/* Index of the last entry that is persisted (not in the unstable tail). */
uint64_t bs_raft__log_stable_last(const struct bs_raft_log *l);
int bs_raft__log_term(const struct bs_raft_log *l, uint64_t i, uint64_t *t);
uint64_t bs_raft__log_last_term(const struct bs_raft_log *l);
bool bs_raft__log_match_term(const struct bs_raft_log *l, uint64_t i,
                             uint64_t t);
bool bs_raft__log_is_up_to_date(const struct bs_raft_log *l, uint64_t lasti,
                                uint64_t term);
/* Appends ents (copied) to the unstable tail, truncating a conflicting
 * suffix. Returns 0 or BS_ENOMEM. */
int bs_raft__log_append(struct bs_raft_log *l,
                        const struct bs_raft_entry *ents, size_t n);
/* AppendEntries receiver rules (thesis figure 3.1). Returns 1 and sets
 * *lastnewi if the log matched at (index, log_term), 0 if it did not, or
 * BS_EPROTO if the entries would overwrite committed ones, or BS_ENOMEM. */
int bs_raft__log_maybe_append(struct bs_raft_log *l, uint64_t index,
                              uint64_t log_term, uint64_t committed,
                              const struct bs_raft_entry *ents, size_t n,
                              uint64_t *lastnewi);
/* The largest index <= index whose term is <= term; *t its term. Used for
 * conflict hints. */
uint64_t bs_raft__log_find_conflict_by_term(const struct bs_raft_log *l,
                                            uint64_t index, uint64_t term,
                                            uint64_t *t);
/* Copies entries [lo, hi) into out, limited to max_bytes (at least one
 * entry). Returns 0, BS_ECOMPACTED, BS_EUNAVAIL or a storage error. */
int bs_raft__log_slice(const struct bs_raft_log *l, uint64_t lo, uint64_t hi,
                       uint64_t max_bytes, struct bs_raft_entry_vec *out);
void bs_raft__log_commit_to(struct bs_raft_log *l, uint64_t tocommit);
bool bs_raft__log_maybe_commit(struct bs_raft_log *l, uint64_t maxindex,
                               uint64_t term);
void bs_raft__log_applied_to(struct bs_raft_log *l, uint64_t i);
void bs_raft__log_stable_to(struct bs_raft_log *l, uint64_t i, uint64_t t);
void bs_raft__log_stable_snap_to(struct bs_raft_log *l, uint64_t i);
/* Replaces the log with a snapshot (data copied). Returns 0 or
 * BS_ENOMEM. */
int bs_raft__log_restore(struct bs_raft_log *l,
                         const struct bs_raft_snapshot *s);
/* Copy of the newest snapshot (unstable or storage's). */
int bs_raft__log_snapshot(const struct bs_raft_log *l,
                          struct bs_raft_snapshot *out);
const char *bs_raft__log_check(const struct bs_raft_log *l);

/* -------------------------------------------------------------- tracker */

/* Bounded ring of the last indexes of APPs in flight to one follower. */
struct bs_raft_inflights {
    uint64_t *idx; /* owned, size cap */
    size_t start;
    size_t count;
    size_t cap;
};

/*
 * Replication state of one follower, seen from the leader:
 *
 *              +--------------------------------------------+
 *              |     reject / unreachable (become_probe)     |
 *              v                                            |
 *   (new) -> PROBE --- ack (become_replicate) ---------> REPLICATE
 *              ^  \                                         |
 *              |   \-- entries compacted (become_snapshot)  |
 *              |          v                                 |
 *              +---- SNAPSHOT <-----------------------------+
 *      snapshot applied / failed (become_probe)
 *
 * PROBE sends one APP per heartbeat interval until an ack; REPLICATE
 * pipelines APPs up to the inflight window; SNAPSHOT sends nothing until
 * the snapshot is reported done or failed.
 */
enum bs_raft_pr_state {
    BS_RAFT_PR_PROBE = 0,
    BS_RAFT_PR_REPLICATE = 1,
    BS_RAFT_PR_SNAPSHOT = 2,
};

struct bs_raft_progress {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    uint8_t state;
    bool probe_sent;    /* PROBE: an APP is outstanding, pause until ack */
    bool recent_active; /* heard from since the last check-quorum */
    bool is_learner;
    uint64_t pending_snapshot;
    struct bs_raft_inflights inflights;
    uint64_t beat_acked;      /* highest heartbeat sequence acked */
    uint64_t beat_acked_tick; /* send tick of that heartbeat */
};

bool bs_raft__pr_is_paused(const struct bs_raft_progress *pr);
void bs_raft__pr_become_probe(struct bs_raft_progress *pr);
void bs_raft__pr_become_replicate(struct bs_raft_progress *pr);
void bs_raft__pr_become_snapshot(struct bs_raft_progress *pr, uint64_t i);
bool bs_raft__pr_maybe_update(struct bs_raft_progress *pr, uint64_t n);
bool bs_raft__pr_maybe_decr_to(struct bs_raft_progress *pr,
                               uint64_t rejected, uint64_t match_hint);
void bs_raft__pr_optimistic_update(struct bs_raft_progress *pr, uint64_t n);
void bs_raft__pr_reset(struct bs_raft_progress *pr, uint64_t next);
bool bs_raft__inflights_full(const struct bs_raft_inflights *in);
void bs_raft__inflights_add(struct bs_raft_inflights *in, uint64_t idx);
void bs_raft__inflights_free_le(struct bs_raft_inflights *in, uint64_t idx);
void bs_raft__inflights_free_first(struct bs_raft_inflights *in);

enum bs_raft_vote_result {
    BS_RAFT_VOTE_PENDING = 0,
    BS_RAFT_VOTE_LOST = 1,
    BS_RAFT_VOTE_WON = 2,
};

/*
 * The progress of every member plus the configuration (incoming voters,
 * outgoing voters, learners) and the votes of the current election.
 *
 * Invariants (bs_raft__tracker_check):
 *   T1. every id of the configuration has exactly one progress, and no
 *       progress exists for an id outside it;
 *   T2. learners and learners_next are disjoint from voters; learners is
 *       disjoint from voters_outgoing; learners_next is a subset of
 *       voters_outgoing;
 *   T3. outside a joint config, learners_next is empty and auto_leave is
 *       false.
 */
struct bs_raft_tracker {
    struct bs_raft_conf_state conf;
    struct bs_raft_progress prs[BS_RAFT_MAX_MEMBERS];
    uint32_t n_prs;
    uint64_t vote_ids[BS_RAFT_MAX_MEMBERS];
    bool vote_granted[BS_RAFT_MAX_MEMBERS];
    uint32_t n_votes;
    size_t max_inflight;
    uint32_t faults;
};

struct bs_raft_progress *bs_raft__tracker_get(struct bs_raft_tracker *t,
                                              uint64_t id);
bool bs_raft__tracker_is_joint(const struct bs_raft_tracker *t);
bool bs_raft__tracker_is_voter(const struct bs_raft_tracker *t, uint64_t id);
/* Installs a new configuration: keeps the progress of remaining members,
 * creates progress (next = next_index) for new ones. Returns 0 or
 * BS_ENOMEM. */
int bs_raft__tracker_set_conf(struct bs_raft_tracker *t,
                              const struct bs_raft_conf_state *cs,
                              uint64_t next_index);
void bs_raft__tracker_free(struct bs_raft_tracker *t);
/* Largest index acknowledged by a quorum of both majority configs
 * (thesis 4.3: joint consensus needs both). */
uint64_t bs_raft__tracker_committed(const struct bs_raft_tracker *t);
/* Same quorum math over another per-progress value. */
uint64_t bs_raft__tracker_quorum_beat(const struct bs_raft_tracker *t);
uint64_t bs_raft__tracker_quorum_beat_tick(const struct bs_raft_tracker *t);
bool bs_raft__tracker_quorum_active(const struct bs_raft_tracker *t,
                                    uint64_t self);
void bs_raft__tracker_reset_votes(struct bs_raft_tracker *t);
void bs_raft__tracker_record_vote(struct bs_raft_tracker *t, uint64_t id,
                                  bool granted);
int bs_raft__tracker_tally(const struct bs_raft_tracker *t);
const char *bs_raft__tracker_check(const struct bs_raft_tracker *t);

/* Set helpers over uint64_t arrays (small, unsorted). */
bool bs_raft__ids_has(const uint64_t *ids, uint32_t n, uint64_t id);

/* ------------------------------------------------------------ confchange */

/* Computes the configuration that results from applying cc to cur. Returns
 * 0, or BS_EINVAL with a reason in *why (static string). */
int bs_raft__conf_apply(const struct bs_raft_conf_state *cur,
                        const struct bs_raft_conf_change *cc,
                        struct bs_raft_conf_state *out, const char **why);
/* Whether a conf change leaves a joint configuration. */
bool bs_raft__cc_is_leave(const struct bs_raft_conf_change *cc);

/* ------------------------------------------------------------ the node */

struct bs_raft_msg_vec {
    struct bs_raft_msg *v;
    size_t n;
    size_t cap;
};

/* A read request waiting at the leader. */
struct bs_raft_pending_read {
    uint64_t ctx;
    uint64_t from;  /* requester; self or BS_RAFT_NONE = local */
    uint64_t index; /* commit index when the request arrived */
    uint64_t beat;  /* heartbeat sequence that must be acked by a quorum */
};

struct bs_raft_read_queue {
    struct bs_raft_pending_read *v;
    size_t n;
    size_t cap;
};

struct bs_raft {
    struct bs_raft_config cfg;
    uint64_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t lead;
    uint8_t role;
    bool is_learner;
    struct bs_raft_log log;
    struct bs_raft_tracker trk;

    uint64_t lead_transferee;
    bool lease_void; /* TimeoutNow sent this term: no more lease reads */
    uint64_t pending_conf_index;
    uint64_t uncommitted_size;
    bool bcast_pending; /* leader: send APPs to all at the next ready */

    int election_elapsed;
    int heartbeat_elapsed;
    int randomized_election_timeout;
    uint64_t now;         /* ticks since creation */
    uint64_t lease_guard; /* votes refused until now >= this (lease mode) */
    uint64_t rng;

    /* Heartbeat rounds: every broadcast is sequence beat_seq; its send tick
     * is kept for the lease. */
    uint64_t beat_seq;
    uint64_t beat_ticks[64];
    struct bs_raft_read_queue reads;       /* waiting for a beat */
    struct bs_raft_read_queue reads_term;  /* waiting for a commit in term */

    struct bs_raft_msg_vec msgs;
    struct bs_raft_read_state *read_states;
    size_t n_read_states;
    size_t cap_read_states;

    /* Ready bookkeeping. */
    struct bs_raft_soft_state prev_ss;
    struct bs_raft_hard_state prev_hs;
    struct bs_raft_entry_vec rd_committed; /* copies from storage */
    struct bs_raft_msg_vec rd_msgs;        /* messages of the ready */
    struct bs_raft_read_state *rd_read_states;
    size_t rd_n_read_states;
    uint64_t rd_last_index; /* last unstable entry handed out, or 0 */
    uint64_t rd_last_term;
    bool in_ready;
    int fatal; /* sticky storage error */
};

/* Internal entry points between raft.c and ready.c. */
void bs_raft__send(struct bs_raft *r, struct bs_raft_msg *m /* taken */);
bool bs_raft__maybe_commit(struct bs_raft *r);
void bs_raft__bcast_append(struct bs_raft *r);
void bs_raft__release_term_reads(struct bs_raft *r);
int bs_raft__propose_entry(struct bs_raft *r, uint8_t type,
                           const uint8_t *data, uint32_t len);
bool bs_raft__has_unapplied_conf(struct bs_raft *r);

#endif
