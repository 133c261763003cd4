"""A directory bucket (S3 Express One Zone) mounted for real, against the zonal-endpoint stand-in of
``express_support.py``: sessions from CreateSession, refreshed before they expire and replaced when the
bucket ends them early; listings in no order, paged; appends with ``--incremental-upload``."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import Iterator
from typing import cast

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.fs.cache import block_id
from s3csi.fs.xz_cache import cache_key
from s3csi.provisioning.plan import CapacityRange, plan_volume
from s3csi.provisioning.provisioner import Provisioner
from s3csi.s3 import Credentials, S3Settings, StaticCredentials
from tests.integration.express_support import BUCKET, CACHE_BUCKET, ExpressStandIn
from tests.integration.fs_helpers import MountedFs, mounted
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

# Short sessions (renewed every second or so) and small listing pages, so one mount shows both.
SESSION_LIFETIME_S = 2.5
PAGE_SIZE = 7
PART = 64 * 1024
FILES = [f"f{i:02d}" for i in range(20)]
SUB_DIRECTORIES = [f"sub{i}" for i in range(4)]


@pytest.fixture(scope="module")
def standin() -> Iterator[ExpressStandIn]:
    with ExpressStandIn.start(session_lifetime_s=SESSION_LIFETIME_S, page_size=PAGE_SIZE) as server:
        for name in FILES:
            server.put(f"top/{name}", name.encode())
        for name in SUB_DIRECTORIES:
            server.put(f"top/{name}/inner", b"i")
        # An object and a directory of the same name: the directory wins, as in every listing.
        server.put("top/sub0", b"hidden by the directory")
        server.put("log.txt", b"first\n")
        yield server


@pytest.fixture(scope="module")
def fs(standin: ExpressStandIn) -> Iterator[MountedFs]:
    server = cast(EmbeddedS3Server, standin)  # duck-typed: mounted() reads only client_env()
    flags = ["--incremental-upload", "--allow-delete", "--allow-overwrite"]
    # Read parts of 64 KiB shared through the second directory bucket.
    flags += ["--cache-xz", CACHE_BUCKET, "--read-part-size", str(PART)]
    with mounted(server, BUCKET, *flags) as fs:
        yield fs


def test_listing_in_any_order_is_complete_and_sorted_out(fs: MountedFs, standin: ExpressStandIn) -> None:
    names = os.listdir(fs.path / "top")
    assert sorted(names) == sorted(FILES + SUB_DIRECTORIES)
    assert len(names) == len(set(names))
    assert (fs.path / "top" / "sub0").is_dir()
    assert (fs.path / "top" / "f07").read_bytes() == b"f07"
    assert (fs.path / "top" / "sub3" / "inner").read_bytes() == b"i"
    with pytest.raises(FileNotFoundError):
        (fs.path / "top" / "f0").stat()
    # Directory buckets list only by prefixes ending in "/": the mount never asked otherwise.
    assert not [e for e in standin.errors() if e[2] == "InvalidArgument"]


def test_write_then_append_in_place(fs: MountedFs, standin: ExpressStandIn) -> None:
    (fs.path / "new.txt").write_bytes(b"one\n")
    assert standin.body("new.txt") == b"one\n"
    with open(fs.path / "log.txt", "ab") as log:
        log.write(b"second\n")
    assert standin.body("log.txt") == b"first\nsecond\n"
    subprocess.run(["sh", "-c", f"echo third >> {fs.path / 'log.txt'}"], check=True)
    assert standin.body("log.txt") == b"first\nsecond\nthird\n"
    assert (fs.path / "log.txt").read_bytes() == b"first\nsecond\nthird\n"
    appends = [r for r in standin.requests if r[0] == "PUT" and r[1].endswith("/log.txt")]
    assert len(appends) == 2 and not [a for a in appends if a[2]]
    # A read-write open of an existing file still needs --staged-writes.
    with pytest.raises(PermissionError) as refused:
        os.open(fs.path / "log.txt", os.O_RDWR)
    assert refused.value.errno == errno.EPERM


def test_sessions_are_renewed_before_they_expire(fs: MountedFs, standin: ExpressStandIn) -> None:
    first = standin.sessions_created

    def renewed() -> bool:
        os.listdir(fs.path / "top")  # a request each time: sessions are made when requests need them
        return standin.sessions_created >= first + 2

    assert wait_until(renewed, within=30), standin.sessions_created
    # Each session was replaced while still good: no request was refused for an expired one.
    assert not [e for e in standin.errors() if e[2] == "ExpiredToken"]


def test_a_session_ended_early_is_replaced(fs: MountedFs, standin: ExpressStandIn) -> None:
    standin.put("top/late.txt", b"after the expiry")
    before = standin.sessions_created
    standin.expire_sessions()
    # readdir always asks S3 (a lookup might be answered by the listing cache): its first request is refused.
    assert "late.txt" in os.listdir(fs.path / "top")
    assert standin.sessions_created > before
    assert [e for e in standin.errors() if e[2] == "ExpiredToken"]
    assert (fs.path / "top" / "late.txt").read_bytes() == b"after the expiry"


def test_prefix_per_volume_provisioning_in_a_directory_bucket(standin: ExpressStandIn) -> None:
    """docs/architecture.md: a directory bucket as the parent of prefix-per-volume works as any bucket."""
    plan = plan_volume(
        "pvc-express",
        {"provisioningMode": "prefix-per-volume", "bucketName": BUCKET},
        CapacityRange(required_bytes=1),
    )
    assert plan.volume_id.prefix.endswith("/")  # directory buckets list only such prefixes
    env = standin.client_env()
    settings = S3Settings.from_env(env)
    keys = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])

    async def scenario() -> None:
        provisioner = Provisioner(settings, StaticCredentials(keys))
        try:
            await provisioner.create_volume(plan, None)
            await provisioner.create_volume(plan, None)  # the same volume again: success
            standin.put(plan.volume_id.prefix + "data/file", b"written by a workload")
            await provisioner.delete_volume(plan.volume_id, None)
        finally:
            await provisioner.close()

    asyncio.run(scenario())
    assert not [key for key in standin.objects if key.startswith((plan.volume_id.prefix, plan.marker_key))]
    assert not [e for e in standin.errors() if e[2] in ("InvalidArgument", "NotImplemented")]


def test_read_parts_are_shared_through_the_cache_bucket(fs: MountedFs, standin: ExpressStandIn) -> None:
    blob = os.urandom(3 * PART + 1000)  # four parts
    standin.put("big/blob", blob)
    cache = standin.buckets[CACHE_BUCKET]

    def gets(bucket: str, path: str) -> int:
        return len([r for r in standin.requests if r[0] == "GET" and r[1].startswith(f"/{bucket}/{path}")])

    # Put behind the mount's back: the module's mount may still answer from a listing of the root made
    # by an earlier test, for up to its metadata TTL.
    assert wait_until((fs.path / "big" / "blob").exists)
    assert (fs.path / "big" / "blob").read_bytes() == blob
    etag = standin.objects["big/blob"].etag
    blocks = sorted(cache_key(block_id(BUCKET, "big/blob", etag, PART, index)) for index in range(4))
    assert wait_until(lambda: set(blocks) <= set(cache)), sorted(cache)
    # A cache object of the wrong length (corrupted, or written by a careless writer) is not served.
    cache[blocks[0]].body = b"short"
    from_source, from_cache = gets(BUCKET, "big/blob"), gets(CACHE_BUCKET, "s3csi-cache/")
    # Another mount (another node) reads the parts from the cache bucket, that one from S3.
    server = cast(EmbeddedS3Server, standin)
    with mounted(server, BUCKET, "--cache-xz", CACHE_BUCKET, "--read-part-size", str(PART)) as other:
        assert (other.path / "big" / "blob").read_bytes() == blob
    assert gets(BUCKET, "big/blob") == from_source + 1
    assert gets(CACHE_BUCKET, "s3csi-cache/") >= from_cache + 4
