"""The resources the fake API server serves, and how each object is validated before it is accepted.

Built-in kinds are validated with kubernetes-validate's strict schemas (unknown fields refused); custom
resources with the ``openAPIV3Schema`` of their CustomResourceDefinition (deploy/crds/*.yaml), turned into a
JSON schema that refuses unknown fields too (the API server's ``fieldValidation=Strict``). Their CEL rules
(``x-kubernetes-validations``) are evaluated with cel-python (tests/crd_support.py). The CRD itself is first
validated as a built-in object.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import referencing
import yaml

from tests.crd_support import rule_errors

KUBERNETES_VERSION = kubernetes_validate.latest_version()
REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "deploy" / "crds"

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class Invalid(ValueError):
    """An object the API server would refuse with 422 Unprocessable Entity; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


Validator = Callable[[dict[str, Any], dict[str, Any] | None], None]
"""Checks an object (and, for an update, the object it replaces); raises Invalid."""


@dataclass(frozen=True)
class Resource:
    group: str
    """"" for the core group."""
    version: str
    plural: str
    kind: str
    namespaced: bool
    status_subresource: bool
    validate: Validator = field(compare=False, repr=False)
    selectable_fields: frozenset[str] = frozenset()
    """Field selector paths beyond ``metadata.name`` and ``metadata.namespace``."""
    initial_status: dict[str, Any] | None = field(default=None, compare=False)
    """What a create through the API sets as status (a client cannot set it there)."""
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return self.group, self.plural

    def qualified(self) -> str:
        """How the API server names the kind in messages: ``pods``, ``leases.coordination.k8s.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def check_name(self, name: str) -> None:
        pattern, limit = (_LABEL, 63) if self.plural == "namespaces" else (_SUBDOMAIN, 253)
        if len(name) > limit or not pattern.fullmatch(name):
            raise Invalid(
                "metadata.name",
                f"Invalid value: {name!r}: a lowercase RFC 1123 "
                f"{'label' if limit == 63 else 'subdomain'} must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )


@functools.cache
def _builtin_schema(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """kubernetes-validate's strict schema of one built-in kind, loaded and compiled once per process.

    ``kubernetes_validate.validate`` does the same per call, parsing the kind's schema and the multi-megabyte
    ``_definitions.json`` every time (tenths of a second): the fake API server validates every write, so a
    test that creates a hundred Pods spent most of its time there. Same schema files, same validator class.
    """
    schema_dir = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = _schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", KUBERNETES_VERSION)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(
            version=KUBERNETES_VERSION, kind=kind, api_version=api_version
        ) from None
    definitions = _schema_contents(f"{schema_dir}/_definitions.json", KUBERNETES_VERSION)
    registry: referencing.Registry[Any] = referencing.Resource.from_contents(definitions) @ (
        referencing.Resource.from_contents(schema) @ referencing.Registry()
    )
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


_schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)


def builtin_validator(obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    try:
        _builtin_schema(obj["kind"], obj["apiVersion"]).validate(obj)
    except jsonschema.ValidationError as exc:
        raise Invalid(".".join(str(part) for part in exc.path), exc.message) from None


def _builtin(
    group: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    status: bool = False,
    fields: Iterable[str] = (),
    initial_status: dict[str, Any] | None = None,
) -> Resource:
    return Resource(
        group,
        "v1",
        plural,
        kind,
        namespaced,
        status,
        builtin_validator,
        frozenset(fields),
        initial_status,
    )


BUILTIN = (
    _builtin(
        "",
        "pods",
        "Pod",
        status=True,
        fields=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
        initial_status={"phase": "Pending"},
    ),
    _builtin(
        "",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        status=True,
        initial_status={"phase": "Pending"},
    ),
    _builtin(
        "",
        "persistentvolumes",
        "PersistentVolume",
        namespaced=False,
        status=True,
        initial_status={"phase": "Pending"},
    ),
    _builtin("", "serviceaccounts", "ServiceAccount"),
    _builtin("", "secrets", "Secret", fields=("type",)),
    _builtin(
        "",
        "events",
        "Event",
        fields=(
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ),
    ),
    _builtin(
        "",
        "namespaces",
        "Namespace",
        namespaced=False,
        status=True,
        fields=("status.phase",),
        initial_status={"phase": "Active"},
    ),
    _builtin("", "nodes", "Node", namespaced=False, status=True, fields=("spec.unschedulable",)),
    _builtin("coordination.k8s.io", "leases", "Lease"),
)


def openapi_to_jsonschema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema accepting what the API server accepts for a structural ``openAPIV3Schema``, refusing
    unknown fields (pruning would drop them silently: a test should hear about a misspelt field)."""
    out = {key: value for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    out.pop("nullable", None)
    if schema.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema:
        out["properties"] = {name: openapi_to_jsonschema(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = openapi_to_jsonschema(schema["additionalProperties"])
    if "items" in schema:
        out["items"] = openapi_to_jsonschema(schema["items"])
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            out[combinator] = [openapi_to_jsonschema(sub) for sub in schema[combinator]]
    if "not" in schema:
        out["not"] = openapi_to_jsonschema(schema["not"])
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _custom_validator(kind: str, api_version: str, schema: dict[str, Any]) -> Validator:
    root = copy.deepcopy(schema)
    properties = root.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties["metadata"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    checker = jsonschema.Draft7Validator(
        openapi_to_jsonschema(root), format_checker=jsonschema.FormatChecker()
    )

    def validate(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if obj.get("apiVersion") != api_version or obj.get("kind") != kind:
            raise Invalid("", f"apiVersion/kind must be {api_version}/{kind}")
        # The metadata a custom resource carries is an ObjectMeta like any built-in's.
        meta_carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
        builtin_validator(meta_carrier)
        error = jsonschema.exceptions.best_match(checker.iter_errors(obj))
        if error is not None:
            raise Invalid(".".join(str(part) for part in error.absolute_path), error.message)
        # CEL rules (x-kubernetes-validations; those naming oldSelf on updates only), by cel-python.
        broken = rule_errors(schema, obj, old)
        if broken:
            where, _, message = broken[0].partition(": ")
            raise Invalid(where.lstrip("."), message)

    return validate


def crd_resources(crd: dict[str, Any]) -> list[Resource]:
    """The served versions of a CustomResourceDefinition, validated first as the API server would."""
    builtin_validator(crd)
    spec = crd["spec"]
    names = spec["names"]
    resources = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        api_version = f"{spec['group']}/{version['name']}"
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if schema is None:
            raise Invalid("spec.versions.schema.openAPIV3Schema", "Required value: schemas are required")
        selectable = [item["jsonPath"].lstrip(".") for item in version.get("selectableFields", [])]
        resources.append(
            Resource(
                spec["group"],
                version["name"],
                names["plural"],
                names["kind"],
                spec["scope"] == "Namespaced",
                "status" in (version.get("subresources") or {}),
                _custom_validator(names["kind"], api_version, schema),
                frozenset(selectable),
                None,
                custom=True,
            )
        )
    return resources


def repository_crds(directory: Path = CRD_DIR) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in ``directory``'s YAML files (none when it does not exist)."""
    found = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        for document in copy.deepcopy(_yaml_documents(path.read_text())):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                found.append(document)
    return found


@functools.cache
def _yaml_documents(text: str) -> list[Any]:
    """Parsed once per text: every fake API server loads the repository's CRDs, and parsing them with the
    pure-Python YAML loader cost more than starting the server. Callers get deep copies."""
    return list(yaml.safe_load_all(text))
