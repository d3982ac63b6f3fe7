"""``statehq migrate``, run as a real process, over legacy data the test writes into a
real server of every topology.

The legacy keys share the server with the test's statehq store (its own key prefix);
every legacy key holds the test's random tag, and ``--match`` keeps each test to its own.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from statehq import StateStore
from statehq.store import clients


def make_jwt(subject: str) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": subject, "exp": int(time.time()) + 300}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


@dataclass(frozen=True)
class Legacy:
    """The legacy sessions one test wrote: numbers, keys and what they should become."""

    tag: str

    def number(self, n: int) -> str:
        return f"26377{self.tag}{n}"

    @property
    def match(self) -> str:
        return f"*{self.tag}*"

    @property
    def channel_key(self) -> str:  # (a), a signed-in member mid-offer
        return f"channel:{self.number(1)}"

    @property
    def broken_key(self) -> str:  # (a), bad JSON
        return f"channel:{self.number(2)}"

    def cache_key(self, suffix: str = "") -> str:  # (b), behind Django's cache prefix
        return f":1:{self.number(3)}{suffix}"

    @property
    def user_state_key(self) -> str:  # (c), a signed-in member at the menu
        return f"user_state:{self.number(4)}"

    @property
    def odd_user_state_key(self) -> str:  # (c), an unknown stage and a token that is not one
        return f"user_state:{self.number(5)}"

    @property
    def member_a(self) -> str:
        return f"m-{self.tag}-a"

    @property
    def member_c(self) -> str:
        return f"m-{self.tag}-c"


ACCOUNT = {"accountID": "acc-1", "accountHandle": "ann", "accountName": "Ann"}
STATEHQ_ACCOUNT = {"id": "acc-1", "handle": "ann", "name": "Ann"}


def write_legacy(client: Any, legacy: Legacy) -> dict[str, int]:
    """All three layouts with TTLs, broken data included; returns each key's TTL."""
    token_a, token_c = make_jwt(legacy.member_a), make_jwt(legacy.member_c)
    values: dict[str, tuple[bytes, int]] = {
        legacy.channel_key: (
            json.dumps(
                {
                    "channel": {"type": "whatsapp", "identifier": legacy.number(1)},
                    "auth": {"token": token_a},
                    "dashboard": {
                        "member": {"memberID": legacy.member_a, "firstname": "Ann"},
                        "accounts": [ACCOUNT],
                        "pendingInData": [],
                    },
                    "active_account_id": "acc-1",
                    "component_data": {"path": "offer", "component": "amount", "data": {}},
                }
            ).encode(),
            250,
        ),
        legacy.broken_key: (b'{"channel": {"type": "whatsapp",', 100),
        legacy.cache_key(): (pickle.dumps({"profile": {"firstname": "Bo"}}), 200),
        legacy.cache_key("_stage"): (pickle.dumps("handle_action_menu"), 200),
        legacy.cache_key("_option"): (pickle.dumps("handle_action_offer_credex"), 200),
        legacy.cache_key("_direction"): (pickle.dumps("OUT"), 150),
        legacy.cache_key("_jwt_token"): (pickle.dumps("not-a-jwt"), 200),
        legacy.user_state_key: (
            json.dumps(
                {
                    "stage": "MENU",
                    "jwt_token": token_c,
                    "profile": {"member": {"memberID": legacy.member_c}},
                    "current_account": ACCOUNT,
                    "flow_data": None,
                }
            ).encode(),
            280,
        ),
        legacy.odd_user_state_key: (
            json.dumps({"stage": "NOWHERE", "option": "2", "jwt_token": "garbage"}).encode(),
            260,
        ),
    }
    for key, (raw, ttl) in values.items():
        client.set(key, raw, ex=ttl)
    return {key: ttl for key, (_, ttl) in values.items()}


@pytest.fixture
def source(server_url: str) -> Iterator[Any]:
    """A plain client on the test server, as the seed project's bot had."""
    client = clients.sync_client(clients.parse(server_url), timeout=5, ca_file=None, retry={})
    yield client
    clients.close(client)


@pytest.fixture
def legacy(source: Any) -> Iterator[Legacy]:
    written = Legacy(f"{random.randrange(10**6):06d}")
    keys = write_legacy(source, written)
    yield written
    source.delete(*keys)


def migrate(
    server_url: str | None, prefix: str, data_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``statehq migrate ARGS`` into the store at ``server_url`` (None: the embedded one)."""
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir), "STATEHQ_KEY_PREFIX": prefix}
    env.pop("STATEHQ_REDIS_URL", None)
    store = ("--url", server_url) if server_url else ()
    return subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", "migrate", *store, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def by_source(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {key["source"]: key for key in json.loads(result.stdout)["keys"]}


def test_dry_run_then_real_run_then_a_second_run(
    server_url: str, prefix: str, data_dir: Path, legacy: Legacy, source: Any
) -> None:
    args = ("--from", server_url, "--match", legacy.match, "--json")
    dry = migrate(server_url, prefix, data_dir, *args, "--dry-run")
    assert dry.returncode == 1, dry.stderr  # the broken key cannot be migrated
    planned = by_source(dry)
    assert {key: item["outcome"] for key, item in planned.items()} == {
        legacy.channel_key: "would migrate",
        legacy.broken_key: "skipped",
        legacy.cache_key(): "would migrate",
        legacy.user_state_key: "would migrate",
        legacy.odd_user_state_key: "would migrate",
    }
    assert "not valid JSON" in planned[legacy.broken_key]["reason"]
    sessions = {item["session"] for item in planned.values() if item["session"]}
    assert sessions == {
        f"member:{legacy.member_a}",
        f"whatsapp:{legacy.number(3)}",
        f"member:{legacy.member_c}",
        f"whatsapp:{legacy.number(5)}",
    }
    with StateStore.open(url=server_url, key_prefix=prefix) as store:
        assert all(store.get(key) is None for key in sessions)  # the dry run wrote nothing

        real = migrate(server_url, prefix, data_dir, *args)
        assert real.returncode == 1, real.stderr
        done = by_source(real)
        assert [done[key]["outcome"] for key in sorted(done) if key != legacy.broken_key] == [
            "migrated"
        ] * 4
        check_documents(store, legacy)
        check_unmapped(done, legacy)
        assert store.audit_read(f"member:{legacy.member_a}")[-1].event == "session.migrated"

        again = migrate(server_url, prefix, data_dir, *args)
        assert again.returncode == 1, again.stderr
        assert {item["outcome"] for item in by_source(again).values()} == {"unchanged", "skipped"}
        assert json.loads(again.stdout)["summary"]["unchanged"] == 4
        assert all(store.get(key).version == 1 for key in sessions)  # type: ignore[union-attr]
    assert source.exists(legacy.channel_key, legacy.cache_key(), legacy.user_state_key) == 3


def check_documents(store: StateStore, legacy: Legacy) -> None:
    """The statehq sessions the legacy ones became, TTLs kept."""
    member_a = store.get(f"member:{legacy.member_a}")
    assert member_a is not None
    assert member_a.doc["authenticated"] is True
    assert member_a.doc["channel"] == {"type": "whatsapp", "identifier": legacy.number(1)}
    # credex-core's names become the ones statehq's bots read (account["id"])
    assert member_a.doc["profile"]["accounts"] == [STATEHQ_ACCOUNT]
    assert member_a.doc["current_account"] == STATEHQ_ACCOUNT
    assert (member_a.doc["stage"], member_a.doc["flow_data"]["step"]) == ("offer", "amount")
    assert member_a.ttl is not None
    assert 200 < member_a.ttl <= 250
    assert store.route(f"whatsapp:{legacy.number(1)}") == f"member:{legacy.member_a}"

    cached = store.get(f"whatsapp:{legacy.number(3)}")
    assert cached is not None
    assert cached.doc["profile"] == {"firstname": "Bo"}
    assert (cached.doc["stage"], cached.doc["authenticated"]) == ("INIT", False)
    assert "jwt_token" not in cached.doc
    assert cached.ttl is not None
    assert 150 < cached.ttl <= 200  # the longest-lived of its keys

    member_c = store.get(f"member:{legacy.member_c}")
    assert member_c is not None
    assert (member_c.doc["stage"], member_c.doc["member_id"]) == ("MENU", legacy.member_c)
    assert member_c.ttl is not None
    assert 230 < member_c.ttl <= 280

    odd = store.get(f"whatsapp:{legacy.number(5)}")
    assert odd is not None
    assert odd.doc["stage"] == "INIT"


def check_unmapped(done: dict[str, dict[str, Any]], legacy: Legacy) -> None:
    """Every field left behind is reported per key, with the reason."""

    def fields(key: str) -> dict[str, str]:
        return {item["field"]: item["why"] for item in done[key]["unmapped"]}

    assert set(fields(legacy.channel_key)) == {"dashboard.pendingInData"}
    cached = fields(legacy.cache_key())
    assert set(cached) == {"_jwt_token", "_stage", "_option", "_direction"}
    assert "not a JWT" in cached["_jwt_token"]
    assert "'handle_action_menu' is not a stage" in cached["_stage"]
    assert done[legacy.cache_key()]["source_keys"] == sorted(
        legacy.cache_key(suffix) for suffix in ("", "_stage", "_option", "_direction", "_jwt_token")
    )
    odd = fields(legacy.odd_user_state_key)
    assert "'NOWHERE' is not a stage" in odd["stage"]
    assert "not a JWT" in odd["jwt_token"]
    assert "garbage" not in json.dumps(done)


def test_delete_source_removes_only_what_was_migrated(
    server_url: str, prefix: str, data_dir: Path, legacy: Legacy, source: Any
) -> None:
    moved_on = f"whatsapp:{legacy.number(5)}"
    with StateStore.open(url=server_url, key_prefix=prefix) as store:
        store.update(moved_on, {"channel": {"type": "whatsapp", "identifier": legacy.number(5)}})
        result = migrate(
            server_url, prefix, data_dir, "--from", server_url, "--match", legacy.match,
            "--delete-source", "--json",
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        done = by_source(result)
        assert "statehq already holds" in done[legacy.odd_user_state_key]["reason"]
        assert store.get(moved_on).doc.get("stage") is None  # type: ignore[union-attr]
    assert source.exists(legacy.broken_key, legacy.odd_user_state_key) == 2
    migrated = [legacy.channel_key, legacy.user_state_key, legacy.cache_key()]
    migrated += [legacy.cache_key(s) for s in ("_stage", "_option", "_direction", "_jwt_token")]
    assert source.exists(*migrated) == 0
    assert sorted(done[legacy.cache_key()]["deleted"]) == done[legacy.cache_key()]["source_keys"]
    assert json.loads(result.stdout)["summary"]["deleted_keys"] == len(migrated)


def test_human_output_says_per_key_what_happened(
    server_url: str, prefix: str, data_dir: Path, legacy: Legacy
) -> None:
    only_c = f"user_state:*{legacy.tag}[45]"
    result = migrate(server_url, prefix, data_dir, "--from", server_url, "--match", only_c)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("from ")
    assert f"{legacy.user_state_key}: migrated -> member:{legacy.member_c} (" in result.stdout
    assert f"bound whatsapp:{legacy.number(4)}" in result.stdout
    assert "  not mapped: stage: 'NOWHERE' is not a stage of this bot" in result.stdout
    assert lines[-1].startswith("2 legacy sessions: 2 migrated; 3 fields not mapped")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "http://old-host:6379"), "argument --from: unknown scheme 'http'"),
        (("--from", "old-host:6379"), "argument --from: must be a URL such as redis://"),
        (("--from", "redis+cluster://"), "needs at least one host:port"),
        ((), "the following arguments are required: --from"),
        (("--from", "redis://h:1", "--dry-run", "--delete-source"), "leave out --delete-source"),
    ],
)
def test_bad_usage_exits_2_with_a_precise_message(
    data_dir: Path, args: tuple[str, ...], message: str
) -> None:
    result = migrate(None, "t", data_dir, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_source_that_refuses_the_connection_exits_1(data_dir: Path) -> None:
    result = migrate(None, "t", data_dir, "--from", "redis://:secret@127.0.0.1:9")
    assert result.returncode == 1
    assert "cannot reach the legacy server at redis://***@127.0.0.1:9" in result.stderr
    assert "secret" not in result.stderr
