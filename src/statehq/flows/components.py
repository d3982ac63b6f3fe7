"""Flows and the four kinds of step they are made of.

A :class:`Flow` is an ordered list of steps declared in code; its progress (the step
and the data collected so far) lives in the session's ``flow_data``, so any worker can
continue any conversation. Each step is one component:

- :class:`Display`: read-only. Shows something; either moves on, or waits for the
  member to pick one of its options (a menu).
- :class:`Input`: asks a question and validates the typed answer. An invalid answer is
  counted and answered with what was wrong and how to fix it.
- :class:`Api`: calls the backend (with the member's JWT, see :meth:`Turn.call`) and
  decides where to go with the result. It never waits for the member.
- :class:`Confirm`: shows what is about to happen with a confirm and a cancel button;
  only the confirm runs the action.

A step tells the engine what happens next with an outcome: :class:`Wait` (show these
and wait), :class:`Goto` (move to a step, merging data), :class:`Retry` (the answer was
invalid), :class:`Finish` (done) or :class:`Abandon` (stopped, nothing done).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from .inbound import normalize
from .messages import Buttons, Message, Option, Text, page_of
from .payloads import Media

if TYPE_CHECKING:
    from ..state import Stages
    from .turn import Turn

Messages = tuple[Message, ...]


@dataclass(frozen=True)
class Answer:
    """The member's answer to a waiting step: typed ``text``, a tapped ``choice`` id,
    the ``form`` answers of a filled-in form (its token already checked), or ``media``."""

    text: str = ""
    choice: str | None = None
    form: Mapping[str, Any] | None = None
    media: Media | None = None


@dataclass(frozen=True)
class Wait:
    """Show ``say`` and wait for the member's answer at this step."""

    say: Messages = ()


@dataclass(frozen=True)
class Goto:
    """Move to ``step`` (validated and audited), merging ``data`` into the flow's data."""

    step: str
    data: Mapping[str, Any] = field(default_factory=dict)
    say: Messages = ()


@dataclass(frozen=True)
class Retry:
    """The answer was invalid: ``error`` says what was wrong and how to fix it."""

    error: str


@dataclass(frozen=True)
class Finish:
    """The flow is done: say ``say``, then (when ``home``) show the bot's home menu."""

    say: Messages = ()
    home: bool = True


@dataclass(frozen=True)
class Abandon:
    """The flow stops without doing anything more: say ``say``, then the home menu."""

    say: Messages = ()
    home: bool = True
    reason: str = "abandoned"


Outcome = Wait | Goto | Retry | Finish | Abandon
Render = Callable[["Turn"], Message | Sequence[Message]]


class Invalid(Exception):
    """Raised by an :class:`Input` parser: the message tells the member what to fix."""


class Step:
    """One step of a flow. Subclasses decide what entering it and answering it do."""

    def __init__(self, name: str) -> None:
        if not re.match(r"^[a-z][a-z0-9_]{0,39}$", name):
            raise InvalidInput(f"step names are 1-40 lower-case letters, digits or _; got {name!r}")
        self.name = name

    waits = True
    """False for steps that never wait for the member (they run and move on)."""

    takes_media = False
    """True for steps that take a file as an answer; the engine refuses media politely
    at every other step (see :class:`~statehq.flows.media.MediaInput`)."""

    def enter(self, turn: Turn) -> Outcome:
        """The flow arrived here: by default show the prompt and wait."""
        return Wait(self.prompt(turn))

    def prompt(self, turn: Turn) -> Messages:
        """What the member sees while this step waits for them."""
        raise NotImplementedError(f"step {self.name!r} never waits, so it has no prompt")

    def answer(self, turn: Turn, answer: Answer) -> Outcome:
        """The member answered while the flow waited here."""
        raise NotImplementedError(f"step {self.name!r} never waits, so it takes no answer")


def _messages(rendered: Message | Sequence[Message]) -> Messages:
    if isinstance(rendered, Sequence):
        return tuple(rendered)
    return (rendered,)


RESERVED = frozenset({"menu", "home", "cancel"})
"""Option ids the engine handles itself: leave for home, or abandon the flow."""


def match_option(message: Message | None, answer: Answer, *, by_number: bool = False) -> str | None:
    """The option an answer picks: a tapped id, or typed text that is its title.

    A typed number picks by position only when ``by_number`` (menus whose options never
    change): a list redrawn from live data may have moved since the member read it.
    """
    if message is None or not message.options:
        return None
    ids = [option.id for option in message.options]
    if answer.choice is not None:
        return answer.choice if answer.choice in ids else None
    typed = normalize(answer.text)
    if by_number and typed.isascii() and typed.isdigit() and 1 <= int(typed) <= len(ids):
        return ids[int(typed) - 1]
    titles = {normalize(option.title): option.id for option in message.options}
    return titles.get(typed)


class Display(Step):
    """Read-only: shows what ``render`` draws.

    Without ``on_choice`` it moves straight on to ``then`` (or finishes the flow when
    ``then`` is None). With ``on_choice`` it is a menu: it waits for the member to pick
    one of the options of its last message; ``page:<n>`` picks turn the page by
    themselves (the page is in ``turn.page(step)``).
    """

    def __init__(
        self,
        name: str,
        render: Render,
        *,
        on_choice: Callable[[Turn, str], Outcome] | None = None,
        then: str | None = None,
    ) -> None:
        super().__init__(name)
        self.render = render
        self.on_choice = on_choice
        self.then = then
        self.waits = on_choice is not None

    def enter(self, turn: Turn) -> Outcome:
        if self.on_choice is not None:
            return Wait(self.prompt(turn))
        shown = self.prompt(turn)
        return Goto(self.then, say=shown) if self.then else Finish(say=shown, home=False)

    def prompt(self, turn: Turn) -> Messages:
        return _messages(self.render(turn))

    def answer(self, turn: Turn, answer: Answer) -> Outcome:
        if self.on_choice is None:
            return super().answer(turn, answer)
        shown = self.prompt(turn)
        chosen = match_option(shown[-1] if shown else None, answer)
        if chosen is None:
            return Retry("Please choose one of the options below (tap one, or send its name).")
        if chosen in RESERVED:  # typed, not tapped: the engine only sees tapped ids
            return Abandon(reason=f"the member chose {chosen}")
        page = page_of(chosen)
        if page is not None:
            return Goto(self.name, {"page": {self.name: page}})
        return self.on_choice(turn, chosen)


class Input(Step):
    """Asks ``question`` and validates the typed answer with ``parse``.

    ``parse(turn, text)`` returns the data to store (merged into the flow's data) or
    raises :class:`Invalid` with what was wrong and how to fix it; ``then`` is the next
    step's name, or a function of the turn and the parsed data returning an outcome.
    """

    def __init__(
        self,
        name: str,
        question: str | Callable[[Turn], Message],
        parse: Callable[[Turn, str], Mapping[str, Any]],
        then: str | Callable[[Turn, Mapping[str, Any]], Outcome],
    ) -> None:
        super().__init__(name)
        self.question = question
        self.parse = parse
        self.then = then

    def prompt(self, turn: Turn) -> Messages:
        if isinstance(self.question, str):
            return (Text(self.question),)
        return (self.question(turn),)

    def answer(self, turn: Turn, answer: Answer) -> Outcome:
        if answer.choice is not None or not answer.text.strip():
            return Retry("Please type your answer as a message.")
        try:
            data = self.parse(turn, answer.text.strip())
        except Invalid as invalid:
            return Retry(str(invalid))
        if isinstance(self.then, str):
            return Goto(self.then, data)
        return self.then(turn, data)


class Api(Step):
    """Calls the backend on arrival and decides where to go; never waits for the member."""

    waits = False

    def __init__(self, name: str, call: Callable[[Turn], Outcome]) -> None:
        super().__init__(name)
        self.call = call

    def enter(self, turn: Turn) -> Outcome:
        outcome = self.call(turn)
        if isinstance(outcome, Wait | Retry):
            raise InvalidInput(
                f"Api step {self.name!r} must move on (Goto, Finish or Abandon), not wait"
            )
        return outcome


class Confirm(Step):
    """Shows ``summary`` with a confirm and a cancel button; only confirm runs ``on_confirm``."""

    def __init__(
        self,
        name: str,
        summary: Callable[[Turn], str],
        on_confirm: Callable[[Turn], Outcome],
        *,
        confirm: str = "Confirm",
        cancel: str = "Cancel",
        cancelled: str = "Cancelled. Nothing was sent.",
    ) -> None:
        super().__init__(name)
        self.summary = summary
        self.on_confirm = on_confirm
        self.labels = (Option("yes", confirm), Option("no", cancel))
        self.cancelled = cancelled

    def prompt(self, turn: Turn) -> Messages:
        return (Buttons(self.summary(turn), self.labels),)

    def answer(self, turn: Turn, answer: Answer) -> Outcome:
        chosen = match_option(Buttons("?", self.labels), answer, by_number=True)
        if chosen is None and answer.choice is None:
            chosen = {"yes": "yes", "y": "yes", "no": "no", "n": "no"}.get(normalize(answer.text))
        if chosen == "yes":
            return self.on_confirm(turn)
        if chosen == "no":
            return Abandon((Text(self.cancelled),), reason="declined at confirmation")
        titles = " or ".join(f"“{o.title}”" for o in self.labels)
        return Retry(f"Please tap {titles}.")


@dataclass(frozen=True)
class Flow:
    """A flow: ``id`` (also its stage name), a title members see, and its ordered steps.

    ``before_auth`` flows can start before login (registration); ``attempts`` is how many
    invalid answers a step takes before the flow ends.
    """

    id: str
    title: str
    steps: tuple[Step, ...]
    before_auth: bool = False
    attempts: int = 3

    def __post_init__(self) -> None:
        if not self.steps:
            raise InvalidInput(f"flow {self.id!r} has no steps")
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise InvalidInput(f"flow {self.id!r} has duplicate step names: {names}")
        if self.attempts < 1:
            raise InvalidInput(f"flow {self.id!r}: attempts must be at least 1")

    @property
    def first(self) -> Step:
        """The step a flow starts at."""
        return self.steps[0]

    def step(self, name: str) -> Step | None:
        """The step called ``name``, or None (a flow changed under a live conversation)."""
        return next((step for step in self.steps if step.name == name), None)


def declare_flows(stages: Stages, flows: Iterable[Flow]) -> Stages:
    """Declare each flow's stage in ``stages`` (those already declared are left alone)."""
    for flow in flows:
        if flow.id not in stages:
            stages.add_flow(flow.id, before_auth=flow.before_auth)
    return stages
