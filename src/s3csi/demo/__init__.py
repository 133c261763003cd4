"""The embedded end-to-end demo and its local S3 server."""
