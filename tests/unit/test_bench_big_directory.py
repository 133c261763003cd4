"""The big-directory benchmark's pure parts: the stand-in listing server's pages, the verdict, the flag."""

from __future__ import annotations

import pytest

from bench.__main__ import parse_args
from bench.big_directory import GOAL_MIB, BigDirectory, verdict
from bench.listing_server import list_body, list_page, object_keys
from s3csi.s3.wire import parse_list_objects_v2

KEYS = [*object_keys("big/", 2500), "top"]

# (prefix, delimiter, start, start_after, max_keys) → (first object, object count, prefixes, next start)
PAGE_CASES = [
    ("the root: one common prefix", ("", "/", 0, "", 1000), (None, 1, ["big/"], None)),
    ("a lookup of the directory's name", ("big", "/", 0, "", 100), (None, 0, ["big/"], None)),
    ("the directory's first page", ("big/", "/", 0, "", 1000), ("big/object-000000", 1000, [], 1000)),
    ("its last page", ("big/", "/", 2000, "", 1000), ("big/object-002000", 500, [], None)),
    ("start-after", ("big/", "/", 0, "big/object-002499", 1000), (None, 0, [], None)),
    ("no delimiter", ("", "", 2000, "", 1000), ("big/object-002000", 501, [], None)),
]


@pytest.mark.parametrize(("query", "expected"), [c[1:] for c in PAGE_CASES], ids=[c[0] for c in PAGE_CASES])
def test_pages_of_the_listing_server(
    query: tuple[str, str, int, str, int], expected: tuple[str | None, int, list[str], int | None]
) -> None:
    prefix, delimiter, start, start_after, max_keys = query
    objects, prefixes, token = list_page(
        sorted(KEYS), prefix, delimiter, start=start, start_after=start_after, max_keys=max_keys
    )
    first, count, expected_prefixes, expected_token = expected
    if first is not None:
        assert objects[0] == first
    assert (len(objects), prefixes, token) == (count, expected_prefixes, expected_token)


def test_the_listing_server_s_body_reads_as_s3_s() -> None:
    body = list_body("b", "big/", "/", 2, ["big/a b", "big/c"], ["big/d/"], 7)
    page = parse_list_objects_v2(body)
    assert [o.key for o in page.objects] == ["big/a b", "big/c"]
    assert page.common_prefixes == ["big/d/"] and page.next_continuation_token == "7"


def result(peak: float) -> BigDirectory:
    return BigDirectory(100_000, 50.0, 4.0, 0.1, peak, 5.0, peak - 1, peak, 4.0, peak - 2)


@pytest.mark.parametrize(("peak", "passed"), [(GOAL_MIB - 0.5, True), (GOAL_MIB + 0.5, False)])
def test_the_verdict_is_about_the_highest_peak(peak: float, passed: bool) -> None:
    assert verdict(result(peak)).passed is passed
    assert verdict(None).word == "n/a"


def test_the_big_directory_flag() -> None:
    assert parse_args([]).big_directory == 100_000
    assert parse_args(["--big-directory", "0"]).big_directory == 0
    with pytest.raises(SystemExit):
        parse_args(["--big-directory", "-1"])
