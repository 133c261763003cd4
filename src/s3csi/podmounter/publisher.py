"""NodePublishVolume and NodeUnpublishVolume through Mountpoint Pods (docs/node-publish.md).

Publish: sharing key → the key's Mountpoint Pod (started when none runs) → its FUSE mount, the
*source*, made once (open /dev/fuse, mount(2) under the state dir, hand the fd over mount.sock,
await ``ready``) → a bind of the source onto the pod's target path. Unpublish removes the bind; the
last target leaving unmounts the source and retires the Mountpoint Pod.

State under ``--state-dir`` (root only)::

    sources/<mountpoint pod>/        the source mount points
    targets/<digest of target>.json  what a target was published with: volume, pod, mount arguments,
                                     and whether the driver created the target directory
    sessions/<mountpoint pod>.json   how each source was mounted, to mount it again (sessions.py)
    pods/…                           the runtime's (runtime/local.py)

Each source is a *shared* mount and every target a bind of it, so a peer: when a mounter dies, the
node plugin mounts a new FUSE session on top of the dead one at the source, and the kernel propagates
it onto every target and into every workload container that received its target with HostToContainer
propagation — the targets themselves are never touched (docs/architecture.md, "Mountpoint Pod crash
recovery").

Nothing is kept in memory but the per-key locks, the watches on the mounters and the crash counts
of the back-off: every call reads the mount table and the state dir afresh, so a restarted driver
continues where the old one stopped, and ``recover`` tidies what a crash left half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict, TypeVar

from s3csi.credentials.files import (
    credentials_file_name,
    remove_shared_credentials,
    write_shared_credentials,
)
from s3csi.credentials.plan import DEFAULT_AUDIENCE, AssumePodRole, CredentialPlan, UseSecret, inputs_for
from s3csi.credentials.resolver import CredentialResolver
from s3csi.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    S3csiError,
    Unavailable,
)
from s3csi.fs.settings import READ_AHEAD_KIB
from s3csi.kernel.fuse import (
    FUSE_FSTYPE,
    connection_aborted,
    mount_fuse,
    open_fuse_device,
    set_read_ahead,
)
from s3csi.kernel.mount import (
    MountInfo,
    bind_mount,
    find_mount,
    make_shared,
    mountinfo,
    unmount,
    unmount_all,
)
from s3csi.locks import KeyedLocks
from s3csi.metrics.node import FAILED, RECOVERED, NodeMetrics
from s3csi.podmounter.mount_request import build_mount_request
from s3csi.podmounter.protocol import MountRequest, request_mount
from s3csi.podmounter.publish_events import WAITING_EVENT_AFTER_S, WAITING_EVENT_EVERY_S, waiting_event
from s3csi.podmounter.recovery import RecoverySettings, crashes_in_a_row, recovery_delay
from s3csi.podmounter.runtime import (
    CREDENTIALS_DIR,
    MOUNTER_GID,
    MOUNTER_UID,
    MountpointPod,
    MountpointPodRuntime,
    WorkloadPod,
    pod_name,
)
from s3csi.podmounter.runtime.local import LocalRuntime
from s3csi.podmounter.sessions import (
    SESSIONS_DIR,
    SessionRecord,
    delete_session,
    read_session,
    write_session,
)
from s3csi.podmounter.targets import (
    TargetAction,
    check_unpublish,
    group_change,
    publish_action,
    resolve_target,
    targets_of,
)
from s3csi.s3.credentials import CredentialProvider, Credentials
from s3csi.s3.imds import DEFAULT_ENDPOINT as METADATA_ENDPOINT
from s3csi.s3.imds import instance_region
from s3csi.s3.settings import S3Settings
from s3csi.tasks import background
from s3csi.volume.context import CacheVolume
from s3csi.volume.publish_spec import PublishSpec
from s3csi.volume.sharing import credentials_identity_of, sharing_key

log = logging.getLogger(__name__)
T = TypeVar("T")

CRASH_LOOP_REASON = "MountpointPodCrashLoop"
"""The reason of the Event on workload pods whose Mountpoint Pod is in a crash loop."""

SOURCES_DIR = "sources"
TARGETS_DIR = "targets"
_POD_NAME_PREFIX = pod_name("")
# Seconds for the first answer of a new FUSE mount (the kernel's INIT, then the root's attributes).
FIRST_ANSWER_TIMEOUT = 30.0
# Seconds for statfs(2) to tell whether a source's FUSE connection is aborted.
ABORTED_CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class PublisherSettings:
    node_id: str
    # Root-only directory for sources, target records and the runtime's state; survives restarts.
    state_dir: str
    # Every target path must lie below it (symlinks and ".." resolved).
    kubelet_dir: str
    # Endpoint, default region and addressing style of every Mountpoint Pod (docs/architecture.md#cli).
    s3: S3Settings
    # STS for authenticationSource pod: an endpoint URL (AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL), or None
    # for AWS's regional endpoint; and the audience of the service-account token to exchange.
    sts_endpoint_url: str | None = None
    sts_audience: str = DEFAULT_AUDIENCE
    # When a crash-looping mounter's session is remounted (recovery.py).
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    # Whether s3.region was configured (--s3-region, AWS_REGION) rather than defaulted: only a configured
    # one stands for a pod-level STS region the volume does not set; otherwise the instance metadata
    # service at metadata_endpoint (None: disabled, AWS_EC2_METADATA_DISABLED) is asked.
    region_configured: bool = True
    metadata_endpoint: str | None = METADATA_ENDPOINT
    # --mountpoint-pod-metrics (local runtime): each mounter serves its metrics on metrics.sock, comm dir.
    mountpoint_pod_metrics: bool = False


class TargetRecord(TypedDict):
    """Written before the bind and removed after the unmount, so a bind always has its record: the
    volume NodeUnpublishVolume must name, the mount arguments a republish must keep, and whether the
    target directory is the driver's to remove (kubelet makes only its parent)."""

    target: str
    volume_id: str
    pod: str
    mountpoint_pod: str
    created: NotRequired[bool]
    args: NotRequired[list[str]]
    workload: NotRequired[list[str]]
    """The workload pod's namespace, name and uid (kubelet's pod info), for Events on it."""


class PodMounterPublisher:
    """The ``VolumePublisher`` of ``s3csi driver --mode node``.

    ``credentials`` is the driver's own chain (``authenticationSource: driver``); a volume's ``secret`` or
    ``pod`` source is resolved per publish (docs/credentials.md). Every publish, a republish included
    (CSIDriver ``requiresRepublish``), rewrites the Mountpoint Pod's credentials file: rotation without
    a remount.
    """

    def __init__(
        self,
        settings: PublisherSettings,
        runtime: MountpointPodRuntime,
        credentials: CredentialProvider,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        endpoint = settings.metadata_endpoint
        self.resolver = CredentialResolver(
            credentials,
            sts_endpoint_url=settings.sts_endpoint_url,
            ca_bundle=settings.s3.ca_bundle,
            instance_region=None if endpoint is None else functools.partial(instance_region, endpoint),
        )
        self.sources_dir = Path(settings.state_dir) / SOURCES_DIR
        self.targets_dir = Path(settings.state_dir) / TARGETS_DIR
        self.sessions_dir = Path(settings.state_dir) / SESSIONS_DIR
        self._locks = KeyedLocks()
        # Per key: the running recovery, the crashes in a row and when the session was last mounted.
        self._recoveries: dict[str, asyncio.Task[None]] = {}
        self._crashes: dict[str, int] = {}
        self._mounted_at: dict[str, float] = {}
        self.metrics = NodeMetrics() if metrics is None else metrics
        self.metrics.count_mountpoint_pods(self.served)

    def prepare(self) -> None:
        for directory in (self.sources_dir, self.targets_dir, self.sessions_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # ---- NodePublishVolume ----------------------------------------------------------------------

    async def publish(self, spec: PublishSpec) -> None:
        resource_attributes = spec.context.mountpoint_pod_resource_attributes()
        if resource_attributes and isinstance(self.runtime, LocalRuntime):
            # A Mountpoint Pod of the local runtime is a process of the node plugin, with no requests or
            # limits to give it: refused rather than ignored.
            raise InvalidArgument(
                f"volume attribute {resource_attributes[0]} sets the Mountpoint Pod's resources, which "
                "only the Kubernetes runtime applies: run the node plugin with --runtime kubernetes, or "
                "remove the mountpointContainerResources* attributes from the volume"
            )
        target = resolve_target(self.settings.kubelet_dir, spec.target_path)
        plan = self.resolver.plan(
            inputs_for(
                spec,
                driver_region=self.settings.s3.region if self.settings.region_configured else None,
                audience=self.settings.sts_audience,
            )
        )
        key = self._sharing_key(spec, plan)
        request = build_mount_request(
            volume_id=spec.volume_id,
            bucket=spec.context.bucket_name,
            prefix=spec.context.prefix,
            args=[*spec.mount.args, *self._cache_args(spec.context.cache)],
            s3=self.settings.s3,
            credentials_file=f"{CREDENTIALS_DIR}/{credentials_file_name(spec.volume_id, key)}",
        )
        other = self._served_by_another(target, spec, key)
        if other is not None:
            async with self._locks.hold(other):
                await self._refresh(other, spec, await self.resolver.act(plan))
            log.info("volume already published", extra=_context(spec, target, pod_name(other)))
            return
        if find_mount(target) is None:
            # Outside the key's lock: a workload still waiting for its Mountpoint Pod (Kubernetes: the
            # controller's assignment) must not hold up the key's other publishes and unpublishes.
            with self.metrics.publishes_waiting.track_inprogress():
                await self._waited(self.runtime.join(key, spec.pod.uid), key, spec)
        async with self._locks.hold(key):
            # Resolved before anything is mounted, so a refused role or a bad secret fails the call cleanly.
            credentials = await self.resolver.act(plan)
            await self._publish(key, target, spec, request, credentials)

    async def _waited(self, wait: Awaitable[T], key: str, spec: PublishSpec) -> T:
        """``wait`` (the runtime's ``join`` or ``start``); once it has lasted WAITING_EVENT_AFTER_S, and
        then every WAITING_EVENT_EVERY_S, the workload pod gets an Event saying why it still waits."""
        task = asyncio.ensure_future(wait)
        started = time.monotonic()
        try:
            done, _ = await asyncio.wait({task}, timeout=WAITING_EVENT_AFTER_S)
            while not done:
                await self._report_waiting(key, spec, time.monotonic() - started)
                done, _ = await asyncio.wait({task}, timeout=WAITING_EVENT_EVERY_S)
            return task.result()
        finally:
            task.cancel()  # this call was cancelled (nothing happens to a task that is done)

    async def _report_waiting(self, key: str, spec: PublishSpec, waited_s: float) -> None:
        pod = spec.pod
        if not (pod.namespace and pod.name and pod.uid):
            return  # no pod to tell (kubelet sent no pod info): the log line below is the report
        try:
            waiting = await self.runtime.waiting_for(key, pod.uid)
        except (S3csiError, OSError) as exc:
            log.warning(
                "cannot tell why the publish waits: %s", exc, extra=_context(spec, "-", pod_name(key))
            )
            return
        if waiting is None:
            return
        event = waiting_event(waiting, volume_id=spec.volume_id, waited_s=waited_s)
        log.info("%s", event.message, extra=_context(spec, spec.target_path, pod_name(key)))
        await self.runtime.record_event(
            [WorkloadPod(pod.namespace, pod.name, pod.uid)],
            event.reason,
            event.message,
            once_per=waiting.problem,
            type=event.type,
        )

    def _cache_args(self, cache: CacheVolume | None) -> list[str]:
        """The mounter's --cache in the Mountpoint Pod's cache volume, bounded by the volume's size. Not in
        the sharing key: the key names the PV, whose attributes do not change."""
        if cache is None:
            return []
        args = [f"--cache={self.runtime.cache_dir(cache)}"]
        size = cache.max_cache_size_mib()
        if size is not None:
            args.append(f"--max-cache-size={size}")
        return args

    def _sharing_key(self, spec: PublishSpec, plan: CredentialPlan) -> str:
        """The sharing key (docs/architecture.md#sharing), with the identity the credentials act as."""
        return sharing_key(
            node_id=self.settings.node_id,
            volume_id=spec.volume_id,
            pv_name=spec.pv_name or None,
            mount=spec.mount,
            authentication_source=spec.context.authentication_source,
            pod_namespace=spec.pod.namespace,
            service_account_name=spec.pod.service_account,
            role_arn=plan.role_arn if isinstance(plan, AssumePodRole) else None,
            credentials_identity=(
                credentials_identity_of(plan.credentials.access_key_id)
                if isinstance(plan, UseSecret)
                else None
            ),
        )

    async def _publish(
        self, key: str, target: str, spec: PublishSpec, request: MountRequest, credentials: Credentials
    ) -> None:
        name = pod_name(key)
        source = str(self.sources_dir / name)
        table = mountinfo()
        source_mount = find_mount(source, table)
        pod = self.runtime.find(key)
        if source_mount is not None and (pod is None or not self.runtime.running(pod)):
            # The watch normally got there first; a publish does not wait for its back-off.
            if not await self._remount_if_dead(key):
                self._report_dead(name, source_mount, table)
                await self._retire(key)
            table = mountinfo()
            source_mount = find_mount(source, table)
        target_mount = find_mount(target, table)
        if target_mount is not None and (
            self._orphaned(target_mount, table) or self._left_behind(target_mount, source_mount, name, table)
        ):
            # kubelet publishes a target again when it finds it broken (ENOTCONN): its Mountpoint Pod
            # is gone, so the target gets the mount of a live one.
            log.warning("replacing the dead mount at the target", extra=_context(spec, target, name))
            unmount_all(target, lazy=True)
            target_mount = None
        action = publish_action(target_mount, source_mount, read_only=spec.mount.read_only)
        if action is TargetAction.NONE:
            await self._refresh(key, spec, credentials)
            log.info("volume already published", extra=_context(spec, target, name))
            return
        fresh = source_mount is None
        if fresh:
            await self._mount_source(key, source, request, spec, credentials)
        else:
            await self._refresh(key, spec, credentials)
        created = self._make_target(target)
        record = TargetRecord(
            target=target,
            volume_id=spec.volume_id,
            pod=spec.pod_label,
            mountpoint_pod=name,
            created=created,
            args=list(spec.mount.args),
        )
        if spec.pod.namespace and spec.pod.name and spec.pod.uid:
            record["workload"] = [spec.pod.namespace, spec.pod.name, spec.pod.uid]
        self._write_record(record)
        try:
            bind_mount(source, target, read_only=spec.mount.read_only)
        except BaseException:
            self._delete_record(target)
            if created:
                with contextlib.suppress(OSError):
                    os.rmdir(target)
            if fresh:
                await self._retire(key)
            raise
        log.info("volume published", extra=_context(spec, target, name))

    def _make_target(self, target: str) -> bool:
        """Make the target directory (kubelet makes its parent); whether it is the driver's: made now,
        or by an earlier publish of this target whose record says so."""
        previous = self._record(target)
        os.makedirs(os.path.dirname(target), mode=0o750, exist_ok=True)
        try:
            os.mkdir(target, mode=0o750)
        except FileExistsError:
            return previous is not None and previous.get("created", False)
        return True

    async def _mount_source(
        self, key: str, source: str, request: MountRequest, spec: PublishSpec, credentials: Credentials
    ) -> None:
        with self.metrics.publishes_waiting.track_inprogress():
            pod = await self._waited(self.runtime.start(key, spec.pod.uid), key, spec)
        try:
            await self._write_credentials(pod, spec.volume_id, credentials)
            log.info(
                "credentials from %s", credentials.source, extra=_context(spec, spec.target_path, pod.name)
            )
            session = SessionRecord(
                request=request,
                allow_other=spec.mount.allow_other,
                read_only=spec.mount.read_only,
                fsname=spec.context.bucket_name,
            )
            write_session(self.sessions_dir, pod_name(key), session)
            await self._hand_over(pod, source, session)
        except BaseException:
            await self._retire(key)
            raise
        self._watch(key)

    async def _hand_over(self, pod: MountpointPod, source: str, session: SessionRecord) -> None:
        """Mount a new FUSE connection at ``source`` — on top of a dead one there, if any — make it shared,
        and hand it to ``pod``'s mounter; once it answers, the mount is ready. On failure the new
        mount is gone again and whatever was beneath it stays."""
        fd = _mount_fuse_source(source, session)
        try:
            try:
                await asyncio.to_thread(
                    functools.partial(
                        request_mount, pod.socket_path, session["request"], fd, mounter_uid=MOUNTER_UID
                    )
                )
            finally:
                os.close(fd)
            await _first_answer(source)
            set_read_ahead(source, READ_AHEAD_KIB)  # after INIT, which resets it
        except BaseException:
            with contextlib.suppress(S3csiError):
                unmount(source, lazy=True)
            raise
        self._mounted_at[pod.key] = time.monotonic()

    async def _write_credentials(self, pod: MountpointPod, volume_id: str, credentials: Credentials) -> None:
        name = credentials_file_name(volume_id, pod.key)
        await asyncio.to_thread(
            write_shared_credentials, pod.credentials_dir, credentials, gid=MOUNTER_GID, name=name
        )

    async def _refresh(self, key: str, spec: PublishSpec, credentials: Credentials) -> None:
        """A publish for a running Mountpoint Pod: its file gets this call's (newest) credentials."""
        pod = self.runtime.find(key)
        if pod is not None:
            await self._write_credentials(pod, spec.volume_id, credentials)
            log.debug("credentials refreshed from %s", credentials.source, extra={"mountpoint_pod": pod.name})

    def _served_by_another(self, target: str, spec: PublishSpec, key: str) -> str | None:
        """The key of another Mountpoint Pod of this volume already serving ``target``, if one does: a
        republish whose sharing key changed under it (a secret rotated to a new access key id, new PV
        mount options). Such a call refreshes that pod's credentials and mounts nothing."""
        table = mountinfo()
        mounted = find_mount(target, table)
        if mounted is None or mounted.read_only != spec.mount.read_only:
            return None
        served = self._source_name(mounted, table)
        record = self._record(target)
        if served is None or served == pod_name(key) or record is None:
            return None
        if record["volume_id"] != spec.volume_id or record["mountpoint_pod"] != served:
            return None
        changed = group_change(record.get("args", list(spec.mount.args)), spec.mount.args)
        if changed is not None:
            # CSI's "published with incompatible capabilities": the group cannot change under a pod.
            raise AlreadyExists(
                f"target_path {target} is already published with group {changed[0]}; "
                f"this request asks for group {changed[1]} (another fsGroup): unpublish it first"
            )
        key = served[len(_POD_NAME_PREFIX) :]
        pod = self.runtime.find(key)
        if pod is None or not self.runtime.running(pod):
            return None  # a dead Mountpoint Pod: the normal path replaces the target's mount
        return key

    # ---- NodeUnpublishVolume --------------------------------------------------------------------

    async def unpublish(self, volume_id: str, target_path: str) -> None:
        target = resolve_target(self.settings.kubelet_dir, target_path)
        record = self._record(target)
        check_unpublish(target, volume_id, record["volume_id"] if record else None)
        table = mountinfo()
        mounted = find_mount(target, table)
        if mounted is None:
            self._remove_created_target(target, record)
            self._delete_record(target)
            return
        if record is None:
            log.warning(
                "unpublishing a target without a record: its volume id cannot be checked",
                extra={"volume_id": volume_id, "target_path": target},
            )
        name = self._source_name(mounted, table)
        if name is None:
            if mounted.fstype != FUSE_FSTYPE:
                raise FailedPrecondition(
                    f"target_path {target} holds a {mounted.fstype} mount s3csi did not make"
                )
            # A target of a Mountpoint Pod that died and whose source is already gone.
            unmount_all(target, lazy=True)
            self._remove_created_target(target, record)
            self._delete_record(target)
            return
        key = name[len(_POD_NAME_PREFIX) :]
        async with self._locks.hold(key):
            await self._unpublish(key, target, volume_id, record)

    async def _unpublish(self, key: str, target: str, volume_id: str, record: TargetRecord | None) -> None:
        # Recovered sessions are stacked on the dead ones; EBUSY (kubelet stopped the containers, a
        # straggler must not block) detaches lazily.
        unmount_all(target)
        self._remove_created_target(target, record)
        self._delete_record(target)
        log.info("volume unpublished", extra={"volume_id": volume_id, "target_path": target})
        source = find_mount(str(self.sources_dir / pod_name(key)))
        if source is None or not targets_of(source, mountinfo()):
            await self._retire(key)

    # ---- shared -------------------------------------------------------------------------------

    def served(self) -> int:
        """The Mountpoint Pods whose FUSE session is mounted at a source now (a session remounted on top of a
        dead one counts once)."""
        sources = str(self.sources_dir)
        return len({m.mount_point for m in mountinfo() if os.path.dirname(m.mount_point) == sources})

    async def _retire(self, key: str) -> None:
        """Unmount the key's source (the mounter then exits by itself) and retire its Mountpoint Pod."""
        name = pod_name(key)
        source = str(self.sources_dir / name)
        pod = self.runtime.find(key)
        if pod is not None:
            self.runtime.unwatch(pod)  # the mounter exits once its mount is gone: no recovery for that
        if find_mount(source) is not None:
            alive = pod is not None and self.runtime.running(pod)
            # EBUSY: detach now, the kernel lets go when the last user does.
            unmount_all(source, lazy=not alive)
        delete_session(self.sessions_dir, name)
        self._crashes.pop(key, None)
        self._mounted_at.pop(key, None)
        pod = self.runtime.find(key)
        if pod is not None:
            # The keys go first, whatever the runtime keeps of a retired Mountpoint Pod.
            await asyncio.to_thread(remove_shared_credentials, pod.credentials_dir)
            await self.runtime.retire(pod)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(source)
        log.info("Mountpoint Pod retired", extra={"mountpoint_pod": name})

    async def recover(self) -> None:
        """After a restart: retire what no target uses any more, clear sources whose mounter died."""
        self.prepare()
        table = mountinfo()
        # Sources are named by the key; a runtime's pod names need not be (Kubernetes: mp-xxxxx).
        names = {pod_name(pod.key): pod.key for pod in self.runtime.list()}
        for entry in self.sources_dir.iterdir():
            names[entry.name] = entry.name[len(_POD_NAME_PREFIX) :]
        for name, key in sorted(names.items()):
            async with self._locks.hold(key):
                source = find_mount(str(self.sources_dir / name), table)
                pod = self.runtime.find(key)
                running = pod is not None and self.runtime.running(pod)
                if source is not None and running and targets_of(source, table):
                    log.info("Mountpoint Pod in use", extra={"mountpoint_pod": name})
                    self._watch(key)
                    continue
                if (
                    source is not None
                    and targets_of(source, table)
                    and read_session(self.sessions_dir, name) is not None
                ):
                    self._mounter_ended(key)  # remounted in the background, with the back-off
                    continue
                if source is not None and not running:
                    self._report_dead(name, source, table)
                await self._retire(key)

    # ---- Mountpoint Pod crash recovery ---------------------------------------------------------

    def _watch(self, key: str) -> None:
        pod = self.runtime.find(key)
        if pod is not None:
            self.runtime.watch(pod, functools.partial(self._mounter_ended, key))

    def _mounter_ended(self, key: str) -> None:
        """The watch saw the key's mounter end: remount its session unless a recovery already runs."""
        running = self._recoveries.get(key)
        if running is not None and not running.done():
            return
        self._recoveries[key] = background(self._recover(key), name=f"recover {pod_name(key)}")

    async def _recover(self, key: str) -> None:
        """Remount the key's session under its lock, after the back-off of a crash loop; retried (with
        the back-off) until it works or nothing needs it any more."""
        name = pod_name(key)
        mounted_at = self._mounted_at.get(key)
        served = time.monotonic() - mounted_at if mounted_at is not None else float("inf")
        crashes = crashes_in_a_row(self._crashes.get(key, 0), served, self.settings.recovery)
        while True:
            self._crashes[key] = crashes
            delay = recovery_delay(crashes, self.settings.recovery)
            if delay > 0:
                log.warning(
                    "Mountpoint Pod crash loop: %d crashes in a row, each within %gs of its mount; "
                    "next remount in %gs",
                    crashes,
                    self.settings.recovery.crash_loop_window_s,
                    delay,
                    extra={"mountpoint_pod": name},
                )
                await self.runtime.record_event(
                    self._workloads_of(key),
                    CRASH_LOOP_REASON,
                    f"Mountpoint Pod {name} of this pod's S3 volume is in a crash loop ({crashes} crashes "
                    f"in a row, each within {self.settings.recovery.crash_loop_window_s:g}s of its "
                    "remount): files of the volume fail with ENOTCONN until it serves again; the node "
                    "plugin's and the Mountpoint Pod's logs say why",
                    once_per=name,
                )
                await asyncio.sleep(delay)
            try:
                async with self._locks.hold(key):
                    await self._remount_if_dead(key)
                return
            except NotFound as exc:  # the Mountpoint Pod is gone for good (Kubernetes: deleted)
                log.error("cannot remount the FUSE session: %s", exc, extra={"mountpoint_pod": name})
                return
            except (S3csiError, OSError) as exc:
                log.error("remounting the FUSE session failed: %s", exc, extra={"mountpoint_pod": name})
                crashes += 1  # a failed attempt always counts as a crash in the loop

    def _workloads_of(self, key: str) -> list[WorkloadPod]:
        """The workload pods whose targets the key's source serves, from their targets' records."""
        table = mountinfo()
        source = find_mount(str(self.sources_dir / pod_name(key)), table)
        found = []
        for target in targets_of(source, table) if source is not None else []:
            record = self._record(target.mount_point)
            if record is not None and len(record.get("workload", [])) == 3:
                found.append(WorkloadPod(*record["workload"]))
        return found

    async def _remount_if_dead(self, key: str) -> bool:
        """Under the key's lock: if the key's source has targets and its FUSE connection is dead, mount a
        new session on top of it with a new mounter. False when it cannot be remounted (no targets,
        no record of how it was mounted, no Mountpoint Pod); True when the source serves again or
        already did."""
        name = pod_name(key)
        source = str(self.sources_dir / name)
        table = mountinfo()
        mounted = find_mount(source, table)
        pod = self.runtime.find(key)
        session = read_session(self.sessions_dir, name)
        if mounted is None or pod is None or session is None:
            return False
        targets = targets_of(mounted, table)
        if not targets:
            return False
        aborted = await _aborted(source)
        if self.runtime.running(pod) and not aborted:
            return True  # recovered already (by a publish, or an earlier attempt)
        if not aborted:
            # The mounter is gone but something still answers on its connection: not ours to replace.
            log.error(
                "Mountpoint Pod ended but its FUSE session still answers: not remounted",
                extra={"mountpoint_pod": name},
            )
            return True
        log.warning(
            "Mountpoint Pod ended: remounting its FUSE session under %d targets",
            len(targets),
            extra={"mountpoint_pod": name},
        )
        started = time.monotonic()
        try:
            pod = await self.runtime.restart(pod)
            await self._hand_over(pod, source, session)
        except Exception:  # not a cancellation (the driver stopping)
            self.metrics.recoveries.labels(result=FAILED).inc()
            raise
        self.metrics.recoveries.labels(result=RECOVERED).inc()
        self._watch(key)
        log.info(
            "FUSE session remounted in %.0f ms: its %d targets serve again",
            (time.monotonic() - started) * 1000,
            len(targets),
            extra={"mountpoint_pod": name},
        )
        return True

    def _orphaned(self, mounted: MountInfo, table: list[MountInfo]) -> bool:
        """A bind of a Mountpoint Pod that was retired after it died: no source serves it any more."""
        return mounted.fstype == FUSE_FSTYPE and self._source_name(mounted, table) is None

    def _left_behind(
        self, mounted: MountInfo, source: MountInfo | None, name: str, table: list[MountInfo]
    ) -> bool:
        """A bind of a dead session of this very source that the remount did not reach: bound before
        sources were shared mounts (an older driver), so it still shows the dead layer beneath the live
        one."""
        return (
            mounted.fstype == FUSE_FSTYPE
            and source is not None
            and mounted.device != source.device
            and self._source_name(mounted, table) == name
        )

    def _source_name(self, mounted: MountInfo, table: list[MountInfo]) -> str | None:
        for entry in table:
            if entry.device == mounted.device and os.path.dirname(entry.mount_point) == str(self.sources_dir):
                return os.path.basename(entry.mount_point)
        return None

    def _report_dead(self, name: str, source: MountInfo, table: list[MountInfo]) -> None:
        for target in targets_of(source, table):
            record = self._record(target.mount_point)
            log.error(
                "Mountpoint Pod is gone: this target fails with ENOTCONN until its pod is restarted",
                extra={
                    "mountpoint_pod": name,
                    "target_path": target.mount_point,
                    "volume_id": record["volume_id"] if record else "?",
                    "pod": record["pod"] if record else "?",
                },
            )

    def _remove_created_target(self, target: str, record: TargetRecord | None) -> None:
        """Remove the target directory if the driver made it (the spec: the SP deletes what it created
        at the target path); a directory someone else made stays."""
        if record is None or not record.get("created", False):
            return
        try:
            os.rmdir(target)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise FailedPrecondition(f"cannot remove target_path {target}: {exc.strerror}") from exc

    def _record_path(self, target: str) -> Path:
        return self.targets_dir / f"{hashlib.sha256(target.encode()).hexdigest()[:32]}.json"

    def _write_record(self, record: TargetRecord) -> None:
        path = self._record_path(record["target"])
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temporary, path)

    def _record(self, target: str) -> TargetRecord | None:
        try:
            record: TargetRecord = json.loads(self._record_path(target).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return record

    def _delete_record(self, target: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._record_path(target).unlink()


def _context(spec: PublishSpec, target: str, name: str) -> dict[str, str]:
    return {
        "volume_id": spec.volume_id,
        "target_path": target,
        "pod": spec.pod_label,
        "mountpoint_pod": name,
    }


def _mount_fuse_source(source: str, session: SessionRecord) -> int:
    """Mount a new FUSE connection on ``source`` and make it a shared mount; the fd to hand to the
    Mountpoint Pod. Shared, so that the targets bound from it are its peers and a session mounted
    later on top of it reaches them all."""
    # Not os.makedirs(exist_ok=True): it stats an existing directory, and a dead session there fails that.
    with contextlib.suppress(FileExistsError):
        os.mkdir(source, mode=0o700)
    fd = open_fuse_device()
    try:
        mount_fuse(
            fd,
            source,
            allow_other=session["allow_other"],
            read_only=session["read_only"],
            fsname=session["fsname"],
        )
    except BaseException:
        os.close(fd)
        raise
    try:
        make_shared(source)
    except BaseException:
        os.close(fd)
        unmount(source, lazy=True)
        raise
    return fd


async def _aborted(source: str) -> bool:
    """Whether the FUSE connection at ``source`` lost its server; a server too slow to answer statfs
    within the timeout is taken as alive."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(connection_aborted, source), ABORTED_CHECK_TIMEOUT)
    except TimeoutError:
        return False


async def _first_answer(source: str) -> None:
    """Wait until the new mount answers: a stat of its root needs the kernel's INIT and a getattr
    answered by the Mountpoint Pod. A mount that never answers is unmounted by the caller, which
    also ends the waiting thread (the kernel fails the stat)."""
    try:
        await asyncio.wait_for(asyncio.to_thread(os.stat, source), FIRST_ANSWER_TIMEOUT)
    except TimeoutError:
        raise Unavailable(
            f"the file system at {source} did not answer within {FIRST_ANSWER_TIMEOUT:g}s"
        ) from None
    except OSError as exc:
        raise Unavailable(f"the file system at {source} failed: {exc.strerror}") from exc
