"""Flow replies as Bot API calls, and a tapped inline button read back.

A :class:`~statehq.flows.Text` is a ``sendMessage``; :class:`~statehq.flows.Buttons` and
:class:`~statehq.flows.OptionList` are a ``sendMessage`` with an inline keyboard, one
button per row (a list's descriptions, which a button cannot show, are listed under its
text). Flows write WhatsApp's markup: a ``*bold*`` span becomes a Telegram ``bold``
entity (offsets in UTF-16 code units, as Telegram counts them), by WhatsApp's rule that
the asterisks hug the words (``2*3*4`` stays as it is). No ``parse_mode``: Telegram's
Markdown would refuse a whole message for one unpaired ``_`` in a handle.

A button's ``callback_data`` is the option's stamped id (``v12.3f2a1b:offer``), which
comes back in the tap, so a stale menu is recognised as on WhatsApp. Telegram allows 64
bytes: an id longer than that goes as ``#tg<n>`` (its place in the keyboard), and the
tap is read as the member typing the button's label, which the engine matches against
the current menu's titles (:func:`button_of`).
"""

from __future__ import annotations

import re
from typing import Any

from ...flows import Buttons, Message, Option, OptionList
from ...flows.messages import TEXT_LIMIT
from ...text import clean_text

CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit on callback_data
BY_PLACE = "#tg"
"""The callback data of a button whose id is too long to send: ``#tg<place>``."""
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")


def render(message: Message, chat_id: int) -> dict[str, Any]:
    """The ``sendMessage`` call (``method`` and its parameters) that shows ``message``.

    A message with no options (a text; a WhatsApp-only form, were one sent here) is its
    body as plain text.
    """
    body: dict[str, Any] = {"method": "sendMessage", "chat_id": chat_id}
    if isinstance(message, Buttons):
        return {**body, **formatted(message.body), "reply_markup": keyboard(message.options)}
    if isinstance(message, OptionList):
        text = _with_descriptions(message.body, message.options)
        return {**body, **formatted(text), "reply_markup": keyboard(message.options)}
    return {**body, **formatted(message.body)}


def formatted(text: str) -> dict[str, Any]:
    """``text`` and ``entities`` for ``sendMessage``: WhatsApp's ``*bold*`` spans as bold
    entities, the asterisks dropped (no ``entities`` when there are none)."""
    plain: list[str] = []
    entities: list[dict[str, Any]] = []
    at = 0  # UTF-16 code units written so far
    last = 0
    for found in _BOLD.finditer(text):
        before, bold = text[last : found.start()], found.group(1)
        plain += [before, bold]
        at += _utf16(before)
        entities.append({"type": "bold", "offset": at, "length": _utf16(bold)})
        at += _utf16(bold)
        last = found.end()
    if not entities:
        return {"text": text}
    return {"text": "".join([*plain, text[last:]]), "entities": entities}


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def keyboard(options: tuple[Option, ...]) -> dict[str, Any]:
    """An inline keyboard of ``options``, one per row."""
    rows = [
        [{"text": o.title, "callback_data": callback_data(o.id, n)}] for n, o in enumerate(options)
    ]
    return {"inline_keyboard": rows}


def callback_data(option_id: str, place: int) -> str:
    """What a button sends back when tapped: its id, or ``#tg<place>`` when that is too long."""
    if len(option_id.encode()) <= CALLBACK_DATA_LIMIT:
        return option_id
    return f"{BY_PLACE}{place}"


def button_of(markup: Any, data: str) -> tuple[str, str | None]:
    """``(label, choice)`` of a tap with callback ``data`` on a message with ``markup``.

    The label is found in the keyboard Telegram sends back with the tapped message ("" when
    it is not there). A ``#tg<n>`` tap's choice is None: the label stands for the option.
    """
    label = ""
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows if isinstance(rows, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == data:
                text = button.get("text")
                label = clean_text(text) if isinstance(text, str) else ""
                break
        if label:
            break
    if data.startswith(BY_PLACE) and data[len(BY_PLACE) :].isdigit():
        return label, None
    return label, data


def _with_descriptions(body: str, options: tuple[Option, ...]) -> str:
    lines = [f"• {o.title}: {o.description}" for o in options if o.description]
    if not lines:
        return body
    listed = "\n".join(lines)
    room = TEXT_LIMIT - len(listed) - 2
    return f"{body[:room]}\n\n{listed}" if room > 0 else body
