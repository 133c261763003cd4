"""The fake API server's HTTP side: aiohttp over TLS on 127.0.0.1, in a thread of its own, in front of a
:class:`~tests.kube_fake.store.Store`.

Paths as the API server serves them (``/api/v1/...``, ``/apis/GROUP/VERSION/...``, namespaced and
cluster-wide), the verbs get, list (``labelSelector``, ``fieldSelector``, ``limit``/``continue``), watch
(``resourceVersion``, ``allowWatchBookmarks``, ``timeoutSeconds``; events as JSON lines), create, update,
patch, delete, and the ``status`` subresource. Every request must carry the current bearer token (401
otherwise). Tests can make a resource answer 403, 500 or hang, send bookmarks, and compact the history.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from s3csi.kube.settings import KubeApiSettings
from tests.admission_support import CertificateAuthority
from tests.kube_fake.patches import PatchError, apply_patch
from tests.kube_fake.resources import BUILTIN, KUBERNETES_VERSION, Resource, crd_resources, repository_crds
from tests.kube_fake.selectors import SelectorError, field_matcher, label_matcher
from tests.kube_fake.store import DEFAULT_NAMESPACES, ApiError, Change, Store

NAMESPACES = next(resource for resource in BUILTIN if resource.plural == "namespaces")


@dataclass(frozen=True)
class Request:
    """One request as the server saw it (the token itself is not kept)."""

    method: str
    path: str
    query: dict[str, str]
    accepted: bool
    """Whether the bearer token was the current one."""


@dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str
    name: str
    subresource: str


class FakeKubeApi:
    """``url``, ``ca_file`` and ``token_file`` are what a client (and ``s3csi driver --kube-api-url/
    --kube-ca-file/--kube-token-file``) takes. ``crds``: CustomResourceDefinitions to serve (default: every
    one in deploy/crds/). ``stop()`` when done."""

    def __init__(self, directory: Path, crds: Iterable[dict[str, Any]] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.store = Store()
        self.resources: dict[tuple[str, str, str], Resource] = {}
        for resource in BUILTIN:
            self.serve(resource)
        for crd in repository_crds() if crds is None else crds:
            for resource in crd_resources(crd):
                self.serve(resource)
        for namespace in DEFAULT_NAMESPACES:
            self.ensure_namespace(namespace)
        self.seen: list[Request] = []
        self.forbidden: set[str] = set()  # plurals answered with 403
        self.failing: set[str] = set()  # plurals answered with 500
        self.hanging: set[str] = set()  # plurals answered only after release_hanging()
        self._watches: set[asyncio.Queue[Change | str | None]] = set()
        self.ca = CertificateAuthority.create(directory)
        cert, key = directory / "api.crt", directory / "api.key"
        self.ca.issue(cert, key)
        self.token_file = directory / "token"
        self.token = ""
        self.rotate_token()
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(cert, key)
        self._loop = asyncio.new_event_loop()
        self._release = asyncio.Event()
        self._started = threading.Event()
        self._port = 0
        self._thread = threading.Thread(target=self._run, name="fake-kube-api", daemon=True)
        self._thread.start()
        if not self._started.wait(30) or not self._port:
            raise RuntimeError("the fake Kubernetes API server did not start")

    # -- what tests use --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._port}"

    @property
    def ca_file(self) -> Path:
        return self.ca.path

    def settings(self) -> KubeApiSettings:
        """How s3csi reaches this server (what ``--kube-api-url/--kube-token-file/--kube-ca-file`` make)."""
        return KubeApiSettings(server=self.url, token_file=str(self.token_file), ca_file=str(self.ca_file))

    def driver_args(self) -> list[str]:
        return [
            f"--kube-api-url={self.url}",
            f"--kube-token-file={self.token_file}",
            f"--kube-ca-file={self.ca_file}",
        ]

    def rotate_token(self) -> str:
        """A new token, written as kubelet writes projected tokens: a new file swapped in atomically."""
        self.token = f"token-{uuid.uuid4().hex}"
        tmp = self.token_file.with_name("token.tmp")
        tmp.write_text(self.token + "\n")
        os.replace(tmp, self.token_file)
        return self.token

    def serve(self, resource: Resource) -> None:
        self.resources[(resource.group, resource.version, resource.plural)] = resource

    def resource(self, kind: str) -> Resource:
        return next(resource for resource in self.resources.values() if resource.kind == kind)

    def ensure_namespace(self, name: str) -> None:
        try:
            self.store.create(
                NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )
        except ApiError as exc:
            if exc.code != 409:
                raise

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Arrange ``obj`` as already in the cluster, status included (validated like any write); an object
        of that name is replaced. Its namespace is created when missing."""
        resource = self.resource(obj["kind"])
        namespace = obj.get("metadata", {}).get("namespace", "") if resource.namespaced else ""
        if namespace:
            self.ensure_namespace(namespace)
        with self.store.lock:
            name = obj["metadata"]["name"]
            if (resource.key, namespace, name) in self.store.objects:
                self.store.delete(resource, namespace, name, grace_period_s=0)
                self.store.objects.pop((resource.key, namespace, name), None)
            return self.store.create(resource, namespace, obj, arranged=True)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.store.get(self.resource(kind), namespace, name)

    def items(self, kind: str, namespace: str = "") -> list[dict[str, Any]]:
        return self.store.list_objects(self.resource(kind), namespace)[0]

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Delete at once, as if every finalizer and grace period were done."""
        resource = self.resource(kind)
        with self.store.lock:
            current = self.store.objects[(resource.key, namespace, name)]
            current["metadata"].pop("finalizers", None)
            self.store.delete(resource, namespace, name, grace_period_s=0)

    def send_bookmarks(self) -> None:
        """A BOOKMARK at the current resourceVersion to every watch that allowed bookmarks."""
        self._loop.call_soon_threadsafe(self._broadcast, "bookmark")

    def release_hanging(self) -> None:
        self._loop.call_soon_threadsafe(self._release.set)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._release.set)
            self._loop.call_soon_threadsafe(self._broadcast, None)
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    # -- the server ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=3 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._tls)
        self._loop.run_until_complete(site.start())
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    def _broadcast(self, message: str | None) -> None:
        for queue in list(self._watches):
            queue.put_nowait(message)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        accepted = request.headers.get("Authorization") == f"Bearer {self.token}"
        self.seen.append(Request(request.method, request.path, dict(request.query), accepted))
        try:
            if not accepted:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if request.path == "/version":
                major, minor = KUBERNETES_VERSION.split(".")[:2]
                return web.json_response(
                    {"major": major, "minor": minor, "gitVersion": f"v{KUBERNETES_VERSION}"}
                )
            target = self._target(request.path)
            await self._faults(request, target)
            return await self._serve(request, target)
        except ApiError as exc:
            return web.json_response(exc.status(), status=exc.code)

    def _target(self, path: str) -> Target:
        parts = [part for part in path.split("/") if part]
        missing = ApiError(404, "NotFound", "the server could not find the requested resource")
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise missing
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise missing
        resource = self.resources.get((group, version, rest[0]))
        if resource is None or (namespace and not resource.namespaced):
            raise missing
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and (subresource != "status" or not resource.status_subresource):
            raise missing
        if resource.namespaced and name and not namespace:
            raise missing
        return Target(resource, namespace, name, subresource)

    async def _faults(self, request: web.Request, target: Target) -> None:
        plural = target.resource.plural
        if plural in self.hanging:
            await self._release.wait()
        if plural in self.forbidden:
            verb = {"GET": "get" if target.name else "list", "POST": "create", "PUT": "update"}.get(
                request.method, request.method.lower()
            )
            group = target.resource.group
            where = f' in the namespace "{target.namespace}"' if target.namespace else " at the cluster scope"
            raise ApiError(
                403,
                "Forbidden",
                f'{target.resource.qualified()} "{target.name}" is forbidden: User '
                f'"system:serviceaccount:kube-system:s3csi-node" cannot {verb} resource "{plural}" in API '
                f'group "{group}"{where}',
            )
        if plural in self.failing:
            raise ApiError(500, "InternalError", "etcdserver: request timed out")

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        store, resource = self.store, target.resource
        method = request.method
        if method == "GET" and target.name:
            found = store.get(resource, target.namespace, target.name)
            return web.json_response(found)
        if method == "GET":
            if _true(request.query.get("watch")):
                return await self._watch(request, target)
            return web.json_response(self._list(request, target))
        if method == "POST" and not target.name:
            body = await _json_body(request)
            return web.json_response(store.create(resource, target.namespace, body), status=201)
        if method == "PUT" and target.name:
            body = await _json_body(request)
            updated = store.update(
                resource, target.namespace, target.name, body, subresource=target.subresource
            )
            return web.json_response(updated)
        if method == "PATCH" and target.name:
            patch = await request.read()
            with store.lock:  # read, patch and write as one step (no await inside: the lock is a thread's)
                current = store.get(resource, target.namespace, target.name)
                try:
                    patched = apply_patch(current, request.content_type, patch)
                except PatchError as exc:
                    reason = {400: "BadRequest", 415: "UnsupportedMediaType", 422: "Invalid"}[exc.code]
                    raise ApiError(exc.code, reason, str(exc)) from None
                updated = store.update(
                    resource, target.namespace, target.name, patched, subresource=target.subresource
                )
            return web.json_response(updated)
        if method == "DELETE" and target.name and not target.subresource:
            options = await _json_body(request) if request.can_read_body else {}
            grace = request.query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
            after = store.delete(
                resource,
                target.namespace,
                target.name,
                grace_period_s=None if grace is None else int(grace),
                preconditions=options.get("preconditions"),
            )
            still_there = (resource.key, target.namespace, target.name) in store.objects
            if still_there or resource.plural == "pods" or resource.custom:  # these answer with the object
                return web.json_response(after)
            details = {"name": target.name, "kind": resource.plural, "uid": after["metadata"]["uid"]}
            success = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            return web.json_response({**success, "details": details})
        raise ApiError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )

    def _matchers(self, request: web.Request, resource: Resource) -> Any:
        try:
            labels = label_matcher(request.query.get("labelSelector"))
            fields = field_matcher(request.query.get("fieldSelector"), resource.selectable_fields)
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        return lambda obj: labels(obj) and fields(obj)

    def _list(self, request: web.Request, target: Target) -> dict[str, Any]:
        resource = target.resource
        matches = self._matchers(request, resource)
        items, revision = self.store.list_objects(resource, target.namespace)
        items = [item for item in items if matches(item)]
        start = request.query.get("continue")
        if start:
            after = json.loads(base64.urlsafe_b64decode(start))
            items = [item for item in items if _sort_key(item) > tuple(after)]
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        limit = int(request.query.get("limit") or 0)
        if limit and len(items) > limit:
            items = items[:limit]
            metadata["continue"] = base64.urlsafe_b64encode(
                json.dumps(_sort_key(items[-1])).encode()
            ).decode()
        if not resource.custom:  # built-in lists carry kind and apiVersion once, not per item
            for item in items:
                item.pop("kind", None)
                item.pop("apiVersion", None)
        return {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.api_version,
            "metadata": metadata,
            "items": items,
        }

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        matches = self._matchers(request, resource)
        bookmarks = _true(request.query.get("allowWatchBookmarks"))
        since_text = request.query.get("resourceVersion", "")
        timeout = float(request.query["timeoutSeconds"]) if "timeoutSeconds" in request.query else None
        queue: asyncio.Queue[Change | str | None] = asyncio.Queue()
        loop = self._loop

        def listener(change: Change) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, change)

        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        since: int | None = None if since_text in ("", "0") else int(since_text)
        try:
            with self.store.lock:  # the listing and the subscription see the same revision
                backlog, unsubscribe = self.store.subscribe(listener, since)
                items, _ = self.store.list_objects(resource, target.namespace)
        except ApiError as exc:
            # As the API server answers a watch from a compacted revision: 200, then one ERROR event.
            await response.prepare(request)
            await response.write(_line({"type": "ERROR", "object": exc.status()}))
            return response
        self._watches.add(queue)
        try:
            await response.prepare(request)
            if since is None:  # "get state and start at most recent": the present objects as ADDED first
                for item in items:
                    if matches(item):
                        await response.write(_line({"type": "ADDED", "object": item}))
            for change in backlog:
                await self._send(response, change, target, matches)
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    message = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
                if message is None:
                    return response
                if message == "bookmark":
                    if bookmarks:
                        await response.write(_line(self._bookmark(resource)))
                elif isinstance(message, Change):
                    await self._send(response, message, target, matches)
            if bookmarks:  # the API server sends one last bookmark when it ends a watch on its timeout
                await response.write(_line(self._bookmark(resource)))
            return response
        except (ConnectionResetError, asyncio.CancelledError):
            return response
        finally:
            unsubscribe()
            self._watches.discard(queue)

    def _bookmark(self, resource: Resource) -> dict[str, Any]:
        metadata = {"resourceVersion": str(self.store.revision)}
        return {
            "type": "BOOKMARK",
            "object": {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata},
        }

    @staticmethod
    async def _send(response: web.StreamResponse, change: Change, target: Target, matches: Any) -> None:
        if change.resource.key != target.resource.key:
            return
        if target.namespace and change.after["metadata"].get("namespace") != target.namespace:
            return
        was = change.before is not None and matches(change.before)
        now_matches = matches(change.after)
        if change.type == "DELETED":
            kind = "DELETED" if was else None
        elif was and now_matches:
            kind = "MODIFIED"
        elif now_matches:
            kind = "ADDED"
        elif was:
            kind = "DELETED"  # it left the selection
        else:
            kind = None
        if kind is not None:
            await response.write(_line({"type": kind, "object": change.after}))


def _true(value: str | None) -> bool:
    """A boolean query parameter as the API server (Go's strconv.ParseBool) reads it."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _sort_key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode() + b"\n"


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "BadRequest", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body is not a JSON object")
    return body
