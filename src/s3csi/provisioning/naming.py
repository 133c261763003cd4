"""Names derived from the CO's volume name, and the volume id that encodes where a volume lives.

The CO's name (``pvc-<uid>`` from the external-provisioner, any Unicode string of up to 128 bytes per
the spec) becomes a DNS-safe *stem* plus a hash of the whole name, so that:

- the result is deterministic (a repeated CreateVolume finds the same bucket),
- two names never share a bucket or prefix in practice (64 bits of SHA-256; the stem alone could
  collide, e.g. ``PVC_1`` and ``pvc-1``),
- it is a valid S3 bucket name: 3-63 characters, lowercase letters, digits and single hyphens, starting
  and ending alphanumeric, never in IP-address form (no dots), never with a reserved prefix or suffix.

Volume ids carry everything DeleteVolume needs, so the controller keeps no state::

    bucket:<bucket>              bucket-per-volume: the whole bucket is the volume
    prefix:<bucket>:<leaf>       prefix-per-volume: the prefix "<leaf>/" in an existing bucket

Both stay within the spec's 128-byte limit for strings (the leaf is at most 56 characters).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from s3csi.errors import InvalidArgument
from s3csi.volume.context import validate_bucket_name

HASH_CHARS = 16
MAX_BUCKET_NAME = 63
MAX_LEAF = 56
# AWS reserves these for its own features; a derived name must not start with them.
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_NOT_DNS = re.compile(r"[^a-z0-9]+")
_LEAF = re.compile(rf"[a-z0-9](?:[a-z0-9-]{{0,{MAX_LEAF - 2}}}[a-z0-9])?")


class ProvisioningMode(StrEnum):
    BUCKET_PER_VOLUME = "bucket-per-volume"
    PREFIX_PER_VOLUME = "prefix-per-volume"


_ID_TAG = {ProvisioningMode.BUCKET_PER_VOLUME: "bucket", ProvisioningMode.PREFIX_PER_VOLUME: "prefix"}


def derived_name(volume_name: str, max_length: int) -> str:
    """``<stem>-<hash>``: the stem is the name lowercased with every run of other characters turned
    into one hyphen, cut to fit ``max_length``; the hash is of the whole, unchanged name."""
    digest = hashlib.sha256(volume_name.encode("utf-8")).hexdigest()[:HASH_CHARS]
    stem = _NOT_DNS.sub("-", volume_name.lower()).strip("-")
    if stem.startswith(_RESERVED_PREFIXES):
        stem = f"v-{stem}"
    stem = stem[: max_length - HASH_CHARS - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else digest


def bucket_name_for(volume_name: str) -> str:
    return validate_bucket_name(derived_name(volume_name, MAX_BUCKET_NAME))


def leaf_for(volume_name: str) -> str:
    return derived_name(volume_name, MAX_LEAF)


@dataclass(frozen=True)
class VolumeId:
    """Where a provisioned volume lives; ``str()`` is the CSI volume id."""

    mode: ProvisioningMode
    bucket: str
    leaf: str | None = None
    """The volume's own prefix without its "/", for prefix-per-volume; None for bucket-per-volume."""

    @property
    def prefix(self) -> str:
        """The volume's prefix in the bucket: "" (the whole bucket) or ``<leaf>/``."""
        return f"{self.leaf}/" if self.leaf else ""

    def __str__(self) -> str:
        parts = [_ID_TAG[self.mode], self.bucket] + ([self.leaf] if self.leaf else [])
        return ":".join(parts)

    @classmethod
    def parse(cls, volume_id: str) -> VolumeId | None:
        """The volume an id names, or None when this driver cannot have made it (the spec then wants
        DeleteVolume to succeed and other calls to answer NOT_FOUND)."""
        parts = volume_id.split(":")
        try:
            if parts[0] == "bucket" and len(parts) == 2:
                return cls(ProvisioningMode.BUCKET_PER_VOLUME, validate_bucket_name(parts[1]))
            if parts[0] == "prefix" and len(parts) == 3 and _LEAF.fullmatch(parts[2]):
                return cls(ProvisioningMode.PREFIX_PER_VOLUME, validate_bucket_name(parts[1]), parts[2])
        except InvalidArgument:
            return None
        return None
