"""``s3csi driver --kube-api`` and its overrides: which API server, token and CA, or none."""

from __future__ import annotations

import pytest

from s3csi.errors import InvalidArgument
from s3csi.kube.settings import (
    IN_CLUSTER_CA_FILE,
    IN_CLUSTER_TOKEN_FILE,
    KubeApiFlags,
    KubeApiSettings,
    kube_api_settings,
)

IN_CLUSTER = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.mark.parametrize(
    ("flags", "env", "serves_node", "expected"),
    [
        (KubeApiFlags("auto"), {}, True, None),
        (KubeApiFlags("auto"), IN_CLUSTER, False, None),
        (KubeApiFlags("off"), IN_CLUSTER, True, None),
        (
            KubeApiFlags("auto"),
            IN_CLUSTER,
            True,
            KubeApiSettings("https://10.96.0.1:443", IN_CLUSTER_TOKEN_FILE, IN_CLUSTER_CA_FILE),
        ),
        (
            KubeApiFlags("auto"),
            {"KUBERNETES_SERVICE_HOST": "fd00::1"},
            True,
            KubeApiSettings("https://[fd00::1]:443", IN_CLUSTER_TOKEN_FILE, IN_CLUSTER_CA_FILE),
        ),
        (
            KubeApiFlags("auto", "https://127.0.0.1:6443/", "/t", "/c"),
            {},
            True,
            KubeApiSettings("https://127.0.0.1:6443/", "/t", "/c"),
        ),
        (
            KubeApiFlags("auto", ca_file="/c"),
            IN_CLUSTER,
            True,
            KubeApiSettings("https://10.96.0.1:443", IN_CLUSTER_TOKEN_FILE, "/c"),
        ),
    ],
)
def test_kube_api_settings(
    flags: KubeApiFlags, env: dict[str, str], serves_node: bool, expected: KubeApiSettings | None
) -> None:
    assert kube_api_settings(flags, env, serves_node=serves_node) == expected


@pytest.mark.parametrize(
    ("flags", "env", "serves_node", "words"),
    [
        (KubeApiFlags("off", url="https://h"), {}, True, "--kube-api-url contradicts --kube-api off"),
        (KubeApiFlags("off", token_file="/t"), {}, True, "--kube-token-file contradicts"),
        (KubeApiFlags("auto", url="https://h"), {}, False, "--kube-api-url applies to the node service only"),
        (KubeApiFlags("auto", ca_file="/c"), {}, True, "--kube-ca-file needs --kube-api-url"),
        (KubeApiFlags("auto", url="http://h:80"), {}, True, "--kube-api-url 'http://h:80' must be https"),
        (KubeApiFlags("auto", url="https://h/api"), {}, True, "must be https://HOST"),
        (KubeApiFlags("auto", url="https://u:p@h"), {}, True, "must not carry"),
        (
            KubeApiFlags("auto"),
            {**IN_CLUSTER, "KUBERNETES_SERVICE_PORT": "x"},
            True,
            "KUBERNETES_SERVICE_PORT",
        ),
    ],
)
def test_flags_that_cannot_apply_are_refused_by_name(
    flags: KubeApiFlags, env: dict[str, str], serves_node: bool, words: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        kube_api_settings(flags, env, serves_node=serves_node)
    assert words in str(raised.value)
