/*
 * demo.c - `bs_sim --demo`: one scripted 5-node run, told as it happens.
 *
 * The script uses the simulator's own machinery (virtual network, ready
 * cycle, checkers) with fixed, readable parameters and no random faults:
 * it elects a leader, writes and reads, cuts the leader off in a minority,
 * heals, crashes a follower and brings it back through a snapshot, adds a
 * learner and promotes it, removes a voter, transfers leadership, and
 * finally heals and checks the whole history. Every line it prints reports
 * what actually happened (leaders, terms, indexes, values are read from the
 * nodes), and every invariant of check.c runs after every step as in any
 * other run.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

#define U(x)      ((unsigned long long)(x))
#define DEMO_SEED 2024

struct demo {
    struct bs_sim *s;
    FILE *out;
};

typedef bool (*demo_cond_fn)(struct bs_sim *s, uint64_t arg);

static void demo_setup(struct bs_sim *s)
{
    struct bs_sim_params *p = &s->p;
    p->voters = 5;
    p->learners = 0;
    p->election_tick = 10;
    p->heartbeat_tick = 1;
    p->steps_per_tick = 2;
    p->read_only = BS_RAFT_READ_SAFE;
    p->check_quorum = true;
    p->pre_vote = true;
    p->max_size_per_msg = 1 << 20;
    p->max_inflight = 256;
    p->max_uncommitted = 0;
    p->no_forwarding = false;
    p->n_active_keys = 2;
    p->op_timeout = 6 * 10 * 2;
    p->min_down = 1;
    p->max_pad = 0;
    s->net.lat_min = 1;
    s->net.lat_max = 2;
    s->net.spike_max = 2;
    s->net.drop_ppm = s->net.dup_ppm = s->net.spike_ppm = 0;
}

static void say(struct demo *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct demo *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(d->out, "  tick %4llu  ",
            U(d->s->now / (uint64_t)d->s->p.steps_per_tick));
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    va_end(ap);
}

/* Runs steps (no random events) until cond holds; fails the run if it
 * does not within max steps. */
static bool wait_for(struct demo *d, demo_cond_fn cond, uint64_t arg,
                     uint64_t max, const char *what)
{
    struct bs_sim *s = d->s;
    for (uint64_t i = 0; i < max; i++) {
        if (bs_sim__failed(s))
            return false;
        if (cond(s, arg))
            return true;
        s->now++;
        bs_sim__step(s, false);
    }
    if (cond(s, arg))
        return true;
    bs_sim__fail(s, "demo", "%s did not happen within %llu steps", what,
                 U(max));
    return false;
}

static bool c_leader_after(struct bs_sim *s, uint64_t term)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    return l && bs_raft_term(l->r) > term;
}

static bool c_write_done(struct bs_sim *s, uint64_t w)
{
    return s->writes[w].state == BS_SIM_DONE;
}

static bool c_writes_done(struct bs_sim *s, uint64_t from)
{
    for (uint64_t w = from; w <= s->n_writes; w++)
        if (s->writes[w].state != BS_SIM_DONE)
            return false;
    return true;
}

static bool c_read_done(struct bs_sim *s, uint64_t r)
{
    return s->reads[r].state == BS_SIM_DONE;
}

static bool c_caught_up(struct bs_sim *s, uint64_t id)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    struct bs_sim_node *n = &s->nodes[id];
    return l && n->state == BS_SIM_UP && n->applied >= bs_raft_committed(l->r);
}

static bool c_follows(struct bs_sim *s, uint64_t id)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    struct bs_sim_node *n = &s->nodes[id];
    return l && l != n && n->state == BS_SIM_UP &&
           bs_raft_lead(n->r) == l->id && c_caught_up(s, id);
}

static bool c_all_follow(struct bs_sim *s, uint64_t unused)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    (void)unused;
    if (!l)
        return false;
    for (uint64_t id = 1; id <= s->max_id; id++) {
        struct bs_sim_node *n = &s->nodes[id];
        if (n->state == BS_SIM_UP && bs_raft_lead(n->r) != l->id)
            return false;
    }
    return true;
}

static bool c_voter(struct bs_sim *s, uint64_t id)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    if (!l)
        return false;
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(l->r, &cs);
    return !bs_sim__conf_joint(&cs) && bs_sim__conf_voter(&cs, id) &&
           c_caught_up(s, id);
}

static bool c_learner(struct bs_sim *s, uint64_t id)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    if (!l)
        return false;
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(l->r, &cs);
    return bs_sim__conf_has(&cs, id) && c_caught_up(s, id);
}

static bool c_retired(struct bs_sim *s, uint64_t id)
{
    return s->nodes[id].state == BS_SIM_RETIRED && bs_sim__leader(s);
}

static bool c_leader_is(struct bs_sim *s, uint64_t id)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    return l && l->id == id;
}

/* The first live follower of the leader other than `avoid`. */
static struct bs_sim_node *follower(struct bs_sim *s, uint64_t avoid)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    for (uint64_t id = s->max_id; id >= 1; id--) {
        struct bs_sim_node *n = &s->nodes[id];
        if (n->state == BS_SIM_UP && n != l && id != avoid)
            return n;
    }
    return NULL;
}

static void voters_str(struct bs_sim *s, char *buf, size_t len)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    struct bs_raft_conf_state cs;
    memset(&cs, 0, sizeof cs);
    if (l)
        bs_raft_conf_state(l->r, &cs);
    bs_sim__conf_str(&cs, buf, len);
}

static void cc_one(struct bs_sim_node *at, uint8_t transition, uint8_t type,
                   uint64_t id)
{
    struct bs_raft_conf_change cc;
    memset(&cc, 0, sizeof cc);
    cc.transition = transition;
    cc.n_changes = 1;
    cc.changes[0].type = type;
    cc.changes[0].node_id = id;
    bs_raft_propose_conf_change(at->r, &cc);
}

static void script(struct demo *d)
{
    struct bs_sim *s = d->s;
    const uint64_t et = 2 * 10 * 2; /* longest election timeout, steps */
    char buf[256];
#define WAIT(cond, arg, what)                                                  \
    do {                                                                       \
        if (!wait_for(d, (cond), (arg), 20 * et, (what)))                      \
            return;                                                            \
    } while (0)

    say(d, "5 replicas n1..n5 boot from the same snapshot "
           "{index 1, term 1, voters n1..n5}");
    WAIT(c_leader_after, 1, "a first election");
    WAIT(c_all_follow, 0, "the followers hearing from the leader");
    struct bs_sim_node *l = bs_sim__leader(s);
    say(d, "n%llu wins the election for term %llu", U(l->id),
        U(bs_raft_term(l->r)));

    uint64_t first = s->n_writes + 1;
    for (int i = 0; i < 6; i++) {
        struct bs_sim_node *at = i % 3 == 2 ? follower(s, 0) : l;
        bs_sim__write(s, at, (uint32_t)(i % 2));
    }
    WAIT(c_writes_done, first, "six acknowledged writes");
    say(d,
        "6 puts on keys k0, k1 (two forwarded by a follower) commit at "
        "index %llu",
        U(bs_raft_committed(l->r)));
    struct bs_sim_node *f1 = follower(s, 0);
    uint64_t r0 = bs_sim__read(s, f1, 0, false);
    uint64_t r1 = bs_sim__read(s, f1, 1, false);
    WAIT(c_read_done, r0, "a read");
    WAIT(c_read_done, r1, "a read");
    say(d,
        "linearizable reads at follower n%llu (ReadIndex): k0 = %llu, "
        "k1 = %llu",
        U(f1->id), U(s->reads[r0].value), U(s->reads[r1].value));

    /* Partition the leader with one follower. */
    bool side[BS_SIM_MAX_IDS + 1] = {false};
    struct bs_sim_node *buddy = follower(s, 0);
    side[l->id] = side[buddy->id] = true;
    bs_sim__partition(s, side, false);
    s->st.faults++;
    uint64_t old_term = bs_raft_term(l->r);
    struct bs_sim_node *old = l;
    say(d,
        "partition: {n%llu, n%llu} | the other three; the leader is in "
        "the minority",
        U(l->id), U(buddy->id));
    uint64_t w_lost = bs_sim__write(s, old, 0);
    uint64_t r_lost = bs_sim__read(s, old, 0, false);
    WAIT(c_leader_after, old_term, "an election in the majority");
    l = bs_sim__leader(s);
    say(d, "n%llu wins term %llu in the majority; n%llu is now %s", U(l->id),
        U(bs_raft_term(l->r)), U(old->id),
        bs_raft_role_name(bs_raft_role(old->r)));
    uint64_t w = bs_sim__write(s, l, 0);
    WAIT(c_write_done, w, "a write in the majority");
    if (s->writes[w_lost].state == BS_SIM_DONE ||
        (r_lost && s->reads[r_lost].state == BS_SIM_DONE)) {
        bs_sim__fail(s, "demo", "the minority answered a client");
        return;
    }
    say(d,
        "put(k0, %llu) via n%llu commits; put(k0, %llu) and a read sent "
        "to n%llu get no answer",
        U(w), U(l->id), U(w_lost), U(old->id));
    bs_sim__net_heal(&s->net);
    WAIT(c_follows, old->id, "the old leader rejoining");
    say(d,
        "the partition heals: n%llu follows n%llu in term %llu and its "
        "uncommitted entry is overwritten",
        U(old->id), U(l->id), U(bs_raft_term(l->r)));

    /* Crash a follower, move on without it, compact, bring it back. */
    struct bs_sim_node *c = follower(s, old->id);
    bs_sim__node_crash(s, c);
    s->st.faults++;
    c->down_until = UINT64_MAX;
    say(d,
        "n%llu crashes: its persisted log survives, its state machine "
        "does not",
        U(c->id));
    first = s->n_writes + 1;
    for (int i = 0; i < 6; i++)
        bs_sim__write(s, l, (uint32_t)(i % 2));
    WAIT(c_writes_done, first, "writes without the crashed node");
    say(d, "6 more puts commit with 4 of 5 voters (commit index %llu)",
        U(bs_raft_committed(l->r)));
    bs_sim__node_snapshot(s, l, 0);
    say(d,
        "n%llu snapshots its state machine at index %llu and compacts "
        "its log",
        U(l->id), U(l->applied));
    uint64_t installs = c->installs;
    bs_sim__node_start(s, c);
    WAIT(c_caught_up, c->id, "the restarted node catching up");
    say(d, "n%llu restarts and catches up to index %llu %s", U(c->id),
        U(c->applied),
        c->installs > installs ? "through a snapshot from the leader"
                               : "from the leader's log");

    /* Membership: add a learner, promote it, remove a voter. */
    struct bs_sim_node *nw = bs_sim__new_node(s);
    if (!nw)
        return;
    cc_one(l, BS_RAFT_CC_TRANSITION_AUTO, BS_RAFT_CC_ADD_LEARNER, nw->id);
    bs_sim__node_ready(s, l);
    WAIT(c_learner, nw->id, "the learner catching up");
    say(d, "n%llu starts empty, joins as a learner and catches up %s",
        U(nw->id), nw->installs ? "from a snapshot" : "from the log");
    cc_one(l, BS_RAFT_CC_TRANSITION_JOINT_IMPLICIT, BS_RAFT_CC_ADD_VOTER,
           nw->id);
    bs_sim__node_ready(s, l);
    WAIT(c_voter, nw->id, "the promotion");
    voters_str(s, buf, sizeof buf);
    say(d, "n%llu promoted through joint consensus, left automatically: %s",
        U(nw->id), buf);
    struct bs_sim_node *gone = follower(s, nw->id);
    cc_one(l, BS_RAFT_CC_TRANSITION_AUTO, BS_RAFT_CC_REMOVE, gone->id);
    bs_sim__node_ready(s, l);
    WAIT(c_retired, gone->id, "the removal");
    voters_str(s, buf, sizeof buf);
    say(d, "n%llu removed in one step and shut down: %s", U(gone->id), buf);

    /* Leadership transfer to the newcomer. */
    l = bs_sim__leader(s);
    uint64_t from = l->id;
    bs_raft_transfer_leader(l->r, nw->id);
    s->st.transfers++;
    bs_sim__node_ready(s, l);
    WAIT(c_leader_is, nw->id, "the leadership transfer");
    say(d, "leadership transferred n%llu -> n%llu (TimeoutNow), term %llu",
        U(from), U(nw->id), U(bs_raft_term(nw->r)));

    /* The end: heal, final write and reads, the history. */
    s->now++;
    bs_sim__final(s);
    if (bs_sim__failed(s))
        return;
    l = bs_sim__leader(s);
    say(d, "final reads at n%llu: k0 = %llu, k1 = %llu", U(l->id),
        U(l->vals[0]), U(l->vals[1]));
    bs_sim__check_history(s);
    if (bs_sim__failed(s))
        return;
    uint64_t acked = 0, indet = 0, reads = 0;
    for (uint64_t i = 1; i <= s->n_writes; i++) {
        acked += s->writes[i].state == BS_SIM_DONE;
        indet += s->writes[i].state != BS_SIM_DONE;
    }
    for (uint64_t i = 1; i <= s->n_reads; i++)
        reads += s->reads[i].state == BS_SIM_DONE;
    fprintf(d->out,
            "\nhistory: %llu puts (%llu acknowledged, %llu never "
            "acknowledged) and %llu gets:\n"
            "  linearizable per key (Wing-Gong search), no acknowledged "
            "write lost.\n"
            "checked after every step: election safety, log matching, "
            "leader completeness,\n"
            "  state machine safety, the core's own invariants.\n",
            U(s->n_writes), U(acked), U(indet), U(reads));
#undef WAIT
}

int bs_sim_demo(FILE *out, bool trace, struct bs_sim_stats *st,
                struct bs_sim_failure *f)
{
    struct bs_sim *s = calloc(1, sizeof *s);
    if (!s)
        return BS_ENOMEM;
    struct bs_sim_options o;
    bs_sim_options_default(&o);
    o.seed = DEMO_SEED;
    o.steps = 0;
    o.out = out;
    o.trace = trace;
    fprintf(out,
            "Basalt deterministic simulator: one Raft group of 5 replicas "
            "on a virtual clock.\n"
            "Election timeout 10-20 ticks, heartbeat every tick, pre-vote "
            "and check-quorum on,\n"
            "ReadIndex reads; message latency 1-2 steps, 2 steps per tick. "
            "Seed %d.\n\n",
            DEMO_SEED);
    int rc = bs_sim__init(s, &o, f, demo_setup);
    if (rc == 0 && !bs_sim__failed(s)) {
        struct demo d = {s, out};
        script(&d);
    }
    if (s->oom && !f->failed)
        rc = BS_ENOMEM;
    s->st.seeds = 1;
    s->st.steps = s->now;
    if (f->failed) {
        fprintf(out, "\n");
        bs_sim_failure_print(f, &o, out);
    } else if (rc == 0) {
        fprintf(out, "\ntotals:\n");
        bs_sim_stats_print(&s->st, out);
    }
    if (st)
        *st = s->st;
    bs_sim__free(s);
    free(s);
    if (rc)
        return rc;
    return f->failed ? 1 : 0;
}
