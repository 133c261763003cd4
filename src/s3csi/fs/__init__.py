"""The S3 file system served over FUSE (pyfuse3): ``s3csi mount BUCKET DIR [mount-s3 flags]``.

Modules, from pure to I/O: ``settings`` (flags → FsSettings), ``names`` (which keys are shown),
``lookups`` (where a lookup finds its answer), ``inodes`` (the inode table), ``prefetch`` (read-ahead
window policy), ``siblings`` (read-ahead across a directory's small files), ``allocator`` (the C
allocator's thresholds), ``cache`` (local disk cache of read parts), ``reader``/``writer`` (ranged
GETs, multipart uploads), ``errors`` (failures → errno), ``operations`` (the FUSE handlers),
``session`` (mount, serve, unmount), ``auto_unmount`` (``--auto-unmount``'s watcher process), ``cli``
(the command).
"""
