"""Pure helpers on session documents: merge patches, and the flow a handle expects."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput


def active_flow(doc: dict[str, Any], key: str, expected: str | None) -> dict[str, Any]:
    """The stored flow, if it is the one this handle last saw (not one started since)."""
    flow = doc.get("flow_data")
    if not isinstance(flow, dict):
        raise InvalidInput(f"session {key!r} has no active flow; start one with start_flow()")
    if expected is not None and flow.get("id") != expected:
        raise InvalidInput(
            f"session {key!r} is now in flow {flow.get('id')!r}, not {expected!r}; "
            f"nothing was written. Reload the session and continue from its current step"
        )
    return flow


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, returning a new value (``target`` is not changed)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
