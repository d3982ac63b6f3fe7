"""``statehq doctor`` on a Telegram deployment, against the fake Bot API, as a real process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from statehq.channels.telegram.problems import NETWORK_FIX, TOKEN_FIX
from statehq.testing.fake_telegram import BOT_ID, FakeTelegram
from tests.cli.test_doctor import _closed_port, doctor, here, line_of

__all__ = ["here"]  # a fixture

TOKEN = "7000000001:AAH-doctor-telegram-token-never-printed"
SECRET = "doctor-telegram-secret"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as fake:
        yield fake


def variables(telegram: FakeTelegram, **changes: str) -> dict[str, str]:
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_SECRET_TOKEN": SECRET,
        "TELEGRAM_API_URL": telegram.url,
        **changes,
    }
    return {name: value for name, value in env.items() if value}


def assert_no_secret(out: str) -> None:
    for secret in (TOKEN, SECRET, TOKEN.split(":")[1]):
        assert secret not in out


def test_a_right_token_names_the_bot_and_hints_at_the_missing_webhook(
    here: Path, telegram: FakeTelegram
) -> None:
    done = doctor(here, variables(telegram))
    assert done.returncode == 0, done.stdout + done.stderr
    assert line_of(done.stdout, "Telegram variables").startswith(
        f"ok       Telegram variables  bot token and webhook secret set; Bot API {telegram.url}"
    )
    checked = line_of(done.stdout, "Telegram Bot API")
    assert f"bot @statehq_test_bot (id {BOT_ID}); webhook: no webhook set" in checked
    assert (
        "hint: no webhook is set, so Telegram sends statehq no updates: call setWebhook" in checked
    )
    assert [c.method for c in telegram.calls()] == ["getMe", "getWebhookInfo"]
    assert_no_secret(done.stdout + done.stderr)


def test_a_webhook_elsewhere_or_failing_is_a_hint(here: Path, telegram: FakeTelegram) -> None:
    telegram.webhook = {"url": "https://old.example/hook", "pending_update_count": 3}
    elsewhere = line_of(doctor(here, variables(telegram)).stdout, "Telegram Bot API")
    assert "webhook: https://old.example/hook, 3 updates waiting" in elsewhere
    assert "not statehq's /webhooks/telegram" in elsewhere
    telegram.webhook = {
        "url": "https://bot.example/webhooks/telegram",
        "pending_update_count": 0,
        "last_error_message": "Wrong response from the webhook: 403 Forbidden",
    }
    failing = line_of(doctor(here, variables(telegram)).stdout, "Telegram Bot API")
    assert "hint: Telegram's last attempt to post an update failed: Wrong response" in failing


def test_a_webhook_telegram_would_not_describe_is_not_called_missing(
    here: Path, telegram: FakeTelegram
) -> None:
    """getWebhookInfo failing (throttled, a 5xx) or answering nonsense says so: never "no
    webhook is set" (whose advice, calling setWebhook, may replace a webhook that works),
    and never a traceback."""
    telegram.webhook = {"url": "https://bot.example/webhooks/telegram", "pending_update_count": 0}
    telegram.fail_next(1, error_code=429, retry_after=5, method="getWebhookInfo")
    done = doctor(here, variables(telegram))
    assert done.returncode == 0, done.stdout + done.stderr
    throttled = line_of(done.stdout, "Telegram Bot API")
    assert "no webhook is set" not in throttled
    assert "webhook: unknown (it could not be read)" in throttled
    assert "no webhook set" not in throttled
    assert "hint: the webhook could not be read (Bot API error 429 on getWebhookInfo" in throttled
    telegram.webhook = {"url": ["not", "a", "url"], "pending_update_count": "lots"}
    garbage = doctor(here, variables(telegram))
    assert "Traceback" not in garbage.stderr
    assert garbage.returncode == 0, garbage.stdout + garbage.stderr
    odd = line_of(garbage.stdout, "Telegram Bot API")
    assert "hint: the webhook could not be read (getWebhookInfo answered" in odd
    assert_no_secret(done.stdout + done.stderr + garbage.stdout + garbage.stderr)


def test_a_revoked_token_fails_saying_where_to_get_one(here: Path, telegram: FakeTelegram) -> None:
    revoked = "7000000001:AAH-revoked-token-000000000000"
    done = doctor(here, variables(telegram, TELEGRAM_BOT_TOKEN=revoked))
    assert done.returncode == 1
    checked = line_of(done.stdout, "Telegram Bot API")
    assert "FAILED   Telegram Bot API    Bot API error 401 on getMe: Unauthorized" in checked
    assert f"fix: {TOKEN_FIX}" in checked
    assert "1 of 6 checks failed: Telegram Bot API" in done.stderr
    assert revoked.split(":")[1] not in done.stdout + done.stderr


def test_missing_and_malformed_variables_are_named(here: Path, telegram: FakeTelegram) -> None:
    missing = doctor(here, variables(telegram, TELEGRAM_SECRET_TOKEN=""), "doctor", "--json")
    assert missing.returncode == 1
    checks = {c["name"]: c for c in json.loads(missing.stdout)["checks"]}
    assert checks["telegram_variables"]["facts"]["missing"] == ["TELEGRAM_SECRET_TOKEN"]
    assert "every webhook POST is refused" in checks["telegram_variables"]["detail"]
    assert "given to setWebhook as secret_token" in checks["telegram_variables"]["fix"]
    assert checks["telegram_bot_api"]["status"] == "ok"

    bad = doctor(here, variables(telegram, TELEGRAM_BOT_TOKEN="not a token/../x"))
    assert bad.returncode == 1
    configuration = line_of(bad.stdout, "configuration")
    assert "TELEGRAM_BOT_TOKEN must be the token @BotFather gave" in configuration
    assert "not a token" not in bad.stdout + bad.stderr
    assert "TELEGRAM_BOT_TOKEN not set" in line_of(bad.stdout, "Telegram variables")


def test_a_bot_api_that_does_not_answer_says_to_check_the_url(here: Path) -> None:
    closed = _closed_port()
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET}
    env["TELEGRAM_API_URL"] = f"http://127.0.0.1:{closed}"
    done = doctor(here, env)
    checked = line_of(done.stdout, "Telegram Bot API")
    assert (
        f"the Bot API at http://127.0.0.1:{closed} did not answer getMe (ConnectError)" in checked
    )
    assert f"fix: {NETWORK_FIX}" in checked
    assert_no_secret(done.stdout + done.stderr)


def test_without_telegram_variables_doctor_says_nothing_of_telegram(here: Path) -> None:
    done = doctor(here, {})
    assert "Telegram" not in done.stdout
