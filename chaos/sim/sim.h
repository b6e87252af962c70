/*
 * sim.h - the deterministic simulator of the Raft core (chaos/sim).
 *
 * The simulator runs 3 to 7 (and, after membership changes, more) replicas
 * of engine/raft in one process, on a virtual clock, over a virtual network
 * that drops, duplicates, delays, reorders and partitions messages. It
 * crashes and restarts replicas (keeping only what they persisted), changes
 * the membership, transfers leadership, takes snapshots and compacts logs,
 * and drives a client workload of writes and linearizable reads over a few
 * registers. After every step it checks the safety properties of Raft
 * (thesis figure 3.2: election safety, log matching, leader completeness,
 * state machine safety) and, at the end of a run, that the client history is
 * linearizable and that the cluster recovers once the faults heal.
 *
 * Everything is a function of the run seed: one PRNG (bs_sim_rng) drives all
 * choices, nodes are visited in id order, and no clock or hash order is ever
 * consulted, so `bs_sim --seed S` replays a run exactly.
 *
 * The binary (main.c) offers soak, replay, demo and self-test modes on top of
 * bs_sim_run(); this header is also used by the simulator's own unit test of
 * the linearizability checker.
 */
#ifndef BS_CHAOS_SIM_H
#define BS_CHAOS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------ PRNG */

/* xoshiro256** seeded through splitmix64. Zero-initialize, then seed. */
struct bs_sim_rng {
    uint64_t s[4];
};

void bs_sim_rng_seed(struct bs_sim_rng *g, uint64_t seed);
uint64_t bs_sim_rng_next(struct bs_sim_rng *g);
/* Uniform in [0, n); n == 0 returns 0. */
uint64_t bs_sim_rng_below(struct bs_sim_rng *g, uint64_t n);
/* Uniform in [lo, hi] (hi >= lo). */
uint64_t bs_sim_rng_range(struct bs_sim_rng *g, uint64_t lo, uint64_t hi);
/* True with probability ppm / 1e6. */
bool bs_sim_rng_chance(struct bs_sim_rng *g, uint32_t ppm);

/* ------------------------------------------------- linearizability check */

enum bs_sim_op_kind {
    BS_SIM_OP_WRITE = 0,
    BS_SIM_OP_READ = 1,
};

/* "Never returned": the response time of an indeterminate write. */
#define BS_SIM_T_INF UINT64_MAX

/*
 * One operation on one register. Times are event sequence numbers: op a
 * precedes op b in real time iff a.ret < b.invoke. A write with ret ==
 * BS_SIM_T_INF is indeterminate: it may take effect at any time after its
 * invocation, or never. Reads always have a response.
 */
struct bs_sim_lin_op {
    uint8_t kind; /* enum bs_sim_op_kind */
    uint64_t value;
    uint64_t invoke;
    uint64_t ret;
};

/*
 * Checks that the history of one register (initial value `initial`) is
 * linearizable, by the Wing-Gong search with Lowe's memoization of
 * (linearized set, register value). Written values should be unique.
 * Returns 1 if linearizable, 0 if not (why, if not NULL, receives a
 * sentence naming the operation that cannot be placed), BS_ETOOBIG if more
 * than `budget` search states were needed (0 = unlimited), or BS_ENOMEM.
 */
int bs_sim_lin_check(const struct bs_sim_lin_op *ops /* borrowed */, size_t n,
                     uint64_t initial, uint64_t budget,
                     char *why /* borrowed, may be NULL */, size_t why_len);

/*
 * The same verdict in polynomial time, valid only when written values are
 * unique (and differ from `initial`): Gibbons and Korach's zones. Returns
 * 1, 0 (with why) or BS_ENOMEM.
 */
int bs_sim_lin_zones(const struct bs_sim_lin_op *ops /* borrowed */, size_t n,
                     uint64_t initial, char *why /* borrowed, may be NULL */,
                     size_t why_len);

/* ------------------------------------------------------------------ runs */

struct bs_sim_options {
    uint64_t seed;
    uint64_t steps;     /* steps of faults and workload before the final heal */
    int nodes;          /* initial voters, 3..7; 0 = drawn from the seed */
    uint32_t faults;    /* BS_RAFT_FAULT_* set in every node (self-test) */
    bool trace;         /* print every event to out */
    bool trace_msgs;    /* with trace: every message delivered or lost too */
    bool no_core_check; /* skip bs_raft_check() (self-test: the simulator's
                           own checkers must catch the fault) */
    FILE *out;          /* trace and failure output (borrowed); NULL = stdout */
};

/* Totals over one or more runs (bs_sim_run() adds to them). */
struct bs_sim_stats {
    uint64_t seeds;
    uint64_t steps;
    uint64_t elections; /* distinct (term, leader) pairs */
    uint64_t commits;   /* entries committed */
    uint64_t writes;    /* client writes proposed */
    uint64_t writes_acked;
    uint64_t reads_checked; /* completed reads in checked histories */
    uint64_t faults;        /* partitions, crashes, network weather changes */
    uint64_t crashes;
    uint64_t conf_changes; /* configuration changes applied */
    uint64_t transfers;    /* leadership transfers requested */
    uint64_t snapshots;    /* snapshots taken + snapshots installed */
    uint64_t msgs_sent;
    uint64_t msgs_dropped;
    uint64_t msgs_duplicated;
    uint64_t lin_inconclusive; /* histories over the search budget */
};

/* What broke, if anything. */
struct bs_sim_failure {
    bool failed;
    uint64_t seed;
    uint64_t step;
    char invariant[48];
    char detail[512];
};

/* Fills defaults: seed 1, 3000 steps, nodes drawn, no faults, no trace. */
void bs_sim_options_default(struct bs_sim_options *o /* out */);

/*
 * Runs one seed. Adds to *st (borrowed, may be NULL) and fills *f
 * (borrowed). Returns 0 if every check held, 1 if an invariant broke (f
 * says which, at which step), or BS_ENOMEM.
 */
int bs_sim_run(const struct bs_sim_options *o /* borrowed */,
               struct bs_sim_stats *st, struct bs_sim_failure *f);

/*
 * The README's first command: a scripted 5-node run told as a short story
 * (elections, a partition of the leader, a crash and a restart, a
 * membership change, a leadership transfer, reads), followed by the
 * checks. Returns 0, 1 if a check failed (f says which), or BS_ENOMEM.
 */
int bs_sim_demo(FILE *out /* borrowed */, bool trace, struct bs_sim_stats *st,
                struct bs_sim_failure *f);

/* Prints the totals as a small table. */
void bs_sim_stats_print(const struct bs_sim_stats *st /* borrowed */,
                        FILE *out /* borrowed */);

/* Prints "FAIL seed=... step=... invariant: detail" and the replay
 * command. */
void bs_sim_failure_print(const struct bs_sim_failure *f /* borrowed */,
                          const struct bs_sim_options *o /* borrowed */,
                          FILE *out /* borrowed */);

#endif
