"""deploy/admission/: every manifest against the Kubernetes schemas, and the CEL of both forms on the
webhook's table of cases.

The API server is the one part this machine lacks, so these tests play its part: label selectors, then
matchConditions (CEL, evaluated with cel-python), then the webhook over real HTTPS or the policy's CEL
mutation, patches applied with jsonpatch. Both forms must give the same pod, and the exact patches of the
webhook table.

What cel-python cannot do, and so is not checked here: Kubernetes' CEL type-checking against the OpenAPI
schema (the API server does it when the policy is created). ``Object.spec.securityContext{…}`` and
``JSONPatch{…}`` are evaluated by a stand-in type that builds plain maps; the field names they use are
checked instead by validating every resulting pod as a core/v1 Pod (strict: unknown fields fail).
"""

from __future__ import annotations

import base64
import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonpatch
import kubernetes_validate
import pytest
import yaml
from celpy import celtypes

from s3csi.admission.labels import MUTATE_PATHS, NAMESPACE_DEFAULTS, VALIDATE_NAMESPACES_PATH
from s3csi.admission.server import MOUNT_PROPAGATION_PATH
from tests.admission_cases import NAMESPACE_CASES, POD_CASES, namespace
from tests.admission_support import CertificateAuthority, WebhookProcess, admission_review, post

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "admission"
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def documents(name: str) -> list[dict[str, Any]]:
    with (DEPLOY / name).open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def the(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


WEBHOOK = documents("webhook.yaml")
POLICIES = documents("policies.yaml")
(MUTATING_WEBHOOKS,) = the(WEBHOOK, "MutatingWebhookConfiguration")
# The namespace-default entries, which the policies of policies.yaml mirror; the mount-propagation entry looks
# claims up in the API, which no policy can (tests/integration/test_admission_propagation.py covers it).
NAMESPACE_DEFAULT_WEBHOOKS = [
    entry
    for entry in MUTATING_WEBHOOKS["webhooks"]
    if entry["clientConfig"]["service"]["path"] in MUTATE_PATHS
]
(VALIDATING_WEBHOOKS,) = the(WEBHOOK, "ValidatingWebhookConfiguration")
(NAMESPACE_POLICY,) = the(POLICIES, "ValidatingAdmissionPolicy")


# --- the schemas ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in DEPLOY.glob("*.yaml")))
def test_every_manifest_is_valid_for_the_newest_kubernetes(name: str) -> None:
    assert tuple(map(int, KUBERNETES_VERSION.split(".")[:2])) >= (1, 36), (
        "MutatingAdmissionPolicy v1 needs Kubernetes 1.36 schemas"
    )
    docs = documents(name)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_what_kubernetes_would() -> None:
    policy = copy.deepcopy(the(POLICIES, "MutatingAdmissionPolicy")[0])
    policy["spec"]["mutations"][0]["jsonpatch"] = policy["spec"]["mutations"][0].pop("jsonPatch")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)


def test_the_policies_use_the_newest_admissionregistration_version() -> None:
    for doc in POLICIES:
        assert doc["apiVersion"] == "admissionregistration.k8s.io/v1", doc["metadata"]["name"]


# --- the path contract ----------------------------------------------------------------------------


def selected_value(selector: dict[str, Any]) -> tuple[str, str]:
    ((label, value),) = selector["matchLabels"].items()
    return label, value


def test_one_webhook_entry_per_label_value_calls_the_path_naming_it() -> None:
    entries = {
        entry["clientConfig"]["service"]["path"]: selected_value(entry["namespaceSelector"])
        for entry in NAMESPACE_DEFAULT_WEBHOOKS
    }
    assert entries == {path: (default.label, value) for path, (default, value) in MUTATE_PATHS.items()}
    others = [
        e["clientConfig"]["service"]["path"]
        for e in MUTATING_WEBHOOKS["webhooks"]
        if e not in NAMESPACE_DEFAULT_WEBHOOKS
    ]
    assert others == [MOUNT_PROPAGATION_PATH]
    for entry in MUTATING_WEBHOOKS["webhooks"]:
        assert entry["failurePolicy"] == "Ignore" and entry["sideEffects"] == "None"
        assert entry["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
    (entry,) = VALIDATING_WEBHOOKS["webhooks"]
    assert entry["clientConfig"]["service"]["path"] == VALIDATE_NAMESPACES_PATH
    assert entry["failurePolicy"] == "Fail"


def test_one_policy_binding_per_label_value() -> None:
    bound = {
        binding["spec"]["policyName"]: selected_value(binding["spec"]["matchResources"]["namespaceSelector"])
        for binding in the(POLICIES, "MutatingAdmissionPolicyBinding")
    }
    assert sorted(bound.values()) == sorted((d.label, v) for d, v in MUTATE_PATHS.values())
    assert sorted(bound) == sorted(p["metadata"]["name"] for p in the(POLICIES, "MutatingAdmissionPolicy"))
    assert all("paramKind" not in p["spec"] for p in the(POLICIES, "MutatingAdmissionPolicy"))


def test_the_webhooks_api_access_is_get_on_claims_volumes_and_storage_classes() -> None:
    # Mount propagation looks up which driver serves a pod's claims; the namespace defaults need no API.
    (account,) = the(WEBHOOK, "ServiceAccount")
    (deployment,) = the(WEBHOOK, "Deployment")
    assert account["automountServiceAccountToken"] is False  # only the webhook's pod mounts its token
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    (role,) = the(WEBHOOK, "ClusterRole")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["persistentvolumeclaims", "persistentvolumes"], "verbs": ["get"]},
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get"]},
    ]
    (binding,) = the(WEBHOOK, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    assert not {"Role", "RoleBinding"} & {d["kind"] for d in WEBHOOK}


# --- playing the API server ---------------------------------------------------------------------------------


class TypeName(celtypes.MapType):
    """Stands in for a Kubernetes CEL object type (``Object.spec.securityContext``, ``JSONPatch``):
    selecting a field names a nested type, and ``Type{field: value}`` builds a map of the fields."""

    def __init__(self, name: str) -> None:
        super().__init__({})
        self.name = name

    def __getitem__(self, key: Any) -> TypeName:
        return TypeName(f"{self.name}.{key}")

    def __call__(self, fields: Any) -> celtypes.MapType:
        return celtypes.MapType(fields or {})

    def __hash__(self) -> int:
        return hash(self.name)


CEL = celpy.Environment()


@functools.cache
def program(expression: str) -> celpy.Runner:
    return CEL.program(CEL.compile(expression))


def evaluate(expression: str, obj: dict[str, Any]) -> Any:
    activation = {
        "object": celpy.json_to_cel(obj),
        "Object": TypeName("Object"),
        "JSONPatch": TypeName("JSONPatch"),
    }
    result = program(expression).evaluate(activation)
    assert not isinstance(result, celpy.CELEvalError), (expression, result)
    return plain(result)


def plain(value: Any) -> Any:
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, celtypes.StringType):
        return str(value)
    return value


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for requirement in selector.get("matchExpressions", []):
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def conditions_hold(conditions: list[dict[str, Any]], obj: dict[str, Any]) -> bool:
    return all(evaluate(condition["expression"], obj) is True for condition in conditions)


def with_policies(pod: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    policies = {p["metadata"]["name"]: p for p in the(POLICIES, "MutatingAdmissionPolicy")}
    for binding in the(POLICIES, "MutatingAdmissionPolicyBinding"):
        if not selects(binding["spec"]["matchResources"]["namespaceSelector"], labels):
            continue
        spec = policies[binding["spec"]["policyName"]]["spec"]
        if conditions_hold(spec["matchConditions"], pod):
            for mutation in spec["mutations"]:
                assert mutation["patchType"] == "JSONPatch"
                pod = jsonpatch.apply_patch(pod, evaluate(mutation["jsonPatch"]["expression"], pod))
    return pod


def with_webhooks(pod: dict[str, Any], labels: dict[str, str], webhook: WebhookProcess) -> dict[str, Any]:
    for entry in NAMESPACE_DEFAULT_WEBHOOKS:
        if selects(entry["namespaceSelector"], labels) and conditions_hold(entry["matchConditions"], pod):
            body = json.dumps(admission_review(pod, kind="Pod")).encode()
            conn = webhook.connect()
            try:
                response = post(conn, entry["clientConfig"]["service"]["path"], body).review()["response"]
            finally:
                conn.close()
            assert response["allowed"] is True
            if "patch" in response:
                pod = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    return pod


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookProcess]:
    directory = tmp_path_factory.mktemp("webhook")
    process = WebhookProcess(directory, CertificateAuthority.create(directory))
    try:
        yield process
    finally:
        assert process.terminate() == 0, process.log()


@pytest.mark.parametrize("case", POD_CASES, ids=lambda c: c.name)
def test_the_policy_cel_gives_the_webhook_table_patches(case: Any) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in the(POLICIES, "MutatingAdmissionPolicy")}
    for binding in the(POLICIES, "MutatingAdmissionPolicyBinding"):
        label, value = selected_value(binding["spec"]["matchResources"]["namespaceSelector"])
        (path,) = [p for p, (d, v) in MUTATE_PATHS.items() if (d.label, v) == (label, value)]
        spec = policies[binding["spec"]["policyName"]]
        patch: list[Any] = []
        if conditions_hold(spec["matchConditions"], case.pod):
            (mutation,) = spec["mutations"]
            patch = evaluate(mutation["jsonPatch"]["expression"], case.pod)
        assert patch == case.patches[path], path


@pytest.mark.parametrize(
    "labels", [c.labels or {} for c in NAMESPACE_CASES], ids=[c.name for c in NAMESPACE_CASES]
)
def test_webhooks_and_policies_admit_the_same_pods(webhook: WebhookProcess, labels: dict[str, str]) -> None:
    (case,) = [c for c in NAMESPACE_CASES if (c.labels or {}) == labels]
    for pod_case in POD_CASES:
        pod = pod_case.pod
        expected = copy.deepcopy(pod)
        own = pod["spec"].get("securityContext", {})
        for field, value in case.defaults.items():
            if field not in own:
                expected["spec"].setdefault("securityContext", {})[field] = value
        assert with_webhooks(pod, labels, webhook) == expected, pod_case.name
        assert with_policies(pod, labels) == expected, pod_case.name
        kubernetes_validate.validate(expected, KUBERNETES_VERSION, strict=True)


def policy_violations(obj: dict[str, Any]) -> list[str]:
    return [
        evaluate(validation["messageExpression"], obj)
        for validation in NAMESPACE_POLICY["spec"]["validations"]
        if evaluate(validation["expression"], obj) is not True
    ]


@pytest.mark.parametrize("case", NAMESPACE_CASES, ids=lambda c: c.name)
def test_namespace_validation_webhook_and_policy_agree(webhook: WebhookProcess, case: Any) -> None:
    obj = namespace(case.labels)
    assert policy_violations(obj) == list(case.violations)
    (entry,) = VALIDATING_WEBHOOKS["webhooks"]
    if conditions_hold(entry["matchConditions"], obj):
        conn = webhook.connect()
        try:
            body = json.dumps(admission_review(obj, kind="Namespace")).encode()
            response = post(conn, entry["clientConfig"]["service"]["path"], body).review()["response"]
        finally:
            conn.close()
        assert response["allowed"] is (not case.violations)
        assert response.get("status", {}).get("message", "") == "; ".join(case.violations)
    else:
        # Namespaces without the labels never reach the webhook, so an outage cannot block them.
        assert not case.violations
        assert not any(d.label in (case.labels or {}) for d in NAMESPACE_DEFAULTS)
    for validation in NAMESPACE_POLICY["spec"]["validations"]:
        assert validation["reason"] == "Invalid"
