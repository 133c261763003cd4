"""``s3csi mount BUCKET DIR [flags]``: mount-s3's command line, same flag names and meanings, plus
``--allow-rename``; the flags, their help and defaults come from :mod:`s3csi.mountflags`. Without
``--foreground`` the command returns once the mount works (status 0), or fails with the reason (non-zero)
and leaves nothing mounted."""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import os
import sys
import time

from s3csi.errors import InvalidArgument, S3csiError, Unavailable
from s3csi.fs.settings import FsFlags, FsSettings, build_settings, check_cache_dir, check_mountpoint
from s3csi.logs import configure_logging
from s3csi.mountflags import FLAGS, ValueKind

SYSLOG_SOCKET = "/dev/log"
# The daemon's report to the waiting parent: this, or the error text.
READY = b"\0ready"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """BUCKET, DIR and one argument per flag spec (:data:`s3csi.mountflags.FLAGS`)."""
    parser.add_argument(
        "bucket",
        metavar="BUCKET",
        help="bucket name, access point ARN or alias, or Outposts access point ARN or alias, to mount",
    )
    parser.add_argument(
        "directory", metavar="DIR", help="mount point, or /dev/fd/N: a mounted /dev/fuse descriptor"
    )
    for spec in FLAGS:
        names = (f"-{spec.short}", spec.option) if spec.short else (spec.option,)
        # argparse %-formats help texts.
        text = spec.help if spec.default_help is None else f"{spec.help} [default: {spec.default_help}]"
        text = text.replace("%", "%%")
        if spec.kind is ValueKind.FLAG:
            parser.add_argument(*names, action="store_true", help=text)
        else:
            parser.add_argument(*names, metavar=spec.metavar, help=text)


def flags_from(args: argparse.Namespace) -> FsFlags:
    """The flags argparse found: switches that are on, and the text of each value given."""
    given: dict[str, str | bool] = {}
    for spec in FLAGS:
        value = getattr(args, spec.dest, None)
        if value is not None and value is not False:
            given[spec.name] = value
    return FsFlags(bucket=args.bucket, directory=args.directory, given=given)


def run(args: argparse.Namespace) -> int:
    settings = build_settings(flags_from(args), default_uid=os.getuid(), default_gid=os.getgid())
    check_mountpoint(settings)
    check_cache_dir(settings)
    from s3csi.fs import session  # pyfuse3 and the S3 client only once the flags are known to be good

    if settings.log_directory is not None and not os.path.isdir(settings.log_directory):
        raise InvalidArgument(f"--log-directory: {settings.log_directory} is not a directory")
    if settings.foreground:
        configure_logging(debug=settings.debug)
        _log_destination(settings)
        return session.serve(settings, os.environ)
    return _serve_in_background(settings)


def _serve_in_background(settings: FsSettings) -> int:
    """Fork; the child mounts and serves, the parent waits until the mount works or failed."""
    from s3csi.fs import session

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as report:
            message = report.read()
        if message == READY:
            return 0
        _, status = os.waitpid(pid, 0)
        reason = message.decode(errors="replace").strip()
        raise Unavailable(reason or f"the file system exited with status {os.waitstatus_to_exitcode(status)}")
    os.close(read_end)
    os.setsid()
    configure_logging(debug=settings.debug)
    _log_destination(settings)

    def ready() -> None:
        _detach_from_terminal(keep_handlers=settings.no_log or settings.log_directory is not None)
        os.write(write_end, READY)
        os.close(write_end)

    try:
        code = session.serve(settings, os.environ, on_ready=ready)
    except S3csiError as exc:
        with contextlib.suppress(OSError):
            os.write(write_end, str(exc).encode())
        code = 1
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(write_end, f"internal error: {type(exc).__name__}: {exc}".encode())
        code = 70
    logging.shutdown()
    os._exit(code)


def _log_destination(settings: FsSettings) -> None:
    """``--no-log``: no log at all; ``--log-directory DIR``: a new file in DIR (never an existing one,
    never through a symbolic link), named like mount-s3's ``s3csi-mount-TIME-PID.log``."""
    root = logging.getLogger()
    if settings.no_log:
        root.handlers[:] = [logging.NullHandler()]
        return
    if settings.log_directory is None:
        return
    name = f"s3csi-mount-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.log"
    path = os.path.join(settings.log_directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise InvalidArgument(f"--log-directory: cannot create {path}: {exc.strerror}") from exc
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8", buffering=1))
    handler.setFormatter(root.handlers[0].formatter if root.handlers else None)
    root.handlers[:] = [handler]


def _detach_from_terminal(*, keep_handlers: bool = False) -> None:
    """The caller may be waiting for our stdout/stderr to close (a pipe): hand them to /dev/null, and
    log to syslog when there is one, as mount-s3 does (unless the log goes to a file or nowhere)."""
    sys.stdout.flush()
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    root = logging.getLogger()
    if keep_handlers:
        return
    if os.path.exists(SYSLOG_SOCKET):
        handler = logging.handlers.SysLogHandler(address=SYSLOG_SOCKET)
        handler.setFormatter(
            logging.Formatter("s3csi-mount[%(process)d]: %(levelname)s %(name)s: %(message)s")
        )
        root.handlers[:] = [handler]
    else:
        root.handlers[:] = [logging.NullHandler()]
