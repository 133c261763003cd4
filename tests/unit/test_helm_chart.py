"""The Helm chart deploy/helm/s3csi, verified offline: rendered and linted by Helm's own library
(helm-python-sdk, no helm binary) for a matrix of values, every object and every example validated for each
Kubernetes version the chart supports, checkov's Kubernetes checks, the RBAC of each ServiceAccount as a
table, the pods against the Pod Security level they claim, the flags against s3csi's own parsers, and the
objects that exist twice (CRD, CSIDriver, node RBAC, the Mountpoint Pod namespace) against their other
copy."""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from packaging.version import Version

from s3csi.cli import build_parser
from s3csi.csi.main import build_settings as build_driver_settings
from s3csi.podmounter.podspec import MountpointPodSettings, mountpoint_namespace, mountpoint_pod
from s3csi.provisioning.plan import CapacityRange, plan_volume
from s3csi.volume.context import VolumeContext
from s3csi.volume.policy import (
    AccessMode,
    PolicyInput,
    check_bucket_type,
    check_staging_cache,
    effective_mount,
)
from tests.helm_support import CHART, NAMESPACE, ROOT, Obj, find, render, render_text
from tests.helm_support import objects as _objects
from tests.pod_security_support import violations

EXAMPLES = ROOT / "deploy" / "examples"

# The chart's values matrix. "aws_chart_values" are the values users bring from the AWS Mountpoint chart.
VALUE_SETS: dict[str, Obj] = {
    "defaults": {},
    "all_features": {
        "webhook": {"enabled": True},
        "awsAccessSecret": {"name": "aws-secret"},
        "s3": {"endpointUrl": "https://s3.example.com:9000", "region": "eu-west-1"},
        "logLevel": "debug",
        "logFormat": "json",
        "imagePullSecrets": ["registry-creds"],
        "node": {
            "podInfoOnMountCompat": {"enable": True},
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/s3"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
        },
        "controller": {"replicas": 3, "tolerations": [{"key": "infra", "operator": "Exists"}]},
        "metrics": {"podAnnotations": True, "podMonitor": {"enabled": True}},
    },
    "custom_kubelet": {"kubeletPath": "/var/lib/k0s/kubelet"},
    "aws_chart_values": {
        "node": {
            "serviceAccount": {"name": "s3-csi-driver-sa"},
            "podInfoOnMountCompat": {"enable": True},
            "tolerateAllTaints": True,
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "s3", "effect": "NoSchedule"}],
        },
        "awsAccessSecret": {"name": "aws-secret"},
        "s3": {"endpointUrl": "https://s3.scality.example", "region": "us-east-1"},
    },
}


def _chart_kube_versions() -> list[str]:
    """Every minor version kubernetes-validate ships that the chart's kubeVersion (>=1.31) admits."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.31.0-0", "update the lower bound below with Chart.yaml's kubeVersion"
    shipped = {v for v in kubernetes_validate.utils.all_versions()}
    return sorted((v for v in shipped if Version(v) >= Version("1.31")), key=Version)


KUBE_VERSIONS = _chart_kube_versions()


@functools.cache
def _rendered_text(name: str) -> dict[str, str]:
    return render_text(VALUE_SETS[name])


def rendered(name: str) -> list[Obj]:
    return _objects(_rendered_text(name))


def crds() -> list[Obj]:
    return [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*.yaml"))]


def container(workload: Obj, name: str) -> Obj:
    (found,) = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def workloads(objects: list[Obj]) -> Iterator[Obj]:
    yield from (o for o in objects if o["kind"] in ("Deployment", "DaemonSet"))


# -- Helm: lint, render --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_lint_is_clean(name: str) -> None:
    result = helm_python.lint(CHART, copy.deepcopy(VALUE_SETS[name]), strict=True, namespace=NAMESPACE)
    assert result["errors"] == []
    # INFO (severity 1) is only "icon is recommended": the project has no icon.
    assert [m for m in result["messages"] if m["severity"] > 1] == []


def test_schema_refuses_an_unknown_value_and_a_wrong_type() -> None:
    with pytest.raises(helm_python.HelmError, match="nodee"):
        render({"nodee": {"tolerateAllTaints": True}})
    with pytest.raises(helm_python.HelmError, match="tolerateAllTaints"):
        render({"node": {"tolerateAllTaints": "yes"}})
    with pytest.raises(helm_python.HelmError, match="logLevel"):
        render({"logLevel": "verbose"})


def _leaves(values: Obj, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in values.items():
        opaque = key in ("annotations", "nodeSelector") or (key == "resources" and "requests" in value)
        if isinstance(value, dict) and value and not opaque:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key)


# For each value of values.yaml, another value: rendering with it must change the output (no value is
# parsed and ignored). A value added to values.yaml without an entry here fails the coverage test.
CHANGED_VALUE: dict[str, Any] = {
    "image.repository": "registry.example/s3csi",
    "image.tag": "9.9.9",
    "image.pullPolicy": "Always",
    "imagePullSecrets": ["registry-creds"],
    "sidecars.nodeDriverRegistrar.image": "registry.example/registrar:v1",
    "sidecars.livenessProbe.image": "registry.example/livenessprobe:v1",
    "sidecars.provisioner.image": "registry.example/provisioner:v1",
    "kubeletPath": "/var/lib/k0s/kubelet",
    "logLevel": "debug",
    "logFormat": "json",
    "s3.endpointUrl": "https://s3.example.com",
    "s3.region": "eu-west-1",
    "awsAccessSecret.name": "aws-secret",
    "sts.audience": "minio",
    "node.serviceAccount.name": "s3-csi-driver-sa",
    "node.serviceAccount.annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"},
    "node.podInfoOnMountCompat.enable": True,
    "node.tolerateAllTaints": True,
    "node.tolerations": [{"key": "a", "operator": "Exists"}],
    "node.nodeSelector": {"kubernetes.io/os": "linux"},
    "node.resources": {"requests": {"cpu": "20m"}},
    "node.mountpointPodTimeout": 60,
    "controller.replicas": 3,
    "controller.serviceAccount.name": "ctl",
    "controller.resources": {"requests": {"cpu": "20m"}},
    "controller.nodeSelector": {"kubernetes.io/os": "linux"},
    "controller.tolerations": [{"key": "a", "operator": "Exists"}],
    "controller.provisioner.enabled": False,
    "controller.provisioner.serviceAccount.name": "prov",
    "controller.provisioner.serviceAccount.annotations": {"a": "b"},
    "controller.provisioner.resources": {"requests": {"cpu": "20m"}},
    "mountpointPods.namespace": "mounters",
    "mountpointPods.priorityClass.create": False,
    "mountpointPods.priorityClass.name": "other-class",
    "mountpointPods.priorityClass.value": 1000,
    "mountpointPods.resources.cpuRequest": "300m",
    "mountpointPods.resources.memoryRequest": "200Mi",
    "mountpointPods.resources.memoryLimit": "1Gi",
    "mountpointPods.metrics.enabled": True,
    "webhook.enabled": False,
    "webhook.replicas": 3,
    "webhook.certificateValidityDays": 30,
    "webhook.resources": {"requests": {"cpu": "20m"}},
    "webhook.mountPropagation": False,
    "metrics.enabled": False,
    "metrics.podAnnotations": True,
    "metrics.podMonitor.enabled": True,
}
# Values that only act together with another one.
NEEDS: dict[str, Obj] = {
    "webhook.replicas": {"webhook": {"enabled": True}},
    "webhook.certificateValidityDays": {"webhook": {"enabled": True}},
    "webhook.resources": {"webhook": {"enabled": True}},
    "webhook.mountPropagation": {"webhook": {"enabled": True}},
}


def _nested(path: str, value: Any) -> Obj:
    out: Obj = {}
    cursor = out
    *parents, last = path.split(".")
    for key in parents:
        cursor = cursor.setdefault(key, {})
    cursor[last] = value
    return out


def _merge(a: Obj, b: Obj) -> Obj:
    merged = copy.deepcopy(a)
    for key, value in b.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


def test_every_value_is_covered_by_the_change_table() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert {".".join(p) for p in _leaves(defaults)} == set(CHANGED_VALUE)


@pytest.mark.parametrize("path", sorted(CHANGED_VALUE))
def test_every_value_changes_the_output(path: str) -> None:
    base = NEEDS.get(path, {})
    before = render(base)
    after = render(_merge(base, _nested(path, CHANGED_VALUE[path])))

    def stable(objects: list[Obj]) -> str:
        kept = []
        for original in objects:
            obj = copy.deepcopy(original)
            if obj["kind"] == "Secret":
                # Random at each render, but for its validity period.
                cert = x509.load_pem_x509_certificate(base64.b64decode(obj["data"]["tls.crt"]))
                obj["data"] = {"validity": str(cert.not_valid_after_utc - cert.not_valid_before_utc)}
            for hook in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
                if obj["kind"] == hook:
                    for entry in obj["webhooks"]:
                        entry["clientConfig"].pop("caBundle")
            if obj["kind"] == "Deployment":
                obj["spec"]["template"]["metadata"].get("annotations", {}).pop("checksum/tls", None)
            kept.append(obj)
        return json.dumps(kept, sort_keys=True)

    assert stable(before) != stable(after), f"{path} changes nothing in the rendered chart"


# -- Kubernetes schemas --------------------------------------------------------------------------------------


# The fields of the Prometheus Operator's PodMonitor (monitoring.coreos.com/v1) the chart uses, as its CRD
# defines them; kubernetes-validate knows no CRD. Any other field fails, so a new one is added here knowingly.
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
}
POD_MONITOR_SCHEMA: Obj = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {"type": "object"},  # ObjectMeta: checked by kubernetes-validate below
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector"],
            "properties": {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                        },
                    },
                },
            },
        },
    },
}


def validate_pod_monitor(obj: Obj, version: str) -> None:
    jsonschema.validate(obj, POD_MONITOR_SCHEMA)
    # Its metadata is an ObjectMeta: checked as a ConfigMap's.
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}, version, strict=True
    )


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_rendered_object_validates(name: str, version: str) -> None:
    for obj in [*rendered(name), *crds()]:
        if obj["kind"] == "PodMonitor":
            validate_pod_monitor(obj, version)
        else:
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_pod_monitor_schema_refuses_what_the_crd_refuses() -> None:
    (monitor,) = [o for o in rendered("all_features") if o["kind"] == "PodMonitor"]
    for broken in (
        {**monitor, "spec": {**monitor["spec"], "podMetricsEndpoints": [{"port": 9810}]}},
        {**monitor, "spec": {**monitor["spec"], "podMetricsEndpoints": [{"scheme": "ftp"}]}},
        {**monitor, "spec": {**monitor["spec"], "selectors": {}}},
        {**monitor, "spec": {"podMetricsEndpoints": []}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_pod_monitor(broken, KUBE_VERSIONS[-1])


def _examples() -> list[Obj]:
    return [doc for p in sorted(EXAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(p.read_text()) if doc]


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_example_validates(version: str) -> None:
    examples = _examples()
    assert len(examples) >= 14
    for obj in examples:
        kubernetes_validate.validate(obj, version, strict=True)


def test_examples_name_the_charts_driver_and_claims_that_exist() -> None:
    examples = _examples()
    driver = find(rendered("defaults"), "CSIDriver", "s3.csi.s3csi.io")["metadata"]["name"]
    claims = {o["metadata"]["name"] for o in examples if o["kind"] == "PersistentVolumeClaim"}
    for obj in examples:
        if obj["kind"] == "PersistentVolume":
            assert obj["spec"]["csi"]["driver"] == driver
        if obj["kind"] == "StorageClass":
            assert obj["provisioner"] == driver
        if obj["kind"] == "Pod":
            for volume in obj["spec"]["volumes"]:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
            assert violations(obj) == [], obj["metadata"]["name"]


def test_examples_are_accepted_by_the_drivers_own_checks() -> None:
    # What NodePublishVolume and CreateVolume would decide for each example: no example is refused.
    for obj in _examples():
        if obj["kind"] == "PersistentVolume":
            volume = VolumeContext.parse(obj["spec"]["csi"]["volumeAttributes"])
            mode = {"ReadWriteMany": AccessMode.MULTI_NODE_MULTI_WRITER}.get(
                obj["spec"]["accessModes"][0], AccessMode.MULTI_NODE_READER_ONLY
            )
            mount = effective_mount(
                PolicyInput(
                    obj["spec"].get("mountOptions", ()),
                    "1001",
                    None,
                    volume.fs_user,
                    False,
                    mode,
                    volume.staged_writes,
                )
            )
            check_staging_cache(mount, volume.cache)
            check_bucket_type(mount, volume.bucket_name)
        if obj["kind"] == "StorageClass":
            plan_volume("pvc-1", obj.get("parameters") or {}, CapacityRange())


# -- one source: the chart against the other copies ----------------------------------------------------------


def test_crds_are_the_deploy_crds() -> None:
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    deploy = sorted(p.name for p in (ROOT / "deploy" / "crds").glob("*.yaml"))
    assert chart == deploy
    for name in chart:
        assert (CHART / "crds" / name).read_bytes() == (ROOT / "deploy" / "crds" / name).read_bytes()


def _without_chart_labels(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("labels", None)
    return obj


def test_csidriver_is_deploy_csidriver() -> None:
    deploy = yaml.safe_load((ROOT / "deploy" / "csidriver.yaml").read_text())
    assert (
        _without_chart_labels(find(rendered("defaults"), "CSIDriver", deploy["metadata"]["name"])) == deploy
    )


def test_node_rbac_is_deploy_node_rbac() -> None:
    deploy = [d for d in yaml.safe_load_all((ROOT / "deploy" / "node-rbac.yaml").read_text()) if d]
    objects = rendered("defaults")
    for want in deploy:
        got = find(objects, want["kind"], want["metadata"]["name"])
        assert _without_chart_labels(got) == want


@pytest.mark.parametrize("namespace", ["s3csi-mounters", "team-mounters"])
def test_mountpoint_namespace_is_the_builders(namespace: str) -> None:
    (got,) = [o for o in render({"mountpointPods": {"namespace": namespace}}) if o["kind"] == "Namespace"]
    # Kept on uninstall so running Mountpoint Pods survive it (docs/install.md).
    assert got["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert got == mountpoint_namespace(namespace)


def test_webhook_configurations_are_deploy_admissions_but_for_namespace_and_ca() -> None:
    deploy = {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all((ROOT / "deploy" / "admission" / "webhook.yaml").read_text())
        if d
    }
    objects = rendered("all_features")
    ca = find(objects, "Secret", "s3csi-webhook-tls")["data"]["ca.crt"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (want,) = [v for (k, _), v in deploy.items() if k == kind]
        got = copy.deepcopy(find(objects, kind, want["metadata"]["name"]))
        for entry in got["webhooks"]:
            assert entry["clientConfig"].pop("caBundle") == ca
            assert entry["clientConfig"]["service"].pop("namespace") == NAMESPACE
        want = copy.deepcopy(want)
        for entry in want["webhooks"]:
            entry["clientConfig"]["service"].pop("namespace")
        assert got["webhooks"] == want["webhooks"]


# -- RBAC as a table: any widening shows in review -----------------------------------------------------------

RBAC: dict[str, set[str]] = {
    "s3csi-node": {
        "cluster  core pods get",
        "cluster  core serviceaccounts get",
        "cluster  core events create",
        "cluster  core events patch",
        "cluster  s3csi.io mountpointpodattachments get",
        "cluster  s3csi.io mountpointpodattachments list",
        "cluster  s3csi.io mountpointpodattachments watch",
        "s3csi-mounters  core pods list",
        "s3csi-mounters  core pods watch",
    },
    "s3csi-controller": {
        "cluster  core pods list",
        "cluster  core pods watch",
        "cluster  core persistentvolumeclaims list",
        "cluster  core persistentvolumeclaims watch",
        "cluster  core persistentvolumes list",
        "cluster  core persistentvolumes watch",
        "cluster  core serviceaccounts list",
        "cluster  core serviceaccounts watch",
        "cluster  core secrets get",
        "cluster  core events create",
        "cluster  core events patch",
        *(
            f"cluster  s3csi.io mountpointpodattachments {verb}"
            for verb in ("get", "list", "watch", "create", "update", "delete")
        ),
        "cluster  s3csi.io mountpointpodattachments/status update",
        "s3csi-mounters  core pods create",
        "s3csi-mounters  core pods delete",
        # create cannot be limited to a name; get and update are, to the controller's own Lease.
        "kube-system  coordination.k8s.io leases create",
        "kube-system  coordination.k8s.io leases get s3csi-controller",
        "kube-system  coordination.k8s.io leases update s3csi-controller",
    },
    "s3csi-provisioner": {
        *(
            f"cluster  core persistentvolumes {verb}"
            for verb in ("get", "list", "watch", "create", "patch", "delete")
        ),
        *(f"cluster  core persistentvolumeclaims {verb}" for verb in ("get", "list", "watch", "update")),
        *(f"cluster  storage.k8s.io storageclasses {verb}" for verb in ("get", "list", "watch")),
        *(f"cluster  storage.k8s.io volumeattachments {verb}" for verb in ("get", "list", "watch")),
        *(f"cluster  core events {verb}" for verb in ("list", "watch", "create", "update", "patch")),
        "cluster  core secrets get",
        *(
            f"kube-system  coordination.k8s.io leases {verb}"
            for verb in ("get", "list", "watch", "create", "update", "patch", "delete")
        ),
    },
    # Mount propagation: which driver serves a pod's claims, get only.
    "s3csi-webhook": {
        "cluster  core persistentvolumeclaims get",
        "cluster  core persistentvolumes get",
        "cluster  storage.k8s.io storageclasses get",
    },
}


def rbac_table(objects: list[Obj]) -> dict[str, set[str]]:
    """``scope  group resource verb [name]`` per ServiceAccount: a rule limited by resourceNames names
    each object it allows."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    table: dict[str, set[str]] = {
        o["metadata"]["name"]: set() for o in objects if o["kind"] == "ServiceAccount"
    }
    for binding in objects:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], None if ref["kind"] == "ClusterRole" else namespace, ref["name"])]
        scope = namespace if binding["kind"] == "RoleBinding" else "cluster"
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["namespace"] == NAMESPACE
            for rule in role["rules"]:
                assert "nonResourceURLs" not in rule
                names = [f" {name}" for name in rule.get("resourceNames", [])] or [""]
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            assert "*" not in (group, resource, verb), f"wildcard in {ref['name']}"
                            table[subject["name"]].update(
                                f"{scope}  {group or 'core'} {resource} {verb}{name}" for name in names
                            )
    return table


def test_rbac_per_service_account() -> None:
    assert rbac_table(rendered("all_features")) == RBAC


@pytest.mark.parametrize("account", ["s3csi-node", "s3csi-controller"])
def test_rbac_is_deploy_rbac(account: str) -> None:
    # One source of truth: the chart grants each component exactly what its manifest in deploy/ grants.
    manifest = ROOT / "deploy" / f"{account.removeprefix('s3csi-')}-rbac.yaml"
    deploy = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    assert rbac_table(rendered("defaults"))[account] == rbac_table(deploy)[account] == RBAC[account]


def test_workloads_run_as_their_own_service_account() -> None:
    objects = rendered("all_features")
    accounts = {
        w["metadata"]["name"]: w["spec"]["template"]["spec"]["serviceAccountName"] for w in workloads(objects)
    }
    assert accounts == {name: name for name in RBAC}


# -- Pod Security --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pods_meet_the_pod_security_level_they_claim(name: str) -> None:
    claims = {}
    for workload in workloads(rendered(name)):
        template = workload["spec"]["template"]
        level = template["metadata"]["annotations"]["s3csi.io/pod-security"]
        claims[workload["metadata"]["name"]] = level
        found = violations({"spec": template["spec"]})
        if level == "restricted":
            assert found == [], workload["metadata"]["name"]
        else:
            # The node plugin needs privileged: the restricted checker must say why, or the claim is too wide.
            assert level == "privileged" and found, workload["metadata"]["name"]
    assert claims["s3csi-node"] == "privileged"
    assert {level for n, level in claims.items() if n != "s3csi-node"} == {"restricted"}


def test_mountpoint_pod_metrics_reach_the_controller() -> None:
    for objects, enabled in (
        (rendered("defaults"), False),
        (render(_nested("mountpointPods.metrics.enabled", True)), True),
    ):
        controller = find(objects, "Deployment", "s3csi-controller")
        args = build_parser("controller").parse_args(container(controller, "controller")["args"])
        assert args.mountpoint_pod_metrics is enabled


def test_the_controllers_mountpoint_pod_fits_the_charts_namespace() -> None:
    objects = rendered("defaults")
    controller = find(objects, "Deployment", "s3csi-controller")
    args = build_parser("controller").parse_args(container(controller, "controller")["args"])
    settings = MountpointPodSettings(
        image=args.image, namespace=args.mountpoint_namespace, priority_class_name=args.priority_class
    )
    pod = mountpoint_pod(
        settings, node_name="node-1", key="0" * 32, volume_id="v", persistent_volume_name="pv"
    )
    namespace = find(objects, "Namespace", args.mountpoint_namespace)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert violations(pod) == []
    assert (
        pod["spec"]["priorityClassName"]
        == find(objects, "PriorityClass", args.priority_class)["metadata"]["name"]
    )


# -- the flags are s3csi's own -------------------------------------------------------------------------------


def _parsed(workload: Obj, container_name: str) -> Any:
    c = container(workload, container_name)
    assert c["command"] == ["s3csi"]
    args = [a.replace("$(NODE_NAME)", "node-1").replace("$(POD_NAME)", "pod-1") for a in c["args"]]
    return build_parser(args[0]).parse_args(args)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_commands_parse_with_s3csis_parsers(name: str) -> None:
    values = _merge(yaml.safe_load((CHART / "values.yaml").read_text()), VALUE_SETS[name])
    objects = rendered(name)
    node = _parsed(find(objects, "DaemonSet", "s3csi-node"), "s3csi-node")
    assert (node.mode, node.runtime, node.kubelet_dir) == ("node", "kubernetes", values["kubeletPath"])
    assert node.mountpoint_namespace == values["mountpointPods"]["namespace"]
    assert (
        node.sts_audience
        == find(objects, "CSIDriver", "s3.csi.s3csi.io")["spec"]["tokenRequests"][0]["audience"]
    )
    assert node.s3_endpoint_url == (values["s3"]["endpointUrl"] or None)
    assert node.s3_region == (values["s3"]["region"] or None)
    assert node.debug == (values["logLevel"] == "debug")
    # The driver's own validation of its flags (endpoint, node id, kubelet dir) accepts them too.
    assert build_driver_settings(node, {}).kubelet_dir == values["kubeletPath"]
    controller = _parsed(find(objects, "Deployment", "s3csi-controller"), "controller")
    assert controller.lease_namespace == NAMESPACE
    assert controller.mountpoint_namespace == node.mountpoint_namespace
    provisioner = _parsed(find(objects, "Deployment", "s3csi-provisioner"), "s3csi-driver")
    assert (provisioner.mode, provisioner.kube_api) == ("controller", "off")
    assert provisioner.s3_endpoint_url == node.s3_endpoint_url
    assert build_driver_settings(provisioner, {}).socket_path == "/csi/csi.sock"
    if values["webhook"]["enabled"]:
        webhook = _parsed(find(objects, "Deployment", "s3csi-webhook"), "webhook")
        assert str(webhook.cert).startswith("/etc/s3csi/tls/")


# The s3csi container of each workload and the port of its metrics (docs/observability.md).
METRICS_PORTS = {
    ("DaemonSet", "s3csi-node", "s3csi-node"): 9810,
    ("Deployment", "s3csi-provisioner", "s3csi-driver"): 9810,
    ("Deployment", "s3csi-controller", "controller"): 9811,
    ("Deployment", "s3csi-webhook", "webhook"): 9812,
}


def test_metrics_ports_annotations_and_the_pod_monitor_agree_with_the_flags() -> None:
    objects = rendered("all_features")
    (monitor,) = [o for o in objects if o["kind"] == "PodMonitor"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "scheme": "http"}
    ]
    for (kind, name, container_name), port in METRICS_PORTS.items():
        workload = find(objects, kind, name)
        template = workload["spec"]["template"]
        assert _parsed(workload, container_name).metrics_address == f":{port}"
        ports = {p["name"]: p["containerPort"] for p in container(workload, container_name)["ports"]}
        assert ports["metrics"] == port
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert selector.items() <= template["metadata"]["labels"].items()
        assert workload["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
    # The Mountpoint Pods, in their own namespace, are selected as well.
    controller = _parsed(find(objects, "Deployment", "s3csi-controller"), "controller")
    pod = mountpoint_pod(
        MountpointPodSettings(image=controller.image, namespace=controller.mountpoint_namespace),
        node_name="node-1",
        key="k",
        volume_id="v",
        persistent_volume_name="pv",
    )
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert controller.mountpoint_namespace in monitor["spec"]["namespaceSelector"]["matchNames"]
    # Defaults: endpoints, no annotations, no PodMonitor.
    defaults = rendered("defaults")
    assert "PodMonitor" not in {o["kind"] for o in defaults}
    for kind, name, _ in METRICS_PORTS:
        assert "prometheus.io/scrape" not in json.dumps(find(defaults, kind, name))


def test_metrics_disabled_serves_no_endpoint_but_the_controllers_health() -> None:
    objects = render({"metrics": {"enabled": False, "podAnnotations": True, "podMonitor": {"enabled": True}}})
    assert "PodMonitor" not in {o["kind"] for o in objects}
    for (kind, name, container_name), port in METRICS_PORTS.items():
        workload = find(objects, kind, name)
        ports = {p["name"] for p in container(workload, container_name).get("ports", [])}
        address = _parsed(workload, container_name).metrics_address
        assert "prometheus.io/scrape" not in json.dumps(workload)
        if name == "s3csi-controller":  # its /healthz answers its probes
            assert (address, "metrics" in ports) == (f":{port}", True)
            assert container(workload, container_name)["livenessProbe"]["httpGet"]["port"] == "metrics"
        else:
            assert (address, "metrics" in ports) == ("", False)


def test_the_provisioners_csi_plugin_is_probed_through_the_liveness_probe_sidecar() -> None:
    provisioner = find(rendered("defaults"), "Deployment", "s3csi-provisioner")
    sidecar = container(provisioner, "liveness-probe")["args"]
    assert "--csi-address=/csi/csi.sock" in sidecar and "--health-port=9808" in sidecar
    driver = container(provisioner, "s3csi-driver")
    assert {p["name"]: p["containerPort"] for p in driver["ports"]}["healthz"] == 9808
    assert driver["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    # Probe needs S3 in controller mode: an S3 outage makes the pod unready, it never restarts it.
    assert "livenessProbe" not in driver
    # Probe's S3 check may take up to 3 s: the sidecar waits longer for it, and kubelet for the sidecar.
    assert "--probe-timeout=5s" in sidecar and driver["readinessProbe"]["timeoutSeconds"] > 5


def _mount_paths(workload: Obj, container_name: str) -> dict[str, Obj]:
    return {m["mountPath"]: m for m in container(workload, container_name)["volumeMounts"]}


@pytest.mark.parametrize("name", ["defaults", "custom_kubelet"])
def test_node_plugin_mounts_kubelets_directory_bidirectionally(name: str) -> None:
    kubelet = VALUE_SETS[name].get("kubeletPath", "/var/lib/kubelet")
    node = find(rendered(name), "DaemonSet", "s3csi-node")
    spec = node["spec"]["template"]["spec"]
    context = container(node, "s3csi-node")["securityContext"]
    # The image's default user is 1000: the node plugin must ask for root to mount.
    assert (context["privileged"], context["runAsUser"], context["runAsGroup"]) == (True, 0, 0)
    assert spec["priorityClassName"] == "system-node-critical"
    mounts = _mount_paths(node, "s3csi-node")
    assert mounts[kubelet]["mountPropagation"] == "Bidirectional"
    assert {"/dev", "/csi"} <= set(mounts)
    host_paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"]}
    assert host_paths["kubelet-dir"] == kubelet
    assert host_paths["plugin-dir"] == f"{kubelet}/plugins/s3.csi.s3csi.io"
    assert host_paths["registration-dir"] == f"{kubelet}/plugins_registry"
    registrar = container(node, "node-driver-registrar")["args"]
    assert f"--kubelet-registration-path={kubelet}/plugins/s3.csi.s3csi.io/csi.sock" in registrar


# -- the values users bring from the AWS chart ---------------------------------------------------------------


def test_aws_chart_values_mean_what_they_meant() -> None:
    objects = rendered("aws_chart_values")
    node = find(objects, "DaemonSet", "s3csi-node")
    spec = node["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "s3-csi-driver-sa"
    assert find(objects, "ServiceAccount", "s3-csi-driver-sa")["metadata"]["namespace"] == NAMESPACE
    # tolerateAllTaints wins over the list.
    assert spec["tolerations"] == [{"operator": "Exists"}]
    env = {e["name"]: e for e in container(node, "s3csi-node")["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {"secretKeyRef": {"name": "aws-secret", "key": "key_id"}}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "aws-secret", "key": "access_key"}
    }
    annotations = find(objects, "CSIDriver", "s3.csi.s3csi.io")["metadata"]["annotations"]
    assert annotations == {
        "helm.sh/hook": "pre-install,pre-upgrade",
        "helm.sh/hook-delete-policy": "before-hook-creation",
    }


def test_tolerations_without_tolerate_all_taints() -> None:
    toleration = {"key": "dedicated", "operator": "Equal", "value": "s3", "effect": "NoSchedule"}
    node = find(render({"node": {"tolerations": [toleration]}}), "DaemonSet", "s3csi-node")
    assert node["spec"]["template"]["spec"]["tolerations"] == [toleration]
    default = find(rendered("defaults"), "DaemonSet", "s3csi-node")
    assert "tolerations" not in default["spec"]["template"]["spec"]
    assert "AWS_ACCESS_KEY_ID" not in json.dumps(default)


def test_webhook_certificate_is_for_its_service() -> None:
    objects = rendered("all_features")
    secret = find(objects, "Secret", "s3csi-webhook-tls")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"s3csi-webhook.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)
    cert.verify_directly_issued_by(ca)


# -- checkov -------------------------------------------------------------------------------------------------


def checkov() -> str:
    """checkov's own venv (make test builds it from requirements/checkov.lock and names it in S3CSI_CHECKOV):
    it pins boto3 and packaging far below what s3csi uses, so it cannot share the test venv."""
    path = os.environ.get("S3CSI_CHECKOV", "/opt/s3csi/checkov/bin/checkov")
    assert os.access(path, os.X_OK), f"checkov not found at {path}: run `make checkov` (or `make test`)"
    return path


@pytest.mark.parametrize("name", VALUE_SETS)
def test_checkov_passes_or_each_skip_is_justified(name: str, tmp_path: Path) -> None:
    for path, text in _rendered_text(name).items():
        if path.endswith(".yaml"):
            (tmp_path / path.replace("/", "_")).write_text(text)
    run = subprocess.run(
        [checkov(), "--directory", str(tmp_path), "--framework", "kubernetes", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]  # 1: some check failed, shown below
    report = json.loads(run.stdout)["results"]
    failed = sorted(f"{f['check_id']} {f['resource']}" for f in report["failed_checks"])
    assert failed == []
    assert report["parsing_errors"] == []
    # checkov really checked the workloads: each of its ~30 pod checks ran on several objects.
    assert len(report["passed_checks"]) > 100
    assert report["skipped_checks"]
    for skipped in report["skipped_checks"]:
        assert skipped["check_result"].get("suppress_comment", "").strip(), skipped["check_id"]
    # No stale skip: each one declared in a template suppresses a check that would otherwise fail.
    declared = {
        (w["metadata"]["name"], value.split("=", 1)[0])
        for w in workloads(rendered(name))
        for key, value in w["metadata"].get("annotations", {}).items()
        if key.startswith("checkov.io/skip")
    }
    used = {(s["resource"].split(".")[2], s["check_id"]) for s in report["skipped_checks"]}
    assert declared == used
