"""Bots found by import path (STATEHQ_BOT): what loads, and the clear errors for what does not."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from statehq import ConfigError, Settings
from statehq.flows import Flow, Input, SimpleBot, bot_stages, open_bot


class TinyBot(SimpleBot):
    flows = (Flow("ask", "Ask", (Input("q", "Question?", lambda t, text: {"q": text}, "q"),)),)


closed: list[str] = []


@contextmanager
def owning(settings: Settings) -> Iterator[TinyBot]:
    yield TinyBot()
    closed.append("closed")


@pytest.fixture(autouse=True)
def module() -> Iterator[None]:
    fake = types.ModuleType("tinybots")
    fake.plain = lambda settings: TinyBot()  # type: ignore[attr-defined]
    fake.owning = owning  # type: ignore[attr-defined]
    fake.not_a_bot = lambda settings: object()  # type: ignore[attr-defined]
    fake.broken = lambda settings: 1 / 0  # type: ignore[attr-defined]
    sys.modules["tinybots"] = fake
    yield
    del sys.modules["tinybots"]


def test_a_factory_may_return_a_bot_or_a_context_manager_that_is_closed() -> None:
    with open_bot(Settings(bot="tinybots:plain")) as bot:
        assert isinstance(bot, TinyBot)
        assert "ask" in bot_stages(bot)
    with open_bot(Settings(bot="tinybots:owning")) as bot:
        assert isinstance(bot, TinyBot)
        assert closed == []
    assert closed == ["closed"]


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("tinybots:nothing", "module tinybots has no 'nothing'"),
        ("tinybots:not_a_bot", "made a object, which is not a bot: it lacks flows"),
        ("tinybots:broken", "the factory broken failed: ZeroDivisionError"),
        ("no_such_package.bots:make", "there is no module 'no_such_package'"),
    ],
)
def test_what_is_not_a_bot_is_refused_saying_why(path: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said), open_bot(Settings(bot=path)):
        pass
