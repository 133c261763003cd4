"""Every flag of ``s3csi mount`` shown to have its effect on a real mount (the S3 server, the kernel, or
the bytes on the wire as a recording proxy saw them)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import WORKLOAD_UID, run_as
from tests.integration.fs_helpers import (
    RecordingProxy,
    is_mounted,
    mount_env,
    mounted,
    run_mount_command,
    unmount_and_remove,
    world_readable_dir,
)
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

MiB = 1024 * 1024


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def body(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


# ---- bucket and endpoint -------------------------------------------------------------------------


def test_prefix_mounts_a_sub_tree(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="team/a.txt", Body=b"a")
    s3.put_object(Bucket=bucket, Key="other/b.txt", Body=b"b")
    with mounted(s3_server, bucket, "--prefix", "team/") as fs:
        assert os.listdir(fs.path) == ["a.txt"]
        (fs.path / "new.txt").write_bytes(b"n")
    assert keys(s3, bucket) == ["other/b.txt", "team/a.txt", "team/new.txt"]


def test_endpoint_url_flag_beats_the_environment(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    dead = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    with mounted(s3_server, bucket, "--endpoint-url", s3_server.endpoint_url, env=dead) as fs:
        assert (fs.path / "k").read_bytes() == b"v"


def test_region_signs_for_that_region(
    s3_server: EmbeddedS3Server, bucket: str, proxy: RecordingProxy
) -> None:
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, "--region", "eu-west-3") as fs:
        os.listdir(fs.path)
    scopes = {
        h["authorization"].split("Credential=")[1].split(",")[0].split("/")[2] for _, _, h in proxy.heads()
    }
    assert scopes == {"eu-west-3"}


def test_no_sign_request_sends_anonymous_requests(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    s3.put_object(Bucket=bucket, Key="public", Body=b"p", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="private", Body=b"p")
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, "--no-sign-request") as fs:
        assert (fs.path / "public").read_bytes() == b"p"
        with pytest.raises(PermissionError):  # S3's AccessDenied reaches the reader as EACCES
            (fs.path / "private").read_bytes()
    heads = proxy.heads()
    assert heads and all("authorization" not in h for _, _, h in heads)


def test_user_agent_prefix_leads_the_user_agent(
    s3_server: EmbeddedS3Server, bucket: str, proxy: RecordingProxy
) -> None:
    with mounted(
        s3_server, bucket, "--endpoint-url", proxy.endpoint_url, "--user-agent-prefix", "team-x/1.0"
    ) as fs:
        os.listdir(fs.path)
    agents = {h["user-agent"] for _, _, h in proxy.heads()}
    assert agents and all(agent.startswith("team-x/1.0 s3csi/") for agent in agents)


@pytest.mark.parametrize(("flags", "path_style"), [(("--force-path-style",), True), ((), False)])
def test_force_path_style_puts_the_bucket_in_the_path(
    s3_server: EmbeddedS3Server,
    bucket: str,
    proxy: RecordingProxy,
    tmp_path: Path,
    *,
    flags: tuple[str, ...],
    path_style: bool,
) -> None:
    # A dotted endpoint name is needed for virtual-hosted addressing: give the mount its own /etc/hosts
    # in a private mount namespace, where s3.test and BUCKET.s3.test both lead to the recording proxy.
    port = proxy.endpoint_url.rsplit(":", 1)[1]
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost s3.test {bucket}.s3.test\n")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    script = (
        f"mount --bind {hosts} /etc/hosts && exec timeout -s TERM 5 {sys.executable} -m s3csi mount {bucket}"
        f" {mountpoint} --foreground --endpoint-url http://s3.test:{port} {' '.join(flags)}"
    )
    namespace = ["unshare", "--mount", "--propagation", "private"]
    subprocess.run(
        [*namespace, "sh", "-c", script],
        env=mount_env(s3_server),
        capture_output=True,
        check=False,
        timeout=60,
    )
    heads = proxy.heads()
    assert heads, "the mount sent no request"
    expected_host = f"s3.test:{port}" if path_style else f"{bucket}.s3.test:{port}"
    assert {headers["host"] for _, _, headers in heads} == {expected_host}
    assert all(target.startswith(f"/{bucket}") is path_style for _, target, _ in heads)


# ---- what may change -----------------------------------------------------------------------------


def test_read_only_refuses_every_change_with_erofs(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="f", Body=b"1")
    with mounted(s3_server, bucket, "--read-only") as fs:
        assert (fs.path / "f").read_bytes() == b"1"
        for change in (
            lambda: (fs.path / "new").write_bytes(b"x"),
            (fs.path / "dir").mkdir,
            (fs.path / "f").unlink,
            lambda: open(fs.path / "f", "wb").close(),
        ):
            with pytest.raises(OSError) as excinfo:
                change()
            assert excinfo.value.errno == errno.EROFS
        mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
        options = next(line for line in mountinfo if f" {fs.path} " in line).split()[5]
        assert "ro" in options.split(",")
    assert keys(s3, bucket) == ["f"]


def test_allow_delete_deletes_the_object(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="doomed", Body=b"1")
    with mounted(s3_server, bucket, "--allow-delete") as fs:
        (fs.path / "doomed").unlink()
        assert not (fs.path / "doomed").exists()
    assert keys(s3, bucket) == []


def test_allow_overwrite_replaces_with_o_trunc(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="f", Body=b"old contents")
    with mounted(s3_server, bucket, "--allow-overwrite") as fs:
        (fs.path / "f").write_bytes(b"new")
        with pytest.raises(OSError) as excinfo:
            open(fs.path / "f", "r+b").close()  # no O_TRUNC: S3 objects are not modified in place
        assert excinfo.value.errno == errno.EPERM
    assert body(s3, bucket, "f") == b"new"


def test_allow_rename_copies_then_deletes(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a/old", Body=b"payload")
    s3.put_object(Bucket=bucket, Key="d/x", Body=b"x")
    with mounted(s3_server, bucket, "--allow-rename") as fs:
        os.rename(fs.path / "a" / "old", fs.path / "b-new")
        assert (fs.path / "b-new").read_bytes() == b"payload"
        assert os.listdir(fs.path / "a") == []
        with pytest.raises(OSError) as excinfo:
            os.rename(fs.path / "d", fs.path / "e")
        assert excinfo.value.errno == errno.ENOTSUP
        (fs.path / "c").write_bytes(b"c")
        with pytest.raises(OSError) as excinfo:
            os.rename(fs.path / "c", fs.path / "b-new")  # replacing needs --allow-overwrite too
        assert excinfo.value.errno == errno.EPERM
    assert keys(s3, bucket) == ["b-new", "c", "d/x"]
    assert body(s3, bucket, "b-new") == b"payload"


# ---- who may access ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "other_allowed"), [((), False), (("--allow-other",), True), (("--allow-root",), False)]
)
def test_allow_other(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, flags: tuple[str, ...], other_allowed: bool
) -> None:
    s3.put_object(Bucket=bucket, Key="f", Body=b"1")
    with mounted(s3_server, bucket, *flags) as fs:
        result = run_as(WORKLOAD_UID, WORKLOAD_UID, ["cat", str(fs.path / "f")])
        assert (result.returncode == 0) is other_allowed, result.stderr
        assert (fs.path / "f").read_bytes() == b"1"  # root, the mounting user, is always let in


@pytest.mark.parametrize(
    ("flags", "dir_stat", "file_stat"),
    [
        ((), (0, 0, 0o755), (0, 0, 0o644)),
        (("--uid", "1234", "--gid", "5678"), (1234, 5678, 0o755), (1234, 5678, 0o644)),
        (("--dir-mode", "0700", "--file-mode", "0400"), (0, 0, 0o700), (0, 0, 0o400)),
        (("--dir-mode", "770", "--file-mode", "660", "--gid", "42"), (0, 42, 0o770), (0, 42, 0o660)),
    ],
    ids=["defaults", "uid-gid", "modes", "group-modes"],
)
def test_ownership_flags(
    s3_server: EmbeddedS3Server,
    *,
    s3: Any,
    bucket: str,
    flags: tuple[str, ...],
    dir_stat: tuple[int, int, int],
    file_stat: tuple[int, int, int],
) -> None:
    s3.put_object(Bucket=bucket, Key="d/f", Body=b"1")
    with mounted(s3_server, bucket, *flags) as fs:
        (fs.path / "new-dir").mkdir()
        for path, expected in [
            (fs.path, dir_stat),
            (fs.path / "d", dir_stat),
            (fs.path / "new-dir", dir_stat),
            (fs.path / "d" / "f", file_stat),
        ]:
            st = path.stat()
            assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == expected, path


# ---- process ---------------------------------------------------------------------------------------


def test_without_foreground_the_command_returns_once_mounted(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="f", Body=b"bg")
    path = world_readable_dir("s3csi-bg-")
    try:
        result = run_mount_command(s3_server, bucket, str(path))
        assert result.returncode == 0, result.stderr
        assert is_mounted(path)
        assert (path / "f").read_bytes() == b"bg"
    finally:
        unmount_and_remove(path)


def test_without_foreground_a_failure_is_reported_and_nothing_mounted(s3_server: EmbeddedS3Server) -> None:
    path = world_readable_dir("s3csi-bg-")
    try:
        result = run_mount_command(s3_server, "no-such-bucket-here", str(path))
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith("s3csi mount: error:")]
        assert len(errors) == 1 and "no-such-bucket-here" in errors[0] and "NoSuchBucket" in errors[0]
        assert "Traceback" not in result.stderr
        assert not is_mounted(path)
    finally:
        path.rmdir()


@pytest.mark.parametrize("auto_unmount", [True, False])
def test_auto_unmount_when_the_process_is_killed(
    s3_server: EmbeddedS3Server, bucket: str, auto_unmount: bool
) -> None:
    flags = ("--auto-unmount",) if auto_unmount else ()
    with mounted(s3_server, bucket, *flags) as fs:
        fs.process.send_signal(signal.SIGKILL)
        fs.process.wait(10)
        if auto_unmount:
            assert wait_until(lambda: not is_mounted(fs.path)), "still mounted after the process was killed"
        assert is_mounted(fs.path) is not auto_unmount
        if not auto_unmount:
            with pytest.raises(OSError) as excinfo:
                os.listdir(fs.path)
            assert excinfo.value.errno == errno.ENOTCONN


def test_debug_logs_at_debug_level(s3_server: EmbeddedS3Server, bucket: str) -> None:
    with mounted(s3_server, bucket, "--debug") as fs:
        os.listdir(fs.path)
    with mounted(s3_server, bucket) as quiet:
        os.listdir(quiet.path)
    assert " DEBUG " in fs.final_log
    assert " DEBUG " not in quiet.final_log
    assert " INFO " in quiet.final_log


def cached_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file() and not f.name.endswith(".tmp"))


# ---- caching -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "sees_new_size"),
    [(("--metadata-ttl", "indefinite"), False), (("--metadata-ttl", "0"), True)],
    ids=["indefinite", "zero"],
)
def test_metadata_ttl(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, flags: tuple[str, ...], sees_new_size: bool
) -> None:
    s3.put_object(Bucket=bucket, Key="f", Body=b"short")
    with mounted(s3_server, bucket, *flags) as fs:
        assert (fs.path / "f").stat().st_size == 5
        s3.put_object(Bucket=bucket, Key="f", Body=b"much longer now")
        assert ((fs.path / "f").stat().st_size == 15) is sees_new_size


@pytest.mark.parametrize(
    ("flags", "sees_new_file"),
    [(("--negative-metadata-ttl", "3600"), False), (("--negative-metadata-ttl", "0"), True)],
    ids=["hour", "zero"],
)
def test_negative_metadata_ttl(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, flags: tuple[str, ...], sees_new_file: bool
) -> None:
    with mounted(s3_server, bucket, *flags) as fs:
        assert not (fs.path / "later").exists()
        s3.put_object(Bucket=bucket, Key="later", Body=b"1")
        assert (fs.path / "later").exists() is sees_new_file


def test_cache_serves_a_second_read_from_disk(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    data = os.urandom(2 * MiB)
    s3.put_object(Bucket=bucket, Key="cached", Body=data)
    cache_dir = world_readable_dir("s3csi-cache-test-")
    try:
        flags = (
            "--endpoint-url",
            proxy.endpoint_url,
            "--cache",
            str(cache_dir),
            "--read-part-size",
            "524288",
        )
        with mounted(s3_server, bucket, *flags) as fs:
            assert (fs.path / "cached").read_bytes() == data
            # Parts are written to disk in the background.
            assert wait_until(lambda: cached_bytes(cache_dir) == len(data)), cached_bytes(cache_dir)
            first = [t for m, t, _ in proxy.heads() if m == "GET" and t.endswith("/cached")]
            assert len(first) == 4
            proxy.reset()
            assert (fs.path / "cached").read_bytes() == data
            assert [t for m, t, _ in proxy.heads() if m == "GET" and t.endswith("/cached")] == []
        assert list(cache_dir.iterdir()) == []  # the mount's cache is removed with it
    finally:
        cache_dir.rmdir()


def test_max_cache_size_bounds_the_cache(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    data = os.urandom(3 * MiB)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    cache_dir = world_readable_dir("s3csi-cache-test-")
    try:
        flags = ("--cache", str(cache_dir), "--max-cache-size", "1", "--read-part-size", "262144")
        with mounted(s3_server, bucket, *flags) as fs:
            assert (fs.path / "big").read_bytes() == data
            assert wait_until(lambda: cached_bytes(cache_dir) > 0), "nothing was cached"
            assert (fs.path / "big").read_bytes() == data  # evicting all the way
            assert 0 < cached_bytes(cache_dir) <= MiB
    finally:
        cache_dir.rmdir()


# ---- transfer sizes and concurrency ----------------------------------------------------------------


def test_read_part_size_sets_the_ranged_gets(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    s3.put_object(Bucket=bucket, Key="obj", Body=os.urandom(MiB))
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, "--read-part-size", "262144") as fs:
        assert len((fs.path / "obj").read_bytes()) == MiB
    ranges = sorted(h["range"] for m, t, h in proxy.heads() if m == "GET" and t.endswith("/obj"))
    assert ranges == [f"bytes={i * 262144}-{(i + 1) * 262144 - 1}" for i in range(4)]


@pytest.mark.parametrize(
    ("flags", "parts"),
    [
        (("--part-size", str(5 * MiB)), 3),
        (("--write-part-size", str(6 * MiB)), 2),
        (("--part-size", str(5 * MiB), "--write-part-size", str(12 * MiB)), 1),
    ],
    ids=["part-size", "write-part-size", "write-beats-part"],
)
def test_write_part_size_sets_the_multipart_parts(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, flags: tuple[str, ...], parts: int
) -> None:
    data = os.urandom(11 * MiB)
    with mounted(s3_server, bucket, *flags) as fs:
        (fs.path / "big").write_bytes(data)
    etag = s3.head_object(Bucket=bucket, Key="big")["ETag"].strip('"')
    # A multipart object's ETag ends in "-<number of parts>"; a single PutObject's has no dash.
    assert etag.endswith(f"-{parts}") if parts > 1 else "-" not in etag
    assert body(s3, bucket, "big") == data


@pytest.mark.parametrize(("threads", "peak"), [(1, (1, 1)), (3, (1, 3)), (16, (4, 16))])
def test_max_threads_bounds_concurrent_requests(
    s3_server: EmbeddedS3Server,
    *,
    s3: Any,
    bucket: str,
    proxy: RecordingProxy,
    threads: int,
    peak: tuple[int, int],
) -> None:
    s3.put_object(Bucket=bucket, Key="obj", Body=os.urandom(4 * MiB))
    flags = (
        "--endpoint-url",
        proxy.endpoint_url,
        "--max-threads",
        str(threads),
        "--read-part-size",
        "262144",
    )
    low, high = peak
    proxy.hold_answers_until(low)
    with mounted(s3_server, bucket, *flags) as fs:
        assert len((fs.path / "obj").read_bytes()) == 4 * MiB
    assert low <= proxy.peak_requests_in_flight <= high


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--storage-class", "STANDARD_IA"), {"StorageClass": "STANDARD_IA"}),
        (("--sse", "AES256"), {"ServerSideEncryption": "AES256"}),
        (
            ("--sse", "aws:kms", "--sse-kms-key-id", "arn:aws:kms:us-east-1:123456789012:key/test-key"),
            {
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/test-key",
            },
        ),
    ],
    ids=["storage-class", "sse-s3", "sse-kms"],
)
def test_new_objects_get_storage_class_and_encryption(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, flags: tuple[str, ...], expected: dict[str, str]
) -> None:
    with mounted(s3_server, bucket, *flags) as fs:
        (fs.path / "small").write_bytes(b"s")
        (fs.path / "large").write_bytes(
            os.urandom(9 * MiB)
        )  # multipart: the options go with CreateMultipartUpload
    for key in ("small", "large"):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert {name: head.get(name) for name in expected} == expected, key
