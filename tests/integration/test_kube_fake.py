"""The fake Kubernetes API server (tests/kube_fake) through the real client library, kubernetes-asyncio, over
HTTPS with s3csi's own client configuration: it must answer as an API server does, or the tests built on it
prove nothing. Create with generateName, optimistic concurrency, patches, deletion with finalizers and grace,
the status subresource, selectors, watches resumed from a resourceVersion with bookmarks and 410 Gone,
every object validated (built-ins and the MountpointPodAttachment CRD, CEL rules included), bearer-token
auth."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiClient, CoordinationV1Api, CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.leaderelection.electionconfig import Config as ElectionConfig
from kubernetes_asyncio.leaderelection.leaderelection import LeaderElection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from s3csi.kube.client import api_configuration
from tests.kube_fake import FakeKubeApi
from tests.kube_fake.objects import pod

T = TypeVar("T")
NS = "team-a"
UID_A = "6f1c2b9e-1d2a-4c3b-9a8d-0e1f2a3b4c5d"
MERGE = "application/merge-patch+json"


@pytest.fixture
def api(kube_api: FakeKubeApi) -> FakeKubeApi:
    kube_api.ensure_namespace(NS)
    return kube_api


@asynccontextmanager
async def client(api: FakeKubeApi) -> AsyncIterator[ApiClient]:
    async with ApiClient(api_configuration(api.settings())) as the_client:
        yield the_client


def run(api: FakeKubeApi, scenario: Callable[[ApiClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with client(api) as the_client:
            return await scenario(the_client)

    return asyncio.run(main())


def refused(api: FakeKubeApi, scenario: Callable[[ApiClient], Awaitable[Any]]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the Status body of the one call ``scenario`` expects to fail."""
    with pytest.raises(ApiException) as raised:
        run(api, scenario)
    body: dict[str, Any] = json.loads(raised.value.body) if raised.value.body else {}
    return raised.value.status, body


def attachment(name: str = "0123456789abcdef0123456789abcdef", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "s3csi.io/v1",
        "kind": "MountpointPodAttachment",
        "metadata": {"name": name},
        "spec": {
            "nodeName": "node-1",
            "persistentVolumeName": "pv-1",
            "volumeID": "bucket-1",
            "mountOptions": ["--allow-other"],
            "readOnly": False,
            "authenticationSource": "driver",
            "mountpointPods": {"mp-abcde": [{"workloadPodUID": UID_A, "attachedAt": "2026-01-01T00:00:00Z"}]},
            **spec,
        },
    }


def test_create_with_generate_name_fills_what_the_server_owns(api: FakeKubeApi) -> None:
    async def scenario(c: ApiClient) -> Any:
        body = pod(NS, "ignored")
        del body["metadata"]["name"], body["metadata"]["uid"]
        body["metadata"]["generateName"] = "mp-"
        body["status"] = {"phase": "Running"}  # a client cannot set status on create
        return await CoreV1Api(c).create_namespaced_pod(NS, body)

    created = run(api, scenario)
    meta = created.metadata
    assert meta.name.startswith("mp-") and len(meta.name) == 8 and meta.name != "mp-"
    assert meta.uid and meta.creation_timestamp and int(meta.resource_version) > 0 and meta.generation == 1
    assert created.status.phase == "Pending"
    assert api.get("Pod", NS, meta.name)["metadata"]["uid"] == meta.uid

    # Same name twice: 409 AlreadyExists; a namespace that does not exist: 404.
    def create(namespace: str, name: str) -> Callable[[ApiClient], Awaitable[Any]]:
        return lambda c: CoreV1Api(c).create_namespaced_pod(namespace, pod(namespace, name))

    run(api, create(NS, "web-0"))
    assert refused(api, create(NS, "web-0"))[1]["reason"] == "AlreadyExists"
    code, status = refused(api, create("nowhere", "web-0"))
    assert (code, status["message"]) == (404, 'namespaces "nowhere" not found')


def test_a_stale_update_is_a_conflict_and_a_fresh_one_succeeds(api: FakeKubeApi) -> None:
    api.add(pod(NS, "web-0"))

    async def scenario(c: ApiClient) -> tuple[int, str, str]:
        core = CoreV1Api(c)
        first = await core.read_namespaced_pod("web-0", NS)
        stale = copy.deepcopy(first)
        first.metadata.labels = {"app": "web"}
        updated = await core.replace_namespaced_pod("web-0", NS, first)
        stale.metadata.labels = {"app": "other"}
        with pytest.raises(ApiException) as raised:
            await core.replace_namespaced_pod("web-0", NS, stale)
        return (
            raised.value.status,
            json.loads(raised.value.body)["message"],
            updated.metadata.resource_version,
        )

    code, message, version = run(api, scenario)
    assert code == 409 and "the object has been modified" in message
    stored = api.get("Pod", NS, "web-0")
    assert stored["metadata"]["labels"] == {"app": "web"} and stored["metadata"]["resourceVersion"] == version


def test_patches_merge_json_and_strategic_without_lists(api: FakeKubeApi) -> None:
    api.add(pod(NS, "web-0", labels={"app": "web", "tier": "front"}))

    async def scenario(c: ApiClient) -> Any:
        core = CoreV1Api(c)
        await core.patch_namespaced_pod("web-0", NS, {"metadata": {"labels": {"tier": None, "x": "1"}}})
        await core.patch_namespaced_pod(
            "web-0", NS, {"metadata": {"annotations": {"a": "b"}}}, _content_type=MERGE
        )
        return await core.patch_namespaced_pod(
            "web-0", NS, [{"op": "add", "path": "/metadata/finalizers", "value": ["s3csi.io/test"]}]
        )

    patched = run(api, scenario)
    assert patched.metadata.labels == {"app": "web", "x": "1"}
    assert patched.metadata.annotations == {"a": "b"}
    assert patched.metadata.finalizers == ["s3csi.io/test"]
    # A strategic merge patch with a list would be merged by key on a real server: refused, not guessed.
    code, status = refused(
        api, lambda c: CoreV1Api(c).patch_namespaced_pod("web-0", NS, {"metadata": {"finalizers": []}})
    )
    assert code == 415 and MERGE in status["message"]
    # A patch whose result is invalid is refused like any invalid object.
    code, status = refused(
        api,
        lambda c: CoreV1Api(c).patch_namespaced_pod(
            "web-0", NS, [{"op": "remove", "path": "/spec/containers"}]
        ),
    )
    assert code == 422 and "containers" in status["message"]


def test_the_status_subresource_alone_writes_status(api: FakeKubeApi) -> None:
    api.add(pod(NS, "web-0", node="node-1"))

    async def scenario(c: ApiClient) -> tuple[Any, Any]:
        core = CoreV1Api(c)
        current = await core.read_namespaced_pod("web-0", NS)
        current.status.phase = "Running"
        current.metadata.labels = {"ignored": "by-status"}
        after_status = await core.replace_namespaced_pod_status("web-0", NS, current)
        edited = copy.deepcopy(after_status)
        edited.status.phase = "Failed"  # ignored on the main resource
        edited.metadata.labels = {"app": "web"}
        return after_status, await core.replace_namespaced_pod("web-0", NS, edited)

    after_status, after_main = run(api, scenario)
    assert after_status.status.phase == "Running" and after_status.metadata.labels is None
    assert after_main.status.phase == "Running" and after_main.metadata.labels == {"app": "web"}


def test_delete_waits_for_finalizers_and_for_kubelet_on_a_bound_pod(api: FakeKubeApi) -> None:
    api.add(pod(NS, "bound", node="node-1"))
    api.add(pod(NS, "unbound"))
    api.add({**pod(NS, "held"), "metadata": {**pod(NS, "held")["metadata"], "finalizers": ["s3csi.io/x"]}})

    async def scenario(c: ApiClient) -> None:
        core = CoreV1Api(c)
        await core.delete_namespaced_pod("unbound", NS)
        terminating = await core.delete_namespaced_pod("bound", NS)
        assert (
            terminating.metadata.deletion_timestamp
            and terminating.metadata.deletion_grace_period_seconds == 30
        )
        await core.delete_namespaced_pod("bound", NS, grace_period_seconds=0)  # kubelet: containers gone
        held = await core.delete_namespaced_pod("held", NS, grace_period_seconds=0)
        assert held.metadata.deletion_timestamp
        assert (await core.read_namespaced_pod("held", NS)).metadata.finalizers == ["s3csi.io/x"]
        await core.patch_namespaced_pod("held", NS, {"metadata": {"finalizers": None}}, _content_type=MERGE)

    run(api, scenario)
    assert api.items("Pod", NS) == []


def test_list_with_label_and_field_selectors_and_pages(api: FakeKubeApi) -> None:
    api.add(pod(NS, "a", node="node-1", labels={"app": "web"}))
    api.add(pod(NS, "b", node="node-2", labels={"app": "web"}))
    api.add(pod(NS, "c", node="node-1", labels={"app": "db"}))
    api.ensure_namespace("team-b")
    api.add(pod("team-b", "d", node="node-1"))

    async def names(c: ApiClient, **selectors: Any) -> list[str]:
        found = await CoreV1Api(c).list_pod_for_all_namespaces(**selectors)
        return [item.metadata.name for item in found.items]

    async def scenario(c: ApiClient) -> list[list[str]]:
        core = CoreV1Api(c)
        first = await core.list_namespaced_pod(NS, limit=2)
        rest = await core.list_namespaced_pod(NS, limit=2, _continue=first.metadata._continue)
        return [
            await names(c, field_selector="spec.nodeName=node-1"),
            await names(c, field_selector="spec.nodeName=node-1", label_selector="app in (web,db)"),
            await names(c, label_selector="app!=web"),
            await names(c, label_selector="!app"),
            [item.metadata.name for item in first.items + rest.items],
        ]

    assert run(api, scenario) == [["a", "c", "d"], ["a", "c"], ["c", "d"], ["d"], ["a", "b", "c"]]
    code, status = refused(
        api, lambda c: CoreV1Api(c).list_namespaced_pod(NS, field_selector="spec.hostname=x")
    )
    assert (code, status["message"]) == (400, "field label not supported: spec.hostname")


async def events(
    stream: watch.Watch, call: Any, count: int, *args: Any, **kwargs: Any
) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of the first ``count`` events of a watch."""
    found = []
    async for event in stream.stream(call, *args, **kwargs):
        metadata = event["raw_object"]["metadata"]
        found.append((event["type"], metadata.get("name", ""), metadata["resourceVersion"]))
        if len(found) == count:
            stream.stop()
            break
    return found


def test_a_watch_resumes_from_a_resource_version_with_bookmarks(api: FakeKubeApi) -> None:
    api.add(pod(NS, "old"))

    async def scenario(c: ApiClient) -> tuple[str, list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        core = CoreV1Api(c)
        listed = await core.list_namespaced_pod(NS)
        start = listed.metadata.resource_version
        await core.create_namespaced_pod(NS, pod(NS, "new"))
        await core.patch_namespaced_pod("new", NS, {"metadata": {"labels": {"a": "b"}}})
        await core.delete_namespaced_pod("old", NS)
        stream = watch.Watch()
        resumed = await events(
            stream, core.list_namespaced_pod, 3, NS, resource_version=start, allow_watch_bookmarks=True
        )
        # The watch keeps going; a bookmark tells it the current resourceVersion without an object.
        bookmark_stream = watch.Watch()
        watching = asyncio.ensure_future(
            events(
                bookmark_stream,
                core.list_namespaced_pod,
                1,
                NS,
                resource_version=resumed[-1][2],
                allow_watch_bookmarks=True,
            )
        )
        while not watching.done():  # bookmarks go to the watches open when it is sent: repeat until seen
            api.send_bookmarks()
            await asyncio.wait([watching], timeout=0.2)
        return start, resumed, watching.result()

    start, resumed, bookmark = run(api, scenario)
    assert [(kind, name) for kind, name, _ in resumed] == [
        ("ADDED", "new"),
        ("MODIFIED", "new"),
        ("DELETED", "old"),
    ]
    versions = [int(start)] + [int(version) for _, _, version in resumed]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert bookmark == [("BOOKMARK", "", resumed[-1][2])]


def test_a_watch_from_a_compacted_version_is_410_gone(api: FakeKubeApi) -> None:
    api.add(pod(NS, "old"))
    before = api.get("Pod", NS, "old")["metadata"]["resourceVersion"]
    api.add(pod(NS, "newer"))
    compacted = api.store.compact()

    async def scenario(c: ApiClient) -> Any:
        # timeout_seconds: the library's Watch then hands the 410 to the caller instead of retrying it once.
        return await events(
            watch.Watch(),
            CoreV1Api(c).list_namespaced_pod,
            1,
            NS,
            resource_version=before,
            timeout_seconds=30,
        )

    with pytest.raises(ApiException) as raised:
        run(api, scenario)
    assert raised.value.status == 410 and f"too old resource version: {before} ({compacted})" in str(
        raised.value
    )


def test_a_watch_from_now_lists_first_and_follows_selection_changes(api: FakeKubeApi) -> None:
    api.add(pod(NS, "a", labels={"app": "web"}))
    api.add(pod(NS, "b", labels={"app": "db"}))

    async def scenario(c: ApiClient) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        core = CoreV1Api(c)
        # Without a resourceVersion: the objects selected now, as ADDED.
        present = await events(watch.Watch(), core.list_namespaced_pod, 1, NS, label_selector="app=web")
        start = (await core.list_namespaced_pod(NS)).metadata.resource_version
        await core.patch_namespaced_pod("a", NS, {"metadata": {"labels": {"app": "db"}}})  # leaves
        await core.patch_namespaced_pod("b", NS, {"metadata": {"labels": {"app": "web"}}})  # joins
        await core.patch_namespaced_pod("b", NS, {"metadata": {"annotations": {"x": "y"}}})  # stays in
        await core.patch_namespaced_pod("a", NS, {"metadata": {"annotations": {"x": "y"}}})  # never seen
        changes = await events(
            watch.Watch(), core.list_namespaced_pod, 3, NS, label_selector="app=web", resource_version=start
        )
        return present, changes

    present, changes = run(api, scenario)
    assert [(kind, name) for kind, name, _ in present] == [("ADDED", "a")]
    assert [(kind, name) for kind, name, _ in changes] == [
        ("DELETED", "a"),
        ("ADDED", "b"),
        ("MODIFIED", "b"),
    ]


def test_invalid_objects_are_refused_with_the_reason(api: FakeKubeApi) -> None:
    no_containers = pod(NS, "web-0")
    no_containers["spec"] = {"containers": [{"name": "app", "imag": "busybox"}]}
    code, status = refused(api, lambda c: CoreV1Api(c).create_namespaced_pod(NS, no_containers))
    assert (code, status["reason"]) == (422, "Invalid") and "imag" in status["message"]
    bad_name = pod(NS, "Web_0")
    code, status = refused(api, lambda c: CoreV1Api(c).create_namespaced_pod(NS, bad_name))
    assert code == 422 and "metadata.name" in status["message"] and "RFC 1123" in status["message"]
    assert api.items("Pod", NS) == []


def custom(c: ApiClient) -> CustomObjectsApi:
    return CustomObjectsApi(c)


def create_attachment(body: dict[str, Any]) -> Callable[[ApiClient], Awaitable[Any]]:
    return lambda c: custom(c).create_cluster_custom_object(
        "s3csi.io", "v1", "mountpointpodattachments", body
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (attachment(authenticationSource="ldap"), ["authenticationSource", "ldap"]),
        (attachment(colour="blue"), ["spec", "colour"]),  # unknown fields are refused, not pruned
        (attachment(name="not-a-key"), ["the name of an attachment is its sharing key"]),  # a CEL rule
        (
            attachment(authenticationSource="pod"),
            ["workloadNamespace, workloadServiceAccountName and workloadRoleARN"],
        ),
        (
            attachment(mountpointPods={"mp-a": [{"workloadPodUID": UID_A, "attachedAt": "yesterday"}]}),
            ["attachedAt", "date-time"],
        ),
    ],
)
def test_the_crd_schema_and_its_rules_refuse_invalid_attachments(
    api: FakeKubeApi, body: dict[str, Any], words: list[str]
) -> None:
    code, status = refused(api, create_attachment(body))
    assert (code, status["reason"]) == (422, "Invalid"), status
    for word in words:
        assert word in status["message"], status["message"]


def test_attachments_create_select_update_and_keep_their_key_fields(api: FakeKubeApi) -> None:
    other = attachment(name="f" * 32, nodeName="node-2")

    async def scenario(c: ApiClient) -> Any:
        objects = custom(c)
        created = await create_attachment(attachment())(c)
        await create_attachment(other)(c)
        on_node = await objects.list_cluster_custom_object(
            "s3csi.io", "v1", "mountpointpodattachments", field_selector="spec.nodeName=node-2"
        )
        assert [item["metadata"]["name"] for item in on_node["items"]] == ["f" * 32]
        created["status"] = {"mountpointPods": 1, "workloadPods": 1}
        with_status = await objects.replace_cluster_custom_object_status(
            "s3csi.io", "v1", "mountpointpodattachments", created["metadata"]["name"], created
        )
        with_status["spec"]["nodeName"] = "node-3"  # a transition rule keeps the key fields
        with pytest.raises(ApiException) as raised:
            await objects.replace_cluster_custom_object(
                "s3csi.io", "v1", "mountpointpodattachments", created["metadata"]["name"], with_status
            )
        assert raised.value.status == 422 and "immutable" in raised.value.body
        return with_status

    assert run(api, scenario)["status"] == {"mountpointPods": 1, "workloadPods": 1}


def test_leases_have_optimistic_concurrency(api: FakeKubeApi) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "s3csi-controller", "namespace": "kube-system"},
        "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 15},
    }

    async def scenario(c: ApiClient) -> int:
        leases = CoordinationV1Api(c)
        created = await leases.create_namespaced_lease("kube-system", lease)
        taken = copy.deepcopy(created)
        taken.spec.holder_identity = "replica-b"
        await leases.replace_namespaced_lease("s3csi-controller", "kube-system", taken)
        created.spec.holder_identity = "replica-c"  # read before replica-b took it
        with pytest.raises(ApiException) as raised:
            await leases.replace_namespaced_lease("s3csi-controller", "kube-system", created)
        return raised.value.status

    assert run(api, scenario) == 409
    assert api.get("Lease", "kube-system", "s3csi-controller")["spec"]["holderIdentity"] == "replica-b"


def test_a_wrong_token_is_401_and_every_request_is_recorded(api: FakeKubeApi) -> None:
    api.add(pod(NS, "web-0"))
    run(api, lambda c: CoreV1Api(c).read_namespaced_pod("web-0", NS))
    api.token_file.write_text("someone-else\n")
    code, status = refused(api, lambda c: CoreV1Api(c).read_namespaced_pod("web-0", NS))
    assert (code, status["reason"]) == (401, "Unauthorized")
    assert [(seen.method, seen.path, seen.accepted) for seen in api.seen] == [
        ("GET", f"/api/v1/namespaces/{NS}/pods/web-0", True),
        ("GET", f"/api/v1/namespaces/{NS}/pods/web-0", False),
    ]


def test_the_librarys_lease_leader_election_works_against_the_fake(api: FakeKubeApi) -> None:
    """Two candidates with kubernetes-asyncio's LeaderElection and LeaseLock: one leads; when it dies
    without releasing (its task cancelled, as a killed process), the other takes over once the lease
    expired. Only the order of events is checked, not how long it took."""

    async def scenario(c: ApiClient) -> list[str]:
        leading: list[str] = []
        changed = asyncio.Event()

        def candidate(identity: str) -> LeaderElection:
            async def started() -> None:
                leading.append(identity)
                changed.set()

            async def stopped() -> None:
                pass

            lock = LeaseLock("s3csi-controller", "kube-system", identity, c)
            return LeaderElection(ElectionConfig(lock, 3, 2, 1, started, stopped))

        first = asyncio.ensure_future(candidate("replica-a").run())
        await changed.wait()
        changed.clear()
        second = asyncio.ensure_future(candidate("replica-b").run())
        first.cancel()  # replica-a dies holding the lease
        await changed.wait()
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
        return leading

    assert run(api, scenario) == ["replica-a", "replica-b"]
    lease = api.get("Lease", "kube-system", "s3csi-controller")
    assert lease["spec"]["holderIdentity"] == "replica-b" and lease["spec"]["leaseDurationSeconds"] == 3


def test_a_watch_of_attachments_on_one_node(api: FakeKubeApi) -> None:
    """What the node plugin does: watch the cluster-scoped attachments of its own node (a CRD field
    selector), the objects as plain dicts."""

    async def scenario(c: ApiClient) -> list[tuple[str, str, str]]:
        objects = custom(c)
        listed = await objects.list_cluster_custom_object("s3csi.io", "v1", "mountpointpodattachments")
        await create_attachment(attachment(name="e" * 32, nodeName="node-2"))(c)
        created = await create_attachment(attachment())(c)
        created["spec"]["mountpointPods"] = {}
        await objects.replace_cluster_custom_object(
            "s3csi.io", "v1", "mountpointpodattachments", created["metadata"]["name"], created
        )
        return await events(
            watch.Watch(),
            objects.list_cluster_custom_object,
            2,
            "s3csi.io",
            "v1",
            "mountpointpodattachments",
            field_selector="spec.nodeName=node-1",
            resource_version=listed["metadata"]["resourceVersion"],
        )

    assert [(kind, name) for kind, name, _ in run(api, scenario)] == [
        ("ADDED", "0123456789abcdef0123456789abcdef"),
        ("MODIFIED", "0123456789abcdef0123456789abcdef"),
    ]
