"""Memory per session (issue 17): the measurement, and the 4 KB goal it checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from statehq import Settings
from statehq.bench.conversation import conversation, session_key
from statehq.bench.memory import kind_of, session_memory
from statehq.store.embedded import EmbeddedValkey


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private embedded Valkey, configured as statehq configures it."""
    server = EmbeddedValkey(Settings(data_dir=tmp_path_factory.mktemp("memory-valkey")))
    server.acquire()
    yield server.url
    server.release()


def test_a_credex_session_with_ten_versions_fits_in_4_kb(url: str) -> None:
    measured = session_memory(url, 40)
    per = measured["per_session"]
    assert measured["updates"] == 12
    assert measured["encodings"] == {"doc": "listpack", "history": "listpack", "audit": "stream"}
    assert per["state"] == pytest.approx(per["doc"] + per["history"] + per["markers"], abs=0.2)
    assert per["state"] <= 4096
    assert per["history"] < 3 * per["doc"]  # one full copy and small patches, not ten copies
    assert min(per["dedup"], per["audit"], per["audit_tail"]) > 0
    assert per["other"] == 0
    assert per["total"] == pytest.approx(
        sum(v for k, v in per.items() if k not in ("state", "total")), abs=1
    )


def test_the_measurement_leaves_nothing_behind(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        before = client.dbsize()
        session_memory(url, 3)
        assert client.dbsize() == before


def test_the_measurement_runs_on_every_topology(server_url: str) -> None:
    measured = session_memory(server_url, 3)
    per = measured["per_session"]
    assert per["other"] == 0
    assert min(per["doc"], per["history"], per["markers"], per["audit"]) > 0
    assert "hash-max-listpack-value" in measured["server"]


def test_keys_are_counted_by_kind() -> None:
    base = "p:{member:1}"
    kinds = {
        f"{base}:doc": "doc",
        f"{base}:hist": "history",
        f"{base}:seen": "markers",
        f"{base}:fence": "markers",
        f"{base}:msg:wamid.X:Y": "dedup",
        f"{base}:audit": "audit",
        "p:audit-tail": "audit_tail",
        "p:audit-tail:3": "audit_tail",
        f"{base}:inbox": "other",
    }
    assert {key: kind_of(key) for key in kinds} == kinds


def test_the_conversation_is_twelve_distinct_credex_writes() -> None:
    turns = conversation(7)
    assert len(turns) == 12
    assert len({turn.message_id for turn in turns}) == 12
    assert turns[2].patch["member_id"] == session_key(7).removeprefix("member:")
    assert conversation(8)[2].patch["jwt_token"] != turns[2].patch["jwt_token"]
