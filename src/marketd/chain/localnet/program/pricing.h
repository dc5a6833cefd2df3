/* Stand-in pricing (simpler than zmart_core's LMSR, same shape of results).
 *
 * With y = shares of the traded outcome + b and a = shares of the other outcome + b,
 *     price(y) = y / (y + a)                       in (0, 1), YES + NO = 1,
 * which rises monotonically as the outcome is bought. A trade of s shares is charged at
 * the price *after* the trade (buy: s * price(y + s); sell: s * price(y - s)), an upper
 * and lower Riemann bound of the exact integral, so a round trip never profits and the
 * pool never pays out more than it took in. Prices are 1e9 fixed point; shares have
 * 9 decimals; one share pays one SOL. */
#ifndef ZMART_PRICING_H
#define ZMART_PRICING_H

#include "sbf.h"
#include "wide.h"

#define PRICE_ONE 1000000000UL

static bool add_ok(u64 a, u64 b, u64 *out) {
    *out = a + b;
    return *out >= a;
}

/* YES price in 1e9 units, clamped into [1, PRICE_ONE - 1] */
static bool price_yes(u64 shares_yes, u64 shares_no, u64 b, u64 *out) {
    u64 num, other, den;
    if (!add_ok(shares_yes, b, &num) || !add_ok(shares_no, b, &other) ||
        !add_ok(num, other, &den))
        return false;
    if (!mul_div(num, PRICE_ONE, den, false, out)) return false;
    if (*out == 0) *out = 1;
    if (*out >= PRICE_ONE) *out = PRICE_ONE - 1;
    return true;
}

/* Largest s with cost(s) = ceil(s * (y + s) / (y + s + a)) <= budget.
 * Solves s^2 + (y - C) s - C (y + a) = 0 for s, then checks the rounding. */
static bool quote_buy(u64 y, u64 a, u64 budget, u64 *shares, u64 *cost) {
    u64 ya;
    if (!add_ok(y, a, &ya)) return false;
    u64 diff = budget >= y ? budget - y : y - budget;
    U128 disc, four_cya;
    mul_64x64(diff, diff, &disc);
    mul_64x64(budget, ya, &four_cya);
    if (four_cya.hi >> 62) return false;
    four_cya.hi = (four_cya.hi << 2) | (four_cya.lo >> 62);
    four_cya.lo <<= 2;
    if (!add_u128(&disc, &four_cya)) return false;
    u64 root = isqrt_u128(&disc);
    U128 twice_s = {0, root};
    if (budget >= y) {
        U128 d = {0, diff};
        add_u128(&twice_s, &d);
    } else {
        twice_s.lo = root - diff; /* root >= diff since disc >= diff^2 */
    }
    shr_u128(&twice_s, 1);
    u64 s = twice_s.lo;
    for (int attempt = 0; attempt < 3; attempt++) {
        u64 ys, den, c = 0;
        if (s == 0) break;
        if (!add_ok(y, s, &ys) || !add_ok(ys, a, &den) || !mul_div(s, ys, den, true, &c))
            return false;
        if (c <= budget) {
            *shares = s;
            *cost = c;
            return true;
        }
        s -= 1;
    }
    *shares = 0;
    *cost = 0;
    return true;
}

/* Proceeds of selling s shares: floor(s * (y - s) / (y - s + a)); caller ensures s < y. */
static bool quote_sell(u64 y, u64 a, u64 s, u64 *proceeds) {
    u64 rest = y - s, den;
    if (!add_ok(rest, a, &den)) return false;
    return mul_div(s, rest, den, false, proceeds);
}

#endif
