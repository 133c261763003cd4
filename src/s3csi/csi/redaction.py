"""The one redaction of CSI requests for logs and messages.

Two kinds of values never leave the process: every field the spec marks ``csi_secret`` (the
``secrets`` maps, found from the descriptor, so a field added to the proto is covered without a code
change) and the volume-context entries that carry credentials (kubelet's service-account tokens).
"""

from __future__ import annotations

from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from s3csi.csi.proto import csi_pb2
from s3csi.volume.context import SERVICE_ACCOUNT_TOKENS

REDACTED = "***"

# Volume-context keys whose values are credentials, not attributes.
SENSITIVE_CONTEXT_KEYS = frozenset({SERVICE_ACCOUNT_TOKENS})
_CONTEXT_FIELDS = frozenset({"volume_context"})


def _is_secret(field: FieldDescriptor) -> bool:
    return bool(field.GetOptions().Extensions[cast(Any, csi_pb2.csi_secret)])


def redact(message: Message) -> dict[str, Any]:
    """``message`` as a dict (proto field names), with every secret value replaced by ``***``."""
    as_dict = json_format.MessageToDict(message, preserving_proto_field_name=True)
    _redact(message.DESCRIPTOR, as_dict)
    return as_dict


def _redact(descriptor: Any, value: dict[str, Any]) -> None:
    for field in descriptor.fields:
        if field.name not in value:
            continue
        item = value[field.name]
        if _is_secret(field):
            value[field.name] = dict.fromkeys(item, REDACTED) if isinstance(item, dict) else REDACTED
        elif field.name in _CONTEXT_FIELDS and isinstance(item, dict):
            value[field.name] = {k: REDACTED if k in SENSITIVE_CONTEXT_KEYS else v for k, v in item.items()}
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            items = item if isinstance(item, list) else [item]
            for child in items:
                if isinstance(child, dict):
                    _redact(field.message_type, child)
