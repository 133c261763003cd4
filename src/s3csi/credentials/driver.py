"""The driver's own credentials (``authenticationSource: driver``): the standard AWS order.

1. the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, as a
   Kubernetes Secret injects them into the node DaemonSet);
2. the shared credentials and config files (``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_CONFIG_FILE``,
   ``AWS_PROFILE``), re-read when they change;
3. web identity: ``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN`` [+ ``AWS_ROLE_SESSION_NAME``]
   exchanged with STS (IRSA on the driver's service account);
4. instance metadata (IMDSv2), unless ``AWS_EC2_METADATA_DISABLED=true``; its endpoint from
   ``AWS_EC2_METADATA_SERVICE_ENDPOINT``.

A Mountpoint Pod never uses this chain: it reads only the file the node plugin wrote for it.
"""

from __future__ import annotations

from collections.abc import Mapping

from s3csi.s3.credentials import CredentialChain, CredentialSource, default_credential_provider, env_pair
from s3csi.s3.imds import InstanceMetadataCredentials, metadata_endpoint
from s3csi.s3.settings import DEFAULT_REGION
from s3csi.s3.sts import WebIdentityCredentials, sts_endpoint, sts_endpoint_override

DEFAULT_SESSION_NAME = "s3csi-driver"


def driver_credential_provider(env: Mapping[str, str]) -> CredentialChain:
    """The chain of the module docstring over ``env`` (the driver's environment, read once here)."""
    sources: list[CredentialSource] = list(default_credential_provider(env).sources)
    token_file, role_arn = env_pair(env, "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")
    if token_file:
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        sources.append(
            WebIdentityCredentials(
                token_file=token_file,
                role_arn=role_arn,
                session_name=env.get("AWS_ROLE_SESSION_NAME") or DEFAULT_SESSION_NAME,
                endpoint=sts_endpoint(sts_endpoint_override(env), region),
                ca_bundle=env.get("AWS_CA_BUNDLE") or None,
            )
        )
    endpoint = metadata_endpoint(env)
    if endpoint is not None:
        sources.append(InstanceMetadataCredentials(endpoint))
    return CredentialChain(sources)
