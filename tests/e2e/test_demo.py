"""``s3csi demo`` end to end, as `make demo` runs it: exit 0, every check held, nothing left behind."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

from s3csi.kernel.mount import mountinfo

pytestmark = pytest.mark.usefixtures("privileged")


def demo_traces() -> set[str]:
    dirs = set(glob.glob("/tmp/s3csi-demo-*"))
    mounts = {m.mount_point for m in mountinfo() if m.mount_point.startswith("/tmp/s3csi-demo-")}
    processes = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith("/tmp/s3csi-demo-"):
                processes.add(f"pid {pid}")
        except OSError:
            pass
    return dirs | mounts | processes


def test_demo_passes_every_check_and_leaves_nothing_behind() -> None:
    before = demo_traces()
    result = subprocess.run(
        [sys.executable, "-m", "s3csi", "demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^POD +VOLUME +USER +fsGROUP", out, re.MULTILINE)
    for pod in ("s3-app-1", "s3-app-2", "other-group", "reader", "ssh-user", "dynamic-app"):
        assert re.search(rf"^{pod} ", out, re.MULTILINE), pod
    assert "Read-only file system" in out
    assert "[FAILED]" not in out
    held = re.search(r"^(\d+)/(\d+) checks held", out, re.MULTILINE)
    assert held is not None and held.group(1) == held.group(2) and int(held.group(2)) >= 20
    assert demo_traces() <= before
