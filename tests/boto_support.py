"""boto3 clients on the embedded S3 server: the tests' independent witness of what reached S3 (and IAM)."""

from __future__ import annotations

from typing import Any

import boto3

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.s3 import Credentials


def boto3_client(service: str, server: EmbeddedS3Server, credentials: Credentials | None = None) -> Any:
    """A ``service`` ("s3", "iam", "sts") client on ``server``, with its root keys unless told others."""
    credentials = credentials or Credentials(server.access_key_id, server.secret_access_key)
    return boto3.client(
        service,
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )
