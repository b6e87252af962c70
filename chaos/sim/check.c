/*
 * check.c - the simulator's checkers.
 *
 * Raft's safety properties (thesis figure 3.2), checked as the run goes:
 *
 *   1. Election safety: at most one leader per term over the whole run
 *      (leader_of_term[], checked whenever a node is seen as leader).
 *   2. Log matching: two persisted entries with the same index and term
 *      are the same entry and follow the same term at index - 1. Checked
 *      when a ready's entries are persisted: every (index, term) ever
 *      persisted anywhere is recorded with its hash and its predecessor's
 *      term; by induction on the index, equal predecessors give equal
 *      prefixes. Terms never decrease along a log.
 *   3. Leader completeness: a leader of term t holds every entry committed
 *      in a term before t. The term in which an entry was committed is not
 *      observable, so each committed index records the lowest current term
 *      of a node seen to have committed it (an upper bound of the commit's
 *      term); a leader of a higher term must hold the entry.
 *   4. State machine safety: no two nodes apply different entries at one
 *      index; a committed index never changes its term; snapshots at one
 *      index carry the same image and agree with the committed term; every
 *      node reaches the same configuration by applying a conf change entry.
 *   5. Protected commits (the step of the proof of leader completeness,
 *      thesis 3.6.3, that figure 3.7 is about): when a leader advances its
 *      commit index to c, no voter whose persisted log lacks entry c may
 *      be able to win an election on log grounds, i.e. the voters whose
 *      logs are no more up to date than its own must not form a quorum of
 *      the leader's configuration. In correct Raft every holder of c is
 *      strictly more up to date than any log without it; committing an
 *      old-term entry by counting breaks this at once, long before some
 *      later election happens to exploit it.
 *
 * The client history: a read that returns a value nobody wrote to its key,
 * or a value that an acknowledged write had already overwritten before the
 * read began, fails at once (a cheap subset of linearizability); at the end
 * each register's whole history goes through bs_sim_lin_check(), and every
 * acknowledged write must survive in the final state (or be overwritten by
 * a write that did not precede it).
 */
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

#define U(x) ((unsigned long long)(x))

struct bs_sim_idx *bs_sim__idx(struct bs_sim *s, uint64_t index)
{
    if (index >= s->n_idx) {
        size_t n = s->n_idx ? s->n_idx : 1024;
        while (n <= index)
            n *= 2;
        struct bs_sim_idx *ni = realloc(s->idx, n * sizeof *ni);
        if (!ni) {
            s->oom = 1;
            return NULL;
        }
        memset(ni + s->n_idx, 0, (n - s->n_idx) * sizeof *ni);
        for (size_t i = s->n_idx; i < n; i++)
            ni[i].lm = -1;
        s->idx = ni;
        s->n_idx = n;
    }
    return &s->idx[index];
}

static uint64_t entry_hash(const struct bs_raft_entry *e)
{
    uint64_t h = bs_sim__hash(&e->type, 1, 0);
    uint32_t len = e->len;
    h = bs_sim__hash(&len, sizeof len, h);
    if (e->len)
        h = bs_sim__hash(e->data, e->len, h);
    return h;
}

/* ------------------------------------------------------ raft invariants */

static void leader_completeness(struct bs_sim *s, struct bs_sim_node *n,
                                uint64_t term)
{
    for (uint64_t i = 1; i <= s->gcommit && i < s->n_idx; i++) {
        struct bs_sim_idx *x = &s->idx[i];
        if (x->cterm == 0 || x->cobs_term >= term)
            continue;
        uint64_t t = 0;
        int rc = bs_raft_log_term(n->r, i, &t);
        if (rc == BS_ECOMPACTED)
            continue;
        if (rc != 0) {
            bs_sim__fail(s, "leader-completeness",
                         "n%llu became leader of term %llu without entry "
                         "%llu (term %llu), committed by term %llu "
                         "(its log ends at %llu)",
                         U(n->id), U(term), U(i), U(x->cterm), U(x->cobs_term),
                         U(bs_raft_last_index(n->r)));
            return;
        }
        if (t != x->cterm) {
            bs_sim__fail(s, "leader-completeness",
                         "n%llu became leader of term %llu with term %llu "
                         "at index %llu, where term %llu was committed by "
                         "term %llu",
                         U(n->id), U(term), U(t), U(i), U(x->cterm),
                         U(x->cobs_term));
            return;
        }
    }
}

static void last_of(struct bs_sim_node *x, uint64_t *li, uint64_t *lt)
{
    struct bs_raft_storage st = bs_raft_mem_storage_iface(x->ms);
    *li = st.ops->last_index(st.ctx);
    *lt = 0;
    (void)st.ops->term(st.ctx, *li, lt);
}

static bool log_has(struct bs_sim_node *x, uint64_t i, uint64_t t)
{
    struct bs_raft_storage st = bs_raft_mem_storage_iface(x->ms);
    uint64_t xt = 0;
    if (i < st.ops->first_index(st.ctx))
        return true; /* inside its snapshot: committed state */
    return st.ops->term(st.ctx, i, &xt) == 0 && xt == t;
}

static bool quorum_of(const uint64_t *v, uint32_t n, const bool *yes)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        k += v[i] <= BS_SIM_MAX_IDS && yes[v[i]];
    return n == 0 || k > n / 2;
}

static void check_protected(struct bs_sim *s, struct bs_sim_node *l, uint64_t c,
                            uint64_t term)
{
    uint64_t tc = 0;
    if (bs_raft_log_term(l->r, c, &tc) != 0)
        return;
    struct bs_raft_conf_state cs;
    bs_raft_conf_state(l->r, &cs);
    for (uint64_t id = 1; id <= s->max_id; id++) {
        struct bs_sim_node *x = &s->nodes[id];
        if (!x->ms || x->state == BS_SIM_RETIRED ||
            !bs_sim__conf_voter(&cs, id) || log_has(x, c, tc))
            continue;
        uint64_t xli, xlt;
        last_of(x, &xli, &xlt);
        bool yes[BS_SIM_MAX_IDS + 1] = {false};
        for (uint64_t y = 1; y <= s->max_id; y++) {
            struct bs_sim_node *v = &s->nodes[y];
            if (!v->ms || v->state == BS_SIM_RETIRED)
                continue;
            uint64_t yli, ylt;
            last_of(v, &yli, &ylt);
            yes[y] = y == id || xlt > ylt || (xlt == ylt && xli >= yli);
        }
        if (quorum_of(cs.voters, cs.n_voters, yes) &&
            quorum_of(cs.voters_outgoing, cs.n_voters_outgoing, yes)) {
            bs_sim__fail(s, "unsafe-commit",
                         "n%llu committed index %llu (term %llu) in term "
                         "%llu, but n%llu, whose log lacks it (last entry "
                         "%llu, term %llu), is as up to date as a quorum "
                         "and could still be elected",
                         U(l->id), U(c), U(tc), U(term), U(id), U(xli), U(xlt));
            return;
        }
    }
}

void bs_sim__check_node(struct bs_sim *s, struct bs_sim_node *n)
{
    struct bs_raft *r = n->r;
    uint64_t term = bs_raft_term(r);
    int role = bs_raft_role(r);
    uint64_t lead = bs_raft_lead(r);
    if (role != n->seen_role || term != n->seen_term || lead != n->seen_lead) {
        if (role == BS_RAFT_LEADER && n->seen_role != BS_RAFT_LEADER)
            bs_sim__trace(s, "n%llu becomes leader of term %llu", U(n->id),
                          U(term));
        else
            bs_sim__trace(s, "n%llu: %s, term %llu, leader n%llu", U(n->id),
                          bs_raft_role_name(role), U(term), U(lead));
        n->seen_role = role;
        n->seen_term = term;
        n->seen_lead = lead;
    }
    if (role == BS_RAFT_LEADER) {
        if (term >= s->n_terms) {
            size_t nt = s->n_terms ? s->n_terms : 256;
            while (nt <= term)
                nt *= 2;
            uint64_t *v = realloc(s->leader_of_term, nt * sizeof *v);
            if (!v) {
                s->oom = 1;
                return;
            }
            memset(v + s->n_terms, 0, (nt - s->n_terms) * sizeof *v);
            s->leader_of_term = v;
            s->n_terms = nt;
        }
        if (s->leader_of_term[term] == 0) {
            s->leader_of_term[term] = n->id;
            s->st.elections++;
            /* Figure 3.7 of the thesis needs leaders that die before
             * their first entries replicate. */
            if (!s->healing && !n->kill_at && s->now &&
                bs_sim_rng_chance(&s->rng, s->p.kill_leader_ppm))
                n->kill_at =
                    s->now + bs_sim_rng_below(
                                 &s->rng, 3 * (uint64_t)s->p.steps_per_tick);
        } else if (s->leader_of_term[term] != n->id) {
            bs_sim__fail(s, "election-safety",
                         "term %llu has two leaders: n%llu and n%llu", U(term),
                         U(s->leader_of_term[term]), U(n->id));
            return;
        }
        if (n->lead_checked_term != term) {
            n->lead_checked_term = term;
            leader_completeness(s, n, term);
            if (bs_sim__failed(s))
                return;
        }
    }
    uint64_t commit = bs_raft_committed(r);
    if (commit < n->seen_commit) {
        bs_sim__fail(s, "commit-monotonic",
                     "n%llu: commit index went back from %llu to %llu",
                     U(n->id), U(n->seen_commit), U(commit));
        return;
    }
    for (uint64_t i = n->seen_commit + 1; i <= commit; i++) {
        uint64_t t = 0;
        int rc = bs_raft_log_term(r, i, &t);
        if (rc == BS_ECOMPACTED)
            continue;
        if (rc != 0) {
            bs_sim__fail(s, "commit-beyond-log",
                         "n%llu: commit index %llu but entry %llu is "
                         "unavailable (%s)",
                         U(n->id), U(commit), U(i), bs_err_name(rc));
            return;
        }
        struct bs_sim_idx *x = bs_sim__idx(s, i);
        if (!x)
            return;
        if (x->cterm == 0) {
            x->cterm = t;
            x->cobs_term = term;
            s->st.commits++;
        } else if (x->cterm != t) {
            bs_sim__fail(s, "committed-entry-changed",
                         "n%llu committed term %llu at index %llu, where "
                         "term %llu was committed before",
                         U(n->id), U(t), U(i), U(x->cterm));
            return;
        } else if (term < x->cobs_term) {
            x->cobs_term = term;
        }
    }
    if (role == BS_RAFT_LEADER && commit > n->seen_commit) {
        check_protected(s, n, commit, term);
        if (bs_sim__failed(s))
            return;
    }
    n->seen_commit = commit;
    if (commit > s->gcommit)
        s->gcommit = commit;
}

static void lm_record(struct bs_sim *s, struct bs_sim_node *n, uint64_t index,
                      uint64_t term, uint64_t hash, uint64_t prev_term)
{
    struct bs_sim_idx *x = bs_sim__idx(s, index);
    if (!x)
        return;
    for (int64_t k = x->lm; k >= 0; k = s->lm[k].next) {
        struct bs_sim_lm *r = &s->lm[k];
        if (r->term != term)
            continue;
        if (r->hash != hash) {
            bs_sim__fail(s, "log-matching",
                         "n%llu persisted an entry at index %llu term %llu "
                         "that differs from another node's entry there",
                         U(n->id), U(index), U(term));
            return;
        }
        if (prev_term && r->prev_term && prev_term != r->prev_term) {
            bs_sim__fail(s, "log-matching",
                         "n%llu: entry (index %llu, term %llu) follows term "
                         "%llu, elsewhere term %llu",
                         U(n->id), U(index), U(term), U(prev_term),
                         U(r->prev_term));
            return;
        }
        if (!r->prev_term)
            r->prev_term = prev_term;
        return;
    }
    if (s->n_lm == s->cap_lm) {
        size_t nc = s->cap_lm ? s->cap_lm * 2 : 1024;
        struct bs_sim_lm *nl = realloc(s->lm, nc * sizeof *nl);
        if (!nl) {
            s->oom = 1;
            return;
        }
        s->lm = nl;
        s->cap_lm = nc;
    }
    s->lm[s->n_lm] = (struct bs_sim_lm){term, hash, prev_term, x->lm};
    x->lm = (int64_t)s->n_lm++;
}

void bs_sim__check_persist(struct bs_sim *s, struct bs_sim_node *n,
                           const struct bs_raft_entry *ents, size_t cnt)
{
    struct bs_raft_storage st = bs_raft_mem_storage_iface(n->ms);
    for (size_t k = 0; k < cnt && !bs_sim__failed(s); k++) {
        const struct bs_raft_entry *e = &ents[k];
        uint64_t pt = 0;
        if (k > 0) {
            if (e->index != ents[k - 1].index + 1) {
                bs_sim__fail(s, "ready-entries",
                             "n%llu: ready entries jump from %llu to %llu",
                             U(n->id), U(ents[k - 1].index), U(e->index));
                return;
            }
            pt = ents[k - 1].term;
        } else if (e->index >= 1) {
            int rc = st.ops->term(st.ctx, e->index - 1, &pt);
            if (rc == BS_ECOMPACTED) {
                pt = 0;
            } else if (rc != 0) {
                bs_sim__fail(s, "log-gap",
                             "n%llu: ready appends entry %llu after "
                             "persisted last index %llu",
                             U(n->id), U(e->index),
                             U(st.ops->last_index(st.ctx)));
                return;
            }
        }
        if (pt && e->term < pt) {
            bs_sim__fail(s, "log-terms",
                         "n%llu: entry %llu has term %llu after term %llu",
                         U(n->id), U(e->index), U(e->term), U(pt));
            return;
        }
        lm_record(s, n, e->index, e->term, entry_hash(e), pt);
    }
}

void bs_sim__check_apply(struct bs_sim *s, struct bs_sim_node *n,
                         const struct bs_raft_entry *e)
{
    struct bs_sim_idx *x = bs_sim__idx(s, e->index);
    if (!x)
        return;
    uint64_t h = entry_hash(e);
    if (x->cterm && x->cterm != e->term) {
        bs_sim__fail(s, "state-machine-safety",
                     "n%llu applies term %llu at index %llu, where term "
                     "%llu was committed",
                     U(n->id), U(e->term), U(e->index), U(x->cterm));
        return;
    }
    if (x->aterm == 0) {
        x->aterm = e->term;
        x->ahash = h;
        if (e->type == BS_RAFT_ENTRY_CONF_CHANGE)
            s->st.conf_changes++;
    } else if (x->aterm != e->term || x->ahash != h) {
        bs_sim__fail(s, "state-machine-safety",
                     "n%llu applies a different entry (term %llu) at index "
                     "%llu than another node did (term %llu)",
                     U(n->id), U(e->term), U(e->index), U(x->aterm));
    }
}

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t set_hash(const uint64_t *v, uint32_t n, uint64_t h)
{
    uint64_t c[BS_RAFT_MAX_MEMBERS];
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, id_cmp);
    h = bs_sim__hash(&n, sizeof n, h);
    return n ? bs_sim__hash(c, n * sizeof *c, h) : h;
}

void bs_sim__check_conf(struct bs_sim *s, struct bs_sim_node *n, uint64_t index)
{
    const struct bs_raft_conf_state *cs = &n->conf;
    uint64_t h = set_hash(cs->voters, cs->n_voters, 0);
    h = set_hash(cs->voters_outgoing, cs->n_voters_outgoing, h);
    h = set_hash(cs->learners, cs->n_learners, h);
    h = set_hash(cs->learners_next, cs->n_learners_next, h);
    h = bs_sim__hash(&cs->auto_leave, sizeof cs->auto_leave, h);
    struct bs_sim_idx *x = bs_sim__idx(s, index);
    if (!x)
        return;
    if (x->chash == 0) {
        x->chash = h;
    } else if (x->chash != h) {
        char buf[256];
        bs_sim__conf_str(cs, buf, sizeof buf);
        bs_sim__fail(s, "configuration",
                     "n%llu reached %s by applying the conf change at "
                     "%llu, another node reached a different one",
                     U(n->id), buf, U(index));
    }
}

void bs_sim__check_snapdata(struct bs_sim *s, struct bs_sim_node *n,
                            uint64_t index, uint64_t hash)
{
    struct bs_sim_idx *x = bs_sim__idx(s, index);
    if (!x)
        return;
    if (x->shash == 0)
        x->shash = hash;
    else if (x->shash != hash)
        bs_sim__fail(s, "state-machine-safety",
                     "n%llu's state at index %llu differs from another "
                     "node's state there",
                     U(n->id), U(index));
}

void bs_sim__check_snapshot(struct bs_sim *s, struct bs_sim_node *n,
                            const struct bs_raft_snapshot *snap)
{
    uint64_t i = snap->meta.index;
    if (i > s->gcommit) {
        bs_sim__fail(s, "snapshot",
                     "n%llu receives a snapshot at %llu, beyond every "
                     "commit index seen (%llu)",
                     U(n->id), U(i), U(s->gcommit));
        return;
    }
    struct bs_sim_idx *x = bs_sim__idx(s, i);
    if (!x)
        return;
    if ((x->cterm && x->cterm != snap->meta.term) ||
        (x->aterm && x->aterm != snap->meta.term)) {
        bs_sim__fail(s, "snapshot",
                     "n%llu receives a snapshot at %llu of term %llu, "
                     "where term %llu was committed",
                     U(n->id), U(i), U(snap->meta.term),
                     U(x->cterm ? x->cterm : x->aterm));
        return;
    }
    if (snap->len)
        bs_sim__check_snapdata(s, n, i, bs_sim__hash(snap->data, snap->len, 0));
}

/* -------------------------------------------------------------- history */

static bool precedes_w(const struct bs_sim_write *a, uint64_t invoke)
{
    return a->state == BS_SIM_DONE && a->ret < invoke;
}

void bs_sim__check_read(struct bs_sim *s, uint64_t read_id)
{
    const struct bs_sim_read *r = &s->reads[read_id];
    const struct bs_sim_key *k = &s->keys[r->key];
    const struct bs_sim_write *w = NULL;
    if (r->value) {
        if (r->value > s->n_writes || s->writes[r->value].key != r->key) {
            bs_sim__fail(s, "linearizability",
                         "read %llu of key %u at n%llu returned %llu, "
                         "never written to that key",
                         U(read_id), r->key, U(r->node), U(r->value));
            return;
        }
        w = &s->writes[r->value];
    }
    for (size_t i = 0; i < k->n; i++) {
        uint64_t op = k->ops[i];
        if (op & BS_SIM_READ_TAG)
            continue;
        const struct bs_sim_write *w2 = &s->writes[op];
        if (op == r->value || !precedes_w(w2, r->invoke))
            continue;
        /* w2 finished before the read began; the value read must not have
         * been overwritten by w2 already. */
        if (!w || precedes_w(w, w2->invoke)) {
            bs_sim__fail(s, "stale-read",
                         "read %llu of key %u at n%llu (events %llu..%llu) "
                         "returned %llu, but write %llu (events "
                         "%llu..%llu) had overwritten it before the read "
                         "began",
                         U(read_id), r->key, U(r->node), U(r->invoke),
                         U(r->ret), U(r->value), U(op), U(w2->invoke),
                         U(w2->ret));
            return;
        }
    }
}

void bs_sim__check_history(struct bs_sim *s)
{
    struct bs_sim_lin_op *ops = NULL;
    size_t cap = 0;
    for (uint32_t key = 0; key < BS_SIM_MAX_KEYS && !bs_sim__failed(s); key++) {
        struct bs_sim_key *k = &s->keys[key];
        if (!k->used)
            continue;
        if (k->n > cap) {
            free(ops);
            cap = k->n;
            ops = malloc(cap * sizeof *ops);
            if (!ops) {
                s->oom = 1;
                return;
            }
        }
        /* Lost writes: the final read must show an acknowledged write or
         * something not older than it. */
        const struct bs_sim_read *fin = NULL;
        size_t n = 0;
        uint64_t reads = 0;
        for (size_t i = 0; i < k->n; i++) {
            uint64_t op = k->ops[i];
            if (op & BS_SIM_READ_TAG) {
                const struct bs_sim_read *r = &s->reads[op & ~BS_SIM_READ_TAG];
                if (r->state != BS_SIM_DONE)
                    continue;
                if (r->final)
                    fin = r;
                ops[n++] = (struct bs_sim_lin_op){BS_SIM_OP_READ, r->value,
                                                  r->invoke, r->ret};
                reads++;
            } else {
                const struct bs_sim_write *w = &s->writes[op];
                ops[n++] = (struct bs_sim_lin_op){
                    BS_SIM_OP_WRITE, op, w->invoke,
                    w->state == BS_SIM_DONE ? w->ret : BS_SIM_T_INF};
            }
        }
        if (fin) {
            const struct bs_sim_write *fw =
                fin->value ? &s->writes[fin->value] : NULL;
            for (size_t i = 0; i < k->n; i++) {
                uint64_t op = k->ops[i];
                if (op & BS_SIM_READ_TAG)
                    continue;
                const struct bs_sim_write *w = &s->writes[op];
                if (w->state != BS_SIM_DONE || op == fin->value)
                    continue;
                /* Acknowledged only after the final read began: the two
                 * overlap, and the read may linearize first (a forwarded
                 * proposal delivered late, seed 101889). The
                 * linearizability check below still covers it. */
                if (w->ret > fin->invoke)
                    continue;
                if (!fw || precedes_w(fw, w->invoke)) {
                    bs_sim__fail(s, "lost-write",
                                 "key %u: write %llu was acknowledged (event "
                                 "%llu) but the final state holds %llu",
                                 key, U(op), U(w->ret), U(fin->value));
                    break;
                }
            }
            if (bs_sim__failed(s))
                break;
        }
        char why[256];
        int rc =
            bs_sim_lin_check(ops, n, 0, BS_SIM_LIN_BUDGET, why, sizeof why);
        char zwhy[256];
        int zrc = bs_sim_lin_zones(ops, n, 0, zwhy, sizeof zwhy);
        if (rc == BS_ENOMEM || zrc == BS_ENOMEM) {
            s->oom = 1;
        } else if (rc == BS_ETOOBIG) {
            /* The search gave up: the zone test decides. */
            s->st.lin_inconclusive++;
            bs_sim__trace(s, "key %u: search over budget, zones decide", key);
            if (zrc == 0)
                bs_sim__fail(s, "linearizability", "key %u (%zu ops): %s", key,
                             n, zwhy);
        } else if (rc != zrc) {
            bs_sim__fail(s, "lincheck-disagreement",
                         "key %u (%zu ops): search says %d, zones %d (%s%s)",
                         key, n, rc, zrc, why, zwhy);
        } else if (rc == 0) {
            bs_sim__fail(s, "linearizability", "key %u (%zu ops): %s", key, n,
                         why);
        }
        s->st.reads_checked += reads;
    }
    free(ops);
}
