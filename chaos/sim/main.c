/*
 * main.c - the bs_sim binary: soak runs over many seeds, exact replay of one
 * seed (with --trace to see every event), the demo, and the self-test that
 * breaks the Raft core on purpose (config.faults) and expects the checkers
 * to notice.
 *
 * Output is a function of the arguments only (no clock is read), so a
 * replay prints exactly what the failing run printed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "sim.h"

#define U(x) ((unsigned long long)(x))

static const struct {
    uint32_t bit;
    const char *name;
} self_faults[] = {
    {BS_RAFT_FAULT_COUNT_LEARNER_VOTE, "COUNT_LEARNER_VOTE"},
    {BS_RAFT_FAULT_COMMIT_OLD_TERM, "COMMIT_OLD_TERM"},
    {BS_RAFT_FAULT_VOTE_ANY_LOG, "VOTE_ANY_LOG"},
    {BS_RAFT_FAULT_STALE_READ, "STALE_READ"},
};
#define N_SELF_FAULTS (sizeof self_faults / sizeof self_faults[0])

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bs_sim [--seeds N] [--start-seed S] [--steps N] "
            "[--nodes K] [--keep-going]\n"
            "       bs_sim --seed S [--steps N] [--nodes K] [--faults MASK] "
            "[--trace]\n"
            "       bs_sim --demo\n"
            "       bs_sim --self-test [--max-seeds N] [--steps N] "
            "[--require MASK]\n"
            "\n"
            "Deterministic simulation of the Basalt Raft core: 3-7 nodes, "
            "a faulty network,\n"
            "crashes, membership changes, snapshots, client writes and "
            "linearizable reads,\n"
            "checked after every step. A failing run prints its seed and "
            "the replay command.\n"
            "\n"
            "  --seeds N        run N seeds (soak; default 100)\n"
            "  --start-seed S   first seed of a soak (default 1)\n"
            "  --seed S         run one seed (replay)\n"
            "  --steps N        steps per seed before the final heal "
            "(default 3000)\n"
            "  --nodes K        initial voters, 3..7 (default: drawn from "
            "the seed)\n"
            "  --faults MASK    break the core on purpose "
            "(BS_RAFT_FAULT_* bits)\n"
            "  --trace          print every event of the run\n"
            "  --trace-msgs     ...and every message delivered or lost\n"
            "  --keep-going     do not stop at the first failing seed\n"
            "  --demo           a narrated 5-node run\n"
            "  --self-test      run each fault and report which checker "
            "catches it;\n"
            "                   fails unless every fault in --require "
            "(default 0xf: all\n"
            "                   four) is caught within --max-seeds (200)\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int self_test(uint64_t start, uint64_t max_seeds, uint64_t steps,
                     uint32_t require)
{
    int bad = 0;
    printf("self-test: each fault breaks one rule of the Raft core; the "
           "simulator must notice\n");
    for (size_t i = 0; i < N_SELF_FAULTS; i++) {
        struct bs_sim_stats st;
        memset(&st, 0, sizeof st);
        bool caught = false;
        uint64_t other = 0;
        for (uint64_t k = 0; k < max_seeds && !caught; k++) {
            struct bs_sim_options o;
            bs_sim_options_default(&o);
            o.seed = start + k;
            o.steps = steps;
            o.faults = self_faults[i].bit;
            o.no_core_check = true;
            struct bs_sim_failure f;
            int rc = bs_sim_run(&o, &st, &f);
            if (rc < 0) {
                fprintf(stderr, "bs_sim: %s\n", bs_strerror(rc));
                return 2;
            }
            if (rc == 0)
                continue;
            if (strcmp(f.invariant, "liveness") == 0 ||
                strcmp(f.invariant, "core-check") == 0) {
                other++;
                continue;
            }
            caught = true;
            printf("  %-19s caught after %3llu seed%s (seed %llu, step "
                   "%llu): %s\n      %s\n",
                   self_faults[i].name, U(k + 1), k ? "s" : " ", U(o.seed),
                   U(f.step), f.invariant, f.detail);
        }
        if (!caught) {
            printf("  %-19s NOT caught in %llu seeds%s\n", self_faults[i].name,
                   U(max_seeds),
                   (require & self_faults[i].bit) ? " (required)" : "");
            if (require & self_faults[i].bit)
                bad = 1;
        }
        if (other)
            printf("      (%llu earlier seeds failed only liveness or the "
                   "core's own check)\n",
                   U(other));
    }
    printf("self-test %s\n", bad ? "FAILED" : "passed");
    return bad;
}

int main(int argc, char **argv)
{
    struct bs_sim_options o;
    bs_sim_options_default(&o);
    uint64_t seeds = 100, start = 1, max_seeds = 200, v;
    uint32_t require = BS_RAFT_FAULT_COUNT_LEARNER_VOTE |
                       BS_RAFT_FAULT_COMMIT_OLD_TERM |
                       BS_RAFT_FAULT_VOTE_ANY_LOG | BS_RAFT_FAULT_STALE_READ;
    bool one = false, demo = false, selftest = false, keep_going = false;
    bool steps_set = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *arg = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--trace") == 0) {
            o.trace = true;
        } else if (strcmp(a, "--trace-msgs") == 0) {
            o.trace = o.trace_msgs = true;
        } else if (strcmp(a, "--demo") == 0) {
            demo = true;
        } else if (strcmp(a, "--self-test") == 0) {
            selftest = true;
        } else if (strcmp(a, "--keep-going") == 0) {
            keep_going = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (parse_u64(arg, &v) != 0) {
            fprintf(stderr, "bs_sim: %s needs a number\n", a);
            usage(stderr);
            return 2;
        } else {
            i++;
            if (strcmp(a, "--seed") == 0) {
                o.seed = v;
                one = true;
            } else if (strcmp(a, "--seeds") == 0) {
                seeds = v;
            } else if (strcmp(a, "--start-seed") == 0) {
                start = v;
            } else if (strcmp(a, "--steps") == 0) {
                o.steps = v;
                steps_set = true;
            } else if (strcmp(a, "--nodes") == 0 && v >= 3 && v <= 7) {
                o.nodes = (int)v;
            } else if (strcmp(a, "--faults") == 0) {
                o.faults = (uint32_t)v;
            } else if (strcmp(a, "--max-seeds") == 0) {
                max_seeds = v;
            } else if (strcmp(a, "--require") == 0) {
                require = (uint32_t)v;
            } else {
                fprintf(stderr, "bs_sim: bad option %s %s\n", a, arg);
                usage(stderr);
                return 2;
            }
        }
    }

    if (demo) {
        struct bs_sim_stats st;
        struct bs_sim_failure f;
        memset(&st, 0, sizeof st);
        int rc = bs_sim_demo(stdout, o.trace, &st, &f);
        if (rc < 0) {
            fprintf(stderr, "bs_sim: %s\n", bs_strerror(rc));
            return 2;
        }
        return rc;
    }
    if (selftest)
        return self_test(start, max_seeds, steps_set ? o.steps : 3000, require);

    struct bs_sim_stats st;
    memset(&st, 0, sizeof st);
    uint64_t failed = 0;
    if (one) {
        seeds = 1;
        start = o.seed;
    }
    for (uint64_t k = 0; k < seeds; k++) {
        o.seed = start + k;
        struct bs_sim_failure f;
        int rc = bs_sim_run(&o, &st, &f);
        if (rc < 0) {
            fprintf(stderr, "bs_sim: seed %llu: %s\n", U(o.seed),
                    bs_strerror(rc));
            return 2;
        }
        if (rc == 1) {
            failed++;
            bs_sim_failure_print(&f, &o, stdout);
            fflush(stdout);
            if (!keep_going)
                break;
        }
    }
    printf("%s: %llu failing seed%s\n", failed ? "FAILED" : "ok", U(failed),
           failed == 1 ? "" : "s");
    bs_sim_stats_print(&st, stdout);
    return failed ? 1 : 0;
}
