"""What a Bot API error means for an operator, and the warning that says what to fix.

Most errors that reach a running service are a setup problem, the same for every reply
until someone fixes it (a revoked token), or news about one member (they blocked the
bot). :func:`explain` says which, with the fix; :func:`report_failure` logs a failed
call as a warning at most once per cause per minute in each process, so a bad token is
one line a minute, not one per reply. ``statehq doctor`` explains its own calls with it.
"""

from __future__ import annotations

from ...log_throttle import LogThrottle
from ...redact import get_logger, redact_text
from .bot_api import CallResult

log = get_logger(__name__)

TOKEN_FIX = (
    "the bot token is wrong or was revoked: set TELEGRAM_BOT_TOKEN to the token @BotFather "
    "shows (/mybots > your bot > API Token)"
)
NOT_FOUND_FIX = (
    "the Bot API answered 404: TELEGRAM_BOT_TOKEN is not a whole token, or TELEGRAM_API_URL "
    "is not a Bot API server (default https://api.telegram.org)"
)
NETWORK_FIX = (
    "check TELEGRAM_API_URL (default https://api.telegram.org) and that this host can reach "
    "it (DNS, proxy, firewall)"
)
BLOCKED_FIX = "the member blocked the bot or left Telegram: nothing to change in statehq"
FLOOD_FIX = (
    "Telegram's flood limit was hit (retried after the wait it asked for): send fewer "
    "replies per turn, or spread the load"
)
FIXES: dict[int, str] = {401: TOKEN_FIX, 404: NOT_FOUND_FIX, 403: BLOCKED_FIX, 429: FLOOD_FIX}

THROTTLE = LogThrottle()
"""One warning per cause per minute, shared by every Bot API client of this process."""


def explain(api_url: str, result: CallResult) -> tuple[str, str | None]:
    """(what went wrong, what to do) for a failed call, in words; no secrets."""
    detail = redact_text(result.description)
    if result.status is None:
        problem = f"the Bot API at {api_url} did not answer {result.method} ({detail})"
        return problem, NETWORK_FIX
    code = result.error_code or result.status
    problem = f"Bot API error {code} on {result.method}: {detail}"
    if code == 400 and "chat not found" in detail.lower():
        return problem, "the member never started the bot (or it is another bot's chat)"
    return problem, FIXES.get(code)


def report_failure(result: CallResult, api_url: str) -> None:
    """Log a failed call as a warning with its fix, at most once per cause per minute."""
    if result.ok:
        return
    problem, fix = explain(api_url, result)
    cause = ("telegram", result.failure_label, result.method)
    if fix is None:
        THROTTLE.warning(log, cause, "Telegram: %s", problem)
    else:
        THROTTLE.warning(log, cause, "Telegram: %s. Fix: %s", problem, fix)
