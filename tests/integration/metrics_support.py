"""Scraping a Prometheus endpoint on a unix socket, and reading its samples, for the metrics tests."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def scrape(socket_path: Path) -> Samples:
    """GET /metrics over the unix socket, as ``curl --unix-socket`` would. Reached through a descriptor of its
    directory: a test's temporary directories make paths longer than a socket address may be (108 bytes)."""
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
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, volume_id: str, **labels: str) -> float:
    """The sample ``name`` of ``volume_id`` with exactly ``labels`` besides (0 when absent: not seen yet)."""
    wanted = {"volume_id": volume_id, **labels}
    for (found, found_labels), sample_value in samples.items():
        if found == name and dict(found_labels) == wanted:
            return sample_value
    return 0.0


def delta(before: Samples, after: Samples, name: str, volume_id: str, **labels: str) -> float:
    return value(after, name, volume_id, **labels) - value(before, name, volume_id, **labels)
