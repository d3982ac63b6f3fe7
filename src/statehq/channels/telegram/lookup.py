"""Asking the Bot API about the bot: does the token work, and where do updates go?

``getMe`` answers the bot when ``TELEGRAM_BOT_TOKEN`` is right (401 when it is not);
``getWebhookInfo`` answers the URL Telegram posts updates to, how many wait, and the
last error Telegram met posting them. ``statehq doctor`` runs it; nothing is sent to
anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...redact import redact_text
from .bot_api import BotApi, CallResult
from .problems import explain

LOOKUP_TIMEOUT = 5.0  # seconds; Telegram answers in well under one
WEBHOOK_PATH = "/webhooks/telegram"


@dataclass(frozen=True)
class Bot:
    """The bot as the Bot API describes it, and its webhook."""

    id: int
    username: str
    webhook_url: str
    pending_updates: int
    last_error: str | None
    webhook_problem: str | None = None
    """Why the webhook is unknown (getWebhookInfo failed, or answered no WebhookInfo): then
    ``webhook_url`` is empty because nothing was read, not because none is set."""


@dataclass(frozen=True)
class Lookup:
    """What came of a lookup: the ``bot``, or the ``problem`` and, if known, the ``fix``."""

    bot: Bot | None
    problem: str = ""
    fix: str | None = None


def look_up_bot(api_url: str, token: str, *, timeout: float = LOOKUP_TIMEOUT) -> Lookup:
    """Ask the Bot API at ``api_url`` about the bot of ``token``; never raises for a failure."""
    with BotApi(api_url, token, attempts=1, timeout=timeout) as api:
        me = api.call("getMe")
        if not me.ok or not isinstance(me.result, dict):
            problem, fix = explain(api_url, me)
            return Lookup(None, problem, fix)
        hook = api.call("getWebhookInfo")
    info, unread = _webhook_info(api_url, hook)
    error = info.get("last_error_message")
    bot = Bot(
        id=_whole(me.result.get("id")),
        username=str(me.result.get("username") or ""),
        webhook_url=str(info.get("url") or ""),
        pending_updates=_whole(info.get("pending_update_count")),
        last_error=str(error)[:300] if error else None,
        webhook_problem=unread,
    )
    return Lookup(bot)


def _webhook_info(api_url: str, hook: CallResult) -> tuple[dict[str, Any], str | None]:
    """The WebhookInfo of a getWebhookInfo call, or ``{}`` and why there is none.

    A failed call (throttled, a 5xx) is not "no webhook": saying so would send the
    operator to setWebhook, which replaces a webhook that may work.
    """
    if not hook.ok:
        return {}, explain(api_url, hook)[0]
    info = hook.result
    url = info.get("url") if isinstance(info, dict) else None
    pending = info.get("pending_update_count", 0) if isinstance(info, dict) else None
    if not isinstance(info, dict) or not isinstance(url, str) or type(pending) is not int:
        shown = redact_text(repr(info)[:80])
        return {}, f"getWebhookInfo answered {shown}, not a WebhookInfo"
    return info, None


def _whole(value: Any) -> int:
    """A count or id the Bot API answered: 0 unless it is a whole number."""
    return value if type(value) is int else 0


def webhook_hint(bot: Bot) -> str | None:
    """What to do about the bot's webhook, or None when it looks right."""
    setup = (
        "call setWebhook with url=https://<your host>/webhooks/telegram and secret_token="
        "$TELEGRAM_SECRET_TOKEN (README: Telegram)"
    )
    if bot.webhook_problem:
        return f"the webhook could not be read ({bot.webhook_problem}): run doctor again"
    if not bot.webhook_url:
        return f"no webhook is set, so Telegram sends statehq no updates: {setup}"
    if not bot.webhook_url.rstrip("/").endswith(WEBHOOK_PATH):
        return f"the webhook is {bot.webhook_url}, not statehq's {WEBHOOK_PATH}: {setup}"
    if bot.last_error:
        return f"Telegram's last attempt to post an update failed: {bot.last_error}"
    return None
