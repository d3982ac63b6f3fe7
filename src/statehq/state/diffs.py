"""What changed between two versions of a document, path by path.

    changes({"stage": "MENU"}, {"stage": "AUTH", "profile": {"name": "Ann"}})
    -> [Change("profile.name", MISSING, "Ann"), Change("stage", "MENU", "AUTH")]

The bookkeeping fields (``_version``, ``_last_updated``) are left out: they change on
every write and say nothing about the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..redact import REDACTED, SECRET_FIELDS, redact_value

BOOKKEEPING = ("_version", "_last_updated")


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()
"""The side of a change where the field did not exist."""


@dataclass(frozen=True)
class Change:
    """One leaf that was added, removed or changed."""

    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        """``added``, ``removed`` or ``changed``."""
        if self.before is MISSING:
            return "added"
        return "removed" if self.after is MISSING else "changed"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, secrets redacted; an absent side is left out."""
        out: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.before is not MISSING:
            out["before"] = self._shown(self.before)
        if self.after is not MISSING:
            out["after"] = self._shown(self.after)
        return out

    def _shown(self, value: Any) -> Any:
        # A secret leaf is redacted by its name, whatever its value looks like.
        if self.path.split(".")[0] in SECRET_FIELDS and value is not None:
            return REDACTED
        return redact_value(value)


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Every leaf that differs between ``before`` and ``after``, sorted by path."""
    found: list[Change] = []
    _walk("", _content(before), _content(after), found)
    return sorted(found, key=lambda change: change.path)


def _nonempty(value: Any) -> bool:
    return isinstance(value, dict) and bool(value)


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in BOOKKEEPING}


def _walk(prefix: str, before: Any, after: Any, found: list[Change]) -> None:
    # An object added or removed whole is walked too, so every leaf is named (as the
    # audit trail names them); an empty one is reported where it is.
    whole = (before is MISSING and _nonempty(after)) or (after is MISSING and _nonempty(before))
    if (isinstance(before, dict) and isinstance(after, dict)) or whole:
        before = {} if before is MISSING else before
        after = {} if after is MISSING else after
        for name in before.keys() | after.keys():
            path = f"{prefix}.{name}" if prefix else str(name)
            _walk(path, before.get(name, MISSING), after.get(name, MISSING), found)
    elif before != after or type(before) is not type(after):
        found.append(Change(prefix, before, after))


def summarize(paths: list[str], limit: int = 6) -> list[str]:
    """Changed leaf paths, grouped for a one-line summary: at most two levels deep
    (``flow_data.data.recipient.handle`` -> ``flow_data.data``), each group once, in
    first-seen order, and at most ``limit`` of them (then ``+N more``)."""
    groups: list[str] = []
    for path in paths:
        group = ".".join(path.split(".")[:2])
        if group not in groups:
            groups.append(group)
    if len(groups) > limit:
        return [*groups[:limit], f"+{len(groups) - limit} more"]
    return groups
