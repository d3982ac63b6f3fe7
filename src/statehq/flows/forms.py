"""A form as one step: a WhatsApp Flow where the channel shows one, else plain questions.

    DETAILS = Form(
        "details",
        "Tell us about the expense.",
        (
            Field("title", "What was it for?"),
            Field("amount", "How much was it? (e.g. 12.50)", parse_amount),
        ),
        then="receipt",
        whatsapp=WhatsAppFlow(flow_id="1234567890", cta="Fill in", screen="EXPENSE"),
    )

On WhatsApp the member gets one message with a button that opens the Flow; the answers
come back together (``nfm_reply``) and each field's ``parse`` validates its answer, as an
:class:`~statehq.flows.Input` does. On every other channel (and on WhatsApp when the
form has no ``whatsapp`` Flow) the same step asks one question per field, validating
each answer as it comes. Either way the parsed values are merged into the flow's data
under the fields' names, and the flow goes on to ``then``.

The form token. Each time the flow enters the step, a fresh random token (144 bits) is
stored in the session, in the flow's data under ``_form`` with the step's name; the Flow
is sent with it and WhatsApp returns it inside the answers. A reply is applied only when
its token is the one the member's session holds for the step the conversation is at, so
a form from an earlier visit of the step, from a step the member has left, from before
the session expired, or from someone else's session, or a token made up, is answered as
a stale menu tap is (see :mod:`statehq.flows.engine`) and changes nothing. A random
token kept in the versioned session, rather than a signature, needs no key to manage and
is dropped with the flow: nothing outlives the conversation it belongs to.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from .components import Answer, Goto, Invalid, Messages, Outcome, Retry, Step, Wait
from .messages import FormMessage, Text

if TYPE_CHECKING:
    from ..state.reading import SessionReader
    from .payloads import FormReply
    from .turn import Turn

FORM_KEY = "_form"
"""Where a form step keeps its token and progress in the flow's data (reserved)."""
NATIVE = "whatsapp"
"""The channel type that shows a :class:`WhatsAppFlow` as one native form."""

Parse = Callable[["Turn", str], Any]


def _as_text(turn: Turn, text: str) -> str:
    return text


@dataclass(frozen=True)
class Field:
    """One answer a form collects: stored under ``name``, asked as ``question`` where a
    channel asks questions one by one, validated by ``parse(turn, text)`` (return the
    value to store, or raise :class:`~statehq.flows.Invalid` saying what to fix)."""

    name: str
    question: str
    parse: Parse = _as_text

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_"):
            raise InvalidInput(f"a form field's name must be an identifier, got {self.name!r}")


@dataclass(frozen=True)
class WhatsAppFlow:
    """The published WhatsApp Flow that shows a :class:`Form` on WhatsApp.

    ``flow_id`` (WhatsApp Manager > Flows), ``cta`` the label of the button that opens
    it (20 characters, no emoji), ``screen`` the id of its first screen, ``data`` what
    pre-fills that screen (a mapping, or a function of the turn), ``draft`` to send a
    Flow that is not published yet (for testing). The Flow's completion payload must
    name each field as the form's :class:`Field` names.
    """

    flow_id: str
    cta: str
    screen: str
    data: Mapping[str, Any] | Callable[[Turn], Mapping[str, Any]] | None = None
    draft: bool = False

    def __post_init__(self) -> None:
        # WhatsApp's limits, checked when the bot is built rather than at the first send.
        FormMessage("check", self.flow_id, self.cta, self.screen, "check")


def form_is_current(session: SessionReader, reply: FormReply) -> bool:
    """True when ``reply`` answers the form the session's current step sent.

    Constant-time compare: the token is the only thing a forged reply has to guess.
    """
    flow = session.get_flow()
    if flow is None or reply.token is None:
        return False
    held = (flow.get("data") or {}).get(FORM_KEY)
    if not isinstance(held, dict) or held.get("step") != flow.get("step"):
        return False
    token = held.get("token")
    return isinstance(token, str) and hmac.compare_digest(token.encode(), reply.token.encode())


class Form(Step):
    """Collects several ``fields`` in one step; ``intro`` says what the form is for.

    ``then`` is the next step's name, or a function of the turn and the parsed values
    returning an outcome (as for :class:`~statehq.flows.Input`). ``whatsapp``: the Flow
    that shows the form on WhatsApp; without it, WhatsApp asks the questions too.
    """

    def __init__(
        self,
        name: str,
        intro: str,
        fields: Sequence[Field],
        then: str | Callable[[Turn, Mapping[str, Any]], Outcome],
        *,
        whatsapp: WhatsAppFlow | None = None,
    ) -> None:
        super().__init__(name)
        names = [field.name for field in fields]
        if not names or len(set(names)) != len(names):
            raise InvalidInput(f"form {name!r} needs fields with unique names, got {names}")
        self.intro = intro
        self.fields = tuple(fields)
        self.then = then
        self.whatsapp = whatsapp

    def enter(self, turn: Turn) -> Outcome:
        """A fresh token and the first question: whatever was sent before is now stale."""
        self._open(turn)
        return Wait(self.prompt(turn))

    def prompt(self, turn: Turn) -> Messages:
        held = self._held(turn) or self._open(turn)
        if self._native(turn):
            return (self._form_message(turn, str(held["token"])),)
        at = self._next(held)
        question = Text(self.fields[at].question)
        return (Text(self.intro), question) if at == 0 else (question,)

    def answer(self, turn: Turn, answer: Answer) -> Outcome:
        if answer.form is not None:  # the engine checked its token
            return self._filled(turn, answer.form)
        if self._native(turn):
            assert self.whatsapp is not None
            return Retry(f"Please fill in the form: tap “{self.whatsapp.cta}” below.")
        if answer.choice is not None or not answer.text.strip():
            return Retry("Please type your answer as a message.")
        held = self._held(turn) or self._open(turn)
        at = self._next(held)
        field = self.fields[at]
        try:
            value = field.parse(turn, answer.text.strip())
        except Invalid as invalid:
            return Retry(str(invalid))
        if at + 1 < len(self.fields):
            # The same step, one question on: attempts count afresh for the next field.
            turn.session.advance(self.name, {field.name: value, FORM_KEY: {"next": at + 1}})
            return Wait((Text(self.fields[at + 1].question),))
        values = {f.name: turn.data.get(f.name) for f in self.fields[:-1]}
        return self._done(turn, {**values, field.name: value})

    # -- internals -----------------------------------------------------------------------

    def _filled(self, turn: Turn, answers: Mapping[str, Any]) -> Outcome:
        values: dict[str, Any] = {}
        errors: list[str] = []
        for field in self.fields:
            text = _answer_text(answers.get(field.name))
            if text is None:
                errors.append(f"{field.question} (no answer came back)")
                continue
            try:
                values[field.name] = field.parse(turn, text)
            except Invalid as invalid:
                errors.append(str(invalid))
        if errors:
            return Retry("\n".join(errors))
        return self._done(turn, values)

    def _done(self, turn: Turn, values: Mapping[str, Any]) -> Outcome:
        if isinstance(self.then, str):
            return Goto(self.then, values)
        return self.then(turn, values)

    def _native(self, turn: Turn) -> bool:
        return self.whatsapp is not None and turn.inbound.channel.type == NATIVE

    def _held(self, turn: Turn) -> dict[str, Any] | None:
        held = turn.data.get(FORM_KEY)
        if isinstance(held, dict) and held.get("step") == self.name and held.get("token"):
            return held
        return None

    def _open(self, turn: Turn) -> dict[str, Any]:
        held = {"step": self.name, "token": secrets.token_urlsafe(18), "next": 0}
        turn.session.advance(self.name, {FORM_KEY: held})
        return held

    def _next(self, held: Mapping[str, Any]) -> int:
        at = held.get("next")
        return at if isinstance(at, int) and 0 <= at < len(self.fields) else 0

    def _form_message(self, turn: Turn, token: str) -> FormMessage:
        flow = self.whatsapp
        assert flow is not None
        data = flow.data(turn) if callable(flow.data) else flow.data
        pairs = tuple(sorted((data or {}).items()))
        return FormMessage(
            self.intro, flow.flow_id, flow.cta, flow.screen, token, pairs, draft=flow.draft
        )


def _answer_text(value: Any) -> str | None:
    """A Flow answer as the text a field's ``parse`` reads; None when there is none.

    Flow components answer with strings, booleans (opt-in), numbers or lists of strings
    (checkbox groups): each is read as the member would have typed it.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return None
