"""The controller's Lease (s3csi.controller.leader) against the fake API server: one leader among
candidates, and a leader that finds the Lease taken stops its work at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from s3csi.controller.leader import LeaderElector
from s3csi.controller.settings import LeaseSettings
from s3csi.kube.api import Api
from tests.kube_fake import FakeKubeApi
from tests.polling import wait_until_async

FAST = {"lease_duration_s": 2.0, "renew_deadline_s": 1.5, "retry_period_s": 0.1}


def lease(api: FakeKubeApi) -> dict[str, Any]:
    return api.get("Lease", "kube-system", "s3csi-controller")


def test_one_of_three_candidates_leads_and_a_taken_lease_stops_its_work(kube_api: FakeKubeApi) -> None:
    working: set[str] = set()
    stopped: list[str] = []

    async def scenario() -> None:
        api = Api(kube_api.settings())
        electors = {
            name: LeaderElector(api, LeaseSettings(identity=name, **FAST)) for name in ("a", "b", "c")
        }

        def work(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
            async def lead() -> None:
                working.add(name)
                try:
                    await asyncio.Event().wait()
                finally:
                    working.discard(name)
                    stopped.append(name)

            return lead

        tasks = [asyncio.create_task(elector.run(work(name))) for name, elector in electors.items()]
        try:
            assert await wait_until_async(lambda: len(working) == 1)
            [leader] = working
            assert lease(kube_api)["spec"]["holderIdentity"] == leader
            assert [name for name, elector in electors.items() if elector.leading()] == [leader]
            # Someone else writes the Lease (an operator, a replica with another clock): the leader stops.
            taken = lease(kube_api)
            taken["spec"]["holderIdentity"] = "intruder"
            kube_api.add(taken)
            assert await wait_until_async(lambda: leader in stopped)
            assert not electors[leader].leading()
            # The intruder never renews: after the lease duration one candidate leads again.
            assert await wait_until_async(lambda: len(working) == 1)
            assert lease(kube_api)["spec"]["holderIdentity"] in electors
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await api.close()

    asyncio.run(scenario())
    assert not working
