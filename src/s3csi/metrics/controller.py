"""The metrics of ``s3csi controller``: reconcile passes, the work waiting, Mountpoint Pods created and
retired, and whether this replica leads."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: a pass over a cached world takes milliseconds; thousands of pods or a slow API server, seconds.
RECONCILE_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

OK = "ok"
ERROR = "error"


class ControllerMetrics:
    """Registered in ``registry`` (by default one of its own that nothing serves)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self.registry = registry
        self.reconciles = Counter(
            "s3csi_controller_reconciles",
            "Reconcile passes, by result: error when one of the pass's API calls failed",
            ("result",),
            registry=registry,
        )
        for result in (OK, ERROR):
            self.reconciles.labels(result=result)
        self.reconcile_duration = Histogram(
            "s3csi_controller_reconcile_duration_seconds",
            "Time a reconcile pass takes, its API calls included",
            buckets=RECONCILE_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "s3csi_controller_queue_depth",
            "Watch events received and not yet reconciled (0 between passes)",
            registry=registry,
        )
        self.mountpoint_pods_created = Counter(
            "s3csi_controller_mountpoint_pods_created",
            "Mountpoint Pods this replica created",
            registry=registry,
        )
        self.mountpoint_pods_retired = Counter(
            "s3csi_controller_mountpoint_pods_retired",
            "Mountpoint Pods this replica deleted after they served nobody for the grace period",
            registry=registry,
        )
        self.leader = Gauge(
            "s3csi_controller_leader", "1 while this replica holds the Lease, else 0", registry=registry
        )
