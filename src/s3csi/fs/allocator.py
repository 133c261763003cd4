"""The C allocator's thresholds for a mount process.

A sequential read streams part-sized buffers through the process: each ranged GET's body (8 MiB by
default, joined by aiohttp from the received chunks) lives until the reader has moved past its part,
then the next one is allocated. With glibc's defaults each such buffer is either a fresh ``mmap`` or
taken from a heap top that glibc hands back to the kernel as soon as twice the largest freed buffer
is free; either way the kernel faults in and zeroes the next buffer's pages again. That was a fifth of
the mount process's CPU in a 512 MiB read, on a machine where the mount competes with the S3 server
for the same cores (docs/performance.md). Keeping freed parts in the heap, up to twice the read-ahead
window, lets the next parts reuse their pages; once no file is being streamed any more, they are
handed back to the kernel (:func:`release_free_memory`).
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass

from s3csi.fs.prefetch import PrefetchPolicy

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# mallopt(3) parameters, glibc's numbering.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX); larger parts are
# mmapped whatever the setting.
GLIBC_MAX_MMAP_THRESHOLD = 32 * MiB
# mallopt takes a C int.
MAX_THRESHOLD = 2**31 - 1


@dataclass(frozen=True)
class MallocThresholds:
    # Allocations of at least this many bytes get their own mmap.
    mmap: int
    # Free memory at the top of the heap beyond this many bytes goes back to the kernel.
    trim: int


def malloc_thresholds(policy: PrefetchPolicy) -> MallocThresholds:
    """Parts up to glibc's limit come from the heap, and a read-ahead window's worth of freed parts
    (twice: the window slides while the parts it dropped are still being freed) stays there."""
    trim = min(2 * policy.part_size * policy.max_held, MAX_THRESHOLD)
    return MallocThresholds(mmap=GLIBC_MAX_MMAP_THRESHOLD, trim=trim)


def worth_releasing(parts_fetched: int, readers_open: int) -> bool:
    """Whether closing a reader that fetched ``parts_fetched`` parts, with ``readers_open`` other files
    still open for reading, should hand the freed parts back: only after streaming (a small file's
    one part is not worth a heap walk on each of a thousand closes) and when no other read may reuse
    them."""
    return parts_fetched > 1 and readers_open == 0


def tune_malloc(thresholds: MallocThresholds) -> bool:
    """Apply ``thresholds`` to this process's allocator; False (and the defaults kept) without glibc."""
    if not _is_glibc():
        log.debug("not glibc: the allocator keeps its default thresholds")
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 for a value it refuses.
    applied: bool = mallopt(M_MMAP_THRESHOLD, thresholds.mmap) == 1
    applied = mallopt(M_TRIM_THRESHOLD, thresholds.trim) == 1 and applied
    if not applied:
        log.warning("glibc refused the allocator thresholds %s", thresholds)
    return applied


def release_free_memory() -> None:
    """Hand the heap's free pages back to the kernel (glibc's malloc_trim; nothing elsewhere)."""
    if _is_glibc():
        malloc_trim = ctypes.CDLL(None).malloc_trim
        malloc_trim.argtypes = (ctypes.c_size_t,)
        malloc_trim.restype = ctypes.c_int
        malloc_trim(0)


def _is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False
