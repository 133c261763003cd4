"""Prometheus metrics: each process (mounter, node plugin, controller, webhook) has a registry of its own and
serves it on one ``/metrics`` endpoint (:mod:`s3csi.metrics.endpoint`). The metric names, their labels and how
Prometheus finds each endpoint: docs/observability.md."""
