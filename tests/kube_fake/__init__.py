"""An in-process fake Kubernetes API server that real clients talk to over HTTPS (docs/kubernetes.md,
"The fake API server in the tests"): :class:`~tests.kube_fake.server.FakeKubeApi`."""

from tests.kube_fake.server import FakeKubeApi, Request
from tests.kube_fake.store import ApiError

__all__ = ["ApiError", "FakeKubeApi", "Request"]
