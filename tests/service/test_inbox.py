"""The inbox and the turn commit, driven directly: the crash windows a test can reach."""

from __future__ import annotations

import threading
import time

from service_kit import new_phone

from statehq import StateStore
from statehq.channels.base import inbound_of
from statehq.channels.whatsapp import WhatsAppDelivery
from statehq.flows import Headquarters
from statehq.service.worker import Worker, WorkerSettings
from statehq.store.inbox import Inbox, Update
from statehq.store.operations import Outbox
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph


def _update(phone: str, text: str) -> Update:
    return Update(wh.message_id(), f"whatsapp:{phone}", "text", int(time.time()), text)


def test_a_message_is_one_version_and_a_repeat_is_a_duplicate(
    store: StateStore, engine: Headquarters, delivery: WhatsAppDelivery
) -> None:
    phone = new_phone()
    update = _update(phone, "hi")
    inbound = inbound_of(update)
    assert inbound is not None
    render = lambda replies: Outbox(update.channel, tuple(delivery.render(update, replies)))  # noqa: E731
    first = engine.process(inbound, outbox=render)
    assert not first.duplicate
    again = engine.process(inbound, outbox=render)
    assert again.duplicate
    assert again.version == first.version
    inbox = Inbox(store.settings)
    queued = store.execute(inbox.outbox(first.session_key, update.channel))
    assert len(queued) == len(first.replies)  # the repeat queued nothing


def test_a_worker_that_died_after_its_commit_is_not_repeated(
    store: StateStore,
    engine: Headquarters,
    delivery: WhatsAppDelivery,
    fresh_graph: FakeGraph,
) -> None:
    phone = new_phone()
    inbox = Inbox(store.settings)
    update = _update(phone, "hi")
    assert store.execute(inbox.push([update])) == [update]
    # A first worker takes the message and commits its turn, then dies before the ack.
    taken = store.execute(inbox.next(update.channel))
    assert (taken.id, taken.attempts) == (update.id, 1)
    inbound = inbound_of(update)
    assert inbound is not None
    done = engine.process(
        inbound, outbox=lambda r: Outbox(update.channel, tuple(delivery.render(update, r)))
    )
    version = done.version
    assert fresh_graph.messages_to(phone) == []
    # The next worker sends the committed replies and only acknowledges the message.
    stop = threading.Event()
    worker = Worker(store, engine, delivery, WorkerSettings(lease_ttl=5), stop)
    assert worker.step()
    replies = fresh_graph.messages_to(phone)
    assert [r["biz_opaque_callback_data"] for r in replies] == [
        f"{update.id}#{n}" for n in range(len(done.replies))
    ]
    snap = store.get(done.session_key)
    assert snap is not None
    assert snap.version == version  # the turn did not run twice
    assert store.execute(inbox.next(update.channel)) is None
    assert not worker.step()  # nothing left


def test_a_redelivery_after_processing_is_not_queued_again(store: StateStore) -> None:
    inbox = Inbox(store.settings)
    update = _update(new_phone(), "hi")
    assert store.execute(inbox.push([update])) == [update]
    taken = store.execute(inbox.next(update.channel))
    store.execute(inbox.ack(update.channel, taken.id))
    assert store.execute(inbox.push([update])) == []
    assert store.execute(inbox.next(update.channel)) is None


def test_updates_come_out_in_timestamp_then_arrival_order(store: StateStore) -> None:
    inbox = Inbox(store.settings)
    phone = new_phone()
    now = int(time.time())
    late = Update("m-late", f"whatsapp:{phone}", "text", now + 5, "c")
    first = Update("m-first", f"whatsapp:{phone}", "text", now, "a")
    second = Update("m-second", f"whatsapp:{phone}", "text", now, "b")
    store.execute(inbox.push([late, first]))
    store.execute(inbox.push([second]))
    order = []
    while (taken := store.execute(inbox.next(f"whatsapp:{phone}"))) is not None:
        order.append(taken.id)
        store.execute(inbox.ack(f"whatsapp:{phone}", taken.id))
    assert order == ["m-first", "m-second", "m-late"]
