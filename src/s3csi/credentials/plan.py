"""Which credentials one NodePublishVolume mounts with: a pure decision over the request's inputs.

:func:`plan_credentials` reads the volume's ``authenticationSource`` and returns one of

- :class:`UseDriver`: the driver's own chain (environment, shared files, web identity, instance metadata);
- :class:`UseSecret`: the node-publish secret's keys, validated here;
- :class:`AssumePodRole`: the pod's service-account token for the configured audience, to be exchanged
  with STS ``AssumeRoleWithWebIdentity`` for a role, in a region.

Nothing here does I/O; :mod:`s3csi.credentials.resolver` acts on the plan. Every error names the key,
attribute or field at fault and never its value: these inputs are secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from s3csi.errors import InvalidArgument, PermissionDenied
from s3csi.mountflags import REGION_PATTERN
from s3csi.s3.credentials import Credentials
from s3csi.volume.context import (
    ROLE_ARN,
    ROLE_ARN_ANNOTATION,
    SERVICE_ACCOUNT_TOKENS,
    STS_REGION,
    AuthenticationSource,
    is_role_arn,
)
from s3csi.volume.publish_spec import PublishSpec

# The keys of a provisioner or node-publish secret (docs/credentials.md).
ACCESS_KEY_ID = "access_key_id"
SECRET_ACCESS_KEY = "secret_access_key"
SESSION_TOKEN = "session_token"
SECRET_KEYS = (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN)
# Longest accepted values: IAM key ids are at most 128 characters; S3-compatible stores use longer
# secrets than AWS's 40; STS session tokens run to a few kilobytes.
MAX_LENGTH = {ACCESS_KEY_ID: 128, SECRET_ACCESS_KEY: 1024, SESSION_TOKEN: 8192}

DEFAULT_AUDIENCE = "sts.amazonaws.com"
SECRET_SOURCE = "node-publish secret"
POD_SOURCE = "pod service account"


@dataclass(frozen=True)
class CredentialInputs:
    """What one publish knows about credentials."""

    authentication_source: AuthenticationSource
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The node-publish secret (``authenticationSource: secret``)."""
    service_account_tokens: str | None = field(default=None, repr=False)
    """kubelet's ``csi.storage.k8s.io/serviceAccount.tokens`` JSON (CSIDriver ``tokenRequests``)."""
    role_arn: str | None = None
    """The volume attribute ``roleArn`` (already validated by ``VolumeContext``)."""
    service_account_role_arn: str | None = None
    """The service account's ``eks.amazonaws.com/role-arn`` annotation, when the node plugin could read
    it from the Kubernetes API (``s3csi driver --kube-api``)."""
    sts_region: str | None = None
    """The volume attribute ``stsRegion``."""
    mount_args: Sequence[str] = ()
    """The effective mount-s3 arguments (``--region=R`` is read from them)."""
    driver_region: str | None = None
    audience: str = DEFAULT_AUDIENCE
    pod_namespace: str | None = None
    service_account_name: str | None = None


def inputs_for(
    spec: PublishSpec, *, driver_region: str | None, audience: str = DEFAULT_AUDIENCE
) -> CredentialInputs:
    """The inputs of one validated NodePublishVolume."""
    return CredentialInputs(
        authentication_source=spec.context.authentication_source,
        secrets=spec.secrets,
        service_account_tokens=spec.service_account_tokens,
        role_arn=spec.context.role_arn,
        service_account_role_arn=spec.service_account_role_arn,
        sts_region=spec.context.sts_region,
        mount_args=spec.mount.args,
        driver_region=driver_region,
        audience=audience,
        pod_namespace=spec.pod.namespace,
        service_account_name=spec.pod.service_account,
    )


@dataclass(frozen=True)
class UseDriver:
    pass


@dataclass(frozen=True)
class UseSecret:
    credentials: Credentials


@dataclass(frozen=True)
class AssumePodRole:
    role_arn: str
    sts_region: str | None
    """None when neither the volume (``stsRegion``, ``--region``) nor the driver names one: the resolver
    asks the instance metadata service."""
    session_name: str
    token: str = field(repr=False)
    token_expiry: float | None
    """Epoch seconds when kubelet says the token expires; None when it did not say."""


CredentialPlan = UseDriver | UseSecret | AssumePodRole


def plan_credentials(inputs: CredentialInputs, *, now: float) -> CredentialPlan:
    """The plan for ``inputs``: InvalidArgument for wrong or missing inputs, PermissionDenied for a
    token that has already expired."""
    source = inputs.authentication_source
    if source is AuthenticationSource.DRIVER:
        # A secret or tokens sent along are ignored, as for the AWS driver: the volume chose the driver.
        return UseDriver()
    if source is AuthenticationSource.SECRET:
        return UseSecret(secret_credentials(inputs.secrets))
    token, expiry = service_account_token(inputs.service_account_tokens, inputs.audience, now=now)
    return AssumePodRole(
        role_arn=pod_role(inputs.role_arn, inputs.service_account_role_arn),
        sts_region=_sts_region(inputs),
        session_name=_session_name(inputs),
        token=token,
        token_expiry=expiry,
    )


def secret_credentials(secrets: Mapping[str, str], field: str = SECRET_SOURCE) -> Credentials:
    """Static S3 keys from a secret (``field`` names it in errors and in the credentials' source),
    or InvalidArgument naming the first bad key (never its value).

    ``access_key_id`` and ``secret_access_key`` are required, ``session_token`` is optional, any other
    key is refused: a typo must not fall back silently to other credentials. Used for the node-publish
    secret and for the provisioner's (csi/requests.py).
    """
    if not secrets:
        raise InvalidArgument(
            f"authenticationSource secret needs a {field} with access_key_id and "
            "secret_access_key (PV spec.csi.nodePublishSecretRef); none came with the request"
        )
    unknown = sorted(set(secrets) - set(SECRET_KEYS))
    if unknown:
        raise InvalidArgument(
            f"{field}: unknown key(s) {', '.join(k[:64] for k in unknown)} "
            f"(expected {', '.join(SECRET_KEYS)})"
        )
    for key in SECRET_KEYS:
        value = secrets.get(key)
        if value is None and key == SESSION_TOKEN:
            continue
        if value is None or not value.strip():
            raise InvalidArgument(f"{field}: {key} is required and must not be empty")
        if any(not 0x21 <= ord(c) <= 0x7E for c in value):
            raise InvalidArgument(f"{field}: {key} contains whitespace or non-printable characters")
        if len(value) > MAX_LENGTH[key]:
            raise InvalidArgument(f"{field}: {key} is longer than {MAX_LENGTH[key]} characters")
    return Credentials(
        access_key_id=secrets[ACCESS_KEY_ID],
        secret_access_key=secrets[SECRET_ACCESS_KEY],
        session_token=secrets.get(SESSION_TOKEN) or None,
        source=field,
    )


def service_account_token(tokens_json: str | None, audience: str, *, now: float) -> tuple[str, float | None]:
    """The token for ``audience`` in kubelet's tokens map, and its expiry (epoch seconds or None)."""
    if not tokens_json:
        raise InvalidArgument(
            f"authenticationSource pod needs the volume context key {SERVICE_ACCOUNT_TOKENS}: add a "
            f"tokenRequests entry with audience {audience!r} to the CSIDriver"
        )
    try:
        tokens: Any = json.loads(tokens_json)
    except ValueError:
        raise InvalidArgument(f"volume context {SERVICE_ACCOUNT_TOKENS} is not JSON") from None
    if not isinstance(tokens, dict):
        raise InvalidArgument(f"volume context {SERVICE_ACCOUNT_TOKENS} is not a JSON object")
    entry = tokens.get(audience)
    if entry is None:
        audiences = ", ".join(sorted(repr(str(a)[:64]) for a in tokens)) or "none"
        raise InvalidArgument(
            f"volume context {SERVICE_ACCOUNT_TOKENS} has no token for audience {audience!r} "
            f"(audiences present: {audiences}); add it to the CSIDriver's tokenRequests"
        )
    token = entry.get("token") if isinstance(entry, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise InvalidArgument(f"volume context {SERVICE_ACCOUNT_TOKENS}: the {audience!r} token is empty")
    expiry = _token_expiry(entry.get("expirationTimestamp"), audience)
    if expiry is not None and expiry <= now:
        raise PermissionDenied(
            f"volume context {SERVICE_ACCOUNT_TOKENS}: the {audience!r} token expired; kubelet sends a new "
            "one on the next NodePublishVolume"
        )
    return token.strip(), expiry


def _token_expiry(value: Any, audience: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError
    except ValueError:
        raise InvalidArgument(
            f"volume context {SERVICE_ACCOUNT_TOKENS}: the {audience!r} token's expirationTimestamp is not "
            "an RFC 3339 time"
        ) from None
    return moment.timestamp()


def pod_role(role_arn: str | None, service_account_role_arn: str | None) -> str:
    """The role a ``pod``-source mount assumes: the volume attribute ``roleArn`` (validated by
    ``VolumeContext``), else the service account's annotation; InvalidArgument naming both when neither is
    set, or the annotation is not a role ARN. The controller calls it too, so its sharing key names the role
    the node plugin assumes."""
    if role_arn:
        return role_arn
    if service_account_role_arn:
        if not is_role_arn(service_account_role_arn):
            raise InvalidArgument(
                f"service account annotation {ROLE_ARN_ANNOTATION} must be an IAM role ARN "
                "(arn:PARTITION:iam::ACCOUNT:role/NAME)"
            )
        return service_account_role_arn
    raise InvalidArgument(
        f"authenticationSource pod needs a role: the volume attribute {ROLE_ARN} or the service "
        f"account annotation {ROLE_ARN_ANNOTATION}"
    )


def _sts_region(inputs: CredentialInputs) -> str | None:
    if inputs.sts_region:
        return inputs.sts_region
    for arg in inputs.mount_args:
        if arg.startswith("--region="):
            return arg.removeprefix("--region=")
    if inputs.driver_region and REGION_PATTERN.fullmatch(inputs.driver_region):
        return inputs.driver_region
    return None  # the resolver asks the instance metadata service


def no_sts_region() -> InvalidArgument:
    """Neither a setting nor the instance metadata service gave a pod-level STS region."""
    return InvalidArgument(
        f"authenticationSource pod needs an STS region: set the volume attribute {STS_REGION} or the "
        "--region mount option (the driver's region, --s3-region / AWS_REGION, is not set, and the instance "
        "metadata service did not give one)"
    )


def _session_name(inputs: CredentialInputs) -> str:
    parts = ["s3csi", inputs.pod_namespace or "", inputs.service_account_name or ""]
    text = "-".join(part for part in parts if part)
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "+=,.@_-") else "_" for c in text)
    return cleaned[:64]
