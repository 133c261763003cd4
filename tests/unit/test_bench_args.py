"""The benchmark's command line: which systems run, how many repetitions, bad values refused."""

from __future__ import annotations

import pytest

from bench.__main__ import parse_args


def test_defaults_measure_every_system_five_times() -> None:
    args = parse_args([])
    assert args.systems == ("direct", "s3csi", "s3fs", "rclone", "rclone-full")
    assert args.repetitions == 5


def test_quick_means_one_repetition_unless_told() -> None:
    assert parse_args(["--quick"]).repetitions == 1
    assert parse_args(["--quick", "--repetitions", "2"]).repetitions == 2


def test_only_keeps_the_table_order_whatever_the_order_given() -> None:
    assert parse_args(["--only", "rclone, s3csi,direct"]).systems == ("direct", "s3csi", "rclone")


@pytest.mark.parametrize("argv", [["--only", "s3csi,goofys"], ["--only", ","], ["--repetitions", "0"]])
def test_bad_values_are_refused_naming_the_flag(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert argv[0] in capsys.readouterr().err
