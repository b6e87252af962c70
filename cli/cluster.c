/*
 * cluster.c - `basalt cluster`: the operator's view of a cluster through
 * basalt.Admin (rpc/proto/admin.proto, decoded by rpc/admin_codec.h).
 * This file parses every command's flags, holds the output and call
 * helpers (cluster_int.h) and the read-only commands; the commands that
 * change membership and placement, and status --detailed, are in
 * cluster_ops.c.
 *
 * status, list-nodes and list-partitions ask one node (bs_rpc_conn fails
 * over between the --endpoints) for ClusterStatus and print its nodes,
 * its shards or both as tables, or the same data as JSON or YAML.
 * partition-info asks for one shard (ShardInfo, by id or by key). Every
 * structured form is built from one cJSON tree; YAML is that tree replayed
 * through libyaml's emitter, so the two can never disagree. 64-bit numbers
 * go into the tree as raw JSON numbers (exact), not as cJSON's doubles.
 *
 * ping asks every endpoint in turn (bs_rpc_conn_call_one: no failover,
 * the point is to learn which answer) and prints who answered and how
 * fast. health and ping-node do the same for the nodes that ClusterStatus
 * lists (health leaves out removed nodes), each on a connection of its
 * own to the node's client address. Every other call goes over one
 * connection per command (struct bs_cli_cctx), which the waits reuse.
 *
 * Exit status: 0 success, 1 a failure (one line "basalt cluster <cmd>:
 * <reason>" on stderr), 2 a usage error naming the flag.
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
#include "cluster_int.h"
#include "opts.h"

#define DEFAULT_ENDPOINTS  "127.0.0.1:2379"
#define DEFAULT_TIMEOUT_MS 5000
/* How long the commands that wait wait by default (--timeout S). */
#define DEFAULT_ADD_NODE_S    300
#define DEFAULT_REMOVE_NODE_S 600
#define DEFAULT_REBALANCE_S   600
#define DEFAULT_SPLIT_S       60

enum {
    F_ENDPOINTS,
    F_OUTPUT,
    F_TIMEOUT,
    F_ID,
    F_KEY,
    F_TO,
    F_HELP,
    F_WAIT_S,
    F_DETAILED,
    F_WAIT,
    F_CANCEL,
    F_DRY_RUN,
    F_MAX_MOVES,
    F_CLIENT_ADDR,
    F_PEER_ADDR,
    F_DATA_DIR,
    F_N
};

static const struct bs_cli_flag flags[] = {
    [F_ENDPOINTS] = {"endpoints", 0, BS_CLI_ARG_REQUIRED},
    [F_OUTPUT] = {"output", 'o', BS_CLI_ARG_REQUIRED},
    [F_TIMEOUT] = {"timeout-ms", 0, BS_CLI_ARG_REQUIRED},
    [F_ID] = {"id", 0, BS_CLI_ARG_REQUIRED},
    [F_KEY] = {"key", 0, BS_CLI_ARG_REQUIRED},
    [F_TO] = {"to", 0, BS_CLI_ARG_REQUIRED},
    [F_HELP] = {"help", 'h', BS_CLI_ARG_NONE},
    [F_WAIT_S] = {"timeout", 0, BS_CLI_ARG_REQUIRED},
    [F_DETAILED] = {"detailed", 0, BS_CLI_ARG_NONE},
    [F_WAIT] = {"wait", 0, BS_CLI_ARG_NONE},
    [F_CANCEL] = {"cancel", 0, BS_CLI_ARG_NONE},
    [F_DRY_RUN] = {"dry-run", 0, BS_CLI_ARG_NONE},
    [F_MAX_MOVES] = {"max-moves", 0, BS_CLI_ARG_REQUIRED},
    [F_CLIENT_ADDR] = {"client-addr", 0, BS_CLI_ARG_REQUIRED},
    [F_PEER_ADDR] = {"peer-addr", 0, BS_CLI_ARG_REQUIRED},
    [F_DATA_DIR] = {"data-dir", 0, BS_CLI_ARG_REQUIRED},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: basalt cluster COMMAND [--endpoints H:P,...] "
            "[-o table|json|yaml] [flags]\n"
            "\n"
            "looking:\n"
            "  status [--detailed]\n"
            "                     the nodes and the shards, as the answering\n"
            "                     node sees them; --detailed adds each node's\n"
            "                     state, rack, disk use and last heartbeat,\n"
            "                     each shard's ISR, and the operators in\n"
            "                     flight\n"
            "  list-nodes         each node: id, client, peer and HTTP\n"
            "                     addresses, state (up, suspect, down,\n"
            "                     draining, removed), rack, alive, replicas,\n"
            "                     leaders, disk used\n"
            "  list-partitions    each shard: id, key range, leader node,\n"
            "                     term, commit, applied, replicas (node,\n"
            "                     *leader, ~learner)\n"
            "  partition-info --id N | --key K\n"
            "                     one shard, by id or by a key it holds,\n"
            "                     with each replica's role, sync and match\n"
            "  isr-status [--id N]\n"
            "                     each shard's (or shard N's) leader, term,\n"
            "                     commit, ISR (in-sync voters / voters),\n"
            "                     min-insync and each replica's lag in\n"
            "                     entries and ms\n"
            "  health             pings every node; fails unless every node\n"
            "                     answers and every shard has a leader\n"
            "  ping-node --id N   pings the node with id N\n"
            "  ping               pings each endpoint in turn (not -o)\n"
            "\n"
            "changing:\n"
            "  add-node [--client-addr H:P] [--peer-addr H:P] [--data-dir D]\n"
            "           [--timeout S]\n"
            "                     prints the `basalt start --join` command\n"
            "                     of a new node (with the addresses given,\n"
            "                     else placeholders), then waits until a new\n"
            "                     node registers (default %d s)\n"
            "  remove-node --id N [--wait [--timeout S]] [--cancel]\n"
            "                     decommissions node N: its replicas and\n"
            "                     leaderships move away, then it is removed;\n"
            "                     --wait shows the progress until then\n"
            "                     (default %d s); --cancel stops a\n"
            "                     decommission\n"
            "  rebalance [--dry-run] [--max-moves N] [--timeout S]\n"
            "                     the scheduler's plan (replace, drain,\n"
            "                     balance replicas and leaders, racks,\n"
            "                     splits); without --dry-run starts it and\n"
            "                     waits until its operators are done\n"
            "                     (default %d s); --max-moves N plans up to\n"
            "                     N moves, past max-concurrent-moves and a\n"
            "                     paused scheduler\n"
            "  split --id N [--key K] [--timeout S]\n"
            "                     splits shard N at key K (default: the key\n"
            "                     that halves it); waits until the new shard\n"
            "                     is routed (default %d s)\n"
            "  transfer-leader --id N --to NODE\n"
            "                     hands shard N's leadership to its replica\n"
            "                     on node NODE; waits until NODE leads\n"
            "  scheduler show|pause|resume\n"
            "                     the scheduler's settings and operators in\n"
            "                     flight; pause stops it planning (operators\n"
            "                     in flight go on), resume restarts it\n"
            "\n"
            "Shard 0 is the placement group: it holds no user keys.\n"
            "Exit status: 0 ok, 1 failure (one line on stderr), 2 usage.\n"
            "\n"
            "flags:\n"
            "  --endpoints H:P,...  nodes' client addresses (default %s)\n"
            "  -o, --output FMT     table (default), json or yaml\n"
            "  --id N               shard id (partition-info, isr-status,\n"
            "                       split, transfer-leader) or node id\n"
            "                       (ping-node, remove-node)\n"
            "  --to NODE            transfer-leader: the node to lead\n"
            "  --key K              partition-info: a key of the shard;\n"
            "                       split: the first key of the new shard\n"
            "  --timeout S          how long add-node, remove-node --wait,\n"
            "                       rebalance and split wait, in seconds\n"
            "  --timeout-ms MS      per request (default %d)\n"
            "  -h, --help           this text\n",
            DEFAULT_ADD_NODE_S, DEFAULT_REMOVE_NODE_S, DEFAULT_REBALANCE_S,
            DEFAULT_SPLIT_S, DEFAULT_ENDPOINTS, DEFAULT_TIMEOUT_MS);
}

/* ------------------------------------------------------------- tables */

void bs_cli__table_add(struct bs_cli_table *t, char **row)
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

void bs_cli__table_print(struct bs_cli_table *t)
{
    size_t w[BS_CLI_MAX_COLS] = {0};

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

char *bs_cli__fmt(const char *f, ...)
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

/* Shard 0 is the placement group (placement.h: BS_PD_SHARD_PLACEMENT),
 * which covers no user key: its empty bounds do not mean "every key". */
#define PLACEMENT_SHARD 0

char *bs_cli__range_str(const struct bs_adm_shard *s)
{
    char *start, *end, *r;

    if (s->id == PLACEMENT_SHARD)
        return strdup("(placement: no keys)");
    start = bound_str(s->start, s->start_len, false);
    end = bound_str(s->end, s->end_len, true);
    r = bs_cli__fmt("[%s, %s)", start ? start : "?", end ? end : "?");
    free(start);
    free(end);
    return r;
}

char *bs_cli__replicas_str(const struct bs_adm_shard *s)
{
    char reps[BS_RAFT_MAX_MEMBERS * 24 + 1] = "";
    size_t off = 0;

    for (uint32_t r = 0;
         r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS && off < 400; r++) {
        const struct bs_adm_replica *rp = &s->replicas[r];

        off += (size_t)snprintf(reps + off, sizeof(reps) - off,
                                "%s%" PRIu64 "%s%s", r ? "," : "", rp->node_id,
                                rp->id == s->leader ? "*" : "",
                                rp->learner ? "~" : "");
    }
    return strdup(reps);
}

char *bs_cli__size_str(uint64_t v)
{
    static const char units[] = "KMGTPE";
    unsigned u = 0;
    uint64_t div = 1024;

    if (v < 1024)
        return bs_cli__fmt("%" PRIu64, v);
    while (u + 1 < sizeof(units) - 1 && v / div >= 1024) {
        div *= 1024;
        u++;
    }
    if (v % div == 0)
        return bs_cli__fmt("%" PRIu64 "%c", v / div, units[u]);
    return bs_cli__fmt("%.1f%c", (double)v / (double)div, units[u]);
}

/* A string field for a table: "-" when empty (an older node's answer). */
static char *or_dash(const char *s)
{
    return strdup(s[0] ? s : "-");
}

/* The nodes: status prints each node's client address; list-nodes
 * (all) every address and its state, rack and disk use. */
static void print_nodes(const struct bs_adm_status *st, bool all)
{
    struct bs_cli_table t = {0};

    t.n_cols = all ? 10 : 5;
    if (all)
        bs_cli__table_add(&t,
                          (char *[]){strdup("NODE"), strdup("CLIENT ADDR"),
                                     strdup("PEER ADDR"), strdup("HTTP ADDR"),
                                     strdup("STATE"), strdup("RACK"),
                                     strdup("ALIVE"), strdup("REPLICAS"),
                                     strdup("LEADERS"), strdup("USED")});
    else
        bs_cli__table_add(&t, (char *[]){strdup("NODE"), strdup("CLIENT ADDR"),
                                         strdup("ALIVE"), strdup("REPLICAS"),
                                         strdup("LEADERS")});
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_adm_node *n = &st->nodes[i];

        if (all)
            bs_cli__table_add(
                &t,
                (char *[]){bs_cli__fmt("%" PRIu64, n->id),
                           strdup(n->client_addr), strdup(n->peer_addr),
                           strdup(n->http_addr), or_dash(n->state),
                           or_dash(n->rack), strdup(n->alive ? "yes" : "no"),
                           bs_cli__fmt("%" PRIu32, n->replicas),
                           bs_cli__fmt("%" PRIu32, n->leaders),
                           n->used_bytes ? bs_cli__size_str(n->used_bytes)
                                         : strdup("-")});
        else
            bs_cli__table_add(&t,
                              (char *[]){bs_cli__fmt("%" PRIu64, n->id),
                                         strdup(n->client_addr),
                                         strdup(n->alive ? "yes" : "no"),
                                         bs_cli__fmt("%" PRIu32, n->replicas),
                                         bs_cli__fmt("%" PRIu32, n->leaders)});
    }
    bs_cli__table_print(&t);
}

static void print_shards(const struct bs_adm_status *st)
{
    struct bs_cli_table t = {0};

    t.n_cols = 7;
    bs_cli__table_add(
        &t, (char *[]){strdup("SHARD"), strdup("RANGE"), strdup("LEADER"),
                       strdup("TERM"), strdup("COMMIT"), strdup("APPLIED"),
                       strdup("REPLICAS (node, *leader, ~learner)")});
    for (size_t i = 0; i < st->n_shards; i++) {
        const struct bs_adm_shard *s = &st->shards[i];

        bs_cli__table_add(
            &t,
            (char *[]){bs_cli__fmt("%" PRIu64, s->id), bs_cli__range_str(s),
                       s->leader_node ? bs_cli__fmt("%" PRIu64, s->leader_node)
                                      : strdup("-"),
                       bs_cli__fmt("%" PRIu64, s->term),
                       bs_cli__fmt("%" PRIu64, s->commit),
                       bs_cli__fmt("%" PRIu64, s->applied),
                       bs_cli__replicas_str(s)});
    }
    bs_cli__table_print(&t);
}

/* One shard in detail (partition-info). */
static void print_shard(const struct bs_adm_shard *s)
{
    struct bs_cli_table t = {0};
    char *range = bs_cli__range_str(s), *reps = bs_cli__replicas_str(s);

    printf("shard        %" PRIu64 "\n", s->id);
    printf("range        %s\n", range ? range : "?");
    if (s->leader_node)
        printf("leader       node %" PRIu64 " (replica %" PRIu64 ")\n",
               s->leader_node, s->leader);
    else
        printf("leader       none known\n");
    printf("term         %" PRIu64 "\n", s->term);
    printf("commit       %" PRIu64 "\n", s->commit);
    printf("applied      %" PRIu64 "\n", s->applied);
    printf("revision     %" PRId64 "\n", s->revision);
    printf("epoch        conf_ver %" PRIu64 ", version %" PRIu64 "\n",
           s->conf_ver, s->version);
    printf("replicas     %s\n\n", reps ? reps : "?");
    free(range);
    free(reps);

    t.n_cols = 6;
    bs_cli__table_add(&t, (char *[]){strdup("REPLICA"), strdup("NODE"),
                                     strdup("LEARNER"), strdup("IN SYNC"),
                                     strdup("MATCH"), strdup("LEADER")});
    for (uint32_t r = 0; r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS; r++) {
        const struct bs_adm_replica *rp = &s->replicas[r];

        bs_cli__table_add(&t,
                          (char *[]){bs_cli__fmt("%" PRIu64, rp->id),
                                     bs_cli__fmt("%" PRIu64, rp->node_id),
                                     strdup(rp->learner ? "yes" : "no"),
                                     strdup(rp->in_sync ? "yes" : "no"),
                                     bs_cli__fmt("%" PRIu64, rp->match),
                                     strdup(rp->id == s->leader ? "*" : "")});
    }
    bs_cli__table_print(&t);
}

static void print_table(const struct bs_adm_status *st)
{
    printf("cluster %016" PRIx64 ", answered by node %" PRIu64 "\n\n",
           st->cluster_id, st->node_id);
    print_nodes(st, false);
    printf("\n");
    print_shards(st);
}

/* ------------------------------------------------------ JSON and YAML */

void bs_cli__add_u64(cJSON *o, const char *name, uint64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    cJSON_AddRawToObject(o, name, buf);
}

void bs_cli__add_i64(cJSON *o, const char *name, int64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    cJSON_AddRawToObject(o, name, buf);
}

void bs_cli__add_bytes(cJSON *o, const char *name, const uint8_t *b, size_t len)
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

cJSON *bs_cli__node_obj(const struct bs_adm_node *n)
{
    cJSON *o = cJSON_CreateObject();

    bs_cli__add_u64(o, "id", n->id);
    cJSON_AddStringToObject(o, "client_addr", n->client_addr);
    cJSON_AddStringToObject(o, "peer_addr", n->peer_addr);
    cJSON_AddStringToObject(o, "http_addr", n->http_addr);
    cJSON_AddBoolToObject(o, "alive", n->alive);
    bs_cli__add_u64(o, "replicas", n->replicas);
    bs_cli__add_u64(o, "leaders", n->leaders);
    cJSON_AddStringToObject(o, "state", n->state);
    cJSON_AddStringToObject(o, "rack", n->rack);
    bs_cli__add_u64(o, "used_bytes", n->used_bytes);
    bs_cli__add_u64(o, "capacity_bytes", n->capacity_bytes);
    bs_cli__add_u64(o, "available_bytes", n->available_bytes);
    bs_cli__add_u64(o, "heard_ms_ago", n->heard_ms_ago);
    return o;
}

cJSON *bs_cli__shard_obj(const struct bs_adm_shard *s)
{
    cJSON *o = cJSON_CreateObject(), *reps;

    bs_cli__add_u64(o, "id", s->id);
    bs_cli__add_bytes(o, "start", s->start, s->start_len);
    bs_cli__add_bytes(o, "end", s->end, s->end_len);
    bs_cli__add_u64(o, "conf_ver", s->conf_ver);
    bs_cli__add_u64(o, "version", s->version);
    bs_cli__add_u64(o, "leader", s->leader);
    bs_cli__add_u64(o, "leader_node", s->leader_node);
    bs_cli__add_u64(o, "term", s->term);
    bs_cli__add_u64(o, "commit", s->commit);
    bs_cli__add_u64(o, "applied", s->applied);
    bs_cli__add_i64(o, "revision", s->revision);
    reps = cJSON_AddArrayToObject(o, "replicas");
    for (uint32_t r = 0; r < s->n_replicas && r < BS_RAFT_MAX_MEMBERS; r++) {
        const struct bs_adm_replica *rp = &s->replicas[r];
        cJSON *ro = cJSON_CreateObject();

        bs_cli__add_u64(ro, "id", rp->id);
        bs_cli__add_u64(ro, "node_id", rp->node_id);
        cJSON_AddBoolToObject(ro, "learner", rp->learner);
        bs_cli__add_u64(ro, "match", rp->match);
        cJSON_AddBoolToObject(ro, "in_sync", rp->in_sync);
        cJSON_AddItemToArray(reps, ro);
    }
    return o;
}

cJSON *bs_cli__status_tree(const struct bs_adm_status *st, bool nodes,
                           bool shards)
{
    cJSON *root = cJSON_CreateObject(), *arr;

    bs_cli__add_u64(root, "cluster_id", st->cluster_id);
    bs_cli__add_u64(root, "node_id", st->node_id);
    if (nodes) {
        arr = cJSON_AddArrayToObject(root, "nodes");
        for (size_t i = 0; i < st->n_nodes; i++)
            cJSON_AddItemToArray(arr, bs_cli__node_obj(&st->nodes[i]));
    }
    if (shards) {
        arr = cJSON_AddArrayToObject(root, "shards");
        for (size_t i = 0; i < st->n_shards; i++)
            cJSON_AddItemToArray(arr, bs_cli__shard_obj(&st->shards[i]));
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

bool bs_cli__is_table(const struct bs_cli_cctx *c)
{
    return strcmp(c->out, "table") == 0;
}

int bs_cli__failed(const struct bs_cli_cctx *c, const char *f, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "basalt cluster %s: ", c->cmd);
    va_start(ap, f);
    vfprintf(stderr, f, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int bs_cli__print_tree(const struct bs_cli_cctx *c, cJSON *tree)
{
    int code = 1;

    if (tree == NULL)
        return bs_cli__failed(c, "out of memory");
    if (strcmp(c->out, "json") == 0) {
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
    fflush(stdout);
    return code;
}

int bs_cli__call_quiet(struct bs_cli_cctx *c, const char *method,
                       const void *req, size_t len, uint8_t **resp,
                       size_t *resp_len, char *em)
{
    int rc;

    em[0] = '\0';
    *resp = NULL;
    *resp_len = 0;
    if (c->conn == NULL) {
        char why[BS_RPC_CONN_ERRMSG_SIZE] = "";

        rc = bs_rpc_conn_open(c->endpoints, &c->conn, why);
        if (rc != 0) {
            c->conn = NULL;
            snprintf(em, BS_RPC_CONN_ERRMSG_SIZE, "--endpoints: %s",
                     why[0] ? why : bs_strerror(rc));
            return rc;
        }
    }
    rc = bs_rpc_conn_call(c->conn, method, req, len, c->timeout, resp, resp_len,
                          NULL, em);
    if (rc != 0 && em[0] == '\0')
        snprintf(em, BS_RPC_CONN_ERRMSG_SIZE, "%s", bs_strerror(rc));
    return rc;
}

int bs_cli__call(struct bs_cli_cctx *c, const char *method, const void *req,
                 size_t len, uint8_t **resp, size_t *resp_len)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE];

    if (bs_cli__call_quiet(c, method, req, len, resp, resp_len, em) != 0)
        return bs_cli__failed(c, "%s", em);
    return 0;
}

int bs_cli__status_quiet(struct bs_cli_cctx *c, struct bs_adm_status *st,
                         char *em)
{
    char why[BS_RPC_ERRMSG_LEN] = "";
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc;

    memset(st, 0, sizeof(*st));
    rc = bs_cli__call_quiet(c, BS_ADM_METHOD_CLUSTER_STATUS, "", 0, &resp,
                            &resp_len, em);
    if (rc != 0)
        return rc;
    rc = bs_adm_status_decode(resp, resp_len, st, why);
    free(resp);
    if (rc != 0)
        snprintf(em, BS_RPC_CONN_ERRMSG_SIZE, "bad ClusterStatus response: %s",
                 why[0] ? why : bs_strerror(rc));
    return rc;
}

int bs_cli__get_status(struct bs_cli_cctx *c, struct bs_adm_status *st)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE];

    if (bs_cli__status_quiet(c, st, em) != 0)
        return bs_cli__failed(c, "%s", em);
    return 0;
}

/* Whether st carries the heartbeat figures (disk use, heartbeat ages),
 * which only the placement leader's node has. */
static bool has_figures(const struct bs_adm_status *st)
{
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct bs_adm_node *n = &st->nodes[i];

        if (n->used_bytes || n->capacity_bytes || n->heard_ms_ago)
            return true;
    }
    return false;
}

int bs_cli__get_status_figures(struct bs_cli_cctx *c, struct bs_adm_status *st)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "";
    const struct bs_adm_node *pd = NULL;
    struct bs_cli_cctx other = *c;
    struct bs_adm_status st2;

    if (bs_cli__get_status(c, st) != 0)
        return 1;
    if (has_figures(st))
        return 0;
    for (size_t i = 0; i < st->n_shards; i++) {
        if (st->shards[i].id == PLACEMENT_SHARD &&
            st->shards[i].leader_node != st->node_id)
            pd = bs_cli__find_node(st, st->shards[i].leader_node);
    }
    if (pd == NULL || pd->client_addr[0] == '\0')
        return 0;
    /* Its own connection: the placement leader's node only, no failover
     * (any other node would answer without the figures again). Quiet:
     * the first answer stands if this one fails. */
    other.endpoints = pd->client_addr;
    other.conn = NULL;
    if (bs_cli__status_quiet(&other, &st2, em) == 0) {
        bs_adm_status_free(st);
        *st = st2;
    }
    bs_rpc_conn_close(other.conn);
    return 0;
}

/* status, list-nodes, list-partitions: what of the status to print. */
static int cmd_status(struct bs_cli_cctx *c, bool nodes, bool shards)
{
    struct bs_adm_status st;
    int code = 0;

    if ((nodes && !shards ? bs_cli__get_status_figures(c, &st)
                          : bs_cli__get_status(c, &st)) != 0)
        return 1;
    if (strcmp(c->out, "table") != 0) {
        code = bs_cli__print_tree(c, bs_cli__status_tree(&st, nodes, shards));
    } else if (nodes && shards) {
        print_table(&st);
    } else if (nodes) {
        print_nodes(&st, true);
    } else {
        print_shards(&st);
    }
    fflush(stdout);
    bs_adm_status_free(&st);
    return code;
}

/* partition-info: by shard id, or (key != NULL) by a key the shard holds. */
static int cmd_partition_info(struct bs_cli_cctx *c, uint64_t id,
                              const char *key)
{
    char em[BS_RPC_ERRMSG_LEN] = "";
    struct bs_adm_shard sh;
    uint8_t *req = NULL, *resp = NULL;
    size_t len = 0, resp_len = 0;
    int rc, code = 1;

    memset(&sh, 0, sizeof(sh));
    rc = bs_adm_shard_info_req_encode(key ? 0 : id, (const uint8_t *)key,
                                      key ? strlen(key) : 0, &req, &len, em);
    if (rc != 0) {
        code = bs_cli__failed(c, "%s", em[0] ? em : bs_strerror(rc));
        goto out;
    }
    if (bs_cli__call(c, BS_ADM_METHOD_SHARD_INFO, req, len, &resp, &resp_len) !=
        0)
        goto out;
    rc = bs_adm_shard_info_resp_decode(resp, resp_len, &sh, em);
    if (rc != 0) {
        code = bs_cli__failed(c, "bad ShardInfo response: %s",
                              em[0] ? em : bs_strerror(rc));
        goto out;
    }
    if (strcmp(c->out, "table") == 0) {
        print_shard(&sh);
        fflush(stdout);
        code = 0;
    } else {
        code = bs_cli__print_tree(c, bs_cli__shard_obj(&sh));
    }
out:
    bs_adm_shard_free(&sh);
    free(resp);
    free(req);
    return code;
}

int64_t bs_cli__now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The outcome of one Ping. */
struct ping_res {
    int rc;                           /* 0: answered and echoed */
    char em[BS_RPC_CONN_ERRMSG_SIZE]; /* when rc != 0 */
    struct bs_adm_ping resp;          /* when rc == 0: bs_adm_ping_free */
    double ms;                        /* round trip */
};

/* Pings endpoint i of conn into *r; returns r->rc. */
static int ping_call(struct bs_rpc_conn *conn, size_t i, int64_t timeout,
                     struct ping_res *r)
{
    struct bs_adm_ping req;
    uint8_t *buf = NULL, *out = NULL;
    size_t len = 0, out_len = 0;
    int64_t t0, t1;

    memset(r, 0, sizeof(*r));
    memset(&req, 0, sizeof(req));
    t0 = bs_cli__now_us();
    req.payload = (uint8_t *)&t0;
    req.payload_len = sizeof(t0);
    r->rc = bs_adm_ping_req_encode(&req, &buf, &len, r->em);
    if (r->rc == 0)
        r->rc = bs_rpc_conn_call_one(conn, i, BS_ADM_METHOD_PING, buf, len,
                                     timeout, &out, &out_len, NULL, r->em);
    t1 = bs_cli__now_us();
    r->ms = (double)(t1 - t0) / 1000.0;
    if (r->rc == 0)
        r->rc = bs_adm_ping_resp_decode(out, out_len, &r->resp, r->em);
    if (r->rc == 0 && (r->resp.payload_len != sizeof(t0) ||
                       memcmp(r->resp.payload, &t0, sizeof(t0)) != 0)) {
        snprintf(r->em, sizeof(r->em),
                 "node %" PRIu64 " did not echo the payload", r->resp.node_id);
        bs_adm_ping_free(&r->resp);
        r->rc = BS_EPROTO;
    }
    if (r->rc != 0 && r->em[0] == '\0')
        snprintf(r->em, sizeof(r->em), "%s", bs_strerror(r->rc));
    free(out);
    free(buf);
    return r->rc;
}

/* Pings node n on a connection of its own to its client address; a node
 * that answers as another is a failure too. */
static int ping_node(const struct bs_adm_node *n, int64_t timeout,
                     struct ping_res *r)
{
    struct bs_rpc_conn *conn = NULL;

    memset(r, 0, sizeof(*r));
    r->rc = bs_rpc_conn_open(n->client_addr, &conn, r->em);
    if (r->rc == 0)
        ping_call(conn, 0, timeout, r);
    bs_rpc_conn_close(conn);
    if (r->rc == 0 && r->resp.node_id != n->id) {
        snprintf(r->em, sizeof(r->em), "%.200s answers as node %" PRIu64,
                 n->client_addr, r->resp.node_id);
        bs_adm_ping_free(&r->resp);
        r->rc = BS_EPROTO;
    }
    if (r->rc != 0 && r->em[0] == '\0')
        snprintf(r->em, sizeof(r->em), "%s", bs_strerror(r->rc));
    return r->rc;
}

/* A node's Ping as JSON. */
static cJSON *ping_obj(const struct bs_adm_node *n, const struct ping_res *r)
{
    cJSON *o = cJSON_CreateObject();
    char ms[32];

    bs_cli__add_u64(o, "id", n->id);
    cJSON_AddStringToObject(o, "client_addr", n->client_addr);
    cJSON_AddBoolToObject(o, "ok", r->rc == 0);
    if (r->rc == 0) {
        snprintf(ms, sizeof(ms), "%.3f", r->ms);
        cJSON_AddRawToObject(o, "rtt_ms", ms);
        cJSON_AddStringToObject(o, "version", r->resp.version);
        bs_cli__add_u64(o, "uptime_ms", r->resp.uptime_ms);
    } else {
        cJSON_AddStringToObject(o, "error", r->em);
    }
    return o;
}

const struct bs_adm_node *bs_cli__find_node(const struct bs_adm_status *st,
                                            uint64_t id)
{
    for (size_t i = 0; i < st->n_nodes; i++) {
        if (st->nodes[i].id == id)
            return &st->nodes[i];
    }
    return NULL;
}

/* ping-node --id N. */
static int cmd_ping_node(struct bs_cli_cctx *c, uint64_t id)
{
    const struct bs_adm_node *n;
    struct bs_adm_status st;
    struct ping_res r;
    int code = 0;

    if (bs_cli__get_status(c, &st) != 0)
        return 1;
    n = bs_cli__find_node(&st, id);
    if (n == NULL) {
        code =
            bs_cli__failed(c, "no node %" PRIu64 " in the cluster (%zu nodes)",
                           id, st.n_nodes);
        goto out;
    }
    ping_node(n, c->timeout, &r);
    if (strcmp(c->out, "table") != 0)
        code = bs_cli__print_tree(c, ping_obj(n, &r));
    else if (r.rc == 0)
        printf("node %" PRIu64 " (%s): ok, basalt %s, up %.1f s, %.2f ms\n",
               n->id, n->client_addr, r.resp.version,
               (double)r.resp.uptime_ms / 1000.0, r.ms);
    else
        printf("node %" PRIu64 " (%s): unreachable\n", n->id, n->client_addr);
    if (r.rc != 0)
        code = bs_cli__failed(c, "node %" PRIu64 " (%s) unreachable: %s", n->id,
                              n->client_addr, r.em);
    bs_adm_ping_free(&r.resp);
out:
    fflush(stdout);
    bs_adm_status_free(&st);
    return code;
}

/* transfer-leader --id SHARD --to NODE: the node answering forwards it to
 * the shard's leader, which answers once NODE leads. */
static int cmd_transfer_leader(struct bs_cli_cctx *c, uint64_t shard,
                               uint64_t to)
{
    char em[BS_RPC_ERRMSG_LEN] = "";
    struct bs_adm_transfer t = {shard, to, 0}, r;
    uint8_t *req = NULL, *resp = NULL;
    size_t len = 0, resp_len = 0;
    int code = 1, rc;

    rc = bs_adm_transfer_req_encode(&t, &req, &len, em);
    if (rc != 0) {
        code = bs_cli__failed(c, "%s", em[0] ? em : bs_strerror(rc));
        goto out;
    }
    if (bs_cli__call(c, BS_ADM_METHOD_TRANSFER_LEADER, req, len, &resp,
                     &resp_len) != 0)
        goto out;
    rc = bs_adm_transfer_resp_decode(resp, resp_len, &r, em);
    if (rc != 0) {
        code = bs_cli__failed(c, "bad TransferLeader response: %s",
                              em[0] ? em : bs_strerror(rc));
        goto out;
    }
    if (strcmp(c->out, "table") == 0) {
        printf("shard %" PRIu64 ": node %" PRIu64 " leads (term %" PRIu64 ")\n",
               r.shard_id, r.node_id, r.term);
        fflush(stdout);
        code = 0;
    } else {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            bs_cli__add_u64(o, "shard", r.shard_id);
            bs_cli__add_u64(o, "leader_node", r.node_id);
            bs_cli__add_u64(o, "term", r.term);
        }
        code = bs_cli__print_tree(c, o);
    }
out:
    free(req);
    free(resp);
    return code;
}

/* Appends ", item" (or "item" first) to buf[size] at *off, truncating. */
static void append(char *buf, size_t size, size_t *off, const char *f, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, size_t *off, const char *f, ...)
{
    va_list ap;
    int n;

    if (*off >= size - 1)
        return;
    va_start(ap, f);
    n = vsnprintf(buf + *off, size - *off, f, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n < size - *off ? (size_t)n : size - *off - 1;
}

/* A decommissioned node: no longer part of the cluster (health skips it,
 * it may well be gone). */
static bool removed(const struct bs_adm_node *n)
{
    return strcmp(n->state, "removed") == 0;
}

/*
 * health: every node that ClusterStatus lists (but the removed ones) must
 * answer a Ping, and every shard (the placement group too: without it
 * nothing moves) must have a leader. The reason names the unreachable
 * nodes first, then the shards without a leader.
 */
static int cmd_health(struct bs_cli_cctx *c)
{
    struct bs_adm_status st;
    struct bs_cli_table t = {0};
    struct ping_res *res;
    char reason[1024] = "";
    size_t off = 0, n_down = 0, n_leaderless = 0;
    int code = 0;

    if (bs_cli__get_status(c, &st) != 0)
        return 1;
    res = calloc(st.n_nodes ? st.n_nodes : 1, sizeof(*res));
    if (res == NULL) {
        bs_adm_status_free(&st);
        return bs_cli__failed(c, "out of memory");
    }
    for (size_t i = 0; i < st.n_nodes; i++) {
        if (removed(&st.nodes[i]))
            continue;
        if (ping_node(&st.nodes[i], c->timeout, &res[i]) != 0) {
            append(reason, sizeof(reason), &off,
                   "%snode %" PRIu64 " (%s) unreachable", n_down ? ", " : "",
                   st.nodes[i].id, st.nodes[i].client_addr);
            n_down++;
        }
    }
    for (size_t i = 0; i < st.n_shards; i++) {
        if (st.shards[i].leader_node != 0)
            continue;
        append(reason, sizeof(reason), &off, "%s%" PRIu64,
               n_leaderless ? ", "
               : n_down     ? "; no leader for shard "
                            : "no leader for shard ",
               st.shards[i].id);
        n_leaderless++;
    }

    if (strcmp(c->out, "table") == 0) {
        t.n_cols = 4;
        bs_cli__table_add(&t, (char *[]){strdup("NODE"), strdup("CLIENT ADDR"),
                                         strdup("STATUS"), strdup("RTT MS")});
        for (size_t i = 0; i < st.n_nodes; i++) {
            if (removed(&st.nodes[i]))
                continue;
            bs_cli__table_add(
                &t, (char *[]){bs_cli__fmt("%" PRIu64, st.nodes[i].id),
                               strdup(st.nodes[i].client_addr),
                               strdup(res[i].rc == 0 ? "ok" : "unreachable"),
                               res[i].rc == 0 ? bs_cli__fmt("%.2f", res[i].ms)
                                              : strdup("-")});
        }
        bs_cli__table_print(&t);
        printf("\nshards: %zu, %zu without a leader\n", st.n_shards,
               n_leaderless);
        printf("%s\n", n_down || n_leaderless ? "unhealthy" : "healthy");
    } else {
        cJSON *root = cJSON_CreateObject(), *arr;

        cJSON_AddBoolToObject(root, "healthy", !n_down && !n_leaderless);
        if (n_down || n_leaderless)
            cJSON_AddStringToObject(root, "reason", reason);
        arr = cJSON_AddArrayToObject(root, "nodes");
        for (size_t i = 0; i < st.n_nodes; i++) {
            if (!removed(&st.nodes[i]))
                cJSON_AddItemToArray(arr, ping_obj(&st.nodes[i], &res[i]));
        }
        bs_cli__add_u64(root, "shards", st.n_shards);
        arr = cJSON_AddArrayToObject(root, "shards_without_leader");
        for (size_t i = 0; i < st.n_shards; i++) {
            char id[32];

            if (st.shards[i].leader_node != 0)
                continue;
            snprintf(id, sizeof(id), "%" PRIu64, st.shards[i].id);
            cJSON_AddItemToArray(arr, cJSON_CreateRaw(id));
        }
        code = bs_cli__print_tree(c, root);
    }
    fflush(stdout);
    if (n_down || n_leaderless)
        code = bs_cli__failed(c, "%s", reason);
    for (size_t i = 0; i < st.n_nodes; i++)
        bs_adm_ping_free(&res[i].resp);
    free(res);
    bs_adm_status_free(&st);
    return code;
}

/* Pings endpoint i of conn; prints a line; 0 or 1. */
static int ping_one(struct bs_rpc_conn *conn, size_t i, int64_t timeout)
{
    const char *ep = bs_rpc_conn_endpoint(conn, i);
    struct ping_res r;

    if (ping_call(conn, i, timeout, &r) != 0) {
        printf("%s: failed: %s\n", ep, r.em);
        return 1;
    }
    printf("%s: node %" PRIu64 " of cluster %016" PRIx64
           ", basalt %s, up %.1f s, %.2f ms\n",
           ep, r.resp.node_id, r.resp.cluster_id, r.resp.version,
           (double)r.resp.uptime_ms / 1000.0, r.ms);
    bs_adm_ping_free(&r.resp);
    return 0;
}

static int cmd_ping(const char *endpoints, int64_t timeout)
{
    char em[BS_RPC_CONN_ERRMSG_SIZE] = "";
    struct bs_rpc_conn *conn = NULL;
    int rc, code = 0;

    rc = bs_rpc_conn_open(endpoints, &conn, em);
    if (rc != 0) {
        fprintf(stderr, "basalt cluster ping: --endpoints: %s\n",
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

/* ---------------------------------------------------------- the command */

#define BIT(f) (1ULL << (f))
#define COMMON (BIT(F_ENDPOINTS) | BIT(F_TIMEOUT) | BIT(F_HELP))
#define OUT    BIT(F_OUTPUT)

enum cmd {
    C_STATUS,
    C_LIST_NODES,
    C_LIST_PARTITIONS,
    C_PARTITION_INFO,
    C_HEALTH,
    C_PING_NODE,
    C_TRANSFER_LEADER,
    C_PING,
    C_ADD_NODE,
    C_REMOVE_NODE,
    C_REBALANCE,
    C_ISR_STATUS,
    C_SPLIT,
    C_SCHEDULER,
};

/* Each command, the flags it takes, and the default of its --timeout
 * (seconds; 0: it takes none). */
static const struct {
    const char *name;
    uint64_t flags;
    int64_t wait_s;
} cmds[] = {
    [C_STATUS] = {"status", COMMON | OUT | BIT(F_DETAILED), 0},
    [C_LIST_NODES] = {"list-nodes", COMMON | OUT, 0},
    [C_LIST_PARTITIONS] = {"list-partitions", COMMON | OUT, 0},
    [C_PARTITION_INFO] = {"partition-info",
                          COMMON | OUT | BIT(F_ID) | BIT(F_KEY), 0},
    [C_HEALTH] = {"health", COMMON | OUT, 0},
    [C_PING_NODE] = {"ping-node", COMMON | OUT | BIT(F_ID), 0},
    [C_TRANSFER_LEADER] = {"transfer-leader",
                           COMMON | OUT | BIT(F_ID) | BIT(F_TO), 0},
    [C_PING] = {"ping", COMMON, 0},
    [C_ADD_NODE] = {"add-node",
                    COMMON | OUT | BIT(F_WAIT_S) | BIT(F_CLIENT_ADDR) |
                        BIT(F_PEER_ADDR) | BIT(F_DATA_DIR),
                    DEFAULT_ADD_NODE_S},
    [C_REMOVE_NODE] = {"remove-node",
                       COMMON | OUT | BIT(F_ID) | BIT(F_WAIT) | BIT(F_CANCEL) |
                           BIT(F_WAIT_S),
                       DEFAULT_REMOVE_NODE_S},
    [C_REBALANCE] = {"rebalance",
                     COMMON | OUT | BIT(F_DRY_RUN) | BIT(F_MAX_MOVES) |
                         BIT(F_WAIT_S),
                     DEFAULT_REBALANCE_S},
    [C_ISR_STATUS] = {"isr-status", COMMON | OUT | BIT(F_ID), 0},
    [C_SPLIT] = {"split", COMMON | OUT | BIT(F_ID) | BIT(F_KEY) | BIT(F_WAIT_S),
                 DEFAULT_SPLIT_S},
    [C_SCHEDULER] = {"scheduler", COMMON | OUT, 0},
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

/* The checks of the flags that depend on the command, after the common
 * ones; fills *a. 0, or BS_EINVAL with the sentence in errmsg. */
static int check_args(size_t cmd, const char *const *vals, const char *action,
                      struct bs_cli_cluster_args *a, char *errmsg)
{
    char reason[BS_CLI_ERRMSG_SIZE];
    uint64_t v;

#define USAGE(...)                                                             \
    do {                                                                       \
        snprintf(errmsg, BS_CLI_ERRMSG_SIZE, __VA_ARGS__);                     \
        return BS_EINVAL;                                                      \
    } while (0)

    a->wait_s = cmds[cmd].wait_s;
    if (vals[F_WAIT_S]) {
        if (bs_cli_parse_uint(vals[F_WAIT_S], 1, 86400, &v, reason) != 0)
            USAGE("--timeout: %.400s (seconds)", reason);
        a->wait_s = (int64_t)v;
    }
    switch (cmd) {
    case C_ADD_NODE:
        if (vals[F_CLIENT_ADDR] &&
            bs_cli_check_addr(vals[F_CLIENT_ADDR], reason) != 0)
            USAGE("--client-addr: %.400s", reason);
        if (vals[F_PEER_ADDR] &&
            bs_cli_check_addr(vals[F_PEER_ADDR], reason) != 0)
            USAGE("--peer-addr: %.400s", reason);
        if (vals[F_DATA_DIR] && vals[F_DATA_DIR][0] == '\0')
            USAGE("--data-dir: must not be empty");
        a->client_addr = vals[F_CLIENT_ADDR];
        a->peer_addr = vals[F_PEER_ADDR];
        a->data_dir = vals[F_DATA_DIR];
        break;
    case C_REMOVE_NODE:
        if (!vals[F_ID])
            USAGE("--id is required (the node to remove)");
        if (bs_cli_parse_uint(vals[F_ID], 1, UINT32_MAX, &a->id, reason))
            USAGE("--id: %.400s", reason);
        a->wait = vals[F_WAIT] != NULL;
        a->cancel = vals[F_CANCEL] != NULL;
        if (a->wait && a->cancel)
            USAGE("--wait does not apply with --cancel (a cancel is "
                  "immediate)");
        if (vals[F_WAIT_S] && !a->wait)
            USAGE("--timeout applies only with --wait");
        break;
    case C_REBALANCE:
        a->dry_run = vals[F_DRY_RUN] != NULL;
        if (vals[F_MAX_MOVES]) {
            if (bs_cli_parse_uint(vals[F_MAX_MOVES], 1, 10000, &v, reason))
                USAGE("--max-moves: %.400s", reason);
            a->max_moves = (uint32_t)v;
        }
        if (vals[F_WAIT_S] && a->dry_run)
            USAGE("--timeout does not apply with --dry-run (nothing to wait "
                  "for)");
        break;
    case C_ISR_STATUS:
        if (vals[F_ID] &&
            bs_cli_parse_uint(vals[F_ID], 0, UINT64_MAX, &a->id, reason))
            USAGE("--id: %.400s", reason);
        a->has_id = vals[F_ID] != NULL;
        break;
    case C_SPLIT:
        if (!vals[F_ID])
            USAGE("--id is required (the shard to split)");
        if (bs_cli_parse_uint(vals[F_ID], 0, UINT64_MAX, &a->id, reason))
            USAGE("--id: %.400s", reason);
        if (a->id == PLACEMENT_SHARD)
            USAGE("--id: shard 0 is the placement group: it holds no keys "
                  "to split");
        a->has_id = true;
        a->key = vals[F_KEY];
        break;
    case C_SCHEDULER:
        if (action == NULL)
            USAGE("missing action: show, pause or resume");
        if (strcmp(action, "show") != 0 && strcmp(action, "pause") != 0 &&
            strcmp(action, "resume") != 0)
            USAGE("unknown action '%.64s' (show, pause or resume)", action);
        a->action = action;
        break;
    default:
        break;
    }
    return 0;
#undef USAGE
}

static int run(struct bs_cli_cctx *c, size_t cmd, uint64_t id, uint64_t to,
               const char *key, bool detailed,
               const struct bs_cli_cluster_args *a)
{
    switch (cmd) {
    case C_STATUS:
        return detailed ? bs_cli__cmd_status_detailed(c)
                        : cmd_status(c, true, true);
    case C_LIST_NODES:
        return cmd_status(c, true, false);
    case C_LIST_PARTITIONS:
        return cmd_status(c, false, true);
    case C_PARTITION_INFO:
        return cmd_partition_info(c, id, key);
    case C_HEALTH:
        return cmd_health(c);
    case C_PING_NODE:
        return cmd_ping_node(c, id);
    case C_TRANSFER_LEADER:
        return cmd_transfer_leader(c, id, to);
    case C_ADD_NODE:
        return bs_cli__cmd_add_node(c, a);
    case C_REMOVE_NODE:
        return bs_cli__cmd_remove_node(c, a);
    case C_REBALANCE:
        return bs_cli__cmd_rebalance(c, a);
    case C_ISR_STATUS:
        return bs_cli__cmd_isr_status(c, a);
    case C_SPLIT:
        return bs_cli__cmd_split(c, a);
    case C_SCHEDULER:
        return bs_cli__cmd_scheduler(c, a);
    default:
        return cmd_ping(c->endpoints, c->timeout);
    }
}

int bs_cli_cluster(int argc, char **argv)
{
    const char *vals[F_N] = {0}, *pos[2] = {0}, *val, *name = NULL;
    char errmsg[BS_CLI_ERRMSG_SIZE], reason[BS_CLI_ERRMSG_SIZE];
    struct bs_cli_cctx c = {NULL, DEFAULT_ENDPOINTS, DEFAULT_TIMEOUT_MS,
                            "table", NULL};
    struct bs_cli_cluster_args args = {0};
    struct bs_cli_argv a;
    uint64_t timeout = DEFAULT_TIMEOUT_MS, id = 0, to = 0;
    size_t n_pos = 0, cmd;
    int which, code;

    bs_cli_argv_init(&a, argc, argv, flags, F_N);
    for (;;) {
        if (bs_cli_argv_next(&a, &which, &val, errmsg) != 0)
            goto usage_err;
        if (which == BS_CLI_END)
            break;
        if (which == BS_CLI_POSITIONAL) {
            /* Only `scheduler` takes a second word (its action). */
            if (n_pos == 2 || (n_pos == 1 && strcmp(pos[0], "scheduler"))) {
                snprintf(errmsg, sizeof(errmsg), "unexpected argument '%.64s'",
                         val);
                goto usage_err;
            }
            pos[n_pos++] = val;
            continue;
        }
        vals[which] = val ? val : "";
    }
    if (a.seen & BIT(F_HELP)) {
        usage(stdout);
        return 0;
    }
    if (n_pos == 0) {
        snprintf(errmsg, sizeof(errmsg),
                 "missing command (see basalt cluster --help)");
        goto usage_err;
    }
    for (cmd = 0; cmd < N_CMDS; cmd++) {
        if (strcmp(pos[0], cmds[cmd].name) == 0)
            break;
    }
    if (cmd == N_CMDS) {
        snprintf(errmsg, sizeof(errmsg),
                 "unknown command '%.64s' (see basalt cluster --help)", pos[0]);
        goto usage_err;
    }
    name = c.cmd = cmds[cmd].name;
    for (int f = 0; f < F_N; f++) {
        if ((a.seen & BIT(f)) && !(cmds[cmd].flags & BIT(f))) {
            snprintf(errmsg, sizeof(errmsg), "--%s does not apply here",
                     flags[f].name);
            goto usage_err;
        }
    }
    if (vals[F_ENDPOINTS])
        c.endpoints = vals[F_ENDPOINTS];
    if (vals[F_TIMEOUT] &&
        bs_cli_parse_uint(vals[F_TIMEOUT], 1, 3600000, &timeout, reason)) {
        snprintf(errmsg, sizeof(errmsg), "--timeout-ms: %.400s", reason);
        goto usage_err;
    }
    c.timeout = (int64_t)timeout;
    if (vals[F_OUTPUT]) {
        c.out = vals[F_OUTPUT];
        if (strcmp(c.out, "table") != 0 && strcmp(c.out, "json") != 0 &&
            strcmp(c.out, "yaml") != 0) {
            snprintf(errmsg, sizeof(errmsg),
                     "--output: '%.64s' is not table, json or yaml", c.out);
            goto usage_err;
        }
    }
    if (cmd == C_PARTITION_INFO || cmd == C_PING_NODE ||
        cmd == C_TRANSFER_LEADER) {
        if (vals[F_ID] &&
            bs_cli_parse_uint(vals[F_ID], cmd == C_PING_NODE ? 1 : 0,
                              UINT64_MAX, &id, reason)) {
            snprintf(errmsg, sizeof(errmsg), "--id: %.400s", reason);
            goto usage_err;
        }
    }
    if (cmd == C_PARTITION_INFO && !vals[F_ID] == !vals[F_KEY]) {
        snprintf(errmsg, sizeof(errmsg), "give exactly one of --id and --key");
        goto usage_err;
    }
    if (vals[F_KEY] && vals[F_KEY][0] == '\0') {
        snprintf(errmsg, sizeof(errmsg), "--key: the key is empty");
        goto usage_err;
    }
    if ((cmd == C_PING_NODE || cmd == C_TRANSFER_LEADER) && !vals[F_ID]) {
        snprintf(errmsg, sizeof(errmsg), "--id is required");
        goto usage_err;
    }
    if (cmd == C_TRANSFER_LEADER &&
        (!vals[F_TO] ||
         bs_cli_parse_uint(vals[F_TO], 1, UINT32_MAX, &to, reason))) {
        snprintf(errmsg, sizeof(errmsg), "--to: %.400s",
                 vals[F_TO] ? reason : "the node id is required");
        goto usage_err;
    }
    if (check_args(cmd, vals, pos[1], &args, errmsg) != 0)
        goto usage_err;

    code = run(&c, cmd, id, to, vals[F_KEY], vals[F_DETAILED] != NULL, &args);
    bs_rpc_conn_close(c.conn);
    return code;

usage_err:
    fprintf(stderr, "basalt cluster%s%s: %s\n", name ? " " : "",
            name ? name : "", errmsg);
    return 2;
}
