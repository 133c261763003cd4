"""A workload for the Mountpoint Pod crash-recovery tests and benchmark, run as its own process in its own
mount namespace (see ``recovery_support.start_workload``): what a container does with its volume.

``python recovery_workload.py VOLUME EVENTS STOP NAME...``

- writes ``before`` and closes it (the event says whether close returned 0);
- opens ``inflight``, writes 1 MiB and keeps it open;
- opens ``NAME[0]`` and keeps it open (``held``);
- every 50 ms: open/read/close each ``NAME``, and a pread of the held file (its cached pages dropped
  first, so the read reaches the session it was opened in); on the first failed round it
  writes another MiB to ``inflight`` and closes it (the data of a write in flight); on the first good
  round after failed ones it writes ``after-N`` (N counts the recoveries) and closes it;
- until the file ``STOP`` exists.

Every event is one JSON line in ``EVENTS``, flushed at once, with the wall-clock time (the test kills
the mounter in another process and compares times).
"""

from __future__ import annotations

import json
import os
import sys
import time

INTERVAL_S = 0.05
MiB = 1024 * 1024
BEFORE = b"closed before the crash\n"


def main(volume: str, events_path: str, stop: str, names: list[str]) -> int:
    with open(events_path, "a", encoding="utf-8") as events:

        def event(kind: str, **fields: object) -> None:
            events.write(json.dumps({"t": time.time(), "event": kind, **fields}) + "\n")
            events.flush()

        event("started", pid=os.getpid())
        event("before", error=_write(f"{volume}/before", BEFORE))
        inflight: int | None = os.open(f"{volume}/inflight", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        os.write(inflight, b"i" * MiB)
        held = os.open(f"{volume}/{names[0]}", os.O_RDONLY)
        failing = False
        recoveries = 0
        while not os.path.exists(stop):
            errors = [_read(f"{volume}/{name}") for name in names]
            held_error = _pread(held)
            error = next((e for e in errors if e), None)
            event("round", error=error, held_error=held_error)
            if error and not failing:
                failing = True
                if inflight is not None:
                    event("inflight", error=_finish(inflight))
                    inflight = None
            elif not error and failing:
                failing = False
                recoveries += 1
                name = f"after-{recoveries}"
                event("after", name=name, error=_write(f"{volume}/{name}", name.encode()))
            time.sleep(INTERVAL_S)
        event("stopped")
    return 0


def _errno(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _write(path: str, data: bytes) -> str | None:
    try:
        with open(path, "wb") as file:
            file.write(data)
    except OSError as exc:
        return _errno(exc)
    return None


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            file.read()
    except OSError as exc:
        return _errno(exc)
    return None


def _pread(fd: int) -> str | None:
    """Read the held file's data from its FUSE session, not from the page cache it may still hold."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.pread(fd, 4096, 0)
    except OSError as exc:
        return _errno(exc)
    return None


def _finish(fd: int) -> str | None:
    """Write another MiB and close: the first error of either, or None when both reported success."""
    error = None
    try:
        os.write(fd, b"j" * MiB)
    except OSError as exc:
        error = f"write: {_errno(exc)}"
    try:
        os.close(fd)
    except OSError as exc:
        error = error or f"close: {_errno(exc)}"
    return error


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
