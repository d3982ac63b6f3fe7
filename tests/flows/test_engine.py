"""The flow engine with a small bot of its own (no credex): the framework is reusable.

A "plant shop" with one flow - pick a plant from a paginated list, type a quantity,
a backend call prices it, confirm - exercises every component, the attempt limit,
pagination, stale taps, greetings and cancel, on the real state manager and store.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from statehq import StateManager, StateStore
from statehq.flows import (
    Api,
    Buttons,
    Confirm,
    Display,
    Finish,
    Flow,
    Goto,
    Headquarters,
    Inbound,
    Input,
    Invalid,
    Message,
    Option,
    OptionList,
    Text,
    Turn,
    stamp,
)
from statehq.state import ChannelId

PLANTS = [f"plant{n:02d}" for n in range(20)]
_ids = itertools.count()


def quantity(turn: Turn, text: str) -> dict[str, int]:
    if not text.isdigit() or not 1 <= int(text) <= 9:
        raise Invalid("Send a quantity from 1 to 9, like 2.")
    return {"quantity": int(text)}


def price(turn: Turn) -> Goto:
    shop: PlantShop = turn.bot  # type: ignore[assignment]
    shop.backend_calls += 1
    return Goto("confirm", {"total": turn.data["quantity"] * 3})


def order(turn: Turn) -> Finish:
    shop: PlantShop = turn.bot  # type: ignore[assignment]
    shop.orders.append(turn.idempotency_key("order"))
    return Finish((Text(f"Ordered {turn.data['quantity']} x {turn.data['plant']}."),))


BUY = Flow(
    "buy",
    "Buy a plant",
    (
        Display(
            "pick",
            lambda turn: OptionList.page(
                "Which plant?", [Option(p, p) for p in PLANTS], turn.page("pick")
            ),
            on_choice=lambda turn, plant: Goto("quantity", {"plant": plant}),
        ),
        Input("quantity", "How many?", quantity, "price"),
        Api("price", price),
        Confirm("confirm", lambda turn: f"Pay {turn.data['total']}?", order, confirm="Pay"),
    ),
)


class PlantShop:
    flows: Sequence[Flow] = (BUY,)
    token_rejected: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        self.backend_calls = 0
        self.orders: list[str] = []

    def home(self, turn: Turn) -> list[Message]:
        session = turn.session
        if session.get_stage() == "INIT":
            session.transition("AUTH")
        if session.get_stage() == "AUTH":
            session.transition("MENU")
        return [Buttons("Plant shop", (Option("buy", "Buy a plant"),))]

    def choose(self, turn: Turn, option: str) -> str | list[Message] | None:
        return option if option == "buy" else None

    def relogin(self, turn: Turn) -> str:
        raise AssertionError("the plant shop has no login")

    def explain(self, error: Exception) -> str | None:
        return None


@pytest.fixture
def shop() -> PlantShop:
    return PlantShop()


@pytest.fixture
def engine(store: StateStore, shop: PlantShop) -> Headquarters:
    return Headquarters(StateManager(store), shop)


class Chat:
    def __init__(self, engine: Headquarters) -> None:
        self.engine = engine
        self.channel = ChannelId("web", f"visitor{next(_ids)}")
        self.last: list[Message] = []

    def send(self, text: str = "", choice: str | None = None) -> list[Message]:
        inbound = Inbound(self.channel, f"m{next(_ids)}", text, choice)
        self.last = self.engine.handle(inbound)
        return self.last

    def tap(self, title: str) -> list[Message]:
        menu = next(m for m in reversed(self.last) if m.options)
        option = next(o for o in menu.options if o.title == title)
        return self.send(option.title, option.id)

    def body(self) -> str:
        return "\n".join(m.body for m in self.last)


def test_a_whole_flow_through_every_component(engine: Headquarters, shop: PlantShop) -> None:
    chat = Chat(engine)
    chat.send("hello")
    chat.tap("Buy a plant")
    assert [o.title for o in chat.last[-1].options][-1] == "More ▶"
    chat.tap("More ▶")  # the page turns by itself, in flow data
    assert chat.last[-1].options[0].title == "◀ Previous"
    chat.tap("plant10")
    chat.send("2")
    assert chat.body() == "Pay 6?"
    assert shop.backend_calls == 1
    chat.tap("Pay")
    assert chat.body().startswith("Ordered 2 x plant10.")
    assert len(shop.orders) == 1
    session = engine.manager.open(chat.channel)
    assert session.get_flow() is None
    assert session.get_stage() == "MENU"
    steps = [e.detail.get("step") for e in engine.manager.audit.read(session.key)]
    assert [s for s in steps if s] == ["pick", "pick", "quantity", "price", "confirm"]


def test_every_option_id_is_stamped_with_the_version_it_was_drawn_at(
    engine: Headquarters,
) -> None:
    chat = Chat(engine)
    chat.send("hi")
    session = engine.manager.open(chat.channel)
    assert chat.last[-1].options[0].id == stamp(session.version, session.key, "buy")
    assert chat.last[-1].options[0].id.startswith(f"v{session.version}.")


def test_the_attempt_limit_ends_the_flow(engine: Headquarters) -> None:
    chat = Chat(engine)
    chat.send("hi")
    chat.tap("Buy a plant")
    chat.send("plant00")  # a typed title picks its row
    assert chat.body() == "How many?"
    chat.send("lots")
    assert "Send a quantity from 1 to 9" in chat.body()
    assert "How many?" in chat.body()
    chat.send("0")
    chat.send("99")
    assert "That is 3 tries, so I stopped “Buy a plant”" in chat.body()
    assert chat.last[-1].body == "Plant shop"


def test_a_stale_tap_is_never_applied(engine: Headquarters, shop: PlantShop) -> None:
    chat = Chat(engine)
    chat.send("hi")
    chat.tap("Buy a plant")
    chat.tap("plant01")
    chat.send("1")
    stale_pay = next(o.id for o in chat.last[-1].options if o.title == "Pay")
    chat.send("hi")  # home again: the confirm screen is gone
    chat.send("Pay", stale_pay)
    assert chat.last[0].body == "That menu has expired; here is the current one."
    assert shop.orders == []


def test_unknown_words_at_home_show_home(engine: Headquarters) -> None:
    chat = Chat(engine)
    chat.send("what is this")
    assert chat.body() == "Plant shop"
