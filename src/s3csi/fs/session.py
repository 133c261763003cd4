"""One mount's life: check the bucket, mount, serve until unmounted or signalled, settle uploads, exit.

The exit status is 0 when every file written through the mount reached S3, 1 when an upload was
still open at unmount (logged as an error naming the key) or in-flight requests had to be abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping

import pyfuse3
import pyfuse3.asyncio
import uvloop

from s3csi.errors import FailedPrecondition
from s3csi.fs.allocator import malloc_thresholds, tune_malloc
from s3csi.fs.auto_unmount import announce, start_watcher, stop_watcher
from s3csi.fs.cache import DiskCache, PartCache
from s3csi.fs.metrics import MounterMetrics, S3Counts, default_volume_id, open_file_modes
from s3csi.fs.operations import S3Operations
from s3csi.fs.prefetch import PrefetchPolicy
from s3csi.fs.settings import READ_AHEAD_KIB, FsSettings
from s3csi.fs.staging import StagingArea
from s3csi.fs.xz_cache import Layered, SharedCache
from s3csi.kernel.mountinfo import parse_mountinfo, read_ahead_path
from s3csi.metrics.endpoint import serving
from s3csi.mountflags import METRICS_LOG_INTERVAL_S
from s3csi.s3.client import S3Client
from s3csi.s3.credentials import default_credential_provider
from s3csi.s3.region import starting_region
from s3csi.s3.settings import S3Settings

log = logging.getLogger(__name__)

# After SIGTERM, requests in flight (an upload being completed) get this long before they are abandoned.
SHUTDOWN_GRACE_S = 30.0
# Most FUSE requests handled at once; each waits on S3, so this is concurrency, not threads.
MAX_FUSE_TASKS = 64


def s3_settings(settings: FsSettings, env: Mapping[str, str]) -> S3Settings:
    return S3Settings.from_env(
        env,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        force_path_style=settings.force_path_style,
        no_sign_request=settings.no_sign_request,
        user_agent_prefix=settings.user_agent_prefix,
        max_connections=settings.max_threads,
        # None where the flag was not given: the environment (AWS_USE_DUALSTACK_ENDPOINT) may still say so.
        dual_stack=settings.dual_stack or None,
        accelerate=settings.transfer_acceleration,
        bucket_type=settings.bucket_type,
        requester_pays=settings.requester_pays,
        expected_bucket_owner=settings.expected_bucket_owner,
        upload_checksums=settings.upload_checksums,
    )


def credentials_env(settings: FsSettings, env: Mapping[str, str]) -> Mapping[str, str]:
    """``--profile NAME``: the keys of that profile of the shared config and credentials files, as an
    SDK given a profile explicitly does, so keys in the environment no longer take precedence."""
    if settings.profile is None:
        return env
    dropped = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return {
        **{name: value for name, value in env.items() if name not in dropped},
        "AWS_PROFILE": settings.profile,
    }


def serve(
    settings: FsSettings,
    env: Mapping[str, str],
    on_ready: Callable[[], None] | None = None,
    volume_id: str | None = None,
) -> int:
    """Mount and serve until unmounted. ``env`` holds the AWS variables the S3 client uses (endpoint,
    region, credentials); ``on_ready`` is called once the kernel's INIT has been answered, so the
    mount then answers requests. ``volume_id`` labels the metrics (``--metrics-address``): the
    Mountpoint Pod's volume, else ``bucket/prefix``.

    The S3 client's request observer (the mounter's metrics) exists when something reads it: the
    metrics endpoint or ``--log-metrics``. Only the endpoint has the FUSE handlers wrapped too."""
    pyfuse3.asyncio.enable()
    tune_malloc(malloc_thresholds(PrefetchPolicy.for_part_size(settings.read_part_size)))
    # Resolved before mounting: afterwards a stat of the mount point would wait on this very process.
    # With /dev/fd/N the privileged parent mounted, and sets the read-ahead itself (s3csi.kernel.fuse).
    own_mount = settings.fuse_fd is None and os.geteuid() == 0
    read_ahead_target = os.path.realpath(settings.mountpoint) if own_mount else None
    # --auto-unmount: the mount point its watcher looks for in the mount table (fs/auto_unmount.py).
    watched = os.path.realpath(settings.mountpoint) if settings.auto_unmount else None
    # uvloop rather than asyncio's own loop: the same code, a sequential read 5-9% faster and no more CPU.
    metrics = None
    if settings.metrics_address is not None or settings.log_metrics:
        metrics = MounterMetrics(volume_id or default_volume_id(settings.bucket, settings.prefix))
    return uvloop.run(
        _serve_measured(settings, env, on_ready, read_ahead_target, watched=watched, metrics=metrics)
    )


async def _serve_measured(
    settings: FsSettings,
    env: Mapping[str, str],
    on_ready: Callable[[], None] | None,
    read_ahead_target: str | None,
    *,
    watched: str | None,
    metrics: MounterMetrics | None,
) -> int:
    """Serve, with the metrics endpoint up from before the bucket is checked until after the unmount."""
    async with contextlib.AsyncExitStack() as stack:
        address = settings.metrics_address
        if metrics is not None and address is not None:
            try:
                await stack.enter_async_context(serving(metrics.registry, address))
            except OSError as exc:
                raise FailedPrecondition(
                    f"--metrics-address {address}: cannot listen: {exc.strerror or exc}"
                ) from exc
        return await _serve(settings, env, on_ready, read_ahead_target, watched=watched, metrics=metrics)


async def _serve(
    settings: FsSettings,
    env: Mapping[str, str],
    on_ready: Callable[[], None] | None,
    read_ahead_target: str | None,
    *,
    watched: str | None,
    metrics: MounterMetrics | None = None,
) -> int:
    # No region given: the instance's (IMDS, on AWS), else us-east-1; the client follows S3 to the bucket's.
    s3 = await starting_region(s3_settings(settings, env), env)
    client = S3Client(
        s3,
        None if s3.no_sign_request else default_credential_provider(credentials_env(settings, env)),
        observer=metrics,
    )
    cache: PartCache | None = None
    staging: StagingArea | None = None
    try:
        # Like mount-s3: fail before mounting when the bucket (or prefix) cannot be listed.
        await client.list_objects_v2(settings.bucket, prefix=settings.prefix, max_keys=1)
        if settings.cache_dir is not None:
            cache = await asyncio.get_running_loop().run_in_executor(
                None, DiskCache.create, settings.cache_dir, settings.max_cache_size
            )
        if settings.cache_xz is not None:
            shared = SharedCache(client, settings.cache_xz, asyncio.Semaphore(settings.max_threads))
            await shared.check()  # a cache bucket that cannot be used fails the mount, as the bucket does
            cache = shared if cache is None else Layered(cache, shared)
        if settings.staged_writes and settings.cache_dir is not None:
            staging = await asyncio.get_running_loop().run_in_executor(
                None, StagingArea.create, settings.cache_dir, settings.max_staged_file_size
            )
        operations = S3Operations(settings, client, cache, staging)
        if metrics is not None and settings.metrics_address is not None:
            metrics.measure(operations)
            metrics.watch(operations.prefetch, lambda: open_file_modes(operations.files.values()))
        loop = asyncio.get_running_loop()

        def initialized() -> None:
            # Runs after libfuse has sent the INIT reply (pyfuse3 calls ``init`` just before it).
            if read_ahead_target is not None:
                _set_read_ahead(read_ahead_target, READ_AHEAD_KIB)
            if on_ready is not None:
                on_ready()

        operations.on_init = lambda: loop.call_soon(initialized)
        # --auto-unmount: kept (its stdin open) until this process ends, however it ends.
        watcher = start_watcher(watched) if watched is not None else None
        try:
            pyfuse3.init(operations, settings.mountpoint, set(settings.fuse_options))
        except RuntimeError as exc:
            if watcher is not None:
                stop_watcher(watcher)
            raise FailedPrecondition(f"cannot mount on {settings.mountpoint}: {exc}") from exc
        if watcher is not None and watched is not None:
            announce(watcher, watched)
        log.info("mounted s3://%s/%s on %s", settings.bucket, settings.prefix, settings.mountpoint)
        summaries = (
            asyncio.create_task(log_metrics(metrics), name="log metrics")
            if settings.log_metrics and metrics is not None
            else None
        )
        try:
            return await _run_until_unmounted(operations)
        finally:
            if summaries is not None and metrics is not None:
                summaries.cancel()
                log.info("%s", metrics_summary(metrics.s3_counts()))
            if watcher is not None:
                stop_watcher(watcher)
    finally:
        if cache is not None:
            log.info("cache: %d parts read from the cache, %d fetched", cache.hits, cache.misses)
            await cache.close()  # before the client: --cache-xz's writes still in flight use it
        await client.close()
        if staging is not None:
            await staging.close()


async def log_metrics(metrics: MounterMetrics, interval_s: float = METRICS_LOG_INTERVAL_S) -> None:
    """``--log-metrics``: one INFO line every ``interval_s`` with the S3 requests counted so far."""
    while True:
        await asyncio.sleep(interval_s)
        log.info("%s", metrics_summary(metrics.s3_counts()))


def metrics_summary(counts: S3Counts) -> str:
    """``metrics: requests GetObject=12 ListObjectsV2=3; failures HeadObject=1; sent 0 B; received 12 B``."""
    requests = " ".join(f"{name}={count}" for name, count in sorted(counts.requests.items())) or "none"
    failures = " ".join(f"{name}={count}" for name, count in sorted(counts.failures.items())) or "none"
    return (
        f"metrics: requests {requests}; failures {failures};"
        f" sent {counts.sent} B; received {counts.received} B"
    )


def _set_read_ahead(mountpoint: str, kib: int) -> None:
    """The kernel's read-ahead on the FUSE mount this process made at ``mountpoint`` (root only: sysfs).

    The device is found in /proc/self/mountinfo: a stat of the mount point would wait on this process.
    """
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
        mounts = [m for m in parse_mountinfo(table.read()) if m.mount_point == mountpoint and m.is_fuse]
    if not mounts:
        log.warning("no FUSE mount found at %s: its read-ahead stays the kernel's default", mountpoint)
        return
    try:
        with open(read_ahead_path(mounts[-1]), "w", encoding="ascii") as sysfs:
            sysfs.write(str(kib))
    except OSError as exc:
        log.warning("cannot set the read-ahead of %s: %s", mountpoint, exc)


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
    operations.read_ahead.close()
    lost = await operations.finish_uploads(timeout_s=10.0)
    pyfuse3.close(unmount=True)
    log.info("unmounted")
    return 1 if lost else status
