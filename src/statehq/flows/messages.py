"""Channel-neutral replies: text, reply buttons and option lists.

A flow answers with these; each channel adapter renders them (WhatsApp as interactive
messages, the terminal and web chat as numbered options). The limits are WhatsApp's,
the strictest channel, and they are checked when a message is built, so a flow that
would produce a message WhatsApp rejects fails in its tests, not in front of a member:

    text body      4096 characters
    buttons        1-3, title 20, id 200; body 1024
    list           1-10 rows in total (page rows included), title 24, description 72,
                   button label 20, id 200; body 4096

A longer list is paginated: :meth:`OptionList.page` shows one page with "previous" and
"more" rows (which count toward the 10) whose ids are ``page:<n>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..digits import is_digits
from ..errors import InvalidInput
from .templates import Template

TEXT_LIMIT = 4096
BUTTON_BODY_LIMIT = 1024
MAX_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
MAX_ROWS = 10
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
LIST_BUTTON_LIMIT = 20
ID_LIMIT = 200
PAGE_PREFIX = "page:"


class MessageLimitError(InvalidInput):
    """A reply breaks a channel limit (too many buttons, a title too long, ...)."""


def _check_length(what: str, value: str, limit: int) -> None:
    if not value or not value.strip():
        raise MessageLimitError(f"{what} is empty")
    if len(value) > limit:
        raise MessageLimitError(
            f"{what} is {len(value)} characters; the limit is {limit}: {value!r:.60}"
        )


@dataclass(frozen=True)
class Option:
    """One choice: ``id`` comes back when it is tapped, ``title`` is what the member sees."""

    id: str
    title: str
    description: str = ""

    def __post_init__(self) -> None:
        _check_length("an option id", self.id, ID_LIMIT)
        _check_length(f"option {self.id!r}'s title", self.title, ROW_TITLE_LIMIT)
        if len(self.description) > ROW_DESCRIPTION_LIMIT:
            raise MessageLimitError(
                f"option {self.id!r}'s description is {len(self.description)} characters; "
                f"the limit is {ROW_DESCRIPTION_LIMIT}"
            )


@dataclass(frozen=True)
class Text:
    """A plain text message; ``template`` goes instead where the channel's window has
    closed (WhatsApp, 24 hours after the member last wrote: see :mod:`.templates`)."""

    body: str
    template: Template | None = None

    def __post_init__(self) -> None:
        _check_length("a text message", self.body, TEXT_LIMIT)

    @property
    def options(self) -> tuple[Option, ...]:
        """A text message offers no choices."""
        return ()


@dataclass(frozen=True)
class Buttons:
    """A message with one to three reply buttons."""

    body: str
    options: tuple[Option, ...]
    template: Template | None = None  # sent instead once the window closed (see Text)

    def __post_init__(self) -> None:
        _check_length("a buttons message body", self.body, BUTTON_BODY_LIMIT)
        if not 1 <= len(self.options) <= MAX_BUTTONS:
            raise MessageLimitError(
                f"a buttons message has 1 to {MAX_BUTTONS} buttons, not {len(self.options)}; "
                f"use an OptionList for more"
            )
        for option in self.options:
            _check_length(f"button {option.id!r}'s title", option.title, BUTTON_TITLE_LIMIT)
        _check_unique(self.options)


@dataclass(frozen=True)
class OptionList:
    """A message with a list of up to ten rows behind a button (``button`` is its label)."""

    body: str
    options: tuple[Option, ...]
    button: str = "Choose"
    page_number: int = field(default=0, compare=False)
    template: Template | None = None  # sent instead once the window closed (see Text)

    def __post_init__(self) -> None:
        _check_length("a list message body", self.body, TEXT_LIMIT)
        _check_length("a list button label", self.button, LIST_BUTTON_LIMIT)
        if not 1 <= len(self.options) <= MAX_ROWS:
            raise MessageLimitError(
                f"a list has 1 to {MAX_ROWS} rows in total, not {len(self.options)}; "
                f"use OptionList.page() to paginate"
            )
        _check_unique(self.options)

    @classmethod
    def page(
        cls,
        body: str,
        options: Sequence[Option],
        page: int = 0,
        *,
        button: str = "Choose",
        footer: Sequence[Option] = (),
    ) -> OptionList:
        """Page ``page`` (from 0) of a long list; ``footer`` rows appear on every page.

        The page rows ("Previous", "More") and the footer count toward the ten rows.
        A page number past the end shows the last page.
        """
        room = MAX_ROWS - len(footer)
        if room < 1:
            raise MessageLimitError(f"{len(footer)} footer rows leave no room for the list")
        if len(options) <= room:
            return cls(body, (*options, *footer), button, 0)
        per_page = room - 2  # a middle page carries both "Previous" and "More"
        if per_page < 1:
            raise MessageLimitError("too many footer rows to paginate within ten rows")
        last = (len(options) - 1) // per_page
        page = max(0, min(page, last))
        start = page * per_page
        rows = list(options[start : start + per_page])
        if page > 0:
            rows.insert(0, Option(f"{PAGE_PREFIX}{page - 1}", "◀ Previous"))
        if page < last:
            rows.append(
                Option(f"{PAGE_PREFIX}{page + 1}", "More ▶", f"page {page + 2} of {last + 1}")
            )
        return cls(body, (*rows, *footer), button, page)


FORM_CTA_LIMIT = 20
FORM_TOKEN_LIMIT = 200


@dataclass(frozen=True)
class FormMessage:
    """A form the member fills in on their phone: a WhatsApp Flow (see
    :class:`~statehq.flows.forms.Form`, which sends it only where the channel shows one).

    ``cta`` opens the form (20 characters, no emoji, WhatsApp's limit); ``flow_id`` and
    ``screen`` name the published Flow and its first screen; ``token`` comes back with
    the answers and ties them to the step that sent it; ``data`` pre-fills the screen.
    """

    body: str
    flow_id: str
    cta: str
    screen: str
    token: str
    data: tuple[tuple[str, object], ...] = ()
    draft: bool = False

    def __post_init__(self) -> None:
        _check_length("a form message body", self.body, BUTTON_BODY_LIMIT)
        _check_length("a form's call to action", self.cta, FORM_CTA_LIMIT)
        _check_length("a form's flow id", self.flow_id, ID_LIMIT)
        _check_length("a form's screen", self.screen, ID_LIMIT)
        _check_length("a form token", self.token, FORM_TOKEN_LIMIT)
        if any(ord(c) > 0xFFFF or 0x2600 <= ord(c) <= 0x27BF for c in self.cta):
            raise MessageLimitError(f"a form's call to action cannot hold emoji: {self.cta!r}")

    @property
    def options(self) -> tuple[Option, ...]:
        """A form offers no buttons to tap: its answers come back as one reply."""
        return ()


Message = Text | Buttons | OptionList | FormMessage
"""Any reply a flow can send."""


def _check_unique(options: Sequence[Option]) -> None:
    ids = [option.id for option in options]
    if len(set(ids)) != len(ids):
        raise MessageLimitError(f"option ids must be unique within a message: {ids}")


def page_of(choice: str) -> int | None:
    """The page number a ``page:<n>`` choice asks for, else ``None``."""
    if choice.startswith(PAGE_PREFIX) and is_digits(choice[len(PAGE_PREFIX) :]):
        return int(choice[len(PAGE_PREFIX) :])
    return None


def with_ids(message: Message, rename: dict[str, str]) -> Message:
    """A copy of ``message`` whose option ids are replaced by ``rename[id]``."""
    if isinstance(message, Text | FormMessage):
        return message
    options = tuple(replace(o, id=rename.get(o.id, o.id)) for o in message.options)
    return replace(message, options=options)
