"""Choosing the local chain's build of the twin: as deployed by default, the fixed build behind
the documented switch (settings, CLI, runtime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marketd.chain.localnet.build import TWIN, TWIN_FIXED, program_artifact
from marketd.chain.localnet.embedded_chain import LocalChainRuntime
from marketd.cli import build_parser, local_chain_settings
from marketd.config import Settings

pytestmark = pytest.mark.integration  # runs the local chain runtime


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **overrides)


def test_artifacts() -> None:
    assert program_artifact() == TWIN.artifact
    assert program_artifact(fixed=True) == TWIN_FIXED.artifact


def test_settings_default_to_the_twin_as_deployed(tmp_path: Path) -> None:
    assert settings_for(tmp_path).local_chain_fixed_program is False
    assert settings_for(tmp_path, local_chain_fixed_program=True).local_chain_fixed_program


@pytest.mark.parametrize("command", ["demo", "run"])
def test_cli_switch(tmp_path: Path, command: str) -> None:
    base = settings_for(tmp_path)
    plain = local_chain_settings(base, build_parser().parse_args([command]))
    assert plain is base
    chosen = local_chain_settings(base, build_parser().parse_args([command, "--fixed-program"]))
    assert chosen.local_chain_fixed_program
    assert chosen.data_dir == base.data_dir


def same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("overrides", "artifact"),
    [({}, TWIN.artifact), ({"local_chain_fixed_program": True}, TWIN_FIXED.artifact)],
)
async def test_the_runtime_deploys_the_chosen_build(
    tmp_path: Path, overrides: dict[str, Any], artifact: Path
) -> None:
    runtime = LocalChainRuntime(settings_for(tmp_path, **overrides), port=0)
    assert runtime.program_artifact() == artifact
    async with runtime:
        program = runtime.program()
        config = program.read("GlobalConfig", program.config)
        assert config is not None
        deployed = runtime.data_dir / "programs" / f"{runtime.program_id}.so"
        assert same_bytes(deployed, artifact)
