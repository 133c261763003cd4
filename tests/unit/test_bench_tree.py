"""The tree the tar and rsync rows copy: its layout is fixed, and building it gives every file its own
mode and time (so that both tools must set them)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from bench import tree


def test_relative_paths_are_1000_files_in_10_directories() -> None:
    paths = tree.relative_paths()
    assert len(paths) == len(set(paths)) == tree.FILES
    assert paths[0] == "dir-00/file-0000"
    assert paths[-1] == "dir-09/file-0999"
    assert {path.split("/")[0] for path in paths} == {f"dir-{index:02d}" for index in range(10)}


def test_build_writes_the_tree_with_varied_modes_and_times_and_its_archive(tmp_path: Path) -> None:
    built = tree.build(tmp_path)
    stats = [(built.root / path).stat() for path in built.paths]
    assert {entry.st_size for entry in stats} == {tree.FILE_SIZE}
    assert {stat.S_IMODE(entry.st_mode) for entry in stats} == set(tree.FILE_MODES)
    assert len({entry.st_mtime_ns for entry in stats}) == tree.FILES
    listing = subprocess.run(["tar", "-tf", str(built.archive)], capture_output=True, text=True, check=True)
    files = {name.removeprefix("./") for name in listing.stdout.split() if not name.endswith("/")}
    assert files == set(built.paths)
