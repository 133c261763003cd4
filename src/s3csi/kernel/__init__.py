"""The only code in s3csi that calls mount(2)/umount2(2) or opens /dev/fuse (.importlinter).

``fuse`` opens the FUSE device and mounts it; ``mount`` makes and removes bind mounts, reads
/proc/self/mountinfo and recognises a FUSE mount whose server has gone (ENOTCONN). Every failure is
an ``s3csi.errors`` error naming the path and the errno.
"""
