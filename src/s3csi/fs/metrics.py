"""The mounter's Prometheus metrics: FUSE requests, S3 requests, read-ahead, open files
(docs/observability.md, "Mounter metrics", has each metric, its labels and the mount-s3 metric it maps to).

One mount per process, so every series carries the same ``volume_id``; every label value comes from a fixed
set (FUSE operation names, errno names, S3 API names, error classes), never from a file name or an object key.

The cost per request is a clock read and a few additions: the label children are bound once (an error's
child on its first occurrence), the FUSE handlers are wrapped only when the metrics endpoint is on, and the
read-ahead counts and open files are read when Prometheus scrapes (``bench/metrics_cost.py`` measures the
whole cost). The S3 counts are also what ``--log-metrics`` logs (:meth:`MounterMetrics.s3_counts`): the S3
client counts its requests in this one place.
"""

from __future__ import annotations

import bisect
import errno
import itertools
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyfuse3
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from s3csi.fs.operations import OpenFile
from s3csi.fs.prefetch import PrefetchCounts
from s3csi.metrics.endpoint import new_registry
from s3csi.s3.errors import CONNECTION_ERROR, CONNECTION_LOST, THROTTLING_CODES, TIMEOUT, S3Error

VOLUME_ID = "volume_id"

FUSE_OPS = (
    "lookup",
    "forget",
    "getattr",
    "setattr",
    "readlink",
    "mknod",
    "mkdir",
    "unlink",
    "rmdir",
    "symlink",
    "rename",
    "link",
    "open",
    "read",
    "write",
    "flush",
    "release",
    "fsync",
    "opendir",
    "readdir",
    "releasedir",
    "statfs",
    "setxattr",
    "getxattr",
    "listxattr",
    "removexattr",
    "create",
)
"""The FUSE requests measured: the handlers of ``pyfuse3.Operations`` the file system answers (``init`` and
``destroy`` are not requests a workload makes)."""

OTHER_ERRNO = "EOTHER"
"""The errno label of a value Linux has no name for (never seen from this file system; bounds the label)."""

# Seconds. A FUSE request answered from memory takes tens of microseconds, one that waits on S3 milliseconds
# to seconds.
FUSE_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Bytes of one read or write request: the kernel sends 4 KiB pages up to 1 MiB (the FUSE maximum).
IO_SIZE_BUCKETS = (512, 4096, 16384, 65536, 131072, 262144, 524288, 1048576)
# Seconds, first byte and whole request: a HEAD in milliseconds, an 8 MiB part in tens to hundreds.
S3_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

THROTTLED = "throttled"
CLIENT = "client"
SERVER = "server"
NETWORK = "network"
TIMED_OUT = "timeout"
ERROR_CLASSES = (THROTTLED, CLIENT, SERVER, NETWORK, TIMED_OUT)
READ = "read"
WRITE = "write"
OPEN_MODES = (READ, WRITE)
IO_OPS = (READ, WRITE)

_NETWORK_CODES = frozenset({CONNECTION_ERROR, CONNECTION_LOST, "TLSError"})
_TIMEOUT_CODES = frozenset({TIMEOUT, "RequestTimeout"})
# S3 may put these in the body of a 200 answer (CompleteMultipartUpload, CopyObject): the server's fault.
_SERVER_CODES = frozenset({"InternalError", "ServiceUnavailable", "MalformedResponse"})
# The requests whose bodies are object bytes, counted by s3csi_s3_transferred_bytes_total (listings, error
# answers and the XML of multipart calls are not).
DATA_OPERATIONS = frozenset({"GetObject", "PutObject", "UploadPart"})
HTTP_SERVER_ERRORS = 500
HTTP_TOO_MANY_REQUESTS = 429


def errno_name(code: int) -> str:
    """``ENOENT`` for 2: the errno label of a failed FUSE request."""
    return errno.errorcode.get(code, OTHER_ERRNO)


def error_class(code: str, status: int | None) -> str:
    """The class of a failed S3 request, from S3's error code and the HTTP status (None: no answer):

    - throttled: S3 asked to slow down (SlowDown, 429, …), whatever the status;
    - timeout: no complete answer in time (ours), or S3's RequestTimeout;
    - network: no connection, or it broke (TCP, TLS);
    - server: a 5xx answer, or an error S3 owns (InternalError in a 200 body, a response that cannot be read);
    - client: every other refusal (4xx: missing key, access denied, bad request) and credentials that could
      not be had."""
    if code in THROTTLING_CODES or status == HTTP_TOO_MANY_REQUESTS:
        return THROTTLED
    if code in _TIMEOUT_CODES:
        return TIMED_OUT
    if code in _NETWORK_CODES:
        return NETWORK
    if code in _SERVER_CODES or (status is not None and status >= HTTP_SERVER_ERRORS):
        return SERVER
    return CLIENT


def open_file_modes(files: Iterable[OpenFile]) -> dict[str, int]:
    """Open handles by mode: ``write`` for a handle that writes (streaming or staged), else ``read``."""
    counts = dict.fromkeys(OPEN_MODES, 0)
    for handle in files:
        counts[WRITE if handle.writes or handle.writer is not None else READ] += 1
    return counts


def default_volume_id(bucket: str, prefix: str) -> str:
    """The ``volume_id`` of a mount made by hand (``s3csi mount``): ``bucket`` or ``bucket/prefix``."""
    return f"{bucket}/{prefix}".rstrip("/")


Handler = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class S3Counts:
    """The S3 requests counted so far (``--log-metrics``'s summary): the numbers behind
    ``s3csi_s3_requests_total``, ``s3csi_s3_request_errors_total`` and
    ``s3csi_s3_transferred_bytes_total``."""

    requests: Mapping[str, int]  # by operation; each retry is one
    failures: Mapping[str, int]  # by operation, whatever the error class
    sent: int  # object bytes sent (PutObject, UploadPart)
    received: int  # object bytes received (GetObject)


class Count:
    """A counter's value. Updated on the event loop only, and read there by the endpoint: no lock."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Buckets:
    """A histogram's counts per bucket (the last is +Inf) and sum; event loop only, like :class:`Count`."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # The first bound at or above the value: Prometheus buckets count values <= their bound.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class _Family:
    """One metric: its children by label values (``volume_id`` first), made on first use."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float] = ()):
        self.name, self.documentation, self.labels, self.buckets = name, documentation, tuple(labels), buckets
        self.children: dict[tuple[str, ...], Any] = {}

    def child(self, *values: str) -> Any:
        found = self.children.get(values)
        if found is None:
            found = self.children[values] = Buckets(self.buckets) if self.buckets else Count()
        return found

    def collect(self) -> Metric:
        if not self.buckets:
            counter = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
            for values, count in list(self.children.items()):
                counter.add_metric(values, count.value)
            return counter
        histogram = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        bounds = [str(float(bound)) for bound in self.buckets] + ["+Inf"]
        for values, child in list(self.children.items()):
            cumulative = list(itertools.accumulate(child.counts))
            histogram.add_metric(values, list(zip(bounds, cumulative, strict=True)), child.sum)
        return histogram


class _Labelled:
    """The children of one metric for a fixed volume and operation, by a third label made on first use."""

    def __init__(self, family: _Family, volume_id: str, op: str) -> None:
        self._family, self._volume_id, self._op = family, volume_id, op
        self._children: dict[Any, Count] = {}

    def child(self, key: Any, label: str) -> Count:
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = self._family.child(self._volume_id, self._op, label)
        return found


class MounterMetrics:
    """The metrics of one mount, in a registry of their own (with the ``process_*`` metrics).

    :meth:`measure` wraps a file system's FUSE handlers; the object is the S3 client's request observer
    (``s3.observer.RequestObserver``); :meth:`watch` exposes a file system's read-ahead counts and open files;
    :meth:`s3_counts` reads the S3 counts back (``--log-metrics``).

    The values are plain numbers rather than the Prometheus client's own metric objects: those take a lock
    and walk the buckets in Python on every update, several microseconds per FUSE request. Everything here
    runs on the file system's event loop, the endpoint included, so no update races a scrape.
    """

    def __init__(self, volume_id: str, registry: CollectorRegistry | None = None) -> None:
        self.volume_id = volume_id
        self.registry = registry if registry is not None else new_registry()
        op = [VOLUME_ID, "op"]
        self.fuse_requests = _Family("s3csi_fuse_requests", "FUSE requests answered", op)
        self.fuse_errors = _Family(
            "s3csi_fuse_request_errors", "FUSE requests answered with an error, by errno name", [*op, "errno"]
        )
        self.fuse_latency = _Family(
            "s3csi_fuse_request_latency_seconds", "Time to answer a FUSE request", op, FUSE_LATENCY_BUCKETS
        )
        self.io_size = _Family(
            "s3csi_fuse_io_size_bytes", "Bytes moved by one FUSE read or write request", op, IO_SIZE_BUCKETS
        )
        self.s3_requests = _Family("s3csi_s3_requests", "S3 requests sent (each retry is one)", op)
        self.s3_errors = _Family(
            "s3csi_s3_request_errors",
            "S3 requests that failed, by class (throttled, client, server, network, timeout)",
            [*op, "class"],
        )
        self.s3_first_byte = _Family(
            "s3csi_s3_request_first_byte_latency_seconds",
            "Time from sending an S3 request until its response head arrived",
            op,
            S3_LATENCY_BUCKETS,
        )
        self.s3_total = _Family(
            "s3csi_s3_request_total_latency_seconds",
            "Time from sending an S3 request until its whole response arrived",
            op,
            S3_LATENCY_BUCKETS,
        )
        transferred = _Family(
            "s3csi_s3_transferred_bytes",
            "Object bytes sent to S3 (PutObject, UploadPart) and received from it (GetObject)",
            [VOLUME_ID, "direction"],
        )
        self._uploaded: Count = transferred.child(volume_id, "upload")
        self._downloaded: Count = transferred.child(volume_id, "download")
        self._families = (
            self.fuse_requests,
            self.fuse_errors,
            self.fuse_latency,
            self.io_size,
            self.s3_requests,
            self.s3_errors,
            self.s3_first_byte,
            self.s3_total,
            transferred,
        )
        # S3 operation → (requests, first byte, total, errors by class, whether its bodies are object data):
        # bound on first use.
        self._s3_children: dict[str, tuple[Count, Buckets, Buckets, _Labelled, bool]] = {}
        self._prefetch: PrefetchCounts | None = None
        self._open_files: Callable[[], Mapping[str, int]] | None = None
        self.registry.register(_Collector(self))

    # ---- FUSE --------------------------------------------------------------------------------------

    def measure(self, operations: pyfuse3.Operations) -> None:
        """Wrap each FUSE handler of ``operations`` (in the instance: pyfuse3 looks them up there)."""
        for op in FUSE_OPS:
            handler = getattr(operations, op, None)
            if handler is not None:
                setattr(operations, op, self._measured(op, handler))

    def _measured(self, op: str, handler: Handler) -> Handler:
        requests: Count = self.fuse_requests.child(self.volume_id, op)
        latency: Buckets = self.fuse_latency.child(self.volume_id, op)
        errors = _Labelled(self.fuse_errors, self.volume_id, op)
        size: Buckets | None = self.io_size.child(self.volume_id, op) if op in IO_OPS else None
        clock = time.perf_counter
        if op == "lookup":
            enoent = errors.child(errno.ENOENT, errno_name(errno.ENOENT))

            def answered(result: Any) -> None:
                if result.st_ino == 0:  # a negative entry: the caller's lookup fails with ENOENT
                    enoent.inc()
        elif size is not None and op == "read":

            def answered(result: Any) -> None:
                size.observe(len(result))
        elif size is not None:

            def answered(result: Any) -> None:
                size.observe(result)  # write answers the bytes it took
        else:
            answered = None  # type: ignore[assignment]

        async def measured(*args: Any) -> Any:
            started = clock()
            try:
                result = await handler(*args)
            except pyfuse3.FUSEError as exc:
                errors.child(exc.errno, errno_name(exc.errno)).inc()
                raise
            finally:
                requests.value += 1
                latency.observe(clock() - started)
            if answered is not None:
                answered(result)
            return result

        measured.__name__ = op
        return measured

    # ---- S3 (s3.observer.RequestObserver) -------------------------------------------------------------

    def _s3(self, operation: str) -> tuple[Count, Buckets, Buckets, _Labelled, bool]:
        found = self._s3_children.get(operation)
        if found is None:
            v = self.volume_id
            found = self._s3_children[operation] = (
                self.s3_requests.child(v, operation),
                self.s3_first_byte.child(v, operation),
                self.s3_total.child(v, operation),
                _Labelled(self.s3_errors, v, operation),
                operation in DATA_OPERATIONS,
            )
        return found

    def succeeded(
        self, operation: str, first_byte_s: float, total_s: float, sent: int, received: int
    ) -> None:
        requests, first, total, _, data = self._s3(operation)
        requests.value += 1
        first.observe(first_byte_s)
        total.observe(total_s)
        if data:
            self._uploaded.value += sent
            self._downloaded.value += received

    def failed(self, operation: str, error: S3Error, total_s: float) -> None:
        requests, _, total, errors, _ = self._s3(operation)
        requests.value += 1
        total.observe(total_s)
        kind = error_class(error.code, error.status)
        errors.child(kind, kind).inc()

    def s3_counts(self) -> S3Counts:
        failures: dict[str, int] = {}
        for (_, operation, _), count in list(self.s3_errors.children.items()):
            failures[operation] = failures.get(operation, 0) + int(count.value)
        return S3Counts(
            requests={operation: int(found[0].value) for operation, found in list(self._s3_children.items())},
            failures=failures,
            sent=int(self._uploaded.value),
            received=int(self._downloaded.value),
        )

    # ---- state read when scraped ------------------------------------------------------------------------

    def watch(self, prefetch: PrefetchCounts, open_files: Callable[[], Mapping[str, int]]) -> None:
        """Expose ``prefetch`` (the file system's read-ahead counts) and ``open_files()`` (open handles by
        mode, read or write), read at each scrape."""
        self._prefetch, self._open_files = prefetch, open_files

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield family.collect()
        if self._prefetch is not None:
            labels = [self.volume_id]
            hits = CounterMetricFamily(
                "s3csi_prefetch_hits",
                "Reads whose parts were all fetched ahead (or at open) before they came",
                labels=[VOLUME_ID],
            )
            hits.add_metric(labels, self._prefetch.hits)
            misses = CounterMetricFamily(
                "s3csi_prefetch_misses", "Reads that had to start a GET of their own", labels=[VOLUME_ID]
            )
            misses.add_metric(labels, self._prefetch.misses)
            yield from (hits, misses)
        if self._open_files is not None:
            handles = GaugeMetricFamily(
                "s3csi_open_files", "Files open through the mount, by mode", labels=[VOLUME_ID, "mode"]
            )
            counts = self._open_files()
            for mode in OPEN_MODES:
                handles.add_metric([self.volume_id, mode], counts.get(mode, 0))
            yield handles


class _Collector(Collector):
    def __init__(self, metrics: MounterMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.collect()
