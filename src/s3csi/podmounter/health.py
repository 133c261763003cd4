"""Whether the node plugin can publish: the readiness check its CSI Probe runs (docs/observability.md#health).

- ``/dev/fuse`` is a character device here: every publish opens it (both runtimes: the node plugin mounts).
- The state dir takes a new file: sources, target records and sessions are written there, and the local
  runtime's comm dirs live in it (a full or read-only file system refuses every publish).
- Kubernetes runtime: its watches of this node's Mountpoint Pods and attachments are not broken for longer
  than ``WATCH_BROKEN_S`` (the Kubernetes API reachable and answering), since publishes wait on them.
"""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
import time

from s3csi.kernel.fuse import FUSE_DEVICE
from s3csi.kube.informer import broken_watch
from s3csi.metrics.endpoint import HealthCheck
from s3csi.podmounter.publisher import PodMounterPublisher
from s3csi.podmounter.runtime.kubernetes import KubernetesRuntime

# Seconds a watch may fail before the node plugin is not ready: longer than a few retries of a brief API
# server outage (the informer retries at least every 30 s).
WATCH_BROKEN_S = 120.0
# Seconds for the state dir's file to be made and removed (a hung NFS-backed state dir counts as unusable).
STATE_DIR_TIMEOUT_S = 3.0


def fuse_device_problem(path: str = FUSE_DEVICE) -> str | None:
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{path} is missing ({exc.strerror}): FUSE mounts cannot be made"
    if not stat.S_ISCHR(st.st_mode):
        return f"{path} is not a character device: FUSE mounts cannot be made"
    return None


def _try_write(directory: str) -> None:
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
        pass


async def state_dir_problem(directory: str) -> str | None:
    try:
        await asyncio.wait_for(asyncio.to_thread(_try_write, directory), STATE_DIR_TIMEOUT_S)
    except TimeoutError:
        return f"the state dir {directory} did not take a file within {STATE_DIR_TIMEOUT_S:g}s"
    except OSError as exc:
        return f"the state dir {directory} does not take a new file: {exc.strerror}"
    return None


def publisher_check(publisher: PodMounterPublisher, fuse_device: str = FUSE_DEVICE) -> HealthCheck:
    """The node service's readiness check of ``publisher`` and its runtime."""

    async def check() -> str | None:
        problem = fuse_device_problem(fuse_device) or await state_dir_problem(publisher.settings.state_dir)
        runtime = publisher.runtime
        if problem is None and isinstance(runtime, KubernetesRuntime):
            informers = [i for i in (runtime.pods, runtime.attachments) if i is not None]
            problem = broken_watch(informers, time.monotonic(), WATCH_BROKEN_S)
            if problem is not None:
                problem = f"Kubernetes runtime: {problem}"
        return problem

    return check
