"""The store-side measurements on a real server of their own (its counters are global)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from statehq import Settings, StateStore
from statehq.bench import missing_extras
from statehq.bench.contention import run_contention, store_settings
from statehq.bench.footprint import SEED_FIELDS, final_session, seed_keys, seed_memory
from statehq.bench.load import signed_requests, text_payload
from statehq.bench.plan import BenchPlan
from statehq.bench.traffic import per_message, read_counters
from statehq.store.embedded import EmbeddedValkey


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Valkey: nothing else moves its counters or sees its legacy-looking keys."""
    server = EmbeddedValkey(Settings(data_dir=tmp_path_factory.mktemp("bench-valkey")))
    server.acquire()
    yield server.url
    server.release()


@pytest.fixture
def client(url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(url) as opened:
        yield opened


def test_round_trips_count_requests_and_commands_count_what_scripts_run(
    client: redis.Redis,
) -> None:
    before = read_counters(client)
    for n in range(10):
        client.eval(
            "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])", 1, "k", n
        )
    pipe = client.pipeline(transaction=False)
    for _ in range(10):
        pipe.get("k")
    pipe.execute()  # ten commands, one round trip
    traffic = per_message(before, read_counters(client), messages=10)
    assert 1.1 <= traffic.round_trips <= 1.3  # 10 evals + 1 pipeline + the INFO calls
    assert traffic.script_calls == 1.0
    assert traffic.by_command["get"] == 2.0  # one inside each script, one in the pipeline
    assert traffic.commands >= 4.0  # eval, set, get, and the pipeline's get
    assert traffic.bytes_in > 0
    assert traffic.bytes_out > 0


def test_the_seed_layout_holds_the_final_document_and_its_field_keys(client: redis.Redis) -> None:
    phone, stage, doc = final_session(3)
    assert stage == "MENU"
    assert "stage" not in doc
    assert doc["channel"] == {"type": "whatsapp", "identifier": str(phone)}
    assert "flow_data" not in doc  # the last write ended the flow
    result = seed_memory(client, sessions=5)
    assert set(result.breakdown) == {"document", "stage", *SEED_FIELDS}
    assert result.bytes_per_session == pytest.approx(sum(result.breakdown.values()), abs=0.5)
    assert result.breakdown["document"] > len(json.dumps(doc))
    assert client.exists(*seed_keys(phone).values()) == 0  # measured, then removed


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["update", "seed"])
def test_contention_counts_successes_against_what_the_server_holds(url: str, kind: str) -> None:
    with StateStore.open(url, settings=store_settings(url)) as control:
        result = run_contention(kind, url, writers=4, duration=0.3, control=control)
    assert result.writers == 4
    assert result.successes > 0
    assert result.lost == 0  # both are atomic: every success is on the server
    assert result.attempts == result.successes + result.failed
    if kind == "update":
        assert result.checks["writers_last_value_present"]


def test_requests_carry_what_meta_sends_and_are_signed() -> None:
    body = text_payload("263771234567")
    contact = body["entry"][0]["changes"][0]["value"]["contacts"][0]
    assert contact["wa_id"] == "263771234567"
    assert contact["user_id"].startswith("US.")
    assert len(contact["user_id"]) == 23
    raw = signed_requests(3, 5, 11, "secret")[0]
    head, payload = raw.split(b"\r\n\r\n", 1)
    signature = hmac.new(b"secret", payload, hashlib.sha256).hexdigest()
    assert f"X-Hub-Signature-256: sha256={signature}".encode() in head


def test_the_quick_plan_does_every_step_with_less_work() -> None:
    quick, full = BenchPlan.for_run(True), BenchPlan.for_run(False)
    assert quick.writers == full.writers
    assert quick.processes == full.processes
    assert quick.contention_s < full.contention_s
    assert quick.messages < full.messages
    assert quick.memory_sessions < full.memory_sessions
    assert quick.paced_requests < full.paced_requests


def test_a_run_without_the_bench_extra_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "aiogram" else real(name)
    )
    assert "aiogram" in missing_extras("all")
    assert "aiogram" in missing_extras("store")
    assert "aiogram" not in missing_extras("service")
    assert missing_extras("soak") == []


def test_the_makefile_installs_the_bench_extra_for_make_bench_only() -> None:
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    bench = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "statehq bench --output docs/benchmarks" in bench
    assert "'.[dev,bench]'" in makefile
    install = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    assert "'.[dev,aiogram]'" in install  # make test: the aiogram adapter's extra, no bench
    assert "bench" not in install
