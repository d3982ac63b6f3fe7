"""What a Graph API error means for an operator, and the warning that says what to fix.

Meta answers a failed call with ``error.code`` (and sometimes ``error.error_subcode``).
Most codes that reach a running service are a setup problem, the same for every reply
until someone fixes it: :data:`FIXES` says, for each known code, what to do.
:func:`report_failure` logs a failed send as a warning with that fix, at most once per
cause per minute in each process (:class:`~statehq.log_throttle.LogThrottle`), so a bad
token is one line a minute, not one per reply. ``statehq doctor`` explains the errors
of its own Graph call with the same table.
"""

from __future__ import annotations

from ...log_throttle import LogThrottle
from ...redact import get_logger, redact_text
from .graph import SendResult

log = get_logger(__name__)

TOKEN_FIX = "the access token is invalid or expired: set WHATSAPP_ACCESS_TOKEN to a new token"
PHONE_NUMBER_ID_FIX = (
    "WHATSAPP_PHONE_NUMBER_ID is not a phone number id this token can use: copy it from "
    "WhatsApp > API Setup"
)
PERMISSION_FIX = (
    "the access token lacks a permission for this number: give its system user the "
    "whatsapp_business_messaging permission and the WhatsApp account (Business settings > "
    "System users), then set WHATSAPP_ACCESS_TOKEN to a token made after that"
)
NETWORK_FIX = (
    "check WHATSAPP_GRAPH_URL (default https://graph.facebook.com/v23.0) and that this "
    "host can reach it (DNS, proxy, firewall)"
)

FIXES: dict[tuple[int, int | None], str] = {
    (190, None): TOKEN_FIX,
    (100, 33): PHONE_NUMBER_ID_FIX,
    (131047, None): (
        "more than 24 hours have passed since the member last wrote: only a template "
        "message reaches them until they write again"
    ),
    (131026, None): (
        "the member's number cannot receive it (not on WhatsApp, an old app, or Meta's "
        "terms not accepted): nothing to change in statehq"
    ),
    (130429, None): (
        "the Cloud API throughput limit was hit (retried with backoff): spread the load, or "
        "ask Meta for a higher throughput"
    ),
    (131056, None): (
        "too many messages to one member in a short time (retried with backoff): send "
        "fewer replies per turn"
    ),
    (80007, None): (
        "the WhatsApp Business Account's rate limit was hit: wait, and make fewer Graph API calls"
    ),
    (4, None): "the app's Graph API call limit was hit: wait, and make fewer calls",
    (10, None): PERMISSION_FIX,
    (200, None): PERMISSION_FIX,
}
"""Graph error ``(code, subcode)`` -> what to do; ``(code, None)`` matches any subcode."""

THROTTLE = LogThrottle()
"""One warning per cause per minute, shared by every sender of this process."""


def fix_for(code: int | None, subcode: int | None = None) -> str | None:
    """What to do about Graph error ``code`` (with ``subcode``), or None if it is not known."""
    if code is None:
        return None
    return FIXES.get((code, subcode)) or FIXES.get((code, None))


def explain(
    graph_url: str, status: int | None, code: int | None, subcode: int | None, detail: str
) -> tuple[str, str | None]:
    """(what went wrong, what to do) for a failed Graph call, in words; no secrets.

    ``status`` None: no answer came (``detail`` says why); ``code`` None: the answer was
    not a Graph API error.
    """
    detail = redact_text(detail)
    if status is None:
        return f"the Graph API at {graph_url} did not answer ({detail})", NETWORK_FIX
    if code is None:
        return f"the Graph API at {graph_url} answered HTTP {status}: {detail}", None
    shown = f"{code}/{subcode}" if subcode is not None else f"{code}"
    return f"Graph API error {shown} (HTTP {status}): {detail}", fix_for(code, subcode)


def report_failure(result: SendResult, graph_url: str, what: str = "a reply") -> None:
    """Log a failed send as a warning with its fix, at most once per cause per minute."""
    if result.ok:
        return
    problem, fix = explain(graph_url, result.status, result.code, result.subcode, result.detail)
    cause = (result.code, result.subcode) if result.code is not None else result.failure_label
    if fix is None:
        THROTTLE.warning(log, cause, "WhatsApp could not send %s: %s", what, problem)
    else:
        THROTTLE.warning(log, cause, "WhatsApp could not send %s: %s. Fix: %s", what, problem, fix)
