"""``s3csi driver --runtime kubernetes``: its flags and what they need (pure)."""

from __future__ import annotations

import pytest

from s3csi.errors import InvalidArgument
from s3csi.kube.settings import KubeApiSettings
from s3csi.podmounter.publisher import PublisherSettings
from s3csi.podmounter.runtime.kubernetes import KubernetesRuntimeSettings, comm_dir_of
from s3csi.podmounter.startup import NodeRuntimeFlags, kubernetes_runtime_settings
from s3csi.s3.settings import S3Settings

PUBLISHER = PublisherSettings("node-1", "/var/lib/s3csi", "/var/lib/kubelet", S3Settings())
API = KubeApiSettings(server="https://10.0.0.1:443", token_file="/t", ca_file="/c")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (NodeRuntimeFlags(None, None), None),
        (NodeRuntimeFlags("local", None), None),
        (
            NodeRuntimeFlags("kubernetes", None),
            KubernetesRuntimeSettings("node-1", "/var/lib/kubelet", "s3csi-mounters", 90.0),
        ),
        (
            NodeRuntimeFlags("kubernetes", None, mountpoint_namespace="mp", mountpoint_pod_timeout=5),
            KubernetesRuntimeSettings("node-1", "/var/lib/kubelet", "mp", 5.0),
        ),
    ],
)
def test_kubernetes_runtime_settings(
    flags: NodeRuntimeFlags, expected: KubernetesRuntimeSettings | None
) -> None:
    assert kubernetes_runtime_settings(flags, PUBLISHER, API) == expected


@pytest.mark.parametrize(
    ("flags", "publisher", "api", "message"),
    [
        (
            NodeRuntimeFlags("kubernetes", None),
            PUBLISHER,
            None,
            "--runtime kubernetes needs the Kubernetes API",
        ),
        (
            NodeRuntimeFlags(None, None, mountpoint_namespace="mp"),
            PUBLISHER,
            API,
            "--mountpoint-namespace applies to --runtime kubernetes only",
        ),
        (
            NodeRuntimeFlags("local", None, mountpoint_pod_timeout=3),
            PUBLISHER,
            API,
            "--mountpoint-pod-timeout applies to --runtime kubernetes only",
        ),
        (
            NodeRuntimeFlags("kubernetes", None, mountpoint_namespace="Not_A_Label"),
            PUBLISHER,
            API,
            "--mountpoint-namespace 'Not_A_Label' is not a DNS-1123 label",
        ),
        (
            NodeRuntimeFlags("kubernetes", None, mountpoint_pod_timeout=0),
            PUBLISHER,
            API,
            "--mountpoint-pod-timeout must be more than 0",
        ),
        (
            NodeRuntimeFlags("kubernetes", None),
            PublisherSettings("Node_1", "/s", "/k", S3Settings()),
            API,
            "--node-id 'Node_1': with --runtime kubernetes it is the node's name",
        ),
    ],
)
def test_kubernetes_runtime_settings_refused(
    flags: NodeRuntimeFlags, publisher: PublisherSettings, api: KubeApiSettings | None, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        kubernetes_runtime_settings(flags, publisher, api)


def test_the_comm_dir_is_the_pods_empty_dir() -> None:
    uid = "6f1c2b9e-1d2a-4c3b-9a8d-0e1f2a3b4c5d"
    assert comm_dir_of("/var/lib/kubelet", uid) == (
        f"/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~empty-dir/comm"
    )
