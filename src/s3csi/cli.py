"""The ``s3csi`` console script: one entry point, one subcommand per part (docs/architecture.md#cli).

Each subcommand lives in its own module, which provides::

    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int

Only the module of the command being run is imported, so ``s3csi mount`` does not pay for gRPC and
``s3csi driver`` does not load FUSE. Failures end with one line on stderr and a non-zero exit status,
never a traceback (a command run with its ``--debug`` logs the traceback as well, once its logging is
set up).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn, Protocol, cast

from s3csi import __version__
from s3csi.errors import InvalidArgument, S3csiError

# name → (module, one-line description). Keep in step with docs/architecture.md#cli and README.md.
COMMANDS: dict[str, tuple[str, str]] = {
    "driver": ("s3csi.csi.main", "the CSI plugin: Identity, Controller and Node services on a unix socket"),
    "mount": ("s3csi.fs.cli", "mount an S3 bucket as a file system (mount-s3 compatible flags)"),
    "mounter": ("s3csi.podmounter.mounter", "the Mountpoint Pod process (serves a FUSE fd from mount.sock)"),
    "demo": ("s3csi.demo.run", "the whole system on this machine, played as kubelet would"),
    "ownership": ("s3csi.ownership.cli", "give a directory tree a pod's fsGroup/fsUser, as kubelet does"),
    "webhook": ("s3csi.admission.cli", "admission webhook: namespace defaults for new pods (HTTPS)"),
    "controller": ("s3csi.controller.cli", "Mountpoint Pods and attachments for workload pods"),
    "doctor": ("s3csi.doctor.cli", "check each step a mount of a volume needs, and say what to fix"),
}

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70

log = logging.getLogger(__name__)


class Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr naming what was wrong, then exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = Parser(prog="s3csi", description="Kubernetes CSI driver for S3 buckets.")
    parser.add_argument("--version", action="version", version=f"s3csi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (module, summary) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=summary, description=summary)
        if name == command:
            cast(Command, importlib.import_module(module)).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = f"s3csi {args.command}"
    try:
        return cast(Command, importlib.import_module(COMMANDS[args.command][0])).run(args)
    except KeyboardInterrupt:
        return 130
    except InvalidArgument as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except S3csiError as exc:
        log.debug("%s failed", prog, exc_info=True)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        log.debug("%s failed", prog, exc_info=True)
        print(f"{prog}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
