/*
 * check.c - what a command must satisfy before it runs, shared by
 * bs_shard_validate (before proposing), bs_shard_apply and bs_shard_range.
 *
 * Order of the checks, so that the caller hears first about what a retry
 * can fix:
 *   1. epoch    BS_ESTALE   the router's view of the shard is old;
 *   2. format   BS_EINVAL   empty key, size limits, bad enums, duplicate
 *               BS_ENOTIMPL keys in a txn branch; things not built;
 *   3. range    BS_ERANGE   a key outside [start, end).
 * Every message names the shard's current range and epoch where it helps
 * the router, and the limit (by its bs_shard_limits field) where one was
 * exceeded.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "shard_int.h"

/* ----------------------------------------------------------- format */

static int check_key(const struct bs_shard_limits *l, const char *what,
                     const uint8_t *key, size_t len, char *errmsg)
{
    if (len == 0)
        return bs_shard__err(errmsg, BS_EINVAL, "etcdserver: %s is not provided",
                             what);
    if (len > l->max_key)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "%s is %zu bytes, over the limit of %zu bytes "
                             "(max_key)",
                             what, len, l->max_key);
    (void)key;
    return 0;
}

static int check_end(const struct bs_shard_limits *l, size_t len, char *errmsg)
{
    if (len > l->max_key)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "range_end is %zu bytes, over the limit of %zu "
                             "bytes (max_key)",
                             len, l->max_key);
    return 0;
}

static int check_value(const struct bs_shard_limits *l, size_t len,
                       char *errmsg)
{
    if (len > l->max_value)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "value is %zu bytes, over the limit of %zu "
                             "bytes (max_value)",
                             len, l->max_value);
    return 0;
}

static int check_range_req(const struct bs_shard_limits *l, int64_t revision,
                           const struct bs_shard_range_req *q, char *errmsg)
{
    int rc = check_key(l, "key", q->key, q->key_len, errmsg);

    if (rc == 0)
        rc = check_end(l, q->range_end_len, errmsg);
    if (rc != 0)
        return rc;
    if (q->limit < 0)
        return bs_shard__err(errmsg, BS_EINVAL, "limit %" PRId64 " is negative",
                             q->limit);
    if (q->sort_order > BS_SHARD_SORT_DESCEND ||
        q->sort_target > BS_SHARD_SORT_VALUE)
        return bs_shard__err(errmsg, BS_EINVAL, "unknown sort order/target");
    if (q->revision < 0)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "revision %" PRId64 " is negative", q->revision);
    if (q->revision > revision)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "required revision %" PRId64
                             " is a future revision (current %" PRId64 ")",
                             q->revision, revision);
    if (q->revision > 0 && q->revision < revision)
        return bs_shard__err(errmsg, BS_ENOTIMPL,
                             "historical reads are not implemented: revision "
                             "%" PRId64 " requested, but only the latest "
                             "version of each key is kept (current revision "
                             "%" PRId64 "); read at revision 0",
                             q->revision, revision);
    return 0;
}

static int check_op(const struct bs_shard_limits *l, int64_t revision,
                    uint8_t type, const struct bs_shard_put_req *put,
                    const struct bs_shard_delete_req *del,
                    const struct bs_shard_range_req *rq, char *errmsg)
{
    int rc;

    switch (type) {
    case BS_SHARD_CMD_PUT:
        rc = check_key(l, "key", put->key, put->key_len, errmsg);
        if (rc == 0)
            rc = check_value(l, put->value_len, errmsg);
        if (rc == 0 && put->ignore_value)
            rc = bs_shard__err(errmsg, BS_ENOTIMPL,
                               "put with ignore_value is not implemented");
        if (rc == 0 && put->ignore_lease)
            rc = bs_shard__err(errmsg, BS_ENOTIMPL,
                               "put with ignore_lease is not implemented");
        return rc;
    case BS_SHARD_CMD_DELETE_RANGE:
        rc = check_key(l, "key", del->key, del->key_len, errmsg);
        if (rc == 0)
            rc = check_end(l, del->range_end_len, errmsg);
        return rc;
    case BS_SHARD_CMD_RANGE:
        return check_range_req(l, revision, rq, errmsg);
    }
    return bs_shard__err(errmsg, BS_EINVAL, "unknown operation type %u", type);
}

/*
 * etcd's checkIntervals: within one branch, no two puts of the same key
 * and no put of a key that a delete of the branch covers (the result
 * would depend on the order of the ops, which etcd chose not to define).
 * At most max_txn_ops ops, so quadratic is fine.
 */
static int check_dups(const struct bs_shard_op *ops, size_t n, char *errmsg)
{
    for (size_t i = 0; i < n; i++) {
        const struct bs_shard_put_req *p = &ops[i].u.put;

        if (ops[i].type != BS_SHARD_CMD_PUT)
            continue;
        for (size_t j = 0; j < n; j++) {
            struct bs_shard__ival iv;

            if (j == i)
                continue;
            if (ops[j].type == BS_SHARD_CMD_PUT && j < i &&
                bs_shard__cmp(p->key, p->key_len, ops[j].u.put.key,
                              ops[j].u.put.key_len) == 0)
                goto dup;
            if (ops[j].type != BS_SHARD_CMD_DELETE_RANGE)
                continue;
            bs_shard__ival_make(&iv, ops[j].u.del.key, ops[j].u.del.key_len,
                                ops[j].u.del.range_end,
                                ops[j].u.del.range_end_len);
            if (bs_shard__ival_has(&iv, p->key, p->key_len))
                goto dup;
        }
    }
    return 0;
dup:
    return bs_shard__err(errmsg, BS_EINVAL,
                         "etcdserver: duplicate key given in txn request");
}

static int check_branch(const struct bs_shard_limits *l, int64_t revision,
                        const char *name, const struct bs_shard_op *ops,
                        size_t n, char *errmsg)
{
    int rc;

    if (n > l->max_txn_ops)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "txn %s has %zu ops, over the limit of %zu "
                             "(max_txn_ops)",
                             name, n, l->max_txn_ops);
    for (size_t i = 0; i < n; i++) {
        rc = check_op(l, revision, ops[i].type, &ops[i].u.put, &ops[i].u.del,
                      &ops[i].u.range, errmsg);
        if (rc != 0)
            return rc;
    }
    return check_dups(ops, n, errmsg);
}

static int check_txn(const struct bs_shard_limits *l, int64_t revision,
                     const struct bs_shard_txn_req *t, char *errmsg)
{
    int rc;

    if (t->n_compares > l->max_txn_ops)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "txn has %zu compares, over the limit of %zu "
                             "(max_txn_ops)",
                             t->n_compares, l->max_txn_ops);
    for (size_t i = 0; i < t->n_compares; i++) {
        const struct bs_shard_compare *c = &t->compares[i];

        if (c->target > BS_SHARD_CMP_LEASE ||
            c->result > BS_SHARD_CMP_NOT_EQUAL)
            return bs_shard__err(errmsg, BS_EINVAL,
                                 "unknown compare target/result");
        rc = check_key(l, "compare key", c->key, c->key_len, errmsg);
        if (rc == 0)
            rc = check_end(l, c->range_end_len, errmsg);
        if (rc == 0 && c->target == BS_SHARD_CMP_VALUE)
            rc = check_value(l, c->value_len, errmsg);
        if (rc != 0)
            return rc;
    }
    rc = check_branch(l, revision, "success", t->success, t->n_success, errmsg);
    if (rc == 0)
        rc = check_branch(l, revision, "failure", t->failure, t->n_failure,
                          errmsg);
    return rc;
}

static int check_split(const struct bs_shard_desc *d,
                       const struct bs_shard_limits *l,
                       const struct bs_shard_split_req *s, char *errmsg)
{
    uint32_t voters = 0;
    int rc = check_key(l, "split key", s->split_key, s->split_key_len, errmsg);

    if (rc != 0)
        return rc;
    if (s->new_shard_id == 0 || s->new_shard_id == d->id)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "split: new shard id %llu is invalid",
                             (unsigned long long)s->new_shard_id);
    if (s->n_replicas == 0 || s->n_replicas > BS_RAFT_MAX_MEMBERS)
        return bs_shard__err(errmsg, BS_EINVAL,
                             "split: %u replicas given, need 1 to %d",
                             s->n_replicas, BS_RAFT_MAX_MEMBERS);
    for (uint32_t i = 0; i < s->n_replicas; i++) {
        if (s->replicas[i].id == 0 || s->replicas[i].node_id == 0)
            return bs_shard__err(errmsg, BS_EINVAL,
                                 "split: replica or node id 0");
        for (uint32_t j = 0; j < i; j++)
            if (s->replicas[j].id == s->replicas[i].id)
                return bs_shard__err(errmsg, BS_EINVAL,
                                     "split: replica id %llu given twice",
                                     (unsigned long long)s->replicas[i].id);
        voters += !s->replicas[i].learner;
    }
    if (voters == 0)
        return bs_shard__err(errmsg, BS_EINVAL, "split: no voter given");
    return 0;
}

/* ------------------------------------------------------------ range */

bool bs_shard_desc_contains(const struct bs_shard_desc *d, const void *key,
                            size_t len)
{
    return bs_shard__cmp(key, len, d->start, d->start_len) >= 0 &&
           (d->end_len == 0 || bs_shard__cmp(key, len, d->end, d->end_len) < 0);
}

static int check_ival(const struct bs_shard_desc *d, const uint8_t *key,
                      size_t key_len, const uint8_t *end, size_t end_len,
                      char *errmsg)
{
    struct bs_shard__ival iv;
    char sh[BS_SHARD_ERRMSG_LEN], k[160], e[160];
    bool ok;

    bs_shard__ival_make(&iv, key, key_len, end, end_len);
    ok = bs_shard_desc_contains(d, key, key_len);
    /* A non-empty interval must also end inside; an empty one ([a, b),
     * b <= a) reads nothing and is judged by its key alone. */
    if (ok && !iv.single && d->end_len > 0 &&
        (iv.hi_inf || bs_shard__cmp(iv.hi, iv.hi_len, iv.lo, iv.lo_len) > 0))
        ok = !iv.hi_inf &&
             bs_shard__cmp(iv.hi, iv.hi_len, d->end, d->end_len) <= 0;
    if (ok)
        return 0;
    bs_shard__fmt_shard(sh, sizeof sh, d);
    bs_shard__fmt_key(k, sizeof k, key, key_len);
    if (iv.single)
        return bs_shard__err(errmsg, BS_ERANGE,
                             "key \"%s\" is outside %s; refresh routing", k,
                             sh);
    if (iv.hi_inf)
        snprintf(e, sizeof e, "+inf");
    else
        bs_shard__fmt_key(e, sizeof e, end, end_len);
    return bs_shard__err(errmsg, BS_ERANGE,
                         "range [\"%s\", \"%s\") is not inside %s; refresh "
                         "routing",
                         k, e, sh);
}

static int check_op_range(const struct bs_shard_desc *d, uint8_t type,
                          const struct bs_shard_put_req *put,
                          const struct bs_shard_delete_req *del,
                          const struct bs_shard_range_req *rq, char *errmsg)
{
    switch (type) {
    case BS_SHARD_CMD_PUT:
        return check_ival(d, put->key, put->key_len, NULL, 0, errmsg);
    case BS_SHARD_CMD_DELETE_RANGE:
        return check_ival(d, del->key, del->key_len, del->range_end,
                          del->range_end_len, errmsg);
    case BS_SHARD_CMD_RANGE:
        return check_ival(d, rq->key, rq->key_len, rq->range_end,
                          rq->range_end_len, errmsg);
    }
    return BS_EINVAL;
}

static int check_txn_range(const struct bs_shard_desc *d,
                           const struct bs_shard_txn_req *t, char *errmsg)
{
    int rc = 0;

    for (size_t i = 0; i < t->n_compares && rc == 0; i++)
        rc = check_ival(d, t->compares[i].key, t->compares[i].key_len,
                        t->compares[i].range_end, t->compares[i].range_end_len,
                        errmsg);
    for (size_t i = 0; i < t->n_success && rc == 0; i++)
        rc = check_op_range(d, t->success[i].type, &t->success[i].u.put,
                            &t->success[i].u.del, &t->success[i].u.range,
                            errmsg);
    for (size_t i = 0; i < t->n_failure && rc == 0; i++)
        rc = check_op_range(d, t->failure[i].type, &t->failure[i].u.put,
                            &t->failure[i].u.del, &t->failure[i].u.range,
                            errmsg);
    return rc;
}

static int check_split_range(const struct bs_shard_desc *d,
                             const struct bs_shard_split_req *s, char *errmsg)
{
    char sh[BS_SHARD_ERRMSG_LEN], k[160];

    if (bs_shard__cmp(s->split_key, s->split_key_len, d->start, d->start_len) >
            0 &&
        (d->end_len == 0 ||
         bs_shard__cmp(s->split_key, s->split_key_len, d->end, d->end_len) < 0))
        return 0;
    bs_shard__fmt_shard(sh, sizeof sh, d);
    bs_shard__fmt_key(k, sizeof k, s->split_key, s->split_key_len);
    return bs_shard__err(errmsg, BS_ERANGE,
                         "split key \"%s\" is not strictly inside %s", k, sh);
}

/* ------------------------------------------------------------ entry */

int bs_shard__check(const struct bs_shard_desc *d, int64_t revision,
                    const struct bs_shard_limits *l,
                    const struct bs_shard_cmd *cmd, char *errmsg)
{
    char sh[BS_SHARD_ERRMSG_LEN];
    const struct bs_shard_epoch *e = &cmd->epoch;
    int rc;

    if (cmd->type < BS_SHARD_CMD_PUT || cmd->type > BS_SHARD_CMD_SPLIT)
        return bs_shard__err(errmsg, BS_EINVAL, "unknown command type %u",
                             cmd->type);
    /* 1. epoch. A KV command depends on the range only (version); a
     * split also on the membership it copies (conf_ver). */
    if (e->version != d->epoch.version ||
        (cmd->type == BS_SHARD_CMD_SPLIT && e->conf_ver != d->epoch.conf_ver)) {
        bs_shard__fmt_shard(sh, sizeof sh, d);
        return bs_shard__err(errmsg, BS_ESTALE,
                             "stale epoch conf_ver=%llu version=%llu: now "
                             "%s; refresh routing and retry",
                             (unsigned long long)e->conf_ver,
                             (unsigned long long)e->version, sh);
    }
    /* 2. format and limits. */
    switch (cmd->type) {
    case BS_SHARD_CMD_TXN:
        rc = check_txn(l, revision, &cmd->u.txn, errmsg);
        break;
    case BS_SHARD_CMD_SPLIT:
        rc = check_split(d, l, &cmd->u.split, errmsg);
        break;
    default:
        rc = check_op(l, revision, cmd->type, &cmd->u.put, &cmd->u.del,
                      &cmd->u.range, errmsg);
    }
    if (rc != 0)
        return rc;
    /* 3. range. */
    switch (cmd->type) {
    case BS_SHARD_CMD_TXN:
        return check_txn_range(d, &cmd->u.txn, errmsg);
    case BS_SHARD_CMD_SPLIT:
        return check_split_range(d, &cmd->u.split, errmsg);
    default:
        return check_op_range(d, cmd->type, &cmd->u.put, &cmd->u.del,
                              &cmd->u.range, errmsg);
    }
}

int bs_shard_validate(const struct bs_shard *s, const struct bs_shard_cmd *cmd,
                      char *errmsg)
{
    return bs_shard__check(&s->desc, s->revision, &s->limits, cmd, errmsg);
}
