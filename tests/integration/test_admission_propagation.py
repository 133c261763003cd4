"""``/mutate-pods/mount-propagation`` through the webhook's HTTP app, its claims looked up in the fake
Kubernetes API (objects validated against the official schemas): static and dynamic claims of this driver,
another driver's, a claim not there yet, an API that refuses; and ``s3csi webhook --mount-propagation off``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
from aiohttp.test_utils import TestClient, TestServer

from s3csi.admission.server import MOUNT_PROPAGATION_PATH, WebhookSettings, default_routes, make_app
from s3csi.kube.api import Api
from tests.admission_support import CertificateAuthority, WebhookProcess, admission_review, post
from tests.controller_support import volume
from tests.kube_fake import FakeKubeApi
from tests.kube_fake.resources import _builtin

DRIVER = "s3.csi.s3csi.io"
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def workload(*claims: str, inline: bool = False) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [
        {"name": f"v-{claim}", "persistentVolumeClaim": {"claimName": claim}} for claim in claims
    ]
    if inline:
        volumes.append({"name": "inline", "csi": {"driver": DRIVER, "volumeAttributes": {"bucketName": "b"}}})
    mounts = [{"name": v["name"], "mountPath": f"/mnt/{v['name']}"} for v in volumes]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "team-a"},
        "spec": {
            "containers": [{"name": "app", "image": "busybox:1.36", "volumeMounts": mounts}],
            "volumes": volumes,
        },
    }


def review(settings: WebhookSettings, api: Api | None, pod: dict[str, Any]) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        try:
            async with TestClient(TestServer(make_app(default_routes(settings, api)))) as client:
                reply = await client.post(
                    MOUNT_PROPAGATION_PATH,
                    data=json.dumps(admission_review(pod, kind="Pod")),
                    headers={"Content-Type": "application/json"},
                )
                assert reply.status == 200, await reply.text()
                answer: dict[str, Any] = (await reply.json())["response"]
                return answer
        finally:
            if api is not None:
                await api.close()

    return asyncio.run(scenario())


def propagations(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, str | None]:
    patch = json.loads(base64.b64decode(response["patch"])) if "patch" in response else []
    patched = jsonpatch.apply_patch(pod, patch)
    kubernetes_validate.validate(patched, KUBERNETES_VERSION, strict=True)
    return {m["name"]: m.get("mountPropagation") for m in patched["spec"]["containers"][0]["volumeMounts"]}


def test_claims_of_this_driver_get_host_to_container(kube_api: FakeKubeApi) -> None:
    kube_api.serve(_builtin("storage.k8s.io", "storageclasses", "StorageClass", namespaced=False))
    kube_api.ensure_namespace("team-a")
    volume(kube_api, "static")
    volume(kube_api, "dynamic", dynamic=True)
    volume(kube_api, "ebs", driver="ebs.csi.aws.com")
    for name, provisioner in (("s3-wait", DRIVER), ("gp3", "ebs.csi.aws.com")):
        kube_api.add(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": name},
                "provisioner": provisioner,
                "volumeBindingMode": "WaitForFirstConsumer",
            }
        )
    for claim, storage_class in (("waiting", "s3-wait"), ("waiting-ebs", "gp3")):
        kube_api.add(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": "team-a"},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "resources": {"requests": {"storage": "1Ti"}},
                    "storageClassName": storage_class,
                },
            }
        )
    pod = workload("static", "dynamic", "ebs", "waiting", "waiting-ebs", "not-yet", inline=True)
    response = review(WebhookSettings(Path(), Path()), Api(kube_api.settings()), pod)
    assert response["allowed"] and "warnings" not in response, response
    assert propagations(pod, response) == {
        "v-static": "HostToContainer",
        "v-dynamic": "HostToContainer",
        "v-ebs": None,
        "v-waiting": "HostToContainer",  # WaitForFirstConsumer: its StorageClass says
        "v-waiting-ebs": None,
        "v-not-yet": None,  # a claim made after its pod: not known to be this driver's
        "inline": "HostToContainer",
    }


def test_without_the_api_only_inline_volumes_are_patched_and_claims_are_warned_about() -> None:
    pod = workload("static", inline=True)
    response = review(WebhookSettings(Path(), Path()), None, pod)
    assert propagations(pod, response) == {"v-static": None, "inline": "HostToContainer"}
    assert response["warnings"] == [
        "mountPropagation not set for claim static: no Kubernetes API to look it up in "
        "(--kube-api off, or outside a cluster without --kube-api-url)"
    ]


def test_an_api_that_refuses_leaves_the_claim_unpatched_with_a_warning(kube_api: FakeKubeApi) -> None:
    pod = workload("static")
    settings = kube_api.settings()
    Path(settings.token_file).write_text("a-token-the-api-does-not-know\n")
    response = review(WebhookSettings(Path(), Path()), Api(settings), pod)
    assert response["allowed"] and "patch" not in response
    [warning] = response["warnings"]
    assert warning.startswith("mountPropagation not set for claim team-a/static: GET ") and "401" in warning


@pytest.mark.parametrize("claim", ["../../persistentvolumes/x", "A" * 300])
def test_a_claim_name_that_is_not_one_never_reaches_the_api(kube_api: FakeKubeApi, claim: str) -> None:
    pod = workload(claim)
    response = review(WebhookSettings(Path(), Path()), Api(kube_api.settings()), pod)
    assert "patch" not in response and "not a valid claim name" in response["warnings"][0]


def test_off_serves_no_propagation_path(tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir()
    ca = CertificateAuthority.create(tmp_path / "ca")
    (tmp_path / "webhook").mkdir()
    process = WebhookProcess(tmp_path / "webhook", ca, "--mount-propagation=off")
    try:
        body = json.dumps(admission_review(workload(inline=True), kind="Pod")).encode()
        assert post(process.connect(), MOUNT_PROPAGATION_PATH, body).status == 404
    finally:
        assert process.terminate() == 0, process.log()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--mount-propagation=off", "--kube-api-url=https://127.0.0.1:6443"],
            "--kube-api-url applies to --mount-propagation HostToContainer only",
        ),
        (["--kube-api=off", "--kube-token-file=/x"], "--kube-token-file contradicts --kube-api off"),
        (["--mount-propagation=Bidirectional"], "invalid choice: 'Bidirectional'"),
    ],
)
def test_contradicting_flags_are_refused_naming_the_flag(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "s3csi", "webhook", "--cert", "c", "--key", "k", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
