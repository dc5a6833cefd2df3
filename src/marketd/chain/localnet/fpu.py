"""Empty the x87 register stack after LiteSVM ran a program in this process.

LiteSVM runs programs compiled to machine code in this process. Some of them (the SPL token
and associated-token programs, on x86_64) leave every x87 register tagged as in use, the
state MMX code leaves without `emms`. The next x87 load overflows the stack and gives NaN.
SQLite does its REAL comparisons in `long double`, so `max(CAST('0.929007731' AS REAL))`
right after such a run returned NaN, which SQLite hands back as NULL. That was the embedded
backend's NULL chart `high`, seen only in test runs where such a program had run before.
The failed load leaves the stack usable again, so only the first query after a run was hit.

`emms` marks every x87 register empty and changes nothing else (control word, rounding,
MXCSR). C has no call for it: `fesetenv` keeps the tag word as it finds it, and `fninit`
would also reset the control word. So the instruction is run from a three-byte function
(`emms; ret`) in an executable page, built once. Each call costs about a microsecond through
ctypes. Elsewhere (no x87, or no page that may execute) cleaning is a no-op.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
from collections.abc import Callable

EMMS_RET = b"\x0f\x77\xc3"
"""x86_64 machine code: `emms` (0F 77), then `ret` (C3)."""


def _nothing() -> None:
    return None


def x87_cleaner(
    machine: str, allocate: Callable[[], mmap.mmap] | None = None
) -> Callable[[], None]:
    """A function that empties the x87 stack on `machine`, or one that does nothing."""
    if machine not in ("x86_64", "AMD64"):
        return _nothing
    try:
        page = (allocate or _executable_page)()
    except OSError:  # a system that forbids writable executable pages
        return _nothing
    page.write(EMMS_RET)
    function = ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
    function.page = page  # type: ignore[attr-defined]  # the code lives as long as the function
    return function


def _executable_page() -> mmap.mmap:
    prot = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
    return mmap.mmap(-1, mmap.PAGESIZE, prot=prot)


restore_x87 = x87_cleaner(platform.machine())
"""Call after every LiteSVM call that runs a program (see the module doc)."""
