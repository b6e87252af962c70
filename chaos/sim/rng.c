/*
 * rng.c - the simulator's only source of randomness: xoshiro256** (Blackman
 * and Vigna) with its state filled by splitmix64 from the run seed. Every
 * random choice of a run is drawn here, in a fixed order, so that a seed
 * replays exactly.
 */
#include "sim.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void bs_sim_rng_seed(struct bs_sim_rng *g, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix64(&x);
}

uint64_t bs_sim_rng_next(struct bs_sim_rng *g)
{
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t bs_sim_rng_below(struct bs_sim_rng *g, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Rejection sampling keeps the draw exactly uniform. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = bs_sim_rng_next(g);
    } while (x >= limit);
    return x % n;
}

uint64_t bs_sim_rng_range(struct bs_sim_rng *g, uint64_t lo, uint64_t hi)
{
    return lo + bs_sim_rng_below(g, hi - lo + 1);
}

bool bs_sim_rng_chance(struct bs_sim_rng *g, uint32_t ppm)
{
    if (ppm == 0)
        return false;
    return bs_sim_rng_below(g, 1000000) < ppm;
}
