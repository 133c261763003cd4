"""The S3 file system served over FUSE (pyfuse3): ``s3csi mount BUCKET DIR [mount-s3 flags]``.

Modules, from pure to I/O: ``settings`` (flags → FsSettings), ``names`` (which keys are shown),
``inodes`` (the inode table), ``prefetch`` (read-ahead window policy), ``cache`` (local disk cache of
read parts), ``reader``/``writer`` (ranged GETs, multipart uploads), ``errors`` (failures →
errno), ``operations`` (the FUSE handlers), ``session`` (mount, serve, unmount), ``cli`` (the command).
"""
