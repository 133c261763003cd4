"""An access point mounted end to end, with the flags that change every request, seen on the wire.

The mount runs in a private mount namespace whose /etc/hosts sends the access point's host name
(``NAME-ACCOUNT.s3.test``, as the S3 endpoint rules address an access point ARN on a custom endpoint) to a
recording proxy in front of the test S3 server. The server answers for that host as for a virtual-hosted
bucket of the same name, so a bucket ``NAME-ACCOUNT`` stands in for the access point: what is checked is
what s3csi sent (host, SigV4 scope, headers, checksums), and the bytes that reached the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.s3 import Credentials, S3Client, S3Settings, StaticCredentials
from s3csi.s3.checksums import crc32c_header
from tests.admission_support import CertificateAuthority
from tests.integration.fs_helpers import RecordingProxy, is_mounted, mount_env, run_mount_command
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

MiB = 1024 * 1024
ACCOUNT = "111122223333"
ACCESS_POINT = "myap"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+),")


def test_an_access_point_arn_with_owner_payer_and_checksums(
    s3_server: EmbeddedS3Server, s3: Any, proxy: RecordingProxy, tmp_path: Path
) -> None:
    stand_in = f"{ACCESS_POINT}-{ACCOUNT}"
    s3.create_bucket(Bucket=stand_in)
    arn = f"arn:aws:s3:{s3_server.region}:{ACCOUNT}:accesspoint/{ACCESS_POINT}"
    port = proxy.endpoint_url.rsplit(":", 1)[1]
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost s3.test {stand_in}.s3.test\n")
    big = tmp_path / "big"
    data = bytes(range(256)) * (6 * MiB // 256 + 7)  # two parts of 5 MiB and 1 MiB (and a bit)
    big.write_bytes(data)
    mountpoint, logs, out = tmp_path / "mnt", tmp_path / "logs", tmp_path / "out"
    for directory in (mountpoint, logs, out):
        directory.mkdir()
    flags = (
        f"--endpoint-url http://s3.test:{port} --requester-pays --expected-bucket-owner {ACCOUNT}"
        f" --upload-checksums crc32c --write-part-size {5 * MiB} --log-directory {logs} --log-metrics"
    )
    script = f"""set -e
mount --bind {hosts} /etc/hosts
trap 'umount -l {mountpoint} 2>/dev/null || true' EXIT
timeout 60 {sys.executable} -m s3csi mount {arn} {mountpoint} {flags}
cp {big} {mountpoint}/big
printf hello > {mountpoint}/small
cat {mountpoint}/small > {out}/small
ls {mountpoint} > {out}/ls
umount {mountpoint}
"""
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        env=mount_env(s3_server),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "small").read_text() == "hello"
    assert (out / "ls").read_text().split() == ["big", "small"]

    # What reached the server, through the access point's host.
    assert s3.get_object(Bucket=stand_in, Key="big")["Body"].read() == data
    small = s3.head_object(Bucket=stand_in, Key="small", ChecksumMode="ENABLED")
    assert small["ChecksumCRC32C"] == crc32c_header(b"hello")

    # What s3csi put on the wire: every request to the access point's host, signed for its region and s3,
    # with the payer and owner headers signed too.
    heads = proxy.heads()
    assert heads
    assert {headers["host"] for _, _, headers in heads} == {f"{stand_in}.s3.test:{port}"}
    for _, _, headers in heads:
        scope = _SCOPE.search(headers["authorization"])
        assert scope is not None
        region, service, signed = scope.groups()
        assert (region, service) == (s3_server.region, "s3")
        assert headers["x-amz-request-payer"] == "requester"
        assert headers["x-amz-expected-bucket-owner"] == ACCOUNT
        assert {"x-amz-request-payer", "x-amz-expected-bucket-owner"} <= set(signed.split(";"))
    # Each uploaded part and object carries its CRC32C; the completion lists the parts' checksums.
    sent = {
        target: headers.get("x-amz-checksum-crc32c") for method, target, headers in heads if method == "PUT"
    }
    assert sent["/small"] == crc32c_header(b"hello")
    parts = {target: value for target, value in sent.items() if target.startswith("/big?")}
    expected_parts = {crc32c_header(data[i : i + 5 * MiB]) for i in range(0, len(data), 5 * MiB)}
    assert set(parts.values()) == expected_parts
    completion = proxy.raw()
    assert all(f"<ChecksumCRC32C>{value}</ChecksumCRC32C>".encode() in completion for value in expected_parts)

    # --log-directory and --log-metrics: one new log file, ending with the summary written at unmount.
    def summary_logged() -> bool:
        return any("metrics: requests" in path.read_text() for path in logs.glob("s3csi-mount-*.log"))

    assert wait_until(summary_logged, within=30), [path.name for path in logs.iterdir()]
    (log_file,) = logs.glob("s3csi-mount-*.log")
    summary = log_file.read_text().rsplit("metrics: requests", 1)[1]
    assert "CompleteMultipartUpload=1" in summary and "UploadPart=2" in summary


def test_a_bucket_of_no_known_form_is_refused_naming_the_forms(
    s3_server: EmbeddedS3Server, tmp_path: Path
) -> None:
    # A Multi-Region Access Point (the other refused forms are in tests/unit/test_s3_endpoints.py).
    done = run_mount_command(
        s3_server, "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap", str(tmp_path)
    )
    assert done.returncode != 0
    assert "access point ARN (arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_copy_checks_the_sources_owner_too(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    s3.put_object(Bucket=bucket, Key="from", Body=b"x")
    settings = S3Settings(
        region=s3_server.region,
        endpoint_url=proxy.endpoint_url,
        expected_bucket_owner=ACCOUNT,
        requester_pays=True,
    )
    keys = StaticCredentials(Credentials(s3_server.access_key_id, s3_server.secret_access_key))

    async def copy() -> None:
        async with S3Client(settings, keys) as client:
            await client.copy_object(bucket, "from", "to")

    asyncio.run(copy())
    assert s3.get_object(Bucket=bucket, Key="to")["Body"].read() == b"x"
    (copy_headers,) = [headers for _, _, headers in proxy.heads() if "x-amz-copy-source" in headers]
    assert copy_headers["x-amz-source-expected-bucket-owner"] == ACCOUNT
    assert copy_headers["x-amz-expected-bucket-owner"] == ACCOUNT
    assert copy_headers["x-amz-request-payer"] == "requester"


class _TlsFront:
    """TLS in front of ``upstream`` (host, port) on 127.0.0.1, with a certificate for ``host_name`` signed
    by a throw-away CA: the Outposts endpoint rules always ask for https."""

    def __init__(self, upstream: tuple[str, int], host_name: str, directory: Path) -> None:
        authority = CertificateAuthority.create(directory)
        self.ca_bundle = authority.path
        certificate, key = directory / "cert.pem", directory / "key.pem"
        authority.issue(certificate, key, host_name)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificate, key)
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self._context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()
            return
        plain = socket.create_connection(self._upstream)
        threading.Thread(target=_pipe, args=(plain, secure), daemon=True).start()
        _pipe(secure, plain)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def test_an_outposts_access_point_arn_is_signed_for_s3_outposts(
    s3_server: EmbeddedS3Server, s3: Any, proxy: RecordingProxy, tmp_path: Path
) -> None:
    outpost, access_point = "op-01234567890123456", "outposts-ap"
    stand_in = f"{access_point}-{ACCOUNT}"
    s3.create_bucket(Bucket=stand_in)
    host_name = f"{stand_in}.{outpost}.s3.test"
    arn = f"arn:aws:s3-outposts:{s3_server.region}:{ACCOUNT}:outpost/{outpost}/accesspoint/{access_point}"
    upstream = proxy.endpoint_url.removeprefix("http://").split(":")
    front = _TlsFront((upstream[0], int(upstream[1])), host_name, tmp_path)
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost s3.test {host_name}\n")
    mountpoint, out = tmp_path / "mnt", tmp_path / "out"
    mountpoint.mkdir()
    out.mkdir()
    script = f"""set -e
mount --bind {hosts} /etc/hosts
trap 'umount -l {mountpoint} 2>/dev/null || true' EXIT
timeout 60 {sys.executable} -m s3csi mount {arn} {mountpoint} --endpoint-url https://s3.test:{front.port} \\
    --allow-delete
printf data > {mountpoint}/file
cat {mountpoint}/file > {out}/read
ls {mountpoint} > {out}/before
rm {mountpoint}/file
ls {mountpoint} > {out}/after
umount {mountpoint}
"""
    try:
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            env=mount_env(s3_server, {"AWS_CA_BUNDLE": str(front.ca_bundle)}),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        front.close()
    assert done.returncode == 0, done.stderr
    assert ((out / "read").read_text(), (out / "before").read_text().split()) == ("data", ["file"])
    assert (out / "after").read_text() == ""
    assert "Contents" not in s3.list_objects_v2(Bucket=stand_in)
    heads = proxy.heads()
    assert {"GET", "PUT", "DELETE"} <= {method for method, _, _ in heads}
    assert {headers["host"] for _, _, headers in heads} == {f"{host_name}:{front.port}"}
    scopes = {_SCOPE.search(headers["authorization"]).groups()[:2] for _, _, headers in heads}  # type: ignore[union-attr]
    assert scopes == {(s3_server.region, "s3-outposts")}


@pytest.mark.parametrize(
    ("flag", "message"), [("--dual-stack", "dual-stack"), ("--transfer-acceleration", "Accelerate")]
)
def test_endpoint_variants_the_rules_refuse_with_a_custom_endpoint_fail_the_mount(
    s3_server: EmbeddedS3Server, bucket: str, tmp_path: Path, flag: str, message: str
) -> None:
    done = run_mount_command(s3_server, bucket, str(tmp_path), flag)
    assert done.returncode != 0
    assert message in done.stderr and "custom endpoint" in done.stderr
    assert not is_mounted(tmp_path)
