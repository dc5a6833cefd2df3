/* zmart_core's 9-decimal fixed point (PROGRAM.md §4.1) and the error numbers the math returns.
 *
 * Pure integer code with no syscalls, so the same file compiles for SBF (the twin program)
 * and natively for the host (lmsr_host.c, which the property test loads with ctypes).
 * Every function returns 0 or a program error number (6000 + ErrorCode index) and writes its
 * result through a pointer; the callers propagate the first error unchanged, as `?` does. */
#ifndef ZMART_FIXED_H
#define ZMART_FIXED_H

#include "types.h"
#include "wide.h"

/* ErrorCode numbers (IDL declaration order from 6000) used by the math and the handlers. */
#define E_INVALID_THRESHOLD 6001
#define E_INVALID_TIME_LIMIT 6002
#define E_INVALID_FEE_STRUCTURE 6004
#define E_INVALID_STATE_TRANSITION 6006
#define E_INVALID_MARKET_STATE 6007
#define E_PROTOCOL_PAUSED 6010
#define E_CANNOT_CANCEL_MARKET 6011
#define E_MARKET_ALREADY_CANCELLED 6012
#define E_INSUFFICIENT_SHARES 6014
#define E_SLIPPAGE_EXCEEDED 6015
#define E_INSUFFICIENT_LIQUIDITY 6016
#define E_INVALID_LIQUIDITY 6017
#define E_TRADE_TOO_SMALL 6018
#define E_DISPUTE_PERIOD_ENDED 6020
#define E_ALREADY_CLAIMED 6022
#define E_NO_WINNINGS 6023
#define E_NO_VOTES_RECORDED 6024
#define E_INSUFFICIENT_VOTES 6025
#define E_DISPUTE_PERIOD_NOT_ENDED 6027
#define E_UNAUTHORIZED 6029
#define E_INVALID_RESOLVER 6031
#define E_OVERFLOW 6033
#define E_UNDERFLOW 6034
#define E_DIVISION_BY_ZERO 6035
#define E_EXPONENT_TOO_LARGE 6039
#define E_INVALID_INPUT 6040
#define E_BOUNDED_LOSS_EXCEEDED 6041
#define E_INVALID_B_PARAMETER 6042
#define E_INVALID_TIMESTAMP 6044
#define E_INSUFFICIENT_FUNDS 6046
#define E_WOULD_BREAK_RENT_EXEMPTION 6047
#define E_INVALID_STATE_FOR_VOTING 6051

#define FP_ONE 1000000000UL /* P = PRECISION */
#define FP_LN_2 693147180UL
#define FP_MAX_EXP 20000000000UL /* 20·P */
#define LMSR_MIN_B 100000000000UL /* 100·P */

/* Propagate a non-zero error number, like Rust's `?`. */
#define TRY(expr)                                                                          \
    do {                                                                                   \
        u64 try_err_ = (expr);                                                             \
        if (try_err_ != 0) return try_err_;                                                \
    } while (0)

static u64 checked_add(u64 a, u64 b, u64 *out) {
    *out = a + b;
    return *out < a ? E_OVERFLOW : 0;
}

static u64 checked_sub(u64 a, u64 b, u64 *out) {
    if (b > a) return E_UNDERFLOW;
    *out = a - b;
    return 0;
}

static u64 checked_mul(u64 a, u64 b, u64 *out) {
    U128 p;
    mul_64x64(a, b, &p);
    if (p.hi != 0) return E_OVERFLOW;
    *out = p.lo;
    return 0;
}

static u64 leading_zeros(u64 v) {
    u64 n = 0;
    if (v >> 32 == 0) { n += 32; v <<= 32; }
    if (v >> 48 == 0) { n += 16; v <<= 16; }
    if (v >> 56 == 0) { n += 8; v <<= 8; }
    if (v >> 60 == 0) { n += 4; v <<= 4; }
    if (v >> 62 == 0) { n += 2; v <<= 2; }
    if (v >> 63 == 0) n += 1;
    return n;
}

/* ⌊(hi·2⁶⁴ + lo) / d⌋ for hi < d, d ≠ 0: schoolbook division in 32-bit digits with a
 * normalised divisor (Knuth's algorithm D for a 4-by-2 digit case). wide.h's bit-by-bit
 * loop costs ~64 rounds; the LMSR makes hundreds of these per buy and has to fit the
 * compute budget, so the twin divides this way (the property test checks it). */
static u64 div_128_by_64(u64 hi, u64 lo, u64 d) {
    const u64 base = 1UL << 32, mask = base - 1;
    if (hi == 0) return lo / d;
    u64 s = leading_zeros(d);
    d <<= s;
    u64 d1 = d >> 32, d0 = d & mask;
    u64 top = s == 0 ? hi : (hi << s) | (lo >> (64 - s));
    u64 low = lo << s;
    u64 l1 = low >> 32, l0 = low & mask;
    u64 q1 = top / d1, rhat = top - q1 * d1;
    while (q1 >= base || q1 * d0 > ((rhat << 32) | l1)) {
        q1 -= 1;
        rhat += d1;
        if (rhat >= base) break;
    }
    u64 mid = (top << 32) + l1 - q1 * d; /* wraps to the true remainder (< d) */
    u64 q0 = mid / d1;
    rhat = mid - q0 * d1;
    while (q0 >= base || q0 * d0 > ((rhat << 32) | l0)) {
        q0 -= 1;
        rhat += d1;
        if (rhat >= base) break;
    }
    return (q1 << 32) + q0;
}

/* floor(a·b / d) formed in 128 bits; a quotient of 2⁶⁴ or more is OverflowError. */
static u64 wide_mul_div(u64 a, u64 b, u64 d, u64 *out) {
    U128 p;
    if (d == 0) return E_DIVISION_BY_ZERO;
    mul_64x64(a, b, &p);
    if (p.hi >= d) return E_OVERFLOW;
    *out = div_128_by_64(p.hi, p.lo, d);
    return 0;
}

/* mulF(a, b) = ⌊a·b / P⌋ */
static u64 fp_mul(u64 a, u64 b, u64 *out) { return wide_mul_div(a, b, FP_ONE, out); }

/* divF(a, b) = ⌊a·P / b⌋; b = 0 is DivisionByZero */
static u64 fp_div(u64 a, u64 b, u64 *out) { return wide_mul_div(a, FP_ONE, b, out); }

#endif
