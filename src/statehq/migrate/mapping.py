"""One legacy session -> one statehq document that passes the state validator.

Each layout is read into the same :class:`_Found` (what the legacy data says, under
its legacy field names), which :func:`_assemble` turns into a document by one set of
rules:

- the channel is ``whatsapp:<number>`` from the key (a legacy ``channel`` that
  disagrees is noted);
- a member is *signed in* when the data names the member (``member_id``, or the
  backend's ``profile.member.memberID`` / ``dashboard.member.memberID``) and holds a
  JWT. Such a session is keyed ``member:<id>`` with the channel bound to it, as a
  statehq login leaves it (:mod:`statehq.state.identity`). Anyone else keeps a channel
  session ``whatsapp:<number>``, not authenticated, to sign in again;
- a token that is not a JWT is dropped (a JWT with no member named stays on the
  channel session, not authenticated); a flow is kept only where this bot still has
  that flow and that step; the stage is the flow's, else the legacy stage where it
  still makes sense, else MENU (signed in) or INIT;
- a field the rules cannot place, or that the validator still refuses, is dropped and
  noted; a session that cannot be a valid document at all is skipped, saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from ..state.channel_ids import member_key
from ..state.model import STAGE_INIT, STAGE_MENU
from ..state.validator import StateValidator
from .layouts import CACHE_FIELDS, CHANNEL_DOCUMENT, DOCUMENT, STATE
from .pieces import (
    BOOKKEEPING,
    BotOutline,
    LegacyFlow,
    Notes,
    Unmapped,
    account_by_id,
    check_channel,
    flow_allowed,
    flow_data,
    member_named,
    member_of_profile,
    object_or_none,
    pick_token,
    stage_of,
    statehq_account,
    whatsapp_channel,
)
from .source import LegacyPart, LegacySession
from .values import Unreadable, read_document, read_scalar

DROPPABLE = ("flow_data", "profile", "current_account", "jwt_token")
"""Fields the validator may still refuse, dropped one at a time until it accepts."""


@dataclass(frozen=True)
class Mapped:
    """A legacy session in statehq's terms (``doc`` under ``session_key``), or why not."""

    legacy: LegacySession
    session_key: str | None
    doc: dict[str, Any] | None
    bindings: tuple[str, ...] = ()
    """Channel identities bound to ``session_key`` (a signed-in member's number)."""
    unmapped: tuple[Unmapped, ...] = ()
    skipped: str | None = None
    """Why nothing can be migrated, else None."""


class _Skip(Exception):
    """The session cannot be migrated; the message says why."""


@dataclass
class _Found:
    """What one legacy session says, under its legacy field names."""

    wa_id: str
    tokens: list[tuple[str, Any]] = field(default_factory=list)
    member: tuple[str, Any] | None = None
    profile: dict[str, Any] | None = None
    current_account: dict[str, Any] | None = None
    flow: LegacyFlow | None = None
    stage: tuple[str, Any] | None = None
    claims_authenticated: bool = False


def map_session(session: LegacySession, outline: BotOutline) -> Mapped:
    """The statehq document of ``session`` for the bot ``outline`` describes."""
    notes = Notes()
    try:
        if session.layout == CHANNEL_DOCUMENT:
            found = _channel_document(session, notes)
        elif session.layout == CACHE_FIELDS:
            found = _cache_fields(session, notes)
        else:
            found = _user_state(session, notes)
        key, doc, bindings = _assemble(found, outline, notes)
        doc = _validated(doc, outline, notes)
    except _Skip as skip:
        return Mapped(session, None, None, unmapped=tuple(notes.items), skipped=str(skip))
    return Mapped(session, key, doc, bindings, tuple(notes.items))


# -- reading each layout ---------------------------------------------------------------


def _wa_id(identifier: str) -> str:
    try:
        return whatsapp_channel(identifier).identifier
    except InvalidInput:
        raise _Skip(
            f"{identifier!r} is not a WhatsApp number, so the session has no channel"
        ) from None


def _document(part: LegacyPart | None) -> dict[str, Any]:
    if part is None:
        raise _Skip("no state key")
    if part.problem:
        raise _Skip(part.problem)
    if part.raw is None:
        raise _Skip("expired or deleted while being read")
    try:
        return read_document(part.raw)
    except Unreadable as bad:
        raise _Skip(str(bad)) from None


def _channel_document(session: LegacySession, notes: Notes) -> _Found:
    doc = _document(session.parts.get(DOCUMENT))
    found = _Found(_wa_id(session.identifier))
    dashboard: Mapping[str, Any] = {}
    for name, value in doc.items():
        if name == "channel":
            check_channel(value, found.wa_id, notes)
        elif name == "auth" and isinstance(value, dict):
            found.tokens.append(("auth.token", value.get("token")))
            for other in sorted(set(value) - {"token"}):
                notes.drop(f"auth.{other}", "unknown legacy field; statehq has no place for it")
        elif name == "dashboard" and isinstance(value, dict):
            dashboard = value
        elif name == "component_data" and isinstance(value, dict):
            found.flow = LegacyFlow(
                name,
                value.get("path"),
                value.get("component"),
                value.get("data"),
                value.get("validation") or value.get("_validation"),
            )
        elif name == "member_id":
            found.member = (name, value)
        elif name in BOOKKEEPING:
            notes.bookkeeping(name)
        elif name != "active_account_id":
            notes.drop(name, _unknown(value))
    found.profile = _dashboard_profile(dashboard, notes)
    found.current_account = account_by_id(
        dashboard.get("accounts"), doc.get("active_account_id"), notes
    )
    return found


def _dashboard_profile(dashboard: Mapping[str, Any], notes: Notes) -> dict[str, Any] | None:
    """The backend's member and accounts, as the dashboard held them."""
    profile = {name: dashboard[name] for name in ("member", "accounts") if name in dashboard}
    for other in sorted(set(dashboard) - set(profile)):
        notes.drop(f"dashboard.{other}", "dashboard figures are fetched afresh; not kept")
    return profile or None


def _unknown(value: Any) -> str:
    if isinstance(value, dict | list):
        return "unknown legacy field, or not the expected shape; statehq has no place for it"
    return "unknown legacy field; statehq has no place for it"


def _state_fields(doc: Mapping[str, Any], found: _Found, notes: Notes) -> None:
    """The fields a ``user_state`` document or a cached state object holds."""
    for name, value in doc.items():
        if name == "stage":
            found.stage = (name, value)
        elif name == "jwt_token":
            found.tokens.append((name, value))
        elif name in ("profile", "current_account"):
            setattr(found, name, object_or_none(value, name, notes))
        elif name == "flow_data":
            found.flow = _legacy_flow(value, notes)
        elif name == "member_id":
            found.member = (name, value)
        elif name == "authenticated":
            found.claims_authenticated = value is True
        elif name == "channel":
            check_channel(value, found.wa_id, notes)
        elif name in BOOKKEEPING:
            notes.bookkeeping(name)
        else:
            notes.drop(name, _unknown(value))


def _legacy_flow(value: Any, notes: Notes) -> LegacyFlow | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        notes.drop("flow_data", f"a {type(value).__name__}, not a flow; dropped")
        return None
    known = {"id", "path", "step", "component", "data", "validation", "_validation"}
    for other in sorted(set(value) - known):
        notes.drop(f"flow_data.{other}", "unknown legacy flow field; statehq has no place for it")
    return LegacyFlow(
        "flow_data",
        value.get("id", value.get("path")),
        value.get("step", value.get("component")),
        value.get("data"),
        value.get("_validation") or value.get("validation"),
    )


def _user_state(session: LegacySession, notes: Notes) -> _Found:
    doc = _document(session.parts.get(DOCUMENT))
    found = _Found(_wa_id(session.identifier))
    _state_fields(doc, found, notes)
    return found


def _cache_fields(session: LegacySession, notes: Notes) -> _Found:
    parts = session.parts
    if all(part.raw is None for part in parts.values()):
        raise _Skip("every key expired or was deleted while being read")
    found = _Found(_wa_id(session.identifier))
    if STATE in parts:
        _state_fields(_document(parts[STATE]), found, notes)
    for name in ("stage", "jwt_token", "option", "direction"):
        part = parts.get(name)
        if part is None or part.raw is None:
            continue
        label = f"_{name}"
        try:
            value = read_scalar(part.raw)
        except Unreadable as bad:
            notes.drop(label, f"unreadable: {bad}")
            continue
        if name == "stage":
            if found.stage is not None and found.stage[1] != value:
                notes.drop("stage", "superseded by the _stage key")
            found.stage = (label, value)
        elif name == "jwt_token":
            found.tokens.insert(0, (label, value))  # the key the legacy bot read first
        elif value not in (None, ""):
            notes.drop(label, BOOKKEEPING[name])
    return found


# -- one set of rules ------------------------------------------------------------------


def _assemble(
    found: _Found, outline: BotOutline, notes: Notes
) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    token = pick_token(found.tokens, notes)
    named = found.member or ("profile.member.memberID", member_of_profile(found.profile))
    member = member_named(named[1], named[0], notes)
    signed_in = member is not None and token is not None
    if found.member is not None and member is not None and not signed_in:
        notes.drop("member_id", "no JWT, so not signed in; the member signs in again")
    if found.claims_authenticated and not signed_in:
        notes.drop("authenticated", "true, but no member id and JWT; the member signs in again")
    flow = flow_data(found.flow, outline, notes) if found.flow else None
    if found.flow and not flow_allowed(flow, found.flow.where, signed_in, outline.stages, notes):
        flow = None
    channel = whatsapp_channel(found.wa_id)
    doc: dict[str, Any] = {
        "channel": channel.as_dict(),
        "stage": stage_of(found.stage, flow, signed_in, outline.stages, notes),
        "authenticated": signed_in,
        "flow_data": flow,
    }
    optional = {
        "jwt_token": token,
        "profile": _profile_accounts(found.profile, notes),
        "current_account": statehq_account(found.current_account, "current_account", notes),
    }
    doc.update({name: value for name, value in optional.items() if value is not None})
    if member is not None and signed_in:
        doc["member_id"] = member
        return member_key(member), doc, (channel.key,)
    return channel.key, doc, ()


def _profile_accounts(profile: dict[str, Any] | None, notes: Notes) -> dict[str, Any] | None:
    """``profile`` with its accounts under the names statehq's bots read."""
    if profile is None or not isinstance(profile.get("accounts"), list):
        return profile
    accounts = [
        statehq_account(account, f"profile.accounts[{n}]", notes)
        for n, account in enumerate(profile["accounts"])
    ]
    return {**profile, "accounts": accounts}


def _validated(doc: dict[str, Any], outline: BotOutline, notes: Notes) -> dict[str, Any]:
    """``doc`` once the validator accepts it, dropping refused optional fields (noted)."""
    validator = StateValidator(outline.stages)
    for _ in range(len(DROPPABLE) + 1):
        violations = validator.violations(doc)
        if not violations:
            return doc
        refused = {_top(v.path) for v in violations}
        droppable = [name for name in DROPPABLE if name in refused and doc.get(name) is not None]
        if not droppable:
            break
        name = droppable[0]
        for violation in violations:
            if _top(violation.path) == name:
                notes.drop(violation.path, f"{violation.message}; dropped")
        doc = _without(doc, name)
    problems = "; ".join(f"{v.path}: {v.message}" for v in validator.violations(doc))
    raise _Skip(f"not a valid statehq document ({problems})")


def _top(path: str) -> str:
    """The top-level field a violation's path is in (``profile`` of ``profile.a[0]``)."""
    return path.split(".")[0].split("[")[0].split(" ")[0]


def _without(doc: dict[str, Any], name: str) -> dict[str, Any]:
    if name == "flow_data":  # no flow: the stage cannot stay the flow's
        return {**doc, name: None, "stage": STAGE_MENU if doc["authenticated"] else STAGE_INIT}
    return {key: value for key, value in doc.items() if key != name}
