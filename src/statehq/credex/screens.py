"""What the credex bot shows: the welcome, the dashboard and its actions, offer lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..flows import Buttons, Message, Option, OptionList, Text
from .backend import Account, Dashboard, Offer
from .parsing import format_amount

WELCOME = (
    "Welcome to credex! 👋\n\n"
    "credex is a community credit ledger: members offer each other credit, secured by "
    "what they hold, and the ledger keeps everyone's balances straight.\n\n"
    "Would you like to join?"
)
ABOUT = (
    "How credex works:\n"
    "• You hold balances in USD, ZWG, CAD, XAU (gold) or CXX.\n"
    "• You offer a *secured credex* to another member's handle, like @bob.\n"
    "• They accept it (the amount moves to them) or decline it (nothing moves).\n"
    "• Send “menu” at any time to come back here; send “cancel” to stop what you are doing."
)

FLOW_OFFER, FLOW_INCOMING, FLOW_OUTGOING = "offer", "incoming", "outgoing"
FLOW_LEDGER, FLOW_SWITCH, FLOW_REGISTER = "ledger", "switch", "register"


def welcome() -> list[Message]:
    """The screen a phone number that is not a member yet sees."""
    return [Buttons(WELCOME, (Option(FLOW_REGISTER, "Join credex"), Option("learn", "Learn more")))]


def about() -> list[Message]:
    """What credex is, then the welcome choices again."""
    return [Text(ABOUT), *welcome()]


def account_dict(account: Account) -> dict[str, Any]:
    """An account as stored in the session (``current_account`` and ``profile.accounts``)."""
    return {
        "id": account.id,
        "handle": account.handle,
        "name": account.name,
        "type": account.type,
        "default_denomination": account.default_denomination,
    }


def _balance_lines(balances: Mapping[str, Decimal]) -> str:
    shown = [f"  {format_amount(amount, denom)}" for denom, amount in sorted(balances.items())]
    return "\n".join(shown) if shown else "  none yet"


def dashboard(dash: Dashboard, accounts: Sequence[Mapping[str, Any]]) -> Message:
    """The account's standing and the actions that apply to it, as one list message."""
    account = dash.account
    body = (
        f"*{account.name}* (@{account.handle})\n\n"
        f"Secured balances:\n{_balance_lines(dash.balances)}\n"
        f"Net assets: {format_amount(dash.net_assets, dash.net_denomination)}\n"
        f"Pending offers: {len(dash.pending_in)} incoming, {len(dash.pending_out)} outgoing"
    )
    actions: list[Option] = []
    if any(amount > 0 for amount in dash.available.values()):
        actions.append(Option(FLOW_OFFER, "Offer a credex", "secured by your balance"))
    if dash.pending_in:
        actions.append(Option(FLOW_INCOMING, f"Incoming offers ({len(dash.pending_in)})"))
    if dash.pending_out:
        actions.append(Option(FLOW_OUTGOING, f"Outgoing offers ({len(dash.pending_out)})"))
    actions.append(Option(FLOW_LEDGER, "Ledger", "your latest transactions"))
    if len(accounts) > 1:
        actions.append(Option(FLOW_SWITCH, "Switch account", f"{len(accounts)} accounts"))
    return OptionList(body, tuple(actions), button="Actions")


def offer_row(offer: Offer) -> Option:
    """One pending offer as a list row."""
    party = offer.counterparty
    preposition = "from" if offer.direction == "in" else "to"
    return Option(
        offer.id,
        format_amount(offer.amount, offer.denomination)[:24],
        f"{preposition} {party.name} (@{party.handle})"[:72],
    )


def offer_line(offer: Mapping[str, Any]) -> str:
    """``10.00 USD from Bob Dube (@bob)`` from an offer kept in flow data."""
    preposition = "from" if offer["direction"] == "in" else "to"
    amount = format_amount(Decimal(offer["amount"]), offer["denomination"])
    return f"{amount} {preposition} {offer['name']} (@{offer['handle']})"


def offer_data(offer: Offer) -> dict[str, Any]:
    """An offer as kept in flow data while the member decides on it."""
    return {
        "id": offer.id,
        "amount": str(offer.amount),
        "denomination": offer.denomination,
        "direction": offer.direction,
        "name": offer.counterparty.name,
        "handle": offer.counterparty.handle,
    }
