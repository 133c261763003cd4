"""The health decisions as tables: a broken watch, a silent Lease, the node's device and state dir, the CSI
socket, the S3 endpoint's root, a review's result label."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from s3csi.admission.review import allow, allow_with_patch, deny
from s3csi.admission.server import review_result
from s3csi.controller.health import lease_problem
from s3csi.csi.health import socket_problem
from s3csi.errors import FailedPrecondition, InvalidArgument
from s3csi.kube.informer import broken_watch
from s3csi.metrics.flags import metrics_address, metrics_endpoint
from s3csi.podmounter.health import fuse_device_problem, publisher_check, state_dir_problem
from s3csi.podmounter.publisher import PodMounterPublisher, PublisherSettings
from s3csi.podmounter.runtime.local import LocalRuntime
from s3csi.s3 import Credentials, StaticCredentials
from s3csi.s3.reachability import endpoint_root
from s3csi.s3.settings import S3Settings


class Watch:
    def __init__(self, since: float | None, latest: float | None, error: str = "HTTP 403") -> None:
        self.resource, self.failing_since, self.failed_at, self.last_error = "pods", since, latest, error


@pytest.mark.parametrize(
    ("since", "latest", "broken"),
    [
        (None, None, False),  # never failed
        (None, 50.0, False),  # failed, then succeeded
        (95.0, 99.0, False),  # failing, not yet for the bound (10 s)
        (80.0, 99.0, True),  # failing for 20 s, the latest failure just now
        (80.0, 85.0, False),  # failing once, then a quiet watch that has not failed since
        (90.0, 99.0, False),  # exactly the bound: not yet
    ],
)
def test_a_watch_is_broken_when_it_has_failed_longer_than_the_bound_and_still_fails(
    since: float | None, latest: float | None, broken: bool
) -> None:
    watches: list[Any] = [Watch(None, None), Watch(since, latest)]
    problem = broken_watch(watches, now=100.0, bound_s=10.0)
    assert (problem is not None) is broken
    if broken:
        assert problem == "the list/watch of pods has failed for 20s: HTTP 403"


@pytest.mark.parametrize(
    ("answered_at", "problem"),
    [
        (95.0, None),
        (90.0, None),
        (80.0, "the Kubernetes API has not answered a Lease call for 20s: refused"),
    ],
)
def test_a_replica_is_unhealthy_once_the_lease_calls_go_unanswered_for_the_bound(
    answered_at: float, problem: str | None
) -> None:
    assert lease_problem(answered_at, "refused", now=100.0, bound_s=10.0) == problem


def test_the_fuse_device_must_be_a_character_device(tmp_path: Path) -> None:
    assert fuse_device_problem("/dev/null") is None  # a character device
    (tmp_path / "fuse").write_text("")
    assert "not a character device" in str(fuse_device_problem(str(tmp_path / "fuse")))
    assert "is missing" in str(fuse_device_problem(str(tmp_path / "none")))


def test_the_state_dir_must_take_a_file_and_keeps_none(tmp_path: Path) -> None:
    assert asyncio.run(state_dir_problem(str(tmp_path))) is None
    assert os.listdir(tmp_path) == []
    assert "does not take a new file" in str(asyncio.run(state_dir_problem(str(tmp_path / "gone"))))


def test_the_csi_socket_must_stay_the_one_bound(tmp_path: Path) -> None:
    path = str(tmp_path / "csi.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        st = os.lstat(path)
        identity = (st.st_dev, st.st_ino)
        assert socket_problem(path, identity) is None
        os.unlink(path)
        assert "was removed" in str(socket_problem(path, identity))
        Path(path).write_text("")
        assert "was replaced" in str(socket_problem(path, identity))


@pytest.mark.parametrize(
    ("settings", "root"),
    [
        (S3Settings(region="eu-west-3"), "https://s3.eu-west-3.amazonaws.com/"),
        (S3Settings(endpoint_url="http://127.0.0.1:9000"), "http://127.0.0.1:9000/"),
        (S3Settings(endpoint_url="https://s3.example.com"), "https://s3.example.com/"),
    ],
)
def test_the_reachability_check_asks_the_endpoints_root(settings: S3Settings, root: str) -> None:
    assert endpoint_root(settings) == root


def test_a_reviews_result_label() -> None:
    request: Any = {"uid": "u"}  # only the uid is read
    assert review_result(allow(request)) == "allowed"
    assert review_result(allow_with_patch(request, [{"op": "add", "path": "/x", "value": 1}])) == "patched"
    assert review_result(deny(request, "no")) == "denied"


def test_the_node_check_names_an_unusable_state_dir(tmp_path: Path) -> None:
    settings = PublisherSettings(
        node_id="n", state_dir=str(tmp_path / "state"), kubelet_dir="/var/lib/kubelet", s3=S3Settings()
    )
    publisher = PodMounterPublisher(
        settings, LocalRuntime(settings.state_dir), StaticCredentials(Credentials("a", "b"))
    )
    publisher.prepare()
    check = publisher_check(publisher, fuse_device="/dev/null")
    assert asyncio.run(check()) is None
    shutil.rmtree(tmp_path / "state")  # root ignores modes: a state dir gone refuses a file to anyone
    assert f"the state dir {tmp_path / 'state'} does not take a new file" in str(asyncio.run(check()))
    assert "is missing" in str(asyncio.run(publisher_check(publisher, fuse_device=str(tmp_path / "x"))()))


def test_the_metrics_flag_refuses_a_bad_address_and_a_port_in_use() -> None:
    assert metrics_address("") is None
    with pytest.raises(InvalidArgument, match="--metrics-address"):
        metrics_address("9810")

    async def bind_twice() -> None:
        async with metrics_endpoint(CollectorRegistry(), metrics_address("127.0.0.1:0")) as bound:
            assert bound is not None
            async with metrics_endpoint(CollectorRegistry(), metrics_address(f"127.0.0.1:{bound.port}")):
                pass

    with pytest.raises(FailedPrecondition, match=r"--metrics-address 127\.0\.0\.1:[0-9]+: cannot listen"):
        asyncio.run(bind_twice())
