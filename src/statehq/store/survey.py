"""A survey of the store: find sessions (``scan``) and count everything (``stats``).

For operators (``statehq scan``, ``statehq stats``) and the sessions-by-stage gauge of
``/metrics``. Everything here reads; nothing writes.

SCAN, never KEYS: a page at a time, every master of a Cluster in turn (see
:class:`~statehq.store.requests.Scan`), so the server is never blocked. The keys of one
page are then read together in one :class:`~statehq.store.requests.Batch`, a pipeline:
one round trip per page, not one per session, which is what keeps a survey of 50,000
sessions to seconds. The reads of one page are not one snapshot - a session written
between two of them shows its newer version - which is fine for a survey and never
touches the scripts' atomicity.

A session is summarised from four fields of its document hash (see
:mod:`statehq.store.codec`): ``stage``, ``flow_data.id``, ``flow_data.step`` and
``_version``, plus the hash's TTL. Nothing else of the document is read, so no secret
is ever in a summary.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidInput
from .codec import encode_key
from .keys import KeySpace
from .requests import Batch, Command, Operation, Refused, Scan

PAGE = 1000
"""Keys asked of each SCAN step (a hint to the server, which may return more or fewer)."""

DEFAULT_STAGE = "INIT"
"""The stage of a document with none stored: the state model's default. (The store sits
below :mod:`statehq.state`, so it names the value rather than importing it.)"""

UNREADABLE = "(unreadable)"
"""The stage or flow shown for a value that is not what the state model stores there."""

TTL_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<1m", 60.0),
    ("<10m", 600.0),
    ("<1h", 3600.0),
    ("<1d", 86400.0),
    ("longer", math.inf),
)
"""Remaining-TTL buckets of :attr:`StoreSurvey.ttl`, each below its bound; then ``none``."""

NO_EXPIRY = "none"
"""The TTL bucket of a session with no expiry set (none of statehq's own writes do that)."""

_SUMMARY_PATHS = tuple(
    ".".join(encode_key(part) for part in path)
    for path in (
        ("stage",),
        ("flow_data", "id"),
        ("flow_data", "step"),
        ("_version",),
        ("current_account", "handle"),
    )
)
_CURSOR = re.compile(r"^([0-9]+(?::[0-9]+)?)(?:~([A-Za-z0-9_-]+))?$")

Progress = Callable[[int, int], None]
"""Told (keys examined, sessions counted) after each page of a long survey."""


@dataclass(frozen=True)
class SessionSummary:
    """One live session as a survey sees it: where it is in the conversation, and for how long.

    ``key`` is the session key (``whatsapp:263...``, ``member:<id>``); ``flow`` and
    ``step`` are None outside a flow; ``version`` is None and ``stage`` is
    :data:`UNREADABLE` when the stored values are not what statehq writes; ``ttl`` is
    the remaining seconds, None when the session has no expiry.
    """

    key: str
    stage: str
    flow: str | None
    step: str | None
    version: int | None
    ttl: float | None
    handle: str | None = None
    """The handle of the member's current account, when the document has one."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        return asdict(self)


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions a scan returns: every condition given must hold."""

    stage: str | None = None
    flow: str | None = None
    expiring_within: float | None = None
    """Only sessions whose TTL is at most this many seconds (never one without expiry)."""
    handle: str | None = None
    """Only sessions whose current account has this handle (without ``@``)."""

    def __post_init__(self) -> None:
        within = self.expiring_within
        if within is not None and (
            not isinstance(within, int | float) or not math.isfinite(within) or within < 0
        ):
            raise InvalidInput(f"expiring_within must be a number of seconds >= 0, got {within!r}")

    def matches(self, session: SessionSummary) -> bool:
        """True when ``session`` meets every condition."""
        if self.stage is not None and session.stage != self.stage:
            return False
        if self.flow is not None and session.flow != self.flow:
            return False
        if self.handle is not None and session.handle != self.handle:
            return False
        if self.expiring_within is None:
            return True
        return session.ttl is not None and session.ttl <= self.expiring_within


@dataclass(frozen=True)
class ScanPage:
    """What one scan call found, and where the next call continues.

    ``cursor`` is ``"0"`` when the whole store has been scanned; otherwise pass it back
    to continue. ``examined`` counts the sessions read to find these.
    """

    sessions: list[SessionSummary]
    cursor: str
    examined: int

    @property
    def complete(self) -> bool:
        """True when nothing is left to scan."""
        return self.cursor == "0"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        return {
            "sessions": [session.as_dict() for session in self.sessions],
            "cursor": self.cursor,
            "examined": self.examined,
            "complete": self.complete,
        }


@dataclass
class StoreSurvey:
    """The whole store counted: sessions, their TTLs, leases, queues, dead letters, audit.

    Every count is exact for the keys the SCAN saw (keys written while it ran may or may
    not be counted): ``ttl`` maps each bucket of :data:`TTL_BUCKETS` (and ``none``) to a
    number of sessions; ``by_flow`` counts sessions inside each flow. ``senders_waiting``
    have updates in their inbox, ``updates_queued`` in all; ``audit_entries`` sums every
    per-session audit stream (``audit_streams`` of them, outliving their sessions) and
    ``audit_tail_entries`` the operators' global tail; ``routes`` are channel
    identities bound to a member.
    """

    sessions: int = 0
    by_stage: dict[str, int] = field(default_factory=dict)
    by_flow: dict[str, int] = field(default_factory=dict)
    ttl: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys([*(name for name, _ in TTL_BUCKETS), NO_EXPIRY], 0)
    )
    leases: int = 0
    senders_waiting: int = 0
    updates_queued: int = 0
    dead_letters: int = 0
    dead_letter_senders: int = 0
    audit_streams: int = 0
    audit_entries: int = 0
    audit_tail_entries: int = 0
    routes: int = 0
    keys_examined: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        return asdict(self)

    def add_session(self, session: SessionSummary) -> None:
        """Count one session."""
        self.sessions += 1
        self.by_stage[session.stage] = self.by_stage.get(session.stage, 0) + 1
        if session.flow is not None:
            self.by_flow[session.flow] = self.by_flow.get(session.flow, 0) + 1
        bucket = ttl_bucket(session.ttl)
        self.ttl[bucket] += 1


def ttl_bucket(ttl: float | None) -> str:
    """The :data:`TTL_BUCKETS` name for a remaining TTL (``none`` without expiry)."""
    if ttl is None:
        return NO_EXPIRY
    return next(name for name, bound in TTL_BUCKETS if ttl < bound)


# -- cursors ---------------------------------------------------------------------------


def make_cursor(scan_cursor: str, after: str | None = None) -> str:
    """A scan cursor: the SCAN position, and the last session returned from its page.

    A limit can be reached in the middle of a page; the next call reads that page again
    and skips the sessions up to ``after`` (a page is handled in key order). Unlike a
    count of sessions to skip, this never skips a session when the page changed between
    the calls.
    """
    if after is None:
        return scan_cursor
    encoded = base64.urlsafe_b64encode(after.encode("utf-8", "surrogatepass")).decode()
    return f"{scan_cursor}~{encoded.rstrip('=')}"


def parse_cursor(cursor: str) -> tuple[str, str | None]:
    """The SCAN position and the resume-after session of a cursor; InvalidInput if malformed."""
    matched = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    if matched is None:
        raise InvalidInput(
            f"not a scan cursor: {str(cursor)[:80]!r} (pass back the cursor a scan printed; "
            f"0 starts over)"
        )
    scan_cursor, encoded = matched.groups()
    if encoded is None:
        return scan_cursor, None
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        after = base64.urlsafe_b64decode(padded).decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        raise InvalidInput(
            f"not a scan cursor: {cursor[:80]!r} (its session part is garbled)"
        ) from None
    return scan_cursor, after


# -- operations ------------------------------------------------------------------------


def scan_sessions(
    keys: KeySpace,
    where: SessionFilter,
    *,
    limit: int = 100,
    cursor: str = "0",
    page: int = PAGE,
) -> Operation:
    """Up to ``limit`` sessions matching ``where``, from ``cursor`` on: a :class:`ScanPage`.

    Scans until ``limit`` sessions matched or the store is exhausted.
    """
    if type(limit) is not int or limit < 1:
        raise InvalidInput(f"limit must be a whole number >= 1, got {limit!r}")
    at, after = parse_cursor(cursor)
    found: list[SessionSummary] = []
    examined = 0
    while True:
        next_at, raw_keys = yield Scan(at, keys.doc_pattern(), page)
        members = sorted(m for m in _doc_members(keys, raw_keys) if after is None or m > after)
        after = None
        summaries = yield from read_summaries(keys, members)
        for summary in summaries:
            examined += 1
            if where.matches(summary):
                found.append(summary)
            if len(found) == limit:
                more_here = summary.key != members[-1]
                resume = make_cursor(at, summary.key) if more_here else next_at
                return ScanPage(found, resume, examined)
        if next_at == "0":
            return ScanPage(found, "0", examined)
        at = next_at


def read_summaries(keys: KeySpace, members: list[str]) -> Operation:
    """The :class:`SessionSummary` of each live session among ``members``, in their order.

    One batch for all of them; a session that expired since it was listed is left out.
    """
    if not members:
        return []
    commands: list[Command] = []
    for member in members:
        doc = keys.member(member).doc
        commands += [Command(("HMGET", doc, *_SUMMARY_PATHS)), Command(("PTTL", doc))]
    replies = yield Batch(tuple(commands))
    summaries = []
    for index, member in enumerate(members):
        summary = _summary(member, replies[2 * index], replies[2 * index + 1])
        if summary is not None:
            summaries.append(summary)
    return summaries


def stage_counts(keys: KeySpace, sample: int) -> Operation:
    """Live sessions by stage, over at most ``sample`` sessions."""
    found = yield from scan_sessions(keys, SessionFilter(), limit=max(1, sample))
    return dict(Counter(session.stage for session in found.sessions))


def survey(keys: KeySpace, progress: Progress | None = None, *, page: int = PAGE) -> Operation:
    """Count the whole store (one SCAN over every member key): a :class:`StoreSurvey`."""
    counted = StoreSurvey()
    cursor = "0"
    while True:
        cursor, raw_keys = yield Scan(cursor, keys.member_key_pattern(), page)
        yield from _count_page(keys, raw_keys, counted)
        counted.keys_examined += len(raw_keys)
        if progress is not None:
            progress(counted.keys_examined, counted.sessions)
        if cursor == "0":
            break
    tails = yield Batch(tuple(Command(("XLEN", key)) for key in keys.audit_tails()))
    counted.audit_tail_entries = sum(_number(reply) for reply in tails)
    return counted


# -- reading a page --------------------------------------------------------------------

_COUNTERS = {
    "lease": "EXISTS",
    "route": "EXISTS",
    "audit": "XLEN",
    "dead": "HLEN",
    "inbox": "ZCARD",
}
"""What the survey asks of each kind of member key besides the document: a number."""


def _count_page(keys: KeySpace, raw_keys: Iterable[bytes], counted: StoreSurvey) -> Operation:
    docs: list[str] = []
    numbered: list[tuple[str, Command]] = []
    for raw_key in raw_keys:
        key = raw_key.decode("utf-8", "surrogatepass")
        kind, member = _kind_of(keys, key)
        if kind == "doc":
            docs.append(member)
        elif kind in _COUNTERS:
            numbered.append((kind, Command((_COUNTERS[kind], key))))
    for session in (yield from read_summaries(keys, docs)):
        counted.add_session(session)
    replies = (yield Batch(tuple(command for _, command in numbered))) if numbered else []
    for (kind, _), reply in zip(numbered, replies, strict=True):
        _add_count(counted, kind, _number(reply))


def _add_count(counted: StoreSurvey, kind: str, number: int) -> None:
    if kind == "lease":
        counted.leases += number
    elif kind == "route":
        counted.routes += number
    elif kind == "audit":
        counted.audit_streams += 1 if number else 0
        counted.audit_entries += number
    elif kind == "dead":
        counted.dead_letter_senders += 1 if number else 0
        counted.dead_letters += number
    elif kind == "inbox":
        counted.senders_waiting += 1 if number else 0
        counted.updates_queued += number


def _kind_of(keys: KeySpace, key: str) -> tuple[str | None, str]:
    """Which of a member's keys ``key`` is (``doc``, ``lease``, ...), and whose; None if
    it is another key (a dedup mark, an outbox) or not one statehq wrote."""
    try:
        member = keys.member_of(key)
        mine = keys.member(member)
    except (ValueError, InvalidInput):
        return None, ""
    known = {
        mine.doc: "doc",
        mine.lease: "lease",
        mine.route: "route",
        mine.audit: "audit",
        mine.dead: "dead",
        mine.inbox: "inbox",
    }
    return known.get(key), member


def _doc_members(keys: KeySpace, raw_keys: Iterable[bytes]) -> Iterable[str]:
    for raw_key in raw_keys:
        kind, member = _kind_of(keys, raw_key.decode("utf-8", "surrogatepass"))
        if kind == "doc":
            yield member


def _summary(member: str, fields: Any, pttl: Any) -> SessionSummary | None:
    if isinstance(fields, Refused) or isinstance(pttl, Refused):
        # Not a hash: someone wrote another kind of value under the document's key.
        return SessionSummary(member, UNREADABLE, None, None, None, _ttl(pttl))
    if pttl == -2 or all(value is None for value in fields):
        return None  # expired (or deleted) since the SCAN listed it
    stage, flow, step, version, handle = (_leaf(value) for value in fields)
    return SessionSummary(
        key=member,
        stage=DEFAULT_STAGE if fields[0] is None else _name(stage),
        flow=None if fields[1] is None else _name(flow),
        step=step if isinstance(step, str) else None,
        version=version if type(version) is int else None,
        ttl=_ttl(pttl),
        handle=handle if isinstance(handle, str) else None,
    )


_GARBLED = object()


def _leaf(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        return _GARBLED


def _name(value: Any) -> str:
    return value if isinstance(value, str) and value else UNREADABLE


def _ttl(pttl: Any) -> float | None:
    return pttl / 1000 if isinstance(pttl, int) and pttl >= 0 else None


def _number(reply: Any) -> int:
    return reply if isinstance(reply, int) and not isinstance(reply, bool) else 0
