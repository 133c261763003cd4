"""Makes and removes the buckets and prefixes of provisioned volumes (docs/csi.md).

The store itself is the only state: each volume has a record object (``plan.marker_key``) holding the
parameters it was created with, so a CreateVolume repeated by a restarted controller still tells "the
same volume again" (success) from "the same name, other parameters" (AlreadyExists). Calls for one
volume are serialised by a lock per volume id; calls for different volumes run in parallel.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from s3csi.errors import AlreadyExists, FailedPrecondition
from s3csi.locks import KeyedLocks
from s3csi.provisioning.naming import ProvisioningMode, VolumeId
from s3csi.provisioning.plan import VolumePlan, marker_key
from s3csi.provisioning.proof import parse_record, why_not_proven
from s3csi.s3 import CredentialProvider, Credentials, S3Client, S3Settings, StaticCredentials
from s3csi.s3.errors import (
    AccessDenied,
    BucketAlreadyExists,
    BucketNotEmpty,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
)

log = logging.getLogger(__name__)

# DeleteBucket answers BucketNotEmpty while a workload still writes: list and delete again this often.
DELETE_ROUNDS = 3


class Provisioner:
    """CreateVolume / DeleteVolume / "does it exist" against one S3 endpoint.

    ``credentials`` None on a call means the driver's own (``driver_credentials``, one shared client);
    otherwise the request's keys, with a client of their own for that call.
    """

    def __init__(self, settings: S3Settings, driver_credentials: CredentialProvider) -> None:
        self._settings = settings
        self._driver_credentials = driver_credentials
        self._driver_client: S3Client | None = None
        self._locks = KeyedLocks()

    async def close(self) -> None:
        if self._driver_client is not None:
            await self._driver_client.close()

    @asynccontextmanager
    async def _client(self, credentials: Credentials | None) -> AsyncIterator[S3Client]:
        if credentials is None:
            if self._driver_client is None:
                self._driver_client = S3Client(self._settings, self._driver_credentials)
            yield self._driver_client
        else:
            async with S3Client(self._settings, StaticCredentials(credentials)) as client:
                yield client

    async def create_volume(self, plan: VolumePlan, credentials: Credentials | None) -> None:
        """Make the volume, or find it made with the same parameters; AlreadyExists otherwise."""
        volume_id = plan.volume_id
        async with self._locks.hold(str(volume_id)), self._client(credentials) as s3:
            if volume_id.mode is ProvisioningMode.BUCKET_PER_VOLUME:
                await self._create_bucket(s3, volume_id.bucket)
            else:
                try:
                    await s3.head_bucket(volume_id.bucket)
                except NoSuchBucket:
                    raise FailedPrecondition(
                        f"bucket {volume_id.bucket} (StorageClass parameter bucketName) does not exist"
                    ) from None
            existing = await self._read_record(s3, volume_id)
            if existing is None:
                await s3.put_object(volume_id.bucket, plan.marker_key, plan.record_bytes())
                log.info("created volume %s for %s", volume_id, plan.record["name"])
            elif existing != plan.record:
                differing = sorted(
                    k for k in plan.record.keys() | existing.keys() if plan.record.get(k) != existing.get(k)
                )
                raise AlreadyExists(
                    f"volume {plan.record['name']!r} already exists as {volume_id} with other "
                    f"{', '.join(differing)}"
                )

    async def _create_bucket(self, s3: S3Client, bucket: str) -> None:
        try:
            await s3.create_bucket(bucket)
        except BucketAlreadyExists:
            # Some stores answer this, not BucketAlreadyOwnedByYou, to their owner: the bucket is
            # ours when these credentials may use it.
            try:
                await s3.head_bucket(bucket)
            except AccessDenied:
                raise FailedPrecondition(f"bucket name {bucket} is taken by another account") from None

    async def _read_record_body(self, s3: S3Client, volume_id: VolumeId) -> bytes | bytearray | None:
        try:
            return await s3.get_object(volume_id.bucket, marker_key(volume_id))
        except NoSuchKey:
            return None

    async def _read_record(self, s3: S3Client, volume_id: VolumeId) -> dict[str, Any] | None:
        body = await self._read_record_body(s3, volume_id)
        if body is None:
            return None
        record = parse_record(body)
        if record is None:
            raise FailedPrecondition(f"the record of volume {volume_id} ({marker_key(volume_id)}) is corrupt")
        return record

    async def delete_volume(self, volume_id: VolumeId, credentials: Credentials | None) -> None:
        """Delete the volume when its record proves this driver created it (``proof``); otherwise leave
        everything as it is and log a WARNING naming why. A volume that is already gone is fine.

        Deleting: abort the volume's multipart uploads in progress, remove every object of the volume,
        then its record, then (bucket-per-volume) the bucket. Should the bucket still be written to after
        the last round, the record is put back, so that the next DeleteVolume still finds its proof."""
        async with self._locks.hold(str(volume_id)), self._client(credentials) as s3:
            try:
                body = await self._read_record_body(s3, volume_id)
            except NoSuchBucket:
                log.info("DeleteVolume of %s: its bucket does not exist, nothing to delete", volume_id)
                return
            reason = why_not_proven(volume_id, body)
            if reason is not None or body is None:
                log.warning(
                    "DeleteVolume of %s: not deleted, as nothing proves this driver created it (%s); "
                    "answering OK and leaving the bucket and its objects untouched",
                    volume_id,
                    reason,
                )
                return
            try:
                await self._delete(s3, volume_id, body)
            except NoSuchBucket:
                pass
            log.info("deleted volume %s", volume_id)

    async def _delete(self, s3: S3Client, volume_id: VolumeId, record: bytes | bytearray) -> None:
        for _ in range(DELETE_ROUNDS):
            await self._abort_uploads(s3, volume_id)
            await self._delete_prefix(s3, volume_id)
            await s3.delete_object(volume_id.bucket, marker_key(volume_id))
            if volume_id.mode is ProvisioningMode.PREFIX_PER_VOLUME:
                return
            try:
                await s3.delete_bucket(volume_id.bucket)
                return
            except BucketNotEmpty:
                continue
        await s3.put_object(volume_id.bucket, marker_key(volume_id), bytes(record))
        raise FailedPrecondition(
            f"bucket {volume_id.bucket} is still being written to; unmount the volume and retry"
        )

    async def _abort_uploads(self, s3: S3Client, volume_id: VolumeId) -> None:
        """Abort every multipart upload in progress under the volume's prefix, page by page: their
        parts are data the store keeps (and bills) until then, and some stores refuse DeleteBucket
        while one is open. Any failure but NoSuchUpload propagates."""
        key_marker: str | None = None
        upload_id_marker: str | None = None
        while True:
            page = await s3.list_multipart_uploads(
                volume_id.bucket,
                prefix=volume_id.prefix,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
            )
            for upload in page.uploads:
                try:
                    await s3.abort_multipart_upload(volume_id.bucket, upload.key, upload.upload_id)
                except NoSuchUpload:
                    # Finished since it was listed: aborted by its writer, or completed into an
                    # object that _delete_prefix removes next.
                    continue
            if not page.is_truncated:
                return
            key_marker, upload_id_marker = page.next_key_marker, page.next_upload_id_marker

    async def _delete_prefix(self, s3: S3Client, volume_id: VolumeId) -> None:
        """Every object under the volume's prefix but its record, page by page."""
        record = marker_key(volume_id)
        token: str | None = None
        while True:
            page = await s3.list_objects_v2(
                volume_id.bucket, prefix=volume_id.prefix, delimiter="", continuation_token=token
            )
            keys = [item.key for item in page.objects if item.key != record]
            if keys:
                await s3.delete_objects(volume_id.bucket, keys)
            token = page.next_continuation_token
            if token is None:
                return

    async def volume_exists(self, volume_id: VolumeId, credentials: Credentials | None) -> bool:
        """The volume's record is there and proves this driver created it, as DeleteVolume demands."""
        async with self._client(credentials) as s3:
            try:
                body = await self._read_record_body(s3, volume_id)
            except NoSuchBucket:
                return False
            return why_not_proven(volume_id, body) is None
