"""Reading a session: what a :class:`MemberSession` hands out, always as copies.

No caller ever holds a live reference into stored state: changing what a reader
returns changes nothing stored. Writing lives in :mod:`statehq.state.session`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Protocol

from ..store import Snapshot
from ..store.operations import Clock
from .channel_ids import ChannelId, member_of_key
from .model import STAGE_INIT
from .tokens import token_expiry


class Clocked(Protocol):
    """What a reader needs of its manager (blocking or asyncio): the time."""

    clock: Clock


class SessionReader:
    """The read side of a session handle (blocking or asyncio), over its last snapshot."""

    manager: Clocked
    key: str
    channel: ChannelId | None
    _snap: Snapshot

    @property
    def version(self) -> int:
        """The version this handle last read or wrote."""
        return self._snap.version

    @property
    def ttl(self) -> float | None:
        """Seconds left in the session as of the last read or write."""
        return self._snap.ttl

    def state(self) -> dict[str, Any]:
        """A private copy of the whole document (changing it changes nothing stored)."""
        return copy.deepcopy(self._snap.doc)

    def get_member_id(self) -> str | None:
        """The member id, once the backend has named the member."""
        value = self._snap.doc.get("member_id")
        return value if isinstance(value, str) else member_of_key(self.key)

    def get_channel(self) -> ChannelId | None:
        """The channel this conversation is on (the inbound one; else the bound one)."""
        if self.channel is not None:
            return self.channel
        stored = self._snap.doc.get("channel")
        if isinstance(stored, Mapping):
            return ChannelId(stored["type"], stored["identifier"])
        return None

    def is_authenticated(self) -> bool:
        """True when logged in with a token that has not expired."""
        token = self._snap.doc.get("jwt_token")
        if self._snap.doc.get("authenticated") is not True or not isinstance(token, str):
            return False
        expiry = token_expiry(token)
        return expiry is not None and expiry > self.manager.clock()

    def get_stage(self) -> str:
        """The conversation's stage (INIT, AUTH, MENU or a flow id)."""
        stage = self._snap.doc.get("stage")
        return stage if isinstance(stage, str) else STAGE_INIT

    def get_flow(self) -> dict[str, Any] | None:
        """A copy of the active flow (``{id, step, data, _validation}``), or None."""
        flow = self._snap.doc.get("flow_data")
        return copy.deepcopy(flow) if isinstance(flow, dict) else None

    def get_profile(self) -> dict[str, Any] | None:
        """A copy of the member's profile as the backend returned it."""
        return copy.deepcopy(self._snap.doc.get("profile"))

    def get_current_account(self) -> dict[str, Any] | None:
        """A copy of the account the member is acting on."""
        return copy.deepcopy(self._snap.doc.get("current_account"))

    def _flow_id(self) -> str | None:
        flow = self._snap.doc.get("flow_data")
        return flow.get("id") if isinstance(flow, dict) else None

    def _channel_name(self) -> str:
        channel = self.get_channel()
        return channel.key if channel else ""
