"""A small Kubernetes API client for the node plugin: the workload pod and its service account.

kubelet does not send pod annotations to CSI drivers, so the annotations s3csi reads (``s3csi.io/fs-user``
on the pod, ``eks.amazonaws.com/role-arn`` on its service account) are fetched from the API server with
``get`` (RBAC in deploy/node-rbac.yaml). :mod:`~s3csi.kube.identity` holds the pure decisions,
:mod:`~s3csi.kube.client` the calls (through kubernetes-asyncio, docs/kubernetes.md),
:mod:`~s3csi.kube.settings` where the API server is. :mod:`~s3csi.kube.api` calls by path on raw JSON and
:mod:`~s3csi.kube.informer` keeps a list+watch cache on it: the controller and the node plugin's
Kubernetes runtime share both.
"""
