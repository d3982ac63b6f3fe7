"""The credex flows: registration, offering a credex, reviewing offers, the ledger, accounts.

Each flow is a list of steps (see :mod:`statehq.flows.components`); every backend call
goes through ``turn.call`` (the member's JWT, one re-login on a 401) and every mutating
call carries ``turn.idempotency_key(...)``, so processing one message twice never
makes a second offer, acceptance or member.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from ..flows import (
    Abandon,
    Api,
    Buttons,
    Confirm,
    Display,
    Finish,
    Flow,
    Goto,
    Input,
    Invalid,
    Message,
    Option,
    OptionList,
    Outcome,
    Text,
    Turn,
)
from .backend import Backend, Refused
from .parsing import format_amount, parse_amount, parse_handle, parse_name
from .screens import (
    FLOW_INCOMING,
    FLOW_LEDGER,
    FLOW_OFFER,
    FLOW_OUTGOING,
    FLOW_REGISTER,
    FLOW_SWITCH,
    account_dict,
    offer_data,
    offer_line,
    offer_row,
)

if TYPE_CHECKING:
    from .bot import CredexBot

LEDGER_PAGE = 5
BACK = Option("menu", "Back to dashboard")


def _bot(turn: Turn) -> CredexBot:
    return cast("CredexBot", turn.bot)


def _backend(turn: Turn) -> Backend:
    return _bot(turn).backend


def _account(turn: Turn) -> dict[str, Any]:
    account = turn.session.get_current_account()
    if not account:
        raise Refused("no account is selected; send “menu” to log in again", code="no_account")
    return account


# -- registration ---------------------------------------------------------------------


def _create_member(turn: Turn) -> Outcome:
    data, phone = turn.data, _bot(turn).phone(turn)
    login = _backend(turn).onboard(
        phone,
        data["first_name"],
        data["last_name"],
        idempotency_key=data["onboard_key"],
    )
    account = _bot(turn).sign_in(turn, login)
    said = Text(
        f"Welcome to credex, {login.member.first_name}! Your account @{account['handle']} is "
        f"ready. Others can send you offers using that handle."
    )
    return Finish((said,))


REGISTER = Flow(
    FLOW_REGISTER,
    "Join credex",
    (
        Input(
            "first_name",
            "Let's get you registered. What is your *first name*?",
            lambda turn, text: {"first_name": parse_name(text, "first")},
            "last_name",
        ),
        Input(
            "last_name",
            "Thanks! And your *last name*?",
            lambda turn, text: {
                "last_name": parse_name(text, "last"),
                # One key per registration, kept in flow data: a retry after a timeout
                # (a new message) replays the same onboarding instead of a second one.
                "onboard_key": turn.idempotency_key("onboard"),
            },
            "create",
        ),
        Api("create", _create_member),
    ),
    before_auth=True,
)


# -- offering a credex ----------------------------------------------------------------


def _amount(turn: Turn, text: str) -> Mapping[str, Any]:
    account = _account(turn)
    amount, denomination = parse_amount(text, account.get("default_denomination", "USD"))
    dash = turn.call(lambda token: _backend(turn).dashboard(token, account["id"]))
    available = dash.available.get(denomination, Decimal(0))
    if amount > available:
        raise Invalid(
            f"You can offer up to {format_amount(available, denomination)} (your available "
            f"secured balance). Send a smaller amount, or another denomination."
        )
    return {"amount": str(amount), "denomination": denomination}


def _recipient(turn: Turn, text: str) -> Mapping[str, Any]:
    handle = parse_handle(text)
    found = turn.call(lambda token: _backend(turn).account_by_handle(token, handle))
    if found is None:
        raise Invalid(f"I could not find @{handle}. Check the handle with them and send it again.")
    if found.id == _account(turn)["id"]:
        raise Invalid("That is the account you are offering from. Send someone else's handle.")
    # The offer's key is fixed here, when its terms are complete: tapping "Sign and send"
    # again after a timeout (a new message) replays the same offer, never a second one.
    return {"recipient": account_dict(found), "offer_key": turn.idempotency_key("offer")}


def _offer_summary(turn: Turn) -> str:
    data, account = turn.data, _account(turn)
    amount = format_amount(Decimal(data["amount"]), data["denomination"])
    to = data["recipient"]
    return (
        f"Offer *{amount}* to {to['name']} (@{to['handle']}) from @{account['handle']}?\n\n"
        f"It is secured by your balance and waits for them to accept."
    )


def _send_offer(turn: Turn) -> Outcome:
    data, account = turn.data, _account(turn)
    try:
        offer = turn.call(
            lambda token: _backend(turn).create_credex(
                token,
                issuer_account_id=account["id"],
                receiver_account_id=data["recipient"]["id"],
                amount=Decimal(data["amount"]),
                denomination=data["denomination"],
                idempotency_key=data["offer_key"],
            )
        )
    except Refused as refused:
        return Abandon((Text(f"The offer was not sent: {refused}"),), reason=refused.code)
    sent = Text(f"Offer sent: {offer_line(offer_data(offer))}. It waits for them to accept.")
    return Finish((sent,))


OFFER = Flow(
    FLOW_OFFER,
    "Offer a credex",
    (
        Input(
            "amount",
            "How much do you want to offer? Send an amount like 9, 9.50, 99 ZWG or ZWG 99.",
            _amount,
            "recipient",
        ),
        Input("recipient", "Who is it for? Send their handle, like @bob.", _recipient, "confirm"),
        Confirm(
            "confirm",
            _offer_summary,
            _send_offer,
            confirm="Sign and send",
            cancelled="Cancelled. No offer was sent.",
        ),
    ),
)


# -- incoming and outgoing offers -----------------------------------------------------


def _pending(turn: Turn, direction: str) -> list[Any]:
    account = _account(turn)
    dash = turn.call(lambda token: _backend(turn).dashboard(token, account["id"]))
    return list(dash.pending_in if direction == "in" else dash.pending_out)


def _review_flow(flow_id: str, title: str, direction: str, actions: dict[str, str]) -> Flow:
    """List the pending offers of one direction; pick one; act on it; back to the list."""
    noun = "incoming" if direction == "in" else "outgoing"

    def load(turn: Turn) -> Outcome:
        if _pending(turn, direction):
            return Goto("pick")
        return Finish((Text(f"You have no {noun} offers pending."),))

    def pick_screen(turn: Turn) -> Message:
        rows = [offer_row(offer) for offer in _pending(turn, direction)]
        body = f"Your {noun} offers: choose one."
        return OptionList.page(body, rows, turn.page("pick"), button="Offers", footer=(BACK,))

    def picked(turn: Turn, offer_id: str) -> Outcome:
        offer = next((o for o in _pending(turn, direction) if o.id == offer_id), None)
        if offer is None:
            return Goto("load", say=(Text("That offer is no longer pending."),))
        key = turn.idempotency_key(f"decide:{offer.id}")  # fixed for retries, as for offers
        return Goto("decide", {"offer": {**offer_data(offer), "key": key}})

    def decide_screen(turn: Turn) -> Message:
        options = [Option(action, label) for action, label in actions.items()]
        return Buttons(f"{offer_line(turn.data['offer'])}.", (*options, Option("back", "Back")))

    def decided(turn: Turn, action: str) -> Outcome:
        return Goto("load") if action == "back" else Goto(action)

    steps = [
        Api("load", load),
        Display("pick", pick_screen, on_choice=picked),
        Display("decide", decide_screen, on_choice=decided),
    ]
    steps += [Api(action, _act(action)) for action in actions]
    return Flow(flow_id, title, tuple(steps))


_DONE = {"accept": "Accepted", "decline": "Declined", "withdraw": "Cancelled"}


def _act(action: str) -> Any:
    def act(turn: Turn) -> Outcome:
        offer = turn.data["offer"]
        backend = _backend(turn)
        call = {"accept": backend.accept, "decline": backend.decline, "withdraw": backend.cancel}
        key = f"{offer['key'][:30]}:{action}"
        try:
            turn.call(lambda token: call[action](token, offer["id"], idempotency_key=key))
        except Refused as refused:
            return Goto("load", {"offer": None}, (Text(f"Nothing changed: {refused}"),))
        return Goto("load", {"offer": None}, (Text(f"{_DONE[action]}: {offer_line(offer)}."),))

    return act


INCOMING = _review_flow(
    FLOW_INCOMING, "Incoming offers", "in", {"accept": "Accept", "decline": "Decline"}
)
OUTGOING = _review_flow(FLOW_OUTGOING, "Outgoing offers", "out", {"withdraw": "Cancel offer"})


# -- ledger and accounts --------------------------------------------------------------


def _ledger_screen(turn: Turn) -> Message:
    account, page = _account(turn), turn.page("page")
    result = turn.call(
        lambda token: _backend(turn).ledger(
            token, account["id"], offset=page * LEDGER_PAGE, limit=LEDGER_PAGE
        )
    )
    lines = [
        f"{entry.at[:10]}  {'+' if entry.amount > 0 else ''}"
        f"{format_amount(entry.amount, entry.denomination)}  @{entry.counterparty.handle}"
        for entry in result.entries
    ]
    body = f"Ledger of @{account['handle']} (newest first):\n\n" + (
        "\n".join(lines) if lines else "No transactions yet."
    )
    options = []
    if result.has_more:
        options.append(Option(f"page:{page + 1}", "Older"))
    if page > 0:
        options.append(Option(f"page:{page - 1}", "Newer"))
    options.append(Option("menu", "Dashboard"))
    return Buttons(body[:1024], tuple(options))


LEDGER = Flow(
    FLOW_LEDGER,
    "Ledger",
    (Display("page", _ledger_screen, on_choice=lambda turn, choice: Finish()),),
)


def _accounts_screen(turn: Turn) -> Message:
    current = _account(turn)["id"]
    rows = [
        Option(
            a["id"],
            f"@{a['handle']}"[:24],
            (("✓ current · " if a["id"] == current else "") + a["name"])[:72],
        )
        for a in (turn.session.get_profile() or {}).get("accounts", [])
    ]
    return OptionList.page(
        "Which account do you want to use?", rows, turn.page("pick"), footer=(BACK,)
    )


def _switch(turn: Turn, account_id: str) -> Outcome:
    accounts = (turn.session.get_profile() or {}).get("accounts", [])
    chosen = next((a for a in accounts if a["id"] == account_id), None)
    if chosen is None:
        return Abandon((Text("That account is no longer yours."),), reason="unknown account")
    turn.session.update_state({"current_account": chosen}, reason="switched account")
    return Finish((Text(f"Now using {chosen['name']} (@{chosen['handle']})."),))


SWITCH = Flow(
    FLOW_SWITCH,
    "Switch account",
    (Display("pick", _accounts_screen, on_choice=_switch),),
)

FLOWS = (REGISTER, OFFER, INCOMING, OUTGOING, LEDGER, SWITCH)
"""Every credex flow, in the order the dashboard offers them."""
