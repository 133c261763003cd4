from __future__ import annotations

import pytest

from s3csi.errors import InvalidArgument
from s3csi.podmounter.publisher import PublisherSettings
from s3csi.podmounter.startup import DEFAULT_STATE_DIR, NodeRuntimeFlags, publisher_settings
from s3csi.s3.settings import S3Settings

S3 = S3Settings()


@pytest.mark.parametrize(
    ("flags", "serves_node", "expected"),
    [
        (NodeRuntimeFlags(None, None), True, PublisherSettings("n", DEFAULT_STATE_DIR, "/k", S3)),
        (NodeRuntimeFlags("local", "/var/lib/x"), True, PublisherSettings("n", "/var/lib/x", "/k", S3)),
        (NodeRuntimeFlags(None, None), False, None),
        (
            NodeRuntimeFlags(None, None, sts_audience="s3csi.io"),
            True,
            PublisherSettings("n", DEFAULT_STATE_DIR, "/k", S3, sts_audience="s3csi.io"),
        ),
    ],
)
def test_publisher_settings(
    flags: NodeRuntimeFlags, serves_node: bool, expected: PublisherSettings | None
) -> None:
    assert (
        publisher_settings(flags, serves_node=serves_node, node_id="n", kubelet_dir="/k", s3=S3) == expected
    )


@pytest.mark.parametrize(
    ("flags", "serves_node", "message"),
    [
        (NodeRuntimeFlags("docker", None), True, "--runtime docker"),
        (NodeRuntimeFlags(None, "relative/dir"), True, "--state-dir 'relative/dir' must be an absolute path"),
        (NodeRuntimeFlags("local", None), False, "--runtime applies to the node service only"),
        (NodeRuntimeFlags(None, "/s"), False, "--state-dir applies to the node service only"),
        (
            NodeRuntimeFlags(None, None, sts_audience="a"),
            False,
            "--sts-audience applies to the node service only",
        ),
        (NodeRuntimeFlags(None, None, sts_audience=""), True, "--sts-audience must be a non-empty audience"),
        (
            NodeRuntimeFlags(None, None, sts_audience=" a"),
            True,
            "--sts-audience must be a non-empty audience",
        ),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(
    flags: NodeRuntimeFlags, serves_node: bool, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        publisher_settings(flags, serves_node=serves_node, node_id="n", kubelet_dir="/k", s3=S3)
