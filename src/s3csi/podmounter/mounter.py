"""``s3csi mounter --comm-dir DIR``: the Mountpoint Pod process (docs/node-publish.md).

It listens on ``DIR/mount.sock`` for the one request of the node plugin: a FUSE fd the node plugin
has already mounted, and how to serve it. It serves the S3 file system on that fd, in this process,
as ``s3csi mount BUCKET /dev/fd/N …`` would; answers ``ready`` once the kernel's FUSE INIT is
answered (or the error that stopped it); then stops listening and serves until the node plugin
unmounts the file system, and exits 0. With ``--metrics-address`` it serves the mount's Prometheus
metrics (docs/observability.md), labelled with the request's volume id.

It never runs as root and needs no capability: the privileged half (open /dev/fuse, mount(2)) is
the node plugin's. Credentials come from ``DIR/credentials/``, an AWS shared-credentials file the
node plugin rewrites on rotation; the S3 client re-reads it when it changes. The process works in
``DIR`` with relative names only, so the directories above it need not be searchable.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import socket

from s3csi.errors import FailedPrecondition, Internal, InvalidArgument, S3csiError
from s3csi.fs import cli as fs_cli
from s3csi.fs.settings import (
    CACHE_DIR_PREFIX,
    STAGING_DIR_PREFIX,
    FsSettings,
    build_settings,
    check_mountpoint,
)
from s3csi.kernel.process import make_non_dumpable
from s3csi.logs import configure_logging
from s3csi.metrics.endpoint import UNIX_PREFIX, MetricsAddress, parse_address
from s3csi.podmounter import protocol
from s3csi.podmounter.mount_request import mount_argv
from s3csi.podmounter.protocol import MountRequest
from s3csi.podmounter.runtime import CREDENTIALS_DIR

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--comm-dir", required=True, metavar="DIR", help="the comm dir holding mount.sock")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")
    parser.add_argument(
        "--metrics-address",
        metavar="ADDR",
        type=metrics_address,
        help="serve the mount's Prometheus metrics at ADDR: HOST:PORT, :PORT, or unix:NAME, a socket in the "
        "comm dir (default: none)",
    )


def run(args: argparse.Namespace) -> int:
    seal()
    configure_logging(debug=args.debug, log_format=args.log_format)
    if os.geteuid() == 0:
        raise FailedPrecondition(
            "s3csi mounter must not run as root: run it as the Mountpoint Pod user (1000)"
        )
    try:
        os.chdir(args.comm_dir)
    except OSError as exc:
        raise InvalidArgument(f"--comm-dir {args.comm_dir}: {exc.strerror}") from exc
    listener = protocol.listen(protocol.SOCKET_NAME)
    log.info("listening on mount.sock", extra={"uid": os.getuid(), "gid": os.getgid()})
    with listener:
        conn, request, fd = protocol.accept_request(listener)
    with conn:
        return serve_request(conn, request, fd, args.metrics_address)


def metrics_address(text: str) -> MetricsAddress:
    """``--metrics-address``: what ``s3csi mount`` takes, or ``unix:NAME``, a socket in the comm dir (the
    working directory: its parents need not be searchable by the mounter)."""
    name = text.removeprefix(UNIX_PREFIX)
    if text.startswith(UNIX_PREFIX) and name and "/" not in name and name not in (".", ".."):
        return MetricsAddress(path=name)
    try:
        return parse_address(text, "--metrics-address")
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seal() -> None:
    """Before anything else: no other process of this uid may reach into this one.

    Other Mountpoint Pods run as the same uid; while this process is dumpable they could read its
    credentials through ``/proc/PID/cwd``, its memory, or take its FUSE fd with ``pidfd_getfd``. The
    local runtime starts it with a real gid other than its effective gid, which makes the kernel start
    it non-dumpable; that gid is dropped here (changing only the real and saved gid leaves the flag
    as it is), and the flag is cleared in any case, for a start that did not do so (a Pod).
    """
    gid = os.getegid()
    os.setresgid(gid, gid, gid)
    make_non_dumpable()


def serve_request(
    conn: socket.socket, request: MountRequest, fd: int, metrics: MetricsAddress | None = None
) -> int:
    """Serve the file system on ``fd`` until it is unmounted; the exit status of the process. ``metrics``:
    where to serve the mount's metrics (the volume's own flags cannot choose it)."""
    # The one unlistened socket must not look like a mounter that takes requests.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(protocol.SOCKET_NAME)
    replied = False

    def ready() -> None:
        nonlocal replied
        _reply(conn, protocol.ready_reply())
        replied = True
        conn.close()
        log.info("serving", extra={"volume_id": request["volume_id"], "bucket": request["bucket"]})

    try:
        settings = dataclasses.replace(fs_settings(request, fd), metrics_address=metrics)
        if settings.cache_dir is not None:
            remove_stale_copies(settings.cache_dir)
        use_credentials_file(request["env"]["credentials_file"])
        from s3csi.fs import session  # pyfuse3 and the S3 client, once the request is known to be good

        return session.serve(settings, os.environ, on_ready=ready, volume_id=request["volume_id"])
    except S3csiError as exc:
        if replied:
            raise
        log.error("cannot serve volume %s: %s", request["volume_id"], exc)
        _reply(conn, protocol.error_reply(exc))
        return 1
    except Exception as exc:
        if not replied:  # the node plugin must not wait for an answer that never comes
            # A bug: named by its type only, as the driver's interceptor does (the text of an unexpected
            # exception may hold anything); re-raised, the text reaches this mounter's own log.
            problem = f"internal error in the Mountpoint Pod: {type(exc).__name__} (see its log)"
            _reply(conn, protocol.error_reply(Internal(problem)))
        raise


def fs_settings(request: MountRequest, fd: int) -> FsSettings:
    """What ``s3csi mount`` would make of the request's command line, validated the same way."""
    parser = argparse.ArgumentParser(prog="s3csi mount", add_help=False, exit_on_error=False)
    fs_cli.add_arguments(parser)
    argv = mount_argv(request, fd)
    try:
        args, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise InvalidArgument(f"mount arguments: {exc}") from None
    if unknown:
        raise InvalidArgument(f"mount arguments not understood: {' '.join(unknown)}")
    settings = build_settings(fs_cli.flags_from(args), default_uid=os.getuid(), default_gid=os.getgid())
    check_mountpoint(settings)
    return settings


def remove_stale_copies(cache_dir: str) -> None:
    """The read cache and staged copies a mounter of this Mountpoint Pod left when it died (kill -9, OOM):
    a Pod's cache volume, or the local runtime's cache dir, outlives a restart of its mounter, and one mounter
    at a time serves it, so what another left is garbage — kept, it would grow with every crash until
    kubelet evicts the pod for outgrowing the volume's sizeLimit."""
    for entry in os.scandir(cache_dir):
        if entry.name.startswith((CACHE_DIR_PREFIX, STAGING_DIR_PREFIX)) and entry.is_dir(
            follow_symlinks=False
        ):
            log.info("removing %s, left by a mounter that died", entry.name)
            shutil.rmtree(entry.path, ignore_errors=True)


def use_credentials_file(credentials_file: str | None) -> None:
    """Point the S3 client's standard credential chain at the comm dir's file (relative to the cwd).

    The process environment is the mounter's own and clean (the runtime passes none of the driver's),
    so the chain finds exactly this file; without one the mount can only serve --no-sign-request.
    """
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ["HOME"] = "."
    os.environ["AWS_CONFIG_FILE"] = os.path.join(CREDENTIALS_DIR, "config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = credentials_file or os.path.join(CREDENTIALS_DIR, "none")


def _reply(conn: socket.socket, reply: protocol.MountReply) -> None:
    try:
        protocol.send_reply(conn, reply)
    except OSError as exc:
        log.warning("could not answer the node plugin: %s", exc)
