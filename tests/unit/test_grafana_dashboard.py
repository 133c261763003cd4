"""deploy/grafana/s3csi-dashboard.json: every panel's PromQL is well formed and reads only metrics s3csi
exposes, every metric s3csi exposes has a panel, and the panels are laid out without overlap."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest

from bench import grafana

# Grafana's own variables the panels may use.
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}

# The metric families of every s3csi process: (name as the client library registers it, type). Counters are
# registered without their `_total` suffix.
FAMILIES: list[tuple[str, str]] = [
    ("s3csi_fuse_requests", "counter"),
    ("s3csi_fuse_request_errors", "counter"),
    ("s3csi_fuse_request_latency_seconds", "histogram"),
    ("s3csi_fuse_io_size_bytes", "histogram"),
    ("s3csi_s3_requests", "counter"),
    ("s3csi_s3_request_errors", "counter"),
    ("s3csi_s3_request_first_byte_latency_seconds", "histogram"),
    ("s3csi_s3_request_total_latency_seconds", "histogram"),
    ("s3csi_s3_transferred_bytes", "counter"),
    ("s3csi_prefetch_hits", "counter"),
    ("s3csi_prefetch_misses", "counter"),
    ("s3csi_open_files", "gauge"),
    ("s3csi_csi_requests", "counter"),
    ("s3csi_csi_request_duration_seconds", "histogram"),
    ("s3csi_node_mountpoint_pods", "gauge"),
    ("s3csi_node_publishes_waiting", "gauge"),
    ("s3csi_node_recoveries", "counter"),
    ("s3csi_controller_reconciles", "counter"),
    ("s3csi_controller_reconcile_duration_seconds", "histogram"),
    ("s3csi_controller_queue_depth", "gauge"),
    ("s3csi_controller_mountpoint_pods_created", "counter"),
    ("s3csi_controller_mountpoint_pods_retired", "counter"),
    ("s3csi_controller_leader", "gauge"),
    ("s3csi_admission_reviews", "counter"),
    ("s3csi_admission_review_duration_seconds", "histogram"),
]
# From the process collector every registry has (s3csi.metrics.endpoint.new_registry).
PROCESS_FAMILIES = [("process_resident_memory_bytes", "gauge")]

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exposed(family: str, kind: str) -> set[str]:
    """The sample names Prometheus stores for a family of this type."""
    return {family + suffix for suffix in SUFFIXES[kind]}


def exposed_names(families: Iterable[tuple[str, str]]) -> set[str]:
    return set().union(*(exposed(name, kind) for name, kind in families))


DASHBOARD = grafana.load()
PANELS = grafana.panels(DASHBOARD)
GRAPHS = [panel for panel in PANELS if panel.kind != "row"]
TARGETS = [(panel, target) for panel in GRAPHS for target in panel.targets]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (op) (rate(a_total{x=~"$v", y="}"}[$__rate_interval]))', {"a_total"}),
        ("histogram_quantile(0.99, sum by (op, le) (rate(h_bucket[5m])))", {"h_bucket"}),
        ("sum(rate(a[1m])) / (sum(rate(a[1m])) + sum(rate(b[1m])))", {"a", "b"}),
        ("a{n=~\"$n\"} and on (namespace, pod) b{m='q\\'}'}", {"a", "b"}),
        ("max without (instance) (g) > bool 1e3", {"g"}),
        ('count by (namespace) ({__name__=~"s3csi_.+"})', set()),
        ("sum by (x) (a) * on (x) group_left (y) c offset 5m", {"a", "c"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert grafana.metric_names(expr) == names


@pytest.mark.parametrize(
    "expr", ["sum(rate(a[5m])", 'a{x="y}', "rate(a[5m)]", "a}", "sum by (op (a)", "a{x='y\\'}"]
)
def test_malformed_expressions_are_refused(expr: str) -> None:
    with pytest.raises(ValueError, match=r"never closed|unexpected|unterminated"):
        grafana.check_syntax(expr)


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ('a{x=~"$ns"}[$__rate_interval]', 'a{x=~".*"}[5s]'),
        ("${ns} [[ns]] ${ns:regex}", ".* .* .*"),
    ],
)
def test_substitute(text: str, result: str) -> None:
    assert grafana.substitute(text, {"ns": ".*", "__rate_interval": "5s"}) == result


def test_substitute_names_a_missing_variable() -> None:
    with pytest.raises(KeyError, match=r"\$other"):
        grafana.substitute("a{x=~'$other'}", {"ns": ".*"})


@pytest.mark.parametrize(("panel", "target"), TARGETS, ids=[f"{p.id}-{t.legend}" for p, t in TARGETS])
def test_each_expression_reads_only_exposed_metrics(panel: grafana.Panel, target: grafana.Target) -> None:
    names = grafana.metric_names(target.expr)
    assert names, f"{panel.title}: {target.expr} selects no metric"
    unknown = names - exposed_names(FAMILIES + PROCESS_FAMILIES)
    assert not unknown, f"{panel.title}: {target.expr} reads {sorted(unknown)}, which no process exposes"


def test_every_metric_has_a_panel() -> None:
    shown = set().union(*(grafana.metric_names(target.expr) for _, target in TARGETS))
    missing = [name for name, kind in FAMILIES if not exposed(name, kind) & shown]
    assert not missing, f"metrics without a panel: {missing}"


def test_every_variable_is_defined() -> None:
    defined = {variable["name"] for variable in DASHBOARD["templating"]["list"]}
    assert {"datasource", "namespace", "volume_id", "pod"} <= defined
    for variable in DASHBOARD["templating"]["list"]:
        query = variable.get("definition", "")
        assert grafana.variables(query) <= defined - {variable["name"]}, variable["name"]
    for panel, target in TARGETS:
        used = grafana.variables(target.expr)
        assert used <= defined | BUILTIN_VARIABLES, f"{panel.title}: {sorted(used - defined)}"


def test_every_query_uses_the_datasource_variable() -> None:
    (source,) = [v for v in DASHBOARD["templating"]["list"] if v["name"] == "datasource"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    expected = {"type": "prometheus", "uid": "${datasource}"}
    raw_panels = [raw for raw in DASHBOARD["panels"] if raw["type"] != "row"]
    for raw in raw_panels:
        assert raw["datasource"] == expected, raw["title"]
        assert all(target["datasource"] == expected for target in raw["targets"]), raw["title"]
        ref_ids = [target["refId"] for target in raw["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), raw["title"]
    for variable in DASHBOARD["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == expected, variable["name"]


def test_panels_fit_the_grid_without_overlap() -> None:
    assert len({panel.id for panel in PANELS}) == len(PANELS)
    for panel in PANELS:
        assert panel.grid.x >= 0 and panel.grid.w > 0 and panel.grid.h > 0, panel.title
        assert panel.grid.x + panel.grid.w <= grafana.GRID_COLUMNS, panel.title
    for first, second in itertools.combinations(PANELS, 2):
        apart = (
            first.grid.x + first.grid.w <= second.grid.x
            or second.grid.x + second.grid.w <= first.grid.x
            or first.grid.y + first.grid.h <= second.grid.y
            or second.grid.y + second.grid.h <= first.grid.y
        )
        assert apart, f"{first.title!r} overlaps {second.title!r}"
