"""The x87 cleaner the local chain calls after LiteSVM runs a program (chain/localnet/fpu.py)."""

from __future__ import annotations

import mmap
import platform

from marketd.chain.localnet import fpu


def test_off_x86_the_cleaner_does_nothing() -> None:
    assert fpu.x87_cleaner("aarch64") is fpu._nothing
    assert fpu._nothing() is None


def test_without_an_executable_page_the_cleaner_does_nothing() -> None:
    def forbidden() -> mmap.mmap:
        raise PermissionError("W^X")

    assert fpu.x87_cleaner("x86_64", forbidden) is fpu._nothing


def test_the_emms_function_is_built_from_its_three_bytes() -> None:
    clean = fpu.x87_cleaner("x86_64")
    assert clean is not fpu._nothing
    assert bytes(clean.page[:3]) == fpu.EMMS_RET  # type: ignore[attr-defined]


def test_the_process_cleaner_fits_this_machine_and_returns() -> None:
    has_x87 = platform.machine() in ("x86_64", "AMD64")
    assert (fpu.restore_x87 is not fpu._nothing) == has_x87
    fpu.restore_x87()  # returns (a wrong byte would crash the process)
