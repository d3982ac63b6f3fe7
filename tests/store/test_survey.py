"""The survey on every topology: scan finds each session once, stats counts the store.

On a Cluster the sessions spread over every master; the scan must visit them all.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.crc import key_slot

from statehq import AsyncStateStore, AuditEvent, InvalidInput, StateStore
from statehq.store import ScanPage, SessionSummary
from statehq.store.inbox import Inbox, Update
from statehq.store.keys import KeySpace
from statehq.store.requests import Batch, Command, Operation, Refused
from statehq.store.survey import UNREADABLE, make_cursor, parse_cursor, ttl_bucket
from statehq.testing import topologies

MANY = 2500


def _members(n: int, tag: str = "") -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"whatsapp:{tag}{run}{i:06d}" for i in range(n)]


def _scan_all(store: StateStore, limit: int, **filters: Any) -> tuple[list[str], int, int]:
    """Every session key a paged scan returns, the sessions examined, the calls made."""
    found: list[str] = []
    examined, calls, cursor = 0, 0, "0"
    while True:
        page = store.scan_sessions(limit=limit, cursor=cursor, **filters)
        found += [session.key for session in page.sessions]
        examined += page.examined
        calls += 1
        assert len(page.sessions) <= limit
        if page.complete:
            return found, examined, calls
        assert len(page.sessions) == limit  # a page stops early only at the end
        cursor = page.cursor


def _masters_holding(cluster: topologies.Cluster, keys: list[str]) -> set[int]:
    ranges = cluster.live_nodes()[0].command("CLUSTER", "SLOTS")
    owners: set[int] = set()
    for key in keys:
        slot = key_slot(key.encode())
        owners.update(int(r[2][1]) for r in ranges if int(r[0]) <= slot <= int(r[1]))
    return owners


def _run(*requests: Command | Batch) -> Operation:
    replies = []
    for request in requests:
        replies.append((yield request))
    return replies


def test_a_paged_scan_finds_thousands_of_sessions_each_exactly_once(
    store: StateStore, server_url: str, request: pytest.FixtureRequest
) -> None:
    members = _members(MANY)
    for member in members:
        store.update(member, {"stage": "AUTH"})
    if server_url.startswith("redis+cluster"):
        cluster: topologies.Cluster = request.getfixturevalue("cluster")
        docs = [store._ops.keys.member(m).doc for m in members]
        assert _masters_holding(cluster, docs) == set(cluster.masters())
    found, examined, calls = _scan_all(store, limit=700)
    assert len(found) == len(set(found)) == MANY
    assert set(found) == set(members)
    assert examined == MANY  # a page cut short is resumed after its last session
    assert calls == math.ceil(MANY / 700)


def test_limit_one_walks_every_session_through_mid_page_cursors(store: StateStore) -> None:
    members = _members(25)
    for member in members:
        store.update(member, {"n": 1})
    found, examined, calls = _scan_all(store, limit=1)
    assert sorted(found) == sorted(members)
    assert examined == 25
    assert calls in (25, 26)  # a 26th when the 25th session did not end the scan


def test_a_summary_holds_stage_flow_step_version_and_ttl(store: StateStore) -> None:
    (member,) = _members(1)
    store.update(member, {"stage": "AUTH"})
    store.update(member, {"flow_data": {"id": "offer", "step": "amount", "data": {"x": [1]}}})
    (session,) = store.scan_sessions().sessions
    assert session.key == member
    assert (session.stage, session.flow, session.step, session.version) == (
        "AUTH",
        "offer",
        "amount",
        2,
    )
    assert session.ttl is not None
    assert 0 < session.ttl <= store.settings.session_ttl
    assert session.as_dict()["flow"] == "offer"


def test_filters_by_stage_flow_and_time_left(store: StateStore, server_url: str) -> None:
    menu, offer, short = _members(4, "m"), _members(3, "o"), _members(2, "s")
    for member in menu:
        store.update(member, {"stage": "MENU"})
    for member in offer:
        store.update(member, {"stage": "offer", "flow_data": {"id": "offer", "step": "amount"}})
    prefix = store.settings.key_prefix
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=30) as brief:
        for member in short:
            brief.update(member, {"stage": "MENU"})

    def keys(**filters: Any) -> set[str]:
        return {s.key for s in store.scan_sessions(limit=1000, **filters).sessions}

    assert keys(stage="MENU") == set(menu + short)
    assert keys(flow="offer") == set(offer)
    assert keys(stage="offer", flow="offer") == set(offer)
    assert keys(stage="MENU", flow="offer") == set()
    assert keys(expiring_within=60) == set(short)
    assert keys(expiring_within=60, stage="offer") == set()
    assert keys(stage="INIT") == set()


def test_a_page_with_no_match_is_complete_and_empty(store: StateStore) -> None:
    for member in _members(5):
        store.update(member, {"n": 1})
    page = store.scan_sessions(stage="MENU")
    assert page == ScanPage([], "0", 5)
    assert page.complete
    assert page.as_dict() == {"sessions": [], "cursor": "0", "examined": 5, "complete": True}


def test_unreadable_documents_are_shown_not_fatal(store: StateStore) -> None:
    good, garbled, wrong_type = _members(3)
    for member in (good, garbled):
        store.update(member, {"stage": "AUTH"})
    keys = store._ops.keys
    store.execute(
        _run(
            Command(("HSET", keys.member(garbled).doc, "stage", "{not json")),
            Command(("SET", keys.member(wrong_type).doc, "a string, not a hash")),
        )
    )
    found = {s.key: s for s in store.scan_sessions().sessions}
    assert found[good].stage == "AUTH"
    assert found[garbled].stage == UNREADABLE
    assert found[garbled].version == 1  # the rest of the document still reads
    assert found[wrong_type] == SessionSummary(wrong_type, UNREADABLE, None, None, None, None)
    assert {s.key for s in store.scan_sessions(stage=UNREADABLE).sessions} == {
        garbled,
        wrong_type,
    }
    assert store.survey().by_stage == {"AUTH": 1, UNREADABLE: 2}


def test_a_batch_answers_in_order_and_a_refused_command_does_not_sink_it(
    store: StateStore,
) -> None:
    a, b = (store._ops.keys.member(m).doc for m in _members(2))
    (replies,) = store.execute(
        _run(
            Batch(
                (
                    Command(("SET", a, "text")),
                    Command(("HGET", a, "field")),  # WRONGTYPE
                    Command(("GET", a)),
                    Command(("EXISTS", b)),
                )
            )
        )
    )
    assert replies[0] is True or replies[0] == b"OK"
    assert isinstance(replies[1], Refused)
    assert "WRONGTYPE" in replies[1].reason
    assert replies[2:] == [b"text", 0]
    assert store.execute(_run(Batch(()))) == [[]]


def test_bad_scan_arguments_are_refused(store: StateStore) -> None:
    for limit in (0, -1, 1.5, True):
        with pytest.raises(InvalidInput, match="limit must be a whole number"):
            store.scan_sessions(limit=limit)  # type: ignore[arg-type]
    for within in (-1, math.nan, math.inf):
        with pytest.raises(InvalidInput, match="expiring_within"):
            store.scan_sessions(expiring_within=within)
    for cursor in ("abc", "", "1:2:3", "5~", "5~%%", "-1", "5\n", "٣"):
        with pytest.raises(InvalidInput, match="not a scan cursor"):
            store.scan_sessions(cursor=cursor)


def test_cursors_carry_any_member_id_and_read_back() -> None:
    for after in (None, "whatsapp:263771234567", "web:ünï/cödé~ x", "member:a\ud800b"):
        assert parse_cursor(make_cursor("2:1234", after)) == ("2:1234", after)
    assert parse_cursor("0") == ("0", None)


def test_ttl_buckets() -> None:
    assert [ttl_bucket(t) for t in (0.5, 59.9, 60, 599, 3599, 86399, 86400, None)] == [
        "<1m",
        "<1m",
        "<10m",
        "<10m",
        "<1h",
        "<1d",
        "longer",
        "none",
    ]


@pytest.fixture
def populated(store: StateStore) -> Iterator[dict[str, Any]]:
    """A store with sessions, a lease, a queue, a dead letter, audit trails and a route."""
    sessions = _members(6)
    for member in sessions[:3]:
        store.update(member, {"stage": "AUTH"}, audit=[AuditEvent("test.note", reason="seed")])
    for member in sessions[3:5]:
        store.update(member, {"stage": "offer", "flow_data": {"id": "offer", "step": "amount"}})
    store.update(sessions[5], {"stage": "MENU"})
    lease = store.lease(sessions[0], ttl=30)
    inbox = Inbox(store.settings)
    senders = _members(2, "q")
    now = int(time.time())
    updates = [Update(f"wamid.{uuid.uuid4().hex}", s, "text", now, "hi") for s in senders * 2]
    store.execute(inbox.push(updates))
    taken = store.execute(inbox.next(senders[0]))
    assert store.execute(inbox.bury(senders[0], taken.id, {"error": "boom", "attempts": 3}))
    target = sessions[5]
    bound = sessions[4]
    version = store.get(bound)
    assert version is not None
    store.bind(bound, version.version, target, AuditEvent("identity.bound"))
    yield {"sessions": sessions, "senders": senders}
    store.release_lease(lease)


def test_the_survey_counts_the_whole_store(store: StateStore, populated: dict[str, Any]) -> None:
    heard: list[tuple[int, int]] = []
    survey = store.survey(lambda keys, sessions: heard.append((keys, sessions)))
    # The binding moved one offer session's conversation to its member: five remain.
    assert survey.sessions == 5
    assert survey.by_stage == {"AUTH": 3, "offer": 1, "MENU": 1}
    assert survey.by_flow == {"offer": 1}
    assert survey.ttl == {"<1m": 0, "<10m": 5, "<1h": 0, "<1d": 0, "longer": 0, "none": 0}
    assert survey.leases == 1
    assert (survey.senders_waiting, survey.updates_queued) == (2, 3)
    assert (survey.dead_letters, survey.dead_letter_senders) == (1, 1)
    assert survey.routes == 1
    # Three sessions' notes and the bound channel's "identity.bound", each also in the tail.
    assert (survey.audit_streams, survey.audit_entries, survey.audit_tail_entries) == (4, 4, 4)
    assert heard
    assert heard[-1] == (survey.keys_examined, survey.sessions)
    assert [keys for keys, _ in heard] == sorted(keys for keys, _ in heard)


def test_stage_counts_for_metrics_still_count_by_stage(store: StateStore) -> None:
    for index, member in enumerate(_members(12)):
        store.update(member, {"stage": "AUTH" if index % 3 else "INIT"})
    assert store.stage_counts() == {"AUTH": 8, "INIT": 4}
    assert sum(store.stage_counts(5).values()) == 5


async def test_the_async_store_scans_and_surveys_alike(astore: AsyncStateStore) -> None:
    members = _members(40)
    for member in members:
        await astore.update(member, {"stage": "AUTH"})
    found: list[str] = []
    cursor = "0"
    while True:
        page = await astore.scan_sessions(limit=15, cursor=cursor)
        found += [s.key for s in page.sessions]
        if page.complete:
            break
        cursor = page.cursor
    assert sorted(found) == sorted(members)
    survey = await astore.survey()
    assert (survey.sessions, survey.by_stage) == (40, {"AUTH": 40})
    assert await astore.stage_counts(100) == {"AUTH": 40}


def test_keys_of_other_prefixes_and_shapes_are_left_alone(store: StateStore) -> None:
    (member,) = _members(1)
    store.update(member, {"n": 1})
    other = KeySpace(f"{store.settings.key_prefix}x")
    store.execute(_run(Command(("SET", other.member(member).doc, "elsewhere"))))
    assert [s.key for s in store.scan_sessions().sessions] == [member]
    assert store.survey().sessions == 1
