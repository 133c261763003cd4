"""PATCH bodies applied as the API server applies them (pure functions).

- ``application/merge-patch+json``: RFC 7386 (``null`` removes a key, lists are replaced).
- ``application/json-patch+json``: RFC 6902, by the independent ``jsonpatch`` package.
- ``application/strategic-merge-patch+json``: what kubernetes-asyncio sends for a dict body. Maps merge as in
  a merge patch; a list is merged by key on the API server, which this fake does not implement, so a strategic
  patch containing a list (or a ``$patch``-style directive) is refused with 415 naming the alternative rather
  than applied differently from a real server.
- ``application/apply-patch+yaml`` (server-side apply) is refused with 415.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


class PatchError(ValueError):
    """``code`` 400 (a patch that cannot apply), 415 (a patch type not served) or 422."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _has_list_or_directive(patch: Any) -> str | None:
    if isinstance(patch, list):
        return "a list"
    if isinstance(patch, dict):
        for key, value in patch.items():
            if key.startswith("$"):
                return f"the directive {key}"
            if (found := _has_list_or_directive(value)) is not None:
                return found
    return None


def apply_patch(current: dict[str, Any], content_type: str, body: bytes) -> dict[str, Any]:
    """``current`` with the patch applied; PatchError as the API server answers."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind not in (MERGE, JSON, STRATEGIC):
        raise PatchError(415, f"the server does not serve PATCH with content type {kind!r} (fake API server)")
    try:
        patch = json.loads(body)
    except ValueError as exc:
        raise PatchError(400, f"the patch is not JSON: {exc}") from None
    if kind == JSON:
        if not isinstance(patch, list):
            raise PatchError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        try:
            patched = jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise PatchError(422, f"the JSON patch cannot apply: {exc}") from None
        if not isinstance(patched, dict):
            raise PatchError(422, "the JSON patch replaced the whole object with a non-object")
        return patched
    if not isinstance(patch, dict):
        raise PatchError(400, "a merge patch must be a JSON object")
    if kind == STRATEGIC and (found := _has_list_or_directive(patch)) is not None:
        raise PatchError(
            415,
            "this fake API server applies a strategic merge patch only without lists or directives, and "
            f"this one has {found}: send a JSON patch or _content_type={MERGE!r}",
        )
    result = merge_patch(current, patch)
    assert isinstance(result, dict)
    return result
