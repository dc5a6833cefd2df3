"""An independent model of zmart_core's fixed-point LMSR, written from PROGRAM.md §4 in Python
integers (unbounded, with explicit u64 checks) — not from the C. The property test holds the
twin's C math to it."""

from __future__ import annotations

from dataclasses import dataclass

P = 10**9
LN_2 = 693_147_180
MAX_EXP = 20 * P
MIN_B = 100 * P
U64_MAX = 2**64 - 1
TOLERANCE = 1_000_000
MAX_ROUNDS = 50

CODES = {
    "InsufficientShares": 6014,
    "OverflowError": 6033,
    "UnderflowError": 6034,
    "DivisionByZero": 6035,
    "ExponentTooLarge": 6039,
    "InvalidInput": 6040,
    "BoundedLossExceeded": 6041,
    "InvalidBParameter": 6042,
}


class ModelError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
        self.code = CODES[name]


def u64(value: int) -> int:
    if value < 0:
        raise ModelError("UnderflowError")
    if value > U64_MAX:
        raise ModelError("OverflowError")
    return value


def mul_f(a: int, b: int) -> int:
    return u64(a * b // P)


def div_f(a: int, b: int) -> int:
    if b == 0:
        raise ModelError("DivisionByZero")
    return u64(a * P // b)


def exp(x: int) -> int:
    if x > MAX_EXP:
        raise ModelError("ExponentTooLarge")
    s = mul_f(x, x)
    h, t = x // 2, s // 12
    numerator = u64(P + h + t)
    denominator = (P - h) + t if h <= P else (P + t) - h
    return div_f(numerator, denominator)


def exp_neg(x: int) -> int:
    return div_f(P, exp(x))


def ln(x: int) -> int:
    if x == 0:
        raise ModelError("InvalidInput")
    if x == P:
        return 0
    r, k = x, 0
    while r >= 2 * P:
        r, k = r // 2, k + 1
    while r < P // 2:
        r, k = 2 * r, k - 1
    if r >= P:
        y = div_f(r - P, r + P)
    else:
        v = div_f(P, r)
        y = div_f(v - P, v + P)
    y2 = mul_f(y, y)
    y3 = mul_f(y2, y)
    y5 = mul_f(y3, y2)
    series = 2 * (y + y3 // 3 + y5 // 5)
    return u64(series + k * LN_2)


def log_sum_exp(x: int, y: int) -> int:
    return u64(max(x, y) + ln(P + exp_neg(abs(x - y))))


def cost(q_yes: int, q_no: int, b: int) -> int:
    if b < MIN_B:
        raise ModelError("InvalidBParameter")
    return mul_f(b, log_sum_exp(div_f(q_yes, b), div_f(q_no, b)))


def yes_price(q_yes: int, q_no: int, b: int) -> int:
    if b < MIN_B:
        raise ModelError("InvalidBParameter")
    if q_yes >= q_no:
        e = exp(div_f(q_yes - q_no, b))
        return div_f(e, u64(e + P))
    e = exp(div_f(q_no - q_yes, b))
    return div_f(P, u64(P + e))


def _with(q_yes: int, q_no: int, yes: bool, delta: int) -> tuple[int, int]:
    return (u64(q_yes + delta), q_no) if yes else (q_yes, u64(q_no + delta))


def shares_for_cost(
    q_yes: int, q_no: int, b: int, yes: bool, target: int
) -> tuple[int, list[tuple[int, int]]]:
    c0 = cost(q_yes, q_no, b)
    lo, hi = 0, u64(20 * b)
    trace: list[tuple[int, int]] = []
    for _ in range(MAX_ROUNDS):
        if hi - lo <= TOLERANCE:
            break
        mid = lo + (hi - lo) // 2
        c = u64(cost(*_with(q_yes, q_no, yes, mid), b) - c0)
        trace.append((mid, c))
        if c < target:
            lo = mid + 1
        elif c > target:
            hi = mid
        else:
            return mid, trace
    return lo, trace


def buy(q_yes: int, q_no: int, b: int, yes: bool, budget: int) -> tuple[int, int]:
    shares, _ = shares_for_cost(q_yes, q_no, b, yes, budget)
    spent = u64(cost(*_with(q_yes, q_no, yes, shares), b) - cost(q_yes, q_no, b))
    return shares, spent


def sell(q_yes: int, q_no: int, b: int, yes: bool, n: int) -> int:
    if n > (q_yes if yes else q_no):
        raise ModelError("InsufficientShares")
    before = cost(q_yes, q_no, b)
    after = cost(q_yes - n, q_no, b) if yes else cost(q_yes, q_no - n, b)
    return u64(before - after)


def buy_budget(target_cost: int) -> int:
    return u64(target_cost * 10_000) // 11_000


@dataclass(frozen=True)
class Fees:
    protocol: int
    resolver: int
    lp: int
    total: int


def fee_split(amount: int, p: int, r: int, lp: int) -> Fees:
    s = p + r + lp
    total = u64(amount * s) // 10_000
    if s == 0:
        raise ModelError("DivisionByZero")
    protocol = total * p // s
    resolver = total * r // s
    return Fees(protocol, resolver, total - protocol - resolver, total)


def check_bounded_loss(b: int, initial: int, current: int) -> None:
    if max(initial - current, 0) > b * LN_2 // P:
        raise ModelError("BoundedLossExceeded")
