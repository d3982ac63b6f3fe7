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

from collections.abc import Iterator

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


def iter_dead(store: StateStore, sender: str | None = None) -> Iterator[DeadLetter]:
    """Every dead letter (of ``sender`` only, when given), sender by sender: all of them."""
    dead = DeadLetters(Inbox(store.settings))
    senders = [sender] if sender is not None else store.execute(dead.senders())
    for name in senders:
        yield from store.execute(dead.of(name))


def count_and_list(
    store: StateStore, sender: str | None = None, limit: int = MAX_LISTED
) -> tuple[int, list[DeadLetter]]:
    """How many dead letters there are, and the oldest ``limit`` of them, oldest first."""
    letters = sorted(iter_dead(store, sender), key=lambda x: (x.at, x.sender, x.id))
    return len(letters), letters[:limit]


def list_dead(store: StateStore, sender: str | None = None) -> list[DeadLetter]:
    """The oldest :data:`MAX_LISTED` dead letters (of ``sender`` only, when given)."""
    return count_and_list(store, sender)[1]


def find_dead(store: StateStore, message_id: str, sender: str | None = None) -> DeadLetter:
    """The dead letter with ``message_id``, however many there are; NoDeadLetter if none."""
    check_message_id(message_id)
    dead = DeadLetters(Inbox(store.settings))
    senders = [sender] if sender is not None else store.execute(dead.senders())
    found = (store.execute(dead.find(name, message_id)) for name in senders)
    matches: list[DeadLetter] = [letter for letter in found if letter is not None]
    if not matches:
        where = f" from {sender}" if sender else ""
        raise NoDeadLetter(f"no dead letter {message_id!r:.100}{where}; see `statehq dead list`")
    if len(matches) > 1:
        named = ", ".join(letter.sender for letter in matches)
        raise AmbiguousDeadLetter(
            f"dead letters of several senders have id {message_id!r:.100} ({named}); "
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
