"""The container holds the parts a domain builds once per process, and closes them."""

from __future__ import annotations

from pathlib import Path

from marketd.config import Settings
from marketd.core.container import Container


def _embedded(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db")  # type: ignore[call-arg]


async def test_a_shared_part_is_built_once_and_closed_with_the_container(tmp_path: Path) -> None:
    container = Container.build(_embedded(tmp_path))
    built: list[object] = []
    closed: list[str] = []

    def part(owner: Container) -> object:
        assert owner is container
        made = object()
        built.append(made)

        async def close() -> None:
            closed.append("part")

        owner.on_close(close)
        return made

    first = container.shared(part)
    assert container.shared(part) is first
    assert built == [first]
    assert closed == []
    await container.close()
    assert closed == ["part"]


async def test_parts_close_last_registered_first(tmp_path: Path) -> None:
    container = Container.build(_embedded(tmp_path))
    closed: list[str] = []
    for name in ("first", "second"):

        async def close(name: str = name) -> None:
            closed.append(name)

        container.on_close(close)
    await container.close()
    assert closed == ["second", "first"]
