"""Files as answers: a step that takes a photo, a document or a voice note.

    Receipt = MediaInput(
        "receipt",
        "Send a photo of the receipt, or the PDF.",
        accept=("image/*", "application/pdf"),
        then="confirm",
    )

The answer is stored in the flow's data under the step's name: the channel's media id,
its mime type, kind, sha256, caption and file name (never the bytes: fetch them with the
id when the bot needs them, e.g. from WhatsApp's ``GET /<media id>``). Every file a
member sends is recorded in the audit trail with its id and mime type, taken or not; at
a step that takes no file the engine answers politely (see :data:`REFUSED`) and changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from .components import Answer, Goto, Invalid, Messages, Outcome, Retry, Step
from .messages import Message, Text
from .payloads import MEDIA_KINDS, Media

if TYPE_CHECKING:
    from .turn import Turn

REFUSED = (
    "I can only read text and menu choices here, so I did not keep that {noun}. Please type "
    "your answer, or tap one of the options I sent."
)
"""The answer to a file sent where no step takes one (``{noun}``: photo, document...)."""

ParseMedia = Callable[["Turn", Media], Mapping[str, Any]]


def refused(media: Media) -> str:
    """The polite answer to ``media`` sent where it is not taken."""
    return REFUSED.format(noun=media.noun)


def mime_matches(mime_type: str, patterns: Sequence[str]) -> bool:
    """True when ``mime_type`` is one of ``patterns`` (``image/*`` matches any image)."""
    major = mime_type.split("/")[0]
    return any(p == mime_type or p == f"{major}/*" or p == "*/*" for p in patterns)


class MediaInput(Step):
    """Asks ``question`` and takes a file whose mime type is one of ``accept``.

    ``accept``: mime types, or ``image/*``-style families. ``kinds``: which kinds of
    message may carry it (stickers are left out: they are not documents). ``parse(turn,
    media)`` may check it further (raise :class:`~statehq.flows.Invalid`) and returns
    the data to store; by default the media's description under the step's name.
    ``then`` is the next step's name or a function of the turn and that data.
    """

    takes_media = True

    def __init__(
        self,
        name: str,
        question: str | Callable[[Turn], Message],
        accept: Sequence[str],
        then: str | Callable[[Turn, Mapping[str, Any]], Outcome],
        *,
        kinds: Sequence[str] = ("image", "document", "audio", "video"),
        parse: ParseMedia | None = None,
        wrong_type: str | None = None,
    ) -> None:
        super().__init__(name)
        if not accept or any("/" not in pattern for pattern in accept):
            raise InvalidInput(f"step {name!r}: accept mime types like 'image/*', got {accept}")
        unknown = set(kinds) - set(MEDIA_KINDS)
        if unknown:
            raise InvalidInput(f"step {name!r}: unknown media kinds {sorted(unknown)}")
        self.question = question
        self.accept = tuple(pattern.lower() for pattern in accept)
        self.kinds = tuple(kinds)
        self.then = then
        self.parse = parse
        self.wrong_type = wrong_type or f"I can take a file of type {', '.join(self.accept)} here."

    def prompt(self, turn: Turn) -> Messages:
        if isinstance(self.question, str):
            return (Text(self.question),)
        return (self.question(turn),)

    def answer(self, turn: Turn, answer: Answer) -> Outcome:
        media = answer.media
        if media is None:
            return Retry("Please send the file itself (a photo or a document), not a message.")
        if media.kind not in self.kinds or not mime_matches(media.mime_type, self.accept):
            return Retry(f"That {media.noun} is {media.mime_type}. {self.wrong_type}")
        try:
            data = self.parse(turn, media) if self.parse else {self.name: described(media)}
        except Invalid as invalid:
            return Retry(str(invalid))
        if isinstance(self.then, str):
            return Goto(self.then, data)
        return self.then(turn, data)


def described(media: Media) -> dict[str, Any]:
    """What a step stores of a file: everything the channel said of it, no empty fields."""
    kept = {
        "kind": media.kind,
        "media_id": media.id,
        "mime_type": media.mime_type,
        "sha256": media.sha256,
        "caption": media.caption,
        "filename": media.filename,
    }
    return {key: value for key, value in kept.items() if value is not None}
