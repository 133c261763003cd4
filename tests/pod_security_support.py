"""The Pod Security Standards' "restricted" profile (baseline's controls and restricted's), a pure checker.

Written from https://kubernetes.io/docs/concepts/security/pod-security-standards/ so a test can tell whether
the Pod Security admission of a namespace labelled ``enforce: restricted`` would admit a pod spec, without an
API server. :func:`violations` returns one line per failed control, named as the standard names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Baseline: "Host Namespaces", "Privileged Containers", "Capabilities", "HostPath Volumes", "Host Ports",
# "AppArmor", "SELinux", "/proc Mount Type", "Seccomp", "Sysctls". Restricted adds "Volume Types",
# "Privilege Escalation", "Running as Non-root", "Running as Non-root user", "Seccomp" (stricter),
# "Capabilities" (stricter).
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
RESTRICTED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
ALLOWED_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
ALLOWED_APPARMOR = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field, [])


def violations(pod: dict[str, Any]) -> list[str]:
    """Each control of the restricted profile that ``pod`` (a core/v1 Pod) fails."""
    spec = pod["spec"]
    pod_context = spec.get("securityContext", {})
    containers = list(_containers(spec))
    found: list[str] = []

    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            found.append(f"Host Namespaces: spec.{host} is true")
    if pod_context.get("windowsOptions", {}).get("hostProcess"):
        found.append("HostProcess: pod is a Windows HostProcess pod")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            found.append(f"HostPath Volumes: volume {volume['name']}")
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            found.append(f"Volume Types: volume {volume['name']} is {sorted(kinds)}")
    for sysctl in pod_context.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"Sysctls: {sysctl['name']}")
    for context_owner, context in [("pod", pod_context)] + [
        (f"container {c['name']}", c.get("securityContext", {})) for c in containers
    ]:
        selinux = context.get("seLinuxOptions", {})
        if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            found.append(f"SELinux: {context_owner} sets {selinux}")
        apparmor = context.get("appArmorProfile", {}).get("type")
        if apparmor is not None and apparmor not in ALLOWED_APPARMOR:
            found.append(f"AppArmor: {context_owner} uses {apparmor}")
        seccomp = context.get("seccompProfile", {}).get("type")
        if seccomp is not None and seccomp not in ALLOWED_SECCOMP:
            found.append(f"Seccomp: {context_owner} uses {seccomp}")
        if context.get("runAsUser") == 0:
            found.append(f"Running as Non-root user: {context_owner} sets runAsUser 0")

    pod_non_root = pod_context.get("runAsNonRoot")
    pod_seccomp = pod_context.get("seccompProfile", {}).get("type")
    for container in containers:
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"Privileged Containers: container {name}")
        if context.get("windowsOptions", {}).get("hostProcess"):
            found.append(f"HostProcess: container {name}")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                found.append(f"Host Ports: container {name} uses hostPort {port['hostPort']}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"/proc Mount Type: container {name}")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(
                f"Privilege Escalation: container {name} does not set allowPrivilegeEscalation false"
            )
        non_root = context.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            found.append(f"Running as Non-root: container {name} (and the pod) do not set runAsNonRoot true")
        if context.get("seccompProfile", {}).get("type", pod_seccomp) not in ALLOWED_SECCOMP:
            found.append(
                f"Seccomp: container {name} (and the pod) set no RuntimeDefault or Localhost profile"
            )
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"Capabilities: container {name} does not drop ALL")
        added = set(capabilities.get("add", [])) - RESTRICTED_ADDED_CAPABILITIES
        if added:
            found.append(f"Capabilities: container {name} adds {sorted(added)}")
    return found
