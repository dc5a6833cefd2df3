/* 128-bit unsigned helpers: upstream clang's BPF backend has no __int128 libcalls. */
#ifndef ZMART_WIDE_H
#define ZMART_WIDE_H

#include "types.h"

typedef struct {
    u64 hi;
    u64 lo;
} U128;

static void mul_64x64(u64 a, u64 b, U128 *r) {
    u64 a_lo = a & 0xffffffffUL, a_hi = a >> 32;
    u64 b_lo = b & 0xffffffffUL, b_hi = b >> 32;
    u64 ll = a_lo * b_lo;
    u64 lh = a_lo * b_hi;
    u64 hl = a_hi * b_lo;
    u64 hh = a_hi * b_hi;
    u64 mid = (ll >> 32) + (lh & 0xffffffffUL) + (hl & 0xffffffffUL);
    r->lo = (mid << 32) | (ll & 0xffffffffUL);
    r->hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}

static void shr_u128(U128 *r, u64 s) {
    if (s >= 64) {
        r->lo = r->hi >> (s - 64);
        r->hi = 0;
    } else if (s > 0) {
        r->lo = (r->lo >> s) | (r->hi << (64 - s));
        r->hi >>= s;
    }
}

#endif
