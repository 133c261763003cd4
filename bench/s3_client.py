"""Which async S3 client should carry s3csi's hot path? Measured, against one s3rver, in one run.

    /opt/s3csi/dev-venv/bin/python -m bench.s3_client [--rounds 3] [--repeats 3] [--skip-put]

Candidates, each in its own process so neither warms the other's interpreter:
  lean            s3csi.s3.S3Client: aiohttp + botocore's SigV4 signer; GetObject through s3csi.s3.http1, the
                  body received from the socket straight into its buffer
  lean-aiohttp    the same client, but its ranged GETs through aiohttp with one ``read()`` (how GetObject was
                  sent before s3csi.s3.http1), the body joined from the chunks aiohttp's parser copied out
  aiobotocore     aiobotocore's S3 client (installed on first use with ``pip --target`` into AIOBOTOCORE_PATH
                  from requirements/bench-aiobotocore.lock, with hash checking, because it pins an older
                  botocore than the dev environment's)

Workloads (medians over all rounds and repeats): 8 parallel 8 MiB ranged GETs of a 256 MiB object (MB/s),
1000 GETs of 4 KiB objects with 32 in flight (s), listing 1000 keys in pages of 100 (s), and a
multipart PUT of 256 MiB in 8 MiB parts, 8 in flight (MB/s); and the client process's CPU seconds
for each, which a busy host disturbs far less than wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yarl

from bench.servers import ACCESS_KEY, REGION, SECRET_KEY, S3rver
from s3csi.s3 import Credentials, S3Client, S3Settings, StaticCredentials
from s3csi.s3.addressing import Endpoint
from s3csi.s3.signing import EMPTY_SHA256, sign

MIB = 1024 * 1024
BUCKET = "bench-client"
BIG_KEY = "big/256MiB"
BIG_SIZE = 256 * MIB
RANGE_SIZE = 8 * MIB
RANGE_PARALLEL = 8
SMALL_PREFIX = "small/"
SMALL_COUNT = 1000
SMALL_SIZE = 4096
SMALL_PARALLEL = 32
LIST_PAGE = 100
PART_SIZE = 8 * MIB
PUT_PARALLEL = 8
T = TypeVar("T")
AIOBOTOCORE_PATH = os.environ.get("AIOBOTOCORE_PATH", "/opt/s3csi/bench-py")
# The version measured in docs/performance.md with everything it pulls in (its own, older botocore), locked
# with hashes by `make lock`.
AIOBOTOCORE_LOCK = Path(__file__).resolve().parent.parent / "requirements" / "bench-aiobotocore.lock"

CANDIDATES = ("lean", "lean-aiohttp", "aiobotocore")


class Candidate(Protocol):
    async def get(self, key: str, start: int, end: int) -> bytes | bytearray: ...

    async def list_page(self, prefix: str, token: str | None) -> tuple[int, str | None]: ...

    async def multipart_put(self, key: str, parts: list[bytes]) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


async def _bounded(limit: int, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs with at most ``limit`` in flight; results in job order."""
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await asyncio.gather(*(run(job) for job in jobs))


class Lean:
    def __init__(self, endpoint_url: str, aiohttp_get: bool) -> None:
        settings = S3Settings(endpoint_url=endpoint_url, region=REGION, force_path_style=True)
        self.credentials = Credentials(ACCESS_KEY, SECRET_KEY)
        self.client = S3Client(settings, StaticCredentials(self.credentials))
        self.endpoint = Endpoint.build(endpoint_url, REGION, force_path_style=True)
        self.aiohttp_get = aiohttp_get

    async def get(self, key: str, start: int, end: int) -> bytes | bytearray:
        if not self.aiohttp_get:
            return await self.client.get_object(BUCKET, key, start=start, end=end)
        # The same signed request through aiohttp's session, its body read with one read().
        url = self.endpoint.url(BUCKET, key)
        headers = sign(
            "GET",
            url,
            {"Range": f"bytes={start}-{end - 1}"},
            content_sha256=EMPTY_SHA256,
            credentials=self.credentials,
            region=REGION,
        )
        session = self.client._session or self.client._open_session()
        async with session.get(yarl.URL(url, encoded=True), headers=headers) as response:
            response.raise_for_status()
            return await response.read()

    async def list_page(self, prefix: str, token: str | None) -> tuple[int, str | None]:
        page = await self.client.list_objects_v2(
            BUCKET, prefix=prefix, continuation_token=token, max_keys=LIST_PAGE
        )
        return len(page.objects), page.next_continuation_token

    async def multipart_put(self, key: str, parts: list[bytes]) -> None:
        upload_id = await self.client.create_multipart_upload(BUCKET, key)
        jobs = [
            partial(self.client.upload_part, BUCKET, key, upload_id, n, part)
            for n, part in enumerate(parts, start=1)
        ]
        etags = await _bounded(PUT_PARALLEL, jobs)
        await self.client.complete_multipart_upload(BUCKET, key, upload_id, list(enumerate(etags, start=1)))

    async def delete(self, key: str) -> None:
        await self.client.delete_object(BUCKET, key)

    async def close(self) -> None:
        await self.client.close()


class AioBotocore:
    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.client: Any = None
        self.context: Any = None

    async def open(self) -> None:
        from aiobotocore.config import AioConfig  # type: ignore[import-not-found]
        from aiobotocore.session import get_session  # type: ignore[import-not-found]

        self.context = get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=AioConfig(
                max_pool_connections=64,
                s3={"addressing_style": "path"},
                # Compare transports, not botocore 1.36+'s default CRC32 of every upload.
                request_checksum_calculation="when_required",
            ),
        )
        self.client = await self.context.__aenter__()

    async def get(self, key: str, start: int, end: int) -> bytes | bytearray:
        response = await self.client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={start}-{end - 1}")
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        return data

    async def list_page(self, prefix: str, token: str | None) -> tuple[int, str | None]:
        args: dict[str, Any] = {"Bucket": BUCKET, "Prefix": prefix, "Delimiter": "/", "MaxKeys": LIST_PAGE}
        if token:
            args["ContinuationToken"] = token
        page = await self.client.list_objects_v2(**args)
        return len(page.get("Contents", [])), page.get("NextContinuationToken")

    async def multipart_put(self, key: str, parts: list[bytes]) -> None:
        upload_id = (await self.client.create_multipart_upload(Bucket=BUCKET, Key=key))["UploadId"]

        async def upload(number: int, body: bytes) -> dict[str, Any]:
            response = await self.client.upload_part(
                Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            return {"PartNumber": number, "ETag": response["ETag"]}

        jobs = [partial(upload, n, part) for n, part in enumerate(parts, start=1)]
        done = await _bounded(PUT_PARALLEL, jobs)
        await self.client.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
        )

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=BUCKET, Key=key)

    async def close(self) -> None:
        await self.context.__aexit__(None, None, None)


def _parts() -> list[bytes]:
    """256 MiB of random bytes as 8 MiB parts (aiobotocore takes bytes, not memoryviews)."""
    return [os.urandom(PART_SIZE) for _ in range(BIG_SIZE // PART_SIZE)]


@dataclass(frozen=True)
class Timing:
    wall_s: float
    # CPU seconds of this process: what the client costs, and steadier than wall time on a busy host.
    cpu_s: float


async def _timed(action: Callable[[], Awaitable[Any]]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    await action()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


async def measure(candidate: Candidate, repeats: int, skip_put: bool) -> dict[str, list[float]]:
    async def ranged_read() -> None:
        jobs = [
            partial(candidate.get, BIG_KEY, first, first + RANGE_SIZE)
            for first in range(0, BIG_SIZE, RANGE_SIZE)
        ]
        parts = await _bounded(RANGE_PARALLEL, jobs)
        if sum(map(len, parts)) != BIG_SIZE:
            raise RuntimeError("ranged read returned the wrong number of bytes")

    async def small_reads() -> None:
        jobs = [partial(candidate.get, f"{SMALL_PREFIX}{n:04d}", 0, SMALL_SIZE) for n in range(SMALL_COUNT)]
        await _bounded(SMALL_PARALLEL, jobs)

    async def listing() -> None:
        token: str | None = None
        seen = 0
        while True:
            count, token = await candidate.list_page(SMALL_PREFIX, token)
            seen += count
            if token is None:
                break
        if seen != SMALL_COUNT:
            raise RuntimeError(f"listing saw {seen} keys, not {SMALL_COUNT}")

    parts = _parts()

    async def put() -> None:
        await candidate.multipart_put("put/target", parts)

    results: dict[str, list[float]] = {
        f"{name}{suffix}": []
        for name in ("ranged_get", "small_get", "list", "multipart_put")
        for suffix in ("", "_cpu")
    }
    await small_reads()  # warm the connection pool
    for _ in range(repeats):
        timing = await _timed(ranged_read)
        results["ranged_get"].append(BIG_SIZE / MIB / timing.wall_s)
        results["ranged_get_cpu"].append(timing.cpu_s)
        timing = await _timed(small_reads)
        results["small_get"].append(timing.wall_s)
        results["small_get_cpu"].append(timing.cpu_s)
        timing = await _timed(listing)
        results["list"].append(timing.wall_s)
        results["list_cpu"].append(timing.cpu_s)
        if not skip_put:
            timing = await _timed(put)
            results["multipart_put"].append(BIG_SIZE / MIB / timing.wall_s)
            results["multipart_put_cpu"].append(timing.cpu_s)
            await candidate.delete("put/target")
    return results


async def run_worker(name: str, endpoint_url: str, repeats: int, skip_put: bool) -> dict[str, list[float]]:
    candidate: Candidate
    if name == "aiobotocore":
        aio = AioBotocore(endpoint_url)
        await aio.open()
        candidate = aio
    else:
        candidate = Lean(endpoint_url, aiohttp_get=name == "lean-aiohttp")
    try:
        return await measure(candidate, repeats, skip_put)
    finally:
        await candidate.close()


async def populate(endpoint_url: str) -> None:
    """The objects every candidate reads, written once with the lean client."""
    lean = Lean(endpoint_url, aiohttp_get=False)
    try:
        await lean.client.create_bucket(BUCKET)
        await lean.multipart_put(BIG_KEY, _parts())
        body = os.urandom(SMALL_SIZE)
        jobs = [
            partial(lean.client.put_object, BUCKET, f"{SMALL_PREFIX}{n:04d}", body)
            for n in range(SMALL_COUNT)
        ]
        await _bounded(SMALL_PARALLEL, jobs)
    finally:
        await lean.close()


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    key: str
    higher_is_better: bool


ROWS = (
    Row("8 x 8 MiB ranged GET of 256 MiB", "MB/s", "ranged_get", True),
    Row("1000 x 4 KiB GET, 32 in flight", "s", "small_get", False),
    Row("list 1000 keys, pages of 100", "s", "list", False),
    Row("multipart PUT 256 MiB, 8 MiB parts", "MB/s", "multipart_put", True),
    Row("  CPU: ranged GET 256 MiB", "s", "ranged_get_cpu", False),
    Row("  CPU: 1000 x 4 KiB GET", "s", "small_get_cpu", False),
    Row("  CPU: list 1000 keys", "s", "list_cpu", False),
    Row("  CPU: multipart PUT 256 MiB", "s", "multipart_put_cpu", False),
)


def render(results: dict[str, dict[str, float]]) -> str:
    names = [name for name in CANDIDATES if name in results]
    header = (
        f"{'workload':<38}{'unit':>6}"
        + "".join(f"{name:>15}" for name in names)
        + f"{'lean/aiobotocore':>18}"
    )
    lines = [header, "-" * len(header)]
    for row in ROWS:
        values = [results[name].get(row.key) for name in names]
        if any(value is None for value in values):
            continue
        cells = "".join(f"{value:>15.3f}" for value in values if value is not None)
        lean, aio = results["lean"][row.key], results.get("aiobotocore", {}).get(row.key)
        ratio = "" if aio is None else f"{(lean / aio if row.higher_is_better else aio / lean):>17.2f}x"
        lines.append(f"{row.label:<38}{row.unit:>6}{cells}{ratio}")
    lines.append("ratio > 1: lean is better (throughput ratio, or inverse time ratio)")
    return "\n".join(lines)


def ensure_aiobotocore() -> None:
    """Install aiobotocore apart from the dev environment, whose botocore it would downgrade."""
    if os.path.isdir(os.path.join(AIOBOTOCORE_PATH, "aiobotocore")):
        return
    print(f"installing {AIOBOTOCORE_LOCK} into {AIOBOTOCORE_PATH}", file=sys.stderr)
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps"]
    subprocess.run([*argv, "--target", AIOBOTOCORE_PATH, "-r", str(AIOBOTOCORE_LOCK)], check=True)


def _run_worker_process(
    name: str, endpoint_url: str, repeats: int, skip_put: bool
) -> dict[str, list[float]] | None:
    env = dict(os.environ)
    if name == "aiobotocore":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [AIOBOTOCORE_PATH, env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "bench.s3_client", "--worker", name, "--endpoint-url", endpoint_url]
    argv += ["--repeats", str(repeats)] + (["--skip-put"] if skip_put else [])
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"{name}: failed\n{done.stderr.strip()[-2000:]}", file=sys.stderr)
        return None
    found: dict[str, list[float]] = json.loads(done.stdout)
    print(
        f"{name}: " + ", ".join(f"{k}={[round(v, 3) for v in vs]}" for k, vs in found.items()),
        file=sys.stderr,
    )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="measurements per worker process")
    parser.add_argument("--rounds", type=int, default=3, help="worker processes per candidate")
    parser.add_argument("--skip-put", action="store_true", help="leave out the multipart PUT workload")
    parser.add_argument("--worker", choices=CANDIDATES, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(
            json.dumps(asyncio.run(run_worker(args.worker, args.endpoint_url, args.repeats, args.skip_put)))
        )
        return 0
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in CANDIDATES}
    failed: set[str] = set()
    ensure_aiobotocore()
    with S3rver.start() as server:
        asyncio.run(populate(server.endpoint_url))
        # Rounds in rotated order, so that no candidate always meets the server cold or warm.
        for round_number in range(args.rounds):
            order = (
                CANDIDATES[round_number % len(CANDIDATES) :] + CANDIDATES[: round_number % len(CANDIDATES)]
            )
            for name in order:
                if name in failed:
                    continue
                worker = _run_worker_process(name, server.endpoint_url, args.repeats, args.skip_put)
                if worker is None:
                    failed.add(name)
                    continue
                for key, values in worker.items():
                    samples[name].setdefault(key, []).extend(values)
    results = {
        name: {key: statistics.median(values) for key, values in by_key.items() if values}
        for name, by_key in samples.items()
        if name not in failed
    }
    if "lean" not in results:
        return 1
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
