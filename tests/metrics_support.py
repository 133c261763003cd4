"""Scraping a process's metrics endpoint on its unix socket (every test process serves one there, not on
the default TCP port), and reading one sample of what it answered."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def get_async(socket_path: str, path: str = "/metrics") -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket_path)) as http,
        http.get(f"http://localhost{path}") as response,
    ):
        return response.status, await response.text()


def get(socket_path: str, path: str = "/metrics") -> tuple[int, str]:
    return asyncio.run(get_async(socket_path, path))


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape_async(socket_path: str) -> Samples:
    status, text = await get_async(socket_path)
    assert status == 200, text
    return parse(text)


def scrape(socket_path: str | Path) -> Samples:
    """GET /metrics over the unix socket, as ``curl --unix-socket`` would. Reached through a descriptor of its
    directory: a test's temporary directories make paths longer than a socket address may be (108 bytes)."""
    socket_path = Path(socket_path)
    directory = os.open(socket_path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(f"/proc/self/fd/{directory}/{socket_path.name}")
            conn.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    finally:
        os.close(directory)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].endswith(b" 200 OK"), head
    return parse(body.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` (0 when absent: a labelled counter not yet used)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
