"""deploy/controller-rbac.yaml: valid objects, no wildcard, and enough: every request ``s3csi controller``
made to the fake API server in a scenario that uses each of its calls is allowed by it."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from s3csi.podmounter.podspec import DEFAULT_NAMESPACE, mountpoint_namespace
from tests.controller_support import (
    attachments,
    controller,
    mountpoint_pods,
    prepare,
    served,
    settings,
    volume,
    workload,
)
from tests.kube_fake import FakeKubeApi, Request
from tests.polling import wait_until_async

MANIFEST = Path(__file__).parents[2] / "deploy" / "controller-rbac.yaml"
SERVICE_ACCOUNT = ("kube-system", "s3csi-controller")


def documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def test_the_manifest_is_valid_and_names_no_wildcard() -> None:
    for document in documents():
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    assert "*" not in MANIFEST.read_text()
    [namespace] = [doc for doc in documents() if doc["kind"] == "Namespace"]
    assert namespace == mountpoint_namespace()


def rules_for_controller() -> list[tuple[str, dict[str, Any]]]:
    """(namespace the rule applies in, "" for every namespace; rule) for the controller's account."""
    docs = documents()
    roles = {
        (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]): doc for doc in docs
    }
    found = []
    for binding in docs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any((s.get("namespace"), s["name"]) == SERVICE_ACCOUNT for s in binding["subjects"]):
            continue
        namespace = binding["metadata"].get("namespace", "")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else "", ref["name"])]
        found += [(namespace, rule) for rule in role["rules"]]
    return found


def attributes(request: Request) -> tuple[str, str, str, str, str]:
    """(verb, API group, resource[/subresource], namespace, name) of a request, as the API server's RBAC
    authorizer sees it."""
    parts = request.path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource += "/" + rest[2]
    verb = {"POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}.get(request.method, "")
    if request.method == "GET":
        verb = "get" if name else "watch" if request.query.get("watch") in ("true", "1") else "list"
    return verb, group, resource, namespace, name


def allowed(request: Request, rules: list[tuple[str, dict[str, Any]]]) -> bool:
    verb, group, resource, namespace, name = attributes(request)
    return any(
        (not where or where == namespace)
        and group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for where, rule in rules
    )


def renews_lease(request: Request) -> bool:
    """A leader's renewal: a PUT to its Lease (a fast scenario may end before the first one)."""
    return request.method == "PUT" and "/leases/" in request.path


@pytest.fixture
def api(kube_api: FakeKubeApi) -> FakeKubeApi:
    prepare(kube_api)
    return kube_api


def test_every_request_of_the_controller_is_allowed(api: FakeKubeApi) -> None:
    secret = {"access_key_id": "AKIAEXAMPLE1", "secret_access_key": "s3cr3t"}
    api.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-keys", "namespace": "team-a"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()},
        }
    )
    volume(api, "keyed", attributes={"authenticationSource": "secret"}, secret=("team-a", "s3-keys"))
    volume(api, "bad", bucket="bucket-3", mount_options=["--no-such-option"])
    leaving = api.add(workload("leaving", "keyed"))
    api.add(workload("refused", "bad"))

    async def scenario() -> None:
        async with controller(settings(api, grace_s=0.1)):
            assert await wait_until_async(lambda: leaving["metadata"]["uid"] in served(api))
            assert await wait_until_async(lambda: api.items("Event", "team-a"))
            api.remove("Pod", "team-a", "leaving")
            assert await wait_until_async(lambda: not mountpoint_pods(api) and not attachments(api))
            assert await wait_until_async(lambda: any(renews_lease(request) for request in api.seen))

    asyncio.run(scenario())
    rules = rules_for_controller()
    seen = {attributes(request) for request in api.seen}
    assert {(verb, resource) for verb, _g, resource, _ns, _n in seen} >= {
        ("watch", "pods"),
        ("get", "secrets"),
        ("create", "events"),
        ("create", "pods"),
        ("delete", "pods"),
        ("update", "mountpointpodattachments/status"),
        ("delete", "mountpointpodattachments"),
        ("update", "leases"),
    }
    refused = sorted(attributes(request) for request in api.seen if not allowed(request, rules))
    assert refused == []
    assert DEFAULT_NAMESPACE in {
        ns for verb, _g, resource, ns, _n in seen if verb == "create" and resource == "pods"
    }
