"""The namespace labels, their allowed values, and the webhook paths (docs/admission.md).

The paths are a contract with deploy/admission/webhook.yaml: one MutatingWebhook entry per label value,
selected by a namespaceSelector on that value, calls the path that names the value. So the webhook learns
the namespace's label from the path and never reads the Namespace from the API server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NamespaceDefault:
    """One namespace label and the PodSecurityContext field it defaults."""

    label: str
    """The namespace label key."""
    field: str
    """The ``spec.securityContext`` field of the pod that the label's value defaults."""
    allowed_values: tuple[str, ...]
    """Label values that are accepted; each has its own webhook path."""

    @property
    def path_segment(self) -> str:
        """The label's name without its prefix: ``fsgroup-change-policy``."""
        return self.label.rpartition("/")[2]

    def mutate_path(self, value: str) -> str:
        return f"{MUTATE_PODS_PREFIX}/{self.path_segment}/{value}"


# OpenShift's enhancement gives the fsGroup label one meaning: "if that is set to OnRootMismatch …
# start defaulting".
# `Always` is Kubernetes' own default, so a namespace label asking for it would change nothing: refusing it
# tells the admin so instead of silently ignoring the label.
FSGROUP_CHANGE_POLICY = NamespaceDefault(
    label="storage.openshift.io/fsgroup-change-policy",
    field="fsGroupChangePolicy",
    allowed_values=("OnRootMismatch",),
)
# The two values of PodSecurityContext.seLinuxChangePolicy.
SELINUX_CHANGE_POLICY = NamespaceDefault(
    label="storage.openshift.io/selinux-change-policy",
    field="seLinuxChangePolicy",
    allowed_values=("Recursive", "MountOption"),
)
NAMESPACE_DEFAULTS: tuple[NamespaceDefault, ...] = (FSGROUP_CHANGE_POLICY, SELINUX_CHANGE_POLICY)

MUTATE_PODS_PREFIX = "/mutate-pods"
VALIDATE_NAMESPACES_PATH = "/validate-namespaces"
HEALTHZ_PATH = "/healthz"

# path → (label, value): /mutate-pods/fsgroup-change-policy/OnRootMismatch, …
MUTATE_PATHS: dict[str, tuple[NamespaceDefault, str]] = {
    default.mutate_path(value): (default, value)
    for default in NAMESPACE_DEFAULTS
    for value in default.allowed_values
}
