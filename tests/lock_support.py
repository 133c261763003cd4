"""Is an environment exactly requirements.lock? ``python -m tests.lock_support requirements.lock``.

`make install` runs it on the venv it just built, and tests/unit/test_lock.py on the environment running the
tests: every package the lock lists is installed at the version the lock gives, character for character, and
nothing else is installed (s3csi itself aside). Names compare in their normalized form (PEP 503: pip freeze
prints ``PyYAML``, the lock ``pyyaml``); versions do not.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"
PROJECT = "s3csi"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(text: str) -> dict[str, str]:
    """``name==version`` lines (a lock, or ``pip freeze``), by normalized name; comments, hashes and other
    options skipped."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            found[normalize(match[1])] = match[2]
    return found


def unpinned(freeze: str) -> list[str]:
    """The lines of ``pip freeze`` that install something without a version: ``-e PATH``, ``name @ URL``."""
    return [
        line
        for line in freeze.splitlines()
        if line.strip() and not line.startswith("#") and not _PIN.match(line)
    ]


def differences(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """One line per package that is not installed as locked, sorted by name."""
    problems = []
    for name in sorted(locked.keys() | installed.keys()):
        want, have = locked.get(name), installed.get(name)
        if want is None:
            problems.append(f"{name}=={have} is installed but not in the lock")
        elif have is None:
            problems.append(f"{name}=={want} is in the lock but not installed")
        elif want != have:
            problems.append(f"{name} is {have}, the lock says {want}")
    return problems


def freeze(python: str = sys.executable) -> str:
    """``pip freeze`` of ``python``'s environment: every package, pip itself too, s3csi left out."""
    argv = [python, "-m", "pip", "freeze", "--all", "--exclude", PROJECT]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def check(lock_text: str, freeze_text: str) -> list[str]:
    problems = [f"{line!r} is installed without a version" for line in unpinned(freeze_text)]
    return problems + differences(pinned(lock_text), pinned(freeze_text))


def main(argv: list[str]) -> int:
    lock = Path(argv[0]) if argv else LOCK
    problems = check(lock.read_text(), freeze())
    for problem in problems:
        print(f"{sys.prefix}: {problem}", file=sys.stderr)
    if problems:
        print(f"{sys.prefix} is not exactly {lock}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
