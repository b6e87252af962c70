/*
 * confchange.c - configuration changes (thesis chapter 4).
 *
 * Three kinds of change, all computed here as pure functions of the current
 * configuration and the change:
 *
 *   simple       one voter added or removed (or any number of learner
 *                changes): C_old -> C_new directly (thesis 4.1); valid
 *                because any majority of C_old and of C_new intersect.
 *   enter joint  C_old -> C_old,new: voters_outgoing = C_old, voters =
 *                C_new (thesis 4.3). Decisions then need both majorities.
 *   leave joint  C_old,new -> C_new: outgoing voters are dropped, voters
 *                demoted during the change become learners.
 *
 *          simple                enter joint
 *   C_old ---------> C_new   C_old -----------> C_old,new
 *                                                  |
 *                                   leave joint    |  (auto: leader
 *                              C_new <-------------+   proposes it)
 *
 * Invariants of every result are those of bs_raft__tracker_check (T2, T3),
 * plus: at least one incoming voter; at most BS_RAFT_MAX_MEMBERS members.
 */
#include <string.h>

#include "raft_int.h"

static void ids_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            ids[i] = ids[*n - 1];
            (*n)--;
            return;
        }
    }
}

static int ids_add(uint64_t *ids, uint32_t *n, uint64_t id)
{
    if (bs_raft__ids_has(ids, *n, id))
        return 0;
    if (*n >= BS_RAFT_MAX_MEMBERS)
        return BS_EINVAL;
    ids[(*n)++] = id;
    return 0;
}

bool bs_raft__cc_is_leave(const struct bs_raft_conf_change *cc)
{
    return cc->n_changes == 0;
}

static bool cc_uses_joint(const struct bs_raft_conf_change *cc)
{
    return cc->transition != BS_RAFT_CC_TRANSITION_AUTO || cc->n_changes > 1;
}

/* Applies the single changes to cs (incoming side only). */
static int apply_changes(struct bs_raft_conf_state *cs,
                         const struct bs_raft_conf_change *cc,
                         const char **why)
{
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        uint64_t id = cc->changes[i].node_id;
        if (id == BS_RAFT_NONE) {
            *why = "conf change names node 0";
            return BS_EINVAL;
        }
        switch (cc->changes[i].type) {
        case BS_RAFT_CC_ADD_VOTER:
            ids_remove(cs->learners, &cs->n_learners, id);
            ids_remove(cs->learners_next, &cs->n_learners_next, id);
            if (ids_add(cs->voters, &cs->n_voters, id) != 0) {
                *why = "too many voters";
                return BS_EINVAL;
            }
            break;
        case BS_RAFT_CC_ADD_LEARNER:
            ids_remove(cs->voters, &cs->n_voters, id);
            ids_remove(cs->learners, &cs->n_learners, id);
            ids_remove(cs->learners_next, &cs->n_learners_next, id);
            /* A voter of C_old cannot become a learner while it still
             * votes in C_old: it waits in learners_next. */
            if (bs_raft__ids_has(cs->voters_outgoing, cs->n_voters_outgoing,
                                 id)) {
                if (ids_add(cs->learners_next, &cs->n_learners_next, id)) {
                    *why = "too many learners";
                    return BS_EINVAL;
                }
            } else if (ids_add(cs->learners, &cs->n_learners, id) != 0) {
                *why = "too many learners";
                return BS_EINVAL;
            }
            break;
        case BS_RAFT_CC_REMOVE:
            ids_remove(cs->voters, &cs->n_voters, id);
            ids_remove(cs->learners, &cs->n_learners, id);
            ids_remove(cs->learners_next, &cs->n_learners_next, id);
            break;
        default:
            *why = "unknown conf change type";
            return BS_EINVAL;
        }
    }
    if (cs->n_voters == 0) {
        *why = "the change removes all voters";
        return BS_EINVAL;
    }
    uint64_t all[BS_RAFT_CONF_MAX_LIST];
    if (bs_raft_conf_members(cs, all, NULL) > BS_RAFT_MAX_MEMBERS) {
        *why = "too many members";
        return BS_EINVAL;
    }
    return 0;
}

static uint32_t voters_symdiff(const struct bs_raft_conf_state *a,
                               const struct bs_raft_conf_state *b)
{
    uint32_t d = 0;
    for (uint32_t i = 0; i < a->n_voters; i++)
        if (!bs_raft__ids_has(b->voters, b->n_voters, a->voters[i]))
            d++;
    for (uint32_t i = 0; i < b->n_voters; i++)
        if (!bs_raft__ids_has(a->voters, a->n_voters, b->voters[i]))
            d++;
    return d;
}

int bs_raft__conf_apply(const struct bs_raft_conf_state *cur,
                        const struct bs_raft_conf_change *cc,
                        struct bs_raft_conf_state *out, const char **why)
{
    bool joint = cur->n_voters_outgoing > 0;
    struct bs_raft_conf_state cs = *cur;
    *why = NULL;

    if (bs_raft__cc_is_leave(cc)) {
        /* Leave joint: C_old,new -> C_new. */
        if (!joint) {
            *why = "leave-joint outside a joint configuration";
            return BS_EINVAL;
        }
        for (uint32_t i = 0; i < cs.n_learners_next; i++)
            (void)ids_add(cs.learners, &cs.n_learners, cs.learners_next[i]);
        cs.n_learners_next = 0;
        cs.n_voters_outgoing = 0;
        cs.auto_leave = false;
        *out = cs;
        return 0;
    }
    if (joint) {
        *why = "configuration change while in a joint configuration";
        return BS_EINVAL;
    }
    if (cur->n_voters == 0) {
        *why = "cannot change an empty configuration";
        return BS_EINVAL;
    }
    if (cc_uses_joint(cc)) {
        /* Enter joint: C_old -> C_old,new. */
        memcpy(cs.voters_outgoing, cs.voters, sizeof(cs.voters));
        cs.n_voters_outgoing = cs.n_voters;
        int rc = apply_changes(&cs, cc, why);
        if (rc != 0)
            return rc;
        cs.auto_leave =
            cc->transition != BS_RAFT_CC_TRANSITION_JOINT_EXPLICIT;
        *out = cs;
        return 0;
    }
    /* Simple change (thesis 4.1): at most one voter added or removed. */
    int rc = apply_changes(&cs, cc, why);
    if (rc != 0)
        return rc;
    if (voters_symdiff(cur, &cs) > 1) {
        *why = "more than one voter changed without joint consensus";
        return BS_EINVAL;
    }
    *out = cs;
    return 0;
}
