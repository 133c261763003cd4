"""The demo scenarios as data (pure): the volumes a cluster administrator makes and the pods that
use them, each with what it should see. ``/data`` in a pod's command is its volume's target path."""

from __future__ import annotations

from dataclasses import dataclass

from s3csi.volume.context import BUCKET_NAME, FS_USER, PREFIX

BUCKET = "my-bucket"
# The PV's and the StorageClass's mountOptions of the fsGroup example (docs/mount-options.md).
FSGROUP_EXAMPLE_OPTIONS = ("uid=1001", "gid=1001", "allow-other")


@dataclass(frozen=True)
class Volume:
    pv_name: str
    volume_id: str  # the PV's volumeHandle, or what CreateVolume returned
    volume_context: dict[str, str]
    mount_flags: tuple[str, ...]

    @property
    def bucket(self) -> str:
        return self.volume_context[BUCKET_NAME]

    @property
    def prefix(self) -> str:
        return self.volume_context.get(PREFIX, "")


@dataclass(frozen=True)
class Pod:
    name: str
    pv_name: str
    run_as_user: int
    run_as_group: int
    fs_group: int | None
    read_only: bool
    file: str  # the pod runs `echo hello > /data/<file>`
    writes: bool  # whether that write must succeed (a read-only pod's must fail with EROFS)
    file_mode: str  # what `ls -l` must show for the file it sees

    @property
    def command(self) -> str:
        return f"echo hello > /data/{self.file}"


def static_volumes() -> list[Volume]:
    return [
        # The fsGroup example's static PV.
        Volume("s3-pv", "s3-csi-fsgroup-example", {BUCKET_NAME: BUCKET}, FSGROUP_EXAMPLE_OPTIONS),
        # A home-directory volume with a pod-level owner (fsUser): owner-only files.
        Volume("s3-pv-home", "s3-csi-home", {BUCKET_NAME: BUCKET, PREFIX: "home/", FS_USER: "1005"}, ()),
    ]


def pods(dynamic_pv: str) -> list[Pod]:
    return [
        Pod("s3-app-1", "s3-pv", 1001, 1001, 1001, False, "test.txt", True, "-rw-rw----"),
        Pod("s3-app-2", "s3-pv", 1001, 1001, 1001, False, "app-2.txt", True, "-rw-rw----"),
        Pod("other-group", "s3-pv", 2002, 2002, 2002, False, "other-group.txt", True, "-rw-rw----"),
        Pod("reader", "s3-pv", 1001, 1001, 1001, True, "reader.txt", False, "-rw-rw----"),
        Pod("ssh-user", "s3-pv-home", 1005, 1005, None, False, "id.txt", True, "-rw-------"),
        Pod("dynamic-app", dynamic_pv, 1001, 1001, 1001, False, "test.txt", True, "-rw-rw----"),
    ]
