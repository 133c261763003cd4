"""Names and label values of the Kubernetes objects s3csi creates, derived from their content (pure).

Deterministic, so that a restarted controller, another controller replica and the node plugin all find the
same objects from the same inputs. Kubernetes' limits (docs/kubernetes.md#names):

- an object name such as a MountpointPodAttachment's is a DNS-1123 subdomain, at most 253 characters;
- a label value is at most 63 characters of ``[A-Za-z0-9._-]``, starting and ending alphanumeric.

A sharing key (volume/sharing.py) is 32 lowercase hex characters, so it is both as it is.
"""

from __future__ import annotations

import hashlib
import re

from s3csi.errors import InvalidArgument
from s3csi.volume.sharing import SHARING_KEY_LENGTH

MAX_LABEL_VALUE_LENGTH = 63
MAX_NAME_LENGTH = 253
LABEL_DIGEST_LENGTH = 32
"""Hex characters (128 bits) of the digests used as label values."""

_SHARING_KEY = re.compile(f"[0-9a-f]{{{SHARING_KEY_LENGTH}}}")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_NOT_IN_LABEL_VALUE = re.compile(r"[^-A-Za-z0-9_.]")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_dns1123_label(text: str) -> bool:
    """A namespace's name, and the names kubectl and Kubernetes' validation call a "DNS label"."""
    return len(text) <= MAX_LABEL_VALUE_LENGTH and DNS1123_LABEL.fullmatch(text) is not None


def is_dns1123_subdomain(text: str) -> bool:
    """Most objects' names: nodes, PersistentVolumes, service accounts, priority classes."""
    return len(text) <= MAX_NAME_LENGTH and DNS1123_SUBDOMAIN.fullmatch(text) is not None


def is_label_value(text: str) -> bool:
    return len(text) <= MAX_LABEL_VALUE_LENGTH and _LABEL_VALUE.fullmatch(text) is not None


def label_digest(text: str) -> str:
    """A label-safe stand-in for a value that may not fit a label (a volume id): its SHA-256, hex, cut."""
    return hashlib.sha256(text.encode()).hexdigest()[:LABEL_DIGEST_LENGTH]


def label_value(text: str) -> str:
    """``text`` itself when it is a valid label value, else a readable, deterministic label-safe form.

    Used for the driver version, whose local builds carry ``+`` (``0.1.0+g1a2b3c``): the invalid characters
    become ``_``; when that changed the text or it is too long, a digest of the original is appended so that
    two versions never share a label value.
    """
    if is_label_value(text):
        return text
    digest = label_digest(text)[:10]
    readable = _NOT_IN_LABEL_VALUE.sub("_", text).strip("-_.")
    readable = readable[: MAX_LABEL_VALUE_LENGTH - len(digest) - 1].rstrip("-_.")
    return f"{readable}-{digest}" if readable else digest


def attachment_name(key: str) -> str:
    """The MountpointPodAttachment of sharing key ``key`` is named by the key itself."""
    if not _SHARING_KEY.fullmatch(key):
        raise InvalidArgument(f"{key[:80]!r} is not a sharing key ({SHARING_KEY_LENGTH} lowercase hex)")
    return key
