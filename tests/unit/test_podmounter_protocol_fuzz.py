"""Hostile mount.sock messages against the pure parsers, with hypothesis.

Whatever arrives on mount.sock — any bytes, any JSON, a valid message with one field mangled —
``decode_request`` and ``decode_reply`` return a message or raise ``ProtocolError``, never anything
else: the mounter answers a ``ProtocolError`` with an error reply and keeps listening, while any
other exception would end it. Valid messages round-trip through ``encode``. The socket side (fds,
sizes, deadlines) is tested over real sockets in tests/integration/test_podmounter_protocol_socket.py.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from s3csi.podmounter.protocol import (
    REASONS,
    VERSION,
    MountEnv,
    MountReply,
    MountRequest,
    ProtocolError,
    decode_reply,
    decode_request,
    encode,
)

FUZZ = settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: Python's json writes and reads them
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# A relative path inside the comm dir, already in normal form (what decode_request returns).
NAMES = st.text(st.characters(blacklist_characters="/\0"), min_size=1, max_size=12)
RELATIVE_PATHS = st.lists(NAMES.filter(lambda name: name not in (".", "..")), min_size=1, max_size=3).map(
    "/".join
)
TEXT = st.text(max_size=30)  # lone surrogates too: json escapes them both ways

REQUESTS = st.builds(
    MountRequest,
    version=st.just(VERSION),
    volume_id=TEXT.filter(bool),
    bucket=TEXT.filter(bool),
    prefix=TEXT,
    args=st.lists(TEXT, max_size=6),
    env=st.builds(
        MountEnv,
        region=TEXT,
        endpoint_url=st.none() | TEXT,
        force_path_style=st.booleans(),
        credentials_file=st.none() | RELATIVE_PATHS,
    ),
)
REPLIES = st.just(MountReply(version=VERSION, status="ready")) | st.builds(
    lambda message, reason: MountReply(version=VERSION, status="error", message=message, reason=reason),
    TEXT,
    st.sampled_from(sorted(REASONS)),
)


def _mangle(message: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """``message`` with the field at ``path`` replaced by ``value`` (or deleted when value is ...)."""
    copy: dict[str, Any] = json.loads(json.dumps(message))
    node = copy
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return copy


FIELDS = [["version"], ["volume_id"], ["bucket"], ["prefix"], ["args"], ["env"]] + [
    ["env", key] for key in MountEnv.__annotations__
]


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """Bytes as they could arrive: noise, any JSON, or a valid message with one field mangled."""
    kind = draw(st.sampled_from(["bytes", "json", "mangled request", "mangled reply", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=30_000))
        return b"[" * depth + b"]" * draw(st.integers(min_value=0, max_value=depth))
    if kind == "mangled request":
        message: dict[str, Any] = dict(draw(REQUESTS))
        path = draw(st.sampled_from(FIELDS))
    else:
        message = dict(draw(REPLIES))
        path = [draw(st.sampled_from(["version", "status", "message", "reason", "extra"]))]
        if path[0] not in message and path[0] != "extra":
            path = ["status"]
    return json.dumps(_mangle(message, path, draw(st.just(...) | JSON))).encode()


@FUZZ
@given(st.one_of(hostile(), st.tuples(REQUESTS, REPLIES)))
@example(b'{"version": 1' + b"1" * 5000 + b"}")  # more digits than Python's int() takes
@example(b"[" * 100_000)
@example(b'{"version": 1, "env": {"credentials_file": "../x"}}')
@example(b"\xff\xfe")
def test_hostile_messages_are_refused_with_a_protocol_error_and_valid_ones_round_trip(
    case: bytes | tuple[MountRequest, MountReply],
) -> None:
    """One test for both, so the 10,000 cases stay within seconds."""
    if isinstance(case, tuple):
        request, reply = case
        assert decode_request(encode(request)) == request
        assert decode_reply(encode(reply)) == reply
        return
    for decode in (decode_request, decode_reply):
        try:
            decode(case)
        except ProtocolError:
            pass
