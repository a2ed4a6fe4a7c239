/*
 * qpanel.h - the repacking step the panel kernels share (qgemm.c, qgemm_int.c): 16
 * rows' 32-bit words moved so that one vector holds one word of each of the 16 rows.
 * Included only where AVX-512 is compiled in.
 */
#ifndef EFFBENCH_QPANEL_H
#define EFFBENCH_QPANEL_H

#include <immintrin.h>
#include <stdint.h>

/* 16 rows of 32 bytes, row rr at lev + 256 * rr + off (8 words: four int8 levels or two
 * BF16 values each), to the 8 vectors of 16 rows x 4 bytes at out + 128 s, one per word
 * s: an 8 x 8 transpose of 32-bit words in each 256-bit half, rows rr and
 * rr + 8 sharing a vector */
static inline __attribute__((always_inline)) void transpose16(const uint8_t *lev, int off, uint8_t *out) {
    __m512i z[8], u[8], v[8];
    for (int i = 0; i < 8; i++)
        z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(lev + 256 * i + off))),
                                  _mm256_loadu_si256((const __m256i *)(const void *)(lev + 256 * (i + 8) + off)), 1);
    for (int i = 0; i < 8; i += 2) {
        u[i] = _mm512_unpacklo_epi32(z[i], z[i + 1]);
        u[i + 1] = _mm512_unpackhi_epi32(z[i], z[i + 1]);
    }
    for (int i = 0; i < 8; i += 4)
        for (int k = 0; k < 2; k++) {
            v[i + k] = _mm512_unpacklo_epi64(u[i + k], u[i + k + 2]);
            v[i + k + 2] = _mm512_unpackhi_epi64(u[i + k], u[i + k + 2]);
        }
    /* v[k] (v[k + 4]): rows 0-3 (4-7) of two words in 128-bit lanes 0 and 1, rows 8-11
     * (12-15) in lanes 2 and 3; one permute takes a word's four lanes from the pair */
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    static const int word[4] = { 0, 2, 1, 3 };   /* v[k] holds words word[k] and word[k] + 4 */
    for (int k = 0; k < 4; k++) {
        _mm512_store_si512(out + 128 * word[k], _mm512_permutex2var_epi64(v[k], lo, v[k + 4]));
        _mm512_store_si512(out + 128 * (word[k] + 4), _mm512_permutex2var_epi64(v[k], hi, v[k + 4]));
    }
}

#endif
