"""Operations on the store as a whole: its scripts, and what its sessions look like.

For health checks, metrics and operators; none of them touches a session's state.
"""

from __future__ import annotations

from . import survey
from .connection import ScriptBook
from .keys import KeySpace
from .requests import Command, Operation


def load_scripts() -> Operation:
    """Make sure every script is in the server's cache; {"loaded": n, "reloaded": m}.

    A server that restarted forgot them (they are loaded again on first use anyway);
    loading them writes no key.
    """
    book = ScriptBook()
    names = list(book.shas)
    present = yield Command(("SCRIPT", "EXISTS", *(book.shas[n] for n in names)))
    missing = [n for n, there in zip(names, present, strict=True) if not there]
    for name in missing:
        yield Command(("SCRIPT", "LOAD", book.sources[name]))
    return {"loaded": len(names), "reloaded": len(missing)}


def stage_counts(keys: KeySpace, sample: int) -> Operation:
    """Live sessions by stage, over at most ``sample`` sessions (SCAN, never KEYS).

    One pipelined read per SCAN page: see :func:`statehq.store.survey.stage_counts`.
    """
    counts: dict[str, int] = yield from survey.stage_counts(keys, sample)
    return counts
