"""``s3csi controller``'s ``/healthz``: unhealthy when it has lost the Kubernetes API for longer than a bound.

A replica that cannot reach the API cannot lead or follow, and a leader whose watches are broken reconciles a
stale world: both last longer than any brief outage only when something is wrong with this replica (its
network, its token), which a restart may fix. Shorter outages are retried in place and stay healthy."""

from __future__ import annotations

import time
from collections.abc import Callable

from s3csi.controller.leader import LeaderElector
from s3csi.controller.main import Controller
from s3csi.kube.informer import broken_watch
from s3csi.metrics.endpoint import HealthCheck

# Seconds without an answer before the replica is unhealthy: several Lease retries and informer retries
# (the informers retry at least every 30 s), and longer than the Lease's 15 s duration.
API_LOST_S = 120.0


def lease_problem(answered_at: float, last_error: str, now: float, bound_s: float) -> str | None:
    """Why the replica is unhealthy when the API server has not answered a Lease call for ``bound_s``."""
    if now - answered_at <= bound_s:
        return None
    silent = now - answered_at
    return f"the Kubernetes API has not answered a Lease call for {silent:.0f}s: {last_error or 'no answer'}"


def controller_check(
    elector: LeaderElector,
    leader: Callable[[], Controller | None],
    bound_s: float = API_LOST_S,
) -> HealthCheck:
    """The check of a replica whose Lease calls ``elector`` makes and whose current leader's work (None while
    it follows) ``leader`` returns."""

    async def check() -> str | None:
        problem = lease_problem(elector.answered_at, elector.last_error, elector.clock(), bound_s)
        work = leader()
        if problem is None and work is not None and elector.leading():
            problem = broken_watch(work.informers, time.monotonic(), bound_s)
        return problem

    return check
