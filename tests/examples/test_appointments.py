"""The example appointment bot: its validation, a whole conversation on the real store, and
the bot run by ``statehq serve`` over the WhatsApp webhook and by ``statehq chat``."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.appointments.bot import SalonBot, create_bot, parse_day, parse_name
from statehq import BotSettings, Settings, StateStore
from statehq.flows import Headquarters, Inbound, Invalid, build_engine
from statehq.state import ChannelId
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph

ROOT = Path(__file__).parents[2]
BOT = "examples.appointments.bot:create_bot"
TODAY = date(2026, 12, 3)  # a Thursday


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("today", TODAY),
        ("Tomorrow", TODAY + timedelta(days=1)),
        ("2026-12-24", date(2026, 12, 24)),
        ("24/12", date(2026, 12, 24)),
        ("2/1", date(2027, 1, 2)),  # early January is next year
    ],
)
def test_days_members_type(typed: str, day: date) -> None:
    assert parse_day(typed, TODAY) == day


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("yesterday", "like “tomorrow”"),
        ("2026-12-01", "has passed"),
        ("31/02", "not a date"),
        ("2026-12-06", "closed on Sundays"),
        ("2027-06-01", "60 days ahead"),
    ],
)
def test_days_refused_with_what_to_do(typed: str, why: str) -> None:
    with pytest.raises(Invalid, match=why):
        parse_day(typed, TODAY)


def test_names() -> None:
    assert parse_name("  ann   o\u2019Moyo-Dube ") == "ann o\u2019Moyo-Dube"
    for bad in ("A", "R2D2", "x" * 41, "--"):
        with pytest.raises(Invalid):
            parse_name(bad)


@pytest.fixture
def engine(store: StateStore, tmp_path: Path) -> Iterator[Headquarters]:
    """The salon bot's engine on the test store and a fresh diary."""
    with create_bot(BotSettings(data_dir=tmp_path / "salon")) as bot:
        yield build_engine(store, bot)


class Member:
    """A member on the terminal channel, tapping options by their titles."""

    def __init__(self, engine: Headquarters, phone: str) -> None:
        self.engine, self.channel = engine, ChannelId("terminal", phone)
        self.sent: list[Inbound] = []
        self.last: list[Any] = []

    def say(self, text: str = "", *, tap: str | None = None) -> str:
        choice = None
        if tap is not None:
            options = [o for message in self.last for o in message.options]
            choice = next(o.id for o in options if o.title == tap)
        self.sent.append(Inbound(self.channel, f"m{len(self.sent)}", text, choice))
        return self._process(self.sent[-1])

    def repeat(self) -> bool:
        """The last message again, as a redelivery brings it (same id); True if a duplicate."""
        return self.engine.process(self.sent[-1]).duplicate

    def _process(self, inbound: Inbound) -> str:
        self.last = self.engine.process(inbound).replies
        return "\n".join(getattr(m, "body", "") for m in self.last)


def _book(member: Member, slot: str = "09:00") -> str:
    assert "Welcome to Tendai's Salon" in member.say("hi")
    assert "What would you like to book?" in member.say(tap="Book an appointment")
    assert "Which day?" in member.say(tap="Braids")
    assert "Please type a day" in member.say("someday")  # invalid: asked again
    assert "Which time on" in member.say("tomorrow")
    assert "name to book under" in member.say(tap=slot)
    assert "Shall I book it?" in member.say("Ann Moyo")
    return member.say(tap="Book it")


def test_book_list_and_cancel_with_state_versioned_and_audited(
    engine: Headquarters, store: StateStore, member: str
) -> None:
    ann = Member(engine, member.split(":")[1])
    booked = _book(ann)
    assert "Booked! Your reference is B" in booked
    ref = booked.split("reference is ")[1].split(".")[0]
    assert ref in ann.say(tap="My appointments")
    ann.say("menu")
    assert "Which appointment" in ann.say(tap="Cancel one")
    assert f"Cancel appointment {ref}?" in ann.say(tap=ann.last[-1].options[0].title)
    assert f"Cancelled {ref}." in ann.say(tap="Yes, cancel")
    bot = engine.bot
    assert isinstance(bot, SalonBot)
    assert bot.diary.upcoming(ann.channel.identifier) == []
    session_key = ann.channel.key
    trail = store.audit_read(session_key, limit=200)
    assert [e.event for e in trail].count("flow.started") == 3  # book, mine, cancel_booking
    steps = [e.values.get("flow_data.step") for e in trail if e.event == "flow.step"]
    assert steps[:4] == ["day", "slot", "name", "confirm"]  # each answer, versioned


def test_a_redelivered_confirmation_books_once(engine: Headquarters, member: str) -> None:
    ann = Member(engine, member.split(":")[1])
    first = _book(ann)
    assert ann.repeat()  # the confirmation's id again: a duplicate, nothing applied or sent
    bot = engine.bot
    assert isinstance(bot, SalonBot)
    assert len(bot.diary.upcoming(ann.channel.identifier)) == 1
    assert "Booked!" in first


def test_a_slot_taken_meanwhile_is_answered_with_the_times_again(
    engine: Headquarters, member: str
) -> None:
    ann, bea = Member(engine, member.split(":")[1]), Member(engine, "263779999998")
    assert "Which day?" in ann.say("hi") + ann.say(tap="Book an appointment") + ann.say(
        tap="Braids"
    )
    ann.say("tomorrow")
    ann.say(tap="11:30")
    ann.say("Ann Moyo")
    assert "Booked!" in _book(bea, "11:30")  # Bea books the same slot first
    taken = ann.say(tap="Book it")
    assert "is taken. Pick another time." in taken
    assert "Which time on" in taken


# -- run by statehq, as a newcomer would ----------------------------------------------------


def _statehq(data_dir: Path, *args: str, stdin: str = "", **env: str) -> Any:
    environ = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir), "STATEHQ_BOT": BOT, **env}
    environ.pop("STATEHQ_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=90,
        check=False,
    )


def test_statehq_chat_runs_the_example(data_dir: Path) -> None:
    chat = _statehq(
        data_dir, "chat", "--as", "263771234567", stdin="hi\n1\n3\ntomorrow\n1\nAnn Moyo\n1\n"
    )
    assert chat.returncode == 0, chat.stderr
    assert "Welcome to Tendai's Salon" in chat.stdout
    assert "Booked! Your reference is" in chat.stdout


@pytest.mark.parametrize(
    ("bot", "said"),
    [
        ("nosuchmodule.bot:create", "there is no module 'nosuchmodule'"),
        ("examples.appointments.bot:nothing", "has no 'nothing'"),
        ("examples.appointments.bot:SERVICES", "is a dict, not a factory"),
        ("examples.appointments.bot:parse_name", "the factory parse_name failed"),
        ("not a path", "must be an import path like mybot.app:create_bot"),
    ],
)
def test_a_bad_bot_is_a_clear_error_at_start_up(data_dir: Path, bot: str, said: str) -> None:
    for command in (("serve", "--port", "1"), ("chat", "--as", "263771234567")):
        run = _statehq(data_dir, *command, STATEHQ_BOT=bot)
        assert run.returncode == 1, (command, run.stdout, run.stderr)
        assert said in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_statehq_serve_runs_the_example_over_the_whatsapp_webhook(tmp_path: Path) -> None:
    with FakeGraph(access_token="token") as graph, _serving(tmp_path, graph.url) as base:
        phone = "263775550001"
        hello = wh.text(phone, "hi")
        assert _post(base, hello) == 200
        graph.wait_for(1, predicate=lambda r: r.body.get("to") == phone)
        (menu,) = graph.messages_to(phone)
        assert "Welcome to Tendai's Salon" in menu["interactive"]["body"]["text"]
        book = menu["interactive"]["action"]["buttons"][0]["reply"]  # "Book an appointment"
        tap = wh.button(phone, book["id"], book["title"])
        assert _post(base, tap) == 200
        graph.wait_for(2, predicate=lambda r: r.body.get("to") == phone)
        services = graph.messages_to(phone)[1]
        assert services["interactive"]["type"] == "list"  # four services: a list
        answered = [b["biz_opaque_callback_data"].split("#")[0] for b in graph.messages_to(phone)]
        assert answered == [hello["id"], tap["id"]]


def _post(base: str, message: dict[str, Any]) -> int:
    raw, headers = wh.signed(wh.payload([message]), "secret")
    status: int = httpx.post(f"{base}/webhooks/whatsapp", content=raw, headers=headers).status_code
    return status


@contextlib.contextmanager
def _serving(tmp_path: Path, graph_url: str) -> Iterator[str]:
    """``statehq serve`` running the example, started from the project's root as a user
    would, on its own embedded store; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(
        data_dir=tmp_path / "data",
        port=port,
        workers=1,
        bot=BOT,
        whatsapp_app_secret="secret",
        whatsapp_access_token="token",
        whatsapp_phone_number_id=wh.PHONE_NUMBER_ID,
        whatsapp_graph_url=graph_url,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEHQ_")}
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "statehq.cli.main", "serve"],
        env={**env, **settings.to_env()},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "statehq serve did not start"
            time.sleep(0.05)
        yield base
    finally:
        serve.terminate()
        serve.wait(timeout=20)
        log.close()
