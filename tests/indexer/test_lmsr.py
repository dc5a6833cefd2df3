"""The indexer's copy of the program's LMSR cost function: PROGRAM.md §4's worked values, and
every refusal the program's math has."""

from __future__ import annotations

import pytest

from marketd.indexer import lmsr
from marketd.indexer.lmsr import LmsrError, P


def test_the_specifications_values() -> None:
    assert lmsr.exp_f(0) == P
    assert lmsr.exp_f(P) == 2_714_285_715
    assert lmsr.exp_f(20 * P) == 1_821_917_808
    assert lmsr.ln_f(P) == 0
    assert lmsr.ln_f(2 * P - 1) == 693_004_112
    assert lmsr.ln_f(2 * P) == 693_147_180
    assert lmsr.cost(10**8, 10**8, 10**11) == 69_414_718_000
    # §4.7: 0.001 share sold from a balanced b = 100 SOL market collects the jump bonus.
    assert lmsr.sale_gross(10**8, 10**8, 100 * P, True, 10**6) == 14_806_000


def test_a_sale_from_a_fresh_market_moves_the_cost_down_by_its_gross() -> None:
    b = 100 * P
    before = (b // 1000 + 5 * P, b // 1000)
    gross = lmsr.sale_gross(*before, b, True, P)
    assert gross == lmsr.cost(*before, b) - lmsr.cost(before[0] - P, before[1], b) > 0
    assert lmsr.sale_gross(*before, b, False, 0) == 0


def test_what_the_program_refuses() -> None:
    b = 100 * P
    with pytest.raises(LmsrError):
        lmsr.exp_f(20 * P + 1)
    with pytest.raises(LmsrError):
        lmsr.ln_f(0)
    with pytest.raises(LmsrError):
        lmsr.div_f(1, 0)
    with pytest.raises(LmsrError):
        lmsr.mul_f(2**64, P)  # outside u64
    with pytest.raises(LmsrError):
        lmsr.cost(P, P, b - 1)  # b below MIN_B
    with pytest.raises(LmsrError):
        lmsr.cost(21 * b, 0, b)  # ratios more than MAX_EXP apart
    with pytest.raises(LmsrError):
        lmsr.sale_gross(P, P, b, True, P + 1)  # more than outstanding
    with pytest.raises(LmsrError):
        lmsr.ln_f(P // 4)  # below 1 with k < 0: the series cannot cover it
    # Selling the trailing side past ratio 2*sqrt(3) costs "negative": UnderflowError.
    with pytest.raises(LmsrError):
        lmsr.sale_gross(5 * b, P, b, False, P // 2)
