/*
 * cluster.c - `basalt cluster status` and `basalt cluster ping`: the
 * operator's view of a cluster through basalt.Admin (rpc/proto/admin.proto,
 * decoded by rpc/admin_codec.h).
 *
 * status asks one node (bs_rpc_conn fails over between the --endpoints)
 * for ClusterStatus and prints its nodes and shards as two tables, or the
 * same data as JSON or YAML. Both structured forms are built from one
 * cJSON tree; YAML is that tree replayed through libyaml's emitter, so the
 * two can never disagree. 64-bit numbers go into the tree as raw JSON
 * numbers (exact), not as cJSON's doubles.
 *
 * ping asks every endpoint in turn (bs_rpc_conn_call_one: no failover,
 * the point is to learn which answer) and prints who answered and how
 * fast.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yaml.h>

#include "admin_codec.h"
#include "cli.h"
#include "client.h"
#include "opts.h"

#define DEFAULT_ENDPOINTS  "127.0.0.1:2379"
#define DEFAULT_TIMEOUT_MS 5000

enum { F_ENDPOINTS, F_OUTPUT, F_TIMEOUT, F_HELP, F_N };

static const struct bs_cli_flag flags[] = {
    [F_ENDPOINTS] = {"endpoints", 0, BS_CLI_ARG_REQUIRED},
    [F_OUTPUT] = {"output", 'o', BS_CLI_ARG_REQUIRED},
    [F_TIMEOUT] = {"timeout-ms", 0, BS_CLI_ARG_REQUIRED},
    [F_HELP] = {"help", 'h', BS_CLI_ARG_NONE},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: basalt cluster status [--endpoints H:P,...] "
            "[-o table|json|yaml]\n"
            "       basalt cluster ping [--endpoints H:P,...]\n"
            "\n"
            "status: the nodes (address, liveness, replicas and leaders\n"
            "they hold) and the shards (key range, leader, term, commit\n"
            "and applied index, replicas) as the answering node sees them.\n"
            "ping: asks each endpoint in turn who it is and how long it\n"
            "takes to answer; fails if any does not.\n"
            "\n"
            "flags:\n"
            "  --endpoints H:P,...  nodes' client addresses (default %s)\n"
            "  -o, --output FMT     status: table (default), json or yaml\n"
            "  --timeout-ms MS      per request (default %d)\n"
            "  -h, --help           this text\n",
            DEFAULT_ENDPOINTS, DEFAULT_TIMEOUT_MS);
}

/* ------------------------------------------------------------- tables */

#define MAX_COLS 8

/* A table of strings, printed with columns as wide as their widest cell. */
struct table {
    size_t n_cols, n_rows;
    char **cells; /* row-major, n_rows * n_cols, owned */
};

static void table_add(struct table *t, char **row /* takes ownership */)
{
    char **nc = realloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof(*nc));

    if (nc == NULL) {
        for (size_t c = 0; c < t->n_cols; c++)
            free(row[c]);
        return;
    }
    t->cells = nc;
    memcpy(&nc[t->n_rows * t->n_cols], row, t->n_cols * sizeof(*row));
    t->n_rows++;
}

static void table_print(struct table *t)
{
    size_t w[MAX_COLS] = {0};

    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *s = t->cells[r * t->n_cols + c];
            size_t l = s ? strlen(s) : 0;

            if (l > w[c])
                w[c] = l;
        }
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *s = t->cells[r * t->n_cols + c];

            if (c + 1 == t->n_cols)
                printf("%s\n", s ? s : "");
            else
                printf("%-*s  ", (int)w[c], s ? s : "");
        }
    }
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n_rows = 0;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, f);
    n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
        return NULL;
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* A shard boundary: text or 0x-hex; empty: "-inf" (start) or "+inf". */
static char *bound_str(const uint8_t *b, size_t len, bool is_end)
{
    if (len == 0)
        return strdup(is_end ? "+inf" : "-inf");
    return bs_cli_bytes_str(b, len);
}

static void print_table(const struct bs_adm_status *st)
{
    struct table t = {0};

    printf("cluster %016" PRIx64 ", answered by node %" PRIu64 "\n\n",
           st->cluster_id, st->node_id);
    t.n_cols = 5;
    table_add(&t,
              (char *[]){strdup("NODE"), strdup("CLIENT ADDR"), strdup("ALIVE"),
                         strdup("REPLICAS"), strdup("LEADERS")});
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_adm_node *n = &st->nodes[i];

        table_add(&t, (char *[]){fmt("%" PRIu64, n->id), strdup(n->client_addr),
                                 strdup(n->alive ? "yes" : "no"),
                                 fmt("%" PRIu32, n->replicas),
                                 fmt("%" PRIu32, n->leaders)});
    }
    table_print(&t);
    printf("\n");

    t.n_cols = 7;
    table_add(&t,
              (char *[]){strdup("SHARD"), strdup("RANGE"), strdup("LEADER"),
                         strdup("TERM"), strdup("COMMIT"), strdup("APPLIED"),
                         strdup("REPLICAS (node, *leader, ~learner)")});
    for (size_t i = 0; i < st->n_shards; i++) {
        const struct bs_adm_shard *s = &st->shards[i];
        char *start = bound_str(s->start, s->start_len, false);
        char *end = bound_str(s->end, s->end_len, true);
        char reps[BS_RAFT_MAX_MEMBERS * 24 + 1] = "";
        size_t off = 0;

        for (uint32_t r = 0;
             r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS && off < 400; r++) {
            const struct bs_adm_replica *rp = &s->replicas[r];

            off += (size_t)snprintf(reps + off, sizeof(reps) - off,
                                    "%s%" PRIu64 "%s%s", r ? "," : "",
                                    rp->node_id, rp->id == s->leader ? "*" : "",
                                    rp->learner ? "~" : "");
        }
        table_add(&t, (char *[]){
                          fmt("%" PRIu64, s->id),
                          fmt("[%s, %s)", start ? start : "?", end ? end : "?"),
                          s->leader_node ? fmt("%" PRIu64, s->leader_node)
                                         : strdup("-"),
                          fmt("%" PRIu64, s->term), fmt("%" PRIu64, s->commit),
                          fmt("%" PRIu64, s->applied), strdup(reps)});
        free(start);
        free(end);
    }
    table_print(&t);
}

/* ------------------------------------------------------ JSON and YAML */

static void add_u64(cJSON *o, const char *name, uint64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    cJSON_AddRawToObject(o, name, buf);
}

static void add_i64(cJSON *o, const char *name, int64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    cJSON_AddRawToObject(o, name, buf);
}

/* name (text) or name_hex = b[len]. */
static void add_bytes(cJSON *o, const char *name, const uint8_t *b, size_t len)
{
    char field[32];
    char *s;

    if (bs_cli_is_text(b, len)) {
        s = bs_cli_bytes_str(b, len);
        if (s != NULL)
            cJSON_AddStringToObject(o, name, s);
    } else {
        s = bs_cli_hex(b, len);
        snprintf(field, sizeof(field), "%s_hex", name);
        if (s != NULL)
            cJSON_AddStringToObject(o, field, s);
    }
    free(s);
}

static cJSON *status_tree(const struct bs_adm_status *st)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *nodes, *shards;

    add_u64(root, "cluster_id", st->cluster_id);
    add_u64(root, "node_id", st->node_id);
    nodes = cJSON_AddArrayToObject(root, "nodes");
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_adm_node *n = &st->nodes[i];
        cJSON *o = cJSON_CreateObject();

        add_u64(o, "id", n->id);
        cJSON_AddStringToObject(o, "client_addr", n->client_addr);
        cJSON_AddStringToObject(o, "peer_addr", n->peer_addr);
        cJSON_AddStringToObject(o, "http_addr", n->http_addr);
        cJSON_AddBoolToObject(o, "alive", n->alive);
        add_u64(o, "replicas", n->replicas);
        add_u64(o, "leaders", n->leaders);
        cJSON_AddItemToArray(nodes, o);
    }
    shards = cJSON_AddArrayToObject(root, "shards");
    for (size_t i = 0; i < st->n_shards; i++) {
        const struct bs_adm_shard *s = &st->shards[i];
        cJSON *o = cJSON_CreateObject(), *reps;

        add_u64(o, "id", s->id);
        add_bytes(o, "start", s->start, s->start_len);
        add_bytes(o, "end", s->end, s->end_len);
        add_u64(o, "conf_ver", s->conf_ver);
        add_u64(o, "version", s->version);
        add_u64(o, "leader", s->leader);
        add_u64(o, "leader_node", s->leader_node);
        add_u64(o, "term", s->term);
        add_u64(o, "commit", s->commit);
        add_u64(o, "applied", s->applied);
        add_i64(o, "revision", s->revision);
        reps = cJSON_AddArrayToObject(o, "replicas");
        for (uint32_t r = 0; r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS;
             r++) {
            const struct bs_adm_replica *rp = &s->replicas[r];
            cJSON *ro = cJSON_CreateObject();

            add_u64(ro, "id", rp->id);
            add_u64(ro, "node_id", rp->node_id);
            cJSON_AddBoolToObject(ro, "learner", rp->learner);
            add_u64(ro, "match", rp->match);
            cJSON_AddBoolToObject(ro, "in_sync", rp->in_sync);
            cJSON_AddItemToArray(reps, ro);
        }
        cJSON_AddItemToArray(shards, o);
    }
    return root;
}

/* Whether a YAML reader would take the plain scalar s for something other
 * than a string (a number, a boolean, null): then it must be quoted. */
static bool needs_quotes(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on",
                                        "off",  "null",  "~",   "y",  "n"};
    char *end;

    if (s[0] == '\0')
        return true;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(s, words[i]) == 0)
            return true;
    }
    (void)strtod(s, &end);
    return *end == '\0';
}

static int emit_scalar(yaml_emitter_t *em, const char *s, bool quote)
{
    yaml_event_t ev;

    yaml_scalar_event_initialize(
        &ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
        quote ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
    return yaml_emitter_emit(em, &ev);
}

static int emit_tree(yaml_emitter_t *em, const cJSON *n)
{
    yaml_event_t ev;
    const cJSON *c;

    if (cJSON_IsObject(n)) {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                            YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(em, &ev))
            return 0;
        cJSON_ArrayForEach(c, n)
        {
            if (!emit_scalar(em, c->string, needs_quotes(c->string)) ||
                !emit_tree(em, c))
                return 0;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev);
    }
    if (cJSON_IsArray(n)) {
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                             YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(em, &ev))
            return 0;
        cJSON_ArrayForEach(c, n)
        {
            if (!emit_tree(em, c))
                return 0;
        }
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev);
    }
    if (cJSON_IsString(n))
        return emit_scalar(em, n->valuestring, needs_quotes(n->valuestring));
    if (cJSON_IsRaw(n))
        return emit_scalar(em, n->valuestring, false);
    if (cJSON_IsBool(n))
        return emit_scalar(em, cJSON_IsTrue(n) ? "true" : "false", false);
    return emit_scalar(em, "null", false);
}

static int write_stdout(void *data, unsigned char *buf, size_t size)
{
    (void)data;
    return fwrite(buf, 1, size, stdout) == size;
}

static int print_yaml(const cJSON *root)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    int ok;

    if (!yaml_emitter_initialize(&em))
        return BS_ENOMEM;
    yaml_emitter_set_output(&em, write_stdout, NULL);
    yaml_emitter_set_unicode(&em, 1);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ok = yaml_emitter_emit(&em, &ev);
    if (ok) {
        yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
        ok = yaml_emitter_emit(&em, &ev);
    }
    if (ok)
        ok = emit_tree(&em, root);
    if (ok) {
        yaml_document_end_event_initialize(&ev, 1);
        ok = yaml_emitter_emit(&em, &ev);
    }
    if (ok) {
        yaml_stream_end_event_initialize(&ev);
        ok = yaml_emitter_emit(&em, &ev);
    }
    if (!ok)
        fprintf(stderr, "basalt cluster: YAML output: %s\n",
                em.problem ? em.problem : "emitter error");
    yaml_emitter_delete(&em);
    return ok ? 0 : BS_EIO;
}

/* ------------------------------------------------------------ commands */

static int cmd_status(const char *endpoints, int64_t timeout, const char *out)
{
    char em[BS_RPC_ERRMSG_LEN] = "";
    struct bs_rpc_conn *conn = NULL;
    struct bs_adm_status st;
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc, code = 1;

    memset(&st, 0, sizeof(st));
    rc = bs_rpc_conn_open(endpoints, &conn, em);
    if (rc != 0) {
        fprintf(stderr, "basalt cluster: %s\n", em[0] ? em : bs_strerror(rc));
        return 1;
    }
    rc = bs_rpc_conn_call(conn, BS_ADM_METHOD_CLUSTER_STATUS, "", 0, timeout,
                          &resp, &resp_len, NULL, em);
    if (rc != 0) {
        fprintf(stderr, "basalt cluster: status: %s\n",
                em[0] ? em : bs_strerror(rc));
        goto out;
    }
    rc = bs_adm_status_decode(resp, resp_len, &st, em);
    if (rc != 0) {
        fprintf(stderr, "basalt cluster: bad status response: %s\n",
                em[0] ? em : bs_strerror(rc));
        goto out;
    }
    if (strcmp(out, "table") == 0) {
        print_table(&st);
        code = 0;
    } else {
        cJSON *tree = status_tree(&st);

        if (strcmp(out, "json") == 0) {
            char *s = cJSON_Print(tree);

            if (s != NULL) {
                printf("%s\n", s);
                code = 0;
            }
            free(s);
        } else {
            code = print_yaml(tree) == 0 ? 0 : 1;
        }
        cJSON_Delete(tree);
    }
    fflush(stdout);
out:
    bs_adm_status_free(&st);
    free(resp);
    bs_rpc_conn_close(conn);
    return code;
}

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Pings endpoint i of conn; prints a line; 0 or 1. */
static int ping_one(struct bs_rpc_conn *conn, size_t i, int64_t timeout)
{
    const char *ep = bs_rpc_conn_endpoint(conn, i);
    char em[BS_RPC_ERRMSG_LEN] = "";
    struct bs_adm_ping req, resp;
    uint8_t *buf = NULL, *out = NULL;
    size_t len = 0, out_len = 0;
    int64_t t0, t1;
    int rc, code = 1;

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    t0 = now_us();
    req.payload = (uint8_t *)&t0;
    req.payload_len = sizeof(t0);
    rc = bs_adm_ping_req_encode(&req, &buf, &len, em);
    if (rc == 0)
        rc = bs_rpc_conn_call_one(conn, i, BS_ADM_METHOD_PING, buf, len,
                                  timeout, &out, &out_len, NULL, em);
    t1 = now_us();
    if (rc == 0)
        rc = bs_adm_ping_resp_decode(out, out_len, &resp, em);
    if (rc != 0) {
        printf("%s: failed: %s\n", ep, em[0] ? em : bs_strerror(rc));
    } else if (resp.payload_len != sizeof(t0) ||
               memcmp(resp.payload, &t0, sizeof(t0)) != 0) {
        printf("%s: node %" PRIu64 " did not echo the payload\n", ep,
               resp.node_id);
    } else {
        printf("%s: node %" PRIu64 " of cluster %016" PRIx64
               ", basalt %s, up %.1f s, %.2f ms\n",
               ep, resp.node_id, resp.cluster_id, resp.version,
               (double)resp.uptime_ms / 1000.0, (double)(t1 - t0) / 1000.0);
        code = 0;
    }
    bs_adm_ping_free(&resp);
    free(out);
    free(buf);
    return code;
}

static int cmd_ping(const char *endpoints, int64_t timeout)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "";
    struct bs_rpc_conn *conn = NULL;
    int rc, code = 0;

    rc = bs_rpc_conn_open(endpoints, &conn, em);
    if (rc != 0) {
        fprintf(stderr, "basalt cluster: --endpoints: %s\n",
                em[0] ? em : bs_strerror(rc));
        return rc == BS_EINVAL ? 2 : 1;
    }
    for (size_t i = 0; i < bs_rpc_conn_n_endpoints(conn); i++) {
        if (ping_one(conn, i, timeout) != 0)
            code = 1;
    }
    fflush(stdout);
    bs_rpc_conn_close(conn);
    return code;
}

int bs_cli_cluster(int argc, char **argv)
{
    const char *vals[F_N] = {0}, *pos[2] = {0}, *val;
    char errmsg[BS_CLI_ERRMSG_SIZE], reason[BS_CLI_ERRMSG_SIZE];
    const char *endpoints = DEFAULT_ENDPOINTS, *out = "table";
    struct bs_cli_argv a;
    uint64_t timeout = DEFAULT_TIMEOUT_MS;
    size_t n_pos = 0;
    int which;

    bs_cli_argv_init(&a, argc, argv, flags, F_N);
    for (;;) {
        if (bs_cli_argv_next(&a, &which, &val, errmsg) != 0)
            goto usage_err;
        if (which == BS_CLI_END)
            break;
        if (which == BS_CLI_POSITIONAL) {
            if (n_pos == 1) {
                snprintf(errmsg, sizeof(errmsg), "unexpected argument '%.64s'",
                         val);
                goto usage_err;
            }
            pos[n_pos++] = val;
            continue;
        }
        vals[which] = val ? val : "";
    }
    if (a.seen & (1ULL << F_HELP)) {
        usage(stdout);
        return 0;
    }
    if (n_pos == 0) {
        snprintf(errmsg, sizeof(errmsg), "missing command (status or ping)");
        goto usage_err;
    }
    if (vals[F_ENDPOINTS])
        endpoints = vals[F_ENDPOINTS];
    if (vals[F_TIMEOUT] &&
        bs_cli_parse_uint(vals[F_TIMEOUT], 1, 3600000, &timeout, reason)) {
        snprintf(errmsg, sizeof(errmsg), "--timeout-ms: %.400s", reason);
        goto usage_err;
    }
    if (vals[F_OUTPUT]) {
        out = vals[F_OUTPUT];
        if (strcmp(out, "table") != 0 && strcmp(out, "json") != 0 &&
            strcmp(out, "yaml") != 0) {
            snprintf(errmsg, sizeof(errmsg),
                     "--output: '%.64s' is not table, json or yaml", out);
            goto usage_err;
        }
    }
    if (strcmp(pos[0], "status") == 0)
        return cmd_status(endpoints, (int64_t)timeout, out);
    if (strcmp(pos[0], "ping") == 0) {
        if (vals[F_OUTPUT]) {
            snprintf(errmsg, sizeof(errmsg), "--output applies to status");
            goto usage_err;
        }
        return cmd_ping(endpoints, (int64_t)timeout);
    }
    snprintf(errmsg, sizeof(errmsg), "unknown command '%.64s' (status or ping)",
             pos[0]);
usage_err:
    fprintf(stderr, "basalt cluster: %s\n", errmsg);
    return 2;
}
