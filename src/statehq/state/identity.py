"""Binding a channel identity to a member, and unbinding it.

``bind`` moves a conversation from its channel key to ``member:<id>`` without losing
anything, in two steps that any concurrent reader sees as one:

1. write the member's session: what it already held, overlaid with the channel
   session's conversation (flow, stage, profile, account) and the new identity and
   token - a compare-and-set on the member's key;
2. on the channel's keys, in one script: if the channel session is still at the
   version that was copied, record the route and remove the channel's document
   (see :mod:`statehq.store.routes`). If it changed meanwhile, go back to 1.

Readers and writers check the route inside their own scripts, so before step 2 they
use the channel session (complete) and after it the member's (complete).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..errors import IdentityError, InvalidInput, SessionEnded, SessionMoved, VersionConflict
from ..store import Snapshot
from ..store.audit import AuditEvent
from .channel_ids import ChannelId, member_key, member_of_key
from .staging import Change
from .tokens import token_expiry
from .validator import StateValidator, watched

if TYPE_CHECKING:
    from .manager import StateManager
    from .session import MemberSession

CARRIED = ("flow_data", "stage", "profile", "current_account")
"""What a channel session brings into the member's session when it is bound."""


def bind(
    session: MemberSession,
    member_id: str,
    token: str,
    profile: Mapping[str, Any] | None,
    current_account: Mapping[str, Any] | None,
    reason: str,
) -> Snapshot:
    """Bind ``session``'s channel to ``member_id``; returns the member session's snapshot."""
    target, identity = login_identity(
        session.key, session.channel, member_id, token, profile, current_account
    )
    if member_of_key(session.key) is None:
        moved = _move(session, target, identity, reason)
        if moved is not None:
            return moved
    return _write_member(session.manager, session, target, {}, identity, reason, ("auth.login",))


def login_identity(
    key: str,
    channel: ChannelId | None,
    member_id: str,
    token: str,
    profile: Mapping[str, Any] | None,
    current_account: Mapping[str, Any] | None,
) -> tuple[str, dict[str, Any]]:
    """The member's key and the fields a login writes there; refuses a bad login first."""
    if token_expiry(token) is None:
        raise InvalidInput("the token is not a JWT with a readable exp claim; nobody was logged in")
    target = member_key(member_id)
    identity: dict[str, Any] = {"member_id": member_id, "jwt_token": token, "authenticated": True}
    if channel is not None:
        identity["channel"] = channel.as_dict()
    if profile is not None:
        identity["profile"] = copy.deepcopy(dict(profile))
    if current_account is not None:
        identity["current_account"] = copy.deepcopy(dict(current_account))
    bound_member = member_of_key(key)
    if bound_member is not None and bound_member != member_id:
        raise IdentityError(
            f"session {key!r} belongs to member {bound_member!r}, not {member_id!r}; "
            f"unbind the channel first if it changed hands"
        )
    return target, identity


def carried_from(channel_doc: Mapping[str, Any]) -> dict[str, Any]:
    """What the channel session brings along: its whole conversation, even "no flow"."""
    # The conversation moves as a whole: the channel's stage and flow (even "no
    # flow") replace the member's, or a member mid-flow elsewhere could not log in.
    carried = {k: channel_doc[k] for k in CARRIED if k in channel_doc}
    carried.setdefault("flow_data", None)
    carried.setdefault("stage", channel_doc.get("stage", "INIT"))
    return carried


def already_bound(channel_key: str, moved: SessionMoved, target: str) -> None:
    """Refuse binding a channel that is bound to another member."""
    if moved.target != target:
        raise IdentityError(f"{channel_key} is already bound to {moved.target}; unbind it first")


def member_write(
    validator: StateValidator,
    channel: str,
    source: str,
    target: str,
    carried: dict[str, Any],
    identity: dict[str, Any],
    reason: str,
    events: tuple[str, ...],
) -> tuple[Change, tuple[AuditEvent, ...]]:
    """The change to the member's session (validated) and its audit entries."""

    def merge(doc: dict[str, Any]) -> dict[str, Any]:
        before = watched(doc)
        after = {**doc, **copy.deepcopy(carried), **copy.deepcopy(identity)}
        validator.check(target, before, after, identity=True)
        return after

    detail = {"member": target, "from": source}
    return merge, tuple(AuditEvent(event, channel, reason, detail) for event in events)


def _move(
    session: MemberSession, target: str, identity: dict[str, Any], reason: str
) -> Snapshot | None:
    """Steps 1 and 2 above; None when another process had already bound the channel here."""
    manager, store = session.manager, session.manager.store
    channel_key = session.key
    give_up = time.monotonic() + store.settings.mutate_deadline
    while True:
        try:
            snap = store.get(channel_key)
        except SessionMoved as moved:
            already_bound(channel_key, moved, target)
            session.key = target
            return None
        carried = carried_from(snap.doc if snap else {})
        events = ("identity.bound", "auth.login")
        written = _write_member(manager, session, target, carried, identity, reason, events)
        event = AuditEvent("identity.bound", channel_key, reason, {"to": target})
        try:
            store.bind(channel_key, snap.version if snap else 0, target, event)
        except VersionConflict:
            if time.monotonic() > give_up:
                raise
            continue  # the channel session changed after the copy: copy it again
        metrics.IDENTITY_CHANGES.labels("bound").inc()
        session.key = target
        return written


def _write_member(
    manager: StateManager,
    session: MemberSession,
    target: str,
    carried: dict[str, Any],
    identity: dict[str, Any],
    reason: str,
    events: tuple[str, ...],
) -> Snapshot:
    channel = session.channel.key if session.channel else ""
    merge, audit = member_write(
        manager.validator, channel, session.key, target, carried, identity, reason, events
    )
    return manager.store.mutate(target, merge, lease=None, audit=audit)


def forget_channel(target: str, channel: ChannelId) -> Change:
    """The member's session forgets ``channel`` and the login it brought (unbinding)."""
    bound_channel = channel.as_dict()

    def forget(doc: dict[str, Any]) -> dict[str, Any] | None:
        if not doc:
            raise SessionEnded(target)
        if doc.get("channel") != bound_channel:
            return None
        # The number changed hands: its new holder must not inherit the login.
        return {**doc, "channel": None, "jwt_token": None, "authenticated": False}

    return forget


def unbind(manager: StateManager, channel: ChannelId, reason: str) -> str:
    """Detach ``channel`` from its member, whose session forgets it; returns the member key."""
    store = manager.store
    target = store.route(channel.key)
    if target is None:
        raise IdentityError(f"{channel.key} is not bound to any member; nothing was changed")
    # The member's session forgets the channel first, then the route goes: a failure in
    # between leaves the channel bound, so running unbind again finishes the job.
    member_event = AuditEvent("identity.unbound", channel.key, reason, {"channel": channel.key})
    try:
        store.mutate(target, forget_channel(target, channel), audit=(member_event,))
    except SessionEnded:
        store.audit_append(target, member_event)
    store.unbind(channel.key, AuditEvent("identity.unbound", channel.key, reason, {}))
    metrics.IDENTITY_CHANGES.labels("unbound").inc()
    return target
