"""Rebuild the local program: ``python -m marketd.chain.localnet.build [--check] [--program P]``.

Compiles ``program/zmart_twin.c`` (the faithful twin of zmart_core) twice, as deployed and with
``-DZMART_FIXED_PROGRAM`` for the intended behaviour of its runtime defects, with clang-14 for
``bpfel`` and links each object with :mod:`marketd.chain.localnet.sbf_link` into
``zmart_twin.so`` / ``zmart_twin_fixed.so``. ``--check`` rebuilds in a temporary directory and
fails when the bytes differ from a committed artifact, so CI proves the artifacts come from the
sources. clang runs from the program directory with relative paths and no debug info, which
keeps its output byte-identical across machines with the same clang version.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from marketd.chain.localnet.sbf_link import link

LOCALNET_DIR = Path(__file__).resolve().parent
PROGRAM_DIR = LOCALNET_DIR / "program"
CLANG_ENV = "MARKETD_CLANG"
DEFAULT_CLANG = "clang-14"
CLANG_FLAGS = (
    "-target",
    "bpfel",
    "-mcpu=v1",
    "-O2",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-addrsig",
    "-Wall",
    "-Wextra",
    "-Werror",
)


@dataclass(frozen=True)
class ProgramBuild:
    """One SBF artifact: which C file, which extra clang flags, where the .so lives."""

    name: str
    source: str
    artifact: Path
    extra_flags: tuple[str, ...] = ()


TWIN = ProgramBuild("twin", "zmart_twin.c", LOCALNET_DIR / "zmart_twin.so")
TWIN_FIXED = ProgramBuild(
    "twin-fixed", "zmart_twin.c", LOCALNET_DIR / "zmart_twin_fixed.so", ("-DZMART_FIXED_PROGRAM",)
)
PROGRAMS = {build.name: build for build in (TWIN, TWIN_FIXED)}


def program_artifact(*, fixed: bool = False) -> Path:
    """The committed .so a local chain deploys: the twin as deployed, or with ``fixed`` the
    intended behaviour of zmart_core's runtime defects (sell_shares pays out) instead of the
    deployed outcome (PrivilegeEscalation)."""
    return (TWIN_FIXED if fixed else TWIN).artifact


class BuildError(RuntimeError):
    """The program could not be built."""


def find_clang() -> str:
    """Path of clang-14 (or ``$MARKETD_CLANG``); CI installs it with scripts/install-clang.sh."""
    name = os.environ.get(CLANG_ENV, DEFAULT_CLANG)
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"{name} not found; run scripts/install-clang.sh (apt-get clang-14)")
    return path


def compile_object(
    clang: str,
    source_dir: Path,
    source_name: str,
    output: Path,
    extra_flags: Sequence[str] = (),
) -> bytes:
    """Compile one C file into a BPF relocatable object and return its bytes."""
    command = [clang, *CLANG_FLAGS, *extra_flags, "-c", source_name, "-o", str(output)]
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        command, cwd=source_dir, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"clang failed:\n{result.stderr}")
    return output.read_bytes()


def build_program(
    work_dir: Path, source_dir: Path = PROGRAM_DIR, target: ProgramBuild = TWIN
) -> bytes:
    """Compile and link into ``work_dir``; return the shared object bytes."""
    obj_path = work_dir / target.artifact.with_suffix(".o").name
    obj = compile_object(find_clang(), source_dir, target.source, obj_path, target.extra_flags)
    program = link(obj)
    (work_dir / target.artifact.name).write_bytes(program)
    return program


def _check_or_write(target: ProgramBuild, output: Path, check: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        program = build_program(Path(tmp), target=target)
    if check:
        committed = output.read_bytes() if output.exists() else b""
        if committed != program:
            print(f"{output} is stale: rebuild with `python -m marketd.chain.localnet.build`")
            return 1
        print(f"{output} matches its sources ({len(program)} bytes)")
        return 0
    output.write_bytes(program)
    print(f"wrote {output} ({len(program)} bytes)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if a committed .so differs from a rebuild"
    )
    parser.add_argument(
        "--program",
        choices=sorted(PROGRAMS),
        help="only this build (default: all; with --output: twin)",
    )
    parser.add_argument("--output", type=Path, default=None, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.output is not None:
        targets = [(PROGRAMS[options.program or TWIN.name], options.output)]
    elif options.program is not None:
        targets = [(PROGRAMS[options.program], PROGRAMS[options.program].artifact)]
    else:
        targets = [(target, target.artifact) for target in PROGRAMS.values()]
    status = 0
    try:
        for target, output in targets:
            status = max(status, _check_or_write(target, output, options.check))
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
