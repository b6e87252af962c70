/*
 * main.c - the `basalt` binary's entry point: picks the subcommand named
 * by argv[1] and hands it the remaining arguments (see cli.h). Usage
 * errors exit 2, failures 1.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef BS_VERSION
#define BS_VERSION "unknown"
#endif

static int cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "basalt version: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    printf("basalt %s\n", BS_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *what;
} cmds[] = {
    {"start", bs_cli_start, "run one node in the foreground"},
    {"demo", bs_cli_demo, "run a local cluster of N nodes"},
    {"kv", bs_cli_kv, "put, get, delete and scan keys"},
    {"cluster", bs_cli_cluster,
     "status, nodes, shards, rebalancing (basalt.Admin)"},
    {"bench", bs_cli_bench, "load generator for the etcd KV API"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "this text, or `basalt help CMD`"},
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: basalt <command> [flags]\n\ncommands:\n");
    for (size_t i = 0; i < N_CMDS; i++)
        fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].what);
    fprintf(f, "\n`basalt <command> --help` describes a command's flags.\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 1) {
        for (size_t i = 0; i < N_CMDS; i++) {
            if (strcmp(argv[1], cmds[i].name) == 0 && cmds[i].fn != cmd_help &&
                cmds[i].fn != cmd_version) {
                static char help_flag[] = "--help";
                char *sub[] = {argv[1], help_flag, NULL};

                return cmds[i].fn(2, sub);
            }
        }
        if (strcmp(argv[1], "version") != 0 && strcmp(argv[1], "help") != 0) {
            fprintf(stderr, "basalt help: unknown command '%s'\n", argv[1]);
            return 2;
        }
    }
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv + 1);
    for (size_t i = 0; i < N_CMDS; i++) {
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "basalt: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
