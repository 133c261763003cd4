"""Which workloads share one Mountpoint Pod (docs/architecture.md#sharing), as a pure key.

Two workloads share a Mountpoint Pod, and with it one FUSE mount, exactly when their sharing keys
are equal. The key is a digest of these fields, and of nothing else:

- ``node_id``: a Mountpoint Pod serves one node;
- ``volume_id`` and ``pv_name`` (None for an inline volume, which has no PV);
- the effective mount: its whole argument list (``--prefix``, ``--region``, modes, ``--uid``/``--gid``, every
  permission flag, …), ``read_only``, ``fs_group`` and ``fs_user`` — a pod with
  another fsGroup or fsUser sees other owners and modes, so it needs its own FUSE mount;
- the authentication source, and with it the identity the mount acts as:
  ``driver``: nothing more (every such mount uses the driver's credentials);
  ``secret``: ``credentials_identity``, a digest of the node-publish secret's access key id (see
  :func:`credentials_identity_of`), so workloads holding other keys never act with each other's credentials;
  ``pod``: the pod's namespace, its service account and ``role_arn``, the role the mount assumes (the volume
  attribute ``roleArn``, else the service account's ``eks.amazonaws.com/role-arn`` annotation:
  :func:`s3csi.credentials.plan.pod_role`). The role is in the key although the PV and the service account
  already are: an annotation changed while pods run makes the next pods assume another role, and they must
  not join a mount that acts as the old one.

Pod names and uids are deliberately not in the key: replicas of a Deployment with the same security context
share one Mountpoint Pod.
"""

from __future__ import annotations

import hashlib
import json

from s3csi.errors import InvalidArgument
from s3csi.volume.context import AuthenticationSource
from s3csi.volume.policy import EffectiveMount

SHARING_KEY_LENGTH = 32
"""Hex characters (128 bits): short enough for a Kubernetes object name (≤ 63) or a directory name."""


def credentials_identity_of(access_key_id: str) -> str:
    """A stable, non-secret stand-in for an access key id: its SHA-256, hex.

    The access key id is not the secret, but it names an IAM user; the digest keeps it out of every key,
    name and log line built from the sharing key.
    """
    if not access_key_id:
        raise InvalidArgument("the access key id of a secret-based volume is empty")
    return hashlib.sha256(access_key_id.encode()).hexdigest()


def sharing_key(
    *,
    node_id: str,
    volume_id: str,
    pv_name: str | None,
    mount: EffectiveMount,
    authentication_source: AuthenticationSource,
    pod_namespace: str | None = None,
    service_account_name: str | None = None,
    role_arn: str | None = None,
    credentials_identity: str | None = None,
) -> str:
    """The key of the module docstring, :data:`SHARING_KEY_LENGTH` lowercase hex characters.

    Raises InvalidArgument when the identity the source needs is missing: ``pod`` needs ``pod_namespace``,
    ``service_account_name`` (kubelet's ``csi.storage.k8s.io/*`` volume-context keys) and ``role_arn``;
    ``secret`` needs ``credentials_identity``. Identity inputs the source does not use are left out of the
    key, so they cannot split workloads that may share.
    """
    if not node_id or not volume_id:
        raise InvalidArgument("a sharing key needs a node id and a volume id")
    identity: dict[str, str] = {}
    if authentication_source is AuthenticationSource.POD:
        if not pod_namespace or not service_account_name:
            raise InvalidArgument(
                "authenticationSource pod needs the pod's namespace and service account "
                "(enable podInfoOnMount on the CSIDriver)"
            )
        if not role_arn:
            raise InvalidArgument("authenticationSource pod needs the role the mount assumes")
        identity = {"namespace": pod_namespace, "serviceAccount": service_account_name, "role": role_arn}
    elif authentication_source is AuthenticationSource.SECRET:
        if not credentials_identity:
            raise InvalidArgument("authenticationSource secret needs the node-publish secret's access key id")
        identity = {"credentials": credentials_identity}
    canonical = json.dumps(
        {
            "version": 1,
            "node": node_id,
            "volume": volume_id,
            "pv": pv_name,
            "args": list(mount.args),
            "readOnly": mount.read_only,
            "fsGroup": mount.fs_group,
            "fsUser": mount.fs_user,
            "authenticationSource": authentication_source.value,
            "identity": identity,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:SHARING_KEY_LENGTH]
