"""The node plugin's Mountpoint Pod publisher, built from ``s3csi driver``'s flags.

``--runtime`` chooses where Mountpoint Pods run (``local``, the default, is the only runtime of this
build); ``--state-dir`` holds what must survive a restart of the node plugin; ``--sts-audience`` is the
audience of the service-account token exchanged for ``authenticationSource: pod``. All apply to the
node service only. Starting the publisher tidies what a previous node plugin left half done (``recover``).
"""

from __future__ import annotations

from dataclasses import dataclass

from s3csi.credentials.plan import DEFAULT_AUDIENCE
from s3csi.errors import InvalidArgument
from s3csi.podmounter.publisher import PodMounterPublisher, PublisherSettings
from s3csi.podmounter.runtime.local import LocalRuntime
from s3csi.s3.credentials import CredentialProvider
from s3csi.s3.settings import S3Settings

LOCAL = "local"
DEFAULT_STATE_DIR = "/var/lib/s3csi"


@dataclass(frozen=True)
class NodeRuntimeFlags:
    runtime: str | None  # --runtime; None: local
    state_dir: str | None  # --state-dir; None: DEFAULT_STATE_DIR
    sts_audience: str | None = None  # --sts-audience; None: sts.amazonaws.com


def publisher_settings(
    flags: NodeRuntimeFlags,
    *,
    serves_node: bool,
    node_id: str,
    kubelet_dir: str,
    s3: S3Settings,
    sts_endpoint_url: str | None = None,
) -> PublisherSettings | None:
    """Validate the flags (InvalidArgument names the flag); None when this process serves no node.
    ``sts_endpoint_url``: the driver environment's STS endpoint (``s3.sts.sts_endpoint_override``)."""
    if not serves_node:
        named = (
            ("--runtime", flags.runtime),
            ("--state-dir", flags.state_dir),
            ("--sts-audience", flags.sts_audience),
        )
        for name, value in named:
            if value is not None:
                raise InvalidArgument(f"{name} applies to the node service only (--mode node or all)")
        return None
    if flags.runtime not in (None, LOCAL):
        raise InvalidArgument(
            f"--runtime {flags.runtime}: this build runs Mountpoint Pods with the local runtime only "
            f"(--runtime {LOCAL})"
        )
    state_dir = flags.state_dir or DEFAULT_STATE_DIR
    if not state_dir.startswith("/"):
        raise InvalidArgument(f"--state-dir {state_dir!r} must be an absolute path")
    if flags.sts_audience is not None and (
        not flags.sts_audience or flags.sts_audience != flags.sts_audience.strip()
    ):
        raise InvalidArgument("--sts-audience must be a non-empty audience without surrounding spaces")
    return PublisherSettings(
        node_id=node_id,
        state_dir=state_dir,
        kubelet_dir=kubelet_dir,
        s3=s3,
        sts_endpoint_url=sts_endpoint_url,
        sts_audience=flags.sts_audience or DEFAULT_AUDIENCE,
    )


async def start_publisher(
    settings: PublisherSettings, credentials: CredentialProvider
) -> PodMounterPublisher:
    publisher = PodMounterPublisher(settings, LocalRuntime(settings.state_dir), credentials)
    await publisher.recover()
    return publisher
