"""Rebuild the stand-in program: ``python -m marketd.chain.localnet.build [--check]``.

Compiles ``program/zmart_standin.c`` with clang-14 for ``bpfel`` and links the object with
:mod:`marketd.chain.localnet.sbf_link` into ``zmart_standin.so``. ``--check`` rebuilds in
a temporary directory and fails when the bytes differ from the committed artifact, so CI
proves the artifact comes from the sources. clang runs from the program directory with
relative paths and no debug info, which keeps its output byte-identical across machines
with the same clang version.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from marketd.chain.localnet.sbf_link import link

LOCALNET_DIR = Path(__file__).resolve().parent
PROGRAM_DIR = LOCALNET_DIR / "program"
SOURCE_NAME = "zmart_standin.c"
ARTIFACT = LOCALNET_DIR / "zmart_standin.so"
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


def build_program(work_dir: Path, source_dir: Path = PROGRAM_DIR) -> bytes:
    """Compile and link into ``work_dir``; return the shared object bytes."""
    obj = compile_object(find_clang(), source_dir, SOURCE_NAME, work_dir / "zmart_standin.o")
    program = link(obj)
    (work_dir / ARTIFACT.name).write_bytes(program)
    return program


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed .so differs from a rebuild"
    )
    parser.add_argument("--output", type=Path, default=ARTIFACT, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            program = build_program(Path(tmp))
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 2
    if options.check:
        committed = options.output.read_bytes() if options.output.exists() else b""
        if committed != program:
            print(
                f"{options.output} is stale: rebuild with `python -m marketd.chain.localnet.build`"
            )
            return 1
        print(f"{options.output} matches its sources ({len(program)} bytes)")
        return 0
    options.output.write_bytes(program)
    print(f"wrote {options.output} ({len(program)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
