/*
 * log.h - structured logging for Basalt's I/O layers (engine, rpc, cli).
 *
 * One event per line, in logfmt, written to stderr (or to a sink set with
 * bs_log_set_sink()):
 *
 *   ts=2025-01-31T12:00:00.123Z level=info module=store msg="started shard=7"
 *
 * ts is UTC with milliseconds; msg is the printf-formatted message, quoted
 * and escaped (\" \\ \n \t, other control bytes as \xHH) so that one event
 * is always one line. Put identifiers in the message as key=value words
 * ("peer unreachable peer=3 addr=10.0.0.2:2380") so that they stay greppable.
 *
 * Levels, from most to least severe: error, warn, info, debug. Events above
 * the current level are discarded before formatting. The level comes from
 * bs_log_set_level(), or else from the environment variable BASALT_LOG
 * (error|warn|info|debug, case-insensitive) read on first use; the default
 * is info.
 *
 * All functions are thread-safe; an event is written with the sink locked,
 * so lines of concurrent threads never interleave. Logging never fails: a
 * message longer than BS_LOG_MAX_MSG bytes is cut and marked truncated=1.
 *
 * engine/raft must never use this: the Raft core does no I/O.
 */
#ifndef BS_ENGINE_LOG_H
#define BS_ENGINE_LOG_H

#include <stdbool.h>
#include <stdio.h>

enum bs_log_level {
    BS_LOG_ERROR = 0,
    BS_LOG_WARN = 1,
    BS_LOG_INFO = 2,
    BS_LOG_DEBUG = 3,
};

/* Longest formatted message kept, in bytes (before escaping). */
#define BS_LOG_MAX_MSG 4096

/* Module names are cut to this many bytes. */
#define BS_LOG_MAX_MODULE 64

/* Name of the environment variable that sets the initial level. */
#define BS_LOG_ENV "BASALT_LOG"

/* Sets the level: events of a less severe level are discarded. A level
 * outside [BS_LOG_ERROR, BS_LOG_DEBUG] is clamped into it. Overrides
 * BASALT_LOG. */
void bs_log_set_level(int level);

/* The current level (reads BASALT_LOG on first use if no level was set). */
int bs_log_get_level(void);

/* Re-reads BASALT_LOG and sets the level from it: info if the variable is
 * unset or empty. Returns 0, or BS_EINVAL if it holds an unknown name (the
 * level is then info and a warning is logged once). */
int bs_log_init_from_env(void);

/* Parses a level name (error|warn|warning|info|debug, case-insensitive).
 * Returns the level (>= 0), or BS_EINVAL for NULL or an unknown name. */
int bs_log_parse_level(const char *name /* borrowed */);

/* Name of a level ("warn"); "?" for an unknown one. Never NULL. */
const char *bs_log_level_name(int level);

/* True if an event at this level would be written: lets callers skip
 * computing expensive arguments. */
bool bs_log_enabled(int level);

/* Redirects events to sink (borrowed: must stay open until another sink is
 * set); NULL restores stderr. Meant for tests and for the CLI. */
void bs_log_set_sink(FILE *sink /* borrowed */);

/* Writes one event if level is enabled. module (borrowed, may be NULL, shown
 * as "-") names the emitting layer: "store", "rpc", "pd", ... fmt is a
 * printf format (borrowed). Never fails; write errors on the sink are
 * ignored. */
void bs_log(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
