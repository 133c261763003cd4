"""A directory of several listing pages read through a real mount: every name exactly once, also when
the read is split, interleaved with another, or resumed at an earlier offset (telldir/seekdir) after
the kernel dropped its caches and the mount's metadata expired."""

from __future__ import annotations

import ctypes
import os
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.integration.fs_helpers import RecordingProxy, mounted

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

# Three ListObjectsV2 pages of 1000 keys: the listing is streamed across page boundaries.
COUNT = 2600
NAMES = sorted([f"f{i:05d}" for i in range(COUNT - 2)] + ["f00100.txt", "f00100-copy"])
# An object and a prefix of the same name on different pages: the directory wins, shown once.
NESTED = ["f02000/inside"]


@pytest.fixture(scope="module")
def many(s3: Any) -> str:
    # One bucket for the module: every test here only reads it, and its 2,600 objects take a while to put.
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), [f"many/{n}" for n in NAMES]
            )
        )
    s3.put_object(Bucket=bucket, Key="many/" + NESTED[0], Body=b"nested")
    return bucket


def drop_kernel_caches() -> None:
    # Unused dentries and inodes: the kernel sends FORGET for what it held of the listing.
    Path("/proc/sys/vm/drop_caches").write_text("2\n")


class Dirent(ctypes.Structure):
    _fields_ = [
        ("d_ino", ctypes.c_uint64),
        ("d_off", ctypes.c_int64),
        ("d_reclen", ctypes.c_ushort),
        ("d_type", ctypes.c_ubyte),
        ("d_name", ctypes.c_char * 256),
    ]


class Directory:
    """opendir/readdir/telldir/seekdir of glibc, as a C program (or Python's os.scandir) calls them."""

    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    libc.closedir.argtypes = [ctypes.c_void_p]

    def __init__(self, path: Path) -> None:
        handle = self.libc.opendir(os.fsencode(path))
        if not handle:
            raise OSError(ctypes.get_errno(), f"opendir {path}")
        self.handle = handle

    def names(self, limit: int | None = None) -> Iterator[str]:
        read = 0
        while limit is None or read < limit:
            ctypes.set_errno(0)
            entry = self.libc.readdir(self.handle)
            if not entry:
                if ctypes.get_errno():
                    raise OSError(ctypes.get_errno(), "readdir")
                return
            name = entry.contents.d_name.decode()
            if name not in (".", ".."):
                read += 1
                yield name

    def tell(self) -> int:
        return int(self.libc.telldir(self.handle))

    def seek(self, position: int) -> None:
        self.libc.seekdir(self.handle, position)

    def close(self) -> None:
        self.libc.closedir(self.handle)


def expected() -> list[str]:
    return sorted({*NAMES, NESTED[0].split("/")[0]})


def test_a_directory_of_several_pages_lists_every_name_once(
    s3_server: EmbeddedS3Server, many: str, proxy: RecordingProxy
) -> None:
    with mounted(s3_server, many, "--endpoint-url", proxy.endpoint_url) as fs:
        directory = fs.path / "many"
        assert directory.is_dir()
        proxy.reset()
        with os.scandir(directory) as entries:
            listed = [(entry.name, entry.is_dir()) for entry in entries]
        names = [name for name, _ in listed]
        assert sorted(names) == expected() and len(names) == len(set(names))
        assert [name for name, is_dir in listed if is_dir] == ["f02000"]
        lists = [target for method, target, _ in proxy.heads() if "list-type=2" in target]
        assert len(lists) == 3, lists  # page by page, each asked for once
        ls = subprocess.run(["ls", "-f", str(directory)], capture_output=True, text=True, check=True)
        assert sorted(set(ls.stdout.split()) - {".", ".."}) == expected()
        assert sorted(os.listdir(directory)) == expected()


def test_reads_split_interleaved_and_resumed_at_earlier_offsets_miss_and_repeat_nothing(
    s3_server: EmbeddedS3Server, many: str
) -> None:
    # Metadata trusted for no time at all: every resumed read finds the listing cache expired.
    with mounted(s3_server, many, "--metadata-ttl", "0") as fs:
        directory = fs.path / "many"
        # Two listings of one directory, each partially consumed in turn.
        with os.scandir(directory) as one, os.scandir(directory) as two:
            first, second = [], []
            while True:
                got_one = [entry.name for _, entry in zip(range(700), one, strict=False)]
                got_two = [entry.name for _, entry in zip(range(300), two, strict=False)]
                first += got_one
                second += got_two
                if not got_one and not got_two:
                    break
        assert sorted(first) == expected() and len(first) == len(expected())
        assert second == first  # one order for every read of the directory

        handle = Directory(directory)
        try:
            head = list(handle.names(1234))
            position = handle.tell()
            tail = list(handle.names())
            assert sorted(head + tail) == expected() and len(head + tail) == len(expected())
            drop_kernel_caches()
            handle.seek(position)
            assert list(handle.names()) == tail
            handle.seek(0)
            again = list(handle.names())
            assert again == head + tail
        finally:
            handle.close()


def test_entries_the_kernel_forgot_are_asked_of_s3_again(
    s3_server: EmbeddedS3Server, many: str, proxy: RecordingProxy
) -> None:
    with mounted(s3_server, many, "--endpoint-url", proxy.endpoint_url, "--metadata-ttl", "300") as fs:
        directory = fs.path / "many"
        assert sorted(os.listdir(directory)) == expected()
        # A listed entry is held by the kernel for a second only, until a lookup reads its stored
        # attributes (a GET of the small object); from then on for --metadata-ttl.
        assert (directory / "f00008").stat().st_size == 1
        proxy.reset()
        assert (directory / "f00008").stat().st_size == 1
        assert proxy.heads() == []  # the kernel holds the entry
        drop_kernel_caches()
        proxy.reset()
        assert (directory / "f00008").stat().st_size == 1
        # Within the metadata TTL, yet asked of S3: the mount let go of what the kernel forgot.
        assert proxy.heads() != []


def test_entries_the_kernel_forgot_while_the_directory_was_read_are_asked_of_s3_again(
    s3_server: EmbeddedS3Server, many: str, proxy: RecordingProxy
) -> None:
    with mounted(s3_server, many, "--endpoint-url", proxy.endpoint_url, "--metadata-ttl", "300") as fs:
        directory = fs.path / "many"
        handle = Directory(directory)
        try:
            head = list(handle.names(20))  # from the first of three listing pages
            drop_kernel_caches()  # the kernel forgets them before the listing is complete
            tail = list(handle.names())
        finally:
            handle.close()
        assert sorted(head + tail) == expected()
        proxy.reset()
        # The complete listing does not answer "no such entry" for a name it listed, now that the mount
        # has let go of it: S3 is asked, and has it.
        assert "f00008" in head
        assert (directory / "f00008").stat().st_size == 1
        assert proxy.heads() != []
