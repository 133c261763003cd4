"""How ``s3csi controller`` runs: the API it talks to, its Lease, its grace period, the Mountpoint Pods it
builds. Validated when built, each error naming the flag."""

from __future__ import annotations

import math
from dataclasses import dataclass

from s3csi.csi.settings import DEFAULT_DRIVER_NAME, DRIVER_NAME_PATTERN
from s3csi.errors import InvalidArgument
from s3csi.kube.settings import KubeApiSettings
from s3csi.podmounter.names import is_dns1123_label, is_dns1123_subdomain
from s3csi.podmounter.podspec import MountpointPodSettings

DEFAULT_LEASE_NAME = "s3csi-controller"
DEFAULT_LEASE_NAMESPACE = "kube-system"


@dataclass(frozen=True)
class LeaseSettings:
    """client-go's leader-election timings: a leader that could not renew for ``renew_deadline_s`` stops;
    another replica takes the lease once it has seen it unchanged for ``lease_duration_s``."""

    name: str = DEFAULT_LEASE_NAME
    namespace: str = DEFAULT_LEASE_NAMESPACE
    identity: str = ""
    """This replica's holder identity (the pod name, unique per replica)."""
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not is_dns1123_subdomain(self.name):
            raise InvalidArgument(f"--lease-name {self.name[:80]!r} is not a DNS-1123 subdomain")
        if not is_dns1123_label(self.namespace):
            raise InvalidArgument(f"--lease-namespace {self.namespace[:80]!r} is not a DNS-1123 label")
        if not self.identity or len(self.identity) > 253:
            raise InvalidArgument("--identity must be 1 to 253 characters (default: the host name)")
        if not 0 < self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise InvalidArgument(
                "lease timings must satisfy 0 < --lease-retry-period < --lease-renew-deadline < "
                f"--lease-duration (got {self.retry_period_s:g}, {self.renew_deadline_s:g}, "
                f"{self.lease_duration_s:g}): a leader must stop before another may take over"
            )

    @property
    def lease_duration_seconds(self) -> int:
        """The Lease's ``leaseDurationSeconds`` (an integer in the API)."""
        return max(1, math.ceil(self.lease_duration_s))


@dataclass(frozen=True)
class ControllerSettings:
    kube: KubeApiSettings
    mountpoint_pods: MountpointPodSettings
    lease: LeaseSettings
    driver_name: str = DEFAULT_DRIVER_NAME
    """The CSIDriver whose PVs are served (``spec.csi.driver``): the node plugin's --driver-name."""
    idle_grace_s: float = 60.0
    """How long a Mountpoint Pod serving nobody waits before it is deleted: a workload restarting on the same
    node within it joins the running pod instead of waiting for a new one."""
    watch_timeout_s: int = 300
    """Each watch request asks the API server to end it after this long; it is resumed from its last
    resourceVersion (a bookmark's included)."""
    resync_s: float = 60.0
    """A full pass at least this often, even without an event (a secret rotated, an API call failed)."""

    def __post_init__(self) -> None:
        if not DRIVER_NAME_PATTERN.fullmatch(self.driver_name):
            raise InvalidArgument(
                f"--driver-name {self.driver_name[:80]!r} must be a domain name of at most 63 characters"
            )
        if not self.idle_grace_s >= 0:
            raise InvalidArgument("--idle-grace-period must be zero or more seconds")
        if not 0 < self.resync_s < float("inf"):
            raise InvalidArgument("--resync-period must be a positive number of seconds")
        if not 1 <= self.watch_timeout_s <= 3600:
            raise InvalidArgument("--watch-timeout must be 1 to 3600 seconds")
