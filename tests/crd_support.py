"""Validate an object against s3csi's CRDs (deploy/crds/) as the API server would, without one.

:func:`validation_errors` applies the version's openAPIV3Schema (JSON Schema, with ``format`` checked), the
``x-kubernetes-validations`` CEL rules evaluated with cel-python (transition rules, those naming ``oldSelf``,
only on an update, as Kubernetes does) and the uniqueness of ``x-kubernetes-list-type: map`` keys.
What it cannot check: Kubernetes' static CEL cost estimate and type-checking at CRD creation.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

CRDS = Path(__file__).resolve().parents[1] / "deploy" / "crds"
ATTACHMENT_CRD = CRDS / "s3csi.io_mountpointpodattachments.yaml"

_CEL = celpy.Environment()


def load_crd(path: Path = ATTACHMENT_CRD) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def version_schema(crd: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(version)


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return _CEL.program(_CEL.compile(rule))


def _rule_errors(schema: dict[str, Any], value: Any, old: Any, path: str) -> list[str]:
    errors = []
    for validation in schema.get("x-kubernetes-validations", []):
        rule = validation["rule"]
        activation = {"self": celpy.json_to_cel(value)}
        if "oldSelf" in rule:
            if old is None:
                continue
            activation["oldSelf"] = celpy.json_to_cel(old)
        result = _program(rule).evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            errors.append(f"{path}: rule {rule!r} failed to evaluate: {result}")
        elif not bool(result):
            errors.append(f"{path}: {validation.get('message', rule)}")
    return errors


def _walk(schema: dict[str, Any], value: Any, old: Any, path: str) -> list[str]:
    errors = _rule_errors(schema, value, old, path)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                old_item = old.get(key) if isinstance(old, dict) else None
                errors += _walk(sub, item, old_item, f"{path}.{key}")
    elif isinstance(value, list):
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema["x-kubernetes-list-map-keys"]
            seen = [tuple(item.get(key) for key in keys) for item in value]
            if len(seen) != len(set(seen)):
                errors.append(f"{path}: duplicate entries for list-map keys {keys}")
        for index, item in enumerate(value):
            errors += _walk(schema.get("items", {}), item, None, f"{path}[{index}]")
    return errors


def validation_errors(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Why the API server would refuse ``obj`` (a create, or an update of ``old``); [] when it would not."""
    schema = version_schema(load_crd())
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [
        f"{'.'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(obj)
    ]
    if errors:  # CEL rules assume the schema's types
        return errors
    return _walk(schema, obj, old, "")


def rule_errors(schema: dict[str, Any], obj: Any, old: Any = None) -> list[str]:
    """The ``x-kubernetes-validations`` (and list-map key) errors of ``obj`` under any CRD version's
    ``schema``: for callers that check the JSON schema part themselves (tests/kube_fake)."""
    return _walk(schema, obj, old, "")
