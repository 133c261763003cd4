"""The fake API server's pure rules (tests/kube_fake): selectors and patches as the API server applies them.
The server as a whole is checked through the real client in tests/integration/test_kube_fake.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kube_fake.patches import JSON, MERGE, STRATEGIC, PatchError, apply_patch
from tests.kube_fake.resources import openapi_to_jsonschema
from tests.kube_fake.selectors import SelectorError, field_matcher, label_matcher


def labelled(**labels: str) -> dict[str, Any]:
    return {"metadata": {"labels": labels}}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),  # absent is not equal
        ("app in (web, db)", {"app": "db"}, True),
        ("app in (web,db),tier", {"app": "db"}, False),
        ("app notin (web)", {}, True),
        ("!app", {"app": "x"}, False),
        ("s3csi.io/volume", {"s3csi.io/volume": ""}, True),
        ("app=web,tier=front", {"app": "web", "tier": "front"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert label_matcher(selector)(labelled(**labels)) is matches


@pytest.mark.parametrize("selector", ["app in web", "=web", "app=(x)"])
def test_unparsable_label_selectors_are_refused(selector: str) -> None:
    with pytest.raises(SelectorError):
        label_matcher(selector)


POD = {"metadata": {"name": "a", "namespace": "n"}, "spec": {"nodeName": "node-1"}, "status": {}}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("spec.nodeName=node-1", True),
        ("spec.nodeName==node-2", False),
        ("spec.nodeName!=node-2,metadata.name=a", True),
        ("status.phase=", True),  # absent compares as ""
        ("metadata.namespace=other", False),
    ],
)
def test_field_selectors(selector: str, matches: bool) -> None:
    assert field_matcher(selector, {"spec.nodeName", "status.phase"})(POD) is matches


def test_an_unsupported_field_is_refused_as_the_api_server_refuses_it() -> None:
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.hostname"):
        field_matcher("spec.hostname=x", {"spec.nodeName"})


CURRENT = {"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}, "spec": {"n": 1}}


@pytest.mark.parametrize(
    ("content_type", "patch", "metadata"),
    [
        (
            MERGE,
            {"metadata": {"labels": {"a": None, "c": "3"}}},
            {"labels": {"b": "2", "c": "3"}, "finalizers": ["x"]},
        ),
        (
            MERGE + "; charset=utf-8",
            {"metadata": {"finalizers": []}},
            {"labels": {"a": "1", "b": "2"}, "finalizers": []},
        ),
        (
            STRATEGIC,
            {"metadata": {"labels": {"b": "9"}}},
            {"labels": {"a": "1", "b": "9"}, "finalizers": ["x"]},
        ),
        (
            JSON,
            [{"op": "replace", "path": "/metadata/labels/a", "value": "0"}],
            {"labels": {"a": "0", "b": "2"}, "finalizers": ["x"]},
        ),
    ],
)
def test_patches(content_type: str, patch: Any, metadata: dict[str, Any]) -> None:
    patched = apply_patch(CURRENT, content_type, json.dumps(patch).encode())
    assert patched == {"metadata": metadata, "spec": {"n": 1}}
    assert CURRENT["metadata"] == {
        "labels": {"a": "1", "b": "2"},
        "finalizers": ["x"],
    }  # not changed in place


@pytest.mark.parametrize(
    ("content_type", "patch", "code"),
    [
        (STRATEGIC, {"metadata": {"finalizers": []}}, 415),  # lists merge by key on a real server
        (STRATEGIC, {"$patch": "replace"}, 415),
        ("application/apply-patch+yaml", {}, 415),
        (JSON, {"metadata": {}}, 400),  # what kubernetes-asyncio sends for a dict to custom objects
        (JSON, [{"op": "remove", "path": "/nope"}], 422),
        (MERGE, ["not", "an", "object"], 400),
    ],
)
def test_patches_the_fake_refuses(content_type: str, patch: Any, code: int) -> None:
    with pytest.raises(PatchError) as raised:
        apply_patch(CURRENT, content_type, json.dumps(patch).encode())
    assert raised.value.code == code


def test_openapi_schemas_refuse_unknown_fields_unless_preserved() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
            "port": {"x-kubernetes-int-or-string": True},
        },
    }
    converted = openapi_to_jsonschema(schema)
    assert converted["additionalProperties"] is False
    assert converted["properties"]["spec"]["additionalProperties"] is False
    assert converted["properties"]["spec"]["properties"]["a"]["type"] == ["string", "null"]
    assert "additionalProperties" not in converted["properties"]["free"]
    assert converted["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
