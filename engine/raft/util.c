/*
 * util.c - small shared pieces of the Raft core: entry vectors, message
 * copies, the binary encoding of configuration changes, names, defaults.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

/* Fixed per-entry overhead counted against byte limits, so that a stream
 * of empty entries is still bounded. */
#define ENTRY_OVERHEAD 16

uint64_t bs_raft_entry_size(const struct bs_raft_entry *e)
{
    return (uint64_t)e->len + ENTRY_OVERHEAD;
}

static int vec_reserve(struct bs_raft_entry_vec *vec, size_t want)
{
    if (want <= vec->cap)
        return 0;
    size_t cap = vec->cap ? vec->cap * 2 : 8;
    while (cap < want)
        cap *= 2;
    struct bs_raft_entry *v = realloc(vec->v, cap * sizeof(*v));
    if (!v)
        return BS_ENOMEM;
    vec->v = v;
    vec->cap = cap;
    return 0;
}

int bs_raft_entry_vec_push(struct bs_raft_entry_vec *vec,
                           const struct bs_raft_entry *e)
{
    if (vec_reserve(vec, vec->n + 1) != 0)
        return BS_ENOMEM;
    struct bs_raft_entry *d = &vec->v[vec->n];
    *d = *e;
    d->data = NULL;
    if (e->len > 0) {
        d->data = malloc(e->len);
        if (!d->data)
            return BS_ENOMEM;
        memcpy(d->data, e->data, e->len);
    }
    vec->n++;
    return 0;
}

void bs_raft_entry_vec_truncate(struct bs_raft_entry_vec *vec, size_t from)
{
    for (size_t i = from; i < vec->n; i++)
        free(vec->v[i].data);
    if (from < vec->n)
        vec->n = from;
}

void bs_raft_entry_vec_free(struct bs_raft_entry_vec *vec)
{
    if (!vec)
        return;
    bs_raft_entry_vec_truncate(vec, 0);
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

int bs_raft_msg_copy(struct bs_raft_msg *dst, const struct bs_raft_msg *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->n_entries = 0;
    dst->snapshot.data = NULL;
    dst->snapshot.len = 0;
    if (src->n_entries > 0) {
        struct bs_raft_entry_vec vec = {0};
        if (vec_reserve(&vec, src->n_entries) != 0)
            return BS_ENOMEM;
        for (size_t i = 0; i < src->n_entries; i++) {
            if (bs_raft_entry_vec_push(&vec, &src->entries[i]) != 0) {
                bs_raft_entry_vec_free(&vec);
                return BS_ENOMEM;
            }
        }
        dst->entries = vec.v;
        dst->n_entries = vec.n;
    }
    if (src->snapshot.len > 0) {
        dst->snapshot.data = malloc(src->snapshot.len);
        if (!dst->snapshot.data) {
            struct bs_raft_entry_vec vec = {dst->entries, dst->n_entries,
                                            dst->n_entries};
            bs_raft_entry_vec_free(&vec);
            dst->entries = NULL;
            dst->n_entries = 0;
            return BS_ENOMEM;
        }
        memcpy(dst->snapshot.data, src->snapshot.data, src->snapshot.len);
        dst->snapshot.len = src->snapshot.len;
    }
    return 0;
}

void bs_raft_msg_free(struct bs_raft_msg *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    free(m->snapshot.data);
    m->entries = NULL;
    m->n_entries = 0;
    m->snapshot.data = NULL;
    m->snapshot.len = 0;
}

/* ------------------------------------------------- conf state and codec */

bool bs_raft__ids_has(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static bool ids_equal(const uint64_t *a, uint32_t na, const uint64_t *b,
                      uint32_t nb)
{
    if (na != nb)
        return false;
    for (uint32_t i = 0; i < na; i++)
        if (!bs_raft__ids_has(b, nb, a[i]))
            return false;
    return true;
}

size_t bs_raft_conf_members(const struct bs_raft_conf_state *cs,
                            uint64_t *ids, bool *learner)
{
    const uint64_t *sets[4] = {cs->voters, cs->voters_outgoing, cs->learners,
                               cs->learners_next};
    uint32_t ns[4] = {cs->n_voters, cs->n_voters_outgoing, cs->n_learners,
                      cs->n_learners_next};
    uint32_t n = 0;
    for (int k = 0; k < 4; k++) {
        for (uint32_t i = 0; i < ns[k] && i < BS_RAFT_MAX_MEMBERS; i++) {
            if (bs_raft__ids_has(ids, n, sets[k][i]))
                continue;
            if (learner)
                learner[n] = k >= 2;
            ids[n++] = sets[k][i];
        }
    }
    return n;
}

bool bs_raft_conf_has(const struct bs_raft_conf_state *cs, uint64_t id)
{
    return bs_raft__ids_has(cs->voters, cs->n_voters, id) ||
           bs_raft__ids_has(cs->voters_outgoing, cs->n_voters_outgoing, id) ||
           bs_raft__ids_has(cs->learners, cs->n_learners, id) ||
           bs_raft__ids_has(cs->learners_next, cs->n_learners_next, id);
}

bool bs_raft_conf_state_equal(const struct bs_raft_conf_state *a,
                              const struct bs_raft_conf_state *b)
{
    return ids_equal(a->voters, a->n_voters, b->voters, b->n_voters) &&
           ids_equal(a->voters_outgoing, a->n_voters_outgoing,
                     b->voters_outgoing, b->n_voters_outgoing) &&
           ids_equal(a->learners, a->n_learners, b->learners,
                     b->n_learners) &&
           ids_equal(a->learners_next, a->n_learners_next, b->learners_next,
                     b->n_learners_next) &&
           a->auto_leave == b->auto_leave;
}

/*
 * Conf change encoding (little endian):
 *   byte 0     version (1)
 *   byte 1     transition
 *   byte 2     number of changes n (<= BS_RAFT_MAX_CC)
 *   bytes 3..7 zero
 *   n times:   type (1 byte), node id (8 bytes)
 */
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static bool cc_valid(const struct bs_raft_conf_change *cc)
{
    if (cc->transition > BS_RAFT_CC_TRANSITION_JOINT_EXPLICIT ||
        cc->n_changes > BS_RAFT_MAX_CC)
        return false;
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        if (cc->changes[i].type > BS_RAFT_CC_REMOVE ||
            cc->changes[i].node_id == BS_RAFT_NONE)
            return false;
    }
    return true;
}

int bs_raft_cc_encode(const struct bs_raft_conf_change *cc, uint8_t *buf)
{
    if (!cc_valid(cc))
        return BS_EINVAL;
    memset(buf, 0, 8);
    buf[0] = 1;
    buf[1] = cc->transition;
    buf[2] = (uint8_t)cc->n_changes;
    uint8_t *p = buf + 8;
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        p[0] = cc->changes[i].type;
        put_u64(p + 1, cc->changes[i].node_id);
        p += 9;
    }
    return (int)(p - buf);
}

int bs_raft_cc_decode(const uint8_t *data, size_t len,
                      struct bs_raft_conf_change *cc)
{
    if (len < 8 || data[0] != 1 || data[2] > BS_RAFT_MAX_CC)
        return BS_ECORRUPT;
    for (int i = 3; i < 8; i++)
        if (data[i] != 0)
            return BS_ECORRUPT;
    memset(cc, 0, sizeof(*cc));
    cc->transition = data[1];
    cc->n_changes = data[2];
    if (len != 8 + (size_t)cc->n_changes * 9)
        return BS_ECORRUPT;
    const uint8_t *p = data + 8;
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        cc->changes[i].type = p[0];
        cc->changes[i].node_id = get_u64(p + 1);
        p += 9;
    }
    return cc_valid(cc) ? 0 : BS_ECORRUPT;
}

/* ---------------------------------------------------------------- names */

const char *bs_raft_msg_type_name(int type)
{
    static const char *const names[BS_RAFT_MSG__COUNT] = {
        "MsgHup",          "MsgBeat",          "MsgUnreachable",
        "MsgSnapStatus",   "MsgCheckQuorum",   "MsgProp",
        "MsgApp",          "MsgAppResp",       "MsgVote",
        "MsgVoteResp",     "MsgPreVote",       "MsgPreVoteResp",
        "MsgSnap",         "MsgHeartbeat",     "MsgHeartbeatResp",
        "MsgTransferLeader", "MsgTimeoutNow",  "MsgReadIndex",
        "MsgReadIndexResp",
    };
    if (type < 0 || type >= BS_RAFT_MSG__COUNT)
        return "MsgUnknown";
    return names[type];
}

const char *bs_raft_role_name(int role)
{
    switch (role) {
    case BS_RAFT_FOLLOWER:
        return "follower";
    case BS_RAFT_CANDIDATE:
        return "candidate";
    case BS_RAFT_LEADER:
        return "leader";
    case BS_RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    }
    return "unknown";
}

void bs_raft_config_default(struct bs_raft_config *c)
{
    memset(c, 0, sizeof(*c));
    c->election_tick = 10;
    c->heartbeat_tick = 1;
    c->max_size_per_msg = 1024 * 1024;
    c->max_committed_size_per_ready = 0;
    c->max_uncommitted_entries_size = 0;
    c->max_inflight_msgs = 256;
    c->check_quorum = true;
    c->pre_vote = true;
    c->read_only_option = BS_RAFT_READ_SAFE;
}
