"""`s3csi controller` refuses bad settings in one line on stderr, exit status 2, naming the flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def controller(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}  # no KUBERNETES_SERVICE_HOST: not in a cluster
    return subprocess.run(
        [sys.executable, "-m", "s3csi", "controller", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def api_flags(tmp_path: Path) -> list[str]:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("t\n")
    ca.write_text("")
    return ["--kube-api-url", "https://127.0.0.1:1", "--kube-token-file", str(token)]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ([], "--kube-api-url"),
        (["--lease-duration", "5", "--lease-renew-deadline", "10"], "--lease-renew-deadline"),
        (["--idle-grace-period", "-1"], "--idle-grace-period"),
        (["--driver-name", "not a name"], "--driver-name"),
        (["--mountpoint-namespace", "Bad_NS"], "namespace"),
        (["--mountpoint-memory-request", "2Gi"], "exceeds its limit"),
        (["--lease-name", "UPPER"], "--lease-name"),
    ],
)
def test_bad_settings_are_one_line_naming_the_flag(args: list[str], named: str, api_flags: list[str]) -> None:
    flags = [] if not args else [*api_flags, "--kube-ca-file", "/etc/ssl/certs/ca-certificates.crt"]
    result = controller("--image", "registry.example/s3csi:1", *flags, *args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("s3csi controller: error:") and named in lines[0], lines


def test_the_image_is_required() -> None:
    result = controller()
    assert result.returncode == 2 and "--image" in result.stderr
