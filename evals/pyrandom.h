/*
 * pyrandom.h - Python's random.Random, as far as lm-evaluation-harness's few-shot
 * sampler uses it: MT19937 seeded from an integer as Python seeds it
 * (init_by_array over the 32-bit words of |seed|), getrandbits(k) for k <= 32,
 * _randbelow (rejection on getrandbits(n.bit_length())) and random.sample's two
 * algorithms (a shrinking pool for small populations, a set of picks for large
 * ones). Same seed, same draws as CPython 3.11; tests/test_evals.c checks values
 * taken from CPython.
 */
#ifndef EFFBENCH_PYRANDOM_H
#define EFFBENCH_PYRANDOM_H

#include <stdint.h>

typedef struct {
    uint32_t mt[624];
    int      i;                   /* next word of mt to temper; 624: regenerate */
} PyRandom;

/* random.Random(seed) */
void pyrandom_seed(PyRandom *r, uint64_t seed);
/* random.getrandbits(k), 1 <= k <= 32 */
uint32_t pyrandom_getrandbits(PyRandom *r, int k);
/* random._randbelow(n), n >= 1 (below 2^31) */
int pyrandom_randbelow(PyRandom *r, int n);
/* random.sample(range(n), k) into out[k]; -1 when k is not in 0..n */
int pyrandom_sample(PyRandom *r, int n, int k, int *out);

#endif
