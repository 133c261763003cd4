"""AdmissionReview v1 on the wire (admission.k8s.io/v1): TypedDicts, parsing, and response building.

Parsing checks only the envelope (the fields every answer needs); what a decision reads from
``request.object`` is checked by that decision, which answers a malformed object with a warning.
"""

from __future__ import annotations

import array
import base64
import itertools
import json
import re
from typing import Any, Literal, NotRequired, TypedDict

from s3csi.errors import InvalidArgument

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
# The API server refuses request bodies over 3 MiB, so a larger review cannot come from it.
MAX_REVIEW_BYTES = 3 * 1024 * 1024
# A review of a Pod or a Namespace nests at most about 20 levels (the deepest Pod fields, mirrored in
# metadata.managedFields, inside review.request.object). Deeper input is refused before json.loads, which
# would otherwise recurse until Python's recursion limit (about 1000 levels) and raise RecursionError; below
# the limit, the decisions and the messages that echo a value never come near it either.
MAX_JSON_DEPTH = 100
# Kubernetes objects hold 64-bit integers, at most 20 digits. Python converts longer ones in quadratic time
# and refuses more than 4300 digits with a ValueError.
MAX_INTEGER_DIGITS = 20
# How much of an unexpected value an error message or warning shows.
_SHOWN_CHARS = 100
# A JSON string. The closing quote is optional so that an unterminated string ends the match instead of the
# search starting again from every quote inside it, which would take quadratic time.
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
# Opening brackets become +1 and closing ones -1 (as a signed byte); every other byte is deleted.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class AdmissionRequest(TypedDict):
    uid: str
    kind: NotRequired[GroupVersionKind]
    resource: NotRequired[GroupVersionResource]
    subResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    operation: NotRequired[str]
    userInfo: NotRequired[dict[str, Any]]
    object: NotRequired[Any]
    oldObject: NotRequired[Any]
    dryRun: NotRequired[bool]
    options: NotRequired[Any]


class Status(TypedDict):
    code: int
    reason: str
    message: str


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    patch: NotRequired[str]
    patchType: NotRequired[Literal["JSONPatch"]]
    warnings: NotRequired[list[str]]


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: str
    request: NotRequired[AdmissionRequest]
    response: NotRequired[AdmissionResponse]


class JSONPatchOperation(TypedDict):
    """One RFC 6902 operation; the webhook only ever adds."""

    op: Literal["add"]
    path: str
    value: Any


def shown(value: object) -> str:
    """``value`` as JSON, cut short: for messages that echo what a request carried."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def json_depth(text: bytes) -> int:
    """How deeply UTF-8 JSON ``text`` nests arrays and objects, in linear time and without recursion.

    Brackets inside strings do not count. On text that is not JSON the answer is still an upper bound of
    the depth json.loads reaches before it finds the error: both read the same strings up to that point.
    """
    steps = _JSON_STRING.sub(b"", text).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(itertools.accumulate(array.array("b", steps), initial=0))


def _nests_too_deeply(text: bytes) -> bool:
    # Counting every opening bracket, in strings too, is an upper bound of the depth and ten times faster
    # than json_depth: most reviews are decided by it alone.
    return text.count(b"[") + text.count(b"{") > MAX_JSON_DEPTH and json_depth(text) > MAX_JSON_DEPTH


def _parse_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise InvalidArgument(
            f"the request body has an integer of {digits} digits; Kubernetes objects have at most "
            f"{MAX_INTEGER_DIGITS}"
        )
    return int(literal)


_DECODER = json.JSONDecoder(parse_int=_parse_int)


def parse_json(body: bytes) -> object:
    """``body`` as JSON (RFC 8259: UTF-8), within MAX_JSON_DEPTH and MAX_INTEGER_DIGITS.

    Any body either parses or raises :class:`InvalidArgument` naming what is wrong, never another error.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"the request body is not UTF-8: {exc}") from exc
    if _nests_too_deeply(body):
        raise InvalidArgument(f"the request body nests arrays and objects more than {MAX_JSON_DEPTH} deep")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"the request body is not JSON: {exc}") from exc


def parse_review(body: bytes) -> AdmissionRequest:
    """The request of an AdmissionReview v1; :class:`InvalidArgument` names what is wrong with it."""
    review = parse_json(body)
    if not isinstance(review, dict):
        raise InvalidArgument(f"an AdmissionReview is a JSON object, not {type(review).__name__}")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise InvalidArgument(
            f"expected apiVersion {API_VERSION!r} and kind {KIND!r}, got apiVersion "
            f"{shown(review.get('apiVersion'))} and kind {shown(review.get('kind'))}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise InvalidArgument("the AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise InvalidArgument("the AdmissionReview request has no uid")
    return request  # type: ignore[return-value]


def allow(request: AdmissionRequest, *, warnings: list[str] | None = None) -> AdmissionResponse:
    response = AdmissionResponse(uid=request["uid"], allowed=True)
    if warnings:
        response["warnings"] = warnings
    return response


def allow_with_patch(
    request: AdmissionRequest, patch: list[JSONPatchOperation], *, warnings: list[str] | None = None
) -> AdmissionResponse:
    response = allow(request, warnings=warnings)
    response["patchType"] = "JSONPatch"
    response["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode("ascii")
    return response


def deny(request: AdmissionRequest, message: str) -> AdmissionResponse:
    # 422 Invalid, as a ValidatingAdmissionPolicy answers by default, so both forms look alike to a user.
    return AdmissionResponse(
        uid=request["uid"], allowed=False, status=Status(code=422, reason="Invalid", message=message)
    )


def review_of(response: AdmissionResponse) -> AdmissionReview:
    return AdmissionReview(apiVersion=API_VERSION, kind=KIND, response=response)


def escape_pointer_token(token: str) -> str:
    """RFC 6901: ``~`` becomes ``~0`` and ``/`` becomes ``~1`` (in that order)."""
    return token.replace("~", "~0").replace("/", "~1")


def json_pointer(*tokens: str) -> str:
    return "".join("/" + escape_pointer_token(token) for token in tokens)
