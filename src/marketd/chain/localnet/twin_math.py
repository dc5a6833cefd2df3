"""The twin program's LMSR math compiled for the host and called through ctypes.

``program/lmsr_host.c`` includes the very ``lmsr.h`` the SBF twin is built from, so a call
here runs the same C as the program, only natively: the property test checks thousands of
cases against an independent model in seconds, and ``bench/chain.py`` times one call. The
library is built on demand with the same clang as the program (no committed binary).
"""

from __future__ import annotations

import ctypes
import subprocess
from dataclasses import dataclass
from pathlib import Path

from marketd.chain.localnet.build import PROGRAM_DIR, BuildError, find_clang

HOST_SOURCE = "lmsr_host.c"
HOST_FLAGS = (
    "-O2",
    "-shared",
    "-fPIC",
    "-fvisibility=hidden",
    "-nostdlib",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-function",
)

_U64 = ctypes.c_uint64
_P64 = ctypes.POINTER(ctypes.c_uint64)


class MathError(Exception):
    """The C math returned a program error number (6000 + ErrorCode index)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"program error {code}")
        self.code = code


def build_host_library(work_dir: Path) -> Path:
    """Compile ``lmsr_host.c`` into ``work_dir/liblmsr_twin.so``."""
    output = work_dir / "liblmsr_twin.so"
    command = [find_clang(), *HOST_FLAGS, HOST_SOURCE, "-o", str(output)]
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        command, cwd=PROGRAM_DIR, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"clang failed:\n{result.stderr}")
    return output


@dataclass(frozen=True)
class FeeSplit:
    protocol: int
    resolver: int
    lp: int
    total: int


class HostLmsr:
    """Typed wrappers over the exported C functions; errors raise :class:`MathError`."""

    def __init__(self, library: Path) -> None:
        self._lib = ctypes.CDLL(str(library))

    def _call(self, name: str, *args: int, outputs: int = 1) -> list[int]:
        cells = [_U64(0) for _ in range(outputs)]
        function = getattr(self._lib, name)
        function.restype = _U64
        err = function(*[_U64(a) for a in args], *[ctypes.byref(c) for c in cells])
        if err:
            raise MathError(int(err))
        return [int(c.value) for c in cells]

    def fp_mul(self, a: int, b: int) -> int:
        return self._call("twin_fp_mul", a, b)[0]

    def fp_div(self, a: int, b: int) -> int:
        return self._call("twin_fp_div", a, b)[0]

    def exp(self, x: int) -> int:
        return self._call("twin_exp", x)[0]

    def exp_neg(self, x: int) -> int:
        return self._call("twin_exp_neg", x)[0]

    def ln(self, x: int) -> int:
        return self._call("twin_ln", x)[0]

    def log_sum_exp(self, x: int, y: int) -> int:
        return self._call("twin_log_sum_exp", x, y)[0]

    def cost(self, q_yes: int, q_no: int, b: int) -> int:
        return self._call("twin_cost", q_yes, q_no, b)[0]

    def yes_price(self, q_yes: int, q_no: int, b: int) -> int:
        return self._call("twin_yes_price", q_yes, q_no, b)[0]

    def buy(self, q_yes: int, q_no: int, b: int, yes: bool, budget: int) -> tuple[int, int]:
        """(shares, pre-fee cost) that a pre-fee budget buys."""
        shares, cost = self._call("twin_buy", q_yes, q_no, b, int(yes), budget, outputs=2)
        return shares, cost

    def shares_for_cost(
        self, q_yes: int, q_no: int, b: int, yes: bool, target: int
    ) -> tuple[int, list[tuple[int, int]]]:
        """The bisection's answer and its [mid, C(q+mid) - C(q)] trace."""
        trace = (_U64 * 128)()
        shares, length = _U64(0), _U64(0)
        function = self._lib.twin_shares_for_cost
        function.restype = _U64
        err = function(
            _U64(q_yes),
            _U64(q_no),
            _U64(b),
            _U64(int(yes)),
            _U64(target),
            ctypes.byref(shares),
            trace,
            ctypes.byref(length),
        )
        if err:
            raise MathError(int(err))
        pairs = [(int(trace[2 * i]), int(trace[2 * i + 1])) for i in range(length.value)]
        return int(shares.value), pairs

    def sell(self, q_yes: int, q_no: int, b: int, yes: bool, shares: int) -> int:
        return self._call("twin_sell", q_yes, q_no, b, int(yes), shares)[0]

    def buy_budget(self, target_cost: int) -> int:
        return self._call("twin_buy_budget", target_cost)[0]

    def fee_split(self, amount: int, protocol: int, resolver: int, lp: int) -> FeeSplit:
        out = (_U64 * 4)()
        function = self._lib.twin_fee_split
        function.restype = _U64
        err = function(_U64(amount), _U64(protocol), _U64(resolver), _U64(lp), out)
        if err:
            raise MathError(int(err))
        return FeeSplit(int(out[0]), int(out[1]), int(out[2]), int(out[3]))

    def check_bounded_loss(self, b: int, initial: int, current: int) -> None:
        function = self._lib.twin_bounded_loss
        function.restype = _U64
        err = function(_U64(b), _U64(initial), _U64(current))
        if err:
            raise MathError(int(err))

    def mul_div_truncated(self, a: int, b: int, d: int) -> int:
        function = self._lib.twin_mul_div_truncated
        function.restype = _U64
        return int(function(_U64(a), _U64(b), _U64(d)))
