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

/* r += v; returns false on overflow */
static bool add_u128(U128 *r, const U128 *v) {
    u64 lo = r->lo + v->lo;
    u64 carry = lo < r->lo;
    u64 hi = r->hi + v->hi;
    if (hi < r->hi) return false;
    u64 hi2 = hi + carry;
    if (hi2 < hi) return false;
    r->lo = lo;
    r->hi = hi2;
    return true;
}

static bool lt_u128(const U128 *a, const U128 *b) {
    return a->hi < b->hi || (a->hi == b->hi && a->lo < b->lo);
}

/* r -= v; caller guarantees r >= v */
static void sub_u128(U128 *r, const U128 *v) {
    u64 borrow = r->lo < v->lo;
    r->lo -= v->lo;
    r->hi = r->hi - v->hi - borrow;
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

/* floor(n / d) and remainder; false if d == 0 or the quotient needs more than 64 bits */
static bool div_u128_u64(const U128 *n, u64 d, u64 *q, u64 *rem) {
    if (d == 0 || n->hi >= d) return false;
    u64 r = n->hi, quot = 0;
    for (int i = 63; i >= 0; i--) {
        u64 top = r >> 63;
        r = (r << 1) | ((n->lo >> i) & 1);
        quot <<= 1;
        if (top || r >= d) {
            r -= d;
            quot |= 1;
        }
    }
    *q = quot;
    *rem = r;
    return true;
}

/* floor(a * b / d) (or the ceiling when round_up); false on overflow or d == 0 */
static bool mul_div(u64 a, u64 b, u64 d, bool round_up, u64 *out) {
    U128 p;
    u64 rem;
    mul_64x64(a, b, &p);
    if (!div_u128_u64(&p, d, out, &rem)) return false;
    if (round_up && rem != 0) {
        if (*out == ~0UL) return false;
        *out += 1;
    }
    return true;
}

/* floor(sqrt(n)), bit by bit */
static u64 isqrt_u128(const U128 *n_in) {
    U128 n = *n_in, res = {0, 0}, bit = {1UL << 62, 0};
    while (lt_u128(&n, &bit) && (bit.hi | bit.lo) != 0) shr_u128(&bit, 2);
    while ((bit.hi | bit.lo) != 0) {
        U128 trial = res;
        add_u128(&trial, &bit);
        shr_u128(&res, 1);
        if (!lt_u128(&n, &trial)) {
            sub_u128(&n, &trial);
            add_u128(&res, &bit);
        }
        shr_u128(&bit, 2);
    }
    return res.lo;
}

#endif
