"""Volume ownership manager (docs/ownership.md): kubelet's SetVolumeOwnership with fsUser, for the
directories s3csi manages itself and for ``s3csi ownership apply``."""

from s3csi.ownership.policy import FsGroupChangePolicy, OwnershipTarget
from s3csi.ownership.shared_dir import prepare_shared_dir
from s3csi.ownership.walk import EntryError, OwnershipReport, set_volume_ownership

__all__ = [
    "EntryError",
    "FsGroupChangePolicy",
    "OwnershipReport",
    "OwnershipTarget",
    "prepare_shared_dir",
    "set_volume_ownership",
]
