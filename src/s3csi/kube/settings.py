"""Where the Kubernetes API server is and how the node plugin authenticates to it.

``s3csi driver --kube-api auto`` (the default) uses the in-cluster configuration when
``KUBERNETES_SERVICE_HOST`` is set (the API server's service, the pod's service-account token and CA),
and no API otherwise; ``--kube-api off`` never uses one. ``--kube-api-url``, ``--kube-token-file`` and
``--kube-ca-file`` override the in-cluster values (tests, out-of-cluster runs).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from s3csi.errors import InvalidArgument

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IN_CLUSTER_TOKEN_FILE = f"{SERVICE_ACCOUNT_DIR}/token"
IN_CLUSTER_CA_FILE = f"{SERVICE_ACCOUNT_DIR}/ca.crt"
SERVICE_HOST = "KUBERNETES_SERVICE_HOST"
SERVICE_PORT = "KUBERNETES_SERVICE_PORT"


class KubeApiMode(StrEnum):
    AUTO = "auto"
    OFF = "off"


@dataclass(frozen=True)
class KubeApiFlags:
    mode: str  # --kube-api
    url: str | None = None  # --kube-api-url
    token_file: str | None = None  # --kube-token-file
    ca_file: str | None = None  # --kube-ca-file

    def named(self) -> tuple[tuple[str, str | None], ...]:
        return (
            ("--kube-api-url", self.url),
            ("--kube-token-file", self.token_file),
            ("--kube-ca-file", self.ca_file),
        )


@dataclass(frozen=True)
class KubeApiSettings:
    server: str
    """The API server's base URL, ``https://HOST:PORT`` without a trailing slash."""
    token_file: str
    """The bearer token, re-read whenever the file changes (kubelet rotates bound tokens)."""
    ca_file: str
    """The CA bundle the API server's certificate is checked against."""
    connect_timeout_s: float = 5.0
    """Seconds to open a connection to the API server."""
    request_timeout_s: float = 10.0
    """Seconds one GET may take in all, connecting included."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.server)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise InvalidArgument(
                f"--kube-api-url {self.server[:200]!r} must be https://HOST[:PORT] (the token is never sent "
                "in clear text)"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise InvalidArgument("--kube-api-url must not carry a query, a fragment or credentials")

    @property
    def base_url(self) -> str:
        return self.server.rstrip("/")

    def check_files(self) -> None:
        """Fail at start, naming the flag, rather than on the first NodePublishVolume."""
        try:
            token = Path(self.token_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(
                f"--kube-token-file {self.token_file}: cannot be read ({exc.__class__.__name__})"
            ) from None
        if not token:
            raise InvalidArgument(f"--kube-token-file {self.token_file} is empty")
        try:
            ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidArgument(
                f"--kube-ca-file {self.ca_file}: not a readable PEM CA bundle ({exc.__class__.__name__})"
            ) from None


def kube_api_settings(
    flags: KubeApiFlags, env: Mapping[str, str], *, serves_node: bool
) -> KubeApiSettings | None:
    """The API the node plugin uses, or None (``off``, no in-cluster config, or no node service).

    InvalidArgument names a flag that cannot apply, rather than ignoring it."""
    given = [name for name, value in flags.named() if value is not None]
    mode = KubeApiMode(flags.mode)
    if given and mode is KubeApiMode.OFF:
        raise InvalidArgument(f"{given[0]} contradicts --kube-api off")
    if given and not serves_node:
        raise InvalidArgument(f"{given[0]} applies to the node service only (--mode node or all)")
    if mode is KubeApiMode.OFF or not serves_node:
        return None
    server = flags.url or _in_cluster_server(env)
    if server is None:
        if given:
            raise InvalidArgument(
                f"{given[0]} needs --kube-api-url outside a cluster ({SERVICE_HOST} is not set)"
            )
        return None
    return KubeApiSettings(
        server=server,
        token_file=flags.token_file or IN_CLUSTER_TOKEN_FILE,
        ca_file=flags.ca_file or IN_CLUSTER_CA_FILE,
    )


def _in_cluster_server(env: Mapping[str, str]) -> str | None:
    host = env.get(SERVICE_HOST, "").strip()
    if not host:
        return None
    port = env.get(SERVICE_PORT, "").strip() or "443"
    if not port.isdigit():
        raise InvalidArgument(f"{SERVICE_PORT} {port[:20]!r} must be a port number")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"https://{host}:{port}"
