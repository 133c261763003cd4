"""Fixtures shared by every test layer.

Integration and e2e tests use real parts (DEVELOPERS.md, Tests): an S3 server on 127.0.0.1 (moto, in its own
process), real FUSE mounts, real unprivileged processes. When root or /dev/fuse is missing they fail
loudly — they never skip.
"""

from __future__ import annotations

import functools
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kubernetes_validate.utils
import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.boto_support import boto3_client

if TYPE_CHECKING:
    from tests.kube_fake import FakeKubeApi

# The Mountpoint Pod's user (docs/architecture.md#parts) and the fsGroup example's workload user.
MOUNTER_UID = 1000
WORKLOAD_UID = 1001

TESTS = Path(__file__).resolve().parent

# kubernetes_validate.validate() parses the kind's schema file and the multi-megabyte _definitions.json on
# every call (a tenth of a second or more); the tests validate thousands of objects against files that never
# change during a run, so each file is parsed once. The schemas are only read, never changed.
kubernetes_validate.utils.schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)

# The markers follow the directories: tests/integration/ uses real parts (root, /dev/fuse, servers,
# processes), tests/e2e/ plays whole-system scenarios on the same parts. So `pytest -m "not integration"`
# runs tests/unit/ alone, without root.
MARKERS_BY_DIRECTORY = {
    TESTS / "integration": ("integration",),
    TESTS / "e2e": ("integration", "e2e"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for directory, markers in MARKERS_BY_DIRECTORY.items():
            if item.path.is_relative_to(directory):
                for marker in markers:
                    item.add_marker(marker)


def require_root_and_fuse() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "this test needs root (FUSE mounts, uid switches): run `make test` as root", pytrace=False
        )
    if not os.path.exists("/dev/fuse"):
        pytest.fail("this test needs /dev/fuse (modprobe fuse)", pytrace=False)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[EmbeddedS3Server]:
    with EmbeddedS3Server.start() as server:
        yield server


@pytest.fixture(scope="session")
def s3(s3_server: EmbeddedS3Server) -> Any:
    """A boto3 client on the test server: the independent witness of what reached S3."""
    return boto3_client("s3", s3_server)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def privileged() -> None:
    require_root_and_fuse()


def run_as(
    uid: int,
    gid: int,
    argv: Sequence[str],
    *,
    groups: Sequence[int] = (),
    check: bool = False,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    cwd: str | Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv as uid:gid with exactly ``groups`` as supplementary groups (setpriv, no capabilities)."""
    groups_arg = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", *groups_arg, "--inh-caps=-all", "--", *argv]
    return subprocess.run(
        command, check=check, capture_output=True, env=env, input=input, cwd=cwd, timeout=timeout
    )


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[FakeKubeApi]:
    """An in-process fake Kubernetes API server over HTTPS (tests/kube_fake, docs/kubernetes.md), stopped
    after the test; ``kube_api.settings()`` is how s3csi's client reaches it."""
    from tests.kube_fake import FakeKubeApi  # aiohttp, the schemas and CEL load only for the tests using it

    api = FakeKubeApi(tmp_path / "kube-api")
    try:
        yield api
    finally:
        api.stop()
