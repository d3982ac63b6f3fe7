"""Dead letters: updates a worker set aside, and what an operator does with them.

An update whose handling raised ``STATEHQ_MAX_ATTEMPTS`` times (or that could not be
read back from the inbox) leaves its sender's inbox for the sender's dead letters
(:meth:`statehq.store.inbox.Inbox.bury`), kept with the error, the number of attempts
and when. Nothing is lost: an operator lists them, reads one, and replays it (back into
the inbox, in timestamp order, attempts reset) once the cause is fixed, or drops it.
Each replay and drop is audited in the sender's trail with the operator's reason.

One implementation of each action, used by ``statehq dead`` and the admin API alike.
"""

from __future__ import annotations

from ..errors import InvalidInput, StateError
from ..store import StateStore
from ..store.audit import AuditEvent
from ..store.dead_letters import DeadLetter, DeadLetters
from ..store.inbox import Inbox
from ..store.keys import check_message_id

MAX_LISTED = 10_000


class NoDeadLetter(StateError):
    """No dead letter has that message id (or it was replayed or dropped already)."""


class AmbiguousDeadLetter(InvalidInput):
    """Dead letters of several senders share the message id: name the sender."""


# -- the operator's actions (the CLI and the admin API call these) ---------------------------


def list_dead(store: StateStore, sender: str | None = None) -> list[DeadLetter]:
    """Every dead letter (of ``sender`` only, when given), oldest first."""
    dead = DeadLetters(Inbox(store.settings))
    senders = [sender] if sender is not None else store.execute(dead.senders())
    letters: list[DeadLetter] = []
    for name in senders:
        letters.extend(store.execute(dead.of(name)))
        if len(letters) >= MAX_LISTED:
            break
    return sorted(letters, key=lambda letter: (letter.at, letter.sender, letter.id))[:MAX_LISTED]


def find_dead(store: StateStore, message_id: str, sender: str | None = None) -> DeadLetter:
    """The dead letter with ``message_id``; :class:`NoDeadLetter` when there is none."""
    check_message_id(message_id)
    matches = [letter for letter in list_dead(store, sender) if letter.id == message_id]
    if not matches:
        where = f" from {sender}" if sender else ""
        raise NoDeadLetter(f"no dead letter {message_id!r:.100}{where}; see `statehq dead list`")
    if len(matches) > 1:
        senders = ", ".join(letter.sender for letter in matches)
        raise AmbiguousDeadLetter(
            f"dead letters of several senders have id {message_id!r:.100} ({senders}); "
            f"name one with --sender"
        )
    return matches[0]


def replay_dead(store: StateStore, letter: DeadLetter, *, reason: str) -> bool:
    """Requeue a dead letter for processing, audited; False when it was already gone."""
    dead = DeadLetters(Inbox(store.settings))
    if not store.execute(dead.replay(letter)):
        return False
    _audit(store, letter, "dead.replayed", reason)
    return True


def drop_dead(store: StateStore, letter: DeadLetter, *, reason: str) -> bool:
    """Forget a dead letter for good, audited; False when it was already gone."""
    dead = DeadLetters(Inbox(store.settings))
    if not store.execute(dead.drop(letter)):
        return False
    _audit(store, letter, "dead.dropped", reason)
    return True


def _audit(store: StateStore, letter: DeadLetter, event: str, reason: str) -> None:
    detail = {"message_id": letter.id, "attempts": letter.attempts, "error": letter.error[:300]}
    session_key = store.resolve(letter.sender)
    store.audit_append(session_key, AuditEvent(event, letter.sender, reason, detail))
