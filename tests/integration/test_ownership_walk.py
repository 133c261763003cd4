"""set_volume_ownership and prepare_shared_dir on real trees: symlinks, mounts inside the tree,
interrupted and failed runs, and a non-root owner doing it with only its own rights."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.errors import FailedPrecondition, InvalidArgument, NotFound
from s3csi.kernel.mount import mountinfo
from s3csi.ownership import FsGroupChangePolicy, prepare_shared_dir, set_volume_ownership
from s3csi.ownership.walk import PROGRESS_EVERY, OwnershipReport
from tests.conftest import MOUNTER_UID, WORKLOAD_UID, run_as

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

G = 4321  # fsGroup of these tests: no file on this machine has it by accident


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory every test user can traverse (pytest's tmp_path is root-only), unmounted and
    removed even when the test fails."""
    path = Path(tempfile.mkdtemp(prefix="s3csi-ownership-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    for mount in reversed(mountinfo()):
        if mount.mount_point.startswith(f"{path}/"):
            subprocess.run(["umount", "-l", mount.mount_point], check=False)
    shutil.rmtree(path, ignore_errors=True)


def make_tree(root: Path, dirs: int = 3, files: int = 4) -> list[Path]:
    """root/dN/fM files (mode 0644) and root/dN/sub/x; returns every entry below root."""
    entries: list[Path] = []
    root.mkdir(mode=0o755)
    for d in range(dirs):
        directory = root / f"d{d}"
        (directory / "sub").mkdir(parents=True, mode=0o755)
        entries += [directory, directory / "sub"]
        for f in range(files):
            (directory / f"f{f}").write_text("x")
            (directory / f"f{f}").chmod(0o644)
            entries.append(directory / f"f{f}")
        (directory / "sub" / "x").write_text("x")
        entries.append(directory / "sub" / "x")
    return entries


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_always_gives_every_entry_the_group_and_kubelets_modes(base: Path) -> None:
    root = base / "vol"
    entries = make_tree(root)
    (root / "d0" / "script").write_text("#!/bin/sh\n")
    (root / "d0" / "script").chmod(0o700)
    entries.append(root / "d0" / "script")

    report = set_volume_ownership(str(root), G)

    assert report.walked and report.error_count == 0
    assert report.changed == len(entries) + 1  # and the root
    for entry in [root, *entries]:
        st = entry.lstat()
        assert (st.st_uid, st.st_gid) == (0, G), entry
        if entry.is_dir():
            assert mode(entry) == 0o2775, entry
    assert mode(root / "d0" / "f0") == 0o664
    assert mode(root / "d0" / "script") == 0o760  # kubelet adds no execute bit to files
    # setgid: what is created later inherits the group
    (root / "d1" / "new").write_text("y")
    assert (root / "d1" / "new").stat().st_gid == G

    again = set_volume_ownership(str(root), G)
    assert (again.changed, again.skipped) == (1, len(entries) + 1)  # only "new" lacked group write
    assert mode(root / "d1" / "new") == 0o664


def test_fs_user_and_read_only(base: Path) -> None:
    root = base / "vol"
    entries = make_tree(root, dirs=1, files=2)
    (root / "d0" / "f0").chmod(0o600)

    report = set_volume_ownership(str(root), G, fs_user=MOUNTER_UID, read_only=True)

    assert report.error_count == 0
    for entry in [root, *entries]:
        assert (entry.lstat().st_uid, entry.lstat().st_gid) == (MOUNTER_UID, G)
    assert mode(root / "d0" / "f0") == 0o640  # group read, no write
    assert mode(root / "d0") == 0o2755


def test_symlinks_are_lchowned_and_never_followed(base: Path) -> None:
    outside = base / "outside"
    outside.mkdir(mode=0o700)
    (outside / "secret").write_text("s")
    (outside / "secret").chmod(0o600)
    (outside / "inner").write_text("i")
    (outside / "inner").chmod(0o600)
    root = base / "vol"
    make_tree(root, dirs=1, files=1)
    (root / "to-file").symlink_to(outside / "secret")
    (root / "to-dir").symlink_to(outside)
    (root / "d0" / "dangling").symlink_to(base / "nowhere")
    before = {p: p.lstat() for p in [outside, outside / "secret", outside / "inner"]}

    report = set_volume_ownership(str(root), G, fs_user=MOUNTER_UID)

    assert report.error_count == 0
    for path, st in before.items():
        now = path.lstat()
        assert (now.st_uid, now.st_gid, now.st_mode) == (st.st_uid, st.st_gid, st.st_mode), path
    for link in [root / "to-file", root / "to-dir", root / "d0" / "dangling"]:
        assert (link.lstat().st_uid, link.lstat().st_gid) == (MOUNTER_UID, G), link
        assert link.is_symlink()


def test_mounts_inside_the_tree_are_not_crossed(base: Path) -> None:
    root = base / "vol"
    make_tree(root, dirs=2, files=1)
    tmpfs = root / "d0" / "tmpfs"
    tmpfs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", str(tmpfs)], check=True)
    (tmpfs / "in-tmpfs").write_text("t")
    (tmpfs / "in-tmpfs").chmod(0o600)
    # A bind mount from the same file system has the same st_dev: only the mount table tells it.
    elsewhere = base / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "in-bind").write_text("b")
    (elsewhere / "in-bind").chmod(0o600)
    bind = root / "d1" / "bind"
    bind.mkdir()
    subprocess.run(["mount", "--bind", str(elsewhere), str(bind)], check=True)
    assert bind.stat().st_dev == root.stat().st_dev

    report = set_volume_ownership(str(root), G)

    assert report.error_count == 0
    for untouched in [tmpfs, tmpfs / "in-tmpfs", bind, bind / "in-bind"]:
        assert (untouched.stat().st_gid, mode(untouched)) == (0, 0o700 if untouched.is_dir() else 0o600)
    assert (root / "d1" / "f0").stat().st_gid == G
    assert report.skipped == 2  # the two mount points


def test_interrupted_walk_leaves_the_root_so_on_root_mismatch_walks_again(base: Path) -> None:
    root = base / "vol"
    entries = make_tree(root, dirs=4, files=PROGRESS_EVERY // 2)

    class Interrupted(Exception):
        pass

    def interrupt(report: OwnershipReport) -> None:
        raise Interrupted(report.entries)

    with pytest.raises(Interrupted):
        set_volume_ownership(str(root), G, progress=interrupt)
    changed = [entry for entry in entries if entry.lstat().st_gid == G]
    assert 0 < len(changed) < len(entries)
    assert root.stat().st_gid != G  # the root is the last thing a walk changes

    retry = set_volume_ownership(str(root), G, policy=FsGroupChangePolicy.ON_ROOT_MISMATCH)
    assert retry.walked and retry.error_count == 0
    assert retry.changed == len(entries) - len(changed) + 1
    assert all(entry.lstat().st_gid == G for entry in [root, *entries])

    settled = set_volume_ownership(str(root), G, policy="OnRootMismatch")
    assert not settled.walked and settled.changed == 0


def test_progress_is_reported_inside_one_large_directory(base: Path) -> None:
    root = base / "flat"
    root.mkdir()
    for index in range(2 * PROGRESS_EVERY + 10):
        (root / f"f{index}").touch()
    seen: list[int] = []

    report = set_volume_ownership(str(root), G, progress=lambda r: seen.append(r.entries))

    assert seen == [PROGRESS_EVERY - 1, 2 * PROGRESS_EVERY - 1]  # counted before the entry at hand
    assert report.changed == 2 * PROGRESS_EVERY + 11


def test_on_root_mismatch_walks_when_only_the_mode_differs(base: Path) -> None:
    root = base / "vol"
    make_tree(root, dirs=1, files=1)
    assert set_volume_ownership(str(root), G).error_count == 0
    root.chmod(0o770)  # setgid lost
    report = set_volume_ownership(str(root), G, policy="OnRootMismatch")
    assert report.walked and mode(root) == 0o2770


def _run_as_owner(root: Path, policy: str) -> dict[str, object]:
    code = (
        "import json\n"
        "from s3csi.ownership import set_volume_ownership\n"
        f"r = set_volume_ownership({str(root)!r}, {G}, policy={policy!r})\n"
        "errors = [str(e) for e in r.errors]\n"
        "print(json.dumps({'walked': r.walked, 'changed': r.changed, 'errors': errors}))\n"
    )
    result = run_as(MOUNTER_UID, MOUNTER_UID, [sys.executable, "-c", code], groups=[MOUNTER_UID, G])
    assert result.returncode == 0, result.stderr.decode()
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_non_root_owner_with_a_foreign_file_fails_on_it_then_retries(base: Path) -> None:
    """The tree's owner (uid 1000, member of G, no capabilities) may chgrp and chmod its own entries;
    a root-owned file gives EPERM, named in the report, and the root is left for the retry."""
    root = base / "vol"
    entries = make_tree(root, dirs=2, files=2)
    subprocess.run(["chown", "-R", f"{MOUNTER_UID}:{MOUNTER_UID}", str(root)], check=True)
    foreign = root / "d1" / "foreign"
    foreign.write_text("root's")

    first = _run_as_owner(root, "Always")

    assert first["errors"] == [f"{foreign}: Operation not permitted"]
    assert all(entry.lstat().st_gid == G for entry in entries)
    assert root.stat().st_gid == MOUNTER_UID  # not changed: the walk did not finish cleanly

    os.chown(foreign, MOUNTER_UID, MOUNTER_UID)
    retry = _run_as_owner(root, "OnRootMismatch")
    assert retry == {"walked": True, "changed": 2, "errors": []}  # the foreign file and the root
    assert (root.stat().st_uid, root.stat().st_gid, mode(root)) == (MOUNTER_UID, G, 0o2775)
    assert _run_as_owner(root, "OnRootMismatch")["walked"] is False


def test_bad_roots_raise(base: Path) -> None:
    with pytest.raises(NotFound, match="missing"):
        set_volume_ownership(str(base / "missing"), G)
    (base / "file").write_text("f")
    with pytest.raises(InvalidArgument, match="not a directory"):
        set_volume_ownership(str(base / "file"), G)
    (base / "loop").symlink_to(base / "loop")
    with pytest.raises(FailedPrecondition, match="loop: cannot open the volume root"):
        set_volume_ownership(str(base / "loop"), G)
    with pytest.raises(InvalidArgument, match="fsGroup"):
        set_volume_ownership(str(base), -3)
    with pytest.raises(InvalidArgument, match="fsGroupChangePolicy"):
        set_volume_ownership(str(base), G, policy="Sometimes")


def test_prepare_shared_dir_gives_root_gid_2770_that_the_group_can_use(base: Path) -> None:
    comm = base / "comm"
    prepare_shared_dir(str(comm), MOUNTER_UID)
    prepare_shared_dir(str(comm), MOUNTER_UID)  # idempotent
    st = comm.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, MOUNTER_UID, 0o2770)

    member = run_as(WORKLOAD_UID, WORKLOAD_UID, ["touch", str(comm / "sock")], groups=[MOUNTER_UID])
    assert member.returncode == 0, member.stderr
    assert (comm / "sock").stat().st_gid == MOUNTER_UID  # setgid: the group is inherited
    stranger = run_as(WORKLOAD_UID, WORKLOAD_UID, ["ls", str(comm)])
    assert stranger.returncode != 0


def test_prepare_shared_dir_fixes_an_existing_dir_and_refuses_symlinks(base: Path) -> None:
    cache = base / "cache"
    cache.mkdir(mode=0o757)
    os.chown(cache, WORKLOAD_UID, WORKLOAD_UID)
    prepare_shared_dir(str(cache), MOUNTER_UID)
    st = cache.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, MOUNTER_UID, 0o2770)

    (base / "link").symlink_to(cache)
    with pytest.raises(FailedPrecondition, match="link"):
        prepare_shared_dir(str(base / "link"), MOUNTER_UID)
    with pytest.raises(NotFound, match="parent"):
        prepare_shared_dir(str(base / "no" / "such"), MOUNTER_UID)
