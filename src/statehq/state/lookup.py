"""Finding a member's session from what an operator types.

    locate(manager, "whatsapp:263771234567")   a channel identity
    locate(manager, "member:m-7") / "m-7"      a member id
    locate(manager, "263771234567")            a bare phone: tried on every channel (and
                                               every WhatsApp number it wrote to)
    locate(manager, "+263 77 123 4567")        the same, as people write numbers
    locate(manager, "@tendai_moyo")            a handle, where the bot can resolve it

A bare word is tried as a member id and as an identifier on every registered channel
type; the one that has a session (or a binding) wins. When several do, the operator
is asked to choose - statehq never guesses which member to repair.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidInput, NoLiveSession, StateError
from ..store import SessionStatus
from ..store.requests import Operation, Scan
from .channel_ids import CHANNEL_TYPES, MEMBER_PREFIX, VIA, member_key, session_key_for

if TYPE_CHECKING:
    from .manager import StateManager

HandleResolver = Callable[[str], "str | None"]
"""A bot's way from a handle (without ``@``) to a member id, or None when unknown."""

_PHONE_PUNCTUATION = re.compile(r"[\s().-]")


class AmbiguousMember(StateError):
    """A bare id names sessions on more than one channel; the operator must choose."""

    def __init__(self, asked: str, candidates: list[str]) -> None:
        self.asked = asked
        self.candidates = candidates
        super().__init__(
            f"{asked!r} names {len(candidates)} sessions: {', '.join(candidates)}; "
            f"give one of them in full"
        )


@dataclass(frozen=True)
class Located:
    """Where a member's conversation lives, and how it was found."""

    asked: str
    key: str
    """The session key the conversation lives under now (a binding followed)."""
    named: str
    """The key the operator's words named, before following a binding."""
    via: str
    """How it was found, in words: ``channel identity``, ``phone on whatsapp``, ..."""


def locate(
    manager: StateManager,
    asked: str,
    *,
    handles: HandleResolver | None = None,
    starting: bool = False,
) -> Located:
    """The session ``asked`` names; :class:`NoLiveSession` when it names none.

    ``starting``: the caller may start a session (an update), so a bare word that names
    none is taken as a member id, as ``member:<word>`` would be - but not a phone number,
    whose channel would be a guess.

    Raises :class:`InvalidInput` for words that cannot be an id, and
    :class:`AmbiguousMember` when a bare id has sessions on several channels.
    """
    text = asked.strip()
    if not text:
        raise InvalidInput("give a member id, a channel identity, a phone number or a @handle")
    if text.startswith("@"):
        return _by_handle(manager, asked, text[1:], handles)
    kind, sep, rest = text.partition(":")
    if sep and not rest and (kind == MEMBER_PREFIX or kind in CHANNEL_TYPES):
        example = "m-7" if kind == MEMBER_PREFIX else "263771234567"
        raise InvalidInput(
            f"{text!r} names no one: give the id after the colon, e.g. {kind}:{example}"
        )
    if sep and (kind == MEMBER_PREFIX or kind in CHANNEL_TYPES) and rest:
        return _found(
            manager,
            asked,
            session_key_for(text),
            "member id" if kind == MEMBER_PREFIX else "channel identity",
        )
    if sep:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise InvalidInput(
            f"{kind!r} is not a channel type (registered: {known}) nor {MEMBER_PREFIX!r}"
        )
    return _bare(manager, asked, _as_phone(text), starting)


def _as_phone(text: str) -> str:
    """``+263 77-123 4567`` -> ``263771234567``; other words unchanged."""
    digits = _PHONE_PUNCTUATION.sub("", text).removeprefix("+")
    return digits if digits.isdigit() and digits.isascii() else text


def _bare(manager: StateManager, asked: str, word: str, starting: bool) -> Located:
    candidates = [(member_key(word), "member id")]
    candidates += [(f"{kind}:{word}", f"phone on {kind}") for kind in sorted(CHANNEL_TYPES)]
    found = [(key, via) for key, via in candidates if _exists(manager, key)]
    if word.isdigit() and word.isascii():  # its conversations with other numbers too
        numbered = [
            (key, f"phone on whatsapp, number {key.rpartition(VIA)[2]}")
            for key in manager.store.execute(_with_numbers(manager, word))
        ]
        found += [(key, via) for key, via in numbered if _exists(manager, key)]
    if not found and starting and word == asked.strip() and not word.isdigit():
        return _found(manager, asked, member_key(word), "member id (new)")
    if not found and starting:  # a phone number: on which channel? not guessed
        raise NoLiveSession(
            asked, "none", f"; to start a session give it in full, e.g. whatsapp:{word}"
        )
    if not found:
        tried = ", ".join(key for key, _ in candidates)
        raise NoLiveSession(asked, "none", f"; tried {tried}")
    if len(found) > 1:
        raise AmbiguousMember(asked, [key for key, _ in found])
    key, via = found[0]
    return _found(manager, asked, key, via)


def _with_numbers(manager: StateManager, phone: str) -> Operation:
    """The identities ``whatsapp:<phone>@<number>`` with keys in the store, sorted.

    The numbers a member wrote to are not known here (a numbers file may have changed
    since), so the store is asked: a SCAN for that phone's keys alone, fine for an
    operator's lookup (as for a handle), never on a hot path. A phone is digits, so the
    pattern needs no escaping.
    """
    prefix = manager.store.settings.key_prefix
    pattern = f"{_glob_escaped(prefix)}:{{whatsapp:{phone}{VIA}*}}:*"
    found: set[str] = set()
    at = "0"
    while True:
        at, raw_keys = yield Scan(at, pattern, 1000)
        for raw in raw_keys:
            key = raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else str(raw)
            start = len(prefix) + 2  # past "<prefix>:{"; a member id holds no brace
            found.add(key[start : key.index("}", start)])
        if at == "0":
            return sorted(found)


def _glob_escaped(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _exists(manager: StateManager, key: str) -> bool:
    try:
        if manager.store.route(key) is not None:
            return True
        return manager.store.status(key) is not SessionStatus.NONE
    except InvalidInput:  # not a valid key on this channel: it names nothing there
        return False


def _by_handle(
    manager: StateManager, asked: str, handle: str, handles: HandleResolver | None
) -> Located:
    """The bot's ``member_for_handle`` when it knows the handle; else the live sessions
    whose current account has it (a SCAN of the store: fine for an operator, not for a
    hot path). Handles are matched without regard to case."""
    if not handle:
        raise InvalidInput("a handle follows the @, e.g. @tendai_moyo")
    handle = handle.lower()
    member = handles(handle) if handles is not None else None
    if member is not None:
        return _found(manager, asked, member_key(member), f"handle @{handle}")
    sessions = _sessions_with_handle(manager, handle)
    if not sessions:
        raise NoLiveSession(asked, "none", "; no live session's current account has that handle")
    if len(sessions) > 1:
        raise AmbiguousMember(asked, sessions)
    return _found(manager, asked, sessions[0], f"handle @{handle} (current account)")


def _sessions_with_handle(manager: StateManager, handle: str) -> list[str]:
    found: list[str] = []
    cursor = "0"
    while True:
        page = manager.store.scan_sessions(handle=handle, limit=10, cursor=cursor)
        found += [session.key for session in page.sessions]
        if page.cursor == "0" or len(found) > 10:
            return sorted(found)
        cursor = page.cursor


def _found(manager: StateManager, asked: str, named: str, via: str) -> Located:
    return Located(asked=asked, key=manager.session_key(named), named=named, via=via)
