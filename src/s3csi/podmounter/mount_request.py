"""What goes into a mount.sock request, and the ``s3csi mount`` command line a mounter makes of it — pure.

The node plugin contributes what a volume may not choose (docs/architecture.md#cli): the S3 endpoint, the
default region and addressing style come from the driver's configuration; the volume contributes
its bucket, prefix and effective mount-s3 flags (``volume.policy``).
"""

from __future__ import annotations

from collections.abc import Sequence

from s3csi.errors import InvalidArgument
from s3csi.podmounter.protocol import VERSION, MountEnv, MountRequest
from s3csi.s3.settings import S3Settings


def _has(args: Sequence[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(f"{flag}=") for arg in args)


def build_mount_request(
    *,
    volume_id: str,
    bucket: str,
    prefix: str,
    args: Sequence[str],
    s3: S3Settings,
    credentials_file: str | None,
) -> MountRequest:
    """``prefix`` is the volume attribute; a ``--prefix`` mount option may stand in for it, not add to it."""
    if prefix and _has(args, "--prefix"):
        raise InvalidArgument("the volume attribute prefix and the mount option --prefix cannot both be set")
    return MountRequest(
        version=VERSION,
        volume_id=volume_id,
        bucket=bucket,
        prefix=prefix,
        args=list(args),
        env=MountEnv(
            region=s3.region,
            endpoint_url=s3.endpoint_url,
            force_path_style=s3.force_path_style,
            credentials_file=credentials_file,
        ),
    )


def mount_argv(request: MountRequest, fd: int) -> list[str]:
    """``s3csi mount`` arguments serving ``request`` on the FUSE descriptor ``fd``.

    A flag in the volume's own arguments (``--region``, ``--force-path-style``) wins over the
    driver's default; the endpoint is the driver's alone.
    """
    args = list(request["args"])
    env = request["env"]
    if request["prefix"]:
        args.append(f"--prefix={request['prefix']}")
    if env["endpoint_url"] is not None:
        args.append(f"--endpoint-url={env['endpoint_url']}")
    if not _has(args, "--region"):
        args.append(f"--region={env['region']}")
    if env["force_path_style"] and not _has(args, "--force-path-style"):
        args.append("--force-path-style")
    return [request["bucket"], f"/dev/fd/{fd}", *args]
