"""What mount-s3's endpoint, header, throughput, profile and logging flags change, decision by decision (the
wire effects are in tests/integration/test_fs_endpoints.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.errors import InvalidArgument
from s3csi.fs import cli as fs_cli
from s3csi.fs.session import credentials_env, s3_settings
from s3csi.fs.settings import FsFlags, FsSettings, build_settings, threads_for
from s3csi.mountflags import DEFAULT_MAX_THREADS, MAX_THREADS
from s3csi.s3.checksums import crc32c, crc32c_header
from s3csi.s3.client import S3Client
from s3csi.s3.credentials import default_credential_provider
from s3csi.s3.settings import S3Settings
from s3csi.s3.signing import sign
from s3csi.s3.wire import complete_multipart_body


def _settings(given: dict[str, str | bool], bucket: str = "my-bucket") -> FsSettings:
    return build_settings(FsFlags(bucket, "/mnt", given), default_uid=0, default_gid=0)


@pytest.mark.parametrize(
    ("given", "threads"),
    [
        ({}, DEFAULT_MAX_THREADS),
        ({"maximum-throughput-gbps": "1"}, 2),
        ({"maximum-throughput-gbps": "10"}, 15),
        ({"maximum-throughput-gbps": "100"}, 143),
        ({"maximum-throughput-gbps": "1000"}, MAX_THREADS),
        ({"maximum-throughput-gbps": "100", "max-threads": "8"}, 8),  # the explicit limit wins
    ],
)
def test_maximum_throughput_sets_the_requests_in_flight(given: dict[str, str | bool], threads: int) -> None:
    settings = _settings(given)
    assert settings.max_threads == threads
    # ... which is the connection pool and the concurrency of reads and part uploads.
    assert s3_settings(settings, {}).max_connections == threads
    assert threads_for(0) == 0


def test_endpoint_and_header_flags_reach_the_s3_settings() -> None:
    given: dict[str, str | bool] = {
        "dual-stack": True,
        "transfer-acceleration": True,
        "requester-pays": True,
        "expected-bucket-owner": "111122223333",
        "upload-checksums": "crc32c",
        "bucket-type": "general-purpose",
    }
    s3 = s3_settings(_settings(given), {})
    assert (s3.dual_stack, s3.accelerate, s3.requester_pays) == (True, True, True)
    assert (s3.expected_bucket_owner, s3.upload_checksums, s3.bucket_type) == (
        "111122223333",
        "crc32c",
        "general-purpose",
    )
    client = S3Client(s3)
    assert (
        client.endpoint("my-bucket").url("k") == "https://my-bucket.s3-accelerate.dualstack.amazonaws.com/k"
    )
    # Not given: the environment may still ask for the variants, as the AWS SDKs read it.
    env = {"AWS_USE_DUALSTACK_ENDPOINT": "true", "AWS_USE_FIPS_ENDPOINT": "true"}
    plain = s3_settings(_settings({}), env)
    assert (plain.dual_stack, plain.use_fips, plain.upload_checksums) == (True, True, "crc32c")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"no-log": True, "debug": True}, "--no-log cannot be combined"),
        ({"no-log": True, "log-directory": "/tmp"}, "--no-log cannot be combined"),
        ({"expected-bucket-owner": "12345"}, "--expected-bucket-owner"),
        ({"upload-checksums": "sha256"}, "--upload-checksums"),
        ({"bucket-type": "outposts"}, "--bucket-type"),
        ({"maximum-throughput-gbps": "0"}, "--maximum-throughput-gbps"),
    ],
)
def test_bad_combinations_and_values_are_refused(given: dict[str, str | bool], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _settings(given)


def test_profile_picks_that_profiles_keys_over_the_environments(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n"
        "[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = t\n"
    )
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_ACCESS_KEY_ID": "AKIDENV",
        "AWS_SECRET_ACCESS_KEY": "e",
    }

    def key_id(settings: FsSettings) -> str:
        return asyncio.run(default_credential_provider(credentials_env(settings, env)).get()).access_key_id

    assert key_id(_settings({})) == "AKIDENV"
    assert key_id(_settings({"profile": "team"})) == "AKIDTEAM"


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:]
    yield
    for handler in root.handlers:
        if handler not in saved:
            handler.close()
    root.handlers[:] = saved


@pytest.mark.usefixtures("root_handlers")
def test_no_log_and_log_directory(tmp_path: Path) -> None:
    fs_cli._log_destination(_settings({"no-log": True}))
    assert [type(h) for h in logging.getLogger().handlers] == [logging.NullHandler]
    fs_cli._log_destination(_settings({"log-directory": str(tmp_path)}))
    logging.getLogger("s3csi.test").warning("to the file")
    (log_file,) = tmp_path.glob("s3csi-mount-*.log")
    assert "to the file" in log_file.read_text()
    assert log_file.stat().st_mode & 0o777 == 0o640
    with pytest.raises(InvalidArgument, match="--log-directory"):
        fs_cli._log_destination(_settings({"log-directory": str(tmp_path / "missing")}))


def test_crc32c_known_values() -> None:
    # RFC 3720 (iSCSI) B.4 test vectors, and the standard check value.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283
    assert crc32c_header(b"") == "AAAAAA=="


def test_completion_lists_each_parts_checksum() -> None:
    body = complete_multipart_body([(2, '"e2"'), (1, '"e1"')], {1: "AAAAAQ==", 2: "AAAAAg=="})
    assert body.index(b"<ChecksumCRC32C>AAAAAQ==</ChecksumCRC32C>") < body.index(b"<PartNumber>2")
    assert b"Checksum" not in complete_multipart_body([(1, '"e1"')])


@pytest.mark.parametrize("service", ["s3", "s3-outposts", "s3express"])
def test_requests_are_signed_with_the_resolved_name_and_region(service: str) -> None:
    from s3csi.s3.credentials import Credentials

    headers = sign(
        "GET",
        "https://h.example/k",
        {},
        content_sha256="UNSIGNED-PAYLOAD",
        credentials=Credentials("AKIDEXAMPLE", "secret"),
        region="us-west-2",
        service=service,
    )
    assert f"/us-west-2/{service}/aws4_request" in headers["Authorization"]


def test_settings_refuse_bad_values() -> None:
    with pytest.raises(InvalidArgument, match="12-digit"):
        S3Settings(expected_bucket_owner="abc")
    with pytest.raises(InvalidArgument, match="upload checksums"):
        S3Settings(upload_checksums="md5")
