"""The metrics endpoint served over real TCP and unix sockets, scraped with an HTTP client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from s3csi.errors import InvalidArgument
from s3csi.metrics.endpoint import MetricsAddress, new_registry, parse_address, serving


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":9810", MetricsAddress(host="", port=9810)),
        ("127.0.0.1:0", MetricsAddress(host="127.0.0.1", port=0)),
        ("[::1]:9810", MetricsAddress(host="::1", port=9810)),
        ("unix:/run/s3csi/metrics.sock", MetricsAddress(path="/run/s3csi/metrics.sock")),
    ],
)
def test_parse_address(text: str, expected: MetricsAddress) -> None:
    assert parse_address(text, "--metrics-address") == expected


@pytest.mark.parametrize("text", ["9810", "host:port", ":70000", "unix:relative.sock", ""])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument, match="--metrics-address"):
        parse_address(text, "--metrics-address")


def _scrape(body: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples}


def test_tcp_endpoint_serves_metrics_and_health() -> None:
    async def main() -> None:
        registry = new_registry()
        done = Counter("s3csi_test_done", "work done", registry=registry)
        done.inc(3)
        healthy: list[str | None] = [None]

        async def health() -> str | None:
            return healthy[0]

        async with serving(registry, MetricsAddress(host="127.0.0.1"), health) as bound:
            assert bound.port > 0
            base = f"http://127.0.0.1:{bound.port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/metrics") as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain")
                    samples = _scrape(await response.text())
                assert samples["s3csi_test_done_total"] == 3
                assert samples["process_resident_memory_bytes"] > 0
                async with http.get(f"{base}/healthz") as response:
                    assert (response.status, await response.text()) == (200, "ok")
                healthy[0] = "mount.sock is not listening"
                async with http.get(f"{base}/healthz") as response:
                    assert (response.status, await response.text()) == (503, "mount.sock is not listening")

    asyncio.run(main())


def test_unix_endpoint_replaces_a_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sock"
    path.write_text("left by a killed mounter")

    async def main() -> None:
        async with serving(new_registry(), MetricsAddress(path=str(path))):
            connector = aiohttp.UnixConnector(path=str(path))
            async with aiohttp.ClientSession(connector=connector) as http:
                async with http.get("http://localhost/metrics") as response:
                    assert response.status == 200
                    assert "process_cpu_seconds_total" in await response.text()
                async with http.get("http://localhost/healthz") as response:
                    assert response.status == 404  # no health check given
        assert not path.exists()

    asyncio.run(main())
