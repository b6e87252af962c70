/*
 * start.c - `basalt start`: runs one node in the foreground.
 *
 * A thin wrapper over rpc/node.h: the options come from flags and an
 * optional YAML file (opts.c), the node runs its own threads, and this
 * thread only waits for SIGTERM or SIGINT, then stops the node cleanly
 * (bs_node_stop hands off leadership and drains) and exits 0.
 *
 * The two signals are blocked before bs_node_start creates any thread, so
 * every thread inherits the mask and sigwait() here is the only place they
 * are delivered: no signal handler runs inside gRPC or RocksDB code.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "node.h"
#include "opts.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: basalt start --id N --data-dir DIR --client-addr HOST:PORT\n"
        "                    --peer-addr HOST:PORT [flags]\n"
        "       basalt start --join HOST:PORT,... --data-dir DIR\n"
        "                    --client-addr HOST:PORT --peer-addr HOST:PORT\n"
        "                    [flags]\n"
        "\n"
        "Runs one Basalt node in the foreground until SIGTERM or SIGINT.\n"
        "A node whose data directory holds no store either bootstraps a new\n"
        "cluster with --initial-cluster (every initial member is started\n"
        "with the same list) or joins a running one with --join (the\n"
        "cluster gives it an id unless --id is given; `basalt cluster\n"
        "add-node` prints the command); a node restarted on its data\n"
        "directory recovers from it and ignores --initial-cluster, --join\n"
        "and --initial-shards.\n"
        "\n"
        "flags:\n"
        "  --id N                   node id, 1 .. 4294967295 (required\n"
        "                           unless --join is given)\n"
        "  --data-dir DIR           where the node keeps its data; created\n"
        "                           if missing (required)\n"
        "  --client-addr HOST:PORT  etcd v3 KV API and basalt.Admin\n"
        "                           (required; port 0 picks a free port)\n"
        "  --peer-addr HOST:PORT    Raft transport between nodes (required)\n"
        "  --http-addr HOST:PORT    /metrics, /health, /ready, /status\n"
        "                           (default: none)\n"
        "  --initial-cluster 1=HOST:PORT,2=HOST:PORT,...\n"
        "                           peer addresses of the initial members,\n"
        "                           this node included (at most %d); needed\n"
        "                           only to bootstrap\n"
        "  --join HOST:PORT,...     client addresses of nodes of a running\n"
        "                           cluster to join (at most %d); not with\n"
        "                           --initial-cluster\n"
        "  --labels K=V,...         labels of this node (at most %d), e.g.\n"
        "                           rack=r1: replicas of a shard are spread\n"
        "                           over distinct racks\n"
        "  --initial-shards N       data shards at bootstrap (default %d)\n"
        "  --tick-ms MS             Raft tick (default %d)\n"
        "  --election-ticks N       election timeout in ticks (default %d)\n"
        "  --log-max-entries N      compact a shard's Raft log beyond N\n"
        "                           entries (default %d)\n"
        "  --lease-reads[=BOOL]     serve linearizable reads by leader lease\n"
        "                           instead of ReadIndex (default false)\n"
        "\n"
        "placement and ISR (give every node the same values; SIZE is bytes\n"
        "or a number with K, M or G: KiB, MiB, GiB):\n"
        "  --heartbeat-ms MS        heartbeat to placement (default 1000)\n"
        "  --down-after-ms MS       a node silent this long is down and its\n"
        "                           replicas are replaced (default 30000)\n"
        "  --max-lag-entries N      a replica further behind is out of the\n"
        "                           ISR (default 10000)\n"
        "  --max-lag-ms MS          so is one not caught up within MS\n"
        "                           (default 10000)\n"
        "  --min-insync-replicas N  writes to a shard are refused while fewer\n"
        "                           replicas are in sync (default: a\n"
        "                           majority)\n"
        "  --max-concurrent-moves N replica moves and splits in flight at\n"
        "                           once (default 3)\n"
        "  --split-size SIZE        split a shard larger than SIZE\n"
        "                           (default 64M)\n"
        "  --split-qps N            split a shard serving more reads and\n"
        "                           writes per second (default 0: never)\n"
        "  --snapshot-rate SIZE     snapshot bytes a node sends per second\n"
        "                           (default 0: unlimited)\n"
        "  --op-timeout-ms MS       cancel a move or split older than MS\n"
        "                           (default 600000)\n"
        "\n"
        "  --config FILE            read the settings above from a YAML\n"
        "                           file (keys: the flag names without\n"
        "                           dashes, e.g. `tick-ms: 50`;\n"
        "                           initial-cluster is a string or a\n"
        "                           mapping `1: 127.0.0.1:2380`, labels a\n"
        "                           string or a mapping `rack: r1`, join a\n"
        "                           string or a list); flags override the\n"
        "                           file\n"
        "  -h, --help               this text\n"
        "\n"
        "Prints one line with the bound ports once the node serves.\n",
        BS_NODE_MAX_INITIAL, BS_NODE_MAX_JOIN, BS_NODE_MAX_LABELS,
        BS_NODE_DEFAULT_INITIAL_SHARDS, BS_NODE_DEFAULT_TICK_MS,
        BS_NODE_DEFAULT_ELECTION_TICKS, BS_NODE_DEFAULT_LOG_MAX);
}

/* addr ("HOST:PORT") with its port replaced by port, into out. */
static void with_port(char *out, size_t size, const char *addr, int port)
{
    const char *colon = strrchr(addr, ':');
    int host_len = colon ? (int)(colon - addr) : (int)strlen(addr);

    snprintf(out, size, "%.*s:%d", host_len, addr, port);
}

int bs_cli_start(int argc, char **argv)
{
    char errmsg[BS_CLI_ERRMSG_SIZE];
    char nerr[BS_NODE_ERRMSG_SIZE] = "";
    char client[300], peer[300], http[300];
    struct bs_node_opts o;
    struct bs_node *node = NULL;
    sigset_t set;
    bool help;
    int rc, sig = 0;

    rc = bs_cli_start_parse(argc, argv, &o, &help, errmsg);
    if (rc != 0) {
        fprintf(stderr, "basalt start: %s\n", errmsg);
        return 2;
    }
    if (help) {
        usage(stdout);
        return 0;
    }

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    rc = bs_node_start(&o, &node, nerr);
    if (rc != 0) {
        fprintf(stderr, "basalt start: %s\n", nerr[0] ? nerr : bs_strerror(rc));
        return 1;
    }
    with_port(client, sizeof(client), o.client_addr, bs_node_client_port(node));
    with_port(peer, sizeof(peer), o.peer_addr, bs_node_peer_port(node));
    if (o.http_addr[0] != '\0')
        with_port(http, sizeof(http), o.http_addr, bs_node_http_port(node));
    else
        snprintf(http, sizeof(http), "none");
    if (o.node_id != 0)
        printf("basalt start: node %llu serving: client %s, peer %s, http "
               "%s\n",
               (unsigned long long)o.node_id, client, peer, http);
    else
        printf("basalt start: node (id given by the cluster) serving: "
               "client %s, peer %s, http %s\n",
               client, peer, http);
    fflush(stdout);

    while (sigwait(&set, &sig) != 0)
        ;
    if (o.node_id != 0)
        fprintf(stderr, "basalt start: node %llu stopping (%s)\n",
                (unsigned long long)o.node_id,
                sig == SIGINT ? "SIGINT" : "SIGTERM");
    else
        fprintf(stderr, "basalt start: node stopping (%s)\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
    bs_node_stop(node);
    return 0;
}
