"""Every limit a request schema states is the one its rule enforces (one source of truth): the
documented JSON Schema limits come from the rules' constants, and the values at each limit are
accepted while one past it is refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from solders.keypair import Keypair

from marketd.auth.schemas import ChallengeRequest, VerifyRequest
from marketd.discussions.rules import MAX_CONTENT
from marketd.discussions.schemas import DiscussionCreate
from marketd.markets import rules as market_rules
from marketd.markets.schemas import MarketCreate
from marketd.shared.market_state import CATEGORIES
from marketd.trades.rules import (
    MAX_TRANSACTION_BASE64,
    MAX_TRANSACTION_BYTES,
    TradeRejected,
    decode_transaction,
)
from marketd.trades.schemas import TradeSubmit


def limits(model: type[BaseModel], field: str) -> tuple[Any, Any]:
    schema = model.model_json_schema()["properties"][field]
    schema = next((option for option in schema.get("anyOf", []) if "type" in option), schema)
    if schema.get("type") == "array":
        return schema.get("maxItems"), schema["items"].get("maxLength")
    return schema.get("minLength"), schema.get("maxLength")


def test_documented_limits_are_the_rules_constants() -> None:
    assert limits(DiscussionCreate, "content") == (1, MAX_CONTENT) == (1, 1000)
    assert limits(MarketCreate, "question") == market_rules.QUESTION_CHARS == (10, 200)
    category = MarketCreate.model_json_schema()["properties"]["category"]
    assert tuple(category["enum"]) == CATEGORIES
    assert limits(MarketCreate, "description")[1] == market_rules.DESCRIPTION_MAX_CHARS
    assert limits(MarketCreate, "tags") == (market_rules.MAX_TAGS, market_rules.TAG_CHARS[1])
    assert limits(MarketCreate, "resolver_wallet") == limits(ChallengeRequest, "wallet")
    assert limits(ChallengeRequest, "wallet") == (32, 44)
    assert limits(VerifyRequest, "signature") == (64, 88)
    assert limits(TradeSubmit, "transaction") == (1, MAX_TRANSACTION_BASE64)


def test_content_is_measured_after_trimming() -> None:
    at_limit = DiscussionCreate(market_id="m", content="  " + "x" * MAX_CONTENT + "\n")
    assert len(at_limit.content) == MAX_CONTENT
    with pytest.raises(ValidationError, match=f"longer than {MAX_CONTENT}"):
        DiscussionCreate(market_id="m", content="x" * (MAX_CONTENT + 1))


def test_question_and_tags_are_measured_after_trimming() -> None:
    low, high = market_rules.QUESTION_CHARS
    assert len(MarketCreate(question=" " + "q" * high + " ").question) == high
    assert len(MarketCreate(question=" " + "q" * low + " ").question) == low
    for wrong in ("q" * (high + 1), " " + "q" * (low - 1) + "    "):
        with pytest.raises(ValidationError, match=f"{low}-{high} characters"):
            MarketCreate(question=wrong)
    question = "Is this question long enough?"
    longest_tag = "T" * market_rules.TAG_CHARS[1]
    assert MarketCreate(question=question, tags=[f" {longest_tag} "]).tags == [longest_tag.lower()]
    with pytest.raises(ValidationError, match="tags must be"):
        MarketCreate(question=question, tags=["t" * (market_rules.TAG_CHARS[1] + 1)])
    with pytest.raises(ValidationError):
        MarketCreate(question=question, tags=[f"t{i}" for i in range(market_rules.MAX_TAGS + 1)])


def test_a_real_signature_fits_the_signature_limits() -> None:
    signature = str(Keypair().sign_message(b"limits"))
    VerifyRequest(message="m", signature=signature)
    zero = "1" * 64  # 64 zero bytes: the shortest base58 form
    VerifyRequest(message="m", signature=zero)
    with pytest.raises(ValidationError):
        VerifyRequest(message="m", signature=signature + "1" * (89 - len(signature)))


def test_the_transaction_limit_is_the_base64_of_the_packet_limit() -> None:
    largest = base64.b64encode(b"\0" * MAX_TRANSACTION_BYTES).decode()
    assert len(largest) == MAX_TRANSACTION_BASE64
    with pytest.raises(TradeRejected) as refused:
        decode_transaction(base64.b64encode(b"\0" * (MAX_TRANSACTION_BYTES + 1)).decode())
    assert refused.value.reason == "too_large"
