"""tests/containers.py: the pod-spec subset s3csi uses as podman flags; every other field refused."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from s3csi.podmounter.podspec import MountpointPodSettings, mountpoint_pod
from tests.containers import Kubelet, ServiceAccount, Untranslated, expand, podman_run

KUBELET = Path("/var/lib/kubelet")
COMM = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~empty-dir/comm"


def mountpoint() -> dict[str, Any]:
    pod = mountpoint_pod(
        MountpointPodSettings(image="localhost/s3csi:test"),
        node_name="node-1",
        key="k",
        volume_id="bucket",
        persistent_volume_name="pv",
    )
    pod["metadata"]["uid"] = "uid-1"
    return pod


def workload(**context: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": "uid-2"},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": context,
            "containers": [
                {
                    "name": "app",
                    "image": "localhost/s3csi:test",
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c"],
                    "args": ["id"],
                    "env": [{"name": "A", "value": "b c"}],
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data", "mountPropagation": "HostToContainer"},
                        {"name": "kubelet", "mountPath": "/k", "mountPropagation": "Bidirectional"},
                        {"name": "cfg", "mountPath": "/cfg", "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": "data", "hostPath": {"path": "/srv/target"}},
                {"name": "kubelet", "hostPath": {"path": "/var/lib/kubelet", "type": "Directory"}},
                {"name": "cfg", "hostPath": {"path": "/etc/cfg"}},
            ],
        },
    }


def test_the_mountpoint_pod_runs_as_its_restricted_security_context_says() -> None:
    assert podman_run(mountpoint(), name="mp", kubelet_dir=KUBELET) == [
        *("podman", "--runtime", "runc", "run", "--rm", "--name", "mp"),
        *("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--network", "host"),
        *("--pull", "missing"),
        *("--user", "1000:1000", "--group-add", "1000"),
        *("--security-opt", "no-new-privileges", "--cap-drop", "ALL", "--read-only"),
        *("--memory", str(512 * 2**20)),
        *("--volume", f"{COMM}:/comm:rw,rprivate"),
        *("--entrypoint", '["s3csi", "mounter", "--comm-dir", "/comm"]', "localhost/s3csi:test"),
    ]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, []),
        ({"runAsUser": 1001, "runAsGroup": 1001}, ["--user", "1001:1001"]),
        ({"runAsUser": 1001}, ["--user", "1001:0"]),
        (
            {"runAsUser": 1001, "runAsGroup": 1001, "fsGroup": 2000, "supplementalGroups": [3000, 2000]},
            ["--user", "1001:1001", "--group-add", "2000", "--group-add", "3000"],
        ),
        ({"runAsUser": 5, "runAsNonRoot": True}, ["--user", "5:0"]),
        ({"seccompProfile": {"type": "RuntimeDefault"}}, []),
        ({"seccompProfile": {"type": "Unconfined"}}, ["--security-opt", "seccomp=unconfined"]),
    ],
)
def test_pod_security_contexts(context: dict[str, Any], expected: list[str]) -> None:
    argv = podman_run(workload(**context), name="w", kubelet_dir=KUBELET)
    start = argv.index("never") + 1
    assert argv[start : argv.index("--volume")] == expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"privileged": True}, ["--privileged"]),
        ({"privileged": False, "allowPrivilegeEscalation": True}, []),
        (
            {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}},
            ["--cap-drop", "ALL", "--cap-add", "SYS_ADMIN"],
        ),
        ({"readOnlyRootFilesystem": True}, ["--read-only"]),
        ({"runAsUser": 0}, ["--user", "0:0"]),
    ],
)
def test_container_security_contexts(context: dict[str, Any], expected: list[str]) -> None:
    pod = workload()
    pod["spec"]["containers"][0]["securityContext"] = context
    argv = podman_run(pod, name="w", kubelet_dir=KUBELET)
    assert argv[argv.index("never") + 1 : argv.index("--volume")] == expected


def test_volumes_env_command_and_args() -> None:
    argv = podman_run(workload(), name="w", kubelet_dir=KUBELET)
    assert argv[argv.index("--volume") :] == [
        *("--volume", "/srv/target:/data:rw,rslave"),
        *("--volume", "/var/lib/kubelet:/k:rw,rshared"),
        *("--volume", "/etc/cfg:/cfg:ro,rprivate"),
        *("--env", "A=b c"),
        *("--entrypoint", '["sh", "-c"]', "localhost/s3csi:test", "id"),
    ]


def _set(pod: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(pod)
    *parents, last = path.split(".")
    node: Any = changed
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("spec.hostPID", True, "spec: hostPID not translated"),
        ("spec.initContainers", [], "spec: initContainers not translated"),
        ("spec.containers.0.ports", [{"containerPort": 1, "hostIP": "::"}], "port: hostIP not translated"),
        ("spec.containers.0.workingDir", "/", "container mounter: workingDir not translated"),
        ("spec.containers.0.securityContext.procMount", "Unmasked", "procMount not translated"),
        ("spec.containers.0.securityContext.capabilities.keep", [], "capabilities: keep not translated"),
        ("spec.containers.0.securityContext.fsGroup", 5, "securityContext: fsGroup not translated"),
        ("spec.securityContext.sysctls", [], "spec.securityContext: sysctls not translated"),
        ("spec.securityContext.seccompProfile", {"type": "Localhost"}, "'Localhost' not translated"),
        ("spec.securityContext.runAsUser", 0, "runAsNonRoot needs a numeric non-zero runAsUser, got 0"),
        ("spec.containers.0.volumeMounts.0.subPath", "x", "volumeMount comm: subPath not translated"),
        ("spec.containers.0.volumeMounts.0.name", "other", "volumeMount other: no such volume"),
        ("spec.containers.0.volumeMounts.0.mountPropagation", "Shared", "'Shared' not translated"),
        ("spec.volumes.0.emptyDir", {"medium": "Memory", "x": 1}, "emptyDir: x not translated"),
        ("spec.volumes.0", {"name": "comm", "secret": {}}, "volume comm: secret not translated"),
        (
            "spec.containers.0.env",
            [{"name": "A", "valueFrom": {"configMapKeyRef": {}}}],
            "env A: valueFrom configMapKeyRef not translated",
        ),
        (
            "spec.containers.0.env",
            [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "fieldRef 'status.podIP' not translated",
        ),
        (
            "spec.containers.0.env",
            [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "env A: no Secret 's' with key 'k'",
        ),
        ("spec.enableServiceLinks", True, "service links"),
        ("spec.containers.0.imagePullPolicy", "Always", "'Always' needs a registry"),
        ("spec.containers.0.resources.limits", {"cpu": "1"}, "resources.limits: cpu not translated"),
        ("spec.automountServiceAccountToken", True, "service account token"),
        ("spec.containers.0.name", "other", "exactly one container must be chosen, found 0"),
    ],
)
def test_a_field_not_translated_is_refused(path: str, value: Any, message: str) -> None:
    with pytest.raises(Untranslated) as raised:
        podman_run(_set(mountpoint(), path, value), name="mp", kubelet_dir=KUBELET, container="mounter")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--node-id=$(NODE)", "--node-id=node-1"),
        ("$(NODE)-$(NODE)", "node-1-node-1"),
        ("$(UNSET)", "$(UNSET)"),
        ("$$(NODE)", "$(NODE)"),
        ("a$$b", "a$b"),
        ("$NODE", "$NODE"),
    ],
)
def test_variable_references_expand_as_kubernetes_does(text: str, expected: str) -> None:
    assert expand(text, {"NODE": "node-1"}) == expected


SERVICE_ACCOUNT = ServiceAccount(Path("/tmp/sa"), "127.0.0.1", 6443)
KUBELET_OF_NODE = Kubelet(
    "node-1",
    secrets={"aws": {"key_id": "AK", "access_key": "SK"}},
    host_paths={"/var/lib/s3csi": Path("/t/state"), "/var/lib/kubelet": Path("/t/kubelet")},
    service_account=SERVICE_ACCOUNT,
    service_links={},
)


def node_plugin(**container: Any) -> dict[str, Any]:
    """The shape of the chart's node plugin pod: what kubelet fills in from outside the spec."""
    return {
        "metadata": {"uid": "uid-3", "name": "s3csi-node-x", "namespace": "kube-system"},
        "spec": {
            "serviceAccountName": "s3csi-node",
            "terminationGracePeriodSeconds": 40,
            "containers": [
                {
                    "name": "s3csi-node",
                    "image": "localhost/s3csi:test",
                    "imagePullPolicy": "Never",
                    "command": ["s3csi"],
                    "args": ["--node-id=$(NODE_NAME)", "--ns=$(NS)", "--x=$$(NODE_NAME)"],
                    "env": [
                        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "aws", "key": "key_id"}}},
                        {
                            "name": "GONE",
                            "valueFrom": {"secretKeyRef": {"name": "no", "key": "k", "optional": True}},
                        },
                        {"name": "ID", "value": "at-$(NODE_NAME)"},
                    ],
                    "ports": [{"name": "healthz", "containerPort": 9808}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "healthz"}},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "healthz"}},
                    "volumeMounts": [
                        {"name": "state", "mountPath": "/var/lib/s3csi", "mountPropagation": "Bidirectional"},
                        {"name": "plugin", "mountPath": "/csi"},
                        {"name": "dev", "mountPath": "/dev"},
                    ],
                    **container,
                }
            ],
            "volumes": [
                {"name": "state", "hostPath": {"path": "/var/lib/s3csi", "type": "DirectoryOrCreate"}},
                {"name": "plugin", "hostPath": {"path": "/var/lib/kubelet/plugins/d"}},
                {"name": "dev", "hostPath": {"path": "/dev", "type": "Directory"}},
            ],
        },
    }


def test_what_kubelet_supplies_fields_secrets_token_and_host_paths() -> None:
    argv = podman_run(node_plugin(), name="n", kubelet_dir=KUBELET, kubelet=KUBELET_OF_NODE)
    assert argv[argv.index("--network") :] == [
        *("--network", "host", "--stop-timeout", "40", "--pull", "never"),
        *("--volume", "/t/state:/var/lib/s3csi:rw,rshared"),
        *("--volume", "/t/kubelet/plugins/d:/csi:rw,rprivate"),
        *("--volume", "/dev:/dev:rw,rprivate"),
        *("--volume", "/tmp/sa:/var/run/secrets/kubernetes.io/serviceaccount:ro,rprivate"),
        *("--env", "KUBERNETES_SERVICE_HOST=127.0.0.1", "--env", "KUBERNETES_SERVICE_PORT=6443"),
        *("--env", "NODE_NAME=node-1", "--env", "NS=kube-system", "--env", "KEY=AK"),
        *("--env", "ID=at-node-1"),
        *("--entrypoint", '["s3csi"]', "localhost/s3csi:test"),
        *("--node-id=node-1", "--ns=kube-system", "--x=$(NODE_NAME)"),
    ]


def test_the_pods_own_node_name_wins_over_the_kubelets() -> None:
    pod = node_plugin()
    pod["spec"]["nodeName"] = "node-9"
    argv = podman_run(pod, name="n", kubelet_dir=KUBELET, kubelet=KUBELET_OF_NODE)
    assert "NODE_NAME=node-9" in argv and "--node-id=node-9" in argv


@pytest.mark.parametrize(
    ("kubelet", "message"),
    [
        (None, "service links"),
        (Kubelet("node-1", service_links={}), "service account token"),
        (
            Kubelet("node-1", service_links={}, service_account=SERVICE_ACCOUNT),
            "env KEY: no Secret 'aws' with key 'key_id'",
        ),
    ],
)
def test_what_kubelet_must_supply_is_refused_without_it(kubelet: Kubelet | None, message: str) -> None:
    with pytest.raises(Untranslated, match=re.escape(message)):
        podman_run(node_plugin(), name="n", kubelet_dir=KUBELET, kubelet=kubelet)
