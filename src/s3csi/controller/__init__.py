"""``s3csi controller``: one Mountpoint Pod and one MountpointPodAttachment per (node, sharing key) for the
workload pods using this driver's volumes (docs/kubernetes.md#the-controller).

``inputs`` and ``reconcile`` decide (pure); ``leader`` holds the Lease; :mod:`s3csi.kube.informer` keeps
the watched objects; ``main`` runs them and carries out the decisions.
"""
