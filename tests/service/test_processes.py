"""Several processes, a killed worker, a store that goes away: still once, in order."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from service_kit import (
    WEBHOOK,
    Running,
    ServeProcess,
    answered,
    new_phone,
    service_settings,
    serving,
    settle,
)

from statehq import Settings, StateStore
from statehq.store.embedded import EmbeddedValkey
from statehq.store.inbox import Inbox
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph

pytestmark = pytest.mark.slow


def _post(url: str, messages: list[dict[str, object]]) -> httpx.Response:
    raw, headers = wh.signed(wh.payload(messages), "test-app-secret")
    return httpx.post(f"{url}{WEBHOOK}", content=raw, headers=headers, timeout=10)


def _settle_store(store: StateStore, prefix: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while store.execute(Inbox(store.settings).depth(1))[0]:
        assert time.monotonic() < deadline, "the inbox did not drain"
        time.sleep(0.05)


@pytest.fixture
def shared(
    embedded_server: EmbeddedValkey, prefix: str, tmp_path: Path, fresh_graph: FakeGraph
) -> Iterator[tuple[Settings, StateStore]]:
    """Settings every process of a test shares (one store, one key prefix, one ledger)."""
    settings = service_settings(
        embedded_server.url, prefix, tmp_path / "data", fresh_graph.url, lease_ttl=1.5
    )
    with StateStore.open(url=embedded_server.url, settings=settings) as store:
        yield settings, store


def test_two_processes_on_one_store_process_each_message_once_in_order(
    shared: tuple[Settings, StateStore], tmp_path: Path, fresh_graph: FakeGraph
) -> None:
    settings, store = shared
    first = ServeProcess(settings, tmp_path / "serve-a.log")
    second = ServeProcess(settings, tmp_path / "serve-b.log")
    try:
        phones = [new_phone() for _ in range(6)]
        now = int(time.time())
        sent: dict[str, list[str]] = {p: [] for p in phones}
        for n in range(8):
            for i, phone in enumerate(phones):
                message = wh.text(phone, f"message {n}", ts=now)
                sent[phone].append(str(message["id"]))
                # Alternate the processes, and deliver some messages to both (two apps
                # subscribed to one account, or Meta retrying on the other instance).
                targets = [first, second][(n + i) % 2 :][:1]
                if n % 3 == 0:
                    targets = [first, second]
                for target in targets:
                    assert _post(target.url, [message]).status_code == 200
        _settle_store(store, settings.key_prefix)
        for phone in phones:
            assert answered(fresh_graph, phone) == sent[phone]
            callbacks = [b["biz_opaque_callback_data"] for b in fresh_graph.messages_to(phone)]
            assert len(callbacks) == len(set(callbacks)), "a reply went out twice"
    finally:
        first.stop()
        second.stop()


def test_a_killed_worker_s_member_is_picked_up_and_answered_once(
    shared: tuple[Settings, StateStore], tmp_path: Path, fresh_graph: FakeGraph
) -> None:
    settings, store = shared
    phone = new_phone()
    doomed = ServeProcess(settings.override(workers=1), tmp_path / "doomed.log")
    fresh_graph.delay = 30.0  # the reply to the first message hangs: the worker is mid-message
    first, second = wh.text(phone, "hi"), wh.text(phone, "hello again")
    assert _post(doomed.url, [first, second]).status_code == 200
    # The first message's turn is committed and its reply is being sent: kill it there.
    _wait_for(lambda: _committed(store, phone))
    time.sleep(0.2)
    doomed.kill()
    versions_before = store.get(f"whatsapp:{phone}")
    assert versions_before is not None
    fresh_graph.delay = 0.0
    rescuer = ServeProcess(settings, tmp_path / "rescuer.log")
    try:
        _settle_store(store, settings.key_prefix)
        # Both messages are answered, in order; the first one's state change was
        # committed once (by the dead worker), the second's by the rescuer.
        assert answered(fresh_graph, phone) == [first["id"], second["id"]]
        trail = store.audit_read(store.route(f"whatsapp:{phone}") or f"whatsapp:{phone}")
        versions = [e.version_after for e in trail if e.version_after is not None]
        assert versions == sorted(versions)
        after = store.get(store.route(f"whatsapp:{phone}") or f"whatsapp:{phone}")
        assert after is not None
        assert after.version - versions_before.version <= 1  # only the second message wrote
    finally:
        rescuer.stop()


def test_the_store_stopped_gets_503_and_everything_is_processed_after_restart(
    prefix: str, tmp_path: Path, fresh_graph: FakeGraph
) -> None:
    server = EmbeddedValkey(Settings(data_dir=tmp_path / "valkey"))
    server.acquire()
    settings = service_settings(server.url, prefix, tmp_path / "data", fresh_graph.url)
    phone = new_phone()
    try:
        with serving(settings) as running:
            before = wh.text(phone, "hi")
            running.send(before)
            settle(running)
            server.release()  # the store goes away (its only owner lets go)
            during = wh.text(phone, "are you there?")
            refused = running.post(wh.payload([during]))
            assert refused.status_code == 503
            assert "not queued" in refused.json()["error"]
            assert running.http.get("/healthz").status_code == 503
            server.acquire()  # back, with its AOF
            _wait_healthy(running)
            running.send(during)  # Meta redelivers what got a 503
            settle(running)
            assert answered(fresh_graph, phone) == [before["id"], during["id"]]
    finally:
        server.release()


def _committed(store: StateStore, phone: str) -> bool:
    snap = store.get(f"whatsapp:{phone}")
    return snap is not None and snap.version >= 2


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _wait_healthy(running: Running, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while running.http.get("/healthz").status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover"
        time.sleep(0.1)


def _metric(text: str, prefix: str) -> float:
    """The sum of the samples whose line starts with ``prefix`` (name and labels)."""
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_workers_are_processes_restarted_when_they_die_and_gone_with_their_parent(
    shared: tuple[Settings, StateStore], tmp_path: Path, fresh_graph: FakeGraph
) -> None:
    settings, store = shared
    serve = ServeProcess(settings.override(workers=2), tmp_path / "serve.log")
    try:
        _wait_for(lambda: len(serve.worker_pids()) == 2)
        phone = new_phone()
        first = wh.text(phone, "hi")
        assert _post(serve.url, [first]).status_code == 200
        _settle_store(store, settings.key_prefix)
        assert answered(fresh_graph, phone) == [first["id"]]

        # /metrics adds the workers' counters to the webhook process's own (a worker
        # writes its changes every half second: statehq.metrics_buffer).
        def scraped() -> str:
            return httpx.get(f"{serve.url}/metrics", timeout=5).text

        _wait_for(lambda: _metric(scraped(), "statehq_messages_out_total{") >= 1, timeout=5)
        text = scraped()
        assert _metric(text, "statehq_messages_out_total{") >= 1
        assert _metric(text, 'statehq_store_operation_seconds_count{operation="inbox_next"}') >= 1
        assert _metric(text, 'statehq_store_operation_seconds_count{operation="inbox_push"}') >= 1
        assert text.count("# TYPE statehq_store_operation_seconds histogram") == 1

        # A worker that dies is replaced, and messages are still answered.
        victim = serve.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: victim not in serve.worker_pids() and len(serve.worker_pids()) == 2)
        second = wh.text(phone, "hello again")
        assert _post(serve.url, [second]).status_code == 200
        _settle_store(store, settings.key_prefix)
        assert answered(fresh_graph, phone) == [first["id"], second["id"]]

        # A SIGKILLed statehq serve takes its workers with it: no orphan goes on sending.
        workers = serve.worker_pids()
        serve.kill()
        _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers))
    finally:
        serve.stop()
