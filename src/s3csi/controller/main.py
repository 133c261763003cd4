"""The controller at work while it leads: watches, one reconcile pass after each batch of changes, and the
API calls that carry out the pass's decisions (docs/kubernetes.md#the-controller).

Each pass looks at everything (level-triggered, as Kubernetes controllers are): the workload pods scheduled
to a node that use this driver's volumes, their sharing keys (:mod:`s3csi.controller.inputs`), the
attachments and Mountpoint Pods that exist, and decides (:mod:`s3csi.controller.reconcile`). Every write
carries the resourceVersion it was decided on; a conflict (409) re-reads the object and the next pass decides
again, so a restart or a change of leader in the middle of a pass loses nothing and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from s3csi.controller.inputs import (
    Objects,
    Refused,
    SecretRef,
    Served,
    claim_volumes,
    node_publish_secret,
    pod_label,
    pod_volumes,
    secret_refs,
    service_account_key,
)
from s3csi.controller.reconcile import (
    CreateMountpointPod,
    DeleteAttachment,
    DeleteMountpointPod,
    MountpointPodState,
    Workload,
    World,
    WriteAttachment,
    decide,
    keeps_entry,
)
from s3csi.controller.settings import ControllerSettings
from s3csi.kube.api import Api, ApiError, JsonObject, path_of
from s3csi.kube.events import EventType, involved_pod, object_event
from s3csi.kube.informer import Informer
from s3csi.kube.recorder import EventRecorder
from s3csi.metrics.controller import ERROR, OK, ControllerMetrics
from s3csi.podmounter.attachment import GROUP, PLURAL, VERSION, MountpointPodAttachment, attachment_status
from s3csi.podmounter.names import label_value
from s3csi.podmounter.podspec import APP_COMPONENT_LABEL, APP_NAME, APP_NAME_LABEL, COMPONENT, mountpoint_pod
from s3csi.volume.context import DRIVER_VERSION_KEY, SHARING_KEY_LABEL

RBAC_MANIFEST = "deploy/controller-rbac.yaml"
log = logging.getLogger(__name__)

EVENT_REASON = "VolumeNotServed"
# The Mountpoint Pod lifecycle (docs/observability.md#events): on the Mountpoint Pod, and when it cannot
# be created, on the workload pods waiting for it.
CREATED_REASON = "MountpointPodCreated"
RETIRED_REASON = "MountpointPodRetired"
CREATE_FAILED_REASON = "MountpointPodCreateFailed"
COMPONENT_NAME = "s3csi-controller"
SECRET_RETRY_S = 1.0


class Controller:
    """One leader's work: :meth:`run` until cancelled (the Lease lost)."""

    def __init__(
        self,
        settings: ControllerSettings,
        api: Api,
        leading: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.api = api
        self.leading = leading
        self.clock = clock
        self.metrics = ControllerMetrics() if metrics is None else metrics
        self.passes = 0
        # API calls of the current pass that failed (other than a conflict the next pass decides again).
        self._failures = 0
        self._dirty = asyncio.Event()
        self._events = EventRecorder(lambda: api)
        self._by_uid: dict[str, JsonObject] = {}
        self._idle_since: dict[str, float] = {}
        self._reported: set[tuple[str, str]] = set()
        self._uses: dict[str, tuple[tuple[str, ...], list[Served | Refused]]] = {}
        namespace = settings.mountpoint_pods.namespace
        self._pods_path = path_of("", "v1", "pods")
        self._mp_path = path_of("", "v1", "pods", namespace)
        self._attachments_path = path_of(GROUP, VERSION, PLURAL)
        self._version_label = label_value(settings.mountpoint_pods.driver_version)

        def informer(path: str, resource: str, selectors: dict[str, str] | None = None) -> Informer:
            return Informer(
                api,
                path,
                resource=resource,
                account="the controller",
                rbac_manifest=RBAC_MANIFEST,
                query=selectors,
                on_change=self._changed,
                watch_timeout_s=settings.watch_timeout_s,
            )

        self.pods = informer(self._pods_path, "pods", {"fieldSelector": "spec.nodeName!="})
        self.claims = informer(path_of("", "v1", "persistentvolumeclaims"), "persistentvolumeclaims")
        self.volumes = informer(path_of("", "v1", "persistentvolumes"), "persistentvolumes")
        # authenticationSource pod: the role annotation of the workloads' ServiceAccounts (objects only; a
        # ServiceAccount holds no token since Kubernetes 1.24).
        self.service_accounts = informer(path_of("", "v1", "serviceaccounts"), "serviceaccounts")
        selector = f"{APP_NAME_LABEL}={APP_NAME},{APP_COMPONENT_LABEL}={COMPONENT}"
        self.mountpoint_pods = informer(self._mp_path, "pods", {"labelSelector": selector})
        self.attachments = informer(self._attachments_path, PLURAL)
        self.informers = (
            self.pods,
            self.claims,
            self.volumes,
            self.service_accounts,
            self.mountpoint_pods,
            self.attachments,
        )

    def _changed(self) -> None:
        self.metrics.queue_depth.inc()
        self._dirty.set()

    @property
    def events(self) -> int:
        return sum(informer.events for informer in self.informers)

    async def run(self) -> None:
        watches = [asyncio.create_task(informer.run()) for informer in self.informers]
        try:
            await asyncio.gather(*(informer.synced.wait() for informer in self.informers))
            log.info(
                "caches synced: %d pods, %d attachments",
                len(self.pods.objects),
                len(self.attachments.objects),
            )
            wake_at: float | None = None
            while True:
                timeout = self.settings.resync_s
                if wake_at is not None:
                    timeout = min(timeout, max(0.0, wake_at - self.clock()))
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
                # arrives as the event is set, and a replica that lost the Lease would keep running.
                try:
                    async with asyncio.timeout(timeout):
                        await self._dirty.wait()
                except TimeoutError:
                    pass
                self._dirty.clear()
                wake_at = await self.reconcile_once()
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
            self.metrics.queue_depth.set(0)  # a replica that stopped leading has no work waiting

    async def reconcile_once(self) -> float | None:
        """One pass; returns when the next Mountpoint Pod's grace period ends, if one is waiting. Counted in
        the metrics: ``error`` when one of its API calls failed (or the pass itself did)."""
        self.metrics.queue_depth.set(0)  # the events so far are all in this pass's view
        self._failures = 0
        started = time.perf_counter()
        result = ERROR
        try:
            next_retirement = await self._reconcile()
            if not self._failures:
                result = OK
            return next_retirement
        finally:
            self.metrics.reconciles.labels(result=result).inc()
            self.metrics.reconcile_duration.observe(time.perf_counter() - started)

    async def _reconcile(self) -> float | None:
        self.passes += 1
        pods = list(self.pods.objects.values())
        objects = Objects(
            claims=self.claims.objects,
            volumes={name: pv for (_ns, name), pv in self.volumes.objects.items()},
            secrets={},
            service_accounts=self.service_accounts.objects,
        )
        refs: set[SecretRef] = set()
        for pod in pods:
            refs |= secret_refs(pod, objects, self.settings.driver_name)
        if refs:
            secrets = await self._read_secrets(refs)
            if secrets is None:
                # Not "missing": an API failure must neither split nor refuse workloads. Try again soon.
                self._failures += 1
                return self.clock() + SECRET_RETRY_S
            objects = replace(objects, secrets=secrets)
        workloads: list[Workload] = []
        live: set[str] = set()
        for pod in pods:
            if not keeps_entry(pod):
                continue
            uid = str(pod["metadata"]["uid"])
            live.add(uid)
            for use in self._pod_uses(uid, pod, objects):
                if isinstance(use, Served):
                    workloads.append(Workload(uid, use.inputs, use.key, use.resources, use.cache))
                else:
                    await self._report(pod, use)
        self._forget_reports(live)
        self._uses = {uid: cached for uid, cached in self._uses.items() if uid in live}
        decision = decide(
            World(
                workloads=workloads,
                live_uids=frozenset(live),
                attachments={
                    name: cast(MountpointPodAttachment, obj)
                    for (_ns, name), obj in self.attachments.objects.items()
                },
                mountpoint_pods=[self._state(pod) for pod in self.mountpoint_pods.objects.values()],
                idle_since=self._idle_since,
            ),
            now=self.clock(),
            wall_time=datetime.now(UTC),
            grace_s=self.settings.idle_grace_s,
        )
        self._idle_since = decision.idle_since
        by_uid = self._by_uid = {str(pod["metadata"]["uid"]): pod for pod in pods}
        for workload_uid, cause in decision.refused:
            await self._report_cause(by_uid[workload_uid], cause)
        log.debug(
            "pass %d: %d workload volumes, %d actions", self.passes, len(workloads), len(decision.actions)
        )
        for action in decision.actions:
            if not self.leading():
                log.warning("pass %d stopped: this replica no longer holds the Lease", self.passes)
                return None  # not one more write
            if isinstance(action, CreateMountpointPod):
                await self._create_mountpoint_pod(action)
            elif isinstance(action, WriteAttachment):
                await self._write_attachment(action)
            elif isinstance(action, DeleteAttachment):
                await self._delete_attachment(action)
            else:
                await self._delete_mountpoint_pod(action)
        return decision.next_retirement

    def _pod_uses(self, uid: str, pod: JsonObject, objects: Objects) -> list[Served | Refused]:
        """:func:`pod_volumes`, computed again only when the pod, its ServiceAccount, one of its claims or
        their PVs changed (the resourceVersions say so): a pass then costs a lookup per unchanged pod. A
        volume with a node-publish secret is computed every pass, as the secret is read afresh for each."""
        namespace = str(pod["metadata"].get("namespace") or "")
        account = objects.service_accounts.get(service_account_key(pod)) or {}
        stamp = [str((obj.get("metadata") or {}).get("resourceVersion")) for obj in (pod, account)]
        for _volume, claim_name, _read_only in claim_volumes(pod):
            claim = objects.claims.get((namespace, claim_name)) or {}
            pv = objects.volumes.get(str((claim.get("spec") or {}).get("volumeName") or "")) or {}
            if node_publish_secret(pv) is not None:
                return pod_volumes(
                    pod, objects, self.settings.driver_name, self.settings.mountpoint_pods.resources
                )
            stamp += [str((obj.get("metadata") or {}).get("resourceVersion")) for obj in (claim, pv)]
        cached = self._uses.get(uid)
        if cached is not None and cached[0] == tuple(stamp):
            return cached[1]
        uses = pod_volumes(pod, objects, self.settings.driver_name, self.settings.mountpoint_pods.resources)
        self._uses[uid] = (tuple(stamp), uses)
        return uses

    def _state(self, pod: JsonObject) -> MountpointPodState:
        metadata = pod.get("metadata") or {}
        labels = metadata.get("labels") or {}
        deleting = bool(metadata.get("deletionTimestamp"))
        phase = (pod.get("status") or {}).get("phase")
        return MountpointPodState(
            name=str(metadata.get("name")),
            key=str(labels.get(SHARING_KEY_LABEL, "")),
            current_version=labels.get(DRIVER_VERSION_KEY) == self._version_label,
            usable=not deleting and phase not in ("Failed", "Succeeded"),
            deleting=deleting,
            created=str(metadata.get("creationTimestamp") or ""),
        )

    async def _read_secrets(self, refs: set[SecretRef]) -> dict[SecretRef, JsonObject | None] | None:
        """The node-publish secrets, read for this pass only (a rotated key is seen at the next pass); None
        for a pass that must wait because one could not be read (an answer other than 404)."""
        found: dict[SecretRef, JsonObject | None] = {}
        for ref in sorted(refs, key=lambda r: (r.namespace, r.name)):
            try:
                found[ref] = await self.api.call("GET", path_of("", "v1", "secrets", ref.namespace, ref.name))
            except ApiError as exc:
                if exc.status != 404:
                    log.warning(
                        "node-publish secret %s/%s cannot be read, pass postponed: %s",
                        ref.namespace,
                        ref.name,
                        exc,
                    )
                    return None
                found[ref] = None
        return found

    async def _report(self, pod: JsonObject, refused: Refused) -> None:
        await self._report_cause(pod, f"volume {refused.volume}: {refused.cause}")

    async def _report_cause(self, pod: JsonObject, cause: str) -> None:
        uid = str(pod["metadata"]["uid"])
        if (uid, cause) in self._reported:
            return
        self._reported.add((uid, cause))
        log.warning("pod %s cannot be served: %s", pod_label(pod), cause)
        if not self.leading():
            return
        # Named by the pod and the cause: the same cause is recorded once, by any replica.
        if not await self._record(pod, EVENT_REASON, cause, "Warning", once_per=cause):
            self._reported.discard((uid, cause))

    async def _record(
        self, involved: JsonObject, reason: str, message: str, type: EventType, once_per: str = ""
    ) -> bool:
        """An Event on ``involved`` (a Pod), by the leader only; whether it was recorded."""
        if not self.leading():
            return False
        event = object_event(
            involved_pod(involved),
            reason=reason,
            message=message,
            component=COMPONENT_NAME,
            instance=self.settings.lease.identity,
            now=datetime.now(UTC),
            once_per=once_per,
            type=type,
        )
        return await self._events.record(event)

    def _workload_pods(self, uids: tuple[str, ...]) -> list[JsonObject]:
        return [self._by_uid[uid] for uid in uids if uid in self._by_uid]

    def _forget_reports(self, live: set[str]) -> None:
        self._reported = {(uid, cause) for uid, cause in self._reported if uid in live}

    async def _create_mountpoint_pod(self, action: CreateMountpointPod) -> None:
        inputs = action.inputs
        body = mountpoint_pod(
            self.settings.mountpoint_pods,
            node_name=inputs.node_name,
            key=action.key,
            volume_id=inputs.volume_id,
            persistent_volume_name=inputs.persistent_volume_name,
            resources=action.resources,
            cache=action.cache,
        )
        volume = f"volume {inputs.volume_id}" + (
            f" (PV {inputs.persistent_volume_name})" if inputs.persistent_volume_name else ""
        )
        waiting = self._workload_pods(action.workloads)
        try:
            created = await self.api.call("POST", self._mp_path, body=body)
        except ApiError as exc:
            self._failures += 1
            log.error(
                "Mountpoint Pod for sharing key %s on node %s cannot be created: %s",
                action.key,
                inputs.node_name,
                exc,
            )
            for pod in waiting:
                await self._record(
                    pod,
                    CREATE_FAILED_REASON,
                    f"the Mountpoint Pod of {volume} on node {inputs.node_name} cannot be created: {exc}",
                    "Warning",
                    once_per=action.key,
                )
            return
        log.info(
            "created Mountpoint Pod %s for sharing key %s on node %s",
            created["metadata"]["name"],
            action.key,
            inputs.node_name,
        )
        names = ", ".join(pod_label(pod) for pod in waiting) or "none left"
        await self._record(
            created,
            CREATED_REASON,
            f"serves {volume} on node {inputs.node_name} (sharing key {action.key}) for pods {names}",
            "Normal",
        )
        self.metrics.mountpoint_pods_created.inc()
        self.mountpoint_pods.put(created)
        self._dirty.set()  # its entries are written in the next pass

    async def _delete_mountpoint_pod(self, action: DeleteMountpointPod) -> None:
        path = path_of("", "v1", "pods", self.settings.mountpoint_pods.namespace, action.name)
        known = self.mountpoint_pods.objects.get((self.settings.mountpoint_pods.namespace, action.name))
        try:
            deleted = await self.api.call("DELETE", path)
        except ApiError as exc:
            if exc.status == 404:
                self.mountpoint_pods.drop((self.settings.mountpoint_pods.namespace, action.name))
                return
            self._failures += 1
            log.error("Mountpoint Pod %s cannot be deleted: %s", action.name, exc)
            return
        log.info(
            "retired Mountpoint Pod %s (sharing key %s): it served nobody for the grace period",
            action.name,
            action.key,
        )
        why = f"it served no workload pod for the grace period ({self.settings.idle_grace_s:g} s)"
        if action.outdated:
            why += (
                f"; it runs another driver version than this controller's "
                f"({self.settings.mountpoint_pods.driver_version}), so it took no new ones"
            )
        retired = deleted if deleted.get("kind") == "Pod" else known
        if retired is not None:
            await self._record(retired, RETIRED_REASON, f"retired: {why}", "Normal")
        self.metrics.mountpoint_pods_retired.inc()
        self._idle_since.pop(action.name, None)
        if deleted.get("kind") == "Pod":
            self.mountpoint_pods.put(deleted)
        self._dirty.set()

    async def _write_attachment(self, action: WriteAttachment) -> None:
        obj = action.obj
        name = obj["metadata"]["name"]
        try:
            if action.create:
                written = await self.api.call("POST", self._attachments_path, body=dict(obj))
            else:
                written = await self.api.call("PUT", f"{self._attachments_path}/{name}", body=dict(obj))
        except ApiError as exc:
            await self._after_refusal(name, exc, "written")
            return
        status: Any = attachment_status(obj)
        if written.get("status") != status:
            try:
                written = await self.api.call(
                    "PUT", f"{self._attachments_path}/{name}/status", body={**written, "status": status}
                )
            except ApiError as exc:  # the counts are for kubectl only; the next write sets them again
                log.warning("status of attachment %s cannot be written: %s", name, exc)
        self.attachments.put(written)

    async def _delete_attachment(self, action: DeleteAttachment) -> None:
        body: JsonObject = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if action.resource_version:
            body["preconditions"] = {"resourceVersion": action.resource_version}
        try:
            await self.api.call("DELETE", f"{self._attachments_path}/{action.name}", body=body)
        except ApiError as exc:
            await self._after_refusal(action.name, exc, "deleted")
            return
        log.info("deleted attachment %s: it lists no Mountpoint Pod", action.name)
        self.attachments.drop(("", action.name))

    async def _after_refusal(self, name: str, exc: ApiError, verb: str) -> None:
        """A write refused on a stale view (409, 404): read the object again and let the next pass decide."""
        if exc.status not in (404, 409):
            self._failures += 1
            log.error("attachment %s cannot be %s: %s", name, verb, exc)
            return
        try:
            self.attachments.put(await self.api.call("GET", f"{self._attachments_path}/{name}"))
        except ApiError as again:
            if again.status != 404:
                self._failures += 1
                log.error("attachment %s cannot be read: %s", name, again)
                return
            self.attachments.drop(("", name))
        self._dirty.set()
