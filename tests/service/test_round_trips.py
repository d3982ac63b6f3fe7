"""Round trips per processed message (issue 17): counted at the store's driver.

Each call of the driver is one round trip on a single server (a pipeline on a Cluster is
one per run of requests in one slot). Before issue 17 a message with one reply cost the
webhook two and the worker four (next, get, commit, drop) plus eight per sender drained
(claim, lease, outbox, route, last next, release, count, done). Now the webhook needs
one, and the worker one commit per message plus, for a whole batch of senders, one
claim, one take and one round trip per round of one message each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from service_kit import new_phone

from statehq import StateStore
from statehq.channels.whatsapp import WhatsAppDelivery
from statehq.flows import Headquarters
from statehq.service.worker import Worker, WorkerSettings
from statehq.store import requests as ops
from statehq.store.inbox import Inbox, Update
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph


@pytest.fixture
def calls(store: StateStore) -> Iterator[list[str]]:
    """The requests the store's driver performs from now on, one name per round trip.

    A claim alone is left out: the worker's first claim comes with what it lets go, and
    a claim alone after it only tries the next piece of a Cluster's ready set (which
    piece a worker tries first is random).
    """
    seen: list[str] = []
    real = store._perform

    def counting(request: ops.Request) -> Any:
        if not isinstance(request, ops.Sleep):
            name = "+".join(ops.names_of(request))
            if name != "ready_claim":
                seen.append(name)
        return real(request)

    store._perform = counting  # type: ignore[method-assign]
    yield seen
    del store._perform


def _texts(phone: str, count: int) -> list[Update]:
    now = int(time.time())
    return [Update(wh.message_id(), f"whatsapp:{phone}", "text", now, "hi") for _ in range(count)]


def test_a_webhook_batch_is_queued_and_marked_in_one_round_trip(
    store: StateStore, calls: list[str]
) -> None:
    updates = [u for _ in range(3) for u in _texts(new_phone(), 2)]  # three senders
    assert store.execute(Inbox(store.settings).push(updates)) == updates
    assert len(calls) == 1
    assert calls[0].startswith("inbox_push+inbox_push+inbox_push+ready_mark")


def test_a_drain_costs_two_round_trips_per_message_and_two_per_sender(
    store: StateStore,
    engine: Headquarters,
    delivery: WhatsAppDelivery,
    fresh_graph: FakeGraph,
    calls: list[str],
) -> None:
    phone = new_phone()
    inbox = Inbox(store.settings)
    worker = Worker(store, engine, delivery, WorkerSettings(lease_ttl=5), threading.Event())
    store.execute(inbox.push(_texts(phone, 1)))
    assert worker.step()  # the member's first message starts the session: not counted
    queued = 4
    store.execute(inbox.push(_texts(phone, queued)))
    calls.clear()
    assert worker.step()
    assert len(fresh_graph.messages_to(phone)) == 1 + queued
    claim, take, *per_message = calls
    assert claim == "ready_claim+lease_release+ready_done"  # the last drain let go with it
    assert take == "lease_acquire+lrange+inbox_next+get"
    assert per_message == ["update", "outbox_pop+inbox_next+get"] * queued


def test_senders_drained_side_by_side_share_their_round_trips(
    store: StateStore,
    engine: Headquarters,
    delivery: WhatsAppDelivery,
    fresh_graph: FakeGraph,
    calls: list[str],
) -> None:
    inbox = Inbox(store.settings)
    phones = [new_phone()]
    while len(phones) < 3:  # in one piece of the ready set, so one claim takes them all
        phone = new_phone()
        if inbox.keys.ready_of(f"whatsapp:{phone}") == inbox.keys.ready_of(f"whatsapp:{phones[0]}"):
            phones.append(phone)
    pacing = WorkerSettings(lease_ttl=5, batch=8, share=1)
    worker = Worker(store, engine, delivery, pacing, threading.Event())
    store.execute(inbox.push([u for phone in phones for u in _texts(phone, 1)]))
    assert worker.step()  # first messages start the sessions: not counted
    store.execute(inbox.push([u for phone in phones for u in _texts(phone, 2)]))
    calls.clear()
    assert worker.step()
    assert [len(fresh_graph.messages_to(phone)) for phone in phones] == [3, 3, 3]
    claim, take, *rounds = calls
    assert claim.startswith("ready_claim+")
    assert take == "+".join(["lease_acquire+lrange+inbox_next+get"] * 3)
    advance = "+".join(["outbox_pop+inbox_next+get"] * 3)
    assert rounds == (["update"] * 3 + [advance]) * 2  # six messages, ten round trips
