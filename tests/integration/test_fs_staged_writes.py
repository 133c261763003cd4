"""``--staged-writes`` end to end: appends, writes at any offset, truncation, read-write opens and sqlite,
run by a workload uid through a real FUSE mount of the real (moto) S3 server. Every scenario is also run
on a local file, and the object S3 ends up with must be that file, byte for byte."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import WORKLOAD_UID, run_as
from tests.integration.fs_helpers import (
    MountedFs,
    RecordingProxy,
    mounted,
    run_mount_command,
    world_readable_dir,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

MiB = 1024 * 1024
OWNER = ["--uid", str(WORKLOAD_UID), "--gid", str(WORKLOAD_UID), "--allow-other"]
WRITES = ["--allow-overwrite", "--allow-delete"]


def body(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@contextlib.contextmanager
def cache_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="s3csi-staging-test-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_mount(
    server: EmbeddedS3Server, bucket: str, *flags: str, env: dict[str, str] | None = None
) -> Iterator[MountedFs]:
    with (
        cache_dir() as cache,
        mounted(server, bucket, *OWNER, "--cache", str(cache), "--staged-writes", *flags, env=env) as fs,
    ):
        yield fs


def sh(script: str, path: Path) -> subprocess.CompletedProcess[bytes]:
    """``script`` run by ``sh`` as the workload uid, with the file as $1."""
    return run_as(WORKLOAD_UID, WORKLOAD_UID, ["sh", "-c", script, "sh", str(path)])


def py(script: str, path: Path) -> subprocess.CompletedProcess[bytes]:
    """A Python ``script`` run as the workload uid, with the file as sys.argv[1]."""
    return run_as(WORKLOAD_UID, WORKLOAD_UID, [sys.executable, "-c", script, str(path)])


def on_both(
    run: Any, script: str, fs: MountedFs, name: str, seed: bytes | None
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """``script`` on the mount's ``name`` and on a local file seeded alike; both must succeed the same
    way. Returns the mount's result and the local file's final bytes."""
    local_dir = world_readable_dir("s3csi-local-")
    try:
        os.chown(local_dir, WORKLOAD_UID, WORKLOAD_UID)
        local = local_dir / name
        if seed is not None:
            local.write_bytes(seed)
            os.chown(local, WORKLOAD_UID, WORKLOAD_UID)
        expected = run(script, local)
        assert expected.returncode == 0, expected.stderr.decode()
        result = run(script, fs.path / name)
        assert result.returncode == 0, result.stderr.decode() + fs.log()
        assert result.stdout == expected.stdout
        return result, local.read_bytes()
    finally:
        shutil.rmtree(local_dir)


# --- append, read-write opens, writes at an offset ----------------------------------------------------------


@pytest.mark.parametrize("seed", [b"hello\n", None], ids=["existing", "new"])
def test_append_with_the_shell(s3_server: EmbeddedS3Server, s3: Any, bucket: str, seed: bytes | None) -> None:
    if seed is not None:
        s3.put_object(Bucket=bucket, Key="log.txt", Body=seed)
    with staged_mount(s3_server, bucket, *WRITES) as fs:
        _, expected = on_both(
            sh, 'echo one >> "$1"; printf two >> "$1"; echo three >> "$1"', fs, "log.txt", seed
        )
        assert body(s3, bucket, "log.txt") == expected
        assert (fs.path / "log.txt").read_bytes() == expected


def test_a_staged_upload_keeps_the_files_mode_and_other_tools_metadata(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    # The upload replaces the object: a file narrowed with chmod must stay narrow after an append, another
    # tool's metadata must survive, and the times become the upload's unless set after the write.
    s3.put_object(
        Bucket=bucket, Key="id.txt", Body=b"one\n", Metadata={"mode": str(0o100600), "owner-tool": "x"}
    )
    s3.put_object(Bucket=bucket, Key="dated.txt", Body=b"one\n", Metadata={"mtime": "1000000000"})
    with staged_mount(s3_server, bucket, *WRITES) as fs:
        result = sh('echo two >> "$1"; stat -c %a "$1"', fs.path / "id.txt")
        assert result.returncode == 0 and result.stdout == b"600\n", result.stderr.decode() + fs.log()
        result = sh('echo two >> "$1"; stat -c %Y "$1"; touch -d @1500000000 "$1"', fs.path / "dated.txt")
        assert result.returncode == 0, result.stderr.decode() + fs.log()
        assert int(result.stdout) > 1_600_000_000  # the append's time, not the stored one
    head = s3.head_object(Bucket=bucket, Key="id.txt")
    assert body(s3, bucket, "id.txt") == b"one\ntwo\n"
    assert head["Metadata"]["mode"] == str(0o100600) and head["Metadata"]["owner-tool"] == "x"
    assert s3.head_object(Bucket=bucket, Key="dated.txt")["Metadata"]["mtime"].startswith("1500000000")


def test_append_goes_to_the_objects_end_when_the_kernel_knew_an_older_size(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="grown.txt", Body=b"short\n")
    with staged_mount(s3_server, bucket, *WRITES, "--metadata-ttl", "300") as fs:
        assert (fs.path / "grown.txt").stat().st_size == 6  # the kernel keeps this size for 300 s
        s3.put_object(Bucket=bucket, Key="grown.txt", Body=b"another client made it longer\n")
        assert sh('echo appended >> "$1"', fs.path / "grown.txt").returncode == 0
        assert body(s3, bucket, "grown.txt") == b"another client made it longer\nappended\n"
        assert (fs.path / "grown.txt").read_bytes() == b"another client made it longer\nappended\n"


RW_SCRIPT = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print(os.pread(fd, 5, 0))
os.pwrite(fd, b"XY", 3)
print(os.pread(fd, 8, 0))
size = os.fstat(fd).st_size
os.pwrite(fd, b"tail", size + 5)          # past the end: a hole of zeros
os.lseek(fd, 1, os.SEEK_SET)
os.write(fd, b"-")
print(os.fstat(fd).st_size, os.pread(fd, 100, 0))
os.close(fd)
with open(sys.argv[1], "r+b") as f:       # Python's read-write mode
    f.seek(0, 2)
    f.write(b"!")
    f.seek(0)
    print(f.read())
"""


def test_read_write_open_with_pread_and_pwrite(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    seed = b"0123456789abcdef"
    s3.put_object(Bucket=bucket, Key="rw.bin", Body=seed)
    with staged_mount(s3_server, bucket, *WRITES) as fs:
        _, expected = on_both(py, RW_SCRIPT, fs, "rw.bin", seed)
        assert body(s3, bucket, "rw.bin") == expected


# A shared writable map: the kernel writes its dirty pages back as writes at their offsets, msync is an
# fsync. Run in a process of its own: CPython's mmap.flush() holds the interpreter lock through msync(2),
# so a proxy thread in the same process could not forward the upload that msync waits for.
MMAP_SCRIPT = """
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
if os.fstat(fd).st_size < 8192:
    os.ftruncate(fd, 8192)
with mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mapped:
    mapped[100:105] = b"first"
    mapped.flush()
    mapped[5000:5006] = b"second"
    mapped.flush()
    print(bytes(mapped[96:110]))
os.close(fd)
with open(sys.argv[1], "rb") as again:
    print(again.read()[4996:5010])
"""


def test_shared_writable_mmap_and_msync(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    """Through a proxy, as the request counts are measured: msync uploads, close leaves it stored."""
    s3.put_object(Bucket=bucket, Key="map.bin", Body=b"m" * 9000)
    with staged_mount(s3_server, bucket, *WRITES, "--endpoint-url", proxy.endpoint_url) as fs:
        for name, seed in (("map.bin", b"m" * 9000), ("new.bin", None)):
            _, expected = on_both(py, MMAP_SCRIPT, fs, name, seed)
            assert body(s3, bucket, name) == expected
    assert any(method == "PUT" for method, _, _ in proxy.heads())


def test_dd_at_an_offset_of_a_multipart_object(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    """12 MiB in 5 MiB parts: the download is several ranged GETs, the upload a multipart upload."""
    seed = os.urandom(12 * MiB + 7)
    s3.put_object(Bucket=bucket, Key="disk.img", Body=seed)
    script = (
        'printf PATCH | dd of="$1" bs=1 seek=1000 conv=notrunc status=none'
        ' && printf END | dd of="$1" bs=4096 seek=3100 conv=notrunc status=none'
    )
    with staged_mount(s3_server, bucket, *WRITES, "--write-part-size", str(5 * MiB)) as fs:
        _, expected = on_both(sh, script, fs, "disk.img", seed)
        assert len(expected) == 3100 * 4096 + 3  # past the old end
        assert body(s3, bucket, "disk.img") == expected


def test_readers_see_the_staged_bytes_and_writers_share_the_copy(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=b"aaaa")
    with staged_mount(s3_server, bucket, *WRITES, "--allow-rename") as fs:
        path = fs.path / "shared.txt"
        first = os.open(path, os.O_RDWR)
        second = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.pwrite(first, b"B", 1)
            os.write(second, b"cc")
            assert path.read_bytes() == b"aBaacc"  # a reader of the same mount sees the staged copy
            # Decision (docs/filesystem.md): a file with a staged copy open is not renamed or deleted.
            with pytest.raises(OSError) as renamed:
                path.rename(fs.path / "moved.txt")
            assert renamed.value.errno == errno.EBUSY
            with pytest.raises(OSError) as deleted:
                path.unlink()
            assert deleted.value.errno == errno.EBUSY
            os.close(second)  # each close uploads the changes so far: durable when it returns
            assert body(s3, bucket, "shared.txt") == b"aBaacc"
            os.pwrite(first, b"D", 3)
        finally:
            os.close(first)
        assert body(s3, bucket, "shared.txt") == b"aBaDcc"
        assert keys(s3, bucket) == ["shared.txt"]


HEADER_AFTER_BODY = """
import sys
with open(sys.argv[1], "wb") as f:     # write-only and truncating: the fast path, until it seeks back
    f.write(b"\\0" * 16)
    f.write(b"body " * 1000)
    f.seek(0)
    f.write(b"HEADER: 5000 B")          # like a zip or tar writer filling in a header afterwards
"""


@pytest.mark.parametrize(
    ("run", "script"),
    [
        (sh, 'printf X | dd of="$1" bs=1 seek=100 conv=notrunc status=none'),
        (sh, 'printf X | dd of="$1" bs=1 seek=50 status=none'),  # O_TRUNC, then ftruncate to the offset
        (py, HEADER_AFTER_BODY),
    ],
    ids=["dd-seek-notrunc", "dd-seek", "header-after-body"],
)
def test_a_new_file_written_out_of_order_moves_to_a_copy(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, run: Any, script: str
) -> None:
    with staged_mount(s3_server, bucket) as fs:
        _, expected = on_both(run, script, fs, "new.bin", None)
        assert body(s3, bucket, "new.bin") == expected
    with mounted(s3_server, bucket, *OWNER) as fs:  # without --staged-writes: as before
        assert run(script, fs.path / "other.bin").returncode != 0


# --- truncate ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        'truncate -s 100 "$1"',
        'truncate -s 300000 "$1"',
        'truncate -s 0 "$1"',
        'truncate -s 50 "$1" && truncate -s 70 "$1" && echo more >> "$1"',
    ],
    ids=["down", "up", "empty", "down-up-append"],
)
def test_truncate_with_the_tool(s3_server: EmbeddedS3Server, s3: Any, bucket: str, script: str) -> None:
    seed = os.urandom(200_000)
    s3.put_object(Bucket=bucket, Key="t.bin", Body=seed)
    with staged_mount(s3_server, bucket, *WRITES) as fs:
        _, expected = on_both(sh, script, fs, "t.bin", seed)
        assert body(s3, bucket, "t.bin") == expected
        assert (fs.path / "t.bin").stat().st_size == len(expected)


TRUNCATE_SCRIPT = """
import os, sys
os.truncate(sys.argv[1], 10)          # truncate(2) of a closed file: no descriptor, no close
print(os.stat(sys.argv[1]).st_size)
os.truncate(sys.argv[1], 20)
fd = os.open(sys.argv[1], os.O_RDWR)
os.ftruncate(fd, 15)
os.write(fd, b"head")
os.close(fd)
print(open(sys.argv[1], "rb").read())
"""


def test_truncate_and_ftruncate_calls(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    seed = b"0123456789" * 5
    s3.put_object(Bucket=bucket, Key="calls.bin", Body=seed)
    with staged_mount(s3_server, bucket, *WRITES) as fs:
        _, expected = on_both(py, TRUNCATE_SCRIPT, fs, "calls.bin", seed)
        assert body(s3, bucket, "calls.bin") == expected


# --- sqlite -----------------------------------------------------------------------------------------------

SQLITE_SCRIPT = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("create table t (id integer primary key, name text, data blob)")
with con:
    con.executemany(
        "insert into t (name, data) values (?, ?)",
        [(f"row {i}", bytes([i % 256]) * (i * 37 % 3000)) for i in range(500)],
    )
with con:
    con.execute("update t set name = 'changed' where id % 7 = 0")
with con:
    con.execute("delete from t where id % 11 = 0")
print(con.execute("select count(*), sum(length(data)) from t").fetchone())
con.close()
con = sqlite3.connect(sys.argv[1])
print(con.execute("select name from t where id = 14").fetchone())
print(con.execute("pragma integrity_check").fetchone())
con.close()
"""

SQLITE_CLI_SCRIPT = """
sqlite3 "$1" "create table kv (k text primary key, v text);"
for i in 1 2 3 4 5; do sqlite3 "$1" "insert into kv values ('key$i', printf('%.*c', $i * 300, 'v'));"; done
sqlite3 "$1" "update kv set v = 'short' where k = 'key2'; delete from kv where k = 'key4';"
sqlite3 "$1" "select k, length(v) from kv order by k;"
sqlite3 "$1" "pragma integrity_check;"
"""


def test_sqlite_with_pythons_module(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    with staged_mount(s3_server, bucket, *WRITES) as fs:
        result, expected = on_both(py, SQLITE_SCRIPT, fs, "app.db", None)
        assert result.stdout.decode().splitlines()[1:] == ["('changed',)", "('ok',)"]
        assert body(s3, bucket, "app.db") == expected
        assert keys(s3, bucket) == ["app.db"]  # each transaction's journal was created, stored and deleted


def test_sqlite_with_the_cli(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    assert shutil.which("sqlite3"), "the sqlite3 command is missing: `make system` installs it"
    with staged_mount(s3_server, bucket, *WRITES) as fs:
        result, expected = on_both(sh, SQLITE_CLI_SCRIPT, fs, "kv.db", None)
        assert result.stdout.decode().split() == ["key1|300", "key2|5", "key3|900", "key5|1500", "ok"]
        assert body(s3, bucket, "kv.db") == expected
        assert keys(s3, bucket) == ["kv.db"]


# --- the size limit, the flags off, and where the copies live ---------------------------------------------


def test_the_size_limit_is_efbig(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    big, near = os.urandom(2 * MiB), os.urandom(MiB - 10)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=big)
    s3.put_object(Bucket=bucket, Key="near.bin", Body=near)
    with staged_mount(s3_server, bucket, *WRITES, "--max-staged-file-size", "1") as fs:
        appended = sh('echo more >> "$1"', fs.path / "big.bin")
        assert appended.returncode != 0 and b"File too large" in appended.stderr
        grown = sh('truncate -s 2M "$1"', fs.path / "near.bin")
        assert grown.returncode != 0 and b"File too large" in grown.stderr
        with pytest.raises(OSError) as truncated:
            os.truncate(fs.path / "near.bin", 2 * MiB)
        assert truncated.value.errno == errno.EFBIG
        fd = os.open(fs.path / "near.bin", os.O_WRONLY | os.O_APPEND)
        try:
            assert os.write(fd, b"12345") == 5  # up to the limit: fine
            written = 0
            with pytest.raises(OSError) as crossed:
                for _ in range(3):
                    # Would end past 1 MiB: the kernel writes page by page, so the bytes before the limit
                    # may go in first (a short write) and the next write fails.
                    written += os.write(fd, b"x" * 20)
            assert crossed.value.errno == errno.EFBIG
            assert len(near) + 5 + written <= MiB
        finally:
            os.close(fd)
        fd = os.open(fs.path / "new.bin", os.O_RDWR | os.O_CREAT)
        try:
            os.pwrite(fd, b"x", MiB - 1)
            with pytest.raises(OSError) as past:
                os.pwrite(fd, b"x", MiB)
            assert past.value.errno == errno.EFBIG
        finally:
            os.close(fd)
    assert body(s3, bucket, "big.bin") == big
    assert body(s3, bucket, "near.bin") == near + b"12345" + b"x" * written
    assert body(s3, bucket, "new.bin") == bytes(MiB - 1) + b"x"


def test_without_the_flags_changes_stay_eperm(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="f.txt", Body=b"kept\n")
    refused = [
        'echo more >> "$1"',
        'truncate -s 1 "$1"',
        'printf X | dd of="$1" bs=1 seek=2 conv=notrunc status=none',
    ]
    with cache_dir() as cache, mounted(s3_server, bucket, *OWNER, *WRITES, "--cache", str(cache)) as fs:
        for script in refused:
            result = sh(script, fs.path / "f.txt")
            assert result.returncode != 0 and b"Operation not permitted" in result.stderr, script
        with pytest.raises(OSError) as read_write:
            os.open(fs.path / "f.txt", os.O_RDWR)
        assert read_write.value.errno == errno.EPERM
        with pytest.raises(OSError) as truncated:
            os.truncate(fs.path / "f.txt", 1)
        assert truncated.value.errno == errno.EPERM
        assert body(s3, bucket, "f.txt") == b"kept\n"
        assert sh('echo new > "$1"', fs.path / "f.txt").returncode == 0  # the fast path is still there
        assert body(s3, bucket, "f.txt") == b"new\n"
        assert "needs --staged-writes" in fs.log()
    # Staged writes change existing objects only with --allow-overwrite, like any replacement.
    with staged_mount(s3_server, bucket) as fs:
        result = sh('echo more >> "$1"', fs.path / "f.txt")
        assert result.returncode != 0 and b"Operation not permitted" in result.stderr
        assert "needs --allow-overwrite" in fs.log()
        assert sh('echo one >> "$1"; echo two >> "$1"', fs.path / "fresh.txt").returncode != 0
        assert body(s3, bucket, "fresh.txt") == b"one\n"  # a new file: its second append changes it
    assert body(s3, bucket, "f.txt") == b"new\n"


def test_staged_writes_without_cache_is_refused_in_one_line(s3_server: EmbeddedS3Server, bucket: str) -> None:
    mountpoint = world_readable_dir("s3csi-fs-")
    try:
        result = run_mount_command(s3_server, bucket, str(mountpoint), "--staged-writes")
    finally:
        mountpoint.rmdir()
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--staged-writes" in result.stderr and "--cache" in result.stderr


def test_copies_are_private_and_gone_after_unmount(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"secret")
    with cache_dir() as cache:
        cache.chmod(0o755)  # the cache volume: others may enter it, but not the staging directory
        with mounted(s3_server, bucket, *OWNER, *WRITES, "--cache", str(cache), "--staged-writes") as fs:
            fd = os.open(fs.path / "secret.txt", os.O_RDWR)
            try:
                os.pwrite(fd, b"S", 0)
                (staging,) = cache.glob("s3csi-staging-*")
                info = staging.stat()
                assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
                assert list(staging.iterdir()) == []  # the copy is an unlinked file: only its descriptor
                other = run_as(WORKLOAD_UID + 1, WORKLOAD_UID + 1, ["ls", str(staging)])
                assert other.returncode != 0 and b"Permission denied" in other.stderr
            finally:
                os.close(fd)
            assert body(s3, bucket, "secret.txt") == b"Secret"
        assert list(cache.iterdir()) == [], "the staging directory outlived the mount"


# --- an upload that fails -----------------------------------------------------------------------------------


class SwitchableProxy:
    """A TCP forwarder to the S3 server that can be made to refuse: while ``refusing``, every connection
    (open ones included) is closed without an answer, as a server that went away would."""

    def __init__(self, upstream_url: str) -> None:
        host, port = upstream_url.removeprefix("http://").rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._refusing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def refuse(self, refusing: bool) -> None:
        with self._lock:
            self._refusing = refusing
            if refusing:
                for connection in self._open:
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
                self._open.clear()

    def close(self) -> None:
        self._listener.close()
        self.refuse(True)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._refusing:
                    client.close()
                    continue
                upstream = socket.create_connection(self._upstream)
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 20):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


def test_a_failed_upload_fails_fsync_and_close(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    """fsync and close return only once S3 has the file, or fail: the copy is kept after a failed fsync,
    and the next fsync stores it; a failed close is reported, and S3 keeps what it had."""
    seed = b"0123456789"
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=seed)
    proxy = SwitchableProxy(s3_server.endpoint_url)
    try:
        with staged_mount(s3_server, bucket, *WRITES, env={"AWS_ENDPOINT_URL": proxy.endpoint_url}) as fs:
            fd = os.open(fs.path / "doc.txt", os.O_RDWR)
            closed = False
            try:
                os.pwrite(fd, b"A", 0)
                os.fsync(fd)
                assert body(s3, bucket, "doc.txt") == b"A123456789"
                os.pwrite(fd, b"B", 20)
                proxy.refuse(True)
                with pytest.raises(OSError) as fsync_failed:
                    os.fsync(fd)
                assert fsync_failed.value.errno == errno.EIO
                assert body(s3, bucket, "doc.txt") == b"A123456789"
                proxy.refuse(False)
                os.fsync(fd)  # the copy was kept: this fsync stores it
                stored = b"A123456789" + bytes(10) + b"B"
                assert body(s3, bucket, "doc.txt") == stored
                os.pwrite(fd, b"C", 1)
                proxy.refuse(True)
                closed = True
                with pytest.raises(OSError) as close_failed:
                    os.close(fd)
                assert close_failed.value.errno == errno.EIO
            finally:
                if not closed:
                    os.close(fd)
            proxy.refuse(False)
            assert body(s3, bucket, "doc.txt") == stored
            assert (fs.path / "doc.txt").read_bytes() == stored  # the mount asks S3 again
        assert f"upload of s3://{bucket}/doc.txt failed: its changes are not stored" in fs.final_log
        assert "closed with changes that are not stored" in fs.final_log
    finally:
        proxy.close()


def test_unmount_with_unstored_changes_exits_loudly(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="open.txt", Body=b"before")
    with staged_mount(s3_server, bucket, *WRITES) as fs:
        fd = os.open(fs.path / "open.txt", os.O_RDWR)
        try:
            os.pwrite(fd, b"after!", 0)
            fs.process.send_signal(signal.SIGTERM)
            status = fs.process.wait(timeout=60)
        finally:
            try:
                os.close(fd)
            except OSError as exc:
                assert exc.errno in (errno.ENOTCONN, errno.EIO, errno.ECONNABORTED)
        assert status == 1
    assert f"unmounted while s3://{bucket}/open.txt was still open for writing" in fs.final_log
    assert body(s3, bucket, "open.txt") == b"before"


def test_a_crash_leaves_no_copy_on_disk(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"private")
    with cache_dir() as cache:
        with mounted(s3_server, bucket, *OWNER, *WRITES, "--cache", str(cache), "--staged-writes") as fs:
            writer = subprocess.Popen(
                [sys.executable, "-c", CRASH_WRITER, str(fs.path / "private.txt")],
                stdout=subprocess.PIPE,
                stdin=subprocess.PIPE,
            )
            try:
                assert writer.stdout is not None and writer.stdout.readline() == b"written\n"
                fs.process.send_signal(signal.SIGKILL)
                fs.process.wait(timeout=30)
            finally:
                writer.kill()
                writer.wait()
        (staging,) = cache.glob("s3csi-staging-*")
        assert list(staging.iterdir()) == []  # the copy died with its descriptor
        assert stat.S_IMODE(staging.stat().st_mode) == 0o700
    assert body(s3, bucket, "private.txt") == b"private"


CRASH_WRITER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b"PRIVATE, CHANGED", 0)
print("written", flush=True)
sys.stdin.read()
"""
