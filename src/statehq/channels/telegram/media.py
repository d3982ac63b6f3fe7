"""Files a Telegram member sends, as the flows' :class:`~statehq.flows.Media`.

A photo, a document, a voice note, an audio file, a video or a sticker reaches a bot as
the same typed input a WhatsApp file does, so a step that takes a receipt photo
(:class:`~statehq.flows.MediaInput`) works on both channels. The id is Telegram's
``file_id`` (``getFile`` fetches the bytes with it); the bytes never pass through statehq.

Telegram does not always say a file's type: a photo is always a JPEG it re-encoded, and a
voice note, an audio file or a video without ``mime_type`` gets the type Telegram sends
such files as.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...flows import Media, PayloadError

KINDS = ("photo", "document", "voice", "audio", "video", "sticker")
"""Message fields that carry a file statehq hands to the bot (others stay unsupported)."""

_DEFAULT_TYPES = {
    "photo": "image/jpeg",
    "document": "application/octet-stream",
    "voice": "audio/ogg",
    "audio": "audio/mpeg",
    "video": "video/mp4",
}


def media_of(message: Mapping[str, Any]) -> Media | None:
    """The file ``message`` carries, or None when it carries none of :data:`KINDS`.

    Raises :class:`~statehq.flows.PayloadError` naming the field when the file is
    malformed (no ``file_id``, a photo without sizes, a type that is not a mime type).
    """
    field = next((name for name in KINDS if name in message), None)
    if field is None:
        return None
    body = message[field]
    if field == "photo":  # the sizes Telegram made of it, smallest first: keep the largest
        if not isinstance(body, list) or not body or not isinstance(body[-1], dict):
            raise PayloadError("photo is not a list of sizes")
        body = body[-1]
    if not isinstance(body, dict):
        raise PayloadError(f"{field} is {type(body).__name__}, not an object")
    file_id = body.get("file_id")
    if not isinstance(file_id, str) or not file_id:
        raise PayloadError(f"{field}.file_id is missing")
    caption = message.get("caption")
    filename = body.get("file_name")
    return Media(
        kind=_kind(field),
        id=file_id,
        mime_type=_mime_type(field, body),
        caption=caption if isinstance(caption, str) else None,
        filename=filename if isinstance(filename, str) else None,
        voice=field == "voice",
    )


def _kind(field: str) -> str:
    return {"photo": "image", "voice": "audio"}.get(field, field)


def _mime_type(field: str, body: Mapping[str, Any]) -> str:
    given = body.get("mime_type")
    if isinstance(given, str) and given:
        return given
    if field == "sticker":  # animated stickers are Lottie files, video stickers WebM
        if body.get("is_animated") is True:
            return "application/x-tgsticker"
        return "video/webm" if body.get("is_video") is True else "image/webp"
    return _DEFAULT_TYPES[field]
