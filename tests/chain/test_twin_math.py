"""The twin's LMSR math (program/lmsr.h, compiled for the host): the golden vectors exactly,
and thousands of seeded random cases against the independent model in lmsr_model.py."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from marketd.chain.localnet.build import BuildError
from marketd.chain.localnet.twin_math import HostLmsr, MathError, build_host_library

from ..helpers import lmsr_model as model

VECTORS = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "program" / "vectors.json").read_text()
)
BPS = (300, 200, 500)
MIN_TRADE = 10_000
U64_MAX = 2**64 - 1


@pytest.fixture(scope="module")
def lmsr(tmp_path_factory: pytest.TempPathFactory) -> HostLmsr:
    return HostLmsr(build_host_library(tmp_path_factory.mktemp("lmsr")))


def outcome(call: Callable[..., Any], *args: Any) -> Any:
    """call(*args), or the vectors' error shape {error, code} (only the code is compared)."""
    try:
        return call(*args)
    except MathError as exc:
        return {"code": exc.code}
    except model.ModelError as exc:
        return {"code": exc.code}


def expected(value: Any) -> Any:
    return {"code": value["code"]} if isinstance(value, dict) and "code" in value else value


# ------------------------------------------------------------------ golden vectors


PRIMITIVES = VECTORS["primitives"]


@pytest.mark.parametrize("case", PRIMITIVES["fixed_mul_div"])
def test_fixed_mul_and_div_vectors(lmsr: HostLmsr, case: dict[str, Any]) -> None:
    a, b = case["a"], case["b"]
    assert outcome(lmsr.fp_mul, a, b) == expected(case["fixed_mul"])
    assert outcome(lmsr.fp_div, a, b) == expected(case["fixed_div"])


@pytest.mark.parametrize("case", PRIMITIVES["exp"])
def test_exp_vectors(lmsr: HostLmsr, case: dict[str, Any]) -> None:
    assert outcome(lmsr.exp, case["x"]) == expected(case["exp"])
    assert outcome(lmsr.exp_neg, case["x"]) == expected(case["exp_negative"])


@pytest.mark.parametrize("case", PRIMITIVES["ln"])
def test_ln_vectors(lmsr: HostLmsr, case: dict[str, Any]) -> None:
    assert outcome(lmsr.ln, case["x"]) == expected(case["ln"])


@pytest.mark.parametrize("case", PRIMITIVES["log_sum_exp"])
def test_log_sum_exp_vectors(lmsr: HostLmsr, case: dict[str, Any]) -> None:
    assert outcome(lmsr.log_sum_exp, case["x"], case["y"]) == expected(case["log_sum_exp"])


def test_exp_and_price_peaks(lmsr: HostLmsr) -> None:
    peak = VECTORS["primitives"]["peak"]
    first, last = peak["exp_argmax_first"], peak["exp_argmax_last"]
    assert lmsr.exp(first) == lmsr.exp(last) == peak["exp_max_value"]
    assert lmsr.exp(first - 1) < peak["exp_max_value"]
    assert lmsr.exp(last + 1) < peak["exp_max_value"]
    hits = sum(lmsr.exp(x) == peak["exp_max_value"] for x in range(first, last + 1))
    assert hits == peak["exp_argmax_count"]
    assert lmsr.exp(model.MAX_EXP) == peak["exp_at_max_exp"]
    b = 100 * model.P
    # ratio = divF(q_yes - q_no, b): with b = 100·P a ratio r is a difference of 100·r
    at_first = lmsr.yes_price(peak["yes_price_max_first_ratio"] * 100, 0, b)
    at_last = lmsr.yes_price(peak["yes_price_max_last_ratio"] * 100, 0, b)
    assert at_first == at_last == peak["yes_price_max"]
    assert lmsr.yes_price(0, peak["yes_price_max_first_ratio"] * 100, b) == peak["yes_price_min"]


@pytest.mark.parametrize("case", VECTORS["fee_splits"])
def test_fee_split_vectors(lmsr: HostLmsr, case: dict[str, Any]) -> None:
    args = (
        case["amount"],
        case["protocol_fee_bps"],
        case["resolver_fee_bps"],
        case["lp_fee_bps"],
    )
    got = outcome(lmsr.fee_split, *args)
    if "error" in case:
        assert got == {"code": case["code"]}
    else:
        assert (got.protocol, got.resolver, got.lp, got.total) == (
            case["protocol_fee"],
            case["resolver_fee"],
            case["lp_fee"],
            case["total_fees"],
        )


def quote_buy(lib: Any, q_yes: int, q_no: int, b: int, yes: bool, target: int) -> dict[str, Any]:
    """What buy_shares computes (§3.7 steps 2-6), through `lib` (the C or the model)."""
    if target < MIN_TRADE:
        return {"code": 6018}
    try:
        budget = lib.buy_budget(target)
    except (MathError, model.ModelError) as exc:
        return {"code": exc.code}
    try:
        shares, cost = lib.buy(q_yes, q_no, b, yes, budget)
        fees = lib.fee_split(cost, *BPS)
    except (MathError, model.ModelError) as exc:
        return {"pre_fee_budget": budget, "code": exc.code}
    total = cost + fees.total
    new_yes, new_no = (q_yes + shares, q_no) if yes else (q_yes, q_no + shares)
    return {
        "pre_fee_budget": budget,
        "shares_for_cost": shares,
        "buy_cost": cost,
        "fees": {
            "protocol_fee": fees.protocol,
            "resolver_fee": fees.resolver,
            "lp_fee": fees.lp,
            "total_fees": fees.total,
        },
        "total_cost": total,
        "new_q_yes": new_yes,
        "new_q_no": new_no,
        "new_yes_price": lib.yes_price(new_yes, new_no, b),
        "result": "ok" if total <= target else "SlippageExceeded",
    }


def quote_sell(lib: Any, q_yes: int, q_no: int, b: int, yes: bool, n: int) -> dict[str, Any]:
    """What sell_shares computes before its transfer (§3.8)."""
    try:
        gross = lib.sell(q_yes, q_no, b, yes, n)
    except (MathError, model.ModelError) as exc:
        return {"code": exc.code}
    if gross < MIN_TRADE:
        return {"code": 6018, "proceeds_before_fees": gross}
    fees = lib.fee_split(gross, *BPS)
    new_yes, new_no = (q_yes - n, q_no) if yes else (q_yes, q_no - n)
    return {
        "proceeds_before_fees": gross,
        "net_proceeds": gross - fees.total,
        "total_payout": gross - fees.total + fees.protocol,
        "protocol_fee": fees.protocol,
        "resolver_fee": fees.resolver,
        "lp_fee": fees.lp,
        "total_fees": fees.total,
        "new_yes_price": lib.yes_price(new_yes, new_no, b),
    }


def strip_vector(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in ("error", "search_trace")}


@pytest.mark.parametrize("case", VECTORS["lmsr_cases"], ids=lambda c: c["id"])
def test_lmsr_case(lmsr: HostLmsr, case: dict[str, Any]) -> None:
    inp = case["input"]
    b, q_yes, q_no = inp["b"], inp["q_yes"], inp["q_no"]
    assert outcome(lmsr.cost, q_yes, q_no, b) == expected(case["cost_function"])
    assert outcome(lmsr.yes_price, q_yes, q_no, b) == expected(case["yes_price"])
    no_price = outcome(lambda q, r, s: model.P - lmsr.yes_price(q, r, s), q_yes, q_no, b)
    assert no_price == expected(case["no_price"])
    if case.get("buy"):
        got = quote_buy(lmsr, q_yes, q_no, b, inp["outcome"], inp["target_cost"])
        assert got == strip_vector(case["buy"])
        if "search_trace" in case["buy"]:
            _, trace = lmsr.shares_for_cost(q_yes, q_no, b, inp["outcome"], got["pre_fee_budget"])
            assert [list(pair) for pair in trace] == case["buy"]["search_trace"]
    if case.get("sell"):
        got = quote_sell(lmsr, q_yes, q_no, b, inp["sell_outcome"], inp["sell_shares"])
        assert got == strip_vector(case["sell"])


def test_bounded_loss_and_truncated_claim_math(lmsr: HostLmsr) -> None:
    b = 100 * model.P
    lmsr.check_bounded_loss(b, 69_314_718_000, 0)
    lmsr.check_bounded_loss(b, 0, 10**12)
    with pytest.raises(MathError) as info:
        lmsr.check_bounded_loss(b, 69_314_718_001, 0)
    assert info.value.code == 6041
    assert lmsr.mul_div_truncated(10, 7, 3) == 23
    assert lmsr.mul_div_truncated(U64_MAX, U64_MAX, U64_MAX) == U64_MAX
    assert lmsr.mul_div_truncated(2**63, 4, 1) == 0  # 2⁶⁵ keeps its low 64 bits


def test_host_build_reports_compiler_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("marketd.chain.localnet.twin_math.HOST_SOURCE", "missing.c")
    with pytest.raises(BuildError, match="clang failed"):
        build_host_library(tmp_path)


# ------------------------------------------------------------------ property test


def random_market(rng: random.Random) -> tuple[int, int, int]:
    """b around the useful range (some below MIN_B), quantities from balanced to ~20·b apart."""
    small = rng.random() < 0.1
    b = rng.randrange(1, 100) * model.P if small else rng.randrange(100, 10_000) * model.P
    seed = b // 1000
    spread = rng.choice([0, rng.randrange(0, b), rng.randrange(0, 25 * b)])
    lead = rng.choice([seed, seed + rng.randrange(0, 10 * b)])
    q_yes, q_no = (lead + spread, lead) if rng.random() < 0.5 else (lead, lead + spread)
    return b, q_yes, q_no


def cases(seed: int, count: int) -> Iterator[tuple[random.Random, int, int, int]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield (rng, *random_market(rng))


def test_primitives_match_the_model_on_random_inputs(lmsr: HostLmsr) -> None:
    rng = random.Random(16)
    for _ in range(3000):
        x = rng.choice([rng.randrange(0, 21 * model.P), rng.randrange(0, U64_MAX)])
        y = rng.choice([rng.randrange(0, 3 * model.P), rng.randrange(1, 2**40), x])
        assert outcome(lmsr.exp, x) == outcome(model.exp, x), x
        assert outcome(lmsr.ln, x) == outcome(model.ln, x), x
        assert outcome(lmsr.ln, y) == outcome(model.ln, y), y
        assert outcome(lmsr.fp_mul, x, y) == outcome(model.mul_f, x, y)
        assert outcome(lmsr.fp_div, x, y) == outcome(model.div_f, x, y)
        small = x % (22 * model.P)
        got = outcome(lmsr.log_sum_exp, small, y)
        assert got == outcome(model.log_sum_exp, small, y), (small, y)


def test_cost_and_price_match_the_model_on_random_markets(lmsr: HostLmsr) -> None:
    for _, b, q_yes, q_no in cases(17, 3000):
        got = outcome(lmsr.cost, q_yes, q_no, b)
        assert got == outcome(model.cost, q_yes, q_no, b), (b, q_yes, q_no)
        got = outcome(lmsr.yes_price, q_yes, q_no, b)
        assert got == outcome(model.yes_price, q_yes, q_no, b), (b, q_yes, q_no)


def test_buys_and_sells_match_the_model_on_random_markets(lmsr: HostLmsr) -> None:
    for rng, b, q_yes, q_no in cases(18, 1500):
        yes = rng.random() < 0.5
        target = rng.choice([rng.randrange(0, 2 * 10**7), rng.randrange(0, 10**12)])
        assert quote_buy(lmsr, q_yes, q_no, b, yes, target) == quote_buy(
            model, q_yes, q_no, b, yes, target
        ), (b, q_yes, q_no, yes, target)
        held = q_yes if yes else q_no
        n = rng.choice([rng.randrange(0, held + 2), rng.randrange(0, 10**9)])
        assert quote_sell(lmsr, q_yes, q_no, b, yes, n) == quote_sell(
            model, q_yes, q_no, b, yes, n
        ), (b, q_yes, q_no, yes, n)


def test_fee_splits_match_the_model_on_random_amounts(lmsr: HostLmsr) -> None:
    rng = random.Random(19)
    for _ in range(3000):
        amount = rng.choice([rng.randrange(0, 10**12), rng.randrange(0, U64_MAX)])
        bps = [rng.choice([0, rng.randrange(0, 10_001), rng.randrange(0, 65_536)]) for _ in "abc"]
        got = outcome(lmsr.fee_split, amount, *bps)
        want = outcome(model.fee_split, amount, *bps)
        if isinstance(want, model.Fees):
            want = (want.protocol, want.resolver, want.lp, want.total)
            got = (got.protocol, got.resolver, got.lp, got.total)
        assert got == want, (amount, bps)


def test_bisection_errors_surface(lmsr: HostLmsr) -> None:
    with pytest.raises(MathError) as info:
        lmsr.shares_for_cost(10**8, 10**8, model.MIN_B - 1, True, model.P)
    assert info.value.code == 6042
