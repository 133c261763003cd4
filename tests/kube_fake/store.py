"""The fake API server's objects and their rules, without HTTP: what etcd and the API server's registry do.

- One ``resourceVersion`` counter for every object (as etcd's revision); each change is kept in a history that
  watches start from. ``compact()`` forgets history, so a watch from before it gets 410 Gone.
- Create sets ``uid``, ``creationTimestamp``, ``resourceVersion``, ``generation`` and the name from
  ``metadata.generateName``; a namespaced object needs its namespace to exist. A resource with a status
  subresource gets its initial status (a client cannot set status on create or on a main-resource update;
  only ``/status`` writes it, and ``/status`` writes nothing else).
- Update refuses a stale ``metadata.resourceVersion`` (409 Conflict); without one it is unconditional.
- Delete: an object with finalizers gets ``deletionTimestamp`` and stays until an update empties its
  finalizers; a pod bound to a node is deleted gracefully (``deletionTimestamp``,
  ``deletionGracePeriodSeconds``) and stays until deleted again with ``gracePeriodSeconds=0``, as kubelet
  does once the containers stopped; anything else goes at once. Deleting a namespace does not delete what
  it holds.
- Every object a client sends, and every object after a patch, is validated (:mod:`.resources`) before it is
  stored: 422 with the field and the reason.
"""

from __future__ import annotations

import copy
import datetime
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.kube_fake.resources import Invalid, Resource

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's (no vowels, no 0/1/3)
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ApiError(Exception):
    """An answer other than success: HTTP ``code``, the Status ``reason`` and ``message``."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        return {
            **body,
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


@dataclass(frozen=True)
class Change:
    """One history entry: ``type`` ADDED/MODIFIED/DELETED, the object before (None for ADDED) and after."""

    revision: int
    type: str
    resource: Resource
    before: dict[str, Any] | None
    after: dict[str, Any]


Listener = Callable[[Change], None]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified()} "{name}" not found', {"name": name})


def conflict(resource: Resource, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified()} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name},
    )


def invalid(resource: Resource, name: str, error: Invalid) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'{resource.kind}.{resource.group or "core"} "{name}" is invalid: {error}',
        {"name": name, "kind": resource.kind, "causes": [{"field": error.field, "message": str(error)}]},
    )


class Store:
    """Thread-safe: the HTTP handlers and the tests' own arrangements call it from different threads."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.revision = 1
        self.compacted = 0
        self.objects: dict[tuple[tuple[str, str], str, str], dict[str, Any]] = {}
        self.history: list[Change] = []
        self._listeners: list[Listener] = []

    # -- reading -------------------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            found = self.objects.get((resource.key, namespace, name))
            if found is None:
                raise not_found(resource, name)
            return copy.deepcopy(found)

    def list_objects(self, resource: Resource, namespace: str) -> tuple[list[dict[str, Any]], int]:
        """The objects (of ``namespace``, or all when "") sorted as etcd returns them, and the revision."""
        with self.lock:
            items = [
                copy.deepcopy(obj)
                for (key, ns, _), obj in sorted(self.objects.items(), key=lambda item: item[0][1:])
                if key == resource.key and (not namespace or ns == namespace)
            ]
            return items, self.revision

    def subscribe(self, listener: Listener, since: int | None) -> tuple[list[Change], Callable[[], None]]:
        """The changes after revision ``since`` (none when None) and ``listener`` called for every later one,
        with no gap between the two; ApiError 410 when ``since`` was compacted away."""
        with self.lock:
            if since is not None and since < self.compacted:
                raise ApiError(410, "Expired", f"too old resource version: {since} ({self.compacted})")
            backlog = [change for change in self.history if since is not None and change.revision > since]
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self.lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return backlog, unsubscribe

    def compact(self) -> int:
        """Forget the history up to now (as etcd compaction does); returns the compacted revision."""
        with self.lock:
            self.compacted = self.revision
            self.history.clear()
            return self.compacted

    # -- writing -------------------------------------------------------------------------------------------

    def _commit(
        self, kind: str, resource: Resource, before: dict[str, Any] | None, after: dict[str, Any]
    ) -> None:
        self.revision += 1
        after["metadata"]["resourceVersion"] = str(self.revision)
        change = Change(self.revision, kind, resource, copy.deepcopy(before), copy.deepcopy(after))
        self.history.append(change)
        for listener in list(self._listeners):
            listener(change)

    def _validate(self, resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        name = obj.get("metadata", {}).get("name", "")
        try:
            resource.check_name(name)
            resource.validate(obj, old)
        except Invalid as exc:
            raise invalid(resource, name, exc) from None

    def _check_namespace(self, resource: Resource, namespace: str) -> None:
        if resource.namespaced and (("", "namespaces"), "", namespace) not in self.objects:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace})

    def create(
        self, resource: Resource, namespace: str, body: dict[str, Any], *, arranged: bool = False
    ) -> dict[str, Any]:
        """POST: the stored object. ``arranged``: a test arranging an object as it already is (its status and
        any ``uid`` it names are kept)."""
        obj = copy.deepcopy(body)
        self._check_kind(resource, obj)
        metadata = obj.setdefault("metadata", {})
        with self.lock:
            if resource.namespaced:
                namespace = namespace or metadata.get("namespace", "")
                if metadata.setdefault("namespace", namespace) != namespace:
                    raise ApiError(
                        400,
                        "BadRequest",
                        "the namespace of the provided object does not match the namespace sent on the "
                        "request",
                    )
                self._check_namespace(resource, namespace)
            else:
                metadata.pop("namespace", None)
                namespace = ""
            if arranged:  # an object read back from the server, edited and arranged again
                metadata.pop("resourceVersion", None)
            if metadata.get("resourceVersion"):
                raise ApiError(
                    400, "BadRequest", "resourceVersion should not be set on objects to be created"
                )
            if not metadata.get("name"):
                base = metadata.get("generateName")
                if not base:
                    raise invalid(
                        resource,
                        "",
                        Invalid("metadata.name", "Required value: name or generateName is required"),
                    )
                metadata["name"] = base[:58] + "".join(random.choice(_GENERATE_ALPHABET) for _ in range(5))
            name = metadata["name"]
            if (resource.key, namespace, name) in self.objects:
                raise ApiError(
                    409, "AlreadyExists", f'{resource.qualified()} "{name}" already exists', {"name": name}
                )
            for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                metadata.pop(server_field, None)
            uid = metadata.get("uid") if arranged else None
            metadata.update(
                uid=uid or str(uuid.uuid4()), creationTimestamp=now(), generation=1, resourceVersion="0"
            )
            if resource.status_subresource and not (arranged and "status" in obj):
                obj.pop("status", None)
                if resource.initial_status is not None:
                    obj["status"] = copy.deepcopy(resource.initial_status)
            self._validate(resource, obj)
            self.objects[(resource.key, namespace, name)] = obj
            self._commit("ADDED", resource, None, obj)
            return copy.deepcopy(obj)

    def update(
        self, resource: Resource, namespace: str, name: str, body: dict[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]:
        """PUT of the object (``subresource`` "") or of its ``status``."""
        with self.lock:
            current = self.objects.get((resource.key, namespace, name))
            if current is None:
                raise not_found(resource, name)
            obj = copy.deepcopy(body)
            self._check_kind(resource, obj)
            metadata = obj.setdefault("metadata", {})
            if metadata.get("name", name) != name or (
                resource.namespaced and metadata.get("namespace", namespace) != namespace
            ):
                raise ApiError(
                    400, "BadRequest", "the name or namespace of the object does not match the request"
                )
            stored_meta = current["metadata"]
            expected = metadata.get("resourceVersion")
            if expected and expected != stored_meta["resourceVersion"]:
                raise conflict(resource, name)
            if metadata.get("uid") and metadata["uid"] != stored_meta["uid"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in object meta: {metadata['uid']}",
                    {"name": name},
                )
            if subresource == "status":
                # Only the status changes through /status.
                obj = {**copy.deepcopy(current), "status": obj.get("status")}
                if obj["status"] is None:
                    obj.pop("status")
            elif subresource:
                raise ApiError(
                    404, "NotFound", f"the server could not find the requested resource ({subresource})"
                )
            else:
                if resource.status_subresource:
                    obj.pop("status", None)
                    if "status" in current:
                        obj["status"] = copy.deepcopy(current["status"])
                meta = obj["metadata"]
                for kept in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                    if kept in stored_meta:
                        meta[kept] = stored_meta[kept]
                    else:
                        meta.pop(kept, None)
                meta["namespace"] = stored_meta.get("namespace")
                if not resource.namespaced:
                    meta.pop("namespace", None)
                meta["generation"] = stored_meta.get("generation", 1) + (
                    1 if _spec_of(obj) != _spec_of(current) else 0
                )
            obj["metadata"]["resourceVersion"] = stored_meta["resourceVersion"]
            self._validate(resource, obj, current)
            if obj == current:  # the API server writes nothing (and keeps the resourceVersion) for a no-op
                return copy.deepcopy(current)
            self.objects[(resource.key, namespace, name)] = obj
            self._commit("MODIFIED", resource, current, obj)
            if self._may_go(resource, obj):
                self._remove(resource, namespace, name)
            return copy.deepcopy(obj)

    def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        *,
        grace_period_s: int | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """DELETE: the object as it is afterwards (still there with ``deletionTimestamp``, or gone)."""
        with self.lock:
            current = self.objects.get((resource.key, namespace, name))
            if current is None:
                raise not_found(resource, name)
            meta = current["metadata"]
            for key in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(key)
                if wanted and wanted != meta[key]:
                    raise ApiError(
                        409,
                        "Conflict",
                        f"Precondition failed: {key} in precondition: {wanted}, {key} in object meta: "
                        f"{meta[key]}",
                        {"name": name},
                    )
            obj = copy.deepcopy(current)
            grace = 0
            if resource.plural == "pods" and resource.group == "" and obj.get("spec", {}).get("nodeName"):
                default = obj["spec"].get("terminationGracePeriodSeconds", 30)
                grace = default if grace_period_s is None else grace_period_s
                if "deletionGracePeriodSeconds" in meta:
                    grace = min(grace, meta["deletionGracePeriodSeconds"])
            if grace > 0 or obj["metadata"].get("finalizers"):
                if "deletionTimestamp" not in meta or grace != meta.get("deletionGracePeriodSeconds", grace):
                    obj["metadata"]["deletionTimestamp"] = meta.get("deletionTimestamp") or now()
                    obj["metadata"]["deletionGracePeriodSeconds"] = grace
                    self.objects[(resource.key, namespace, name)] = obj
                    self._commit("MODIFIED", resource, current, obj)
                if not self._may_go(resource, obj):
                    return copy.deepcopy(obj)
            self.objects[(resource.key, namespace, name)] = obj
            return self._remove(resource, namespace, name)

    @staticmethod
    def _may_go(resource: Resource, obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        return (
            "deletionTimestamp" in meta
            and not meta.get("finalizers")
            and meta.get("deletionGracePeriodSeconds", 0) == 0
        )

    def _remove(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        gone = self.objects.pop((resource.key, namespace, name))
        final = copy.deepcopy(gone)
        self._commit("DELETED", resource, gone, final)
        return final

    @staticmethod
    def _check_kind(resource: Resource, obj: dict[str, Any]) -> None:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body is not a JSON object")
        if (
            obj.get("kind", resource.kind) != resource.kind
            or obj.get("apiVersion", resource.api_version) != resource.api_version
        ):
            raise ApiError(
                400,
                "BadRequest",
                f"the body is a {obj.get('apiVersion')}/{obj.get('kind')}, not a "
                f"{resource.api_version}/{resource.kind}",
            )
        obj.setdefault("kind", resource.kind)
        obj.setdefault("apiVersion", resource.api_version)


def _spec_of(obj: dict[str, Any]) -> Any:
    """What ``metadata.generation`` counts changes of: everything but metadata and status."""
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}
