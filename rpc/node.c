/*
 * node.c - one Basalt node as a process (node.h): options, bootstrap or
 * recovery, the loop thread that owns the store, the wiring of servers,
 * peer transport and HTTP port, placement housekeeping (registering this
 * node's addresses, reporting leaders and replica sets), and the clean
 * stop.
 *
 * The loop (one thread, the store's only user):
 *
 *   wait for a task or the next tick
 *     -> run every posted task (client requests, inbound batches, answers
 *        of forwarded calls)
 *     -> tick the store when due (and once a second: housekeeping)
 *     -> bs_eng_store_process() while it has work (persist with one
 *        fsync, send, apply, answer)
 *     -> bs_peer_net_poll() (snapshot chunks)
 *
 * Life of a node (each edge names the function that takes it):
 *
 *   (none) --bs_node_start--> SERVING --bs_node_stop: stopping=1-->
 *   DRAINING (client requests answered UNAVAILABLE; leaderships handed
 *   to other replicas, bounded wait) --servers shut down, loop quits-->
 *   STOPPED (pending work answered, store and db closed, freed)
 */
#define _GNU_SOURCE
#include "node_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "log.h"

#define MOD BS_NODE_MOD

/* ------------------------------------------------------------ options */

void bs_node_opts_init(struct bs_node_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->initial_shards = BS_NODE_DEFAULT_INITIAL_SHARDS;
    o->tick_ms = BS_NODE_DEFAULT_TICK_MS;
    o->election_ticks = BS_NODE_DEFAULT_ELECTION_TICKS;
    o->log_max_entries = BS_NODE_DEFAULT_LOG_MAX;
}

static void seterr(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void seterr(char *errmsg, const char *fmt, ...)
{
    if (!errmsg)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, BS_NODE_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int bs_node_parse_members(struct bs_node_opts *o, const char *s, char *errmsg)
{
    o->n_initial = 0;
    if (!s || !*s) {
        seterr(errmsg, "--initial-cluster is empty: expected "
                       "ID=HOST:PORT[,ID=HOST:PORT...]");
        return BS_EINVAL;
    }
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            seterr(errmsg,
                   "--initial-cluster: element \"%.*s\" has no '=' "
                   "(expected ID=HOST:PORT)",
                   (int)(len > 80 ? 80 : len), p);
            return BS_EINVAL;
        }
        uint64_t id = 0;
        if (!parse_u64(p, (size_t)(eq - p), &id) || id == 0 ||
            id > UINT32_MAX) {
            seterr(errmsg,
                   "--initial-cluster: \"%.*s\" is not a node id "
                   "(1 .. 4294967295)",
                   (int)(eq - p > 40 ? 40 : eq - p), p);
            return BS_EINVAL;
        }
        size_t alen = len - (size_t)(eq + 1 - p);
        if (alen == 0 || alen > BS_NODE_ADDR_MAX) {
            seterr(errmsg,
                   "--initial-cluster: node %" PRIu64 " has %s "
                   "address",
                   id, alen ? "a too long" : "an empty");
            return BS_EINVAL;
        }
        for (size_t i = 0; i < o->n_initial; i++) {
            if (o->initial[i].id == id) {
                seterr(errmsg,
                       "--initial-cluster: node id %" PRIu64 " appears twice",
                       id);
                return BS_EINVAL;
            }
        }
        if (o->n_initial == BS_NODE_MAX_INITIAL) {
            seterr(errmsg, "--initial-cluster: more than %d members",
                   BS_NODE_MAX_INITIAL);
            return BS_EINVAL;
        }
        struct bs_node_member *m = &o->initial[o->n_initial++];
        m->id = id;
        memcpy(m->peer_addr, eq + 1, alen);
        m->peer_addr[alen] = '\0';
        if (!end)
            break;
        p = end + 1;
        if (!*p) {
            seterr(errmsg, "--initial-cluster ends with ','");
            return BS_EINVAL;
        }
    }
    return 0;
}

/* --join and --labels (node.h). A self-contained block: its own element
 * walker, so that each list is checked element by element with a message
 * naming the element. */

/* The next comma-separated element of *p (advanced past it and its comma):
 * its start in *elem and its length in *len. Returns 0, 1 at the end of
 * the list, or -1 for an empty element (",," or a trailing ','). */
static int next_elem(const char **p, const char **elem, size_t *len)
{
    const char *s = *p, *comma;

    if (*s == '\0')
        return 1;
    comma = strchr(s, ',');
    *elem = s;
    *len = comma ? (size_t)(comma - s) : strlen(s);
    if (*len == 0)
        return -1;
    *p = comma ? comma + 1 : s + *len;
    if (comma && comma[1] == '\0')
        return -1; /* "a:1," : the empty element after the comma */
    return 0;
}

/* Whether s[len] is HOST:PORT in shape: a host without blanks and a
 * decimal port 0 .. 65535 after the last colon. */
static bool join_addr_ok(const char *s, size_t len)
{
    const char *colon = NULL;
    uint64_t port = 0;

    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
        if (s[i] == ':')
            colon = s + i;
    }
    if (colon == NULL || colon == s)
        return false;
    return parse_u64(colon + 1, len - (size_t)(colon + 1 - s), &port) &&
           port <= 65535;
}

int bs_node_parse_join(struct bs_node_opts *o, const char *s, char *errmsg)
{
    const char *p = s, *e;
    size_t len;
    int r;

    o->n_join = 0;
    if (!s || !*s) {
        seterr(errmsg, "--join: the list is empty (HOST:PORT[,HOST:PORT...])");
        return BS_EINVAL;
    }
    while ((r = next_elem(&p, &e, &len)) == 0) {
        if (len > BS_NODE_ADDR_MAX) {
            seterr(errmsg,
                   "--join: address \"%.40s...\" is longer than %d "
                   "bytes",
                   e, BS_NODE_ADDR_MAX);
            goto err;
        }
        if (!join_addr_ok(e, len)) {
            seterr(errmsg, "--join: \"%.*s\" is not HOST:PORT",
                   (int)(len > 80 ? 80 : len), e);
            goto err;
        }
        for (size_t i = 0; i < o->n_join; i++) {
            if (strlen(o->join[i]) == len && memcmp(o->join[i], e, len) == 0) {
                seterr(errmsg, "--join: \"%s\" appears twice", o->join[i]);
                goto err;
            }
        }
        if (o->n_join == BS_NODE_MAX_JOIN) {
            seterr(errmsg, "--join: more than %d addresses", BS_NODE_MAX_JOIN);
            goto err;
        }
        memcpy(o->join[o->n_join], e, len);
        o->join[o->n_join][len] = '\0';
        o->n_join++;
    }
    if (r < 0) {
        seterr(errmsg, "--join: an empty address in \"%.80s\"", s);
        goto err;
    }
    return 0;
err:
    o->n_join = 0;
    return BS_EINVAL;
}

/* A label key or value character: printable ASCII or UTF-8, no blank,
 * no ',' or '=' (they separate the list). */
static bool label_char_ok(char c)
{
    return (unsigned char)c > ' ' && c != 0x7f && c != ',' && c != '=';
}

int bs_node_parse_labels(struct bs_node_opts *o, const char *s, char *errmsg)
{
    const size_t kmax = sizeof(o->label_keys[0]) - 1;
    const size_t vmax = sizeof(o->label_values[0]) - 1;
    const char *p = s, *e, *eq;
    size_t len, klen, vlen;
    int r;

    o->n_labels = 0;
    if (!s || !*s) {
        seterr(errmsg,
               "--labels: the list is empty (KEY=VALUE[,KEY=VALUE...])");
        return BS_EINVAL;
    }
    while ((r = next_elem(&p, &e, &len)) == 0) {
        int shown = (int)(len > 80 ? 80 : len);

        eq = memchr(e, '=', len);
        if (eq == NULL) {
            seterr(errmsg,
                   "--labels: \"%.*s\" has no '=' (expected "
                   "KEY=VALUE)",
                   shown, e);
            goto err;
        }
        klen = (size_t)(eq - e);
        vlen = len - klen - 1;
        if (klen == 0 || vlen == 0) {
            seterr(errmsg, "--labels: \"%.*s\" has an empty %s", shown, e,
                   klen == 0 ? "key" : "value");
            goto err;
        }
        if (klen > kmax || vlen > vmax) {
            seterr(errmsg,
                   "--labels: \"%.*s\": a key is at most %zu bytes, "
                   "a value at most %zu",
                   shown, e, kmax, vmax);
            goto err;
        }
        for (size_t i = 0; i < len; i++) {
            if (e + i != eq && !label_char_ok(e[i])) {
                seterr(errmsg,
                       "--labels: \"%.*s\" has a blank, a control "
                       "character or a second '='",
                       shown, e);
                goto err;
            }
        }
        for (size_t i = 0; i < o->n_labels; i++) {
            if (strlen(o->label_keys[i]) == klen &&
                memcmp(o->label_keys[i], e, klen) == 0) {
                seterr(errmsg, "--labels: key \"%s\" appears twice",
                       o->label_keys[i]);
                goto err;
            }
        }
        if (o->n_labels == BS_NODE_MAX_LABELS) {
            seterr(errmsg, "--labels: more than %d labels", BS_NODE_MAX_LABELS);
            goto err;
        }
        memcpy(o->label_keys[o->n_labels], e, klen);
        o->label_keys[o->n_labels][klen] = '\0';
        memcpy(o->label_values[o->n_labels], eq + 1, vlen);
        o->label_values[o->n_labels][vlen] = '\0';
        o->n_labels++;
    }
    if (r < 0) {
        seterr(errmsg, "--labels: an empty element in \"%.80s\"", s);
        goto err;
    }
    return 0;
err:
    o->n_labels = 0;
    return BS_EINVAL;
}

static bool addr_ok(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a)
        return false;
    uint64_t port = 0;
    return parse_u64(colon + 1, strlen(colon + 1), &port) && port <= 65535;
}

int bs_node_opts_check(const struct bs_node_opts *o, char *errmsg)
{
    if ((o->node_id == 0 && o->n_join == 0) || o->node_id > UINT32_MAX) {
        seterr(errmsg, "--id must be a node id in 1 .. 4294967295 (it may "
                       "be left out only with --join)");
        return BS_EINVAL;
    }
    if (o->n_join > 0 && o->n_initial > 0) {
        seterr(errmsg, "--join and --initial-cluster exclude each other: "
                       "a node either bootstraps a new cluster or joins "
                       "one");
        return BS_EINVAL;
    }
    if (!o->data_dir[0]) {
        seterr(errmsg, "--data-dir is required");
        return BS_EINVAL;
    }
    if (!addr_ok(o->client_addr)) {
        seterr(errmsg, "--client-addr \"%s\" is not HOST:PORT", o->client_addr);
        return BS_EINVAL;
    }
    if (!addr_ok(o->peer_addr)) {
        seterr(errmsg, "--peer-addr \"%s\" is not HOST:PORT", o->peer_addr);
        return BS_EINVAL;
    }
    if (o->http_addr[0] && !addr_ok(o->http_addr)) {
        seterr(errmsg, "--http-addr \"%s\" is not HOST:PORT", o->http_addr);
        return BS_EINVAL;
    }
    if (o->initial_shards < 1 || o->initial_shards > BS_PD_MAX_INITIAL_SHARDS) {
        seterr(errmsg, "--initial-shards must be in 1 .. %d",
               BS_PD_MAX_INITIAL_SHARDS);
        return BS_EINVAL;
    }
    if (o->tick_ms < 1 || o->tick_ms > 10000) {
        seterr(errmsg, "--tick-ms must be in 1 .. 10000");
        return BS_EINVAL;
    }
    if (o->election_ticks < 3 || o->election_ticks > 1000) {
        seterr(errmsg, "--election-ticks must be in 3 .. 1000");
        return BS_EINVAL;
    }
    if (o->log_max_entries < 10) {
        seterr(errmsg, "--log-max-entries must be at least 10");
        return BS_EINVAL;
    }
    /* Placement settings that contradict each other would make nodes flap
     * between up and suspect. (A --min-insync-replicas above a shard's
     * voters is capped at their number: bs_node__min_insync.) */
    uint64_t hb = o->heartbeat_ms ? o->heartbeat_ms : 1000;
    uint64_t down = o->down_after_ms ? o->down_after_ms : 30000;
    if (down <= 3 * hb) {
        seterr(errmsg,
               "--down-after-ms %" PRIu64 " must exceed three heartbeats "
               "(--heartbeat-ms %" PRIu64 ")",
               down, hb);
        return BS_EINVAL;
    }
    if (o->max_lag_ms && o->max_lag_ms < hb) {
        seterr(errmsg,
               "--max-lag-ms %" PRIu64 " is shorter than a heartbeat "
               "(--heartbeat-ms %" PRIu64 ")",
               o->max_lag_ms, hb);
        return BS_EINVAL;
    }
    for (size_t i = 0; i < o->n_initial; i++) {
        if (!addr_ok(o->initial[i].peer_addr)) {
            seterr(errmsg,
                   "--initial-cluster: node %" PRIu64 " address "
                   "\"%s\" is not HOST:PORT",
                   o->initial[i].id, o->initial[i].peer_addr);
            return BS_EINVAL;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- mailbox */

uint64_t bs_node__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int bs_node__post(struct bs_node *n, bs_node_task_fn run, void *ctx)
{
    pthread_mutex_lock(&n->mu);
    if (n->loop_stopped) {
        pthread_mutex_unlock(&n->mu);
        run(ctx, true);
        return 0;
    }
    if (n->q_n == n->q_cap) {
        size_t cap = n->q_cap ? n->q_cap * 2 : 256;
        struct bs_node_task *q = realloc(n->q, cap * sizeof(*q));
        if (!q) {
            pthread_mutex_unlock(&n->mu);
            return BS_ENOMEM;
        }
        n->q = q;
        n->q_cap = cap;
    }
    n->q[n->q_n++] = (struct bs_node_task){run, ctx};
    if (n->q_n == 1)
        pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    return 0;
}

const struct bs_pd_state *bs_node__pd(struct bs_node *n)
{
    void *sm = bs_eng_store_sm(n->store, BS_PD_SHARD_PLACEMENT);
    const struct bs_pd_state *pd = sm ? bs_pd_sm_state(sm) : NULL;
    if (pd && !bs_pd_bootstrapped(pd))
        pd = NULL;
    /* A replica of the placement group that hears from no leader (it was
     * removed while its node was down, or is cut off) falls behind; the
     * copy fetched from another member then is newer, and wins. Both come
     * from the same log, so their applied indexes compare. */
    if (pd && n->pd_copy && bs_pd_applied(n->pd_copy) > bs_pd_applied(pd))
        return n->pd_copy;
    return pd ? pd : n->pd_copy; /* outside the placement group */
}

/* ------------------------------------------ placement, from outside */

struct pd_fetch {
    struct bs_node *n;
    uint8_t *img; /* owned */
    size_t len;
    int rc;
};

static void task_pd_fetched(void *ctx, bool cancelled)
{
    struct pd_fetch *f = ctx;
    struct bs_node *n = f->n;
    if (!cancelled) {
        n->pd_fetching = false;
        struct bs_pd_state *st = f->rc == 0 ? bs_pd_state_create() : NULL;
        char em[256] = "";
        if (st && bs_pd_decode_all(st, f->img, f->len, em) == 0 &&
            bs_pd_bootstrapped(st) &&
            (!n->pd_copy || bs_pd_applied(st) >= bs_pd_applied(n->pd_copy))) {
            bs_pd_state_destroy(n->pd_copy);
            n->pd_copy = st;
            st = NULL;
        } else if (f->rc == 0) {
            bs_log(BS_LOG_WARN, MOD,
                   "a copy of the placement state was "
                   "refused detail=\"%s\"",
                   em);
        }
        bs_pd_state_destroy(st);
    }
    free(f->img);
    free(f);
}

/* CQ thread: a member's answer. */
static void on_pd_fetched(void *ctx, const struct bs_rpc_result *res)
{
    struct pd_fetch *f = ctx;
    f->rc = res->rc;
    if (f->rc == 0)
        f->rc = bs_rpc_pd_image_decode(res->data, res->len,
                                       f->n->rpc_limits.max_message, &f->img,
                                       &f->len);
    if (bs_node__post(f->n, task_pd_fetched, f) != 0) {
        free(f->img);
        free(f);
    }
}

/* A node that holds no replica of shard 0 asks a member for the state,
 * members taken in turn: the replicas of shard 0 its copy names, else the
 * initial cluster. */
static void fetch_pd_copy(struct bs_node *n)
{
    if (n->pd_fetching)
        return;
    uint64_t cand[BS_RAFT_MAX_MEMBERS + BS_NODE_MAX_INITIAL];
    size_t k = 0;
    const struct bs_pd_state *view = bs_node__pd(n);
    const struct bs_pd_shard *p0 =
        view ? bs_pd_shard_find(view, BS_PD_SHARD_PLACEMENT) : NULL;
    for (uint32_t i = 0; p0 && i < p0->n_replicas; i++)
        if (p0->replicas[i].node_id != n->o.node_id)
            cand[k++] = p0->replicas[i].node_id;
    for (size_t i = 0; k == 0 && i < n->o.n_initial; i++)
        if (n->o.initial[i].id != n->o.node_id)
            cand[k++] = n->o.initial[i].id;
    if (k == 0)
        return;
    uint64_t node = cand[n->pd_fetch_seq++ % k];
    struct bs_rpc_channel *ch = bs_peer_net_channel(n->net, node);
    if (!ch)
        return;
    struct pd_fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return;
    f->n = n;
    if (bs_rpc_channel_call(ch, "/basalt.node.Forward/PlacementState", "", 0,
                            BS_NODE_FORWARD_TIMEOUT_MS, on_pd_fetched,
                            f) != 0) {
        free(f);
        return;
    }
    n->pd_fetching = true;
}

bool bs_node__heard_within(struct bs_node *n, uint64_t node_id, uint64_t ms)
{
    if (node_id == n->o.node_id)
        return true;
    uint64_t now = bs_node__now();
    for (size_t i = 0; i < n->n_seen; i++)
        if (n->seen[i].node_id == node_id)
            return now - n->seen[i].last_ms <= ms;
    return false;
}

bool bs_node__alive(struct bs_node *n, uint64_t node_id)
{
    return bs_node__heard_within(
        n, node_id,
        2ull * (uint64_t)n->o.election_ticks * (uint64_t)n->o.tick_ms);
}

static void saw_node(struct bs_node *n, uint64_t node_id)
{
    uint64_t now = bs_node__now();
    for (size_t i = 0; i < n->n_seen; i++) {
        if (n->seen[i].node_id == node_id) {
            n->seen[i].last_ms = now;
            return;
        }
    }
    if (n->n_seen < sizeof(n->seen) / sizeof(n->seen[0]))
        n->seen[n->n_seen++] = (struct node_peer_seen){node_id, now};
}

/* --------------------------------------------------- inbound batches */

struct inbound_task {
    struct bs_node *n;
    struct bs_peer_inbound *in; /* owned */
};

static void task_inbound(void *ctx, bool cancelled)
{
    struct inbound_task *t = ctx;
    if (!cancelled) {
        saw_node(t->n, t->in->from_node);
        bs_eng_store_receive(t->n->store, t->in->from_node, t->in->envs,
                             t->in->n);
    }
    bs_peer_inbound_free(t->in);
    free(t);
}

/* CQ thread: a batch or a snapshot image arrived. Out of memory, it is
 * lost, as on a network. */
static void on_deliver(void *ctx, struct bs_peer_inbound *in)
{
    struct inbound_task *t = malloc(sizeof(*t));
    if (!t) {
        bs_peer_inbound_free(in);
        return;
    }
    t->n = ctx;
    t->in = in;
    if (bs_node__post(t->n, task_inbound, t) != 0) {
        bs_peer_inbound_free(in);
        free(t);
    }
}

/* ---------------------------------------------- placement housekeeping */

struct pd_fwd {
    struct bs_node *n;
    bs_node_pd_done done;
    void *ctx;
    int status;
    uint64_t first_id;
};

uint64_t bs_node__pd_first_id(const void *resp, size_t len)
{
    const uint8_t *b = resp;
    uint64_t v = 0;
    if (!b || len != 8)
        return 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static void task_pd_fwd_done(void *ctx, bool cancelled)
{
    struct pd_fwd *f = ctx;
    f->done(f->n, f->ctx, cancelled ? BS_ESTOPPED : f->status, f->first_id);
    free(f);
}

/* CQ thread: the answer of a forwarded placement command. The body is one
 * PlacementResult (see node.proto): field 1 the status as a zigzag-free
 * int32 varint. */
static void on_pd_fwd(void *ctx, const struct bs_rpc_result *res)
{
    struct pd_fwd *f = ctx;
    f->status = res->rc;
    if (res->rc == 0) {
        int64_t st = 0;
        if (bs_rpc_pd_result_decode(res->data, res->len, &st,
                                    &f->first_id) != 0)
            f->status = BS_EPROTO;
        else
            f->status = (int)st;
    }
    if (bs_node__post(f->n, task_pd_fwd_done, f) != 0) {
        f->done(f->n, f->ctx, BS_ENOMEM, 0);
        free(f);
    }
}

static void pd_local_done(void *ctx, int status, const void *resp, size_t len)
{
    struct pd_fwd *f = ctx;
    f->done(f->n, f->ctx, status, bs_node__pd_first_id(resp, len));
    free(f);
}

int bs_node__pd_propose(struct bs_node *n, const struct bs_pd_cmd *cmd,
                        bs_node_pd_done done, void *ctx)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = bs_pd_cmd_encode(cmd, &buf, &len);
    if (rc != 0)
        return rc;
    struct pd_fwd *f = calloc(1, sizeof(*f));
    if (!f) {
        free(buf);
        return BS_ENOMEM;
    }
    f->n = n;
    f->done = done;
    f->ctx = ctx;
    struct bs_eng_group_info gi;
    rc = bs_eng_store_group(n->store, BS_PD_SHARD_PLACEMENT, &gi);
    if (rc == 0 && gi.role == BS_RAFT_LEADER) {
        rc = bs_eng_store_propose(n->store, BS_PD_SHARD_PLACEMENT, buf, len,
                                  pd_local_done, f);
    } else if (rc == 0 && gi.leader != 0) {
        uint64_t node = BS_ENG_REPLICA_NODE(gi.leader);
        struct bs_rpc_channel *ch = bs_peer_net_channel(n->net, node);
        uint8_t *req = NULL;
        size_t rlen = 0;
        rc = ch ? bs_rpc_pd_command_encode(buf, len, &req, &rlen)
                : BS_EUNREACHABLE;
        if (rc == 0) {
            rc = bs_rpc_channel_call(ch, "/basalt.node.Forward/Placement", req,
                                     rlen, BS_NODE_FORWARD_TIMEOUT_MS,
                                     on_pd_fwd, f);
            free(req);
        }
    } else if (rc == 0) {
        rc = BS_ENOTLEADER;
    } else {
        /* No replica here: the leader placement's copy names. */
        const struct bs_pd_shard *p0 =
            n->pd_copy ? bs_pd_shard_find(n->pd_copy, BS_PD_SHARD_PLACEMENT)
                       : NULL;
        uint64_t node =
            p0 && p0->leader ? BS_ENG_REPLICA_NODE(p0->leader)
            : p0 && p0->n_replicas
                ? p0->replicas[n->pd_fetch_seq % p0->n_replicas].node_id
                : 0;
        struct bs_rpc_channel *ch =
            node ? bs_peer_net_channel(n->net, node) : NULL;
        uint8_t *req = NULL;
        size_t rlen = 0;
        rc = ch ? bs_rpc_pd_command_encode(buf, len, &req, &rlen)
                : BS_EUNREACHABLE;
        if (rc == 0) {
            rc = bs_rpc_channel_call(ch, "/basalt.node.Forward/Placement", req,
                                     rlen, BS_NODE_FORWARD_TIMEOUT_MS,
                                     on_pd_fwd, f);
            free(req);
        }
    }
    free(buf);
    if (rc != 0)
        free(f);
    return rc;
}

static void reg_done(struct bs_node *n, void *ctx, int status,
                     uint64_t first_id)
{
    (void)ctx;
    (void)first_id;
    n->reg_busy = false;
    if (status == 0 || status == BS_ESTALE) {
        n->registered = true;
        bs_log(BS_LOG_INFO, MOD, "registered node=%" PRIu64 " client=%s",
               n->o.node_id, n->o.client_addr);
    } else {
        bs_log(BS_LOG_WARN, MOD, "registering failed node=%" PRIu64 " err=%s",
               n->o.node_id, bs_strerror(status));
    }
}

static void report_done(struct bs_node *n, void *ctx, int status,
                        uint64_t first_id)
{
    (void)ctx;
    (void)first_id;
    n->reg_busy = false;
    if (status != 0 && status != BS_ESTALE)
        bs_log(BS_LOG_DEBUG, MOD, "placement report failed err=%s",
               bs_strerror(status));
}

/* The labels of the options (--labels), as placement records them. */
static void node_labels(const struct bs_node *n, struct bs_pd_node_info *info)
{
    info->n_labels = 0;
    for (size_t i = 0; i < n->o.n_labels && i < BS_PD_MAX_LABELS; i++) {
        struct bs_pd_label *l = &info->labels[info->n_labels++];
        snprintf(l->key, sizeof(l->key), "%s", n->o.label_keys[i]);
        snprintf(l->value, sizeof(l->value), "%s", n->o.label_values[i]);
    }
}

static void leader_report_done(struct bs_node *n, void *ctx, int status,
                               uint64_t first_id)
{
    (void)ctx;
    (void)first_id;
    if (n->leader_reports > 0)
        n->leader_reports--;
    if (status != 0 && status != BS_ESTALE)
        bs_log(BS_LOG_DEBUG, MOD, "leader report failed err=%s",
               bs_strerror(status));
}

static bool same_info(const struct bs_pd_node_info *a,
                      const struct bs_pd_node_info *b)
{
    if (a->n_labels != b->n_labels)
        return false;
    for (uint32_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i].key, b->labels[i].key) ||
            strcmp(a->labels[i].value, b->labels[i].value))
            return false;
    return !strcmp(a->client_addr, b->client_addr) &&
           !strcmp(a->peer_addr, b->peer_addr) &&
           !strcmp(a->http_addr, b->http_addr);
}

/* Liveness of nodes this one shares no shard with (no Raft traffic, so
 * no node heartbeats either): a Ping on the peer channel, once a second
 * while nothing else was heard from them. */
struct ping_ctx {
    struct bs_node *n;
    uint64_t node_id;
    bool ok;
};

static void task_pinged(void *ctx, bool cancelled)
{
    struct ping_ctx *p = ctx;
    if (!cancelled && p->ok)
        saw_node(p->n, p->node_id);
    free(p);
}

static void on_pinged(void *ctx, const struct bs_rpc_result *res)
{
    struct ping_ctx *p = ctx;
    p->ok = res->rc == 0;
    if (bs_node__post(p->n, task_pinged, p) != 0)
        free(p);
}

static void ping_silent_nodes(struct bs_node *n, const struct bs_pd_state *pd)
{
    uint64_t now = bs_node__now();
    for (size_t i = 0; i < bs_pd_node_count(pd); i++) {
        const struct bs_pd_node *pn = bs_pd_node_at(pd, i);
        uint64_t id = pn->info.id;
        if (id == n->o.node_id || pn->state == BS_PD_NODE_REMOVED)
            continue;
        bool recent = false;
        for (size_t k = 0; k < n->n_seen; k++)
            if (n->seen[k].node_id == id)
                recent = now - n->seen[k].last_ms < 1000;
        struct bs_rpc_channel *ch = bs_peer_net_channel(n->net, id);
        if (recent || !ch)
            continue;
        struct bs_adm_ping req = {.cluster_id = n->cluster_id,
                                  .node_id = id,
                                  .from_node = n->o.node_id};
        uint8_t *buf = NULL;
        size_t len = 0;
        struct ping_ctx *p = calloc(1, sizeof(*p));
        if (!p || bs_adm_ping_req_encode(&req, &buf, &len, NULL) != 0) {
            free(p);
            continue;
        }
        p->n = n;
        p->node_id = id;
        if (bs_rpc_channel_call(ch, "/basalt.Admin/Ping", buf, len,
                                (int64_t)n->o.tick_ms * n->o.election_ticks,
                                on_pinged, p) != 0)
            free(p);
        free(buf);
    }
}

static void report_shards(struct bs_node *n, const struct bs_pd_state *pd);

/* Once a second: tell placement our addresses if it does not hold them,
 * and report the leaders and replica sets of the shards led here, one
 * command at a time. */
static void housekeeping(struct bs_node *n)
{
    struct bs_eng_group_info g0;
    if (bs_eng_store_group(n->store, BS_PD_SHARD_PLACEMENT, &g0) != 0 ||
        g0.leader == 0)
        fetch_pd_copy(n);
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (!pd || !bs_pd_bootstrapped(pd) || n->reg_busy || n->leader_reports)
        return;
    if (!atomic_load(&n->ready)) {
        atomic_store(&n->ready, true);
        bs_peer_net_set_cluster_id(n->net, bs_pd_cluster_id(pd));
        n->cluster_id = bs_pd_cluster_id(pd);
    }
    ping_silent_nodes(n, pd);
    /* Addresses of every node for the transport (new nodes, changes). */
    for (size_t i = 0; i < bs_pd_node_count(pd); i++) {
        const struct bs_pd_node *pn = bs_pd_node_at(pd, i);
        if (pn->info.id != n->o.node_id && pn->info.peer_addr[0])
            (void)bs_peer_net_set_addr(n->net, pn->info.id, pn->info.peer_addr);
    }
    struct bs_pd_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    const struct bs_pd_node *me = bs_pd_node_find(pd, n->o.node_id);
    struct bs_pd_node_info info;
    memset(&info, 0, sizeof(info));
    info.id = n->o.node_id;
    snprintf(info.client_addr, sizeof(info.client_addr), "%s",
             n->o.client_addr);
    snprintf(info.peer_addr, sizeof(info.peer_addr), "%s", n->o.peer_addr);
    snprintf(info.http_addr, sizeof(info.http_addr), "%s", n->o.http_addr);
    node_labels(n, &info);
    if (me && !same_info(&me->info, &info)) {
        cmd.type = BS_PD_CMD_REGISTER_NODE;
        cmd.u.register_node.node = info;
        cmd.u.register_node.now = bs_node__wall_ms();
        if (bs_node__pd_propose(n, &cmd, reg_done, NULL) == 0)
            n->reg_busy = true;
        return;
    }
    report_shards(n, pd);
}

/*
 * Every tick (and at the end of housekeeping): the leaders, splits and
 * replica sets of the shards led here that placement does not know yet,
 * when no report is in flight. Placement's routing follows a split only
 * once its report applied, and splits of one shard are reported one at a
 * time in order: at one report a second, a shard that split several
 * times in a row left clients routing by stale ranges for seconds.
 */
static void report_shards(struct bs_node *n, const struct bs_pd_state *pd)
{
    struct bs_pd_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    /* Leaders: placement's hint is what nodes without a replica route by. */
    uint64_t ids[1024];
    size_t ng = bs_eng_store_groups(n->store, ids, 1024);
    for (size_t i = 0; i < ng && i < 1024; i++) {
        struct bs_eng_group_info gi;
        if (bs_eng_store_group(n->store, ids[i], &gi) != 0 ||
            gi.role != BS_RAFT_LEADER)
            continue;
        const struct bs_pd_shard *ps = bs_pd_shard_find(pd, ids[i]);
        if (!ps || (ps->leader == gi.replica_id && ps->leader_term == gi.term))
            continue;
        if (!bs_pd_shard_replica_on(ps, n->o.node_id))
            continue;
        /* Every change at once, not one a second: during a rebalance
         * many leaderships move, and nodes without a replica route by
         * these hints (a stale one costs their clients a retry). */
        cmd.type = BS_PD_CMD_SHARD_LEADER;
        cmd.u.leader.shard_id = ids[i];
        cmd.u.leader.leader = gi.replica_id;
        cmd.u.leader.term = gi.term;
        if (bs_node__pd_propose(n, &cmd, leader_report_done, NULL) == 0)
            n->leader_reports++;
        if (n->leader_reports >= 256)
            break;
    }
    if (n->leader_reports > 0)
        return;
    /* Replica sets and splits, as the reporter computes them. */
    const struct bs_shard *shards[1024];
    size_t ns = 0;
    for (size_t i = 0; i < ng && i < 1024; i++) {
        if (ids[i] == BS_PD_SHARD_PLACEMENT)
            continue;
        struct bs_eng_group_info gi;
        if (bs_eng_store_group(n->store, ids[i], &gi) != 0 ||
            gi.role != BS_RAFT_LEADER)
            continue;
        struct bs_shard *sh =
            bs_shard_sm_shard(bs_eng_store_sm(n->store, ids[i]));
        if (sh)
            shards[ns++] = sh;
    }
    if (ns > 0 && bs_pd_next_report(pd, shards, ns, &cmd) == 1) {
        if (bs_node__pd_propose(n, &cmd, report_done, NULL) == 0)
            n->reg_busy = true;
    }
}

/* ------------------------------------------------------------- the loop */

static void run_tasks(struct bs_node *n, struct bs_node_task *tasks, size_t k)
{
    for (size_t i = 0; i < k; i++)
        tasks[i].run(tasks[i].ctx, false);
}

static void *loop_main(void *arg)
{
    struct bs_node *n = arg;
    struct bs_node_task *batch = NULL;
    size_t batch_cap = 0;
    n->next_tick_ms = bs_node__now() + (uint64_t)n->o.tick_ms;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        for (;;) {
            if (n->q_n > 0 || n->quit)
                break;
            if (bs_eng_store_has_work(n->store))
                break;
            uint64_t now = bs_node__now();
            if (now >= n->next_tick_ms)
                break;
            uint64_t wait_ms = n->next_tick_ms - now;
            if (bs_peer_net_busy(n->net) && wait_ms > 5)
                wait_ms = 5;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (time_t)(wait_ms / 1000);
            ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&n->cv, &n->mu, &ts);
            if (bs_peer_net_busy(n->net))
                break;
        }
        bool quit = n->quit;
        /* Swap the mailbox out: tasks run without the lock. */
        size_t k = n->q_n;
        if (k > batch_cap) {
            struct bs_node_task *b = realloc(batch, k * sizeof(*b));
            if (b) {
                batch = b;
                batch_cap = k;
            } else {
                k = batch_cap;
            }
        }
        if (k)
            memcpy(batch, n->q, k * sizeof(*batch));
        if (n->q_n > k)
            memmove(n->q, n->q + k, (n->q_n - k) * sizeof(*n->q));
        n->q_n -= k;
        if (quit && n->q_n == 0)
            n->loop_stopped = true; /* posts run cancelled from now */
        pthread_mutex_unlock(&n->mu);

        if (quit) {
            for (size_t i = 0; i < k; i++)
                batch[i].run(batch[i].ctx, true);
            if (n->loop_stopped)
                break;
            continue;
        }
        run_tasks(n, batch, k);
        uint64_t now = bs_node__now();
        if (now >= n->next_tick_ms) {
            bs_eng_store_tick(n->store);
            n->ticks++;
            n->next_tick_ms += (uint64_t)n->o.tick_ms;
            if (n->next_tick_ms <= now) /* fell behind: don't burst */
                n->next_tick_ms = now + (uint64_t)n->o.tick_ms;
            bs_node__kv_tick(n);
            bs_node__admin_tick(n);
            bs_node__pd_tick(n);
            bs_node__mover_tick(n);
            if (n->ticks % (uint64_t)(1000 / n->o.tick_ms + 1) == 0) {
                housekeeping(n);
            } else if (atomic_load(&n->ready) && !n->reg_busy &&
                       !n->leader_reports) {
                const struct bs_pd_state *pd = bs_node__pd(n);
                if (pd && bs_pd_bootstrapped(pd))
                    report_shards(n, pd);
            }
        }
        int rounds = 0;
        while (bs_eng_store_has_work(n->store) && rounds++ < 4) {
            int rc = bs_eng_store_process(n->store);
            if (rc != 0) {
                bs_log(BS_LOG_ERROR, MOD, "store stopped err=%s",
                       bs_strerror(rc));
                atomic_store(&n->fatal, rc);
                pthread_mutex_lock(&n->mu);
                n->quit = true;
                pthread_mutex_unlock(&n->mu);
                break;
            }
        }
        bs_node__kv_flush(n);
        bs_peer_net_poll(n->net);
    }
    free(batch);
    bs_node__kv_fail_waiting(n);
    bs_node__admin_fail_waiting(n);
    return NULL;
}

/* ------------------------------------------------------------ bootstrap */

/* The cluster id every initial member derives alike from the member list
 * (FNV-1a over "id=addr," in id order), so nodes of another cluster that
 * were given other members refuse each other's batches. */
static uint64_t derive_cluster_id(const struct bs_node_opts *o)
{
    struct bs_node_member m[BS_NODE_MAX_INITIAL];
    size_t k = o->n_initial;
    memcpy(m, o->initial, k * sizeof(m[0]));
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && m[j - 1].id > m[j].id; j--) {
            struct bs_node_member t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    uint64_t h = 1469598103934665603ull;
    char buf[BS_NODE_ADDR_MAX + 32];
    for (size_t i = 0; i < k; i++) {
        int l = snprintf(buf, sizeof(buf), "%" PRIu64 "=%s,", m[i].id,
                         m[i].peer_addr);
        for (int c = 0; c < l; c++) {
            h ^= (uint8_t)buf[c];
            h *= 1099511628211ull;
        }
    }
    return h ? h : 1;
}

static void pd_to_desc(const struct bs_pd_shard *ps, struct bs_shard_desc *d)
{
    memset(d, 0, sizeof(*d));
    d->id = ps->id;
    d->start = ps->start;
    d->start_len = ps->start_len;
    d->end = ps->end;
    d->end_len = ps->end_len;
    d->epoch.conf_ver = ps->epoch.conf_ver;
    d->epoch.version = ps->epoch.version;
    for (uint32_t i = 0; i < ps->n_replicas; i++) {
        d->replicas[i].id = ps->replicas[i].id;
        d->replicas[i].node_id = ps->replicas[i].node_id;
        d->replicas[i].learner = ps->replicas[i].role == BS_PD_ROLE_LEARNER;
    }
    d->n_replicas = ps->n_replicas;
}

/* Creates this node's groups from the placement state at bootstrap;
 * idempotent (a crash half way re-runs it). */
static int create_groups(struct bs_node *n, const struct bs_pd_state *st,
                         char *errmsg)
{
    for (size_t k = 0; k < bs_pd_shard_count(st); k++) {
        const struct bs_pd_shard *ps = bs_pd_shard_at(st, k);
        const struct bs_pd_replica *mine =
            bs_pd_shard_replica_on(ps, n->o.node_id);
        if (!mine)
            continue;
        struct bs_raft_conf_state cs;
        bs_pd_shard_conf_state(ps, &cs);
        int rc = 0;
        if (ps->id != BS_PD_SHARD_PLACEMENT) {
            struct bs_shard_desc d;
            pd_to_desc(ps, &d);
            rc = bs_shard_bootstrap(n->db, &d, &cs, 1, 1);
            if (rc == BS_EEXIST)
                rc = 0;
        }
        if (rc == 0) {
            rc = bs_eng_store_bootstrap_group(n->store, ps->id, mine->id, &cs);
            if (rc == 0 && ps->leader == mine->id)
                rc = bs_eng_store_campaign(n->store, ps->id);
            else if (rc == BS_EEXIST)
                rc = 0;
        }
        if (rc != 0) {
            seterr(errmsg, "bootstrap: creating shard %" PRIu64 ": %s", ps->id,
                   bs_strerror(rc));
            return rc;
        }
    }
    return 0;
}

static int bootstrap(struct bs_node *n, char *errmsg)
{
    bool found = false;
    for (size_t i = 0; i < n->o.n_initial; i++)
        found |= n->o.initial[i].id == n->o.node_id;
    if (!found) {
        seterr(errmsg,
               "--initial-cluster does not list this node (--id "
               "%" PRIu64 "); a new data directory needs the "
               "initial cluster to bootstrap",
               n->o.node_id);
        return BS_EINVAL;
    }
    struct bs_pd_node_info infos[BS_NODE_MAX_INITIAL];
    memset(infos, 0, sizeof(infos));
    for (size_t i = 0; i < n->o.n_initial; i++) {
        infos[i].id = n->o.initial[i].id;
        snprintf(infos[i].peer_addr, sizeof(infos[i].peer_addr), "%s",
                 n->o.initial[i].peer_addr);
    }
    struct bs_pd_cmd boot;
    memset(&boot, 0, sizeof(boot));
    boot.type = BS_PD_CMD_BOOTSTRAP;
    boot.u.bootstrap.cluster_id = derive_cluster_id(&n->o);
    boot.u.bootstrap.initial_shards = n->o.initial_shards;
    boot.u.bootstrap.replicas = BS_PD_DEFAULT_REPLICAS;
    boot.u.bootstrap.n_nodes = (uint32_t)n->o.n_initial;
    /* 0, not a clock: every initial member must build the same command. */
    boot.u.bootstrap.now = 0;
    boot.u.bootstrap.nodes = infos;
    struct bs_pd_state *st = NULL;
    char em[256] = "";
    int rc = bs_pd_bootstrap_local(n->db, &boot, &st, em);
    if (rc == BS_EEXIST) {
        /* A crash after placement was written: the groups again. */
        const struct bs_pd_state *cur = bs_node__pd(n);
        if (!cur) {
            seterr(errmsg, "bootstrap: placement exists but does not load");
            return BS_ECORRUPT;
        }
        rc = create_groups(n, cur, errmsg);
    } else if (rc != 0) {
        seterr(errmsg, "bootstrap: %s", em[0] ? em : bs_strerror(rc));
        return rc;
    } else {
        /* The store opened before shard 0's CF held anything; open the
         * group now from what bootstrap wrote. */
        rc = create_groups(n, st, errmsg);
        bs_pd_state_destroy(st);
    }
    if (rc != 0)
        return rc;
    uint8_t one = 1;
    rc = bs_eng_db_meta_put(n->db, "bootstrapped", &one, 1);
    if (rc != 0)
        seterr(errmsg, "bootstrap: writing the marker: %s", bs_strerror(rc));
    bs_log(BS_LOG_INFO, MOD,
           "bootstrapped cluster=%016" PRIx64 " nodes=%zu "
           "shards=%u",
           boot.u.bootstrap.cluster_id, n->o.n_initial, n->o.initial_shards);
    return rc;
}

/* ------------------------------------------------------------- joining */

static int meta_u64(struct bs_eng_db *db, const char *key, uint64_t *v)
{
    void *val = NULL;
    size_t len = 0;
    int rc = bs_eng_db_meta_get(db, key, &val, &len);
    if (rc != 0)
        return rc;
    *v = 0;
    if (len != 8) {
        free(val);
        return BS_ECORRUPT;
    }
    for (int i = 0; i < 8; i++)
        *v |= (uint64_t)((uint8_t *)val)[i] << (8 * i);
    free(val);
    return 0;
}

static int meta_put_u64(struct bs_eng_db *db, const char *key, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return bs_eng_db_meta_put(db, key, b, 8);
}

/*
 * --join: asks any of the given nodes (Admin.Join, answered by the
 * placement leader) for an id, or, for a node that joined before, renews
 * its addresses and learns the cluster's nodes. The join token is random
 * and written to the data directory before the first attempt, so a join
 * retried after a crash or a lost answer gets the same id back instead of
 * creating a second node. The nodes answered become the candidates this
 * node fetches placement's state from (n->o.initial; nothing bootstraps
 * from them). Retries for up to 30 s: the cluster may be electing.
 */
static int join_cluster(struct bs_node *n, char *errmsg)
{
    uint64_t stored = 0;
    int rc = meta_u64(n->db, "node_id", &stored);
    if (rc != 0 && rc != BS_ENOTFOUND) {
        seterr(errmsg, "%s: reading the node id: %s", n->db_dir,
               bs_strerror(rc));
        return rc;
    }
    if (stored && n->o.node_id && stored != n->o.node_id)
        return 0; /* check_identity refuses it, naming both */
    if (stored)
        n->o.node_id = stored;
    uint64_t token = 0;
    rc = meta_u64(n->db, "join_token", &token);
    if (rc == BS_ENOTFOUND) {
        while (token == 0)
            if (getrandom(&token, sizeof(token), 0) != sizeof(token))
                token = bs_node__now() ^ (uint64_t)getpid() << 32;
        rc = meta_put_u64(n->db, "join_token", token);
    }
    if (rc != 0) {
        seterr(errmsg, "%s: the join token: %s", n->db_dir, bs_strerror(rc));
        return rc;
    }
    struct bs_adm_join req;
    memset(&req, 0, sizeof(req));
    req.node_id = n->o.node_id;
    req.join_token = token;
    snprintf(req.client_addr, sizeof(req.client_addr), "%s", n->o.client_addr);
    snprintf(req.peer_addr, sizeof(req.peer_addr), "%s", n->o.peer_addr);
    snprintf(req.http_addr, sizeof(req.http_addr), "%s", n->o.http_addr);
    for (size_t i = 0; i < n->o.n_labels && i < BS_ADM_MAX_LABELS; i++) {
        snprintf(req.labels[i].key, sizeof(req.labels[i].key), "%s",
                 n->o.label_keys[i]);
        snprintf(req.labels[i].value, sizeof(req.labels[i].value), "%s",
                 n->o.label_values[i]);
        req.n_labels++;
    }
    char eps[BS_NODE_MAX_JOIN * (BS_NODE_ADDR_MAX + 1)] = "";
    for (size_t i = 0; i < n->o.n_join; i++) {
        strcat(eps, i ? "," : "");
        strcat(eps, n->o.join[i]);
    }
    uint8_t *body = NULL;
    size_t blen = 0;
    char em[BS_RPC_ERRMSG_LEN] = "";
    rc = bs_adm_join_req_encode(&req, &body, &blen, em);
    struct bs_rpc_conn *conn = NULL;
    if (rc == 0)
        rc = bs_rpc_conn_open(eps, &conn, em);
    struct bs_adm_join resp;
    memset(&resp, 0, sizeof(resp));
    uint64_t until = bs_node__now() + 30000;
    while (rc == 0) {
        uint8_t *out = NULL;
        size_t olen = 0;
        rc = bs_rpc_conn_call(conn, BS_ADM_METHOD_JOIN, body, blen, 5000, &out,
                              &olen, NULL, em);
        if (rc == 0) {
            rc = bs_adm_join_resp_decode(out, olen, &resp, em);
            free(out);
            break;
        }
        if (rc == BS_EEXIST || rc == BS_EINVAL || bs_node__now() >= until)
            break;
        bs_log(BS_LOG_INFO, MOD, "join: %s; retrying",
               em[0] ? em : bs_strerror(rc));
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    bs_rpc_conn_close(conn);
    free(body);
    if (rc != 0) {
        seterr(errmsg, "--join %s: %s", eps, em[0] ? em : bs_strerror(rc));
        return rc;
    }
    n->o.node_id = resp.node_id;
    n->o.n_initial = 0;
    for (size_t i = 0; i < resp.n_nodes && n->o.n_initial < BS_NODE_MAX_INITIAL;
         i++) {
        const struct bs_adm_node *an = &resp.nodes[i];
        if (an->id == resp.node_id || !an->peer_addr[0] ||
            !strcmp(an->state, "removed"))
            continue;
        struct bs_node_member *m = &n->o.initial[n->o.n_initial++];
        m->id = an->id;
        snprintf(m->peer_addr, sizeof(m->peer_addr), "%s", an->peer_addr);
    }
    bs_log(BS_LOG_INFO, MOD,
           "joined cluster=%016" PRIx64 " as node=%" PRIu64 " nodes=%zu",
           resp.cluster_id, resp.node_id, resp.n_nodes);
    bs_adm_join_free(&resp);
    n->joined = true;
    return 0;
}

/* Checks or records which node this data directory belongs to. */
static int check_identity(struct bs_node *n, bool *fresh, char *errmsg)
{
    uint64_t id = 0;
    int rc = meta_u64(n->db, "node_id", &id);
    if (rc == BS_ENOTFOUND) {
        rc = meta_put_u64(n->db, "node_id", n->o.node_id);
        if (rc != 0) {
            seterr(errmsg, "%s: writing the node id: %s", n->db_dir,
                   bs_strerror(rc));
            return rc;
        }
        *fresh = true;
        return 0;
    }
    if (rc == BS_ECORRUPT) {
        seterr(errmsg, "%s: the node id record is damaged", n->db_dir);
        return rc;
    }
    if (rc != 0) {
        seterr(errmsg, "%s: reading the node id: %s", n->db_dir,
               bs_strerror(rc));
        return rc;
    }
    if (id != n->o.node_id) {
        seterr(errmsg, "%s belongs to node %" PRIu64 ", not --id %" PRIu64,
               n->o.data_dir, id, n->o.node_id);
        return BS_EEXIST;
    }
    size_t len = 0;
    void *mk = NULL;
    *fresh =
        bs_eng_db_meta_get(n->db, "bootstrapped", &mk, &len) == BS_ENOTFOUND;
    free(mk);
    return 0;
}

static int mkdir_p(const char *dir)
{
    char tmp[BS_NODE_PATH_MAX + 64];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Removes half-received snapshot images left by a previous run. */
static void clean_snap_dir(const char *dir)
{
    char cmd[BS_NODE_PATH_MAX + 128];
    /* Paths are ours (data_dir/snap/...): no shell metacharacters are
     * possible except in data_dir itself, hence the quoting check. */
    if (strchr(dir, '\'') != NULL)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'/* 2>/dev/null", dir);
    (void)!system(cmd);
}

/* ------------------------------------------------------- start and stop */

static void node_free(struct bs_node *n)
{
    if (!n)
        return;
    bs_pd_state_destroy(n->pd_copy);
    bs_node__pd_svc_free(n);
    bs_node__mover_free(n);
    free(n->q);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
}

static bool http_ready(void *ctx)
{
    struct bs_node *n = ctx;
    return bs_node_ready(n);
}

int bs_node_start(const struct bs_node_opts *o, struct bs_node **out,
                  char *errmsg)
{
    *out = NULL;
    int rc = bs_node_opts_check(o, errmsg);
    if (rc != 0)
        return rc;
    struct bs_node *n = calloc(1, sizeof(*n));
    if (!n)
        return BS_ENOMEM;
    n->o = *o;
    n->start_ms = bs_node__now();
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    if (bs_node__pd_svc_init(n) != 0) {
        node_free(n);
        return BS_ENOMEM;
    }
    bs_shard_limits_default(&n->limits);
    bs_rpc_limits_default(&n->rpc_limits);
    snprintf(n->db_dir, sizeof(n->db_dir), "%s/db", o->data_dir);
    snprintf(n->snap_dir, sizeof(n->snap_dir), "%s/snap", o->data_dir);
    if (mkdir_p(o->data_dir) != 0 || mkdir_p(n->snap_dir) != 0) {
        seterr(errmsg, "--data-dir %s: %s", o->data_dir, strerror(errno));
        node_free(n);
        return BS_EIO;
    }
    clean_snap_dir(n->snap_dir);

    char em[256] = "";
    struct bs_eng_db_options dbo;
    bs_eng_db_options_default(&dbo);
    rc = bs_eng_db_open(n->db_dir, &dbo, &n->db, em);
    if (rc != 0) {
        seterr(errmsg, "opening %s: %s", n->db_dir, em);
        node_free(n);
        return rc;
    }
    if (o->n_join > 0) {
        rc = join_cluster(n, errmsg);
        if (rc != 0)
            goto err_db;
        o = &n->o; /* the id and peers the cluster gave */
    }
    bool fresh = false;
    rc = check_identity(n, &fresh, errmsg);
    if (rc != 0)
        goto err_db;

    /* Transport first: the store's config needs it. */
    rc = bs_rpc_client_create(1, &n->rpc_client);
    if (rc != 0) {
        seterr(errmsg, "starting the gRPC client: %s", bs_strerror(rc));
        goto err_db;
    }
    struct bs_peer_net_opts po;
    bs_peer_net_opts_init(&po);
    po.node_id = o->node_id;
    po.snap_dir = n->snap_dir;
    po.client = n->rpc_client;
    po.deliver = on_deliver;
    po.ctx = n;
    /* A restarted peer should hear from us within a second, not after a
     * backoff grown long while it was down. */
    po.channel.backoff_max_ms = 1000;
    rc = bs_peer_net_create(&po, &n->net, em);
    if (rc != 0) {
        seterr(errmsg, "peer transport: %s", em);
        goto err_client;
    }
    bs_peer_net_set_snapshot_rate(n->net, o->snapshot_rate);
    for (size_t i = 0; i < o->n_initial; i++)
        if (o->initial[i].id != o->node_id)
            (void)bs_peer_net_set_addr(n->net, o->initial[i].id,
                                       o->initial[i].peer_addr);

    struct bs_eng_store_config sc;
    bs_eng_store_config_default(&sc);
    sc.node_id = o->node_id;
    sc.db = n->db;
    sc.snap_dir = n->snap_dir;
    bs_peer_net_transport(n->net, &sc.transport);
    bs_pd_node_sm_factory(&sc.sm_factory, &n->limits);
    sc.seed = o->node_id * 0x9e3779b97f4a7c15ull ^ n->start_ms;
    sc.election_tick = o->election_ticks;
    sc.heartbeat_tick = 1;
    sc.tick_ms = o->tick_ms;
    sc.hibernate_ticks = 2 * o->election_ticks;
    sc.log_max_entries = o->log_max_entries;
    sc.request_timeout_ms = BS_NODE_REQUEST_BUDGET_MS;
    sc.read_only_option =
        o->lease_reads ? BS_RAFT_READ_LEASE_BASED : BS_RAFT_READ_SAFE;
    rc = bs_eng_store_open(&sc, &n->store, em);
    if (rc != 0) {
        seterr(errmsg, "opening the store: %s", em);
        goto err_net;
    }
    /* Servers: peer port (Raft, forwarded requests), client port. */
    struct bs_rpc_server_opts so;
    bs_rpc_server_opts_init(&so);
    so.addr = o->peer_addr;
    so.nthreads = 1;
    so.max_recv_bytes = (int64_t)n->rpc_limits.max_message;
    rc = bs_rpc_server_create(&so, &n->peer_srv, em);
    if (rc == 0)
        rc = bs_peer_net_register(n->net, n->peer_srv);
    bs_rpc_server_opts_init(&so);
    so.addr = o->client_addr;
    so.nthreads = 2;
    so.max_recv_bytes = (int64_t)n->rpc_limits.max_message;
    if (rc == 0)
        rc = bs_rpc_server_create(&so, &n->client_srv, em);
    if (rc == 0)
        rc = bs_node__kv_register(n);
    if (rc == 0)
        rc = bs_node__admin_register(n);
    if (rc == 0)
        rc = bs_node__pd_svc_register(n);
    if (rc != 0) {
        seterr(errmsg, "creating the servers: %s",
               em[0] ? em : bs_strerror(rc));
        goto err_srv;
    }
    /* Bind both ports before anything is written: a port in use must not
     * leave a data directory bootstrapped by a node that never ran. */
    rc = bs_rpc_server_start(n->peer_srv);
    if (rc != 0) {
        seterr(errmsg, "--peer-addr %s: %s", o->peer_addr,
               bs_rpc_server_errmsg(n->peer_srv));
        goto err_unstarted;
    }
    rc = bs_rpc_server_start(n->client_srv);
    if (rc != 0) {
        seterr(errmsg, "--client-addr %s: %s", o->client_addr,
               bs_rpc_server_errmsg(n->client_srv));
        goto err_unstarted;
    }
    if (fresh && n->joined) {
        /* Nothing to create: replicas come from placement's moves. */
        uint8_t one = 1;
        rc = bs_eng_db_meta_put(n->db, "bootstrapped", &one, 1);
        if (rc != 0) {
            seterr(errmsg, "join: writing the marker: %s", bs_strerror(rc));
            goto err_unstarted;
        }
    } else if (fresh) {
        rc = bootstrap(n, errmsg);
        if (rc != 0)
            goto err_unstarted;
    } else {
        bs_log(BS_LOG_INFO, MOD, "recovered node=%" PRIu64 " groups=%zu",
               o->node_id, bs_eng_store_groups(n->store, NULL, 0));
    }
    const struct bs_pd_state *pd = bs_node__pd(n);
    if (pd && bs_pd_bootstrapped(pd)) {
        n->cluster_id = bs_pd_cluster_id(pd);
        bs_peer_net_set_cluster_id(n->net, n->cluster_id);
        for (size_t i = 0; i < bs_pd_node_count(pd); i++) {
            const struct bs_pd_node *pn = bs_pd_node_at(pd, i);
            if (pn->info.id != o->node_id && pn->info.peer_addr[0])
                (void)bs_peer_net_set_addr(n->net, pn->info.id,
                                           pn->info.peer_addr);
        }
    }

    if (pthread_create(&n->loop, NULL, loop_main, n) != 0) {
        rc = BS_EIO;
        seterr(errmsg, "starting the loop thread failed");
        goto err_unstarted;
    }
    n->loop_started = true;
    (void)pthread_setname_np(n->loop, "bs-loop");
    if (o->http_addr[0]) {
        static const struct bs_http_ops hops_tmpl = {
            .metrics = bs_node__metrics,
            .status = bs_node__status_json,
            .ready = http_ready,
        };
        struct bs_http_ops *hops = malloc(sizeof(*hops));
        if (!hops) {
            rc = BS_ENOMEM;
            goto err_loop;
        }
        *hops = hops_tmpl;
        hops->ctx = n;
        n->hops_ = hops;
        rc = bs_http_start(o->http_addr, hops, &n->http, em);
        if (rc != 0) {
            seterr(errmsg, "--http-addr %s: %s", o->http_addr, em);
            goto err_loop;
        }
    }
    bs_log(BS_LOG_INFO, MOD,
           "serving node=%" PRIu64 " client=%s peer=%s "
           "http=%s",
           o->node_id, o->client_addr, o->peer_addr,
           o->http_addr[0] ? o->http_addr : "-");
    *out = n;
    return 0;

err_loop:
    pthread_mutex_lock(&n->mu);
    n->quit = true;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->loop, NULL);
err_unstarted:
    /* Calls that arrived before the loop existed wait in the mailbox:
     * answer them. */
    if (n->client_srv)
        bs_rpc_server_shutdown(n->client_srv);
    if (n->peer_srv)
        bs_rpc_server_shutdown(n->peer_srv);
    pthread_mutex_lock(&n->mu);
    n->loop_stopped = true;
    struct bs_node_task *q = n->q;
    size_t qn = n->q_n;
    n->q = NULL;
    n->q_n = n->q_cap = 0;
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; i < qn; i++)
        q[i].run(q[i].ctx, true);
    free(q);
err_srv:
    if (n->client_srv)
        bs_rpc_server_shutdown(n->client_srv);
    if (n->peer_srv)
        bs_rpc_server_shutdown(n->peer_srv);
    bs_eng_store_close(n->store);
err_net:
    bs_peer_net_destroy(n->net);
    bs_node__kv_free(n);
    bs_rpc_server_destroy(n->client_srv);
    bs_rpc_server_destroy(n->peer_srv);
err_client:
    bs_rpc_client_destroy(n->rpc_client);
err_db:
    bs_eng_db_close(n->db);
    free(n->hops_);
    free(n->kv_methods_);
    free(n->admin_methods_);
    node_free(n);
    return rc;
}

/* Stop, step 1 (loop thread): hand every leadership held here to the
 * most caught-up voter of the group. */
struct handoff {
    struct bs_node *n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    size_t leading; /* shards still led here */
};

static void task_handoff(void *ctx, bool cancelled)
{
    struct handoff *h = ctx;
    size_t leading = 0;
    if (!cancelled) {
        struct bs_node *n = h->n;
        uint64_t ids[1024];
        size_t ng = bs_eng_store_groups(n->store, ids, 1024);
        for (size_t i = 0; i < ng && i < 1024; i++) {
            struct bs_eng_group_info gi;
            if (bs_eng_store_group(n->store, ids[i], &gi) != 0 ||
                gi.role != BS_RAFT_LEADER)
                continue;
            uint64_t to = 0;
            for (uint32_t v = 0; v < gi.conf.n_voters; v++)
                if (gi.conf.voters[v] != gi.replica_id &&
                    bs_node__alive(n, BS_ENG_REPLICA_NODE(gi.conf.voters[v])))
                    to = gi.conf.voters[v];
            if (to == 0)
                continue; /* nobody to hand to: a one-replica group */
            leading++;
            (void)bs_eng_store_transfer_leader(n->store, ids[i], to);
        }
    }
    pthread_mutex_lock(&h->mu);
    h->leading = leading;
    h->done = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static size_t handoff_round(struct bs_node *n)
{
    struct handoff h = {.n = n};
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    if (bs_node__post(n, task_handoff, &h) != 0)
        return 0;
    pthread_mutex_lock(&h.mu);
    while (!h.done)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    pthread_mutex_destroy(&h.mu);
    pthread_cond_destroy(&h.cv);
    return h.leading;
}

void bs_node_stop(struct bs_node *n)
{
    if (!n)
        return;
    atomic_store(&n->stopping, true);
    bs_log(BS_LOG_INFO, MOD, "stopping node=%" PRIu64, n->o.node_id);
    /* Hand leaderships away (bounded: 3 s), so that clients of the other
     * nodes see no gap longer than a transfer. */
    uint64_t until = bs_node__now() + 3000;
    while (atomic_load(&n->fatal) == 0 && bs_node__now() < until) {
        if (handoff_round(n) == 0)
            break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    bs_http_stop(n->http);
    bs_rpc_server_shutdown(n->client_srv);
    bs_rpc_server_shutdown(n->peer_srv);
    pthread_mutex_lock(&n->mu);
    n->quit = true;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->loop, NULL);
    n->loop_gone = true; /* no op may wait for a retry from now on */
    /* Pending proposals and reads are answered (BS_ESTOPPED) here; a read
     * that would wait to be retried is answered UNAVAILABLE instead. */
    bs_eng_store_close(n->store);
    bs_node__kv_fail_waiting(n);
    bs_peer_net_destroy(n->net);
    bs_node__kv_free(n); /* forwards in flight: their clients answered */
    bs_rpc_server_destroy(n->client_srv);
    bs_rpc_server_destroy(n->peer_srv);
    bs_rpc_client_destroy(n->rpc_client);
    bs_eng_db_close(n->db);
    bs_log(BS_LOG_INFO, MOD, "stopped node=%" PRIu64, n->o.node_id);
    free(n->hops_);
    free(n->kv_methods_);
    free(n->admin_methods_);
    node_free(n);
}

int bs_node_client_port(const struct bs_node *n)
{
    return n->client_srv ? bs_rpc_server_port(n->client_srv) : 0;
}

int bs_node_peer_port(const struct bs_node *n)
{
    return n->peer_srv ? bs_rpc_server_port(n->peer_srv) : 0;
}

int bs_node_http_port(const struct bs_node *n)
{
    return n->http ? bs_http_port(n->http) : 0;
}

bool bs_node_ready(struct bs_node *n)
{
    return atomic_load(&n->ready) && !atomic_load(&n->stopping) &&
           atomic_load(&n->fatal) == 0;
}
