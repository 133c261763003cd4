"""The async S3 client layer (docs/architecture.md#layers): settings, credentials, errors, one client.

It imports no other s3csi layer but ``s3csi.errors``; everything above it (fs, provisioning,
benchmarks) uses :class:`S3Client`.
"""

from s3csi.s3.client import S3Client, WriteOptions
from s3csi.s3.credentials import (
    CredentialProvider,
    Credentials,
    StaticCredentials,
    default_credential_provider,
)
from s3csi.s3.settings import S3Settings
from s3csi.s3.wire import ListPage, MultipartUpload, MultipartUploadPage, ObjectInfo

__all__ = [
    "CredentialProvider",
    "Credentials",
    "ListPage",
    "MultipartUpload",
    "MultipartUploadPage",
    "ObjectInfo",
    "S3Client",
    "S3Settings",
    "StaticCredentials",
    "WriteOptions",
    "default_credential_provider",
]
