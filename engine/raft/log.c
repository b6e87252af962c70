/*
 * log.c - the Raft log: the storage's persisted entries followed by the
 * unstable tail the node appended since the last ready (thesis 3.5).
 *
 * The core reads the log only through this file. Entries enter the tail by
 * bs_raft__log_append (leader proposals) or bs_raft__log_maybe_append
 * (AppendEntries receiver); they leave it when the caller has persisted
 * them and bs_raft_advance calls bs_raft__log_stable_to.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

int bs_raft__log_init(struct bs_raft_log *l, struct bs_raft_storage st)
{
    memset(l, 0, sizeof(*l));
    l->storage = st;
    uint64_t first = st.ops->first_index(st.ctx);
    uint64_t last = st.ops->last_index(st.ctx);
    if (first == 0 || last + 1 < first)
        return BS_ECORRUPT;
    l->unstable_offset = last + 1;
    l->committed = first - 1;
    l->applied = first - 1;
    return 0;
}

void bs_raft__log_free(struct bs_raft_log *l)
{
    bs_raft_entry_vec_free(&l->unstable);
    free(l->snapshot.data);
    l->snapshot.data = NULL;
}

uint64_t bs_raft__log_first_index(const struct bs_raft_log *l)
{
    if (l->has_snapshot)
        return l->snapshot.meta.index + 1;
    return l->storage.ops->first_index(l->storage.ctx);
}

uint64_t bs_raft__log_last_index(const struct bs_raft_log *l)
{
    if (l->unstable.n > 0)
        return l->unstable_offset + l->unstable.n - 1;
    if (l->has_snapshot)
        return l->snapshot.meta.index;
    return l->storage.ops->last_index(l->storage.ctx);
}

uint64_t bs_raft__log_stable_last(const struct bs_raft_log *l)
{
    if (l->has_snapshot)
        return 0; /* nothing is durable until the snapshot is */
    return l->unstable_offset - 1;
}

int bs_raft__log_term(const struct bs_raft_log *l, uint64_t i, uint64_t *t)
{
    if (l->unstable.n > 0 && i >= l->unstable_offset) {
        uint64_t k = i - l->unstable_offset;
        if (k >= l->unstable.n)
            return BS_EUNAVAIL;
        *t = l->unstable.v[k].term;
        return 0;
    }
    if (l->has_snapshot) {
        if (i == l->snapshot.meta.index) {
            *t = l->snapshot.meta.term;
            return 0;
        }
        if (i < l->snapshot.meta.index)
            return BS_ECOMPACTED;
        return BS_EUNAVAIL;
    }
    if (i >= l->unstable_offset)
        return BS_EUNAVAIL;
    return l->storage.ops->term(l->storage.ctx, i, t);
}

static uint64_t term_or_zero(const struct bs_raft_log *l, uint64_t i)
{
    uint64_t t = 0;
    if (bs_raft__log_term(l, i, &t) != 0)
        return 0;
    return t;
}

uint64_t bs_raft__log_last_term(const struct bs_raft_log *l)
{
    return term_or_zero(l, bs_raft__log_last_index(l));
}

bool bs_raft__log_match_term(const struct bs_raft_log *l, uint64_t i,
                             uint64_t t)
{
    uint64_t lt;
    if (bs_raft__log_term(l, i, &lt) != 0)
        return false;
    return lt == t;
}

/* Thesis 3.6.1: a log is more up-to-date if its last term is higher, or
 * equal with a longer log. */
bool bs_raft__log_is_up_to_date(const struct bs_raft_log *l, uint64_t lasti,
                                uint64_t term)
{
    uint64_t lt = bs_raft__log_last_term(l);
    return term > lt || (term == lt && lasti >= bs_raft__log_last_index(l));
}

int bs_raft__log_append(struct bs_raft_log *l,
                        const struct bs_raft_entry *ents, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t after = ents[0].index;
    uint64_t end = l->unstable_offset + l->unstable.n;
    if (after == end) {
        /* Plain append. */
    } else if (after <= l->unstable_offset) {
        /* Replace the whole tail; storage's conflicting suffix is truncated
         * when these entries are persisted. */
        bs_raft_entry_vec_truncate(&l->unstable, 0);
        l->unstable_offset = after;
    } else {
        bs_raft_entry_vec_truncate(&l->unstable,
                                   (size_t)(after - l->unstable_offset));
    }
    for (size_t i = 0; i < n; i++) {
        int rc = bs_raft_entry_vec_push(&l->unstable, &ents[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* First index among ents whose term differs from ours (or that we do not
 * have); 0 if all match. */
static uint64_t find_conflict(const struct bs_raft_log *l,
                              const struct bs_raft_entry *ents, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!bs_raft__log_match_term(l, ents[i].index, ents[i].term))
            return ents[i].index;
    }
    return 0;
}

int bs_raft__log_maybe_append(struct bs_raft_log *l, uint64_t index,
                              uint64_t log_term, uint64_t committed,
                              const struct bs_raft_entry *ents, size_t n,
                              uint64_t *lastnewi)
{
    if (!bs_raft__log_match_term(l, index, log_term))
        return 0;
    uint64_t last = index + n;
    uint64_t ci = find_conflict(l, ents, n);
    if (ci != 0) {
        if (ci <= l->committed)
            return BS_EPROTO; /* would rewrite committed history */
        int rc = bs_raft__log_append(l, ents + (ci - index - 1),
                                     n - (size_t)(ci - index - 1));
        if (rc != 0)
            return rc;
    }
    bs_raft__log_commit_to(l, committed < last ? committed : last);
    *lastnewi = last;
    return 1;
}

uint64_t bs_raft__log_find_conflict_by_term(const struct bs_raft_log *l,
                                            uint64_t index, uint64_t term,
                                            uint64_t *t)
{
    uint64_t last = bs_raft__log_last_index(l);
    if (index > last)
        index = last;
    for (;;) {
        uint64_t it;
        int rc = bs_raft__log_term(l, index, &it);
        if (rc != 0) {
            /* Compacted: the hint stops here; the leader will probe or
             * send a snapshot. */
            *t = 0;
            return index;
        }
        if (it <= term) {
            *t = it;
            return index;
        }
        if (index == 0) {
            *t = 0;
            return 0;
        }
        index--;
    }
}

int bs_raft__log_slice(const struct bs_raft_log *l, uint64_t lo, uint64_t hi,
                       uint64_t max_bytes, struct bs_raft_entry_vec *out)
{
    if (lo >= hi)
        return 0;
    uint64_t first = bs_raft__log_first_index(l);
    if (lo < first)
        return BS_ECOMPACTED;
    if (hi > bs_raft__log_last_index(l) + 1)
        return BS_EUNAVAIL;
    size_t start_n = out->n;
    uint64_t size = 0;
    if (lo < l->unstable_offset && !l->has_snapshot) {
        uint64_t shi = hi < l->unstable_offset ? hi : l->unstable_offset;
        int rc = l->storage.ops->entries(l->storage.ctx, lo, shi, max_bytes,
                                         out);
        if (rc != 0)
            return rc;
        for (size_t i = start_n; i < out->n; i++)
            size += bs_raft_entry_size(&out->v[i]);
        if (out->n - start_n < shi - lo)
            return 0; /* limited by size */
        if (max_bytes == 0 && out->n > start_n)
            return 0;
    }
    if (hi > l->unstable_offset) {
        uint64_t ulo = lo > l->unstable_offset ? lo : l->unstable_offset;
        for (uint64_t i = ulo; i < hi; i++) {
            const struct bs_raft_entry *e =
                &l->unstable.v[i - l->unstable_offset];
            size += bs_raft_entry_size(e);
            if (out->n > start_n && (max_bytes == 0 || size > max_bytes))
                break;
            int rc = bs_raft_entry_vec_push(out, e);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

void bs_raft__log_commit_to(struct bs_raft_log *l, uint64_t tocommit)
{
    if (tocommit <= l->committed)
        return;
    uint64_t last = bs_raft__log_last_index(l);
    /* A leader never tells us to commit past what we hold (it sends
     * min(match, commit)); clamp rather than trust a bad message. */
    l->committed = tocommit < last ? tocommit : last;
}

/* Thesis 3.6.2: only an entry of the current term is committed by counting
 * replicas; earlier ones commit indirectly. */
bool bs_raft__log_maybe_commit(struct bs_raft_log *l, uint64_t maxindex,
                               uint64_t term)
{
    if (maxindex > l->committed && term_or_zero(l, maxindex) == term) {
        bs_raft__log_commit_to(l, maxindex);
        return true;
    }
    return false;
}

void bs_raft__log_applied_to(struct bs_raft_log *l, uint64_t i)
{
    if (i > l->applied && i <= l->committed)
        l->applied = i;
}

void bs_raft__log_stable_to(struct bs_raft_log *l, uint64_t i, uint64_t t)
{
    if (l->unstable.n == 0 || i < l->unstable_offset)
        return;
    uint64_t k = i - l->unstable_offset;
    if (k >= l->unstable.n || l->unstable.v[k].term != t)
        return; /* replaced meanwhile: not stable yet */
    /* Drop entries [offset, i]. */
    size_t drop = (size_t)k + 1;
    for (size_t j = 0; j < drop; j++)
        free(l->unstable.v[j].data);
    memmove(l->unstable.v, l->unstable.v + drop,
            (l->unstable.n - drop) * sizeof(l->unstable.v[0]));
    l->unstable.n -= drop;
    l->unstable_offset = i + 1;
}

void bs_raft__log_stable_snap_to(struct bs_raft_log *l, uint64_t i)
{
    if (l->has_snapshot && l->snapshot.meta.index == i) {
        l->has_snapshot = false;
        free(l->snapshot.data);
        l->snapshot.data = NULL;
        l->snapshot.len = 0;
    }
}

int bs_raft__log_restore(struct bs_raft_log *l,
                         const struct bs_raft_snapshot *s)
{
    uint8_t *data = NULL;
    if (s->len > 0) {
        data = malloc(s->len);
        if (!data)
            return BS_ENOMEM;
        memcpy(data, s->data, s->len);
    }
    free(l->snapshot.data);
    l->snapshot = *s;
    l->snapshot.data = data;
    l->has_snapshot = true;
    bs_raft_entry_vec_truncate(&l->unstable, 0);
    l->unstable_offset = s->meta.index + 1;
    l->committed = s->meta.index;
    return 0;
}

int bs_raft__log_snapshot(const struct bs_raft_log *l,
                          struct bs_raft_snapshot *out)
{
    if (l->has_snapshot) {
        *out = l->snapshot;
        out->data = NULL;
        if (l->snapshot.len > 0) {
            out->data = malloc(l->snapshot.len);
            if (!out->data)
                return BS_ENOMEM;
            memcpy(out->data, l->snapshot.data, l->snapshot.len);
        }
        return 0;
    }
    return l->storage.ops->snapshot(l->storage.ctx, out);
}

const char *bs_raft__log_check(const struct bs_raft_log *l)
{
    uint64_t last = bs_raft__log_last_index(l);
    if (l->committed > last)
        return "L3: committed beyond the last index";
    if (l->applied > l->committed)
        return "L3: applied beyond committed";
    for (size_t i = 0; i < l->unstable.n; i++)
        if (l->unstable.v[i].index != l->unstable_offset + i)
            return "L2: unstable entries not consecutive";
    if (l->has_snapshot && l->snapshot.meta.index + 1 != l->unstable_offset)
        return "L4: unstable snapshot not right before the tail";
    if (!l->has_snapshot &&
        l->storage.ops->last_index(l->storage.ctx) + 1 < l->unstable_offset)
        return "L1: gap between storage and the unstable tail";
    return NULL;
}
