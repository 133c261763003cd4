"""Leader election through a coordination.k8s.io/v1 Lease, as client-go does it: any number of replicas, one
leading at a time.

A candidate takes the Lease when it does not exist, or when its holder has not renewed it for
``lease_duration_s`` by the candidate's own clock (holder and renewTime unchanged for that long: clocks of
different machines are never compared). Every write carries the resourceVersion it read, so of two
candidates that saw the same expired Lease only one gets it; the other's write is refused (409).

The leader renews every ``retry_period_s``. When it has not renewed for ``renew_deadline_s`` (shorter than
the lease duration), or it finds the Lease held by someone else, it stops leading at once: the work it runs
is cancelled before another replica may take over. :meth:`LeaderElector.leading` answers the same
question synchronously, for a write that must not happen after that moment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from s3csi.controller.settings import LeaseSettings
from s3csi.kube.api import Api, ApiError, JsonObject, path_of

log = logging.getLogger(__name__)


def micro_time(moment: datetime) -> str:
    """A metav1.MicroTime: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self, api: Api, settings: LeaseSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.api = api
        self.settings = settings
        self.clock = clock
        self._path = path_of("coordination.k8s.io", "v1", "leases", settings.namespace)
        self._observed: tuple[str | None, str | None] | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None
        # When the API server last answered a Lease call (any answer but a failure), and the last failure:
        # the controller's health (controller/health.py).
        self.answered_at = clock()
        self.last_error = ""

    def leading(self) -> bool:
        """Whether this replica holds the Lease now (renewed within the renew deadline)."""
        return (
            self._renewed_at is not None and self.clock() - self._renewed_at < self.settings.renew_deadline_s
        )

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Forever: wait for the Lease, run ``lead()`` while holding it, cancel it when the Lease is lost."""
        while True:
            await self._acquire()
            log.info(
                "leading: holding Lease %s/%s as %s",
                self.settings.namespace,
                self.settings.name,
                self.settings.identity,
            )
            work = asyncio.create_task(lead(), name="s3csi-controller-lead")
            try:
                await self._renew_until_lost(work)
            finally:
                self._renewed_at = None
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            log.warning(
                "stopped leading: Lease %s/%s lost; reconciling stopped",
                self.settings.namespace,
                self.settings.name,
            )

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                return
            await asyncio.sleep(self.settings.retry_period_s)

    async def _renew_until_lost(self, work: asyncio.Task[None]) -> None:
        while self.leading():
            sleeper = asyncio.ensure_future(asyncio.sleep(self.settings.retry_period_s))
            done, _ = await asyncio.wait({sleeper, work}, return_when=asyncio.FIRST_COMPLETED)
            sleeper.cancel()
            if work in done:
                work.result()  # the work's failure ends leading, and the process (main decides)
                return
            if not await self._try_acquire_or_renew() and self._holder_is_other:
                return

    @property
    def _holder_is_other(self) -> bool:
        return self._observed is not None and self._observed[0] != self.settings.identity

    async def _try_acquire_or_renew(self) -> bool:
        name = self.settings.name
        started = self.clock()
        try:
            lease = await self.api.call("GET", f"{self._path}/{name}")
        except ApiError as exc:
            if exc.status != 404:
                self.last_error = f"Lease {self.settings.namespace}/{name} cannot be read: {exc}"
                log.warning("%s", self.last_error)
                return False
            self.answered_at = self.clock()
            return await self._write(None, started)
        self.answered_at = self.clock()
        spec = lease.get("spec") or {}
        observed = (spec.get("holderIdentity"), spec.get("renewTime"))
        if observed != self._observed:
            self._observed, self._observed_at = observed, started
        holder = observed[0]
        expired = started - self._observed_at >= self.settings.lease_duration_s
        if holder and holder != self.settings.identity and not expired:
            return False
        return await self._write(lease, started)

    async def _write(self, lease: JsonObject | None, started: float) -> bool:
        now = micro_time(datetime.now(UTC))
        spec = dict((lease or {}).get("spec") or {})
        mine = spec.get("holderIdentity") == self.settings.identity
        if not mine:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
        spec.update(
            holderIdentity=self.settings.identity,
            leaseDurationSeconds=self.settings.lease_duration_seconds,
            renewTime=now,
        )
        body: JsonObject = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.settings.name, "namespace": self.settings.namespace},
            "spec": spec,
        }
        try:
            if lease is None:
                written = await self.api.call("POST", self._path, body=body)
            else:
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                written = await self.api.call("PUT", f"{self._path}/{self.settings.name}", body=body)
        except ApiError as exc:
            if exc.status not in (409,):
                lease_name = f"{self.settings.namespace}/{self.settings.name}"
                self.last_error = f"Lease {lease_name} cannot be written: {exc}"
                log.warning("%s", self.last_error)
            return False
        written_spec = written.get("spec") or {}
        self._observed = (written_spec.get("holderIdentity"), written_spec.get("renewTime"))
        self._observed_at = started
        self._renewed_at = started  # measured from before the call: never later than the server's view
        return True
