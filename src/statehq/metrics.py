"""Prometheus metrics statehq records (exported by the service at ``/metrics``).

Labels never carry member ids, tokens or message text: only kinds and outcomes.
"""

from __future__ import annotations

from prometheus_client import Counter

RECOVERIES = Counter(
    "statehq_recoveries_total",
    "Sessions recovered from corrupt or invalid stored state, by outcome.",
    ["outcome"],
)
REFUSED_WRITES = Counter(
    "statehq_state_refused_total",
    "State writes refused by the validator.",
)
REFUSED_TRANSITIONS = Counter(
    "statehq_transitions_refused_total",
    "Stage transitions refused because they were not declared.",
)
EXPIRIES = Counter(
    "statehq_session_expiries_total",
    "Sessions found expired when their member came back.",
)
TOKEN_REFRESHES = Counter(
    "statehq_token_refreshes_total",
    "Backend token refreshes, by outcome.",
    ["outcome"],
)
IDENTITY_CHANGES = Counter(
    "statehq_identity_changes_total",
    "Channel identities bound to or unbound from members.",
    ["change"],
)
FLOW_FAILURES = Counter(
    "statehq_flow_failures_total",
    "Messages whose handling failed and were answered with an apology, by error kind.",
    ["kind"],
)
STALE_TAPS = Counter(
    "statehq_stale_taps_total",
    "Taps on a menu that was no longer current (answered, never applied).",
)
