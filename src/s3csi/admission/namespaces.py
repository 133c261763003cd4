"""The namespace decision: refuse a namespace whose label has a value no webhook path serves.

An invalid value would otherwise be silently ignored (no namespaceSelector matches it), so the admin who set
it would believe pods are defaulted when they are not.
"""

from __future__ import annotations

from collections.abc import Mapping

from s3csi.admission.labels import NAMESPACE_DEFAULTS
from s3csi.admission.review import AdmissionRequest, AdmissionResponse, allow, deny, shown


def label_violations(labels: Mapping[str, object]) -> list[str]:
    """One message per namespace label whose value is not allowed, naming the label and the allowed values.

    deploy/admission/policies.yaml builds the same messages in CEL; tests compare the two.
    """
    violations = []
    for default in NAMESPACE_DEFAULTS:
        if default.label in labels and labels[default.label] not in default.allowed_values:
            allowed = ", ".join(default.allowed_values)
            violations.append(
                f"namespace label {default.label}: {shown(labels[default.label])} is not allowed; "
                f"allowed values: {allowed}"
            )
    return violations


def validate_namespace(request: AdmissionRequest) -> AdmissionResponse:
    namespace = request.get("object")
    metadata = namespace.get("metadata") if isinstance(namespace, dict) else None
    if not isinstance(metadata, dict):
        return allow(request, warnings=["the request carries no namespace object with metadata: not checked"])
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        return allow(
            request, warnings=[f"metadata.labels is not an object (got {shown(labels)}): not checked"]
        )
    violations = label_violations(labels)
    return deny(request, "; ".join(violations)) if violations else allow(request)
