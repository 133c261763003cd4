"""Fixtures shared by the integration tests (the session-wide ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.integration.fs_helpers import RecordingProxy


@pytest.fixture
def proxy(s3_server: EmbeddedS3Server) -> Iterator[RecordingProxy]:
    """A recording proxy in front of the test server: what the mount really sent to S3."""
    recorder = RecordingProxy(s3_server.endpoint_url)
    yield recorder
    recorder.close()
