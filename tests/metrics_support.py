"""Scraping a process's metrics endpoint on its unix socket (every test process serves one there, not on
the default TCP port), and reading one sample of what it answered."""

from __future__ import annotations

import asyncio

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


def scrape(socket_path: str) -> Samples:
    return asyncio.run(scrape_async(socket_path))


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` (0 when absent: a labelled counter not yet used)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
