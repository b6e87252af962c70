/*
 * history.c - the simulated clients and the history they record.
 *
 * A write is put(key, v) with v unique over the run (v is also the write's
 * id). It is proposed at one node and acknowledged when that same node (in
 * the same incarnation) applies it; if that node crashes, is removed, or
 * the client's patience (op_timeout steps) runs out first, the write stays
 * indeterminate forever. A read is a ReadIndex request at one node with the
 * read id as ctx: once the node's read state (index, ctx) comes out and its
 * applied index reaches index, the node's register is the answer. A read
 * that never answers is left out of the history.
 *
 * A read also records the highest commit index any node had reached when
 * it was invoked: its read index may not be lower (checked at once).
 *
 * Each history event (invocation or response) takes the next value of one
 * counter, so real-time order is total and exact. Each register keeps at
 * most BS_SIM_KEY_CAP operations: then a fresh register replaces it in the
 * workload, which bounds every linearizability search.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

#define U(x) ((unsigned long long)(x))

static int vec_push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        uint64_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return BS_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static void vec_remove(uint64_t *v, size_t *n, uint64_t x)
{
    for (size_t i = 0; i < *n; i++) {
        if (v[i] == x) {
            memmove(v + i, v + i + 1, (*n - i - 1) * sizeof *v);
            (*n)--;
            return;
        }
    }
}

static int key_add(struct bs_sim *s, uint32_t key, uint64_t op)
{
    struct bs_sim_key *k = &s->keys[key];
    k->used = true;
    return vec_push(&k->ops, &k->n, &k->cap, op);
}

void bs_sim__new_key(struct bs_sim *s, int slot)
{
    if (s->next_key < BS_SIM_MAX_KEYS)
        s->active[slot] = s->next_key++;
}

static void maybe_rotate(struct bs_sim *s, uint32_t key)
{
    if (s->keys[key].n < BS_SIM_KEY_CAP)
        return;
    for (int i = 0; i < s->p.n_active_keys; i++)
        if (s->active[i] == key && s->next_key < BS_SIM_MAX_KEYS) {
            bs_sim__new_key(s, i);
            bs_sim__trace(s,
                          "key %u retires after %zu ops; key %u takes "
                          "its place",
                          key, s->keys[key].n, s->active[i]);
        }
}

uint64_t bs_sim__write(struct bs_sim *s, struct bs_sim_node *n, uint32_t key)
{
    if (n->state != BS_SIM_UP)
        return 0;
    if (s->n_writes + 1 >= s->cap_writes) {
        size_t nc = s->cap_writes ? s->cap_writes * 2 : 256;
        struct bs_sim_write *nw = realloc(s->writes, nc * sizeof *nw);
        if (!nw) {
            s->oom = 1;
            return 0;
        }
        s->writes = nw;
        s->cap_writes = nc;
    }
    uint64_t id = ++s->n_writes;
    struct bs_sim_write *w = &s->writes[id];
    memset(w, 0, sizeof *w);
    w->key = key;
    w->node = n->id;
    w->inc = n->inc;
    w->invoke = ++s->seq;
    w->deadline = s->now + s->p.op_timeout;
    w->state = BS_SIM_PENDING;
    if (key_add(s, key, id) != 0 ||
        vec_push(&s->pend_w, &s->n_pend_w, &s->cap_pend_w, id) != 0) {
        s->oom = 1;
        return 0;
    }
    s->keys[key].pending++;
    s->st.writes++;
    uint8_t buf[16 + 256];
    size_t pad = s->p.max_pad ? bs_sim_rng_below(&s->rng, s->p.max_pad) : 0;
    size_t len = bs_sim__encode_put(buf, key, id, pad);
    int rc = bs_raft_propose(n->r, buf, len);
    bs_sim__trace(s, "client: put(k%u, %llu) at n%llu%s%s", key, U(id),
                  U(n->id), rc ? ": " : "", rc ? bs_err_name(rc) : "");
    if (rc != 0) {
        /* Most likely not taken, but the caller cannot be sure of it in
         * general: indeterminate is always the safe reading. */
        w->state = BS_SIM_INDET;
        vec_remove(s->pend_w, &s->n_pend_w, id);
        s->keys[key].pending--;
    }
    bs_sim__node_ready(s, n);
    maybe_rotate(s, key);
    return id;
}

uint64_t bs_sim__read(struct bs_sim *s, struct bs_sim_node *n, uint32_t key,
                      bool final)
{
    if (n->state != BS_SIM_UP)
        return 0;
    if (s->n_reads + 1 >= s->cap_reads) {
        size_t nc = s->cap_reads ? s->cap_reads * 2 : 256;
        struct bs_sim_read *nr = realloc(s->reads, nc * sizeof *nr);
        if (!nr) {
            s->oom = 1;
            return 0;
        }
        s->reads = nr;
        s->cap_reads = nc;
    }
    uint64_t id = ++s->n_reads;
    struct bs_sim_read *r = &s->reads[id];
    memset(r, 0, sizeof *r);
    r->key = key;
    r->node = n->id;
    r->inc = n->inc;
    r->final = final;
    r->invoke = ++s->seq;
    r->deadline = s->now + s->p.op_timeout;
    r->state = BS_SIM_PENDING;
    r->min_index = s->gcommit;
    int rc = bs_raft_read_index(n->r, id);
    bs_sim__trace(s, "client: get(k%u) at n%llu as read %llu%s%s", key,
                  U(n->id), U(id), rc ? ": " : "", rc ? bs_err_name(rc) : "");
    if (rc != 0) {
        r->state = BS_SIM_DEAD;
        return 0;
    }
    if (key_add(s, key, id | BS_SIM_READ_TAG) != 0 ||
        vec_push(&s->pend_r, &s->n_pend_r, &s->cap_pend_r, id) != 0) {
        s->oom = 1;
        return 0;
    }
    s->keys[key].pending++;
    bs_sim__node_ready(s, n);
    maybe_rotate(s, key);
    return id;
}

void bs_sim__hist_applied(struct bs_sim *s, struct bs_sim_node *n,
                          uint64_t w_id)
{
    struct bs_sim_write *w = &s->writes[w_id];
    if (w->state != BS_SIM_PENDING || w->node != n->id || w->inc != n->inc)
        return;
    w->state = BS_SIM_DONE;
    w->ret = ++s->seq;
    vec_remove(s->pend_w, &s->n_pend_w, w_id);
    s->keys[w->key].pending--;
    s->st.writes_acked++;
    bs_sim__trace(s, "client: put(k%u, %llu) acknowledged by n%llu", w->key,
                  U(w_id), U(n->id));
}

static void serve(struct bs_sim *s, struct bs_sim_node *n, uint64_t id)
{
    struct bs_sim_read *r = &s->reads[id];
    r->value = n->vals[r->key];
    r->ret = ++s->seq;
    r->state = BS_SIM_DONE;
    vec_remove(s->pend_r, &s->n_pend_r, id);
    s->keys[r->key].pending--;
    bs_sim__trace(s, "client: get(k%u) = %llu at n%llu (read index %llu)",
                  r->key, U(r->value), U(n->id), U(r->index));
    bs_sim__check_read(s, id);
}

void bs_sim__hist_read_state(struct bs_sim *s, struct bs_sim_node *n,
                             const struct bs_raft_read_state *rs)
{
    uint64_t id = rs->ctx;
    if (id == 0 || id > s->n_reads)
        return;
    struct bs_sim_read *r = &s->reads[id];
    if (r->state != BS_SIM_PENDING || r->node != n->id || r->inc != n->inc ||
        r->index)
        return;
    r->index = rs->index ? rs->index : 1;
    if (rs->index < r->min_index) {
        /* Thesis 6.4: the read index must cover every entry committed
         * before the read began, or the read can miss a write that
         * completed before it (any committed entry counts, not only
         * client writes). */
        bs_sim__fail(s, "stale-read-index",
                     "read %llu at n%llu got read index %llu, but index "
                     "%llu was committed before the read began",
                     U(id), U(n->id), U(rs->index), U(r->min_index));
        return;
    }
    if (n->applied >= rs->index) {
        serve(s, n, id);
        return;
    }
    if (vec_push(&n->waiting, &n->n_waiting, &n->cap_waiting, id) != 0)
        s->oom = 1;
}

void bs_sim__hist_serve(struct bs_sim *s, struct bs_sim_node *n)
{
    size_t i = 0;
    while (i < n->n_waiting && !bs_sim__failed(s)) {
        uint64_t id = n->waiting[i];
        struct bs_sim_read *r = &s->reads[id];
        if (r->state != BS_SIM_PENDING) {
            vec_remove(n->waiting, &n->n_waiting, id);
        } else if (n->applied >= r->index) {
            vec_remove(n->waiting, &n->n_waiting, id);
            serve(s, n, id);
        } else {
            i++;
        }
    }
}

void bs_sim__hist_node_lost(struct bs_sim *s, struct bs_sim_node *n)
{
    for (size_t i = 0; i < s->n_pend_w;) {
        struct bs_sim_write *w = &s->writes[s->pend_w[i]];
        if (w->node == n->id) {
            w->state = BS_SIM_INDET;
            s->keys[w->key].pending--;
            vec_remove(s->pend_w, &s->n_pend_w, s->pend_w[i]);
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < s->n_pend_r;) {
        struct bs_sim_read *r = &s->reads[s->pend_r[i]];
        if (r->node == n->id) {
            r->state = BS_SIM_DEAD;
            s->keys[r->key].pending--;
            vec_remove(s->pend_r, &s->n_pend_r, s->pend_r[i]);
        } else {
            i++;
        }
    }
    n->n_waiting = 0;
}

void bs_sim__hist_expire(struct bs_sim *s)
{
    for (size_t i = 0; i < s->n_pend_w;) {
        struct bs_sim_write *w = &s->writes[s->pend_w[i]];
        if (s->now >= w->deadline) {
            w->state = BS_SIM_INDET;
            s->keys[w->key].pending--;
            vec_remove(s->pend_w, &s->n_pend_w, s->pend_w[i]);
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < s->n_pend_r;) {
        uint64_t id = s->pend_r[i];
        struct bs_sim_read *r = &s->reads[id];
        if (s->now >= r->deadline) {
            r->state = BS_SIM_DEAD;
            s->keys[r->key].pending--;
            vec_remove(s->pend_r, &s->n_pend_r, id);
            if (r->node <= s->max_id) {
                struct bs_sim_node *n = &s->nodes[r->node];
                vec_remove(n->waiting, &n->n_waiting, id);
            }
        } else {
            i++;
        }
    }
}
