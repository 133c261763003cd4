"""Reading deploy/grafana/s3csi-dashboard.json: its panels, their PromQL with the dashboard's variables
substituted, and the metric names each expression reads.

Pure functions, shared by the picture of the dashboard (bench/dashboard.py) and the dashboard's unit test.
The PromQL reading here is a sanity check (brackets and quotes balanced, metric names picked out), not a
parser: Prometheus itself parses every expression when bench/dashboard.py queries it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "s3csi-dashboard.json"
GRID_COLUMNS = 24

# `$name`, `${name}`, `${name:format}` and the deprecated `[[name]]`.
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
# Words of PromQL that are not metrics even when no parenthesis follows them (an aggregation may be written
# `sum by (op) (...)`).
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan"}
    | {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk"}
    | {"quantile"}
)
# Followed by a parenthesised list of label names, not of expressions.
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_CLOSING = {"(": ")", "{": "}", "[": "]"}
# A number, or a duration such as 5m (its letters are not an identifier).
_NUMBER = re.compile(r"[0-9.]+(?:[eE][+-]?[0-9]+)?[a-zA-Z]*")


@dataclass(frozen=True)
class GridPos:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A time series panel, or a row header (``kind == "row"``, no targets)."""

    id: int
    kind: str
    title: str
    grid: GridPos
    unit: str
    targets: tuple[Target, ...]


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: Mapping[str, Any]) -> list[Panel]:
    """Every panel and row header, those inside collapsed rows included, in the file's order."""
    found: list[Panel] = []
    for raw in dashboard["panels"]:
        found.append(_panel(raw))
        found.extend(_panel(inner) for inner in raw.get("panels", []))
    return found


def _panel(raw: Mapping[str, Any]) -> Panel:
    grid = raw["gridPos"]
    unit = raw.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    targets = tuple(Target(t["expr"], t.get("legendFormat", "")) for t in raw.get("targets", []))
    return Panel(
        id=raw["id"],
        kind=raw["type"],
        title=raw["title"],
        grid=GridPos(grid["x"], grid["y"], grid["w"], grid["h"]),
        unit=unit,
        targets=targets,
    )


def variables(text: str) -> set[str]:
    """The names of the dashboard variables ``text`` refers to (Grafana's built-ins, ``__...``, included)."""
    return {next(group for group in match.groups() if group) for match in _VARIABLE.finditer(text)}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every variable replaced by its value; a variable without one is an error."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"no value for the dashboard variable ${name} in {text!r}")
        return values[name]

    return _VARIABLE.sub(replace, text)


def check_syntax(expr: str) -> None:
    """Raises ValueError when brackets or quotes in ``expr`` are unbalanced or mismatched."""
    stack: list[tuple[str, int]] = []
    index = 0
    while index < len(expr):
        char = expr[index]
        if char in "\"'`":
            end = _string_end(expr, index)
            if end < 0:
                raise ValueError(f"unterminated string at {index} in {expr!r}")
            index = end
        elif char in _CLOSING:
            stack.append((char, index))
        elif char in _CLOSING.values():
            if not stack or _CLOSING[stack[-1][0]] != char:
                raise ValueError(f"unexpected {char!r} at {index} in {expr!r}")
            stack.pop()
        index += 1
    if stack:
        opening, where = stack[-1]
        raise ValueError(f"{opening!r} at {where} is never closed in {expr!r}")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects: identifiers outside label matchers, ranges and label lists that
    are not functions, aggregations or keywords. ``{__name__=~"..."}`` selectors name no metric."""
    check_syntax(expr)
    names: set[str] = set()
    index = 0
    while index < len(expr):
        char = expr[index]
        if char in "\"'`":
            index = _string_end(expr, index) + 1
        elif char in "{[":
            index = _skip_group(expr, index)
        elif char == "$":
            match = _VARIABLE.match(expr, index)
            index = match.end() if match else index + 1
        elif number := _NUMBER.match(expr, index):
            index = number.end()
        elif match := _IDENTIFIER.match(expr, index):
            word, index = match.group(), match.end()
            rest = expr[index:].lstrip()
            if word.lower() in _LABEL_LIST_KEYWORDS:
                if rest.startswith("("):
                    index = _skip_group(expr, expr.index("(", index))
            elif rest.startswith("(") or word.lower() in _KEYWORDS:
                continue
            else:
                names.add(word)
        else:
            index += 1
    return names


def _string_end(expr: str, start: int) -> int:
    """The index of the quote closing the string opened at ``start``, or -1."""
    quote, index = expr[start], start + 1
    while index < len(expr):
        if expr[index] == "\\" and quote != "`":
            index += 2
            continue
        if expr[index] == quote:
            return index
        index += 1
    return -1


def _skip_group(expr: str, start: int) -> int:
    """The index just past the bracket closing the one at ``start`` (strings inside skipped)."""
    depth, index = 0, start
    while index < len(expr):
        char = expr[index]
        if char in "\"'`":
            index = _string_end(expr, index)
        elif char in _CLOSING:
            depth += 1
        elif char in _CLOSING.values():
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise ValueError(f"{expr[start]!r} at {start} is never closed in {expr!r}")
