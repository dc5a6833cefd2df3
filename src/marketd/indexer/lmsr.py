"""The program's fixed-point LMSR cost function (PROGRAM.md §4.1-4.4), bit for bit, pure.

Used by the indexer for one thing: a sale's gross proceeds. `SharesSold` carries only the net
(gross - fees); several grosses can share a net (every tenth lamport at 10 % fees), while the
market's volume and liquidity move by the gross. The gross is exactly C(q) - C(q - n) on the
quantities before the sale, which the indexer holds (they equal the account's).
"""

from __future__ import annotations

P = 1_000_000_000
LN_2 = 693_147_180
MAX_EXP = 20 * P
MIN_B = 100 * P
U64_MAX = 2**64 - 1


class LmsrError(ArithmeticError):
    """An input the program's math refuses (it would fail the instruction)."""


def _u64(value: int) -> int:
    if not 0 <= value <= U64_MAX:
        raise LmsrError("outside u64")
    return value


def mul_f(a: int, b: int) -> int:
    return _u64(a * b // P)


def div_f(a: int, b: int) -> int:
    if b == 0:
        raise LmsrError("division by zero")
    return _u64(a * P // b)


def exp_f(x: int) -> int:
    """The Padé (2,2) exponential of §4.2 (not monotonic past 2*sqrt(3))."""
    if x > MAX_EXP:
        raise LmsrError("exponent too large")
    half, twelfth = x // 2, mul_f(x, x) // 12
    numerator = _u64(P + half + twelfth)
    denominator = (P - half) + twelfth if half <= P else (P + twelfth) - half
    return div_f(numerator, denominator)


def ln_f(x: int) -> int:
    """The three-term series logarithm of §4.3 (for arguments >= P, as LMSR uses it)."""
    if x == 0:
        raise LmsrError("ln of zero")
    if x == P:
        return 0
    r, k = x, 0
    while r >= 2 * P:
        r, k = r // 2, k + 1
    while r < P // 2:
        r, k = r * 2, k - 1
    if r >= P:
        y = div_f(r - P, r + P)
    else:
        v = div_f(P, r)
        y = div_f(v - P, v + P)
    y2 = mul_f(y, y)
    y3 = mul_f(y2, y)
    y5 = mul_f(y3, y2)
    series = 2 * (y + y3 // 3 + y5 // 5)
    result = series + k * LN_2
    if result < 0:
        raise LmsrError("underflow")
    return result


def cost(q_yes: int, q_no: int, b: int) -> int:
    """C(q) = b * LSE(q_yes / b, q_no / b) in the program's arithmetic."""
    if b < MIN_B:
        raise LmsrError("b below MIN_B")
    x, y = div_f(q_yes, b), div_f(q_no, b)
    gap = abs(x - y)
    if gap > MAX_EXP:
        raise LmsrError("exponent too large")
    lse = _u64(max(x, y) + ln_f(P + div_f(P, exp_f(gap))))
    return mul_f(b, lse)


def sale_gross(q_yes: int, q_no: int, b: int, yes: bool, shares: int) -> int:
    """The gross proceeds of selling `shares` of one side from quantities (q_yes, q_no)."""
    held = q_yes if yes else q_no
    if shares > held:
        raise LmsrError("more shares than outstanding")
    after = (q_yes - shares, q_no) if yes else (q_yes, q_no - shares)
    gross = cost(q_yes, q_no, b) - cost(*after, b)
    if gross < 0:
        raise LmsrError("underflow")
    return gross
