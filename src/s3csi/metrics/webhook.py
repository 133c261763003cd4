"""The metrics of ``s3csi webhook``: AdmissionReviews by path and result, and how long each took."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds: a pure decision takes microseconds; mount propagation looks claims up in the API server.
REVIEW_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

ALLOWED = "allowed"  # allowed unchanged
PATCHED = "patched"  # allowed with a JSON patch
DENIED = "denied"
ERROR = "error"  # the review could not be read or decided (an answer 4xx, or allowed after an internal error)


class WebhookMetrics:
    """Registered in ``registry`` (by default one of its own that nothing serves)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self.registry = registry
        self.reviews = Counter(
            "s3csi_admission_reviews",
            "AdmissionReviews answered, by webhook path and result",
            ("path", "result"),
            registry=registry,
        )
        self.duration = Histogram(
            "s3csi_admission_review_duration_seconds",
            "Time to read, decide and answer an AdmissionReview",
            ("path",),
            buckets=REVIEW_BUCKETS,
            registry=registry,
        )

    def observe(self, path: str, result: str, seconds: float) -> None:
        self.reviews.labels(path=path, result=result).inc()
        self.duration.labels(path=path).observe(seconds)
