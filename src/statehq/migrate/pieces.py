"""The parts of a statehq document a legacy session can supply, each checked on its own.

Every function here takes what the legacy data holds and a :class:`Notes`, and returns
the statehq value (or None); whatever it cannot carry over is noted with the field's
legacy name and why, so nothing is dropped unseen. Field names of the backend's data
(``memberID``, ``accountID``) are credex-core's, which the seed project spoke.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..digits import is_digits
from ..errors import InvalidInput
from ..state.channel_ids import ChannelId
from ..state.model import STAGE_AUTH, STAGE_INIT, STAGE_MENU, fresh_validation
from ..state.stages import Stages
from ..state.tokens import token_expiry
from ..store.keys import check_member_id

WHATSAPP = "whatsapp"

BOOKKEEPING = {
    "_version": "legacy version numbers do not carry over; statehq starts at version 1",
    "_last_updated": "statehq records its own write times",
    "last_updated": "statehq records its own write times",
    "_metadata": "legacy timestamps; statehq records its own",
    "update_from": "the legacy bot's note of who wrote; statehq's audit trail says it",
    "_validation": "legacy validation progress; validation starts afresh at the current step",
    "option": "the legacy bot's pending menu choice; statehq keeps none",
    "direction": "the legacy bot's message direction; statehq has no equivalent",
}
"""Legacy fields with no statehq equivalent, and why each is left behind."""


@dataclass(frozen=True)
class Unmapped:
    """A legacy field that was not carried over, and why."""

    field: str
    why: str

    def as_dict(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {"field": self.field, "why": self.why}


@dataclass
class Notes:
    """The fields of one legacy session that could not be mapped, in the order found."""

    items: list[Unmapped] = field(default_factory=list)

    def drop(self, name: str, why: str) -> None:
        """Record that ``name`` was not carried over because ``why``."""
        self.items.append(Unmapped(name, why))

    def bookkeeping(self, name: str, where: str = "") -> None:
        """Record a known legacy-only field (see :data:`BOOKKEEPING`)."""
        self.drop(f"{where}{name}", BOOKKEEPING[name])


@dataclass(frozen=True)
class BotOutline:
    """What the running bot declares: its stage machine, and each flow's step names."""

    stages: Stages
    steps: Mapping[str, tuple[str, ...]]


def whatsapp_channel(identifier: str) -> ChannelId:
    """The WhatsApp identity of a legacy number (``+`` dropped); InvalidInput unless it is
    a phone number (WhatsApp ids are digits)."""
    number = identifier.removeprefix("+")
    if not is_digits(number):
        raise InvalidInput(f"{identifier!r} is not a phone number")
    return ChannelId(WHATSAPP, number)


def check_channel(value: Any, wa_id: str, notes: Notes, where: str = "channel") -> None:
    """Note a legacy ``channel`` that disagrees with the number its key names."""
    if value is None:
        return
    expected = {"type": WHATSAPP, "identifier": wa_id}
    if not isinstance(value, Mapping) or dict(value) != expected:
        notes.drop(where, f"does not match the key's number; the channel is {WHATSAPP}:{wa_id}")


def pick_token(candidates: list[tuple[str, Any]], notes: Notes) -> str | None:
    """The first candidate that is a JWT; the others are noted (never their value)."""
    chosen: tuple[str, str] | None = None
    for where, value in candidates:
        if value is None or value == "":
            continue
        if not isinstance(value, str) or token_expiry(value) is None:
            notes.drop(where, "not a JWT (no readable exp claim); dropped, to sign in again")
        elif chosen is None:
            chosen = (where, value)
        elif value != chosen[1]:
            notes.drop(where, f"a second token; the one in {chosen[0]} was kept")
    return chosen[1] if chosen else None


def member_named(value: Any, where: str, notes: Notes) -> str | None:
    """A member id the store can key, or None (noted when one was there but unusable)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        if not isinstance(value, str) or len(value) > 200:
            raise InvalidInput("not a string of 1-200 characters")
        return check_member_id(value)
    except InvalidInput:
        notes.drop(where, "not a usable member id; the member is found again at sign-in")
        return None


def member_of_profile(profile: Any) -> Any:
    """The backend's member id inside a profile (``profile.member.memberID``), if any."""
    member = profile.get("member") if isinstance(profile, Mapping) else None
    return member.get("memberID") if isinstance(member, Mapping) else None


def object_or_none(value: Any, where: str, notes: Notes) -> dict[str, Any] | None:
    """``value`` if it is an object; anything else but null is noted."""
    if value is None or isinstance(value, dict):
        return value
    notes.drop(where, f"a {type(value).__name__}, where statehq keeps an object; dropped")
    return None


ACCOUNT_FIELDS = {
    "accountID": "id",
    "accountHandle": "handle",
    "accountName": "name",
    "accountType": "type",
    "defaultDenom": "default_denomination",
}
"""credex-core's account field names -> the names statehq's bots read (``account["id"]``)."""


def statehq_account(account: Any, where: str, notes: Notes) -> Any:
    """A legacy account object under the names statehq's bots read; fields with no such
    name are dropped and noted (a bot that reads ``account["id"]`` must find it)."""
    if not isinstance(account, dict):
        return account
    renamed: dict[str, Any] = {}
    for name, value in account.items():
        new = ACCOUNT_FIELDS.get(name, name if name in ACCOUNT_FIELDS.values() else None)
        if new is None:
            notes.drop(f"{where}.{name}", "not an account field statehq's bots read; dropped")
        else:
            renamed[new] = value
    return renamed


def account_by_id(accounts: Any, account_id: Any, notes: Notes) -> dict[str, Any] | None:
    """The account ``active_account_id`` names among the dashboard's accounts."""
    if account_id is None:
        return None
    for account in accounts if isinstance(accounts, list) else []:
        if not isinstance(account, dict):
            continue
        if account_id in (account.get("accountID"), account.get("id")):
            return account
    notes.drop("active_account_id", "names no account in dashboard.accounts; none is selected")
    return None


@dataclass(frozen=True)
class LegacyFlow:
    """A legacy flow in progress, under its legacy names (``path``/``component`` or
    ``id``/``step``)."""

    where: str
    flow_id: Any
    step: Any
    data: Any
    validation: Any


def flow_data(legacy: LegacyFlow, outline: BotOutline, notes: Notes) -> dict[str, Any] | None:
    """The statehq ``flow_data`` of a legacy flow the bot still has, at a step it still has."""
    steps = outline.steps.get(legacy.flow_id) if isinstance(legacy.flow_id, str) else None
    if steps is None:
        known = ", ".join(sorted(outline.steps)) or "none"
        notes.drop(
            legacy.where,
            f"flow {legacy.flow_id!r:.60} is not a flow of this bot ({known}); "
            f"the member continues from the menu",
        )
        return None
    if legacy.step not in steps:
        notes.drop(
            legacy.where,
            f"flow {legacy.flow_id!r:.60} has no step {legacy.step!r:.60} "
            f"(its steps: {', '.join(steps)}); the member continues from the menu",
        )
        return None
    data = object_or_none(legacy.data, f"{legacy.where}.data", notes) or {}
    for copied in ("member_id", "channel"):
        if copied in data:
            data = {k: v for k, v in data.items() if k != copied}
            notes.drop(f"{legacy.where}.data.{copied}", "a copy; statehq keeps it at the top only")
    if legacy.validation:
        notes.bookkeeping("_validation", f"{legacy.where}.")
    validation = fresh_validation()
    return {"id": legacy.flow_id, "step": legacy.step, "data": data, "_validation": validation}


def declared_stage(value: Any, stages: Stages) -> str | None:
    """The declared stage ``value`` names, exactly or but for letter case."""
    if not isinstance(value, str):
        return None
    if value in stages:
        return value
    matches = [name for name in stages.names if name.lower() == value.lower()]
    return matches[0] if len(matches) == 1 else None


def stage_of(
    legacy: tuple[str, Any] | None,
    flow: dict[str, Any] | None,
    signed_in: bool,
    stages: Stages,
    notes: Notes,
) -> str:
    """The statehq stage: the flow's when one runs, else the legacy stage if it still
    makes sense, else MENU for a signed-in member and INIT for anyone else."""
    where, value = legacy if legacy else ("stage", None)
    fallback = STAGE_MENU if signed_in else STAGE_INIT
    if flow is not None:
        if value is not None and declared_stage(value, stages) != flow["id"]:
            notes.drop(where, f"{value!r:.60} disagrees with the running flow {flow['id']!r}")
        return str(flow["id"])
    if value is None:
        return fallback
    stage = declared_stage(value, stages)
    if stage is None:
        names = ", ".join(stages.names)
        why = f"{value!r:.60} is not a stage of this bot ({names}); starts at {fallback}"
        notes.drop(where, why)
        return fallback
    if stage in stages.flows:
        notes.drop(where, f"flow {stage!r} without its flow data; starts at {fallback}")
        return fallback
    if stage == STAGE_MENU and not signed_in:
        notes.drop(where, f"{stage!r} needs a signed-in member; starts at {STAGE_INIT}")
        return STAGE_INIT
    return stage


def flow_allowed(
    flow: dict[str, Any] | None, where: str, signed_in: bool, stages: Stages, notes: Notes
) -> bool:
    """False (noted) for a flow that needs a signed-in member when nobody is signed in."""
    if flow is None or signed_in or stages.allows(STAGE_AUTH, flow["id"]):
        return True
    notes.drop(where, f"flow {flow['id']!r} needs a signed-in member; dropped")
    return False
