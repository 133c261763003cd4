"""``s3csi mount BUCKET DIR [flags]``: mount-s3's command line, same flag names and meanings, plus
``--allow-rename``. Without ``--foreground`` the command returns once the mount works (status 0), or
fails with the reason (non-zero) and leaves nothing mounted."""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import os
import sys

from s3csi.errors import S3csiError, Unavailable
from s3csi.fs.settings import FsFlags, FsSettings, build_settings, check_cache_dir, check_mountpoint
from s3csi.logs import configure_logging

SYSLOG_SOCKET = "/dev/log"
# The daemon's report to the waiting parent: this, or the error text.
READY = b"\0ready"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bucket", metavar="BUCKET", help="name of the bucket to mount")
    parser.add_argument(
        "directory", metavar="DIR", help="mount point, or /dev/fd/N: a mounted /dev/fuse descriptor"
    )
    flag = parser.add_argument
    flag("--prefix", help="key prefix to mount, ending in '/' [default: the whole bucket]")
    flag("--region", help="AWS region of the bucket [default: AWS_REGION, else us-east-1]")
    flag("--endpoint-url", help="S3 endpoint URL [default: AWS_ENDPOINT_URL, else AWS]")
    flag("--force-path-style", action="store_true", help="address buckets as ENDPOINT/BUCKET/KEY")
    flag("--read-only", action="store_true", help="mount read-only: every change fails with EROFS")
    flag("--allow-delete", action="store_true", help="allow unlink (deletes the object)")
    flag("--allow-overwrite", action="store_true", help="allow replacing existing files (open with O_TRUNC)")
    flag("--allow-rename", action="store_true", help="allow renaming files (copy + delete: NOT atomic)")
    flag("--allow-other", action="store_true", help="allow other users, including root, to access the mount")
    flag("--allow-root", action="store_true", help="allow root to access the mount")
    flag("--uid", help="owner of every file and directory [default: the caller's uid]")
    flag("--gid", help="group of every file and directory [default: the caller's gid]")
    flag("--dir-mode", help="permission bits of directories, octal [default: 0755]")
    flag("--file-mode", help="permission bits of files, octal [default: 0644]")
    flag("-f", "--foreground", action="store_true", help="stay in the foreground")
    flag("--auto-unmount", action="store_true", help="unmount when the process exits, even if killed")
    flag("--metadata-ttl", help="seconds to cache metadata, or 'minimal' (1 s) or 'indefinite'")
    flag("--negative-metadata-ttl", help="seconds to cache 'no such file' [default: --metadata-ttl]")
    flag("--cache", metavar="DIR", help="keep read parts in a cache in DIR")
    flag("--max-cache-size", metavar="MiB", help="bound of the --cache [default: leave 5%% of the disk free]")
    flag(
        "--part-size", metavar="BYTES", help="part size of ranged GETs and multipart uploads [default: 8 MiB]"
    )
    flag("--read-part-size", metavar="BYTES", help="part size of ranged GETs [default: --part-size]")
    flag("--write-part-size", metavar="BYTES", help="part size of multipart uploads [default: --part-size]")
    flag("--max-threads", metavar="N", help="most S3 requests in flight at once [default: 16]")
    flag("--storage-class", help="storage class of new objects, e.g. STANDARD_IA")
    flag("--sse", help="server-side encryption of new objects: aws:kms, aws:kms:dsse or AES256")
    flag("--sse-kms-key-id", help="KMS key for --sse aws:kms / aws:kms:dsse")
    flag("--no-sign-request", action="store_true", help="send anonymous requests (public buckets)")
    flag("--user-agent-prefix", help="put this in front of the User-Agent of every request")
    flag("-d", "--debug", action="store_true", help="log at DEBUG")


def flags_from(args: argparse.Namespace) -> FsFlags:
    values = vars(args)
    names = FsFlags.__dataclass_fields__
    return FsFlags(**{name: values[name] for name in names if name in values})


def run(args: argparse.Namespace) -> int:
    settings = build_settings(flags_from(args), default_uid=os.getuid(), default_gid=os.getgid())
    check_mountpoint(settings)
    check_cache_dir(settings)
    from s3csi.fs import session  # pyfuse3 and the S3 client only once the flags are known to be good

    if settings.foreground:
        configure_logging(debug=settings.debug)
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

    def ready() -> None:
        _detach_from_terminal()
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


def _detach_from_terminal() -> None:
    """The caller may be waiting for our stdout/stderr to close (a pipe): hand them to /dev/null, and
    log to syslog when there is one, as mount-s3 does."""
    sys.stdout.flush()
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    root = logging.getLogger()
    if os.path.exists(SYSLOG_SOCKET):
        handler = logging.handlers.SysLogHandler(address=SYSLOG_SOCKET)
        handler.setFormatter(
            logging.Formatter("s3csi-mount[%(process)d]: %(levelname)s %(name)s: %(message)s")
        )
        root.handlers[:] = [handler]
    else:
        root.handlers[:] = [logging.NullHandler()]
