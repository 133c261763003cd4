"""The Kubernetes API client against a fake API server over real HTTPS on 127.0.0.1: objects found, errors
translated once (404, 401, 403, 500, timeout, unreachable), the token re-read when it rotates and never
shown; and deploy/node-rbac.yaml grants exactly what the client needs."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes_validate
import pytest
import yaml

from s3csi.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied, S3csiError, Unavailable
from s3csi.kube.client import KubeClient
from s3csi.kube.lookup import lookup_pod_identity
from s3csi.kube.settings import KubeApiSettings
from tests.kube_fake import FakeKubeApi
from tests.kube_fake.objects import pod, service_account

ROLE = "arn:aws:iam::123456789012:role/team-a"
T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def api(kube_api: FakeKubeApi) -> FakeKubeApi:
    return kube_api


def settings(api: FakeKubeApi, **overrides: Any) -> KubeApiSettings:
    return dataclasses.replace(api.settings(), **overrides)


def with_client(api: FakeKubeApi, call: Callable[[KubeClient], Awaitable[T]], **overrides: Any) -> T:
    async def scenario() -> T:
        client = KubeClient(settings(api, **overrides))
        try:
            return await call(client)
        finally:
            await client.close()

    return asyncio.run(scenario())


def failure(api: FakeKubeApi, call: Callable[[KubeClient], Awaitable[Any]], **overrides: Any) -> S3csiError:
    with pytest.raises(S3csiError) as raised:
        with_client(api, call, **overrides)
    assert api.token not in str(raised.value)
    return raised.value


def test_found_objects_come_back_as_the_server_sent_them(api: FakeKubeApi) -> None:
    the_pod = api.add(
        pod("team-a", "web-0", annotations={"s3csi.io/fs-user": "1005"}, service_account="reader")
    )
    api.add(service_account("team-a", "reader", {"eks.amazonaws.com/role-arn": ROLE}))
    found = with_client(api, lambda c: c.get_pod("team-a", "web-0"))
    assert (found.metadata.uid, found.metadata.annotations) == (
        the_pod["metadata"]["uid"],
        {"s3csi.io/fs-user": "1005"},
    )
    assert found.spec.service_account_name == "reader"
    account = with_client(api, lambda c: c.get_service_account("team-a", "reader"))
    assert account.metadata.annotations == {"eks.amazonaws.com/role-arn": ROLE}
    assert [(seen.method, seen.path, seen.accepted) for seen in api.seen] == [
        ("GET", "/api/v1/namespaces/team-a/pods/web-0", True),
        ("GET", "/api/v1/namespaces/team-a/serviceaccounts/reader", True),
    ]


@pytest.mark.parametrize(
    ("arrange", "error", "words"),
    [
        (lambda api: None, NotFound, ["pods team-a/web-0 not found"]),
        (
            lambda api: api.forbidden.add("pods"),
            PermissionDenied,
            ["HTTP 403", "get on pods", "node-rbac.yaml"],
        ),
        (lambda api: api.failing.add("pods"), Unavailable, ["HTTP 500", "etcdserver"]),
        (lambda api: api.token_file.write_text("not-the-token\n"), PermissionDenied, ["HTTP 401", "token"]),
    ],
)
def test_api_failures_are_translated_once(
    api: FakeKubeApi, arrange: Callable[[FakeKubeApi], object], error: type[S3csiError], words: list[str]
) -> None:
    arrange(api)
    raised = failure(api, lambda c: c.get_pod("team-a", "web-0"))
    assert type(raised) is error
    for word in words:
        assert word in str(raised), str(raised)


def test_a_hanging_api_times_out_as_unavailable(api: FakeKubeApi) -> None:
    api.add(service_account("team-a", "reader"))
    api.hanging.add("serviceaccounts")
    raised = failure(api, lambda c: c.get_service_account("team-a", "reader"), request_timeout_s=0.5)
    assert isinstance(raised, Unavailable) and "timed out" in str(raised)


def test_an_unreachable_or_untrusted_api_is_unavailable(api: FakeKubeApi, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other_ca = FakeKubeApi(tmp_path / "other")  # a server whose CA the client does not trust
    try:
        raised = failure(api, lambda c: c.get_pod("team-a", "web-0"), ca_file=str(other_ca.ca_file))
        assert isinstance(raised, Unavailable) and "unreachable" in str(raised)
    finally:
        other_ca.stop()
    api.stop()
    raised = failure(api, lambda c: c.get_pod("team-a", "web-0"))
    assert isinstance(raised, Unavailable) and "unreachable" in str(raised)


def test_the_token_file_is_read_again_when_kubelet_rotates_it(api: FakeKubeApi) -> None:
    api.add(pod("team-a", "web-0"))

    async def across_a_rotation(client: KubeClient) -> list[str]:
        names = [(await client.get_pod("team-a", "web-0")).metadata.name]
        api.rotate_token()  # the old token is refused from now on
        names.append((await client.get_pod("team-a", "web-0")).metadata.name)
        return names

    assert with_client(api, across_a_rotation) == ["web-0", "web-0"]
    assert [seen.accepted for seen in api.seen] == [True, True]


def test_lookup_reads_the_annotations_of_the_pod_kubelet_named(api: FakeKubeApi) -> None:
    uid = api.add(pod("team-a", "web-0", annotations={"s3csi.io/fs-user": "1005"}, service_account="reader"))[
        "metadata"
    ]["uid"]
    api.add(service_account("team-a", "reader", {"eks.amazonaws.com/role-arn": ROLE}))

    def lookup(uid: str, needs_role: bool, account: str | None = "reader") -> Any:
        return lambda c: lookup_pod_identity(
            c, namespace="team-a", name="web-0", uid=uid, service_account=account, needs_role=needs_role
        )

    assert with_client(api, lookup(uid, needs_role=True)) == ("1005", ROLE)
    assert with_client(api, lookup(uid, needs_role=False)) == ("1005", None)
    assert len(api.seen) == 3  # the service account only when a role is needed
    # A pod recreated under the same name is another pod: kubelet retries, nothing is lent.
    assert isinstance(failure(api, lookup("another-uid", needs_role=True)), Aborted)
    assert isinstance(failure(api, lookup(uid, needs_role=True, account="writer")), FailedPrecondition)
    api.remove("ServiceAccount", "team-a", "reader")
    assert isinstance(failure(api, lookup(uid, needs_role=True)), FailedPrecondition)
    api.remove("Pod", "team-a", "web-0")
    assert isinstance(failure(api, lookup(uid, needs_role=False)), Aborted)


def test_node_rbac_grants_reads_and_events_only() -> None:
    """get on pods and service accounts anywhere; get/list/watch on attachments; list/watch on pods only in
    the Mountpoint Pods' namespace (the Kubernetes runtime); the one write: create and patch on events (why a
    publish waits or failed, a crash loop, on the workload pods)."""
    documents = list(yaml.safe_load_all((REPO / "deploy" / "node-rbac.yaml").read_text()))
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    by_kind = {document["kind"]: document for document in documents}
    assert sorted(by_kind) == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"]
    assert by_kind["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "serviceaccounts"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {
            "apiGroups": ["s3csi.io"],
            "resources": ["mountpointpodattachments"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    assert by_kind["Role"]["metadata"]["namespace"] == "s3csi-mounters"
    assert by_kind["Role"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}
    ]
    account = by_kind["ServiceAccount"]["metadata"]
    for binding, role in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        assert by_kind[binding]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role,
            "name": by_kind[role]["metadata"]["name"],
        }
        assert by_kind[binding]["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--kube-api=off", "--kube-api-url=https://127.0.0.1:1"],
            "--kube-api-url contradicts --kube-api off",
        ),
        (["--mode=controller", "--kube-ca-file=/x"], "--kube-ca-file applies to the node service only"),
        (["--kube-api-url=https://127.0.0.1:1", "--kube-token-file=/nonexistent"], "--kube-token-file"),
        (
            ["--kube-api-url=https://127.0.0.1:1", "--kube-token-file={token}", "--kube-ca-file={token}"],
            "PEM",
        ),
    ],
)
def test_the_driver_refuses_kube_flags_it_cannot_use_naming_them(
    api: FakeKubeApi, tmp_path: Path, args: list[str], words: str
) -> None:
    argv = [sys.executable, "-m", "s3csi", "driver", f"--endpoint=unix://{tmp_path}/csi.sock", "--node-id=n"]
    argv += [arg.format(token=api.token_file) for arg in args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert api.token not in result.stderr
