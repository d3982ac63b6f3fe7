"""The credex bot: its home screen, login, and the flows it offers.

    engine = Headquarters(manager, CredexBot(Ledger.open(data_dir)))
    replies = engine.handle(Inbound(ChannelId("whatsapp", "263771234567"), "wamid.1", "hi"))

Home is the login and the dashboard: a phone number the ledger does not know gets the
welcome (join or learn more); a member is logged in (their JWT stored in the session,
the channel bound to the member) and sees their active account's dashboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..flows import Flow, Message, Turn
from ..state.model import STAGE_AUTH, STAGE_INIT, STAGE_MENU
from .backend import Backend, BackendUnavailable, Login, Refused, Unauthorized
from .flows import FLOWS
from .screens import FLOW_REGISTER, about, account_dict, dashboard, welcome


class NotAMember(Unauthorized):
    """The phone number is not (or no longer) a credex member."""

    def __init__(self) -> None:
        super().__init__("this phone number is not a credex member")


class CredexBot:
    """The reference bot: a WhatsApp front end to a credex ledger (any :class:`Backend`)."""

    flows: Sequence[Flow] = FLOWS
    token_rejected: tuple[type[Exception], ...] = (Unauthorized,)

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def member_for_handle(self, handle: str) -> str | None:
        """The member with this account handle, when the backend can say without a
        member's token (the built-in ledger can; a remote one is asked nothing)."""
        lookup = getattr(self.backend, "member_for_handle", None)
        return lookup(handle) if lookup is not None else None

    # -- the engine's hooks --------------------------------------------------------------

    def home(self, turn: Turn) -> list[Message]:
        """Log in when needed, then the dashboard; the welcome for a non-member."""
        session = turn.session
        if not session.is_authenticated():
            login = self.backend.login(self.phone(turn))
            if login is None:
                if session.get_stage() == STAGE_INIT:
                    session.transition(STAGE_AUTH, reason="not a member yet")
                return welcome()
            self.sign_in(turn, login)
        if session.get_stage() != STAGE_MENU:
            session.transition(STAGE_MENU, reason="home")
        account = session.get_current_account() or {}
        dash = turn.call(lambda token: self.backend.dashboard(token, account["id"]))
        accounts = (session.get_profile() or {}).get("accounts", [])
        return [dashboard(dash, accounts)]

    def choose(self, turn: Turn, option: str) -> str | list[Message] | None:
        """A pick on the welcome or the dashboard: a flow to start, or "learn more"."""
        # A member whose token expired is still a member: the flow's first backend call
        # logs them in again (Turn.call), so the pick is not refused.
        registered = turn.session.get_member_id() is not None
        if option in ("learn", FLOW_REGISTER):
            if registered:
                return None
            return about() if option == "learn" else FLOW_REGISTER
        if not registered or option not in {flow.id for flow in FLOWS}:
            return None
        return option

    def relogin(self, turn: Turn) -> str:
        """Log in again with the member's phone and store the new token."""
        login = self.backend.login(self.phone(turn))
        if login is None:
            raise NotAMember()
        if turn.session.get_member_id() == login.member.id:
            turn.session.update_state(
                {"jwt_token": login.token, "authenticated": True}, reason="logged in again"
            )
        else:
            self.sign_in(turn, login)
        return login.token

    def explain(self, error: Exception) -> str | None:
        """A message for backend errors the member can act on."""
        if isinstance(error, NotAMember):
            return "This number is not a credex member any more. Send “hi” to join."
        if isinstance(error, BackendUnavailable):
            return (
                "The credex ledger is not answering right now. Please try again in a minute; "
                "your place is kept."
            )
        if isinstance(error, Unauthorized):
            return "I could not log you in just now. Please send “hi” to try again."
        if isinstance(error, Refused):
            return f"credex said no: {str(error)[:500]}. Send “menu” to start over."
        return None

    # -- helpers the flows use -------------------------------------------------------------

    def phone(self, turn: Turn) -> str:
        """The member's phone number: their WhatsApp (or terminal) identity."""
        profile = turn.session.get_profile() or {}
        stored = profile.get("phone")
        if isinstance(stored, str) and stored:
            return stored
        return turn.inbound.channel.address  # without the @<number> of a second number

    def sign_in(self, turn: Turn, login: Login) -> dict[str, Any]:
        """Store the login: token, profile, active account; bind the channel to the member."""
        session = turn.session
        if session.get_stage() == STAGE_INIT:
            session.transition(STAGE_AUTH, reason="logging in")
        accounts = [account_dict(account) for account in login.accounts]
        current = session.get_current_account()
        if not current or current.get("id") not in {a["id"] for a in accounts}:
            current = accounts[0]
        member = login.member
        profile = {
            "first_name": member.first_name,
            "last_name": member.last_name,
            "phone": member.phone,
            "accounts": accounts,
        }
        session.authenticate(member.id, login.token, profile=profile, current_account=current)
        return current
