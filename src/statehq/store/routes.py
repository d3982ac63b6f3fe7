"""Identity routing in the store: a channel's session moving to its member's key.

A session starts under its channel identity (``whatsapp:263771234567``). When the
backend names the member, :mod:`statehq.state.identity` copies the session into the
member's (``member:<id>``) and then calls :func:`bind`, which - in one script on the
channel's keys - checks the channel session did not change since the copy, records
the route and removes the channel's own document. The route outlives sessions: it is
the binding itself, removed only by :func:`unbind`.

Timeline of the race this prevents (reader R, binder B)::

    B copies channel doc v7 into the member's session
    R writes the channel doc (v8)           <- allowed: no route yet
    B bind(expected v7) -> CONFLICT         <- B copies again, now v8
    B bind(expected v8) -> OK, route set
    R writes the channel doc -> MOVED       <- R re-resolves and writes the member's
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import IdentityError, VersionConflict
from .audit import AuditEvent, entry_args
from .requests import Command, Operation, Script

if TYPE_CHECKING:
    from .operations import Operations


def route(ops: Operations, session: str) -> Operation:
    """The session key ``session`` was bound to, or None."""
    target = yield Command(("GET", ops.keys.member(session).route))
    return target.decode() if isinstance(target, bytes) else target


def resolve(ops: Operations, session: str) -> Operation:
    """The key ``session``'s conversation lives under now: its member's once bound, else itself."""
    target = yield from route(ops, session)
    return target or session


def bind(
    ops: Operations, session: str, copied_version: int, target: str, event: AuditEvent
) -> Operation:
    """Route ``session`` to ``target`` if it is still at ``copied_version``; drop its doc."""
    keys = ops.keys.member(session)
    ops.keys.member(target)  # validates the target key
    leaf, audit_args = entry_args(ops, event.encoded()[1:])
    args: list[bytes | str | int] = [copied_version, target, *audit_args]
    reply = yield Script("bind", [keys.doc, keys.hist, keys.route, keys.audit, keys.seen], args)
    if reply[0] == b"BOUND":
        current = reply[1].decode()
        raise IdentityError(
            f"{session} is already bound to {current}; unbind it first (statehq identity "
            f"unbind {session}) if the number changed hands"
        )
    if reply[0] == b"CONFLICT":
        raise VersionConflict(session, copied_version, int(reply[1]))
    yield ops.tail_command(session, "identity.bound", None, reply[1], leaf)
    # The index on the member's side is another slot, so a second call; the route stays
    # the truth and :func:`bound_channels` checks every index entry against it.
    yield Command(("SADD", ops.keys.member(target).channels, session))
    return reply[1].decode()


def unbind(ops: Operations, session: str, event: AuditEvent) -> Operation:
    """Remove ``session``'s route; returns the key it was bound to."""
    keys = ops.keys.member(session)
    leaf, args = entry_args(ops, event.encoded()[1:])
    reply = yield Script("unbind", [keys.route, keys.audit], args)
    if reply[0] == b"NOTBOUND":
        raise IdentityError(f"{session} is not bound to any member; nothing was changed")
    yield ops.tail_command(session, "identity.unbound", None, reply[2], leaf)
    former = reply[1].decode()
    yield Command(("SREM", ops.keys.member(former).channels, session))
    return former


def bound_channels(ops: Operations, target: str, hint: str | None = None) -> Operation:
    """The channel keys whose route points at ``target``, sorted.

    Read from ``target``'s index and checked against each route (the index is written
    after the route, so a crash in between leaves a stale or missing entry); ``hint``,
    such as the channel in the member's document, is checked too, which also finds
    bindings made before the index existed.
    """
    members = yield Command(("SMEMBERS", ops.keys.member(target).channels))
    candidates = {m.decode() if isinstance(m, bytes) else str(m) for m in members}
    if hint:
        candidates.add(hint)
    bound = []
    for channel in sorted(candidates):
        if channel != target and (yield from route(ops, channel)) == target:
            bound.append(channel)
    return bound
