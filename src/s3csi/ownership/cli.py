"""``s3csi ownership apply PATH --fs-group G``: kubelet's fsGroup change, run by hand or by a script.

The summary goes to stdout; progress and failing entries to stderr. Exit status: 0 when every entry
is right, 1 when some entries could not be changed (each named on stderr) or the root cannot be
opened, 2 for bad arguments (one line naming the argument).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TextIO

from s3csi.mountflags import MAX_ID
from s3csi.ownership.policy import FsGroupChangePolicy
from s3csi.ownership.walk import OwnershipReport, set_volume_ownership

EXIT_ENTRY_ERRORS = 1
# Errors listed on stderr before "… and N more": enough to act on, short enough to read.
SHOWN_ERRORS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    apply = actions.add_parser(
        "apply",
        help="give a directory tree the group fsGroup (and owner fsUser), as kubelet does for a pod",
        description="chgrp every entry to fsGroup (chown to fsUser), add group rw (x on directories) and "
        "setgid on directories; symlinks and other mounts are not followed; the root is changed last.",
    )
    apply.add_argument("path", metavar="PATH", help="the volume's root directory")
    apply.add_argument("--fs-group", required=True, type=_numeric_id, metavar="GID", help="group ID to give")
    apply.add_argument("--fs-user", type=_numeric_id, metavar="UID", help="owner UID to give (default: keep)")
    apply.add_argument(
        "--policy",
        default=FsGroupChangePolicy.ALWAYS.value,
        choices=[policy.value for policy in FsGroupChangePolicy],
        help="OnRootMismatch skips the walk when the root already has the group and mode (default: Always)",
    )
    apply.add_argument("--read-only", action="store_true", help="add group read but not write")


def _numeric_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        raise argparse.ArgumentTypeError(f"must be a numeric ID from 0 to {MAX_ID}, not {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    # "apply" is the only action; argparse has refused anything else.
    progress = ProgressLine(sys.stderr)
    try:
        report = set_volume_ownership(
            args.path,
            args.fs_group,
            args.fs_user,
            policy=args.policy,
            read_only=args.read_only,
            progress=progress,
        )
    finally:
        progress.close()
    for error in report.errors[:SHOWN_ERRORS]:
        print(f"s3csi ownership: {error}", file=sys.stderr)
    if report.error_count > SHOWN_ERRORS:
        print(f"s3csi ownership: … and {report.error_count - SHOWN_ERRORS} more errors", file=sys.stderr)
    print(summary(report, args.policy))
    return EXIT_ENTRY_ERRORS if report.error_count else 0


def summary(report: OwnershipReport, policy: str) -> str:
    if not report.walked:
        return f"{report.path}: root already matches, walk skipped ({policy}), {report.seconds:.3f} s"
    outcome = (
        f", {report.error_count} errors (root left unchanged so the next run walks again)"
        if report.error_count
        else ""
    )
    return (
        f"{report.path}: {report.changed} entries changed, {report.skipped} skipped{outcome} "
        f"in {report.seconds:.2f} s ({policy})"
    )


class ProgressLine:
    """Progress on stderr, only for walks that last: rewritten in place on a terminal, else one line
    every ``interval`` seconds (a log file should not get thousands of lines)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        delay: float = 1.0,
        interval: float | None = None,
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.tty = stream.isatty()
        self.started = clock()
        self.next_at = self.started + delay
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self.written = False

    def __call__(self, report: OwnershipReport) -> None:
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + self.interval
        line = (
            f"{report.path}: {report.entries} entries ({report.changed} changed, "
            f"{report.skipped} skipped, {report.error_count} errors), {now - self.started:.0f} s"
        )
        self.stream.write(f"\r{line}\x1b[K" if self.tty else f"{line}\n")
        self.stream.flush()
        self.written = True

    def close(self) -> None:
        if self.tty and self.written:
            self.stream.write("\n")
            self.stream.flush()
