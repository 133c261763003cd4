"""The Event recorder (src/s3csi/kube/recorder.py) against the fake API server, which validates every Event
against the official schema: one Event per object, reason and cause, its count moving on with each repeat —
from this process's memory, or, after a restart, from the Event itself."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import pytest

from s3csi.kube.api import Api
from s3csi.kube.events import involved_pod, object_event
from s3csi.kube.recorder import EventRecorder
from tests.kube_fake import FakeKubeApi
from tests.kube_fake.objects import pod


def test_a_repeat_counts_on_one_event_across_a_restart_and_its_expiry(
    kube_api: FakeKubeApi, caplog: pytest.LogCaptureFixture
) -> None:
    kube_api.ensure_namespace("team-a")
    workload = kube_api.add(pod("team-a", "app", uid=str(uuid.uuid4()), node="node-1"))

    def event(message: str) -> dict[str, object]:
        return object_event(
            involved_pod(workload),
            reason="S3BucketNotFound",
            message=message,
            component="s3csi-node",
            instance="node-1",
            now=datetime.now(UTC),
            once_per="the cause",
        )

    def counts() -> list[tuple[object, object]]:
        return [(e["count"], e["message"]) for e in kube_api.items("Event", "team-a")]

    async def scenario() -> None:
        api = Api(kube_api.settings())
        try:
            first = EventRecorder(lambda: api)
            assert await first.record(event("first"))
            assert await first.record(event("second"))
            assert counts() == [(2, "second")]
            restarted = EventRecorder(lambda: api)  # remembers nothing: the create answers 409
            assert await restarted.record(event("third"))
            assert counts() == [(3, "third")]
            [stored] = kube_api.items("Event", "team-a")
            kube_api.remove("Event", "team-a", stored["metadata"]["name"])  # expired (--event-ttl)
            assert await restarted.record(event("fourth"))
            assert counts() == [(1, "fourth")]
            kube_api.forbidden.add("events")
            with caplog.at_level(logging.WARNING):
                assert not await EventRecorder(lambda: api).record(event("refused"))
            assert "the Event S3BucketNotFound on Pod team-a/app cannot be recorded" in caplog.text
            assert not await EventRecorder(lambda: None).record(event("no API"))
        finally:
            await api.close()

    asyncio.run(scenario())
