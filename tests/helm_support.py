"""The Helm chart deploy/helm/s3csi rendered by Helm's own library (helm-python-sdk, no helm binary).

Shared by the chart's offline checks (tests/unit/test_helm_chart.py) and the real-container node test
(tests/e2e/test_containers.py), which runs the node plugin container of the DaemonSet rendered here.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "s3csi"
NAMESPACE = "kube-system"
RELEASE = "s3csi"

Obj = dict[str, Any]


@functools.cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART)


def render_text(values: Obj) -> dict[str, str]:
    """``{template path: rendered text}`` of an install of the chart with ``values`` (not modified)."""
    return chart().render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)


def objects(out: dict[str, str]) -> list[Obj]:
    """The Kubernetes objects of a rendering, in template order."""
    return [
        doc
        for path, text in sorted(out.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def render(values: Obj) -> list[Obj]:
    return objects(render_text(values))


def find(rendered: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in rendered if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]
