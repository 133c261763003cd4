"""``s3csi controller`` against the fake API server (tests/kube_fake): real HTTPS, real kubernetes-asyncio,
every object it writes validated against the official schemas and the CRD. Each test waits on the fake's
state with a deadline (tests/polling.py), never on a timing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from s3csi.volume.context import DRIVER_VERSION_KEY
from tests.controller_support import (
    attachments,
    controller,
    mountpoint_pods,
    pods_per_key,
    prepare,
    served,
    settings,
    settled,
    volume,
    workload,
)
from tests.kube_fake import FakeKubeApi
from tests.polling import wait_until_async

T = TypeVar("T")


@pytest.fixture
def api(kube_api: FakeKubeApi) -> FakeKubeApi:
    prepare(kube_api)
    return kube_api


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def uid(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["uid"])


def test_static_and_dynamic_volumes_get_one_mountpoint_pod_each(api: FakeKubeApi) -> None:
    volume(api, "static-data")
    _pv, dynamic_claim = volume(api, "dynamic-data", dynamic=True, bucket="bucket-2")
    a = api.add(workload("a", "static-data"))
    b = api.add(workload("b", dynamic_claim))

    async def scenario() -> bool:
        async with controller(settings(api)):
            return await wait_until_async(
                lambda: (
                    settled(api, {uid(a), uid(b)})
                    and all(obj.get("status") for obj in attachments(api).values())
                )
            )

    assert run(scenario), (served(api), pods_per_key(api), attachments(api))
    assert served(api)[uid(a)][1] != served(api)[uid(b)][1]
    for pod in mountpoint_pods(api):
        assert pod["spec"]["affinity"]["nodeAffinity"]  # the builder's pod, as created
        assert pod["metadata"]["labels"][DRIVER_VERSION_KEY] == "1.0.0"
    for obj in attachments(api).values():
        assert obj["status"] == {"mountpointPods": 1, "workloadPods": 1}
