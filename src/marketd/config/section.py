"""What every section of the settings tree shares: its variables' names, and the one way a
list is written in the environment.

A section is a plain pydantic model under `Settings` (``settings.indexer``, ``settings.realtime``,
…). Its fields are read from ``ENV_PREFIX + field name`` (INDEXER_MAX_BATCH, WS_HEARTBEAT_SECONDS,
SNAPSHOT_CRON): the names each section had when it was a settings class of its own, which
operators set, so they never change (`marketd.config.sources` reads them).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, TypeAlias, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_settings import NoDecode

T = TypeVar("T")


def split_csv(value: object) -> object:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; anything but a string passes through as given."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList: TypeAlias = Annotated[list[T], NoDecode, BeforeValidator(split_csv)]
"""A list written in the environment as comma-separated items (never as JSON)."""


class Section(BaseModel):
    """One group of settings; its variables are ``ENV_PREFIX`` + the field name, upper-case."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    ENV_PREFIX: ClassVar[str] = ""

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name -> the environment variable it is read from."""
        return {name: (cls.ENV_PREFIX + name).upper() for name in cls.model_fields}
