"""The admission decisions as pure functions: tables, plus hypothesis for "never raises on any JSON".

Hostile bodies against the parser: test_admission_fuzz.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3csi.admission.labels import FSGROUP_CHANGE_POLICY, MUTATE_PATHS, SELINUX_CHANGE_POLICY
from s3csi.admission.namespaces import label_violations, validate_namespace
from s3csi.admission.pods import default_pod, pod_patch
from s3csi.admission.review import AdmissionRequest, escape_pointer_token, json_pointer, parse_review
from s3csi.errors import InvalidArgument
from tests.admission_cases import MUTATE_PATHS as CONTRACT_PATHS
from tests.admission_cases import NAMESPACE_CASES, POD_CASES, namespace, pod
from tests.admission_support import admission_review


def request_of(obj: object, kind: str = "Pod", **fields: Any) -> AdmissionRequest:
    return parse_review(json.dumps(admission_review(obj, kind=kind, **fields)).encode())


def test_the_paths_are_the_contract_of_design_3_8() -> None:
    assert sorted(MUTATE_PATHS) == sorted(CONTRACT_PATHS)


@pytest.mark.parametrize("case", POD_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("path", CONTRACT_PATHS)
def test_pod_patch_table(case: Any, path: str) -> None:
    default, value = MUTATE_PATHS[path]
    assert pod_patch(case.pod, default.field, value) == case.patches[path]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (None, "no pod object"),
        ([], "no pod object"),
        ({"metadata": {"name": "x"}}, "the pod has no spec"),
        ({"spec": None}, "the pod has no spec"),
        ({"spec": "containers"}, "the pod has no spec"),
        ({"spec": {"securityContext": "root"}}, 'spec.securityContext is not an object (got "root")'),
        ({"spec": {"securityContext": [1]}}, "spec.securityContext is not an object (got [1])"),
    ],
)
def test_a_pod_that_cannot_be_defaulted_is_allowed_with_a_warning(obj: object, reason: str) -> None:
    response = default_pod(request_of(obj), FSGROUP_CHANGE_POLICY, "OnRootMismatch")
    assert response["allowed"] is True
    assert "patch" not in response and "patchType" not in response
    (warning,) = response["warnings"]
    assert reason in warning and FSGROUP_CHANGE_POLICY.label in warning


def test_null_fields_count_as_absent_and_add_replaces_them() -> None:
    assert pod_patch({"spec": {"securityContext": None}}, "seLinuxChangePolicy", "Recursive") == [
        {"op": "add", "path": "/spec/securityContext", "value": {"seLinuxChangePolicy": "Recursive"}}
    ]
    assert pod_patch(
        {"spec": {"securityContext": {"seLinuxChangePolicy": None}}}, "seLinuxChangePolicy", "x"
    ) == [{"op": "add", "path": "/spec/securityContext/seLinuxChangePolicy", "value": "x"}]


def test_an_empty_string_is_the_pods_own_value() -> None:
    assert (
        pod_patch({"spec": {"securityContext": {"fsGroupChangePolicy": ""}}}, "fsGroupChangePolicy", "x")
        == []
    )


@pytest.mark.parametrize(
    ("kind", "fields", "warning"),
    [
        ("Pod", {"operation": "UPDATE"}, 'operation "UPDATE" is not defaulted, only CREATE'),
        ("Pod", {"operation": "CONNECT"}, 'operation "CONNECT" is not defaulted'),
        ("Deployment", {}, '"kind": "Deployment"'),
        ("Pod", {"subResource": "ephemeralcontainers"}, '"ephemeralcontainers"'),
    ],
)
def test_only_pod_creation_is_defaulted(kind: str, fields: dict[str, Any], warning: str) -> None:
    response = default_pod(request_of(pod(), kind=kind, **fields), SELINUX_CHANGE_POLICY, "MountOption")
    assert response["allowed"] is True and "patch" not in response
    assert warning in response["warnings"][0]


def test_the_patch_is_base64_json_patch_and_the_uid_is_echoed() -> None:
    request = request_of(pod({"runAsUser": 1001}))
    response = default_pod(request, SELINUX_CHANGE_POLICY, "Recursive")
    assert response["uid"] == request["uid"] and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == [
        {"op": "add", "path": "/spec/securityContext/seLinuxChangePolicy", "value": "Recursive"}
    ]
    assert "warnings" not in response


@pytest.mark.parametrize(
    ("tokens", "pointer"),
    [
        (("spec", "securityContext"), "/spec/securityContext"),
        (("metadata", "labels", "app.kubernetes.io/name"), "/metadata/labels/app.kubernetes.io~1name"),
        (("a~b",), "/a~0b"),
        (("~1",), "/~01"),  # ~ first, or "~1" would come back as "/"
        (("",), "/"),
    ],
)
def test_json_pointer_escaping(tokens: tuple[str, ...], pointer: str) -> None:
    assert json_pointer(*tokens) == pointer
    assert all(escape_pointer_token(t).replace("~1", "/").replace("~0", "~") == t for t in tokens)


@pytest.mark.parametrize("case", NAMESPACE_CASES, ids=lambda c: c.name)
def test_namespace_table(case: Any) -> None:
    response = validate_namespace(request_of(namespace(case.labels), kind="Namespace"))
    assert list(case.violations) == label_violations(case.labels or {})
    if case.violations:
        assert response["allowed"] is False
        assert response["status"] == {"code": 422, "reason": "Invalid", "message": "; ".join(case.violations)}
    else:
        assert response == {"uid": response["uid"], "allowed": True}


@pytest.mark.parametrize(
    ("obj", "warning"),
    [
        (None, "no namespace object with metadata"),
        ({"metadata": "x"}, "no namespace object with metadata"),
        ({"metadata": {"labels": ["a"]}}, 'metadata.labels is not an object (got ["a"])'),
    ],
)
def test_a_malformed_namespace_is_allowed_with_a_warning(obj: object, warning: str) -> None:
    response = validate_namespace(request_of(obj, kind="Namespace"))
    assert response["allowed"] is True and warning in response["warnings"][0]


def test_a_label_value_that_is_no_string_is_refused_and_shown() -> None:
    assert label_violations({FSGROUP_CHANGE_POLICY.label: 7}) == [
        "namespace label storage.openshift.io/fsgroup-change-policy: 7 is not allowed; "
        "allowed values: OnRootMismatch"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 101 + b"]" * 101, "more than 100 deep"),
        (b"[" + b"9" * 21 + b"]", "an integer of 21 digits"),
        (b"{", "not JSON"),
        (b"[]", "a JSON object, not list"),
        (
            b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}',
            '"admission.k8s.io/v1beta1"',
        ),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', 'kind "Pod"'),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "no request object"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}', "no uid"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}}',
            "no uid",
        ),
    ],
)
def test_a_malformed_review_names_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_review(body)
    assert message in str(info.value)


def test_an_echoed_value_is_cut_short() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_review(json.dumps({"apiVersion": "x" * 10_000, "kind": "AdmissionReview"}).encode())
    assert len(str(info.value)) < 300


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=20,
)
# Objects shaped like pods and namespaces, so the deeper branches are reached too.
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "spec": JSON | st.fixed_dictionaries({}, optional={"securityContext": JSON}),
        "metadata": JSON | st.fixed_dictionaries({}, optional={"labels": JSON}),
    },
)


@settings(max_examples=300, deadline=None)
@given(obj=JSON | SHAPED, operation=JSON, kind=JSON)
def test_the_decisions_are_total_over_any_json(obj: object, operation: object, kind: object) -> None:
    request: Any = {"uid": "u", "object": obj, "operation": operation, "kind": kind}
    for path, (default, value) in MUTATE_PATHS.items():
        response = default_pod(request, default, value)
        assert response["allowed"] is True, path
        json.dumps(response)
    response = validate_namespace(request)
    assert response["allowed"] is True or response["status"]["code"] == 422
    json.dumps(response)
