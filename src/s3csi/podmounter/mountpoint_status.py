"""What a Mountpoint Pod's status says, for the node plugin's Kubernetes runtime (pure).

The node plugin hands a FUSE session only to a mounter whose container runs, and when it waited in vain it
tells kubelet why, in words a user reads in ``kubectl describe pod`` (docs/kubernetes.md, "The node plugin's
Kubernetes runtime"): the pod's scheduling condition, its container's waiting reason (an image that cannot
be pulled, a crash loop), or how it ended.
"""

from __future__ import annotations

from typing import Any

from s3csi.podmounter.podspec import CONTAINER_NAME

JsonObject = dict[str, Any]
_MESSAGE_LENGTH = 300


def _short(text: object) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MESSAGE_LENGTH else f"{flat[: _MESSAGE_LENGTH - 1]}…"


def _container_status(pod: JsonObject) -> JsonObject | None:
    for status in pod.get("status", {}).get("containerStatuses", None) or []:
        if status.get("name") == CONTAINER_NAME:
            found: JsonObject = status
            return found
    return None


def container_running(pod: JsonObject) -> bool:
    """The mounter's container runs: the process serving a FUSE session handed to this pod may be alive."""
    status = _container_status(pod)
    return pod.get("status", {}).get("phase") == "Running" and bool(
        status and "running" in (status.get("state") or {})
    )


def restart_count(pod: JsonObject) -> int | None:
    """How often kubelet restarted the mounter's container: a new count is a new mounter process, which does
    not serve the FUSE session handed to the one before. None when the status does not say."""
    count = (_container_status(pod) or {}).get("restartCount")
    return count if isinstance(count, int) else None


def _reason(entry: JsonObject) -> str:
    reason, message = entry.get("reason"), entry.get("message")
    if reason and message:
        return f"{reason}: {_short(message)}"
    return _short(reason or message or "no reason given")


def _terminated(state: JsonObject) -> str:
    text = f"exit code {state.get('exitCode', '?')}"
    if state.get("reason"):
        text = f"{state['reason']}, {text}"
    if state.get("message"):
        text += f": {_short(state['message'])}"
    return text


def pod_problem(pod: JsonObject) -> str | None:
    """Why the Mountpoint Pod cannot take a workload now, or None when it can (Running, its mounter's
    container running, not being deleted)."""
    status = pod.get("status", {})
    phase = status.get("phase") or "Pending"
    container = _container_status(pod) or {}
    state = container.get("state") or {}
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "is being deleted"
    if phase in ("Failed", "Succeeded"):
        ended = f"{phase}"
        if status.get("reason") or status.get("message"):
            ended += f" ({_reason(status)})"
        if "terminated" in state:
            ended += f", container {CONTAINER_NAME} terminated ({_terminated(state['terminated'])})"
        return f"is {ended}"
    if phase == "Running" and "running" in state:
        return None
    if "waiting" in state:
        waiting = f"container {CONTAINER_NAME} waiting ({_reason(state['waiting'])})"
        last = (container.get("lastState") or {}).get("terminated")
        if last:
            waiting += f", last terminated ({_terminated(last)})"
        return f"is {phase} because its {waiting}"
    if "terminated" in state:
        return f"is {phase}: container {CONTAINER_NAME} terminated ({_terminated(state['terminated'])})"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"is {phase} because it is not scheduled ({_reason(condition)})"
    if phase == "Pending" and not pod.get("spec", {}).get("nodeName"):
        return "is Pending: not scheduled to a node yet"
    return f"is {phase}: container {CONTAINER_NAME} not started yet"


# Waiting reasons of a container that pass only when someone acts (kubelet's own reasons): an image that
# cannot be pulled, a configuration kubelet cannot build, a crash loop.
STUCK_WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)


def pod_stuck(pod: JsonObject) -> bool:
    """Whether what keeps the Mountpoint Pod from serving needs someone to act (the scheduler found no
    node for it, its image cannot be pulled, it ended, its container crash-loops) rather than time (it is
    being scheduled, pulled, started, or replaced)."""
    status = pod.get("status", {})
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    if status.get("phase") in ("Failed", "Succeeded"):
        return True
    waiting = ((_container_status(pod) or {}).get("state") or {}).get("waiting") or {}
    if waiting.get("reason") in STUCK_WAITING_REASONS:
        return True
    return any(
        condition.get("type") == "PodScheduled"
        and condition.get("status") == "False"
        and condition.get("reason") == "Unschedulable"
        for condition in status.get("conditions") or []
    )
