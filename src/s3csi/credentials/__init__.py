"""S3 credentials for Mountpoint Pods: where they come from, and the files the mounter reads them from.

Credentials never travel in argv, environment variables of the mounter, mount.sock messages or the
mount table (docs/credentials.md): the node plugin writes them into the comm dir and the mounter's S3
client re-reads the file whenever it changes.
"""
