"""``s3csi doctor``: check what a mount of one volume needs and print each step (docs/observability.md).

The volume comes from a PersistentVolume manifest (``--pv FILE``) or from ``--volume-attribute`` flags;
credentials never come from the command line: the node plugin's own sources (the standard AWS variables,
shared credentials files, web identity, instance metadata) for ``authenticationSource: driver``, a Secret
manifest file for ``secret``, a token file for ``pod``. One line per step on stdout; exit status 0 when
every step passed, 1 at the first failure, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from s3csi.credentials.plan import DEFAULT_AUDIENCE
from s3csi.csi.settings import driver_s3_settings
from s3csi.doctor.checks import Doctor, DoctorSettings
from s3csi.doctor.inputs import (
    ACCESS_MODES,
    DEFAULT_ACCESS_MODE,
    DEFAULT_KUBELET_DIR,
    DEFAULT_VOLUME_NAME,
    PodInputs,
    VolumeUnderTest,
    key_values,
    publish_request,
    secret_data,
    volume_from_pv,
)
from s3csi.doctor.pods import pod_volumes, secret_from_cluster, volume_from_cluster
from s3csi.errors import InvalidArgument
from s3csi.kube.api import Api
from s3csi.kube.settings import KubeApiFlags, KubeApiMode, kube_api_settings
from s3csi.volume.context import AUTHENTICATION_SOURCE, BUCKET_NAME, DEFAULT_DRIVER_NAME, AuthenticationSource

DEFAULT_TIMEOUT_S = 10.0
EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    volume = parser.add_argument_group("the volume (one of --pv, --volume-attribute or --pod-uid)")
    volume.add_argument("--pv", metavar="FILE", help="PersistentVolume manifest, YAML or JSON (- for stdin)")
    volume.add_argument(
        "--pod-uid",
        metavar="UID",
        help="on a node: each volume of this driver the pod has (kubelet's directory, the Kubernetes API)",
    )
    volume.add_argument(
        "--volume-attribute",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help=f"a volume attribute, as in a PV's volumeAttributes (at least {BUCKET_NAME}); repeatable",
    )
    volume.add_argument(
        "--mount-option",
        metavar="OPTION",
        action="append",
        default=[],
        help="a mount option, as in a PV's mountOptions (with --volume-attribute); repeatable",
    )
    volume.add_argument(
        "--access-mode",
        choices=list(ACCESS_MODES),
        help=f"the PV's access mode (with --volume-attribute; default {DEFAULT_ACCESS_MODE})",
    )
    volume.add_argument(
        "--read-only", action="store_true", help="the volume is read-only (with --volume-attribute)"
    )
    volume.add_argument("--fs-group", metavar="GID", default="", help="the pod's fsGroup")
    creds = parser.add_argument_group("credentials (never on the command line)")
    creds.add_argument(
        "--secret-file",
        metavar="FILE",
        help="the node-publish Secret manifest (authenticationSource secret), as kubectl get secret -o yaml",
    )
    creds.add_argument(
        "--service-account-token-file",
        metavar="FILE",
        help="a token of the pod's service account for the STS audience (authenticationSource pod)",
    )
    creds.add_argument(
        "--sts-audience",
        default=DEFAULT_AUDIENCE,
        help=f"the audience of that token, as the node plugin's --sts-audience (default {DEFAULT_AUDIENCE})",
    )
    node = parser.add_argument_group("the node plugin's settings")
    node.add_argument(
        "--s3-endpoint-url",
        help="S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS), as the driver's",
    )
    node.add_argument("--s3-region", help="S3 region (default: AWS_REGION, else us-east-1), as the driver's")
    node.add_argument("--driver-name", default=DEFAULT_DRIVER_NAME, help="the CSIDriver's name")
    node.add_argument(
        "--kubelet-dir",
        default=DEFAULT_KUBELET_DIR,
        help=f"kubelet's directory (default {DEFAULT_KUBELET_DIR})",
    )
    kube = parser.add_argument_group("the Kubernetes API (--pod-uid; default: in-cluster)")
    kube.add_argument("--kube-api-url", help="API server https://HOST[:PORT]")
    kube.add_argument("--kube-token-file", help="bearer token file (needs get on persistentvolumes)")
    kube.add_argument("--kube-ca-file", help="CA bundle of the API server")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"for each request to S3 (default {DEFAULT_TIMEOUT_S:g})",
    )


def _load(path: str, flag: str) -> Any:
    """A YAML (or JSON, which is YAML) document from ``path``; InvalidArgument naming the flag."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        return yaml.safe_load(text)
    except OSError as exc:
        raise InvalidArgument(f"{flag} {path}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise InvalidArgument(f"{flag} {path}: not a YAML or JSON document") from None


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    except (OSError, UnicodeDecodeError):
        raise InvalidArgument(f"--service-account-token-file {path} cannot be read") from None


def _volume_flags(args: argparse.Namespace) -> list[tuple[str, object]]:
    return [
        ("--pv", args.pv),
        ("--volume-attribute", args.volume_attribute),
        ("--mount-option", args.mount_option),
        ("--access-mode", args.access_mode),
        ("--read-only", args.read_only),
    ]


def volume_from_args(args: argparse.Namespace) -> VolumeUnderTest:
    if args.pv is not None:
        given = [flag for flag, value in _volume_flags(args)[1:] if value]
        if given:
            raise InvalidArgument(f"{given[0]} cannot be combined with --pv: change the PV manifest instead")
        found = volume_from_pv(_load(args.pv, "--pv"), args.driver_name)
        return dataclasses.replace(found, fs_group=args.fs_group)
    if not args.volume_attribute:
        raise InvalidArgument(
            "give the volume: --pv FILE, --volume-attribute bucketName=BUCKET …, or --pod-uid UID on a node"
        )
    return VolumeUnderTest(
        name=DEFAULT_VOLUME_NAME,
        volume_handle=DEFAULT_VOLUME_NAME,
        volume_attributes=key_values(args.volume_attribute, "--volume-attribute"),
        mount_options=tuple(args.mount_option),
        access_mode=args.access_mode or DEFAULT_ACCESS_MODE,
        read_only=args.read_only,
        fs_group=args.fs_group,
    )


def _check_credential_flags(args: argparse.Namespace, volume: VolumeUnderTest) -> None:
    """A credentials flag the volume would not use is refused: the node plugin would not use it either."""
    source = volume.volume_attributes.get(AUTHENTICATION_SOURCE) or AuthenticationSource.DRIVER.value
    for flag, value, wanted in (
        ("--secret-file", args.secret_file, AuthenticationSource.SECRET),
        ("--service-account-token-file", args.service_account_token_file, AuthenticationSource.POD),
    ):
        if value is not None and source != wanted.value:
            raise InvalidArgument(
                f"{flag} applies to {AUTHENTICATION_SOURCE} {wanted.value}; this volume's is {source[:80]!r}"
            )


def _emit(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        raise InvalidArgument("--timeout must be a positive number of seconds")
    if not os.path.isabs(args.kubelet_dir) or os.path.normpath(args.kubelet_dir) != args.kubelet_dir:
        raise InvalidArgument(f"--kubelet-dir {args.kubelet_dir!r} must be an absolute, normalised path")
    settings = DoctorSettings(
        s3=driver_s3_settings(os.environ, region=args.s3_region, endpoint_url=args.s3_endpoint_url),
        env=dict(os.environ),
        kubelet_dir=args.kubelet_dir,
        timeout_s=args.timeout,
        sts_audience=args.sts_audience,
    )
    pod = PodInputs(
        token=_read_token(args.service_account_token_file) if args.service_account_token_file else "",
        audience=args.sts_audience,
    )
    if args.pod_uid is not None:
        passed = asyncio.run(_check_pod(args, settings, pod))
    else:
        volume = volume_from_args(args)
        _check_credential_flags(args, volume)
        secrets = {} if args.secret_file is None else secret_data(_load(args.secret_file, "--secret-file"))
        request = publish_request(volume, secrets=secrets, pod=pod, kubelet_dir=args.kubelet_dir)
        passed = asyncio.run(Doctor(settings, _emit).run(request))
    return 0 if passed else EXIT_FAILED


async def _check_pod(args: argparse.Namespace, settings: DoctorSettings, pod: PodInputs) -> bool:
    """Each volume of the pod in turn, under a line naming it; True when all passed."""
    given = [flag for flag, value in _volume_flags(args) if value] + (
        ["--secret-file"] if args.secret_file else []
    )
    if given:
        raise InvalidArgument(f"{given[0]} cannot be combined with --pod-uid: the pod's volumes are checked")
    found = pod_volumes(args.kubelet_dir, args.pod_uid, args.driver_name)
    flags = KubeApiFlags(
        KubeApiMode.AUTO.value,
        url=args.kube_api_url,
        token_file=args.kube_token_file,
        ca_file=args.kube_ca_file,
    )
    kube = kube_api_settings(flags, os.environ, serves_node=True)
    if kube is None:
        raise InvalidArgument(
            "--pod-uid reads the pod's PersistentVolumes from the Kubernetes API: run doctor in a pod of the "
            "cluster, or give --kube-api-url, --kube-token-file and --kube-ca-file"
        )
    kube.check_files()
    api = Api(kube)
    passed = True
    try:
        for volume in found:
            if volume.ephemeral:
                _emit(
                    f"SKIP volume {volume.directory}: an inline volume, whose attributes are in the pod's "
                    "spec: check it with --volume-attribute"
                )
                continue
            pv = dataclasses.replace(
                await volume_from_cluster(api, volume, args.driver_name), fs_group=args.fs_group
            )
            _emit(f"volume {volume.directory}: PersistentVolume {volume.spec_volume_id}")
            source = pv.volume_attributes.get(AUTHENTICATION_SOURCE)
            secrets: Mapping[str, str] = {}
            if source == AuthenticationSource.SECRET.value and pv.secret_ref is not None:
                secrets = await secret_from_cluster(api, pv.secret_ref)
            request = publish_request(pv, secrets=secrets, pod=pod, kubelet_dir=args.kubelet_dir)
            passed = await Doctor(settings, _emit).run(request) and passed
    finally:
        await api.close()
    return passed
