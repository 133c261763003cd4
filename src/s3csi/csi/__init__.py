"""The CSI gRPC surface (docs/architecture.md#csi): servicers translate requests into domain calls and errors
into status codes, nothing more.

- ``identity.py``, ``controller.py``, ``node.py``: one servicer per CSI service, methods named like the RPCs.
- ``requests.py``: request fields shared by the services, parsed into plain values (InvalidArgument).
- ``errors.py``: the one mapping from :mod:`s3csi.errors` to gRPC status codes.
- ``redaction.py``: the one redaction of secrets in requests, for logs.
- ``interceptor.py``: the one interceptor: logs every request and its outcome, maps errors.
- ``server.py``: the grpc.aio server on a unix socket; ``main.py``: ``s3csi driver``.
- ``proto/``: stubs generated from ``proto/csi.proto`` at install time (setup.py), never committed.
"""
