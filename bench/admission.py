"""`python -m bench.admission`: the admission webhook under load, over HTTPS, as the API server calls it.

``s3csi webhook`` runs in its own process with a certificate from a CA made here; 8 concurrent clients each
keep one TLS connection open (as the API server does) and send AdmissionReviews drawn round-robin from the
test table (tests/admission_cases.py: pods on the three mutate paths, namespaces on /validate-namespaces).
The baseline, measured in the same run on the same connections, is GET /healthz: TLS and HTTP with no
review to parse or decide. Prints throughput and p50/p99 latency; see docs/admission.md for recorded runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.admission_cases import MUTATE_PATHS, NAMESPACE_CASES, POD_CASES, namespace
from tests.admission_support import CertificateAuthority, WebhookProcess, admission_review

REVIEWS = 2000
CLIENTS = 8


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes


@dataclass(frozen=True)
class Result:
    name: str
    count: int
    seconds: float
    latencies: Sequence[float]

    @property
    def throughput(self) -> float:
        return self.count / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def review_requests() -> list[Request]:
    requests = [
        Request("POST", path, json.dumps(admission_review(case.pod, kind="Pod")).encode())
        for case in POD_CASES
        for path in MUTATE_PATHS
    ]
    requests += [
        Request(
            "POST",
            "/validate-namespaces",
            json.dumps(admission_review(namespace(c.labels), kind="Namespace")).encode(),
        )
        for c in NAMESPACE_CASES
    ]
    return requests


async def load(
    name: str, base_url: str, ca: CertificateAuthority, requests: list[Request], total: int
) -> Result:
    """``total`` requests from CLIENTS concurrent clients, each on its own keep-alive connection."""
    next_index = 0
    latencies: list[float] = []

    async def client() -> None:
        nonlocal next_index
        connector = aiohttp.TCPConnector(ssl=ca.client_context(), limit=1)
        async with aiohttp.ClientSession(base_url, connector=connector) as session:
            while next_index < total:
                request = requests[next_index % len(requests)]
                next_index += 1
                started = time.perf_counter()
                async with session.request(
                    request.method,
                    request.path,
                    data=request.body,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{request.method} {request.path}: HTTP {response.status}")
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return Result(name, len(latencies), time.perf_counter() - started, latencies)


def report(results: Sequence[Result]) -> None:
    baseline = results[0]
    print(
        f"{'':26} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'p50 ratio':>9} {'p99 ratio':>9}"
    )
    for result in results:
        p50, p99 = result.percentile(50), result.percentile(99)
        print(
            f"{result.name:26} {result.count:8d} {result.throughput:7.0f} "
            f"{p50 * 1000:7.2f} {p99 * 1000:7.2f} "
            f"{p50 / baseline.percentile(50):9.2f} {p99 / baseline.percentile(99):9.2f}"
        )
    print(f"(mean review latency {statistics.fmean(results[-1].latencies) * 1000:.2f} ms, {CLIENTS} clients)")


async def run(reviews: int) -> None:
    with tempfile.TemporaryDirectory(prefix="s3csi-bench-admission-") as tmp:
        directory = Path(tmp)
        ca = CertificateAuthority.create(directory)
        webhook = WebhookProcess(directory, ca)
        try:
            base_url = f"https://127.0.0.1:{webhook.port}"
            healthz = [Request("GET", "/healthz", b"")]
            await load("warm-up", base_url, ca, review_requests(), CLIENTS * 10)
            results = [
                await load("baseline: GET /healthz", base_url, ca, healthz, reviews),
                await load("AdmissionReview (mixed)", base_url, ca, review_requests(), reviews),
            ]
        finally:
            status = webhook.terminate()
        if status != 0:
            raise SystemExit(f"s3csi webhook exited with {status}")
    report(results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.admission", description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=REVIEWS, help="requests per measurement (%(default)s)")
    args = parser.parse_args(argv)
    if args.reviews < 1:
        parser.error("--reviews must be at least 1")
    asyncio.run(run(args.reviews))


if __name__ == "__main__":
    main()
