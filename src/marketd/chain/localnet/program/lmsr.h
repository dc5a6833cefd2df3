/* zmart_core's LMSR pricing, bit for bit (PROGRAM.md §4.2–§4.9).
 *
 * The approximations are reproduced with their quirks on purpose — a Padé (2,2) exp that is
 * not monotonic, a three-term ln whose range reduction jumps at powers of two and returns
 * a positive value below 1, a bisection that stops 10⁶ units short — because the twin must
 * quote exactly what the deployed program quotes. Pure integer code (see fixed.h). */
#ifndef ZMART_LMSR_H
#define ZMART_LMSR_H

#include "fixed.h"

#define BISECTION_TOLERANCE 1000000UL
#define BISECTION_MAX_ROUNDS 50
#define BUY_BUDGET_NUMERATOR 10000UL   /* budget = target_cost·10000/11000: 10 % fees assumed */
#define BUY_BUDGET_DENOMINATOR 11000UL /* whatever the configured bps are */
#define BPS_DENOMINATOR 10000UL
#define MIN_TRADE_AMOUNT 10000UL /* lamports: buy target_cost, sell gross proceeds */

/* E(x): Padé (2,2) of eˣ, x ≤ 20·P */
static u64 lmsr_exp(u64 x, u64 *out) {
    if (x > FP_MAX_EXP) return E_EXPONENT_TOO_LARGE;
    u64 s, n, d;
    TRY(fp_mul(x, x, &s));
    u64 h = x / 2, t = s / 12;
    TRY(checked_add(FP_ONE, h, &n));
    TRY(checked_add(n, t, &n));
    if (h <= FP_ONE) {
        TRY(checked_add(FP_ONE - h, t, &d));
    } else {
        TRY(checked_add(FP_ONE, t, &d));
        if (d < h) { /* 1 − u/2 + u²/12 ≥ 1/4: cannot happen, kept for completeness */
            *out = ~0UL;
            return 0;
        }
        d -= h;
    }
    return fp_div(n, d, out);
}

/* E⁻(x) = divF(P, E(x)) */
static u64 lmsr_exp_neg(u64 x, u64 *out) {
    u64 e;
    TRY(lmsr_exp(x, &e));
    return fp_div(FP_ONE, e, out);
}

/* L(x): range-reduced three-term atanh series; ln of x < 1 comes out positive (a bug of the
 * original, unreachable from the LMSR, where the argument is always in [1, 2]). */
static u64 lmsr_ln(u64 x, u64 *out) {
    if (x == 0) return E_INVALID_INPUT;
    if (x == FP_ONE) {
        *out = 0;
        return 0;
    }
    u64 r = x;
    i64 k = 0;
    while (r >= 2 * FP_ONE) {
        r /= 2;
        k += 1;
    }
    while (r < FP_ONE / 2) {
        r *= 2;
        k -= 1;
    }
    u64 y, y2, y3, y5, v;
    if (r >= FP_ONE) {
        TRY(fp_div(r - FP_ONE, r + FP_ONE, &y));
    } else {
        TRY(fp_div(FP_ONE, r, &v));
        TRY(fp_div(v - FP_ONE, v + FP_ONE, &y));
    }
    TRY(fp_mul(y, y, &y2));
    TRY(fp_mul(y2, y, &y3));
    TRY(fp_mul(y3, y2, &y5));
    u64 s;
    TRY(checked_add(y, y3 / 3, &s));
    TRY(checked_add(s, y5 / 5, &s));
    TRY(checked_mul(s, 2, &s));
    if (k >= 0) {
        u64 kl;
        TRY(checked_mul((u64)k, FP_LN_2, &kl));
        return checked_add(s, kl, out);
    }
    u64 kl;
    TRY(checked_mul((u64)(-k), FP_LN_2, &kl));
    return checked_sub(s, kl, out);
}

/* LSE(x, y) = max(x, y) + L(P + E⁻(|x − y|)) */
static u64 lmsr_log_sum_exp(u64 x, u64 y, u64 *out) {
    u64 hi = x >= y ? x : y, lo = x >= y ? y : x;
    u64 en, l;
    TRY(lmsr_exp_neg(hi - lo, &en));
    TRY(lmsr_ln(FP_ONE + en, &l));
    return checked_add(hi, l, out);
}

/* C(q_yes, q_no, b) = b·LSE(q_yes/b, q_no/b), the ratios floored separately */
static u64 lmsr_cost(u64 q_yes, u64 q_no, u64 b, u64 *out) {
    if (b < LMSR_MIN_B) return E_INVALID_B_PARAMETER;
    u64 x, y, lse;
    TRY(fp_div(q_yes, b, &x));
    TRY(fp_div(q_no, b, &y));
    TRY(lmsr_log_sum_exp(x, y, &lse));
    return fp_mul(b, lse, out);
}

/* YES price; the ratio is taken on the difference of the quantities */
static u64 lmsr_yes_price(u64 q_yes, u64 q_no, u64 b, u64 *out) {
    if (b < LMSR_MIN_B) return E_INVALID_B_PARAMETER;
    u64 ratio, e, den;
    if (q_yes >= q_no) {
        TRY(fp_div(q_yes - q_no, b, &ratio));
        TRY(lmsr_exp(ratio, &e));
        TRY(checked_add(e, FP_ONE, &den));
        return fp_div(e, den, out);
    }
    TRY(fp_div(q_no - q_yes, b, &ratio));
    TRY(lmsr_exp(ratio, &e));
    TRY(checked_add(FP_ONE, e, &den));
    return fp_div(FP_ONE, den, out);
}

/* A market's LMSR state. (SBF calls take at most five arguments, hence the structs.) */
typedef struct {
    u64 q_yes;
    u64 q_no;
    u64 b;
} Pool;

/* Optional record of the bisection: pairs[2i], pairs[2i+1] = mid, C(q+mid) − C(q) */
typedef struct {
    u64 *pairs;
    u64 len;
} Trace;

/* C of the market with `delta` added to one side (checked) */
static u64 cost_with(const Pool *q, bool yes, u64 delta, u64 *out) {
    u64 side;
    TRY(checked_add(yes ? q->q_yes : q->q_no, delta, &side));
    return yes ? lmsr_cost(side, q->q_no, q->b, out) : lmsr_cost(q->q_yes, side, q->b, out);
}

/* Bisection for the shares a pre-fee budget buys: stops 10⁶ units short at worst. */
static u64 lmsr_shares_for_cost(const Pool *q, bool yes, u64 target, u64 *shares, Trace *trace) {
    u64 c0, hi, lo = 0;
    TRY(lmsr_cost(q->q_yes, q->q_no, q->b, &c0));
    TRY(checked_mul(q->b, 20, &hi));
    for (int round = 0; round < BISECTION_MAX_ROUNDS; round++) {
        if (hi - lo <= BISECTION_TOLERANCE) break;
        u64 mid = lo + (hi - lo) / 2, c1, c;
        TRY(cost_with(q, yes, mid, &c1));
        TRY(checked_sub(c1, c0, &c));
        if (trace != NULL) {
            trace->pairs[2 * trace->len] = mid;
            trace->pairs[2 * trace->len + 1] = c;
            trace->len += 1;
        }
        if (c < target) {
            lo = mid + 1;
        } else if (c > target) {
            hi = mid;
        } else {
            *shares = mid;
            return 0;
        }
    }
    *shares = lo;
    return 0;
}

typedef struct {
    u64 shares;
    u64 cost; /* pre-fee: C(q with the shares added) − C(q) */
} Quote;

/* Buy quote for a pre-fee budget: the shares found and the cost of exactly those shares */
static u64 lmsr_buy(const Pool *q, bool yes, u64 budget, Quote *out) {
    u64 c0, c1;
    TRY(lmsr_shares_for_cost(q, yes, budget, &out->shares, NULL));
    TRY(lmsr_cost(q->q_yes, q->q_no, q->b, &c0));
    TRY(cost_with(q, yes, out->shares, &c1));
    return checked_sub(c1, c0, &out->cost);
}

/* Gross proceeds of selling n shares of one side: C(before) − C(after) */
static u64 lmsr_sell(const Pool *q, bool yes, u64 n, u64 *gross) {
    u64 side = yes ? q->q_yes : q->q_no, c0, c1;
    if (n > side) return E_INSUFFICIENT_SHARES;
    TRY(lmsr_cost(q->q_yes, q->q_no, q->b, &c0));
    TRY(yes ? lmsr_cost(side - n, q->q_no, q->b, &c1) : lmsr_cost(q->q_yes, side - n, q->b, &c1));
    return checked_sub(c0, c1, gross);
}

/* budget = ⌊target_cost·10000 / 11000⌋ */
static u64 buy_budget(u64 target_cost, u64 *budget) {
    u64 scaled;
    TRY(checked_mul(target_cost, BUY_BUDGET_NUMERATOR, &scaled));
    *budget = scaled / BUY_BUDGET_DENOMINATOR;
    return 0;
}

typedef struct {
    u64 protocol;
    u64 resolver;
    u64 lp;
    u64 total;
} Fees;

/* Fee split of an amount (§4.8): the total first, then shares of it; LP takes the rest */
static u64 fee_split(u64 amount, u64 protocol_bps, u64 resolver_bps, u64 lp_bps, Fees *f) {
    u64 sum = protocol_bps + resolver_bps + lp_bps, scaled;
    TRY(checked_mul(amount, sum, &scaled));
    f->total = scaled / BPS_DENOMINATOR;
    if (sum == 0) return E_DIVISION_BY_ZERO;
    TRY(wide_mul_div(f->total, protocol_bps, sum, &f->protocol));
    TRY(wide_mul_div(f->total, resolver_bps, sum, &f->resolver));
    f->lp = f->total - f->protocol - f->resolver;
    return 0;
}

/* Bounded loss (§4.9): initial − current liquidity may not exceed ⌊b·ln 2⌋ */
static u64 check_bounded_loss(u64 b, u64 initial_liquidity, u64 current_liquidity) {
    u64 max_loss;
    TRY(wide_mul_div(b, FP_LN_2, FP_ONE, &max_loss));
    u64 loss = initial_liquidity > current_liquidity ? initial_liquidity - current_liquidity : 0;
    return loss > max_loss ? E_BOUNDED_LOSS_EXCEEDED : 0;
}

/* ⌊a·b / d⌋ in 128 bits, keeping the low 64 bits of the quotient (Rust's `as u64`) */
static u64 mul_div_truncated(u64 a, u64 b, u64 d) {
    U128 p;
    mul_64x64(a, b, &p);
    return div_128_by_64(p.hi % d, p.lo, d); /* the high quotient word is dropped */
}

#endif
