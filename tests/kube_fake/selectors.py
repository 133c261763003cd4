"""Label and field selectors as the API server parses and applies them (pure functions).

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``, joined by
commas (all must hold). Field selectors: ``path=v``, ``path==v``, ``path!=v`` on the fields the resource
supports; any other field is refused as the API server refuses it (400 "field label not supported").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class SelectorError(ValueError):
    """A selector the API server would refuse with 400 Bad Request."""


def _requirements(selector: str) -> list[str]:
    """Split at the commas that are not inside ``( )``."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def label_matcher(selector: str | None) -> Matcher:
    """A function telling whether an object's ``metadata.labels`` satisfy ``selector``."""
    checks: list[Callable[[dict[str, str]], bool]] = []
    for requirement in _requirements(selector or ""):
        if found := _SET.match(requirement):
            key, operator, values = found[1], found[2], {v.strip() for v in found[3].split(",") if v.strip()}
            if operator == "in":
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif found := _EQUALITY.match(requirement):
            key, operator, value = found[1], found[2], found[3]
            if operator == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif found := _EXISTS.match(requirement):
            negated, key = found[1] == "!", found[2]
            checks.append(lambda labels, k=key, n=negated: (k in labels) != n)
        else:
            raise SelectorError(f"unable to parse requirement: {requirement.strip()!r}")

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return matches


def field_value(obj: dict[str, Any], path: str) -> str:
    """The value at a dotted ``path`` as a field selector compares it ("" when absent)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_matcher(selector: str | None, supported: Collection[str]) -> Matcher:
    """A function telling whether an object satisfies ``selector``; SelectorError for a field not in
    ``supported`` (``metadata.name`` and ``metadata.namespace`` always are)."""
    checks: list[Matcher] = []
    for requirement in _requirements(selector or ""):
        found = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", requirement)
        if found is None:
            raise SelectorError(f"invalid selector: {requirement.strip()!r}; can't understand it")
        path, operator, value = found[1], found[2], found[3]
        if path not in {"metadata.name", "metadata.namespace", *supported}:
            raise SelectorError(f"field label not supported: {path}")
        if operator == "!=":
            checks.append(lambda obj, p=path, v=value: field_value(obj, p) != v)
        else:
            checks.append(lambda obj, p=path, v=value: field_value(obj, p) == v)
    return lambda obj: all(check(obj) for check in checks)
