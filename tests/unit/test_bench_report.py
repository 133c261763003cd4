"""The benchmark's pure reporting: medians, best peer, ratios, the targets' verdicts and the table."""

from __future__ import annotations

import pytest

from bench import report


def figures_where_s3csi(**overrides: float) -> report.Figures:
    s3csi = {
        "seq_read_mbps": 600.0,
        "ttfb_ms": 10.0,
        "ls_s": 0.1,
        "ls_requests": 2.0,
        "small_reads_s": 1.0,
        "write_mbps": 170.0,
        "rss_mib": 100.0,
        "tar_s": 5.0,
        "rsync_s": 6.0,
    }
    s3csi.update(overrides)
    return {
        "direct": {"seq_read_mbps": 622.0, "write_mbps": 180.0, "ttfb_ms": 8.0},
        "s3csi": s3csi,
        "s3fs": {
            "seq_read_mbps": 507.0,
            "ttfb_ms": 160.0,
            "ls_s": 0.82,
            "ls_requests": 1005,
            "small_reads_s": 2.65,
            "tar_s": 20.0,
            "rsync_s": 30.0,
        },
        "rclone": {
            "seq_read_mbps": 275.0,
            "ttfb_ms": 23.0,
            "ls_s": 1.39,
            "ls_requests": 1001,
            "small_reads_s": 1.55,
            "tar_s": 15.0,
            "rsync_s": 25.0,
        },
    }


def test_medians_of_odd_and_even_counts_skip_empty_metrics() -> None:
    samples = {"s3fs": {"ls_s": [3.0, 1.0, 2.0], "ttfb_ms": [1.0, 4.0], "rss_mib": []}}
    assert report.medians(samples) == {"s3fs": {"ls_s": 2.0, "ttfb_ms": 2.5}}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("seq_read_mbps", ("s3fs", 507.0)),  # higher is better
        ("ttfb_ms", ("rclone", 23.0)),  # lower is better
        ("ls_requests", ("rclone", 1001)),
        ("write_mbps", None),  # no peer measured it
    ],
)
def test_best_peer_follows_the_metric_direction(key: str, expected: tuple[str, float] | None) -> None:
    assert report.best_peer(figures_where_s3csi(), key) == expected


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(1.0, 2.0, 0.5), (None, 2.0, None), (1.0, None, None), (1.0, 0.0, None)],
)
def test_ratio(numerator: float | None, denominator: float | None, expected: float | None) -> None:
    assert report.ratio(numerator, denominator) == expected


def words(figures: report.Figures) -> dict[str, str]:
    return {verdict.target: verdict.word for verdict in report.verdicts(figures)}


def test_every_target_passes_with_good_figures() -> None:
    assert set(words(figures_where_s3csi()).values()) == {"PASS"}


@pytest.mark.parametrize(
    ("override", "missed"),
    [
        ({"seq_read_mbps": 520.0}, "sequential read >= 0.85 x direct ranged GET"),  # 0.836 x 622
        ({"seq_read_mbps": 530.0, "ttfb_ms": 23.0}, None),  # 0.852 x 622, and equal first byte still passes
        ({"ttfb_ms": 23.1}, "time to first byte <= the faster peer"),
        ({"ls_s": 0.82}, "ls -l of 1000 objects faster than both peers"),  # equal is not faster
        ({"ls_requests": 3.0}, "ls -l of 1000 objects in <= 2 S3 requests"),
        ({"small_reads_s": 1.6}, "1000 small reads faster than both peers"),
        ({"write_mbps": 161.0}, "durable write >= 0.9 x direct multipart PUT"),
        ({"rss_mib": 257.0}, "RSS <= 256 MiB during the sequential read"),
        ({"tar_s": 15.0}, "tar -xf of 1000 files faster than both peers"),  # equal to rclone's
        ({"rsync_s": 25.1}, "rsync -a of 1000 files faster than both peers"),
    ],
)
def test_each_target_misses_on_its_own_figure(override: dict[str, float], missed: str | None) -> None:
    misses = [target for target, word in words(figures_where_s3csi(**override)).items() if word == "MISS"]
    assert misses == ([missed] if missed else [])


def test_targets_are_not_applicable_without_figures() -> None:
    only_peers = {"s3fs": {"seq_read_mbps": 507.0}}
    assert set(words(only_peers).values()) == {"n/a"}


def test_table_has_a_column_per_measured_system_and_the_ratios() -> None:
    table = report.format_table(figures_where_s3csi()).splitlines()
    assert table[0].split() == [
        "metric",
        "direct",
        "s3csi",
        "s3fs",
        "rclone",
        "s3csi/direct",
        "s3csi/best",
        "peer",
    ]
    read_row = next(line for line in table if line.startswith("sequential read"))
    # 600 / 622 direct, 600 / 507 s3fs (the faster peer)
    assert read_row.split()[3:] == ["622", "600", "507", "275", "0.96", "1.18", "(s3fs)"]
    assert not any(line.startswith("write: close") for line in table)  # no system measured it


def test_small_ratios_keep_two_significant_digits() -> None:
    table = report.format_table(figures_where_s3csi()).splitlines()
    requests_row = next(line for line in table if line.startswith("ls -l S3 requests"))
    assert requests_row.endswith("0.002 (rclone)")  # 2 against rclone's 1001


TAR = "tar -xf of 1000 files faster than both peers"


@pytest.mark.parametrize(
    ("failed", "word", "measured"),
    [
        ({}, "PASS", "5.00 vs rclone 15.00"),
        # A peer whose tar failed is beaten by any time; the other peer still counts.
        ({"rclone": {"tar_s", "tar_exit_s"}}, "PASS", "5.00 vs s3fs 20.00 (rclone failed)"),
        ({"s3csi": {"tar_s", "tar_exit_s"}}, "MISS", "s3csi failed"),
        ({"s3csi": {"tar_s"}, "s3fs": {"tar_s"}}, "MISS", "s3csi failed (s3fs failed)"),
    ],
)
def test_a_failed_tool_is_reported_not_timed(failed: dict[str, set[str]], word: str, measured: str) -> None:
    figures = figures_where_s3csi()
    for system, keys in failed.items():
        for key in keys:
            figures[system].pop(key, None)
    verdict = next(v for v in report.verdicts(figures, failed) if v.target == TAR)
    assert (verdict.word, verdict.measured) == (word, measured)


def test_tool_target_passes_when_every_peer_failed_and_is_not_applicable_unmeasured() -> None:
    figures = figures_where_s3csi()
    for peer in ("s3fs", "rclone"):
        del figures[peer]["tar_s"]
    failed = {"s3fs": {"tar_s"}, "rclone": {"tar_s"}}
    verdict = next(v for v in report.verdicts(figures, failed) if v.target == TAR)
    assert (verdict.word, verdict.measured) == ("PASS", "5.00, every peer failed (s3fs, rclone failed)")
    assert words(figures)[TAR] == "n/a"


def test_table_shows_failed_rather_than_a_time() -> None:
    figures = figures_where_s3csi()
    del figures["s3fs"]["rsync_s"]
    table = report.format_table(figures, {"s3fs": {"rsync_s", "rsync_exit_s"}}).splitlines()
    rsync_row = next(line for line in table if line.startswith("rsync -a 1000 files"))
    assert rsync_row.split()[7:] == ["-", "6.00", "failed", "25.00", "-", "0.24", "(rclone)"]
    # A row no system measured, but one failed, is shown too.
    exit_row = next(line for line in table if line.startswith("rsync -a: rsync exited"))
    assert exit_row.split()[5:9] == ["-", "-", "failed", "-"]
