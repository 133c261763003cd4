"""Mountpoint Pods: the unprivileged processes that serve FUSE mounts made by the node plugin.

``protocol`` is the mount.sock wire format, ``mounter`` the Mountpoint Pod process, ``runtime`` where
such a process runs (locally, or later as a Kubernetes Pod), ``publisher`` NodePublishVolume and
NodeUnpublishVolume on top of them (docs/node-publish.md).
"""
