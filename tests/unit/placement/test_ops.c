/*
 * test_ops.c - unit tests of operators, join and decommission in the
 * placement state (issue 5): the codec of OP_CREATE, OP_CANCEL,
 * SET_SCHED and REGISTER_NODE's join token (round trips, versions, every
 * truncation, fuzzing); every refusal of OP_CREATE; the ids an operator
 * reserves; auto-completion of each kind by the shard's reports; cancel,
 * and cancellation by a node's removal; the scheduler's pause; joins made
 * idempotent by their token; the decommission rule; operator records
 * (saved, deleted, reloaded, in an image, in RocksDB, older record
 * versions) and bs_pd_check on states with operators; and apply / decode
 * of all of these under injected out-of-memory (malloc, calloc and realloc
 * are wrapped at link time, see faults.h).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"

/* ------------------------------------------------ in-memory record store */

/* The callback given to bs_pd_save_to (and used to build records by
 * hand): what save writes is a deletion without a value, or a value that
 * holds at least a version byte and its CRC32C. */
static int kv_put(void *ctx, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    if (!val)
        ck_assert_uint_eq(vlen, 0);
    else
        ck_assert_uint_ge(vlen, 5);
    return th_kv_put(ctx, key, klen, val, vlen);
}

/* A copy of every record of src, through kv_put. */
static void kv_copy(struct th_kv *dst, const struct th_kv *src)
{
    for (size_t j = 0; j < src->n; j++)
        kv_put(dst, src->v[j].key, src->v[j].klen, src->v[j].val,
               src->v[j].vlen);
}

/* Records of one kind ('n', 'o', 's'). */
static size_t kv_count(const struct th_kv *kv, char kind)
{
    size_t n = 0;
    for (size_t i = 0; i < kv->n; i++)
        n += kv->v[i].klen == 10 && kv->v[i].key[1] == (uint8_t)kind;
    return n;
}

/* Replaces a record's value by payload (version byte included) sealed
 * with its CRC32C. */
static void kv_reseal(struct th_rec *r, const uint8_t *payload, size_t n)
{
    free(r->val);
    r->val = malloc(n + 4);
    memcpy(r->val, payload, n);
    uint32_t crc = bs_eng_crc32c(0, payload, n);
    for (int i = 0; i < 4; i++)
        r->val[n + i] = (uint8_t)(crc >> (8 * i));
    r->vlen = n + 4;
}

/* ------------------------------------------------------------- helpers */

static struct bs_pd_cmd op_cmd(uint8_t kind, uint64_t shard, uint64_t from,
                               uint64_t to)
{
    struct bs_pd_cmd c = {.type = BS_PD_CMD_OP_CREATE};
    c.u.op.kind = kind;
    c.u.op.reason = BS_PD_REASON_OPERATOR;
    c.u.op.shard_id = shard;
    c.u.op.from_node = from;
    c.u.op.to_node = to;
    c.u.op.created_at = 5000;
    return c;
}

/* Creates an operator and returns its id (asserting success). */
static uint64_t create(struct bs_pd_state *st, uint64_t *idx,
                       const struct bs_pd_cmd *c)
{
    struct bs_pd_result res;
    th_apply_ok(st, idx, c, &res);
    ck_assert_uint_ne(res.first_id, 0);
    th_check(st);
    return res.first_id;
}

static int set_state(struct bs_pd_state *st, uint64_t *idx, uint64_t id,
                     uint8_t to, struct bs_pd_result *res)
{
    struct bs_pd_cmd cmd = th_cmd_node_state(id, to, 3000 + *idx);
    return th_apply(st, idx, &cmd, res);
}

/* Reports shard's replica set reps (n) at the next conf_ver. */
static int report_replicas(struct bs_pd_state *st, uint64_t *idx,
                           uint64_t shard, const struct bs_pd_replica *reps,
                           uint32_t n)
{
    struct bs_pd_cmd c = th_cmd_replicas(st, shard, reps, n);
    return th_apply(st, idx, &c, NULL);
}

static int report_leader(struct bs_pd_state *st, uint64_t *idx, uint64_t shard,
                         uint64_t node)
{
    struct bs_pd_cmd c = th_cmd_leader(st, shard, node);
    return th_apply(st, idx, &c, NULL);
}

/* ------------------------------------------------------------ names */

START_TEST(test_names)
{
    ck_assert_str_eq(bs_pd_op_kind_name(BS_PD_OP_MOVE), "move");
    ck_assert_str_eq(bs_pd_op_kind_name(BS_PD_OP_LEADER), "leader");
    ck_assert_str_eq(bs_pd_op_kind_name(BS_PD_OP_SPLIT), "split");
    ck_assert_str_eq(bs_pd_op_kind_name(0), "unknown");
    ck_assert_str_eq(bs_pd_op_kind_name(4), "unknown");
    static const char *const reasons[] = {
        "operator",   "replace",          "drain",           "split-size",
        "split-load", "balance-replicas", "balance-leaders", "rack",
        "repair",     "placement"};
    for (int i = 0; i < 10; i++)
        ck_assert_str_eq(bs_pd_op_reason_name(i), reasons[i]);
    ck_assert_str_eq(bs_pd_op_reason_name(10), "unknown");
    ck_assert_str_eq(bs_pd_op_reason_name(-1), "unknown");
    ck_assert_str_eq(bs_pd_cmd_type_name(BS_PD_CMD_OP_CREATE), "op_create");
    ck_assert_str_eq(bs_pd_cmd_type_name(BS_PD_CMD_OP_CANCEL), "op_cancel");
    ck_assert_str_eq(bs_pd_cmd_type_name(BS_PD_CMD_SET_SCHED), "set_sched");
    ck_assert_str_eq(bs_pd_cmd_type_name(12), "unknown");
}
END_TEST

/* ------------------------------------------------------------ codec */

/* One command of each new kind (and a join), with the version byte each
 * must be written in. */
static size_t new_cmds(struct bs_pd_cmd *out, uint8_t *version)
{
    size_t n = 0;
    out[n] = op_cmd(BS_PD_OP_MOVE, 4, 1, 7);
    out[n].u.op.reason = BS_PD_REASON_DRAIN;
    out[n].u.op.created_at = 0x0102030405060708ull;
    version[n++] = 2;
    out[n] = op_cmd(BS_PD_OP_SPLIT, 9, 0, 0);
    out[n].u.op.split_key = (uint8_t *)"k\0ey";
    out[n].u.op.split_key_len = 4;
    out[n].u.op.reason = BS_PD_REASON_SPLIT_SIZE;
    version[n++] = 2;
    out[n] = op_cmd(BS_PD_OP_SPLIT, 9, 0, 0); /* leader picks the key */
    version[n++] = 2;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_OP_CANCEL};
    out[n].u.op_cancel.op_id = 77;
    version[n++] = 2;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_SET_SCHED};
    out[n].u.sched.paused = true;
    version[n++] = 2;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_SET_SCHED};
    version[n++] = 2;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&out[n].u.register_node.node, 0);
    out[n].u.register_node.now = 99;
    out[n].u.register_node.join_token = 0xfeedface12345678ull;
    version[n++] = 2;
    out[n] = (struct bs_pd_cmd){.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&out[n].u.register_node.node, 6);
    out[n].u.register_node.now = 99;
    version[n++] = 1; /* no token: the old format */
    return n;
}

static void assert_same(const struct bs_pd_cmd *a, const struct bs_pd_cmd *b)
{
    ck_assert_int_eq(a->type, b->type);
    switch (a->type) {
    case BS_PD_CMD_OP_CREATE:
        ck_assert_int_eq(a->u.op.kind, b->u.op.kind);
        ck_assert_int_eq(a->u.op.reason, b->u.op.reason);
        ck_assert_uint_eq(a->u.op.shard_id, b->u.op.shard_id);
        ck_assert_uint_eq(a->u.op.from_node, b->u.op.from_node);
        ck_assert_uint_eq(a->u.op.to_node, b->u.op.to_node);
        ck_assert_uint_eq(a->u.op.created_at, b->u.op.created_at);
        ck_assert_uint_eq(a->u.op.split_key_len, b->u.op.split_key_len);
        if (a->u.op.split_key_len)
            ck_assert_mem_eq(a->u.op.split_key, b->u.op.split_key,
                             a->u.op.split_key_len);
        else
            ck_assert_ptr_null(b->u.op.split_key);
        break;
    case BS_PD_CMD_OP_CANCEL:
        ck_assert_uint_eq(a->u.op_cancel.op_id, b->u.op_cancel.op_id);
        break;
    case BS_PD_CMD_SET_SCHED:
        ck_assert_int_eq(a->u.sched.paused, b->u.sched.paused);
        break;
    case BS_PD_CMD_REGISTER_NODE:
        ck_assert_mem_eq(&a->u.register_node.node, &b->u.register_node.node,
                         sizeof(struct bs_pd_node_info));
        ck_assert_uint_eq(a->u.register_node.now, b->u.register_node.now);
        ck_assert_uint_eq(a->u.register_node.join_token,
                          b->u.register_node.join_token);
        break;
    default:
        ck_abort_msg("unexpected type");
    }
}

START_TEST(test_codec_round_trip_and_versions)
{
    struct bs_pd_cmd cmds[16];
    uint8_t ver[16];
    size_t n = new_cmds(cmds, ver);
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf, *buf2;
        size_t len, len2;
        ck_assert_int_eq(bs_pd_cmd_encode(&cmds[i], &buf, &len), 0);
        ck_assert_uint_eq(buf[0], ver[i]);
        ck_assert_uint_eq(buf[1], cmds[i].type);
        struct bs_pd_cmd d;
        ck_assert_int_eq(bs_pd_cmd_decode(buf, len, &d), 0);
        assert_same(&cmds[i], &d);
        if (d.type == BS_PD_CMD_OP_CREATE && d.u.op.split_key_len)
            /* Borrowed from the bytes, not copied. */
            ck_assert(d.u.op.split_key > buf && d.u.op.split_key < buf + len);
        ck_assert_int_eq(bs_pd_cmd_encode(&d, &buf2, &len2), 0);
        th_assert_bytes(buf2, len2, buf, len);
        bs_pd_cmd_free(&d);

        /* The other version byte is refused: version 1 has none of the
         * new commands, and version 2 does not re-encode what version 1
         * carries (one encoding per command). */
        buf[0] = ver[i] == 1 ? 2 : 1;
        ck_assert_int_eq(bs_pd_cmd_decode(buf, len, &d), BS_ECORRUPT);
        buf[0] = 3;
        ck_assert_int_eq(bs_pd_cmd_decode(buf, len, &d), BS_ECORRUPT);
        buf[0] = 0;
        ck_assert_int_eq(bs_pd_cmd_decode(buf, len, &d), BS_ECORRUPT);
        free(buf);
    }

    /* A join's bytes are the old REGISTER_NODE's plus the token: an entry
     * written before the token existed decodes with token 0. */
    struct bs_pd_cmd reg = cmds[6];
    uint8_t *v2, *v1;
    size_t l2, l1;
    ck_assert_int_eq(bs_pd_cmd_encode(&reg, &v2, &l2), 0);
    reg.u.register_node.join_token = 0;
    ck_assert_int_eq(bs_pd_cmd_encode(&reg, &v1, &l1), 0);
    ck_assert_uint_eq(l1 + 8, l2);
    ck_assert_uint_eq(v1[0], 1);
    ck_assert_mem_eq(v1 + 1, v2 + 1, l1 - 1);
    ck_assert_uint_eq(v2[l2 - 1], 0xfe);
    ck_assert_uint_eq(v2[l2 - 8], 0x78);
    struct bs_pd_cmd d;
    ck_assert_int_eq(bs_pd_cmd_decode(v1, l1, &d), 0);
    ck_assert_uint_eq(d.u.register_node.join_token, 0);
    /* A version-2 register with token 0 is not canonical. */
    memset(v2 + l2 - 8, 0, 8);
    ck_assert_int_eq(bs_pd_cmd_decode(v2, l2, &d), BS_ECORRUPT);
    free(v1);
    free(v2);

    /* SET_SCHED's flag is 0 or 1. */
    uint8_t sched[] = {2, BS_PD_CMD_SET_SCHED, 2};
    ck_assert_int_eq(bs_pd_cmd_decode(sched, 3, &d), BS_ECORRUPT);
    sched[2] = 1;
    ck_assert_int_eq(bs_pd_cmd_decode(sched, 3, &d), 0);
    ck_assert(d.u.sched.paused);
    /* An operator's key over the limit is refused before it is read. */
    uint8_t big[2 + 2 + 24 + 4 + 8] = {2, BS_PD_CMD_OP_CREATE, 1};
    memset(big + 28, 0xff, 4);
    ck_assert_int_eq(bs_pd_cmd_decode(big, sizeof(big), &d), BS_ECORRUPT);
    memset(big + 28, 0, 4);
    ck_assert_int_eq(bs_pd_cmd_decode(big, sizeof(big), &d), 0);
}
END_TEST

START_TEST(test_codec_truncation_trailer_and_bad_commands)
{
    struct bs_pd_cmd cmds[16];
    uint8_t ver[16];
    size_t n = new_cmds(cmds, ver);
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf;
        size_t len;
        ck_assert_int_eq(bs_pd_cmd_encode(&cmds[i], &buf, &len), 0);
        th_assert_cmd_truncations(buf, len);
        free(buf);
    }
    /* The encoder refuses what the decoder would. */
    uint8_t *buf = NULL;
    size_t len;
    struct bs_pd_cmd c = op_cmd(BS_PD_OP_SPLIT, 3, 0, 0);
    c.u.op.split_key_len = 2; /* no key */
    ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), BS_EINVAL);
    c.u.op.split_key = (uint8_t *)"ab";
    c.u.op.split_key_len = BS_PD_MAX_KEY_LEN + 1;
    ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), BS_EINVAL);
    ck_assert_ptr_null(buf);
}
END_TEST

START_TEST(test_codec_fuzz_is_canonical)
{
    struct bs_pd_cmd cmds[16];
    uint8_t ver[16];
    size_t n = new_cmds(cmds, ver);
    /* Whatever decodes re-encodes to the very same bytes. */
    size_t ok, bad;
    th_fuzz_cmds(cmds, n, 777, 30000, 3, 5, true, &ok, &bad);
    ck_assert_uint_gt(ok, 1000);
    ck_assert_uint_gt(bad, 1000);
}
END_TEST

/* ----------------------------------------------------------- operators */

/* 4 nodes, 8 shards of 3 replicas: shard 1 on nodes 1 2 3, none on 4. */
static struct bs_pd_state *cluster4(uint64_t *idx)
{
    struct bs_pd_state *st = th_bootstrap(4, 8, 3, idx);
    const struct bs_pd_shard *s1 = bs_pd_shard_find(st, 1);
    ck_assert_ptr_nonnull(bs_pd_shard_replica_on(s1, 1));
    ck_assert_ptr_null(bs_pd_shard_replica_on(s1, 4));
    return st;
}

/* cluster4, then nodes 5..last registered (they hold no replica). */
static struct bs_pd_state *cluster4_plus(uint64_t *idx, uint64_t last)
{
    struct bs_pd_state *st = cluster4(idx);
    for (uint64_t n = 5; n <= last; n++)
        th_register(st, idx, n);
    return st;
}

/* Reports shard (3 replicas) with a learner added on node, its replica id
 * fresh from ALLOC_IDS. */
static void add_learner(struct bs_pd_state *st, uint64_t *idx, uint64_t shard,
                        uint64_t node)
{
    uint64_t rid = th_alloc(st, idx, BS_PD_ID_REPLICA, 1);
    const struct bs_pd_shard *s = bs_pd_shard_find(st, shard);
    struct bs_pd_replica reps[4];
    memcpy(reps, s->replicas, 3 * sizeof(reps[0]));
    reps[3] = (struct bs_pd_replica){BS_ENG_REPLICA_ID(node, rid), node,
                                     BS_PD_ROLE_LEARNER};
    ck_assert_int_eq(report_replicas(st, idx, shard, reps, 4), 0);
}

START_TEST(test_move_ids_and_completion)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = cluster4(&idx);
    ck_assert_uint_eq(bs_pd_next_op_id(st), 1);
    ck_assert_uint_eq(bs_pd_op_count(st), 0);
    uint64_t rseq = bs_pd_next_replica_id(st);
    uint64_t sseq = bs_pd_next_shard_id(st);

    struct bs_pd_cmd c = op_cmd(BS_PD_OP_MOVE, 1, 1, 4);
    c.u.op.reason = BS_PD_REASON_BALANCE_REPLICAS;
    c.u.op.created_at = 4242;
    /* Fields apply assigns are not taken from the proposer. */
    c.u.op.id = 99;
    c.u.op.new_replica = 12345;
    uint64_t id = create(st, &idx, &c);
    ck_assert_uint_eq(id, 1);
    ck_assert_uint_eq(bs_pd_next_op_id(st), 2);
    ck_assert_uint_eq(bs_pd_next_replica_id(st), rseq + 1);
    ck_assert_uint_eq(bs_pd_next_shard_id(st), sseq);
    const struct bs_pd_op *op = bs_pd_op_find(st, 1);
    ck_assert_ptr_nonnull(op);
    ck_assert_ptr_eq(op, bs_pd_op_at(st, 0));
    ck_assert_ptr_eq(op, bs_pd_op_of_shard(st, 1));
    ck_assert_ptr_null(bs_pd_op_of_shard(st, 2));
    ck_assert_ptr_null(bs_pd_op_at(st, 1));
    ck_assert_ptr_null(bs_pd_op_find(st, 2));
    ck_assert_int_eq(op->kind, BS_PD_OP_MOVE);
    ck_assert_int_eq(op->reason, BS_PD_REASON_BALANCE_REPLICAS);
    ck_assert_uint_eq(op->created_at, 4242);
    ck_assert_uint_eq(op->from_node, 1);
    ck_assert_uint_eq(op->to_node, 4);
    ck_assert_uint_eq(op->new_replica, BS_ENG_REPLICA_ID(4, rseq));
    ck_assert_uint_eq(op->new_shard_id, 0);
    ck_assert_uint_eq(op->n_new_replicas, 0);
    ck_assert_ptr_null(op->split_key);
    uint64_t nr = op->new_replica;

    /* The shard leader's steps, each reported: learner added, ... */
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 1);
    struct bs_pd_replica reps[4];
    memcpy(reps, s->replicas, 3 * sizeof(reps[0]));
    int leaving = -1;
    for (int i = 0; i < 3; i++)
        if (reps[i].node_id == 1)
            leaving = i;
    reps[3] = (struct bs_pd_replica){nr, 4, BS_PD_ROLE_LEARNER};
    ck_assert_int_eq(report_replicas(st, &idx, 1, reps, 4), 0);
    ck_assert_uint_eq(bs_pd_op_count(st), 1);
    th_check(st);
    /* ... joint configuration ... */
    reps[3].role = BS_PD_ROLE_INCOMING_VOTER;
    reps[leaving].role = BS_PD_ROLE_DEMOTING_VOTER;
    ck_assert_int_eq(report_replicas(st, &idx, 1, reps, 4), 0);
    ck_assert_uint_eq(bs_pd_op_count(st), 1);
    /* ... left, the old replica a learner: still on node 1 ... */
    reps[3].role = BS_PD_ROLE_VOTER;
    reps[leaving].role = BS_PD_ROLE_LEARNER;
    ck_assert_int_eq(report_replicas(st, &idx, 1, reps, 4), 0);
    ck_assert_uint_eq(bs_pd_op_count(st), 1);
    ck_assert_uint_eq(bs_pd_ops_finished(st), 0);
    /* ... removed: done. */
    reps[leaving] = reps[3];
    ck_assert_int_eq(report_replicas(st, &idx, 1, reps, 3), 0);
    ck_assert_uint_eq(bs_pd_op_count(st), 0);
    ck_assert_uint_eq(bs_pd_ops_finished(st), 1);
    ck_assert_uint_eq(bs_pd_ops_cancelled(st), 0);
    th_check(st);

    /* Removed before the promotion is reported: stays until it is. */
    s = bs_pd_shard_find(st, 2); /* nodes 4 1 2 */
    ck_assert_ptr_null(bs_pd_shard_replica_on(s, 3));
    c = op_cmd(BS_PD_OP_MOVE, 2, 2, 3);
    id = create(st, &idx, &c);
    ck_assert_uint_eq(id, 2);
    nr = bs_pd_op_find(st, 2)->new_replica;
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->n_replicas; i++)
        if (s->replicas[i].node_id != 2)
            reps[k++] = s->replicas[i];
    reps[k++] = (struct bs_pd_replica){nr, 3, BS_PD_ROLE_LEARNER};
    ck_assert_int_eq(report_replicas(st, &idx, 2, reps, k), 0);
    ck_assert_ptr_nonnull(bs_pd_op_find(st, 2));
    reps[k - 1].role = BS_PD_ROLE_VOTER;
    ck_assert_int_eq(report_replicas(st, &idx, 2, reps, k), 0);
    ck_assert_ptr_null(bs_pd_op_find(st, 2));
    ck_assert_uint_eq(bs_pd_ops_finished(st), 2);

    /* Add only (from 0): done when the new replica votes. */
    s = bs_pd_shard_find(st, 3); /* nodes 3 4 1 */
    ck_assert_ptr_null(bs_pd_shard_replica_on(s, 2));
    c = op_cmd(BS_PD_OP_MOVE, 3, 0, 2);
    create(st, &idx, &c);
    nr = bs_pd_op_of_shard(st, 3)->new_replica;
    ck_assert_uint_eq(BS_ENG_REPLICA_NODE(nr), 2);
    memcpy(reps, s->replicas, 3 * sizeof(reps[0]));
    reps[3] = (struct bs_pd_replica){nr, 2, BS_PD_ROLE_LEARNER};
    ck_assert_int_eq(report_replicas(st, &idx, 3, reps, 4), 0);
    ck_assert_ptr_nonnull(bs_pd_op_of_shard(st, 3));
    reps[3].role = BS_PD_ROLE_VOTER;
    ck_assert_int_eq(report_replicas(st, &idx, 3, reps, 4), 0);
    ck_assert_ptr_null(bs_pd_op_of_shard(st, 3));

    /* Remove only (to 0): no id reserved; done when node 2 holds none. */
    rseq = bs_pd_next_replica_id(st);
    c = op_cmd(BS_PD_OP_MOVE, 3, 2, 0);
    create(st, &idx, &c);
    ck_assert_uint_eq(bs_pd_op_of_shard(st, 3)->new_replica, 0);
    ck_assert_uint_eq(bs_pd_next_replica_id(st), rseq);
    /* A change that keeps node 2 leaves it in flight. */
    s = bs_pd_shard_find(st, 3);
    memcpy(reps, s->replicas, 4 * sizeof(reps[0]));
    ck_assert_int_eq(report_replicas(st, &idx, 3, reps, 4), 0);
    ck_assert_ptr_nonnull(bs_pd_op_of_shard(st, 3));
    k = 0;
    for (uint32_t i = 0; i < 4; i++)
        if (reps[i].node_id != 2)
            reps[k++] = reps[i];
    ck_assert_int_eq(report_replicas(st, &idx, 3, reps, k), 0);
    ck_assert_ptr_null(bs_pd_op_of_shard(st, 3));
    ck_assert_uint_eq(bs_pd_ops_finished(st), 4);
    ck_assert_uint_eq(bs_pd_next_op_id(st), 5);
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_leader_completion)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = cluster4(&idx);
    /* Bootstrap's leader is a hint (term 0): a transfer to it is fine. */
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 1);
    ck_assert_uint_eq(s->leader_term, 0);
    uint64_t hint_node = BS_ENG_REPLICA_NODE(s->leader);
    uint64_t other = hint_node == 2 ? 3 : 2;
    uint64_t rseq = bs_pd_next_replica_id(st);
    struct bs_pd_cmd c = op_cmd(BS_PD_OP_LEADER, 1, 0, hint_node);
    c.u.op.reason = BS_PD_REASON_BALANCE_LEADERS;
    uint64_t id = create(st, &idx, &c);
    ck_assert_uint_eq(bs_pd_next_replica_id(st), rseq); /* nothing reserved */
    const struct bs_pd_op *op = bs_pd_op_find(st, id);
    ck_assert_uint_eq(op->new_replica, 0);
    ck_assert_uint_eq(op->to_node, hint_node);
    /* Another leader reported: still in flight. */
    ck_assert_int_eq(report_leader(st, &idx, 1, other), 0);
    ck_assert_ptr_nonnull(bs_pd_op_find(st, id));
    /* A replica change does not finish it either. */
    s = bs_pd_shard_find(st, 1);
    ck_assert_int_eq(report_replicas(st, &idx, 1, s->replicas, 3), 0);
    ck_assert_ptr_nonnull(bs_pd_op_find(st, id));
    /* The target leads: done. */
    ck_assert_int_eq(report_leader(st, &idx, 1, hint_node), 0);
    ck_assert_ptr_null(bs_pd_op_find(st, id));
    ck_assert_uint_eq(bs_pd_ops_finished(st), 1);
    /* Now that it is reported there, another transfer there is refused;
     * elsewhere it is fine. */
    th_refused(st, &idx, &c, BS_EINVAL, "already");
    c.u.op.to_node = other;
    c.u.op.from_node = hint_node; /* where it led: informational */
    id = create(st, &idx, &c);
    ck_assert_uint_eq(bs_pd_op_find(st, id)->from_node, hint_node);
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_split_ids_and_completion)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = cluster4(&idx);
    /* Give shard 1 a learner on node 4 first: the new shard mirrors
     * roles. */
    add_learner(st, &idx, 1, 4);

    uint64_t rseq = bs_pd_next_replica_id(st);
    uint64_t sseq = bs_pd_next_shard_id(st);
    struct bs_pd_cmd c = op_cmd(BS_PD_OP_SPLIT, 1, 0, 0);
    c.u.op.reason = BS_PD_REASON_SPLIT_LOAD;
    uint8_t key[] = {0x10, 0x00, 0x01};
    c.u.op.split_key = key;
    c.u.op.split_key_len = sizeof(key);
    uint64_t id = create(st, &idx, &c);
    key[0] = 0x77; /* the state keeps its own copy */
    const struct bs_pd_op *op = bs_pd_op_find(st, id);
    ck_assert_uint_eq(op->split_key_len, 3);
    ck_assert_mem_eq(op->split_key, "\x10\x00\x01", 3);
    ck_assert_uint_eq(op->new_shard_id, sseq);
    ck_assert_uint_eq(bs_pd_next_shard_id(st), sseq + 1);
    ck_assert_uint_eq(op->n_new_replicas, 4);
    ck_assert_uint_eq(bs_pd_next_replica_id(st), rseq + 4);
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 1);
    for (uint32_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(op->new_replicas[i].node_id, s->replicas[i].node_id);
        ck_assert_int_eq(op->new_replicas[i].role, s->replicas[i].role);
        ck_assert_uint_eq(op->new_replicas[i].id,
                          BS_ENG_REPLICA_ID(s->replicas[i].node_id, rseq + i));
    }
    ck_assert_int_eq(op->new_replicas[3].role, BS_PD_ROLE_LEARNER);

    /* The reserved ids are taken: no other report may use them. Shard 3
     * (nodes 3 4 1) splits with node 1's new replica id taken from the
     * operator's reservation. */
    struct bs_pd_replica r1 = op->new_replicas[0];
    ck_assert_uint_eq(r1.node_id, 1);
    struct bs_pd_cmd other;
    th_split_cmd(st, &idx, 3, "\x50", 1, &other);
    for (uint32_t i = 0; i < other.u.split.n_replicas; i++)
        if (other.u.split.replicas[i].node_id == 1)
            other.u.split.replicas[i].id = r1.id;
    th_refused(st, &idx, &other, BS_EINVAL, "reserved");
    /* ... nor a replica change adding it elsewhere: shard 4 (nodes 2 3
     * 4) takes a learner on node 1. */
    s = bs_pd_shard_find(st, 4);
    ck_assert_ptr_null(bs_pd_shard_replica_on(s, 1));
    struct bs_pd_replica reps[4];
    memcpy(reps, s->replicas, 3 * sizeof(reps[0]));
    reps[3] = (struct bs_pd_replica){r1.id, 1, BS_PD_ROLE_LEARNER};
    struct bs_pd_cmd rc = th_cmd_replicas(st, 4, reps, 4);
    th_refused(st, &idx, &rc, BS_EINVAL, "reserved");
    /* ... nor shard 1 itself (they are the new shard's). */
    s = bs_pd_shard_find(st, 1);
    op = bs_pd_op_find(st, id);
    rc.u.replica_change.shard_id = 1;
    rc.u.replica_change.conf_ver = s->epoch.conf_ver + 1;
    memcpy(rc.u.replica_change.replicas, s->replicas, 4 * sizeof(reps[0]));
    rc.u.replica_change.replicas[3].id = op->new_replicas[3].id;
    th_refused(st, &idx, &rc, BS_EINVAL, "reserved");

    /* The split, reported with the operator's ids: done. */
    op = bs_pd_op_find(st, id);
    struct bs_pd_cmd rep;
    th_split_report(st, op, "\x10\x00\x01", 3, &rep);
    ck_assert_int_eq(th_apply(st, &idx, &rep, NULL), 0);
    ck_assert_ptr_null(bs_pd_op_find(st, id));
    ck_assert_uint_eq(bs_pd_ops_finished(st), 1);
    const struct bs_pd_shard *child = bs_pd_shard_find(st, sseq);
    ck_assert_ptr_nonnull(child);
    ck_assert_uint_eq(child->n_replicas, 4);
    th_check(st);

    /* A split to another shard id than the operator's (the shard split
     * by itself): the report is applied, the operator cancelled. */
    c = op_cmd(BS_PD_OP_SPLIT, 2, 0, 0); /* the leader picks the key */
    id = create(st, &idx, &c);
    ck_assert_ptr_null(bs_pd_op_find(st, id)->split_key);
    uint64_t nid;
    ck_assert_int_eq(th_split(st, &idx, 2, "\x30", 1, &nid), 0);
    ck_assert_uint_ne(nid, sseq + 1);
    ck_assert_ptr_null(bs_pd_op_find(st, id));
    ck_assert_uint_eq(bs_pd_ops_cancelled(st), 1);
    ck_assert_uint_eq(bs_pd_ops_finished(st), 1);
    th_check(st);

    /* A MOVE on a shard does not end when the shard splits. */
    s = bs_pd_shard_find(st, 4); /* nodes 2 3 4 */
    c = op_cmd(BS_PD_OP_MOVE, 4, 2, 1);
    id = create(st, &idx, &c);
    uint8_t k4[2];
    size_t k4len;
    bs_pd_initial_split_key(3, 8, k4, &k4len);
    k4[1] = 0x80;
    ck_assert_int_eq(th_split(st, &idx, 4, k4, 2, NULL), 0);
    ck_assert_ptr_nonnull(bs_pd_op_find(st, id));
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_create_refusals)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = cluster4_plus(&idx, 7);
    /* Node 5 removed, node 6 suspect, node 7 draining. */
    ck_assert_int_eq(set_state(st, &idx, 5, BS_PD_NODE_DRAINING, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 5, BS_PD_NODE_REMOVED, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 6, BS_PD_NODE_SUSPECT, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 7, BS_PD_NODE_DRAINING, NULL), 0);
    uint64_t rseq = bs_pd_next_replica_id(st);
    uint64_t sseq = bs_pd_next_shard_id(st);

    /* Each refused with want, in a message naming needle (NULL: any);
     * key, a split key where none belongs. */
    enum { M = BS_PD_OP_MOVE, L = BS_PD_OP_LEADER, S = BS_PD_OP_SPLIT };
    static const struct {
        uint8_t kind, reason;
        uint64_t shard, from, to;
        const char *key;
        int want;
        const char *needle;
    } cases[] = {
        {0, 0, 1, 1, 4, NULL, BS_EINVAL, "kind"},
        {4, 0, 1, 1, 4, NULL, BS_EINVAL, "kind"},
        {M, 10, 1, 1, 4, NULL, BS_EINVAL, "reason"},
        {M, 0, 99, 1, 4, NULL, BS_ENOTFOUND, "shard 99"},
        {M, 0, 1, 42, 4, NULL, BS_ENOTFOUND, "node 42"},
        {M, 0, 1, 1, 43, NULL, BS_ENOTFOUND, "node 43"},
        /* MOVE. */
        {M, 0, 1, 0, 0, NULL, BS_EINVAL, "no node"},
        {M, 0, 1, 1, 5, NULL, BS_EINVAL, "removed"},
        {M, 0, 1, 5, 4, NULL, BS_EINVAL, "removed"},
        {M, 0, 1, 1, 6, NULL, BS_EINVAL, "suspect"},
        {M, 0, 1, 1, 7, NULL, BS_EINVAL, "draining"},
        {M, 0, 1, 1, 2, NULL, BS_EINVAL, "already"},    /* 2 holds one */
        {M, 0, 1, 4, 0, NULL, BS_EINVAL, "no replica"}, /* 4 holds none */
        {M, 0, 1, 4, 4, NULL, BS_EINVAL, NULL},
        {M, 0, 1, 1, 4, "a", BS_EINVAL, "split key"},
        /* LEADER. */
        {L, 0, 1, 0, 0, NULL, BS_EINVAL, "target"},
        {L, 0, 1, 0, 4, NULL, BS_EINVAL, "no voter"}, /* no replica */
        {L, 0, 1, 0, 5, NULL, BS_EINVAL, "removed"},
        {L, 0, 1, 0, 2, "a", BS_EINVAL, "split key"},
        /* SPLIT. */
        {S, 0, 0, 0, 0, NULL, BS_EINVAL, "shard 0"},
        {S, 0, 2, 1, 0, NULL, BS_EINVAL, "names no node"},
    };
    struct bs_pd_cmd c;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = op_cmd(cases[i].kind, cases[i].shard, cases[i].from, cases[i].to);
        c.u.op.reason = cases[i].reason;
        if (cases[i].key) {
            c.u.op.split_key = (uint8_t *)cases[i].key;
            c.u.op.split_key_len = strlen(cases[i].key);
        }
        th_refused(st, &idx, &c, cases[i].want, cases[i].needle);
    }
    /* SPLIT keys not strictly inside the shard. */
    const struct bs_pd_shard *s2 = bs_pd_shard_find(st, 2);
    c = op_cmd(BS_PD_OP_SPLIT, 2, 0, 0);
    c.u.op.split_key = s2->start; /* the start itself */
    c.u.op.split_key_len = s2->start_len;
    th_refused(st, &idx, &c, BS_EINVAL, "inside");
    c.u.op.split_key = s2->end; /* the end */
    c.u.op.split_key_len = s2->end_len;
    th_refused(st, &idx, &c, BS_EINVAL, "inside");
    c.u.op.split_key = (uint8_t *)"\xff";
    c.u.op.split_key_len = 1;
    th_refused(st, &idx, &c, BS_EINVAL, "inside");
    /* Shard 1 starts at "": the empty key is "leader picks", and "\0" is
     * strictly inside. */
    c = op_cmd(BS_PD_OP_SPLIT, 1, 0, 0);
    c.u.op.split_key = (uint8_t *)"\0";
    c.u.op.split_key_len = 1;
    uint64_t id = create(st, &idx, &c);

    /* BUSY: one operator per shard, whatever the kind. */
    c = op_cmd(BS_PD_OP_MOVE, 1, 1, 4);
    th_refused(st, &idx, &c, BS_EBUSY, "in flight");
    c = op_cmd(BS_PD_OP_LEADER, 1, 0, 2);
    th_refused(st, &idx, &c, BS_EBUSY, "in flight");

    /* Refusals reserved nothing. */
    ck_assert_uint_eq(bs_pd_next_shard_id(st), sseq + 1);
    ck_assert_uint_eq(bs_pd_next_replica_id(st), rseq + 3);
    ck_assert_uint_eq(bs_pd_next_op_id(st), id + 1);
    bs_pd_state_destroy(st);

    /* Remove-only of a shard's only voter; a move onto a full shard. */
    idx = 0;
    st = th_bootstrap(2, 1, 1, &idx);
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 1);
    uint64_t holder = s->replicas[0].node_id;
    c = op_cmd(BS_PD_OP_MOVE, 1, holder, 0);
    th_refused(st, &idx, &c, BS_EINVAL, "no voter");
    c = op_cmd(BS_PD_OP_MOVE, 1, holder, holder == 1 ? 2 : 1);
    create(st, &idx, &c);
    bs_pd_state_destroy(st);

    idx = 0;
    st = th_bootstrap(BS_RAFT_MAX_MEMBERS + 1, 1, BS_RAFT_MAX_MEMBERS, &idx);
    s = bs_pd_shard_find(st, 1);
    ck_assert_uint_eq(s->n_replicas, BS_RAFT_MAX_MEMBERS);
    uint64_t spare = 0;
    for (uint64_t n = 1; n <= BS_RAFT_MAX_MEMBERS + 1; n++)
        if (!bs_pd_shard_replica_on(s, n))
            spare = n;
    c = op_cmd(BS_PD_OP_MOVE, 1, 0, spare);
    th_refused(st, &idx, &c, BS_EINVAL, "replicas already");
    c = op_cmd(BS_PD_OP_MOVE, 1, s->replicas[0].node_id, spare);
    th_refused(st, &idx, &c, BS_EINVAL, "replicas already");
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_cancel_and_sched)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = cluster4(&idx);
    struct bs_pd_cmd cancel = {.type = BS_PD_CMD_OP_CANCEL};
    cancel.u.op_cancel.op_id = 1;
    th_refused(st, &idx, &cancel, BS_ENOTFOUND, "operator 1");
    cancel.u.op_cancel.op_id = 0;
    th_refused(st, &idx, &cancel, BS_ENOTFOUND, NULL);

    struct bs_pd_cmd c = op_cmd(BS_PD_OP_MOVE, 1, 1, 4);
    uint64_t a = create(st, &idx, &c);
    c = op_cmd(BS_PD_OP_SPLIT, 2, 0, 0);
    uint64_t b = create(st, &idx, &c);
    c = op_cmd(BS_PD_OP_LEADER, 3, 0, 4);
    uint64_t d = create(st, &idx, &c);
    ck_assert_uint_eq(bs_pd_op_count(st), 3);
    uint64_t rseq = bs_pd_next_replica_id(st);
    cancel.u.op_cancel.op_id = b;
    ck_assert_int_eq(th_apply(st, &idx, &cancel, NULL), 0);
    ck_assert_uint_eq(bs_pd_op_count(st), 2);
    ck_assert_ptr_null(bs_pd_op_find(st, b));
    ck_assert_uint_eq(bs_pd_op_at(st, 0)->id, a);
    ck_assert_uint_eq(bs_pd_op_at(st, 1)->id, d);
    ck_assert_uint_eq(bs_pd_ops_cancelled(st), 1);
    /* Reserved ids are not handed out again. */
    ck_assert_uint_eq(bs_pd_next_replica_id(st), rseq);
    th_refused(st, &idx, &cancel, BS_ENOTFOUND, NULL);
    /* The shard is free again. */
    c = op_cmd(BS_PD_OP_SPLIT, 2, 0, 0);
    ck_assert_uint_eq(create(st, &idx, &c), d + 1);
    th_check(st);

    /* The scheduler's pause, a replicated flag. */
    ck_assert(!bs_pd_sched(st)->paused);
    struct bs_pd_cmd sc = {.type = BS_PD_CMD_SET_SCHED};
    th_refused(st, &idx, &sc, BS_ESTALE, "running");
    sc.u.sched.paused = true;
    ck_assert_int_eq(th_apply(st, &idx, &sc, NULL), 0);
    ck_assert(bs_pd_sched(st)->paused);
    th_refused(st, &idx, &sc, BS_ESTALE, "paused");
    sc.u.sched.paused = false;
    ck_assert_int_eq(th_apply(st, &idx, &sc, NULL), 0);
    ck_assert(!bs_pd_sched(st)->paused);

    /* Before bootstrap, like every command. */
    struct bs_pd_state *empty = bs_pd_state_create();
    uint64_t e = 0;
    struct bs_pd_result res;
    ck_assert_int_eq(th_apply(empty, &e, &sc, &res), BS_EINVAL);
    ck_assert(strstr(res.msg, "before bootstrap"));
    bs_pd_state_destroy(empty);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_removed_node_cancels_its_operators)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = cluster4_plus(&idx, 6);
    /* Operators naming node 5 (a move to it) and node 6 (a split whose
     * new shard would have a replica there), and one naming neither. */
    struct bs_pd_cmd c = op_cmd(BS_PD_OP_MOVE, 1, 1, 5);
    uint64_t to5 = create(st, &idx, &c);
    add_learner(st, &idx, 2, 6);
    c = op_cmd(BS_PD_OP_SPLIT, 2, 0, 0);
    uint64_t split6 = create(st, &idx, &c);
    c = op_cmd(BS_PD_OP_LEADER, 3, 0, 4);
    uint64_t keep = create(st, &idx, &c);
    /* The learner on 6 leaves again (no operator needed to report it). */
    c = th_cmd_moved(st, 2, 6, 0, 0);
    ck_assert_int_eq(th_apply(st, &idx, &c, NULL), 0);
    ck_assert_uint_eq(bs_pd_op_count(st), 3);

    ck_assert_int_eq(set_state(st, &idx, 5, BS_PD_NODE_DRAINING, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 5, BS_PD_NODE_REMOVED, NULL), 0);
    ck_assert_ptr_null(bs_pd_op_find(st, to5));
    ck_assert_uint_eq(bs_pd_ops_cancelled(st), 1);
    th_check(st);
    ck_assert_int_eq(set_state(st, &idx, 6, BS_PD_NODE_DRAINING, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 6, BS_PD_NODE_REMOVED, NULL), 0);
    ck_assert_ptr_null(bs_pd_op_find(st, split6));
    ck_assert_uint_eq(bs_pd_ops_cancelled(st), 2);
    ck_assert_ptr_nonnull(bs_pd_op_find(st, keep));
    ck_assert_uint_eq(bs_pd_ops_finished(st), 0);
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

/* ---------------------------------------------------------------- join */

static int join(struct bs_pd_state *st, uint64_t *idx, uint64_t token,
                uint64_t now, struct bs_pd_result *res)
{
    struct bs_pd_cmd c = th_cmd_register(0, now);
    c.u.register_node.join_token = token;
    return th_apply(st, idx, &c, res);
}

START_TEST(test_join_is_idempotent_by_token)
{
    /* Bootstrap with ids out of order and gaps: joins start above all. */
    struct bs_pd_node_info ni[3];
    th_node_info(&ni[0], 30);
    th_node_info(&ni[1], 7);
    th_node_info(&ni[2], 12);
    struct bs_pd_cmd boot = {.type = BS_PD_CMD_BOOTSTRAP};
    boot.u.bootstrap.cluster_id = 1;
    boot.u.bootstrap.initial_shards = 2;
    boot.u.bootstrap.replicas = 3;
    boot.u.bootstrap.n_nodes = 3;
    boot.u.bootstrap.nodes = ni;
    struct bs_pd_state *st = bs_pd_state_create();
    uint64_t idx = 0;
    ck_assert_int_eq(th_apply(st, &idx, &boot, NULL), 0);
    ck_assert_uint_eq(bs_pd_next_node_id(st), 31);
    for (size_t i = 0; i < bs_pd_node_count(st); i++)
        ck_assert_uint_eq(bs_pd_node_at(st, i)->join_token, 0);

    struct bs_pd_result res;
    struct bs_pd_cmd c = {.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&c.u.register_node.node, 0);
    th_refused(st, &idx, &c, BS_EINVAL, "join token");

    ck_assert_int_eq(join(st, &idx, 0xabc, 6000, &res), 0);
    ck_assert_uint_eq(res.first_id, 31);
    const struct bs_pd_node *n = bs_pd_node_find(st, 31);
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(n->state, BS_PD_NODE_UP);
    ck_assert_uint_eq(n->join_token, 0xabc);
    ck_assert_uint_eq(n->last_heartbeat, 6000);
    ck_assert_uint_eq(n->state_since, 6000);
    ck_assert_str_eq(n->info.client_addr, "10.0.0.0:2379");
    ck_assert_uint_eq(bs_pd_next_node_id(st), 32);

    /* The same join again (a retry, a second commit): its id, no node. */
    ck_assert_int_eq(join(st, &idx, 0xabc, 6100, &res), BS_ESTALE);
    ck_assert_uint_eq(res.first_id, 31);
    ck_assert_uint_eq(bs_pd_node_count(st), 4);
    ck_assert_uint_eq(bs_pd_next_node_id(st), 32);
    ck_assert_uint_eq(bs_pd_node_find(st, 31)->last_heartbeat, 6000);

    /* Another token, another node; bad labels are refused. */
    ck_assert_int_eq(join(st, &idx, 0xdef, 6200, &res), 0);
    ck_assert_uint_eq(res.first_id, 32);
    th_node_info(&c.u.register_node.node, 0);
    c.u.register_node.join_token = 0x123;
    strcpy(c.u.register_node.node.labels[0].key, "");
    th_refused(st, &idx, &c, BS_EINVAL, "label");

    /* Registering by id ignores the token (and keeps the stored one). */
    c = (struct bs_pd_cmd){.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&c.u.register_node.node, 31);
    c.u.register_node.join_token = 0x999;
    ck_assert_int_eq(th_apply(st, &idx, &c, NULL), 0); /* new addresses */
    ck_assert_uint_eq(bs_pd_node_find(st, 31)->join_token, 0xabc);
    ck_assert_str_eq(bs_pd_node_find(st, 31)->info.client_addr,
                     "10.0.0.31:2379");
    th_node_info(&c.u.register_node.node, 40);
    ck_assert_int_eq(th_apply(st, &idx, &c, NULL), 0);
    ck_assert_uint_eq(bs_pd_node_find(st, 40)->join_token, 0);
    ck_assert_int_eq(join(st, &idx, 0x999, 6300, &res), 0);
    ck_assert_uint_eq(res.first_id, 41);

    /* A removed node's token no longer finds it. */
    ck_assert_int_eq(set_state(st, &idx, 32, BS_PD_NODE_DRAINING, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 32, BS_PD_NODE_REMOVED, NULL), 0);
    ck_assert_int_eq(join(st, &idx, 0xdef, 6400, &res), 0);
    ck_assert_uint_eq(res.first_id, 42);
    th_check(st);

    /* Joined ids stay below 2^32. */
    c = (struct bs_pd_cmd){.type = BS_PD_CMD_REGISTER_NODE};
    th_node_info(&c.u.register_node.node, UINT32_MAX);
    ck_assert_int_eq(th_apply(st, &idx, &c, NULL), 0);
    ck_assert_uint_eq(bs_pd_next_node_id(st), (uint64_t)UINT32_MAX + 1);
    ck_assert_int_eq(join(st, &idx, 0x5555, 7000, &res), BS_EINVAL);
    ck_assert(strstr(res.msg, "exhausted"));
    ck_assert_uint_eq(res.first_id, 0);
    th_check(st);
    bs_pd_state_destroy(st);
}
END_TEST

/* ------------------------------------------------------- decommission */

START_TEST(test_decommission_rule)
{
    char msg[160];
    struct bs_pd_result res;
    /* 3 nodes, 3 replicas: nowhere to move the replicas to. */
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 8, 3, &idx);
    ck_assert_int_eq(bs_pd_can_decommission(st, 2, msg), BS_EINVAL);
    ck_assert_msg(strstr(msg, "only 2 other nodes"), "%s", msg);
    ck_assert_int_eq(bs_pd_can_decommission(st, 2, NULL), BS_EINVAL);
    ck_assert_int_eq(set_state(st, &idx, 2, BS_PD_NODE_DRAINING, &res),
                     BS_EINVAL);
    ck_assert_str_eq(res.msg, msg);
    ck_assert_int_eq(bs_pd_node_find(st, 2)->state, BS_PD_NODE_UP);
    ck_assert_int_eq(bs_pd_can_decommission(st, 9, msg), BS_ENOTFOUND);
    ck_assert(strstr(msg, "no node 9"));
    ck_assert_int_eq(set_state(st, &idx, 9, BS_PD_NODE_DRAINING, NULL),
                     BS_ENOTFOUND);
    th_check(st);
    bs_pd_state_destroy(st);

    /* 4 nodes: allowed, one at a time. */
    idx = 0;
    st = th_bootstrap(4, 8, 3, &idx);
    ck_assert_int_eq(bs_pd_can_decommission(st, 2, msg), 0);
    ck_assert_str_eq(msg, "");
    ck_assert_int_eq(set_state(st, &idx, 2, BS_PD_NODE_DRAINING, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 2, msg), BS_EINVAL);
    ck_assert(strstr(msg, "already"));
    ck_assert_int_eq(bs_pd_can_decommission(st, 3, msg), BS_EBUSY);
    ck_assert(strstr(msg, "node 2"));
    ck_assert_int_eq(set_state(st, &idx, 3, BS_PD_NODE_DRAINING, &res),
                     BS_EBUSY);
    ck_assert(strstr(res.msg, "node 2"));
    /* A second drain of the same node is a duplicate. */
    ck_assert_int_eq(set_state(st, &idx, 2, BS_PD_NODE_DRAINING, NULL),
                     BS_ESTALE);
    /* Cancelling the decommission is always allowed; then node 3 may. */
    ck_assert_int_eq(set_state(st, &idx, 2, BS_PD_NODE_UP, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 3, BS_PD_NODE_DRAINING, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 3, BS_PD_NODE_UP, NULL), 0);
    /* A node that is not up does not count as a place to move to. */
    ck_assert_int_eq(set_state(st, &idx, 4, BS_PD_NODE_SUSPECT, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 1, msg), BS_EINVAL);
    ck_assert(strstr(msg, "only 2 other nodes"));
    /* ... but a suspect node itself may be decommissioned. */
    ck_assert_int_eq(bs_pd_can_decommission(st, 4, msg), 0);
    th_check(st);
    bs_pd_state_destroy(st);

    /* 5 nodes: enough of them, but shard 1 (nodes 1 2 3) with node 2
     * down would keep 1 of 3 voters if node 1 left. */
    idx = 0;
    st = th_bootstrap(5, 10, 3, &idx);
    const struct bs_pd_shard *s1 = bs_pd_shard_find(st, 1);
    for (uint64_t n = 1; n <= 3; n++)
        ck_assert_ptr_nonnull(bs_pd_shard_replica_on(s1, n));
    ck_assert_int_eq(set_state(st, &idx, 2, BS_PD_NODE_DOWN, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 1, msg), BS_EINVAL);
    ck_assert_msg(strstr(msg, "not a majority"), "%s", msg);
    ck_assert_int_eq(set_state(st, &idx, 1, BS_PD_NODE_DRAINING, &res),
                     BS_EINVAL);
    ck_assert(strstr(res.msg, "majority"));
    /* Node 2 back: fine. */
    ck_assert_int_eq(set_state(st, &idx, 2, BS_PD_NODE_UP, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 1, msg), 0);
    th_check(st);
    bs_pd_state_destroy(st);

    /* Shard 0 counts too: 7 nodes, its voters on 1..5; with 3 and 4 down,
     * node 5 leaving would keep 2 of 5 (four other nodes are up). */
    idx = 0;
    st = th_bootstrap(7, 1, 3, &idx);
    ck_assert_uint_eq(bs_pd_shard_find(st, 0)->n_replicas, 5);
    ck_assert_int_eq(set_state(st, &idx, 3, BS_PD_NODE_DOWN, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 4, BS_PD_NODE_DOWN, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 5, msg), BS_EINVAL);
    ck_assert_msg(strstr(msg, "shard 0 would keep 2 of its 5"), "%s", msg);
    bs_pd_state_destroy(st);

    /* A removed node is not found. */
    idx = 0;
    st = th_bootstrap(4, 2, 3, &idx);
    th_register(st, &idx, 5);
    ck_assert_int_eq(set_state(st, &idx, 5, BS_PD_NODE_DRAINING, NULL), 0);
    ck_assert_int_eq(set_state(st, &idx, 5, BS_PD_NODE_REMOVED, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 5, msg), BS_ENOTFOUND);
    ck_assert(strstr(msg, "removed"));
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_decommission_joint_config)
{
    /* During a joint change both configurations need a majority: shard 1
     * with voters {1, 2} and 3 demoting (outgoing {1, 2, 3}), incoming 4
     * (incoming {1, 2, 4}). */
    char msg[160];
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(6, 1, 3, &idx);
    const struct bs_pd_shard *s = bs_pd_shard_find(st, 1);
    uint64_t rid = th_alloc(st, &idx, BS_PD_ID_REPLICA, 1);
    struct bs_pd_replica reps[4];
    memcpy(reps, s->replicas, 3 * sizeof(reps[0]));
    ck_assert_uint_eq(reps[2].node_id, 3);
    reps[2].role = BS_PD_ROLE_DEMOTING_VOTER;
    reps[3] = (struct bs_pd_replica){BS_ENG_REPLICA_ID(4, rid), 4,
                                     BS_PD_ROLE_INCOMING_VOTER};
    ck_assert_int_eq(report_replicas(st, &idx, 1, reps, 4), 0);
    /* Node 4 down: with node 1 leaving, the incoming configuration
     * {1 2 4} keeps only node 2: refused. */
    ck_assert_int_eq(set_state(st, &idx, 4, BS_PD_NODE_DOWN, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 1, msg), BS_EINVAL);
    ck_assert(strstr(msg, "1 of its 3"));
    ck_assert_int_eq(set_state(st, &idx, 4, BS_PD_NODE_UP, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 1, msg), 0);
    /* Node 3 down instead: the outgoing configuration {1 2 3} keeps
     * only node 2 (the incoming one, {2 4}, would do). */
    ck_assert_int_eq(set_state(st, &idx, 3, BS_PD_NODE_DOWN, NULL), 0);
    ck_assert_int_eq(bs_pd_can_decommission(st, 1, msg), BS_EINVAL);
    ck_assert(strstr(msg, "1 of its 3"));
    bs_pd_state_destroy(st);
}
END_TEST

/* --------------------------------------------------------- persistence */

/* A state with every kind of operator, a joined node and the scheduler
 * paused. */
static struct bs_pd_state *busy_state(uint64_t *idx, uint64_t ids[3])
{
    struct bs_pd_state *st = cluster4(idx);
    struct bs_pd_result res;
    ck_assert_int_eq(join(st, idx, 0x77, 100, &res), 0);
    struct bs_pd_cmd c = op_cmd(BS_PD_OP_MOVE, 1, 1, 4);
    ids[0] = create(st, idx, &c);
    c = op_cmd(BS_PD_OP_SPLIT, 2, 0, 0);
    c.u.op.split_key = (uint8_t *)"\x30";
    c.u.op.split_key_len = 1;
    c.u.op.reason = BS_PD_REASON_SPLIT_SIZE;
    ids[1] = create(st, idx, &c);
    c = op_cmd(BS_PD_OP_LEADER, 3, 0, 4);
    ids[2] = create(st, idx, &c);
    struct bs_pd_cmd sc = {.type = BS_PD_CMD_SET_SCHED};
    sc.u.sched.paused = true;
    ck_assert_int_eq(th_apply(st, idx, &sc, NULL), 0);
    return st;
}

START_TEST(test_records_saved_deleted_and_reloaded)
{
    uint64_t idx = 0, ids[3];
    struct bs_pd_state *st = busy_state(&idx, ids);
    struct th_kv kv = {0};
    ck_assert_int_eq(bs_pd_save_to(st, kv_put, &kv), 0);
    ck_assert_uint_eq(kv_count(&kv, 'o'), 3);
    ck_assert_uint_eq(kv_count(&kv, 'n'), 5);
    ck_assert_uint_eq(kv.dels, 0);
    th_check(st);
    struct bs_pd_state *back = bs_pd_state_create();
    char err[256];
    ck_assert_msg(th_kv_load(&kv, back, err) == 0, "%s", err);
    ck_assert(th_equal(st, back));
    ck_assert_uint_eq(bs_pd_op_count(back), 3);
    ck_assert_uint_eq(bs_pd_next_op_id(back), 4);
    ck_assert(bs_pd_sched(back)->paused);
    ck_assert_uint_eq(bs_pd_node_find(back, 5)->join_token, 0x77);
    ck_assert_mem_eq(bs_pd_op_find(back, ids[1])->split_key, "\x30", 1);
    th_check(back);

    /* Nothing changed: meta only. */
    kv.puts = kv.dels = 0;
    ck_assert_int_eq(bs_pd_save_to(st, kv_put, &kv), 0);
    ck_assert_uint_eq(kv.puts, 1);
    ck_assert_uint_eq(kv.dels, 0);

    /* The leader operator finishes, the split one is cancelled: two
     * deletions, the shard record of the leader report, meta. */
    ck_assert_int_eq(report_leader(st, &idx, 3, 4), 0);
    struct bs_pd_cmd cancel = {.type = BS_PD_CMD_OP_CANCEL};
    cancel.u.op_cancel.op_id = ids[1];
    ck_assert_int_eq(th_apply(st, &idx, &cancel, NULL), 0);
    kv.puts = kv.dels = 0;
    ck_assert_int_eq(bs_pd_save_to(st, kv_put, &kv), 0);
    ck_assert_uint_eq(kv.dels, 2);
    ck_assert_uint_eq(kv.puts, 2);
    ck_assert_uint_eq(kv_count(&kv, 'o'), 1);
    ck_assert_ptr_nonnull(th_kv_find_id(&kv, 'o', ids[0]));
    ck_assert_int_eq(th_kv_load(&kv, back, err), 0);
    ck_assert(th_equal(st, back));
    ck_assert_uint_eq(bs_pd_ops_finished(back), 1);
    ck_assert_uint_eq(bs_pd_ops_cancelled(back), 1);

    /* Created and cancelled between two saves: never written; the
     * deletion of a record that is not there is harmless. */
    ck_assert_ptr_nonnull(bs_pd_shard_replica_on(bs_pd_shard_find(st, 5), 1));
    struct bs_pd_cmd c = op_cmd(BS_PD_OP_LEADER, 5, 0, 1);
    uint64_t tmp = create(st, &idx, &c);
    cancel.u.op_cancel.op_id = tmp;
    ck_assert_int_eq(th_apply(st, &idx, &cancel, NULL), 0);
    th_check(st);
    kv.puts = kv.dels = 0;
    ck_assert_int_eq(bs_pd_save_to(st, kv_put, &kv), 0);
    ck_assert_uint_eq(kv.puts, 1);
    ck_assert_uint_eq(kv.dels, 1);
    ck_assert_int_eq(th_kv_load(&kv, back, err), 0);
    ck_assert(th_equal(st, back));

    /* A full save writes every record, deletes nothing. */
    struct th_kv all = {0};
    ck_assert_int_eq(bs_pd_save_all_to(st, kv_put, &all), 0);
    ck_assert_uint_eq(all.dels, 0);
    ck_assert_uint_eq(all.n, kv.n);
    ck_assert_int_eq(th_kv_load(&all, back, err), 0);
    ck_assert(th_equal(st, back));
    th_kv_free(&all);

    /* Image round trip. */
    struct bs_pd_state *img_back = th_copy(st);
    ck_assert(th_equal(st, img_back));
    bs_pd_state_destroy(img_back);

    th_kv_free(&kv);
    bs_pd_state_destroy(back);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_replay_with_saves_matches)
{
    /* A random log of operator commands and reports, applied straight to
     * one state and, to another, with a save and a reload after every
     * entry: the two must end equal, and every state must check. */
    uint64_t seed = 99;
    uint64_t idx = 0, ridx = 0;
    struct bs_pd_state *a = cluster4_plus(&idx, 5);
    struct bs_pd_state *b = cluster4_plus(&ridx, 5);
    struct th_kv kv = {0};
    ck_assert_int_eq(bs_pd_save_to(b, kv_put, &kv), 0);
    size_t outcomes[32] = {0};
    for (int step = 0; step < 1500; step++) {
        struct bs_pd_cmd c;
        uint64_t r = th_rand(&seed);
        uint64_t shard = 1 + th_rand(&seed) % 8;
        uint64_t n1 = 1 + th_rand(&seed) % 5, n2 = 1 + th_rand(&seed) % 5;
        const struct bs_pd_shard *s = bs_pd_shard_find(a, shard);
        const struct bs_pd_op *op = bs_pd_op_of_shard(a, shard);
        switch (r % 6) {
        case 0:
            c = op_cmd(BS_PD_OP_MOVE, shard, th_rand(&seed) % 3 ? n1 : 0,
                       th_rand(&seed) % 3 ? n2 : 0);
            break;
        case 1:
            c = op_cmd(BS_PD_OP_LEADER, shard, 0, n1);
            break;
        case 2:
            c = (struct bs_pd_cmd){.type = BS_PD_CMD_OP_CANCEL};
            c.u.op_cancel.op_id = 1 + th_rand(&seed) % bs_pd_next_op_id(a);
            break;
        case 3:
            /* Execute the shard's move if any, in one report. */
            if (!op || op->kind != BS_PD_OP_MOVE) {
                c = (struct bs_pd_cmd){.type = BS_PD_CMD_SET_SCHED};
                c.u.sched.paused = th_rand(&seed) % 2;
                break;
            }
            c = th_cmd_moved(a, shard, op->from_node, op->to_node,
                             op->new_replica);
            break;
        case 4:
            c = (struct bs_pd_cmd){.type = BS_PD_CMD_SHARD_LEADER};
            c.u.leader.shard_id = shard;
            c.u.leader.leader = s->replicas[th_rand(&seed) % s->n_replicas].id;
            c.u.leader.term = s->leader_term + 1;
            break;
        default:
            c = th_cmd_node_state(n1, (uint8_t)(1 + th_rand(&seed) % 4),
                                  (uint64_t)step);
            break;
        }
        uint8_t *buf;
        size_t len;
        ck_assert_int_eq(bs_pd_cmd_encode(&c, &buf, &len), 0);
        int ra = bs_pd_apply(a, ++idx, buf, len, NULL);
        int rb = bs_pd_apply(b, ++ridx, buf, len, NULL);
        free(buf);
        ck_assert_int_eq(ra, rb);
        ck_assert_int_ne(ra, BS_ENOMEM);
        outcomes[-ra]++;
        th_check(a);
        ck_assert_int_eq(bs_pd_save_to(b, kv_put, &kv), 0);
        char err[256];
        ck_assert_msg(th_kv_load(&kv, b, err) == 0, "step %d: %s", step, err);
    }
    ck_assert(th_equal(a, b));
    ck_assert_uint_gt(outcomes[0], 200);
    ck_assert_uint_gt(outcomes[-BS_EBUSY], 10);
    ck_assert_uint_gt(bs_pd_ops_finished(a), 20);
    ck_assert_uint_gt(bs_pd_ops_cancelled(a), 20);
    th_kv_free(&kv);
    bs_pd_state_destroy(a);
    bs_pd_state_destroy(b);
}
END_TEST

START_TEST(test_old_record_versions_load)
{
    /* A state saved by the previous release: meta and node records of
     * version 1 (no operator fields, no join token). */
    uint64_t idx = 0;
    struct bs_pd_state *st = th_bootstrap(3, 4, 3, &idx);
    struct th_kv kv = {0};
    ck_assert_int_eq(bs_pd_save_to(st, kv_put, &kv), 0);
    struct th_rec *m = th_kv_find_id(&kv, 'm', 0);
    ck_assert_uint_eq(m->val[0], 2);
    /* v1 meta = v2 minus next_op_id, 2 counters, paused, op count. */
    size_t v1len = m->vlen - 4 - (8 + 8 + 8 + 1 + 8);
    uint8_t *p = malloc(v1len);
    memcpy(p, m->val, v1len);
    p[0] = 1;
    kv_reseal(m, p, v1len);
    free(p);
    for (uint64_t id = 1; id <= 3; id++) {
        struct th_rec *n = th_kv_find_id(&kv, 'n', id);
        ck_assert_uint_eq(n->val[0], 2);
        size_t l = n->vlen - 4 - 8;
        p = malloc(l);
        memcpy(p, n->val, l);
        p[0] = 1;
        kv_reseal(n, p, l);
        free(p);
    }
    struct bs_pd_state *back = bs_pd_state_create();
    char err[256];
    ck_assert_msg(th_kv_load(&kv, back, err) == 0, "%s", err);
    ck_assert(th_equal(st, back));
    ck_assert_uint_eq(bs_pd_next_op_id(back), 1);

    /* Version 3 of anything is from the future. */
    m = th_kv_find_id(&kv, 'm', 0);
    p = malloc(m->vlen - 4);
    memcpy(p, m->val, m->vlen - 4);
    p[0] = 3;
    kv_reseal(m, p, m->vlen - 4);
    free(p);
    ck_assert_int_eq(th_kv_load(&kv, back, err), BS_ECORRUPT);
    ck_assert(strstr(err, "version"));
    th_kv_free(&kv);
    bs_pd_state_destroy(back);
    bs_pd_state_destroy(st);
}
END_TEST

/* An operator record (version 1) built by hand. */
struct raw_op {
    uint64_t id;
    uint8_t kind, reason;
    uint64_t shard, from, to, new_replica;
    const char *key;
    uint64_t new_shard;
    uint32_t n_reps;
    struct bs_pd_replica reps[4];
    uint64_t created_at;
};

static void put_le(uint8_t **p, uint64_t v, int w)
{
    for (int i = 0; i < w; i++)
        *(*p)++ = (uint8_t)(v >> (8 * i));
}

static void kv_put_raw_op(struct th_kv *kv, const struct raw_op *o)
{
    uint8_t buf[512], *p = buf;
    size_t klen = o->key ? strlen(o->key) : 0;
    put_le(&p, 1, 1);
    put_le(&p, o->id, 8);
    put_le(&p, o->kind, 1);
    put_le(&p, o->reason, 1);
    put_le(&p, o->shard, 8);
    put_le(&p, o->from, 8);
    put_le(&p, o->to, 8);
    put_le(&p, o->new_replica, 8);
    put_le(&p, klen, 4);
    memcpy(p, o->key ? o->key : "", klen);
    p += klen;
    put_le(&p, o->new_shard, 8);
    put_le(&p, o->n_reps, 1);
    for (uint32_t i = 0; i < o->n_reps; i++) {
        put_le(&p, o->reps[i].id, 8);
        put_le(&p, o->reps[i].node_id, 8);
        put_le(&p, o->reps[i].role, 1);
    }
    put_le(&p, o->created_at, 8);
    uint8_t key[10];
    th_rec_key(key, 'o', o->id);
    struct th_rec r = {0};
    kv_reseal(&r, buf, (size_t)(p - buf));
    kv_put(kv, key, 10, r.val, r.vlen);
    free(r.val);
}

START_TEST(test_check_refuses_broken_operators)
{
    /* A valid state with two operators; then records that break one
     * operator invariant each, loaded: refused naming it. */
    uint64_t idx = 0;
    struct bs_pd_state *st = cluster4(&idx);
    struct bs_pd_cmd c = op_cmd(BS_PD_OP_MOVE, 1, 1, 4);
    create(st, &idx, &c);
    c = op_cmd(BS_PD_OP_SPLIT, 2, 0, 0);
    create(st, &idx, &c);
    const struct bs_pd_op good_move = *bs_pd_op_find(st, 1);
    const struct bs_pd_op good_split = *bs_pd_op_find(st, 2);
    struct th_kv base = {0};
    ck_assert_int_eq(bs_pd_save_to(st, kv_put, &base), 0);
    struct bs_pd_state *back = bs_pd_state_create();
    ck_assert_int_eq(th_kv_load(&base, back, NULL), 0);

    struct {
        struct raw_op op;
        const char *why;
    } cases[] = {
        {{.id = 1, .kind = 4, .shard = 1, .from = 1}, "unknown kind"},
        {{.id = 1, .kind = 1, .reason = 11, .shard = 1, .from = 1},
         "unknown reason"},
        {{.id = 1, .kind = 1, .shard = 77, .from = 1}, "shard that does not"},
        {{.id = 1, .kind = 1, .shard = 2, .from = 1}, "one shard"},
        {{.id = 1, .kind = 1, .shard = 1, .from = 9}, "node that does not"},
        {{.id = 1, .kind = 1, .shard = 1}, "names no node"},
        {{.id = 1,
          .kind = 1,
          .shard = 1,
          .to = 4,
          .new_replica = BS_ENG_REPLICA_ID(3, 1)},
         "new replica id"},
        {{.id = 1,
          .kind = 1,
          .shard = 1,
          .to = 4,
          .new_replica = BS_ENG_REPLICA_ID(4, 1000000)},
         "new replica id"},
        {{.id = 1, .kind = 2, .shard = 1}, "no target"},
        {{.id = 1, .kind = 1, .shard = 1, .from = 1, .key = "x"},
         "split fields"},
        {{.id = 1, .kind = 3, .shard = 0}, "shard 0"},
        {{.id = 1, .kind = 3, .shard = 1, .new_shard = 2}, "new shard id"},
        {{.id = 1, .kind = 3, .shard = 1, .new_shard = 100}, "new shard id"},
        {{.id = 1, .kind = 3, .shard = 1, .new_shard = 9, .key = "\xf0"},
         "strictly inside"},
        {{.id = 1,
          .kind = 3,
          .shard = 1,
          .new_shard = 9,
          .key = "\x01",
          .n_reps = 0},
         "no replica"},
        {{.id = 9, .kind = 1, .shard = 3, .from = 1}, "counter"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct th_kv kv = {0};
        kv_copy(&kv, &base);
        if (cases[i].op.id != 1) {
            /* Replace operator 1 by the bad one (same count). */
            uint8_t k1[10] = {'p', 'o', 0, 0, 0, 0, 0, 0, 0, 1};
            kv_put(&kv, k1, 10, NULL, 0);
        }
        kv_put_raw_op(&kv, &cases[i].op);
        int rc = th_kv_load(&kv, back, err);
        ck_assert_msg(rc == BS_ECORRUPT && strstr(err, cases[i].why),
                      "case %zu: %s: %s", i, bs_err_name(rc), err);
        ck_assert_msg(strstr(err, "inconsistent"), "%s", err);
        th_kv_free(&kv);
    }

    /* The same records, well formed, load (the builder is right). */
    struct th_kv kv = {0};
    kv_copy(&kv, &base);
    struct raw_op ok = {.id = 1,
                        .kind = good_move.kind,
                        .shard = good_move.shard_id,
                        .from = good_move.from_node,
                        .to = good_move.to_node,
                        .new_replica = good_move.new_replica,
                        .created_at = good_move.created_at};
    kv_put_raw_op(&kv, &ok);
    ck_assert_msg(th_kv_load(&kv, back, err) == 0, "%s", err);
    ck_assert(th_equal(st, back));

    /* Record-level faults. */
    struct raw_op split = {.id = 2,
                           .kind = good_split.kind,
                           .shard = good_split.shard_id,
                           .new_shard = good_split.new_shard_id,
                           .n_reps = good_split.n_new_replicas,
                           .created_at = good_split.created_at};
    memcpy(split.reps, good_split.new_replicas, sizeof(split.reps[0]) * 3);
    kv_put_raw_op(&kv, &split);
    ck_assert_int_eq(th_kv_load(&kv, back, err), 0);
    ck_assert(th_equal(st, back));
    /* An operator record under another id's key. */
    struct th_rec *r2 = th_kv_find_id(&kv, 'o', 2);
    uint8_t k3[10] = {'p', 'o', 0, 0, 0, 0, 0, 0, 0, 3};
    uint8_t *v2 = malloc(r2->vlen);
    size_t v2len = r2->vlen;
    memcpy(v2, r2->val, v2len);
    kv_put(&kv, k3, 10, v2, v2len);
    ck_assert_int_eq(th_kv_load(&kv, back, err), BS_ECORRUPT);
    ck_assert_msg(strstr(err, "operator/3"), "%s", err);
    kv_put(&kv, k3, 10, NULL, 0);
    /* A missing operator record. */
    kv_put(&kv, th_kv_find_id(&kv, 'o', 2)->key, 10, NULL, 0);
    ck_assert_int_eq(th_kv_load(&kv, back, err), BS_ECORRUPT);
    ck_assert_msg(strstr(err, "meta") && strstr(err, "operators"), "%s", err);
    /* A bad checksum. */
    kv_put(&kv, k3, 10, v2, v2len);
    th_kv_find_id(&kv, 'o', 3)->val[4] ^= 1;
    ck_assert_int_eq(th_kv_load(&kv, back, err), BS_ECORRUPT);
    ck_assert(strstr(err, "operator/3") && strstr(err, "checksum"));
    free(v2);
    th_kv_free(&kv);
    th_kv_free(&base);
    bs_pd_state_destroy(back);
    bs_pd_state_destroy(st);
}
END_TEST

START_TEST(test_image_with_operators_every_byte_flip)
{
    uint64_t idx = 0, ids[3];
    struct bs_pd_state *st = busy_state(&idx, ids);
    size_t len;
    uint8_t *img = th_image(st, &len);
    struct bs_pd_state *back = bs_pd_state_create();
    ck_assert_int_eq(bs_pd_decode_all(back, img, len, NULL), 0);
    ck_assert(th_equal(st, back));
    char err[256];
    for (size_t i = 0; i < len; i++) {
        img[i] ^= 0x21;
        int rc = bs_pd_decode_all(back, img, len, err);
        ck_assert_msg(rc == BS_ECORRUPT, "flip byte %zu: %s", i,
                      bs_err_name(rc));
        img[i] ^= 0x21;
    }
    for (size_t cut = 0; cut < len; cut += 7)
        ck_assert_int_eq(bs_pd_decode_all(back, img, cut, NULL), BS_ECORRUPT);
    ck_assert(th_equal(st, back));
    free(img);
    bs_pd_state_destroy(back);
    bs_pd_state_destroy(st);
}
END_TEST

/* --------------------------------------------------------- in RocksDB */

START_TEST(test_rocksdb_deletes_finished_operators)
{
    char *dir = th_tmpdir();
    struct bs_eng_db *db = th_open_db(dir);
    ck_assert_int_eq(bs_eng_db_shard_create(db, BS_PD_SHARD_PLACEMENT), 0);
    uint64_t idx = 0, ids[3];
    struct bs_pd_state *st = busy_state(&idx, ids);
    th_save_db(st, db);
    struct bs_pd_cmd cancel = {.type = BS_PD_CMD_OP_CANCEL};
    cancel.u.op_cancel.op_id = ids[0];
    ck_assert_int_eq(th_apply(st, &idx, &cancel, NULL), 0);
    ck_assert_int_eq(report_leader(st, &idx, 3, 4), 0);
    th_save_db(st, db);
    bs_eng_db_close(db);

    db = th_open_db(dir);
    struct bs_pd_state *back = bs_pd_state_create();
    char err[256];
    ck_assert_msg(bs_pd_load(db, back, err) == 0, "%s", err);
    ck_assert(th_equal(st, back));
    ck_assert_uint_eq(bs_pd_op_count(back), 1);
    ck_assert_ptr_nonnull(bs_pd_op_find(back, ids[1]));
    bs_eng_db_close(db);
    th_rmdir_all(dir);
    bs_pd_state_destroy(back);
    bs_pd_state_destroy(st);
}
END_TEST

/* ------------------------------------------------------ out of memory */

/* Applies cmd at the next index under every injected allocation failure
 * (th_apply_under_faults); at least min_runs of them must have failed. */
static void apply_under_faults(struct bs_pd_state *st, uint64_t *idx,
                               const struct bs_pd_cmd *cmd, int want,
                               long min_runs)
{
    uint8_t *buf;
    size_t blen;
    ck_assert_int_eq(bs_pd_cmd_encode(cmd, &buf, &blen), 0);
    long k = th_apply_under_faults(st, ++*idx, buf, blen, want);
    ck_assert_int_ge(k, min_runs);
    free(buf);
}

START_TEST(test_apply_all_or_nothing_under_enomem)
{
    uint64_t idx = 0;
    struct bs_pd_state *st = cluster4_plus(&idx, 6);
    /* Operators: creation grows ops[] and dirty_ops[] and copies the
     * key; several in a row make the arrays grow. */
    for (uint64_t s = 1; s <= 8; s++) {
        struct bs_pd_cmd c = op_cmd(BS_PD_OP_SPLIT, s, 0, 0);
        uint8_t key[3];
        size_t klen;
        /* The shard's start plus a byte: strictly inside. */
        bs_pd_initial_split_key((uint32_t)s - 1, 8, key, &klen);
        key[klen] = 0x10;
        c.u.op.split_key = key;
        c.u.op.split_key_len = klen + 1;
        apply_under_faults(st, &idx, &c, 0, s == 1 ? 2 : 1);
    }
    ck_assert_uint_eq(bs_pd_op_count(st), 8);
    /* Cancel, and the refusals. */
    struct bs_pd_cmd cancel = {.type = BS_PD_CMD_OP_CANCEL};
    cancel.u.op_cancel.op_id = 3;
    apply_under_faults(st, &idx, &cancel, 0, 0);
    apply_under_faults(st, &idx, &cancel, BS_ENOTFOUND, 0);
    struct bs_pd_cmd busy = op_cmd(BS_PD_OP_LEADER, 1, 0, 2);
    apply_under_faults(st, &idx, &busy, BS_EBUSY, 0);
    struct bs_pd_cmd move = op_cmd(BS_PD_OP_MOVE, 3, 0, 5);
    apply_under_faults(st, &idx, &move, 0, 0);
    /* A split report that finishes an operator. */
    struct bs_pd_cmd rep;
    const struct bs_pd_op *op = bs_pd_op_of_shard(st, 2);
    th_split_report(st, op, op->split_key, op->split_key_len, &rep);
    uint8_t key2[8];
    memcpy(key2, op->split_key, op->split_key_len);
    rep.u.split.split_key = key2;
    apply_under_faults(st, &idx, &rep, 0, 3);
    ck_assert_ptr_null(bs_pd_op_of_shard(st, 2));
    /* Joins, and a removal that cancels the operator naming node 5. */
    struct bs_pd_cmd j = th_cmd_register(0, 0);
    j.u.register_node.join_token = 0x42;
    for (int i = 0; i < 9; i++) {
        apply_under_faults(st, &idx, &j, 0, 0);
        j.u.register_node.join_token++;
    }
    j.u.register_node.join_token = 0x42;
    apply_under_faults(st, &idx, &j, BS_ESTALE, 0);
    struct bs_pd_cmd ns = th_cmd_node_state(5, BS_PD_NODE_DRAINING, 0);
    apply_under_faults(st, &idx, &ns, 0, 0);
    ns.u.node_state.state = BS_PD_NODE_REMOVED;
    size_t n_before = bs_pd_op_count(st);
    apply_under_faults(st, &idx, &ns, 0, 0);
    ck_assert_uint_eq(bs_pd_op_count(st), n_before - 1);
    struct bs_pd_cmd sc = {.type = BS_PD_CMD_SET_SCHED};
    sc.u.sched.paused = true;
    apply_under_faults(st, &idx, &sc, 0, 0);

    /* The image of this state decodes all-or-nothing too. */
    size_t len;
    uint8_t *img = th_image(st, &len);
    struct bs_pd_state *dst = th_bootstrap(1, 1, 1, &(uint64_t){0});
    ck_assert_int_gt(th_decode_all_under_faults(dst, img, len), 10);
    ck_assert(th_equal(st, dst));
    free(img);
    bs_pd_state_destroy(dst);
    bs_pd_state_destroy(st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement_ops");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_codec_round_trip_and_versions);
    tcase_add_test(tc, test_codec_truncation_trailer_and_bad_commands);
    tcase_add_test(tc, test_codec_fuzz_is_canonical);
    tcase_add_test(tc, test_move_ids_and_completion);
    tcase_add_test(tc, test_leader_completion);
    tcase_add_test(tc, test_split_ids_and_completion);
    tcase_add_test(tc, test_create_refusals);
    tcase_add_test(tc, test_cancel_and_sched);
    tcase_add_test(tc, test_removed_node_cancels_its_operators);
    tcase_add_test(tc, test_join_is_idempotent_by_token);
    tcase_add_test(tc, test_decommission_rule);
    tcase_add_test(tc, test_decommission_joint_config);
    tcase_add_test(tc, test_records_saved_deleted_and_reloaded);
    tcase_add_test(tc, test_replay_with_saves_matches);
    tcase_add_test(tc, test_old_record_versions_load);
    tcase_add_test(tc, test_check_refuses_broken_operators);
    tcase_add_test(tc, test_image_with_operators_every_byte_flip);
    tcase_add_test(tc, test_rocksdb_deletes_finished_operators);
    tcase_add_test(tc, test_apply_all_or_nothing_under_enomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(suite());
}
