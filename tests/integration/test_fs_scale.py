"""Sizes that matter: a 256 MiB object read intact with bounded memory, a 1000-object directory listed
with at most two S3 requests for ``ls -l``."""

from __future__ import annotations

import hashlib
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.integration.fs_helpers import RecordingProxy, mounted

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

MiB = 1024 * 1024


def peak_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_256_mib_object_reads_intact_with_bounded_memory(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    block = os.urandom(MiB)
    data = b"".join(block[i:] + block[:i] for i in range(256))  # 256 distinct MiB, cheaper than urandom
    s3.put_object(Bucket=bucket, Key="large.bin", Body=data)
    expected = hashlib.sha256(data).hexdigest()
    del data
    # moto serves ranged GETs slowly: large parts keep the test short.
    with mounted(s3_server, bucket, "--read-part-size", str(32 * MiB)) as fs:
        digest = hashlib.sha256()
        with open(fs.path / "large.bin", "rb", buffering=0) as f:
            while chunk := f.read(4 * MiB):
                digest.update(chunk)
        assert digest.hexdigest() == expected
        assert peak_rss_bytes(fs.process.pid) <= 256 * MiB


def test_1000_objects_and_nested_prefixes_listed_with_two_requests(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    flat = [f"many/obj-{i:04d}" for i in range(1000)]
    nested = ["nested/sub/a", "nested/sub/deeper/b", "nested/zz/c", "nested/file", "top"]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), flat + nested))
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url) as fs:
        proxy.reset()
        listing = subprocess.run(
            ["ls", "-l", str(fs.path / "many")], capture_output=True, text=True, check=True
        )
        lines = listing.stdout.splitlines()[1:]  # after "total N"
        requests = [(method, target) for method, target, _ in proxy.heads()]
        # One LIST to look up "many", one LIST (a single page) to read it: nothing per entry.
        assert all(method == "GET" and "list-type=2" in target for method, target in requests)
        assert len(requests) <= 2, requests
        names = sorted(line.split()[-1] for line in lines)
        assert names == [f"obj-{i:04d}" for i in range(1000)]
        sizes = {line.split()[-1]: int(line.split()[4]) for line in lines}
        assert sizes["obj-0042"] == len("many/obj-0042")
        assert sorted(os.listdir(fs.path / "nested")) == ["file", "sub", "zz"]
        assert sorted(os.listdir(fs.path / "nested" / "sub")) == ["a", "deeper"]
        assert os.listdir(fs.path / "nested" / "sub" / "deeper") == ["b"]
        assert (fs.path / "nested" / "sub" / "deeper" / "b").read_bytes() == b"nested/sub/deeper/b"
        assert sorted(os.listdir(fs.path)) == ["many", "nested", "top"]
