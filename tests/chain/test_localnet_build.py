"""Building the local chain's program (``python -m marketd.chain.localnet.build``): the
committed .so files are what their C sources give, a stale one is reported, and a missing
clang or a compile error fails cleanly."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from marketd.chain.localnet import build
from marketd.chain.localnet.build import TWIN, BuildError


def test_committed_artifact_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    assert build.build_program(tmp_path) == TWIN.artifact.read_bytes()  # the twin by default
    assert (tmp_path / "zmart_twin.so").read_bytes() == TWIN.artifact.read_bytes()


def test_build_checks_one_program_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--check", "--program", "twin-fixed"]) == 0
    out = capsys.readouterr().out
    assert "zmart_twin_fixed.so matches its sources" in out
    assert "zmart_twin.so" not in out


def test_check_reports_a_stale_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out.so"
    assert build.main(["--output", str(output)]) == 0
    assert output.read_bytes() == TWIN.artifact.read_bytes()
    assert build.main(["--check", "--output", str(output)]) == 0
    output.write_bytes(output.read_bytes() + b"\0")
    assert build.main(["--check", "--output", str(output)]) == 1
    assert build.main(["--check", "--output", str(tmp_path / "missing.so")]) == 1
    assert "is stale" in capsys.readouterr().out


def test_build_fails_cleanly_without_clang(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(build.CLANG_ENV, "clang-does-not-exist")
    with pytest.raises(BuildError, match=r"install-clang\.sh"):
        build.find_clang()
    assert build.main(["--check"]) == 2
    assert "not found" in capsys.readouterr().err


def test_compile_errors_surface(tmp_path: Path) -> None:
    (tmp_path / "zmart_twin.c").write_text("this is not C\n")
    with pytest.raises(BuildError, match="clang failed"):
        build.build_program(tmp_path, source_dir=tmp_path)


def test_module_entry_point_checks_every_artifact(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["build", "--check"])
    monkeypatch.delitem(sys.modules, "marketd.chain.localnet.build")
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("marketd.chain.localnet.build", run_name="__main__")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "zmart_twin.so matches" in out and "zmart_twin_fixed.so matches" in out
