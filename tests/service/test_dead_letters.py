"""No update can stop a worker: failures are retried with backoff, then kept as dead letters.

The worker is driven directly on the test store, with the real credex engine and the
fake Graph API; the operator's side runs as ``statehq dead`` and over the admin API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from service_kit import ADMIN_TOKEN, Running, new_phone, service_settings, serving, settle

from statehq import StateStore
from statehq.channels.whatsapp import WhatsAppDelivery
from statehq.flows import Headquarters
from statehq.service.dead import list_dead
from statehq.service.worker import Worker, WorkerSettings
from statehq.store.embedded import EmbeddedValkey
from statehq.store.inbox import Inbox, Update
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph

FAST = WorkerSettings(lease_ttl=5, max_attempts=3, retry_base=0.05, retry_cap=0.2)


def _text(phone: str, text: str = "hi", *, sender: str | None = None) -> Update:
    return Update(wh.message_id(), sender or f"whatsapp:{phone}", "text", int(time.time()), text)


def _poison() -> Update:
    # A sender key that is no channel identity: ChannelId.parse raises while the worker
    # handles it (a producer other than our webhook could queue this).
    return _text("", sender=f"nochannel{new_phone()}")


@pytest.fixture
def impatient(
    embedded_server: EmbeddedValkey, prefix: str, tmp_path: Path, fresh_graph: FakeGraph
) -> Iterator[Running]:
    """The service, setting an update aside after its second failure."""
    settings = service_settings(
        embedded_server.url, prefix, tmp_path / "data", fresh_graph.url, max_attempts=2
    )
    with serving(settings) as running:
        yield running


@pytest.fixture
def worker(store: StateStore, engine: Headquarters, delivery: WhatsAppDelivery) -> Worker:
    """A worker on the test store, retrying fast."""
    return Worker(store, engine, delivery, FAST, threading.Event(), name="w-test")


def _drain(worker: Worker, timeout: float = 15.0) -> None:
    """Step the worker until no sender has work (waiting out retry backoffs)."""
    deadline = time.monotonic() + timeout
    while worker.store.execute(worker.inbox.depth(1))[0]:
        assert time.monotonic() < deadline, "the inbox did not drain"
        if not worker.step():
            time.sleep(0.02)


def test_a_poison_update_is_retried_then_set_aside_and_the_worker_goes_on(
    store: StateStore, worker: Worker, fresh_graph: FakeGraph
) -> None:
    inbox = Inbox(store.settings)
    poison = _poison()
    phone = new_phone()
    after = _text(phone)  # another member, queued behind the poison
    store.execute(inbox.push([poison, after]))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        fresh_graph.wait_for(1, predicate=lambda r: r.body.get("to") == phone, timeout=10)
        deadline = time.monotonic() + 10
        while not list_dead(store):
            assert time.monotonic() < deadline, "the poison update was never set aside"
            time.sleep(0.05)
        assert thread.is_alive()  # the worker never died of it
    finally:
        worker.stop.set()
        thread.join(timeout=10)
    (letter,) = list_dead(store)
    assert (letter.id, letter.sender, letter.attempts) == (poison.id, poison.channel, 3)
    assert "InvalidInput" in letter.error
    assert letter.update["text"] == "hi"
    assert store.execute(inbox.next(poison.channel)) is None  # out of the inbox
    events = [e.event for e in store.audit_read(poison.channel, limit=10)]
    assert events == ["message.dead"]


def test_a_failed_update_is_retried_after_a_backoff_and_its_senders_later_updates_wait(
    store: StateStore, worker: Worker
) -> None:
    inbox = Inbox(store.settings)
    sender = f"nochannel{new_phone()}"
    first, second = _text("", sender=sender), _text("", sender=sender)
    store.execute(inbox.push([first, second]))
    assert worker.step()
    due = store._client.zscore(inbox.keys.ready_of(sender), sender)
    now_ms = time.time() * 1000
    assert due is not None
    assert due > now_ms + FAST.retry_base * 0.5 * 1000  # not retried at once
    assert store._client.hget(worker.inbox.keys.member(sender).inbox_tries, first.id) == b"1"
    assert store._client.hget(worker.inbox.keys.member(sender).inbox_tries, second.id) is None
    assert b"InvalidInput" in store._client.hget(
        worker.inbox.keys.member(sender).inbox_errors, first.id
    )


def test_an_update_that_keeps_killing_its_worker_is_set_aside_then_replayed(
    store: StateStore, worker: Worker, fresh_graph: FakeGraph
) -> None:
    inbox = Inbox(store.settings)
    phone = new_phone()
    update = _text(phone)
    store.execute(inbox.push([update]))
    for _ in range(FAST.max_attempts):  # each worker took it and died before any outcome
        taken = store.execute(inbox.next(update.channel))
        assert taken.id == update.id
    _drain(worker)
    (letter,) = list_dead(store)
    assert letter.error == "the worker stopped while handling it"
    assert fresh_graph.messages_to(phone) == []
    # The cause is gone (here: no more crashes); the operator replays it.
    from statehq.service.dead import replay_dead

    assert replay_dead(store, letter, reason="fixed")
    _drain(worker)
    fresh_graph.wait_for(1, predicate=lambda r: r.body.get("to") == phone, timeout=10)
    assert list_dead(store) == []
    events = [e.event for e in store.audit_read(update.channel, limit=50)]
    assert "message.dead" in events
    assert "dead.replayed" in events


def test_an_unreadable_inbox_entry_is_set_aside_at_once_and_the_next_goes_on(
    store: StateStore, worker: Worker, fresh_graph: FakeGraph
) -> None:
    inbox = Inbox(store.settings)
    phone = new_phone()
    garbled, good = _text(phone, "one"), _text(phone, "two")
    store.execute(inbox.push([garbled, good]))
    # A body written by an older version, or by hand: a timestamp no score can hold.
    raw = json.dumps({**json.loads(garbled.encode()), "timestamp": int("9" * 400)})
    store._client.hset(inbox.keys.member(garbled.channel).inbox_body, garbled.id, raw)
    _drain(worker)
    (letter,) = list_dead(store)
    assert letter.id == garbled.id
    assert "timestamp" in letter.error
    assert letter.update == {}
    assert letter.raw == raw
    fresh_graph.wait_for(1, predicate=lambda r: r.body.get("to") == phone, timeout=10)


def test_a_sender_removed_from_the_ready_set_is_found_by_the_reconciler(
    store: StateStore,
) -> None:
    inbox = Inbox(store.settings)
    update = _text(new_phone())
    store.execute(inbox.push([update]))
    store._client.zrem(
        inbox.keys.ready_of(update.channel), update.channel
    )  # the mark lost to a partial failure
    assert store.execute(inbox.reconcile()) == [update.channel]
    assert store._client.zscore(inbox.keys.ready_of(update.channel), update.channel) is not None
    assert store.execute(inbox.reconcile()) == []  # marked senders are left alone


def test_finish_keeps_a_sender_marked_since_its_claim(store: StateStore) -> None:
    inbox = Inbox(store.settings)
    update = _text(new_phone())
    store.execute(inbox.push([update]))
    claim = store.execute(inbox.claim(5))
    taken = store.execute(inbox.next(update.channel))
    store.execute(inbox.ack(update.channel, taken.id))
    # Between the drain and the finish, the webhook queues and marks another update.
    later = Update(wh.message_id(), update.channel, "text", int(time.time()), "again")
    store.execute(inbox.push([later]))
    store.execute(inbox.finish(claim))
    assert store._client.zscore(inbox.keys.ready_of(update.channel), update.channel) is not None
    # With nothing left and no mark since its own claim, the sender goes.
    claim = store.execute(inbox.claim(5))
    taken = store.execute(inbox.next(update.channel))
    store.execute(inbox.ack(update.channel, taken.id))
    store.execute(inbox.finish(claim))
    assert store._client.zscore(inbox.keys.ready_of(update.channel), update.channel) is None


# -- the operator's side ----------------------------------------------------------------------


def _statehq(url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STATEHQ_REDIS_URL": url, "STATEHQ_KEY_PREFIX": prefix}
    return subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _bury(store: StateStore, worker: Worker, sender: str | None = None) -> Update:
    poison = _text("", sender=sender) if sender else _poison()
    store.execute(Inbox(store.settings).push([poison]))
    _drain(worker)
    return poison


def test_statehq_dead_lists_shows_replays_and_drops(
    store: StateStore, worker: Worker, server_url: str, prefix: str
) -> None:
    first, second = _bury(store, worker), _bury(store, worker)
    listed = _statehq(server_url, prefix, "dead", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {letter["id"] for letter in json.loads(listed.stdout)} == {first.id, second.id}
    human = _statehq(server_url, prefix, "dead", "list").stdout
    assert first.id in human
    assert "x3" in human
    shown = _statehq(server_url, prefix, "dead", "show", first.id)
    assert shown.returncode == 0
    assert "InvalidInput" in shown.stdout
    assert first.channel in shown.stdout
    replayed = _statehq(server_url, prefix, "dead", "replay", first.id, "--reason", "retry it")
    assert (replayed.returncode, replayed.stdout.split()[0]) == (0, "replayed")
    assert store.execute(Inbox(store.settings).next(first.channel)).id == first.id
    blank = _statehq(server_url, prefix, "dead", "drop", second.id, "--reason", " ")
    assert blank.returncode == 2  # a reason is required, and must say something
    dropped = _statehq(server_url, prefix, "dead", "drop", second.id, "--reason", "junk\udce9")
    assert dropped.returncode == 0, dropped.stderr
    assert list_dead(store) == []
    events = [e.event for e in store.audit_read(second.channel, limit=10)]
    assert events == ["message.dead", "dead.dropped"]
    assert store.audit_read(second.channel, limit=10)[-1].reason == "junk\ufffd"
    # Not found: 1. Bad usage: 2.
    assert _statehq(server_url, prefix, "dead", "show", "wamid.none").returncode == 1
    assert _statehq(server_url, prefix, "dead", "drop", second.id).returncode == 2  # no reason
    assert _statehq(server_url, prefix, "dead", "replay").returncode == 2


def test_statehq_dead_replay_all_and_an_id_shared_by_two_senders(
    store: StateStore, worker: Worker, server_url: str, prefix: str
) -> None:
    shared = wh.message_id()
    for n in range(2):
        poison = Update(shared, f"nochannel{n}{new_phone()}", "text", int(time.time()), "x")
        store.execute(Inbox(store.settings).push([poison]))
    _drain(worker)
    ambiguous = _statehq(server_url, prefix, "dead", "show", shared)
    assert ambiguous.returncode == 2
    assert "--sender" in ambiguous.stderr
    everything = _statehq(server_url, prefix, "dead", "replay", "--all", "--json")
    assert everything.returncode == 0, everything.stderr
    assert json.loads(everything.stdout)["replayed"] == [shared, shared]
    assert list_dead(store) == []


def test_the_admin_api_lists_shows_replays_and_drops_dead_letters(impatient: Running) -> None:
    service = impatient
    inbox = Inbox(service.settings)
    poison = _poison()
    service.store.execute(inbox.push([poison]))
    api = service.http
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    deadline = time.monotonic() + 20  # the service's workers retry with backoff
    while not (listed := api.get("/admin/dead", headers=auth).json()["dead"]):
        assert time.monotonic() < deadline, "the poison update was never set aside"
        time.sleep(0.1)
    assert [letter["id"] for letter in listed] == [poison.id]
    assert api.get("/admin/dead").status_code == 401
    one = api.get(f"/admin/dead/{poison.id}", headers=auth)
    assert (one.status_code, one.json()["sender"]) == (200, poison.channel)
    assert one.json()["attempts"] == service.settings.max_attempts
    mine = api.get("/admin/dead", params={"sender": poison.channel}, headers=auth)
    assert len(mine.json()["dead"]) == 1
    bad = api.get("/admin/dead", params={"sender": "a{b}"}, headers=auth)
    assert bad.status_code == 400
    assert api.get("/admin/dead/wamid.none", headers=auth).status_code == 404
    wrong = api.post(f"/admin/dead/{poison.id}/drop", json={"reason": 5}, headers=auth)
    assert wrong.status_code == 422
    not_text = api.post(
        f"/admin/dead/{poison.id}/drop",
        content=b'{"reason": "\\ud800"}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert not_text.status_code == 422
    assert "lone surrogate" in not_text.json()["error"]
    assert len(list_dead(service.store)) == 1  # a refused request changed nothing
    dropped = api.post(f"/admin/dead/{poison.id}/drop", json={"reason": "junk"}, headers=auth)
    assert (dropped.status_code, dropped.json()["outcome"]) == (200, "dropped")
    again = api.post(f"/admin/dead/{poison.id}/replay", json={}, headers=auth)
    assert again.status_code == 404
    settle(service)


def test_a_dead_letter_whose_id_holds_a_slash_is_reachable_over_the_admin_api(
    impatient: Running,
) -> None:
    service = impatient
    poison = Update("wamid.HBgM/ab+c=", f"nochannel{new_phone()}", "text", int(time.time()), "x")
    service.store.execute(Inbox(service.settings).push([poison]))
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    deadline = time.monotonic() + 20
    while not list_dead(service.store):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    path = f"/admin/dead/{quote(poison.id, safe='')}"
    assert service.http.get(path, headers=auth).json()["id"] == poison.id
    dropped = service.http.post(f"{path}/drop", json={"reason": "junk"}, headers=auth)
    assert (dropped.status_code, dropped.json()["outcome"]) == (200, "dropped")


def test_the_service_answers_others_while_a_poison_update_fails(
    impatient: Running, fresh_graph: FakeGraph
) -> None:
    service = impatient
    service.store.execute(Inbox(service.settings).push([_poison()]))
    phone = new_phone()
    service.send(wh.text(phone, "hi"))
    fresh_graph.wait_for(1, predicate=lambda r: r.body.get("to") == phone, timeout=10)
    deadline = time.monotonic() + 20
    while not list_dead(service.store):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    app_threads = [t for t in threading.enumerate() if t.name.startswith("statehq-worker-")]
    assert len(app_threads) == service.settings.workers
    assert all(t.is_alive() for t in app_threads)
    metrics = service.http.get("/metrics").text
    assert 'statehq_message_failures_total{error="InvalidInput"}' in metrics
    (dead_total,) = [
        line for line in metrics.splitlines() if line.startswith("statehq_dead_letters_total ")
    ]
    assert float(dead_total.split()[1]) >= 1  # the counter is this test process's


@pytest.mark.slow
def test_a_worker_that_lost_its_lease_while_sending_sends_no_more(
    store: StateStore, engine: Headquarters, fresh_graph: FakeGraph
) -> None:
    # Worker a commits a turn with two outbox entries (a read receipt, then the reply)
    # and sends the first to a Graph API that takes longer than the whole lease. Worker b
    # takes the sender over and sends the outbox. When a comes back, the lease is not its
    # own any more: it must not send the reply too.
    from statehq.channels.whatsapp import GraphSender

    fresh_graph.delay = 2.5
    pacing = WorkerSettings(lease_ttl=1.0, retry_base=0.05)
    senders = [GraphSender(fresh_graph.url, wh.PHONE_NUMBER_ID, "test-access-token") for _ in "ab"]
    a, b = (
        Worker(
            store, engine, WhatsAppDelivery(s, mark_read=True), pacing, threading.Event(), name=n
        )
        for s, n in zip(senders, "ab", strict=True)
    )
    update = _text(new_phone())
    store.execute(Inbox(store.settings).push([update]))
    second = threading.Thread(target=b.run, daemon=True)
    first = threading.Thread(target=a.step, daemon=True)
    first.start()
    time.sleep(0.3)  # a has claimed the sender and is sending the receipt
    second.start()
    try:
        first.join(timeout=20)
        reply = f"{update.id}#1"
        fresh_graph.wait_for(
            1, timeout=15, predicate=lambda r: r.body.get("biz_opaque_callback_data") == reply
        )
        time.sleep(3.0)  # anything a would still send would have arrived by now
        sent = [r.body.get("biz_opaque_callback_data") for r in fresh_graph.received()]
        assert sent.count(reply) == 1
    finally:
        b.stop.set()
        second.join(timeout=10)
        for sender in senders:
            sender.close()


def test_every_dead_letter_is_found_and_counted_however_many_there_are(
    store: StateStore,
) -> None:
    from statehq.service.dead import count_and_list, find_dead, iter_dead

    inbox = Inbox(store.settings)
    letters = [_text("", sender=f"nochannel{n}{new_phone()}") for n in range(7)]
    for n, update in enumerate(letters):
        store.execute(inbox.push([update]))
        why = {"error": "x", "attempts": 1, "at": f"2026-12-03T00:00:0{n}+00:00"}
        assert store.execute(inbox.bury(update.channel, update.id, why))
    total, oldest = count_and_list(store, limit=5)
    assert total == 7
    assert [letter.id for letter in oldest] == [u.id for u in letters[:5]]
    newest = letters[-1]
    assert find_dead(store, newest.id).sender == newest.channel  # beyond the listed five
    assert len(list(iter_dead(store))) == 7
