/*
 * log.c - structured, one-line-per-event logging (see log.h).
 *
 * The level and the sink are process globals held in atomics so that any
 * thread may log, or change them, without a lock. An event is formatted
 * into a stack buffer first and written with a single fwrite(): stderr is
 * unbuffered, so that is one write(2) per event, and stdio's stream lock
 * keeps lines of concurrent threads whole.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errors.h"

/* -1 until a level is set or read from the environment. */
static _Atomic int g_level = -1;
/* NULL means stderr. */
static _Atomic(FILE *) g_sink = NULL;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *bs_log_level_name(int level)
{
    if (level < BS_LOG_ERROR || level > BS_LOG_DEBUG)
        return "?";
    return level_names[level];
}

int bs_log_parse_level(const char *name)
{
    if (name == NULL)
        return BS_EINVAL;
    for (int l = BS_LOG_ERROR; l <= BS_LOG_DEBUG; l++) {
        if (strcasecmp(name, level_names[l]) == 0)
            return l;
    }
    if (strcasecmp(name, "warning") == 0)
        return BS_LOG_WARN;
    return BS_EINVAL;
}

void bs_log_set_level(int level)
{
    if (level < BS_LOG_ERROR)
        level = BS_LOG_ERROR;
    if (level > BS_LOG_DEBUG)
        level = BS_LOG_DEBUG;
    atomic_store(&g_level, level);
}

/* Level named by BASALT_LOG; *bad receives the value if it is not a level
 * name (the level is then info), NULL otherwise. */
static int env_level(const char **bad)
{
    const char *v = getenv(BS_LOG_ENV);
    int l;

    *bad = NULL;
    if (v == NULL || v[0] == '\0')
        return BS_LOG_INFO;
    l = bs_log_parse_level(v);
    if (l < 0) {
        *bad = v;
        return BS_LOG_INFO;
    }
    return l;
}

static void warn_bad_env(const char *bad)
{
    bs_log(BS_LOG_WARN, "log",
           "ignoring unknown level %s=%s (use error|warn|info|debug); "
           "level=info",
           BS_LOG_ENV, bad);
}

int bs_log_init_from_env(void)
{
    const char *bad;
    int l = env_level(&bad);

    atomic_store(&g_level, l);
    if (bad != NULL) {
        warn_bad_env(bad);
        return BS_EINVAL;
    }
    return 0;
}

int bs_log_get_level(void)
{
    int l = atomic_load_explicit(&g_level, memory_order_relaxed);
    int expected = -1;
    const char *bad;

    if (l >= 0)
        return l;
    /* First use: take the level from the environment unless another thread
     * (or bs_log_set_level) got there first; only the winner warns. */
    l = env_level(&bad);
    if (atomic_compare_exchange_strong(&g_level, &expected, l)) {
        if (bad != NULL)
            warn_bad_env(bad);
        return l;
    }
    return expected;
}

bool bs_log_enabled(int level)
{
    return level <= bs_log_get_level();
}

void bs_log_set_sink(FILE *sink)
{
    atomic_store(&g_sink, sink);
}

/* Output buffer: a message may grow 4x when escaped (\xHH). */
struct line {
    char buf[512 + 4 * BS_LOG_MAX_MSG + 32];
    size_t len;
    bool full;      /* a piece did not fit: the rest is dropped */
    bool truncated; /* the message was cut (by vsnprintf or here) */
};

/* Appends n bytes, or nothing (and marks the line truncated) if they do not
 * fit before the 32-byte tail reserve: an escape sequence is never cut. */
static void put_raw(struct line *ln, const char *s, size_t n)
{
    size_t room = sizeof(ln->buf) - 32 - ln->len;

    if (ln->full || n > room) {
        /* Once full, stay full: a later, shorter piece must not land
         * after a gap. */
        ln->full = true;
        ln->truncated = true;
        return;
    }
    memcpy(ln->buf + ln->len, s, n);
    ln->len += n;
}

static void put_str(struct line *ln, const char *s)
{
    put_raw(ln, s, strlen(s));
}

static bool needs_quotes(const char *s)
{
    if (s[0] == '\0')
        return true;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

/* Appends s as a logfmt value: bare if it is a plain token (or quote is
 * false and it needs none), quoted and escaped otherwise. */
static void put_value(struct line *ln, const char *s, bool quote)
{
    static const char hex[] = "0123456789abcdef";

    if (!quote && !needs_quotes(s)) {
        put_str(ln, s);
        return;
    }
    put_raw(ln, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[4];
        switch (c) {
        case '"':
            put_raw(ln, "\\\"", 2);
            break;
        case '\\':
            put_raw(ln, "\\\\", 2);
            break;
        case '\n':
            put_raw(ln, "\\n", 2);
            break;
        case '\t':
            put_raw(ln, "\\t", 2);
            break;
        case '\r':
            put_raw(ln, "\\r", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                esc[0] = '\\';
                esc[1] = 'x';
                esc[2] = hex[c >> 4];
                esc[3] = hex[c & 0xf];
                put_raw(ln, esc, 4);
            } else {
                put_raw(ln, (const char *)&c, 1);
            }
        }
    }
    /* The closing quote uses the tail reserve so the value is always
     * terminated, even when cut. */
    ln->buf[ln->len++] = '"';
}

static void put_timestamp(struct line *ln)
{
    struct timespec ts;
    struct tm tm;
    char buf[48];
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    if (n > 0)
        put_raw(ln, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
}

void bs_log(int level, const char *module, const char *fmt, ...)
{
    struct line ln;
    char msg[BS_LOG_MAX_MSG];
    va_list ap;
    int n;
    FILE *sink;
    char mod[BS_LOG_MAX_MODULE + 1];

    if (!bs_log_enabled(level))
        return;
    /* A bounded module name keeps the header within its 512 bytes. */
    snprintf(mod, sizeof(mod), "%s", module != NULL ? module : "-");
    ln.len = 0;
    ln.full = false;
    ln.truncated = false;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg[0] = '\0';
        ln.truncated = true;
    } else if ((size_t)n >= sizeof(msg)) {
        ln.truncated = true;
    }

    put_str(&ln, "ts=");
    put_timestamp(&ln);
    put_str(&ln, " level=");
    put_str(&ln, bs_log_level_name(level));
    put_str(&ln, " module=");
    put_value(&ln, mod, false);
    put_str(&ln, " msg=");
    put_value(&ln, msg, true);
    /* The 32-byte reserve always leaves room for this tail. */
    if (ln.truncated) {
        memcpy(ln.buf + ln.len, " truncated=1", 12);
        ln.len += 12;
    }
    ln.buf[ln.len++] = '\n';

    sink = atomic_load(&g_sink);
    if (sink == NULL)
        sink = stderr;
    (void)fwrite(ln.buf, 1, ln.len, sink);
}
