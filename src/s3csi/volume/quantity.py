"""Kubernetes resource quantities, in the forms s3csi accepts (a subset of resource.Quantity's grammar).

Pure: the volume attributes that size a Mountpoint Pod (volume/context.py) and the controller's defaults
(podmounter/podspec.py) are checked by the same functions.
"""

from __future__ import annotations

import re

from s3csi.errors import InvalidArgument

_MEMORY = re.compile(r"([0-9]{1,15})(Ki|Mi|Gi|Ti|k|M|G|T)?")
_MEMORY_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_CPU = re.compile(r"([0-9]{1,9})(m?)")


def memory_bytes(quantity: str, what: str = "memory") -> int:
    """``quantity`` (``160Mi``, ``1G``, ``1048576``) in bytes; InvalidArgument for another form, naming
    ``what`` it measures."""
    match = _MEMORY.fullmatch(quantity)
    if match is None:
        raise InvalidArgument(
            f"{what} quantity {quantity[:80]!r} must be an integer with Ki/Mi/Gi/Ti/k/M/G/T"
        )
    return int(match[1]) * _MEMORY_FACTORS[match[2]]


def cpu_millicores(quantity: str) -> int:
    """``quantity`` (``200m``, ``2``) in millicores; InvalidArgument for another form."""
    match = _CPU.fullmatch(quantity)
    if match is None:
        raise InvalidArgument(f"CPU quantity {quantity[:80]!r} must be whole cores or millicores (200m)")
    return int(match[1]) * (1 if match[2] else 1000)


def storage_bytes(quantity: str) -> int:
    """A storage size, in the forms of :func:`memory_bytes`."""
    return memory_bytes(quantity, "storage")


def binary_quantity(size: int) -> str:
    """``size`` bytes as a quantity in the largest binary unit that holds it exactly (``1536Mi``, ``2Gi``)."""
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        factor = _MEMORY_FACTORS[suffix]
        if size and size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)
