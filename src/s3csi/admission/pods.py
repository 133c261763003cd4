"""The pod decision: default one ``spec.securityContext`` field, never overriding the pod's own value.

Total over any JSON: what it cannot default it answers with ``allowed: true``, no patch and a warning, so
a malformed request never blocks a pod (the defaults are an optimisation, not a gate).
"""

from __future__ import annotations

from s3csi.admission.labels import NamespaceDefault
from s3csi.admission.review import (
    AdmissionRequest,
    AdmissionResponse,
    JSONPatchOperation,
    allow,
    allow_with_patch,
    json_pointer,
    shown,
)

POD_KIND = {"group": "", "version": "v1", "kind": "Pod"}


def pod_patch(pod: object, field: str, value: str) -> list[JSONPatchOperation] | str:
    """The JSON Patch that sets ``spec.securityContext.<field>`` to ``value``, or why it cannot.

    An empty patch means the pod sets the field itself. A ``null`` field or securityContext counts as
    absent, as it does for the API server; ``add`` then replaces the ``null``.
    """
    if not isinstance(pod, dict):
        return f"the request carries no pod object (got {shown(pod)})"
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return "the pod has no spec"
    security_context = spec.get("securityContext")
    if security_context is None:
        return [
            JSONPatchOperation(op="add", path=json_pointer("spec", "securityContext"), value={field: value})
        ]
    if not isinstance(security_context, dict):
        return f"spec.securityContext is not an object (got {shown(security_context)})"
    if security_context.get(field) is not None:
        return []
    return [JSONPatchOperation(op="add", path=json_pointer("spec", "securityContext", field), value=value)]


def default_pod(request: AdmissionRequest, default: NamespaceDefault, value: str) -> AdmissionResponse:
    """Answer a pod CREATE in a namespace labelled ``default.label: value``."""
    reason: str
    if request.get("kind") != POD_KIND or request.get("subResource"):
        reason = f"the request is for {shown(request.get('kind'))} {shown(request.get('subResource', ''))}"
    elif request.get("operation") != "CREATE":
        reason = f"operation {shown(request.get('operation'))} is not defaulted, only CREATE"
    else:
        patch = pod_patch(request.get("object"), default.field, value)
        if isinstance(patch, list):
            return allow_with_patch(request, patch) if patch else allow(request)
        reason = patch
    return allow(request, warnings=[f"{default.label}={value}: {default.field} not defaulted: {reason}"])
