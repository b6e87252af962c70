/*
 * demo.c - `basalt demo`: a local cluster of N real node processes on
 * 127.0.0.1, for trying Basalt out and for scripts and tests (--check).
 *
 * Each node is this same binary re-executed (/proc/self/exe start ...)
 * with its own data directory DIR/nI and its stdout and stderr in
 * DIR/nI.log. The demo waits until the cluster serves, which it defines
 * as: a put and a get of a key of its own succeed through every node's
 * KV API (the nodes route to the shard leaders, so this exercises
 * placement, routing and replication), then prints how to reach it and
 * waits for Ctrl-C or SIGTERM.
 *
 * Processes and signals:
 *   - SIGINT, SIGTERM and SIGCHLD are blocked before anything else, and
 *     received only by sigtimedwait(); children get an empty mask back
 *     before exec.
 *   - Every child is forked before this process starts gRPC (the
 *     readiness check's connections), so no child inherits gRPC's threads
 *     or locks; after that the demo never forks again.
 *   - Children run in their own process group (Ctrl-C in a terminal
 *     reaches only the demo, which stops them in order: SIGTERM, then
 *     SIGKILL after 10 s) and with PR_SET_PDEATHSIG, so a demo killed
 *     with SIGKILL does not leave nodes running.
 *   - A child that exits while the demo runs is reported with the tail of
 *     its log, the others are stopped, and the demo exits 1.
 *
 * Ports: by default every node gets three ports the kernel reports free
 * (bind to port 0, read the port, close: a small race with other programs
 * that the log would show as "address in use"); with --base-port P, node
 * I uses P + 3(I-1) (client), +1 (peer) and +2 (HTTP), so P = 2379 gives
 * node 1 etcd's usual client port. A demo kept in --dir saves its ports in
 * DIR/ports and reuses them when run again on DIR (see saved_ports).
 */
#define _GNU_SOURCE /* nftw, strsignal */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "codec.h"
#include "opts.h"

#define DEFAULT_NODES    3
#define READY_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS  10000
#define CALL_TIMEOUT_MS  2000
#define POLL_INTERVAL_MS 200
#define LOG_TAIL_LINES   15
#define LOG_TAIL_BYTES   4096

enum {
    F_NODES,
    F_DIR,
    F_BASE_PORT,
    F_INITIAL_SHARDS,
    F_CHECK,
    F_HELP,
    F_N,
};

static const struct bs_cli_flag flags[] = {
    [F_NODES] = {"nodes", 0, BS_CLI_ARG_REQUIRED},
    [F_DIR] = {"dir", 0, BS_CLI_ARG_REQUIRED},
    [F_BASE_PORT] = {"base-port", 0, BS_CLI_ARG_REQUIRED},
    [F_INITIAL_SHARDS] = {"initial-shards", 0, BS_CLI_ARG_REQUIRED},
    [F_CHECK] = {"check", 0, BS_CLI_ARG_NONE},
    [F_HELP] = {"help", 'h', BS_CLI_ARG_NONE},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: basalt demo [--nodes N] [--dir DIR] [--base-port P]\n"
            "                   [--initial-shards N] [--check]\n"
            "\n"
            "Starts a local cluster of N `basalt start` processes on\n"
            "127.0.0.1, waits until a put and a get succeed through every\n"
            "node, prints the client endpoints, then runs until Ctrl-C or\n"
            "SIGTERM and stops the nodes.\n"
            "\n"
            "flags:\n"
            "  --nodes N           nodes, 1 .. %d (default %d)\n"
            "  --dir DIR           data and logs (DIR/nI, DIR/nI.log); kept\n"
            "                      at exit, and a later demo on the same DIR\n"
            "                      restarts the same cluster (default: a new\n"
            "                      directory under /tmp, removed at exit)\n"
            "  --base-port P       node I listens on P+3(I-1) (client),\n"
            "                      +1 (peer), +2 (HTTP) (default: free ports,\n"
            "                      or those of the last demo on --dir)\n"
            "  --initial-shards N  data shards at bootstrap (default %d)\n"
            "  --check             stop as soon as the cluster serves, exit 0\n"
            "  -h, --help          this text\n",
            BS_NODE_MAX_INITIAL, DEFAULT_NODES, BS_NODE_DEFAULT_INITIAL_SHARDS);
}

struct node {
    int id;
    pid_t pid; /* 0 once reaped */
    int status;
    int client_port, peer_port, http_port;
    char data_dir[BS_NODE_PATH_MAX + 1];
    char log[BS_NODE_PATH_MAX + 1];
    char client_addr[64];
    struct bs_rpc_conn *conn;
    bool ready;
    char last_err[BS_RPC_ERRMSG_LEN];
};

struct demo {
    struct node nodes[BS_NODE_MAX_INITIAL];
    int n;
    char dir[BS_NODE_PATH_MAX + 1];
    bool remove_dir;
    sigset_t sigs; /* SIGINT, SIGTERM, SIGCHLD */
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- ports */

/* Asks the kernel for n distinct free ports on 127.0.0.1. */
static int free_ports(int *ports, int n)
{
    int fds[3 * BS_NODE_MAX_INITIAL];
    int rc = 0, i;

    for (i = 0; i < n; i++) {
        struct sockaddr_in sa = {0};
        socklen_t len = sizeof(sa);

        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = 0;
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len)) {
            rc = -errno;
            if (fds[i] >= 0)
                close(fds[i]);
            break;
        }
        ports[i] = ntohs(sa.sin_port);
    }
    while (i-- > 0)
        close(fds[i]);
    return rc;
}

/* ------------------------------------------------------------- children */

static void spawn(struct node *nd, const char *members, const char *shards)
{
    char id[16], client[64], peer[64], http[64];
    char *args[20];
    int k = 0;

    snprintf(id, sizeof(id), "%d", nd->id);
    snprintf(client, sizeof(client), "127.0.0.1:%d", nd->client_port);
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", nd->peer_port);
    snprintf(http, sizeof(http), "127.0.0.1:%d", nd->http_port);
    args[k++] = "basalt";
    args[k++] = "start";
    args[k++] = "--id";
    args[k++] = id;
    args[k++] = "--data-dir";
    args[k++] = nd->data_dir;
    args[k++] = "--client-addr";
    args[k++] = client;
    args[k++] = "--peer-addr";
    args[k++] = peer;
    args[k++] = "--http-addr";
    args[k++] = http;
    args[k++] = "--initial-cluster";
    args[k++] = (char *)members;
    if (shards != NULL) {
        args[k++] = "--initial-shards";
        args[k++] = (char *)shards;
    }
    args[k] = NULL;

    nd->pid = fork();
    if (nd->pid == 0) {
        sigset_t none;
        int fd;

        /* In the child: only async-signal-safe calls until exec. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            dup2(fd, STDIN_FILENO);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv("/proc/self/exe", args);
        (void)!write(STDERR_FILENO, "basalt demo: exec failed\n", 25);
        _exit(127);
    }
}

/* Prints the last lines of nd's log on stderr. */
static void print_tail(const struct node *nd)
{
    char buf[LOG_TAIL_BYTES + 1];
    int fd = open(nd->log, O_RDONLY | O_CLOEXEC), lines = 0;
    ssize_t n;
    off_t size;
    char *p;

    if (fd < 0) {
        fprintf(stderr, "  (no log: %s)\n", strerror(errno));
        return;
    }
    size = lseek(fd, 0, SEEK_END);
    if (size > LOG_TAIL_BYTES)
        lseek(fd, size - LOG_TAIL_BYTES, SEEK_SET);
    else
        lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, LOG_TAIL_BYTES);
    close(fd);
    if (n <= 0) {
        fprintf(stderr, "  (empty log)\n");
        return;
    }
    buf[n] = '\0';
    p = buf + n;
    if (p > buf && p[-1] == '\n')
        p--;
    while (p > buf && lines < LOG_TAIL_LINES) {
        p--;
        if (*p == '\n')
            lines++;
    }
    if (*p == '\n')
        p++;
    fprintf(stderr, "%s%s", p, buf[n - 1] == '\n' ? "" : "\n");
}

static void describe_exit(const struct node *nd, char *out, size_t size)
{
    if (WIFEXITED(nd->status))
        snprintf(out, size, "exited with status %d", WEXITSTATUS(nd->status));
    else if (WIFSIGNALED(nd->status))
        snprintf(out, size, "was killed by signal %d (%s)",
                 WTERMSIG(nd->status), strsignal(WTERMSIG(nd->status)));
    else
        snprintf(out, size, "stopped");
}

/* Reaps exited children; returns the first that had exited, or NULL. */
static struct node *reap(struct demo *d)
{
    struct node *dead = NULL;

    for (int i = 0; i < d->n; i++) {
        struct node *nd = &d->nodes[i];

        if (nd->pid > 0 && waitpid(nd->pid, &nd->status, WNOHANG) > 0) {
            nd->pid = 0;
            if (dead == NULL)
                dead = nd;
        }
    }
    return dead;
}

static void report_dead(const struct node *nd)
{
    char how[128];

    describe_exit(nd, how, sizeof(how));
    fprintf(stderr, "basalt demo: node %d %s; last lines of %s:\n", nd->id, how,
            nd->log);
    print_tail(nd);
}

/* SIGTERM to every child, SIGKILL to those alive after 10 s. */
static void stop_all(struct demo *d)
{
    int64_t deadline = now_ms() + STOP_TIMEOUT_MS;
    bool any;

    for (int i = 0; i < d->n; i++) {
        bs_rpc_conn_close(d->nodes[i].conn);
        d->nodes[i].conn = NULL;
    }
    for (int i = 0; i < d->n; i++) {
        if (d->nodes[i].pid > 0)
            kill(d->nodes[i].pid, SIGTERM);
    }
    for (;;) {
        reap(d);
        any = false;
        for (int i = 0; i < d->n; i++)
            any |= d->nodes[i].pid > 0;
        if (!any)
            return;
        if (now_ms() >= deadline)
            break;
        usleep(50 * 1000);
    }
    for (int i = 0; i < d->n; i++) {
        struct node *nd = &d->nodes[i];

        if (nd->pid > 0) {
            fprintf(stderr,
                    "basalt demo: node %d did not stop within %d s: "
                    "SIGKILL\n",
                    nd->id, STOP_TIMEOUT_MS / 1000);
            kill(nd->pid, SIGKILL);
            waitpid(nd->pid, &nd->status, 0);
            nd->pid = 0;
        }
    }
}

/* ------------------------------------------------------------ readiness */

/* One etcd KV call of cmd on conn; resp is decoded (caller frees). */
static int kv_call(struct bs_rpc_conn *conn, const struct bs_shard_cmd *cmd,
                   struct bs_shard_resp *resp, char *errmsg)
{
    uint8_t *req = NULL, *out = NULL;
    size_t req_len = 0, out_len = 0;
    int rc;

    rc = bs_rpc_kv_req_encode(cmd, &req, &req_len, errmsg);
    if (rc == 0)
        rc = bs_rpc_conn_call(conn, bs_rpc_kv_method(cmd->type), req, req_len,
                              CALL_TIMEOUT_MS, &out, &out_len, NULL, errmsg);
    if (rc == 0)
        rc = bs_rpc_kv_resp_decode(cmd->type, out, out_len, NULL, NULL, resp,
                                   errmsg);
    free(req);
    free(out);
    return rc;
}

/* A put, a get and a delete of the node's own key through nd. */
static int check_node(struct node *nd)
{
    char key[64], val[64];
    struct bs_shard_cmd cmd;
    struct bs_shard_resp resp;
    int rc;

    nd->last_err[0] = '\0';
    if (nd->conn == NULL) {
        rc = bs_rpc_conn_open(nd->client_addr, &nd->conn, nd->last_err);
        if (rc != 0)
            return rc;
    }
    snprintf(key, sizeof(key), "basalt-demo/ready/n%d", nd->id);
    snprintf(val, sizeof(val), "%lld", (long long)now_ms());

    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_SHARD_CMD_PUT;
    cmd.u.put.key = (const uint8_t *)key;
    cmd.u.put.key_len = strlen(key);
    cmd.u.put.value = (const uint8_t *)val;
    cmd.u.put.value_len = strlen(val);
    rc = kv_call(nd->conn, &cmd, &resp, nd->last_err);
    if (rc != 0)
        return rc;
    bs_shard_resp_free(&resp);

    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_SHARD_CMD_RANGE;
    cmd.u.range.key = (const uint8_t *)key;
    cmd.u.range.key_len = strlen(key);
    rc = kv_call(nd->conn, &cmd, &resp, nd->last_err);
    if (rc != 0)
        return rc;
    if (resp.op.n_kvs != 1 || resp.op.kvs[0].value_len != strlen(val) ||
        memcmp(resp.op.kvs[0].value, val, strlen(val)) != 0) {
        snprintf(nd->last_err, sizeof(nd->last_err),
                 "get did not return the value just put");
        rc = BS_EPROTO;
    }
    bs_shard_resp_free(&resp);
    if (rc != 0)
        return rc;

    /* Leave the user's key space as it was. */
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = BS_SHARD_CMD_DELETE_RANGE;
    cmd.u.del.key = (const uint8_t *)key;
    cmd.u.del.key_len = strlen(key);
    rc = kv_call(nd->conn, &cmd, &resp, nd->last_err);
    if (rc == 0)
        bs_shard_resp_free(&resp);
    return rc;
}

/*
 * Waits for a signal of d->sigs for at most ms. Returns 0 (timeout),
 * SIGINT/SIGTERM, or -1 when a child died (reported; *dead set).
 */
static int wait_event(struct demo *d, int64_t ms, struct node **dead)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    int sig = sigtimedwait(&d->sigs, NULL, ms >= 0 ? &ts : NULL);

    if ((*dead = reap(d)) != NULL)
        return -1;
    if (sig == SIGINT || sig == SIGTERM)
        return sig;
    return 0;
}

/* 0 when every node serves; 1 on failure or interruption (reported). */
static int wait_ready(struct demo *d)
{
    int64_t deadline = now_ms() + READY_TIMEOUT_MS;
    struct node *dead;
    int n_ready = 0, ev;

    for (;;) {
        for (int i = 0; i < d->n; i++) {
            struct node *nd = &d->nodes[i];

            if (!nd->ready && check_node(nd) == 0) {
                nd->ready = true;
                n_ready++;
            }
        }
        if (n_ready == d->n)
            return 0;
        ev = wait_event(d, POLL_INTERVAL_MS, &dead);
        if (ev < 0) {
            report_dead(dead);
            return 1;
        }
        if (ev > 0) {
            fprintf(stderr, "basalt demo: interrupted before the cluster "
                            "served\n");
            return 1;
        }
        if (now_ms() >= deadline)
            break;
    }
    fprintf(stderr, "basalt demo: the cluster does not serve after %d s\n",
            READY_TIMEOUT_MS / 1000);
    for (int i = 0; i < d->n; i++) {
        if (!d->nodes[i].ready)
            fprintf(stderr, "  node %d (%s, log %s): %s\n", d->nodes[i].id,
                    d->nodes[i].client_addr, d->nodes[i].log,
                    d->nodes[i].last_err[0] ? d->nodes[i].last_err
                                            : "no answer");
    }
    return 1;
}

/* ------------------------------------------------------------ directory */

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int make_dir(const char *dir, char *errmsg)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(errmsg, BS_CLI_ERRMSG_SIZE, "--dir %.400s: %s", dir,
                 strerror(errno));
        return BS_EIO;
    }
    return 0;
}

/*
 * A demo kept in --dir records its ports in DIR/ports ("CLIENT PEER HTTP"
 * per node), because a restarted node keeps the peer addresses it was
 * bootstrapped with: a later demo on the same DIR must listen on the same
 * ports. Returns 1 (ports filled from the file), 0 (no file) or -1 (the
 * file is for another number of nodes, or unreadable: reported).
 */
static int saved_ports(const struct demo *d, int *ports)
{
    char path[BS_NODE_PATH_MAX + 16];
    int n = 0, p;
    FILE *f;

    if (d->remove_dir)
        return 0;
    snprintf(path, sizeof(path), "%.490s/ports", d->dir);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (n < 3 * BS_NODE_MAX_INITIAL && fscanf(f, "%d", &p) == 1) {
        if (p < 1 || p > 65535)
            break;
        ports[n++] = p;
    }
    fclose(f);
    if (n != 3 * d->n) {
        fprintf(stderr,
                "basalt demo: %s is not for %d nodes (%d ports): a demo "
                "directory restarts the cluster it was created with "
                "(--nodes %d)\n",
                path, d->n, n, n / 3);
        return -1;
    }
    return 1;
}

static void save_ports(const struct demo *d, const int *ports)
{
    char path[BS_NODE_PATH_MAX + 16];
    FILE *f;

    snprintf(path, sizeof(path), "%.490s/ports", d->dir);
    f = fopen(path, "w");
    if (f == NULL)
        return;
    for (int i = 0; i < d->n; i++)
        fprintf(f, "%d %d %d\n", ports[3 * i], ports[3 * i + 1],
                ports[3 * i + 2]);
    fclose(f);
}

/* ----------------------------------------------------------------- main */

static void print_banner(const struct demo *d)
{
    printf("demo: cluster of %d nodes serving (data in %s%s)\n", d->n, d->dir,
           d->remove_dir ? ", removed at exit" : "");
    printf("  endpoints: ");
    for (int i = 0; i < d->n; i++)
        printf("%s%s", i ? "," : "", d->nodes[i].client_addr);
    printf("\n");
    for (int i = 0; i < d->n; i++)
        printf("  node %d: client %s, peer 127.0.0.1:%d, http "
               "127.0.0.1:%d, log %s\n",
               d->nodes[i].id, d->nodes[i].client_addr, d->nodes[i].peer_port,
               d->nodes[i].http_port, d->nodes[i].log);
    printf("  try:   ETCDCTL_API=3 etcdctl --endpoints=");
    for (int i = 0; i < d->n; i++)
        printf("%s%s", i ? "," : "", d->nodes[i].client_addr);
    printf(" put hello world\n");
    /* This binary's path, shortened to one relative to the working
     * directory when it lies below it: a command the user can paste. */
    char self[PATH_MAX] = "basalt", cwd[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 6] = '\0';
    const char *shown = self;
    if (getcwd(cwd, sizeof(cwd)) != NULL) {
        size_t cl = strlen(cwd);
        if (strncmp(self, cwd, cl) == 0 && self[cl] == '/')
            shown = self + cl + 1;
    }
    printf("         %s kv get hello --endpoints=%s\n", shown,
           d->nodes[0].client_addr);
    printf("         %s cluster status --endpoints=%s\n", shown,
           d->nodes[0].client_addr);
    printf("  Ctrl-C stops the cluster.\n");
    fflush(stdout);
}

int bs_cli_demo(int argc, char **argv)
{
    const char *vals[F_N] = {0}, *val;
    char errmsg[BS_CLI_ERRMSG_SIZE], reason[BS_CLI_ERRMSG_SIZE];
    char members[BS_NODE_MAX_INITIAL * 32] = "";
    struct demo *d;
    struct bs_cli_argv a;
    struct node *dead;
    uint64_t n = DEFAULT_NODES, base = 0, shards = 0;
    int ports[3 * BS_NODE_MAX_INITIAL];
    int which, rc, code = 1;
    size_t off = 0;

    bs_cli_argv_init(&a, argc, argv, flags, F_N);
    for (;;) {
        if (bs_cli_argv_next(&a, &which, &val, errmsg) != 0)
            goto usage_err;
        if (which == BS_CLI_END)
            break;
        if (which == BS_CLI_POSITIONAL) {
            snprintf(errmsg, sizeof(errmsg), "unexpected argument '%.64s'",
                     val);
            goto usage_err;
        }
        vals[which] = val ? val : "";
    }
    if (a.seen & (1ULL << F_HELP)) {
        usage(stdout);
        return 0;
    }
    if (vals[F_NODES] &&
        bs_cli_parse_uint(vals[F_NODES], 1, BS_NODE_MAX_INITIAL, &n, reason)) {
        snprintf(errmsg, sizeof(errmsg), "--nodes: %.400s", reason);
        goto usage_err;
    }
    if (vals[F_BASE_PORT] &&
        bs_cli_parse_uint(vals[F_BASE_PORT], 1, 65535 - 3 * n + 1, &base,
                          reason)) {
        snprintf(errmsg, sizeof(errmsg), "--base-port: %.400s", reason);
        goto usage_err;
    }
    if (vals[F_INITIAL_SHARDS] &&
        bs_cli_parse_uint(vals[F_INITIAL_SHARDS], 1, 65536, &shards, reason)) {
        snprintf(errmsg, sizeof(errmsg), "--initial-shards: %.400s", reason);
        goto usage_err;
    }
    if (vals[F_DIR] && (vals[F_DIR][0] == '\0' ||
                        strlen(vals[F_DIR]) > BS_NODE_PATH_MAX - 16)) {
        snprintf(errmsg, sizeof(errmsg), "--dir: empty or too long");
        goto usage_err;
    }

    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        fprintf(stderr, "basalt demo: out of memory\n");
        return 1;
    }
    d->n = (int)n;
    sigemptyset(&d->sigs);
    sigaddset(&d->sigs, SIGINT);
    sigaddset(&d->sigs, SIGTERM);
    sigaddset(&d->sigs, SIGCHLD);
    sigprocmask(SIG_BLOCK, &d->sigs, NULL);

    if (vals[F_DIR]) {
        snprintf(d->dir, sizeof(d->dir), "%s", vals[F_DIR]);
        if (make_dir(d->dir, errmsg) != 0) {
            fprintf(stderr, "basalt demo: %s\n", errmsg);
            goto out;
        }
    } else {
        snprintf(d->dir, sizeof(d->dir), "/tmp/basalt-demo-XXXXXX");
        if (mkdtemp(d->dir) == NULL) {
            fprintf(stderr, "basalt demo: mkdtemp: %s\n", strerror(errno));
            goto out;
        }
        d->remove_dir = true;
    }

    rc = saved_ports(d, ports);
    if (rc < 0)
        goto out;
    if (base != 0) {
        for (int i = 0; i < 3 * d->n; i++)
            ports[i] = (int)base + i;
    } else if (rc == 0) {
        rc = free_ports(ports, 3 * d->n);
        if (rc != 0) {
            fprintf(stderr, "basalt demo: finding free ports: %s\n",
                    strerror(-rc));
            goto out;
        }
    }
    if (!d->remove_dir)
        save_ports(d, ports);
    for (int i = 0; i < d->n; i++) {
        struct node *nd = &d->nodes[i];

        nd->id = i + 1;
        nd->client_port = ports[3 * i];
        nd->peer_port = ports[3 * i + 1];
        nd->http_port = ports[3 * i + 2];
        snprintf(nd->data_dir, sizeof(nd->data_dir), "%.490s/n%d", d->dir,
                 nd->id);
        snprintf(nd->log, sizeof(nd->log), "%.490s/n%d.log", d->dir, nd->id);
        snprintf(nd->client_addr, sizeof(nd->client_addr), "127.0.0.1:%d",
                 nd->client_port);
        off += (size_t)snprintf(members + off, sizeof(members) - off,
                                "%s%d=127.0.0.1:%d", i ? "," : "", nd->id,
                                nd->peer_port);
    }
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < d->n; i++) {
        spawn(&d->nodes[i], members,
              vals[F_INITIAL_SHARDS] ? vals[F_INITIAL_SHARDS] : NULL);
        if (d->nodes[i].pid < 0) {
            fprintf(stderr, "basalt demo: fork: %s\n", strerror(errno));
            d->nodes[i].pid = 0;
            stop_all(d);
            goto out;
        }
    }

    if (wait_ready(d) != 0) {
        stop_all(d);
        goto out;
    }
    if (vals[F_CHECK]) {
        printf("demo: cluster of %d nodes serving\n", d->n);
        fflush(stdout);
        stop_all(d);
        code = 0;
        goto out;
    }
    print_banner(d);
    for (;;) {
        int ev = wait_event(d, -1, &dead);

        if (ev < 0) {
            report_dead(dead);
            stop_all(d);
            goto out;
        }
        if (ev > 0)
            break;
    }
    fprintf(stderr, "basalt demo: stopping %d nodes\n", d->n);
    stop_all(d);
    code = 0;
out:
    if (d->remove_dir && nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS))
        fprintf(stderr, "basalt demo: removing %s: %s\n", d->dir,
                strerror(errno));
    free(d);
    return code;

usage_err:
    fprintf(stderr, "basalt demo: %s\n", errmsg);
    return 2;
}
