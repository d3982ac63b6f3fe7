"""The Bot API client against the fake Bot API server: what is retried, what is not, and
that the bot token (part of every URL) never shows."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from statehq.channels.telegram import BotApi, TelegramDelivery
from statehq.channels.telegram.problems import BLOCKED_FIX, NETWORK_FIX, THROTTLE, TOKEN_FIX
from statehq.redact import get_logger, redact_text
from statehq.testing.fake_telegram import FakeTelegram
from tests.channels.raw_server import RawServer, Reply, in_turn

TOKEN = "7000000001:AAH-bot-api-token-never-shown-42"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as server:
        yield server


@pytest.fixture
def telegram(fake: FakeTelegram) -> FakeTelegram:
    fake.reset()
    return fake


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def api(telegram: FakeTelegram, slept: list[float]) -> Iterator[BotApi]:
    with BotApi(telegram.url, TOKEN, backoff=0.01, sleep=slept.append) as client:
        yield client


def test_a_message_is_sent_and_its_message_comes_back(api: BotApi, telegram: FakeTelegram) -> None:
    result = api.call("sendMessage", {"chat_id": 42, "text": "Hello ✓"})
    assert result.ok
    assert (result.attempts, result.status) == (1, 200)
    assert result.result["text"] == "Hello ✓"
    assert telegram.sent_to(42) == [{"chat_id": 42, "text": "Hello ✓"}]
    assert api.call("getMe").result["username"] == "statehq_test_bot"
    assert TOKEN not in repr(api)


def test_a_429_waits_the_retry_after_telegram_asks_for(
    api: BotApi, telegram: FakeTelegram, slept: list[float]
) -> None:
    telegram.fail_next(2, error_code=429, retry_after=3)
    result = api.call("sendMessage", {"chat_id": 42, "text": "hi"})
    assert result.ok
    assert result.attempts == 3
    assert slept == [3, 3]
    assert len(telegram.sent_to(42)) == 1


def test_a_wait_longer_than_a_reply_may_wait_is_not_waited(
    api: BotApi, telegram: FakeTelegram, slept: list[float]
) -> None:
    telegram.fail_next(1, error_code=429, retry_after=600)
    result = api.call("sendMessage", {"chat_id": 42, "text": "hi"})
    assert not result.ok
    assert (result.retryable, result.attempts, result.retry_after) == (True, 1, 600)
    assert result.failure_label == "telegram_429"
    assert result.detail == "sendMessage: Too Many Requests: retry after 600"
    assert slept == []
    telegram.fail_next(5, error_code=429, retry_after=4)  # 4 + 4 waited; 4 more would pass 10
    again = api.call("sendMessage", {"chat_id": 42, "text": "hi"})
    assert (again.ok, again.attempts, slept) == (False, 3, [4, 4])
    assert telegram.sent_to(42) == []


def test_server_errors_are_retried_with_backoff_then_given_up(
    api: BotApi, telegram: FakeTelegram, slept: list[float]
) -> None:
    telegram.fail_next(2, error_code=502, description="Bad Gateway")
    assert api.call("sendMessage", {"chat_id": 42, "text": "hi"}).attempts == 3
    assert len(slept) == 2
    assert all(0 < wait <= 0.02 for wait in slept)
    telegram.fail_next(5, error_code=500, description="Internal Server Error")
    failed = api.call("sendMessage", {"chat_id": 42, "text": "hi"})
    assert (failed.ok, failed.retryable, failed.attempts) == (False, True, 5)


def test_permanent_errors_are_not_retried(api: BotApi, telegram: FakeTelegram) -> None:
    telegram.blocked.add(42)
    blocked = api.call("sendMessage", {"chat_id": 42, "text": "hi"})
    assert (blocked.ok, blocked.retryable, blocked.attempts) == (False, False, 1)
    assert (blocked.status, blocked.failure_label) == (403, "telegram_403")
    assert blocked.detail == "sendMessage: Forbidden: bot was blocked by the user"
    unknown = api.call("sendMesage", {"chat_id": 42, "text": "hi"})
    assert (unknown.error_code, unknown.description) == (404, "Not Found")
    too_long = api.call("sendMessage", {"chat_id": 7, "text": "x" * 4097})
    assert (too_long.error_code, too_long.retryable) == (400, False)


def test_the_fake_refuses_a_malformed_keyboard_edit_as_telegram_does(
    api: BotApi, telegram: FakeTelegram
) -> None:
    """A keyboard Telegram cannot parse is its 400, never a crash of the fake: a 500 would
    be retried five times and hide the bug of whoever sent it."""
    message_id = api.call("sendMessage", {"chat_id": 42, "text": "Pick"}).result["message_id"]
    for markup in ([1], "x", {"inline_keyboard": "x"}, {"inline_keyboard": [[{"text": "A"}]]}):
        edit = {"chat_id": 42, "message_id": message_id, "reply_markup": markup}
        refused = api.call("editMessageReplyMarkup", edit)
        assert (refused.status, refused.attempts) == (400, 1), markup
        assert refused.description.startswith("Bad Request: "), markup
    assert "reply_markup" not in telegram.message(42, message_id)


def test_a_wrong_token_fails_without_showing_it(telegram: FakeTelegram) -> None:
    wrong = "7000000001:AAH-the-wrong-token-0000000000"
    telegram.fail_next(1, error_code=400, description=f"Bad Request: no route /bot{TOKEN}/x")
    with BotApi(telegram.url, wrong) as api:
        refused = api.call("sendMessage", {"chat_id": 1, "text": "hi"})
    assert (refused.status, refused.failure_label) == (401, "telegram_401")
    assert wrong not in refused.detail
    with BotApi(telegram.url, TOKEN) as api:
        echoed = api.call("sendMessage", {"chat_id": 1, "text": "hi"})
    assert echoed.description == "Bad Request: no route /bot<token>/x"


def test_a_network_failure_before_sending_is_retried_and_one_after_is_not(
    slept: list[float],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with BotApi(f"http://127.0.0.1:{closed}", TOKEN, backoff=0.01, sleep=slept.append) as api:
        unreachable = api.call("sendMessage", {"chat_id": 1, "text": "hi"})
    assert (unreachable.status, unreachable.failure_label) == (None, "network")
    assert (unreachable.attempts, unreachable.retryable) == (5, True)
    assert unreachable.description == "ConnectError"
    with RawServer(in_turn(Reply(after="close"))) as server:  # reads the request, answers nothing
        with BotApi(server.url, TOKEN, sleep=slept.append) as api:
            unanswered = api.call("sendMessage", {"chat_id": 1, "text": "hi"})
        assert len(server.requests) == 1  # it may have been delivered: never sent twice
    assert (unanswered.attempts, unanswered.retryable) == (1, False)
    assert "sent without an answer; not resent" in unanswered.description


def test_the_delivery_takes_a_keyboard_already_gone_as_done_and_explains_failures(
    api: BotApi, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    THROTTLE.clear()
    delivery = TelegramDelivery(api)
    sent = delivery.deliver(
        {
            "method": "sendMessage",
            "chat_id": 42,
            "text": "Pick",
            "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
        }
    )
    message_id = sent.result["message_id"]
    remove = {
        "method": "editMessageReplyMarkup",
        "chat_id": 42,
        "message_id": message_id,
        "reply_markup": {"inline_keyboard": []},
    }
    assert delivery.deliver(remove).ok
    assert "reply_markup" not in telegram.message(42, message_id)
    assert delivery.deliver(remove).ok  # "message is not modified": the keyboard is gone
    assert not delivery.deliver({**remove, "message_id": 999_999}).ok  # never sent
    with caplog.at_level(logging.WARNING, logger="statehq.channels.telegram.problems"):
        telegram.blocked.add(43)
        for _ in range(3):
            delivery.deliver({"method": "sendMessage", "chat_id": 43, "text": "hi"})
        with BotApi(telegram.url, "7000000001:AAH-revoked-token-0000000000") as revoked:
            TelegramDelivery(revoked).deliver({"method": "sendMessage", "chat_id": 1, "text": "x"})
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("bot was blocked by the user" in w for w in warnings) == 1  # throttled
    assert any(BLOCKED_FIX in w for w in warnings)
    assert any(TOKEN_FIX in w and "Bot API error 401 on sendMessage" in w for w in warnings)
    assert "AAH-" not in caplog.text
    assert NETWORK_FIX.startswith("check TELEGRAM_API_URL")


def test_a_url_that_is_not_http_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="only http and https"):
        BotApi("ftp://api.telegram.org", TOKEN)


def test_a_bot_token_a_log_line_names_in_passing_is_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = get_logger("statehq.test.telegram")
    with caplog.at_level(logging.WARNING, logger="statehq.test.telegram"):
        log.warning("could not reach https://api.telegram.org/bot%s/sendMessage", TOKEN)
    assert caplog.records[-1].getMessage() == (
        "could not reach https://api.telegram.org/bot[redacted]/sendMessage"
    )
    choice = "v12.123456:3f2c9a1e-0000-4000-8000-1234567890ab"  # a stamped id, all-digit tag
    assert redact_text(f"tapped {choice} at 12:30:45") == f"tapped {choice} at 12:30:45"
    assert redact_text(f"token {TOKEN}") == "token [redacted]"
