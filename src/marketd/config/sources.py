"""How the settings tree reads the environment (and `.env`): each section's fields from their
flat variable names (INDEXER_MAX_BATCH), not pydantic-settings' nested form (INDEXER__MAX_BATCH).

pydantic-settings reads a nested model from one JSON variable named after the field, or from
``<FIELD><delimiter><name>`` variables. Neither is what operators set: each section had its own
settings class before it joined the tree, and kept its variables. These sources answer a
section field with the section's own variables (`Section.env_names`) and leave every other
field to pydantic-settings; the environment still wins over `.env`, and values given in code
over both.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, DotEnvSettingsSource, EnvSettingsSource

from marketd.config.section import Section


def section_of(field: FieldInfo) -> type[Section] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation
    return None


@cache
def environment_names(tree: type[BaseSettings]) -> dict[str, str]:
    """Every variable the tree reads -> the setting it fills (``"max_batch"`` of the section
    ``indexer`` is ``"indexer.max_batch"``).

    Raises ValueError when two settings would read the same variable: one of them would
    silently take the other's value."""
    names: dict[str, str] = {}

    def claim(env_name: str, path: str) -> None:
        if env_name in names:
            raise ValueError(f"{env_name} is read by both {names[env_name]} and {path}")
        names[env_name] = path

    prefix = str(tree.model_config.get("env_prefix", ""))
    for field_name, field in tree.model_fields.items():
        section = section_of(field)
        if section is None:
            claim((prefix + field_name).upper(), field_name)
            continue
        for name, env_name in section.env_names().items():
            claim(env_name, f"{field_name}.{name}")
    return names


def _section_values(
    env_vars: Mapping[str, str | None], case_sensitive: bool, section: type[Section]
) -> dict[str, str] | None:
    values = {}
    for name, env_name in section.env_names().items():
        value = env_vars.get(env_name if case_sensitive else env_name.lower())
        if value is not None:
            values[name] = value
    return values or None


class SectionEnvSource(EnvSettingsSource):
    """The process environment, sections read from their flat variable names."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        section = section_of(field)
        if section is None:
            return super().get_field_value(field, field_name)
        return _section_values(self.env_vars, self.case_sensitive, section), field_name, False

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        if section_of(field) is not None:
            return value  # already the section's fields, as strings: the section validates them
        return super().prepare_field_value(field_name, field, value, value_is_complex)


class SectionDotEnvSource(SectionEnvSource, DotEnvSettingsSource):
    """The `.env` file, sections read from their flat variable names."""
