/* The twin's math compiled natively for the host (shared library, loaded with ctypes by the
 * property test and bench/chain.py): the very same lmsr.h the SBF program includes, exported
 * with plain signatures. Every function returns 0 or the program error number. */
#include "lmsr.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT u64 twin_fp_mul(u64 a, u64 b, u64 *out) { return fp_mul(a, b, out); }
EXPORT u64 twin_fp_div(u64 a, u64 b, u64 *out) { return fp_div(a, b, out); }
EXPORT u64 twin_exp(u64 x, u64 *out) { return lmsr_exp(x, out); }
EXPORT u64 twin_exp_neg(u64 x, u64 *out) { return lmsr_exp_neg(x, out); }
EXPORT u64 twin_ln(u64 x, u64 *out) { return lmsr_ln(x, out); }
EXPORT u64 twin_log_sum_exp(u64 x, u64 y, u64 *out) { return lmsr_log_sum_exp(x, y, out); }
EXPORT u64 twin_cost(u64 q_yes, u64 q_no, u64 b, u64 *out) { return lmsr_cost(q_yes, q_no, b, out); }
EXPORT u64 twin_yes_price(u64 q_yes, u64 q_no, u64 b, u64 *out) {
    return lmsr_yes_price(q_yes, q_no, b, out);
}
/* trace: room for 2 words per bisection round (50 rounds at most) */
EXPORT u64 twin_shares_for_cost(u64 q_yes, u64 q_no, u64 b, u64 yes, u64 target, u64 *shares,
                                u64 *trace, u64 *trace_len) {
    Pool q = {q_yes, q_no, b};
    Trace t = {trace, 0};
    u64 err = lmsr_shares_for_cost(&q, yes != 0, target, shares, &t);
    *trace_len = t.len;
    return err;
}
EXPORT u64 twin_buy(u64 q_yes, u64 q_no, u64 b, u64 yes, u64 budget, u64 *shares, u64 *cost) {
    Pool q = {q_yes, q_no, b};
    Quote quote = {0, 0};
    u64 err = lmsr_buy(&q, yes != 0, budget, &quote);
    *shares = quote.shares;
    *cost = quote.cost;
    return err;
}
EXPORT u64 twin_sell(u64 q_yes, u64 q_no, u64 b, u64 yes, u64 n, u64 *gross) {
    Pool q = {q_yes, q_no, b};
    return lmsr_sell(&q, yes != 0, n, gross);
}
EXPORT u64 twin_buy_budget(u64 target_cost, u64 *budget) { return buy_budget(target_cost, budget); }
/* out: protocol, resolver, lp, total */
EXPORT u64 twin_fee_split(u64 amount, u64 p, u64 r, u64 l, u64 *out) {
    Fees f = {0, 0, 0, 0};
    u64 err = fee_split(amount, p, r, l, &f);
    out[0] = f.protocol;
    out[1] = f.resolver;
    out[2] = f.lp;
    out[3] = f.total;
    return err;
}
EXPORT u64 twin_bounded_loss(u64 b, u64 initial, u64 current) {
    return check_bounded_loss(b, initial, current);
}
EXPORT u64 twin_mul_div_truncated(u64 a, u64 b, u64 d) { return mul_div_truncated(a, b, d); }
