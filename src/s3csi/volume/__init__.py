"""The domain of one volume, as pure functions (no I/O; enforced by ``.importlinter``).

- ``options``: mount-s3 flags as an immutable value type (parsing, normalising, the deny-list).
- ``context``: volume attributes (``bucketName``, ``prefix``, …) and the keys kubelet adds.
- ``policy``: fsGroup, fsUser and read-only → the effective mount (docs/mount-options.md).
- ``sharing``: which workloads may share one Mountpoint Pod (docs/architecture.md#sharing).
"""
