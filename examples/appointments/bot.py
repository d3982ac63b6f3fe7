"""The appointment bot: a menu, a booking form with validation, a confirmation, a backend call.

    Book an appointment  → service (list) → day (typed, validated) → time (buttons)
                           → name (typed, validated) → confirm → the diary books it
    My appointments      → the list, from the diary
    Cancel one           → pick it → confirm → the diary cancels it

Everything statehq gives it comes free: each answer is a versioned, audited state
change; a redelivered message books once (the idempotency key is derived from the
message); "menu" and "cancel" work anywhere; a stale button is answered, not applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any, cast

from statehq import BotSettings
from statehq.flows import (
    Api,
    Buttons,
    Confirm,
    Display,
    Finish,
    Flow,
    Goto,
    Input,
    Invalid,
    Option,
    OptionList,
    Outcome,
    SimpleBot,
    Text,
    Turn,
)

from .diary import Diary, SlotTaken

SERVICES = {"cut": "Haircut", "colour": "Colour", "braids": "Braids", "nails": "Manicure"}
SLOTS = ("09:00", "11:30", "15:00")
DAYS_AHEAD = 60


def _diary(turn: Turn) -> Diary:
    return cast("SalonBot", turn.bot).diary


def _phone(turn: Turn) -> str:
    return turn.inbound.channel.identifier


# -- booking --------------------------------------------------------------------------


def _services(turn: Turn) -> OptionList:
    options = tuple(Option(key, title) for key, title in SERVICES.items())
    return OptionList("What would you like to book?", options, button="Services")


def _picked_service(turn: Turn, choice: str) -> Outcome:
    return Goto("day", {"service": choice})


def parse_day(text: str, today: date) -> date:
    """A day the member typed: 'today', 'tomorrow', '2026-12-24' or '24/12'."""
    typed = text.strip().lower()
    if typed in ("today", "tomorrow"):
        day = today + timedelta(days=0 if typed == "today" else 1)
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", typed):
        day = _date(lambda: date.fromisoformat(typed))
    elif match := re.fullmatch(r"(\d{1,2})/(\d{1,2})", typed):
        day = _date(lambda: date(today.year, int(match.group(2)), int(match.group(1))))
        if day < today:
            day = _date(lambda: day.replace(year=today.year + 1))
    else:
        raise Invalid("Please type a day like “tomorrow”, “24/12” or “2026-12-24”.")
    if day < today:
        raise Invalid("That day has passed. Which day would you like?")
    if day > today + timedelta(days=DAYS_AHEAD):
        raise Invalid(f"We take bookings up to {DAYS_AHEAD} days ahead. Pick an earlier day.")
    if day.weekday() == 6:
        raise Invalid("We are closed on Sundays. Pick another day.")
    return day


def _date(build: Any) -> date:
    try:
        built: date = build()
    except ValueError:
        raise Invalid("That is not a date on the calendar. Try e.g. “24/12”.") from None
    return built


def _day(turn: Turn, text: str) -> Mapping[str, Any]:
    return {"day": parse_day(text, datetime.now().date()).isoformat()}


def _slots(turn: Turn) -> Buttons:
    day = date.fromisoformat(turn.data["day"])
    return Buttons(f"Which time on {day:%A %d %B}?", tuple(Option(s, s) for s in SLOTS))


def _picked_slot(turn: Turn, choice: str) -> Outcome:
    return Goto("name", {"slot": choice})


NAME = re.compile(r"[^\W\d_]+(?:[ '\u2019-][^\W\d_]+)*")
"""Letters, with single spaces, hyphens or apostrophes (straight or curly) between them."""


def parse_name(text: str) -> str:
    """A name to book under: 2 to 40 letters, spaces, hyphens or apostrophes."""
    name = " ".join(text.split())
    if not NAME.fullmatch(name) or not 2 <= len(name) <= 40:
        raise Invalid("Please type the name to book under (letters only, 2 to 40).")
    return name


def _name(turn: Turn, text: str) -> Mapping[str, Any]:
    # The booking's key is fixed with its details: a retry after a lost answer books once.
    return {"name": parse_name(text), "booking_key": turn.idempotency_key("book")}


def _summary(turn: Turn) -> str:
    data = turn.data
    day = date.fromisoformat(data["day"])
    return (
        f"{SERVICES[data['service']]} on {day:%A %d %B} at {data['slot']}, "
        f"for {data['name']}. Shall I book it?"
    )


def _book(turn: Turn) -> Outcome:
    return Goto("booking")


def _call_book(turn: Turn) -> Outcome:
    data = turn.data
    try:
        booking = _diary(turn).book(
            _phone(turn),
            data["service"],
            date.fromisoformat(data["day"]),
            data["slot"],
            data["name"],
            idempotency_key=data["booking_key"],
        )
    except SlotTaken as taken:
        return Goto("slot", say=(Text(f"Sorry, {taken}. Pick another time."),))
    said = f"Booked! Your reference is {booking.ref}. See you on {booking.day:%A %d %B}."
    return Finish((Text(said),))


BOOK = Flow(
    "book",
    "Book an appointment",
    (
        Display("service", _services, on_choice=_picked_service),
        Input("day", "Which day? (e.g. “tomorrow” or “24/12”)", _day, "slot"),
        Display("slot", _slots, on_choice=_picked_slot),
        Input("name", "And the name to book under?", _name, "confirm"),
        Confirm("confirm", _summary, _book, confirm="Book it", cancelled="Not booked."),
        Api("booking", _call_book),
    ),
)


# -- listing and cancelling -----------------------------------------------------------------


def _upcoming(turn: Turn) -> Text:
    bookings = _diary(turn).upcoming(_phone(turn))
    if not bookings:
        return Text("You have no appointments booked.")
    lines = [f"{b.ref}: {SERVICES[b.service]}, {b.day:%a %d %b} at {b.slot}" for b in bookings]
    return Text("Your appointments:\n" + "\n".join(lines))


MINE = Flow("mine", "My appointments", (Display("list", _upcoming),))


def _cancellable(turn: Turn) -> Text | OptionList:
    bookings = _diary(turn).upcoming(_phone(turn))[:10]
    if not bookings:
        return Text("You have no appointments to cancel.")
    options = tuple(
        Option(b.ref, f"{b.day:%a %d %b} {b.slot}", SERVICES[b.service]) for b in bookings
    )
    return OptionList("Which appointment shall I cancel?", options, button="Appointments")


def _pick_cancel(turn: Turn) -> Outcome:
    if not _diary(turn).upcoming(_phone(turn)):
        return Finish((Text("You have no appointments to cancel."),))
    return Goto("which")


def _picked_cancel(turn: Turn, choice: str) -> Outcome:
    return Goto("sure", {"ref": choice})


def _cancel(turn: Turn) -> Outcome:
    ref = turn.data["ref"]
    if _diary(turn).cancel(_phone(turn), ref):
        return Finish((Text(f"Cancelled {ref}."),))
    return Finish((Text(f"{ref} is not one of your appointments."),))


CANCEL = Flow(
    "cancel_booking",
    "Cancel one",
    (
        Api("check", _pick_cancel),
        Display("which", _cancellable, on_choice=_picked_cancel),
        Confirm(
            "sure",
            lambda turn: f"Cancel appointment {turn.data['ref']}?",
            _cancel,
            confirm="Yes, cancel",
            cancel="Keep it",
            cancelled="Kept.",
        ),
    ),
)


# -- the bot ----------------------------------------------------------------------------------


class SalonBot(SimpleBot):
    """The salon's bot: its home is a menu of three flows."""

    greeting = "Welcome to Tendai's Salon 💇 What would you like to do?"
    flows = (BOOK, MINE, CANCEL)

    def __init__(self, diary: Diary) -> None:
        self.diary = diary


@contextmanager
def create_bot(settings: BotSettings) -> Iterator[SalonBot]:
    """``STATEHQ_BOT=examples.appointments.bot:create_bot``: the bot on its diary."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    diary = Diary(settings.data_dir / "salon.sqlite3")
    try:
        yield SalonBot(diary)
    finally:
        diary.close()
