/*
 * test_cluster.c - the `basalt cluster` commands of issue 5 (status
 * --detailed, list-nodes' new columns, isr-status, scheduler, rebalance,
 * remove-node, split, add-node) run as the real binary against a fake
 * basalt.Admin: a bs_rpc_server on 127.0.0.1 whose handlers answer from a
 * scripted cluster (three nodes, shards 0..2) with the codec of
 * rpc/admin_codec.h, and record what the CLI asked.
 *
 * The fake moves on with the polls it sees: a node being removed loses a
 * replica per ClusterStatus, a rebalance's operators leave Scheduler show
 * one by one, a split's new shard appears on the second ClusterStatus, a
 * new node registers at a chosen ClusterStatus. So the tests check the
 * tables, the JSON, the one-line-per-change progress, the waits' ends
 * (done, cancelled, timed out) and the requests' fields, without a
 * cluster. The binary is $BASALT (meson passes it).
 *
 * Check forks each test: the server (and gRPC) starts in the child only.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin_codec.h"
#include "server.h"

/* ----------------------------------------------------- the fake cluster */

static struct fake {
    pthread_mutex_t mu;
    struct bs_rpc_server *srv;
    char endpoint[64];
    int status_calls, sched_calls;
    /* scripts */
    int join_at;       /* node 4 appears at this ClusterStatus call, 0 never */
    bool removing;     /* node 3 is draining */
    bool remove_stuck; /* ... and never moves a replica */
    int remove_polls;  /* ClusterStatus calls since RemoveNode */
    bool split;        /* Split called */
    int split_polls;   /* ClusterStatus calls since */
    bool paused;
    bool rebalanced;     /* Rebalance (not dry) called */
    int rebalance_polls; /* Scheduler calls since */
    bool cancel_one;     /* the rebalance's second operator is cancelled */
    /* what the CLI asked */
    char action[16];
    uint64_t isr_shard;
    int isr_calls;
    bool dry_run;
    uint32_t max_moves;
    uint64_t remove_id;
    bool remove_cancel;
    uint64_t split_shard;
    char split_key[64];
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define MB (1ULL << 20)
#define GB (1ULL << 30)

static void node(struct bs_adm_node *n, uint64_t id, const char *state,
                 const char *rack, uint32_t replicas, uint64_t used)
{
    memset(n, 0, sizeof(*n));
    n->id = id;
    snprintf(n->client_addr, sizeof(n->client_addr), "127.0.0.1:%d",
             2379 + 100 * (int)(id - 1));
    snprintf(n->peer_addr, sizeof(n->peer_addr), "127.0.0.1:%d",
             2380 + 100 * (int)(id - 1));
    snprintf(n->http_addr, sizeof(n->http_addr), "127.0.0.1:%d",
             8080 + (int)id);
    n->alive = true;
    n->replicas = replicas;
    n->leaders = id == 1 ? 2 : 1;
    snprintf(n->state, sizeof(n->state), "%s", state);
    snprintf(n->rack, sizeof(n->rack), "%s", rack);
    n->used_bytes = used;
    n->capacity_bytes = used ? 10 * GB : 0;
    n->available_bytes = used ? 8 * GB : 0;
    n->heard_ms_ago = used ? 120 : 0;
}

static void shard(struct bs_adm_shard *s, uint64_t id, const char *start,
                  const char *end, uint64_t leader_node)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->start = (uint8_t *)start;
    s->start_len = strlen(start);
    s->end = (uint8_t *)end;
    s->end_len = strlen(end);
    s->conf_ver = 1;
    s->version = id == 1 && F.split ? 2 : 1;
    s->leader = (leader_node << 32) | leader_node;
    s->leader_node = leader_node;
    s->term = 2;
    s->commit = 10 + id;
    s->applied = 10 + id;
    s->n_replicas = 3;
    for (uint32_t r = 0; r < 3; r++) {
        s->replicas[r].id = ((uint64_t)(r + 1) << 32) | (r + 1);
        s->replicas[r].node_id = r + 1;
        s->replicas[r].match = s->commit;
        s->replicas[r].in_sync = true;
    }
}

static void on_status(struct bs_rpc_call *call, const void *req, size_t len,
                      void *ctx)
{
    struct bs_adm_node nodes[4];
    struct bs_adm_shard shards[4];
    struct bs_adm_status st = {0};
    uint8_t *out = NULL;
    size_t out_len = 0, nn = 3, ns = 3;
    const char *state3 = "up";
    uint32_t rep3 = 3;
    int rc;

    (void)req, (void)len, (void)ctx;
    pthread_mutex_lock(&F.mu);
    F.status_calls++;
    if (F.removing) {
        /* 3, 2, 0 replicas, then removed; stuck: draining with 3. */
        static const uint32_t left[] = {3, 2, 0};

        F.remove_polls++;
        state3 = "draining";
        if (F.remove_stuck)
            rep3 = 3;
        else if (F.remove_polls <= 3)
            rep3 = left[F.remove_polls - 1];
        else
            state3 = "removed", rep3 = 0;
    }
    node(&nodes[0], 1, "up", "r1", 4, 3 * MB / 2);
    node(&nodes[1], 2, "up", "r2", 3, 2048);
    node(&nodes[2], 3, state3, "", rep3, 0);
    if (F.join_at && F.status_calls >= F.join_at)
        node(&nodes[nn++], 4, "up", "r1", 0, 0);
    shard(&shards[0], 0, "", "", 1);
    if (F.split)
        F.split_polls++;
    if (F.split && F.split_polls >= 2) {
        shard(&shards[1], 1, "", "g", 1);
        shard(&shards[ns++], 9, "g", "m", 1);
    } else {
        shard(&shards[1], 1, "", "m", 1);
    }
    shard(&shards[2], 2, "m", "", 2);
    pthread_mutex_unlock(&F.mu);

    st.cluster_id = 0xabcdef;
    st.node_id = 1;
    st.nodes = nodes;
    st.n_nodes = nn;
    st.shards = shards;
    st.n_shards = ns;
    rc = bs_adm_status_encode(&st, &out, &out_len, NULL);
    if (rc != 0)
        bs_rpc_call_fail(call, rc, "fake: encode");
    else
        bs_rpc_call_reply(call, out, out_len);
    free(out);
}

static void isr_shard(struct bs_adm_isr_shard *s, uint64_t id,
                      uint64_t leader_node)
{
    memset(s, 0, sizeof(*s));
    s->shard_id = id;
    s->leader_node = leader_node;
    s->term = 2;
    s->commit = 10 + id;
    s->min_insync = 2;
    s->n_replicas = 3;
    s->size_bytes = 4096 * (id + 1);
    s->keys = 10 * id;
    s->read_qps = 5;
    s->write_qps = 7;
    s->reported_ms_ago = 300;
    for (uint32_t r = 0; r < 3; r++) {
        struct bs_adm_isr_replica *rp = &s->replicas[r];

        rp->replica_id = ((uint64_t)(r + 1) << 32) | (r + 1);
        rp->node_id = r + 1;
        rp->match = s->commit;
        rp->in_sync = true;
    }
}

static void on_isr(struct bs_rpc_call *call, const void *req, size_t len,
                   void *ctx)
{
    struct bs_adm_isr_shard all[3], *pick = all;
    uint64_t want = 0;
    uint8_t *out = NULL;
    size_t out_len = 0, n = 3;

    (void)ctx;
    ck_assert_int_eq(bs_adm_isr_req_decode(req, len, &want, NULL), 0);
    isr_shard(&all[0], 0, 1);
    isr_shard(&all[1], 1, 1);
    /* Shard 1: node 3 fell behind. Shard 2: node 3 is a learner. */
    all[1].replicas[2].in_sync = false;
    all[1].replicas[2].lag_entries = 5000;
    all[1].replicas[2].lag_ms = 12000;
    all[1].replicas[2].match = 3;
    isr_shard(&all[2], 2, 2);
    all[2].replicas[2].learner = true;
    all[2].replicas[1].lag_entries = 1;
    all[2].replicas[1].lag_ms = 15;
    pthread_mutex_lock(&F.mu);
    F.isr_shard = want;
    F.isr_calls++;
    pthread_mutex_unlock(&F.mu);
    if (want != 0) {
        n = 0;
        for (size_t i = 0; i < 3; i++) {
            if (all[i].shard_id == want) {
                pick = &all[i];
                n = 1;
            }
        }
    }
    ck_assert_int_eq(bs_adm_isr_resp_encode(pick, n, &out, &out_len, NULL), 0);
    bs_rpc_call_reply(call, out, out_len);
    free(out);
}

static void op(struct bs_adm_op *o, uint64_t id, const char *kind,
               const char *reason, uint64_t shard, uint64_t from, uint64_t to,
               uint64_t age_ms)
{
    memset(o, 0, sizeof(*o));
    o->id = id;
    snprintf(o->kind, sizeof(o->kind), "%s", kind);
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
    o->shard_id = shard;
    o->from_node = from;
    o->to_node = to;
    o->age_ms = age_ms;
}

static void on_sched(struct bs_rpc_call *call, const void *req, size_t len,
                     void *ctx)
{
    struct bs_adm_sched rq, s = {0};
    struct bs_adm_op ops[3];
    uint8_t *out = NULL;
    size_t out_len = 0;

    (void)ctx;
    ck_assert_int_eq(bs_adm_sched_req_decode(req, len, &rq, NULL), 0);
    pthread_mutex_lock(&F.mu);
    F.sched_calls++;
    snprintf(F.action, sizeof(F.action), "%s", rq.action);
    if (strcmp(rq.action, "pause") == 0)
        F.paused = true;
    else if (strcmp(rq.action, "resume") == 0)
        F.paused = false;
    s.paused = F.paused;
    s.max_concurrent_moves = 3;
    s.split_size = 64 * MB;
    s.down_after_ms = 30000;
    s.max_lag_entries = 10000;
    s.max_lag_ms = 10000;
    s.snapshot_rate = 8 * MB;
    s.ops_finished = 5;
    s.ops_cancelled = 1;
    s.ops = ops;
    op(&ops[s.n_ops++], 7, "move", "drain", 3, 3, 1, 2500);
    if (F.rebalanced) {
        /* The plan's two operators: both in flight at the first look,
         * then shard 1's is done, then shard 2's (or it is cancelled). */
        int k = F.rebalance_polls++;

        if (k < 1)
            op(&ops[s.n_ops++], 11, "move", "balance-replicas", 1, 1, 4, 10);
        else
            s.ops_finished++;
        if (k < 2)
            op(&ops[s.n_ops++], 12, "leader", "balance-leaders", 2, 0, 2, 10);
        else if (F.cancel_one)
            s.ops_cancelled++;
        else
            s.ops_finished++;
    }
    pthread_mutex_unlock(&F.mu);
    ck_assert_int_eq(bs_adm_sched_resp_encode(&s, &out, &out_len, NULL), 0);
    bs_rpc_call_reply(call, out, out_len);
    free(out);
}

static void on_rebalance(struct bs_rpc_call *call, const void *req, size_t len,
                         void *ctx)
{
    struct bs_adm_rebalance rq, r = {0};
    struct bs_adm_op plan[2], fl[1];
    uint8_t *out = NULL;
    size_t out_len = 0;

    (void)ctx;
    ck_assert_int_eq(bs_adm_rebalance_req_decode(req, len, &rq, NULL), 0);
    op(&plan[0], 0, "move", "balance-replicas", 1, 1, 4, 0);
    op(&plan[1], 0, "leader", "balance-leaders", 2, 0, 2, 0);
    op(&fl[0], 7, "move", "drain", 3, 3, 1, 2500);
    pthread_mutex_lock(&F.mu);
    F.dry_run = rq.dry_run;
    F.max_moves = rq.max_moves;
    if (!rq.dry_run)
        F.rebalanced = true;
    pthread_mutex_unlock(&F.mu);
    r.plan = plan;
    r.n_plan = rq.max_moves == 1 ? 1 : 2;
    r.in_flight = fl;
    r.n_in_flight = 1;
    bs_adm_rebalance_free(&rq);
    ck_assert_int_eq(bs_adm_rebalance_resp_encode(&r, &out, &out_len, NULL), 0);
    bs_rpc_call_reply(call, out, out_len);
    free(out);
}

static void on_remove(struct bs_rpc_call *call, const void *req, size_t len,
                      void *ctx)
{
    struct bs_adm_remove rq, r = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;

    (void)ctx;
    ck_assert_int_eq(bs_adm_remove_req_decode(req, len, &rq, NULL), 0);
    pthread_mutex_lock(&F.mu);
    F.remove_id = rq.node_id;
    F.remove_cancel = rq.cancel;
    pthread_mutex_unlock(&F.mu);
    if (rq.node_id == 2) {
        bs_rpc_call_fail_status(call, BS_RPC_FAILED_PRECONDITION,
                                "basalt: removing node 2 would leave 2 up "
                                "nodes for 3 replicas");
        return;
    }
    r.node_id = rq.node_id;
    if (rq.cancel) {
        snprintf(r.state, sizeof(r.state), "up");
        r.replicas = 3;
    } else {
        pthread_mutex_lock(&F.mu);
        F.removing = true;
        pthread_mutex_unlock(&F.mu);
        snprintf(r.state, sizeof(r.state), "draining");
        r.replicas = 3;
    }
    ck_assert_int_eq(bs_adm_remove_resp_encode(&r, &out, &out_len, NULL), 0);
    bs_rpc_call_reply(call, out, out_len);
    free(out);
}

static void on_split(struct bs_rpc_call *call, const void *req, size_t len,
                     void *ctx)
{
    struct bs_adm_split rq, r = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;

    (void)ctx;
    ck_assert_int_eq(bs_adm_split_req_decode(req, len, &rq, NULL), 0);
    pthread_mutex_lock(&F.mu);
    F.split_shard = rq.shard_id;
    snprintf(F.split_key, sizeof(F.split_key), "%.*s", (int)rq.key_len,
             rq.key ? (const char *)rq.key : "");
    F.split = rq.shard_id == 1;
    pthread_mutex_unlock(&F.mu);
    free(rq.key);
    if (rq.shard_id != 1) {
        bs_rpc_call_fail_status(call, BS_RPC_NOT_FOUND,
                                "basalt: there is no shard 5");
        return;
    }
    r.op_id = 13;
    r.new_shard_id = 9;
    ck_assert_int_eq(bs_adm_split_resp_encode(&r, &out, &out_len, NULL), 0);
    bs_rpc_call_reply(call, out, out_len);
    free(out);
}

static void fake_start(void)
{
    struct bs_rpc_server_opts o;
    char em[BS_RPC_ERRMSG_SIZE] = "";

    bs_rpc_server_opts_init(&o);
    o.addr = "127.0.0.1:0";
    ck_assert_int_eq(bs_rpc_server_create(&o, &F.srv, em), 0);
    ck_assert_int_eq(bs_rpc_server_add_unary(
                         F.srv, BS_ADM_METHOD_CLUSTER_STATUS, on_status, NULL),
                     0);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(F.srv, BS_ADM_METHOD_ISR_STATUS, on_isr, NULL),
        0);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(F.srv, BS_ADM_METHOD_SCHEDULER, on_sched, NULL),
        0);
    ck_assert_int_eq(bs_rpc_server_add_unary(F.srv, BS_ADM_METHOD_REBALANCE,
                                             on_rebalance, NULL),
                     0);
    ck_assert_int_eq(bs_rpc_server_add_unary(F.srv, BS_ADM_METHOD_REMOVE_NODE,
                                             on_remove, NULL),
                     0);
    ck_assert_int_eq(
        bs_rpc_server_add_unary(F.srv, BS_ADM_METHOD_SPLIT, on_split, NULL), 0);
    ck_assert_int_eq(bs_rpc_server_start(F.srv), 0);
    snprintf(F.endpoint, sizeof(F.endpoint), "127.0.0.1:%d",
             bs_rpc_server_port(F.srv));
}

static void fake_stop(void)
{
    bs_rpc_server_destroy(F.srv);
    F.srv = NULL;
}

/* ------------------------------------------------------ running basalt */

struct res {
    int rc;
    char out[16384];
    char err[4096];
};

static void slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
}

/* Runs `$BASALT cluster ARGS... --endpoints <fake>` into *r. */
static void run(struct res *r, ...)
{
    const char *bin = getenv("BASALT");
    char out_path[] = "/tmp/bs-cli-cluster-out-XXXXXX";
    char err_path[] = "/tmp/bs-cli-cluster-err-XXXXXX";
    char *argv[32];
    int argc = 0, fo, fe, st;
    const char *a;
    va_list ap;
    pid_t pid;

    ck_assert_msg(bin != NULL, "BASALT is not set");
    argv[argc++] = (char *)bin;
    argv[argc++] = "cluster";
    va_start(ap, r);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 28)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc++] = "--endpoints";
    argv[argc++] = F.endpoint;
    argv[argc] = NULL;
    fo = mkstemp(out_path);
    fe = mkstemp(err_path);
    ck_assert(fo >= 0 && fe >= 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        execv(bin, argv);
        _exit(127);
    }
    close(fo);
    close(fe);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp(out_path, r->out, sizeof(r->out));
    slurp(err_path, r->err, sizeof(r->err));
}

#define RUN(r, ...) run(r, __VA_ARGS__, (const char *)NULL)

/* text contains line (a whole line). */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    }
    return false;
}

#define ASSERT_LINE(text, line)                                                \
    ck_assert_msg(has_line(text, line), "no line \"%s\" in:\n%s", line, text)

static int count_lines(const char *text)
{
    int n = 0;

    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* The number at path (a.b.c) of a JSON text. */
static cJSON *json_at(cJSON *root, const char *path)
{
    char buf[128], *save = NULL;
    cJSON *n = root;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k && n;
         k = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(n))
            n = cJSON_GetArrayItem(n, atoi(k));
        else
            n = cJSON_GetObjectItem(n, k);
    }
    ck_assert_msg(n != NULL, "no %s in the JSON", path);
    return n;
}

static double num_at(cJSON *root, const char *path)
{
    cJSON *n = json_at(root, path);

    ck_assert_msg(cJSON_IsNumber(n), "%s is not a number", path);
    return n->valuedouble;
}

static const char *str_at(cJSON *root, const char *path)
{
    cJSON *n = json_at(root, path);

    ck_assert_msg(cJSON_IsString(n), "%s is not a string", path);
    return n->valuestring;
}

/* -------------------------------------------------------------- tests */

START_TEST(test_list_nodes_columns)
{
    struct res r;
    cJSON *j;

    fake_start();
    RUN(&r, "list-nodes");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_str_eq(r.out,
                     "NODE  CLIENT ADDR     PEER ADDR       HTTP ADDR       "
                     "STATE  RACK  ALIVE  REPLICAS  LEADERS  USED\n"
                     "1     127.0.0.1:2379  127.0.0.1:2380  127.0.0.1:8081  "
                     "up     r1    yes    4         2        1.5M\n"
                     "2     127.0.0.1:2479  127.0.0.1:2480  127.0.0.1:8082  "
                     "up     r2    yes    3         1        2K\n"
                     "3     127.0.0.1:2579  127.0.0.1:2580  127.0.0.1:8083  "
                     "up     -     yes    3         1        -\n");
    RUN(&r, "list-nodes", "-o", "json");
    ck_assert_int_eq(r.rc, 0);
    j = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(str_at(j, "nodes.0.state"), "up");
    ck_assert_str_eq(str_at(j, "nodes.1.rack"), "r2");
    ck_assert(num_at(j, "nodes.0.used_bytes") == 1572864);
    ck_assert(num_at(j, "nodes.0.capacity_bytes") == 10737418240.0);
    ck_assert(num_at(j, "nodes.0.available_bytes") == 8589934592.0);
    ck_assert(num_at(j, "nodes.0.heard_ms_ago") == 120);
    cJSON_Delete(j);
    fake_stop();
}
END_TEST

START_TEST(test_status_detailed)
{
    struct res r;
    cJSON *j;

    fake_start();
    RUN(&r, "status", "--detailed");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ASSERT_LINE(r.out, "cluster 0000000000abcdef, answered by node 1");
    ASSERT_LINE(r.out, "NODE  CLIENT ADDR     STATE  RACK  ALIVE  REPLICAS  "
                       "LEADERS  USED  CAPACITY  HEARD");
    ASSERT_LINE(r.out, "1     127.0.0.1:2379  up     r1    yes    4         "
                       "2        1.5M  10G       120 ms ago");
    ASSERT_LINE(r.out, "3     127.0.0.1:2579  up     -     yes    3         "
                       "1        -     -         -");
    ASSERT_LINE(r.out, "SHARD  RANGE                 LEADER  TERM  COMMIT  "
                       "APPLIED  ISR  MIN-INSYNC  REPLICAS (node, *leader, "
                       "~learner)");
    ASSERT_LINE(r.out, "0      (placement: no keys)  1       2     10      10"
                       "       3/3  2           1*,2,3");
    ASSERT_LINE(r.out, "1      [-inf, m)             1       2     11      11"
                       "       2/3  2           1*,2,3");
    /* Shard 2's learner (node 3 in the ISR report) is not a voter. */
    ASSERT_LINE(r.out, "2      [m, +inf)             2       2     12      12"
                       "       2/2  2           1,2*,3");
    ASSERT_LINE(r.out, "scheduler: running, 1 operator in flight (finished 5, "
                       "cancelled 1)");
    ASSERT_LINE(r.out, "ID  KIND  REASON  SHARD  FROM  TO  AGE");
    ASSERT_LINE(r.out, "7   move  drain   3      3     1   2.5s");
    ck_assert_str_eq(r.err, "");

    RUN(&r, "status", "--detailed", "-o", "json");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    j = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(j);
    ck_assert(num_at(j, "shards.1.isr_size") == 2);
    ck_assert(num_at(j, "shards.1.voters") == 3);
    ck_assert(num_at(j, "shards.1.min_insync") == 2);
    ck_assert(num_at(j, "shards.2.voters") == 2);
    ck_assert(cJSON_IsFalse(json_at(j, "scheduler.paused")));
    ck_assert(num_at(j, "scheduler.operators.0.id") == 7);
    ck_assert_str_eq(str_at(j, "nodes.0.state"), "up");
    cJSON_Delete(j);

    /* Plain status is unchanged: no ISR call. */
    pthread_mutex_lock(&F.mu);
    F.isr_calls = 0;
    pthread_mutex_unlock(&F.mu);
    RUN(&r, "status");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(F.isr_calls, 0);
    ck_assert_ptr_null(strstr(r.out, "MIN-INSYNC"));
    fake_stop();
}
END_TEST

START_TEST(test_isr_status)
{
    struct res r;
    cJSON *j;

    fake_start();
    RUN(&r, "isr-status");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_uint_eq(F.isr_shard, 0);
    ASSERT_LINE(r.out, "SHARD  LEADER  TERM  COMMIT  ISR  MIN-INSYNC  LAG "
                       "(node=entries/ms, *leader, ~learner, !out of sync)");
    ASSERT_LINE(r.out, "0      1       2     10      3/3  2           "
                       "1*=0/0,2=0/0,3=0/0");
    ASSERT_LINE(r.out, "1      1       2     11      2/3  2           "
                       "1*=0/0,2=0/0,3!=5000/12000");
    ASSERT_LINE(r.out, "2      2       2     12      2/2  2           "
                       "1=0/0,2*=1/15,3~=0/0");
    ASSERT_LINE(r.out, "3 shards: 0 below min-insync, 1 with a replica out "
                       "of sync");

    RUN(&r, "isr-status", "--id", "1", "-o", "json");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_uint_eq(F.isr_shard, 1);
    j = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetArraySize(json_at(j, "shards")), 1);
    ck_assert(num_at(j, "shards.0.shard_id") == 1);
    ck_assert(num_at(j, "shards.0.isr_size") == 2);
    ck_assert(num_at(j, "shards.0.size_bytes") == 8192);
    ck_assert(num_at(j, "shards.0.keys") == 10);
    ck_assert(num_at(j, "shards.0.read_qps") == 5);
    ck_assert(num_at(j, "shards.0.write_qps") == 7);
    ck_assert(num_at(j, "shards.0.reported_ms_ago") == 300);
    ck_assert(num_at(j, "shards.0.replicas.2.lag_entries") == 5000);
    ck_assert(num_at(j, "shards.0.replicas.2.lag_ms") == 12000);
    ck_assert(num_at(j, "shards.0.replicas.2.match") == 3);
    ck_assert(cJSON_IsFalse(json_at(j, "shards.0.replicas.2.in_sync")));
    ck_assert(cJSON_IsFalse(json_at(j, "shards.0.replicas.2.learner")));
    ck_assert(num_at(j, "shards.0.replicas.2.replica_id") == 12884901891.0);
    cJSON_Delete(j);

    /* --id 0, the placement group: asked as "every shard", picked here. */
    RUN(&r, "isr-status", "--id", "0", "-o", "yaml");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_uint_eq(F.isr_shard, 0);
    ASSERT_LINE(r.out, "- shard_id: 0");
    ck_assert_ptr_null(strstr(r.out, "shard_id: 1"));

    RUN(&r, "isr-status", "--id", "7");
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "basalt cluster isr-status: no ISR report for "
                            "shard 7 (no such shard, or its leader has not "
                            "reported yet)\n");
    fake_stop();
}
END_TEST

START_TEST(test_scheduler)
{
    struct res r;
    cJSON *j;

    fake_start();
    RUN(&r, "scheduler", "show");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_str_eq(F.action, "show");
    ASSERT_LINE(r.out, "scheduler             running");
    ASSERT_LINE(r.out, "max-concurrent-moves  3");
    ASSERT_LINE(r.out, "split-size            64M");
    ASSERT_LINE(r.out, "split-qps             0 (never)");
    ASSERT_LINE(r.out, "snapshot-rate         8M/s");
    ASSERT_LINE(r.out, "down-after-ms         30000");
    ASSERT_LINE(r.out, "operators finished    5");
    ASSERT_LINE(r.out, "operators cancelled   1");
    ASSERT_LINE(r.out, "1 operator in flight:");
    ASSERT_LINE(r.out, "7   move  drain   3      3     1   2.5s");

    RUN(&r, "scheduler", "pause");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_str_eq(F.action, "pause");
    ck_assert_str_eq(r.out, "scheduler paused; 1 operator in flight\n");
    RUN(&r, "scheduler", "show", "-o", "json");
    ck_assert_int_eq(r.rc, 0);
    j = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(j);
    ck_assert(cJSON_IsTrue(json_at(j, "paused")));
    ck_assert(num_at(j, "split_size") == 67108864);
    ck_assert(num_at(j, "snapshot_rate") == 8388608);
    ck_assert(num_at(j, "max_lag_entries") == 10000);
    ck_assert(num_at(j, "max_lag_ms") == 10000);
    ck_assert(num_at(j, "ops_finished") == 5);
    ck_assert_str_eq(str_at(j, "operators.0.reason"), "drain");
    ck_assert(num_at(j, "operators.0.age_ms") == 2500);
    cJSON_Delete(j);
    RUN(&r, "scheduler", "resume", "-o", "yaml");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(F.action, "resume");
    ASSERT_LINE(r.out, "paused: false");
    fake_stop();
}
END_TEST

START_TEST(test_rebalance_dry_run)
{
    struct res r;
    cJSON *j;

    fake_start();
    RUN(&r, "rebalance", "--dry-run", "--max-moves", "5");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert(F.dry_run);
    ck_assert_uint_eq(F.max_moves, 5);
    ck_assert(!F.rebalanced);
    ASSERT_LINE(r.out, "plan (dry run, nothing started): 2 operators:");
    ASSERT_LINE(r.out, "ID  KIND    REASON            SHARD  FROM  TO");
    ASSERT_LINE(r.out, "-   move    balance-replicas  1      1     4");
    ASSERT_LINE(r.out, "-   leader  balance-leaders   2      -     2");
    ASSERT_LINE(r.out, "already in flight: 1 operator");
    ASSERT_LINE(r.out, "7   move  drain   3      3     1   2.5s");
    ck_assert_int_eq(F.sched_calls, 0); /* a dry run waits for nothing */

    RUN(&r, "rebalance", "--dry-run", "-o", "json");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_uint_eq(F.max_moves, 0);
    j = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(j);
    ck_assert(cJSON_IsTrue(json_at(j, "dry_run")));
    ck_assert_int_eq(cJSON_GetArraySize(json_at(j, "plan")), 2);
    ck_assert_str_eq(str_at(j, "plan.0.kind"), "move");
    ck_assert_str_eq(str_at(j, "plan.0.reason"), "balance-replicas");
    ck_assert(num_at(j, "plan.0.shard_id") == 1);
    ck_assert(num_at(j, "plan.0.from_node") == 1);
    ck_assert(num_at(j, "plan.0.to_node") == 4);
    ck_assert(num_at(j, "plan.1.from_node") == 0);
    ck_assert(num_at(j, "in_flight.0.id") == 7);
    cJSON_Delete(j);
    fake_stop();
}
END_TEST

START_TEST(test_rebalance_waits)
{
    struct res r;

    fake_start();
    RUN(&r, "rebalance");
    ck_assert_msg(r.rc == 0, "%s\n%s", r.out, r.err);
    ck_assert(!F.dry_run);
    ASSERT_LINE(r.out, "started 2 operators:");
    ASSERT_LINE(r.out, "waiting up to 600 s for 2 operators to finish...");
    /* One line per change: 2 left, then 1, then done. */
    ASSERT_LINE(r.out, "2 of 2 operators in flight (shards 1, 2)");
    ASSERT_LINE(r.out, "1 of 2 operators in flight (shard 2)");
    ASSERT_LINE(r.out, "done: none of the plan's shards has an operator in "
                       "flight (scheduler: +2 finished, +0 cancelled)");
    ck_assert_ptr_null(strstr(r.out, "0 of 2"));
    ck_assert_str_eq(r.err, "");
    fake_stop();
}
END_TEST

START_TEST(test_rebalance_cancelled)
{
    struct res r;

    fake_start();
    F.cancel_one = true;
    RUN(&r, "rebalance", "-o", "json");
    ck_assert_int_eq(r.rc, 1);
    /* The plan is printed first (the JSON is whole), then the reason. */
    ck_assert_ptr_nonnull(strstr(r.out, "\"plan\""));
    ck_assert_str_eq(r.err, "basalt cluster rebalance: 1 operator was "
                            "cancelled meanwhile (timed out or rolled back): "
                            "see basalt cluster scheduler show and the "
                            "nodes' logs\n");
    fake_stop();
}
END_TEST

START_TEST(test_remove_node_wait)
{
    struct res r;

    fake_start();
    RUN(&r, "remove-node", "--id", "3", "--wait");
    ck_assert_msg(r.rc == 0, "%s\n%s", r.out, r.err);
    ck_assert_uint_eq(F.remove_id, 3);
    ck_assert(!F.remove_cancel);
    ck_assert_str_eq(r.out, "node 3: draining, 3 replicas to move\n"
                            "waiting up to 600 s for node 3 to be removed...\n"
                            "node 3: draining, 2 replicas left\n"
                            "node 3: draining, 0 replicas left\n"
                            "node 3: removed, 0 replicas left\n");
    ck_assert_str_eq(r.err, "");
    fake_stop();
}
END_TEST

START_TEST(test_remove_node_other)
{
    struct res r;
    cJSON *j;

    fake_start();
    /* Without --wait: one line, or the answer as JSON. */
    RUN(&r, "remove-node", "--id", "3", "-o", "json");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    j = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(j);
    ck_assert(num_at(j, "node_id") == 3);
    ck_assert_str_eq(str_at(j, "state"), "draining");
    ck_assert(num_at(j, "replicas") == 3);
    cJSON_Delete(j);
    ck_assert_int_eq(F.status_calls, 0);

    RUN(&r, "remove-node", "--id", "3", "--cancel");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert(F.remove_cancel);
    ck_assert_str_eq(r.out, "node 3: decommission cancelled, state up\n");

    /* Refused: the server's reason, on one line, exit 1. */
    RUN(&r, "remove-node", "--id", "2", "--wait");
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "basalt cluster remove-node: basalt: removing "
                            "node 2 would leave 2 up nodes for 3 replicas\n");

    /* A drain that does not move: the timeout, with what it saw. */
    F.remove_stuck = true;
    RUN(&r, "remove-node", "--id", "3", "--wait", "--timeout", "2");
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.out, "node 3: draining, 3 replicas to move\n"
                            "waiting up to 2 s for node 3 to be removed...\n");
    ck_assert_str_eq(r.err, "basalt cluster remove-node: node 3 is still "
                            "draining after 2 s (3 replicas left)\n");
    fake_stop();
}
END_TEST

START_TEST(test_split)
{
    struct res r;
    cJSON *j;

    fake_start();
    RUN(&r, "split", "--id", "1", "--key", "g");
    ck_assert_msg(r.rc == 0, "%s\n%s", r.out, r.err);
    ck_assert_uint_eq(F.split_shard, 1);
    ck_assert_str_eq(F.split_key, "g");
    ck_assert_str_eq(r.out,
                     "shard 1: split started (operator 13), new shard 9; "
                     "waiting up to 60 s for it to be routed...\n"
                     "SHARD  RANGE      LEADER  REPLICAS\n"
                     "1      [-inf, g)  1       1*,2,3\n"
                     "9      [g, m)     1       1*,2,3\n");

    F.split = false;
    F.split_polls = 0;
    RUN(&r, "split", "--id", "1", "-o", "json");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_str_eq(F.split_key, ""); /* the leader picks the middle */
    j = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(j);
    ck_assert(num_at(j, "op_id") == 13);
    ck_assert(num_at(j, "new_shard_id") == 9);
    ck_assert_str_eq(str_at(j, "shards.0.end"), "g");
    ck_assert_str_eq(str_at(j, "shards.1.start"), "g");
    ck_assert_str_eq(str_at(j, "shards.1.end"), "m");
    cJSON_Delete(j);

    RUN(&r, "split", "--id", "5");
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.err,
                     "basalt cluster split: basalt: there is no shard 5\n");
    fake_stop();
}
END_TEST

START_TEST(test_add_node)
{
    struct res r;
    cJSON *j;

    fake_start();
    F.join_at = 3; /* the command's first look, a poll, then node 4 */
    RUN(&r, "add-node", "--client-addr", "10.0.0.4:2379", "--peer-addr",
        "10.0.0.4:2380", "--data-dir", "/var/lib/basalt 4");
    ck_assert_msg(r.rc == 0, "%s\n%s", r.out, r.err);
    ASSERT_LINE(r.out, "  basalt start --join "
                       "127.0.0.1:2379,127.0.0.1:2479,127.0.0.1:2579 "
                       "--data-dir '/var/lib/basalt 4' --client-addr "
                       "10.0.0.4:2379 --peer-addr 10.0.0.4:2380");
    ASSERT_LINE(r.out, "waiting up to 300 s for a new node to register...");
    ASSERT_LINE(r.out, "node 4 registered: client 127.0.0.1:2679, peer "
                       "127.0.0.1:2680, state up");
    ck_assert_int_eq(F.status_calls, 3);

    /* JSON: the instructions go to stderr, stdout is the answer alone;
     * placeholders without the flags. */
    F.status_calls = 0;
    RUN(&r, "add-node", "-o", "json");
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_ptr_nonnull(
        strstr(r.err, "basalt start --join 127.0.0.1:2379,127.0.0.1:2479,"
                      "127.0.0.1:2579 --data-dir DATA_DIR --client-addr "
                      "HOST:CLIENT_PORT --peer-addr HOST:PEER_PORT"));
    j = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(j);
    ck_assert(num_at(j, "node.id") == 4);
    ck_assert_ptr_nonnull(strstr(str_at(j, "start_command"), "--join"));
    cJSON_Delete(j);

    /* Nobody comes. */
    F.join_at = 0;
    RUN(&r, "add-node", "--timeout", "1");
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.err, "basalt cluster add-node: no new node registered "
                            "within 1 s\n");
    fake_stop();
}
END_TEST

/* The progress of a wait is a line per change, not a line per poll. */
START_TEST(test_no_flood)
{
    struct res r;

    fake_start();
    F.remove_stuck = true;
    RUN(&r, "remove-node", "--id", "3", "--wait", "--timeout", "3");
    ck_assert_int_eq(r.rc, 1);
    ck_assert_int_eq(count_lines(r.out), 2);
    ck_assert_int_ge(F.status_calls, 2); /* it did poll */
    fake_stop();
}
END_TEST

static Suite *cluster_suite(void)
{
    Suite *s = suite_create("cli_cluster");
    TCase *tc = tcase_create("fake_admin");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_list_nodes_columns);
    tcase_add_test(tc, test_status_detailed);
    tcase_add_test(tc, test_isr_status);
    tcase_add_test(tc, test_scheduler);
    tcase_add_test(tc, test_rebalance_dry_run);
    tcase_add_test(tc, test_rebalance_waits);
    tcase_add_test(tc, test_rebalance_cancelled);
    tcase_add_test(tc, test_remove_node_wait);
    tcase_add_test(tc, test_remove_node_other);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_add_node);
    tcase_add_test(tc, test_no_flood);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cluster_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
