/*
 * Shared by the libFuzzer harnesses: an invariant check that aborts (so
 * libFuzzer reports a crash and keeps the input) and an input reader.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_FUZZ_FUZZ_COMMON_H
#define TESTS_FUZZ_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz: invariant violated: %s (%s:%d)\n", \
                    #cond, __FILE__, __LINE__); \
            abort(); \
        } \
    } while (0)

/* The input, read front to back; zeros once it runs out. */
typedef struct FuzzInput {
    const uint8_t *p;
    size_t left;
} FuzzInput;

static inline uint8_t fuzz_u8(FuzzInput *in)
{
    if (!in->left) {
        return 0;
    }
    in->left--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(FuzzInput *in)
{
    uint16_t lo = fuzz_u8(in);

    return lo | (uint16_t)fuzz_u8(in) << 8;
}

static inline uint32_t fuzz_u32(FuzzInput *in)
{
    uint32_t lo = fuzz_u16(in);

    return lo | (uint32_t)fuzz_u16(in) << 16;
}

#endif
