"""One mount's life: check the bucket, mount, serve until unmounted or signalled, settle uploads, exit.

The exit status is 0 when every file written through the mount reached S3, 1 when an upload was
still open at unmount (logged as an error naming the key) or in-flight requests had to be abandoned.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

import pyfuse3
import pyfuse3.asyncio

from s3csi.errors import FailedPrecondition
from s3csi.fs.cache import DiskCache
from s3csi.fs.operations import S3Operations
from s3csi.fs.settings import FsSettings
from s3csi.s3.client import S3Client
from s3csi.s3.settings import S3Settings

log = logging.getLogger(__name__)

# After SIGTERM, requests in flight (an upload being completed) get this long before they are abandoned.
SHUTDOWN_GRACE_S = 30.0
# Most FUSE requests handled at once; each waits on S3, so this is concurrency, not threads.
MAX_FUSE_TASKS = 64


def s3_settings(settings: FsSettings, env: dict[str, str]) -> S3Settings:
    return S3Settings.from_env(
        env,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        force_path_style=settings.force_path_style,
        no_sign_request=settings.no_sign_request,
        user_agent_prefix=settings.user_agent_prefix,
        max_connections=settings.max_threads,
    )


def serve(settings: FsSettings, on_ready: Callable[[], None] | None = None) -> int:
    pyfuse3.asyncio.enable()
    return asyncio.run(_serve(settings, on_ready))


async def _serve(settings: FsSettings, on_ready: Callable[[], None] | None) -> int:
    client = S3Client(s3_settings(settings, dict(os.environ)))
    cache: DiskCache | None = None
    try:
        # Like mount-s3: fail before mounting when the bucket (or prefix) cannot be listed.
        await client.list_objects_v2(settings.bucket, prefix=settings.prefix, max_keys=1)
        if settings.cache_dir is not None:
            cache = await asyncio.get_running_loop().run_in_executor(
                None, DiskCache.create, settings.cache_dir, settings.max_cache_size
            )
        operations = S3Operations(settings, client, cache)
        try:
            pyfuse3.init(operations, settings.mountpoint, set(settings.fuse_options))
        except RuntimeError as exc:
            raise FailedPrecondition(f"cannot mount on {settings.mountpoint}: {exc}") from exc
        log.info("mounted s3://%s/%s on %s", settings.bucket, settings.prefix, settings.mountpoint)
        if on_ready is not None:
            on_ready()
        return await _run_until_unmounted(operations)
    finally:
        await client.close()
        if cache is not None:
            log.info("cache: %d parts read from disk, %d fetched", cache.hits, cache.misses)
            await cache.close()


async def _run_until_unmounted(operations: S3Operations) -> int:
    loop = asyncio.get_running_loop()
    main = asyncio.create_task(pyfuse3.main(max_tasks=MAX_FUSE_TASKS), name="fuse main loop")

    def terminate(signum: int) -> None:
        log.info("received %s: unmounting", signal.Signals(signum).name)
        pyfuse3.terminate()
        loop.call_later(SHUTDOWN_GRACE_S, main.cancel)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, terminate, signum)
    status = 0
    try:
        await main
    except asyncio.CancelledError:
        log.error("requests still in flight %.0f s after the signal were abandoned", SHUTDOWN_GRACE_S)
        status = 1
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    lost = await operations.finish_uploads(timeout_s=10.0)
    pyfuse3.close(unmount=True)
    log.info("unmounted")
    return 1 if lost else status
