"""The pure parts of the dashboard's picture (bench/dashboard.py, bench/dashboard_svg.py): Prometheus's
configuration, legends, steps, ticks, units and the SVG itself."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import dashboard, dashboard_svg, grafana
from bench.dashboard_svg import Series

SVG = "{http://www.w3.org/2000/svg}"


def test_prometheus_config_groups_targets_by_job_with_their_labels() -> None:
    targets = [
        dashboard.ScrapeTarget("mountpoint-pod", "127.0.0.1:1", {"pod": "a"}),
        dashboard.ScrapeTarget("mountpoint-pod", "127.0.0.1:2", {"pod": "b"}),
        dashboard.ScrapeTarget("node", "127.0.0.1:3", {}),
    ]
    config = json.loads(dashboard.prometheus_config(targets, 1, {"pods": Path("/run/pods.json")}))
    assert config["global"]["scrape_interval"] == "1s"
    assert config["scrape_configs"] == [
        {
            "job_name": "mountpoint-pod",
            "static_configs": [
                {"targets": ["127.0.0.1:1"], "labels": {"pod": "a"}},
                {"targets": ["127.0.0.1:2"], "labels": {"pod": "b"}},
            ],
        },
        {"job_name": "node", "static_configs": [{"targets": ["127.0.0.1:3"], "labels": {}}]},
        {"job_name": "pods", "file_sd_configs": [{"files": ["/run/pods.json"]}]},
    ]


@pytest.mark.parametrize(("step", "scrape", "interval"), [(1, 1, 4), (2, 1, 4), (5, 1, 6), (15, 15, 60)])
def test_rate_interval_is_grafanas(step: int, scrape: int, interval: int) -> None:
    assert dashboard.rate_interval(step, scrape) == interval


@pytest.mark.parametrize(
    ("fmt", "labels", "text"),
    [
        ("{{op}}", {"op": "read", "volume_id": "v"}, "read"),
        ("p99 {{ op }}", {"op": "read"}, "p99 read"),
        ("{{op}} {{errno}}", {"op": "lookup"}, "lookup"),
        ("created", {}, "created"),
        ("", {"pod": "p", "mode": "read"}, '{mode="read", pod="p"}'),
    ],
)
def test_legend(fmt: str, labels: dict[str, str], text: str) -> None:
    assert dashboard.legend(fmt, labels) == text


def test_on_steps_fills_missing_steps_with_nan() -> None:
    points = dashboard.on_steps([(100, "1"), (104, "NaN"), (106, "3.5")], 100, 106, 2)
    assert [t for t, _ in points] == [100, 102, 104, 106]
    values = [v for _, v in points]
    assert values[0] == 1 and math.isnan(values[1]) and math.isnan(values[2]) and values[3] == 3.5


@pytest.mark.parametrize(
    ("low", "high", "binary", "ticks"),
    [
        (0, 450, False, [0, 200, 400, 600]),
        (0, 0.8, False, [0, 0.2, 0.4, 0.6, 0.8]),
        (0, 0, False, [0, 0.25, 0.5, 0.75, 1]),
        (0, 20 * 2**20, True, [0, 5 * 2**20, 10 * 2**20, 15 * 2**20, 20 * 2**20]),
        (0, 3e-4, False, [0, 1e-4, 2e-4, 3e-4]),
    ],
)
def test_nice_ticks(low: float, high: float, binary: bool, ticks: list[float]) -> None:
    assert dashboard_svg.nice_ticks(low, high, binary=binary) == pytest.approx(ticks)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.25, "percentunit", "25%"),
        (0.002, "s", "2 ms"),
        (1.5, "s", "1.5 s"),
        (0, "s", "0"),
        (5 * 2**20, "Bps", "5 MiB/s"),
        (512, "bytes", "512 B"),
        (1500, "reqps", "1.5K req/s"),
        (0.5, "ops", "0.5/s"),
        (3, "short", "3"),
    ],
)
def test_format_value(value: float, unit: str, text: str) -> None:
    assert dashboard_svg.format_value(value, unit) == text


def test_segments_break_at_missing_values() -> None:
    nan = math.nan
    runs = dashboard_svg.segments([(0, 1), (1, 2), (2, nan), (3, math.inf), (4, 5), (5, nan)])
    assert runs == [[(0, 1), (1, 2)], [(4, 5)]]


def test_series_at_zero_are_left_out_only_beside_ones_that_moved() -> None:
    zero, small, big = Series("zero", [(0, 0), (1, 0)]), Series("small", [(0, 1)]), Series("big", [(0, 9)])
    empty = Series("empty", [(0, math.nan)])
    assert dashboard_svg.shown_series([zero, small, empty, big]) == [big, small]
    assert dashboard_svg.shown_series([zero, empty]) == [zero]


def test_the_svg_has_every_panel_and_row_and_a_line_per_series() -> None:
    panels = grafana.panels(grafana.load())
    first = next(panel for panel in panels if panel.kind != "row")
    series = {first.id: [Series("read <&>", [(100, 1.0), (110, 2.0), (120, math.nan), (130, 1.0)])]}
    caption = "caption one\n" + "word " * 60
    svg = dashboard_svg.render(dashboard_svg.Picture(panels, series, 100, 130, caption))
    root = ET.fromstring(svg)  # well-formed: the legend's markup characters are escaped
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert all(panel.title in texts for panel in panels)
    assert "read <&>" in texts and "caption one" in texts
    wrapped = [text for text in texts if text and text.startswith("word")]
    assert len(wrapped) == 2 and " ".join(wrapped).split() == ["word"] * 60  # the long line, wrapped
    assert texts.count("No data") == len([p for p in panels if p.kind != "row"]) - 1
    assert len(list(root.iter(f"{SVG}polyline"))) == 1  # the run of two points; the last point is a dot
    assert len(list(root.iter(f"{SVG}circle"))) == 1
