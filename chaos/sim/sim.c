/*
 * sim.c - one simulated run: parameters drawn from the seed, the step loop,
 * the workload and fault schedule, the final heal and the liveness check.
 *
 * A step is one unit of virtual time; nodes tick every steps_per_tick
 * steps and a message takes lat_min..lat_max steps (or, as a spike, up to
 * two election timeouts). In each step, in this order:
 *
 *   1. random events, each with its per-run probability: a client write, a
 *      client read, a fault (symmetric, leader-isolating, asymmetric,
 *      bridge or one-link partition; crash; crash inside a ready; network
 *      weather: loss, duplication, latency spikes; heal), a membership
 *      change, a leadership transfer, a snapshot with compaction, a forced
 *      campaign;
 *   2. scheduled faults: in some runs a newly elected leader crashes or is
 *      cut off (with a few others) within three ticks, and an old leader is
 *      sometimes cut off just after handing over leadership;
 *   3. crashed nodes whose downtime is over restart;
 *   4. every steps_per_tick steps, every live node ticks (in id order);
 *   5. the network delivers every message due (in (time, send order));
 *   6. clients give up on operations past their deadline; removed nodes
 *      shut down; an expired partition heals;
 *   7. bs_raft_check() of every live node (the checks of check.c run after
 *      every ready cycle, inside steps 1-5).
 *
 * Clients send most operations to the node they last saw as leader (a
 * cached view, refreshed now and then, so it goes stale as a real client's
 * does) and the rest to any node; each register has at most
 * BS_SIM_KEY_CLIENTS operations pending.
 *
 * After the last step the run heals: partitions, loss and spikes end,
 * crashed nodes restart, and within 20 maximal election timeouts a leader
 * must commit a final write and answer a linearizable read of every
 * register. Then the whole history is checked.
 *
 * Run parameters never depend on --steps, so a failure at step k replays
 * with any step count >= k (the binary prints the exact command anyway).
 * With config faults set (the self-test) the draw leans towards the
 * patterns that expose them: learners, short-lived leaders, one-entry
 * messages.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

#define U(x) ((unsigned long long)(x))

/* ---------------------------------------------------------- reporting */

void bs_sim__trace(struct bs_sim *s, const char *fmt, ...)
{
    if (!s->opt.trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(s->out, "%7llu  ", U(s->now));
    vfprintf(s->out, fmt, ap);
    fputc('\n', s->out);
    va_end(ap);
}

void bs_sim__fail(struct bs_sim *s, const char *invariant, const char *fmt, ...)
{
    if (s->fail->failed)
        return;
    s->fail->failed = true;
    s->fail->seed = s->opt.seed;
    s->fail->step = s->now;
    snprintf(s->fail->invariant, sizeof s->fail->invariant, "%s", invariant);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail->detail, sizeof s->fail->detail, fmt, ap);
    va_end(ap);
    bs_sim__trace(s, "VIOLATION %s: %s", invariant, s->fail->detail);
}

bool bs_sim__failed(const struct bs_sim *s)
{
    return s->fail->failed || s->oom;
}

/* ------------------------------------------------------------- helpers */

struct bs_sim_node *bs_sim__leader(struct bs_sim *s)
{
    struct bs_sim_node *best = NULL;
    for (uint64_t id = 1; id <= s->max_id; id++) {
        struct bs_sim_node *n = &s->nodes[id];
        if (n->state != BS_SIM_UP || bs_raft_role(n->r) != BS_RAFT_LEADER)
            continue;
        if (!best || bs_raft_term(n->r) > bs_raft_term(best->r))
            best = n;
    }
    return best;
}

static struct bs_sim_node *random_up(struct bs_sim *s)
{
    uint64_t ids[BS_SIM_MAX_IDS];
    size_t k = 0;
    for (uint64_t id = 1; id <= s->max_id; id++)
        if (s->nodes[id].state == BS_SIM_UP)
            ids[k++] = id;
    if (!k)
        return NULL;
    return &s->nodes[ids[bs_sim_rng_below(&s->rng, k)]];
}

/* The node a client talks to: mostly the leader as clients last saw it
 * (a cached view that may be stale, as a real client's is), else anyone. */
static struct bs_sim_node *client_node(struct bs_sim *s)
{
    struct bs_sim_node *c = s->client_lead ? &s->nodes[s->client_lead] : NULL;
    if (!c || c->state != BS_SIM_UP || bs_sim_rng_below(&s->rng, 20) == 0) {
        struct bs_sim_node *l = bs_sim__leader(s);
        s->client_lead = l ? l->id : 0;
        c = l;
    }
    if (c && bs_sim_rng_below(&s->rng, 10) < 6)
        return c;
    return random_up(s);
}

static uint64_t election_steps(const struct bs_sim *s)
{
    return (uint64_t)s->p.election_tick * s->p.steps_per_tick;
}

/* ---------------------------------------------------------- partitions */

/* Cuts every link between side A and the rest; with asym, only the links
 * from A to the rest (the rest hears nothing from A, A hears the rest). */
void bs_sim__partition(struct bs_sim *s, const bool *side_a, bool asym)
{
    bs_sim__net_heal(&s->net);
    for (uint64_t a = 1; a <= s->max_id; a++)
        for (uint64_t b = 1; b <= s->max_id; b++)
            if (side_a[a] && !side_a[b]) {
                s->net.cut[a][b] = true;
                if (!asym)
                    s->net.cut[b][a] = true;
            }
}

static void side_str(struct bs_sim *s, const bool *side, bool want, char *buf,
                     size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (uint64_t id = 1; id <= s->max_id && at < len; id++) {
        if (side[id] != want || s->nodes[id].state == BS_SIM_RETIRED ||
            s->nodes[id].state == BS_SIM_ABSENT)
            continue;
        int k = snprintf(buf + at, len - at, "%sn%llu", at ? "," : "", U(id));
        at += k > 0 ? (size_t)k : 0;
    }
}

static void fault_partition(struct bs_sim *s, int kind)
{
    bool side[BS_SIM_MAX_IDS + 1] = {false};
    char a[128], b[128];
    struct bs_sim_node *l = bs_sim__leader(s);
    switch (kind) {
    case 0: /* random symmetric split */
        for (uint64_t id = 1; id <= s->max_id; id++)
            side[id] = bs_sim_rng_below(&s->rng, 2);
        bs_sim__partition(s, side, false);
        side_str(s, side, true, a, sizeof a);
        side_str(s, side, false, b, sizeof b);
        bs_sim__trace(s, "fault: partition {%s} | {%s}", a, b);
        break;
    case 1: /* the leader, maybe with some others, in a minority */
        if (!l)
            return;
        side[l->id] = true;
        for (uint64_t id = 1; id <= s->max_id; id++)
            if (id != l->id && bs_sim_rng_below(&s->rng, 4) == 0)
                side[id] = true;
        bs_sim__partition(s, side, false);
        side_str(s, side, true, a, sizeof a);
        side_str(s, side, false, b, sizeof b);
        bs_sim__trace(s, "fault: leader partitioned {%s} | {%s}", a, b);
        break;
    case 2: { /* asymmetric: some nodes can send but not be heard, or the
                 reverse */
        for (uint64_t id = 1; id <= s->max_id; id++)
            side[id] = bs_sim_rng_below(&s->rng, 3) == 0;
        if (l && bs_sim_rng_below(&s->rng, 2))
            side[l->id] = true;
        bool deaf = bs_sim_rng_below(&s->rng, 2);
        if (deaf) /* side cannot hear the rest: cut rest -> side */
            for (uint64_t id = 1; id <= s->max_id; id++)
                side[id] = !side[id];
        bs_sim__partition(s, side, true);
        side_str(s, side, true, a, sizeof a);
        side_str(s, side, false, b, sizeof b);
        bs_sim__trace(s,
                      "fault: asymmetric partition, {%s} hears {%s} "
                      "but is not heard",
                      a, b);
        break;
    }
    case 3: { /* bridge: two halves that both see one node */
        uint64_t bridge = l && bs_sim_rng_below(&s->rng, 2)
                              ? l->id
                              : 1 + bs_sim_rng_below(&s->rng, s->max_id);
        for (uint64_t id = 1; id <= s->max_id; id++)
            side[id] = bs_sim_rng_below(&s->rng, 2);
        bs_sim__partition(s, side, false);
        for (uint64_t id = 1; id <= s->max_id; id++)
            s->net.cut[bridge][id] = s->net.cut[id][bridge] = false;
        side[bridge] = true;
        side_str(s, side, true, a, sizeof a);
        side_str(s, side, false, b, sizeof b);
        bs_sim__trace(s,
                      "fault: bridge partition {%s} | {%s}, n%llu sees "
                      "both",
                      a, b, U(bridge));
        break;
    }
    default: { /* one-way cut of a single link */
        uint64_t x = 1 + bs_sim_rng_below(&s->rng, s->max_id);
        uint64_t y = 1 + bs_sim_rng_below(&s->rng, s->max_id);
        if (l && bs_sim_rng_below(&s->rng, 2))
            x = l->id;
        if (x == y)
            return;
        s->net.cut[x][y] = true;
        bs_sim__trace(s,
                      "fault: n%llu hears n%llu but n%llu does not hear "
                      "n%llu",
                      U(x), U(y), U(y), U(x));
        break;
    }
    }
    s->partition_until =
        s->now + 10 + bs_sim_rng_below(&s->rng, 8 * election_steps(s));
}

static void fault_weather(struct bs_sim *s)
{
    struct bs_sim_net *net = &s->net;
    uint64_t spt = (uint64_t)s->p.steps_per_tick;
    net->lat_min = 1;
    net->lat_max = (uint32_t)bs_sim_rng_range(&s->rng, 1, 2 * spt);
    net->spike_max = (uint32_t)bs_sim_rng_range(&s->rng, net->lat_max,
                                                2 * election_steps(s));
    net->drop_ppm = bs_sim_rng_below(&s->rng, 3) == 0
                        ? 0
                        : (uint32_t)bs_sim_rng_below(&s->rng, 150000);
    net->dup_ppm = (uint32_t)bs_sim_rng_below(&s->rng, 40000);
    net->spike_ppm = (uint32_t)bs_sim_rng_below(&s->rng, 60000);
}

static void fault(struct bs_sim *s)
{
    int kind = (int)bs_sim_rng_below(&s->rng, 10);
    s->st.faults++;
    if (kind <= 4) {
        fault_partition(s, kind);
    } else if (kind <= 7) {
        /* Crash someone, the leader half of the time. */
        struct bs_sim_node *n = bs_sim__leader(s);
        if (!n || bs_sim_rng_below(&s->rng, 2))
            n = random_up(s);
        if (!n)
            return;
        if (kind == 7) {
            n->crash_in_ready = true;
            bs_sim__trace(s, "fault: n%llu will crash inside its next ready",
                          U(n->id));
        } else {
            bs_sim__node_crash(s, n);
            bs_sim__trace(s, "fault: n%llu crashes (restart at step %llu)",
                          U(n->id), U(n->down_until));
        }
    } else if (kind == 8) {
        fault_weather(s);
        bs_sim__trace(s,
                      "fault: network weather: latency %u..%u, spikes "
                      "%u ppm up to %u, drop %u ppm, dup %u ppm",
                      s->net.lat_min, s->net.lat_max, s->net.spike_ppm,
                      s->net.spike_max, s->net.drop_ppm, s->net.dup_ppm);
    } else {
        bs_sim__net_heal(&s->net);
        s->partition_until = 0;
        bs_sim__trace(s, "fault: partitions heal");
    }
}

/* ---------------------------------------------------- membership, etc. */

struct bs_sim_node *bs_sim__new_node(struct bs_sim *s)
{
    if (s->max_id >= BS_SIM_MAX_IDS)
        return NULL;
    struct bs_sim_node *n = &s->nodes[++s->max_id];
    n->id = s->max_id;
    if (bs_sim__node_boot(s, n, NULL) != 0) {
        s->oom = s->oom || !bs_sim__failed(s);
        return NULL;
    }
    bs_sim__trace(s, "n%llu starts empty, waiting to be added", U(n->id));
    return n;
}

static uint64_t pick(struct bs_sim *s, const uint64_t *v, uint32_t n,
                     uint64_t avoid)
{
    uint64_t c[BS_RAFT_MAX_MEMBERS];
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (v[i] != avoid)
            c[k++] = v[i];
    return k ? c[bs_sim_rng_below(&s->rng, k)] : 0;
}

static const char *cc_type_name(int t)
{
    return t == BS_RAFT_CC_ADD_VOTER     ? "add-voter"
           : t == BS_RAFT_CC_ADD_LEARNER ? "add-learner"
                                         : "remove";
}

static void propose_cc(struct bs_sim *s, struct bs_sim_node *at,
                       struct bs_raft_conf_change *cc)
{
    static const char *const tr[] = {"auto", "joint-implicit",
                                     "joint-explicit"};
    char buf[160];
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < cc->n_changes && len < sizeof buf; i++) {
        int k = snprintf(buf + len, sizeof buf - len, " %s n%llu",
                         cc_type_name(cc->changes[i].type),
                         U(cc->changes[i].node_id));
        len += k > 0 ? (size_t)k : 0;
    }
    int rc = bs_raft_propose_conf_change(at->r, cc);
    bs_sim__trace(s, "propose conf change at n%llu (%s):%s%s%s", U(at->id),
                  tr[cc->transition % 3], cc->n_changes ? buf : " leave joint",
                  rc ? ": " : "", rc ? bs_err_name(rc) : "");
    bs_sim__node_ready(s, at);
}

static void conf_change(struct bs_sim *s)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    if (!l)
        return;
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(l->r, &cs);
    struct bs_sim_node *at = l;
    if (bs_sim_rng_below(&s->rng, 5) == 0) {
        at = random_up(s);
        if (!at)
            return;
    }
    struct bs_raft_conf_change cc;
    memset(&cc, 0, sizeof cc);
    cc.transition = (uint8_t)bs_sim_rng_below(&s->rng, 3);
    if (bs_sim__conf_joint(&cs)) {
        if (!cs.auto_leave)
            propose_cc(s, at, &cc); /* leave the joint state */
        return;
    }
    uint32_t nv = cs.n_voters, nl = cs.n_learners;
    bool room = s->max_id < BS_SIM_MAX_IDS && nv + nl < 9;
    int kind = (int)bs_sim_rng_below(&s->rng, 8);
    struct bs_sim_node *fresh = NULL;
    switch (kind) {
    case 0: /* add a learner */
    case 1: /* add a voter */
        if (!room || (kind == 1 && nv >= 7))
            return;
        fresh = bs_sim__new_node(s);
        if (!fresh)
            return;
        cc.changes[cc.n_changes++] = (struct bs_raft_cc_single){
            kind == 0 ? BS_RAFT_CC_ADD_LEARNER : BS_RAFT_CC_ADD_VOTER,
            fresh->id};
        break;
    case 2: /* promote a learner */
        if (!nl || nv >= 7)
            return;
        cc.changes[cc.n_changes++] = (struct bs_raft_cc_single){
            BS_RAFT_CC_ADD_VOTER, pick(s, cs.learners, nl, 0)};
        break;
    case 3: /* demote a voter (maybe the leader) */
        if (nv <= 3)
            return;
        cc.changes[cc.n_changes++] = (struct bs_raft_cc_single){
            BS_RAFT_CC_ADD_LEARNER, pick(s, cs.voters, nv, 0)};
        break;
    case 4: /* remove a learner */
        if (!nl)
            return;
        cc.changes[cc.n_changes++] = (struct bs_raft_cc_single){
            BS_RAFT_CC_REMOVE, pick(s, cs.learners, nl, 0)};
        break;
    case 5: /* remove a voter, the leader a third of the time */
        if (nv <= 3)
            return;
        cc.changes[cc.n_changes++] = (struct bs_raft_cc_single){
            BS_RAFT_CC_REMOVE, bs_sim_rng_below(&s->rng, 3) == 0
                                   ? l->id
                                   : pick(s, cs.voters, nv, 0)};
        break;
    case 6: { /* replace a voter, the leader a third of the time */
        if (!room)
            return;
        uint64_t old = bs_sim_rng_below(&s->rng, 3) == 0
                           ? l->id
                           : pick(s, cs.voters, nv, 0);
        fresh = bs_sim__new_node(s);
        if (!fresh)
            return;
        cc.changes[cc.n_changes++] =
            (struct bs_raft_cc_single){BS_RAFT_CC_ADD_VOTER, fresh->id};
        cc.changes[cc.n_changes++] =
            (struct bs_raft_cc_single){BS_RAFT_CC_REMOVE, old};
        break;
    }
    default: /* swap roles: promote a learner, demote a voter */
        if (!nl || nv < 3)
            return;
        cc.changes[cc.n_changes++] = (struct bs_raft_cc_single){
            BS_RAFT_CC_ADD_VOTER, pick(s, cs.learners, nl, 0)};
        cc.changes[cc.n_changes++] = (struct bs_raft_cc_single){
            BS_RAFT_CC_ADD_LEARNER, pick(s, cs.voters, nv, 0)};
        break;
    }
    if (fresh && at->id != l->id && bs_sim_rng_below(&s->rng, 2))
        at = l;
    propose_cc(s, at, &cc);
}

static void transfer(struct bs_sim *s)
{
    struct bs_sim_node *l = bs_sim__leader(s);
    if (!l)
        return;
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(l->r, &cs);
    uint64_t to = bs_sim_rng_below(&s->rng, 8) == 0 && cs.n_learners
                      ? pick(s, cs.learners, cs.n_learners, 0)
                      : pick(s, cs.voters, cs.n_voters, l->id);
    if (!to)
        return;
    struct bs_sim_node *at = l;
    if (bs_sim_rng_below(&s->rng, 5) == 0 && s->nodes[to].state == BS_SIM_UP)
        at = &s->nodes[to]; /* asked at the transferee: forwarded */
    bs_raft_transfer_leader(at->r, to);
    s->st.transfers++;
    /* Sometimes the old leader loses touch right after handing over
     * (while clients may still read from it). */
    if (!l->kill_at && bs_sim_rng_below(&s->rng, 3) == 0) {
        l->kill_at = s->now + bs_sim_rng_below(
                                  &s->rng, 4 * (uint64_t)s->p.steps_per_tick);
        l->kill_isolate = true;
    }
    bs_sim__trace(s, "transfer leadership n%llu -> n%llu (asked at n%llu)",
                  U(l->id), U(to), U(at->id));
    bs_sim__node_ready(s, at);
}

static void events(struct bs_sim *s)
{
    const struct bs_sim_params *p = &s->p;
    if (bs_sim_rng_chance(&s->rng, p->write_ppm)) {
        struct bs_sim_node *n = client_node(s);
        uint32_t key =
            s->active[bs_sim_rng_below(&s->rng, (uint64_t)p->n_active_keys)];
        if (n && s->keys[key].n < BS_SIM_KEY_CAP &&
            s->keys[key].pending < BS_SIM_KEY_CLIENTS)
            bs_sim__write(s, n, key);
    }
    if (bs_sim_rng_chance(&s->rng, p->read_ppm)) {
        struct bs_sim_node *n = client_node(s);
        uint32_t key =
            s->active[bs_sim_rng_below(&s->rng, (uint64_t)p->n_active_keys)];
        if (n && s->keys[key].n < BS_SIM_KEY_CAP &&
            s->keys[key].pending < BS_SIM_KEY_CLIENTS)
            bs_sim__read(s, n, key, false);
    }
    if (bs_sim_rng_chance(&s->rng, p->fault_ppm))
        fault(s);
    if (bs_sim_rng_chance(&s->rng, p->member_ppm))
        conf_change(s);
    if (bs_sim_rng_chance(&s->rng, p->transfer_ppm))
        transfer(s);
    if (bs_sim_rng_chance(&s->rng, p->snap_ppm)) {
        struct bs_sim_node *n = random_up(s);
        if (n)
            bs_sim__node_snapshot(s, n, -1);
    }
    if (bs_sim_rng_chance(&s->rng, p->campaign_ppm)) {
        struct bs_sim_node *n = random_up(s);
        if (n) {
            bs_sim__trace(s, "n%llu is told to campaign", U(n->id));
            bs_raft_campaign(n->r);
            bs_sim__node_ready(s, n);
        }
    }
}

/* --------------------------------------------------------------- steps */

void bs_sim__step(struct bs_sim *s, bool with_events)
{
    if (with_events && !s->healing)
        events(s);
    for (uint64_t id = 1; id <= s->max_id && !bs_sim__failed(s); id++) {
        struct bs_sim_node *n = &s->nodes[id];
        if (!n->kill_at || s->now < n->kill_at)
            continue;
        n->kill_at = 0;
        if (n->state != BS_SIM_UP || s->healing) {
            n->kill_isolate = false;
            continue;
        }
        s->st.faults++;
        if (n->kill_isolate || bs_sim_rng_below(&s->rng, 2) == 0) {
            /* Cut off, maybe with a few others: its first entries reach
             * at most that minority. */
            bool side[BS_SIM_MAX_IDS + 1] = {false};
            char a[128];
            side[id] = true;
            for (uint64_t o = 1; o <= s->max_id; o++)
                if (bs_sim_rng_below(&s->rng, 4) == 0)
                    side[o] = true;
            bs_sim__partition(s, side, false);
            s->partition_until =
                s->now + 1 + bs_sim_rng_below(&s->rng, 4 * election_steps(s));
            side_str(s, side, true, a, sizeof a);
            bs_sim__trace(s, "fault: %s n%llu is cut off with {%s}",
                          n->kill_isolate ? "old leader" : "new leader", U(id),
                          a);
            n->kill_isolate = false;
        } else {
            bs_sim__node_crash(s, n);
            bs_sim__trace(s,
                          "fault: new leader n%llu crashes (restart at "
                          "step %llu)",
                          U(id), U(n->down_until));
        }
    }
    for (uint64_t id = 1; id <= s->max_id && !bs_sim__failed(s); id++) {
        struct bs_sim_node *n = &s->nodes[id];
        if (n->state == BS_SIM_DOWN && s->now >= n->down_until &&
            !n->retire_at) {
            bs_sim__trace(s, "n%llu restarts", U(id));
            bs_sim__node_start(s, n);
        }
    }
    if (s->now % (uint64_t)s->p.steps_per_tick == 0) {
        for (uint64_t id = 1; id <= s->max_id && !bs_sim__failed(s); id++) {
            struct bs_sim_node *n = &s->nodes[id];
            if (n->state != BS_SIM_UP)
                continue;
            bs_raft_tick(n->r);
            bs_sim__node_ready(s, n);
        }
    }
    struct bs_sim_packet pk;
    while (!bs_sim__failed(s) && bs_sim__net_pop(&s->net, s->now, &pk)) {
        bs_sim__deliver(s, &pk);
        bs_raft_msg_free(&pk.m);
    }
    bs_sim__hist_expire(s);
    for (uint64_t id = 1; id <= s->max_id && !bs_sim__failed(s); id++) {
        struct bs_sim_node *n = &s->nodes[id];
        if (n->retire_at && s->now >= n->retire_at &&
            n->state != BS_SIM_RETIRED)
            bs_sim__node_retire(s, n);
    }
    if (s->partition_until && s->now >= s->partition_until) {
        bs_sim__net_heal(&s->net);
        s->partition_until = 0;
        bs_sim__trace(s, "partitions heal");
    }
    for (uint64_t id = 1; id <= s->max_id && !bs_sim__failed(s); id++) {
        struct bs_sim_node *n = &s->nodes[id];
        if (n->state != BS_SIM_UP || s->opt.no_core_check)
            continue;
        const char *e = bs_raft_check(n->r);
        if (e)
            bs_sim__fail(s, "core-check", "n%llu: bs_raft_check: %s", U(id), e);
    }
}

/* ----------------------------------------------------------- the setup */

static void draw_params(struct bs_sim *s)
{
    struct bs_sim_params *p = &s->p;
    struct bs_sim_rng *g = &s->rng;
    p->voters = s->opt.nodes ? s->opt.nodes : (int)bs_sim_rng_range(g, 3, 7);
    p->learners =
        bs_sim_rng_below(g, 5) < 2 ? (int)bs_sim_rng_range(g, 1, 2) : 0;
    p->election_tick = (int)bs_sim_rng_range(g, 5, 12);
    p->heartbeat_tick = (int)bs_sim_rng_range(g, 1, 2);
    p->steps_per_tick = (int)bs_sim_rng_range(g, 2, 4);
    p->read_only =
        bs_sim_rng_below(g, 2) ? BS_RAFT_READ_LEASE_BASED : BS_RAFT_READ_SAFE;
    p->check_quorum =
        p->read_only == BS_RAFT_READ_LEASE_BASED || bs_sim_rng_below(g, 2);
    p->pre_vote = bs_sim_rng_below(g, 2);
    static const uint64_t sizes[] = {0, 64, 512, 1 << 20};
    p->max_size_per_msg = sizes[bs_sim_rng_below(g, 4)];
    static const int inflight[] = {1, 4, 256};
    p->max_inflight = inflight[bs_sim_rng_below(g, 3)];
    p->max_uncommitted = bs_sim_rng_below(g, 5) == 0 ? 2048 : 0;
    p->no_forwarding = bs_sim_rng_below(g, 10) == 0;
    p->n_active_keys = (int)bs_sim_rng_range(g, 1, BS_SIM_MAX_ACTIVE);
    p->write_ppm = (uint32_t)bs_sim_rng_range(g, 20000, 200000);
    p->read_ppm = (uint32_t)bs_sim_rng_range(g, 20000, 200000);
    p->fault_ppm = (uint32_t)bs_sim_rng_range(g, 2000, 15000);
    p->member_ppm = (uint32_t)bs_sim_rng_range(g, 500, 6000);
    p->transfer_ppm = (uint32_t)bs_sim_rng_range(g, 200, 3000);
    p->snap_ppm = (uint32_t)bs_sim_rng_range(g, 1000, 20000);
    p->campaign_ppm = (uint32_t)bs_sim_rng_below(g, 1500);
    p->max_pad = bs_sim_rng_below(g, 3) == 0 ? 200 : 0;
    p->kill_leader_ppm = bs_sim_rng_below(g, 3) == 0
                             ? (uint32_t)bs_sim_rng_range(g, 200000, 700000)
                             : 0;
    if (s->opt.faults) {
        /* Self-test: lean on the patterns that expose a broken rule:
         * learners (their votes), short-lived leaders and one-entry
         * messages (figure 3.7: an old entry replicated before the
         * leader's own), more partitions and crashes. */
        if (p->learners == 0)
            p->learners = 1;
        p->kill_leader_ppm = (uint32_t)bs_sim_rng_range(g, 300000, 800000);
        if (bs_sim_rng_below(g, 2)) {
            p->max_size_per_msg = 0;
            p->max_inflight = 1;
        }
        p->fault_ppm *= 2;
    }
    uint64_t et = (uint64_t)p->election_tick * p->steps_per_tick;
    p->op_timeout = 6 * et;
    /* Restarts may be immediate: the core keeps a restarted node from
     * voting inside a lease it cannot remember (lease_guard). */
    p->min_down = 1;
    fault_weather(s);
}

void bs_sim_options_default(struct bs_sim_options *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->steps = 3000;
}

int bs_sim__init(struct bs_sim *s, const struct bs_sim_options *o,
                 struct bs_sim_failure *f, void (*setup)(struct bs_sim *s))
{
    memset(f, 0, sizeof *f);
    s->opt = *o;
    s->out = o->out ? o->out : stdout;
    s->fail = f;
    bs_sim_rng_seed(&s->rng, o->seed);
    draw_params(s);
    if (setup)
        setup(s);
    for (int i = 0; i < s->p.n_active_keys; i++)
        bs_sim__new_key(s, i);
    const struct bs_sim_params *p = &s->p;
    struct bs_raft_conf_state cs;
    memset(&cs, 0, sizeof cs);
    for (int i = 0; i < p->voters; i++)
        cs.voters[cs.n_voters++] = (uint64_t)i + 1;
    for (int i = 0; i < p->learners; i++)
        cs.learners[cs.n_learners++] = (uint64_t)(p->voters + i) + 1;
    s->max_id = (uint64_t)(p->voters + p->learners);
    char buf[256];
    bs_sim__conf_str(&cs, buf, sizeof buf);
    bs_sim__trace(s,
                  "seed %llu: %s; election %d ticks, heartbeat %d, %d "
                  "steps/tick; %s reads, check_quorum %s, pre_vote %s; "
                  "max msg %llu bytes, inflight %d; %d keys",
                  U(o->seed), buf, p->election_tick, p->heartbeat_tick,
                  p->steps_per_tick,
                  p->read_only == BS_RAFT_READ_LEASE_BASED ? "lease" : "safe",
                  p->check_quorum ? "on" : "off", p->pre_vote ? "on" : "off",
                  U(p->max_size_per_msg), p->max_inflight, p->n_active_keys);
    for (uint64_t id = 1; id <= s->max_id; id++) {
        s->nodes[id].id = id;
        int rc = bs_sim__node_boot(s, &s->nodes[id], &cs);
        if (rc != 0)
            return bs_sim__failed(s) ? 0 : rc;
    }
    return 0;
}

void bs_sim__free(struct bs_sim *s)
{
    for (uint64_t id = 1; id <= BS_SIM_MAX_IDS; id++)
        bs_sim__node_free(&s->nodes[id]);
    bs_sim__net_free(&s->net);
    free(s->leader_of_term);
    free(s->idx);
    free(s->lm);
    free(s->writes);
    free(s->reads);
    free(s->pend_w);
    free(s->pend_r);
    for (int k = 0; k < BS_SIM_MAX_KEYS; k++)
        free(s->keys[k].ops);
}

/* ------------------------------------------------------ heal, liveness */

int bs_sim__final(struct bs_sim *s)
{
    s->healing = true;
    bs_sim__net_heal(&s->net);
    s->partition_until = 0;
    s->net.drop_ppm = s->net.dup_ppm = s->net.spike_ppm = 0;
    for (uint64_t id = 1; id <= s->max_id; id++) {
        struct bs_sim_node *n = &s->nodes[id];
        n->crash_in_ready = false;
        if (n->state == BS_SIM_DOWN && !n->retire_at)
            n->down_until = s->now;
    }
    bs_sim__trace(s, "heal: no more faults, crashed nodes restart");

    uint64_t et = election_steps(s);
    uint64_t bound = 20 * 2 * et; /* 20 longest election timeouts */
    uint64_t end = s->now + bound;
    uint64_t w = 0, w_at = 0, leave_at = 0;
    uint64_t fin[BS_SIM_MAX_KEYS] = {0}, fin_at[BS_SIM_MAX_KEYS] = {0};
    bool wrote = false;
    while (s->now < end) {
        s->now++;
        bs_sim__step(s, false);
        if (bs_sim__failed(s))
            return 0;
        struct bs_sim_node *l = bs_sim__leader(s);
        if (!l)
            continue;
        struct bs_raft_conf_state cs;
        bs_raft_conf_state(l->r, &cs);
        if (bs_sim__conf_joint(&cs) && !cs.auto_leave && s->now >= leave_at) {
            struct bs_raft_conf_change cc;
            memset(&cc, 0, sizeof cc);
            propose_cc(s, l, &cc);
            leave_at = s->now + et;
        }
        if (!wrote) {
            if (w && s->writes[w].state == BS_SIM_DONE) {
                wrote = true;
                bs_sim__trace(s, "final write acknowledged");
            } else if (!w || s->writes[w].state != BS_SIM_PENDING ||
                       s->now - w_at >= 2 * et) {
                w = bs_sim__write(s, l, s->active[0]);
                w_at = s->now;
            }
            continue;
        }
        bool all = true;
        for (uint32_t k = 0; k < BS_SIM_MAX_KEYS; k++) {
            if (!s->keys[k].used)
                continue;
            if (fin[k] && s->reads[fin[k]].state == BS_SIM_DONE)
                continue;
            all = false;
            if (!fin[k] || s->reads[fin[k]].state != BS_SIM_PENDING ||
                s->now - fin_at[k] >= 2 * et) {
                fin[k] = bs_sim__read(s, l, k, true);
                fin_at[k] = s->now;
            }
        }
        if (bs_sim__failed(s))
            return 0;
        if (all) {
            bs_sim__trace(s, "final reads served: the cluster is live");
            return 0;
        }
    }
    struct bs_sim_node *l = bs_sim__leader(s);
    if (l && s->opt.trace) {
        struct bs_raft_progress_info pi[BS_RAFT_MAX_MEMBERS];
        size_t np = bs_raft_progress(l->r, pi, BS_RAFT_MAX_MEMBERS);
        for (size_t i = 0; i < np && i < BS_RAFT_MAX_MEMBERS; i++)
            bs_sim__trace(s,
                          "leader n%llu: n%llu match %llu next %llu "
                          "state %u%s%s",
                          U(l->id), U(pi[i].id), U(pi[i].match), U(pi[i].next),
                          pi[i].state, pi[i].learner ? " learner" : "",
                          pi[i].recent_active ? " active" : "");
    }
    bs_sim__fail(s, "liveness",
                 "%llu steps (20 election timeouts) after healing: %s",
                 U(bound),
                 !l       ? "no leader"
                 : !wrote ? "the final write was not committed"
                          : "the final reads were not answered");
    return 0;
}

/* ------------------------------------------------------------------ run */

static void stats_add(struct bs_sim_stats *a, const struct bs_sim_stats *b)
{
    a->seeds += b->seeds;
    a->steps += b->steps;
    a->elections += b->elections;
    a->commits += b->commits;
    a->writes += b->writes;
    a->writes_acked += b->writes_acked;
    a->reads_checked += b->reads_checked;
    a->faults += b->faults;
    a->crashes += b->crashes;
    a->conf_changes += b->conf_changes;
    a->transfers += b->transfers;
    a->snapshots += b->snapshots;
    a->msgs_sent += b->msgs_sent;
    a->msgs_dropped += b->msgs_dropped;
    a->msgs_duplicated += b->msgs_duplicated;
    a->lin_inconclusive += b->lin_inconclusive;
}

int bs_sim_run(const struct bs_sim_options *o, struct bs_sim_stats *st,
               struct bs_sim_failure *f)
{
    struct bs_sim *s = calloc(1, sizeof *s);
    if (!s)
        return BS_ENOMEM;
    int rc = bs_sim__init(s, o, f, NULL);
    for (s->now = 1; rc == 0 && s->now <= o->steps && !bs_sim__failed(s);
         s->now++)
        bs_sim__step(s, true);
    if (rc == 0 && !bs_sim__failed(s)) {
        s->now = o->steps;
        bs_sim__final(s);
    }
    if (rc == 0 && !bs_sim__failed(s))
        bs_sim__check_history(s);
    if (s->oom && !f->failed)
        rc = BS_ENOMEM;
    s->st.seeds = 1;
    s->st.steps = s->now;
    if (st)
        stats_add(st, &s->st);
    bs_sim__free(s);
    free(s);
    if (rc)
        return rc;
    return f->failed ? 1 : 0;
}

void bs_sim_stats_print(const struct bs_sim_stats *st, FILE *out)
{
    fprintf(out,
            "  seeds %llu, steps %llu\n"
            "  elections %llu, entries committed %llu, conf changes %llu, "
            "transfers %llu, snapshots %llu\n"
            "  writes %llu (acknowledged %llu), reads checked %llu\n"
            "  faults injected %llu (crashes %llu); messages %llu sent, "
            "%llu lost, %llu duplicated\n",
            U(st->seeds), U(st->steps), U(st->elections), U(st->commits),
            U(st->conf_changes), U(st->transfers), U(st->snapshots),
            U(st->writes), U(st->writes_acked), U(st->reads_checked),
            U(st->faults), U(st->crashes), U(st->msgs_sent),
            U(st->msgs_dropped), U(st->msgs_duplicated));
    if (st->lin_inconclusive)
        fprintf(out, "  WARNING: %llu histories exceeded the search budget\n",
                U(st->lin_inconclusive));
}

void bs_sim_failure_print(const struct bs_sim_failure *f,
                          const struct bs_sim_options *o, FILE *out)
{
    fprintf(out, "FAIL seed=%llu step=%llu invariant=%s\n  %s\n", U(f->seed),
            U(f->step), f->invariant, f->detail);
    fprintf(out, "  replay: bs_sim --seed %llu --steps %llu", U(f->seed),
            U(o->steps));
    if (o->nodes)
        fprintf(out, " --nodes %d", o->nodes);
    if (o->faults)
        fprintf(out, " --faults 0x%x", o->faults);
    fprintf(out, " --trace\n");
}
