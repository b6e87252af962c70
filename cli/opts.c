/*
 * opts.c - the option layer of the `basalt` binary (see opts.h): the flag
 * walker every subcommand uses, value parsers, `basalt start`'s options
 * from flags and YAML, and the byte-string helpers of the clients.
 *
 * `basalt start` reads its settings in two passes so that flags override
 * the file whatever their order on the command line: the walk over argv
 * only collects the words (and catches unknown and duplicate flags), then
 * the YAML file named by --config is applied to fresh defaults, then each
 * flag collected is applied over it. The same function applies a setting
 * from either source (apply_setting), so a key and its flag accept exactly
 * the same values; only the way an error names the culprit differs
 * ("--tick-ms: ..." or "FILE:LINE: tick-ms: ...").
 */
#include "opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "placement.h"

/* =========================================================== helpers */

static void set_err(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(char *errmsg, const char *fmt, ...)
{
    va_list ap;

    if (errmsg == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(errmsg, BS_CLI_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

/* ======================================================== flag parser */

void bs_cli_argv_init(struct bs_cli_argv *a, int argc, char **argv,
                      const struct bs_cli_flag *flags, size_t n_flags)
{
    memset(a, 0, sizeof(*a));
    a->argc = argc;
    a->argv = argv;
    a->next = 1;
    a->flags = flags;
    a->n_flags = n_flags < BS_CLI_MAX_FLAGS ? n_flags : BS_CLI_MAX_FLAGS;
}

/* The flag called name[0 .. len) (long) or short_name, or -1. */
static int find_flag(const struct bs_cli_argv *a, const char *name, size_t len,
                     char short_name)
{
    for (size_t i = 0; i < a->n_flags; i++) {
        const struct bs_cli_flag *f = &a->flags[i];

        if (short_name != 0) {
            if (f->short_name == short_name)
                return (int)i;
        } else if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int bs_cli_argv_next(struct bs_cli_argv *a, int *which, const char **val,
                     char *errmsg)
{
    const char *w, *name, *eq, *inline_val = NULL;
    char shown[80];
    size_t len;
    int i;

    *val = NULL;
    if (a->next >= a->argc) {
        *which = BS_CLI_END;
        return 0;
    }
    w = a->argv[a->next++];
    if (a->only_positional || w[0] != '-' || w[1] == '\0') {
        *which = BS_CLI_POSITIONAL;
        *val = w;
        return 0;
    }
    if (strcmp(w, "--") == 0) {
        a->only_positional = true;
        return bs_cli_argv_next(a, which, val, errmsg);
    }
    if (w[1] == '-') {
        /* --name or --name=value */
        name = w + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        if (eq)
            inline_val = eq + 1;
        i = find_flag(a, name, len, 0);
        snprintf(shown, sizeof(shown), "--%.*s", (int)(len < 60 ? len : 60),
                 name);
    } else {
        /* -x, -xVALUE or -x=VALUE */
        i = find_flag(a, NULL, 0, w[1]);
        if (w[2] != '\0')
            inline_val = w[2] == '=' ? w + 3 : w + 2;
        snprintf(shown, sizeof(shown), "-%c", w[1]);
        if (i >= 0 && a->flags[i].arg == BS_CLI_ARG_NONE && w[2] != '\0')
            i = -1; /* "-hx" is not -h */
    }
    if (i < 0) {
        set_err(errmsg, "unknown flag %s", w[1] == '-' ? shown : w);
        return BS_EINVAL;
    }
    if (a->seen & (1ULL << i)) {
        set_err(errmsg, "flag --%s given twice", a->flags[i].name);
        return BS_EINVAL;
    }
    a->seen |= 1ULL << i;
    switch (a->flags[i].arg) {
    case BS_CLI_ARG_NONE:
        if (inline_val != NULL) {
            set_err(errmsg, "flag --%s takes no value", a->flags[i].name);
            return BS_EINVAL;
        }
        break;
    case BS_CLI_ARG_OPTIONAL:
        *val = inline_val;
        break;
    default:
        if (inline_val == NULL) {
            if (a->next >= a->argc) {
                set_err(errmsg, "flag --%s needs a value", a->flags[i].name);
                return BS_EINVAL;
            }
            inline_val = a->argv[a->next++];
        }
        *val = inline_val;
        break;
    }
    *which = i;
    return 0;
}

/* ======================================================= value parsers */

int bs_cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                      char *reason)
{
    uint64_t v = 0;
    const char *p;

    for (p = s; *p != '\0'; p++) {
        unsigned d = (unsigned)(*p - '0');

        if (*p < '0' || *p > '9' || v > (UINT64_MAX - d) / 10) {
            v = UINT64_MAX;
            break;
        }
        v = v * 10 + d;
    }
    if (p == s || *p != '\0' || v < min || v > max) {
        set_err(reason, "'%.64s' is not an integer in %llu .. %llu", s,
                (unsigned long long)min, (unsigned long long)max);
        return BS_EINVAL;
    }
    *out = v;
    return 0;
}

int bs_cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                      char *reason)
{
    char digits[24], why[BS_CLI_ERRMSG_SIZE];
    size_t n = strlen(s);
    unsigned shift = 0;
    uint64_t v;

    if (n > 0) {
        switch (s[n - 1]) {
        case 'K':
        case 'k':
            shift = 10;
            break;
        case 'M':
        case 'm':
            shift = 20;
            break;
        case 'G':
        case 'g':
            shift = 30;
            break;
        }
    }
    if (shift != 0)
        n--;
    if (n == 0 || n >= sizeof(digits))
        goto bad;
    memcpy(digits, s, n);
    digits[n] = '\0';
    if (bs_cli_parse_uint(digits, 0, UINT64_MAX >> shift, &v, why) != 0)
        goto bad;
    v <<= shift;
    if (v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    set_err(reason,
            "'%.64s' is not a size in %llu .. %llu bytes (a number, or "
            "with a suffix K, M or G: KiB, MiB, GiB)",
            s, (unsigned long long)min, (unsigned long long)max);
    return BS_EINVAL;
}

int bs_cli_parse_bool(const char *s, bool *out, char *reason)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    set_err(reason, "'%.64s' is not a boolean (true or false)", s);
    return BS_EINVAL;
}

int bs_cli_check_addr(const char *s, char *reason)
{
    const char *colon = strrchr(s, ':');
    size_t len = strlen(s), host_len;
    uint64_t port;
    char why[BS_CLI_ERRMSG_SIZE];

    if (len > BS_NODE_ADDR_MAX) {
        set_err(reason, "address longer than %d bytes", BS_NODE_ADDR_MAX);
        return BS_EINVAL;
    }
    if (colon == NULL) {
        set_err(reason, "'%.64s' is not HOST:PORT", s);
        return BS_EINVAL;
    }
    host_len = (size_t)(colon - s);
    if (host_len == 0) {
        set_err(reason, "'%.64s' has no host (HOST:PORT)", s);
        return BS_EINVAL;
    }
    for (size_t i = 0; i < host_len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= ' ' || c == 0x7f || c == '/') {
            set_err(reason, "'%.64s' has a bad character in its host", s);
            return BS_EINVAL;
        }
    }
    if (s[0] == '[') {
        if (host_len < 3 || s[host_len - 1] != ']') {
            set_err(reason, "'%.64s' is not [IPV6]:PORT", s);
            return BS_EINVAL;
        }
    } else if (memchr(s, ':', host_len) != NULL) {
        set_err(reason, "'%.64s': put an IPv6 host in brackets ([::1]:PORT)",
                s);
        return BS_EINVAL;
    }
    if (strlen(colon + 1) > 5 ||
        bs_cli_parse_uint(colon + 1, 0, 65535, &port, why) != 0) {
        set_err(reason, "'%.64s' has no port in 0 .. 65535 (HOST:PORT)", s);
        return BS_EINVAL;
    }
    return 0;
}

/* ================================================= `basalt start` opts */

/* Indexes into bs_cli_start_flags; S_CONFIG and S_HELP are flags only. */
enum {
    S_ID,
    S_DATA_DIR,
    S_CLIENT_ADDR,
    S_PEER_ADDR,
    S_HTTP_ADDR,
    S_INITIAL_CLUSTER,
    S_INITIAL_SHARDS,
    S_TICK_MS,
    S_ELECTION_TICKS,
    S_LOG_MAX_ENTRIES,
    S_LEASE_READS,
    S_JOIN,
    S_LABELS,
    S_HEARTBEAT_MS,
    S_DOWN_AFTER_MS,
    S_MAX_LAG_ENTRIES,
    S_MAX_LAG_MS,
    S_MIN_INSYNC_REPLICAS,
    S_MAX_CONCURRENT_MOVES,
    S_SPLIT_SIZE,
    S_SPLIT_QPS,
    S_SNAPSHOT_RATE,
    S_OP_TIMEOUT_MS,
    S_N_SETTINGS, /* the settings a YAML file may hold end here */
    S_CONFIG = S_N_SETTINGS,
    S_HELP,
    S_N_FLAGS,
};

const struct bs_cli_flag bs_cli_start_flags[] = {
    [S_ID] = {"id", 0, BS_CLI_ARG_REQUIRED},
    [S_DATA_DIR] = {"data-dir", 0, BS_CLI_ARG_REQUIRED},
    [S_CLIENT_ADDR] = {"client-addr", 0, BS_CLI_ARG_REQUIRED},
    [S_PEER_ADDR] = {"peer-addr", 0, BS_CLI_ARG_REQUIRED},
    [S_HTTP_ADDR] = {"http-addr", 0, BS_CLI_ARG_REQUIRED},
    [S_INITIAL_CLUSTER] = {"initial-cluster", 0, BS_CLI_ARG_REQUIRED},
    [S_INITIAL_SHARDS] = {"initial-shards", 0, BS_CLI_ARG_REQUIRED},
    [S_TICK_MS] = {"tick-ms", 0, BS_CLI_ARG_REQUIRED},
    [S_ELECTION_TICKS] = {"election-ticks", 0, BS_CLI_ARG_REQUIRED},
    [S_LOG_MAX_ENTRIES] = {"log-max-entries", 0, BS_CLI_ARG_REQUIRED},
    [S_LEASE_READS] = {"lease-reads", 0, BS_CLI_ARG_OPTIONAL},
    [S_JOIN] = {"join", 0, BS_CLI_ARG_REQUIRED},
    [S_LABELS] = {"labels", 0, BS_CLI_ARG_REQUIRED},
    [S_HEARTBEAT_MS] = {"heartbeat-ms", 0, BS_CLI_ARG_REQUIRED},
    [S_DOWN_AFTER_MS] = {"down-after-ms", 0, BS_CLI_ARG_REQUIRED},
    [S_MAX_LAG_ENTRIES] = {"max-lag-entries", 0, BS_CLI_ARG_REQUIRED},
    [S_MAX_LAG_MS] = {"max-lag-ms", 0, BS_CLI_ARG_REQUIRED},
    [S_MIN_INSYNC_REPLICAS] = {"min-insync-replicas", 0, BS_CLI_ARG_REQUIRED},
    [S_MAX_CONCURRENT_MOVES] = {"max-concurrent-moves", 0, BS_CLI_ARG_REQUIRED},
    [S_SPLIT_SIZE] = {"split-size", 0, BS_CLI_ARG_REQUIRED},
    [S_SPLIT_QPS] = {"split-qps", 0, BS_CLI_ARG_REQUIRED},
    [S_SNAPSHOT_RATE] = {"snapshot-rate", 0, BS_CLI_ARG_REQUIRED},
    [S_OP_TIMEOUT_MS] = {"op-timeout-ms", 0, BS_CLI_ARG_REQUIRED},
    [S_CONFIG] = {"config", 0, BS_CLI_ARG_REQUIRED},
    [S_HELP] = {"help", 'h', BS_CLI_ARG_NONE},
};
const size_t bs_cli_start_n_flags = S_N_FLAGS;

/* The settings without which a node cannot start (--id is optional with
 * --join: placement then gives the node an id). */
static const int required[] = {S_ID, S_DATA_DIR, S_CLIENT_ADDR, S_PEER_ADDR};

static int copy_str(char *dst, size_t size, const char *val, bool allow_empty,
                    char *reason)
{
    size_t len = strlen(val);

    if (len == 0 && !allow_empty) {
        set_err(reason, "must not be empty");
        return BS_EINVAL;
    }
    if (len >= size) {
        set_err(reason, "longer than %zu bytes", size - 1);
        return BS_EINVAL;
    }
    memcpy(dst, val, len + 1);
    return 0;
}

static int set_addr(char *dst, const char *val, bool allow_empty, char *reason)
{
    if (val[0] == '\0' && allow_empty) {
        dst[0] = '\0';
        return 0;
    }
    if (bs_cli_check_addr(val, reason) != 0)
        return BS_EINVAL;
    return copy_str(dst, BS_NODE_ADDR_MAX + 1, val, false, reason);
}

/* Ranges of the placement and ISR settings (0 in struct bs_node_opts is
 * "the default", so the smallest value a flag takes is at least 1, except
 * where 0 means "off" or "unlimited": --split-qps, --snapshot-rate). */
#define DAY_MS    86400000ULL
#define MAX_BYTES (1ULL << 50) /* 1 PiB */

/*
 * A list parsed by node.c (rc its result, why its message): node.c names
 * the flag itself ("--join: ..."); the caller does here, from either
 * source, so the prefix is dropped. Returns 0 or BS_EINVAL.
 */
static int node_list(int rc, const char *flag, const char *why, char *reason)
{
    size_t fl = strlen(flag);

    if (rc == 0)
        return 0;
    if (strncmp(why, "--", 2) == 0 && strncmp(why + 2, flag, fl) == 0 &&
        strncmp(why + 2 + fl, ": ", 2) == 0)
        why += 2 + fl + 2;
    set_err(reason, "%s", why[0] ? why : bs_strerror(rc));
    return BS_EINVAL;
}

/*
 * The ranges below are those of bs_node_opts_check (rpc/node.c), checked
 * here as well so that an error names where the value came from.
 *
 * Applies setting `which` with the text val (NULL only for a flag given
 * without its optional value) to o. 0, or BS_EINVAL with the reason
 * (without the setting's name).
 */
static int apply_setting(struct bs_node_opts *o, int which, const char *val,
                         char *reason)
{
    char why[BS_NODE_ERRMSG_SIZE] = "";
    uint64_t v;
    int rc;

    switch (which) {
    case S_ID:
        rc = bs_cli_parse_uint(val, 1, UINT32_MAX, &v, reason);
        if (rc == 0)
            o->node_id = v;
        return rc;
    case S_DATA_DIR:
        return copy_str(o->data_dir, sizeof(o->data_dir), val, false, reason);
    case S_CLIENT_ADDR:
        return set_addr(o->client_addr, val, false, reason);
    case S_PEER_ADDR:
        return set_addr(o->peer_addr, val, false, reason);
    case S_HTTP_ADDR:
        return set_addr(o->http_addr, val, true, reason);
    case S_INITIAL_CLUSTER:
        o->n_initial = 0;
        memset(o->initial, 0, sizeof(o->initial));
        if (val[0] == '\0') {
            set_err(reason, "must not be empty (ID=HOST:PORT,...)");
            return BS_EINVAL;
        }
        return node_list(bs_node_parse_members(o, val, why), "initial-cluster",
                         why, reason);
    case S_JOIN:
        if (val[0] == '\0') {
            o->n_join = 0;
            set_err(reason, "must not be empty (HOST:PORT,...)");
            return BS_EINVAL;
        }
        rc = node_list(bs_node_parse_join(o, val, why), "join", why, reason);
        /* A finer check of each address than node.c's (brackets of IPv6
         * hosts, characters of the host). */
        for (size_t i = 0; rc == 0 && i < o->n_join; i++) {
            if (bs_cli_check_addr(o->join[i], why) != 0) {
                set_err(reason, "%s", why);
                o->n_join = 0;
                rc = BS_EINVAL;
            }
        }
        return rc;
    case S_LABELS:
        if (val[0] == '\0') {
            o->n_labels = 0;
            set_err(reason, "must not be empty (KEY=VALUE,...)");
            return BS_EINVAL;
        }
        return node_list(bs_node_parse_labels(o, val, why), "labels", why,
                         reason);
    case S_INITIAL_SHARDS:
        rc = bs_cli_parse_uint(val, 1, BS_PD_MAX_INITIAL_SHARDS, &v, reason);
        if (rc == 0)
            o->initial_shards = (uint32_t)v;
        return rc;
    case S_TICK_MS:
        rc = bs_cli_parse_uint(val, 1, 10000, &v, reason);
        if (rc == 0)
            o->tick_ms = (int)v;
        return rc;
    case S_ELECTION_TICKS:
        rc = bs_cli_parse_uint(val, 3, 1000, &v, reason);
        if (rc == 0)
            o->election_ticks = (int)v;
        return rc;
    case S_LOG_MAX_ENTRIES:
        rc = bs_cli_parse_uint(val, 10, INT64_MAX, &v, reason);
        if (rc == 0)
            o->log_max_entries = v;
        return rc;
    case S_LEASE_READS:
        if (val == NULL) {
            o->lease_reads = true;
            return 0;
        }
        return bs_cli_parse_bool(val, &o->lease_reads, reason);
    case S_HEARTBEAT_MS:
        return bs_cli_parse_uint(val, 10, 60000, &o->heartbeat_ms, reason);
    case S_DOWN_AFTER_MS:
        return bs_cli_parse_uint(val, 100, DAY_MS, &o->down_after_ms, reason);
    case S_MAX_LAG_ENTRIES:
        return bs_cli_parse_uint(val, 1, INT64_MAX, &o->max_lag_entries,
                                 reason);
    case S_MAX_LAG_MS:
        return bs_cli_parse_uint(val, 1, DAY_MS, &o->max_lag_ms, reason);
    case S_MIN_INSYNC_REPLICAS:
        rc = bs_cli_parse_uint(val, 1, BS_RAFT_MAX_MEMBERS, &v, reason);
        if (rc == 0)
            o->min_insync_replicas = (uint32_t)v;
        return rc;
    case S_MAX_CONCURRENT_MOVES:
        rc = bs_cli_parse_uint(val, 1, 1000, &v, reason);
        if (rc == 0)
            o->max_concurrent_moves = (uint32_t)v;
        return rc;
    case S_SPLIT_SIZE:
        return bs_cli_parse_size(val, 1024, MAX_BYTES, &o->split_size, reason);
    case S_SPLIT_QPS:
        return bs_cli_parse_uint(val, 0, 1000000000, &o->split_qps, reason);
    case S_SNAPSHOT_RATE:
        return bs_cli_parse_size(val, 0, MAX_BYTES, &o->snapshot_rate, reason);
    case S_OP_TIMEOUT_MS:
        return bs_cli_parse_uint(val, 1000, DAY_MS, &o->op_timeout_ms, reason);
    default:
        set_err(reason, "not a setting");
        return BS_EINVAL;
    }
}

int bs_cli_start_parse(int argc, char **argv, struct bs_node_opts *o,
                       bool *help, char *errmsg)
{
    const char *vals[S_N_FLAGS] = {0};
    char reason[BS_CLI_ERRMSG_SIZE];
    struct bs_cli_argv a;
    uint64_t given, from_file = 0;
    const char *val;
    int which, rc;

    *help = false;
    bs_node_opts_init(o);
    bs_cli_argv_init(&a, argc, argv, bs_cli_start_flags, S_N_FLAGS);
    for (;;) {
        rc = bs_cli_argv_next(&a, &which, &val, errmsg);
        if (rc != 0)
            return rc;
        if (which == BS_CLI_END)
            break;
        if (which == BS_CLI_POSITIONAL) {
            set_err(errmsg, "unexpected argument '%.64s' (flags only)", val);
            return BS_EINVAL;
        }
        vals[which] = val;
    }
    given = a.seen;
    if (given & (1ULL << S_HELP)) {
        *help = true;
        return 0;
    }
    if (given & (1ULL << S_CONFIG)) {
        rc = bs_cli_config_load(vals[S_CONFIG], o, &from_file, errmsg);
        if (rc != 0)
            return rc;
    }
    for (int i = 0; i < S_N_SETTINGS; i++) {
        if (!(given & (1ULL << i)))
            continue;
        if (apply_setting(o, i, vals[i], reason) != 0) {
            set_err(errmsg, "--%s: %s", bs_cli_start_flags[i].name, reason);
            return BS_EINVAL;
        }
    }
    if (((given | from_file) & (1ULL << S_JOIN)) &&
        ((given | from_file) & (1ULL << S_INITIAL_CLUSTER))) {
        set_err(errmsg, "--join and --initial-cluster exclude each other: "
                        "--join adds this node to a running cluster, "
                        "--initial-cluster bootstraps a new one");
        return BS_EINVAL;
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        int s = required[i];

        if (s == S_ID && ((given | from_file) & (1ULL << S_JOIN)))
            continue;
        if (!((given | from_file) & (1ULL << s))) {
            set_err(errmsg, "missing --%s%s", bs_cli_start_flags[s].name,
                    s == S_ID ? " (or --join, to be given one)" : "");
            return BS_EINVAL;
        }
    }
    {
        char why[BS_NODE_ERRMSG_SIZE] = "";

        rc = bs_node_opts_check(o, why);
        if (rc != 0) {
            set_err(errmsg, "%s", why[0] ? why : bs_strerror(rc));
            return BS_EINVAL;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- YAML */

static unsigned long node_line(const yaml_node_t *n)
{
    return (unsigned long)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* Appends s to the growing string *buf (of *len bytes, *cap allocated). */
static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);

    if (*len + n + 1 > *cap) {
        size_t ncap = (*len + n + 1) * 2;
        char *nb = realloc(*buf, ncap);

        if (nb == NULL)
            return BS_ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return 0;
}

/*
 * A list setting given as a YAML collection: initial-cluster or labels as
 * a mapping { 1: h:p, 2: h:p } / { rack: r1 }, join as a sequence
 * [h:p, h:p]. Rebuilds the flag's "1=h:p,2=h:p" / "h:p,h:p" form, so that
 * both forms meet the same checks (node.c's parsers). key is the setting;
 * elem ("member") and form ("ID: HOST:PORT") name an element in messages.
 */
static int list_from_collection(yaml_document_t *doc, yaml_node_t *coll,
                                const char *name, const char *key,
                                const char *elem, const char *form, char **out,
                                char *errmsg)
{
    bool is_map = coll->type == YAML_MAPPING_NODE;
    size_t len = 0, cap = 0;
    char *buf = NULL;
    int rc = 0;
    size_t n = is_map ? (size_t)(coll->data.mapping.pairs.top -
                                 coll->data.mapping.pairs.start)
                      : (size_t)(coll->data.sequence.items.top -
                                 coll->data.sequence.items.start);

    if (append(&buf, &len, &cap, "") != 0)
        return BS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = NULL, *v;

        if (is_map) {
            yaml_node_pair_t *p = &coll->data.mapping.pairs.start[i];

            k = yaml_document_get_node(doc, p->key);
            v = yaml_document_get_node(doc, p->value);
        } else {
            v = yaml_document_get_node(doc, coll->data.sequence.items.start[i]);
        }
        if ((is_map && (k == NULL || k->type != YAML_SCALAR_NODE)) ||
            v == NULL || v->type != YAML_SCALAR_NODE) {
            set_err(errmsg, "%s:%lu: %s: each %s must be %s", name,
                    k   ? node_line(k)
                    : v ? node_line(v)
                        : node_line(coll),
                    key, elem, form);
            rc = BS_EINVAL;
            goto err;
        }
        if ((k && (strchr(scalar(k), ',') || strchr(scalar(k), '='))) ||
            strchr(scalar(v), ',')) {
            set_err(errmsg, "%s:%lu: %s: bad %s '%.64s'", name,
                    node_line(k ? k : v), key, elem, scalar(k ? k : v));
            rc = BS_EINVAL;
            goto err;
        }
        if ((len > 0 && append(&buf, &len, &cap, ",") != 0) ||
            (k && (append(&buf, &len, &cap, scalar(k)) != 0 ||
                   append(&buf, &len, &cap, "=") != 0)) ||
            append(&buf, &len, &cap, scalar(v)) != 0) {
            rc = BS_ENOMEM;
            goto err;
        }
    }
    *out = buf;
    return 0;
err:
    if (rc == BS_ENOMEM)
        set_err(errmsg, "%s: out of memory", name);
    free(buf);
    return rc;
}

int bs_cli_config_parse(const char *name, const uint8_t *buf, size_t len,
                        struct bs_node_opts *o, uint64_t *set, char *errmsg)
{
    char reason[BS_CLI_ERRMSG_SIZE];
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    uint64_t seen = 0;
    int rc = 0;

    if (set != NULL)
        *set = 0;
    if (!yaml_parser_initialize(&parser)) {
        set_err(errmsg, "%s: out of memory", name);
        return BS_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        set_err(errmsg, "%s:%lu: not valid YAML: %s", name,
                (unsigned long)parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return BS_EINVAL;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL)
        goto out; /* an empty file */
    if (root->type != YAML_MAPPING_NODE) {
        set_err(errmsg, "%s:%lu: expected a mapping of settings (key: value)",
                name, node_line(root));
        rc = BS_EINVAL;
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        char *members = NULL;
        int which = -1;

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
            set_err(errmsg, "%s:%lu: a key must be a plain name", name,
                    k ? node_line(k) : node_line(root));
            rc = BS_EINVAL;
            goto out;
        }
        for (int i = 0; i < S_N_SETTINGS; i++) {
            if (strcmp(scalar(k), bs_cli_start_flags[i].name) == 0)
                which = i;
        }
        if (which < 0) {
            set_err(errmsg, "%s:%lu: unknown key '%.64s'", name, node_line(k),
                    scalar(k));
            rc = BS_EINVAL;
            goto out;
        }
        if (seen & (1ULL << which)) {
            set_err(errmsg, "%s:%lu: key '%s' given twice", name, node_line(k),
                    scalar(k));
            rc = BS_EINVAL;
            goto out;
        }
        seen |= 1ULL << which;
        if ((which == S_INITIAL_CLUSTER || which == S_LABELS) &&
            v->type == YAML_MAPPING_NODE) {
            bool lab = which == S_LABELS;

            rc = list_from_collection(
                &doc, v, name, scalar(k), lab ? "label" : "member",
                lab ? "KEY: VALUE" : "ID: HOST:PORT", &members, errmsg);
            if (rc != 0)
                goto out;
        } else if (which == S_JOIN && v->type == YAML_SEQUENCE_NODE) {
            rc = list_from_collection(&doc, v, name, scalar(k), "address",
                                      "HOST:PORT", &members, errmsg);
            if (rc != 0)
                goto out;
        } else if (v->type != YAML_SCALAR_NODE) {
            set_err(errmsg, "%s:%lu: %s: expected a single value", name,
                    node_line(v), scalar(k));
            rc = BS_EINVAL;
            goto out;
        }
        rc = apply_setting(o, which, members ? members : scalar(v), reason);
        free(members);
        if (rc != 0) {
            set_err(errmsg, "%s:%lu: %s: %s", name, node_line(v), scalar(k),
                    reason);
            rc = BS_EINVAL;
            goto out;
        }
    }
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc == 0 && set != NULL)
        *set = seen;
    return rc;
}

int bs_cli_config_load(const char *path, struct bs_node_opts *o, uint64_t *set,
                       char *errmsg)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    int rc;

    if (f == NULL) {
        set_err(errmsg, "--config: cannot open %.200s: %s", path,
                strerror(errno));
        return BS_EINVAL;
    }
    for (;;) {
        size_t n;

        if (len == cap) {
            uint8_t *nb;

            cap = cap ? cap * 2 : 4096;
            if (cap > (16u << 20) || (nb = realloc(buf, cap)) == NULL) {
                set_err(errmsg, "--config: %.200s is too large", path);
                free(buf);
                fclose(f);
                return BS_EINVAL;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        set_err(errmsg, "--config: cannot read %.200s", path);
        free(buf);
        fclose(f);
        return BS_EINVAL;
    }
    fclose(f);
    rc = bs_cli_config_parse(path, buf, len, o, set, errmsg);
    free(buf);
    return rc;
}

/* ===================================================== byte strings */

size_t bs_cli_prefix_end(const uint8_t *key, size_t len, uint8_t *out)
{
    size_t n = len;

    while (n > 0 && key[n - 1] == 0xff)
        n--;
    if (n == 0) {
        out[0] = 0;
        return 1;
    }
    memcpy(out, key, n);
    out[n - 1]++;
    return n;
}

bool bs_cli_is_text(const uint8_t *b, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint32_t c = b[i], min;
        size_t n;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 1, c &= 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, c &= 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, c &= 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t j = 1; j <= n; j++) {
            if ((b[i + j] & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (b[i + j] & 0x3f);
        }
        /* overlong, surrogate, beyond Unicode, or a C1 control */
        if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff ||
            (c >= 0x80 && c <= 0x9f))
            return false;
        i += n + 1;
    }
    return true;
}

char *bs_cli_hex(const uint8_t *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[b[i] >> 4];
        s[2 * i + 1] = digits[b[i] & 15];
    }
    s[2 * len] = '\0';
    return s;
}

char *bs_cli_bytes_str(const uint8_t *b, size_t len)
{
    char *s, *h;

    if (bs_cli_is_text(b, len)) {
        s = malloc(len + 1);
        if (s == NULL)
            return NULL;
        if (len > 0)
            memcpy(s, b, len);
        s[len] = '\0';
        return s;
    }
    h = bs_cli_hex(b, len);
    if (h == NULL)
        return NULL;
    s = malloc(2 * len + 3);
    if (s != NULL) {
        s[0] = '0';
        s[1] = 'x';
        memcpy(s + 2, h, 2 * len + 1);
    }
    free(h);
    return s;
}
