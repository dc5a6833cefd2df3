"""The committed lock files agree with pyproject.toml, and this environment was installed from them.

`make lock` re-resolves requirements.txt and requirements-dev.txt; a change to pyproject.toml
that is not followed by it fails here instead of installing something else on a fresh machine.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def pins(lock: str) -> dict[str, tuple[str, int]]:
    """Each pinned package of a lock file: its version and how many hashes it carries."""
    found: dict[str, tuple[str, int]] = {}
    current: str | None = None
    for line in (REPO / lock).read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in found or found[current][0] == match.group(2), line
            found[current] = (match.group(2), found.get(current, ("", 0))[1])
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
        elif line.strip() and not line.lstrip().startswith("#"):
            assert line.startswith(" "), f"{lock}: unexpected line {line!r}"
    return found


def requirements(*groups: str) -> list[Requirement]:
    listed: list[str] = []
    for group in groups:
        if group == "runtime":
            listed += PYPROJECT["project"]["dependencies"]
        elif group == "build":
            listed += PYPROJECT["build-system"]["requires"]
        else:
            listed += PYPROJECT["project"]["optional-dependencies"][group]
    return [Requirement(text) for text in listed]


@pytest.mark.parametrize(
    ("lock", "groups"),
    [
        ("requirements.txt", ("runtime", "build")),
        ("requirements-dev.txt", ("runtime", "build", "dev")),
    ],
)
def test_every_declared_requirement_is_pinned_within_its_range(
    lock: str, groups: tuple[str, ...]
) -> None:
    pinned = pins(lock)
    for requirement in requirements(*groups):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is declared but not in {lock}"
        version, hashes = pinned[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name}=={version}, outside {requirement}: run `make lock`"
        )
        assert hashes > 0, f"{name} has no hash in {lock}"


def test_every_pin_carries_a_hash() -> None:
    for lock in ("requirements.txt", "requirements-dev.txt"):
        unhashed = [name for name, (_, hashes) in pins(lock).items() if hashes == 0]
        assert unhashed == [], f"{lock}: {unhashed}"


def test_the_image_runs_the_versions_the_tests_run() -> None:
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert set(runtime) <= set(dev)
    assert {name: runtime[name][0] for name in runtime} == {name: dev[name][0] for name in runtime}


def test_this_environment_was_installed_from_the_lock() -> None:
    """What the tests import is what the lock says (a stale venv or an unlocked install fails)."""
    wrong = {}
    for name, (version, _) in pins("requirements-dev.txt").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a platform-specific pin (e.g. colorama on Windows)
        if installed != version:
            wrong[name] = (installed, version)
    assert wrong == {}, f"installed vs locked: {wrong}; run `make install` again"
