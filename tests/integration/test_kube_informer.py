"""kube/informer.py against the fake API server over HTTPS: the node plugin's cache of its node's objects
follows the API (selectors applied), lists again after 410 Gone, and tells a refusal from an empty list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from s3csi.kube import informer as informer_module
from s3csi.kube.api import Api, path_of
from s3csi.kube.informer import Informer
from s3csi.podmounter.attachment import GROUP, PLURAL, VERSION
from tests.kube_fake import FakeKubeApi
from tests.kube_fake.objects import pod
from tests.polling import wait_until_async

KEYS = [f"{n:032x}" for n in range(1, 5)]


def attachment(key: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MountpointPodAttachment",
        "metadata": {"name": key},
        "spec": {
            "nodeName": node,
            "persistentVolumeName": "pv",
            "volumeID": "bucket",
            "mountOptions": [],
            "readOnly": False,
            "authenticationSource": "driver",
            "mountpointPods": {},
        },
    }


def run(
    api: FakeKubeApi, scenario: Callable[[Informer], Awaitable[None]], *, watch_timeout_s: int = 300
) -> None:
    async def main() -> None:
        client = Api(api.settings())
        the_informer = Informer(
            client,
            path_of(GROUP, VERSION, PLURAL),
            resource=PLURAL,
            account="the node plugin",
            rbac_manifest="deploy/node-rbac.yaml",
            query={"fieldSelector": "spec.nodeName=node-1"},
            watch_timeout_s=watch_timeout_s,
        )
        task = asyncio.create_task(the_informer.run())
        try:
            await scenario(the_informer)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

    asyncio.run(main())


def test_the_cache_follows_the_nodes_objects(kube_api: FakeKubeApi) -> None:
    kube_api.add(attachment(KEYS[0], "node-1"))
    kube_api.add(attachment(KEYS[1], "node-2"))

    async def scenario(cache: Informer) -> None:
        await asyncio.wait_for(cache.synced.wait(), 10)
        assert set(cache.objects) == {("", KEYS[0])}
        changed = cache.changed()
        kube_api.add(attachment(KEYS[2], "node-1"))
        await asyncio.wait_for(changed.wait(), 10)
        assert set(cache.objects) == {("", KEYS[0]), ("", KEYS[2])}
        kube_api.add(attachment(KEYS[3], "node-2"))
        kube_api.remove("MountpointPodAttachment", "", KEYS[0])
        assert await wait_until_async(lambda: set(cache.objects) == {("", KEYS[2])}), cache.objects

    run(kube_api, scenario)


def test_a_compacted_watch_lists_again(kube_api: FakeKubeApi, caplog: pytest.LogCaptureFixture) -> None:
    # A watch of 1 s: it is renewed from its old version, which the compaction removed.

    async def scenario(cache: Informer) -> None:
        await asyncio.wait_for(cache.synced.wait(), 10)
        kube_api.ensure_namespace("team-a")
        kube_api.add(pod("team-a", "unrelated"))  # the revision moves on; this watch sees nothing of it
        kube_api.store.compact()
        with caplog.at_level(logging.INFO, logger=informer_module.__name__):
            assert await wait_until_async(lambda: "watch expired, listing again" in caplog.text)
        kube_api.add(attachment(KEYS[0], "node-1"))
        assert await wait_until_async(lambda: set(cache.objects) == {("", KEYS[0])}), cache.objects

    run(kube_api, scenario, watch_timeout_s=1)


def test_a_refused_list_is_not_an_empty_one(kube_api: FakeKubeApi) -> None:
    kube_api.forbidden.add(PLURAL)

    async def scenario(cache: Informer) -> None:
        await asyncio.wait_for(cache.refused.wait(), 10)
        assert not cache.synced.is_set()
        assert "list/watch mountpointpodattachments: forbidden (HTTP 403" in cache.last_error
        kube_api.forbidden.discard(PLURAL)  # RBAC granted: the next attempt lists
        await asyncio.wait_for(cache.synced.wait(), 10)
        assert not cache.refused.is_set() and cache.last_error == ""

    run(kube_api, scenario)


def test_an_ended_watch_resumes_from_its_last_version_without_listing(kube_api: FakeKubeApi) -> None:
    path = path_of(GROUP, VERSION, PLURAL)

    def requests(watching: bool) -> list[dict[str, str]]:
        return [r.query for r in kube_api.seen if r.path == path and ("watch" in r.query) == watching]

    async def scenario(cache: Informer) -> None:
        await asyncio.wait_for(cache.synced.wait(), 10)
        kube_api.add(attachment(KEYS[0], "node-1"))
        assert await wait_until_async(lambda: set(cache.objects) == {("", KEYS[0])}), cache.objects
        version = cache.objects[("", KEYS[0])]["metadata"]["resourceVersion"]
        # Each watch lasts 1 s; the ones after the event resume from its version (or a later bookmark's).
        assert await wait_until_async(
            lambda: any(int(q["resourceVersion"]) >= int(version) for q in requests(watching=True))
        )
        assert len(requests(watching=False)) == 1, requests(watching=False)

    run(kube_api, scenario, watch_timeout_s=1)
