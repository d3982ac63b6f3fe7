"""The rules every state document obeys, checked before anything is written.

Document rules (any document, including one read back from the store):

- structure and types of the state model (README; see :mod:`.model`); unknown fields are refused
- ``channel`` is ``{type, identifier}`` with a registered type and a non-empty identifier;
  it may be null only in a member's session (``member_id`` set)
- ``member_id`` lives at the top level only: never as a key anywhere inside ``flow_data``
- ``flow_data`` is ``{id, step, data, _validation}`` or null; a flow's id is its stage
- ``stage`` is a declared stage
- ``authenticated: true`` needs a ``member_id``
- a token (anything shaped like a JWT) is stored in ``jwt_token`` and nowhere else

Write rules (a change from ``before`` to ``after``):

- ``_version`` and ``_last_updated`` are set by the store only
- ``channel`` and ``member_id`` change only through the identity operations
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import StateValidationError, Violation
from ..redact import SECRET_FIELDS, looks_like_token, redact_text
from ..store.codec import STORE_FIELDS
from .channel_ids import CHANNEL_TYPES
from .model import TOP_LEVEL_FIELDS, MemberState
from .stages import Stages

IDENTITY_FIELDS = ("member_id", "channel")
WATCHED_FIELDS = (*sorted(STORE_FIELDS), *IDENTITY_FIELDS, "stage")
"""The only fields a change rule (or a stage transition) compares before and after."""


def watched(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the fields the change rules compare: enough "before" for :meth:`check`.

    Cheaper than copying the whole document on every write, which the rules never read.
    """
    return {name: copy.deepcopy(doc[name]) for name in WATCHED_FIELDS if name in doc}


_PLAIN = {
    "extra_forbidden": "unknown field",
    "missing": "is required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long (200 characters at most)",
    "greater_than_equal": "must not be negative",
}


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"


class StateValidator:
    """Checks documents and changes against the rules above; see :meth:`check`."""

    def __init__(self, stages: Stages | None = None) -> None:
        self.stages = stages or Stages()

    def violations(self, doc: Mapping[str, Any]) -> list[Violation]:
        """Every document rule ``doc`` breaks (empty when it is valid)."""
        if not isinstance(doc, Mapping):
            return [Violation("(document)", "must be a JSON object")]
        found = self._structure(doc)
        found += self._placement(doc)
        found += self._consistency(doc)
        return found

    def change_violations(
        self, before: Mapping[str, Any], after: Mapping[str, Any], *, identity: bool = False
    ) -> list[Violation]:
        """Every rule the change from ``before`` to ``after`` breaks, document rules included."""
        found = []
        for name in STORE_FIELDS:
            if name in after and after.get(name) != before.get(name):
                found.append(Violation(name, "is set by the store only"))
        if not identity:
            for name in IDENTITY_FIELDS:
                if after.get(name) != before.get(name):
                    found.append(
                        Violation(
                            name, "changes only through the identity operations (bind/unbind)"
                        )
                    )
        return found + self.violations(after)

    def check(
        self,
        session_key: str,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        *,
        identity: bool = False,
    ) -> None:
        """Raise :class:`StateValidationError` listing every violation of the change."""
        found = self.change_violations(before, after, identity=identity)
        if found:
            raise StateValidationError(session_key, found)

    # -- the rules -----------------------------------------------------------------------

    def _structure(self, doc: Mapping[str, Any]) -> list[Violation]:
        try:
            MemberState.model_validate(dict(doc))
        except ValidationError as exc:
            result = []
            for error in exc.errors(include_url=False, include_input=False):
                message = _PLAIN.get(error["type"], error["msg"])
                if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
                    message = (
                        f"unknown field; a state document holds only {', '.join(TOP_LEVEL_FIELDS)}"
                    )
                result.append(Violation(_path(error["loc"]), message))
            return result
        return []

    def _placement(self, doc: Mapping[str, Any]) -> list[Violation]:
        found: list[Violation] = []
        flow = doc.get("flow_data")
        if isinstance(flow, Mapping):
            for path in _keys_named(flow, "member_id", "flow_data"):
                found.append(
                    Violation(
                        path,
                        "member_id belongs at the top level only; read it with get_member_id()",
                    )
                )
        for path in _token_strings(doc):
            found.append(Violation(path, "holds a token; tokens are kept in jwt_token only"))
        return found

    def _consistency(self, doc: Mapping[str, Any]) -> list[Violation]:
        found: list[Violation] = []
        channel = doc.get("channel")
        kind = channel.get("type") if isinstance(channel, Mapping) else None
        if isinstance(kind, str) and kind not in CHANNEL_TYPES:
            known = ", ".join(sorted(CHANNEL_TYPES))
            found.append(Violation("channel.type", f"is not a registered channel type ({known})"))
        if channel is None and not doc.get("member_id"):
            found.append(Violation("channel", "is required until the session belongs to a member"))
        stage = doc.get("stage", "INIT")
        if isinstance(stage, str) and stage not in self.stages:
            found.append(
                Violation(
                    "stage", f"{stage!r} is not a declared stage ({', '.join(self.stages.names)})"
                )
            )
        flow = doc.get("flow_data")
        if isinstance(flow, Mapping) and isinstance(flow.get("id"), str):
            if flow["id"] != stage:
                found.append(
                    Violation(
                        "flow_data.id",
                        f"is {flow['id']!r} but the stage is {stage!r}; "
                        "a flow runs in its own stage",
                    )
                )
        elif flow is None and isinstance(stage, str) and stage in self.stages.flows:
            found.append(Violation("flow_data", f"is null but the stage is flow {stage!r}"))
        if doc.get("authenticated") is True and not doc.get("member_id"):
            found.append(Violation("authenticated", "cannot be true without a member_id"))
        return found


def _holds_secret(text: str) -> bool:
    return looks_like_token(text) or redact_text(text) != text


def _keys_named(value: Any, name: str, path: str) -> list[str]:
    if isinstance(value, Mapping):
        found = [f"{path}.{name}"] if name in value else []
        for key, item in value.items():
            found += _keys_named(item, name, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _keys_named(item, name, f"{path}[{i}]")]
    return []


def _token_strings(value: Any, path: str = "") -> list[str]:
    # The identity fields (who the member is, as the channel or the backend gave it) are
    # not searched: a sender id is whatever the channel says, and one that happens to look
    # like a JWT ("eyJsz.iqU.") must still have a conversation (a refused write would
    # bury every message from it as a dead letter).
    if isinstance(value, str):
        return [path or "(document)"] if _holds_secret(value) else []
    if isinstance(value, Mapping):
        found = []
        for key, item in value.items():
            if not path and (key in SECRET_FIELDS or key in IDENTITY_FIELDS):
                continue
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _holds_secret(key):
                found.append(f"{path or '(document)'} (a key)")
                continue
            found += _token_strings(item, where)
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _token_strings(item, f"{path}[{i}]")]
    return []
