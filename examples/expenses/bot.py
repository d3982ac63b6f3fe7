"""The expense-claim bot: a form, a receipt photo, a confirmation.

    Claim an expense → details (a form: what for, how much, which day)
                     → receipt (a photo or a PDF) → confirm → claimed

On WhatsApp the details form is one WhatsApp Flow when ``EXPENSES_FLOW_ID`` names a
published Flow whose completion returns ``title``, ``amount`` and ``day`` (its first
screen ``EXPENSE``); without it, and on every other channel, the same step asks the three
questions one by one. The receipt step takes an image or a PDF; a file sent anywhere else
gets a polite answer, and every file is in the audit trail with its media id and type.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from statehq import BotSettings
from statehq.flows import (
    Confirm,
    Field,
    Finish,
    Flow,
    Form,
    Invalid,
    MediaInput,
    Outcome,
    SimpleBot,
    Text,
    Turn,
    WhatsAppFlow,
)

FLOW_ID_VARIABLE = "EXPENSES_FLOW_ID"
MAX_AMOUNT = Decimal("5000")


def parse_title(turn: Turn, text: str) -> str:
    """What the expense was for: 3 to 60 characters."""
    title = " ".join(text.split())
    if not 3 <= len(title) <= 60:
        raise Invalid("Say in 3 to 60 characters what the expense was for, e.g. “Taxi to site”.")
    return title


def parse_amount(turn: Turn, text: str) -> str:
    """An amount like 12, 12.5 or 12.50, up to the claim limit, kept as exact text."""
    typed = text.replace(",", ".").removeprefix("$").strip()
    if not re.fullmatch(r"\d{1,6}(\.\d{1,2})?", typed):
        raise Invalid("Type the amount as a number, like 12.50.")
    try:
        amount = Decimal(typed)
    except InvalidOperation:
        raise Invalid("Type the amount as a number, like 12.50.") from None
    if not 0 < amount <= MAX_AMOUNT:
        raise Invalid(f"Claims are from 0.01 up to {MAX_AMOUNT}. Type another amount.")
    return f"{amount:.2f}"


def parse_day(turn: Turn, text: str) -> str:
    """The day of the expense, as YYYY-MM-DD (a Flow's date picker sends that too)."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid("Type the day as YYYY-MM-DD, e.g. 2026-12-01.") from None
    if day > date.today():
        raise Invalid("That day is in the future. Which day was the expense?")
    return day.isoformat()


def details(flow_id: str | None) -> Form:
    """The details form; a WhatsApp Flow shows it on WhatsApp when ``flow_id`` is given."""
    whatsapp = WhatsAppFlow(flow_id, cta="Fill in the claim", screen="EXPENSE") if flow_id else None
    return Form(
        "details",
        "Let's claim an expense.",
        (
            Field("title", "What was it for?", parse_title),
            Field("amount", "How much was it? (e.g. 12.50)", parse_amount),
            Field("day", "Which day? (YYYY-MM-DD)", parse_day),
        ),
        then="receipt",
        whatsapp=whatsapp,
    )


RECEIPT = MediaInput(
    "receipt",
    "Now send a photo of the receipt (or the PDF).",
    accept=("image/jpeg", "image/png", "application/pdf"),
    then="confirm",
    wrong_type="Please send a JPEG or PNG photo, or a PDF.",
)


def _summary(turn: Turn) -> str:
    data = turn.data
    receipt: Mapping[str, Any] = data["receipt"]
    kind = "photo" if receipt["kind"] == "image" else "document"
    return f"Claim {data['amount']} for “{data['title']}” on {data['day']}, with the {kind}?"


def _claim(turn: Turn) -> Outcome:
    return Finish((Text(f"Claimed {turn.data['amount']}. We will let you know when it is paid."),))


def claim_flow(flow_id: str | None) -> Flow:
    """The claim: details, receipt, confirmation."""
    confirm = Confirm("confirm", _summary, _claim, confirm="Claim it", cancelled="Not claimed.")
    return Flow("claim", "Claim an expense", (details(flow_id), RECEIPT, confirm))


class ExpensesBot(SimpleBot):
    """A home menu with one flow: claim an expense."""

    greeting = "Expenses 🧾 What would you like to do?"

    def __init__(self, flow_id: str | None = None) -> None:
        self.flows = (claim_flow(flow_id),)


@contextmanager
def create_bot(settings: BotSettings) -> Iterator[ExpensesBot]:
    """``STATEHQ_BOT=examples.expenses.bot:create_bot``; the Flow id from ``EXPENSES_FLOW_ID``."""
    yield ExpensesBot(os.environ.get(FLOW_ID_VARIABLE) or None)
