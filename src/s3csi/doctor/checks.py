"""The steps of ``s3csi doctor``, run in order until the first failure, each with the code a mount runs.

- options: the node plugin's NodePublishVolume validation and mount policy (``csi.node.publish_spec``),
  the mount request it sends a Mountpoint Pod (``podmounter.mount_request``), and the ``s3csi mount``
  command line the mounter builds from it, parsed as ``s3csi mount`` parses it (``fs.settings``): the
  S3 settings below are the mount's own (endpoint, region, addressing, prefix, write options).
- endpoint: the bucket's endpoint by S3's endpoint rules (``s3.endpoints``: a combination they refuse, such
  as an Outposts access point with FIPS, fails here), then an unsigned HeadBucket; any HTTP answer (a 403
  included) shows the endpoint is there.
- credentials: the credentials the node plugin would hand the Mountpoint Pod (``credentials.resolver``),
  then a signed ListObjectsV2 of the prefix, the request the mounter sends before it mounts: refused keys,
  signatures and tokens fail here.
- bucket: that answer: NoSuchBucket, or a redirect to another region, fails. S3 says so only to keys that
  may list the bucket; to others it answers AccessDenied, and the step is skipped.
- prefix: that answer: a refusal to list fails.
- write, read-write mounts only: HeadObject of a new, randomly named key under the prefix
  (``.s3csi-doctor-<random>``; it must not exist: doctor never overwrites), PutObject of an empty object
  with the mount's write options (storage class, encryption), DeleteObject of it.

Every request is tried once, within the timeout: doctor reports what S3 answers, it does not wait out
retries.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from s3csi.credentials.driver import driver_credential_provider
from s3csi.credentials.plan import inputs_for
from s3csi.credentials.resolver import CredentialResolver
from s3csi.csi.node import publish_spec
from s3csi.csi.proto import csi_pb2
from s3csi.doctor.verdicts import (
    BUCKET_CODES,
    CREDENTIAL_CODES,
    PROBE_KEY_EXISTS,
    Failure,
    Outcome,
    Step,
    StepResult,
    VolumeFacts,
    fix_for,
)
from s3csi.errors import InvalidArgument, S3csiError
from s3csi.fs import cli as fs_cli
from s3csi.fs.session import s3_settings as mount_s3_settings
from s3csi.fs.settings import FsSettings, build_settings
from s3csi.podmounter.mount_request import build_mount_request, mount_argv
from s3csi.s3.client import ListPage, S3Client, WriteOptions
from s3csi.s3.credentials import Credentials, StaticCredentials
from s3csi.s3.errors import S3Error
from s3csi.s3.settings import S3Settings
from s3csi.s3.sts import sts_endpoint_override
from s3csi.volume.context import AuthenticationSource
from s3csi.volume.publish_spec import PublishSpec

PROBE_NAME_PREFIX = ".s3csi-doctor-"
# The mounter's uid and gid are the node plugin's business: any ids let the mount's flags be parsed.
_PARSE_IDS = 0


@dataclass(frozen=True)
class DoctorSettings:
    s3: S3Settings
    """The node plugin's S3 settings (``csi.settings.driver_s3_settings``)."""
    env: Mapping[str, str]
    """The environment the node plugin's credential chain and CA bundle come from."""
    kubelet_dir: str
    timeout_s: float
    sts_audience: str


class _Failed(Exception):
    """Ends the run at a failed step."""


@dataclass(frozen=True)
class _Mount:
    spec: PublishSpec
    fs: FsSettings
    s3: S3Settings


class Doctor:
    def __init__(self, settings: DoctorSettings, emit: Callable[[str], None]) -> None:
        self.settings = settings
        self._emit = emit
        self._facts: VolumeFacts | None = None

    async def run(self, request: csi_pb2.NodePublishVolumeRequest) -> bool:
        """True when every step passed (or was skipped); the first failure ends the run."""
        try:
            with self._mount(request) as mount:
                await self._check_s3(mount)
        except _Failed:
            return False
        return True

    # ---- reporting ---------------------------------------------------------------------------------

    def _result(self, result: StepResult) -> None:
        self._emit(result.line())

    def _pass(self, step: Step, detail: str) -> None:
        self._result(StepResult(step, Outcome.PASS, detail))

    def _skip(self, step: Step, why: str) -> None:
        self._result(StepResult(step, Outcome.SKIP, why))

    def _fail(self, failure: Failure, detail: str) -> _Failed:
        facts = self._facts or VolumeFacts("", "", self.settings.s3.region, AuthenticationSource.DRIVER)
        self._result(StepResult(failure.step, Outcome.FAIL, detail, fix_for(failure, facts)))
        return _Failed()

    def _fail_s3(self, step: Step, error: S3Error, detail: str = "") -> _Failed:
        # A transient failure is re-raised as "gave up after 1 attempt": name what S3 (or the network) said.
        if isinstance(error.__cause__, S3Error):
            error = error.__cause__
        failure = Failure(step, error.code, _operation(error), str(error))
        return self._fail(failure, f"{detail}{error}")

    # ---- the steps ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _mount(self, request: csi_pb2.NodePublishVolumeRequest) -> Iterator[_Mount]:
        with tempfile.TemporaryDirectory(prefix="s3csi-doctor-") as cache_dir:
            try:
                spec = publish_spec(request, self.settings.kubelet_dir)
                mount_request = build_mount_request(
                    volume_id=spec.volume_id,
                    bucket=spec.context.bucket_name,
                    prefix=spec.context.prefix,
                    # The Mountpoint Pod's cache directory: only its presence matters to the flags.
                    args=[*spec.mount.args, *([f"--cache={cache_dir}"] if spec.context.cache else [])],
                    s3=self.settings.s3,
                    credentials_file=None,
                )
                fs = _parse_mount_argv(mount_argv(mount_request, fd=0))
            except S3csiError as exc:
                failure = Failure(Step.OPTIONS, type(exc).__name__, message=str(exc))
                raise self._fail(failure, str(exc)) from None
            s3 = _one_try(mount_s3_settings(fs, self.settings.env), self.settings.timeout_s)
            self._facts = VolumeFacts(
                bucket=fs.bucket,
                prefix=fs.prefix,
                region=s3.region,
                authentication_source=spec.context.authentication_source,
            )
            mode = "read-only" if fs.read_only else "read-write"
            self._pass(
                Step.OPTIONS,
                f"NodePublishVolume accepts the volume: s3://{fs.bucket}/{fs.prefix} {mode}, "
                f"mount-s3 arguments {' '.join(spec.mount.args)}",
            )
            yield _Mount(spec, fs, s3)

    async def _check_s3(self, mount: _Mount) -> None:
        await self._check_endpoint(mount)
        credentials = await self._credentials(mount)
        provider = None if credentials is None else StaticCredentials(credentials)
        async with S3Client(mount.s3, provider) as client:
            listed = await self._check_signature(mount, client, credentials)
            self._check_bucket(mount, listed)
            if isinstance(listed, S3Error):
                raise self._fail_s3(Step.PREFIX, listed)
            where = f"s3://{mount.fs.bucket}/{mount.fs.prefix}"
            self._pass(Step.PREFIX, f"ListObjectsV2 of {where}: {'empty' if _empty(listed) else 'not empty'}")
            await self._check_write(mount, client)

    async def _check_endpoint(self, mount: _Mount) -> None:
        where = mount.s3.endpoint_url or f"the AWS S3 endpoint of {mount.s3.region}"
        anonymous = dataclasses.replace(mount.s3, no_sign_request=True)
        async with S3Client(anonymous) as client:
            try:
                client.endpoint(mount.fs.bucket)
            except InvalidArgument as exc:
                # The S3 endpoint rules refuse this bucket with these settings (an access point with
                # --transfer-acceleration, Outposts with FIPS, …): the mount would fail on its first request.
                failure = Failure(Step.ENDPOINT, type(exc).__name__, message=str(exc))
                raise self._fail(
                    failure, f"S3's endpoint rules refuse the volume's settings: {exc}"
                ) from None
            try:
                await client.head_bucket(mount.fs.bucket)
                status = 200
            except S3Error as error:
                if error.status is None:
                    detail = f"no HTTP answer from {where} within {self.settings.timeout_s:g} s: "
                    raise self._fail_s3(Step.ENDPOINT, error, detail) from None
                status = error.status
        self._pass(Step.ENDPOINT, f"{where} answered an unsigned HeadBucket with HTTP {status}")

    async def _credentials(self, mount: _Mount) -> Credentials | None:
        if mount.s3.no_sign_request:
            self._skip(Step.CREDENTIALS, "the mount sends unsigned requests (--no-sign-request)")
            return None
        env = self.settings.env
        resolver = CredentialResolver(
            driver_credential_provider(env),
            sts_endpoint_url=sts_endpoint_override(env),
            ca_bundle=mount.s3.ca_bundle,
        )
        inputs = inputs_for(
            mount.spec, driver_region=self.settings.s3.region, audience=self.settings.sts_audience
        )
        try:
            return await resolver.act(resolver.plan(inputs))
        except S3csiError as exc:
            code = getattr(exc, "code", type(exc).__name__)
            failure = Failure(Step.CREDENTIALS, code, message=str(exc))
            raise self._fail(failure, f"no credentials for the mount: {exc}") from None

    async def _check_signature(
        self, mount: _Mount, client: S3Client, credentials: Credentials | None
    ) -> ListPage | S3Error:
        try:
            listed: ListPage | S3Error = await client.list_objects_v2(
                mount.fs.bucket, prefix=mount.fs.prefix, max_keys=1
            )
        except S3Error as error:
            if error.status is None:
                raise self._fail_s3(Step.CREDENTIALS, error, "no answer to a signed request: ") from None
            if error.code in CREDENTIAL_CODES:
                source = "" if credentials is None else f"the keys from {credentials.source}: "
                raise self._fail_s3(Step.CREDENTIALS, error, f"S3 refused {source}") from None
            listed = error
        if credentials is not None:
            detail = f"S3 accepts requests signed with the keys from {credentials.source}"
            self._pass(Step.CREDENTIALS, detail)
        return listed

    def _check_bucket(self, mount: _Mount, listed: ListPage | S3Error) -> None:
        """From the listing's answer. S3 says a bucket is missing or elsewhere only to keys that may list
        it; others get AccessDenied either way."""
        bucket = mount.fs.bucket
        if isinstance(listed, ListPage):
            self._pass(Step.BUCKET, f"s3://{bucket} exists in {mount.s3.region}")
        elif listed.code in BUCKET_CODES:
            raise self._fail_s3(Step.BUCKET, listed)
        else:
            self._skip(Step.BUCKET, f"S3 refused to list s3://{bucket}, so it did not say whether it exists")

    async def _check_write(self, mount: _Mount, client: S3Client) -> None:
        if mount.fs.read_only:
            self._skip(Step.WRITE, "the mount is read-only (--read-only): nothing is written")
            return
        fs = mount.fs
        key = f"{fs.prefix}{PROBE_NAME_PREFIX}{secrets.token_hex(8)}"
        where = f"s3://{fs.bucket}/{key}"
        try:
            await client.head_object(fs.bucket, key)
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NotFound"):
                raise self._fail_s3(Step.WRITE, error, "cannot check that the probe key is free: ") from None
        else:
            failure = Failure(Step.WRITE, PROBE_KEY_EXISTS, "HeadObject")
            raise self._fail(failure, f"the probe key {where} already exists")
        try:
            options = WriteOptions(fs.storage_class, fs.sse, fs.sse_kms_key_id)
            await client.put_object(fs.bucket, key, b"", options)
        except S3Error as error:
            raise self._fail_s3(Step.WRITE, error) from None
        try:
            await client.delete_object(fs.bucket, key)
        except S3Error as error:
            raise self._fail_s3(Step.WRITE, error, f"wrote the probe {where} but it remains: ") from None
        self._pass(Step.WRITE, f"wrote and deleted the probe object {where}")


def _operation(error: S3Error) -> str:
    """The S3 call an error's message starts with ("PutObject s3://…: AccessDenied …")."""
    return str(error).split(" ", 1)[0]


def _empty(page: ListPage) -> bool:
    return not page.objects and not page.common_prefixes


def _parse_mount_argv(argv: list[str]) -> FsSettings:
    """``s3csi mount``'s settings for ``argv``, parsed by its own parser: InvalidArgument as it would fail."""
    parser = argparse.ArgumentParser(prog="s3csi mount", add_help=False, exit_on_error=False)
    fs_cli.add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except argparse.ArgumentError as exc:
        raise InvalidArgument(f"s3csi mount would refuse its arguments: {exc}") from None
    return build_settings(fs_cli.flags_from(args), default_uid=_PARSE_IDS, default_gid=_PARSE_IDS)


def _one_try(s3: S3Settings, timeout_s: float) -> S3Settings:
    return dataclasses.replace(s3, max_attempts=1, connect_timeout_s=timeout_s, request_timeout_s=timeout_s)
