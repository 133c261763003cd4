"""The node plugin's metrics (``s3csi driver``, every mode): its CSI calls, and what its Mountpoint Pods do.

Labels are bounded: a CSI method name, a gRPC code name, a recovery result; never a volume, pod or path."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: a Probe answers in milliseconds, a NodePublishVolume that waits for a Mountpoint Pod takes up to
# kubelet's 2-minute timeout.
CSI_DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

RECOVERED = "recovered"
FAILED = "failed"


class NodeMetrics:
    """The metrics of one CSI server, registered in ``registry`` (by default a registry of its own, which
    nothing serves: a component built without an endpoint still counts)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self.registry = registry
        self.csi_requests = Counter(
            "s3csi_csi_requests",
            "CSI calls answered, by method and gRPC status code",
            ("method", "code"),
            registry=registry,
        )
        self.csi_duration = Histogram(
            "s3csi_csi_request_duration_seconds",
            "Time from a CSI call's arrival to its answer",
            ("method",),
            buckets=CSI_DURATION_BUCKETS,
            registry=registry,
        )
        self.mountpoint_pods = Gauge(
            "s3csi_node_mountpoint_pods",
            "Mountpoint Pods (mounters) whose FUSE session this node plugin serves now",
            registry=registry,
        )
        self.publishes_waiting = Gauge(
            "s3csi_node_publishes_waiting",
            "NodePublishVolume calls waiting for their Mountpoint Pod now",
            registry=registry,
        )
        self.recoveries = Counter(
            "s3csi_node_recoveries",
            "FUSE sessions of a dead mounter remounted (recovered) or attempts that failed",
            ("result",),
            registry=registry,
        )
        for result in (RECOVERED, FAILED):
            self.recoveries.labels(result=result)  # both series exist from the start, at 0

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        self.csi_requests.labels(method=method, code=code).inc()
        self.csi_duration.labels(method=method).observe(seconds)

    def count_mountpoint_pods(self, count: Callable[[], int]) -> None:
        """Read the served Mountpoint Pods at each scrape from ``count`` (the mount table is the truth)."""
        self.mountpoint_pods.set_function(lambda: float(count()))
