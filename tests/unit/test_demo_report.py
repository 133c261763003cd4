from __future__ import annotations

from s3csi.demo.report import Check, render_checks, render_table


def test_render_table_aligns_columns() -> None:
    assert render_table(["A", "LONG"], [["xyz", "1"], ["x", "22"]]).splitlines() == [
        "A    LONG",
        "---  ----",
        "xyz  1",
        "x    22",
    ]


def test_render_checks_shows_details_of_failures_only() -> None:
    text = render_checks([Check("held", True, "ignored"), Check("broken", False, "why")])
    assert text.splitlines() == ["  [ok] held", "  [FAILED] broken — why"]
