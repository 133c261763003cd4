"""requirements.lock: what it holds, and the check that an environment is exactly it."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.lock_support import LOCK, check, differences, freeze, normalize, pinned

ROOT = LOCK.parent


@pytest.mark.parametrize(
    ("locked", "installed", "expected"),
    [
        ({"a": "1.0"}, {"a": "1.0"}, []),
        ({"a": "1.0"}, {"a": "1.0.0"}, ["a is 1.0.0, the lock says 1.0"]),
        ({"a": "1.0", "b": "2"}, {"a": "1.0"}, ["b==2 is in the lock but not installed"]),
        ({"a": "1.0"}, {"a": "1.0", "c": "3"}, ["c==3 is installed but not in the lock"]),
        ({}, {}, []),
    ],
)
def test_differences_name_every_package_not_installed_as_locked(
    locked: dict[str, str], installed: dict[str, str], expected: list[str]
) -> None:
    assert differences(locked, installed) == expected


def test_names_compare_normalized_and_versions_exactly() -> None:
    lock = "pyyaml==6.0.4 \\\n    --hash=sha256:00\n    # via s3csi\ntypes-pyyaml==6.0.12\n"
    assert check(lock, "PyYAML==6.0.4\ntypes_PyYAML==6.0.12\n") == []
    assert check(lock, "PyYAML==6.0.4\ntypes_PyYAML==6.0.12.0\n") == [
        "types-pyyaml is 6.0.12.0, the lock says 6.0.12"
    ]


def test_packages_installed_without_a_version_are_differences() -> None:
    assert check("a==1\n", "a==1\n-e /src/b\nc @ file:///c\n") == [
        "'-e /src/b' is installed without a version",
        "'c @ file:///c' is installed without a version",
    ]


def test_normalize_follows_pep_503() -> None:
    assert [normalize(n) for n in ("Jinja2", "ast_serialize", "zope.interface", "a-_.b")] == [
        "jinja2",
        "ast-serialize",
        "zope-interface",
        "a-b",
    ]


def test_every_locked_package_is_pinned_with_hashes() -> None:
    entries = re.split(r"\n(?=[A-Za-z])", LOCK.read_text().split("\n", 2)[2])
    assert len(entries) == len(pinned(LOCK.read_text())) > 50
    for entry in entries:
        assert "==" in entry.splitlines()[0], entry
        assert "--hash=sha256:" in entry, f"no hash for {entry.splitlines()[0]}"


def test_the_lock_holds_the_build_requirements_pip_and_the_pinned_moto() -> None:
    locked = pinned(LOCK.read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = [re.split(r"[<>=\[; ]", r, maxsplit=1)[0] for r in project["build-system"]["requires"]]
    assert {normalize(name) for name in [*build, "pip"]} <= locked.keys()
    (moto,) = project["project"]["optional-dependencies"]["demo"]
    assert moto == f"moto[server]=={locked['moto']}"


def test_the_environment_running_the_tests_is_exactly_the_lock() -> None:
    """`make test` runs in a venv built from the lock: any drift (an upgraded or extra package) fails here."""
    assert check(LOCK.read_text(), freeze()) == []


RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"


def _hashes(text: str) -> dict[str, set[str]]:
    """The sha256 hashes of each pinned package of a lock, by normalized name."""
    found: dict[str, set[str]] = {}
    for entry in re.split(r"\n(?=[A-Za-z])", text):
        name = entry.split("==", 1)[0]
        if "==" in entry.splitlines()[0]:
            found[normalize(name)] = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", entry))
    return found


def test_the_runtime_lock_has_the_versions_and_hashes_of_requirements_lock() -> None:
    """The image installs requirements/runtime.lock: the same packages as the tests, at the same versions."""
    runtime, full = pinned(RUNTIME_LOCK.read_text()), pinned(LOCK.read_text())
    assert runtime.keys() <= full.keys()
    assert {name: full[name] for name in runtime} == runtime
    runtime_hashes, full_hashes = _hashes(RUNTIME_LOCK.read_text()), _hashes(LOCK.read_text())
    assert runtime_hashes.keys() == runtime.keys()
    for name, hashes in runtime_hashes.items():
        assert hashes and hashes == full_hashes[name], name


def test_the_runtime_lock_holds_the_dependencies_and_build_requirements_but_no_test_tool() -> None:
    runtime = pinned(RUNTIME_LOCK.read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requires = [*project["project"]["dependencies"], *project["build-system"]["requires"], "pip"]
    assert {normalize(re.split(r"[<>=\[; ]", r, maxsplit=1)[0]) for r in requires} <= runtime.keys()
    assert not {"moto", "pytest", "mypy", "ruff", "hypothesis", "boto3"} & runtime.keys()
