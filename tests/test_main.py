"""`python -m marketd` runs the CLI."""

from __future__ import annotations

import runpy
import sys

import pytest


def test_python_dash_m_runs_the_cli(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["marketd", "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("marketd", run_name="__main__")
    assert exited.value.code == 0
    assert "serve" in capsys.readouterr().out
