"""AdmissionReview v1 on the wire (admission.k8s.io/v1): TypedDicts, parsing, and response building.

Parsing checks only the envelope (the fields every answer needs); what a decision reads from
``request.object`` is checked by that decision, which answers a malformed object with a warning.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal, NotRequired, TypedDict

from s3csi.errors import InvalidArgument

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
# The API server refuses request bodies over 3 MiB, so a larger review cannot come from it.
MAX_REVIEW_BYTES = 3 * 1024 * 1024
# How much of an unexpected value an error message or warning shows.
_SHOWN_CHARS = 100


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


def parse_review(body: bytes) -> AdmissionRequest:
    """The request of an AdmissionReview v1; :class:`InvalidArgument` names what is wrong with it."""
    try:
        review = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"the request body is not JSON: {exc}") from exc
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


def allow_with_patch(request: AdmissionRequest, patch: list[JSONPatchOperation]) -> AdmissionResponse:
    response = allow(request)
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
