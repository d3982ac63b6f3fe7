"""Prometheus metrics statehq records (exported by the service at ``/metrics``).

Labels never carry member ids, tokens or message text: only kinds and outcomes. In a
worker process (multiprocess mode) changes are written to the metrics files in batches
(:mod:`statehq.metrics_buffer`), so ``/metrics`` may lag a worker by half a second.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .metrics_buffer import buffer_multiprocess_values

buffer_multiprocess_values()  # before the first metric below is made

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

# -- the service: store operations, inbox, messages ---------------------------------------

STORE_OPERATIONS = Histogram(
    "statehq_store_operation_seconds",
    "Round trips to Redis/Valkey by script or command name (count and latency).",
    ["operation"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
CONFLICTS = Counter(
    "statehq_conflicts_total",
    "Compare-and-set writes that found another version and were retried.",
)
TURN_RETRIES = Counter(
    "statehq_turn_retries_total",
    "Messages run again because their commit met a concurrent write.",
)
LEASE_WAITS = Counter(
    "statehq_lease_waits_total",
    "Times a worker found a member's lease held by another worker and moved on.",
)
DEDUP_HITS = Counter(
    "statehq_dedup_hits_total",
    "Updates recognised as already received or already applied, by where.",
    ["where"],
)
MESSAGES_IN = Counter(
    "statehq_messages_in_total",
    "Inbound updates by kind (text, button, list, unsupported, system, status, ...).",
    ["kind"],
)
MESSAGES_OUT = Counter(
    "statehq_messages_out_total",
    "Messages sent to members by type (text, buttons, list, read).",
    ["type"],
)
SEND_FAILURES = Counter(
    "statehq_send_failures_total",
    "Sends that failed, by Graph API error code (or HTTP status / 'network').",
    ["code"],
)
SEND_RETRIES = Counter(
    "statehq_send_retries_total",
    "Send attempts repeated after a retryable failure, by code.",
    ["code"],
)
OLD_MESSAGES = Counter(
    "statehq_old_messages_total",
    "Messages older than STATEHQ_MAX_MESSAGE_AGE: recorded, not answered.",
)

UPDATES_REJECTED = Counter(
    "statehq_updates_rejected_total",
    "Signed webhook updates that were malformed: recorded and skipped, by reason.",
    ["reason"],
)
MESSAGE_FAILURES = Counter(
    "statehq_message_failures_total",
    "Times handling one queued update raised (it is retried with backoff), by error type.",
    ["error"],
)
DEAD_LETTERS = Counter(
    "statehq_dead_letters_total",
    "Updates set aside as dead letters after failing STATEHQ_MAX_ATTEMPTS times, or unreadable.",
)
WORKER_ERRORS = Counter(
    "statehq_worker_errors_total",
    "Errors a worker met outside one update's handling (store trouble, bugs); it went on.",
    ["error"],
)
INBOX_REMARKED = Counter(
    "statehq_inbox_remarked_total",
    "Senders with queued work the reconciler found unmarked and marked ready again.",
)
STORE_RESTARTS = Counter(
    "statehq_store_restarts_total",
    "Times the supervisor restarted the embedded Valkey server after it died.",
)

# Gauges filled when /metrics is scraped (read from the store, so every process agrees).
QUEUE_SENDERS = Gauge(
    "statehq_inbox_senders",
    "Members with updates waiting in their inbox.",
)
QUEUE_DEPTH = Gauge(
    "statehq_inbox_depth",
    "Updates waiting in inboxes (summed over the first 1000 waiting members).",
)
QUEUE_AGE = Gauge(
    "statehq_inbox_oldest_seconds",
    "How long the longest-waiting member has been due (0 when nobody waits).",
)
SESSIONS_BY_STAGE = Gauge(
    "statehq_sessions",
    "Live sessions by stage (counted over at most 5000 sessions per scrape).",
    ["stage"],
)

# -- WhatsApp, by business number ---------------------------------------------------------

WHATSAPP_NUMBER_MESSAGES = Counter(
    "statehq_whatsapp_messages_total",
    "WhatsApp messages by business number (its phone number id, or default) and direction: "
    "received (in a webhook request) or sent (accepted by the Graph API).",
    ["number", "direction"],
)
