"""Headquarters: routes each message to where the conversation is.

    greeting, "menu"  → leave any flow; the bot's home (login, then its menu)
    "cancel"          → abandon the flow; home
    a stale tap       → "that menu has expired" and the current prompt, nothing applied
    a stale form      → the same (its token is not the current step's: see flows.forms)
    a file            → audited; the waiting step takes it, or a polite refusal
    an active flow    → the waiting step takes the answer
    a home-menu pick  → start that flow (or the bot answers it)
    anything else     → home

Every step change goes through the state manager (validated, versioned, audited); the
engine keeps nothing between messages, so any worker can take a member's next message.
Options are sent stamped with the session version they were drawn at: a tap carrying
an older version is stale (see :mod:`statehq.flows.inbound`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .. import metrics
from ..errors import VersionConflict
from ..redact import get_logger, mask_identity, redact_text
from ..state import StateManager
from ..state.manager import Prefetched
from ..store import Lease
from ..store.audit import AuditEvent
from ..store.inbox import Inbox
from ..store.operations import Outbox
from .components import (
    Answer,
    Finish,
    Flow,
    Goto,
    Outcome,
    Retry,
    Step,
    Wait,
    declare_flows,
    match_option,
)
from .forms import form_is_current
from .inbound import Inbound, is_cancel, is_greeting, session_tag, stamp, unstamp
from .media import refused
from .messages import Message, Text, with_ids
from .turn import Turn

log = get_logger(__name__)

EXPIRED = "Your session timed out after a few quiet minutes, so we are starting afresh."
STALE = "That menu has expired; here is the current one."
MAX_HOPS = 20  # steps one message may pass through; more means a flow loops


class Bot(Protocol):
    """What a bot gives the engine: its flows, its home menu and its login."""

    flows: Sequence[Flow]
    token_rejected: tuple[type[Exception], ...]

    def home(self, turn: Turn) -> list[Message]:
        """The home screen: log in if needed, then the menu (its last message's options)."""
        ...

    def choose(self, turn: Turn, option: str) -> str | list[Message] | None:
        """A home-menu pick: a flow id to start, messages to answer with, or None."""
        ...

    def relogin(self, turn: Turn) -> str:
        """Log the member in again and store the new token; returns it."""
        ...

    def explain(self, error: Exception) -> str | None:
        """A message the member can act on for a bot-specific error, else None."""
        ...


@dataclass(frozen=True)
class Processed:
    """What :meth:`Headquarters.process` did with one message.

    ``replies`` are stamped and were queued with the commit; ``duplicate`` means the
    message had been applied before: nothing was written and nothing queued.
    """

    replies: list[Message]
    session_key: str
    version: int
    duplicate: bool


class Headquarters:
    """The flow engine: ``handle(inbound)`` returns the replies for one message.

    ``polite_window``: seconds in which a member's files no step takes are answered once
    (the service's window for unsupported messages, so a burst of photos gets one reply).
    """

    polite_window = 60.0

    def __init__(self, manager: StateManager, bot: Bot) -> None:
        self.manager = manager
        self.bot = bot
        self.flows = {flow.id: flow for flow in bot.flows}
        declare_flows(manager.stages, bot.flows)

    def handle(self, inbound: Inbound) -> list[Message]:
        """Process one inbound message; the replies come back with stamped option ids.

        Each step's write is stored as it is made. The service uses :meth:`process`,
        which commits a message's writes as one, exactly once.
        """
        session = self.manager.open(inbound.channel)
        turn = Turn(self, session, inbound)
        replies = _stamped(self._replies(turn), turn.session.version, turn.session.key)
        self._record_media(turn.session.key, inbound)
        return replies

    def process(
        self,
        inbound: Inbound,
        *,
        lease: Lease | None = None,
        outbox: Callable[[list[Message]], Outbox | None] | None = None,
        prefetched: Mapping[str, Prefetched] | None = None,
    ) -> Processed:
        """Process one message as one commit: its state change, dedup mark and replies.

        The session's writes are held until the end of the turn (see
        :meth:`MemberSession.begin_turn`), then written by one script together with the
        mark for ``inbound.message_id`` and the replies ``outbox`` renders for sending.
        When the session changed meanwhile (another channel of the member), the turn
        runs again on the new state; its backend calls repeat with the same idempotency
        keys. A message already applied comes back ``duplicate``, with nothing written.

        ``prefetched``: session reads made ahead (see :meth:`StateManager.open`); the
        first attempt uses them, a run again after a conflict reads afresh.
        """
        give_up = time.monotonic() + self.manager.store.settings.mutate_deadline
        while True:
            # No touch: the commit below slides the session's TTL, even when quiet.
            session = self.manager.open(
                inbound.channel, lease=lease, touch=False, prefetched=prefetched
            )
            prefetched = None
            session.begin_turn()
            turn = Turn(self, session, inbound)
            replies = _stamped(self._replies(turn), session.turn_version, session.key)
            try:
                snap = session.commit_turn(
                    inbound.message_id, outbox(replies) if outbox is not None else None
                )
            except VersionConflict:
                metrics.TURN_RETRIES.inc()
                if time.monotonic() > give_up:
                    raise
                continue
            if not snap.duplicate:
                self._record_media(session.key, inbound)
            return Processed(replies, session.key, snap.version, snap.duplicate)

    def _replies(self, turn: Turn) -> list[Message]:
        session = turn.session
        replies: list[Message] = []
        if session.recovered is not None and session.recovered.outcome != "healthy":
            replies.append(Text(session.recovered.message))
        try:
            replies.extend(self._route(turn))
        except Exception as error:  # a member never sees a bare exception
            replies.append(self._failure(turn, error))
        return replies

    # -- routing ------------------------------------------------------------------------

    def _route(self, turn: Turn) -> list[Message]:
        session, inbound = turn.session, turn.inbound
        if session.expired:
            return [Text(EXPIRED), *self.bot.home(turn)]
        choice = None
        if inbound.choice is not None:
            drawn_at, choice = unstamp(inbound.choice)
            if drawn_at is not None and drawn_at != (session.version, session_tag(session.key)):
                metrics.STALE_TAPS.inc()
                return [Text(STALE), *self._current(turn)]
        if inbound.form is not None and not form_is_current(session, inbound.form):
            metrics.STALE_TAPS.inc()  # a form from a step the member has left: never applied
            return [Text(STALE), *self._current(turn)]
        if inbound.media is not None and not self._takes_media(turn):
            return self._refuse_media(turn)
        form = inbound.form.values if inbound.form is not None else None
        answer = Answer(inbound.text, choice, form, inbound.media)
        if choice in ("menu", "home") or (choice is None and is_greeting(inbound.text)):
            return self._leave(turn, "the member went home")
        if choice == "cancel" or (choice is None and is_cancel(inbound.text)):
            return self._leave(turn, "the member cancelled", cancelled=True)
        flow = session.get_flow()
        if flow is not None:
            return self._continue(turn, flow["id"], flow["step"], answer)
        return self._menu(turn, answer)

    def _takes_media(self, turn: Turn) -> bool:
        flow = turn.session.get_flow()
        step = self._step(flow["id"], flow["step"]) if flow else None
        return step is not None and step.waits and step.takes_media

    def _refuse_media(self, turn: Turn) -> list[Message]:
        """A file where no step takes one: one polite answer per burst, nothing changed."""
        assert turn.inbound.media is not None
        store = self.manager.store
        burst = Inbox(store.settings).first_reply(turn.inbound.channel.key, self.polite_window)
        # A turn run again after a conflict finds the mark set and stays quiet: at worst
        # one polite answer is lost, never one sent twice.
        if not store.execute(burst):
            return []
        return [Text(refused(turn.inbound.media))]

    def _record_media(self, session_key: str, inbound: Inbound) -> None:
        """Audit a file the member sent (its id and type, never its caption), once applied."""
        if inbound.media is None:
            return
        detail = {**inbound.media.audit_detail(), "message_id": inbound.message_id}
        event = AuditEvent("message.media", inbound.channel.key, inbound.media.kind, detail)
        self.manager.store.audit_append(session_key, event)

    def _leave(self, turn: Turn, reason: str, *, cancelled: bool = False) -> list[Message]:
        active = turn.session.get_flow()
        flow = self.flows.get(active["id"]) if active else None
        if active is not None:
            turn.session.cancel_flow(reason=reason)
        said: list[Message] = []
        if flow is not None and cancelled:
            said.append(Text(f"Cancelled “{flow.title}”. Nothing was sent."))
        return [*said, *self.bot.home(turn)]

    def _current(self, turn: Turn) -> list[Message]:
        flow = turn.session.get_flow()
        step = self._step(flow["id"], flow["step"]) if flow else None
        if flow is None or step is None:
            return self.bot.home(turn)
        if not step.waits:  # stopped mid-way by a failure: carry on from there
            return self._run(turn, self.flows[flow["id"]], step, step.enter(turn))
        return list(step.prompt(turn))

    def _continue(self, turn: Turn, flow_id: str, step_name: str, answer: Answer) -> list[Message]:
        step = self._step(flow_id, step_name)
        if step is None:  # the flow changed under a live conversation: start over cleanly
            turn.session.cancel_flow(reason=f"flow {flow_id}/{step_name} no longer exists")
            return self.bot.home(turn)
        if not step.waits:  # stopped mid-way by a failure: carry on from there
            return self._run(turn, self.flows[flow_id], step, step.enter(turn))
        return self._run(turn, self.flows[flow_id], step, step.answer(turn, answer))

    def _menu(self, turn: Turn, answer: Answer) -> list[Message]:
        home: list[Message] = []
        picked = answer.choice
        if picked is None:
            home = self.bot.home(turn)
            picked = match_option(home[-1] if home else None, answer)
            if picked is None:
                return home
        result = self.bot.choose(turn, picked)
        if isinstance(result, str):
            return self.start(turn, result)
        if result is None:
            return [Text("That option is not available now."), *(home or self.bot.home(turn))]
        return result

    # -- running a flow -----------------------------------------------------------------

    def start(self, turn: Turn, flow_id: str) -> list[Message]:
        """Start flow ``flow_id`` at its first step (the stage change is validated)."""
        flow = self.flows[flow_id]
        turn.session.start_flow(flow.id, step=flow.first.name)
        return self._run(turn, flow, flow.first, flow.first.enter(turn))

    def _run(self, turn: Turn, flow: Flow, step: Step, outcome: Outcome) -> list[Message]:
        """Follow outcomes until the flow waits or ends.

        When a later step fails (the backend is down), the flow goes back to the step the
        member answered, so their next message finds a step that waits for it.
        """
        try:
            return self._follow(turn, flow, step, outcome)
        except Exception:
            if step.waits:
                self._back_to(turn, flow, step)
            raise

    def _back_to(self, turn: Turn, flow: Flow, step: Step) -> None:
        current = turn.session.get_flow()
        if current is None or current["id"] != flow.id or current["step"] == step.name:
            return
        try:
            turn.session.advance(step.name)
        except Exception as error:  # the store itself failing: the original error matters more
            who = mask_identity(turn.session.key)
            log.warning("could not return %s to step %s: %s", who, step.name, error)

    def _follow(self, turn: Turn, flow: Flow, step: Step, outcome: Outcome) -> list[Message]:
        session, replies = turn.session, list[Message]()
        for _ in range(MAX_HOPS):
            if isinstance(outcome, Wait):
                return [*replies, *outcome.say]
            if isinstance(outcome, Goto):
                replies.extend(outcome.say)
                session.advance(outcome.step, outcome.data)
                found = flow.step(outcome.step)
                if found is None:
                    raise LookupError(f"flow {flow.id!r} has no step {outcome.step!r}")
                step, outcome = found, found.enter(turn)
                continue
            if isinstance(outcome, Retry):
                return [*replies, *self._retry(turn, flow, step, outcome)]
            if isinstance(outcome, Finish):
                session.end_flow(reason="completed")
            else:
                session.cancel_flow(reason=outcome.reason)
            return [*replies, *outcome.say, *(self.bot.home(turn) if outcome.home else [])]
        raise RecursionError(f"flow {flow.id!r} passed {MAX_HOPS} steps on one message")

    def _retry(self, turn: Turn, flow: Flow, step: Step, retry: Retry) -> list[Message]:
        attempts = turn.session.record_validation(False, retry.error)
        if attempts < flow.attempts:
            return [Text(retry.error), *step.prompt(turn)]
        turn.session.cancel_flow(reason=f"{attempts} invalid answers at step {step.name}")
        stopped = Text(
            f"{retry.error}\n\nThat is {attempts} tries, so I stopped “{flow.title}”. "
            f"Nothing was sent. You can start again from the menu."
        )
        return [stopped, *self.bot.home(turn)]

    def _step(self, flow_id: str, name: str) -> Step | None:
        flow = self.flows.get(flow_id)
        return flow.step(name) if flow else None

    # -- failures -----------------------------------------------------------------------

    def _failure(self, turn: Turn, error: Exception) -> Message:
        kind = type(error).__name__
        metrics.FLOW_FAILURES.labels(kind).inc()
        detail = {"kind": kind, "error": redact_text(str(error))[:500]}
        flow = turn.session.get_flow()
        if flow is not None:
            detail.update(flow=flow["id"], step=flow["step"])
        log.warning(
            "message %s for %s failed: %s",
            turn.inbound.message_id,
            mask_identity(turn.session.key),
            detail,
        )
        channel = turn.inbound.channel.key
        turn.session.manager.store.audit_append(
            turn.session.key, AuditEvent("flow.failed", channel, "", detail)
        )
        explained = self.bot.explain(error)
        return Text(
            explained
            or "Something went wrong on our side. Please try again in a moment, or send "
            "“menu” to start over."
        )


def _stamped(replies: Iterable[Message], version: int, key: str) -> list[Message]:
    """Replies whose option ids carry the session and version their menus were drawn at."""
    out: list[Message] = []
    for message in replies:
        rename = {option.id: stamp(version, key, option.id) for option in message.options}
        out.append(with_ids(message, rename) if rename else message)
    return out
