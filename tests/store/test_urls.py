"""Every topology's URL form, read the way the store reads it."""

import pytest

from statehq import ConfigError, Settings
from statehq.store.clients import CLUSTER, SENTINEL, SINGLE, parse, with_shards


@pytest.mark.parametrize(
    ("url", "topology", "tls", "nodes"),
    [
        ("redis://h:6379/2", SINGLE, False, ()),
        ("rediss://h:6380", SINGLE, True, ()),
        ("valkey://h:6379", SINGLE, False, ()),
        ("valkeys://h:6380", SINGLE, True, ()),
        ("unix:///tmp/v.sock", SINGLE, False, ()),
        ("redis+cluster://a:7000,b:7001", CLUSTER, False, (("a", 7000), ("b", 7001))),
        ("valkeys+cluster://u:p@a:7000", CLUSTER, True, (("a", 7000),)),
        (
            "redis+sentinel://a:26379,b:26380/mymaster",
            SENTINEL,
            False,
            (("a", 26379), ("b", 26380)),
        ),
        ("valkey+sentinel://[::1]:26379/m/3", SENTINEL, False, (("::1", 26379),)),
    ],
)
def test_each_form_names_its_topology(
    url: str, topology: str, tls: bool, nodes: tuple[tuple[str, int], ...]
) -> None:
    target = parse(url)
    assert (target.topology, target.tls, target.nodes) == (topology, tls, nodes)


def test_valkey_schemes_are_aliases_of_redis() -> None:
    assert parse("valkey://h:1/0").url == "redis://h:1/0"
    assert parse("valkeys://u:p@h:1").url == "rediss://u:p@h:1"


def test_credentials_service_and_database_are_read() -> None:
    target = parse("redis+sentinel://app:p%40ss@a:26379/orders/4")
    assert (target.username, target.password) == ("app", "p@ss")
    assert (target.service, target.db) == ("orders", 4)
    assert "p@ss" not in repr(target)  # the password stays out of logs


def test_shards_are_chosen_by_topology_unless_set() -> None:
    store = Settings().store
    assert with_shards(store, parse("redis://h:1")).shards == 1
    assert with_shards(store, parse("redis+cluster://h:1")).shards == 16
    assert with_shards(store.override(shards=3), parse("redis+cluster://h:1")).shards == 3


@pytest.mark.parametrize("url", ["http://x", "redis+cluster://", "redis+mesh://h:1"])
def test_a_bad_url_is_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError, match="STATEHQ_REDIS_URL"):
        parse(url)
