"""The proof DeleteVolume demands before it deletes (provisioning/proof.py): a table of records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from s3csi.provisioning.naming import VolumeId
from s3csi.provisioning.plan import CapacityRange, plan_volume
from s3csi.provisioning.proof import why_not_proven

BUCKET_PLAN = plan_volume("pvc-1", {}, CapacityRange())
PREFIX_PLAN = plan_volume(
    "pvc-2", {"provisioningMode": "prefix-per-volume", "bucketName": "team"}, CapacityRange()
)


def body(record: Any) -> bytes:
    return json.dumps(record).encode()


def changed(record: dict[str, Any], **changes: Any) -> bytes:
    return body(record | changes)


@pytest.mark.parametrize("plan", [BUCKET_PLAN, PREFIX_PLAN], ids=["bucket", "prefix"])
@pytest.mark.parametrize(
    ("make_body", "reason"),
    [
        (body, None),
        (lambda r: None, "no record"),
        (lambda r: b"{not json", "not a JSON object"),
        (lambda r: body([r]), "not a JSON object"),
        (lambda r: changed(r, volumeId="bucket:other-bucket"), "another volume id"),
        (lambda r: changed(r, name="pvc-other"), "does not derive"),
        (lambda r: changed(r, name=7), "does not derive"),
        (lambda r: changed(r, volumeContext="x"), "no volume attributes"),
        (lambda r: changed(r, volumeContext=r["volumeContext"] | {"bucketName": "other"}), "another bucket"),
        (lambda r: changed(r, volumeContext=r["volumeContext"] | {"prefix": "home/"}), "another prefix"),
    ],
)
def test_only_the_volumes_own_record_proves_it(plan: Any, make_body: Any, reason: str | None) -> None:
    found = why_not_proven(plan.volume_id, make_body(plan.record))
    assert found is None if reason is None else reason in (found or "")


def test_a_hand_named_prefix_or_bucket_can_never_be_proven() -> None:
    """Derived names end in a hash of the volume name: "home" or "precious-data" derive from no name."""
    for volume_id in (VolumeId.parse("prefix:team:home"), VolumeId.parse("bucket:precious-data")):
        assert volume_id is not None
        record = {
            "name": "home",
            "volumeId": str(volume_id),
            "volumeContext": {"bucketName": volume_id.bucket},
        }
        assert "does not derive" in (why_not_proven(volume_id, body(record)) or "")
