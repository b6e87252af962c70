/*
 * cli.h - the subcommands of the `basalt` binary, one entry point each.
 * main.c picks one by argv[1] and passes the remaining arguments
 * (argv[0] is the subcommand's name). Each returns the process exit code:
 * 0 on success, 1 on a failure (with a one-line reason on stderr), 2 on a
 * usage error (naming the bad or missing flag).
 */
#ifndef BS_CLI_H
#define BS_CLI_H

int bs_cli_start(int argc, char **argv);   /* start.c */
int bs_cli_demo(int argc, char **argv);    /* demo.c */
int bs_cli_kv(int argc, char **argv);      /* kv.c */
int bs_cli_cluster(int argc, char **argv); /* cluster.c */
int bs_cli_bench(int argc, char **argv);   /* bench.c */

#endif
