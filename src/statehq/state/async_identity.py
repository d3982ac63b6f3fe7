"""Binding and unbinding for asyncio: the same two steps as :mod:`statehq.state.identity`.

The rules (who may log in, what the channel session carries over, how the member's
session changes) are that module's functions; only the store calls are awaited here.
The race the two steps prevent is drawn in :mod:`statehq.store.routes`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..errors import IdentityError, SessionEnded, SessionMoved, VersionConflict
from ..store import Snapshot
from ..store.audit import AuditEvent
from .channel_ids import ChannelId, member_of_key
from .identity import already_bound, carried_from, forget_channel, login_identity, member_write

if TYPE_CHECKING:
    from .async_manager import AsyncStateManager
    from .async_session import AsyncMemberSession


async def bind(
    session: AsyncMemberSession,
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
        moved = await _move(session, target, identity, reason)
        if moved is not None:
            return moved
    return await _write_member(session, target, {}, identity, reason, ("auth.login",))


async def _move(
    session: AsyncMemberSession, target: str, identity: dict[str, Any], reason: str
) -> Snapshot | None:
    """Copy the conversation, then route the channel; None when it was already bound here."""
    store = session.manager.store
    channel_key = session.key
    give_up = time.monotonic() + store.settings.mutate_deadline
    while True:
        try:
            snap = await store.get(channel_key)
        except SessionMoved as moved:
            already_bound(channel_key, moved, target)
            session.key = target
            return None
        carried = carried_from(snap.doc if snap else {})
        events = ("identity.bound", "auth.login")
        written = await _write_member(session, target, carried, identity, reason, events)
        event = AuditEvent("identity.bound", channel_key, reason, {"to": target})
        try:
            await store.bind(channel_key, snap.version if snap else 0, target, event)
        except VersionConflict:
            if time.monotonic() > give_up:
                raise
            continue  # the channel session changed after the copy: copy it again
        metrics.IDENTITY_CHANGES.labels("bound").inc()
        session.key = target
        return written


async def _write_member(
    session: AsyncMemberSession,
    target: str,
    carried: dict[str, Any],
    identity: dict[str, Any],
    reason: str,
    events: tuple[str, ...],
) -> Snapshot:
    manager = session.manager
    channel = session.channel.key if session.channel else ""
    merge, audit = member_write(
        manager.validator, channel, session.key, target, carried, identity, reason, events
    )
    return await manager.store.mutate(target, merge, lease=None, audit=audit)


async def unbind(manager: AsyncStateManager, channel: ChannelId, reason: str) -> str:
    """Detach ``channel`` from its member, whose session forgets it; returns the member key."""
    store = manager.store
    target = await store.route(channel.key)
    if target is None:
        raise IdentityError(f"{channel.key} is not bound to any member; nothing was changed")
    # The member's session forgets the channel first, then the route goes: a failure in
    # between leaves the channel bound, so running unbind again finishes the job.
    member_event = AuditEvent("identity.unbound", channel.key, reason, {"channel": channel.key})
    try:
        await store.mutate(target, forget_channel(target, channel), audit=(member_event,))
    except SessionEnded:
        await store.audit_append(target, member_event)
    await store.unbind(channel.key, AuditEvent("identity.unbound", channel.key, reason, {}))
    metrics.IDENTITY_CHANGES.labels("unbound").inc()
    return target
