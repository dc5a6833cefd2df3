"""Schema building blocks shared by every domain."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from marketd.core import inputs

T = TypeVar("T")
V = TypeVar("V")


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _as_validation_error(rule: Callable[[V], V]) -> Callable[[V], V]:
    """`rule` with its `InputError` as pydantic's error of the same code (a 422 that names the
    field, the rule's message and code)."""

    def check(value: V) -> V:
        try:
            return rule(value)
        except inputs.InputError as exc:
            raise PydanticCustomError(exc.code, str(exc)) from exc

    return check


TEXT_RULE = AfterValidator(_as_validation_error(inputs.check_text))
"""The check every inbound string carries (tests/core/test_inputs.py walks the routes)."""

Text = Annotated[str, TEXT_RULE]
"""Any text from a client (path, query, body): no NUL character, no lone surrogate."""

MARKET_ID_MAX_CHARS = 64
"""A market id: the platform's lowercase hex of the 32-byte on-chain id (64 characters), or a
UUID's text (marketd's older ids, 36). `markets.id` is `text`; nothing longer can exist."""

MarketId = Annotated[str, StringConstraints(max_length=MARKET_ID_MAX_CHARS), TEXT_RULE]
"""A market id as a client sends it: an id that cannot exist (too long for the column) is a
422, one that merely is not there a 404."""

WALLET_ID_MAX_CHARS = 44
"""A wallet's base58 text (the `users.wallet` column)."""

WalletId = Annotated[str, StringConstraints(max_length=WALLET_ID_MAX_CHARS), TEXT_RULE]

CURSOR_MAX_CHARS = 512
"""Every cursor marketd hands out is far shorter (two values, base64)."""

Cursor = Annotated[str, StringConstraints(max_length=CURSOR_MAX_CHARS), TEXT_RULE]

Moment = Annotated[
    AwareDatetime,
    AfterValidator(_as_validation_error(inputs.check_moment)),
    Field(
        description=(
            "ISO 8601 with an offset, from "
            f"{inputs.MIN_MOMENT.isoformat()} to before {inputs.MAX_MOMENT.isoformat()} (UTC)."
        )
    ),
]
"""A moment from a client: aware, representable in UTC with room to spare (as UTC)."""


def length_limits(min_length: int, max_length: int) -> dict[str, Any]:
    """JSON Schema limits of a text that a rule checks (after trimming, or after decoding) rather
    than pydantic: give the rule's own constants, so the documented limits are the enforced
    ones and the rule's error (its wording, its `reason`) is what a client sees."""
    return {"minLength": min_length, "maxLength": max_length}


class Page(BaseModel, Generic[T]):
    """One page of a cursor-paginated list; pass `next_cursor` back as `cursor`."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Opaque cursor of the next page; null on the last page."
    )


def price_text(value: Decimal) -> str:
    """A price as `Price` writes it: 9 places, never an exponent (str() writes "5.00E-7")."""
    return format(value.quantize(PRICE_QUANTUM), "f")


PRICE_QUANTUM = Decimal("0.000000001")


def _change_text(value: Decimal) -> str:
    return format(value.quantize(PRICE_QUANTUM), "f")  # never an exponent ("0E-9")


Price = Annotated[
    Decimal,
    PlainSerializer(price_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{9}$", "examples": ["0.625000000"]}),
]
"""A price in (0, 1) as a decimal string with 9 places: never a float on the wire."""

PriceChange = Annotated[
    Decimal,
    PlainSerializer(_change_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{9}$", "examples": ["-0.012500000"]}),
]
"""A signed move of a price, as a decimal string with 9 places."""
