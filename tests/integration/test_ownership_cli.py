"""``s3csi ownership apply`` as a real process: exit codes, the summary, one-line errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.mountflags import MAX_ID
from tests.conftest import MOUNTER_UID, run_as

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

G = 4321


def s3csi(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3csi", "ownership", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def volume() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="s3csi-ownership-cli-", dir="/tmp"))
    base.chmod(0o755)
    root = base / "vol"
    (root / "a" / "b").mkdir(parents=True)
    for name in ["a/f1", "a/b/f2", "f3"]:
        (root / name).write_text(name)
    yield root
    shutil.rmtree(base, ignore_errors=True)


def test_apply_then_on_root_mismatch_skips(volume: Path) -> None:
    first = s3csi("apply", str(volume), "--fs-group", str(G), "--fs-user", str(MOUNTER_UID))
    assert first.returncode == 0, first.stderr
    summary = rf"{re.escape(str(volume))}: 6 entries changed, 0 skipped in \d+\.\d\d s \(Always\)\n"
    assert re.fullmatch(summary, first.stdout), first.stdout
    assert first.stderr == ""  # no progress line for a walk this short
    assert (volume / "a" / "b" / "f2").stat().st_gid == G
    assert (volume / "a" / "b" / "f2").stat().st_uid == MOUNTER_UID

    second = s3csi("apply", str(volume), "--fs-group", str(G), "--policy", "OnRootMismatch")
    assert second.returncode == 0
    assert second.stdout.startswith(f"{volume}: root already matches, walk skipped (OnRootMismatch)")

    read_only = s3csi("apply", str(volume), "--fs-group", str(G + 1), "--read-only")
    assert read_only.returncode == 0
    assert "6 entries changed" in read_only.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--fs-group", "staff"],
            f"argument --fs-group: must be a numeric ID from 0 to {MAX_ID}, not 'staff'",
        ),
        (["--fs-group", "-5"], "argument --fs-group: must be a numeric ID"),
        (["--fs-group", "4294967295"], "argument --fs-group: must be a numeric ID"),
        (["--fs-group", str(MAX_ID + 1)], "argument --fs-group: must be a numeric ID"),
        (["--fs-group", "1", "--fs-user", "x"], "argument --fs-user: must be a numeric ID"),
        (["--fs-group", "1", "--policy", "Never"], "argument --policy: invalid choice: 'Never'"),
        ([], "the following arguments are required: --fs-group"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(volume: Path, argv: list[str], message: str) -> None:
    result = s3csi("apply", str(volume), *argv)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stdout == ""
    assert (volume / "f3").stat().st_gid == 0  # nothing was touched


@pytest.mark.parametrize(
    ("name", "message", "code"), [("missing", "no such directory", 1), ("f3", "not a directory", 2)]
)
def test_bad_path_is_one_line(volume: Path, name: str, message: str, code: int) -> None:
    result = s3csi("apply", str(volume / name), "--fs-group", "1")
    assert result.returncode == code
    assert result.stderr == f"s3csi ownership: error: {volume / name}: {message}\n"


def test_entries_that_cannot_be_changed_are_named_and_exit_1(volume: Path) -> None:
    subprocess.run(["chown", "-R", f"{MOUNTER_UID}:{MOUNTER_UID}", str(volume)], check=True)
    (volume / "a" / "root-owned").write_text("r")
    argv = [sys.executable, "-m", "s3csi", "ownership", "apply", str(volume), "--fs-group", str(G)]

    result = run_as(MOUNTER_UID, MOUNTER_UID, argv, groups=[MOUNTER_UID, G])

    assert result.returncode == 1
    assert (
        result.stderr.decode() == f"s3csi ownership: {volume / 'a' / 'root-owned'}: Operation not permitted\n"
    )
    assert result.stdout.decode().startswith(
        f"{volume}: 5 entries changed, 0 skipped, 1 errors (root left unchanged so the next run walks again)"
    )
    assert volume.stat().st_gid == MOUNTER_UID
