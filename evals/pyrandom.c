/*
 * pyrandom.c - see pyrandom.h. MT19937 is Matsumoto and Nishimura's reference
 * generator (mt19937ar.c), as CPython's _randommodule.c carries it; sample() follows
 * Lib/random.py line for line.
 */
#include "pyrandom.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MT_N 624
#define MT_M 397

static void init_genrand(PyRandom *r, uint32_t s) {
    r->mt[0] = s;
    for (int i = 1; i < MT_N; i++) r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->i = MT_N;
}

static void init_by_array(PyRandom *r, const uint32_t *key, int len) {
    init_genrand(r, 19650218u);
    int i = 1, j = 0;
    for (int k = MT_N > len ? MT_N : len; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++; j++;
        if (i >= MT_N) { r->mt[0] = r->mt[MT_N - 1]; i = 1; }
        if (j >= len) j = 0;
    }
    for (int k = MT_N - 1; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) { r->mt[0] = r->mt[MT_N - 1]; i = 1; }
    }
    r->mt[0] = 0x80000000u;
}

void pyrandom_seed(PyRandom *r, uint64_t seed) {
    /* Python: the 32-bit words of |seed|, least significant first; 0 is one word */
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    init_by_array(r, key, key[1] ? 2 : 1);
}

static uint32_t genrand_uint32(PyRandom *r) {
    static const uint32_t mag01[2] = { 0, 0x9908b0dfu };
    if (r->i >= MT_N) {
        int k;
        uint32_t y;
        for (k = 0; k < MT_N - MT_M; k++) {
            y = (r->mt[k] & 0x80000000u) | (r->mt[k + 1] & 0x7fffffffu);
            r->mt[k] = r->mt[k + MT_M] ^ (y >> 1) ^ mag01[y & 1];
        }
        for (; k < MT_N - 1; k++) {
            y = (r->mt[k] & 0x80000000u) | (r->mt[k + 1] & 0x7fffffffu);
            r->mt[k] = r->mt[k + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1];
        }
        y = (r->mt[MT_N - 1] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[MT_N - 1] = r->mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1];
        r->i = 0;
    }
    uint32_t y = r->mt[r->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t pyrandom_getrandbits(PyRandom *r, int k) { return genrand_uint32(r) >> (32 - k); }

int pyrandom_randbelow(PyRandom *r, int n) {
    int k = 0;
    while (k < 31 && (n >> k)) k++;                 /* n.bit_length() */
    uint32_t x = pyrandom_getrandbits(r, k);
    while (x >= (uint32_t)n) x = pyrandom_getrandbits(r, k);
    return (int)x;
}

int pyrandom_sample(PyRandom *r, int n, int k, int *out) {
    if (k < 0 || k > n) return -1;
    double setsize = 21;
    if (k > 5) setsize += pow(4.0, ceil(log(k * 3.0) / log(4.0)));
    if (n <= setsize) {
        int *pool = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
        if (!pool) return -1;
        for (int i = 0; i < n; i++) pool[i] = i;
        for (int i = 0; i < k; i++) {
            int j = pyrandom_randbelow(r, n - i);
            out[i] = pool[j];
            pool[j] = pool[n - i - 1];
        }
        free(pool);
    } else {
        unsigned char *sel = calloc((size_t)n, 1);
        if (!sel) return -1;
        for (int i = 0; i < k; i++) {
            int j = pyrandom_randbelow(r, n);
            while (sel[j]) j = pyrandom_randbelow(r, n);
            sel[j] = 1;
            out[i] = j;
        }
        free(sel);
    }
    return 0;
}
