"""Which keys the file system shows (names.py)."""

from __future__ import annotations

import pytest

from s3csi.fs.names import child_name, fits_in_key, is_visible_name


@pytest.mark.parametrize(
    ("prefix", "key", "name"),
    [
        ("", "a.txt", "a.txt"),
        ("", "dir/", "dir"),
        ("d/", "d/x", "x"),
        ("d/", "d/sub/", "sub"),
        ("d/", "d/", None),  # the directory marker itself
        ("d/", "d//", None),  # empty component from a run of slashes
        ("", "/", None),
        ("d/", "d/.", None),
        ("d/", "d/../", None),
        ("d/", "d/..", None),
        ("d/", "d/" + "n" * 255, "n" * 255),
        ("d/", "d/" + "n" * 256, None),  # longer than NAME_MAX
        ("d/", "d/" + "é" * 128, None),  # 256 bytes in UTF-8
        ("d/", "d/nul\0byte", None),
        ("d/", "other/x", None),
        ("d/", "d/ spaced name ", " spaced name "),
    ],
)
def test_child_name(prefix: str, key: str, name: str | None) -> None:
    assert child_name(prefix, key) == name


@pytest.mark.parametrize(
    ("name", "visible"), [("ok", True), ("", False), (".", False), ("..", False), ("a/b", False)]
)
def test_is_visible_name(name: str, visible: bool) -> None:
    assert is_visible_name(name) is visible


def test_keys_longer_than_s3_allows_do_not_fit() -> None:
    assert fits_in_key("p/", "n" * 200)
    assert not fits_in_key("p/" * 450, "n" * 200)
