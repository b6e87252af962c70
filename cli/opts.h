/*
 * opts.h - the option layer of the `basalt` binary: a small flag parser
 * shared by every subcommand, parsers of the values flags take (numbers,
 * booleans, HOST:PORT addresses), the options of `basalt start` from the
 * command line and from a YAML file (libyaml), and the byte-string helpers
 * the clients print keys with.
 *
 * Nothing here touches the network or a node: it is the part of cli/ that
 * the unit tests (tests/unit/cli) check without a cluster, and it is built
 * into its own static library for them.
 *
 * Errors: every function that can fail returns 0 or BS_EINVAL (BS_ENOMEM
 * where it allocates) and writes one sentence into errmsg (a buffer of
 * BS_CLI_ERRMSG_SIZE bytes) that names the flag, or the file, line and key,
 * that is wrong. The callers print it as "basalt <cmd>: <errmsg>" and exit
 * with status 2.
 */
#ifndef BS_CLI_OPTS_H
#define BS_CLI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "node.h"

#define BS_CLI_ERRMSG_SIZE 512

/* ======================================================== flag parser */

/* Whether a flag takes a value. */
enum bs_cli_arg {
    BS_CLI_ARG_NONE = 0, /* --flag */
    BS_CLI_ARG_REQUIRED, /* --flag VALUE or --flag=VALUE */
    BS_CLI_ARG_OPTIONAL, /* --flag, or --flag=VALUE (never the next word) */
};

/* One flag of a subcommand. */
struct bs_cli_flag {
    const char *name; /* the long name without "--": "data-dir" */
    char short_name;  /* 'o' for -o, or 0 */
    uint8_t arg;      /* enum bs_cli_arg */
};

/* What bs_cli_argv_next found, when it is not a flag (an index >= 0). */
#define BS_CLI_POSITIONAL (-1) /* a word that is not a flag */
#define BS_CLI_END        (-2) /* no more words */

#define BS_CLI_MAX_FLAGS 64

/*
 * A walk over argv[1 .. argc) (argv[0] is the subcommand's name). Flags
 * and positional words may be mixed; "--" ends the flags (every later word
 * is positional, e.g. a key that starts with '-'); a lone "-" is
 * positional. A flag given twice is an error.
 */
struct bs_cli_argv {
    int argc;
    char **argv; /* borrowed */
    int next;
    const struct bs_cli_flag *flags; /* borrowed, n_flags <= 64 */
    size_t n_flags;
    uint64_t seen; /* bit i: flags[i] was given */
    bool only_positional;
};

void bs_cli_argv_init(struct bs_cli_argv *a /* out */, int argc,
                      char **argv /* borrowed */,
                      const struct bs_cli_flag *flags /* borrowed */,
                      size_t n_flags);

/*
 * The next word. Sets *which to the index of the flag in flags (and *val
 * to its value, or NULL for a flag given without one), or to
 * BS_CLI_POSITIONAL (*val = the word) or BS_CLI_END. Returns 0, or
 * BS_EINVAL naming the flag: unknown, given twice, missing its value,
 * or given a value it does not take.
 */
int bs_cli_argv_next(struct bs_cli_argv *a, int *which /* out */,
                     const char **val /* out, borrowed from argv */,
                     char *errmsg);

/* ======================================================= value parsers */

/*
 * A decimal integer in [min, max] (no sign, no spaces, no trailing
 * characters). Returns 0 or BS_EINVAL with a sentence (without the flag's
 * name: the caller prefixes it) in reason (BS_CLI_ERRMSG_SIZE bytes).
 */
int bs_cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                      char *reason);

/*
 * A byte count in [min, max]: a decimal integer, optionally followed by
 * K, M or G (either case: KiB, MiB, GiB; "64M" = 67108864). Returns 0 or
 * BS_EINVAL (no digits, another suffix, a fraction, out of range or
 * beyond 64 bits) with the reason, as bs_cli_parse_uint.
 */
int bs_cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                      char *reason);

/* true/false, yes/no, on/off, 1/0 (any case). 0 or BS_EINVAL. */
int bs_cli_parse_bool(const char *s, bool *out, char *reason);

/*
 * Checks "HOST:PORT": a host (a name, an IPv4 address, or an IPv6 address
 * in brackets), a colon and a decimal port 0 .. 65535, at most
 * BS_NODE_ADDR_MAX bytes. 0 or BS_EINVAL.
 */
int bs_cli_check_addr(const char *s, char *reason);

/* ================================================= `basalt start` opts */

/*
 * The flags of `basalt start`, which are also the keys of its YAML file
 * (without the dashes). Exposed for `--help` and the tests.
 */
extern const struct bs_cli_flag bs_cli_start_flags[];
extern const size_t bs_cli_start_n_flags;

/*
 * Parses the arguments of `basalt start` (argv[0] = "start") into *o
 * (bs_node_opts_init'd here): the settings of --config FILE first, then
 * the flags over them, then bs_node_opts_check. --id, --data-dir,
 * --client-addr and --peer-addr are required (from either source), --id
 * only without --join (placement then allocates the id); --initial-cluster
 * is not (a restart recovers the membership from the data directory), and
 * it is refused together with --join (from either source). *help is set,
 * and nothing else is checked, when --help (or -h) is given. Returns 0 or
 * BS_EINVAL (BS_ENOMEM) with errmsg.
 */
int bs_cli_start_parse(int argc, char **argv /* borrowed */,
                       struct bs_node_opts *o /* out */, bool *help /* out */,
                       char *errmsg);

/*
 * Applies the YAML document buf[len] (borrowed) to *o: a mapping whose
 * keys are the flag names of `basalt start` (except config and help) and
 * whose values are scalars, or for initial-cluster either a
 * "1=HOST:PORT,..." string or a mapping from node id to address, for
 * labels a "k=v,..." string or a mapping, for join a "HOST:PORT,..."
 * string or a sequence of addresses. name is
 * the file's name for messages ("FILE:LINE: key: reason"). An unknown,
 * duplicate or badly valued key is BS_EINVAL naming it and its line; so is
 * a document that is not a mapping. An empty document changes nothing.
 * *set (may be NULL) gets bit i for each key set, i its index in
 * bs_cli_start_flags.
 */
int bs_cli_config_parse(const char *name /* borrowed */,
                        const uint8_t *buf /* borrowed */, size_t len,
                        struct bs_node_opts *o, uint64_t *set /* out */,
                        char *errmsg);

/* bs_cli_config_parse on the contents of the file path. BS_EINVAL also
 * when the file cannot be read (naming it and why). */
int bs_cli_config_load(const char *path /* borrowed */, struct bs_node_opts *o,
                       uint64_t *set /* out */, char *errmsg);

/* ===================================================== byte strings */

/*
 * etcd's range end for "every key starting with key[len]" into out (at
 * least len bytes, or 1): key with its trailing 0xff bytes dropped and
 * its last byte then incremented; "\0" (every key >= key) when key is
 * empty or all 0xff. Returns the length written.
 */
size_t bs_cli_prefix_end(const uint8_t *key /* borrowed */, size_t len,
                         uint8_t *out /* out */);

/* Whether b[len] is valid UTF-8 without control characters (so that it
 * prints as itself on one line). The empty string is text. */
bool bs_cli_is_text(const uint8_t *b /* borrowed */, size_t len);

/*
 * b[len] as a NUL-terminated string (malloc'd, caller frees; NULL on
 * BS_ENOMEM): itself when bs_cli_is_text, else "0x" and lowercase hex.
 */
char *bs_cli_bytes_str(const uint8_t *b /* borrowed */, size_t len);

/* Lowercase hex of b[len] (malloc'd, 2 * len + 1 bytes; NULL: no memory). */
char *bs_cli_hex(const uint8_t *b /* borrowed */, size_t len);

#endif
