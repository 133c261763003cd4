"""Hostile bodies against AdmissionReview parsing and the decisions, as pure functions, with hypothesis.

Any bytes: parse_review answers a request or raises InvalidArgument, never anything else (the server turns
InvalidArgument into a 400, anything else would be a 500). Valid reviews round-trip: the request comes back
as sent, the answer carries its uid, and a patch applies (jsonpatch, an independent RFC 6902
implementation) to exactly the one field it defaults. The webhook's own HTTPS edge is fuzzed by hand in
tests/integration/test_admission_webhook.py.
"""

from __future__ import annotations

import base64
import copy
import json
import math
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from s3csi.admission.labels import MUTATE_PATHS
from s3csi.admission.namespaces import validate_namespace
from s3csi.admission.pods import default_pod
from s3csi.admission.review import (
    API_VERSION,
    KIND,
    MAX_INTEGER_DIGITS,
    MAX_JSON_DEPTH,
    AdmissionRequest,
    AdmissionResponse,
    json_depth,
    parse_review,
    review_of,
)
from s3csi.errors import InvalidArgument
from tests.admission_cases import pod

EXAMPLES = 10_000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The round trip exercises the decisions behind the parser, each of which has its own table tests.
ROUND_TRIPS = settings(max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values as Python objects; integers stay within what the parser accepts.
LIMIT = 10**MAX_INTEGER_DIGITS
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-LIMIT + 1, max_value=LIMIT - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    # Strings made of the characters json_depth must skip inside strings.
    | st.text(alphabet='[]{}"\\', max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, inner: str = "null") -> str:
    """``inner`` inside ``depth`` arrays and objects, alternating, as JSON text."""
    text = inner
    for level in range(depth):
        text = f"[{text}]" if level % 2 else f'{{"k":{text}}}'
    return text


def digits(count: int) -> str:
    return "7" * count


# JSON text that no json.dumps of a parsed value produces: too deep, too long integers, NaN, 1e999.
HOSTILE_TEXT = st.one_of(
    st.integers(0, 3 * MAX_JSON_DEPTH).map(nested),
    st.tuples(st.integers(0, 3 * MAX_JSON_DEPTH), st.sampled_from("[{")).map(lambda t: t[1] * t[0]),
    st.integers(1, 6000).map(digits),
    st.integers(1, 6000).map(lambda n: "-" + digits(n) + ".5e1"),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0", '"\\ud800"', '"\\u0000"']),
    JSON.map(json.dumps),
)


def envelope(obj_text: str, uid: str = '"u"') -> str:
    return (
        f'{{"apiVersion":"{API_VERSION}","kind":"{KIND}","request":{{"uid":{uid},'
        f'"kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"CREATE","object":{obj_text}}}}}'
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid review cut short, or with bytes inserted or overwritten at a random place."""
    body = json.dumps(review(draw(st.text(min_size=1, max_size=20)), pod())).encode()
    at = draw(st.integers(0, len(body)))
    noise = draw(st.binary(min_size=1, max_size=8))
    how = draw(st.sampled_from(["cut", "insert", "overwrite"]))
    if how == "cut":
        return body[:at]
    if how == "insert":
        return body[:at] + noise + body[at:]
    return body[:at] + noise + body[at + len(noise) :]


BODIES = st.one_of(
    st.binary(max_size=300),
    HOSTILE_TEXT.map(str.encode),
    HOSTILE_TEXT.map(envelope).map(str.encode),
    HOSTILE_TEXT.map(lambda text: envelope("{}", uid=text)).map(str.encode),
    mutated(),
)


def review(uid: str, obj: object, **request: Any) -> dict[str, Any]:
    fields = {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE", **request}
    return {"apiVersion": API_VERSION, "kind": KIND, "request": {"uid": uid, "object": obj, **fields}}


def walk(value: object) -> tuple[int, int]:
    """The nesting depth of a parsed JSON value and the digits of its longest integer, without recursion
    (json.loads reaches depths where a recursive walk would not)."""
    depth = digits_seen = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            depth = max(depth, level + 1)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
        elif isinstance(item, int) and not isinstance(item, bool):
            digits_seen = max(digits_seen, len(str(abs(item))))
    return depth, digits_seen


def stdlib_accepts(body: bytes) -> bool:
    """Whether the reference reading (UTF-8, json.loads, the two limits, the envelope) accepts ``body``."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    depth, longest_integer = walk(value)
    if depth > MAX_JSON_DEPTH or longest_integer > MAX_INTEGER_DIGITS:
        return False
    request = value.get("request") if isinstance(value, dict) else None
    return (
        isinstance(request, dict)
        and value.get("apiVersion") == API_VERSION
        and value.get("kind") == KIND
        and isinstance(request.get("uid"), str)
        and request["uid"] != ""
    )


def decisions(request: AdmissionRequest) -> list[tuple[str, AdmissionResponse]]:
    answers = [
        (path, default_pod(request, default, value)) for path, (default, value) in MUTATE_PATHS.items()
    ]
    return [*answers, ("/validate-namespaces", validate_namespace(request))]


def check_answer(request: AdmissionRequest, response: AdmissionResponse) -> list[dict[str, Any]]:
    """The answer is a valid AdmissionReview response for ``request``; returns its decoded patch."""
    sent = json.loads(json.dumps(review_of(response), allow_nan=False))
    assert sent["apiVersion"] == API_VERSION and sent["kind"] == KIND
    answer = sent["response"]
    assert answer["uid"] == request["uid"]
    assert isinstance(answer["allowed"], bool)
    if not answer["allowed"]:
        assert answer["status"]["code"] == 422 and answer["status"]["message"]
    assert all(isinstance(w, str) and len(w) < 1000 for w in answer.get("warnings", []))
    if "patch" not in answer:
        assert "patchType" not in answer
        return []
    assert answer["patchType"] == "JSONPatch" and answer["allowed"] is True
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(answer["patch"], validate=True))
    return patch


@FUZZ
@given(body=BODIES)
@example(body=b"[" * 100_000)
@example(body=nested(MAX_JSON_DEPTH + 1).encode())
@example(body=envelope(digits(5000)).encode())
@example(body=envelope(nested(MAX_JSON_DEPTH - 3)).encode())
@example(body=envelope(digits(MAX_INTEGER_DIGITS)).encode())
@example(body=b'"' + b'\\"' * 50_000)
def test_any_body_parses_or_raises_invalid_argument(body: bytes) -> None:
    try:
        request = parse_review(body)
    except InvalidArgument as exc:
        assert str(exc) and len(str(exc)) < 1000
        assert not stdlib_accepts(body), exc
        return
    assert stdlib_accepts(body)
    assert isinstance(request["uid"], str) and request["uid"]
    for _, response in decisions(request):
        check_answer(request, response)


# Values a pod's own securityContext fields and a namespace's labels may carry: the webhook's, others, null.
FIELD_VALUES = st.sampled_from([None, "", "Always", "OnRootMismatch", "Recursive", "MountOption", 0, []])
SMALL_JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


@ROUND_TRIPS
@given(
    uid=st.text(min_size=1, max_size=20),
    extra=st.dictionaries(st.text(max_size=10), SMALL_JSON, max_size=2),
    security_context=st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "fsGroupChangePolicy": FIELD_VALUES,
            "seLinuxChangePolicy": FIELD_VALUES,
            "runAsUser": SCALARS,
        },
    ),
    operation=st.sampled_from(["CREATE", "UPDATE", "DELETE"]),
    labels=st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "storage.openshift.io/fsgroup-change-policy": FIELD_VALUES,
            "storage.openshift.io/selinux-change-policy": FIELD_VALUES,
            "team": st.text(max_size=10),
        },
    ),
)
def test_valid_reviews_round_trip(
    uid: str,
    extra: dict[str, Any],
    security_context: dict[str, Any] | None,
    operation: str,
    labels: dict[str, Any] | None,
) -> None:
    obj = pod(security_context)
    obj["spec"].update({k: v for k, v in extra.items() if k != "securityContext"})
    if labels is not None:
        obj["metadata"]["labels"] = labels
    sent = review(uid, obj, operation=operation)
    request = parse_review(json.dumps(sent).encode())
    assert request == sent["request"]
    for path, response in decisions(request):
        patch = check_answer(request, response)
        if path == "/validate-namespaces" or not patch:
            continue
        default, value = MUTATE_PATHS[path]
        assert operation == "CREATE"
        assert (security_context or {}).get(default.field) is None
        admitted = jsonpatch.apply_patch(obj, patch)
        if security_context is None:
            assert admitted["spec"].pop("securityContext") == {default.field: value}
            assert admitted == obj
        else:
            expected = copy.deepcopy(obj)
            expected["spec"]["securityContext"][default.field] = value
            assert admitted == expected


@settings(max_examples=1000, deadline=None)
@given(value=JSON)
def test_json_depth_counts_only_brackets_outside_strings(value: object) -> None:
    text = json.dumps(value).encode()
    assert json_depth(text) == walk(value)[0]
    assert json_depth(json.dumps(value, indent=1, ensure_ascii=False).encode()) == walk(value)[0]


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": "]]]]\\"[[[["}]}', 3),
        (b'["\\\\", ["\\\\"]]', 2),
        (b'"unterminated [[[', 0),
        (b'[[["', 3),
        (b"]]]", 0),
        (b"[" * 5000, 5000),
    ],
)
def test_json_depth_table(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_nan_and_infinity_are_never_echoed_as_invalid_json() -> None:
    request = parse_review(envelope('{"spec": {"securityContext": NaN}}').encode())
    assert math.isnan(request["object"]["spec"]["securityContext"])
    for _, response in decisions(request):
        check_answer(request, response)
