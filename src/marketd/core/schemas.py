"""Schema building blocks shared by every domain."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

T = TypeVar("T")


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


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


def _price_text(value: Decimal) -> str:
    return str(value.quantize(PRICE_QUANTUM))


PRICE_QUANTUM = Decimal("0.000000001")


def _change_text(value: Decimal) -> str:
    return format(value.quantize(PRICE_QUANTUM), "f")  # never an exponent ("0E-9")


Price = Annotated[
    Decimal,
    PlainSerializer(_price_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{9}$", "examples": ["0.625000000"]}),
]
"""A price in (0, 1) as a decimal string with 9 places: never a float on the wire."""

PriceChange = Annotated[
    Decimal,
    PlainSerializer(_change_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{9}$", "examples": ["-0.012500000"]}),
]
"""A signed move of a price, as a decimal string with 9 places."""
