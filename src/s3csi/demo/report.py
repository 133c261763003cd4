"""Plain-text tables for the demo's output (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    claim: str
    held: bool
    detail: str = ""


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_checks(checks: Sequence[Check]) -> str:
    lines = []
    for check in checks:
        line = f"  [{'ok' if check.held else 'FAILED'}] {check.claim}"
        if check.detail and not check.held:
            line += f" — {check.detail}"
        lines.append(line)
    return "\n".join(lines)
