"""deploy/grafana/s3csi-dashboard.json: every panel's PromQL is well formed and reads only metrics the s3csi
processes register (their real registries), every s3csi metric has a panel, and the panels are laid out
without overlap."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest

from bench import grafana
from s3csi.fs.metrics import MounterMetrics
from s3csi.fs.prefetch import PrefetchCounts
from s3csi.metrics.controller import ControllerMetrics
from s3csi.metrics.endpoint import new_registry
from s3csi.metrics.node import NodeMetrics
from s3csi.metrics.webhook import WebhookMetrics

# Grafana's own variables the panels may use.
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}


def registered() -> set[tuple[str, str]]:
    """(name, type) of every metric family the s3csi processes register, each built on a registry of its
    own as the process builds it (counters named without their `_total`), the process collector's included."""
    mounter = MounterMetrics("volume", new_registry())
    mounter.watch(PrefetchCounts(), dict)  # the read-ahead counts and open files, read when scraped
    registries = [
        mounter.registry,
        NodeMetrics(new_registry()).registry,
        ControllerMetrics(new_registry()).registry,
        WebhookMetrics(new_registry()).registry,
    ]
    return {(family.name, family.type) for registry in registries for family in registry.collect()}


REGISTERED = registered()
# The driver's own metrics: each must have a panel.
FAMILIES = sorted(family for family in REGISTERED if family[0].startswith("s3csi_"))
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


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
    unknown = names - exposed_names(REGISTERED)
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
