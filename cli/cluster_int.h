/*
 * cluster_int.h - what the two halves of `basalt cluster` share: the
 * command context, the call helpers over basalt.Admin, the table printer
 * and the JSON/YAML output (cluster.c), used by the membership and
 * scheduling commands (cluster_ops.c).
 *
 * Output conventions (both files): a table on stdout, or with -o json|yaml
 * one cJSON tree printed by bs_cli__print_tree (YAML is the same tree
 * replayed through libyaml, so the two never disagree); a failure is one
 * line "basalt cluster <cmd>: <reason>" on stderr (bs_cli__failed) and
 * exit status 1; 64-bit numbers go into trees as raw JSON numbers.
 */
#ifndef BS_CLI_CLUSTER_INT_H
#define BS_CLI_CLUSTER_INT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin_codec.h"
#include "client.h"

/* What every command is given. */
struct bs_cli_cctx {
    const char *cmd; /* "list-nodes", for messages */
    const char *endpoints;
    int64_t timeout;          /* per request, ms (--timeout-ms) */
    const char *out;          /* table, json or yaml */
    struct bs_rpc_conn *conn; /* opened by the first call, closed by
                                 bs_cli_cluster: polls reuse it */
};

/* Whether the output is a table (not json or yaml). */
bool bs_cli__is_table(const struct bs_cli_cctx *c);

/* "basalt cluster <cmd>: <reason>" on stderr (stdout flushed first);
 * returns 1, the exit status. */
int bs_cli__failed(const struct bs_cli_cctx *c, const char *f, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints tree (taken: deleted here; NULL is "out of memory") as JSON or
 * YAML per c->out. Returns 0, or 1 with the reason printed. */
int bs_cli__print_tree(const struct bs_cli_cctx *c, cJSON *tree);

/*
 * Calls method with req[len] (borrowed) on c's endpoints (failover between
 * them, c->timeout per call). Returns 0 and *resp (malloc'd, caller
 * frees), or a BS_E* code with the reason (the gRPC status message) in em
 * (BS_RPC_CONN_ERRMSG_SIZE bytes): nothing printed, for polls that retry.
 */
int bs_cli__call_quiet(struct bs_cli_cctx *c, const char *method,
                       const void *req, size_t len, uint8_t **resp,
                       size_t *resp_len, char *em);

/* The same, printing the reason: 0, or 1 (the exit status). */
int bs_cli__call(struct bs_cli_cctx *c, const char *method, const void *req,
                 size_t len, uint8_t **resp, size_t *resp_len);

/* ClusterStatus into *st (bs_adm_status_free): quietly (0 or a BS_E*
 * code with em), or printing the reason (0 or 1). */
int bs_cli__status_quiet(struct bs_cli_cctx *c, struct bs_adm_status *st,
                         char *em);
int bs_cli__get_status(struct bs_cli_cctx *c, struct bs_adm_status *st);

/* bs_cli__get_status, then, when the answer lacks the heartbeat figures
 * (disk use, heartbeat ages: soft state that only the placement leader's
 * node has) and another node leads the placement group, the same asked of
 * that node (its client address, no failover), whose answer replaces the
 * first one if it comes. 0, or 1 with the reason printed (the first
 * call's). */
int bs_cli__get_status_figures(struct bs_cli_cctx *c, struct bs_adm_status *st);

/* The node with id in st, or NULL. */
const struct bs_adm_node *bs_cli__find_node(const struct bs_adm_status *st,
                                            uint64_t id);

/* Monotonic clock, microseconds. */
int64_t bs_cli__now_us(void);

/* ------------------------------------------------------------- tables */

#define BS_CLI_MAX_COLS 12

/* A table of strings, printed with columns as wide as their widest cell.
 * Zero-initialise, set n_cols (<= BS_CLI_MAX_COLS), add rows, print. */
struct bs_cli_table {
    size_t n_cols, n_rows;
    char **cells; /* row-major, n_rows * n_cols, owned */
};

/* Appends row (n_cols cells, each malloc'd or NULL; taken). */
void bs_cli__table_add(struct bs_cli_table *t, char **row);
/* Prints the table to stdout and empties it. */
void bs_cli__table_print(struct bs_cli_table *t);

/* printf into a malloc'd string (NULL: no memory). */
char *bs_cli__fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* A shard's range for a table: "[start, end)" or the placement group's
 * note (malloc'd, NULL: no memory). */
char *bs_cli__range_str(const struct bs_adm_shard *s);

/* A byte count as "512", "64M", "1.5G" (the suffixes --split-size
 * takes; malloc'd). */
char *bs_cli__size_str(uint64_t v);

/* A shard's replicas as "node[*][~],...": * the leader, ~ a learner
 * (malloc'd). */
char *bs_cli__replicas_str(const struct bs_adm_shard *s);

/* ------------------------------------------------------- JSON objects */

void bs_cli__add_u64(cJSON *o, const char *name, uint64_t v);
void bs_cli__add_i64(cJSON *o, const char *name, int64_t v);
/* name (text) or name_hex = b[len]. */
void bs_cli__add_bytes(cJSON *o, const char *name, const uint8_t *b,
                       size_t len);
/* A node, a shard, as `list-nodes` / `list-partitions` print them. */
cJSON *bs_cli__node_obj(const struct bs_adm_node *n);
cJSON *bs_cli__shard_obj(const struct bs_adm_shard *s);
/* The whole status, or only its nodes or only its shards. */
cJSON *bs_cli__status_tree(const struct bs_adm_status *st, bool nodes,
                           bool shards);

/* ------------------------------------------ commands of cluster_ops.c */

/* Options of the commands that wait (their flags, parsed by cluster.c). */
struct bs_cli_cluster_args {
    uint64_t id;        /* --id: shard (split, isr-status) or node */
    bool has_id;        /* --id given */
    const char *key;    /* split --key, NULL = the middle */
    int64_t wait_s;     /* --timeout S */
    bool wait;          /* remove-node --wait */
    bool cancel;        /* remove-node --cancel */
    bool dry_run;       /* rebalance --dry-run */
    uint32_t max_moves; /* rebalance --max-moves, 0 = the scheduler's */
    const char *action; /* scheduler: show, pause, resume */
    const char *client_addr, *peer_addr, *data_dir; /* add-node */
};

/* Each returns the exit status (0, or 1 with the reason printed). */
int bs_cli__cmd_status_detailed(struct bs_cli_cctx *c);
int bs_cli__cmd_add_node(struct bs_cli_cctx *c,
                         const struct bs_cli_cluster_args *a);
int bs_cli__cmd_remove_node(struct bs_cli_cctx *c,
                            const struct bs_cli_cluster_args *a);
int bs_cli__cmd_rebalance(struct bs_cli_cctx *c,
                          const struct bs_cli_cluster_args *a);
int bs_cli__cmd_isr_status(struct bs_cli_cctx *c,
                           const struct bs_cli_cluster_args *a);
int bs_cli__cmd_split(struct bs_cli_cctx *c,
                      const struct bs_cli_cluster_args *a);
int bs_cli__cmd_scheduler(struct bs_cli_cctx *c,
                          const struct bs_cli_cluster_args *a);

#endif
