"""s3csi: a Kubernetes CSI driver that mounts S3 buckets with pod-level ownership."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("s3csi")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
