"""SetVolumeOwnership: walk a volume and apply the decisions of ``policy`` to every entry.

The walk never follows a symlink (entries are lstat'ed, chowned with AT_SYMLINK_NOFOLLOW, symlinks
never chmodded), never leaves the root's file system nor enters a mount point inside the tree, and changes
the root directory last — and only when every other entry succeeded — so that OnRootMismatch, which
trusts the root, starts the walk again after an interrupted or failed run.

Speed: one lstat per non-directory, a chown and a chmod only where ``decide`` asks for them, all
relative to an open directory descriptor so the kernel does not resolve the whole path again; a
directory is opened once (O_NOFOLLOW) and changed through its descriptor with fchown/fchmod.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from s3csi.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from s3csi.kernel.mount import mountinfo
from s3csi.ownership.policy import Change, FsGroupChangePolicy, OwnershipTarget, decide, root_matches

# Callbacks are made at most once per this many entries, so they cost nothing on the hot path.
PROGRESS_EVERY = 2048
# A report keeps the first errors only: a volume of unreadable files must not exhaust memory.
MAX_KEPT_ERRORS = 100

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_OPEN_SUBDIR = _OPEN_DIR | os.O_NOFOLLOW


@dataclass(frozen=True)
class EntryError:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class OwnershipReport:
    """What a call did. ``walked`` is False when OnRootMismatch found the root already right."""

    path: str
    walked: bool = False
    changed: int = 0  # entries that needed a chown and/or a chmod
    skipped: int = 0  # entries already right, mount points inside the tree and entries on other devices
    error_count: int = 0
    errors: list[EntryError] = field(default_factory=list)  # the first MAX_KEPT_ERRORS
    seconds: float = 0.0

    @property
    def entries(self) -> int:
        return self.changed + self.skipped + self.error_count

    def add_error(self, path: str, exc: OSError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(EntryError(path, exc.strerror or str(exc)))


ProgressCallback = Callable[[OwnershipReport], None]


def set_volume_ownership(
    path: str,
    fs_group: int,
    fs_user: int | None = None,
    policy: FsGroupChangePolicy | str = FsGroupChangePolicy.ALWAYS,
    read_only: bool = False,
    *,
    progress: ProgressCallback | None = None,
) -> OwnershipReport:
    """Give the directory tree at ``path`` the group ``fs_group`` (and owner ``fs_user``) — kubelet's
    SetVolumeOwnership with fsUser.

    ``path`` itself is the volume and may be reached through a symlink; nothing below it is.
    ``progress`` is called with the report so far every PROGRESS_EVERY entries; an exception it raises
    stops the walk (the root stays unchanged). Failures on single entries are collected in the report
    (the walk goes on, the root is then left unchanged); a root that cannot be opened raises.
    """
    target = OwnershipTarget(fs_group=fs_group, fs_user=fs_user, read_only=read_only)
    change_policy = FsGroupChangePolicy.parse(policy)
    started = time.monotonic()
    root = os.path.realpath(path)
    report = OwnershipReport(path=root)
    root_fd = _open_root(path)
    try:
        root_stat = os.fstat(root_fd)
        if change_policy is FsGroupChangePolicy.ON_ROOT_MISMATCH and root_matches(
            root_stat.st_mode, root_stat.st_uid, root_stat.st_gid, target
        ):
            report.skipped = 1
        else:
            report.walked = True
            _Walk(root, root_stat.st_dev, target, report, progress).run(root_fd)
            if report.error_count == 0:
                _change_fd(root_fd, root, root_stat, target, report)
    finally:
        os.close(root_fd)
    report.seconds = time.monotonic() - started
    return report


def _open_root(path: str) -> int:
    try:
        return os.open(path, _OPEN_DIR)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such directory") from None
    except NotADirectoryError:
        raise InvalidArgument(f"{path}: not a directory") from None
    except PermissionError:
        raise PermissionDenied(f"{path}: permission denied") from None
    except OSError as exc:
        raise FailedPrecondition(f"{path}: cannot open the volume root: {exc.strerror}") from None


def _change_fd(
    fd: int, path: str, st: os.stat_result, target: OwnershipTarget, report: OwnershipReport
) -> None:
    change = decide(st.st_mode, st.st_uid, st.st_gid, target)
    if change is None:
        report.skipped += 1
        return
    try:
        if change.owner is not None:
            os.fchown(fd, *change.owner)
        if change.mode is not None:
            os.fchmod(fd, change.mode)
    except OSError as exc:
        report.add_error(path, exc)
    else:
        report.changed += 1


def _mount_points_below(root: str) -> frozenset[str]:
    """Mount points strictly inside ``root``: a bind mount from the same file system has the same
    st_dev, so the device check alone would cross it."""
    prefix = root.rstrip("/") + "/"
    return frozenset(m.mount_point for m in mountinfo() if m.mount_point.startswith(prefix))


class _Walk:
    def __init__(
        self,
        root: str,
        device: int,
        target: OwnershipTarget,
        report: OwnershipReport,
        progress: ProgressCallback | None,
    ) -> None:
        self.root = root
        self.device = device
        self.target = target
        self.report = report
        self.progress = progress
        self.mount_points = _mount_points_below(root)
        self.mount_parents = frozenset(os.path.dirname(m) for m in self.mount_points)
        self.next_progress = PROGRESS_EVERY
        self.pending_subdirs: list[str] = []
        # decide() is pure and most entries of a volume share a few (mode, uid, gid): memoised, it
        # leaves the per-entry cost to the syscalls.
        self.decisions: dict[tuple[int, int, int], Change | None] = {}

    def run(self, root_fd: int) -> None:
        self.scan(root_fd, self.root)
        pending = self.pending_subdirs
        while pending:
            self.visit_subdir(pending.pop())

    def visit_subdir(self, path: str) -> None:
        report = self.report
        if path in self.mount_points:
            report.skipped += 1
            return
        try:
            fd = os.open(path, _OPEN_SUBDIR)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # replaced by a symlink since it was listed
                report.skipped += 1
            else:
                report.add_error(path, exc)
            return
        try:
            st = os.fstat(fd)
            if st.st_dev != self.device:
                report.skipped += 1
                return
            _change_fd(fd, path, st, self.target, report)
            self.scan(fd, path)
        finally:
            os.close(fd)

    def scan(self, fd: int, dir_path: str) -> None:
        """Change every non-directory entry of the open directory ``fd``; queue its subdirectories."""
        report = self.report
        target = self.target
        device = self.device
        decisions = self.decisions
        pending = self.pending_subdirs
        check_mounts = dir_path in self.mount_parents
        prefix = dir_path + "/" if dir_path != "/" else "/"
        chown = os.chown
        chmod = os.chmod
        changed = skipped = 0
        try:
            entries = os.scandir(fd)
        except OSError as exc:
            report.add_error(dir_path, exc)
            return
        with entries:
            for count, entry in enumerate(entries, 1):
                if count % PROGRESS_EVERY == 0 and self.progress is not None:
                    # A directory of a million files must not keep the progress line still.
                    report.changed += changed
                    report.skipped += skipped
                    changed = skipped = 0
                    self.report_progress()
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(prefix + name)
                        continue
                    if check_mounts and prefix + name in self.mount_points:
                        skipped += 1
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if st.st_dev != device:
                        skipped += 1
                        continue
                    key = (st.st_mode, st.st_uid, st.st_gid)
                    try:
                        change = decisions[key]
                    except KeyError:
                        change = decisions[key] = decide(*key, target)
                    if change is None:
                        skipped += 1
                        continue
                    if change.owner is not None:
                        chown(name, *change.owner, dir_fd=fd, follow_symlinks=False)
                    if change.mode is not None:
                        # Not a symlink when lstat'ed; fchmodat cannot refuse one (no AT_SYMLINK_NOFOLLOW
                        # on Linux), the window is the one kubelet has too.
                        chmod(name, change.mode, dir_fd=fd)
                    changed += 1
                except OSError as exc:
                    report.add_error(prefix + name, exc)
        report.changed += changed
        report.skipped += skipped
        self.tick()

    def tick(self) -> None:
        if self.report.entries >= self.next_progress:
            self.report_progress()

    def report_progress(self) -> None:
        if self.progress is not None:
            self.next_progress = self.report.entries + PROGRESS_EVERY
            self.progress(self.report)
