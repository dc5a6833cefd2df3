"""Choosing the local chain's program: the stand-in by default, the twin on request, the
twin's fixed build behind the documented switch (settings, CLI, runtime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from marketd.chain.localnet import build
from marketd.chain.localnet.build import (
    STANDIN,
    TWIN,
    TWIN_FIXED,
    program_artifact,
)
from marketd.chain.localnet.runtime import LocalChainRuntime
from marketd.cli import build_parser, local_chain_settings
from marketd.config import Settings

pytestmark = pytest.mark.integration  # runs the local chain runtime


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **overrides)


def test_artifacts_by_name() -> None:
    assert program_artifact() == TWIN.artifact  # the default since #17
    assert program_artifact("standin") == STANDIN.artifact
    assert program_artifact("twin") == TWIN.artifact
    assert program_artifact("twin", fixed=True) == TWIN_FIXED.artifact
    with pytest.raises(ValueError, match="twin only"):
        program_artifact("standin", fixed=True)
    with pytest.raises(ValueError, match="unknown local program"):
        program_artifact("zmart")


def test_settings_default_to_the_twin_and_refuse_a_fixed_standin(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert (settings.local_chain_program, settings.local_chain_fixed_program) == ("twin", False)
    with pytest.raises(ValidationError, match="twin only"):
        settings_for(tmp_path, local_chain_program="standin", local_chain_fixed_program=True)
    fixed = settings_for(tmp_path, local_chain_program="twin", local_chain_fixed_program=True)
    assert fixed.local_chain_fixed_program


@pytest.mark.parametrize("command", ["demo", "run"])
def test_cli_switches(tmp_path: Path, command: str) -> None:
    base = settings_for(tmp_path)
    plain = local_chain_settings(base, build_parser().parse_args([command]))
    assert plain is base
    args = build_parser().parse_args([command, "--program", "twin", "--fixed-program"])
    chosen = local_chain_settings(base, args)
    assert (chosen.local_chain_program, chosen.local_chain_fixed_program) == ("twin", True)
    assert chosen.data_dir == base.data_dir
    with pytest.raises(ValidationError):
        local_chain_settings(
            base, build_parser().parse_args([command, "--program", "standin", "--fixed-program"])
        )


def same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("overrides", "artifact"),
    [
        ({}, TWIN.artifact),
        ({"local_chain_program": "standin"}, STANDIN.artifact),
        ({"local_chain_program": "twin", "local_chain_fixed_program": True}, TWIN_FIXED.artifact),
    ],
)
async def test_the_runtime_deploys_the_chosen_program(
    tmp_path: Path, overrides: dict[str, Any], artifact: Path
) -> None:
    runtime = LocalChainRuntime(settings_for(tmp_path, **overrides), port=0)
    assert runtime.program_artifact() == artifact
    async with runtime:
        # the twin initialises GlobalConfig like the stand-in (same accounts and layout)
        program = runtime.program()
        config = program.read("GlobalConfig", program.config)
        assert config is not None
        deployed = runtime.data_dir / "programs" / f"{runtime.program_id}.so"
        assert same_bytes(deployed, artifact)


def test_build_checks_one_program_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--check", "--program", "twin-fixed"]) == 0
    out = capsys.readouterr().out
    assert "zmart_twin_fixed.so matches its sources" in out
    assert "zmart_standin.so" not in out
