"""docs/architecture.md names modules and packages; it must not drift from the tree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "src" / "marketd"


def test_every_module_path_the_page_names_exists() -> None:
    # Paths with a folder (`votes/handlers.py`); bare names (`service.py`) name a kind of module.
    paths = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)+\.(?:py|md))`", DOC))
    assert len(paths) > 20
    missing = sorted(p for p in paths if not (PACKAGE / p).exists())
    assert missing == []


def test_the_layer_table_lists_every_layer_of_the_import_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [contract] = config["tool"]["importlinter"]["contracts"]
    named = {
        name.strip().removeprefix("marketd.")
        for layer in contract["layers"]
        for name in layer.split("|")
    }
    table = DOC[DOC.index("## The layers") : DOC.index("## Settings")]
    absent = sorted(name for name in named if f"`{name}`" not in table)
    assert absent == []
