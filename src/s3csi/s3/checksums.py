"""CRC32C of uploaded data, as S3 checks it (``x-amz-checksum-crc32c``: the big-endian CRC, base64).

The CRC comes from the ``crc32c`` package, a C implementation that uses the CPU's CRC32C instruction (SSE4.2
on x86-64, the CRC extension on ARMv8): a 100 MiB upload costs a fraction of a second of CPU, which is why
``--upload-checksums`` defaults to ``crc32c`` like mount-s3 (docs/mount-options.md#upload-checksums). The
package releases the GIL on large buffers, so the client computes those on a worker thread.
"""

from __future__ import annotations

import base64

import crc32c as _crc32c

CRC32C_HEADER = "x-amz-checksum-crc32c"
CRC32C_ALGORITHM = "CRC32C"


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """The CRC32C of ``data``, continuing from ``crc`` (the CRC of what came before)."""
    return _crc32c.crc32c(data, crc)


def crc32c_header(data: bytes | bytearray | memoryview) -> str:
    """The value of ``x-amz-checksum-crc32c`` for ``data``."""
    return base64.b64encode(crc32c(data).to_bytes(4, "big")).decode("ascii")
