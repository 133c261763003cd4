"""``s3csi driver``'s configuration, built once from the flags and the environment, then frozen."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from s3csi.errors import InvalidArgument
from s3csi.logs import LogFormat
from s3csi.s3 import S3Settings
from s3csi.volume.context import DEFAULT_DRIVER_NAME

__all__ = ["DEFAULT_DRIVER_NAME"]
DEFAULT_KUBELET_DIR = "/var/lib/kubelet"
UNIX_SCHEME = "unix://"

# GetPluginInfo's name: domain-name notation, at most 63 characters (CSI spec).
DRIVER_NAME_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?")


class Mode(StrEnum):
    """Which CSI services this process serves (Identity always)."""

    NODE = "node"
    CONTROLLER = "controller"
    ALL = "all"

    @property
    def serves_node(self) -> bool:
        return self is not Mode.CONTROLLER

    @property
    def serves_controller(self) -> bool:
        return self is not Mode.NODE


@dataclass(frozen=True)
class DriverSettings:
    socket_path: str
    """The unix socket gRPC listens on (``--endpoint unix:///path``); replaced if stale, mode 0700."""
    node_id: str
    """NodeGetInfo's node id (``--node-id``)."""
    mode: Mode
    driver_name: str = DEFAULT_DRIVER_NAME
    kubelet_dir: str = DEFAULT_KUBELET_DIR
    """NodePublishVolume target paths must lie below it (``--kubelet-dir``)."""
    s3: S3Settings = field(default_factory=S3Settings)
    """Endpoint and region for provisioning: ``--s3-endpoint-url``/``--s3-region``, else
    AWS_ENDPOINT_URL/AWS_REGION. A custom endpoint is addressed path-style."""
    log_format: LogFormat = "text"
    debug: bool = False
    drain_timeout_s: float = 30.0
    """On SIGTERM/SIGINT: seconds in-flight RPCs get to finish before they are cancelled."""

    def __post_init__(self) -> None:
        if not self.node_id:
            raise InvalidArgument("--node-id must not be empty")
        if not DRIVER_NAME_PATTERN.fullmatch(self.driver_name):
            raise InvalidArgument(
                f"--driver-name {self.driver_name[:80]!r} must be a domain name of at most 63 characters"
            )
        if not os.path.isabs(self.kubelet_dir) or os.path.normpath(self.kubelet_dir) != self.kubelet_dir:
            raise InvalidArgument(f"--kubelet-dir {self.kubelet_dir!r} must be an absolute, normalised path")


def driver_s3_settings(env: Mapping[str, str], *, region: str | None, endpoint_url: str | None) -> S3Settings:
    """The node plugin's S3 settings: its flags, else the environment. S3-compatible stores (MinIO, Ceph,
    Scality, the embedded server) are reached path-style, AWS virtual-hosted: the endpoint's presence
    decides, so there is no flag to get wrong. ``s3csi doctor`` builds its settings here too."""
    s3 = S3Settings.from_env(env, region=region, endpoint_url=endpoint_url)
    return dataclasses.replace(s3, force_path_style=s3.endpoint_url is not None)


def socket_path(endpoint: str) -> str:
    """The path of a ``unix:///abs/path.sock`` endpoint (the form kubelet and the sidecars use)."""
    path = endpoint[len(UNIX_SCHEME) :] if endpoint.startswith(UNIX_SCHEME) else ""
    if not path.startswith("/") or path.endswith("/"):
        raise InvalidArgument(
            f"--endpoint {endpoint!r} must be unix:///ABSOLUTE/PATH (e.g. unix:///csi/csi.sock)"
        )
    return path
