"""``--auto-unmount``: a watcher process that unmounts the file system when the mounter dies, even by SIGKILL.

libfuse's own ``auto_unmount`` (``fusermount3`` waiting on a socket) is not used: when the mounter is
killed, the kernel may close that socket before it aborts the FUSE connection, and the ``open`` with which
fusermount3 3.14 checks that the server is gone then fails with ECONNABORTED (a request cut off by the
abort) instead of ENOTCONN; fusermount3 concludes that the file system was unmounted cleanly and leaves it
mounted, answering ENOTCONN to everyone. Seen on a loaded machine in about one kill in seven.

The watcher started here (just before the mount is made) holds the read end of a pipe whose write end only
the mounter holds, and on which the mounter announces the mount's id once mounted: end of file means the
mounter is gone, however it ended. The watcher then looks at that mount (never another one stacked at the
same path), opens it, and unmounts it lazily only when the kernel says its server is gone; an open cut off
by the abort in progress is simply repeated.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import subprocess
import sys
import time
from typing import IO

from s3csi.errors import NotFound, S3csiError
from s3csi.kernel.mount import MountInfo, find_mount, unmount

# How long the watcher repeats a probe that the connection's abort cut off (ECONNABORTED): the abort
# finishes as soon as the dead mounter's files are closed, so this is only a bound for a broken kernel.
PROBE_DEADLINE_S = 10.0
PROBE_INTERVAL_S = 0.01


class Verdict(enum.Enum):
    GONE = "the mount is gone (unmounted cleanly, or replaced): nothing to do"
    UNMOUNT = "the FUSE server is gone: unmount"
    PROBE_AGAIN = "the probe was cut off by the connection's abort: probe again"
    SERVED = "the mount still answers: leave it"


def verdict(still_mounted: bool, probe_errno: int | None) -> Verdict:
    """What to do once the mounter is gone. ``probe_errno``: the errno of opening the mount point, None
    when it answered."""
    if not still_mounted:
        return Verdict.GONE
    if probe_errno == errno.ENOTCONN:
        return Verdict.UNMOUNT
    if probe_errno == errno.ECONNABORTED:
        return Verdict.PROBE_AGAIN
    return Verdict.SERVED


def is_ours(top: MountInfo | None, announced: int | None, before: int) -> bool:
    """Whether ``top``, the mount on top at the mount point now, is the one to look after: the mount id the
    mounter announced, or, when it died before it could (between its mount and its announcement), a FUSE
    mount that was not there when the watcher was started (``before``: the id on top then, or 0)."""
    if top is None:
        return False
    if announced is not None:
        return top.mount_id == announced
    return top.mount_id != before and top.is_fuse


def start_watcher(mountpoint: str) -> subprocess.Popen[bytes]:
    """Start the watcher of the FUSE mount this process is about to make at ``mountpoint`` (started before
    mounting, so that no moment is left where the mount exists unwatched); :func:`announce` the mount once
    made. The returned process's stdin must stay open for as long as this process serves the mount."""
    before = find_mount(mountpoint)
    return subprocess.Popen(
        [sys.executable, "-m", __name__, mountpoint, str(before.mount_id if before is not None else 0)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        # Its own session: a signal to the mounter's process group (Ctrl-C) must not end the watcher too.
        start_new_session=True,
        cwd="/",
    )


def announce(watcher: subprocess.Popen[bytes], mountpoint: str) -> None:
    """Tell the watcher the id of the mount just made at ``mountpoint``."""
    mount = find_mount(mountpoint)
    if mount is not None:
        pipe = _pipe(watcher)
        pipe.write(f"{mount.mount_id}\n".encode("ascii"))
        pipe.flush()


def stop_watcher(watcher: subprocess.Popen[bytes], wait_s: float = 2.0) -> None:
    """After the unmount: end of file tells the watcher, which finds the mount gone and exits (reaped here).
    Should the mount still be there, the watcher's probe waits for this process to end, then unmounts."""
    _pipe(watcher).close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        watcher.wait(timeout=wait_s)


def _pipe(watcher: subprocess.Popen[bytes]) -> IO[bytes]:
    # start_watcher gives every watcher a pipe; no assert in the file system (python -O drops them).
    if watcher.stdin is None:
        raise RuntimeError("the auto-unmount watcher was started without its pipe")
    return watcher.stdin


def _probe(mountpoint: str) -> int | None:
    # An open, as fusermount3's check: a stat may be answered from the kernel's attribute cache, while an
    # opendir always goes to the server.
    try:
        os.close(os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY))
    except OSError as exc:
        return exc.errno
    return None


def _unmount(mountpoint: str) -> None:
    if os.geteuid() == 0:
        unmount(mountpoint, lazy=True)
    else:
        # Only root may umount2 a FUSE mount; fusermount3 (setuid) unmounts the user's own.
        subprocess.run(["fusermount3", "-u", "-z", "--", mountpoint], check=True, stdin=subprocess.DEVNULL)


def watch(mountpoint: str, before: int) -> Verdict:
    """Wait for the mounter to end (end of file on stdin), then act on the mount; the final verdict."""
    received = sys.stdin.buffer.read()  # everything until end of file: at most the announced mount id
    announced = int(received) if received.endswith(b"\n") else None
    deadline = time.monotonic() + PROBE_DEADLINE_S
    while True:
        mounted = is_ours(find_mount(mountpoint), announced, before)
        result = verdict(mounted, _probe(mountpoint) if mounted else None)
        if result is not Verdict.PROBE_AGAIN or time.monotonic() >= deadline:
            break
        time.sleep(PROBE_INTERVAL_S)
    if result is Verdict.UNMOUNT:
        _unmount(mountpoint)
    return result


def main(argv: list[str]) -> int:
    mountpoint, before = argv[0], int(argv[1])
    try:
        result = watch(mountpoint, before)
    except NotFound:
        return 0  # unmounted by someone else meanwhile
    except (S3csiError, subprocess.CalledProcessError) as exc:
        print(f"s3csi auto-unmount: cannot unmount {mountpoint}: {exc}", file=sys.stderr)
        return 1
    if result is Verdict.PROBE_AGAIN:
        print(
            f"s3csi auto-unmount: {mountpoint} still aborting its connection; left mounted", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
