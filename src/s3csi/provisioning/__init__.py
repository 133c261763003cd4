"""Dynamic provisioning (docs/csi.md): what CreateVolume and DeleteVolume do to the store.

- ``naming``: bucket names, prefixes and volume ids derived from the CO's volume name (pure).
- ``plan``: StorageClass parameters and a CreateVolume request → the volume to make (pure).
- ``provisioner``: makes and removes buckets and prefixes through :class:`s3csi.s3.S3Client`.
"""
