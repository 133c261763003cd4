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
        (
            NodeRuntimeFlags("local", None, mountpoint_pod_metrics=True),
            True,
            PublisherSettings("n", DEFAULT_STATE_DIR, "/k", S3, mountpoint_pod_metrics=True),
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
            NodeRuntimeFlags(None, None, mountpoint_pod_metrics=True),
            False,
            "--mountpoint-pod-metrics applies to the node service only",
        ),
        (
            NodeRuntimeFlags("kubernetes", None, mountpoint_pod_metrics=True),
            True,
            "--mountpoint-pod-metrics applies to --runtime local only",
        ),
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


def test_the_crash_loop_window_reaches_the_publisher() -> None:
    settings = publisher_settings(
        NodeRuntimeFlags(None, None, mounter_crash_loop_window=0.0),
        serves_node=True,
        node_id="n",
        kubelet_dir="/k",
        s3=S3,
    )
    assert settings is not None and settings.recovery.crash_loop_window_s == 0.0


@pytest.mark.parametrize(("window", "serves_node"), [(-1.0, True), (3601.0, True), (5.0, False)])
def test_a_bad_crash_loop_window_is_refused(window: float, serves_node: bool) -> None:
    with pytest.raises(InvalidArgument, match="--mounter-crash-loop-window"):
        publisher_settings(
            NodeRuntimeFlags(None, None, mounter_crash_loop_window=window),
            serves_node=serves_node,
            node_id="n",
            kubelet_dir="/k",
            s3=S3,
        )
