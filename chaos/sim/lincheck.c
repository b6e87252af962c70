/*
 * lincheck.c - linearizability checker for the history of one register.
 *
 * The search is Wing and Gong's (1993) with Lowe's (2017) memoization, as in
 * Porcupine: the history is a list of call and return events in real-time
 * order; the search repeatedly picks a call that is still pending, applies
 * it to the register if the model allows it, and removes ("lifts") its call
 * and return from the list; meeting a return whose call has not been placed
 * means the current order is impossible, so it backtracks. A set of
 * (placed operations, register value) pairs already explored cuts the search
 * down to the distinct states.
 *
 * Indeterminate writes (never acknowledged) return at +infinity, after every
 * other event, so the search may place them anywhere after their call or
 * last of all, where they affect no read: that is "took effect later or
 * never". An indeterminate write whose value no read returned can be left
 * out altogether (placing it last is always possible), which keeps the
 * search small when many proposals are lost.
 *
 * bs_sim_lin_zones() decides the same question in polynomial time for
 * registers whose written values are unique (Gibbons and Korach 1997, as
 * restated by Golab, Li and Shah 2011): group each write with the reads of
 * its value into a cluster; a cluster's zone runs from the earliest
 * response f to the latest invocation s among its operations, "forward"
 * when f < s (the value must be in the register throughout [f, s]) and
 * "backward" otherwise. The history is linearizable iff every read's write
 * was invoked before the read returned, no two forward zones overlap, and
 * no backward zone lies inside a forward zone. The simulator uses it where
 * the search exceeds its budget, and cross-checks the two.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "sim.h"

struct ev {
    uint64_t time;
    uint32_t op; /* index into the kept ops */
    uint8_t is_call;
};

struct lin {
    const struct bs_sim_lin_op **ops; /* kept ops (borrowed pointers) */
    size_t n;
    size_t words; /* bitset words */
    /* Doubly linked list of events; node 2n is the head sentinel. */
    int64_t *prev, *next;
    uint32_t *ev_op;
    uint8_t *ev_call;
    int64_t *call_of_op, *ret_of_op;
    /* Memo: an arena of (bitset, value) records and an open hash table
     * of record numbers + 1. */
    uint64_t *arena;
    size_t n_rec, cap_rec;
    uint64_t *table;
    size_t table_cap;
};

static int ev_cmp(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    /* Equal times (only +infinity in practice): calls first, which is the
     * permissive reading (the operations overlap). */
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool contains_sorted(const uint64_t *v, size_t n, uint64_t x)
{
    return bsearch(&x, v, n, sizeof *v, u64_cmp) != NULL;
}

static uint64_t rec_hash(const uint64_t *bits, size_t words, uint64_t value)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ value;
    for (size_t i = 0; i < words; i++) {
        h ^= bits[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h * 0x9e3779b97f4a7c15ULL;
}

/* Inserts (bits, value) into the memo. Returns 1 if new, 0 if present,
 * BS_ENOMEM. */
static int memo_insert(struct lin *l, const uint64_t *bits, uint64_t value)
{
    size_t stride = l->words + 1;
    if ((l->n_rec + 1) * 2 > l->table_cap) {
        size_t ncap = l->table_cap ? l->table_cap * 2 : 1024;
        uint64_t *nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return BS_ENOMEM;
        for (size_t i = 0; i < l->table_cap; i++) {
            if (!l->table[i])
                continue;
            const uint64_t *r = l->arena + (l->table[i] - 1) * stride;
            size_t j = rec_hash(r, l->words, r[l->words]) & (ncap - 1);
            while (nt[j])
                j = (j + 1) & (ncap - 1);
            nt[j] = l->table[i];
        }
        free(l->table);
        l->table = nt;
        l->table_cap = ncap;
    }
    size_t j = rec_hash(bits, l->words, value) & (l->table_cap - 1);
    while (l->table[j]) {
        const uint64_t *r = l->arena + (l->table[j] - 1) * stride;
        if (r[l->words] == value &&
            memcmp(r, bits, l->words * sizeof *bits) == 0)
            return 0;
        j = (j + 1) & (l->table_cap - 1);
    }
    if (l->n_rec == l->cap_rec) {
        size_t ncap = l->cap_rec ? l->cap_rec * 2 : 1024;
        uint64_t *na = realloc(l->arena, ncap * stride * sizeof *na);
        if (!na)
            return BS_ENOMEM;
        l->arena = na;
        l->cap_rec = ncap;
    }
    uint64_t *r = l->arena + l->n_rec * stride;
    memcpy(r, bits, l->words * sizeof *bits);
    r[l->words] = value;
    l->table[j] = ++l->n_rec;
    return 1;
}

static void lift(struct lin *l, int64_t c)
{
    int64_t r = l->ret_of_op[l->ev_op[c]];
    l->next[l->prev[c]] = l->next[c];
    l->prev[l->next[c]] = l->prev[c]; /* a call is never last */
    l->next[l->prev[r]] = l->next[r];
    if (l->next[r] >= 0)
        l->prev[l->next[r]] = l->prev[r];
}

static void unlift(struct lin *l, int64_t c)
{
    int64_t r = l->ret_of_op[l->ev_op[c]];
    l->next[l->prev[r]] = r;
    if (l->next[r] >= 0)
        l->prev[l->next[r]] = r;
    l->next[l->prev[c]] = c;
    l->prev[l->next[c]] = c;
}

static void lin_free(struct lin *l)
{
    free(l->ops);
    free(l->prev);
    free(l->next);
    free(l->ev_op);
    free(l->ev_call);
    free(l->call_of_op);
    free(l->ret_of_op);
    free(l->arena);
    free(l->table);
}

static void say(char *why, size_t why_len, const struct bs_sim_lin_op *o,
                const char *tail)
{
    if (!why || !why_len)
        return;
    snprintf(why, why_len, "%s of value %llu [%llu, %llu]%s",
             o->kind == BS_SIM_OP_READ ? "read" : "write",
             (unsigned long long)o->value, (unsigned long long)o->invoke,
             (unsigned long long)o->ret, tail);
}

int bs_sim_lin_check(const struct bs_sim_lin_op *ops, size_t n,
                     uint64_t initial, uint64_t budget, char *why,
                     size_t why_len)
{
    struct lin l;
    memset(&l, 0, sizeof l);
    int rc = BS_ENOMEM;
    uint64_t *read_vals = NULL, *write_vals = NULL, *bits = NULL;
    struct ev *evs = NULL;
    int64_t *stack = NULL;
    uint64_t *stack_val = NULL;
    size_t n_rv = 0, n_wv = 0;

    if (why && why_len)
        why[0] = '\0';
    read_vals = malloc((n + 1) * sizeof *read_vals);
    write_vals = malloc((n + 1) * sizeof *write_vals);
    l.ops = malloc((n + 1) * sizeof *l.ops);
    if (!read_vals || !write_vals || !l.ops)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == BS_SIM_OP_READ && ops[i].ret != BS_SIM_T_INF)
            read_vals[n_rv++] = ops[i].value;
        if (ops[i].kind == BS_SIM_OP_WRITE)
            write_vals[n_wv++] = ops[i].value;
    }
    qsort(read_vals, n_rv, sizeof *read_vals, u64_cmp);
    qsort(write_vals, n_wv, sizeof *write_vals, u64_cmp);

    /* Keep reads that returned, completed writes, and indeterminate writes
     * that some read observed. Reads of values nobody wrote fail here. */
    for (size_t i = 0; i < n; i++) {
        const struct bs_sim_lin_op *o = &ops[i];
        if (o->kind == BS_SIM_OP_READ) {
            if (o->ret == BS_SIM_T_INF)
                continue;
            if (o->value != initial &&
                !contains_sorted(write_vals, n_wv, o->value)) {
                say(why, why_len, o, " returned a value never written");
                rc = 0;
                goto out;
            }
        } else if (o->ret == BS_SIM_T_INF &&
                   !contains_sorted(read_vals, n_rv, o->value)) {
            continue;
        }
        l.ops[l.n++] = o;
    }

    size_t m = l.n;
    l.words = (m + 63) / 64;
    if (l.words == 0)
        l.words = 1;
    evs = malloc((2 * m + 1) * sizeof *evs);
    l.prev = malloc((2 * m + 1) * sizeof *l.prev);
    l.next = malloc((2 * m + 1) * sizeof *l.next);
    l.ev_op = malloc((2 * m + 1) * sizeof *l.ev_op);
    l.ev_call = malloc((2 * m + 1) * sizeof *l.ev_call);
    l.call_of_op = malloc((m + 1) * sizeof *l.call_of_op);
    l.ret_of_op = malloc((m + 1) * sizeof *l.ret_of_op);
    bits = calloc(l.words, sizeof *bits);
    stack = malloc((m + 1) * sizeof *stack);
    stack_val = malloc((m + 1) * sizeof *stack_val);
    if (!evs || !l.prev || !l.next || !l.ev_op || !l.ev_call || !l.call_of_op ||
        !l.ret_of_op || !bits || !stack || !stack_val)
        goto out;
    for (size_t i = 0; i < m; i++) {
        evs[2 * i] = (struct ev){l.ops[i]->invoke, (uint32_t)i, 1};
        evs[2 * i + 1] = (struct ev){l.ops[i]->ret, (uint32_t)i, 0};
    }
    qsort(evs, 2 * m, sizeof *evs, ev_cmp);
    int64_t head = (int64_t)(2 * m);
    for (size_t k = 0; k < 2 * m; k++) {
        l.ev_op[k] = evs[k].op;
        l.ev_call[k] = evs[k].is_call;
        if (evs[k].is_call)
            l.call_of_op[evs[k].op] = (int64_t)k;
        else
            l.ret_of_op[evs[k].op] = (int64_t)k;
        l.prev[k] = k == 0 ? head : (int64_t)k - 1;
        l.next[k] = k + 1 < 2 * m ? (int64_t)k + 1 : -1;
    }
    l.next[head] = m ? 0 : -1;
    l.prev[head] = -1;
    /* A return before its own call is a malformed history. */
    for (size_t i = 0; i < m; i++) {
        if (l.ret_of_op[i] < l.call_of_op[i]) {
            rc = BS_EINVAL;
            goto out;
        }
    }

    uint64_t state = initial;
    size_t depth = 0, best = 0;
    int64_t blocked_op = -1;
    int64_t e = l.next[head];
    while (l.next[head] >= 0) {
        if (l.ev_call[e]) {
            const struct bs_sim_lin_op *o = l.ops[l.ev_op[e]];
            bool ok;
            uint64_t nstate = state;
            if (o->kind == BS_SIM_OP_WRITE) {
                ok = true;
                nstate = o->value;
            } else {
                ok = o->value == state;
            }
            if (ok) {
                uint32_t id = l.ev_op[e];
                bits[id / 64] |= 1ULL << (id % 64);
                int ins = memo_insert(&l, bits, nstate);
                if (ins < 0) {
                    rc = ins;
                    goto out;
                }
                if (ins == 1) {
                    if (budget && l.n_rec > budget) {
                        rc = BS_ETOOBIG;
                        goto out;
                    }
                    stack[depth] = e;
                    stack_val[depth] = state;
                    depth++;
                    state = nstate;
                    lift(&l, e);
                    e = l.next[head];
                    continue;
                }
                bits[id / 64] &= ~(1ULL << (id % 64));
            }
            e = l.next[e];
        } else {
            if (depth >= best) {
                best = depth;
                blocked_op = l.ev_op[e];
            }
            if (depth == 0) {
                if (blocked_op >= 0) {
                    char tail[96];
                    snprintf(tail, sizeof tail,
                             " cannot be linearized (at best %zu of %zu "
                             "ops placed)",
                             best, m);
                    say(why, why_len, l.ops[blocked_op], tail);
                }
                rc = 0;
                goto out;
            }
            depth--;
            e = stack[depth];
            state = stack_val[depth];
            uint32_t id = l.ev_op[e];
            bits[id / 64] &= ~(1ULL << (id % 64));
            unlift(&l, e);
            e = l.next[e];
        }
    }
    rc = 1;
out:
    free(read_vals);
    free(write_vals);
    free(evs);
    free(bits);
    free(stack);
    free(stack_val);
    lin_free(&l);
    return rc;
}

/* ------------------------------------------------------------- zones */

struct zone {
    uint64_t f, s; /* earliest response, latest invocation */
    size_t write;  /* index of the cluster's write in ops (n: initial) */
};

int bs_sim_lin_zones(const struct bs_sim_lin_op *ops, size_t n,
                     uint64_t initial, char *why, size_t why_len)
{
    if (why && why_len)
        why[0] = '\0';
    struct zone *z = malloc((n + 1) * sizeof *z);
    uint64_t *vals = malloc((n + 1) * sizeof *vals);
    size_t *wix = malloc((n + 1) * sizeof *wix);
    if (!z || !vals || !wix) {
        free(z);
        free(vals);
        free(wix);
        return BS_ENOMEM;
    }
    /* Clusters: one per write, plus one for the initial value (a write
     * that took effect at time 0). Writes sorted by value for lookup. */
    size_t nw = 0;
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == BS_SIM_OP_WRITE)
            vals[nw++] = ops[i].value;
    qsort(vals, nw, sizeof *vals, u64_cmp);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != BS_SIM_OP_WRITE)
            continue;
        const uint64_t *p =
            bsearch(&ops[i].value, vals, nw, sizeof *vals, u64_cmp);
        size_t k = (size_t)(p - vals);
        wix[k] = i;
        z[k] = (struct zone){ops[i].ret, ops[i].invoke, i};
    }
    z[nw] = (struct zone){0, 0, n};
    bool *read = calloc(nw + 1, sizeof *read);
    int rc = 1;
    if (!read) {
        rc = BS_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && rc == 1; i++) {
        const struct bs_sim_lin_op *o = &ops[i];
        if (o->kind != BS_SIM_OP_READ || o->ret == BS_SIM_T_INF)
            continue;
        size_t k = nw;
        if (o->value != initial) {
            const uint64_t *p =
                bsearch(&o->value, vals, nw, sizeof *vals, u64_cmp);
            if (!p) {
                say(why, why_len, o, " returned a value never written");
                rc = 0;
                break;
            }
            k = (size_t)(p - vals);
            if (ops[wix[k]].invoke > o->ret) {
                say(why, why_len, o, " returned before its write began");
                rc = 0;
                break;
            }
        }
        read[k] = true;
        if (o->ret < z[k].f)
            z[k].f = o->ret;
        if (o->invoke > z[k].s)
            z[k].s = o->invoke;
    }
    for (size_t a = 0; a <= nw && rc == 1; a++) {
        /* An indeterminate write nobody read may never take effect. */
        if (a < nw && !read[a] && z[a].f == BS_SIM_T_INF)
            continue;
        bool fwd_a = z[a].f < z[a].s;
        for (size_t b = 0; b <= nw && rc == 1; b++) {
            if (b == a || !(z[b].f < z[b].s))
                continue;
            /* b is forward: [z[b].f, z[b].s]. */
            bool clash;
            if (fwd_a)
                clash = b > a && z[a].f < z[b].s && z[b].f < z[a].s;
            else
                clash = z[b].f < z[a].s && z[a].f < z[b].s;
            if (clash && why && why_len) {
                const struct bs_sim_lin_op *wa =
                    a < nw ? &ops[z[a].write] : NULL;
                const struct bs_sim_lin_op *wb =
                    b < nw ? &ops[z[b].write] : NULL;
                snprintf(why, why_len,
                         "the value %llu must hold during [%llu, %llu] "
                         "while value %llu %s [%llu, %llu]",
                         (unsigned long long)(wb ? wb->value : initial),
                         (unsigned long long)z[b].f, (unsigned long long)z[b].s,
                         (unsigned long long)(wa ? wa->value : initial),
                         fwd_a ? "must hold during" : "is written within",
                         (unsigned long long)(fwd_a ? z[a].f : z[a].s),
                         (unsigned long long)(fwd_a ? z[a].s : z[a].f));
            }
            if (clash)
                rc = 0;
        }
    }
out:
    free(read);
    free(z);
    free(vals);
    free(wix);
    return rc;
}
