"""Whether a volume's record proves that this driver created the volume an id names (pure).

DeleteVolume removes data, and a volume id is only a string: anyone who can reach the controller, and
any static PV with ``persistentVolumeReclaimPolicy: Delete``, can name a bucket or prefix this driver never
made (``bucket:precious-data``, ``prefix:shared:home``). So the id alone decides nothing: the record object
that CreateVolume wrote (``plan.marker_key``) must name exactly this volume —

- its ``volumeId`` is the id asked for,
- its ``name`` derives that very id (bucket names and leaves end in a hash of the name, so a record copied
  from another volume or written by hand for a bucket or prefix the driver did not name fails here),
- its ``volumeContext`` holds the id's bucket and prefix.

Anything else — no record, a corrupt one, one of another volume — proves nothing, and the volume is left
as it is.
"""

from __future__ import annotations

import json
from typing import Any

from s3csi.provisioning.naming import ProvisioningMode, VolumeId, bucket_name_for, leaf_for
from s3csi.volume import context


def parse_record(body: bytes | bytearray) -> dict[str, Any] | None:
    """The record's JSON object; None when the body is not one (a corrupt or foreign object)."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _derived_id(mode: ProvisioningMode, bucket: str, name: str) -> VolumeId:
    if mode is ProvisioningMode.BUCKET_PER_VOLUME:
        return VolumeId(mode, bucket_name_for(name))
    return VolumeId(mode, bucket, leaf_for(name))


def why_not_proven(volume_id: VolumeId, body: bytes | bytearray | None) -> str | None:
    """None when ``body`` (the record object at the volume's marker key, None when absent) proves that
    this driver created ``volume_id``; else the reason, for the operator's log line."""
    if body is None:
        return "no record of this driver is there"
    record = parse_record(body)
    if record is None:
        return "its record is not a JSON object"
    if record.get("volumeId") != str(volume_id):
        return "its record names another volume id"
    name = record.get("name")
    if not isinstance(name, str) or _derived_id(volume_id.mode, volume_id.bucket, name) != volume_id:
        return "its record's volume name does not derive this id"
    attributes = record.get("volumeContext")
    if not isinstance(attributes, dict):
        return "its record has no volume attributes"
    if attributes.get(context.BUCKET_NAME) != volume_id.bucket:
        return "its record's bucketName is another bucket"
    if attributes.get(context.PREFIX, "") != volume_id.prefix:
        return "its record's prefix is another prefix"
    return None
