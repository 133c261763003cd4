"""``s3csi mounter --metrics-address``: what ``s3csi mount`` takes, or a socket named in the comm dir."""

from __future__ import annotations

import argparse

import pytest

from s3csi.metrics.endpoint import MetricsAddress
from s3csi.podmounter.mounter import metrics_address
from s3csi.podmounter.runtime.local import METRICS_SOCKET, mounter_command


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (":9813", MetricsAddress(port=9813)),
        ("127.0.0.1:0", MetricsAddress(host="127.0.0.1")),
        ("unix:metrics.sock", MetricsAddress(path="metrics.sock")),  # in the comm dir, the working directory
        ("unix:/run/m.sock", MetricsAddress(path="/run/m.sock")),
    ],
)
def test_metrics_address(text: str, address: MetricsAddress) -> None:
    assert metrics_address(text) == address


@pytest.mark.parametrize("text", ["unix:sub/metrics.sock", "unix:..", "unix:.", "unix:", "9813", "host:x"])
def test_metrics_address_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--metrics-address"):
        metrics_address(text)


def test_the_local_runtime_names_the_socket_only_when_asked() -> None:
    assert "--metrics-address" not in mounter_command()
    assert mounter_command(metrics=True)[-2:] == ["--metrics-address", f"unix:{METRICS_SOCKET}"]
