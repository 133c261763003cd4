"""The one place where failures become errno values for the kernel.

FUSE handlers may only fail with ``pyfuse3.FUSEError``: any other exception escapes pyfuse3's worker
and can take the mount down. Every handler of ``S3Operations`` is wrapped by :func:`fuse_errors`.

A failure that lasts (credentials that cannot be read, an endpoint that is down) fails every call: it
is logged once per cause per minute (``s3csi.log_limit``), not once per call.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from s3csi.log_limit import RepeatLimiter
from s3csi.s3.errors import S3Error

log = logging.getLogger(__name__)

# One for the process: a cause is the same failure whichever handler and mount hit it.
repeats = RepeatLimiter()

P = ParamSpec("P")
T = TypeVar("T")


def errno_of(exc: BaseException) -> int:
    """The errno a failure reaches the caller's system call as."""
    if isinstance(exc, pyfuse3.FUSEError):
        return int(exc.errno)
    if isinstance(exc, S3Error):
        return exc.errno
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    if isinstance(exc, asyncio.TimeoutError):
        return errno.ETIMEDOUT
    return errno.EIO


def fuse_errors(handler: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await handler(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except S3Error as exc:
            if exc.errno == errno.ENOENT:
                log.debug("%s: %s", handler.__name__, exc)
            else:
                repeats.log(log, logging.WARNING, exc.cause, "%s: %s", handler.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno) from exc
        except Exception as exc:
            cause = (handler.__name__, type(exc), str(exc))
            repeats.log(log, logging.ERROR, cause, "%s failed unexpectedly", handler.__name__, exc_info=True)
            raise pyfuse3.FUSEError(errno_of(exc)) from exc

    return wrapper


def fail(code: int) -> pyfuse3.FUSEError:
    """``raise fail(errno.EPERM)`` reads as what the caller will see."""
    return pyfuse3.FUSEError(code)
