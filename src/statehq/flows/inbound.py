"""What a member sent, as every channel adapter hands it to the flow engine.

A tapped button or list row arrives as ``choice``: the id the engine gave that option,
stamped with the session version the menu was drawn at (``v12.3f2a1b:offer``: the
version, then a tag of the session key). A tap whose
version is no longer the session's is *stale*: its menu was replaced (the member
moved on, the session expired, another channel wrote), so it is answered with the
current menu and never applied to whatever step the conversation is at now.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from ..errors import InvalidInput
from ..state import ChannelId
from .payloads import MEDIA_KINDS, FormReply, Media, PayloadError

GREETINGS = frozenset(
    {
        "hi",
        "hie",
        "hy",
        "hey",
        "hello",
        "menu",
        "home",
        "mhoro",
        "makadii",
        "sawubona",
        "jambo",
        "habari",
        "bonjour",
        "salut",
        "hola",
        "buenos dias",
        "ndeipi",
    }
)
"""Words that always bring the member home (case- and accent-insensitive)."""

CANCEL_WORDS = frozenset({"cancel", "stop", "quit"})
"""Words that abandon the active flow."""

_STAMP = re.compile(r"^v(\d+)\.([0-9a-f]{6}):(.+)$", re.DOTALL)


def normalize(text: str) -> str:
    """Lower case, accents and punctuation removed, spaces collapsed: ``"Buenos Días!"``
    becomes ``"buenos dias"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.sub(r"[^\w\s]", " ", bare.casefold())
    return " ".join(words.split())


def is_greeting(text: str) -> bool:
    """True for a greeting (or "menu"/"home"), whatever its case, accents or punctuation.

    Text starting with ``@`` is a handle (``@hola`` may be someone's), never a greeting.
    """
    return not text.lstrip().startswith("@") and normalize(text) in GREETINGS


def is_cancel(text: str) -> bool:
    """True when the member asks to abandon what they are doing (``@stop`` is a handle)."""
    return not text.lstrip().startswith("@") and normalize(text) in CANCEL_WORDS


def session_tag(session_key: str) -> str:
    """A short tag of the session a menu was drawn in.

    Versions count per session key, and a login moves the conversation to the member's
    key where counting starts again: the tag keeps a pre-login menu's ``v2`` from
    matching the member session's ``v2``.
    """
    return hashlib.sha256(session_key.encode()).hexdigest()[:6]


def stamp(version: int, session_key: str, option_id: str) -> str:
    """The id an option is sent with: its own id, and the session and version of its menu."""
    return f"v{version}.{session_tag(session_key)}:{option_id}"


def unstamp(choice: str) -> tuple[tuple[int, str] | None, str]:
    """``((version, tag), id)`` of a tapped option; ``(None, id)`` for an unstamped id."""
    match = _STAMP.match(choice)
    if match is None:
        return None, choice
    return (int(match.group(1)), match.group(2)), match.group(3)


@dataclass(frozen=True)
class Inbound:
    """One message from a member.

    ``text`` is what they typed (or the title of what they tapped); ``choice`` is the id
    of the tapped button or list row, if any. ``message_id`` is the channel's id for the
    message: idempotency keys for backend calls are derived from it, so processing the
    same message twice never repeats a side effect. ``media`` is the file they sent (a
    photo, a document...), ``form`` the form they filled in (a WhatsApp Flow); ``text``
    is then empty, so a caption never reads as "menu" or "cancel".
    """

    channel: ChannelId
    message_id: str
    text: str = ""
    choice: str | None = None
    at: datetime | None = None
    media: Media | None = None
    form: FormReply | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.message_id, str) or not self.message_id.strip():
            raise InvalidInput("an inbound message needs a non-empty message_id")
        if not isinstance(self.text, str):
            raise InvalidInput(f"inbound text must be a string, got {type(self.text).__name__}")
        if self.choice is not None and (not isinstance(self.choice, str) or not self.choice):
            raise InvalidInput("an inbound choice must be a non-empty string when given")


def inbound_from(
    channel: ChannelId, message_id: str, kind: str, text: str, choice: str | None
) -> Inbound | None:
    """The engine's message for an inbox update's parts; None when its payload is unreadable.

    Media and form replies carry their payload as JSON in ``text`` (see
    :mod:`statehq.flows.payloads`); the webhook checked it before queueing, so None here
    means an update that was put in the inbox some other way.
    """
    try:
        if kind in MEDIA_KINDS:
            return Inbound(channel, message_id, media=Media.decode(kind, text))
        if kind == "flow":
            return Inbound(channel, message_id, form=FormReply.parse(text))
    except PayloadError:
        return None
    return Inbound(channel, message_id, text, choice)
