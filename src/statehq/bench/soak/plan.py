"""The soak benchmark's plan and results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ...testing.topologies import (
    Cluster,
    SentinelSet,
    Standalone,
)

APP_SECRET = "soak-app-secret"
ACCESS_TOKEN = "soak-access-token"
PREFIX = "soak"
DEFAULTS = "defaults"
MIN_REPLICAS = "min-replicas-to-write 1"
SETTINGS = (DEFAULTS, MIN_REPLICAS)
NO_ANSWER = "no answer"
Progress = Callable[[str], None]
Topology = Standalone | Cluster | SentinelSet


@dataclass(frozen=True)
class SoakPlan:
    """How many members, how fast, how long; for the steady load and the failover."""

    members: int
    rate: float  # events/s: a message, a burst of messages, or a status
    seconds: float
    failover_members: int
    failover_rate: float
    failover_before: float  # seconds of load before the master is killed
    failover_after: float  # seconds of load after the kill
    topologies: tuple[str, ...] = ("standalone", "cluster")
    failovers: tuple[str, ...] = ("cluster", "sentinel")
    settings: tuple[str, ...] = SETTINGS
    processes: int = 2
    workers: int = 2
    burst_share: float = 0.1
    duplicate_share: float = 0.05
    status_share: float = 0.15
    drain_seconds: float = 120.0  # at most, once the load ends, for the replies to arrive
    warmup: float = 5.0  # seconds of load left out of the latencies (cold workers)

    @classmethod
    def for_run(cls, quick: bool) -> SoakPlan:
        """Short runs for a smoke test, minutes per topology for figures worth keeping."""
        if quick:
            return cls(1000, 50.0, 10.0, 300, 40.0, 3.0, 8.0, warmup=2.0)
        return cls(10_000, 100.0, 150.0, 2000, 60.0, 10.0, 30.0)


@dataclass
class Tally:
    """What one run's traffic and the fake Graph API's replies add up to."""

    messages: int = 0  # distinct messages sent
    deliveries: int = 0  # webhook requests that were answered 200
    duplicates_sent: int = 0  # messages delivered a second time on purpose
    statuses_sent: int = 0
    acknowledged: int = 0  # distinct messages answered 200
    unacknowledged: int = 0  # never answered 200 before the load generator gave up
    processed: int = 0  # distinct messages the fake Graph API got a reply to
    lost: int = 0  # acknowledged, never answered
    duplicated: int = 0  # replies (<id>#<n>) delivered more than once
    order_violations: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # HTTP status -> requests
    reply_p50_ms: float = 0.0
    reply_p99_ms: float = 0.0
    reply_max_ms: float = 0.0
    ack_p50_ms: float = 0.0
    ack_p99_ms: float = 0.0


@dataclass
class SoakResult:
    """The steady load on one topology."""

    topology: str
    members: int
    seconds: float
    tally: Tally
    processed_per_second: float = 0.0
    sessions: int = 0
    memory_before: int = 0  # used_memory of the masters, summed
    memory_after: int = 0
    backlog_before: int = 0  # mem_replication_backlog of the masters, summed
    backlog_after: int = 0
    bytes_per_session: float = 0.0  # used_memory's growth over the sessions
    data_per_session: float = 0.0  # the same less the replication backlog's growth
    by_kind: dict[str, float] = field(default_factory=dict)  # key kind -> bytes per session


@dataclass
class FailoverResult:
    """A master killed under load, on one topology with one setting."""

    topology: str
    setting: str
    tally: Tally
    failover_s: float = 0.0  # from the kill until a replica serves the killed master's data
    webhook_outage_s: float = 0.0  # from the kill until the last answer other than 200
    reply_stall_s: float = 0.0  # the longest time no reply at all went out, after the kill
    processed_after: int = 0  # messages sent after the failover that were answered
    lost_why: dict[str, int] = field(default_factory=dict)


@dataclass
class SoakResults:
    """Everything one soak run measured."""

    loads: list[SoakResult] = field(default_factory=list)
    failovers: list[FailoverResult] = field(default_factory=list)
    seconds: float = 0.0  # the whole run, start-ups included
