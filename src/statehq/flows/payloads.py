"""What a member sends besides text and taps: media, and a filled-in form.

A channel adapter parses them from its own wire format; the inbox carries an update's
content as text, so both travel as JSON in ``Update.text`` (:meth:`Media.encode`, and
the raw ``response_json`` of a WhatsApp Flow) and are decoded again for the engine by
:func:`statehq.flows.inbound.inbound_from`. Decoding is strict and says precisely what
is wrong, so the webhook can reject a malformed update before it is queued.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InvalidInput

MEDIA_KINDS = ("image", "document", "audio", "video", "sticker")
"""Update kinds that carry a file (its id at the channel, never its bytes)."""

MAX_FORM_JSON = 64 * 1024
"""The largest form reply read (bytes of JSON): a Flow's answers are a few fields."""
MAX_FORM_FIELDS = 100
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_MEDIA_ID = re.compile(r"[A-Za-z0-9._:=/+-]{1,200}")
_SHA256 = re.compile(r"[A-Za-z0-9+/=_-]{1,100}")  # Meta sends base64; others send hex


class PayloadError(InvalidInput):
    """A media or form payload is malformed; the message says which part and why."""


@dataclass(frozen=True)
class Media:
    """A file the member sent: ``kind`` (image, document, audio, video, sticker), the
    channel's ``id`` for it (fetch the bytes with it), its ``mime_type``, and what the
    channel tells about it when it does: ``sha256``, ``caption``, ``filename``,
    ``voice`` (an audio recorded as a voice note)."""

    kind: str
    id: str
    mime_type: str
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool = False

    def __post_init__(self) -> None:
        if self.kind not in MEDIA_KINDS:
            raise PayloadError(f"media kind {self.kind!r:.40} is not one of {MEDIA_KINDS}")
        if not isinstance(self.id, str) or not _MEDIA_ID.fullmatch(self.id):
            raise PayloadError(f"{self.kind}.id {self.id!r:.60} is not a media id")
        mime = self.mime_type.split(";")[0].strip().lower() if _is_str(self.mime_type) else ""
        if not _MIME.fullmatch(mime):
            raise PayloadError(f"{self.kind}.mime_type {self.mime_type!r:.60} is not a mime type")
        object.__setattr__(self, "mime_type", mime)  # parameters (codecs=opus) dropped
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise PayloadError(f"{self.kind}.sha256 {self.sha256!r:.60} is not a digest")
        for name in ("caption", "filename"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) > 4096):
                raise PayloadError(f"{self.kind}.{name} must be text of at most 4096 characters")

    @property
    def noun(self) -> str:
        """What a member would call it: a photo, a voice note, a document..."""
        if self.kind == "audio":
            return "voice note" if self.voice else "audio message"
        return {"image": "photo"}.get(self.kind, self.kind)

    def encode(self) -> str:
        """The media as an inbox update's text."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, kind: str, text: str) -> Media:
        """The media an update of ``kind`` carries in its text; :class:`PayloadError` if none."""
        try:
            fields = json.loads(text)
        except ValueError:
            raise PayloadError(f"a {kind} update does not carry its media as JSON") from None
        if not isinstance(fields, dict) or fields.get("kind") != kind:
            raise PayloadError(f"a {kind} update carries no {kind} media")
        known = {k: v for k, v in fields.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError as missing:
            raise PayloadError(f"a {kind} update's media is incomplete: {missing}") from None

    def audit_detail(self) -> dict[str, Any]:
        """What the audit trail keeps: never the caption (it is the member's words)."""
        detail: dict[str, Any] = {"kind": self.kind, "media_id": self.id}
        detail["mime_type"] = self.mime_type
        if self.sha256:
            detail["sha256"] = self.sha256
        if self.caption:
            detail["caption_chars"] = len(self.caption)
        return detail


@dataclass(frozen=True)
class FormReply:
    """A filled-in form (a WhatsApp Flow's ``nfm_reply``): the token the form was sent
    with (None when the reply carried none) and the answers, by field name."""

    token: str | None
    values: Mapping[str, Any]

    @classmethod
    def parse(cls, response_json: str) -> FormReply:
        """Read a Flow's ``response_json``; :class:`PayloadError` says what is wrong."""
        if len(response_json.encode(errors="replace")) > MAX_FORM_JSON:
            raise PayloadError(f"nfm_reply.response_json is over {MAX_FORM_JSON} bytes")
        try:
            answers = json.loads(response_json)
        except ValueError as bad:
            raise PayloadError(f"nfm_reply.response_json is not JSON ({bad})") from None
        except RecursionError:
            raise PayloadError("nfm_reply.response_json is nested too deeply") from None
        if not isinstance(answers, dict):
            shown = type(answers).__name__
            raise PayloadError(f"nfm_reply.response_json is a JSON {shown}, not an object")
        token = answers.pop("flow_token", None)
        if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 200):
            raise PayloadError("nfm_reply.response_json.flow_token is not a token string")
        if len(answers) > MAX_FORM_FIELDS:
            raise PayloadError(f"nfm_reply.response_json has over {MAX_FORM_FIELDS} fields")
        return cls(token, answers)


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)
